#!/usr/bin/env bash
# The board page (web/) in headless Chromium (Debian's chromium, driven by playwright-core from
# npm: no browser download) against collab-service behind `rsocket-gateway --static web`: two
# users on one board (add, drag, edit, delete within 1 s; presence, cursors, chat), the service
# killed and restarted (both pages show the banner and converge). Screenshots: build/e2e/.
# web_e2e.mjs starts and stops the processes and the browser itself, by PID.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${RS_BIN:-$here/../../build/bin}
src=${RS_SRC:-$here/../..}
out=${RS_BUILD_DIR:-$src/build}/e2e
chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -d "$here/node_modules/playwright-core" ]; then
  echo "test_web_e2e: playwright-core is not installed; run scripts/npm-deps" >&2
  exit 1
fi
if [ ! -x "$chromium" ]; then
  echo "test_web_e2e: $chromium is missing (Debian package chromium; scripts/deps test installs it)" >&2
  exit 1
fi
if [ ! -x "$bin/collab-service" ]; then
  echo "test_web_e2e: skipped: $bin/collab-service is not built (it comes with the collab branch)"
  exit 77
fi
rm -rf "$out"
# A private HOME: chromium writes its profile and crash reports there.
export HOME=$(mktemp -d)
trap 'rm -rf "$HOME"' EXIT
CHROMIUM=$chromium timeout -k 5 300 node "$here/web_e2e.mjs" "$bin" "$src/web" "$out"
