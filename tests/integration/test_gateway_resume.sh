#!/usr/bin/env bash
# rsocket-gateway --backend-resume: the gateway's connection to its backend goes through a proxy
# that cuts it 20 times while a browser's sub streams 60,000 items; the gateway's pool resumes the
# RSocket session each time, and the browser sees nothing: every item once, in order, then end,
# on the same WebSocket. Without --backend-resume the same cut ends the sub with rej UNAVAILABLE.
# Requests made while the link is being cut wait for the resumption: none is refused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${RS_BIN:-$here/../../build/bin}
peers=$here/../interop/peers
source "$here/../lib.sh"
py=/usr/bin/python3

seq 1 60000 | sed 's/^/"item-/; s/$/"/' > "$work/items"
"$bin/rsocket" --server --resume 60 -d @"$work/items" tcp://127.0.0.1:0 > "$work/backend.out" 2>&1 &
pids+=($!)
bport=$(listening_uri "$work/backend.out")
bport=${bport##*:}

proxy() { # --cuts N ... → $pport
  : > "$work/proxy.out" # now, not in the background child: wait_for must not see the last proxy's line
  node "$peers/cut_proxy.mjs" --target "127.0.0.1:$bport" "$@" > "$work/proxy.out" 2>&1 &
  pids+=($!)
  wait_for "$work/proxy.out" '^proxy listening on '
  pport=$(awk '/^proxy listening on /{print $4; exit}' "$work/proxy.out")
}

# The data of every ind, in order, and how the sub ended.
summary() {
  "$py" -c '
import json, sys
items = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
data = [m["data"] for m in items if m["type"] == "ind"]
want = ["item-%d" % i for i in range(1, int(sys.argv[2]) + 1)]
last = items[-1]["type"] if items else "nothing"
if last == "rej":
    last += " " + items[-1]["error"]["code"]
print("exact" if data == want else "%d items, first bad at %s" % (len(data), next((i for i, (a, b) in enumerate(zip(data, want)) if a != b), min(len(data), len(want)))), last)
' "$1" "$2"
}

proxy --cuts 20 --cut-min 15000 --cut-max 40000
"$bin/rsocket-gateway" --listen ws://127.0.0.1:0 --route "*=tcp://127.0.0.1:$pport" \
  --backend-resume 30 --connections-per-backend 1 > "$work/gw.out" 2> "$work/gw.err" &
pids+=($!)
uri=$(listening_uri "$work/gw.out")
wait_for "$work/gw.err" backend_connected
echo '{"type":"sub","id":1,"route":"feed","data":"x"}' |
  timeout 120 "$bin/ws-client" --grace 4 "$uri/" > "$work/got" 2> "$work/client.err" || true
check "20 cuts during the sub" 20 "$(grep -c '^cut: ' "$work/proxy.out" || true)"
check "resumed: every item once, in order, then end" "exact end" "$(summary "$work/got" 60000)"
check "the gateway resumed (logged)" yes "$(grep -q 'event=backend_resumed' "$work/gw.err" && echo yes || echo no)"

# Without resumption a cut is a lost backend: the sub gets rej UNAVAILABLE, the WebSocket stays.
kill %% 2> /dev/null || true
proxy --cut-after 30000
"$bin/rsocket-gateway" --listen ws://127.0.0.1:0 --route "*=tcp://127.0.0.1:$pport" \
  --connections-per-backend 1 > "$work/gw2.out" 2> "$work/gw2.err" &
pids+=($!)
uri2=$(listening_uri "$work/gw2.out")
wait_for "$work/gw2.err" backend_connected
printf '%s\n' '{"type":"sub","id":1,"route":"feed","data":"x"}' |
  timeout 60 "$bin/ws-client" --grace 3 "$uri2/" > "$work/got2" 2> /dev/null || true
check "no resumption: the sub ends with UNAVAILABLE" "rej UNAVAILABLE" \
  "$(summary "$work/got2" 60000 | awk '{print $(NF-1), $NF}')"
# New requests while the link is being cut, again and again: each waits in the resuming session
# and is answered once it resumes; none is refused (UNAVAILABLE) and the WebSocket stays.
"$bin/rsocket" --server --resume 60 tcp://127.0.0.1:0 > "$work/echo.out" 2>&1 &
pids+=($!)
bport=$(listening_uri "$work/echo.out")
bport=${bport##*:}
proxy # no cut by itself: SIGUSR1 cuts
proxy_pid=${pids[-1]}
"$bin/rsocket-gateway" --listen ws://127.0.0.1:0 --route "*=tcp://127.0.0.1:$pport" \
  --backend-resume 30 --connections-per-backend 1 > "$work/gw3.out" 2> "$work/gw3.err" &
pids+=($!)
uri3=$(listening_uri "$work/gw3.out")
wait_for "$work/gw3.err" backend_connected
for i in $(seq 1 150); do
  echo "{\"type\":\"req\",\"id\":$i,\"route\":\"echo\",\"data\":$i}"
  sleep 0.02
done | timeout 60 "$bin/ws-client" --grace 3 "$uri3/" > "$work/got3" 2> /dev/null &
client=$!
for _ in $(seq 1 10); do
  sleep 0.25
  kill -USR1 "$proxy_pid"
done
wait "$client" || true
check "10 cuts during the requests" 10 "$(grep -c '^cut: ' "$work/proxy.out" || true)"
check "every request answered across the cuts (cfm)" 150 "$(grep -c '"type":"cfm"' "$work/got3" || true)"
check "no request refused" 0 "$(grep -c '"type":"rej"' "$work/got3" || true)"
finish "gateway backend resumption"
