// The board page: sticky notes that everyone on the board edits together, live cursors, a
// presence list and a chat, on collab-service (docs/COLLAB.md) through rsocket-gateway's JSON
// protocol (docs/GATEWAY.md) with web/rsocket-gateway.js. No framework, no build step.
//
// State: `shapes` is the board as the service ordered it (the board.join snapshot plus every
// board.ops op applied in offset order); `overlay` holds this page's own edits until the op
// stream has caught up with them, so a note being dragged or typed in never jumps back to an
// older position while its edits travel. Edits of one note are sent one at a time (the next
// waits for the previous answer, merged), so they reach the service in the order they were made.
//
// Recovery: when a stream is lost (the service went away: UNAVAILABLE; the WebSocket went away:
// DISCONNECTED), the streams' resubscribe hooks share one recover(): join again (membership
// belongs to the gateway session), then resume board.ops from the offset this page has. The
// same epoch: the missed ops arrive and the banner says how many; a new epoch (the service
// restarted and forgot the board) or HISTORY_GONE: the snapshot replaces the board ("board
// reloaded"); when the restarted board is empty, this page puts back the notes it had.
//
// URL: #board=NAME (default demo); ?gw=ws://HOST:PORT/json to use another gateway than the
// page's own origin. Your name is kept in localStorage.

import { GatewayClient } from './rsocket-gateway.js';

// ---- configuration ------------------------------------------------------------------------

const NOTE_COLORS = ['#fff1a6', '#ffd3e2', '#c6f1d6', '#cde3ff', '#ffdcb8', '#e3d9ff'];
const NOTE_W = 180;
const NOTE_H = 140;
const SURFACE_MIN_W = 4000;
const SURFACE_MIN_H = 3000;
const CURSOR_EVERY_MS = 50;
const MOVE_EVERY_MS = 60;
const TEXT_DEBOUNCE_MS = 250;
const NAME_KEY = 'rsocket-board.name';
const COLOR_KEY = 'rsocket-board.color';
const RETRYABLE = new Set(['UNAVAILABLE', 'DISCONNECTED', 'TIMEOUT']);

function boardFromHash() {
  const h = new URLSearchParams(location.hash.slice(1));
  const b = (h.get('board') || 'demo').trim();
  return /^[A-Za-z0-9._-]{1,64}$/.test(b) ? b : b.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64) || 'demo';
}

function gatewayUrls() {
  const q = new URLSearchParams(location.search);
  const list = q.getAll('gw').flatMap((v) => v.split(',')).filter(Boolean);
  if (list.length) return list;
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return [`${proto}//${location.host}/json`];
}

const BOARD = boardFromHash();
window.addEventListener('hashchange', () => {
  if (boardFromHash() !== BOARD) location.reload();
});

