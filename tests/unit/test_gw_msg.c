/* The gateway's client protocol (src/rsocket/gateway.h): parsing, validation, formatting. jansson
 * is the oracle: whatever we format must load, and our validator must agree with it. */
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsocket/gateway.h"

static rs_gw_parser P;

static int setup(void **state) {
  (void)state;
  rs_gw_limits l;
  rs_gw_limits_default(&l);
  return rs_gw_parser_init(&P, NULL, &l);
}

static int teardown(void **state) {
  (void)state;
  rs_gw_parser_free(&P);
  return 0;
}

/* Numbers out of a double's or an int64's range, and "\u0000" in an object key, are JSON;
 * jansson alone refuses them. */
static bool jansson_limit(const json_error_t *e) {
  return strstr(e->text, "overflow") || strstr(e->text, "too big") ||
         strstr(e->text, "NUL byte in object key");
}

/* Asserts that out[0..n) is JSON (jansson) and returns it loaded (caller decrefs). */
static json_t *load_ok(const uint8_t *out, size_t n) {
  json_error_t e;
  json_t *j = json_loadb((const char *)out, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
  if (!j) fail_msg("output is not JSON (%s): %.*s", e.text, (int)n, (const char *)out);
  return j;
}

static rs_gw_cmd parse_ok(const char *msg) {
  rs_gw_cmd c;
  rs_gw_error e;
  int rc = rs_gw_parse(&P, (const uint8_t *)msg, strlen(msg), &c, &e);
  if (rc) fail_msg("%s: %s", msg, e.message);
  return c;
}

/* Parses a message that must fail with a message containing `needle`; `id` is the JSON text of
 * the id the error must carry (NULL: none). */
static void parse_bad_n(const char *msg, size_t len, const char *needle, const char *id) {
  rs_gw_cmd c;
  rs_gw_error e;
  assert_int_equal(rs_gw_parse(&P, (const uint8_t *)msg, len, &c, &e), RS_ERR_MALFORMED);
  assert_string_equal(e.code, "BAD_REQUEST");
  if (!strstr(e.message, needle)) fail_msg("%s: '%s' lacks '%s'", msg, e.message, needle);
  uint8_t out[512];
  rs_gw_buf b;
  rs_gw_buf_init_fixed(&b, out, sizeof out);
  assert_int_equal(rs_gw_format_rej(&b, &e.id, e.code, rs_bytes_str(e.message)), 0);
  json_t *j = load_ok(out, b.len);
  json_t *jid = json_object_get(j, "id");
  if (!id)
    assert_true(json_is_null(jid));
  else {
    json_error_t je;
    json_t *want = json_loads(id, JSON_DECODE_ANY, &je);
    assert_non_null(want);
    if (!json_equal(want, jid)) fail_msg("%s: rej id differs from %s", msg, id);
    json_decref(want);
  }
  assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
                      e.message);
  json_decref(j);
}

static void parse_bad(const char *msg, const char *needle, const char *id) {
  parse_bad_n(msg, strlen(msg), needle, id);
}

static void assert_span(rs_bytes b, const char *s) {
  tu_assert_bytes_str(b, s);
}

