// web/rsocket-gateway.js in node against the real rsocket-gateway in front of `rsocket --server`
// echo backends (requests come back as sent, streams repeat their data while credit lasts):
// every call, the error codes, a backend killed mid-subscription (rej UNAVAILABLE, the
// resubscribe hook resumes), the gateway restarted (reconnect, resubscribe, queued requests),
// a list of URLs whose first is down, close(). Usage: node js_gateway.mjs BIN_DIR
import assert from 'node:assert/strict';
import net from 'node:net';
import WebSocket from 'ws';
import { GatewayClient, GatewayError } from '../../web/rsocket-gateway.js';
import { start, stop, restart, sleep, until, runner } from './peers/procs.mjs';

const bin = process.argv[2];
if (!bin) {
  console.error('usage: node js_gateway.mjs BIN_DIR');
  process.exit(2);
}
const R = runner('js_gateway', 40000);

// A port nothing listens on: bound, then closed.
async function deadPort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

// What an application does with UNAVAILABLE: try again a little later (bounded).
async function retryUnavailable(fn, tries = 50) {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (e.code !== 'UNAVAILABLE' || i >= tries) throw e;
      await sleep(100);
    }
  }
}

let backend = await start(`${bin}/rsocket`, ['--server', 'tcp://127.0.0.1:0']);
const backendPort = backend.port;
const downPort = await deadPort();
const gwArgs = (listen) => [
  '--listen', listen,
  '--route', `echo.*=tcp://127.0.0.1:${backendPort}`,
  '--route', `down.*=tcp://127.0.0.1:${downPort}`,
  '--max-streams-per-client', '40',
  '--request-timeout', '5s',
];
let gateway = await start(`${bin}/rsocket-gateway`, gwArgs('ws://127.0.0.1:0'));
const gwUrl = gateway.uri;
const fast = { initial: 50, max: 400, factor: 2 };
const client = (extra = {}) => new GatewayClient({ urls: [gwUrl], WebSocket, backoff: fast, ...extra });

const gw = client();
const events = [];
for (const ev of ['connected', 'disconnected', 'reconnecting']) gw.on(ev, (d) => events.push({ ev, ...d }));

await R.run('connects and emits connected', async () => {
  await until(() => gw.connected, 'connected');
  assert.equal(events[0].ev, 'connected');
  assert.equal(events[0].url, gwUrl);
  assert.equal(events[0].reconnect, false);
});

await R.run('request: JSON object, string, number, null, nested unicode', async () => {
  for (const v of [{ a: 1, b: [true, null, 'x'] }, 'hello', 42, null, { s: 'héllo ✓ "q"\n' }]) {
    assert.deepEqual(await gw.request('echo.req', v), v);
  }
});

await R.run('requests in parallel get their own answers (ids managed)', async () => {
  for (let round = 0; round < 5; round++) {
    const got = await Promise.all(Array.from({ length: 40 }, (_, i) => gw.request('echo.req', { round, i })));
    got.forEach((v, i) => assert.deepEqual(v, { round, i }));
  }
});

await R.run('ping resolves with a round trip time', async () => {
  const rtt = await gw.ping();
  assert.equal(typeof rtt, 'number');
  assert.ok(rtt >= 0);
});

await R.run('subscribe with n: exactly n, more(n) adds n, unsubscribe stops', async () => {
  const items = [];
  const sub = gw.subscribe('echo.feed', { k: 1 }, { n: 3, onNext: (d) => items.push(d) });
  await until(() => items.length === 3, '3 items');
  await sleep(200);
  assert.equal(items.length, 3);
  sub.more(2);
  await until(() => items.length === 5, '5 items');
  await sleep(200);
  assert.equal(items.length, 5);
  assert.deepEqual(items[4], { k: 1 });
  sub.unsubscribe();
  assert.equal(sub.open, false);
  sub.more(10); // after unsubscribe: ignored
  await sleep(100);
  assert.equal(items.length, 5);
});

await R.run('subscribe, async iteration with gateway-managed credit; break unsubscribes', async () => {
  let i = 0;
  const sub = gw.subscribe('echo.feed', 'tick');
  for await (const x of sub) {
    assert.equal(x, 'tick');
    if (++i === 500) break;
  }
  assert.equal(i, 500);
  assert.equal(sub.open, false);
  assert.deepEqual(await gw.request('echo.req', 'still fine'), 'still fine');
});

await R.run('subscribe, async iteration with n refills its own credit', async () => {
  let i = 0;
  for await (const x of gw.subscribe('echo.feed', { p: 2 }, { n: 4 })) {
    assert.deepEqual(x, { p: 2 });
    if (++i === 50) break;
  }
  assert.equal(i, 50);
});

