/*
 * Protocol engine: pull production (rs_conn_set_producer, on_produce, rs_conn_produce,
 * rs_conn_produce_some). The producer runs only while its stream has credit and the output is
 * under the high watermark, and for rs_conn_produce_some at most its number of calls;
 * pausing and resuming; round robin between streams; no busy loop; and, with resumption, a
 * producer with unbounded credit never outruns the retained-frame window, so any number of cuts
 * lose nothing.
 */
#include "test_conn_harness.h"

typedef struct counter {
  int calls;
  int sent;
  int limit;         /* elements to send in all, then complete (0: never complete) */
  int per_call;      /* elements per call */
  int pause_after;   /* return PAUSE once `sent` reaches it (0: never) */
  size_t item_bytes; /* payload size */
  bool send_nothing; /* return MORE without sending */
  bool resume_first; /* call rs_conn_resume_producer first (as rs_feed's pull sources do) */
  uint32_t last_sid;
  uint32_t order[64];
  int norder;
} counter;

static int produce_items(h_peer *p, rs_conn *c, uint32_t sid, uint64_t credit) {
  counter *k = p->producer_data;
  k->calls++;
  k->last_sid = sid;
  if (k->norder < 64) k->order[k->norder++] = sid;
  assert_true(credit > 0);
  if (k->resume_first) assert_int_equal(rs_conn_resume_producer(c, sid), 0);
  if (k->send_nothing) return RS_PRODUCE_MORE;
  static char item[4096];
  for (int i = 0; i < k->per_call && credit > 0; i++) {
    size_t n = k->item_bytes ? k->item_bytes : 8;
    snprintf(item, sizeof item, "i%05d", k->sent);
    for (size_t j = 6; j < n && j < sizeof item; j++) item[j] = 'x';
    rs_payload pl = {false, {NULL, 0}, {(const uint8_t *)item, n}};
    bool last = k->limit && k->sent + 1 == k->limit;
    assert_int_equal(rs_conn_send_payload(c, sid, &pl, last), 0);
    k->sent++;
    if (credit != RS_CREDIT_UNBOUNDED) credit--;
    if (last) return RS_PRODUCE_MORE;
    if (k->pause_after && k->sent == k->pause_after) return RS_PRODUCE_PAUSE;
  }
  return RS_PRODUCE_MORE;
}

/* The server answers every request-stream with the producer. */
static void attach_hook(h_peer *p, const h_event *e) {
  if (e->kind != EV_REQUEST) return;
  assert_int_equal(rs_conn_set_producer(p->conn, e->sid), 0);
}

static void producer_pair_wm(h_pair *h, counter *k, size_t watermark) {
  h_init(h);
  if (watermark) h->ss.output_high_watermark = watermark;
  h->srv.echo = false;
  h->srv.hook = attach_hook;
  h->srv.producer = produce_items;
  h->srv.producer_data = k;
  h_start(h);
  h_pump_ok(h);
}

static void producer_pair(h_pair *h, counter *k) {
  producer_pair_wm(h, k, 0);
}

static void test_produce_honours_credit(void **state) {
  (void)state;
  h_pair h;
  counter k = {.per_call = 1};
  producer_pair(&h, &k);
  rs_payload p = h_pl(NULL, "go");
  rs_ssize sid = rs_conn_request_stream(h.cli.conn, &p, 5, NULL);
  assert_true(sid > 0);
  h_pump_ok(&h);
  assert_int_equal(k.sent, 5);
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, (uint32_t)sid), 5);
  assert_false(rs_conn_want_produce(h.srv.conn)); /* no credit: not ready */
  int calls = k.calls;
  h_pump_ok(&h);
  assert_int_equal(k.calls, calls);
  assert_int_equal(rs_conn_request_n(h.cli.conn, (uint32_t)sid, 3), 0);
  h_pump_ok(&h);
  assert_int_equal(k.sent, 8);
  assert_string_equal((const char *)h_find(&h.cli, EV_PAYLOAD, (uint32_t)sid, 7)->data, "i00007xx");
  h_free(&h);
}

