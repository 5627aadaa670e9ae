/* libuv plumbing: read → session, session output → one gathered write per loop iteration. */
#include "runtime/io.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BUF_SIZE (64 * 1024)
/* Plaintext encrypted per flush before writing; bounds the ciphertext buffer of a busy conn. */
#define TLS_FLUSH_MAX (256 * 1024)
/* Synchronous write rounds per flush before handing the rest to an async write (fairness). */
#define FLUSH_ROUNDS 8
/* TLS: ciphertext is written from the loop's buffer in pieces of this size. */
#define WRITE_BUF_SIZE (64 * 1024)

struct rs_io_loop {
  uv_loop_t *uv;
  uv_prepare_t prepare;
  uv_idle_t idle; /* active while `again` is not empty: the next poll does not block */
  /* Every connection's deadline on one timer: a binary min-heap of the connections that have one,
   * by `due`, and a uv timer at the earliest (a uv_timer_t per connection cost 152 bytes each,
   * and an idle WebSocket has no deadline at all). */
  uv_timer_t timer;
  uint64_t timer_due; /* what `timer` is started for (RS_IO_NO_DEADLINE: stopped) */
  rs_io_conn **heap;
  uint32_t heap_len, heap_cap;
  int closing_handles;
  rs_io_conn *dirty; /* doubly linked list of conns to flush */
  rs_io_conn *again; /* conns whose flush used its budget: flushed again next iteration */
  uint8_t rbuf[READ_BUF_SIZE];
  uint8_t pbuf[READ_BUF_SIZE]; /* decrypted bytes */
  /* TLS ciphertext on its way to the socket: a connection needs a buffer of its own only for what
   * the socket did not take at once (io_write). Flushes run one at a time, from on_prepare. */
  uint8_t wbuf[WRITE_BUF_SIZE];
  bool rbuf_busy;
  int nconns;
  rs_io_loop *shared_next; /* rs_io_loop_get list */
  int shared_refs;
};

/* The peer's address as the kernel gave it, until rs_io_conn_peer is first asked for it: then
 * its text, in place when it fits (any IPv4 address, short IPv6 ones), else allocated. */
typedef union io_addr {
  struct sockaddr sa;
  struct sockaddr_in in;
  struct sockaddr_in6 in6;
  char text[sizeof(struct sockaddr_in6)];
  char *heap_text;
} io_addr;

enum { PEER_ADDR, PEER_TEXT, PEER_HEAP };

/* An asynchronous write: what the socket did not take at once. It exists only while in flight. */
typedef struct io_write {
  uv_write_t req; /* first: on_write_done gets it */
  size_t len;     /* bytes of this write */
  bool consume;   /* from the session's own (stable) buffers: consumed(len) once written */
  uint8_t data[]; /* otherwise a copy of the bytes */
} io_write;

/*
 * One connection. Idle connections are the common case on a gateway (tens of thousands of
 * browsers that say nothing for minutes), so what only an active or closing connection needs is
 * allocated then: the write request while an async write is in flight, the close reason once
 * closing, the peer's text once asked for.
 */
struct rs_io_conn {
  rs_io_loop *loop;
  uv_tcp_t *tcp;
  rs_tls *tls;
  const rs_io_session_ops *ops;
  void *session;
  rs_io_conn *dnext, *dprev; /* on the loop's `dirty` or `again` list */
  io_write *w;               /* the async write in flight (NULL: none) */
  uint64_t close_deadline;   /* done: abort if the last output is not written by then (0: none) */
  uint64_t due;              /* the deadline this connection has on the loop's heap */
  char *close_reason;        /* the first reason given (malloc'd), or NULL */
  io_addr addr;              /* sa_family AF_UNSPEC: unknown */
  uint32_t heap_pos;         /* its index on the loop's heap + 1 (0: no deadline) */
  int16_t close_err;         /* an rs_error (they are all above -1000) */
  bool dirty : 1;
  bool again : 1;
  bool reading : 1, paused : 1;
  bool close_after_flush : 1;
  bool closing : 1;
  bool lingering : 1;    /* write side shut down; draining input before closing */
  bool tcp_inline : 1;   /* `tcp` is in the same allocation (rs_io_conn_accept) */
  bool has_extra : 1;    /* and bytes of the caller's after it (rs_io_conn_extra) */
  uint8_t peer_form : 2; /* what `addr` holds: PEER_ADDR, PEER_TEXT or PEER_HEAP */
};

static void conn_flush(rs_io_conn *c);
static void on_idle(uv_idle_t *h);
static void conn_do_close(rs_io_conn *c, int err, const char *reason);

/* Keeps the first reason a connection was given for closing (later ones add nothing). */
static void set_reason(rs_io_conn *c, const char *reason) {
  if (c->close_reason || !reason || !*reason) return;
  c->close_reason = strdup(reason); /* NULL when out of memory: the reason is lost, not the close */
}

