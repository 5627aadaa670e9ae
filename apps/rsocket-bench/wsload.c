/* The WebSocket workloads of rsocket-bench, on our own WebSocket layer (rsocket/ws.h) on libuv,
 * so the same client measures any server:
 *   --model ws      each connection keeps -m binary messages of --size bytes in flight against an
 *                   echo server and times each round trip;
 *   --model gw-req  each connection keeps -m gateway requests ({"type":"req"}) in flight and times
 *                   each one to its cfm (answers may come in any order: matched by id);
 *   --model gw-sub  each connection opens -m gateway subscriptions ({"type":"sub"}, credit managed
 *                   by the gateway) and counts the ind messages they deliver.
 * The gateway's answers are read from their first bytes, {"type":"T","id":N, (the order its
 * formatter writes): the load generator measures, it does not validate, but a rej or an id that
 * is not in flight counts as an error, never as an answer. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsocket-bench/bench.h"
#include "rsocket-bench/wsload.h"
#include "rsocket/runtime.h"
#include "rsocket/uri.h"

uint64_t wsload_now_ms(void) {
  return bench_now_ns() / 1000000u;
}

static void wc_close(wconn *c);

static void on_written(uv_write_t *req, int status) {
  wconn *c = req->data;
  c->writing = false;
  if (status < 0) {
    worker_error(c->L->w, "write: %s", uv_strerror(status));
    wc_close(c);
    return;
  }
  rs_ws_conn_consumed(c->ws, c->wlen);
  wsload_flush(c);
}

void wsload_flush(wconn *c) {
  if (c->writing || c->tcp_closed || !c->ws) return;
  rs_bytes out;
  while (rs_ws_conn_pending(c->ws, &out) > 0 && out.len > 0) {
    uv_buf_t b = uv_buf_init((char *)out.ptr, (unsigned)out.len);
    int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (r > 0) {
      rs_ws_conn_consumed(c->ws, (size_t)r);
      if ((size_t)r == out.len) continue;
      continue; /* partial: try again, then fall back to an async write */
    }
    if (r != UV_EAGAIN) {
      worker_error(c->L->w, "write: %s", uv_strerror(r));
      wc_close(c);
      return;
    }
    c->writing = true;
    c->wlen = out.len;
    c->wreq.data = c;
    uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written);
    return;
  }
  if (rs_ws_conn_want_close(c->ws)) wc_close(c);
}

static bool is_gw(const bench_cfg *cfg) {
  return cfg->model == MODEL_GW_REQ || cfg->model == MODEL_GW_SUB || cfg->model == MODEL_BOARD;
}

/* What a server must be for the model, for error messages. */
static const char *needs(const bench_cfg *cfg) {
  if (cfg->model == MODEL_BOARD) return "needs rsocket-gateway in front of collab-service";
  return is_gw(cfg) ? "needs rsocket-gateway in front of an echo backend such as rsocket --server"
                    : "needs a plain WebSocket echo server such as ws-echo-server";
}

/* Sends one gateway request or subscription with this id. */
static int gw_send(wconn *c, uint64_t id) {
  wsload *L = c->L;
  int n = snprintf(L->msg + L->id_at, 24, "%" PRIu64, id);
  memcpy(L->msg + L->id_at + n, L->tail, L->tail_len);
  return rs_ws_conn_send(c->ws, RS_WS_OP_TEXT, (const uint8_t *)L->msg,
                         L->id_at + (size_t)n + L->tail_len);
}

/* gw-req: fills the free slots with requests. */
static void gw_req_kick(wconn *c) {
  wsload *L = c->L;
  worker *w = L->w;
  unsigned m = (unsigned)w->cfg->in_flight;
  while (c->nfree > 0 && !L->stopping && c->issued < c->quota) {
    uint32_t s = c->free_slots[--c->nfree];
    uint64_t id = c->slot_id[s] ? c->slot_id[s] + m : s + 1;
    uint64_t now = bench_now_ns();
    int rc = gw_send(c, id);
    if (rc != 0) {
      worker_error(w, "send: %s", rs_strerror(rc));
      L->stopping = true;
      c->free_slots[c->nfree++] = s;
      break;
    }
    c->slot_id[s] = id;
    c->slot_sent[s] = now;
    c->issued++;
    c->inflight++;
    if (worker_measuring(w, now)) w->bytes_out += w->cfg->size;
  }
  if (c->inflight == 0 && (L->stopping || c->issued >= c->quota)) {
    wsload_finish(c, "done");
    return;
  }
  wsload_flush(c);
}

