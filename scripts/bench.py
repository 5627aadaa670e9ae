#!/usr/bin/python3
"""`make bench`: rsocket-c side by side with rsocket-js 1.0.0-alpha.3 and node's `ws`.

Runs, in one go on this machine, the same workloads (build/bin/rsocket-bench) against our server
(`rsocket --server`) and against the rsocket-js echo server (tests/interop/peers), an rsocket-js
client against both servers, our ws-echo-server against node's `ws` echo server with one client
for both, the codec micro-benchmark, the idle-connection memory test, and the gateway
(build/bin/rsocket-gateway beside a Node gateway, tests/interop/peers/node_gateway.mjs, in front of
the same backend), and the gateway's hop at 1 in flight beside HAProxy's (mode tcp) under
several kinds of scheduling. Prints a table and rewrites docs/BENCHMARKS.md.

Environment: BENCH_SECONDS (measured seconds per run, default 3), BENCH_WARMUP (default 1),
BENCH_IDLE (idle connections, default 10000), BENCH_GW_IDLE (idle gateway clients, default
20000), BENCH_GATEWAY (the rsocket-gateway binary, default build/bin/rsocket-gateway; when it is
missing its rows are skipped), BENCH_ONLY=gateway (only the gateway section, which replaces the
doc's "## Gateway" section), BENCH_ONLY=gwidle (only rsocket-gateway's idle-memory figure, printed
as JSON; the doc is left alone), BENCH_ONLY=passthrough (only the gateway's RSocket passthrough,
"## RSocket passthrough"), BENCH_ONLY=board (only the collaborative board's section, "## Board",
the last: single node, and the cluster of scripts/cluster when collab-service has --redis),
BENCH_BOARD_SECONDS (its measured seconds, default 10), BENCH_NO_DOC=1 (do not rewrite
the doc), BENCH_HALTPOLL=0 (in a KVM guest whose idle vCPUs halt at once, do not set the
guest's halt polling to the kernel's default for the hop's last row; it is set back to 0 after
that row, and on exit or SIGTERM).
"""
import datetime
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "bin")
PEERS = os.path.join(ROOT, "tests", "interop", "peers")
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
WARMUP = float(os.environ.get("BENCH_WARMUP", "1"))
IDLE = int(os.environ.get("BENCH_IDLE", "10000"))
GW_IDLE = int(os.environ.get("BENCH_GW_IDLE", "20000"))
GATEWAY = os.environ.get("BENCH_GATEWAY", os.path.join(BIN, "rsocket-gateway"))
ONLY = os.environ.get("BENCH_ONLY", "")
BOARD_SECONDS = float(os.environ.get("BENCH_BOARD_SECONDS", "10"))
BOARD_USERS, BOARD_BOARDS, BOARD_RATE, BOARD_TARGET_MS = 200, 20, 5, 20

children = []
tmpdir = tempfile.mkdtemp(prefix="rsocket-bench.")


def raise_nofile():
    """65,536 descriptors where allowed (root may raise the hard limit: 20,000 idle gateway
    clients need more than a hard limit of 20,000), else as many as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return
        except (ValueError, OSError):
            want = hard
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def start(name, cmd, timeout=15):
    """Starts a server, waits for its 'listening on URI' line, returns (proc, uri)."""
    log = os.path.join(tmpdir, name + ".log")
    out = open(log, "w")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, preexec_fn=raise_nofile,
                            cwd=ROOT)
    children.append(proc)
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(log) as f:
            m = re.search(r"listening on (\S+)", f.read())
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    with open(log) as f:
        sys.exit(f"bench: {name} did not start: {' '.join(cmd)}\n{f.read()}")


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


haltpoll_saved = None  # the halt-polling window to put back (hop_study)


def cleanup():
    if haltpoll_saved is not None:
        set_haltpoll(haltpoll_saved)
    for p in children:
        if p.poll() is None:
            p.kill()
            p.wait()


commands = []  # (label, command line) for the doc


def run_json(label, cmd, timeout=120):
    commands.append((label, " ".join(shlex.quote(c) for c in cmd)))
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           preexec_fn=raise_nofile, cwd=ROOT)
    except subprocess.TimeoutExpired:
        print(f"bench: {label}: timed out", file=sys.stderr)
        return None
    line = next((l for l in r.stdout.splitlines() if l.startswith("{")), None)
    if line is None:
        print(f"bench: {label}: no result (exit {r.returncode}): {r.stderr.strip()[:300]}",
              file=sys.stderr)
        return None
    res = json.loads(line)
    if res.get("errors") or res.get("first_error"):
        print(f"bench: {label}: {res.get('errors', 0)} errors: {res.get('first_error', '')}",
              file=sys.stderr)
    return res


def bench(label, uri, *extra):
    cmd = [os.path.join(BIN, "rsocket-bench"), "--json", "--no-progress", "-D", str(SECONDS),
           "--warmup", str(WARMUP), *extra, uri]
    return run_json(label, cmd)


def js_client(label, uri, in_flight):
    cmd = ["node", os.path.join(PEERS, "js_bench_client.mjs"), "--uri", uri, "--duration",
           str(SECONDS), "--warmup", str(WARMUP), "--in-flight", str(in_flight)]
    return run_json(label, cmd)


def rate(r):
    return r["rate"] if r else None


def lat(r, q):
    return r["latency_us"][q] if r and "latency_us" in r else None


def fmt_rate(v):
    if v is None:
        return "failed"
    if v >= 1e6:
        return f"{v / 1e6:.2f} M/s"
    if v >= 1e3:
        return f"{v / 1e3:.1f} k/s"
    return f"{v:.0f} /s"


def fmt_us(v):
    return "failed" if v is None else f"{v:.1f} µs"


def ratio(a, b, higher_better=True):
    if a is None or b is None or a == 0 or b == 0:
        return "-"
    return f"{(a / b if higher_better else b / a):.1f}×"


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.+)", f.read())
            cpu = m.group(1).strip() if m else cpu
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1))
            mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, AttributeError):
        pass
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory": mem,
        "kernel": platform.release(), "node": node, "commit": commit or "unknown",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


# ---- the gateway: rsocket-gateway beside a Node gateway, one backend ----

GW_SECTION = "Gateway (rsocket-gateway vs Node: ws + rsocket-js)"


def gateway_name():
    return os.path.relpath(GATEWAY, ROOT) if GATEWAY.startswith(ROOT + "/") else GATEWAY


def gateway_cmds(be_uri):
    """The two gateways' command lines (None for ours when its binary is missing)."""
    ours = [GATEWAY, "--listen", "ws://127.0.0.1:0", "--route", f"*={be_uri}"]
    node = ["node", os.path.join(PEERS, "node_gateway.mjs"), "--listen", "ws://127.0.0.1:0",
            "--route", f"*={be_uri}", "--connections", "2"]
    return (ours if os.access(GATEWAY, os.X_OK) else None), node


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))
    except (OSError, AttributeError):
        return None


def gw_idle(label, cmd):
    """GW_IDLE idle WebSocket clients held by a fresh gateway: its RSS growth per client. The
    clients come from several rsocket-bench processes of at most 10,000 each, so that no client
    process needs more descriptors than a hard limit of 20,000 allows; the gateway's resident
    memory is read here before the first and once the last has settled."""
    if cmd is None:
        return None
    srv, uri = start(label, cmd)
    time.sleep(0.5)
    before = rss_kib(srv.pid)
    parts = [min(10000, GW_IDLE - k) for k in range(0, GW_IDLE, 10000)]
    procs, got = [], []
    for i, n in enumerate(parts):
        c = [os.path.join(BIN, "rsocket-bench"), "--idle", str(n), "--model", "gw-req", "--sources",
             "8", "-D", "120", "--json", uri]
        commands.append((f"{label} ({i + 1} of {len(parts)}, held together)",
                         " ".join(shlex.quote(x) for x in c)))
        p = subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             preexec_fn=raise_nofile, cwd=ROOT)
        children.append(p)
        procs.append(p)
        line = p.stdout.readline()  # printed once its connections have settled
        if not line.startswith("{"):
            print(f"bench: {label}: no result from part {i + 1}", file=sys.stderr)
            break
        got.append(json.loads(line))
    after = rss_kib(srv.pid)
    for p in procs:
        stop(p)
    stop(srv)
    if len(got) != len(parts) or before is None or after is None:
        return None
    opened = sum(r["open"] for r in got)
    errors = [r["first_error"] for r in got if r.get("first_error")]
    if errors:
        print(f"bench: {label}: {opened:,} of {GW_IDLE:,} open: {errors[0]}", file=sys.stderr)
    return {"requested": GW_IDLE, "open": opened, "server_rss_before_kib": before,
            "server_rss_after_kib": after,
            "server_bytes_per_connection": (after - before) * 1024 / opened if opened else None}


