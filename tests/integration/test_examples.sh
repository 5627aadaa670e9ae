#!/usr/bin/env bash
# Runs the examples and checks what they print (the README's example among them).
set -euo pipefail
bin=${RS_BIN:-$(dirname "$0")/../../build/bin}
out=$("$bin/example-frame-roundtrip")
[ "$out" = "REQUEST_STREAM stream=1 n=8 data=hello" ] || { echo "unexpected output: $out" >&2; exit 1; }
echo "example-frame-roundtrip: ok"
# A server without its URI: usage on stderr, status 2 (test_example_rooms.sh runs it for real).
rc=0
out=$("$bin/example-rooms" 2>&1) || rc=$?
[ "$rc/$out" = "2/usage: example-rooms URI" ] || { echo "example-rooms: $rc $out" >&2; exit 1; }
echo "example-rooms: ok"
