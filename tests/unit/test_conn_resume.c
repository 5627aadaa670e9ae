/*
 * Protocol engine: resumption. Positions, retained frames, RESUME / RESUME_OK / REJECTED_RESUME,
 * the server's session store, detach and attach; and the main property: whatever the point where
 * the wire is cut, every element is delivered once, in order, none lost.
 */
#include "test_conn_harness.h"

typedef struct rtest {
  h_pair h;
  rs_conn *session; /* the server's resumable session */
} rtest;

static void resume_pair_framed(rtest *t, size_t buffer, rs_conn_framing framing) {
  h_pair *h = &t->h;
  h_init(h);
  h->cs.framing = h->ss.framing = framing;
  if (framing == RS_FRAMING_MESSAGE) h->cs.mtu = h->ss.mtu = 64;
  h->store = rs_resume_store_new(NULL);
  assert_non_null(h->store);
  h->cs.resume = true;
  h->cs.resume_token = rs_bytes_str("token-1");
  h->ss.resume = true;
  h->ss.resume_store = h->store;
  h->cs.resume_buffer_size = buffer;
  h->ss.resume_buffer_size = buffer;
  h->ss.resume_session_timeout_ms = 30000;
  h->cs.resume_session_timeout_ms = 30000;
  h_start(h);
  h_pump_ok(h);
  t->session = h->srv.conn;
  assert_int_equal(rs_resume_store_count(h->store), 1);
  assert_int_equal(h_find(&h->srv, EV_SETUP, 0, 0)->flags, 2); /* resume asked */
}

static void resume_pair(rtest *t, size_t buffer) {
  resume_pair_framed(t, buffer, RS_FRAMING_LENGTH_PREFIXED);
}

/* Delivers at most `budget` bytes of `from`'s output to `to`; the rest dies with the transport. */
static void deliver_partial(h_pair *h, h_peer *from, h_peer *to, size_t budget) {
  rs_iov iov[16];
  int n = rs_conn_pending_output(from->conn, iov, 16);
  size_t done = 0;
  if (h->ss.framing == RS_FRAMING_MESSAGE) {
    /* Messages arrive whole or not at all. */
    for (int i = 0; i < n && iov[i].len <= budget; i++) {
      assert_int_equal(rs_conn_recv_frame(to->conn, iov[i].base, iov[i].len, h->now), 0);
      h_follow_handoff(to);
      budget -= iov[i].len;
      done += iov[i].len;
    }
    if (done) assert_int_equal(rs_conn_consumed(from->conn, done), 0);
    return;
  }
  for (int i = 0; i < n && budget; i++) {
    size_t k = iov[i].len < budget ? iov[i].len : budget;
    size_t off = 0;
    while (off < k) {
      rs_ssize r = rs_conn_recv(to->conn, iov[i].base + off, k - off, h->now);
      assert_true(r >= 0);
      off += (size_t)r;
      bool handed = h_follow_handoff(to);
      if (off < k) assert_true(handed);
    }
    budget -= k;
    done += k;
  }
  if (done) assert_int_equal(rs_conn_consumed(from->conn, done), 0);
}

/* The transport dies after a random part of what is in flight got through; a new one comes up
 * and the client resumes over it. */
static void cut_and_resume(rtest *t, uint64_t *rng) {
  h_pair *h = &t->h;
  size_t pc = rs_conn_pending_bytes(h->cli.conn), ps = rs_conn_pending_bytes(h->srv.conn);
  deliver_partial(h, &h->cli, &h->srv, (size_t)(tu_rand(rng) % (pc + 1)));
  deliver_partial(h, &h->srv, &h->cli, (size_t)(tu_rand(rng) % (ps + 1)));
  assert_int_equal(rs_conn_detach(h->cli.conn, h->now), 0);
  if (h->srv.conn != t->session) {
    /* The cut came while a fresh connection was still reading RESUME: it just goes away. */
    assert_int_equal(rs_conn_detach(h->srv.conn, h->now), 0);
    rs_conn_free(h->srv.conn);
  }
  h->srv.conn = NULL;
  assert_int_equal(rs_conn_detach(t->session, h->now), 0);
  assert_int_equal(rs_conn_get_state(t->session), RS_CONN_STATE_DISCONNECTED);
  assert_int_equal(rs_conn_get_state(h->cli.conn), RS_CONN_STATE_DISCONNECTED);
  assert_true(rs_conn_availability(h->cli.conn, h->now) == 0.0);
  /* New transport. */
  assert_int_equal(h_new_server(h), 0);
  assert_int_equal(rs_conn_attach(h->cli.conn, h->now), 0);
  assert_int_equal(rs_conn_get_state(h->cli.conn), RS_CONN_STATE_RESUMING);
}

