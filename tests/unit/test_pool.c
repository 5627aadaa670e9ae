/*
 * The load-balancing pool (rsocket/pool.h) against real servers on loopback, all on one loop in
 * this process: every interaction model through the pool with the application's pointers; p2c
 * against a slower server and round robin; lease (none granted, exhausted); a target that comes
 * up late and one stopped under load; graceful and aborting close (leaks: the ASan run).
 * Waits are bounded (run_until) and nothing asserts how long something took.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsocket/pool.h"

#define WAIT_MS 10000 /* the longest any condition is waited for */

/* ---- servers ---- */

typedef struct srv {
  rs_server *s;
  int port;
  char uri[64];
  uint32_t delay_ms;            /* request-response answered after this long (a uv timer) */
  int lease;                    /* -1: no lease; else permits granted at setup (ttl 60 s) */
  bool endless;                 /* request-stream: one element, then the stream stays open */
  rs_resume_store *store;       /* resumption on when set */
  int rr, stream, channel, fnf; /* requests received */
  int answers;                  /* answers to our own requests toward the client */
  int pool_of_server;           /* rs_pool_of() of a server connection that was not NULL */
  bool stopped;
} srv;

typedef struct delayed {
  uv_timer_t t;
  rs_conn *conn; /* the stream's end closes the timer */
  uint32_t sid;
} delayed;

static const rs_payload PONG = {false, {NULL, 0}, {(const uint8_t *)"pong", 4}};

static void delayed_free(uv_handle_t *h) {
  free(h->data);
}

static void on_delay(uv_timer_t *t) {
  delayed *d = t->data;
  rs_conn_stream_set_user(d->conn, d->sid, NULL);
  rs_conn_send_payload(d->conn, d->sid, &PONG, true);
  uv_close((uv_handle_t *)t, delayed_free);
}

static int srv_setup(rs_conn *conn, const rs_setup_info *setup, void *user) {
  srv *s = user;
  (void)setup;
  if (s->lease >= 0)
    assert_int_equal(rs_conn_send_lease(conn, 60000, (uint32_t)s->lease, NULL, 0), 0);
  return 0;
}

static int srv_request(rs_conn *conn, const rs_request *req, void *user) {
  srv *s = user;
  if (rs_pool_of(conn)) s->pool_of_server++;
  static const rs_payload item = {false, {NULL, 0}, {(const uint8_t *)"item", 4}};
  switch (req->type) {
  case RS_FRAME_REQUEST_RESPONSE:
    s->rr++;
    if (!s->delay_ms) return rs_conn_send_payload(conn, req->stream_id, &PONG, true);
    delayed *d = calloc(1, sizeof *d);
    assert_non_null(d);
    d->conn = conn;
    d->sid = req->stream_id;
    d->t.data = d;
    uv_timer_init(rs_runtime_loop(conn), &d->t);
    uv_timer_start(&d->t, on_delay, s->delay_ms, 0);
    return rs_conn_stream_set_user(conn, req->stream_id, d);
  case RS_FRAME_REQUEST_STREAM:
    s->stream++;
    if (s->endless) return rs_conn_send_payload(conn, req->stream_id, &item, false);
    assert_true(req->initial_n >= 3);
    rs_conn_send_payload(conn, req->stream_id, &item, false);
    rs_conn_send_payload(conn, req->stream_id, &item, false);
    return rs_conn_send_payload(conn, req->stream_id, &item, true);
  case RS_FRAME_REQUEST_CHANNEL:
    /* Echo the first element, ask for two more, complete when the requester does. */
    s->channel++;
    rs_conn_send_payload(conn, req->stream_id, &req->payload, false);
    return rs_conn_request_n(conn, req->stream_id, 2);
  default:
    s->fnf++;
    if (req->payload.data.len == 7 && !memcmp(req->payload.data.ptr, "call me", 7)) {
      /* Toward the client: METADATA_PUSH and a request of our own (an even stream id). */
      assert_int_equal(rs_conn_metadata_push(conn, rs_bytes_str("md")), 0);
      rs_payload hi = rs_payload_data(rs_bytes_str("hello"));
      assert_true(rs_conn_request_response(conn, &hi, NULL) > 0);
    }
    return 0;
  }
}

static void srv_payload(rs_conn *conn, uint32_t sid, void *su, const rs_payload *p, unsigned flags,
                        void *user) {
  srv *s = user;
  (void)su, (void)p;
  if (!(sid & 1u))
    s->answers++; /* our request's answer */
  else if (flags & RS_PAYLOAD_COMPLETE)
    rs_conn_send_complete(conn, sid); /* channel */
}

static void srv_stream_closed(rs_conn *conn, uint32_t sid, void *su, void *user) {
  (void)conn, (void)sid, (void)user;
  delayed *d = su; /* a delayed answer whose stream ended first */
  if (d) uv_close((uv_handle_t *)&d->t, delayed_free);
}

static void *srv_connect(rs_server *server, rs_conn *conn, void *server_user) {
  (void)server, (void)conn;
  return server_user;
}

