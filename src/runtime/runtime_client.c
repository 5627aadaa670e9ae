/* rs_client: connect, reconnect with jittered exponential backoff, resume when enabled. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt_internal.h"
#include "runtime/ws_transport.h"

struct rs_client {
  rs_client_options opt;
  rs_uri uri;
  uv_loop_t *loop;
  rs_tls_ctx *tls;
  rs_io_loop *io;
  rt_conn *rc;
  uv_timer_t timer; /* connect timeout and backoff */
  uv_getaddrinfo_t gai;
  uv_connect_t creq;
  uv_tcp_t *tcp; /* the attempt in progress */
  int attempts;  /* consecutive failures */
  uint64_t rng;
  bool resolving, connecting, connected, had_transport;
  bool closing, finished;
  int open_handles;
  char last_error[512];
};

void rs_client_options_default(rs_client_options *o) {
  memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  rs_conn_settings_default(&o->settings, RS_CONN_CLIENT);
}

static void start_attempt(rs_client *c);
static void finish(rs_client *c, const char *message);
static void client_unref(rs_client *c);

static void emit(rs_client *c, rs_client_event ev, const char *msg) {
  if (c->opt.on_event) c->opt.on_event(c, ev, msg ? msg : "", c->opt.user);
}

static int new_engine(rs_client *c, char *err, size_t errlen) {
  rt_conn *rc = calloc(1, sizeof *rc);
  if (!rc) return RS_ERR_NOMEM;
  rs_conn_settings st = c->opt.settings;
  st.role = RS_CONN_CLIENT;
  st.framing = c->uri.websocket ? RS_FRAMING_MESSAGE : RS_FRAMING_LENGTH_PREFIXED;
  int r = rs_conn_new(&rc->conn, &st, &rt_forward_callbacks, rc, NULL, uv_now(c->loop));
  if (r != 0) {
    snprintf(err, errlen, "invalid connection settings: %s", rs_strerror(r));
    free(rc);
    return r;
  }
  rc->loop = c->loop;
  uv_timer_init(c->loop, &rc->timer);
  rc->timer.data = rc;
  rc->app = &c->opt.callbacks;
  rc->app_user = c->opt.user;
  rc->client = c;
  rc->ws = c->uri.websocket;
  rt_conn_set_tap(rc, c->opt.on_frame);
  c->rc = rc;
  return 0;
}

static uint32_t backoff_delay(rs_client *c) {
  uint32_t lo = c->opt.backoff_min_ms ? c->opt.backoff_min_ms : 100;
  uint32_t hi = c->opt.backoff_max_ms ? c->opt.backoff_max_ms : 16000;
  uint64_t d = lo;
  for (int i = 1; i < c->attempts && d < hi; i++) d *= 2;
  if (d > hi) d = hi;
  /* xorshift jitter in [50%, 150%) */
  c->rng ^= c->rng << 13, c->rng ^= c->rng >> 7, c->rng ^= c->rng << 17;
  return (uint32_t)(d / 2 + c->rng % (d ? d : 1));
}

static void on_backoff(uv_timer_t *t) {
  rs_client *c = t->data;
  start_attempt(c);
}

/* An attempt failed or a transport was lost: retry later or give up. */
static void retry_or_finish(rs_client *c, const char *why) {
  snprintf(c->last_error, sizeof c->last_error, "%s", why);
  c->attempts++;
  /* Reconnection is for transports that were up; a first connection that fails is reported. */
  if (c->closing || !c->opt.reconnect || !c->had_transport ||
      (c->opt.max_attempts > 0 && c->attempts >= c->opt.max_attempts)) {
    finish(c, why);
    return;
  }
  uint32_t d = backoff_delay(c);
  char msg[600];
  snprintf(msg, sizeof msg, "%s; retrying in %u ms", why, d);
  emit(c, RS_CLIENT_RECONNECTING, msg);
  uv_timer_start(&c->timer, on_backoff, d, 0);
}

static void on_tcp_closed(uv_handle_t *h) {
  free(h);
}

static void abandon_tcp(rs_client *c) {
  if (!c->tcp) return;
  uv_close((uv_handle_t *)c->tcp, on_tcp_closed);
  c->tcp = NULL;
}

static void on_connect_timeout(uv_timer_t *t) {
  rs_client *c = t->data;
  c->connecting = false;
  abandon_tcp(c); /* the connect callback then runs with UV_ECANCELED and is ignored */
  char why[300];
  snprintf(why, sizeof why, "cannot connect to %s:%d: timed out", c->uri.host, c->uri.port);
  retry_or_finish(c, why);
}

