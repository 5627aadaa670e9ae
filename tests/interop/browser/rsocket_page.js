// The page of rsocket.html: rsocket-js 1.0.0-alpha.3 (rsocket-core, rsocket-websocket-client,
// bundled for the browser by esbuild with the `buffer` package as its Buffer) over the browser's
// own WebSocket to rsocket-gateway's /rsocket, on the page's origin, against gw_backend
// (tests/support/gw_backend.c) behind the gateway route PREFIX.*. It runs every check below in
// turn, shows each in the table and ends with
//   window.results = {done, ok, versions, url, mtu, wire, checks: [{name, ok, ms, detail}]}
// which test_gateway_rsocket_browser.sh (web_rsocket.mjs) reads. Query parameters:
//   run=NAME          a label, also in the backend's stream tags (one backend serves several runs)
//   prefix=gb         the gateway route prefix of gw_backend
//   mtu=N             fragment what the page sends at N bytes (the gateway has --rsocket-mtu N)
//                     and check that every WebSocket message both ways is that small
//   token=JWT         the bearer token in the SETUP's authentication metadata
//   user=ID           the user the gateway must name in its client entry (with token=)
//   expect-reject=S   the SETUP must be refused with a message containing S (one check only)
//   streams=N         concurrent streams and concurrent requests (default 250)
import { RSocketConnector, FrameTypes, Flags } from "rsocket-core";
import { WebsocketClientTransport } from "rsocket-websocket-client";
import corePkg from "rsocket-core/package.json";
import wsPkg from "rsocket-websocket-client/package.json";

