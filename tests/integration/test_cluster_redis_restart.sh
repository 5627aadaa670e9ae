#!/usr/bin/env bash
# Fault test (docs/SCALING.md): kill -9 Redis (no persistence: its boards are lost) under two
# collab-services while 50 clients (web/rsocket-gateway.js in node, through HAProxy and both
# gateways) edit 3 boards, and start it again a second later on the same port. The clients see
# errors while it is down, then recover: the services find their boards gone and start a new
# epoch, the clients reload (HISTORY_GONE or a join with another epoch) and edit on. Afterwards
# every client's shapes equal the board's, and within each epoch every client saw every op offset
# exactly once (the old epoch up to what it had seen). Needs collab-service --redis (skipped
# without).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${RS_BIN:-$here/../../build/bin}
source "$here/../lib.sh"
source "$here/cluster_lib.sh"
need_redis "test_cluster_redis_restart (Redis killed and restarted under two collab-services)"
cluster_needs

cluster_start --services 2
driver_start redis-restart --epoch-change --before 2000 --after 6000
kill -9 "${PID[redis]}"
sleep 1
redis-server "$redis_conf" > "$work/redis2.log" 2>&1 &
pids+=($!)
wait_for "$work/redis2.log" 'Ready to accept connections'
fault_done
driver_finish
grep -q 'redis (pid [0-9]*) exited' "$work/cluster.out" && saw=yes || saw=no
check "scripts/cluster reported the killed Redis" yes "$saw"
cluster_stop
finish test_cluster_redis_restart
