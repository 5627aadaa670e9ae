/*
 * Protocol engine: SETUP, the five interaction models, cancel and error handling, connection
 * errors, keepalive and graceful close. Two engines back to back in memory, virtual time.
 */
#include "test_conn_harness.h"

#include "core/conn_internal.h"

static void start_pair(h_pair *h) {
  h_init(h);
  h_start(h);
  h_pump_ok(h);
}

/* ---- SETUP ---------------------------------------------------------------------------------- */

static void test_setup_bytes(void **state) {
  (void)state;
  h_pair h;
  h_init(&h);
  h.cs.keepalive_interval_ms = 500;
  h.cs.max_lifetime_ms = 1500;
  h.cs.metadata_mime = rs_bytes_str("a");
  h.cs.data_mime = rs_bytes_str("b");
  assert_int_equal(rs_conn_new(&h.cli.conn, &h.cs, &h_callbacks, &h.cli, NULL, 0), 0);
  size_t len;
  uint8_t *out = h_take_output(&h.cli, &len);
  /* The spec's test vector, behind its TCP length prefix. */
  tu_assert_hex(out, len,
                "00 00 16 00 00 00 00 04 00 00 01 00 00 00 00 01 F4 00 00 05 DC 01 61 01 62");
  free(out);
  h_free(&h);
}

static void test_setup_accepted_with_payload(void **state) {
  (void)state;
  h_pair h;
  h_init(&h);
  h.cs.setup_payload = h_pl("md", "hello");
  h_start(&h);
  h_pump_ok(&h);
  const h_event *e = h_find(&h.srv, EV_SETUP, 0, 0);
  assert_int_equal(e->n, 1000);
  assert_int_equal(e->code, 5000);
  assert_true(e->has_md);
  assert_string_equal((char *)e->md, "md");
  assert_string_equal((char *)e->data, "hello");
  assert_int_equal(rs_conn_get_state(h.srv.conn), RS_CONN_STATE_ESTABLISHED);
  assert_int_equal(rs_conn_get_state(h.cli.conn), RS_CONN_STATE_ESTABLISHED);
  assert_true(rs_conn_availability(h.cli.conn, h.now) == 1.0);
  h_free(&h);
}

static void test_setup_rejected_by_application(void **state) {
  (void)state;
  h_pair h;
  h_init(&h);
  h.srv.setup_result = 1;
  h.srv.reject_msg = "go away";
  h_start(&h);
  /* A request pipelined behind SETUP is never served. */
  rs_payload p = h_pl(NULL, "x");
  assert_true(rs_conn_request_response(h.cli.conn, &p, NULL) > 0);
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.srv, EV_REQUEST, UINT32_MAX), 0);
  const h_event *e = h_find(&h.cli, EV_CLOSE, 0, 0);
  assert_int_equal(e->err, RS_ERR_REJECTED);
  assert_int_equal(e->code, RS_ERROR_REJECTED_SETUP);
  assert_string_equal((char *)e->data, "go away");
  assert_true(e->flags); /* remote */
  /* The pending request ended with the connection. */
  assert_int_equal(h_find(&h.cli, EV_ERROR, 1, 0)->err, RS_ERR_CLOSED);
  assert_int_equal(h_count(&h.cli, EV_STREAM_CLOSED, 1), 1);
  assert_int_equal(h_find(&h.srv, EV_CLOSE, 0, 0)->err, RS_ERR_REJECTED);
  assert_true(rs_conn_want_close(h.srv.conn));
  assert_true(rs_conn_want_close(h.cli.conn));
  h_free(&h);
}

/* Feeds raw bytes to a fresh server and returns its output. */
static uint8_t *server_reply(h_pair *h, rs_conn_settings *ss, const char *hex, size_t *len) {
  h_init(h);
  if (ss) h->ss = *ss;
  assert_int_equal(h_new_server(h), 0);
  assert_true(h_feed_hex(&h->srv, hex, h->now) >= 0);
  return h_take_output(&h->srv, len);
}

static void test_setup_first_frame_not_setup(void **state) {
  (void)state;
  h_pair h;
  size_t len;
  /* REQUEST_RESPONSE id=1 data "d" first. */
  uint8_t *out = server_reply(&h, NULL, "00 00 07 00 00 00 01 10 00 64", &len);
  const uint8_t *fr[4];
  size_t fl[4];
  assert_int_equal(h_split(out, len, fr, fl, 4), 1);
  assert_int_equal(h_frame_type(fr[0]), RS_FRAME_ERROR);
  assert_int_equal(h_frame_sid(fr[0]), 0);
  tu_assert_hex(fr[0] + 6, 4, "00 00 00 01"); /* INVALID_SETUP */
  assert_int_equal(rs_conn_get_state(h.srv.conn), RS_CONN_STATE_CLOSED);
  assert_int_equal(h_find(&h.srv, EV_CLOSE, 0, 0)->err, RS_ERR_PROTOCOL);
  free(out);
  h_free(&h);
}

static void test_setup_on_nonzero_stream(void **state) {
  (void)state;
  h_pair h;
  size_t len;
  uint8_t *out = server_reply(
      &h, NULL, "00 00 16 00 00 00 01 04 00 00 01 00 00 00 00 01 F4 00 00 05 DC 01 61 01 62", &len);
  tu_assert_hex(out + 3 + 6, 4, "00 00 00 01"); /* INVALID_SETUP */
  assert_int_equal(rs_conn_get_state(h.srv.conn), RS_CONN_STATE_CLOSED);
  free(out);
  h_free(&h);
}

static void test_setup_bad_version_and_flags(void **state) {
  (void)state;
  h_pair h;
  size_t len;
  /* Version 2.0. */
  uint8_t *out = server_reply(
      &h, NULL, "00 00 16 00 00 00 00 04 00 00 02 00 00 00 00 01 F4 00 00 05 DC 01 61 01 62", &len);
  tu_assert_hex(out + 3 + 6, 4, "00 00 00 02"); /* UNSUPPORTED_SETUP */
  free(out);
  h_free(&h);
  /* Keepalive interval 0. */
  out = server_reply(
      &h, NULL, "00 00 16 00 00 00 00 04 00 00 01 00 00 00 00 00 00 00 00 05 DC 01 61 01 62", &len);
  tu_assert_hex(out + 3 + 6, 4, "00 00 00 01"); /* INVALID_SETUP */
  free(out);
  h_free(&h);
  /* Lease asked from a server without lease. */
  out = server_reply(
      &h, NULL, "00 00 16 00 00 00 00 04 40 00 01 00 00 00 00 01 F4 00 00 05 DC 01 61 01 62", &len);
  tu_assert_hex(out + 3 + 6, 4, "00 00 00 02"); /* UNSUPPORTED_SETUP */
  free(out);
  h_free(&h);
  /* Resume asked from a server without resumption: REJECTED_SETUP, as the spec says. */
  out =
      server_reply(&h, NULL,
                   "00 00 1B 00 00 00 00 04 80 00 01 00 00 00 00 01 F4 00 00 05 DC 00 03 74 6F 6B "
                   "01 61 01 62",
                   &len);
  tu_assert_hex(out + 3 + 6, 4, "00 00 00 03");
  assert_int_equal(h_find(&h.srv, EV_CLOSE, 0, 0)->err, RS_ERR_REJECTED);
  free(out);
  h_free(&h);
}

static void test_setup_second_setup_ignored_and_timeout(void **state) {
  (void)state;
  h_pair h;
  size_t len;
  const char *setup = "00 00 16 00 00 00 00 04 00 00 01 00 00 00 00 01 F4 00 00 05 DC 01 61 01 62";
  uint8_t *out = server_reply(&h, NULL, setup, &len);
  assert_int_equal(len, 0);
  free(out);
  assert_true(h_feed_hex(&h.srv, setup, h.now) >= 0);
  assert_int_equal(rs_conn_get_state(h.srv.conn), RS_CONN_STATE_ESTABLISHED);
  assert_int_equal(h_count(&h.srv, EV_SETUP, 0), 1);
  h_free(&h);

  /* No first frame at all: the setup timeout closes the connection. */
  h_init(&h);
  h.ss.setup_timeout_ms = 300;
  assert_int_equal(h_new_server(&h), 0);
  assert_int_equal(rs_conn_next_deadline(h.srv.conn), h.now + 300);
  assert_int_equal(rs_conn_handle_expiry(h.srv.conn, h.now + 299), 0);
  assert_int_equal(h.srv.nev, 0);
  assert_int_equal(rs_conn_handle_expiry(h.srv.conn, h.now + 300), 0);
  assert_int_equal(h_find(&h.srv, EV_CLOSE, 0, 0)->err, RS_ERR_TIMEOUT);
  h_free(&h);
}

