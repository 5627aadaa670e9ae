#!/usr/bin/env bash
# The rsocket CLI against its own server mode over TCP and TLS: every interaction model, the
# documented output and exit codes, bad usage and unreachable servers.
set -euo pipefail
bin=${RS_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/build/bin}
source "$(dirname "$0")/../lib.sh"

start_server() { # out-file args... ; sets URI (not in a subshell, so the PID is kept)
  local out=$1; shift
  "$bin/rsocket" --server "$@" >"$out" 2>"$out.err" &
  pids+=($!)
  for _ in $(seq 1 100); do
    grep -q '^listening on ' "$out" 2>/dev/null && break
    sleep 0.05
  done
  URI=$(awk '/^listening on /{print $3; exit}' "$out")
}

run_models() { # label uri [client flags...]
  local label=$1 uri=$2; shift 2
  local c=("$bin/rsocket" --timeout 10s "$@")
  check "$label request-response" "hello" "$("${c[@]}" -d hello "$uri")"
  check "$label showMetadata" "$(printf 'md\thello')" "$("${c[@]}" -d hello -m md --showMetadata "$uri")"
  check "$label stream take" "$(printf 'tick\ntick\ntick')" "$("${c[@]}" --stream --take 3 -d tick "$uri")"
  check "$label stream limitRate" "5" "$("${c[@]}" --stream --take 5 --limitRate 2 -d x "$uri" | wc -l | tr -d ' ')"
  check "$label channel" "$(printf 'a\nb\nc')" "$(printf 'a\nb\nc\n' | "${c[@]}" --channel "$uri")"
  check "$label channel -d" "one" "$("${c[@]}" --channel -d one "$uri")"
  check "$label fnf" "" "$("${c[@]}" --fnf -d note-$label "$uri")"
  check "$label metadataPush" "" "$("${c[@]}" --metadataPush -m push-$label "$uri")"
  check "$label route+auth" "x" "$("${c[@]}" -r rooms.post --ab TOKEN -d x "$uri")"
  check "$label data from file" "filedata" "$(printf 'filedata' > "$work/d"; "${c[@]}" -d @"$work/d" "$uri")"
  check "$label fragmented" "$(head -c 300000 /dev/zero | tr '\0' 'z')" \
    "$(head -c 300000 /dev/zero | tr '\0' 'z' | "${c[@]}" --fragment 64 -d - "$uri")"
}

# ---- TCP ----
start_server "$work/tcp.out" tcp://127.0.0.1:0
uri=$URI
[ -n "$uri" ] || { echo "server did not start"; cat "$work/tcp.out.err"; exit 1; }
run_models tcp "$uri"
sleep 0.2
grep -q '^fnf note-tcp$' "$work/tcp.out" && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL server printed no fnf line"; }
grep -q '^metadata-push push-tcp$' "$work/tcp.out" && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL server printed no metadata-push line"; }

# --debug prints frames on stderr.
"$bin/rsocket" --debug -d dbg "$uri" >/dev/null 2>"$work/debug.err"
grep -q '^>> SETUP stream=0' "$work/debug.err" && grep -q '^<< PAYLOAD stream=1' "$work/debug.err" \
  && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL --debug output"; cat "$work/debug.err"; }

# Server with fixed data and a file of lines for streams.
printf 'l1\nl2\nl3\n' > "$work/lines"
start_server "$work/lines.out" tcp://127.0.0.1:0 -d @"$work/lines"
uri2=$URI
check "stream from file" "$(printf 'l1\nl2\nl3')" "$("$bin/rsocket" --stream "$uri2")"
start_server "$work/fixed.out" tcp://127.0.0.1:0 -d fixed
uri3=$URI
check "fixed response" "fixed" "$("$bin/rsocket" -d anything "$uri3")"

