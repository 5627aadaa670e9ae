/* Big-endian wire helpers. Readers take a pointer and return the value; writers return the
 * advanced pointer (p = put_u32(p, v)), which keeps encoders short. No bounds checks: callers
 * check lengths first. */
#ifndef RS_CORE_WIRE_H
#define RS_CORE_WIRE_H

#include <stdint.h>
#include <string.h>

static inline uint16_t rs__get_u16(const uint8_t *p) {
  return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t rs__get_u24(const uint8_t *p) {
  return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static inline uint32_t rs__get_u32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return __builtin_bswap32(v);
}

static inline uint64_t rs__get_u64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return __builtin_bswap64(v);
}

static inline uint8_t *rs__put_u16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
  return p + 2;
}

static inline uint8_t *rs__put_u24(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 16);
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)v;
  return p + 3;
}

static inline uint8_t *rs__put_u32(uint8_t *p, uint32_t v) {
  v = __builtin_bswap32(v);
  memcpy(p, &v, 4);
  return p + 4;
}

static inline uint8_t *rs__put_u64(uint8_t *p, uint64_t v) {
  v = __builtin_bswap64(v);
  memcpy(p, &v, 8);
  return p + 8;
}

static inline uint8_t *rs__put_bytes(uint8_t *p, const uint8_t *src, size_t n) {
  if (n) memcpy(p, src, n);
  return p + n;
}

#endif
