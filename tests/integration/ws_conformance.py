#!/usr/bin/python3
"""WebSocket conformance cases modelled on the Autobahn TestSuite's families, played by a raw-socket
client against ws-echo-server. Prints one line per case and a summary "N passed, M failed".

Usage: ws_conformance.py HOST PORT [--max-message N]   (the server's --max-message, for 9.x)
Standard library only; every case uses its own connection and is bounded in time.
"""
import base64
import hashlib
import os
import socket
import struct
import sys

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HOST, PORT = sys.argv[1], int(sys.argv[2])
MAX_MESSAGE = int(sys.argv[sys.argv.index("--max-message") + 1]) if "--max-message" in sys.argv else 0
TIMEOUT = 5.0


class Conn:
    def __init__(self, handshake=True, request=None):
        self.s = socket.create_connection((HOST, PORT), timeout=TIMEOUT)
        self.buf = b""
        if handshake:
            key = base64.b64encode(os.urandom(16))
            req = request or (b"GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                              b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key +
                              b"\r\nSec-WebSocket-Version: 13\r\n\r\n") % (HOST.encode(), PORT)
            self.s.sendall(req)
            head = self.read_head()
            assert head.startswith(b"HTTP/1.1 101"), head
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            assert b"Sec-WebSocket-Accept: " + accept in head, head

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                break
            self.buf += d
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        return head

    def send_raw(self, data, chunk=None):
        try:
            if chunk:
                for i in range(0, len(data), chunk):
                    self.s.sendall(data[i:i + chunk])
            else:
                self.s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may fail the connection before reading everything; read its close

    def frame(self, opcode, payload=b"", fin=True, rsv=0, mask=True, length=None):
        n = len(payload) if length is None else length
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        m = 0x80 if mask else 0
        if n < 126:
            h = struct.pack("!BB", b0, m | n)
        elif n < 65536:
            h = struct.pack("!BBH", b0, m | 126, n)
        else:
            h = struct.pack("!BBQ", b0, m | 127, n)
        if mask:
            key = os.urandom(4)
            payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload)) if len(payload) < 70000 \
                else xor_big(payload, key)
            return h + key + payload
        return h + payload

    def send(self, opcode, payload=b"", **kw):
        chunk = kw.pop("chunk", None)
        self.send_raw(self.frame(opcode, payload, **kw), chunk)

    def recv_exact(self, n):
        while len(self.buf) < n:
            d = self.s.recv(max(65536, n - len(self.buf)))
            if not d:
                raise EOFError
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self):
        b0, b1 = self.recv_exact(2)
        assert not (b1 & 0x80), "server frame masked"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.recv_exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.recv_exact(8))[0]
        return b0 & 0x0F, self.recv_exact(n), bool(b0 & 0x80)

    def expect(self, opcode, payload):
        op, data, _ = self.read_frame()
        assert op == opcode, "got opcode %d (%r), want %d" % (op, data[:40], opcode)
        assert data == payload, "payload differs (%d vs %d bytes)" % (len(data), len(payload))

    def expect_close(self, code):
        op, data, _ = self.read_frame()
        while op != 8:  # echoes or pongs queued before the failure may come first
            op, data, _ = self.read_frame()
        got = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
        assert got == code, "close code %d (%r), want %d" % (got, data[2:], code)
        # After the close handshake the server closes TCP.
        try:
            self.s.settimeout(TIMEOUT)
            while self.s.recv(65536):
                pass
        except (ConnectionResetError, socket.timeout):
            pass

    def close(self):
        self.s.close()


