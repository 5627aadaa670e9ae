#!/usr/bin/env bash
# Fault test (docs/SCALING.md): kill -9 one of the two gateways behind HAProxy while 50 clients
# (web/rsocket-gateway.js in node) edit 3 boards through it. Its clients lose their WebSocket,
# reconnect through HAProxy to the other gateway, join again and resume board.ops from their
# offset. Afterwards every client's shapes equal the board's and every op offset was seen exactly
# once by every client. Topology: scripts/cluster, with 2 services on Redis when collab-service
# has --redis, else one in-memory service behind both gateways.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${RS_BIN:-$here/../../build/bin}
source "$here/../lib.sh"
source "$here/cluster_lib.sh"
cluster_needs

# shellcheck disable=SC2046
cluster_start $(topology_args)
driver_start gateway-kill --victim gw1 --before 2000 --after 4000
kill -9 "${PID[gw1]}"
fault_done
driver_finish
grep -q 'gw1 (pid [0-9]*) exited' "$work/cluster.out" && saw=yes || saw=no
check "scripts/cluster reported the killed gateway" yes "$saw"
cluster_stop
finish test_cluster_gateway_kill
