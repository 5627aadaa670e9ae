/*
 * rsocket-gateway: counters and GET /metrics in the Prometheus text format (0.0.4).
 *
 * Each worker counts in its own gw_stats, written only by its thread with relaxed atomic loads
 * and stores (plain moves on x86: no locked instruction on the hot path) and read by whichever
 * worker answers /metrics. The pools are not thread-safe, so each worker copies its backends'
 * figures into a snapshot under a mutex on its health tick (every 250 ms); /metrics reads the
 * snapshots, and sums them by backend and pool label (workers may briefly differ while a reload
 * reaches each of them).
 *
 * Per-route counters are rows by stats slot: every pattern seen since the start has one (the
 * slot registry below), so a reload never makes a stream count into a row of another route.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "rsocket/frame.h"

static const char *const code_names[GW_CODE_COUNT] = {
    [GW_CODE_BAD_REQUEST] = "BAD_REQUEST", [GW_CODE_NO_ROUTE] = "NO_ROUTE",
    [GW_CODE_UNAVAILABLE] = "UNAVAILABLE", [GW_CODE_TOO_MANY_STREAMS] = "TOO_MANY_STREAMS",
    [GW_CODE_TIMEOUT] = "TIMEOUT",         [GW_CODE_APPLICATION_ERROR] = "APPLICATION_ERROR",
    [GW_CODE_REJECTED] = "REJECTED",       [GW_CODE_CANCELED] = "CANCELED",
    [GW_CODE_INVALID] = "INVALID",         [GW_CODE_RATE_LIMITED] = "RATE_LIMITED",
};

static const char *const in_names[GW_IN_COUNT] = {
    [GW_IN_INVALID] = "invalid", [RS_GW_REQ] = "req",     [RS_GW_SUB] = "sub",
    [RS_GW_MORE] = "more",       [RS_GW_UNSUB] = "unsub", [RS_GW_CHAN] = "chan",
    [RS_GW_SEND] = "send",       [RS_GW_DONE] = "done",   [RS_GW_FNF] = "fnf",
    [RS_GW_PING] = "ping",       [RS_GW_HELLO] = "hello",
};

static const char *const out_names[GW_OUT_COUNT] = {
    [GW_OUT_CFM] = "cfm", [GW_OUT_IND] = "ind",   [GW_OUT_END] = "end",
    [GW_OUT_REJ] = "rej", [GW_OUT_PONG] = "pong", [GW_OUT_WELCOME] = "welcome",
};

static const char *const model_names[GW_MODEL_COUNT] = {
    [GW_M_REQ] = "req", [GW_M_SUB] = "sub", [GW_M_CHAN] = "chan", [GW_M_FNF] = "fnf"};

int gw_code_of(const char *code) {
  for (int i = 0; i < GW_CODE_COUNT; i++)
    if (strcmp(code_names[i], code) == 0) return i;
  return GW_CODE_UNAVAILABLE;
}

/* ---- stats slots: route patterns, for the process's life ---- */

static struct {
  pthread_mutex_t mu;
  char **names; /* [0]: "" (no route) */
  size_t n, cap;
} slots = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Room for one more name. */
static bool slots_room(void) {
  if (slots.n < slots.cap) return true;
  size_t cap = slots.cap ? slots.cap * 2 : 16;
  char **nn = realloc(slots.names, cap * sizeof *nn);
  if (!nn) return false;
  slots.names = nn;
  slots.cap = cap;
  return true;
}

long gw_slot_of(const char *pattern) {
  pthread_mutex_lock(&slots.mu);
  long found = -1;
  if (slots.n == 0 && slots_room() && (slots.names[0] = strdup(""))) slots.n = 1;
  for (size_t i = 1; i < slots.n && found < 0; i++)
    if (strcmp(slots.names[i], pattern) == 0) found = (long)i;
  if (found < 0 && slots.n > 0 && slots.n <= GW_SLOTS_MAX && slots_room() &&
      (slots.names[slots.n] = strdup(pattern)))
    found = (long)slots.n++;
  pthread_mutex_unlock(&slots.mu);
  return found;
}

void gw_slots_free(void) {
  pthread_mutex_lock(&slots.mu);
  for (size_t i = 0; i < slots.n; i++) free(slots.names[i]);
  free(slots.names);
  slots.names = NULL;
  slots.n = slots.cap = 0;
  pthread_mutex_unlock(&slots.mu);
}

/* ---- the counters ---- */

