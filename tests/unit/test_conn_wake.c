/*
 * Protocol engine: on_wake, the hook that lets an event loop flush output queued from outside the
 * connection's own callbacks (no manual wake-up): called when output appears in an empty queue or
 * the deadline moves earlier, never from inside rs_conn_recv*() / rs_conn_handle_expiry().
 */
#include "test_conn_harness.h"

static void test_wake_on_output_from_outside(void **state) {
  (void)state;
  h_pair h;
  h_init(&h);
  h_start(&h);
  assert_int_equal(h.cli.wakes, 0); /* SETUP queued by rs_conn_new: the caller flushes after it */
  h_pump_ok(&h);
  assert_int_equal(rs_conn_pending_bytes(h.cli.conn), 0);
  rs_payload p = h_pl(NULL, "x");
  assert_true(rs_conn_request_response(h.cli.conn, &p, NULL) > 0);
  assert_int_equal(h.cli.wakes, 1);
  /* The queue is not empty: the driver already knows. */
  assert_true(rs_conn_request_fnf(h.cli.conn, &p) > 0);
  assert_int_equal(h.cli.wakes, 1);
  h_pump_ok(&h);
  assert_int_equal(h.srv.wakes, 0); /* the server only answered from inside its dispatch */
  assert_true(rs_conn_request_stream(h.cli.conn, &p, 2, NULL) > 0);
  assert_int_equal(h.cli.wakes, 2);
  h_free(&h);
}

/* A callback of one connection that sends on another (a gateway forwarding): the other is woken. */
typedef struct fwd {
  rs_conn *other;
  uint32_t sid;
} fwd;

static void forward_hook(h_peer *p, const h_event *e) {
  fwd *f = p->hook_data;
  if (e->kind != EV_PAYLOAD) return;
  rs_payload pl = h_pl(NULL, "forwarded");
  assert_true(rs_conn_request_fnf(f->other, &pl) > 0);
}

static void test_wake_from_another_connections_callback(void **state) {
  (void)state;
  h_pair a, b;
  h_init(&a);
  h_init(&b);
  h_start(&a);
  h_start(&b);
  h_pump_ok(&a);
  h_pump_ok(&b);
  fwd f = {b.cli.conn, 0};
  a.cli.hook = forward_hook;
  a.cli.hook_data = &f;
  rs_payload p = h_pl(NULL, "x");
  assert_true(rs_conn_request_response(a.cli.conn, &p, NULL) > 0);
  unsigned before = a.cli.wakes;
  h_pump_ok(&a); /* a's client gets the answer inside its dispatch and sends on b */
  assert_int_equal(a.cli.wakes, before);
  assert_int_equal(b.cli.wakes, 1);
  assert_true(rs_conn_pending_bytes(b.cli.conn) > 0);
  h_pump_ok(&b);
  assert_int_equal(h_count(&b.srv, EV_REQUEST, UINT32_MAX), 1);
  h_free(&a);
  h_free(&b);
}

static void test_wake_when_deadline_moves_earlier(void **state) {
  (void)state;
  h_pair h;
  h_init(&h);
  h.srv.echo = false;
  h_start(&h);
  h_pump_ok(&h);
  rs_payload p = h_pl(NULL, "x");
  rs_ssize sid = rs_conn_request_stream(h.cli.conn, &p, 5, NULL);
  assert_true(sid > 0);
  h_pump_ok(&h);
  unsigned before = h.cli.wakes;
  assert_true(rs_conn_next_deadline(h.cli.conn) > h.now);
  /* Cancel queues CANCEL and owes on_stream_closed: the deadline is now. */
  assert_int_equal(rs_conn_cancel(h.cli.conn, (uint32_t)sid), 0);
  assert_true(h.cli.wakes > before);
  assert_true(rs_conn_next_deadline(h.cli.conn) <= h.now);
  /* Close from outside with output still queued: woken for the owed on_close. */
  before = h.cli.wakes;
  assert_int_equal(rs_conn_abort(h.cli.conn, rs_bytes_str("bye")), 0);
  assert_true(h.cli.wakes > before);
  h_free(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_wake_on_output_from_outside),
      cmocka_unit_test(test_wake_from_another_connections_callback),
      cmocka_unit_test(test_wake_when_deadline_moves_earlier),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