def gateway():
    """Runs the gateway rows; returns (rows, results). The same rsocket-bench client drives both
    gateways (--model gw-req and gw-sub) in front of one `rsocket --server` backend; the direct
    row is the backend itself over RSocket/TCP, for the gateway's hop."""
    rows, res = [], {"t0": time.time(), "load": os.getloadavg(), "cmds_from": len(commands)}
    backend, be_uri = start("gw-backend", [os.path.join(BIN, "rsocket"), "--server",
                                           "tcp://127.0.0.1:0"])
    ours_cmd, node_cmd = gateway_cmds(be_uri)
    if ours_cmd is None:
        print(f"bench: {gateway_name()} is missing: the rsocket-gateway rows are "
              "skipped (the Node gateway's still run)", file=sys.stderr)
    ours = start("rsocket-gateway", ours_cmd) if ours_cmd else None
    node = start("node-gateway", node_cmd)
    direct = bench("gw direct: rr1 to the backend", be_uri, "-m", "1")
    res["gwdirect"] = (direct, None)
    for key, desc, extra in [
        ("gwreq1", "gw-req, 1 client, 1 in flight", ["-m", "1"]),
        ("gwreq16", "gw-req, 16 clients × 32 in flight, 2 threads",
         ["-c", "16", "-m", "32", "-t", "2"]),
        ("gwsub", "gw-sub fan-out, 1,000 subscribers (ind/s), 2 threads",
         ["--model", "gw-sub", "-c", "1000", "-t", "2"]),
    ]:
        model = [] if "--model" in extra else ["--model", "gw-req"]
        a = bench(f"{key} rsocket-gateway", ours[1], *model, *extra) if ours else None
        b = bench(f"{key} node gateway", node[1], *model, *extra)
        res[key] = (a, b)
        rows.append((GW_SECTION, desc, fmt_rate(rate(a)) if ours else "not built",
                     fmt_rate(rate(b)), ratio(rate(a), rate(b))))
        if key == "gwreq1":
            for q in ("p50", "p99"):
                rows.append((GW_SECTION, f"  latency {q}, 1 in flight", fmt_us(lat(a, q)) if ours
                             else "not built", fmt_us(lat(b, q)),
                             ratio(lat(a, q), lat(b, q), higher_better=False)))
            d50 = lat(direct, "p50")
            rows.append((GW_SECTION, "  direct to the backend (RSocket/TCP, rr), p50",
                         fmt_us(d50), "n/a", "-"))
            hop = [lat(r, "p50") - d50 if lat(r, "p50") is not None and d50 is not None else None
                   for r in (a, b)]
            rows.append((GW_SECTION, "  the gateway's hop: its p50 − direct p50",
                         fmt_us(hop[0]) if ours else "not built", fmt_us(hop[1]),
                         ratio(hop[0], hop[1], higher_better=False)))
    for p in (ours, node):
        if p:
            stop(p[0])
    stop(backend)
    # The hop under other kinds of scheduling, beside a TCP relay (fresh processes for each).
    res["hop"] = hop_study()
    # Idle clients: fresh gateways (and backend), so the load above is not in their RSS.
    backend, be_uri = start("gw-idle-backend", [os.path.join(BIN, "rsocket"), "--server",
                                                "tcp://127.0.0.1:0"])
    ours_cmd, node_cmd = gateway_cmds(be_uri)
    a = gw_idle("gw idle rsocket-gateway", ours_cmd)
    b = gw_idle("gw idle node gateway", node_cmd)
    stop(backend)
    res["gwidle"] = (a, b)
    res["elapsed"] = time.time() - res["t0"]
    res["cmds_to"] = len(commands)
    per = [r.get("server_bytes_per_connection") if r else None for r in (a, b)]
    opened = "/".join(f"{r['open']:,}" for r in (a, b) if r)
    rows.append((GW_SECTION, f"idle memory per client, {GW_IDLE:,} idle clients ({opened} open)",
                 (f"{per[0]:,.0f} B" if per[0] is not None else "failed") if ours_cmd
                 else "not built", f"{per[1]:,.0f} B" if per[1] is not None else "failed",
                 ratio(per[0], per[1], higher_better=False)))
    return rows, res


def gateway_targets(res):
    out = []

    def chk(ok):
        return "met" if ok else "**not met**"

    a, _ = res.get("gwreq1", (None, None))
    d = res.get("gwdirect", (None, None))[0]
    if a and d:
        hop = lat(a, "p50") - lat(d, "p50")
        text = (f"default: gw-req p50 {lat(a, 'p50'):.1f} µs, direct rr p50 "
                f"{lat(d, 'p50'):.1f} µs: +{hop:.1f} µs")
        met = []
        for r in res.get("hop", []):
            if r["gw_hop"] is None:
                continue
            relay = (f" (HAProxy's relay: +{r['relay_hop']:.1f} µs)"
                     if r["relay_hop"] is not None else "")
            text += f"; {r['name']}: +{r['gw_hop']:.1f} µs{relay}"
            if r["gw_hop"] <= 25:
                met.append(r["name"])
        verdict = chk(hop <= 25)
        if hop > 25 and met:
            verdict = f"met with {' and with '.join(met)}; **not met** by default"
        out.append(f"| gateway hop latency at 1 in flight: p50 ≤ direct p50 + 25 µs | {text} | "
                   f"{verdict} |")
    a, b = res.get("gwreq16", (None, None))
    if a:
        out.append(f"| gw-req, 16 clients × 32 in flight ≥ 200,000/s and ≥ 10× Node | "
                   f"{rate(a):,.0f}/s, {ratio(rate(a), rate(b))} | "
                   f"{chk(rate(a) >= 2e5 and (not b or rate(a) >= 10 * rate(b)))} |")
    a, _ = res.get("gwsub", (None, None))
    if a:
        out.append(f"| gw-sub fan-out, 1,000 subscribers ≥ 1,000,000 ind/s | {rate(a):,.0f}/s | "
                   f"{chk(rate(a) >= 1e6)} |")
    a, _ = res.get("gwidle", (None, None))
    if a and a.get("server_bytes_per_connection") is not None:
        per = a["server_bytes_per_connection"]
        out.append(f"| idle memory per client ≤ 1 KiB (issue 15, at 50,000 clients; issue 14: "
                   f"≤ 2 KiB at 20,000); measured at {GW_IDLE:,} | "
                   f"{per:,.0f} B ({a['open']:,} open{'' if a['open'] == GW_IDLE else ': the rest hit the descriptor limit (RLIMIT_NOFILE)'}) | "
                   f"{chk(per <= 1024 and a['open'] >= GW_IDLE * 0.995)} |")
    if not out:
        out.append(f"| gateway targets | pending: {gateway_name()} was not built | |")
    return out


# ---- the gateway's hop at 1 in flight, beside a TCP relay, under three kinds of scheduling ----

HALTPOLL = "/sys/module/haltpoll/parameters/guest_halt_poll_ns"
HALTPOLL_NS = 200000  # the Linux haltpoll governor's own default


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def haproxy_bin():
    return shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy",
                                                                         os.X_OK) else None)


def start_haproxy(name, pin, be_port):
    """HAProxy in mode tcp on a free loopback port in front of 127.0.0.1:be_port (a relay that
    parses nothing: the floor any proxy pays for two more loopback crossings). Returns (proc,
    uri) or None."""
    hp = haproxy_bin()
    if hp is None:
        return None
    port = free_port()
    cfg = os.path.join(tmpdir, name + ".cfg")
    with open(cfg, "w") as f:
        f.write("global\n  maxconn 1000\ndefaults\n  mode tcp\n  timeout connect 5s\n"
                "  timeout client 120s\n  timeout server 120s\n"
                f"listen relay\n  bind 127.0.0.1:{port}\n  server be 127.0.0.1:{be_port}\n")
    log = open(os.path.join(tmpdir, name + ".log"), "w")
    proc = subprocess.Popen(pin + [hp, "-db", "-f", cfg], stdout=log, stderr=subprocess.STDOUT,
                            cwd=ROOT)
    children.append(proc)
    deadline = time.time() + 10
    while time.time() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"tcp://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    stop(proc)
    print(f"bench: {name}: HAProxy did not start", file=sys.stderr)
    return None


def client_result(client, timeout, what):
    """The JSON result line of a running rsocket-bench (killed after `timeout` s), or None; a
    missing result or errors are reported on stderr as `what`."""
    try:
        out, err = client.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        client.kill()
        out, err = client.communicate()
    line = next((l for l in out.splitlines() if l.startswith("{")), None)
    r = json.loads(line) if line else None
    if r is None:
        print(f"bench: {what}: no result (exit {client.returncode}): {err.strip()[:300]}",
              file=sys.stderr)
    elif r.get("errors") or r.get("first_error"):
        print(f"bench: {what}: {r.get('errors', 0)} errors: {r.get('first_error', '')}",
              file=sys.stderr)
    return r