int gw_stats_grow(gw_gateway *gw, size_t n_slots) {
  if (n_slots <= gw->stats.n_slots) return 0;
  pthread_mutex_lock(&gw->snap_mu);
  gw_counter *rq = realloc(gw->stats.requests, n_slots * GW_MODEL_COUNT * sizeof *rq);
  if (rq) gw->stats.requests = rq;
  gw_counter *er = rq ? realloc(gw->stats.errors, n_slots * GW_CODE_COUNT * sizeof *er) : NULL;
  if (er) {
    gw->stats.errors = er;
    size_t old = gw->stats.n_slots;
    for (size_t i = old * GW_MODEL_COUNT; i < n_slots * GW_MODEL_COUNT; i++) atomic_init(&rq[i], 0);
    for (size_t i = old * GW_CODE_COUNT; i < n_slots * GW_CODE_COUNT; i++) atomic_init(&er[i], 0);
    gw->stats.n_slots = n_slots;
  }
  pthread_mutex_unlock(&gw->snap_mu);
  return er ? 0 : -1;
}

int gw_stats_init(gw_gateway *gw) {
  pthread_mutex_init(&gw->snap_mu, NULL);
  size_t n = 1; /* "no route" */
  for (size_t r = 0; gw->table && r < gw->table->n_routes; r++)
    if ((size_t)gw->table->routes[r].slot + 1 > n) n = (size_t)gw->table->routes[r].slot + 1;
  return gw_stats_grow(gw, n);
}

static void snap_clear(gw_gateway *gw) {
  for (size_t k = 0; k < gw->n_snap; k++) {
    free(gw->snap[k].uri);
    free(gw->snap[k].label);
  }
  free(gw->snap);
  gw->snap = NULL;
  gw->n_snap = 0;
}

void gw_stats_free(gw_gateway *gw) {
  free(gw->stats.requests);
  free(gw->stats.errors);
  snap_clear(gw);
  pthread_mutex_destroy(&gw->snap_mu);
}

/* Calls fn for every target of every pool of the worker, the table's pools first. */
static size_t each_target(gw_gateway *gw, void (*fn)(gw_gateway *, gw_pool *, size_t, void *),
                          void *arg) {
  size_t n = 0;
  for (gw_pool *gp = gw->all; gp; gp = gp->next)
    for (size_t t = 0; gp->pool && t < rs_pool_targets(gp->pool); t++) {
      rs_pool_target_stats st;
      if (rs_pool_target_stats_get(gp->pool, t, &st) != 0) continue;
      if (fn) fn(gw, gp, t, arg);
      n++;
    }
  return n;
}

typedef struct snap_walk {
  gw_backend_snap *snap; /* the new snapshot (rebuild) or NULL (checking the layout) */
  size_t k;
  bool differs;
} snap_walk;

static void snap_visit(gw_gateway *gw, gw_pool *gp, size_t t, void *arg) {
  snap_walk *w = arg;
  if (!w->snap) {
    if (w->k >= gw->n_snap || gw->snap[w->k].pool != gp || gw->snap[w->k].index != t) {
      w->differs = true;
    } else {
      rs_pool_target_stats_get(gp->pool, t, &gw->snap[w->k].st);
      gw->snap[w->k].st.uri = NULL; /* the pool's: the entry's own is `uri` */
    }
  } else {
    gw_backend_snap *e = &w->snap[w->k];
    rs_pool_target_stats_get(gp->pool, t, &e->st);
    e->pool = gp;
    e->index = t;
    e->uri = strdup(e->st.uri);
    e->label = strdup(gp->label ? gp->label : "");
    e->st.uri = NULL;
  }
  w->k++;
}

/* A removed backend of the old snapshot whose entry is gone from the new one has drained. */
static void log_drained(gw_gateway *gw, const gw_backend_snap *old, size_t n_old,
                        const gw_backend_snap *now, size_t n_now) {
  for (size_t i = 0; i < n_old; i++) {
    if (!old[i].st.draining || !old[i].uri) continue;
    bool still = false;
    for (size_t j = 0; j < n_now && !still; j++)
      still = now[j].pool == old[i].pool && now[j].index == old[i].index && now[j].st.draining;
    if (still) continue;
    char worker[12];
    snprintf(worker, sizeof worker, "%d", gw->index);
    gw_log(gw->cfg, "backend_drained", "backend", old[i].uri, "pool",
           old[i].label ? old[i].label : "", "worker", worker, NULL);
  }
}