static void test_settings_validation(void **state) {
  (void)state;
  rs_conn *c = NULL;
  rs_conn_settings s;
  rs_conn_settings_default(&s, RS_CONN_CLIENT);
  s.mtu = 63;
  assert_int_equal(rs_conn_new(&c, &s, NULL, NULL, NULL, 0), RS_ERR_INVALID_ARGUMENT);
  rs_conn_settings_default(&s, RS_CONN_CLIENT);
  s.keepalive_interval_ms = 0;
  assert_int_equal(rs_conn_new(&c, &s, NULL, NULL, NULL, 0), RS_ERR_INVALID_ARGUMENT);
  rs_conn_settings_default(&s, RS_CONN_CLIENT);
  s.resume = true; /* no token */
  assert_int_equal(rs_conn_new(&c, &s, NULL, NULL, NULL, 0), RS_ERR_INVALID_ARGUMENT);
  rs_conn_settings_default(&s, RS_CONN_SERVER);
  s.resume = true; /* no store */
  assert_int_equal(rs_conn_new(&c, &s, NULL, NULL, NULL, 0), RS_ERR_INVALID_ARGUMENT);
  rs_conn_settings_default(&s, RS_CONN_SERVER);
  rs_conn_callbacks cb;
  memset(&cb, 0, sizeof(cb)); /* struct_size forgotten */
  assert_int_equal(rs_conn_new(&c, &s, &cb, NULL, NULL, 0), RS_ERR_INVALID_ARGUMENT);
  s.max_streams = 1u << 30;
  assert_int_equal(rs_conn_new(&c, &s, NULL, NULL, NULL, 0), RS_ERR_INVALID_ARGUMENT);
  assert_null(c);
  /* setup_timeout_ms 0: a server waits forever. */
  rs_conn_settings_default(&s, RS_CONN_SERVER);
  s.setup_timeout_ms = 0;
  assert_int_equal(rs_conn_new(&c, &s, NULL, NULL, NULL, 0), 0);
  assert_true(rs_conn_next_deadline(c) == UINT64_MAX);
  rs_conn_free(c);
  c = NULL;
  /* An older caller's smaller struct gets defaults for the rest. */
  rs_conn_settings_default(&s, RS_CONN_SERVER);
  s.struct_size = offsetof(rs_conn_settings, keepalive_interval_ms);
  assert_int_equal(rs_conn_new(&c, &s, NULL, NULL, NULL, 0), 0);
  assert_int_equal(rs_conn_get_role(c), RS_CONN_SERVER);
  rs_conn_free(c);
  assert_int_equal(rs_conn_new(NULL, NULL, NULL, NULL, NULL, 0), RS_ERR_INVALID_ARGUMENT);
}

/* ---- Interaction models ---------------------------------------------------------------------- */

static void test_request_response_echo(void **state) {
  (void)state;
  h_pair h;
  h_init(&h);
  h.chunk = 7;
  h_start(&h);
  int su = 0;
  rs_payload p = h_pl("meta", "ping");
  rs_ssize id = rs_conn_request_response(h.cli.conn, &p, &su);
  assert_int_equal(id, 1);
  assert_int_equal(rs_conn_stream_count(h.cli.conn), 1);
  h_pump_ok(&h);
  const h_event *r = h_find(&h.srv, EV_REQUEST, 1, 0);
  assert_int_equal(r->type, RS_FRAME_REQUEST_RESPONSE);
  assert_string_equal((char *)r->md, "meta");
  const h_event *e = h_find(&h.cli, EV_PAYLOAD, 1, 0);
  assert_int_equal(e->flags, RS_PAYLOAD_NEXT | RS_PAYLOAD_COMPLETE);
  assert_string_equal((char *)e->data, "ping");
  assert_string_equal((char *)e->md, "meta");
  assert_ptr_equal(e->stream_user, &su);
  assert_int_equal(h_find(&h.cli, EV_STREAM_CLOSED, 1, 0)->stream_user, &su);
  assert_int_equal(h_count(&h.srv, EV_STREAM_CLOSED, 1), 1);
  assert_int_equal(rs_conn_stream_count(h.cli.conn), 0);
  assert_int_equal(rs_conn_stream_count(h.srv.conn), 0);
  /* A second request gets the next odd id. */
  assert_int_equal(rs_conn_request_response(h.cli.conn, &p, NULL), 3);
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, 3), 1);
  h_free(&h);
}

static void test_request_response_later_answer_and_errors(void **state) {
  (void)state;
  h_pair h;
  start_pair(&h);
  h.srv.echo = false;
  rs_payload p = h_pl(NULL, "q");
  rs_ssize a = rs_conn_request_response(h.cli.conn, &p, NULL);
  rs_ssize b = rs_conn_request_response(h.cli.conn, &p, NULL);
  rs_ssize c = rs_conn_request_response(h.cli.conn, &p, NULL);
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.srv, EV_REQUEST, UINT32_MAX), 3);
  assert_int_equal(rs_conn_stream_credit(h.srv.conn, (uint32_t)a), 1);
  /* Answers out of order: an empty completion, an application error, a value. */
  assert_int_equal(rs_conn_send_complete(h.srv.conn, (uint32_t)b), 0);
  assert_int_equal(
      rs_conn_send_error(h.srv.conn, (uint32_t)c, RS_ERROR_APPLICATION_ERROR, rs_bytes_str("boom")),
      0);
  rs_payload ans = h_pl(NULL, "A");
  assert_int_equal(rs_conn_send_payload(h.srv.conn, (uint32_t)a, &ans, false), 0);
  /* A response answers once. */
  assert_int_equal(rs_conn_send_payload(h.srv.conn, (uint32_t)a, &ans, false),
                   RS_ERR_STREAM_CLOSED);
  /* The requester of a request-response has nothing to send. */
  assert_int_equal(rs_conn_send_payload(h.cli.conn, (uint32_t)a, &ans, false),
                   RS_ERR_INVALID_STATE);
  h_pump_ok(&h);
  assert_int_equal(h_find(&h.cli, EV_PAYLOAD, (uint32_t)b, 0)->flags, RS_PAYLOAD_COMPLETE);
  const h_event *e = h_find(&h.cli, EV_ERROR, (uint32_t)c, 0);
  assert_int_equal(e->err, RS_ERR_APPLICATION);
  assert_int_equal(e->code, RS_ERROR_APPLICATION_ERROR);
  assert_string_equal((char *)e->data, "boom");
  assert_true(e->flags);
  assert_string_equal((char *)h_find(&h.cli, EV_PAYLOAD, (uint32_t)a, 0)->data, "A");
  assert_int_equal(h_count(&h.cli, EV_STREAM_CLOSED, UINT32_MAX), 3);
  /* Streams ended by API calls are reported at the next expiry handling (never re-entrantly). */
  assert_int_equal(h_count(&h.srv, EV_STREAM_CLOSED, UINT32_MAX), 0);
  assert_int_equal(rs_conn_next_deadline(h.srv.conn), h.now);
  h_advance(&h, 0);
  assert_int_equal(h_count(&h.srv, EV_STREAM_CLOSED, UINT32_MAX), 3);
  /* Only stream-level codes are allowed on a stream. */
  assert_int_equal(rs_conn_send_error(h.srv.conn, 99, RS_ERROR_CONNECTION_ERROR, rs_bytes_str("")),
                   RS_ERR_INVALID_ARGUMENT);
  h_free(&h);
}

static void test_request_rejected_by_application(void **state) {
  (void)state;
  h_pair h;
  start_pair(&h);
  h.srv.request_result = -1;
  rs_payload p = h_pl(NULL, "q");
  rs_ssize id = rs_conn_request_stream(h.cli.conn, &p, 5, NULL);
  h_pump_ok(&h);
  const h_event *e = h_find(&h.cli, EV_ERROR, (uint32_t)id, 0);
  assert_int_equal(e->err, RS_ERR_REJECTED);
  assert_int_equal(e->code, RS_ERROR_REJECTED);
  assert_int_equal(h_count(&h.srv, EV_STREAM_CLOSED, UINT32_MAX), 0);
  assert_int_equal(rs_conn_stream_count(h.srv.conn), 0);
  h_free(&h);
}

static void test_fire_and_forget(void **state) {
  (void)state;
  h_pair h;
  start_pair(&h);
  rs_payload p = h_pl("m", "fnf");
  rs_ssize id = rs_conn_request_fnf(h.cli.conn, &p);
  assert_int_equal(id, 1);
  assert_int_equal(rs_conn_stream_count(h.cli.conn), 0);
  h_pump_ok(&h);
  const h_event *e = h_find(&h.srv, EV_REQUEST, 1, 0);
  assert_int_equal(e->type, RS_FRAME_REQUEST_FNF);
  assert_string_equal((char *)e->data, "fnf");
  assert_int_equal(rs_conn_stream_count(h.srv.conn), 0);
  assert_int_equal(h_count(&h.srv, EV_STREAM_CLOSED, UINT32_MAX), 0);
  assert_int_equal(h.cli.nev, 0);
  /* A rejected FNF is not answered. */
  h.srv.request_result = 1;
  assert_true(rs_conn_request_fnf(h.cli.conn, &p) > 0);
  h_pump_ok(&h);
  assert_int_equal(h.cli.nev, 0);
  h_free(&h);
}

