#!/usr/bin/env bash
# Autobahn-style WebSocket conformance cases (ws_conformance.py, a raw-socket client) against
# ws-echo-server, and the Python `websockets` library (Debian python3-websockets) as a client.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${RS_BIN:-$here/../../build/bin}
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
"$bin/ws-echo-server" --port 0 --max-message 2000000 >"$work/out" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q '^listening on ' "$work/out" && break; sleep 0.05; done
port=$(awk '/^listening on /{print $3; exit}' "$work/out"); port=${port##*:}
fails=0
timeout 300 /usr/bin/python3 "$here/ws_conformance.py" 127.0.0.1 "$port" --max-message 2000000 \
  >"$work/conf.log" 2>&1 || fails=$((fails + 1))
grep -v '^ok ' "$work/conf.log" || true

timeout 60 /usr/bin/python3 - "ws://127.0.0.1:$port" >"$work/py.log" 2>&1 <<'PY' || fails=$((fails + 1))
import asyncio, sys, websockets
async def main(uri):
    async with websockets.connect(uri, max_size=None, compression=None) as ws:
        for msg in ["héllo", b"\x00\x01bin", "", b"", "x" * 70000, bytes(range(256)) * 4000]:
            await ws.send(msg)
            got = await ws.recv()
            assert got == msg and type(got) == type(msg), (type(got), len(got))
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 5)
        await ws.close(4000, "done")
        assert ws.close_code == 4000, ws.close_code
    print("python websockets client: ok")
asyncio.run(main(sys.argv[1]))
PY
cat "$work/py.log"

# permessage-deflate with python websockets (it offers the extension by default).
"$bin/ws-echo-server" --port 0 --deflate >"$work/dout" 2>&1 &
dpid=$!
for _ in $(seq 1 100); do grep -q '^listening on ' "$work/dout" && break; sleep 0.05; done
dport=$(awk '/^listening on /{print $3; exit}' "$work/dout"); dport=${dport##*:}
timeout 60 /usr/bin/python3 - "ws://127.0.0.1:$dport" >"$work/pyd.log" 2>&1 <<'PY' || fails=$((fails + 1))
import asyncio, sys, websockets
async def main(uri):
    async with websockets.connect(uri, max_size=None) as ws:
        ext = ws.response_headers.get("Sec-WebSocket-Extensions", "")
        assert ext.startswith("permessage-deflate"), ext
        for msg in ["", b"", "héllo " * 1000, b"\x00" * 1000000, bytes(range(256)) * 100, "x"]:
            await ws.send(msg)
            got = await asyncio.wait_for(ws.recv(), 5)
            assert got == msg, len(got)
    print("python websockets client with permessage-deflate: ok")
asyncio.run(main(sys.argv[1]))
PY
cat "$work/pyd.log"
kill "$dpid" 2>/dev/null || true
kill -TERM "$pid"
set +e
wait "$pid"
rc=$?
set -e
pid=
[ "$rc" -eq 0 ] || { echo "ws-echo-server exit status $rc after SIGTERM"; fails=$((fails + 1)); }
[ "$fails" -eq 0 ]
