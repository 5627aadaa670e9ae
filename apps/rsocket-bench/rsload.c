/* RSocket workloads of rsocket-bench: request-response, fire-and-forget, request-stream and
 * request-channel, over any URI the runtime supports, with a fixed number of requests (-n) or for
 * a duration (-D), each connection keeping -m requests (or streams, or channel elements) in
 * flight. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsocket-bench/bench.h"
#include "rsocket/extensions.h"
#include "rsocket/runtime.h"

_Static_assert(sizeof(void *) >= sizeof(uint64_t), "send times are kept in stream user pointers");

/* fire-and-forget: stop queueing while this much output waits for the socket */
#define BATCH_RING 8

typedef struct bconn bconn;

typedef struct bstream {
  bconn *bc;
  uint32_t sid;
  bool open, cancelled;
  uint64_t quota;     /* items wanted from this stream (UINT64_MAX: until stopped) */
  uint64_t requested; /* credit granted so far */
  uint64_t received;
  /* credit batches not yet used up, oldest first: when each was granted and how many remain */
  struct {
    uint64_t t, n;
  } batch[BATCH_RING];
  unsigned bhead, btail;
} bstream;

struct bconn {
  worker *w;
  rs_client *client;
  rs_conn *conn;
  bool connected, done, closed;
  uint64_t quota; /* requests or items for this connection (UINT64_MAX: until stopped) */
  uint64_t issued, finished;
  int inflight;
  /* fire-and-forget */
  bool fence_sent;
  /* stream */
  bstream *streams;
  int open_streams;
  /* channel */
  uint32_t chan;
  bool chan_open, chan_completed;
  uint64_t chan_credit;
  uint64_t *ring; /* send times of elements in flight */
  unsigned ring_mask, ring_head, ring_tail;
};

typedef struct rsload {
  worker *w;
  bconn *conns;
  int live;      /* clients not yet closed */
  int connected; /* connections up */
  bool started, stopping;
  uint8_t *data;
  uint8_t md[256]; /* --route: the routing metadata of every request (md_len 0: none) */
  size_t md_len;
  uv_timer_t deadline;
  bool timers_closed;
} rsload;

static rsload *load_of(bconn *bc) {
  return bc->w->loop.data;
}

static bool can_issue(bconn *bc) {
  return !load_of(bc)->stopping && bc->issued < bc->quota;
}

static void complete_one(bconn *bc, uint64_t sent_at, uint64_t now, size_t bytes_in) {
  rsload *L = load_of(bc);
  worker *w = bc->w;
  bc->finished++;
  if (!worker_measuring(L->w, now)) return;
  w->completed++;
  w->bytes_in += bytes_in;
  if (sent_at) hist_record(&w->lat, now - sent_at);
  if (now > w->end_ns) w->end_ns = now;
}

static rs_payload request_payload(rsload *L) {
  rs_payload p = rs_payload_data((rs_bytes){L->data, L->w->cfg->size});
  if (L->md_len) {
    p.has_metadata = true;
    p.metadata = (rs_bytes){L->md, L->md_len};
  }
  return p;
}

static void maybe_finish(bconn *bc);

/* ---- request-response ---- */

static void rr_kick(bconn *bc) {
  rsload *L = load_of(bc);
  rs_payload p = request_payload(L);
  while (bc->inflight < L->w->cfg->in_flight && can_issue(bc)) {
    uint64_t now = bench_now_ns();
    rs_ssize sid = rs_conn_request_response(bc->conn, &p, (void *)(uintptr_t)now);
    if (sid < 0) {
      worker_error(bc->w, "request: %s", rs_strerror((int)sid));
      L->stopping = true;
      break;
    }
    bc->issued++;
    bc->inflight++;
    if (worker_measuring(L->w, now)) bc->w->bytes_out += L->w->cfg->size;
  }
  maybe_finish(bc);
}

/* ---- fire-and-forget (confirmed by a trailing request-response on the same connection) ---- */

static void fnf_kick(bconn *bc);

/* The output fell back under its watermark: send more (fire-and-forget has no credit, so the
 * socket is its only brake). */
static void on_drained(rs_conn *conn, void *user) {
  (void)conn;
  bconn *bc = user;
  if (bc->connected && !bc->done && bc->w->cfg->model == MODEL_FNF) fnf_kick(bc);
}

