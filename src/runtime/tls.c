/* TLS over OpenSSL memory BIOs (see tls.h). */
#include "runtime/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rs_tls_ctx {
  SSL_CTX *ssl;
  bool server;
};

struct rs_tls {
  SSL *ssl;
  BIO *rbio;      /* ciphertext from the peer, read by OpenSSL */
  BIO *wbio;      /* ciphertext for the peer, written by OpenSSL */
  char host[256]; /* client: the name we verify, for error messages */
  char error[RS_TLS_ERRLEN];
};

static void set_err(char *err, const char *what) {
  if (!err) return;
  unsigned long e = ERR_peek_last_error();
  if (e) {
    char buf[160];
    ERR_error_string_n(e, buf, sizeof buf);
    snprintf(err, RS_TLS_ERRLEN, "%s: %s", what, buf);
  } else {
    snprintf(err, RS_TLS_ERRLEN, "%s", what);
  }
  ERR_clear_error();
}

/* OpenSSL reports a missing file as "system lib"; say which file and why in plain words. */
static bool file_readable(const char *what, const char *path, char *err) {
  FILE *f = fopen(path, "r");
  if (f) {
    fclose(f);
    return true;
  }
  if (err) snprintf(err, RS_TLS_ERRLEN, "cannot read %s %.200s: %s", what, path, strerror(errno));
  return false;
}

static rs_tls_ctx *ctx_new(bool server, char *err) {
  SSL_CTX *ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (!ssl) {
    set_err(err, "cannot create TLS context");
    return NULL;
  }
  SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION);
  /* The runtime hands us partial writes back; let OpenSSL accept a moved buffer on retry. */
  SSL_CTX_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  rs_tls_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx) {
    SSL_CTX_free(ssl);
    if (err) snprintf(err, RS_TLS_ERRLEN, "out of memory");
    return NULL;
  }
  ctx->ssl = ssl;
  ctx->server = server;
  return ctx;
}

static rs_tls_ctx *check_key(rs_tls_ctx *ctx, char *err) {
  if (SSL_CTX_check_private_key(ctx->ssl) != 1) {
    set_err(err, "private key does not match the certificate");
    rs_tls_ctx_free(ctx);
    return NULL;
  }
  return ctx;
}

rs_tls_ctx *rs_tls_ctx_server_files(const char *cert_file, const char *key_file, char *err) {
  if (!cert_file || !key_file) {
    if (err) snprintf(err, RS_TLS_ERRLEN, "a TLS server needs a certificate and a key");
    return NULL;
  }
  if (!file_readable("certificate file", cert_file, err) ||
      !file_readable("private key file", key_file, err))
    return NULL;
  rs_tls_ctx *ctx = ctx_new(true, err);
  if (!ctx) return NULL;
  if (SSL_CTX_use_certificate_chain_file(ctx->ssl, cert_file) != 1) {
    char what[RS_TLS_ERRLEN];
    snprintf(what, sizeof what, "no PEM certificate in %.200s", cert_file);
    set_err(err, what);
    rs_tls_ctx_free(ctx);
    return NULL;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx->ssl, key_file, SSL_FILETYPE_PEM) != 1) {
    char what[RS_TLS_ERRLEN];
    snprintf(what, sizeof what, "no usable PEM private key in %.200s", key_file);
    set_err(err, what);
    rs_tls_ctx_free(ctx);
    return NULL;
  }
  return check_key(ctx, err);
}

rs_tls_ctx *rs_tls_ctx_server_pem(const char *cert_pem, const char *key_pem, char *err) {
  if (!cert_pem || !key_pem) {
    if (err) snprintf(err, RS_TLS_ERRLEN, "a TLS server needs a certificate and a key");
    return NULL;
  }
  rs_tls_ctx *ctx = ctx_new(true, err);
  if (!ctx) return NULL;
  BIO *cb = BIO_new_mem_buf(cert_pem, -1);
  BIO *kb = BIO_new_mem_buf(key_pem, -1);
  X509 *cert = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
  EVP_PKEY *key = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
  int ok = cert && key && SSL_CTX_use_certificate(ctx->ssl, cert) == 1 &&
           SSL_CTX_use_PrivateKey(ctx->ssl, key) == 1;
  X509_free(cert);
  EVP_PKEY_free(key);
  BIO_free(cb);
  BIO_free(kb);
  if (!ok) {
    set_err(err, "cannot load the PEM certificate or key");
    rs_tls_ctx_free(ctx);
    return NULL;
  }
  return check_key(ctx, err);
}

