#!/usr/bin/env bash
# ws-client as an interactive client (wscat/websocat): stdin lines out as messages, replies printed
# one per line in order, a clean close after the end of input, over ws:// and wss:// against
# ws-echo-server; -H headers reach the server; refused connections, refused upgrades, untrusted
# certificates and bad usage give the documented exit statuses and say what went wrong.
set -euo pipefail
bin=${RS_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/build/bin}
client=$bin/ws-client
source "$(dirname "$0")/../lib.sh"
ok() { passes=$((passes + 1)); }
no() { fails=$((fails + 1)); echo "FAIL $*"; }
has() { # label file pattern: the file contains the fixed string
  if grep -qF -- "$3" "$2"; then ok; else no "$1: no '$3' in: $(cat "$2")"; fi
}

"$bin/ws-echo-server" --port 0 > "$work/echo.log" 2>&1 &
pids+=($!)
echo_pid=$!
uri=$(listening_uri "$work/echo.log")

# ---- interactive echo over ws:// ----
check "lines echoed in order" "$(printf 'one\ntwo\nthree')" \
  "$(printf 'one\ntwo\nthree\n' | "$client" --grace 0.2 "$uri/")"
seq 1 5000 > "$work/seq"
check "5000 lines from a pipe" "$(cat "$work/seq")" "$(cat "$work/seq" | "$client" --grace 0.2 "$uri/")"
check "5000 lines from a file" "$(cat "$work/seq")" "$("$client" --grace 0.2 "$uri/" < "$work/seq")"
check "UTF-8, an empty line, a last line without newline" "$(printf 'κόσμε 😀\n\nlast')" \
  "$(printf 'κόσμε 😀\n\nlast' | "$client" --grace 0.2 "$uri/")"
check "default grace, exit 0" "hi 0" "$(set +e; out=$(echo hi | "$client" "$uri/"); echo "$out $?")"
# Regression: closing at once (--grace 0) lost the replies that arrived after our close frame.
check "--grace 0 still prints the replies" "$(printf 'a\nb')" \
  "$(printf 'a\nb\n' | "$client" --grace 0 "$uri/")"
check "--binary: binary messages, printed in hex" "$(printf '6869\n00ff')" \
  "$(printf 'hi\n\x00\xff\n' | "$client" --binary --grace 0.2 "$uri/")"
check "--events" "$(printf 'open\ntext 1 x\nclose 1000 remote \nclosed closed')" \
  "$(echo x | "$client" --events --grace 0.2 "$uri/")"
check "empty input: open, close, exit 0" "0" "$("$client" "$uri/" < /dev/null; echo $?)"

# A line that is not UTF-8 is not sent as text: said on stderr, the others go, exit 1.
set +e
printf 'ok1\n\xff\xfe\nok2\n' | "$client" --grace 0.2 "$uri/" > "$work/out" 2> "$work/err"; rc=$?
set -e
check "invalid UTF-8 line: exit" 1 "$rc"
check "invalid UTF-8 line: the others echoed" "$(printf 'ok1\nok2')" "$(cat "$work/out")"
has "invalid UTF-8 line: message" "$work/err" "line 2 is not valid UTF-8"

# SIGINT closes cleanly (1000) at once, even with stdin still open.
mkfifo "$work/fifo"
"$client" "$uri/" < "$work/fifo" > "$work/int.out" 2>&1 &
cpid=$!
exec 3> "$work/fifo"
echo before >&3
wait_for "$work/int.out" '^before$'
kill -INT "$cpid"
set +e; wait "$cpid"; rc=$?; set -e
exec 3>&-
check "SIGINT: clean close, exit 0" 0 "$rc"

