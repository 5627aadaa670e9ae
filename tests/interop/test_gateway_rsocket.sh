#!/usr/bin/env bash
# rsocket-gateway's RSocket passthrough (issue 15, item 1): rsocket-js 1.0.0-alpha.3 clients in
# node (peers/pt_client.mjs) and our own client (`rsocket`) on ws://GATEWAY/rsocket, through the
# gateway to rsocket-js backends (peers/pt_backend.mjs, which record what they saw) and
# `rsocket --server`:
#   every model, request(n) passed through unchanged, cancel both ways (the backend sees CANCEL:
#   the client's cancel, a client that goes away, a request timeout), errors with their codes and
#   messages, metadata both ways with the gateway's client entry (a forged one dropped), 5 MiB
#   payloads, MTU 64 on every side, 2,000 concurrent requests and 2,000 concurrent streams, the
#   stream limit, a backend killed mid-stream (CANCELED, the client connection stays), JWT in the
#   SETUP (good, expired, wrongly signed, none), a slow consumer closed, lease toward the client (no backend: no permits,
#   the request waits; the backend comes: it goes), metadata-push, metrics and logs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${RS_BIN:-$here/../../build/bin}
source "$here/../lib.sh"
if [ ! -d "$here/node_modules/rsocket-core" ]; then
  echo "test_gateway_rsocket: rsocket-js is not installed; run scripts/npm-deps" >&2
  exit 1
fi
peers=$here/peers
py=/usr/bin/python3

