/* TLS over memory BIOs: handshakes, data both ways, verification failures, clean close. */
#include "testutil.h"
#include "tlsutil.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/tls.h"

typedef struct pair {
  char *cert, *key;
  rs_tls_ctx *sctx, *cctx;
  rs_tls *server, *client;
} pair;

/* Moves ciphertext both ways until neither side has anything to send. */
static void pump(pair *p) {
  uint8_t buf[16384];
  for (int rounds = 0; rounds < 100; rounds++) {
    size_t moved = 0, n;
    while ((n = rs_tls_take(p->client, buf, sizeof buf)) > 0) {
      assert_int_equal(rs_tls_feed(p->server, buf, n), 0);
      moved += n;
    }
    uint8_t tmp[1];
    (void)rs_tls_read(p->server, tmp, 0); /* drive the handshake */
    while ((n = rs_tls_take(p->server, buf, sizeof buf)) > 0) {
      assert_int_equal(rs_tls_feed(p->client, buf, n), 0);
      moved += n;
    }
    (void)rs_tls_read(p->client, tmp, 0);
    if (moved == 0) return;
  }
  fail_msg("TLS pump did not settle");
}

static void pair_setup(pair *p, const char *cert_host, const char *connect_host, bool trust,
                       bool insecure) {
  memset(p, 0, sizeof *p);
  assert_int_equal(tu_make_cert(cert_host, &p->cert, &p->key), 0);
  char err[RS_TLS_ERRLEN] = "";
  p->sctx = rs_tls_ctx_server_pem(p->cert, p->key, err);
  assert_non_null(p->sctx);
  p->cctx = rs_tls_ctx_client(NULL, insecure, err);
  assert_non_null(p->cctx);
  if (trust) assert_int_equal(rs_tls_ctx_trust_pem(p->cctx, p->cert), 0);
  p->server = rs_tls_new(p->sctx, true, NULL);
  p->client = rs_tls_new(p->cctx, false, connect_host);
  assert_non_null(p->server);
  assert_non_null(p->client);
}

static void pair_free(pair *p) {
  rs_tls_free(p->server);
  rs_tls_free(p->client);
  rs_tls_ctx_free(p->sctx);
  rs_tls_ctx_free(p->cctx);
  free(p->cert);
  free(p->key);
}

static void test_handshake_and_data(void **state) {
  (void)state;
  pair p;
  pair_setup(&p, "localhost", "localhost", true, false);
  pump(&p);
  assert_true(rs_tls_handshake_done(p.client));
  assert_true(rs_tls_handshake_done(p.server));

  /* 200 KiB client → server, then a reply. */
  size_t big = 200 * 1024;
  uint8_t *msg = malloc(big);
  for (size_t i = 0; i < big; i++) msg[i] = (uint8_t)(i * 31 + 7);
  assert_int_equal(rs_tls_write(p.client, msg, big), (rs_ssize)big);
  pump(&p);
  uint8_t *got = malloc(big);
  size_t have = 0;
  while (have < big) {
    rs_ssize n = rs_tls_read(p.server, got + have, big - have);
    if (n == RS_ERR_WOULD_BLOCK) {
      pump(&p);
      continue;
    }
    assert_true(n > 0);
    have += (size_t)n;
  }
  assert_memory_equal(got, msg, big);

  assert_int_equal(rs_tls_write(p.server, (const uint8_t *)"pong", 4), 4);
  pump(&p);
  uint8_t small[16];
  assert_int_equal(rs_tls_read(p.client, small, sizeof small), 4);
  assert_memory_equal(small, "pong", 4);
  assert_int_equal(rs_tls_read(p.client, small, sizeof small), RS_ERR_WOULD_BLOCK);

  /* A clean close_notify reads as 0 on the other side. */
  rs_tls_shutdown(p.client);
  pump(&p);
  assert_int_equal(rs_tls_read(p.server, small, sizeof small), 0);
  free(msg);
  free(got);
  pair_free(&p);
}

static void test_untrusted_certificate_fails(void **state) {
  (void)state;
  pair p;
  pair_setup(&p, "localhost", "localhost", false, false);
  pump(&p);
  assert_false(rs_tls_handshake_done(p.client));
  uint8_t b[4];
  assert_int_equal(rs_tls_read(p.client, b, sizeof b), RS_ERR_PROTOCOL);
  /* Which check failed, in words: not OpenSSL's generic "certificate verify failed" alone. */
  assert_non_null(strstr(rs_tls_error(p.client), "certificate verify failed: self-signed"));
  assert_non_null(strstr(rs_tls_error(p.client), "not signed by a trusted CA"));
  pair_free(&p);
}