void gw_stats_snapshot(gw_gateway *gw) {
  pthread_mutex_lock(&gw->snap_mu);
  snap_walk w = {0};
  size_t n = each_target(gw, snap_visit, &w);
  if (!w.differs && n == gw->n_snap && !gw->snap_dirty) {
    pthread_mutex_unlock(&gw->snap_mu);
    return;
  }
  /* The pools changed (a reload, a removed backend gone): the entries are made anew, with
   * strings of their own (a pool's URIs and labels may go before /metrics reads them). */
  w = (snap_walk){.snap = calloc(n ? n : 1, sizeof *w.snap)};
  if (w.snap) {
    each_target(gw, snap_visit, &w);
    log_drained(gw, gw->snap, gw->n_snap, w.snap, n);
    snap_clear(gw);
    gw->snap = w.snap;
    gw->n_snap = n;
    gw->snap_dirty = false;
  }
  pthread_mutex_unlock(&gw->snap_mu);
}

void gw_stats_frame(gw_gateway *gw, bool outbound, const uint8_t *frame, size_t len) {
  if (len < 6) return;
  unsigned type = frame[4] >> 2;
  GW_ADD(gw->stats.frames[outbound][type & 63], 1);
  GW_ADD(gw->stats.backend_bytes[outbound], len);
}

void gw_stats_client_frame(rs_conn *conn, bool outbound, const uint8_t *frame, size_t len,
                           void *user) {
  (void)user;
  gw_gateway *gw = rs_runtime_worker_user(conn);
  if (!gw || len < 6) return;
  GW_ADD(gw->stats.client_frames[outbound][(frame[4] >> 2) & 63], 1);
  GW_ADD(gw->stats.client_bytes[outbound], len);
}

/* ---- the text ---- */

typedef struct text {
  char *p;
  size_t len, cap;
  bool failed;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...) {
  if (t->failed) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      t->failed = true;
      return;
    }
    if ((size_t)n < t->cap - t->len) {
      t->len += (size_t)n;
      return;
    }
    size_t ncap = (t->cap + (size_t)n) * 2;
    char *np = realloc(t->p, ncap);
    if (!np) {
      t->failed = true;
      return;
    }
    t->p = np;
    t->cap = ncap;
  }
}

/* A label value: backslash, double quote and newline escaped. */
static void put_label(text *t, const char *s) {
  for (; *s; s++) {
    if (*s == '\\' || *s == '"')
      put(t, "\\%c", *s);
    else if (*s == '\n')
      put(t, "\\n");
    else
      put(t, "%c", *s);
  }
}