static void on_connected(uv_connect_t *req, int status) {
  rs_client *c = req->data;
  if (!c->connecting || (uv_tcp_t *)req->handle != c->tcp) {
    return; /* a timed-out attempt */
  }
  c->connecting = false;
  uv_timer_stop(&c->timer);
  if (status < 0) {
    abandon_tcp(c);
    char why[300];
    snprintf(why, sizeof why, "cannot connect to %s:%d: %s", c->uri.host, c->uri.port,
             uv_strerror(status));
    retry_or_finish(c, why);
    return;
  }
  rs_tls *tls = NULL;
  if (c->tls && !(tls = rs_tls_new(c->tls, false, c->uri.host))) {
    abandon_tcp(c);
    finish(c, "out of memory");
    return;
  }
  uv_tcp_t *tcp = c->tcp;
  c->tcp = NULL;
  rs_io_conn *io = rs_io_conn_new(c->io, tcp, tls);
  if (!io) {
    rs_tls_free(tls);
    uv_close((uv_handle_t *)tcp, on_tcp_closed);
    finish(c, "out of memory");
    return;
  }
  uint64_t now = uv_now(c->loop);
  rs_conn_state st = rs_conn_get_state(c->rc->conn);
  if (st == RS_CONN_STATE_CLOSED) {
    /* No resumption: the old session is over; start a new one on this transport. */
    rt_conn_destroy(c->rc);
    c->rc = NULL;
    char err[256];
    if (new_engine(c, err, sizeof err) != 0) {
      rs_io_conn_abort(io, RS_ERR_NOMEM, "out of memory");
      finish(c, err);
      return;
    }
  } else if (st == RS_CONN_STATE_DISCONNECTED) {
    int r = rs_conn_attach(c->rc->conn, now); /* queues RESUME */
    if (r != 0) {
      rs_io_conn_abort(io, r, rs_strerror(r));
      finish(c, "cannot resume the session");
      return;
    }
  }
  c->connected = true;
  c->had_transport = true;
  c->attempts = 0;
  int r = rt_conn_attach_io(c->rc, io, &c->uri, &c->opt.ws, false);
  if (r != 0) {
    rs_io_conn_abort(io, r, "transport not supported");
    return;
  }
  emit(c, RS_CLIENT_CONNECTED, rs_io_conn_peer(io));
  if (c->closing && c->rc) {
    /* rs_client_close(graceful) came while connecting: deliver what was queued, then close. */
    rs_conn_close(c->rc->conn, rs_bytes_str("client closing"));
    rs_runtime_wake(c->rc->conn);
  }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  rs_client *c = req->data;
  c->resolving = false;
  if (c->finished) {
    uv_freeaddrinfo(res);
    client_unref(c); /* the reference taken for the look-up */
    return;
  }
  client_unref(c);
  if (status < 0 || !res) {
    char why[300];
    snprintf(why, sizeof why, "cannot resolve %s: %s", c->uri.host, uv_strerror(status));
    uv_freeaddrinfo(res);
    retry_or_finish(c, why);
    return;
  }
  c->tcp = malloc(sizeof *c->tcp);
  if (!c->tcp) {
    uv_freeaddrinfo(res);
    finish(c, "out of memory");
    return;
  }
  uv_tcp_init(c->loop, c->tcp);
  c->creq.data = c;
  int rc = uv_tcp_connect(&c->creq, c->tcp, res->ai_addr, on_connected);
  uv_freeaddrinfo(res);
  if (rc < 0) {
    abandon_tcp(c);
    char why[300];
    snprintf(why, sizeof why, "cannot connect to %s:%d: %s", c->uri.host, c->uri.port,
             uv_strerror(rc));
    retry_or_finish(c, why);
    return;
  }
  c->connecting = true;
  uv_timer_start(&c->timer, on_connect_timeout,
                 c->opt.connect_timeout_ms ? c->opt.connect_timeout_ms : 10000, 0);
}

static void start_attempt(rs_client *c) {
  if (c->closing || c->finished) return;
  char port[16];
  snprintf(port, sizeof port, "%d", c->uri.port);
  struct addrinfo hints = {0};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  c->gai.data = c;
  c->resolving = true;
  c->open_handles++; /* the client outlives the look-up */
  int rc = uv_getaddrinfo(c->loop, &c->gai, on_resolved, c->uri.host, port, &hints);
  if (rc < 0) {
    c->resolving = false;
    c->open_handles--;
    char why[300];
    snprintf(why, sizeof why, "cannot resolve %s: %s", c->uri.host, uv_strerror(rc));
    retry_or_finish(c, why);
  }
}

