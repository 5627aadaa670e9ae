// rsocket-js 1.0.0-alpha.3 load client for `make bench`: request-response with N requests in
// flight on one connection for a duration, against any server of the echo contract.
// Usage: node js_bench_client.mjs --uri tcp://127.0.0.1:PORT|ws://127.0.0.1:PORT
//          [--duration 3] [--warmup 1] [--in-flight 128] [--size 16]
// Prints one JSON line: {"client":"rsocket-js","completed":N,"elapsed_s":S,"rate":R,
//   "errors":E,"latency_us":{"p50":..,"p90":..,"p99":..,"max":..}}
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
const duration = Number(opt("--duration", "3")) * 1e9;
const warmup = Number(opt("--warmup", "1")) * 1e9;
const inFlight = Number(opt("--in-flight", "128"));
const data = Buffer.alloc(Number(opt("--size", "16")), "x");

const transport =
  uri.protocol === "tcp:"
    ? new TcpClientTransport({ connectionOptions: { host: uri.hostname, port: Number(uri.port) } })
    : new WebsocketClientTransport({ url: uri.href, wsCreator: (u) => new WebSocket(u) });
const connector = new RSocketConnector({
  setup: { keepAlive: 30000, lifetime: 120000, dataMimeType: "application/octet-stream",
           metadataMimeType: "application/octet-stream" },
  transport,
});
const rsocket = await connector.connect();

const now = () => process.hrtime.bigint();
const t0 = now();
const measureFrom = t0 + BigInt(warmup);
const end = measureFrom + BigInt(duration);
const lat = [];
let completed = 0;
let errors = 0;
let stopping = false;
let live = 0;

await new Promise((resolve) => {
  const issue = () => {
    if (stopping) {
      if (live === 0) resolve();
      return;
    }
    const sent = now();
    live++;
    rsocket.requestResponse({ data }, {
      onNext() {
        live--;
        const t = now();
        if (t >= measureFrom && t <= end) {
          completed++;
          lat.push(Number(t - sent) / 1000);
        }
        if (t > end) stopping = true;
        issue();
      },
      onComplete() {},
      onExtension() {},
      onError() {
        live--;
        errors++;
        issue();
      },
    });
  };
  for (let i = 0; i < inFlight; i++) issue();
  setTimeout(() => { stopping = true; }, Number(end - t0) / 1e6 + 10);
});
lat.sort((a, b) => a - b);
const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : 0);
const elapsed = duration / 1e9;
console.log(JSON.stringify({
  client: "rsocket-js", uri: uri.href, in_flight: inFlight, size: data.length, completed,
  elapsed_s: elapsed, rate: completed / elapsed, errors,
  latency_us: { p50: q(0.5), p90: q(0.9), p99: q(0.99), max: lat.length ? lat[lat.length - 1] : 0 },
}));
rsocket.close();
process.exit(0);
