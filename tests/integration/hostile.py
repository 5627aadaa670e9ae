#!/usr/bin/python3
"""Hostile RSocket and WebSocket peers for test_hostile.sh, on raw sockets.

usage: hostile.py SCENARIO HOST PORT SERVER_PID

Each scenario attacks the server at HOST:PORT while sampling its memory (VmRSS of SERVER_PID)
and descriptors from /proc, and prints "key value" lines for the test to check:
  nonreader  SETUP (keepalive 500 ms, lifetime 2 s), then 40 REQUEST_RESPONSE of 1 MiB each whose
             echoes are never read (receive window as small as the kernel allows). Prints
             `reaped SECONDS` (when the server closed our socket: its descriptor count fell back)
             or `reaped never`, and `max_rss_mib N`.
"""
import os
import socket
import struct
import sys
import time


def frame(stream_id, ftype, flags, body):
    head = struct.pack(">IH", stream_id, (ftype << 10) | flags)
    n = len(head) + len(body)
    return n.to_bytes(3, "big") + head + body


def setup(keepalive_ms, lifetime_ms, mime=b"application/octet-stream"):
    body = struct.pack(">HHII", 1, 0, keepalive_ms, lifetime_ms)
    body += bytes([len(mime)]) + mime + bytes([len(mime)]) + mime
    return frame(0, 0x01, 0, body)


def request_response(stream_id, data):
    return frame(stream_id, 0x04, 0, data)


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def nonreader(host, port, pid):
    base = fds(pid)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, port))
    s.setblocking(False)
    out = setup(500, 2000) + b"".join(request_response(2 * i + 1, b"x" * (1 << 20)) for i in range(40))
    start = time.monotonic()
    max_rss = 0
    reaped = None
    off = 0
    while time.monotonic() - start < 30:
        while off < len(out):
            try:
                off += s.send(out[off:off + (1 << 20)])
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                off = len(out)  # the server cut us: nothing more to send
        max_rss = max(max_rss, rss_mib(pid))
        if fds(pid) <= base:
            reaped = time.monotonic() - start
            break
        time.sleep(0.05)
    s.close()
    print(f"sent_mib {off >> 20}")
    print(f"reaped {reaped:.1f}" if reaped is not None else "reaped never")
    print(f"max_rss_mib {max_rss}")


def request_stream(stream_id, n, data):
    return frame(stream_id, 0x06, 0, struct.pack(">I", n) + data)


def read_frame(s):
    """One length-prefixed frame from a blocking socket: (stream_id, type, flags, body)."""
    def exact(k):
        b = b""
        while len(b) < k:
            chunk = s.recv(k - len(b))
            if not chunk:
                raise SystemExit("connection closed")
            b += chunk
        return b
    n = int.from_bytes(exact(3), "big")
    f = exact(n)
    sid, tf = struct.unpack(">IH", f[:6])
    return sid, tf >> 10, tf & 0x3FF, f[6:]


def answer_ms(host, port):
    """Time to the answer of a REQUEST_RESPONSE on a fresh connection (ms)."""
    t0 = time.monotonic()
    c = socket.create_connection((host, port), timeout=30)
    c.sendall(setup(20000, 90000) + request_response(1, b"hi"))
    while True:
        sid, ftype, _, _ = read_frame(c)
        if sid == 1 and ftype == 0x0A:  # PAYLOAD
            break
    c.close()
    return (time.monotonic() - t0) * 1000


def teardown(host, port, pid):
    s = socket.create_connection((host, port))
    out = setup(20000, 90000) + b"".join(request_stream(2 * i + 1, 1, b"x") for i in range(65000))
    s.sendall(out)
    # The server answers each stream once: wait until all 65,000 answers came.
    seen = 0
    s.settimeout(60)
    while seen < 65000:
        sid, ftype, _, _ = read_frame(s)
        if ftype == 0x0A:
            seen += 1
    rss = rss_mib(pid)
    s.close()
    print(f"answer_ms {answer_ms(host, port):.0f}")
    print(f"max_rss_mib {max(rss, rss_mib(pid))}")


def idle(host, port, pid):
    socks = []
    for _ in range(300):
        socks.append(socket.create_connection((host, port)))
        time.sleep(0.002)
    time.sleep(0.5)
    ms = answer_ms(host, port)
    time.sleep(0.5)
    shed = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                shed += 1
        except BlockingIOError:
            pass
        except OSError:
            shed += 1
        s.close()
    print(f"answer_ms {ms:.0f}")
    print(f"shed {shed}")
    print(f"max_rss_mib {rss_mib(pid)}")


def setup_resume(token, keepalive_ms=20000, lifetime_ms=90000, mime=b"application/octet-stream"):
    body = struct.pack(">HHII", 1, 0, keepalive_ms, lifetime_ms)
    body += struct.pack(">H", len(token)) + token
    body += bytes([len(mime)]) + mime + bytes([len(mime)]) + mime
    return frame(0, 0x01, 0x80, body)  # R flag: resume enabled


def resume(host, port, pid):
    max_rss = 0
    for i in range(300):
        s = socket.create_connection((host, port))
        s.sendall(setup_resume(b"tok-%d" % i) + request_stream(1, 0x7FFFFFFF, b"x" * 64))
        s.settimeout(0.02)
        try:
            while True:
                if not s.recv(65536):
                    break
        except (socket.timeout, OSError):
            pass
        s.close()
        if i % 20 == 0:
            max_rss = max(max_rss, rss_mib(pid))
    time.sleep(0.5)
    max_rss = max(max_rss, rss_mib(pid))
    print(f"answer_ms {answer_ms(host, port):.0f}")
    print(f"max_rss_mib {max_rss}")


def ws_connect(host, port, path="/"):
    s = socket.create_connection((host, port))
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit("the server closed during the upgrade")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise SystemExit("upgrade refused: " + head.split(b"\r\n")[0].decode())
    return s


def ws_frame(opcode, payload):
    key = b"\x01\x02\x03\x04"
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + key + masked


def pingflood(host, port, pid):
    s = ws_connect(host, port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setblocking(False)
    burst = ws_frame(0x9, b"p" * 125) * 512
    start = time.monotonic()
    sent = max_rss = 0
    while time.monotonic() - start < 4:
        try:
            sent += s.send(burst)
        except (BlockingIOError, InterruptedError):
            time.sleep(0.001)
        except OSError:
            break  # cut by the server: also fine
        max_rss = max(max_rss, rss_mib(pid))
    s.close()
    print(f"sent_mib {sent >> 20}")
    print(f"max_rss_mib {max_rss}")


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    scenario, host, port, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    scenarios = {"nonreader": nonreader, "pingflood": pingflood, "teardown": teardown, "idle": idle,
                 "resume": resume}
    scenarios[scenario](host, port, pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