def cpu_split(pid):
    """(utime, stime) of a process in clock ticks, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    except (OSError, IndexError, ValueError):
        return None


def bench_cpu(label, pin, uri, pid, *extra):
    """rsocket-bench (pinned like the servers) with `pid`'s user and system CPU over the measured
    window (the end of the warm-up + 0.2 s to its end − 0.2 s), in µs per request at the rate
    measured. `label` names the command in the doc (None: already listed). Returns (result,
    {"user_us", "sys_us"} or None)."""
    warmup = max(WARMUP, 0.5)
    cmd = pin + [os.path.join(BIN, "rsocket-bench"), "--json", "--no-progress", "-D",
                 str(SECONDS), "--warmup", str(warmup), *extra, uri]
    if label:
        commands.append((label, " ".join(shlex.quote(c) for c in cmd)))
    client = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=ROOT)
    children.append(client)
    time.sleep(warmup + 0.2)
    t1, c1 = time.time(), cpu_split(pid)
    time.sleep(max(SECONDS - 0.4, 0.1))
    t2, c2 = time.time(), cpu_split(pid)
    r = client_result(client, SECONDS + warmup + 60, label or " ".join(cmd))
    cpu = None
    if r and rate(r) and c1 and c2:
        hz = os.sysconf("SC_CLK_TCK")
        per = 1e6 / (rate(r) * (t2 - t1)) / hz  # µs of CPU per tick, per request
        cpu = {"user_us": (c2[0] - c1[0]) * per, "sys_us": (c2[1] - c1[1]) * per}
    return r, cpu


HOP_ROUNDS = 2  # rounds of (direct, gateway, relay) per scheduling; one more direct at the end


def hop_config(name, pin, gw_extra=()):
    """One scheduling: a fresh backend, rsocket-gateway and HAProxy (each under `pin`), then
    HOP_ROUNDS rounds of direct, through the gateway (gw-req) and through HAProxy, and direct
    once more, all at 1 in flight, each with the CPU of the process in the middle. A figure is
    the mean over its runs (p50s from run to run move by several µs here)."""
    backend, be_uri = start(f"hop-backend {name}", pin + [os.path.join(BIN, "rsocket"),
                                                          "--server", "tcp://127.0.0.1:0"])
    gw = start(f"hop-gateway {name}", pin + [GATEWAY, "--listen", "ws://127.0.0.1:0", "--route",
                                             f"*={be_uri}", *gw_extra])
    relay = start_haproxy(f"hop-haproxy-{len(children)}", pin, int(be_uri.rsplit(":", 1)[1]))
    runs = {"direct": [], "gw": [], "relay": []}
    plan = [("direct", be_uri, backend.pid, ["-m", "1"]),
            ("gw", gw[1], gw[0].pid, ["--model", "gw-req", "-m", "1"])]
    if relay:
        plan.append(("relay", relay[1], relay[0].pid, ["-m", "1"]))
    what = {"direct": "direct", "gw": "through rsocket-gateway",
            "relay": "through HAProxy (mode tcp)"}
    for i in range(HOP_ROUNDS):
        for key, uri, pid, extra in plan + ([plan[0]] if i == HOP_ROUNDS - 1 else []):
            label = f"hop {name}: {what[key]}"
            if any(c[0] == label for c in commands):  # the doc lists each command once
                label = None
            runs[key].append(bench_cpu(label, pin, uri, pid, *extra))
    for p in (relay[0] if relay else None, gw[0], backend):
        if p:
            stop(p)

    def mean(xs):
        xs = [x for x in xs if x is not None]
        return sum(xs) / len(xs) if xs else None

    out = {"name": name, "rounds": HOP_ROUNDS}
    for key, rs in runs.items():
        out[key + "50"] = mean([lat(r, "p50") for r, _ in rs])
        cpus = [c for _, c in rs if c]
        out[key + "_cpu"] = ({k: mean([c[k] for c in cpus]) for k in ("user_us", "sys_us")}
                            if cpus else None)
    out["direct50s"] = [lat(r, "p50") for r, _ in runs["direct"]]
    for k in ("gw", "relay"):
        v, d = out[k + "50"], out["direct50"]
        out[k + "_hop"] = v - d if v is not None and d is not None else None
    return out


def haltpoll_state():
    """The guest's halt-polling window (ns) when this is a KVM guest whose cpuidle driver is
    haltpoll, else None."""
    try:
        with open("/sys/devices/system/cpu/cpuidle/current_driver") as f:
            if f.read().strip() != "haltpoll":
                return None
        with open(HALTPOLL) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def set_haltpoll(ns):
    global haltpoll_saved
    try:
        with open(HALTPOLL, "w") as f:
            f.write(str(ns))
        return True
    except OSError:
        return False


def hop_study():
    global haltpoll_saved
    """The gateway's hop at 1 in flight beside HAProxy's, under: the scheduler free (the default
    rows above), the gateway busy-polling, everything on one core (no wake-up crosses CPUs), and,
    in a KVM guest whose idle vCPUs halt at once (guest_halt_poll_ns=0), with the guest kernel's
    default halt polling (200 µs) for the run, then set back. BENCH_HALTPOLL=0 skips that row."""
    if not os.access(GATEWAY, os.X_OK):
        return []
    rows = [hop_config("scheduler free", []),
            hop_config("gateway --busy-poll", [], ["--busy-poll"]),
            hop_config("one core (taskset -c 0)", ["taskset", "-c", "0"])]
    hp = haltpoll_state()
    if hp == 0 and os.environ.get("BENCH_HALTPOLL", "1") != "0":
        if set_haltpoll(HALTPOLL_NS):
            haltpoll_saved = hp  # put back by cleanup() too, should the run be stopped
            try:
                rows.append(hop_config(f"halt polling {HALTPOLL_NS // 1000} µs", []))
            finally:
                set_haltpoll(hp)
                haltpoll_saved = None
        else:
            print(f"bench: {HALTPOLL} is not writable: the halt-polling row is skipped",
                  file=sys.stderr)
    for r in rows:
        r["haltpoll_ns"] = hp
    return rows


def hop_lines(study):
    """The hop table, markdown."""
    out = ["| scheduling | direct p50 | rsocket-gateway p50 | its hop | HAProxy (mode tcp) p50 | "
           "its hop | CPU per request, user + system: rsocket-gateway | HAProxy |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in study:
        cpu = [f"{c['user_us']:.1f} + {c['sys_us']:.1f} µs" if c else "-"
               for c in (r["gw_cpu"], r["relay_cpu"])]
        hop = [f"+{r[k]:.1f} µs" if r[k] is not None else "-" for k in ("gw_hop", "relay_hop")]
        out.append(f"| {r['name']} | {fmt_us(r['direct50'])} | {fmt_us(r['gw50'])} | {hop[0]} | "
                   f"{fmt_us(r['relay50'])} | {hop[1]} | {cpu[0]} | {cpu[1]} |")
    return out


# ---- the gateway's RSocket passthrough: rsocket-bench through /rsocket vs straight in ----

PT_SECTION = "RSocket passthrough (rsocket-bench through rsocket-gateway's /rsocket vs direct)"
PT_ROUTE = "bench.echo"


def passthrough():
    """Runs the passthrough rows; returns (rows, results). One `rsocket --server` backend, one
    rsocket-gateway in front of it (`--route '*=BACKEND'`); the same rsocket-bench workloads
    (with --route, so the gateway can route them: routing metadata on every request) over
    ws://GATEWAY/rsocket and straight to the backend over tcp://."""
    rows, res = [], {"t0": time.time(), "load": os.getloadavg(), "cmds_from": len(commands)}
    if not os.access(GATEWAY, os.X_OK):
        print(f"bench: {gateway_name()} is missing: the passthrough rows are skipped",
              file=sys.stderr)
        res.update(elapsed=0, cmds_to=len(commands), missing=True)
        return rows, res
    backend, be_uri = start("pt-backend", [os.path.join(BIN, "rsocket"), "--server",
                                           "tcp://127.0.0.1:0"])
    gw, gw_uri = start("pt-gateway", [GATEWAY, "--listen", "ws://127.0.0.1:0", "--route",
                                      f"*={be_uri}"])
    gw_uri = gw_uri.rstrip("/") + "/rsocket"
    time.sleep(0.5)  # the gateway's backend connections are up
    for key, desc, extra in [
        ("pt_rr1", "request-response, 1 conn, 1 in flight", ["-m", "1"]),
        ("pt_rr", "request-response, 1 conn, 128 in flight", ["-m", "128"]),
        ("pt_rr16", "request-response, 16 conns × 32 in flight, 2 threads",
         ["-c", "16", "-m", "32", "-t", "2"]),
        ("pt_stream", "request-stream, 1 conn, 16-byte items (items/s)", ["--model", "stream"]),
        ("pt_channel", "request-channel, 1 conn, 128 elements in flight",
         ["--model", "channel", "-m", "128"]),
    ]:
        a = bench(f"{key} through rsocket-gateway", gw_uri, "--route", PT_ROUTE, *extra)
        b = bench(f"{key} direct", be_uri, "--route", PT_ROUTE, *extra)
        res[key] = (a, b)
        rows.append((PT_SECTION, desc, fmt_rate(rate(a)), fmt_rate(rate(b)),
                     pt_ratio(rate(a), rate(b))))
        if key in ("pt_rr1", "pt_rr"):
            for q in ("p50", "p99"):
                rows.append((PT_SECTION, f"  latency {q}", fmt_us(lat(a, q)), fmt_us(lat(b, q)),
                             pt_ratio(lat(b, q), lat(a, q))))
    stop(gw)
    stop(backend)
    res["elapsed"] = time.time() - res["t0"]
    res["cmds_to"] = len(commands)
    return rows, res


def pt_ratio(a, b):
    """through ÷ direct for rates, direct ÷ through for latencies: the share of the direct figure
    that is left through the gateway (1 would be a free hop)."""
    if a is None or b is None or a == 0 or b == 0:
        return "-"
    return f"{a / b:.2f}×"