static void test_produce_stops_at_high_watermark(void **state) {
  (void)state;
  h_pair h;
  counter k = {.per_call = 1, .item_bytes = 100};
  producer_pair_wm(&h, &k, 1000);
  rs_payload p = h_pl(NULL, "go");
  rs_ssize sid = rs_conn_request_stream(h.cli.conn, &p, RS_CREDIT_UNBOUNDED, NULL);
  assert_true(sid > 0);
  h.hold_srv = true; /* the server's socket is full: nothing of its output is taken */
  h_pump_ok(&h);
  assert_int_equal(rs_conn_produce(h.srv.conn, h.now), 0);
  size_t pending = rs_conn_pending_bytes(h.srv.conn);
  assert_true(pending >= 1000);
  assert_true(pending < 1000 + 120);
  assert_false(rs_conn_want_produce(h.srv.conn));
  int sent = k.sent;
  assert_int_equal(rs_conn_produce(h.srv.conn, h.now), 0);
  assert_int_equal(k.sent, sent); /* still full: not called */
  /* The socket drains: production goes on, a watermark's worth at a time. */
  assert_int_equal(rs_conn_consumed(h.srv.conn, pending), 0);
  assert_true(rs_conn_want_produce(h.srv.conn));
  assert_int_equal(rs_conn_produce(h.srv.conn, h.now), 0);
  assert_true(k.sent > sent);
  assert_true(rs_conn_pending_bytes(h.srv.conn) >= 1000);
  assert_true(rs_conn_pending_bytes(h.srv.conn) < 1000 + 120);
  assert_int_equal(rs_conn_consumed(h.srv.conn, rs_conn_pending_bytes(h.srv.conn)), 0);
  h_free(&h);
}

/* A driver that writes between calls produces a budget of producer calls at a time: each
 * rs_conn_produce_some runs producers at most max_calls times, the next one goes on, and credit
 * still bounds it. */
static void test_produce_some_stops_at_its_budget(void **state) {
  (void)state;
  h_pair h;
  counter k = {.per_call = 2, .item_bytes = 100};
  producer_pair(&h, &k);
  rs_payload p = h_pl(NULL, "go");
  h.hold_srv = true;
  rs_ssize sid = rs_conn_request_stream(h.cli.conn, &p, 30, NULL);
  assert_true(sid > 0);
  h_pump_ok(&h);             /* the request arrives; the held server's driver does not produce */
  size_t item = 3 + 6 + 100; /* length prefix, header, data */
  size_t before = rs_conn_pending_bytes(h.srv.conn);
  assert_int_equal(rs_conn_produce_some(h.srv.conn, 3, h.now), 0);
  assert_int_equal(k.calls, 3);
  assert_int_equal(k.sent, 6);
  assert_int_equal(rs_conn_pending_bytes(h.srv.conn) - before, 6 * item);
  assert_true(rs_conn_want_produce(h.srv.conn));
  assert_int_equal(rs_conn_produce_some(h.srv.conn, 1, h.now), 0);
  assert_int_equal(k.calls, 4);
  assert_int_equal(k.sent, 8);
  /* Credit ends it whatever the budget: 30 elements in all, in 15 calls. */
  assert_int_equal(rs_conn_produce_some(h.srv.conn, UINT32_MAX, h.now), 0);
  assert_int_equal(k.sent, 30);
  assert_int_equal(k.calls, 15);
  assert_false(rs_conn_want_produce(h.srv.conn));
  assert_int_equal(rs_conn_produce_some(h.srv.conn, 0, h.now), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_conn_produce_some(NULL, 10, h.now), RS_ERR_INVALID_ARGUMENT);
  h.hold_srv = false;
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, (uint32_t)sid), 30);
  h_free(&h);
}

static void test_produce_pause_and_resume(void **state) {
  (void)state;
  h_pair h;
  counter k = {.per_call = 10, .pause_after = 3};
  producer_pair(&h, &k);
  rs_payload p = h_pl(NULL, "go");
  rs_ssize sid = rs_conn_request_stream(h.cli.conn, &p, 100, NULL);
  h_pump_ok(&h);
  assert_int_equal(k.sent, 3);
  int calls = k.calls;
  h_pump_ok(&h);
  assert_int_equal(k.calls, calls); /* paused: not called */
  assert_false(rs_conn_want_produce(h.srv.conn));
  /* Resumed from outside any callback (a timer, another connection): the driver is woken. */
  k.pause_after = 0;
  k.limit = 20;
  unsigned wakes = h.srv.wakes;
  assert_int_equal(rs_conn_resume_producer(h.srv.conn, (uint32_t)sid), 0);
  assert_true(h.srv.wakes > wakes);
  assert_true(rs_conn_want_produce(h.srv.conn));
  h_pump_ok(&h);
  assert_int_equal(k.sent, 20);
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, (uint32_t)sid), 20);
  assert_true(h_last(&h.cli)->kind == EV_STREAM_CLOSED);
  assert_int_equal(h_count(&h.srv, EV_STREAM_CLOSED, (uint32_t)sid), 1);
  assert_int_equal(rs_conn_resume_producer(h.srv.conn, (uint32_t)sid), RS_ERR_STREAM_CLOSED);
  h_free(&h);
}