// ---- DOM helpers --------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function initials(name) {
  const parts = String(name).trim().split(/\s+/).filter(Boolean);
  if (!parts.length) return '?';
  return (parts[0][0] + (parts.length > 1 ? parts[parts.length - 1][0] : '')).toUpperCase();
}
function avatar(m, cls = 'avatar') {
  const a = el('span', cls, initials(m.name));
  a.style.background = m.color || '#888';
  a.title = m.name;
  return a;
}
function toast(text, ms = 3500) {
  const t = el('div', 'toast', text);
  $('toasts').append(t);
  setTimeout(() => t.remove(), ms);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const backoff = (attempt) => {
  const d = Math.min(3000, 250 * 2 ** attempt);
  return d / 2 + Math.random() * (d / 2);
};
function errorText(e) {
  return e && e.message ? e.message : String(e);
}

// ---- state --------------------------------------------------------------------------------

const S = {
  me: null, // {id, name, color}
  name: null,
  epoch: null,
  offset: 0, // the last op applied
  shapes: new Map(), // id -> shape, as the service ordered it
  overlay: new Map(), // id -> {fields, deleted, added, inflight, queued, confirmAt, active}
  members: [],
  cursors: new Map(), // member id -> {node, x, y, timer}
  chatEpoch: null,
  chatOffset: null,
  ready: false, // joined and following the board
  catchUp: null, // {to, missed}: the banner once the op stream reaches `to`
  newColor: localStorage.getItem(COLOR_KEY) || NOTE_COLORS[0],
  banners: [], // every banner state shown, for tests and debugging
  opsSub: null,
  presenceSub: null,
  chatSub: null,
  recovering: null,
  unread: 0,
  chatSince: 0,
};

const gw = new GatewayClient({
  urls: gatewayUrls(),
  requestTimeout: 10000,
  pingInterval: 10000,
  pingTimeout: 5000,
  backoff: { initial: 250, max: 5000, factor: 2 },
  autoConnect: false,
});

// ---- the connection banner ----------------------------------------------------------------

let bannerTimer = null;
function banner(kind, text, holdMs = 0) {
  clearTimeout(bannerTimer);
  const b = $('conn');
  b.className = `conn conn-${kind}`;
  $('conn-text').textContent = text;
  S.banners.push({ kind, text, at: Date.now() });
  if (S.banners.length > 200) S.banners.shift();
  if (holdMs) bannerTimer = setTimeout(() => banner('live', 'Live'), holdMs);
}

gw.on('disconnected', () => {
  S.ready = false;
  banner('reconnecting', 'Reconnecting…');
  updateComposer();
});
gw.on('reconnecting', ({ attempt }) => {
  if (attempt > 1) banner('reconnecting', `Reconnecting… (attempt ${attempt})`);
});

// ---- joining and following the board ------------------------------------------------------

async function joinWithRetry() {
  for (let attempt = 0; ; attempt++) {
    try {
      return await gw.request('board.join', { board: BOARD, name: S.name });
    } catch (e) {
      if (!RETRYABLE.has(e.code)) throw e;
      if (attempt > 0 || e.code !== 'DISCONNECTED') banner('reconnecting', 'Reconnecting…');
      await sleep(backoff(attempt));
    }
  }
}

// Shared by every stream's resubscribe hook during one outage: one join, then each resumes.
function recover(reload = false) {
  S.ready = false;
  updateComposer();
  if (!S.recovering) {
    S.recovering = (async () => {
      try {
        const snap = await joinWithRetry();
        applyJoin(snap, reload);
      } finally {
        S.recovering = null;
      }
    })();
    S.recovering.catch((e) => fatal(e));
  }
  return S.recovering;
}

function fatal(e) {
  banner('error', `Cannot join: ${errorText(e)}`);
}

function applyJoin(snap, forceReload) {
  S.me = snap.you;
  setMembers(snap.members || []);
  renderMe();
  const first = S.epoch === null;
  if (first || forceReload || snap.epoch !== S.epoch) {
    const prevEpoch = S.epoch;
    const before = new Map(S.shapes);
    for (const [id, ov] of S.overlay) {
      if (ov.added && !ov.deleted) before.set(id, { ...(before.get(id) || {}), ...ov.fields, id });
    }
    loadSnapshot(snap);
    if (!first) {
      const epochChanged = snap.epoch !== prevEpoch;
      let restored = 0;
      // The service forgot the board (a restart of its in-memory engine): put back our notes.
      if (epochChanged && snap.offset === 0 && snap.shapes.length === 0) restored = restoreNotes(before);
      banner('reloaded', restored ? `Board reloaded — ${restored} notes restored` : 'Board reloaded', 6000);
      if (epochChanged) {
        for (const c of S.cursors.values()) c.node.remove(); // member ids start again
        S.cursors.clear();
        S.chatOffset = null;
        clearChat('The board was reloaded: earlier messages are gone.');
      }
    } else {
      banner('live', 'Live');
    }
    S.chatEpoch = snap.epoch;
  } else {
    const missed = snap.offset - S.offset;
    if (missed > 0) {
      S.catchUp = { to: snap.offset, missed };
      banner('reconnecting', `Catching up on ${missed} edits…`);
    } else {
      banner('back', 'Back — up to date', 4000);
    }
  }
  S.ready = true;
  updateComposer();
  flushEdits();
}

function loadSnapshot(snap) {
  S.epoch = snap.epoch;
  S.offset = snap.offset;
  S.catchUp = null;
  S.shapes.clear();
  for (const sh of snap.shapes || []) S.shapes.set(sh.id, { ...sh });
  // Our edits not yet confirmed: kept only for notes that still exist (or that we add).
  for (const [id, ov] of S.overlay) {
    if (!S.shapes.has(id) && !ov.added) S.overlay.delete(id);
  }
  renderAll();
}

function restoreNotes(before) {
  let n = 0;
  for (const [id, sh] of before) {
    if (S.shapes.has(id)) continue;
    const shape = { id, x: sh.x, y: sh.y, w: sh.w, h: sh.h, text: sh.text || '', color: sh.color };
    const ov = overlayOf(id);
    ov.added = true;
    ov.restore = true;
    ov.fields = { ...shape };
    queueEdit(id, 'add', shape);
    n++;
  }
  renderAll();
  return n;
}

function followOps() {
  S.opsSub = gw.subscribe('board.ops', { board: BOARD, epoch: S.epoch, from: S.offset }, {
    onNext: applyOp,
    resubscribe: async () => {
      await recover();
      return { board: BOARD, epoch: S.epoch, from: S.offset };
    },
    onError: async (e) => {
      // HISTORY_GONE: too far behind, or the board's epoch changed: a fresh snapshot.
      const gone = e.code === 'APPLICATION_ERROR' && e.message === 'HISTORY_GONE';
      if (!gone) {
        toast(`Board updates stopped: ${errorText(e)}; retrying`);
        await sleep(1000);
      }
      await recover(gone);
      followOps();
    },
  });
}

function followPresence() {
  S.presenceSub = gw.subscribe('board.presence', { board: BOARD }, {
    onNext: (m) => {
      if (m.members) setMembers(m.members);
      if (m.cursor) moveCursor(m.cursor);
    },
    resubscribe: async () => {
      await recover();
      return { board: BOARD };
    },
    onError: async (e) => {
      toast(`Presence stopped: ${errorText(e)}; retrying`);
      await sleep(1000);
      await recover();
      followPresence();
    },
  });
}

function followChat() {
  const feed = () =>
    S.chatOffset === null ? { board: BOARD } : { board: BOARD, epoch: S.chatEpoch, from: S.chatOffset };
  S.chatSince = performance.now(); // what arrives first is history: not counted as unread
  S.chatSub = gw.subscribe('chat.feed', feed(), {
    onNext: addMessage,
    resubscribe: async () => {
      await recover();
      return feed();
    },
    onError: async (e) => {
      if (e.code === 'APPLICATION_ERROR' && e.message === 'HISTORY_GONE') {
        S.chatOffset = null;
        clearChat('Some messages were missed while offline.');
      } else {
        await sleep(1000);
      }
      await recover();
      followChat();
    },
  });
}

async function start() {
  banner('connecting', 'Connecting…');
  gw.connect();
  try {
    const snap = await joinWithRetry();
    applyJoin(snap, false);
  } catch (e) {
    fatal(e);
    return;
  }
  followOps();
  followPresence();
  followChat();
}

// ---- ops ----------------------------------------------------------------------------------

function applyOp(item) {
  const { offset, op, by } = item;
  if (typeof offset !== 'number' || offset <= S.offset) return; // already applied
  S.offset = offset;
  const sh = op && op.shape;
  if (sh && typeof sh.id === 'string') {
    const cur = S.shapes.get(sh.id);
    switch (op.kind) {
      case 'add':
        S.shapes.set(sh.id, { ...sh });
        break;
      case 'move':
      case 'update':
        if (cur) Object.assign(cur, sh);
        break;
      case 'delete':
        S.shapes.delete(sh.id);
        break;
      default:
    }
    settle(sh.id);
    render(sh.id);
    if (by && S.me && by !== S.me.id && op.kind !== 'delete') flash(sh.id, by);
  }
  if (S.catchUp && offset >= S.catchUp.to) {
    const { missed } = S.catchUp;
    S.catchUp = null;
    banner('back', `Back — ${missed} missed edit${missed === 1 ? '' : 's'} applied`, 6000);
  }
}

// ---- local edits --------------------------------------------------------------------------

function overlayOf(id) {
  let ov = S.overlay.get(id);
  if (!ov) {
    ov = { fields: {}, deleted: false, added: false, inflight: false, queued: null, confirmAt: 0, active: false };
    S.overlay.set(id, ov);
  }
  return ov;
}

// Drops the overlay once nothing of ours is pending on the note and the ops have caught up.
function settle(id) {
  const ov = S.overlay.get(id);
  if (!ov || ov.inflight || ov.queued || ov.active) return;
  if (S.offset >= ov.confirmAt) {
    S.overlay.delete(id);
    render(id);
  }
}

// Records an edit in the overlay and queues it; kinds merge: delete wins, add absorbs updates.
function queueEdit(id, kind, fields) {
  const ov = overlayOf(id);
  if (kind === 'delete') ov.deleted = true;
  else Object.assign(ov.fields, fields);
  const q = ov.queued;
  if (!q) ov.queued = { kind, fields: { ...fields } };
  else if (kind === 'delete') ov.queued = { kind: 'delete', fields: {} };
  else if (q.kind !== 'delete') {
    Object.assign(q.fields, fields);
    if (q.kind !== 'add' && q.kind !== kind) q.kind = 'update';
  }
  render(id);
  pump(id);
}

function flushEdits() {
  for (const id of [...S.overlay.keys()]) pump(id);
}

async function pump(id) {
  const ov = S.overlay.get(id);
  if (!ov || ov.inflight || !ov.queued || !S.ready) return;
  const { kind, fields } = ov.queued;
  ov.queued = null;
  ov.inflight = true;
  const shape = { id, ...fields };
  try {
    const res = await gw.request('board.edit', { board: BOARD, op: { kind, shape } });
    ov.confirmAt = Math.max(ov.confirmAt, res.offset || 0);
  } catch (e) {
    const msg = errorText(e);
    if (RETRYABLE.has(e.code)) {
      // Not known to be applied: send it again after recovery (moves and updates are
      // idempotent; a repeated add or delete is answered as below).
      if (!ov.queued) ov.queued = { kind, fields };
      else if (ov.queued.kind !== 'delete') ov.queued = { kind, fields: { ...fields, ...ov.queued.fields } };
      await sleep(500); // the streams see the loss too and recover; no busy retry meanwhile
    } else if (/already exists/.test(msg) && kind === 'add') {
      // someone else put it back first (a restore) or a retried add: theirs stands
    } else if (/was deleted|no shape/.test(msg)) {
      if (kind !== 'delete') toast('That note was deleted by someone else');
      ov.queued = null;
      ov.active = false;
      ov.deleted = false;
      ov.fields = {};
      ov.added = false;
    } else {
      toast(`Edit refused: ${msg}`);
      ov.queued = null;
      ov.fields = {};
      ov.added = false;
      ov.deleted = false;
    }
  } finally {
    ov.inflight = false;
  }
  if (S.overlay.get(id) !== ov) return;
  if (ov.queued) pump(id);
  else settle(id);
  render(id);
}

function newId() {
  const r = crypto.getRandomValues(new Uint32Array(2));
  return `n${r[0].toString(36)}${r[1].toString(36)}`.slice(0, 14);
}

function addNote(x, y, focus = true) {
  const id = newId();
  const shape = {
    id,
    x: Math.max(0, Math.round(x)),
    y: Math.max(0, Math.round(y)),
    w: NOTE_W,
    h: NOTE_H,
    text: '',
    color: S.newColor,
  };
  const ov = overlayOf(id);
  ov.added = true;
  ov.fields = { ...shape };
  queueEdit(id, 'add', shape);
  if (focus) {
    drawNote(id); // now, not at the next frame: the caret goes in at once
    const node = noteNodes.get(id);
    if (node) startEditing(node, id);
  }
  return id;
}

// ---- rendering the board ------------------------------------------------------------------

const noteNodes = new Map(); // id -> element
const dirty = new Set();
let frame = 0;

function view(id) {
  const base = S.shapes.get(id);
  const ov = S.overlay.get(id);
  if (ov && ov.deleted) return null;
  if (!base && !(ov && ov.added)) return null;
  return { ...(base || {}), ...(ov ? ov.fields : {}), id };
}

function render(id) {
  dirty.add(id);
  if (!frame) frame = requestAnimationFrame(flush);
}

function renderAll() {
  for (const id of noteNodes.keys()) dirty.add(id);
  for (const id of S.shapes.keys()) dirty.add(id);
  for (const id of S.overlay.keys()) dirty.add(id);
  if (!frame) frame = requestAnimationFrame(flush);
}

function flush() {
  frame = 0;
  for (const id of dirty) drawNote(id);
  dirty.clear();
  let maxX = 0;
  let maxY = 0;
  for (const id of noteNodes.keys()) {
    const v = view(id);
    if (v) {
      maxX = Math.max(maxX, v.x + (v.w || NOTE_W));
      maxY = Math.max(maxY, v.y + (v.h || NOTE_H));
    }
  }
  surface.style.width = `${Math.max(SURFACE_MIN_W, maxX + 800)}px`;
  surface.style.height = `${Math.max(SURFACE_MIN_H, maxY + 600)}px`;
  $('empty').hidden = noteNodes.size > 0 || !S.ready;
}

const surface = $('surface');

function drawNote(id) {
  const v = view(id);
  let node = noteNodes.get(id);
  if (!v) {
    if (node) {
      node.remove();
      noteNodes.delete(id);
    }
    return;
  }
  if (!node) {
    node = makeNote(id);
    noteNodes.set(id, node);
    surface.insertBefore(node, $('cursors'));
  }
  node.style.left = `${v.x}px`;
  node.style.top = `${v.y}px`;
  node.style.width = `${v.w || NOTE_W}px`;
  node.style.height = `${v.h || NOTE_H}px`;
  node.style.setProperty('--note', v.color || NOTE_COLORS[0]);
  const ta = node.querySelector('textarea');
  const editing = document.activeElement === ta;
  if (!editing && ta.value !== (v.text || '')) ta.value = v.text || '';
  const i = NOTE_COLORS.indexOf(v.color);
  node.querySelector('.note-color').style.background = NOTE_COLORS[(i + 1) % NOTE_COLORS.length];
}

function makeNote(id) {
  const node = el('div', 'note');
  node.dataset.id = id;
  const bar = el('div', 'note-bar');
  const tools = el('div', 'note-tools');
  const sw = el('button', 'swatch note-color');
  sw.type = 'button';
  sw.title = 'Next color';
  sw.setAttribute('aria-label', 'Change the color');
  sw.addEventListener('click', (ev) => {
    ev.stopPropagation();
    const v = view(id);
    const i = NOTE_COLORS.indexOf(v && v.color);
    queueEdit(id, 'update', { color: NOTE_COLORS[(i + 1) % NOTE_COLORS.length] });
    settleSoon(id);
  });
  tools.append(sw);
  const del = el('button', 'note-del');
  del.type = 'button';
  del.title = 'Delete note';
  del.setAttribute('aria-label', 'Delete note');
  del.innerHTML =
    '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M5 7h14M10 7V5h4v2m-7 0 1 12h8l1-12" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"/></svg>';
  del.addEventListener('click', (ev) => {
    ev.stopPropagation();
    deleteNote(id);
  });
  tools.append(del);
  bar.append(el('span', 'note-by', ''), tools);
  const ta = el('textarea', 'note-text');
  ta.placeholder = 'Type something…';
  ta.spellcheck = false;
  ta.maxLength = 4000;
  ta.setAttribute('aria-label', 'Note text');
  node.append(bar, ta);
  wireNote(node, id, ta);
  return node;
}

function deleteNote(id) {
  const ov = overlayOf(id);
  ov.active = false;
  queueEdit(id, 'delete', {});
}

// A note a remote member just changed: a short outline in their color.
function flash(id, by) {
  const node = noteNodes.get(id);
  const m = S.members.find((x) => x.id === by);
  if (!node || !m) return;
  node.style.setProperty('--by', m.color);
  node.classList.add('flash');
  clearTimeout(node._flash);
  node._flash = setTimeout(() => node.classList.remove('flash'), 700);
}

function settleSoon(id) {
  const ov = S.overlay.get(id);
  if (ov) ov.active = false;
}

// ---- dragging and editing -----------------------------------------------------------------

function wireNote(node, id, ta) {
  let drag = null;
  node.addEventListener('pointerdown', (ev) => {
    if (ev.button !== 0 || ev.target.closest('button')) return;
    if (ev.target === ta && node.classList.contains('editing')) return; // selecting text
    ev.preventDefault();
    const v = view(id);
    if (!v) return;
    drag = { sx: ev.clientX, sy: ev.clientY, x0: v.x, y0: v.y, moved: false, last: 0, timer: 0 };
    node.setPointerCapture(ev.pointerId);
  });
  node.addEventListener('pointermove', (ev) => {
    if (!drag) return;
    const dx = ev.clientX - drag.sx;
    const dy = ev.clientY - drag.sy;
    if (!drag.moved && Math.hypot(dx, dy) < 4) return;
    if (!drag.moved) {
      drag.moved = true;
      node.classList.add('dragging');
      overlayOf(id).active = true;
    }
    const x = Math.max(0, Math.round(drag.x0 + dx));
    const y = Math.max(0, Math.round(drag.y0 + dy));
    const ov = overlayOf(id);
    ov.fields.x = x;
    ov.fields.y = y;
    drawNote(id);
    sendCursorFromEvent(ev);
    const now = performance.now();
    if (now - drag.last >= MOVE_EVERY_MS) {
      drag.last = now;
      queueEdit(id, 'move', { x, y });
    }
  });
  const end = (ev) => {
    if (!drag) return;
    const d = drag;
    drag = null;
    node.classList.remove('dragging');
    if (d.moved) {
      const v = view(id);
      const ov = overlayOf(id);
      ov.active = false;
      if (v) queueEdit(id, 'move', { x: v.x, y: v.y });
    } else if (ev.type === 'pointerup') {
      startEditing(node, id);
    }
  };
  node.addEventListener('pointerup', end);
  node.addEventListener('pointercancel', end);

  let textTimer = 0;
  let sent = null; // the text last queued for the service while editing
  const sendText = () => {
    clearTimeout(textTimer);
    textTimer = 0;
    if (!view(id) || sent === null || ta.value === sent) return;
    sent = ta.value;
    queueEdit(id, 'update', { text: ta.value });
  };
  ta.addEventListener('focus', () => {
    const v = view(id);
    sent = v ? v.text || '' : '';
  });
  ta.addEventListener('input', () => {
    overlayOf(id).fields.text = ta.value;
    clearTimeout(textTimer);
    textTimer = setTimeout(sendText, TEXT_DEBOUNCE_MS);
  });
  ta.addEventListener('blur', () => {
    sendText();
    sent = null;
    node.classList.remove('editing');
    const ov = S.overlay.get(id);
    if (ov) {
      ov.active = false;
      settle(id);
    }
    render(id);
  });
  ta.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') ta.blur();
  });
  node.addEventListener('dblclick', (ev) => ev.stopPropagation());
}

