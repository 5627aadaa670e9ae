/*
 * Test harness for the protocol engine: two rs_conn wired back to back in memory under virtual
 * time. Each side records every callback as an event; tests drive the API and inspect the events.
 * Output moves from one side to the other in chunks of a configurable size (1, 7, random...) so
 * every test also exercises frame splitting.
 */
#ifndef RS_TEST_CONN_HARNESS_H
#define RS_TEST_CONN_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "rsocket/conn.h"

enum {
  EV_SETUP = 1,
  EV_CLOSE,
  EV_REQUEST,
  EV_PAYLOAD,
  EV_REQUEST_N,
  EV_CANCEL,
  EV_ERROR,
  EV_STREAM_CLOSED,
  EV_METADATA_PUSH,
  EV_LEASE,
  EV_DETACHED,
};

typedef struct h_event {
  int kind;
  uint32_t sid;
  uint8_t type;   /* request type */
  unsigned flags; /* payload flags; request: complete */
  uint64_t n;     /* initial_n, request_n, lease requests */
  int err;
  uint32_t code;
  bool has_md;
  uint8_t *md, *data; /* malloc'd copies (NUL-terminated) */
  size_t md_len, data_len;
  void *stream_user;
} h_event;

struct h_pair;

typedef struct h_peer {
  rs_conn *conn;
  struct h_pair *pair;
  const char *name;
  h_event *ev;
  size_t nev, cap;
  /* Behaviour. */
  int setup_result;        /* on_setup return value */
  const char *reject_msg;  /* given to rs_conn_reject_setup when rejecting */
  int request_result;      /* on_request return value */
  bool echo;               /* answer request-response at once with the same payload */
  uint32_t lease_on_setup; /* server: grant this many requests (ttl lease_ttl) in on_setup */
  uint32_t lease_ttl;
  /* Optional hook run at the end of every callback (tests that act inside callbacks). */
  void (*hook)(struct h_peer *p, const h_event *e);
  void *hook_data;
  unsigned wakes;                                                               /* on_wake calls */
  int (*producer)(struct h_peer *p, rs_conn *c, uint32_t sid, uint64_t credit); /* on_produce */
  void *producer_data;
} h_peer;

typedef struct h_pair {
  h_peer cli, srv;
  uint64_t now;
  size_t chunk; /* bytes per delivery; 0 = everything at once; SIZE_MAX/2+ = random */
  uint64_t rng;
  bool cut;      /* wire cut: output is dropped instead of delivered */
  bool hold_cli; /* do not deliver the client's output (it stays queued) */
  bool hold_srv;
  tu_alloc alloc;
  bool use_alloc;
  bool lenient; /* callbacks tolerate API errors (failing-allocator runs) */
  rs_conn_settings cs, ss;
  rs_resume_store *store;
} h_pair;

#define H_RANDOM_CHUNK ((size_t)-1)

static inline h_peer *h_self(rs_conn *c) {
  return (h_peer *)rs_conn_user(c);
}

static inline uint8_t *h_dup(rs_bytes b) {
  uint8_t *p = malloc(b.len + 1);
  assert_non_null(p);
  if (b.len) memcpy(p, b.ptr, b.len);
  p[b.len] = 0;
  return p;
}

static inline h_event *h_push(h_peer *p, int kind, uint32_t sid) {
  if (p->nev == p->cap) {
    p->cap = p->cap ? p->cap * 2 : 64;
    p->ev = realloc(p->ev, p->cap * sizeof(*p->ev));
    assert_non_null(p->ev);
  }
  h_event *e = &p->ev[p->nev++];
  memset(e, 0, sizeof(*e));
  e->kind = kind;
  e->sid = sid;
  return e;
}

static inline void h_set_payload(h_event *e, const rs_payload *pl) {
  e->has_md = pl->has_metadata;
  e->md = h_dup(pl->has_metadata ? pl->metadata : (rs_bytes){NULL, 0});
  e->md_len = pl->has_metadata ? pl->metadata.len : 0;
  e->data = h_dup(pl->data);
  e->data_len = pl->data.len;
}

