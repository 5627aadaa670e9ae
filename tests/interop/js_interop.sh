#!/usr/bin/env bash
# Interop with rsocket-js 1.0.0-alpha.3 over TCP or WebSocket (first argument: tcp or ws),
# both directions:
#   1. rsocket-js client → our server (`rsocket --server`): every scenario of peers/js_client.mjs
#      (request-response, fnf, stream with request(n) and cancel, channel, 5 MiB payloads,
#      2,000 concurrent requests on one connection), then again with fragmentation at MTU 64 on
#      both sides, then lease: our server grants 100 requests/s and the js requester honours it.
#   2. our client (`rsocket`) → rsocket-js server (peers/js_echo_server.mjs): every model, MTU 64
#      both ways, a 5 MiB payload, keepalive across an idle period longer than the max lifetime.
set -euo pipefail
transport=${1:?usage: js_interop.sh tcp|ws}
here=$(cd "$(dirname "$0")" && pwd)
bin=${RS_BIN:-$here/../../build/bin}
source "$here/../lib.sh"
if [ ! -d "$here/node_modules/rsocket-core" ]; then
  echo "js_interop: rsocket-js is not installed; run scripts/npm-deps" >&2
  exit 1
fi
wait_listening() { # file → sets URI
  for _ in $(seq 1 200); do grep -q '^listening on ' "$1" 2>/dev/null && break; sleep 0.05; done
  URI=$(awk '/^listening on /{print $3; exit}' "$1")
  [ -n "$URI" ] || { echo "server did not start:"; cat "$1" "$1.err" 2>/dev/null; exit 1; }
}

# ---- 1. rsocket-js client → our server ----
"$bin/rsocket" --server $transport://127.0.0.1:0 >"$work/ours.out" 2>"$work/ours.out.err" &
pids+=($!)
wait_listening "$work/ours.out"
if node "$here/peers/js_client.mjs" --uri "$URI" >"$work/js1.log" 2>&1; then passes=$((passes + 1)); else
  fails=$((fails + 1)); echo "FAIL js client → our server:"; cat "$work/js1.log"; fi
grep -E '^(ok|FAIL) ' "$work/js1.log" | sed "s/^/  js→c $transport: /"

"$bin/rsocket" --server --fragment 64 $transport://127.0.0.1:0 >"$work/ours64.out" 2>&1 &
pids+=($!)
wait_listening "$work/ours64.out"
if node "$here/peers/js_client.mjs" --uri "$URI" --fragment 64 \
    --only request_response,fragmented_256kib,request_stream_take,request_channel_echo \
    >"$work/js2.log" 2>&1; then passes=$((passes + 1)); else
  fails=$((fails + 1)); echo "FAIL js client → our server, MTU 64:"; cat "$work/js2.log"; fi
grep -E '^(ok|FAIL) ' "$work/js2.log" | sed "s/^/  js→c $transport mtu64: /"
"$bin/rsocket" --server --lease 100 $transport://127.0.0.1:0 >"$work/lease.out" 2>&1 &
pids+=($!)
wait_listening "$work/lease.out"
if node "$here/peers/js_client.mjs" --uri "$URI" --lease --only lease_250,request_stream_take \
    >"$work/js3.log" 2>&1; then passes=$((passes + 1)); else
  fails=$((fails + 1)); echo "FAIL js client with lease → our lease server:"; cat "$work/js3.log"; fi
grep -E '^(ok|FAIL) ' "$work/js3.log" | sed "s/^/  js→c $transport lease: /"
grep -q '^fnf fnf-data$' "$work/ours.out" && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL our server did not print the js fnf"; }

# ---- 2. our client → rsocket-js server ----
node "$here/peers/js_echo_server.mjs" --transport $transport --port 0 --stream-count 0 >"$work/js.out" 2>&1 &
pids+=($!)
wait_listening "$work/js.out"
juri=$URI
c=("$bin/rsocket" --timeout 20s)
check "c→js request-response" "hello" "$("${c[@]}" -d hello "$juri")"
check "c→js metadata" "$(printf 'md\thello')" "$("${c[@]}" -d hello -m md --showMetadata "$juri")"
check "c→js stream take+limitRate" "7" "$("${c[@]}" --stream --take 7 --limitRate 3 -d s "$juri" | wc -l | tr -d ' ')"
check "c→js channel" "$(printf 'a\nb\nc')" "$(printf 'a\nb\nc\n' | "${c[@]}" --channel "$juri")"
check "c→js fnf" "" "$("${c[@]}" --fnf -d c-fnf "$juri")"
check "c→js route+auth metadata" "x" "$("${c[@]}" -r rooms.post --authSimple u:p -d x "$juri")"
big=$work/big
head -c 3932160 /dev/urandom | base64 -w0 > "$big" # exactly 5 MiB of text
check "c→js 5 MiB" "$(sha256sum < "$big" | cut -c1-64)" "$("${c[@]}" -d @"$big" "$juri" | tr -d "\n" | sha256sum | cut -c1-64)"
# Keepalive: an idle channel for 3 s with a 1 s max lifetime lives only if KEEPALIVEs flow.
check "c→js keepalive" "$(printf 'a\nb')" "$( (echo a; sleep 3; echo b) | "${c[@]}" --channel --keepalive 200ms --maxLifetime 1s "$juri")"
sleep 0.2
grep -q '^fnf c-fnf$' "$work/js.out" && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL js server did not print our fnf"; cat "$work/js.out"; }

node "$here/peers/js_echo_server.mjs" --transport $transport --port 0 --fragment 64 >"$work/js64.out" 2>&1 &
pids+=($!)
wait_listening "$work/js64.out"
payload=$(head -c 200000 /dev/zero | tr '\0' 'q')
check "c→js MTU 64 both ways" "$payload" "$(printf '%s' "$payload" | "${c[@]}" --fragment 64 -m meta -d - "$URI")"

echo "js_interop $transport: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