function startEditing(node, id) {
  const ta = node.querySelector('textarea');
  node.classList.add('editing');
  overlayOf(id).active = true;
  ta.focus();
  ta.setSelectionRange(ta.value.length, ta.value.length);
}

// ---- the surface: add, cursors ------------------------------------------------------------

const viewport = $('viewport');

function boardPoint(ev) {
  const r = surface.getBoundingClientRect();
  return { x: ev.clientX - r.left, y: ev.clientY - r.top };
}

surface.addEventListener('dblclick', (ev) => {
  if (ev.target !== surface) return;
  const p = boardPoint(ev);
  addNote(p.x - NOTE_W / 2, p.y - 24);
});

$('add-note').addEventListener('click', () => {
  // In view, near the top left, cascading so that several do not cover each other.
  const n = noteNodes.size % 8;
  addNote(viewport.scrollLeft + 60 + n * 28, viewport.scrollTop + 60 + n * 28);
});

let cursorLast = 0;
let cursorTimer = 0;
let cursorPending = null;
function sendCursor(p) {
  cursorPending = p;
  const now = performance.now();
  const wait = CURSOR_EVERY_MS - (now - cursorLast);
  if (wait <= 0) {
    cursorLast = now;
    if (S.ready) gw.fireAndForget('board.cursor', { board: BOARD, x: Math.round(p.x), y: Math.round(p.y) });
    cursorPending = null;
  } else if (!cursorTimer) {
    cursorTimer = setTimeout(() => {
      cursorTimer = 0;
      if (cursorPending) sendCursor(cursorPending);
    }, wait);
  }
}
function sendCursorFromEvent(ev) {
  sendCursor(boardPoint(ev));
}
surface.addEventListener('pointermove', sendCursorFromEvent);

