// A Node rsocket-gateway, the peer of build/bin/rsocket-gateway for `make bench`: browsers speak
// the gateway's JSON protocol (issue 14) over a node `ws` (8.2.3) WebSocket; every request goes
// to a backend as an RSocket stream with rsocket-js 1.0.0-alpha.3 (rsocket-core and
// rsocket-tcp-client), written the way a team would write it in Node, not tuned for the bench.
//
//   client → gateway: req (request-response), sub (request-stream; with "n" the client manages
//     credit with more), unsub, fnf, ping
//   gateway → client: cfm, ind, end, rej {"code","message"}, pong
//   backend: data is the compact JSON of "data", data MIME application/json, metadata
//     message/x.rsocket.composite-metadata.v0 with the route (message/x.rsocket.routing.v0) and
//     application/x.rsocket-gateway.client+json = {"session":…,"peer":"ip:port"}. A backend
//     payload that is JSON is embedded as it is, other UTF-8 as a JSON string, else "data_b64".
//   rej codes: BAD_REQUEST, NO_ROUTE, UNAVAILABLE (no connected backend, or it went away),
//     REJECTED, APPLICATION_ERROR (the backend's ERROR frames). unsub cancels without an answer.
//   credit of a sub without "n": a window (--window, default 256) requested at the start, half
//     of it requested again each time half has been handed to the WebSocket, held back while
//     more than 1 MiB waits unsent to that client.
//
// Usage: node node_gateway.mjs --listen ws://127.0.0.1:0 --route 'PATTERN=tcp://HOST:PORT[,…]'
//          [--route …] [--connections K] [--window N]
// PATTERN: "*" (every route), "prefix.*" or an exact route; the first that matches wins. K
// connections per backend (default 1), used in turn. Prints "listening on ws://HOST:PORT" once
// ready; stops on SIGTERM/SIGINT.
import { randomBytes } from "node:crypto";
import { RSocketConnector } from "rsocket-core";
import { TcpClientTransport } from "rsocket-tcp-client";
import { WebSocketServer } from "ws";

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const opts = (name) => args.flatMap((a, i) => (a === name && i + 1 < args.length ? [args[i + 1]] : []));
const listen = new URL(opt("--listen", "ws://127.0.0.1:0"));
const perBackend = Number(opt("--connections", "1"));
const window = Number(opt("--window", "256"));
const HIGH_WATER = 1 << 20;

// ---- composite metadata (rsocket-core 1.0.0-alpha.3 has no encoder for it) ----

const ROUTING_ID = 0x7e; // message/x.rsocket.routing.v0, a well-known MIME id
const CLIENT_MIME = Buffer.from("application/x.rsocket-gateway.client+json", "ascii");

