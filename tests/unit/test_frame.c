/* Frame codec: hex vectors both ways for every frame type, and one test per validation rule. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "rsocket/frame.h"

static rs_bytes B(const char *s) {
  return rs_bytes_str(s);
}

/* Encodes `f` and checks the exact bytes; decodes them back and re-encodes to the same bytes.
 * Also checks encode_head + metadata + data == encode, the sizes, and BUFFER_TOO_SMALL with a
 * guard byte for every shorter buffer. Returns the decoded frame in *out (views into a static
 * buffer valid until the next call). */
static uint8_t last_buf[1024];

static void roundtrip(const rs_frame *f, const char *hex, rs_frame *out) {
  uint8_t buf[1024];
  rs_ssize n = rs_frame_encode(f, buf, sizeof buf);
  assert_true(n > 0);
  tu_assert_hex(buf, (size_t)n, hex);
  assert_int_equal(rs_frame_encoded_size(f), n);

  /* head + metadata + data */
  uint8_t head[600];
  rs_ssize h = rs_frame_encode_head(f, head, sizeof head);
  assert_int_equal(h, rs_frame_head_size(f));
  assert_true(h >= 6 && h <= n);
  assert_memory_equal(head, buf, (size_t)h);
  size_t md = (f->has_metadata || f->type == RS_FRAME_METADATA_PUSH) ? f->metadata.len : 0;
  assert_int_equal((size_t)h + md + f->data.len, (size_t)n);
  if (md) assert_memory_equal(buf + h, f->metadata.ptr, md);
  if (f->data.len) assert_memory_equal(buf + h + md, f->data.ptr, f->data.len);

  /* Too small: an error and nothing written past the buffer. */
  for (size_t cap = 0; cap < (size_t)n; cap++) {
    uint8_t small[1024];
    memset(small, 0xA5, sizeof small);
    assert_int_equal(rs_frame_encode(f, small, cap), RS_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(small[cap], 0xA5);
  }
  assert_int_equal(rs_frame_encode_head(f, head, (size_t)h - 1), RS_ERR_BUFFER_TOO_SMALL);

  /* Decode, compare the common fields, re-encode. */
  memcpy(last_buf, buf, (size_t)n);
  rs_frame_error e;
  assert_int_equal(rs_frame_decode(out, last_buf, (size_t)n, &e), 0);
  assert_int_equal(out->type, f->type);
  assert_int_equal(out->stream_id, f->stream_id);
  assert_int_equal(out->has_metadata, f->has_metadata || f->type == RS_FRAME_METADATA_PUSH);
  assert_int_equal(out->metadata.len, md);
  assert_int_equal(out->data.len, f->data.len);
  if (md) assert_memory_equal(out->metadata.ptr, f->metadata.ptr, md);
  if (f->data.len) assert_memory_equal(out->data.ptr, f->data.ptr, f->data.len);
  uint8_t again[1024];
  rs_ssize m = rs_frame_encode(out, again, sizeof again);
  assert_int_equal(m, n);
  assert_memory_equal(again, buf, (size_t)n);
}

/* Decodes hex and returns the frame (views into a static buffer). */
static uint8_t dec_buf[1024];
static int decode_hex(const char *hex, rs_frame *f, rs_frame_error *e) {
  size_t len;
  uint8_t *p = tu_hex(hex, &len);
  assert_true(len <= sizeof dec_buf);
  memcpy(dec_buf, p, len);
  free(p);
  memset(e, 0, sizeof *e);
  return rs_frame_decode(f, dec_buf, len, e);
}

/* ---- vectors from the reference checklist (1.18) and more ---- */

static void test_setup(void **state) {
  (void)state;
  rs_frame f, d;
  rs_frame_init(&f, RS_FRAME_SETUP, 0);
  f.u.setup.keepalive_ms = 500;
  f.u.setup.max_lifetime_ms = 1500;
  f.u.setup.metadata_mime = B("a");
  f.u.setup.data_mime = B("b");
  roundtrip(&f, "00 00 00 00 04 00 00 01 00 00 00 00 01 F4 00 00 05 DC 01 61 01 62", &d);
  assert_int_equal(d.u.setup.major, 1);
  assert_int_equal(d.u.setup.minor, 0);
  assert_int_equal(d.u.setup.keepalive_ms, 500);
  assert_int_equal(d.u.setup.max_lifetime_ms, 1500);
  tu_assert_bytes_str(d.u.setup.metadata_mime, "a");
  tu_assert_bytes_str(d.u.setup.data_mime, "b");
  assert_int_equal(d.u.setup.resume_token.len, 0);

  /* R + L with token "tok" */
  f.flags = RS_FLAG_RESUME | RS_FLAG_LEASE;
  f.u.setup.resume_token = B("tok");
  roundtrip(&f, "00 00 00 00 04 C0 00 01 00 00 00 00 01 F4 00 00 05 DC 00 03 74 6F 6B 01 61 01 62",
            &d);
  tu_assert_bytes_str(d.u.setup.resume_token, "tok");
  assert_true(d.flags & RS_FLAG_RESUME);
  assert_true(d.flags & RS_FLAG_LEASE);

  /* M with metadata "m", data "d" */
  rs_frame_init(&f, RS_FRAME_SETUP, 0);
  f.u.setup.keepalive_ms = 500;
  f.u.setup.max_lifetime_ms = 1500;
  f.u.setup.metadata_mime = B("a");
  f.u.setup.data_mime = B("b");
  f.has_metadata = true;
  f.metadata = B("m");
  f.data = B("d");
  roundtrip(&f, "00 00 00 00 05 00 00 01 00 00 00 00 01 F4 00 00 05 DC 01 61 01 62 00 00 01 6D 64",
            &d);
  tu_assert_bytes_str(d.metadata, "m");
  tu_assert_bytes_str(d.data, "d");

  /* Empty MIME strings: the 20-byte minimum. */
  rs_frame_init(&f, RS_FRAME_SETUP, 0);
  f.u.setup.keepalive_ms = 1;
  f.u.setup.max_lifetime_ms = 0x7fffffff;
  roundtrip(&f, "00000000 0400 0001 0000 00000001 7FFFFFFF 00 00", &d);

  /* The rsocket-tck SETUP: composite metadata and text/plain. */
  rs_frame_init(&f, RS_FRAME_SETUP, 0);
  f.u.setup.keepalive_ms = 500;
  f.u.setup.max_lifetime_ms = 1500;
  f.u.setup.metadata_mime = B("message/x.rsocket.composite-metadata.v0");
  f.u.setup.data_mime = B("text/plain");
  roundtrip(&f,
            "00000000 0400 0001 0000 000001F4 000005DC 27"
            "6D6573736167652F782E72736F636B65742E636F6D706F736974652D6D657461646174612E7630"
            "0A 746578742F706C61696E",
            &d);

  /* A version other than 1.0 decodes (the engine refuses it, the dump shows it). */
  rs_frame g;
  rs_frame_error e;
  assert_int_equal(decode_hex("00000000 0400 0002 0003 000001F4 000005DC 00 00", &g, &e), 0);
  assert_int_equal(g.u.setup.major, 2);
  assert_int_equal(g.u.setup.minor, 3);
}

static void test_lease(void **state) {
  (void)state;
  rs_frame f, d;
  rs_frame_init(&f, RS_FRAME_LEASE, 0);
  f.u.lease.ttl_ms = 1000;
  f.u.lease.number_of_requests = 10;
  roundtrip(&f, "00 00 00 00 08 00 00 00 03 E8 00 00 00 0A", &d);
  assert_int_equal(d.u.lease.ttl_ms, 1000);
  assert_int_equal(d.u.lease.number_of_requests, 10);
  assert_false(d.has_metadata);
  /* With metadata: no length field, metadata is the rest. */
  f.has_metadata = true;
  f.metadata = B("lm");
  roundtrip(&f, "00 00 00 00 09 00 00 00 03 E8 00 00 00 0A 6C 6D", &d);
  tu_assert_bytes_str(d.metadata, "lm");
  /* TTL 0 and count 0 are legal: they stop requests. */
  rs_frame_init(&f, RS_FRAME_LEASE, 0);
  roundtrip(&f, "00000000 0800 00000000 00000000", &d);
}

static void test_keepalive(void **state) {
  (void)state;
  rs_frame f, d;
  rs_frame_init(&f, RS_FRAME_KEEPALIVE, 0);
  f.flags = RS_FLAG_RESPOND;
  roundtrip(&f, "00 00 00 00 0C 80 00 00 00 00 00 00 00 00", &d);
  assert_true(d.flags & RS_FLAG_RESPOND);
  rs_frame_init(&f, RS_FRAME_KEEPALIVE, 0);
  f.data = B("x");
  roundtrip(&f, "00 00 00 00 0C 00 00 00 00 00 00 00 00 00 78", &d);
  tu_assert_bytes_str(d.data, "x");
  f.u.keepalive.last_received_position = 0x7fffffffffffffffull;
  roundtrip(&f, "00 00 00 00 0C 00 7F FF FF FF FF FF FF FF 78", &d);
  assert_true(d.u.keepalive.last_received_position == 0x7fffffffffffffffull);
}

static void test_request_response_and_fnf(void **state) {
  (void)state;
  rs_frame f, d;
  rs_frame_init(&f, RS_FRAME_REQUEST_RESPONSE, 1);
  f.has_metadata = true;
  f.metadata = B("m");
  f.data = B("d");
  roundtrip(&f, "00 00 00 01 11 00 00 00 01 6D 64", &d);
  tu_assert_bytes_str(d.metadata, "m");
  rs_frame_init(&f, RS_FRAME_REQUEST_RESPONSE, 1);
  f.data = B("d");
  roundtrip(&f, "00 00 00 01 10 00 64", &d);
  assert_false(d.has_metadata);
  /* Follows flag (first fragment). */
  f.flags = RS_FLAG_FOLLOWS;
  roundtrip(&f, "00 00 00 01 10 80 64", &d);
  assert_true(d.flags & RS_FLAG_FOLLOWS);

  rs_frame_init(&f, RS_FRAME_REQUEST_FNF, 3);
  f.data = B("x");
  roundtrip(&f, "00 00 00 03 14 00 78", &d);
  assert_int_equal(d.stream_id, 3);
  /* Nothing at all: a 6-byte request with empty data. */
  rs_frame_init(&f, RS_FRAME_REQUEST_FNF, 0x7fffffff);
  roundtrip(&f, "7F FF FF FF 14 00", &d);
}

static void test_request_stream_and_channel(void **state) {
  (void)state;
  rs_frame f, d;
  rs_frame_init(&f, RS_FRAME_REQUEST_STREAM, 5);
  f.u.request.initial_request_n = 0x7fffffff;
  f.data = B("s");
  roundtrip(&f, "00 00 00 05 18 00 7F FF FF FF 73", &d);
  assert_int_equal(d.u.request.initial_request_n, 0x7fffffff);
  f.has_metadata = true;
  f.metadata = B("");
  roundtrip(&f, "00 00 00 05 19 00 7F FF FF FF 00 00 00 73", &d);
  assert_true(d.has_metadata);
  assert_int_equal(d.metadata.len, 0);

  rs_frame_init(&f, RS_FRAME_REQUEST_CHANNEL, 7);
  f.u.request.initial_request_n = 1;
  f.flags = RS_FLAG_COMPLETE;
  f.data = B("c");
  roundtrip(&f, "00 00 00 07 1C 40 00 00 00 01 63", &d);
  assert_true(d.flags & RS_FLAG_COMPLETE);
  assert_int_equal(d.u.request.initial_request_n, 1);
}

static void test_request_n_cancel(void **state) {
  (void)state;
  rs_frame f, d;
  rs_frame_init(&f, RS_FRAME_REQUEST_N, 5);
  f.u.request_n.n = 10;
  roundtrip(&f, "00 00 00 05 20 00 00 00 00 0A", &d);
  assert_int_equal(d.u.request_n.n, 10);
  rs_frame_init(&f, RS_FRAME_CANCEL, 5);
  roundtrip(&f, "00 00 00 05 24 00", &d);
}

static void test_payload(void **state) {
  (void)state;
  rs_frame f, d;
  rs_frame_init(&f, RS_FRAME_PAYLOAD, 1);
  f.flags = RS_FLAG_NEXT | RS_FLAG_COMPLETE;
  f.data = B("ok");
  roundtrip(&f, "00 00 00 01 28 60 6F 6B", &d);
  assert_int_equal(d.flags & (RS_FLAG_NEXT | RS_FLAG_COMPLETE), RS_FLAG_NEXT | RS_FLAG_COMPLETE);
  rs_frame_init(&f, RS_FRAME_PAYLOAD, 1);
  f.flags = RS_FLAG_COMPLETE;
  roundtrip(&f, "00 00 00 01 28 40", &d);
  rs_frame_init(&f, RS_FRAME_PAYLOAD, 1);
  f.flags = RS_FLAG_NEXT;
  f.has_metadata = true;
  f.metadata = B("m");
  roundtrip(&f, "00 00 00 01 29 20 00 00 01 6D", &d);
  tu_assert_bytes_str(d.metadata, "m");
  assert_int_equal(d.data.len, 0);
  /* Empty-but-present metadata is kept apart from no metadata. */
  f.metadata = B("");
  f.data = B("d");
  roundtrip(&f, "00 00 00 01 29 20 00 00 00 64", &d);
  assert_true(d.has_metadata);
  /* F + N: a non-final fragment. */
  rs_frame_init(&f, RS_FRAME_PAYLOAD, 1);
  f.flags = RS_FLAG_FOLLOWS | RS_FLAG_NEXT;
  f.data = B("frag");
  roundtrip(&f, "00 00 00 01 28 A0 66 72 61 67", &d);
  assert_true(d.flags & RS_FLAG_FOLLOWS);
}

static void test_error(void **state) {
  (void)state;
  rs_frame f, d;
  rs_frame_init(&f, RS_FRAME_ERROR, 1);
  f.u.error.code = RS_ERROR_APPLICATION_ERROR;
  f.data = B("e");
  roundtrip(&f, "00 00 00 01 2C 00 00 00 02 01 65", &d);
  assert_int_equal(d.u.error.code, RS_ERROR_APPLICATION_ERROR);
  tu_assert_bytes_str(d.data, "e");
  rs_frame_init(&f, RS_FRAME_ERROR, 0);
  f.u.error.code = RS_ERROR_INVALID_SETUP;
  f.data = B("bad");
  roundtrip(&f, "00 00 00 00 2C 00 00 00 00 01 62 61 64", &d);
  /* Application-defined codes up to 0xFFFFFFFE. */
  rs_frame_init(&f, RS_FRAME_ERROR, 9);
  f.u.error.code = 0xFFFFFFFEu;
  roundtrip(&f, "00 00 00 09 2C 00 FF FF FF FE", &d);
  assert_string_equal(rs_error_code_name(d.u.error.code), "APPLICATION_DEFINED");
}

static void test_metadata_push(void **state) {
  (void)state;
  rs_frame f, d;
  rs_frame_init(&f, RS_FRAME_METADATA_PUSH, 0);
  f.metadata = B("md");
  roundtrip(&f, "00 00 00 00 31 00 6D 64", &d);
  tu_assert_bytes_str(d.metadata, "md");
  assert_true(d.has_metadata);
}

static void test_resume(void **state) {
  (void)state;
  rs_frame f, d;
  rs_frame_init(&f, RS_FRAME_RESUME, 0);
  f.u.resume.token = B("tok");
  f.u.resume.last_received_server_position = 0x10;
  f.u.resume.first_available_client_position = 0x20;
  roundtrip(&f,
            "00 00 00 00 34 00 00 01 00 00 00 03 74 6F 6B 00 00 00 00 00 00 00 10 00 00 00 00 00 "
            "00 00 20",
            &d);
  tu_assert_bytes_str(d.u.resume.token, "tok");
  assert_int_equal(d.u.resume.last_received_server_position, 0x10);
  assert_int_equal(d.u.resume.first_available_client_position, 0x20);
  f.u.resume.last_received_server_position = 0x7fffffffffffffffull;
  roundtrip(&f, "00000000 3400 0001 0000 0003 746F6B 7FFFFFFFFFFFFFFF 0000000000000020", &d);

  rs_frame_init(&f, RS_FRAME_RESUME_OK, 0);
  f.u.resume_ok.last_received_client_position = 0x20;
  roundtrip(&f, "00 00 00 00 38 00 00 00 00 00 00 00 00 20", &d);
  assert_int_equal(d.u.resume_ok.last_received_client_position, 0x20);
}

static void test_ext(void **state) {
  (void)state;
  rs_frame f, d;
  rs_frame_init(&f, RS_FRAME_EXT, 1);
  f.flags = RS_FLAG_IGNORE;
  f.u.ext.extended_type = 1;
  roundtrip(&f, "00 00 00 01 FE 00 00 00 00 01", &d);
  assert_true(d.flags & RS_FLAG_IGNORE);
  assert_int_equal(d.u.ext.extended_type, 1);
  rs_frame_init(&f, RS_FRAME_EXT, 0);
  f.u.ext.extended_type = 0x7fffffff;
  f.has_metadata = true;
  f.metadata = B("m");
  f.data = B("d");
  roundtrip(&f, "00 00 00 00 FD 00 7F FF FF FF 00 00 01 6D 64", &d);
}

static void test_unknown_flags_ignored_and_not_sent(void **state) {
  (void)state;
  rs_frame f;
  rs_frame_error e;
  /* CANCEL with every flag bit set decodes; the bits are kept as received... */
  assert_int_equal(decode_hex("00 00 00 05 27 FF", &f, &e), 0);
  assert_int_equal(f.type, RS_FRAME_CANCEL);
  assert_int_equal(f.flags, 0x3ff);
  /* ...and never re-encoded except I. */
  uint8_t buf[16];
  assert_int_equal(rs_frame_encode(&f, buf, sizeof buf), 6);
  tu_assert_hex(buf, 6, "00 00 00 05 26 00");
  /* ERROR with M set: no metadata section on ERROR, the bit is ignored. */
  assert_int_equal(decode_hex("00 00 00 01 2D 00 00 00 02 01 65", &f, &e), 0);
  assert_false(f.has_metadata);
  tu_assert_bytes_str(f.data, "e");
}

static void test_names(void **state) {
  (void)state;
  assert_string_equal(rs_frame_type_name(RS_FRAME_REQUEST_STREAM), "REQUEST_STREAM");
  assert_string_equal(rs_frame_type_name(RS_FRAME_EXT), "EXT");
  assert_string_equal(rs_frame_type_name(0x20), "UNKNOWN");
  assert_string_equal(rs_frame_type_name(0), "UNKNOWN");
  assert_string_equal(rs_error_code_name(RS_ERROR_CONNECTION_CLOSE), "CONNECTION_CLOSE");
  assert_string_equal(rs_error_code_name(RS_ERROR_INVALID), "INVALID");
  assert_string_equal(rs_error_code_name(0x300), "UNKNOWN");
  assert_string_equal(rs_error_code_name(0x301), "APPLICATION_DEFINED");
  assert_string_equal(rs_error_code_name(0xFFFFFFFF), "RESERVED_FOR_EXTENSION");
  assert_true(rs_frame_type_is_resumable(RS_FRAME_PAYLOAD));
  assert_true(rs_frame_type_is_resumable(RS_FRAME_ERROR));
  assert_false(rs_frame_type_is_resumable(RS_FRAME_KEEPALIVE));
  assert_false(rs_frame_type_is_resumable(RS_FRAME_METADATA_PUSH));
  uint8_t l[3];
  rs_frame_put_length(l, 0xFFFFFF);
  tu_assert_hex(l, 3, "FF FF FF");
  uint32_t sid;
  uint8_t type;
  uint16_t flags;
  assert_int_equal(rs_frame_decode_header(l, 3, &sid, &type, &flags), RS_ERR_FRAME_TOO_SHORT);
  const uint8_t h[] = {0x80, 0, 0, 5, 0x28, 0x60};
  assert_int_equal(rs_frame_decode_header(h, 6, &sid, &type, &flags), 0);
  assert_int_equal(sid, 5);
  assert_int_equal(type, RS_FRAME_PAYLOAD);
  assert_int_equal(flags, 0x060);
}

/* ---- negative tests: one per validation rule ---- */

typedef struct neg {
  const char *what;
  const char *hex;
  int err;
  uint32_t code;
  size_t offset;
} neg;

static const neg negatives[] = {
    {"shorter than the header", "00 00 00 01 28", RS_ERR_FRAME_TOO_SHORT, RS_ERROR_CONNECTION_ERROR,
     0},
    {"empty", "", RS_ERR_FRAME_TOO_SHORT, RS_ERROR_CONNECTION_ERROR, 0},
    {"reserved type 0", "00 00 00 01 00 00", RS_ERR_UNKNOWN_FRAME_TYPE, RS_ERROR_CONNECTION_ERROR,
     4},
    {"unassigned type 0x10", "00 00 00 01 40 00", RS_ERR_UNKNOWN_FRAME_TYPE,
     RS_ERROR_CONNECTION_ERROR, 4},
    {"stream id top bit", "80 00 00 01 24 00", RS_ERR_BAD_STREAM_ID, RS_ERROR_CONNECTION_ERROR, 0},
    {"SETUP on a stream", "00 00 00 01 04 00 00 01 00 00 00 00 01 F4 00 00 05 DC 00 00",
     RS_ERR_BAD_STREAM_ID, RS_ERROR_INVALID_SETUP, 0},
    {"KEEPALIVE on a stream", "00 00 00 03 0C 80 00 00 00 00 00 00 00 00", RS_ERR_BAD_STREAM_ID,
     RS_ERROR_CONNECTION_ERROR, 0},
    {"METADATA_PUSH on a stream", "00 00 00 03 31 00 6D", RS_ERR_BAD_STREAM_ID,
     RS_ERROR_CONNECTION_ERROR, 0},
    {"LEASE on a stream", "00 00 00 02 08 00 00 00 03 E8 00 00 00 0A", RS_ERR_BAD_STREAM_ID,
     RS_ERROR_CONNECTION_ERROR, 0},
    {"RESUME_OK on a stream", "00 00 00 02 38 00 00 00 00 00 00 00 00 20", RS_ERR_BAD_STREAM_ID,
     RS_ERROR_CONNECTION_ERROR, 0},
    {"REQUEST_RESPONSE on stream 0", "00 00 00 00 10 00 64", RS_ERR_BAD_STREAM_ID,
     RS_ERROR_CONNECTION_ERROR, 0},
    {"PAYLOAD on stream 0", "00 00 00 00 28 40", RS_ERR_BAD_STREAM_ID, RS_ERROR_CONNECTION_ERROR,
     0},
    {"CANCEL on stream 0", "00 00 00 00 24 00", RS_ERR_BAD_STREAM_ID, RS_ERROR_CONNECTION_ERROR, 0},
    {"SETUP too short", "00 00 00 00 04 00 00 01 00 00 00 00 01 F4", RS_ERR_FRAME_TOO_SHORT,
     RS_ERROR_INVALID_SETUP, 14},
    {"SETUP keepalive 0", "00 00 00 00 04 00 00 01 00 00 00 00 00 00 00 00 05 DC 00 00",
     RS_ERR_BAD_VALUE, RS_ERROR_INVALID_SETUP, 10},
    {"SETUP lifetime 0", "00 00 00 00 04 00 00 01 00 00 00 00 01 F4 00 00 00 00 00 00",
     RS_ERR_BAD_VALUE, RS_ERROR_INVALID_SETUP, 14},
    {"SETUP keepalive top bit", "00 00 00 00 04 00 00 01 00 00 80 00 01 F4 00 00 05 DC 00 00",
     RS_ERR_BAD_VALUE, RS_ERROR_INVALID_SETUP, 10},
    {"SETUP token past end", "00 00 00 00 04 80 00 01 00 00 00 00 01 F4 00 00 05 DC 00 09 74",
     RS_ERR_BAD_LENGTH, RS_ERROR_INVALID_SETUP, 18},
    {"SETUP MIME past end", "00 00 00 00 04 00 00 01 00 00 00 00 01 F4 00 00 05 DC 05 61 62",
     RS_ERR_BAD_LENGTH, RS_ERROR_INVALID_SETUP, 18},
    {"SETUP data MIME missing", "00 00 00 00 04 00 00 01 00 00 00 00 01 F4 00 00 05 DC 01 61",
     RS_ERR_FRAME_TOO_SHORT, RS_ERROR_INVALID_SETUP, 20},
    {"SETUP metadata past end",
     "00 00 00 00 05 00 00 01 00 00 00 00 01 F4 00 00 05 DC 00 00 00 00 05 6D", RS_ERR_BAD_LENGTH,
     RS_ERROR_INVALID_SETUP, 20},
    {"LEASE too short", "00 00 00 00 08 00 00 00 03 E8", RS_ERR_FRAME_TOO_SHORT,
     RS_ERROR_CONNECTION_ERROR, 10},
    {"LEASE ttl top bit", "00 00 00 00 08 00 80 00 03 E8 00 00 00 0A", RS_ERR_BAD_VALUE,
     RS_ERROR_CONNECTION_ERROR, 6},
    {"LEASE count top bit", "00 00 00 00 08 00 00 00 03 E8 80 00 00 0A", RS_ERR_BAD_VALUE,
     RS_ERROR_CONNECTION_ERROR, 10},
    {"LEASE trailing bytes without M", "00 00 00 00 08 00 00 00 03 E8 00 00 00 0A 6D",
     RS_ERR_BAD_LENGTH, RS_ERROR_CONNECTION_ERROR, 14},
    {"KEEPALIVE too short", "00 00 00 00 0C 80 00 00 00 00 00 00 00", RS_ERR_FRAME_TOO_SHORT,
     RS_ERROR_CONNECTION_ERROR, 13},
    {"KEEPALIVE position top bit", "00 00 00 00 0C 80 80 00 00 00 00 00 00 00", RS_ERR_BAD_VALUE,
     RS_ERROR_CONNECTION_ERROR, 6},
    {"metadata length cut short", "00 00 00 01 11 00 00 00", RS_ERR_FRAME_TOO_SHORT,
     RS_ERROR_CONNECTION_ERROR, 6},
    {"metadata length past end", "00 00 00 01 11 00 00 00 05 6D 64", RS_ERR_BAD_LENGTH,
     RS_ERROR_CONNECTION_ERROR, 6},
    {"REQUEST_STREAM too short", "00 00 00 05 18 00 00 00 01", RS_ERR_FRAME_TOO_SHORT,
     RS_ERROR_CONNECTION_ERROR, 9},
    {"REQUEST_STREAM n 0", "00 00 00 05 18 00 00 00 00 00 73", RS_ERR_BAD_VALUE, RS_ERROR_INVALID,
     6},
    {"REQUEST_CHANNEL n top bit", "00 00 00 07 1C 00 80 00 00 01 63", RS_ERR_BAD_VALUE,
     RS_ERROR_INVALID, 6},
    {"REQUEST_STREAM metadata past end", "00 00 00 05 19 00 00 00 00 01 00 00 09 6D",
     RS_ERR_BAD_LENGTH, RS_ERROR_CONNECTION_ERROR, 10},
    {"REQUEST_N too short", "00 00 00 05 20 00 00 00 00", RS_ERR_FRAME_TOO_SHORT,
     RS_ERROR_CONNECTION_ERROR, 9},
    {"REQUEST_N too long", "00 00 00 05 20 00 00 00 00 0A 00", RS_ERR_BAD_LENGTH,
     RS_ERROR_CONNECTION_ERROR, 10},
    {"REQUEST_N n 0", "00 00 00 05 20 00 00 00 00 00", RS_ERR_BAD_VALUE, RS_ERROR_CONNECTION_ERROR,
     6},
    {"REQUEST_N top bit", "00 00 00 05 20 00 80 00 00 01", RS_ERR_BAD_VALUE,
     RS_ERROR_CONNECTION_ERROR, 6},
    {"CANCEL too long", "00 00 00 05 24 00 00", RS_ERR_BAD_LENGTH, RS_ERROR_CONNECTION_ERROR, 6},
    {"PAYLOAD with neither N nor C", "00 00 00 01 28 00 6F 6B", RS_ERR_BAD_FLAGS,
     RS_ERROR_CONNECTION_ERROR, 4},
    {"ERROR too short", "00 00 00 01 2C 00 00 00 02", RS_ERR_FRAME_TOO_SHORT,
     RS_ERROR_CONNECTION_ERROR, 9},
    {"METADATA_PUSH without M", "00 00 00 00 30 00 6D 64", RS_ERR_BAD_FLAGS,
     RS_ERROR_CONNECTION_ERROR, 4},
    {"RESUME token past end",
     "00 00 00 00 34 00 00 01 00 00 00 09 74 6F 6B 00 00 00 00 00 00 00 "
     "10 00 00 00 00 00 00 00 20",
     RS_ERR_BAD_LENGTH, RS_ERROR_INVALID_SETUP, 10},
    {"RESUME too short", "00 00 00 00 34 00 00 01 00 00 00 00", RS_ERR_FRAME_TOO_SHORT,
     RS_ERROR_INVALID_SETUP, 12},
    {"RESUME position top bit",
     "00 00 00 00 34 00 00 01 00 00 00 00 80 00 00 00 00 00 00 10 00 00 00 00 00 00 00 20",
     RS_ERR_BAD_VALUE, RS_ERROR_INVALID_SETUP, 12},
    {"RESUME_OK too long", "00 00 00 00 38 00 00 00 00 00 00 00 00 20 00", RS_ERR_BAD_LENGTH,
     RS_ERROR_CONNECTION_ERROR, 14},
    {"RESUME_OK position top bit", "00 00 00 00 38 00 80 00 00 00 00 00 00 20", RS_ERR_BAD_VALUE,
     RS_ERROR_CONNECTION_ERROR, 6},
    {"EXT type 0", "00 00 00 01 FE 00 00 00 00 00", RS_ERR_BAD_VALUE, RS_ERROR_CONNECTION_ERROR, 6},
    {"EXT too short", "00 00 00 01 FE 00 00 00", RS_ERR_FRAME_TOO_SHORT, RS_ERROR_CONNECTION_ERROR,
     8},
};

static void test_negative(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof negatives / sizeof negatives[0]; i++) {
    const neg *t = &negatives[i];
    rs_frame f;
    rs_frame_error e;
    int rc = decode_hex(t->hex, &f, &e);
    if (rc != t->err || e.err != t->err || e.code != t->code || e.offset != t->offset ||
        !e.message || !*e.message) {
      fail_msg("%s: got %s code=0x%x offset=%zu (%s), want %s code=0x%x offset=%zu", t->what,
               rs_error_name(rc), e.code, e.offset, e.message ? e.message : "-",
               rs_error_name(t->err), t->code, t->offset);
    }
  }
}

