#!/usr/bin/env bash
# rsocket-gateway's flow control and stream life cycle, end to end (docs/GATEWAY.md,
# "Back-pressure, end to end" and "Failures"): tests/support/gw_backend behind the gateway,
# tests/integration/gateway_flow.py as the browsers. Gateway-managed credit against a client that
# stops reading, client-managed credit exactly, channel credit, slow consumers (1008), request
# floods, disconnects cancelling backend streams, 10,000 open subs.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bin=${RS_BIN:-build/bin}
build=${RS_BUILD_DIR:-build}
py=/usr/bin/python3
here=$(dirname "$0")
scenarios=$here/gateway_flow.py
. "$here/gateway_lib.sh"
gw="$bin/rsocket-gateway"
# Memory bounds: a sanitizer build keeps freed memory in quarantine and shadows all of it.
rss_max=128
grep -q '^RS_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2> /dev/null && rss_max=512


# Each gateway has a backend of its own, so that the backend's stats count its streams only.
for g in F S M; do
  start "B$g" "$build/tests/gw_backend" --name "B$g" tcp://127.0.0.1:0
done
start GF "$gw" --listen ws://127.0.0.1:0 --route "*=$(uri BF)"
start GS "$gw" --listen ws://127.0.0.1:0 --route "*=$(uri BS)" --max-buffer 64KiB
start GM "$gw" --listen ws://127.0.0.1:0 --route "*=$(uri BM)" --max-streams-per-client 20000
pf=$(port_of "$(uri GF)")
ps=$(port_of "$(uri GS)")
pm=$(port_of "$(uri GM)")
for p in "$pf" "$ps" "$pm"; do ready "$p"; done

scenario credit "$pf"
scenario client_credit "$pf"
scenario chan "$pf"
scenario disconnect "$pf"
scenario flood "$pf" "$(cat "$work/GF.pid")" "$rss_max"
scenario limit "$pf"
scenario slow "$ps" "$(cat "$work/GS.pid")"
scenario many "$pm"

check "the gateways are still up" yes "$(kill -0 "$(cat "$work/GF.pid")" "$(cat "$work/GS.pid")" \
  "$(cat "$work/GM.pid")" && echo yes)"
# Everything stops on SIGTERM, and no process reported a memory error or a leak (under a
# sanitizer; a release build prints nothing of the kind either way).
for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2> /dev/null || true; done
check "no sanitizer report from any process" "" \
  "$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$work"/*.out 2> /dev/null || true)"
finish test_gateway_flow
