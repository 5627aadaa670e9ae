/* WebSocket connection: message assembly, control frames, UTF-8, limits, close handshake, fed in
 * 1-byte, 7-byte and random chunks. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsocket/ws.h"

typedef struct events {
  char log[4096];
  size_t n;
  unsigned close_code;
  bool close_remote;
  int closes;
} events;

static void logf_(events *e, const char *s, size_t len) {
  if (e->n + len + 2 < sizeof e->log) {
    memcpy(e->log + e->n, s, len);
    e->n += len;
    e->log[e->n++] = '|';
    e->log[e->n] = '\0';
  }
}

static void on_message(rs_ws_conn *c, int op, const uint8_t *d, size_t len, void *user) {
  (void)c;
  char buf[600];
  int n = snprintf(buf, sizeof buf, "%s:%.*s", op == RS_WS_OP_TEXT ? "T" : "B",
                   (int)(len > 500 ? 500 : len), (const char *)d);
  logf_(user, buf, (size_t)n);
}

static void on_ping(rs_ws_conn *c, const uint8_t *d, size_t len, void *user) {
  (void)c;
  char buf[200];
  int n = snprintf(buf, sizeof buf, "ping:%.*s", (int)len, (const char *)d);
  logf_(user, buf, (size_t)n);
}

static void on_close(rs_ws_conn *c, unsigned code, rs_bytes reason, bool remote, void *user) {
  (void)c, (void)reason;
  events *e = user;
  e->close_code = code;
  e->close_remote = remote;
  e->closes++;
}

static const rs_ws_callbacks cbs = {on_message, on_ping, on_close};

/* Appends one masked client frame to buf. */
static size_t frame(uint8_t *buf, bool fin, int op, const char *payload, size_t len) {
  static const uint8_t key[4] = {0xA1, 0xB2, 0xC3, 0xD4};
  size_t hl = rs_ws_frame_header_write(buf, fin, (uint8_t)op, false, key, len);
  memcpy(buf + hl, payload, len);
  rs_ws_mask(buf + hl, len, key, 0);
  return hl + len;
}

/* A fresh server connection logging to `e`. */
static rs_ws_conn *new_server(events *e) {
  memset(e, 0, sizeof *e);
  rs_ws_options o = {.server = true};
  rs_ws_conn *c = rs_ws_conn_new(&o, &cbs, e, NULL);
  assert_non_null(c);
  return c;
}

/* Feeds `in` to a fresh server connection in chunks of `chunk` (0 = random); returns it. */
static rs_ws_conn *feed(const uint8_t *in, size_t len, size_t chunk, events *e, size_t max_msg) {
  memset(e, 0, sizeof *e);
  rs_ws_options o = {.server = true, .max_message = max_msg};
  rs_ws_conn *c = rs_ws_conn_new(&o, &cbs, e, NULL);
  assert_non_null(c);
  uint64_t seed = 77;
  size_t off = 0;
  while (off < len) {
    size_t n = chunk ? chunk : 1 + tu_rand(&seed) % 13;
    if (n > len - off) n = len - off;
    assert_int_equal(rs_ws_conn_recv(c, in + off, n, 0), 0);
    off += n;
  }
  return c;
}

static void all_chunkings(const uint8_t *in, size_t len, size_t max_msg, const char *want_log,
                          unsigned want_close) {
  const size_t chunks[] = {1, 7, 0, 100000};
  for (size_t i = 0; i < 4; i++) {
    events e;
    rs_ws_conn *c = feed(in, len, chunks[i], &e, max_msg);
    if (strcmp(e.log, want_log) != 0)
      fail_msg("chunk %zu: log '%s', want '%s'", chunks[i], e.log, want_log);
    assert_int_equal(e.close_code, want_close);
    rs_ws_conn_free(c);
  }
}

