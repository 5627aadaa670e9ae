/* Transport URI parsing. */
#include "testutil.h"

#include <string.h>

#include "runtime/uri.h"

static void ok(const char *text, rs_uri_scheme scheme, const char *host, int port,
               const char *path) {
  rs_uri u;
  char err[256] = "";
  int rc = rs_uri_parse(text, &u, err, sizeof err);
  if (rc != 0) fail_msg("%s: %s", text, err);
  assert_int_equal(u.scheme, scheme);
  assert_string_equal(u.host, host);
  assert_int_equal(u.port, port);
  assert_string_equal(u.path, path);
}

static void bad(const char *text, const char *needle) {
  rs_uri u;
  char err[256] = "";
  assert_int_equal(rs_uri_parse(text, &u, err, sizeof err), RS_ERR_INVALID_ARGUMENT);
  if (!strstr(err, needle)) fail_msg("%s: error '%s' lacks '%s'", text, err, needle);
}

static void test_valid(void **state) {
  (void)state;
  ok("tcp://127.0.0.1:7878", RS_URI_TCP, "127.0.0.1", 7878, "/");
  ok("tcp://localhost:0", RS_URI_TCP, "localhost", 0, "/");
  ok("tls://example.com:443", RS_URI_TLS, "example.com", 443, "/");
  ok("ws://127.0.0.1:8080/rsocket", RS_URI_WS, "127.0.0.1", 8080, "/rsocket");
  ok("ws://localhost", RS_URI_WS, "localhost", 80, "/");
  ok("wss://h/p?q=1", RS_URI_WSS, "h", 443, "/p?q=1");
  ok("tcp://[::1]:9000", RS_URI_TCP, "::1", 9000, "/");
  ok("ws://[::1]/x", RS_URI_WS, "::1", 80, "/x");
  rs_uri u;
  assert_int_equal(rs_uri_parse("wss://h:1/", &u, NULL, 0), 0);
  assert_true(u.secure && u.websocket);
  assert_string_equal(rs_uri_scheme_name(u.scheme), "wss");
}

static void test_invalid(void **state) {
  (void)state;
  bad("http://x:1", "unknown scheme 'http'");
  bad("127.0.0.1:7878", "not a URI");
  bad("tcp://127.0.0.1", "needs a port");
  bad("tcp://:80", "no host");
  bad("tcp://h:99999", "bad port");
  bad("tcp://h:12x", "bad port");
  bad("tcp://h:1/path", "only meaningful");
  bad("tcp://[::1", "unterminated");
  assert_int_equal(rs_uri_parse(NULL, NULL, NULL, 0), RS_ERR_INVALID_ARGUMENT);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_valid), cmocka_unit_test(test_invalid)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
