#!/usr/bin/python3
"""The collaborative board end to end, for test_collab.sh: browsers (a small stdlib WebSocket
client speaking the gateway's JSON protocol) -> rsocket-gateway -> collab-service.

usage: collab_driver.py GATEWAY_PORT SERVICE_PORT SERVICE_PID -- SERVICE_COMMAND...

The service runs with --history 5 and --member-timeout 1 (the test's choices). The driver restarts it once (SIGTERM to
SERVICE_PID, then SERVICE_COMMAND again on the same port) to check the epoch, and stops the one
it started when done. Prints "ok NAME" or "FAIL NAME: ..." per check, and "pid N" for the
restarted service (so the test can clean it up); exits 1 on any failure.
"""
import base64
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time

TIMEOUT = 10.0
fails = 0


def check(name, cond, detail=""):
    global fails
    if cond:
        print(f"ok {name}", flush=True)
    else:
        fails += 1
        print(f"FAIL {name}: {detail}", flush=True)


class Browser:
    """One WebSocket to the gateway: JSON messages in and out, a list of what arrived."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(4096)
            if not chunk:
                raise RuntimeError("gateway closed during the upgrade")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError(f"upgrade refused: {head!r}")
        self.inbox = []
        self.next_id = 1
        self.closed = False

    def send(self, msg):
        data = json.dumps(msg).encode()
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x81])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.s.sendall(head + mask + body)

    def _frame(self, deadline):
        """One frame's (opcode, payload), or None at the deadline."""
        while True:
            if len(self.buf) >= 2:
                n = self.buf[1] & 0x7F
                off = 2
                if n == 126 and len(self.buf) >= 4:
                    n, off = struct.unpack(">H", self.buf[2:4])[0], 4
                elif n == 127 and len(self.buf) >= 10:
                    n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
                if n < 126 or off > 2:
                    if len(self.buf) >= off + n:
                        op, payload = self.buf[0] & 0x0F, self.buf[off:off + n]
                        self.buf = self.buf[off + n:]
                        return op, payload
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return None
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                self.closed = True
                return None
            self.buf += chunk

    def wait(self, pred, timeout=TIMEOUT):
        """The first message (in arrival order, kept or not yet read) matching pred; removed."""
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.inbox):
                if pred(m):
                    return self.inbox.pop(i)
            f = self._frame(deadline)
            if f is None:
                return None
            op, payload = f
            if op == 1:
                self.inbox.append(json.loads(payload))
            elif op == 8:
                self.closed = True

    def drain(self, timeout=0.3):
        """Everything that arrives within `timeout`."""
        deadline = time.monotonic() + timeout
        while self._collect(deadline):
            pass
        out, self.inbox = self.inbox, []
        return out

    def _collect(self, deadline):
        f = self._frame(deadline)
        if f and f[0] == 1:
            self.inbox.append(json.loads(f[1]))
        return f is not None

    def req(self, route, data):
        i = self.next_id
        self.next_id += 1
        self.send({"type": "req", "id": i, "route": route, "data": data})
        return self.wait(lambda m: m.get("id") == i and m["type"] in ("cfm", "rej"))

    def sub(self, route, data, n=None):
        i = self.next_id
        self.next_id += 1
        msg = {"type": "sub", "id": i, "route": route, "data": data}
        if n is not None:
            msg["n"] = n
        self.send(msg)
        return i

    def ind(self, sid, pred=lambda d: True, timeout=TIMEOUT):
        """The next element of sub `sid` matching pred (a rej or end of it counts too)."""
        m = self.wait(lambda m: m.get("id") == sid and (m["type"] != "ind" or pred(m["data"])),
                      timeout)
        return m

    def fnf(self, route, data):
        self.send({"type": "fnf", "route": route, "data": data})

    def close(self):
        self.s.close()


def err_of(m):
    return (m or {}).get("error", {}).get("message", "") if m and m["type"] == "rej" else ""


