/* The glue between one engine and its transport: callback forwarding, session ops, detach. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt_internal.h"
#include "runtime/ws_transport.h"

static rt_conn *rt_of(rs_conn *conn) {
  return rs_conn_user(conn);
}

void rt_conn_wake(rt_conn *rc) {
  if (rc->io)
    rs_io_conn_wake(rc->io);
  else
    rt_conn_arm_detached_timer(rc);
}

bool rs_runtime_writable(rs_conn *conn) {
  rt_conn *rc = conn ? rt_of(conn) : NULL;
  if (!rc) return false;
  size_t high = rs_conn_get_settings(conn)->output_high_watermark;
  if (high == 0 || rs_conn_pending_bytes(conn) < high) return true;
  rc->want_drained = true;
  return false;
}

void rt_conn_output_taken(rt_conn *rc) {
  if (!rc->want_drained && !rc->read_paused) return;
  size_t high = rs_conn_get_settings(rc->conn)->output_high_watermark;
  if (rs_conn_pending_bytes(rc->conn) > high / 2) return;
  if (rc->read_paused) {
    rc->read_paused = false;
    if (rc->io && !rc->app_paused) rs_io_conn_pause_reading(rc->io, false);
  }
  if (rc->want_drained) {
    rc->want_drained = false;
    if (rc->on_drained) rc->on_drained(rc->conn, rc->app_user);
  }
}

/* Servers only: a client always reads, so two of our processes that both queue a lot for each
 * other can never both stop reading and deadlock. */
void rt_conn_input_given(rt_conn *rc) {
  size_t high = rs_conn_get_settings(rc->conn)->output_high_watermark;
  if (high == 0 || rc->read_paused || !rc->io || !rc->server) return;
  if (rs_conn_pending_bytes(rc->conn) <= 4 * high) return;
  rc->read_paused = true;
  rs_io_conn_pause_reading(rc->io, true);
}

void rs_runtime_pause_reading(rs_conn *conn, bool paused) {
  rt_conn *rc = conn ? rt_of(conn) : NULL;
  if (!rc || rc->app_paused == paused) return;
  rc->app_paused = paused;
  /* Not the peer's doing: its keepalives wait unread, so no lifetime check meanwhile. */
  rs_conn_set_input_paused(conn, paused, rc->loop ? uv_now(rc->loop) : 0);
  if (rc->io && !rc->read_paused) rs_io_conn_pause_reading(rc->io, paused);
  if (rc->io) rs_io_conn_wake(rc->io); /* the engine's next deadline changed */
}

/* A transport was just attached to `rc`: it reads unless the application paused reading (the
 * read cap was about the previous transport's output, which is gone). */
static void reading_on_new_transport(rt_conn *rc) {
  rc->read_paused = false;
  if (rc->io) rs_io_conn_pause_reading(rc->io, rc->app_paused);
}

void *rs_runtime_user(rs_conn *conn) {
  rt_conn *rc = conn ? rt_of(conn) : NULL;
  return rc ? rc->app_user : NULL;
}

uv_loop_t *rs_runtime_loop(rs_conn *conn) {
  rt_conn *rc = conn ? rt_of(conn) : NULL;
  return rc ? rc->loop : NULL;
}

const char *rs_runtime_peer(rs_conn *conn) {
  rt_conn *rc = conn ? rt_of(conn) : NULL;
  return rc && rc->io ? rs_io_conn_peer(rc->io) : "";
}

/* ---- forwarding callbacks ---- */

static int fw_setup(rs_conn *conn, const rs_setup_info *setup, void *user) {
  rt_conn *rc = user;
  int r = rc->app->on_setup ? rc->app->on_setup(conn, setup, rc->app_user) : 0;
  if (r == 0) rt_pending_remove(&rc->pending); /* a server connection has proven itself */
  return r;
}

static void fw_close(rs_conn *conn, const rs_close_info *info, void *user) {
  rt_conn *rc = user;
  rc->closed = true;
  if (rc->app->on_close) rc->app->on_close(conn, info, rc->app_user);
}

static int fw_request(rs_conn *conn, const rs_request *req, void *user) {
  rt_conn *rc = user;
  return rc->app->on_request ? rc->app->on_request(conn, req, rc->app_user) : -1;
}