# ---- wss:// ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
"$bin/ws-echo-server" --port 0 --cert "$work/cert.pem" --key "$work/key.pem" > "$work/wss.log" 2>&1 &
pids+=($!)
wss=$(listening_uri "$work/wss.log")
check "wss:// scheme in the listening line" "wss" "${wss%%:*}"
port=${wss##*:}
check "wss:// with --ca" "$(printf 'sec\nure')" \
  "$(printf 'sec\nure\n' | "$client" --ca "$work/cert.pem" --grace 0.2 "wss://localhost:$port/")"
check "wss:// with -k" "k" "$(echo k | "$client" -k --grace 0.2 "wss://127.0.0.1:$port/")"
check "wss:// 2000 lines" "$(seq 1 2000)" \
  "$(seq 1 2000 | "$client" --ca "$work/cert.pem" --grace 0.2 "wss://localhost:$port/")"
set +e
echo x | "$client" "wss://localhost:$port/" > "$work/out" 2> "$work/err"; rc=$?
set -e
check "untrusted certificate: exit" 3 "$rc"
has "untrusted certificate: message" "$work/err" "certificate verify failed"
has "untrusted certificate: hint" "$work/err" "--ca FILE"

# ---- headers, refusals, failures ----
# A tiny HTTP listener: answers the first connection with a 101 (then closes the WebSocket with
# 1000) and the second with 404; writes each request head to $work/req.N.
cat > "$work/listener.py" <<'EOF'
import base64, hashlib, socket, sys
work = sys.argv[1]
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(4)
print("listening on ws://127.0.0.1:%d" % ls.getsockname()[1], flush=True)
for n in (1, 2):
    c, _ = ls.accept()
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = c.recv(4096)
        if not chunk:
            break
        head += chunk
    open(f"{work}/req.{n}", "wb").write(head)
    if n == 1:
        key = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")
               if l.lower().startswith(b"sec-websocket-key:")][0]
        acc = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + acc + b"\r\n\r\n")
        c.sendall(b"\x88\x02\x03\xe8")
        c.settimeout(5)
        try:
            c.recv(64)  # the client's close
        except OSError:
            pass
    else:
        c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    c.close()
EOF
python3 "$work/listener.py" "$work" > "$work/listener.log" 2>&1 &
pids+=($!)
luri=$(listening_uri "$work/listener.log")
set +e
"$client" -H 'Authorization: Bearer t0ken' -H 'X-Trace:  a b  ' -H 'Host: example.test' \
  "$luri/path?q=1" < /dev/null > "$work/out" 2> "$work/err"; rc=$?
set -e
check "server closes first with 1000: exit" 0 "$rc"
tr -d '\r' < "$work/req.1" > "$work/req1"
has "-H Authorization reached the server" "$work/req1" "Authorization: Bearer t0ken"
has "-H value trimmed" "$work/req1" "X-Trace: a b"
has "-H Host replaces the host" "$work/req1" "Host: example.test"
has "path and query" "$work/req1" "GET /path?q=1 HTTP/1.1"
check "one Host line" 1 "$(grep -ci '^host:' "$work/req1")"
set +e
"$client" "$luri/missing" < /dev/null > "$work/out" 2> "$work/err"; rc=$?
set -e
check "404: exit" 3 "$rc"
has "404: message" "$work/err" "the server refused the WebSocket upgrade of /missing: HTTP/1.1 404 Not Found"

free_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
set +e
"$client" "ws://127.0.0.1:$free_port/" < /dev/null > "$work/out" 2> "$work/err"; rc=$?
set -e
check "refused: exit" 3 "$rc"
check "refused: message" "ws-client: cannot connect to 127.0.0.1:$free_port: connection refused" \
  "$(cat "$work/err")"

for args in "-H 'a b: c'" "-H 'Upgrade: h2c'" "-H 'Sec-WebSocket-Protocol: x'" \
  "-H NoColon" "-k" "http://x/" "--grace -1" "--timeout 0" ""; do
  set +e
  eval "\"$client\" $args ${args:+ws://127.0.0.1:1/}" < /dev/null > "$work/out" 2> "$work/err"; rc=$?
  set -e
  check "usage [$args]: exit" 2 "$rc"
  has "usage [$args]: message" "$work/err" "ws-client"
done
set +e
"$client" -H 'Sec-WebSocket-Extensions: x' ws://127.0.0.1:1/ 2> "$work/err"
set -e
has "-H Sec-WebSocket-Extensions names --deflate" "$work/err" "use --deflate"

"$client" --help > "$work/help"
has "--help" "$work/help" "--header"
"$client" --version > "$work/version"
has "--version" "$work/version" "ws-client "

# The server stops (1001) while stdin is open: the client says so and exits 1.
mkfifo "$work/fifo2"
"$client" "$uri/" < "$work/fifo2" > "$work/stop.out" 2> "$work/stop.err" &
cpid=$!
exec 4> "$work/fifo2"
echo ping >&4
wait_for "$work/stop.out" '^ping$'
kill -TERM "$echo_pid"
set +e; wait "$cpid"; rc=$?; set -e
exec 4>&-
check "server stopping: exit" 1 "$rc"
has "server stopping: message" "$work/stop.err" "the server closed the WebSocket with 1001"

finish test_ws_client
