#!/usr/bin/python3
"""WebSocket conformance of our *client* (build/bin/ws-client, the code path of RSocket over
ws://), in the manner of the Autobahn TestSuite's client mode: a misbehaving test server written
here on raw sockets plays each case, and the client must echo what is valid and fail what is not
with the right close code. Also: the Python `websockets` library as a server for our client.

Usage: ws_client_conformance.py WS_CLIENT_BINARY
Prints one line per case and a report by family (passed/failed, like Autobahn's); exit 1 on any
failure. Every client frame must be masked with a fresh key; the server checks it on every case.
"""
import asyncio
import base64
import hashlib
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib

CLIENT = sys.argv[1]
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TIMEOUT = 5.0


def frame(op, payload=b"", fin=True, rsv=0, mask=None):
    b0 = (0x80 if fin else 0) | (rsv << 4) | op
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        hdr = bytes([b0, m | n])
    elif n < 65536:
        hdr = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        hdr = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if mask:
        hdr += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return hdr + payload


def close_frame(code=None, reason=b""):
    return frame(8, b"" if code is None else struct.pack(">H", code) + reason)


class Peer:
    """The server side of one case: reads the client's frames, checking the masking."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.unmasked = 0
        self.keys = set()
        self.frames = 0

    def send(self, data):
        self.sock.sendall(data)

    def _need(self, n, deadline):
        while len(self.buf) < n:
            self.sock.settimeout(max(0.01, deadline - time.time()))
            d = self.sock.recv(65536)
            if not d:
                raise EOFError
            self.buf += d

    def read_frame(self, deadline):
        self._need(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        n = b1 & 0x7F
        off = 2
        if n == 126:
            self._need(4, deadline)
            n = struct.unpack(">H", self.buf[2:4])[0]
            off = 4
        elif n == 127:
            self._need(10, deadline)
            n = struct.unpack(">Q", self.buf[2:10])[0]
            off = 10
        masked = bool(b1 & 0x80)
        key = b""
        if masked:
            self._need(off + 4, deadline)
            key = self.buf[off:off + 4]
            off += 4
        self._need(off + n, deadline)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        if masked:
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            self.keys.add(key)
        else:
            self.unmasked += 1
        self.frames += 1
        return (bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, payload)

    def read_message(self, deadline):
        """A whole data message (opcode, bytes) or a control frame ('ping'/'pong'/'close', data)."""
        parts, op0 = [], None
        while True:
            fin, rsv, op, payload = self.read_frame(deadline)
            if op >= 8:
                return ({8: "close", 9: "ping", 10: "pong"}.get(op, op), payload, rsv)
            if op != 0:
                op0 = op
            parts.append(payload)
            if fin:
                return (op0, b"".join(parts), rsv)


def accept_value(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def read_request(conn, deadline):
    data = b""
    while b"\r\n\r\n" not in data:
        conn.settimeout(max(0.01, deadline - time.time()))
        d = conn.recv(4096)
        if not d:
            raise EOFError
        data += d
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {}
    for l in lines[1:]:
        k, v = l.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    return lines[0], headers, rest


def response(headers, status="101 Switching Protocols", accept=None, extra="", upgrade=True):
    key = headers.get("sec-websocket-key", "")
    r = f"HTTP/1.1 {status}\r\n"
    if upgrade:
        r += "Upgrade: websocket\r\nConnection: Upgrade\r\n"
    r += f"Sec-WebSocket-Accept: {accept or accept_value(key)}\r\n{extra}\r\n"
    return r.encode()


class Case:
    def __init__(self, family, name, play, client_args=(), handshake=None, expect_exit=None):
        self.family, self.name, self.play = family, name, play
        self.client_args = list(client_args)
        self.handshake = handshake  # fn(headers) -> bytes, default a valid 101
        self.expect_exit = expect_exit


def run_case(case):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    port = ls.getsockname()[1]
    proc = subprocess.Popen([CLIENT, "--echo", "--timeout", str(TIMEOUT), *case.client_args,
                             f"ws://127.0.0.1:{port}/case"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    deadline = time.time() + TIMEOUT
    problems = []
    try:
        ls.settimeout(TIMEOUT)
        conn, _ = ls.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _, headers, _ = read_request(conn, deadline)
        if headers.get("sec-websocket-version") != "13":
            problems.append("client did not ask for version 13")
        hs = case.handshake(headers) if case.handshake else response(headers)
        peer = Peer(conn)
        if hs is not None:
            conn.sendall(hs)
        err = case.play(peer, headers, deadline)
        if err:
            problems.append(err)
        if peer.unmasked:
            problems.append(f"{peer.unmasked} client frames were not masked")
        if peer.frames > 3 and len(peer.keys) < 2:
            problems.append("the client reused one masking key")
        conn.close()
    except (EOFError, socket.timeout, OSError) as e:
        problems.append(f"server side: {type(e).__name__} {e}")
    finally:
        ls.close()
    try:
        out, _ = proc.communicate(timeout=TIMEOUT + 2)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        problems.append("client did not exit")
    if case.expect_exit is not None and proc.returncode != case.expect_exit:
        problems.append(f"client exit {proc.returncode}, want {case.expect_exit}")
    return problems, out.decode(errors="replace")


# ---- plays: each returns None on success or a description of what went wrong ----

def expect_close(peer, deadline, code):
    """Reads until the client's close frame; checks its code and that nothing invalid precedes."""
    while True:
        try:
            kind, data, _ = peer.read_message(deadline)
        except EOFError:
            return f"client closed TCP without a close frame (want {code})"
        if kind == "close":
            got = struct.unpack(">H", data[:2])[0] if len(data) >= 2 else None
            if got != code:
                return f"client closed with {got}, want {code}"
            return None
        if kind == "pong":
            continue
        return f"client sent a {kind} message ({len(data)} B) where only a close was expected"


