/*
 * The load-balancing pool (rsocket/pool.h): K rs_clients per target on one loop, a strategy that
 * picks one of them for every new request, and replacement of every client that ends.
 *
 * Each member (one connection slot of one target) is the user pointer of its rs_client, and the
 * pool's callbacks are the client's: a stream the pool opens gets a small record (pool_stream) as
 * its engine stream user, which carries the application's pointer, the member and the start time,
 * so the callbacks count load and latency and then forward with the application's pointer.
 * Streams with even ids were opened by the target (its requests) and are the application's: they
 * are forwarded untouched.
 *
 * Load: a member's cost is (request-response in flight + streams open + 1) x latency /
 * availability. Latency is a peak EWMA of response times (request to answer, request to first
 * element): a slower sample is taken at once, a faster one weighs in by the time since the last
 * sample, over a half-life. P2C draws two distinct targets among those with an established
 * connection and takes the cheaper; a target's cost is that of its cheapest candidate connection.
 * Drawing connections instead would make the two choices fall on the same target with
 * probability (K-1)/(N*K-1) (1/3 for two targets of 4 connections), which hands a slow target
 * that share of the requests whatever its cost.
 *
 * Life cycle: a client whose RS_CLIENT_CLOSED arrives is replaced after a jittered exponential
 * backoff on the member's timer, whether it ever connected or not. Without resumption clients do
 * not reconnect themselves (a lost connection closes the client and the pool makes a new one);
 * with it they reconnect and resume, and the pool only replaces them when the session is over.
 * The pool is freed once every client has closed and every timer handle is closed.
 *
 * Targets are records of their own (members inline), indexed by a slot array whose free slots
 * are reused, so a member's address never changes while a client or a stream points at it. A
 * removed target is `draining`: out of up_targets (p2c never draws it), not available (round
 * robin skips it), its clients closed gracefully and not replaced, each member's timer turned
 * into the drain deadline; it is freed from the close callback of its last timer, which closes
 * only after the member's client is gone.
 */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsocket/pool.h"
#include "rsocket/uri.h"
#include "runtime/rt_internal.h"
#include "runtime/ws_transport.h"

#define DEFAULT_CONNECTIONS    2
#define DEFAULT_BACKOFF_MIN_MS 100u
#define DEFAULT_BACKOFF_MAX_MS 1000u
#define DEFAULT_HALF_LIFE_MS   5000u
#define NO_SAMPLE_LATENCY_MS   1.0
#define MIN_LATENCY_MS         0.001 /* keeps costs apart when a clock tick is 0 */
#define PAIR_ATTEMPTS          4
#define TOKEN_BYTES            16

enum { KIND_RESPONSE, KIND_STREAM };

typedef struct pool_target pool_target;

typedef struct pool_member {
  rs_pool *pool;
  pool_target *target;
  int slot;
  rs_client *client; /* NULL between a client's RS_CLIENT_CLOSED and its replacement */
  uv_timer_t backoff;
  bool up;            /* from RS_CLIENT_CONNECTED to the loss of that transport */
  bool was_up;        /* the current client was up at some point */
  bool starting;      /* inside rs_client_start */
  bool closed_early;  /* the client closed inside rs_client_start */
  int attempts;       /* consecutive failures, for the backoff */
  uint64_t up_since;  /* uv_now at RS_CLIENT_CONNECTED */
  uint64_t in_flight; /* request-response streams not answered yet */
  uint64_t streams;   /* request-stream and channel streams open */
  bool has_sample;
  double ewma_ms;
  uint64_t ewma_at_ns;
  uint8_t token[TOKEN_BYTES]; /* resume token of the current client */
} pool_member;

struct pool_target {
  char *uri;
  size_t index;    /* in rs_pool.targets: stable for the target's life */
  int up;          /* members up */
  size_t up_index; /* position in rs_pool.up_targets while up > 0 and not draining */
  uint64_t requests, failures;
  bool draining;         /* removed: no new request; freed once its clients and timers are gone */
  int live;              /* its clients and timers not closed yet */
  pool_member members[]; /* `per_target` of them */
};

typedef struct pool_choice {
  pool_member *m;
  double cost;
} pool_choice;

struct rs_pool {
  uv_loop_t *loop;
  rs_pool_options opt; /* uris and client unused: see targets and client */
  rs_client_options client;
  rs_conn_callbacks app; /* the application's callbacks */
  void (*app_on_drained)(rs_conn *conn, void *user);
  void (*app_on_frame)(rs_conn *conn, bool outbound, const uint8_t *frame, size_t len, void *user);
  uint8_t *settings_copy;
  pool_target **targets; /* by index; NULL: a free index (a removed target is gone) */
  size_t n_targets;      /* one past the highest index in use */
  size_t cap_targets;    /* of targets, up_targets and choices */
  int per_target;
  size_t *up_targets; /* indices of the targets with a member up, draining ones left out */
  size_t n_up;
  pool_choice *choices; /* scratch, one per target */
  double fresh_ms;
  uint64_t fresh_at; /* uv_now when fresh_ms was computed (+1: 0 means never) */
  size_t rr_next;
  uint64_t rng;
  double half_life_ns;
  bool closing, graceful, failed;
  int open_clients, open_timers;
  uv_timer_t idle; /* closing a pool with nothing open: on_closed from the loop all the same */
  void (*on_closed)(void *arg);
  void *closed_arg;
};

typedef struct pool_stream {
  void *user; /* the application's */
  pool_member *m;
  uint64_t start_ns;
  uint8_t kind;
  bool answered;
} pool_stream;

void rs_pool_options_default(rs_pool_options *o) {
  memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  rs_client_options_default(&o->client);
  o->client.callbacks.struct_size = sizeof o->client.callbacks;
}

/* ---- randomness and arithmetic ---- */

static uint64_t next_random(rs_pool *p) {
  p->rng ^= p->rng << 13;
  p->rng ^= p->rng >> 7;
  p->rng ^= p->rng << 17;
  return p->rng;
}