static void fw_payload(rs_conn *conn, uint32_t sid, void *su, const rs_payload *p, unsigned flags,
                       void *user) {
  rt_conn *rc = user;
  if (rc->app->on_payload) rc->app->on_payload(conn, sid, su, p, flags, rc->app_user);
}

static void fw_request_n(rs_conn *conn, uint32_t sid, void *su, uint64_t n, void *user) {
  rt_conn *rc = user;
  if (rc->app->on_request_n) rc->app->on_request_n(conn, sid, su, n, rc->app_user);
}

static void fw_cancel(rs_conn *conn, uint32_t sid, void *su, void *user) {
  rt_conn *rc = user;
  if (rc->app->on_cancel) rc->app->on_cancel(conn, sid, su, rc->app_user);
}

static void fw_error(rs_conn *conn, uint32_t sid, void *su, const rs_stream_error *e, void *user) {
  rt_conn *rc = user;
  if (rc->app->on_error) rc->app->on_error(conn, sid, su, e, rc->app_user);
}

static void fw_stream_closed(rs_conn *conn, uint32_t sid, void *su, void *user) {
  rt_conn *rc = user;
  if (rc->app->on_stream_closed) rc->app->on_stream_closed(conn, sid, su, rc->app_user);
}

static void fw_metadata_push(rs_conn *conn, rs_bytes md, void *user) {
  rt_conn *rc = user;
  if (rc->app->on_metadata_push) rc->app->on_metadata_push(conn, md, rc->app_user);
}

static void fw_lease(rs_conn *conn, uint32_t ttl, uint32_t n, const rs_bytes *md, void *user) {
  rt_conn *rc = user;
  if (rc->app->on_lease) rc->app->on_lease(conn, ttl, n, md, rc->app_user);
}

/* A session that ignores everything: given to a transport we are abandoning. */
static int null_recv(void *s, const uint8_t *b, size_t n, uint64_t now) {
  (void)s, (void)b, (void)n, (void)now;
  return 0;
}
static int null_pending(void *s, rs_io_vec *iov, int max) {
  (void)s, (void)iov, (void)max;
  return 0;
}
static void null_consumed(void *s, size_t n) {
  (void)s, (void)n;
}
static uint64_t null_deadline(void *s) {
  (void)s;
  return RS_IO_NO_DEADLINE;
}
static void null_expire(void *s, uint64_t now) {
  (void)s, (void)now;
}
static bool null_want_close(void *s) {
  (void)s;
  return true;
}
static void null_closed(void *s, int err, const char *reason) {
  (void)s, (void)err, (void)reason;
}
static const rs_io_session_ops null_ops = {null_recv,     null_pending, null_consumed,
                                           null_deadline, null_expire,  null_want_close,
                                           null_closed,   false};

static const rt_ws_inner_ops null_inner;

static void drop_transport(rt_conn *rc) {
  if (!rc->io) return;
  if (rc->ws_layer) {
    rt_ws_set_inner(rc->ws_layer, &null_inner, NULL); /* the WebSocket frees itself on close */
    rc->ws_layer = NULL;
  } else {
    rs_io_conn_set_session(rc->io, &null_ops, NULL);
  }
  rs_io_conn_abort(rc->io, RS_ERR_CLOSED, "session resumed elsewhere");
  rc->io = NULL;
}

static void fw_detached(rs_conn *conn, void *user) {
  (void)conn;
  drop_transport(user); /* a RESUME on a new transport took this session over */
}

/* The engine has output or an earlier deadline from a call made outside its own callbacks: flush
 * before the loop sleeps (rs_io_conn_wake is idempotent), or, with no transport, re-arm the timer
 * that drives a detached engine. */
static void fw_wake(rs_conn *conn, void *user) {
  (void)conn;
  rt_conn_wake(user);
}

static int fw_produce(rs_conn *conn, uint32_t sid, void *su, uint64_t credit, void *user) {
  rt_conn *rc = user;
  return rc->app->on_produce ? rc->app->on_produce(conn, sid, su, credit, rc->app_user)
                             : RS_PRODUCE_PAUSE;
}

const rs_conn_callbacks rt_forward_callbacks = {
    sizeof(rs_conn_callbacks),
    fw_setup,
    fw_close,
    fw_request,
    fw_payload,
    fw_request_n,
    fw_cancel,
    fw_error,
    fw_stream_closed,
    fw_metadata_push,
    fw_lease,
    fw_detached,
    fw_wake,
    fw_produce,
};