static void test_request_stream_credit(void **state) {
  (void)state;
  h_pair h;
  start_pair(&h);
  rs_payload p = h_pl(NULL, "s");
  uint32_t id = (uint32_t)rs_conn_request_stream(h.cli.conn, &p, 2, NULL);
  h_pump_ok(&h);
  assert_int_equal(h_find(&h.srv, EV_REQUEST, id, 0)->n, 2);
  assert_int_equal(rs_conn_stream_credit(h.srv.conn, id), 2);
  rs_payload item = h_pl(NULL, "i");
  assert_int_equal(rs_conn_send_payload(h.srv.conn, id, &item, false), 0);
  assert_int_equal(rs_conn_send_payload(h.srv.conn, id, &item, false), 0);
  /* The engine never sends beyond credit. */
  assert_int_equal(rs_conn_send_payload(h.srv.conn, id, &item, false), RS_ERR_NO_CREDIT);
  assert_int_equal(rs_conn_stream_credit(h.srv.conn, id), 0);
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, id), 2);
  assert_int_equal(h_find(&h.cli, EV_PAYLOAD, id, 1)->flags, RS_PAYLOAD_NEXT);
  /* request(0) is invalid; a stream requester cannot send; a responder cannot request. */
  assert_int_equal(rs_conn_request_n(h.cli.conn, id, 0), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_conn_send_payload(h.cli.conn, id, &item, false), RS_ERR_INVALID_STATE);
  assert_int_equal(rs_conn_request_n(h.srv.conn, id, 1), RS_ERR_INVALID_STATE);
  assert_int_equal(rs_conn_request_n(h.cli.conn, id, 3), 0);
  h_pump_ok(&h);
  assert_int_equal(h_find(&h.srv, EV_REQUEST_N, id, 0)->n, 3);
  assert_int_equal(rs_conn_stream_credit(h.srv.conn, id), 3);
  assert_int_equal(rs_conn_send_payload(h.srv.conn, id, &item, false), 0);
  assert_int_equal(rs_conn_send_payload(h.srv.conn, id, &item, true), 0);
  assert_int_equal(rs_conn_send_complete(h.srv.conn, id), RS_ERR_STREAM_CLOSED);
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, id), 4);
  assert_int_equal(h_find(&h.cli, EV_PAYLOAD, id, 3)->flags, RS_PAYLOAD_NEXT | RS_PAYLOAD_COMPLETE);
  assert_int_equal(h_count(&h.cli, EV_STREAM_CLOSED, id), 1);
  h_advance(&h, 0);
  assert_int_equal(h_count(&h.srv, EV_STREAM_CLOSED, id), 1);
  /* A separate completion after the last item. */
  id = (uint32_t)rs_conn_request_stream(h.cli.conn, &p, 1, NULL);
  h_pump_ok(&h);
  assert_int_equal(rs_conn_send_payload(h.srv.conn, id, &item, false), 0);
  assert_int_equal(rs_conn_send_complete(h.srv.conn, id), 0);
  h_pump_ok(&h);
  assert_int_equal(h_find(&h.cli, EV_PAYLOAD, id, 1)->flags, RS_PAYLOAD_COMPLETE);
  assert_int_equal(h_count(&h.cli, EV_STREAM_CLOSED, id), 1);
  h_free(&h);
}

static void test_credit_unbounded(void **state) {
  (void)state;
  h_pair h;
  start_pair(&h);
  rs_payload p = h_pl(NULL, "s");
  /* 2^31-1 at once is unbounded, and so is anything larger. */
  uint32_t a = (uint32_t)rs_conn_request_stream(h.cli.conn, &p, RS_REQUEST_N_MAX, NULL);
  uint32_t b = (uint32_t)rs_conn_request_stream(h.cli.conn, &p, UINT64_MAX, NULL);
  uint32_t c = (uint32_t)rs_conn_request_stream(h.cli.conn, &p, 1, NULL);
  h_pump_ok(&h);
  assert_true(h_find(&h.srv, EV_REQUEST, a, 0)->n == RS_CREDIT_UNBOUNDED);
  assert_true(h_find(&h.srv, EV_REQUEST, b, 0)->n == RS_CREDIT_UNBOUNDED);
  assert_true(rs_conn_stream_credit(h.srv.conn, a) == RS_CREDIT_UNBOUNDED);
  rs_payload item = h_pl(NULL, "i");
  for (int i = 0; i < 1000; i++) {
    assert_int_equal(rs_conn_send_payload(h.srv.conn, a, &item, false), 0);
  }
  assert_true(rs_conn_stream_credit(h.srv.conn, a) == RS_CREDIT_UNBOUNDED);
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, a), 1000);
  /* Requesting more on an unbounded stream sends nothing. */
  size_t before = rs_conn_pending_bytes(h.cli.conn);
  assert_int_equal(rs_conn_request_n(h.cli.conn, a, 5), 0);
  assert_int_equal(rs_conn_pending_bytes(h.cli.conn), before);
  /* Cumulative credit overflowing 2^31-1 becomes unbounded on both sides. */
  assert_int_equal(rs_conn_request_n(h.cli.conn, c, RS_REQUEST_N_MAX - 1), 0);
  h_pump_ok(&h);
  assert_true(rs_conn_stream_credit(h.srv.conn, c) == RS_CREDIT_UNBOUNDED);
  /* Sent as 2^31-1 so that the peer's count, lagging by what is in flight, is unbounded too. */
  assert_true(h_find(&h.srv, EV_REQUEST_N, c, 0)->n == RS_CREDIT_UNBOUNDED);
  before = rs_conn_pending_bytes(h.cli.conn);
  assert_int_equal(rs_conn_request_n(h.cli.conn, c, UINT64_MAX), 0);
  assert_int_equal(rs_conn_pending_bytes(h.cli.conn), before);
  /* A REQUEST_N of 2^31-1 on the wire is unbounded; repeated ones do not overflow. */
  assert_int_equal(rs_conn_request_n(h.cli.conn, b, RS_REQUEST_N_MAX), 0);
  h_pump_ok(&h);
  assert_true(rs_conn_stream_credit(h.srv.conn, b) == RS_CREDIT_UNBOUNDED);
  h_free(&h);
}

static void test_peer_exceeding_credit(void **state) {
  (void)state;
  h_pair h;
  start_pair(&h);
  rs_payload p = h_pl(NULL, "s");
  uint32_t id = (uint32_t)rs_conn_request_stream(h.cli.conn, &p, 1, NULL);
  h_pump_ok(&h);
  size_t len;
  free(h_take_output(&h.cli, &len));
  /* Two PAYLOAD(N) frames for one credit: the second breaks the protocol. */
  assert_int_equal(
      h_feed_hex(&h.cli, "00 00 07 00 00 00 01 28 20 61  00 00 07 00 00 00 01 28 20 62", h.now),
      20);
  (void)id;
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, 1), 1);
  const h_event *e = h_find(&h.cli, EV_ERROR, 1, 0);
  assert_int_equal(e->err, RS_ERR_PROTOCOL);
  assert_false(e->flags);
  assert_int_equal(h_count(&h.cli, EV_STREAM_CLOSED, 1), 1);
  uint8_t *out = h_take_output(&h.cli, &len);
  tu_assert_hex(out, len, "00 00 06 00 00 00 01 24 00"); /* CANCEL */
  free(out);
  assert_int_equal(rs_conn_get_state(h.cli.conn), RS_CONN_STATE_ESTABLISHED);
  h_free(&h);
}

static void test_request_n_and_cancel_interleaved(void **state) {
  (void)state;
  h_pair h;
  start_pair(&h);
  rs_payload p = h_pl(NULL, "s");
  uint32_t id = (uint32_t)rs_conn_request_stream(h.cli.conn, &p, 1, NULL);
  assert_int_equal(rs_conn_request_n(h.cli.conn, id, 2), 0);
  assert_int_equal(rs_conn_cancel(h.cli.conn, id), 0);
  /* Gone locally at once. */
  assert_int_equal(rs_conn_request_n(h.cli.conn, id, 2), RS_ERR_STREAM_CLOSED);
  assert_int_equal(rs_conn_cancel(h.cli.conn, id), RS_ERR_STREAM_CLOSED);
  /* on_stream_closed is not delivered from inside the API call... */
  assert_int_equal(h_count(&h.cli, EV_STREAM_CLOSED, id), 0);
  assert_int_equal(rs_conn_next_deadline(h.cli.conn), h.now);
  /* ...but at the next expiry handling. */
  assert_int_equal(rs_conn_handle_expiry(h.cli.conn, h.now), 0);
  assert_int_equal(h_count(&h.cli, EV_STREAM_CLOSED, id), 1);
  h_pump_ok(&h);
  /* The server saw request, request(n), cancel, in that order. */
  assert_int_equal(h_find(&h.srv, EV_REQUEST_N, id, 0)->n, 2);
  assert_int_equal(h_count(&h.srv, EV_CANCEL, id), 1);
  assert_int_equal(h_count(&h.srv, EV_STREAM_CLOSED, id), 1);
  rs_payload item = h_pl(NULL, "i");
  assert_int_equal(rs_conn_send_payload(h.srv.conn, id, &item, false), RS_ERR_STREAM_CLOSED);
  /* A responder of a stream cannot cancel. */
  id = (uint32_t)rs_conn_request_stream(h.cli.conn, &p, 1, NULL);
  h_pump_ok(&h);
  assert_int_equal(rs_conn_cancel(h.srv.conn, id), RS_ERR_INVALID_STATE);
  h_free(&h);
}