static void fnf_kick(bconn *bc) {
  rsload *L = load_of(bc);
  rs_payload p = request_payload(L);
  while (can_issue(bc) && rs_runtime_writable(bc->conn)) {
    if (rs_conn_request_fnf(bc->conn, &p) < 0) {
      worker_error(bc->w, "fire-and-forget refused");
      L->stopping = true;
      break;
    }
    bc->issued++;
    uint64_t now = bench_now_ns();
    complete_one(bc, 0, now, 0);
    if (worker_measuring(L->w, now)) bc->w->bytes_out += L->w->cfg->size;
  }
  if (can_issue(bc)) return; /* not writable: on_drained comes back */
  if (!bc->fence_sent) {
    /* Everything before it on this connection was processed when its answer comes back. */
    bc->fence_sent = true;
    rs_payload fence = request_payload(L);
    fence.data = (rs_bytes){NULL, 0};
    if (rs_conn_request_response(bc->conn, &fence, NULL) < 0) {
      worker_error(bc->w, "fence request refused");
      bc->done = true;
      rs_client_close(bc->client, false);
      return;
    }
    bc->inflight++;
  }
}

/* ---- request-stream ---- */

static void stream_grant(bstream *s, uint64_t n, uint64_t now) {
  s->batch[s->btail % BATCH_RING].t = now;
  s->batch[s->btail % BATCH_RING].n = n;
  s->btail++;
  s->requested += n;
}

static void stream_open(bconn *bc, bstream *s) {
  rsload *L = load_of(bc);
  uint32_t window = L->w->cfg->window;
  uint64_t n = s->quota < window ? s->quota : window;
  rs_payload p = request_payload(L);
  uint64_t now = bench_now_ns();
  rs_ssize sid = rs_conn_request_stream(bc->conn, &p, n, s);
  if (sid < 0) {
    worker_error(bc->w, "request-stream: %s", rs_strerror((int)sid));
    L->stopping = true;
    return;
  }
  s->sid = (uint32_t)sid;
  s->open = true;
  bc->open_streams++;
  bc->issued++;
  stream_grant(s, n, now);
}

static void stream_item(bconn *bc, bstream *s, const rs_payload *p, uint64_t now) {
  rsload *L = load_of(bc);
  s->received++;
  uint64_t granted_at = s->batch[s->bhead % BATCH_RING].t;
  if (--s->batch[s->bhead % BATCH_RING].n == 0) s->bhead++;
  complete_one(bc, granted_at, now, p->data.len + p->metadata.len);
  if (s->cancelled) return;
  if (s->received >= s->quota || L->stopping) {
    s->cancelled = true;
    rs_conn_cancel(bc->conn, s->sid);
    return;
  }
  uint32_t half = L->w->cfg->window / 2;
  if (half == 0) half = 1;
  uint64_t outstanding = s->requested - s->received;
  if (outstanding <= half && s->requested < s->quota) {
    uint64_t n = s->quota - s->requested;
    if (n > half) n = half;
    if (rs_conn_request_n(bc->conn, s->sid, n) == 0) stream_grant(s, n, now);
  }
}

static void stream_stop_all(bconn *bc) {
  for (int i = 0; i < bc->w->cfg->in_flight; i++) {
    bstream *s = &bc->streams[i];
    if (s->open && !s->cancelled) {
      s->cancelled = true;
      rs_conn_cancel(bc->conn, s->sid);
    }
  }
}

/* ---- request-channel: one channel per connection, -m elements in flight on it ---- */

static void chan_kick(bconn *bc) {
  rsload *L = load_of(bc);
  rs_payload p = request_payload(L);
  if (!bc->chan_open) {
    if (bc->chan || !can_issue(bc)) return;
    uint64_t now = bench_now_ns();
    rs_ssize sid = rs_conn_request_channel(bc->conn, &p, RS_CREDIT_UNBOUNDED, false, bc);
    if (sid < 0) {
      worker_error(bc->w, "request-channel: %s", rs_strerror((int)sid));
      L->stopping = true;
      return;
    }
    bc->chan = (uint32_t)sid;
    bc->chan_open = true;
    bc->issued++;
    bc->inflight++;
    bc->ring[bc->ring_tail++ & bc->ring_mask] = now;
    if (worker_measuring(L->w, now)) bc->w->bytes_out += L->w->cfg->size;
    return;
  }
  while (bc->inflight < L->w->cfg->in_flight && bc->chan_credit > 0 && can_issue(bc)) {
    uint64_t now = bench_now_ns();
    if (rs_conn_send_payload(bc->conn, bc->chan, &p, false) != 0) {
      worker_error(bc->w, "channel element refused");
      L->stopping = true;
      break;
    }
    if (bc->chan_credit != RS_CREDIT_UNBOUNDED) bc->chan_credit--;
    bc->issued++;
    bc->inflight++;
    bc->ring[bc->ring_tail++ & bc->ring_mask] = now;
    if (worker_measuring(L->w, now)) bc->w->bytes_out += L->w->cfg->size;
  }
  if (!can_issue(bc) && bc->inflight == 0 && !bc->chan_completed) {
    bc->chan_completed = true;
    rs_conn_send_complete(bc->conn, bc->chan);
  }
}

