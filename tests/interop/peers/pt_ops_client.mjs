// rsocket-js 1.0.0-alpha.3 clients of rsocket-gateway's RSocket passthrough for its operations
// (test_gateway_rsocket_ops.sh), against peers/pt_backend.mjs. One line per check ("ok   NAME"
// or "FAIL NAME: why"); exit 1 on any failure.
// Usage: node pt_ops_client.mjs --uri ws://127.0.0.1:PORT SCENARIO [--rate N] [--gw-pid PID]
//   rate            (--rate-limit N on the gateway) one burst of N + 2 request-responses and
//                   3 fire-and-forget: N answered, the rest refused REJECTED "RATE_LIMITED: …",
//                   the fire-and-forget dropped; another connection is untouched; the first
//                   is served again once its bucket refilled
//   drain           a request-response in flight (later.*: 3 s) and a stream when the gateway
//                   gets SIGTERM (sent to --gw-pid): new requests are refused, the request is
//                   answered, then the stream ends (CANCELED "UNAVAILABLE: …") and the
//                   connection closes (CONNECTION_CLOSE)
//   drain_timeout   a request-response never answered (slow.*) when the gateway gets SIGTERM:
//                   at --drain-timeout it ends (CANCELED "UNAVAILABLE: …: its --drain-timeout
//                   passed") and the connection closes
import { RSocketConnector } from "rsocket-core";
import { WebsocketClientTransport } from "rsocket-websocket-client";
import WebSocket from "ws";

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const base = opt("--uri", "ws://127.0.0.1:8080");
const rate = Number(opt("--rate", "5"));
const gwPid = Number(opt("--gw-pid", "0"));
const scenario = args.find((a, i) => !a.startsWith("--") && (i === 0 || !args[i - 1].startsWith("--")));