/* Producer calls per engine_pending: a burst starts with PRODUCE_CALLS_MIN and doubles (the output
 * watermark bounds the bytes). */
#define PRODUCE_CALLS_MIN 16u
#define PRODUCE_CALLS_MAX (1u << 20)

/*
 * The engine's output, after letting its ready producers add to it. Production is interleaved
 * with writing: each call lets producers run a number of times, the transport writes what they
 * sent and asks again (a flush has FLUSH_ROUNDS of those). A burst starts small so its first
 * bytes leave soon: producing a whole grant first (request-stream of 16-byte items: 100 KB, the
 * first byte written 100-120 us after the REQUEST_N) left a fast reader idle while its credit was
 * being produced. The unit is calls, not bytes: what delays the first write is the work per
 * element, and a first write much under a megabyte made streams of large elements slower (1 KiB
 * items: a 64 KiB write before the rest of each grant cost 28%); 16 calls of rsocket --server are
 * 1,024 small elements (the first byte 30 us after the REQUEST_N) or a full watermark of large
 * ones. A burst ends when producers run out of credit or room.
 */
static int engine_pending(rt_conn *rc, rs_iov *iov, int max) {
  if (!rs_conn_want_produce(rc->conn)) {
    rc->produce_calls = PRODUCE_CALLS_MIN; /* out of credit or room: the next burst starts small */
  } else {
    if (rc->produce_calls < PRODUCE_CALLS_MIN) rc->produce_calls = PRODUCE_CALLS_MIN;
    rs_conn_produce_some(rc->conn, rc->produce_calls, uv_now(rc->loop));
    if (rc->produce_calls < PRODUCE_CALLS_MAX) rc->produce_calls *= 2;
  }
  return rs_conn_pending_output(rc->conn, iov, max);
}

/* ---- engine as an io session (length-prefixed framing) ---- */

void rt_conn_set_tap(rt_conn *rc, void (*fn)(rs_conn *, bool, const uint8_t *, size_t, void *)) {
  rc->tap = fn;
  if (fn) {
    rs_frame_reader_init(&rc->tap_in, NULL, 0);
    rs_frame_reader_init(&rc->tap_out, NULL, 0);
  }
}

void rt_conn_tap(rt_conn *rc, bool outbound, const uint8_t *buf, size_t len) {
  if (!rc->tap) return;
  if (rc->ws) {
    rc->tap(rc->conn, outbound, buf, len, rc->app_user);
    return;
  }
  rs_frame_reader *r = outbound ? &rc->tap_out : &rc->tap_in;
  while (len > 0) {
    rs_bytes frame;
    rs_ssize n = rs_frame_reader_next(r, buf, len, &frame);
    if (n < 0) return; /* the engine reports broken framing itself */
    if (frame.ptr) rc->tap(rc->conn, outbound, frame.ptr, frame.len, rc->app_user);
    buf += n;
    len -= (size_t)n;
  }
}

/* Client: the transport's first output and first input mark its phases (runtime_client.c). */
static void note_ready(rt_conn *rc) {
  if (rc->client && !rc->ready) {
    rc->ready = true;
    rt_client_transport_ready(rc);
  }
}

static void note_answered(rt_conn *rc) {
  if (rc->client && !rc->answered) {
    rc->answered = true;
    rt_client_answered(rc);
  }
}

static int eng_recv(void *s, const uint8_t *buf, size_t len, uint64_t now) {
  rt_conn *rc = s;
  rt_conn_tap(rc, false, buf, len);
  if (len > 0) note_answered(rc);
  bool resuming = rs_conn_get_state(rc->conn) == RS_CONN_STATE_RESUMING;
  rs_ssize n = rs_conn_recv(rc->conn, buf, len, now);
  if (n < 0) return (int)n;
  rt_conn_input_given(rc);
  if (resuming && rc->client && rs_conn_get_state(rc->conn) == RS_CONN_STATE_ESTABLISHED)
    rt_client_resumed(rc);
  if ((size_t)n < len || rs_conn_get_state(rc->conn) == RS_CONN_STATE_HANDED_OFF) {
    /* Server: this transport's RESUME resumed another session. Hand the transport over. */
    rs_conn *other = rs_conn_resumed_session(rc->conn);
    if (!other) return RS_ERR_INTERNAL;
    rt_conn *orc = rt_of(other);
    drop_transport(orc);
    orc->io = rc->io;
    rc->io = NULL;
    uv_timer_stop(&orc->timer);
    rs_io_conn_set_session(orc->io, &rt_engine_ops, orc);
    reading_on_new_transport(orc);
    if ((size_t)n < len) {
      rs_ssize m = rs_conn_recv(other, buf + n, len - (size_t)n, now);
      if (m < 0) return (int)m;
    }
    /* The handed-off engine has nothing more to do: free it once we are off its stack. */
    rt_conn_transport_closed(rc, 0, "handed off");
  }
  return 0;
}