static const char *reason_of(const rs_io_conn *c) {
  return c->close_reason ? c->close_reason : "";
}

/* How long a lingering close drains input before closing anyway. */
#define LINGER_MS 2000

/* ---- loop ---- */

static void on_prepare(uv_prepare_t *p) {
  rs_io_loop *l = p->data;
  /* Flushing may wake other conns (or this one again); drain until the list is empty. A conn
   * that used its write budget goes on `again` instead, so this loop ends and other sockets get
   * their turn; the idle handle keeps the coming poll from blocking. */
  while (l->dirty) {
    rs_io_conn *c = l->dirty;
    l->dirty = c->dnext;
    if (l->dirty) l->dirty->dprev = NULL;
    c->dnext = c->dprev = NULL;
    c->dirty = false;
    if (!c->closing) conn_flush(c);
  }
  if (l->again) uv_idle_start(&l->idle, on_idle);
}

/* Runs after the poll that followed a budget-limited flush: those conns continue. */
static void on_idle(uv_idle_t *h) {
  rs_io_loop *l = h->data;
  uv_idle_stop(&l->idle);
  while (l->again) {
    rs_io_conn *c = l->again;
    l->again = c->dnext;
    if (l->again) l->again->dprev = NULL;
    c->dnext = c->dprev = NULL;
    c->again = false;
    rs_io_conn_wake(c);
  }
}

rs_io_loop *rs_io_loop_new(uv_loop_t *uv) {
  rs_io_loop *l = calloc(1, sizeof *l);
  if (!l) return NULL;
  l->uv = uv;
  uv_prepare_init(uv, &l->prepare);
  l->prepare.data = l;
  uv_prepare_start(&l->prepare, on_prepare);
  uv_unref((uv_handle_t *)&l->prepare); /* the prepare alone does not keep the loop alive */
  uv_idle_init(uv, &l->idle);
  l->idle.data = l;
  uv_unref((uv_handle_t *)&l->idle);
  /* Referenced: while some connection has a deadline, the loop waits for it (as the timer each
   * connection had did). */
  uv_timer_init(uv, &l->timer);
  l->timer.data = l;
  l->timer_due = RS_IO_NO_DEADLINE;
  return l;
}

static void free_after_close(uv_handle_t *h) {
  rs_io_loop *l = h->data;
  if (--l->closing_handles > 0) return;
  free(l->heap);
  free(l);
}

void rs_io_loop_free(rs_io_loop *l) {
  if (!l) return;
  uv_prepare_stop(&l->prepare);
  uv_idle_stop(&l->idle);
  uv_timer_stop(&l->timer);
  l->closing_handles = 3;
  uv_close((uv_handle_t *)&l->prepare, free_after_close);
  uv_close((uv_handle_t *)&l->idle, free_after_close);
  uv_close((uv_handle_t *)&l->timer, free_after_close);
}

uv_loop_t *rs_io_loop_uv(rs_io_loop *l) {
  return l->uv;
}

/* Shared per-loop instances for clients: a short list, looked up under a lock. */
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static rs_io_loop *shared_loops;

rs_io_loop *rs_io_loop_get(uv_loop_t *loop) {
  pthread_mutex_lock(&shared_lock);
  rs_io_loop *l = shared_loops;
  while (l && l->uv != loop) l = l->shared_next;
  if (!l && (l = rs_io_loop_new(loop)) != NULL) {
    l->shared_next = shared_loops;
    shared_loops = l;
  }
  if (l) l->shared_refs++;
  pthread_mutex_unlock(&shared_lock);
  return l;
}

void rs_io_loop_put(rs_io_loop *l) {
  if (!l) return;
  pthread_mutex_lock(&shared_lock);
  if (--l->shared_refs == 0) {
    rs_io_loop **pp = &shared_loops;
    while (*pp != l) pp = &(*pp)->shared_next;
    *pp = l->shared_next;
    rs_io_loop_free(l);
  }
  pthread_mutex_unlock(&shared_lock);
}

/* ---- connection ---- */

static void dirty_unlink(rs_io_conn *c) {
  if (!c->dirty && !c->again) return;
  if (c->dprev)
    c->dprev->dnext = c->dnext;
  else if (c->dirty)
    c->loop->dirty = c->dnext;
  else
    c->loop->again = c->dnext;
  if (c->dnext) c->dnext->dprev = c->dprev;
  c->dnext = c->dprev = NULL;
  c->dirty = c->again = false;
}

