/* rsocket-gateway: the pools of one worker, the backend side of every request, and what comes
 * back from backends (answers, elements, errors, credit). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "rsocket/extensions.h"

/* ---- streams ---- */

rs_gw_id gw_stream_id(const gw_stream *st) {
  rs_gw_id id = {.kind = st->id_kind, .num = st->id_num};
  id.text.ptr = (const uint8_t *)st->id;
  id.text.len = st->id_len;
  return id;
}

static void stream_free(gw_stream *st) {
  for (gw_up *u = st->up_head, *next; u; u = next) {
    next = u->next;
    free(u);
  }
  free(st);
}

static void timeout_unlink(gw_gateway *gw, gw_stream *st) {
  if (!st->deadline) return;
  if (st->t_prev)
    st->t_prev->t_next = st->t_next;
  else
    gw->t_head = st->t_next;
  if (st->t_next)
    st->t_next->t_prev = st->t_prev;
  else
    gw->t_tail = st->t_prev;
  st->t_prev = st->t_next = NULL;
  st->deadline = 0;
}

void gw_stream_release(gw_stream *st, bool cancel) {
  gw_client *c = st->client;
  if (c) timeout_unlink(c->gw, st);
  st->client = NULL;
  if (!st->conn) {
    stream_free(st);
    return;
  }
  if (cancel) rs_conn_cancel(st->conn, st->sid); /* on_stream_closed follows and frees */
}

void gw_stream_refill(gw_stream *st) {
  gw_client *c = st->client;
  if (!c || !st->conn || st->client_credit || st->model == GW_RR) return;
  uint32_t window = c->gw->cfg->credit_window;
  if (st->outstanding > window / 2) return;
  if (!rs_ws_session_writable(c->ws)) {
    gw_client_starve(c, st);
    return;
  }
  uint32_t grant = window - st->outstanding;
  if (rs_conn_request_n(st->conn, st->sid, grant) == 0) st->outstanding += grant;
}

void gw_stream_flush_up(gw_stream *st) {
  gw_client *c = st->client;
  while (st->up_head && st->up_credit > 0 && st->conn) {
    gw_up *u = st->up_head;
    rs_payload p = {.data = {u->data, u->len}};
    if (rs_conn_send_payload(st->conn, st->sid, &p, false) != 0) break;
    st->up_credit--;
    st->up_head = u->next;
    if (!st->up_head) st->up_tail = NULL;
    st->up_count--;
    free(u);
  }
  if (!st->up_head && st->up_done && !st->up_cancelled && st->conn)
    rs_conn_send_complete(st->conn, st->sid);
  /* A channel with a window of sends queued stops the client's reading until credit comes. */
  bool blocked = c && st->up_count >= c->gw->cfg->credit_window;
  if (c && blocked != st->blocked) {
    st->blocked = blocked;
    if (blocked)
      c->blocked_chans++;
    else
      c->blocked_chans--;
    gw_client_update_reading(c);
  }
}

/* ---- request timeouts: one list per worker, in deadline order (one timeout for all) ---- */

static void timer_fire(uv_timer_t *t);

static void timer_arm(gw_gateway *gw) {
  if (!gw->t_head) return;
  uint64_t now = uv_now(gw->loop);
  uint64_t due = gw->t_head->deadline > now ? gw->t_head->deadline - now : 0;
  uv_timer_start(&gw->timer, timer_fire, due, 0);
}

static void timer_fire(uv_timer_t *t) {
  gw_gateway *gw = t->data;
  uint64_t now = uv_now(gw->loop);
  while (gw->t_head && gw->t_head->deadline <= now) {
    gw_stream *st = gw->t_head;
    gw_client *c = st->client;
    char msg[96];
    int n = snprintf(msg, sizeof msg, "no answer from the backend within %" PRIu32 " ms",
                     gw->cfg->request_timeout_ms);
    timeout_unlink(gw, st);
    gw_client_reject(c, st, "TIMEOUT", msg, (size_t)n);
    gw_stream_release(st, true);
  }
  timer_arm(gw);
}

