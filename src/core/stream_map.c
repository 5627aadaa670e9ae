/* Stream map: open addressing keyed by stream id, plus a free list of stream structs. */
#include "core/stream_map.h"

#include <string.h>

void rs__smap_init(rs_stream_map *m, const rs_mem *mem, uint32_t free_max) {
  memset(m, 0, sizeof(*m));
  m->mem = mem;
  m->free_max = free_max;
}

void rs__reasm_free(const rs_mem *mem, rs_reasm *r) {
  if (!r) return;
  if (r->budget) *r->budget -= r->md_cap + r->data_cap;
  mem->free(r->md, mem->user);
  mem->free(r->data, mem->user);
  mem->free(r, mem->user);
}

void rs__smap_free(rs_stream_map *m) {
  for (uint32_t i = 0; i < m->cap; i++) {
    rs_stream *s = m->slots[i];
    if (!s) continue;
    rs__reasm_free(m->mem, s->reasm);
    m->mem->free(s, m->mem->user);
  }
  m->mem->free(m->slots, m->mem->user);
  while (m->free_list) {
    rs_stream *s = m->free_list;
    m->free_list = s->next;
    m->mem->free(s, m->mem->user);
  }
  m->slots = NULL;
  m->cap = m->count = m->free_count = 0;
}

rs_stream *rs__stream_alloc(rs_stream_map *m) {
  rs_stream *s = m->free_list;
  if (s) {
    m->free_list = s->next;
    m->free_count--;
  } else {
    s = m->mem->malloc(sizeof(*s), m->mem->user);
    if (!s) return NULL;
  }
  memset(s, 0, sizeof(*s));
  return s;
}

void rs__stream_release(rs_stream_map *m, rs_stream *s) {
  rs__reasm_free(m->mem, s->reasm);
  s->reasm = NULL;
  if (m->free_count < m->free_max) {
    s->next = m->free_list;
    m->free_list = s;
    m->free_count++;
  } else {
    m->mem->free(s, m->mem->user);
  }
}

/* Fibonacci hashing: stream ids are sequential, the multiply spreads them over the table. */
static inline uint32_t slot_of(uint32_t id, uint32_t cap) {
  return (uint32_t)(((uint64_t)id * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
}

rs_stream *rs__smap_get(const rs_stream_map *m, uint32_t id) {
  if (!m->cap) return NULL;
  uint32_t mask = m->cap - 1;
  for (uint32_t i = slot_of(id, m->cap);; i = (i + 1) & mask) {
    rs_stream *s = m->slots[i];
    if (!s) return NULL;
    if (s->id == id) return s;
  }
}

static void insert_slot(rs_stream **slots, uint32_t cap, rs_stream *s) {
  uint32_t mask = cap - 1;
  uint32_t i = slot_of(s->id, cap);
  while (slots[i]) i = (i + 1) & mask;
  slots[i] = s;
}

static int grow(rs_stream_map *m) {
  uint32_t ncap = m->cap ? m->cap * 2 : 16;
  rs_stream **ns = m->mem->calloc(ncap, sizeof(*ns), m->mem->user);
  if (!ns) return RS_ERR_NOMEM;
  for (uint32_t i = 0; i < m->cap; i++) {
    if (m->slots[i]) insert_slot(ns, ncap, m->slots[i]);
  }
  m->mem->free(m->slots, m->mem->user);
  m->slots = ns;
  m->cap = ncap;
  return 0;
}

int rs__smap_reserve(rs_stream_map *m) {
  /* Load factor at most 1/2 keeps probe sequences short. */
  if ((uint64_t)(m->count + 1) * 2 > m->cap) return grow(m);
  return 0;
}

int rs__smap_put(rs_stream_map *m, rs_stream *s) {
  int rc = rs__smap_reserve(m);
  if (rc) return rc;
  insert_slot(m->slots, m->cap, s);
  m->count++;
  return 0;
}

rs_stream *rs__smap_remove(rs_stream_map *m, uint32_t id) {
  if (!m->cap) return NULL;
  uint32_t mask = m->cap - 1;
  uint32_t i = slot_of(id, m->cap);
  for (;; i = (i + 1) & mask) {
    if (!m->slots[i]) return NULL;
    if (m->slots[i]->id == id) break;
  }
  rs_stream *found = m->slots[i];
  m->slots[i] = NULL;
  m->count--;
  /* Backward-shift: move later members of the probe run into the hole when their home slot
   * allows it, so lookups never need tombstones. */
  uint32_t hole = i;
  for (uint32_t j = (i + 1) & mask; m->slots[j]; j = (j + 1) & mask) {
    uint32_t home = slot_of(m->slots[j]->id, m->cap);
    /* Can slot j's entry live at `hole`? Only if home is not cyclically in (hole, j]. */
    bool in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!in_range) {
      m->slots[hole] = m->slots[j];
      m->slots[j] = NULL;
      hole = j;
    }
  }
  return found;
}

rs_stream *rs__smap_drain(rs_stream_map *m) {
  rs_stream *list = NULL;
  for (uint32_t i = 0; i < m->cap; i++) {
    rs_stream *s = m->slots[i];
    if (!s) continue;
    m->slots[i] = NULL;
    s->next = list;
    list = s;
  }
  m->count = 0;
  return list;
}
