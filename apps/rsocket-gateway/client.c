/* rsocket-gateway: one browser's WebSocket session, its messages and its open requests. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

/* ---- the id table (open addressing, linear probing, tombstone-free deletion) ---- */

static uint32_t id_hash(rs_gw_id_kind kind, const uint8_t *p, size_t n) {
  uint32_t h = 2166136261u ^ (uint32_t)kind;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

static bool id_equal(const gw_stream *st, rs_gw_id_kind kind, const uint8_t *p, size_t n) {
  return st->id_kind == kind && st->id_len == n && memcmp(st->id, p, n) == 0;
}

static gw_stream *table_find(const gw_client *c, const rs_gw_id *id) {
  if (!c->cap) return NULL;
  uint32_t mask = c->cap - 1;
  for (uint32_t i = id_hash(id->kind, id->text.ptr, id->text.len) & mask;; i = (i + 1) & mask) {
    gw_stream *st = c->table[i];
    if (!st) return NULL;
    if (id_equal(st, id->kind, id->text.ptr, id->text.len)) return st;
  }
}

static void table_put_raw(gw_stream **table, uint32_t cap, gw_stream *st) {
  uint32_t mask = cap - 1;
  uint32_t i = id_hash(st->id_kind, (const uint8_t *)st->id, st->id_len) & mask;
  while (table[i]) i = (i + 1) & mask;
  table[i] = st;
}

static bool table_put(gw_client *c, gw_stream *st) {
  if ((c->count + 1) * 4 > c->cap * 3) { /* keep the load under 3/4 */
    uint32_t ncap = c->cap ? c->cap * 2 : 8;
    gw_stream **nt = calloc(ncap, sizeof *nt);
    if (!nt) return false;
    for (uint32_t i = 0; i < c->cap; i++)
      if (c->table[i]) table_put_raw(nt, ncap, c->table[i]);
    free(c->table);
    c->table = nt;
    c->cap = ncap;
  }
  table_put_raw(c->table, c->cap, st);
  c->count++;
  return true;
}

/* Backward-shift deletion: the entries after the hole that hash at or before it move up. */
static void table_remove(gw_client *c, gw_stream *st) {
  uint32_t mask = c->cap - 1;
  uint32_t i = id_hash(st->id_kind, (const uint8_t *)st->id, st->id_len) & mask;
  while (c->table[i] != st) {
    if (!c->table[i]) return;
    i = (i + 1) & mask;
  }
  c->table[i] = NULL;
  c->count--;
  for (uint32_t j = (i + 1) & mask; c->table[j]; j = (j + 1) & mask) {
    gw_stream *e = c->table[j];
    uint32_t home = id_hash(e->id_kind, (const uint8_t *)e->id, e->id_len) & mask;
    /* e may fill the hole at i when its home is not in the cyclic range (i, j]. */
    bool in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!in_range) {
      c->table[i] = e;
      c->table[j] = NULL;
      i = j;
    }
  }
}

/* ---- sending ---- */

static void close_client(gw_client *c, unsigned code, const char *reason);

/* A client whose unsent output is already over --max-buffer when more must be queued for it
 * reads slower than it asks: it is closed (1008). The check comes before the message is queued,
 * so one large message alone (a cfm bigger than --max-buffer, read promptly) never trips it: the
 * queue is bounded by --max-buffer plus one message, as for RSocket clients (front_room). */
static bool send_bytes(gw_client *c, const uint8_t *msg, size_t len, int type) {
  gw_gateway *gw = c->gw;
  if (c->closing) return false;
  int rc = rs_ws_session_queued(c->ws) > gw->cfg->max_buffer
               ? RS_ERR_WOULD_BLOCK
               : rs_ws_session_send(c->ws, true, msg, len);
  if (rc == RS_ERR_WOULD_BLOCK) {
    GW_ADD(gw->stats.slow_consumers, 1);
    close_client(c, 1008, "slow consumer");
    return false;
  }
  if (rc != 0) return false;
  GW_ADD(gw->stats.msgs_out[type], 1);
  GW_ADD(gw->stats.client_bytes[1], len);
  if (!c->out_full && !rs_ws_session_writable(c->ws)) {
    c->out_full = true;
    gw_client_update_reading(c);
  }
  /* Draining: the answer to the last req in flight is queued; the close goes after it. */
  if (c->rr_open == 0 && atomic_load_explicit(gw->draining, memory_order_relaxed))
    close_client(c, 1001, "gateway shutting down");
  return true;
}

