/*
 * The in-memory board engine: boards in a chained hash, shapes as a jansson object per board,
 * each log a ring of its last `history` items as JSON text. Everything is lost when the process
 * ends, which is why its epoch is drawn anew at every start (by the caller).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "store.h"

typedef struct ring {
  char **items; /* items[(offset - 1) % cap], NUL-terminated JSON */
  size_t *lens;
  uint64_t head; /* last offset, 0 when empty */
} ring;

typedef struct mem_board {
  json_t *shapes;  /* id -> shape */
  json_t *deleted; /* id -> offset of its delete (bounded, oldest first) */
  ring logs[2];
  char name[];
} mem_board;

typedef struct mem_store {
  collab_store base;
  char epoch[65];
  collab_map boards; /* name -> mem_board */
} mem_store;

static mem_board *find(mem_store *m, const char *name) {
  return collab_map_get(&m->boards, name);
}

static void board_free(void *value, void *store);

static const char *mem_epoch(collab_store *s) {
  return ((mem_store *)s)->epoch;
}

static int mem_open(collab_store *s, const char *name, char *err, size_t errlen) {
  mem_store *m = (mem_store *)s;
  if (find(m, name)) return 0;
  if (m->boards.count >= s->limits.max_boards) {
    if (errlen) snprintf(err, errlen, "too many boards: %zu (--max-boards)", s->limits.max_boards);
    return COLLAB_ERR;
  }
  size_t len = strlen(name), cap = s->limits.history;
  mem_board *b = calloc(1, sizeof *b + len + 1);
  if (!b) return snprintf(err, errlen, "out of memory"), COLLAB_ERR;
  memcpy(b->name, name, len + 1);
  b->shapes = json_object();
  b->deleted = json_object();
  for (int i = 0; i < 2; i++) {
    b->logs[i].items = calloc(cap, sizeof(char *));
    b->logs[i].lens = calloc(cap, sizeof(size_t));
  }
  if (!b->shapes || !b->deleted || !b->logs[0].items || !b->logs[0].lens || !b->logs[1].items ||
      !b->logs[1].lens) {
    board_free(b, s);
    return snprintf(err, errlen, "out of memory"), COLLAB_ERR;
  }
  if (collab_map_put(&m->boards, b->name, b) < 0) {
    board_free(b, s);
    return snprintf(err, errlen, "out of memory"), COLLAB_ERR;
  }
  return 0;
}

/* Appends `item` with its offset set, as compact text. */
static uint64_t ring_append(ring *r, size_t cap, json_t *item) {
  uint64_t off = r->head + 1;
  json_object_set_new(item, "offset", json_integer((json_int_t)off));
  size_t i = (size_t)((off - 1) % cap);
  free(r->items[i]);
  r->items[i] = json_dumps(item, JSON_COMPACT | JSON_PRESERVE_ORDER);
  r->lens[i] = r->items[i] ? strlen(r->items[i]) : 0;
  r->head = off;
  return off;
}

static int64_t not_open(const char *board, char *err, size_t errlen) {
  if (errlen) snprintf(err, errlen, "board '%s' is not open", board);
  return COLLAB_ERR;
}

static int64_t mem_edit(collab_store *s, const char *board, json_t *op, const char *by, char *err,
                        size_t errlen) {
  mem_board *b = find((mem_store *)s, board);
  if (!b) return not_open(board, err, errlen);
  ring *r = &b->logs[COLLAB_LOG_OPS];
  if (collab_shapes_apply(b->shapes, b->deleted, op, r->head + 1, board, &s->limits, err, errlen) <
      0)
    return COLLAB_ERR;
  /* "offset" first: ring_append sets it into an object that already has the key. */
  json_t *item = json_pack("{s:i,s:O,s:s}", "offset", 0, "op", op, "by", by);
  uint64_t off = ring_append(r, s->limits.history, item);
  json_decref(item);
  return (int64_t)off;
}

static int64_t mem_append(collab_store *s, const char *board, collab_log log, json_t *item,
                          char *err, size_t errlen) {
  mem_board *b = find((mem_store *)s, board);
  if (!b) return not_open(board, err, errlen);
  return (int64_t)ring_append(&b->logs[log], s->limits.history, item);
}

static int mem_read(collab_store *s, const char *board, collab_log log, uint64_t after, size_t max,
                    collab_item_fn fn, void *arg) {
  mem_board *b = find((mem_store *)s, board);
  uint64_t head = b ? b->logs[log].head : 0, cap = s->limits.history;
  uint64_t oldest = head > cap ? head - cap + 1 : 1;
  if (after > head || after + 1 < oldest) return COLLAB_GONE;
  int n = 0;
  for (uint64_t o = after + 1; o <= head && (size_t)n < max; o++, n++) {
    size_t i = (size_t)((o - 1) % cap);
    fn(b->logs[log].items[i], b->logs[log].lens[i], o, arg);
  }
  return n;
}

static json_t *mem_snapshot(collab_store *s, const char *board, uint64_t *offset) {
  mem_board *b = find((mem_store *)s, board);
  json_t *a = json_array();
  *offset = b ? b->logs[COLLAB_LOG_OPS].head : 0;
  if (!b) return a;
  const char *k;
  json_t *v;
  json_object_foreach(b->shapes, k, v) json_array_append(a, v);
  return a;
}

static uint64_t mem_head(collab_store *s, const char *board, collab_log log) {
  mem_board *b = find((mem_store *)s, board);
  return b ? b->logs[log].head : 0;
}

static void board_free(void *value, void *store) {
  mem_board *b = value;
  collab_store *s = store;
  for (int l = 0; l < 2; l++) {
    for (size_t j = 0; b->logs[l].items && j < s->limits.history; j++) free(b->logs[l].items[j]);
    free(b->logs[l].items);
    free(b->logs[l].lens);
  }
  json_decref(b->shapes);
  json_decref(b->deleted);
  free(b);
}

static void mem_free(collab_store *s) {
  mem_store *m = (mem_store *)s;
  collab_map_each(&m->boards, board_free, s);
  collab_map_free(&m->boards);
  free(m);
}

static const collab_store_ops mem_ops = {
    "memory", mem_epoch, mem_open, mem_edit, mem_append, mem_read, mem_snapshot, mem_head, mem_free,
};

collab_store *collab_store_mem_new(const collab_limits *limits, const char *epoch) {
  mem_store *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->base.ops = &mem_ops;
  m->base.limits = *limits;
  if (m->base.limits.history == 0) m->base.limits.history = 1;
  snprintf(m->epoch, sizeof m->epoch, "%s", epoch ? epoch : "0");
  if (collab_map_init(&m->boards, limits->max_boards) < 0) return free(m), NULL;
  return &m->base;
}