static void test_types(void **state) {
  (void)state;
  rs_gw_cmd c =
      parse_ok("{\"type\":\"req\",\"id\":1,\"route\":\"rooms.post\",\"data\":{\"a\":[1]}}");
  assert_int_equal(c.type, RS_GW_REQ);
  assert_int_equal(c.id.kind, RS_GW_ID_INT);
  assert_int_equal(c.id.num, 1);
  assert_int_equal(c.route_len, 10);
  assert_memory_equal(c.route, "rooms.post", 10);
  assert_span(c.data, "{\"a\":[1]}");
  assert_false(c.has_n);

  c = parse_ok("{\"type\":\"sub\",\"id\":2,\"route\":\"r\",\"data\":\"x\"}");
  assert_int_equal(c.type, RS_GW_SUB);
  assert_false(c.has_n);
  assert_span(c.data, "\"x\"");
  c = parse_ok("{\"type\":\"sub\",\"id\":2,\"route\":\"r\",\"n\":16}");
  assert_true(c.has_n);
  assert_int_equal(c.n, 16);
  assert_int_equal(c.data.len, 0); /* absent: null */

  c = parse_ok("{\"type\":\"more\",\"id\":2,\"n\":5}");
  assert_int_equal(c.type, RS_GW_MORE);
  assert_int_equal(c.n, 5);
  c = parse_ok("{\"type\":\"unsub\",\"id\":\"s\"}");
  assert_int_equal(c.type, RS_GW_UNSUB);
  assert_int_equal(c.id.kind, RS_GW_ID_STR);
  assert_span(c.id.text, "s");
  c = parse_ok("{\"type\":\"chan\",\"id\":3,\"route\":\"c\",\"data\":[],\"n\":1}");
  assert_int_equal(c.type, RS_GW_CHAN);
  assert_int_equal(c.n, 1);
  assert_span(c.data, "[]");
  c = parse_ok("{\"type\":\"send\",\"id\":3,\"data\":null}");
  assert_int_equal(c.type, RS_GW_SEND);
  assert_span(c.data, "null");
  c = parse_ok("{\"type\":\"done\",\"id\":3}");
  assert_int_equal(c.type, RS_GW_DONE);
  c = parse_ok("{\"type\":\"fnf\",\"route\":\"log\",\"data\":true}");
  assert_int_equal(c.type, RS_GW_FNF);
  assert_int_equal(c.id.kind, RS_GW_ID_NONE);
  c = parse_ok("{\"type\":\"fnf\",\"route\":\"log\",\"id\":7}");
  assert_int_equal(c.id.kind, RS_GW_ID_INT);
  c = parse_ok("{\"type\":\"ping\",\"id\":9}");
  assert_int_equal(c.type, RS_GW_PING);
  c = parse_ok("{\"type\":\"hello\",\"token\":\"a.b.c\"}");
  assert_int_equal(c.type, RS_GW_HELLO);
  assert_span(c.token, "a.b.c");
  assert_int_equal(c.id.kind, RS_GW_ID_NONE);
}

/* hello: a token is required, a string without escapes, at most RS_GW_TOKEN_MAX bytes. */
static void test_hello(void **state) {
  (void)state;
  static const char *const bad[] = {
      "{\"type\":\"hello\"}",
      "{\"type\":\"hello\",\"token\":1}",
      "{\"type\":\"hello\",\"token\":\"\"}",
      "{\"type\":\"hello\",\"token\":\"a\\u002eb\"}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    rs_gw_cmd c;
    rs_gw_error e;
    assert_int_equal(rs_gw_parse(&P, (const uint8_t *)bad[i], strlen(bad[i]), &c, &e),
                     RS_ERR_MALFORMED);
    assert_string_equal(e.code, "BAD_REQUEST");
  }
  size_t n = RS_GW_TOKEN_MAX + 1;
  char *big = malloc(n + 64);
  int k = sprintf(big, "{\"type\":\"hello\",\"token\":\"");
  memset(big + k, 'a', n);
  strcpy(big + k + n, "\"}");
  rs_gw_cmd c;
  rs_gw_error e;
  assert_int_equal(rs_gw_parse(&P, (const uint8_t *)big, strlen(big), &c, &e), RS_ERR_MALFORMED);
  big[k + n - 1] = '"', big[k + n] = '}', big[k + n + 1] = 0; /* exactly the maximum */
  assert_int_equal(rs_gw_parse(&P, (const uint8_t *)big, strlen(big), &c, &e), 0);
  assert_int_equal(c.token.len, RS_GW_TOKEN_MAX);
  free(big);
  rs_gw_buf b;
  rs_gw_buf_init(&b, NULL);
  assert_int_equal(rs_gw_format_welcome(&b, "00ab", rs_bytes_str("ada \"l\"")), 0);
  assert_int_equal(
      b.len, strlen("{\"type\":\"welcome\",\"session\":\"00ab\",\"user\":\"ada \\\"l\\\"\"}"));
  assert_memory_equal(
      b.ptr, "{\"type\":\"welcome\",\"session\":\"00ab\",\"user\":\"ada \\\"l\\\"\"}", b.len);
  b.len = 0;
  assert_int_equal(rs_gw_format_push(&b, &P, rs_bytes_str("push.all"), rs_bytes_str("[1]")), 0);
  assert_memory_equal(b.ptr, "{\"type\":\"ind\",\"route\":\"push.all\",\"data\":[1]}", b.len);
  b.len = 0;
  assert_int_equal(rs_gw_format_push(&b, &P, rs_bytes_str("push.all"), rs_bytes_str("hi")), 0);
  assert_memory_equal(b.ptr, "{\"type\":\"ind\",\"route\":\"push.all\",\"data\":\"hi\"}", b.len);
  rs_gw_buf_free(&b);
}

