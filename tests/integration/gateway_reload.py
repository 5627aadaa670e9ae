#!/usr/bin/python3
"""Scenarios of test_gateway_reload.sh: SIGHUP reloads rsocket-gateway's routes (docs/GATEWAY.md,
"Reloading the configuration") with clients connected, against tests/support/gw_backend
processes (whoami says which one answered). Each prints CHECK lines (gwclient.py).

  reload PORT PID CONFIG LOG A B C D   the config names A, B (a.* = A,B; b.* = B; * = A);
                                       rewritten to a.* = A,D; b.* = C; new.* = D; * = A, then
                                       to broken files: see reload()
  churn PORT PID CONFIG A B C          40 reloads that swap B and C in a.*, 0.1 s apart, under a
                                       steady load of reqs and subs: nothing fails
  cli PORT PID CONFIG LOG A C          --route on the command line: a reload keeps it
"""
import json
import os
import signal
import socket
import sys
import time

sys.path.insert(0, sys.path[0])
from gwclient import CHECK, Client, Timeout, error_of, http_get, run  # noqa

WAIT = 30  # the longest any condition is waited for (seconds)


def wait_until(pred, timeout=WAIT, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def write_config(path, routes, **settings):
    cfg = {"listen": "ws://127.0.0.1:0", "routes": routes}
    cfg.update(settings)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(cfg, f)
    os.replace(tmp, path)  # the gateway never reads half a file


def log_lines(log, event):
    with open(log, errors="replace") as f:
        return [line for line in f if f"event={event} " in line]


def hup(pid, log, result):
    """SIGHUP, then waits for the reload's log line; returns it."""
    before = len(log_lines(log, "config_reload"))
    os.kill(pid, signal.SIGHUP)
    lines = wait_until(lambda: log_lines(log, "config_reload")[before:])
    line = lines[0] if lines else ""
    CHECK(f"the reload is logged with result={result} ({line.strip()[:300]})", True,
          f"result={result}" in line)
    return line


def established(port):
    """TCP connections established to the local `port` (the backend's side of them)."""
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].split(":")[1], 16) == port:
                n += 1
    return n


def port_of(uri):
    return int(uri.rstrip("/").rsplit(":", 1)[1])


def metrics(port):
    status, _, body = http_get(port, "/metrics")
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = int(float(v)) if float(v).is_integer() else float(v)
    return out


def whoami(c, route, tag):
    m = c.call({"type": "req", "id": tag, "route": route}, timeout=10)
    return m.get("data") if m["type"] == "cfm" else error_of(m)


