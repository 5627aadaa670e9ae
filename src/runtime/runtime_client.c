/*
 * rs_client: connect, reconnect with jittered exponential backoff, resume when enabled.
 *
 * An attempt goes through phases, each bounded by the one timer `timer`:
 *   CONNECTING  rs_connect races every address of the name          (connect_timeout_ms,
 *   HANDSHAKE   the transport is up; TLS and WebSocket handshakes     counted from the start)
 *   SETUP       SETUP (or RESUME) is written; waiting for the server's first frame, with a
 *               KEEPALIVE(respond) sent after PROBE_DELAY_MS of silence  (setup_timeout_ms)
 *   ESTABLISHED the server answered: RS_CLIENT_CONNECTED
 * Between attempts the same timer runs the backoff delay.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/post.h"
#include "runtime/rt_internal.h"
#include "runtime/ws_transport.h"

#define DEFAULT_TIMEOUT_MS 10000u
/* An established session closed with rs_client_close(c, false) gets this long to write its
 * ERROR frame before the transport is cut. */
#define ABORT_GRACE_MS 250u
/* A server silent this long after SETUP is asked for a KEEPALIVE answer (or half the setup
 * timeout, if shorter). Not at once: most servers speak first anyway (an answer, LEASE), and a
 * client that sends and closes at once (a fire-and-forget) should not leave the server a
 * KEEPALIVE to answer on a closing connection (rsocket-js 1.0.0-alpha.3 crashes then). */
#define PROBE_DELAY_MS 1000u

enum { PH_IDLE, PH_CONNECTING, PH_HANDSHAKE, PH_SETUP, PH_ESTABLISHED };

struct rs_client {
  rs_client_options opt;
  rs_uri uri;
  uv_loop_t *loop;
  rs_tls_ctx *tls;
  rs_io_loop *io;
  rt_conn *rc;
  uv_timer_t timer;  /* phase deadlines, backoff, deferred close */
  rs_connect *racer; /* the TCP connection in progress */
  int phase;
  uint64_t attempt_start;
  uint64_t setup_deadline; /* PH_SETUP: when the server must have spoken */
  bool probed;             /* PH_SETUP: the KEEPALIVE was sent */
  int attempts;            /* consecutive failures */
  uint64_t rng;
  bool had_transport; /* some attempt was established */
  bool closing, aborting, finished;
  int open_handles;
  int last_error;
  /* Why we cut the transport ourselves (a phase timed out), reported when it is gone. */
  int cut_error;
  char cut_reason[300];
  char last_message[1500];
};

void rs_client_options_default(rs_client_options *o) {
  memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  rs_conn_settings_default(&o->settings, RS_CONN_CLIENT);
}

static void start_attempt(rs_client *c);
static void finish(rs_client *c, int err, const char *message);
static void client_unref(rs_client *c);

static void emit(rs_client *c, rs_client_event ev, const char *msg) {
  if (c->opt.on_event) c->opt.on_event(c, ev, msg ? msg : "", c->opt.user);
}

static uint32_t timeout_of(uint32_t v) {
  return v ? v : DEFAULT_TIMEOUT_MS;
}

static bool waits_for_answer(const rs_client *c) {
  return c->opt.setup_timeout_ms != RS_CLIENT_NO_TIMEOUT;
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
  rc->on_drained = c->opt.on_drained;
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
  start_attempt(t->data);
}

static void set_error(rs_client *c, int err, const char *why) {
  c->last_error = err;
  snprintf(c->last_message, sizeof c->last_message, "%s", why);
}

/* An attempt failed or a transport was lost: retry later or give up. */
static void retry_or_finish(rs_client *c, int err, const char *why) {
  set_error(c, err, why);
  c->phase = PH_IDLE;
  c->attempts++;
  /* Reconnection is for sessions that were established; a first connection that fails is
   * reported. */
  if (c->closing || !c->opt.reconnect || !c->had_transport ||
      (c->opt.max_attempts > 0 && c->attempts >= c->opt.max_attempts)) {
    finish(c, err, why);
    return;
  }
  uint32_t d = backoff_delay(c);
  char msg[1600];
  snprintf(msg, sizeof msg, "%s; retrying in %u ms", why, d);
  emit(c, RS_CLIENT_RECONNECTING, msg);
  uv_timer_start(&c->timer, on_backoff, d, 0);
}