/* Starts `s` on `port` (0: any); returns rs_server_start's result. */
static int srv_start_on(uv_loop_t *loop, srv *s, int port) {
  rs_server_options o;
  rs_server_options_default(&o);
  char uri[64];
  snprintf(uri, sizeof uri, "tcp://127.0.0.1:%d", port);
  o.uri = uri;
  o.settings.lease = s->lease >= 0;
  o.settings.resume = s->store != NULL;
  o.settings.resume_store = s->store;
  o.callbacks.struct_size = sizeof o.callbacks;
  o.callbacks.on_setup = srv_setup;
  o.callbacks.on_request = srv_request;
  o.callbacks.on_payload = srv_payload;
  o.callbacks.on_stream_closed = srv_stream_closed;
  o.on_connect = srv_connect;
  o.user = s;
  char err[256];
  int r = rs_server_start(&s->s, loop, &o, err, sizeof err);
  if (r != 0) {
    print_message("cannot listen on %s: %s\n", uri, err);
    s->s = NULL;
    return r;
  }
  s->port = rs_server_port(s->s);
  snprintf(s->uri, sizeof s->uri, "tcp://127.0.0.1:%d", s->port);
  s->stopped = false;
  return 0;
}

/* ---- the fixture: a loop, servers, a pool and what the application saw ---- */

typedef struct call {
  int next; /* elements received */
  bool complete;
  int errors;
  int err;    /* the last error's code */
  int closed; /* on_stream_closed calls */
  int request_n;
} call;

typedef struct fx {
  uv_loop_t loop;
  uv_timer_t tick;
  srv srv[3];
  rs_pool *pool;
  bool pool_closed;
  int closed_calls;
  int events[RS_CLIENT_CLOSED + 1];
  int wrong_user; /* callbacks that did not get the pool's user pointer */
  int incoming, incoming_closed, md_push, conn_closed;
  char incoming_marker;
  /* Load: `driver` is the stream user of the requests drive() makes. */
  char driver;
  int issued, done, total, in_flight_max, errors, unavailable;
  int per_tick; /* requests issued at each tick (0: none) */
  bool resume;  /* the pool's connections ask for resumption */
} fx;

static fx F;

/* The stream ended with one on_error RS_ERR_CLOSED (its connection went away) and was closed. */
static void assert_cut(const call *c) {
  assert_int_equal(c->errors, 1);
  assert_int_equal(c->err, RS_ERR_CLOSED);
  assert_int_equal(c->closed, 1);
}

static void check_user(void *user) {
  if (user != &F) F.wrong_user++;
}

static void drive(void) {
  while (F.issued < F.total && F.issued - F.done < F.in_flight_max) {
    rs_ssize r = rs_pool_request_response(F.pool, &PONG, &F.driver, NULL);
    if (r == RS_ERR_UNAVAILABLE) {
      F.unavailable++;
      return; /* the next tick tries again */
    }
    assert_true(r > 0);
    F.issued++;
  }
}

static void on_tick(uv_timer_t *t) {
  (void)t;
  if (!F.pool || F.pool_closed) return;
  if (F.per_tick) {
    F.total = F.issued + F.per_tick;
    F.in_flight_max = F.issued - F.done + F.per_tick;
  }
  if (F.issued < F.total) drive();
}

static void app_payload(rs_conn *conn, uint32_t sid, void *su, const rs_payload *p, unsigned flags,
                        void *user) {
  (void)conn, (void)sid, (void)p;
  check_user(user);
  if (su == &F.driver) return;
  call *c = su;
  if (flags & RS_PAYLOAD_NEXT) c->next++;
  if (flags & RS_PAYLOAD_COMPLETE) c->complete = true;
}

static void app_request_n(rs_conn *conn, uint32_t sid, void *su, uint64_t n, void *user) {
  check_user(user);
  call *c = su;
  c->request_n += (int)n;
  /* The channel's next and last element goes out on the stream's connection. */
  rs_payload more = rs_payload_data(rs_bytes_str("more"));
  assert_int_equal(rs_conn_send_payload(conn, sid, &more, true), 0);
}

static void app_error(rs_conn *conn, uint32_t sid, void *su, const rs_stream_error *e, void *user) {
  (void)conn, (void)sid;
  check_user(user);
  if (su == &F.driver) {
    F.errors++;
    return;
  }
  call *c = su;
  c->errors++;
  c->err = e->err;
}

static void app_stream_closed(rs_conn *conn, uint32_t sid, void *su, void *user) {
  (void)conn;
  check_user(user);
  if (!(sid & 1u)) {
    assert_ptr_equal(su, &F.incoming_marker); /* the target's stream: the pointer we set */
    F.incoming_closed++;
  } else if (su == &F.driver) {
    F.done++;
    drive();
  } else {
    ((call *)su)->closed++;
  }
}

static int app_request(rs_conn *conn, const rs_request *req, void *user) {
  check_user(user);
  F.incoming++;
  assert_false(req->stream_id & 1u);
  assert_int_equal(rs_conn_stream_set_user(conn, req->stream_id, &F.incoming_marker), 0);
  return rs_conn_send_payload(conn, req->stream_id, &PONG, true);
}

static void app_metadata_push(rs_conn *conn, rs_bytes md, void *user) {
  (void)conn;
  check_user(user);
  if (md.len == 2 && !memcmp(md.ptr, "md", 2)) F.md_push++;
}

static void app_close(rs_conn *conn, const rs_close_info *info, void *user) {
  (void)conn, (void)info;
  check_user(user);
  F.conn_closed++;
}

static void on_pool_event(rs_pool *pool, size_t target, int slot, rs_client_event ev,
                          const char *message, void *user) {
  (void)message;
  check_user(user);
  assert_ptr_equal(pool, F.pool);
  assert_true(target < rs_pool_targets(pool));
  assert_true(slot >= 0 && slot < RS_POOL_MAX_CONNECTIONS);
  F.events[ev]++;
}