void gw_client_drain_all(gw_gateway *gw) {
  for (uint32_t i = 0; i < gw->sessions_cap; i++) {
    gw_client *c = gw->sessions[i];
    if (c && c->rr_open == 0) close_client(c, 1001, "gateway shutting down");
  }
}

bool gw_client_send(gw_client *c, int type) {
  gw_gateway *gw = c->gw;
  size_t len = gw->out.len;
  gw->out.len = 0;
  return send_bytes(c, gw->out.ptr, len, type);
}

bool gw_client_send_copy(gw_client *c, const uint8_t *msg, size_t len) {
  return send_bytes(c, msg, len, GW_OUT_IND);
}

void gw_client_update_reading(gw_client *c) {
  bool pause = c->out_full || c->waiting_backend || c->blocked_chans > 0;
  if (pause != c->paused && !c->closing) {
    c->paused = pause;
    rs_ws_session_pause_reading(c->ws, pause);
  }
}

void gw_client_wait_backend(gw_client *c) {
  if (c->waiting_backend) return;
  c->waiting_backend = true;
  c->wait_next = c->gw->waiting;
  c->gw->waiting = c;
  gw_client_update_reading(c);
}

static void unlink_waiting(gw_client *c) {
  if (!c->waiting_backend) return;
  for (gw_client **pp = &c->gw->waiting; *pp; pp = &(*pp)->wait_next)
    if (*pp == c) {
      *pp = c->wait_next;
      break;
    }
  c->waiting_backend = false;
}

void gw_client_starve(gw_client *c, gw_stream *st) {
  if (st->starved) return;
  st->starved = true;
  st->starved_next = c->starved;
  c->starved = st;
}

void gw_client_forget(gw_client *c, gw_stream *st) {
  if (st->model == GW_RR) c->rr_open--;
  if (st->starved) {
    for (gw_stream **pp = &c->starved; *pp; pp = &(*pp)->starved_next)
      if (*pp == st) {
        *pp = st->starved_next;
        break;
      }
    st->starved = false;
  }
  if (st->blocked) {
    st->blocked = false;
    c->blocked_chans--;
    gw_client_update_reading(c);
  }
  table_remove(c, st);
}

/* Counted under the route of the message being handled (gw->cur_route, a stats slot; 0: none
 * known). */
static void send_rej(gw_client *c, const rs_gw_id *id, const char *code, const char *message,
                     size_t len) {
  gw_gateway *gw = c->gw;
  size_t row = gw->cur_route > 0 ? (size_t)gw->cur_route : 0;
  GW_ADD(gw->stats.errors[row * GW_CODE_COUNT + (size_t)gw_code_of(code)], 1);
  if (rs_gw_format_rej(&gw->out, id, code, (rs_bytes){(const uint8_t *)message, len}) == 0)
    gw_client_send(c, GW_OUT_REJ);
}

void gw_client_reject(gw_client *c, gw_stream *st, const char *code, const char *message,
                      size_t message_len) {
  rs_gw_id id = gw_stream_id(st);
  gw_client_forget(c, st);
  c->gw->cur_route = st->route;
  send_rej(c, &id, code, message, message_len);
}

static void rejectf(gw_client *c, const rs_gw_id *id, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void rejectf(gw_client *c, const rs_gw_id *id, const char *code, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof msg) n = sizeof msg - 1;
  send_rej(c, id, code, msg, (size_t)n);
}

/* Every open request of the client is cancelled (it closes, or is closed). */
static void release_all(gw_client *c) {
  gw_stream **table = c->table;
  uint32_t cap = c->cap;
  c->table = NULL;
  c->cap = c->count = c->rr_open = 0;
  c->starved = NULL;
  for (uint32_t i = 0; i < cap; i++)
    if (table[i]) gw_stream_release(table[i], true);
  free(table);
}

static void close_client(gw_client *c, unsigned code, const char *reason) {
  if (c->closing) return;
  c->closing = true;
  release_all(c);
  unlink_waiting(c);
  rs_ws_session_close(c->ws, code, reason);
}

