// The board page (web/) in headless Chromium driven by playwright-core, against the real
// system: collab-service behind rsocket-gateway --static web. Two pages (two browser contexts,
// two users) on one board: a note added in one appears in the other within 1 s; drag and edit
// likewise; presence and cursors show both users; chat; the service killed and restarted: both
// pages show the banner and converge to the same board. Screenshots of both pages go to
// OUT_DIR (build/e2e/). Usage: node web_e2e.mjs BIN_DIR WEB_DIR OUT_DIR
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { chromium } from 'playwright-core';
import { start, stop, restart, sleep, until, runner } from './peers/procs.mjs';

const [bin, webDir, outDir] = process.argv.slice(2);
if (!outDir) {
  console.error('usage: node web_e2e.mjs BIN_DIR WEB_DIR OUT_DIR');
  process.exit(2);
}
fs.mkdirSync(outDir, { recursive: true });
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const R = runner('web_e2e', 60000);

// ---- the system ----
let service = await start(`${bin}/collab-service`, ['--listen', 'tcp://127.0.0.1:0']);
const servicePort = service.port;
const gateway = await start(`${bin}/rsocket-gateway`, [
  '--listen', 'ws://127.0.0.1:0',
  '--route', `board.*=tcp://127.0.0.1:${servicePort}`,
  '--route', `chat.*=tcp://127.0.0.1:${servicePort}`,
  '--static', webDir,
]);
const base = gateway.uri.replace(/^ws:/, 'http:').replace(/\/?$/, '/');
const boardName = `e2e-${process.pid}`;

// ---- the browsers ----
const browser = await chromium.launch({
  executablePath: chromiumPath,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  timeout: 30000,
});
const errors = [];
async function openPage(name, viewport = { width: 1280, height: 800 }) {
  const ctx = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  await ctx.addInitScript((n) => localStorage.setItem('rsocket-board.name', n), name);
  const page = await ctx.newPage();
  page.on('pageerror', (e) => errors.push(`${name}: ${e.message}`));
  await page.goto(`${base}#board=${boardName}`);
  await page.waitForFunction(() => window.board && window.board.state.ready, null, { timeout: 15000 });
  return page;
}
const shapesOf = (page) => page.evaluate(() => window.board.shapes());
// The notes as the DOM shows them: position, size, text, colour, sorted by id.
const domNotes = (page) =>
  page.evaluate(() =>
    [...document.querySelectorAll('.note')]
      .map((n) => ({
        id: n.dataset.id,
        x: parseFloat(n.style.left),
        y: parseFloat(n.style.top),
        text: n.querySelector('textarea').value,
        color: n.style.getPropertyValue('--note'),
      }))
      .sort((a, b) => (a.id < b.id ? -1 : 1)),
  );
const noteByText = async (page, text) => (await domNotes(page)).find((n) => n.text === text);
const within = async (what, ms, fn) => {
  const t0 = Date.now();
  const v = await until(fn, what, ms, 10);
  return { v, ms: Date.now() - t0 };
};
// Poll limits: "within 1 s" as asked, with the poll itself measured from when the action ended.
const PROPAGATION_MS = 1000;

let ada;
let bob;
try {
  ada = await openPage('Ada Lovelace');
  bob = await openPage('Bob Kahn');
} catch (e) {
  console.log(`FAIL the pages did not open: ${e.stack}\n--- gateway\n${gateway.log()}\n--- service\n${service.log()}`);
  await browser.close();
  process.exit(1);
}

await R.run('presence: both pages list both users', async () => {
  for (const p of [ada, bob]) {
    await p.waitForFunction(
      () => [...document.querySelectorAll('#people .person-name')].map((n) => n.textContent).sort().join('|') === 'Ada Lovelace|Bob Kahn',
      null,
      { timeout: 5000 },
    );
  }
  assert.equal(await ada.textContent('#people-count'), '2');
});

