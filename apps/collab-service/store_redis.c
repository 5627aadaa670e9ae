/*
 * The Redis board engine. Redis holds the boards (redis_scripts.c has the layout) and orders
 * their writes; every instance keeps a replica of each board it serves (replica.c), a prefix of
 * the board's log in Redis, which reads, snapshots and subscribers are served from.
 *
 * Writes: an edit is checked against the replica at its head H (board.c's rules, the only
 * implementation of them), then sent with H to the edit script, which commits it as offset H+1
 * only if the board's head is still H. Otherwise the script answers the entries the replica
 * lacks; the replica applies them and the edit is checked again (at most MAX_ATTEMPTS times). So
 * two instances never hand out the same offset, and every replica applies the same ops in the
 * same order. An instance sends one edit per board at a time (its own edits never conflict);
 * the others wait in the board's queue. Chat lines have no rule to check: the script assigns
 * their offset.
 *
 * Reads keep up through the board's channel: the scripts publish every item; an item whose
 * offset is head + 1 is applied, an older one ignored, a newer one (a gap: a message lost while
 * disconnected) makes the replica catch up with the tail script, or load the board again when
 * the history it needs is gone.
 *
 * The epoch: a key created with a random value when missing. A script that finds another epoch
 * (or none: Redis lost its data) changes nothing; the instance then takes the new epoch, drops
 * every replica and tells the service (subscribers get HISTORY_GONE).
 *
 * Members: the gateway spreads one browser's requests over the instances, so a member is
 * shared: it exists in Redis while some instance holds it. Each instance writes the members it
 * holds with an expiry it pushes back every refresh_ms; any instance's write drops the expired
 * ones (a dead instance's) and publishes the list when it changed. An instance that gets a
 * request from a session it holds no member for looks the member up (lookup) and holds it too.
 * A member leaves the board everywhere when its presence stream ends (published: the other
 * holders let it go); letting go of it on one instance (idle, connection gone) is not a leave
 * while another holds it. Cursors are published, never stored.
 */
#include "store_redis.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "map.h"
#include "redis_link.h"

#define MAX_ATTEMPTS 16    /* an edit checked again after the board moved under it */
#define TAIL_BATCH   256   /* entries per catch-up */
#define HEAD_BATCH   64    /* entries an edit's mismatch answers with */
#define MAX_WAITING  10000 /* requests waiting for Redis, per instance */
#define TURN_MS      100   /* how long a board's turn is kept for an instance that lost a race */
#define MAX_TURNS    200   /* times an edit waits for another instance's turn */
#define TURN_RETRY   25    /* ms: a turn not given back nor used is looked at again after it */

typedef struct rstore rstore;
typedef struct rboard rboard;

typedef enum rop_kind { ROP_OPEN, ROP_EDIT, ROP_APPEND, ROP_LOOKUP, ROP_SYNC } rop_kind;

/* A request waiting for Redis. */
typedef struct rop {
  struct rop *next;
  rboard *b;
  rop_kind kind;
  collab_log log;
  uint64_t offset; /* sync: the offset the replica must reach */
  char *session;   /* open (with a member), lookup */
  int attempts, turns;
  bool unnamed;      /* an add without id: named after the offset it gets, at each attempt */
  json_t *op, *item; /* edit, append (references) */
  char *text;        /* in flight: the item's text (edit), or its JSON after '{' (append) */
  char by[64];
  char epoch[80]; /* edit, append: the epoch of the script that committed it */
  collab_done_fn done;
  void *arg;
} rop;

struct rboard {
  rstore *st;
  collab_replica r;
  bool loaded;      /* r holds the board */
  bool loading;     /* the board is being (re)loaded */
  bool tailing[2];  /* a catch-up of the log is in flight */
  uint64_t seen[2]; /* the newest offset announced on the channel */
  rop *head, *tail; /* waiting, in arrival order */
  rop *editing;     /* this instance's edit in flight */
  bool turn_wait;   /* the next edit waits for another instance's turn */
  bool pumping;
  json_t *locals;  /* members this instance holds: id -> {"s": session, "r": record text,
                      "w": true until the record is written (a join, a rename)} */
  json_t *drops;   /* ids it stops holding, at the next presence write */
  json_t *leaves;  /* ids that leave the board, at the next presence write */
  json_t *records; /* the board's members: [{"id","name","color","n","s"}] */
  uint64_t records_v;
  bool presence_busy, presence_again;
  char name[];
};

struct rstore {
  collab_store base;
  uv_loop_t *loop;
  rlink *link;
  collab_redis_options o;
  char prefix[65];
  char inst[17]; /* this instance, in presence records and cursor events */
  char epoch[80];
  collab_limits relaxed; /* for items other instances wrote: any text length */
  collab_map boards;     /* name -> rboard */
  size_t waiting;
  uv_timer_t tick;
  uv_timer_t retry; /* boards waiting for a turn, looked at again */
  uint64_t last_refresh;
  uint64_t last_beat; /* when this instance last heard its own heartbeat on the events */
  bool closed;
};

