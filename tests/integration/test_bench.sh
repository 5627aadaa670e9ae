#!/usr/bin/env bash
# rsocket-bench as a tool (not a performance test: nothing here depends on the machine's speed):
# every model completes exactly the requested count with no errors against `rsocket --server`
# over tcp:// and ws://, and against ws-echo-server; -D stops on time; --json is well formed;
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
grep -q "cannot connect" "$work/err" && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL unreachable message: $(cat "$work/err")"; }
for args in "--model nope tcp://x:1" "-n 0 tcp://x:1" "-n 5 -D 1 tcp://x:1" "" "--model ws tcp://x:1" "--warmup 1 tcp://x:1"; do
  # shellcheck disable=SC2086
  "$bench" $args > "$work/out" 2> "$work/err"; rc=$?
  check "usage '$args' exit" 2 "$rc"
  grep -q "rsocket-bench:" "$work/err" && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL usage '$args' message"; }
done
set -e
"$bench" --help | grep -q -- "--model MODEL" && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL --help"; }

finish rsocket-bench