def finish(peer, deadline):
    """Normal end: we close with 1000, the client must echo 1000."""
    peer.send(close_frame(1000, b"bye"))
    return expect_close(peer, deadline, 1000)


def echo_play(messages, send=None):
    """Sends `send` (raw bytes, default one frame per message) and expects every message echoed."""
    def play(peer, headers, deadline):
        peer.send(send if send is not None else b"".join(frame(op, d) for op, d in messages))
        dctx = zlib.decompressobj(wbits=-15)  # a client in a deflate session may compress
        for op, d in messages:
            kind, data, rsv = peer.read_message(deadline)
            while kind == "pong":
                kind, data, rsv = peer.read_message(deadline)
            if rsv & 4:
                data = dctx.decompress(data + b"\x00\x00\xff\xff")
            if (kind, data) != (op, d):
                return f"echo: got {kind} {data[:40]!r}… ({len(data)} B), want {op} ({len(d)} B)"
        return finish(peer, deadline)
    return play


def fail_play(send, code):
    def play(peer, headers, deadline):
        peer.send(send)
        return expect_close(peer, deadline, code)
    return play


def ping_play(payload, count=1):
    def play(peer, headers, deadline):
        for i in range(count):
            peer.send(frame(9, payload + bytes([i]) if count > 1 else payload))
        for i in range(count):
            kind, data, _ = peer.read_message(deadline)
            want = payload + bytes([i]) if count > 1 else payload
            if kind != "pong" or data != want:
                return f"want pong {want[:20]!r}, got {kind} {data[:20]!r}"
        return finish(peer, deadline)
    return play


def slow_play(peer, headers, deadline):
    msg = b"sent one byte at a time"
    for b in frame(1, msg):
        peer.send(bytes([b]))
        time.sleep(0.001)
    kind, data, _ = peer.read_message(deadline)
    if (kind, data) != (1, msg):
        return f"got {kind} {data!r}"
    return finish(peer, deadline)


def fragments_with_ping(peer, headers, deadline):
    peer.send(frame(1, b"frag", fin=False) + frame(9, b"in-between") + frame(0, b"ment", fin=False)
              + frame(0, b"ed"))
    got = [peer.read_message(deadline)[:2] for _ in range(2)]
    if got != [("pong", b"in-between"), (1, b"fragmented")]:
        return f"got {got}"
    return finish(peer, deadline)


