#!/usr/bin/env bash
# rsocket-bench as a tool (not a performance test: nothing here depends on the machine's speed):
# every model completes exactly the requested count with no errors against `rsocket --server`
# over tcp:// and ws://, against ws-echo-server, and through rsocket-gateway (gw-req, gw-sub; the
# RSocket models over /rsocket with --route; board in front of collab-service); -D stops on time; --json is well formed;
# the codec, floor and idle modes report; failures and bad usage give the documented statuses.
set -euo pipefail
bin=${RS_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/build/bin}
bench=$bin/rsocket-bench
source "$(dirname "$0")/../lib.sh"
field() { # json → value of a dotted key
  node -e 'const o=JSON.parse(process.argv[1]); const v=process.argv[2].split(".").reduce((a,k)=>a==null?a:a[k],o); console.log(typeof v==="object"?JSON.stringify(v):String(v))' "$1" "$2"
}
start() { # name, command... → sets $uri (waits for "listening on URI")
  local name=$1; shift
  "$@" > "$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    uri=$(sed -n 's/^listening on \(.*\)$/\1/p' "$work/$name.log" | head -1)
    [ -n "$uri" ] && return 0
    sleep 0.05
  done
  echo "cannot start $name: $(cat "$work/$name.log")"; exit 1
}

start tcp "$bin/rsocket" --server tcp://127.0.0.1:0
tcp=$uri
start ws "$bin/rsocket" --server ws://127.0.0.1:0
ws=$uri
start echo "$bin/ws-echo-server" --port 0
echo_uri=$uri

# Exact counts, no errors, latency present where it is measured.
run() { # label, expected count, args...
  local label=$1 want=$2; shift 2
  local out
  out=$("$bench" --json --no-progress "$@") || { check "$label exit" 0 $?; return; }
  check "$label completed" "$want" "$(field "$out" completed)"
  check "$label errors" 0 "$(field "$out" errors)"
  check "$label first_error" undefined "$(field "$out" first_error)"
  echo "$out"
}
for uri in "$tcp" "$ws"; do
  s=${uri%%:*}
  out=$(run "$s rr" 5000 -n 5000 -m 16 "$uri")
  [ "$(field "$out" latency_us.samples)" == 5000 ] && passes=$((passes + 1)) || {
    fails=$((fails + 1)); echo "FAIL $s rr latency samples: $out"; }
  run "$s rr 3 conns 2 threads" 3000 -n 3000 -c 3 -t 2 -m 4 "$uri" >/dev/null
  run "$s fnf" 2000 -n 2000 --model fnf "$uri" >/dev/null
  run "$s stream" 20000 -n 20000 --model stream -m 3 --window 64 "$uri" >/dev/null
  run "$s channel" 3000 -n 3000 --model channel -m 32 "$uri" >/dev/null
  run "$s rr 4 KiB" 200 -n 200 -m 8 -s 4096 "$uri" >/dev/null
done
out=$(run "ws echo" 4000 -n 4000 -m 32 --model ws "$echo_uri")
check "ws echo bytes in" "$((4000 * 16))" "$(node -e "console.log(Math.round($(field "$out" bytes_in_per_s) * $(field "$out" elapsed_s)))")"
# The fire-and-forget lines reached the server (the trailing request-response confirms them).
check "server printed every fnf" 4000 "$(grep -c '^fnf x' "$work/tcp.log" "$work/ws.log" | awk -F: '{s+=$2} END {print s}')"

