/* SHA-1 and base64, for the opening handshake's Sec-WebSocket-Accept and -Key (internal). */
#ifndef RS_WS_SHA1_H
#define RS_WS_SHA1_H

#include <stddef.h>
#include <stdint.h>

/* The SHA-1 digest (FIPS 180-4) of p[0..n). */
void rs__ws_sha1(const uint8_t *p, size_t n, uint8_t out[20]);

/* Writes the base64 (RFC 4648, with padding) of p[0..n) and a NUL: 4 * ((n + 2) / 3) + 1 bytes. */
void rs__ws_base64(const uint8_t *p, size_t n, char *out);

#endif
