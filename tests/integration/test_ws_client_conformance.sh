#!/usr/bin/env bash
# Our WebSocket client (build/bin/ws-client, the code path of RSocket over ws://) against a
# misbehaving test server playing Autobahn-style cases in client mode, then against the Python
# `websockets` library as a second peer (Debian python3-websockets, run with /usr/bin/python3).
set -euo pipefail
bin=${RS_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/build/bin}
exec /usr/bin/python3 "$(dirname "$0")/ws_client_conformance.py" "$bin/ws-client"
