// rsocket-js 1.0.0-alpha.3 client on rsocket-gateway's /rsocket that receives pushes: its
// responder records every REQUEST_FNF the gateway sends (the route from its composite metadata,
// the data) and prints "push ROUTE DATA" lines. With --trigger ROUTE DATA it first asks the
// backend (tests/support/gw_backend's pushto) to push ROUTE to everyone; it waits --wait-ms
// (default 1000) for pushes, then prints "done N" and exits.
// Usage: node pt_push_client.mjs --uri ws://127.0.0.1:PORT [--trigger push.all '"x"'] [--wait-ms N]
import { RSocketConnector } from "rsocket-core";
import { WebsocketClientTransport } from "rsocket-websocket-client";
import WebSocket from "ws";
import { entries } from "./pt_composite.mjs";

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const uri = opt("--uri", "ws://127.0.0.1:8080");
const waitMs = Number(opt("--wait-ms", "1000"));
const ti = args.indexOf("--trigger");
const u24 = (n) => Buffer.from([(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
const routing = (route) =>
  Buffer.concat([Buffer.from([0x80 | 0x7e]), u24(route.length + 1), Buffer.from([route.length]), Buffer.from(route)]);

let pushes = 0;
const connector = new RSocketConnector({
  setup: {
    keepAlive: 2000,
    lifetime: 30000,
    dataMimeType: "application/json",
    metadataMimeType: "message/x.rsocket.composite-metadata.v0",
  },
  responder: {
    fireAndForget(payload) {
      let route = "?";
      for (const e of entries(payload.metadata ?? Buffer.alloc(0)))
        if (e.id === 0x7e || e.mime === "message/x.rsocket.routing.v0")
          route = e.content.subarray(1, 1 + e.content[0]).toString();
      console.log(`push ${route} ${payload.data ? payload.data.toString() : ""}`);
      pushes++;
      return { cancel() {} };
    },
  },
  transport: new WebsocketClientTransport({ url: uri + "/rsocket", wsCreator: (u) => new WebSocket(u) }),
});

const rs = await connector.connect();
console.log("connected");
if (ti >= 0) {
  const data = `["${args[ti + 1]}",${args[ti + 2]}]`;
  await new Promise((resolve, reject) =>
    rs.requestResponse({ data: Buffer.from(data), metadata: routing("x.pushto") }, {
      onNext: resolve, onComplete: resolve, onError: reject, onExtension() {},
    }));
}
await new Promise((r) => setTimeout(r, waitMs));
console.log(`done ${pushes}`);
rs.close();
process.exit(0);