static void test_fragmented_with_ping(void **state) {
  (void)state;
  uint8_t in[512];
  size_t n = 0;
  n += frame(in + n, false, RS_WS_OP_TEXT, "Hel", 3);
  n += frame(in + n, true, RS_WS_OP_PING, "p1", 2); /* between fragments */
  n += frame(in + n, false, RS_WS_OP_CONTINUATION, "lo ", 3);
  n += frame(in + n, true, RS_WS_OP_CONTINUATION, "world", 5);
  n += frame(in + n, true, RS_WS_OP_BINARY, "bin", 3);
  n += frame(in + n, true, RS_WS_OP_PONG, "x", 1); /* unsolicited pong: ignored */
  n += frame(in + n, true, RS_WS_OP_TEXT, "", 0);
  all_chunkings(in, n, 0, "ping:p1|T:Hello world|B:bin|T:|", 0);
  /* The pong went out, unmasked (server role), with the ping's payload. */
  events e;
  rs_ws_conn *c = feed(in, n, 0, &e, 0);
  rs_bytes out;
  assert_int_equal(rs_ws_conn_pending(c, &out), 1);
  tu_assert_hex(out.ptr, out.len, "8A 02 70 31");
  rs_ws_conn_free(c);
}

static void test_utf8_fails_fast(void **state) {
  (void)state;
  uint8_t in[256];
  size_t n = 0;
  n += frame(in + n, false, RS_WS_OP_TEXT, "ok \xce\xba", 5);
  n += frame(in + n, false, RS_WS_OP_CONTINUATION, "\xed\xa0\x80", 3); /* a surrogate */
  size_t cut = n;
  n += frame(in + n, true, RS_WS_OP_CONTINUATION, "end", 3);
  /* The failure comes with the bad fragment, before the message would end. */
  events e;
  rs_ws_conn *c = feed(in, cut, 1, &e, 0);
  assert_int_equal(e.close_code, RS_WS_CLOSE_INVALID_DATA);
  assert_true(rs_ws_conn_want_close(c) == false); /* the close frame waits to be written */
  rs_bytes out;
  assert_int_equal(rs_ws_conn_pending(c, &out), 1);
  assert_int_equal(out.ptr[0], 0x88);
  assert_int_equal(out.ptr[2] << 8 | out.ptr[3], 1007);
  rs_ws_conn_consumed(c, out.len);
  assert_true(rs_ws_conn_want_close(c));
  rs_ws_conn_free(c);
  all_chunkings(in, n, 0, "", RS_WS_CLOSE_INVALID_DATA);
  /* Truncated at the end of a message. */
  n = frame(in, true, RS_WS_OP_TEXT, "ab\xe2\x82", 4);
  all_chunkings(in, n, 0, "", RS_WS_CLOSE_INVALID_DATA);
}

static void test_protocol_errors(void **state) {
  (void)state;
  uint8_t in[256];
  size_t n;
  /* Unmasked frame from a client. */
  in[0] = 0x82, in[1] = 0x01, in[2] = 'x';
  all_chunkings(in, 3, 0, "", RS_WS_CLOSE_PROTOCOL);
  /* Continuation without a message. */
  n = frame(in, true, RS_WS_OP_CONTINUATION, "x", 1);
  all_chunkings(in, n, 0, "", RS_WS_CLOSE_PROTOCOL);
  /* Reserved opcode. */
  n = frame(in, true, 3, "x", 1);
  all_chunkings(in, n, 0, "", RS_WS_CLOSE_PROTOCOL);
  /* Close with a 1-byte payload, and with an invalid code. */
  n = frame(in, true, RS_WS_OP_CLOSE, "\x03", 1);
  all_chunkings(in, n, 0, "", RS_WS_CLOSE_PROTOCOL);
  n = frame(in, true, RS_WS_OP_CLOSE, "\x03\xed", 2); /* 1005 */
  all_chunkings(in, n, 0, "", RS_WS_CLOSE_PROTOCOL);
  /* Over the message limit, across fragments. */
  n = frame(in, false, RS_WS_OP_BINARY, "0123456789", 10);
  n += frame(in + n, true, RS_WS_OP_CONTINUATION, "0123456789", 10);
  all_chunkings(in, n, 15, "", RS_WS_CLOSE_TOO_BIG);
  all_chunkings(in, n, 20, "B:01234567890123456789|", 0);
}

