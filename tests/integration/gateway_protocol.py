#!/usr/bin/python3
"""Scenarios of test_gateway.sh: the JSON protocol of rsocket-gateway (docs/GATEWAY.md) against
tests/support/gw_backend and `rsocket --server` backends. Each prints CHECK lines (gwclient.py).

  messages PORT        every message type, backend payload embedding, the client entry
  errors PORT PORT2    every error code (PORT2: the gateway of gateway.json, without '*', a
                       500 ms request timeout and 4 streams per client)
  malformed PORT PORT2 malformed input of every kind, with a bystander client
  routes PORT PORT2    route patterns
  http PORT            /healthz, paths, subprotocol
  rsocket PORT         every model to `rsocket --server` (routes rs.*)
  sigterm PORT PID     sends SIGTERM to PID and checks the drain
"""
import os
import re
import signal
import sys
import time

sys.path.insert(0, sys.path[0])
from gwclient import (CHECK, Client, Closed, Timeout, error_of, http_get, run,  # noqa
                      upgrade_status)


def ping_ok(c, n=77):
    """True when the client is still served: a ping gets its pong next (other messages first
    are dropped)."""
    try:
        c.send({"type": "ping", "id": n})
        m, _ = c.recv_until(lambda m: m.get("type") == "pong", 5)
        return m.get("id") == n
    except (Closed, Timeout, OSError):
        return False


def raw_text(c, timeout=5):
    kind, text = c.recv_message(timeout)
    return text