static void test_cancel_races(void **state) {
  (void)state;
  h_pair h;
  start_pair(&h);
  h.srv.echo = false;
  rs_payload p = h_pl(NULL, "q");
  /* Requester cancels while the response is in flight: the late response is ignored. */
  uint32_t id = (uint32_t)rs_conn_request_response(h.cli.conn, &p, NULL);
  h_pump_ok(&h);
  assert_int_equal(rs_conn_send_payload(h.srv.conn, id, &p, true), 0);
  assert_int_equal(rs_conn_cancel(h.cli.conn, id), 0);
  h_pump_ok(&h);
  h_advance(&h, 0);
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, id), 0);
  assert_int_equal(h_count(&h.cli, EV_STREAM_CLOSED, id), 1);
  assert_int_equal(h_count(&h.srv, EV_CANCEL, id), 0); /* already done there: ignored */
  assert_int_equal(h_count(&h.srv, EV_STREAM_CLOSED, id), 1);
  /* Responder errors while the requester cancels: both end once, nothing else. */
  id = (uint32_t)rs_conn_request_stream(h.cli.conn, &p, 3, NULL);
  h_pump_ok(&h);
  assert_int_equal(
      rs_conn_send_error(h.srv.conn, id, RS_ERROR_APPLICATION_ERROR, rs_bytes_str("e")), 0);
  assert_int_equal(rs_conn_cancel(h.cli.conn, id), 0);
  h_pump_ok(&h);
  h_advance(&h, 0);
  assert_int_equal(h_count(&h.cli, EV_ERROR, id), 0);
  assert_int_equal(h_count(&h.srv, EV_CANCEL, id), 0);
  assert_int_equal(h_count(&h.cli, EV_STREAM_CLOSED, id), 1);
  assert_int_equal(h_count(&h.srv, EV_STREAM_CLOSED, id), 1);
  /* Responder completes while the requester asks for more: the request(n) is ignored. */
  id = (uint32_t)rs_conn_request_stream(h.cli.conn, &p, 1, NULL);
  h_pump_ok(&h);
  assert_int_equal(rs_conn_send_payload(h.srv.conn, id, &p, true), 0);
  assert_int_equal(rs_conn_request_n(h.cli.conn, id, 10), 0);
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.srv, EV_REQUEST_N, id), 0);
  assert_int_equal(h_count(&h.cli, EV_STREAM_CLOSED, id), 1);
  assert_int_equal(rs_conn_stream_count(h.cli.conn), 0);
  assert_int_equal(rs_conn_stream_count(h.srv.conn), 0);
  h_free(&h);
}

/* Channel helpers. */
static uint32_t open_channel(h_pair *h, uint64_t n, bool complete) {
  rs_payload p = h_pl(NULL, "first");
  rs_ssize id = rs_conn_request_channel(h->cli.conn, &p, n, complete, NULL);
  assert_true(id > 0);
  h_pump_ok(h);
  const h_event *r = h_find(&h->srv, EV_REQUEST, (uint32_t)id, 0);
  assert_int_equal(r->type, RS_FRAME_REQUEST_CHANNEL);
  assert_string_equal((char *)r->data, "first");
  assert_int_equal(r->flags, complete);
  return (uint32_t)id;
}

static void test_channel_exchange(void **state) {
  (void)state;
  h_pair h;
  start_pair(&h);
  uint32_t id = open_channel(&h, 2, false);
  rs_payload x = h_pl(NULL, "x");
  /* The requester may not send before the responder grants credit. */
  assert_int_equal(rs_conn_send_payload(h.cli.conn, id, &x, false), RS_ERR_NO_CREDIT);
  assert_int_equal(rs_conn_request_n(h.srv.conn, id, 2), 0);
  h_pump_ok(&h);
  assert_int_equal(h_find(&h.cli, EV_REQUEST_N, id, 0)->n, 2);
  assert_int_equal(rs_conn_send_payload(h.cli.conn, id, &x, false), 0);
  assert_int_equal(rs_conn_send_payload(h.srv.conn, id, &x, false), 0);
  assert_int_equal(rs_conn_send_payload(h.cli.conn, id, &x, false), 0);
  assert_int_equal(rs_conn_send_payload(h.cli.conn, id, &x, false), RS_ERR_NO_CREDIT);
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.srv, EV_PAYLOAD, id), 2);
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, id), 1);
  /* Requester completes first, then the responder. */
  assert_int_equal(rs_conn_send_complete(h.cli.conn, id), 0);
  h_pump_ok(&h);
  assert_int_equal(h_find(&h.srv, EV_PAYLOAD, id, 2)->flags, RS_PAYLOAD_COMPLETE);
  assert_int_equal(rs_conn_request_n(h.srv.conn, id, 1), RS_ERR_STREAM_CLOSED);
  assert_int_equal(h_count(&h.srv, EV_STREAM_CLOSED, id), 0);
  assert_int_equal(rs_conn_send_payload(h.srv.conn, id, &x, true), 0);
  h_pump_ok(&h);
  assert_int_equal(h_find(&h.cli, EV_PAYLOAD, id, 1)->flags, RS_PAYLOAD_NEXT | RS_PAYLOAD_COMPLETE);
  assert_int_equal(h_count(&h.cli, EV_STREAM_CLOSED, id), 1);
  h_advance(&h, 0);
  assert_int_equal(h_count(&h.srv, EV_STREAM_CLOSED, id), 1);
  h_free(&h);
}

/* Every order of half-closes and terminations on a channel. */
static void test_channel_half_close_orders(void **state) {
  (void)state;
  rs_payload x = h_pl(NULL, "x");
  for (int order = 0; order < 9; order++) {
    h_pair h;
    start_pair(&h);
    uint32_t id = open_channel(&h, 5, order == 8);
    if (order != 8) assert_int_equal(rs_conn_request_n(h.srv.conn, id, 5), 0);
    h_pump_ok(&h);
    switch (order) {
    case 0: /* responder completes, then requester completes */
      assert_int_equal(rs_conn_send_complete(h.srv.conn, id), 0);
      h_pump_ok(&h);
      assert_int_equal(h_count(&h.cli, EV_STREAM_CLOSED, id), 0);
      assert_int_equal(rs_conn_send_payload(h.cli.conn, id, &x, false), 0);
      assert_int_equal(rs_conn_send_complete(h.cli.conn, id), 0);
      break;
    case 1: /* both complete at the same time */
      assert_int_equal(rs_conn_send_complete(h.srv.conn, id), 0);
      assert_int_equal(rs_conn_send_complete(h.cli.conn, id), 0);
      break;
    case 2: /* responder cancels the inbound half, then completes its own */
      assert_int_equal(rs_conn_cancel(h.srv.conn, id), 0);
      h_pump_ok(&h);
      assert_int_equal(h_count(&h.cli, EV_CANCEL, id), 1);
      assert_int_equal(rs_conn_send_payload(h.cli.conn, id, &x, false), RS_ERR_STREAM_CLOSED);
      assert_int_equal(h_count(&h.cli, EV_STREAM_CLOSED, id), 0);
      assert_int_equal(rs_conn_send_payload(h.srv.conn, id, &x, true), 0);
      break;
    case 3: /* responder completes, then cancels the inbound half */
      assert_int_equal(rs_conn_send_complete(h.srv.conn, id), 0);
      h_pump_ok(&h);
      assert_int_equal(rs_conn_cancel(h.srv.conn, id), 0);
      break;
    case 4: /* requester cancels: everything ends */
      assert_int_equal(rs_conn_cancel(h.cli.conn, id), 0);
      h_pump_ok(&h);
      assert_int_equal(h_count(&h.srv, EV_CANCEL, id), 1);
      assert_int_equal(rs_conn_send_payload(h.srv.conn, id, &x, false), RS_ERR_STREAM_CLOSED);
      break;
    case 5: /* requester errors: everything ends */
      assert_int_equal(
          rs_conn_send_error(h.cli.conn, id, RS_ERROR_APPLICATION_ERROR, rs_bytes_str("rq")), 0);
      h_pump_ok(&h);
      assert_int_equal(h_find(&h.srv, EV_ERROR, id, 0)->code, RS_ERROR_APPLICATION_ERROR);
      break;
    case 6: /* responder errors after the requester completed */
      assert_int_equal(rs_conn_send_complete(h.cli.conn, id), 0);
      h_pump_ok(&h);
      assert_int_equal(
          rs_conn_send_error(h.srv.conn, id, RS_ERROR_APPLICATION_ERROR, rs_bytes_str("rs")), 0);
      h_pump_ok(&h);
      assert_int_equal(h_find(&h.cli, EV_ERROR, id, 0)->code, RS_ERROR_APPLICATION_ERROR);
      break;
    case 7: /* responder cancels inbound, requester then errors */
      assert_int_equal(rs_conn_cancel(h.srv.conn, id), 0);
      h_pump_ok(&h);
      assert_int_equal(
          rs_conn_send_error(h.cli.conn, id, RS_ERROR_APPLICATION_ERROR, rs_bytes_str("late")), 0);
      h_pump_ok(&h);
      assert_int_equal(h_count(&h.srv, EV_ERROR, id), 1);
      break;
    case 8: /* the request itself completed the requester's half */
      assert_int_equal(rs_conn_send_payload(h.cli.conn, id, &x, false), RS_ERR_STREAM_CLOSED);
      assert_int_equal(rs_conn_cancel(h.srv.conn, id), RS_ERR_STREAM_CLOSED);
      assert_int_equal(rs_conn_send_payload(h.srv.conn, id, &x, true), 0);
      break;
    }
    h_pump_ok(&h);
    h_advance(&h, 0);
    assert_int_equal(h_count(&h.cli, EV_STREAM_CLOSED, id), 1);
    assert_int_equal(h_count(&h.srv, EV_STREAM_CLOSED, id), 1);
    assert_int_equal(rs_conn_stream_count(h.cli.conn), 0);
    assert_int_equal(rs_conn_stream_count(h.srv.conn), 0);
    assert_int_equal(rs_conn_get_state(h.cli.conn), RS_CONN_STATE_ESTABLISHED);
    h_free(&h);
  }
}