/* Fields a type does not use are ignored, as are unknown ones; keys are compared unescaped. */
static void test_fields(void **state) {
  (void)state;
  rs_gw_cmd c = parse_ok("{\"x\":{\"type\":1},\"type\":\"ping\",\"id\":1,\"route\":5,\"n\":0}");
  assert_int_equal(c.type, RS_GW_PING);
  assert_int_equal(c.route_len, 0);
  assert_false(c.has_n);
  c = parse_ok("{\"t\\u0079pe\":\"p\\u0069ng\",\"id\":1}");
  assert_int_equal(c.type, RS_GW_PING);
  c = parse_ok(" \t\r\n{ \"type\" : \"req\" ,\n\"id\"\t:\r1 , \"route\" : \"a\" , \"data\" : [ 1 , "
               "{ } ] } \n");
  assert_span(c.data, "[ 1 , { } ]");
  c = parse_ok("{\"type\":\"req\",\"id\":1,\"route\":\"a\\/b\\u00e9\\ud83d\\ude00\"}");
  assert_int_equal(c.route_len, 3 + 2 + 4);
  assert_memory_equal(c.route, "a/b\xc3\xa9\xf0\x9f\x98\x80", 9);
  /* Duplicates of unknown fields are ignored like the fields themselves. */
  parse_ok("{\"type\":\"ping\",\"id\":1,\"z\":1,\"z\":2}");
}

/* Every refusal: the message, words its error must contain, and the id the rej must carry. */
static const struct {
  const char *msg, *needle, *id;
} bad_messages[] = {
    {"", "empty", NULL},
    {"   ", "empty", NULL},
    {"{", "malformed", NULL},
    {"{\"type\":\"ping\",\"id\":1", "malformed", NULL},
    {"{\"type\":\"ping\",\"id\":1}x", "malformed", NULL},
    {"{\"type\":\"ping\",\"id\":1}{}", "malformed", NULL},
    {"[1]", "not a JSON object", NULL},
    {"\"x\"", "not a JSON object", NULL},
    {"42", "not a JSON object", NULL},
    {"{\"id\":1}", "missing field: type", "1"},
    {"{\"type\":1,\"id\":2}", "bad type", "2"},
    {"{\"type\":\"nope\",\"id\":\"a\\\"b\"}", "unknown type", "\"a\\\"b\""},
    {"{\"type\":\"REQ\",\"id\":1}", "unknown type", "1"},
    {"{\"type\":\"req\",\"route\":\"r\"}", "missing field: id", NULL},
    {"{\"type\":\"req\",\"id\":1}", "missing field: route", "1"},
    {"{\"type\":\"more\",\"id\":1}", "missing field: n", "1"},
    {"{\"type\":\"fnf\",\"data\":1}", "missing field: route", NULL},
    {"{\"type\":\"req\",\"id\":1,\"route\":1}", "bad route: not a string", "1"},
    {"{\"type\":\"req\",\"id\":1,\"route\":\"\"}", "bad route: empty", "1"},
    {"{\"type\":\"ping\",\"type\":\"ping\",\"id\":1}", "duplicate", NULL},
    {"{\"type\":\"ping\",\"id\":1,\"i\\u0064\":1}", "duplicate", NULL}, /* id twice: neither */
    {"{\"id\":5,\"type\":\"ping\",\"type\":\"ping\"}", "duplicate", "5"},
    {"{\"id\":\"x\",\"data\":1,\"data\":2,\"type\":\"send\"}", "duplicate", "\"x\""},
    {"{\"type\":\"req\",\"id\":1,\"route\":\"r\",\"data\":1,\"data\":2}", "duplicate", "1"},
    {"{\"type\":\"ping\",\"id\":1.5}", "bad id", NULL},
    {"{\"type\":\"ping\",\"id\":1e3}", "bad id", NULL},
    {"{\"type\":\"ping\",\"id\":9223372036854775808}", "bad id", NULL},
    {"{\"type\":\"ping\",\"id\":null}", "bad id", NULL},
    {"{\"type\":\"ping\",\"id\":{}}", "bad id", NULL},
    {"{\"type\":\"ping\",\"id\":true}", "bad id", NULL},
};

