# A raw RSocket-over-WebSocket client's pieces, for the gateway tests that need a peer which
# misbehaves on purpose (floods, never reads, reads late): no library between the test and the
# socket. Frames are built by hand; composite metadata carries the route.
import socket
import struct
import sys

COMPOSITE = b"message/x.rsocket.composite-metadata.v0"


def upgrade(port, name, rcvbuf=None):
    """A socket to ws://127.0.0.1:PORT/rsocket, upgraded (exits with a message when refused)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # the kernel holds little for us
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /rsocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(1)
        if not chunk:
            sys.exit(f"{name}: the gateway closed during the handshake")
        buf += chunk
    if b" 101 " not in buf.split(b"\r\n")[0]:
        sys.exit(f"{name}: upgrade refused: " + buf.split(b"\r\n")[0].decode())
    return s


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


def setup(keepalive_ms=20000, lifetime_ms=90000):
    """SETUP (version 1.0), composite metadata, application/octet-stream data."""
    mime = lambda m: bytes([len(m)]) + m
    return ws(struct.pack(">IH", 0, 0x01 << 10) + struct.pack(">HHII", 1, 0, keepalive_ms, lifetime_ms)
              + mime(COMPOSITE) + mime(b"application/octet-stream"))


def route_metadata(route):
    """Composite metadata with one routing entry (well-known 0x7E) naming `route` (bytes)."""
    return bytes([0x80 | 0x7E]) + struct.pack(">I", len(route) + 1)[1:] + bytes([len(route)]) + route