def messages(port):
    c = Client(port)
    # ping: integer and string ids, echoed exactly as written
    CHECK("ping -> pong (integer id)", {"type": "pong", "id": 9}, c.call({"type": "ping", "id": 9}))
    c.send_text('{"type":"ping","id":"a\\u00e9\\n"}')
    CHECK("ping -> pong: a string id comes back as written", '"id":"a\\u00e9\\n"',
          re.search(r'"id":"[^"]*"', raw_text(c)).group(0))
    # req -> cfm
    CHECK("req -> cfm with the backend's answer",
          {"type": "cfm", "id": 1, "data": {"a": [1, 2], "s": "x y"}},
          c.call({"type": "req", "id": 1, "route": "echo", "data": {"a": [1, 2], "s": "x y"}}))
    CHECK("req without data: the backend gets null", {"type": "cfm", "id": 2, "data": None},
          c.call({"type": "req", "id": 2, "route": "echo"}))
    c.send_text('{"type":"req","id":3,"route":"echo","data": { "a" :\t[1, 2] ,\n "s":"x  y" } }')
    CHECK("req data with whitespace: the backend gets it compacted (strings kept)",
          '"data":{"a":[1,2],"s":"x  y"}', re.search(r'"data":.*\}', raw_text(c)).group(0)[:-1])
    CHECK("req with a string id", {"type": "cfm", "id": "r-1", "data": 5},
          c.call({"type": "req", "id": "r-1", "route": "echo", "data": 5}))
    # sub -> ind* -> end (gateway-managed credit)
    c.send({"type": "sub", "id": 4, "route": "count", "data": 3})
    got = [c.recv() for _ in range(4)]
    CHECK("sub -> ind, ind, ind, end",
          [{"type": "ind", "id": 4, "data": i} for i in (1, 2, 3)] + [{"type": "end", "id": 4}], got)
    c.send({"type": "sub", "id": 5, "route": "count", "data": 0})
    CHECK("sub of an empty stream -> end", {"type": "end", "id": 5}, c.recv())
    # sub with n, more, unsub
    c.send({"type": "sub", "id": 6, "route": "count", "data": "n-tag", "n": 5})
    got = [m["data"] for m in c.quiet(0.7)]
    CHECK("sub with n 5: exactly 5 elements", [1, 2, 3, 4, 5], got)
    c.send({"type": "more", "id": 6, "n": 3})
    got = [m["data"] for m in c.quiet(0.7)]
    CHECK("more n 3: exactly 3 more", [6, 7, 8], got)
    c.send({"type": "unsub", "id": 6})
    CHECK("unsub: no answer", True, ping_ok(c))
    c.send({"type": "sub", "id": 6, "route": "count", "n": 1})
    CHECK("unsub frees the id at once: a new sub with it works", {"type": "ind", "id": 6, "data": 1},
          c.recv())
    c.send({"type": "unsub", "id": 6})
    # chan, send, done
    c.send({"type": "chan", "id": 7, "route": "chan", "data": "first"})
    for i in range(3):
        c.send({"type": "send", "id": 7, "data": {"i": i}})
    c.send({"type": "done", "id": 7})
    got = [c.recv() for _ in range(5)]
    CHECK("chan, send x3, done -> 4 ind then end",
          [{"type": "ind", "id": 7, "data": "first"}] +
          [{"type": "ind", "id": 7, "data": {"i": i}} for i in range(3)] + [{"type": "end", "id": 7}],
          got)
    c.send({"type": "chan", "id": 8, "route": "chan", "data": 0, "n": 2})
    for i in range(1, 5):
        c.send({"type": "send", "id": 8, "data": i})
    got = [m["data"] for m in c.quiet(0.7)]
    CHECK("chan with n 2: exactly 2 elements", [0, 1], got)
    c.send({"type": "more", "id": 8, "n": 10})
    c.send({"type": "done", "id": 8})
    got = [(m["type"], m.get("data")) for m in c.quiet(0.7)]
    CHECK("chan: more n 10 lets the rest and the end through",
          [("ind", 2), ("ind", 3), ("ind", 4), ("end", None)], got)
    # fnf: nothing comes back, with or without id
    c.send({"type": "fnf", "route": "fnf", "data": {"f": 1}})
    c.send({"type": "fnf", "id": 10, "route": "fnf", "data": {"f": 2}})
    CHECK("fnf (with and without id): no answer", True, ping_ok(c))
    time.sleep(0.2)
    st = c.call({"type": "req", "id": 11, "route": "stats"})["data"]
    CHECK("fnf: the backend got both", 2, st["fnf"])
    CHECK("fnf: with its data", {"f": 2}, st["last_fnf"])
    # the client metadata entry
    CHECK("every request carries the client entry", 0, st["without_client"])
    CHECK("client entry: the session is 16 hex digits", True,
          bool(re.fullmatch(r"[0-9a-f]{16}", st["client"]["session"])))
    CHECK("client entry: the peer is the client's address",
          "127.0.0.1:%d" % c.sock.getsockname()[1], st["client"]["peer"])
    d = Client(port)
    st2 = d.call({"type": "req", "id": 1, "route": "stats"})["data"]
    CHECK("client entry: another client has another session", True,
          st2["client"]["session"] != st["client"]["session"])
    d.close()
    # backend payloads that are not plain JSON
    for kind, want in [("text", {"data": "hello, world"}), ("bin", {"data_b64": "//4AAQ=="}),
                       ("empty", {"data": None}), ("json", {"data": {"a": [1, 2]}}),
                       ("nul", {"data": 'a\x00b "q" \\'}), ("spaced", {"data": {"a": [1, 2]}})]:
        m = c.call({"type": "req", "id": 12, "route": "bytes", "data": kind})
        CHECK("backend payload %s -> %s" % (kind, list(want)), dict({"type": "cfm", "id": 12}, **want), m)
    c.send({"type": "req", "id": 13, "route": "bytes", "data": "spaced"})
    CHECK("backend JSON with whitespace is embedded as it is", True,
          '{ "a" : [ 1 , 2 ] }' in raw_text(c))
    c.send({"type": "sub", "id": 14, "route": "bytes"})
    got = [c.recv() for _ in range(7)]
    CHECK("sub: every kind of backend payload as ind, then end",
          ["hello, world", "b64://4AAQ==", None, {"a": [1, 2]}, 'a\x00b "q" \\', {"a": [1, 2]}, "end"],
          [m["type"] if m["type"] == "end" else
           ("b64:" + m["data_b64"] if "data_b64" in m else m["data"]) for m in got])
    CHECK("the connection is still served", True, ping_ok(c))
    c.close()


