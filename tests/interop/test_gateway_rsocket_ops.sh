#!/usr/bin/env bash
# rsocket-gateway's RSocket passthrough in operation (issue 15): what JSON clients have, RSocket
# clients (rsocket-js 1.0.0-alpha.3 in node, peers/pt_ops_client.mjs and pt_client.mjs; our
# `rsocket` CLI; a raw flooder, peers/rs_flooder.py) have too:
#   1. ?token= on the /rsocket URL authenticates like the SETUP's authentication metadata (the
#      SETUP's wins when both are given); bad tokens and a SETUP too big before authentication
#      get REJECTED_SETUP; --auth-timeout bounds the wait for SETUP
#   2. --rate-limit per connection: over it REJECTED "RATE_LIMITED: …", fire-and-forget dropped
#      and counted, other connections untouched
#   3. SIGTERM: request-responses in flight are answered, then streams end and the connection
#      closes (CONNECTION_CLOSE); what is left at --drain-timeout goes then
#   4. a client flooding fire-and-forget toward a backend that does not read is not read either:
#      the gateway's memory stays bounded, another client is served, and once the backend reads
#      again every fire-and-forget arrives
#   5. the same with a METADATA_PUSH flood (before, it queued without bound toward the backend)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${RS_BIN:-$here/../../build/bin}
source "$here/../lib.sh"
if [ ! -d "$here/node_modules/rsocket-core" ]; then
  echo "test_gateway_rsocket_ops: rsocket-js is not installed; run scripts/npm-deps" >&2
  exit 1
fi
peers=$here/peers
py=/usr/bin/python3

backend() { # NAME → a peers/pt_backend.mjs in $URI
  node "$peers/pt_backend.mjs" > "$work/$1.out" 2> "$work/$1.err" &
  pids+=($!)
  URI=$(listening_uri "$work/$1.out")
}
gateway() { # NAME [gateway options] → its ws:// URI in $GW, its PID in $GWPID
  "$bin/rsocket-gateway" --listen ws://127.0.0.1:0 "${@:2}" > "$work/$1.out" 2> "$work/$1.err" &
  GWPID=$!
  pids+=($GWPID)
  GW=$(listening_uri "$work/$1.out")
  for _ in $(seq 1 100); do [ "$(http "$GW" /healthz | sed -n 1p)" = 200 ] && break; sleep 0.05; done
}
http() { # GW PATH → status, then the body
  "$py" - "${1##*:}" "$2" << 'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
c.request("GET", sys.argv[2])
r = c.getresponse()
print(r.status)
sys.stdout.write(r.read().decode())
PY
}
metric() { # GW NAME{LABELS} → its value ("" when absent)
  http "$1" /metrics | awk -v k="$2" '$1 == k {print $2}'
}
js() { # NAME SCRIPT ARGS...: each "ok"/"FAIL" line of the node client becomes a check
  local name=$1 rc=0
  shift
  timeout 120 node "$@" > "$work/$name.log" 2>&1 || rc=$?
  checks_from "$work/$name.log" "$name: "
  check "$name: ran to its end (exit status; $(tail -c 300 "$work/$name.log"))" 0 "$rc"
}
exits_within() { # PID SECONDS → $exited: "0 STATUS" when it exited in time with STATUS
  local rc=0 st=0
  timeout "$2" tail --pid="$1" -f /dev/null || rc=$?
  wait "$1" || st=$?
  exited="$rc $st"
}

backend b
B=$URI
routes=(--route "echo.*=$B" --route "inf.*=$B" --route "slow.*=$B" --route "later.*=$B" --route "stats=$B")