static void check_sequence(const h_peer *p, uint32_t sid, const char *prefix, int count) {
  char want[32];
  int k = 0;
  for (size_t i = 0; i < p->nev; i++) {
    const h_event *e = &p->ev[i];
    if (e->kind != EV_PAYLOAD || e->sid != sid || !(e->flags & RS_PAYLOAD_NEXT)) continue;
    snprintf(want, sizeof(want), "%s%05d", prefix, k);
    if (strcmp((const char *)e->data, want) != 0) {
      fail_msg("%s: element %d is \"%s\", want \"%s\"", p->name, k, (const char *)e->data, want);
    }
    k++;
  }
  assert_int_equal(k, count);
}

static void random_cuts(uint64_t seed, size_t buffer, int items, rs_conn_framing framing) {
  rtest t;
  resume_pair_framed(&t, buffer, framing);
  h_pair *h = &t.h;
  uint64_t rng = seed;
  h->chunk = H_RANDOM_CHUNK;
  h->rng = seed * 7 + 1;
  h->srv.echo = false;
  rs_payload p = h_pl("md", "go");
  uint32_t sid = (uint32_t)rs_conn_request_stream(h->cli.conn, &p, RS_CREDIT_UNBOUNDED, NULL);
  uint32_t cid = (uint32_t)rs_conn_request_channel(h->cli.conn, &p, 1000000, false, NULL);
  h_pump_ok(h);
  assert_int_equal(h_count(&h->srv, EV_REQUEST, UINT32_MAX), 2);
  assert_int_equal(rs_conn_request_n(t.session, cid, RS_CREDIT_UNBOUNDED), 0);
  h_pump_ok(h);
  int sent_s = 0, sent_c = 0, sent_cs = 0, cuts = 0;
  char buf[32];
  static const char pad[] = "padding-padding-padding-padding-padding-padding-padding-padding";
  while (sent_s < items || sent_c < items || sent_cs < items) {
    int k = (int)(tu_rand(&rng) % 8);
    for (int i = 0; i < k && sent_s < items; i++, sent_s++) {
      snprintf(buf, sizeof(buf), "s%05d", sent_s);
      rs_payload e = h_pl(pad, buf);
      assert_int_equal(rs_conn_send_payload(t.session, sid, &e, false), 0);
    }
    k = (int)(tu_rand(&rng) % 8);
    for (int i = 0; i < k && sent_c < items; i++, sent_c++) {
      snprintf(buf, sizeof(buf), "c%05d", sent_c);
      rs_payload e = h_pl(pad, buf);
      assert_int_equal(rs_conn_send_payload(h->cli.conn, cid, &e, false), 0);
    }
    k = (int)(tu_rand(&rng) % 8);
    for (int i = 0; i < k && sent_cs < items; i++, sent_cs++) {
      snprintf(buf, sizeof(buf), "r%05d", sent_cs);
      rs_payload e = h_pl(NULL, buf);
      assert_int_equal(rs_conn_send_payload(t.session, cid, &e, false), 0);
    }
    if (tu_rand(&rng) % 4 == 0) {
      cut_and_resume(&t, &rng);
      cuts++;
      /* Sometimes the new transport dies too, before or during the handshake. */
      if (tu_rand(&rng) % 3 == 0) cut_and_resume(&t, &rng);
    }
    h_pump_ok(h);
    assert_int_equal(rs_conn_get_state(h->cli.conn), RS_CONN_STATE_ESTABLISHED);
    assert_ptr_equal(h->srv.conn, t.session);
    h_advance(h, tu_rand(&rng) % 400);
  }
  assert_int_equal(rs_conn_send_complete(t.session, sid), 0);
  assert_int_equal(rs_conn_send_complete(t.session, cid), 0);
  assert_int_equal(rs_conn_send_complete(h->cli.conn, cid), 0);
  cut_and_resume(&t, &rng);
  h_pump_ok(h);
  h_advance(h, 0);
  assert_true(cuts > 0);
  check_sequence(&h->cli, sid, "s", items);
  check_sequence(&h->cli, cid, "r", items);
  check_sequence(&h->srv, cid, "c", items);
  assert_int_equal(h_count(&h->cli, EV_STREAM_CLOSED, sid), 1);
  assert_int_equal(h_count(&h->cli, EV_STREAM_CLOSED, cid), 1);
  assert_int_equal(h_count(&h->srv, EV_STREAM_CLOSED, sid), 1);
  assert_int_equal(h_count(&h->srv, EV_STREAM_CLOSED, cid), 1);
  assert_int_equal(h_count(&h->cli, EV_ERROR, UINT32_MAX), 0);
  assert_int_equal(h_count(&h->cli, EV_CLOSE, UINT32_MAX), 0);
  /* Both sides agree on the positions. */
  assert_true(rs_conn_sent_position(h->cli.conn) == rs_conn_received_position(t.session));
  assert_true(rs_conn_sent_position(t.session) == rs_conn_received_position(h->cli.conn));
  h_free(h);
}

