#!/usr/bin/env bash
# rsocket-gateway's /rsocket from a browser (issue 15, item 1): rsocket-js 1.0.0-alpha.3, bundled
# for the page here with esbuild (the `buffer` package as its Buffer), runs in headless Chromium
# (Debian's chromium, driven by playwright-core: no browser download). The page
# (browser/rsocket.html) is served by the gateway itself (--static), opens ws://HOST/rsocket with
# rsocket-js's WebSocket transport and checks every model against gw_backend: request-response,
# request-stream with request(3) at a time (never more than requested), channel, fire-and-forget,
# metadata-push, pushes from the backend (push.session.*, push.user.*), the backend's errors
# (code and message), NO_ROUTE, cancel of a stream and of a request-response (the backend sees
# CANCEL), 200 KiB each way, 250 + 250 concurrent streams;
# again at MTU 64 both ways; again with a JWT in the SETUP (and a bad one, and none: refused).
# web_rsocket.mjs starts and stops the processes and the browser, by PID. Screenshots:
# build/e2e-rsocket/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${RS_BIN:-$here/../../build/bin}
build=${RS_BUILD_DIR:-$here/../../build}
out=$build/e2e-rsocket
chromium=${CHROMIUM:-/usr/bin/chromium}
source "$here/../lib.sh"
for m in playwright-core rsocket-core rsocket-websocket-client esbuild buffer; do
  if [ ! -d "$here/node_modules/$m" ]; then
    echo "test_gateway_rsocket_browser: $m is not installed; run scripts/npm-deps" >&2
    exit 1
  fi
done
if [ ! -x "$chromium" ]; then
  echo "test_gateway_rsocket_browser: $chromium is missing (Debian package chromium; scripts/deps test installs it)" >&2
  exit 1
fi

# The page and its bundle: rsocket-js (CommonJS) made one ES module for the browser.
static=$work/static
mkdir -p "$static"
cp "$here/browser/rsocket.html" "$static/"
"$here/node_modules/.bin/esbuild" "$here/browser/rsocket_page.js" --bundle --format=esm \
  --platform=browser --target=es2022 --inject:"$here/browser/buffer_shim.js" \
  --outfile="$static/rsocket-page.js" --log-level=warning
check "the bundle has no require() left" 0 "$(grep -c '\brequire("' "$static/rsocket-page.js" || true)"

rm -rf "$out"
# A private HOME: chromium writes its profile and crash reports there.
export HOME=$work/home
mkdir -p "$HOME"
rc=0
CHROMIUM=$chromium timeout -k 5 400 node "$here/web_rsocket.mjs" "$bin" "$build/tests/gw_backend" \
  "$static" "$out" > "$work/driver.log" 2>&1 || rc=$?
cat "$work/driver.log"
passes=$((passes + $(grep -c '^ok ' "$work/driver.log" || true)))
fails=$((fails + $(grep -c '^FAIL ' "$work/driver.log" || true)))
check "web_rsocket.mjs ran to its end" 0 "$rc"
check "a screenshot of each page" 5 "$(find "$out" -name 'rsocket-*.png' -size +1k 2> /dev/null | wc -l)"
finish test_gateway_rsocket_browser