static void test_metadata_push(void **state) {
  (void)state;
  h_pair h;
  start_pair(&h);
  assert_int_equal(rs_conn_metadata_push(h.cli.conn, rs_bytes_str("up")), 0);
  assert_int_equal(rs_conn_metadata_push(h.srv.conn, rs_bytes_str("down")), 0);
  h_pump_ok(&h);
  assert_string_equal((char *)h_find(&h.srv, EV_METADATA_PUSH, 0, 0)->md, "up");
  assert_string_equal((char *)h_find(&h.cli, EV_METADATA_PUSH, 0, 0)->md, "down");
  /* METADATA_PUSH is never fragmented. */
  rs_conn_free(h.cli.conn);
  h.cs.mtu = 64;
  assert_int_equal(rs_conn_new(&h.cli.conn, &h.cs, &h_callbacks, &h.cli, NULL, h.now), 0);
  char big[100];
  memset(big, 'm', sizeof(big));
  assert_int_equal(rs_conn_metadata_push(h.cli.conn, (rs_bytes){(uint8_t *)big, sizeof(big)}),
                   RS_ERR_FRAME_TOO_LARGE);
  h_free(&h);
}

static void test_stream_user_and_ids(void **state) {
  (void)state;
  h_pair h;
  start_pair(&h);
  int a, b;
  rs_payload p = h_pl(NULL, "s");
  uint32_t id = (uint32_t)rs_conn_request_stream(h.cli.conn, &p, 1, &a);
  assert_ptr_equal(rs_conn_stream_user(h.cli.conn, id), &a);
  assert_int_equal(rs_conn_stream_set_user(h.cli.conn, id, &b), 0);
  h_pump_ok(&h);
  assert_int_equal(rs_conn_stream_set_user(h.srv.conn, id, &a), 0);
  assert_int_equal(rs_conn_stream_set_user(h.srv.conn, 999, &a), RS_ERR_STREAM_CLOSED);
  assert_int_equal(rs_conn_send_payload(h.srv.conn, id, &p, true), 0);
  h_pump_ok(&h);
  assert_ptr_equal(h_find(&h.cli, EV_PAYLOAD, id, 0)->stream_user, &b);
  h_advance(&h, 0);
  assert_ptr_equal(h_find(&h.srv, EV_STREAM_CLOSED, id, 0)->stream_user, &a);
  /* The server requests on even ids. */
  rs_ssize sid = rs_conn_request_response(h.srv.conn, &p, NULL);
  assert_int_equal(sid, 2);
  h.cli.echo = true;
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.srv, EV_PAYLOAD, 2), 1);
  h_free(&h);
}

static void test_stream_id_wrap_skips_live(void **state) {
  (void)state;
  h_pair h;
  start_pair(&h);
  h.srv.echo = false;
  rs_payload p = h_pl(NULL, "s");
  assert_int_equal(rs_conn_request_stream(h.cli.conn, &p, 1, NULL), 1);
  assert_int_equal(rs_conn_request_stream(h.cli.conn, &p, 1, NULL), 3);
  h.cli.conn->next_stream_id = RS_STREAM_ID_MAX - 2;
  assert_int_equal(rs_conn_request_stream(h.cli.conn, &p, 1, NULL), RS_STREAM_ID_MAX - 2);
  assert_int_equal(rs_conn_request_stream(h.cli.conn, &p, 1, NULL), RS_STREAM_ID_MAX);
  /* Wraps to 1, which is live, and 3, also live: 5 is next. */
  assert_int_equal(rs_conn_request_stream(h.cli.conn, &p, 1, NULL), 5);
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.srv, EV_REQUEST, UINT32_MAX), 5);
  assert_int_equal(h_find(&h.srv, EV_REQUEST, RS_STREAM_ID_MAX, 0)->type, RS_FRAME_REQUEST_STREAM);
  h_free(&h);
}

static void test_max_streams(void **state) {
  (void)state;
  h_pair h;
  h_init(&h);
  h.cs.max_streams = 2;
  h.ss.max_streams = 3;
  h_start(&h);
  h.srv.echo = false;
  rs_payload p = h_pl(NULL, "s");
  assert_true(rs_conn_request_stream(h.cli.conn, &p, 1, NULL) > 0);
  assert_true(rs_conn_request_stream(h.cli.conn, &p, 1, NULL) > 0);
  assert_int_equal(rs_conn_request_stream(h.cli.conn, &p, 1, NULL), RS_ERR_TOO_MANY_STREAMS);
  /* Fire-and-forget needs no stream. */
  assert_true(rs_conn_request_fnf(h.cli.conn, &p) > 0);
  h_pump_ok(&h);
  /* The server refuses what exceeds its own limit. */
  assert_true(rs_conn_request_stream(h.srv.conn, &p, 1, NULL) > 0);
  assert_true(rs_conn_request_stream(h.srv.conn, &p, 1, NULL) == RS_ERR_TOO_MANY_STREAMS);
  h_free(&h);
  h_init(&h);
  h.ss.max_streams = 1;
  h_start(&h);
  h.srv.echo = false;
  uint32_t a = (uint32_t)rs_conn_request_stream(h.cli.conn, &p, 1, NULL);
  uint32_t b = (uint32_t)rs_conn_request_stream(h.cli.conn, &p, 1, NULL);
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.srv, EV_REQUEST, a), 1);
  assert_int_equal(h_find(&h.cli, EV_ERROR, b, 0)->code, RS_ERROR_REJECTED);
  h_free(&h);
}

/* ---- Connection-level frames and errors ----------------------------------------------------- */

static void test_unknown_frames(void **state) {
  (void)state;
  h_pair h;
  start_pair(&h);
  size_t len;
  /* Unassigned type 0x20 with I set: ignored. */
  assert_true(h_feed_hex(&h.srv, "00 00 06 00 00 00 00 82 00", h.now) > 0);
  assert_int_equal(rs_conn_get_state(h.srv.conn), RS_CONN_STATE_ESTABLISHED);
  /* EXT with I: ignored. */
  assert_true(h_feed_hex(&h.srv, "00 00 0A 00 00 00 01 FE 00 00 00 00 01", h.now) > 0);
  assert_int_equal(rs_conn_get_state(h.srv.conn), RS_CONN_STATE_ESTABLISHED);
  /* Frames for unknown streams and on stream 0 where they make no sense: ignored. */
  assert_true(
      h_feed_hex(&h.srv, "00 00 06 00 00 00 09 24 00  00 00 07 00 00 00 00 28 20 61", h.now) > 0);
  assert_true(h_feed_hex(&h.srv, "00 00 0A 00 00 00 09 2C 00 00 00 02 01", h.now) > 0);
  uint8_t *out = h_take_output(&h.srv, &len);
  assert_int_equal(len, 0);
  free(out);
  assert_int_equal(rs_conn_get_state(h.srv.conn), RS_CONN_STATE_ESTABLISHED);
  /* Without I: CONNECTION_ERROR. */
  assert_true(h_feed_hex(&h.srv, "00 00 06 00 00 00 00 80 00", h.now) > 0);
  out = h_take_output(&h.srv, &len);
  assert_int_equal(h_frame_type(out + 3), RS_FRAME_ERROR);
  tu_assert_hex(out + 9, 4, "00 00 01 01");
  free(out);
  assert_int_equal(h_find(&h.srv, EV_CLOSE, 0, 0)->err, RS_ERR_PROTOCOL);
  /* Once closed, input is ignored. */
  assert_int_equal(h_feed_hex(&h.srv, "00 00 07 00 00 00 01 10 00 64", h.now), 10);
  assert_int_equal(h_count(&h.srv, EV_REQUEST, UINT32_MAX), 0);
  h_free(&h);
}