await R.run('a note added in one page appears in the other within 1 s', async () => {
  await ada.mouse.dblclick(300, 260);
  await ada.keyboard.type('Ship the gateway');
  await ada.mouse.click(900, 650); // blur: the text goes out at once
  const t0 = Date.now();
  await until(async () => noteByText(bob, 'Ship the gateway'), "the note in Bob's page", 5000, 10);
  const ms = Date.now() - t0;
  assert.ok(ms <= PROPAGATION_MS, `took ${ms} ms`);
});

await R.run('a note added with a colour, and a second one from the other page', async () => {
  await bob.click('#palette .swatch:nth-child(4)'); // blue
  await bob.mouse.dblclick(640, 420);
  await bob.keyboard.type('Benchmark p99 < 20 ms');
  await bob.mouse.click(900, 700);
  await ada.click('#palette .swatch:nth-child(2)'); // pink
  await ada.mouse.dblclick(560, 200);
  await ada.keyboard.type('Write the docs');
  await ada.mouse.click(900, 700);
  const { ms } = await within('both notes in both pages', 5000, async () => {
    const [a, b] = [await domNotes(ada), await domNotes(bob)];
    return a.length === 3 && JSON.stringify(a) === JSON.stringify(b);
  });
  assert.ok(ms <= PROPAGATION_MS, `took ${ms} ms`);
  const blue = await noteByText(ada, 'Benchmark p99 < 20 ms');
  assert.equal(blue.color, '#cde3ff');
});

await R.run('drag: the other page sees the new position within 1 s', async () => {
  const before = await noteByText(ada, 'Ship the gateway');
  const box = await ada.locator(`.note[data-id="${before.id}"]`).boundingBox();
  await ada.mouse.move(box.x + 40, box.y + 70); // on the text: a note not being edited drags
  await ada.mouse.down();
  await ada.mouse.move(box.x + 70, box.y + 170, { steps: 8 });
  await ada.mouse.move(box.x + 100, box.y + 330, { steps: 8 });
  await ada.mouse.up();
  const moved = await noteByText(ada, 'Ship the gateway');
  assert.ok(Math.abs(moved.x - (before.x + 60)) <= 2 && Math.abs(moved.y - (before.y + 260)) <= 2, JSON.stringify(moved));
  const { ms } = await within("the move in Bob's page", 5000, async () => {
    const n = await noteByText(bob, 'Ship the gateway');
    return n && n.x === moved.x && n.y === moved.y;
  });
  assert.ok(ms <= PROPAGATION_MS, `took ${ms} ms`);
});

await R.run('edit: text typed in one page shows in the other within 1 s', async () => {
  const n = await noteByText(bob, 'Write the docs');
  await bob.click(`.note[data-id="${n.id}"] textarea`);
  await bob.keyboard.press('End');
  await bob.keyboard.type(' and the man page');
  await bob.mouse.click(900, 700);
  const { ms } = await within("the edit in Ada's page", 5000, async () => noteByText(ada, 'Write the docs and the man page'));
  assert.ok(ms <= PROPAGATION_MS, `took ${ms} ms`);
});

await R.run('delete: the note goes from both pages', async () => {
  await ada.mouse.dblclick(900, 560);
  await ada.keyboard.type('temporary');
  await ada.mouse.click(1000, 720);
  await until(async () => noteByText(bob, 'temporary'), 'the temporary note in Bob', 5000);
  const n = await noteByText(bob, 'temporary');
  await bob.hover(`.note[data-id="${n.id}"]`);
  await bob.click(`.note[data-id="${n.id}"] .note-del`);
  await until(async () => !(await noteByText(ada, 'temporary')), "the delete in Ada's page", 5000);
  assert.equal((await domNotes(bob)).length, 3);
});

await R.run('cursors: each page shows the other user\'s cursor with their name', async () => {
  await bob.mouse.move(700, 300);
  await bob.mouse.move(760, 340, { steps: 6 });
  await ada.mouse.move(420, 560);
  await ada.mouse.move(460, 600, { steps: 6 });
  await ada.waitForFunction(() => [...document.querySelectorAll('.cursor-label')].some((l) => l.textContent === 'Bob Kahn'), null, { timeout: 5000 });
  await bob.waitForFunction(() => [...document.querySelectorAll('.cursor-label')].some((l) => l.textContent === 'Ada Lovelace'), null, { timeout: 5000 });
});

