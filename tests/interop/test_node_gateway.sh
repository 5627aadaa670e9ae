#!/usr/bin/env bash
# The Node gateway peer of `make bench` (peers/node_gateway.mjs: node ws + rsocket-js) in front of
# `rsocket --server`: a few JSON protocol answers checked with ws-client, then rsocket-bench
# --model gw-req and gw-sub for about a second each, which must report answers and no errors.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${RS_BIN:-$here/../../build/bin}
source "$here/../lib.sh"
if [ ! -d "$here/node_modules/rsocket-core" ] || [ ! -d "$here/node_modules/ws" ]; then
  echo "test_node_gateway: rsocket-js and ws are not installed; run scripts/npm-deps" >&2
  exit 1
fi

"$bin/rsocket" --server tcp://127.0.0.1:0 >"$work/backend.out" 2>&1 &
pids+=($!)
backend=$(listening_uri "$work/backend.out")
node "$here/peers/node_gateway.mjs" --listen ws://127.0.0.1:0 --route "bench.*=$backend" \
  >"$work/gw.out" 2>&1 &
pids+=($!)
gw=$(listening_uri "$work/gw.out")

# Answers come in any order (the backend answers asynchronously): compare them sorted.
got=$(printf '%s\n' '{"type":"ping","id":9}' \
  '{"type":"req","id":1,"route":"bench.echo","data":{"a":[1,2]}}' \
  '{"type":"req","id":"s","route":"other","data":1}' 'not json' |
  timeout 20 "$bin/ws-client" --grace 0.5 --timeout 15 "$gw" | sort)
want=$(printf '%s\n' '{"type":"cfm","id":1,"data":{"a":[1,2]}}' '{"type":"pong","id":9}' \
  '{"type":"rej","id":"s","error":{"code":"NO_ROUTE","message":"no backend serves other"}}' \
  '{"type":"rej","id":null,"error":{"code":"BAD_REQUEST","message":"a message is one JSON object in a text message"}}' |
  sort)
check "ping, req, NO_ROUTE, BAD_REQUEST" "$want" "$got"

# rsocket-bench: answers counted, no errors.
bench_ok() { # NAME ARGS… → checks the JSON summary
  local name=$1 out
  shift
  out=$(timeout 30 "$bin/rsocket-bench" --json --no-progress -D 1 "$@" "$gw" || true)
  if echo "$out" | grep -q '"errors":0,' && echo "$out" | grep -Eq '"completed":[1-9]' &&
    ! echo "$out" | grep -q '"first_error"'; then
    passes=$((passes + 1))
  else
    fails=$((fails + 1))
    echo "FAIL $name: $out"
  fi
}
bench_ok "gw-req, 2 clients x 8 in flight" --model gw-req -c 2 -m 8
bench_ok "gw-sub, 4 clients" --model gw-sub -c 4

finish test_node_gateway
