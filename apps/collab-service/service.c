/*
 * collab-service's routes (docs/COLLAB.md): board.join/ops/edit/cursor/presence, chat.post/feed.
 *
 * The engine (store.h) keeps boards; this file keeps who is there. Per board: its members and its
 * subscriptions (ops, chat, presence feeds). Feeds of logs are pull sources: on_pull reads the
 * board's history after the subscriber's offset, as much as its credit allows, so a slow
 * subscriber costs no queue and one that falls behind the history kept gets HISTORY_GONE.
 * Presence feeds are pull sources over state: a "members changed" flag and the latest cursor
 * per member, replaced in place, so a slow subscriber gets the latest positions, not a backlog.
 *
 * The engine's writes (and its opening of a board) complete later (Redis) or at once (memory):
 * a route that needs one keeps a `pending` with what its answer needs, and answers from the
 * completion. A pending outlives neither its request nor its connection: conn_gone clears its
 * connection (the answer is dropped), and an answer to a stream the requester canceled meanwhile
 * fails harmlessly (the engine has forgotten the stream id). Completions may run before the call
 * that started them returns, so a handler does nothing after handing its pending to the engine.
 */
#include "service.h"

#include <rsocket/extensions.h>
#include <rsocket/frame.h>
#include <rsocket/runtime.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "map.h"

#define CLIENT_MIME "application/x.rsocket-gateway.client+json"
#define NAME_MAX_   40
#define SESSION_MAX 80
#define READ_BATCH  64

static const char *const palette[] = {"#e91e63", "#3f51b5", "#009688", "#ff9800",
                                      "#9c27b0", "#4caf50", "#f44336", "#2196f3",
                                      "#795548", "#00bcd4", "#cddc39", "#607d8b"};

typedef enum sub_kind { SUB_OPS, SUB_CHAT, SUB_PRESENCE } sub_kind;

typedef struct board board;
typedef struct member member;

typedef enum pending_kind { P_JOIN, P_FOLLOW, P_EDIT, P_CHAT, P_PRESENCE } pending_kind;

/* How a member leaves: its presence stream ended (it leaves the board, on every instance);
 * this instance lets it go (idle, its connection gone); another instance said it left. */
typedef enum leave_kind { LEAVE_BOARD, LEAVE_HERE, LEAVE_TOLD } leave_kind;

typedef struct cursor {
  char id[24];
  double x, y;
} cursor;

typedef struct sub {
  struct sub *next, *prev; /* the board's subscriptions */
  board *b;
  sub_kind kind;
  rs_feed *feed;
  member *m;      /* the member it counts for, or NULL */
  uint64_t after; /* ops, chat: the last offset sent */
  /* presence */
  bool members_dirty;
  cursor *cur; /* pending cursor moves, one per member at most */
  size_t ncur, capcur;
} sub;

struct member {
  member *next;
  board *b;
  char id[24];
  char name[NAME_MAX_ + 1];
  const char *color;
  uint64_t n; /* its join number on the board: the member list is in this order */
  char session[SESSION_MAX];
  rs_conn *join_conn; /* the connection of its last board.join, NULL once gone */
  int streams;        /* subscriptions counting for it */
  sub *presence;      /* the one whose end is its leave */
  uint64_t idle_since;
};

struct board {
  collab_service *svc;
  member *members;
  size_t nmembers;
  uint64_t joins; /* colors go round in join order */
  sub *subs;
  char name[];
};

/* A request waiting for the engine. */
typedef struct pending {
  struct pending *next, *prev;
  collab_service *svc;
  rs_conn *conn; /* NULL once the connection is gone: nothing is answered */
  uint32_t sid;
  pending_kind kind;
  collab_log log;  /* follow */
  bool from;       /* follow: from an offset (else the history kept) */
  uint64_t after;  /* follow: that offset */
  char *epoch;     /* follow: the requester's epoch (NULL: none), then the one it follows in */
  bool synced;     /* follow: the engine brought its replica up to `after` */
  json_t *op;      /* edit */
  json_t *in;      /* edit, chat.post: the request, until the caller's member is known */
  bool new_member; /* join: asked the engine for a member number */
  bool parked;     /* join: waits for its connection to drain before its snapshot is built */
  char session[SESSION_MAX];
  char name[NAME_MAX_ + 1]; /* join */
  char board[65];
} pending;

struct collab_service {
  collab_store *store;
  uint64_t member_timeout_ms, now_ms;
  collab_map boards; /* name -> board (runtime side; created at the first join) */
  pending *pending;  /* requests waiting for the engine */
};

/* ---- helpers ---- */

