/* WebSocket opening handshake: accept key, request parsing and checks, responses, client side. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsocket/ws.h"

static const char *GOOD = "GET /rsocket HTTP/1.1\r\n"
                          "Host: 127.0.0.1:8080\r\n"
                          "Upgrade: websocket\r\n"
                          "Connection: keep-alive, Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Sec-WebSocket-Version: 13\r\n"
                          "Origin: http://localhost\r\n"
                          "Sec-WebSocket-Protocol: chat, rsocket\r\n"
                          "\r\n";

static void test_accept_key(void **state) {
  (void)state;
  char out[29];
  assert_int_equal(rs_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out), 0);
  assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_parse_good(void **state) {
  (void)state;
  rs_ws_request r;
  size_t len = strlen(GOOD);
  /* With pipelined bytes after the head: they are not consumed. */
  char buf[1024];
  snprintf(buf, sizeof buf, "%s\x82\x80XXXX", GOOD);
  assert_int_equal(rs_ws_request_parse(&r, (const uint8_t *)buf, strlen(buf)), (rs_ssize)len);
  tu_assert_bytes_str(r.method, "GET");
  tu_assert_bytes_str(r.path, "/rsocket");
  tu_assert_bytes_str(r.host, "127.0.0.1:8080");
  tu_assert_bytes_str(r.origin, "http://localhost");
  tu_assert_bytes_str(r.protocols, "chat, rsocket");
  assert_true(r.upgrade_websocket && r.connection_upgrade);
  assert_true(rs_ws_header_has_token(r.protocols, "rsocket"));
  assert_false(rs_ws_header_has_token(r.protocols, "rsock"));
  const char *why = NULL;
  assert_int_equal(rs_ws_request_check(&r, &why), 0);

  char resp[512];
  rs_ssize n = rs_ws_response_101(resp, sizeof resp, &r, "rsocket", NULL);
  assert_true(n > 0);
  assert_non_null(strstr(resp, "HTTP/1.1 101 Switching Protocols\r\n"));
  assert_non_null(strstr(resp, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
  assert_non_null(strstr(resp, "Sec-WebSocket-Protocol: rsocket\r\n"));
  assert_int_equal(rs_ws_response_101(resp, 20, &r, NULL, NULL), RS_ERR_BUFFER_TOO_SMALL);
  /* Every prefix is incomplete. */
  for (size_t k = 0; k < len; k++)
    assert_int_equal(rs_ws_request_parse(&r, (const uint8_t *)GOOD, k), 0);
  /* Every prefix is incomplete. */
  for (size_t k = 0; k < len; k++)
    assert_int_equal(rs_ws_request_parse(&r, (const uint8_t *)GOOD, k), 0);
}

/* Replaces `from` with `to` in GOOD and checks the verdict. */
static void verdict(const char *from, const char *to, int want_status, const char *reason_part) {
  char buf[2048];
  const char *at = strstr(GOOD, from);
  assert_non_null(at);
  snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - GOOD), GOOD, to, at + strlen(from));
  rs_ws_request r;
  rs_ssize n = rs_ws_request_parse(&r, (const uint8_t *)buf, strlen(buf));
  if (want_status == -1) {
    assert_int_equal(n, RS_ERR_MALFORMED);
    return;
  }
  assert_true(n > 0);
  const char *why = NULL;
  int st = rs_ws_request_check(&r, &why);
  if (st != want_status || (want_status && (!why || !strstr(why, reason_part))))
    fail_msg("'%s'→'%s': status %d (%s), want %d (%s)", from, to, st, why ? why : "-", want_status,
             reason_part);
}