static void test_errors(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof bad_messages / sizeof *bad_messages; i++)
    parse_bad(bad_messages[i].msg, bad_messages[i].needle, bad_messages[i].id);
}

static void test_ids(void **state) {
  (void)state;
  rs_gw_cmd c = parse_ok("{\"type\":\"ping\",\"id\":9223372036854775807}");
  assert_true(c.id.num == INT64_MAX);
  c = parse_ok("{\"type\":\"ping\",\"id\":-9223372036854775808}");
  assert_true(c.id.num == INT64_MIN);
  c = parse_ok("{\"type\":\"ping\",\"id\":-0}");
  assert_true(c.id.num == 0);
  assert_span(c.id.text, "-0"); /* echoed as sent */
  c = parse_ok("{\"type\":\"ping\",\"id\":\"\"}");
  assert_int_equal(c.id.kind, RS_GW_ID_STR);
  assert_int_equal(c.id.text.len, 0);
  char msg[600];
  snprintf(msg, sizeof msg, "{\"type\":\"ping\",\"id\":\"%0255d\"}", 0);
  parse_ok(msg);
  snprintf(msg, sizeof msg, "{\"type\":\"ping\",\"id\":\"%0256d\"}", 0);
  parse_bad(msg, "at most 255", NULL);
  /* Escapes are echoed as sent, and the echo is the same string. */
  const char *m = "{\"type\":\"ping\",\"id\":\"q\\\"\\\\\\n\\u0000\\ud83d\\ude00\"}";
  c = parse_ok(m);
  uint8_t out[256];
  rs_gw_buf b;
  rs_gw_buf_init_fixed(&b, out, sizeof out);
  assert_int_equal(rs_gw_format_pong(&b, &c.id), 0);
  json_t *j = load_ok(out, b.len), *in = load_ok((const uint8_t *)m, strlen(m));
  assert_true(json_equal(json_object_get(j, "id"), json_object_get(in, "id")));
  assert_string_equal(json_string_value(json_object_get(j, "type")), "pong");
  json_decref(j);
  json_decref(in);
}

static void test_n_bounds(void **state) {
  (void)state;
  assert_int_equal(parse_ok("{\"type\":\"more\",\"id\":1,\"n\":2147483647}").n, 2147483647u);
  assert_int_equal(parse_ok("{\"type\":\"more\",\"id\":1,\"n\":1}").n, 1);
  const char *bad[] = {"0",   "-1",    "2147483648", "1.0",
                       "1e2", "\"5\"", "null",       "99999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char msg[128];
    snprintf(msg, sizeof msg, "{\"type\":\"more\",\"id\":4,\"n\":%s}", bad[i]);
    parse_bad(msg, "bad n", "4");
    snprintf(msg, sizeof msg, "{\"type\":\"sub\",\"id\":4,\"route\":\"r\",\"n\":%s}", bad[i]);
    parse_bad(msg, "bad n", "4");
  }
}

static void test_route_bounds(void **state) {
  (void)state;
  char msg[2048];
  snprintf(msg, sizeof msg, "{\"type\":\"req\",\"id\":1,\"route\":\"%0255d\"}", 0);
  assert_int_equal(parse_ok(msg).route_len, 255);
  snprintf(msg, sizeof msg, "{\"type\":\"req\",\"id\":1,\"route\":\"%0256d\"}", 0);
  parse_bad(msg, "longer than 255", "1");
  /* The limit is on unescaped bytes: 255 x "\u0041" is 255 bytes. */
  int k = snprintf(msg, sizeof msg, "{\"type\":\"req\",\"id\":1,\"route\":\"");
  for (int i = 0; i < 255; i++) k += snprintf(msg + k, sizeof msg - (size_t)k, "\\u0041");
  snprintf(msg + k, sizeof msg - (size_t)k, "\"}");
  assert_int_equal(parse_ok(msg).route_len, 255);
}

