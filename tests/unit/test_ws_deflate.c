/* permessage-deflate: negotiation, round trip between two connections, compression bombs. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "rsocket/ws.h"

static void accept_(const char *offer, const char *want_resp) {
  rs_ws_deflate d;
  char resp[200];
  bool ok = rs_ws_deflate_negotiate(rs_bytes_str(offer), &d, resp, sizeof resp);
  if (!want_resp) {
    if (ok) fail_msg("'%s' accepted as '%s'", offer, resp);
    return;
  }
  if (!ok || strcmp(resp, want_resp) != 0) fail_msg("'%s': got %s", offer, ok ? resp : "declined");
  assert_true(d.enabled);
}

static void test_negotiation(void **state) {
  (void)state;
  accept_("permessage-deflate", "permessage-deflate");
  accept_("permessage-deflate; client_max_window_bits", "permessage-deflate");
  accept_("permessage-deflate; client_max_window_bits=10",
          "permessage-deflate; client_max_window_bits=10");
  accept_("permessage-deflate; server_no_context_takeover; client_no_context_takeover",
          "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
  accept_("permessage-deflate; server_max_window_bits=12",
          "permessage-deflate; server_max_window_bits=12");
  accept_("x-webkit-deflate-frame, permessage-deflate", "permessage-deflate");
  /* Declined: unknown or repeated parameters, bad values, window 8 for our compressor. */
  accept_("permessage-deflate; foo", NULL);
  accept_("permessage-deflate; server_no_context_takeover; server_no_context_takeover", NULL);
  accept_("permessage-deflate; server_max_window_bits=16", NULL);
  accept_("permessage-deflate; server_max_window_bits", NULL);
  accept_("permessage-deflate; server_max_window_bits=8", NULL);
  accept_("permessage-deflate; server_no_context_takeover=1", NULL);
  accept_("", NULL);
  /* A bad first offer falls back to the next one. */
  accept_("permessage-deflate; bogus, permessage-deflate; client_no_context_takeover",
          "permessage-deflate; client_no_context_takeover");
  rs_ws_deflate d;
  assert_int_equal(rs_ws_deflate_client_accept(
                       rs_bytes_str("permessage-deflate; server_no_context_takeover"), &d),
                   0);
  assert_true(d.enabled && d.server_no_context_takeover);
  assert_int_equal(rs_ws_deflate_client_accept(rs_bytes_str("permessage-deflate; nope"), &d),
                   RS_ERR_REJECTED);
  assert_int_equal(rs_ws_deflate_client_accept(rs_bytes_str(""), &d), 0);
  assert_false(d.enabled);
}

typedef struct got {
  uint8_t *data;
  size_t len;
  int n;
  unsigned close;
} got;

static void on_msg(rs_ws_conn *c, int op, const uint8_t *d, size_t len, void *user) {
  (void)c, (void)op;
  got *g = user;
  free(g->data);
  g->data = malloc(len + 1);
  if (len) memcpy(g->data, d, len);
  g->len = len;
  g->n++;
}

static void on_close(rs_ws_conn *c, unsigned code, rs_bytes r, bool remote, void *user) {
  (void)c, (void)r, (void)remote;
  ((got *)user)->close = code;
}

static const rs_ws_callbacks cbs = {on_msg, NULL, on_close};

static void pump(rs_ws_conn *from, rs_ws_conn *to) {
  rs_bytes out;
  while (rs_ws_conn_pending(from, &out)) {
    assert_int_equal(rs_ws_conn_recv(to, out.ptr, out.len, 0), 0);
    rs_ws_conn_consumed(from, out.len);
  }
}

