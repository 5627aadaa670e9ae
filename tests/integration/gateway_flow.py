#!/usr/bin/python3
"""Scenarios of test_gateway_flow.sh: flow control through rsocket-gateway, end to end, against
tests/support/gw_backend (its stats route counts what the backend produced and saw). Each prints
CHECK lines (gwclient.py).

  credit PORT           a client that stops reading stops its own backend stream; another
                        client's stream on the same backend keeps flowing; reading resumes it
  client_credit PORT    n and more reach the backend unchanged: exactly what was asked
  chan PORT             a burst of sends through a backend that grants 16 at a time
  slow PORT PID         client-managed huge credit, never read: close 1008 "slow consumer",
                        its backend stream cancelled, others untouched
  flood PORT PID        requests sent without reading answers: read slower, memory bounded
  disconnect PORT       a client that goes away: every backend stream of it sees CANCEL
  many PORT             10,000 open subs on one client (limit raised): all open, then all
                        cancelled
  limit PORT            10,000 subs with the default limit: 1024 open, the rest refused
"""
import socket
import sys
import threading
import time

sys.path.insert(0, sys.path[0])
from gwclient import CHECK, Client, Closed, Timeout, error_of, run  # noqa


class Stats:
    """The backend's counters through the gateway (route "stats" goes to the only backend)."""

    def __init__(self, port):
        self.c = Client(port)
        self.n = 0

    def get(self):
        self.n += 1
        m = self.c.call({"type": "req", "id": "stats-%d" % self.n, "route": "stats"}, timeout=10)
        return m["data"]

    def tag(self, name):
        return self.get()["tags"].get(name, 0)

    def wait(self, pred, timeout=10):
        """Polls until pred(stats) holds; returns (held, the last stats)."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.get()
            if pred(st) or time.monotonic() > deadline:
                return pred(st), st
            time.sleep(0.1)


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


class Reader(threading.Thread):
    """Reads a client's messages in the background and counts the ind of one id, checking that
    their data are 1, 2, 3... without a gap."""

    def __init__(self, c, id_):
        super().__init__(daemon=True)
        self.c, self.id, self.count, self.ordered, self.stop = c, id_, 0, True, False
        self.error = None

    def run(self):
        try:
            while not self.stop:
                try:
                    m = self.c.recv(0.2)
                except Timeout:
                    continue
                if m.get("id") == self.id and m["type"] == "ind":
                    self.count += 1
                    if m["data"] != self.count:
                        self.ordered = False
        except Exception as e:  # noqa: a closed socket at the end
            self.error = e


def credit(port):
    st = Stats(port)
    y = Client(port)
    y.send({"type": "sub", "id": 1, "route": "count", "data": "y"})
    ry = Reader(y, 1)
    ry.start()
    # x: a small receive buffer, then it stops reading.
    x = Client(port, rcvbuf=4096)
    x.send({"type": "sub", "id": 1, "route": "count", "data": "x"})
    # The stream stops once the gateway's output to x is over its watermark and the credit
    # granted is used up; wait until two samples 0.5 s apart agree.
    stalled, x1 = False, -1
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        time.sleep(0.5)
        x2 = st.tag("x")
        if x2 == x1:
            stalled = True
            break
        x1 = x2
    CHECK("a client that stops reading: its backend stream stops", True, stalled)
    y1, c1 = st.tag("y"), ry.count
    time.sleep(1.0)
    x3, y2, c2 = st.tag("x"), st.tag("y"), ry.count
    CHECK("...and stays stopped (%d elements, then %d)" % (x1, x3), x1, x3)
    # What it took: the credit window (64) and what fits in the gateway's buffer up to its
    # watermark (64 KiB) and the kernel's socket buffers (the sender's grows up to tcp_wmem's
    # maximum), at 32 bytes or more a message (2 of WebSocket header).
    with open("/proc/sys/net/ipv4/tcp_wmem") as f:
        wmem = int(f.read().split()[2])
    bound = 64 + (wmem + (64 << 10) + (256 << 10)) // 32
    CHECK("...within the window and the buffers (%d elements, at most %d)" % (x1, bound), True,
          0 < x1 < bound)
    CHECK("another client's stream on the same backend keeps flowing (%d/s produced, %d/s read)"
          % (y2 - y1, c2 - c1), True, y2 - y1 > 1000 and c2 - c1 > 1000)
    # x reads again: everything it was sent arrives in order, and the stream resumes.
    rx = Reader(x, 1)
    rx.start()
    ok, s = st.wait(lambda s: s["tags"]["x"] > x3 + 10000, 15)
    CHECK("the stream resumes once the client reads again (%d -> %d)" % (x3, s["tags"]["x"]), True, ok)
    deadline = time.monotonic() + 15
    while rx.count <= x3 + 10000 and time.monotonic() < deadline:
        time.sleep(0.1)
    rx.stop = ry.stop = True
    rx.join()
    ry.join()
    CHECK("the resumed client got every element in order (%d)" % rx.count, True,
          rx.ordered and rx.count > x3)
    CHECK("the other client got every element in order (%d)" % ry.count, True, ry.ordered)
    x.close()
    y.close()


def client_credit(port):
    st = Stats(port)
    c = Client(port)
    c.send({"type": "sub", "id": 1, "route": "count", "data": "cc", "n": 1000})
    got = []
    deadline = time.monotonic() + 10
    while len(got) < 1000 and time.monotonic() < deadline:
        got.append(c.recv()["data"])
    got += [m["data"] for m in c.quiet(0.5)]
    CHECK("n 1000: exactly 1000 elements, in order (%d)" % len(got), True, got == list(range(1, 1001)))
    for _ in range(5):
        c.send({"type": "more", "id": 1, "n": 100})
    got = []
    deadline = time.monotonic() + 10
    while len(got) < 500 and time.monotonic() < deadline:
        got.append(c.recv()["data"])
    got += [m["data"] for m in c.quiet(0.5)]
    CHECK("5 x more 100: exactly 500 more (%d)" % len(got), True, got == list(range(1001, 1501)))
    CHECK("the backend produced exactly what the client asked for", 1500, st.tag("cc"))
    c.send({"type": "unsub", "id": 1})
    c.send({"type": "sub", "id": 2, "route": "count", "data": "one", "n": 1})
    CHECK("n 1 -> one element", [1], [m["data"] for m in c.quiet(0.5)])
    c.close()


def chan(port):
    c = Client(port)
    n = 2000
    c.send({"type": "chan", "id": "c", "route": "chan", "data": 0})
    burst = b"".join(
        frame_text('{"type":"send","id":"c","data":%d}' % i) for i in range(1, n + 1))
    c.sock.sendall(burst + frame_text('{"type":"done","id":"c"}'))
    got = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = c.recv(10)
        if m["type"] != "ind":
            break
        got.append(m["data"])
    CHECK("chan: a burst of %d sends all come back, in order" % n, True, got == list(range(0, n + 1)))
    CHECK("chan: then end", {"type": "end", "id": "c"}, m)
    # unsub of a chan cancels it on the backend
    st = Stats(port)
    before = st.get()["cancels"]
    c.send({"type": "chan", "id": "d", "route": "chan", "data": 1})
    c.recv()
    c.send({"type": "unsub", "id": "d"})
    ok, s = st.wait(lambda s: s["cancels"] == before + 1 and s["open"] == 0, 5)
    CHECK("unsub of a chan: the backend sees CANCEL", True, ok)
    c.close()


def frame_text(text):
    """A masked text frame (mask 0: the payload is as is)."""
    payload = text.encode()
    n = len(payload)
    head = bytes([0x81])
    if n < 126:
        head += bytes([0x80 | n])
    else:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    return head + b"\0\0\0\0" + payload


def slow(port, pid):
    st = Stats(port)
    w = Client(port)
    w.send({"type": "sub", "id": 1, "route": "count", "data": "w"})
    rw = Reader(w, 1)
    rw.start()
    before = st.get()["cancels"]
    z = Client(port, rcvbuf=4096)
    z.send({"type": "sub", "id": 1, "route": "count", "data": "z", "n": 2147483647})
    ok, s = st.wait(lambda s: s["cancels"] > before, 20)
    CHECK("client-managed credit never read: the gateway cancels its backend stream", True, ok)
    code, reason = z.recv_close(20)
    CHECK("...and closes it with 1008 slow consumer", (1008, "slow consumer"), (code, reason))
    CHECK("...after at most --max-buffer and the socket buffers (gateway RSS %d MiB)" % rss_mib(pid),
          True, rss_mib(pid) < 400)
    c1 = rw.count
    time.sleep(0.5)
    CHECK("another client's stream keeps flowing", True, rw.count > c1 + 100 and rw.error is None)
    rw.stop = True
    rw.join()
    CHECK("...in order", True, rw.ordered)
    w.close()
    # Regression: answers bigger than --max-buffer (64 KiB here) to a client that reads each one
    # before asking again. The check came after queueing, so the second such answer closed a
    # prompt reader with 1008 (the first got through only while the kernel took it at once).
    big = Client(port)
    data = "b" * 200000
    got = []
    for i in range(10):
        try:
            m = big.call({"type": "req", "id": i, "route": "echo", "data": data}, timeout=20)
            got.append(m.get("type") == "cfm" and m.get("data") == data)
        except Closed as e:
            got.append("closed %s %s" % (e.code, e.reason))
            break
    CHECK("answers of 200 KB over --max-buffer 64 KiB, each read at once: all 10 arrive",
          [True] * 10, got)
    big.close()


def flood(port, pid, rss_max):
    """Requests sent without reading their answers: the gateway stops reading the client once
    its output is over the watermark, so neither side buffers without bound; answers already
    asked for are not flow-controlled, so the client may end up closed as a slow consumer."""
    w = Client(port)
    w.send({"type": "sub", "id": 1, "route": "count", "data": "flood-w"})
    rw = Reader(w, 1)
    rw.start()
    c = Client(port, rcvbuf=4096)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    n = 60000
    data = "d" * 1000
    msgs = b"".join(frame_text('{"type":"req","id":%d,"route":"echo","data":"%s"}' % (i, data))
                    for i in range(n))
    c.sock.setblocking(False)
    sent, peak = 0, 0
    deadline = time.monotonic() + 3
    while sent < len(msgs) and time.monotonic() < deadline:
        try:
            sent += c.sock.send(msgs[sent:sent + 65536])
        except (BlockingIOError, InterruptedError):
            time.sleep(0.01)
        except OSError:
            break  # closed as a slow consumer
        peak = max(peak, rss_mib(pid))
    CHECK("a client flooding requests without reading is not read on (took %d of %d MiB)"
          % (sent >> 20, len(msgs) >> 20), True, sent < len(msgs))
    CHECK("...and the gateway's memory stays bounded (%d MiB)" % peak, True, peak < rss_max)
    c1, t1 = rw.count, time.monotonic()
    while rw.count < c1 + 100 and time.monotonic() < t1 + 5:
        time.sleep(0.05)
    CHECK("another client's stream flows meanwhile (100 elements in %.2f s)"
          % (time.monotonic() - t1), True, rw.count >= c1 + 100)
    # Reading now: each request read was answered (cfm, or rej TOO_MANY_STREAMS past 1024 in
    # flight), unless the answers passed --max-buffer: then close 1008.
    c.sock.setblocking(True)
    answered, end = 0, None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            m = c.recv(2)
        except Timeout:
            end = "quiet"
            break
        except Closed as e:
            end = (e.code, e.reason)
            break
        if m["type"] in ("cfm", "rej"):
            answered += 1
    CHECK("...then reading: answers, or close 1008 slow consumer (%d answers, %s)" % (answered, end),
          True, end == (1008, "slow consumer") or (end == "quiet" and answered > 0))
    rw.stop = True
    rw.join()
    CHECK("the other client's stream stayed in order", True, rw.ordered and rw.error is None)
    w.close()


def disconnect(port):
    st = Stats(port)
    base = st.get()
    c = Client(port)
    c.send({"type": "sub", "id": 1, "route": "count", "data": "dc"})
    c.send({"type": "sub", "id": 2, "route": "silent"})
    c.send({"type": "chan", "id": 3, "route": "silent"})
    c.send({"type": "chan", "id": 4, "route": "chan", "data": 1})
    c.send({"type": "req", "id": 5, "route": "silent"})
    c.send({"type": "sub", "id": 6, "route": "count", "data": 5, "n": 2})
    ok, s = st.wait(lambda s: s["open"] == base["open"] + 6, 5)
    CHECK("6 streams open on the backend", True, ok)
    c.sock.close()  # no close frame: the socket just goes
    ok, s = st.wait(lambda s: s["cancels"] == base["cancels"] + 6 and s["open"] == base["open"], 10)
    CHECK("a client that disconnects: each of its backend streams sees CANCEL (%d)" %
          (s["cancels"] - base["cancels"]), True, ok)
    # the same with a close handshake
    c = Client(port)
    for i in range(3):
        c.send({"type": "sub", "id": i, "route": "silent"})
    st.wait(lambda s: s["open"] == base["open"] + 3, 5)
    c.close()
    ok, s = st.wait(lambda s: s["cancels"] == base["cancels"] + 9 and s["open"] == base["open"], 10)
    CHECK("a client that closes: each of its backend streams sees CANCEL", True, ok)


def many(port, n=10000):
    st = Stats(port)
    base = st.get()
    c = Client(port)
    c.sock.sendall(b"".join(frame_text('{"type":"sub","id":%d,"route":"silent"}' % i)
                            for i in range(n)))
    t0 = time.monotonic()
    c.send({"type": "ping", "id": "after"})
    m, before = c.recv_until(lambda m: m.get("id") == "after", 30)
    CHECK("%d subs, then a ping: pong, nothing refused" % n, ([], "pong"), (before, m["type"]))
    ok, s = st.wait(lambda s: s["open"] == base["open"] + n, 20)
    CHECK("%d streams open on the backend (%d)" % (n, s["open"] - base["open"]), True, ok)
    other = Client(port)
    t0 = time.monotonic()
    CHECK("another client is served meanwhile", "cfm",
          error_of(other.call({"type": "req", "id": 1, "route": "echo"})))
    CHECK("...at once (%.2f s)" % (time.monotonic() - t0), True, time.monotonic() - t0 < 2)
    for i in range(0, n, 2):
        c.send({"type": "unsub", "id": i})
    ok, s = st.wait(lambda s: s["open"] == base["open"] + n // 2, 20)
    CHECK("%d unsubs: the backend sees as many CANCELs" % (n // 2), (True, n // 2),
          (ok, s["cancels"] - base["cancels"]))
    c.sock.close()
    ok, s = st.wait(lambda s: s["open"] == base["open"], 20)
    CHECK("the client goes: all %d backend streams cancelled" % n, (True, n),
          (ok, s["cancels"] - base["cancels"]))
    other.close()


def limit(port, n=10000):
    c = Client(port)
    c.sock.sendall(b"".join(frame_text('{"type":"sub","id":%d,"route":"silent"}' % i)
                            for i in range(n)))
    c.send({"type": "ping", "id": "after"})
    m, before = c.recv_until(lambda m: m.get("id") == "after", 30)
    refused = [x["id"] for x in before if error_of(x) == "rej TOO_MANY_STREAMS"]
    CHECK("%d subs with the default limit: the first 1024 open, the rest TOO_MANY_STREAMS" % n,
          (list(range(1024, n)), len(before)), (refused, n - 1024))
    c.close()


if __name__ == "__main__":
    run({"credit": credit, "client_credit": client_credit, "chan": chan, "slow": slow,
         "flood": flood, "disconnect": disconnect, "many": many, "limit": limit})
