/*
 * rsocket-gateway: the server. Browsers connect over WebSocket (ws:// or wss://) and speak the
 * JSON protocol (client.c) or RSocket (passthrough.c); each worker has its own pools of backend
 * connections (backend.c). Signals: SIGINT and SIGTERM drain, SIGHUP reloads the routes.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

typedef struct gw_main {
  gw_config cfg;   /* the settings of the start; its routes are in `table` */
  gw_table *table; /* the routes in force (the last reload's) */
  int argc;        /* the command line, parsed again at each reload */
  char **argv;
  gw_counter reloads[2]; /* ok, refused (written by the main loop only) */
  rs_server *server;
  uv_loop_t *loop;
  uv_signal_t sigint, sigterm, sighup;
  uv_timer_t drain;
  uint64_t drain_deadline;
  bool stopping, stopped;
  atomic_size_t clients;
  atomic_bool draining;
  /* Every worker's state, freed once the whole server has stopped: a worker answering /metrics
   * reads the others' counters, so none may go while another still runs. */
  gw_gateway *gws[256];
  char err[400]; /* a worker's start failure */
} gw_main;

static bool path_is(rs_bytes path, const char *s) {
  return path.len == strlen(s) && memcmp(path.ptr, s, path.len) == 0;
}

/* Upgrades: the JSON protocol on "/", "/json" and the listen URI's path (or for a client that
 * offers the "json" subprotocol); RSocket over WebSocket on "/rsocket" (or for a client that
 * offers the "rsocket" subprotocol). A subprotocol offered decides over the path. */
static void on_upgrade(rs_server *server, const rs_http_request *req, rs_ws_decision *d,
                       void *user) {
  (void)server;
  gw_main *m = user;
  bool json_path = path_is(req->path, "/") || path_is(req->path, "/json") ||
                   d->verdict == RS_WS_RSOCKET; /* the listen URI's own path */
  bool json_proto = rs_http_request_offers(req, "json");
  bool rsocket_proto = !json_proto && rs_http_request_offers(req, "rsocket");
  bool rsocket = rsocket_proto || (!json_proto && path_is(req->path, "/rsocket"));
  if (!json_path && !json_proto && !rsocket) {
    d->verdict = RS_WS_REFUSE;
    d->status = 404;
    d->reason = "no WebSocket endpoint here: the JSON protocol is on / and /json, RSocket on "
                "/rsocket";
    return;
  }
  if (atomic_load(&m->draining)) {
    d->verdict = RS_WS_REFUSE;
    d->status = 503;
    d->reason = "the gateway is shutting down";
    return;
  }
  if (!gw_origin_allowed(&m->cfg, req->origin)) {
    d->verdict = RS_WS_REFUSE;
    d->status = 403;
    d->reason = "origin not allowed";
    return;
  }
  if (m->cfg.max_clients && atomic_load(&m->clients) >= m->cfg.max_clients) {
    d->verdict = RS_WS_REFUSE;
    d->status = 503;
    d->reason = "too many clients: try again later";
    return;
  }
  gw_client_url_token(req); /* ?token=: on_open (JSON) or the SETUP (RSocket) checks it */
  if (rsocket) {
    d->verdict = RS_WS_RSOCKET;
    d->subprotocol = rsocket_proto ? "rsocket" : NULL;
    d->user = NULL;
    return;
  }
  d->verdict = RS_WS_MESSAGES;
  d->subprotocol = json_proto ? "json" : NULL;
  d->user = NULL;
}

/* GET /healthz: 200 while some backend connection is up on some worker, else 503. */
static void on_http(rs_server *server, const rs_http_request *req, rs_http_response *res,
                    void *user) {
  gw_main *m = user;
  if (path_is(req->path, "/metrics")) {
    gw_metrics_render(server, m->reloads, res);
    return;
  }
  if (!path_is(req->path, "/healthz")) {
    gw_static_serve(&m->cfg, req, res); /* else 404 */
    return;
  }
  bool up = false, draining = atomic_load(&m->draining);
  for (int i = 0; i < rs_server_workers(server) && !up && !draining; i++) {
    gw_gateway *gw = rs_server_worker_user(server, i);
    up = gw && atomic_load(&gw->backends_up);
  }
  const char *body = up ? "ok\n" : draining ? "draining\n" : "no backend connected\n";
  rs_http_respond(res, up ? 200 : 503, "text/plain; charset=utf-8", NULL, body, strlen(body));
}

