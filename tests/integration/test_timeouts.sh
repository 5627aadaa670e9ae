#!/usr/bin/env bash
# Timeouts end the program. Against a peer that accepts TCP and never sends a byte: `rsocket
# --timeout` ends a stalled TLS handshake, WebSocket upgrade or SETUP wait with status 5 and one
# line; without --timeout the default --connect-timeout (10 s) does; rsocket-bench fails with a
# clear error within its default connect timeout; --timeout also ends an established interaction.
# Every command is bounded by `timeout`, so a regression fails instead of hanging; the time limits
# checked are generous (several times what is needed), so a slow machine does not fail them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${RS_BIN:-$here/../../build/bin}
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
source "$here/../lib.sh"

"$py" "$here/peers.py" silent 127.0.0.1 > "$work/silent.log" 2>&1 &
pids+=($!)
wait_for "$work/silent.log" '^ready'
silent=$(awk '/^ready/{print $2; exit}' "$work/silent.log")

# run NAME LIMIT_S WANT_STATUS command... → $out (stderr and stdout), checks status and time
run() {
  local name=$1 limit=$2 want=$3; shift 3
  local t0 rc ms
  t0=$(date +%s%N)
  set +e
  out=$(timeout 60 "$@" 2>&1)
  rc=$?
  set -e
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  check "$name: exit status" "$want" "$rc"
  if [ "$ms" -lt $((limit * 1000)) ]; then passes=$((passes + 1)); else
    fails=$((fails + 1)); echo "FAIL $name: took $ms ms (limit ${limit} s)"; fi
  echo "  $name: $ms ms"
}

# The default timeouts (10 s) run in the background while the short cases run.
t_default=$(date +%s%N)
(rc=0; timeout 60 "$bin/rsocket" -d x "tcp://127.0.0.1:$silent" > "$work/default.out" 2>&1 || rc=$?; echo $rc > "$work/default.rc"; echo $(( ($(date +%s%N) - t_default) / 1000000 )) > "$work/default.ms") &
bg=($!)
(rc=0; timeout 60 "$bin/rsocket-bench" -n 10 "tcp://127.0.0.1:$silent" > "$work/bench.out" 2>&1 || rc=$?; echo $rc > "$work/bench.rc"; echo $(( ($(date +%s%N) - t_default) / 1000000 )) > "$work/bench.ms") &
bg+=($!)

# --timeout ends every stage: TLS handshake, WebSocket upgrade (plain and over TLS), SETUP answer.
for u in "tls://127.0.0.1:$silent" "ws://127.0.0.1:$silent" "wss://127.0.0.1:$silent" \
  "tcp://127.0.0.1:$silent"; do
  k=(); case $u in tls://* | wss://*) k=(-k) ;; esac # -k only where there is TLS
  run "--timeout 2s ${u%%:*}" 8 5 "$bin/rsocket" "${k[@]}" --timeout 2s -d x "$u"
  check "--timeout 2s ${u%%:*}: one line" "error: timed out after 2000 ms" "$out"
done

# --connect-timeout names the stage that stalled.
run "--connect-timeout tls" 8 5 "$bin/rsocket" -k --connect-timeout 1s -d x "tls://127.0.0.1:$silent"
check "--connect-timeout tls: message" "error: TLS handshake with 127.0.0.1:$silent timed out after 1000 ms" "$out"
run "--connect-timeout ws" 8 5 "$bin/rsocket" --connect-timeout 1s -d x "ws://127.0.0.1:$silent"
check "--connect-timeout ws: message" "error: WebSocket handshake with 127.0.0.1:$silent timed out after 1000 ms" "$out"
run "--connect-timeout tcp" 8 5 "$bin/rsocket" --connect-timeout 1s --stream -d x "tcp://127.0.0.1:$silent"
check "--connect-timeout tcp: message" "error: no answer to SETUP from 127.0.0.1:$silent within 1000 ms" "$out"

