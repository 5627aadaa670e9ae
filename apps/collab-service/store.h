/*
 * collab-service's board engine: boards of shapes, their op logs and chat logs, behind a storage
 * interface (docs/COLLAB.md, "Storage"). Two engines: in memory (store_mem.c, the default) and
 * Redis (store_redis.c, several service instances sharing boards).
 *
 * Writes are asynchronous (Redis orders them); reads are synchronous, served from a replica of
 * each open board kept by the engine (replica.c): its shapes and the kept history of both logs,
 * always a consistent prefix of the board's log. The memory engine's replica is the board itself.
 *
 * Ops and chat messages are JSON (jansson). An engine stores each log item as its final text
 * ({"offset":N,...}), so a subscriber's read hands out bytes to send as they are.
 */
#ifndef COLLAB_STORE_H
#define COLLAB_STORE_H

#include <jansson.h>
#include <stdbool.h>
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
#define COLLAB_ERR  -1 /* refused: the message says why (a client error, or storage unavailable) */
#define COLLAB_GONE -2 /* read: `after` is outside the history kept */

/* The two logs of a board. */
typedef enum collab_log { COLLAB_LOG_OPS = 0, COLLAB_LOG_CHAT = 1 } collab_log;

/* A read's item: the item's JSON text (valid during the call) and its offset. */
typedef void (*collab_item_fn)(const char *json, size_t len, uint64_t offset, void *arg);

/* The result of an asynchronous call, valid during its completion callback. */
typedef struct collab_result {
  int64_t value;        /* edit, append: the offset (>= 1); open, sync: 0; or COLLAB_ERR (sync:
                           or COLLAB_GONE) */
  const char *err;      /* COLLAB_ERR: one line for the client, e.g. "storage unavailable: ..." */
  uint64_t member;      /* open with a session: its member's number (>= 1), new or not */
  uint64_t joins;       /* and that member's join number on the board (0, 1, ...: colors, order) */
  const json_t *record; /* lookup: the member found, {"id","name","color","n","s"} */
  const char *epoch;    /* edit, append: the epoch its offset belongs to (NULL on error) */
} collab_result;

/*
 * Completion of open, edit, append: called exactly once, maybe before the call returns (the
 * memory engine, or a request refused at once), else later from the event loop. The caller
 * must not touch what it passed to the call after making it, other than through `arg`.
 */
typedef void (*collab_done_fn)(const collab_result *r, void *arg);

/*
 * What an engine tells its user (the service) as it happens, for its own writes and, for
 * Redis, other instances'. Any may be NULL. Boards are names.
 */
typedef struct collab_events {
  /* New items in a board's replica: subscribers of that log have something to read. */
  void (*items)(const char *board, collab_log log, void *user);
  /* The epoch changed (the stored boards were lost): every replica is gone, offsets of the old
   * epoch mean nothing. Called before epoch() returns the new one to any request. */
  void (*reset)(void *user);
  /* The members of a board known to every instance changed (others() has the new list). */
  void (*members)(const char *board, void *user);
  /* A member left the board everywhere (its presence stream ended on another instance). */
  void (*left)(const char *board, const char *id, void *user);
  /* A member of another instance moved its cursor on a board. */
  void (*cursor)(const char *board, const char *id, double x, double y, void *user);
  void *user;
} collab_events;

typedef struct collab_store collab_store;

