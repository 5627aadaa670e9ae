#!/usr/bin/env bash
# Frames serialized by rsocket-js (rsocket-core@1.0.0-alpha.3's own codec) decode field for field
# in `rsocket-dump --json`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${RS_BIN:-$here/../../build/bin}
if [ ! -d "$here/node_modules/rsocket-core" ]; then
  echo "test_js_frames: rsocket-js is not installed; run scripts/npm-deps" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
node "$here/js_frames.mjs" "$work/frames" >/dev/null
"$bin/rsocket-dump" --json "$work/frames.bin" > "$work/got.json"
node - "$work/frames.json" "$work/got.json" <<'JS'
const fs = require("fs");
const want = fs.readFileSync(process.argv[2], "utf8").trim().split("\n").map(JSON.parse);
const got = fs.readFileSync(process.argv[3], "utf8").trim().split("\n").map(JSON.parse);
let fails = 0, checks = 0;
if (got.length !== want.length) {
  console.log(`FAIL frame count: got ${got.length}, want ${want.length}`);
  fails++;
}
want.forEach((w, i) => {
  const g = got[i] || {};
  for (const [k, v] of Object.entries(w)) {
    checks++;
    if (JSON.stringify(g[k]) !== JSON.stringify(v)) {
      console.log(`FAIL frame ${i} (${w.type}) ${k}: got ${JSON.stringify(g[k])}, want ${JSON.stringify(v)}`);
      fails++;
    }
  }
});
console.log(`test_js_frames: ${checks - fails} passed, ${fails} failed (${want.length} frames)`);
process.exit(fails ? 1 : 0);
JS
