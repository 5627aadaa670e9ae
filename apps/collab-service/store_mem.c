/*
 * The in-memory board engine: boards in a chained hash, each a replica (replica.c) that is the
 * board itself. Everything is lost when the process ends, which is why its epoch is drawn anew
 * at every start (by the caller). Every call completes before it returns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "store.h"

typedef struct mem_board {
  collab_replica r;
  uint64_t joins;
  char name[];
} mem_board;

typedef struct mem_store {
  collab_store base;
  char epoch[65];
  uint64_t members;
  collab_map boards; /* name -> mem_board */
} mem_store;

static mem_board *find(collab_store *s, const char *name) {
  return collab_map_get(&((mem_store *)s)->boards, name);
}

static void board_free(void *value, void *store) {
  (void)store;
  mem_board *b = value;
  collab_replica_free(&b->r);
  free(b);
}

static void finish(collab_done_fn done, void *arg, int64_t value, const char *err) {
  collab_result r = {value, err, 0, 0, NULL, NULL};
  done(&r, arg);
}

/* A write's completion: its offset in this store's one epoch. */
static void written(mem_store *m, collab_done_fn done, void *arg, int64_t off) {
  collab_result r = {off, off < 0 ? "out of memory" : NULL, 0, 0, NULL, off > 0 ? m->epoch : NULL};
  done(&r, arg);
}

static const char *mem_epoch(collab_store *s) {
  return ((mem_store *)s)->epoch;
}

static void mem_open(collab_store *s, const char *name, const char *session, collab_done_fn done,
                     void *arg) {
  mem_store *m = (mem_store *)s;
  char err[120];
  mem_board *b = find(s, name);
  if (!b && m->boards.count >= s->limits.max_boards) {
    snprintf(err, sizeof err, "too many boards: %zu (--max-boards)", s->limits.max_boards);
    return finish(done, arg, COLLAB_ERR, err);
  }
  if (!b) {
    size_t len = strlen(name);
    b = calloc(1, sizeof *b + len + 1);
    if (!b) return finish(done, arg, COLLAB_ERR, "out of memory");
    memcpy(b->name, name, len + 1);
    if (collab_replica_init(&b->r, s->limits.history) < 0) {
      free(b);
      return finish(done, arg, COLLAB_ERR, "out of memory");
    }
    if (collab_map_put(&m->boards, b->name, b) < 0) {
      board_free(b, s);
      return finish(done, arg, COLLAB_ERR, "out of memory");
    }
  }
  collab_result r = {0, NULL, 0, 0, NULL, NULL};
  if (session) r.member = ++m->members, r.joins = b->joins++; /* no other instance to ask */
  done(&r, arg);
}

/* Appends `item` with its offset set, as compact text. */
static int64_t push(collab_ring *g, json_t *item) {
  json_object_set_new(item, "offset", json_integer((json_int_t)(g->head + 1)));
  char *text = json_dumps(item, JSON_COMPACT | JSON_PRESERVE_ORDER);
  int rc = text ? collab_ring_push(g, text, strlen(text)) : -1;
  free(text);
  return rc < 0 ? COLLAB_ERR : (int64_t)g->head;
}

static void not_open(const char *board, collab_done_fn done, void *arg) {
  char err[120];
  snprintf(err, sizeof err, "board '%s' is not open", board);
  finish(done, arg, COLLAB_ERR, err);
}

static void items(collab_store *s, const char *board, collab_log log) {
  if (s->events.items) s->events.items(board, log, s->events.user);
}

static void mem_edit(collab_store *s, const char *board, json_t *op, const char *by,
                     collab_done_fn done, void *arg) {
  mem_board *b = find(s, board);
  if (!b) return not_open(board, done, arg);
  collab_ring *g = &b->r.logs[COLLAB_LOG_OPS];
  char err[300];
  if (collab_shapes_apply(b->r.shapes, b->r.deleted, op, g->head + 1, board, &s->limits, err,
                          sizeof err) < 0)
    return finish(done, arg, COLLAB_ERR, err);
  /* "offset" first: push sets it into an object that already has the key. */
  json_t *item = json_pack("{s:i,s:O,s:s}", "offset", 0, "op", op, "by", by);
  int64_t off = item ? push(g, item) : COLLAB_ERR;
  json_decref(item);
  written((mem_store *)s, done, arg, off);
  /* b->name: `board` may be the caller's, gone with its completion. */
  if (off > 0) items(s, b->name, COLLAB_LOG_OPS);
}

static void mem_append(collab_store *s, const char *board, collab_log log, json_t *item,
                       collab_done_fn done, void *arg) {
  mem_board *b = find(s, board);
  if (!b) return not_open(board, done, arg);
  int64_t off = push(&b->r.logs[log], item);
  written((mem_store *)s, done, arg, off);
  if (off > 0) items(s, b->name, log);
}

static int mem_read(collab_store *s, const char *board, collab_log log, uint64_t after, size_t max,
                    collab_item_fn fn, void *arg) {
  mem_board *b = find(s, board);
  if (!b) return after == 0 ? 0 : COLLAB_GONE;
  return collab_replica_read(&b->r, log, after, max, fn, arg);
}

static json_t *mem_snapshot(collab_store *s, const char *board, uint64_t *offset) {
  mem_board *b = find(s, board);
  if (b) return collab_replica_snapshot(&b->r, offset);
  *offset = 0;
  return json_array();
}

static uint64_t mem_head(collab_store *s, const char *board, collab_log log) {
  mem_board *b = find(s, board);
  return b ? b->r.logs[log].head : 0;
}

static uint64_t mem_oldest(collab_store *s, const char *board, collab_log log) {
  mem_board *b = find(s, board);
  return b ? b->r.logs[log].first : 1;
}

static void mem_free(collab_store *s) {
  mem_store *m = (mem_store *)s;
  collab_map_each(&m->boards, board_free, s);
  collab_map_free(&m->boards);
  free(m);
}

static const collab_store_ops mem_ops = {
    .name = "memory",
    .epoch = mem_epoch,
    .open = mem_open,
    .edit = mem_edit,
    .append = mem_append,
    .read = mem_read,
    .snapshot = mem_snapshot,
    .head = mem_head,
    .oldest = mem_oldest,
    .free = mem_free,
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