def passthrough_doc(rows, res, m):
    """The doc's "## RSocket passthrough" section (BENCH_ONLY=passthrough rewrites it alone)."""
    doc = ["## RSocket passthrough", ""]
    when = datetime.datetime.fromtimestamp(res["t0"], datetime.timezone.utc)
    load = ", ".join(f"{x:.1f}" for x in res["load"])
    doc.append(f"- date: {when.strftime('%Y-%m-%d %H:%M UTC')}, commit `{m['commit']}`; "
               f"{m['cpu']}, {m['cores']} cores; load average {load} when it started (other work "
               f"on the machine); the section took {res['elapsed']:.0f} s")
    doc.append(f"- each run: {WARMUP:g} s warm-up, then {SECONDS:g} s measured")
    doc.append("")
    if res.get("missing"):
        doc.append(f"Pending: {gateway_name()} was not built.")
        doc.append("")
        return doc
    doc.append("Issue 15's RSocket passthrough: `rsocket-bench` speaks RSocket over WebSocket to "
               "`ws://GATEWAY/rsocket`, where rsocket-gateway (its defaults: 1 worker thread, 2 "
               "connections to the backend) ends the connection and carries each stream to "
               f"`rsocket --server tcp://127.0.0.1:0`; the direct column is the same workload "
               f"straight to that backend over TCP. Both send `--route {PT_ROUTE}` (routing "
               "metadata on every request: the gateway routes by it). Through the gateway each "
               "request also gains the gateway's client entry in its metadata, which the backend "
               "echoes back. Client, gateway and backend share the machine's cores. Ratio: "
               "through ÷ direct for rates, direct ÷ through for latencies (the share of the "
               "direct figure left through the gateway; 1.00× would be a free hop).")
    doc.append("")
    doc.extend(table(rows, ("through rsocket-gateway", "direct")))
    doc.append("")
    doc.append("Notes:")
    doc.append("")
    doc.append("- Through the gateway three busy processes (client, gateway, backend) share the "
               "machine's cores, direct two: on a 2-core machine part of the ratio is the "
               "machine, most visibly in the p99 with 128 in flight.")
    doc.append("- Per request the gateway finds the route, writes the backend's composite metadata "
               "(the client's entries, its own client entry), and runs two RSocket engines' codecs "
               "and a WebSocket framing; the backend's answer comes back the same way. Compare "
               "with the JSON protocol's rows in the Gateway section (gw-req), which carry the "
               "same backend hop.")
    doc.append("")
    doc.append("Only this section: `BENCH_ONLY=passthrough scripts/bench` (after `make`). "
               "Commands (the gateway: `build/bin/rsocket-gateway --listen ws://127.0.0.1:0 "
               "--route '*=tcp://127.0.0.1:PORT'`, the backend `build/bin/rsocket --server "
               "tcp://127.0.0.1:0`):")
    doc.append("")
    doc.extend(commands_block(commands[res["cmds_from"]:res["cmds_to"]]))
    doc.append("")
    return doc


# ---- the collaborative board: collab-service behind rsocket-gateway, users editing ----

def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks (None when it is gone)."""
    t = cpu_split(pid)
    return sum(t) if t else None


def run_board(uri, groups):
    """rsocket-bench --model board against `uri` for BOARD_SECONDS after the warm-up. `groups`:
    {name: [pid, ...]}; each group's CPU (summed over its processes, /proc/PID/stat, within the
    measured window: from the end of the warm-up + 0.2 s to its end - 0.2 s) and VmRSS (summed,
    before the users connect and at the window's end). Returns {result, cpu, rss0, rss1, cmd}."""
    warmup = max(WARMUP, 1.0)
    cmd = [os.path.join(BIN, "rsocket-bench"), "--json", "--no-progress", "--model", "board",
           "-c", str(BOARD_USERS), "--boards", str(BOARD_BOARDS), "--rate", str(BOARD_RATE),
           "-D", str(BOARD_SECONDS), "--warmup", str(warmup), uri]

    def rss(pids):
        v = [rss_kib(p) for p in pids]
        return None if None in v else sum(v)

    def ticks(pids):
        v = [cpu_ticks(p) for p in pids]
        return None if None in v else sum(v)

    rss0 = {k: rss(p) for k, p in groups.items()}
    client = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              preexec_fn=raise_nofile, cwd=ROOT)
    children.append(client)
    groups = dict(groups, client=[client.pid])
    time.sleep(warmup + 0.2)
    t1, c1 = time.time(), {k: ticks(p) for k, p in groups.items()}
    time.sleep(max(BOARD_SECONDS - 0.4, 0.1))
    t2, c2 = time.time(), {k: ticks(p) for k, p in groups.items()}
    rss1 = {k: rss(p) for k, p in groups.items() if k != "client"}
    r = client_result(client, BOARD_SECONDS + warmup + 60, f"board ({uri})")
    hz = os.sysconf("SC_CLK_TCK")
    cpu = {k: (c2[k] - c1[k]) / hz / (t2 - t1) * 100
           if c1[k] is not None and c2[k] is not None else None for k in groups}
    return {"result": r, "cpu": cpu, "rss0": rss0, "rss1": rss1, "cmd": cmd}


def board():
    """BOARD_USERS simulated users on BOARD_BOARDS boards editing at BOARD_RATE ops/s each
    (`rsocket-bench --model board`): through a fresh rsocket-gateway in front of a fresh
    collab-service (single node), then through HAProxy in front of 2 gateways and 2 services
    sharing the boards in Redis (scripts/cluster), when collab-service has --redis. Returns the
    section's results."""
    res = {"t0": time.time(), "load": os.getloadavg(), "cmds_from": len(commands)}
    svc, svc_uri = start("collab-service", [os.path.join(BIN, "collab-service"), "--listen",
                                            "tcp://127.0.0.1:0"])
    gw_cmd = [GATEWAY, "--listen", "ws://127.0.0.1:0", "--route", f"board.*={svc_uri}",
              "--route", f"chat.*={svc_uri}", "--log-format", "none"]
    gw, gw_uri = start("board-gateway", gw_cmd)
    res["gateway_cmd"] = " ".join(shlex.quote(c) for c in gw_cmd)
    single = run_board(gw_uri, {"gateway": [gw.pid], "service": [svc.pid]})
    commands.append(("board: 200 users on 20 boards, 5 edits/s each (single node)",
                     " ".join(shlex.quote(c) for c in single["cmd"])))
    stop(gw)
    stop(svc)
    res.update(single)
    res["cluster"] = board_cluster()
    res["load_end"] = os.getloadavg()
    res["elapsed"] = time.time() - res["t0"]
    return res


def board_cluster():
    """The board workload through scripts/cluster (HAProxy, 2 gateways, 2 services, Redis), or
    {"skipped": why}."""
    svc = os.path.join(BIN, "collab-service")
    try:
        helptext = subprocess.run([svc, "--help"], capture_output=True, text=True).stdout
    except OSError as e:
        return {"skipped": f"collab-service: {e}"}
    if "--redis" not in helptext:
        why = "collab-service has no --redis (the Redis engine, issue 17, is not in this build)"
        print(f"bench: board on the cluster: SKIPPED: {why}", file=sys.stderr)
        return {"skipped": why}
    for prog in ("redis-server", "haproxy"):
        if not (shutil.which(prog) or os.access(f"/usr/sbin/{prog}", os.X_OK)):
            why = f"{prog} is not installed (scripts/deps bench)"
            print(f"bench: board on the cluster: SKIPPED: {why}", file=sys.stderr)
            return {"skipped": why}
    state = os.path.join(tmpdir, "cluster.state")
    log = open(os.path.join(tmpdir, "cluster.log"), "w")
    ccmd = [os.path.join(ROOT, "scripts", "cluster"), "--port", "0", "--state", state,
            "--run-dir", os.path.join(tmpdir, "cluster"), "--gateway-arg", "--log-format",
            "--gateway-arg", "none"]
    proc = subprocess.Popen(ccmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                            preexec_fn=raise_nofile,
                            env=dict(os.environ, CLUSTER_BIN=BIN, CLUSTER_SECONDS="300"))
    children.append(proc)
    deadline = time.time() + 60
    while not os.path.exists(state) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    if not os.path.exists(state):
        stop(proc)
        with open(os.path.join(tmpdir, "cluster.log")) as f:
            why = "scripts/cluster did not start: " + f.read()[-300:]
        print(f"bench: board on the cluster: {why}", file=sys.stderr)
        return {"skipped": why}
    pids, ports = {}, {}
    with open(state) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3:
                pids[parts[0]], ports[parts[0]] = int(parts[1]), int(parts[2])
    groups = {"gateway": [p for n, p in pids.items() if n.startswith("gw")],
              "service": [p for n, p in pids.items() if n.startswith("svc")],
              "redis": [pids["redis"]], "haproxy": [pids["haproxy"]]}
    r = run_board(f"ws://127.0.0.1:{ports['haproxy']}", groups)
    commands.append(("board: the same on the cluster (HAProxy, 2 gateways, 2 services, Redis)",
                     "scripts/cluster --port 0 &   # then, with its port:\n" + " ".join(
                         shlex.quote(c) for c in r["cmd"][:-1]) + " ws://127.0.0.1:PORT"))
    stop(proc)
    r["counts"] = {k: len(v) for k, v in groups.items()}
    return r


