/* rsocket server mode: the echo contract.
 *   request-response  answers with the request's data and metadata (or -d DATA)
 *   request-stream    emits the request's payload again and again, honouring request(n), until
 *                     cancelled; a request without data gets the numbers 1, 2, 3… instead (an
 *                     endless run of empty items is of no use to anyone). With -d @FILE: each
 *                     line of FILE, then complete
 *   request-channel   echoes every inbound payload, completes when the requester completes
 *   fire-and-forget   prints "fnf <data>"; metadata-push prints "metadata-push <metadata>"
 * SIGINT or SIGTERM stops it gracefully: CONNECTION_CLOSE, endless streams complete, and what is
 * still open after DRAIN_MS is cut. A second signal cuts everything at once (and still exits
 * cleanly, status 0).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cli.h"
#include "rsocket/ws.h"

/* Most a producer call emits; the engine calls again while credit and room remain (the runtime
 * writes after 16 calls at the start of a burst, then after 32, 64…: a call is a modest batch). */
#define PRODUCE_BATCH 64
#define PRODUCE_BYTES (64u << 10)
/* A graceful stop waits this long for open streams (a channel's requester may never finish). */
#define DRAIN_MS 5000
/* Lines printed (fnf, metadata-push) wait here for a thread that writes them to stdout, so a
 * stdout nobody reads never blocks the event loop; beyond this many bytes lines are dropped and
 * counted. */
#define PRINT_QUEUE    (1u << 20)
#define PRINT_LINE_MAX 4096 /* longest line printed (escaped); longer data is cut with "..." */

/* The stdout writer: a byte queue filled by the loops, emptied by one thread. */
typedef struct printer {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char *buf; /* ring of PRINT_QUEUE bytes */
  size_t head, len;
  unsigned long long dropped; /* lines dropped since the last one written */
  bool started;
} printer;

typedef struct srv_state {
  cli_options *o;
  uv_loop_t *loop;
  rs_server *server;
  uv_signal_t sigint, sigterm;
  char **lines; /* -d @FILE split in lines */
  size_t *line_len;
  size_t nlines;
  printer *out;         /* workers print fnf / metadata-push lines through it */
  atomic_bool stopping; /* a signal came: endless streams complete (read by every worker) */
} srv_state;

typedef struct owned {
  uint8_t *ptr;
  size_t len;
  bool set;
} owned;

typedef struct echo_stream echo_stream;

typedef struct conn_state {
  srv_state *srv;
  rs_conn *conn;
  uv_timer_t *lease_timer; /* --lease only (handles on the heap: idle connections stay small) */
  bool lease_timer_on;
  bool closing;
  int refs; /* handles still open + 1 while the connection lives */
} conn_state;

struct echo_stream {
  conn_state *cs;
  uint32_t sid;
  uint8_t type;
  owned md, data;   /* the request payload (stream) */
  size_t next_line; /* -d @FILE streams */
  uint64_t counted; /* streams of an empty request: the last number sent */
  char number[24];
  bool done;         /* our half is over */
  bool inbound_done; /* channel: the requester completed */
  owned *queue;      /* channel: inbound payloads to echo back */
  size_t qhead, qtail, qcap;
  uint64_t inbound_seen;
};

static int own(owned *o, const rs_bytes *b, bool set) {
  o->set = set;
  o->len = set ? b->len : 0;
  o->ptr = NULL;
  if (!set || b->len == 0) return 0;
  o->ptr = malloc(b->len);
  if (!o->ptr) return -1;
  memcpy(o->ptr, b->ptr, b->len);
  return 0;
}

