/*
 * collab-service's board engine: boards of shapes, their op logs and chat logs, behind a storage
 * interface (docs/COLLAB.md, "Storage"). No I/O, no clock, no event loop: the service calls in,
 * the engine answers. The in-memory engine (store_mem.c) is the default; a Redis engine follows.
 *
 * Ops and chat messages are JSON (jansson). An engine stores each log item as its final text
 * ({"offset":N,...}), so a subscriber's read hands out bytes to send as they are.
 */
#ifndef COLLAB_STORE_H
#define COLLAB_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Limits (docs/COLLAB.md, "Limits"), fixed when a store is created. */
typedef struct collab_limits {
  size_t history;     /* items kept per log per board */
  size_t max_boards;  /* boards per store */
  size_t max_shapes;  /* live shapes per board */
  size_t max_members; /* members per board (the service's; kept here with the others) */
  size_t max_text;    /* bytes of a shape's text or a chat message */
} collab_limits;

/* Fills the defaults: history 1000, max_boards 1000, max_shapes 1000, max_members 100,
 * max_text 4000. */
void collab_limits_default(collab_limits *l);

/* Results beyond offsets (negative). */
#define COLLAB_ERR  -1 /* refused: the message says why (a client error) */
#define COLLAB_GONE -2 /* read: `after` is outside the history kept */

/* The two logs of a board. */
typedef enum collab_log { COLLAB_LOG_OPS = 0, COLLAB_LOG_CHAT = 1 } collab_log;

/* A read's item: the item's JSON text (valid during the call) and its offset. */
typedef void (*collab_item_fn)(const char *json, size_t len, uint64_t offset, void *arg);

typedef struct collab_store collab_store;

/*
 * The interface. `err` (errlen bytes, may be 0) receives a one-line message for the client when
 * a call returns COLLAB_ERR. Boards are names already validated by collab_board_name_ok.
 */
typedef struct collab_store_ops {
  const char *name; /* "memory" */
  /* Changes whenever stored boards may have been lost: offsets of another epoch mean nothing. */
  const char *(*epoch)(collab_store *s);
  /* The board exists afterwards (created empty): 0, or COLLAB_ERR (too many boards). */
  int (*open)(collab_store *s, const char *board, char *err, size_t errlen);
  /*
   * Checks `op` (normalized by collab_op_parse) against the board's shapes, applies it (last
   * writer wins per field) and appends {"offset":N,"op":OP,"by":BY} to the ops log, all or
   * nothing. An add without an id gets "s<offset>" (written into `op`). Returns the offset (>= 1),
   * or COLLAB_ERR (deleted or unknown shape, id in use, board full, board not open).
   */
  int64_t (*edit)(collab_store *s, const char *board, json_t *op, const char *by, char *err,
                  size_t errlen);
  /* Appends `item` (an object; "offset" is set into it) to the chat log: the offset, or
   * COLLAB_ERR (board not open). */
  int64_t (*append)(collab_store *s, const char *board, collab_log log, json_t *item, char *err,
                    size_t errlen);
  /* Calls fn for the items after `after`, oldest first, at most `max`: returns how many, or
   * COLLAB_GONE (after older than the oldest kept minus one, or newer than the last offset;
   * an unknown board has offset 0). */
  int (*read)(collab_store *s, const char *board, collab_log log, uint64_t after, size_t max,
              collab_item_fn fn, void *arg);
  /* The board's shapes (a new array, the caller's) and in *offset the last op they include; an
   * unknown board is empty at 0. */
  json_t *(*snapshot)(collab_store *s, const char *board, uint64_t *offset);
  /* The last offset of a log (0 when empty or unknown). */
  uint64_t (*head)(collab_store *s, const char *board, collab_log log);
  void (*free)(collab_store *s);
} collab_store_ops;

struct collab_store {
  const collab_store_ops *ops;
  collab_limits limits;
};

/* The in-memory engine, with `epoch` (at most 64 bytes, copied; NULL: "0"): the caller draws it
 * at start from a random source. NULL when out of memory. */
collab_store *collab_store_mem_new(const collab_limits *limits, const char *epoch);

/* ---- Validation shared by every engine (board.c) ---- */

/* A board name: 1 to 64 bytes of [A-Za-z0-9._-]. */
int collab_board_name_ok(const char *s);

/*
 * Validates a board.edit "op" and returns its normalized copy (new reference): {"kind":K,
 * "shape":{...}} with only the fields the kind uses, defaults filled in for add. NULL with the
 * reason in err ("bad op: ...") otherwise.
 */
json_t *collab_op_parse(const json_t *op, const collab_limits *l, char *err, size_t errlen);

/*
 * Applies a normalized op to `shapes` (id -> shape object) with `deleted` (id -> offset of the
 * delete, an object used as a set): the rules every engine follows (docs/COLLAB.md). `offset` is
 * the offset the op will have (it names an add without id). Returns 0, or COLLAB_ERR with err.
 * Nothing is changed on error.
 */
int collab_shapes_apply(json_t *shapes, json_t *deleted, json_t *op, uint64_t offset,
                        const char *board, const collab_limits *l, char *err, size_t errlen);

#endif
