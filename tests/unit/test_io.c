/* libuv plumbing over loopback: an echo session, plain and TLS, with large transfers. */
#include "testutil.h"
#include "tlsutil.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/io.h"

/* A session over a queue of chunks: echo (server) or sender/checker (client). Chunks are never
 * moved while queued, as the session contract requires (bytes valid until consumed). */
typedef struct chunk {
  struct chunk *next;
  size_t len, off;
  uint8_t data[];
} chunk;

typedef struct sess {
  chunk *head, *tail;
  bool is_client;
  bool sink;     /* server: ignore input (it only sends what was queued before) */
  size_t expect; /* client: bytes to get back */
  size_t received;
  bool done, closed;
  int close_err;
  rs_io_conn *conn;
} sess;

static void out_append(sess *s, const uint8_t *p, size_t n) {
  chunk *c = malloc(sizeof *c + n);
  assert_non_null(c);
  c->next = NULL;
  c->len = n;
  c->off = 0;
  memcpy(c->data, p, n);
  if (s->tail)
    s->tail->next = c;
  else
    s->head = c;
  s->tail = c;
}

static void out_free(sess *s) {
  while (s->head) {
    chunk *c = s->head;
    s->head = c->next;
    free(c);
  }
  s->tail = NULL;
}

static uint8_t pattern(size_t i) {
  return (uint8_t)(i * 131 + (i >> 8));
}

static int s_recv(void *p, const uint8_t *buf, size_t len, uint64_t now) {
  (void)now;
  sess *s = p;
  if (!s->is_client) {
    if (!s->sink) out_append(s, buf, len);
    return 0;
  }
  for (size_t i = 0; i < len; i++) {
    if (buf[i] != pattern(s->received + i)) return RS_ERR_PROTOCOL;
  }
  s->received += len;
  if (s->received == s->expect) {
    s->done = true;
    rs_io_conn_close(s->conn);
  }
  return 0;
}

static int s_pending(void *p, rs_io_vec *iov, int max) {
  sess *s = p;
  int n = 0;
  for (chunk *c = s->head; c && n < max; c = c->next, n++) {
    iov[n].base = c->data + c->off;
    iov[n].len = c->len - c->off;
  }
  return n;
}

static void s_consumed(void *p, size_t n) {
  sess *s = p;
  while (n > 0) {
    chunk *c = s->head;
    assert_non_null(c);
    size_t take = c->len - c->off < n ? c->len - c->off : n;
    c->off += take;
    n -= take;
    if (c->off == c->len) {
      s->head = c->next;
      if (!s->head) s->tail = NULL;
      free(c);
    }
  }
}

static uint64_t s_deadline(void *p) {
  (void)p;
  return RS_IO_NO_DEADLINE;
}

static void s_expire(void *p, uint64_t now) {
  (void)p, (void)now;
}

static bool s_want_close(void *p) {
  (void)p;
  return false;
}

static void s_closed(void *p, int err, const char *reason) {
  (void)reason;
  sess *s = p;
  s->closed = true;
  s->close_err = err;
}

static const rs_io_session_ops ops = {s_recv,   s_pending,    s_consumed, s_deadline,
                                      s_expire, s_want_close, s_closed,   false};

typedef struct world {
  uv_loop_t loop;
  rs_io_loop *io;
  uv_tcp_t listener;
  rs_tls_ctx *sctx, *cctx;
  sess server, client;
  uv_connect_t creq;
  uv_tcp_t *ctcp;
} world;

static void on_conn(uv_stream_t *l, int status) {
  world *w = l->data;
  assert_int_equal(status, 0);
  uv_tcp_t *t = malloc(sizeof *t);
  uv_tcp_init(&w->loop, t);
  assert_int_equal(uv_accept(l, (uv_stream_t *)t), 0);
  rs_io_conn *c = rs_io_conn_new(w->io, t, w->sctx ? rs_tls_new(w->sctx, true, NULL) : NULL);
  w->server.conn = c;
  rs_io_conn_set_session(c, &ops, &w->server);
  uv_close((uv_handle_t *)&w->listener, NULL); /* one connection is all we need */
}

static void on_connected(uv_connect_t *req, int status) {
  world *w = req->data;
  assert_int_equal(status, 0);
  rs_io_conn *c =
      rs_io_conn_new(w->io, w->ctcp, w->cctx ? rs_tls_new(w->cctx, false, "localhost") : NULL);
  w->client.conn = c;
  rs_io_conn_set_session(c, &ops, &w->client);
}

