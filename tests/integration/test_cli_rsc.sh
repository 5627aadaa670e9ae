#!/usr/bin/env bash
# The rsc-compatible options of the rsocket CLI: -q, --sd/--sm/--smmt (what the server receives
# in SETUP), --wsHeader (what a listener receives in the upgrade request), --retry, --delayElements
# (pace and back-pressure), -l/--load, -w/--wiretap, --im and -u.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${RS_BIN:-$here/../../build/bin}
source "$here/../lib.sh"

start_server() { # out-file args...; sets URI and SERVER
  local out=$1; shift
  "$bin/rsocket" --server "$@" >"$out" 2>"$out.err" &
  SERVER=$!
  pids+=($SERVER)
  URI=$(listening_uri "$out")
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
usage_error() { # name want-message args...
  local name=$1 want=$2 rc=0; shift 2
  "$bin/rsocket" "$@" >/dev/null 2>"$work/usage.err" || rc=$?
  check "$name exit" "2" "$rc"
  check "$name message" "rsocket: $want
Try 'rsocket --help'." "$(cat "$work/usage.err")"
}
c=("$bin/rsocket" --timeout 10s)

start_server "$work/srv.out" --debug tcp://127.0.0.1:0
uri=$URI

# -q: nothing printed, and the status still tells.
check "-q request" "" "$("${c[@]}" -q -d x "$uri")"
check "-q stream" "" "$("${c[@]}" -q --stream --take 3 "$uri")"

# --sd/--sm: the server's SETUP carries them as given; with --smmt, --sm is a composite entry,
# and rsc's simple:/token: forms of the authentication type are encoded as the extension says.
setup_seen() { # want-pattern: the last SETUP the server printed matches it
  sleep 0.2
  grep '^<< SETUP ' "$work/srv.out.err" | tail -1 | grep -q -- "$1"
}
"${c[@]}" --sd hello --sm meta -d x "$uri" >/dev/null
setup_seen 'metadata-mime=application/octet-stream .* metadata=4B "meta" data=5B "hello"$' \
  && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL --sd/--sm"; grep SETUP "$work/srv.out.err"; }
"${c[@]}" --setupData @"$here/test_cli_rsc.sh" --setupMetadata m2 -d x "$uri" >/dev/null
setup_seen "metadata=2B \"m2\" data=$(wc -c <"$here/test_cli_rsc.sh")B \"#!/usr/bin/env bash" \
  && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL --setupData @FILE"; grep SETUP "$work/srv.out.err"; }
"${c[@]}" --sm simple:user:pass --smmt MESSAGE_RSOCKET_AUTHENTICATION -d x "$uri" >/dev/null
setup_seen 'metadata-mime=message/x.rsocket.composite-metadata.v0 .* metadata=15B "\\xfc\\x00\\x00\\x0b\\x80\\x00\\x04userpass"' \
  && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL --smmt simple"; grep SETUP "$work/srv.out.err"; }
"${c[@]}" --sm token:T0K --smmt message/x.rsocket.authentication.v0 -d x "$uri" >/dev/null
setup_seen 'metadata=8B "\\xfc\\x00\\x00\\x04\\x81T0K"' \
  && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL --smmt token"; grep SETUP "$work/srv.out.err"; }
"${c[@]}" --sm '{"app":1}' --smmt application/json -d x "$uri" >/dev/null
setup_seen 'metadata=13B "\\x85\\x00\\x00\\x09{\\x22app\\x22:1}"' \
  && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL --smmt json"; grep SETUP "$work/srv.out.err"; }
fails_with() { # name status stderr args...
  local name=$1 want_rc=$2 want=$3 rc=0; shift 3
  "$bin/rsocket" "$@" >/dev/null 2>"$work/fail.err" || rc=$?
  check "$name exit" "$want_rc" "$rc"
  check "$name message" "$want" "$(cat "$work/fail.err")"
}
fails_with "--smmt auth with a bad --sm" 2 "rsocket: with --smmt message/x.rsocket.authentication.v0, --sm is simple:USER:PASS or token:TOKEN" \
  --sm nope --smmt MESSAGE_RSOCKET_AUTHENTICATION "$uri"
fails_with "--smmt without --sm" 2 "rsocket: --smmt names the type of the SETUP metadata: give it with --sm" \
  --smmt text/plain "$uri"
usage_error "--smmt of an unknown name" "--smmt: 'NOT_A_TYPE' is neither a MIME type nor the name of a well-known one (such as MESSAGE_RSOCKET_AUTHENTICATION)" \
  --sm x --smmt NOT_A_TYPE "$uri"

# -l/--load: data from a file, or a file:// URI; not a URL, and not with -d.
printf 'loaded\n' >"$work/data.txt"
check "-l FILE" "loaded" "$("${c[@]}" -l "$work/data.txt" "$uri")"
check "--load file://" "loaded" "$("${c[@]}" --load "file://$work/data.txt" "$uri")"
usage_error "-l URL" "-l reads local files; for a URL: curl -s https://example.com/x | rsocket -d - …" \
  -l https://example.com/x "$uri"
usage_error "-d and -l" "give the data with -d or with -l, not both" -d x -l "$work/data.txt" "$uri"
printf 'l1\nl2\n' >"$work/lines.txt"
start_server "$work/lines.out" -l "$work/lines.txt" tcp://127.0.0.1:0
check "server -l FILE streams its lines" "$(printf 'l1\nl2')" "$("${c[@]}" --stream "$URI")"

# --im and -u (rsc's names).
check "--im REQUEST_STREAM" "$(printf 'y\ny')" "$("${c[@]}" --im request_stream --take 2 -d y "$uri")"
usage_error "--im unknown" "--im needs REQUEST_RESPONSE, REQUEST_STREAM, REQUEST_CHANNEL, FIRE_AND_FORGET or METADATA_PUSH, got 'PUSH'" \
  --im PUSH "$uri"
"${c[@]}" -u user:pw --debug -d z "$uri" >"$work/u.out" 2>"$work/u.err"
check "-u" "z" "$(cat "$work/u.out")"
grep -q '^   entry message/x.rsocket.authentication.v0 9B "\\x80\\x00\\x04userpw"$' "$work/u.err" \
  && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL -u entry"; cat "$work/u.err"; }

# -w/--wiretap: --debug plus a hex dump of every frame.
"${c[@]}" -w -d x "$uri" >/dev/null 2>"$work/w.err"
grep -q '^>> SETUP stream=0 ' "$work/w.err" \
  && grep -q '^   000000  00 00 00 00 04 00 00 01 00 00 00 00 4e 20 00 01  |............N ..|$' "$work/w.err" \
  && grep -q '^   000000  00 00 00 01 28 60 78 *|....(`x|$' "$work/w.err" \
  && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL -w"; cat "$work/w.err"; }

# --delayElements: one item per DURATION (a plain number is milliseconds), asked for as they are
# printed: 32 at a time by default, or --limitRate at a time.
t0=$(date +%s%N)
check "--delayElements output" "$(seq 1 4)" "$("${c[@]}" --stream --take 4 --delayElements 250 "$uri")"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -ge 1000 ] && [ "$ms" -lt 5000 ] && passes=$((passes + 1)) \
  || { fails=$((fails + 1)); echo "FAIL --delayElements 250 took $ms ms for 4 items"; }