static void header(text *t, const char *name, const char *type, const char *help) {
  put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A counter summed over the workers: `off` is its offset in gw_stats. */
static uint64_t sum_at(gw_gateway *const *gws, int nw, size_t off) {
  uint64_t s = 0;
  for (int w = 0; w < nw; w++)
    if (gws[w]) s += GW_GET(*(gw_counter *)((char *)&gws[w]->stats + off));
  return s;
}
#define SUM(field) sum_at(gws, nw, offsetof(gw_stats, field))

/* The per-route tables summed over the workers: [n_slots * GW_MODEL_COUNT] requests and
 * [n_slots * GW_CODE_COUNT] errors, calloc'd (NULL: out of memory). */
static bool sum_routes(gw_gateway *const *gws, int nw, size_t n_slots, uint64_t **req,
                       uint64_t **err) {
  *req = calloc(n_slots * GW_MODEL_COUNT + 1, sizeof **req);
  *err = calloc(n_slots * GW_CODE_COUNT + 1, sizeof **err);
  if (!*req || !*err) return false;
  for (int w = 0; w < nw; w++) {
    gw_gateway *gw = gws[w];
    if (!gw) continue;
    pthread_mutex_lock(&gw->snap_mu);
    size_t n = gw->stats.n_slots < n_slots ? gw->stats.n_slots : n_slots;
    for (size_t i = 0; i < n * GW_MODEL_COUNT; i++) (*req)[i] += GW_GET(gw->stats.requests[i]);
    for (size_t i = 0; i < n * GW_CODE_COUNT; i++) (*err)[i] += GW_GET(gw->stats.errors[i]);
    pthread_mutex_unlock(&gw->snap_mu);
  }
  return true;
}

/* The workers' backend snapshots summed by (backend, pool label): connections and load summed,
 * latency and lease availability averaged (over the workers with a figure). */
typedef struct backend_sum {
  char *uri, *label; /* copies */
  rs_pool_target_stats st;
  double lat_n, avail_n;
  bool draining; /* on some worker */
} backend_sum;

typedef struct backend_sums {
  backend_sum *v;
  size_t n, cap;
  bool failed;
} backend_sums;

static backend_sum *sums_find(backend_sums *b, size_t hint, const gw_backend_snap *e) {
  /* Workers usually list the same backends in the same order: try the same position first. */
  if (hint < b->n && strcmp(b->v[hint].uri, e->uri) == 0 && strcmp(b->v[hint].label, e->label) == 0)
    return &b->v[hint];
  for (size_t i = 0; i < b->n; i++)
    if (strcmp(b->v[i].uri, e->uri) == 0 && strcmp(b->v[i].label, e->label) == 0) return &b->v[i];
  if (b->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 16;
    backend_sum *nv = realloc(b->v, cap * sizeof *nv);
    if (!nv) return NULL;
    b->v = nv, b->cap = cap;
  }
  backend_sum *s = &b->v[b->n];
  *s = (backend_sum){.uri = strdup(e->uri), .label = strdup(e->label)};
  if (!s->uri || !s->label) {
    free(s->uri);
    free(s->label);
    return NULL;
  }
  b->n++;
  return s;
}

static void sum_backends(gw_gateway *const *gws, int nw, backend_sums *b) {
  for (int w = 0; w < nw && !b->failed; w++) {
    gw_gateway *gw = gws[w];
    if (!gw) continue;
    pthread_mutex_lock(&gw->snap_mu);
    for (size_t k = 0; k < gw->n_snap && !b->failed; k++) {
      const gw_backend_snap *e = &gw->snap[k];
      if (!e->uri || !e->label) continue;
      backend_sum *s = sums_find(b, k, e);
      if (!s) {
        b->failed = true;
        break;
      }
      s->st.connections += e->st.connections;
      s->st.candidates += e->st.candidates;
      s->st.in_flight += e->st.in_flight;
      s->st.streams += e->st.streams;
      s->st.requests += e->st.requests;
      s->st.failures += e->st.failures;
      s->draining = s->draining || e->st.draining;
      if (e->st.latency_ms > 0) {
        s->st.latency_ms += e->st.latency_ms;
        s->lat_n++;
      }
      if (e->st.connections > 0) {
        s->st.availability += e->st.availability;
        s->avail_n++;
      }
    }
    pthread_mutex_unlock(&gw->snap_mu);
  }
}

static void sums_free(backend_sums *b) {
  for (size_t i = 0; i < b->n; i++) {
    free(b->v[i].uri);
    free(b->v[i].label);
  }
  free(b->v);
}

/* A [direction][frame type] table of counters at `off` in gw_stats, the zeros left out. */
static void put_frames(text *t, gw_gateway *const *gws, int nw, const char *name, const char *help,
                       size_t off) {
  header(t, name, "counter", help);
  for (int dir = 0; dir < 2; dir++)
    for (int ty = 0; ty < 64; ty++) {
      uint64_t v = sum_at(gws, nw, off + ((size_t)dir * 64 + (size_t)ty) * sizeof(gw_counter));
      if (v)
        put(t, "%s{direction=\"%s\",type=\"%s\"} %" PRIu64 "\n", name, dir ? "out" : "in",
            rs_frame_type_name((uint8_t)ty), v);
    }
}

void gw_metrics_render(rs_server *server, const gw_counter reloads[2], rs_http_response *res) {
  int nw = rs_server_workers(server);
  gw_gateway *gws[256] = {0};
  if (nw > 256) nw = 256;
  for (int i = 0; i < nw; i++) gws[i] = rs_server_worker_user(server, i);
  text t = {0};

  header(&t, "rsocket_gateway_clients", "gauge", "WebSocket clients connected, by protocol.");
  put(&t, "rsocket_gateway_clients{protocol=\"json\"} %" PRIu64 "\n", SUM(clients));
  put(&t, "rsocket_gateway_clients{protocol=\"rsocket\"} %" PRIu64 "\n", SUM(rs_clients));
  header(&t, "rsocket_gateway_clients_accepted_total", "counter",
         "WebSocket clients accepted since the start, by protocol.");
  put(&t, "rsocket_gateway_clients_accepted_total{protocol=\"json\"} %" PRIu64 "\n",
      SUM(clients_total));
  put(&t, "rsocket_gateway_clients_accepted_total{protocol=\"rsocket\"} %" PRIu64 "\n",
      SUM(rs_clients_total));
  header(&t, "rsocket_gateway_slow_consumer_closes_total", "counter",
         "Clients closed because their unsent output passed --max-buffer (JSON: 1008; RSocket: "
         "ERROR CONNECTION_ERROR).");
  put(&t, "rsocket_gateway_slow_consumer_closes_total %" PRIu64 "\n", SUM(slow_consumers));

  header(&t, "rsocket_gateway_pushes_total", "counter",
         "Messages delivered to clients by pushes from backends (REQUEST_FNF push.all, "
         "push.session.ID, push.user.ID): one per client reached.");
  put(&t, "rsocket_gateway_pushes_total %" PRIu64 "\n", SUM(pushes));
  header(&t, "rsocket_gateway_pushes_dropped_total", "counter",
         "Fire-and-forget requests from backends whose route is not a push route.");
  put(&t, "rsocket_gateway_pushes_dropped_total %" PRIu64 "\n", SUM(pushes_dropped));
  header(&t, "rsocket_gateway_streams_open", "gauge", "Backend streams open, by model.");
  static const char *const stream_models[3] = {"request_response", "request_stream",
                                               "request_channel"};
  for (int m = 0; m < 3; m++)
    put(&t, "rsocket_gateway_streams_open{model=\"%s\"} %" PRIu64 "\n", stream_models[m],
        SUM(streams_open[m]));

  header(&t, "rsocket_gateway_messages_total", "counter",
         "JSON messages from (in) and to (out) clients, by type (in: invalid = refused by the "
         "parser).");
  for (int i = 0; i < GW_IN_COUNT; i++)
    if (in_names[i])
      put(&t, "rsocket_gateway_messages_total{direction=\"in\",type=\"%s\"} %" PRIu64 "\n",
          in_names[i], SUM(msgs_in[i]));
  for (int i = 0; i < GW_OUT_COUNT; i++)
    put(&t, "rsocket_gateway_messages_total{direction=\"out\",type=\"%s\"} %" PRIu64 "\n",
        out_names[i], SUM(msgs_out[i]));

  header(&t, "rsocket_gateway_client_bytes_total", "counter",
         "Bytes of client messages received (in) and queued for clients (out).");
  put(&t, "rsocket_gateway_client_bytes_total{direction=\"in\"} %" PRIu64 "\n",
      SUM(client_bytes[0]));
  put(&t, "rsocket_gateway_client_bytes_total{direction=\"out\"} %" PRIu64 "\n",
      SUM(client_bytes[1]));

  put_frames(&t, gws, nw, "rsocket_gateway_client_frames_total",
             "RSocket frames received from (in) and sent to (out) RSocket clients (/rsocket), by "
             "frame type.",
             offsetof(gw_stats, client_frames));
  put_frames(&t, gws, nw, "rsocket_gateway_backend_frames_total",
             "RSocket frames received from (in) and sent to (out) backends, by frame type.",
             offsetof(gw_stats, frames));
  header(&t, "rsocket_gateway_backend_bytes_total", "counter",
         "Bytes of RSocket frames received from (in) and sent to (out) backends.");
  put(&t, "rsocket_gateway_backend_bytes_total{direction=\"in\"} %" PRIu64 "\n",
      SUM(backend_bytes[0]));
  put(&t, "rsocket_gateway_backend_bytes_total{direction=\"out\"} %" PRIu64 "\n",
      SUM(backend_bytes[1]));

  pthread_mutex_lock(&slots.mu); /* the names: never freed, but the array may move */
  size_t n_slots = slots.n ? slots.n : 1;
  uint64_t *req = NULL, *err = NULL;
  if (!sum_routes(gws, nw, n_slots, &req, &err)) t.failed = true;
  header(&t, "rsocket_gateway_requests_total", "counter",
         "Requests from clients, by route pattern and model (route=\"\": no route matched).");
  for (size_t r = 0; r < n_slots && !t.failed; r++)
    for (int m = 0; m < GW_MODEL_COUNT; m++) {
      uint64_t v = req[r * GW_MODEL_COUNT + (size_t)m];
      if (!v) continue;
      put(&t, "rsocket_gateway_requests_total{route=\"");
      put_label(&t, r < slots.n ? slots.names[r] : "");
      put(&t, "\",model=\"%s\"} %" PRIu64 "\n", model_names[m], v);
    }
  header(&t, "rsocket_gateway_errors_total", "counter",
         "rej sent to clients, by route pattern and code (route=\"\": before a route was known).");
  for (size_t r = 0; r < n_slots && !t.failed; r++)
    for (int c = 0; c < GW_CODE_COUNT; c++) {
      uint64_t v = err[r * GW_CODE_COUNT + (size_t)c];
      if (!v) continue;
      put(&t, "rsocket_gateway_errors_total{route=\"");
      put_label(&t, r < slots.n ? slots.names[r] : "");
      put(&t, "\",code=\"%s\"} %" PRIu64 "\n", code_names[c], v);
    }
  pthread_mutex_unlock(&slots.mu);
  free(req);
  free(err);

  header(&t, "rsocket_gateway_config_reloads_total", "counter",
         "Configuration reloads (SIGHUP), by result: ok (the new routes are in force) or error "
         "(refused: the old configuration stays).");
  put(&t, "rsocket_gateway_config_reloads_total{result=\"ok\"} %" PRIu64 "\n", GW_GET(reloads[0]));
  put(&t, "rsocket_gateway_config_reloads_total{result=\"error\"} %" PRIu64 "\n",
      GW_GET(reloads[1]));

  /* Backends: the workers' snapshots, by backend and pool. A backend removed by a reload is
   * listed (draining="true" on rsocket_gateway_backend_draining) until its connections are
   * gone. */
  backend_sums b = {0};
  sum_backends(gws, nw, &b);
  if (b.failed) t.failed = true;
  static const struct {
    const char *name, *type, *help;
  } bm[] = {
      {"rsocket_gateway_backend_connections", "gauge", "Established connections to the backend."},
      {"rsocket_gateway_backend_candidates", "gauge",
       "Connections that may take a request now (established, with lease permits)."},
      {"rsocket_gateway_backend_in_flight", "gauge",
       "Request-response streams awaiting an answer."},
      {"rsocket_gateway_backend_streams", "gauge", "Request-stream and channel streams open."},
      {"rsocket_gateway_backend_latency_seconds", "gauge",
       "Peak-EWMA response latency the load balancer uses (0: no sample yet)."},
      {"rsocket_gateway_backend_lease_availability", "gauge",
       "Share of the lease left (1 without lease), averaged over established connections."},
      {"rsocket_gateway_backend_requests_total", "counter", "Requests sent to the backend."},
      {"rsocket_gateway_backend_failures_total", "counter",
       "Connection attempts that failed and connections lost."},
      {"rsocket_gateway_backend_draining", "gauge",
       "1 while the backend, removed from its pool by a reload, drains its streams; the series "
       "go once its connections are closed."},
  };
  for (size_t i = 0; i < sizeof bm / sizeof bm[0] && !t.failed; i++) {
    header(&t, bm[i].name, bm[i].type, bm[i].help);
    for (size_t k = 0; k < b.n; k++) {
      const backend_sum *e = &b.v[k];
      /* A backend may serve several route lists (one pool each): the pool label is the route
       * patterns that use it. */
      put(&t, "%s{backend=\"", bm[i].name);
      put_label(&t, e->uri);
      put(&t, "\",pool=\"");
      put_label(&t, e->label);
      put(&t, "\"} ");
      switch (i) {
      case 0: put(&t, "%d\n", e->st.connections); break;
      case 1: put(&t, "%d\n", e->st.candidates); break;
      case 2: put(&t, "%" PRIu64 "\n", e->st.in_flight); break;
      case 3: put(&t, "%" PRIu64 "\n", e->st.streams); break;
      case 4: put(&t, "%.6f\n", e->lat_n ? e->st.latency_ms / e->lat_n / 1000.0 : 0.0); break;
      case 5: put(&t, "%.3f\n", e->avail_n ? e->st.availability / e->avail_n : 0.0); break;
      case 6: put(&t, "%" PRIu64 "\n", e->st.requests); break;
      case 7: put(&t, "%" PRIu64 "\n", e->st.failures); break;
      default: put(&t, "%d\n", e->draining ? 1 : 0); break;
      }
    }
  }
  sums_free(&b);
  if (t.failed) {
    static const char msg[] = "out of memory\n";
    rs_http_respond(res, 500, "text/plain; charset=utf-8", NULL, msg, sizeof msg - 1);
  } else {
    rs_http_respond(res, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, t.p, t.len);
  }
  free(t.p);
}
