/*
 * Resumption: implied positions, the bounded buffer of retained frames, the RESUME / RESUME_OK
 * handshake, detaching and attaching transports, and the server's session store.
 *
 * Positions count the bytes of the resumable frames (REQUEST_*, REQUEST_N, CANCEL, ERROR, PAYLOAD;
 * stream-0 ERROR included, by frame type), after fragmentation, without the length prefix. Every
 * resumable frame we send is retained until the peer shows (KEEPALIVE position, RESUME,
 * RESUME_OK) that it has it; when the buffer is full the oldest frames are dropped, which moves
 * our first available position forward and may make a later resumption impossible (it is then
 * rejected rather than silently losing frames).
 */
#include <string.h>

#include "core/conn_internal.h"

struct rs_resume_store {
  rs_mem mem;
  rs_conn **buckets;
  size_t nbuckets; /* power of two */
  size_t count;
  /* Detached sessions, oldest first, and their budget: past it the oldest end at once. */
  rs_conn *det_head, *det_tail;
  size_t det_count, det_bytes;
  size_t max_detached, max_detached_bytes;
};

#define DEFAULT_MAX_DETACHED       10000u
#define DEFAULT_MAX_DETACHED_BYTES (64u << 20)

#define REC_HDR 4u

static uint32_t rec_len(const rs_retain *r, size_t at) {
  uint32_t l;
  memcpy(&l, r->buf + at, sizeof(l));
  return l;
}

static void drop_first(rs_retain *r) {
  uint32_t l = rec_len(r, r->off);
  r->off += REC_HDR + l;
  r->len -= REC_HDR + l;
  r->first_pos += l;
  if (r->len == 0) r->off = 0;
}

int rs__retain_frame(rs_conn *c, const uint8_t *frame, size_t len) {
  rs_retain *r = &c->retain;
  c->sent_pos += len;
  size_t rec = REC_HDR + len;
  if (rec > r->limit) {
    /* Too big to keep at all: nothing before it can be retransmitted in order either. */
    r->off = r->len = 0;
    r->first_pos = c->sent_pos;
    return 0;
  }
  while (r->len + rec > r->limit) drop_first(r);
  /* The buffer may grow to 1.5 x the limit, so that once full the live records move down only
   * after half a limit of dropped ones: amortised, a byte is moved twice at most. (With room for
   * exactly the limit, every append moved the whole megabyte: a resumable stream ran 5.7x
   * slower than without resumption.) */
  if (r->off + r->len + rec > r->cap) {
    if (r->off) {
      memmove(r->buf, r->buf + r->off, r->len);
      r->off = 0;
    }
    if (r->len + rec > r->cap) {
      size_t ncap = r->cap ? r->cap : 4096;
      while (ncap < r->len + rec) ncap *= 2;
      if (ncap > r->limit + r->limit / 2) ncap = r->limit + r->limit / 2;
      uint8_t *nb = c->mem.realloc(r->buf, ncap, c->mem.user);
      if (!nb) return rs__fatal(c, RS_ERR_NOMEM);
      r->buf = nb;
      r->cap = ncap;
    }
  }
  uint32_t l = (uint32_t)len;
  memcpy(r->buf + r->off + r->len, &l, sizeof(l));
  memcpy(r->buf + r->off + r->len + REC_HDR, frame, len);
  r->len += rec;
  return 0;
}

void rs__retain_trim(rs_conn *c, uint64_t pos) {
  rs_retain *r = &c->retain;
  while (r->len && r->first_pos + rec_len(r, r->off) <= pos) drop_first(r);
}

void rs__retain_free(rs_conn *c) {
  c->mem.free(c->retain.buf, c->mem.user);
  memset(&c->retain, 0, sizeof(c->retain));
}

int rs__retransmit_from(rs_conn *c, uint64_t pos) {
  rs_retain *r = &c->retain;
  if (pos < r->first_pos || pos > c->sent_pos) return RS_ERR_INVALID_STATE;
  uint64_t p = r->first_pos;
  size_t at = r->off, end = r->off + r->len;
  while (at < end && p < pos) {
    uint32_t l = rec_len(r, at);
    p += l;
    at += REC_HDR + l;
  }
  if (p != pos) return RS_ERR_INVALID_STATE; /* not on a frame boundary */
  while (at < end) {
    uint32_t l = rec_len(r, at);
    int rc = rs__send_raw(c, r->buf + at + REC_HDR, l);
    if (rc) return rc;
    at += REC_HDR + l;
  }
  return 0;
}