/* The session of a request: the gateway's client entry, else the connection. */
static void session_of(rs_conn *c, const rs_payload *p, char *out, size_t n) {
  const rs_conn_settings *st = rs_conn_get_settings(c);
  static const char composite[] = "message/x.rsocket.composite-metadata.v0";
  if (p->has_metadata && st && st->metadata_mime.len == sizeof composite - 1 &&
      !memcmp(st->metadata_mime.ptr, composite, sizeof composite - 1)) {
    rs_composite_iter it;
    rs_composite_entry e;
    rs_composite_iter_init(&it, p->metadata.ptr, p->metadata.len);
    while (rs_composite_next(&it, &e) == 1) {
      if (e.mime.len != sizeof CLIENT_MIME - 1 || memcmp(e.mime.ptr, CLIENT_MIME, e.mime.len))
        continue;
      json_t *j = json_loadb((const char *)e.content.ptr, e.content.len, 0, NULL);
      const char *s = json_string_value(json_object_get(j, "session"));
      if (s && *s && strlen(s) < n - 3) {
        snprintf(out, n, "g:%s", s);
        json_decref(j);
        return;
      }
      json_decref(j);
    }
  }
  snprintf(out, n, "c:%p", (void *)c);
}

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The loop's clock (the tick's, up to date): when a member became idle. */
static uint64_t clock_of(collab_service *svc, rs_conn *c) {
  uv_loop_t *loop = c ? rs_runtime_loop(c) : NULL;
  if (loop) svc->now_ms = uv_now(loop);
  return svc->now_ms;
}

static void send_error(rs_conn *c, const rs_request *r, const char *msg) {
  if (r->type != RS_FRAME_REQUEST_FNF)
    rs_service_errorf(c, r->stream_id, RS_ERROR_APPLICATION_ERROR, "%s", msg);
}

/*
 * The request's data as an object with a valid "board", or NULL once the requester has been
 * told why not (nothing for fire-and-forget). *name is the board.
 */
static json_t *parse(rs_conn *c, const rs_request *r, const char **name) {
  json_error_t e;
  char msg[300];
  json_t *j =
      json_loadb((const char *)r->payload.data.ptr, r->payload.data.len, JSON_DECODE_ANY, &e);
  if (!j) {
    snprintf(msg, sizeof msg, "bad request: not JSON (%s)", e.text);
  } else if (!json_is_object(j)) {
    snprintf(msg, sizeof msg, "bad request: the data must be a JSON object");
  } else {
    *name = json_string_value(json_object_get(j, "board"));
    if (collab_board_name_ok(*name)) return j;
    snprintf(msg, sizeof msg,
             "bad request: 'board' must be a string of 1 to 64 letters, digits, '.', '_' or '-'");
  }
  json_decref(j);
  send_error(c, r, msg);
  return NULL;
}

static board *board_get(collab_service *svc, const char *name) {
  return collab_map_get(&svc->boards, name);
}

/* The service's side of a board the engine has opened: NULL when out of memory. */
static board *board_make(collab_service *svc, const char *name) {
  board *b = board_get(svc, name);
  if (b) return b;
  size_t len = strlen(name);
  b = calloc(1, sizeof *b + len + 1);
  if (b) memcpy(b->name, name, len + 1);
  if (!b || collab_map_put(&svc->boards, b->name, b) < 0) {
    free(b);
    return NULL;
  }
  b->svc = svc;
  return b;
}

/* ---- requests waiting for the engine ---- */

static pending *pending_new(collab_service *svc, rs_conn *c, const rs_request *r, pending_kind kind,
                            const char *bname) {
  pending *p = calloc(1, sizeof *p);
  if (!p) {
    send_error(c, r, "out of memory");
    return NULL;
  }
  p->svc = svc, p->conn = c, p->sid = r->stream_id, p->kind = kind;
  snprintf(p->board, sizeof p->board, "%s", bname);
  session_of(c, &r->payload, p->session, sizeof p->session);
  p->next = svc->pending;
  if (svc->pending) svc->pending->prev = p;
  svc->pending = p;
  return p;
}

static void pending_end(pending *p) {
  if (p->prev)
    p->prev->next = p->next;
  else
    p->svc->pending = p->next;
  if (p->next) p->next->prev = p->prev;
  json_decref(p->op);
  json_decref(p->in);
  free(p->epoch);
  free(p);
}

/* The engine refused: the requester is told (when still there). */
static void pending_fail(pending *p, const char *err) {
  if (p->conn)
    rs_service_errorf(p->conn, p->sid, RS_ERROR_APPLICATION_ERROR, "%s", err ? err : "failed");
  pending_end(p);
}

static member *member_find(board *b, const char *session) {
  if (!b) return NULL;
  for (member *m = b->members; m; m = m->next)
    if (!strcmp(m->session, session)) return m;
  return NULL;
}

static json_t *member_json(const member *m) {
  return json_pack("{s:s,s:s,s:s}", "id", m->id, "name", m->name, "color", m->color);
}

/* Other instances' members of the board (the Redis engine's), or NULL. */
static const json_t *others_of(const board *b) {
  collab_store *st = b->svc->store;
  return st->ops->others ? st->ops->others(st, b->name) : NULL;
}

static member *member_by_id(const board *b, const char *id) {
  for (member *m = b ? b->members : NULL; m; m = m->next)
    if (!strcmp(m->id, id)) return m;
  return NULL;
}

/* A member another instance holds (not this one): its record, or NULL. */
static const json_t *other(const board *b, size_t i) {
  const json_t *o = json_array_get(others_of(b), i);
  return member_by_id(b, json_string_value(json_object_get(o, "id"))) ? NULL : o;
}

static size_t members_count(const board *b) {
  size_t n = b->nmembers;
  for (size_t i = 0; i < json_array_size(others_of(b)); i++) n += other(b, i) != NULL;
  return n;
}

typedef struct ranked {
  uint64_t n;
  json_t *j;
} ranked;