static void timeout_add(gw_gateway *gw, gw_stream *st) {
  st->deadline = uv_now(gw->loop) + gw->cfg->request_timeout_ms;
  if (st->deadline == 0) st->deadline = 1;
  st->t_prev = gw->t_tail;
  st->t_next = NULL;
  if (gw->t_tail)
    gw->t_tail->t_next = st;
  else
    gw->t_head = st;
  gw->t_tail = st;
  if (gw->t_head == st) timer_arm(gw);
}

/* ---- opening ---- */

char *gw_entry_make(uint64_t session, const char *peer, const char *user, const char *claims,
                    uint32_t *len) {
  char u[2 * 6 * 256 + 1] = "";
  if (user) gw_json_escape(u, sizeof u, user);
  size_t cap = 128 + strlen(u) + (claims ? strlen(claims) : 0);
  char *e = malloc(cap);
  int n = e ? snprintf(e, cap, "{\"session\":\"%016" PRIx64 "\",\"peer\":\"%s\"%s%s%s%s%s}",
                       session, peer, user ? ",\"user\":\"" : "", u, user ? "\"" : "",
                       claims ? ",\"claims\":" : "", claims ? claims : "")
            : -1;
  if (n < 0 || (size_t)n >= cap) {
    free(e);
    return NULL;
  }
  *len = (uint32_t)n;
  return e;
}

/* Writes the request's payload into gw->scratch: metadata (composite: the route, the client
 * entry) then data (compact JSON; "null" when absent). */
static rs_payload build_payload(gw_gateway *gw, gw_client *c, const rs_gw_cmd *cmd) {
  uint8_t *buf = gw->scratch;
  size_t cap = gw->scratch_cap, off = 0;
  uint8_t routing[RS_GW_ROUTE_MAX + 1];
  rs_bytes tag = {cmd->route, cmd->route_len};
  rs_ssize rn = rs_routing_encode(routing, sizeof routing, &tag, 1);
  rs_ssize n = rs_composite_encode(buf, cap, RS_MIME_ROUTING, strlen(RS_MIME_ROUTING), routing,
                                   rn > 0 ? (size_t)rn : 0);
  off += n > 0 ? (size_t)n : 0;
  if (!c->entry) /* made at the first request: idle clients do not pay for it */
    c->entry =
        gw_entry_make(c->session_id, rs_ws_session_peer(c->ws), c->user, c->claims, &c->entry_len);
  if (c->entry) {
    n = rs_composite_encode(buf + off, cap - off, GW_CLIENT_MIME, strlen(GW_CLIENT_MIME),
                            (const uint8_t *)c->entry, c->entry_len);
    off += n > 0 ? (size_t)n : 0;
  }
  rs_payload p = {.metadata = {buf, off}, .has_metadata = true};
  uint8_t *data = buf + off;
  if (cmd->data.len == 0) {
    memcpy(data, "null", 4);
    p.data = (rs_bytes){data, 4};
  } else if (rs_gw_json_is_compact(cmd->data.ptr, cmd->data.len)) {
    p.data = cmd->data;
  } else {
    p.data = (rs_bytes){data, rs_gw_json_compact(cmd->data.ptr, cmd->data.len, data)};
  }
  return p;
}

int gw_backend_open(gw_gateway *gw, gw_client *c, gw_stream *st, rs_pool *pool,
                    const rs_gw_cmd *cmd) {
  if (!pool) return RS_ERR_UNAVAILABLE; /* its pool could not be made (out of memory) */
  rs_payload p = build_payload(gw, c, cmd);
  uint32_t window = cmd->has_n ? cmd->n : gw->cfg->credit_window;
  rs_conn *conn = NULL;
  rs_ssize sid;
  switch (st->model) {
  case GW_RR: sid = rs_pool_request_response(pool, &p, st, &conn); break;
  case GW_STREAM: sid = rs_pool_request_stream(pool, &p, window, st, &conn); break;
  default: sid = rs_pool_request_channel(pool, &p, window, false, st, &conn); break;
  }
  if (sid < 0) return (int)sid;
  st->conn = conn;
  st->sid = (uint32_t)sid;
  GW_ADD(gw->stats.streams_open[st->model - 1], 1);
  if (!cmd->has_n) st->outstanding = window;
  if (st->model == GW_RR) timeout_add(gw, st);
  if (!rs_runtime_writable(conn)) gw_client_wait_backend(c);
  return 0;
}