def errors(port, port2):
    c = Client(port)
    # APPLICATION_ERROR and the other RSocket codes pass through with the backend's message
    for data, code in [("x", "APPLICATION_ERROR"), ("rejected", "REJECTED"), ("invalid", "INVALID"),
                       ("canceled", "CANCELED"), (1000, "APPLICATION_ERROR")]:
        m = c.call({"type": "req", "id": 1, "route": "fail", "data": data})
        CHECK("backend error %r -> rej %s with its message" % (data, code),
              {"type": "rej", "id": 1, "error": {"code": code, "message": "failed: %s" % (
                  '"%s"' % data if isinstance(data, str) else data)}}, m)
    CHECK("sub failed by the backend -> rej APPLICATION_ERROR", "rej APPLICATION_ERROR",
          error_of(c.call({"type": "sub", "id": 2, "route": "fail", "data": "s"})))
    CHECK("chan failed by the backend -> rej APPLICATION_ERROR", "rej APPLICATION_ERROR",
          error_of(c.call({"type": "chan", "id": 3, "route": "fail", "data": "c"})))
    m = c.call({"type": "req", "id": 4, "route": "nosuch"})
    CHECK("a route the backend does not serve -> rej REJECTED", "rej REJECTED", error_of(m))
    # UNAVAILABLE: the route's only backend is down; at once, for every model
    t0 = time.monotonic()
    for typ in ("req", "sub", "chan", "fnf"):
        m = c.call({"type": typ, "id": 5, "route": "down.x"})
        CHECK("%s to a route whose backend is down -> rej UNAVAILABLE" % typ, "rej UNAVAILABLE",
              error_of(m))
    CHECK("UNAVAILABLE comes at once, not after a timeout", True, time.monotonic() - t0 < 3)
    CHECK("fnf without id to a down backend: no answer", True,
          (c.send({"type": "fnf", "route": "down.x"}), ping_ok(c))[1])
    # BAD_REQUEST with the id, or with id null
    CHECK("a missing field -> rej BAD_REQUEST with the id",
          {"type": "rej", "id": 6, "code": "BAD_REQUEST"},
          flat(c.call({"type": "req", "id": 6})))
    c.send_text("{bad")
    CHECK("malformed JSON -> rej BAD_REQUEST with id null",
          {"type": "rej", "id": None, "code": "BAD_REQUEST"}, flat(c.recv()))
    c.send({"type": "req", "id": 7, "route": "silent"})
    CHECK("an id already open -> rej BAD_REQUEST with the id", "rej BAD_REQUEST",
          error_of(c.call({"type": "req", "id": 7, "route": "echo"})))
    c.send({"type": "sub", "id": 8, "route": "count", "data": "err-managed"})
    c.send({"type": "more", "id": 8, "n": 5})
    m, _ = c.recv_until(lambda m: m["type"] == "rej", 5)
    CHECK("more on a gateway-managed sub -> rej BAD_REQUEST with id null",
          {"type": "rej", "id": None, "code": "BAD_REQUEST"}, flat(m))
    c.send({"type": "send", "id": 8, "data": 1})
    m, _ = c.recv_until(lambda m: m["type"] == "rej", 5)
    CHECK("send on a sub -> rej BAD_REQUEST with id null",
          {"type": "rej", "id": None, "code": "BAD_REQUEST"}, flat(m))
    c.send({"type": "more", "id": 7, "n": 5})
    m, _ = c.recv_until(lambda m: m["type"] == "rej", 5)
    CHECK("more on a req -> rej BAD_REQUEST with id null",
          {"type": "rej", "id": None, "code": "BAD_REQUEST"}, flat(m))
    before = c.quiet(0.1)
    after = c.quiet(0.3)
    CHECK("...which leaves the sub open: it still delivers", True,
          any(m.get("id") == 8 and m["type"] == "ind" for m in before + after))
    c.send({"type": "unsub", "id": 8})
    for typ in ("more", "unsub", "send", "done"):
        c.send({"type": typ, "id": 999, "n": 1})
    c.send({"type": "ping", "id": 1000})
    m, before = c.recv_until(lambda m: m.get("id") == 1000, 10)
    rest = [x for x in before + [m] + c.quiet(0.3) if x.get("id") != 8]
    CHECK("more, unsub, send, done for an id not open are dropped",
          [{"type": "pong", "id": 1000}], rest)
    c.close()

    # The second gateway: no '*' route, --request-timeout 500ms, 4 streams per client.
    d = Client(port2)
    for typ in ("req", "sub", "chan", "fnf"):
        CHECK("%s to a route no pattern matches -> rej NO_ROUTE" % typ,
              {"type": "rej", "id": 1, "code": "NO_ROUTE"},
              flat(d.call({"type": typ, "id": 1, "route": "nowhere"})))
    CHECK("fnf without id to no route: no answer", True,
          (d.send({"type": "fnf", "route": "nowhere"}), ping_ok(d))[1])
    for i in range(4):
        d.send({"type": "sub", "id": 10 + i, "route": "x.silent"})
    CHECK("a 5th stream over --max-streams-per-client 4 -> rej TOO_MANY_STREAMS",
          "rej TOO_MANY_STREAMS", error_of(d.call({"type": "req", "id": 20, "route": "x.echo"})))
    e = Client(port2)
    CHECK("the limit is per client: another client is served", "cfm",
          error_of(e.call({"type": "req", "id": 1, "route": "x.echo"})))
    d.send({"type": "unsub", "id": 10})
    CHECK("after an unsub there is room again", "cfm",
          error_of(d.call({"type": "req", "id": 21, "route": "x.echo"})))
    for i in range(1, 4):
        d.send({"type": "unsub", "id": 10 + i})
    t0 = time.monotonic()
    m = e.call({"type": "req", "id": 2, "route": "x.silent"}, timeout=10)
    waited = time.monotonic() - t0
    CHECK("a req unanswered -> rej TIMEOUT", "rej TIMEOUT", error_of(m))
    CHECK("TIMEOUT after --request-timeout 500ms (%.2f s)" % waited, True, 0.4 < waited < 5)
    CHECK("...and the id is free again", "cfm",
          error_of(e.call({"type": "req", "id": 2, "route": "x.echo"})))
    time.sleep(0.3)
    st = e.call({"type": "req", "id": 3, "route": "x.stats"})["data"]
    CHECK("TIMEOUT: the backend saw the CANCEL of the req and of the 4 unsubscribed streams", 5,
          st["cancels"])
    CHECK("TIMEOUT: no stream left open on the backend", 0, st["open"])
    d.close()
    e.close()