const q = new URLSearchParams(location.search);
const run = q.get("run") || "page";
const prefix = q.get("prefix") || "gb";
const mtu = Number(q.get("mtu") || 0);
const token = q.get("token") || "";
const user = q.get("user") || "";
const expectReject = q.get("expect-reject") || "";
const nConcurrent = Number(q.get("streams") || 250);
const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/rsocket`;
const CHECK_MS = 30000;

// ---- composite metadata (message/x.rsocket.composite-metadata.v0) ----
const enc = (s) => Buffer.from(s);
const u24 = (n) => Buffer.from([(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
const entryId = (id, content) => Buffer.concat([Buffer.from([0x80 | id]), u24(content.length), content]);
const entryMime = (mime, content) =>
  Buffer.concat([Buffer.from([mime.length - 1]), enc(mime), u24(content.length), content]);
// message/x.rsocket.routing.v0 (id 0x7e): one tag, the route.
const routing = (route) => entryId(0x7e, Buffer.concat([Buffer.from([route.length]), enc(route)]));
// message/x.rsocket.authentication.v0 (id 0x7c), well-known type bearer (0x01).
const bearer = (t) => entryId(0x7c, Buffer.concat([Buffer.from([0x81]), enc(t)]));
const md = (route, ...more) => Buffer.concat([routing(`${prefix}.${route}`), ...more]);
const json = (v) => enc(JSON.stringify(v));

// ---- the connection, with every WebSocket message counted and measured ----
const wire = { in: 0, out: 0, maxIn: 0, maxOut: 0 };
function measuredSocket(u) {
  const ws = new WebSocket(u);
  const send = ws.send.bind(ws);
  ws.send = (b) => {
    wire.out++;
    wire.maxOut = Math.max(wire.maxOut, b.byteLength);
    send(b);
  };
  ws.addEventListener("message", (e) => {
    wire.in++;
    wire.maxIn = Math.max(wire.maxIn, e.data.byteLength);
  });
  return ws;
}
// What the gateway pushes (REQUEST_FNF from a backend's push.* route): {route, data}.
const pushes = [];
const routeOf = (metadata) => {
  for (let off = 0; metadata && off < metadata.length; ) {
    const b = metadata[off++];
    if (!(b & 0x80)) off += b + 1;
    const len = (metadata[off] << 16) | (metadata[off + 1] << 8) | metadata[off + 2];
    off += 3;
    if (b === (0x80 | 0x7e)) return metadata.subarray(off + 1, off + 1 + metadata[off]).toString();
    off += len;
  }
  return "";
};
function connect() {
  return new RSocketConnector({
    responder: {
      fireAndForget(payload) {
        pushes.push({ route: routeOf(payload.metadata), data: payload.data ? payload.data.toString() : "" });
        return { cancel() {} };
      },
    },
    setup: {
      keepAlive: 2000,
      lifetime: 30000,
      dataMimeType: "application/json",
      metadataMimeType: "message/x.rsocket.composite-metadata.v0",
      payload: token ? { data: null, metadata: bearer(token) } : undefined,
    },
    // Frames over --max-message (1 MiB) are refused: fragment at 64 KiB unless told smaller.
    fragmentation: { maxOutboundFragmentSize: mtu > 0 ? mtu : 65536 },
    transport: new WebsocketClientTransport({ url, wsCreator: measuredSocket }),
  }).connect();
}

// ---- the interaction models as promises ----
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const expect = (cond, what) => {
  if (!cond) throw new Error(what);
};
function rr(rs, payload) {
  return new Promise((resolve, reject) => {
    rs.requestResponse(payload, { onNext: resolve, onComplete: () => resolve(null), onError: reject, onExtension() {} });
  });
}
// A stream with `initial` credit that takes everything until it completes.
function stream(rs, payload, initial) {
  return new Promise((resolve, reject) => {
    const items = [];
    rs.requestStream(payload, initial, {
      onNext(p, done) {
        items.push(p.data.toString());
        if (done) resolve(items);
      },
      onComplete: () => resolve(items),
      onError: (e) => reject(Object.assign(e, { items })),
      onExtension() {},
    });
  });
}
// A channel: sends `payloads` as the responder's credit allows, resolves with what came back.
function channel(rs, payloads) {
  return new Promise((resolve, reject) => {
    const got = [];
    let credit = 0;
    let next = 1;
    let sub = null;
    const pump = () => {
      while (sub && credit > 0 && next < payloads.length) {
        credit--;
        sub.onNext(payloads[next], next === payloads.length - 1);
        next++;
      }
    };
    sub = rs.requestChannel(payloads[0], 1000, payloads.length === 1, {
      onNext(p, done) {
        got.push(p.data.toString());
        if (done) resolve(got);
      },
      onComplete: () => resolve(got),
      onError: reject,
      onExtension() {},
      request(n) {
        credit += n;
        pump();
      },
      cancel() {},
    });
    pump();
  });
}
async function rejects(p, code, message) {
  try {
    await p;
  } catch (e) {
    const hex = (n) => `0x${(n ?? 0).toString(16)}`;
    expect(e.code === code, `error code ${hex(e.code)} (${e.message}), want ${hex(code)}`);
    expect(e.message.startsWith(message), `message "${e.message}", want "${message}…"`);
    return `${hex(e.code)} "${e.message}"`;
  }
  throw new Error(`no error, want 0x${code.toString(16)} ${message}`);
}
let rs = null;
const stats = async () => JSON.parse((await rr(rs, { data: enc(""), metadata: md("stats") })).data.toString());
// Polls the backend's stats until `ok(stats)`; resolves with them.
async function statsUntil(what, ok, ms = 10000) {
  const t0 = Date.now();
  for (;;) {
    const s = await stats();
    if (ok(s)) return s;
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms (backend stats ${JSON.stringify(s)})`);
    await sleep(50);
  }
}

// ---- the checks: each returns a detail line, or throws ----
const checks = [];
const check = (name, fn) => checks.push({ name, fn });