# The gateway models through rsocket-gateway (its backend: the tcp echo server).
start gw "$bin/rsocket-gateway" --listen ws://127.0.0.1:0 --route "bench.*=$tcp"
gw=$uri
out=$(run "gw-req" 3000 -n 3000 -c 3 -t 2 -m 16 --model gw-req "$gw")
check "gw-req latency samples" 3000 "$(field "$out" latency_us.samples)"
run "gw-sub" 20000 -n 20000 -c 4 -m 2 --model gw-sub "$gw" >/dev/null
run "gw-req 1 KiB" 500 -n 500 -m 8 -s 1024 --model gw-req "$gw" >/dev/null
# A rej is an error, never an answer: a route no backend serves.
set +e
out=$("$bench" --json -n 50 -m 4 --model gw-req --route other.x "$gw"); rc=$?
set -e
check "gw-req rejected exit" 1 "$rc"
check "gw-req rejected: none completed" 0 "$(field "$out" completed)"
check "gw-req rejected: errors" 50 "$(field "$out" errors)"
[[ "$(field "$out" first_error)" == *'rejected id'*NO_ROUTE* ]] && passes=$((passes + 1)) || {
  fails=$((fails + 1)); echo "FAIL gw-req rejected first_error: $out"; }
# RSocket models through the gateway's /rsocket: --route sends routing metadata, which it needs.
out=$(run "rr through /rsocket (--route)" 2000 -n 2000 -m 16 --route bench.pt "$gw/rsocket")
check "rr through /rsocket: latency samples" 2000 "$(field "$out" latency_us.samples)"
run "stream through /rsocket (--route)" 20000 -n 20000 -m 2 --model stream --route bench.pt "$gw/rsocket" >/dev/null
run "channel through /rsocket (--route)" 3000 -n 3000 -m 32 --model channel --route bench.pt "$gw/rsocket" >/dev/null
run "fnf through /rsocket (--route)" 1000 -n 1000 --model fnf --route bench.pt "$gw/rsocket" >/dev/null
set +e
out=$("$bench" --json -n 20 -m 4 "$gw/rsocket"); rc=$?
set -e
check "rr through /rsocket without --route: exit 1" 1 "$rc"
check "rr through /rsocket without --route: errors" 20 "$(field "$out" errors)"
out=$("$bench" --idle 200 --model gw-req --sources 4 -D 0.2 --json "$gw")
check "idle plain WebSockets open" 200 "$(field "$out" open)"

# --model board: users of collab-service through the gateway, 3 on each of 2 boards, 2 threads
# (so that boards span both). Every op reaches each of its board's 3 subscribers at most, offsets
# without gaps (a gap is an error), every delivery and edit timed.
start collab "$bin/collab-service" --listen tcp://127.0.0.1:0
start gwboard "$bin/rsocket-gateway" --listen ws://127.0.0.1:0 --route "board.*=$uri"
gwboard=$uri
out=$("$bench" --json --no-progress --model board -c 6 -t 2 --boards 2 --rate 20 -D 1 --warmup 0.3 "$gwboard") \
  || { check "board exit" 0 $?; echo "$out"; }
check "board errors" 0 "$(field "$out" errors)"
check "board first_error" undefined "$(field "$out" first_error)"
check "board unit" deliveries "$(field "$out" unit)"
# Each worker measures from the moment its own users are connected, and an op's deliveries are
# counted by whichever worker its subscribers are on: an op sent just before its author's window
# opened can be delivered inside another worker's, so the upper bound has room for that skew
# (a repeated delivery is an error of its own: offsets must come without repeats).
ops=$(field "$out" ops); got=$(field "$out" completed)
[ "$ops" -gt 0 ] && [ "$got" -ge "$ops" ] && [ "$got" -le $((4 * ops)) ] && passes=$((passes + 1)) || {
  fails=$((fails + 1)); echo "FAIL board: $ops edits, $got deliveries (1 to 3 each, up to 4 at the window's edges): $out"; }
check "board delivery latency samples" "$got" "$(field "$out" latency_us.samples)"
check "board edit latency samples" "$ops" "$(field "$out" edit_latency_us.samples)"
all=$(field "$out" everyone_latency_us.samples)
[ "$all" -gt 0 ] && [ "$all" -le "$ops" ] && passes=$((passes + 1)) || {
  fails=$((fails + 1)); echo "FAIL board: $all of $ops edits delivered to everyone: $out"; }