/* gw-sub: subscribes once (ids 1..m); at the end unsubscribes them all and closes. */
static void gw_sub_kick(wconn *c) {
  wsload *L = c->L;
  worker *w = L->w;
  if (c->issued == 0 && !L->stopping) {
    for (int i = 1; i <= w->cfg->in_flight; i++) {
      int rc = gw_send(c, (uint64_t)i);
      if (rc != 0) {
        worker_error(w, "send: %s", rs_strerror(rc));
        L->stopping = true;
        break;
      }
      c->issued++;
      c->inflight++;
    }
  }
  if (L->stopping || c->finished >= c->quota || c->inflight == 0) {
    for (uint64_t i = 1; i <= c->issued; i++) {
      char unsub[64];
      int n = snprintf(unsub, sizeof unsub, "{\"type\":\"unsub\",\"id\":%" PRIu64 "}", i);
      rs_ws_conn_send(c->ws, RS_WS_OP_TEXT, (const uint8_t *)unsub, (size_t)n);
    }
    wsload_finish(c, "done");
    return;
  }
  wsload_flush(c);
}

static void kick(wconn *c) {
  wsload *L = c->L;
  worker *w = L->w;
  if (!c->upgraded) return;
  if (c->done) { /* nothing more to send, but our close (or the answer to the server's) is */
    wsload_flush(c);
    return;
  }
  if (w->cfg->model == MODEL_GW_REQ) {
    gw_req_kick(c);
    return;
  }
  if (w->cfg->model == MODEL_GW_SUB) {
    gw_sub_kick(c);
    return;
  }
  if (w->cfg->model == MODEL_BOARD) {
    board_kick(c);
    return;
  }
  while (c->inflight < w->cfg->in_flight && !L->stopping && c->issued < c->quota) {
    uint64_t now = bench_now_ns();
    int rc = rs_ws_conn_send(c->ws, RS_WS_OP_BINARY, L->data, w->cfg->size);
    if (rc != 0) {
      worker_error(w, "send: %s", rs_strerror(rc));
      L->stopping = true;
      break;
    }
    c->ring[c->tail++ & c->mask] = now;
    c->issued++;
    c->inflight++;
    if (worker_measuring(L->w, now)) w->bytes_out += w->cfg->size;
  }
  if (c->inflight == 0 && (L->stopping || c->issued >= c->quota)) {
    wsload_finish(c, "done");
    return;
  }
  wsload_flush(c);
}

void wsload_finish(wconn *c, const char *reason) {
  c->done = true;
  rs_ws_conn_close(c->ws, 1000, reason, wsload_now_ms());
  wsload_flush(c);
}

/* The server is not what the model measures: stop the run (its error is recorded). */
void wsload_wrong_server(wconn *c) {
  c->L->w->errors++;
  c->L->stopping = true;
  wsload_finish(c, "unexpected answer");
}

/* The server answered with something else than what was sent: it is not an echo server (an
 * RSocket server on ws:// answers the first message with an ERROR frame). */
static void not_an_echo(wconn *c, int opcode, size_t len) {
  worker *w = c->L->w;
  worker_error(w,
               "reply %" PRIu64 " is not an echo (a %zu-byte %s message for a %zu-byte binary "
               "one): --model ws %s",
               c->finished + 1, len, opcode == RS_WS_OP_TEXT ? "text" : "binary", w->cfg->size,
               needs(w->cfg));
  wsload_wrong_server(c);
}

/* Reads the type and id of a gateway answer from its first bytes: {"type":"T","id":N or null
 * (0). False when the message does not start so. */
bool wsload_gw_head(const uint8_t *p, size_t len, rs_bytes *type, uint64_t *id) {
  static const char open[] = "{\"type\":\"", mid[] = "\",\"id\":";
  const uint8_t *end = p + len, *t;
  if (len < sizeof open - 1 || memcmp(p, open, sizeof open - 1) != 0) return false;
  p += sizeof open - 1;
  t = memchr(p, '"', (size_t)(end - p));
  if (!t || (size_t)(end - t) < sizeof mid - 1 || memcmp(t, mid, sizeof mid - 1) != 0) return false;
  *type = (rs_bytes){p, (size_t)(t - p)};
  p = t + sizeof mid - 1;
  if ((size_t)(end - p) >= 4 && memcmp(p, "null", 4) == 0) {
    *id = 0;
    return true;
  }
  uint64_t v = 0;
  const uint8_t *d = p;
  while (p < end && *p >= '0' && *p <= '9' && p - d < 19) v = v * 10 + (uint64_t)(*p++ - '0');
  *id = v;
  return p > d && p < end && (*p == ',' || *p == '}');
}