/* Two distinct indices below n (n >= 2), uniformly. */
static void draw_two(rs_pool *p, size_t n, size_t *a, size_t *b) {
  *a = (size_t)(next_random(p) % n);
  *b = (size_t)(next_random(p) % (n - 1));
  if (*b >= *a) (*b)++;
}

/* 2^-x for x >= 0, without libm: halvings for the integer part, a series for the rest (relative
 * error under 2e-6, plenty for a weight). */
static double pow2_neg(double x) {
  if (x >= 64) return 0;
  int k = (int)x;
  double y = (x - k) * 0.69314718055994531; /* e^-y with y in [0, ln 2) */
  double term = 1, sum = 1;
  for (int i = 1; i <= 8; i++) {
    term *= -y / i;
    sum += term;
  }
  while (k-- > 0) sum *= 0.5;
  return sum;
}

/* ---- load ---- */

/* Peak EWMA: a slower sample counts at once; a faster one weighs by the time since the last. */
static void add_sample(rs_pool *p, pool_member *m, uint64_t start_ns) {
  uint64_t now = uv_hrtime();
  double ms = (double)(now - start_ns) / 1e6;
  if (!m->has_sample || ms >= m->ewma_ms) {
    m->ewma_ms = ms;
  } else {
    double w = pow2_neg((double)(now - m->ewma_at_ns) / p->half_life_ns);
    m->ewma_ms = m->ewma_ms * w + ms * (1 - w);
  }
  m->has_sample = true;
  m->ewma_at_ns = now;
}

/* A connection's latency as the balancer sees it now: its peak EWMA decayed by the time since
 * its last sample (halved every half-life). Without the decay a connection that once answered
 * slowly and was then avoided would keep that cost for ever and never be tried again; decayed,
 * it gets a request once it looks cheap, and that request's sample (slow again, or not) sets it
 * right (Finagle's peak EWMA does the same). */
static double latency_now(const rs_pool *p, const pool_member *m, uint64_t now_ns) {
  double idle = now_ns > m->ewma_at_ns ? (double)(now_ns - m->ewma_at_ns) : 0;
  return m->ewma_ms * pow2_neg(idle / p->half_life_ns);
}

/* The latency assumed for a connection without a sample (every new one): the lowest of those
 * with one (1 ms when none has), so that a new connection, or a target that comes back, is
 * tried at once; its first answer gives it its own. Computed at most once per loop tick. */
static double fresh_latency(rs_pool *p) {
  uint64_t now = uv_now(p->loop) + 1;
  if (p->fresh_at == now) return p->fresh_ms;
  uint64_t ns = uv_hrtime();
  double best = -1;
  for (size_t i = 0; i < p->n_targets; i++)
    for (int k = 0; p->targets[i] && k < p->per_target; k++) {
      const pool_member *m = &p->targets[i]->members[k];
      if (!m->has_sample) continue;
      double l = latency_now(p, m, ns);
      if (best < 0 || l < best) best = l;
    }
  p->fresh_ms = best >= 0 ? best : NO_SAMPLE_LATENCY_MS;
  p->fresh_at = now;
  return p->fresh_ms;
}

/* The share of new requests the connection can take: 0 unless established (and leased), and 0
 * for a target being removed. */
static double availability(const pool_member *m, uint64_t now) {
  if (!m->up || !m->client || m->target->draining || !rs_client_connected(m->client)) return 0;
  return rs_conn_availability(rs_client_conn(m->client), now);
}

static double cost_of(rs_pool *p, const pool_member *m, double avail) {
  double lat = m->has_sample ? latency_now(p, m, uv_hrtime()) : fresh_latency(p);
  if (lat < MIN_LATENCY_MS) lat = MIN_LATENCY_MS;
  return (double)(m->in_flight + m->streams + 1) * lat / avail;
}

/* The cheapest candidate connection of `t` (NULL: none). The scan starts at a random slot so
 * that idle connections share the work. */
static pool_member *target_best(rs_pool *p, pool_target *t, uint64_t now, double *cost) {
  pool_member *best = NULL;
  double best_cost = 0;
  int k = p->per_target;
  int start = k > 1 ? (int)(next_random(p) % (uint64_t)k) : 0;
  for (int i = 0; i < k; i++) {
    pool_member *m = &t->members[(start + i) % k];
    double a = availability(m, now);
    if (a <= 0) continue;
    double c = cost_of(p, m, a);
    if (!best || c < best_cost) best = m, best_cost = c;
  }
  *cost = best_cost;
  return best;
}

static pool_member *pick_p2c(rs_pool *p, uint64_t now) {
  size_t n = p->n_up, a, b;
  double ca, cb;
  if (n == 0) return NULL;
  if (n == 1) return target_best(p, p->targets[p->up_targets[0]], now, &ca);
  for (int i = 0; i < PAIR_ATTEMPTS; i++) {
    draw_two(p, n, &a, &b);
    pool_member *ma = target_best(p, p->targets[p->up_targets[a]], now, &ca);
    pool_member *mb = target_best(p, p->targets[p->up_targets[b]], now, &cb);
    if (ma && mb) return cb < ca ? mb : ma;
  }
  /* Some connected targets have no lease left: choose among those that have. */
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    pool_member *m = target_best(p, p->targets[p->up_targets[i]], now, &ca);
    if (m) p->choices[k++] = (pool_choice){m, ca};
  }
  if (k == 0) return NULL;
  if (k == 1) return p->choices[0].m;
  draw_two(p, k, &a, &b);
  return p->choices[b].cost < p->choices[a].cost ? p->choices[b].m : p->choices[a].m;
}

/* Round robin over every connection, slot-major (t0/0, t1/0, ..., t0/1, ...), skipping those
 * that are not candidates (and free indices). */