# ---- 1. authentication: ?token= like the SETUP's token ----
secret=0123456789abcdef0123456789abcdef
token() { # SECRET CLAIMS-JSON → an HS256 token
  node -e '
    const c = require("crypto"), b = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const body = b({alg: "HS256", typ: "JWT"}) + "." + b(JSON.parse(process.argv[2]));
    console.log(body + "." + c.createHmac("sha256", process.argv[1]).update(body).digest("base64url"));
  ' "$1" "$2"
}
now=$(date +%s)
ada=$(token "$secret" "{\"sub\":\"ada\",\"exp\":$((now + 600))}")
expired=$(token "$secret" "{\"sub\":\"ada\",\"exp\":$((now - 10))}")
forged=$(token wrong-secret-wrong-secret '{"sub":"ada"}')
gateway gwjwt "${routes[@]}" --jwt-secret "$secret" --auth-timeout 1s
pt() { js "$1" "$peers/pt_client.mjs" --uri "$GW" "${@:2}"; }
pt url-token --path "/rsocket?token=$ada" --only authenticated
pt url-token-expired --path "/rsocket?token=$expired" --expect-reject "token expired"
pt url-token-forged --path "/rsocket?token=$forged" --expect-reject "token refused: malformed or wrongly signed"
pt setup-wins-good --path "/rsocket?token=$expired" --token "$ada" --only authenticated
pt setup-wins-bad --path "/rsocket?token=$ada" --token "$forged" --expect-reject "token refused: malformed or wrongly signed"
pt no-token --expect-reject "authentication required: a bearer token in the SETUP's authentication metadata (message/x.rsocket.authentication.v0) or ?token= on the URL"
c=("$bin/rsocket" --timeout 10s)
check "rsocket CLI: ?token= on the URL" hi "$("${c[@]}" -r echo.url -d hi "$GW/rsocket?token=$ada" 2>&1)"
out=$("${c[@]}" -r echo.url -d hi "$GW/rsocket?token=not.a.token" 2>&1) && rc=0 || rc=$?
check "rsocket CLI: a bad ?token=: REJECTED_SETUP (exit 4)" "token refused: malformed
4" "$(echo "$out" | grep -o 'token refused: malformed' | head -1)
$rc"
big=$(head -c 12000 /dev/zero | tr '\0' x)
out=$("${c[@]}" -r echo.url -d hi --sd "$big" "$GW/rsocket?token=$ada" 2>&1) && rc=0 || rc=$?
check "SETUP over 9 KiB before authentication: REJECTED_SETUP" "SETUP too big before authentication" \
  "$(echo "$out" | grep -o 'SETUP too big before authentication' | head -1)"
# --auth-timeout: a client that connects to /rsocket and sends no SETUP is closed after it.
check "--auth-timeout: no SETUP within 1 s: closed" closed "$("$py" - "${GW##*:}" << 'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /rsocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
s.settimeout(8)
t0 = time.time()
try:
    while s.recv(4096):
        pass
    print("closed" if time.time() - t0 < 7 else "closed late")
except socket.timeout:
    print("still open after 8 s")
PY
)"
check "log: client_auth for the URL token" yes \
  "$(grep -qE 'event=client_auth session=[0-9a-f]{16} user=ada' "$work/gwjwt.err" && echo yes || echo no)"

# ---- 2. --rate-limit ----
gateway gwrate "${routes[@]}" --rate-limit 2
js rate "$peers/pt_ops_client.mjs" --uri "$GW" rate --rate 2
check "rate: counted (2 refused + 3 dropped) in errors_total{code=\"RATE_LIMITED\"}" 5 \
  "$(metric "$GW" 'rsocket_gateway_errors_total{route="",code="RATE_LIMITED"}')"

# ---- 3. SIGTERM ----
gateway gwdrain "${routes[@]}" --drain-timeout 20s
js drain "$peers/pt_ops_client.mjs" --uri "$GW" drain --gw-pid "$GWPID"
exits_within "$GWPID" 12
check "drain: the gateway exits, status 0, long before --drain-timeout" "0 0" "$exited"
check "drain: the stream's backend stream was cancelled" 1 "$(grep -c '^cancel inf.drain$' "$work/b.out" || true)"
gateway gwdrain2 "${routes[@]}" --drain-timeout 1s
js drain-timeout "$peers/pt_ops_client.mjs" --uri "$GW" drain_timeout --gw-pid "$GWPID"
exits_within "$GWPID" 12
check "drain timeout: the gateway exits, status 0" "0 0" "$exited"
check "drain timeout: the backend stream was cancelled" 1 "$(grep -c '^cancel slow.drain$' "$work/b.out" || true)"

