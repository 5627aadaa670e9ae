/*
 * Protocol engine: fragmentation at the MTU on send, reassembly with a size limit on receive.
 */
#include "test_conn_harness.h"

static uint8_t *pattern(size_t n, uint8_t seed) {
  uint8_t *p = malloc(n ? n : 1);
  assert_non_null(p);
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(seed + i * 31 + (i >> 8));
  return p;
}

/* Checks every frame of a fragmented output against what rsocket-java sends and accepts. */
static void check_fragments(const uint8_t *out, size_t len, uint32_t mtu, uint8_t first_type,
                            bool last_complete, size_t *count) {
  size_t nmax = len / 9 + 1;
  const uint8_t **fr = calloc(nmax, sizeof(*fr));
  size_t *fl = calloc(nmax, sizeof(*fl));
  size_t n = h_split(out, len, fr, fl, nmax);
  assert_true(n > 1);
  bool data_started = false;
  for (size_t i = 0; i < n; i++) {
    uint16_t flags = h_frame_flags(fr[i]);
    bool last = i == n - 1;
    assert_true(fl[i] + 3 <= mtu);
    if (!last) {
      /* Non-final fragments are full: never a tiny one. */
      assert_int_equal(fl[i] + 3, mtu);
      assert_true(flags & RS_FLAG_FOLLOWS);
      assert_false(flags & RS_FLAG_COMPLETE);
    } else {
      assert_false(flags & RS_FLAG_FOLLOWS);
      assert_int_equal((flags & RS_FLAG_COMPLETE) != 0, last_complete);
    }
    if (i == 0) {
      assert_int_equal(h_frame_type(fr[i]), first_type);
    } else {
      assert_int_equal(h_frame_type(fr[i]), RS_FRAME_PAYLOAD);
      assert_true(flags & RS_FLAG_NEXT); /* continuations always carry N */
    }
    /* Metadata strictly before data. */
    if (flags & RS_FLAG_METADATA) assert_false(data_started);
    size_t hdr = 6 + ((i == 0 && (first_type == RS_FRAME_REQUEST_STREAM ||
                                  first_type == RS_FRAME_REQUEST_CHANNEL))
                          ? 4
                          : 0);
    size_t md = 0;
    if (flags & RS_FLAG_METADATA) {
      const uint8_t *m = fr[i] + hdr;
      md = (size_t)m[0] << 16 | (size_t)m[1] << 8 | m[2];
      hdr += 3;
    }
    if (fl[i] > hdr + md) data_started = true;
  }
  *count = n;
  free(fr);
  free(fl);
}

static void test_fragment_1mib_both_ways(void **state) {
  (void)state;
  h_pair h;
  h_init(&h);
  h.cs.mtu = 64;
  h.ss.mtu = 64;
  h.chunk = H_RANDOM_CHUNK;
  h_start(&h);
  h.srv.echo = false;
  h_pump_ok(&h);
  size_t dlen = 1u << 20, mlen = 1000;
  uint8_t *data = pattern(dlen, 1), *md = pattern(mlen, 7);
  rs_payload p = {true, {md, mlen}, {data, dlen}};
  uint32_t id = (uint32_t)rs_conn_request_channel(h.cli.conn, &p, 4, false, NULL);
  /* Look at the wire. */
  size_t len, n;
  uint8_t *out = h_take_output(&h.cli, &len);
  check_fragments(out, len, 64, RS_FRAME_REQUEST_CHANNEL, false, &n);
  assert_true(n > (dlen + mlen) / 61);
  assert_int_equal(rs_conn_recv(h.srv.conn, out, len, h.now), (rs_ssize)len);
  free(out);
  const h_event *r = h_find(&h.srv, EV_REQUEST, id, 0);
  assert_int_equal(r->type, RS_FRAME_REQUEST_CHANNEL);
  assert_int_equal(r->n, 4);
  assert_false(r->flags);
  assert_int_equal(r->md_len, mlen);
  assert_int_equal(r->data_len, dlen);
  assert_memory_equal(r->md, md, mlen);
  assert_memory_equal(r->data, data, dlen);
  /* And back, as a fragmented PAYLOAD with N|C. */
  assert_int_equal(rs_conn_send_payload(h.srv.conn, id, &p, true), 0);
  out = h_take_output(&h.srv, &len);
  check_fragments(out, len, 64, RS_FRAME_PAYLOAD, true, &n);
  assert_int_equal(h_frame_flags(out + 3) & (RS_FLAG_NEXT | RS_FLAG_FOLLOWS),
                   RS_FLAG_NEXT | RS_FLAG_FOLLOWS);
  assert_int_equal(rs_conn_recv(h.cli.conn, out, len, h.now), (rs_ssize)len);
  free(out);
  const h_event *e = h_find(&h.cli, EV_PAYLOAD, id, 0);
  assert_int_equal(e->flags, RS_PAYLOAD_NEXT | RS_PAYLOAD_COMPLETE);
  assert_int_equal(e->data_len, dlen);
  assert_memory_equal(e->data, data, dlen);
  assert_memory_equal(e->md, md, mlen);
  /* One credit per reassembled payload: 3 left. */
  rs_payload small = h_pl(NULL, "s");
  assert_int_equal(rs_conn_request_n(h.srv.conn, id, 1), 0);
  h_pump_ok(&h);
  assert_int_equal(rs_conn_send_payload(h.cli.conn, id, &small, true), 0);
  h_pump_ok(&h);
  h_advance(&h, 0);
  assert_int_equal(h_count(&h.cli, EV_STREAM_CLOSED, id), 1);
  assert_int_equal(h_count(&h.srv, EV_STREAM_CLOSED, id), 1);
  free(data);
  free(md);
  h_free(&h);
}