int gw_backend_fnf(gw_gateway *gw, gw_client *c, rs_pool *pool, const rs_gw_cmd *cmd) {
  if (!pool) return RS_ERR_UNAVAILABLE;
  rs_payload p = build_payload(gw, c, cmd);
  rs_conn *conn = NULL;
  rs_ssize rc = rs_pool_request_fnf(pool, &p, &conn);
  if (rc < 0) return (int)rc;
  if (conn && !rs_runtime_writable(conn)) gw_client_wait_backend(c);
  return 0;
}

/* ---- what backends send ---- */

static void on_payload(rs_conn *conn, uint32_t sid, void *stream_user, const rs_payload *p,
                       unsigned flags, void *user) {
  (void)conn, (void)sid;
  gw_gateway *gw = user;
  if (GW_IS_RSOCKET(stream_user)) {
    gw_pt_back_payload(stream_user, p, flags);
    return;
  }
  gw_stream *st = stream_user;
  gw_client *c = st->client;
  if (!c) return; /* the client let go: late elements are dropped */
  rs_gw_id id = gw_stream_id(st);
  if (st->model == GW_RR) {
    rs_bytes data = (flags & RS_PAYLOAD_NEXT) ? p->data : (rs_bytes){0};
    gw_client_forget(c, st);
    gw_stream_release(st, false);
    if (rs_gw_format_payload(&gw->out, &gw->parser, false, &id, data) == 0)
      gw_client_send(c, GW_OUT_CFM);
    return;
  }
  if (flags & RS_PAYLOAD_NEXT) {
    if (!st->client_credit && st->outstanding) st->outstanding--;
    if (rs_gw_format_payload(&gw->out, &gw->parser, true, &id, p->data) == 0 &&
        !gw_client_send(c, GW_OUT_IND))
      return; /* the client is closing: it let go of its streams */
  }
  if (flags & RS_PAYLOAD_COMPLETE) {
    gw_client_forget(c, st);
    /* A channel whose client half is still open: end it too, the client's id is free now. */
    if (st->model == GW_CHANNEL && !st->up_done && !st->up_cancelled && st->conn)
      rs_conn_send_complete(st->conn, st->sid);
    gw_stream_release(st, false);
    if (rs_gw_format_end(&gw->out, &id) == 0) gw_client_send(c, GW_OUT_END);
    return;
  }
  gw_stream_refill(st);
}

/* The name a client sees for a backend's error. */
static const char *error_code(const rs_stream_error *e) {
  if (e->remote) {
    switch (e->code) {
    case RS_ERROR_APPLICATION_ERROR:
    case RS_ERROR_REJECTED:
    case RS_ERROR_CANCELED:
    case RS_ERROR_INVALID: return rs_error_code_name(e->code);
    default:
      if (e->code >= RS_ERROR_MIN_APPLICATION && e->code != RS_ERROR_RESERVED_EXT)
        return "APPLICATION_ERROR";
      return "UNAVAILABLE"; /* a connection-level error took the stream with it */
    }
  }
  return "UNAVAILABLE";
}

static void on_error(rs_conn *conn, uint32_t sid, void *stream_user, const rs_stream_error *e,
                     void *user) {
  (void)conn, (void)sid, (void)user;
  if (GW_IS_RSOCKET(stream_user)) {
    gw_pt_back_error(stream_user, e);
    return;
  }
  gw_stream *st = stream_user;
  gw_client *c = st->client;
  if (!c) return;
  const char *msg = (const char *)e->message.ptr;
  size_t len = e->message.len;
  char buf[160];
  if (!e->remote) {
    int n = snprintf(buf, sizeof buf, "%s: %.*s",
                     e->err == RS_ERR_CLOSED ? "the backend connection was lost"
                                             : "backend stream failed",
                     (int)(len > 100 ? 100 : len), msg ? msg : "");
    msg = buf;
    len = (size_t)n;
  }
  gw_client_reject(c, st, error_code(e), msg, len);
  gw_stream_release(st, false);
}