void rt_client_transport_gone(rt_conn *rc, int err, const char *reason) {
  (void)err;
  rs_client *c = rc->client;
  if (c->rc != rc) {
    rt_conn_destroy(rc); /* an engine we already replaced */
    return;
  }
  bool was_connected = c->connected;
  c->connected = false;
  if (was_connected) emit(c, RS_CLIENT_DISCONNECTED, reason);
  rs_conn_state st = rs_conn_get_state(rc->conn);
  /* A closed session ends the client unless reconnecting without resumption (then a new session
   * starts on the next transport). A resumable session that closed has expired or was refused. */
  if (st == RS_CONN_STATE_CLOSED && (c->closing || !c->opt.reconnect || c->opt.settings.resume)) {
    finish(c, was_connected || !c->opt.settings.resume ? reason : "resumable session expired");
    return;
  }
  if (c->closing) {
    finish(c, reason);
    return;
  }
  if (!was_connected) return; /* detached timer fired while connecting: nothing to do */
  c->attempts = 0;
  retry_or_finish(c, reason && *reason ? reason : "connection lost");
}

void rt_client_resumed(rt_conn *rc) {
  emit(rc->client, RS_CLIENT_RESUMED, "session resumed");
}

static void client_unref(rs_client *c) {
  if (--c->open_handles > 0) return;
  rs_io_loop_put(c->io);
  rs_tls_ctx_free(c->tls);
  free(c);
}

static void on_client_handle_closed(uv_handle_t *h) {
  client_unref(h->data);
}

static void finish(rs_client *c, const char *message) {
  if (c->finished) return;
  c->finished = true;
  uv_timer_stop(&c->timer);
  if (c->resolving) uv_cancel((uv_req_t *)&c->gai);
  c->connecting = false;
  abandon_tcp(c);
  if (c->rc) {
    rs_conn *conn = c->rc->conn;
    uint64_t now = uv_now(c->loop);
    if (rs_conn_get_state(conn) != RS_CONN_STATE_CLOSED) {
      rs_conn_abort(conn, rs_bytes_str("client closed"));
      rs_conn_detach(conn, now);
    }
    rs_conn_handle_expiry(conn, now); /* every stream gets its error and closed callbacks */
  }
  emit(c, RS_CLIENT_CLOSED, message);
  if (c->rc) {
    rt_conn_destroy(c->rc);
    c->rc = NULL;
  }
  uv_close((uv_handle_t *)&c->timer, on_client_handle_closed);
}

int rs_client_start(rs_client **out, uv_loop_t *loop, const rs_client_options *o, char *err,
                    size_t errlen) {
  char scratch[256];
  if (!err || !errlen) err = scratch, errlen = sizeof scratch;
  if (!out || !loop || !o || !o->uri) {
    snprintf(err, errlen, "rs_client_start: missing argument");
    return RS_ERR_INVALID_ARGUMENT;
  }
  rs_client *c = calloc(1, sizeof *c);
  if (!c) return RS_ERR_NOMEM;
  rs_client_options_default(&c->opt);
  memcpy(&c->opt, o, o->struct_size && o->struct_size < sizeof *o ? o->struct_size : sizeof *o);
  c->opt.struct_size = sizeof c->opt;
  c->loop = loop;
  c->rng = uv_hrtime() | 1;
  int rc = rs_uri_parse(o->uri, &c->uri, err, errlen);
  if (rc == 0 && c->uri.websocket) rc = rt_ws_check_options(&o->ws, err, errlen);
  if (rc == 0 && c->uri.secure) {
    c->tls = rs_tls_ctx_client(o->ca_file, o->insecure, err);
    if (!c->tls) rc = RS_ERR_INVALID_ARGUMENT;
  }
  if (rc == 0 && !(c->io = rs_io_loop_get(loop))) rc = RS_ERR_NOMEM;
  if (rc == 0) rc = new_engine(c, err, errlen);
  if (rc != 0) {
    rs_io_loop_put(c->io);
    rs_tls_ctx_free(c->tls);
    free(c);
    return rc;
  }
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  c->open_handles = 1;
  *out = c;
  start_attempt(c);
  return 0;
}

rs_conn *rs_client_conn(rs_client *c) {
  return c && c->rc ? c->rc->conn : NULL;
}

bool rs_client_connected(const rs_client *c) {
  return c && c->connected;
}

void rs_client_close(rs_client *c, bool graceful) {
  if (!c || c->closing || c->finished) return;
  c->closing = true;
  if (!c->connected || !c->rc) {
    /* Graceful: connect first so that what was queued (SETUP, a fire-and-forget, …) goes out. */
    if (!graceful || !c->rc || (!c->resolving && !c->connecting)) finish(c, "closed");
    return;
  }
  if (graceful)
    rs_conn_close(c->rc->conn, rs_bytes_str("client closing"));
  else
    rs_conn_abort(c->rc->conn, rs_bytes_str("client closed"));
  rs_runtime_wake(c->rc->conn);
}
