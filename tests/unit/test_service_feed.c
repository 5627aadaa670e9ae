/*
 * Service layer: feeds (the responder's half of a stream behind a bounded queue, sent by the
 * pull producer) and topics (fan-out to feeds). Items go out only as credit and the output
 * watermark allow; pause and resume; completion and errors; the overflow policies; cancel and
 * connection loss free the feed (ASan's leak check makes "no leak" an assertion); pull sources;
 * channel input; topics deliver to their own subscribers only.
 */
#include "test_service.h"

/* What the route handler does with a new stream, and what came back. */
typedef struct feed_ctx {
  rs_feed_options o;
  rs_feed *feed[8]; /* by order of arrival; NULL once on_close ran */
  int nfeeds;
  int closes;
  int reason[8];
  rs_topics *topics; /* subscribe there instead (topic = request data) */
  bool anonymous;    /* feeds made by rs_topics_subscribe, which the test does not see */
  int pulls;
  int pull_limit; /* on_pull: items to produce in all, then complete */
  int pull_batch; /* on_pull: items per call at most (0: its credit) */
  int pulled;
  int inputs;
} feed_ctx;

static feed_ctx ctx;

static void on_close(rs_feed *f, int reason, void *user) {
  assert_ptr_equal(user, &ctx);
  ctx.closes++;
  for (int i = 0; i < ctx.nfeeds; i++) {
    if (ctx.feed[i] != f) continue;
    ctx.reason[i] = reason;
    ctx.feed[i] = NULL;
    return;
  }
  assert_true(ctx.anonymous); /* a topic's subscriber: the test never saw the feed */
}

static void on_pull(rs_feed *f, uint64_t credit, void *user) {
  (void)user;
  ctx.pulls++;
  char item[16];
  uint64_t max = ctx.pull_batch ? (uint64_t)ctx.pull_batch : credit;
  for (uint64_t k = 0; k < credit && k < max && ctx.pulled < ctx.pull_limit; k++) {
    int n = snprintf(item, sizeof item, "p%d", ctx.pulled++);
    assert_int_equal(rs_feed_push_data(f, item, (size_t)n), 0);
  }
  if (ctx.pulled == ctx.pull_limit) assert_int_equal(rs_feed_complete(f), 0);
}

static void on_input(rs_feed *f, const rs_payload *p, unsigned flags, void *user) {
  (void)user;
  ctx.inputs++;
  /* Echo channel input back through the queue. */
  if (flags & RS_PAYLOAD_NEXT) assert_int_equal(rs_feed_push(f, p), 0);
  if (flags & RS_PAYLOAD_COMPLETE) assert_int_equal(rs_feed_complete(f), 0);
}

static int feed_route(rs_conn *c, const rs_request *r, void *user) {
  (void)user;
  rs_feed *f = NULL;
  if (ctx.topics) {
    char topic[64];
    snprintf(topic, sizeof topic, "%.*s", (int)r->payload.data.len,
             (const char *)r->payload.data.ptr);
    assert_int_equal(rs_topics_subscribe(ctx.topics, topic, c, r->stream_id, &ctx.o), 0);
    ctx.anonymous = true;
    return 0;
  }
  assert_int_equal(rs_feed_new(&f, c, r->stream_id, &ctx.o), 0);
  assert_ptr_equal(rs_feed_conn(f), c);
  assert_int_equal(rs_feed_stream_id(f), r->stream_id);
  assert_ptr_equal(rs_feed_user(f), &ctx);
  ctx.feed[ctx.nfeeds++] = f;
  if (r->type == RS_FRAME_REQUEST_CHANNEL && ctx.o.on_input) {
    on_input(f, &r->payload, RS_PAYLOAD_NEXT | (r->complete ? RS_PAYLOAD_COMPLETE : 0), NULL);
    if (!r->complete) rs_conn_request_n(c, r->stream_id, 100);
  }
  return 0;
}

