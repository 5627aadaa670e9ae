/* rs_server: listeners on one or more worker loops, each accepting and running connections. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <limits.h>
#include <string.h>
#include <sys/resource.h>

#include "runtime/post.h"
#include "rsocket/ws.h"
#include "runtime/rt_internal.h"
#include "runtime/ws_session.h"

struct rt_worker {
  rs_server *server;
  int index;
  uv_loop_t own_loop; /* workers > 0 */
  uv_loop_t *loop;
  rs_io_loop *io;
  uv_tcp_t listeners[RS_IO_MAX_LISTENERS]; /* one per address of the host */
  int nlisteners;
  bool listening;
  bool posting; /* holds a reference for rs_runtime_post on `loop` */
  uv_async_t stop_async;
  uv_timer_t drain; /* graceful stop: cuts what is still open after drain_timeout_ms */
  bool drain_on;
  pthread_t thread;
  void *user;              /* what on_worker_start returned */
  rt_conn *conns;          /* list */
  rs_ws_session *sessions; /* ws://: handshakes in progress and plain WebSocket sessions */
  rt_pending pending;      /* sentinel of the connections not set up yet, oldest first */
  size_t nconns;           /* both */
  bool stopping, finished;
  /* Set by rs_server_stop on the caller's thread before it signals stop_async. Atomic: the
   * signal goes through libuv, where a race detector cannot see that it orders the two. */
  atomic_bool graceful;
};

struct rs_server {
  rs_server_options opt;
  rs_uri uri;
  char uri_text[1400];
  int port;
  rs_tls_ctx *tls;
  rs_resume_store *store; /* shared by the workers' connections: resumption needs one worker */
  rt_worker *workers;
  int nworkers;
  uv_loop_t *loop;
  uv_async_t done_async; /* workers > 0 signal the main loop when they finish */
  atomic_size_t nconns;
  atomic_int finished;
  void (*on_stopped)(void *);
  void *stopped_arg;
  bool stopping, joined, aborting;
  /* Handles on the caller's loop (worker 0's, done_async) whose close callback has not run: the
   * server is freed only when every one has (libuv touches a closing handle until then). */
  int closing;
  bool done_closed;
  /* Start-up: threads wait for START_HOOKS to run on_worker_start, then for START_ACCEPT, which
   * comes once every worker's hook has returned (hooks_done). */
  pthread_mutex_t start_mu;
  pthread_cond_t start_cv;
  int start_phase;
  int hooks_done;
};

enum { START_WAIT, START_HOOKS, START_ACCEPT, START_ABORT };

void rs_server_options_default(rs_server_options *o) {
  memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->workers = 1;
  o->drain_timeout_ms = 10000; /* a stop always ends: a stream may never finish by itself */
  rs_conn_settings_default(&o->settings, RS_CONN_SERVER);
}

static void worker_maybe_finish(rt_worker *w);

static void count(rt_worker *w, int delta) {
  w->nconns += (size_t)(ptrdiff_t)delta;
  if (delta > 0)
    atomic_fetch_add(&w->server->nconns, 1);
  else
    atomic_fetch_sub(&w->server->nconns, 1);
}

static void conn_link(rt_worker *w, rt_conn *rc) {
  rc->next = w->conns;
  if (w->conns) w->conns->prev = rc;
  w->conns = rc;
  count(w, 1);
}

static void conn_unlink(rt_worker *w, rt_conn *rc) {
  if (rc->prev)
    rc->prev->next = rc->next;
  else if (w->conns == rc)
    w->conns = rc->next;
  if (rc->next) rc->next->prev = rc->prev;
  rc->next = rc->prev = NULL;
  count(w, -1);
}

static void session_unlink(rt_worker *w, rs_ws_session *ss) {
  if (ss->prev)
    ss->prev->next = ss->next;
  else if (w->sessions == ss)
    w->sessions = ss->next;
  if (ss->next) ss->next->prev = ss->prev;
  ss->next = ss->prev = NULL;
  count(w, -1);
}

void rt_pending_add(rt_worker *w, rt_pending *p, rs_io_conn *io) {
  if (!w->pending.next) w->pending.next = w->pending.prev = &w->pending;
  p->io = io;
  p->prev = w->pending.prev;
  p->next = &w->pending;
  w->pending.prev->next = p;
  w->pending.prev = p;
}

