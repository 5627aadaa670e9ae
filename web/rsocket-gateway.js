// rsocket-gateway.js: a dependency-free client for rsocket-gateway's JSON protocol
// (docs/GATEWAY.md). An ES module for browsers and node >= 18 (node needs a WebSocket
// implementation: pass `WebSocket` from the npm package `ws`, or use node 22's global one).
// Full documentation: docs/JS-CLIENT.md.
//
//   import { GatewayClient } from './rsocket-gateway.js';
//   const gw = new GatewayClient({ urls: ['ws://a:8080', 'ws://b:8080'] });
//   gw.on('connected', ({ url }) => ...);        // also 'disconnected', 'reconnecting',
//                                                 // 'protocolError'
//   const answer = await gw.request('rooms.post', { text: 'hi' });     // rejects with a
//                                                 // GatewayError { code, message }
//   const sub = gw.subscribe('rooms.feed', { from: 0 }, {
//     onNext: (item) => ..., onError: (err) => ..., onComplete: () => ...,
//     n: 16,                                     // optional: client-managed credit
//     resubscribe: (why) => ({ from: lastOffset + 1 }),  // resume after a loss
//   });
//   sub.more(16); sub.unsubscribe();
//   for await (const item of gw.subscribe('rooms.feed', {})) { ... }   // or iterate
//   gw.fireAndForget('rooms.cursor', { x, y });  // true when sent, false when offline
//   const ch = gw.channel('echo', first, { onNext }); ch.send(x); ch.done();
//   const rttMs = await gw.ping();
//   gw.close();
//
// Options of `new GatewayClient(options)` (all but `urls` optional):
//   urls            a URL or a list of them; tried in turn, starting with the last one that
//                   worked
//   WebSocket       the WebSocket constructor (default: globalThis.WebSocket)
//   requestTimeout  ms before request() rejects with TIMEOUT (default 30000; 0: never)
//   connectTimeout  ms for one connection attempt (default 5000)
//   backoff         { initial: 200, max: 10000, factor: 2 } ms: the delay before attempt k
//                   is a random value in [d/2, d] with d = min(max, initial * factor^k)
//   pingInterval    ms between keepalive pings while connected (default 15000; 0: none);
//                   no pong within pingTimeout (default 10000) drops the connection
//   autoConnect     connect at once (default true); else call connect()
//
// Error codes: the gateway's (BAD_REQUEST, NO_ROUTE, UNAVAILABLE, TOO_MANY_STREAMS, TIMEOUT)
// and the backend's (APPLICATION_ERROR, REJECTED, CANCELED, INVALID), plus the client's own:
// DISCONNECTED (the connection was lost with the request in flight), TIMEOUT (requestTimeout
// or a ping's timeout), CLOSED (close() was called).
//
// Subscriptions with `resubscribe` survive UNAVAILABLE (the backend was lost: retried with
// backoff) and DISCONNECTED (re-opened as soon as the client is connected again): the hook
// gets the GatewayError and returns the data to subscribe with, e.g. the next offset, or a
// Promise of it (e.g. after joining again); `true` re-sends the original data. onError is called only for other errors (or when the hook
// throws). Requests are never retried by the client: they may have had an effect.

export class GatewayError extends Error {
  constructor(code, message) {
    super(message || code);
    this.name = 'GatewayError';
    this.code = code; // e.g. 'UNAVAILABLE'; the message is the gateway's or backend's text
  }
}

// The codes after which a subscription with `resubscribe` is retried.
const RETRYABLE = new Set(['UNAVAILABLE', 'DISCONNECTED']);

const MAX_N = 2147483647;

function jittered(backoff, attempt) {
  const d = Math.min(backoff.max, backoff.initial * Math.pow(backoff.factor, attempt));
  return d / 2 + Math.random() * (d / 2);
}

function toError(err) {
  if (err && typeof err === 'object')
    return new GatewayError(String(err.code || 'UNKNOWN'), String(err.message || ''));
  return new GatewayError('UNKNOWN', '');
}

