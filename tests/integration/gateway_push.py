#!/usr/bin/python3
"""Scenarios of test_gateway_push.sh: pushes from backends (REQUEST_FNF push.all,
push.session.ID, push.user.ID on the gateway's own connection) reach the matching clients of
every worker, as {"type":"ind","route":…,"data":…} without an id."""
import sys
import os

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gwclient import *  # noqa: E402,F403


def session_of(c, id_):
    """The client's session id, as the backend sees it in the client metadata entry."""
    m = c.call({"type": "req", "id": id_, "route": "x.stats"})
    return m["data"]["client"]["session"]


def push(c, id_, route, data):
    """Has the backend push; returns (its cfm, the pushes `c` got before it: the backend pushes
    before it answers)."""
    c.send({"type": "req", "id": id_, "route": "x.pushto", "data": [route, data]})
    m, before = c.recv_until(lambda m: m.get("id") == id_)
    return m, [b for b in before if b.get("type") == "ind" and "route" in b]


def pushes(c, timeout=1.0):
    return [m for m in c.quiet(timeout) if m.get("type") == "ind" and "route" in m]


def sessions(port, n):
    """n clients; with --workers 2 they spread over both workers (SO_REUSEPORT): keep opening
    until two sessions name different workers (the session id's top byte), at most 40."""
    cs, workers = [], set()
    for i in range(40):
        c = Client(port)
        cs.append(c)
        workers.add(session_of(c, 1000 + i)[:2])
        if len(cs) >= n and len(workers) >= 2:
            break
    return cs, workers


def fanout(port):
    cs, workers = sessions(port, 4)
    CHECK("the clients are on two workers", 2, len(workers))
    r, first = push(cs[0], 1, "push.all", {"msg": "hello all"})
    CHECK("the backend pushed", {"type": "cfm", "id": 1, "data": "pushed"}, r)
    got = [first + pushes(cs[0])] + [pushes(c) for c in cs[1:]]
    CHECK("push.all: every client of every worker gets it once", [1] * len(cs),
          [len(g) for g in got])
    CHECK("push.all: an ind with the route and the data, no id",
          {"type": "ind", "route": "push.all", "data": {"msg": "hello all"}}, got[-1][0])
    # push.session: only that client, even when it is on the other worker.
    target = cs[-1]
    sid = session_of(target, 2)
    _, mine = push(cs[0], 3, "push.session." + sid, "just you")
    CHECK("push.session: not to the client that asked", [], mine)
    CHECK("push.session: the named client gets it",
          [{"type": "ind", "route": "push.session." + sid, "data": "just you"}], pushes(target))
    CHECK("push.session: nobody else", [[]] * (len(cs) - 1), [pushes(c, 0.3) for c in cs[:-1]])
    _, mine = push(cs[0], 4, "push.session.00ffffffffffffff", 1)
    CHECK("push.session of nobody: not to the one that asked", [], mine)
    CHECK("push.session of nobody: delivered to nobody", [[]] * len(cs), [pushes(c, 0.3) for c in cs])
    _, mine = push(cs[0], 5, "push.nothing", 1)
    CHECK("an unknown push route: not to the one that asked", [], mine)
    CHECK("an unknown push route: dropped", [[]] * len(cs), [pushes(c, 0.3) for c in cs])
    status, _, body = http_get(port, "/metrics")
    body = body if isinstance(body, str) else body.decode()
    CHECK("metrics: a message per client reached (push.all to each, push.session to one)", True,
          "rsocket_gateway_pushes_total %d\n" % (len(cs) + 1) in body)
    CHECK("metrics: the unknown push route counted as dropped", True,
          "rsocket_gateway_pushes_dropped_total 1\n" in body)
    for c in cs:
        c.close()


def users(port, tok_ada, tok_bob):
    """Run with --jwt-secret: push.user.ID reaches the clients authenticated as ID."""

    a1 = Client(port, path="/?token=" + tok_ada)
    a2 = Client(port, path="/?token=" + tok_ada)
    b = Client(port, path="/?token=" + tok_bob)
    _, mine = push(b, 1, "push.user.ada", "for ada")
    CHECK("push.user: not to bob, who asked", [], mine)
    CHECK("push.user: both of ada's clients", [1, 1],
          [len(pushes(a1)), len(pushes(a2))])
    CHECK("push.user: not bob's", [], pushes(b, 0.3))
    for c in (a1, a2, b):
        c.close()


def drain(port, pid):
    """A req in flight when SIGTERM comes is answered, then the client is closed with 1001; a
    client with only a sub is closed at once; new upgrades get 503, /healthz 503."""
    busy = Client(port)
    idle = Client(port)
    idle.send({"type": "sub", "id": 1, "route": "x.count", "n": 1})
    idle.recv()
    busy.send({"type": "req", "id": 7, "route": "x.delay", "data": 1500})
    time.sleep(0.3)
    os.kill(pid, 15)
    CHECK("drain: a client with no req in flight is closed with 1001 at once",
          (1001, "gateway shutting down"), idle.recv_close(timeout=1.0))
    CHECK("drain: /healthz answers 503", 503, http_get(port, "/healthz")[0])
    CHECK("drain: new upgrades get 503", 503, upgrade_status(port))
    CHECK("drain: the req in flight is answered",
          {"type": "cfm", "id": 7, "data": 1500}, busy.recv(timeout=5))
    CHECK("drain: then its client is closed with 1001", (1001, "gateway shutting down"),
          busy.recv_close(timeout=2))


run({"fanout": fanout, "users": users, "drain": drain})