static void on_request_n(rs_conn *conn, uint32_t sid, void *stream_user, uint64_t n, void *user) {
  (void)conn, (void)sid, (void)user;
  if (GW_IS_RSOCKET(stream_user)) {
    gw_pt_back_request_n(stream_user, n);
    return;
  }
  gw_stream *st = stream_user;
  if (st->model != GW_CHANNEL) return;
  st->up_credit = n == RS_CREDIT_UNBOUNDED || st->up_credit + n < st->up_credit
                      ? RS_CREDIT_UNBOUNDED
                      : st->up_credit + n;
  gw_stream_flush_up(st);
}

static void on_cancel(rs_conn *conn, uint32_t sid, void *stream_user, void *user) {
  (void)conn, (void)sid, (void)user;
  if (GW_IS_RSOCKET(stream_user)) {
    gw_pt_back_cancel(stream_user);
    return;
  }
  gw_stream *st = stream_user;
  st->up_cancelled = true;
  st->up_done = true;
  for (gw_up *u = st->up_head, *next; u; u = next) {
    next = u->next;
    free(u);
  }
  st->up_head = st->up_tail = NULL;
  st->up_count = 0;
  gw_stream_flush_up(st); /* unblocks the client's reading if this channel blocked it */
}

static void on_stream_closed(rs_conn *conn, uint32_t sid, void *stream_user, void *user) {
  (void)conn, (void)sid;
  gw_gateway *gw = user;
  if (GW_IS_RSOCKET(stream_user)) {
    gw_pt_back_closed(stream_user);
    return;
  }
  gw_stream *st = stream_user;
  GW_ADD(gw->stats.streams_open[st->model - 1], (uint64_t)-1);
  st->conn = NULL;
  if (!st->client) stream_free(st);
}

/* The backend's own requests: pushes (push.c). */
static int on_backend_request(rs_conn *conn, const rs_request *req, void *user) {
  return gw_push_request(conn, req, user);
}

/* A backend connection's output fell back under its watermark: read the clients paused for it
 * again. */
static void on_backend_drained(rs_conn *conn, void *user) {
  gw_gateway *gw = user;
  gw_pt_backend_drained(gw, conn);
  gw_client *list = gw->waiting;
  gw->waiting = NULL;
  while (list) {
    gw_client *c = list;
    list = c->wait_next;
    c->wait_next = NULL;
    c->waiting_backend = false;
    gw_client_update_reading(c);
  }
}

/* ---- the pools ---- */

static gw_pool *pool_find(gw_gateway *gw, rs_pool *pool) {
  for (gw_pool *gp = gw->all; gp; gp = gp->next)
    if (gp->pool == pool) return gp;
  return NULL;
}

/* The `down` flags cover target indices below `n` (new ones clear). */
static void down_cover(gw_gateway *gw, gw_pool *gp, size_t n) {
  if (n <= gp->n_down) return;
  size_t k = (size_t)gw->cfg->connections;
  uint8_t *d = realloc(gp->down, n * k);
  if (!d) return; /* then failures are logged at every retry */
  memset(d + gp->n_down * k, 0, (n - gp->n_down) * k);
  gp->down = d;
  gp->n_down = n;
}

static void on_pool_event(rs_pool *pool, size_t target, int slot, rs_client_event ev,
                          const char *message, void *user) {
  gw_gateway *gw = user;
  static const char *const names[] = {[RS_CLIENT_CONNECTED] = "backend_connected",
                                      [RS_CLIENT_DISCONNECTED] = "backend_lost",
                                      [RS_CLIENT_RESUMED] = "backend_resumed",
                                      [RS_CLIENT_RECONNECTING] = "backend_retry",
                                      [RS_CLIENT_CLOSED] = "backend_closed"};
  if ((unsigned)ev >= sizeof names / sizeof names[0] || ev == RS_CLIENT_CLOSED) return;
  if (ev == RS_CLIENT_DISCONNECTED) gw_pt_backend_drained(gw, NULL); /* its drain never comes */
  /* A backend that stays down is retried every second or so: say so once, not every time. */
  gw_pool *gp = pool_find(gw, pool);
  if (gp) down_cover(gw, gp, target + 1);
  uint8_t *down = gp && target < gp->n_down
                      ? &gp->down[target * (size_t)gw->cfg->connections + (size_t)slot]
                      : NULL;
  if (down) {
    if (ev == RS_CLIENT_RECONNECTING && *down) return;
    *down = ev == RS_CLIENT_RECONNECTING || ev == RS_CLIENT_DISCONNECTED;
  }
  rs_pool_target_stats st;
  if (rs_pool_target_stats_get(pool, target, &st) != 0) return;
  if (st.draining) return; /* removed by a reload: its closing is expected (backend_drained) */
  char worker[12], conn[12];
  snprintf(worker, sizeof worker, "%d", gw->index);
  snprintf(conn, sizeof conn, "%d", slot);
  gw_log(gw->cfg, names[ev], "backend", st.uri, "worker", worker, "connection", conn, "why",
         message ? message : "", NULL);
}