def flat(m):
    """A rej as {type, id, code} (the message text aside)."""
    if m.get("type") != "rej":
        return m
    return {"type": "rej", "id": m.get("id"), "code": m["error"]["code"]}


MALFORMED = [
    # (what, text, expected id) -> rej BAD_REQUEST with that id
    ("not JSON", "{bad", None),
    ("an empty message", "", None),
    ("an array", "[1,2]", None),
    ("a number", "42", None),
    ("a string", '"req"', None),
    ("null", "null", None),
    ("trailing garbage", '{"type":"ping","id":1} x', None),
    ("two objects", '{"type":"ping","id":1}{"type":"ping","id":2}', None),
    ("a trailing comma", '{"type":"ping","id":1,}', None),
    ("single quotes", "{'type':'ping','id':1}", None),
    ("NaN", '{"type":"req","id":1,"route":"echo","data":NaN}', None),
    ("a leading zero", '{"type":"req","id":1,"route":"echo","data":01}', None),
    ("a raw control character in a string", '{"type":"req","id":1,"route":"echo","data":"a\tb"}',
     None),
    ("a bad escape", '{"type":"req","id":1,"route":"echo","data":"\\x41"}', None),
    ("a lone surrogate escape", '{"type":"req","id":1,"route":"echo","data":"\\ud800"}', None),
    ("no type", '{"id":1,"route":"echo"}', 1),
    ("an unknown type", '{"type":"bogus","id":2}', 2),
    ("type not a string", '{"type":1,"id":3}', 3),
    ("no id on a req", '{"type":"req","route":"echo"}', None),
    ("an id that is a float", '{"type":"req","id":1.5,"route":"echo"}', None),
    ("an id that is an object", '{"type":"req","id":{"a":1},"route":"echo"}', None),
    ("an id that is true", '{"type":"req","id":true,"route":"echo"}', None),
    ("an id over 255 bytes", '{"type":"req","id":"%s","route":"echo"}' % ("i" * 256), None),
    ("an id integer over 64 bits", '{"type":"req","id":123456789012345678901234567890,'
     '"route":"echo"}', None),
    ("no route", '{"type":"req","id":4}', 4),
    ("an empty route", '{"type":"req","id":5,"route":""}', 5),
    ("a route over 255 bytes", '{"type":"req","id":6,"route":"%s"}' % ("r" * 256), 6),
    ("a route that is not a string", '{"type":"req","id":7,"route":["echo"]}', 7),
    ("n 0", '{"type":"sub","id":8,"route":"count","n":0}', 8),
    ("n negative", '{"type":"sub","id":9,"route":"count","n":-1}', 9),
    ("n over 2^31-1", '{"type":"sub","id":10,"route":"count","n":2147483648}', 10),
    ("n a float", '{"type":"sub","id":11,"route":"count","n":1.5}', 11),
    ("n a string", '{"type":"sub","id":12,"route":"count","n":"5"}', 12),
    ("more without n", '{"type":"more","id":13}', 13),
    ("a duplicate field", '{"type":"req","id":14,"route":"echo","route":"echo"}', 14),
    # The type is read first: without a type the id is not looked at.
    ("a duplicate type", '{"type":"req","type":"req","id":15,"route":"echo"}', None),
    # Over the parser's limits the message is not tokenised: its id cannot be read.
    ("nesting 200 deep", '{"type":"req","id":16,"route":"echo","data":%s%s}' % ("[" * 200, "]" * 200),
     None),
    ("nesting 64 deep (the message counts 1)",
     '{"type":"req","id":17,"route":"echo","data":%s%s}' % ("[" * 64, "]" * 64), None),
    ("20,000 tokens", '{"type":"req","id":18,"route":"echo","data":[%s]}' %
     ",".join(["1"] * 20000), None),
]