def gone(pid):
    """The process has exited (a zombie its parent has not reaped counts)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def names(members):
    return [m["name"] for m in members]


def main():
    gw_port, svc_port, svc_pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    svc_cmd = sys.argv[sys.argv.index("--") + 1:]
    A, B = Browser(gw_port), Browser(gw_port)

    # join
    ja = A.req("board.join", {"board": "b1", "name": "Ada"})
    check("join answers", ja and ja["type"] == "cfm", ja)
    ja = ja["data"]
    epoch, me = ja["epoch"], ja["you"]
    check("join: new board at offset 0, empty", ja["offset"] == 0 and ja["shapes"] == [], ja)
    check("join: you are a member", ja["members"] == [me] and me["name"] == "Ada", ja)
    pa = A.sub("board.presence", {"board": "b1"})
    m = A.ind(pa)
    check("presence: the member list first", m and names(m["data"]["members"]) == ["Ada"], m)
    jb = B.req("board.join", {"board": "b1", "name": "Bob"})["data"]
    bob = jb["you"]
    B.sub("chat.feed", {"board": "b1"})  # a stream: Bob stays past --member-timeout
    check("join: a second member", names(jb["members"]) == ["Ada", "Bob"] and bob["id"] != me["id"],
          jb)
    m = A.ind(pa, lambda d: "members" in d)
    check("presence: a join is seen", m and names(m["data"]["members"]) == ["Ada", "Bob"], m)

    # edits and ops
    oa = A.sub("board.ops", {"board": "b1", "epoch": epoch, "from": 0})
    r = A.req("board.edit", {"board": "b1", "op": {"kind": "add", "shape": {
        "id": "n1", "x": 10, "y": 20, "text": "hello"}}})
    check("edit add", r and r["type"] == "cfm" and r["data"] == {"offset": 1, "id": "n1", "epoch": epoch}, r)
    m = A.ind(oa)
    check("ops: the add, whole", m and m["data"] == {"offset": 1, "op": {"kind": "add", "shape": {
        "id": "n1", "x": 10, "y": 20, "w": 160, "h": 120, "text": "hello", "color": "#ffd54f"}},
        "by": me["id"]}, m)
    r = B.req("board.edit", {"board": "b1", "op": {"kind": "move", "shape": {"id": "n1", "x": 300,
                                                                              "y": 40}}})
    check("edit move", r and r["data"] == {"offset": 2, "id": "n1", "epoch": epoch}, r)
    r = B.req("board.edit", {"board": "b1", "op": {"kind": "update", "shape": {"id": "n1",
                                                                                "text": "ship it"}}})
    check("edit update", r and r["data"] == {"offset": 3, "id": "n1", "epoch": epoch}, r)
    r = A.req("board.edit", {"board": "b1", "op": {"kind": "add", "shape": {"x": 5, "y": 6}}})
    check("edit add without id: named by its offset", r and r["data"] == {"offset": 4, "id": "s4", "epoch": epoch},
          r)
    got = [A.ind(oa) for _ in range(3)]
    check("ops: move, update, add in order, by their authors",
          [(g["data"]["offset"], g["data"]["op"]["kind"], g["data"]["by"]) for g in got if g]
          == [(2, "move", bob["id"]), (3, "update", bob["id"]), (4, "add", me["id"])], got)
    check("ops: a move carries id, x, y", got[0] and got[0]["data"]["op"]["shape"] == {
        "id": "n1", "x": 300, "y": 40}, got[0])
    r = B.req("board.edit", {"board": "b1", "op": {"kind": "delete", "shape": {"id": "n1"}}})
    check("edit delete", r and r["data"] == {"offset": 5, "id": "n1", "epoch": epoch}, r)
    r = A.req("board.edit", {"board": "b1", "op": {"kind": "move", "shape": {"id": "n1", "x": 1,
                                                                              "y": 1}}})
    check("edit of a deleted shape refused", err_of(r) == "shape 'n1' was deleted"
          and r["error"]["code"] == "APPLICATION_ERROR", r)
    r = A.req("board.edit", {"board": "b1", "op": {"kind": "update", "shape": {"id": "zz",
                                                                                "text": "x"}}})
    check("edit of an unknown shape refused", err_of(r) == "no shape 'zz' on board 'b1'", r)
    jb2 = B.req("board.join", {"board": "b1", "name": "Bob"})["data"]
    check("join again: same member, snapshot at the last offset", jb2["you"] == bob
          and jb2["offset"] == 5 and [s["id"] for s in jb2["shapes"]] == ["s4"], jb2)

    # bad input
    for name, data, want in [
        ("bad op kind", {"board": "b1", "op": {"kind": "jump", "shape": {"id": "s4"}}},
         'bad op: \'kind\' must be "add", "move", "update" or "delete"'),
        ("bad coordinate", {"board": "b1", "op": {"kind": "move", "shape": {"id": "s4", "x": "a",
                                                                             "y": 1}}},
         "bad op: 'x' must be a number from -1000000 to 1000000"),
        ("text too long", {"board": "b1", "op": {"kind": "update", "shape": {"id": "s4",
                                                                              "text": "x" * 4001}}},
         "bad op: 'text' is longer than 4000 bytes"),
        ("no board", {"op": {}}, "bad request: 'board' must be a string of 1 to 64 letters, "
         "digits, '.', '_' or '-'"),
        ("not an object", "hello", "bad request: the data must be a JSON object"),
    ]:
        r = A.req("board.edit", data)
        check(f"bad input: {name}", err_of(r) == want and r["error"]["code"] == "APPLICATION_ERROR",
              r)
    C = Browser(gw_port)
    r = C.req("board.edit", {"board": "b1", "op": {"kind": "delete", "shape": {"id": "s4"}}})
    check("edit by a non-member refused",
          err_of(r) == "not a member of board 'b1': board.join first (on the same session)", r)
    r = C.req("board.join", {"board": "b1", "name": ""})
    check("join with an empty name refused", err_of(r).startswith("bad request: 'name' must be"), r)
    for bad in ("a\u0007b", "a\u007fb", "a\u0085b", "a\u009fb"):
        r = C.req("board.join", {"board": "b1", "name": bad})
        check("join with a control character in the name refused (%r)" % bad,
              err_of(r).startswith("bad request: 'name' must be"), r)
    r = C.req("board.join", {"board": "b1x", "name": "Zo\u00e9 \u00a0\u4e2d"})
    check("a name with accents, a no-break space and CJK is accepted", r.get("type") == "cfm", r)

    # ops from an offset; HISTORY_GONE (--history 5)
    ob = B.sub("board.ops", {"board": "b1", "epoch": epoch, "from": 3})
    got = [B.ind(ob) for _ in range(2)]
    check("ops from an offset", [g["data"]["offset"] for g in got if g] == [4, 5], got)
    for i in range(3):
        A.req("board.edit", {"board": "b1", "op": {"kind": "move", "shape": {"id": "s4", "x": i,
                                                                              "y": i}}})
    got = [B.ind(ob) for _ in range(3)]
    check("ops: live after the history", [g["data"]["offset"] for g in got if g] == [6, 7, 8], got)
    s = C.sub("board.ops", {"board": "b1", "epoch": epoch, "from": 2})
    r = C.ind(s)
    check("HISTORY_GONE for an offset older than the history", err_of(r) == "HISTORY_GONE", r)
    s = C.sub("board.ops", {"board": "b1", "epoch": epoch, "from": 3})
    r = C.ind(s)
    check("the oldest kept offset still works", r and r["type"] == "ind"
          and r["data"]["offset"] == 4, r)
    C.send({"type": "unsub", "id": s})
    s = C.sub("board.ops", {"board": "b1", "epoch": "nope", "from": 8})
    r = C.ind(s)
    check("HISTORY_GONE for another epoch", err_of(r) == "HISTORY_GONE", r)
    s = C.sub("board.ops", {"board": "b1", "epoch": epoch, "from": 99})
    r = C.ind(s)
    check("HISTORY_GONE for an offset ahead of the board", err_of(r) == "HISTORY_GONE", r)
    s = C.sub("board.ops", {"board": "b1", "epoch": epoch, "from": -1})
    r = C.ind(s)
    check("bad from", err_of(r) == "bad request: 'from' must be an integer >= 0", r)

    # cursors: relayed to the others, coalesced for a slow subscriber
    pb = B.sub("board.presence", {"board": "b1"}, n=1)
    m = B.ind(pb)
    check("presence (client credit): the list", m and names(m["data"]["members"]) == ["Ada", "Bob"],
          m)
    for i in range(50):
        A.fnf("board.cursor", {"board": "b1", "x": i, "y": 2 * i})
    A.req("board.join", {"board": "b1", "name": "Ada"})  # the cursors are processed before it
    m = A.ind(pa, lambda d: "members" in d)  # that join's list (nothing else changed)
    B.send({"type": "more", "id": pb, "n": 10})
    m = B.ind(pb)
    # B's re-request came after Ada's join: its presence has the list, then Ada's latest cursor.
    got = [m] + [x for x in B.drain(0.5) if x.get("id") == pb]
    cursors = [g["data"]["cursor"] for g in got if g and "cursor" in g["data"]]
    check("cursor: a slow subscriber gets the latest position, not a backlog",
          cursors == [{"id": me["id"], "x": 49, "y": 98}], got)
    B.send({"type": "more", "id": pb, "n": 100})
    B.fnf("board.cursor", {"board": "b1", "x": 7.5, "y": -3})
    m = A.ind(pa, lambda d: "cursor" in d)
    check("cursor relayed to the others", m and m["data"]["cursor"] == {"id": bob["id"], "x": 7.5,
                                                                         "y": -3}, m)
    own = [x for x in B.drain(0.3) if x.get("id") == pb and "cursor" in x["data"]]
    check("own cursor not echoed", own == [], own)

    # chat
    r = A.req("chat.post", {"board": "b1", "text": "hello everyone"})
    check("chat.post", r and r["data"] == {"offset": 1, "epoch": epoch}, r)
    cf = B.sub("chat.feed", {"board": "b1"})
    m = B.ind(cf)
    check("chat.feed without from: the history kept", m and m["data"]["offset"] == 1
          and m["data"]["text"] == "hello everyone" and m["data"]["name"] == "Ada"
          and m["data"]["by"] == me["id"] and isinstance(m["data"]["time"], int), m)
    B.req("chat.post", {"board": "b1", "text": "hi Ada"})
    m = B.ind(cf)
    check("chat.feed live", m and m["data"]["offset"] == 2 and m["data"]["name"] == "Bob", m)
    s = C.sub("chat.feed", {"board": "b1", "epoch": epoch, "from": 1})
    m = C.ind(s)
    check("chat.feed from an offset", m and m["data"]["offset"] == 2, m)
    r = A.req("chat.post", {"board": "b1", "text": ""})
    check("chat.post empty refused", err_of(r) == "bad request: 'text' must be a non-empty string", r)

    # leave: Bob's browser goes away
    B.close()
    m = A.ind(pa, lambda d: "members" in d and names(d["members"]) == ["Ada"])
    check("presence: a disconnect is a leave", m is not None, A.inbox)
    # Unsubscribing presence is a leave too.
    jc = C.req("board.join", {"board": "b1", "name": "Cy"})["data"]
    pc = C.sub("board.presence", {"board": "b1"})
    C.ind(pc)
    A.ind(pa, lambda d: "members" in d and names(d["members"]) == ["Ada", "Cy"])
    C.send({"type": "unsub", "id": pc})
    m = A.ind(pa, lambda d: "members" in d and names(d["members"]) == ["Ada"])
    check("presence: unsubscribing is a leave", m is not None and jc["you"]["name"] == "Cy",
          A.inbox)

    # --member-timeout 1: a member that never subscribes leaves by itself.
    D = Browser(gw_port)
    D.req("board.join", {"board": "b1", "name": "Dee"})
    m = A.ind(pa, lambda d: "members" in d and "Dee" in names(d["members"]))
    m2 = A.ind(pa, lambda d: "members" in d and "Dee" not in names(d["members"]))
    check("a member with no stream leaves after --member-timeout", m is not None and m2 is not None,
          A.inbox)
    D.close()
    # A direct RSocket client has its connection as its session: it leaves when that closes.
    rsocket = os.path.join(os.path.dirname(svc_cmd[0]), "rsocket")
    out = subprocess.run([rsocket, "-r", "board.join", "-d", '{"board":"b1","name":"Cli"}',
                          f"tcp://127.0.0.1:{svc_port}"], capture_output=True, text=True,
                         timeout=20)
    check("a direct client joins", out.returncode == 0 and '"name":"Cli"' in out.stdout,
          out.stdout + out.stderr)
    m = A.ind(pa, lambda d: "members" in d and "Cli" in names(d["members"]))
    m2 = A.ind(pa, lambda d: "members" in d and "Cli" not in names(d["members"]))
    check("a direct client leaves when its connection closes", m is not None and m2 is not None,
          A.inbox)

    # restart: a new epoch; old offsets are HISTORY_GONE
    os.kill(svc_pid, signal.SIGTERM)
    r = A.ind(oa, lambda d: False)
    check("service stopped: subs end", r is not None and r["type"] == "rej", r)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and not gone(svc_pid):
        time.sleep(0.05)
    check("service stopped", gone(svc_pid), svc_pid)
    proc = subprocess.Popen(svc_cmd, stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
    print(f"pid {proc.pid}", flush=True)
    line = proc.stdout.readline()
    check("service restarted", line.startswith("listening on "), line)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:  # the gateway reconnects with backoff
        r = A.req("board.join", {"board": "b1", "name": "Ada"})
        if r and r["type"] == "cfm":
            break
        time.sleep(0.1)
    check("join after the restart", r and r["type"] == "cfm", r)
    check("a new epoch, an empty board", r and r["data"]["epoch"] != epoch
          and r["data"]["offset"] == 0 and r["data"]["shapes"] == [], r)
    s = A.sub("board.ops", {"board": "b1", "epoch": epoch, "from": 8})
    m = A.ind(s)
    check("HISTORY_GONE after the restart", err_of(m) == "HISTORY_GONE", m)
    A.close()
    C.close()
    proc.terminate()
    try:
        rc = proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = "hung"
    check("restarted service stops cleanly", rc == 0, rc)
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