static void test_fragment_every_request_type(void **state) {
  (void)state;
  h_pair h;
  h_init(&h);
  h.cs.mtu = 80;
  h.chunk = 7;
  h_start(&h);
  h.srv.echo = true;
  uint8_t *data = pattern(500, 3);
  rs_payload p = {false, {NULL, 0}, {data, 500}};
  rs_ssize rr = rs_conn_request_response(h.cli.conn, &p, NULL);
  rs_ssize fnf = rs_conn_request_fnf(h.cli.conn, &p);
  rs_ssize st = rs_conn_request_stream(h.cli.conn, &p, 9, NULL);
  rs_ssize ch = rs_conn_request_channel(h.cli.conn, &p, 2, true, NULL);
  h_pump_ok(&h);
  assert_int_equal(h_find(&h.srv, EV_REQUEST, (uint32_t)fnf, 0)->type, RS_FRAME_REQUEST_FNF);
  assert_int_equal(h_find(&h.srv, EV_REQUEST, (uint32_t)st, 0)->n, 9);
  const h_event *c = h_find(&h.srv, EV_REQUEST, (uint32_t)ch, 0);
  assert_int_equal(c->flags, 1); /* C came on the last fragment */
  assert_int_equal(c->data_len, 500);
  assert_false(c->has_md);
  for (int i = 0; i < 4; i++) {
    const h_event *e = h_find(&h.srv, EV_REQUEST, UINT32_MAX, (size_t)i);
    assert_memory_equal(e->data, data, 500);
  }
  /* The echoed response came back fragmented at the server's MTU 0 (whole). */
  assert_memory_equal(h_find(&h.cli, EV_PAYLOAD, (uint32_t)rr, 0)->data, data, 500);
  free(data);
  h_free(&h);
}

static void test_fragment_empty_metadata_kept(void **state) {
  (void)state;
  h_pair h;
  h_init(&h);
  h.cs.mtu = 64;
  h_start(&h);
  uint8_t *data = pattern(300, 9);
  rs_payload p = {true, {NULL, 0}, {data, 300}};
  rs_conn_request_response(h.cli.conn, &p, NULL);
  h_pump_ok(&h);
  const h_event *e = h_find(&h.srv, EV_REQUEST, 1, 0);
  assert_true(e->has_md);
  assert_int_equal(e->md_len, 0);
  assert_memory_equal(e->data, data, 300);
  /* Metadata larger than one fragment, no data. */
  uint8_t *md = pattern(200, 4);
  rs_payload q = {true, {md, 200}, {NULL, 0}};
  rs_conn_request_response(h.cli.conn, &q, NULL);
  h_pump_ok(&h);
  e = h_find(&h.srv, EV_REQUEST, 3, 0);
  assert_int_equal(e->md_len, 200);
  assert_memory_equal(e->md, md, 200);
  assert_int_equal(e->data_len, 0);
  free(data);
  free(md);
  h_free(&h);
}

static void test_fragment_exact_fit_not_fragmented(void **state) {
  (void)state;
  h_pair h;
  h_init(&h);
  h.cs.mtu = 64;
  h_start(&h);
  size_t len;
  free(h_take_output(&h.cli, &len));
  /* 3 + 6 + 55 = 64: one frame. */
  uint8_t *data = pattern(55, 1);
  rs_payload p = {false, {NULL, 0}, {data, 55}};
  rs_conn_request_response(h.cli.conn, &p, NULL);
  uint8_t *out = h_take_output(&h.cli, &len);
  assert_int_equal(len, 64);
  assert_int_equal(h_frame_flags(out + 3) & RS_FLAG_FOLLOWS, 0);
  free(out);
  /* One byte more: two fragments, the first full. */
  uint8_t *d2 = pattern(56, 1);
  rs_payload q = {false, {NULL, 0}, {d2, 56}};
  rs_conn_request_response(h.cli.conn, &q, NULL);
  out = h_take_output(&h.cli, &len);
  const uint8_t *fr[4];
  size_t fl[4];
  assert_int_equal(h_split(out, len, fr, fl, 4), 2);
  assert_int_equal(fl[0], 61);
  assert_int_equal(fl[1], 7);
  assert_int_equal(h_frame_flags(fr[1]), RS_FLAG_NEXT);
  free(out);
  free(data);
  free(d2);
  h_free(&h);
}

