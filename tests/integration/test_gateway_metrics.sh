#!/usr/bin/env bash
# rsocket-gateway's /metrics (Prometheus text format, checked by promtool when installed: Debian
# `prometheus`) and /healthz, counting real traffic; its structured logs (text and JSON lines).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bin=${RS_BIN:-build/bin}
py=/usr/bin/python3

"$bin/rsocket" --server tcp://127.0.0.1:0 > "$work/backend.out" 2>&1 &
pids+=($!)
backend=$(listening_uri "$work/backend.out")
"$bin/rsocket-gateway" --listen ws://127.0.0.1:0 --route "rooms.*=$backend" \
  --route "down.*=tcp://127.0.0.1:1" --log-format json > "$work/gw.out" 2> "$work/gw.err" &
gw=$!
pids+=($gw)
uri=$(listening_uri "$work/gw.out")
port=${uri##*:}

get() { # PATH -> "STATUS" then the body
  "$py" - "$port" "$1" << 'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
c.request("GET", sys.argv[2])
r = c.getresponse()
print(r.status)
sys.stdout.write(r.read().decode())
PY
}
metric() { # NAME{LABELS} -> its value in $work/metrics
  awk -v k="$1" '$1 == k {print $2}' "$work/metrics"
}

for _ in $(seq 1 100); do [ "$(get /healthz | head -1)" = 200 ] && break; sleep 0.05; done
check "/healthz: a backend is up" 200 "$(get /healthz | head -1)"

# Traffic: 3 req, a sub with n=2 (2 ind), a bad message, an unknown route, a ping, a route whose
# backend is down.
printf '%s\n' '{"type":"req","id":1,"route":"rooms.a","data":1}' \
  '{"type":"req","id":2,"route":"rooms.a","data":2}' '{"type":"req","id":3,"route":"rooms.b"}' \
  '{"type":"sub","id":4,"route":"rooms.feed","data":"x","n":2}' 'nope' \
  '{"type":"req","id":5,"route":"other"}' '{"type":"ping","id":6}' \
  '{"type":"req","id":7,"route":"down.x"}' |
  timeout 20 "$bin/ws-client" --grace 1 "ws://127.0.0.1:$port/" > "$work/client.out"
check "client got 3 cfm" 3 "$(grep -c '"cfm"' "$work/client.out")"
check "client got 2 ind" 2 "$(grep -c '"ind"' "$work/client.out")"
sleep 0.5 # the backends' figures are copied every 250 ms

get /metrics > "$work/metrics.raw"
check "/metrics: 200" 200 "$(head -1 "$work/metrics.raw")"
tail -n +2 "$work/metrics.raw" > "$work/metrics"
if command -v promtool > /dev/null; then
  check "promtool check metrics" ok "$(promtool check metrics < "$work/metrics" > "$work/promtool" 2>&1 && echo ok || cat "$work/promtool")"
else
  echo "promtool not installed (Debian package prometheus): format not checked"
fi
check "clients accepted" 1 "$(metric 'rsocket_gateway_clients_accepted_total{protocol="json"}')"
check "clients now" 0 "$(metric 'rsocket_gateway_clients{protocol="json"}')"
check "req messages in" 5 "$(metric 'rsocket_gateway_messages_total{direction="in",type="req"}')"
check "invalid messages in" 1 "$(metric 'rsocket_gateway_messages_total{direction="in",type="invalid"}')"
check "cfm out" 3 "$(metric 'rsocket_gateway_messages_total{direction="out",type="cfm"}')"
check "ind out" 2 "$(metric 'rsocket_gateway_messages_total{direction="out",type="ind"}')"
check "pong out" 1 "$(metric 'rsocket_gateway_messages_total{direction="out",type="pong"}')"
check "rej out" 3 "$(metric 'rsocket_gateway_messages_total{direction="out",type="rej"}')"
check "requests rooms.* req" 3 "$(metric 'rsocket_gateway_requests_total{route="rooms.*",model="req"}')"
check "requests rooms.* sub" 1 "$(metric 'rsocket_gateway_requests_total{route="rooms.*",model="sub"}')"
check "errors: bad request without route" 1 "$(metric 'rsocket_gateway_errors_total{route="",code="BAD_REQUEST"}')"
check "errors: no route" 1 "$(metric 'rsocket_gateway_errors_total{route="",code="NO_ROUTE"}')"
check "errors: unavailable on down.*" 1 "$(metric 'rsocket_gateway_errors_total{route="down.*",code="UNAVAILABLE"}')"
check "backend frames: 3 REQUEST_RESPONSE out" 3 \
  "$(metric 'rsocket_gateway_backend_frames_total{direction="out",type="REQUEST_RESPONSE"}')"
check "backend frames: the sub's REQUEST_STREAM counted" yes \
  "$([ -n "$(metric 'rsocket_gateway_backend_frames_total{direction="out",type="REQUEST_STREAM"}')" ] && echo yes || echo no)"
check "backend connections (2 per backend)" 2 \
  "$(metric "rsocket_gateway_backend_connections{backend=\"$backend\",pool=\"rooms.*\"}")"
check "down backend: no connection" 0 \
  "$(metric 'rsocket_gateway_backend_connections{backend="tcp://127.0.0.1:1",pool="down.*"}')"
check "down backend: failures counted" yes \
  "$(awk '$1 ~ /backend_failures_total\{backend="tcp:\/\/127.0.0.1:1"/ && $2 > 0 {print "yes"}' "$work/metrics")"
check "streams open back to 0" 0 "$(metric 'rsocket_gateway_streams_open{model="request_stream"}')"
check "client bytes in > 0" yes "$(awk '$1 ~ /client_bytes_total\{direction="in"/ && $2 > 0 {print "yes"}' "$work/metrics")"

# Logs: JSON lines, one per event, valid JSON each; the down backend is logged once per
# connection, not at every retry.
check "logs are JSON lines" ok "$("$py" -c '
import json, sys
for l in open(sys.argv[1]):
    json.loads(l)
print("ok")' "$work/gw.err" 2>&1)"
check "client_open logged" 1 "$(grep -c '"event":"client_open"' "$work/gw.err")"
check "client_close logged with its code" 1 "$(grep '"event":"client_close"' "$work/gw.err" | grep -c '"code":"1000"')"
retries=$(grep -c '"event":"backend_retry"' "$work/gw.err")
check "a down backend is logged once per connection ($retries lines)" 2 "$retries"

# Text format and no logs.
kill "$gw"
"$bin/rsocket-gateway" --listen ws://127.0.0.1:0 --route "*=$backend" > "$work/gw2.out" 2> "$work/gw2.err" &
pids+=($!)
uri2=$(listening_uri "$work/gw2.out")
printf '%s\n' '{"type":"ping","id":1}' | timeout 10 "$bin/ws-client" --grace 0.3 "$uri2/" > /dev/null
sleep 0.3
check "text log: logfmt client_open" 1 "$(grep -cE '^[0-9T:.-]+Z event=client_open session=[0-9a-f]{16} peer=127.0.0.1:[0-9]+ protocol=json$' "$work/gw2.err")"
"$bin/rsocket-gateway" --listen ws://127.0.0.1:0 --route "*=$backend" --log-format none > "$work/gw3.out" 2> "$work/gw3.err" &
pids+=($!)
uri3=$(listening_uri "$work/gw3.out")
printf '%s\n' '{"type":"ping","id":1}' | timeout 10 "$bin/ws-client" --grace 0.3 "$uri3/" > /dev/null
check "--log-format none: nothing on stderr" 0 "$(wc -c < "$work/gw3.err")"
set +e
"$bin/rsocket-gateway" --listen ws://127.0.0.1:0 --route "*=$backend" --log-format xml > /dev/null 2>&1
check "--log-format xml: usage error" 2 "$?"
set -e
finish "gateway metrics and logs"