if (expectReject) {
  check("SETUP refused (ERROR REJECTED_SETUP)", async () => {
    rs = await connect();
    try {
      await rr(rs, { data: json("x"), metadata: md("echo") });
    } catch (e) {
      expect(e.message.includes(expectReject), `error "${e.message}", want one with "${expectReject}"`);
      return `the first request failed: ${e.message}`;
    }
    throw new Error("the request went through");
  });
} else {
  check("connect (SETUP, composite metadata)", async () => {
    rs = await connect();
    return `${url}${token ? ", bearer token in the SETUP" : ""}`;
  });

  check("request-response", async () => {
    const v = { hello: "from the browser", run, n: 42 };
    const p = await rr(rs, { data: json(v), metadata: md("echo") });
    expect(p.data.toString() === JSON.stringify(v), `got ${p.data.toString()}`);
    return `echoed ${p.data.length} bytes`;
  });

  let session = "";
  check("the gateway's client entry reaches the backend", async () => {
    const c = (await stats()).client;
    session = c && c.session;
    expect(c && /^[0-9a-f]{16}$/.test(c.session), `entry ${JSON.stringify(c)}`);
    expect(/^127\.0\.0\.1:\d+$/.test(c.peer), `peer ${c.peer}`);
    if (user) expect(c.user === user, `user ${c.user}, want ${user}`);
    return JSON.stringify(c);
  });

  check("request-stream, request(3) at a time", async () => {
    const tag = `bp-${run}`;
    const batch = 3;
    const total = 30;
    const before = (await stats()).cancels;
    let requested = batch;
    let received = 0;
    let maxOver = 0;
    await new Promise((resolve, reject) => {
      const sub = rs.requestStream({ data: json(tag), metadata: md("count") }, batch, {
        onNext(p) {
          received++;
          maxOver = Math.max(maxOver, received - requested);
          if (p.data.toString() !== String(received)) reject(new Error(`item ${received} is ${p.data}`));
          if (received === total) {
            sub.cancel();
            resolve();
          } else if (received === requested) {
            // Credit is spent: wait before asking for more; nothing may come meanwhile.
            setTimeout(() => {
              requested += batch;
              sub.request(batch);
            }, 40);
          }
        },
        onComplete: () => reject(new Error(`completed after ${received}`)),
        onError: reject,
        onExtension() {},
      });
    });
    expect(maxOver === 0, `received ${maxOver} more than requested`);
    const s = await statsUntil("the backend saw the CANCEL", (s) => s.cancels === before + 1);
    expect(s.tags[tag] === total, `the backend produced ${s.tags[tag]} items for ${total} requested`);
    return `${total} items in ${total / batch} requests of ${batch}, never more than requested; the backend produced ${s.tags[tag]}`;
  });

  check("request-channel", async () => {
    const ps = Array.from({ length: 40 }, (_, i) => ({ data: json(`c${i}`) }));
    ps[0].metadata = md("chan");
    const got = await channel(rs, ps);
    expect(got.length === 40, `echoed ${got.length} of 40`);
    got.forEach((d, i) => expect(d === JSON.stringify(`c${i}`), `element ${i} is ${d}`));
    return "40 elements out, 40 back in order, both halves complete";
  });

  check("fire-and-forget", async () => {
    const v = { fnf: "from the browser", run, at: Date.now() };
    await new Promise((resolve, reject) =>
      rs.fireAndForget({ data: json(v), metadata: md("fnf") }, { onComplete: resolve, onError: reject }),
    );
    await statsUntil("the backend got it", (s) => JSON.stringify(s.last_fnf) === JSON.stringify(v));
    return `the backend got ${JSON.stringify(v)}`;
  });

  check("metadata-push", async () => {
    const before = (await stats()).mdpush;
    const metadata = md("mp", entryMime("text/plain", enc("from the page")));
    // rsocket-js 1.0.0-alpha.3's requester has metadataPush() but it throws; the frame goes
    // through the library's own connection (its serializer, its WebSocket) instead.
    let why = "";
    try {
      rs.metadataPush(metadata, { onComplete() {}, onError() {} });
    } catch (e) {
      why = e.message;
    }
    expect(why, "rsocket-js metadataPush() did not throw: use it");
    rs.connection.send({ type: FrameTypes.METADATA_PUSH, streamId: 0, flags: Flags.METADATA, metadata });
    const s = await statsUntil("the backend got it", (s) => s.mdpush === before + 1);
    expect(s.last_mdpush === `${prefix}.mp`, `the backend's last push had route ${s.last_mdpush}`);
    return `metadataPush() throws "${why}": sent the frame on rs.connection; the backend got route ${s.last_mdpush}`;
  });

  check("a push from the backend (REQUEST_FNF to the page)", async () => {
    const got = [];
    for (const to of [`push.session.${session}`, ...(user ? [`push.user.${user}`] : [])]) {
      const v = { push: "to this page", to, run };
      const p = await rr(rs, { data: enc(`[${JSON.stringify(to)},${JSON.stringify(v)}]`), metadata: md("pushto") });
      expect(p.data.toString() === '"pushed"', `pushto answered ${p.data}`);
      const t0 = Date.now();
      while (!pushes.some((x) => x.route === to)) {
        expect(Date.now() - t0 < 10000, `no push ${to} within 10 s (got ${JSON.stringify(pushes)})`);
        await sleep(20);
      }
      const x = pushes.find((x) => x.route === to);
      expect(x.data === JSON.stringify(v), `push data ${x.data}`);
      got.push(to);
    }
    return `the responder's fireAndForget got ${got.join(" and ")} with their data`;
  });

  check("errors from the backend: code and message", async () => {
    const a = await rejects(rr(rs, { data: json("rejected"), metadata: md("fail") }), 0x202, 'failed: "rejected"');
    const b = await rejects(rr(rs, { data: enc("1025"), metadata: md("fail") }), 0x401, "failed: 1025");
    const c = await rejects(stream(rs, { data: json("invalid"), metadata: md("fail") }, 5), 0x204, 'failed: "invalid"');
    return `${a}; ${b}; a stream: ${c}`;
  });

  check("the gateway's own error: no route", async () => {
    const d = await rejects(
      rr(rs, { data: json(""), metadata: routing("nowhere.x") }),
      0x202,
      "NO_ROUTE: no backend serves route 'nowhere.x'",
    );
    const p = await rr(rs, { data: json("still"), metadata: md("echo") });
    expect(p.data.toString() === '"still"', "the connection serves on");
    return d;
  });

  check("cancel a stream: the backend sees CANCEL", async () => {
    const tag = `cx-${run}`;
    const before = (await stats()).cancels;
    const n = await new Promise((resolve, reject) => {
      let got = 0;
      const sub = rs.requestStream({ data: json(tag), metadata: md("count") }, 5, {
        onNext() {
          if (++got === 5) {
            sub.cancel();
            setTimeout(() => resolve(got), 200); // nothing more may come
          }
        },
        onComplete: () => reject(new Error("completed")),
        onError: reject,
        onExtension() {},
      });
    });
    expect(n === 5, `${n} items after the cancel`);
    const s = await statsUntil("the backend saw the CANCEL", (s) => s.cancels === before + 1 && s.open === 0);
    return `5 items, cancel; backend cancels ${before} → ${s.cancels}, its stream closed (open ${s.open})`;
  });

  check("cancel a request-response: the backend sees CANCEL", async () => {
    const before = (await stats()).cancels;
    const req = rs.requestResponse({ data: json("never"), metadata: md("silent") }, {
      onNext() {},
      onComplete() {},
      onError() {},
      onExtension() {},
    });
    await statsUntil("the request open at the backend", (s) => s.open === 1);
    req.cancel();
    const s = await statsUntil("the backend saw the CANCEL", (s) => s.cancels === before + 1 && s.open === 0);
    return `backend cancels ${before} → ${s.cancels}`;
  });

  check(mtu ? `fragmentation at MTU ${mtu}, 200 KiB each way` : "200 KiB each way (fragments of 64 KiB)", async () => {
    let text = "";
    let x = 12345;
    while (text.length < 200 * 1024) {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      text += String.fromCharCode(97 + (x % 26));
    }
    const w0 = { ...wire };
    const pad = entryMime("application/x.pad", Buffer.alloc(1000, 0x6d));
    const p = await rr(rs, { data: json(text), metadata: md("echo", pad) });
    expect(p.data.toString() === JSON.stringify(text), `${p.data.length} bytes back, not the same`);
    const msgs = `${wire.out - w0.out} messages out, ${wire.in - w0.in} in`;
    if (mtu) {
      // The gateway's --rsocket-mtu counts whole frames; rsocket-js's fragment size leaves the
      // frame header out, and a few bytes more in some frames (75-byte messages at 64).
      expect(wire.maxOut <= mtu + 16, `a message of ${wire.maxOut} bytes sent`);
      expect(wire.maxIn <= mtu, `a message of ${wire.maxIn} bytes received`);
      expect(wire.in - w0.in > (200 * 1024) / mtu, msgs);
    }
    return `${p.data.length} bytes echoed; ${msgs}; largest ${wire.maxOut} out, ${wire.maxIn} in`;
  });

  check(`${nConcurrent} concurrent streams and ${nConcurrent} concurrent requests`, async () => {
    const all = [];
    const want = JSON.stringify(["1", "2", "3", "4", "5"]);
    for (let i = 0; i < nConcurrent; i++) {
      all.push(stream(rs, { data: enc("5"), metadata: md("count") }, 5).then((its) =>
        expect(JSON.stringify(its) === want, `stream ${i}: ${JSON.stringify(its)}`)));
      all.push(rr(rs, { data: json(`r${i}`), metadata: md("echo") }).then((p) =>
        expect(p.data.toString() === JSON.stringify(`r${i}`), `request ${i}: ${p.data}`)));
    }
    await Promise.all(all);
    return `${nConcurrent} streams of 5 items and ${nConcurrent} echoes, all open at once, all right`;
  });

  check("nothing left open at the backend", async () => {
    const s = await statsUntil("no stream open", (s) => s.open === 0);
    return `backend: ${s.requests} requests, ${s.elements} stream items, ${s.cancels} cancels, 0 open`;
  });
}