backend() { # NAME [pt_backend options] → its URI in $URI
  node "$peers/pt_backend.mjs" "${@:2}" > "$work/$1.out" 2> "$work/$1.err" &
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
client() { # NAME pt_client options... (counts one pass per scenario)
  local name=$1
  shift
  if timeout 180 node "$peers/pt_client.mjs" "$@" > "$work/$name.log" 2>&1; then :; else
    echo "FAIL $name:"
    cat "$work/$name.log"
  fi
  passes=$((passes + $(grep -c '^ok ' "$work/$name.log" || true)))
  fails=$((fails + $(grep -c '^FAIL ' "$work/$name.log" || true)))
  grep -E '^(ok|FAIL) ' "$work/$name.log" | sed "s/^/  $name: /"
}
stats() { # GW → the backend's record (route "stats")
  "$bin/rsocket" --timeout 10s -r stats -d x "$1/rsocket"
}
jsonq() { # JSON EXPR (python over `d`)
  "$py" -c 'import json, sys; d = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}

# ---- 1. every model, errors, metadata, 5 MiB, 2,000 concurrent, timeout ----
backend nb
nb=$URI
routes=()
for r in 'echo.*' 'inf.*' 'err.*' 'slow.*' big stats; do routes+=(--route "$r=$nb"); done
rsocket_backend() { # NAME → an `rsocket --server` (the echo contract) in $URI
  "$bin/rsocket" --server tcp://127.0.0.1:0 > "$work/$1.out" 2> "$work/$1.err" &
  pids+=($!)
  URI=$(listening_uri "$work/$1.out")
}
rsocket_backend rsb
gateway gw1 "${routes[@]}" --route "mp.*=$URI" --max-streams-per-client 5000
gw1=$GW
client js --uri "$gw1" --only request_response,forged_entry_dropped,request_stream_credit,request_stream_take_cancel,request_channel,fire_and_forget,errors,no_route,large_5mib,fragmented,concurrent_2000
client js-subprotocol --uri "$gw1" --path / --subprotocol rsocket --only request_response

# Our own client: every model, metadata-push, cancel, a client that goes away, 5 MiB.
c=("$bin/rsocket" --timeout 20s)
check "rsocket: request-response" "hi" "$("${c[@]}" -r echo.cli -d hi "$gw1/rsocket")"
check "rsocket: stream --take 3 (counting)" "$(printf '1\n2\n3')" \
  "$("${c[@]}" -r inf.cli --stream --take 3 "$gw1/rsocket")"
check "rsocket: channel" "$(printf 'a\nb\nc')" \
  "$(printf 'a\nb\nc\n' | "${c[@]}" -r echo.cli --channel "$gw1/rsocket")"
check "rsocket: fnf" "" "$("${c[@]}" -r echo.cli --fnf -d cli-fnf "$gw1/rsocket")"
# metadata-push goes to `rsocket --server` (rsocket-js 1.0.0-alpha.3 ignores METADATA_PUSH).
check "rsocket: metadata-push" "" "$("${c[@]}" -r mp.x --metadataPush -m pushed "$gw1/rsocket")"
check "rsocket: error code and message" "error: REJECTED (0x202): not today" \
  "$("${c[@]}" -r err.rejected -d x "$gw1/rsocket" 2>&1 || true)"
check "rsocket: no route" "error: REJECTED (0x202): NO_ROUTE: no backend serves route 'none'" \
  "$("${c[@]}" -r none -d x "$gw1/rsocket" 2>&1 || true)"
big=$work/big
head -c 3932160 /dev/urandom | base64 -w0 > "$big" # 5 MiB of text
check "rsocket: 5 MiB both ways (fragments of 60,000 toward the gateway)" \
  "$(sha256sum < "$big" | cut -c1-64)" \
  "$("${c[@]}" --fragment 60000 -r echo.big -d @"$big" "$gw1/rsocket" | tr -d '\n' | sha256sum | cut -c1-64)"
# A client that goes away: its backend stream is cancelled.
"$bin/rsocket" -r inf.gone --stream "$gw1/rsocket" > "$work/gone.out" &
gone=$!
pids+=($gone)
wait_for "$work/gone.out" '^3$'
kill "$gone"
sleep 0.5
s=$(stats "$gw1")
check "backend saw the fnf" True "$(jsonq "$s" '"cli-fnf" in d["fnf"]')"
check "backend got the metadata-push once (one connection of each backend), with the entry" 1 \
  "$(grep -c '^metadata-push .*mp\.x.*pushed.*application/x.rsocket-gateway.client+json' "$work/rsb.out")"
check "backend saw CANCEL for --take" 1 "$(jsonq "$s" 'd["cancels"].get("inf.cli")')"
check "backend saw CANCEL for a client gone" 1 "$(jsonq "$s" 'd["cancels"].get("inf.gone")')"

# Metrics and logs.
http "$gw1" /metrics | tail -n +2 > "$work/metrics"
metric() { awk -v k="$1" '$1 == k {print $2}' "$work/metrics"; }
if command -v promtool > /dev/null; then
  check "promtool check metrics" ok "$(promtool check metrics < "$work/metrics" > "$work/promtool" 2>&1 && echo ok || cat "$work/promtool")"
fi
check "metrics: rsocket clients now" 0 "$(metric 'rsocket_gateway_clients{protocol="rsocket"}')"
check "metrics: rsocket clients accepted" yes \
  "$([ "$(metric 'rsocket_gateway_clients_accepted_total{protocol="rsocket"}')" -ge 10 ] && echo yes || echo no)"
check "metrics: requests by route" yes \
  "$([ "$(metric 'rsocket_gateway_requests_total{route="echo.*",model="req"}')" -ge 2000 ] && echo yes || echo no)"
check "metrics: streams counted" yes \
  "$([ "$(metric 'rsocket_gateway_requests_total{route="echo.*",model="sub"}')" -ge 2000 ] && echo yes || echo no)"
check "metrics: backend errors by code" yes \
  "$([ -n "$(metric 'rsocket_gateway_errors_total{route="err.*",code="REJECTED"}')" ] && echo yes || echo no)"
check "metrics: client frames" yes \
  "$([ -n "$(metric 'rsocket_gateway_client_frames_total{direction="in",type="REQUEST_CHANNEL"}')" ] && echo yes || echo no)"
check "metrics: no stream left open" "0 0 0" "$(metric 'rsocket_gateway_streams_open{model="request_response"}') $(metric 'rsocket_gateway_streams_open{model="request_stream"}') $(metric 'rsocket_gateway_streams_open{model="request_channel"}')"
check "log: client_open with protocol" yes \
  "$(grep -qE 'event=client_open session=[0-9a-f]{16} peer=127.0.0.1:[0-9]+ protocol=rsocket$' "$work/gw1.err" && echo yes || echo no)"
check "log: client_close with protocol" yes \
  "$(grep -qE 'event=client_close session=[0-9a-f]{16} protocol=rsocket ' "$work/gw1.err" && echo yes || echo no)"

# The request timeout (its own gateway: 1 s would be tight for the rest on a loaded machine).
gateway gwslow "${routes[@]}" --request-timeout 1s
client js-timeout --uri "$GW" --only timeout
http "$GW" /metrics | tail -n +2 > "$work/metrics"
check "metrics: timeouts" 1 "$(metric 'rsocket_gateway_errors_total{route="slow.*",code="TIMEOUT"}')"

# ---- 2. MTU 64 on every side: client, gateway toward the client, backend toward the gateway --
backend nb64 --fragment 64
gateway gw64 --route "echo.*=$URI" --route "stats=$URI" --rsocket-mtu 64
client js-mtu64 --uri "$GW" --fragment 64 --only request_response,fragmented,request_stream_credit,request_channel

# ---- 3. the stream limit ----
gateway gwlim "${routes[@]}" --max-streams-per-client 3
client js-limit --uri "$GW" --only too_many_streams

# ---- 4. a backend killed mid-stream ----
backend mortal
gateway gwdie --route "mortal.*=$URI" --route "die=$URI" --route "echo.*=$nb"
client js-backend-lost --uri "$GW" --only backend_lost

# ---- 5. JWT in the SETUP ----
secret=0123456789abcdef0123456789abcdef
token() { # SECRET CLAIMS-JSON → an HS256 token
  node -e '
    const c = require("crypto"), b = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const body = b({alg: "HS256", typ: "JWT"}) + "." + b(JSON.parse(process.argv[2]));
    console.log(body + "." + c.createHmac("sha256", process.argv[1]).update(body).digest("base64url"));
  ' "$1" "$2"
}
now=$(date +%s)
gateway gwjwt --route "echo.*=$nb" --jwt-secret "$secret"
client js-jwt-good --uri "$GW" --token "$(token "$secret" "{\"sub\":\"ada\",\"exp\":$((now + 600))}")" --only authenticated
client js-jwt-expired --uri "$GW" --token "$(token "$secret" "{\"sub\":\"ada\",\"exp\":$((now - 10))}")" --expect-reject "token expired"
client js-jwt-bad --uri "$GW" --token "$(token wrong-secret-wrong-secret '{"sub":"ada"}')" --expect-reject "token refused: malformed or wrongly signed"
client js-jwt-none --uri "$GW" --expect-reject "authentication required"
check "rsocket: a bad token in the SETUP: REJECTED_SETUP (exit 4)" "$(printf 'token refused: malformed\n4')" \
  "$("${c[@]}" --smmt message/x.rsocket.authentication.v0 --sm token:not.a.token -r echo.jwt -d hi "$GW/rsocket" 2>&1 | grep -o 'token refused: malformed'; echo "${PIPESTATUS[0]}")"
check "rsocket: a token in the SETUP" "hi" \
  "$("${c[@]}" --smmt message/x.rsocket.authentication.v0 --sm "token:$(token "$secret" '{"sub":"bob"}')" -r echo.jwt -d hi "$GW/rsocket" 2>&1)"

# ---- 6. a client that asks for everything and reads slowly ----
# The backend is asked for --credit-window items at a time, and only while the client's socket
# takes them: the client is not closed, the gateway holds little, and items flow once it reads.
gateway gwlazy --route "inf.*=$nb" --route "stats=$nb"
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$GWPID/status"; }
before=$(rss)
"$py" "$peers/rs_lazy_reader.py" "${GW##*:}" inf.lazy 3 2 > "$work/lazy.out" 2>&1 &
lazy=$!
pids+=($lazy)
wait_for "$work/lazy.out" '^paused'
during=$(rss)
asked=$(jsonq "$(stats "$GW")" 'sum(d["requestN"].get("inf.lazy", []))')
wait "$lazy" || true
check "lazy reader: the backend is asked for a window (64) at a time, not 2^31-1" 64 \
  "$(jsonq "$(stats "$GW")" 'd["requestN"]["inf.lazy"][0]')"
check "lazy reader: while it does not read, the backend was asked for little (<= 20,000)" yes \
  "$([ "${asked:-0}" -gt 0 ] && [ "${asked:-0}" -le 20000 ] && echo yes || echo "no: $asked")"
check "lazy reader: the gateway's VmRSS grew by less than 16 MiB ($before KiB → $during KiB)" yes \
  "$([ $(((during - before) / 1024)) -lt 16 ] && echo yes || echo "no")"
check "lazy reader: not closed" open "$(sed -n 's/^\(open\|closed.*\)$/\1/p' "$work/lazy.out")"
items=$(awk '/^items / {print $2}' "$work/lazy.out")
check "lazy reader: once it reads, items flow (more than were asked during the pause: $asked)" yes \
  "$([ "${items:-0}" -gt "${asked:-0}" ] && echo yes || echo "no: $items")"
http "$GW" /metrics | tail -n +2 > "$work/metrics"
check "lazy reader: no slow-consumer close" 0 "$(metric 'rsocket_gateway_slow_consumer_closes_total')"

# ---- 6b. --max-buffer still bounds what a window can queue: a window of 1,000 items of 1,000
# bytes is more than 256 KiB, so a client that does not read is closed as a slow consumer ----
gateway gwslowc --route "inf.*=$nb" --route "stats=$nb" --max-buffer 256KiB --credit-window 1000
"$py" "$peers/rs_slow_reader.py" "${GW##*:}" inf.slow 1000 3
http "$GW" /metrics | tail -n +2 > "$work/metrics"
check "slow consumer: closed and counted" 1 "$(metric 'rsocket_gateway_slow_consumer_closes_total')"
check "slow consumer: its backend stream cancelled" 1 "$(jsonq "$(stats "$GW")" 'd["cancels"].get("inf.slow")')"
check "slow consumer: logged" 1 "$(grep -c 'protocol=rsocket reason="slow consumer: unsent output over --max-buffer" by=gateway' "$work/gwslowc.err")"

# ---- 7. lease toward the client ----
gateway gwlease "${routes[@]}"
client js-lease --uri "$GW" --lease --only lease_250,request_channel
# No backend connected: the lease has no permits, so a request waits in the client; once the
# backend is up, the next lease lets it go.
port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
gateway gwlater --route "echo.*=tcp://127.0.0.1:$port" --route "stats=tcp://127.0.0.1:$port"
timeout 60 node "$peers/pt_client.mjs" --uri "$GW" --lease --only request_response > "$work/later.log" 2>&1 &
later=$!
pids+=($later)
sleep 2
http "$GW" /metrics | tail -n +2 > "$work/metrics"
check "lease without backends: the request waits in the client" "running " \
  "$(kill -0 "$later" 2> /dev/null && echo running) $(metric 'rsocket_gateway_requests_total{route="echo.*",model="req"}')"
backend later --port "$port"
rc=0
wait "$later" || rc=$?
check "lease once the backend is up: the request goes" 0 "$rc"
grep -E '^(ok|FAIL) ' "$work/later.log" | sed "s/^/  js-lease-later: /"

finish test_gateway_rsocket