/* Nesting: 64 levels with the message object counted, 65 refused. */
static void test_depth(void **state) {
  (void)state;
  char msg[400];
  for (int depth = 63; depth <= 64; depth++) {
    int k = snprintf(msg, sizeof msg, "{\"type\":\"send\",\"id\":1,\"data\":");
    for (int i = 0; i < depth; i++) msg[k++] = '[';
    for (int i = 0; i < depth; i++) msg[k++] = ']';
    snprintf(msg + k, sizeof msg - (size_t)k, "}");
    if (depth == 63)
      parse_ok(msg);
    else
      parse_bad(msg, "nested too deep", NULL);
  }
}

static void test_tokens_limit(void **state) {
  (void)state;
  rs_gw_parser small;
  rs_gw_limits l = {64, 8};
  assert_int_equal(rs_gw_parser_init(&small, NULL, &l), 0);
  rs_gw_cmd c;
  rs_gw_error e;
  const char *ok = "{\"type\":\"ping\",\"id\":1}"; /* 5 tokens */
  assert_int_equal(rs_gw_parse(&small, (const uint8_t *)ok, strlen(ok), &c, &e), 0);
  const char *big = "{\"type\":\"send\",\"id\":1,\"data\":[1,2,3,4]}";
  assert_int_equal(rs_gw_parse(&small, (const uint8_t *)big, strlen(big), &c, &e),
                   RS_ERR_MALFORMED);
  assert_string_equal(e.message, "too many JSON tokens");
  rs_gw_parser_free(&small);
  l.max_tokens = 0;
  assert_int_equal(rs_gw_parser_init(&small, NULL, &l), RS_ERR_INVALID_ARGUMENT);
  tu_alloc a;
  tu_alloc_init(&a, 1);
  assert_int_equal(rs_gw_parser_init(&small, &a.mem, NULL), RS_ERR_NOMEM);
}

static bool valid(const char *s, size_t n) {
  return rs_gw_json_check(&P, (const uint8_t *)s, n, NULL, NULL, NULL) == 0;
}
#define VALID(lit) valid(lit, sizeof lit - 1)

