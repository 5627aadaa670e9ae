#!/usr/bin/env bash
# rsocket-gateway's client protocol, end to end (docs/GATEWAY.md is the contract): real
# processes on loopback, tests/support/gw_backend and `rsocket --server` behind the gateway, and
# tests/integration/gateway_protocol.py as the browser. Every message type and error code,
# malformed input of every kind, route patterns, the config file, --help/--version, /healthz,
# SIGTERM. Flow control and failures are in test_gateway_flow.sh and test_gateway_lb.sh.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bin=${RS_BIN:-build/bin}
build=${RS_BUILD_DIR:-build}
py=/usr/bin/python3
here=$(dirname "$0")
scenarios=$here/gateway_protocol.py
. "$here/gateway_lib.sh"
gw="$bin/rsocket-gateway"


# start NAME CMD...: runs CMD in the background (output in $work/NAME.out, PID in $work/NAME.pid);
# uri NAME then waits for its "listening on" line and prints the URI.

# ---- the command line ----
check "--help exits 0 and lists every option" 0 "$("$gw" --help > "$work/help" 2>&1; echo $?)"
for o in --listen --route --config --connections-per-backend --lb --max-message --max-buffer \
  --max-clients --max-streams-per-client --credit-window --request-timeout --workers; do
  check "--help lists $o" yes "$(grep -q -- "$o" "$work/help" && echo yes || echo no)"
done
check "--version" yes "$("$gw" --version | grep -q '^rsocket-gateway (rsocket-c) [0-9]' && echo yes)"
usage_error() { # ARGS...: the exit status and whether stderr explains
  local rc=0
  "$gw" "$@" > "$work/usage.out" 2> "$work/usage.err" || rc=$?
  echo "$rc $(head -c 300 "$work/usage.err" | head -1)"
}
check "no --listen: usage error" "2 rsocket-gateway: --listen URI is required (e.g. ws://127.0.0.1:8080)" \
  "$(usage_error --route '*=tcp://127.0.0.1:1')"
check "no --route: usage error" "2 rsocket-gateway: at least one --route PATTERN=URI is required" \
  "$(usage_error --listen ws://127.0.0.1:0)"
check "an unknown option: exit 2" 2 "$(usage_error --bogus 1 | cut -d' ' -f1)"
check "--listen tcp://: exit 2" 2 \
  "$(usage_error --listen tcp://127.0.0.1:0 --route '*=tcp://127.0.0.1:1' | cut -d' ' -f1)"
check "a bad route pattern: exit 2" 2 \
  "$(usage_error --listen ws://127.0.0.1:0 --route 'a*b=tcp://127.0.0.1:1' | cut -d' ' -f1)"
check "a pattern given twice: exit 2" 2 "$(usage_error --listen ws://127.0.0.1:0 \
  --route 'a=tcp://127.0.0.1:1' --route 'a=tcp://127.0.0.1:2' | cut -d' ' -f1)"
check "a bad backend URI: exit 2" 2 \
  "$(usage_error --listen ws://127.0.0.1:0 --route 'a=nope://x' | cut -d' ' -f1)"
check "a bad size: exit 2" 2 "$(usage_error --listen ws://127.0.0.1:0 --route '*=tcp://127.0.0.1:1' \
  --max-message 12XB | cut -d' ' -f1)"
check "a bad duration: exit 2" 2 "$(usage_error --listen ws://127.0.0.1:0 \
  --route '*=tcp://127.0.0.1:1' --request-timeout soon | cut -d' ' -f1)"
check "--lb other: exit 2" 2 "$(usage_error --listen ws://127.0.0.1:0 --route '*=tcp://127.0.0.1:1' \
  --lb random | cut -d' ' -f1)"
check "a port in use: exit 1" 1 "$(
  "$py" -c 'import socket,time,sys; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(5)' > "$work/busy" &
  wait_for "$work/busy" '[0-9]'
  usage_error --listen "ws://127.0.0.1:$(cat "$work/busy")" --route '*=tcp://127.0.0.1:1' | cut -d' ' -f1)"

# ---- the config file's errors: each names the file (and the line and column where it can) ----
cfg=$work/bad.json
config_error() { # JSON: prints the exit status and the first line of stderr
  printf '%s\n' "$1" > "$cfg"
  usage_error --config "$cfg"
}
check "config: bad JSON names file:line:column" yes "$(config_error $'{\n  "listen": "ws://127.0.0.1:0",\n  "lb" "p2c"\n}' |
  grep -q "^2 rsocket-gateway: $cfg:3:[0-9]*: " && echo yes)"
check "config: an unknown key names the file and the key" yes \
  "$(config_error '{"listen":"ws://127.0.0.1:0","routes":{"*":"tcp://127.0.0.1:1"},"bogus":1}' |
    grep -q "^2 rsocket-gateway: $cfg.*bogus" && echo yes)"
check "config: a duplicate key" yes \
  "$(config_error '{"listen":"ws://127.0.0.1:0","lb":"p2c","lb":"p2c","routes":{"*":"tcp://127.0.0.1:1"}}' |
    grep -q "^2 rsocket-gateway: $cfg" && echo yes)"
check "config: a bad value names the setting" yes \
  "$(config_error '{"listen":"ws://127.0.0.1:0","routes":{"*":"tcp://127.0.0.1:1"},"max_streams_per_client":0}' |
    grep -q "^2 rsocket-gateway: $cfg.*max-streams-per-client" && echo yes)"