# ---- 4. a flooder toward a backend that does not read ----
"$bin/rsocket" --server tcp://127.0.0.1:0 > "$work/sink.out" 2> "$work/sink.err" &
sink=$!
pids+=($sink)
S=$(listening_uri "$work/sink.out")
gateway gwflood "${routes[@]}" --route "sink.*=$S" --connections-per-backend 1
# Warm up (every path taken once), then the baseline.
check "flood: another client before" hi "$("${c[@]}" -r echo.before -d hi "$GW/rsocket")"
"${c[@]}" -r sink.x --fnf -d warm "$GW/rsocket"
sleep 0.5
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$GWPID/status"; }
# flood MODE NAME: the sink stops reading; a flooder (rs_flooder.py MODE, 4 KiB each) writes for
# 6 s; another client must be answered meanwhile and the gateway's VmRSS grow by under 64 MiB;
# then the sink reads again and $final is every frame the flooder sent. The flooder's SETUP says
# a lifetime of 2 s and it sends no KEEPALIVE: the gateway, which stops reading it for longer,
# must not count that silence against it (before, it closed it: "no keepalive for 2000 ms").
flood() {
  local mode=$1 name=$2 before after during sent growth
  before=$(rss)
  kill -STOP "$sink"
  "$py" "$peers/rs_flooder.py" "${GW##*:}" sink.flood 4096 6 "$mode" 2000 > "$work/$mode.out" 2>&1 &
  flooder=$!
  pids+=($flooder)
  sleep 3
  during=$(echo "$("${c[@]}" -r "echo.during-$mode" -d hi "$GW/rsocket" 2>&1)")
  wait_for "$work/$mode.out" '^sent '
  after=$(rss)
  kill -CONT "$sink"
  check "$name: another client is answered during the flood" hi "$during"
  sent=$(awk '/^sent / {print $2}' "$work/$mode.out")
  check "$name: the flooder sent (frames whole in its socket: the gateway read some)" yes \
    "$([ "${sent:-0}" -gt 100 ] && echo yes || echo "no: $sent")"
  growth=$(((after - before) / 1024))
  check "$name: the gateway's VmRSS grew by less than 64 MiB ($before KiB → $after KiB)" yes \
    "$([ "$growth" -lt 64 ] && echo yes || echo "no: $growth MiB")"
  wait_for "$work/$mode.out" '^final '
  final=$(awk '/^final / {print $2}' "$work/$mode.out")
}
# until_metric NAME{LABELS} WANT: waits up to 30 s for the gateway's counter to reach WANT; $got
until_metric() {
  got=""
  for _ in $(seq 1 300); do
    got=$(metric "$GW" "$1")
    [ "${got:-0}" -ge "$2" ] && break
    sleep 0.1
  done
}
flood fnf flood
# The backend reads again: the gateway drains its output, reads the flooder again, and every
# fire-and-forget arrives.
until_metric 'rsocket_gateway_requests_total{route="sink.*",model="fnf"}' $((final + 1))
check "flood: once the backend reads again, every fire-and-forget went through ($final + the warm-up)" \
  "$((final + 1))" "$got"
check "flood: none dropped" "" "$(metric "$GW" 'rsocket_gateway_errors_total{route="sink.*",code="UNAVAILABLE"}')"
check "flood: another client after" hi "$("${c[@]}" -r echo.after -d hi "$GW/rsocket")"

# ---- 5. the same with METADATA_PUSH (no flow control in RSocket at all) ----
kill "$flooder"
pushes='rsocket_gateway_backend_frames_total{direction="out",type="METADATA_PUSH"}'
base=$(metric "$GW" "$pushes")
flood mdpush "metadata-push flood"
until_metric "$pushes" $((${base:-0} + final))
check "metadata-push flood: once the backend reads again, every push went through ($final)" \
  "$((${base:-0} + final))" "${got:-0}"
check "metadata-push flood: another client after" hi "$("${c[@]}" -r echo.after2 -d hi "$GW/rsocket")"

# Every gateway stops on SIGTERM, and none reported a memory error or a leak (under a sanitizer;
# a release build prints nothing of the kind either way).
kill "$flooder"
for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2> /dev/null || true; done
check "no sanitizer report from any process" "" \
  "$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$work"/*.err 2> /dev/null || true)"
finish test_gateway_rsocket_ops
