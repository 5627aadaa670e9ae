# An RSocket-over-WebSocket client that never reads (rsocket-gateway slow-consumer test): it sets up
# on ws://127.0.0.1:PORT/rsocket, asks for an unbounded stream on ROUTE with DATA_BYTES of data,
# then sleeps SECONDS without reading a byte. Usage: rs_slow_reader.py PORT ROUTE DATA_BYTES SECONDS
import struct
import sys
import time

from raw_rsocket_ws import route_metadata, setup, upgrade, ws

port, route, data = int(sys.argv[1]), sys.argv[2].encode(), b"x" * int(sys.argv[3])
s = upgrade(port, "rs_slow_reader", rcvbuf=4096)
s.sendall(setup())
md = route_metadata(route)
# REQUEST_STREAM (0x06) with metadata (0x100), stream 1, initial n 2^31-1.
s.sendall(ws(struct.pack(">IH", 1, (0x06 << 10) | 0x100) + struct.pack(">I", 0x7FFFFFFF) +
             struct.pack(">I", len(md))[1:] + md + data))
time.sleep(float(sys.argv[4]))
