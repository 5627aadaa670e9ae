/* --model board: users of the collaborative board (collab-service, docs/COLLAB.md) editing
 * through rsocket-gateway's JSON protocol, on wsload.c's WebSocket connections (one per user).
 *
 * Each user joins its board (bench-0 .. bench-(boards-1), users dealt round-robin), subscribes to
 * board.ops from the join's offset (credit managed by the gateway), adds a note of its own, then
 * sends board.edit updates of that note (x, y and text) at --rate per second on a fixed schedule
 * (open loop: an edit is sent when it is due, answered or not). The text of every update is
 * "t<send time>", the sender's monotonic clock in nanoseconds: every user lives in this process,
 * so a subscriber that receives the op records now - send time, the op's latency to it. Every
 * subscriber of the board receives every op, its author included: lat is op -> delivered to each
 * subscriber, edit_lat edit -> its cfm, all_lat op -> delivered to every user of its board (the
 * latest of its deliveries: the boards' recent ops are shared by the workers). Only edits sent
 * within the measured window count; after the deadline the users stop editing and keep reading for
 * DRAIN_MS so that the last ones reach everybody. Offsets must arrive without gaps or repeats; a
 * rej, an ended subscription, a gap or an edit still unanswered after the drain is an error. */
#define _GNU_SOURCE /* memmem */
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsocket-bench/wsload.h"

enum { ID_JOIN = 1, ID_OPS = 2, ID_ADD = 3, ID_FIRST_EDIT = 4 };
#define EDIT_RING 128 /* edits by id % EDIT_RING; at most MAX_EDITS unanswered, so no clash */
#define MAX_EDITS 64  /* unanswered edits per user: past it the system has fallen behind */
#define DRAIN_MS  1000u
#define MSG_MAX   512
#define OPS_RING  1024 /* per board: ops still waiting for some of their deliveries */

typedef enum { U_NEW, U_JOINING, U_ADDING, U_EDITING, U_GONE } user_state;

typedef struct board_user {
  wconn *c;
  uv_timer_t timer; /* the next edit */
  int index, board; /* the user's number in the run, its board's */
  user_state state;
  bool subscribed;
  char shape[72];    /* its note's id */
  uint64_t last;     /* the last offset delivered to it */
  uint64_t next_id;  /* of its next edit */
  uint64_t next_due; /* bench_now_ns() of its next edit */
  uint64_t edit_id[EDIT_RING], edit_sent[EDIT_RING];
  int edits; /* unanswered */
  uint32_t rng;
} board_user;

struct board_load {
  board_user *users;
  int open; /* users whose connection is not closed */
  uv_timer_t drain;
  bool drained;
  uint64_t period_ns;
};

/* The run's boards, shared by the workers: who has received each recent op. */
typedef struct op_slot {
  uint64_t offset, worst; /* the op, its latest delivery so far */
  int got;                /* deliveries so far */
} op_slot;

typedef struct shared_board {
  pthread_mutex_t mu;
  int members; /* the users of the board in the run */
  op_slot ring[OPS_RING];
} shared_board;

static pthread_mutex_t shared_mu = PTHREAD_MUTEX_INITIALIZER;
static shared_board *shared; /* cfg->boards of them */
static int shared_refs;

static int shared_acquire(const bench_cfg *cfg) {
  pthread_mutex_lock(&shared_mu);
  if (!shared && (shared = calloc((size_t)cfg->boards, sizeof *shared)) != NULL) {
    for (int b = 0; b < cfg->boards; b++) {
      pthread_mutex_init(&shared[b].mu, NULL);
      shared[b].members = cfg->connections / cfg->boards + (b < cfg->connections % cfg->boards);
    }
  }
  int rc = shared ? 0 : -1;
  if (shared) shared_refs++;
  pthread_mutex_unlock(&shared_mu);
  return rc;
}

static void shared_release(const bench_cfg *cfg) {
  pthread_mutex_lock(&shared_mu);
  if (--shared_refs == 0) {
    for (int b = 0; b < cfg->boards; b++) pthread_mutex_destroy(&shared[b].mu);
    free(shared);
    shared = NULL;
  }
  pthread_mutex_unlock(&shared_mu);
}

/* One more user of `board` received op `offset` after `lat` ns: the last one completes the op. */
static void delivered_to(worker *w, int board, uint64_t offset, uint64_t lat) {
  shared_board *sb = &shared[board];
  pthread_mutex_lock(&sb->mu);
  op_slot *s = &sb->ring[offset % OPS_RING];
  if (s->offset != offset) *s = (op_slot){.offset = offset};
  if (lat > s->worst) s->worst = lat;
  if (++s->got == sb->members) hist_record(&w->all_lat, s->worst);
  pthread_mutex_unlock(&sb->mu);
}

