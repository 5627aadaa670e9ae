#include "testutil.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = tolower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

uint8_t *tu_hex(const char *hex, size_t *len) {
  size_t cap = strlen(hex) / 2 + 1, n = 0;
  uint8_t *out = malloc(cap);
  assert_non_null(out);
  int hi = -1;
  for (const char *p = hex; *p; p++) {
    if (isspace((unsigned char)*p) || *p == '|') continue;
    int v = hexval((unsigned char)*p);
    if (v < 0) fail_msg("bad hex character '%c' in \"%s\"", *p, hex);
    if (hi < 0) {
      hi = v;
    } else {
      out[n++] = (uint8_t)(hi << 4 | v);
      hi = -1;
    }
  }
  if (hi >= 0) fail_msg("odd number of hex digits in \"%s\"", hex);
  *len = n;
  return out;
}

static void print_hex(const char *label, const uint8_t *p, size_t n) {
  fprintf(stderr, "%s (%zu):", label, n);
  for (size_t i = 0; i < n; i++) fprintf(stderr, " %02X", p[i]);
  fprintf(stderr, "\n");
}

void tu_assert_hex(const uint8_t *got, size_t got_len, const char *hex) {
  size_t want_len;
  uint8_t *want = tu_hex(hex, &want_len);
  if (got_len != want_len || memcmp(got, want, want_len) != 0) {
    print_hex("got ", got, got_len);
    print_hex("want", want, want_len);
    free(want);
    fail_msg("bytes differ");
  }
  free(want);
}

void tu_assert_bytes_str(rs_bytes b, const char *s) {
  size_t n = strlen(s);
  if (b.len != n || (n && memcmp(b.ptr, s, n) != 0)) {
    fail_msg("got \"%.*s\" (%zu bytes), want \"%s\"", (int)b.len, b.ptr ? (const char *)b.ptr : "",
             b.len, s);
  }
}

static int should_fail(tu_alloc *a) {
  a->count++;
  if (a->fail_at <= 0) return 0;
  return a->fail_after ? a->count >= a->fail_at : a->count == a->fail_at;
}

static void *ta_malloc(size_t size, void *user) {
  tu_alloc *a = user;
  if (should_fail(a)) return NULL;
  void *p = malloc(size);
  if (p) a->live++, a->bytes += size;
  return p;
}

static void ta_free(void *ptr, void *user) {
  tu_alloc *a = user;
  if (ptr) a->live--;
  free(ptr);
}

static void *ta_calloc(size_t n, size_t size, void *user) {
  tu_alloc *a = user;
  if (should_fail(a)) return NULL;
  void *p = calloc(n, size);
  if (p) a->live++, a->bytes += n * size;
  return p;
}

static void *ta_realloc(void *ptr, size_t size, void *user) {
  tu_alloc *a = user;
  if (should_fail(a)) return NULL;
  void *p = realloc(ptr, size);
  if (p && !ptr) a->live++;
  if (p) a->bytes += size;
  return p;
}

void tu_alloc_init(tu_alloc *a, long fail_at) {
  memset(a, 0, sizeof(*a));
  a->mem.malloc = ta_malloc;
  a->mem.free = ta_free;
  a->mem.calloc = ta_calloc;
  a->mem.realloc = ta_realloc;
  a->mem.user = a;
  a->fail_at = fail_at;
}

uint64_t tu_rand(uint64_t *s) {
  uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  *s = x;
  return x;
}