/* Writes what the loops queued; blocking here blocks nobody else. */
static void *printer_main(void *arg) {
  printer *p = arg;
  char chunk[8192], note[96];
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (p->len == 0) pthread_cond_wait(&p->cv, &p->mu);
    size_t n = p->len < sizeof chunk ? p->len : sizeof chunk;
    for (size_t i = 0; i < n; i++) chunk[i] = p->buf[(p->head + i) % PRINT_QUEUE];
    p->head = (p->head + n) % PRINT_QUEUE;
    p->len -= n;
    unsigned long long dropped = p->dropped;
    p->dropped = 0;
    pthread_mutex_unlock(&p->mu);
    size_t k = 0;
    if (dropped)
      k = (size_t)snprintf(note, sizeof note, "(%llu lines dropped: stdout was not read)\n",
                           dropped);
    for (size_t off = 0; off < k;) {
      ssize_t w = write(STDOUT_FILENO, note + off, k - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break;
      off += (size_t)w;
    }
    for (size_t off = 0; off < n;) {
      ssize_t w = write(STDOUT_FILENO, chunk + off, n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break; /* stdout closed: lines are discarded */
      off += (size_t)w;
    }
    pthread_mutex_lock(&p->mu);
  }
  return NULL;
}

/* Appends `b` to `out` with control characters, backslashes and bytes that are not UTF-8
 * escaped (\n, \t, \xNN), so that no data can move the terminal's cursor, set its title or
 * write its clipboard (ESC and C1 sequences), or forge a line of its own. At most `cap` bytes. */
static size_t escape(char *out, size_t cap, rs_bytes b) {
  size_t o = 0;
  for (size_t i = 0; i < b.len && o + 8 < cap; i++) {
    uint8_t c = b.ptr[i];
    int seq = c < 0x80             ? 1
              : (c & 0xE0) == 0xC0 ? 2
              : (c & 0xF0) == 0xE0 ? 3
              : (c & 0xF8) == 0xF0 ? 4
                                   : 0;
    if (seq > 1 && i + (size_t)seq <= b.len && rs_ws_utf8_valid(b.ptr + i, (size_t)seq) &&
        !(c == 0xC2 && b.ptr[i + 1] < 0xA0)) { /* U+0080..U+009F are C1 controls */
      memcpy(out + o, b.ptr + i, (size_t)seq);
      o += (size_t)seq;
      i += (size_t)seq - 1;
    } else if (c == '\\') {
      o += (size_t)snprintf(out + o, cap - o, "\\\\");
    } else if (c == '\n') {
      o += (size_t)snprintf(out + o, cap - o, "\\n");
    } else if (c == '\t') {
      o += (size_t)snprintf(out + o, cap - o, "\\t");
    } else if (c < 0x20 || c >= 0x7f) {
      o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
    } else {
      out[o++] = (char)c;
    }
    if (i + 1 < b.len && o + 8 >= cap) o += (size_t)snprintf(out + o, cap - o, "...");
  }
  return o;
}

/* Queues "PREFIX DATA\n" for the writer thread, or counts it as dropped when the queue is full. */
static void print_line(srv_state *s, const char *prefix, rs_bytes b) {
  char line[PRINT_LINE_MAX + 64];
  size_t n = (size_t)snprintf(line, sizeof line, "%s ", prefix);
  n += escape(line + n, PRINT_LINE_MAX, b);
  line[n++] = '\n';
  printer *p = s->out;
  pthread_mutex_lock(&p->mu);
  if (!p->started || PRINT_QUEUE - p->len < n) {
    p->dropped++;
  } else {
    for (size_t i = 0; i < n; i++) p->buf[(p->head + p->len + i) % PRINT_QUEUE] = line[i];
    p->len += n;
    pthread_cond_signal(&p->cv);
  }
  pthread_mutex_unlock(&p->mu);
}

/* The one writer of the process. Static: the detached thread may outlive cli_run_server (blocked
 * on a stdout nobody reads; exiting does not wait for it), so what it uses must too. */
static printer the_printer;

/* Starts the writer thread. Without it every line counts as dropped. */
static printer *printer_start(void) {
  printer *p = &the_printer;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  p->buf = malloc(PRINT_QUEUE);
  pthread_t t;
  if (p->buf && pthread_create(&t, NULL, printer_main, p) == 0) {
    pthread_detach(t);
    p->started = true;
  }
  return p;
}

/* Gives the writer a moment to write what is queued (it may never: stdout may not be read). */
static void printer_drain(printer *p) {
  for (int i = 0; i < 100; i++) {
    pthread_mutex_lock(&p->mu);
    bool empty = p->len == 0;
    pthread_mutex_unlock(&p->mu);
    if (empty) break;
    usleep(10000);
  }
}

static void conn_unref(conn_state *cs) {
  if (--cs->refs == 0) free(cs);
}

static void on_handle_closed(uv_handle_t *h) {
  conn_unref(h->data);
  free(h);
}

/* ---- emitting: the engine's pull producer ---- */

/*
 * Called by the engine while the stream has credit and the connection's output is under its high
 * watermark (and, with --resume, the retained-frame window has room): no pump, no spinning, and
 * a client that stops reading simply stops being produced for. A call sends at most PRODUCE_BATCH
 * items or PRODUCE_BYTES of payload, so the engine's limits are never overshot by much.
 */
static int on_produce(rs_conn *conn, uint32_t sid, void *su, uint64_t credit, void *user) {
  (void)user;
  echo_stream *es = su;
  if (!es || es->done) return RS_PRODUCE_PAUSE;
  srv_state *s = es->cs->srv;
  size_t bytes = 0;
  for (int n = 0; n < PRODUCE_BATCH && credit > 0 && bytes < PRODUCE_BYTES; n++) {
    rs_payload p;
    bool last = false;
    owned *item = NULL;
    if (es->type == RS_FRAME_REQUEST_STREAM) {
      if (s->nlines || s->o->stream_file) {
        if (es->next_line >= s->nlines) {
          rs_conn_send_complete(conn, sid);
          es->done = true;
          return RS_PRODUCE_PAUSE;
        }
        p = (rs_payload){false,
                         {NULL, 0},
                         {(const uint8_t *)s->lines[es->next_line], s->line_len[es->next_line]}};
        last = ++es->next_line == s->nlines;
      } else if (atomic_load_explicit(&s->stopping, memory_order_relaxed)) {
        rs_conn_send_complete(conn, sid); /* the server is going: end it cleanly */
        es->done = true;
        return RS_PRODUCE_PAUSE;
      } else {
        p = (rs_payload){es->md.set, {es->md.ptr, es->md.len}, {es->data.ptr, es->data.len}};
        if (es->data.len == 0) {
          int k = snprintf(es->number, sizeof es->number, "%" PRIu64, ++es->counted);
          p.data = (rs_bytes){(const uint8_t *)es->number, (size_t)k};
        }
      }
    } else { /* channel: echo what the requester sent */
      if (es->qhead == es->qtail) {
        if (es->inbound_done) {
          rs_conn_send_complete(conn, sid);
          es->done = true;
        }
        return RS_PRODUCE_PAUSE; /* on_payload resumes it */
      }
      item = &es->queue[es->qhead];
      p = (rs_payload){item[0].set, {item[0].ptr, item[0].len}, {item[1].ptr, item[1].len}};
      last = es->inbound_done && es->qhead + 2 == es->qtail;
    }
    int rc = rs_conn_send_payload(conn, sid, &p, last);
    bytes += p.data.len + (p.has_metadata ? p.metadata.len : 0) + 9;
    if (item) {
      free(item[0].ptr);
      free(item[1].ptr);
      es->qhead += 2;
    }
    if (rc != 0 || last) {
      es->done = true;
      return RS_PRODUCE_PAUSE;
    }
    if (credit != RS_CREDIT_UNBOUNDED) credit--;
  }
  return RS_PRODUCE_MORE;
}

/* ---- callbacks ---- */

/* Every second a new lease of N requests replaces the previous one. Its TTL is two seconds so a
 * requester never sees a gap between two leases (unused permits still vanish on replacement, so
 * the rate stays at N per second). */
static void grant_lease(conn_state *cs) {
  rs_conn_send_lease(cs->conn, 2000, cs->srv->o->lease_per_second, NULL,
                     uv_now(rs_runtime_loop(cs->conn)));
}

static void on_lease_timer(uv_timer_t *t) {
  grant_lease(t->data);
}

static int on_setup(rs_conn *conn, const rs_setup_info *setup, void *user) {
  (void)setup;
  conn_state *cs = user;
  if (cs->srv->o->lease_per_second && setup->lease) {
    grant_lease(cs);
    if (!(cs->lease_timer = malloc(sizeof *cs->lease_timer))) return -1;
    uv_timer_init(rs_runtime_loop(conn), cs->lease_timer);
    cs->lease_timer->data = cs;
    cs->lease_timer_on = true;
    cs->refs++;
    uv_timer_start(cs->lease_timer, on_lease_timer, 1000, 1000);
  }
  return 0;
}

static int on_request(rs_conn *conn, const rs_request *req, void *user) {
  conn_state *cs = user;
  srv_state *s = cs->srv;
  const rs_payload *p = &req->payload;
  if (req->type == RS_FRAME_REQUEST_FNF) {
    print_line(s, "fnf", p->data);
    return 0;
  }
  if (req->type == RS_FRAME_REQUEST_RESPONSE) {
    rs_payload reply = *p;
    if (s->o->data.set && !s->o->stream_file)
      reply.data = (rs_bytes){s->o->data.ptr, s->o->data.len};
    rs_conn_send_payload(conn, req->stream_id, &reply, true);
    return 0;
  }
  echo_stream *es = calloc(1, sizeof *es);
  if (!es) return -1;
  es->cs = cs;
  es->sid = req->stream_id;
  es->type = req->type;
  if (req->type == RS_FRAME_REQUEST_STREAM) {
    if (own(&es->md, &p->metadata, p->has_metadata) || own(&es->data, &p->data, true)) {
      free(es->md.ptr);
      free(es);
      return -1;
    }
  } else {
    es->inbound_done = req->complete;
    es->qcap = 64;
    es->queue = calloc(es->qcap, sizeof *es->queue);
    if (!es->queue || own(&es->queue[0], &p->metadata, p->has_metadata) ||
        own(&es->queue[1], &p->data, true)) {
      free(es->queue);
      free(es);
      return -1;
    }
    es->qtail = 2;
    /* The first payload counted as one element: ask for more of the requester's half. */
    if (!req->complete) rs_conn_request_n(conn, req->stream_id, 256);
  }
  rs_conn_stream_set_user(conn, req->stream_id, es);
  rs_conn_set_producer(conn, req->stream_id);
  return 0;
}

static void on_payload(rs_conn *conn, uint32_t sid, void *su, const rs_payload *p, unsigned flags,
                       void *user) {
  (void)user;
  echo_stream *es = su;
  if (!es || es->type != RS_FRAME_REQUEST_CHANNEL) return;
  if (flags & RS_PAYLOAD_NEXT) {
    if (es->qtail + 2 > es->qcap) {
      size_t live = es->qtail - es->qhead;
      if (es->qhead > 0) memmove(es->queue, es->queue + es->qhead, live * sizeof *es->queue);
      es->qhead = 0, es->qtail = live;
      if (es->qtail + 2 > es->qcap) {
        es->qcap *= 2;
        owned *nq = realloc(es->queue, es->qcap * sizeof *nq);
        if (!nq) {
          rs_conn_send_error(conn, sid, RS_ERROR_APPLICATION_ERROR, rs_bytes_str("out of memory"));
          es->done = true;
          return;
        }
        es->queue = nq;
      }
    }
    if (own(&es->queue[es->qtail], &p->metadata, p->has_metadata) ||
        own(&es->queue[es->qtail + 1], &p->data, true)) {
      rs_conn_send_error(conn, sid, RS_ERROR_APPLICATION_ERROR, rs_bytes_str("out of memory"));
      es->done = true;
      return;
    }
    es->qtail += 2;
    if (++es->inbound_seen % 128 == 0) rs_conn_request_n(conn, sid, 128);
  }
  if (flags & RS_PAYLOAD_COMPLETE) es->inbound_done = true;
  rs_conn_resume_producer(conn, sid); /* it paused on an empty queue */
}

static void on_cancel(rs_conn *conn, uint32_t sid, void *su, void *user) {
  (void)conn, (void)sid, (void)user;
  echo_stream *es = su;
  if (!es) return;
  if (es->type == RS_FRAME_REQUEST_STREAM)
    es->done = true;
  else
    es->inbound_done = true; /* channel requester canceled: the engine ends the stream */
}

static void on_stream_closed(rs_conn *conn, uint32_t sid, void *su, void *user) {
  (void)conn, (void)sid, (void)user;
  echo_stream *es = su;
  if (!es) return;
  free(es->md.ptr);
  free(es->data.ptr);
  for (size_t i = es->qhead; i < es->qtail; i++) free(es->queue[i].ptr);
  free(es->queue);
  free(es);
}

static void on_metadata_push(rs_conn *conn, rs_bytes md, void *user) {
  (void)conn;
  conn_state *cs = user;
  print_line(cs->srv, "metadata-push", md);
}

static void *on_connect(rs_server *server, rs_conn *conn, void *user) {
  (void)server;
  conn_state *cs = calloc(1, sizeof *cs);
  if (!cs) return NULL;
  cs->srv = user;
  cs->conn = conn;
  cs->refs = 1;
  return cs;
}

static void on_disconnect(rs_server *server, rs_conn *conn, void *conn_user, void *user) {
  (void)server, (void)conn, (void)user;
  conn_state *cs = conn_user;
  if (!cs) return;
  cs->closing = true;
  if (cs->lease_timer_on) uv_close((uv_handle_t *)cs->lease_timer, on_handle_closed);
  conn_unref(cs);
}

static void on_frame(rs_conn *conn, bool out, const uint8_t *frame, size_t len, void *user) {
  (void)conn, (void)user;
  cli_debug_frame(out, frame, len);
}

static void on_stopped(void *arg) {
  srv_state *s = arg;
  uv_close((uv_handle_t *)&s->sigint, NULL);
  uv_close((uv_handle_t *)&s->sigterm, NULL);
}

/* The first signal stops gracefully (streams end, DRAIN_MS at most); a second one cuts every
 * connection at once, still cleanly (the process exits 0 when the server has stopped). */
static void on_signal(uv_signal_t *h, int signum) {
  srv_state *s = h->data;
  (void)signum;
  bool again = atomic_exchange(&s->stopping, true);
  rs_server_stop(s->server, !again, on_stopped, s);
}

static void split_lines(srv_state *s) {
  cli_options *o = s->o;
  size_t cap = 16;
  s->lines = malloc(cap * sizeof *s->lines);
  s->line_len = malloc(cap * sizeof *s->line_len);
  size_t start = 0;
  for (size_t i = 0; i <= o->data.len; i++) {
    if (i < o->data.len && o->data.ptr[i] != '\n') continue;
    if (i == o->data.len && i == start) break; /* no trailing empty line */
    if (s->nlines == cap) {
      cap *= 2;
      s->lines = realloc(s->lines, cap * sizeof *s->lines);
      s->line_len = realloc(s->line_len, cap * sizeof *s->line_len);
    }
    size_t n = i - start;
    if (n > 0 && o->data.ptr[start + n - 1] == '\r') n--;
    s->lines[s->nlines] = (char *)o->data.ptr + start;
    s->line_len[s->nlines++] = n;
    start = i + 1;
  }
}

int cli_run_server(cli_options *o) {
  srv_state s;
  memset(&s, 0, sizeof s);
  s.o = o;
  s.out = printer_start();
  if (o->stream_file) split_lines(&s);
  uv_loop_t loop;
  uv_loop_init(&loop);
  s.loop = &loop;

  rs_server_options so;
  rs_server_options_default(&so);
  so.uri = o->uri;
  so.workers = o->workers;
  so.max_connections = o->max_connections;
  so.busy_poll = o->busy_poll;
  so.drain_timeout_ms = DRAIN_MS;
  so.cert_file = o->cert;
  so.key_file = o->key;
  if (o->mtu) so.settings.mtu = o->mtu;
  if (o->lease_per_second) so.settings.lease = true;
  if (o->resume_ms) {
    so.settings.resume = true;
    so.settings.resume_session_timeout_ms = o->resume_ms;
  }
  so.callbacks.struct_size = sizeof so.callbacks;
  so.callbacks.on_setup = on_setup;
  so.callbacks.on_request = on_request;
  so.callbacks.on_payload = on_payload;
  so.callbacks.on_produce = on_produce;
  so.callbacks.on_cancel = on_cancel;
  so.callbacks.on_stream_closed = on_stream_closed;
  so.callbacks.on_metadata_push = on_metadata_push;
  so.on_connect = on_connect;
  so.on_disconnect = on_disconnect;
  so.user = &s;
  if (o->debug) so.on_frame = on_frame;

  char err[300];
  int rc = rs_server_start(&s.server, &loop, &so, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "rsocket: cannot listen on %s: %s\n", o->uri, err);
    uv_loop_close(&loop);
    free(s.lines);
    free(s.line_len);
    return rc == RS_ERR_IO ? EXIT_CONNECT : EXIT_USAGE;
  }
  uv_signal_init(&loop, &s.sigint);
  uv_signal_init(&loop, &s.sigterm);
  s.sigint.data = s.sigterm.data = &s;
  uv_signal_start(&s.sigint, on_signal, SIGINT);
  uv_signal_start(&s.sigterm, on_signal, SIGTERM);
  signal(SIGPIPE, SIG_IGN);
  printf("listening on %s\n", rs_server_uri(s.server));
  fflush(stdout);
  if (o->busy_poll)
    rs_runtime_run_busy(&loop);
  else
    uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  printer_drain(s.out); /* it stays: the writer may still be blocked writing */
  free(s.lines);
  free(s.line_len);
  return EXIT_OK;
}