/* The transport of the current attempt, if one is attached. */
static rs_io_conn *current_io(rs_client *c) {
  return c->rc ? c->rc->io : NULL;
}

/* Cuts the transport at once; rt_client_transport_gone reports `why` when it is closed. */
static void cut_transport(rs_client *c, int err, const char *why) {
  rs_io_conn *io = current_io(c);
  if (!io) return;
  if (!c->cut_error) {
    c->cut_error = err;
    snprintf(c->cut_reason, sizeof c->cut_reason, "%s", why);
  }
  rs_io_conn_abort(io, err, why);
}

static void on_phase_timeout(uv_timer_t *t) {
  rs_client *c = t->data;
  char why[300];
  const char *peer = current_io(c) ? rs_io_conn_peer(current_io(c)) : "";
  if (c->phase == PH_HANDSHAKE) {
    uint32_t ms = timeout_of(c->opt.connect_timeout_ms);
    if (current_io(c) && !rs_io_conn_handshake_done(current_io(c)))
      snprintf(why, sizeof why, "TLS handshake with %s timed out after %u ms", peer, ms);
    else
      snprintf(why, sizeof why, "WebSocket handshake with %s timed out after %u ms", peer, ms);
  } else if (c->phase == PH_SETUP) {
    uint64_t now = uv_now(c->loop);
    if (!c->probed && now < c->setup_deadline) {
      /* Silent so far: a KEEPALIVE(respond) makes any RSocket server answer. */
      c->probed = true;
      if (rs_conn_send_keepalive(c->rc->conn, (rs_bytes){NULL, 0}) == 0) rt_conn_wake(c->rc);
      uv_timer_start(&c->timer, on_phase_timeout, c->setup_deadline - now, 0);
      return;
    }
    bool resuming = c->rc && rs_conn_get_state(c->rc->conn) == RS_CONN_STATE_RESUMING;
    snprintf(why, sizeof why, "no answer to %s from %s within %u ms", resuming ? "RESUME" : "SETUP",
             peer, timeout_of(c->opt.setup_timeout_ms));
  } else {
    return;
  }
  cut_transport(c, RS_ERR_TIMEOUT, why);
}

static void arm_phase_timer(rs_client *c, uint64_t ms) {
  if (ms == 0) ms = 1;
  uv_timer_start(&c->timer, on_phase_timeout, ms, 0);
}

static void established(rs_client *c) {
  c->phase = PH_ESTABLISHED;
  uv_timer_stop(&c->timer);
  c->had_transport = true;
  c->attempts = 0;
  emit(c, RS_CLIENT_CONNECTED, current_io(c) ? rs_io_conn_peer(current_io(c)) : "");
}

/* The transport can carry frames (TLS and WebSocket handshakes done): SETUP goes out now. */
void rt_client_transport_ready(rt_conn *rc) {
  rs_client *c = rc->client;
  if (c->rc != rc || c->phase != PH_HANDSHAKE) return;
  c->phase = PH_SETUP;
  if (!waits_for_answer(c)) {
    established(c);
    return;
  }
  uint32_t t = timeout_of(c->opt.setup_timeout_ms);
  c->setup_deadline = uv_now(c->loop) + t;
  /* A RESUME is answered (RESUME_OK or ERROR); a SETUP may need asking. */
  c->probed = rs_conn_get_state(rc->conn) != RS_CONN_STATE_ESTABLISHED;
  if (!c->probed && c->opt.probe_at_once) {
    c->probed = true;
    if (rs_conn_send_keepalive(rc->conn, (rs_bytes){NULL, 0}) == 0) rt_conn_wake(rc);
  }
  arm_phase_timer(c, c->probed ? t : (t / 2 < PROBE_DELAY_MS ? t / 2 : PROBE_DELAY_MS));
}

/* The server's first frame arrived. */
void rt_client_answered(rt_conn *rc) {
  rs_client *c = rc->client;
  if (c->rc != rc || (c->phase != PH_SETUP && c->phase != PH_HANDSHAKE)) return;
  established(c);
}