// A subscription or channel: callbacks, or async iteration over a queue.
class Stream {
  constructor(client, kind, route, data, opts) {
    this.client = client;
    this.kind = kind; // 'sub' | 'chan'
    this.route = route;
    this.data = data;
    this.opts = opts;
    this.id = null; // the wire id while open on the current connection
    this.closed = false;
    this.managed = opts.n === undefined; // gateway-managed credit
    this.credit = this.managed ? 0 : opts.n; // client-managed: credit not yet consumed
    this.received = 0;
    this.retries = 0;
    this.retryTimer = null;
    this.queue = [];
    this.waiters = [];
    this.final = null; // {done:true} or {error}
    this.iterating = false;
    if (!this.managed && !(Number.isInteger(opts.n) && opts.n >= 1 && opts.n <= MAX_N))
      throw new RangeError('n must be an integer from 1 to 2147483647');
    client._live.add(this);
  }

  // Public API -----------------------------------------------------------------------------

  /** Asks for n more items (only for a subscribe()/channel() opened with `n`). */
  more(n) {
    if (this.managed) throw new Error('more() needs a subscription opened with n');
    if (!(Number.isInteger(n) && n >= 1 && n <= MAX_N))
      throw new RangeError('n must be an integer from 1 to 2147483647');
    if (this.closed) return;
    this.credit = Math.min(MAX_N, this.credit + n);
    if (this.id !== null) this.client._send({ type: 'more', id: this.id, n });
    else this.client._openStream(this); // was waiting for credit to re-open
  }

  /** Cancels the subscription or channel; no callback is called after it. */
  unsubscribe() {
    if (this.closed) return;
    if (this.id !== null) this.client._send({ type: 'unsub', id: this.id });
    this._finish(null, true);
  }

  /** Channel only: the next element upstream. Returns false when not connected. */
  send(data) {
    if (this.kind !== 'chan') throw new Error('send() is for channels');
    if (this.closed || this.id === null) return false;
    return this.client._send({ type: 'send', id: this.id, data: data === undefined ? null : data });
  }

  /** Channel only: completes the upstream side. */
  done() {
    if (this.kind !== 'chan') throw new Error('done() is for channels');
    if (this.closed || this.id === null) return false;
    return this.client._send({ type: 'done', id: this.id });
  }

  get open() {
    return !this.closed;
  }

