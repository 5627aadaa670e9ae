// The fault tests' clients (tests/integration/test_cluster_*.sh, docs/SCALING.md): N simulated
// users, each a GatewayClient of web/rsocket-gateway.js on its own WebSocket through HAProxy,
// editing the same few boards the way web/app.js does (join, follow board.ops from the join's
// offset, resubscribe hooks that join again and resume from the offset reached, a reload on
// HISTORY_GONE or a new epoch), while the shell script breaks something.
//
// Protocol with the script: prints "editing" once every client has joined and subscribed, then
// "fault now" after --before ms of edits; the script breaks something and creates --fault-file;
// the clients edit --after ms more, stop, wait until every one has reached the board's head (a
// fresh join's offset), and the driver prints its assertions as "CHECK<TAB>name<TAB>want<TAB>got"
// lines (and "INFO ..." lines); exit status 0 when it ran to its end (the checks decide).
//
// What is asserted, per client: its shapes equal the board's final snapshot; in each epoch it
// saw every op offset exactly once, from the offset its snapshot of that epoch included to the
// last one (no duplicate, no gap, nothing out of order); every edit any client had confirmed
// (cfm with an offset) came to every client of the board at that offset, with the same kind and
// shape; it made a confirmed edit after the fault (it recovered). Per mode (--mode):
//   gateway-kill   the clients of the killed gateway (--victim) were disconnected and came back
//   service-kill   some subscriptions were lost (UNAVAILABLE) and resumed
//   redis-restart  clients saw errors, then recovered; --epoch-change: every client reloaded
//                  into a new epoch
//   link-cut       nothing at all: no disconnect, no resubscribe, no failed request or stream
//
// usage: node cluster_driver.mjs --url ws://127.0.0.1:PORT/json --mode MODE
//   [--clients 50] [--boards 3] [--before 2000] [--after 4000] [--fault-file FILE]
//   [--metrics gw1=PORT,gw2=PORT] [--victim gw1] [--epoch-change] [--interval 300]
import { createRequire } from 'module';
import fs from 'fs';
import { GatewayClient } from '../../web/rsocket-gateway.js';

