# An RSocket-over-WebSocket client that sends fire-and-forget as fast as its socket takes them
# (rsocket-gateway read-pause test): it sets up on ws://127.0.0.1:PORT/rsocket (composite
# metadata), then for SECONDS writes REQUEST_FNF frames with ROUTE and DATA_BYTES of data, never
# waiting for anything but the socket (no buffering of its own: when the gateway stops reading,
# the kernel's buffers fill and it waits). Then it prints "sent N" (frames whole in the socket),
# finishes the frame it was in the middle of, prints "final M" (every frame it sent) and stays
# connected until killed. Usage: rs_flooder.py PORT ROUTE DATA_BYTES SECONDS
import os
import select
import socket
import struct
import sys
import time

port, route, size, seconds = int(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3]), float(sys.argv[4])
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"GET /rsocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
buf = b""
while b"\r\n\r\n" not in buf:
    chunk = s.recv(1)
    if not chunk:
        sys.exit("rs_flooder: the gateway closed during the handshake")
    buf += chunk
if b" 101 " not in buf.split(b"\r\n")[0]:
    sys.exit("rs_flooder: upgrade refused: " + buf.split(b"\r\n")[0].decode())


def ws(payload):
    """A masked binary message. The mask is zero (legal, and the payload then goes as it is)."""
    n = len(payload)
    if n < 126:
        hdr = bytes([0x82, 0x80 | n])
    elif n < 65536:
        hdr = bytes([0x82, 0x80 | 126]) + struct.pack(">H", n)
    else:
        hdr = bytes([0x82, 0x80 | 127]) + struct.pack(">Q", n)
    return hdr + b"\0\0\0\0" + payload


mime = lambda m: bytes([len(m)]) + m
comp = b"message/x.rsocket.composite-metadata.v0"
s.sendall(ws(struct.pack(">IH", 0, 0x01 << 10) + struct.pack(">HHII", 1, 0, 20000, 90000) +
             mime(comp) + mime(b"application/octet-stream")))
md = bytes([0x80 | 0x7e]) + struct.pack(">I", len(route) + 1)[1:] + bytes([len(route)]) + route
data = b"f" * size
# REQUEST_FNF (0x05) with metadata (0x100), stream ids 1, 3, 5, ...
frame = lambda sid: ws(struct.pack(">IH", sid, (0x05 << 10) | 0x100) + struct.pack(">I", len(md))[1:] + md + data)

s.setblocking(False)
sid, sent, pending = 1, 0, b""
end = time.monotonic() + seconds
while time.monotonic() < end:
    if not pending:
        pending = b"".join(frame(sid + 2 * i) for i in range(16))
        sid += 32
    _, w, _ = select.select([], [s], [], 0.05)
    if not w:
        continue
    try:
        n = s.send(pending)
    except BlockingIOError:
        continue
    # Count the frames this send completed: every frame has the same length.
    flen = len(frame(1))
    before = (16 * flen - len(pending)) // flen
    pending = pending[n:]
    sent += (16 * flen - len(pending)) // flen - before
print(f"sent {sent}", flush=True)
s.setblocking(True)
s.sendall(pending)  # the rest of the batch: waits for the gateway to read again
sent += len(pending) // len(frame(1)) + (1 if len(pending) % len(frame(1)) else 0)
print(f"final {sent}", flush=True)
while True:
    time.sleep(60)