static void on_pool_closed(void *arg) {
  assert_ptr_equal(arg, &F);
  F.pool_closed = true;
  F.closed_calls++;
}

static void fx_init(void) {
  memset(&F, 0, sizeof F);
  for (int i = 0; i < 3; i++) F.srv[i].lease = -1;
  assert_int_equal(uv_loop_init(&F.loop), 0);
  uv_timer_init(&F.loop, &F.tick);
  uv_timer_start(&F.tick, on_tick, 5, 5); /* also bounds each uv_run(UV_RUN_ONCE) */
}

/* Runs the loop until pred() holds or WAIT_MS (or `ms`) have passed; returns pred(). */
static bool run_until(bool (*pred)(void), uint64_t ms) {
  uint64_t end = uv_now(&F.loop) + ms;
  while (!pred() && uv_now(&F.loop) < end) uv_run(&F.loop, UV_RUN_ONCE);
  return pred();
}

static bool never(void) {
  return false;
}

static void srv_on_stopped(void *arg) {
  ((srv *)arg)->stopped = true;
}

static srv *stopping;
static bool stopped(void) {
  return stopping->stopped;
}

static void srv_stop(srv *s, bool graceful) {
  rs_server_stop(s->s, graceful, srv_on_stopped, s);
  stopping = s;
  assert_true(run_until(stopped, WAIT_MS));
  s->s = NULL;
}

static void srv_start(srv *s) {
  assert_int_equal(srv_start_on(&F.loop, s, 0), 0);
}

static void pool_start(int n, rs_pool_strategy strategy, int connections, bool lease) {
  const char *uris[3];
  for (int i = 0; i < n; i++) uris[i] = F.srv[i].uri;
  rs_pool_options o;
  rs_pool_options_default(&o);
  o.uris = uris;
  o.n_uris = (size_t)n;
  o.connections = connections;
  o.strategy = strategy;
  o.user = &F;
  o.on_event = on_pool_event;
  o.client.settings.lease = lease;
  o.client.settings.resume = F.resume;
  o.client.callbacks.on_payload = app_payload;
  o.client.callbacks.on_request_n = app_request_n;
  o.client.callbacks.on_error = app_error;
  o.client.callbacks.on_stream_closed = app_stream_closed;
  o.client.callbacks.on_request = app_request;
  o.client.callbacks.on_metadata_push = app_metadata_push;
  o.client.callbacks.on_close = app_close;
  char err[256];
  F.pool_closed = false;
  assert_int_equal(rs_pool_start(&F.pool, &F.loop, &o, err, sizeof err), 0);
}

static bool pool_gone(void) {
  return F.pool_closed;
}

static void pool_close(bool graceful) {
  rs_pool_close(F.pool, graceful, on_pool_closed, &F);
  assert_true(run_until(pool_gone, WAIT_MS));
  F.pool = NULL;
}

static void fx_finish(void) {
  if (F.pool) pool_close(false);
  for (int i = 0; i < 3; i++)
    if (F.srv[i].s) srv_stop(&F.srv[i], false);
  assert_int_equal(F.wrong_user, 0);
  uv_close((uv_handle_t *)&F.tick, NULL);
  uv_run(&F.loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&F.loop), 0);
}

static size_t want_available;
static bool available(void) {
  return rs_pool_available(F.pool) >= want_available;
}

static void wait_available(size_t n) {
  want_available = n;
  assert_true(run_until(available, WAIT_MS));
}

static rs_pool_target_stats stats(size_t target) {
  rs_pool_target_stats st;
  assert_int_equal(rs_pool_target_stats_get(F.pool, target, &st), 0);
  return st;
}

static bool load_done(void) {
  return F.done >= F.total;
}

/* `total` request-responses, `in_flight` at a time; every one answered without error. */
static void run_load(int total, int in_flight) {
  F.issued = F.done = F.errors = 0;
  F.total = total;
  F.in_flight_max = in_flight;
  drive();
  assert_true(run_until(load_done, 60000));
  assert_int_equal(F.done, total);
  assert_int_equal(F.errors, 0);
}

/* ---- 1. the interaction models ---- */

static call c_rr, c_stream, c_channel;
static bool models_done(void) {
  return c_rr.closed && c_stream.closed && c_channel.closed && F.incoming_closed == 1 &&
         F.md_push == 1 && (F.srv[0].answers + F.srv[1].answers) == 1;
}