static void health_tick(uv_timer_t *t);

static void on_backend_frame(rs_conn *conn, bool outbound, const uint8_t *frame, size_t len,
                             void *user) {
  (void)conn;
  gw_stats_frame(user, outbound, frame, len);
}

/* A new pool for backend list `g` of `t`, on the worker's list. NULL with a reason in `err`. */
static gw_pool *pool_new(gw_gateway *gw, const gw_table *t, size_t g, char *err, size_t errlen) {
  const gw_config *cfg = gw->cfg;
  gw_pool *gp = calloc(1, sizeof *gp);
  if (!gp) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  rs_pool_options o;
  rs_pool_options_default(&o);
  o.uris = (const char *const *)t->groups[g].uris;
  o.n_uris = t->groups[g].n_uris;
  o.connections = cfg->connections;
  o.strategy = cfg->lb;
  o.user = gw;
  o.client.settings.metadata_mime = rs_bytes_str(RS_MIME_COMPOSITE_METADATA);
  o.client.settings.data_mime = rs_bytes_str("application/json");
  o.client.settings.lease = cfg->backend_lease;
  if (cfg->backend_resume_ms) { /* each connection gets its own token from the pool */
    o.client.settings.resume = true;
    o.client.settings.resume_session_timeout_ms = cfg->backend_resume_ms;
  }
  o.client.on_drained = on_backend_drained;
  o.client.on_frame = on_backend_frame;
  o.on_event = on_pool_event;
  o.client.probe_at_once = true; /* established one round trip after SETUP */
  rs_conn_callbacks *cb = &o.client.callbacks;
  cb->struct_size = sizeof *cb;
  cb->on_payload = on_payload;
  cb->on_error = on_error;
  cb->on_request_n = on_request_n;
  cb->on_cancel = on_cancel;
  cb->on_stream_closed = on_stream_closed;
  cb->on_request = on_backend_request;
  /* On the list before it starts: its first events look it up. */
  gp->next = gw->all;
  gw->all = gp;
  down_cover(gw, gp, o.n_uris);
  char why[300];
  if (rs_pool_start(&gp->pool, gw->loop, &o, why, sizeof why) != 0) {
    snprintf(err, errlen, "backends %s: %s", t->groups[g].uris[0], why);
    gw->all = gp->next;
    free(gp->down);
    free(gp);
    return NULL;
  }
  return gp;
}

/* The route patterns of `t` whose backend list is `g`, space-separated. */
static char *label_of(const gw_table *t, size_t g) {
  size_t len = 1;
  for (size_t r = 0; r < t->n_routes; r++)
    if (t->routes[r].group == g) len += strlen(t->routes[r].pattern) + 1;
  char *l = malloc(len), *p = l;
  if (!l) return NULL;
  for (size_t r = 0; r < t->n_routes; r++)
    if (t->routes[r].group == g) {
      if (p != l) *p++ = ' ';
      size_t n = strlen(t->routes[r].pattern);
      memcpy(p, t->routes[r].pattern, n);
      p += n;
    }
  *p = '\0';
  return l;
}

