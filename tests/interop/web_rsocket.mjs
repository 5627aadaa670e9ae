// rsocket-js 1.0.0-alpha.3 in headless Chromium (Debian's chromium, driven by playwright-core)
// against rsocket-gateway's /rsocket: the page browser/rsocket.html (its script bundled by
// test_gateway_rsocket_browser.sh into STATIC_DIR), served by the gateway itself with --static,
// speaks RSocket over the browser's WebSocket to gw_backend behind the route gb.*. Runs:
//   plain   every model, back-pressure, pushes, errors, cancels, 200 KiB, 250+250 concurrent
//   mtu64   the same with fragments of 64 bytes both ways (--rsocket-mtu 64)
//   jwt     the same behind --jwt-secret, the token in the SETUP; then a wrongly signed token
//           and none: SETUP refused
// Each page's results (window.results) become "ok"/"FAIL" lines here; a screenshot of each page
// goes to OUT_DIR. Then the gateway's /metrics: no stream left open, the rsocket clients counted.
// Usage: node web_rsocket.mjs BIN_DIR BACKEND STATIC_DIR OUT_DIR
import crypto from 'node:crypto';
import fs from 'node:fs';
import { chromium } from 'playwright-core';
import { start, stop, sleep } from './peers/procs.mjs';

const [bin, backendBin, staticDir, outDir] = process.argv.slice(2);
if (!outDir) {
  console.error('usage: node web_rsocket.mjs BIN_DIR BACKEND STATIC_DIR OUT_DIR');
  process.exit(2);
}
fs.mkdirSync(outDir, { recursive: true });
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const PAGE_MS = 180000;

let passed = 0;
let failed = 0;
const ok = (name, cond, why = '') => {
  if (cond) passed++;
  else failed++;
  console.log(cond ? `ok   ${name}` : `FAIL ${name}${why ? `: ${why}` : ''}`);
};

// ---- the system ----
const backend = await start(backendBin, ['tcp://127.0.0.1:0']);
const gateways = [];
async function gateway(...extra) {
  const g = await start(`${bin}/rsocket-gateway`, [
    '--listen', 'ws://127.0.0.1:0', '--route', `gb.*=${backend.uri}`, '--static', staticDir, ...extra,
  ]);
  gateways.push(g);
  g.base = g.uri.replace(/^ws:/, 'http:').replace(/\/?$/, '/');
  return g;
}
const secret = crypto.randomBytes(24).toString('hex');
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const token = (key, claims) => {
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${body}.${crypto.createHmac('sha256', key).update(body).digest('base64url')}`;
};
const exp = Math.floor(Date.now() / 1000) + 600;

// ---- the browser ----
const browser = await chromium.launch({
  executablePath: chromiumPath,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  timeout: 30000,
});

// Loads the page from gateway `g` with `query`, waits for its results, reports each check.
async function runPage(label, g, query, wantChecks) {
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 900 }, deviceScaleFactor: 1 });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && errors.push(`console: ${m.text()}`));
  let res = null;
  try {
    await page.goto(`${g.base}rsocket.html?${new URLSearchParams({ run: label, ...query })}`);
    await page.waitForFunction(() => window.results && window.results.done, null, { timeout: PAGE_MS, polling: 100 });
    res = await page.evaluate(() => window.results);
  } catch (e) {
    ok(`${label}: the page ran to its end`, false, `${e.message}\n--- gateway\n${g.log()}`);
  }
  await page.screenshot({ path: `${outDir}/rsocket-${label}.png`, fullPage: true });
  await ctx.close();
  if (!res) return;
  ok(`${label}: rsocket-js 1.0.0-alpha.3 in the page`,
    res.versions['rsocket-core'] === '1.0.0-alpha.3' && res.versions['rsocket-websocket-client'] === '1.0.0-alpha.3',
    JSON.stringify(res.versions));
  for (const c of res.checks) ok(`${label}: ${c.name} (${c.ms} ms)`, c.ok, c.detail);
  if (res.checks.every((c) => c.ok)) for (const c of res.checks) console.log(`       ${c.detail}`);
  ok(`${label}: the page ran ${wantChecks} checks`, res.checks.length === wantChecks, `${res.checks.length}`);
  ok(`${label}: no script errors`, errors.length === 0, errors.join('; '));
}

const FULL = 15; // the checks of a normal run (rsocket_page.js)
const plain = await gateway();
await runPage('plain', plain, {}, FULL);
const mtu = await gateway('--rsocket-mtu', '64');
await runPage('mtu64', mtu, { mtu: '64' }, FULL);
const jwt = await gateway('--jwt-secret', secret);
await runPage('jwt', jwt, { token: token(secret, { sub: 'ada', exp }), user: 'ada', streams: '50' }, FULL);
await runPage('jwt-bad', jwt, { token: token(`not-${secret}`, { sub: 'ada', exp }), 'expect-reject': 'token refused' }, 1);
await runPage('jwt-none', jwt, { 'expect-reject': 'authentication required' }, 1);

// ---- the gateways' view ----
async function metrics(g) {
  const r = await fetch(`${g.base}metrics`);
  const text = await r.text();
  const m = new Map();
  for (const line of text.split('\n')) {
    const [k, v] = line.split(' ');
    if (k && !k.startsWith('#')) m.set(k, Number(v));
  }
  return m;
}
for (const [label, g, clients] of [['plain', plain, 1], ['mtu64', mtu, 1], ['jwt', jwt, 3]]) {
  // The pages are closed: their connections go within a moment.
  let m;
  for (let t0 = Date.now(); Date.now() - t0 < 10000; await sleep(100)) {
    m = await metrics(g);
    if (m.get('rsocket_gateway_clients{protocol="rsocket"}') === 0) break;
  }
  const open = ['request_response', 'request_stream', 'request_channel'].map((x) => m.get(`rsocket_gateway_streams_open{model="${x}"}`));
  ok(`${label} gateway: no stream left open`, open.every((v) => v === 0), JSON.stringify(open));
  ok(`${label} gateway: ${clients} rsocket clients accepted, none left`,
    m.get('rsocket_gateway_clients_accepted_total{protocol="rsocket"}') === clients &&
      m.get('rsocket_gateway_clients{protocol="rsocket"}') === 0,
    `${m.get('rsocket_gateway_clients_accepted_total{protocol="rsocket"}')} accepted, ${m.get('rsocket_gateway_clients{protocol="rsocket"}')} now`);
  if (label !== 'jwt') {
    const sub = m.get('rsocket_gateway_requests_total{route="gb.*",model="sub"}');
    ok(`${label} gateway: the streams counted by route`, sub >= 250, `${sub}`);
  }
}

await browser.close();
// Each process stops on SIGTERM with status 0 and nothing from a sanitizer (ASan builds).
for (const [label, p] of [...gateways.map((g, i) => [`gateway ${i + 1}`, g]), ['gw_backend', backend]]) {
  await stop(p, 'SIGTERM');
  const bad = /(AddressSanitizer|LeakSanitizer|runtime error)[^\n]*/.exec(p.log());
  ok(`${label} stopped cleanly on SIGTERM`, p.proc.exitCode === 0 && !bad,
    `status ${p.proc.exitCode ?? p.proc.signalCode}${bad ? `, ${bad[0]}` : ''}`);
}
console.log(`screenshots: ${outDir}`);
console.log(`web_rsocket: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
