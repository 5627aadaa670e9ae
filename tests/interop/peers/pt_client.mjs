// rsocket-js 1.0.0-alpha.3 client of rsocket-gateway's RSocket passthrough (/rsocket), against
// backends running peers/pt_backend.mjs (routes echo.*, inf.*, err.*, slow.*, big, stats). One
// line per scenario ("ok   NAME" or "FAIL NAME: why"), then "N passed, M failed"; exit 1 on any
// failure.
// Usage: node pt_client.mjs --uri ws://127.0.0.1:PORT [--path /rsocket] [--subprotocol rsocket]
//          [--fragment MTU] [--lease] [--token JWT] [--only a,b] [--timeout-ms 30000]
import { RSocketConnector } from "rsocket-core";
import { WebsocketClientTransport } from "rsocket-websocket-client";
import WebSocket from "ws";
import { CLIENT_MIME, entries } from "./pt_composite.mjs";

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const base = opt("--uri", "ws://127.0.0.1:8080");
const path = opt("--path", "/rsocket");
const subprotocol = opt("--subprotocol", "");
const mtu = Number(opt("--fragment", "0"));
const lease = args.includes("--lease");
const token = opt("--token", "");
const only = opt("--only", "");
const timeoutMs = Number(opt("--timeout-ms", "30000"));