static void test_reassembly_hand_packed(void **state) {
  (void)state;
  h_pair h;
  h_init(&h);
  h_start(&h);
  h_pump_ok(&h);
  /* REQUEST_RESPONSE F with md "ab" | PAYLOAD F|N md "c" data "d" | PAYLOAD N data "e". */
  assert_true(h_feed_hex(&h.srv,
                         "00 00 0B 00 00 00 01 11 80 00 00 02 61 62 "
                         "00 00 0B 00 00 00 01 29 A0 00 00 01 63 64 "
                         "00 00 07 00 00 00 01 28 20 65",
                         h.now) > 0);
  const h_event *e = h_find(&h.srv, EV_REQUEST, 1, 0);
  assert_string_equal((char *)e->md, "abc");
  assert_string_equal((char *)e->data, "de");
  h_free(&h);
}

static void test_reassembly_limit(void **state) {
  (void)state;
  h_pair h;
  h_init(&h);
  h.cs.mtu = 64;
  h.ss.mtu = 64;
  h.ss.max_reassembly_size = 1000;
  h.cs.max_reassembly_size = 1000;
  h_start(&h);
  h.srv.echo = false;
  uint8_t *data = pattern(5000, 2);
  rs_payload big = {false, {NULL, 0}, {data, 5000}};
  rs_payload ok = {false, {NULL, 0}, {data, 1000}};
  /* An inbound request over the limit: refused with INVALID, the application never sees it. */
  uint32_t a = (uint32_t)rs_conn_request_response(h.cli.conn, &big, NULL);
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.srv, EV_REQUEST, a), 0);
  assert_int_equal(h_find(&h.cli, EV_ERROR, a, 0)->code, RS_ERROR_INVALID);
  assert_int_equal(rs_conn_stream_count(h.srv.conn), 0);
  /* Exactly at the limit is fine. */
  uint32_t b = (uint32_t)rs_conn_request_stream(h.cli.conn, &ok, 5, NULL);
  h_pump_ok(&h);
  assert_int_equal(h_find(&h.srv, EV_REQUEST, b, 0)->data_len, 1000);
  /* A response over the limit: the requester cancels and reports RS_ERR_TOO_BIG. */
  assert_int_equal(rs_conn_send_payload(h.srv.conn, b, &big, false), 0);
  h_pump_ok(&h);
  const h_event *e = h_find(&h.cli, EV_ERROR, b, 0);
  assert_int_equal(e->err, RS_ERR_TOO_BIG);
  assert_false(e->flags);
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, b), 0);
  assert_int_equal(h_count(&h.srv, EV_CANCEL, b), 1);
  assert_int_equal(rs_conn_stream_count(h.cli.conn), 0);
  h_advance(&h, 0);
  assert_int_equal(rs_conn_stream_count(h.srv.conn), 0);
  /* Both connections are still fine. */
  h.srv.echo = true;
  rs_conn_request_response(h.cli.conn, &ok, NULL);
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, UINT32_MAX), 1);
  free(data);
  h_free(&h);
}