static void test_wrong_host_fails(void **state) {
  (void)state;
  pair p;
  pair_setup(&p, "localhost", "example.invalid", true, false);
  pump(&p);
  uint8_t b[4];
  assert_false(rs_tls_handshake_done(p.client));
  assert_int_equal(rs_tls_read(p.client, b, sizeof b), RS_ERR_PROTOCOL);
  assert_string_equal(rs_tls_error(p.client),
                      "TLS handshake: certificate verify failed: hostname mismatch (the "
                      "certificate is for localhost, not example.invalid)");
  pair_free(&p);
}

/* An address is checked against the certificate's IP entries, and the error says so. */
static void test_ip_literal_mismatch(void **state) {
  (void)state;
  pair p;
  pair_setup(&p, "localhost", "127.0.0.1", true, false);
  pump(&p);
  uint8_t b[4];
  assert_false(rs_tls_handshake_done(p.client));
  assert_int_equal(rs_tls_read(p.client, b, sizeof b), RS_ERR_PROTOCOL);
  assert_string_equal(rs_tls_error(p.client),
                      "TLS handshake: certificate verify failed: IP address mismatch (the "
                      "certificate is for localhost, not 127.0.0.1)");
  pair_free(&p);
}

/* A missing file is named with the system's reason (OpenSSL alone says "system lib"). */
static void test_missing_files(void **state) {
  (void)state;
  char err[RS_TLS_ERRLEN] = "";
  assert_null(rs_tls_ctx_client("/nonexistent/ca.pem", false, err));
  assert_string_equal(err, "cannot read CA file /nonexistent/ca.pem: No such file or directory");
  assert_null(rs_tls_ctx_server_files("/nonexistent/cert.pem", "/nonexistent/key.pem", err));
  assert_string_equal(
      err, "cannot read certificate file /nonexistent/cert.pem: No such file or directory");
}

static void test_insecure_accepts_anything(void **state) {
  (void)state;
  pair p;
  pair_setup(&p, "localhost", "other.invalid", false, true);
  pump(&p);
  assert_true(rs_tls_handshake_done(p.client));
  pair_free(&p);
}

static void test_garbage_is_a_protocol_error(void **state) {
  (void)state;
  pair p;
  pair_setup(&p, "localhost", "localhost", true, false);
  const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  assert_int_equal(rs_tls_feed(p.server, (const uint8_t *)junk, sizeof junk - 1), 0);
  uint8_t b[4];
  assert_int_equal(rs_tls_read(p.server, b, sizeof b), RS_ERR_PROTOCOL);
  assert_true(strlen(rs_tls_error(p.server)) > 0);
  pair_free(&p);
}

static void test_bad_server_config(void **state) {
  (void)state;
  char err[RS_TLS_ERRLEN] = "";
  assert_null(rs_tls_ctx_server_files("/nonexistent/cert.pem", "/nonexistent/key.pem", err));
  assert_non_null(strstr(err, "/nonexistent/cert.pem"));
  assert_null(rs_tls_ctx_server_pem("not a pem", "nor this", err));
  assert_true(strlen(err) > 0);
  /* A key that does not belong to the certificate. */
  char *c1, *k1, *c2, *k2;
  assert_int_equal(tu_make_cert("a", &c1, &k1), 0);
  assert_int_equal(tu_make_cert("b", &c2, &k2), 0);
  rs_tls_ctx *bad = rs_tls_ctx_server_pem(c1, k2, err);
  free(c1), free(k1), free(c2), free(k2);
  assert_null(bad);
  assert_true(strstr(err, "does not match") || strstr(err, "mismatch"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_handshake_and_data),
      cmocka_unit_test(test_untrusted_certificate_fails),
      cmocka_unit_test(test_wrong_host_fails),
      cmocka_unit_test(test_ip_literal_mismatch),
      cmocka_unit_test(test_missing_files),
      cmocka_unit_test(test_insecure_accepts_anything),
      cmocka_unit_test(test_garbage_is_a_protocol_error),
      cmocka_unit_test(test_bad_server_config),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