static void test_header_fields_kept_on_ignorable_errors(void **state) {
  (void)state;
  rs_frame f;
  rs_frame_error e;
  /* Unknown type with I: the caller sees type, stream and the I flag to ignore it. */
  assert_int_equal(decode_hex("00 00 00 03 42 00 01 02", &f, &e), RS_ERR_UNKNOWN_FRAME_TYPE);
  assert_int_equal(f.type, 0x10);
  assert_int_equal(f.stream_id, 3);
  assert_true(f.flags & RS_FLAG_IGNORE);
  /* PAYLOAD on stream 0 (the spec says ignore): header kept. */
  assert_int_equal(decode_hex("00 00 00 00 28 40", &f, &e), RS_ERR_BAD_STREAM_ID);
  assert_int_equal(f.type, RS_FRAME_PAYLOAD);
  assert_int_equal(f.stream_id, 0);
}

static void test_payload_fragment_continuation_accepted(void **state) {
  (void)state;
  rs_frame f;
  rs_frame_error e;
  /* F set, neither N nor C: a continuation fragment, accepted. */
  assert_int_equal(decode_hex("00 00 00 01 28 80 61", &f, &e), 0);
  assert_true(f.flags & RS_FLAG_FOLLOWS);
}

static void test_encode_rejects_invalid(void **state) {
  (void)state;
  uint8_t buf[64];
  rs_frame f;
  rs_frame_init(&f, RS_FRAME_REQUEST_STREAM, 1);
  assert_int_equal(rs_frame_encode(&f, buf, sizeof buf), RS_ERR_INVALID_ARGUMENT); /* n 0 */
  f.u.request.initial_request_n = 0x80000000u;
  assert_int_equal(rs_frame_encode(&f, buf, sizeof buf), RS_ERR_INVALID_ARGUMENT);
  rs_frame_init(&f, RS_FRAME_PAYLOAD, 1); /* no N, C or F */
  assert_int_equal(rs_frame_encode(&f, buf, sizeof buf), RS_ERR_INVALID_ARGUMENT);
  rs_frame_init(&f, RS_FRAME_PAYLOAD, 0);
  f.flags = RS_FLAG_NEXT;
  assert_int_equal(rs_frame_encode(&f, buf, sizeof buf), RS_ERR_INVALID_ARGUMENT);
  rs_frame_init(&f, RS_FRAME_KEEPALIVE, 1);
  assert_int_equal(rs_frame_encode(&f, buf, sizeof buf), RS_ERR_INVALID_ARGUMENT);
  rs_frame_init(&f, RS_FRAME_KEEPALIVE, 0);
  f.has_metadata = true;
  assert_int_equal(rs_frame_encode(&f, buf, sizeof buf), RS_ERR_INVALID_ARGUMENT);
  rs_frame_init(&f, RS_FRAME_CANCEL, 3);
  f.data = B("x");
  assert_int_equal(rs_frame_encode(&f, buf, sizeof buf), RS_ERR_INVALID_ARGUMENT);
  rs_frame_init(&f, RS_FRAME_SETUP, 0); /* keepalive 0 */
  assert_int_equal(rs_frame_encode(&f, buf, sizeof buf), RS_ERR_INVALID_ARGUMENT);
  f.u.setup.keepalive_ms = f.u.setup.max_lifetime_ms = 1;
  f.u.setup.resume_token = B("t"); /* a token without R */
  assert_int_equal(rs_frame_encode(&f, buf, sizeof buf), RS_ERR_INVALID_ARGUMENT);
  rs_frame_init(&f, RS_FRAME_ERROR, 1);
  f.stream_id = 0x80000000u;
  assert_int_equal(rs_frame_encode(&f, buf, sizeof buf), RS_ERR_INVALID_ARGUMENT);
  rs_frame_init(&f, RS_FRAME_REQUEST_N, 1);
  f.u.request_n.n = 0;
  assert_int_equal(rs_frame_encode(&f, buf, sizeof buf), RS_ERR_INVALID_ARGUMENT);
  f.type = 0x20;
  assert_int_equal(rs_frame_encode(&f, buf, sizeof buf), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_frame_encode(NULL, buf, sizeof buf), RS_ERR_INVALID_ARGUMENT);
  rs_frame g;
  assert_int_equal(rs_frame_decode(&g, NULL, 5, NULL), RS_ERR_INVALID_ARGUMENT);
}