  [Symbol.asyncIterator]() {
    this.iterating = true;
    return {
      next: () => {
        if (this.queue.length) {
          const value = this.queue.shift();
          this._replenish();
          return Promise.resolve({ value, done: false });
        }
        if (this.final) {
          if (this.final.error) {
            const e = this.final.error;
            this.final = { done: true };
            return Promise.reject(e);
          }
          return Promise.resolve({ value: undefined, done: true });
        }
        this._replenish();
        return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
      },
      return: () => {
        this.unsubscribe();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  // Internal -------------------------------------------------------------------------------

  // An iterating consumer with client-managed credit asks for another batch of n at half.
  _replenish() {
    if (!this.iterating || this.managed || this.closed) return;
    const n = this.opts.n;
    if (this.credit + this.queue.length <= n / 2) this.more(n - this.credit);
  }

  _next(data) {
    if (this.closed) return;
    this.received++;
    this.retries = 0;
    if (!this.managed && this.credit > 0) this.credit--;
    if (this.opts.onNext) {
      try {
        this.opts.onNext(data, this);
      } catch (e) {
        this.client._report(e);
      }
    } else if (this.waiters.length) {
      this.waiters.shift().resolve({ value: data, done: false });
    } else {
      this.queue.push(data);
    }
  }

  // The wire stream ended: completion (error null) or an error.
  _ended(error) {
    this.id = null;
    if (this.closed) return;
    if (error && RETRYABLE.has(error.code) && this.opts.resubscribe) {
      let next;
      try {
        next = typeof this.opts.resubscribe === 'function' ? this.opts.resubscribe(error, this) : this.data;
      } catch (e) {
        this._finish(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      if (next && typeof next.then === 'function') {
        // An async hook (e.g. one that joins again first): re-open once it resolves.
        this.resuming = true;
        next.then(
          (data) => {
            this.resuming = false;
            this._reopen(error, data);
          },
          (e) => {
            this.resuming = false;
            this._finish(e instanceof Error ? e : new Error(String(e)));
          },
        );
        return;
      }
      this._reopen(error, next);
      return;
    }
    this._finish(error);
  }

  _reopen(error, next) {
    if (this.closed) return; // the hook unsubscribed
    if (next !== undefined && next !== true) this.data = next;
    if (error.code === 'DISCONNECTED') {
      this.client._openStream(this); // at once if connected again, else on the next connection
    } else {
      const delay = jittered(this.client.backoff, this.retries++);
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        if (!this.closed) this.client._openStream(this);
      }, delay);
    }
  }

  _finish(error, cancelled = false) {
    if (this.closed) return;
    this.closed = true;
    this.client._live.delete(this);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.client._pendingStreams.delete(this);
    if (this.id !== null) this.client._streams.delete(this.id);
    this.id = null;
    if (!cancelled) {
      const cb = error ? this.opts.onError : this.opts.onComplete;
      if (cb) {
        try {
          error ? cb(error, this) : cb(this);
        } catch (e) {
          this.client._report(e);
        }
      } else if (error && !this.iterating) {
        this.client._report(error);
      }
    }
    this.final = error && !cancelled ? { error } : { done: true };
    for (const w of this.waiters.splice(0)) {
      if (this.final.error) {
        w.reject(this.final.error);
        this.final = { done: true };
      } else w.resolve({ value: undefined, done: true });
    }
  }
}

export class GatewayClient {
  constructor(options = {}) {
    const urls = Array.isArray(options.urls) ? options.urls : [options.urls || options.url];
    if (!urls.length || urls.some((u) => typeof u !== 'string' || !u))
      throw new TypeError('GatewayClient: urls must be a URL or a non-empty list of URLs');
    for (const u of urls) {
      let parsed;
      try {
        parsed = new URL(u);
      } catch {
        throw new TypeError(`GatewayClient: not a URL: ${u}`);
      }
      if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:')
        throw new TypeError(`GatewayClient: not a ws:// or wss:// URL: ${u}`);
    }
    this.urls = urls.slice();
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    if (typeof this.WebSocket !== 'function')
      throw new TypeError('GatewayClient: no WebSocket; pass { WebSocket } (e.g. from the ws package)');
    this.requestTimeout = options.requestTimeout ?? 30000;
    this.connectTimeout = options.connectTimeout ?? 5000;
    this.backoff = { initial: 200, max: 10000, factor: 2, ...(options.backoff || {}) };
    this.pingInterval = options.pingInterval ?? 15000;
    this.pingTimeout = options.pingTimeout ?? 10000;

    this.state = 'idle'; // idle | connecting | open | reconnecting | closed
    this.url = null; // the URL of the current (or last) connection
    this._ws = null;
    this._urlIndex = 0;
    this._attempt = 0;
    this._openedAt = 0;
    this._connections = 0;
    this._timer = null;
    this._pingTimer = null;
    this._nextId = 1;
    this._requests = new Map(); // id -> {resolve, reject, timer}
    this._queued = []; // requests waiting for a connection: {msg, entry}
    this._streams = new Map(); // id -> Stream
    this._pendingStreams = new Set(); // Streams to open on the next connection
    this._live = new Set(); // every Stream not yet finished (open, pending, retrying)
    this._listeners = new Map();
    if (options.autoConnect !== false) this.connect();
  }

  // Events ----------------------------------------------------------------------------------

  /** Adds a listener; returns a function that removes it. */
  on(event, fn) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(fn);
    return () => this.off(event, fn);
  }

  off(event, fn) {
    this._listeners.get(event)?.delete(fn);
  }

  _emit(event, detail) {
    for (const fn of [...(this._listeners.get(event) || [])]) {
      try {
        fn(detail);
      } catch (e) {
        if (event !== 'error') this._report(e);
      }
    }
  }

  _report(e) {
    if (this._listeners.get('error')?.size) this._emit('error', e);
    else setTimeout(() => { throw e; }); // surfaces like any uncaught error
  }

  // Connection ------------------------------------------------------------------------------

  get connected() {
    return this.state === 'open';
  }

  connect() {
    if (this.state === 'closed') throw new Error('GatewayClient: closed');
    if (this._ws || this._timer) return;
    this._dial();
  }

  /** Closes the connection for good: pending requests reject with CLOSED, streams end. */
  close() {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this._timer);
    this._timer = null;
    this._stopPing();
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      this._detach(ws);
      try {
        ws.close(1000);
      } catch {
        /* already closing */
      }
    }
    const err = new GatewayError('CLOSED', 'the client was closed');
    for (const [, r] of this._requests) this._settle(r, err);
    this._requests.clear();
    for (const q of this._queued.splice(0)) this._settle(q.entry, err);
    for (const s of [...this._live]) s._finish(err);
    this._streams.clear();
    this._pendingStreams.clear();
  }