static inline void h_run_hook(h_peer *p) {
  if (p->hook) p->hook(p, &p->ev[p->nev - 1]);
}

static inline int h_on_setup(rs_conn *c, const rs_setup_info *s, void *user) {
  h_peer *p = user;
  h_event *e = h_push(p, EV_SETUP, 0);
  e->n = s->keepalive_interval_ms;
  e->code = s->max_lifetime_ms;
  e->flags = (s->lease ? 1u : 0u) | (s->resume ? 2u : 0u);
  h_set_payload(e, &s->payload);
  if (p->setup_result && p->reject_msg) rs_conn_reject_setup(c, rs_bytes_str(p->reject_msg));
  if (!p->setup_result && p->lease_on_setup) {
    int rc = rs_conn_send_lease(c, p->lease_ttl, p->lease_on_setup, NULL, p->pair->now);
    if (!p->pair->lenient) assert_int_equal(rc, 0);
  }
  h_run_hook(p);
  return p->setup_result;
}

static inline void h_on_close(rs_conn *c, const rs_close_info *info, void *user) {
  (void)c;
  h_peer *p = user;
  h_event *e = h_push(p, EV_CLOSE, 0);
  e->err = info->err;
  e->code = info->code;
  e->data = h_dup(info->message);
  e->data_len = info->message.len;
  e->flags = info->remote;
  h_run_hook(p);
}

static inline int h_on_request(rs_conn *c, const rs_request *r, void *user) {
  h_peer *p = user;
  h_event *e = h_push(p, EV_REQUEST, r->stream_id);
  e->type = r->type;
  e->n = r->initial_n;
  e->flags = r->complete;
  h_set_payload(e, &r->payload);
  if (p->request_result) return p->request_result;
  if (p->echo && r->type == RS_FRAME_REQUEST_RESPONSE) {
    int rc = rs_conn_send_payload(c, r->stream_id, &r->payload, true);
    if (!p->pair->lenient) assert_int_equal(rc, 0);
  }
  h_run_hook(p);
  return 0;
}

static inline void h_on_payload(rs_conn *c, uint32_t sid, void *su, const rs_payload *pl,
                                unsigned flags, void *user) {
  (void)c;
  h_peer *p = user;
  h_event *e = h_push(p, EV_PAYLOAD, sid);
  e->flags = flags;
  e->stream_user = su;
  h_set_payload(e, pl);
  h_run_hook(p);
}

static inline void h_on_request_n(rs_conn *c, uint32_t sid, void *su, uint64_t n, void *user) {
  (void)c;
  h_peer *p = user;
  h_event *e = h_push(p, EV_REQUEST_N, sid);
  e->n = n;
  e->stream_user = su;
  h_run_hook(p);
}

static inline void h_on_cancel(rs_conn *c, uint32_t sid, void *su, void *user) {
  (void)c;
  h_peer *p = user;
  h_event *e = h_push(p, EV_CANCEL, sid);
  e->stream_user = su;
  h_run_hook(p);
}

static inline void h_on_error(rs_conn *c, uint32_t sid, void *su, const rs_stream_error *err,
                              void *user) {
  (void)c;
  h_peer *p = user;
  h_event *e = h_push(p, EV_ERROR, sid);
  e->err = err->err;
  e->code = err->code;
  e->data = h_dup(err->message);
  e->data_len = err->message.len;
  e->flags = err->remote;
  e->stream_user = su;
  h_run_hook(p);
}

static inline void h_on_stream_closed(rs_conn *c, uint32_t sid, void *su, void *user) {
  (void)c;
  h_peer *p = user;
  h_event *e = h_push(p, EV_STREAM_CLOSED, sid);
  e->stream_user = su;
  h_run_hook(p);
}