static pool_member *pick_round_robin(rs_pool *p, uint64_t now) {
  size_t total = p->n_targets * (size_t)p->per_target;
  for (size_t i = 0; i < total; i++) {
    size_t r = p->rr_next % total;
    p->rr_next = (r + 1) % total;
    pool_target *t = p->targets[r % p->n_targets];
    if (!t) continue;
    pool_member *m = &t->members[r / p->n_targets];
    if (availability(m, now) > 0) return m;
  }
  return NULL;
}

/* p2c draws among the targets in up_targets: those with a member up, unless draining. */
static void up_add(rs_pool *p, pool_target *t) {
  t->up_index = p->n_up;
  p->up_targets[p->n_up++] = t->index;
}

static void up_remove(rs_pool *p, pool_target *t) {
  size_t last = p->up_targets[--p->n_up];
  p->up_targets[t->up_index] = last;
  p->targets[last]->up_index = t->up_index;
}

static void set_up(rs_pool *p, pool_member *m, bool up) {
  if (m->up == up) return;
  m->up = up;
  pool_target *t = m->target;
  if (up) {
    m->was_up = true;
    if (t->up++ == 0 && !t->draining) up_add(p, t);
  } else if (--t->up == 0 && !t->draining) {
    up_remove(p, t);
  }
}

/* ---- callbacks: count, then forward with the application's stream user ---- */

/* The pool's record of a stream it opened (odd ids), or NULL for the target's streams. */
static pool_stream *own(uint32_t sid, void *su) {
  return (sid & 1u) ? su : NULL;
}

static void *app_su(uint32_t sid, void *su) {
  pool_stream *s = own(sid, su);
  return s ? s->user : su;
}

static void pl_close(rs_conn *conn, const rs_close_info *info, void *user) {
  rs_pool *p = ((pool_member *)user)->pool;
  if (p->app.on_close) p->app.on_close(conn, info, p->opt.user);
}

static int pl_request(rs_conn *conn, const rs_request *req, void *user) {
  rs_pool *p = ((pool_member *)user)->pool;
  return p->app.on_request ? p->app.on_request(conn, req, p->opt.user) : -1;
}

static void pl_payload(rs_conn *conn, uint32_t sid, void *su, const rs_payload *pl, unsigned flags,
                       void *user) {
  pool_member *m = user;
  pool_stream *s = own(sid, su);
  if (s && !s->answered) {
    s->answered = true;
    add_sample(m->pool, m, s->start_ns);
    if (s->kind == KIND_RESPONSE) m->in_flight--;
  }
  rs_pool *p = m->pool;
  if (p->app.on_payload) p->app.on_payload(conn, sid, app_su(sid, su), pl, flags, p->opt.user);
}

static void pl_request_n(rs_conn *conn, uint32_t sid, void *su, uint64_t n, void *user) {
  rs_pool *p = ((pool_member *)user)->pool;
  if (p->app.on_request_n) p->app.on_request_n(conn, sid, app_su(sid, su), n, p->opt.user);
}

static void pl_cancel(rs_conn *conn, uint32_t sid, void *su, void *user) {
  rs_pool *p = ((pool_member *)user)->pool;
  if (p->app.on_cancel) p->app.on_cancel(conn, sid, app_su(sid, su), p->opt.user);
}

static void pl_error(rs_conn *conn, uint32_t sid, void *su, const rs_stream_error *e, void *user) {
  rs_pool *p = ((pool_member *)user)->pool;
  if (p->app.on_error) p->app.on_error(conn, sid, app_su(sid, su), e, p->opt.user);
}

static void pl_stream_closed(rs_conn *conn, uint32_t sid, void *su, void *user) {
  pool_member *m = user;
  rs_pool *p = m->pool;
  pool_stream *s = own(sid, su);
  if (s && s->kind == KIND_STREAM)
    m->streams--;
  else if (s && !s->answered)
    m->in_flight--;
  if (p->app.on_stream_closed) p->app.on_stream_closed(conn, sid, app_su(sid, su), p->opt.user);
  free(s);
}

static void pl_drained(rs_conn *conn, void *user) {
  pool_member *m = user;
  m->pool->app_on_drained(conn, m->pool->opt.user);
}

static void pl_frame(rs_conn *conn, bool outbound, const uint8_t *frame, size_t len, void *user) {
  pool_member *m = user;
  m->pool->app_on_frame(conn, outbound, frame, len, m->pool->opt.user);
}

static void pl_metadata_push(rs_conn *conn, rs_bytes md, void *user) {
  rs_pool *p = ((pool_member *)user)->pool;
  if (p->app.on_metadata_push) p->app.on_metadata_push(conn, md, p->opt.user);
}

static void pl_lease(rs_conn *conn, uint32_t ttl, uint32_t n, const rs_bytes *md, void *user) {
  /* Nothing to update: availability() asks the engine, which holds the lease. */
  rs_pool *p = ((pool_member *)user)->pool;
  if (p->app.on_lease) p->app.on_lease(conn, ttl, n, md, p->opt.user);
}

static int pl_produce(rs_conn *conn, uint32_t sid, void *su, uint64_t credit, void *user) {
  rs_pool *p = ((pool_member *)user)->pool;
  return p->app.on_produce ? p->app.on_produce(conn, sid, app_su(sid, su), credit, p->opt.user)
                           : RS_PRODUCE_PAUSE;
}

static const rs_conn_callbacks pool_callbacks = {
    .struct_size = sizeof(rs_conn_callbacks),
    .on_close = pl_close,
    .on_request = pl_request,
    .on_payload = pl_payload,
    .on_request_n = pl_request_n,
    .on_cancel = pl_cancel,
    .on_error = pl_error,
    .on_stream_closed = pl_stream_closed,
    .on_metadata_push = pl_metadata_push,
    .on_lease = pl_lease,
    .on_produce = pl_produce,
};

/* ---- members: start, lose, replace ---- */

