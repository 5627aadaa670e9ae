#!/usr/bin/python3
"""A WebSocket client of rsocket-gateway's JSON protocol for the test_gateway*.sh scripts, on the
standard library only (RFC 6455 by hand: masked frames, 7/16/64-bit lengths, fragmented messages
and control frames from the server, close codes).

As a library (scenario scripts import it):
    c = Client(port)                    # upgrade on "/" (path=, subprotocol=, rcvbuf= too)
    c.send({"type": "req", ...})        # one JSON text message; c.send_text/c.send_frame for raw
    m = c.recv(timeout=5)               # the next message as a dict (pings answered on the way)
    code, reason = c.recv_close()       # waits for the server's close frame (or the socket's end)
    status, headers, body = http_get(port, "/healthz")
    CHECK(name, want, got)              # prints a line for lib.sh's check (see run_checks)

Scenario files (gateway_*.py) `from gwclient import *` and end with run({...}): the shell runs
`gateway_x.py SCENARIO ARGS...`; every CHECK prints "CHECK<TAB>name<TAB>want<TAB>got" on stdout,
which tests/integration/test_gateway*.sh turn into lib.sh `check` calls.
"""
import base64
import json
import os
import select
import socket
import struct
import sys
import time

HOST = "127.0.0.1"


class Closed(Exception):
    """The server closed the WebSocket (code, reason) or the socket ended (None, "")."""

    def __init__(self, code, reason):
        super().__init__(f"closed {code} {reason!r}")
        self.code = code
        self.reason = reason


class Timeout(Exception):
    pass


