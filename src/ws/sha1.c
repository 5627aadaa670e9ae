/*
 * SHA-1 (FIPS 180-4, section 6.1) and base64 (RFC 4648, section 4): all the opening handshake
 * needs to compute Sec-WebSocket-Accept. SHA-1 serves here as a checksum the protocol names, not
 * for security, and the input is at most ~100 bytes. Done here rather than through libcrypto's
 * EVP interface, whose first use initialises the library (its configuration and providers): a
 * plain ws:// server would otherwise page in about 2 MB of libcrypto at its first client.
 */
#include "ws/sha1.h"

#include <string.h>

static uint32_t rotl(uint32_t x, unsigned n) {
  return x << n | x >> (32 - n);
}

static uint32_t get_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* One 64-byte block into the hash value h[0..5). */
static void block(uint32_t h[5], const uint8_t *p) {
  uint32_t w[80];
  for (int t = 0; t < 16; t++) w[t] = get_be32(p + 4 * t);
  for (int t = 16; t < 80; t++) w[t] = rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (int t = 0; t < 80; t++) {
    uint32_t f, k;
    if (t < 20) {
      f = (b & c) | (~b & d);
      k = 0x5a827999u;
    } else if (t < 40) {
      f = b ^ c ^ d;
      k = 0x6ed9eba1u;
    } else if (t < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = 0x8f1bbcdcu;
    } else {
      f = b ^ c ^ d;
      k = 0xca62c1d6u;
    }
    uint32_t tmp = rotl(a, 5) + f + e + k + w[t];
    e = d;
    d = c;
    c = rotl(b, 30);
    b = a;
    a = tmp;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
}

void rs__ws_sha1(const uint8_t *p, size_t n, uint8_t out[20]) {
  uint32_t h[5] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u, 0xc3d2e1f0u};
  uint64_t bits = (uint64_t)n * 8;
  for (; n >= 64; p += 64, n -= 64) block(h, p);
  /* The rest, a 1 bit, zeros, and the message's length in bits: one block or two. */
  uint8_t tail[128] = {0};
  memcpy(tail, p, n);
  tail[n] = 0x80;
  size_t len = n + 9 <= 64 ? 64 : 128;
  put_be32(tail + len - 8, (uint32_t)(bits >> 32));
  put_be32(tail + len - 4, (uint32_t)bits);
  block(h, tail);
  if (len == 128) block(h, tail + 64);
  for (int i = 0; i < 5; i++) put_be32(out + 4 * i, h[i]);
}

void rs__ws_base64(const uint8_t *p, size_t n, char *out) {
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (; n >= 3; p += 3, n -= 3) {
    uint32_t v = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
    *out++ = abc[v >> 18];
    *out++ = abc[(v >> 12) & 63];
    *out++ = abc[(v >> 6) & 63];
    *out++ = abc[v & 63];
  }
  if (n > 0) {
    uint32_t v = (uint32_t)p[0] << 16 | (n == 2 ? (uint32_t)p[1] << 8 : 0);
    *out++ = abc[v >> 18];
    *out++ = abc[(v >> 12) & 63];
    *out++ = n == 2 ? abc[(v >> 6) & 63] : '=';
    *out++ = '=';
  }
  *out = '\0';
}
