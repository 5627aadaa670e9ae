/* permessage-deflate: negotiation, round trip between two connections, compression bombs. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

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
  memcpy(g->data, d, len);
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

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_negotiation),
                                     cmocka_unit_test(test_roundtrip), cmocka_unit_test(test_bomb)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