static void *on_worker_start(rs_server *server, int index, uv_loop_t *loop, void *user) {
  gw_main *m = user;
  gw_gateway *gw = calloc(1, sizeof *gw);
  if (!gw) return NULL;
  gw->cfg = &m->cfg;
  gw->table = gw_table_ref(m->table);
  gw->server = server;
  gw->loop = loop;
  gw->index = index;
  gw->clients = &m->clients;
  gw->draining = &m->draining;
  rs_gw_limits lim;
  rs_gw_limits_default(&lim);
  char err[300];
  if (rs_gw_parser_init(&gw->parser, NULL, &lim) != 0 || gw_stats_init(gw) != 0) {
    snprintf(m->err, sizeof m->err, "out of memory");
  } else if (gw_backend_start(gw, err, sizeof err) != 0) {
    snprintf(m->err, sizeof m->err, "%s", err);
  }
  rs_gw_buf_init(&gw->out, NULL);
  if (index >= 0 && index < (int)(sizeof m->gws / sizeof m->gws[0])) m->gws[index] = gw;
  return gw;
}

static void gateway_free(gw_gateway *gw) {
  rs_gw_parser_free(&gw->parser);
  rs_gw_buf_free(&gw->out);
  gw_stats_free(gw);
  free(gw->sessions);
  for (gw_pool *gp = gw->all, *next; gp; gp = next) { /* left only when none could start */
    next = gp->next;
    free(gp->label);
    free(gp->down);
    free(gp);
  }
  free(gw->pools);
  gw_table_unref(gw->table);
  free(gw->scratch);
  free(gw);
}

static void on_worker_stop(rs_server *server, int index, uv_loop_t *loop, void *worker_user,
                           void *user) {
  (void)server, (void)index, (void)loop, (void)user;
  gw_gateway *gw = worker_user;
  if (gw) gw_backend_stop(gw, NULL); /* freed in main once every worker has stopped */
}

static void on_stopped(void *arg) {
  gw_main *m = arg;
  uv_close((uv_handle_t *)&m->sigint, NULL);
  uv_close((uv_handle_t *)&m->sigterm, NULL);
  uv_close((uv_handle_t *)&m->sighup, NULL);
  uv_close((uv_handle_t *)&m->drain, NULL);
}

static void stop_server(gw_main *m, bool graceful) {
  uv_timer_stop(&m->drain);
  if (m->stopped && graceful) return;
  m->stopped = true;
  rs_server_stop(m->server, graceful, on_stopped, m);
}

/* Draining: once every client is gone (or --drain-timeout passed), the server stops. */
static void drain_tick(uv_timer_t *t) {
  gw_main *m = t->data;
  if (atomic_load(&m->clients) == 0 || uv_now(m->loop) >= m->drain_deadline) stop_server(m, true);
}

static void drain_worker(void *arg) {
  gw_client_drain_all(arg);
  gw_pt_drain_all(arg);
}

/* The first signal drains: no new clients or requests (/healthz says 503, so load balancers
 * move on), each client is closed with 1001 once its reqs in flight are answered, then the
 * server stops (what is left after --drain-timeout is closed with 1001). A second signal stops
 * at once. */
static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  gw_main *m = h->data;
  if (m->stopping) {
    stop_server(m, false);
    return;
  }
  m->stopping = true;
  atomic_store(&m->draining, true);
  gw_log(&m->cfg, "draining", "clients", "", NULL);
  for (int i = 0; i < rs_server_workers(m->server); i++) {
    gw_gateway *gw = rs_server_worker_user(m->server, i);
    if (gw) rs_runtime_post(rs_server_worker_loop(m->server, i), drain_worker, gw);
  }
  m->drain_deadline = uv_now(m->loop) + m->cfg.drain_timeout_ms;
  uv_timer_start(&m->drain, drain_tick, 20, 20);
}