/* The interface. Boards are names already validated by collab_board_name_ok. */
typedef struct collab_store_ops {
  const char *name; /* "memory", "redis" */
  /* Changes whenever stored boards may have been lost: offsets of another epoch mean nothing.
   * The Redis engine's is "" until it first reached Redis. */
  const char *(*epoch)(collab_store *s);
  /*
   * Makes sure the board exists (created empty, within max_boards) and its replica is loaded.
   * With a session (NULL: none), also the session's member: the one it has on the board if the
   * engine knows one (Redis: joined through another instance), else a new member number and a
   * join of the board (result.member, result.joins). Result 0, or COLLAB_ERR (too many boards,
   * storage unavailable).
   */
  void (*open)(collab_store *s, const char *board, const char *session, collab_done_fn done,
               void *arg);
  /*
   * Checks `op` (normalized by collab_op_parse; the engine takes a reference until done) against
   * the board's shapes, applies it (last writer wins per field) and appends
   * {"offset":N,"op":OP,"by":BY} to the ops log, all or nothing, in the one order every instance
   * sees. An add without an id gets "s<offset>" (written into `op` before done). Result: the
   * offset (>= 1), or COLLAB_ERR (deleted or unknown shape, id in use, board full, board not
   * open, storage unavailable). `by` is copied.
   */
  void (*edit)(collab_store *s, const char *board, json_t *op, const char *by, collab_done_fn done,
               void *arg);
  /* Appends `item` (an object; "offset" is set into it, first) to a log, in practice the chat:
   * result the offset, or COLLAB_ERR (board not open, storage unavailable). The engine takes a
   * reference to `item` until done. */
  void (*append)(collab_store *s, const char *board, collab_log log, json_t *item,
                 collab_done_fn done, void *arg);
  /* Calls fn for the replica's items after `after`, oldest first, at most `max` (0: only the
   * check): returns how many, or COLLAB_GONE (after older than the oldest kept minus one, or
   * newer than the last offset; a board not loaded is empty at offset 0). */
  int (*read)(collab_store *s, const char *board, collab_log log, uint64_t after, size_t max,
              collab_item_fn fn, void *arg);
  /*
   * Brings the replica of an open board up to `offset` of a log, after checking the stored epoch
   * (a new one is taken first: events.reset, the replica loaded again). For a subscriber whose
   * `from` came from another instance, or from before this one reloaded the board: its replica
   * may merely lag. Result 0 once the replica's head is at least `offset` (in the epoch epoch()
   * then returns), COLLAB_GONE when the stored log ends before `offset`, or COLLAB_ERR (storage
   * unavailable). NULL for an engine whose replica is the store itself (memory).
   */
  void (*sync)(collab_store *s, const char *board, collab_log log, uint64_t offset,
               collab_done_fn done, void *arg);
  /* The board's shapes (a new array, the caller's) and in *offset the last op they include; a
   * board not loaded is empty at 0. */
  json_t *(*snapshot)(collab_store *s, const char *board, uint64_t *offset);
  /* The last offset of a log (0 when empty or not loaded), and the oldest one kept (head + 1
   * when none is). */
  uint64_t (*head)(collab_store *s, const char *board, collab_log log);
  uint64_t (*oldest)(collab_store *s, const char *board, collab_log log);

  /*
   * Members across instances (all NULL for an engine of one instance: the memory engine). A
   * member is held by the instances that serve its session's requests:
   *  - member_put: this instance holds `member`, {"id","name","color","n","s"} (n its join
   *    number, s its session), until member_drop; the engine keeps it known to the others
   *    (refreshed: a dead instance's members go after an expiry). done (may be NULL) completes
   *    once the others can find it (a join answers then: the browser's next request may reach
   *    another instance);
   *  - member_drop: this instance lets it go; `everywhere` (its presence stream ended): the
   *    member leaves the board, every holder is told (events.left);
   *  - lookup: the member of `session` on the board (result.record, NULL when it has none),
   *    for a request that came to an instance which does not hold it; COLLAB_ERR when the
   *    engine cannot tell (storage unavailable);
   *  - cursor: relays a move to the other instances (never stored);
   *  - others: every member known on the board (this instance's included), each
   *    {"id","name","color","n","s"} (borrowed, valid until the next event or call; NULL when
   *    none).
   */
  void (*member_put)(collab_store *s, const char *board, const json_t *member, collab_done_fn done,
                     void *arg);
  void (*member_drop)(collab_store *s, const char *board, const char *id, bool everywhere);
  void (*lookup)(collab_store *s, const char *board, const char *session, collab_done_fn done,
                 void *arg);
  void (*cursor)(collab_store *s, const char *board, const char *id, double x, double y);
  const json_t *(*others)(collab_store *s, const char *board);

  /* Stops I/O so the event loop can end (pending calls complete with COLLAB_ERR). May be NULL
   * (nothing to stop). */
  void (*close)(collab_store *s);
  /* Frees everything. Redis: after close, once the loop has run its handles' close callbacks. */
  void (*free)(collab_store *s);
} collab_store_ops;