const CURSOR_SVG =
  '<svg viewBox="0 0 18 18" aria-hidden="true"><path d="M2 1.5 16 8.2l-6.3 1.6L6.6 16z" fill="currentColor" stroke="#fff" stroke-width="1.4" stroke-linejoin="round"/></svg>';

function moveCursor({ id, x, y }) {
  if (S.me && id === S.me.id) return;
  const m = S.members.find((x2) => x2.id === id);
  if (!m) return;
  let c = S.cursors.get(id);
  if (!c) {
    const node = el('div', 'cursor');
    node.dataset.id = id;
    node.innerHTML = CURSOR_SVG;
    const label = el('span', 'cursor-label', m.name);
    node.append(label);
    $('cursors').append(node);
    c = { node, label, timer: 0 };
    S.cursors.set(id, c);
  }
  c.node.style.color = m.color;
  c.label.style.background = m.color;
  c.label.textContent = m.name;
  c.node.style.transform = `translate(${x}px, ${y}px)`;
  c.node.classList.remove('idle');
  clearTimeout(c.timer);
  c.timer = setTimeout(() => c.node.classList.add('idle'), 8000);
}

// ---- presence -----------------------------------------------------------------------------

function setMembers(list) {
  S.members = Array.isArray(list) ? list : [];
  const ids = new Set(S.members.map((m) => m.id));
  for (const [id, c] of S.cursors) {
    if (!ids.has(id)) {
      c.node.remove();
      clearTimeout(c.timer);
      S.cursors.delete(id);
    }
  }
  const ul = $('people');
  ul.replaceChildren();
  const sorted = [...S.members].sort((a, b) => (S.me && a.id === S.me.id ? -1 : S.me && b.id === S.me.id ? 1 : 0));
  for (const m of sorted) {
    const li = el('li', 'person');
    li.dataset.id = m.id;
    li.append(avatar(m), el('span', 'person-name', m.name));
    if (S.me && m.id === S.me.id) li.append(el('span', 'person-you', 'you'));
    ul.append(li);
  }
  $('people-count').textContent = String(S.members.length);
  const stack = $('avatars');
  stack.replaceChildren();
  const others = S.members.filter((m) => !S.me || m.id !== S.me.id);
  const shown = others.slice(0, 5);
  if (others.length > 5) stack.append(el('span', 'avatar more', `+${others.length - 5}`));
  for (const m of shown.reverse()) stack.append(avatar(m));
}