static void say(rstore *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(rstore *st, const char *fmt, ...) {
  char line[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (st->o.log)
    st->o.log(line, st->o.log_user);
  else
    fprintf(stderr, "collab-service: %s\n", line);
}

static rboard *find(rstore *st, const char *name) {
  return collab_map_get(&st->boards, name);
}

static void key(char *out, size_t n, const rboard *b, const char *what) {
  snprintf(out, n, "%sb:%s:%s", b->st->prefix, b->name, what);
}

static void add_key(rlink_cmd *c, const rboard *b, const char *what) {
  char k[160];
  key(k, sizeof k, b, what);
  rlink_args(c, k);
}

static void add_epoch_key(rlink_cmd *c, const rstore *st) {
  rlink_argf(c, "%sepoch", st->prefix);
}

static void add_channel(rlink_cmd *c, const rboard *b) {
  rlink_argf(c, "%sev:%s", b->st->prefix, b->name);
}

static void events_items(rboard *b, collab_log log) {
  collab_events *e = &b->st->base.events;
  if (e->items) e->items(b->name, log, e->user);
}

/* ---- replies ---- */

static const redisReply *elem(const redisReply *r, size_t i) {
  return r && r->type == REDIS_REPLY_ARRAY && i < r->elements ? r->element[i] : NULL;
}

static bool is_status(const redisReply *r, const char *s) {
  const redisReply *e = elem(r, 0);
  return e && e->type == REDIS_REPLY_STRING && !strcmp(e->str, s);
}

static long long int_of(const redisReply *r) {
  if (!r) return -1;
  if (r->type == REDIS_REPLY_INTEGER) return r->integer;
  if (r->type == REDIS_REPLY_STRING) return strtoll(r->str, NULL, 10);
  return -1;
}

/* A stream entry: [id "<offset>-0", [field, value...]]: the offset and field j's value. */
static bool entry_of(const redisReply *e, uint64_t *off, const redisReply **text) {
  const redisReply *id = elem(e, 0), *fields = elem(e, 1);
  if (!id || id->type != REDIS_REPLY_STRING || !fields) return false;
  *off = strtoull(id->str, NULL, 10);
  for (size_t i = 0; i + 1 < fields->elements; i += 2) {
    const redisReply *f = fields->element[i], *v = fields->element[i + 1];
    if (f->type == REDIS_REPLY_STRING && !strcmp(f->str, "j") && v->type == REDIS_REPLY_STRING) {
      *text = v;
      return *off > 0;
    }
  }
  return false;
}

/* ---- requests ---- */

static void finish(rop *o, int64_t value, const char *err, uint64_t member, uint64_t joins) {
  char epoch[sizeof o->epoch];
  memcpy(epoch, o->epoch, sizeof epoch);
  collab_result r = {value, err, member, joins, NULL, value > 0 && epoch[0] ? epoch : NULL};
  o->b->st->waiting--;
  collab_done_fn done = o->done;
  void *arg = o->arg;
  json_decref(o->op);
  json_decref(o->item);
  free(o->text);
  free(o->session);
  free(o);
  done(&r, arg);
}

static void unavailable(rop *o) {
  char err[400];
  snprintf(err, sizeof err, "storage unavailable: redis %s: %s", rlink_name(o->b->st->link),
           rlink_reason(o->b->st->link));
  finish(o, COLLAB_ERR, err, 0, 0);
}

static void storage_error(rop *o, const char *what) {
  char err[400];
  snprintf(err, sizeof err, "storage error: %s", what);
  finish(o, COLLAB_ERR, err, 0, 0);
}

static rop *pop(rboard *b) {
  rop *o = b->head;
  if (o && !(b->head = o->next)) b->tail = NULL;
  return o;
}

static void push_front(rboard *b, rop *o) {
  free(o->text);
  o->text = NULL;
  o->next = b->head;
  b->head = o;
  if (!b->tail) b->tail = o;
}

static void fail_waiting(rboard *b) {
  for (rop *o; (o = pop(b));) unavailable(o);
}

static void pump(rboard *b);
static void on_retry(uv_timer_t *t);
static void load(rboard *b);
static void tail(rboard *b, collab_log log);
static void send_sync(rop *o);
static void epoch_seen(rstore *st, const char *epoch);

/* A request met another epoch: it goes again (on the new epoch's board) unless it did too
 * often. */
static void again(rop *o) {
  if (++o->attempts >= MAX_ATTEMPTS) {
    char err[200];
    snprintf(err, sizeof err, "board '%s' changed during %d attempts; try again", o->b->name,
             MAX_ATTEMPTS);
    return storage_error(o, err);
  }
  push_front(o->b, o);
}

/* What a script answered besides its own statuses: an error or {"EPOCH", e}. True when it was
 * one of those (o is then finished or queued again). */
static bool common_reply(rop *o, const redisReply *reply) {
  if (!reply) {
    unavailable(o);
    return true;
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    storage_error(o, reply->str);
    return true;
  }
  if (is_status(reply, "EPOCH")) {
    const redisReply *e = elem(reply, 1);
    epoch_seen(o->b->st, e && e->type == REDIS_REPLY_STRING ? e->str : "");
    again(o);
    return true;
  }
  return false;
}

static void open_reply(redisReply *reply, void *arg) {
  rop *o = arg;
  rboard *b = o->b;
  if (common_reply(o, reply)) return pump(b);
  if (is_status(reply, "FULL")) {
    char err[120];
    snprintf(err, sizeof err, "too many boards: %zu (--max-boards)", b->st->base.limits.max_boards);
    return finish(o, COLLAB_ERR, err, 0, 0);
  }
  long long member = int_of(elem(reply, 1)), joins = int_of(elem(reply, 2));
  if (!is_status(reply, "OK") || member < 1 || joins < 0)
    return storage_error(o, "unexpected answer to the open script");
  finish(o, 0, NULL, (uint64_t)member, (uint64_t)joins);
}

/* The open script's command for `b`: its keys and first arguments (epoch, board, max boards).
 * The caller adds the session, then, to load the board, "1" and the items kept per log. */
static rlink_cmd *open_cmd(rboard *b) {
  rstore *st = b->st;
  rlink_cmd *c = rlink_script_cmd(RLS_OPEN, 11);
  add_epoch_key(c, st);
  rlink_argf(c, "%sboards", st->prefix);
  rlink_argf(c, "%smembers", st->prefix);
  add_key(c, b, "joins");
  add_key(c, b, "meta");
  add_key(c, b, "shapes");
  add_key(c, b, "deleted");
  add_key(c, b, "ops");
  add_key(c, b, "chat");
  add_key(c, b, "ps");
  add_key(c, b, "ph");
  rlink_args(c, st->epoch);
  rlink_args(c, b->name);
  rlink_argf(c, "%zu", st->base.limits.max_boards);
  return c;
}

static void send_open(rop *o) {
  rboard *b = o->b;
  rstore *st = b->st;
  rlink_cmd *c = open_cmd(b);
  rlink_args(c, o->session);
  rlink_args(c, "0");
  rlink_args(c, "0");
  if (rlink_send(st->link, c, open_reply, o) < 0) unavailable(o);
}

/* A record as the service sees it: {"id","name","color","n","s"}, or NULL when it is not one. */
static json_t *record_of(const json_t *rec) {
  json_t *id = json_object_get(rec, "id"), *name = json_object_get(rec, "name"),
         *color = json_object_get(rec, "color"), *n = json_object_get(rec, "n"),
         *sess = json_object_get(rec, "s");
  if (!json_is_string(id) || json_string_length(id) >= 24 || !json_is_string(name) ||
      !json_is_string(color) || !json_is_integer(n) || !json_is_string(sess))
    return NULL;
  return json_pack("{s:O,s:O,s:O,s:O,s:O}", "id", id, "name", name, "color", color, "n", n, "s",
                   sess);
}

static void found(rop *o, const json_t *record) {
  collab_result r = {0, NULL, 0, 0, record, NULL};
  o->b->st->waiting--;
  collab_done_fn done = o->done;
  void *arg = o->arg;
  free(o->session);
  free(o);
  done(&r, arg);
}

static void no_member(rop *o) {
  finish(o, 0, NULL, 0, 0); /* no record */
}

static void lookup_reply(redisReply *reply, void *arg) {
  rop *o = arg;
  rboard *b = o->b;
  if (common_reply(o, reply)) return pump(b);
  const redisReply *text = elem(reply, 1);
  json_t *rec = NULL, *j = NULL;
  if (is_status(reply, "OK") && text && text->type == REDIS_REPLY_STRING && text->len > 0) {
    j = json_loadb(text->str, text->len, 0, NULL);
    rec = record_of(j);
  }
  if (rec)
    found(o, rec);
  else
    no_member(o);
  json_decref(j), json_decref(rec);
}

/* The session's member: from the last list when it is there, else from Redis. */
static void send_lookup(rop *o) {
  rboard *b = o->b;
  rstore *st = b->st;
  for (size_t i = 0; i < json_array_size(b->records); i++) {
    const json_t *rec = json_array_get(b->records, i);
    if (!strcmp(json_string_value(json_object_get(rec, "s")), o->session)) return found(o, rec);
  }
  rlink_cmd *c = rlink_script_cmd(RLS_MEMBER, 3);
  add_epoch_key(c, st);
  add_key(c, b, "ps");
  add_key(c, b, "ph");
  rlink_args(c, st->epoch);
  rlink_args(c, o->session);
  if (rlink_send(st->link, c, lookup_reply, o) < 0) unavailable(o);
}

/*
 * Applies the item of `off` to the replica's log (and for an op, to its shapes). 0 applied,
 * 1 already there, -1 a gap (the items before it are missing), -2 an item that does not apply
 * (bad data, or instances with different limits): the board must be loaded again.
 */
static int apply_item(rboard *b, collab_log log, uint64_t off, const char *text, size_t len) {
  collab_ring *g = &b->r.logs[log];
  if (off <= g->head) return 1;
  if (off != g->head + 1) return -1;
  json_t *op = NULL;
  rstore *st = b->st;
  if (log == COLLAB_LOG_OPS) {
    char err[300] = "not JSON";
    json_t *item = json_loadb(text, len, 0, NULL);
    op = item ? collab_op_parse(json_object_get(item, "op"), &st->relaxed, err, sizeof err) : NULL;
    json_decref(item);
    if (op && collab_shapes_check(b->r.shapes, b->r.deleted, op, off, b->name, &st->base.limits,
                                  err, sizeof err) < 0) {
      json_decref(op);
      op = NULL;
    }
    if (!op) {
      say(st, "board '%s': op %" PRIu64 " from redis does not apply (%s); loading the board again",
          b->name, off, err);
      return -2;
    }
  }
  int rc = collab_ring_push(g, text, len);
  if (rc == 0 && op) collab_shapes_commit(b->r.shapes, b->r.deleted, op, off, &st->base.limits);
  json_decref(op);
  return rc < 0 ? -2 : 0;
}

/* Applies stream entries (oldest first): 0, or apply_item's -1 / -2. */
static int apply_entries(rboard *b, collab_log log, const redisReply *entries) {
  int applied = 0, rc = 0;
  for (size_t i = 0; entries && i < entries->elements && rc >= 0; i++) {
    uint64_t off;
    const redisReply *text;
    rc = entry_of(entries->element[i], &off, &text) ? apply_item(b, log, off, text->str, text->len)
                                                    : -2;
    if (rc == 0) applied++;
  }
  if (applied) events_items(b, log);
  return rc < 0 ? rc : 0;
}

/* The board moved on without this replica being told (a gap, an answer out of order). */
static void behind(rboard *b, collab_log log, uint64_t off) {
  if (off > b->seen[log]) b->seen[log] = off;
  if (b->loaded && b->r.logs[log].head < off) tail(b, log);
}

/* Gives the board's turn back (if this instance has it): an edit that lost a race and will
 * not go again. */
static void release_turn(rboard *b) {
  rstore *st = b->st;
  rlink_cmd *c = rlink_script_cmd(RLS_EDIT, 6);
  add_epoch_key(c, st);
  add_key(c, b, "meta");
  add_key(c, b, "ops");
  add_key(c, b, "shapes");
  add_key(c, b, "deleted");
  add_key(c, b, "turn");
  rlink_args(c, st->epoch);
  rlink_args(c, "0");
  for (int i = 0; i < 3; i++) rlink_args(c, "");
  rlink_args(c, "1");
  rlink_args(c, "1");
  add_channel(c, b);
  rlink_args(c, "0");
  rlink_args(c, st->inst);
  rlink_argf(c, "%d", TURN_MS);
  rlink_send(st->link, c, NULL, NULL);
}

static void turn_over(rboard *b) {
  if (!b->turn_wait) return;
  b->turn_wait = false;
  pump(b);
}

static void edit_reply(redisReply *reply, void *arg) {
  rop *o = arg;
  rboard *b = o->b;
  b->editing = NULL;
  if (common_reply(o, reply)) return pump(b);
  if (is_status(reply, "HEAD")) {
    long long head = int_of(elem(reply, 1));
    if (b->loaded && !b->loading && apply_entries(b, COLLAB_LOG_OPS, elem(reply, 2)) < 0) load(b);
    if (head > 0) behind(b, COLLAB_LOG_OPS, (uint64_t)head);
    if (o->attempts + 1 >= MAX_ATTEMPTS) release_turn(b);
    again(o);
    return pump(b);
  }
  if (is_status(reply, "TURN")) { /* another instance goes first: after its op, or a while */
    if (++o->turns >= MAX_TURNS) {
      storage_error(o, "another instance holds the board's turn; try again");
      return pump(b);
    }
    push_front(b, o);
    b->turn_wait = true;
    if (!uv_is_active((uv_handle_t *)&b->st->retry))
      uv_timer_start(&b->st->retry, on_retry, TURN_RETRY, 0);
    return;
  }
  long long n = int_of(elem(reply, 1));
  if (!is_status(reply, "OK") || n < 1) {
    storage_error(o, "unexpected answer to the edit script");
    return pump(b);
  }
  collab_ring *g = &b->r.logs[COLLAB_LOG_OPS];
  if (b->loaded && !b->loading && g->head + 1 == (uint64_t)n &&
      collab_ring_push(g, o->text, strlen(o->text)) == 0) {
    /* Checked at this very head: it applies. */
    collab_shapes_commit(b->r.shapes, b->r.deleted, o->op, (uint64_t)n, &b->st->base.limits);
    events_items(b, COLLAB_LOG_OPS);
  } else {
    behind(b, COLLAB_LOG_OPS, (uint64_t)n);
  }
  finish(o, n, NULL, 0, 0);
  pump(b);
}

/* Checks the op against the replica and sends it with the replica's head. */
static void send_edit(rop *o) {
  rboard *b = o->b;
  rstore *st = b->st;
  const collab_limits *l = &st->base.limits;
  uint64_t h = b->r.logs[COLLAB_LOG_OPS].head;
  char err[300];
  if (o->unnamed) json_object_del(json_object_get(o->op, "shape"), "id");
  if (collab_shapes_check(b->r.shapes, b->r.deleted, o->op, h + 1, b->name, l, err, sizeof err) <
      0) {
    if (o->attempts) release_turn(b); /* it lost a race: it may hold the turn */
    return finish(o, COLLAB_ERR, err, 0, 0);
  }
  /* The shape after the op, by the rules' own commit on a copy of that one shape. */
  const char *id = json_string_value(json_object_get(json_object_get(o->op, "shape"), "id"));
  json_t *one = json_object(), *none = json_object(), *cur = json_object_get(b->r.shapes, id);
  if (cur) json_object_set_new(one, id, json_deep_copy(cur));
  collab_shapes_commit(one, none, o->op, h + 1, l);
  json_t *shape = json_object_get(one, id);
  char *shape_text = shape ? json_dumps(shape, JSON_COMPACT | JSON_PRESERVE_ORDER) : strdup("");
  json_t *item =
      json_pack("{s:I,s:O,s:s}", "offset", (json_int_t)(h + 1), "op", o->op, "by", o->by);
  o->text = item ? json_dumps(item, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(item), json_decref(one), json_decref(none);
  if (!shape_text || !o->text) {
    free(shape_text);
    return finish(o, COLLAB_ERR, "out of memory", 0, 0);
  }
  rlink_cmd *c = rlink_script_cmd(RLS_EDIT, 6);
  add_epoch_key(c, st);
  add_key(c, b, "meta");
  add_key(c, b, "ops");
  add_key(c, b, "shapes");
  add_key(c, b, "deleted");
  add_key(c, b, "turn");
  rlink_args(c, st->epoch);
  snprintf(o->epoch, sizeof o->epoch, "%s", st->epoch); /* its offset's epoch, once committed */
  rlink_argf(c, "%" PRIu64, h);
  rlink_args(c, o->text);
  rlink_args(c, id);
  rlink_args(c, shape_text);
  rlink_argf(c, "%zu", l->history);
  rlink_argf(c, "%zu", 4 * l->max_shapes);
  add_channel(c, b);
  rlink_argf(c, "%d", HEAD_BATCH);
  rlink_args(c, st->inst);
  rlink_argf(c, "%d", TURN_MS);
  free(shape_text);
  b->editing = o;
  if (rlink_send(st->link, c, edit_reply, o) < 0) {
    b->editing = NULL;
    unavailable(o);
  }
}

static void append_reply(redisReply *reply, void *arg) {
  rop *o = arg;
  rboard *b = o->b;
  if (common_reply(o, reply)) return pump(b);
  long long n = int_of(elem(reply, 1));
  if (!is_status(reply, "OK") || n < 1) {
    storage_error(o, "unexpected answer to the append script");
    return pump(b);
  }
  collab_ring *g = &b->r.logs[o->log];
  if (b->loaded && !b->loading && g->head + 1 == (uint64_t)n) {
    /* The script's text: {"offset":N then the rest. */
    size_t len = strlen(o->text) + 32;
    char *text = malloc(len);
    if (text) snprintf(text, len, "{\"offset\":%lld%s", n, o->text);
    if (text && collab_ring_push(g, text, strlen(text)) == 0)
      events_items(b, o->log);
    else
      behind(b, o->log, (uint64_t)n);
    free(text);
  } else {
    behind(b, o->log, (uint64_t)n);
  }
  finish(o, n, NULL, 0, 0);
  pump(b);
}

static void send_append(rop *o) {
  rboard *b = o->b;
  rstore *st = b->st;
  json_t *copy = json_copy(o->item);
  if (copy) json_object_del(copy, "offset");
  char *text = copy ? json_dumps(copy, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(copy);
  if (!text || text[0] != '{') {
    free(text);
    return finish(o, COLLAB_ERR, "out of memory", 0, 0);
  }
  /* After '{': ",..." then the rest, or "}" for an empty object. */
  text[0] = text[1] == '}' ? ' ' : ',';
  o->text = strdup(text[0] == ' ' ? "}" : text);
  free(text);
  if (!o->text) return finish(o, COLLAB_ERR, "out of memory", 0, 0);
  rlink_cmd *c = rlink_script_cmd(RLS_APPEND, 3);
  add_epoch_key(c, st);
  add_key(c, b, "meta");
  add_key(c, b, o->log == COLLAB_LOG_OPS ? "ops" : "chat");
  rlink_args(c, st->epoch);
  snprintf(o->epoch, sizeof o->epoch, "%s", st->epoch); /* its offset's epoch, once committed */
  rlink_args(c, o->text);
  rlink_argf(c, "%zu", st->base.limits.history);
  add_channel(c, b);
  rlink_args(c, o->log == COLLAB_LOG_OPS ? "ops o" : "chat c");
  if (rlink_send(st->link, c, append_reply, o) < 0) unavailable(o);
}

/*
 * Runs the board's waiting requests, in order, as far as they can go: all of them wait for the
 * replica (loaded, caught up); edits also for the board's edit in flight. Completions may come
 * back in here through the service (a new request): `pumping` keeps that to one loop.
 */
static void pump(rboard *b) {
  if (b->pumping) return;
  b->pumping = true;
  while (b->head) {
    if (!rlink_ready(b->st->link)) {
      fail_waiting(b);
      break;
    }
    if (!b->loaded || b->loading) {
      load(b);
      break;
    }
    if (b->tailing[0] || b->tailing[1] ||
        (b->head->kind == ROP_EDIT && (b->editing || b->turn_wait)))
      break;
    rop *o = pop(b);
    if (o->kind == ROP_EDIT)
      send_edit(o);
    else if (o->kind == ROP_APPEND)
      send_append(o);
    else if (o->kind == ROP_LOOKUP)
      send_lookup(o);
    else if (o->kind == ROP_SYNC)
      send_sync(o);
    else if (o->session)
      send_open(o);
    else
      finish(o, 0, NULL, 0, 0);
  }
  b->pumping = false;
}

static void submit(rstore *st, rboard *b, rop *o) {
  o->b = b;
  st->waiting++;
  if (!rlink_ready(st->link)) return unavailable(o);
  if (st->waiting > MAX_WAITING) return storage_error(o, "too many requests waiting for redis");
  if (b->tail)
    b->tail->next = o;
  else
    b->head = o;
  b->tail = o;
  pump(b);
}

/* ---- loading and catching up ---- */

/* Builds a replica from the open script's load: 0, or -1 (bad data, out of memory). */
static int build(rboard *b, const redisReply *r, collab_replica *out) {
  rstore *st = b->st;
  if (r->elements != 9 || collab_replica_init(out, st->base.limits.history) < 0) return -1;
  const redisReply *shapes = elem(r, 5), *deleted = elem(r, 6);
  for (size_t i = 0; shapes && i + 1 < shapes->elements; i += 2) {
    const redisReply *k = shapes->element[i], *v = shapes->element[i + 1];
    json_t *s = v->type == REDIS_REPLY_STRING ? json_loadb(v->str, v->len, 0, NULL) : NULL;
    if (!json_is_object(s) || k->type != REDIS_REPLY_STRING) {
      json_decref(s);
      return collab_replica_free(out), -1;
    }
    json_object_set_new(out->shapes, k->str, s);
  }
  for (size_t i = 0; deleted && i + 1 < deleted->elements; i += 2) {
    const redisReply *k = deleted->element[i];
    long long off = int_of(deleted->element[i + 1]);
    if (k->type != REDIS_REPLY_STRING || off < 0) return collab_replica_free(out), -1;
    json_object_set_new(out->deleted, k->str, json_integer(off));
  }
  for (int log = 0; log < 2; log++) {
    collab_ring *g = &out->logs[log];
    long long head = int_of(elem(r, 3 + (size_t)log));
    const redisReply *entries = elem(r, 7 + (size_t)log); /* newest first */
    if (head < 0 || !entries) return collab_replica_free(out), -1;
    size_t n = entries->elements;
    uint64_t newest = 0, oldest = 0;
    const redisReply *text;
    bool ok = n > 0 && entry_of(entries->element[0], &newest, &text) &&
              entry_of(entries->element[n - 1], &oldest, &text) && newest == (uint64_t)head &&
              newest - oldest + 1 == n;
    collab_ring_reset(g, ok ? oldest - 1 : (uint64_t)head);
    for (size_t i = n; ok && i-- > 0;) {
      uint64_t off;
      ok = entry_of(entries->element[i], &off, &text) && off == g->head + 1 &&
           collab_ring_push(g, text->str, text->len) == 0;
    }
    if (!ok) collab_ring_reset(g, (uint64_t)head); /* no history rather than a wrong one */
  }
  return 0;
}

static void load_reply(redisReply *reply, void *arg) {
  rboard *b = arg;
  rstore *st = b->st;
  b->loading = false;
  if (!reply || st->closed) return; /* the link is down: waiting requests fail with it */
  if (is_status(reply, "EPOCH")) {
    const redisReply *e = elem(reply, 1);
    epoch_seen(st, e && e->type == REDIS_REPLY_STRING ? e->str : "");
    return pump(b);
  }
  const char *bad = reply->type == REDIS_REPLY_ERROR ? reply->str : NULL;
  if (is_status(reply, "FULL")) {
    char err[120];
    snprintf(err, sizeof err, "too many boards: %zu (--max-boards)", st->base.limits.max_boards);
    for (rop *o; (o = pop(b));) finish(o, COLLAB_ERR, err, 0, 0);
    /* Nothing of it left (a completion above may have asked for it again): forget it. */
    if (!b->loaded && !b->loading && !b->head && !b->editing && !json_object_size(b->locals) &&
        !b->presence_busy && !b->tailing[0] && !b->tailing[1]) {
      collab_map_del(&st->boards, b->name);
      json_decref(b->locals), json_decref(b->drops), json_decref(b->leaves);
      json_decref(b->records);
      free(b);
    }
    return;
  }
  collab_replica r;
  if (!bad && (!is_status(reply, "OK") || build(b, reply, &r) < 0))
    bad = "the board's data in redis is not what this service writes";
  if (bad) {
    say(st, "board '%s': cannot load: %s", b->name, bad);
    for (rop *o; (o = pop(b));) storage_error(o, bad);
    return;
  }
  if (b->loaded) collab_replica_free(&b->r);
  b->r = r;
  b->loaded = true;
  events_items(b, COLLAB_LOG_OPS);
  events_items(b, COLLAB_LOG_CHAT);
  for (int log = 0; log < 2; log++)
    if (b->seen[log] > b->r.logs[log].head) tail(b, (collab_log)log);
  pump(b);
}

/* Loads the board (again: the replica serves until the new one replaces it). */
static void load(rboard *b) {
  rstore *st = b->st;
  if (b->loading || !rlink_ready(st->link)) return;
  rlink_cmd *c = open_cmd(b);
  rlink_args(c, "");
  rlink_args(c, "1");
  rlink_argf(c, "%zu", st->base.limits.history);
  b->loading = rlink_send(st->link, c, load_reply, b) == 0;
}

typedef struct tail_ctx {
  rboard *b;
  collab_log log;
} tail_ctx;

static void tail_reply(redisReply *reply, void *arg) {
  tail_ctx *t = arg;
  rboard *b = t->b;
  collab_log log = t->log;
  free(t);
  b->tailing[log] = false;
  if (!reply || b->st->closed) return;
  if (is_status(reply, "EPOCH")) {
    const redisReply *e = elem(reply, 1);
    epoch_seen(b->st, e && e->type == REDIS_REPLY_STRING ? e->str : "");
    return pump(b);
  }
  long long head = int_of(elem(reply, 1));
  const redisReply *entries = elem(reply, 2);
  if (!is_status(reply, "OK") || head < 0 || !entries) {
    say(b->st, "board '%s': cannot catch up: %s", b->name,
        reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected answer");
    return pump(b);
  }
  if (!b->loaded || b->loading) return pump(b);
  collab_ring *g = &b->r.logs[log];
  if (apply_entries(b, log, entries) < 0 || (entries->elements == 0 && g->head < (uint64_t)head)) {
    load(b); /* what is missing is not kept any more */
  } else {
    if ((uint64_t)head > b->seen[log]) b->seen[log] = (uint64_t)head;
    if (b->seen[log] > g->head) tail(b, log);
  }
  pump(b);
}

/* Catches a log up from the replica's head. */
static void tail(rboard *b, collab_log log) {
  rstore *st = b->st;
  if (b->tailing[log] || !b->loaded || b->loading || !rlink_ready(st->link)) return;
  tail_ctx *t = malloc(sizeof *t);
  if (!t) return;
  *t = (tail_ctx){b, log};
  rlink_cmd *c = rlink_script_cmd(RLS_TAIL, 3);
  add_epoch_key(c, st);
  add_key(c, b, "meta");
  add_key(c, b, log == COLLAB_LOG_OPS ? "ops" : "chat");
  rlink_args(c, st->epoch);
  rlink_args(c, log == COLLAB_LOG_OPS ? "ops" : "chat");
  rlink_argf(c, "%" PRIu64, b->r.logs[log].head + 1);
  rlink_argf(c, "%d", TAIL_BATCH);
  b->tailing[log] = rlink_send(st->link, c, tail_reply, t) == 0;
  if (!b->tailing[log]) free(t);
}

/*
 * A sync's answer: the log's head in Redis (in the epoch it was sent with: another one came back
 * as EPOCH) and the entries after the replica's head. Done when the replica reached the offset,
 * or when Redis' head is older than it (an offset this epoch never had); else it goes again
 * (another batch, or after the board is loaded again when what it lacks is trimmed away).
 */
static void sync_reply(redisReply *reply, void *arg) {
  rop *o = arg;
  rboard *b = o->b;
  if (common_reply(o, reply)) return pump(b);
  if (strcmp(o->epoch, b->st->epoch)) { /* an answer of the epoch before: ask again */
    again(o);
    return pump(b);
  }
  long long head = int_of(elem(reply, 1));
  const redisReply *entries = elem(reply, 2);
  if (!is_status(reply, "OK") || head < 0 || !entries) {
    storage_error(o, "unexpected answer to the tail script");
    return pump(b);
  }
  if ((uint64_t)head < o->offset) {
    finish(o, COLLAB_GONE, NULL, 0, 0);
    return pump(b);
  }
  collab_ring *g = &b->r.logs[o->log];
  uint64_t before = g->head;
  if (b->loaded && !b->loading) {
    if (apply_entries(b, o->log, entries) < 0 ||
        (entries->elements == 0 && g->head < (uint64_t)head))
      load(b);
    else if ((uint64_t)head > b->seen[o->log])
      b->seen[o->log] = (uint64_t)head;
  }
  if (b->loaded && !b->loading && g->head >= o->offset) {
    finish(o, 0, NULL, 0, 0);
    return pump(b);
  }
  /* No progress (nothing applied, no load) too often: give up rather than loop. */
  if (g->head == before && !b->loading && ++o->attempts >= MAX_ATTEMPTS) {
    storage_error(o, "cannot catch up with the board");
    return pump(b);
  }
  push_front(b, o);
  pump(b);
}

/* Asks Redis for the entries after the replica's head (and checks the epoch on the way). */
static void send_sync(rop *o) {
  rboard *b = o->b;
  rstore *st = b->st;
  rlink_cmd *c = rlink_script_cmd(RLS_TAIL, 3);
  add_epoch_key(c, st);
  add_key(c, b, "meta");
  add_key(c, b, o->log == COLLAB_LOG_OPS ? "ops" : "chat");
  rlink_args(c, st->epoch);
  snprintf(o->epoch, sizeof o->epoch, "%s", st->epoch);
  rlink_args(c, o->log == COLLAB_LOG_OPS ? "ops" : "chat");
  rlink_argf(c, "%" PRIu64, b->r.logs[o->log].head + 1);
  rlink_argf(c, "%d", TAIL_BATCH);
  if (rlink_send(st->link, c, sync_reply, o) < 0) unavailable(o);
}

/* ---- the epoch ---- */

static void drop_replica(void *value, void *arg) {
  (void)arg;
  rboard *b = value;
  if (b->loaded) collab_replica_free(&b->r);
  b->loaded = false;
  b->seen[0] = b->seen[1] = 0;
  b->records_v = 0; /* the new epoch's versions start again */
}

static void presence_send(rboard *b, collab_done_fn done, void *arg);

static void pump_board(void *value, void *arg) {
  (void)arg;
  rboard *b = value;
  const char *id;
  json_t *held;
  json_object_foreach(b->locals, id, held) json_object_set_new(held, "w", json_true());
  if (json_object_size(b->locals) || json_array_size(b->drops) || json_array_size(b->leaves))
    presence_send(b, NULL, NULL);
  pump(b);
}

/* Redis has another epoch than ours (or none: it lost everything and nobody made one yet). */
static void epoch_seen(rstore *st, const char *epoch) {
  if (!strcmp(epoch, st->epoch) || st->closed) return;
  if (!*epoch) {
    rlink_reconnect(st->link, "the epoch key is gone: redis lost its data");
    return;
  }
  say(st,
      "redis %s: the epoch changed from %s to %s: the stored boards were lost; followers get "
      "HISTORY_GONE",
      rlink_name(st->link), st->epoch, epoch);
  snprintf(st->epoch, sizeof st->epoch, "%s", epoch);
  collab_map_each(&st->boards, drop_replica, NULL);
  if (st->base.events.reset) st->base.events.reset(st->base.events.user);
}

/* ---- the link's news ---- */

static void catch_up(void *value, void *arg) {
  (void)arg;
  rboard *b = value;
  tail(b, COLLAB_LOG_OPS);
  tail(b, COLLAB_LOG_CHAT);
}

static void on_ready(const char *epoch, void *user) {
  rstore *st = user;
  st->last_beat = uv_now(st->loop);
  if (!st->epoch[0])
    snprintf(st->epoch, sizeof st->epoch, "%s", epoch);
  else
    epoch_seen(st, epoch);
  /* Whatever was published while disconnected is in the logs. */
  collab_map_each(&st->boards, catch_up, NULL);
  collab_map_each(&st->boards, pump_board, NULL);
}

static void fail_board(void *value, void *arg) {
  (void)arg;
  fail_waiting(value);
}

static void on_down(const char *reason, void *user) {
  (void)reason;
  rstore *st = user;
  collab_map_each(&st->boards, fail_board, NULL);
}

static void update_records(rboard *b, long long v, const char *text, size_t len) {
  if (v < 0 || (uint64_t)v < b->records_v) return; /* an older list */
  json_t *list = json_loadb(text, len, 0, NULL), *all = json_array();
  for (size_t i = 0; i < json_array_size(list); i++) {
    json_t *rec = record_of(json_array_get(list, i));
    if (!rec) continue;
    json_array_append_new(all, rec);
    /* A member this instance holds too, renamed through another: its record is the one kept. */
    json_t *held = json_object_get(b->locals, json_string_value(json_object_get(rec, "id")));
    char *now =
        held ? json_dumps(json_array_get(list, i), JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (now && !json_is_true(json_object_get(held, "w")))
      json_object_set_new(held, "r", json_string(now));
    free(now);
  }
  json_decref(list);
  b->records_v = (uint64_t)v;
  if (json_equal(all, b->records) || (!b->records && json_array_size(all) == 0)) {
    json_decref(all);
    return;
  }
  json_decref(b->records);
  b->records = all;
  collab_events *e = &b->st->base.events;
  if (e->members) e->members(b->name, e->user);
}

/* A member left the board everywhere: this instance lets its copy go. */
static void left(rboard *b, const char *id) {
  if (!json_object_get(b->locals, id)) return;
  json_object_del(b->locals, id);
  collab_events *e = &b->st->base.events;
  if (e->left) e->left(b->name, id, e->user);
}

static void on_cursor_event(rboard *b, const char *msg, size_t len) {
  /* "k<instance> {"id":..,"x":..,"y":..}" */
  const char *sp = memchr(msg, ' ', len);
  size_t ilen = strlen(b->st->inst);
  if (!sp || ((size_t)(sp - msg - 1) == ilen && !memcmp(msg + 1, b->st->inst, ilen)))
    return; /* our own */
  json_t *j = json_loadb(sp + 1, len - (size_t)(sp + 1 - msg), 0, NULL);
  const char *id = json_string_value(json_object_get(j, "id"));
  json_t *x = json_object_get(j, "x"), *y = json_object_get(j, "y");
  collab_events *e = &b->st->base.events;
  if (id && strlen(id) < 24 && json_is_number(x) && json_is_number(y) &&
      isfinite(json_number_value(x)) && isfinite(json_number_value(y)) && e->cursor)
    e->cursor(b->name, id, json_number_value(x), json_number_value(y), e->user);
  json_decref(j);
}

static void on_message(const char *channel, size_t clen, const char *msg, size_t mlen, void *user) {
  rstore *st = user;
  size_t plen = strlen(st->prefix);
  char name[65];
  if (clen <= plen + 3 || clen - plen - 3 >= sizeof name || mlen < 1) return;
  memcpy(name, channel + plen + 3, clen - plen - 3);
  name[clen - plen - 3] = 0;
  if (!strcmp(name, ":hb")) { /* a heartbeat (':' is in no board name) */
    if (mlen == strlen(st->inst) && !memcmp(msg, st->inst, mlen)) st->last_beat = uv_now(st->loop);
    return;
  }
  rboard *b = find(st, name);
  if (!b) return; /* a board this instance does not serve */
  if (msg[0] == 'k') return on_cursor_event(b, msg, mlen);
  if (msg[0] == 'r') return turn_over(b);
  if (msg[0] == 'l') {
    char id[24];
    if (mlen < 2 || mlen - 1 >= sizeof id) return;
    memcpy(id, msg + 1, mlen - 1);
    id[mlen - 1] = 0;
    return left(b, id);
  }
  /* "<letter><number> <text>" */
  char *end;
  unsigned long long n = strtoull(msg + 1, &end, 10);
  if (end == msg + 1 || end >= msg + mlen || *end != ' ') return;
  const char *text = end + 1;
  size_t tlen = mlen - (size_t)(text - msg);
  if (msg[0] == 'm') return update_records(b, (long long)n, text, tlen);
  if (msg[0] != 'o' && msg[0] != 'c') return;
  collab_log log = msg[0] == 'o' ? COLLAB_LOG_OPS : COLLAB_LOG_CHAT;
  if (n > b->seen[log]) b->seen[log] = n;
  if (!b->loaded || b->loading || b->tailing[log]) return; /* they re-check `seen` */
  int rc = apply_item(b, log, n, text, tlen);
  if (rc == 0) {
    events_items(b, log);
    if (log == COLLAB_LOG_OPS) turn_over(b);
  } else if (rc == -1)
    tail(b, log);
  else if (rc == -2)
    load(b);
}

/* ---- presence ---- */

static void presence_result(rboard *b, const redisReply *reply) {
  const redisReply *list = elem(reply, 2), *refused = elem(reply, 3);
  if (is_status(reply, "EPOCH")) {
    const redisReply *e = elem(reply, 1);
    epoch_seen(b->st, e && e->type == REDIS_REPLY_STRING ? e->str : "");
  } else if (is_status(reply, "OK") && list && list->type == REDIS_REPLY_STRING) {
    update_records(b, int_of(elem(reply, 1)), list->str, list->len);
    /* Members that left everywhere while this instance still held them. */
    for (size_t i = 0; refused && i < refused->elements; i++)
      if (refused->element[i]->type == REDIS_REPLY_STRING) left(b, refused->element[i]->str);
  } else {
    say(b->st, "board '%s': presence: %s", b->name,
        reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected answer");
  }
}

static void presence_reply(redisReply *reply, void *arg) {
  rboard *b = arg;
  b->presence_busy = false;
  if (!reply || b->st->closed) return;
  presence_result(b, reply);
  if (b->presence_again) {
    b->presence_again = false;
    presence_send(b, NULL, NULL);
  }
}

/* A presence write someone waits for (a join: its answer goes once the member is in Redis). */
typedef struct put_ctx {
  rboard *b;
  collab_done_fn done;
  void *arg;
} put_ctx;

static void put_reply(redisReply *reply, void *arg) {
  put_ctx *p = arg;
  collab_result r = {
      reply ? 0 : COLLAB_ERR, reply ? NULL : "storage unavailable", 0, 0, NULL, NULL};
  if (reply && !p->b->st->closed) presence_result(p->b, reply);
  collab_done_fn done = p->done;
  void *user = p->arg;
  free(p);
  done(&r, user);
}

/*
 * Writes this instance's members of the board (and drops the ones that left). Writes are
 * coalesced (one in flight per board, the next one carries every change meanwhile), but for a
 * write someone waits for (done): that one goes now, its own.
 */
static void presence_send(rboard *b, collab_done_fn done, void *arg) {
  rstore *st = b->st;
  put_ctx *p = NULL;
  if (!rlink_ready(st->link) || (done && !(p = malloc(sizeof *p)))) {
    collab_result r = {COLLAB_ERR, "storage unavailable", 0, 0, NULL, NULL};
    if (done) done(&r, arg);
    return;
  }
  if (b->presence_busy && !done) {
    b->presence_again = true;
    return;
  }
  rlink_cmd *c = rlink_script_cmd(RLS_PRESENCE, 7);
  add_epoch_key(c, st);
  add_key(c, b, "pz");
  add_key(c, b, "ph");
  add_key(c, b, "pn");
  add_key(c, b, "ps");
  add_key(c, b, "pl");
  add_key(c, b, "pv");
  rlink_args(c, st->epoch);
  rlink_argf(c, "%" PRIu32, st->o.presence_ttl_ms);
  add_channel(c, b);
  rlink_args(c, st->inst);
  rlink_argf(c, "%zu", json_object_size(b->locals));
  const char *id;
  json_t *held;
  json_object_foreach(b->locals, id, held) {
    json_t *rec = json_object_get(held, "r");
    rlink_args(c, id);
    rlink_args(c, json_string_value(json_object_get(held, "s")));
    rlink_arg(c, json_string_value(rec), json_string_length(rec));
    rlink_args(c, json_is_true(json_object_get(held, "w")) ? "1" : "0");
    json_object_set_new(held, "w", json_false());
  }
  rlink_argf(c, "%zu", json_array_size(b->drops));
  for (size_t i = 0; i < json_array_size(b->drops); i++)
    rlink_args(c, json_string_value(json_array_get(b->drops, i)));
  for (size_t i = 0; i < json_array_size(b->leaves); i++)
    rlink_args(c, json_string_value(json_array_get(b->leaves, i)));
  json_array_clear(b->drops);
  json_array_clear(b->leaves);
  if (p) {
    *p = (put_ctx){b, done, arg};
    if (rlink_send(st->link, c, put_reply, p) < 0) put_reply(NULL, p);
    return;
  }
  b->presence_busy = rlink_send(st->link, c, presence_reply, b) == 0;
}

static void retry_board(void *value, void *arg) {
  (void)arg;
  turn_over(value);
}

static void on_retry(uv_timer_t *t) {
  collab_map_each(&((rstore *)t->data)->boards, retry_board, NULL);
}

static void refresh_board(void *value, void *arg) {
  (void)arg;
  rboard *b = value;
  if (json_object_size(b->locals) || json_array_size(b->drops) || json_array_size(b->leaves))
    presence_send(b, NULL, NULL);
}

static void epoch_reply(redisReply *reply, void *arg) {
  rstore *st = arg;
  if (reply && !st->closed && (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_NIL))
    epoch_seen(st, reply->type == REDIS_REPLY_STRING ? reply->str : "");
}

static void on_tick(uv_timer_t *t) {
  rstore *st = t->data;
  if (!rlink_ready(st->link)) return;
  uint64_t now = uv_now(st->loop);
  if (now - st->last_refresh + 50 < st->o.refresh_ms) return;
  st->last_refresh = now;
  collab_map_each(&st->boards, refresh_board, NULL);
  /* The epoch key, also while no script runs: a FLUSHALL is noticed within a refresh. */
  rlink_cmd *c = rlink_command("GET");
  add_epoch_key(c, st);
  rlink_send(st->link, c, epoch_reply, st);
  /* The events connection could be dead without a word (no reset from a vanished peer), and
   * replicas would silently stop: a heartbeat goes round through Redis' pub/sub; no heartbeat
   * back for a timeout drops the link. (hiredis 0.14 cannot PING a subscribed connection.) */
  if (now - st->last_beat > st->o.timeout_ms + st->o.refresh_ms) {
    char why[120];
    snprintf(why, sizeof why, "no event for %" PRIu64 " ms", now - st->last_beat);
    rlink_reconnect(st->link, why);
    return;
  }
  c = rlink_command("PUBLISH");
  rlink_argf(c, "%sev::hb", st->prefix);
  rlink_args(c, st->inst);
  rlink_send(st->link, c, NULL, NULL);
}

/* ---- the interface ---- */

static const char *r_epoch(collab_store *s) {
  return ((rstore *)s)->epoch;
}

static rop *rop_new(collab_done_fn done, void *arg, rop_kind kind) {
  rop *o = calloc(1, sizeof *o);
  if (!o) {
    collab_result r = {COLLAB_ERR, "out of memory", 0, 0, NULL, NULL};
    done(&r, arg);
    return NULL;
  }
  o->kind = kind, o->done = done, o->arg = arg;
  return o;
}

/* The engine's side of a board, made when missing (within max_boards): NULL with done called. */
static rboard *board_for(rstore *st, const char *name, collab_done_fn done, void *arg) {
  rboard *b = find(st, name);
  if (b) return b;
  collab_result r = {COLLAB_ERR, NULL, 0, 0, NULL, NULL};
  char err[120];
  if (st->boards.count >= st->base.limits.max_boards) {
    snprintf(err, sizeof err, "too many boards: %zu (--max-boards)", st->base.limits.max_boards);
    r.err = err;
    done(&r, arg);
    return NULL;
  }
  size_t len = strlen(name);
  b = calloc(1, sizeof *b + len + 1);
  if (b) {
    memcpy(b->name, name, len + 1);
    b->st = st;
    b->locals = json_object();
    b->drops = json_array();
    b->leaves = json_array();
  }
  if (!b || !b->locals || !b->drops || !b->leaves || collab_map_put(&st->boards, b->name, b) < 0) {
    if (b) json_decref(b->locals), json_decref(b->drops), json_decref(b->leaves);
    free(b);
    r.err = "out of memory";
    done(&r, arg);
    return NULL;
  }
  return b;
}

/* A request that could not be made (out of memory): refused before it waits. */
static void refuse_new(rboard *b, rop *o) {
  o->b = b;
  b->st->waiting++;
  finish(o, COLLAB_ERR, "out of memory", 0, 0);
}

static void r_open(collab_store *s, const char *name, const char *session, collab_done_fn done,
                   void *arg) {
  rstore *st = (rstore *)s;
  rboard *b = board_for(st, name, done, arg);
  rop *o = b ? rop_new(done, arg, ROP_OPEN) : NULL;
  if (!o) return;
  if (session && !(o->session = strdup(session))) return refuse_new(b, o);
  submit(st, b, o);
}

static void r_lookup(collab_store *s, const char *name, const char *session, collab_done_fn done,
                     void *arg) {
  rstore *st = (rstore *)s;
  rboard *b = board_for(st, name, done, arg);
  rop *o = b ? rop_new(done, arg, ROP_LOOKUP) : NULL;
  if (!o) return;
  if (!(o->session = strdup(session))) return refuse_new(b, o);
  submit(st, b, o);
}

static bool not_open(rstore *st, const char *name, collab_done_fn done, void *arg) {
  if (find(st, name)) return false;
  char err[120];
  snprintf(err, sizeof err, "board '%s' is not open", name);
  collab_result r = {COLLAB_ERR, err, 0, 0, NULL, NULL};
  done(&r, arg);
  return true;
}

static void r_edit(collab_store *s, const char *name, json_t *op, const char *by,
                   collab_done_fn done, void *arg) {
  rstore *st = (rstore *)s;
  if (not_open(st, name, done, arg)) return;
  rop *o = rop_new(done, arg, ROP_EDIT);
  if (!o) return;
  o->op = json_incref(op);
  o->unnamed = !json_object_get(json_object_get(op, "shape"), "id");
  snprintf(o->by, sizeof o->by, "%s", by);
  submit(st, find(st, name), o);
}

static void r_append(collab_store *s, const char *name, collab_log log, json_t *item,
                     collab_done_fn done, void *arg) {
  rstore *st = (rstore *)s;
  if (not_open(st, name, done, arg)) return;
  rop *o = rop_new(done, arg, ROP_APPEND);
  if (!o) return;
  o->log = log;
  o->item = json_incref(item);
  submit(st, find(st, name), o);
}

static void r_sync(collab_store *s, const char *name, collab_log log, uint64_t offset,
                   collab_done_fn done, void *arg) {
  rstore *st = (rstore *)s;
  if (not_open(st, name, done, arg)) return;
  rop *o = rop_new(done, arg, ROP_SYNC);
  if (!o) return;
  o->log = log;
  o->offset = offset;
  submit(st, find(st, name), o);
}

static const collab_replica *replica_of(collab_store *s, const char *name) {
  rboard *b = find((rstore *)s, name);
  return b && b->loaded ? &b->r : NULL;
}

static int r_read(collab_store *s, const char *name, collab_log log, uint64_t after, size_t max,
                  collab_item_fn fn, void *arg) {
  const collab_replica *r = replica_of(s, name);
  if (!r) return after == 0 ? 0 : COLLAB_GONE;
  return collab_replica_read(r, log, after, max, fn, arg);
}

static json_t *r_snapshot(collab_store *s, const char *name, uint64_t *offset) {
  const collab_replica *r = replica_of(s, name);
  if (r) return collab_replica_snapshot(r, offset);
  *offset = 0;
  return json_array();
}

static uint64_t r_head(collab_store *s, const char *name, collab_log log) {
  const collab_replica *r = replica_of(s, name);
  return r ? r->logs[log].head : 0;
}

static uint64_t r_oldest(collab_store *s, const char *name, collab_log log) {
  const collab_replica *r = replica_of(s, name);
  return r ? r->logs[log].first : 1;
}

static void r_member_put(collab_store *s, const char *name, const json_t *member,
                         collab_done_fn done, void *arg) {
  rstore *st = (rstore *)s;
  rboard *b = find(st, name);
  const char *id = json_string_value(json_object_get(member, "id"));
  const char *session = json_string_value(json_object_get(member, "s"));
  char *text = b && id && session ? json_dumps(member, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  if (!text) {
    collab_result r = {COLLAB_ERR, "out of memory", 0, 0, NULL, NULL};
    if (done) done(&r, arg);
    return;
  }
  json_object_set_new(b->locals, id, json_pack("{s:s,s:s,s:b}", "s", session, "r", text, "w", 1));
  free(text);
  presence_send(b, done, arg);
}

static void r_member_drop(collab_store *s, const char *name, const char *id, bool everywhere) {
  rboard *b = find((rstore *)s, name);
  if (!b) return;
  json_object_del(b->locals, id);
  json_array_append_new(everywhere ? b->leaves : b->drops, json_string(id));
  presence_send(b, NULL, NULL);
}

static void r_cursor(collab_store *s, const char *name, const char *id, double x, double y) {
  rstore *st = (rstore *)s;
  rboard *b = find(st, name);
  if (!b || !rlink_ready(st->link)) return;
  json_t *j = json_pack("{s:s,s:f,s:f}", "id", id, "x", x, "y", y);
  char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  if (!text) return;
  char msg[256];
  int n = snprintf(msg, sizeof msg, "k%s %s", st->inst, text);
  rlink_cmd *c = n > 0 && (size_t)n < sizeof msg ? rlink_command("PUBLISH") : NULL;
  add_channel(c, b);
  rlink_arg(c, msg, (size_t)n);
  free(text);
  rlink_send(st->link, c, NULL, NULL);
}

static const json_t *r_others(collab_store *s, const char *name) {
  rboard *b = find((rstore *)s, name);
  return b ? b->records : NULL;
}

static void r_close(collab_store *s) {
  rstore *st = (rstore *)s;
  if (st->closed) return;
  st->closed = true;
  rlink_close(st->link); /* requests in flight fail now */
  collab_map_each(&st->boards, fail_board, NULL);
  uv_close((uv_handle_t *)&st->tick, NULL);
  uv_close((uv_handle_t *)&st->retry, NULL);
}

static void board_free(void *value, void *arg) {
  (void)arg;
  rboard *b = value;
  if (b->loaded) collab_replica_free(&b->r);
  json_decref(b->locals);
  json_decref(b->drops);
  json_decref(b->leaves);
  json_decref(b->records);
  free(b);
}

static void r_free(collab_store *s) {
  rstore *st = (rstore *)s;
  collab_map_each(&st->boards, board_free, NULL);
  collab_map_free(&st->boards);
  rlink_free(st->link);
  free(st);
}

static const collab_store_ops redis_ops = {
    .name = "redis",
    .epoch = r_epoch,
    .open = r_open,
    .edit = r_edit,
    .append = r_append,
    .sync = r_sync,
    .read = r_read,
    .snapshot = r_snapshot,
    .head = r_head,
    .oldest = r_oldest,
    .member_put = r_member_put,
    .member_drop = r_member_drop,
    .lookup = r_lookup,
    .cursor = r_cursor,
    .others = r_others,
    .close = r_close,
    .free = r_free,
};

void collab_redis_options_default(collab_redis_options *o) {
  memset(o, 0, sizeof *o);
  o->prefix = "collab:";
  o->presence_ttl_ms = 6000;
  o->refresh_ms = 2000;
  o->timeout_ms = 5000;
  o->backoff_ms = 100;
  o->max_backoff_ms = 5000;
}

int collab_redis_prefix_ok(const char *p) {
  size_t n = p ? strlen(p) : 0;
  if (n == 0 || n > 64) return 0;
  for (; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          strchr(":._-", *p)))
      return 0;
  return 1;
}

bool collab_store_redis_ready(collab_store *s) {
  return rlink_ready(((rstore *)s)->link);
}

collab_store *collab_store_redis_new(const collab_limits *limits, uv_loop_t *loop,
                                     const collab_redis_options *o, char *err, size_t errlen) {
  rlink_url url;
  if (!o->url || rlink_url_parse(o->url, &url, err, errlen) < 0) {
    if (!o->url) snprintf(err, errlen, "no redis URL");
    return NULL;
  }
  if (!collab_redis_prefix_ok(o->prefix)) {
    snprintf(err, errlen, "bad --redis-prefix: 1 to 64 letters, digits, ':', '.', '_' or '-'");
    return NULL;
  }
  rstore *st = calloc(1, sizeof *st);
  if (!st || collab_map_init(&st->boards, limits->max_boards) < 0) {
    free(st);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  st->base.ops = &redis_ops;
  st->base.limits = *limits;
  if (st->base.limits.history == 0) st->base.limits.history = 1;
  st->relaxed = st->base.limits;
  st->relaxed.max_text = SIZE_MAX / 2;
  st->loop = loop;
  st->o = *o;
  snprintf(st->prefix, sizeof st->prefix, "%s", o->prefix);
  uint64_t r;
  if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) r = (uint64_t)time(NULL) ^ (uintptr_t)st;
  snprintf(st->inst, sizeof st->inst, "%016llx", (unsigned long long)r);
  rlink_options lo = {st->prefix,        o->timeout_ms, o->backoff_ms,
                      o->max_backoff_ms, o->log,        o->log_user};
  rlink_callbacks cb = {on_ready, on_down, on_message, st};
  st->link = rlink_new(loop, &url, &lo, &cb);
  if (!st->link) {
    collab_map_free(&st->boards);
    free(st);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  uv_timer_init(loop, &st->tick);
  uv_timer_init(loop, &st->retry);
  st->tick.data = st->retry.data = st;
  uint32_t every = o->refresh_ms < 1000 ? o->refresh_ms / 2 + 1 : 500;
  uv_timer_start(&st->tick, on_tick, every, every);
  return &st->base;
}