/* ---- common ---- */

static void kick(bconn *bc) {
  if (!bc->connected || bc->done) return;
  switch (bc->w->cfg->model) {
  case MODEL_RR: rr_kick(bc); break;
  case MODEL_FNF: fnf_kick(bc); break;
  case MODEL_STREAM:
    for (int i = 0; i < bc->w->cfg->in_flight && can_issue(bc); i++)
      if (!bc->streams[i].open && bc->streams[i].sid == 0) stream_open(bc, &bc->streams[i]);
    maybe_finish(bc);
    break;
  case MODEL_CHANNEL: chan_kick(bc); break;
  case MODEL_WS:
  case MODEL_GW_REQ:
  case MODEL_GW_SUB:
  case MODEL_BOARD: break;
  }
}

/* Closes the connection once it has nothing left to do. */
static void maybe_finish(bconn *bc) {
  if (bc->done || !bc->connected) return;
  bool idle;
  switch (bc->w->cfg->model) {
  case MODEL_STREAM:
    /* every stream slot was used once (issued counts streams here, quota items) */
    idle = bc->open_streams == 0 &&
           (load_of(bc)->stopping || bc->issued >= (uint64_t)bc->w->cfg->in_flight);
    break;
  case MODEL_CHANNEL: idle = bc->chan_completed && !bc->chan_open; break;
  case MODEL_FNF: idle = bc->fence_sent && bc->inflight == 0; break;
  default: idle = bc->inflight == 0 && !can_issue(bc);
  }
  if (!idle) return;
  bc->done = true;
  rs_client_close(bc->client, true);
}

static void on_payload(rs_conn *conn, uint32_t sid, void *su, const rs_payload *p, unsigned flags,
                       void *user) {
  (void)conn;
  (void)sid;
  bconn *bc = user;
  uint64_t now = bench_now_ns();
  switch (bc->w->cfg->model) {
  case MODEL_RR:
    bc->inflight--;
    complete_one(bc, (uint64_t)(uintptr_t)su, now, p->data.len + p->metadata.len);
    rr_kick(bc);
    break;
  case MODEL_FNF:
    if (bc->fence_sent) {
      bc->inflight--;
      if (now > bc->w->end_ns) bc->w->end_ns = now;
    }
    break;
  case MODEL_STREAM:
    if ((flags & RS_PAYLOAD_NEXT) && su) stream_item(bc, su, p, now);
    break;
  case MODEL_CHANNEL:
    if (flags & RS_PAYLOAD_NEXT) {
      if (bc->ring_head == bc->ring_tail) {
        worker_error(bc->w, "channel: more elements echoed than sent");
        break;
      }
      uint64_t sent = bc->ring[bc->ring_head++ & bc->ring_mask];
      bc->inflight--;
      complete_one(bc, sent, now, p->data.len + p->metadata.len);
      chan_kick(bc);
    }
    break;
  case MODEL_WS:
  case MODEL_GW_REQ:
  case MODEL_GW_SUB:
  case MODEL_BOARD: break;
  }
}

static void on_request_n(rs_conn *conn, uint32_t sid, void *su, uint64_t n, void *user) {
  (void)conn;
  (void)sid;
  (void)su;
  bconn *bc = user;
  if (bc->w->cfg->model != MODEL_CHANNEL) return;
  if (n == RS_CREDIT_UNBOUNDED || bc->chan_credit + n < bc->chan_credit)
    bc->chan_credit = RS_CREDIT_UNBOUNDED;
  else if (bc->chan_credit != RS_CREDIT_UNBOUNDED)
    bc->chan_credit += n;
  chan_kick(bc);
}