function renderMe() {
  $('me-name').textContent = S.name || '…';
  document.querySelector('.me-dot').style.background = S.me ? S.me.color : '';
}

// ---- chat ---------------------------------------------------------------------------------

const messages = $('messages');
function addMessage(m) {
  if (typeof m.offset === 'number') {
    if (S.chatOffset !== null && m.offset <= S.chatOffset) return;
    S.chatOffset = m.offset;
  }
  const atBottom = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 40;
  const li = el('li', 'msg');
  const head = el('div', 'msg-head');
  const name = el('span', 'msg-name', m.name || m.by || '?');
  const member = S.members.find((x) => x.id === m.by);
  if (member) name.style.color = member.color;
  const t = new Date(m.time || Date.now());
  head.append(name, el('span', 'msg-time', t.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })));
  li.append(head, el('div', 'msg-text', m.text || ''));
  messages.append(li);
  while (messages.children.length > 500) messages.firstChild.remove();
  if (atBottom || (S.me && m.by === S.me.id)) messages.scrollTop = messages.scrollHeight;
  if (document.body.classList.contains('side-open') || getComputedStyle($('side-toggle')).display === 'none') return;
  if (performance.now() - S.chatSince > 1500 && (!S.me || m.by !== S.me.id)) {
    S.unread++;
    $('unread').hidden = false;
    $('unread').textContent = String(S.unread);
  }
}

