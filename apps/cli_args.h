/*
 * Option values shared by the programs (header-only: apps/ is on every program's include path):
 * counts, sizes and durations, parsed strictly (the whole string, no sign, no overflow).
 */
#ifndef RS_APPS_CLI_ARGS_H
#define RS_APPS_CLI_ARGS_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Decimal digits only. 0, or -1. */
static inline int cli_arg_u64(const char *s, uint64_t *out) {
  char *end;
  if (!*s || *s == '-' || *s == '+') return -1;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *end) return -1;
  *out = v;
  return 0;
}

/* Bytes, or with a unit: "64KiB", "1MiB", "2GiB" (also K, k, M, G, B); at most 1 TiB. 0, or -1. */
static inline int cli_arg_size(const char *s, size_t *out) {
  char *end;
  if (!*s || *s == '-' || *s == '+') return -1;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s) return -1;
  unsigned long long mult;
  if (*end == '\0' || strcmp(end, "B") == 0)
    mult = 1;
  else if (strcmp(end, "K") == 0 || strcmp(end, "KiB") == 0 || strcmp(end, "k") == 0)
    mult = 1ull << 10;
  else if (strcmp(end, "M") == 0 || strcmp(end, "MiB") == 0)
    mult = 1ull << 20;
  else if (strcmp(end, "G") == 0 || strcmp(end, "GiB") == 0)
    mult = 1ull << 30;
  else
    return -1;
  if (v > (1ull << 40) / mult) return -1;
  *out = (size_t)(v * mult);
  return 0;
}

/* Seconds, or with a unit: "500ms", "20s", "2m", "1h" (fractions allowed: "1.5s"); at most
 * 2^31-1 ms. 0, or -1. */
static inline int cli_arg_duration(const char *s, uint32_t *ms) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || !(v >= 0)) return -1;
  double mult;
  if (*end == '\0' || strcmp(end, "s") == 0)
    mult = 1000;
  else if (strcmp(end, "ms") == 0)
    mult = 1;
  else if (strcmp(end, "m") == 0)
    mult = 60000;
  else if (strcmp(end, "h") == 0)
    mult = 3600000;
  else
    return -1;
  double r = v * mult;
  if (r > 2147483647.0) return -1;
  *ms = (uint32_t)r;
  return 0;
}

#endif