static void on_error(rs_conn *conn, uint32_t sid, void *su, const rs_stream_error *e, void *user) {
  (void)conn;
  (void)sid;
  (void)su;
  bconn *bc = user;
  if (e->err == RS_ERR_CANCELED) return; /* our own cancel at the end of a stream */
  bc->w->errors++;
  worker_error(bc->w, "stream error: %s%s%.*s", rs_error_name(e->err), e->message.len ? ": " : "",
               (int)e->message.len, (const char *)e->message.ptr);
  if (bc->w->cfg->model == MODEL_RR || bc->w->cfg->model == MODEL_FNF) bc->inflight--;
  if (bc->w->cfg->model == MODEL_CHANNEL) {
    bc->inflight = 0;
    bc->chan_completed = true;
  }
}

static void on_stream_closed(rs_conn *conn, uint32_t sid, void *su, void *user) {
  (void)conn;
  (void)sid;
  bconn *bc = user;
  switch (bc->w->cfg->model) {
  case MODEL_RR: rr_kick(bc); break;
  case MODEL_FNF: maybe_finish(bc); break;
  case MODEL_STREAM: {
    bstream *s = su;
    if (s && s->open) {
      s->open = false;
      bc->open_streams--;
    }
    maybe_finish(bc);
    break;
  }
  case MODEL_CHANNEL:
    bc->chan_open = false;
    bc->chan_completed = true;
    maybe_finish(bc);
    break;
  case MODEL_WS:
  case MODEL_GW_REQ:
  case MODEL_GW_SUB:
  case MODEL_BOARD: break;
  }
}

static void close_timers(rsload *L) {
  if (L->timers_closed) return;
  L->timers_closed = true;
  uv_close((uv_handle_t *)&L->deadline, NULL);
  worker_progress_stop(L->w);
}

static void on_deadline(uv_timer_t *t);

static void start_load(rsload *L) {
  worker *w = L->w;
  const bench_cfg *cfg = w->cfg;
  L->started = true;
  uint64_t ms = worker_start_clock(w);
  if (cfg->requests == 0) uv_timer_start(&L->deadline, on_deadline, ms, 0);
  for (int i = 0; i < w->nconns; i++) kick(&L->conns[i]);
}

static void on_deadline(uv_timer_t *t) {
  rsload *L = t->data;
  L->stopping = true;
  L->w->end_ns = L->w->deadline_ns;
  for (int i = 0; i < L->w->nconns; i++) {
    bconn *bc = &L->conns[i];
    if (!bc->connected || bc->done) continue;
    if (bc->w->cfg->model == MODEL_STREAM) stream_stop_all(bc);
    kick(bc);
  }
}

static void on_event(rs_client *c, rs_client_event ev, const char *msg, void *user) {
  bconn *bc = user;
  rsload *L = load_of(bc);
  switch (ev) {
  case RS_CLIENT_CONNECTED:
    bc->conn = rs_client_conn(c);
    bc->connected = true;
    if (++L->connected == L->w->nconns) start_load(L);
    break;
  case RS_CLIENT_DISCONNECTED:
    if (!bc->done) worker_error(bc->w, "connection lost: %s", msg);
    break;
  case RS_CLIENT_CLOSED:
    bc->closed = true;
    if (!bc->connected) {
      bc->w->conn_failures++;
      /* The runtime's message already names the address ("cannot connect to HOST:PORT: …",
       * "cannot resolve HOST: …"); other reasons get the URI in front. */
      if (strncmp(msg, "cannot ", 7) == 0)
        worker_error(bc->w, "%s", msg);
      else
        worker_error(bc->w, "cannot connect to %s: %s", bc->w->cfg->uri, msg);
    } else if (!bc->done) {
      worker_error(bc->w, "connection closed early: %s", msg);
    }
    bc->done = true;
    bc->client = NULL;
    if (--L->live == 0)
      close_timers(L);
    else if (!L->started && L->connected + bc->w->conn_failures == L->w->nconns && L->connected > 0)
      start_load(L);
    break;
  default: break;
  }
}