rs_tls_ctx *rs_tls_ctx_client(const char *ca_file, bool insecure, char *err) {
  rs_tls_ctx *ctx = ctx_new(false, err);
  if (!ctx) return NULL;
  if (insecure) {
    SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_NONE, NULL);
    return ctx;
  }
  SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER, NULL);
  SSL_CTX_set_default_verify_paths(ctx->ssl);
  if (ca_file && !file_readable("CA file", ca_file, err)) {
    rs_tls_ctx_free(ctx);
    return NULL;
  }
  if (ca_file && SSL_CTX_load_verify_locations(ctx->ssl, ca_file, NULL) != 1) {
    char what[RS_TLS_ERRLEN];
    snprintf(what, sizeof what, "no PEM certificate in CA file %.200s", ca_file);
    set_err(err, what);
    rs_tls_ctx_free(ctx);
    return NULL;
  }
  ERR_clear_error();
  return ctx;
}

int rs_tls_ctx_trust_pem(rs_tls_ctx *ctx, const char *pem) {
  if (!ctx || !pem) return RS_ERR_INVALID_ARGUMENT;
  BIO *b = BIO_new_mem_buf(pem, -1);
  if (!b) return RS_ERR_NOMEM;
  X509_STORE *store = SSL_CTX_get_cert_store(ctx->ssl);
  int added = 0;
  X509 *cert;
  while ((cert = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
    if (X509_STORE_add_cert(store, cert) == 1) added++;
    X509_free(cert);
  }
  ERR_clear_error();
  BIO_free(b);
  return added > 0 ? 0 : RS_ERR_INVALID_ARGUMENT;
}

void rs_tls_ctx_free(rs_tls_ctx *ctx) {
  if (!ctx) return;
  SSL_CTX_free(ctx->ssl);
  free(ctx);
}

rs_tls *rs_tls_new(rs_tls_ctx *ctx, bool server, const char *host) {
  if (!ctx || server != ctx->server) return NULL;
  rs_tls *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->ssl = SSL_new(ctx->ssl);
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (!t->ssl || !t->rbio || !t->wbio) {
    SSL_free(t->ssl);
    BIO_free(t->rbio);
    BIO_free(t->wbio);
    free(t);
    return NULL;
  }
  /* An empty read BIO means "try again", not end of file. */
  BIO_set_mem_eof_return(t->rbio, -1);
  SSL_set_bio(t->ssl, t->rbio, t->wbio); /* the SSL owns both BIOs now */
  if (server) {
    SSL_set_accept_state(t->ssl);
  } else {
    SSL_set_connect_state(t->ssl);
    if (host && *host) {
      snprintf(t->host, sizeof t->host, "%s", host);
      unsigned char ip[16];
      bool literal = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
      /* An address is checked against the certificate's IP entries and never sent as SNI
       * (RFC 6066 allows host names only). */
      if (!literal) SSL_set_tlsext_host_name(t->ssl, host);
      if (SSL_get_verify_mode(t->ssl) & SSL_VERIFY_PEER) {
        if (literal)
          X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host);
        else
          SSL_set1_host(t->ssl, host);
      }
    }
    SSL_do_handshake(t->ssl); /* queues the ClientHello */
  }
  ERR_clear_error();
  return t;
}

void rs_tls_free(rs_tls *t) {
  if (!t) return;
  SSL_free(t->ssl);
  free(t);
}

int rs_tls_feed(rs_tls *t, const uint8_t *buf, size_t len) {
  while (len > 0) {
    int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
    int n = BIO_write(t->rbio, buf, chunk);
    if (n <= 0) return RS_ERR_NOMEM;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Up to three names of the server's certificate (DNS and IP subject alternative names, else
 * the common name), comma-separated, into out; "" when there is no certificate. */
static void peer_names(SSL *ssl, char *out, size_t cap) {
  out[0] = '\0';
  STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl); /* kept even when verification failed */
  X509 *cert = chain && sk_X509_num(chain) > 0 ? sk_X509_value(chain, 0) : NULL;
  if (!cert) return;
  size_t len = 0;
  int shown = 0;
  GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
  for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans) && shown < 3; i++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
    char name[INET6_ADDRSTRLEN + 64] = "";
    if (g->type == GEN_DNS) {
      snprintf(name, sizeof name, "%.*s",
               ASN1_STRING_length(g->d.dNSName) > 64 ? 64 : ASN1_STRING_length(g->d.dNSName),
               (const char *)ASN1_STRING_get0_data(g->d.dNSName));
    } else if (g->type == GEN_IPADD) {
      int n = ASN1_STRING_length(g->d.iPAddress);
      const unsigned char *a = ASN1_STRING_get0_data(g->d.iPAddress);
      if (n == 4 || n == 16) inet_ntop(n == 4 ? AF_INET : AF_INET6, a, name, sizeof name);
    }
    if (!name[0]) continue;
    len += (size_t)snprintf(out + len, cap - len, "%s%s", shown ? ", " : "", name);
    if (len >= cap) len = cap - 1;
    shown++;
  }
  GENERAL_NAMES_free(sans);
  if (shown == 0)
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, out, (int)cap);
}