void rt_pending_remove(rt_pending *p) {
  if (!p->next) return;
  p->prev->next = p->next;
  p->next->prev = p->prev;
  p->next = p->prev = NULL;
}

/* The worker is full (max_connections, or no descriptor left): the oldest connection that has
 * not set up yet is cut, so idle sockets cannot lock everyone out. True when one was. */
static bool shed_oldest_pending(rt_worker *w) {
  rt_pending *p = w->pending.next;
  if (!p || p == &w->pending) return false;
  rt_pending_remove(p);
  rs_io_conn_abort(p->io, RS_ERR_CLOSED, "the server is full and this connection had not set up");
  return true;
}

void rt_server_conn_gone(rt_conn *rc, int err, const char *reason) {
  (void)err, (void)reason;
  rt_worker *w = rc->worker;
  rs_server *s = rc->server;
  rt_pending_remove(&rc->pending);
  if (s->opt.on_disconnect) s->opt.on_disconnect(s, rc->conn, rc->app_user, s->opt.user);
  conn_unlink(w, rc);
  rt_conn_destroy(rc);
  worker_maybe_finish(w);
}

/* Makes the engine of an accepted connection and attaches it to `io` (length-prefixed), or to
 * the WebSocket `ws` whose handshake chose RSocket; `user` is the connection's user until
 * on_connect. Returns 0, or RS_ERR_NOMEM (then `io` is the caller's to abort). */
static int start_engine(rt_worker *w, rs_io_conn *io, rt_ws *ws, void *user) {
  rs_server *s = w->server;
  rt_conn *rc = calloc(1, sizeof *rc);
  rs_conn_settings st = s->opt.settings;
  st.role = RS_CONN_SERVER;
  st.framing = ws ? RS_FRAMING_MESSAGE : RS_FRAMING_LENGTH_PREFIXED;
  if (st.resume && !st.resume_store) st.resume_store = s->store;
  if (!rc || rs_conn_new(&rc->conn, &st, &rt_forward_callbacks, rc, NULL, uv_now(w->loop))) {
    free(rc);
    if (!ws) rs_io_conn_abort(io, RS_ERR_NOMEM, "out of memory");
    return RS_ERR_NOMEM;
  }
  rc->loop = w->loop;
  uv_timer_init(w->loop, &rc->timer);
  rc->timer.data = rc;
  rc->app = &s->opt.callbacks;
  rc->server = s;
  rc->worker = w;
  rc->ws = ws != NULL;
  conn_link(w, rc);
  rt_conn_set_tap(rc, s->opt.on_frame);
  rc->on_drained = s->opt.on_drained;
  rc->app_user = user;
  rt_pending_add(w, &rc->pending, io);
  if (s->opt.on_connect) rc->app_user = s->opt.on_connect(s, rc->conn, s->opt.user);
  if (ws)
    rt_conn_adopt_ws(rc, io, ws);
  else
    rt_conn_attach_io(rc, io, &s->uri, NULL, true);
  return 0;
}

/* What a ws:// connection keeps beside its rs_io_conn, in the same block (rs_io_conn_extra): its
 * WebSocket transport, then its session. A session that becomes RSocket leaves its 72 bytes
 * unused until the connection goes; plain WebSocket sessions (a gateway's idle browsers) are
 * one allocation instead of three. */
static size_t ws_extra(void) {
  return rt_ws_size() + ((sizeof(rs_ws_session) + 7) & ~(size_t)7);
}

/* ws:// and wss://: every connection starts as a session whose handshake decides what it
 * becomes (rt_server_decide). */
static void accept_ws(rt_worker *w, rs_io_conn *io) {
  rs_server *s = w->server;
  uint8_t *extra = rs_io_conn_extra(io);
  rs_ws_session *ss = rt_session_new_in(extra + rt_ws_size(), s->opt.messages, NULL);
  ss->worker = w;
  ss->next = w->sessions;
  if (w->sessions) w->sessions->prev = ss;
  w->sessions = ss;
  count(w, 1);
  ss->ws = rt_ws_attach_in(extra, io, &s->opt.ws, s->uri.path, &rt_session_ops, ss);
  if (ss->ws) rt_pending_add(w, rt_ws_pending(ss->ws), io); /* until the handshake is decided */
  if (!ss->ws) {
    session_unlink(w, ss);
    rt_session_free(ss);
    rs_io_conn_abort(io, RS_ERR_NOMEM, "out of memory");
  }
}

