#!/usr/bin/env bash
# rsocket-gateway reloads its routes on SIGHUP without dropping a client (docs/GATEWAY.md,
# "Reloading the configuration"): tests/support/gw_backend processes A, B, C, D behind a gateway
# with two workers started with --config; tests/integration/gateway_reload.py keeps JSON clients
# with open subs and reqs across a reload that removes B, adds C and D and changes a route, then
# sends broken configurations, then 40 reloads in a row under load. A second gateway checks that
# --route on the command line stays.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bin=${RS_BIN:-build/bin}
build=${RS_BUILD_DIR:-build}
py=/usr/bin/python3
here=$(dirname "$0")
scenarios=$here/gateway_reload.py
. "$here/gateway_lib.sh"
gw="$bin/rsocket-gateway"
backend="$build/tests/gw_backend"

for n in A B C D; do start "$n" "$backend" --name "$n" tcp://127.0.0.1:0; done
A=$(uri A)
B=$(uri B)
C=$(uri C)
D=$(uri D)

cfg=$work/gateway.json
cat > "$cfg" << JSON
{"listen": "ws://127.0.0.1:0", "drain_timeout": "10s",
 "routes": {"a.*": ["$A", "$B"], "b.*": "$B", "*": "$A"}}
JSON
start G "$gw" --config "$cfg" --workers 2
pg=$(port_of "$(uri G)")
ready "$pg"
sleep 0.5 # every pool's connections up, not just the first
# An RSocket client (/rsocket) with a stream on B across the reload: 8 elements, 1 s apart.
start RS "$bin/rsocket" --stream -r b.count -d 8 --delayElements 1000 --timeout 60s \
  "ws://127.0.0.1:$pg/rsocket"
wait_for "$work/RS.out" '^1$'
scenario reload "$pg" "$(cat "$work/G.pid")" "$cfg" "$work/G.out" "$A" "$B" "$C" "$D"
check "the gateway is still up" yes "$(kill -0 "$(cat "$work/G.pid")" && echo yes)"
rs_pid=$(cat "$work/RS.pid")
rs_rc=0
wait "$rs_pid" || rs_rc=$?
check "RSocket client: its stream on the removed backend ran to its end (exit status)" 0 "$rs_rc"
check "RSocket client: every element, in order" "1 2 3 4 5 6 7 8" "$(tr '\n' ' ' < "$work/RS.out" | sed 's/ $//')"
check "RSocket client after the reload: b.* goes to C" '"C"' \
  "$(timeout 20 "$bin/rsocket" -r b.whoami "ws://127.0.0.1:$pg/rsocket" 2>&1)"
# Reloads in a row that swap a backend in and out (its index in the pool reused while the
# previous one may still drain), under load.
scenario churn "$pg" "$(cat "$work/G.pid")" "$cfg" "$A" "$B" "$C"

# The command line's --route replaces the file's routes, at the start and at each reload.
cfg2=$work/gateway2.json
echo "{\"listen\": \"ws://127.0.0.1:0\", \"routes\": {\"*\": \"$B\"}}" > "$cfg2"
start G2 "$gw" --config "$cfg2" --route "*=$A"
pg2=$(port_of "$(uri G2)")
ready "$pg2"
scenario cli "$pg2" "$(cat "$work/G2.pid")" "$cfg2" "$work/G2.out" "$A" "$C"

# Everything stops on SIGTERM, and no process reported a memory error or a leak (under a
# sanitizer; a release build prints nothing of the kind either way).
for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2> /dev/null || true; done
check "no sanitizer report from any process" "" \
  "$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$work"/*.out 2> /dev/null || true)"
finish test_gateway_reload