/* The flush stopped at its budget with more to write: continue on the next loop iteration. */
static void conn_again(rs_io_conn *c) {
  if (c->dirty || c->again || c->closing || c->lingering) return;
  c->again = true;
  c->dprev = NULL;
  c->dnext = c->loop->again;
  if (c->dnext) c->dnext->dprev = c;
  c->loop->again = c;
}

void rs_io_conn_wake(rs_io_conn *c) {
  if (c->again) dirty_unlink(c); /* flush now rather than after the next poll */
  if (c->dirty || c->closing || c->lingering) return;
  c->dirty = true;
  c->dprev = NULL;
  c->dnext = c->loop->dirty;
  if (c->dnext) c->dnext->dprev = c;
  c->loop->dirty = c;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  rs_io_conn *c = h->data;
  /* Reads are processed synchronously in on_read, so one buffer per loop serves every conn. */
  if (c->loop->rbuf_busy) {
    buf->base = NULL;
    buf->len = 0;
    return;
  }
  c->loop->rbuf_busy = true;
  buf->base = (char *)c->loop->rbuf;
  buf->len = sizeof c->loop->rbuf;
}

static int deliver(rs_io_conn *c, const uint8_t *p, size_t n) {
  if (!c->ops || c->closing) return 0;
  return c->ops->recv(c->session, p, n, uv_now(c->loop->uv));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  rs_io_conn *c = s->data;
  if (buf->base == (char *)c->loop->rbuf) c->loop->rbuf_busy = false;
  if (c->closing) return;
  if (c->lingering) { /* discard what the peer still sends; its EOF ends the linger */
    if (nread < 0) conn_do_close(c, c->close_err, NULL);
    return;
  }
  if (nread < 0) {
    if (nread == UV_EOF)
      conn_do_close(c, 0, "connection closed by peer");
    else
      conn_do_close(c, RS_ERR_IO, uv_strerror((int)nread));
    return;
  }
  if (nread == 0) return;
  int rc = 0;
  if (!c->tls) {
    rc = deliver(c, (const uint8_t *)buf->base, (size_t)nread);
  } else {
    if (rs_tls_feed(c->tls, (const uint8_t *)buf->base, (size_t)nread) != 0) {
      conn_do_close(c, RS_ERR_NOMEM, "out of memory");
      return;
    }
    for (;;) {
      rs_ssize n = rs_tls_read(c->tls, c->loop->pbuf, sizeof c->loop->pbuf);
      if (n == RS_ERR_WOULD_BLOCK) break;
      if (n == 0) {
        rs_io_conn_close(c); /* TLS close_notify */
        return;
      }
      if (n < 0) {
        conn_do_close(c, RS_ERR_PROTOCOL, rs_tls_error(c->tls));
        return;
      }
      rc = deliver(c, c->loop->pbuf, (size_t)n);
      if (rc < 0 || c->closing) break;
    }
  }
  if (c->closing) return;
  if (rc < 0) {
    c->close_err = (int16_t)rc;
    set_reason(c, rs_strerror(rc));
    c->close_after_flush = true;
  }
  rs_io_conn_wake(c);
}

/* ---- deadlines: one heap and one timer per loop ---- */

static void heap_place(rs_io_loop *l, uint32_t i, rs_io_conn *c) {
  l->heap[i] = c;
  c->heap_pos = i + 1;
}

static void heap_sift_up(rs_io_loop *l, uint32_t i) {
  rs_io_conn *c = l->heap[i];
  while (i > 0) {
    uint32_t parent = (i - 1) / 2;
    if (l->heap[parent]->due <= c->due) break;
    heap_place(l, i, l->heap[parent]);
    i = parent;
  }
  heap_place(l, i, c);
}

static void heap_sift_down(rs_io_loop *l, uint32_t i) {
  rs_io_conn *c = l->heap[i];
  for (;;) {
    uint32_t child = 2 * i + 1;
    if (child >= l->heap_len) break;
    if (child + 1 < l->heap_len && l->heap[child + 1]->due < l->heap[child]->due) child++;
    if (c->due <= l->heap[child]->due) break;
    heap_place(l, i, l->heap[child]);
    i = child;
  }
  heap_place(l, i, c);
}

static void heap_remove(rs_io_conn *c) {
  rs_io_loop *l = c->loop;
  if (!c->heap_pos) return;
  uint32_t i = c->heap_pos - 1;
  c->heap_pos = 0;
  rs_io_conn *last = l->heap[--l->heap_len];
  if (last == c) return;
  heap_place(l, i, last);
  heap_sift_up(l, i);
  heap_sift_down(l, last->heap_pos - 1);
}