"${c[@]}" --stream --take 40 --delayElements 5ms --debug "$uri" >"$work/d.out" 2>"$work/d.err"
check "--delayElements 40 items" "$(seq 1 40)" "$(cat "$work/d.out")"
check "--delayElements requests" "n=32 n=8" \
  "$(grep -oE '^>> REQUEST_(STREAM|N) stream=1 .*n=[0-9]+' "$work/d.err" | grep -oE 'n=[0-9]+$' | tr '\n' ' ' | sed 's/ $//')"
"${c[@]}" --stream --take 5 --limitRate 2 --delayElements 5 --debug "$uri" >"$work/d.out" 2>"$work/d.err"
check "--delayElements with --limitRate" "n=2 n=2 n=1" \
  "$(grep -oE '^>> REQUEST_(STREAM|N) stream=1 .*n=[0-9]+' "$work/d.err" | grep -oE 'n=[0-9]+$' | tr '\n' ' ' | sed 's/ $//')"
check "--delayElements channel" "$(printf 'a\nb\nc')" \
  "$(printf 'a\nb\nc\n' | "${c[@]}" --channel --delayElements 20 "$uri")"
usage_error "--delayElements 0" "--delayElements needs milliseconds or a duration such as 1s, got '0'" \
  --delayElements 0 "$uri"