static void test_close_handshake(void **state) {
  (void)state;
  /* Peer closes with 1001 "bye": we echo 1001, then want to close once written. */
  uint8_t in[64];
  size_t n = frame(in, true, RS_WS_OP_CLOSE,
                   "\x03\xe9"
                   "bye",
                   5);
  n += frame(in + n, true, RS_WS_OP_TEXT, "late", 4); /* after close: ignored */
  events e;
  rs_ws_conn *c = feed(in, n, 0, &e, 0);
  assert_int_equal(e.close_code, 1001);
  assert_true(e.close_remote);
  assert_string_equal(e.log, "");
  rs_bytes out;
  assert_int_equal(rs_ws_conn_pending(c, &out), 1);
  tu_assert_hex(out.ptr, out.len, "88 02 03 E9");
  assert_false(rs_ws_conn_want_close(c));
  rs_ws_conn_consumed(c, out.len);
  assert_true(rs_ws_conn_want_close(c));
  assert_int_equal(rs_ws_conn_send(c, RS_WS_OP_TEXT, (const uint8_t *)"x", 1), RS_ERR_CLOSED);
  rs_ws_conn_free(c);

  /* We close first: wait for the peer's close, or give up at the timeout. */
  rs_ws_options o = {.server = true, .close_timeout_ms = 100};
  c = rs_ws_conn_new(&o, &cbs, &e, NULL);
  assert_int_equal(rs_ws_conn_close(c, 1000, "done", 50), 0);
  assert_int_equal(rs_ws_conn_pending(c, &out), 1);
  tu_assert_hex(out.ptr, out.len, "88 06 03 E8 64 6F 6E 65");
  rs_ws_conn_consumed(c, out.len);
  assert_false(rs_ws_conn_want_close(c));
  assert_int_equal(rs_ws_conn_next_deadline(c), 150);
  rs_ws_conn_handle_expiry(c, 149);
  assert_false(rs_ws_conn_want_close(c));
  rs_ws_conn_handle_expiry(c, 150);
  assert_true(rs_ws_conn_want_close(c));
  rs_ws_conn_free(c);
  /* ... and when the peer's close comes back, done. */
  c = rs_ws_conn_new(&o, &cbs, &e, NULL);
  rs_ws_conn_close(c, 1000, NULL, 0);
  rs_ws_conn_pending(c, &out);
  rs_ws_conn_consumed(c, out.len);
  n = frame(in, true, RS_WS_OP_CLOSE, "\x03\xe8", 2);
  assert_int_equal(rs_ws_conn_recv(c, in, n, 10), 0);
  assert_true(rs_ws_conn_want_close(c));
  rs_ws_conn_free(c);
}

/* Regression: a client that closed first lost the replies the server sent before its own close
 * (ws-client printed nothing of an echo when it closed at the end of its input). */
static void test_messages_after_our_close_are_delivered(void **state) {
  (void)state;
  events e;
  rs_ws_conn *c = new_server(&e);
  assert_int_equal(rs_ws_conn_close(c, 1000, NULL, 0), 0);
  uint8_t in[64];
  size_t n = frame(in, true, RS_WS_OP_TEXT, "late", 4);
  n += frame(in + n, true, RS_WS_OP_CLOSE, "\x03\xe8", 2);
  n += frame(in + n, true, RS_WS_OP_TEXT, "after", 5); /* after the peer's close: ignored */
  for (size_t i = 0; i < n; i++) assert_int_equal(rs_ws_conn_recv(c, in + i, 1, 0), 0);
  assert_string_equal(e.log, "T:late|");
  assert_int_equal(e.close_code, 1000);
  assert_true(e.close_remote);
  assert_int_equal(rs_ws_conn_send(c, RS_WS_OP_TEXT, (const uint8_t *)"x", 1), RS_ERR_CLOSED);
  rs_ws_conn_free(c);
}