bool wsload_is_type(rs_bytes t, const char *name) {
  return t.len == strlen(name) && memcmp(t.ptr, name, t.len) == 0;
}

/* A gateway answer. Errors are counted, the first one kept: a rej (with its text), an answer of
 * a type the model never gets or for an id not in flight. */
static void gw_on_message(wconn *c, int opcode, const uint8_t *data, size_t len, uint64_t now) {
  wsload *L = c->L;
  worker *w = L->w;
  bool req = w->cfg->model == MODEL_GW_REQ;
  unsigned m = (unsigned)w->cfg->in_flight;
  rs_bytes type;
  uint64_t id;
  if (opcode != RS_WS_OP_TEXT || !wsload_gw_head(data, len, &type, &id) ||
      !(wsload_is_type(type, "rej") || wsload_is_type(type, req ? "cfm" : "ind") ||
        (!req && wsload_is_type(type, "end")))) {
    worker_error(w, "answer %" PRIu64 " is not a gateway answer to --model %s: %.*s… (%s)",
                 c->finished + 1, bench_model_name(w->cfg->model), (int)(len < 40 ? len : 40),
                 (const char *)data, needs(w->cfg));
    wsload_wrong_server(c);
    return;
  }
  /* The slot of a gw-req id, or m when the id is not in flight. */
  unsigned s = m;
  if (req && id > 0 && c->slot_sent[(id - 1) % m] && c->slot_id[(id - 1) % m] == id)
    s = (unsigned)((id - 1) % m);
  bool sub = !req && id > 0 && id <= c->issued;
  if (sub && wsload_is_type(type, "ind") && c->finished >= c->quota)
    return; /* -n: past the count */
  if (wsload_is_type(type, req ? "cfm" : "ind") && (req ? s < m : sub)) {
    L->last_reply = now;
    c->finished++;
    if (worker_measuring(w, now)) {
      w->completed++;
      w->bytes_in += w->cfg->size;
      if (req) hist_record(&w->lat, now - c->slot_sent[s]);
      if (now > w->end_ns) w->end_ns = now;
    }
  } else {
    w->errors++;
    if (wsload_is_type(type, "rej"))
      worker_error(w, "the gateway rejected id %" PRIu64 ": %.*s", id, (int)(len < 200 ? len : 200),
                   (const char *)data);
    else if (wsload_is_type(type, "end") && sub)
      worker_error(w, "subscription %" PRIu64 " ended (the backend must stream without end)", id);
    else
      worker_error(w, "an answer for an id not in flight: %.*s", (int)(len < 100 ? len : 100),
                   (const char *)data);
  }
  /* A rej, cfm or end closes its request or subscription; an ind or a stray answer does not. */
  if (wsload_is_type(type, "ind") || (req ? s == m : !sub)) return;
  if (req) {
    c->slot_sent[s] = 0;
    c->free_slots[c->nfree++] = s;
  }
  c->inflight--;
}

static void on_message(rs_ws_conn *ws, int opcode, const uint8_t *data, size_t len, void *user) {
  (void)ws;
  wconn *c = user;
  wsload *L = c->L;
  worker *w = L->w;
  uint64_t now = bench_now_ns();
  if (c->done) return;
  if (w->cfg->model == MODEL_BOARD) {
    board_on_message(c, opcode, data, len, now);
    return;
  }
  if (is_gw(w->cfg)) {
    gw_on_message(c, opcode, data, len, now);
    return;
  }
  if (c->head == c->tail) {
    w->errors++;
    worker_error(w, "more messages echoed than sent");
    return;
  }
  if (opcode != RS_WS_OP_BINARY || len != w->cfg->size || memcmp(data, L->data, len) != 0) {
    not_an_echo(c, opcode, len);
    return;
  }
  L->last_reply = now;
  uint64_t sent = c->ring[c->head++ & c->mask];
  c->inflight--;
  c->finished++;
  if (worker_measuring(L->w, now)) {
    w->completed++;
    w->bytes_in += len;
    hist_record(&w->lat, now - sent);
    if (now > w->end_ns) w->end_ns = now;
  }
}

