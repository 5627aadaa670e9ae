#!/usr/bin/env bash
# Fault test (docs/SCALING.md): the gateway-service links go through a cutting TCP proxy
# (tests/interop/peers/cut_proxy.mjs), which cuts every one of them 20 times while 50 clients
# (web/rsocket-gateway.js in node, through HAProxy and both gateways) edit 3 boards. The gateways
# run with --backend-resume and the services with --resume: each cut connection reconnects and
# resumes its RSocket session, and the clients see nothing: no disconnect, no lost subscription,
# no failed request. Afterwards every client's shapes equal the board's and every op offset was
# seen exactly once. Topology: scripts/cluster, 2 services on Redis when collab-service has
# --redis, else one in-memory service.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${RS_BIN:-$here/../../build/bin}
source "$here/../lib.sh"
source "$here/cluster_lib.sh"
cluster_needs
peers=$here/../interop/peers
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

nsvc=1
has_redis && nsvc=2
svc_ports=()
backends=()
proxies=()
for ((i = 1; i <= nsvc; i++)); do
  port=$(free_port)
  svc_ports+=("$port")
  node "$peers/cut_proxy.mjs" --target "127.0.0.1:$port" > "$work/proxy$i.out" 2>&1 &
  pids+=($!)
  proxies+=($!)
  wait_for "$work/proxy$i.out" '^proxy listening on '
  backends+=("tcp://127.0.0.1:$(awk '/^proxy listening on /{print $4; exit}' "$work/proxy$i.out")")
done

# shellcheck disable=SC2046
cluster_start $(topology_args) --backend-resume 30 \
  --service-ports "$(IFS=,; echo "${svc_ports[*]}")" --backends "$(IFS=,; echo "${backends[*]}")"
driver_start link-cut --before 1500 --after 2000
for ((k = 1; k <= 20; k++)); do
  for p in "${proxies[@]}"; do kill -USR1 "$p"; done
  sleep 0.3
done
fault_done
driver_finish
for ((i = 1; i <= nsvc; i++)); do
  check "proxy $i cut its connections 20 times" 20 "$(grep -c '^cut: signal' "$work/proxy$i.out" || true)"
done
for g in gw1 gw2; do
  n=$(grep -c 'event=backend_resumed' "$work/cluster/$g.log" || true)
  check "$g resumed its service connections after every cut (20 or more resumptions logged)" yes \
    "$([ "$n" -ge 20 ] && echo yes || echo "$n")"
done
cluster_stop
finish test_cluster_link_cut