static void test_resume_random_cuts(void **state) {
  (void)state;
  for (uint64_t seed = 1; seed <= 40; seed++) {
    random_cuts(seed, 1u << 20, 200, RS_FRAMING_LENGTH_PREFIXED);
  }
}

/* A retained-frame buffer smaller than the whole exchange: KEEPALIVE positions trim it. */
static void test_resume_random_cuts_small_buffer(void **state) {
  (void)state;
  for (uint64_t seed = 100; seed <= 110; seed++) {
    random_cuts(seed, 4096, 300, RS_FRAMING_LENGTH_PREFIXED);
  }
}

/* The same over a message transport (WebSocket), with fragmentation at MTU 64 on top. */
static void test_resume_random_cuts_message_framing(void **state) {
  (void)state;
  for (uint64_t seed = 200; seed <= 215; seed++)
    random_cuts(seed, 1u << 20, 150, RS_FRAMING_MESSAGE);
}

/* A producer of "s00000".."s<N-1>" padded to 64 bytes, then complete. */
typedef struct seqp {
  int next, total;
} seqp;

static int seq_producer(h_peer *p, rs_conn *c, uint32_t sid, uint64_t credit) {
  seqp *q = p->producer_data;
  char buf[80];
  for (int i = 0; i < 4 && credit > 0 && q->next < q->total; i++) {
    snprintf(buf, sizeof buf, "s%05d", q->next);
    rs_payload e = h_pl("padding-padding-padding-padding-padding-padding-padding", buf);
    bool last = q->next + 1 == q->total;
    assert_int_equal(rs_conn_send_payload(c, sid, &e, last), 0);
    q->next++;
    if (credit != RS_CREDIT_UNBOUNDED) credit--;
  }
  return RS_PRODUCE_MORE;
}

static void producer_on_request(h_peer *p, const h_event *e) {
  if (e->kind == EV_REQUEST) assert_int_equal(rs_conn_set_producer(p->conn, e->sid), 0);
}

/*
 * Lossless resumption at full speed: a producer with unbounded credit behind a small retained
 * window (2 KiB; 3,000 elements of ~70 bytes go through it) and a cut every few steps. The
 * producer pauses when the window is half full and a KEEPALIVE(respond) asks the client for its
 * position, so the server never drops a frame the client may still need: every resumption is
 * accepted and every element arrives once, in order. (Pushing elements regardless of the window
 * got REJECTED_RESUME "resume positions are not available" at the first cut.)
 */