static void on_tcp_closed(uv_handle_t *h) {
  free(h);
}

static void on_connected(uv_tcp_t *tcp, int status, const char *message, void *arg) {
  rs_client *c = arg;
  c->racer = NULL;
  if (status != 0) {
    retry_or_finish(c, status, message);
    return;
  }
  rs_tls *tls = NULL;
  if (c->tls && !(tls = rs_tls_new(c->tls, false, c->uri.host))) {
    uv_close((uv_handle_t *)tcp, on_tcp_closed);
    finish(c, RS_ERR_NOMEM, "out of memory");
    return;
  }
  rs_io_conn *io = rs_io_conn_new(c->io, tcp, tls);
  if (!io) {
    rs_tls_free(tls);
    uv_close((uv_handle_t *)tcp, on_tcp_closed);
    finish(c, RS_ERR_NOMEM, "out of memory");
    return;
  }
  uint64_t now = uv_now(c->loop);
  rs_conn_state st = rs_conn_get_state(c->rc->conn);
  if (st == RS_CONN_STATE_CLOSED) {
    /* No resumption: the old session is over; start a new one on this transport. */
    rt_conn_destroy(c->rc);
    c->rc = NULL;
    char err[256];
    int r = new_engine(c, err, sizeof err);
    if (r != 0) {
      rs_io_conn_abort(io, r, err);
      finish(c, r, err);
      return;
    }
  } else if (st == RS_CONN_STATE_DISCONNECTED) {
    int r = rs_conn_attach(c->rc->conn, now); /* queues RESUME */
    if (r != 0) {
      rs_io_conn_abort(io, r, rs_strerror(r));
      finish(c, r, "cannot resume the session");
      return;
    }
  }
  c->phase = PH_HANDSHAKE;
  c->cut_error = 0;
  c->cut_reason[0] = 0;
  int r = rt_conn_attach_io(c->rc, io, &c->uri, &c->opt.ws, false);
  if (r != 0) {
    rs_io_conn_abort(io, r, "out of memory"); /* no session yet: nothing is called back */
    finish(c, r, "out of memory");
    return;
  }
  uint64_t spent = now - c->attempt_start;
  uint32_t budget = timeout_of(c->opt.connect_timeout_ms);
  if (budget != RS_CLIENT_NO_TIMEOUT) arm_phase_timer(c, spent < budget ? budget - spent : 1);
  if (c->closing) {
    /* rs_client_close(graceful) came while connecting: deliver what was queued, then close. */
    rs_conn_close(c->rc->conn, rs_bytes_str("client closing"));
  }
  rt_conn_wake(c->rc);
}

static void start_attempt(rs_client *c) {
  if (c->closing || c->finished) return;
  c->phase = PH_CONNECTING;
  c->attempt_start = uv_now(c->loop);
  uint32_t t = timeout_of(c->opt.connect_timeout_ms);
  int r = rs_connect_start(&c->racer, c->loop, c->uri.host, c->uri.port,
                           t == RS_CLIENT_NO_TIMEOUT ? 0 : t, on_connected, c);
  if (r != 0) {
    c->racer = NULL;
    retry_or_finish(c, r, rs_strerror(r));
  }
}

void rt_client_transport_gone(rt_conn *rc, int err, const char *reason) {
  rs_client *c = rc->client;
  if (c->rc != rc) {
    rt_conn_destroy(rc); /* an engine we already replaced */
    return;
  }
  int phase = c->phase;
  bool was_up = phase == PH_HANDSHAKE || phase == PH_SETUP || phase == PH_ESTABLISHED;
  if (was_up) {
    c->phase = PH_IDLE;
    uv_timer_stop(&c->timer);
  }
  int code = c->cut_error ? c->cut_error : err ? err : RS_ERR_CLOSED;
  char why[300];
  snprintf(why, sizeof why, "%s",
           c->cut_error        ? c->cut_reason
           : reason && *reason ? reason
                               : "connection lost");
  c->cut_error = 0;
  c->cut_reason[0] = 0;
  if (phase == PH_ESTABLISHED) {
    set_error(c, code, why);
    emit(c, RS_CLIENT_DISCONNECTED, why);
  }
  rs_conn_state st = rs_conn_get_state(rc->conn);
  /* A closed session ends the client unless reconnecting without resumption (then a new session
   * starts on the next transport). A resumable session that closed has expired or was refused. */
  if (st == RS_CONN_STATE_CLOSED && (c->closing || !c->opt.reconnect || c->opt.settings.resume)) {
    bool expired = !was_up && c->opt.settings.resume;
    finish(c, expired ? RS_ERR_TIMEOUT : code, expired ? "resumable session expired" : why);
    return;
  }
  if (c->closing) {
    finish(c, code, why);
    return;
  }
  if (!was_up) return; /* detached timer fired while connecting: nothing to do */
  retry_or_finish(c, code, why);
}