static void run_echo(bool tls, size_t total) {
  world w;
  memset(&w, 0, sizeof w);
  char *cert = NULL, *key = NULL;
  if (tls) {
    assert_int_equal(tu_make_cert("localhost", &cert, &key), 0);
    char err[RS_TLS_ERRLEN];
    w.sctx = rs_tls_ctx_server_pem(cert, key, err);
    w.cctx = rs_tls_ctx_client(NULL, false, err);
    assert_non_null(w.sctx);
    assert_non_null(w.cctx);
    assert_int_equal(rs_tls_ctx_trust_pem(w.cctx, cert), 0);
  }
  assert_int_equal(uv_loop_init(&w.loop), 0);
  w.io = rs_io_loop_new(&w.loop);
  char err[128];
  assert_int_equal(
      rs_io_listen(&w.loop, "127.0.0.1", 0, false, 16, &w.listener, on_conn, err, sizeof err), 0);
  w.listener.data = &w;
  int port = rs_io_bound_port(&w.listener);
  assert_true(port > 0);

  w.client.is_client = true;
  w.client.expect = total;
  uint8_t *block = malloc(65536);
  for (size_t off = 0; off < total; off += 65536) {
    size_t n = total - off < 65536 ? total - off : 65536;
    for (size_t i = 0; i < n; i++) block[i] = pattern(off + i);
    out_append(&w.client, block, n);
  }
  free(block);
  w.ctcp = malloc(sizeof *w.ctcp);
  uv_tcp_init(&w.loop, w.ctcp);
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", port, &addr);
  w.creq.data = &w;
  assert_int_equal(uv_tcp_connect(&w.creq, w.ctcp, (struct sockaddr *)&addr, on_connected), 0);

  uv_run(&w.loop, UV_RUN_DEFAULT); /* ends when the client closes and the server sees EOF */
  assert_true(w.client.done);
  assert_int_equal(w.client.received, total);
  assert_true(w.client.closed);
  assert_true(w.server.closed);

  rs_io_loop_free(w.io);
  uv_run(&w.loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&w.loop), 0);
  out_free(&w.client);
  out_free(&w.server);
  rs_tls_ctx_free(w.sctx);
  rs_tls_ctx_free(w.cctx);
  free(cert);
  free(key);
}

static void on_guard(uv_timer_t *t) {
  uv_stop(t->loop); /* the test has hung: stop so its assertions report it */
}

/*
 * Regression (the WebSocket flush stall): a connection with many small chunks queued and no more
 * input must drain them all. A flush writes at most 8 x 64 iovecs per loop iteration; the rest
 * was continued by a 0 ms timer that arm_timer then overwrote with the session's deadline (none
 * here), so everything past the first 512 chunks waited for an event that never came.
 */
static void test_flush_stall_many_small_chunks_drain_without_events(void **state) {
  (void)state;
  world w;
  memset(&w, 0, sizeof w);
  assert_int_equal(uv_loop_init(&w.loop), 0);
  w.io = rs_io_loop_new(&w.loop);
  char err[128];
  assert_int_equal(
      rs_io_listen(&w.loop, "127.0.0.1", 0, false, 16, &w.listener, on_conn, err, sizeof err), 0);
  w.listener.data = &w;
  int port = rs_io_bound_port(&w.listener);
  const size_t chunks = 3000, each = 7, total = chunks * each;
  w.server.sink = true;
  for (size_t i = 0; i < chunks; i++) {
    uint8_t b[7];
    for (size_t j = 0; j < each; j++) b[j] = pattern(i * each + j);
    out_append(&w.server, b, each);
  }
  w.client.is_client = true;
  w.client.expect = total;
  w.ctcp = malloc(sizeof *w.ctcp);
  uv_tcp_init(&w.loop, w.ctcp);
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", port, &addr);
  w.creq.data = &w;
  assert_int_equal(uv_tcp_connect(&w.creq, w.ctcp, (struct sockaddr *)&addr, on_connected), 0);
  uv_timer_t guard;
  uv_timer_init(&w.loop, &guard);
  uv_timer_start(&guard, on_guard, 20000, 0);
  uv_unref((uv_handle_t *)&guard);

  uv_run(&w.loop, UV_RUN_DEFAULT);
  assert_int_equal(w.client.received, total);
  assert_true(w.client.done);
  assert_true(w.client.closed);
  assert_true(w.server.closed);

  uv_close((uv_handle_t *)&guard, NULL);
  rs_io_loop_free(w.io);
  uv_run(&w.loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&w.loop), 0);
  out_free(&w.client);
  out_free(&w.server);
}

/* ---- deadlines: many connections on the loop's one timer ---- */

#define DL_CONNS 40

/* Server side: a list of deadlines (each a step after the previous expiry), then close. Some
 * start with a far deadline that the client's first byte moves close (a move to the front). */