  _dial() {
    this._timer = null;
    const url = this.urls[this._urlIndex % this.urls.length];
    this.state = this._connections ? 'reconnecting' : 'connecting';
    let ws;
    try {
      ws = new this.WebSocket(url);
    } catch (e) {
      this._failed(url, 0, String(e && e.message), false);
      return;
    }
    this._ws = ws;
    let opened = false;
    const timeout = setTimeout(() => {
      if (!opened && this._ws === ws) {
        this._detach(ws);
        try {
          ws.close();
        } catch {
          /* not open yet */
        }
        this._ws = null;
        this._failed(url, 0, 'connect timeout', false);
      }
    }, this.connectTimeout);
    ws.onopen = () => {
      clearTimeout(timeout);
      opened = true;
      this._opened(ws, url);
    };
    ws.onmessage = (ev) => this._message(typeof ev.data === 'string' ? ev.data : String(ev.data));
    ws.onerror = () => {}; // onclose follows with the code
    ws.onclose = (ev) => {
      clearTimeout(timeout);
      if (this._ws !== ws) return;
      this._ws = null;
      this._failed(url, ev.code, ev.reason, opened);
    };
  }

  _detach(ws) {
    ws.onopen = ws.onmessage = ws.onclose = null;
    ws.onerror = () => {};
  }

  _opened(ws, url) {
    const reconnect = this._connections > 0;
    this._connections++;
    this.state = 'open';
    this.url = url;
    this._openedAt = Date.now();
    this._startPing();
    this._emit('connected', { url, reconnect, attempt: this._attempt });
    // Streams that were open or waiting, then queued requests, in order.
    const pending = [...this._pendingStreams];
    this._pendingStreams.clear();
    for (const s of pending) if (!s.closed) this._openStream(s);
    for (const q of this._queued.splice(0)) {
      if (q.entry.done) continue;
      this._requests.set(q.msg.id, q.entry);
      this._send(q.msg);
    }
  }

  // A connection attempt failed or an open connection was lost.
  _failed(url, code, reason, wasOpen) {
    this._stopPing();
    if (this.state !== 'closed') this.state = 'reconnecting'; // before any callback runs
    if (wasOpen) {
      this._emit('disconnected', { url, code, reason });
      // Requests in flight may or may not have been processed: they reject.
      const err = new GatewayError('DISCONNECTED', `the connection to ${url} was lost`);
      for (const [, r] of this._requests) {
        if (r.fnf) clearTimeout(r.timer); // sent: nothing more will come back
        else this._settle(r, err);
      }
      this._requests.clear();
      const streams = [...this._streams.values()];
      this._streams.clear();
      for (const s of streams) s._ended(err);
      // A connection that lived a while resets the backoff; one that dies at once does not.
      if (Date.now() - this._openedAt > 5000) this._attempt = 0;
    } else {
      this._urlIndex++; // next URL
    }
    if (this.state === 'closed') return;
    const delay = jittered(this.backoff, this._attempt++);
    const next = this.urls[this._urlIndex % this.urls.length];
    this._emit('reconnecting', { attempt: this._attempt, delay, url: next, code, reason });
    this._timer = setTimeout(() => this._dial(), delay);
  }

  _startPing() {
    if (!this.pingInterval) return;
    this._pingTimer = setInterval(() => {
      this.ping({ timeout: this.pingTimeout }).catch((e) => {
        if (e.code === 'TIMEOUT' && this._ws && this.state === 'open') {
          try {
            this._ws.close(4000, 'ping timeout');
          } catch {
            /* closing anyway */
          }
        }
      });
    }, this.pingInterval);
  }

  _stopPing() {
    clearInterval(this._pingTimer);
    this._pingTimer = null;
  }

  _send(msg) {
    if (!this._ws || this.state !== 'open') return false;
    this._ws.send(JSON.stringify(msg));
    return true;
  }

  _id() {
    let id = this._nextId;
    while (this._requests.has(id) || this._streams.has(id)) id++;
    this._nextId = id + 1 > Number.MAX_SAFE_INTEGER ? 1 : id + 1;
    return id;
  }

  _settle(entry, error, value) {
    if (entry.done) return;
    entry.done = true;
    clearTimeout(entry.timer);
    error ? entry.reject(error) : entry.resolve(value);
  }