// ---- composite metadata ----
const u24 = (n) => Buffer.from([(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
const entryId = (id, content) => Buffer.concat([Buffer.from([0x80 | id]), u24(content.length), content]);
const entryMime = (mime, content) =>
  Buffer.concat([Buffer.from([mime.length - 1]), Buffer.from(mime), u24(content.length), content]);
const routing = (route) => entryId(0x7e, Buffer.concat([Buffer.from([route.length]), Buffer.from(route)]));
const bearer = (t) => entryId(0x7c, Buffer.concat([Buffer.from([0x81]), Buffer.from(t)]));
const md = (route, ...more) => Buffer.concat([routing(route), ...more]);
const enc = (s) => Buffer.from(s);

async function connect(extra = {}) {
  const url = base + path;
  const connector = new RSocketConnector({
    setup: {
      keepAlive: 2000,
      lifetime: 30000,
      dataMimeType: "application/octet-stream",
      metadataMimeType: "message/x.rsocket.composite-metadata.v0",
      payload: extra.token ?? token ? { data: null, metadata: bearer(extra.token ?? token) } : undefined,
    },
    fragmentation: { maxOutboundFragmentSize: mtu > 0 ? mtu : 65536 },
    lease: lease ? { maxPendingRequests: 100000 } : undefined,
    transport: new WebsocketClientTransport({
      url,
      wsCreator: (u) => (subprotocol ? new WebSocket(u, subprotocol) : new WebSocket(u)),
    }),
  });
  return connector.connect();
}

const withTimeout = (p, what, ms = timeoutMs) =>
  Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`${what}: timed out`)), ms))]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function rr(rs, payload) {
  return new Promise((resolve, reject) => {
    rs.requestResponse(payload, { onNext: (p) => resolve(p), onComplete: () => resolve(null), onError: reject, onExtension() {} });
  });
}
// A stream: `initial` then `more` (an array of request(n) made as the credit runs out);
// cancels after `take` items. Resolves with the items (and the error, if one ended it).
function stream(rs, payload, { initial, more = [], take = Infinity }) {
  return new Promise((resolve, reject) => {
    const items = [];
    let credit = initial;
    const sub = rs.requestStream(payload, initial, {
      onNext(p, done) {
        items.push(p);
        credit--;
        if (items.length === take) {
          sub.cancel();
          return resolve(items);
        }
        if (done) return resolve(items);
        if (credit === 0 && more.length) {
          const n = more.shift();
          credit += n;
          sub.request(n);
        }
      },
      onComplete: () => resolve(items),
      onError: (e) => reject(Object.assign(e, { items })),
      onExtension() {},
    });
  });
}
function channel(rs, payloads) {
  return new Promise((resolve, reject) => {
    const got = [];
    let credit = 0;
    let next = 1;
    let sub;
    const pump = () => {
      while (credit > 0 && next < payloads.length) {
        credit--;
        sub.onNext(payloads[next], next === payloads.length - 1);
        next++;
      }
    };
    sub = rs.requestChannel(payloads[0], 1000, payloads.length === 1, {
      onNext(p, done) {
        got.push(p);
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
  });
}
const stats = async (rs) => JSON.parse((await rr(rs, { data: enc(""), metadata: md("stats") })).data.toString());
const eq = (a, b, what) => {
  if (!Buffer.from(a ?? []).equals(Buffer.from(b ?? [])))
    throw new Error(`${what}: got ${String(a).slice(0, 60)} want ${String(b).slice(0, 60)}`);
};
const expect = (cond, what) => {
  if (!cond) throw new Error(what);
};
async function rejects(p, code, prefix) {
  try {
    await p;
  } catch (e) {
    expect(e.code === code, `error code 0x${(e.code ?? 0).toString(16)} (${e.message}), want 0x${code.toString(16)}`);
    expect(e.message.startsWith(prefix), `message "${e.message}" does not start with "${prefix}"`);
    return e;
  }
  throw new Error(`no error, want 0x${code.toString(16)} ${prefix}`);
}
async function until(what, fn, ms = 5000) {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await fn()) return;
    await sleep(50);
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

const scenarios = {
  async request_response(rs) {
    const mine = entryMime("application/x.test", enc("mine"));
    const p = await rr(rs, { data: enc("hello"), metadata: md("echo.a", mine) });
    eq(p.data, enc("hello"), "data");
    const es = entries(p.metadata); // the backend echoes the metadata it got
    expect(es[0].id === 0x7e && es[0].content.subarray(1).toString() === "echo.a", "routing entry first, as sent");
    expect(es.some((e) => e.mime === "application/x.test" && e.content.toString() === "mine"), "the client's own entry kept");
    expect(es.some((e) => e.id === 0x7a), "the data MIME entry (octet-stream is not the backend's json)");
    const gw = es.filter((e) => e.mime === CLIENT_MIME);
    expect(gw.length === 1, `one gateway entry, got ${gw.length}`);
    const entry = JSON.parse(gw[0].content.toString());
    expect(/^[0-9a-f]{16}$/.test(entry.session) && /^127\.0\.0\.1:\d+$/.test(entry.peer), `entry ${gw[0].content}`);
  },
  async forged_entry_dropped(rs) {
    const forged = entryMime(CLIENT_MIME, enc('{"session":"x","user":"admin"}'));
    const p = await rr(rs, { data: enc("x"), metadata: md("echo.f", forged) });
    const gw = entries(p.metadata).filter((e) => e.mime === CLIENT_MIME);
    expect(gw.length === 1 && !gw[0].content.toString().includes("admin"), `gateway entries: ${gw.map((e) => e.content)}`);
  },
  async request_stream_credit(rs) {
    // The client's request(n) reach the backend unchanged: 3, then 5, 7, 1.
    const items = await stream(rs, { data: enc("s"), metadata: md("echo.credit") }, { initial: 3, more: [5, 7, 1], take: 16 });
    expect(items.length === 16, `16 items, got ${items.length}`);
    await until("backend saw 3,5,7,1", async () => JSON.stringify((await stats(rs)).requestN["echo.credit"]) === "[3,5,7,1]");
  },
  async request_stream_take_cancel(rs) {
    const items = await stream(rs, { data: enc(""), metadata: md("inf.cancel") }, { initial: 4, more: [4, 4], take: 10 });
    expect(items.length === 10 && items[9].data.toString() === "10", `10 items counted, got ${items.length}`);
    await until("backend saw CANCEL", async () => (await stats(rs)).cancels["inf.cancel"] === 1);
  },
  async request_channel(rs) {
    const ps = Array.from({ length: 50 }, (_, i) => ({ data: enc(`c${i}`) }));
    ps[0].metadata = md("echo.chan");
    const got = await channel(rs, ps);
    expect(got.length === 50, `echoed ${got.length} of 50`);
    got.forEach((p, i) => eq(p.data, enc(`c${i}`), `echo ${i}`));
  },
  async fire_and_forget(rs) {
    await new Promise((resolve, reject) =>
      rs.fireAndForget({ data: enc("fnf-pt"), metadata: md("echo.fnf") }, { onComplete: resolve, onError: reject }));
    await until("backend got the fnf", async () => (await stats(rs)).fnf.includes("fnf-pt"));
  },
  async errors(rs) {
    await rejects(rr(rs, { data: enc(""), metadata: md("err.app") }), 0x201, "boom: app");
    await rejects(rr(rs, { data: enc(""), metadata: md("err.custom") }), 0x401, "custom code");
    await rejects(rr(rs, { data: enc(""), metadata: md("err.rejected") }), 0x202, "not today");
    const e = await rejects(stream(rs, { data: enc("x"), metadata: md("err.stream") }, { initial: 10 }), 0x201, "stream broke");
    expect(e.items.length === 2, `2 items before the error, got ${e.items.length}`);
  },
  async no_route(rs) {
    await rejects(rr(rs, { data: enc(""), metadata: md("nowhere.x") }), 0x202, "NO_ROUTE: no backend serves route 'nowhere.x'");
    await rejects(rr(rs, { data: enc("") }), 0x202, "NO_ROUTE: the request has no route");
    // The connection is still fine.
    eq((await rr(rs, { data: enc("ok"), metadata: md("echo.after") })).data, enc("ok"), "after");
  },
  async large_5mib(rs) {
    const big = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 13) & 0xff;
    const p = await rr(rs, { data: big, metadata: md("echo.big") });
    eq(p.data, big, "5 MiB echoed");
    const q = await rr(rs, { data: enc(""), metadata: md("big") });
    expect(q.data.length === 5 * 1024 * 1024 && q.data[12345] === ((12345 * 7) & 0xff), "5 MiB from the backend");
  },
  async fragmented(rs) {
    const meta = Buffer.alloc(3000, 0x6d);
    const data = Buffer.alloc(256 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
    const p = await rr(rs, { data, metadata: md("echo.frag", entryMime("application/x.pad", meta)) });
    eq(p.data, data, "data");
    expect(entries(p.metadata).some((e) => e.mime === "application/x.pad" && e.content.equals(meta)), "metadata back");
  },
  async concurrent_2000(rs) {
    const all = [];
    for (let i = 0; i < 2000; i++)
      all.push(rr(rs, { data: enc(`r${i}`), metadata: md("echo.many") }).then((p) => eq(p.data, enc(`r${i}`), `r${i}`)));
    for (let i = 0; i < 2000; i++)
      all.push(stream(rs, { data: enc(`s${i}`), metadata: md("echo.many") }, { initial: 3, take: 3 }).then((its) => {
        expect(its.length === 3, `stream ${i}: ${its.length} items`);
        eq(its[2].data, enc(`s${i}`), `s${i}`);
      }));
    await Promise.all(all);
  },
  async timeout(rs) {
    await rejects(rr(rs, { data: enc(""), metadata: md("slow.t") }), 0x203, "TIMEOUT: no answer from the backend within");
    await until("backend saw CANCEL", async () => (await stats(rs)).cancels["slow.t"] === 1);
  },
  async too_many_streams(rs) {
    // The gateway of this scenario allows 3 streams per client.
    const subs = [];
    for (let i = 0; i < 3; i++) subs.push(rs.requestStream({ data: enc(""), metadata: md("inf.limit") }, 1, { onNext() {}, onComplete() {}, onError() {}, onExtension() {} }));
    await sleep(300);
    await rejects(rr(rs, { data: enc(""), metadata: md("echo.limit") }), 0x202, "TOO_MANY_STREAMS:");
    subs.forEach((s) => s.cancel());
    await sleep(300);
    eq((await rr(rs, { data: enc("ok"), metadata: md("echo.limit") })).data, enc("ok"), "after cancelling");
  },
  async authenticated(rs) {
    const p = await rr(rs, { data: enc("x"), metadata: md("echo.auth") });
    const gw = entries(p.metadata).find((e) => e.mime === CLIENT_MIME);
    expect(gw && JSON.parse(gw.content.toString()).user === "ada", `entry ${gw?.content}`);
  },
  async lease_250(rs) {
    const all = [];
    for (let i = 0; i < 250; i++) all.push(rr(rs, { data: enc(`l${i}`), metadata: md("echo.lease") }).then((p) => eq(p.data, enc(`l${i}`), `l${i}`)));
    await Promise.all(all);
  },
  async backend_lost(rs) {
    // A stream on the mortal backend; it dies (fnf "die"); the stream ends with CANCELED and the
    // message says the backend was lost; the connection stays and serves the other backend.
    const got = [];
    const ended = new Promise((resolve) => {
      const sub = rs.requestStream({ data: enc(""), metadata: md("mortal.s") }, 1000000, {
        onNext: (p) => {
          got.push(p);
          if (got.length === 5) rs.fireAndForget({ data: enc(""), metadata: md("die") }, { onComplete() {}, onError() {} });
        },
        onComplete: () => resolve(new Error("completed")),
        onError: (e) => resolve(e),
        onExtension() {},
      });
      void sub;
    });
    const e = await ended;
    expect(e.code === 0x203 && e.message.startsWith("UNAVAILABLE: the backend connection was lost"), `error ${e.code} ${e.message}`);
    expect(got.length >= 5, `${got.length} items first`);
    eq((await rr(rs, { data: enc("still"), metadata: md("echo.alive") })).data, enc("still"), "the connection stays");
  },
};

const names = only ? only.split(",") : ["request_response", "forged_entry_dropped", "request_stream_credit",
  "request_stream_take_cancel", "request_channel", "fire_and_forget", "errors", "no_route", "large_5mib",
  "fragmented", "concurrent_2000"];
let passed = 0;
let failed = 0;
let rs;
try {
  rs = await withTimeout(connect(), "connect");
  if (args.includes("--expect-reject")) {
    // The SETUP is refused (ERROR REJECTED_SETUP): rsocket-js closes the connection with the
    // error's message as the cause, and the first request fails with it.
    const want = opt("--expect-reject", "");
    try {
      await withTimeout(rr(rs, { data: enc(""), metadata: md("echo.x") }), "request");
      console.log("FAIL setup rejected: the request went through");
    } catch (e) {
      console.log(e.message.includes(`[Error: ${want}`) ? "ok   setup rejected" : `FAIL setup rejected: ${e.message}`);
    }
    process.exit(0);
  }
} catch (e) {
  console.log(`FAIL connect: ${e.message} (code ${e.code})`);
  console.log(`0 passed, ${names.length} failed`);
  process.exit(1);
}
for (const name of names) {
  const fn = scenarios[name];
  try {
    if (!fn) throw new Error("no such scenario");
    const t0 = Date.now();
    await withTimeout(fn(rs), name);
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
    passed++;
  } catch (e) {
    console.log(`FAIL ${name}: ${e.message}`);
    failed++;
  }
}
rs.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
