// A backend for rsocket-gateway's RSocket passthrough tests (test_gateway_rsocket.sh): an
// rsocket-js 1.0.0-alpha.3 server over TCP that acts by the route of each request (composite
// metadata, as the gateway sends it) and records what it saw, so that a client can ask:
//   echo.*      request-response: data and metadata back; request-stream: the data again and
//               again (empty data: "1", "2", ...) honouring request(n); channel: every element
//               back, complete when the requester completes
//   inf.*       request-stream without end (as echo.*, counting)
//   err.app     APPLICATION_ERROR "boom: app";  err.custom  error code 0x401 "custom code";
//   err.rejected REJECTED "not today";  err.stream  two elements, then APPLICATION_ERROR
//   slow.*      request-response never answered
//   later.*     request-response: the data back after 3 s
//   big         request-response: 5 MiB (byte i = i*7 & 0xff)
//   stats       request-response: JSON of what was recorded: requestN (per route, the n of every
//               REQUEST_N and the initial n), cancels (per route), fnf (data), mdpush (count),
//               entry (the last gateway client entry seen)
//   die         fire-and-forget: the process exits at once (a backend killed mid-stream)
// Usage: node pt_backend.mjs [--port 0] [--fragment MTU]. Prints "listening on tcp://…".
import { RSocketServer, RSocketError, ErrorCodes } from "rsocket-core";
import { TcpServerTransport } from "rsocket-tcp-server";
import { CLIENT_MIME, entries } from "./pt_composite.mjs";
import { echoChannel } from "./echo_channel.mjs";

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const port = Number(opt("--port", "0"));
const mtu = Number(opt("--fragment", "0"));

function routeOf(md) {
  const e = entries(md).find((x) => x.id === 0x7e || x.mime === "message/x.rsocket.routing.v0");
  return e ? e.content.subarray(1, 1 + e.content[0]).toString() : "";
}

const stats = { requestN: {}, cancels: {}, fnf: [], mdpush: 0, entry: null };
const note = (md) => {
  const e = entries(md).find((x) => x.mime === CLIENT_MIME);
  if (e) stats.entry = JSON.parse(e.content.toString());
};
const addN = (route, n) => (stats.requestN[route] ??= []).push(n);
const cancelled = (route) => {
  stats.cancels[route] = (stats.cancels[route] ?? 0) + 1;
  console.log(`cancel ${route}`);
};

function stream(route, payload, initialN, sub, { limit = 0, failAfter = 0 } = {}) {
  let credit = initialN;
  let sent = 0;
  let done = false;
  const pump = () => {
    // A batch per turn: unbounded credit must not block the loop (a CANCEL has to get in).
    for (let batch = 0; !done && credit > 0; batch++) {
      if (batch === 64) return void setImmediate(pump);
      if (failAfter && sent === failAfter) {
        done = true;
        sub.onError(rsError(ErrorCodes.APPLICATION_ERROR, "stream broke"));
        return;
      }
      credit--;
      sent++;
      const last = limit > 0 && sent >= limit;
      const data = payload.data && payload.data.length ? payload.data : Buffer.from(String(sent));
      sub.onNext({ data }, last);
      if (last) done = true;
    }
  };
  addN(route, initialN);
  setImmediate(pump);
  return {
    request(n) {
      addN(route, n);
      credit += n;
      setImmediate(pump);
    },
    cancel() {
      done = true;
      cancelled(route);
    },
    onExtension() {},
  };
}

// rsocket-js 1.0.0-alpha.3 sends an error's own code only when it is `instanceof RSocketError`,
// which its ES5 class never is (it extends Error): give the object that prototype.
const rsError = (code, message) => Object.assign(Object.create(RSocketError.prototype), { code, message });
const fail = (sub, code, msg) => setImmediate(() => sub.onError(rsError(code, msg)));

const server = new RSocketServer({
  transport: new TcpServerTransport({ listenOptions: { host: "127.0.0.1", port } }),
  fragmentation: mtu > 0 ? { maxOutboundFragmentSize: mtu } : undefined,
  acceptor: {
    accept: async () => ({
      fireAndForget(payload, sub) {
        const route = routeOf(payload.metadata);
        note(payload.metadata);
        if (route === "die") process.exit(0);
        stats.fnf.push(payload.data ? payload.data.toString() : "");
        sub.onComplete();
        return { cancel() {} };
      },
      requestResponse(payload, sub) {
        const route = routeOf(payload.metadata);
        note(payload.metadata);
        const cancel = { cancel: () => cancelled(route), onExtension() {} };
        if (route === "err.app") fail(sub, ErrorCodes.APPLICATION_ERROR, "boom: app");
        else if (route === "err.custom") fail(sub, 0x401, "custom code");
        else if (route === "err.rejected") fail(sub, ErrorCodes.REJECTED, "not today");
        else if (route.startsWith("slow.")) return cancel;
        else if (route.startsWith("later.")) {
          const t = setTimeout(() => sub.onNext({ data: payload.data }, true), 3000);
          return { cancel: () => (clearTimeout(t), cancelled(route)), onExtension() {} };
        }
        else if (route === "stats")
          setImmediate(() => sub.onNext({ data: Buffer.from(JSON.stringify(stats)) }, true));
        else if (route === "big") {
          const big = Buffer.alloc(5 * 1024 * 1024);
          for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
          setImmediate(() => sub.onNext({ data: big }, true));
        } else setImmediate(() => sub.onNext({ data: payload.data, metadata: payload.metadata }, true));
        return cancel;
      },
      requestStream(payload, initialN, sub) {
        const route = routeOf(payload.metadata);
        note(payload.metadata);
        return stream(route, payload, initialN, sub, { failAfter: route === "err.stream" ? 2 : 0 });
      },
      requestChannel(payload, initialN, isCompleted, sub) {
        const route = routeOf(payload.metadata);
        note(payload.metadata);
        return echoChannel(payload, initialN, isCompleted, sub, {
          window: 16,
          batch: 8,
          onCancel: () => cancelled(route),
        });
      },
      metadataPush(metadata, sub) {
        stats.mdpush++;
        note(metadata);
        sub.onComplete();
      },
    }),
  },
});
const closeable = await server.bind();
let bound = 0;
for (let i = 0; i < 100 && !bound; i++) {
  bound = closeable.server?.address?.().port ?? 0;
  if (!bound) await new Promise((r) => setTimeout(r, 10));
}
console.log(`listening on tcp://127.0.0.1:${bound || port}`);
const stop = () => process.exit(0);
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