function clearChat(note) {
  messages.replaceChildren();
  if (note) messages.append(el('li', 'msg system', note));
}

function updateComposer() {
  const input = $('chat-input');
  input.placeholder = S.ready ? 'Message the board…' : 'Reconnecting…';
}

$('chat-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const input = $('chat-input');
  const text = input.value.trim();
  if (!text) return;
  input.value = '';
  try {
    if (!S.ready) await recover();
    await gw.request('chat.post', { board: BOARD, text });
  } catch (e) {
    toast(`Message not sent: ${errorText(e)}`);
    if (!input.value) input.value = text;
  }
});

// ---- name, board switching, side panel ----------------------------------------------------

const ADJ = ['Brave', 'Calm', 'Clever', 'Curious', 'Eager', 'Gentle', 'Happy', 'Lively', 'Lucky', 'Quick', 'Sunny', 'Witty'];
const ANIMAL = ['Otter', 'Falcon', 'Panda', 'Fox', 'Heron', 'Koala', 'Lynx', 'Owl', 'Puffin', 'Seal', 'Tiger', 'Wren'];
function randomName() {
  const r = crypto.getRandomValues(new Uint8Array(2));
  return `${ADJ[r[0] % ADJ.length]} ${ANIMAL[r[1] % ANIMAL.length]}`;
}