check "config: a value that is not a string or number" yes \
  "$(config_error '{"listen":"ws://127.0.0.1:0","routes":{"*":"tcp://127.0.0.1:1"},"workers":[2]}' |
    grep -q "^2 rsocket-gateway: $cfg.*workers" && echo yes)"
check "config: routes not an object" yes \
  "$(config_error '{"listen":"ws://127.0.0.1:0","routes":["tcp://127.0.0.1:1"]}' |
    grep -q "^2 rsocket-gateway: $cfg.*routes" && echo yes)"
check "config: not an object" yes "$(config_error '[1]' | grep -q "^2 rsocket-gateway: $cfg" && echo yes)"
check "config: a missing file" yes \
  "$(usage_error --config "$work/none.json" | grep -q "^2 rsocket-gateway: .*none.json" && echo yes)"

# ---- backends ----
start A "$build/tests/gw_backend" --name A tcp://127.0.0.1:0
A=$(uri A)
start B "$build/tests/gw_backend" --name B tcp://127.0.0.1:0
B=$(uri B)
start C "$build/tests/gw_backend" --name C tcp://127.0.0.1:0
C=$(uri C)
start D "$build/tests/gw_backend" --name D tcp://127.0.0.1:0
D=$(uri D)
start R "$bin/rsocket" --server tcp://127.0.0.1:0
R=$(uri R)

# G1: '*' and patterns of every kind; down.* has no backend up (port 1 refuses).
start G1 "$gw" --listen ws://127.0.0.1:0 --route "*=$A" --route "rooms.*=$B" \
  --route "rooms.whoami=$C" --route "rooms.deep.*=$C" --route "rs.*=$R" \
  --route "down.*=tcp://127.0.0.1:1"
G1=$(uri G1)
# G2 from a config file: no '*', a short request timeout, few streams, small messages; the
# command line overrides the file (--max-message).
cat > "$work/gateway.json" << EOF
{
  "listen": "ws://127.0.0.1:0",
  "routes": {"rooms.*": "$B", "echo": ["$B"], "x.*": "$D"},
  "request_timeout": "500ms",
  "max-streams-per-client": 4,
  "max_message": "1MiB",
  "connections_per_backend": 1
}
EOF
start G2 "$gw" --config "$work/gateway.json" --max-message 4KiB
G2=$(uri G2)
p1=$(port_of "$G1")
p2=$(port_of "$G2")
check "listening on ws://127.0.0.1:PORT (no trailing slash)" yes \
  "$([[ $G1 =~ ^ws://127\.0\.0\.1:[0-9]+$ ]] && echo yes)"
# The pools connect in the background: wait until /healthz says a backend is up.
for _ in $(seq 1 100); do
  "$py" -c "import sys; sys.path.insert(0, '$here'); import gwclient; sys.exit(gwclient.http_get($p1, '/healthz')[0] != 200 or gwclient.http_get($p2, '/healthz')[0] != 200)" && break
  sleep 0.1
done

scenario errors "$p1" "$p2"
scenario messages "$p1"
scenario malformed "$p1" "$p2"
scenario routes "$p1" "$p2"
scenario http "$p1"
scenario rsocket "$p1"
check "rsocket --server got the fnf" yes "$(wait_for "$work/R.out" 'fnf {"fnf":"gw"}' > /dev/null && echo yes)"

# A route given on the command line replaces the file's routes.
start G5 "$gw" --config "$work/gateway.json" --route "other.*=$A"
G5=$(uri G5)
"$py" - "$(port_of "$G5")" << EOF > "$work/g5"
import sys, time
sys.path.insert(0, "$here")
from gwclient import *
c = Client(int(sys.argv[1]))
print(error_of(c.call({"type": "req", "id": 1, "route": "rooms.whoami"})))
for _ in range(100):
    m = c.call({"type": "req", "id": 1, "route": "other.whoami"})
    if m["type"] == "cfm":
        break
    time.sleep(0.05)
print(m.get("data"))
EOF
check "--route on the command line replaces the file's routes" "rej NO_ROUTE A" "$(tr '\n' ' ' < "$work/g5" | sed 's/ $//')"
kill "$(cat "$work/G5.pid")"

# /healthz is 503 while no backend is up, and requests are refused at once.
start G4 "$gw" --listen ws://127.0.0.1:0 --route "*=tcp://127.0.0.1:1"
G4=$(uri G4)
scenario healthz_down "$(port_of "$G4")"
kill "$(cat "$work/G4.pid")"

# --max-clients
start G3 "$gw" --listen ws://127.0.0.1:0 --route "*=$A" --max-clients 2
G3=$(uri G3)
scenario max_clients "$(port_of "$G3")"
kill "$(cat "$work/G3.pid")"

# The gateway survived all of the above.
check "the gateway is still up after every scenario" yes \
  "$(kill -0 "$(cat "$work/G1.pid")" && kill -0 "$(cat "$work/G2.pid")" && echo yes)"

# SIGTERM drains (the scenario sends it): clients get close 1001, the process exits 0.
g1=$(cat "$work/G1.pid")
scenario sigterm "$p1" "$g1"
rc=0
timeout 15 tail --pid="$g1" -f /dev/null || rc=$?
check "SIGTERM: the gateway exits within 15 s" 0 "$rc"
wait "$g1" && grc=0 || grc=$?
check "SIGTERM: exit status 0" 0 "$grc"

# Everything stops on SIGTERM, and no process reported a memory error or a leak (under a
# sanitizer; a release build prints nothing of the kind either way).
for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2> /dev/null || true; done
check "no sanitizer report from any process" "" \
  "$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$work"/*.out 2> /dev/null || true)"
finish test_gateway