struct collab_store {
  const collab_store_ops *ops;
  collab_limits limits;
  collab_events events; /* the user's (zeros: none) */
};

/* The in-memory engine, with `epoch` (at most 64 bytes, copied; NULL: "0"): the caller draws it
 * at start from a random source. NULL when out of memory. Completes every call before it
 * returns. */
collab_store *collab_store_mem_new(const collab_limits *limits, const char *epoch);

/* ---- Validation and rules shared by every engine (board.c) ---- */

/* A board name: 1 to 64 bytes of [A-Za-z0-9._-]. */
int collab_board_name_ok(const char *s);

/*
 * Validates a board.edit "op" and returns its normalized copy (new reference): {"kind":K,
 * "shape":{...}} with only the fields the kind uses, defaults filled in for add. NULL with the
 * reason in err ("bad op: ...") otherwise.
 */
json_t *collab_op_parse(const json_t *op, const collab_limits *l, char *err, size_t errlen);

/*
 * The rules every engine follows (docs/COLLAB.md), in two steps so that an engine can check an
 * op against a board before it knows the op is committed:
 *  - check: may a normalized op be applied to `shapes` (id -> shape object) with `deleted`
 *    (id -> offset of the delete, a set in delete order)? `offset` is the offset the op will
 *    have: it names an add without id (written into `op`, id first). 0, or COLLAB_ERR with err;
 *    nothing is changed on error.
 *  - commit: applies a checked op (last writer wins per field; a delete leaves a tombstone,
 *    at most 4 x max_shapes of them, the oldest dropped first).
 * apply is both.
 */
int collab_shapes_check(const json_t *shapes, const json_t *deleted, json_t *op, uint64_t offset,
                        const char *board, const collab_limits *l, char *err, size_t errlen);
void collab_shapes_commit(json_t *shapes, json_t *deleted, const json_t *op, uint64_t offset,
                          const collab_limits *l);
int collab_shapes_apply(json_t *shapes, json_t *deleted, json_t *op, uint64_t offset,
                        const char *board, const collab_limits *l, char *err, size_t errlen);

/* ---- A board's replica (replica.c): what reads are served from ---- */

/* A log's last `cap` items as text, offsets first..head (first == head + 1 when empty). */
typedef struct collab_ring {
  char **items; /* items[(offset - 1) % cap], NUL-terminated JSON */
  size_t *lens;
  size_t cap;
  uint64_t head, first;
} collab_ring;

typedef struct collab_replica {
  json_t *shapes;  /* id -> shape */
  json_t *deleted; /* id -> offset of its delete (bounded, oldest first) */
  collab_ring logs[2];
} collab_replica;

/* An empty board at offset 0 whose logs keep `cap` items: 0, or -1 when out of memory. */
int collab_replica_init(collab_replica *r, size_t cap);
void collab_replica_free(collab_replica *r);
/* Empties a log and makes `head` its last offset (loading a board from the middle of its log). */
void collab_ring_reset(collab_ring *g, uint64_t head);
/* Appends the item of offset head + 1 (`text`, len bytes, copied): 0, or -1 (out of memory). */
int collab_ring_push(collab_ring *g, const char *text, size_t len);
/* ops->read, ops->snapshot on a replica. */
int collab_replica_read(const collab_replica *r, collab_log log, uint64_t after, size_t max,
                        collab_item_fn fn, void *arg);
json_t *collab_replica_snapshot(const collab_replica *r, uint64_t *offset);

#endif