/* A failed certificate check, in words: what failed and, for the usual cases, why. */
static void verify_error(rs_tls *t, long vr, const char *what) {
  char names[200];
  const char *why = X509_verify_cert_error_string(vr);
  switch (vr) {
  case X509_V_ERR_HOSTNAME_MISMATCH:
  case X509_V_ERR_IP_ADDRESS_MISMATCH:
    peer_names(t->ssl, names, sizeof names);
    snprintf(t->error, sizeof t->error,
             "%s: certificate verify failed: %s (the certificate is for %s, not %s)", what, why,
             names[0] ? names : "other names", t->host);
    break;
  case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
  case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
  case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    snprintf(t->error, sizeof t->error,
             "%s: certificate verify failed: %s (the server's certificate is not signed by a "
             "trusted CA)",
             what, why);
    break;
  default:
    snprintf(t->error, sizeof t->error, "%s: certificate verify failed: %s", what, why);
    break;
  }
}

/* Maps an SSL_get_error result: would-block, clean close (0) or a protocol failure. */
static rs_ssize ssl_result(rs_tls *t, int ret, const char *what) {
  int e = SSL_get_error(t->ssl, ret);
  switch (e) {
  case SSL_ERROR_WANT_READ:
  case SSL_ERROR_WANT_WRITE: return RS_ERR_WOULD_BLOCK;
  case SSL_ERROR_ZERO_RETURN: return 0;
  default: {
    unsigned long code = ERR_peek_last_error();
    long vr = SSL_get_verify_result(t->ssl);
    if (vr != X509_V_OK) {
      verify_error(t, vr, what);
    } else if (code) {
      char buf[160];
      ERR_error_string_n(code, buf, sizeof buf);
      snprintf(t->error, sizeof t->error, "%s: %s", what, buf);
    } else {
      snprintf(t->error, sizeof t->error, "%s failed (error %d)", what, e);
    }
    ERR_clear_error();
    return RS_ERR_PROTOCOL;
  }
  }
}

rs_ssize rs_tls_read(rs_tls *t, uint8_t *buf, size_t cap) {
  if (!SSL_is_init_finished(t->ssl)) {
    int r = SSL_do_handshake(t->ssl);
    if (r != 1) {
      rs_ssize e = ssl_result(t, r, "TLS handshake");
      return e == 0 ? RS_ERR_PROTOCOL : e;
    }
  }
  if (cap == 0) return RS_ERR_WOULD_BLOCK;
  int want = cap > (1u << 30) ? (1 << 30) : (int)cap;
  int n = SSL_read(t->ssl, buf, want);
  if (n > 0) return n;
  return ssl_result(t, n, "TLS read");
}

rs_ssize rs_tls_write(rs_tls *t, const uint8_t *buf, size_t len) {
  if (len == 0) return 0;
  if (!SSL_is_init_finished(t->ssl)) {
    int r = SSL_do_handshake(t->ssl);
    if (r != 1) {
      rs_ssize e = ssl_result(t, r, "TLS handshake");
      return e == 0 ? RS_ERR_PROTOCOL : e;
    }
  }
  size_t done = 0;
  while (done < len) {
    size_t left = len - done;
    int chunk = left > (1u << 30) ? (1 << 30) : (int)left;
    int n = SSL_write(t->ssl, buf + done, chunk);
    if (n <= 0) {
      rs_ssize e = ssl_result(t, n, "TLS write");
      if (done > 0 && e == RS_ERR_WOULD_BLOCK) break;
      return e == 0 ? RS_ERR_PROTOCOL : e;
    }
    done += (size_t)n;
  }
  return (rs_ssize)done;
}

void rs_tls_shutdown(rs_tls *t) {
  SSL_shutdown(t->ssl);
  ERR_clear_error();
}

size_t rs_tls_pending(const rs_tls *t) {
  return BIO_ctrl_pending(t->wbio);
}

size_t rs_tls_take(rs_tls *t, uint8_t *buf, size_t cap) {
  if (cap == 0) return 0;
  int want = cap > (1u << 30) ? (1 << 30) : (int)cap;
  int n = BIO_read(t->wbio, buf, want);
  return n > 0 ? (size_t)n : 0;
}

bool rs_tls_handshake_done(const rs_tls *t) {
  return SSL_is_init_finished(t->ssl);
}

const char *rs_tls_error(const rs_tls *t) {
  return t->error;
}