static void on_ws_close(rs_ws_conn *ws, unsigned code, rs_bytes reason, bool remote, void *user) {
  (void)ws;
  wconn *c = user;
  /* Before the end of the run any close is a failure, 1000 included (a server that closes after
   * one reply is not an echo server). */
  if (!c->done) {
    char of[32] = "";
    if (c->quota != UINT64_MAX) snprintf(of, sizeof of, " of %" PRIu64, c->quota);
    worker_error(c->L->w, "the WebSocket was closed %s with %u%s%.*s after %" PRIu64 "%s %s",
                 remote ? "by the server" : "by us", code, reason.len ? ": " : "", (int)reason.len,
                 (const char *)reason.ptr, c->finished, of,
                 is_gw(c->L->w->cfg) ? "answers" : "echoes");
  }
  c->done = true;
}

static void on_tcp_closed(uv_handle_t *h) {
  wconn *c = h->data;
  wsload *L = c->L;
  if (--L->live == 0) {
    uv_close((uv_handle_t *)&L->deadline, NULL);
    uv_close((uv_handle_t *)&L->connect_timer, NULL);
    uv_close((uv_handle_t *)&L->stall, NULL);
    worker_progress_stop(L->w);
  }
}

static void start_load(wsload *L);

/* The load starts once every connection is upgraded or has failed (and one is up). */
static void maybe_start(wsload *L) {
  if (L->started || L->upgraded + L->failed < L->w->nconns) return;
  uv_timer_stop(&L->connect_timer);
  if (L->upgraded > 0) start_load(L);
}

static void wc_close(wconn *c) {
  if (c->tcp_closed) return;
  c->tcp_closed = true;
  if (c->user) board_conn_closed(c);
  if (!c->done) worker_error(c->L->w, "connection closed before the end of the run");
  c->done = true;
  if (!c->upgraded && !c->failed) {
    c->failed = true;
    c->L->failed++;
    c->L->w->conn_failures++;
    maybe_start(c->L);
  }
  uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
}

static void on_connect_timeout(uv_timer_t *t) {
  wsload *L = t->data;
  for (int i = 0; i < L->w->nconns; i++) {
    wconn *c = &L->conns[i];
    if (c->upgraded || c->tcp_closed) continue;
    worker_error(L->w, "cannot connect to %s: no WebSocket upgrade within %g s", L->w->cfg->uri,
                 L->w->cfg->connect_timeout_s);
    wc_close(c);
  }
}

static void on_deadline(uv_timer_t *t) {
  wsload *L = t->data;
  L->stopping = true;
  L->w->end_ns = L->w->deadline_ns;
  if (L->board) {
    board_on_deadline(L);
    return;
  }
  for (int i = 0; i < L->w->nconns; i++) kick(&L->conns[i]);
}

static void on_stall(uv_timer_t *t) {
  wsload *L = t->data;
  worker *w = L->w;
  if (L->stopping || bench_now_ns() - L->last_reply < STALL_MS * 1000000ull) return;
  int waiting = 0;
  for (int i = 0; i < w->nconns; i++) {
    wconn *c = &L->conns[i];
    if (c->done || c->inflight == 0) continue;
    waiting++;
    c->done = true;
    rs_ws_conn_close(c->ws, 1000, is_gw(w->cfg) ? "no answer" : "no echo", wsload_now_ms());
    wsload_flush(c);
  }
  if (!waiting) return;
  w->errors++;
  worker_error(w, "no %s for %u s with messages in flight: --model %s %s",
               is_gw(w->cfg) ? "answer" : "echo", STALL_MS / 1000, bench_model_name(w->cfg->model),
               needs(w->cfg));
  L->stopping = true;
}