function cleanName(s) {
  // eslint-disable-next-line no-control-regex
  return String(s).replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, 40);
}

function askName(first) {
  return new Promise((resolve) => {
    const d = $('name-dialog');
    const input = $('name-input');
    $('name-title').textContent = first ? 'Welcome to the board' : 'Change your name';
    input.value = S.name || randomName();
    d.onclose = () => {
      const n = cleanName(input.value);
      resolve(n || S.name || randomName());
    };
    d.showModal();
    input.select();
  });
}

$('me').addEventListener('click', async () => {
  const n = await askName(false);
  if (n === S.name) return;
  S.name = n;
  localStorage.setItem(NAME_KEY, n);
  renderMe();
  try {
    const snap = await gw.request('board.join', { board: BOARD, name: n }); // renames
    S.me = snap.you;
    setMembers(snap.members || S.members);
    renderMe();
  } catch (e) {
    toast(`Could not rename: ${errorText(e)}`);
  }
});

$('board-name').textContent = BOARD;
document.title = `${BOARD} · Board`;
$('board-name').addEventListener('click', () => {
  const d = $('board-dialog');
  $('board-input').value = BOARD;
  d.onclose = () => {
    const b = $('board-input').value.trim();
    if (d.returnValue === 'ok' && b && b !== BOARD) location.hash = `board=${encodeURIComponent(b)}`;
  };
  d.showModal();
  $('board-input').select();
});