txt=$("$bench" --no-progress --model board -c 2 --boards 1 -D 0.3 "$gwboard")
[[ "$txt" == *"op -> delivered to each subscriber (us)"*"0 errors"* || "$txt" == *"0 errors"*"op -> delivered to each subscriber (us)"* ]] \
  && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL board text: $txt"; }
# A gateway that does not route board.*: every join is a rej, counted as an error.
set +e
out=$("$bench" --json --model board -c 2 -D 1 "$gw"); rc=$?
set -e
check "board without a route exit" 1 "$rc"
check "board without a route errors" 2 "$(field "$out" errors)"
[[ "$(field "$out" first_error)" == *'rejected id 1'*NO_ROUTE* ]] && passes=$((passes + 1)) || {
  fails=$((fails + 1)); echo "FAIL board without a route first_error: $out"; }

# Duration mode stops on time (generous bound) and counts something.
t0=$(date +%s%N)
out=$("$bench" --json -D 1 --warmup 0.2 -m 4 "$tcp")
t1=$(date +%s%N)
el=$(( (t1 - t0) / 1000000 ))
[ "$el" -lt 10000 ] && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL -D 1 took ${el} ms"; }
[ "$(field "$out" completed)" -gt 0 ] && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL -D completed: $out"; }
check "-D elapsed" 1 "$(node -e "console.log(Math.round($(field "$out" elapsed_s)))")"

# Text summary names the figures.
txt=$("$bench" -n 100 "$tcp")
for word in "requests/s" "latency (us): min" "p99.9" "0 errors"; do
  [[ "$txt" == *"$word"* ]] && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL text lacks '$word': $txt"; }
done

# Other modes.
out=$("$bench" --codec -D 0.05 --json)
check "codec rows" 3 "$(node -e "console.log(JSON.parse(process.argv[1]).codec.length)" "$out")"
out=$("$bench" --floor -D 0.2 --json)
[ "$(field "$out" samples)" -gt 0 ] && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL floor: $out"; }
srv_pid=${pids[0]}
for uri in "$tcp" "$ws"; do
  out=$("$bench" --idle 200 --sources 4 --pid "$srv_pid" -D 0.2 --json "$uri")
  check "idle ${uri%%:*} open" 200 "$(field "$out" open)"
  check "idle ${uri%%:*} failed" 0 "$(field "$out" failed)"
  node -e "process.exit(JSON.parse(process.argv[1]).server_bytes_per_connection !== undefined ? 0 : 1)" "$out" \
    && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL idle memory figure: $out"; }
done

# Failures: nothing listening → 3; bad usage → 2 with a message.
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
set +e
"$bench" -n 10 --connect-timeout 2 "tcp://127.0.0.1:$port" > "$work/out" 2> "$work/err"; rc=$?
check "unreachable exit" 3 "$rc"
# One clean line (it said "cannot connect to URI: cannot connect to HOST:PORT: …" after an
# all-zero summary).
check "unreachable message" "rsocket-bench: cannot connect to 127.0.0.1:$port: connection refused" "$(cat "$work/err")"
check "unreachable: no summary" "" "$(cat "$work/out")"
"$bench" -n 10 --model ws "ws://127.0.0.1:$port/" > "$work/out" 2> "$work/err"; rc=$?
check "ws unreachable exit" 3 "$rc"
check "ws unreachable: one line, said once" "1 1" \
  "$(wc -l < "$work/err" | tr -d ' ') $(grep -o 'cannot connect' "$work/err" | wc -l | tr -d ' ')"