# --retry: a server that comes up late is reached; one that never does is given up on.
port=$(free_port)
rc=0
"${c[@]}" --retry 4 -d late "tcp://127.0.0.1:$port" >"$work/r.out" 2>"$work/r.err" &
client=$!
sleep 0.8
start_server "$work/late.out" "tcp://127.0.0.1:$port"
wait "$client" || rc=$?
check "--retry late server exit" 0 "$rc"
check "--retry late server output" "late" "$(cat "$work/r.out")"
check "--retry announces each retry" "rsocket: cannot connect to 127.0.0.1:$port: connection refused; retry 1 of 4 in 0.5 s" \
  "$(head -1 "$work/r.err")"
rc=0
"${c[@]}" --retry 2 -d x tcp://127.0.0.1:1 >/dev/null 2>"$work/r2.err" || rc=$?
check "--retry gives up exit" 3 "$rc"
check "--retry gives up messages" "rsocket: cannot connect to 127.0.0.1:1: connection refused; retry 1 of 2 in 0.5 s
rsocket: cannot connect to 127.0.0.1:1: connection refused; retry 2 of 2 in 1.0 s
error: cannot connect to 127.0.0.1:1: connection refused" "$(cat "$work/r2.err")"
rc=0
"$bin/rsocket" --retry 5 --timeout 700ms -d x tcp://127.0.0.1:1 >/dev/null 2>"$work/r3.err" || rc=$?
check "--timeout between retries exit" 5 "$rc"
check "--timeout between retries message" "error: timed out after 700 ms" "$(tail -1 "$work/r3.err")"
usage_error "--retry 0" "--retry needs a count of attempts from 1 to 1000, got '0'" --retry 0 "$uri"

# --wsHeader: the upgrade request carries the headers, in order, as given (a listener that prints
# the request head it gets, then refuses it).
python3 - >"$work/head.txt" 2>&1 <<'PY' &
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
head = b""
while b"\r\n\r\n" not in head:
    d = c.recv(4096)
    if not d:
        break
    head += d
sys.stdout.write(head.decode("latin-1"))
sys.stdout.flush()
c.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
c.close()
PY
pids+=($!)
for _ in $(seq 1 100); do [ -s "$work/head.txt" ] && break; sleep 0.05; done
hport=$(head -1 "$work/head.txt")
rc=0
"${c[@]}" --wsHeader 'Authorization: Bearer abc' --wsh 'Cookie:  a=b ' -d x "ws://127.0.0.1:$hport/rs" \
  >/dev/null 2>"$work/h.err" || rc=$?
check "--wsHeader refused upgrade exit" 3 "$rc"
check "--wsHeader refused upgrade message" "error: the server refused the WebSocket upgrade of /rs: HTTP/1.1 403 Forbidden" \
  "$(cat "$work/h.err")"
check "--wsHeader in the request" "Sec-WebSocket-Version: 13
Authorization: Bearer abc
Cookie: a=b" "$(tr -d '\r' <"$work/head.txt" | sed -n '/^Sec-WebSocket-Version/,/^$/p' | sed '/^$/d')"
usage_error "--wsHeader smuggling a line" "--wsHeader 'X-A: 1
X-B: 2': the header value holds a control character" --wsHeader "X-A: 1
X-B: 2" "ws://127.0.0.1:1/"
usage_error "--wsHeader Host" "--wsHeader 'Host: elsewhere': the WebSocket handshake sets this header itself" \
  --wsHeader "Host: elsewhere" "ws://127.0.0.1:1/"
usage_error "--wsHeader on tcp" "--wsHeader is for ws:// and wss:// URIs; tcp://127.0.0.1:1 is not a WebSocket" \
  --wsHeader "X-A: 1" tcp://127.0.0.1:1

kill -TERM "${pids[0]}"
rc=0
wait "${pids[0]}" || rc=$?
check "server exit status after SIGTERM" 0 "$rc"
finish test_cli_rsc