static void test_client_masks(void **state) {
  (void)state;
  events e;
  memset(&e, 0, sizeof e);
  rs_ws_options o = {.server = false};
  rs_ws_conn *c = rs_ws_conn_new(&o, &cbs, &e, NULL);
  assert_int_equal(rs_ws_conn_send(c, RS_WS_OP_BINARY, (const uint8_t *)"hello", 5), 0);
  rs_bytes out;
  assert_int_equal(rs_ws_conn_pending(c, &out), 1);
  rs_ws_frame_header h;
  assert_int_equal(rs_ws_frame_header_parse(&h, out.ptr, out.len), 6);
  assert_true(h.masked);
  uint8_t p[5];
  memcpy(p, out.ptr + 6, 5);
  rs_ws_mask(p, 5, h.mask, 0);
  assert_memory_equal(p, "hello", 5);
  /* A server frame that is masked is refused by a client. */
  uint8_t in[16];
  size_t n = frame(in, true, RS_WS_OP_TEXT, "x", 1);
  assert_int_equal(rs_ws_conn_recv(c, in, n, 0), 0);
  assert_int_equal(e.close_code, RS_WS_CLOSE_PROTOCOL);
  rs_ws_conn_free(c);
}

static void test_large_message_and_alloc_failures(void **state) {
  (void)state;
  size_t big = 300000;
  char *payload = malloc(big);
  for (size_t i = 0; i < big; i++) payload[i] = (char)('a' + i % 26);
  uint8_t *in = malloc(big + 64);
  size_t n = frame(in, true, RS_WS_OP_TEXT, payload, big);
  events e;
  rs_ws_conn *c = feed(in, n, 0, &e, 0);
  assert_int_equal(e.n, 503); /* "T:" + 500 logged bytes + "|" */
  rs_ws_conn_free(c);
  /* Allocation failures anywhere give RS_ERR_NOMEM and no leak. */
  for (long k = 1; k < 12; k++) {
    tu_alloc a;
    tu_alloc_init(&a, k);
    rs_ws_options o = {.server = true};
    rs_ws_conn *d = rs_ws_conn_new(&o, &cbs, &e, &a.mem);
    if (d) {
      int rc = rs_ws_conn_recv(d, in, n, 0);
      assert_true(rc == 0 || rc == RS_ERR_NOMEM);
      rs_ws_conn_free(d);
    }
    assert_int_equal(a.live, 0);
  }
  free(in);
  free(payload);
}

/* Output drains: everything pending() hands out, `step` bytes at a time, into `dst`. */
static size_t drain(rs_ws_conn *c, uint8_t *dst, size_t cap, size_t step) {
  size_t got = 0;
  rs_bytes out;
  while (rs_ws_conn_pending(c, &out) && out.len > 0) {
    size_t n = out.len < step ? out.len : step;
    assert_true(got + n <= cap);
    memcpy(dst + got, out.ptr, n);
    got += n;
    rs_ws_conn_consumed(c, n);
  }
  return got;
}

/* A pong does not wait behind queued messages: it goes out right after the frame being written
 * (never inside it), then the remaining messages follow in order. */