def handshake(sock, host, port, path, subprotocol=None, extra=""):
    key = base64.b64encode(os.urandom(16)).decode()
    req = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n")
    if subprotocol:
        req += f"Sec-WebSocket-Protocol: {subprotocol}\r\n"
    sock.sendall((req + extra + "\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise Closed(None, "the server closed during the upgrade")
        head += chunk
    head, rest = head.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest


class Client:
    def __init__(self, port, path="/", subprotocol=None, rcvbuf=None, host=HOST, timeout=10):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        status, self.headers, self.buf = handshake(self.sock, host, port, path, subprotocol)
        if status != 101:
            raise Closed(None, f"upgrade refused: {status}")
        self.closed = None  # (code, reason) once the server's close frame came
        self.frag = None  # (opcode, bytes) of a fragmented message being received

    # ---- sending ----
    def send_frame(self, opcode, payload, fin=True, mask=True, rsv=0):
        if isinstance(payload, str):
            payload = payload.encode()
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | rsv | opcode])
        mbit = 0x80 if mask else 0
        if n < 126:
            head += bytes([mbit | n])
        elif n < 65536:
            head += bytes([mbit | 126]) + struct.pack(">H", n)
        else:
            head += bytes([mbit | 127]) + struct.pack(">Q", n)
        if mask:
            key = os.urandom(4)
            head += key
            payload = xor(payload, key)
        self.sock.sendall(head + payload)

    def send_text(self, text):
        self.send_frame(0x1, text)

    def send(self, msg):
        self.send_text(json.dumps(msg, separators=(",", ":")))

    def close(self, code=1000, reason=b""):
        try:
            self.send_frame(0x8, struct.pack(">H", code) + reason)
        except OSError:
            pass

    def shutdown(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # ---- receiving ----
    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout()
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                raise Timeout()
            try:
                chunk = self.sock.recv(1 << 16)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise Closed(None, "")
            self.buf += chunk

    def recv_frame(self, timeout=5):
        """One frame: (fin, opcode, payload). The server's frames must not be masked."""
        deadline = time.monotonic() + timeout
        self._fill(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        if b1 & 0x80:
            raise AssertionError("a masked frame from the server")
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._fill(4, deadline)
            n, off = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._fill(10, deadline)
            n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._fill(off + n, deadline)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv_message(self, timeout=5):
        """The next data message, ("text", str) or ("binary", bytes); pings are answered and
        pongs skipped; a close frame raises Closed (and is answered)."""
        deadline = time.monotonic() + timeout
        while True:
            fin, op, payload = self.recv_frame(max(deadline - time.monotonic(), 0.001))
            if op == 0x8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                self.closed = (code, payload[2:].decode("utf-8", "replace"))
                try:
                    self.send_frame(0x8, payload[:2])
                except OSError:
                    pass
                raise Closed(*self.closed)
            if op == 0x9:
                self.send_frame(0xA, payload)
                continue
            if op == 0xA:
                continue
            if op == 0x0:
                if self.frag is None:
                    raise AssertionError("a continuation frame without a message")
                self.frag = (self.frag[0], self.frag[1] + payload)
            else:
                if self.frag is not None:
                    raise AssertionError("a new message inside a fragmented one")
                self.frag = (op, payload)
            if fin:
                op, data = self.frag
                self.frag = None
                if op == 0x1:
                    return "text", data.decode("utf-8")  # raises on invalid UTF-8
                return "binary", data

    def recv(self, timeout=5):
        kind, data = self.recv_message(timeout)
        if kind != "text":
            raise AssertionError("a binary message from the gateway")
        return json.loads(data)

    def recv_until(self, pred, timeout=5):
        """Messages until one satisfies pred; returns (that one, the ones before)."""
        deadline = time.monotonic() + timeout
        before = []
        while True:
            m = self.recv(max(deadline - time.monotonic(), 0.001))
            if pred(m):
                return m, before
            before.append(m)

    def recv_close(self, timeout=5):
        """Reads until the server's close frame (other messages are dropped): (code, reason),
        or (None, "") when the socket ended without one, ("timeout", "") when nothing came."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.recv_message(max(deadline - time.monotonic(), 0.001))
            except Closed as e:
                return e.code, e.reason
            except Timeout:
                return "timeout", ""

    def quiet(self, timeout=0.3):
        """The messages that arrive within `timeout` (for "nothing more came" checks)."""
        got = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                got.append(self.recv(max(deadline - time.monotonic(), 0.001)))
            except Timeout:
                break
        return got

    def call(self, msg, timeout=5):
        """Sends msg and returns the first message with its id (or id null)."""
        self.send(msg)
        m, _ = self.recv_until(lambda m: m.get("id") in (msg.get("id"), None), timeout)
        return m


def xor(data, key):
    n = len(data)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def http_get(port, path, host=HOST, timeout=5):
    s = socket.create_connection((host, port), timeout=timeout)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    return int(lines[0].split()[1]), lines[1:], body.decode("utf-8", "replace")


def upgrade_status(port, path="/", subprotocol=None, host=HOST):
    """The HTTP status of an upgrade attempt (101, 404, 503...)."""
    s = socket.create_connection((host, port), timeout=5)
    try:
        return handshake(s, host, port, path, subprotocol)[0]
    finally:
        s.close()


def error_of(m):
    """ "rej CODE" for a rej, else the message's type."""
    if m.get("type") == "rej":
        return "rej " + m["error"]["code"]
    return m.get("type")


def CHECK(name, want, got):
    def flat(v):
        return str(v).replace("\t", " ").replace("\n", " ")
    print(f"CHECK\t{flat(name)}\t{flat(want)}\t{flat(got)}", flush=True)


def run(scenarios):
    """`SCRIPT SCENARIO ARGS...`: calls scenarios[SCENARIO](*ARGS) (ports as ints)."""
    if len(sys.argv) < 2 or sys.argv[1] not in scenarios:
        print("usage: %s {%s} ARGS..." % (sys.argv[0], ",".join(scenarios)), file=sys.stderr)
        sys.exit(2)
    args = [int(a) if a.isdigit() else a for a in sys.argv[2:]]
    scenarios[sys.argv[1]](*args)