  _message(text) {
    let m;
    try {
      m = JSON.parse(text);
    } catch {
      return;
    }
    if (!m || typeof m !== 'object') return;
    const id = m.id;
    switch (m.type) {
      case 'cfm':
      case 'pong': {
        const r = this._requests.get(id);
        if (!r) return;
        this._requests.delete(id);
        this._settle(r, null, m.type === 'cfm' ? m.data ?? null : undefined);
        return;
      }
      case 'ind': {
        const s = this._streams.get(id);
        if (s) s._next(m.data === undefined ? (m.data_b64 !== undefined ? { data_b64: m.data_b64 } : null) : m.data);
        return;
      }
      case 'end': {
        const s = this._streams.get(id);
        if (s) {
          this._streams.delete(id);
          s._ended(null);
        }
        return;
      }
      case 'rej': {
        const err = toError(m.error);
        if (id === null || id === undefined) {
          this._emit('protocolError', err);
          return;
        }
        const r = this._requests.get(id);
        if (r) {
          this._requests.delete(id);
          this._settle(r, err);
          return;
        }
        const s = this._streams.get(id);
        if (s) {
          this._streams.delete(id);
          s._ended(err);
        }
        return;
      }
      default:
    }
  }

  _openStream(s) {
    if (s.closed || s.id !== null || s.resuming || s.retryTimer) return; // (the hook or timer re-opens)
    if (!s.managed && s.credit <= 0) return; // re-opened by the next more()
    if (this.state !== 'open') {
      this._pendingStreams.add(s);
      return;
    }
    const id = this._id();
    s.id = id;
    this._streams.set(id, s);
    const msg = { type: s.kind, id, route: s.route, data: s.data === undefined ? null : s.data };
    if (!s.managed) msg.n = s.credit;
    this._send(msg);
  }

  // Calls -----------------------------------------------------------------------------------

  _call(msg, timeout, what) {
    return new Promise((resolve, reject) => {
      if (this.state === 'closed') {
        reject(new GatewayError('CLOSED', 'the client was closed'));
        return;
      }
      const entry = { resolve, reject, done: false, timer: null };
      msg.id = this._id();
      if (timeout > 0) {
        entry.timer = setTimeout(() => {
          this._requests.delete(msg.id);
          this._settle(entry, new GatewayError('TIMEOUT', `no answer to ${what} within ${timeout} ms`));
        }, timeout);
      }
      if (this.state === 'open') {
        this._requests.set(msg.id, entry);
        this._send(msg);
      } else {
        this._queued.push({ msg, entry });
      }
    });
  }

  /**
   * Request-response. Resolves with the response data; rejects with a GatewayError. Waits for
   * a connection (within the timeout) when there is none.
   */
  request(route, data = null, { timeout = this.requestTimeout } = {}) {
    return this._call({ type: 'req', id: 0, route, data }, timeout, route);
  }

  /** Resolves with the round trip time in ms. */
  ping({ timeout = this.pingTimeout } = {}) {
    const t0 = Date.now();
    return this._call({ type: 'ping', id: 0 }, timeout, 'ping').then(() => Date.now() - t0);
  }

  /**
   * Fire-and-forget: true when it was sent, false when not connected (it is not queued). With
   * { onError }, an id goes with it and a failure (e.g. NO_ROUTE) comes back to onError.
   */
  fireAndForget(route, data = null, { onError } = {}) {
    if (this.state !== 'open') return false;
    const msg = { type: 'fnf', route, data };
    if (onError) {
      msg.id = this._id();
      const entry = {
        fnf: true,
        done: false,
        timer: setTimeout(() => this._requests.delete(msg.id), this.requestTimeout || 30000),
        resolve: () => {},
        reject: onError,
      };
      this._requests.set(msg.id, entry);
    }
    return this._send(msg);
  }

  /**
   * Request-stream. opts: { n, onNext(data, sub), onError(err, sub), onComplete(sub),
   * resubscribe: true | (error, sub) => data }. Returns the subscription: more(n),
   * unsubscribe(), async iteration.
   */
  subscribe(route, data = null, opts = {}) {
    if (this.state === 'closed') throw new GatewayError('CLOSED', 'the client was closed');
    const s = new Stream(this, 'sub', route, data, opts);
    this._openStream(s);
    return s;
  }

  /** Request-channel: like subscribe(), plus send(data) and done() once open. */
  channel(route, data = null, opts = {}) {
    if (this.state === 'closed') throw new GatewayError('CLOSED', 'the client was closed');
    const s = new Stream(this, 'chan', route, data, { ...opts, resubscribe: undefined });
    this._openStream(s);
    return s;
  }
}

export default GatewayClient;