def reload(port, pid, config, log, A, B, C, D):
    bport = port_of(B)
    c1, c2 = Client(port), Client(port)
    CHECK("before: b.* is served by B", "B", whoami(c1, "b.whoami", "w0"))
    # On B (b.* = B only): a sub with client-managed credit (5 elements, 2 granted now), a sub
    # that never ends, and a req answered after 3 s.
    c1.send({"type": "sub", "id": "keep", "route": "b.count", "data": 5, "n": 2})
    first = [c1.recv_until(lambda m: m.get("id") == "keep")[0] for _ in range(2)]
    CHECK("before: the sub on B got its first 2 elements", [1, 2], [m.get("data") for m in first])
    c1.send({"type": "sub", "id": "stuck", "route": "b.silent"})
    c2.send({"type": "req", "id": "slow", "route": "b.delay", "data": 3000})
    c1.call({"type": "ping", "id": "p0"})
    c2.call({"type": "ping", "id": "p0"})
    CHECK("before: the gateway has connections to B", True, established(bport) > 0)

    # Reload: B removed, C and D added, a.* changed (B -> D), a route added; a setting that
    # needs a restart changed too.
    write_config(config, {"a.*": [A, D], "b.*": C, "new.*": D, "*": A},
                 drain_timeout="10s", connections_per_backend=1)
    line = hup(pid, log, "ok")
    CHECK("the log names the backends added and removed", True,
          f'added="{C} {D}"' in line or f'added="{D} {C}"' in line)
    CHECK("the log names the removed backend", True, f"removed={B}" in line)
    CHECK("the log says which settings wait for a restart", True,
          "ignored_until_restart=connections-per-backend" in line)

    # The sub on the removed backend goes on: 3 more elements, then its end.
    c1.send({"type": "more", "id": "keep", "n": 3})
    rest = []
    while True:
        m = c1.recv_until(lambda m: m.get("id") == "keep", timeout=10)[0]
        rest.append(m.get("data") if m["type"] == "ind" else error_of(m))
        if m["type"] != "ind":
            break
    CHECK("after: the sub on the removed backend B got the rest, then its end", [3, 4, 5, "end"],
          rest)
    m = c2.recv_until(lambda m: m.get("id") == "slow", timeout=15)[0]
    CHECK("after: the req in flight on B was answered", ("cfm", 3000), (m["type"], m.get("data")))

    # New requests go to the new backends (every worker has the new table: asked until so).
    n = [0]

    def served_by(c, route, want):
        n[0] += 1
        return whoami(c, route, "w%d" % n[0]) == want

    for c, name in ((c1, "c1"), (c2, "c2")):
        CHECK(f"after ({name}): b.* goes to C", True, wait_until(lambda: served_by(c, "b.x.whoami", "C")))
        CHECK(f"after ({name}): new.* goes to D", "D", whoami(c, "new.whoami", "n" + name))
        CHECK(f"after ({name}): * still goes to A", "A", whoami(c, "other.whoami", "o" + name))
        # D's connections come up after the reload: a.* reaches it once they are.
        CHECK(f"after ({name}): a.* reaches D", True,
              wait_until(lambda: served_by(c, "a.whoami", "D")))
        names = {}
        for i in range(40):
            got = whoami(c, "a.whoami", "a%d%s" % (i, name))
            names[got] = names.get(got, 0) + 1
        CHECK(f"after ({name}): a.* goes to A and D only ({names})", True,
              set(names) <= {"A", "D"})

    # The sub that never ends on B is cut by --drain-timeout; its client stays.
    m = c1.recv_until(lambda m: m.get("id") == "stuck", timeout=WAIT)[0]
    CHECK("the endless sub on B ends after --drain-timeout with rej UNAVAILABLE", "rej UNAVAILABLE",
          error_of(m))
    wait_until(lambda: established(bport) == 0)
    CHECK("B's connections close once drained", 0, established(bport))
    CHECK("each worker logged that B drained", True,
          wait_until(lambda: any(B in ln for ln in log_lines(log, "backend_drained"))))
    got = wait_until(lambda: not [k for k in metrics(port) if B in k])
    CHECK("/metrics: B's series are gone", True, bool(got))
    mt = metrics(port)
    CHECK("/metrics: C is connected", True,
          mt.get(f'rsocket_gateway_backend_connections{{backend="{C}",pool="b.*"}}', 0) > 0)
    CHECK("/metrics: D serves a.* and new.*", (True, True),
          (f'rsocket_gateway_backend_requests_total{{backend="{D}",pool="a.*"}}' in mt,
           f'rsocket_gateway_backend_requests_total{{backend="{D}",pool="new.*"}}' in mt))
    CHECK("/metrics: one reload ok", (1, 0),
          (mt.get('rsocket_gateway_config_reloads_total{result="ok"}'),
           mt.get('rsocket_gateway_config_reloads_total{result="error"}')))
    CHECK("/metrics: per-route counters kept across the reload (b.* req)", True,
          mt.get('rsocket_gateway_requests_total{route="b.*",model="req"}', 0) >= 4)

    # Broken configurations are refused; the routes in force stay.
    with open(config, "w") as f:
        f.write('{"listen": "ws://127.0.0.1:0", "routes": {"b.*": ')
    line = hup(pid, log, "error")
    CHECK("a syntax error is refused, naming the file and line", True, f"{config}:1:" in line)
    write_config(config, {"b.*": "bogus://127.0.0.1:1", "*": A})
    line = hup(pid, log, "error")
    CHECK("a bad backend URI is refused, naming it", True, "bogus://127.0.0.1:1" in line)
    write_config(config, {"b.*": A}, workers="many")
    line = hup(pid, log, "error")
    CHECK("a bad value of another setting is refused", True, "--workers" in line)
    for c, name in ((c1, "c1"), (c2, "c2")):
        CHECK(f"after the refused reloads ({name}): b.* still goes to C", "C",
              whoami(c, "b.whoami", "r" + name))
    mt = metrics(port)
    CHECK("/metrics: reloads 1 ok, 3 refused", (1, 3),
          (mt.get('rsocket_gateway_config_reloads_total{result="ok"}'),
           mt.get('rsocket_gateway_config_reloads_total{result="error"}')))

    # No client was dropped.
    for c, name in ((c1, "c1"), (c2, "c2")):
        CHECK(f"{name} is still connected (ping answered)", "pong",
              c.call({"type": "ping", "id": "last"})["type"])
    CHECK("/metrics: 2 clients accepted, 2 connected", (2, 2),
          (mt.get('rsocket_gateway_clients_accepted_total{protocol="json"}'),
           mt.get('rsocket_gateway_clients{protocol="json"}')))
    c1.close()
    c2.close()


