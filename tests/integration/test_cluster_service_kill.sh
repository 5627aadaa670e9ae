#!/usr/bin/env bash
# Fault test (docs/SCALING.md): kill -9 one of two collab-services sharing the boards through
# Redis while 50 clients (web/rsocket-gateway.js in node, through HAProxy and both gateways) edit
# 3 boards. The subscriptions it carried end with UNAVAILABLE; the clients' resubscribe hooks join
# again (the gateways send it to the other service) and resume board.ops from their offset. No
# client loses its WebSocket. Afterwards every client's shapes equal the board's and every op
# offset was seen exactly once by every client. Needs collab-service --redis (skipped without).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${RS_BIN:-$here/../../build/bin}
source "$here/../lib.sh"
source "$here/cluster_lib.sh"
need_redis "test_cluster_service_kill (kill -9 of one of two collab-services on Redis)"
cluster_needs

cluster_start --services 2
driver_start service-kill --before 2000 --after 5000
kill -9 "${PID[svc1]}"
fault_done
driver_finish
grep -q 'svc1 (pid [0-9]*) exited' "$work/cluster.out" && saw=yes || saw=no
check "scripts/cluster reported the killed service" yes "$saw"
cluster_stop
finish test_cluster_service_kill
