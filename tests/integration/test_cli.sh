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
  set +e
  "$bin/rsocket" -d x "tls://localhost:$port" >/dev/null 2>"$work/tls.err"
  check "tls untrusted exit" "3" "$?"
  set -e
  grep -qi 'certificate' "$work/tls.err" && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL untrusted cert message:"; cat "$work/tls.err"; }
  check "tls insecure" "x" "$("$bin/rsocket" -k -d x "tls://localhost:$port")"
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
"$bin/rsocket" --help | grep -q -- '--limitRate'; check "help" "0" "$?"
"$bin/rsocket" --version | grep -q '^rsocket '; check "version" "0" "$?"
set -e

# Graceful stop on SIGTERM: exit status 0 (under ASan this also means no leak and no memory error).
kill -TERM "${pids[0]}"
for _ in $(seq 1 100); do kill -0 "${pids[0]}" 2>/dev/null || break; sleep 0.05; done
if kill -0 "${pids[0]}" 2>/dev/null; then fails=$((fails + 1)); echo "FAIL server ignored SIGTERM"; else
  set +e; wait "${pids[0]}"; rc=$?; set -e
  check "server exit status after SIGTERM" "0" "$rc"
  [ "$rc" -eq 0 ] || cat "$work/tcp.out.err"
fi

echo "test_cli: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