int gw_backend_start(gw_gateway *gw, char *err, size_t errlen) {
  const gw_config *cfg = gw->cfg;
  const gw_table *t = gw->table;
  uv_timer_init(gw->loop, &gw->timer);
  gw->timer.data = gw;
  uv_timer_init(gw->loop, &gw->health);
  gw->health.data = gw;
  uv_timer_init(gw->loop, &gw->auth_timer);
  gw->auth_timer.data = gw;
  uv_timer_init(gw->loop, &gw->pt_timer);
  gw->pt_timer.data = gw;
  uv_timer_init(gw->loop, &gw->pt_lease);
  gw->pt_lease.data = gw;
  gw->timers = true;
  gw->pools = calloc(t->n_groups, sizeof *gw->pools);
  gw->scratch_cap = cfg->max_message + 2048;
  gw->scratch = malloc(gw->scratch_cap);
  if (!gw->pools || !gw->scratch) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  /* Made last first, so that the list (newest first) is in the table's order. */
  for (size_t g = t->n_groups; g-- > 0;) {
    if (!(gw->pools[g] = pool_new(gw, t, g, err, errlen))) return -1;
    gw->pools[g]->label = label_of(t, g);
  }
  uv_timer_start(&gw->health, health_tick, 100, 250);
  gw_client_auth_start(gw);
  gw_pt_start(gw);
  return 0;
}

rs_pool *gw_route_pool(gw_gateway *gw, long route) {
  gw_pool *gp = route >= 0 ? gw->pools[gw->table->routes[route].group] : NULL;
  return gp ? gp->pool : NULL;
}

bool gw_backend_any_connected(gw_gateway *gw) {
  for (size_t g = 0; gw->pools && g < gw->table->n_groups; g++)
    if (gw->pools[g] && rs_pool_available(gw->pools[g]->pool) > 0) return true;
  return false;
}

void gw_backend_capacity(gw_gateway *gw, double *usable, double *total) {
  *usable = *total = 0;
  for (size_t g = 0; gw->pools && g < gw->table->n_groups; g++) {
    rs_pool *pool = gw->pools[g] ? gw->pools[g]->pool : NULL;
    for (size_t t = 0; pool && t < rs_pool_targets(pool); t++) {
      rs_pool_target_stats st;
      if (rs_pool_target_stats_get(pool, t, &st) != 0 || st.draining) continue;
      *total += gw->cfg->connections;
      *usable += st.candidates * st.availability;
    }
  }
}

/* ---- reloads: the worker adopts a new table ---- */

static void log_backend(gw_gateway *gw, const char *event, const gw_pool *gp, const char *uri,
                        const char *streams) {
  char worker[12];
  snprintf(worker, sizeof worker, "%d", gw->index);
  const char *pool = gp->label ? gp->label : "";
  if (streams)
    gw_log(gw->cfg, event, "backend", uri, "pool", pool, "worker", worker, "streams", streams,
           NULL);
  else
    gw_log(gw->cfg, event, "backend", uri, "pool", pool, "worker", worker, NULL);
}

static bool group_has(const gw_group *grp, const char *uri) {
  for (size_t i = 0; i < grp->n_uris; i++)
    if (strcmp(grp->uris[i], uri) == 0) return true;
  return false;
}

/* The index of the pool's target with `uri` that is not draining, or -1. */
static long pool_serves(rs_pool *pool, const char *uri) {
  for (size_t t = 0; t < rs_pool_targets(pool); t++) {
    rs_pool_target_stats st;
    if (rs_pool_target_stats_get(pool, t, &st) == 0 && !st.draining && strcmp(st.uri, uri) == 0)
      return (long)t;
  }
  return -1;
}

/* How many of the group's backends the pool serves; *exact: those and no other. */
static size_t overlap(rs_pool *pool, const gw_group *grp, bool *exact) {
  size_t active = 0, common = 0;
  for (size_t t = 0; t < rs_pool_targets(pool); t++) {
    rs_pool_target_stats st;
    if (rs_pool_target_stats_get(pool, t, &st) != 0 || st.draining) continue;
    active++;
    common += group_has(grp, st.uri);
  }
  size_t wanted = 0;
  for (size_t i = 0; i < grp->n_uris; i++) wanted += pool_serves(pool, grp->uris[i]) >= 0;
  *exact = common == active && wanted == grp->n_uris;
  return common;
}

/* Target `t` leaves the pool: no new request; its streams go on until they end, within
 * --drain-timeout; then its connections close. */
static void remove_backend(gw_gateway *gw, gw_pool *gp, size_t t) {
  rs_pool_target_stats st;
  if (rs_pool_target_stats_get(gp->pool, t, &st) != 0 || st.draining) return;
  char streams[24];
  snprintf(streams, sizeof streams, "%" PRIu64, st.streams + st.in_flight);
  log_backend(gw, "backend_removed", gp, st.uri, streams);
  rs_pool_remove_target(gp->pool, t, gw->cfg->drain_timeout_ms);
}

