// rsocket-js 1.0.0-alpha.3 client that checks a server implementing the echo contract (see
// js_echo_server.mjs) scenario by scenario. Prints one line per scenario and a summary
// "N passed, M failed"; exits non-zero on any failure.
// Usage: node js_client.mjs --uri tcp://127.0.0.1:PORT|ws://127.0.0.1:PORT
//          [--fragment MTU] [--only name,name] [--lease] [--timeout-ms 20000]
import { RSocketConnector } from "rsocket-core";
import { TcpClientTransport } from "rsocket-tcp-client";
import { WebsocketClientTransport } from "rsocket-websocket-client";
import WebSocket from "ws";

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const uri = new URL(opt("--uri", "tcp://127.0.0.1:7878"));
const mtu = Number(opt("--fragment", "0"));
const only = opt("--only", "");
const timeoutMs = Number(opt("--timeout-ms", "20000"));
const lease = args.includes("--lease");

function makeTransport() {
  if (uri.protocol === "tcp:") {
    return new TcpClientTransport({ connectionOptions: { host: uri.hostname, port: Number(uri.port) } });
  }
  if (uri.protocol === "ws:") {
    return new WebsocketClientTransport({ url: uri.href, wsCreator: (url) => new WebSocket(url) });
  }
  throw new Error(`unsupported URI ${uri.href}`);
}

async function connect(extra = {}) {
  const connector = new RSocketConnector({
    setup: { keepAlive: 2000, lifetime: 30000, dataMimeType: "application/octet-stream",
             metadataMimeType: "application/octet-stream", ...extra.setup },
    fragmentation: mtu > 0 ? { maxOutboundFragmentSize: mtu } : undefined,
    lease: lease ? { maxPendingRequests: 1000 } : undefined,
    transport: makeTransport(),
  });
  return connector.connect();
}

const withTimeout = (p, what) =>
  Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`${what}: timed out`)), timeoutMs))]);

function rr(rs, payload) {
  return new Promise((resolve, reject) => {
    rs.requestResponse(payload, {
      onNext: (p) => resolve(p),
      onComplete: () => resolve(null),
      onError: reject,
      onExtension() {},
    });
  });
}

function stream(rs, payload, { take, batch }) {
  return new Promise((resolve, reject) => {
    const items = [];
    let requested = batch;
    const sub = rs.requestStream(payload, batch, {
      onNext(p, done) {
        items.push(p);
        if (items.length === take) {
          sub.cancel();
          resolve(items);
          return;
        }
        if (done) return resolve(items);
        if (items.length === requested) {
          requested += batch;
          sub.request(batch);
        }
      },
      onComplete: () => resolve(items),
      onError: reject,
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
        const last = next === payloads.length - 1;
        sub.onNext(payloads[next++], last);
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

const enc = (s) => Buffer.from(s);
const eq = (a, b, what) => {
  if (!Buffer.from(a ?? []).equals(Buffer.from(b ?? []))) throw new Error(`${what}: got ${String(a).slice(0, 60)} want ${String(b).slice(0, 60)}`);
};

const scenarios = {
  async request_response(rs) {
    const p = await rr(rs, { data: enc("hello"), metadata: enc("md") });
    eq(p.data, enc("hello"), "data");
    eq(p.metadata, enc("md"), "metadata");
  },
  async request_response_no_metadata(rs) {
    const p = await rr(rs, { data: enc("x") });
    eq(p.data, enc("x"), "data");
  },
  async fire_and_forget(rs) {
    await new Promise((resolve, reject) => rs.fireAndForget({ data: enc("fnf-data") }, { onComplete: resolve, onError: reject }));
    await rr(rs, { data: enc("after fnf") }); // the connection still works
  },
  // rsocket-js 1.0.0-alpha.3's requester throws "Method not implemented" for metadataPush, so
  // metadata-push is tested with our own client instead.
  async request_stream_take(rs) {
    const items = await stream(rs, { data: enc("item"), metadata: enc("m") }, { take: 25, batch: 4 });
    if (items.length !== 25) throw new Error(`got ${items.length} items`);
    for (const it of items) eq(it.data, enc("item"), "item");
  },
  async request_channel_echo(rs) {
    const ps = Array.from({ length: 20 }, (_, i) => ({ data: enc(`c${i}`) }));
    const got = await channel(rs, ps);
    if (got.length !== 20) throw new Error(`echoed ${got.length} of 20`);
    got.forEach((p, i) => eq(p.data, enc(`c${i}`), `echo ${i}`));
  },
  async request_channel_single(rs) {
    const got = await channel(rs, [{ data: enc("only") }]);
    if (got.length !== 1) throw new Error(`echoed ${got.length} of 1`);
  },
  async large_payload_5mib(rs) {
    const big = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    const p = await rr(rs, { data: big, metadata: enc("big") });
    eq(p.data, big, "5 MiB data");
  },
  async fragmented_256kib(rs) {
    // With --fragment 64 this crosses thousands of fragments each way, metadata first.
    const md = Buffer.alloc(3000, 0x6d);
    const data = Buffer.alloc(256 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
    const p = await rr(rs, { data, metadata: md });
    eq(p.data, data, "data");
    eq(p.metadata, md, "metadata");
  },
  // With --lease against a server granting 100 requests per second: 250 requests need at least
  // two lease renewals, so they take over 1.5 s; all must succeed (none rejected).
  async lease_250(rs) {
    const t0 = Date.now();
    const all = [];
    for (let i = 0; i < 250; i++) all.push(rr(rs, { data: enc(`l${i}`) }).then((p) => eq(p.data, enc(`l${i}`), `l${i}`)));
    await Promise.all(all);
    const ms = Date.now() - t0;
    if (ms < 1500) throw new Error(`250 requests under a 100/s lease took only ${ms} ms`);
  },
  async concurrent_2000(rs) {
    const all = [];
    for (let i = 0; i < 2000; i++) all.push(rr(rs, { data: enc(`r${i}`) }).then((p) => eq(p.data, enc(`r${i}`), `r${i}`)));
    await Promise.all(all);
  },
};

const names = only ? only.split(",") : Object.keys(scenarios).filter((n) => n !== "lease_250");
let passed = 0;
let failed = 0;
let rs;
try {
  rs = await withTimeout(connect(), "connect");
} catch (e) {
  console.log(`FAIL connect: ${e.message}`);
  console.log(`0 passed, ${names.length} failed`);
  process.exit(1);
}
for (const name of names) {
  const fn = scenarios[name];
  if (!fn) {
    console.log(`FAIL ${name}: no such scenario`);
    failed++;
    continue;
  }
  try {
    await withTimeout(fn(rs), name);
    console.log(`ok   ${name}`);
    passed++;
  } catch (e) {
    console.log(`FAIL ${name}: ${e.message}`);
    failed++;
  }
}
rs.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
