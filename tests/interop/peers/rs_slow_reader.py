# An RSocket-over-WebSocket client that never reads (rsocket-gateway slow-consumer test): it sets up
# on ws://127.0.0.1:PORT/rsocket, asks for an unbounded stream on ROUTE with DATA_BYTES of data,
# then sleeps SECONDS without reading a byte. Usage: rs_slow_reader.py PORT ROUTE DATA_BYTES SECONDS
import socket, struct, sys, os, time, base64
port = int(sys.argv[1]); route = sys.argv[2].encode(); data = b"x" * int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
key = base64.b64encode(os.urandom(16)).decode()
s.sendall(("GET /rsocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
buf = b""
while b"\r\n\r\n" not in buf: buf += s.recv(1)
def ws(payload):
    m = os.urandom(4); n = len(payload)
    hdr = bytes([0x82]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n))
    s.sendall(hdr + m + bytes(b ^ m[i % 4] for i, b in enumerate(payload)))
mime = lambda m: bytes([len(m)]) + m
comp = b"message/x.rsocket.composite-metadata.v0"
ws(struct.pack(">IH", 0, 0x01 << 10) + struct.pack(">HHII", 1, 0, 20000, 90000) + mime(comp) + mime(b"application/octet-stream"))
md = bytes([0x80 | 0x7e]) + struct.pack(">I", len(route) + 1)[1:] + bytes([len(route)]) + route
ws(struct.pack(">IH", 1, (0x06 << 10) | 0x100) + struct.pack(">I", 0x7fffffff) + struct.pack(">I", len(md))[1:] + md + data)
time.sleep(float(sys.argv[4]))