def xor_big(payload, key):
    k = (key * (len(payload) // 4 + 1))[:len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(len(payload), "big")


CASES = []


def case(name):
    def deco(fn):
        CASES.append((name, fn))
        return fn
    return deco


# 1.x framing
for n in [n for n in (0, 125, 126, 127, 128, 65535, 65536, 1 << 20) if not MAX_MESSAGE or n <= MAX_MESSAGE]:
    @case("1.1 text %d bytes" % n)
    def _(n=n):
        c = Conn(); p = b"*" * n; c.send(1, p); c.expect(1, p); c.close()

    @case("1.2 binary %d bytes" % n)
    def _(n=n):
        c = Conn(); p = bytes(i & 0xFF for i in range(n)); c.send(2, p); c.expect(2, p); c.close()


@case("1.3 frame delivered one byte at a time")
def _():
    c = Conn(); p = b"chunked" * 20; c.send(2, p, chunk=1); c.expect(2, p); c.close()


@case("1.4 many messages in one write")
def _():
    c = Conn()
    c.send_raw(b"".join(c.frame(1, b"m%d" % i) for i in range(100)))
    for i in range(100):
        c.expect(1, b"m%d" % i)
    c.close()


# 2.x ping/pong
for n in (0, 10, 125):
    @case("2.1 ping %d bytes gets a pong" % n)
    def _(n=n):
        c = Conn(); p = b"p" * n; c.send(9, p); c.expect(10, p); c.close()


@case("2.2 ping of 126 bytes: 1002")
def _():
    c = Conn(); c.send(9, b"p" * 126); c.expect_close(1002)


@case("2.3 unsolicited pong ignored")
def _():
    c = Conn(); c.send(10, b"unsolicited"); c.send(1, b"after"); c.expect(1, b"after"); c.close()


@case("2.4 ten pings, ten pongs in order")
def _():
    c = Conn()
    for i in range(10):
        c.send(9, b"%d" % i)
    for i in range(10):
        c.expect(10, b"%d" % i)
    c.close()


@case("2.5 fragmented ping: 1002")
def _():
    c = Conn(); c.send(9, b"x", fin=False); c.expect_close(1002)


# 3.x reserved bits
for rsv in (1, 2, 4, 3, 7):
    @case("3 RSV=%d on a text frame: 1002" % rsv)
    def _(rsv=rsv):
        c = Conn(); c.send(1, b"x", rsv=rsv); c.expect_close(1002)


# 4.x opcodes
for op in (3, 4, 5, 6, 7, 11, 12, 13, 14, 15):
    @case("4 reserved opcode %d: 1002" % op)
    def _(op=op):
        c = Conn(); c.send(op, b"x"); c.expect_close(1002)


# 5.x fragmentation
@case("5.1 text in two fragments")
def _():
    c = Conn(); c.send(1, b"frag", fin=False); c.send(0, b"ment"); c.expect(1, b"fragment"); c.close()


@case("5.2 binary in 100 fragments")
def _():
    c = Conn()
    for i in range(99):
        c.send(2 if i == 0 else 0, b"ab", fin=False)
    c.send(0, b"ab")
    c.expect(2, b"ab" * 100); c.close()


@case("5.3 ping between fragments answered at once")
def _():
    c = Conn(); c.send(1, b"one ", fin=False); c.send(9, b"mid"); c.expect(10, b"mid")
    c.send(0, b"two"); c.expect(1, b"one two"); c.close()


@case("5.4 continuation without a message: 1002")
def _():
    c = Conn(); c.send(0, b"x"); c.expect_close(1002)


@case("5.5 text frame inside a fragmented message: 1002")
def _():
    c = Conn(); c.send(1, b"a", fin=False); c.send(1, b"b"); c.expect_close(1002)


@case("5.6 empty fragments")
def _():
    c = Conn(); c.send(1, b"", fin=False); c.send(0, b"", fin=False); c.send(0, b"")
    c.expect(1, b""); c.close()


# 6.x UTF-8
VALID = ["κόσμε", "\U0001F600", "\uffff", "\U0010FFFF", "a" * 1000]
for i, s in enumerate(VALID):
    @case("6.1 valid UTF-8 #%d" % i)
    def _(s=s):
        c = Conn(); p = s.encode(); c.send(1, p); c.expect(1, p); c.close()

INVALID = [b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xff", b"\x80",
           b"ok\xce", b"\xf8\x88\x80\x80\x80"]
for i, p in enumerate(INVALID):
    @case("6.2 invalid UTF-8 #%d: 1007" % i)
    def _(p=p):
        c = Conn(); c.send(1, p); c.expect_close(1007)


@case("6.3 invalid UTF-8 in the first fragment fails before the message ends")
def _():
    c = Conn(); c.send(1, b"hello \xed\xa0\x80", fin=False)  # no more fragments sent
    c.expect_close(1007)


@case("6.4 a code point split across fragments is fine")
def _():
    c = Conn(); c.send(1, b"\xce", fin=False); c.send(0, b"\xba"); c.expect(1, "κ".encode()); c.close()


# 7.x close handling
@case("7.1 close 1000 is echoed")
def _():
    c = Conn(); c.send(8, struct.pack("!H", 1000) + b"bye"); c.expect_close(1000)


@case("7.2 empty close answered with 1000")
def _():
    c = Conn(); c.send(8, b""); c.expect_close(1000)


@case("7.3 close with a 1-byte payload: 1002")
def _():
    c = Conn(); c.send(8, b"\x03"); c.expect_close(1002)


for code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999):
    @case("7.4 valid close code %d echoed" % code)
    def _(code=code):
        c = Conn(); c.send(8, struct.pack("!H", code)); c.expect_close(code)

for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535):
    @case("7.5 invalid close code %d: 1002" % code)
    def _(code=code):
        c = Conn(); c.send(8, struct.pack("!H", code)); c.expect_close(1002)