static void add_backend(gw_gateway *gw, gw_pool *gp, const char *uri) {
  char why[300];
  rs_ssize t = rs_pool_add_target(gp->pool, uri, why, sizeof why);
  if (t < 0) {
    char worker[12];
    snprintf(worker, sizeof worker, "%d", gw->index);
    gw_log(gw->cfg, "backend_add_failed", "backend", uri, "worker", worker, "why", why, NULL);
    return;
  }
  size_t k = (size_t)gw->cfg->connections;
  down_cover(gw, gp, (size_t)t + 1);
  if ((size_t)t < gp->n_down) memset(gp->down + (size_t)t * k, 0, k); /* a reused index */
  log_backend(gw, "backend_added", gp, uri, NULL);
}

/* The pool serves exactly the group's backends from now on. */
static void pool_edit(gw_gateway *gw, gw_pool *gp, const gw_group *grp) {
  for (size_t t = 0; t < rs_pool_targets(gp->pool); t++) {
    rs_pool_target_stats st;
    if (rs_pool_target_stats_get(gp->pool, t, &st) == 0 && !st.draining && !group_has(grp, st.uri))
      remove_backend(gw, gp, t);
  }
  for (size_t i = 0; i < grp->n_uris; i++)
    if (pool_serves(gp->pool, grp->uris[i]) < 0) add_backend(gw, gp, grp->uris[i]);
}

/* No route uses the pool any more: its backends drain, then it closes (health_tick). */
static void pool_drain(gw_gateway *gw, gw_pool *gp) {
  gp->draining = true;
  for (size_t t = 0; t < rs_pool_targets(gp->pool); t++) remove_backend(gw, gp, t);
}

static void log_reload_failed(gw_gateway *gw, const char *why) {
  char worker[12];
  snprintf(worker, sizeof worker, "%d", gw->index);
  gw_log(gw->cfg, "config_reload_failed", "worker", worker, "why", why, NULL);
}

void gw_backend_reload(gw_gateway *gw, gw_table *t) {
  if (gw->stopping) {
    gw_table_unref(t);
    return;
  }
  size_t n_slots = 1;
  for (size_t r = 0; r < t->n_routes; r++)
    if ((size_t)t->routes[r].slot + 1 > n_slots) n_slots = (size_t)t->routes[r].slot + 1;
  gw_table *old = gw->table;
  gw_pool **np = calloc(t->n_groups, sizeof *np);
  bool *claimed = calloc(old->n_groups + 1, sizeof *claimed);
  bool *edit = calloc(t->n_groups + 1, sizeof *edit);
  if (!np || !claimed || !edit || gw_stats_grow(gw, n_slots) != 0) {
    free(np);
    free(claimed);
    free(edit);
    log_reload_failed(gw, "out of memory: this worker keeps the old routes");
    gw_table_unref(t);
    return;
  }
  /* Backend lists that stay keep their pool; a list that changed takes the old pool that has
   * most of its backends and is edited; the others get new pools. */
  for (size_t g = 0; g < t->n_groups; g++)
    for (size_t i = 0; i < old->n_groups && !np[g]; i++) {
      bool exact;
      if (claimed[i] || !gw->pools[i]) continue;
      overlap(gw->pools[i]->pool, &t->groups[g], &exact);
      if (exact) np[g] = gw->pools[i], claimed[i] = true;
    }
  for (size_t g = 0; g < t->n_groups; g++) {
    if (np[g]) continue;
    size_t best = 0, best_i = 0;
    for (size_t i = 0; i < old->n_groups; i++) {
      bool exact;
      size_t n =
          claimed[i] || !gw->pools[i] ? 0 : overlap(gw->pools[i]->pool, &t->groups[g], &exact);
      if (n > best) best = n, best_i = i;
    }
    if (!best) continue;
    np[g] = gw->pools[best_i];
    claimed[best_i] = true;
    edit[g] = true;
  }
  /* The labels (for /metrics and the log lines below) first: the pools serve the new routes. */
  for (size_t g = 0; g < t->n_groups; g++)
    if (np[g]) {
      free(np[g]->label);
      np[g]->label = label_of(t, g);
    }
  for (size_t g = 0; g < t->n_groups; g++)
    if (edit[g]) pool_edit(gw, np[g], &t->groups[g]);
  for (size_t g = 0; g < t->n_groups; g++) {
    if (np[g]) continue;
    char err[400];
    if (!(np[g] = pool_new(gw, t, g, err, sizeof err))) {
      log_reload_failed(gw, err); /* the routes of that list get UNAVAILABLE */
      continue;
    }
    np[g]->label = label_of(t, g);
    for (size_t i = 0; i < t->groups[g].n_uris; i++)
      log_backend(gw, "backend_added", np[g], t->groups[g].uris[i], NULL);
  }
  for (size_t i = 0; i < old->n_groups; i++)
    if (!claimed[i] && gw->pools[i]) pool_drain(gw, gw->pools[i]);
  free(claimed);
  free(edit);
  /* The list in the new table's order, then what drains. */
  gw_pool *rest = NULL, **tail = &rest;
  for (gw_pool *gp = gw->all, *next; gp; gp = next) {
    next = gp->next;
    bool current = false;
    for (size_t g = 0; g < t->n_groups && !current; g++) current = np[g] == gp;
    if (!current) *tail = gp, tail = &gp->next;
  }
  *tail = NULL;
  for (size_t g = t->n_groups; g-- > 0;) {
    if (!np[g]) continue;
    bool listed = false; /* two groups never share a pool, but be safe */
    for (gw_pool *gp = rest; gp && !listed; gp = gp->next) listed = gp == np[g];
    if (!listed) np[g]->next = rest, rest = np[g];
  }
  gw->all = rest;
  free(gw->pools);
  gw->pools = np;
  gw->table = t;
  gw_table_unref(old);
  gw->snap_dirty = true;
  gw_stats_snapshot(gw);
  atomic_store(&gw->backends_up, gw_backend_any_connected(gw));
}