static int by_join(const void *a, const void *b) {
  uint64_t x = ((const ranked *)a)->n, y = ((const ranked *)b)->n;
  return x < y ? -1 : x > y;
}

/* The board's members, this instance's and the others', in join order. */
static json_t *members_json(const board *b) {
  json_t *a = json_array();
  const json_t *others = others_of(b);
  size_t n = b->nmembers + json_array_size(others), i = 0;
  ranked *v = malloc((n ? n : 1) * sizeof *v);
  if (!v) return a;
  for (const member *m = b->members; m; m = m->next) v[i++] = (ranked){m->n, member_json(m)};
  for (size_t k = 0; k < json_array_size(others); k++) {
    const json_t *o = other(b, k);
    if (!o) continue;
    json_t *j = json_pack("{s:O,s:O,s:O}", "id", json_object_get(o, "id"), "name",
                          json_object_get(o, "name"), "color", json_object_get(o, "color"));
    if (j) v[i++] = (ranked){(uint64_t)json_integer_value(json_object_get(o, "n")), j};
  }
  qsort(v, i, sizeof *v, by_join);
  for (size_t k = 0; k < i; k++) json_array_append_new(a, v[k].j);
  free(v);
  return a;
}

static void push_json(rs_feed *f, json_t *j) {
  char *s = json_dumps(j, JSON_COMPACT);
  if (s) rs_feed_push_data(f, s, strlen(s));
  free(s);
  json_decref(j);
}

/* ---- presence ---- */

static void presence_changed(board *b) {
  for (sub *s = b->subs; s; s = s->next) {
    if (s->kind != SUB_PRESENCE) continue;
    s->members_dirty = true;
    rs_feed_wake(s->feed);
  }
}

static void drop_cursor(sub *s, const char *id) {
  for (size_t i = 0; i < s->ncur; i++) {
    if (strcmp(s->cur[i].id, id)) continue;
    memmove(&s->cur[i], &s->cur[i + 1], (s->ncur - i - 1) * sizeof *s->cur);
    s->ncur--;
    return;
  }
}

/* The latest position replaces a pending one: the queue holds one per member at most. */
static void queue_cursor(sub *s, const char *id, double x, double y) {
  for (size_t i = 0; i < s->ncur; i++) {
    if (strcmp(s->cur[i].id, id)) continue;
    s->cur[i].x = x, s->cur[i].y = y;
    return;
  }
  if (s->ncur == s->capcur) {
    size_t cap = s->capcur ? s->capcur * 2 : 8;
    cursor *c = realloc(s->cur, cap * sizeof *c);
    if (!c) return; /* a cursor move is not worth failing for */
    s->cur = c, s->capcur = cap;
  }
  cursor *c = &s->cur[s->ncur++];
  snprintf(c->id, sizeof c->id, "%s", id);
  c->x = x, c->y = y;
}

static void presence_pull(sub *s, uint64_t credit) {
  for (; credit > 0; credit--) {
    if (s->members_dirty) {
      s->members_dirty = false;
      push_json(s->feed, json_pack("{s:o}", "members", members_json(s->b)));
    } else if (s->ncur > 0) {
      cursor c = s->cur[0];
      memmove(&s->cur[0], &s->cur[1], (s->ncur - 1) * sizeof *s->cur);
      s->ncur--;
      push_json(s->feed, json_pack("{s:{s:s,s:f,s:f}}", "cursor", "id", c.id, "x", c.x, "y", c.y));
    } else {
      return;
    }
  }
}

/* ---- members ---- */

static void member_leave(member *m, leave_kind how) {
  board *b = m->b;
  for (member **pp = &b->members; *pp; pp = &(*pp)->next) {
    if (*pp != m) continue;
    *pp = m->next;
    break;
  }
  b->nmembers--;
  for (sub *s = b->subs; s; s = s->next) {
    if (s->m == m) s->m = NULL;
    if (s->kind == SUB_PRESENCE) drop_cursor(s, m->id);
  }
  collab_store *st = b->svc->store;
  if (how != LEAVE_TOLD && st->ops->member_drop)
    st->ops->member_drop(st, b->name, m->id, how == LEAVE_BOARD);
  free(m);
  presence_changed(b);
}

/* A subscription of `m` ended. */
static void member_stream_ended(member *m, sub *s) {
  m->streams--;
  if (m->presence == s) {
    m->presence = NULL;
    member_leave(m, LEAVE_BOARD);
  } else if (m->streams == 0) {
    m->idle_since = clock_of(m->b->svc, rs_feed_conn(s->feed));
  }
}

/* ---- subscriptions ---- */

static void sub_pushed(const char *json, size_t len, uint64_t offset, void *arg) {
  sub *s = arg;
  rs_feed_push_data(s->feed, json, len);
  s->after = offset;
}

static void on_pull(rs_feed *f, uint64_t credit, void *user) {
  sub *s = user;
  if (s->kind == SUB_PRESENCE) return presence_pull(s, credit);
  collab_store *st = s->b->svc->store;
  size_t max = credit < READ_BATCH ? (size_t)credit : READ_BATCH;
  collab_log log = s->kind == SUB_OPS ? COLLAB_LOG_OPS : COLLAB_LOG_CHAT;
  if (st->ops->read(st, s->b->name, log, s->after, max, sub_pushed, s) == COLLAB_GONE)
    rs_feed_error(f, RS_ERROR_APPLICATION_ERROR, (rs_bytes){(const uint8_t *)"HISTORY_GONE", 12});
}

