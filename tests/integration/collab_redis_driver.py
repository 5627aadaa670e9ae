#!/usr/bin/python3
"""collab-service's Redis engine across two service instances, for test_collab_redis.sh.

usage: collab_redis_driver.py BIN_DIR WORK_DIR

Starts its own processes on loopback (each "pid N" line lets the test clean them up): a
redis-server (persistence off, its own directory), two collab-services with --redis on it,
and three rsocket-gateways: gwA in front of service 1 only, gwB of service 2 only, gwAB of
both (its pool spreads a browser's requests over the two instances). Browsers are the stdlib
WebSocket client of collab_driver.py. Checks, each printed "ok NAME" or "FAIL NAME: ...":

 - clients on both instances edit one board at once: every edit gets an offset, no offset
   twice across the two services, every subscriber sees every offset once and in order, and
   every client ends with the same shapes, which both services' snapshots agree with;
 - a browser behind gwAB (requests spread over both instances) is one member, edits, chats;
 - presence: members of both instances in every presence stream; kill -9 of service 2: its
   members go from service 1's streams within a bounded time (no ghosts); it restarts;
 - Redis down: requests fail at once with "storage unavailable: ...", the services stay up;
   Redis back, empty (persistence off): a new epoch, followers get HISTORY_GONE, joining
   again works and edits go on.
Exits 1 on any failure.
"""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collab_driver import Browser, err_of  # noqa: E402

TIMEOUT = 20.0
fails = 0
procs = []