static void test_models_through_the_pool(void **state) {
  (void)state;
  fx_init();
  srv_start(&F.srv[0]);
  srv_start(&F.srv[1]);
  pool_start(2, RS_POOL_P2C, 0, false);
  memset(&c_rr, 0, sizeof c_rr);
  memset(&c_stream, 0, sizeof c_stream);
  memset(&c_channel, 0, sizeof c_channel);

  /* Nothing is connected yet. */
  rs_payload ping = rs_payload_data(rs_bytes_str("ping"));
  rs_conn *conn = NULL;
  assert_int_equal(rs_pool_available(F.pool), 0);
  assert_int_equal(rs_pool_request_response(F.pool, &ping, &c_rr, &conn), RS_ERR_UNAVAILABLE);
  assert_int_equal(rs_pool_request_stream(F.pool, &ping, 10, &c_stream, NULL), RS_ERR_UNAVAILABLE);
  assert_int_equal(rs_pool_request_channel(F.pool, &ping, 4, false, &c_channel, NULL),
                   RS_ERR_UNAVAILABLE);
  assert_int_equal(rs_pool_request_fnf(F.pool, &ping, NULL), RS_ERR_UNAVAILABLE);
  assert_null(conn);
  assert_int_equal(rs_pool_targets(F.pool), 2);
  assert_ptr_equal(rs_pool_user(F.pool), &F);

  /* Two connections to each target (the default). */
  wait_available(4);
  for (size_t t = 0; t < 2; t++) {
    rs_pool_target_stats st = stats(t);
    assert_string_equal(st.uri, F.srv[t].uri);
    assert_int_equal(st.connections, 2);
    assert_int_equal(st.candidates, 2);
    assert_true(st.availability == 1.0);
  }
  assert_int_equal(F.events[RS_CLIENT_CONNECTED], 4);

  rs_ssize id = rs_pool_request_response(F.pool, &ping, &c_rr, &conn);
  assert_true(id > 0 && (id & 1));
  assert_non_null(conn);
  assert_ptr_equal(rs_pool_of(conn), F.pool);
  assert_ptr_equal(rs_pool_stream_user(conn, (uint32_t)id), &c_rr);
  assert_null(rs_pool_stream_user(conn, (uint32_t)id + 2)); /* no such stream */
  id = rs_pool_request_stream(F.pool, &ping, 10, &c_stream, &conn);
  assert_true(id > 0 && (id & 1));
  assert_ptr_equal(rs_pool_stream_user(conn, (uint32_t)id), &c_stream);
  id = rs_pool_request_channel(F.pool, &ping, 4, false, &c_channel, NULL);
  assert_true(id > 0 && (id & 1));
  rs_payload call_me = rs_payload_data(rs_bytes_str("call me"));
  assert_true(rs_pool_request_fnf(F.pool, &call_me, &conn) > 0);
  assert_ptr_equal(rs_pool_of(conn), F.pool);

  assert_true(run_until(models_done, WAIT_MS));
  /* Request-response: one answer. Stream: three elements then complete. Channel: the echo, a
   * request(2) answered with our last element, then the responder's complete. */
  assert_int_equal(c_rr.next, 1);
  assert_true(c_rr.complete);
  assert_int_equal(c_rr.errors, 0);
  assert_int_equal(c_rr.closed, 1);
  assert_int_equal(c_stream.next, 3);
  assert_true(c_stream.complete);
  assert_int_equal(c_stream.errors, 0);
  assert_int_equal(c_channel.next, 1);
  assert_int_equal(c_channel.request_n, 2);
  assert_true(c_channel.complete);
  assert_int_equal(c_channel.errors, 0);
  assert_int_equal(c_channel.closed, 1);
  /* The target's request reached the application, whose stream user came back untouched. */
  assert_int_equal(F.incoming, 1);
  srv *a = &F.srv[0], *b = &F.srv[1];
  assert_int_equal(a->rr + b->rr, 1);
  assert_int_equal(a->stream + b->stream, 1);
  assert_int_equal(a->channel + b->channel, 1);
  assert_int_equal(a->fnf + b->fnf, 1);
  assert_int_equal(a->pool_of_server + b->pool_of_server, 0); /* server connections: not a pool's */

  uint64_t requests = 0;
  double latency = 0;
  for (size_t t = 0; t < 2; t++) {
    rs_pool_target_stats st = stats(t);
    requests += st.requests;
    latency += st.latency_ms;
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.streams, 0);
    assert_int_equal(st.failures, 0);
  }
  assert_int_equal(requests, 4);
  assert_true(latency > 0);
  rs_pool_target_stats st;
  assert_int_equal(rs_pool_target_stats_get(F.pool, 2, &st), RS_ERR_INVALID_ARGUMENT);

  pool_close(true);
  assert_int_equal(F.closed_calls, 1);
  assert_int_equal(F.events[RS_CLIENT_CLOSED], 4);
  assert_int_equal(F.conn_closed, 4);
  fx_finish();
}

/* ---- 2. p2c against a slower target; round robin ---- */

static void test_p2c_avoids_the_slow_target(void **state) {
  (void)state;
  fx_init();
  F.srv[1].delay_ms = 5;
  srv_start(&F.srv[0]);
  srv_start(&F.srv[1]);

  pool_start(2, RS_POOL_P2C, 0, false);
  wait_available(4);
  run_load(2000, 16);
  int fast = F.srv[0].rr, slow = F.srv[1].rr;
  print_message("p2c: fast %d, slow %d (%.1f%%)\n", fast, slow, 100.0 * slow / 2000);
  assert_int_equal(fast + slow, 2000);
  assert_true(slow < 2000 / 4);
  assert_true(stats(1).latency_ms > stats(0).latency_ms);
  assert_int_equal((int)stats(0).requests, fast);
  pool_close(true);

  F.srv[0].rr = F.srv[1].rr = 0;
  pool_start(2, RS_POOL_ROUND_ROBIN, 0, false);
  wait_available(4);
  run_load(2000, 16);
  fast = F.srv[0].rr, slow = F.srv[1].rr;
  print_message("round robin: fast %d, slow %d\n", fast, slow);
  assert_int_equal(fast + slow, 2000);
  assert_true(slow >= 800 && slow <= 1200);
  fx_finish();
}

/* ---- 3. lease ---- */

static bool a_connected_b_candidates(void) {
  return stats(0).connections == 2 && stats(1).candidates == 2;
}