// ---- run them, show them ----
const results = {
  done: false,
  ok: false,
  versions: { "rsocket-core": corePkg.version, "rsocket-websocket-client": wsPkg.version },
  url,
  mtu,
  wire,
  checks: [],
};
window.results = results;
document.getElementById("about").innerHTML =
  `rsocket-core <code>${corePkg.version}</code> · rsocket-websocket-client <code>${wsPkg.version}</code> · ` +
  `<code>${url}</code> · MTU <code>${mtu || "none"}</code> · run <code>${run}</code>` +
  (token ? " · JWT in the SETUP" : "");
const tbody = document.getElementById("checks");
const td = (cls, text) => Object.assign(document.createElement("td"), { className: cls, textContent: text });
for (const c of checks) {
  const tr = document.createElement("tr");
  tr.className = "running";
  tr.append(td("state", "…"), td("name", c.name), td("ms", ""), td("detail", ""));
  tbody.append(tr);
  const t0 = performance.now();
  let ok = false;
  let detail;
  try {
    detail = await Promise.race([c.fn(), sleep(CHECK_MS).then(() => Promise.reject(new Error(`timed out after ${CHECK_MS} ms`)))]);
    ok = true;
  } catch (e) {
    detail = e && e.message ? e.message : String(e);
  }
  const ms = Math.round(performance.now() - t0);
  results.checks.push({ name: c.name, ok, ms, detail });
  tr.className = ok ? "ok" : "fail";
  tr.cells[0].textContent = ok ? "✓ ok" : "✗ FAIL";
  tr.cells[2].textContent = String(ms);
  tr.cells[3].textContent = detail ?? "";
}
if (rs) rs.close();
const failed = results.checks.filter((c) => !c.ok).length;
const summary = document.getElementById("summary");
summary.textContent = `${results.checks.length - failed} passed, ${failed} failed`;
summary.className = failed ? "fail" : "ok";
results.ok = failed === 0;
results.done = true;