static int eng_pending(void *s, rs_io_vec *iov, int max) {
  rt_conn *rc = s;
  note_ready(rc);
  return engine_pending(rc, (rs_iov *)iov, max);
}

static void eng_consumed(void *s, size_t n) {
  rt_conn *rc = s;
  if (rc->tap) {
    rs_iov iov[RS_IO_MAX_IOV];
    int cnt = rs_conn_pending_output(rc->conn, iov, RS_IO_MAX_IOV);
    size_t left = n;
    for (int i = 0; i < cnt && left > 0; i++) {
      size_t take = iov[i].len < left ? iov[i].len : left;
      rt_conn_tap(rc, true, iov[i].base, take);
      left -= take;
    }
  }
  rs_conn_consumed(rc->conn, n);
  rt_conn_output_taken(rc);
}

static uint64_t eng_deadline(void *s) {
  rt_conn *rc = s;
  return rs_conn_next_deadline(rc->conn);
}

static void eng_expire(void *s, uint64_t now) {
  rt_conn *rc = s;
  rs_conn_handle_expiry(rc->conn, now);
}

/* The engine is finished (closed, or handed off), drained or not: the transport writes what is
 * left and closes, and cuts a peer that does not take it (rs_io's close deadline). */
static bool engine_finished(const rt_conn *rc) {
  rs_conn_state st = rs_conn_get_state(rc->conn);
  return st == RS_CONN_STATE_CLOSED || st == RS_CONN_STATE_HANDED_OFF;
}

static bool eng_want_close(void *s) {
  return engine_finished(s);
}

static void eng_closed(void *s, int err, const char *reason) {
  rt_conn *rc = s;
  rc->io = NULL;
  rt_conn_transport_closed(rc, err, reason);
}

/* The engine's output queue is a chain of blocks that never move (core/outq.h). */
const rs_io_session_ops rt_engine_ops = {eng_recv,   eng_pending,    eng_consumed, eng_deadline,
                                         eng_expire, eng_want_close, eng_closed,   true};

/* ---- engine over WebSocket (one RSocket frame per binary message) ---- */

static void ni_open(void *inner, rt_ws *ws) {
  (void)inner, (void)ws;
}
static int ni_message(void *inner, rt_ws *ws, int op, const uint8_t *d, size_t n, uint64_t now) {
  (void)inner, (void)ws, (void)op, (void)d, (void)n, (void)now;
  return 0;
}
static void ni_pull(void *inner, rt_ws *ws) {
  (void)inner, (void)ws;
}
static uint64_t ni_deadline(void *inner) {
  (void)inner;
  return UINT64_MAX;
}
static void ni_expire(void *inner, uint64_t now) {
  (void)inner, (void)now;
}
static bool ni_want_close(void *inner) {
  (void)inner;
  return true;
}
static void ni_closed(void *inner, int err, const char *reason) {
  (void)inner, (void)err, (void)reason;
}
static const rt_ws_inner_ops null_inner = {.on_open = ni_open,
                                           .on_message = ni_message,
                                           .pull = ni_pull,
                                           .next_deadline = ni_deadline,
                                           .expire = ni_expire,
                                           .want_close = ni_want_close,
                                           .closed = ni_closed};

static const rt_ws_inner_ops engine_inner;

static void wi_open(void *inner, rt_ws *ws) {
  (void)inner, (void)ws;
}