static void on_sub_close(rs_feed *f, int reason, void *user) {
  (void)f, (void)reason;
  sub *s = user;
  if (s->prev)
    s->prev->next = s->next;
  else
    s->b->subs = s->next;
  if (s->next) s->next->prev = s->prev;
  if (s->m) member_stream_ended(s->m, s);
  free(s->cur);
  free(s);
}

/* Makes stream `sid` a subscription of board b, following log offsets after `after`. */
static int subscribe(rs_conn *c, uint32_t sid, board *b, sub_kind kind, member *m, uint64_t after) {
  sub *s = calloc(1, sizeof *s);
  if (!s) return RS_ERR_NOMEM;
  s->b = b, s->kind = kind, s->m = m, s->after = after;
  s->members_dirty = kind == SUB_PRESENCE;
  rs_feed_options o;
  rs_feed_options_default(&o);
  o.on_pull = on_pull;
  o.on_close = on_sub_close;
  o.user = s;
  int rc = rs_feed_new(&s->feed, c, sid, &o);
  if (rc != 0) return free(s), rc;
  s->next = b->subs;
  if (b->subs) b->subs->prev = s;
  b->subs = s;
  if (m) {
    m->streams++;
    if (kind == SUB_PRESENCE) m->presence = s;
  }
  return 0;
}

static void wake(board *b, sub_kind kind) {
  for (sub *s = b->subs; s; s = s->next)
    if (s->kind == kind) rs_feed_wake(s->feed);
}

/* ---- routes ---- */

static member *member_add(board *b, const char *id, uint64_t n, const char *session) {
  member *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->b = b;
  snprintf(m->id, sizeof m->id, "%s", id);
  m->n = n;
  m->color = palette[n % (sizeof palette / sizeof *palette)];
  snprintf(m->session, sizeof m->session, "%s", session);
  m->next = b->members;
  b->members = m;
  b->nmembers++;
  return m;
}

/* This instance holds m: the engine makes it known to the other instances (done, may be NULL:
 * once they can find it; at once without other instances). */
static void hold(member *m, collab_done_fn done, void *arg) {
  collab_store *st = m->b->svc->store;
  if (!st->ops->member_put) {
    collab_result r = {0, NULL, 0, 0, NULL, NULL};
    if (done) done(&r, arg);
    return;
  }
  json_t *j = member_json(m);
  json_object_set_new(j, "n", json_integer((json_int_t)m->n));
  json_object_set_new(j, "s", json_string(m->session));
  st->ops->member_put(st, m->b->name, j, done, arg);
  json_decref(j);
}

/* The member of the request's session that another instance holds, taken over here. */
static member *adopt(board *b, const json_t *rec, rs_conn *c) {
  const char *id = json_string_value(json_object_get(rec, "id"));
  member *m = member_by_id(b, id);
  if (m) return m;
  m = member_add(b, id, (uint64_t)json_integer_value(json_object_get(rec, "n")),
                 json_string_value(json_object_get(rec, "s")));
  if (!m) return NULL;
  snprintf(m->name, sizeof m->name, "%s", json_string_value(json_object_get(rec, "name")));
  m->join_conn = c;
  m->idle_since = clock_of(b->svc, c);
  hold(m, NULL, NULL);
  return m;
}

static void board_full(pending *p) {
  char err[200];
  snprintf(err, sizeof err, "board '%s' is full: %zu members (--max-members)", p->board,
           p->svc->store->limits.max_members);
  pending_fail(p, err);
}

static void join_done(const collab_result *res, void *arg);

/* The member is known to every instance: the snapshot and who the caller is.
 * A snapshot can be megabytes, and one read of a connection can hold a thousand joins (a gateway
 * carries a browser's whole burst): built at once they would all sit in the connection's output
 * (gigabytes) while the loop serves nobody else. So a snapshot is built only while the
 * connection is under its output watermark; otherwise the join is parked until the connection
 * drains (collab_service_conn_drained, oldest first), and a join whose requester canceled
 * meanwhile (a gateway that closed a client not reading) is dropped without building anything.
 * Memory then holds about one snapshot per connection. */
static void join_held(const collab_result *res, void *arg) {
  (void)res; /* not held in Redis (unreachable): this instance holds it, and refreshes it */
  pending *p = arg;
  collab_service *svc = p->svc;
  board *b = board_get(svc, p->board);
  member *m = member_find(b, p->session);
  if (!p->conn) return pending_end(p);
  if (!m) { /* it left meanwhile: join again */
    p->new_member = true;
    svc->store->ops->open(svc->store, p->board, p->session, join_done, p);
    return;
  }
  if (rs_conn_stream_credit(p->conn, p->sid) == 0) return pending_end(p); /* canceled */
  if (!rs_runtime_writable(p->conn)) {
    p->parked = true;
    return;
  }
  collab_store *st = svc->store;
  uint64_t offset;
  json_t *shapes = st->ops->snapshot(st, b->name, &offset);
  json_t *out = json_pack("{s:s,s:s,s:I,s:o,s:o,s:o,s:I}", "board", b->name, "epoch",
                          st->ops->epoch(st), "offset", (json_int_t)offset, "shapes", shapes,
                          "members", members_json(b), "you", member_json(m), "chat_offset",
                          (json_int_t)st->ops->head(st, b->name, COLLAB_LOG_CHAT));
  char *s = json_dumps(out, JSON_COMPACT);
  rs_service_replyf(p->conn, p->sid, "%s", s ? s : "null");
  free(s), json_decref(out);
  pending_end(p);
}