ACCEPTED = [
    # (what, text, raw text the cfm must contain)
    ("unknown fields are ignored",
     '{"type":"req","id":1,"route":"echo","data":1,"extra":{"x":[1,{"y":null}]},"ts":1.5}',
     '"data":1'),
    ("nesting 63 deep", '{"type":"req","id":1,"route":"echo","data":%s%s}' % ("[" * 63, "]" * 63),
     '"data":%s%s' % ("[" * 63, "]" * 63)),
    ("a huge integer in data passes through",
     '{"type":"req","id":1,"route":"echo","data":123456789012345678901234567890123456789}',
     '"data":123456789012345678901234567890123456789'),
    ("a huge exponent in data passes through",
     '{"type":"req","id":1,"route":"echo","data":[1e400,-1E-400,0.5e+999]}',
     '"data":[1e400,-1E-400,0.5e+999]'),
    ("escapes and non-ASCII in data pass through",
     '{"type":"req","id":1,"route":"echo","data":"\\ud83d\\ude00 \\u00e9 \u00e9 \\" \\\\ \\/"}',
     '"data":"\\ud83d\\ude00 \\u00e9 \u00e9 \\" \\\\ \\/"'),
    ("n 2^31-1", '{"type":"sub","id":"n","route":"count","data":1,"n":2147483647}', '"data":1'),
    ("a negative integer id", '{"type":"req","id":-5,"route":"echo","data":2}', '"id":-5'),
    ("an id of 255 bytes", '{"type":"req","id":"%s","route":"echo","data":3}' % ("i" * 255),
     '"id":"%s"' % ("i" * 255)),
]


def malformed(port, port2):
    c = Client(port)
    bystander = Client(port)
    n = 0
    for what, text, want_id in MALFORMED:
        c.send_text(text)
        try:
            m = c.recv()
        except (Closed, Timeout) as e:
            m = {"error": repr(e)}
        CHECK("malformed (%s) -> rej BAD_REQUEST id %s" % (what, want_id),
              {"type": "rej", "id": want_id, "code": "BAD_REQUEST"}, flat(m))
        n += 1
        if n % 8 == 0:
            CHECK("a bystander is served meanwhile (%d)" % n, "cfm",
                  error_of(bystander.call({"type": "req", "id": n, "route": "echo"})))
    CHECK("after every kind of malformed input the client is still served", True, ping_ok(c))
    for what, text, want in ACCEPTED:
        c.send_text(text)
        got = raw_text(c)
        CHECK("accepted: %s" % what, True, want in got and '"type":"rej"' not in got)
        if '"type":"ind"' in got:
            CHECK("accepted: %s: then end" % what, {"type": "end", "id": "n"}, c.recv())
    # A message in fragments, with a ping between them: one message.
    msg = '{"type":"req","id":"frag","route":"echo","data":"%s"}' % ("f" * 300)
    c.send_frame(0x1, msg[:100], fin=False)
    c.send_frame(0x9, b"hi")
    c.send_frame(0x0, msg[100:200], fin=False)
    c.send_frame(0x0, msg[200:], fin=True)
    fin, op, payload = c.recv_frame()
    CHECK("a ping between fragments is answered at once", (0xA, b"hi"), (op, payload))
    CHECK("a fragmented message is one message", {"type": "cfm", "id": "frag", "data": "f" * 300},
          c.recv())
    # Messages that end the connection, each on its own client.
    b = Client(port)
    b.send_frame(0x2, b'{"type":"ping","id":1}')
    CHECK("a binary message -> close 1003", 1003, b.recv_close()[0])
    u = Client(port)
    u.send_frame(0x1, b'{"type":"req","id":1,"route":"echo","data":"\xc3\x28"}')
    CHECK("invalid UTF-8 in a text message -> close 1007", 1007, u.recv_close()[0])
    big = Client(port2)
    big.send_text('{"type":"req","id":1,"route":"x.echo","data":"%s"}' % ("b" * 5000))
    CHECK("a message over --max-message 4KiB -> close 1009", 1009, big.recv_close()[0])
    big2 = Client(port2)
    big2.send_frame(0x1, '{"type":"req","id":1,"route":"x.echo","data":"' + "b" * 3000, fin=False)
    big2.send_frame(0x0, "b" * 3000 + '"}', fin=True)
    CHECK("fragments adding up to over --max-message -> close 1009", 1009, big2.recv_close()[0])
    ok = Client(port2)
    CHECK("a message just under --max-message is served", "cfm", error_of(
        ok.call({"type": "req", "id": 1, "route": "x.echo", "data": "s" * 4000})))
    CHECK("the connections that broke the rules did not disturb the others", True,
          ping_ok(c) and ping_ok(bystander))
    CHECK("a new client is served", "cfm", error_of(Client(port).call(
        {"type": "req", "id": 1, "route": "echo"})))