static void emit(rs_pool *p, pool_member *m, rs_client_event ev, const char *message) {
  if (p->opt.on_event && !p->failed)
    p->opt.on_event(p, m->target->index, m->slot, ev, message, p->opt.user);
}

static void on_client_event(rs_client *c, rs_client_event ev, const char *message, void *user);

static int member_start(rs_pool *p, pool_member *m, char *err, size_t errlen) {
  rs_client_options co = p->client;
  co.uri = m->target->uri;
  co.user = m;
  if (co.settings.resume) {
    if (RAND_bytes(m->token, sizeof m->token) != 1) {
      snprintf(err, errlen, "no random bytes for a resume token");
      return RS_ERR_INTERNAL;
    }
    co.settings.resume_token = (rs_bytes){m->token, sizeof m->token};
  }
  /* A new connection starts without a latency history (it gets the lowest of the others'). */
  m->has_sample = false;
  m->was_up = false;
  m->starting = true;
  m->closed_early = false;
  p->open_clients++;
  m->target->live++;
  rs_client *c = NULL;
  int r = rs_client_start(&c, p->loop, &co, err, errlen);
  m->starting = false;
  if (r != 0) {
    p->open_clients--;
    m->target->live--;
    return r;
  }
  m->client = m->closed_early ? NULL : c;
  return 0;
}

static uint32_t backoff_delay(rs_pool *p, pool_member *m) {
  uint64_t d = p->opt.backoff_min_ms;
  for (int i = 0; i < m->attempts && d < p->opt.backoff_max_ms; i++) d *= 2;
  if (d > p->opt.backoff_max_ms) d = p->opt.backoff_max_ms;
  m->attempts++;
  return (uint32_t)(d / 2 + next_random(p) % (d ? d : 1)); /* [50%, 150%) */
}

static void on_backoff(uv_timer_t *t);

static void schedule_replacement(rs_pool *p, pool_member *m, const char *why) {
  uint32_t d = backoff_delay(p, m);
  uv_timer_start(&m->backoff, on_backoff, d, 0);
  char msg[1600];
  snprintf(msg, sizeof msg, "%s; reconnecting in %u ms", why, d);
  emit(p, m, RS_CLIENT_RECONNECTING, msg);
}

static void on_backoff(uv_timer_t *t) {
  pool_member *m = t->data;
  rs_pool *p = m->pool;
  if (p->closing) return;
  char err[256];
  int r = member_start(p, m, err, sizeof err);
  if (r != 0) {
    m->target->failures++;
    schedule_replacement(p, m, err);
  }
}

/* The transport of an established connection is gone. */
static void member_lost(rs_pool *p, pool_member *m) {
  if (!m->up) return;
  set_up(p, m, false);
  /* A connection that stayed up a while earns a fresh start of the backoff. */
  if (uv_now(p->loop) - m->up_since >= p->opt.backoff_max_ms) m->attempts = 0;
  if (!p->closing) m->target->failures++;
}

static void target_free(pool_target *t) {
  if (!t) return;
  free(t->uri);
  free(t);
}

static void pool_free(rs_pool *p) {
  for (size_t i = 0; i < p->n_targets; i++) target_free(p->targets[i]);
  free(p->targets);
  free(p->up_targets);
  free(p->choices);
  free(p->settings_copy);
  free(p);
}

/* Frees the pool once its last client and timer are gone, after on_closed. */
static void maybe_finish(rs_pool *p) {
  if (p->open_clients > 0 || p->open_timers > 0) return;
  if (p->on_closed) p->on_closed(p->closed_arg);
  pool_free(p);
}

static void on_timer_closed(uv_handle_t *h);

static void on_idle_closed(uv_handle_t *h) {
  rs_pool *p = h->data;
  p->open_timers--;
  maybe_finish(p);
}

/* A member's timer closes once: at the pool's close, or when its target is removed and the
 * member has no client left. */
static void member_timer_close(pool_member *m) {
  if (!uv_is_closing((uv_handle_t *)&m->backoff))
    uv_close((uv_handle_t *)&m->backoff, on_timer_closed);
}

static void on_client_event(rs_client *c, rs_client_event ev, const char *message, void *user) {
  (void)c;
  pool_member *m = user;
  rs_pool *p = m->pool;
  switch (ev) {
  case RS_CLIENT_CONNECTED:
    m->up_since = uv_now(p->loop);
    set_up(p, m, true);
    emit(p, m, ev, message);
    return;
  case RS_CLIENT_DISCONNECTED:
    member_lost(p, m);
    emit(p, m, ev, message);
    return;
  case RS_CLIENT_RESUMED:
  case RS_CLIENT_RECONNECTING: emit(p, m, ev, message); return;
  case RS_CLIENT_CLOSED: break;
  }
  /* The client is freed after this returns: every stream of it has ended already. */
  bool counted = m->was_up; /* its loss was counted at DISCONNECTED */
  member_lost(p, m);
  m->client = NULL;
  if (m->starting) m->closed_early = true;
  p->open_clients--;
  m->target->live--;
  if (p->closing) {
    emit(p, m, RS_CLIENT_CLOSED, message);
    maybe_finish(p);
    return;
  }
  if (m->target->draining) {
    /* Removed: not replaced. The timer (the drain deadline) closes, and the target is freed
     * when the last of its timers has closed (never inside this callback: the member is the
     * client's user until it returns). */
    emit(p, m, RS_CLIENT_CLOSED, message);
    member_timer_close(m);
    return;
  }
  if (!counted) m->target->failures++;
  schedule_replacement(p, m, message);
}

static void on_timer_closed(uv_handle_t *h) {
  pool_member *m = h->data;
  rs_pool *p = m->pool;
  pool_target *t = m->target;
  p->open_timers--;
  t->live--;
  if (p->closing) {
    maybe_finish(p);
    return;
  }
  if (!t->draining || t->live > 0) return;
  /* A removed target is gone: its index is free again. */
  p->targets[t->index] = NULL;
  while (p->n_targets > 0 && !p->targets[p->n_targets - 1]) p->n_targets--;
  target_free(t);
}