static void test_bad_requests(void **state) {
  (void)state;
  verdict("GET ", "POST ", 400, "GET");
  verdict("HTTP/1.1\r\nHost", "HTTP/1.0\r\nHost", 400, "HTTP/1.1");
  verdict("Host: 127.0.0.1:8080\r\n", "", 400, "Host");
  verdict("Upgrade: websocket\r\n", "", 400, "Upgrade");
  verdict("Upgrade: websocket", "Upgrade: h2c", 400, "Upgrade");
  verdict("Connection: keep-alive, Upgrade", "Connection: keep-alive", 400, "Connection");
  verdict("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", 400, "Key");
  verdict("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ==", 400, "Key");         /* 10 bytes */
  verdict("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZR==", 400, "Key"); /* stray bits */
  verdict("dGhlIHNhbXBsZSBub25jZQ==\r\n",
          "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", 400,
          "Key");
  verdict("Sec-WebSocket-Version: 13\r\n", "", 400, "Version");
  verdict("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8", 426, "version");
  /* Header names and tokens are case-insensitive. */
  verdict("Upgrade: websocket", "uPGRADE: WebSocket", 0, "");
  verdict("Connection: keep-alive, Upgrade", "CONNECTION: upgrade", 0, "");
  /* Malformed heads. */
  verdict("GET /rsocket HTTP/1.1", "GET /rsocket", -1, "");
  verdict("GET /rsocket HTTP/1.1", "GET  HTTP/1.1", -1, "");
  verdict("Host: 127.0.0.1:8080\r\n", "Host 127.0.0.1\r\n", -1, "");
  verdict("Host: 127.0.0.1:8080\r\n", "Host: a\r\n folded\r\n", -1, "");
  verdict("Host: 127.0.0.1:8080\r\n", "Ho st: a\r\n", -1, "");
  verdict("Host: 127.0.0.1:8080", "Host: a\x01", -1, "");
}

static void test_limits(void **state) {
  (void)state;
  /* Too many headers. */
  char *buf = malloc(RS_WS_MAX_HANDSHAKE * 2);
  size_t n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\n");
  for (int i = 0; i < 65; i++) n += (size_t)sprintf(buf + n, "X-H%d: v\r\n", i);
  n += (size_t)sprintf(buf + n, "\r\n");
  rs_ws_request r;
  assert_int_equal(rs_ws_request_parse(&r, (const uint8_t *)buf, n), RS_ERR_MALFORMED);
  /* A head that never ends refuses at the size limit. */
  memset(buf, 'a', RS_WS_MAX_HANDSHAKE);
  assert_int_equal(rs_ws_request_parse(&r, (const uint8_t *)buf, RS_WS_MAX_HANDSHAKE - 1), 0);
  assert_int_equal(rs_ws_request_parse(&r, (const uint8_t *)buf, RS_WS_MAX_HANDSHAKE),
                   RS_ERR_MALFORMED);
  free(buf);
}

static void test_error_responses(void **state) {
  (void)state;
  char out[512];
  rs_ssize n = rs_ws_response_error(out, sizeof out, 426, "only version 13");
  assert_true(n > 0);
  assert_non_null(strstr(out, "HTTP/1.1 426 Upgrade Required\r\n"));
  assert_non_null(strstr(out, "Sec-WebSocket-Version: 13\r\n"));
  assert_non_null(strstr(out, "\r\n\r\nonly version 13\n"));
  n = rs_ws_response_error(out, sizeof out, 400, "missing Host header");
  assert_non_null(strstr(out, "HTTP/1.1 400 Bad Request\r\n"));
  assert_null(strstr(out, "Sec-WebSocket-Version"));
  assert_non_null(strstr(out, "Content-Length: 20\r\n"));
}

