/* Plain WebSocket sessions (rsocket/websocket.h): the inner protocol of an rt_ws that hands
 * whole messages to the application, for servers (accepted by rs_server, see runtime_server.c)
 * and clients (rs_ws_client_start), and the plain HTTP answers of rs_http_respond. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt_internal.h"
#include "runtime/ws_session.h"

#define DEFAULT_HIGH_WATERMARK (1u << 20)
#define DEFAULT_TIMEOUT_MS     10000u

/* The output level over which rs_ws_session_writable says no. */
static size_t watermark(const rs_ws_session *s) {
  size_t w = s->client ? s->client->high_watermark : rt_worker_watermark(s->worker);
  return w ? w : DEFAULT_HIGH_WATERMARK;
}

/* ---- the inner protocol ---- */

static void si_open(void *inner, rt_ws *ws) {
  rs_ws_session *s = inner;
  (void)ws;
  s->open = true;
  if (s->client) uv_timer_stop(&s->client->timer);
  if (s->cb->on_open) s->cb->on_open(s, s->user);
}

static int si_message(void *inner, rt_ws *ws, int op, const uint8_t *d, size_t n, uint64_t now) {
  rs_ws_session *s = inner;
  (void)ws, (void)now;
  if (s->cb->on_message) s->cb->on_message(s, op == RS_WS_OP_TEXT, d, n, s->user);
  return 0;
}

static void si_pull(void *inner, rt_ws *ws) {
  (void)inner, (void)ws; /* sends go straight into the WebSocket */
}

static uint64_t si_deadline(void *inner) {
  (void)inner;
  return UINT64_MAX;
}

static void si_expire(void *inner, uint64_t now) {
  (void)inner, (void)now;
}

static bool si_want_close(void *inner) {
  (void)inner;
  return false;
}

static void si_ws_close(void *inner, unsigned code, rs_bytes reason, bool remote) {
  rs_ws_session *s = inner;
  if (s->have_close) return;
  s->have_close = true;
  s->close_code = (uint16_t)code;
  s->close_remote = remote;
  /* Allocated only now: an open session keeps no room for a reason (at most 123 bytes). */
  if (reason.len && (s->close_reason = malloc(reason.len + 1))) {
    memcpy(s->close_reason, reason.ptr, reason.len);
    s->close_reason[reason.len] = '\0';
  }
}

void rt_session_finish(rs_ws_session *s, const char *reason) {
  if (s->finished) return;
  s->finished = true;
  s->ws = NULL;
  if (!s->open && !s->client) return; /* a server session that never opened: nobody to tell */
  unsigned code = s->have_close ? s->close_code : RS_WS_CLOSE_ABNORMAL;
  const char *why = s->have_close ? (s->close_reason ? s->close_reason : "") : reason ? reason : "";
  if (s->cb->on_close) s->cb->on_close(s, code, why, s->have_close && s->close_remote, s->user);
}

static void si_closed(void *inner, int err, const char *reason) {
  rs_ws_session *s = inner;
  (void)err;
  if (s->client) {
    rt_ws_client_closed(s, reason);
    return;
  }
  rt_session_finish(s, reason);
  rt_server_session_gone(s);
}

/* Output is about to be handed to the socket: once it fell to half the watermark after
 * rs_ws_session_writable said no, on_drained may queue more. */
static void si_before_output(void *inner, rt_ws *ws) {
  rs_ws_session *s = inner;
  (void)ws;
  if (!s->want_drained || rs_ws_session_queued(s) > watermark(s) / 2) return;
  s->want_drained = false;
  if (s->cb->on_drained) s->cb->on_drained(s, s->user);
}

static void si_decide(void *inner, rt_ws *ws, const rs_http_request *req, rt_ws_verdict *v) {
  rs_ws_session *s = inner;
  if (s->worker) rt_server_decide(s, ws, req, v);
}

const rt_ws_inner_ops rt_session_ops = {
    .on_open = si_open,
    .on_message = si_message,
    .pull = si_pull,
    .next_deadline = si_deadline,
    .expire = si_expire,
    .want_close = si_want_close,
    .closed = si_closed,
    .on_ws_close = si_ws_close,
    .decide = si_decide,
    .before_output = si_before_output,
};

/* ---- the public calls ---- */