static void test_lease_none_granted_gets_nothing(void **state) {
  (void)state;
  fx_init();
  F.srv[0].lease = 0;
  F.srv[1].lease = 1000000;
  srv_start(&F.srv[0]);
  srv_start(&F.srv[1]);
  pool_start(2, RS_POOL_P2C, 0, true);
  assert_true(run_until(a_connected_b_candidates, WAIT_MS));
  /* Established (its LEASE answered the SETUP), but no permits. */
  assert_int_equal(stats(0).candidates, 0);
  assert_true(stats(0).availability == 0);
  assert_int_equal(rs_pool_available(F.pool), 2);
  run_load(200, 4);
  assert_int_equal(F.srv[0].rr, 0);
  assert_int_equal(F.srv[1].rr, 200);
  fx_finish();
}

/* A target whose lease runs out gets no more requests, and none fails for want of lease.
 * P2C already shies away from it as it runs low (availability is the share left); round robin
 * uses every permit. */
static void test_lease_exhausted_is_abandoned(void **state) {
  (void)state;
  fx_init();
  F.srv[0].lease = 5; /* per connection: 10 requests in all */
  F.srv[1].lease = 1000000;
  srv_start(&F.srv[0]);
  srv_start(&F.srv[1]);
  pool_start(2, RS_POOL_P2C, 0, true);
  wait_available(4);
  run_load(200, 4);
  int leased = F.srv[0].rr;
  print_message("p2c: %d of the 10 permits used\n", leased);
  assert_true(leased >= 1 && leased <= 10);
  assert_int_equal(F.srv[1].rr, 200 - leased);
  pool_close(true);

  F.srv[0].rr = F.srv[1].rr = 0;
  pool_start(2, RS_POOL_ROUND_ROBIN, 0, true);
  wait_available(4);
  run_load(200, 4);
  assert_int_equal(F.srv[0].rr, 10);
  assert_int_equal(F.srv[1].rr, 190);
  rs_pool_target_stats st = stats(0);
  assert_int_equal(st.connections, 2);
  assert_int_equal(st.candidates, 0);
  assert_int_equal(st.requests, 10);
  assert_int_equal(rs_pool_available(F.pool), 2);
  fx_finish();
}

/* ---- 4. a target that comes up late ---- */

static bool late_target_used(void) {
  return F.srv[1].rr > 0;
}

static void test_target_up_late_gets_traffic(void **state) {
  (void)state;
  fx_init();
  srv_start(&F.srv[0]);
  /* A free port, closed again: nothing listens there while the pool starts. */
  srv_start(&F.srv[1]);
  int port = F.srv[1].port;
  srv_stop(&F.srv[1], false);
  pool_start(2, RS_POOL_P2C, 0, false);
  wait_available(2);
  F.per_tick = 2; /* a trickle of requests */
  run_until(never, 300);
  rs_pool_target_stats st = stats(1);
  assert_int_equal(st.connections, 0);
  assert_true(st.failures >= 2); /* both slots failed at least once */
  assert_int_equal(F.srv[1].rr, 0);
  assert_true(F.srv[0].rr > 0);
  assert_true(F.events[RS_CLIENT_RECONNECTING] >= 2);

  if (srv_start_on(&F.loop, &F.srv[1], port) != 0) {
    print_message("port %d was taken meanwhile: skipped\n", port);
    F.per_tick = 0;
    fx_finish();
    skip();
  }
  uint64_t up = uv_now(&F.loop);
  assert_true(run_until(late_target_used, WAIT_MS));
  print_message("the late target got its first request %llu ms after it came up\n",
                (unsigned long long)(uv_now(&F.loop) - up));
  F.per_tick = 0;
  assert_true(run_until(load_done, WAIT_MS));
  assert_int_equal(F.errors, 0);
  fx_finish();
}

/* ---- 5. a target stopped under load ---- */

#define STREAMS 20
static call subs[STREAMS];
static int subs_on_b;

static bool all_subscribed(void) {
  for (int i = 0; i < STREAMS; i++)
    if (subs[i].next == 0) return false;
  return true;
}

static bool b_streams_ended(void) {
  int n = 0;
  for (int i = 0; i < STREAMS; i++) n += subs[i].closed;
  return n == subs_on_b && stats(1).connections == 0;
}

static void test_target_stopped_under_load(void **state) {
  (void)state;
  fx_init();
  F.srv[0].endless = F.srv[1].endless = true;
  srv_start(&F.srv[0]);
  srv_start(&F.srv[1]);
  pool_start(2, RS_POOL_P2C, 0, false);
  wait_available(4);
  memset(subs, 0, sizeof subs);
  rs_payload sub = rs_payload_data(rs_bytes_str("sub"));
  for (int i = 0; i < STREAMS; i++)
    assert_true(rs_pool_request_stream(F.pool, &sub, 100, &subs[i], NULL) > 0);
  assert_true(run_until(all_subscribed, WAIT_MS));
  /* Open streams count as load: both targets hold some. */
  subs_on_b = (int)stats(1).streams;
  assert_int_equal(stats(0).streams + (uint64_t)subs_on_b, STREAMS);
  assert_true(subs_on_b > 0 && subs_on_b < STREAMS);
  assert_int_equal(F.srv[1].stream, subs_on_b);

  uint64_t t0 = uv_now(&F.loop);
  srv_stop(&F.srv[1], false);
  assert_true(run_until(b_streams_ended, WAIT_MS));
  print_message("%d streams on the stopped target ended within %llu ms\n", subs_on_b,
                (unsigned long long)(uv_now(&F.loop) - t0));
  int ended = 0;
  for (int i = 0; i < STREAMS; i++) {
    if (!subs[i].closed) continue;
    ended++;
    assert_cut(&subs[i]);
  }
  assert_int_equal(ended, subs_on_b);
  rs_pool_target_stats st = stats(1);
  assert_int_equal(st.streams, 0);
  assert_int_equal(st.candidates, 0);
  assert_true(st.failures >= 2);
  assert_int_equal(F.events[RS_CLIENT_DISCONNECTED], 2);

  /* New requests go to the target that is left. */
  F.srv[0].rr = 0;
  run_load(50, 4);
  assert_int_equal(F.srv[0].rr, 50);

  /* The other streams end with the pool. */
  pool_close(false);
  for (int i = 0; i < STREAMS; i++) assert_cut(&subs[i]);
  fx_finish();
}