const u24 = (n) => Buffer.from([(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
const routing = (r) => Buffer.concat([Buffer.from([0x80 | 0x7e]), u24(r.length + 1), Buffer.from([r.length]), Buffer.from(r)]);
const enc = (s) => Buffer.from(s);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function connect() {
  const rs = await new RSocketConnector({
    setup: {
      keepAlive: 2000,
      lifetime: 30000,
      dataMimeType: "application/octet-stream",
      metadataMimeType: "message/x.rsocket.composite-metadata.v0",
    },
    transport: new WebsocketClientTransport({ url: base + "/rsocket", wsCreator: (u) => new WebSocket(u) }),
  }).connect();
  // How the connection ended (rsocket-js reports the peer's connection ERROR as the cause).
  rs.closed = new Promise((resolve) => rs.onClose((e) => resolve(e ?? { message: "closed without an error" })));
  return rs;
}
// Settles with {ok: payload} or {err: error}, and the time it did.
function rr(rs, route, data) {
  return new Promise((resolve) => {
    rs.requestResponse({ data: enc(data), metadata: routing(route) }, {
      onNext: (p) => resolve({ ok: p, at: Date.now() }),
      onComplete: () => resolve({ ok: null, at: Date.now() }),
      onError: (e) => resolve({ err: e, at: Date.now() }),
      onExtension() {},
    });
  });
}

let failed = 0;
const check = (name, cond, why) => {
  console.log(cond ? `ok   ${name}` : `FAIL ${name}: ${why}`);
  if (!cond) failed++;
};
const errIs = (r, code, prefix) =>
  r && r.err && r.err.code === code && String(r.err.message).startsWith(prefix);
const show = (r) => (r.err ? `error 0x${(r.err.code ?? 0).toString(16)} ${r.err.message}` : `answer ${r.ok?.data}`);

async function rateScenario() {
  const a = await connect();
  // One burst: `rate` requests (the bucket), 3 fire-and-forget, 2 requests more. The bucket
  // refills one token per 1/rate s: the burst is sent in one go, well within that.
  const first = [];
  for (let i = 0; i < rate; i++) first.push(rr(a, "echo.rate", `r${i}`));
  for (let i = 0; i < 3; i++) a.fireAndForget({ data: enc(`rate-fnf-${i}`), metadata: routing("echo.rate") }, { onComplete() {}, onError() {} });
  const over = [rr(a, "echo.rate", "over1"), rr(a, "echo.rate", "over2")];
  const got = await Promise.all(first);
  check(`rate: the first ${rate} answered`, got.every((r, i) => r.ok && r.ok.data.toString() === `r${i}`), got.map(show).join("; "));
  const refused = await Promise.all(over);
  check("rate: the requests over it refused REJECTED \"RATE_LIMITED: …\"",
    refused.every((r) => errIs(r, 0x202, `RATE_LIMITED: over ${rate} requests per second (--rate-limit)`)), refused.map(show).join("; "));
  // Another connection has a bucket of its own.
  const b = await connect();
  const other = await Promise.all(Array.from({ length: rate - 1 }, (_, i) => rr(b, "echo.other", `o${i}`)));
  check("rate: another connection is untouched", other.every((r) => r.ok), other.map(show).join("; "));
  const st = await rr(b, "stats", ""); // its last token
  if (!st.ok) throw new Error(`stats: ${show(st)}`);
  const fnf = JSON.parse(st.ok.data.toString()).fnf;
  check("rate: fire-and-forget over the limit dropped", !fnf.some((d) => d.startsWith("rate-fnf-")), JSON.stringify(fnf));
  await sleep(1000 + 2000 / rate);
  const again = await rr(a, "echo.rate", "again");
  check("rate: served again once the bucket refilled", again.ok && again.ok.data.toString() === "again", show(again));
  a.close();
  b.close();
}

async function drainScenario() {
  const rs = await connect();
  const answer = rr(rs, "later.drain", "in flight");
  let first;
  const firstItem = new Promise((r) => (first = r));
  const streamEnd = new Promise((resolve) => {
    // 3 items of credit: the stream stays open (unbounded credit could make this client a slow
    // consumer under a sanitizer, which is another test's subject).
    rs.requestStream({ data: enc(""), metadata: routing("inf.drain") }, 3, {
      onNext: () => first(),
      onComplete: () => resolve({ err: { message: "completed" }, at: Date.now() }),
      onError: (e) => resolve({ err: e, at: Date.now() }),
      onExtension() {},
    });
  });
  await firstItem;
  await sleep(100); // the request-response is at the backend
  process.kill(gwPid, "SIGTERM");
  await sleep(300);
  const late = await rr(rs, "echo.drain", "late");
  check("drain: a new request is refused", errIs(late, 0x202, "UNAVAILABLE: the gateway is shutting down"), show(late));
  const a = await answer;
  check("drain: the request-response in flight is answered", a.ok && a.ok.data.toString() === "in flight", show(a));
  const s = await streamEnd;
  check("drain: then the stream ends, CANCELED \"UNAVAILABLE: …\"", errIs(s, 0x203, "UNAVAILABLE: the gateway is shutting down"), show(s));
  check("drain: the stream ended after the answer", s.at >= a.at, `stream ${s.at}, answer ${a.at}`);
  const c = await rs.closed;
  check("drain: the connection closes with CONNECTION_CLOSE", c.code === 0x102 && c.message === "the gateway is shutting down", `0x${(c.code ?? 0).toString(16)} ${c.message}`);
}

async function drainTimeoutScenario() {
  const rs = await connect();
  const never = rr(rs, "slow.drain", "never");
  await sleep(300);
  process.kill(gwPid, "SIGTERM");
  const r = await never;
  check("drain timeout: the request-response ends, CANCELED \"UNAVAILABLE: …\"",
    errIs(r, 0x203, "UNAVAILABLE: the gateway is shutting down: its --drain-timeout passed"), show(r));
  const c = await rs.closed;
  check("drain timeout: the connection closes with CONNECTION_CLOSE", c.code === 0x102, `0x${(c.code ?? 0).toString(16)} ${c.message}`);
}

const run = { rate: rateScenario, drain: drainScenario, drain_timeout: drainTimeoutScenario }[scenario];
if (!run) {
  console.log(`FAIL no such scenario: ${scenario}`);
  process.exit(1);
}
const timer = setTimeout(() => {
  console.log(`FAIL ${scenario}: timed out`);
  process.exit(1);
}, 60000);
try {
  await run();
} catch (e) {
  console.log(`FAIL ${scenario}: ${e.stack}`);
  failed++;
}
clearTimeout(timer);
process.exit(failed ? 1 : 0);