int rs_ws_session_send(rs_ws_session *s, bool text, const void *data, size_t len) {
  if (!s || (!data && len)) return RS_ERR_INVALID_ARGUMENT;
  if (s->finished || s->closing) return RS_ERR_CLOSED;
  if (!s->open || !s->ws) return RS_ERR_INVALID_STATE;
  if (text && !rs_ws_utf8_valid(data, len)) return RS_ERR_INVALID_ARGUMENT;
  return rt_ws_send(s->ws, text ? RS_WS_OP_TEXT : RS_WS_OP_BINARY, data, len);
}

size_t rs_ws_session_queued(const rs_ws_session *s) {
  if (!s->ws) return 0;
  return rt_ws_queued(s->ws) + rs_io_conn_write_backlog(rt_ws_io(s->ws));
}

bool rs_ws_session_writable(rs_ws_session *s) {
  if (rs_ws_session_queued(s) < watermark(s)) return true;
  s->want_drained = true;
  return false;
}

void rs_ws_session_close(rs_ws_session *s, unsigned code, const char *reason) {
  if (!s || s->finished || s->closing) return;
  if (!s->open) {
    rs_ws_session_abort(s, reason && *reason ? reason : "closed before the handshake finished");
    return;
  }
  s->closing = true;
  if (!rs_ws_close_code_valid(code) || code == RS_WS_CLOSE_NO_STATUS) code = RS_WS_CLOSE_NORMAL;
  char r[RS_WS_MAX_CONTROL - 1];
  snprintf(r, sizeof r, "%s", reason ? reason : "");
  rt_ws_close(s->ws, code, r);
}

void rs_ws_session_abort(rs_ws_session *s, const char *reason) {
  if (!s || s->finished) return;
  if (!reason) reason = "aborted";
  if (s->client && !s->ws) {
    rt_ws_client_abort(s, reason);
    return;
  }
  if (s->ws) rs_io_conn_abort(rt_ws_io(s->ws), RS_ERR_CLOSED, reason);
}

void rs_ws_session_pause_reading(rs_ws_session *s, bool paused) {
  if (s && s->ws) rs_io_conn_pause_reading(rt_ws_io(s->ws), paused);
}

void *rs_ws_session_user(const rs_ws_session *s) {
  return s->user;
}

void rs_ws_session_set_user(rs_ws_session *s, void *user) {
  s->user = user;
}

const char *rs_ws_session_peer(const rs_ws_session *s) {
  return s->ws ? rs_io_conn_peer(rt_ws_io(s->ws)) : "";
}

const char *rs_ws_session_subprotocol(const rs_ws_session *s) {
  return s->ws ? rt_ws_subprotocol(s->ws) : NULL;
}

uv_loop_t *rs_ws_session_loop(const rs_ws_session *s) {
  return s->client ? s->client->loop : rt_worker_loop(s->worker);
}

rs_server *rs_ws_session_server(const rs_ws_session *s) {
  return s->worker ? rt_worker_server(s->worker) : NULL;
}

rs_ws_session *rt_session_new(const rs_ws_session_callbacks *cb, void *user) {
  rs_ws_session *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->cb = cb;
  s->user = user;
  return s;
}

rs_ws_session *rt_session_new_in(void *place, const rs_ws_session_callbacks *cb, void *user) {
  rs_ws_session *s = place;
  s->cb = cb;
  s->user = user;
  s->in_place = true;
  return s;
}

void rt_session_free(rs_ws_session *s) {
  free(s->close_reason);
  s->close_reason = NULL;
  if (!s->in_place) free(s);
}

/* ---- plain HTTP answers ---- */

