/* rs_runtime_post and the server's worker hooks, on real loops and threads: order and exactly-once
 * delivery from many threads, posts racing a loop that closes, a flood next to a timer, and a
 * 4-worker server whose handlers hand each request to another worker over a real TCP client. */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "rsocket/runtime.h"

/* Fails the test if a loop runs this long: a hang is reported, not waited out. */
#define WATCHDOG_MS 120000

static void on_watchdog(uv_timer_t *t) {
  (void)t;
  fail_msg("the loop ran for %d s: something never finished", WATCHDOG_MS / 1000);
}

static void watchdog_start(uv_loop_t *loop, uv_timer_t *t) {
  uv_timer_init(loop, t);
  uv_timer_start(t, on_watchdog, WATCHDOG_MS, 0);
  uv_unref((uv_handle_t *)t); /* never keeps the loop alive by itself */
}

/* Closes the watchdog and every handle left, then the loop; fails if a handle stays open. */
static void loop_finish(uv_loop_t *loop, uv_timer_t *watchdog) {
  uv_close((uv_handle_t *)watchdog, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(loop), 0);
}

/* ---- argument checks and the loop's own thread ---- */

static int calls;

static void count_call(void *arg) {
  (void)arg;
  calls++;
}

static void test_post_arguments(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  assert_int_equal(rs_runtime_post(NULL, count_call, NULL), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_runtime_post(&loop, NULL, NULL), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_runtime_post(&loop, count_call, NULL), RS_ERR_CLOSED); /* not registered */
  assert_int_equal(rs_runtime_loop_init(NULL), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_runtime_loop_close(NULL), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_runtime_loop_close(&loop), RS_ERR_INVALID_ARGUMENT); /* none open */
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* Posting from the loop's own thread never runs fn inside the call; the registration is counted
 * and closing it runs what is still queued. */
static void test_post_same_thread_and_counted_registration(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  calls = 0;
  assert_int_equal(rs_runtime_loop_init(&loop), 0);
  assert_int_equal(rs_runtime_loop_init(&loop), 0);
  assert_int_equal(rs_runtime_post(&loop, count_call, NULL), 0);
  assert_int_equal(calls, 0);
  uv_run(&loop, UV_RUN_NOWAIT);
  assert_int_equal(calls, 1);
  /* Closing one of two registrations runs what was queued, and the loop still accepts posts. */
  assert_int_equal(rs_runtime_post(&loop, count_call, NULL), 0);
  assert_int_equal(rs_runtime_loop_close(&loop), 0);
  assert_int_equal(calls, 2);
  assert_int_equal(rs_runtime_post(&loop, count_call, NULL), 0);
  /* The last one: queued posts run inside the call, later ones fail. */
  assert_int_equal(rs_runtime_loop_close(&loop), 0);
  assert_int_equal(calls, 3);
  assert_int_equal(rs_runtime_post(&loop, count_call, NULL), RS_ERR_CLOSED);
  assert_int_equal(rs_runtime_loop_close(&loop), RS_ERR_INVALID_ARGUMENT);
  uv_run(&loop, UV_RUN_DEFAULT); /* the wake-up handle closes */
  assert_int_equal(calls, 3);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- many threads, exactly once, in order ---- */

#define POSTERS      4
#define PER_POSTER   20000
#define TOTAL_POSTED (POSTERS * PER_POSTER)

typedef struct order_item {
  int thread;
  int seq;
} order_item;

static uv_loop_t order_loop;
static pthread_t loop_thread;
static int next_seq[POSTERS];
static int order_ran, order_wrong_thread, order_out_of_order;

static void order_run(void *arg) {
  order_item *it = arg;
  if (!pthread_equal(pthread_self(), loop_thread)) order_wrong_thread++;
  if (it->seq != next_seq[it->thread]) order_out_of_order++;
  next_seq[it->thread] = it->seq + 1;
  free(it);
  /* The last item ends the registration from inside a batch. */
  if (++order_ran == TOTAL_POSTED) assert_int_equal(rs_runtime_loop_close(&order_loop), 0);
}

static atomic_int poster_failures;

static void *order_poster(void *arg) {
  int t = (int)(intptr_t)arg;
  for (int i = 0; i < PER_POSTER; i++) {
    order_item *it = malloc(sizeof *it);
    it->thread = t;
    it->seq = i;
    if (rs_runtime_post(&order_loop, order_run, it) != 0) {
      free(it);
      atomic_fetch_add(&poster_failures, 1);
    }
  }
  return NULL;
}

static void test_post_many_threads_exactly_once_in_order(void **state) {
  (void)state;
  uv_loop_init(&order_loop);
  uv_timer_t watchdog;
  watchdog_start(&order_loop, &watchdog);
  loop_thread = pthread_self();
  memset(next_seq, 0, sizeof next_seq);
  order_ran = order_wrong_thread = order_out_of_order = 0;
  atomic_store(&poster_failures, 0);
  assert_int_equal(rs_runtime_loop_init(&order_loop), 0);
  pthread_t th[POSTERS];
  for (int t = 0; t < POSTERS; t++)
    assert_int_equal(pthread_create(&th[t], NULL, order_poster, (void *)(intptr_t)t), 0);
  uv_run(&order_loop, UV_RUN_DEFAULT); /* returns once the last item closed the registration */
  for (int t = 0; t < POSTERS; t++) pthread_join(th[t], NULL);
  assert_int_equal(atomic_load(&poster_failures), 0);
  assert_int_equal(order_ran, TOTAL_POSTED);
  for (int t = 0; t < POSTERS; t++) assert_int_equal(next_seq[t], PER_POSTER);
  assert_int_equal(order_out_of_order, 0);
  assert_int_equal(order_wrong_thread, 0);
  loop_finish(&order_loop, &watchdog);
}

/* ---- posts racing the end of the registration ---- */

static uv_loop_t race_loop;
static int race_ran, race_close_at;
static atomic_int race_accepted;

static void race_run(void *arg) {
  free(arg);
  if (++race_ran == race_close_at) assert_int_equal(rs_runtime_loop_close(&race_loop), 0);
}

/* Posts until the loop refuses; each refused argument is freed here, each accepted one by
 * race_run, so ASan reports any item that was neither run nor refused. */
static void *race_poster(void *arg) {
  (void)arg;
  for (;;) {
    int *x = malloc(sizeof *x);
    int rc = rs_runtime_post(&race_loop, race_run, x);
    if (rc != 0) {
      free(x);
      if (rc != RS_ERR_CLOSED) atomic_fetch_add(&poster_failures, 1);
      return NULL;
    }
    atomic_fetch_add(&race_accepted, 1);
  }
}

static void test_post_races_close_never_drops(void **state) {
  (void)state;
  uint64_t rng = 42;
  for (int round = 0; round < 20; round++) {
    uv_loop_init(&race_loop);
    uv_timer_t watchdog;
    watchdog_start(&race_loop, &watchdog);
    race_ran = 0;
    race_close_at = 1 + (int)(tu_rand(&rng) % 5000);
    atomic_store(&race_accepted, 0);
    atomic_store(&poster_failures, 0);
    assert_int_equal(rs_runtime_loop_init(&race_loop), 0);
    pthread_t th[3];
    for (int t = 0; t < 3; t++)
      assert_int_equal(pthread_create(&th[t], NULL, race_poster, NULL), 0);
    uv_run(&race_loop, UV_RUN_DEFAULT);
    for (int t = 0; t < 3; t++) pthread_join(th[t], NULL);
    /* Every post that returned 0 ran exactly once; the rest were refused with RS_ERR_CLOSED. */
    assert_int_equal(atomic_load(&poster_failures), 0);
    assert_int_equal(race_ran, atomic_load(&race_accepted));
    assert_true(race_ran >= race_close_at);
    assert_int_equal(rs_runtime_post(&race_loop, race_run, NULL), RS_ERR_CLOSED);
    loop_finish(&race_loop, &watchdog);
  }
}

/* ---- a flood does not starve the loop ---- */

static uv_loop_t flood_loop;
static uv_timer_t flood_timer;
static bool timer_fired;
static int chain_len;

#define CHAIN_CAP 1000000

/* Each run posts the next one from the loop's thread: a loop that ran its queue until empty
 * would get to its timer only when the chain ends at its cap. */
static void chain_run(void *arg) {
  (void)arg;
  if (++chain_len < CHAIN_CAP && !timer_fired)
    assert_int_equal(rs_runtime_post(&flood_loop, chain_run, NULL), 0);
}

static void on_chain_timer(uv_timer_t *t) {
  (void)t;
  timer_fired = true;
}

static void test_post_self_reposting_does_not_starve_timer(void **state) {
  (void)state;
  uv_loop_init(&flood_loop);
  uv_timer_t watchdog;
  watchdog_start(&flood_loop, &watchdog);
  timer_fired = false;
  chain_len = 0;
  assert_int_equal(rs_runtime_loop_init(&flood_loop), 0);
  assert_int_equal(rs_runtime_post(&flood_loop, chain_run, NULL), 0);
  uv_timer_init(&flood_loop, &flood_timer);
  uv_timer_start(&flood_timer, on_chain_timer, 1, 0);
  while (!timer_fired) uv_run(&flood_loop, UV_RUN_ONCE);
  assert_true(chain_len >= 1);
  assert_true(chain_len < CHAIN_CAP); /* the timer came while the chain went on */
  uv_close((uv_handle_t *)&flood_timer, NULL);
  assert_int_equal(rs_runtime_loop_close(&flood_loop), 0); /* runs the last link */
  loop_finish(&flood_loop, &watchdog);
}

#define FLOOD_CAP       4000000 /* posts per thread at most: the test ends even if starved */
#define FLOOD_IN_FLIGHT 50000   /* posted and not yet run, at most (bounds memory) */

static atomic_long flood_posted, flood_ran;
static atomic_bool flood_stop, flood_capped;
static long ran_when_fired;

static void flood_run(void *arg) {
  (void)arg;
  atomic_fetch_add(&flood_ran, 1);
}

static void *flood_poster(void *arg) {
  (void)arg;
  for (long i = 0; i < FLOOD_CAP && !atomic_load(&flood_stop); i++) {
    while (atomic_load(&flood_posted) - atomic_load(&flood_ran) > FLOOD_IN_FLIGHT &&
           !atomic_load(&flood_stop)) {
      sched_yield();
    }
    if (rs_runtime_post(&flood_loop, flood_run, NULL) != 0) {
      atomic_fetch_add(&poster_failures, 1);
      return NULL;
    }
    atomic_fetch_add(&flood_posted, 1);
  }
  if (!atomic_load(&flood_stop)) atomic_store(&flood_capped, true);
  return NULL;
}

static void on_flood_timer(uv_timer_t *t) {
  ran_when_fired = atomic_load(&flood_ran);
  timer_fired = true;
  atomic_store(&flood_stop, true);
  uv_close((uv_handle_t *)t, NULL);
}

/* Starts the timer once the flood is running on the loop. */
static void flood_first(void *arg) {
  (void)arg;
  uv_timer_start(&flood_timer, on_flood_timer, 1, 0);
}

static void test_post_flood_from_threads_does_not_starve_timer(void **state) {
  (void)state;
  uv_loop_init(&flood_loop);
  uv_timer_t watchdog;
  watchdog_start(&flood_loop, &watchdog);
  timer_fired = false;
  atomic_store(&flood_posted, 0);
  atomic_store(&flood_ran, 0);
  atomic_store(&flood_stop, false);
  atomic_store(&flood_capped, false);
  atomic_store(&poster_failures, 0);
  uv_timer_init(&flood_loop, &flood_timer);
  assert_int_equal(rs_runtime_loop_init(&flood_loop), 0);
  pthread_t th[2];
  for (int t = 0; t < 2; t++) assert_int_equal(pthread_create(&th[t], NULL, flood_poster, NULL), 0);
  while (atomic_load(&flood_posted) == 0) sched_yield();
  assert_int_equal(rs_runtime_post(&flood_loop, flood_first, NULL), 0);
  while (!timer_fired) uv_run(&flood_loop, UV_RUN_ONCE);
  for (int t = 0; t < 2; t++) pthread_join(th[t], NULL);
  /* The timer fired while the threads were still posting, not after they ran out. */
  assert_false(atomic_load(&flood_capped));
  assert_int_equal(atomic_load(&poster_failures), 0);
  assert_true(ran_when_fired > 0);
  assert_int_equal(rs_runtime_loop_close(&flood_loop), 0);
  assert_int_equal(atomic_load(&flood_ran), atomic_load(&flood_posted));
  loop_finish(&flood_loop, &watchdog);
}

/* ---- a client's loop accepts posts while the client exists ---- */

static rs_client_event client_last_event;

static void on_client_event(rs_client *c, rs_client_event ev, const char *msg, void *user) {
  (void)c, (void)msg, (void)user;
  client_last_event = ev;
}

static void test_post_to_client_loop(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_timer_t watchdog;
  watchdog_start(&loop, &watchdog);
  calls = 0;
  rs_client_options o;
  rs_client_options_default(&o);
  o.uri = "tcp://127.0.0.1:1"; /* refused: the client ends by itself */
  o.on_event = on_client_event;
  rs_client *c;
  char err[256];
  assert_int_equal(rs_client_start(&c, &loop, &o, err, sizeof err), 0);
  assert_int_equal(rs_runtime_post(&loop, count_call, NULL), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(client_last_event, RS_CLIENT_CLOSED);
  assert_int_equal(calls, 1);
  assert_int_equal(rs_runtime_post(&loop, count_call, NULL), RS_ERR_CLOSED); /* client gone */
  loop_finish(&loop, &watchdog);
}

/* ---- worker hooks and work handed between the workers of a server ---- */

#define WORKERS  4
#define CLIENTS  12
#define REQUESTS 5

/* Per-worker state, made by on_worker_start on the worker's thread; only that thread touches
 * it afterwards (TSan would notice otherwise). */
typedef struct worker_state {
  int index;
  pthread_t thread;
  int open_conns; /* connected and not yet disconnected */
  int served;     /* jobs from other workers this worker answered */
  int handled;    /* requests its connections received */
} worker_state;

/* Per connection, on its worker's thread; outlives the connection while answers are owed. */
typedef struct conn_state {
  rs_server *server;
  rs_conn *conn; /* NULL once disconnected */
  int refs;      /* the connection itself + answers on their way back */
} conn_state;

/* One request handed from worker `from` to worker `to` and back. */
typedef struct job {
  rs_server *server;
  conn_state *cs;
  uint32_t sid;
  int from, to;
  char text[64];
} job;

typedef struct server_record {
  atomic_int starts[WORKERS], stops[WORKERS];
  pthread_t start_thread[WORKERS], stop_thread[WORKERS];
  uv_loop_t *start_loop[WORKERS];
  void *start_user[WORKERS], *stop_user[WORKERS];
  int conns_at_stop[WORKERS];
  int served[WORKERS], handled[WORKERS];
  atomic_int errors; /* wrong thread, failed post, unexpected call */
} server_record;

static server_record rec;
static void *const server_user_tag = &rec;

static void *on_worker_start(rs_server *s, int i, uv_loop_t *loop, void *server_user) {
  if (server_user != server_user_tag || i < 0 || i >= WORKERS) {
    atomic_fetch_add(&rec.errors, 1);
    return NULL;
  }
  worker_state *w = calloc(1, sizeof *w);
  w->index = i;
  w->thread = pthread_self();
  atomic_fetch_add(&rec.starts[i], 1);
  rec.start_thread[i] = pthread_self();
  rec.start_loop[i] = loop;
  rec.start_user[i] = w;
  /* The server knows its loops already; this worker's is the one it runs on. */
  if (rs_server_workers(s) != WORKERS || rs_server_worker_loop(s, i) != loop)
    atomic_fetch_add(&rec.errors, 1);
  return w;
}

static void on_worker_stop(rs_server *s, int i, uv_loop_t *loop, void *worker_user,
                           void *server_user) {
  worker_state *w = worker_user;
  if (server_user != server_user_tag || i < 0 || i >= WORKERS ||
      rs_server_worker_loop(s, i) != loop) {
    atomic_fetch_add(&rec.errors, 1);
    return;
  }
  atomic_fetch_add(&rec.stops[i], 1);
  rec.stop_thread[i] = pthread_self();
  rec.stop_user[i] = w;
  rec.conns_at_stop[i] = w ? w->open_conns : -1;
  rec.served[i] = w ? w->served : -1;
  rec.handled[i] = w ? w->handled : -1;
  free(w);
}

/* Checks that the caller runs on the thread of worker `i`. */
static worker_state *on_worker(rs_server *s, int i) {
  worker_state *w = rs_server_worker_user(s, i);
  if (!w || w->index != i || !pthread_equal(w->thread, pthread_self())) {
    atomic_fetch_add(&rec.errors, 1);
    return NULL;
  }
  return w;
}

static void *on_connect(rs_server *s, rs_conn *conn, void *server_user) {
  (void)server_user;
  worker_state *w = on_worker(s, rs_runtime_worker_index(conn));
  if (!w || rs_runtime_worker_user(conn) != w) atomic_fetch_add(&rec.errors, 1);
  if (w) w->open_conns++;
  conn_state *cs = calloc(1, sizeof *cs);
  cs->server = s;
  cs->conn = conn;
  cs->refs = 1;
  return cs;
}

static void conn_state_unref(conn_state *cs) {
  if (--cs->refs == 0) free(cs);
}

static void on_disconnect(rs_server *s, rs_conn *conn, void *conn_user, void *server_user) {
  (void)server_user;
  worker_state *w = on_worker(s, rs_runtime_worker_index(conn));
  if (w) w->open_conns--;
  conn_state *cs = conn_user;
  cs->conn = NULL;
  conn_state_unref(cs);
}

/* Back on the worker that owns the connection: answer, if it is still there. */
static void job_answer(void *arg) {
  job *j = arg;
  on_worker(j->server, j->from);
  if (j->cs->conn) {
    rs_payload p = rs_payload_data(rs_bytes_str(j->text));
    if (rs_conn_send_payload(j->cs->conn, j->sid, &p, true) != 0) atomic_fetch_add(&rec.errors, 1);
  }
  conn_state_unref(j->cs);
  free(j);
}

/* On the other worker: do the work there, then post the answer back. */
static void job_serve(void *arg) {
  job *j = arg;
  worker_state *w = on_worker(j->server, j->to);
  if (w) w->served++;
  size_t n = strlen(j->text);
  snprintf(j->text + n, sizeof j->text - n, " %d>%d>%d", j->from, j->to, j->from);
  if (rs_runtime_post(rs_server_worker_loop(j->server, j->from), job_answer, j) != 0) {
    atomic_fetch_add(&rec.errors, 1); /* cannot happen while the server runs */
    free(j);
  }
}

static int on_request(rs_conn *conn, const rs_request *req, void *user) {
  conn_state *cs = user;
  int i = rs_runtime_worker_index(conn);
  worker_state *w = on_worker(cs->server, i);
  if (!w || req->type != RS_FRAME_REQUEST_RESPONSE) return -1;
  w->handled++;
  job *j = calloc(1, sizeof *j);
  j->server = cs->server;
  j->cs = cs;
  j->sid = req->stream_id;
  j->from = i;
  j->to = (i + 1) % WORKERS;
  snprintf(j->text, sizeof j->text, "%.*s", (int)req->payload.data.len,
           (const char *)req->payload.data.ptr);
  cs->refs++;
  if (rs_runtime_post(rs_server_worker_loop(cs->server, j->to), job_serve, j) != 0) {
    atomic_fetch_add(&rec.errors, 1);
    cs->refs--;
    free(j);
    return -1;
  }
  return 0;
}

/* The client side, on the test's loop (also worker 0's). */
static rs_server *the_server;
static rs_client *clients[CLIENTS];
static int answered, bad_answers;
static bool stopped;
static pthread_t late_poster;
static atomic_int late_accepted, late_ran;

static void late_run(void *arg) {
  (void)arg;
  /* Runs on worker 3's thread, before its on_worker_stop (its state may be gone by then:
   * compare with the recorded thread). */
  if (!pthread_equal(pthread_self(), rec.start_thread[3]) || atomic_load(&rec.stops[3]) != 0)
    atomic_fetch_add(&rec.errors, 1);
  atomic_fetch_add(&late_ran, 1);
}

/* Posts to worker 3 while the server stops, until the loop refuses. */
static void *late_poster_main(void *arg) {
  uv_loop_t *loop = arg;
  for (;;) {
    while (atomic_load(&late_accepted) - atomic_load(&late_ran) > 10000) sched_yield();
    int rc = rs_runtime_post(loop, late_run, NULL);
    if (rc != 0) {
      if (rc != RS_ERR_CLOSED) atomic_fetch_add(&rec.errors, 1);
      return NULL;
    }
    atomic_fetch_add(&late_accepted, 1);
  }
}

static void on_stopped(void *arg) {
  (void)arg;
  stopped = true;
}

static void on_client_payload(rs_conn *conn, uint32_t sid, void *su, const rs_payload *p,
                              unsigned flags, void *user) {
  (void)conn, (void)sid, (void)flags, (void)user;
  /* "request <n> a>b>a" with b the next worker after a. */
  int from = -1, to = -1, back = -1;
  char text[64];
  snprintf(text, sizeof text, "%.*s", (int)p->data.len, (const char *)p->data.ptr);
  const char *hop = strchr(text, ' ') ? strrchr(text, ' ') + 1 : "";
  char expect[32];
  snprintf(expect, sizeof expect, "request %d", (int)(intptr_t)su);
  if (sscanf(hop, "%d>%d>%d", &from, &to, &back) != 3 || from < 0 || from >= WORKERS ||
      to != (from + 1) % WORKERS || back != from || strncmp(text, expect, strlen(expect)) != 0)
    bad_answers++;
  if (++answered < CLIENTS * REQUESTS) return;
  /* All answered: stop everything while a thread keeps posting to worker 3. */
  pthread_create(&late_poster, NULL, late_poster_main, rs_server_worker_loop(the_server, 3));
  for (int c = 0; c < CLIENTS; c++) rs_client_close(clients[c], true);
  rs_server_stop(the_server, true, on_stopped, NULL);
}

static void test_worker_hooks_and_cross_worker_posts(void **state) {
  (void)state;
  memset(&rec, 0, sizeof rec);
  answered = bad_answers = 0;
  stopped = false;
  atomic_store(&late_accepted, 0);
  atomic_store(&late_ran, 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_timer_t watchdog;
  watchdog_start(&loop, &watchdog);

  rs_server_options so;
  rs_server_options_default(&so);
  so.uri = "tcp://127.0.0.1:0";
  so.workers = WORKERS;
  so.user = server_user_tag;
  so.on_worker_start = on_worker_start;
  so.on_worker_stop = on_worker_stop;
  so.on_connect = on_connect;
  so.on_disconnect = on_disconnect;
  so.callbacks.struct_size = sizeof so.callbacks;
  so.callbacks.on_request = on_request;
  char err[256];
  assert_int_equal(rs_server_start(&the_server, &loop, &so, err, sizeof err), 0);
  /* Every start hook has returned, once each, worker 0's on this thread. */
  assert_int_equal(rs_server_workers(the_server), WORKERS);
  assert_null(rs_server_worker_loop(the_server, WORKERS));
  assert_null(rs_server_worker_loop(the_server, -1));
  assert_ptr_equal(rs_server_worker_loop(the_server, 0), &loop);
  assert_true(pthread_equal(rec.start_thread[0], pthread_self()));
  for (int i = 0; i < WORKERS; i++) {
    assert_int_equal(atomic_load(&rec.starts[i]), 1);
    assert_ptr_equal(rec.start_loop[i], rs_server_worker_loop(the_server, i));
    assert_ptr_equal(rs_server_worker_user(the_server, i), rec.start_user[i]);
    for (int k = 0; k < i; k++)
      assert_false(pthread_equal(rec.start_thread[k], rec.start_thread[i]));
  }

  char uri[128];
  snprintf(uri, sizeof uri, "tcp://127.0.0.1:%d", rs_server_port(the_server));
  for (int c = 0; c < CLIENTS; c++) {
    rs_client_options co;
    rs_client_options_default(&co);
    co.uri = uri;
    co.callbacks.struct_size = sizeof co.callbacks;
    co.callbacks.on_payload = on_client_payload;
    assert_int_equal(rs_client_start(&clients[c], &loop, &co, err, sizeof err), 0);
    /* A client has no worker. */
    assert_null(rs_runtime_worker_user(rs_client_conn(clients[c])));
    assert_int_equal(rs_runtime_worker_index(rs_client_conn(clients[c])), -1);
    for (int r = 0; r < REQUESTS; r++) {
      char text[32];
      int n = c * REQUESTS + r;
      snprintf(text, sizeof text, "request %d", n);
      rs_payload p = rs_payload_data(rs_bytes_str(text));
      assert_true(rs_conn_request_response(rs_client_conn(clients[c]), &p, (void *)(intptr_t)n) >
                  0);
    }
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  pthread_join(late_poster, NULL);

  assert_true(stopped);
  assert_int_equal(answered, CLIENTS * REQUESTS);
  assert_int_equal(bad_answers, 0);
  assert_int_equal(atomic_load(&rec.errors), 0);
  int handled = 0, served = 0, busy = 0;
  for (int i = 0; i < WORKERS; i++) {
    /* Once, on the worker's own thread, after its last connection, with its own pointer. */
    assert_int_equal(atomic_load(&rec.stops[i]), 1);
    assert_true(pthread_equal(rec.stop_thread[i], rec.start_thread[i]));
    assert_ptr_equal(rec.stop_user[i], rec.start_user[i]);
    assert_int_equal(rec.conns_at_stop[i], 0);
    /* Worker i+1 answered exactly what worker i's connections received. */
    assert_int_equal(rec.served[(i + 1) % WORKERS], rec.handled[i]);
    handled += rec.handled[i];
    served += rec.served[i];
    busy += rec.handled[i] > 0;
  }
  assert_int_equal(handled, CLIENTS * REQUESTS);
  assert_int_equal(served, CLIENTS * REQUESTS);
  /* SO_REUSEPORT spread 12 connections over more than one worker (all on one: p = 4^-11). */
  assert_true(busy >= 2);
  /* Posts racing the stop: each accepted one ran on worker 3, the first refused ended it. */
  assert_int_equal(atomic_load(&late_ran), atomic_load(&late_accepted));
  loop_finish(&loop, &watchdog);
}

/* A caller built against version 1 of rs_server_options: whatever follows its struct is never
 * read as hooks. */
static void test_server_options_version_1(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct {
    rs_server_options o;
    char poison[64];
  } v1;
  memset(&v1, 0xA5, sizeof v1);
  rs_server_options_default(&v1.o);
  v1.o.struct_size = offsetof(rs_server_options, on_worker_start);
  memset((char *)&v1.o + v1.o.struct_size, 0xA5, sizeof v1 - v1.o.struct_size);
  v1.o.uri = "tcp://127.0.0.1:0";
  v1.o.workers = 2;
  rs_server *s;
  char err[256];
  assert_int_equal(rs_server_start(&s, &loop, &v1.o, err, sizeof err), 0);
  assert_int_equal(rs_server_workers(s), 2);
  assert_null(rs_server_worker_user(s, 0));
  assert_null(rs_server_worker_user(s, 1));
  stopped = false;
  rs_server_stop(s, false, on_stopped, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_true(stopped);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_post_arguments),
      cmocka_unit_test(test_post_same_thread_and_counted_registration),
      cmocka_unit_test(test_post_many_threads_exactly_once_in_order),
      cmocka_unit_test(test_post_races_close_never_drops),
      cmocka_unit_test(test_post_self_reposting_does_not_starve_timer),
      cmocka_unit_test(test_post_flood_from_threads_does_not_starve_timer),
      cmocka_unit_test(test_post_to_client_loop),
      cmocka_unit_test(test_worker_hooks_and_cross_worker_posts),
      cmocka_unit_test(test_server_options_version_1),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
