/*
 * Protocol engine: lease (grant, honour, reject over-lease requests, expiry, renewal) and
 * availability() for load balancers.
 */
#include "test_conn_harness.h"

static void lease_pair(h_pair *h, uint32_t n, uint32_t ttl) {
  h_init(h);
  h->cs.lease = true;
  h->ss.lease = true;
  h->srv.lease_on_setup = n;
  h->srv.lease_ttl = ttl;
  h_start(h);
}

/* Regression: a client engine whose transport never connected answered 1.0, so a least-loaded
 * pool would pick a backend it had never reached. */
static void test_availability_zero_before_setup_written(void **state) {
  (void)state;
  h_pair h;
  h_init(&h);
  h_start(&h);
  assert_int_equal(rs_conn_get_state(h.cli.conn), RS_CONN_STATE_ESTABLISHED);
  assert_true(rs_conn_availability(h.cli.conn, h.now) == 0.0);
  /* Part of SETUP written is not enough. */
  assert_int_equal(rs_conn_consumed(h.cli.conn, 3), 0);
  assert_true(rs_conn_availability(h.cli.conn, h.now) == 0.0);
  rs_iov iov[4];
  int n = rs_conn_pending_output(h.cli.conn, iov, 4);
  assert_true(n >= 1);
  assert_int_equal(rs_conn_consumed(h.cli.conn, rs_conn_pending_bytes(h.cli.conn)), 0);
  assert_true(rs_conn_availability(h.cli.conn, h.now) == 1.0);
  h_free(&h);
}

static void test_lease_grant_and_honour(void **state) {
  (void)state;
  h_pair h;
  lease_pair(&h, 2, 1000);
  rs_payload p = h_pl(NULL, "x");
  /* Before the LEASE arrives: nothing may be sent, the error is local and immediate. */
  assert_true(rs_conn_availability(h.cli.conn, h.now) == 0.0);
  size_t before = rs_conn_pending_bytes(h.cli.conn);
  assert_int_equal(rs_conn_request_response(h.cli.conn, &p, NULL), RS_ERR_NO_LEASE);
  assert_int_equal(rs_conn_request_fnf(h.cli.conn, &p), RS_ERR_NO_LEASE);
  assert_int_equal(rs_conn_pending_bytes(h.cli.conn), before);
  assert_int_equal(rs_conn_stream_count(h.cli.conn), 0);
  h_pump_ok(&h);
  const h_event *l = h_find(&h.cli, EV_LEASE, 0, 0);
  assert_int_equal(l->n, 2);
  assert_int_equal(l->code, 1000);
  assert_false(l->has_md);
  assert_true(rs_conn_availability(h.cli.conn, h.now) == 1.0);
  assert_true(rs_conn_request_response(h.cli.conn, &p, NULL) > 0);
  assert_true(rs_conn_availability(h.cli.conn, h.now) == 0.5);
  assert_true(rs_conn_request_stream(h.cli.conn, &p, 3, NULL) > 0);
  assert_true(rs_conn_availability(h.cli.conn, h.now) == 0.0);
  assert_int_equal(rs_conn_request_channel(h.cli.conn, &p, 1, true, NULL), RS_ERR_NO_LEASE);
  /* METADATA_PUSH is not counted against the lease. */
  assert_int_equal(rs_conn_metadata_push(h.cli.conn, rs_bytes_str("m")), 0);
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.srv, EV_REQUEST, UINT32_MAX), 2);
  assert_int_equal(h_count(&h.srv, EV_METADATA_PUSH, 0), 1);
  assert_int_equal(h_count(&h.cli, EV_ERROR, UINT32_MAX), 0);
  h_free(&h);
}