/* A connection with something to finish: established, or a session that is resuming with
 * streams open. Anything else stops at once even when closed gracefully. */
static bool can_finish(const rs_pool *p, pool_member *m) {
  if (rs_client_connected(m->client)) return true;
  return p->client.settings.resume && rs_conn_stream_count(rs_client_conn(m->client)) > 0;
}

/* A graceful close waits for the streams of connections that can finish. */
static bool closes_gracefully(const rs_pool *p, pool_member *m) {
  return p->graceful && can_finish(p, m);
}

void rs_pool_close(rs_pool *p, bool graceful, void (*on_closed)(void *arg), void *arg) {
  if (!p) return;
  if (p->closing) {
    /* A graceful close may still be turned into an abort. */
    if (graceful || !p->graceful) return;
    p->graceful = false;
    for (size_t i = 0; i < p->n_targets; i++)
      for (int k = 0; p->targets[i] && k < p->per_target; k++)
        if (p->targets[i]->members[k].client)
          rs_client_close(p->targets[i]->members[k].client, false);
    return;
  }
  p->closing = true;
  p->graceful = graceful;
  p->on_closed = on_closed;
  p->closed_arg = arg;
  /* Targets being removed are closed the same way (an abort cuts their drain short). */
  for (size_t i = 0; i < p->n_targets; i++)
    for (int k = 0; p->targets[i] && k < p->per_target; k++) {
      pool_member *m = &p->targets[i]->members[k];
      if (m->client) rs_client_close(m->client, closes_gracefully(p, m));
      member_timer_close(m);
    }
  if (p->open_clients == 0 && p->open_timers == 0) {
    /* Nothing was open (every target had been removed and was gone): on_closed still runs
     * from the loop, never inside this call. */
    uv_timer_init(p->loop, &p->idle);
    p->idle.data = p;
    p->open_timers++;
    uv_close((uv_handle_t *)&p->idle, on_idle_closed);
  }
}

/* ---- start ---- */

/* Copies the byte views of the connection settings into one block the pool owns: clients are
 * made for as long as the pool runs. */
static int copy_settings(rs_pool *p) {
  rs_conn_settings *s = &p->client.settings;
  rs_bytes *views[] = {&s->metadata_mime, &s->data_mime, &s->setup_payload.metadata,
                       &s->setup_payload.data};
  size_t total = 1;
  for (size_t i = 0; i < sizeof views / sizeof *views; i++) total += views[i]->len;
  uint8_t *buf = malloc(total);
  if (!buf) return RS_ERR_NOMEM;
  size_t at = 0;
  for (size_t i = 0; i < sizeof views / sizeof *views; i++) {
    if (views[i]->len) memcpy(buf + at, views[i]->ptr, views[i]->len);
    views[i]->ptr = views[i]->len ? buf + at : NULL;
    at += views[i]->len;
  }
  s->resume_token = (rs_bytes){NULL, 0};
  p->settings_copy = buf;
  return 0;
}

/* Checks what can be checked before any client starts: targets, URIs, WebSocket headers and the
 * connection settings (an engine made and freed). */
static int check_options(const rs_pool_options *o, char *err, size_t errlen) {
  if (!o->uris || o->n_uris == 0 || o->n_uris > RS_POOL_MAX_TARGETS) {
    snprintf(err, errlen, "a pool needs 1 to %d targets", RS_POOL_MAX_TARGETS);
    return RS_ERR_INVALID_ARGUMENT;
  }
  if (o->connections < 0 || o->connections > RS_POOL_MAX_CONNECTIONS) {
    snprintf(err, errlen, "connections per target must be 0 to %d", RS_POOL_MAX_CONNECTIONS);
    return RS_ERR_INVALID_ARGUMENT;
  }
  if (o->strategy != RS_POOL_P2C && o->strategy != RS_POOL_ROUND_ROBIN) {
    snprintf(err, errlen, "unknown strategy %d", (int)o->strategy);
    return RS_ERR_INVALID_ARGUMENT;
  }
  if (o->client.callbacks.struct_size == 0) {
    snprintf(err, errlen, "client.callbacks.struct_size is not set");
    return RS_ERR_INVALID_ARGUMENT;
  }
  bool ws = false;
  for (size_t i = 0; i < o->n_uris; i++) {
    rs_uri u;
    char why[256];
    if (!o->uris[i]) {
      snprintf(err, errlen, "target %zu: no URI", i);
      return RS_ERR_INVALID_ARGUMENT;
    }
    if (rs_uri_parse(o->uris[i], &u, why, sizeof why) != 0) {
      snprintf(err, errlen, "target %zu: %s", i, why);
      return RS_ERR_INVALID_ARGUMENT;
    }
    ws = ws || u.websocket;
  }
  if (ws && rt_ws_check_options(&o->client.ws, err, errlen) != 0) return RS_ERR_INVALID_ARGUMENT;
  return 0;
}

static int check_settings(const rs_conn_settings *settings, char *err, size_t errlen) {
  rs_conn_settings s = *settings;
  s.role = RS_CONN_CLIENT;
  static const uint8_t token[TOKEN_BYTES];
  if (s.resume) s.resume_token = (rs_bytes){token, sizeof token};
  rs_conn *conn = NULL;
  int r = rs_conn_new(&conn, &s, NULL, NULL, NULL, 0);
  rs_conn_free(conn);
  if (r == RS_ERR_INVALID_ARGUMENT) snprintf(err, errlen, "invalid connection settings");
  return r;
}

/* Room for `n` target indices in targets, up_targets and choices (new entries NULL). Returns 0 or
 * RS_ERR_NOMEM (what was grown stays). */