def board_lines(res):
    """The section's table (single node beside the cluster) and its target lines."""
    cl = res.get("cluster") or {"skipped": "not run"}
    skipped = cl.get("skipped")

    def ms(x, key, q):
        r = x.get("result")
        v = r.get(key, {}).get(q) if r else None
        return "failed" if v is None else f"{v / 1000:.2f} ms"

    def cpu(x, k):
        v = x.get("cpu", {}).get(k)
        return "failed" if v is None else f"{v:.0f} % of one core"

    def mem(x, k):
        a, b = x.get("rss0", {}).get(k), x.get("rss1", {}).get(k)
        if a is None or b is None:
            return "failed"
        return f"{b / 1024:.1f} MiB (+{(b - a) / 1024:.1f} MiB during the run)"

    def row(name, f):
        other = "" if skipped else f(cl)
        return f"| {name} | {f(res)} | {other} |"

    r = res.get("result")
    head = "skipped: " + skipped if skipped else \
        "HAProxy → 2 rsocket-gateways → 2 collab-services → Redis"
    rows = ["| Board: rsocket-bench --model board | single node: rsocket-gateway → collab-service "
            f"| {head} |", "|---|---:|---:|"]
    if r:
        rows.append(f"| users, boards, edits per user | {r['connections']} users on "
                    f"{r['boards']} boards, {r['rate_per_user']:g} edits/s each | |")

    def res_field(x, fmt):
        rr = x.get("result")
        return fmt(rr) if rr else "no result"

    rows.append(row("edits confirmed", lambda x: res_field(
        x, lambda rr: f"{rr['ops_per_s']:,.0f}/s ({rr['ops']:,} in {rr['elapsed_s']:g} s)")))
    rows.append(row("ops delivered to subscribers", lambda x: res_field(
        x, lambda rr: f"{rr['rate']:,.0f}/s ({rr['completed']:,})")))
    for q, name in (("p50", "p50"), ("p99", "p99"), ("p99_9", "p99.9"), ("max", "max")):
        rows.append(row(f"op → delivered to each subscriber, {name}",
                        lambda x, q=q: ms(x, "latency_us", q)))
    for q in ("p50", "p99", "max"):
        rows.append(row(f"op → delivered to everyone on its board (its last delivery), {q}",
                        lambda x, q=q: ms(x, "everyone_latency_us", q)))
    for q in ("p50", "p99"):
        rows.append(row(f"edit → its cfm, {q}", lambda x, q=q: ms(x, "edit_latency_us", q)))
    rows.append(row("rsocket-gateway CPU (the cluster: both)", lambda x: cpu(x, "gateway")))
    rows.append(row("rsocket-gateway memory (VmRSS at the end; the cluster: both)",
                    lambda x: mem(x, "gateway")))
    rows.append(row("collab-service CPU (the cluster: both)", lambda x: cpu(x, "service")))
    rows.append(row("collab-service memory (VmRSS at the end; the cluster: both)",
                    lambda x: mem(x, "service")))
    if not skipped:
        rows.append(f"| redis-server CPU | | {cpu(cl, 'redis')} |")
        rows.append(f"| redis-server memory (VmRSS at the end) | | {mem(cl, 'redis')} |")
        rows.append(f"| HAProxy CPU | | {cpu(cl, 'haproxy')} |")
    rows.append(row(f"rsocket-bench CPU (the {BOARD_USERS} users)", lambda x: cpu(x, "client")))
    rows.append(row("errors", lambda x: str(x["result"]["errors"]) if x.get("result")
                    else "no result"))

    def verdict(x):
        rr = x.get("result")
        p99 = [rr.get(k, {}).get("p99") if rr else None
               for k in ("latency_us", "everyone_latency_us")]
        ok = None not in p99 and max(p99) < BOARD_TARGET_MS * 1000 and not rr.get("errors")
        return (f"to each subscriber: p50 {ms(x, 'latency_us', 'p50')}, p99 "
                f"{ms(x, 'latency_us', 'p99')}; to the last subscriber of the board: p50 "
                f"{ms(x, 'everyone_latency_us', 'p50')}, p99 "
                f"{ms(x, 'everyone_latency_us', 'p99')}"
                f"{'' if not rr or not rr.get('errors') else '; with errors'} | "
                f"{'met' if ok else '**not met**'} |")

    target = ["| Target (issue 16) | Measured | |", "|---|---|---|"]
    goal = (f"{BOARD_USERS} users on {BOARD_BOARDS} boards at {BOARD_RATE} ops/s each: "
            f"op → delivered to everyone p99 < {BOARD_TARGET_MS} ms")
    target.append(f"| {goal} (single node) | {verdict(res)}")
    if not skipped:
        target.append(f"| the same on the cluster (issue 17) | {verdict(cl)}")
    return rows, target


def board_doc(res, m):
    """The doc's "## Board" section (the last), with its own machine note and commands."""
    doc = ["## Board", ""]
    when = datetime.datetime.fromtimestamp(res["t0"], datetime.timezone.utc)
    load = ", ".join(f"{x:.1f}" for x in res["load"])
    load_end = ", ".join(f"{x:.1f}" for x in res["load_end"])
    cl = res.get("cluster") or {"skipped": "not run"}
    doc.append(f"- date: {when.strftime('%Y-%m-%d %H:%M UTC')}, commit `{m['commit']}`; "
               f"{m['cpu']}, {m['cores']} cores; load average {load} when it started and "
               f"{load_end} at its end (other work on the machine); the section took "
               f"{res['elapsed']:.0f} s")
    doc.append(f"- single node: a fresh `collab-service --listen tcp://127.0.0.1:0` (its defaults) "
               f"behind a fresh `{gateway_name()}` (its defaults: 1 worker thread, 2 connections "
               "to the backend, credit window 64); client, gateway and service share the "
               "machine's cores")
    if cl.get("skipped"):
        doc.append(f"- cluster: skipped ({cl['skipped']})")
    else:
        doc.append("- cluster: `scripts/cluster` (docs/SCALING.md): HAProxy (TCP, leastconn) in "
                   "front of 2 rsocket-gateways (each routing to both services), 2 "
                   "`collab-service --redis` sharing the boards in one redis-server (no "
                   "persistence); the users connect to HAProxy; every process on the same "
                   "machine as the client")
    doc.append(f"- {max(WARMUP, 1.0):g} s warm-up (the users join, subscribe and add their "
               f"notes), then {BOARD_SECONDS:g} s measured, for each")
    doc.append("")
    doc.append(f"Issue 16's benchmark. `rsocket-bench --model board` plays {BOARD_USERS} users, "
               "one WebSocket each, on boards bench-0 to bench-19 (10 per board): each joins its "
               "board (`board.join`), follows `board.ops` from the join's offset (credit managed "
               "by the gateway), adds a note, then sends `board.edit` updates of it (x, y, text) "
               f"at {BOARD_RATE} per second on a fixed schedule. The text of each update is the "
               "sender's monotonic clock; every subscriber of the board (the author included) "
               "records the time from the send to its delivery, so each edit gives 10 samples: "
               "op → delivered to each subscriber; the latest of an op's 10 deliveries is its "
               "time to everyone on the board (one sample per op). The target is read on both. "
               "CPU is the processes' user + system time from "
               "/proc/PID/stat over the measured window (% of one core; summed over the "
               "cluster's two gateways and two services); memory is VmRSS at its end, with the "
               "growth since before the users connected. On the cluster the same users and "
               "boards go through HAProxy, so a board's users are spread over both gateways and "
               "its ops over both services (through Redis).")
    doc.append("")
    rows, target = board_lines(res)
    doc.extend(rows)
    doc.append("")
    doc.extend(target)
    doc.append("")
    doc.append("Notes:")
    doc.append("")
    doc.append("- The median is a few loopback hops (client → gateway → service → gateway → each "
               "client, all on one machine); the tail (p99 and above) is mostly the scheduler: "
               "client, gateway and service share the 2 cores with whatever else runs, so it moves "
               "from run to run with the load average above (runs minutes apart gave p99 from "
               "about 1 to 6 ms).")
    doc.append("- The time to everyone stays close to the time to each: the service wakes a "
               "board's subscriptions together when an op is made.")
    doc.append("- The cluster adds hops (HAProxy, Redis) and processes on the same cores: on one "
               "machine it measures the cost of sharing, not a gain; the gain is in adding "
               "machines (docs/SCALING.md).")
    doc.append("")
    doc.append(f"Commands (the gateway: `{doc_cmd(res['gateway_cmd'])}`, its backend "
               "`build/bin/collab-service --listen tcp://127.0.0.1:0`):")
    doc.append("")
    doc.extend(commands_block(commands[res["cmds_from"]:]))
    doc.append("")
    return doc


def replace_section(title, lines, before=None):
    """Rewrites the doc's "## title" section (up to the next "## " heading), or adds it before
    the "## before" section (at the end without one)."""
    path = os.path.join(ROOT, "docs", "BENCHMARKS.md")
    with open(path) as f:
        doc = f.read()
    start_at = doc.find(f"\n## {title}\n")
    at = doc.find(f"\n## {before}\n") if before else -1
    if start_at < 0 and at >= 0:
        head, tail = doc[:at + 1], doc[at + 1:]
    elif start_at < 0:
        head, tail = doc.rstrip("\n") + "\n\n", ""
    else:
        nxt = doc.find("\n## ", start_at + 1)
        head = doc[:start_at + 1]
        tail = "" if nxt < 0 else doc[nxt + 1:]
    with open(path, "w") as f:
        f.write(head + "\n".join(lines) + ("\n" + tail if tail else ""))
    print(f"wrote the {title} section of {os.path.relpath(path, ROOT)}")


