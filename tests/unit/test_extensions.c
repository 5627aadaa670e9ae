/* Extension codecs: composite metadata, routing, authentication, data MIME, tracing. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "rsocket/extensions.h"

static void test_mime_table(void **state) {
  (void)state;
  int named = 0;
  for (int id = 0; id < 128; id++) {
    const char *name = rs_mime_name((uint8_t)id);
    if (!name) {
      assert_true((id > 0x2A && id < 0x7A));
      continue;
    }
    named++;
    assert_int_equal(rs_mime_id(name, strlen(name)), id);
  }
  assert_int_equal(named, 0x2B + 6);
  assert_string_equal(rs_mime_name(0x05), "application/json");
  assert_string_equal(rs_mime_name(0x7F), RS_MIME_COMPOSITE_METADATA);
  assert_null(rs_mime_name(0x50));
  assert_null(rs_mime_name(200));
  assert_int_equal(rs_mime_id("application/jso", 15), -1);
  assert_int_equal(rs_mime_id("text/plain", 10), RS_MIME_ID_TEXT_PLAIN);
  assert_int_equal(rs_mime_id("Text/plain", 10), -1); /* exact match */
}

static void test_composite_reference_vector(void **state) {
  (void)state;
  /* routing "/a" + custom MIME "text/x" with "hi" (the reference's 19-byte example). */
  uint8_t buf[64];
  size_t len = 0;
  uint8_t route[8];
  rs_bytes tag = rs_bytes_str("/a");
  rs_ssize r = rs_routing_encode(route, sizeof route, &tag, 1);
  assert_int_equal(r, 3);
  rs_ssize n = rs_composite_encode_id(buf, sizeof buf, RS_MIME_ID_ROUTING, route, (size_t)r);
  assert_int_equal(n, 7);
  len += (size_t)n;
  n = rs_composite_encode(buf + len, sizeof buf - len, "text/x", 6, (const uint8_t *)"hi", 2);
  assert_int_equal(n, 12);
  len += (size_t)n;
  tu_assert_hex(buf, len, "FE 00 00 03 02 2F 61  05 74 65 78 74 2F 78 00 00 02 68 69");

  rs_composite_iter it;
  rs_composite_entry e;
  rs_composite_iter_init(&it, buf, len);
  assert_int_equal(rs_composite_next(&it, &e), 1);
  assert_true(e.well_known);
  assert_int_equal(e.mime_id, RS_MIME_ID_ROUTING);
  tu_assert_bytes_str(e.mime, RS_MIME_ROUTING);
  rs_routing_iter ri;
  rs_bytes t;
  rs_routing_iter_init(&ri, e.content.ptr, e.content.len);
  assert_int_equal(rs_routing_next(&ri, &t), 1);
  tu_assert_bytes_str(t, "/a");
  assert_int_equal(rs_routing_next(&ri, &t), 0);
  assert_int_equal(rs_composite_next(&it, &e), 1);
  assert_false(e.well_known);
  tu_assert_bytes_str(e.mime, "text/x");
  tu_assert_bytes_str(e.content, "hi");
  assert_int_equal(rs_composite_next(&it, &e), 0);

  /* A well-known name given as a string is sent as its id. */
  n = rs_composite_encode(buf, sizeof buf, "application/json", 16, (const uint8_t *)"{}", 2);
  tu_assert_hex(buf, (size_t)n, "85 00 00 02 7B 7D");
}

static void test_composite_truncation(void **state) {
  (void)state;
  const char *hex = "FE 00 00 03 02 2F 61  05 74 65 78 74 2F 78 00 00 02 68 69";
  size_t len;
  uint8_t *full = tu_hex(hex, &len);
  for (size_t cut = 0; cut < len; cut++) {
    uint8_t *p = malloc(cut ? cut : 1);
    memcpy(p, full, cut);
    rs_composite_iter it;
    rs_composite_entry e;
    rs_composite_iter_init(&it, p, cut);
    int rc, entries = 0;
    while ((rc = rs_composite_next(&it, &e)) == 1) entries++;
    if (cut == 0 || cut == 7) {
      assert_int_equal(rc, 0); /* cut on an entry boundary: a clean, shorter parse */
    } else {
      assert_int_equal(rc, RS_ERR_MALFORMED);
      assert_int_equal(rs_composite_next(&it, &e), RS_ERR_MALFORMED); /* sticky */
    }
    free(p);
  }
  free(full);
}