const u24 = (n) => Buffer.from([(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
const routingEntry = (route) => {
  const tag = Buffer.from(route, "utf8");
  return Buffer.concat([Buffer.from([0x80 | ROUTING_ID]), u24(tag.length + 1), Buffer.from([tag.length]), tag]);
};
const clientEntry = (session, peer) => {
  const body = Buffer.from(JSON.stringify({ session, peer }), "utf8");
  return Buffer.concat([Buffer.from([CLIENT_MIME.length - 1]), CLIENT_MIME, u24(body.length), body]);
};
const routeCache = new Map();
const routeEntryOf = (route) => {
  let e = routeCache.get(route);
  if (!e) {
    e = routingEntry(route);
    if (routeCache.size < 10000) routeCache.set(route, e);
  }
  return e;
};

// ---- backends ----

class Backend {
  constructor(uri) {
    this.uri = new URL(uri);
    this.conns = [];
    this.next = 0;
    for (let i = 0; i < perBackend; i++) this.connect(i, 0);
  }

  connect(slot, attempt) {
    const connector = new RSocketConnector({
      setup: { keepAlive: 20000, lifetime: 90000, dataMimeType: "application/json",
               metadataMimeType: "message/x.rsocket.composite-metadata.v0" },
      transport: new TcpClientTransport({
        connectionOptions: { host: this.uri.hostname, port: Number(this.uri.port) },
      }),
    });
    connector.connect().then(
      (rs) => {
        this.conns[slot] = rs;
        rs.onClose(() => {
          if (this.conns[slot] === rs) this.conns[slot] = null;
          this.retry(slot, 0);
        });
      },
      (e) => {
        if (attempt === 0) console.error(`backend ${this.uri.href}: ${e.message}`);
        this.retry(slot, attempt + 1);
      },
    );
  }

  retry(slot, attempt) {
    const ms = Math.min(5000, 100 * 2 ** attempt) * (0.5 + Math.random() / 2);
    setTimeout(() => this.connect(slot, attempt), ms).unref();
  }

  pick() {
    for (let i = 0; i < this.conns.length; i++) {
      const rs = this.conns[(this.next + i) % this.conns.length];
      if (rs) {
        this.next = (this.next + i + 1) % this.conns.length;
        return rs;
      }
    }
    return null;
  }
}

const routes = opts("--route").map((spec) => {
  const eq = spec.indexOf("=");
  if (eq <= 0) {
    console.error(`bad --route ${spec} (PATTERN=tcp://HOST:PORT)`);
    process.exit(2);
  }
  const pattern = spec.slice(0, eq);
  const backends = spec.slice(eq + 1).split(",").map((u) => new Backend(u));
  const match = pattern === "*" ? () => true
    : pattern.endsWith(".*") ? ((p) => (r) => r.startsWith(p))(pattern.slice(0, -1))
    : (r) => r === pattern;
  return { match, backends, next: 0 };
});
if (routes.length === 0) {
  console.error("usage: node node_gateway.mjs --listen ws://127.0.0.1:0 --route '*=tcp://127.0.0.1:7001'");
  process.exit(2);
}

// The connection for a route: its backends in turn. undefined: no route; null: none connected.
function connFor(route) {
  const r = routes.find((x) => x.match(route));
  if (!r) return undefined;
  for (let i = 0; i < r.backends.length; i++) {
    const rs = r.backends[(r.next + i) % r.backends.length].pick();
    if (rs) {
      r.next = (r.next + i + 1) % r.backends.length;
      return rs;
    }
  }
  return null;
}

// ---- JSON answers ----

const utf8 = new TextDecoder("utf-8", { fatal: true });

function dataField(buf) {
  if (!buf || buf.length === 0) return '"data":null';
  let text;
  try {
    text = utf8.decode(buf);
  } catch {
    return `"data_b64":${JSON.stringify(buf.toString("base64"))}`;
  }
  try {
    JSON.parse(text);
    return `"data":${text}`;
  } catch {
    return `"data":${JSON.stringify(text)}`;
  }
}

const idText = (id) => (id === undefined ? "null" : JSON.stringify(id));
const rejText = (id, code, message) =>
  `{"type":"rej","id":${idText(id)},"error":${JSON.stringify({ code, message: String(message) })}}`;

function errorCode(e) {
  switch (e && e.code) {
    case 0x201: return "APPLICATION_ERROR";
    case 0x202: return "REJECTED";
    case 0x203: return "CANCELED";
    case 0x204: return "INVALID";
    case 0x205: case 0x101: case 0x102: case 0x103: case 0x104: return "UNAVAILABLE";
    default: return e && typeof e.code === "number" && e.code >= 0x300 ? "APPLICATION_ERROR" : "UNAVAILABLE";
  }
}

// ---- clients ----

class Client {
  constructor(ws, req) {
    this.ws = ws;
    this.streams = new Map(); // JSON id text → { handle, sub state }
    const peer = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    this.meta = clientEntry(randomBytes(12).toString("hex"), peer);
    ws.on("message", (data, isBinary) => this.onMessage(data, isBinary));
    ws.on("close", () => {
      for (const s of this.streams.values()) s.handle.cancel();
      this.streams.clear();
    });
  }

  send(text) {
    if (this.ws.readyState === 1) this.ws.send(text);
  }

  payload(msg) {
    const data = msg.data === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(msg.data), "utf8");
    return { data, metadata: Buffer.concat([routeEntryOf(msg.route), this.meta]) };
  }

  onMessage(raw, isBinary) {
    let msg;
    try {
      msg = isBinary ? null : JSON.parse(raw.toString("utf8"));
    } catch {
      msg = null;
    }
    if (typeof msg !== "object" || msg === null || Array.isArray(msg))
      return this.send(rejText(undefined, "BAD_REQUEST", "a message is one JSON object in a text message"));
    const { type, id } = msg;
    if (id !== undefined && typeof id !== "number" && typeof id !== "string")
      return this.send(rejText(undefined, "BAD_REQUEST", "id is a number or a string"));
    switch (type) {
      case "ping": return this.send(`{"type":"pong","id":${idText(id)}}`);
      case "req": return this.request(msg, id);
      case "sub": return this.subscribe(msg, id);
      case "more": return this.more(msg, id);
      case "unsub": return this.unsubscribe(id);
      case "fnf": return this.fireAndForget(msg);
      default: return this.send(rejText(id, "BAD_REQUEST", `unknown type ${JSON.stringify(type)}`));
    }
  }

  // The backend connection for msg, or undefined after answering rej.
  open(msg, id) {
    if (id === undefined) return this.send(rejText(id, "BAD_REQUEST", "id is missing"));
    if (typeof msg.route !== "string" || msg.route === "")
      return this.send(rejText(id, "BAD_REQUEST", "route is missing"));
    if (this.streams.has(idText(id))) return this.send(rejText(id, "BAD_REQUEST", "id in use"));
    const rs = connFor(msg.route);
    if (rs === undefined) return this.send(rejText(id, "NO_ROUTE", `no backend serves ${msg.route}`));
    if (rs === null) return this.send(rejText(id, "UNAVAILABLE", "no backend connected"));
    return rs;
  }

  request(msg, id) {
    const rs = this.open(msg, id);
    if (!rs) return;
    const key = idText(id);
    const done = () => this.streams.delete(key);
    const s = { handle: null };
    this.streams.set(key, s); // before the call: an answer may come from inside it
    s.handle = rs.requestResponse(this.payload(msg), {
      onNext: (p) => {
        done();
        this.send(`{"type":"cfm","id":${key},${dataField(p.data)}}`);
      },
      onComplete: () => {
        if (this.streams.delete(key)) this.send(`{"type":"cfm","id":${key},"data":null}`);
      },
      onError: (e) => {
        done();
        this.send(rejText(id, errorCode(e), e.message));
      },
      onExtension() {},
    });
  }

  subscribe(msg, id) {
    const clientCredit = msg.n !== undefined;
    if (clientCredit && !(Number.isInteger(msg.n) && msg.n >= 1 && msg.n <= 0x7fffffff))
      return this.send(rejText(id, "BAD_REQUEST", "n is an integer from 1 to 2147483647"));
    const rs = this.open(msg, id);
    if (!rs) return;
    const key = idText(id);
    const s = { handle: null, clientCredit, sent: 0, owed: 0, timer: null };
    const finish = () => {
      clearTimeout(s.timer);
      this.streams.delete(key);
    };
    this.streams.set(key, s);
    s.handle = rs.requestStream(this.payload(msg), clientCredit ? msg.n : window, {
      onNext: (p, complete) => {
        this.send(`{"type":"ind","id":${key},${dataField(p.data)}}`);
        if (complete) {
          finish();
          this.send(`{"type":"end","id":${key}}`);
        } else if (!clientCredit && ++s.sent === window >> 1) {
          s.sent = 0;
          s.owed += window >> 1;
          this.replenish(s);
        }
      },
      onComplete: () => {
        finish();
        this.send(`{"type":"end","id":${key}}`);
      },
      onError: (e) => {
        finish();
        this.send(rejText(id, errorCode(e), e.message));
      },
      onExtension() {},
    });
  }

  // Gateway-managed credit goes back to the backend once this client's output has room.
  replenish(s) {
    if (s.timer || this.ws.readyState !== 1) return;
    if (this.ws.bufferedAmount > HIGH_WATER) {
      s.timer = setTimeout(() => {
        s.timer = null;
        this.replenish(s);
      }, 5);
      return;
    }
    s.handle.request(s.owed);
    s.owed = 0;
  }

  more(msg, id) {
    const s = this.streams.get(idText(id));
    if (!s || !s.clientCredit) return this.send(rejText(id, "BAD_REQUEST", "no subscription with client credit"));
    if (!(Number.isInteger(msg.n) && msg.n >= 1 && msg.n <= 0x7fffffff))
      return this.send(rejText(id, "BAD_REQUEST", "n is an integer from 1 to 2147483647"));
    s.handle.request(msg.n);
  }

  unsubscribe(id) {
    const key = idText(id);
    const s = this.streams.get(key);
    if (!s) return;
    clearTimeout(s.timer);
    this.streams.delete(key);
    s.handle.cancel();
  }

  fireAndForget(msg) {
    if (typeof msg.route !== "string" || msg.route === "")
      return this.send(rejText(msg.id, "BAD_REQUEST", "route is missing"));
    const rs = connFor(msg.route);
    if (!rs) return; // fire and forget: nobody waits for an answer
    rs.fireAndForget(this.payload(msg), { onComplete() {}, onError() {} });
  }
}

const server = new WebSocketServer({ host: listen.hostname, port: Number(listen.port || 0),
                                     perMessageDeflate: false, maxPayload: 1 << 20 });
server.on("connection", (ws, req) => new Client(ws, req));
server.on("listening", () => console.log(`listening on ws://${listen.hostname}:${server.address().port}`));
const stop = () => {
  server.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