static rs_router *feed_router(void) {
  memset(&ctx, 0, sizeof ctx);
  rs_feed_options_default(&ctx.o);
  ctx.o.on_close = on_close;
  ctx.o.user = &ctx;
  rs_router *r = rs_router_new(NULL);
  assert_int_equal(rs_router_add(r, "feed", RS_MODEL_REQUEST_STREAM | RS_MODEL_REQUEST_CHANNEL,
                                 feed_route, NULL),
                   0);
  return r;
}

static rs_ssize subscribe(h_pair *h, uint64_t credit, const char *data) {
  uint8_t md[300];
  rs_payload p = svc_req(md, "feed", data);
  rs_ssize sid = rs_conn_request_stream(h->cli.conn, &p, credit, NULL);
  assert_true(sid > 0);
  h_pump_ok(h);
  return sid;
}

static void push_n(rs_feed *f, int from, int n) {
  char item[16];
  for (int i = from; i < from + n; i++) {
    int len = snprintf(item, sizeof item, "i%d", i);
    assert_int_equal(rs_feed_push_data(f, item, (size_t)len), 0);
  }
}

/* The items the client got on `sid`, in order, must be i<from> .. i<from+n-1>. */
static void assert_items(h_pair *h, uint32_t sid, int from, int n) {
  assert_int_equal(h_count(&h->cli, EV_PAYLOAD, sid), (size_t)n);
  char want[16];
  for (int i = 0; i < n; i++) {
    snprintf(want, sizeof want, "i%d", from + i);
    assert_string_equal((const char *)h_find(&h->cli, EV_PAYLOAD, sid, (size_t)i)->data, want);
  }
}

static void test_feed_honours_credit(void **state) {
  (void)state;
  rs_router *r = feed_router();
  h_pair h;
  svc_start(&h, r);
  uint32_t sid = (uint32_t)subscribe(&h, 3, "");
  rs_feed *f = ctx.feed[0];
  push_n(f, 0, 10);
  h_pump_ok(&h);
  assert_items(&h, sid, 0, 3);
  assert_int_equal(rs_feed_queued(f), 7);
  assert_false(rs_conn_want_produce(h.srv.conn));
  assert_int_equal(rs_conn_request_n(h.cli.conn, sid, 4), 0);
  h_pump_ok(&h);
  assert_items(&h, sid, 0, 7);
  assert_int_equal(rs_feed_queued(f), 3);
  assert_int_equal(rs_conn_request_n(h.cli.conn, sid, 100), 0);
  h_pump_ok(&h);
  assert_items(&h, sid, 0, 10);
  /* The queue ran dry and the producer paused; a push resumes it. */
  assert_false(rs_conn_want_produce(h.srv.conn));
  push_n(f, 10, 2);
  assert_true(rs_conn_want_produce(h.srv.conn));
  h_pump_ok(&h);
  assert_items(&h, sid, 0, 12);
  assert_int_equal(ctx.closes, 0);
  /* The last queued item carries COMPLETE. */
  push_n(f, 12, 1);
  assert_int_equal(rs_feed_complete(f), 0);
  assert_int_equal(rs_feed_push_data(f, "x", 1), RS_ERR_STREAM_CLOSED);
  assert_int_equal(rs_feed_complete(f), RS_ERR_STREAM_CLOSED);
  h_pump_ok(&h);
  assert_items(&h, sid, 0, 13);
  assert_int_equal(h_find(&h.cli, EV_PAYLOAD, sid, 12)->flags,
                   RS_PAYLOAD_NEXT | RS_PAYLOAD_COMPLETE);
  assert_int_equal(ctx.closes, 1);
  assert_int_equal(ctx.reason[0], 0);
  svc_free(&h, r);
}

/* Output back-pressure: with the server's output not taken, production stops at the watermark
 * and the rest waits in the feed's queue; once the output moves, everything arrives in order. */