static void test_malformed_frames(void **state) {
  (void)state;
  h_pair h;
  start_pair(&h);
  size_t len;
  /* Metadata length past the end of the frame: CONNECTION_ERROR. */
  assert_true(h_feed_hex(&h.srv, "00 00 0A 00 00 00 01 11 00 00 00 09 6D", h.now) > 0);
  uint8_t *out = h_take_output(&h.srv, &len);
  tu_assert_hex(out + 9, 4, "00 00 01 01");
  free(out);
  h_free(&h);
  /* A request on the server's own (even) parity: CONNECTION_ERROR. */
  start_pair(&h);
  assert_true(h_feed_hex(&h.srv, "00 00 07 00 00 00 02 10 00 64", h.now) > 0);
  assert_int_equal(rs_conn_get_state(h.srv.conn), RS_CONN_STATE_CLOSED);
  h_free(&h);
  /* REQUEST_STREAM with n = 0: the stream is refused with INVALID, the connection lives. */
  start_pair(&h);
  assert_true(h_feed_hex(&h.srv, "00 00 0A 00 00 00 07 18 00 00 00 00 00", h.now) > 0);
  out = h_take_output(&h.srv, &len);
  assert_int_equal(h_frame_sid(out + 3), 7);
  assert_int_equal(h_frame_type(out + 3), RS_FRAME_ERROR);
  tu_assert_hex(out + 9, 4, "00 00 02 04");
  free(out);
  assert_int_equal(rs_conn_get_state(h.srv.conn), RS_CONN_STATE_ESTABLISHED);
  /* A frame length below the header size. */
  assert_true(h_feed_hex(&h.srv, "00 00 02 00 00", h.now) >= 0);
  assert_int_equal(rs_conn_get_state(h.srv.conn), RS_CONN_STATE_CLOSED);
  h_free(&h);
  /* A frame over max_frame_size. */
  h_init(&h);
  h.ss.max_frame_size = 100;
  h_start(&h);
  h_pump_ok(&h);
  assert_true(h_feed_hex(&h.srv, "00 01 00 00 00 00 01 10 00", h.now) >= 0);
  assert_int_equal(h_find(&h.srv, EV_CLOSE, 0, 0)->err, RS_ERR_FRAME_TOO_LARGE);
  h_free(&h);
}

static void test_connection_error_from_peer(void **state) {
  (void)state;
  h_pair h;
  start_pair(&h);
  h.srv.echo = false;
  rs_payload p = h_pl(NULL, "s");
  uint32_t id = (uint32_t)rs_conn_request_stream(h.cli.conn, &p, 1, NULL);
  h_pump_ok(&h);
  assert_int_equal(rs_conn_abort(h.srv.conn, rs_bytes_str("bye")), 0);
  assert_int_equal(rs_conn_abort(h.srv.conn, rs_bytes_str("bye")), RS_ERR_CLOSED);
  h_pump_ok(&h);
  const h_event *e = h_find(&h.cli, EV_CLOSE, 0, 0);
  assert_int_equal(e->code, RS_ERROR_CONNECTION_ERROR);
  assert_string_equal((char *)e->data, "bye");
  assert_true(e->flags);
  assert_int_equal(h_find(&h.cli, EV_ERROR, id, 0)->err, RS_ERR_CLOSED);
  /* The aborting side gets its callbacks at its next expiry handling. */
  assert_int_equal(h_count(&h.srv, EV_CLOSE, 0), 0);
  h_advance(&h, 0);
  assert_int_equal(h_count(&h.srv, EV_CLOSE, 0), 1);
  assert_int_equal(h_count(&h.srv, EV_STREAM_CLOSED, id), 1);
  assert_int_equal(rs_conn_request_response(h.cli.conn, &p, NULL), RS_ERR_CLOSED);
  assert_true(rs_conn_availability(h.cli.conn, h.now) == 0.0);
  /* Setup errors after establishment are ignored by a client. */
  h_free(&h);
  start_pair(&h);
  rs_conn_request_response(h.cli.conn, &p, NULL);
  h_pump_ok(&h);
  assert_true(h_feed_hex(&h.cli, "00 00 0A 00 00 00 00 2C 00 00 00 00 03", h.now) > 0);
  assert_int_equal(rs_conn_get_state(h.cli.conn), RS_CONN_STATE_ESTABLISHED);
  h_free(&h);
}

static void test_graceful_close(void **state) {
  (void)state;
  h_pair h;
  start_pair(&h);
  h.srv.echo = false;
  rs_payload p = h_pl(NULL, "s");
  uint32_t id = (uint32_t)rs_conn_request_stream(h.cli.conn, &p, 10, NULL);
  h_pump_ok(&h);
  assert_int_equal(rs_conn_close(h.cli.conn, rs_bytes_str("done")), 0);
  assert_int_equal(rs_conn_get_state(h.cli.conn), RS_CONN_STATE_DRAINING);
  assert_int_equal(rs_conn_request_response(h.cli.conn, &p, NULL), RS_ERR_CLOSED);
  assert_true(rs_conn_availability(h.cli.conn, h.now) == 0.0);
  h_pump_ok(&h);
  assert_int_equal(rs_conn_get_state(h.srv.conn), RS_CONN_STATE_DRAINING);
  /* A new request toward the draining side is refused with REJECTED. */
  rs_ssize sr = rs_conn_request_response(h.srv.conn, &p, NULL);
  assert_int_equal(sr, RS_ERR_CLOSED);
  /* The open stream still works to the end. */
  assert_int_equal(rs_conn_send_payload(h.srv.conn, id, &p, false), 0);
  assert_int_equal(rs_conn_send_payload(h.srv.conn, id, &p, true), 0);
  h_pump_ok(&h);
  h_advance(&h, 0);
  assert_int_equal(h_count(&h.cli, EV_PAYLOAD, id), 2);
  assert_int_equal(rs_conn_get_state(h.cli.conn), RS_CONN_STATE_CLOSED);
  assert_int_equal(rs_conn_get_state(h.srv.conn), RS_CONN_STATE_CLOSED);
  const h_event *e = h_find(&h.cli, EV_CLOSE, 0, 0);
  assert_int_equal(e->err, RS_ERR_CLOSED);
  assert_int_equal(e->code, RS_ERROR_CONNECTION_CLOSE);
  assert_string_equal((char *)e->data, "done");
  assert_false(e->flags);
  e = h_find(&h.srv, EV_CLOSE, 0, 0);
  assert_string_equal((char *)e->data, "done");
  assert_true(e->flags);
  assert_true(rs_conn_want_close(h.cli.conn));
  assert_true(rs_conn_want_close(h.srv.conn));
  h_free(&h);
  /* Requests crossing the peer's CONNECTION_CLOSE are refused with REJECTED while it drains. */
  start_pair(&h);
  h.srv.echo = false;
  id = (uint32_t)rs_conn_request_stream(h.cli.conn, &p, 1, NULL);
  h_pump_ok(&h);
  assert_int_equal(rs_conn_close(h.srv.conn, rs_bytes_str("")), 0);
  rs_ssize late = rs_conn_request_response(h.cli.conn, &p, NULL); /* crosses the close */
  assert_true(late > 0);
  h_pump_ok(&h);
  assert_int_equal(h_find(&h.cli, EV_ERROR, (uint32_t)late, 0)->code, RS_ERROR_REJECTED);
  assert_int_equal(rs_conn_send_payload(h.srv.conn, id, &p, true), 0);
  h_pump_ok(&h);
  h_advance(&h, 0);
  assert_int_equal(rs_conn_get_state(h.cli.conn), RS_CONN_STATE_CLOSED);
  assert_int_equal(rs_conn_get_state(h.srv.conn), RS_CONN_STATE_CLOSED);
  h_free(&h);
  /* With nothing open the closing side closes at once; a request that crossed it ends when the
   * transport goes away. */
  start_pair(&h);
  assert_int_equal(rs_conn_close(h.srv.conn, rs_bytes_str("")), 0);
  assert_int_equal(rs_conn_get_state(h.srv.conn), RS_CONN_STATE_CLOSED);
  late = rs_conn_request_response(h.cli.conn, &p, NULL);
  h_pump_ok(&h);
  assert_int_equal(rs_conn_get_state(h.cli.conn), RS_CONN_STATE_DRAINING);
  assert_int_equal(rs_conn_detach(h.cli.conn, h.now), 0);
  h_advance(&h, 0);
  assert_int_equal(h_find(&h.cli, EV_ERROR, (uint32_t)late, 0)->err, RS_ERR_CLOSED);
  assert_int_equal(h_find(&h.cli, EV_CLOSE, 0, 0)->err, RS_ERR_CLOSED);
  h_free(&h);
}

/* ---- Keepalive ------------------------------------------------------------------------------ */

static void test_keepalive_exchange(void **state) {
  (void)state;
  h_pair h;
  start_pair(&h);
  assert_int_equal(rs_conn_next_deadline(h.cli.conn), h.now + 1000);
  assert_int_equal(rs_conn_handle_expiry(h.cli.conn, h.now + 1000), 0);
  h.now += 1000;
  size_t len;
  uint8_t *out = h_take_output(&h.cli, &len);
  tu_assert_hex(out, len, "00 00 0E 00 00 00 00 0C 80 00 00 00 00 00 00 00 00");
  free(out);
  /* The server answers KEEPALIVE(respond) echoing the data. */
  assert_true(h_feed_hex(&h.srv, "00 00 0F 00 00 00 00 0C 80 00 00 00 00 00 00 00 00 78", h.now) >
              0);
  out = h_take_output(&h.srv, &len);
  tu_assert_hex(out, len, "00 00 0F 00 00 00 00 0C 00 00 00 00 00 00 00 00 00 78");
  free(out);
  /* And never answers an answer. */
  assert_true(h_feed_hex(&h.srv, "00 00 0E 00 00 00 00 0C 00 00 00 00 00 00 00 00 00", h.now) > 0);
  assert_int_equal(rs_conn_pending_bytes(h.srv.conn), 0);
  /* A long quiet time with the wire working: nobody times out. */
  h_advance(&h, 60000);
  assert_int_equal(rs_conn_get_state(h.cli.conn), RS_CONN_STATE_ESTABLISHED);
  assert_int_equal(rs_conn_get_state(h.srv.conn), RS_CONN_STATE_ESTABLISHED);
  assert_int_equal(rs_conn_send_keepalive(h.srv.conn, rs_bytes_str("ping")), 0);
  h_free(&h);
}