# --model ws against servers that do not echo: a failure, said clearly (against an RSocket server
# on ws://, which answers the first message with an ERROR frame, the run reported success).
"$bench" -n 100 --model ws "$ws" > "$work/out" 2> "$work/err"; rc=$?
check "ws against RSocket exit" 1 "$rc"
grep -q "reply 1 is not an echo" "$work/err" && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL ws against RSocket: $(cat "$work/err")"; }
"$bench" -n 100 --model ws "ws://${tcp#tcp://}/" > "$work/out" 2> "$work/err"; rc=$?
check "ws against RSocket over TCP exit" 3 "$rc"
grep -qE "no WebSocket (handshake answer|upgrade within)" "$work/err" && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL ws against TCP: $(cat "$work/err")"; }
"$bench" -n 100 --model gw-req "$echo_uri" > "$work/out" 2> "$work/err"; rc=$?
check "gw-req against an echo server exit" 1 "$rc"
grep -q "answer 1 is not a gateway answer to --model gw-req" "$work/err" && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL gw-req against echo: $(cat "$work/err")"; }
cat > "$work/badws.py" <<'EOF'
# A WebSocket server that does not echo: "once" echoes the first message then closes with 1000;
# "silent" answers nothing.
import base64, hashlib, socket, struct, sys, threading
mode = sys.argv[1]
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(8)
print("listening on ws://127.0.0.1:%d/" % ls.getsockname()[1], flush=True)
def exact(c, n):
    b = b""
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x:
            raise EOFError
        b += x
    return b
def serve(c):
    head = b""
    while b"\r\n\r\n" not in head:
        x = c.recv(4096)
        if not x:
            return
        head += x
    key = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")
           if l.lower().startswith(b"sec-websocket-key:")][0]
    acc = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + acc + b"\r\n\r\n")
    try:
        while True:
            b0, b1 = exact(c, 2)
            n = b1 & 0x7f
            if n == 126:
                n = struct.unpack(">H", exact(c, 2))[0]
            elif n == 127:
                n = struct.unpack(">Q", exact(c, 8))[0]
            m = exact(c, 4)
            p = bytes(x ^ m[i % 4] for i, x in enumerate(exact(c, n)))
            if b0 & 0x0f == 8:
                c.sendall(b"\x88\x02\x03\xe8")
                break
            if mode == "once":
                c.sendall(bytes([0x82, len(p)]) + p + b"\x88\x02\x03\xe8")
    except (EOFError, OSError):
        pass
    c.close()
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
start once python3 "$work/badws.py" once
once=$uri
start silent python3 "$work/badws.py" silent
silent=$uri
"$bench" -n 100 -m 4 --model ws "$once" > "$work/out" 2> "$work/err"; rc=$?
check "ws server closing early exit" 1 "$rc"
grep -q "closed by the server with 1000 after 1 of 100 echoes" "$work/err" && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL ws closing early: $(cat "$work/err")"; }
"$bench" -n 100 --model ws "$silent" > "$work/out" 2> "$work/err"; rc=$?
check "ws silent server exit" 1 "$rc"
grep -q "no echo for 5 s" "$work/err" && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL ws silent: $(cat "$work/err")"; }
for args in "--model nope tcp://x:1" "-n 0 tcp://x:1" "-n 5 -D 1 tcp://x:1" "" "--model ws tcp://x:1" "--warmup 1 tcp://x:1" "--model gw-sub tcp://x:1" "--route a\"b ws://x:1" "--model board -n 5 ws://x:1" "--model board tcp://x:1" "--model board --rate 0 ws://x:1" "--model board --boards 0 ws://x:1"; do
  # shellcheck disable=SC2086
  "$bench" $args > "$work/out" 2> "$work/err"; rc=$?
  check "usage '$args' exit" 2 "$rc"
  grep -q "rsocket-bench:" "$work/err" && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL usage '$args' message"; }
done
set -e
# (Read from a file: with pipefail, grep -q leaving early would make a help of over 4 KiB fail.)
"$bench" --help > "$work/help"
for want in "--model MODEL" "--boards N" "--rate R"; do
  grep -q -- "$want" "$work/help" && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL --help lacks $want"; }
done
version=$(sed -n 's/^#define RS_VERSION_STRING "\(.*\)"/\1/p' "$(dirname "$0")/../../include/rsocket/common.h")
check "--version" "rsocket-bench $version (rsocket-c)" "$("$bench" --version)"

finish rsocket-bench