static void test_resume_unbounded_producer_survives_cuts(void **state) {
  (void)state;
  rtest t;
  resume_pair(&t, 2048);
  h_pair *h = &t.h;
  h->srv.echo = false;
  seqp q = {0, 3000};
  h->srv.producer = seq_producer;
  h->srv.producer_data = &q;
  h->srv.hook = producer_on_request;
  rs_payload p = h_pl(NULL, "go");
  uint32_t sid = (uint32_t)rs_conn_request_stream(h->cli.conn, &p, RS_CREDIT_UNBOUNDED, NULL);
  h_move(h, &h->cli, &h->srv);
  uint64_t rng = 42;
  int cuts = 0, steps = 0;
  while (h_count(&h->cli, EV_STREAM_CLOSED, sid) == 0 && steps++ < 200000) {
    for (int r = 0; r < 1 + (int)(tu_rand(&rng) % 4); r++) {
      if (rs_conn_want_produce(h->srv.conn))
        assert_int_equal(rs_conn_produce(h->srv.conn, h->now), 0);
      size_t ps = rs_conn_pending_bytes(h->srv.conn);
      deliver_partial(h, &h->srv, &h->cli, (size_t)(tu_rand(&rng) % (ps + 1)));
      assert_true(h_move(h, &h->cli, &h->srv) >= 0);
    }
    if (tu_rand(&rng) % 3 == 0 && q.next < q.total) {
      cut_and_resume(&t, &rng);
      assert_true(h_move(h, &h->cli, &h->srv) >= 0); /* RESUME, RESUME_OK follows */
      cuts++;
    }
  }
  assert_true(cuts >= 40);
  assert_int_equal(h_count(&h->cli, EV_CLOSE, 0), 0);
  assert_int_equal(h_count(&h->cli, EV_ERROR, UINT32_MAX), 0);
  check_sequence(&h->cli, sid, "s", q.total);
  h_free(h);
}

static void test_resume_requests_while_disconnected(void **state) {
  (void)state;
  rtest t;
  resume_pair(&t, 1u << 20);
  h_pair *h = &t.h;
  uint64_t rng = 5;
  cut_and_resume(&t, &rng);
  h_pump_ok(h);
  /* Detached again: requests made now go out after resumption. */
  cut_and_resume(&t, &rng);
  assert_int_equal(rs_conn_detach(h->cli.conn, h->now), 0);
  rs_payload p = h_pl(NULL, "later");
  rs_ssize id = rs_conn_request_response(h->cli.conn, &p, NULL);
  assert_true(id > 0);
  assert_int_equal(rs_conn_pending_bytes(h->cli.conn), 0);
  /* The fresh server connection never got RESUME; a new transport replaces it. */
  rs_conn_free(h->srv.conn);
  assert_int_equal(h_new_server(h), 0);
  assert_int_equal(rs_conn_attach(h->cli.conn, h->now), 0);
  h_pump_ok(h);
  assert_ptr_equal(h->srv.conn, t.session);
  assert_string_equal((char *)h_find(&h->cli, EV_PAYLOAD, (uint32_t)id, 0)->data, "later");
  h_free(h);
}