static void test_produce_more_without_sending_is_a_pause(void **state) {
  (void)state;
  h_pair h;
  counter k = {.per_call = 1, .send_nothing = true};
  producer_pair(&h, &k);
  rs_payload p = h_pl(NULL, "go");
  rs_ssize sid = rs_conn_request_stream(h.cli.conn, &p, RS_CREDIT_UNBOUNDED, NULL);
  h_pump_ok(&h); /* would never end if the engine kept calling */
  assert_int_equal(k.calls, 1);
  assert_false(rs_conn_want_produce(h.srv.conn));
  k.send_nothing = false;
  k.limit = 2;
  assert_int_equal(rs_conn_resume_producer(h.srv.conn, (uint32_t)sid), 0);
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, (uint32_t)sid), 2);
  h_free(&h);
}

static void test_produce_round_robin(void **state) {
  (void)state;
  h_pair h;
  counter k = {.per_call = 1, .item_bytes = 100};
  producer_pair_wm(&h, &k, 1000);
  rs_payload p = h_pl(NULL, "go");
  h.hold_srv = true;
  rs_ssize a = rs_conn_request_stream(h.cli.conn, &p, RS_CREDIT_UNBOUNDED, NULL);
  rs_ssize b = rs_conn_request_stream(h.cli.conn, &p, RS_CREDIT_UNBOUNDED, NULL);
  h_pump_ok(&h);
  assert_int_equal(rs_conn_produce(h.srv.conn, h.now), 0);
  assert_true(k.norder >= 4);
  for (int i = 0; i + 1 < k.norder; i++) assert_int_not_equal(k.order[i], k.order[i + 1]);
  assert_true(k.order[0] == (uint32_t)a || k.order[0] == (uint32_t)b);
  h_free(&h);
}

/* A producer that resumes its own stream inside on_produce (rs_feed does: a pull source's first
 * push wakes the producer) and keeps credit after the call: the stream was queued as ready twice,
 * which looped the ready list on itself and spun rs_conn_produce for ever (found by the gateway's
 * tests: a client-managed sub of more than 64 elements hung the backend). */
static void test_produce_resume_inside_on_produce(void **state) {
  (void)state;
  h_pair h;
  counter k = {.per_call = 2, .resume_first = true};
  producer_pair(&h, &k);
  rs_payload p = h_pl(NULL, "go");
  rs_ssize a = rs_conn_request_stream(h.cli.conn, &p, 7, NULL);
  rs_ssize b = rs_conn_request_stream(h.cli.conn, &p, 5, NULL);
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, (uint32_t)a), 7);
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, (uint32_t)b), 5);
  assert_int_equal(k.calls, 4 + 3);
  assert_false(rs_conn_want_produce(h.srv.conn));
  assert_int_equal(rs_conn_request_n(h.cli.conn, (uint32_t)a, 3), 0);
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, (uint32_t)a), 10);
  h_free(&h);
}

static void test_set_producer_misuse(void **state) {
  (void)state;
  h_pair h;
  counter k = {.per_call = 1};
  h_init(&h);
  h.srv.echo = false;
  h.srv.producer = produce_items;
  h.srv.producer_data = &k;
  h_start(&h);
  h_pump_ok(&h);
  rs_payload p = h_pl(NULL, "go");
  rs_ssize sid = rs_conn_request_stream(h.cli.conn, &p, 2, NULL);
  /* A request-stream's requester has no half to send on. */
  assert_int_equal(rs_conn_set_producer(h.cli.conn, (uint32_t)sid), RS_ERR_INVALID_STATE);
  assert_int_equal(rs_conn_set_producer(h.cli.conn, 999), RS_ERR_STREAM_CLOSED);
  assert_int_equal(rs_conn_set_producer(NULL, 1), RS_ERR_INVALID_ARGUMENT);
  h_pump_ok(&h);
  /* Without a producer, resume is a misuse. */
  assert_int_equal(rs_conn_resume_producer(h.srv.conn, (uint32_t)sid), RS_ERR_INVALID_STATE);
  /* A channel's requester may produce. */
  rs_ssize ch = rs_conn_request_channel(h.cli.conn, &p, 1, false, NULL);
  assert_int_equal(rs_conn_set_producer(h.cli.conn, (uint32_t)ch), 0);
  h_free(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_produce_honours_credit),
      cmocka_unit_test(test_produce_stops_at_high_watermark),
      cmocka_unit_test(test_produce_some_stops_at_its_budget),
      cmocka_unit_test(test_produce_pause_and_resume),
      cmocka_unit_test(test_produce_more_without_sending_is_a_pause),
      cmocka_unit_test(test_produce_round_robin),
      cmocka_unit_test(test_produce_resume_inside_on_produce),
      cmocka_unit_test(test_set_producer_misuse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