/* Puts `c` on the heap at `due`, or moves it there. RS_ERR_NOMEM when the heap cannot grow. */
static int heap_set(rs_io_conn *c, uint64_t due) {
  rs_io_loop *l = c->loop;
  if (c->heap_pos) {
    uint64_t old = c->due;
    c->due = due;
    if (due < old)
      heap_sift_up(l, c->heap_pos - 1);
    else if (due > old)
      heap_sift_down(l, c->heap_pos - 1);
    return 0;
  }
  if (l->heap_len == l->heap_cap) {
    uint32_t cap = l->heap_cap ? l->heap_cap * 2 : 64;
    rs_io_conn **nh = realloc(l->heap, cap * sizeof *nh);
    if (!nh) return RS_ERR_NOMEM;
    l->heap = nh;
    l->heap_cap = cap;
  }
  c->due = due;
  heap_place(l, l->heap_len++, c);
  heap_sift_up(l, l->heap_len - 1);
  return 0;
}

static void on_loop_timer(uv_timer_t *t);

/* Starts the loop's timer at the earliest deadline, when that changed. */
static void loop_timer_update(rs_io_loop *l) {
  uint64_t due = l->heap_len ? l->heap[0]->due : RS_IO_NO_DEADLINE;
  if (due == l->timer_due) return;
  l->timer_due = due;
  if (due == RS_IO_NO_DEADLINE) {
    uv_timer_stop(&l->timer);
    return;
  }
  uint64_t now = uv_now(l->uv);
  uv_timer_start(&l->timer, on_loop_timer, due > now ? due - now : 0, 0);
}

static void conn_timer(rs_io_conn *c);

/* Every connection whose deadline has come, earliest first. A connection's timer work never
 * puts it back on the heap (that happens when it is next flushed), so this ends. */
static void on_loop_timer(uv_timer_t *t) {
  rs_io_loop *l = t->data;
  l->timer_due = RS_IO_NO_DEADLINE; /* it fired */
  uint64_t now = uv_now(l->uv);
  while (l->heap_len && l->heap[0]->due <= now) {
    rs_io_conn *c = l->heap[0];
    heap_remove(c);
    conn_timer(c);
  }
  loop_timer_update(l);
}

/* Sets (or clears, with RS_IO_NO_DEADLINE) the connection's deadline. */
static void conn_set_deadline(rs_io_conn *c, uint64_t due) {
  if (due == RS_IO_NO_DEADLINE) {
    heap_remove(c);
  } else if (heap_set(c, due) != 0) {
    conn_do_close(c, RS_ERR_NOMEM, "out of memory"); /* a deadline it cannot have */
    return;
  }
  loop_timer_update(c->loop);
}

static void conn_timer(rs_io_conn *c) {
  if (c->lingering) {
    conn_do_close(c, c->close_err, NULL);
    return;
  }
  if (c->closing || !c->ops) return;
  if (c->close_deadline && uv_now(c->loop->uv) >= c->close_deadline) {
    char why[160];
    snprintf(why, sizeof why, "the peer did not read our last output within %u s",
             RS_IO_CLOSE_FLUSH_MS / 1000);
    conn_do_close(c, RS_ERR_TIMEOUT, why);
    return;
  }
  c->ops->expire(c->session, uv_now(c->loop->uv));
  rs_io_conn_wake(c);
}

static void arm_timer(rs_io_conn *c) {
  if (!c->ops) return;
  uint64_t d = c->ops->next_deadline(c->session);
  if (c->close_deadline && c->close_deadline < d) d = c->close_deadline;
  conn_set_deadline(c, d);
}

static void start_reading(rs_io_conn *c) {
  if (c->reading || c->paused || c->closing || !c->ops) return;
  if (uv_read_start((uv_stream_t *)c->tcp, on_alloc, on_read) == 0) c->reading = true;
}

static void conn_init(rs_io_conn *c, rs_io_loop *l, uv_tcp_t *tcp, rs_tls *tls) {
  c->loop = l;
  c->tcp = tcp;
  c->tls = tls;
  tcp->data = c;
  uv_tcp_nodelay(tcp, 1);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) == 0 &&
      (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
    memcpy(&c->addr, &ss,
           ss.ss_family == AF_INET ? sizeof c->addr.in : sizeof c->addr.in6); /* else AF_UNSPEC */
  l->nconns++;
}

rs_io_conn *rs_io_conn_new(rs_io_loop *l, uv_tcp_t *tcp, rs_tls *tls) {
  rs_io_conn *c = calloc(1, sizeof *c);
  if (c) conn_init(c, l, tcp, tls);
  return c;
}

/* An accepted connection, its handle and the caller's extra bytes in one allocation. */
typedef struct io_conn_tcp {
  rs_io_conn c;
  uv_tcp_t tcp;
  uint64_t extra[]; /* 8-byte aligned: what the caller keeps there holds pointers at most */
} io_conn_tcp;

static void free_handle_data(uv_handle_t *h) {
  free(h->data);
}