static void test_resume_unknown_token_rejected(void **state) {
  (void)state;
  rtest t;
  resume_pair(&t, 1u << 20);
  h_pair *h = &t.h;
  h->srv.echo = false;
  rs_payload p = h_pl(NULL, "x");
  uint32_t id = (uint32_t)rs_conn_request_response(h->cli.conn, &p, NULL);
  h_pump_ok(h);
  assert_int_equal(rs_conn_detach(h->cli.conn, h->now), 0);
  /* The server lost the session (its own timeout, restart...). */
  rs_conn_free(t.session);
  assert_int_equal(rs_resume_store_count(h->store), 0);
  assert_int_equal(h_new_server(h), 0);
  assert_int_equal(rs_conn_attach(h->cli.conn, h->now), 0);
  h_pump_ok(h);
  const h_event *e = h_find(&h->cli, EV_CLOSE, 0, 0);
  assert_int_equal(e->err, RS_ERR_REJECTED);
  assert_int_equal(e->code, RS_ERROR_REJECTED_RESUME);
  assert_int_equal(h_find(&h->cli, EV_ERROR, id, 0)->err, RS_ERR_CLOSED);
  assert_int_equal(rs_conn_get_state(h->cli.conn), RS_CONN_STATE_CLOSED);
  /* No second try. */
  assert_int_equal(rs_conn_attach(h->cli.conn, h->now), RS_ERR_INVALID_STATE);
  h_free(h);
}

static void test_resume_positions_unavailable(void **state) {
  (void)state;
  rtest t;
  /* 200-byte buffers and no keepalive in between: the server cannot hold what was lost. */
  resume_pair(&t, 200);
  h_pair *h = &t.h;
  h->srv.echo = false;
  rs_payload p = h_pl(NULL, "s");
  uint32_t id = (uint32_t)rs_conn_request_stream(h->cli.conn, &p, 100, NULL);
  h_pump_ok(h);
  char buf[40];
  for (int i = 0; i < 20; i++) {
    snprintf(buf, sizeof(buf), "element-%02d-padding-padding", i);
    rs_payload e = h_pl(NULL, buf);
    assert_int_equal(rs_conn_send_payload(t.session, id, &e, false), 0);
  }
  /* Everything is lost in flight. */
  assert_int_equal(rs_conn_detach(h->cli.conn, h->now), 0);
  assert_int_equal(rs_conn_detach(t.session, h->now), 0);
  h->srv.conn = NULL;
  assert_int_equal(h_new_server(h), 0);
  assert_int_equal(rs_conn_attach(h->cli.conn, h->now), 0);
  h_pump_ok(h);
  assert_int_equal(h_find(&h->cli, EV_CLOSE, 0, 0)->code, RS_ERROR_REJECTED_RESUME);
  /* The old session stays until its own timeout. */
  assert_int_equal(rs_conn_get_state(t.session), RS_CONN_STATE_DISCONNECTED);
  h_clear_events(&h->srv);
  rs_conn_handle_expiry(t.session, h->now + 30000);
  assert_int_equal(h_find(&h->srv, EV_CLOSE, 0, 0)->err, RS_ERR_TIMEOUT);
  assert_int_equal(h_find(&h->srv, EV_ERROR, id, 0)->err, RS_ERR_CLOSED);
  assert_int_equal(rs_resume_store_count(h->store), 0);
  rs_conn_free(t.session);
  h_free(h);
}

static void test_resume_not_supported_and_misuse(void **state) {
  (void)state;
  rtest t;
  resume_pair(&t, 1u << 20);
  h_pair *h = &t.h;
  /* RESUME on an established connection: CONNECTION_ERROR. */
  assert_true(h_feed_hex(&h->srv,
                         "00 00 1F 00 00 00 00 34 00 00 01 00 00 00 03 74 6F 6B 00 00 00 00 00 00 "
                         "00 10 00 00 00 00 00 00 00 20",
                         h->now) > 0);
  size_t len;
  uint8_t *out = h_take_output(&h->srv, &len);
  tu_assert_hex(out + 9, 4, "00 00 01 01");
  free(out);
  assert_int_equal(rs_resume_store_count(h->store), 0); /* closed sessions leave the store */
  h_free(h);
  /* A server without resumption answers RESUME with REJECTED_RESUME. */
  h_init(h);
  assert_int_equal(h_new_server(h), 0);
  assert_true(h_feed_hex(&h->srv,
                         "00 00 1F 00 00 00 00 34 00 00 01 00 00 00 03 74 6F 6B 00 00 00 00 00 00 "
                         "00 10 00 00 00 00 00 00 00 20",
                         h->now) > 0);
  out = h_take_output(&h->srv, &len);
  tu_assert_hex(out + 9, 4, "00 00 00 04");
  free(out);
  h_free(h);
  /* attach/detach misuse. */
  resume_pair(&t, 1u << 20);
  assert_int_equal(rs_conn_attach(h->cli.conn, h->now), RS_ERR_INVALID_STATE);
  assert_int_equal(rs_conn_attach(h->srv.conn, h->now), RS_ERR_INVALID_STATE);
  h_free(h);
}