static int grow_targets(rs_pool *p, size_t n) {
  if (n <= p->cap_targets) return 0;
  size_t cap = p->cap_targets ? p->cap_targets : 4;
  while (cap < n) cap *= 2;
  if (cap > RS_POOL_MAX_TARGETS) cap = RS_POOL_MAX_TARGETS;
  pool_target **t = realloc(p->targets, cap * sizeof *t);
  if (t) p->targets = t;
  size_t *up = t ? realloc(p->up_targets, cap * sizeof *up) : NULL;
  if (up) p->up_targets = up;
  pool_choice *ch = up ? realloc(p->choices, cap * sizeof *ch) : NULL;
  if (!ch) return RS_ERR_NOMEM;
  p->choices = ch;
  for (size_t i = p->cap_targets; i < cap; i++) p->targets[i] = NULL;
  p->cap_targets = cap;
  return 0;
}

/* A target record with its members, not started. */
static pool_target *target_new(rs_pool *p, const char *uri, size_t index) {
  pool_target *t = calloc(1, sizeof *t + (size_t)p->per_target * sizeof t->members[0]);
  if (!t) return NULL;
  if (!(t->uri = strdup(uri))) {
    free(t);
    return NULL;
  }
  t->index = index;
  for (int k = 0; k < p->per_target; k++) {
    t->members[k].pool = p;
    t->members[k].target = t;
    t->members[k].slot = k;
  }
  return t;
}

static rs_pool *pool_new(uv_loop_t *loop, const rs_pool_options *o) {
  rs_pool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->loop = loop;
  size_t n = o->struct_size && o->struct_size < sizeof *o ? o->struct_size : sizeof *o;
  rs_pool_options_default(&p->opt);
  memcpy(&p->opt, o, n);
  p->opt.uris = NULL;
  rs_client_options_default(&p->client);
  n = o->client.struct_size && o->client.struct_size < sizeof o->client ? o->client.struct_size
                                                                        : sizeof o->client;
  memcpy(&p->client, &o->client, n);
  p->client.struct_size = sizeof p->client;
  n = o->client.callbacks.struct_size < sizeof p->app ? o->client.callbacks.struct_size
                                                      : sizeof p->app;
  memcpy(&p->app, &o->client.callbacks, n);
  p->client.callbacks = pool_callbacks;
  p->client.settings.role = RS_CONN_CLIENT;
  p->client.reconnect = p->client.settings.resume;
  p->client.max_attempts = 0;
  p->client.on_event = on_client_event;
  /* The template's taps get the pool's user pointer, not the member the clients carry. */
  p->app_on_drained = p->client.on_drained;
  p->app_on_frame = p->client.on_frame;
  p->client.on_drained = p->app_on_drained ? pl_drained : NULL;
  p->client.on_frame = p->app_on_frame ? pl_frame : NULL;
  /* Long-lived connections: established one round trip after SETUP, not after 1 s of silence. */
  p->client.probe_at_once = true;
  if (!p->opt.connections) p->opt.connections = DEFAULT_CONNECTIONS;
  if (!p->opt.backoff_min_ms) p->opt.backoff_min_ms = DEFAULT_BACKOFF_MIN_MS;
  if (!p->opt.backoff_max_ms) p->opt.backoff_max_ms = DEFAULT_BACKOFF_MAX_MS;
  if (p->opt.backoff_max_ms < p->opt.backoff_min_ms) p->opt.backoff_max_ms = p->opt.backoff_min_ms;
  if (!p->opt.ewma_half_life_ms) p->opt.ewma_half_life_ms = DEFAULT_HALF_LIFE_MS;
  p->client.backoff_min_ms = p->opt.backoff_min_ms;
  p->client.backoff_max_ms = p->opt.backoff_max_ms;
  p->half_life_ns = (double)p->opt.ewma_half_life_ms * 1e6;
  p->per_target = p->opt.connections;
  p->rng = (uv_hrtime() ^ (uint64_t)(uintptr_t)p) | 1;
  bool ok = grow_targets(p, o->n_uris) == 0 && copy_settings(p) == 0;
  for (size_t i = 0; ok && i < o->n_uris; i++) {
    ok = (p->targets[i] = target_new(p, o->uris[i], i)) != NULL;
    p->n_targets = i + 1;
  }
  if (!ok) {
    pool_free(p);
    return NULL;
  }
  return p;
}

/* Starts the connections of a new target (its timers first: closing needs them). Returns 0 or
 * member_start's error, after which the caller stops what started. */
static int target_start(rs_pool *p, pool_target *t, char *err, size_t errlen) {
  for (int k = 0; k < p->per_target; k++) {
    t->members[k].backoff.data = &t->members[k];
    uv_timer_init(p->loop, &t->members[k].backoff);
    p->open_timers++;
    t->live++;
  }
  int r = 0;
  for (int k = 0; k < p->per_target && r == 0; k++)
    r = member_start(p, &t->members[k], err, errlen);
  return r;
}

int rs_pool_start(rs_pool **out, uv_loop_t *loop, const rs_pool_options *o, char *err,
                  size_t errlen) {
  char scratch[256];
  if (!err || !errlen) err = scratch, errlen = sizeof scratch;
  if (!out || !loop || !o) {
    snprintf(err, errlen, "rs_pool_start: missing argument");
    return RS_ERR_INVALID_ARGUMENT;
  }
  int r = check_options(o, err, errlen);
  if (r == 0) r = check_settings(&o->client.settings, err, errlen);
  if (r != 0) return r;
  rs_pool *p = pool_new(loop, o);
  if (!p) {
    snprintf(err, errlen, "out of memory");
    return RS_ERR_NOMEM;
  }
  for (size_t i = 0; i < p->n_targets && r == 0; i++)
    r = target_start(p, p->targets[i], err, errlen);
  if (r != 0) {
    /* What started stops quietly; the pool frees itself once the loop has closed it all. */
    p->failed = true;
    memset(&p->app, 0, sizeof p->app);
    rs_pool_close(p, false, NULL, NULL);
    return r;
  }
  *out = p;
  return 0;
}

/* ---- targets added and removed while the pool runs ---- */