def churn(port, pid, config, A, B, C):
    c = Client(port)
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    before = metrics(port).get('rsocket_gateway_config_reloads_total{result="ok"}', 0)
    reqs = subs = ended = reloads = 0
    bad = {}
    last = time.monotonic()
    while reloads < 40:
        # Subs with client credit (3 elements, 1 granted at a time) and reqs, one at a time.
        if subs - ended < 20:
            c.send({"type": "sub", "id": "s%d" % subs, "route": "a.count", "data": 3, "n": 1})
            subs += 1
        c.send({"type": "req", "id": "r%d" % reqs, "route": "a.whoami"})
        reqs += 1
        while True:
            m = c.recv(10)
            if not str(m.get("id")).startswith("s"):
                break
            if m["type"] == "ind":
                c.send({"type": "more", "id": m["id"], "n": 1})
                continue
            ended += 1
            if m["type"] != "end":
                bad[error_of(m)] = bad.get(error_of(m), 0) + 1
        if m["type"] != "cfm" or m.get("data") not in ("A", "B", "C", "D"):
            bad[error_of(m)] = bad.get(error_of(m), 0) + 1
        if time.monotonic() - last >= 0.1:
            write_config(config, {"a.*": [A, C] if reloads % 2 == 0 else [A, B], "*": A},
                         drain_timeout="10s")
            os.kill(pid, signal.SIGHUP)
            reloads += 1
            last = time.monotonic()
    CHECK("churn: %d reqs and %d subs across %d reloads: none failed" % (reqs, ended, reloads), {},
          bad)
    got = wait_until(lambda: metrics(port).get(
        'rsocket_gateway_config_reloads_total{result="ok"}', 0) > before)
    CHECK("churn: the reloads were applied", True, bool(got))
    CHECK("churn: the client is still connected", "pong", c.call({"type": "ping", "id": "p"})["type"])
    c.close()


def cli(port, pid, config, log, A, C):
    c = Client(port)
    CHECK("--route on the command line wins over the file's routes", "A",
          whoami(c, "x.whoami", "c0"))
    write_config(config, {"*": C})
    hup(pid, log, "ok")
    time.sleep(0.3)
    CHECK("after a reload the command line's routes stay", "A", whoami(c, "x.whoami", "c1"))
    c.close()


run({"reload": reload, "churn": churn, "cli": cli})