/* A plain HTTP request: on_http answers GET and HEAD. */
static void answer_http(rs_server *s, const rs_http_request *req, rt_ws_verdict *v) {
  rs_http_response res = {.in_hook = true};
  bool get = req->method.len == 3 && memcmp(req->method.ptr, "GET", 3) == 0;
  res.head_only = req->method.len == 4 && memcmp(req->method.ptr, "HEAD", 4) == 0;
  if (!get && !res.head_only) {
    static const char *const allow[] = {"Allow: GET, HEAD", NULL};
    const char *body = "only GET and HEAD are served here\n";
    rs_http_respond(&res, 405, "text/plain", allow, body, strlen(body));
  } else {
    s->opt.on_http(s, req, &res, s->opt.user);
  }
  res.in_hook = false;
  if (!res.answered) {
    res.in_hook = true;
    const char *body = "not found\n";
    rs_http_respond(&res, 404, "text/plain", NULL, body, strlen(body));
  }
  v->http = res.out;
  v->http_len = res.out_len;
}

/* The whole Origin, NUL-terminated, for rs_ws_transport_options.origin_allowed. */
static bool origin_ok(rs_server *s, const rs_http_request *req) {
  if (!s->opt.ws.origin_allowed) return true;
  if (!req->origin.ptr) return s->opt.ws.origin_allowed(NULL, s->opt.user);
  char *origin = malloc(req->origin.len + 1);
  if (!origin) return false;
  memcpy(origin, req->origin.ptr, req->origin.len);
  origin[req->origin.len] = '\0';
  bool ok = s->opt.ws.origin_allowed(origin, s->opt.user);
  free(origin);
  return ok;
}

void rt_server_decide(rs_ws_session *ss, rt_ws *ws, const rs_http_request *req, rt_ws_verdict *v) {
  rs_server *s = ss->worker->server;
  rt_pending_remove(rt_ws_pending(ws)); /* decided (an RSocket engine waits for SETUP on its own) */
  if (!req->websocket) {
    if (s->opt.on_http) answer_http(s, req, v);
    return;
  }
  if (!origin_ok(s, req)) {
    v->d = (rs_ws_decision){.verdict = RS_WS_REFUSE, .status = 403, .reason = "origin not allowed"};
    return;
  }
  if (s->opt.on_upgrade) s->opt.on_upgrade(s, req, &v->d, s->opt.user);
  if (v->d.verdict == RS_WS_MESSAGES) {
    if (!s->opt.messages) {
      v->d = (rs_ws_decision){
          .verdict = RS_WS_REFUSE, .status = 500, .reason = "no handler for WebSocket messages"};
      return;
    }
    ss->user = v->d.user;
    return;
  }
  if (v->d.verdict != RS_WS_RSOCKET) return;
  /* RSocket: the engine takes the transport over and this session goes away. */
  rs_io_conn *io = rt_ws_io(ws);
  if (start_engine(ss->worker, io, ws, v->d.user) != 0) {
    v->d = (rs_ws_decision){.verdict = RS_WS_REFUSE, .status = 503, .reason = "out of memory"};
    return;
  }
  ss->ws = NULL;
  ss->finished = true;
  session_unlink(ss->worker, ss);
  rt_session_free(ss);
}

uv_loop_t *rt_worker_loop(const rt_worker *w) {
  return w->loop;
}

rs_server *rt_worker_server(const rt_worker *w) {
  return w->server;
}

size_t rt_worker_watermark(const rt_worker *w) {
  return w->server->opt.settings.output_high_watermark;
}

void rt_server_session_gone(rs_ws_session *ss) {
  rt_worker *w = ss->worker;
  session_unlink(w, ss);
  rt_session_free(ss);
  worker_maybe_finish(w);
}

/* Stops a session: a graceful stop closes it with 1001, otherwise (or while its handshake is
 * still going on) the connection is cut. */
static void stop_session(rs_ws_session *ss, bool graceful, const char *why) {
  if (!ss->ws) return;
  if (graceful && ss->open)
    rs_ws_session_close(ss, RS_WS_CLOSE_GOING_AWAY, why);
  else
    rs_io_conn_abort(rt_ws_io(ss->ws), RS_ERR_CLOSED, why);
}