/* ---- reloads ---- */

typedef struct reload_job {
  gw_gateway *gw;
  gw_table *table; /* a reference for the worker */
} reload_job;

static void reload_worker(void *arg) {
  reload_job *j = arg;
  gw_backend_reload(j->gw, j->table);
  free(j);
}

/* Whether `t` names `uri` in a backend list before (g, i); anywhere for g = t->n_groups. */
static bool names_before(const gw_table *t, const char *uri, size_t g, size_t i) {
  for (size_t h = 0; h <= g && h < t->n_groups; h++)
    for (size_t k = 0; k < t->groups[h].n_uris && (h < g || k < i); k++)
      if (strcmp(t->groups[h].uris[k], uri) == 0) return true;
  return false;
}

/* The backends of `a` that `b` does not name, once each, space-separated; how many in all (or
 * all of a's when b is NULL). */
static size_t backends_missing(const gw_table *a, const gw_table *b, char *out, size_t cap) {
  size_t len = 0, n = 0;
  out[0] = '\0';
  for (size_t g = 0; g < a->n_groups; g++)
    for (size_t i = 0; i < a->groups[g].n_uris; i++) {
      const char *u = a->groups[g].uris[i];
      if (names_before(a, u, g, i) || (b && names_before(b, u, b->n_groups, 0))) continue;
      n++;
      int w = snprintf(out + len, cap - len, "%s%s", len ? " " : "", u);
      if (w > 0 && (size_t)w < cap - len) len += (size_t)w;
    }
  return n;
}

/* SIGHUP: the configuration is read again as at the start (the --config file, then the command
 * line over it); when it is valid, its routes replace those in force on every worker, each on
 * its own thread. Settings other than the routes are not changed: those that differ are logged
 * as ignored until a restart. A configuration that does not parse changes nothing. */
static void on_reload(uv_signal_t *h, int signum) {
  (void)signum;
  gw_main *m = h->data;
  char err[600];
  gw_config nc;
  gw_config_init(&nc);
  gw_table *t = NULL;
  if (m->stopping) {
    snprintf(err, sizeof err, "the gateway is shutting down");
  } else if (gw_config_reparse(&nc, m->argc, m->argv, err, sizeof err) == 0) {
    t = gw_table_new(&nc, err, sizeof err);
  }
  if (!t) {
    GW_ADD(m->reloads[1], 1);
    gw_log(&m->cfg, "config_reload", "result", "error", "error", err, "kept",
           "the configuration in force stays", NULL);
    gw_config_free(&nc);
    return;
  }
  char ignored[400], added[600], removed[600], routes[24], backends[24];
  gw_config_changed(&m->cfg, &nc, ignored, sizeof ignored);
  backends_missing(t, m->table, added, sizeof added);
  backends_missing(m->table, t, removed, sizeof removed);
  snprintf(routes, sizeof routes, "%zu", t->n_routes);
  char all[600];
  snprintf(backends, sizeof backends, "%zu", backends_missing(t, NULL, all, sizeof all));
  gw_config_free(&nc);
  gw_table *old = m->table;
  m->table = t;
  gw_table_unref(old);
  GW_ADD(m->reloads[0], 1);
  gw_log(&m->cfg, "config_reload", "result", "ok", "routes", routes, "backends", backends, "added",
         added, "removed", removed, "ignored_until_restart", ignored, NULL);
  for (int i = 0; i < rs_server_workers(m->server); i++) {
    gw_gateway *gw = rs_server_worker_user(m->server, i);
    reload_job *j = gw ? malloc(sizeof *j) : NULL;
    if (!j) continue;
    j->gw = gw;
    j->table = gw_table_ref(t);
    if (rs_runtime_post(rs_server_worker_loop(m->server, i), reload_worker, j) != 0) {
      gw_table_unref(j->table);
      free(j);
    }
  }
}