static void test_resume_duplicate_token_refused(void **state) {
  (void)state;
  rtest t;
  resume_pair(&t, 1u << 20);
  h_pair *h = &t.h;
  /* A second client with the same token. */
  h_peer other = {0};
  other.name = "other";
  other.pair = h;
  rs_conn *srv2 = NULL, *cli2 = NULL;
  assert_int_equal(rs_conn_new(&cli2, &h->cs, &h_callbacks, &other, NULL, h->now), 0);
  assert_int_equal(rs_conn_new(&srv2, &h->ss, &h_callbacks, &other, NULL, h->now), 0);
  h_peer a = {0}, b = {0};
  a.conn = cli2;
  b.conn = srv2;
  a.ev = b.ev = NULL;
  size_t len;
  uint8_t *out = h_take_output(&a, &len);
  assert_true(rs_conn_recv(srv2, out, len, h->now) > 0);
  free(out);
  out = h_take_output(&b, &len);
  tu_assert_hex(out + 9, 4, "00 00 00 03"); /* REJECTED_SETUP */
  free(out);
  assert_int_equal(rs_resume_store_count(h->store), 1);
  rs_conn_free(cli2);
  rs_conn_free(srv2);
  h_clear_events(&other);
  free(other.ev);
  h_free(h);
}

/* The server had not noticed the old transport die: the RESUME takes the session over. */
static void test_resume_takes_over_live_session(void **state) {
  (void)state;
  rtest t;
  resume_pair(&t, 1u << 20);
  h_pair *h = &t.h;
  h->srv.echo = false;
  rs_payload p = h_pl(NULL, "x");
  uint32_t id = (uint32_t)rs_conn_request_response(h->cli.conn, &p, NULL);
  h_pump_ok(h);
  assert_int_equal(rs_conn_detach(h->cli.conn, h->now), 0);
  assert_int_equal(rs_conn_get_state(t.session), RS_CONN_STATE_ESTABLISHED);
  assert_int_equal(h_new_server(h), 0);
  assert_int_equal(rs_conn_attach(h->cli.conn, h->now), 0);
  h_pump_ok(h);
  assert_ptr_equal(h->srv.conn, t.session);
  assert_int_equal(h_count(&h->srv, EV_DETACHED, 0), 1);
  assert_int_equal(rs_conn_send_payload(t.session, id, &p, true), 0);
  h_pump_ok(h);
  assert_int_equal(h_count(&h->cli, EV_PAYLOAD, id), 1);
  h_free(h);
}

/* Regression (issue 13): 600 connections that each left a resumable session behind held 743 MiB
 * for the session timeout. The store bounds detached sessions (count and retained bytes): past
 * the budget the oldest ends at once. */