static void test_size_limits(void **state) {
  (void)state;
  /* A payload that would make the frame exceed 16,777,215 bytes is refused. */
  size_t big = RS_FRAME_MAX_SIZE;
  uint8_t *data = calloc(1, big);
  assert_non_null(data);
  rs_frame f;
  rs_frame_init(&f, RS_FRAME_PAYLOAD, 1);
  f.flags = RS_FLAG_NEXT;
  f.data.ptr = data;
  f.data.len = big - 6; /* exactly the limit */
  assert_int_equal(rs_frame_encoded_size(&f), (rs_ssize)RS_FRAME_MAX_SIZE);
  f.data.len = big - 5;
  assert_int_equal(rs_frame_encoded_size(&f), RS_ERR_INVALID_ARGUMENT);
  /* Decode refuses frames over the limit. */
  rs_frame g;
  rs_frame_error e;
  uint8_t *frame = calloc(1, big + 1);
  frame[3] = 1;
  frame[4] = 0x28;
  frame[5] = 0x20;
  assert_int_equal(rs_frame_decode(&g, frame, big + 1, &e), RS_ERR_FRAME_TOO_LARGE);
  assert_int_equal(rs_frame_decode(&g, frame, big, &e), 0);
  assert_int_equal(g.data.len, big - 6);
  free(frame);
  free(data);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_setup),
      cmocka_unit_test(test_lease),
      cmocka_unit_test(test_keepalive),
      cmocka_unit_test(test_request_response_and_fnf),
      cmocka_unit_test(test_request_stream_and_channel),
      cmocka_unit_test(test_request_n_cancel),
      cmocka_unit_test(test_payload),
      cmocka_unit_test(test_error),
      cmocka_unit_test(test_metadata_push),
      cmocka_unit_test(test_resume),
      cmocka_unit_test(test_ext),
      cmocka_unit_test(test_unknown_flags_ignored_and_not_sent),
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_negative),
      cmocka_unit_test(test_header_fields_kept_on_ignorable_errors),
      cmocka_unit_test(test_payload_fragment_continuation_accepted),
      cmocka_unit_test(test_encode_rejects_invalid),
      cmocka_unit_test(test_size_limits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