static void on_close(rs_conn *conn, const rs_close_info *info, void *user) {
  (void)conn;
  bconn *bc = user;
  if (!bc->done && info->err != RS_ERR_CLOSED)
    worker_error(bc->w, "connection ended: %s%s%.*s", rs_error_name(info->err),
                 info->message.len ? ": " : "", (int)info->message.len,
                 (const char *)info->message.ptr);
}

int rsload_run(worker *w) {
  const bench_cfg *cfg = w->cfg;
  rsload L = {.w = w};
  w->loop.data = &L;
  L.data = malloc(cfg->size ? cfg->size : 1);
  L.conns = calloc((size_t)w->nconns, sizeof *L.conns);
  if (!L.data || !L.conns) {
    free(L.data);
    free(L.conns);
    worker_error(w, "out of memory");
    return -1;
  }
  memset(L.data, 'x', cfg->size);
  if (cfg->route_given) { /* through a gateway: it routes by this */
    rs_bytes tag = rs_bytes_str(cfg->route);
    rs_ssize n = rs_routing_encode(L.md, sizeof L.md, &tag, 1);
    L.md_len = n > 0 ? (size_t)n : 0;
  }
  uv_timer_init(&w->loop, &L.deadline);
  L.deadline.data = &L;
  worker_progress_start(w);

  unsigned ring = 1;
  while (ring < (unsigned)cfg->in_flight + 1) ring <<= 1;
  for (int i = 0; i < w->nconns; i++) {
    bconn *bc = &L.conns[i];
    bc->w = w;
    if (w->quota) {
      bc->quota = w->quota / (uint64_t)w->nconns + ((uint64_t)i < w->quota % (uint64_t)w->nconns);
    } else {
      bc->quota = UINT64_MAX;
    }
    if (cfg->model == MODEL_STREAM) {
      bc->streams = calloc((size_t)cfg->in_flight, sizeof *bc->streams);
      if (!bc->streams) {
        worker_error(w, "out of memory");
        continue;
      }
      for (int k = 0; k < cfg->in_flight; k++) {
        bstream *s = &bc->streams[k];
        s->bc = bc;
        if (bc->quota == UINT64_MAX)
          s->quota = UINT64_MAX;
        else
          s->quota = bc->quota / (uint64_t)cfg->in_flight +
                     ((uint64_t)k < bc->quota % (uint64_t)cfg->in_flight);
      }
    }
    if (cfg->model == MODEL_CHANNEL) {
      bc->ring = calloc(ring, sizeof *bc->ring);
      bc->ring_mask = ring - 1;
    }
    rs_client_options o;
    rs_client_options_default(&o);
    o.uri = cfg->uri;
    o.user = bc;
    o.insecure = cfg->insecure;
    o.connect_timeout_ms = (uint32_t)(cfg->connect_timeout_s * 1000);
    o.setup_timeout_ms = o.connect_timeout_ms; /* a peer that accepts and never answers fails */
    o.on_event = on_event;
    o.on_drained = on_drained;
    o.settings.keepalive_interval_ms = 30000;
    o.settings.max_lifetime_ms = 120000;
    if (L.md_len) o.settings.metadata_mime = rs_bytes_str(RS_MIME_ROUTING);
    o.callbacks.struct_size = sizeof o.callbacks;
    o.callbacks.on_payload = on_payload;
    o.callbacks.on_request_n = on_request_n;
    o.callbacks.on_error = on_error;
    o.callbacks.on_stream_closed = on_stream_closed;
    o.callbacks.on_close = on_close;
    char err[200];
    if (rs_client_start(&bc->client, &w->loop, &o, err, sizeof err) != 0) {
      worker_error(w, "%s", err);
      w->conn_failures++;
      bc->done = true;
      continue;
    }
    L.live++;
  }
  if (L.live == 0) close_timers(&L);
  if (w->cfg->busy_poll)
    rs_runtime_run_busy(&w->loop);
  else
    uv_run(&w->loop, UV_RUN_DEFAULT);
  if (!L.timers_closed) {
    close_timers(&L);
    uv_run(&w->loop, UV_RUN_DEFAULT);
  }
  if (w->cfg->requests && w->end_ns < w->start_ns) w->end_ns = w->start_ns;
  for (int i = 0; i < w->nconns; i++) {
    bconn *bc = &L.conns[i];
    free(bc->streams);
    free(bc->ring);
  }
  uv_run(&w->loop, UV_RUN_DEFAULT);
  free(L.conns);
  free(L.data);
  return 0;
}
