#!/usr/bin/env bash
# collab-service end to end through rsocket-gateway, real processes on loopback: joins, edits
# (add, move, update, delete, an edit to a deleted shape refused), ops from an offset,
# HISTORY_GONE (old offset, other epoch, a restarted service), presence with joins and leaves
# (a browser that disconnects or unsubscribes leaves, a member with no stream after
# --member-timeout, a direct RSocket client when its connection closes), cursors relayed and
# coalesced, chat, bad input. The driver is collab_driver.py (stdlib WebSocket client); it restarts the service once.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${RS_BIN:-$here/../../build/bin}
source "$here/../lib.sh"

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
svc=("$bin/collab-service" --listen "tcp://127.0.0.1:$port" --history 5 --member-timeout 1)
"${svc[@]}" >"$work/svc.out" 2>"$work/svc.err" &
svc_pid=$!
pids+=($svc_pid)
check "service listens" "tcp://127.0.0.1:$port" "$(listening_uri "$work/svc.out")"

# One backend connection: the driver's ordering checks (cursors before a re-request) rely on it.
"$bin/rsocket-gateway" --listen ws://127.0.0.1:0 --connections-per-backend 1 \
  --route "board.*=tcp://127.0.0.1:$port" --route "chat.*=tcp://127.0.0.1:$port" \
  >"$work/gw.out" 2>"$work/gw.err" &
pids+=($!)
gw=$(listening_uri "$work/gw.out")
gw_port=${gw##*:}
wait_for_backend() {
  for _ in $(seq 1 100); do
    /usr/bin/python3 - "$gw_port" <<'PY' && return 0
import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=2).status == 200 else 1)
except Exception:
    sys.exit(1)
PY
    sleep 0.1
  done
  echo "the gateway never reached the service"; cat "$work/gw.err"; exit 1
}
wait_for_backend

rc=0
timeout 120 /usr/bin/python3 "$here/collab_driver.py" "$gw_port" "$port" "$svc_pid" -- "${svc[@]}" \
  >"$work/driver.out" 2>"$work/driver.err" || rc=$?
set +e; wait "$svc_pid"; svc_rc=$?; set -e
restarted=$(awk '/^pid /{print $2}' "$work/driver.out")
[ -n "$restarted" ] && pids+=($restarted)
cat "$work/driver.out" | grep -v '^pid '
passes=$((passes + $(grep -c '^ok ' "$work/driver.out" || true)))
if [ "$rc" -ne 0 ]; then
  fails=$((fails + 1)); echo "FAIL driver exit status $rc"; cat "$work/driver.err"; tail -20 "$work/gw.err"
fi
check "first service exit status after SIGTERM" 0 "$svc_rc"
[ "$svc_rc" -eq 0 ] || head -50 "$work/svc.err"
finish test_collab
