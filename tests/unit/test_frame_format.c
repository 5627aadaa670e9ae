/* Frame descriptions for people (rs_frame_describe, rs_frame_flag_names): the exact line for
 * every frame type, previews and their escaping, and snprintf-style cutting at every size. */
#include "testutil.h"

#include <string.h>

#include "rsocket/frame.h"

static uint8_t wire[512];

/* Encodes `f` and decodes it again, as rsocket-dump and --debug see frames (flags as on the wire,
 * views into `wire`). */
static rs_frame on_wire(const rs_frame *f) {
  rs_ssize n = rs_frame_encode(f, wire, sizeof wire);
  assert_true(n > 0);
  rs_frame d;
  rs_frame_error e;
  assert_int_equal(rs_frame_decode(&d, wire, (size_t)n, &e), 0);
  return d;
}

static void describes(const rs_frame *f, size_t preview, const char *want) {
  char line[512];
  size_t n = rs_frame_describe(f, preview, line, sizeof line);
  assert_string_equal(line, want);
  assert_int_equal(n, strlen(want));
}

static void test_each_type(void **state) {
  (void)state;
  rs_frame f;
  rs_frame_init(&f, RS_FRAME_SETUP, 0);
  f.u.setup.keepalive_ms = 20000;
  f.u.setup.max_lifetime_ms = 90000;
  f.u.setup.metadata_mime = rs_bytes_str("message/x.rsocket.composite-metadata.v0");
  f.u.setup.data_mime = rs_bytes_str("text/plain");
  f.flags = RS_FLAG_RESUME | RS_FLAG_LEASE;
  f.u.setup.resume_token = rs_bytes_str("tok");
  f.data = rs_bytes_str("hello");
  rs_frame d = on_wire(&f);
  describes(&d, 16,
            "SETUP stream=0 flags=R|L version=1.0 keepalive=20000ms lifetime=90000ms token=3B "
            "metadata-mime=message/x.rsocket.composite-metadata.v0 data-mime=text/plain "
            "data=5B \"hello\"");

  rs_frame_init(&f, RS_FRAME_LEASE, 0);
  f.u.lease.ttl_ms = 2000;
  f.u.lease.number_of_requests = 7;
  d = on_wire(&f);
  describes(&d, 16, "LEASE stream=0 flags=- ttl=2000ms requests=7");

  rs_frame_init(&f, RS_FRAME_KEEPALIVE, 0);
  f.flags = RS_FLAG_RESPOND;
  f.u.keepalive.last_received_position = 123456789012ull;
  d = on_wire(&f);
  describes(&d, 16, "KEEPALIVE stream=0 flags=R position=123456789012 data=0B");

  rs_frame_init(&f, RS_FRAME_REQUEST_STREAM, 1);
  f.u.request.initial_request_n = 16;
  f.has_metadata = true;
  f.metadata = rs_bytes_str("\x05hello");
  f.data = rs_bytes_str("hi");
  d = on_wire(&f);
  describes(&d, 16,
            "REQUEST_STREAM stream=1 flags=M n=16 metadata=6B \"\\x05hello\" data=2B \"hi\"");

  rs_frame_init(&f, RS_FRAME_REQUEST_N, 3);
  f.u.request_n.n = 2048;
  d = on_wire(&f);
  describes(&d, 16, "REQUEST_N stream=3 flags=- n=2048");

  rs_frame_init(&f, RS_FRAME_CANCEL, 5);
  d = on_wire(&f);
  describes(&d, 16, "CANCEL stream=5 flags=-");

  rs_frame_init(&f, RS_FRAME_PAYLOAD, 7);
  f.flags = RS_FLAG_NEXT | RS_FLAG_COMPLETE;
  f.data = rs_bytes_str("done");
  d = on_wire(&f);
  describes(&d, 16, "PAYLOAD stream=7 flags=C|N data=4B \"done\"");

  rs_frame_init(&f, RS_FRAME_ERROR, 0);
  f.u.error.code = RS_ERROR_CONNECTION_ERROR;
  f.data = rs_bytes_str("gone");
  d = on_wire(&f);
  describes(&d, 16, "ERROR stream=0 flags=- code=CONNECTION_ERROR(0x101) message=4B \"gone\"");

  rs_frame_init(&f, RS_FRAME_METADATA_PUSH, 0);
  f.has_metadata = true;
  f.metadata = rs_bytes_str("md");
  d = on_wire(&f);
  describes(&d, 16, "METADATA_PUSH stream=0 flags=M metadata=2B \"md\"");

  rs_frame_init(&f, RS_FRAME_RESUME, 0);
  f.u.resume.token = rs_bytes_str("tok");
  f.u.resume.last_received_server_position = 10;
  f.u.resume.first_available_client_position = 20;
  d = on_wire(&f);
  describes(&d, 16,
            "RESUME stream=0 flags=- version=1.0 token=3B last-received-server=10 "
            "first-available-client=20");

  rs_frame_init(&f, RS_FRAME_RESUME_OK, 0);
  f.u.resume_ok.last_received_client_position = 42;
  d = on_wire(&f);
  describes(&d, 16, "RESUME_OK stream=0 flags=- last-received-client=42");

  rs_frame_init(&f, RS_FRAME_EXT, 9);
  f.flags = RS_FLAG_IGNORE;
  f.u.ext.extended_type = 77;
  f.data = rs_bytes_str("x");
  d = on_wire(&f);
  describes(&d, 16, "EXT stream=9 flags=I ext-type=77 data=1B \"x\"");
}