static void roundtrip(bool no_takeover) {
  rs_ws_deflate d = {true, no_takeover, no_takeover, 15, 15};
  got gs = {0}, gc = {0};
  rs_ws_options so = {.server = true, .deflate = d}, co = {.server = false, .deflate = d};
  rs_ws_conn *s = rs_ws_conn_new(&so, &cbs, &gs, NULL), *c = rs_ws_conn_new(&co, &cbs, &gc, NULL);
  char text[5000];
  for (int i = 0; i < 3; i++) {
    for (size_t k = 0; k < sizeof text; k++) text[k] = "abcabcabd"[k % 9];
    assert_int_equal(rs_ws_conn_send(c, RS_WS_OP_TEXT, (const uint8_t *)text, sizeof text), 0);
    rs_bytes out;
    assert_int_equal(rs_ws_conn_pending(c, &out), 1);
    assert_true(out.len < 200);     /* compressed */
    assert_true(out.ptr[0] & 0x40); /* RSV1 */
    pump(c, s);
    assert_int_equal(gs.n, i + 1);
    assert_int_equal(gs.len, sizeof text);
    assert_memory_equal(gs.data, text, sizeof text);
    assert_int_equal(rs_ws_conn_send(s, RS_WS_OP_BINARY, gs.data, gs.len), 0);
    pump(s, c);
    assert_memory_equal(gc.data, text, sizeof text);
  }
  free(gs.data), free(gc.data);
  rs_ws_conn_free(s);
  rs_ws_conn_free(c);
}

static void test_roundtrip(void **state) {
  (void)state;
  roundtrip(false);
  roundtrip(true);
}

static void test_bomb(void **state) {
  (void)state;
  /* 10 MB of zeros compress to about 10 KB; a server limited to 100 KB stops inflating and
   * closes with 1009. */
  rs_ws_deflate d = {true, false, false, 15, 15};
  got gs = {0}, gc = {0};
  rs_ws_options so = {.server = true, .deflate = d, .max_message = 100000};
  rs_ws_options co = {.server = false, .deflate = d};
  rs_ws_conn *s = rs_ws_conn_new(&so, &cbs, &gs, NULL), *c = rs_ws_conn_new(&co, &cbs, &gc, NULL);
  size_t big = 10u << 20;
  uint8_t *zeros = calloc(1, big);
  assert_int_equal(rs_ws_conn_send(c, RS_WS_OP_BINARY, zeros, big), 0);
  rs_bytes out;
  rs_ws_conn_pending(c, &out);
  assert_true(out.len < 100000);
  pump(c, s);
  assert_int_equal(gs.n, 0);
  assert_int_equal(gs.close, RS_WS_CLOSE_TOO_BIG);
  /* Garbage that claims to be compressed: 1007. */
  rs_ws_conn *s2 = rs_ws_conn_new(&so, &cbs, &gs, NULL);
  const uint8_t junk[] = {0xC2, 0x84, 1, 2, 3, 4, 0xff ^ 1, 0xff ^ 2, 0xff ^ 3, 0xff ^ 4};
  assert_int_equal(rs_ws_conn_recv(s2, junk, sizeof junk, 0), 0);
  assert_int_equal(gs.close, RS_WS_CLOSE_INVALID_DATA);
  free(zeros);
  rs_ws_conn_free(s);
  rs_ws_conn_free(s2);
  rs_ws_conn_free(c);
}

/* Compresses `len` bytes as one whole raw DEFLATE stream, ending in a block with BFINAL set. */
static size_t deflate_final(const uint8_t *in, size_t len, uint8_t *out, size_t cap) {
  z_stream z;
  memset(&z, 0, sizeof z);
  assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  z.next_in = (Bytef *)(uintptr_t)in;
  z.avail_in = (uInt)len;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
  size_t n = cap - z.avail_out;
  deflateEnd(&z);
  return n;
}

/* A client frame (masked) with RSV1 set. */
static size_t compressed_frame(uint8_t *out, const uint8_t *payload, size_t len) {
  static const uint8_t key[4] = {1, 2, 3, 4};
  size_t hl = rs_ws_frame_header_write(out, true, RS_WS_OP_TEXT, true, key, len);
  memcpy(out + hl, payload, len);
  rs_ws_mask(out + hl, len, key, 0);
  return hl + len;
}

/* RFC 7692 7.2.3.4 lets a sender end a message with a BFINAL block (then start a new stream for
 * the next one); we used to fail such messages with 1007. Bytes after the final block are still
 * invalid. */