static void join_done(const collab_result *res, void *arg) {
  pending *p = arg;
  collab_service *svc = p->svc;
  if (!p->conn || res->value < 0) return pending_fail(p, res->err);
  board *b = board_make(svc, p->board);
  if (!b) return pending_fail(p, "out of memory");
  member *m = member_find(b, p->session);
  if (!m && !p->new_member) {
    /* The session's member left while the board was opening: a new member, then. */
    p->new_member = true;
    svc->store->ops->open(svc->store, p->board, p->session, join_done, p);
    return;
  }
  if (!m) {
    char id[24];
    snprintf(id, sizeof id, "m%llu", (unsigned long long)res->member);
    bool counted = false; /* a member another instance holds is counted already */
    for (size_t i = 0; i < json_array_size(others_of(b)) && !counted; i++)
      counted =
          !strcmp(json_string_value(json_object_get(json_array_get(others_of(b), i), "id")), id);
    if (!counted && members_count(b) >= svc->store->limits.max_members) return board_full(p);
    if (!(m = member_add(b, id, res->joins, p->session))) return pending_fail(p, "out of memory");
  }
  snprintf(m->name, sizeof m->name, "%s", p->name);
  m->join_conn = p->conn;
  if (m->streams == 0) m->idle_since = clock_of(svc, p->conn);
  presence_changed(b);
  hold(m, join_held, p);
}

static int join(rs_conn *c, const rs_request *r, void *user) {
  collab_service *svc = user;
  const char *name;
  json_t *in = parse(c, r, &name);
  if (!in) return 0;
  const char *who = json_string_value(json_object_get(in, "name"));
  bool ok = who && *who && strlen(who) <= NAME_MAX_;
  /* No C0 controls, DEL, or C1 controls (U+0080..U+009F: 0xC2 0x80..0x9F in UTF-8, which
   * jansson has checked): a name is shown to every member of the board. */
  for (const unsigned char *p = (const unsigned char *)who; ok && *p; p++)
    ok = *p >= 0x20 && *p != 0x7f && !(p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F);
  if (!ok) {
    json_decref(in);
    return rs_service_errorf(
        c, r->stream_id, RS_ERROR_APPLICATION_ERROR, "%s",
        "bad request: 'name' must be a string of 1 to 40 bytes without control characters");
  }
  pending *p = pending_new(svc, c, r, P_JOIN, name);
  if (p) snprintf(p->name, sizeof p->name, "%s", who);
  json_decref(in);
  if (!p) return 0;
  board *b = board_get(svc, p->board);
  p->new_member = !member_find(b, p->session);
  if (b && p->new_member && members_count(b) >= svc->store->limits.max_members) {
    board_full(p);
    return 0;
  }
  svc->store->ops->open(svc->store, p->board, p->new_member ? p->session : NULL, join_done, p);
  return 0;
}

static void not_member(pending *p) {
  char msg[200];
  snprintf(msg, sizeof msg, "not a member of board '%s': board.join first (on the same session)",
           p->board);
  pending_fail(p, msg);
}

static void edit_go(pending *p, member *m);
static void chat_go(pending *p, member *m);

/* The request's member is known (NULL: it has none, for a follow that needs none). */
static void member_known(pending *p, member *m) {
  int rc;
  switch (p->kind) {
  case P_EDIT: return edit_go(p, m);
  case P_CHAT: return chat_go(p, m);
  case P_FOLLOW:
    /* The epoch changed while the member was looked up: `after` means nothing now. */
    if (p->epoch && strcmp(p->epoch, p->svc->store->ops->epoch(p->svc->store)))
      return pending_fail(p, "HISTORY_GONE");
    /* fall through */
  case P_PRESENCE:
    rc = subscribe(p->conn, p->sid, board_get(p->svc, p->board),
                   p->kind == P_PRESENCE      ? SUB_PRESENCE
                   : p->log == COLLAB_LOG_OPS ? SUB_OPS
                                              : SUB_CHAT,
                   m, p->after);
    if (rc == RS_ERR_NOMEM) return pending_fail(p, "out of memory");
    return pending_end(p); /* or the requester canceled meanwhile: nothing to answer */
  case P_JOIN: break;
  }
  pending_end(p);
}

/* The engine's answer about the member of a session this instance does not hold. */
static void lookup_done(const collab_result *res, void *arg) {
  pending *p = arg;
  if (!p->conn || (res->value < 0 && p->kind != P_FOLLOW)) return pending_fail(p, res->err);
  board *b = res->record ? board_make(p->svc, p->board) : board_get(p->svc, p->board);
  member *m = b ? member_find(b, p->session) : NULL;
  if (!m && b && res->record) m = adopt(b, res->record, p->conn);
  if (!m && p->kind != P_FOLLOW) return not_member(p);
  if (!b && !(b = board_make(p->svc, p->board))) return pending_fail(p, "out of memory");
  member_known(p, m);
}