def fail_fast_utf8(peer, headers, deadline):
    # The first fragment already holds a sequence no continuation can repair: the client must
    # fail (1007) without waiting for the final fragment, which never comes.
    peer.send(frame(1, b"ok \xce\xba\xf4\x90\x80\x80", fin=False))
    return expect_close(peer, deadline, 1007)


def oversize_fragmented(peer, headers, deadline):
    # --max-message 1000: the second fragment crosses the limit; the third never comes.
    peer.send(frame(2, b"a" * 600, fin=False) + frame(0, b"b" * 600, fin=False))
    return expect_close(peer, deadline, 1009)


def data_after_close(peer, headers, deadline):
    peer.send(close_frame(1000) + frame(1, b"after close"))
    return expect_close(peer, deadline, 1000)


def rsv_after_valid(peer, headers, deadline):
    peer.send(frame(1, b"ok") + frame(1, b"x", rsv=4))
    got = peer.read_message(deadline)[:2]
    if got != (1, b"ok"):
        return f"the valid message was not echoed first: got {got}"
    return expect_close(peer, deadline, 1002)


def unfinished_then_close(peer, headers, deadline):
    peer.send(frame(1, b"part", fin=False))
    return finish(peer, deadline)


def noop_then_close(peer, headers, deadline):
    return finish(peer, deadline)


def no_frames(peer, headers, deadline):
    # The handshake was refused by the client: it must not send any frame.
    try:
        peer.read_frame(deadline)
        return "client sent a frame after a bad handshake"
    except (EOFError, socket.timeout, OSError):
        return None


def deflate_response(extra):
    def hs(headers):
        if "permessage-deflate" not in headers.get("sec-websocket-extensions", ""):
            return response(headers, status="400 Bad Request", upgrade=False)
        return response(headers, extra=f"Sec-WebSocket-Extensions: {extra}\r\n")
    return hs