# ---- TLS with a certificate made now ----
if command -v openssl >/dev/null; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
  start_server "$work/tls.out" tls://127.0.0.1:0 --cert "$work/cert.pem" --key "$work/key.pem"
  turi=$URI
  port=${turi##*:}
  run_models tls "tls://localhost:$port" --ca "$work/cert.pem"
  # Which certificate check failed, and what to do about it.
  set +e
  "$bin/rsocket" -d x "tls://localhost:$port" >/dev/null 2>"$work/tls.err"
  check "tls untrusted exit" "3" "$?"
  check "tls untrusted message" "error: TLS handshake: certificate verify failed: self-signed certificate (the server's certificate is not signed by a trusted CA)
hint: trust the server's CA with --ca FILE, or skip the check with -k (for tests only)" "$(cat "$work/tls.err")"
  "$bin/rsocket" -d x --ca "$work/cert.pem" "tls://127.0.0.1:$port" >/dev/null 2>"$work/tls.err"
  check "tls wrong name exit" "3" "$?"
  check "tls wrong name message" "error: TLS handshake: certificate verify failed: IP address mismatch (the certificate is for localhost, not 127.0.0.1)
hint: connect with a name the certificate is for, or skip the check with -k (for tests only)" "$(cat "$work/tls.err")"
  "$bin/rsocket" -d x --ca "$work/missing.pem" "tls://localhost:$port" >/dev/null 2>"$work/tls.err"
  check "tls missing CA file exit" "2" "$?"
  check "tls missing CA file message" \
    "rsocket: cannot read CA file $work/missing.pem: No such file or directory" "$(cat "$work/tls.err")"
  "$bin/rsocket" --server --cert "$work/missing.pem" --key "$work/key.pem" tls://127.0.0.1:0 \
    >/dev/null 2>"$work/tls.err"
  check "tls missing certificate exit" "2" "$?"
  check "tls missing certificate message" "rsocket: cannot listen on tls://127.0.0.1:0: cannot read certificate file $work/missing.pem: No such file or directory" \
    "$(cat "$work/tls.err")"
  set -e
  check "tls insecure" "x" "$("$bin/rsocket" -k -d x "tls://localhost:$port")"
  check "tls --trustCert (rsc's --ca)" "x" "$("$bin/rsocket" --trustCert "$work/cert.pem" -d x "tls://localhost:$port")"
  # RSocket over WebSocket over TLS.
  start_server "$work/wss.out" wss://127.0.0.1:0/rs --cert "$work/cert.pem" --key "$work/key.pem"
  wport=${URI##*:}; wport=${wport%%/*}
  run_models wss "wss://localhost:$wport/rs" --ca "$work/cert.pem"
fi

# Plain WebSocket, and a server on 3 worker threads (SO_REUSEPORT) serving many clients.
start_server "$work/ws.out" ws://127.0.0.1:0/rsocket
run_models ws "$URI"
# A ws:// server serves its URI's path (a query string aside) and answers 404 to any other.
check "ws path with query" "q" "$("$bin/rsocket" --timeout 10s -d q "$URI?token=1")"
set +e
"$bin/rsocket" --timeout 10s -d x "${URI%/rsocket}/other" >/dev/null 2>"$work/ws404.err"
check "ws other path exit" "3" "$?"
set -e
check "ws other path message" \
  "error: the server refused the WebSocket upgrade of /other: HTTP/1.1 404 Not Found" \
  "$(cat "$work/ws404.err")"
start_server "$work/wsroot.out" ws://127.0.0.1:0
check "ws root uri printed" "/" "/${URI#ws://*/}"
check "ws root path" "r" "$("$bin/rsocket" --timeout 10s -d r "${URI%/}")"
set +e
"$bin/rsocket" --timeout 10s -d x "${URI}rsocket" >/dev/null 2>&1
check "ws root serves / only" "3" "$?"
set -e
start_server "$work/workers.out" --workers 3 tcp://127.0.0.1:0
wpids=()
for i in $(seq 1 12); do "$bin/rsocket" --timeout 10s -d "w$i" "$URI" > "$work/w$i" & wpids+=($!); done
wait "${wpids[@]}"
ok=0; for i in $(seq 1 12); do [ "$(cat "$work/w$i")" = "w$i" ] && ok=$((ok + 1)); done
check "12 clients on 3 workers" "12" "$ok"

# ---- errors and exit codes ----
set +e
"$bin/rsocket" >/dev/null 2>"$work/e1"; check "no uri exit" "2" "$?"
grep -q 'missing URI' "$work/e1" || { fails=$((fails + 1)); echo "FAIL missing URI message"; }
"$bin/rsocket" --stream --fnf tcp://127.0.0.1:1 >/dev/null 2>&1; check "two models exit" "2" "$?"
"$bin/rsocket" --take 0 tcp://127.0.0.1:1 >/dev/null 2>&1; check "bad take exit" "2" "$?"
"$bin/rsocket" http://x:1 >/dev/null 2>"$work/e2"; check "bad scheme exit" "2" "$?"
grep -q "unknown scheme 'http'" "$work/e2" || { fails=$((fails + 1)); echo "FAIL scheme message"; cat "$work/e2"; }
"$bin/rsocket" -d x tcp://127.0.0.1:1 >/dev/null 2>"$work/e3"; check "refused exit" "3" "$?"
check "refused message" "error: cannot connect to 127.0.0.1:1: connection refused" "$(cat "$work/e3")"
"$bin/rsocket" --server tcp://127.0.0.1:${uri##*:} >/dev/null 2>"$work/e4"; check "port in use exit" "3" "$?"
grep -q 'in use' "$work/e4" || { fails=$((fails + 1)); echo "FAIL in-use message"; cat "$work/e4"; }
check "version" "rsocket (rsocket-c) $(sed -n 's/^#define RS_VERSION_STRING "\(.*\)"$/\1/p' \
  "$(dirname "$0")/../../include/rsocket/common.h")" "$("$bin/rsocket" --version)"
# Every option is in --help and in the manual page (rsc's unsupported ones are refused instead).
src=$(cd "$(dirname "$0")/../.." && pwd)
"$bin/rsocket" --help >"$work/help"
for name in $(grep -o '{"[A-Za-z0-9-]*", [a-z_]*, NULL, [A-Z_a-z'"'"']*}' "$src/apps/rsocket/main.c" \
    | grep -v OPT_RSC_UNSUPPORTED | sed 's/^{"\([^"]*\)".*/\1/'); do
  grep -q -- "--$name\b" "$work/help" || { fails=$((fails + 1)); echo "FAIL --help lacks --$name"; }
  grep -qF -- "\\-\\-${name//-/\\-}" "$src/docs/rsocket.1" \
    || { fails=$((fails + 1)); echo "FAIL docs/rsocket.1 lacks --$name"; }
done
for name in $(grep -o '{"[A-Za-z0-9-]*", [a-z_]*, NULL, OPT_RSC_UNSUPPORTED}' "$src/apps/rsocket/main.c" \
    | sed 's/^{"\([^"]*\)".*/\1/'); do
  "$bin/rsocket" "--$name" tcp://127.0.0.1:1 >/dev/null 2>"$work/e5"
  check "rsc's --$name refused" "2" "$?"
  grep -q "is not supported: .*rsocket(1)" "$work/e5" || { fails=$((fails + 1)); echo "FAIL --$name message"; cat "$work/e5"; }
  grep -qF -- "\\-\\-$name" "$src/docs/rsocket.1" \
    || { fails=$((fails + 1)); echo "FAIL docs/rsocket.1 does not list rsc's --$name"; }
done

# Options of the other mode, and TLS files for a server that is not TLS, are refused.
usage_error() { # name want-message args...
  local name=$1 want=$2; shift 2
  "$bin/rsocket" "$@" >/dev/null 2>"$work/usage.err"
  check "$name exit" "2" "$?"
  check "$name message" "rsocket: $want
Try 'rsocket --help'." "$(cat "$work/usage.err")"
}
usage_error "cert on tcp server" "--cert and --key are for tls:// and wss:// servers, and tcp://127.0.0.1:0 is not encrypted: serve tls://… or wss://…, or drop them" \
  --server --cert /nonexistent --key /nonexistent tcp://127.0.0.1:0
usage_error "key on ws server" "--cert and --key are for tls:// and wss:// servers, and ws://127.0.0.1:0/rs is not encrypted: serve tls://… or wss://…, or drop them" \
  --server --key k.pem ws://127.0.0.1:0/rs
usage_error "tls server without cert" "a tls:// server needs --cert FILE and --key FILE" --server tls://127.0.0.1:0
usage_error "cert on a client" "--cert and --key are server options; a client trusts a server's certificate with --ca FILE" \
  --cert c.pem tls://127.0.0.1:1
usage_error "ca on tcp" "--ca and -k are for tls:// and wss:// URIs; tcp://127.0.0.1:1 is not encrypted" -k tcp://127.0.0.1:1
usage_error "client option on server" "--take is a client option; --server does not use it" --server --take 3 tcp://127.0.0.1:0
usage_error "keepalive on server" "--keepalive is a client option; --server does not use it (a server keeps the times its clients ask for in SETUP)" \
  --server --keepalive 5s tcp://127.0.0.1:0
usage_error "server option on client" "--lease is a server option: give --server too" --lease 5 tcp://127.0.0.1:1

# A fire-and-forget that never left is a failure, not silence.
"$bin/rsocket" --fnf -d x tcp://127.0.0.1:1 >/dev/null 2>"$work/e6"; check "fnf refused exit" "3" "$?"
check "fnf refused message" "error: cannot connect to 127.0.0.1:1: connection refused" "$(cat "$work/e6")"
set -e

# A server without --resume rejects a client's resumable SETUP: said once, exit 4.
start_server "$work/noresume.out" tcp://127.0.0.1:0
set +e
"$bin/rsocket" --timeout 10s --stream --resume 30 --limitRate 64 "$URI" >"$work/rej.out" 2>"$work/rej.err"
check "rejected setup exit" "4" "$?"
set -e
check "rejected setup said once" "error: REJECTED_SETUP (0x3): resumption is not supported" "$(cat "$work/rej.err")"
check "rejected setup prints nothing" "" "$(cat "$work/rej.out")"
# Every refusal at the RSocket level exits 4, said once: a server that answers SETUP with an
# ERROR of each setup code and CONNECTION_ERROR (one per connection, in this order)...
python3 - >"$work/refuser.out" 2>&1 <<'PY' &
import socket, struct, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
print(s.getsockname()[1], flush=True)
for code in (0x001, 0x002, 0x003, 0x101):
    c, _ = s.accept()
    c.recv(65536)
    body = struct.pack(">IHI", 0, 0x0B << 10, code) + b"boom"
    c.sendall(len(body).to_bytes(3, "big") + body)
    time.sleep(0.3)
    c.close()
PY
pids+=($!)
for _ in $(seq 1 100); do [ -s "$work/refuser.out" ] && break; sleep 0.05; done
rport=$(head -1 "$work/refuser.out")
for want in "INVALID_SETUP (0x1)" "UNSUPPORTED_SETUP (0x2)" "REJECTED_SETUP (0x3)" "CONNECTION_ERROR (0x101)"; do
  set +e
  "$bin/rsocket" --timeout 10s -d x "tcp://127.0.0.1:$rport" >/dev/null 2>"$work/refused.err"
  check "$want exit" "4" "$?"
  set -e
  check "$want message" "error: $want: boom" "$(cat "$work/refused.err")"
done
# ... and a server that restarted and no longer knows the session: REJECTED_RESUME.
start_server "$work/resumable.out" --resume 30 tcp://127.0.0.1:0
rsrv=${pids[-1]}
rrport=${URI##*:}
"$bin/rsocket" --timeout 20s --stream --resume 30 --limitRate 1 -d r "$URI" >"$work/rr.out" 2>"$work/rr.err" &
rcli=$!
wait_for "$work/rr.out" '^r$'
{ kill -KILL "$rsrv"; wait "$rsrv" || true; } 2>/dev/null
start_server "$work/resumable2.out" --resume 30 "tcp://127.0.0.1:$rrport"
set +e
wait "$rcli"; check "REJECTED_RESUME exit" "4" "$?"
set -e
grep -q '^error: REJECTED_RESUME (0x4): ' "$work/rr.err" && [ "$(grep -c '^error:' "$work/rr.err")" = 1 ] \
  && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL REJECTED_RESUME message"; cat "$work/rr.err"; }

# A stream without data gets numbers, not empty lines.
check "stream without data counts" "$(seq 1 5)" "$("$bin/rsocket" --timeout 10s --stream --take 5 "$URI")"

# A plain WebSocket echo server sends our own frames back: it does not speak RSocket.
"$bin/ws-echo-server" --port 0 >"$work/wsecho.out" 2>&1 &
pids+=($!)
wait_for "$work/wsecho.out" '^listening on '
set +e
"$bin/rsocket" --timeout 10s -d x "$(awk '/^listening on /{print $3; exit}' "$work/wsecho.out")/" \
  >/dev/null 2>"$work/echo.err"
check "plain WebSocket server exit" "4" "$?"
set -e
check "plain WebSocket server message" "error: the peer does not speak RSocket (the first frame from the server is a SETUP, which only clients send: it looks like an echo server sending our own frames back)" \
  "$(cat "$work/echo.err")"

# Several -m compose composite metadata, each entry with the --mmt of its rank (rsc's names too);
# the last -m may go without one. The echo server sends the metadata back as it got it.
hexmd() { "$bin/rsocket" --timeout 10s --showMetadata "$@" -d x "$uri" | od -An -tx1 | tr -s ' \n' ' '; }
check "two -m: composite" " a1 00 00 05 68 65 6c 6c 6f 85 00 00 02 7b 7d 09 78 0a " \
  "$(hexmd -m hello --mmt text/plain -m '{}' --mmt APPLICATION_JSON)"
check "route, -m, -m without --mmt" " fe 00 00 03 02 72 31 a1 00 00 01 61 86 00 00 01 62 09 78 0a " \
  "$(hexmd -r r1 -m a --mmt TEXT_PLAIN -m b)"
check "one -m: as it is" " 72 61 77 09 78 0a " "$(hexmd -m raw --mmt text/plain)"
"$bin/rsocket" --timeout 10s --debug -m hello --mmt text/plain -m '{}' --mmt application/json -d x "$uri" \
  >/dev/null 2>"$work/md.err"
grep -q '^>> SETUP .*metadata-mime=message/x.rsocket.composite-metadata.v0 ' "$work/md.err" \
  && grep -q '^   entry text/plain 5B "hello"$' "$work/md.err" \
  && grep -q '^   entry application/json 2B "{}"$' "$work/md.err" \
  && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL --debug composite entries"; cat "$work/md.err"; }
"$bin/rsocket" --timeout 10s --debug -m raw --mmt text/plain -d x "$uri" >/dev/null 2>"$work/md.err"
grep -q '^>> SETUP .*metadata-mime=text/plain ' "$work/md.err" && passes=$((passes + 1)) \
  || { fails=$((fails + 1)); echo "FAIL one -m keeps its --mmt as the SETUP type"; cat "$work/md.err"; }
set +e
"$bin/rsocket" -m a -m b -m c --mmt text/plain -d x "$uri" >/dev/null 2>"$work/md.err"
check "-m and --mmt do not pair exit" "2" "$?"
set -e
check "-m and --mmt do not pair message" "rsocket: 1 --mmt for 3 -m: each --mmt gives the MIME type of the -m of the same rank (the last -m may go without one: application/octet-stream)" \
  "$(cat "$work/md.err")"

# A server stopped while a resumable session is detached (its client gone without a word) ends
# that session's streams too: exit status 0, and under ASan no leak of what they held.
start_server "$work/detached.out" --resume 30 tcp://127.0.0.1:0
dsrv=${pids[-1]}
"$bin/rsocket" --stream --resume 30 --limitRate 1 -d x "$URI" >"$work/detached.client" 2>&1 &
dcli=$!
wait_for "$work/detached.client" '^x$'
{ kill -KILL "$dcli"; wait "$dcli" || true; } 2>/dev/null
sleep 0.3
kill -TERM "$dsrv"
set +e; wait "$dsrv"; rc=$?; set -e
check "server stopped with a detached session" "0" "$rc"
[ "$rc" -eq 0 ] || head -30 "$work/detached.out.err"

# SIGTERM while a client streams without end: the echo server completes the stream and stops at
# once; a channel whose requester never completes is cut after the drain time (5 s).
start_server "$work/endless.out" tcp://127.0.0.1:0
esrv=${pids[-1]}
"$bin/rsocket" --stream --limitRate 4 "$URI" >"$work/endless.client" 2>&1 &
ecli=$!
(echo a; sleep 7) | "$bin/rsocket" --channel "$URI" >"$work/open.client" 2>&1 &
ochan=$!
wait_for "$work/endless.client" '^4$'
wait_for "$work/open.client" '^a$'
t0=$(date +%s%N)
kill -TERM "$esrv"
set +e
wait "$ecli"; check "endless stream completed by a stopping server" "0" "$?"
ems=$((($(date +%s%N) - t0) / 1000000))
wait "$esrv"; check "server stopped with an endless stream and an open channel" "0" "$?"
sms=$((($(date +%s%N) - t0) / 1000000))
wait "$ochan"; check "open channel cut: exit" "4" "$?"
set -e
check "open channel cut: message" "$(printf 'a\nerror: CONNECTION_ERROR (0x101): server stopped')" \
  "$(cat "$work/open.client")"
[ "$ems" -lt 2000 ] && [ "$sms" -ge 4500 ] && [ "$sms" -lt 8000 ] && passes=$((passes + 1)) \
  || { fails=$((fails + 1)); echo "FAIL stop times: stream ended after $ems ms, server after $sms ms"; }

# Graceful stop on SIGTERM: exit status 0 (under ASan this also means no leak and no memory error).
kill -TERM "${pids[0]}"
for _ in $(seq 1 100); do kill -0 "${pids[0]}" 2>/dev/null || break; sleep 0.05; done
if kill -0 "${pids[0]}" 2>/dev/null; then fails=$((fails + 1)); echo "FAIL server ignored SIGTERM"; else
  set +e; wait "${pids[0]}"; rc=$?; set -e
  check "server exit status after SIGTERM" "0" "$rc"
  [ "$rc" -eq 0 ] || cat "$work/tcp.out.err"
fi

finish test_cli
