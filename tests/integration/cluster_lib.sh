# shellcheck shell=bash
# Helpers of the fault tests test_cluster_*.sh (source after tests/lib.sh, with $here and $bin
# set). They run scripts/cluster (the topology of docs/SCALING.md) and cluster_driver.mjs (50
# GatewayClients of web/rsocket-gateway.js through HAProxy) and break something in between.
#   cluster_needs             fails when node's ws package (scripts/npm-deps), haproxy or
#                             redis-server are missing (scripts/deps test installs them)
#   has_redis                 true when collab-service has the Redis engine (--redis)
#   need_redis WHAT           skips the test (exit 77) with a loud message when it has not
#   cluster_start ARGS...     runs scripts/cluster ARGS in the background and waits until it is
#                             up: then PID[name] and PORT[name] (redis, svc1.., gw1.., haproxy),
#                             $front (the HAProxy port), $redis_conf
#   topology_args             scripts/cluster's arguments for the full topology when collab-
#                             service has --redis (2 services on Redis), else one in-memory service
#   driver_start MODE ARGS... runs the driver (its output in $work/driver.out) and waits for its
#                             "fault now" line
#   fault_done                tells the driver the fault is done
#   driver_finish             waits for the driver; its CHECK lines become lib.sh checks
#   cluster_stop              stops scripts/cluster (SIGTERM) and checks that every process it
#                             still had stopped cleanly
root=$(cd "$here/../.." && pwd)
declare -A PID=() PORT=()
front=
redis_conf=
cluster_pid=

cluster_needs() {
  if [ ! -d "$root/tests/interop/node_modules/ws" ]; then
    echo "the npm packages are not installed: run scripts/npm-deps (the clients need node's ws)"
    exit 1
  fi
  command -v node > /dev/null || { echo "node is not installed (scripts/deps test)"; exit 1; }
  command -v haproxy > /dev/null || [ -x /usr/sbin/haproxy ] ||
    { echo "haproxy is not installed (Debian package haproxy: scripts/deps test)"; exit 1; }
  if has_redis; then
    command -v redis-server > /dev/null ||
      { echo "redis-server is not installed (Debian package redis-server: scripts/deps test)"; exit 1; }
  fi
  return 0
}

has_redis() {
  local h
  h=$("$bin/collab-service" --help 2>&1) || true
  [[ $h == *--redis* ]]
}

need_redis() {
  if ! has_redis; then
    {
      echo "################################################################################"
      echo "SKIPPED: $1 needs collab-service --redis (the Redis engine, issue 17), and"
      echo "$bin/collab-service has no such option. This fault test runs once the engine is in."
      echo "################################################################################"
    } >&2
    exit 77
  fi
}

topology_args() {
  if has_redis; then echo "--services 2"; else echo "--memory --services 1"; fi
}

cluster_start() {
  CLUSTER_BIN=$bin CLUSTER_SECONDS=150 "$root/scripts/cluster" --run-dir "$work/cluster" \
    --state "$work/cluster.state" --port 0 "$@" > "$work/cluster.out" 2>&1 &
  cluster_pid=$!
  pids+=($cluster_pid)
  local i
  for ((i = 0; i < 600; i++)); do
    [ -f "$work/cluster.state" ] && break
    kill -0 "$cluster_pid" 2> /dev/null || break
    sleep 0.05
  done
  if [ ! -f "$work/cluster.state" ]; then
    echo "scripts/cluster did not come up:"
    cat "$work/cluster.out"
    exit 1
  fi
  local name pid port
  while read -r name pid port; do
    case $name in
      url | run | ready) ;;
      redis_conf) redis_conf=$pid ;;
      *) PID[$name]=$pid PORT[$name]=$port ;;
    esac
  done < "$work/cluster.state"
  # Its processes are killed on exit too (by PID), should the script itself be killed.
  for name in "${!PID[@]}"; do pids+=("${PID[$name]}"); done
  front=${PORT[haproxy]}
}

driver_start() {
  local mode=$1 g metrics=
  shift
  for g in "${!PORT[@]}"; do [[ $g == gw* ]] && metrics+="${metrics:+,}$g=${PORT[$g]}"; done
  rm -f "$work/fault.done"
  node "$here/cluster_driver.mjs" --url "ws://127.0.0.1:$front/json" --mode "$mode" \
    --clients 50 --boards 3 --fault-file "$work/fault.done" --metrics "$metrics" "$@" \
    > "$work/driver.out" 2> "$work/driver.err" &
  driver_pid=$!
  pids+=($driver_pid)
  local i
  for ((i = 0; i < 900; i++)); do
    grep -q '^fault now' "$work/driver.out" && return 0
    kill -0 "$driver_pid" 2> /dev/null || break
    sleep 0.05
  done
  echo "the driver did not get to its fault (45 s):"
  cat "$work/driver.out" "$work/driver.err"
  exit 1
}

fault_done() { touch "$work/fault.done"; }

driver_finish() {
  local rc=0 tag name want got
  wait "$driver_pid" || rc=$?
  grep '^INFO' "$work/driver.out" || true
  while IFS=$'\t' read -r tag name want got; do
    [ "$tag" = CHECK ] && check "$name" "$want" "$got"
  done < "$work/driver.out"
  check "the driver ran to its end (exit status; stderr: $(tail -c 400 "$work/driver.err"))" 0 "$rc"
}

cluster_stop() {
  local rc=0
  kill -TERM "$cluster_pid" 2> /dev/null || true
  wait "$cluster_pid" || rc=$?
  check "scripts/cluster stopped every process it still had cleanly (exit status)" 0 "$rc"
  if [ "$rc" -ne 0 ]; then
    tail -n 20 "$work/cluster.out"
    local f
    for f in "$work"/cluster/*.log; do
      echo "--- $f"
      tail -n 15 "$f"
    done
  fi
}
