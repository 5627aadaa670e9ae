#!/usr/bin/env bash
# Runs the examples and checks what they print (the README's example among them).
set -euo pipefail
bin=${RS_BIN:-$(dirname "$0")/../../build/bin}
out=$("$bin/example-frame-roundtrip")
[ "$out" = "REQUEST_STREAM stream=1 n=8 data=hello" ] || { echo "unexpected output: $out" >&2; exit 1; }
echo "example-frame-roundtrip: ok"