rs_ssize rs_pool_add_target(rs_pool *p, const char *uri, char *err, size_t errlen) {
  char scratch[256];
  if (!err || !errlen) err = scratch, errlen = sizeof scratch;
  if (!p || !uri) {
    snprintf(err, errlen, "rs_pool_add_target: missing argument");
    return RS_ERR_INVALID_ARGUMENT;
  }
  if (p->closing) {
    snprintf(err, errlen, "the pool is closing");
    return RS_ERR_CLOSED;
  }
  rs_uri u;
  char why[256];
  if (rs_uri_parse(uri, &u, why, sizeof why) != 0) {
    snprintf(err, errlen, "%s", why);
    return RS_ERR_INVALID_ARGUMENT;
  }
  if (u.websocket && rt_ws_check_options(&p->client.ws, err, errlen) != 0)
    return RS_ERR_INVALID_ARGUMENT;
  size_t index = 0;
  while (index < p->n_targets && p->targets[index]) index++;
  if (index >= RS_POOL_MAX_TARGETS) {
    snprintf(err, errlen, "a pool has at most %d targets", RS_POOL_MAX_TARGETS);
    return RS_ERR_INVALID_ARGUMENT;
  }
  pool_target *t = grow_targets(p, index + 1) == 0 ? target_new(p, uri, index) : NULL;
  if (!t) {
    snprintf(err, errlen, "out of memory");
    return RS_ERR_NOMEM;
  }
  p->targets[index] = t;
  if (index == p->n_targets) p->n_targets++;
  int r = target_start(p, t, err, errlen);
  if (r != 0) {
    /* What started stops quietly, as a removed target; the index is free once it has. */
    t->draining = true;
    for (int k = 0; k < p->per_target; k++) {
      pool_member *m = &t->members[k];
      if (m->client)
        rs_client_close(m->client, false); /* its CLOSED closes the timer */
      else
        member_timer_close(m);
    }
    return r;
  }
  return (rs_ssize)index;
}

static void on_drain_deadline(uv_timer_t *timer) {
  pool_member *m = timer->data;
  if (m->client) rs_client_close(m->client, false);
}

int rs_pool_remove_target(rs_pool *p, size_t index, uint32_t drain_ms) {
  if (!p || index >= p->n_targets || !p->targets[index]) return RS_ERR_INVALID_ARGUMENT;
  if (p->closing) return RS_ERR_CLOSED;
  pool_target *t = p->targets[index];
  if (t->draining) return RS_ERR_INVALID_STATE;
  if (t->up > 0) up_remove(p, t);
  t->draining = true;
  for (int k = 0; k < p->per_target; k++) {
    pool_member *m = &t->members[k];
    uv_timer_stop(&m->backoff); /* no replacement: the timer is the drain deadline now */
    if (!m->client) {
      member_timer_close(m); /* between attempts: nothing to finish */
      continue;
    }
    bool graceful = drain_ms > 0 && can_finish(p, m);
    rs_client_close(m->client, graceful);
    if (graceful && drain_ms != RS_POOL_DRAIN_FOREVER)
      uv_timer_start(&m->backoff, on_drain_deadline, drain_ms, 0);
  }
  return 0;
}

/* ---- requests ---- */

/* With resumption, a connection whose transport was lost keeps its session while its client
 * reconnects, and its engine keeps the frames of a new request until the session resumes (and
 * sends them then). It is a candidate only when no connection is established (so a blip on every
 * link delays requests instead of failing them), and never with lease (permits unknown). */
static bool resuming(const rs_pool *p, const pool_member *m) {
  if (!p->client.settings.resume || p->client.settings.lease || !m->client || !m->was_up ||
      m->target->draining)
    return false;
  rs_conn_state st = rs_conn_get_state(rs_client_conn(m->client));
  return st == RS_CONN_STATE_DISCONNECTED || st == RS_CONN_STATE_RESUMING;
}

/* The least loaded resuming connection (the scan starts at a random one; free indices and
 * draining targets skipped), or NULL. */
static pool_member *pick_resuming(rs_pool *p) {
  pool_member *best = NULL;
  size_t n = p->n_targets * (size_t)p->per_target;
  if (n == 0) return NULL;
  size_t start = (size_t)(next_random(p) % n);
  for (size_t i = 0; i < n; i++) {
    size_t r = (start + i) % n;
    pool_target *t = p->targets[r % p->n_targets];
    if (!t) continue;
    pool_member *m = &t->members[r / p->n_targets];
    if (!resuming(p, m)) continue;
    if (!best || m->in_flight + m->streams < best->in_flight + best->streams) best = m;
  }
  return best;
}

/* The connection for a new request, or an error. */
static rs_ssize choose(rs_pool *p, const rs_payload *pl, pool_member **out) {
  if (!p || !pl) return RS_ERR_INVALID_ARGUMENT;
  if (p->closing) return RS_ERR_CLOSED;
  uint64_t now = uv_now(p->loop);
  *out = p->opt.strategy == RS_POOL_ROUND_ROBIN ? pick_round_robin(p, now) : pick_p2c(p, now);
  if (!*out) *out = pick_resuming(p);
  return *out ? 0 : RS_ERR_UNAVAILABLE;
}

static pool_stream *stream_new(pool_member *m, void *user, uint8_t kind) {
  pool_stream *s = malloc(sizeof *s);
  if (s) *s = (pool_stream){user, m, uv_hrtime(), kind, false};
  return s;
}

