/*
 * rsocket-gateway: counters and GET /metrics in the Prometheus text format (0.0.4).
 *
 * Each worker counts in its own gw_stats, written only by its thread with relaxed atomic loads
 * and stores (plain moves on x86: no locked instruction on the hot path) and read by whichever
 * worker answers /metrics. The pools are not thread-safe, so each worker copies its backends'
 * figures into a snapshot under a mutex on its health tick (every 250 ms); /metrics reads the
 * snapshots.
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

int gw_stats_init(gw_gateway *gw) {
  size_t routes = gw->cfg->n_routes + 1; /* + "no route" */
  gw->stats.requests = calloc(routes * GW_MODEL_COUNT, sizeof *gw->stats.requests);
  gw->stats.errors = calloc(routes * GW_CODE_COUNT, sizeof *gw->stats.errors);
  size_t targets = 0;
  for (size_t g = 0; g < gw->cfg->n_groups; g++) targets += gw->cfg->groups[g].n_uris;
  gw->snap = calloc(targets ? targets : 1, sizeof *gw->snap);
  gw->n_snap = targets;
  pthread_mutex_init(&gw->snap_mu, NULL);
  return gw->stats.requests && gw->stats.errors && gw->snap ? 0 : -1;
}

void gw_stats_free(gw_gateway *gw) {
  free(gw->stats.requests);
  free(gw->stats.errors);
  free(gw->snap);
  pthread_mutex_destroy(&gw->snap_mu);
}

void gw_stats_snapshot(gw_gateway *gw) {
  pthread_mutex_lock(&gw->snap_mu);
  size_t k = 0;
  for (size_t g = 0; g < gw->cfg->n_groups; g++)
    for (size_t t = 0; t < gw->cfg->groups[g].n_uris; t++, k++) {
      rs_pool_target_stats st;
      if (gw->pools && gw->pools[g] && rs_pool_target_stats_get(gw->pools[g], t, &st) == 0) {
        gw->snap[k] = st;
        gw->snap[k].uri = gw->cfg->groups[g].uris[t]; /* outlives the pool */
      }
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

/* Same for one cell of the per-route tables. */
static uint64_t sum_cell(gw_gateway *const *gws, int nw, bool errors, size_t i) {
  uint64_t s = 0;
  for (int w = 0; w < nw; w++)
    if (gws[w]) s += GW_GET((errors ? gws[w]->stats.errors : gws[w]->stats.requests)[i]);
  return s;
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

void gw_metrics_render(rs_server *server, const gw_config *cfg, rs_http_response *res) {
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

  size_t routes = cfg->n_routes + 1;
  header(&t, "rsocket_gateway_requests_total", "counter",
         "Requests from clients, by route pattern and model (route=\"\": no route matched).");
  for (size_t r = 0; r < routes; r++)
    for (int m = 0; m < GW_MODEL_COUNT; m++) {
      uint64_t v = sum_cell(gws, nw, false, r * GW_MODEL_COUNT + (size_t)m);
      if (!v) continue;
      put(&t, "rsocket_gateway_requests_total{route=\"");
      put_label(&t, r < cfg->n_routes ? cfg->routes[r].pattern : "");
      put(&t, "\",model=\"%s\"} %" PRIu64 "\n", model_names[m], v);
    }
  header(&t, "rsocket_gateway_errors_total", "counter",
         "rej sent to clients, by route pattern and code (route=\"\": before a route was known).");
  for (size_t r = 0; r < routes; r++)
    for (int c = 0; c < GW_CODE_COUNT; c++) {
      uint64_t v = sum_cell(gws, nw, true, r * GW_CODE_COUNT + (size_t)c);
      if (!v) continue;
      put(&t, "rsocket_gateway_errors_total{route=\"");
      put_label(&t, r < cfg->n_routes ? cfg->routes[r].pattern : "");
      put(&t, "\",code=\"%s\"} %" PRIu64 "\n", code_names[c], v);
    }

  /* Backends: the workers' snapshots, summed (connections, load) or averaged (latency, lease). */
  size_t n_snap = 0;
  for (int w = 0; w < nw; w++)
    if (gws[w] && gws[w]->n_snap > n_snap) n_snap = gws[w]->n_snap;
  rs_pool_target_stats *sum = calloc(n_snap ? n_snap : 1, sizeof *sum);
  double *lat_n = calloc(n_snap ? n_snap : 1, sizeof *lat_n);
  double *avail_n = calloc(n_snap ? n_snap : 1, sizeof *avail_n);
  if (!sum || !lat_n || !avail_n) t.failed = true;
  for (int w = 0; w < nw && !t.failed; w++) {
    gw_gateway *gw = gws[w];
    if (!gw) continue;
    pthread_mutex_lock(&gw->snap_mu);
    for (size_t k = 0; k < gw->n_snap; k++) {
      const rs_pool_target_stats *s = &gw->snap[k];
      sum[k].uri = s->uri;
      sum[k].connections += s->connections;
      sum[k].candidates += s->candidates;
      sum[k].in_flight += s->in_flight;
      sum[k].streams += s->streams;
      sum[k].requests += s->requests;
      sum[k].failures += s->failures;
      if (s->latency_ms > 0) {
        sum[k].latency_ms += s->latency_ms;
        lat_n[k]++;
      }
      if (s->connections > 0) {
        sum[k].availability += s->availability;
        avail_n[k]++;
      }
    }
    pthread_mutex_unlock(&gw->snap_mu);
  }
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
  };
  for (size_t i = 0; i < sizeof bm / sizeof bm[0]; i++) {
    header(&t, bm[i].name, bm[i].type, bm[i].help);
    size_t k = 0;
    for (size_t g = 0; g < cfg->n_groups; g++)
      for (size_t u = 0; u < cfg->groups[g].n_uris; u++, k++) {
        if (k >= n_snap || !sum[k].uri || t.failed) continue;
        /* A backend may serve several route lists (one pool each): the pool label is the
         * route patterns that use it. */
        put(&t, "%s{backend=\"", bm[i].name);
        put_label(&t, sum[k].uri);
        put(&t, "\",pool=\"");
        for (size_t r = 0, first = 1; r < cfg->n_routes; r++)
          if (cfg->routes[r].group == g) {
            if (!first) put(&t, " ");
            put_label(&t, cfg->routes[r].pattern);
            first = 0;
          }
        put(&t, "\"} ");
        switch (i) {
        case 0: put(&t, "%d\n", sum[k].connections); break;
        case 1: put(&t, "%d\n", sum[k].candidates); break;
        case 2: put(&t, "%" PRIu64 "\n", sum[k].in_flight); break;
        case 3: put(&t, "%" PRIu64 "\n", sum[k].streams); break;
        case 4: put(&t, "%.6f\n", lat_n[k] ? sum[k].latency_ms / lat_n[k] / 1000.0 : 0.0); break;
        case 5: put(&t, "%.3f\n", avail_n[k] ? sum[k].availability / avail_n[k] : 0.0); break;
        case 6: put(&t, "%" PRIu64 "\n", sum[k].requests); break;
        default: put(&t, "%" PRIu64 "\n", sum[k].failures); break;
        }
      }
  }
  free(sum);
  free(lat_n);
  free(avail_n);
  if (t.failed) {
    static const char msg[] = "out of memory\n";
    rs_http_respond(res, 500, "text/plain; charset=utf-8", NULL, msg, sizeof msg - 1);
  } else {
    rs_http_respond(res, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, t.p, t.len);
  }
  free(t.p);
}