rs_io_conn *rs_io_conn_accept(rs_io_loop *l, uv_stream_t *listener, size_t extra) {
  io_conn_tcp *b = calloc(1, sizeof *b + extra);
  if (!b) return NULL;
  uv_tcp_init(l->uv, &b->tcp);
  if (uv_accept(listener, (uv_stream_t *)&b->tcp) != 0) {
    b->tcp.data = b;
    uv_close((uv_handle_t *)&b->tcp, free_handle_data);
    return NULL;
  }
  conn_init(&b->c, l, &b->tcp, NULL);
  b->c.tcp_inline = true;
  b->c.has_extra = extra > 0;
  return &b->c;
}

void *rs_io_conn_extra(rs_io_conn *c) {
  return c->has_extra ? ((io_conn_tcp *)c)->extra : NULL;
}

void rs_io_conn_set_tls(rs_io_conn *c, rs_tls *tls) {
  c->tls = tls;
}

void rs_io_conn_set_session(rs_io_conn *c, const rs_io_session_ops *ops, void *session) {
  c->ops = ops;
  c->session = session;
  start_reading(c);
  rs_io_conn_wake(c); /* a client session may have SETUP to send; TLS its ClientHello */
}

static void on_handle_closed(uv_handle_t *h) {
  rs_io_conn *c = h->data;
  if (c->ops && c->ops->closed) c->ops->closed(c->session, c->close_err, reason_of(c));
  c->loop->nconns--;
  rs_tls_free(c->tls);
  free(c->close_reason);
  if (c->peer_form == PEER_HEAP) free(c->addr.heap_text);
  if (!c->tcp_inline) free(c->tcp);
  free(c); /* with the handle, when tcp_inline */
}

static void conn_do_close(rs_io_conn *c, int err, const char *reason) {
  if (c->closing) return;
  c->closing = true;
  if (!c->close_err) c->close_err = (int16_t)err;
  set_reason(c, reason);
  dirty_unlink(c);
  heap_remove(c);
  loop_timer_update(c->loop);
  uv_close((uv_handle_t *)c->tcp,
           on_handle_closed); /* cancels a pending write (cb gets an error) */
}

void rs_io_conn_close(rs_io_conn *c) {
  if (c->closing) return;
  c->close_after_flush = true;
  if (c->tls) rs_tls_shutdown(c->tls);
  rs_io_conn_wake(c);
}

void rs_io_conn_abort(rs_io_conn *c, int err, const char *reason) {
  conn_do_close(c, err, reason);
}

size_t rs_io_conn_write_backlog(const rs_io_conn *c) {
  return c->w ? c->w->len : 0;
}

void rs_io_conn_pause_reading(rs_io_conn *c, bool paused) {
  c->paused = paused;
  if (paused && c->reading) {
    uv_read_stop((uv_stream_t *)c->tcp);
    c->reading = false;
  } else if (!paused) {
    start_reading(c);
  }
}

uv_loop_t *rs_io_conn_uv(const rs_io_conn *c) {
  return c->loop->uv;
}

bool rs_io_conn_handshake_done(const rs_io_conn *c) {
  return !c->tls || rs_tls_handshake_done(c->tls);
}

size_t rs_io_conn_peer_format(const rs_io_conn *c, char *out, size_t cap) {
  char host[INET6_ADDRSTRLEN] = "";
  int n = 0;
  if (c->peer_form != PEER_ADDR) {
    n = snprintf(out, cap, "%s", rs_io_conn_peer(c));
  } else if (c->addr.sa.sa_family == AF_INET) {
    uv_ip4_name(&c->addr.in, host, sizeof host);
    n = snprintf(out, cap, "%s:%d", host, ntohs(c->addr.in.sin_port));
  } else if (c->addr.sa.sa_family == AF_INET6) {
    uv_ip6_name(&c->addr.in6, host, sizeof host);
    n = snprintf(out, cap, "[%s]:%d", host, ntohs(c->addr.in6.sin6_port));
  } else if (cap) {
    out[0] = '\0';
  }
  return n > 0 ? (size_t)n : 0;
}

const char *rs_io_conn_peer(const rs_io_conn *c) {
  if (c->peer_form == PEER_TEXT) return c->addr.text;
  if (c->peer_form == PEER_HEAP) return c->addr.heap_text;
  char buf[RS_IO_PEER_MAX];
  size_t n = rs_io_conn_peer_format(c, buf, sizeof buf);
  if (n == 0) return "";
  /* Kept for the connection's life (callers hold the pointer: log lines, metadata), in place of
   * the address it was made from. */
  rs_io_conn *m = (rs_io_conn *)(uintptr_t)c;
  if (n < sizeof m->addr.text) {
    memcpy(m->addr.text, buf, n + 1);
    m->peer_form = PEER_TEXT;
    return m->addr.text;
  }
  char *p = malloc(n + 1);
  if (!p) return "";
  memcpy(p, buf, n + 1);
  m->addr.heap_text = p;
  m->peer_form = PEER_HEAP;
  return p;
}