static void test_feed_stops_at_watermark(void **state) {
  (void)state;
  rs_router *r = feed_router();
  h_pair h;
  h_init(&h);
  ctx.o.max_items = 100000;
  ctx.o.max_bytes = 100u << 20;
  memset(&h, 0, sizeof h); /* svc_start re-inits; set the watermark through a custom start */
  h_init(&h);
  h.cs.metadata_mime = rs_bytes_str(RS_MIME_COMPOSITE_METADATA);
  h.ss.output_high_watermark = 4096;
  rs_conn_callbacks cb;
  memset(&cb, 0, sizeof cb);
  rs_router_callbacks(&cb);
  assert_int_equal(rs_conn_new(&h.cli.conn, &h.cs, &h_callbacks, &h.cli, NULL, h.now), 0);
  assert_int_equal(rs_conn_new(&h.srv.conn, &h.ss, &cb, r, NULL, h.now), 0);
  h_pump_ok(&h);
  uint32_t sid = (uint32_t)subscribe(&h, RS_CREDIT_UNBOUNDED, "");
  rs_feed *f = ctx.feed[0];
  h.hold_srv = true;
  push_n(f, 0, 5000);
  h_pump_ok(&h);
  assert_int_equal(rs_conn_produce(h.srv.conn, h.now), 0);
  size_t pending = rs_conn_pending_bytes(h.srv.conn);
  assert_true(pending >= 4096);
  assert_true(pending < 4096 + 64 * 16); /* one batch past the watermark at most */
  assert_true(rs_feed_queued(f) > 4000);
  h.hold_srv = false;
  h_pump_ok(&h);
  assert_items(&h, sid, 0, 5000);
  assert_int_equal(rs_feed_queued(f), 0);
  svc_free(&h, r);
}

static void test_feed_overflow_error(void **state) {
  (void)state;
  rs_router *r = feed_router();
  ctx.o.max_items = 4;
  h_pair h;
  svc_start(&h, r);
  uint32_t sid = (uint32_t)subscribe(&h, 1, "");
  rs_feed *f = ctx.feed[0];
  push_n(f, 0, 1);
  h_pump_ok(&h);
  assert_items(&h, sid, 0, 1); /* the credit is used; the next ones wait */
  push_n(f, 1, 4);
  assert_int_equal(rs_feed_queued(f), 4);
  assert_int_equal(rs_feed_push_data(f, "over", 4), RS_ERR_FLOODED);
  assert_int_equal(rs_feed_push_data(f, "late", 4), RS_ERR_STREAM_CLOSED);
  assert_int_equal(rs_feed_queued(f), 0);
  assert_int_equal(ctx.closes, 0); /* never inside a feed call */
  h_advance(&h, 1);                /* ended outside a callback: delivered by the timer call */
  svc_assert_error(&h, sid, RS_ERROR_APPLICATION_ERROR, "subscriber too slow");
  assert_items(&h, sid, 0, 1);
  assert_int_equal(ctx.closes, 1);
  assert_int_equal(ctx.reason[0], RS_ERR_FLOODED);
  svc_free(&h, r);
}

/* The byte bound, and an item alone over it is still taken into an empty queue. */
static void test_feed_overflow_bytes(void **state) {
  (void)state;
  rs_router *r = feed_router();
  ctx.o.max_bytes = 10;
  ctx.o.overflow = RS_FEED_OVERFLOW_REFUSE;
  h_pair h;
  svc_start(&h, r);
  uint32_t sid = (uint32_t)subscribe(&h, 1, "");
  h_pump_ok(&h);
  rs_conn_request_n(h.cli.conn, sid, 0); /* no-op: keeps the credit at 1 */
  rs_feed *f = ctx.feed[0];
  /* Credit 1 is there: the first push is sent at the next production, the rest queue. */
  h.hold_srv = true;
  assert_int_equal(rs_feed_push_data(f, "0123456789abcdef", 16), 0); /* alone over the bound */
  assert_int_equal(rs_feed_push_data(f, "x", 1), RS_ERR_WOULD_BLOCK);
  h.hold_srv = false;
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, sid), 1);
  assert_int_equal(rs_feed_push_data(f, "01234", 5), 0);
  assert_int_equal(rs_feed_push_data(f, "56789", 5), 0);
  assert_int_equal(rs_feed_push_data(f, "x", 1), RS_ERR_WOULD_BLOCK); /* 11 bytes */
  assert_int_equal(rs_feed_queued(f), 2);
  assert_int_equal(ctx.closes, 0);
  svc_free(&h, r);
}