@case("7.6 close reason not UTF-8: 1007")
def _():
    c = Conn(); c.send(8, struct.pack("!H", 1000) + b"\xff"); c.expect_close(1007)


@case("7.7 data after the close is ignored")
def _():
    c = Conn(); c.send_raw(c.frame(8, struct.pack("!H", 1000)) + c.frame(1, b"late"))
    c.expect_close(1000)


@case("7.8 unmasked client frame: 1002")
def _():
    c = Conn(); c.send(1, b"x", mask=False); c.expect_close(1002)


# 9.x limits
if MAX_MESSAGE:
    @case("9.1 message of max-message bytes is echoed")
    def _():
        c = Conn(); p = b"m" * MAX_MESSAGE; c.send(2, p); c.expect(2, p); c.close()

    @case("9.2 message one byte over max-message: 1009")
    def _():
        c = Conn(); c.send(2, b"m" * (MAX_MESSAGE + 1)); c.expect_close(1009)

    @case("9.3 fragments adding up over max-message: 1009")
    def _():
        c = Conn(); half = MAX_MESSAGE // 2 + 1
        c.send(2, b"a" * half, fin=False); c.send(0, b"b" * half); c.expect_close(1009)


# Handshake
def handshake_status(req):
    c = Conn(handshake=False)
    c.s.sendall(req)
    head = c.read_head()
    c.close()
    return head


def req(**over):
    h = {"Host": "%s:%d" % (HOST, PORT), "Upgrade": "websocket", "Connection": "Upgrade",
         "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}
    method = over.pop("method", "GET")
    for k, v in over.items():
        k = k.replace("_", "-")
        if v is None:
            h.pop(k, None)
        else:
            h[k] = v
    return ("%s / HTTP/1.1\r\n" % method + "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n").encode()


@case("H.1 version 8: 426 with Sec-WebSocket-Version: 13")
def _():
    head = handshake_status(req(Sec_WebSocket_Version="8"))
    assert head.startswith(b"HTTP/1.1 426") and b"Sec-WebSocket-Version: 13" in head, head


@case("H.2 missing key: 400")
def _():
    assert handshake_status(req(Sec_WebSocket_Key=None)).startswith(b"HTTP/1.1 400")


@case("H.3 key not 16 bytes: 400")
def _():
    assert handshake_status(req(Sec_WebSocket_Key="c2hvcnQ=")).startswith(b"HTTP/1.1 400")


@case("H.4 POST: 400")
def _():
    assert handshake_status(req(method="POST")).startswith(b"HTTP/1.1 400")


@case("H.5 no Upgrade header: 400")
def _():
    assert handshake_status(req(Upgrade=None)).startswith(b"HTTP/1.1 400")


@case("H.6 Connection list with upgrade accepted")
def _():
    assert handshake_status(req(Connection="keep-alive, Upgrade")).startswith(b"HTTP/1.1 101")


@case("H.7 frames pipelined right after the request are not lost")
def _():
    c = Conn(handshake=False)
    c.s.sendall(req() + c.frame(1, b"early"))
    assert c.read_head().startswith(b"HTTP/1.1 101")
    c.expect(1, b"early")
    c.close()


passed = failed = 0
for name, fn in CASES:
    try:
        fn()
        passed += 1
        print("ok   " + name)
    except Exception as e:  # noqa: BLE001 - report every failure and go on
        failed += 1
        print("FAIL %s: %s: %s" % (name, type(e).__name__, e))
print("ws_conformance: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