def compress(data, ctx=None):
    c = ctx or zlib.compressobj(wbits=-15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def deflate_echo(messages, server_takeover=True):
    def play(peer, headers, deadline):
        ctx = zlib.compressobj(wbits=-15)
        dctx = zlib.decompressobj(wbits=-15)
        for d in messages:
            peer.send(frame(1, compress(d, ctx if server_takeover else None), rsv=4))
        for d in messages:
            kind, data, rsv = peer.read_message(deadline)
            if rsv & 4:
                data = dctx.decompress(data + b"\x00\x00\xff\xff")
            if (kind, data) != (1, d):
                return f"deflate echo: got {kind} {data[:30]!r}, want {d[:30]!r}"
        return finish(peer, deadline)
    return play


def build_cases():
    C = []
    # 1 Framing
    for n in (0, 1, 125, 126, 127, 65535, 65536):
        C.append(Case("1 framing", f"text of {n} bytes", echo_play([(1, b"*" * n)])))
    for n in (0, 16, 65536, 1 << 20):
        C.append(Case("1 framing", f"binary of {n} bytes", echo_play([(2, os.urandom(n))])))
    C.append(Case("1 framing", "text sent one byte per TCP segment", slow_play))
    C.append(Case("1 framing", "100 messages in one TCP segment",
                  echo_play([(1, f"m{i}".encode()) for i in range(100)])))
    # 2 Ping/pong
    C.append(Case("2 ping/pong", "ping without payload", ping_play(b"")))
    C.append(Case("2 ping/pong", "ping of 125 bytes", ping_play(b"p" * 125)))
    C.append(Case("2 ping/pong", "ping of 126 bytes: 1002", fail_play(frame(9, b"p" * 126), 1002)))
    C.append(Case("2 ping/pong", "ten pings answered in order", ping_play(b"n", 10)))
    C.append(Case("2 ping/pong", "unsolicited pong is ignored",
                  echo_play([(1, b"after pong")], send=frame(10, b"x") + frame(1, b"after pong"))))
    C.append(Case("2 ping/pong", "fragmented ping: 1002",
                  fail_play(frame(9, b"a", fin=False) + frame(0, b"b"), 1002)))
    C.append(Case("2 ping/pong", "binary ping payload",
                  ping_play(bytes(range(0, 250, 2)))))
    # 3 Reserved bits
    for rsv in (4, 2, 1):
        C.append(Case("3 reserved bits", f"RSV={rsv} on text: 1002",
                      fail_play(frame(1, b"x", rsv=rsv), 1002)))
    C.append(Case("3 reserved bits", "RSV=7 on ping: 1002", fail_play(frame(9, b"", rsv=7), 1002)))
    C.append(Case("3 reserved bits", "RSV1 after a valid message: echo then 1002",
                  rsv_after_valid))
    # 4 Opcodes
    for op in (3, 4, 5, 6, 7, 11, 12, 13, 14, 15):
        C.append(Case("4 opcodes", f"reserved opcode {op}: 1002", fail_play(frame(op, b"x"), 1002)))
    # 5 Fragmentation
    C.append(Case("5 fragmentation", "text in three fragments",
                  echo_play([(1, b"fragmented")],
                            send=frame(1, b"frag", fin=False) + frame(0, b"ment", fin=False)
                            + frame(0, b"ed"))))
    C.append(Case("5 fragmentation", "ping between fragments", fragments_with_ping))
    C.append(Case("5 fragmentation", "empty fragments",
                  echo_play([(2, b"xy")], send=frame(2, b"", fin=False) + frame(0, b"x", fin=False)
                            + frame(0, b"", fin=False) + frame(0, b"y"))))
    C.append(Case("5 fragmentation", "two fragments of 64 KiB",
                  echo_play([(2, b"a" * 65536 + b"b" * 65536)],
                            send=frame(2, b"a" * 65536, fin=False) + frame(0, b"b" * 65536))))
    C.append(Case("5 fragmentation", "continuation without a start: 1002",
                  fail_play(frame(0, b"x"), 1002)))
    C.append(Case("5 fragmentation", "new text inside a fragmented message: 1002",
                  fail_play(frame(1, b"a", fin=False) + frame(1, b"b"), 1002)))
    C.append(Case("5 fragmentation", "unfinished fragmented message then close",
                  unfinished_then_close))
    # 6 UTF-8
    for label, data in (("two-byte", "κόσμε".encode()), ("four-byte", "😀".encode()),
                        ("mixed", "ascii ünïcödé 日本 😀".encode())):
        C.append(Case("6 utf-8", f"valid {label} text", echo_play([(1, data)])))
    C.append(Case("6 utf-8", "valid text split inside a character across fragments",
                  echo_play([(1, "κ".encode())], send=frame(1, b"\xce", fin=False)
                            + frame(0, b"\xba"))))
    for label, data in (("0xFF byte", b"\xff"), ("overlong C0 80", b"\xc0\x80"),
                        ("surrogate ED A0 80", b"\xed\xa0\x80"),
                        ("above U+10FFFF", b"\xf4\x90\x80\x80"),
                        ("truncated at the end", b"ok\xe2\x82")):
        C.append(Case("6 utf-8", f"invalid text ({label}): 1007", fail_play(frame(1, data), 1007)))
    C.append(Case("6 utf-8", "invalid text detected in the first fragment (fail fast): 1007",
                  fail_fast_utf8))
    C.append(Case("6 utf-8", "binary is not validated", echo_play([(2, b"\xff\xfe\xc0")])))
    # 7 Close
    C.append(Case("7 close", "close 1000 echoed, exit 0", noop_then_close, expect_exit=0))
    C.append(Case("7 close", "close without payload: answered 1000",
                  fail_play(close_frame(), 1000)))
    C.append(Case("7 close", "close with a 1-byte payload: 1002", fail_play(frame(8, b"\x03"), 1002)))
    for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535):
        C.append(Case("7 close", f"invalid close code {code}: 1002",
                      fail_play(close_frame(code), 1002)))
    for code in (1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999):
        C.append(Case("7 close", f"valid close code {code} echoed", fail_play(close_frame(code), code)))
    C.append(Case("7 close", "close reason of 123 bytes echoed",
                  fail_play(close_frame(1000, b"r" * 123), 1000)))
    C.append(Case("7 close", "close reason with invalid UTF-8: 1007",
                  fail_play(close_frame(1000, b"\xff"), 1007)))
    C.append(Case("7 close", "data after the close frame is ignored", data_after_close))
    # 8 Limits
    C.append(Case("8 limits", "message over --max-message: 1009",
                  fail_play(frame(2, b"x" * 1001), 1009), client_args=["--max-message", "1000"]))
    C.append(Case("8 limits", "message of exactly --max-message echoed",
                  echo_play([(2, b"x" * 1000)]), client_args=["--max-message", "1000"]))
    C.append(Case("8 limits", "fragmented message crossing --max-message: 1009",
                  oversize_fragmented, client_args=["--max-message", "1000"]))
    # 9 Masking
    C.append(Case("9 masking", "masked frame from the server: 1002",
                  fail_play(frame(1, b"masked", mask=b"\x01\x02\x03\x04"), 1002)))
    # 10 Handshake (the client must refuse, send no frame, exit 3)
    C.append(Case("10 handshake", "wrong Sec-WebSocket-Accept", no_frames,
                  handshake=lambda h: response(h, accept="AAAAAAAAAAAAAAAAAAAAAAAAAAA="), expect_exit=3))
    C.append(Case("10 handshake", "status 200 instead of 101", no_frames,
                  handshake=lambda h: response(h, status="200 OK"), expect_exit=3))
    C.append(Case("10 handshake", "403 Forbidden", no_frames,
                  handshake=lambda h: b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
                  expect_exit=3))
    C.append(Case("10 handshake", "no Upgrade header", no_frames,
                  handshake=lambda h: response(h, upgrade=False), expect_exit=3))
    C.append(Case("10 handshake", "extension that was not offered", no_frames,
                  handshake=lambda h: response(h, extra="Sec-WebSocket-Extensions: permessage-deflate\r\n"),
                  expect_exit=3))
    C.append(Case("10 handshake", "subprotocol that was not offered", no_frames,
                  handshake=lambda h: response(h, extra="Sec-WebSocket-Protocol: chat\r\n"),
                  expect_exit=3))
    C.append(Case("10 handshake", "garbage instead of HTTP", no_frames,
                  handshake=lambda h: b"SSH-2.0-OpenSSH\r\n\r\n", expect_exit=3))
    C.append(Case("10 handshake", "offered subprotocol accepted", echo_play([(1, b"proto")]),
                  client_args=["--subprotocol", "rsocket"],
                  handshake=lambda h: response(h, extra="Sec-WebSocket-Protocol: rsocket\r\n")
                  if h.get("sec-websocket-protocol") == "rsocket" else b"HTTP/1.1 400 Bad\r\n\r\n"))
    C.append(Case("10 handshake", "101 and the first frame in one segment",
                  echo_play([(1, b"early")], send=b""),
                  handshake=lambda h: response(h) + frame(1, b"early")))
    # 12 permessage-deflate (the client offers it with --deflate)
    dfl = ["--deflate"]
    C.append(Case("11 permessage-deflate", "compressed text echoed",
                  deflate_echo([b"hello " * 100]), client_args=dfl,
                  handshake=deflate_response("permessage-deflate")))
    C.append(Case("11 permessage-deflate", "context takeover across 20 messages",
                  deflate_echo([f"message {i} ".encode() * 20 for i in range(20)]), client_args=dfl,
                  handshake=deflate_response("permessage-deflate")))
    C.append(Case("11 permessage-deflate", "server_no_context_takeover",
                  deflate_echo([b"abc" * 50] * 3, server_takeover=False), client_args=dfl,
                  handshake=deflate_response("permessage-deflate; server_no_context_takeover")))
    C.append(Case("11 permessage-deflate", "client_max_window_bits=9 accepted",
                  deflate_echo([b"window " * 300]), client_args=dfl,
                  handshake=deflate_response("permessage-deflate; client_max_window_bits=9")))
    C.append(Case("11 permessage-deflate", "uncompressed message in a deflate session",
                  echo_play([(1, b"plain")]), client_args=dfl,
                  handshake=deflate_response("permessage-deflate")))
    C.append(Case("11 permessage-deflate", "inflating past --max-message: 1009",
                  fail_play(frame(2, compress(b"\0" * 100000), rsv=4), 1009),
                  client_args=dfl + ["--max-message", "10000"],
                  handshake=deflate_response("permessage-deflate")))
    C.append(Case("11 permessage-deflate", "invalid deflate data: 1007",
                  fail_play(frame(2, b"\xff\xff\xff\xff\xff", rsv=4), 1007), client_args=dfl,
                  handshake=deflate_response("permessage-deflate")))
    C.append(Case("11 permessage-deflate", "RSV1 on a continuation frame: 1002",
                  fail_play(frame(1, compress(b"ab"), fin=False, rsv=4)
                            + frame(0, b"x", rsv=4), 1002), client_args=dfl,
                  handshake=deflate_response("permessage-deflate")))
    C.append(Case("11 permessage-deflate", "unknown parameter in the answer refused", no_frames,
                  client_args=dfl, handshake=deflate_response("permessage-deflate; foo=1"),
                  expect_exit=3))
    return C