/* ---- closing: pools, timers ---- */

static void stop_step(gw_gateway *gw) {
  if (--gw->stop_pending == 0 && gw->stop_done) gw->stop_done(gw);
}

/* A pool is gone (drained after a reload, or closed by the stop): off the list, freed. */
static void pool_closed(void *arg) {
  gw_pool *gp = arg;
  gw_gateway *gw = rs_pool_user(gp->pool); /* the pool is freed after this returns */
  for (gw_pool **pp = &gw->all; *pp; pp = &(*pp)->next)
    if (*pp == gp) {
      *pp = gp->next;
      break;
    }
  gw->snap_dirty = true;
  free(gp->label);
  free(gp->down);
  free(gp);
  if (gw->stopping) stop_step(gw);
}

static void health_tick(uv_timer_t *t) {
  gw_gateway *gw = t->data;
  atomic_store(&gw->backends_up, gw_backend_any_connected(gw));
  /* A pool no route uses closes once its drained targets are gone. */
  for (gw_pool *gp = gw->all; gp; gp = gp->next)
    if (gp->draining && !gp->closing && rs_pool_targets(gp->pool) == 0) {
      gp->closing = true;
      rs_pool_close(gp->pool, false, pool_closed, gp);
    }
  gw_stats_snapshot(gw);
}

static void handle_closed(uv_handle_t *h) {
  stop_step(h->data);
}

void gw_backend_stop(gw_gateway *gw, void (*done)(gw_gateway *gw)) {
  gw->stop_done = done;
  gw->stopping = true;
  gw->stop_pending = 1; /* this call's own */
  /* Every pool, draining or closing already, ends with one pool_closed. */
  for (gw_pool *gp = gw->all; gp; gp = gp->next) {
    gw->stop_pending++;
    gp->closing = true;
    rs_pool_close(gp->pool, false, pool_closed, gp);
  }
  if (gw->timers) {
    gw->stop_pending += 5;
    uv_close((uv_handle_t *)&gw->pt_timer, handle_closed);
    uv_close((uv_handle_t *)&gw->pt_lease, handle_closed);
    uv_close((uv_handle_t *)&gw->auth_timer, handle_closed);
    uv_close((uv_handle_t *)&gw->timer, handle_closed);
    uv_close((uv_handle_t *)&gw->health, handle_closed);
  }
  stop_step(gw);
}