static int wi_message(void *inner, rt_ws *ws, int op, const uint8_t *d, size_t n, uint64_t now) {
  rt_conn *rc = inner;
  if (op != RS_WS_OP_BINARY) return -1; /* RSocket frames travel in binary messages */
  rt_conn_tap(rc, false, d, n);
  note_answered(rc);
  bool resuming = rs_conn_get_state(rc->conn) == RS_CONN_STATE_RESUMING;
  int r = rs_conn_recv_frame(rc->conn, d, n, now);
  if (r < 0) return 0; /* the engine closes itself; the WebSocket follows */
  rt_conn_input_given(rc);
  if (resuming && rc->client && rs_conn_get_state(rc->conn) == RS_CONN_STATE_ESTABLISHED)
    rt_client_resumed(rc);
  if (rs_conn_get_state(rc->conn) == RS_CONN_STATE_HANDED_OFF) {
    /* Server: this RESUME resumed another session; the WebSocket now carries that one. */
    rs_conn *other = rs_conn_resumed_session(rc->conn);
    if (!other) return 0;
    rt_conn *orc = rt_of(other);
    drop_transport(orc);
    uv_timer_stop(&orc->timer);
    orc->io = rc->io;
    orc->ws_layer = ws;
    orc->ws = true;
    rt_ws_set_inner(ws, &engine_inner, orc);
    reading_on_new_transport(orc);
    rc->io = NULL;
    rc->ws_layer = NULL;
    rt_conn_transport_closed(rc, 0, "handed off");
  }
  return 0;
}

static void wi_pull(void *inner, rt_ws *ws) {
  rt_conn *rc = inner;
  note_ready(rc);
  rs_iov iov[32];
  for (;;) {
    int n = engine_pending(rc, iov, 32);
    if (n <= 0) {
      rt_conn_output_taken(rc);
      return;
    }
    for (int i = 0; i < n; i++) {
      int r = rt_ws_send(ws, RS_WS_OP_BINARY, iov[i].base, iov[i].len);
      if (r != 0) return; /* full (try again when it drains) or closing */
      rt_conn_tap(rc, true, iov[i].base, iov[i].len);
      rs_conn_consumed(rc->conn, iov[i].len);
    }
  }
}

static int wi_direct_pending(void *inner, rs_iov *iov, int max) {
  return engine_pending(inner, iov, max);
}

static void wi_direct_consumed(void *inner, size_t n) {
  rt_conn *rc = inner;
  if (rc->tap) {
    rs_iov iov[1];
    if (rs_conn_pending_output(rc->conn, iov, 1) == 1) rt_conn_tap(rc, true, iov[0].base, n);
  }
  rs_conn_consumed(rc->conn, n);
  rt_conn_output_taken(rc);
}

/* Over WebSocket the engine's last output must first move into the WebSocket, which a peer that
 * reads nothing may never let happen: a finished engine whose output is still not drained after
 * RS_IO_CLOSE_FLUSH_MS cuts the transport. */

static uint64_t finished_since(rt_conn *rc) {
  if (!rc->finished_at && engine_finished(rc)) rc->finished_at = uv_now(rc->loop);
  return rc->finished_at;
}

static uint64_t wi_deadline(void *inner) {
  rt_conn *rc = inner;
  uint64_t d = rs_conn_next_deadline(rc->conn);
  if (finished_since(rc) && !rs_conn_want_close(rc->conn) &&
      rc->finished_at + RS_IO_CLOSE_FLUSH_MS < d)
    d = rc->finished_at + RS_IO_CLOSE_FLUSH_MS;
  return d;
}

static void wi_expire(void *inner, uint64_t now) {
  rt_conn *rc = inner;
  rs_conn_handle_expiry(rc->conn, now);
  if (finished_since(rc) && !rs_conn_want_close(rc->conn) &&
      now >= rc->finished_at + RS_IO_CLOSE_FLUSH_MS && rc->io) {
    char why[128];
    snprintf(why, sizeof why, "the peer did not read our last output within %u s",
             RS_IO_CLOSE_FLUSH_MS / 1000);
    rs_io_conn_abort(rc->io, RS_ERR_TIMEOUT, why);
  }
}

static bool wi_want_close(void *inner) {
  return rs_conn_want_close(((rt_conn *)inner)->conn);
}

static void wi_closed(void *inner, int err, const char *reason) {
  rt_conn *rc = inner;
  rc->io = NULL;
  rc->ws_layer = NULL;
  rt_conn_transport_closed(rc, err, reason);
}