static void start_load(wsload *L) {
  worker *w = L->w;
  L->started = true;
  uint64_t ms = worker_start_clock(w);
  L->last_reply = bench_now_ns();
  uv_timer_start(&L->stall, on_stall, 1000, 1000);
  if (w->cfg->requests == 0) uv_timer_start(&L->deadline, on_deadline, ms, 0);
  for (int i = 0; i < w->nconns; i++) kick(&L->conns[i]);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  wconn *c = h->data;
  *buf = uv_buf_init((char *)c->L->rbuf, READ_BUF);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  wconn *c = s->data;
  wsload *L = c->L;
  if (n < 0) {
    if (!c->upgraded) {
      /* Before the handshake: the connection failed as far as the run is concerned. */
      L->w->conn_failures++;
      worker_error(L->w,
                   "no WebSocket handshake answer from %s: %s (is it a WebSocket server on that "
                   "path?)",
                   L->w->cfg->uri,
                   n == UV_EOF ? "the server closed the connection" : uv_strerror((int)n));
      c->done = true;
    } else if (!c->done) {
      worker_error(L->w, "read: %s", uv_strerror((int)n));
    }
    wc_close(c);
    return;
  }
  const uint8_t *p = (const uint8_t *)buf->base;
  size_t len = (size_t)n;
  if (!c->upgraded) {
    size_t take = len < HS_MAX - c->hs_len ? len : HS_MAX - c->hs_len;
    memcpy(c->hs + c->hs_len, p, take);
    c->hs_len += take;
    const char *reason = NULL;
    rs_ssize head =
        rs_ws_client_response_check((const uint8_t *)c->hs, c->hs_len, c->key, NULL, NULL, &reason);
    if (head == 0 && c->hs_len < HS_MAX) return;
    if (head <= 0) {
      L->w->conn_failures++;
      /* Name the server's status line when it answered something else than 101. */
      const char *why = reason ? reason : "bad response";
      int wlen = (int)strlen(why);
      if (c->hs_len > 12 && memcmp(c->hs, "HTTP/1.", 7) == 0 && memcmp(c->hs + 9, "101", 3) != 0) {
        const char *eol = memchr(c->hs, '\r', c->hs_len);
        why = c->hs;
        wlen = (int)(eol ? (size_t)(eol - c->hs) : c->hs_len);
        if (wlen > 80) wlen = 80;
      }
      worker_error(L->w, "WebSocket handshake with %s refused: %.*s", L->w->cfg->uri, wlen, why);
      c->done = true;
      wc_close(c);
      return;
    }
    rs_ws_options o = {.server = false, .max_message = 64u << 20};
    rs_ws_callbacks cb = {.on_message = on_message, .on_close = on_ws_close};
    c->ws = rs_ws_conn_new(&o, &cb, c, NULL);
    if (!c->ws) {
      worker_error(L->w, "out of memory");
      wc_close(c);
      return;
    }
    c->upgraded = true;
    /* Bytes after the head (already counted in hs) are the first frames. */
    size_t extra = c->hs_len - (size_t)head;
    if (extra) rs_ws_conn_recv(c->ws, (const uint8_t *)c->hs + head, extra, wsload_now_ms());
    if (take < len) rs_ws_conn_recv(c->ws, p + take, len - take, wsload_now_ms());
    L->upgraded++;
    maybe_start(L);
    return;
  }
  if (rs_ws_conn_recv(c->ws, p, len, wsload_now_ms()) != 0) {
    worker_error(L->w, "out of memory");
    wc_close(c);
    return;
  }
  if (L->started)
    kick(c);
  else
    wsload_flush(c);
}