void rt_client_resumed(rt_conn *rc) {
  emit(rc->client, RS_CLIENT_RESUMED, "session resumed");
}

static void client_unref(rs_client *c) {
  if (--c->open_handles > 0) return;
  uv_loop_t *loop = c->loop;
  rs_io_loop_put(c->io);
  rs_tls_ctx_free(c->tls);
  free(c);
  rt_post_release(loop);
}

static void on_client_handle_closed(uv_handle_t *h) {
  client_unref(h->data);
}

static void finish(rs_client *c, int err, const char *message) {
  if (c->finished) return;
  c->finished = true;
  c->phase = PH_IDLE;
  set_error(c, err, message);
  uv_timer_stop(&c->timer);
  if (c->racer) rs_connect_cancel(c->racer);
  c->racer = NULL;
  if (c->rc) {
    rs_conn *conn = c->rc->conn;
    uint64_t now = uv_now(c->loop);
    if (rs_conn_get_state(conn) != RS_CONN_STATE_CLOSED) {
      rs_conn_abort(conn, rs_bytes_str("client closed"));
      rs_conn_detach(conn, now);
    }
    rs_conn_handle_expiry(conn, now); /* every stream gets its error and closed callbacks */
  }
  emit(c, RS_CLIENT_CLOSED, c->last_message);
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
  if (rc == 0 && (rc = rt_post_acquire(loop)) != 0) {
    snprintf(err, errlen, "cannot create an event loop handle: %s", rs_strerror(rc));
    rt_conn_destroy(c->rc);
  }
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
  return c && c->phase == PH_ESTABLISHED;
}

int rs_client_last_error(const rs_client *c) {
  return c ? c->last_error : RS_ERR_INVALID_ARGUMENT;
}

static void on_close_now(uv_timer_t *t) {
  finish(t->data, RS_ERR_CLOSED, "closed");
}

static void on_abort_grace(uv_timer_t *t) {
  rs_client *c = t->data;
  cut_transport(c, RS_ERR_CLOSED, "closed");
}

void rs_client_close(rs_client *c, bool graceful) {
  /* A graceful close may still be turned into an abort (a program's timeout fires). */
  if (!c || c->finished || (c->closing && (graceful || c->aborting))) return;
  c->closing = true;
  c->aborting = !graceful;
  rs_io_conn *io = current_io(c);
  if (!io) {
    /* Connecting or waiting to retry. Graceful: connect first so that what was queued (SETUP, a
     * fire-and-forget, …) goes out. Otherwise stop now, and report from the loop. */
    if (graceful && c->phase == PH_CONNECTING) return;
    if (c->racer) rs_connect_cancel(c->racer);
    c->racer = NULL;
    uv_timer_start(&c->timer, on_close_now, 0, 0);
    return;
  }
  if (graceful) {
    rs_conn_close(c->rc->conn, rs_bytes_str("client closing"));
    rt_conn_wake(c->rc);
    return;
  }
  if (c->phase != PH_ESTABLISHED) {
    /* Mid-handshake nothing can be said to the server: cut the transport. */
    cut_transport(c, RS_ERR_CLOSED, "closed");
    return;
  }
  rs_conn_abort(c->rc->conn, rs_bytes_str("client closed"));
  rt_conn_wake(c->rc);
  uv_timer_start(&c->timer, on_abort_grace, ABORT_GRACE_MS, 0);
}