const require = createRequire(new URL('../interop/package.json', import.meta.url));
const WebSocket = require('ws');

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const flag = (name) => args.includes(name);
const URL_ = opt('--url');
const MODE = opt('--mode', 'none');
const NCLIENTS = Number(opt('--clients', '50'));
const NBOARDS = Number(opt('--boards', '3'));
const BEFORE = Number(opt('--before', '2000'));
const AFTER = Number(opt('--after', '4000'));
const INTERVAL = Number(opt('--interval', '300'));
const FAULT_FILE = opt('--fault-file', '');
const VICTIM = opt('--victim', '');
const EPOCH_CHANGE = flag('--epoch-change');
const METRICS = Object.fromEntries(
  (opt('--metrics', '') || '')
    .split(',')
    .filter(Boolean)
    .map((kv) => kv.split('=')),
);
const RUN_PREFIX = `r${process.pid}`; // boards and ids of this run
if (!URL_) {
  console.error('cluster_driver: --url is required');
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const jitter = (ms) => ms / 2 + Math.random() * ms;
const t0 = Date.now();
const info = (...a) => console.log(`INFO ${((Date.now() - t0) / 1000).toFixed(1)}s`, ...a);
const check = (name, want, got) => console.log(`CHECK\t${name}\t${want}\t${got}`);

// Shapes as the service keeps them: canonical JSON of the shapes sorted by id, keys sorted.
function canon(shapes) {
  const list = [...shapes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return JSON.stringify(list.map((s) => Object.fromEntries(Object.entries(s).sort())));
}

let stopEditing = false;
let closing = false; // the end: streams end with CLOSED
let faultAt = 0; // when the script said the fault was done (0: not yet)

class Sim {
  constructor(i) {
    this.i = i;
    this.name = `u${i}`;
    this.prefix = `${RUN_PREFIX}-u${i}-`;
    this.board = `${RUN_PREFIX}-b${i % NBOARDS}`;
    this.nextShape = 1;
    this.deletedOwn = new Set();
    this.epoch = null;
    this.offset = 0;
    this.shapes = new Map();
    this.segments = []; // per snapshot taken: {epoch, start, seen: Map(offset -> times), ops: Map(offset -> "kind id")}
    this.seg = null;
    this.ready = false;
    this.recovering = null;
    this.sub = null;
    this.confirmed = []; // {offset, key, epochSent, epoch: the one its answer names}
    this.okAfterFault = 0;
    this.recoveredAt = 0; // when its first edit sent after the fault was confirmed
    this.stats = {
      disconnects: 0,
      reconnects: 0,
      resubscribes: 0,
      streamErrors: 0,
      editErrors: 0,
      joinErrors: 0,
      historyGone: 0,
      sameEpochGone: 0,
      reloads: 0,
      duplicates: 0,
      outOfOrder: 0,
      backwards: 0,
    };
    this.errors = new Map(); // "what: code message" -> count
    this.gw = new GatewayClient({
      urls: [URL_],
      WebSocket,
      requestTimeout: 10000,
      pingInterval: 5000,
      pingTimeout: 5000,
      backoff: { initial: 100, max: 1000, factor: 2 },
    });
    this.gw.on('disconnected', () => {
      this.stats.disconnects++;
      this.ready = false;
    });
    this.gw.on('connected', ({ reconnect }) => {
      if (reconnect) this.stats.reconnects++;
    });
    this.gw.on('error', (e) => this.err('callback', e));
  }

  err(what, e) {
    const k = `${what}: ${e && e.code ? e.code + ' ' : ''}${String((e && e.message) || e).slice(0, 120)}`;
    this.errors.set(k, (this.errors.get(k) || 0) + 1);
  }

  async start() {
    await this.recover();
    this.subscribe();
  }

  async joinRetry() {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.gw.request('board.join', { board: this.board, name: this.name });
      } catch (e) {
        this.stats.joinErrors++;
        this.err('join', e);
        if (e.code === 'CLOSED') throw e;
        await sleep(jitter(Math.min(1000, 100 * 2 ** attempt)));
      }
    }
  }

  // One join at a time (the stream hooks and the edit loop share it); `forced` takes the
  // snapshot even in the same epoch (after HISTORY_GONE).
  recover(forced = false) {
    if (this.recovering && !forced) return this.recovering;
    const prev = this.recovering || Promise.resolve();
    const p = prev
      .catch(() => {})
      .then(async () => {
        this.ready = false;
        const snap = await this.joinRetry();
        this.applyJoin(snap, forced);
        this.ready = true;
      });
    this.recovering = p.finally(() => {
      if (this.recovering === q) this.recovering = null;
    });
    const q = this.recovering;
    return q;
  }

  applyJoin(snap, forced) {
    if (!forced && this.epoch === snap.epoch) {
      if (snap.offset < this.offset) this.stats.backwards++; // the board lost ops in the same epoch
      return; // resume from this.offset
    }
    if (this.epoch !== null) this.stats.reloads++;
    this.epoch = snap.epoch;
    this.offset = snap.offset;
    this.shapes = new Map((snap.shapes || []).map((s) => [s.id, { ...s }]));
    this.seg = { epoch: snap.epoch, start: snap.offset, seen: new Map(), ops: new Map() };
    this.segments.push(this.seg);
    // A stream still open on the old state would mix two histories: follow the new one.
    if (this.sub) {
      this.sub.unsubscribe();
      this.subscribe();
    }
  }

  subscribe() {
    const sub = this.gw.subscribe(
      'board.ops',
      { board: this.board, epoch: this.epoch, from: this.offset },
      {
        onNext: (item) => this.onOp(item),
        onError: (e) => this.onStreamError(e, sub),
        resubscribe: async (e) => {
          this.stats.resubscribes++;
          this.err('resubscribe', e);
          await this.recover();
          return { board: this.board, epoch: this.epoch, from: this.offset };
        },
      },
    );
    this.sub = sub;
  }

  async onStreamError(e, sub) {
    if (sub !== this.sub || closing) return;
    const gone = e.code === 'APPLICATION_ERROR' && e.message === 'HISTORY_GONE';
    if (gone) this.stats.historyGone++;
    else {
      this.stats.streamErrors++;
      this.err('stream', e);
      await sleep(jitter(200));
    }
    const before = this.epoch;
    try {
      await this.recover(gone);
    } catch (err) {
      if (!closing) this.err('recover', err);
      return;
    }
    if (gone && this.epoch === before) this.stats.sameEpochGone++;
    if (this.sub === sub && !sub.open) this.subscribe();
  }

  onOp(item) {
    const seg = this.seg;
    const { offset, op } = item || {};
    if (!Number.isInteger(offset) || !op || !op.shape) {
      this.err('op', new Error(`not an op: ${JSON.stringify(item).slice(0, 100)}`));
      return;
    }
    const times = (seg.seen.get(offset) || 0) + 1;
    seg.seen.set(offset, times);
    if (times > 1) {
      this.stats.duplicates++;
      return;
    }
    seg.ops.set(offset, `${op.kind} ${op.shape.id}`);
    if (offset <= this.offset) {
      this.stats.outOfOrder++;
      return;
    }
    this.offset = offset;
    const s = op.shape;
    switch (op.kind) {
      case 'add':
        this.shapes.set(s.id, { ...s });
        break;
      case 'move':
      case 'update': {
        const cur = this.shapes.get(s.id);
        if (cur) Object.assign(cur, s);
        else this.err('op', new Error(`${op.kind} of unknown shape ${s.id}`));
        break;
      }
      case 'delete':
        this.shapes.delete(s.id);
        break;
      default:
        this.err('op', new Error(`unknown kind ${op.kind}`));
    }
  }

  nextOp() {
    const own = [...this.shapes.keys()].filter((id) => id.startsWith(this.prefix) && !this.deletedOwn.has(id));
    const r = Math.random();
    const x = Math.round(Math.random() * 2000),
      y = Math.round(Math.random() * 1200);
    if (own.length < 3 || r < 0.15) {
      const id = `${this.prefix}${this.nextShape++}`;
      return { kind: 'add', shape: { id, x, y, text: `${this.name} ${id}` } };
    }
    const id = own[Math.floor(Math.random() * own.length)];
    if (own.length > 5 && r < 0.25) {
      this.deletedOwn.add(id); // whatever the answer: never touched again
      return { kind: 'delete', shape: { id } };
    }
    if (r < 0.65) return { kind: 'move', shape: { id, x, y } };
    return { kind: 'update', shape: { id, text: `t${Date.now() % 100000}`, color: r < 0.8 ? '#80deea' : '#ffd54f' } };
  }

  async editLoop() {
    while (!stopEditing) {
      await sleep(jitter(INTERVAL));
      if (stopEditing) break;
      if (!this.ready) continue;
      const op = this.nextOp();
      const epochSent = this.epoch;
      const sentAt = Date.now();
      try {
        const r = await this.gw.request('board.edit', { board: this.board, op });
        // The answer names the epoch its offset belongs to (an edit sent before an epoch
        // change may be committed in the new one, before this client hears of it).
        this.confirmed.push({ offset: r.offset, key: `${op.kind} ${op.shape.id}`, epochSent, epoch: r.epoch });
        if (faultAt && sentAt > faultAt && !this.okAfterFault++) this.recoveredAt = Date.now();
      } catch (e) {
        this.stats.editErrors++;
        this.err('edit', e);
        if (/not a member/.test(e.message)) this.recover();
      }
    }
  }
}