int rs_http_respond(rs_http_response *res, int status, const char *content_type,
                    const char *const *headers, const void *body, size_t len) {
  if (!res) return RS_ERR_INVALID_ARGUMENT;
  if (res->answered || !res->in_hook) return RS_ERR_INVALID_STATE;
  if (status < 200 || status > 599 || len > RS_HTTP_MAX_BODY || (len && !body))
    return RS_ERR_INVALID_ARGUMENT;
  if (content_type && (!*content_type || strpbrk(content_type, "\r\n")))
    return RS_ERR_INVALID_ARGUMENT;
  size_t extra = 0;
  for (size_t i = 0; headers && headers[i]; i++) {
    const char *why;
    if (rs_ws_header_line_check(headers[i], &why) != 0) return RS_ERR_INVALID_ARGUMENT;
    extra += strlen(headers[i]) + 2;
  }
  size_t body_len = res->head_only ? 0 : len;
  size_t cap = 256 + (content_type ? strlen(content_type) : 0) + extra + body_len;
  char *out = malloc(cap);
  if (!out) return RS_ERR_NOMEM;
  int n = snprintf(out, cap, "HTTP/1.1 %d %s\r\n", status, rs_http_status_text(status));
  if (content_type) n += snprintf(out + n, cap - (size_t)n, "Content-Type: %s\r\n", content_type);
  n += snprintf(out + n, cap - (size_t)n, "Content-Length: %zu\r\nConnection: close\r\n", len);
  for (size_t i = 0; headers && headers[i]; i++)
    n += snprintf(out + n, cap - (size_t)n, "%s\r\n", headers[i]);
  n += snprintf(out + n, cap - (size_t)n, "\r\n");
  if (body_len) memcpy(out + n, body, body_len);
  free(res->out);
  res->out = out;
  res->out_len = (size_t)n + body_len;
  res->answered = true;
  return 0;
}

/* ---- clients ---- */

void rs_ws_client_options_default(rs_ws_client_options *o) {
  memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
}

static void client_timer_closed(uv_handle_t *h) {
  rs_ws_session *s = h->data;
  rs_tls_ctx_free(s->client->tls);
  rs_io_loop_put(s->client->io);
  free(s->client);
  rt_session_free(s);
}

/* The end of a client session: on_close, then everything is released. */
static void client_finish(rs_ws_session *s, const char *reason) {
  rt_session_finish(s, reason);
  uv_timer_stop(&s->client->timer);
  uv_close((uv_handle_t *)&s->client->timer, client_timer_closed);
}

void rt_ws_client_closed(rs_ws_session *s, const char *reason) {
  rt_ws_client *c = s->client;
  client_finish(s, c->why[0] ? c->why : reason);
}

/* A failure before there was a transport is reported from the timer, never inside a call. */
static void on_client_failed(uv_timer_t *t) {
  rs_ws_session *s = t->data;
  client_finish(s, s->client->why);
}

void rt_ws_client_abort(rs_ws_session *s, const char *reason) {
  rt_ws_client *c = s->client;
  if (c->failing) return;
  if (c->connecting) {
    rs_connect_cancel(c->connecting);
    c->connecting = NULL;
  }
  c->failing = true;
  snprintf(c->why, sizeof c->why, "%s", reason);
  uv_timer_start(&c->timer, on_client_failed, 0, 0);
}

static void on_client_timeout(uv_timer_t *t) {
  rs_ws_session *s = t->data;
  rt_ws_client *c = s->client;
  uint32_t ms = c->timeout_ms;
  if (c->connecting) {
    rs_connect_cancel(c->connecting);
    c->connecting = NULL;
    char why[sizeof c->why];
    snprintf(why, sizeof why, "cannot connect to %s:%d: timed out after %u ms", c->uri.host,
             c->uri.port, ms);
    rt_ws_client_abort(s, why);
    return;
  }
  if (!s->ws) return;
  rs_io_conn *io = rt_ws_io(s->ws);
  snprintf(c->why, sizeof c->why, "%s handshake with %s timed out after %u ms",
           rs_io_conn_handshake_done(io) ? "WebSocket" : "TLS", rs_io_conn_peer(io), ms);
  rs_io_conn_abort(io, RS_ERR_TIMEOUT, c->why);
}