int main(int argc, char **argv) {
  static gw_main m;
  gw_config_init(&m.cfg);
  int rc = gw_config_parse(&m.cfg, argc, argv);
  char err[400];
  if (rc == 0 && !(m.table = gw_table_new(&m.cfg, err, sizeof err))) {
    fprintf(stderr, "rsocket-gateway: %s\n", err);
    rc = 2;
  }
  if (rc) {
    gw_config_free(&m.cfg);
    gw_slots_free();
    return rc == 1 ? 0 : 2;
  }
  m.argc = argc;
  m.argv = argv;
  signal(SIGPIPE, SIG_IGN);
  rs_runtime_raise_fd_limit();
  uv_loop_t loop;
  uv_loop_init(&loop);

  rs_server_options so;
  rs_server_options_default(&so);
  so.uri = m.cfg.listen;
  so.workers = m.cfg.workers;
  so.cert_file = m.cfg.cert;
  so.key_file = m.cfg.key;
  so.user = &m;
  so.on_upgrade = on_upgrade;
  so.messages = &gw_client_callbacks;
  so.on_http = on_http;
  /* RSocket clients (/rsocket): proxied stream by stream (passthrough.c). */
  so.callbacks = gw_pt_callbacks;
  so.on_connect = gw_pt_connect;
  so.on_disconnect = gw_pt_disconnect;
  so.on_drained = gw_pt_drained;
  so.on_frame = gw_stats_client_frame;
  so.settings.lease = true; /* accepted, not imposed: only clients that ask get leases */
  so.settings.mtu = m.cfg.rsocket_mtu;
  /* An RSocket client authenticates in its SETUP: --auth-timeout is the time to send it. */
  if (gw_auth_enabled(&m.cfg)) so.settings.setup_timeout_ms = m.cfg.auth_timeout_ms;
  so.on_worker_start = on_worker_start;
  so.on_worker_stop = on_worker_stop;
  so.ws.max_message = m.cfg.max_message;
  so.busy_poll = m.cfg.busy_poll; /* workers 1..N-1; worker 0 is this loop, run below */
  /* Credit for gateway-managed subs is granted while a client's unsent output is under this. */
  size_t watermark = m.cfg.max_buffer / 4;
  so.settings.output_high_watermark = watermark < (64u << 10) ? watermark : (64u << 10);

  rc = rs_server_start(&m.server, &loop, &so, err, sizeof err);
  if (rc == 0 && m.err[0]) {
    rs_server_stop(m.server, false, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    fprintf(stderr, "rsocket-gateway: %s\n", m.err);
    rc = 2;
  } else if (rc != 0) {
    fprintf(stderr, "rsocket-gateway: cannot listen on %s: %s\n", m.cfg.listen, err);
    rc = rc == RS_ERR_IO ? 1 : 2;
  } else {
    m.loop = &loop;
    uv_timer_init(&loop, &m.drain);
    m.drain.data = &m;
    uv_signal_init(&loop, &m.sigint);
    uv_signal_init(&loop, &m.sigterm);
    uv_signal_init(&loop, &m.sighup);
    m.sigint.data = m.sigterm.data = m.sighup.data = &m;
    uv_signal_start(&m.sigint, on_signal, SIGINT);
    uv_signal_start(&m.sigterm, on_signal, SIGTERM);
    uv_signal_start(&m.sighup, on_reload, SIGHUP);
    /* "ws://127.0.0.1:8080" as the user wrote it, without the "/" the runtime adds. */
    const char *uri = rs_server_uri(m.server);
    size_t n = strlen(uri);
    bool bare = strncmp(m.cfg.listen + strlen(m.cfg.listen) - 1, "/", 1) != 0 && n > 1 &&
                uri[n - 1] == '/' && strchr(strstr(uri, "://") + 3, '/') == uri + n - 1;
    printf("listening on %.*s\n", (int)(bare ? n - 1 : n), uri);
    fflush(stdout);
    if (m.cfg.busy_poll)
      rs_runtime_run_busy(&loop);
    else
      uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_loop_close(&loop);
  for (size_t i = 0; i < sizeof m.gws / sizeof m.gws[0]; i++)
    if (m.gws[i]) gateway_free(m.gws[i]);
  gw_table_unref(m.table);
  gw_config_free(&m.cfg);
  gw_slots_free();
  return rc;
}