def main():
    if not os.path.exists(os.path.join(BIN, "rsocket-bench")):
        sys.exit("bench: build/bin/rsocket-bench is missing (run make)")
    t_start = time.time()
    raise_nofile()
    if ONLY == "gateway":
        rows, res = gateway()
        print_table(rows, ("rsocket-gateway", "Node gateway"))
        print("\nGateway targets:")
        print("\n".join(gateway_targets(res)))
        print("\nGateway hop at 1 in flight:")
        print("\n".join(hop_lines(res.get("hop") or [])))
        print(f"\nthe gateway section took {res['elapsed']:.0f} s")
        if not os.environ.get("BENCH_NO_DOC"):
            replace_section("Gateway", gateway_doc(rows, res, machine()))
        return
    if ONLY == "passthrough":
        rows, res = passthrough()
        print_table(rows, ("through rsocket-gateway", "direct"))
        print(f"\nthe passthrough section took {res['elapsed']:.0f} s")
        if not os.environ.get("BENCH_NO_DOC"):
            replace_section("RSocket passthrough", passthrough_doc(rows, res, machine()),
                            before="Board")
        return
    if ONLY == "gwidle":
        backend, be_uri = start("gw-backend", [os.path.join(BIN, "rsocket"), "--server",
                                               "tcp://127.0.0.1:0"])
        ours_cmd, _ = gateway_cmds(be_uri)
        if ours_cmd is None:
            sys.exit(f"bench: {gateway_name()} is missing")
        r = gw_idle("gw idle rsocket-gateway", ours_cmd)
        stop(backend)
        print(json.dumps(r))
        if r is None:
            sys.exit(1)
        return
    if ONLY == "board":
        res = board()
        rows, target = board_lines(res)
        print("\n".join(["", *rows, "", *target]))
        print(f"\nthe board section took {res['elapsed']:.0f} s")
        if not os.environ.get("BENCH_NO_DOC"):
            replace_section("Board", board_doc(res, machine()))
        return
    if ONLY:
        sys.exit(f"bench: BENCH_ONLY={ONLY}: only 'gateway', 'gwidle', 'passthrough' and 'board' "
                 "are known")
    rows = []  # (section, workload, ours, peer, ratio text)
    results = {}

    # ---- RSocket over TCP: our server vs the rsocket-js server, same client ----
    ours, ours_uri = start("ours-tcp", [os.path.join(BIN, "rsocket"), "--server",
                                        "tcp://127.0.0.1:0"])
    js, js_uri = start("js-tcp", ["node", os.path.join(PEERS, "js_echo_server.mjs"),
                                  "--transport", "tcp", "--port", "0"])
    workloads = [
        ("rr", "request-response, 1 conn, 128 in flight", ["-m", "128"]),
        ("rr1", "request-response, 1 conn, 1 in flight", ["-m", "1"]),
        ("rr16", "request-response, 16 conns × 32 in flight, 2 threads",
         ["-c", "16", "-m", "32", "-t", "2"]),
        ("stream", "request-stream, 1 conn, 16-byte items", ["--model", "stream"]),
        ("channel", "request-channel, 1 conn, 128 elements in flight",
         ["--model", "channel", "-m", "128"]),
        ("fnf", "fire-and-forget, 1 conn (server prints each)", ["--model", "fnf"]),
        ("rr1k", "request-response, 1 KiB payloads, 128 in flight", ["-m", "128", "-s", "1024"]),
        ("rr16k", "request-response, 16 KiB payloads, 64 in flight", ["-m", "64", "-s", "16384"]),
    ]
    for key, desc, extra in workloads:
        a = bench(f"{key} ours", ours_uri, *extra)
        b = bench(f"{key} rsocket-js", js_uri, *extra)
        results[key] = (a, b)
        rows.append(("RSocket/TCP, rsocket-bench client", desc, fmt_rate(rate(a)),
                     fmt_rate(rate(b)), ratio(rate(a), rate(b))))
        if key == "rr1":
            for q in ("p50", "p99"):
                rows.append(("RSocket/TCP, rsocket-bench client", f"  latency {q}, 1 in flight",
                             fmt_us(lat(a, q)), fmt_us(lat(b, q)),
                             ratio(lat(a, q), lat(b, q), higher_better=False)))
    # Latency with busy polling on both sides (a separate server: it keeps one core busy)
    busy, busy_uri = start("ours-busy", [os.path.join(BIN, "rsocket"), "--server", "--busy-poll",
                                         "tcp://127.0.0.1:0"])
    a = bench("rr1 ours, --busy-poll both sides", busy_uri, "-m", "1", "--busy-poll")
    results["rr1busy"] = (a, None)
    stop(busy)
    for q in ("p50", "p99"):
        rows.append(("RSocket/TCP, rsocket-bench client",
                     f"  latency {q}, 1 in flight, --busy-poll on both sides", fmt_us(lat(a, q)),
                     "n/a", "-"))
    # rsocket-js as the client, against both servers
    a = js_client("rsocket-js client → ours", ours_uri, 128)
    b = js_client("rsocket-js client → rsocket-js", js_uri, 128)
    results["jsclient"] = (a, b)
    rows.append(("RSocket/TCP, rsocket-js client", "request-response, 128 in flight",
                 fmt_rate(rate(a)), fmt_rate(rate(b)), ratio(rate(a), rate(b))))
    stop(ours)
    stop(js)

    # ---- RSocket over WebSocket ----
    ours, ours_uri = start("ours-ws", [os.path.join(BIN, "rsocket"), "--server",
                                       "ws://127.0.0.1:0"])
    js, js_uri = start("js-ws", ["node", os.path.join(PEERS, "js_echo_server.mjs"),
                                 "--transport", "ws", "--port", "0"])
    a = bench("ws rr ours", ours_uri, "-m", "128")
    b = bench("ws rr rsocket-js", js_uri, "-m", "128")
    results["wsrr"] = (a, b)
    rows.append(("RSocket/WebSocket, rsocket-bench client", "request-response, 128 in flight",
                 fmt_rate(rate(a)), fmt_rate(rate(b)), ratio(rate(a), rate(b))))
    a = js_client("rsocket-js ws client → ours", ours_uri, 128)
    b = js_client("rsocket-js ws client → rsocket-js", js_uri, 128)
    rows.append(("RSocket/WebSocket, rsocket-js client", "request-response, 128 in flight",
                 fmt_rate(rate(a)), fmt_rate(rate(b)), ratio(rate(a), rate(b))))
    stop(ours)
    stop(js)

    # ---- plain WebSocket echo: ws-echo-server vs node ws ----
    ours, ours_uri = start("ws-echo-server", [os.path.join(BIN, "ws-echo-server"), "--port", "0"])
    node, node_uri = start("node-ws", ["node", os.path.join(PEERS, "ws_echo_server.mjs"),
                                       "--port", "0"])
    for key, desc, extra in [
        ("wsecho", "echo, 1 conn, 128 in flight, 16 B", ["-m", "128"]),
        ("wsecho1", "echo, 1 conn, 1 in flight, 16 B", ["-m", "1"]),
        ("wsecho16", "echo, 16 conns × 32 in flight, 2 threads", ["-c", "16", "-m", "32", "-t", "2"]),
        ("wsecho4k", "echo, 1 conn, 64 in flight, 4 KiB", ["-m", "64", "-s", "4096"]),
    ]:
        a = bench(f"{key} ws-echo-server", ours_uri, "--model", "ws", *extra)
        b = bench(f"{key} node ws", node_uri, "--model", "ws", *extra)
        results[key] = (a, b)
        rows.append(("WebSocket echo (ws-echo-server vs node ws)", desc, fmt_rate(rate(a)),
                     fmt_rate(rate(b)), ratio(rate(a), rate(b))))
        if key == "wsecho1":
            rows.append(("WebSocket echo (ws-echo-server vs node ws)", "  latency p50, 1 in flight",
                         fmt_us(lat(a, "p50")), fmt_us(lat(b, "p50")),
                         ratio(lat(a, "p50"), lat(b, "p50"), higher_better=False)))
    stop(ours)
    stop(node)

    # ---- loopback floor: what the kernel and this machine cost per round trip ----
    floor = run_json("floor", [os.path.join(BIN, "rsocket-bench"), "--floor", "-D", "2", "--json"])
    results["floor"] = (floor, None)
    for q in ("p50", "p99"):
        rows.append(("Loopback floor (no protocol, no event loop)",
                     f"blocking TCP ping-pong of 25 bytes, {q}", fmt_us(lat(floor, q)), "n/a", "-"))

    # ---- codec ----
    codec = run_json("codec", [os.path.join(BIN, "rsocket-bench"), "--codec", "-D", "0.5",
                               "--json"])

    # ---- idle memory ----
    idle = {}
    for scheme in ("tcp", "ws"):
        srv, uri = start(f"idle-{scheme}", [os.path.join(BIN, "rsocket"), "--server",
                                            f"{scheme}://127.0.0.1:0"])
        idle[scheme] = run_json(f"idle {scheme}", [
            os.path.join(BIN, "rsocket-bench"), "--idle", str(IDLE), "--sources", "8", "--pid",
            str(srv.pid), "-D", "1", "--json", uri], timeout=180)
        stop(srv)

    gw_rows, gw_res = gateway()
    pt_rows, pt_res = passthrough()
    board_res = board()

    elapsed = time.time() - t_start
    report(rows, results, codec, idle, gw_rows, gw_res, (pt_rows, pt_res), board_res, elapsed)