static void on_client_tcp(uv_tcp_t *tcp, int status, const char *message, void *arg) {
  rs_ws_session *s = arg;
  rt_ws_client *c = s->client;
  c->connecting = NULL;
  if (!tcp) {
    (void)status;
    rt_ws_client_abort(s, message);
    return;
  }
  rs_tls *tls = NULL;
  if (c->tls && !(tls = rs_tls_new(c->tls, false, c->uri.host))) {
    uv_close((uv_handle_t *)tcp, (uv_close_cb)free);
    rt_ws_client_abort(s, "out of memory");
    return;
  }
  rs_io_conn *io = rs_io_conn_new(c->io, tcp, tls);
  if (!io) {
    rs_tls_free(tls);
    uv_close((uv_handle_t *)tcp, (uv_close_cb)free);
    rt_ws_client_abort(s, "out of memory");
    return;
  }
  char host[300];
  if (c->host_header[0])
    snprintf(host, sizeof host, "%s", c->host_header);
  else
    rt_ws_host_header(&c->uri, host, sizeof host);
  s->ws = rt_ws_attach_client(io, &c->wo, host, c->uri.path, NULL, &rt_session_ops, s);
  if (!s->ws) {
    rs_io_conn_abort(io, RS_ERR_NOMEM, "out of memory");
    rt_ws_client_abort(s, "out of memory");
  }
}

int rs_ws_client_start(rs_ws_session **out, uv_loop_t *loop, const rs_ws_client_options *o,
                       char *err, size_t errlen) {
  char scratch[256];
  if (!err || !errlen) err = scratch, errlen = sizeof scratch;
  if (!out || !loop || !o || !o->uri || !o->callbacks.on_close) {
    snprintf(err, errlen, "rs_ws_client_start: missing argument (uri, loop, callbacks.on_close)");
    return RS_ERR_INVALID_ARGUMENT;
  }
  rs_ws_client_options opt;
  rs_ws_client_options_default(&opt);
  memcpy(&opt, o, o->struct_size && o->struct_size < sizeof opt ? o->struct_size : sizeof opt);
  rt_ws_client *c = calloc(1, sizeof *c);
  rs_ws_session *s = c ? rt_session_new(NULL, opt.user) : NULL;
  if (!s) {
    free(c);
    return RS_ERR_NOMEM;
  }
  s->client = c;
  c->loop = loop;
  c->high_watermark = opt.high_watermark;
  c->callbacks = opt.callbacks;
  s->cb = &c->callbacks;
  c->wo = opt.ws;
  int rc = rs_uri_parse(opt.uri, &c->uri, err, errlen);
  if (rc == 0 && !c->uri.websocket) {
    snprintf(err, errlen, "'%s' is not a WebSocket URI (use ws:// or wss://)", opt.uri);
    rc = RS_ERR_INVALID_ARGUMENT;
  }
  if (rc == 0) rc = rt_ws_check_options(&opt.ws, err, errlen);
  if (rc == 0 && opt.host_header) {
    const char *why = NULL;
    char line[300];
    snprintf(line, sizeof line, "X-Host: %s", opt.host_header);
    if (strlen(opt.host_header) > 255 || !*opt.host_header ||
        rs_ws_header_line_check(line, &why) != 0) {
      snprintf(err, errlen, "bad Host header '%.100s': %s", opt.host_header,
               why ? why : "empty or longer than 255 bytes");
      rc = RS_ERR_INVALID_ARGUMENT;
    } else {
      snprintf(c->host_header, sizeof c->host_header, "%s", opt.host_header);
    }
  }
  if (rc == 0 && c->uri.secure) {
    char terr[RS_TLS_ERRLEN];
    if (!(c->tls = rs_tls_ctx_client(opt.ca_file, opt.insecure, terr))) {
      snprintf(err, errlen, "%s", terr);
      rc = RS_ERR_INVALID_ARGUMENT;
    }
  }
  if (rc == 0 && !(c->io = rs_io_loop_get(loop))) rc = RS_ERR_NOMEM;
  c->timeout_ms = opt.connect_timeout_ms ? opt.connect_timeout_ms : DEFAULT_TIMEOUT_MS;
  if (rc == 0)
    rc = rs_connect_start(&c->connecting, loop, c->uri.host, c->uri.port, 0, on_client_tcp, s);
  if (rc != 0) {
    if (rc == RS_ERR_NOMEM) snprintf(err, errlen, "out of memory");
    rs_io_loop_put(c->io);
    rs_tls_ctx_free(c->tls);
    free(c);
    free(s);
    return rc;
  }
  uv_timer_init(loop, &c->timer);
  c->timer.data = s;
  if (c->timeout_ms != RS_CLIENT_NO_TIMEOUT)
    uv_timer_start(&c->timer, on_client_timeout, c->timeout_ms, 0);
  *out = s;
  return 0;
}
