/* Transport URI parsing (rsocket/uri.h, public). */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include "rsocket/uri.h"

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

/* Each scheme's name and its secure / websocket bits. */
static void test_schemes(void **state) {
  (void)state;
  static const struct {
    const char *text;
    rs_uri_scheme scheme;
    bool secure, websocket;
  } cases[] = {{"tcp://h:1", RS_URI_TCP, false, false},
               {"tls://h:1", RS_URI_TLS, true, false},
               {"ws://h:1", RS_URI_WS, false, true},
               {"wss://h:1", RS_URI_WSS, true, true}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    rs_uri u;
    assert_int_equal(rs_uri_parse(cases[i].text, &u, NULL, 0), 0);
    assert_int_equal(u.scheme, cases[i].scheme);
    assert_int_equal(u.secure, cases[i].secure);
    assert_int_equal(u.websocket, cases[i].websocket);
    const char *name = rs_uri_scheme_name(u.scheme);
    assert_int_equal(strncmp(cases[i].text, name, strlen(name)), 0);
    assert_int_equal(cases[i].text[strlen(name)], ':');
  }
  assert_string_equal(rs_uri_scheme_name((rs_uri_scheme)42), "?");
  bad("TCP://h:1", "unknown scheme 'TCP'"); /* schemes are lower case */
}

/* What the header promises about paths, ports and the sizes of host and path. */
static void test_limits(void **state) {
  (void)state;
  ok("tcp://h:1/", RS_URI_TCP, "h", 1, "/");
  ok("ws://h:65535/a/b?c=d#e", RS_URI_WS, "h", 65535, "/a/b?c=d#e");
  ok("wss://[2001:db8::1]:8443/", RS_URI_WSS, "2001:db8::1", 8443, "/");
  bad("tcp://h:65536", "bad port");
  bad("tcp://h:-1", "bad port");
  bad("ws://h?x", "bad path");
  bad("ws://h#x", "unexpected characters");

  char text[RS_URI_PATH_MAX + 64];
  char host[RS_URI_HOST_MAX + 1];
  memset(host, 'a', sizeof host);
  host[RS_URI_HOST_MAX - 1] = '\0'; /* the longest host that fits */
  snprintf(text, sizeof text, "tcp://%s:1", host);
  ok(text, RS_URI_TCP, host, 1, "/");
  host[RS_URI_HOST_MAX - 1] = 'a';
  host[RS_URI_HOST_MAX] = '\0';
  snprintf(text, sizeof text, "tcp://%s:1", host);
  bad(text, "host name too long");

  char path[RS_URI_PATH_MAX + 1];
  memset(path, 'p', sizeof path);
  path[0] = '/';
  path[RS_URI_PATH_MAX - 1] = '\0'; /* the longest path that fits */
  snprintf(text, sizeof text, "ws://h%s", path);
  ok(text, RS_URI_WS, "h", 80, path);
  path[RS_URI_PATH_MAX - 1] = 'p';
  path[RS_URI_PATH_MAX] = '\0';
  snprintf(text, sizeof text, "ws://h%s", path);
  bad(text, "path too long");
}

/* The reason is cut to errlen with its NUL; no buffer at all is fine too. */
static void test_error_buffer(void **state) {
  (void)state;
  rs_uri u;
  char err[8];
  memset(err, '#', sizeof err);
  assert_int_equal(rs_uri_parse("http://x:1", &u, err, 5), RS_ERR_INVALID_ARGUMENT);
  assert_string_equal(err, "unkn");
  assert_int_equal(err[5], '#');
  assert_int_equal(rs_uri_parse("http://x:1", &u, NULL, 100), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_uri_parse("http://x:1", &u, err, 0), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_uri_parse("tcp://h:1", NULL, err, sizeof err), RS_ERR_INVALID_ARGUMENT);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_valid), cmocka_unit_test(test_invalid),
                                     cmocka_unit_test(test_schemes), cmocka_unit_test(test_limits),
                                     cmocka_unit_test(test_error_buffer)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