/* Many streams each holding part of a payload cannot exceed the connection's budget. */
static void test_reassembly_total_budget(void **state) {
  (void)state;
  h_pair h;
  h_init(&h);
  h.ss.max_reassembly_size = 1000;
  h.ss.max_reassembly_total = 2048;
  h_start(&h);
  h_pump_ok(&h);
  uint8_t frame[3 + 6 + 700];
  memset(frame, 'z', sizeof(frame));
  rs_frame_put_length(frame, 6 + 700);
  for (uint32_t id = 1; id <= 7; id += 2) {
    frame[3] = 0, frame[4] = 0, frame[5] = 0, frame[6] = (uint8_t)id;
    frame[7] = 0x10, frame[8] = 0x80; /* REQUEST_RESPONSE, F */
    assert_int_equal(rs_conn_recv(h.srv.conn, frame, sizeof(frame), h.now),
                     (rs_ssize)sizeof(frame));
  }
  /* 1 and 3 fit (700 bytes each); 5 and 7 would pass 2048 and are refused. */
  assert_int_equal(rs_conn_stream_count(h.srv.conn), 2);
  size_t len;
  uint8_t *out = h_take_output(&h.srv, &len);
  const uint8_t *fr[4];
  size_t fl[4];
  assert_int_equal(h_split(out, len, fr, fl, 4), 2);
  assert_int_equal(h_frame_sid(fr[0]), 5);
  assert_int_equal(h_frame_sid(fr[1]), 7);
  tu_assert_hex(fr[1] + 6, 4, "00 00 02 04");
  free(out);
  /* Finishing stream 1 releases its part of the budget. */
  frame[6] = 1;
  frame[7] = 0x28, frame[8] = 0x20; /* PAYLOAD N, last */
  rs_frame_put_length(frame, 6 + 200);
  assert_true(rs_conn_recv(h.srv.conn, frame, 3 + 6 + 200, h.now) > 0);
  assert_int_equal(h_find(&h.srv, EV_REQUEST, 1, 0)->data_len, 900);
  frame[6] = 9;
  frame[7] = 0x10, frame[8] = 0x80;
  rs_frame_put_length(frame, 6 + 700);
  assert_true(rs_conn_recv(h.srv.conn, frame, sizeof(frame), h.now) > 0);
  assert_int_equal(rs_conn_stream_count(h.srv.conn), 2); /* 1 was answered at once: 3 and 9 */
  h_free(&h);
}

static void test_reassembly_abandoned(void **state) {
  (void)state;
  h_pair h;
  h_init(&h);
  h_start(&h);
  h_pump_ok(&h);
  /* First fragment of a request, then CANCEL: forgotten, nothing leaks (ASan checks). */
  assert_true(h_feed_hex(&h.srv, "00 00 09 00 00 00 01 10 80 61 62 63", h.now) > 0);
  assert_int_equal(rs_conn_stream_count(h.srv.conn), 1);
  assert_true(h_feed_hex(&h.srv, "00 00 06 00 00 00 01 24 00", h.now) > 0);
  assert_int_equal(rs_conn_stream_count(h.srv.conn), 0);
  assert_int_equal(h.srv.nev, 1); /* just SETUP */
  /* A continuation for it now is ignored. */
  assert_true(h_feed_hex(&h.srv, "00 00 07 00 00 00 01 28 20 64", h.now) > 0);
  assert_int_equal(h_count(&h.srv, EV_REQUEST, UINT32_MAX), 0);
  /* A first fragment left hanging when the connection closes is freed with it. */
  assert_true(h_feed_hex(&h.srv, "00 00 0D 00 00 00 03 18 80 00 00 00 05 61 62 63", h.now) > 0);
  rs_payload p = h_pl(NULL, "x");
  uint32_t id = (uint32_t)rs_conn_request_stream(h.srv.conn, &p, 2, NULL);
  assert_true(h_feed_hex(&h.srv, "00 00 09 00 00 00 02 28 A0 61 62 63", h.now) > 0);
  assert_int_equal(rs_conn_stream_count(h.srv.conn), 2);
  assert_int_equal(rs_conn_abort(h.srv.conn, rs_bytes_str("")), 0);
  h_advance(&h, 0);
  assert_int_equal(h_find(&h.srv, EV_ERROR, id, 0)->err, RS_ERR_CLOSED);
  assert_int_equal(h_count(&h.srv, EV_STREAM_CLOSED, UINT32_MAX), 1);
  h_free(&h);
}

static void test_fragment_too_large_without_mtu(void **state) {
  (void)state;
  h_pair h;
  h_init(&h);
  h_start(&h);
  uint8_t *data = malloc(RS_FRAME_MAX_SIZE);
  memset(data, 1, RS_FRAME_MAX_SIZE);
  rs_payload p = {false, {NULL, 0}, {data, RS_FRAME_MAX_SIZE - 6}};
  assert_int_equal(rs_conn_request_response(h.cli.conn, &p, NULL), 1);
  p.data.len++;
  assert_int_equal(rs_conn_request_response(h.cli.conn, &p, NULL), RS_ERR_FRAME_TOO_LARGE);
  assert_int_equal(rs_conn_stream_count(h.cli.conn), 1);
  free(data);
  h_free(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fragment_1mib_both_ways),
      cmocka_unit_test(test_fragment_every_request_type),
      cmocka_unit_test(test_fragment_empty_metadata_kept),
      cmocka_unit_test(test_fragment_exact_fit_not_fragmented),
      cmocka_unit_test(test_reassembly_hand_packed),
      cmocka_unit_test(test_reassembly_limit),
      cmocka_unit_test(test_reassembly_total_budget),
      cmocka_unit_test(test_reassembly_abandoned),
      cmocka_unit_test(test_fragment_too_large_without_mtu),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