static void on_connection(uv_stream_t *listener, int status) {
  rt_worker *w = listener->data;
  rs_server *s = w->server;
  if (status == UV_EMFILE || status == UV_ENFILE) shed_oldest_pending(w); /* room for the next */
  if (status < 0 || w->stopping) return;
  /* The handle, the connection and a WebSocket's transport and session: one block. */
  rs_io_conn *io = rs_io_conn_accept(w->io, listener, s->uri.websocket ? ws_extra() : 0);
  if (!io) return;
  if (s->opt.max_connections && w->nconns >= s->opt.max_connections && !shed_oldest_pending(w)) {
    rs_io_conn_abort(io, RS_ERR_CLOSED, "full"); /* full of working connections: refuse */
    return;
  }
  rs_tls *tls = NULL;
  if (s->tls && !(tls = rs_tls_new(s->tls, true, NULL))) {
    rs_io_conn_abort(io, RS_ERR_NOMEM, "out of memory");
    return;
  }
  rs_io_conn_set_tls(io, tls);
  if (s->uri.websocket)
    accept_ws(w, io);
  else
    start_engine(w, io, NULL, NULL);
}

static void server_free_when_closed(rs_server *s);

/* Close callback of worker handles: those of worker 0 live on the caller's loop in the server's
 * memory, which must outlive them. */
static void worker_handle_closed(uv_handle_t *h) {
  rt_worker *w = h->data;
  if (w->index != 0) return;
  w->server->closing--;
  server_free_when_closed(w->server);
}

static void close_worker_handle(rt_worker *w, uv_handle_t *h) {
  h->data = w;
  if (w->index == 0) w->server->closing++;
  uv_close(h, worker_handle_closed);
}

static void worker_close_listener(rt_worker *w) {
  if (!w->listening) return;
  w->listening = false;
  for (int i = 0; i < w->nlisteners; i++) close_worker_handle(w, (uv_handle_t *)&w->listeners[i]);
}

/* A graceful stop took too long: what is still open is closed with CONNECTION_ERROR. The
 * session ends (a resumable one is not kept waiting for a RESUME that would find no server). */
static void on_drain_timeout(uv_timer_t *t) {
  rt_worker *w = t->data;
  for (rt_conn *rc = w->conns, *next; rc; rc = next) {
    next = rc->next;
    if (!rc->io) continue;
    rs_conn_abort(rc->conn, rs_bytes_str("server stopped"));
    rs_conn_handle_expiry(rc->conn, uv_now(w->loop));
    rs_io_conn_wake(rc->io);
  }
  for (rs_ws_session *ss = w->sessions, *next; ss; ss = next) {
    next = ss->next;
    stop_session(ss, false, "server stopped");
  }
}

static void worker_stop(rt_worker *w, bool graceful);

static void on_stop_async(uv_async_t *a) {
  rt_worker *w = a->data;
  worker_stop(w, atomic_load(&w->graceful));
}

/* A second rs_server_stop(s, false) during a graceful stop: what is still open is cut now. */
static void on_abort_posted(void *arg) {
  rt_worker *w = arg;
  if (!w->finished) worker_stop(w, false);
}

static void worker_stop(rt_worker *w, bool graceful) {
  w->stopping = true;
  worker_close_listener(w);
  uint32_t drain_ms = w->server->opt.drain_timeout_ms;
  if (graceful && drain_ms && (w->conns || w->sessions) && !w->drain_on) {
    uv_timer_init(w->loop, &w->drain);
    w->drain.data = w;
    w->drain_on = true;
    uv_timer_start(&w->drain, on_drain_timeout, drain_ms, 0);
  }
  for (rt_conn *rc = w->conns, *next; rc; rc = next) {
    next = rc->next;
    if (graceful && rc->io) {
      rs_conn_close(rc->conn, rs_bytes_str("server shutting down"));
      rs_io_conn_wake(rc->io);
    } else if (rc->io) {
      rs_io_conn_abort(rc->io, RS_ERR_CLOSED, "server stopped");
    } else {
      /* A detached session: end it first, so that its streams and the connection get their
       * closing callbacks and the application frees what it holds for them. */
      rs_conn_abort(rc->conn, rs_bytes_str("server stopped"));
      rs_conn_handle_expiry(rc->conn, uv_now(w->loop));
      rt_server_conn_gone(rc, RS_ERR_CLOSED, "server stopped");
    }
  }
  for (rs_ws_session *ss = w->sessions, *next; ss; ss = next) {
    next = ss->next;
    stop_session(ss, graceful, graceful ? "server shutting down" : "server stopped");
  }
  worker_maybe_finish(w);
}