/* ---- 6. closing ---- */

static call c_slow, c_open;

static void test_close_graceful_finishes_streams(void **state) {
  (void)state;
  fx_init();
  F.srv[0].delay_ms = 50;
  srv_start(&F.srv[0]);
  /* A second target that is down: its connections are between attempts when the pool closes. */
  srv_start(&F.srv[1]);
  srv_stop(&F.srv[1], false);
  pool_start(2, RS_POOL_P2C, 1, false);
  wait_available(1);
  memset(&c_slow, 0, sizeof c_slow);
  rs_payload ping = rs_payload_data(rs_bytes_str("ping"));
  assert_true(rs_pool_request_response(F.pool, &ping, &c_slow, NULL) > 0);
  rs_pool_close(F.pool, true, on_pool_closed, &F);
  assert_int_equal(rs_pool_request_response(F.pool, &ping, &c_slow, NULL), RS_ERR_CLOSED);
  assert_int_equal(rs_pool_request_fnf(F.pool, &ping, NULL), RS_ERR_CLOSED);
  assert_int_equal(rs_pool_available(F.pool), 0);
  assert_false(F.pool_closed); /* never inside the call */
  assert_true(run_until(pool_gone, WAIT_MS));
  F.pool = NULL;
  assert_int_equal(F.closed_calls, 1);
  /* The answer came before the connection closed. */
  assert_int_equal(c_slow.next, 1);
  assert_int_equal(c_slow.errors, 0);
  assert_int_equal(c_slow.closed, 1);
  assert_int_equal(F.srv[0].rr, 1);
  fx_finish();
}

static void test_close_abort_ends_streams(void **state) {
  (void)state;
  fx_init();
  F.srv[0].delay_ms = 10000;
  F.srv[0].endless = true;
  srv_start(&F.srv[0]);
  pool_start(1, RS_POOL_ROUND_ROBIN, 2, false);
  wait_available(2);
  memset(&c_slow, 0, sizeof c_slow);
  memset(&c_open, 0, sizeof c_open);
  rs_payload ping = rs_payload_data(rs_bytes_str("ping"));
  assert_true(rs_pool_request_response(F.pool, &ping, &c_slow, NULL) > 0);
  assert_true(rs_pool_request_stream(F.pool, &ping, 5, &c_open, NULL) > 0);
  assert_int_equal(stats(0).in_flight, 1);
  assert_int_equal(stats(0).streams, 1);
  pool_close(false);
  assert_int_equal(F.closed_calls, 1);
  assert_cut(&c_slow);
  assert_cut(&c_open);
  fx_finish();
}

/* A graceful close whose streams never end is cut by a second, aborting call. */
static void test_close_graceful_then_abort(void **state) {
  (void)state;
  fx_init();
  F.srv[0].endless = true;
  srv_start(&F.srv[0]);
  pool_start(1, RS_POOL_P2C, 1, false);
  wait_available(1);
  memset(&c_open, 0, sizeof c_open);
  rs_payload ping = rs_payload_data(rs_bytes_str("ping"));
  assert_true(rs_pool_request_stream(F.pool, &ping, 5, &c_open, NULL) > 0);
  rs_pool_close(F.pool, true, on_pool_closed, &F);
  run_until(never, 100);
  assert_false(F.pool_closed); /* the stream holds the connection open */
  rs_pool_close(F.pool, false, NULL, NULL);
  assert_true(run_until(pool_gone, WAIT_MS));
  F.pool = NULL;
  assert_int_equal(F.closed_calls, 1);
  assert_cut(&c_open);
  fx_finish();
}

/* ---- targets added and removed while the pool runs ---- */

#define DRAIN_SUBS 16
static call dsubs[DRAIN_SUBS];
static rs_conn *dsub_conn[DRAIN_SUBS];
static uint32_t dsub_sid[DRAIN_SUBS];
static size_t want_targets;

static bool targets_shrunk(void) {
  return rs_pool_targets(F.pool) == want_targets;
}

static bool dsubs_started(void) {
  for (int i = 0; i < DRAIN_SUBS; i++)
    if (dsubs[i].next == 0) return false;
  return true;
}

/* Opens DRAIN_SUBS endless streams; returns how many went to target `t`. */
static int open_dsubs(size_t t) {
  memset(dsubs, 0, sizeof dsubs);
  rs_payload sub = rs_payload_data(rs_bytes_str("sub"));
  for (int i = 0; i < DRAIN_SUBS; i++) {
    rs_ssize sid = rs_pool_request_stream(F.pool, &sub, 100, &dsubs[i], &dsub_conn[i]);
    assert_true(sid > 0);
    dsub_sid[i] = (uint32_t)sid;
  }
  assert_true(run_until(dsubs_started, WAIT_MS));
  return (int)stats(t).streams;
}