static inline void h_on_metadata_push(rs_conn *c, rs_bytes md, void *user) {
  (void)c;
  h_peer *p = user;
  h_event *e = h_push(p, EV_METADATA_PUSH, 0);
  e->md = h_dup(md);
  e->md_len = md.len;
  h_run_hook(p);
}

static inline void h_on_lease(rs_conn *c, uint32_t ttl, uint32_t n, const rs_bytes *md,
                              void *user) {
  (void)c;
  h_peer *p = user;
  h_event *e = h_push(p, EV_LEASE, 0);
  e->n = n;
  e->code = ttl;
  e->has_md = md != NULL;
  if (md) {
    e->md = h_dup(*md);
    e->md_len = md->len;
  }
  h_run_hook(p);
}

static inline void h_on_detached(rs_conn *c, void *user) {
  (void)c;
  h_push(user, EV_DETACHED, 0);
}

/* on_wake only counts: the harness moves output after every step anyway. */
static inline void h_on_wake(rs_conn *c, void *user) {
  (void)c;
  ((h_peer *)user)->wakes++;
}

/* on_produce runs the peer's producer, if the test gave one. */
static inline int h_on_produce(rs_conn *c, uint32_t sid, void *su, uint64_t credit, void *user) {
  (void)su;
  h_peer *p = user;
  return p->producer ? p->producer(p, c, sid, credit) : RS_PRODUCE_PAUSE;
}

static const rs_conn_callbacks h_callbacks = {
    sizeof(rs_conn_callbacks),
    h_on_setup,
    h_on_close,
    h_on_request,
    h_on_payload,
    h_on_request_n,
    h_on_cancel,
    h_on_error,
    h_on_stream_closed,
    h_on_metadata_push,
    h_on_lease,
    h_on_detached,
    h_on_wake,
    h_on_produce,
};

static inline void h_clear_events(h_peer *p) {
  for (size_t i = 0; i < p->nev; i++) {
    free(p->ev[i].md);
    free(p->ev[i].data);
  }
  p->nev = 0;
}

/* Prepares settings with short timers; tests change them before h_start. */
static inline void h_init(h_pair *h) {
  memset(h, 0, sizeof(*h));
  h->cli.pair = h->srv.pair = h;
  h->cli.name = "client";
  h->srv.name = "server";
  h->rng = 0x1234567;
  h->now = 1000;
  rs_conn_settings_default(&h->cs, RS_CONN_CLIENT);
  rs_conn_settings_default(&h->ss, RS_CONN_SERVER);
  h->cs.keepalive_interval_ms = 1000;
  h->cs.max_lifetime_ms = 5000;
  h->srv.echo = true;
}

static inline const rs_mem *h_mem(h_pair *h) {
  return h->use_alloc ? &h->alloc.mem : NULL;
}

static inline int h_new_server(h_pair *h) {
  return rs_conn_new(&h->srv.conn, &h->ss, &h_callbacks, &h->srv, h_mem(h), h->now);
}

/* Creates both engines (asserting success). */
static inline void h_start(h_pair *h) {
  assert_int_equal(rs_conn_new(&h->cli.conn, &h->cs, &h_callbacks, &h->cli, h_mem(h), h->now), 0);
  assert_int_equal(h_new_server(h), 0);
}

/* Server side of a resumption: when the connection that got RESUME handed off to the session it
 * resumed, the session takes over the transport (and the fresh connection is freed). */
static inline bool h_follow_handoff(h_peer *to) {
  if (rs_conn_get_state(to->conn) != RS_CONN_STATE_HANDED_OFF) return false;
  rs_conn *session = rs_conn_resumed_session(to->conn);
  assert_non_null(session);
  assert_true(rs_conn_want_close(to->conn));
  rs_conn_free(to->conn);
  to->conn = session;
  return true;
}