async function gatewayClients() {
  const out = {};
  for (const [name, port] of Object.entries(METRICS)) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(3000) });
      const m = /^rsocket_gateway_clients\{protocol="json"\} (\d+)/m.exec(await res.text());
      out[name] = m ? Number(m[1]) : null;
    } catch {
      out[name] = null; // gone (killed)
    }
  }
  return out;
}

async function heads(boards) {
  const checker = new GatewayClient({ urls: [URL_], WebSocket, requestTimeout: 5000, pingInterval: 0 });
  const h = {};
  try {
    for (const b of boards) {
      for (let attempt = 0; ; attempt++) {
        try {
          h[b] = await checker.request('board.join', { board: b, name: 'checker' });
          break;
        } catch (e) {
          if (attempt > 20) throw e;
          await sleep(200);
        }
      }
    }
  } finally {
    checker.close();
  }
  return h;
}

async function main() {
  const hard = setTimeout(() => {
    console.log('CHECK\tthe driver finished within 100 s\tyes\tno');
    process.exit(1);
  }, 100000);
  const sims = Array.from({ length: NCLIENTS }, (_, i) => new Sim(i));
  await Promise.all(sims.map((s) => s.start()));
  info(`${NCLIENTS} clients joined ${NBOARDS} boards and follow their ops`);
  const spread = await gatewayClients();
  info('clients per gateway:', JSON.stringify(spread));
  const named = Object.keys(spread);
  if (named.length) {
    check('the clients are spread over every gateway (each has some)', 'yes', named.every((g) => spread[g] > 0) ? 'yes' : JSON.stringify(spread));
    check('the gateways count every client', NCLIENTS, named.reduce((a, g) => a + (spread[g] || 0), 0));
  }
  const loops = sims.map((s) => s.editLoop());
  console.log('editing');
  await sleep(BEFORE);
  const epochsBefore = new Set(sims.map((s) => s.epoch));
  // Before anything breaks, nothing fails: every request and stream of the steady state works
  // (with several services, whichever one each request lands on).
  const troubleBefore = sims.reduce(
    (a, s) => a + s.stats.editErrors + s.stats.joinErrors + s.stats.streamErrors + s.stats.resubscribes + s.stats.disconnects + s.stats.historyGone,
    0,
  );
  const firstTrouble = [...new Set(sims.flatMap((s) => [...s.errors.keys()]))][0] || '';
  console.log('fault now');
  if (FAULT_FILE) {
    const until = Date.now() + 60000;
    while (!fs.existsSync(FAULT_FILE) && Date.now() < until) await sleep(50);
    if (!fs.existsSync(FAULT_FILE)) check('the script made its fault within 60 s', 'yes', 'no');
  }
  faultAt = Date.now();
  info('fault done');
  await sleep(AFTER);
  stopEditing = true;
  await Promise.all(loops);
  info('edits stopped');

  // Everyone reaches the board's head: a fresh join's offset (again, until it holds).
  const boards = [...new Set(sims.map((s) => s.board))];
  let h,
    behind = sims;
  const until = Date.now() + 20000;
  while (Date.now() < until) {
    await sleep(300);
    h = await heads(boards);
    behind = sims.filter((s) => !s.ready || s.epoch !== h[s.board].epoch || s.offset !== h[s.board].offset);
    if (!behind.length) break;
  }
  info('heads:', boards.map((b) => `${b}@${h[b].epoch}:${h[b].offset}`).join(' '));
  if (behind.length)
    info('behind:', behind.slice(0, 5).map((s) => `${s.name} ${s.board}@${s.epoch}:${s.offset} ready=${s.ready}`).join('; '));
  const after = await gatewayClients();
  info('clients per gateway at the end:', JSON.stringify(after));

  // ---- the assertions ----
  const n = sims.length;
  const count = (pred) => sims.filter(pred).length;
  check('failed requests, lost streams and disconnects before the fault', 0, troubleBefore ? `${troubleBefore} (first: ${firstTrouble})` : 0);
  check('clients at their board\'s head (epoch and offset of a fresh join)', n, n - behind.length);
  check('clients whose shapes equal the board\'s snapshot', n, count((s) => h[s.board] && canon(s.shapes.values()) === canon(h[s.board].shapes)));
  const shapeCounts = boards.map((b) => (h[b].shapes || []).length);
  check('the boards have shapes', 'yes', shapeCounts.every((c) => c > 0) ? 'yes' : shapeCounts.join(','));
  check('clients that saw an offset twice', 0, count((s) => s.stats.duplicates > 0));
  check('clients that saw offsets out of order', 0, count((s) => s.stats.outOfOrder > 0));
  // Each snapshot's segment: every offset after its start, up to the last one (the head for the
  // final epoch, the last one seen for an epoch Redis lost), seen exactly once.
  const gaps = [];
  for (const s of sims) {
    const final = h[s.board];
    s.segments.forEach((seg, k) => {
      const last = k === s.segments.length - 1 && seg.epoch === final.epoch ? final.offset : Math.max(seg.start, ...seg.seen.keys());
      for (let o = seg.start + 1; o <= last; o++)
        if (seg.seen.get(o) !== 1) {
          gaps.push(`${s.name} epoch ${seg.epoch} offset ${o} seen ${seg.seen.get(o) || 0} times (from ${seg.start} to ${last})`);
          break;
        }
      for (const o of seg.seen.keys())
        if (o <= seg.start || o > last) {
          gaps.push(`${s.name} epoch ${seg.epoch} offset ${o} outside ${seg.start}..${last}`);
          break;
        }
    });
  }
  check('every op offset seen exactly once by every client, per epoch (first problem)', 'none', gaps[0] || 'none');
  check('clients told HISTORY_GONE within an epoch (ops lost)', 0, count((s) => s.stats.sameEpochGone > 0));
  check('clients whose board lost ops within an epoch (offset went back)', 0, count((s) => s.stats.backwards > 0));

  // Every confirmed edit, at its offset, for every client of its board, in the epoch its answer
  // names.
  let placed = 0;
  const wrong = [];
  for (const s of sims)
    for (const c of s.confirmed) {
      if (!c.epoch) {
        wrong.push(`${s.name}'s ${c.key} at ${c.offset}: the answer names no epoch`);
        continue;
      }
      placed++;
      for (const o of sims) {
        if (o.board !== s.board) continue;
        const seg = o.segments.find((g) => g.epoch === c.epoch && g.start < c.offset && g.seen.has(c.offset));
        const covered = o.segments.some((g) => g.epoch === c.epoch && g.start < c.offset);
        if (!covered) continue; // o's snapshot of that epoch came after it
        const got = seg ? seg.ops.get(c.offset) : 'nothing';
        if (got !== c.key) wrong.push(`${s.name}'s ${c.key} at ${c.offset}: ${o.name} has ${got}`);
      }
    }
  const confirmedTotal = sims.reduce((a, s) => a + s.confirmed.length, 0);
  info(`${confirmedTotal} edits confirmed (${placed} placed in their epoch)`);
  check('edits confirmed', 'yes', confirmedTotal >= n ? 'yes' : confirmedTotal);
  check('every confirmed edit reached every client at its offset (first problem)', 'none', wrong[0] || 'none');
  check('clients with a confirmed edit after the fault (recovered)', n, count((s) => s.okAfterFault > 0));
  // How long the clients the fault touched took to edit again (an edit every INTERVAL/2 to
  // 1.5 x INTERVAL ms comes on top).
  const hit = (s) => s.stats.disconnects || s.stats.resubscribes || s.stats.reloads || s.stats.editErrors || s.stats.streamErrors;
  const rec = sims.filter((s) => s.recoveredAt && hit(s)).map((s) => s.recoveredAt - faultAt).sort((a, b) => a - b);
  if (rec.length)
    info(`the ${rec.length} clients the fault touched: first confirmed edit after it: median ${rec[rec.length >> 1]} ms, slowest ${rec[rec.length - 1]} ms (edits every ${INTERVAL / 2}-${INTERVAL * 1.5} ms)`);

  const sum = (k) => sims.reduce((a, s) => a + s.stats[k], 0);
  const tally = new Map();
  for (const s of sims) for (const [k, v] of s.errors) tally.set(k, (tally.get(k) || 0) + v);
  const stats = Object.keys(sims[0].stats).map((k) => `${k}=${sum(k)}`).join(' ');
  info('totals:', stats);
  for (const [k, v] of [...tally].sort((a, b) => b[1] - a[1]).slice(0, 12)) info(`  ${v} x ${k}`);

  if (MODE === 'link-cut') {
    check('link-cut: clients disconnected', 0, sum('disconnects'));
    check('link-cut: subscriptions lost (resubscribes)', 0, sum('resubscribes'));
    check('link-cut: failed edits, joins and streams', 0, sum('editErrors') + sum('joinErrors') + sum('streamErrors') + sum('historyGone'));
  } else if (MODE === 'gateway-kill') {
    const victims = spread[VICTIM];
    check(`gateway-kill: clients disconnected (those of ${VICTIM})`, victims, count((s) => s.stats.disconnects > 0));
    check('gateway-kill: and every one reconnected', count((s) => s.stats.disconnects > 0), count((s) => s.stats.reconnects > 0));
    const alive = Object.keys(after).filter((g) => after[g] !== null);
    const held = alive.reduce((a, g) => a + after[g], 0); // (the checker may still count)
    check('gateway-kill: the surviving gateways hold every client', 'yes', held >= n ? 'yes' : held);
  } else if (MODE === 'service-kill') {
    check('service-kill: some subscriptions were lost and resumed', 'yes', sum('resubscribes') > 0 ? 'yes' : 'no');
    check('service-kill: no client was disconnected', 0, sum('disconnects'));
  } else if (MODE === 'redis-restart') {
    check('redis-restart: clients saw errors while Redis was down', 'yes', sum('editErrors') + sum('streamErrors') + sum('joinErrors') > 0 ? 'yes' : 'no');
    if (EPOCH_CHANGE) {
      const finals = new Set(boards.map((b) => h[b].epoch));
      check('redis-restart: every board has a new epoch', 'yes', [...finals].every((e) => !epochsBefore.has(e)) ? 'yes' : 'no');
      check('redis-restart: clients that reloaded into it', n, count((s) => s.stats.reloads > 0 && !epochsBefore.has(s.epoch)));
    }
  }
  clearTimeout(hard);
  closing = true;
  for (const s of sims) s.gw.close();
  await sleep(200);
  process.exit(0);
}

main().catch((e) => {
  console.log(`CHECK\tthe driver ran without an exception\tyes\t${String(e && e.stack ? e.stack : e).replace(/\s+/g, ' ').slice(0, 400)}`);
  process.exit(1);
});