uint64_t rs_conn_sent_position(const rs_conn *c) {
  return c ? c->sent_pos : 0;
}

uint64_t rs_conn_received_position(const rs_conn *c) {
  return c ? c->recv_pos : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Session store                                                                               */

static uint64_t hash_token(const uint8_t *p, size_t n) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

rs_resume_store *rs_resume_store_new(const rs_mem *mem) {
  if (!mem) mem = rs_mem_default();
  rs_resume_store *s = mem->calloc(1, sizeof(*s), mem->user);
  if (!s) return NULL;
  s->mem = *mem;
  s->nbuckets = 64;
  s->max_detached = DEFAULT_MAX_DETACHED;
  s->max_detached_bytes = DEFAULT_MAX_DETACHED_BYTES;
  s->buckets = mem->calloc(s->nbuckets, sizeof(*s->buckets), mem->user);
  if (!s->buckets) {
    mem->free(s, mem->user);
    return NULL;
  }
  return s;
}

void rs_resume_store_free(rs_resume_store *s) {
  if (!s) return;
  for (size_t i = 0; i < s->nbuckets; i++) {
    for (rs_conn *c = s->buckets[i]; c;) {
      rs_conn *next = c->store_next;
      c->in_store = false;
      c->in_detached = false;
      c->store_next = NULL;
      c = next;
    }
  }
  s->mem.free(s->buckets, s->mem.user);
  s->mem.free(s, s->mem.user);
}

size_t rs_resume_store_count(const rs_resume_store *s) {
  return s ? s->count : 0;
}

int rs_resume_store_set_limits(rs_resume_store *s, size_t max_detached, size_t max_bytes) {
  if (!s) return RS_ERR_INVALID_ARGUMENT;
  s->max_detached = max_detached;
  s->max_detached_bytes = max_bytes;
  return 0;
}

size_t rs_resume_store_detached(const rs_resume_store *s, size_t *bytes) {
  if (bytes) *bytes = s ? s->det_bytes : 0;
  return s ? s->det_count : 0;
}

static void detached_unlink(rs_conn *c) {
  if (!c->in_detached) return;
  rs_resume_store *s = c->store;
  if (c->det_prev)
    c->det_prev->det_next = c->det_next;
  else
    s->det_head = c->det_next;
  if (c->det_next)
    c->det_next->det_prev = c->det_prev;
  else
    s->det_tail = c->det_prev;
  c->det_prev = c->det_next = NULL;
  c->in_detached = false;
  s->det_count--;
  s->det_bytes -= c->det_bytes;
}

/* A session that lost its transport joins the detached list; the oldest ones over the store's
 * budget end now (their deadline is moved to the present and the driver is told), so sessions
 * left behind by many short connections cannot hold the process's memory for their timeout. */
static void detached_link(rs_conn *c) {
  if (!c->in_store) return;
  rs_resume_store *s = c->store;
  c->det_bytes = c->retain.cap;
  c->det_prev = s->det_tail;
  c->det_next = NULL;
  if (s->det_tail)
    s->det_tail->det_next = c;
  else
    s->det_head = c;
  s->det_tail = c;
  c->in_detached = true;
  s->det_count++;
  s->det_bytes += c->det_bytes;
  while (s->det_head && ((s->max_detached && s->det_count > s->max_detached) ||
                         (s->max_detached_bytes && s->det_bytes > s->max_detached_bytes))) {
    rs_conn *old = s->det_head;
    detached_unlink(old);
    old->session_deadline = old->now;
    rs__wake(old);
  }
}

static rs_conn *store_find(const rs_resume_store *s, const uint8_t *tok, size_t len) {
  size_t b = hash_token(tok, len) & (s->nbuckets - 1);
  for (rs_conn *c = s->buckets[b]; c; c = c->store_next) {
    if (c->token_len == len && memcmp(c->token, tok, len) == 0) return c;
  }
  return NULL;
}

static void store_grow(rs_resume_store *s) {
  size_t n = s->nbuckets * 2;
  rs_conn **nb = s->mem.calloc(n, sizeof(*nb), s->mem.user);
  if (!nb) return; /* keep the longer chains; still correct */
  for (size_t i = 0; i < s->nbuckets; i++) {
    for (rs_conn *c = s->buckets[i]; c;) {
      rs_conn *next = c->store_next;
      size_t b = hash_token(c->token, c->token_len) & (n - 1);
      c->store_next = nb[b];
      nb[b] = c;
      c = next;
    }
  }
  s->mem.free(s->buckets, s->mem.user);
  s->buckets = nb;
  s->nbuckets = n;
}

int rs__store_register(rs_conn *c, rs_bytes token) {
  rs_resume_store *s = c->s.resume_store;
  if (store_find(s, token.ptr, token.len)) return RS_ERR_REJECTED;
  c->token = c->mem.malloc(token.len, c->mem.user);
  if (!c->token) return RS_ERR_NOMEM;
  memcpy(c->token, token.ptr, token.len);
  c->token_len = token.len;
  if (s->count >= s->nbuckets) store_grow(s);
  size_t b = hash_token(c->token, c->token_len) & (s->nbuckets - 1);
  c->store_next = s->buckets[b];
  s->buckets[b] = c;
  s->count++;
  c->store = s;
  c->in_store = true;
  return 0;
}

void rs__store_unregister(rs_conn *c) {
  if (!c->in_store) return;
  detached_unlink(c);
  rs_resume_store *s = c->store;
  size_t b = hash_token(c->token, c->token_len) & (s->nbuckets - 1);
  for (rs_conn **pp = &s->buckets[b]; *pp; pp = &(*pp)->store_next) {
    if (*pp == c) {
      *pp = c->store_next;
      s->count--;
      break;
    }
  }
  c->store_next = NULL;
  c->in_store = false;
}

/* ------------------------------------------------------------------------------------------ */
/* Detach, attach, handshake                                                                   */

/* Drops the transport's state, keeps the session. */
static void detach_transport(rs_conn *c) {
  rs__outq_clear(&c->out);
  rs_frame_reader_free(&c->reader);
  rs_frame_reader_init(&c->reader, &c->mem, c->s.max_frame_size);
  rs__lease_reset(c);
  c->probe_outstanding = false; /* its answer, if any, is lost with the transport */
  c->next_keepalive = RS_NO_DEADLINE;
  c->state = RS_CONN_STATE_DISCONNECTED;
  c->session_deadline = c->now + c->s.resume_session_timeout_ms;
  detached_link(c);
}

int rs_conn_detach(rs_conn *c, uint64_t now_ms) {
  if (!c) return RS_ERR_INVALID_ARGUMENT;
  if (c->in_dispatch || c->in_callback) return RS_ERR_INVALID_STATE;
  if (c->state == RS_CONN_STATE_CLOSED || c->state == RS_CONN_STATE_HANDED_OFF) {
    return RS_ERR_CLOSED;
  }
  if (c->state == RS_CONN_STATE_DISCONNECTED) return 0;
  if (now_ms > c->now) c->now = now_ms;
  bool resumable = c->resume_on && !c->fatal &&
                   (c->state == RS_CONN_STATE_ESTABLISHED || c->state == RS_CONN_STATE_RESUMING);
  if (!resumable) {
    static const char msg[] = "transport closed";
    rs__outq_clear(&c->out);
    rs__close(c, RS_ERR_CLOSED, 0, (const uint8_t *)msg, sizeof(msg) - 1, false, false);
    return 0;
  }
  detach_transport(c);
  return 0;
}

int rs_conn_attach(rs_conn *c, uint64_t now_ms) {
  if (!c) return RS_ERR_INVALID_ARGUMENT;
  if (c->fatal) return c->fatal;
  if (c->s.role != RS_CONN_CLIENT || !c->resume_on || c->state != RS_CONN_STATE_DISCONNECTED) {
    return RS_ERR_INVALID_STATE;
  }
  if (now_ms > c->now) c->now = now_ms;
  rs_frame f;
  rs_frame_init(&f, RS_FRAME_RESUME, 0);
  f.u.resume.token = c->s.resume_token;
  f.u.resume.last_received_server_position = c->recv_pos;
  f.u.resume.first_available_client_position = c->retain.first_pos;
  c->state = RS_CONN_STATE_RESUMING;
  c->session_deadline = RS_NO_DEADLINE;
  c->last_rx = c->now;
  return rs__send_direct(c, &f);
}

rs_conn *rs_conn_resumed_session(const rs_conn *c) {
  return c && c->state == RS_CONN_STATE_HANDED_OFF ? c->handoff : NULL;
}

static void reject_resume(rs_conn *c, const char *msg) {
  rs__close(c, RS_ERR_REJECTED, RS_ERROR_REJECTED_RESUME, (const uint8_t *)msg, strlen(msg), false,
            true);
}

void rs__on_resume(rs_conn *c, const rs_frame *f) {
  if (!c->s.resume || !c->s.resume_store) {
    reject_resume(c, "resumption is not supported");
    return;
  }
  /* Non-strict on purpose: rsocket-js 1.0.0-alpha.3 swaps major and minor in RESUME (it sends
   * 0.1 after a 1.0 SETUP), so 0.1 is taken as 1.0. Any other version is refused. */
  bool js_swapped = f->u.resume.major == RS_VERSION_MINOR && f->u.resume.minor == RS_VERSION_MAJOR;
  if (f->u.resume.major != RS_VERSION_MAJOR && !js_swapped) {
    reject_resume(c, "unsupported protocol version");
    return;
  }
  rs_conn *old = store_find(c->s.resume_store, f->u.resume.token.ptr, f->u.resume.token.len);
  if (!old || old == c || old->fatal || old->s.framing != c->s.framing) {
    reject_resume(c, "unknown resume token");
    return;
  }
  if (old->state != RS_CONN_STATE_DISCONNECTED && old->state != RS_CONN_STATE_ESTABLISHED) {
    reject_resume(c, "session cannot be resumed");
    return;
  }
  if (old->in_dispatch || old->in_callback) {
    reject_resume(c, "session busy");
    return;
  }
  uint64_t client_has = f->u.resume.last_received_server_position;
  uint64_t client_first = f->u.resume.first_available_client_position;
  /* rsocket-java's test: the client still holds everything after what we received, and we still
   * hold everything after what the client received (which cannot exceed what we sent). */
  if (!(client_first <= old->recv_pos && old->retain.first_pos <= client_has &&
        client_has <= old->sent_pos)) {
    reject_resume(c, "resume positions are not available");
    return;
  }
  if (old->now < c->now) old->now = c->now;
  if (old->state == RS_CONN_STATE_ESTABLISHED) {
    /* The old transport still looked alive: it is taken over. The runtime hears it first, so it
     * stops writing the output it holds before that output is dropped. */
    if (old->cb.on_detached) {
      old->in_callback++;
      old->cb.on_detached(old, old->user);
      old->in_callback--;
    }
    detach_transport(old);
  }
  old->state = RS_CONN_STATE_ESTABLISHED;
  old->session_deadline = RS_NO_DEADLINE;
  detached_unlink(old);
  rs__keepalive_start(old);
  rs_frame ok;
  rs_frame_init(&ok, RS_FRAME_RESUME_OK, 0);
  ok.u.resume_ok.last_received_client_position = old->recv_pos;
  int rc = rs__send_direct(old, &ok);
  if (rc == 0) rc = rs__retransmit_from(old, client_has);
  if (rc) {
    rs__fatal(old, rc == RS_ERR_NOMEM ? rc : RS_ERR_INTERNAL);
    reject_resume(c, "resume failed");
    return;
  }
  rs__retain_trim(old, client_has);
  c->state = RS_CONN_STATE_HANDED_OFF;
  c->handoff = old;
}

void rs__on_resume_ok(rs_conn *c, const rs_frame *f) {
  uint64_t pos = f->u.resume_ok.last_received_client_position;
  if (pos < c->retain.first_pos || pos > c->sent_pos) {
    rs__conn_error(c, RS_ERR_REJECTED, RS_ERROR_CONNECTION_ERROR, "resume position not available");
    return;
  }
  c->state = RS_CONN_STATE_ESTABLISHED;
  rs__keepalive_start(c);
  int rc = rs__retransmit_from(c, pos);
  if (rc == RS_ERR_INVALID_STATE) {
    rs__conn_error(c, RS_ERR_REJECTED, RS_ERROR_CONNECTION_ERROR,
                   "resume position not on a frame boundary");
    return;
  }
  if (rc) return;
  rs__retain_trim(c, pos);
}