/* A target added to a running pool takes requests; removed, it takes none, the streams open on
 * it go on until they end, then its connections close and its index is free again (and taken
 * by the next target added). */
static void test_target_added_then_removed_drains(void **state) {
  (void)state;
  fx_init();
  F.srv[0].endless = F.srv[1].endless = true;
  srv_start(&F.srv[0]);
  srv_start(&F.srv[1]);
  pool_start(1, RS_POOL_ROUND_ROBIN, 2, false);
  wait_available(2);
  char err[256];
  assert_int_equal(rs_pool_add_target(F.pool, F.srv[1].uri, err, sizeof err), 1);
  assert_int_equal(rs_pool_targets(F.pool), 2);
  wait_available(4);
  assert_string_equal(stats(1).uri, F.srv[1].uri);
  assert_false(stats(1).draining);
  run_load(100, 4);
  assert_int_equal(F.srv[1].rr, 50); /* round robin: its half */

  int on_b = open_dsubs(1);
  assert_true(on_b > 0 && on_b < DRAIN_SUBS);
  int closed_before = F.events[RS_CLIENT_CLOSED];
  assert_int_equal(rs_pool_remove_target(F.pool, 1, RS_POOL_DRAIN_FOREVER), 0);
  assert_int_equal(rs_pool_remove_target(F.pool, 1, 0), RS_ERR_INVALID_STATE);
  rs_pool_target_stats st = stats(1);
  assert_true(st.draining);
  assert_int_equal(st.candidates, 0);
  assert_int_equal(st.connections, 2); /* still open: streams run on them */
  assert_int_equal((int)st.streams, on_b);
  assert_int_equal(rs_pool_available(F.pool), 2);

  /* New requests go to the target that stays; the streams on the removed one are not cut. */
  F.srv[0].rr = F.srv[1].rr = 0;
  run_load(100, 4);
  assert_int_equal(F.srv[0].rr, 100);
  assert_int_equal(F.srv[1].rr, 0);
  run_until(never, 100);
  for (int i = 0; i < DRAIN_SUBS; i++) assert_int_equal(dsubs[i].errors, 0);
  assert_int_equal(rs_pool_targets(F.pool), 2);

  /* Once its streams end, its connections close and the target is gone. */
  for (int i = 0; i < DRAIN_SUBS; i++)
    assert_int_equal(rs_conn_cancel(dsub_conn[i], dsub_sid[i]), 0);
  want_targets = 1;
  assert_true(run_until(targets_shrunk, WAIT_MS));
  assert_int_equal(F.events[RS_CLIENT_CLOSED] - closed_before, 2);
  assert_int_equal(rs_pool_target_stats_get(F.pool, 1, &st), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_pool_remove_target(F.pool, 1, 0), RS_ERR_INVALID_ARGUMENT);
  for (int i = 0; i < DRAIN_SUBS; i++) {
    assert_int_equal(dsubs[i].errors, 0);
    assert_int_equal(dsubs[i].closed, 1);
  }

  /* The free index is taken again. */
  assert_int_equal(rs_pool_add_target(F.pool, F.srv[1].uri, NULL, 0), 1);
  wait_available(4);
  F.srv[1].rr = 0;
  run_load(100, 4);
  assert_int_equal(F.srv[1].rr, 50);
  fx_finish();
}

/* Streams that outlast the deadline are cut; a deadline of 0 cuts at once; a target that never
 * connected is gone at once. */
static void test_target_removed_deadline(void **state) {
  (void)state;
  fx_init();
  F.srv[0].endless = F.srv[1].endless = true;
  srv_start(&F.srv[0]);
  srv_start(&F.srv[1]);
  srv_start(&F.srv[2]);
  int down_port = F.srv[2].port;
  srv_stop(&F.srv[2], false);
  pool_start(2, RS_POOL_P2C, 1, false);
  wait_available(2);
  char down[64];
  snprintf(down, sizeof down, "tcp://127.0.0.1:%d", down_port);
  assert_int_equal(rs_pool_add_target(F.pool, down, NULL, 0), 2);

  int on_b = open_dsubs(1);
  assert_true(on_b > 0);
  uint64_t t0 = uv_now(&F.loop);
  assert_int_equal(rs_pool_remove_target(F.pool, 1, 50), 0);
  assert_int_equal(rs_pool_remove_target(F.pool, 2, RS_POOL_DRAIN_FOREVER), 0);
  want_targets = 1;
  assert_true(run_until(targets_shrunk, WAIT_MS));
  assert_true(uv_now(&F.loop) - t0 >= 50);
  int cut = 0;
  for (int i = 0; i < DRAIN_SUBS; i++)
    if (dsubs[i].closed) {
      assert_cut(&dsubs[i]);
      cut++;
    }
  assert_int_equal(cut, on_b);

  /* drain_ms 0: the streams are cut now. */
  assert_int_equal(rs_pool_add_target(F.pool, F.srv[1].uri, NULL, 0), 1);
  wait_available(2);
  on_b = open_dsubs(1);
  assert_true(on_b > 0);
  assert_int_equal(rs_pool_remove_target(F.pool, 1, 0), 0);
  assert_true(run_until(targets_shrunk, WAIT_MS));
  cut = 0;
  for (int i = 0; i < DRAIN_SUBS; i++)
    if (dsubs[i].closed) {
      assert_cut(&dsubs[i]);
      cut++;
    }
  assert_int_equal(cut, on_b);
  fx_finish();
}

