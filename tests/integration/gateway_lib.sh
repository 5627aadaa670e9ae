# shellcheck shell=bash
# Helpers of the test_gateway*.sh scripts (source after tests/lib.sh, with $py, $here and
# $scenarios set: $scenarios is the gateway_*.py file whose scenarios the script runs).
#   scenario NAME ARGS...   runs scenario NAME of $scenarios (bounded); each CHECK line it prints
#                           becomes a lib.sh check, and so does its exit status
#   start NAME CMD...       runs CMD in the background: output in $work/NAME.out, PID in
#                           $work/NAME.pid (killed on exit)
#   uri NAME                the "listening on" URI NAME printed
#   port_of URI             its port
#   ready PORT              waits (10 s at most) until the gateway's /healthz says 200
#                           (also as gw_ready, for a script that wraps ready in its own)
scenario() {
  local out rc=0
  out=$(timeout 120 "$py" "$scenarios" "$@" 2> "$work/py.err") || rc=$?
  while IFS=$'\t' read -r tag name want got; do
    [ "$tag" = CHECK ] && check "$1: $name" "$want" "$got"
  done <<< "$out"
  check "scenario $1 ran to its end (exit status; stderr: $(tail -c 600 "$work/py.err"))" 0 "$rc"
}
start() {
  local name=$1
  shift
  "$@" > "$work/$name.out" 2>&1 &
  pids+=($!)
  echo $! > "$work/$name.pid"
}
uri() { listening_uri "$work/$1.out"; }
port_of() { local u=${1%/}; echo "${u##*:}"; }
gw_ready() {
  for _ in $(seq 1 100); do
    "$py" -c "import sys; sys.path.insert(0, '$here'); import gwclient; sys.exit(gwclient.http_get($1, '/healthz')[0] != 200)" && return 0
    sleep 0.1
  done
}
ready() { gw_ready "$@"; }