static inline size_t h_next_chunk(h_pair *h, size_t left) {
  size_t n = h->chunk;
  if (n == H_RANDOM_CHUNK) n = 1 + (size_t)(tu_rand(&h->rng) % 97);
  if (n == 0 || n > left) n = left;
  return n;
}

/* Moves the output of `from` into `to`. Returns bytes moved, or a negative error from `to`. */
static inline long h_move(h_pair *h, h_peer *from, h_peer *to) {
  rs_iov iov[16];
  long moved = 0;
  for (;;) {
    /* A driver lets ready producers fill the output before taking it. */
    if (rs_conn_want_produce(from->conn)) assert_int_equal(rs_conn_produce(from->conn, h->now), 0);
    int n = rs_conn_pending_output(from->conn, iov, 16);
    if (n == 0) break;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
      if (!h->cut && to->conn) {
        if (h->ss.framing == RS_FRAMING_MESSAGE) {
          int rc = rs_conn_recv_frame(to->conn, iov[i].base, iov[i].len, h->now);
          if (rc < 0) return rc;
          h_follow_handoff(to);
        } else {
          size_t off = 0;
          while (off < iov[i].len) {
            size_t k = h_next_chunk(h, iov[i].len - off);
            rs_ssize r = rs_conn_recv(to->conn, iov[i].base + off, k, h->now);
            if (r < 0) return (long)r;
            off += (size_t)r;
            /* Handed off: the rest goes to the resumed session. */
            if (!h_follow_handoff(to) && (size_t)r < k) break;
          }
        }
      }
      total += iov[i].len;
    }
    assert_int_equal(rs_conn_consumed(from->conn, total), 0);
    moved += (long)total;
  }
  return moved;
}

/* Delivers output both ways until both sides are quiet. Returns 0 or the first error. */
static inline int h_pump(h_pair *h) {
  for (int rounds = 0; rounds < 100000; rounds++) {
    long a = h->hold_cli ? 0 : h_move(h, &h->cli, &h->srv);
    if (a < 0) return (int)a;
    long b = h->hold_srv ? 0 : h_move(h, &h->srv, &h->cli);
    if (b < 0) return (int)b;
    if (a == 0 && b == 0) return 0;
  }
  fail_msg("h_pump: no quiescence");
  return 0;
}

static inline void h_pump_ok(h_pair *h) {
  assert_int_equal(h_pump(h), 0);
}

/* Advances virtual time by `ms` in steps, firing each side's timers, pumping in between. */
static inline void h_advance(h_pair *h, uint64_t ms) {
  uint64_t end = h->now + ms;
  for (;;) {
    uint64_t dc = h->cli.conn ? rs_conn_next_deadline(h->cli.conn) : UINT64_MAX;
    uint64_t ds = h->srv.conn ? rs_conn_next_deadline(h->srv.conn) : UINT64_MAX;
    uint64_t d = dc < ds ? dc : ds;
    if (d > end) break;
    if (d > h->now) h->now = d;
    if (h->cli.conn && dc <= h->now) rs_conn_handle_expiry(h->cli.conn, h->now);
    if (h->srv.conn && ds <= h->now) rs_conn_handle_expiry(h->srv.conn, h->now);
    h_pump(h);
  }
  h->now = end;
  if (h->cli.conn) rs_conn_handle_expiry(h->cli.conn, h->now);
  if (h->srv.conn) rs_conn_handle_expiry(h->srv.conn, h->now);
  h_pump(h);
}

static inline void h_free(h_pair *h) {
  rs_conn_free(h->cli.conn);
  rs_conn_free(h->srv.conn);
  h->cli.conn = h->srv.conn = NULL;
  h_clear_events(&h->cli);
  h_clear_events(&h->srv);
  free(h->cli.ev);
  free(h->srv.ev);
  h->cli.ev = h->srv.ev = NULL;
  h->cli.cap = h->srv.cap = 0;
  rs_resume_store_free(h->store);
  h->store = NULL;
}