static void test_lease_expiry_and_renewal(void **state) {
  (void)state;
  h_pair h;
  lease_pair(&h, 10, 1000);
  h_pump_ok(&h);
  rs_payload p = h_pl(NULL, "x");
  assert_true(rs_conn_availability(h.cli.conn, h.now + 999) == 1.0);
  assert_true(rs_conn_availability(h.cli.conn, h.now + 1000) == 0.0);
  h_advance(&h, 1000);
  assert_int_equal(rs_conn_request_response(h.cli.conn, &p, NULL), RS_ERR_NO_LEASE);
  /* Renewal replaces the lease, with metadata this time. */
  rs_bytes md = rs_bytes_str("lease-md");
  assert_int_equal(rs_conn_send_lease(h.srv.conn, 5000, 4, &md, h.now), 0);
  h_pump_ok(&h);
  const h_event *l = h_find(&h.cli, EV_LEASE, 0, 1);
  assert_int_equal(l->n, 4);
  assert_int_equal(l->code, 5000);
  assert_true(l->has_md);
  assert_string_equal((char *)l->md, "lease-md");
  assert_true(rs_conn_request_response(h.cli.conn, &p, NULL) > 0);
  assert_true(rs_conn_availability(h.cli.conn, h.now) == 0.75);
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, UINT32_MAX), 1);
  /* A lease of zero stops all requests. */
  assert_int_equal(rs_conn_send_lease(h.srv.conn, 5000, 0, NULL, h.now), 0);
  h_pump_ok(&h);
  assert_true(rs_conn_availability(h.cli.conn, h.now) == 0.0);
  assert_int_equal(rs_conn_request_response(h.cli.conn, &p, NULL), RS_ERR_NO_LEASE);
  /* Values over 31 bits are refused. */
  assert_int_equal(rs_conn_send_lease(h.srv.conn, 0x80000000u, 1, NULL, h.now),
                   RS_ERR_INVALID_ARGUMENT);
  h_free(&h);
}

/* A requester that ignores the lease (hand-packed frames) gets REJECTED; FNF is dropped. */
static void test_lease_enforced_by_responder(void **state) {
  (void)state;
  h_pair h;
  lease_pair(&h, 1, 1000);
  h_pump_ok(&h);
  assert_true(h_feed_hex(&h.srv,
                         "00 00 07 00 00 00 01 10 00 61 "             /* RR 1: within the lease */
                         "00 00 07 00 00 00 03 10 00 62 "             /* RR 3: over */
                         "00 00 07 00 00 00 05 14 00 63 "             /* FNF 5: over, dropped */
                         "00 00 0B 00 00 00 07 18 00 00 00 00 01 64", /* STREAM 7: over */
                         h.now) > 0);
  assert_int_equal(h_count(&h.srv, EV_REQUEST, UINT32_MAX), 1);
  size_t len;
  uint8_t *out = h_take_output(&h.srv, &len);
  const uint8_t *fr[8];
  size_t fl[8];
  size_t n = h_split(out, len, fr, fl, 8);
  assert_int_equal(n, 3); /* echo of 1, REJECTED for 3 and 7 */
  assert_int_equal(h_frame_type(fr[0]), RS_FRAME_PAYLOAD);
  assert_int_equal(h_frame_sid(fr[1]), 3);
  tu_assert_hex(fr[1] + 6, 4, "00 00 02 02");
  assert_int_equal(h_frame_sid(fr[2]), 7);
  tu_assert_hex(fr[2] + 6, 4, "00 00 02 02");
  free(out);
  /* An expired lease rejects too. */
  h.now += 2000;
  rs_conn_handle_expiry(h.srv.conn, h.now);
  assert_int_equal(rs_conn_send_lease(h.srv.conn, 100, 5, NULL, h.now), 0);
  free(h_take_output(&h.srv, &len));
  assert_true(h_feed_hex(&h.srv, "00 00 07 00 00 00 09 10 00 61", h.now + 100) > 0);
  out = h_take_output(&h.srv, &len);
  tu_assert_hex(out + 9, 4, "00 00 02 02");
  free(out);
  /* A lease runs from the time given, not from the engine's last input: granted by a timer 5 s
   * after the last frame, it must not be expired on arrival. */
  h.now += 5000;
  assert_int_equal(rs_conn_send_lease(h.srv.conn, 100, 5, NULL, h.now), 0);
  free(h_take_output(&h.srv, &len));
  assert_true(h_feed_hex(&h.srv, "00 00 07 00 00 00 0b 10 00 61", h.now + 50) > 0);
  out = h_take_output(&h.srv, &len);
  n = h_split(out, len, fr, fl, 8);
  assert_int_equal(n, 1);
  assert_int_equal(h_frame_type(fr[0]), RS_FRAME_PAYLOAD); /* answered, not REJECTED */
  assert_int_equal(h_frame_sid(fr[0]), 11);
  free(out);
  h_free(&h);
}