static void test_feed_drop_oldest(void **state) {
  (void)state;
  rs_router *r = feed_router();
  ctx.o.max_items = 3;
  ctx.o.overflow = RS_FEED_OVERFLOW_DROP_OLDEST;
  h_pair h;
  svc_start(&h, r);
  uint32_t sid = (uint32_t)subscribe(&h, 1, "");
  rs_feed *f = ctx.feed[0];
  push_n(f, 0, 1);
  h_pump_ok(&h);
  push_n(f, 1, 10); /* i1..i10 into 3 places: i8, i9, i10 remain */
  assert_int_equal(rs_feed_queued(f), 3);
  assert_int_equal(rs_feed_dropped(f), 7);
  rs_conn_request_n(h.cli.conn, sid, 10);
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, sid), 4);
  assert_string_equal((const char *)h_find(&h.cli, EV_PAYLOAD, sid, 1)->data, "i8");
  assert_string_equal((const char *)h_find(&h.cli, EV_PAYLOAD, sid, 3)->data, "i10");
  svc_free(&h, r);
}

/* The requester cancels, or the connection goes: the feed is told, freed, and its queue too. */
static void test_feed_cancel_and_close(void **state) {
  (void)state;
  rs_router *r = feed_router();
  h_pair h;
  svc_start(&h, r);
  uint32_t a = (uint32_t)subscribe(&h, 1, "");
  uint32_t b = (uint32_t)subscribe(&h, 1, "");
  uint32_t c = (uint32_t)subscribe(&h, 1, "");
  push_n(ctx.feed[0], 0, 20);
  push_n(ctx.feed[1], 0, 20);
  push_n(ctx.feed[2], 0, 20);
  h_pump_ok(&h);
  assert_int_equal(rs_conn_cancel(h.cli.conn, a), 0);
  h_pump_ok(&h);
  assert_int_equal(ctx.closes, 1);
  assert_null(ctx.feed[0]);
  assert_int_equal(ctx.reason[0], RS_ERR_CANCELED);
  /* rs_feed_error: at once, whatever is queued. */
  assert_int_equal(rs_feed_error(ctx.feed[1], RS_ERROR_APPLICATION_ERROR, rs_bytes_str("bye")), 0);
  assert_int_equal(rs_feed_error(ctx.feed[1], RS_ERROR_APPLICATION_ERROR, rs_bytes_str("again")),
                   RS_ERR_STREAM_CLOSED);
  h_pump_ok(&h);
  svc_assert_error(&h, b, RS_ERROR_APPLICATION_ERROR, "bye");
  assert_int_equal(ctx.reason[1], 0);
  /* The connection ends with a queue still full. */
  assert_int_equal(rs_conn_abort(h.srv.conn, rs_bytes_str("stop")), 0);
  assert_int_equal(rs_conn_handle_expiry(h.srv.conn, h.now), 0);
  assert_int_equal(ctx.closes, 3);
  assert_int_equal(ctx.reason[2], RS_ERR_CLOSED);
  (void)c;
  svc_free(&h, r);
}

static void test_feed_pull_source(void **state) {
  (void)state;
  rs_router *r = feed_router();
  ctx.o.on_pull = on_pull;
  ctx.pull_limit = 25;
  h_pair h;
  svc_start(&h, r);
  uint32_t sid = (uint32_t)subscribe(&h, 10, "");
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, sid), 10);
  assert_int_equal(ctx.pulled, 10); /* no more than the credit asked for */
  rs_conn_request_n(h.cli.conn, sid, 100);
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, sid), 25);
  assert_string_equal((const char *)h_find(&h.cli, EV_PAYLOAD, sid, 24)->data, "p24");
  assert_true(h_find(&h.cli, EV_PAYLOAD, sid, 24)->flags & RS_PAYLOAD_COMPLETE);
  assert_int_equal(ctx.closes, 1);
  assert_int_equal(ctx.reason[0], 0);
  svc_free(&h, r);
}

/* A pull source that pushes less than its credit into its empty queue resumes its own producer
 * from inside the engine's producer call; the engine put the stream on its ready list twice and
 * the list became a cycle (the producer loop never ended: collab-service spun at 100% CPU on its
 * first presence stream). */