static void on_write_done(uv_write_t *req, int status) {
  io_write *w = (io_write *)req;
  rs_io_conn *c = req->data;
  size_t n = w->len;
  bool consume = w->consume;
  free(w); /* an idle connection holds no write request and no copy */
  c->w = NULL;
  if (c->closing) return;
  if (status < 0) {
    conn_do_close(c, RS_ERR_IO, uv_strerror(status));
    return;
  }
  if (consume) c->ops->consumed(c->session, n);
  rs_io_conn_wake(c);
}

/* A write of `len` bytes, with room for a copy of `copy` bytes; NULL (the connection closing)
 * when out of memory. */
static io_write *write_new(rs_io_conn *c, size_t len, size_t copy) {
  io_write *w = malloc(sizeof *w + copy);
  if (!w) {
    conn_do_close(c, RS_ERR_NOMEM, "out of memory");
    return NULL;
  }
  w->req.data = c;
  w->len = len;
  w->consume = false;
  return w;
}

/* The rest of a write the socket did not take at once goes out asynchronously. */
static void write_start(rs_io_conn *c, io_write *w, const uv_buf_t *bufs, unsigned n) {
  c->w = w;
  int rc = uv_write(&w->req, (uv_stream_t *)c->tcp, bufs, n, on_write_done);
  if (rc < 0) {
    c->w = NULL;
    free(w);
    conn_do_close(c, RS_ERR_IO, uv_strerror(rc));
  }
}

/* Plain TCP: write the session's iovecs directly (no copy unless the socket is full and the
 * session's buffers may move). */
static void flush_plain(rs_io_conn *c) {
  rs_io_vec iov[RS_IO_MAX_IOV];
  uv_buf_t bufs[RS_IO_MAX_IOV];
  for (int round = 0; round < FLUSH_ROUNDS; round++) {
    int n = c->ops->pending(c->session, iov, RS_IO_MAX_IOV);
    if (n <= 0) return;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
      bufs[i] = uv_buf_init((char *)(uintptr_t)iov[i].base, (unsigned)iov[i].len);
      total += iov[i].len;
    }
    int w = uv_try_write((uv_stream_t *)c->tcp, bufs, (unsigned)n);
    if (w == UV_EAGAIN) w = 0;
    if (w < 0) {
      conn_do_close(c, RS_ERR_IO, uv_strerror(w));
      return;
    }
    if ((size_t)w == total) {
      c->ops->consumed(c->session, total);
      continue;
    }
    /* Partial: the rest goes out asynchronously, straight from the session's buffers when they
     * stay put, else from a copy. */
    size_t skip = (size_t)w;
    int first = 0;
    while (skip >= bufs[first].len) skip -= bufs[first++].len;
    bufs[first].base += skip;
    bufs[first].len -= skip;
    size_t rest = total - (size_t)w;
    int nbufs = n - first;
    io_write *wr = write_new(c, rest, c->ops->output_stable ? 0 : rest);
    if (!wr) return;
    if (!c->ops->output_stable) {
      size_t off = 0;
      for (int i = first; i < n; i++) {
        memcpy(wr->data + off, bufs[i].base, bufs[i].len);
        off += bufs[i].len;
      }
      c->ops->consumed(c->session, total);
      bufs[0] = uv_buf_init((char *)wr->data, (unsigned)rest);
      first = 0;
      nbufs = 1;
    } else {
      c->ops->consumed(c->session, (size_t)w);
      wr->consume = true;
    }
    write_start(c, wr, bufs + first, (unsigned)nbufs);
    return;
  }
  /* Still more after FLUSH_ROUNDS: continue on the next iteration so other conns get a turn.
   * (This used to re-arm the conn's timer at 0 ms, which arm_timer then overwrote with the
   * engine's deadline: a WebSocket conn with over 8 x 64 frames queued stalled until the next
   * input or keepalive.) */
  conn_again(c);
}