typedef struct dsess {
  rs_io_conn *conn;
  struct dworld *w;
  uint64_t deadline; /* RS_IO_NO_DEADLINE: none */
  int steps, expired;
  bool pulled; /* far deadline, pulled in by the client's byte */
  bool done, closed;
} dsess;

typedef struct dworld {
  uv_loop_t loop;
  rs_io_loop *io;
  uv_tcp_t listener;
  dsess server[DL_CONNS];
  int accepted, closed, early, out_of_order;
  uint64_t last_due;
  uv_tcp_t *ctcp[DL_CONNS];
  uv_connect_t creq[DL_CONNS];
  rs_io_conn *cconn[DL_CONNS];
} dworld;

static int d_recv(void *p, const uint8_t *buf, size_t len, uint64_t now) {
  dsess *s = p;
  (void)buf, (void)len;
  if (s->pulled && s->expired == 0) s->deadline = now + 3; /* far → near */
  return 0;
}

static int d_pending(void *p, rs_io_vec *iov, int max) {
  (void)p, (void)iov, (void)max;
  return 0;
}

static void d_consumed(void *p, size_t n) {
  (void)p, (void)n;
}

static uint64_t d_deadline(void *p) {
  dsess *s = p;
  return s->done ? RS_IO_NO_DEADLINE : s->deadline;
}

static void d_expire(void *p, uint64_t now) {
  dsess *s = p;
  if (s->done || now < s->deadline) {
    s->w->early++; /* called before its deadline */
    return;
  }
  if (s->deadline < s->w->last_due) s->w->out_of_order++;
  s->w->last_due = s->deadline;
  if (++s->expired == s->steps) {
    s->done = true;
    return;
  }
  /* Steps of different lengths, so connections overtake one another on the heap. */
  int i = (int)(s - s->w->server);
  s->deadline = now + 1 + (uint64_t)((i * 7 + s->expired * 13) % 17);
}

static bool d_want_close(void *p) {
  return ((dsess *)p)->done;
}

static void d_closed(void *p, int err, const char *reason) {
  (void)err, (void)reason;
  dsess *s = p;
  s->closed = true;
  s->w->closed++;
}

static const rs_io_session_ops d_ops = {d_recv,   d_pending,    d_consumed, d_deadline,
                                        d_expire, d_want_close, d_closed,   false};

/* Client side: says one byte, then waits for the server to close. */
static int c_recv(void *p, const uint8_t *buf, size_t len, uint64_t now) {
  (void)p, (void)buf, (void)len, (void)now;
  return 0;
}

static int c_pending(void *p, rs_io_vec *iov, int max) {
  bool *said = p;
  if (*said || max < 1) return 0;
  iov[0].base = (const uint8_t *)"x";
  iov[0].len = 1;
  return 1;
}

static void c_consumed(void *p, size_t n) {
  if (n) *(bool *)p = true;
}

static void c_closed(void *p, int err, const char *reason) {
  (void)p, (void)err, (void)reason;
}

static const rs_io_session_ops c_ops = {c_recv,   c_pending,    c_consumed, s_deadline,
                                        s_expire, s_want_close, c_closed,   false};

static bool said[DL_CONNS];

static void d_on_conn(uv_stream_t *l, int status) {
  dworld *w = l->data;
  assert_int_equal(status, 0);
  uv_tcp_t *t = malloc(sizeof *t);
  uv_tcp_init(&w->loop, t);
  assert_int_equal(uv_accept(l, (uv_stream_t *)t), 0);
  dsess *s = &w->server[w->accepted++];
  s->w = w;
  int i = (int)(s - w->server);
  s->steps = 1 + i % 4;
  s->pulled = i % 5 == 0;
  s->deadline = uv_now(&w->loop) + (s->pulled ? 60000 : 1 + (uint64_t)((i * 11) % 23));
  s->conn = rs_io_conn_new(w->io, t, NULL);
  /* The peer: formatted on demand, then kept (in place of the address) with the same text. */
  char before[RS_IO_PEER_MAX], after[RS_IO_PEER_MAX];
  assert_true(rs_io_conn_peer_format(s->conn, before, sizeof before) > 10);
  assert_int_equal(strncmp(before, "127.0.0.1:", 10), 0);
  const char *kept = rs_io_conn_peer(s->conn);
  assert_string_equal(kept, before);
  assert_ptr_equal(rs_io_conn_peer(s->conn), kept);
  assert_int_equal(rs_io_conn_peer_format(s->conn, after, sizeof after), strlen(before));
  assert_string_equal(after, before);
  rs_io_conn_set_session(s->conn, &d_ops, s);
  if (w->accepted == DL_CONNS) uv_close((uv_handle_t *)&w->listener, NULL);
}

