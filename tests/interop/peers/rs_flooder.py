# An RSocket-over-WebSocket client that sends fire-and-forget as fast as its socket takes them
# (rsocket-gateway read-pause test): it sets up on ws://127.0.0.1:PORT/rsocket (composite
# metadata), then for SECONDS writes REQUEST_FNF frames with ROUTE and DATA_BYTES of data, never
# waiting for anything but the socket (no buffering of its own: when the gateway stops reading,
# the kernel's buffers fill and it waits). Then it prints "sent N" (frames whole in the socket),
# finishes the frame it was in the middle of, prints "final M" (every frame it sent) and stays
# connected until killed. Usage: rs_flooder.py PORT ROUTE DATA_BYTES SECONDS [fnf|mdpush]
# [LIFETIME_MS]: the SETUP's max lifetime (default 90000; it never sends KEEPALIVE itself, so a
# short one shows whether the gateway holds the silence it causes while it is not reading against
# the client).
# mdpush: METADATA_PUSH frames instead (stream 0, no flow control in RSocket at all), each with
# the routing entry and a text/plain entry of DATA_BYTES.
import select
import struct
import sys
import time

from raw_rsocket_ws import route_metadata, setup, upgrade, ws

port, route, size, seconds = int(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3]), float(sys.argv[4])
mode = sys.argv[5] if len(sys.argv) > 5 else "fnf"
lifetime = int(sys.argv[6]) if len(sys.argv) > 6 else 90000
if mode not in ("fnf", "mdpush"):
    sys.exit(f"rs_flooder: unknown mode {mode!r} (fnf or mdpush)")
s = upgrade(port, "rs_flooder")
s.sendall(setup(keepalive_ms=min(20000, lifetime), lifetime_ms=lifetime))
md = route_metadata(route)
data = b"f" * size
# REQUEST_FNF (0x05) with metadata (0x100), stream ids 1, 3, 5, ...
fnf = lambda sid: ws(struct.pack(">IH", sid, (0x05 << 10) | 0x100) + struct.pack(">I", len(md))[1:] + md + data)
# METADATA_PUSH (0x0C, metadata flag set, stream 0): the frame's body is the metadata; text/plain
# is the well-known MIME 0x21
pad = bytes([0x80 | 0x21]) + struct.pack(">I", size)[1:] + data
push = ws(struct.pack(">IH", 0, (0x0C << 10) | 0x100) + md + pad)
frame = fnf if mode == "fnf" else (lambda sid: push)

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
