#!/usr/bin/env bash
# rsocket-gateway's load balancing and backend failures, end to end (docs/GATEWAY.md, "Load
# balancing" and "Failures"): tests/support/gw_backend processes behind the gateway,
# tests/integration/gateway_lb.py as the browser. p2c avoids a slow backend, round-robin shares
# evenly, a backend with a lease of 0 gets nothing, kill -9 of a backend under load, and its
# return.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bin=${RS_BIN:-build/bin}
build=${RS_BUILD_DIR:-build}
py=/usr/bin/python3
here=$(dirname "$0")
scenarios=$here/gateway_lb.py
. "$here/gateway_lib.sh"
gw="$bin/rsocket-gateway"
backend="$build/tests/gw_backend"

# ready PORT N: waits until the gateway's pools have N connections up (its /healthz says 200 as
# soon as one is; then a little longer for the others, which connect at the same time).
ready() {
  gw_ready "$1"
  sleep 0.5
}

# The slow backend is 5 ms slower; under a sanitizer everything else is several times slower
# too (the gateway's own latency is part of what p2c measures), so the gap is made wider.
slow_ms=5
grep -q '^RS_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2> /dev/null && slow_ms=25
start A "$backend" --name A tcp://127.0.0.1:0
start S "$backend" --name S --delay-ms "$slow_ms" tcp://127.0.0.1:0
A=$(uri A)
S=$(uri S)

# p2c: the slower backend gets under a quarter of the requests.
start P "$gw" --listen ws://127.0.0.1:0 --route "*=$A,$S"
pp=$(port_of "$(uri P)")
ready "$pp"
scenario share "$pp" S 25 2000
kill "$(cat "$work/P.pid")"

# round-robin: both get their half, slow or not.
start RR "$gw" --listen ws://127.0.0.1:0 --route "*=$A,$S" --lb round-robin
prr=$(port_of "$(uri RR)")
ready "$prr"
scenario even "$prr" 400
kill "$(cat "$work/RR.pid")"

# Lease (--backend-lease: the gateway asks for it in SETUP): a backend that grants leases of 0
# requests gets none, the other one all.
start L "$backend" --name L --lease 0 tcp://127.0.0.1:0
start LA "$backend" --name LA --lease 1000 tcp://127.0.0.1:0
start GL "$gw" --listen ws://127.0.0.1:0 --route "*=$(uri L),$(uri LA)" --backend-lease
pl=$(port_of "$(uri GL)")
ready "$pl"
scenario only "$pl" LA 300

# kill -9 of a backend under load, then its return on the same port.
start K1 "$backend" --name K1 tcp://127.0.0.1:0
start K2 "$backend" --name K2 tcp://127.0.0.1:0
K1=$(uri K1)
K2=$(uri K2)
# The reqs answered after 2 s go through a pool of their own (slow.*: the same backends in another
# order make another pool): in one pool, such a 2 s sample stays in the latency of a connection
# that gets no more traffic (the moving average moves only with samples), the returning backend's
# new connections are given the median latency of the others, which can be that stale 2 s, and
# p2c then never picks them.
start K "$gw" --listen ws://127.0.0.1:0 --route "*=$K1,$K2" --route "slow.*=$K2,$K1"
pk=$(port_of "$(uri K)")
ready "$pk"
scenario kill "$pk" "$(cat "$work/K1.pid")" K1 K2
wait "$(cat "$work/K1.pid")" 2> /dev/null || true # reaped quietly (no "Killed" line)
start K1b "$backend" --name K1 "$K1"
check "K1 is back on its port" "$K1" "$(uri K1b)"
scenario back "$pk" K1

check "the gateway is still up" yes "$(kill -0 "$(cat "$work/K.pid")" && echo yes)"
# Everything stops on SIGTERM, and no process reported a memory error or a leak (under a
# sanitizer; a release build prints nothing of the kind either way).
for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2> /dev/null || true; done
check "no sanitizer report from any process" "" \
  "$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$work"/*.out 2> /dev/null || true)"
finish test_gateway_lb
