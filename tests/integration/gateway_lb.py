#!/usr/bin/python3
"""Scenarios of test_gateway_lb.sh: load balancing and backend failures through rsocket-gateway,
against tests/support/gw_backend processes (whoami says which one answered). Each prints CHECK
lines (gwclient.py).

  share PORT NAME MAX_PCT N   N whoami reqs, 16 in flight: NAME answers at most MAX_PCT % of them
  even PORT N                 N whoami reqs, 16 in flight: two backends share them evenly
  only PORT NAME N            N whoami reqs: all answered by NAME
  kill PORT PID NAME OTHER    load on both backends, then kill -9 of PID (backend NAME): its
                              reqs and subs get rej UNAVAILABLE at once, the rest goes on
  back PORT NAME              NAME gets traffic again (it was restarted)
"""
import os
import signal
import sys
import time

sys.path.insert(0, sys.path[0])
from gwclient import CHECK, Client, Timeout, error_of, http_get, run  # noqa


def whoami_counts(c, n, in_flight=16, route="whoami"):
    """Sends n whoami reqs keeping in_flight open; returns ({name: count}, {error: count})."""
    names, errors = {}, {}
    sent = done = 0
    while sent < min(in_flight, n):
        c.send({"type": "req", "id": sent, "route": route})
        sent += 1
    while done < n:
        m = c.recv(10)
        done += 1
        if m["type"] == "cfm":
            names[m["data"]] = names.get(m["data"], 0) + 1
        else:
            errors[error_of(m)] = errors.get(error_of(m), 0) + 1
        if sent < n:
            c.send({"type": "req", "id": sent, "route": route})
            sent += 1
    return names, errors


def share(port, name, max_pct, n):
    c = Client(port)
    names, errors = whoami_counts(c, n)
    got = names.get(name, 0)
    CHECK("%d reqs, 16 in flight: all answered (%s)" % (n, names), {}, errors)
    CHECK("p2c: the slow backend %s gets under %d%% (%d of %d)" % (name, max_pct, got, n), True,
          got * 100 < max_pct * n)
    c.close()


def even(port, n):
    c = Client(port)
    names, errors = whoami_counts(c, n)
    CHECK("round-robin: all answered", {}, errors)
    counts = sorted(names.values())
    CHECK("round-robin: two backends share the reqs evenly (%s)" % names, True,
          len(counts) == 2 and counts[0] * 100 >= 40 * n)
    c.close()


def only(port, name, n):
    c = Client(port)
    names, errors = whoami_counts(c, n)
    CHECK("all %d reqs answered by %s (%s %s)" % (n, name, names, errors), ({name: n}, {}),
          (names, errors))
    c.close()


def kill(port, pid, name, other):
    c = Client(port)
    # Load: 40 subs that never end and 16 reqs answered after 2 s, spread by the pools over both
    # backends (subs count as load while open). The slow reqs go through a pool of their own
    # (route slow.*): see test_gateway_lb.sh.
    for i in range(40):
        c.send({"type": "sub", "id": "s%d" % i, "route": "silent"})
    c.send({"type": "ping", "id": "subs"})
    c.recv_until(lambda m: m.get("id") == "subs")
    for i in range(16):
        c.send({"type": "req", "id": "r%d" % i, "route": "slow.delay", "data": 2000})
    bystander = Client(port)
    CHECK("before the kill: both backends answer", True,
          len(whoami_counts(bystander, 200)[0]) == 2)
    time.sleep(0.2)
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    # Every sub and req on the killed backend gets rej UNAVAILABLE; the reqs on the other one
    # their cfm after 2 s.
    rejected, answered, other_msgs = {}, 0, []
    last_rej = None
    deadline = time.monotonic() + 10
    while answered < 16 and time.monotonic() < deadline:
        try:
            m = c.recv(max(deadline - time.monotonic(), 0.01))
        except Timeout:
            break
        if m["type"] == "rej":
            rejected[m["id"]] = (m["error"]["code"], m["error"]["message"].split(":")[0])
            last_rej = time.monotonic() - t0
            if m["id"].startswith("r"):
                answered += 1
        elif m["type"] == "cfm":
            answered += 1
        else:
            other_msgs.append(m)
    subs_lost = sum(1 for k in rejected if k.startswith("s"))
    CHECK("kill -9: every req in flight is answered (cfm or rej)", 16, answered)
    CHECK("kill -9: the lost reqs and subs get rej UNAVAILABLE 'the backend connection was lost'",
          {"UNAVAILABLE the backend connection was lost"},
          {"%s %s" % v for v in rejected.values()} or {"none"})
    CHECK("kill -9: some subs were on it (%d of 40) and some on the other" % subs_lost, True,
          0 < subs_lost < 40)
    CHECK("kill -9: the rej come within 5 s (%.2f s)" % (last_rej or -1), True,
          last_rej is not None and last_rej < 5)
    CHECK("kill -9: nothing else arrived", [], other_msgs)
    CHECK("kill -9: the client's WebSocket stays open", {"type": "pong", "id": 1},
          c.call({"type": "ping", "id": 1}))
    names, errors = whoami_counts(bystander, 100)
    CHECK("kill -9: new reqs go to the other backend at once", ({other: 100}, {}), (names, errors))
    c.send({"type": "sub", "id": "after", "route": "count", "data": 3})
    CHECK("kill -9: a new sub works", [1, 2, 3, "end"],
          [m.get("data", m["type"]) for m in (c.recv() for _ in range(4))])
    CHECK("kill -9: /healthz still 200", 200, http_get(port, "/healthz")[0])
    # The subs on the other backend are still open: unsubscribing them is silent.
    for i in range(40):
        if "s%d" % i not in rejected:
            c.send({"type": "unsub", "id": "s%d" % i})
    CHECK("kill -9: the surviving subs were still open (unsub is silent)", True,
          c.call({"type": "ping", "id": 2}) == {"type": "pong", "id": 2})
    c.close()
    bystander.close()


def back(port, name):
    c = Client(port)
    deadline = time.monotonic() + 10
    seen = {}
    t0 = time.monotonic()
    while time.monotonic() < deadline and name not in seen:
        names, errors = whoami_counts(c, 50)
        for k, v in names.items():
            seen[k] = seen.get(k, 0) + v
        time.sleep(0.05)
    CHECK("the restarted backend %s gets traffic again (%.1f s: %s)" %
          (name, time.monotonic() - t0, seen), True, name in seen)
    c.close()


if __name__ == "__main__":
    run({"share": share, "even": even, "only": only, "kill": kill, "back": back})