def check(name, cond, detail=""):
    global fails
    if cond:
        print(f"ok {name}", flush=True)
    else:
        fails += 1
        print(f"FAIL {name}: {str(detail)[:1500]}", flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(name, cmd, work):
    out = open(os.path.join(work, name + ".out"), "a")
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    procs.append(p)
    print(f"pid {p.pid}", flush=True)
    return p


def wait_line(work, name, text, timeout=TIMEOUT, after=0):
    """The first line of NAME's output (from byte `after`) containing text, or None."""
    deadline = time.monotonic() + timeout
    path = os.path.join(work, name + ".out")
    while time.monotonic() < deadline:
        with open(path, errors="replace") as f:
            f.seek(after)
            for line in f:
                if text in line:
                    return line.strip()
        time.sleep(0.05)
    return None


def size_of(work, name):
    return os.path.getsize(os.path.join(work, name + ".out"))


def healthy(port, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).status == 200:
                return True
        except Exception:
            pass
        time.sleep(0.1)
    return False


def alive(p):
    return p.poll() is None


def apply(shapes, op):
    """The board rules, as a client applies ops (docs/COLLAB.md)."""
    kind, sh = op["kind"], op["shape"]
    if kind == "add":
        shapes[sh["id"]] = dict(sh)
    elif kind == "delete":
        shapes.pop(sh["id"], None)
    else:
        shapes[sh["id"]].update(sh)


class Client:
    """A browser on the board: joined, following board.ops, with what it saw."""

    def __init__(self, port, name, board):
        self.b = Browser(port)
        self.name, self.board = name, board
        self.join()

    def join(self):
        r = self.b.req("board.join", {"board": self.board, "name": self.name})
        if not r or r["type"] != "cfm":
            raise RuntimeError(f"{self.name}: join: {r}")
        d = r["data"]
        self.me, self.epoch, self.offset = d["you"], d["epoch"], d["offset"]
        self.shapes = {s["id"]: dict(s) for s in d["shapes"]}
        self.seen = []  # offsets in arrival order
        self.ops = self.b.sub("board.ops", {"board": self.board, "epoch": self.epoch,
                                            "from": self.offset})
        return d

    def pump(self, until, timeout=TIMEOUT):
        """Applies ops as they come until offset `until` (or an error/timeout)."""
        deadline = time.monotonic() + timeout
        while self.offset < until and time.monotonic() < deadline:
            m = self.b.ind(self.ops, timeout=max(0.05, deadline - time.monotonic()))
            if not m:
                break
            if m["type"] != "ind":
                return m
            d = m["data"]
            self.seen.append(d["offset"])
            apply(self.shapes, d["op"])
            self.offset = d["offset"]
        return None


def send_req(b, route, data):
    i = b.next_id
    b.next_id += 1
    b.send({"type": "req", "id": i, "route": route, "data": data})
    return i


def answer(b, i, timeout=TIMEOUT):
    return b.wait(lambda m: m.get("id") == i and m["type"] in ("cfm", "rej"), timeout)


def names(members):
    return sorted(m["name"] for m in members)


def presence_names(b, sid, pred, timeout=TIMEOUT):
    """Waits for a member list of presence stream sid that pred accepts: its names, or the last
    list seen."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        m = b.ind(sid, lambda d: "members" in d, timeout=max(0.05, deadline - time.monotonic()))
        if not m or m["type"] != "ind":
            return last
        last = names(m["data"]["members"])
        if pred(last):
            return last
    return last


def main():
    bin_dir, work = sys.argv[1], sys.argv[2]
    rport, p1, p2 = free_port(), free_port(), free_port()
    rdir = os.path.join(work, "redis")
    os.makedirs(rdir, exist_ok=True)
    redis_cmd = ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", rdir]
    redis = start("redis", redis_cmd, work)
    check("redis-server starts", wait_line(work, "redis", "Ready to accept connections") is not None)
    url = f"redis://127.0.0.1:{rport}"
    svc_cmd = [[os.path.join(bin_dir, "collab-service"), "--listen", f"tcp://127.0.0.1:{p}",
                "--redis", url] for p in (p1, p2)]
    svc = [start(f"svc{i + 1}", svc_cmd[i], work) for i in range(2)]
    for i in range(2):
        check(f"service {i + 1} reaches redis",
              wait_line(work, f"svc{i + 1}", "connected (epoch") is not None)
    gw = {}
    for name, backends in (("gwA", [p1]), ("gwB", [p2]), ("gwAB", [p1, p2])):
        uris = ",".join(f"tcp://127.0.0.1:{p}" for p in backends)
        start(name, [os.path.join(bin_dir, "rsocket-gateway"), "--listen", "ws://127.0.0.1:0",
                     "--connections-per-backend", "1", "--route", f"board.*={uris}",
                     "--route", f"chat.*={uris}"], work)
        line = wait_line(work, name, "listening on ")
        gw[name] = int(line.rsplit(":", 1)[1].strip("/")) if line else 0
        check(f"{name} reaches its services", gw[name] and healthy(gw[name]))

    # ---- clients on both instances edit one board at once ----
    board = "shared"
    A = [Client(gw["gwA"], f"A{i}", board) for i in range(3)]
    B = [Client(gw["gwB"], f"B{i}", board) for i in range(3)]
    X = Client(gw["gwAB"], "X", board)  # spread over both instances
    everyone = A + B + [X]
    epoch = A[0].epoch
    check("one epoch for both instances", all(c.epoch == epoch for c in everyone),
          [c.epoch for c in everyone])
    r = A[0].b.req("board.edit", {"board": board, "op": {"kind": "add", "shape": {
        "id": "common", "x": 0, "y": 0, "text": "shared"}}})
    check("an edit through service 1", r and r["type"] == "cfm", r)
    rounds = 20
    offsets, refused = [], []

    def collect(sent):
        for c, i in sent:
            m = answer(c.b, i)
            if m and m["type"] == "cfm":
                offsets.append(m["data"]["offset"])
            else:
                refused.append(m)

    # Each client's own note first, answered before it is edited: a client's requests in flight
    # at once have no order between them (the gateway's pool may send them to either instance,
    # or over either of its connections to one), so a client waits, as the page does.
    collect([(c, send_req(c.b, "board.edit", {"board": board, "op": {"kind": "add", "shape": {
        "id": f"own-{c.name}", "x": i, "y": 0}}})) for i, c in enumerate(everyone)])
    sent = []  # (client, request id): all at once
    for k in range(1, rounds):
        for i, c in enumerate(everyone):
            if k % 4 == 1:
                op = {"kind": "move", "shape": {"id": "common", "x": k, "y": i}}
            elif k % 4 == 2:
                op = {"kind": "update", "shape": {"id": f"own-{c.name}", "text": f"{c.name} {k}"}}
            elif k % 4 == 3:
                op = {"kind": "add", "shape": {"x": k, "y": i}}  # named after its offset
            else:
                op = {"kind": "update", "shape": {"id": "common", "text": f"{c.name} {k}"}}
            sent.append((c, send_req(c.b, "board.edit", {"board": board, "op": op})))
    collect(sent)
    check("every concurrent edit is taken", not refused and len(offsets) == rounds * len(everyone),
          refused[:3])
    check("no offset handed out twice across the two services",
          len(set(offsets)) == len(offsets), sorted(offsets))
    head = max(offsets + [1])
    check("offsets without gaps", sorted(offsets + [1]) == list(range(1, head + 1)),
          sorted(offsets))
    for c in everyone:
        err = c.pump(head)
        check(f"{c.name} follows every op", err is None and c.offset == head,
              err or f"at {c.offset} of {head}")
        check(f"{c.name} sees each offset once, in order",
              c.seen == list(range(c.seen[0] if c.seen else 1, head + 1)), c.seen[:20])
    ref = A[0].shapes
    check("every client has the same shapes", all(c.shapes == ref for c in everyone),
          {c.name: len(c.shapes) for c in everyone})
    check("the shapes are what was sent", len(ref) == 1 + 7 + 7 * 5 and "common" in ref, len(ref))
    for g in ("gwA", "gwB"):
        v = Browser(gw[g])
        r = v.req("board.join", {"board": board, "name": "viewer"})
        snap = {s["id"]: s for s in r["data"]["shapes"]} if r and r["type"] == "cfm" else None
        check(f"the snapshot of the service behind {g} agrees", snap == ref
              and r["data"]["offset"] == head, r)
        v.close()

    # ---- one browser spread over both instances ----
    ids = set()
    for k in range(8):  # the pool picks per request: both instances serve X
        r = X.b.req("board.join", {"board": board, "name": "X"})
        ids.add(r["data"]["you"]["id"] if r and r["type"] == "cfm" else None)
    check("one member, whichever instance answers its joins", ids == {X.me["id"]}, ids)
    oks = 0
    for k in range(8):
        r = X.b.req("board.edit", {"board": board, "op": {"kind": "move", "shape": {
            "id": "common", "x": 100 + k, "y": 0}}})
        oks += r is not None and r["type"] == "cfm"
        r = X.b.req("chat.post", {"board": board, "text": f"hello {k}"})
        oks += r is not None and r["type"] == "cfm"
    check("its edits and chat lines are taken by either instance", oks == 16, oks)

    # A join answers once its member is in Redis: the next request, on either instance, finds it
    # (regression: joins answered early, and an edit sent to the other instance was refused).
    fresh = [Browser(gw["gwAB"]) for _ in range(16)]
    joins = [send_req(f, "board.join", {"board": f"fresh-{k % 4}", "name": f"F{k}"})
             for k, f in enumerate(fresh)]
    joined = [answer(f, i) for f, i in zip(fresh, joins)]
    edits = [send_req(f, "board.edit", {"board": f"fresh-{k % 4}", "op": {"kind": "add", "shape": {
        "x": k, "y": k}}}) for k, f in enumerate(fresh)]
    edited = [answer(f, i) for f, i in zip(fresh, edits)]
    bad = [m for m in joined + edited if not m or m["type"] != "cfm"]
    check("fresh browsers spread over both instances join and edit at once", not bad, bad[:3])
    for f in fresh:
        f.close()

    # The same at speed: rsocket-bench's board users join and edit at once, through both
    # instances (the Python client above is too slow to meet every race).
    bench = subprocess.run([os.path.join(bin_dir, "rsocket-bench"), "--model", "board", "-c", "200",
                            "--boards", "20", "--rate", "5", "-D", "3",
                            f"ws://127.0.0.1:{gw['gwAB']}"], capture_output=True, text=True,
                           timeout=60)
    check("rsocket-bench board users over both instances: no error", bench.returncode == 0
          and ", 0 errors" in bench.stdout, (bench.stdout + bench.stderr)[-600:])

    # ---- presence across instances; a service killed ----
    pa = A[0].b.sub("board.presence", {"board": board})
    for c in B + [X]:
        c.pres = c.b.sub("board.presence", {"board": board})
    want = sorted(["A0", "A1", "A2", "B0", "B1", "B2", "X"])
    got = presence_names(A[0].b, pa, lambda n: all(w in n for w in want))
    check("presence on service 1 shows the members of both instances",
          got is not None and all(w in got for w in want), got)
    got = presence_names(B[0].b, B[0].pres, lambda n: all(w in n for w in want))
    check("presence on service 2 shows them too", got is not None and all(w in got for w in want),
          got)
    # A rename of a member both instances hold: it stays (no instance's refresh undoes it).
    for k in range(4):  # the pool spreads the joins: both instances hold X
        X.b.req("board.join", {"board": board, "name": "X"})
    r = X.b.req("board.join", {"board": board, "name": "Xavier"})
    check("a member renames itself", r and r["type"] == "cfm" and r["data"]["you"]["name"] ==
          "Xavier", r)
    got = presence_names(A[0].b, pa, lambda n: "Xavier" in n and "X" not in n)
    time.sleep(5)  # two refreshes of every holder
    A[0].b.drain(0.1)
    v = Browser(gw["gwB"])
    r = v.req("board.join", {"board": board, "name": "viewer"})
    later = names(r["data"]["members"]) if r and r["type"] == "cfm" else None
    v.close()
    check("the new name shows on both instances, and stays", got is not None and "Xavier" in got
          and later is not None and "Xavier" in later and "X" not in later, (got, later))
    want = [w if w != "X" else "Xavier" for w in want]

    t0 = time.monotonic()
    svc[1].send_signal(signal.SIGKILL)
    svc[1].wait()
    gone = presence_names(A[0].b, pa, lambda n: not any(x in n for x in ("B0", "B1", "B2")),
                          timeout=30)
    took = time.monotonic() - t0
    check("kill -9 of service 2: its members leave service 1's presence (no ghosts)",
          gone is not None and not any(x in gone for x in ("B0", "B1", "B2")), gone)
    check("within a bounded time (expiry 6 s, refresh 2 s)", took < 20, f"{took:.1f} s")
    check("members of service 1 stay", gone is not None and all(x in gone for x in ("A0", "A1")),
          gone)
    mark = size_of(work, "svc2")
    svc[1] = start("svc2", svc_cmd[1], work)
    check("service 2 restarts", wait_line(work, "svc2", "connected (epoch", after=mark) is not None)
    check("gwB reaches it again", healthy(gw["gwB"], 30))
    for c in B:  # their streams ended with the service: they join and follow again
        d = c.join()
        check(f"{c.name} joins again through the restarted service", d["epoch"] == epoch, d)

    # ---- Redis down, then back empty ----
    before = [size_of(work, "svc1"), size_of(work, "svc2")]
    redis.send_signal(signal.SIGKILL)
    redis.wait()
    for i in range(2):
        check(f"service {i + 1} notices redis is gone", wait_line(
            work, f"svc{i + 1}", "connection lost", after=before[i]) is not None)
    r = A[0].b.req("board.edit", {"board": board, "op": {"kind": "move", "shape": {
        "id": "common", "x": 1, "y": 1}}})
    check("an edit while redis is down fails at once, saying why",
          err_of(r).startswith("storage unavailable: redis 127.0.0.1:") and
          r["error"]["code"] == "APPLICATION_ERROR", r)
    v = Browser(gw["gwB"])
    r = v.req("board.join", {"board": "other", "name": "late"})
    check("a join too", err_of(r).startswith("storage unavailable: "), r)
    v.close()
    check("the services stay up", all(alive(p) for p in svc), [p.poll() for p in svc])
    time.sleep(0.5)
    redis = start("redis", redis_cmd, work)
    for i in range(2):
        line = wait_line(work, f"svc{i + 1}", "epoch changed", after=before[i], timeout=30)
        check(f"service {i + 1} comes back on a new epoch", line is not None, line)
    for c in (A[0], B[0]):
        m = c.b.ind(c.ops, lambda d: False)
        check(f"{c.name}'s ops stream ends with HISTORY_GONE", err_of(m) == "HISTORY_GONE", m)
    for c in (A[0], B[0]):
        d = c.join()
        check(f"{c.name} joins again: a new epoch, an empty board",
              d["epoch"] != epoch and d["offset"] == 0 and d["shapes"] == [], d)
    r = B[0].b.req("board.edit", {"board": board, "op": {"kind": "add", "shape": {
        "id": "again", "x": 1, "y": 2}}})
    check("edits go on", r and r["type"] == "cfm" and r["data"]["offset"] == 1, r)
    err = A[0].pump(1)
    check("and reach the other instance's followers", err is None and "again" in A[0].shapes,
          err or A[0].shapes)
    check("the services are still up", all(alive(p) for p in svc), [p.poll() for p in svc])


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a crash is a failure, with what happened
        fails += 1
        print(f"FAIL driver: {type(e).__name__}: {e}", flush=True)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                rc = p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = "hung"
            if p.args[0].endswith("collab-service") and rc not in (0, -9):
                fails += 1
                print(f"FAIL collab-service exit status after SIGTERM: {rc}", flush=True)
    sys.exit(1 if fails else 0)
