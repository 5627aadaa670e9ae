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
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