/* TLS: encrypt pending plaintext, then write the ciphertext buffer. */
static void flush_tls(rs_io_conn *c) {
  rs_io_vec iov[RS_IO_MAX_IOV];
  size_t budget = TLS_FLUSH_MAX;
  while (budget > 0 && rs_tls_handshake_done(c->tls)) {
    int n = c->ops->pending(c->session, iov, RS_IO_MAX_IOV);
    if (n <= 0) break;
    size_t done = 0;
    for (int i = 0; i < n; i++) {
      rs_ssize w = rs_tls_write(c->tls, iov[i].base, iov[i].len);
      if (w < 0 && w != RS_ERR_WOULD_BLOCK) {
        conn_do_close(c, RS_ERR_PROTOCOL, rs_tls_error(c->tls));
        return;
      }
      if (w <= 0) break;
      done += (size_t)w;
      if ((size_t)w < iov[i].len) break;
    }
    if (done == 0) break;
    c->ops->consumed(c->session, done);
    budget = done >= budget ? 0 : budget - done;
  }
  /* The ciphertext goes out from the loop's buffer; only what the socket does not take is
   * copied, with what is still in the session, into a write of the connection's own. */
  uint8_t *wbuf = c->loop->wbuf;
  for (size_t pend = rs_tls_pending(c->tls); pend > 0; pend = rs_tls_pending(c->tls)) {
    size_t n = rs_tls_take(c->tls, wbuf, WRITE_BUF_SIZE);
    uv_buf_t b = uv_buf_init((char *)wbuf, (unsigned)n);
    int w = uv_try_write((uv_stream_t *)c->tcp, &b, 1);
    if (w == UV_EAGAIN) w = 0;
    if (w < 0) {
      conn_do_close(c, RS_ERR_IO, uv_strerror(w));
      return;
    }
    if ((size_t)w == n) continue;
    size_t left = n - (size_t)w, more = rs_tls_pending(c->tls);
    io_write *wr = write_new(c, left + more, left + more);
    if (!wr) return;
    memcpy(wr->data, wbuf + w, left);
    rs_tls_take(c->tls, wr->data + left, more);
    b = uv_buf_init((char *)wr->data, (unsigned)(left + more));
    write_start(c, wr, &b, 1);
    return;
  }
  if (budget == 0) conn_again(c); /* more plaintext may wait: next iteration */
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  rs_io_conn *c = req->data;
  free(req); /* allocated by conn_linger: an open connection holds no shutdown request */
  if (c->closing) return;
  if (status < 0) conn_do_close(c, c->close_err, NULL);
}

/*
 * Closes after our last bytes are written without losing them: a close with unread input makes
 * the kernel send RST, which can destroy data the peer has not read yet (a WebSocket close frame,
 * an RSocket ERROR). So shut the write side down, drain input until the peer's EOF, and close
 * then (or after LINGER_MS). TLS sessions close at once: their close_notify already went out.
 */
static void conn_linger(rs_io_conn *c) {
  if (c->tls || c->paused) {
    conn_do_close(c, c->close_err, "closed");
    return;
  }
  set_reason(c, "closed");
  c->lingering = true;
  dirty_unlink(c);
  uv_shutdown_t *sreq = malloc(sizeof *sreq);
  if (sreq) sreq->data = c;
  if (!sreq || uv_shutdown(sreq, (uv_stream_t *)c->tcp, on_shutdown) != 0) {
    free(sreq);
    conn_do_close(c, c->close_err, NULL);
    return;
  }
  if (!c->reading && uv_read_start((uv_stream_t *)c->tcp, on_alloc, on_read) == 0)
    c->reading = true;
  conn_set_deadline(c, uv_now(c->loop->uv) + LINGER_MS);
}

static void conn_flush(rs_io_conn *c) {
  if (c->closing || c->lingering || !c->ops) return;
  if (!c->w) {
    if (c->tls)
      flush_tls(c);
    else
      flush_plain(c);
    if (c->closing) return;
  }
  bool done = c->close_after_flush || c->ops->want_close(c->session);
  if (done && !c->close_deadline) c->close_deadline = uv_now(c->loop->uv) + RS_IO_CLOSE_FLUSH_MS;
  arm_timer(c);
  if (!c->w && done) {
    bool drained = c->tls ? rs_tls_pending(c->tls) == 0 : true;
    rs_io_vec probe;
    /* Otherwise the rest goes out as the socket (or a TLS handshake) allows, and the next
     * flush looks again; waking here would spin while nothing can move. */
    if (drained && c->ops->pending(c->session, &probe, 1) == 0) conn_linger(c);
  }
}

/* ---- listening ---- */