static void test_grammar(void **state) {
  (void)state;
  const char *good[] = {"0",
                        "-0",
                        "1e400",
                        "-1.5E-3",
                        "0.0",
                        "1E+2",
                        "true",
                        "false",
                        "null",
                        "\"\"",
                        "[]",
                        "{}",
                        " [ ] ",
                        "\"\\u0000\"",
                        "\"\\ud800\\udc00\"",
                        "\"\xc3\xa9\"",
                        "{\"a\":{\"b\":[null,{}]}}",
                        "[1,\"a\",true]"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++)
    if (!valid(good[i], strlen(good[i]))) fail_msg("refused valid JSON: %s", good[i]);
  const char *bad[] = {"01",
                       "1.",
                       ".5",
                       "-",
                       "+1",
                       "1e",
                       "1e+",
                       "0x1",
                       "tru",
                       "truex",
                       "nul",
                       "NaN",
                       "Infinity",
                       "[1,]",
                       "[,1]",
                       "[1 2]",
                       "{\"a\" 1}",
                       "{\"a\":}",
                       "{\"a\"}",
                       "{1:2}",
                       "{\"a\":1,}",
                       "{,}",
                       "[\"a\":1]",
                       "{\"a\":1:2}",
                       "\"\\ud800\"",
                       "\"\\udc00\"",
                       "\"\\ud800\\u0041\"",
                       "\"\\x\"",
                       "\"\\u12\"",
                       "\"a\tb\"",
                       "\"\x01\"",
                       "\"\xff\"",
                       "\"\xc3\"",
                       "\"\xed\xa0\x80\"",
                       "[1]]",
                       "[[1]",
                       "'a'",
                       "[1] 2",
                       "1 2",
                       "{\"a\":1}}",
                       "\xef\xbb\xbf{}",
                       "[-]",
                       "[--1]",
                       "[1.e1]",
                       "[01]",
                       "[1e1.5]",
                       "[\"a\\\"]"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (valid(bad[i], strlen(bad[i]))) fail_msg("accepted invalid JSON: %s", bad[i]);
  /* jansson refuses this key (test_differential allows it); JSON does not. */
  assert_true(VALID("{\"\\u0000\":1}"));
  assert_false(VALID("{}\0"));
  assert_false(VALID("[\"a\0\"]"));
  assert_false(VALID("[1,\0]"));
  parse_bad_n("{\"type\":\"ping\",\"id\":1}\0", 23, "malformed", NULL);
  parse_bad("{\"type\":\"ping\",\"id\":1,\"x\":\"\xff\"}", "UTF-8", NULL);
  parse_bad("{\"type\":\"ping\",\"id\":1,\"x\":\"\\udc00\"}", "surrogate", NULL);
  parse_bad("{\"type\":\"ping\",\"id\":1,\"x\":01}", "number", NULL);
}

static void format_check(rs_gw_buf *b, int rc, const char *want) {
  assert_int_equal(rc, 0);
  if (b->len != strlen(want) || memcmp(b->ptr, want, b->len))
    fail_msg("got %.*s want %s", (int)b->len, (const char *)b->ptr, want);
  json_decref(load_ok(b->ptr, b->len));
  b->len = 0;
}

static void test_format(void **state) {
  (void)state;
  rs_gw_buf b;
  rs_gw_buf_init(&b, NULL);
  rs_gw_id i7 = {RS_GW_ID_INT, 7, rs_bytes_str("7")}, s = {RS_GW_ID_STR, 0, rs_bytes_str("a\\\"")};
  format_check(&b, rs_gw_format_data(&b, false, &i7, rs_bytes_str("{\"x\":1}")),
               "{\"type\":\"cfm\",\"id\":7,\"data\":{\"x\":1}}");
  format_check(&b, rs_gw_format_data(&b, true, &s, (rs_bytes){NULL, 0}),
               "{\"type\":\"ind\",\"id\":\"a\\\"\",\"data\":null}");
  format_check(&b, rs_gw_format_end(&b, &i7), "{\"type\":\"end\",\"id\":7}");
  format_check(&b, rs_gw_format_pong(&b, &s), "{\"type\":\"pong\",\"id\":\"a\\\"\"}");
  format_check(&b, rs_gw_format_rej(&b, NULL, "NO_ROUTE", rs_bytes_str("q\"\\\n\x01\x7f\xc3\xa9")),
               "{\"type\":\"rej\",\"id\":null,\"error\":{\"code\":\"NO_ROUTE\",\"message\":"
               "\"q\\\"\\\\\\u000a\\u0001\\u007f\xc3\xa9\"}}");
  format_check(&b, rs_gw_format_rej(&b, &i7, "APPLICATION_ERROR", rs_bytes_str("a\xff\xc3")),
               "{\"type\":\"rej\",\"id\":7,\"error\":{\"code\":\"APPLICATION_ERROR\",\"message\":"
               "\"a\\ufffd\\ufffd\"}}");
  /* Backend payloads: JSON as is, other text as a string, other bytes as base64, empty as null. */
  format_check(&b, rs_gw_format_payload(&b, &P, true, &i7, rs_bytes_str(" [1, 2] ")),
               "{\"type\":\"ind\",\"id\":7,\"data\": [1, 2] }");
  format_check(&b, rs_gw_format_payload(&b, &P, false, &i7, rs_bytes_str("42")),
               "{\"type\":\"cfm\",\"id\":7,\"data\":42}");
  format_check(&b, rs_gw_format_payload(&b, &P, false, &i7, rs_bytes_str("hello \"w\"")),
               "{\"type\":\"cfm\",\"id\":7,\"data\":\"hello \\\"w\\\"\"}");
  format_check(&b, rs_gw_format_payload(&b, &P, false, &i7, rs_bytes_str("{\"a\":")),
               "{\"type\":\"cfm\",\"id\":7,\"data\":\"{\\\"a\\\":\"}");
  format_check(&b, rs_gw_format_payload(&b, &P, false, &i7, (rs_bytes){NULL, 0}),
               "{\"type\":\"cfm\",\"id\":7,\"data\":null}");
  const uint8_t bin[] = {0xff, 0x00, 0x10, 0xfe};
  format_check(&b, rs_gw_format_payload(&b, &P, false, &i7, (rs_bytes){bin, 4}),
               "{\"type\":\"cfm\",\"id\":7,\"data_b64\":\"/wAQ/g==\"}");
  format_check(&b, rs_gw_format_payload(&b, &P, false, &i7, (rs_bytes){bin, 3}),
               "{\"type\":\"cfm\",\"id\":7,\"data_b64\":\"/wAQ\"}");
  format_check(&b, rs_gw_format_payload(&b, &P, false, &i7, (rs_bytes){bin, 2}),
               "{\"type\":\"cfm\",\"id\":7,\"data_b64\":\"/wA=\"}");
  rs_gw_buf_free(&b);
}

/* A fixed buffer that is too small leaves nothing behind; a failed allocation neither. */
static void test_format_limits(void **state) {
  (void)state;
  uint8_t out[16];
  rs_gw_buf b;
  rs_gw_buf_init_fixed(&b, out, sizeof out);
  rs_gw_id i7 = {RS_GW_ID_INT, 7, rs_bytes_str("7")};
  assert_int_equal(rs_gw_format_end(&b, &i7), RS_ERR_BUFFER_TOO_SMALL);
  assert_int_equal(b.len, 0);
  tu_alloc a;
  tu_alloc_init(&a, 1);
  rs_gw_buf_init(&b, &a.mem);
  assert_int_equal(rs_gw_format_end(&b, &i7), RS_ERR_NOMEM);
  assert_int_equal(b.len, 0);
  rs_gw_buf_free(&b);
  assert_int_equal(a.live, 0);
}

/* Differential: our validator and jansson agree on many random and mutated inputs. The documented
 * differences: numbers beyond a double or an int64 and "\u0000" in a key (JSON; jansson refuses
 * them), a NUL byte outside
 * strings (jansson skips it, we refuse it), nesting deeper
 * than our limit (kept above jansson's here by the limits below, except jansson's own 2048). */
static const char *const seeds[] = {
    "{\"type\":\"req\",\"id\":1,\"route\":\"a.b\",\"data\":{\"k\":[1,-2.5e3,true,null,\"s\\n\"]}}",
    "[0,-0,1.25,\"\\ud83d\\ude00\",\"\xc3\xa9\",{},[],{\"a\":{\"b\":false}}]",
    "{\"a\":\"\\u00e9\\\"\\\\\\/\\b\\f\\n\\r\\t\"}",
    " 123 ",
    "\"str\"",
};

static unsigned long rng_state = 12345;
static unsigned rnd(unsigned n) {
  rng_state = rng_state * 6364136223846793005ul + 1442695040888963407ul;
  return (unsigned)(rng_state >> 33) % n;
}

static size_t mutate(uint8_t *buf, size_t len, size_t cap) {
  static const char pool[] = "{}[]\",:\\u0123456789eE.+-tfnrl \t\n\x00\x01\x7f\x80\xc3\xa9\xed\xff";
  for (unsigned k = 1 + rnd(4); k--;) {
    unsigned op = rnd(4), at = len ? rnd((unsigned)len) : 0;
    uint8_t c = (uint8_t)pool[rnd(sizeof pool - 1)];
    if (op == 0 && len)
      buf[at] = c;
    else if (op == 1 && len < cap)
      memmove(buf + at + 1, buf + at, len - at), buf[at] = c, len++;
    else if (op == 2 && len)
      memmove(buf + at, buf + at + 1, len - at - 1), len--;
    else if (op == 3)
      len = at;
  }
  return len;
}

/* jansson lets a NUL byte outside strings pass as a delimiter or the end ("5\0 " and
 * "[1\0,2]" load); JSON has no such rule and we refuse them. True when the input is JSON without
 * its NUL bytes, which explains jansson's acceptance. */
static bool jansson_nul_quirk(rs_gw_parser *p, const uint8_t *buf, size_t len) {
  uint8_t strip[512];
  size_t n = 0;
  for (size_t i = 0; i < len && n < sizeof strip; i++)
    if (buf[i]) strip[n++] = buf[i];
  return n < len && rs_gw_json_check(p, strip, n, NULL, NULL, NULL) == 0;
}

static void test_differential(void **state) {
  (void)state;
  rs_gw_parser big;
  rs_gw_limits l = {1000, 1 << 16};
  assert_int_equal(rs_gw_parser_init(&big, NULL, &l), 0);
  long agree_valid = 0, agree_invalid = 0;
  for (int iter = 0; iter < 200000; iter++) {
    uint8_t buf[512];
    const char *seed = seeds[rnd(sizeof seeds / sizeof *seeds)];
    size_t len = strlen(seed);
    memcpy(buf, seed, len);
    len = mutate(buf, len, sizeof buf);
    json_error_t e;
    json_t *j = json_loadb((const char *)buf, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    bool ours = rs_gw_json_check(&big, buf, len, NULL, NULL, NULL) == 0;
    if (j) json_decref(j);
    if (!j && ours && jansson_limit(&e)) continue;
    if (j && !ours && jansson_nul_quirk(&big, buf, len)) continue;
    if (ours != (j != NULL)) {
      for (size_t i = 0; i < len; i++) fprintf(stderr, "%02x ", buf[i]);
      fail_msg("disagree (ours %d, jansson %s): [%.*s]", ours, j ? "ok" : e.text, (int)len, buf);
    }
    if (ours)
      agree_valid++;
    else
      agree_invalid++;
    /* Whatever the bytes, embedding them as a payload gives JSON. */
    rs_gw_buf b;
    rs_gw_buf_init(&b, NULL);
    rs_gw_id id = {RS_GW_ID_INT, 1, rs_bytes_str("1")};
    assert_int_equal(rs_gw_format_payload(&b, &big, true, &id, (rs_bytes){buf, len}), 0);
    j = json_loadb((const char *)b.ptr, b.len, JSON_ALLOW_NUL, &e);
    if (!j && !jansson_limit(&e)) fail_msg("payload output not JSON: %s", e.text);
    json_decref(j);
    rs_gw_buf_free(&b);
  }
  /* Both sides were exercised: the mutations are neither all fatal nor all harmless. */
  assert_true(agree_valid > 1000 && agree_invalid > 1000);
  rs_gw_parser_free(&big);
}

static void test_compact(void **state) {
  (void)state;
  static const struct {
    const char *in, *out;
  } cases[] = {
      {"{\"a\": [1, 2,\n 3]}", "{\"a\":[1,2,3]}"},
      {" \"a b\\\" c\" ", "\"a b\\\" c\""},
      {"{\"k\" :\t\"\\\\\" , \"j\":null}", "{\"k\":\"\\\\\",\"j\":null}"},
      {"[]", "[]"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const uint8_t *in = (const uint8_t *)cases[i].in;
    size_t n = strlen(cases[i].in);
    uint8_t out[64];
    size_t m = rs_gw_json_compact(in, n, out);
    assert_int_equal(m, strlen(cases[i].out));
    assert_memory_equal(out, cases[i].out, m);
    assert_true(rs_gw_json_is_compact(out, m));
    assert_int_equal(rs_gw_json_is_compact(in, n), strcmp(cases[i].in, cases[i].out) == 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_types),         cmocka_unit_test(test_hello),
      cmocka_unit_test(test_compact),       cmocka_unit_test(test_fields),
      cmocka_unit_test(test_errors),        cmocka_unit_test(test_ids),
      cmocka_unit_test(test_n_bounds),      cmocka_unit_test(test_route_bounds),
      cmocka_unit_test(test_depth),         cmocka_unit_test(test_tokens_limit),
      cmocka_unit_test(test_grammar),       cmocka_unit_test(test_format),
      cmocka_unit_test(test_format_limits), cmocka_unit_test(test_differential),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