static void server_maybe_done(rs_server *s);

static void worker_maybe_finish(rt_worker *w) {
  if (!w->stopping || w->nconns > 0 || w->finished) return;
  w->finished = true;
  rs_server *s = w->server;
  close_worker_handle(w, (uv_handle_t *)&w->stop_async);
  if (w->drain_on) close_worker_handle(w, (uv_handle_t *)&w->drain);
  rs_io_loop_put(w->io);
  w->io = NULL;
  /* What was posted to this worker runs now, while its state still exists. */
  rt_post_release(w->loop);
  if (s->opt.on_worker_stop) s->opt.on_worker_stop(s, w->index, w->loop, w->user, s->opt.user);
  if (w->index == 0) {
    atomic_fetch_add(&w->server->finished, 1);
    server_maybe_done(w->server);
  }
  /* Threads: their loop runs out of handles and uv_run returns (see worker_main). */
}

long rs_runtime_raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return RS_ERR_IO;
  if (rl.rlim_cur < rl.rlim_max) {
    struct rlimit want = {rl.rlim_max, rl.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl.rlim_cur = rl.rlim_max;
  }
  return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)LONG_MAX ? LONG_MAX
                                                                        : (long)rl.rlim_cur;
}

void rs_runtime_tune_malloc(void) {
#ifdef __GLIBC__
  mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
  mallopt(M_TOP_PAD, 16 * 1024 * 1024);
#endif
}

void rs_runtime_run_busy(uv_loop_t *loop) {
  while (uv_run(loop, UV_RUN_NOWAIT) != 0) {
  }
}

/* Moves start-up to `phase` (caller's thread). */
static void start_set_phase(rs_server *s, int phase) {
  pthread_mutex_lock(&s->start_mu);
  s->start_phase = phase;
  pthread_cond_broadcast(&s->start_cv);
  pthread_mutex_unlock(&s->start_mu);
}

/* Runs on_worker_start on the worker's thread, then waits until every worker's has returned.
 * Returns false when start-up was abandoned before the hooks (the loop must not run). */
static bool worker_start(rt_worker *w) {
  rs_server *s = w->server;
  pthread_mutex_lock(&s->start_mu);
  while (s->start_phase < START_HOOKS) pthread_cond_wait(&s->start_cv, &s->start_mu);
  bool go = s->start_phase != START_ABORT;
  pthread_mutex_unlock(&s->start_mu);
  if (!go) return false;
  if (s->opt.on_worker_start) w->user = s->opt.on_worker_start(s, w->index, w->loop, s->opt.user);
  pthread_mutex_lock(&s->start_mu);
  s->hooks_done++;
  pthread_cond_broadcast(&s->start_cv);
  if (w->index == 0) {
    while (s->hooks_done < s->nworkers) pthread_cond_wait(&s->start_cv, &s->start_mu);
    s->start_phase = START_ACCEPT;
    pthread_cond_broadcast(&s->start_cv);
  }
  while (s->start_phase < START_ACCEPT) pthread_cond_wait(&s->start_cv, &s->start_mu);
  pthread_mutex_unlock(&s->start_mu);
  return true;
}

static void *worker_main(void *arg) {
  rt_worker *w = arg;
  if (!worker_start(w)) return NULL;
  if (w->server->opt.busy_poll)
    rs_runtime_run_busy(w->loop);
  else
    uv_run(w->loop, UV_RUN_DEFAULT);
  uv_loop_close(w->loop);
  atomic_fetch_add(&w->server->finished, 1);
  uv_async_send(&w->server->done_async);
  return NULL;
}

static void server_free(rs_server *s) {
  pthread_cond_destroy(&s->start_cv);
  pthread_mutex_destroy(&s->start_mu);
  rs_tls_ctx_free(s->tls);
  rs_resume_store_free(s->store);
  free(s->workers);
  free(s);
}

static void server_free_when_closed(rs_server *s) {
  if (!s->done_closed || s->closing > 0) return;
  void (*cb)(void *) = s->on_stopped;
  void *arg = s->stopped_arg;
  server_free(s);
  if (cb) cb(arg);
}

