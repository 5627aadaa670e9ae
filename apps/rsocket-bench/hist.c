/* Log-linear latency histogram (in the spirit of HdrHistogram): values below 2*HIST_SUB are
 * exact; above, each power of two is split into HIST_SUB buckets (relative error < 1/HIST_SUB). */
#include <string.h>

#include "rsocket-bench/bench.h"

static unsigned bucket_of(uint64_t v) {
  if (v < 2 * HIST_SUB) return (unsigned)v;
  unsigned msb = 63u - (unsigned)__builtin_clzll(v);
  unsigned shift = msb - HIST_SUB_BITS;  /* >= 1 */
  unsigned top = (unsigned)(v >> shift); /* in [HIST_SUB, 2*HIST_SUB) */
  return 2 * HIST_SUB + (shift - 1) * HIST_SUB + (top - HIST_SUB);
}

/* The largest value that falls in bucket `b`. */
static uint64_t bucket_high(unsigned b) {
  if (b < 2 * HIST_SUB) return b;
  unsigned shift = (b - 2 * HIST_SUB) / HIST_SUB + 1;
  uint64_t top = HIST_SUB + (b - 2 * HIST_SUB) % HIST_SUB;
  return ((top + 1) << shift) - 1;
}

void hist_init(hist *h) {
  memset(h, 0, sizeof *h);
  h->min = UINT64_MAX;
}

void hist_record(hist *h, uint64_t v) {
  h->buckets[bucket_of(v)]++;
  h->count++;
  h->sum += (double)v;
  if (v < h->min) h->min = v;
  if (v > h->max) h->max = v;
}

void hist_merge(hist *into, const hist *from) {
  for (unsigned i = 0; i < HIST_BUCKETS; i++) into->buckets[i] += from->buckets[i];
  into->count += from->count;
  into->sum += from->sum;
  if (from->min < into->min) into->min = from->min;
  if (from->max > into->max) into->max = from->max;
}

uint64_t hist_quantile(const hist *h, double q) {
  if (h->count == 0) return 0;
  if (q <= 0) return h->min;
  uint64_t rank = (uint64_t)(q * (double)h->count + 0.5);
  if (rank < 1) rank = 1;
  if (rank > h->count) rank = h->count;
  uint64_t seen = 0;
  for (unsigned i = 0; i < HIST_BUCKETS; i++) {
    seen += h->buckets[i];
    if (seen >= rank) {
      uint64_t v = bucket_high(i);
      if (v > h->max) v = h->max;
      if (v < h->min) v = h->min;
      return v;
    }
  }
  return h->max;
}

double hist_mean(const hist *h) {
  return h->count ? h->sum / (double)h->count : 0;
}
