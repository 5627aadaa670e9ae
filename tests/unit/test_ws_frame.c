/* WebSocket frame headers, masking, UTF-8 and close codes. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "rsocket/ws.h"

static void test_header_lengths(void **state) {
  (void)state;
  const struct {
    uint64_t len;
    const char *hex;
  } cases[] = {
      {0, "82 00"},
      {125, "82 7D"},
      {126, "82 7E 00 7E"},
      {65535, "82 7E FF FF"},
      {65536, "82 7F 00 00 00 00 00 01 00 00"},
      {0x7fffffffffffffffull, "82 7F 7F FF FF FF FF FF FF FF"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint8_t out[RS_WS_MAX_HEADER];
    size_t n = rs_ws_frame_header_write(out, true, RS_WS_OP_BINARY, false, NULL, cases[i].len);
    tu_assert_hex(out, n, cases[i].hex);
    assert_int_equal(n, rs_ws_frame_header_size(false, cases[i].len));
    rs_ws_frame_header h;
    assert_int_equal(rs_ws_frame_header_parse(&h, out, n), (rs_ssize)n);
    assert_true(h.payload_len == cases[i].len);
    assert_true(h.fin);
    assert_int_equal(h.opcode, RS_WS_OP_BINARY);
    /* Every shorter prefix asks for more bytes. */
    for (size_t k = 0; k < n; k++) assert_int_equal(rs_ws_frame_header_parse(&h, out, k), 0);
  }
  /* Masked client text frame, the RFC 6455 5.7 example "Hello". */
  size_t len;
  uint8_t *f = tu_hex("81 85 37 fa 21 3d 7f 9f 4d 51 58", &len);
  rs_ws_frame_header h;
  assert_int_equal(rs_ws_frame_header_parse(&h, f, len), 6);
  assert_true(h.masked);
  assert_int_equal(h.payload_len, 5);
  rs_ws_mask(f + 6, 5, h.mask, 0);
  assert_memory_equal(f + 6, "Hello", 5);
  uint8_t out[RS_WS_MAX_HEADER];
  size_t n = rs_ws_frame_header_write(out, true, RS_WS_OP_TEXT, false, h.mask, 5);
  tu_assert_hex(out, n, "81 85 37 fa 21 3d");
  free(f);
  /* The 64-bit length's top bit must be clear. */
  f = tu_hex("82 7F 80 00 00 00 00 00 00 00", &len);
  assert_int_equal(rs_ws_frame_header_parse(&h, f, len), RS_ERR_MALFORMED);
  free(f);
  /* Non-minimal length forms are accepted on receive. */
  f = tu_hex("82 7E 00 05", &len);
  assert_int_equal(rs_ws_frame_header_parse(&h, f, len), 4);
  assert_int_equal(h.payload_len, 5);
  free(f);
}

static void test_mask_pieces(void **state) {
  (void)state;
  const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
  uint8_t a[1000], b[1000];
  for (int i = 0; i < 1000; i++) a[i] = b[i] = (uint8_t)(i * 7);
  rs_ws_mask(a, 1000, key, 0);
  for (int i = 0; i < 1000; i++) assert_int_equal(a[i], (uint8_t)(b[i] ^ key[i & 3]));
  /* In pieces of odd sizes with the running offset: same result. */
  uint64_t seed = 9;
  size_t off = 0;
  while (off < 1000) {
    size_t n = 1 + tu_rand(&seed) % 37;
    if (n > 1000 - off) n = 1000 - off;
    rs_ws_mask(b + off, n, key, off);
    off += n;
  }
  assert_memory_equal(a, b, 1000);
}

static void check(uint8_t b0, uint8_t b1, bool from_client, bool rsv1, bool in_msg, int want) {
  uint8_t buf[14] = {b0, b1, 0, 126, 0, 0}; /* a 16-bit length reads 126 */
  rs_ws_frame_header h;
  assert_true(rs_ws_frame_header_parse(&h, buf, sizeof buf) > 0);
  const char *why = NULL;
  int got = rs_ws_frame_header_check(&h, from_client, rsv1, in_msg, &why);
  if (got != want) fail_msg("%02x %02x: got %d (%s), want %d", b0, b1, got, why ? why : "-", want);
  if (want) assert_non_null(why);
}