static void test_keepalive_timeout(void **state) {
  (void)state;
  h_pair h;
  start_pair(&h);
  h.cut = true;
  h_advance(&h, 4999);
  assert_int_equal(rs_conn_get_state(h.cli.conn), RS_CONN_STATE_ESTABLISHED);
  h_advance(&h, 1);
  const h_event *e = h_find(&h.cli, EV_CLOSE, 0, 0);
  assert_int_equal(e->err, RS_ERR_TIMEOUT);
  assert_int_equal(e->code, RS_ERROR_CONNECTION_ERROR);
  /* The server checks the client's lifetime too. */
  assert_int_equal(h_find(&h.srv, EV_CLOSE, 0, 0)->err, RS_ERR_TIMEOUT);
  h_free(&h);
  /* The server can also send keepalives (as rsocket-java does). */
  h_init(&h);
  h.ss.server_keepalive = true;
  h_start(&h);
  h_pump_ok(&h);
  assert_int_equal(rs_conn_next_deadline(h.srv.conn), h.now + 1000);
  h_free(&h);
}

/* rs_conn_set_input_paused: the application stopped reading the peer (a gateway holding a client
 * back while a backend is full), so the peer's frames wait unread (hold_cli). Before, the server
 * timed the client out after the lifetime, the silence being its own doing, and the client, whose
 * KEEPALIVEs went unanswered, timed the server out too. */
static void test_keepalive_input_paused(void **state) {
  (void)state;
  h_pair h;
  start_pair(&h);
  h.hold_cli = true;
  h_advance(&h, 5000); /* not paused: the unread client is timed out at its lifetime (5 s) */
  assert_int_equal(h_find(&h.srv, EV_CLOSE, 0, 0)->err, RS_ERR_TIMEOUT);
  h_free(&h);

  start_pair(&h);
  h.hold_cli = true;
  assert_int_equal(rs_conn_set_input_paused(h.srv.conn, true, h.now), 0);
  assert_int_equal(rs_conn_set_input_paused(h.srv.conn, true, h.now), 0); /* idempotent */
  /* A paused server sends KEEPALIVE every interval, without respond (no answer could be read). */
  assert_int_equal(rs_conn_next_deadline(h.srv.conn), h.now + 1000);
  h.now += 1000;
  assert_int_equal(rs_conn_handle_expiry(h.srv.conn, h.now), 0);
  size_t len;
  uint8_t *out = h_take_output(&h.srv, &len);
  tu_assert_hex(out, len, "00 00 0E 00 00 00 00 0C 00 00 00 00 00 00 00 00 00");
  free(out);
  /* Far past the lifetime nobody times out: the client hears the server's keepalives, and the
   * server does not count a silence it causes. */
  h_advance(&h, 30000);
  assert_int_equal(rs_conn_get_state(h.srv.conn), RS_CONN_STATE_ESTABLISHED);
  assert_int_equal(rs_conn_get_state(h.cli.conn), RS_CONN_STATE_ESTABLISHED);
  assert_int_equal(h_count(&h.cli, EV_CLOSE, UINT32_MAX), 0);
  assert_int_equal(h_count(&h.srv, EV_CLOSE, UINT32_MAX), 0);
  /* Reading again: a whole lifetime from now, and the server sends no keepalives of its own. */
  assert_int_equal(rs_conn_set_input_paused(h.srv.conn, false, h.now), 0);
  assert_int_equal(rs_conn_next_deadline(h.srv.conn), h.now + 5000);
  h.hold_cli = false;
  h_pump_ok(&h); /* the client's keepalives, queued meanwhile, arrive and are answered */
  h_advance(&h, 20000);
  assert_int_equal(rs_conn_get_state(h.srv.conn), RS_CONN_STATE_ESTABLISHED);
  assert_int_equal(rs_conn_get_state(h.cli.conn), RS_CONN_STATE_ESTABLISHED);
  /* Cut for real afterwards: the lifetime check is back. */
  h.cut = true;
  h_advance(&h, 5000);
  assert_int_equal(h_find(&h.srv, EV_CLOSE, 0, 0)->err, RS_ERR_TIMEOUT);
  assert_int_equal(rs_conn_set_input_paused(NULL, true, 0), RS_ERR_INVALID_ARGUMENT);
  h_free(&h);
}

static void test_control_flood(void **state) {
  (void)state;
  h_pair h;
  h_init(&h);
  h.ss.max_queued_control = 8;
  h_start(&h);
  h_pump_ok(&h);
  /* The client keeps asking for keepalive answers and never reads them. */
  for (int i = 0; i < 8; i++) {
    assert_true(h_feed_hex(&h.srv, "00 00 0E 00 00 00 00 0C 80 00 00 00 00 00 00 00 00", h.now) >
                0);
  }
  assert_int_equal(rs_conn_get_state(h.srv.conn), RS_CONN_STATE_ESTABLISHED);
  /* Writing some of them out makes room again. */
  rs_iov iov[4];
  assert_int_equal(rs_conn_pending_output(h.srv.conn, iov, 4), 1);
  assert_int_equal(rs_conn_consumed(h.srv.conn, 17), 0);
  assert_true(h_feed_hex(&h.srv, "00 00 0E 00 00 00 00 0C 80 00 00 00 00 00 00 00 00", h.now) > 0);
  assert_int_equal(rs_conn_get_state(h.srv.conn), RS_CONN_STATE_ESTABLISHED);
  assert_true(h_feed_hex(&h.srv, "00 00 0E 00 00 00 00 0C 80 00 00 00 00 00 00 00 00", h.now) > 0);
  assert_int_equal(h_find(&h.srv, EV_CLOSE, 0, 0)->err, RS_ERR_FLOODED);
  h_free(&h);
}

/* Regression (issue 13): KEEPALIVE(respond) frames carrying 1 MiB of data each, never read:
 * the reactive-frame guard counted frames only (900 of them held 900 MB). Bytes are bounded by
 * max_queued_control_bytes (4 MiB by default): the fourth closes the connection with FLOODED. */
static void test_keepalive_byte_flood(void **state) {
  (void)state;
  h_pair h;
  h_init(&h);
  h_start(&h);
  h_pump_ok(&h);
  size_t data = 1u << 20, flen = 6 + 8 + data;
  uint8_t *f = calloc(1, 3 + flen);
  assert_non_null(f);
  f[0] = (uint8_t)(flen >> 16), f[1] = (uint8_t)(flen >> 8), f[2] = (uint8_t)flen;
  f[7] = 0x0C, f[8] = 0x80; /* stream 0, KEEPALIVE, respond */
  for (int i = 0; i < 3; i++) {
    assert_true(rs_conn_recv(h.srv.conn, f, 3 + flen, h.now) > 0);
    assert_int_equal(rs_conn_get_state(h.srv.conn), RS_CONN_STATE_ESTABLISHED);
  }
  assert_true(rs_conn_pending_bytes(h.srv.conn) > 3 * data);
  rs_conn_recv(h.srv.conn, f, 3 + flen, h.now); /* 4 answers would pass 4 MiB */
  assert_int_equal(h_find(&h.srv, EV_CLOSE, 0, 0)->err, RS_ERR_FLOODED);
  assert_true(rs_conn_pending_bytes(h.srv.conn) < 4 * data);
  free(f);
  h_free(&h);
}

/* A peer that opens and cancels streams in a loop costs no memory growth. */
static void test_cancel_churn_bounded(void **state) {
  (void)state;
  h_pair h;
  h_init(&h);
  tu_alloc_init(&h.alloc, 0);
  h.use_alloc = true;
  h.srv.echo = false;
  assert_int_equal(h_new_server(&h), 0);
  assert_true(
      h_feed_hex(&h.srv,
                 "00 00 16 00 00 00 00 04 00 00 01 00 00 00 00 01 F4 00 00 05 DC 01 61 01 62",
                 h.now) > 0);
  uint8_t pair[3 + 11 + 3 + 6];
  long live_after_warmup = 0;
  for (uint32_t i = 0; i < 20000; i++) {
    uint32_t id = 1 + 2 * i;
    uint8_t *p = pair;
    rs_frame_put_length(p, 11);
    p[3] = (uint8_t)(id >> 24), p[4] = (uint8_t)(id >> 16), p[5] = (uint8_t)(id >> 8),
    p[6] = (uint8_t)id;
    p[7] = 0x18, p[8] = 0x00, p[9] = 0, p[10] = 0, p[11] = 0, p[12] = 5, p[13] = 'x';
    p += 14;
    rs_frame_put_length(p, 6);
    p[3] = (uint8_t)(id >> 24), p[4] = (uint8_t)(id >> 16), p[5] = (uint8_t)(id >> 8),
    p[6] = (uint8_t)id;
    p[7] = 0x24, p[8] = 0x00;
    assert_int_equal(rs_conn_recv(h.srv.conn, pair, sizeof(pair), h.now), (rs_ssize)sizeof(pair));
    if (i == 100) live_after_warmup = h.alloc.live;
    if (i % 1000 == 0) h_clear_events(&h.srv);
  }
  assert_int_equal(h.alloc.live, live_after_warmup);
  assert_int_equal(rs_conn_stream_count(h.srv.conn), 0);
  assert_int_equal(rs_conn_pending_bytes(h.srv.conn), 0);
  h_free(&h);
  assert_int_equal(h.alloc.live, 0);
}