await R.run('channel: first element, send, done completes', async () => {
  const got = [];
  let completed = false;
  const ch = gw.channel('echo.chan', 'a', { onNext: (d) => got.push(d), onComplete: () => (completed = true) });
  await until(() => got.length === 1, 'the first echo');
  assert.ok(ch.send('b'));
  assert.ok(ch.send({ c: 3 }));
  await until(() => got.length === 3, 'three echoes');
  ch.done();
  await until(() => completed, 'completion');
  assert.deepEqual(got, ['a', 'b', { c: 3 }]);
});

await R.run('fireAndForget reaches the backend', async () => {
  assert.equal(gw.fireAndForget('echo.fnf', { fired: 'js-fnf-1' }), true);
  await until(() => backend.log().includes('js-fnf-1'), 'the backend printing the fnf', 5000);
});

await R.run('fireAndForget with onError gets NO_ROUTE', async () => {
  let err = null;
  gw.fireAndForget('nowhere', 1, { onError: (e) => (err = e) });
  await until(() => err, 'the rej');
  assert.equal(err.code, 'NO_ROUTE');
});

await R.run('errors: NO_ROUTE, UNAVAILABLE, BAD_REQUEST reject with code and message', async () => {
  const codeOf = (p) => p.then(() => 'resolved', (e) => { assert.ok(e instanceof GatewayError); assert.ok(e.message.length > 0); return e.code; });
  assert.equal(await codeOf(gw.request('nowhere.at.all', 1)), 'NO_ROUTE');
  assert.equal(await codeOf(gw.request('down.req', 1)), 'UNAVAILABLE');
  assert.equal(await codeOf(gw.request('', 1)), 'BAD_REQUEST');
  assert.equal(await codeOf(gw.request('x'.repeat(300), 1)), 'BAD_REQUEST');
  let subErr = null;
  gw.subscribe('nowhere', 1, { onError: (e) => (subErr = e) });
  await until(() => subErr, 'the sub rej');
  assert.equal(subErr.code, 'NO_ROUTE');
  // the connection stays usable
  assert.equal(await gw.request('echo.req', 'ok'), 'ok');
});

await R.run('errors: TOO_MANY_STREAMS past --max-streams-per-client', async () => {
  const subs = [];
  const errs = [];
  for (let i = 0; i < 41; i++) subs.push(gw.subscribe('echo.feed', i, { n: 1, onError: (e) => errs.push(e.code) }));
  await until(() => errs.length >= 1, 'a rej');
  assert.deepEqual(errs, ['TOO_MANY_STREAMS']);
  subs.forEach((s) => s.unsubscribe());
  await sleep(100);
  assert.equal(await gw.request('echo.req', 'after'), 'after');
});

await R.run('async iteration rejects with the error', async () => {
  await assert.rejects(
    (async () => {
      for await (const _ of gw.subscribe('nowhere', 1)) void _;
    })(),
    (e) => e.code === 'NO_ROUTE',
  );
});

await R.run('backend killed mid-sub: UNAVAILABLE, the resubscribe hook resumes from its offset', async () => {
  const items = [];
  const hooks = [];
  let offset = 0;
  const sub = gw.subscribe('echo.feed', { from: 0 }, {
    n: 2,
    onNext: (d, s) => {
      items.push(d);
      offset++;
      setTimeout(() => s.more(1), 10);
    },
    onError: (e) => hooks.push(`onError ${e.code}`),
    resubscribe: (why) => {
      hooks.push(why.code);
      return { from: offset };
    },
  });
  await until(() => items.length >= 10, '10 items');
  await stop(backend);
  await until(() => hooks.includes('UNAVAILABLE'), 'the hook called with UNAVAILABLE');
  const before = items.length;
  backend = await restart(`${bin}/rsocket`, ['--server', `tcp://127.0.0.1:${backendPort}`]);
  await until(() => items.length > before + 5, 'items after the backend restart', 15000);
  assert.ok(!hooks.some((h) => h.startsWith('onError')), `onError called: ${hooks}`);
  // The resumed stream carries the hook's data (the offset reached when it was lost).
  const resumed = items[items.length - 1];
  assert.ok(resumed.from >= 10, `resumed with ${JSON.stringify(resumed)}`);
  assert.ok(sub.open);
  sub.unsubscribe();
});