/* ---- messages ---- */

static const char *model_word(gw_model m) {
  return m == GW_RR ? "req" : m == GW_STREAM ? "sub" : "chan";
}

static void open_request(gw_client *c, const rs_gw_cmd *cmd, gw_model model) {
  gw_gateway *gw = c->gw;
  const gw_config *cfg = gw->cfg;
  long route = gw_table_lookup(gw->table, cmd->route, cmd->route_len);
  uint16_t slot = gw_route_slot(gw, route);
  gw->cur_route = slot;
  GW_ADD(gw->stats.requests[(size_t)slot * GW_MODEL_COUNT + (size_t)(model - 1)], 1);
  if (table_find(c, &cmd->id)) {
    rejectf(c, &cmd->id, "BAD_REQUEST", "id %.*s is already open", (int)cmd->id.text.len,
            (const char *)cmd->id.text.ptr);
    return;
  }
  if (c->count >= cfg->max_streams) {
    rejectf(c, &cmd->id, "TOO_MANY_STREAMS",
            "%" PRIu32 " requests and subscriptions are open (--max-streams-per-client)",
            cfg->max_streams);
    return;
  }
  if (route < 0) {
    rejectf(c, &cmd->id, "NO_ROUTE", "no backend serves route '%.*s'", (int)cmd->route_len,
            (const char *)cmd->route);
    return;
  }
  gw_stream *st = calloc(1, sizeof *st + cmd->id.text.len + 1);
  if (!st) {
    rejectf(c, &cmd->id, "UNAVAILABLE", "the gateway is out of memory");
    return;
  }
  st->client = c;
  st->model = model;
  st->client_credit = cmd->has_n;
  st->id_kind = cmd->id.kind;
  st->id_num = cmd->id.num;
  st->id_len = (uint8_t)cmd->id.text.len;
  memcpy(st->id, cmd->id.text.ptr, cmd->id.text.len);
  if (atomic_load_explicit(gw->draining, memory_order_relaxed)) {
    free(st);
    rejectf(c, &cmd->id, "UNAVAILABLE", "the gateway is shutting down");
    return;
  }
  if (model == GW_RR) c->rr_open++;
  if (!table_put(c, st)) {
    if (model == GW_RR) c->rr_open--;
    free(st);
    rejectf(c, &cmd->id, "UNAVAILABLE", "the gateway is out of memory");
    return;
  }
  st->route = slot;
  int rc = gw_backend_open(gw, c, st, gw_route_pool(gw, route), cmd);
  if (rc != 0) {
    gw_client_forget(c, st);
    gw_stream_release(st, false); /* no backend stream: freed now */
    rejectf(c, &cmd->id, "UNAVAILABLE", "no backend can take %s '%.*s' now: %s", model_word(model),
            (int)cmd->route_len, (const char *)cmd->route,
            rc == RS_ERR_UNAVAILABLE ? "none is connected or has lease" : rs_strerror(rc));
  }
}

static void on_fnf(gw_client *c, const rs_gw_cmd *cmd) {
  bool answer = cmd->id.kind != RS_GW_ID_NONE;
  long route = gw_table_lookup(c->gw->table, cmd->route, cmd->route_len);
  uint16_t slot = gw_route_slot(c->gw, route);
  c->gw->cur_route = slot;
  GW_ADD(c->gw->stats.requests[(size_t)slot * GW_MODEL_COUNT + GW_M_FNF], 1);
  if (route < 0) {
    if (answer)
      rejectf(c, &cmd->id, "NO_ROUTE", "no backend serves route '%.*s'", (int)cmd->route_len,
              (const char *)cmd->route);
    return;
  }
  int rc = gw_backend_fnf(c->gw, c, gw_route_pool(c->gw, route), cmd);
  if (rc != 0 && answer)
    rejectf(c, &cmd->id, "UNAVAILABLE", "no backend can take fnf '%.*s' now: %s",
            (int)cmd->route_len, (const char *)cmd->route,
            rc == RS_ERR_UNAVAILABLE ? "none is connected or has lease" : rs_strerror(rc));
}

/* more, unsub, send, done: on an open sub or chan. A message for an id that is not open is
 * dropped (it may have crossed the end or rej that closed it); one that does not fit the request
 * gets a rej with "id":null, which leaves the request open. */
