// rsocket-js 1.0.0-alpha.3 server implementing the echo contract of `rsocket --server`:
//   request-response: answers with the request's data and metadata
//   request-stream:   emits the request payload again and again, honouring request(n), until
//                     cancelled (or --stream-count N items, then complete)
//   request-channel:  echoes every inbound payload, completes when the requester completes
//   fire-and-forget:  prints "fnf <data>";  metadata-push: prints "metadata-push <metadata>"
// Usage: node js_echo_server.mjs --transport tcp|ws [--host 127.0.0.1] [--port 0]
//          [--fragment MTU] [--lease] [--resume SECONDS] [--stream-count N]
// Prints "listening on tcp://127.0.0.1:PORT" (or ws://) once ready. Stops on SIGTERM/SIGINT.
import { RSocketServer } from "rsocket-core";
import { TcpServerTransport } from "rsocket-tcp-server";
import { WebsocketServerTransport } from "rsocket-websocket-server";
import { WebSocketServer } from "ws";
import { echoChannel } from "./echo_channel.mjs";

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const flag = (name) => args.includes(name);
const transportName = opt("--transport", "tcp");
const host = opt("--host", "127.0.0.1");
const port = Number(opt("--port", "0"));
const mtu = Number(opt("--fragment", "0"));
const streamCount = Number(opt("--stream-count", "0"));
const resumeSeconds = Number(opt("--resume", "0"));

let boundPort = port;
let transport;
if (transportName === "tcp") {
  transport = new TcpServerTransport({ listenOptions: { host, port } });
} else if (transportName === "ws") {
  transport = new WebsocketServerTransport({
    wsCreator: (options) => {
      const server = new WebSocketServer({ host, port, maxPayload: 64 * 1024 * 1024 });
      server.on("listening", () => {
        boundPort = server.address().port;
      });
      return server;
    },
  });
} else {
  console.error(`unknown transport ${transportName}`);
  process.exit(2);
}

const show = (buf) => (buf ? buf.toString("utf8") : "");

function echoStream(payload, initialN, subscriber) {
  let credit = initialN;
  let sent = 0;
  let done = false;
  const pump = () => {
    while (!done && credit > 0) {
      credit--;
      sent++;
      const last = streamCount > 0 && sent >= streamCount;
      subscriber.onNext({ data: payload.data, metadata: payload.metadata }, last);
      if (last) done = true;
    }
  };
  setImmediate(pump);
  return {
    request(n) {
      credit += n;
      setImmediate(pump);
    },
    cancel() {
      done = true;
    },
    onExtension() {},
  };
}


const config = {
  transport,
  fragmentation: mtu > 0 ? { maxOutboundFragmentSize: mtu } : undefined,
  lease: flag("--lease") ? { maxPendingRequests: 256 } : undefined,
  resume: resumeSeconds > 0 ? { sessionTimeout: resumeSeconds * 1000 } : undefined,
  acceptor: {
    accept: async () => ({
      fireAndForget(payload, subscriber) {
        console.log(`fnf ${show(payload.data)}`);
        subscriber.onComplete();
        return { cancel() {} };
      },
      requestResponse(payload, subscriber) {
        setImmediate(() => subscriber.onNext({ data: payload.data, metadata: payload.metadata }, true));
        return { cancel() {}, onExtension() {} };
      },
      requestStream: echoStream,
      requestChannel: echoChannel,
      metadataPush(metadata, subscriber) {
        console.log(`metadata-push ${show(metadata)}`);
        subscriber.onComplete();
      },
    }),
  },
};

const server = new RSocketServer(config);
const closeable = await server.bind();
if (transportName === "tcp") boundPort = closeable.server?.address?.().port ?? boundPort;
const waitPort = async () => {
  for (let i = 0; i < 100 && !boundPort; i++) await new Promise((r) => setTimeout(r, 10));
};
await waitPort();
console.log(`listening on ${transportName}://${host}:${boundPort}`);
const stop = () => {
  closeable.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
