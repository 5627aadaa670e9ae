/*
 * A board's replica: shapes and tombstones as jansson objects, each log a ring of its last `cap`
 * items as JSON text. The memory engine keeps its boards as replicas; the Redis engine keeps one
 * per open board, a prefix of the log in Redis, which reads are served from.
 */
#include <stdlib.h>
#include <string.h>

#include "store.h"

static int ring_init(collab_ring *g, size_t cap) {
  g->cap = cap ? cap : 1;
  g->items = calloc(g->cap, sizeof *g->items);
  g->lens = calloc(g->cap, sizeof *g->lens);
  g->head = 0;
  g->first = 1;
  return g->items && g->lens ? 0 : -1;
}

void collab_ring_reset(collab_ring *g, uint64_t head) {
  for (size_t i = 0; g->items && i < g->cap; i++) {
    free(g->items[i]);
    g->items[i] = NULL;
  }
  g->head = head;
  g->first = head + 1;
}

int collab_ring_push(collab_ring *g, const char *text, size_t len) {
  char *copy = malloc(len + 1);
  if (!copy) return -1;
  memcpy(copy, text, len);
  copy[len] = 0;
  uint64_t off = g->head + 1;
  size_t i = (size_t)((off - 1) % g->cap);
  free(g->items[i]);
  g->items[i] = copy;
  g->lens[i] = len;
  g->head = off;
  if (g->head - g->first + 1 > g->cap) g->first = g->head - g->cap + 1;
  return 0;
}

int collab_replica_init(collab_replica *r, size_t cap) {
  memset(r, 0, sizeof *r);
  r->shapes = json_object();
  r->deleted = json_object();
  int rc = ring_init(&r->logs[0], cap) | ring_init(&r->logs[1], cap);
  if (rc < 0 || !r->shapes || !r->deleted) {
    collab_replica_free(r);
    return -1;
  }
  return 0;
}

void collab_replica_free(collab_replica *r) {
  for (int l = 0; l < 2; l++) {
    collab_ring_reset(&r->logs[l], 0);
    free(r->logs[l].items);
    free(r->logs[l].lens);
  }
  json_decref(r->shapes);
  json_decref(r->deleted);
  memset(r, 0, sizeof *r);
}

int collab_replica_read(const collab_replica *r, collab_log log, uint64_t after, size_t max,
                        collab_item_fn fn, void *arg) {
  const collab_ring *g = &r->logs[log];
  if (after > g->head || after + 1 < g->first) return COLLAB_GONE;
  int n = 0;
  for (uint64_t o = after + 1; o <= g->head && (size_t)n < max; o++, n++) {
    size_t i = (size_t)((o - 1) % g->cap);
    fn(g->items[i], g->lens[i], o, arg);
  }
  return n;
}

json_t *collab_replica_snapshot(const collab_replica *r, uint64_t *offset) {
  json_t *a = json_array();
  *offset = r->logs[COLLAB_LOG_OPS].head;
  const char *k;
  json_t *v;
  json_object_foreach(r->shapes, k, v) json_array_append(a, v);
  return a;
}