/* Goes on with `p` once the caller's member is known: this instance's, or the one another
 * instance holds for its session (the engine looks it up; the gateway spreads one browser's
 * requests over the instances). */
static void with_member(pending *p) {
  collab_service *svc = p->svc;
  member *m = member_find(board_get(svc, p->board), p->session);
  if (m) return member_known(p, m);
  if (!svc->store->ops->lookup) return p->kind == P_FOLLOW ? member_known(p, NULL) : not_member(p);
  svc->store->ops->lookup(svc->store, p->board, p->session, lookup_done, p);
}

/*
 * The board is open (or, second time round, its replica was brought up to `from`). With several
 * instances, a `from` ahead of this one's replica, or an epoch it does not have, may only mean
 * that this instance lags (the requester saw the board through another one, or this one is still
 * reloading it): the engine catches up with the store and checks its epoch first (sync), and only
 * then is an offset the store never had, or one older than the history kept, HISTORY_GONE.
 */
static void follow_done(const collab_result *res, void *arg) {
  pending *p = arg;
  collab_service *svc = p->svc;
  collab_store *st = svc->store;
  if (!p->conn) return pending_end(p);
  if (res->value == COLLAB_GONE) return pending_fail(p, "HISTORY_GONE");
  if (res->value < 0) return pending_fail(p, res->err);
  if (p->from) {
    bool other = p->epoch && strcmp(p->epoch, st->ops->epoch(st));
    if ((other || p->after > st->ops->head(st, p->board, p->log)) && st->ops->sync && !p->synced) {
      p->synced = true;
      st->ops->sync(st, p->board, p->log, p->after, follow_done, p);
      return;
    }
    if (other || st->ops->read(st, p->board, p->log, p->after, 0, NULL, NULL) == COLLAB_GONE)
      return pending_fail(p, "HISTORY_GONE");
  } else {
    p->after = st->ops->oldest(st, p->board, p->log) - 1; /* the history kept, then live */
    if (!(p->epoch = strdup(st->ops->epoch(st)))) return pending_fail(p, "out of memory");
  }
  if (!board_make(svc, p->board)) return pending_fail(p, "out of memory");
  with_member(p);
}

/* board.ops and chat.feed: {"board","epoch","from"}. */
static int follow(rs_conn *c, const rs_request *r, collab_service *svc, collab_log log) {
  const char *name;
  json_t *in = parse(c, r, &name);
  if (!in) return 0;
  collab_store *st = svc->store;
  json_t *from = json_object_get(in, "from"), *epoch = json_object_get(in, "epoch");
  const char *bad = NULL;
  if (log == COLLAB_LOG_CHAT && (!from || json_is_null(from))) {
    from = NULL; /* the history kept, then live */
    if (epoch && !json_is_string(epoch)) bad = "bad request: 'epoch' must be a string";
  } else if (!json_is_integer(from) || json_integer_value(from) < 0) {
    bad = "bad request: 'from' must be an integer >= 0";
  } else if (!json_is_string(epoch)) {
    bad = "bad request: 'epoch' must be a string";
  } else if (!st->ops->sync && strcmp(json_string_value(epoch), st->ops->epoch(st))) {
    /* Another epoch: known without opening the board. (With several instances, this one may
     * be the one that has not heard of a new epoch yet: follow_done asks the store.) */
    bad = "HISTORY_GONE";
  }
  if (bad) {
    json_decref(in);
    return rs_service_errorf(c, r->stream_id, RS_ERROR_APPLICATION_ERROR, "%s", bad);
  }
  pending *p = pending_new(svc, c, r, P_FOLLOW, name);
  if (p) {
    p->log = log;
    p->from = from != NULL;
    p->after = from ? (uint64_t)json_integer_value(from) : 0;
    if (from && !(p->epoch = strdup(json_string_value(epoch)))) {
      pending_fail(p, "out of memory");
      p = NULL;
    }
  }
  json_decref(in);
  if (p) st->ops->open(st, p->board, NULL, follow_done, p);
  return 0;
}

static int ops(rs_conn *c, const rs_request *r, void *user) {
  return follow(c, r, user, COLLAB_LOG_OPS);
}

static int chat_feed(rs_conn *c, const rs_request *r, void *user) {
  return follow(c, r, user, COLLAB_LOG_CHAT);
}

/* A request that needs its caller's member: `in` (the request's data) goes with it. */
static int member_request(rs_conn *c, const rs_request *r, collab_service *svc, json_t *in,
                          const char *name, pending_kind kind) {
  pending *p = pending_new(svc, c, r, kind, name);
  if (!p) return json_decref(in), 0;
  p->in = in;
  with_member(p);
  return 0;
}

static void edit_done(const collab_result *res, void *arg) {
  pending *p = arg;
  if (!p->conn || res->value < 0) return pending_fail(p, res->err);
  const char *id = json_string_value(json_object_get(json_object_get(p->op, "shape"), "id"));
  json_t *out = json_pack("{s:I,s:s,s:s}", "offset", (json_int_t)res->value, "id", id ? id : "",
                          "epoch", res->epoch ? res->epoch : "");
  char *s = json_dumps(out, JSON_COMPACT);
  rs_service_replyf(p->conn, p->sid, "%s", s ? s : "null");
  free(s), json_decref(out);
  pending_end(p);
}