def target_lines(results, codec, idle):
    out = []

    def chk(ok):
        return "met" if ok else "**not met**"

    rr = results.get("rr", (None, None))
    if rr[0]:
        out.append(f"| request-response, 1 conn, 128 in flight ≥ 500,000/s and ≥ 10× rsocket-js | "
                   f"{rate(rr[0]):,.0f}/s, {ratio(rate(rr[0]), rate(rr[1]))} | "
                   f"{chk(rate(rr[0]) >= 5e5 and (not rr[1] or rate(rr[0]) >= 10 * rate(rr[1])))} |")
    st = results.get("stream", (None, None))
    if st[0]:
        out.append(f"| request-stream ≥ 5,000,000 items/s on one connection | "
                   f"{rate(st[0]):,.0f}/s | {chk(rate(st[0]) >= 5e6)} |")
    r1 = results.get("rr1", (None, None))
    rb = results.get("rr1busy", (None, None))
    if r1[0]:
        p50, p99 = lat(r1[0], "p50"), lat(r1[0], "p99")
        text = f"default: p50 {p50:.1f} µs, p99 {p99:.1f} µs"
        ok = p50 <= 25 and p99 <= 60
        verdict = chk(ok)
        if rb[0]:
            b50, b99 = lat(rb[0], "p50"), lat(rb[0], "p99")
            text += f"; --busy-poll: p50 {b50:.1f} µs, p99 {b99:.1f} µs"
            if not ok and b50 <= 25 and b99 <= 60:
                verdict = "met with --busy-poll only"
        fl = results.get("floor", (None, None))[0]
        if fl:
            text += (f"; loopback floor (blocking ping-pong, no protocol): p50 "
                     f"{lat(fl, 'p50'):.1f} µs, p99 {lat(fl, 'p99'):.1f} µs")
        out.append(f"| request-response latency, 1 in flight: p50 ≤ 25 µs, p99 ≤ 60 µs | "
                   f"{text} | {verdict} |")
    if codec:
        worst = max(max(r["encode_vs_memcpy"], r["decode_vs_memcpy"]) for r in codec["codec"])
        out.append(f"| codec within 3× of memcpy | worst {worst:.2f}× | {chk(worst <= 3)} |")
    we = results.get("wsecho", (None, None))
    if we[0] and we[1]:
        out.append(f"| WebSocket echo ≥ 5× node's ws | {ratio(rate(we[0]), rate(we[1]))} | "
                   f"{chk(rate(we[0]) >= 5 * rate(we[1]))} |")
    per = [idle[s]["server_bytes_per_connection"] for s in ("tcp", "ws")
           if idle.get(s) and "server_bytes_per_connection" in idle[s]]
    if per:
        out.append(f"| ≤ 4 KiB user-space memory per idle connection | "
                   f"TCP {per[0]:,.0f} B" + (f", WebSocket {per[1]:,.0f} B" if len(per) > 1 else "")
                   + f" | {chk(max(per) <= 4096)} |")
    return out


def table(rows, head=("rsocket-c", "peer")):
    lines = [f"| Workload | {head[0]} | {head[1]} | ratio |", "|---|---:|---:|---:|"]
    section = None
    for sec, desc, a, b, r in rows:
        if sec != section:
            lines.append(f"| **{sec}** | | | |")
            section = sec
        lines.append(f"| {desc} | {a} | {b} | {r} |")
    return lines


def print_table(rows, head=("rsocket-c", "peer")):
    print()
    print("\n".join(table(rows, head)))


def doc_cmd(cmd):
    """A command line as the doc shows it: paths from the tree, ports and pids as words."""
    cmd = cmd.replace(ROOT + "/", "")
    cmd = re.sub(r"(tcp|ws)://127\.0\.0\.1:\d+/?(?=\s|$)", r"\1://127.0.0.1:PORT", cmd)
    cmd = re.sub(r"(tcp|ws)://127\.0\.0\.1:\d+/", r"\1://127.0.0.1:PORT/", cmd)  # a path stays
    return re.sub(r"--pid \d+", "--pid PID", cmd)


def commands_block(cmds):
    out = ["```"]
    for label, cmd in cmds:
        out.append(f"# {label}")
        out.append(doc_cmd(cmd))
    out.append("```")
    return out


def gateway_doc(gw_rows, res, m):
    """The doc's "## Gateway" section, with its own machine note and commands (so that
    BENCH_ONLY=gateway can rewrite it alone)."""
    doc = ["## Gateway", ""]
    when = datetime.datetime.fromtimestamp(res["t0"], datetime.timezone.utc)
    load = ", ".join(f"{x:.1f}" for x in res["load"])
    doc.append(f"- date: {when.strftime('%Y-%m-%d %H:%M UTC')}, commit `{m['commit']}`; "
               f"{m['cpu']}, {m['cores']} cores; load average {load} when it started (other work "
               f"on the machine); the section took {res['elapsed']:.0f} s")
    if os.access(GATEWAY, os.X_OK):
        v = subprocess.run([GATEWAY, "--version"], capture_output=True, text=True).stdout.strip()
        doc.append(f"- rsocket-gateway: `{gateway_name()}` ({v or 'no version'}), its defaults: "
                   "1 worker thread, 2 connections to the backend, credit window 64")
    else:
        doc.append(f"- rsocket-gateway: not built ({gateway_name()} is missing); "
                   "its rows are pending")
    doc.append(f"- Node gateway: `tests/interop/peers/node_gateway.mjs`, Node {m['node']}, ws "
               "8.2.3, rsocket-js 1.0.0-alpha.3 (rsocket-core, rsocket-tcp-client); "
               "`--connections 2`, credit window 256")
    doc.append(f"- each run: {WARMUP:g} s warm-up, then {SECONDS:g} s measured")
    doc.append("")
    doc.append("Issue 14's benchmarks. Both gateways sit in front of the same backend, `rsocket "
               "--server tcp://127.0.0.1:0` (it answers a request with its payload and streams a "
               "request's payload back without end), with the route `*`, and the same client "
               "drives both: `rsocket-bench --model gw-req` (req messages in flight per "
               "WebSocket client, each timed to its cfm) and `--model gw-sub` (one sub per client "
               "with gateway-managed credit, counting ind messages). The direct row is the "
               "backend without a gateway (`rsocket-bench -m 1`, RSocket over TCP), for the "
               "gateway's hop. Idle memory: WebSocket clients that upgrade and then send nothing "
               "(`rsocket-bench --idle N --model gw-req`, 10,000 per client process), the growth "
               "of a fresh gateway's VmRSS divided by the clients open. Client, gateways and "
               "backend share the machine's cores. Ratio: rsocket-gateway ÷ Node for rates, "
               "Node ÷ rsocket-gateway for latencies and memory.")
    doc.append("")
    doc.extend(table(gw_rows, ("rsocket-gateway", "Node gateway")))
    doc.append("")
    doc.append("| Target (issues 14 and 15) | Measured | |")
    doc.append("|---|---|---|")
    doc.extend(gateway_targets(res))
    doc.append("")
    doc.append("Notes:")
    doc.append("")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if any(r and r["open"] < GW_IDLE for r in res.get("gwidle", ())) and hard <= GW_IDLE:
        doc.append(f"- Idle clients: a process may hold at most {hard:,} descriptors here (the hard "
                   "limit; raising it needs CAP_SYS_RESOURCE), so a gateway holds a few fewer than "
                   f"{GW_IDLE:,} clients beside its listening socket, event loop and backend "
                   "connections and refuses the rest. The per-client figure divides by the "
                   "clients open.")
    doc.append("- What an idle JSON client costs rsocket-gateway (glibc malloc chunks, from the "
               "structures' sizes; docs/ARCHITECTURE.md, Memory per connection, has the details): "
               "one 528-byte block for the connection (our `rs_io_conn`, 128 bytes; libuv's "
               "`uv_tcp_t`, 248; the WebSocket transport, 72; the session, 72; malloc's header), "
               "the WebSocket core's state (120 bytes, a 128-byte chunk) and the gateway's "
               "`gw_client` (112, a 128-byte chunk): 784 bytes of heap. Then its slots in two "
               "power-of-two arrays, the gateway's session table and libuv's table of watched "
               "descriptors (8 bytes each; at 20,000 clients both have 32,768 slots: 26 bytes per "
               "client, 31 at 50,000), and a few free heap chunks. Nothing is kept from the "
               "handshake, and nothing for the first client alone (libcrypto, which computes the "
               "accept key, is initialised before the gateway listens). 50,000 clients in one process need more descriptors than the hard "
               "limit here allows; the cost per client does not grow with their number.")
    study = res.get("hop") or []
    if study:
        hp = study[0].get("haltpoll_ns")
        vm = (f"This machine is a KVM guest whose cpuidle driver is haltpoll with "
              f"guest_halt_poll_ns={hp}" if hp is not None else "")
        note = ("- The hop at 1 in flight (the table below): through the gateway a request "
                "crosses loopback four times instead of two and wakes two more processes. Per "
                "request the gateway makes two reads, two writes and two epoll_waits (`strace "
                "-c`); its CPU per request is in the last columns, beside HAProxy's: user time is "
                "the gateway's own work (parse the envelope, check the data, frame it both ways), "
                "system time the kernel's TCP path and scheduling. HAProxy in mode tcp, which "
                "relays bytes and parses nothing, is the floor any proxy pays for the two extra "
                "crossings. Where "
                "client, gateway and backend spread over both vCPUs, the gateway's user time per "
                "request grows (its work meets data written on the other core), which the relay, "
                "parsing nothing, barely feels. In the --busy-poll row the spinning gateway keeps "
                "one vCPU busy during every run of the row, the direct and HAProxy runs included. "
                "The p50s move by several µs from run to run here (more with the scheduler free): "
                "compare the columns of one row, measured side by side. ")
        if hp == 0:
            note += (vm + ": an idle vCPU halts at once, and waking a process on a halted vCPU "
                     "costs tens of µs (the host must run the vCPU again). With the scheduler free "
                     "most of a request's four wake-ups cross vCPUs, so the hop is mostly those "
                     "wake-ups, for HAProxy as for us. On one core (`taskset -c 0` for client, "
                     "backend, gateway and relay: no wake-up crosses CPUs) and with the guest "
                     "kernel's default halt polling (200 µs, an idle vCPU polls before it halts; "
                     "`make bench` sets it for that row and puts 0 back; BENCH_HALTPOLL=0 skips "
                     "it) the wake-ups are cheap and the hop is what the gateway and TCP cost.")
        elif vm:
            note += vm + "."
        doc.append(note)
        doc.append("")
        doc.append(f"Gateway hop at 1 in flight (a fresh backend, gateway and relay for each "
                   f"row; {HOP_ROUNDS} rounds of direct, gateway, relay, then direct once more; "
                   f"each figure is the mean of its runs):")
        doc.append("")
        doc.extend(hop_lines(study))
        doc.append("")
    doc.append("- The Node gateway parses every message (`JSON.parse`) and serializes `data` again "
               "for the backend; backend payloads are checked with `JSON.parse` and embedded as "
               "they are.")
    doc.append("")
    doc.append("Commands (the gateways: `build/bin/rsocket-gateway --listen ws://127.0.0.1:0 "
               "--route '*=tcp://127.0.0.1:PORT'` and `node tests/interop/peers/node_gateway.mjs "
               "--listen ws://127.0.0.1:0 --route '*=tcp://127.0.0.1:PORT' --connections 2`):")
    doc.append("")
    doc.extend(commands_block(commands[res["cmds_from"]:res["cmds_to"]]))
    doc.append("")
    return doc