static void test_client_side(void **state) {
  (void)state;
  char key[25];
  assert_int_equal(rs_ws_client_key(key), 0);
  assert_int_equal(strlen(key), 24);
  char req[512];
  assert_true(rs_ws_client_request(req, sizeof req, "localhost:9", "/x", key, "rsocket", false) >
              0);
  /* Our own server side accepts our client's request. */
  rs_ws_request r;
  rs_ssize hl = rs_ws_request_parse(&r, (const uint8_t *)req, strlen(req));
  assert_int_equal(hl, (rs_ssize)strlen(req));
  assert_int_equal(rs_ws_request_check(&r, NULL), 0);
  char resp[512];
  rs_ssize n = rs_ws_response_101(resp, sizeof resp, &r, "rsocket", NULL);
  const char *why = NULL;
  assert_int_equal(
      rs_ws_client_response_check((const uint8_t *)resp, (size_t)n, key, "rsocket", NULL, &why), n);
  assert_int_equal(
      rs_ws_client_response_check((const uint8_t *)resp, (size_t)n - 1, key, "rsocket", NULL, &why),
      0);
  /* A subprotocol we did not offer, a wrong accept, a refusal. */
  assert_int_equal(
      rs_ws_client_response_check((const uint8_t *)resp, (size_t)n, key, NULL, NULL, &why),
      RS_ERR_REJECTED);
  assert_non_null(strstr(why, "subprotocol"));
  char other[25];
  assert_int_equal(rs_ws_client_key(other), 0);
  assert_int_equal(
      rs_ws_client_response_check((const uint8_t *)resp, (size_t)n, other, "rsocket", NULL, &why),
      RS_ERR_REJECTED);
  assert_non_null(strstr(why, "Accept"));
  const char *refused = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
  assert_int_equal(
      rs_ws_client_response_check((const uint8_t *)refused, strlen(refused), key, NULL, NULL, &why),
      RS_ERR_REJECTED);
  assert_non_null(strstr(why, "101"));
  char ext[600];
  snprintf(ext, sizeof ext, "%.*sSec-WebSocket-Extensions: permessage-deflate\r\n\r\n", (int)n - 2,
           resp);
  assert_int_equal(
      rs_ws_client_response_check((const uint8_t *)ext, strlen(ext), key, "rsocket", NULL, &why),
      RS_ERR_REJECTED);
  assert_non_null(strstr(why, "extension"));
}

/* Extra request headers (rs_client_options.ws.headers, `rsocket --wsHeader`): written trimmed,
 * in order, after the handshake's own; anything that could break or forge the request refused. */
static void test_client_extra_headers(void **state) {
  (void)state;
  char key[25], req[1024];
  assert_int_equal(rs_ws_client_key(key), 0);
  const char *const headers[] = {"Authorization: Bearer abc", "X-Trace:  t1 ", "x-empty:", NULL};
  rs_ssize n =
      rs_ws_client_request_headers(req, sizeof req, "h:1", "/rs", key, NULL, false, headers);
  assert_true(n > 0);
  assert_non_null(strstr(req, "Sec-WebSocket-Version: 13\r\nAuthorization: Bearer abc\r\n"
                              "X-Trace: t1\r\nx-empty: \r\n\r\n"));
  rs_ws_request r;
  assert_int_equal(rs_ws_request_parse(&r, (const uint8_t *)req, (size_t)n), n);
  assert_int_equal(rs_ws_request_check(&r, NULL), 0);
  /* Too small a buffer is reported, not cut. */
  assert_int_equal(rs_ws_client_request_headers(req, 150, "h:1", "/rs", key, NULL, false, headers),
                   RS_ERR_BUFFER_TOO_SMALL);

  static const char *const bad[] = {
      "NoColon",           ": empty name",
      "Bad Name: x",       "X-A: line\r\nX-B: smuggled",
      "X-A: nul\x01here",  "Host: elsewhere",
      "upgrade: h2c",      "Sec-WebSocket-Key: AAAA",
      "content-length: 5", "Sec-WebSocket-Protocol: x",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *why = NULL;
    assert_int_equal(rs_ws_header_line_check(bad[i], &why), RS_ERR_INVALID_ARGUMENT);
    assert_non_null(why);
    const char *const one[] = {bad[i], NULL};
    assert_int_equal(rs_ws_client_request_headers(req, sizeof req, "h", "/", key, NULL, false, one),
                     RS_ERR_INVALID_ARGUMENT);
  }
  const char *why = NULL;
  assert_int_equal(rs_ws_header_line_check("Host: x", &why), RS_ERR_INVALID_ARGUMENT);
  assert_string_equal(why, "the WebSocket handshake sets this header itself");
  assert_int_equal(rs_ws_header_line_check("X-Ok: tab\tand \xc3\xa9", &why), 0);
  assert_null(why);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accept_key),           cmocka_unit_test(test_parse_good),
      cmocka_unit_test(test_bad_requests),         cmocka_unit_test(test_limits),
      cmocka_unit_test(test_error_responses),      cmocka_unit_test(test_client_side),
      cmocka_unit_test(test_client_extra_headers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