def routes(port, port2):
    c = Client(port)

    def who(route):
        m = c.call({"type": "req", "id": 1, "route": route})
        return m.get("data") if m["type"] == "cfm" else error_of(m)
    CHECK("exact pattern beats prefix and '*' (rooms.whoami)", "C", who("rooms.whoami"))
    CHECK("prefix pattern beats '*' (rooms.x.whoami)", "B", who("rooms.x.whoami"))
    CHECK("the longest prefix wins (rooms.deep.whoami)", "C", who("rooms.deep.whoami"))
    CHECK("'*' takes the rest (whoami)", "A", who("whoami"))
    CHECK("'*' takes the rest (other.whoami)", "A", who("other.whoami"))
    CHECK("a route of 255 bytes", "A", who("w" * 248 + ".whoami"))
    d = Client(port2)

    def who2(route):
        m = d.call({"type": "req", "id": 1, "route": route})
        return m.get("data") if m["type"] == "cfm" else error_of(m)
    CHECK("rooms.* matches rooms.whoami", "B", who2("rooms.whoami"))
    CHECK("rooms.* does not match rooms", "rej NO_ROUTE", who2("rooms"))
    CHECK("rooms.* does not match rooms.", "rej NO_ROUTE", who2("rooms."))
    CHECK("rooms.* does not match roomsx.whoami", "rej NO_ROUTE", who2("roomsx.whoami"))
    CHECK("an exact pattern matches only itself (echo)", "rej NO_ROUTE", who2("echo.x"))
    CHECK("routes are case-sensitive", "rej NO_ROUTE", who2("Rooms.whoami"))
    d.send_text('{"type":"req","id":1,"route":"rooms.\\u0077hoami"}')
    CHECK("a route is matched unescaped", "B", d.recv().get("data"))


def http(port):
    status, _, body = http_get(port, "/healthz")
    CHECK("GET /healthz with a backend up -> 200 ok", (200, "ok"), (status, body.strip()))
    CHECK("GET /other -> 404", 404, http_get(port, "/other")[0])
    CHECK("upgrade on / -> 101", 101, upgrade_status(port, "/"))
    CHECK("upgrade on /json -> 101", 101, upgrade_status(port, "/json"))
    CHECK("upgrade on /nope -> 404", 404, upgrade_status(port, "/nope"))
    CHECK("upgrade on /nope offering the json subprotocol -> 101", 101,
          upgrade_status(port, "/nope", "json"))
    c = Client(port, "/any/path", subprotocol="json")
    CHECK("the json subprotocol is chosen", "json", c.headers.get("sec-websocket-protocol"))
    CHECK("...and served", {"type": "pong", "id": 1}, c.call({"type": "ping", "id": 1}))