static void on_connect(uv_connect_t *req, int status) {
  wconn *c = req->data;
  wsload *L = c->L;
  if (status < 0) {
    worker_error(L->w, "cannot connect to %s: %s", L->w->cfg->uri, uv_strerror(status));
    c->done = true;
    wc_close(c);
    return;
  }
  char req_buf[2048];
  rs_ws_client_key(c->key);
  rs_ssize n =
      rs_ws_client_request(req_buf, sizeof req_buf, L->uri.host, L->uri.path, c->key, NULL, false);
  if (n <= 0) {
    worker_error(L->w, "cannot build the upgrade request");
    wc_close(c);
    return;
  }
  uv_buf_t b = uv_buf_init(req_buf, (unsigned)n);
  if (uv_try_write((uv_stream_t *)&c->tcp, &b, 1) != n) {
    worker_error(L->w, "cannot send the upgrade request");
    wc_close(c);
    return;
  }
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* The gateway request of the model: {"type":"req"|"sub","id": (id_at), then the tail
 * ,"route":ROUTE,"data":"xx…x"} whose data string has --size bytes. */
static int gw_template(wsload *L) {
  const bench_cfg *cfg = L->w->cfg;
  const char *type = cfg->model == MODEL_GW_REQ ? "req" : "sub";
  size_t cap = 64 + strlen(cfg->route) + cfg->size + 24 + 64;
  if (!(L->msg = malloc(2 * cap))) return -1; /* the message, then its tail */
  L->id_at = (size_t)snprintf(L->msg, cap, "{\"type\":\"%s\",\"id\":", type);
  L->tail = L->msg + cap;
  int n = snprintf(L->tail, cap, ",\"route\":\"%s\",\"data\":\"", cfg->route);
  memset(L->tail + n, 'x', cfg->size);
  memcpy(L->tail + n + cfg->size, "\"}", 2);
  L->tail_len = (size_t)n + cfg->size + 2;
  return 0;
}

int wsload_run(worker *w) {
  wsload *L = calloc(1, sizeof *L);
  if (!L) return -1;
  L->w = w;
  char err[200];
  if (rs_uri_parse(w->cfg->uri, &L->uri, err, sizeof err) != 0) {
    worker_error(w, "%s", err);
    w->conn_failures = w->nconns;
    free(L);
    return -1;
  }
  /* main() found the address that accepts (every address of the name raced once). */
  const struct sockaddr_storage *dst = &w->cfg->dst;
  if (w->cfg->dst_error[0]) {
    worker_error(w, "%s", w->cfg->dst_error);
    w->conn_failures = w->nconns;
    free(L);
    return -1;
  }
  L->data = malloc(w->cfg->size ? w->cfg->size : 1);
  L->conns = calloc((size_t)w->nconns, sizeof *L->conns);
  unsigned ring = 1;
  while (ring < (unsigned)w->cfg->in_flight + 1) ring <<= 1;
  if (!L->data || !L->conns) {
    worker_error(w, "out of memory");
    free(L->data);
    free(L->conns);
    free(L);
    return -1;
  }
  memset(L->data, 'x', w->cfg->size);
  if ((w->cfg->model == MODEL_BOARD ? board_init(L) : is_gw(w->cfg) ? gw_template(L) : 0) != 0) {
    worker_error(w, "out of memory");
    w->conn_failures = w->nconns;
    free(L->data);
    free(L->conns);
    free(L);
    return -1;
  }
  uv_timer_init(&w->loop, &L->deadline);
  L->deadline.data = L;
  uv_timer_init(&w->loop, &L->connect_timer);
  L->connect_timer.data = L;
  uv_timer_start(&L->connect_timer, on_connect_timeout,
                 (uint64_t)(w->cfg->connect_timeout_s * 1000), 0);
  uv_timer_init(&w->loop, &L->stall);
  L->stall.data = L;
  worker_progress_start(w);
  for (int i = 0; i < w->nconns; i++) {
    wconn *c = &L->conns[i];
    c->L = L;
    c->quota = w->quota
                   ? w->quota / (uint64_t)w->nconns + ((uint64_t)i < w->quota % (uint64_t)w->nconns)
                   : UINT64_MAX;
    c->ring = calloc(ring, sizeof *c->ring);
    c->mask = ring - 1;
    bool slots_ok = true;
    if (w->cfg->model == MODEL_GW_REQ) {
      size_t m = (size_t)w->cfg->in_flight;
      c->slot_id = calloc(m, sizeof *c->slot_id);
      c->slot_sent = calloc(m, sizeof *c->slot_sent);
      c->free_slots = calloc(m, sizeof *c->free_slots);
      slots_ok = c->slot_id && c->slot_sent && c->free_slots;
      for (uint32_t s = 0; slots_ok && s < m; s++)
        c->free_slots[c->nfree++] = (uint32_t)(m - 1 - s);
    }
    uv_tcp_init(&w->loop, &c->tcp);
    uv_tcp_nodelay(&c->tcp, 1);
    c->tcp.data = c;
    c->creq.data = c;
    L->live++;
    if (!c->ring || !slots_ok ||
        uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)dst, on_connect) != 0) {
      worker_error(w, "cannot start connecting");
      wc_close(c);
    }
  }
  if (w->cfg->busy_poll)
    rs_runtime_run_busy(&w->loop);
  else
    uv_run(&w->loop, UV_RUN_DEFAULT);
  for (int i = 0; i < w->nconns; i++) {
    rs_ws_conn_free(L->conns[i].ws);
    free(L->conns[i].ring);
    free(L->conns[i].slot_id);
    free(L->conns[i].slot_sent);
    free(L->conns[i].free_slots);
  }
  if (L->board) board_free(L);
  free(L->conns);
  free(L->data);
  free(L->msg);
  free(L);
  return 0;
}