static void d_on_connected(uv_connect_t *req, int status) {
  dworld *w = req->data;
  assert_int_equal(status, 0);
  int i = (int)(req - w->creq);
  w->cconn[i] = rs_io_conn_new(w->io, w->ctcp[i], NULL);
  rs_io_conn_set_session(w->cconn[i], &c_ops, &said[i]);
}

/* Every deadline of 40 connections on the loop's one timer: none expires early, they expire in
 * the order of their deadlines, deadlines that move later or (pulled by input) much earlier are
 * honoured, connections that are done leave the heap, and the loop ends with nothing armed. */
static void test_deadlines_of_many_connections_on_one_timer(void **state) {
  (void)state;
  static dworld w;
  memset(&w, 0, sizeof w);
  memset(said, 0, sizeof said);
  assert_int_equal(uv_loop_init(&w.loop), 0);
  w.io = rs_io_loop_new(&w.loop);
  char err[128];
  assert_int_equal(
      rs_io_listen(&w.loop, "127.0.0.1", 0, false, 64, &w.listener, d_on_conn, err, sizeof err), 0);
  w.listener.data = &w;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", rs_io_bound_port(&w.listener), &addr);
  for (int i = 0; i < DL_CONNS; i++) {
    w.ctcp[i] = malloc(sizeof *w.ctcp[i]);
    uv_tcp_init(&w.loop, w.ctcp[i]);
    w.creq[i].data = &w;
    assert_int_equal(
        uv_tcp_connect(&w.creq[i], w.ctcp[i], (struct sockaddr *)&addr, d_on_connected), 0);
  }
  uv_timer_t guard;
  uv_timer_init(&w.loop, &guard);
  uv_timer_start(&guard, on_guard, 20000, 0); /* the pulled deadlines would take 60 s */
  uv_unref((uv_handle_t *)&guard);

  uv_run(&w.loop, UV_RUN_DEFAULT);
  assert_int_equal(w.accepted, DL_CONNS);
  assert_int_equal(w.closed, DL_CONNS);
  assert_int_equal(w.early, 0);
  assert_int_equal(w.out_of_order, 0);
  for (int i = 0; i < DL_CONNS; i++) assert_int_equal(w.server[i].expired, w.server[i].steps);

  uv_close((uv_handle_t *)&guard, NULL);
  rs_io_loop_free(w.io);
  uv_run(&w.loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&w.loop), 0);
}

static void test_plain_small(void **state) {
  (void)state;
  run_echo(false, 100);
}

static void test_plain_large(void **state) {
  (void)state;
  run_echo(false, 8 * 1024 * 1024); /* forces partial writes and async completion */
}

static void test_tls_small(void **state) {
  (void)state;
  run_echo(true, 100);
}

static void test_tls_large(void **state) {
  (void)state;
  run_echo(true, 4 * 1024 * 1024);
}

static void test_listen_errors(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_tcp_t a, b;
  char err[128];
  assert_int_equal(rs_io_listen(&loop, "127.0.0.1", 0, false, 8, &a, on_conn, err, sizeof err), 0);
  int port = rs_io_bound_port(&a);
  /* Same port without SO_REUSEPORT: address in use, with a message naming it. */
  assert_int_equal(rs_io_listen(&loop, "127.0.0.1", port, false, 8, &b, on_conn, err, sizeof err),
                   RS_ERR_IO);
  assert_non_null(strstr(err, "in use"));
  assert_int_equal(
      rs_io_listen(&loop, "no.such.host.invalid", 1, false, 8, &b, on_conn, err, sizeof err),
      RS_ERR_IO);
  uv_close((uv_handle_t *)&a, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_reuseport_allows_two_listeners(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_tcp_t a, b;
  char err[128];
  assert_int_equal(rs_io_listen(&loop, "127.0.0.1", 0, true, 8, &a, on_conn, err, sizeof err), 0);
  int port = rs_io_bound_port(&a);
  assert_int_equal(rs_io_listen(&loop, "127.0.0.1", port, true, 8, &b, on_conn, err, sizeof err),
                   0);
  assert_int_equal(rs_io_bound_port(&b), port);
  uv_close((uv_handle_t *)&a, NULL);
  uv_close((uv_handle_t *)&b, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain_small),
      cmocka_unit_test(test_plain_large),
      cmocka_unit_test(test_tls_small),
      cmocka_unit_test(test_tls_large),
      cmocka_unit_test(test_listen_errors),
      cmocka_unit_test(test_reuseport_allows_two_listeners),
      cmocka_unit_test(test_flush_stall_many_small_chunks_drain_without_events),
      cmocka_unit_test(test_deadlines_of_many_connections_on_one_timer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