static gw_stream *find_open(gw_client *c, const rs_gw_cmd *cmd, const char *what, bool chan_only) {
  gw_stream *st = table_find(c, &cmd->id);
  if (!st) return NULL;
  if (st->model == GW_RR || (chan_only && st->model != GW_CHANNEL)) {
    rs_gw_id none = {0};
    rejectf(c, &none, "BAD_REQUEST", "%s: id %.*s is a %s, not a %s", what, (int)cmd->id.text.len,
            (const char *)cmd->id.text.ptr, model_word(st->model),
            chan_only ? "chan" : "sub or chan");
    return NULL;
  }
  return st;
}

static void on_more(gw_client *c, const rs_gw_cmd *cmd) {
  gw_stream *st = find_open(c, cmd, "more", false);
  if (!st) return;
  if (!st->client_credit) {
    rs_gw_id none = {0};
    rejectf(c, &none, "BAD_REQUEST",
            "more: id %.*s was opened without \"n\": the gateway manages its credit",
            (int)cmd->id.text.len, (const char *)cmd->id.text.ptr);
    return;
  }
  if (st->conn) rs_conn_request_n(st->conn, st->sid, cmd->n);
}

static void on_unsub(gw_client *c, const rs_gw_cmd *cmd) {
  gw_stream *st = find_open(c, cmd, "unsub", false);
  if (!st) return;
  gw_client_forget(c, st);
  gw_stream_release(st, true);
}

static void on_send(gw_client *c, const rs_gw_cmd *cmd, bool done) {
  gw_stream *st = find_open(c, cmd, done ? "done" : "send", true);
  if (!st) return;
  if (st->up_done) {
    if (!st->up_cancelled) {
      rs_gw_id none = {0};
      rejectf(c, &none, "BAD_REQUEST", "%s: chan %.*s was already done", done ? "done" : "send",
              (int)cmd->id.text.len, (const char *)cmd->id.text.ptr);
    }
    return; /* the backend cancelled our half: elements are dropped */
  }
  if (done) {
    st->up_done = true;
    gw_stream_flush_up(st);
    return;
  }
  rs_bytes data = cmd->data.len ? cmd->data : (rs_bytes){(const uint8_t *)"null", 4};
  gw_up *u = malloc(sizeof *u + data.len);
  if (!u) {
    close_client(c, 1011, "out of memory");
    return;
  }
  u->next = NULL;
  u->len = rs_gw_json_compact(data.ptr, data.len, u->data);
  if (st->up_tail)
    st->up_tail->next = u;
  else
    st->up_head = u;
  st->up_tail = u;
  st->up_count++;
  gw_stream_flush_up(
      st); /* sends what the backend has credit for; blocks reading over the window */
}

/* ---- authentication ---- */

static void session_hex(const gw_client *c, char out[20]) {
  snprintf(out, 20, "%016" PRIx64, c->session_id);
}

static void set_authed(gw_client *c, char *user, char *claims) {
  c->authed = true;
  c->user = user;
  c->claims = claims;
  c->gw->unauthed--;
  char sid[20];
  session_hex(c, sid);
  gw_log(c->gw->cfg, "client_auth", "session", sid, "user", user, NULL);
}

/* Checks `token`: authenticated, or closed with 4401 and the reason. */
static bool authenticate(gw_client *c, const char *token) {
  char *user, *claims, why[120];
  if (gw_auth_check(c->gw->cfg, token, &user, &claims, why, sizeof why) != 0) {
    close_client(c, 4401, why);
    return false;
  }
  set_authed(c, user, claims);
  return true;
}

static void on_hello(gw_client *c, const rs_gw_cmd *cmd) {
  if (!gw_auth_enabled(c->gw->cfg) || c->authed) {
    rejectf(c, &cmd->id, "BAD_REQUEST",
            c->user ? "already authenticated" : "this gateway has no authentication");
    return;
  }
  char token[RS_GW_TOKEN_MAX + 1];
  memcpy(token, cmd->token.ptr, cmd->token.len);
  token[cmd->token.len] = '\0';
  if (!authenticate(c, token)) return;
  char sid[20];
  session_hex(c, sid);
  if (rs_gw_format_welcome(&c->gw->out, sid, rs_bytes_str(c->user)) == 0)
    gw_client_send(c, GW_OUT_WELCOME);
}