static void test_custom_mime_lengths(void **state) {
  (void)state;
  char mime[130];
  memset(mime, 'x', sizeof mime);
  uint8_t buf[256];
  rs_ssize n = rs_composite_encode(buf, sizeof buf, mime, 128, NULL, 0);
  assert_int_equal(n, 1 + 128 + 3);
  assert_int_equal(buf[0], 127); /* length minus one */
  rs_composite_iter it;
  rs_composite_entry e;
  rs_composite_iter_init(&it, buf, (size_t)n);
  assert_int_equal(rs_composite_next(&it, &e), 1);
  assert_int_equal(e.mime.len, 128);
  assert_int_equal(rs_composite_encode(buf, sizeof buf, mime, 129, NULL, 0),
                   RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_composite_encode(buf, sizeof buf, mime, 0, NULL, 0), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_composite_encode(buf, sizeof buf, "caf\xc3\xa9", 5, NULL, 0),
                   RS_ERR_INVALID_ARGUMENT); /* US-ASCII only */
  /* Unknown well-known ids are kept as numbers. */
  const uint8_t odd[] = {0x80 | 0x50, 0, 0, 1, 'z'};
  rs_composite_iter_init(&it, odd, sizeof odd);
  assert_int_equal(rs_composite_next(&it, &e), 1);
  assert_true(e.well_known);
  assert_int_equal(e.mime_id, 0x50);
  assert_int_equal(e.mime.len, 0);
}