static const rt_ws_inner_ops engine_inner = {.on_open = wi_open,
                                             .on_message = wi_message,
                                             .pull = wi_pull,
                                             .next_deadline = wi_deadline,
                                             .expire = wi_expire,
                                             .want_close = wi_want_close,
                                             .closed = wi_closed,
                                             .direct_pending = wi_direct_pending,
                                             .direct_consumed = wi_direct_consumed};

int rt_conn_attach_io(rt_conn *rc, rs_io_conn *io, const rs_uri *uri,
                      const rs_ws_transport_options *ws, bool server) {
  uv_timer_stop(&rc->timer);
  rc->io = io;
  rc->ready = rc->answered = false;
  if (!uri->websocket) {
    rs_io_conn_set_session(io, &rt_engine_ops, rc);
    reading_on_new_transport(rc);
    return 0;
  }
  char host[300];
  rt_ws_host_header(uri, host, sizeof host);
  rt_ws *w = rt_ws_attach(io, server, ws, host, uri->path, &engine_inner, rc);
  if (!w) {
    rc->io = NULL;
    return RS_ERR_NOMEM;
  }
  rc->ws_layer = w;
  reading_on_new_transport(rc);
  return 0;
}

void rt_conn_adopt_ws(rt_conn *rc, rs_io_conn *io, rt_ws *ws) {
  uv_timer_stop(&rc->timer);
  rc->io = io;
  rc->ws = true;
  rc->ws_layer = ws;
  rc->ready = rc->answered = false;
  rt_ws_set_inner(ws, &engine_inner, rc);
  reading_on_new_transport(rc);
}

/* ---- detached life ---- */

static void on_detached_timer(uv_timer_t *t) {
  rt_conn *rc = t->data;
  rs_conn_handle_expiry(rc->conn, uv_now(rc->loop));
  if (rc->io) {
    rs_io_conn_wake(rc->io);
    return;
  }
  if (rs_conn_get_state(rc->conn) == RS_CONN_STATE_CLOSED) {
    if (rc->server)
      rt_server_conn_gone(rc, RS_ERR_CLOSED, "closed");
    else
      rt_client_transport_gone(rc, RS_ERR_CLOSED, "closed");
    return;
  }
  rt_conn_arm_detached_timer(rc);
}

void rt_conn_arm_detached_timer(rt_conn *rc) {
  if (rc->timer_closing || rc->io) return;
  uint64_t d = rs_conn_next_deadline(rc->conn);
  if (d == UINT64_MAX) {
    uv_timer_stop(&rc->timer);
    return;
  }
  uint64_t now = uv_now(rc->loop);
  uv_timer_start(&rc->timer, on_detached_timer, d > now ? d - now : 0, 0);
}

void rt_conn_transport_closed(rt_conn *rc, int err, const char *reason) {
  uint64_t now = uv_now(rc->loop);
  rs_conn_state st = rs_conn_get_state(rc->conn);
  if (st != RS_CONN_STATE_CLOSED && st != RS_CONN_STATE_HANDED_OFF &&
      st != RS_CONN_STATE_DISCONNECTED) {
    rs_conn_detach(rc->conn, now);
  }
  rs_conn_handle_expiry(rc->conn, now); /* delivers on_close when the session cannot wait */
  st = rs_conn_get_state(rc->conn);
  if (st == RS_CONN_STATE_CLOSED || st == RS_CONN_STATE_HANDED_OFF) {
    if (rc->server)
      rt_server_conn_gone(rc, err, reason);
    else
      rt_client_transport_gone(rc, err, reason);
    return;
  }
  /* Detached and resumable: keep the session, drive its timers (session timeout). */
  rt_conn_arm_detached_timer(rc);
  if (rc->client) rt_client_transport_gone(rc, err, reason);
}

static void on_timer_closed(uv_handle_t *h) {
  rt_conn *rc = h->data;
  if (rc->tap) {
    rs_frame_reader_free(&rc->tap_in);
    rs_frame_reader_free(&rc->tap_out);
  }
  rs_conn_free(rc->conn);
  free(rc);
}

void rt_conn_destroy(rt_conn *rc) {
  if (rc->timer_closing) return;
  rc->timer_closing = true;
  drop_transport(rc);
  uv_timer_stop(&rc->timer);
  uv_close((uv_handle_t *)&rc->timer, on_timer_closed);
}