static void test_pong_jumps_queued_messages(void **state) {
  (void)state;
  events e;
  rs_ws_conn *c = new_server(&e);
  static uint8_t msg[3][3000];
  for (int i = 0; i < 3; i++) {
    memset(msg[i], 'a' + i, sizeof msg[i]);
    assert_int_equal(rs_ws_conn_send(c, RS_WS_OP_BINARY, msg[i], sizeof msg[i]), 0);
  }
  /* 1,000 bytes of the first message are written, then a ping arrives. */
  rs_bytes out;
  assert_int_equal(rs_ws_conn_pending(c, &out), 1);
  rs_ws_conn_consumed(c, 1000);
  uint8_t ping[16];
  size_t pl = frame(ping, true, RS_WS_OP_PING, "hi", 2);
  assert_int_equal(rs_ws_conn_recv(c, ping, pl, 0), 0);
  static uint8_t wire[10000];
  size_t n = drain(c, wire, sizeof wire, 700); /* odd steps: partial writes everywhere */
  /* rest of message 0 (4-byte header + 3000 - 1000 already written), pong, messages 1 and 2 */
  size_t first_rest = 4 + 3000 - 1000;
  assert_int_equal(n, first_rest + 4 + 2 * (4 + 3000));
  assert_int_equal(wire[first_rest - 1], 'a');
  assert_int_equal(wire[first_rest], 0x8A); /* FIN | PONG */
  assert_int_equal(wire[first_rest + 1], 2);
  assert_memory_equal(wire + first_rest + 2, "hi", 2);
  assert_int_equal(wire[first_rest + 4], 0x82); /* FIN | BINARY: message 1 */
  assert_int_equal(wire[first_rest + 4 + 4], 'b');
  assert_int_equal(wire[n - 1], 'c');
  assert_int_equal(rs_ws_conn_queued(c), 0);
  /* A close stays behind the data queued before it. */
  assert_int_equal(rs_ws_conn_send(c, RS_WS_OP_TEXT, (const uint8_t *)"last", 4), 0);
  assert_int_equal(rs_ws_conn_close(c, 1000, NULL, 0), 0);
  n = drain(c, wire, sizeof wire, 3);
  assert_int_equal(n, 6 + 4);
  assert_int_equal(wire[0], 0x81);
  assert_int_equal(wire[6], 0x88);
  rs_ws_conn_free(c);
}

/* Output queues exist only while they hold bytes (an idle server keeps no 4 KiB buffer per
 * client after its first message): once written, a queue is gone, and a consumed(0) that follows
 * (a caller that writes nothing and says so) finds nothing to do. Then it all works again. */
static void test_written_queues_are_freed(void **state) {
  (void)state;
  events e;
  rs_ws_conn *c = new_server(&e);
  for (int round = 0; round < 3; round++) {
    uint8_t ping[16];
    size_t pl = frame(ping, true, RS_WS_OP_PING, "hi", 2);
    assert_int_equal(rs_ws_conn_recv(c, ping, pl, 0), 0);
    rs_bytes out;
    assert_int_equal(rs_ws_conn_pending(c, &out), 1); /* the pong, from the control queue */
    assert_int_equal(out.len, 4);
    rs_ws_conn_consumed(c, out.len);
    rs_ws_conn_consumed(c, 0);
    assert_int_equal(rs_ws_conn_pending(c, &out), 0);
    assert_int_equal(rs_ws_conn_send(c, RS_WS_OP_TEXT, (const uint8_t *)"hello", 5), 0);
    assert_int_equal(rs_ws_conn_pending(c, &out), 1); /* the message, from the data queue */
    assert_int_equal(out.len, 7);
    rs_ws_conn_consumed(c, 3);
    assert_int_equal(rs_ws_conn_queued(c), 4);
    rs_ws_conn_consumed(c, 4);
    rs_ws_conn_consumed(c, 0);
    assert_int_equal(rs_ws_conn_queued(c), 0);
    assert_int_equal(rs_ws_conn_pending(c, &out), 0);
  }
  assert_int_equal(rs_ws_conn_close(c, 1000, NULL, 0), 0);
  rs_bytes out;
  assert_int_equal(rs_ws_conn_pending(c, &out), 1);
  rs_ws_conn_consumed(c, out.len);
  assert_int_equal(rs_ws_conn_queued(c), 0);
  rs_ws_conn_free(c);
}

/* An empty message is delivered with a valid pointer, not NULL, although no assembly buffer is
 * kept between messages any more (ws-client's fwrite of it failed UBSan's nonnull check). */