static void test_bfinal_message_accepted(void **state) {
  (void)state;
  rs_ws_deflate d = {true, false, false, 15, 15};
  rs_ws_options so = {.server = true, .deflate = d};
  got g = {0};
  rs_ws_conn *s = rs_ws_conn_new(&so, &cbs, &g, NULL);
  uint8_t z[256], f[300];
  const char *texts[2] = {"first first first first", "second, from a new stream"};
  for (int i = 0; i < 2; i++) {
    size_t zn = deflate_final((const uint8_t *)texts[i], strlen(texts[i]), z, sizeof z);
    size_t fn = compressed_frame(f, z, zn);
    assert_int_equal(rs_ws_conn_recv(s, f, fn, 0), 0);
    assert_int_equal(g.close, 0);
    assert_int_equal(g.n, i + 1);
    assert_int_equal(g.len, strlen(texts[i]));
    assert_memory_equal(g.data, texts[i], g.len);
  }
  size_t zn = deflate_final((const uint8_t *)"x", 1, z, sizeof z);
  z[zn++] = 0x00; /* junk after the final block */
  size_t fn = compressed_frame(f, z, zn);
  assert_int_equal(rs_ws_conn_recv(s, f, fn, 0), 0);
  assert_int_equal(g.n, 2);
  assert_int_equal(g.close, RS_WS_CLOSE_INVALID_DATA);
  free(g.data);
  rs_ws_conn_free(s);
}

/* ---- allocation: zlib through the connection's rs_mem, and every failure ---- */

/* One end of a session: its connection, what it received, and the fatal error it met. */
typedef struct side {
  rs_ws_conn *c;
  got g;
  int err;
} side;

/* A call's result: true for 0; a fatal error is recorded (only RS_ERR_NOMEM may happen). */
static bool step(side *x, int rc) {
  if (rc == 0) return true;
  assert_int_equal(rc, RS_ERR_NOMEM);
  x->err = rc;
  return false;
}

/* Moves everything `from` has queued into `to`. False when either met a fatal error. */
static bool flow(side *from, side *to) {
  rs_bytes out;
  while (rs_ws_conn_pending(from->c, &out)) {
    if (!step(to, rs_ws_conn_recv(to->c, out.ptr, out.len, 0))) return false;
    rs_ws_conn_consumed(from->c, out.len);
  }
  return from->err == 0;
}

/* A failed connection stays failed: every call returns its error and nothing goes out. */
static void assert_sticky(side *x) {
  if (!x->c || !x->err) return;
  rs_bytes out;
  assert_int_equal(rs_ws_conn_send(x->c, RS_WS_OP_TEXT, (const uint8_t *)"x", 1), x->err);
  assert_int_equal(rs_ws_conn_recv(x->c, (const uint8_t *)"\x81\x00", 2, 0), x->err);
  assert_int_equal(rs_ws_conn_close(x->c, RS_WS_CLOSE_NORMAL, NULL, 0), x->err);
  assert_int_equal(rs_ws_conn_pending(x->c, &out), 0);
  assert_true(rs_ws_conn_want_close(x->c));
}

/*
 * A deflate session between a server (allocating through `sa`) and a client (`ca`): messages
 * both ways (compressible text, a 100 KB run that inflates in several steps, incompressible
 * bytes, an empty message), a ping, then the close handshake. Returns true when it ran to the
 * end; false when an allocation failed, which must then show as NULL from rs_ws_conn_new or
 * RS_ERR_NOMEM from a call, for good.
 */
