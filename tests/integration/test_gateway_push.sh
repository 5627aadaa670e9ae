#!/usr/bin/env bash
# rsocket-gateway: pushes from backends (docs/GATEWAY.md "Pushes from backends") across two
# workers, push.user with JWT clients, and the SIGTERM drain (a req in flight is answered before
# its client gets 1001). tests/support/gw_backend's pushto route makes the backend push.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bin=${RS_BIN:-build/bin}
build=${RS_BUILD_DIR:-build}
py=/usr/bin/python3
here=$(dirname "$0")
scenarios=$here/gateway_push.py
. "$here/gateway_lib.sh"

gateway() { # NAME CONNECTIONS ARGS... → $port, $gpid (once CONNECTIONS backend connections are up)
  "$bin/rsocket-gateway" --listen ws://127.0.0.1:0 --route "*=$backend" "${@:3}" > "$work/$1.out" 2> "$work/$1.err" &
  gpid=$!
  pids+=($gpid)
  local u
  u=$(listening_uri "$work/$1.out")
  port=${u##*:}
  for _ in $(seq 1 100); do grep -c backend_connected "$work/$1.err" | grep -q "^$2$" && break; sleep 0.05; done
}

"$build/tests/gw_backend" tcp://127.0.0.1:0 > "$work/backend.out" 2>&1 &
pids+=($!)
backend=$(listening_uri "$work/backend.out")

gateway two 4 --workers 2
scenario fanout "$port"

# RSocket clients (/rsocket) get a push as REQUEST_FNF with the route in composite metadata: one
# listens while another (on the other worker or the same) has the backend push to everyone.
peers=$here/../interop/peers
node "$peers/pt_push_client.mjs" --uri "ws://127.0.0.1:$port" --wait-ms 3000 > "$work/rs1.out" 2>&1 &
listener=$!
pids+=($listener)
wait_for "$work/rs1.out" '^connected'
timeout 20 node "$peers/pt_push_client.mjs" --uri "ws://127.0.0.1:$port" --trigger push.all '{"to":"rsocket"}' \
  --wait-ms 500 > "$work/rs2.out" 2>&1 || true
wait "$listener" || true
check "RSocket client: the push as REQUEST_FNF with its route" 'push push.all {"to":"rsocket"}' \
  "$(grep '^push ' "$work/rs1.out")"
check "RSocket client that asked: it too" 'push push.all {"to":"rsocket"}' "$(grep '^push ' "$work/rs2.out")"

secret=0123456789abcdef0123456789abcdef
tok() { "$py" -c "import jwt; print(jwt.encode({'sub': '$1'}, '$secret', algorithm='HS256'))"; }
gateway auth 2 --jwt-secret "$secret"
scenario users "$port" "$(tok ada)" "$(tok bob)"

gateway drain 2
scenario drain "$port" "$gpid"
for _ in $(seq 1 100); do kill -0 "$gpid" 2> /dev/null || break; sleep 0.05; done
check "drain: the gateway exited" gone "$(kill -0 "$gpid" 2> /dev/null && echo running || echo gone)"
finish "gateway pushes and drain"