static void test_feed_pull_source_below_credit(void **state) {
  (void)state;
  rs_router *r = feed_router();
  ctx.o.on_pull = on_pull;
  ctx.pull_limit = 3;
  ctx.pull_batch = 1;
  h_pair h;
  svc_start(&h, r);
  uint32_t sid = (uint32_t)subscribe(&h, 10, "");
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, sid), 3);
  assert_int_equal(ctx.pulls, 3);
  assert_true(h_find(&h.cli, EV_PAYLOAD, sid, 2)->flags & RS_PAYLOAD_COMPLETE);
  assert_int_equal(ctx.closes, 1);
  svc_free(&h, r);
}

static void test_feed_channel_input(void **state) {
  (void)state;
  rs_router *r = feed_router();
  ctx.o.on_input = on_input;
  h_pair h;
  svc_start(&h, r);
  uint8_t md[300];
  rs_payload p = svc_req(md, "feed", "first");
  rs_ssize sid = rs_conn_request_channel(h.cli.conn, &p, 100, false, NULL);
  h_pump_ok(&h);
  rs_payload more = h_pl(NULL, "second");
  assert_int_equal(rs_conn_send_payload(h.cli.conn, (uint32_t)sid, &more, true), 0);
  h_pump_ok(&h);
  assert_int_equal(ctx.inputs, 2); /* "first", then "second" with COMPLETE */
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, (uint32_t)sid), 2);
  assert_string_equal((const char *)h_find(&h.cli, EV_PAYLOAD, (uint32_t)sid, 1)->data, "second");
  assert_int_equal(ctx.closes, 1);
  svc_free(&h, r);
}

static void test_feed_misuse(void **state) {
  (void)state;
  rs_router *r = feed_router();
  h_pair h;
  svc_start(&h, r);
  rs_feed *f;
  assert_int_equal(rs_feed_new(&f, h.srv.conn, 2, NULL), RS_ERR_STREAM_CLOSED);
  assert_int_equal(rs_feed_new(NULL, h.srv.conn, 2, NULL), RS_ERR_INVALID_ARGUMENT);
  rs_feed_options o;
  rs_feed_options_default(&o);
  o.max_items = 0;
  assert_int_equal(rs_feed_new(&f, h.srv.conn, 2, &o), RS_ERR_INVALID_ARGUMENT);
  /* Our own request-stream has no half to send on. */
  rs_payload p = h_pl(NULL, "x");
  rs_ssize sid = rs_conn_request_stream(h.srv.conn, &p, 1, NULL);
  assert_int_equal(rs_feed_new(&f, h.srv.conn, (uint32_t)sid, NULL), RS_ERR_INVALID_STATE);
  assert_int_equal(rs_feed_push(NULL, &p), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_feed_complete(NULL), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_feed_wake(NULL), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_feed_queued(NULL), 0);
  svc_free(&h, r);
}

/* ---- topics ---- */

static void test_topics_fan_out(void **state) {
  (void)state;
  rs_router *r = feed_router();
  ctx.topics = rs_topics_new(NULL);
  h_pair h;
  svc_start(&h, r);
  uint32_t a1 = (uint32_t)subscribe(&h, 100, "a");
  uint32_t a2 = (uint32_t)subscribe(&h, 100, "a");
  uint32_t b1 = (uint32_t)subscribe(&h, 100, "b");
  assert_int_equal(rs_topics_subscribers(ctx.topics, "a"), 2);
  assert_int_equal(rs_topics_subscribers(ctx.topics, "b"), 1);
  assert_int_equal(rs_topics_count(ctx.topics), 2);
  assert_int_equal(rs_topics_publish_data(ctx.topics, "a", "i0", 2), 2);
  assert_int_equal(rs_topics_publish_data(ctx.topics, "b", "i0", 2), 1);
  assert_int_equal(rs_topics_publish_data(ctx.topics, "a", "i1", 2), 2);
  assert_int_equal(rs_topics_publish_data(ctx.topics, "nobody", "x", 1), 0);
  h_pump_ok(&h);
  assert_items(&h, a1, 0, 2);
  assert_items(&h, a2, 0, 2);
  assert_items(&h, b1, 0, 1);
  /* A subscriber that leaves is out of the topic; the last one takes the topic with it. */
  rs_conn_cancel(h.cli.conn, a1);
  h_pump_ok(&h);
  assert_int_equal(rs_topics_subscribers(ctx.topics, "a"), 1);
  assert_int_equal(rs_topics_publish_data(ctx.topics, "a", "i2", 2), 1);
  rs_conn_cancel(h.cli.conn, b1);
  h_pump_ok(&h);
  assert_int_equal(rs_topics_subscribers(ctx.topics, "b"), 0);
  assert_int_equal(rs_topics_count(ctx.topics), 1);
  assert_items(&h, a2, 0, 3);
  assert_int_equal(rs_topics_publish(ctx.topics, NULL, NULL), RS_ERR_INVALID_ARGUMENT);
  svc_free(&h, r);
  rs_topics_free(ctx.topics);
}

