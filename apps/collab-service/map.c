#include "map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t slot(const collab_map *m, const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
  return (size_t)(h & (m->nbuckets - 1));
}

int collab_map_init(collab_map *m, size_t expect) {
  m->count = 0;
  m->nbuckets = 64;
  while (m->nbuckets < expect && m->nbuckets < 65536) m->nbuckets *= 2;
  m->buckets = calloc(m->nbuckets, sizeof *m->buckets);
  return m->buckets ? 0 : -1;
}

void collab_map_free(collab_map *m) {
  for (size_t i = 0; m->buckets && i < m->nbuckets; i++) {
    for (collab_map_node *n = m->buckets[i], *next; n; n = next) {
      next = n->next;
      free(n);
    }
  }
  free(m->buckets);
  m->buckets = NULL;
}

void *collab_map_get(const collab_map *m, const char *key) {
  for (collab_map_node *n = m->buckets[slot(m, key)]; n; n = n->next)
    if (!strcmp(n->key, key)) return n->value;
  return NULL;
}

int collab_map_put(collab_map *m, const char *key, void *value) {
  collab_map_node *n = malloc(sizeof *n);
  if (!n) return -1;
  size_t i = slot(m, key);
  *n = (collab_map_node){m->buckets[i], key, value};
  m->buckets[i] = n;
  m->count++;
  return 0;
}

void *collab_map_del(collab_map *m, const char *key) {
  for (collab_map_node **pp = &m->buckets[slot(m, key)]; *pp; pp = &(*pp)->next) {
    collab_map_node *n = *pp;
    if (strcmp(n->key, key)) continue;
    void *value = n->value;
    *pp = n->next;
    free(n);
    m->count--;
    return value;
  }
  return NULL;
}

void collab_map_each(const collab_map *m, void (*fn)(void *value, void *arg), void *arg) {
  for (size_t i = 0; i < m->nbuckets; i++)
    for (collab_map_node *n = m->buckets[i]; n; n = n->next) fn(n->value, arg);
}
