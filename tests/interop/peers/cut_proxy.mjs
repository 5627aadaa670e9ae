// A TCP proxy for resumption tests: forwards 127.0.0.1:PORT → --target HOST:PORT and, once the
// server→client direction has carried --cut-after bytes, destroys every open connection (once),
// as a network failure would. Later connections are forwarded untouched. SIGUSR1 cuts at once.
// With --cuts N it does so N times, the next cut after a random number of bytes between
// --cut-min and --cut-max (default: --cut-after each time).
// Prints "proxy listening on PORT". Usage: node cut_proxy.mjs --target 127.0.0.1:7878
//   [--cut-after N] [--cuts N [--cut-min A --cut-max B]]
import net from "net";

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const [thost, tport] = opt("--target", "127.0.0.1:7878").split(":");
const cutMin = Number(opt("--cut-min", opt("--cut-after", "0")));
const cutMax = Number(opt("--cut-max", String(cutMin)));
const pick = () => cutMin + Math.floor(Math.random() * (cutMax - cutMin + 1));
let cutAfter = args.includes("--cut-after") ? Number(opt("--cut-after", "0")) : pick();
let cutDone = false;
let cutsLeft = Number(opt("--cuts", "1"));
const live = new Set();
let forwarded = 0;

function cutAll(reason) {
  console.log(`cut: ${reason}`);
  for (const s of live) s.destroy();
  live.clear();
  if (--cutsLeft > 0) {
    forwarded = 0;
    cutAfter = pick();
  } else {
    cutDone = true;
  }
}

const server = net.createServer((client) => {
  const upstream = net.connect(Number(tport), thost);
  live.add(client);
  live.add(upstream);
  client.on("data", (d) => upstream.write(d));
  upstream.on("data", (d) => {
    client.write(d);
    forwarded += d.length;
    if (!cutDone && cutAfter > 0 && forwarded >= cutAfter) cutAll(`after ${forwarded} bytes`);
  });
  const end = () => {
    client.destroy();
    upstream.destroy();
    live.delete(client);
    live.delete(upstream);
  };
  client.on("close", end);
  upstream.on("close", end);
  client.on("error", end);
  upstream.on("error", end);
});
server.listen(0, "127.0.0.1", () => console.log(`proxy listening on ${server.address().port}`));
process.on("SIGUSR1", () => cutAll("signal"));
process.on("SIGTERM", () => process.exit(0));