/* Opens a stream of `kind` on the chosen connection: `type` is the frame type. */
static rs_ssize open_stream(rs_pool *p, uint8_t type, const rs_payload *pl, uint64_t initial_n,
                            bool complete, void *stream_user, rs_conn **conn) {
  pool_member *m;
  rs_ssize r = choose(p, pl, &m);
  if (r != 0) return r;
  uint8_t kind = type == RS_FRAME_REQUEST_RESPONSE ? KIND_RESPONSE : KIND_STREAM;
  pool_stream *s = stream_new(m, stream_user, kind);
  if (!s) return RS_ERR_NOMEM;
  rs_conn *c = rs_client_conn(m->client);
  if (type == RS_FRAME_REQUEST_RESPONSE)
    r = rs_conn_request_response(c, pl, s);
  else if (type == RS_FRAME_REQUEST_STREAM)
    r = rs_conn_request_stream(c, pl, initial_n, s);
  else
    r = rs_conn_request_channel(c, pl, initial_n, complete, s);
  if (r < 0) {
    free(s);
    return r;
  }
  if (kind == KIND_RESPONSE)
    m->in_flight++;
  else
    m->streams++;
  m->target->requests++;
  if (conn) *conn = c;
  return r;
}

rs_ssize rs_pool_request_response(rs_pool *p, const rs_payload *pl, void *stream_user,
                                  rs_conn **conn) {
  return open_stream(p, RS_FRAME_REQUEST_RESPONSE, pl, 0, false, stream_user, conn);
}

rs_ssize rs_pool_request_stream(rs_pool *p, const rs_payload *pl, uint64_t initial_n,
                                void *stream_user, rs_conn **conn) {
  return open_stream(p, RS_FRAME_REQUEST_STREAM, pl, initial_n, false, stream_user, conn);
}

rs_ssize rs_pool_request_channel(rs_pool *p, const rs_payload *pl, uint64_t initial_n,
                                 bool complete, void *stream_user, rs_conn **conn) {
  return open_stream(p, RS_FRAME_REQUEST_CHANNEL, pl, initial_n, complete, stream_user, conn);
}

rs_ssize rs_pool_request_fnf(rs_pool *p, const rs_payload *pl, rs_conn **conn) {
  pool_member *m;
  rs_ssize r = choose(p, pl, &m);
  if (r != 0) return r;
  rs_conn *c = rs_client_conn(m->client);
  r = rs_conn_request_fnf(c, pl);
  if (r < 0) return r;
  m->target->requests++;
  if (conn) *conn = c;
  return r;
}

/* ---- queries ---- */

/* The member `conn` is the connection of, or NULL when it is not a pool's. The runtime's glue is
 * every runtime connection's engine user; a pool's clients have the pool's callbacks. */
rs_ssize rs_pool_metadata_push(rs_pool *p, rs_bytes metadata, rs_conn **full) {
  if (full) *full = NULL;
  if (!p) return RS_ERR_INVALID_ARGUMENT;
  if (p->closing) return RS_ERR_CLOSED;
  rs_ssize sent = 0;
  for (size_t t = 0; t < p->n_targets; t++) {
    pool_target *tg = p->targets[t];
    if (!tg || tg->draining) continue;
    /* A connection under its output watermark first (pass 0), else any established one. */
    bool done = false;
    for (int pass = 0; pass < 2 && !done; pass++)
      for (int k = 0; k < p->per_target && !done; k++) {
        pool_member *m = &tg->members[k];
        if (!m->up || !m->client || !rs_client_connected(m->client)) continue;
        rs_conn *c = rs_client_conn(m->client);
        if ((pass == 0) != rs_runtime_writable(c)) continue;
        int rc = rs_conn_metadata_push(c, metadata);
        if (rc == RS_ERR_FRAME_TOO_LARGE || rc == RS_ERR_NOMEM) return rc;
        if (rc != 0) continue;
        sent++;
        done = true;
        if (full && !*full && !rs_runtime_writable(c)) *full = c;
      }
  }
  return sent;
}

static pool_member *member_of(rs_conn *conn) {
  rt_conn *rc = conn ? rs_conn_user(conn) : NULL;
  if (!rc || !rc->client || !rc->app || rc->app->on_close != pl_close) return NULL;
  return rc->app_user;
}

void *rs_pool_stream_user(rs_conn *conn, uint32_t stream_id) {
  if (!(stream_id & 1u) || !member_of(conn)) return NULL;
  pool_stream *s = rs_conn_stream_user(conn, stream_id);
  return s ? s->user : NULL;
}

rs_pool *rs_pool_of(rs_conn *conn) {
  pool_member *m = member_of(conn);
  return m ? m->pool : NULL;
}

void *rs_pool_user(const rs_pool *p) {
  return p ? p->opt.user : NULL;
}

size_t rs_pool_available(rs_pool *p) {
  if (!p || p->closing) return 0;
  uint64_t now = uv_now(p->loop);
  size_t n = 0;
  for (size_t i = 0; i < p->n_targets; i++)
    for (int k = 0; p->targets[i] && k < p->per_target; k++)
      n += availability(&p->targets[i]->members[k], now) > 0;
  return n;
}

size_t rs_pool_targets(const rs_pool *p) {
  return p ? p->n_targets : 0;
}

int rs_pool_target_stats_get(rs_pool *p, size_t index, rs_pool_target_stats *out) {
  if (!p || !out || index >= p->n_targets || !p->targets[index]) return RS_ERR_INVALID_ARGUMENT;
  pool_target *t = p->targets[index];
  uint64_t now = uv_now(p->loop);
  memset(out, 0, sizeof *out);
  out->uri = t->uri;
  out->draining = t->draining;
  out->requests = t->requests;
  out->failures = t->failures;
  int sampled = 0;
  double avail = 0;
  for (int k = 0; k < p->per_target; k++) {
    pool_member *m = &t->members[k];
    out->in_flight += m->in_flight;
    out->streams += m->streams;
    if (m->has_sample) out->latency_ms += m->ewma_ms, sampled++;
    if (!m->up || !m->client || !rs_client_connected(m->client)) continue;
    out->connections++;
    double a = rs_conn_availability(rs_client_conn(m->client), now);
    out->candidates += a > 0 && !t->draining;
    avail += a;
  }
  if (sampled) out->latency_ms /= sampled;
  out->availability = out->connections ? avail / out->connections : 0;
  return 0;
}