def python_websockets_server():
    """The `websockets` library (Debian python3-websockets) as an echo server for our client."""
    import websockets
    results = []
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port_box = []

    async def echo(ws, path=None):
        async for msg in ws:
            await ws.send(msg)

    async def main(compression, stop):
        async with websockets.serve(echo, "127.0.0.1", 0, compression=compression,
                                    max_size=2 ** 22) as server:
            port_box.append(server.sockets[0].getsockname()[1])
            ready.set()
            await stop

    checks = []
    for compression in (None, "deflate"):
        ready.clear()
        port_box.clear()
        stop = loop.create_future()
        t = threading.Thread(target=lambda: loop.run_until_complete(main(compression, stop)))
        t.start()
        ready.wait(10)
        port = port_box[0]
        args = ["--deflate"] if compression else []
        label = "python websockets server" + (" with permessage-deflate" if compression else "")
        msgs = ["hello", "κόσμε 😀", "x" * 70000]
        r = subprocess.run([CLIENT, *args, "--timeout", "10", "--expect", str(len(msgs)),
                            *sum((["--send", m] for m in msgs), []), f"ws://127.0.0.1:{port}/"],
                           capture_output=True, text=True, timeout=20)
        got = [l.split(" ", 2) for l in r.stdout.splitlines() if l.startswith("text ")]
        want = [["text", str(len(m.encode())), m if len(m.encode()) <= 1024 else m[:1024] + "..."]
                for m in msgs]
        ok = r.returncode == 0 and got == want and "close 1000" in r.stdout
        checks.append((label + ": 3 text messages echoed, close 1000", ok,
                       f"exit {r.returncode}: {r.stdout[-300:]}"))
        r = subprocess.run([CLIENT, *args, "--binary", "--timeout", "10", "--expect", "1", "--send",
                            "binary payload", f"ws://127.0.0.1:{port}/"],
                           capture_output=True, text=True, timeout=20)
        ok = r.returncode == 0 and ("binary 14 " + b"binary payload".hex()) in r.stdout
        checks.append((label + ": binary message echoed", ok, r.stdout[-300:]))
        loop.call_soon_threadsafe(stop.set_result, None)
        t.join(10)
    return checks


def main():
    cases = build_cases()
    by_family = {}
    failed = 0
    for i, case in enumerate(cases, 1):
        problems, out = run_case(case)
        ok = not problems
        by_family.setdefault(case.family, [0, 0])[0 if ok else 1] += 1
        print(f"{'ok  ' if ok else 'FAIL'} {i:3d} [{case.family}] {case.name}")
        if not ok:
            failed += 1
            for p in problems:
                print(f"       {p}")
            print("       client said: " + " | ".join(out.strip().splitlines()[-4:]))
    print("\nclient-mode report (misbehaving test server):")
    for fam in sorted(by_family, key=lambda f: int(f.split()[0])):
        p, f = by_family[fam]
        print(f"  {fam:28s} {p:3d} passed {f:3d} failed")
    print(f"  {'total':28s} {len(cases) - failed:3d} passed {failed:3d} failed")
    peer = python_websockets_server()
    print("\nsecond peer:")
    for label, ok, detail in peer:
        print(f"  {'ok  ' if ok else 'FAIL'} {label}")
        if not ok:
            failed += 1
            print(f"       {detail}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
