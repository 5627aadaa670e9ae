// rsocket-js 1.0.0-alpha.3 client with resumption, for the resumption interop test: requests a
// stream (credit refilled 64 at a time) and prints each item's data on its own line; survives a
// connection cut (reconnects after 100 ms and resumes the session); exits 0 when the stream
// completes, 1 on error. Usage: node js_resume_client.mjs --uri tcp://127.0.0.1:PORT [--data D]
import { RSocketConnector } from "rsocket-core";
import { TcpClientTransport } from "rsocket-tcp-client";
import { randomBytes } from "crypto";

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const uri = new URL(opt("--uri", "tcp://127.0.0.1:7878"));
const token = randomBytes(16);
let reconnects = 0;
const connector = new RSocketConnector({
  setup: { keepAlive: 1000, lifetime: 30000, dataMimeType: "application/octet-stream",
           metadataMimeType: "application/octet-stream" },
  resume: {
    tokenGenerator: () => token,
    reconnectFunction: (attempt) => {
      reconnects++;
      console.error(`reconnecting (attempt ${attempt})`);
      return new Promise((r) => setTimeout(r, 100));
    },
  },
  transport: new TcpClientTransport({
    connectionOptions: { host: uri.hostname, port: Number(uri.port) },
  }),
});
const rsocket = await connector.connect();
const out = [];
let received = 0;
const flush = () => {
  if (out.length) process.stdout.write(out.join(""));
  out.length = 0;
};
const sub = rsocket.requestStream({ data: Buffer.from(opt("--data", "go")) }, 64, {
  onNext(p, isComplete) {
    out.push(p.data.toString() + "\n");
    if (++received % 64 === 0) sub.request(64);
    if (isComplete) this.onComplete();
  },
  onComplete() {
    flush();
    console.error(`complete after ${received} items, ${reconnects} reconnect(s)`);
    process.exit(0);
  },
  onError(e) {
    flush();
    console.error(`error: ${e.message}`);
    process.exit(1);
  },
  onExtension() {},
});
setInterval(flush, 50);