static void on_message_ptr(rs_ws_conn *c, int op, const uint8_t *d, size_t len, void *user) {
  (void)c, (void)op;
  *(int *)user += d != NULL && len == 0 ? 1 : 100;
}

static void test_empty_message_has_a_pointer(void **state) {
  (void)state;
  static const rs_ws_callbacks cb = {on_message_ptr, NULL, NULL};
  int got = 0;
  rs_ws_options o = {.server = true};
  rs_ws_conn *c = rs_ws_conn_new(&o, &cb, &got, NULL);
  assert_non_null(c);
  uint8_t in[32];
  size_t n = frame(in, true, RS_WS_OP_TEXT, "", 0);
  n += frame(in + n, true, RS_WS_OP_BINARY, "", 0);
  assert_int_equal(rs_ws_conn_recv(c, in, n, 0), 0);
  assert_int_equal(got, 2);
  rs_ws_conn_free(c);
}

/* Between frames an idle connection keeps nothing but itself; a frame or a fragmented message
 * cut between reads keeps what it has read until the rest arrives. */
static void test_idle_between_frames_keeps_no_reading_state(void **state) {
  (void)state;
  events e;
  memset(&e, 0, sizeof e);
  tu_alloc a;
  tu_alloc_init(&a, 0);
  rs_ws_options o = {.server = true};
  rs_ws_conn *c = rs_ws_conn_new(&o, &cbs, &e, &a.mem);
  assert_non_null(c);
  long base = a.live;
  uint8_t in[256];
  size_t n = frame(in, true, RS_WS_OP_TEXT, "one", 3);
  n += frame(in + n, true, RS_WS_OP_PING, "p", 1);
  assert_int_equal(rs_ws_conn_recv(c, in, n, 0), 0);
  assert_int_equal(a.live, base + 1); /* the pong queued, nothing being read */
  rs_bytes out;
  assert_int_equal(rs_ws_conn_pending(c, &out), 1);
  rs_ws_conn_consumed(c, out.len);
  assert_int_equal(a.live, base);
  /* A fragmented message whose first frame and half a header come in one read. */
  n = frame(in, false, RS_WS_OP_TEXT, "two ", 4);
  size_t second = frame(in + n, true, RS_WS_OP_CONTINUATION, "halves", 6);
  assert_int_equal(rs_ws_conn_recv(c, in, n + 3, 0), 0);
  assert_true(a.live > base);
  assert_int_equal(rs_ws_conn_recv(c, in + n + 3, second - 3, 0), 0);
  assert_int_equal(a.live, base);
  assert_string_equal(e.log, "T:one|ping:p|T:two halves|");
  rs_ws_conn_free(c);
  assert_int_equal(a.live, 0);
}

/* Regression (issue 13): a PING flood against a peer that does not read queued one pong per
 * ping (1.47 GB in 2.7 s). Past 16 KiB of unwritten control frames only the latest pong is kept
 * (RFC 6455 5.5.3); below it every ping is answered (ten pings, ten pongs); a pong already
 * being written stays. */
static void test_ping_flood_bounded_pongs(void **state) {
  (void)state;
  events e;
  rs_ws_conn *c = new_server(&e);
  uint8_t ping[200];
  char payload[125];
  for (int i = 0; i < 100000; i++) {
    int len = snprintf(payload, sizeof payload, "ping %d %0100d", i, 0);
    size_t pl = frame(ping, true, RS_WS_OP_PING, payload, (size_t)len);
    assert_int_equal(rs_ws_conn_recv(c, ping, pl, 0), 0);
  }
  size_t one = 2 + strlen(payload);
  size_t q = rs_ws_conn_queued(c);
  assert_true(q > 16384 && q <= 16384 + one);
  /* Everything written: the queue is empty; ten pings now get ten pongs, in order. */
  static uint8_t wire[32768];
  assert_int_equal(drain(c, wire, sizeof wire, 4096), q);
  assert_memory_equal(wire + q - one + 2, "ping 99999 ", 11); /* the last is the latest */
  for (int i = 0; i < 10; i++) {
    char p1[2] = {(char)('0' + i), 0};
    size_t pl = frame(ping, true, RS_WS_OP_PING, p1, 1);
    assert_int_equal(rs_ws_conn_recv(c, ping, pl, 0), 0);
  }
  size_t n = drain(c, wire, sizeof wire, 7);
  assert_int_equal(n, 10 * 3);
  for (int i = 0; i < 10; i++) {
    assert_int_equal(wire[3 * i], 0x8A);
    assert_int_equal(wire[3 * i + 2], '0' + i);
  }
  rs_ws_conn_free(c);
}