$('side-toggle').addEventListener('click', () => {
  document.body.classList.toggle('side-open');
  S.unread = 0;
  $('unread').hidden = true;
});

function renderPalette() {
  const p = $('palette');
  p.replaceChildren();
  for (const c of NOTE_COLORS) {
    const sw = el('button', 'swatch');
    sw.type = 'button';
    sw.style.background = c;
    sw.title = 'Color of new notes';
    sw.setAttribute('role', 'radio');
    sw.setAttribute('aria-checked', String(c === S.newColor));
    sw.addEventListener('click', () => {
      S.newColor = c;
      localStorage.setItem(COLOR_KEY, c);
      renderPalette();
    });
    p.append(sw);
  }
}

// Keyboard: Delete or Backspace removes the note being hovered when not typing.
let hovered = null;
surface.addEventListener('pointerover', (ev) => {
  const n = ev.target.closest && ev.target.closest('.note');
  hovered = n ? n.dataset.id : null;
});
document.addEventListener('keydown', (ev) => {
  if ((ev.key === 'Delete' || ev.key === 'Backspace') && hovered && document.activeElement === document.body) {
    deleteNote(hovered);
  }
});

// ---- for tests and the curious: window.board ---------------------------------------------

window.board = {
  state: S,
  client: gw,
  board: BOARD,
  // The notes as this page shows them, sorted by id.
  shapes() {
    return [...noteNodes.keys()]
      .map((id) => view(id))
      .filter(Boolean)
      .map(({ id, x, y, w, h, text, color }) => ({ id, x, y, w, h, text, color }))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
  },
  settled() {
    return S.ready && S.overlay.size === 0 && !S.catchUp;
  },
};

// ---- start --------------------------------------------------------------------------------

renderPalette();
(async () => {
  let name = cleanName(localStorage.getItem(NAME_KEY) || '');
  if (!name) {
    name = await askName(true);
    localStorage.setItem(NAME_KEY, name);
  }
  S.name = name;
  renderMe();
  start();
})();