static uint32_t next_rand(board_user *u) {
  u->rng ^= u->rng << 13;
  u->rng ^= u->rng >> 17;
  u->rng ^= u->rng << 5;
  return u->rng;
}

/* The user gives up (its error is recorded): it closes its connection, the others go on. */
static void give_up(board_user *u) {
  u->state = U_GONE;
  uv_timer_stop(&u->timer);
  wsload_finish(u->c, "giving up");
}

static bool send_msg(board_user *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool send_msg(board_user *u, const char *fmt, ...) {
  char buf[MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  int rc = n > 0 && (size_t)n < sizeof buf
               ? rs_ws_conn_send(u->c->ws, RS_WS_OP_TEXT, (const uint8_t *)buf, (size_t)n)
               : RS_ERR_BUFFER_TOO_SMALL;
  if (rc != 0) {
    u->c->L->w->errors++;
    worker_error(u->c->L->w, "send: %s", rs_strerror(rc));
    give_up(u);
    return false;
  }
  return true;
}

static void on_edit_due(uv_timer_t *t);

static void schedule(board_user *u, uint64_t now) {
  uint64_t ms = u->next_due > now ? (u->next_due - now + 999999u) / 1000000u : 0;
  uv_timer_start(&u->timer, on_edit_due, ms, 0);
}

static void on_edit_due(uv_timer_t *t) {
  board_user *u = t->data;
  wconn *c = u->c;
  worker *w = c->L->w;
  if (c->done || c->L->stopping || u->state != U_EDITING) return;
  uint64_t now = bench_now_ns();
  if (u->edits >= MAX_EDITS) {
    w->errors++;
    worker_error(w, "user %d on bench-%d: %d edits unanswered, skipping the next ones", u->index,
                 u->board, MAX_EDITS);
  } else {
    uint64_t id = u->next_id++;
    int x = (int)(next_rand(u) % 2000), y = (int)(next_rand(u) % 1200);
    if (!send_msg(u,
                  "{\"type\":\"req\",\"id\":%" PRIu64 ",\"route\":\"board.edit\",\"data\":"
                  "{\"board\":\"bench-%d\",\"op\":{\"kind\":\"update\",\"shape\":{\"id\":\"%s\","
                  "\"x\":%d,\"y\":%d,\"text\":\"t%" PRIu64 "\"}}}}",
                  id, u->board, u->shape, x, y, now))
      return;
    u->edit_id[id % EDIT_RING] = id;
    u->edit_sent[id % EDIT_RING] = now;
    u->edits++;
    c->inflight++;
    wsload_flush(c);
  }
  u->next_due += u->c->L->board->period_ns;
  if (u->next_due + u->c->L->board->period_ns < now) u->next_due = now; /* far behind: resync */
  schedule(u, now);
}

void board_kick(wconn *c) {
  board_user *u = c->user;
  wsload *L = c->L;
  if (L->board->drained) {
    if (u->subscribed) send_msg(u, "{\"type\":\"unsub\",\"id\":%d}", ID_OPS);
    if (u->edits > 0) {
      L->w->errors += (uint64_t)u->edits;
      worker_error(L->w, "user %d on bench-%d: %d edits unanswered %u ms after the end", u->index,
                   u->board, u->edits, DRAIN_MS);
    }
    if (!c->done) wsload_finish(c, "done");
    return;
  }
  if (u->state == U_NEW && !L->stopping) {
    if (!send_msg(u,
                  "{\"type\":\"req\",\"id\":%d,\"route\":\"board.join\",\"data\":"
                  "{\"board\":\"bench-%d\",\"name\":\"bench user %d\"}}",
                  ID_JOIN, u->board, u->index))
      return;
    u->state = U_JOINING;
    c->inflight++;
  }
  wsload_flush(c);
}

/* The data object of a cfm, parsed (NULL and an error recorded when it is not an object). */
static json_t *cfm_data(board_user *u, const uint8_t *msg, size_t len, const char *what) {
  json_t *root = json_loadb((const char *)msg, len, 0, NULL);
  json_t *data = json_object_get(root, "data");
  if (json_is_object(data)) {
    json_incref(data);
    json_decref(root);
    return data;
  }
  json_decref(root);
  u->c->L->w->errors++;
  worker_error(u->c->L->w, "the answer to %s is not an object: %.*s", what,
               (int)(len < 200 ? len : 200), (const char *)msg);
  return NULL;
}

/* The answer lacks what the user needs (`d`, its data, NULL when cfm_data said so already). */
static void bad_answer(board_user *u, json_t *d, const char *what, const uint8_t *msg, size_t len) {
  if (d) {
    u->c->L->w->errors++;
    worker_error(u->c->L->w, "%s: %.*s", what, (int)(len < 200 ? len : 200), (const char *)msg);
  }
  json_decref(d);
  give_up(u);
}

/* board.join answered: follow the board's ops from its offset, add the user's note. */
static void on_joined(board_user *u, const uint8_t *msg, size_t len) {
  json_t *d = cfm_data(u, msg, len, "board.join");
  const char *epoch = json_string_value(json_object_get(d, "epoch"));
  json_t *off = json_object_get(d, "offset");
  if (!epoch || !json_is_integer(off) || json_integer_value(off) < 0 || strlen(epoch) > 100 ||
      strpbrk(epoch, "\"\\")) {
    bad_answer(u, d, "board.join answered without an epoch and an offset", msg, len);
    return;
  }
  u->last = (uint64_t)json_integer_value(off);
  bool ok = send_msg(u,
                     "{\"type\":\"sub\",\"id\":%d,\"route\":\"board.ops\",\"data\":{\"board\":"
                     "\"bench-%d\",\"epoch\":\"%s\",\"from\":%" PRIu64 "}}",
                     ID_OPS, u->board, epoch, u->last);
  json_decref(d);
  if (!ok) return;
  u->subscribed = true;
  if (!send_msg(u,
                "{\"type\":\"req\",\"id\":%d,\"route\":\"board.edit\",\"data\":{\"board\":"
                "\"bench-%d\",\"op\":{\"kind\":\"add\",\"shape\":{\"x\":%u,\"y\":%u}}}}",
                ID_ADD, u->board, next_rand(u) % 2000, next_rand(u) % 1200))
    return;
  u->state = U_ADDING;
  u->c->inflight++;
}

/* The note is on the board: edit it from now on, the first edit at a random point of the first
 * period so that the users' edits spread over time. */
static void on_added(board_user *u, const uint8_t *msg, size_t len, uint64_t now) {
  json_t *d = cfm_data(u, msg, len, "board.edit add");
  const char *id = json_string_value(json_object_get(d, "id"));
  if (!id || strlen(id) >= sizeof u->shape || strpbrk(id, "\"\\")) {
    bad_answer(u, d, "board.edit add answered without the note's id", msg, len);
    return;
  }
  snprintf(u->shape, sizeof u->shape, "%s", id);
  json_decref(d);
  u->state = U_EDITING;
  u->next_due = now + next_rand(u) % u->c->L->board->period_ns;
  if (!u->c->L->stopping) schedule(u, now);
}

static bool read_u64(const uint8_t *p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  const uint8_t *d = p;
  while (p < end && *p >= '0' && *p <= '9' && p - d < 19) v = v * 10 + (uint64_t)(*p++ - '0');
  *out = v;
  return p > d;
}

/* An op of board.ops: its offset follows the last one; its latency when it carries a send time
 * within the measured window. */
static void on_op(board_user *u, const uint8_t *msg, size_t len, uint64_t now) {
  static const char off_key[] = "\"offset\":", text_key[] = "\"text\":\"t";
  worker *w = u->c->L->w;
  const uint8_t *end = msg + len;
  const uint8_t *p = memmem(msg, len, off_key, sizeof off_key - 1);
  uint64_t off;
  if (!p || !read_u64(p + sizeof off_key - 1, end, &off)) {
    w->errors++;
    worker_error(w, "an op without an offset: %.*s", (int)(len < 200 ? len : 200),
                 (const char *)msg);
    return;
  }
  if (off != u->last + 1) {
    w->errors++;
    worker_error(w, "user %d on bench-%d: op %" PRIu64 " delivered after op %" PRIu64, u->index,
                 u->board, off, u->last);
  }
  u->last = off;
  p = memmem(msg, len, text_key, sizeof text_key - 1);
  uint64_t sent;
  if (p && read_u64(p + sizeof text_key - 1, end, &sent) && sent <= now &&
      worker_measuring(w, sent)) {
    hist_record(&w->lat, now - sent);
    w->completed++;
    delivered_to(w, u->board, off, now - sent);
  }
}

/* The edit with this id is answered: its send time (0 when it is not in flight). */
static uint64_t take_edit(board_user *u, uint64_t id) {
  unsigned s = (unsigned)(id % EDIT_RING);
  uint64_t sent = u->edit_sent[s];
  if (id < ID_FIRST_EDIT || u->edit_id[s] != id || !sent) return 0;
  u->edit_sent[s] = 0;
  u->edits--;
  u->c->inflight--;
  return sent;
}

static void on_edited(board_user *u, uint64_t id, const uint8_t *msg, size_t len, uint64_t now) {
  worker *w = u->c->L->w;
  uint64_t sent = take_edit(u, id);
  if (!sent) {
    w->errors++;
    worker_error(w, "an answer for an id not in flight: %.*s", (int)(len < 100 ? len : 100),
                 (const char *)msg);
  } else if (worker_measuring(w, sent)) {
    hist_record(&w->edit_lat, now - sent);
    w->ops++;
  }
}

void board_on_message(wconn *c, int opcode, const uint8_t *data, size_t len, uint64_t now) {
  board_user *u = c->user;
  worker *w = c->L->w;
  rs_bytes type;
  uint64_t id;
  if (opcode != RS_WS_OP_TEXT || !wsload_gw_head(data, len, &type, &id)) {
    worker_error(w,
                 "answer is not a gateway message: %.*s… (--model board needs rsocket-gateway "
                 "in front of collab-service)",
                 (int)(len < 40 ? len : 40), (const char *)data);
    wsload_wrong_server(c);
    return;
  }
  c->L->last_reply = now;
  if (wsload_is_type(type, "ind") && id == ID_OPS) {
    on_op(u, data, len, now);
  } else if (wsload_is_type(type, "cfm") && id == ID_JOIN && u->state == U_JOINING) {
    c->inflight--;
    on_joined(u, data, len);
  } else if (wsload_is_type(type, "cfm") && id == ID_ADD && u->state == U_ADDING) {
    c->inflight--;
    on_added(u, data, len, now);
  } else if (wsload_is_type(type, "cfm")) {
    on_edited(u, id, data, len, now);
  } else {
    w->errors++;
    if (wsload_is_type(type, "rej"))
      worker_error(w, "user %d on bench-%d: the gateway rejected id %" PRIu64 ": %.*s", u->index,
                   u->board, id, (int)(len < 200 ? len : 200), (const char *)data);
    else if (wsload_is_type(type, "end") && id == ID_OPS)
      worker_error(w, "user %d on bench-%d: board.ops ended", u->index, u->board);
    else
      worker_error(w, "an unexpected answer: %.*s", (int)(len < 100 ? len : 100),
                   (const char *)data);
    if (wsload_is_type(type, "rej") && id >= ID_FIRST_EDIT) {
      take_edit(u, id); /* an edit refused: the user goes on with the next */
    } else if (wsload_is_type(type, "rej") || wsload_is_type(type, "end")) {
      u->subscribed = u->subscribed && id != ID_OPS;
      give_up(u); /* without its join, note or ops it cannot take part */
    }
  }
}

static void on_drained(uv_timer_t *t) {
  wsload *L = t->data;
  L->board->drained = true;
  for (int i = 0; i < L->w->nconns; i++)
    if (L->conns[i].upgraded && !L->conns[i].done) board_kick(&L->conns[i]);
}

void board_on_deadline(wsload *L) {
  for (int i = 0; i < L->w->nconns; i++) uv_timer_stop(&L->board->users[i].timer);
  uv_timer_start(&L->board->drain, on_drained, DRAIN_MS, 0);
}

void board_conn_closed(wconn *c) {
  board_user *u = c->user;
  struct board_load *b = c->L->board;
  uv_close((uv_handle_t *)&u->timer, NULL);
  if (--b->open == 0) uv_close((uv_handle_t *)&b->drain, NULL);
}

int board_init(wsload *L) {
  worker *w = L->w;
  const bench_cfg *cfg = w->cfg;
  struct board_load *b = calloc(1, sizeof *b);
  if (!b || !(b->users = calloc((size_t)w->nconns, sizeof *b->users))) {
    free(b);
    return -1;
  }
  if (shared_acquire(cfg) != 0) {
    free(b->users);
    free(b);
    return -1;
  }
  b->period_ns = (uint64_t)(1e9 / cfg->rate);
  if (b->period_ns == 0) b->period_ns = 1;
  uv_timer_init(&w->loop, &b->drain);
  b->drain.data = L;
  /* The users of the workers before this one: main() deals connections out in this way. */
  int base = w->id * (cfg->connections / cfg->threads) +
             (w->id < cfg->connections % cfg->threads ? w->id : cfg->connections % cfg->threads);
  for (int i = 0; i < w->nconns; i++) {
    board_user *u = &b->users[i];
    u->c = &L->conns[i];
    u->index = base + i;
    u->board = u->index % cfg->boards;
    u->next_id = ID_FIRST_EDIT;
    u->rng = 2463534242u ^ (uint32_t)(u->index * 2654435761u);
    if (!u->rng) u->rng = 1;
    uv_timer_init(&w->loop, &u->timer);
    u->timer.data = u;
    L->conns[i].user = u;
  }
  b->open = w->nconns;
  L->board = b;
  return 0;
}

void board_free(wsload *L) {
  shared_release(L->w->cfg);
  free(L->board->users);
  free(L->board);
  L->board = NULL;
}