/* The ?token= of the upgrade being accepted on this thread: on_upgrade and the on_open of the
 * same connection run back to back on the worker's thread, without another connection's hooks
 * in between; every on_upgrade resets it. */
static _Thread_local char url_token[RS_GW_TOKEN_MAX + 1];
static _Thread_local bool url_token_set;

void gw_client_url_token(const rs_http_request *req) {
  rs_ssize n = rs_http_query_param(req, "token", url_token, sizeof url_token);
  url_token_set = n > 0;
}

const char *gw_client_url_token_take(void) {
  if (!url_token_set) return NULL;
  url_token_set = false;
  return url_token;
}

/* Every second: clients that did not authenticate within --auth-timeout are closed. */
static void auth_tick(uv_timer_t *t) {
  gw_gateway *gw = t->data;
  if (!gw->unauthed) return;
  uint32_t now_s = (uint32_t)(uv_now(gw->loop) / 1000);
  uint32_t limit_s = (gw->cfg->auth_timeout_ms + 999) / 1000;
  for (uint32_t i = 0; i < gw->sessions_cap; i++) {
    gw_client *c = gw->sessions[i];
    if (c && !c->authed && !c->closing && now_s - c->opened_s >= limit_s)
      close_client(c, 4401, "authentication timeout");
  }
}

void gw_client_auth_start(gw_gateway *gw) {
  if (!gw_auth_enabled(gw->cfg)) return;
  uint64_t period = gw->cfg->auth_timeout_ms < 1000 ? gw->cfg->auth_timeout_ms : 1000;
  uv_timer_start(&gw->auth_timer, auth_tick, period, period);
}

static void on_message(rs_ws_session *s, bool text, const uint8_t *data, size_t len, void *user) {
  gw_client *c = user;
  if (!c || c->closing) return;
  if (!text) {
    close_client(c, 1003, "binary messages are not part of the JSON protocol");
    return;
  }
  gw_gateway *gw = c->gw;
  rs_gw_cmd cmd;
  rs_gw_error e;
  gw->cur_route = 0;
  GW_ADD(gw->stats.client_bytes[0], len);
  if (!c->authed && len > GW_PREAUTH_MAX) {
    close_client(c, 1009, "message too big before authentication");
    return;
  }
  if (rs_gw_parse(&gw->parser, data, len, &cmd, &e) != 0) {
    GW_ADD(gw->stats.msgs_in[GW_IN_INVALID], 1);
    send_rej(c, &e.id, e.code, e.message, strlen(e.message));
    return;
  }
  GW_ADD(gw->stats.msgs_in[cmd.type], 1);
  (void)s;
  if (!c->authed && cmd.type != RS_GW_HELLO && cmd.type != RS_GW_PING) {
    close_client(c, 4401, "authentication required: send {\"type\":\"hello\",\"token\":...} first");
    return;
  }
  if (!gw_rate_take(&c->rate, gw->cfg->rate_limit, uv_now(gw->loop))) {
    /* The request is not made. Messages about an open request are refused without its id (a
     * rej with it would end that request). */
    bool opens = cmd.type == RS_GW_REQ || cmd.type == RS_GW_SUB || cmd.type == RS_GW_CHAN ||
                 cmd.type == RS_GW_FNF || cmd.type == RS_GW_PING;
    rs_gw_id none = {0};
    rejectf(c, opens ? &cmd.id : &none, "RATE_LIMITED", "over %" PRIu32 " messages per second",
            gw->cfg->rate_limit);
    return;
  }
  switch (cmd.type) {
  case RS_GW_REQ: open_request(c, &cmd, GW_RR); break;
  case RS_GW_SUB: open_request(c, &cmd, GW_STREAM); break;
  case RS_GW_CHAN: open_request(c, &cmd, GW_CHANNEL); break;
  case RS_GW_MORE: on_more(c, &cmd); break;
  case RS_GW_UNSUB: on_unsub(c, &cmd); break;
  case RS_GW_SEND: on_send(c, &cmd, false); break;
  case RS_GW_DONE: on_send(c, &cmd, true); break;
  case RS_GW_FNF: on_fnf(c, &cmd); break;
  case RS_GW_PING:
    if (rs_gw_format_pong(&gw->out, &cmd.id) == 0) gw_client_send(c, GW_OUT_PONG);
    break;
  case RS_GW_HELLO: on_hello(c, &cmd); break;
  }
}

