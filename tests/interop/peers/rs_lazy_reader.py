# An RSocket-over-WebSocket client that asks for everything and then reads slowly (the
# rsocket-gateway passthrough's credit test): it sets up on ws://127.0.0.1:PORT/rsocket
# (composite metadata, a small receive buffer), opens one REQUEST_STREAM on ROUTE with
# initial n = 2^31-1 (unbounded), prints "opened", reads nothing for PAUSE seconds, prints
# "paused", then reads for READ seconds and prints "items N" (PAYLOAD frames received in all) and
# "closed" if the gateway closed the connection (with what it said), else "open".
# Usage: rs_lazy_reader.py PORT ROUTE PAUSE READ
import select
import struct
import sys
import time

from raw_rsocket_ws import route_metadata, setup, upgrade, ws

port, route, pause, read_for = int(sys.argv[1]), sys.argv[2].encode(), float(sys.argv[3]), float(sys.argv[4])
s = upgrade(port, "rs_lazy_reader", rcvbuf=16384)
s.sendall(setup(60000, 180000))
md = route_metadata(route)
# REQUEST_STREAM (0x06) with metadata (0x100), stream 1, initial n 2^31-1.
s.sendall(ws(struct.pack(">IH", 1, (0x06 << 10) | 0x100) + struct.pack(">I", 0x7FFFFFFF) +
             struct.pack(">I", len(md))[1:] + md + b"x" * 64))
print("opened", flush=True)
time.sleep(pause)
print("paused", flush=True)

items, closed, data = 0, None, b""
s.setblocking(False)
end = time.monotonic() + read_for
while time.monotonic() < end and closed is None:
    r, _, _ = select.select([s], [], [], 0.1)
    if not r:
        continue
    try:
        chunk = s.recv(65536)
    except (BlockingIOError, InterruptedError):
        continue
    except ConnectionError as e:
        closed = f"reset: {e}"
        break
    if not chunk:
        closed = "end of stream"
        break
    data += chunk
    # Whole WebSocket frames from the server (never masked).
    while len(data) >= 2:
        op, n = data[0] & 0x0F, data[1] & 0x7F
        off = 2
        if n == 126:
            if len(data) < 4:
                break
            n, off = struct.unpack(">H", data[2:4])[0], 4
        elif n == 127:
            if len(data) < 10:
                break
            n, off = struct.unpack(">Q", data[2:10])[0], 10
        if len(data) < off + n:
            break
        body, data = data[off:off + n], data[off + n:]
        if op == 0x8:
            code = struct.unpack(">H", body[:2])[0] if len(body) >= 2 else 0
            closed = f"close {code} {body[2:].decode(errors='replace')}"
            break
        if op == 0x2 and len(body) >= 6:
            ftype = struct.unpack(">H", body[4:6])[0] >> 10
            if ftype == 0x0A:
                items += 1
            elif ftype == 0x0B:
                closed = "ERROR frame: " + body[10:].decode(errors="replace")
                break
print(f"items {items}", flush=True)
print(f"closed {closed}" if closed else "open", flush=True)