await R.run('gateway restarted: disconnected, reconnecting, connected; async hook; queued request', async () => {
  events.length = 0;
  const items = [];
  const hooks = [];
  const sub = gw.subscribe('echo.feed', { gen: 0 }, {
    n: 1,
    onNext: (d, s) => {
      items.push(d);
      setTimeout(() => s.more(1), 10);
    },
    // an async hook, as an app that joins again before it resumes
    resubscribe: async (why) => {
      hooks.push(why.code);
      assert.equal(await retryUnavailable(() => gw.request('echo.req', 'join again')), 'join again');
      return { gen: hooks.length };
    },
  });
  await until(() => items.length >= 3, 'items before');
  // a request in flight when the gateway dies is DISCONNECTED (never retried)
  await stop(gateway);
  await until(() => events.some((e) => e.ev === 'disconnected'), 'disconnected');
  assert.deepEqual(hooks, ['DISCONNECTED']);
  await until(() => events.filter((e) => e.ev === 'reconnecting').length >= 2, 'two reconnect attempts');
  // A fresh gateway may not have its backend connection yet: UNAVAILABLE, then it works.
  const queued = retryUnavailable(() => gw.request('echo.req', 'queued while down', { timeout: 15000 }));
  gateway = await restart(`${bin}/rsocket-gateway`, gwArgs(gwUrl));
  assert.equal(await queued, 'queued while down');
  const c = events.find((e) => e.ev === 'connected');
  assert.equal(c.reconnect, true);
  await until(() => items.length && items[items.length - 1].gen === 1, 'items from the resubscription', 15000);
  const r = events.filter((e) => e.ev === 'reconnecting');
  assert.ok(r.every((e) => e.delay > 0 && e.delay <= fast.max), 'delays within the backoff bounds');
  sub.unsubscribe();
});

await R.run('a request in flight when the connection drops rejects DISCONNECTED', async () => {
  // The socket is destroyed (ws's terminate()) right after the request went out: its answer
  // cannot arrive; the client cannot know whether the backend processed it.
  const p = gw.request('echo.req', 'x');
  gw._ws.terminate();
  await assert.rejects(p, (e) => e.code === 'DISCONNECTED');
  await until(() => gw.connected, 'reconnected');
});

await R.run('several URLs, the first one down: connects to the next', async () => {
  const dead = `ws://127.0.0.1:${await deadPort()}`;
  const c2 = new GatewayClient({ urls: [dead, gwUrl], WebSocket, backoff: fast });
  const seen = [];
  c2.on('reconnecting', (e) => seen.push(e.url));
  assert.equal(await c2.request('echo.req', 'via the second URL', { timeout: 10000 }), 'via the second URL');
  assert.equal(c2.url, gwUrl);
  assert.deepEqual(seen[0], gwUrl);
  c2.close();
});

await R.run('no gateway reachable: request times out with TIMEOUT', async () => {
  const c3 = new GatewayClient({ urls: [`ws://127.0.0.1:${await deadPort()}`], WebSocket, backoff: fast });
  await assert.rejects(c3.request('echo.req', 1, { timeout: 300 }), (e) => e.code === 'TIMEOUT');
  c3.close();
});

await R.run('close(): pending requests reject CLOSED, subscriptions end with CLOSED', async () => {
  const c4 = new GatewayClient({ urls: [`ws://127.0.0.1:${await deadPort()}`], WebSocket, backoff: fast });
  const p = c4.request('echo.req', 1);
  let subErr = null;
  c4.subscribe('echo.feed', 1, { onError: (e) => (subErr = e) });
  let resumingErr = null; // a sub waiting in its async resubscribe hook ends too
  c4.subscribe('echo.feed', 1, {
    onError: (e) => (resumingErr = e),
    resubscribe: () => new Promise(() => {}),
  });
  c4.close();
  assert.equal(resumingErr.code, 'CLOSED');
  await assert.rejects(p, (e) => e.code === 'CLOSED');
  assert.equal(subErr.code, 'CLOSED');
  assert.throws(() => c4.subscribe('echo.feed', 1), (e) => e.code === 'CLOSED');
});

await R.run('bad arguments throw', () => {
  assert.throws(() => new GatewayClient({ urls: [], WebSocket }), TypeError);
  assert.throws(() => new GatewayClient({ urls: ['http://x'], WebSocket }), TypeError);
  assert.throws(() => gw.subscribe('echo.feed', 1, { n: 0 }), RangeError);
  const s = gw.subscribe('echo.feed', 1, { n: 1, onNext: () => {} });
  assert.throws(() => s.more(-1), RangeError);
  s.unsubscribe();
  const m = gw.subscribe('echo.feed', 1, { onNext: () => {} });
  assert.throws(() => m.more(1), /needs a subscription opened with n/);
  m.unsubscribe();
});

gw.close();
await stop(gateway, 'SIGTERM');
await stop(backend, 'SIGTERM');
process.exit(R.summary() ? 0 : 1);