static void edit_go(pending *p, member *m) {
  collab_store *st = p->svc->store;
  char err[300];
  p->op = collab_op_parse(json_object_get(p->in, "op"), &st->limits, err, sizeof err);
  if (!p->op) return pending_fail(p, err);
  st->ops->edit(st, p->board, p->op, m->id, edit_done, p);
}

static int edit(rs_conn *c, const rs_request *r, void *user) {
  const char *name;
  json_t *in = parse(c, r, &name);
  return in ? member_request(c, r, user, in, name, P_EDIT) : 0;
}

static bool coord(const json_t *v, double *out) {
  *out = json_number_value(v);
  return json_is_number(v) && *out >= -1e6 && *out <= 1e6;
}

/* A cursor move of member `id` to the board's presence streams (but the mover's own). */
static void relay_cursor(board *b, const member *mover, const char *id, double x, double y) {
  for (sub *s = b->subs; s; s = s->next) {
    if (s->kind != SUB_PRESENCE || (mover && s->m == mover)) continue;
    queue_cursor(s, id, x, y);
    rs_feed_wake(s->feed);
  }
}

static int cursor_fnf(rs_conn *c, const rs_request *r, void *user) {
  collab_service *svc = user;
  const char *name;
  json_t *in = parse(c, r, &name);
  double x, y;
  if (!in || !coord(json_object_get(in, "x"), &x) || !coord(json_object_get(in, "y"), &y))
    return json_decref(in), 0;
  char session[SESSION_MAX];
  session_of(c, &r->payload, session, sizeof session);
  board *b = board_get(svc, name);
  member *m = member_find(b, session);
  const char *id = m ? m->id : NULL;
  /* Not held here: a member another instance holds moves its cursor through this one. */
  for (size_t i = 0; b && !id && i < json_array_size(others_of(b)); i++) {
    const json_t *o = json_array_get(others_of(b), i);
    if (!strcmp(json_string_value(json_object_get(o, "s")), session))
      id = json_string_value(json_object_get(o, "id"));
  }
  if (id) {
    relay_cursor(b, m, id, x, y);
    collab_store *st = svc->store;
    if (st->ops->cursor) st->ops->cursor(st, b->name, id, x, y);
  }
  json_decref(in);
  return 0;
}

static int presence(rs_conn *c, const rs_request *r, void *user) {
  const char *name;
  json_t *in = parse(c, r, &name);
  return in ? member_request(c, r, user, in, name, P_PRESENCE) : 0;
}

static void chat_done(const collab_result *res, void *arg) {
  pending *p = arg;
  if (!p->conn || res->value < 0) return pending_fail(p, res->err);
  json_t *out = json_pack("{s:I,s:s}", "offset", (json_int_t)res->value, "epoch",
                          res->epoch ? res->epoch : "");
  char *s = json_dumps(out, JSON_COMPACT);
  rs_service_replyf(p->conn, p->sid, "%s", s ? s : "null");
  free(s), json_decref(out);
  pending_end(p);
}

static void chat_go(pending *p, member *m) {
  collab_store *st = p->svc->store;
  json_t *text = json_object_get(p->in, "text");
  size_t max = st->limits.max_text;
  char err[200];
  if (!json_is_string(text) || json_string_length(text) == 0) {
    snprintf(err, sizeof err, "bad request: 'text' must be a non-empty string");
    return pending_fail(p, err);
  }
  if (json_string_length(text) > max) {
    snprintf(err, sizeof err, "bad request: 'text' is longer than %zu bytes", max);
    return pending_fail(p, err);
  }
  json_t *item = json_pack("{s:i,s:s,s:s,s:O,s:I}", "offset", 0, "by", m->id, "name", m->name,
                           "text", text, "time", (json_int_t)wall_ms());
  if (!item) return pending_fail(p, "out of memory");
  st->ops->append(st, p->board, COLLAB_LOG_CHAT, item, chat_done, p);
  json_decref(item);
}

static int chat_post(rs_conn *c, const rs_request *r, void *user) {
  const char *name;
  json_t *in = parse(c, r, &name);
  return in ? member_request(c, r, user, in, name, P_CHAT) : 0;
}

/* ---- what the engine tells ---- */

static void on_items(const char *name, collab_log log, void *user) {
  board *b = board_get(user, name);
  if (b) wake(b, log == COLLAB_LOG_OPS ? SUB_OPS : SUB_CHAT);
}

static void gone_board(void *value, void *arg) {
  (void)arg;
  static const char msg[] = "HISTORY_GONE";
  for (sub *s = ((board *)value)->subs; s; s = s->next)
    if (s->kind != SUB_PRESENCE)
      rs_feed_error(s->feed, RS_ERROR_APPLICATION_ERROR, (rs_bytes){(const uint8_t *)msg, 12});
}

/* The stored boards were lost: followers of the old epoch's logs start again from a join. */
static void on_reset(void *user) {
  collab_service *svc = user;
  collab_map_each(&svc->boards, gone_board, NULL);
}

static void on_members(const char *name, void *user) {
  board *b = board_get(user, name);
  if (!b) return;
  /* A member this instance holds too may have been renamed through another instance. */
  const json_t *others = others_of(b);
  for (size_t i = 0; i < json_array_size(others); i++) {
    const json_t *o = json_array_get(others, i);
    member *m = member_by_id(b, json_string_value(json_object_get(o, "id")));
    if (m) snprintf(m->name, sizeof m->name, "%s", json_string_value(json_object_get(o, "name")));
  }
  presence_changed(b);
}