static bool deflate_session(tu_alloc *sa, tu_alloc *ca) {
  static uint8_t msgs[3][100000];
  static const size_t lens[4] = {5000, 100000, 3000, 0};
  uint64_t seed = 5;
  for (size_t k = 0; k < sizeof msgs[0]; k++) {
    msgs[0][k] = (uint8_t) "abcabcabd"[k % 9];
    msgs[1][k] = 'z';
    msgs[2][k] = (uint8_t)tu_rand(&seed);
  }
  rs_ws_deflate d = {true, false, false, 15, 15};
  rs_ws_options so = {.server = true, .deflate = d}, co = {.server = false, .deflate = d};
  side s = {0}, c = {0};
  s.c = rs_ws_conn_new(&so, &cbs, &s.g, &sa->mem);
  c.c = rs_ws_conn_new(&co, &cbs, &c.g, &ca->mem);
  bool done = false;
  if (s.c && c.c) {
    int i = 0;
    for (; i < 4; i++) {
      const uint8_t *m = msgs[i < 3 ? i : 0];
      if (!step(&c, rs_ws_conn_send(c.c, RS_WS_OP_BINARY, m, lens[i])) || !flow(&c, &s)) break;
      assert_int_equal(s.g.n, i + 1);
      assert_int_equal(s.g.len, lens[i]);
      assert_memory_equal(s.g.data, m, lens[i]);
      if (!step(&s, rs_ws_conn_send(s.c, RS_WS_OP_BINARY, s.g.data, s.g.len)) || !flow(&s, &c))
        break;
      assert_int_equal(c.g.n, i + 1);
      assert_memory_equal(c.g.data, m, lens[i]);
    }
    done = i == 4 && step(&c, rs_ws_conn_send(c.c, RS_WS_OP_PING, (const uint8_t *)"p", 1)) &&
           flow(&c, &s) && flow(&s, &c) &&
           step(&c, rs_ws_conn_close(c.c, RS_WS_CLOSE_NORMAL, "bye", 0)) && flow(&c, &s) &&
           flow(&s, &c);
    if (done) {
      assert_int_equal(s.g.close, RS_WS_CLOSE_NORMAL);
      assert_true(rs_ws_conn_want_close(s.c) && rs_ws_conn_want_close(c.c));
    }
    assert_sticky(&s);
    assert_sticky(&c);
  }
  if (!done) assert_true(!s.c || !c.c || s.err || c.err);
  free(s.g.data), free(c.g.data);
  rs_ws_conn_free(s.c);
  rs_ws_conn_free(c.c);
  assert_int_equal(sa->live, 0);
  assert_int_equal(ca->live, 0);
  return done;
}

/* zlib's streams come from the connection's allocator: a deflate connection asks it for zlib's
 * windows and tables (four 64 KB blocks for 15-bit windows, the inflater's 32 KB window on the
 * first compressed message), a plain one for a few hundred bytes. */
static void test_zlib_allocates_through_rs_mem(void **state) {
  (void)state;
  tu_alloc a, plain;
  tu_alloc_init(&a, 0);
  tu_alloc_init(&plain, 0);
  rs_ws_deflate d = {true, false, false, 15, 15};
  rs_ws_options o = {.server = true, .deflate = d}, po = {.server = true};
  rs_ws_conn *c = rs_ws_conn_new(&o, &cbs, NULL, &a.mem);
  rs_ws_conn *p = rs_ws_conn_new(&po, &cbs, NULL, &plain.mem);
  assert_non_null(c);
  assert_non_null(p);
  assert_true(a.count >= 7); /* connection, zlib pair, deflate: state + 4 buffers, inflate state */
  assert_true(a.bytes >= 4 * 65536);
  assert_true(plain.count == 1 && plain.bytes < 4096);
  rs_ws_conn_free(c);
  rs_ws_conn_free(p);
  assert_int_equal(a.live, 0);
  /* A whole session: both ends allocate only through their own hooks, and free it all. */
  tu_alloc sa, ca;
  tu_alloc_init(&sa, 0);
  tu_alloc_init(&ca, 0);
  assert_true(deflate_session(&sa, &ca));
  assert_true(sa.bytes >= 4 * 65536 + 32768 && ca.bytes >= 4 * 65536 + 32768);
}

/* Allocation N fails, for every N a deflate session makes, on either side, alone and from N on:
 * the session stops with NULL or RS_ERR_NOMEM, the error sticks, nothing leaks. */
static void test_deflate_alloc_failures(void **state) {
  (void)state;
  tu_alloc sa, ca;
  tu_alloc_init(&sa, 0);
  tu_alloc_init(&ca, 0);
  assert_true(deflate_session(&sa, &ca));
  long counts[2] = {sa.count, ca.count};
  for (int side_ = 0; side_ < 2; side_++) {
    for (long n = 1; n <= counts[side_]; n++) {
      for (int after = 0; after < 2; after++) {
        tu_alloc_init(&sa, side_ == 0 ? n : 0);
        tu_alloc_init(&ca, side_ == 1 ? n : 0);
        sa.fail_after = ca.fail_after = after;
        if (deflate_session(&sa, &ca))
          fail_msg("side %d allocation %ld failed unnoticed", side_, n);
      }
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_negotiation),
                                     cmocka_unit_test(test_roundtrip),
                                     cmocka_unit_test(test_bomb),
                                     cmocka_unit_test(test_bfinal_message_accepted),
                                     cmocka_unit_test(test_zlib_allocates_through_rs_mem),
                                     cmocka_unit_test(test_deflate_alloc_failures)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
