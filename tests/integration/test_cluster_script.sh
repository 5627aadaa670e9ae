#!/usr/bin/env bash
# scripts/cluster (docs/SCALING.md): --help; usage errors; without collab-service --redis, a clear
# message and exit 3 (with it, the full topology's --check); --memory --check (HAProxy serves the
# page and /healthz, an edit through one gateway is seen through the other and through HAProxy,
# everything stops cleanly); a running cluster stopped with SIGTERM leaves none of its processes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${RS_BIN:-$here/../../build/bin}
source "$here/../lib.sh"
source "$here/cluster_lib.sh"
cluster_needs
export CLUSTER_BIN=$bin
cl=$root/scripts/cluster

rc=0
"$cl" --help > "$work/help" 2>&1 || rc=$?
check "--help exits 0" 0 "$rc"
grep -q -- '--backend-resume' "$work/help" && got=yes || got=no
check "--help lists the options" yes "$got"
rc=0
"$cl" --memory --services 2 > "$work/usage" 2>&1 || rc=$?
check "--memory with 2 services is a usage error" 2 "$rc"
grep -q 'in-memory boards are not shared' "$work/usage" && got=yes || got=no
check "and says why" yes "$got"
rc=0
"$cl" --port nope > /dev/null 2>&1 || rc=$?
check "a bad --port is a usage error" 2 "$rc"

if has_redis; then
  rc=0
  "$cl" --port 0 --check > "$work/check-redis" 2>&1 || rc=$?
  check "the full topology (Redis, 2 services, 2 gateways, HAProxy): --check" 0 "$rc"
  [ "$rc" -eq 0 ] || cat "$work/check-redis"
else
  rc=0
  "$cl" --port 0 > "$work/noredis" 2>&1 || rc=$?
  check "without collab-service --redis: exit status 3" 3 "$rc"
  grep -q 'has no --redis option' "$work/noredis" && got=yes || got=no
  check "and a message that says so" yes "$got"
fi

rc=0
"$cl" --memory --services 1 --port 0 --check > "$work/check" 2>&1 || rc=$?
check "--memory --check" 0 "$rc"
[ "$rc" -eq 0 ] || cat "$work/check"
for what in 'the page through HAProxy' 'an edit through gw1' 'the board seen through gw2' \
  'the board seen through haproxy' 'every process stopped cleanly'; do
  grep -q "$what *ok" "$work/check" && got=ok || got=missing
  check "--check: $what" ok "$got"
done

# Running, then SIGTERM: every process it started is gone.
cluster_start $(topology_args)
grep -q "^Open: http://127.0.0.1:$front/#board=demo" "$work/cluster.out" && got=yes || got=no
check "it prints the one URL to open" yes "$got"
cluster_stop
left=()
for n in "${!PID[@]}"; do kill -0 "${PID[$n]}" 2> /dev/null && left+=("$n"); done
check "no process left after SIGTERM" "" "${left[*]}"
[ -e "$work/cluster.state" ] && got=yes || got=no
check "the state file is removed at the stop" no "$got"
finish test_cluster_script