static void on_done_closed(uv_handle_t *h) {
  rs_server *s = h->data;
  s->done_closed = true;
  server_free_when_closed(s);
}

static void server_maybe_done(rs_server *s) {
  if (!s->stopping || s->joined || atomic_load(&s->finished) < s->nworkers) return;
  for (int i = 1; i < s->nworkers; i++) pthread_join(s->workers[i].thread, NULL);
  s->joined = true;
  uv_close((uv_handle_t *)&s->done_async, on_done_closed);
}

static void on_done_async(uv_async_t *a) {
  server_maybe_done(a->data);
}

/* Undoes worker_init, whole or in part, for a worker whose loop has not run. */
static void worker_unwind(rt_worker *w) {
  worker_close_listener(w);
  if (w->stop_async.data) uv_close((uv_handle_t *)&w->stop_async, NULL);
  rs_io_loop_put(w->io);
  w->io = NULL;
  if (w->posting) rt_post_release(w->loop);
  if (w->loop == &w->own_loop) {
    uv_run(w->loop, UV_RUN_DEFAULT);
    uv_loop_close(w->loop);
  }
}

static int worker_init(rs_server *s, rt_worker *w, int index, uv_loop_t *loop, char *err,
                       size_t errlen) {
  w->server = s;
  w->index = index;
  if (!loop) {
    if (uv_loop_init(&w->own_loop) != 0) {
      snprintf(err, errlen, "cannot create an event loop");
      return RS_ERR_IO;
    }
    loop = &w->own_loop;
  }
  w->loop = loop;
  int rc = rt_post_acquire(loop);
  if (rc != 0) {
    snprintf(err, errlen, "cannot create an event loop handle: %s", rs_strerror(rc));
    worker_unwind(w);
    return rc;
  }
  w->posting = true;
  w->io = rs_io_loop_get(w->loop); /* shared with the clients on this loop: one flush list, so
                                    * a wake from inside a flush is never left for later */
  if (!w->io) {
    worker_unwind(w);
    return RS_ERR_NOMEM;
  }
  int n = rs_io_listen_all(w->loop, s->uri.host, s->port, s->nworkers > 1, 1024, w->listeners,
                           RS_IO_MAX_LISTENERS, on_connection, err, errlen);
  if (n < 0) {
    worker_unwind(w);
    return n;
  }
  w->nlisteners = n;
  w->listening = true;
  for (int i = 0; i < n; i++) w->listeners[i].data = w;
  if (s->port == 0) s->port = rs_io_bound_port(&w->listeners[0]);
  uv_async_init(w->loop, &w->stop_async, on_stop_async);
  w->stop_async.data = w;
  return 0;
}

/* rs_server_start failed after the workers [0, n) were made: none has run; undo them. */
static void server_unwind(rs_server *s, int n) {
  for (int i = 0; i < n; i++) worker_unwind(&s->workers[i]);
  uv_close((uv_handle_t *)&s->done_async, NULL);
  uv_run(s->loop, UV_RUN_NOWAIT);
}

