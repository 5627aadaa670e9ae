#!/usr/bin/env bash
# `scripts/demo --once` (what `make demo` plays, for CI): collab-service and rsocket-gateway on
# free ports, two collab-bots through the scene (joins, edits, a chat line, a dropped connection
# resumed from its offset with the board checked against the service's, a service restart and
# both bots reloading), then everything stopped (the script waits for each process): exit 0
# within the bound.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=${RS_SRC:-$here/../..}
bin=${RS_BIN:-$src/build/bin}
source "$here/../lib.sh"

rc=0
DEMO_BIN=$bin DEMO_HTTP_PORT=0 DEMO_SERVICE_PORT=0 timeout -k 5 120 "$src/scripts/demo" --once \
  >"$work/demo.out" 2>&1 || rc=$?
check "scripts/demo --once exit status" 0 "$rc"
seen() { grep -c -- "$1" "$work/demo.out" || true; }
check "the URL to open" 1 "$(seen 'Open this in two browser windows, side by side: *http://127.0.0.1:[0-9]*/#board=demo')"
check "both bots join" 2 "$(seen "joined board 'demo' as m")"
check "edits" 1 "$(seen '\[Ada\] adds note n1 "Plan the launch"')"
check "the other bot sees them" 1 "$(seen '\[Ada\] sees Bob move note n1')"
check "a chat line" 1 "$(seen '\[Ada\] reads Bob: Looks good to me')"
check "a lost connection resumed, the board checked" 1 \
  "$(seen '\[Bob\] back — [1-9][0-9]* missed edits applied (the board matches the service.s)')"
check "no mismatch" 0 "$(seen 'MISMATCH')"
check "both reload after the restart" 2 "$(seen 'board reloaded: the service restarted (new epoch)')"
check "live after the restart" 1 "$(seen '\[Ada\] reads Bob: Everything is back.')"
check "no bot gave up" 0 "$(seen 'gave up')"
[ "$fails" -eq 0 ] || cat "$work/demo.out"
finish test_demo