def healthz_down(port):
    status, _, _ = http_get(port, "/healthz")
    CHECK("GET /healthz with no backend up -> 503", 503, status)
    c = Client(port)
    t0 = time.monotonic()
    CHECK("no backend reachable: rej UNAVAILABLE", "rej UNAVAILABLE",
          error_of(c.call({"type": "req", "id": 1, "route": "x"})))
    CHECK("...at once, not a hang", True, time.monotonic() - t0 < 2)


def max_clients(port):
    a, b = Client(port), Client(port)
    CHECK("--max-clients 2: a third upgrade -> 503", 503, upgrade_status(port))
    CHECK("--max-clients 2: the two are served", True, ping_ok(a) and ping_ok(b))
    a.close()
    a.recv_close()
    a.shutdown()  # the gateway counts a client until its TCP connection is over
    time.sleep(0.3)
    CHECK("--max-clients 2: after one left, a new one is let in", 101, upgrade_status(port))


def rsocket(port):
    """Every model through the gateway to `rsocket --server` (which echoes)."""
    c = Client(port)
    CHECK("rsocket --server: req -> cfm (echo)", {"type": "cfm", "id": 1, "data": {"k": [1, "v"]}},
          c.call({"type": "req", "id": 1, "route": "rs.echo", "data": {"k": [1, "v"]}}))
    c.send({"type": "sub", "id": 2, "route": "rs.stream", "data": "e", "n": 3})
    got = c.quiet(0.7)
    CHECK("rsocket --server: sub with n 3 -> 3 ind", [{"type": "ind", "id": 2, "data": "e"}] * 3, got)
    c.send({"type": "unsub", "id": 2})
    c.send({"type": "sub", "id": 3, "route": "rs.stream", "data": "g"})
    got = c.quiet(0.5)
    CHECK("rsocket --server: a gateway-managed sub flows", True,
          len(got) > 100 and all(m == {"type": "ind", "id": 3, "data": "g"} for m in got))
    c.send({"type": "unsub", "id": 3})
    c.send({"type": "chan", "id": 4, "route": "rs.chan", "data": "c0"})
    c.send({"type": "send", "id": 4, "data": "c1"})
    c.send({"type": "done", "id": 4})
    got = [c.recv_until(lambda m: m.get("id") == 4)[0] for _ in range(3)]
    CHECK("rsocket --server: chan echoes, then ends",
          [{"type": "ind", "id": 4, "data": "c0"}, {"type": "ind", "id": 4, "data": "c1"},
           {"type": "end", "id": 4}], got)
    c.send({"type": "fnf", "route": "rs.fnf", "data": {"fnf": "gw"}})
    CHECK("rsocket --server: fnf, no answer", True, ping_ok(c))


def sigterm(port, pid):
    """SIGTERM drains: upgrades and /healthz get 503, new requests rej UNAVAILABLE, a client is
    closed with 1001 once its reqs in flight are answered (a sub does not hold it)."""
    a = Client(port)
    a.send({"type": "sub", "id": 1, "route": "silent"})
    b = Client(port)
    b.send({"type": "req", "id": "slow", "route": "delay", "data": 1500})
    CHECK("before SIGTERM: both clients served", True, ping_ok(a) and ping_ok(b))
    t0 = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    time.sleep(0.2)
    m = b.call({"type": "req", "id": "new", "route": "echo"})
    CHECK("draining: a new req -> rej UNAVAILABLE 'the gateway is shutting down'",
          ("rej UNAVAILABLE", True), (error_of(m), "shutting down" in m.get("error", {}).get(
              "message", "")))
    CHECK("draining: /healthz -> 503", 503, http_get(port, "/healthz")[0])
    CHECK("draining: a new upgrade -> 503", 503, upgrade_status(port))
    code, _ = a.recv_close(5)
    CHECK("draining: a client with only a sub is closed with 1001 at once (%.2f s)" %
          (time.monotonic() - t0), (1001, True), (code, time.monotonic() - t0 < 1.4))
    m, before = b.recv_until(lambda m: m.get("id") == "slow", 10)
    CHECK("draining: a req in flight is still answered", "cfm", error_of(m))
    CHECK("draining: ...then its client is closed with 1001", 1001, b.recv_close(5)[0])


if __name__ == "__main__":
    run({"messages": messages, "errors": errors, "malformed": malformed, "routes": routes,
         "http": http, "healthz_down": healthz_down, "max_clients": max_clients, "rsocket": rsocket,
         "sigterm": sigterm})