/* Every target removed: nothing is available; the pool still closes (on_closed from the loop).
 * A pool closed while a target drains closes it with the rest. Bad arguments. */
static void test_targets_all_removed_and_errors(void **state) {
  (void)state;
  fx_init();
  F.srv[0].endless = true;
  srv_start(&F.srv[0]);
  pool_start(1, RS_POOL_P2C, 2, false);
  wait_available(2);
  char err[256];
  assert_int_equal(rs_pool_add_target(F.pool, "http://x", err, sizeof err),
                   RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_pool_add_target(F.pool, NULL, err, sizeof err), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_pool_add_target(NULL, "tcp://127.0.0.1:1", NULL, 0), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_pool_remove_target(F.pool, 5, 0), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_pool_remove_target(NULL, 0, 0), RS_ERR_INVALID_ARGUMENT);

  assert_int_equal(rs_pool_remove_target(F.pool, 0, RS_POOL_DRAIN_FOREVER), 0);
  want_targets = 0;
  assert_true(run_until(targets_shrunk, WAIT_MS));
  rs_payload ping = rs_payload_data(rs_bytes_str("ping"));
  assert_int_equal(rs_pool_request_response(F.pool, &ping, &F.driver, NULL), RS_ERR_UNAVAILABLE);
  assert_int_equal(rs_pool_available(F.pool), 0);
  rs_conn *full = (rs_conn *)&full;
  assert_int_equal(rs_pool_metadata_push(F.pool, rs_bytes_str("md"), &full), 0);
  assert_null(full);
  pool_close(true);
  assert_int_equal(F.closed_calls, 1);

  /* Closed while a target drains: its stream is cut with the pool. */
  pool_start(1, RS_POOL_P2C, 1, false);
  wait_available(1);
  int on_a = open_dsubs(0);
  assert_int_equal(on_a, DRAIN_SUBS);
  assert_int_equal(rs_pool_remove_target(F.pool, 0, RS_POOL_DRAIN_FOREVER), 0);
  rs_pool_close(F.pool, false, on_pool_closed, &F);
  assert_int_equal(rs_pool_add_target(F.pool, F.srv[0].uri, NULL, 0), RS_ERR_CLOSED);
  assert_true(run_until(pool_gone, WAIT_MS));
  F.pool = NULL;
  for (int i = 0; i < DRAIN_SUBS; i++) assert_cut(&dsubs[i]);
  fx_finish();
}

/* ---- resumption ---- */

/* Every connection resumes its own session: four connections, four sessions on the server (one
 * token shared by all would make each SETUP take the previous session's place). */
static void test_resume_token_per_connection(void **state) {
  (void)state;
  fx_init();
  rs_resume_store *store = rs_resume_store_new(NULL);
  assert_non_null(store);
  F.srv[0].store = store;
  srv_start(&F.srv[0]);
  F.resume = true;
  pool_start(1, RS_POOL_P2C, 4, false);
  wait_available(4);
  assert_int_equal(rs_resume_store_count(store), 4);
  run_load(100, 4);
  fx_finish();
  rs_resume_store_free(store);
}

/* ---- options ---- */

static void test_start_checks_options(void **state) {
  (void)state;
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  rs_pool_options o;
  rs_pool_options_default(&o);
  rs_pool *p = NULL;
  char err[256];
  assert_int_equal(rs_pool_start(&p, &loop, &o, err, sizeof err), RS_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(err, "targets"));
  const char *uris[] = {"tcp://127.0.0.1:1", "http://x"};
  o.uris = uris;
  o.n_uris = 2;
  assert_int_equal(rs_pool_start(&p, &loop, &o, err, sizeof err), RS_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(err, "target 1"));
  o.n_uris = 1;
  o.connections = RS_POOL_MAX_CONNECTIONS + 1;
  assert_int_equal(rs_pool_start(&p, &loop, &o, err, sizeof err), RS_ERR_INVALID_ARGUMENT);
  o.connections = 0;
  o.client.settings.keepalive_interval_ms = 0;
  assert_int_equal(rs_pool_start(&p, &loop, &o, err, sizeof err), RS_ERR_INVALID_ARGUMENT);
  o.client.settings.keepalive_interval_ms = 20000;
  o.client.callbacks.struct_size = 0;
  assert_int_equal(rs_pool_start(&p, &loop, &o, err, sizeof err), RS_ERR_INVALID_ARGUMENT);
  assert_null(p);
  assert_int_equal(rs_pool_request_fnf(NULL, NULL, NULL), RS_ERR_INVALID_ARGUMENT);
  assert_null(rs_pool_of(NULL));
  assert_int_equal(rs_pool_targets(NULL), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_start_checks_options),
      cmocka_unit_test(test_models_through_the_pool),
      cmocka_unit_test(test_p2c_avoids_the_slow_target),
      cmocka_unit_test(test_lease_none_granted_gets_nothing),
      cmocka_unit_test(test_lease_exhausted_is_abandoned),
      cmocka_unit_test(test_target_up_late_gets_traffic),
      cmocka_unit_test(test_target_stopped_under_load),
      cmocka_unit_test(test_close_graceful_finishes_streams),
      cmocka_unit_test(test_close_abort_ends_streams),
      cmocka_unit_test(test_close_graceful_then_abort),
      cmocka_unit_test(test_resume_token_per_connection),
      cmocka_unit_test(test_target_added_then_removed_drains),
      cmocka_unit_test(test_target_removed_deadline),
      cmocka_unit_test(test_targets_all_removed_and_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