/* ---- the session's life ---- */

static gw_gateway *worker_of(rs_ws_session *s) {
  rs_server *server = rs_ws_session_server(s);
  uv_loop_t *loop = rs_ws_session_loop(s);
  for (int i = 0; i < rs_server_workers(server); i++)
    if (rs_server_worker_loop(server, i) == loop) return rs_server_worker_user(server, i);
  return NULL;
}

static uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* Random, and naming its worker in the top byte (a push to it goes to that worker only). */
uint64_t gw_session_new(gw_gateway *gw) {
  uint64_t id;
  do {
    id = (mix64(uv_hrtime() ^ ++gw->next_session) & 0x00ffffffffffffffull) | (uint64_t)gw->index
                                                                                 << 56;
  } while (gw_sessions_find_id(gw, id));
  return id;
}

static void on_open(rs_ws_session *s, void *user) {
  (void)user;
  gw_gateway *gw = worker_of(s);
  gw_client *c = gw ? calloc(1, sizeof *c) : NULL;
  if (!c) {
    rs_ws_session_close(s, 1011, "out of memory");
    return;
  }
  c->gw = gw;
  c->ws = s;
  c->session_id = gw_session_new(gw);
  if (!gw_sessions_add(gw, c)) {
    free(c);
    rs_ws_session_close(s, 1011, "out of memory");
    return;
  }
  rs_ws_session_set_user(s, c);
  GW_ADD(gw->stats.clients, 1);
  GW_ADD(gw->stats.clients_total, 1);
  char sid[20];
  session_hex(c, sid);
  gw_log(gw->cfg, "client_open", "session", sid, "peer", rs_ws_session_peer(s), "protocol", "json",
         NULL);
  size_t n = atomic_fetch_add(gw->clients, 1) + 1;
  c->authed = !gw_auth_enabled(gw->cfg);
  c->opened_s = (uint32_t)(uv_now(gw->loop) / 1000);
  gw_rate_init(&c->rate, gw->cfg->rate_limit, uv_now(gw->loop));
  const char *token = gw_client_url_token_take();
  if (!c->authed) gw->unauthed++;
  if (gw->cfg->max_clients && n > gw->cfg->max_clients)
    close_client(c, 1013, "too many clients: try again later");
  else if (!c->authed && token)
    authenticate(c, token);
}

static void on_drained(rs_ws_session *s, void *user) {
  (void)s;
  gw_client *c = user;
  if (!c || c->closing) return;
  c->out_full = false;
  gw_stream *list = c->starved;
  c->starved = NULL;
  while (list) {
    gw_stream *st = list;
    list = st->starved_next;
    st->starved = false;
    st->starved_next = NULL;
    gw_stream_refill(st);
  }
  gw_client_update_reading(c);
}

static void on_close(rs_ws_session *s, unsigned code, const char *reason, bool remote, void *user) {
  gw_client *c = user;
  if (!c) return;
  char sid[20], codes[12];
  snprintf(sid, sizeof sid, "%016" PRIx64, c->session_id);
  snprintf(codes, sizeof codes, "%u", code);
  (void)s; /* its peer is gone by now: client_open has it, under the same session */
  gw_log(c->gw->cfg, "client_close", "session", sid, "protocol", "json", "code", codes, "reason",
         reason ? reason : "", "by", remote ? "client" : "gateway", NULL);
  release_all(c);
  unlink_waiting(c);
  gw_sessions_remove(c->gw, c);
  if (!c->authed) c->gw->unauthed--;
  atomic_fetch_sub(c->gw->clients, 1);
  GW_ADD(c->gw->stats.clients, (uint64_t)-1);
  free(c->entry);
  free(c->user);
  free(c->claims);
  free(c->table);
  free(c);
}

const rs_ws_session_callbacks gw_client_callbacks = {
    .on_open = on_open,
    .on_message = on_message,
    .on_drained = on_drained,
    .on_close = on_close,
};