/* One bound (not yet listening) socket per address; 0, or an errno with `fds` closed. */
static int bind_all(struct sockaddr_storage *addrs, int n, int port, bool reuseport, int *fds,
                    int *nfds, int *failed) {
  *nfds = 0;
  int e = 0;
  for (int i = 0; i < n; i++) {
    struct sockaddr_storage *ss = &addrs[i];
    socklen_t len =
        ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (ss->ss_family == AF_INET6)
      ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    else
      ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      e = errno;
      if (e == EAFNOSUPPORT) continue; /* no IPv6 (or IPv4) here: the other family serves */
      *failed = i;
      goto fail;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    /* With both families bound separately, "::" must not also claim IPv4. */
    if (ss->ss_family == AF_INET6 && n > 1)
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)ss, len) != 0) {
      e = errno;
      close(fd);
      if (e == EADDRNOTAVAIL) continue; /* an address this host does not have (e.g. ::1) */
      *failed = i;
      goto fail;
    }
    fds[(*nfds)++] = fd;
    if (port == 0) { /* the first address chose the port: the others take the same */
      struct sockaddr_storage b;
      socklen_t bl = sizeof b;
      if (getsockname(fd, (struct sockaddr *)&b, &bl) == 0)
        port = ntohs(b.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&b)->sin6_port
                                             : ((struct sockaddr_in *)&b)->sin_port);
    }
  }
  if (*nfds > 0) return 0;
  *failed = n - 1;
  return e ? e : EADDRNOTAVAIL;
fail:
  for (int k = 0; k < *nfds; k++) close(fds[k]);
  *nfds = 0;
  return e;
}

int rs_io_listen_all(uv_loop_t *loop, const char *host, int port, bool reuseport, int backlog,
                     uv_tcp_t *out, int max, uv_connection_cb on_connection, char *err,
                     size_t errlen) {
  char portstr[16];
  snprintf(portstr, sizeof portstr, "%d", port);
  struct addrinfo hints = {0}, *res = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  int gai = getaddrinfo(host, portstr, &hints, &res);
  if (gai != 0) {
    snprintf(err, errlen, "%s: %s", host, gai_strerror(gai));
    return RS_ERR_IO;
  }
  if (max > RS_IO_MAX_LISTENERS) max = RS_IO_MAX_LISTENERS;
  struct sockaddr_storage addrs[RS_IO_MAX_LISTENERS];
  int n = 0;
  for (struct addrinfo *ai = res; ai && n < max; ai = ai->ai_next) {
    if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || ai->ai_addrlen > sizeof addrs[0])
      continue;
    bool dup = false;
    for (int i = 0; i < n && !dup; i++) dup = memcmp(&addrs[i], ai->ai_addr, ai->ai_addrlen) == 0;
    if (dup) continue;
    memset(&addrs[n], 0, sizeof addrs[n]);
    memcpy(&addrs[n++], ai->ai_addr, ai->ai_addrlen);
  }
  freeaddrinfo(res);
  if (n == 0) {
    snprintf(err, errlen, "%s: no IPv4 or IPv6 address", host);
    return RS_ERR_IO;
  }
  int fds[RS_IO_MAX_LISTENERS], nfds = 0, failed = 0, e = 0;
  /* Port 0 over several addresses: the port the first one got may be taken on another; try a
   * few ports before giving up. */
  for (int round = 0; round < (port == 0 && n > 1 ? 8 : 1); round++) {
    e = bind_all(addrs, n, port, reuseport, fds, &nfds, &failed);
    if (e != EADDRINUSE) break;
  }
  if (e) {
    char a[INET6_ADDRSTRLEN] = "?";
    if (addrs[failed].ss_family == AF_INET6)
      uv_ip6_name((struct sockaddr_in6 *)&addrs[failed], a, sizeof a);
    else
      uv_ip4_name((struct sockaddr_in *)&addrs[failed], a, sizeof a);
    if (n > 1 || strcmp(a, host) != 0)
      snprintf(err, errlen, "%s:%d (%s%s%s): %s", host, port,
               addrs[failed].ss_family == AF_INET6 ? "[" : "", a,
               addrs[failed].ss_family == AF_INET6 ? "]" : "", strerror(e));
    else
      snprintf(err, errlen, "%s:%d: %s", host, port, strerror(e));
    return RS_ERR_IO;
  }
  for (int i = 0; i < nfds; i++) {
    uv_tcp_init(loop, &out[i]);
    int rc = uv_tcp_open(&out[i], fds[i]);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&out[i], backlog > 0 ? backlog : 511, on_connection);
    if (rc < 0) {
      snprintf(err, errlen, "%s:%d: %s", host, port, uv_strerror(rc));
      for (int k = 0; k <= i; k++) uv_close((uv_handle_t *)&out[k], NULL);
      for (int k = i + 1; k < nfds; k++) close(fds[k]);
      return RS_ERR_IO;
    }
  }
  return nfds;
}

int rs_io_listen(uv_loop_t *loop, const char *host, int port, bool reuseport, int backlog,
                 uv_tcp_t *out, uv_connection_cb on_connection, char *err, size_t errlen) {
  int n =
      rs_io_listen_all(loop, host, port, reuseport, backlog, out, 1, on_connection, err, errlen);
  return n < 0 ? n : 0;
}

int rs_io_bound_port(const uv_tcp_t *tcp) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getsockname(tcp, (struct sockaddr *)&ss, &len) != 0) return -1;
  if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return -1;
}