/* Counts events of `kind` (on stream `sid`, or any stream when sid is UINT32_MAX). */
static inline size_t h_count(const h_peer *p, int kind, uint32_t sid) {
  size_t n = 0;
  for (size_t i = 0; i < p->nev; i++) {
    if (p->ev[i].kind == kind && (sid == UINT32_MAX || p->ev[i].sid == sid)) n++;
  }
  return n;
}

/* The i-th (0-based) event of `kind` on `sid` (UINT32_MAX: any), failing the test if absent. */
static inline const h_event *h_find(const h_peer *p, int kind, uint32_t sid, size_t i) {
  for (size_t k = 0; k < p->nev; k++) {
    if (p->ev[k].kind == kind && (sid == UINT32_MAX || p->ev[k].sid == sid)) {
      if (i-- == 0) return &p->ev[k];
    }
  }
  fail_msg("%s: no event %d #%zu on stream %u (have %zu events)", p->name, kind, i, sid, p->nev);
  return NULL;
}

/* The last event of `p` (failing when none). */
static inline const h_event *h_last(const h_peer *p) {
  if (!p->nev) fail_msg("%s: no events", p->name);
  return &p->ev[p->nev - 1];
}

static inline rs_payload h_pl(const char *md, const char *data) {
  rs_payload p;
  p.has_metadata = md != NULL;
  p.metadata = md ? rs_bytes_str(md) : (rs_bytes){NULL, 0};
  p.data = rs_bytes_str(data ? data : "");
  return p;
}

/* Copies the pending output of `p` into one buffer (frames with their length prefixes) and
 * consumes it. Free with free(). */
static inline uint8_t *h_take_output(h_peer *p, size_t *len) {
  rs_iov iov[64];
  size_t total = 0, cap = 0;
  uint8_t *out = NULL;
  for (;;) {
    int n = rs_conn_pending_output(p->conn, iov, 64);
    if (!n) break;
    size_t got = 0;
    for (int i = 0; i < n; i++) {
      if (total + iov[i].len > cap) {
        cap = (total + iov[i].len) * 2;
        out = realloc(out, cap);
        assert_non_null(out);
      }
      memcpy(out + total, iov[i].base, iov[i].len);
      total += iov[i].len;
      got += iov[i].len;
    }
    assert_int_equal(rs_conn_consumed(p->conn, got), 0);
  }
  *len = total;
  return out;
}

/* Feeds hex frame bytes (with length prefixes) into `p`. */
static inline rs_ssize h_feed_hex(h_peer *p, const char *hex, uint64_t now) {
  size_t len;
  uint8_t *b = tu_hex(hex, &len);
  rs_ssize r = rs_conn_recv(p->conn, b, len, now);
  free(b);
  return r;
}

/* Splits length-prefixed output into frames: returns the count and fills `frames`/`lens`
 * (pointers into `buf`). */
static inline size_t h_split(const uint8_t *buf, size_t len, const uint8_t **frames, size_t *lens,
                             size_t max) {
  size_t n = 0, off = 0;
  while (off + 3 <= len && n < max) {
    size_t fl = (size_t)buf[off] << 16 | (size_t)buf[off + 1] << 8 | buf[off + 2];
    assert_true(off + 3 + fl <= len);
    frames[n] = buf + off + 3;
    lens[n] = fl;
    n++;
    off += 3 + fl;
  }
  assert_int_equal(off, len);
  return n;
}

static inline uint8_t h_frame_type(const uint8_t *f) {
  return (uint8_t)(f[4] >> 2);
}

static inline uint16_t h_frame_flags(const uint8_t *f) {
  return (uint16_t)((f[4] & 3) << 8 | f[5]);
}

static inline uint32_t h_frame_sid(const uint8_t *f) {
  return (uint32_t)f[0] << 24 | (uint32_t)f[1] << 16 | (uint32_t)f[2] << 8 | f[3];
}

#endif
