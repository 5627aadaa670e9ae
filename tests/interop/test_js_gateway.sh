#!/usr/bin/env bash
# web/rsocket-gateway.js (the browser/node client of rsocket-gateway's JSON protocol) in node,
# against the real gateway and `rsocket --server` echo backends: every call, the error codes,
# a backend killed mid-subscription, the gateway restarted, several URLs (js_gateway.mjs starts
# and stops the processes itself and kills them by PID when it exits).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${RS_BIN:-$here/../../build/bin}
if [ ! -d "$here/node_modules/ws" ]; then
  echo "test_js_gateway: the npm packages are not installed; run scripts/npm-deps" >&2
  exit 1
fi
exec timeout -k 5 300 node "$here/js_gateway.mjs" "$bin"