int rs_server_start(rs_server **out, uv_loop_t *loop, const rs_server_options *o, char *err,
                    size_t errlen) {
  char scratch[256];
  if (!err || !errlen) err = scratch, errlen = sizeof scratch;
  if (!out || !loop || !o || !o->uri) {
    snprintf(err, errlen, "rs_server_start: missing argument");
    return RS_ERR_INVALID_ARGUMENT;
  }
  rs_server *s = calloc(1, sizeof *s);
  if (!s) return RS_ERR_NOMEM;
  pthread_mutex_init(&s->start_mu, NULL);
  pthread_cond_init(&s->start_cv, NULL);
  rs_server_options_default(&s->opt);
  memcpy(&s->opt, o, o->struct_size && o->struct_size < sizeof *o ? o->struct_size : sizeof *o);
  s->opt.struct_size = sizeof s->opt;
  s->loop = loop;
  int rc = rs_uri_parse(o->uri, &s->uri, err, errlen);
  if (rc != 0) goto fail;
  s->port = s->uri.port;
  if (s->uri.websocket) {
    /* The first accept key loads libcrypto's digests (about 2 MB, once per process): now, not
     * at the first client's handshake, which would pay for it in latency. */
    char accept[29];
    (void)rs_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, accept);
  }
  if (s->uri.secure) {
    s->tls = rs_tls_ctx_server_files(o->cert_file, o->key_file, err);
    if (!s->tls) {
      rc = RS_ERR_INVALID_ARGUMENT;
      goto fail;
    }
  }
  if (s->opt.settings.resume && !s->opt.settings.resume_store) {
    s->store = rs_resume_store_new(NULL);
    if (!s->store) {
      rc = RS_ERR_NOMEM;
      goto fail;
    }
  }
  s->nworkers = o->workers > 0 ? o->workers : 1;
  if (s->nworkers > 1 && s->opt.settings.resume) {
    /* Sessions live in one loop's memory; a RESUME landing on another thread cannot reach them. */
    snprintf(err, errlen, "resumption needs a single worker (workers=%d)", s->nworkers);
    rc = RS_ERR_INVALID_ARGUMENT;
    goto fail;
  }
  s->workers = calloc((size_t)s->nworkers, sizeof *s->workers);
  if (!s->workers) {
    rc = RS_ERR_NOMEM;
    goto fail;
  }
  uv_async_init(loop, &s->done_async, on_done_async);
  s->done_async.data = s;
  for (int i = 0; i < s->nworkers; i++) {
    rc = worker_init(s, &s->workers[i], i, i == 0 ? loop : NULL, err, errlen);
    if (rc != 0) {
      server_unwind(s, i);
      goto fail;
    }
  }
  for (int i = 1; i < s->nworkers; i++) {
    if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0) {
      /* No hook has run yet: the threads made so far end without running their loops. */
      start_set_phase(s, START_ABORT);
      for (int j = 1; j < i; j++) pthread_join(s->workers[j].thread, NULL);
      server_unwind(s, s->nworkers);
      snprintf(err, errlen, "cannot start worker thread %d", i);
      rc = RS_ERR_IO;
      goto fail;
    }
  }
  start_set_phase(s, START_HOOKS);
  worker_start(&s->workers[0]); /* runs worker 0's hook, then lets every worker accept */
  snprintf(s->uri_text, sizeof s->uri_text, "%s://%s%s%s:%d%s", rs_uri_scheme_name(s->uri.scheme),
           strchr(s->uri.host, ':') ? "[" : "", s->uri.host, strchr(s->uri.host, ':') ? "]" : "",
           s->port, s->uri.websocket ? s->uri.path : "");
  *out = s;
  return 0;
fail:
  server_free(s);
  return rc;
}

int rs_server_port(const rs_server *s) {
  return s->port;
}

const char *rs_server_uri(const rs_server *s) {
  return s->uri_text;
}

size_t rs_server_connection_count(const rs_server *s) {
  return atomic_load(&((rs_server *)s)->nconns);
}

int rs_server_workers(const rs_server *s) {
  return s->nworkers;
}

uv_loop_t *rs_server_worker_loop(const rs_server *s, int index) {
  return index >= 0 && index < s->nworkers ? s->workers[index].loop : NULL;
}

void *rs_server_worker_user(const rs_server *s, int index) {
  return index >= 0 && index < s->nworkers ? s->workers[index].user : NULL;
}

void *rs_runtime_worker_user(rs_conn *conn) {
  rt_conn *rc = conn ? rs_conn_user(conn) : NULL;
  return rc && rc->worker ? rc->worker->user : NULL;
}

int rs_runtime_worker_index(rs_conn *conn) {
  rt_conn *rc = conn ? rs_conn_user(conn) : NULL;
  return rc && rc->worker ? rc->worker->index : -1;
}

void rs_server_stop(rs_server *s, bool graceful, void (*on_stopped)(void *), void *arg) {
  if (!s) return;
  if (s->stopping) {
    /* Already stopping gracefully: a non-graceful call cuts what is left. Worker 0 shares this
     * thread (skip it once finished); the other workers' loops refuse posts once they are. */
    if (graceful || s->aborting) return;
    s->aborting = true;
    for (int i = 0; i < s->nworkers; i++) {
      if (i == 0 && s->workers[0].finished) continue;
      rs_runtime_post(s->workers[i].loop, on_abort_posted, &s->workers[i]);
    }
    return;
  }
  s->stopping = true;
  s->on_stopped = on_stopped;
  s->stopped_arg = arg;
  for (int i = 0; i < s->nworkers; i++) {
    atomic_store(&s->workers[i].graceful, graceful);
    uv_async_send(&s->workers[i].stop_async);
  }
}