def report(rows, results, codec, idle, gw_rows, gw_res, pt, board_res, elapsed):
    m = machine()
    lines = table(rows)
    gw_lines = table(gw_rows, ("rsocket-gateway", "Node gateway"))
    gw_targets = gateway_targets(gw_res)
    codec_lines = []
    if codec:
        codec_lines.append("| data bytes | frame bytes | encode/s | decode/s | read+decode/s | "
                           "memcpy/s | encode ÷ memcpy | decode ÷ memcpy |")
        codec_lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in codec["codec"]:
            codec_lines.append(
                f"| {r['data_bytes']} | {r['frame_bytes']} | {r['encode_per_s'] / 1e6:.1f} M | "
                f"{r['decode_per_s'] / 1e6:.1f} M | {r['read_decode_per_s'] / 1e6:.1f} M | "
                f"{r['memcpy_per_s'] / 1e6:.1f} M | {r['encode_vs_memcpy']:.2f}× | "
                f"{r['decode_vs_memcpy']:.2f}× |")
    idle_lines = []
    for s, name in (("tcp", "RSocket over TCP"), ("ws", "RSocket over WebSocket")):
        r = idle.get(s)
        if not r:
            idle_lines.append(f"| {name} | failed | | |")
            continue
        per = r.get("server_bytes_per_connection", -1)
        idle_lines.append(f"| {name} | {r['open']:,} of {r['requested']:,} | "
                          f"{r['server_rss_after_kib'] - r['server_rss_before_kib']:,} KiB | "
                          f"{per:,.0f} B |")
    targets = target_lines(results, codec, idle)

    print()
    print(f"rsocket-c benchmarks, {m['date']}, {m['cpu']} ({m['cores']} cores), commit {m['commit']}")
    print("\n".join(lines))
    if codec_lines:
        print("\nCodec (PAYLOAD frames):")
        print("\n".join(codec_lines))
    print("\nIdle connections (server resident memory):")
    print("| transport | open | server RSS growth | per connection |")
    print("\n".join(idle_lines))
    print("\nTargets:")
    print("\n".join(targets))
    print("\nGateway:")
    print("\n".join(gw_lines))
    print("\nGateway targets:")
    print("\n".join(gw_targets))
    print("\nGateway hop at 1 in flight:")
    print("\n".join(hop_lines(gw_res.get("hop") or [])))
    print("\nRSocket passthrough:")
    print("\n".join(table(pt[0], ("through rsocket-gateway", "direct"))))
    board_rows, board_target = board_lines(board_res)
    print("\n".join(["", *board_rows, "", *board_target]))
    print(f"\nmake bench took {elapsed:.0f} s")

    if os.environ.get("BENCH_NO_DOC"):
        return
    doc = []
    doc.append("# Benchmarks")
    doc.append("")
    doc.append("Written by `make bench` (scripts/bench.py); do not edit by hand, run it again. "
               "Figures are from one run on one machine with client and server sharing it, so "
               "compare the ratios more than the absolute numbers.")
    doc.append("")
    doc.append("## Machine")
    doc.append("")
    doc.append(f"- date: {m['date']}, commit `{m['commit']}`")
    doc.append(f"- CPU: {m['cpu']}, {m['cores']} cores; memory {m['memory']}; Linux {m['kernel']}")
    doc.append(f"- Node {m['node']}, rsocket-js 1.0.0-alpha.3, ws 8.2.3 (tests/interop/package.json)")
    doc.append(f"- each run: {WARMUP:g} s warm-up, then {SECONDS:g} s measured; "
               f"the whole `make bench` took {elapsed:.0f} s")
    doc.append("")
    doc.append("## Side by side")
    doc.append("")
    doc.append("Our server is `build/bin/rsocket --server`, the peer the rsocket-js echo server "
               "`tests/interop/peers/js_echo_server.mjs` (same echo contract); the plain "
               "WebSocket peer is `tests/interop/peers/ws_echo_server.mjs` (node `ws`). The "
               "client is `build/bin/rsocket-bench` unless the section says rsocket-js "
               "(`tests/interop/peers/js_bench_client.mjs`). Ratio: rsocket-c ÷ peer for rates, "
               "peer ÷ rsocket-c for latencies (above 1× means rsocket-c is better).")
    doc.append("")
    doc.extend(lines)
    doc.append("")
    doc.append("## Targets")
    doc.append("")
    doc.append("| Target | Measured | |")
    doc.append("|---|---|---|")
    doc.extend(targets)
    doc.append("")
    doc.append("Notes:")
    doc.append("")
    doc.append("- Latency with 1 in flight is bounded by the machine: the loopback floor row is a "
               "blocking 25-byte ping-pong between two threads with no event loop and no protocol. "
               "On virtual machines most of it is the scheduler waking a sleeping thread; "
               "`--busy-poll` (server and client) removes that wake-up at the cost of a busy core.")
    doc.append("- The rsocket-js server's channel echo is slow whoever the client is: an rsocket-js "
               "client with 1 element in flight saw about 640 elements/s from it and about 6,200/s "
               "from ours, so the channel ratio describes rsocket-js's server.")
    doc.append("- rsocket-js as the *client* is the bottleneck of its rows: both servers wait on it.")
    doc.append("- Fire-and-forget is bounded by the servers printing (and flushing) one line per "
               "request, as their echo contract says.")
    doc.append("")
    doc.append("## Codec micro-benchmark")
    doc.append("")
    doc.append("`rsocket-bench --codec`: PAYLOAD frames (NEXT, stream 1) encoded into a buffer, "
               "decoded (views, no copy), and read from a length-prefixed byte stream then decoded, "
               "beside `memcpy` of the frame's bytes. Per-frame costs are a few nanoseconds, so "
               "the ratios for small frames compare a function call plus header work with a "
               "6-to-70-byte copy.")
    doc.append("")
    doc.extend(codec_lines)
    doc.append("")
    doc.append("## Idle connections")
    doc.append("")
    doc.append(f"`rsocket-bench --idle {IDLE} --sources 8 --pid PID URI`: {IDLE:,} connections "
               "that sent SETUP and then nothing, from 127.0.0.1-127.0.0.8; the server's VmRSS "
               "(user-space resident memory; kernel socket buffers are not in it) is read before "
               "and after.")
    doc.append("")
    doc.append("| transport | open | server RSS growth | per connection |")
    doc.append("|---|---:|---:|---:|")
    doc.extend(idle_lines)
    doc.append("")
    doc.append("## Commands")
    doc.append("")
    doc.append("Servers: `build/bin/rsocket --server tcp://127.0.0.1:0` (and `ws://`), "
               "`node tests/interop/peers/js_echo_server.mjs --transport tcp|ws --port 0`, "
               "`build/bin/ws-echo-server --port 0`, "
               "`node tests/interop/peers/ws_echo_server.mjs --port 0`. Ports vary per run; the "
               "gateway's are in its section.")
    doc.append("")
    doc.extend(commands_block(commands[:gw_res["cmds_from"]]))
    doc.append("")
    doc.extend(gateway_doc(gw_rows, gw_res, m))
    doc.extend(passthrough_doc(pt[0], pt[1], m))
    doc.extend(board_doc(board_res, m))
    path = os.path.join(ROOT, "docs", "BENCHMARKS.md")
    with open(path, "w") as f:
        f.write("\n".join(doc))
    print(f"wrote {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # cleanup() runs on SIGTERM too
    try:
        main()
    finally:
        cleanup()