static void test_header_checks(void **state) {
  (void)state;
  check(0x81, 0x80, true, false, false, 0);                     /* masked text from a client */
  check(0x81, 0x00, true, false, false, RS_WS_CLOSE_PROTOCOL);  /* unmasked from a client */
  check(0x81, 0x80, false, false, false, RS_WS_CLOSE_PROTOCOL); /* masked from a server */
  check(0x81, 0x00, false, false, false, 0);
  check(0xA1, 0x80, true, false, false, RS_WS_CLOSE_PROTOCOL); /* RSV2 */
  check(0x91, 0x80, true, false, false, RS_WS_CLOSE_PROTOCOL); /* RSV3 */
  check(0xC1, 0x80, true, false, false, RS_WS_CLOSE_PROTOCOL); /* RSV1 without deflate */
  check(0xC1, 0x80, true, true, false, 0);                     /* RSV1 with deflate */
  check(0xC9, 0x80, true, true, false, RS_WS_CLOSE_PROTOCOL);  /* RSV1 on a ping */
  check(0xC0, 0x80, true, true, true, RS_WS_CLOSE_PROTOCOL);   /* RSV1 on a continuation */
  for (uint8_t op = 3; op <= 7; op++)
    check(0x80 | op, 0x80, true, false, false, RS_WS_CLOSE_PROTOCOL);
  for (uint8_t op = 0xB; op <= 0xF; op++)
    check(0x80 | op, 0x80, true, false, false, RS_WS_CLOSE_PROTOCOL);
  check(0x09, 0x80, true, false, false, RS_WS_CLOSE_PROTOCOL); /* fragmented ping */
  check(0x89, 0xFE, true, false, false, RS_WS_CLOSE_PROTOCOL); /* 126-byte ping */
  check(0x89, 0xFD, true, false, false, 0);                    /* 125-byte ping */
  check(0x80, 0x80, true, false, false, RS_WS_CLOSE_PROTOCOL); /* continuation, no message */
  check(0x80, 0x80, true, false, true, 0);
  check(0x01, 0x80, true, false, true, RS_WS_CLOSE_PROTOCOL); /* text inside a message */
  check(0x89, 0x80, true, false, true, 0);                    /* ping between fragments */
}

static void test_utf8(void **state) {
  (void)state;
  const struct {
    const char *hex;
    bool valid;
  } cases[] = {
      {"", true},
      {"48 65 6c 6c 6f", true},
      {"ce ba e1 bd b9 cf 83 ce bc ce b5", true}, /* κόσμε */
      {"f0 90 80 80", true},                      /* U+10000 */
      {"f4 8f bf bf", true},                      /* U+10FFFF */
      {"ef bf bf", true},                         /* U+FFFF */
      {"c0 af", false},                           /* overlong '/' */
      {"e0 80 af", false},                        /* overlong */
      {"f0 80 80 af", false},                     /* overlong */
      {"ed a0 80", false},                        /* U+D800 surrogate */
      {"ed bf bf", false},                        /* U+DFFF */
      {"f4 90 80 80", false},                     /* above U+10FFFF */
      {"f5 80 80 80", false},
      {"80", false}, /* lone continuation */
      {"ce", false}, /* truncated at the end */
      {"e1 bd", false},
      {"fe", false},
      {"ff", false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t n;
    uint8_t *p = tu_hex(cases[i].hex, &n);
    if (rs_ws_utf8_valid(p, n) != cases[i].valid) fail_msg("utf8 '%s'", cases[i].hex);
    /* Byte by byte gives the same verdict. */
    rs_ws_utf8 u;
    rs_ws_utf8_init(&u);
    uint32_t s = RS_WS_UTF8_ACCEPT;
    for (size_t k = 0; k < n; k++) s = rs_ws_utf8_feed(&u, p + k, 1);
    assert_int_equal(s == RS_WS_UTF8_ACCEPT, cases[i].valid);
    free(p);
  }
  /* Fail fast: the verdict comes at the first impossible byte, not at the end. */
  const uint8_t bad[] = {'a', 'b', 0xce, 0xba, 0xf4, 0x90, 'x', 'y', 'z'};
  rs_ws_utf8 u;
  rs_ws_utf8_init(&u);
  assert_int_not_equal(rs_ws_utf8_feed(&u, bad, 5), RS_WS_UTF8_REJECT); /* F4 may still be ok */
  assert_int_equal(rs_ws_utf8_feed(&u, bad + 5, 1), RS_WS_UTF8_REJECT); /* 90 after F4: never */
  assert_int_equal(rs_ws_utf8_feed(&u, bad + 6, 3), RS_WS_UTF8_REJECT); /* sticky */
  /* Long ASCII runs with a bad byte at every position. */
  uint8_t text[100];
  memset(text, 'a', sizeof text);
  for (size_t pos = 0; pos < sizeof text; pos++) {
    text[pos] = 0xff;
    assert_false(rs_ws_utf8_valid(text, sizeof text));
    text[pos] = 'a';
  }
  assert_true(rs_ws_utf8_valid(text, sizeof text));
}

static void test_close_codes(void **state) {
  (void)state;
  const unsigned valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                            1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
  const unsigned invalid[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535};
  for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
    assert_true(rs_ws_close_code_valid(valid[i]));
  for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
    assert_false(rs_ws_close_code_valid(invalid[i]));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_header_lengths), cmocka_unit_test(test_mask_pieces),
      cmocka_unit_test(test_header_checks),  cmocka_unit_test(test_utf8),
      cmocka_unit_test(test_close_codes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
