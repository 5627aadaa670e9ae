/*
 * TLS over OpenSSL memory BIOs. No sockets here: the runtime feeds ciphertext read from the socket
 * with rs_tls_feed(), reads plaintext with rs_tls_read(), writes plaintext with rs_tls_write() and
 * sends whatever rs_tls_take() hands back. That keeps TLS out of the event loop's way and testable
 * in memory.
 */
#ifndef RS_RUNTIME_TLS_H
#define RS_RUNTIME_TLS_H

#include "rsocket/common.h"

typedef struct rs_tls_ctx rs_tls_ctx;
typedef struct rs_tls rs_tls;

/* The longest error text the constructors write into `err`. */
#define RS_TLS_ERRLEN 256

/*
 * Server context from PEM files. Returns NULL and a one-line reason in `err` (which may be NULL)
 * when a file cannot be read or the key does not match the certificate.
 */
rs_tls_ctx *rs_tls_ctx_server_files(const char *cert_file, const char *key_file, char *err);

/* Server context from PEM text in memory (NUL-terminated). Same errors. */
rs_tls_ctx *rs_tls_ctx_server_pem(const char *cert_pem, const char *key_pem, char *err);

/*
 * Client context. Peer verification is on unless `insecure`: the CA file, when given, is trusted
 * in addition to the system store; the host name is checked against the certificate.
 */
rs_tls_ctx *rs_tls_ctx_client(const char *ca_file, bool insecure, char *err);

/* Trusts the PEM certificate(s) in `pem` (for tests with a certificate made at run time). */
int rs_tls_ctx_trust_pem(rs_tls_ctx *ctx, const char *pem);

void rs_tls_ctx_free(rs_tls_ctx *ctx);

/*
 * One TLS session. `host` (client only, may be NULL) is sent as SNI and verified against the
 * peer certificate. The client starts its handshake at once: call rs_tls_take() to get the
 * ClientHello.
 */
rs_tls *rs_tls_new(rs_tls_ctx *ctx, bool server, const char *host);
void rs_tls_free(rs_tls *t);

/* Hands ciphertext received from the peer to the session. 0, or RS_ERR_NOMEM. */
int rs_tls_feed(rs_tls *t, const uint8_t *buf, size_t len);

/*
 * Reads decrypted bytes. Returns the count (> 0); 0 when the peer closed TLS cleanly
 * (close_notify); RS_ERR_WOULD_BLOCK when more ciphertext is needed (check rs_tls_take() — the
 * handshake may want to send); RS_ERR_PROTOCOL on a TLS failure (rs_tls_error() tells why).
 */
rs_ssize rs_tls_read(rs_tls *t, uint8_t *buf, size_t cap);

/*
 * Encrypts `len` bytes. Returns the count accepted (all of them once the handshake is done;
 * before that, RS_ERR_WOULD_BLOCK: keep them and retry after feeding), or RS_ERR_PROTOCOL.
 */
rs_ssize rs_tls_write(rs_tls *t, const uint8_t *buf, size_t len);

/* Starts a clean shutdown (close_notify); take() then returns the alert to send. */
void rs_tls_shutdown(rs_tls *t);

/* Bytes of ciphertext waiting to be sent. */
size_t rs_tls_pending(const rs_tls *t);

/* Moves up to `cap` bytes of ciphertext to `buf`. Returns the count (0 when none). */
size_t rs_tls_take(rs_tls *t, uint8_t *buf, size_t cap);

bool rs_tls_handshake_done(const rs_tls *t);

/* The reason for the last RS_ERR_PROTOCOL ("" if none). */
const char *rs_tls_error(const rs_tls *t);

#endif