static void test_detached_sessions_bounded(void **state) {
  (void)state;
  rs_resume_store *store = rs_resume_store_new(NULL);
  assert_non_null(store);
  assert_int_equal(rs_resume_store_set_limits(store, 2, 0), 0);
  h_pair h[3];
  char token[3][16];
  for (int i = 0; i < 3; i++) {
    h_init(&h[i]);
    snprintf(token[i], sizeof token[i], "token-%d", i);
    h[i].cs.resume = h[i].ss.resume = true;
    h[i].cs.resume_token = rs_bytes_str(token[i]);
    h[i].ss.resume_store = store;
    h[i].ss.resume_session_timeout_ms = h[i].cs.resume_session_timeout_ms = 30000;
    h_start(&h[i]);
    h_pump_ok(&h[i]);
  }
  assert_int_equal(rs_resume_store_count(store), 3);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(rs_conn_detach(h[i].srv.conn, h[i].now), 0);
    assert_int_equal(rs_conn_get_state(h[i].srv.conn), RS_CONN_STATE_DISCONNECTED);
  }
  size_t bytes;
  assert_int_equal(rs_resume_store_detached(store, &bytes), 2);
  /* The oldest is due now (its driver was told through on_wake) and ends at its expiry. */
  assert_true(h[0].srv.wakes > 0);
  assert_true(rs_conn_next_deadline(h[0].srv.conn) <= h[0].now);
  rs_conn_handle_expiry(h[0].srv.conn, h[0].now);
  assert_int_equal(rs_conn_get_state(h[0].srv.conn), RS_CONN_STATE_CLOSED);
  assert_int_equal(rs_conn_get_state(h[1].srv.conn), RS_CONN_STATE_DISCONNECTED);
  assert_int_equal(rs_resume_store_count(store), 2);
  /* A byte budget works the same way: 1 byte evicts every other detached session. */
  assert_int_equal(rs_resume_store_set_limits(store, 0, 1), 0);
  assert_int_equal(rs_conn_detach(h[2].srv.conn, h[2].now), 0); /* already detached: no-op */
  for (int i = 0; i < 3; i++) h_free(&h[i]);
  rs_resume_store_free(store);
}

/* Without resumption, detach closes: streams get RS_ERR_CLOSED. */
static void test_detach_without_resume(void **state) {
  (void)state;
  h_pair h;
  h_init(&h);
  h_start(&h);
  h.srv.echo = false;
  rs_payload p = h_pl(NULL, "x");
  uint32_t id = (uint32_t)rs_conn_request_response(h.cli.conn, &p, NULL);
  h_pump_ok(&h);
  assert_int_equal(rs_conn_detach(h.cli.conn, h.now), 0);
  assert_int_equal(rs_conn_get_state(h.cli.conn), RS_CONN_STATE_CLOSED);
  assert_int_equal(rs_conn_detach(h.cli.conn, h.now), RS_ERR_CLOSED);
  assert_int_equal(rs_conn_attach(h.cli.conn, h.now), RS_ERR_INVALID_STATE);
  h_advance(&h, 0);
  assert_int_equal(h_find(&h.cli, EV_ERROR, id, 0)->err, RS_ERR_CLOSED);
  assert_int_equal(h_find(&h.cli, EV_CLOSE, 0, 0)->err, RS_ERR_CLOSED);
  h_free(&h);
}

/* RESUME bytes as the client sends them. */
static void test_resume_frame_bytes(void **state) {
  (void)state;
  rtest t;
  resume_pair(&t, 1u << 20);
  h_pair *h = &t.h;
  assert_int_equal(rs_conn_detach(h->cli.conn, h->now), 0);
  assert_int_equal(rs_conn_attach(h->cli.conn, h->now), 0);
  size_t len;
  uint8_t *out = h_take_output(&h->cli, &len);
  tu_assert_hex(out, len,
                "00 00 23 00 00 00 00 34 00 00 01 00 00 00 07 74 6F 6B 65 6E 2D 31 "
                "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00");
  free(out);
  h_free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_resume_unbounded_producer_survives_cuts),
      cmocka_unit_test(test_resume_random_cuts),
      cmocka_unit_test(test_resume_random_cuts_small_buffer),
      cmocka_unit_test(test_resume_random_cuts_message_framing),
      cmocka_unit_test(test_resume_requests_while_disconnected),
      cmocka_unit_test(test_resume_unknown_token_rejected),
      cmocka_unit_test(test_resume_positions_unavailable),
      cmocka_unit_test(test_resume_not_supported_and_misuse),
      cmocka_unit_test(test_resume_duplicate_token_refused),
      cmocka_unit_test(test_resume_takes_over_live_session),
      cmocka_unit_test(test_detach_without_resume),
      cmocka_unit_test(test_detached_sessions_bounded),
      cmocka_unit_test(test_resume_frame_bytes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