/* Lease is symmetric: the server's requester needs a lease from the client. */
static void test_lease_server_requester(void **state) {
  (void)state;
  h_pair h;
  lease_pair(&h, 1, 1000);
  h_pump_ok(&h);
  h.cli.echo = true;
  rs_payload p = h_pl(NULL, "x");
  assert_int_equal(rs_conn_request_response(h.srv.conn, &p, NULL), RS_ERR_NO_LEASE);
  assert_true(rs_conn_availability(h.srv.conn, h.now) == 0.0);
  assert_int_equal(rs_conn_send_lease(h.cli.conn, 1000, 3, NULL, h.now), 0);
  h_pump_ok(&h);
  assert_int_equal(h_find(&h.srv, EV_LEASE, 0, 0)->n, 3);
  rs_ssize id = rs_conn_request_response(h.srv.conn, &p, NULL);
  assert_int_equal(id, 2);
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.srv, EV_PAYLOAD, 2), 1);
  h_free(&h);
}

/* A fragmented request counts once against the lease. */
static void test_lease_fragmented_counts_once(void **state) {
  (void)state;
  h_pair h;
  lease_pair(&h, 2, 10000);
  h.cs.mtu = 64;
  rs_conn_free(h.cli.conn);
  assert_int_equal(rs_conn_new(&h.cli.conn, &h.cs, &h_callbacks, &h.cli, NULL, h.now), 0);
  h_pump_ok(&h);
  uint8_t big[1000];
  memset(big, 'b', sizeof(big));
  rs_payload p = {false, {NULL, 0}, {big, sizeof(big)}};
  assert_true(rs_conn_request_response(h.cli.conn, &p, NULL) > 0);
  assert_true(rs_conn_request_response(h.cli.conn, &p, NULL) > 0);
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.srv, EV_REQUEST, UINT32_MAX), 2);
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, UINT32_MAX), 2);
  assert_int_equal(h_count(&h.cli, EV_ERROR, UINT32_MAX), 0);
  h_free(&h);
}

static void test_lease_api_states(void **state) {
  (void)state;
  h_pair h;
  h_init(&h);
  h_start(&h);
  h_pump_ok(&h);
  /* Lease off: no LEASE can be sent, and a LEASE received is ignored. */
  assert_int_equal(rs_conn_send_lease(h.srv.conn, 10, 10, NULL, h.now), RS_ERR_INVALID_STATE);
  assert_true(h_feed_hex(&h.cli, "00 00 0E 00 00 00 00 08 00 00 00 03 E8 00 00 00 0A", h.now) > 0);
  assert_int_equal(h_count(&h.cli, EV_LEASE, 0), 0);
  assert_true(rs_conn_availability(h.cli.conn, h.now) == 1.0);
  h_free(&h);
  /* A server before SETUP cannot grant anything yet. */
  h_init(&h);
  h.ss.lease = true;
  assert_int_equal(h_new_server(&h), 0);
  assert_int_equal(rs_conn_send_lease(h.srv.conn, 10, 10, NULL, h.now), RS_ERR_INVALID_STATE);
  assert_true(rs_conn_availability(h.srv.conn, h.now) == 0.0);
  /* A server with lease on accepts a client without it: then no lease applies. */
  assert_int_equal(rs_conn_new(&h.cli.conn, &h.cs, &h_callbacks, &h.cli, NULL, h.now), 0);
  h_pump_ok(&h);
  rs_payload p = h_pl(NULL, "x");
  assert_true(rs_conn_request_response(h.cli.conn, &p, NULL) > 0);
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, UINT32_MAX), 1);
  h_free(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_availability_zero_before_setup_written),
      cmocka_unit_test(test_lease_grant_and_honour),
      cmocka_unit_test(test_lease_expiry_and_renewal),
      cmocka_unit_test(test_lease_enforced_by_responder),
      cmocka_unit_test(test_lease_server_requester),
      cmocka_unit_test(test_lease_fragmented_counts_once),
      cmocka_unit_test(test_lease_api_states),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