await R.run('chat: a line posted in one page shows in both', async () => {
  await bob.fill('#chat-input', 'Hi Ada, I moved the benchmark note');
  await bob.press('#chat-input', 'Enter');
  await ada.fill('#chat-input', 'Thanks Bob! Docs next.');
  await ada.press('#chat-input', 'Enter');
  for (const p of [ada, bob]) {
    await p.waitForFunction(() => document.querySelectorAll('#messages .msg-text').length >= 2, null, { timeout: 5000 });
  }
  assert.deepEqual(
    await ada.$$eval('#messages .msg-text', (ns) => ns.map((n) => n.textContent)),
    ['Hi Ada, I moved the benchmark note', 'Thanks Bob! Docs next.'],
  );
});

// Screenshots while everything is live, the cursors still on the board.
await bob.mouse.move(720, 330);
await ada.mouse.move(450, 590);
await sleep(300);
await ada.screenshot({ path: `${outDir}/board-ada.png` });
await bob.screenshot({ path: `${outDir}/board-bob.png` });

await R.run('the service killed and restarted: both pages show the banner and converge', async () => {
  const before = await shapesOf(ada);
  for (const p of [ada, bob]) await p.evaluate(() => (window.board.state.banners.length = 0));
  await stop(service);
  for (const p of [ada, bob]) {
    await p.waitForFunction(() => window.board.state.banners.some((b) => b.kind === 'reconnecting'), null, { timeout: 10000 });
  }
  await ada.screenshot({ path: `${outDir}/reconnecting-ada.png` });
  service = await restart(`${bin}/collab-service`, ['--listen', `tcp://127.0.0.1:${servicePort}`]);
  for (const p of [ada, bob]) {
    await p.waitForFunction(() => window.board.state.banners.some((b) => b.kind === 'reloaded'), null, { timeout: 20000 });
  }
  await ada.screenshot({ path: `${outDir}/reloaded-ada.png` });
  // Both converge to the same board, the notes they had put back.
  await until(async () => {
    const [a, b] = [await shapesOf(ada), await shapesOf(bob)];
    const [da, db] = [await domNotes(ada), await domNotes(bob)];
    return (
      (await ada.evaluate(() => window.board.settled())) &&
      (await bob.evaluate(() => window.board.settled())) &&
      JSON.stringify(a) === JSON.stringify(b) &&
      JSON.stringify(da) === JSON.stringify(db)
    );
  }, 'both pages showing the same board', 20000, 50);
  assert.deepEqual(await shapesOf(ada), before);
  // And editing works again across the pages.
  await bob.mouse.dblclick(160, 690);
  await bob.keyboard.type('after the restart');
  await bob.mouse.click(900, 700);
  await until(async () => noteByText(ada, 'after the restart'), 'a new note after the restart', 5000);
  await until(async () => {
    const people = await ada.$$eval('#people .person-name', (ns) => ns.map((n) => n.textContent).sort());
    return people.join('|') === 'Ada Lovelace|Bob Kahn';
  }, 'both users present again', 10000);
});

await R.run('a narrow window: the side panel is a drawer', async () => {
  const phone = await openPage('Carol Shaw', { width: 390, height: 780 });
  assert.equal(await phone.isVisible('#side-toggle'), true);
  await until(async () => (await domNotes(phone)).length === 4, 'the notes on the phone', 5000);
  await phone.screenshot({ path: `${outDir}/board-narrow.png` });
  await phone.click('#side-toggle');
  await sleep(300);
  await phone.screenshot({ path: `${outDir}/board-narrow-drawer.png` });
  await phone.context().close();
});

await ada.screenshot({ path: `${outDir}/board-ada-after.png` });
await bob.screenshot({ path: `${outDir}/board-bob-after.png` });

await R.run('no script errors in the pages', () => {
  assert.deepEqual(errors, []);
});

await browser.close();
await stop(gateway, 'SIGTERM');
await stop(service, 'SIGTERM');
console.log(`screenshots: ${outDir}`);
process.exit(R.summary() ? 0 : 1);