/* A fixed random source: counts up from *user. */
static int counting_random(uint8_t *buf, size_t len, void *user) {
  uint8_t *next = user;
  for (size_t i = 0; i < len; i++) buf[i] = (*next)++;
  return 0;
}

static int failing_random(uint8_t *buf, size_t len, void *user) {
  (void)buf, (void)len, (void)user;
  return -1;
}

/* Everything a client writes, upgrade request included, with a fixed random source: a text
 * message, a binary message (compressed with `deflate`), a ping and a close. */
static size_t client_output(uint8_t *dst, size_t cap, bool deflate) {
  uint8_t next = 0x10;
  char key[25];
  assert_int_equal(rs_ws_client_key_random(key, counting_random, &next), 0);
  rs_ssize n = rs_ws_client_request((char *)dst, cap, "example.com", "/chat", key, NULL, deflate);
  assert_true(n > 0);
  rs_ws_options o = {.server = false, .random = counting_random, .random_user = &next};
  o.deflate = (rs_ws_deflate){deflate, false, false, 15, 15};
  rs_ws_conn *c = rs_ws_conn_new(&o, &cbs, NULL, NULL);
  assert_non_null(c);
  static uint8_t bin[2000];
  memset(bin, 'b', sizeof bin);
  assert_int_equal(rs_ws_conn_send(c, RS_WS_OP_TEXT, (const uint8_t *)"hello", 5), 0);
  assert_int_equal(rs_ws_conn_send(c, RS_WS_OP_BINARY, bin, sizeof bin), 0);
  assert_int_equal(rs_ws_conn_send(c, RS_WS_OP_PING, (const uint8_t *)"p", 1), 0);
  assert_int_equal(rs_ws_conn_close(c, RS_WS_CLOSE_NORMAL, "bye", 0), 0);
  size_t len = (size_t)n + drain(c, dst + n, cap - (size_t)n, 100000);
  rs_ws_conn_free(c);
  return len;
}

/* With the same random source a client writes the same bytes, its key and masks taken in order
 * from the source. */
