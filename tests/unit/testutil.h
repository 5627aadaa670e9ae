/* Helpers shared by the unit tests: hex vectors, scripted feeds and a failing allocator. */
#ifndef RS_TESTUTIL_H
#define RS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rsocket/common.h"

/*
 * Parses hex text ("00 0A ff", spaces, newlines and '|' ignored) into a malloc'd buffer.
 * Fails the test on bad input. Free with free().
 */
uint8_t *tu_hex(const char *hex, size_t *len);

/* Asserts that `got` equals the bytes written in `hex`, printing both on mismatch. */
void tu_assert_hex(const uint8_t *got, size_t got_len, const char *hex);

/* Asserts that a byte view equals a C string. */
void tu_assert_bytes_str(rs_bytes b, const char *s);

/*
 * A counting allocator: `fail_at` > 0 makes allocation number fail_at (1-based) fail, and every
 * one after it when `fail_after` is true. `live` counts outstanding blocks, `bytes` the bytes
 * asked for by every allocation that succeeded.
 */
typedef struct tu_alloc {
  rs_mem mem;
  long count;
  long fail_at;
  int fail_after;
  long live;
  size_t bytes;
} tu_alloc;

void tu_alloc_init(tu_alloc *a, long fail_at);

/* A deterministic xorshift PRNG for scripted feeds and random tests. */
uint64_t tu_rand(uint64_t *state);

#endif
