/*
 * A string -> pointer map for collab-service (boards by name): chained, FNV-1a, a power-of-two
 * bucket count fixed at creation (sized for the board limit, so chains stay short). Keys are
 * borrowed from the values (each value holds its own name).
 */
#ifndef COLLAB_MAP_H
#define COLLAB_MAP_H

#include <stddef.h>

typedef struct collab_map_node {
  struct collab_map_node *next;
  const char *key;
  void *value;
} collab_map_node;

typedef struct collab_map {
  collab_map_node **buckets;
  size_t nbuckets, count;
} collab_map;

/* 0, or -1 when out of memory. `expect` sizes the buckets (at least 64, at most 65,536). */
int collab_map_init(collab_map *m, size_t expect);
/* Frees the nodes (not the values); call collab_map_each first to free those. */
void collab_map_free(collab_map *m);
void *collab_map_get(const collab_map *m, const char *key);
/* Adds `key` (must be absent; borrowed, must live as long as the entry): 0 or -1 (memory). */
int collab_map_put(collab_map *m, const char *key, void *value);
/* Removes `key`: its value, or NULL when absent (the value is the caller's to free). */
void *collab_map_del(collab_map *m, const char *key);
/* Calls fn for every value (which may not change the map). */
void collab_map_each(const collab_map *m, void (*fn)(void *value, void *arg), void *arg);

#endif
