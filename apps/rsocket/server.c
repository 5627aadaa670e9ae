/* rsocket server mode: the echo contract.
 *   request-response  answers with the request's data and metadata (or -d DATA)
 *   request-stream    emits the request's payload again and again, honouring request(n), until
 *                     cancelled; a request without data gets the numbers 1, 2, 3… instead (an
 *                     endless run of empty items is of no use to anyone). With -d @FILE: each
 *                     line of FILE, then complete
 *   request-channel   echoes every inbound payload, completes when the requester completes
 *   fire-and-forget   prints "fnf <data>"; metadata-push prints "metadata-push <metadata>"
 * SIGINT or SIGTERM stops it gracefully: CONNECTION_CLOSE, endless streams complete, and what is
 * still open after DRAIN_MS is cut. A second signal stops it at once.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli.h"

/* Most a producer call emits; the engine calls again while credit and room remain (the runtime
 * writes after 16 calls at the start of a burst, then after 32, 64…: a call is a modest batch). */
#define PRODUCE_BATCH 64
#define PRODUCE_BYTES (64u << 10)
/* A graceful stop waits this long for open streams (a channel's requester may never finish). */
#define DRAIN_MS 5000

typedef struct srv_state {
  cli_options *o;
  uv_loop_t *loop;
  rs_server *server;
  uv_signal_t sigint, sigterm;
  char **lines; /* -d @FILE split in lines */
  size_t *line_len;
  size_t nlines;
  uv_mutex_t print_lock; /* workers print fnf / metadata-push lines */
  atomic_bool stopping;  /* a signal came: endless streams complete (read by every worker) */
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

static void print_line(srv_state *s, const char *prefix, rs_bytes b) {
  uv_mutex_lock(&s->print_lock);
  printf("%s %.*s\n", prefix, (int)b.len, b.ptr ? (const char *)b.ptr : "");
  fflush(stdout);
  uv_mutex_unlock(&s->print_lock);
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

static void on_signal(uv_signal_t *h, int signum) {
  srv_state *s = h->data;
  (void)signum;
  atomic_store(&s->stopping, true);
  uv_signal_stop(&s->sigint); /* the default action again: a second signal stops at once */
  uv_signal_stop(&s->sigterm);
  rs_server_stop(s->server, true, on_stopped, s);
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
  uv_mutex_init(&s.print_lock);
  if (o->stream_file) split_lines(&s);
  uv_loop_t loop;
  uv_loop_init(&loop);
  s.loop = &loop;

  rs_server_options so;
  rs_server_options_default(&so);
  so.uri = o->uri;
  so.workers = o->workers;
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
  uv_mutex_destroy(&s.print_lock);
  free(s.lines);
  free(s.line_len);
  return EXIT_OK;
}