# A TLS client against a plain-TCP server (ws-echo-server waits for an HTTP request and takes the
# ClientHello as the start of one): the handshake stalls, --timeout ends it.
start_echo() {
  "$bin/ws-echo-server" --port 0 > "$work/echo.log" 2>&1 &
  pids+=($!)
  echo_uri=$(listening_uri "$work/echo.log")
}
start_echo
run "tls against a plain server" 8 5 "$bin/rsocket" -k --timeout 2s -d x "tls://127.0.0.1:${echo_uri##*:}"
check "tls against a plain server: one line" "error: timed out after 2000 ms" "$out"

# --timeout ends an established interaction too (a channel whose input never ends).
"$bin/rsocket" --server tcp://127.0.0.1:0 > "$work/srv.log" 2>&1 &
pids+=($!)
srv=$(listening_uri "$work/srv.log")
t0=$(date +%s%N)
set +e
timeout 60 "$bin/rsocket" --timeout 1s --channel "$srv" > "$work/chan.out" 2>&1 < <(sleep 30)
rc=$?
set -e
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "established channel, --timeout 1s: exit status" "5" "$rc"
[ "$ms" -lt 6000 ] && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL channel timeout took $ms ms"; }
check "established channel, --timeout 1s: one line" "error: timed out after 1000 ms" "$(cat "$work/chan.out")"

# A server that says nothing until asked is not a silent peer: after a second of silence the
# client's KEEPALIVE gets an answer. (The channel's first payload comes from stdin 3 s later.)
set +e
out=$(timeout 60 "$bin/rsocket" --connect-timeout 2s --channel "$srv" 2>&1 < <(sleep 3; echo quiet))
check "server quiet until asked: exit" "0" "$?"
set -e
check "server quiet until asked: echo" "quiet" "$out"

# rsocket-bench's other modes against the silent peer, with a short --connect-timeout.
run "rsocket-bench ws://, SETUP never answered" 10 3 "$bin/rsocket-bench" --connect-timeout 1 -n 10 "ws://127.0.0.1:$silent"
grep -q 'cannot connect to ws://127.0.0.1:[0-9]*: WebSocket handshake with 127.0.0.1:[0-9]* timed out after 1000 ms' <<<"$out" \
  && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL rsocket-bench ws:// message: $out"; }
run "rsocket-bench --model ws, upgrade never answered" 10 3 "$bin/rsocket-bench" --connect-timeout 1 --model ws -n 10 "ws://127.0.0.1:$silent"
grep -q 'cannot connect to ws://127.0.0.1:[0-9]*: no WebSocket upgrade within 1 s' <<<"$out" \
  && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL rsocket-bench --model ws message: $out"; }
run "rsocket-bench --idle ws://, upgrade never answered" 10 3 "$bin/rsocket-bench" --connect-timeout 1 --idle 2 -D 1 "ws://127.0.0.1:$silent"

# The defaults.
wait "${bg[@]}"
check "no --timeout: the default connect timeout ends it (exit)" "5" "$(cat "$work/default.rc")"
check "no --timeout: message" "error: no answer to SETUP from 127.0.0.1:$silent within 10000 ms" "$(cat "$work/default.out")"
ms=$(cat "$work/default.ms")
echo "  default timeout: $ms ms"
[ "$ms" -ge 9000 ] && [ "$ms" -lt 30000 ] && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL default timeout took $ms ms"; }
check "rsocket-bench, silent peer: exit" "3" "$(cat "$work/bench.rc")"
grep -q "cannot connect to tcp://127.0.0.1:$silent: no answer to SETUP from 127.0.0.1:$silent within 10000 ms" "$work/bench.out" \
  && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL rsocket-bench message:"; cat "$work/bench.out"; }
ms=$(cat "$work/bench.ms")
echo "  rsocket-bench default timeout: $ms ms"
[ "$ms" -lt 30000 ] && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL rsocket-bench took $ms ms"; }

finish test_timeouts