/* Requests refused in bulk (over max_streams) count as replies the peer provoked. */
static void test_refusal_flood(void **state) {
  (void)state;
  h_pair h;
  h_init(&h);
  h.ss.max_streams = 1;
  h.ss.max_queued_control = 16;
  h.srv.echo = false;
  assert_int_equal(h_new_server(&h), 0);
  assert_true(
      h_feed_hex(&h.srv,
                 "00 00 16 00 00 00 00 04 00 00 01 00 00 00 00 01 F4 00 00 05 DC 01 61 01 62",
                 h.now) > 0);
  uint8_t req[3 + 7];
  for (uint32_t id = 1; id < 200 && rs_conn_get_state(h.srv.conn) != RS_CONN_STATE_CLOSED;
       id += 2) {
    rs_frame_put_length(req, 7);
    req[3] = 0, req[4] = 0, req[5] = (uint8_t)(id >> 8), req[6] = (uint8_t)id;
    req[7] = 0x10, req[8] = 0x00, req[9] = 'x';
    assert_true(rs_conn_recv(h.srv.conn, req, sizeof(req), h.now) > 0);
  }
  /* One stream taken, 16 refusals queued, the 17th closes the connection. */
  assert_int_equal(h_find(&h.srv, EV_CLOSE, 0, 0)->err, RS_ERR_FLOODED);
  assert_int_equal(h_count(&h.srv, EV_REQUEST, UINT32_MAX), 1);
  h_free(&h);
}

/* Stream error codes as the requester sees them. */
static void test_stream_error_codes(void **state) {
  (void)state;
  h_pair h;
  start_pair(&h);
  h.srv.echo = false;
  const struct {
    uint32_t code;
    int err;
  } cases[] = {
      {RS_ERROR_APPLICATION_ERROR, RS_ERR_APPLICATION},
      {RS_ERROR_REJECTED, RS_ERR_REJECTED},
      {RS_ERROR_CANCELED, RS_ERR_CANCELED},
      {RS_ERROR_INVALID, RS_ERR_PROTOCOL},
      {0x00000301u, RS_ERR_APPLICATION},
      {0xFFFFFFFEu, RS_ERR_APPLICATION},
  };
  rs_payload p = h_pl(NULL, "q");
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    uint32_t id = (uint32_t)rs_conn_request_stream(h.cli.conn, &p, 1, NULL);
    h_pump_ok(&h);
    assert_int_equal(rs_conn_send_error(h.srv.conn, id, cases[i].code, rs_bytes_str("why")), 0);
    h_pump_ok(&h);
    const h_event *e = h_find(&h.cli, EV_ERROR, id, 0);
    assert_int_equal(e->code, cases[i].code);
    assert_int_equal(e->err, cases[i].err);
    assert_string_equal((char *)e->data, "why");
  }
  uint32_t id = (uint32_t)rs_conn_request_stream(h.cli.conn, &p, 1, NULL);
  h_pump_ok(&h);
  assert_int_equal(rs_conn_send_error(h.srv.conn, id, RS_ERROR_RESERVED_EXT, rs_bytes_str("")),
                   RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_conn_send_error(h.srv.conn, id, RS_ERROR_REJECTED_SETUP, rs_bytes_str("")),
                   RS_ERR_INVALID_ARGUMENT);
  /* The requester of a stream cancels; it cannot send ERROR. */
  assert_int_equal(rs_conn_send_error(h.cli.conn, id, RS_ERROR_APPLICATION_ERROR, rs_bytes_str("")),
                   RS_ERR_INVALID_STATE);
  h_free(&h);
}

static void test_callbacks_not_reentered(void **state) {
  (void)state;
  h_pair h;
  start_pair(&h);
  /* recv and expiry handling from inside a callback are refused. */
  rs_payload p = h_pl(NULL, "s");
  uint32_t id = (uint32_t)rs_conn_request_stream(h.cli.conn, &p, 1, NULL);
  h_pump_ok(&h);
  h.cli.conn->in_callback++;
  assert_int_equal(rs_conn_recv(h.cli.conn, (const uint8_t *)"", 0, h.now), RS_ERR_INVALID_STATE);
  assert_int_equal(rs_conn_handle_expiry(h.cli.conn, h.now), RS_ERR_INVALID_STATE);
  h.cli.conn->in_callback--;
  assert_int_equal(rs_conn_send_payload(h.srv.conn, id, &p, true), 0);
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.cli, EV_STREAM_CLOSED, id), 1);
  h_free(&h);
}

/* Message framing (WebSocket): one frame per iovec, headroom before each. */
static void test_message_framing(void **state) {
  (void)state;
  h_pair h;
  h_init(&h);
  h.cs.framing = RS_FRAMING_MESSAGE;
  h.ss.framing = RS_FRAMING_MESSAGE;
  h_start(&h);
  rs_payload p = h_pl("m", "hello");
  assert_true(rs_conn_request_response(h.cli.conn, &p, NULL) > 0);
  rs_iov iov[8];
  assert_int_equal(rs_conn_pending_output(h.cli.conn, iov, 8), 2);
  /* SETUP with the default MIME types: header 6 + 12 fixed + 2 x (1 + 24). */
  assert_int_equal(iov[0].len, 68);
  assert_int_equal(iov[1].len, 6 + 3 + 1 + 5);
  /* The transport may write its header into the headroom. */
  memset(iov[1].base - RS_CONN_MESSAGE_HEADROOM, 0xEE, RS_CONN_MESSAGE_HEADROOM);
  assert_int_equal(rs_conn_pending_output(h.cli.conn, iov, 8), 2);
  assert_int_equal(rs_conn_recv(h.cli.conn, iov[0].base, 1, h.now), RS_ERR_INVALID_STATE);
  /* Consumption must end on a frame boundary. */
  assert_int_equal(rs_conn_consumed(h.cli.conn, iov[0].len + 1), RS_ERR_INVALID_ARGUMENT);
  h_pump_ok(&h);
  assert_string_equal((char *)h_find(&h.cli, EV_PAYLOAD, 1, 0)->data, "hello");
  h_free(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_setup_bytes),
      cmocka_unit_test(test_setup_accepted_with_payload),
      cmocka_unit_test(test_setup_rejected_by_application),
      cmocka_unit_test(test_setup_first_frame_not_setup),
      cmocka_unit_test(test_setup_on_nonzero_stream),
      cmocka_unit_test(test_setup_bad_version_and_flags),
      cmocka_unit_test(test_setup_second_setup_ignored_and_timeout),
      cmocka_unit_test(test_settings_validation),
      cmocka_unit_test(test_request_response_echo),
      cmocka_unit_test(test_request_response_later_answer_and_errors),
      cmocka_unit_test(test_request_rejected_by_application),
      cmocka_unit_test(test_fire_and_forget),
      cmocka_unit_test(test_request_stream_credit),
      cmocka_unit_test(test_credit_unbounded),
      cmocka_unit_test(test_peer_exceeding_credit),
      cmocka_unit_test(test_request_n_and_cancel_interleaved),
      cmocka_unit_test(test_cancel_races),
      cmocka_unit_test(test_channel_exchange),
      cmocka_unit_test(test_channel_half_close_orders),
      cmocka_unit_test(test_metadata_push),
      cmocka_unit_test(test_stream_user_and_ids),
      cmocka_unit_test(test_stream_id_wrap_skips_live),
      cmocka_unit_test(test_max_streams),
      cmocka_unit_test(test_unknown_frames),
      cmocka_unit_test(test_malformed_frames),
      cmocka_unit_test(test_connection_error_from_peer),
      cmocka_unit_test(test_graceful_close),
      cmocka_unit_test(test_keepalive_exchange),
      cmocka_unit_test(test_keepalive_timeout),
      cmocka_unit_test(test_keepalive_input_paused),
      cmocka_unit_test(test_control_flood),
      cmocka_unit_test(test_keepalive_byte_flood),
      cmocka_unit_test(test_cancel_churn_bounded),
      cmocka_unit_test(test_refusal_flood),
      cmocka_unit_test(test_stream_error_codes),
      cmocka_unit_test(test_callbacks_not_reentered),
      cmocka_unit_test(test_message_framing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