static void test_buffer_too_small(void **state) {
  (void)state;
  uint8_t buf[64];
  rs_ssize need = rs_composite_encode(NULL, 0, "text/x", 6, (const uint8_t *)"hi", 2);
  assert_int_equal(need, 12);
  for (size_t cap = 1; cap < (size_t)need; cap++) {
    memset(buf, 0xA5, sizeof buf);
    assert_int_equal(rs_composite_encode(buf, cap, "text/x", 6, (const uint8_t *)"hi", 2),
                     RS_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(buf[cap], 0xA5);
  }
  rs_bytes tags[2] = {rs_bytes_str("a"), rs_bytes_str("bc")};
  assert_int_equal(rs_routing_encode(NULL, 0, tags, 2), 5);
  assert_int_equal(rs_routing_encode(buf, 4, tags, 2), RS_ERR_BUFFER_TOO_SMALL);
  assert_int_equal(rs_auth_encode_bearer(buf, 3, "tok", 3), RS_ERR_BUFFER_TOO_SMALL);
  assert_int_equal(rs_auth_encode_simple(buf, 4, "u", 1, "p", 1), RS_ERR_BUFFER_TOO_SMALL);
}

static void test_routing_limits(void **state) {
  (void)state;
  char long_tag[256];
  memset(long_tag, 't', sizeof long_tag);
  uint8_t buf[600];
  rs_bytes ok = {(const uint8_t *)long_tag, 255}, bad = {(const uint8_t *)long_tag, 256};
  rs_bytes empty = {(const uint8_t *)"", 0};
  assert_int_equal(rs_routing_encode(buf, sizeof buf, &ok, 1), 256);
  assert_int_equal(rs_routing_encode(buf, sizeof buf, &bad, 1), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_routing_encode(buf, sizeof buf, &empty, 1), RS_ERR_INVALID_ARGUMENT);
  const uint8_t zero[] = {0};
  rs_routing_iter it;
  rs_bytes t;
  rs_routing_iter_init(&it, zero, 1);
  assert_int_equal(rs_routing_next(&it, &t), RS_ERR_MALFORMED);
  const uint8_t past[] = {5, 'a'};
  rs_routing_iter_init(&it, past, 2);
  assert_int_equal(rs_routing_next(&it, &t), RS_ERR_MALFORMED);
}

static void test_auth(void **state) {
  (void)state;
  uint8_t buf[64];
  rs_ssize n = rs_auth_encode_simple(buf, sizeof buf, "u", 1, "p", 1);
  tu_assert_hex(buf, (size_t)n, "80 00 01 75 70");
  rs_auth a;
  assert_int_equal(rs_auth_decode(&a, buf, (size_t)n), 0);
  assert_true(a.well_known);
  assert_int_equal(a.type_id, RS_AUTH_SIMPLE);
  tu_assert_bytes_str(a.type, "simple");
  rs_bytes user, pass;
  assert_int_equal(rs_auth_simple_decode(a.payload, &user, &pass), 0);
  tu_assert_bytes_str(user, "u");
  tu_assert_bytes_str(pass, "p");

  n = rs_auth_encode_bearer(buf, sizeof buf, "tok", 3);
  tu_assert_hex(buf, (size_t)n, "81 74 6F 6B");
  assert_int_equal(rs_auth_decode(&a, buf, (size_t)n), 0);
  tu_assert_bytes_str(a.type, "bearer");
  tu_assert_bytes_str(a.payload, "tok");

  n = rs_auth_encode_custom(buf, sizeof buf, "x-key", 5, (const uint8_t *)"K", 1);
  tu_assert_hex(buf, (size_t)n, "04 78 2D 6B 65 79 4B");
  assert_int_equal(rs_auth_decode(&a, buf, (size_t)n), 0);
  assert_false(a.well_known);
  tu_assert_bytes_str(a.type, "x-key");
  tu_assert_bytes_str(a.payload, "K");
  n = rs_auth_encode_custom(buf, sizeof buf, "bearer", 6, (const uint8_t *)"t", 1);
  tu_assert_hex(buf, (size_t)n, "81 74");

  const uint8_t cut[] = {0x05, 'a'};
  assert_int_equal(rs_auth_decode(&a, cut, sizeof cut), RS_ERR_MALFORMED);
  rs_bytes bad = {(const uint8_t *)"\x00\x09u", 3};
  assert_int_equal(rs_auth_simple_decode(bad, &user, &pass), RS_ERR_MALFORMED);
  char big[70000];
  memset(big, 'u', sizeof big);
  assert_int_equal(rs_auth_encode_simple(NULL, 0, big, 65536, "p", 1), RS_ERR_INVALID_ARGUMENT);
}

static void test_data_mime(void **state) {
  (void)state;
  uint8_t buf[200], entry[32];
  rs_ssize n = rs_data_mime_encode(buf, sizeof buf, "application/json", 16);
  assert_int_equal(n, 1);
  rs_ssize e = rs_composite_encode_id(entry, sizeof entry, RS_MIME_ID_DATA_MIME, buf, (size_t)n);
  tu_assert_hex(entry, (size_t)e, "FA 00 00 01 85");
  /* accept JSON + CBOR */
  size_t len = (size_t)rs_data_mime_encode(buf, sizeof buf, "application/json", 16);
  len += (size_t)rs_data_mime_encode(buf + len, sizeof buf - len, "application/cbor", 16);
  e = rs_composite_encode_id(entry, sizeof entry, RS_MIME_ID_ACCEPT_MIMES, buf, len);
  tu_assert_hex(entry, (size_t)e, "FB 00 00 02 85 81");
  rs_bytes m;
  size_t used, off = 0;
  assert_int_equal(rs_data_mime_decode(buf, len, &m, &used), 0);
  tu_assert_bytes_str(m, "application/json");
  off += used;
  assert_int_equal(rs_data_mime_decode(buf + off, len - off, &m, &used), 0);
  tu_assert_bytes_str(m, "application/cbor");
  n = rs_data_mime_encode(buf, sizeof buf, "text/x-custom", 13);
  assert_int_equal(n, 14);
  assert_int_equal(buf[0], 12);
  assert_int_equal(rs_data_mime_decode(buf, (size_t)n, &m, &used), 0);
  tu_assert_bytes_str(m, "text/x-custom");
  assert_int_equal(rs_data_mime_decode(buf, 5, &m, &used), RS_ERR_MALFORMED);
}

static void test_tracing(void **state) {
  (void)state;
  const struct {
    uint8_t flags;
    size_t size;
  } cases[] = {
      {RS_TRACE_SAMPLED, 1},
      {RS_TRACE_IDS | RS_TRACE_DEBUG, 17},
      {RS_TRACE_IDS | RS_TRACE_PARENT, 25},
      {RS_TRACE_IDS | RS_TRACE_ID128 | RS_TRACE_PARENT | RS_TRACE_SAMPLED, 33},
  };
  for (size_t i = 0; i < 4; i++) {
    rs_trace t = {cases[i].flags, 0x1111111111111111ull, 0x2222222222222222ull,
                  0x3333333333333333ull, 0x4444444444444444ull};
    uint8_t buf[40];
    rs_ssize n = rs_trace_encode(buf, sizeof buf, &t);
    assert_int_equal(n, (rs_ssize)cases[i].size);
    rs_trace d;
    assert_int_equal(rs_trace_decode(&d, buf, (size_t)n), 0);
    assert_int_equal(d.flags, t.flags);
    if (t.flags & RS_TRACE_IDS) {
      assert_true(d.trace_id == t.trace_id && d.span_id == t.span_id);
      if (t.flags & RS_TRACE_ID128) assert_true(d.trace_id_high == t.trace_id_high);
      if (t.flags & RS_TRACE_PARENT) assert_true(d.parent_span_id == t.parent_span_id);
    }
    assert_int_equal(rs_trace_decode(&d, buf, (size_t)n - (n > 1)), n > 1 ? RS_ERR_MALFORMED : 0);
  }
  /* Without IDs, the 128-bit and parent flags add no bytes (decoder and encoder agree). */
  rs_trace flags_only = {RS_TRACE_PARENT | RS_TRACE_ID128, 0, 0, 0, 0};
  assert_int_equal(rs_trace_encode(NULL, 0, &flags_only), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mime_table),
      cmocka_unit_test(test_composite_reference_vector),
      cmocka_unit_test(test_composite_truncation),
      cmocka_unit_test(test_custom_mime_lengths),
      cmocka_unit_test(test_buffer_too_small),
      cmocka_unit_test(test_routing_limits),
      cmocka_unit_test(test_auth),
      cmocka_unit_test(test_data_mime),
      cmocka_unit_test(test_tracing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