static void test_client_output_reproducible(void **state) {
  (void)state;
  static uint8_t a[8192], b[8192];
  for (int deflate = 0; deflate < 2; deflate++) {
    size_t na = client_output(a, sizeof a, deflate), nb = client_output(b, sizeof b, deflate);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
  }
  /* Plain: the key is base64 of bytes 10..1F; the frames take the next 4 bytes each in the
   * order they were queued (text 20..23, binary 24..27, ping 28..2B), and the ping goes out
   * first (control frames do not wait behind messages). */
  size_t n = client_output(a, sizeof a, false);
  const char *head_end = strstr((const char *)a, "\r\n\r\n");
  assert_non_null(head_end);
  assert_non_null(strstr((const char *)a, "Sec-WebSocket-Key: EBESExQVFhcYGRobHB0eHw==\r\n"));
  const uint8_t *f = (const uint8_t *)head_end + 4;
  tu_assert_hex(f, 7, "89 81 28 29 2A 2B | 58"); /* 'p' ^ 0x28 */
  f += 7;
  uint8_t hello[5] = {'h' ^ 0x20, 'e' ^ 0x21, 'l' ^ 0x22, 'l' ^ 0x23, 'o' ^ 0x20};
  tu_assert_hex(f, 6, "81 85 20 21 22 23");
  assert_memory_equal(f + 6, hello, 5);
  tu_assert_hex(f + 11, 8, "82 FE 07 D0 24 25 26 27");
  assert_true(n > (size_t)(f - a) + 11 + 8 + 2000);
  /* A source that fails: no key, and the first masked frame fails the connection for good. */
  char key[25];
  assert_int_equal(rs_ws_client_key_random(key, failing_random, NULL), RS_ERR_INTERNAL);
  rs_ws_options o = {.server = false, .random = failing_random};
  rs_ws_conn *c = rs_ws_conn_new(&o, &cbs, NULL, NULL);
  assert_int_equal(rs_ws_conn_send(c, RS_WS_OP_TEXT, (const uint8_t *)"x", 1), RS_ERR_INTERNAL);
  assert_int_equal(rs_ws_conn_send(c, RS_WS_OP_TEXT, (const uint8_t *)"x", 1), RS_ERR_INTERNAL);
  assert_true(rs_ws_conn_want_close(c));
  rs_ws_conn_free(c);
  /* A server never asks for randomness. */
  o.server = true;
  c = rs_ws_conn_new(&o, &cbs, NULL, NULL);
  assert_int_equal(rs_ws_conn_send(c, RS_WS_OP_TEXT, (const uint8_t *)"x", 1), 0);
  rs_ws_conn_free(c);
}

static void echo_message(rs_ws_conn *c, int op, const uint8_t *d, size_t len, void *user) {
  int *rc = user;
  *rc = rs_ws_conn_send(c, op, d, len);
}

/* A fatal error met by a call made from a callback is also the error of the rs_ws_conn_recv that
 * called it, even when the message was the last of the input. */
static void test_fatal_error_in_callback_returned_by_recv(void **state) {
  (void)state;
  static const rs_ws_callbacks echo = {echo_message, NULL, NULL};
  uint8_t in[16];
  size_t n = frame(in, true, RS_WS_OP_TEXT, "hi", 2);
  for (long k = 0; k < 4; k++) {
    tu_alloc a;
    tu_alloc_init(&a, k); /* 1: connection, 2: message buffer, 3: output (in the callback) */
    int send_rc = 1;
    rs_ws_options o = {.server = true};
    rs_ws_conn *c = rs_ws_conn_new(&o, &echo, &send_rc, &a.mem);
    if (k == 1) {
      assert_null(c);
      continue;
    }
    int rc = rs_ws_conn_recv(c, in, n, 0);
    if (k == 0) {
      assert_int_equal(rc, 0);
      assert_int_equal(send_rc, 0);
      assert_int_equal(a.count, 3);
    } else {
      assert_int_equal(rc, RS_ERR_NOMEM);
      assert_int_equal(send_rc, k == 3 ? RS_ERR_NOMEM : 1);
      assert_int_equal(rs_ws_conn_recv(c, in, n, 0), RS_ERR_NOMEM);
      assert_true(rs_ws_conn_want_close(c));
    }
    rs_ws_conn_free(c);
    assert_int_equal(a.live, 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fragmented_with_ping),
      cmocka_unit_test(test_ping_flood_bounded_pongs),
      cmocka_unit_test(test_utf8_fails_fast),
      cmocka_unit_test(test_protocol_errors),
      cmocka_unit_test(test_close_handshake),
      cmocka_unit_test(test_messages_after_our_close_are_delivered),
      cmocka_unit_test(test_client_masks),
      cmocka_unit_test(test_large_message_and_alloc_failures),
      cmocka_unit_test(test_pong_jumps_queued_messages),
      cmocka_unit_test(test_written_queues_are_freed),
      cmocka_unit_test(test_empty_message_has_a_pointer),
      cmocka_unit_test(test_idle_between_frames_keeps_no_reading_state),
      cmocka_unit_test(test_client_output_reproducible),
      cmocka_unit_test(test_fatal_error_in_callback_returned_by_recv),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