static void on_left(const char *name, const char *id, void *user) {
  member *m = member_by_id(board_get(user, name), id);
  if (m) member_leave(m, LEAVE_TOLD);
}

static void on_cursor(const char *name, const char *id, double x, double y, void *user) {
  board *b = board_get(user, name);
  if (b) relay_cursor(b, NULL, id, x, y);
}

/* ---- life cycle ---- */

collab_service *collab_service_new(collab_store *store, uint64_t member_timeout_ms) {
  collab_service *svc = calloc(1, sizeof *svc);
  if (!svc) return NULL;
  svc->store = store;
  svc->member_timeout_ms = member_timeout_ms;
  if (collab_map_init(&svc->boards, store->limits.max_boards) < 0) return free(svc), NULL;
  store->events = (collab_events){on_items, on_reset, on_members, on_left, on_cursor, svc};
  return svc;
}

int collab_service_routes(collab_service *svc, rs_router *r) {
  static const struct {
    const char *route;
    unsigned model;
    rs_route_handler fn;
  } routes[] = {
      {"board.join", RS_MODEL_REQUEST_RESPONSE, join},
      {"board.ops", RS_MODEL_REQUEST_STREAM, ops},
      {"board.edit", RS_MODEL_REQUEST_RESPONSE, edit},
      {"board.cursor", RS_MODEL_FIRE_AND_FORGET, cursor_fnf},
      {"board.presence", RS_MODEL_REQUEST_STREAM, presence},
      {"chat.post", RS_MODEL_REQUEST_RESPONSE, chat_post},
      {"chat.feed", RS_MODEL_REQUEST_STREAM, chat_feed},
  };
  for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
    int rc = rs_router_add(r, routes[i].route, routes[i].model, routes[i].fn, svc);
    if (rc != 0) return rc;
  }
  return 0;
}

typedef struct sweep {
  collab_service *svc;
  rs_conn *gone; /* conn_gone: the connection; tick: NULL */
  char session[SESSION_MAX];
  size_t count;
} sweep;

static void sweep_board(void *value, void *arg) {
  board *b = value;
  sweep *w = arg;
  for (member *m = b->members, *next; m; m = next) {
    next = m->next;
    bool leave;
    if (w->gone) {
      leave = !strcmp(m->session, w->session) || (m->join_conn == w->gone && m->streams == 0);
      if (m->join_conn == w->gone) m->join_conn = NULL;
    } else {
      leave = m->streams == 0 && w->svc->now_ms - m->idle_since >= w->svc->member_timeout_ms;
    }
    if (leave) member_leave(m, LEAVE_HERE);
  }
}

void collab_service_tick(collab_service *svc, uint64_t now_ms) {
  svc->now_ms = now_ms;
  sweep w = {svc, NULL, "", 0};
  collab_map_each(&svc->boards, sweep_board, &w);
}

void collab_service_conn_drained(collab_service *svc, rs_conn *conn) {
  while (rs_runtime_writable(conn)) {
    pending *oldest = NULL; /* the list is newest first */
    for (pending *p = svc->pending; p; p = p->next)
      if (p->parked && p->conn == conn) oldest = p;
    if (!oldest) return;
    oldest->parked = false;
    join_held(NULL, oldest); /* answers, parks it again, or ends it */
  }
}

void collab_service_conn_gone(collab_service *svc, rs_conn *conn) {
  for (pending *p = svc->pending, *next; p; p = next) {
    next = p->next;
    if (p->conn != conn) continue;
    p->conn = NULL;
    if (p->parked) pending_end(p); /* nothing else would ever take it up */
  }
  sweep w = {svc, conn, "", 0};
  snprintf(w.session, sizeof w.session, "c:%p", (void *)conn);
  collab_map_each(&svc->boards, sweep_board, &w);
}

static void stop_board(void *value, void *arg) {
  (void)arg;
  static const char msg[] = "service stopping";
  for (sub *s = ((board *)value)->subs; s; s = s->next)
    rs_feed_error(s->feed, RS_ERROR_APPLICATION_ERROR, (rs_bytes){(const uint8_t *)msg, 16});
}

void collab_service_stop(collab_service *svc) {
  collab_map_each(&svc->boards, stop_board, NULL);
}

static void count_members(void *value, void *arg) {
  *(size_t *)arg += ((board *)value)->nmembers;
}

size_t collab_service_members(const collab_service *svc) {
  size_t n = 0;
  collab_map_each(&svc->boards, count_members, &n);
  return n;
}

static void board_free(void *value, void *arg) {
  (void)arg;
  board *b = value;
  for (member *m = b->members, *next; m; m = next) {
    next = m->next;
    free(m);
  }
  free(b);
}

void collab_service_free(collab_service *svc) {
  if (!svc) return;
  /* Engines complete every call by their close: nothing should be left. */
  while (svc->pending) pending_end(svc->pending);
  svc->store->events = (collab_events){0};
  collab_map_each(&svc->boards, board_free, NULL);
  collab_map_free(&svc->boards);
  free(svc);
}
