// Node `ws` (8.2.3) WebSocket echo server for `make bench`, the peer of build/bin/ws-echo-server:
// echoes text as text and binary as binary. No permessage-deflate (as ws-echo-server without
// --deflate). Usage: node ws_echo_server.mjs [--host 127.0.0.1] [--port 0]
// Prints "listening on ws://HOST:PORT/" once ready; stops on SIGTERM/SIGINT.
import { WebSocketServer } from "ws";

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const host = opt("--host", "127.0.0.1");
const server = new WebSocketServer({ host, port: Number(opt("--port", "0")), perMessageDeflate: false,
                                     maxPayload: 16 * 1024 * 1024 });
server.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});
server.on("listening", () => console.log(`listening on ws://${host}:${server.address().port}/`));
const stop = () => { server.close(); process.exit(0); };
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