static void test_preview(void **state) {
  (void)state;
  rs_frame f;
  rs_frame_init(&f, RS_FRAME_PAYLOAD, 1);
  f.flags = RS_FLAG_NEXT;
  f.has_metadata = true;
  f.metadata = (rs_bytes){(const uint8_t *)"", 0};
  f.data = (rs_bytes){(const uint8_t *)"a\"b\\c\x00\x7f\xff"
                                       "defgh",
                      13};
  rs_frame d = on_wire(&f);
  /* Quotes, backslashes and bytes outside printable ASCII are escaped; empty metadata has none. */
  describes(
      &d, 64,
      "PAYLOAD stream=1 flags=M|N metadata=0B data=13B \"a\\x22b\\x5cc\\x00\\x7f\\xffdefgh\"");
  /* A cut preview ends in "...". */
  describes(&d, 3, "PAYLOAD stream=1 flags=M|N metadata=0B data=13B \"a\\x22b\"...");
  /* Preview 0: sizes only. */
  describes(&d, 0, "PAYLOAD stream=1 flags=M|N metadata=0B data=13B");
}

/* Like snprintf: every cap gets the line's first cap-1 bytes and a NUL, nothing past cap, and the
 * whole length back. */
static void test_cut_at_every_size(void **state) {
  (void)state;
  rs_frame f;
  rs_frame_init(&f, RS_FRAME_REQUEST_RESPONSE, 11);
  f.has_metadata = true;
  f.metadata = rs_bytes_str("route\x01");
  f.data = rs_bytes_str("some data to show");
  rs_frame d = on_wire(&f);
  char full[256];
  size_t len = rs_frame_describe(&d, 32, full, sizeof full);
  assert_true(len > 40 && len < sizeof full);
  assert_int_equal(strlen(full), len);
  assert_int_equal(rs_frame_describe(&d, 32, NULL, 0), len);
  for (size_t cap = 1; cap <= len + 2; cap++) {
    char buf[260];
    memset(buf, '#', sizeof buf);
    assert_int_equal(rs_frame_describe(&d, 32, buf, cap), len);
    size_t kept = cap - 1 < len ? cap - 1 : len;
    assert_int_equal(strlen(buf), kept);
    assert_memory_equal(buf, full, kept);
    for (size_t i = cap; i < sizeof buf; i++) assert_int_equal(buf[i], '#');
  }
  char flags[16];
  for (size_t cap = 1; cap <= 5; cap++) {
    memset(flags, '#', sizeof flags);
    assert_int_equal(rs_frame_flag_names(&d, flags, cap), 1); /* "M" */
    assert_int_equal(strlen(flags), cap > 1 ? 1 : 0);
    assert_int_equal(flags[cap], '#');
  }
}

static void flag_names(uint8_t type, uint16_t flags, const char *want) {
  rs_frame f;
  rs_frame_init(&f, type, 1);
  f.flags = flags;
  char buf[16];
  assert_int_equal(rs_frame_flag_names(&f, buf, sizeof buf), strlen(want));
  assert_string_equal(buf, want);
}

/* A bit is named as its type means it; bits a type does not use are not named. */
static void test_flag_names(void **state) {
  (void)state;
  const unsigned all = RS_FLAG_IGNORE | RS_FLAG_METADATA | 0x80u | 0x40u | 0x20u;
  flag_names(RS_FRAME_PAYLOAD, (uint16_t)all, "I|M|F|C|N");
  flag_names(RS_FRAME_REQUEST_CHANNEL, (uint16_t)all, "I|M|F|C");
  flag_names(RS_FRAME_REQUEST_RESPONSE, (uint16_t)all, "I|M|F");
  flag_names(RS_FRAME_REQUEST_FNF, RS_FLAG_FOLLOWS, "F");
  flag_names(RS_FRAME_REQUEST_STREAM, RS_FLAG_NEXT, "-");
  flag_names(RS_FRAME_SETUP, (uint16_t)all, "I|M|R|L");
  flag_names(RS_FRAME_KEEPALIVE, (uint16_t)all, "I|M|R");
  flag_names(RS_FRAME_CANCEL, (uint16_t)all, "I|M");
  flag_names(RS_FRAME_ERROR, 0, "-");
}

static void test_null_frame(void **state) {
  (void)state;
  char buf[8] = "xxxxxxx";
  assert_int_equal(rs_frame_describe(NULL, 16, buf, sizeof buf), 0);
  assert_string_equal(buf, "");
  memcpy(buf, "xxxxxxx", 8);
  assert_int_equal(rs_frame_flag_names(NULL, buf, sizeof buf), 0);
  assert_string_equal(buf, "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_each_type),         cmocka_unit_test(test_preview),
      cmocka_unit_test(test_cut_at_every_size), cmocka_unit_test(test_flag_names),
      cmocka_unit_test(test_null_frame),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