/* A slow subscriber is cut off without holding back the others. */
static void test_topics_slow_subscriber(void **state) {
  (void)state;
  rs_router *r = feed_router();
  ctx.topics = rs_topics_new(NULL);
  ctx.o.max_items = 8;
  h_pair h;
  svc_start(&h, r);
  uint32_t fast = (uint32_t)subscribe(&h, RS_CREDIT_UNBOUNDED, "room");
  uint32_t slow = (uint32_t)subscribe(&h, 2, "room");
  char item[16];
  for (int i = 0; i < 50; i++) {
    int n = snprintf(item, sizeof item, "i%d", i);
    rs_topics_publish_data(ctx.topics, "room", item, (size_t)n);
    h_pump_ok(&h);
  }
  assert_items(&h, fast, 0, 50);
  assert_items(&h, slow, 0, 2);
  svc_assert_error(&h, slow, RS_ERROR_APPLICATION_ERROR, "subscriber too slow");
  assert_int_equal(rs_topics_subscribers(ctx.topics, "room"), 1);
  /* The connection goes: every subscriber leaves, nothing leaks. */
  rs_conn_abort(h.srv.conn, rs_bytes_str("stop"));
  rs_conn_handle_expiry(h.srv.conn, h.now);
  assert_int_equal(rs_topics_count(ctx.topics), 0);
  assert_int_equal(ctx.closes, 2);
  svc_free(&h, r);
  rs_topics_free(ctx.topics);
}

/* Freed with subscribers: their feeds go on without the table. */
static void test_topics_free_with_subscribers(void **state) {
  (void)state;
  rs_router *r = feed_router();
  ctx.topics = rs_topics_new(NULL);
  h_pair h;
  svc_start(&h, r);
  char name[16];
  for (int i = 0; i < 40; i++) { /* enough topics to grow the table */
    snprintf(name, sizeof name, "t%d", i);
    uint8_t md[300];
    rs_payload p = svc_req(md, "feed", name);
    assert_true(rs_conn_request_stream(h.cli.conn, &p, 5, NULL) > 0);
  }
  h_pump_ok(&h);
  assert_int_equal(rs_topics_count(ctx.topics), 40);
  assert_int_equal(rs_topics_publish_data(ctx.topics, "t39", "x", 1), 1);
  rs_topics_free(ctx.topics);
  ctx.topics = NULL;
  svc_free(&h, r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_feed_honours_credit),
      cmocka_unit_test(test_feed_stops_at_watermark),
      cmocka_unit_test(test_feed_overflow_error),
      cmocka_unit_test(test_feed_overflow_bytes),
      cmocka_unit_test(test_feed_drop_oldest),
      cmocka_unit_test(test_feed_cancel_and_close),
      cmocka_unit_test(test_feed_pull_source),
      cmocka_unit_test(test_feed_pull_source_below_credit),
      cmocka_unit_test(test_feed_channel_input),
      cmocka_unit_test(test_feed_misuse),
      cmocka_unit_test(test_topics_fan_out),
      cmocka_unit_test(test_topics_slow_subscriber),
      cmocka_unit_test(test_topics_free_with_subscribers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
