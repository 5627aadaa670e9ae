/*
 * Protocol engine under a failing allocator: a full exchange (SETUP with resumption, all five
 * models, fragmentation at MTU 64, keepalive, a cut and a resumption, lease, graceful close) is
 * run once to count its allocations, then again with allocation N failing, for every N. Each
 * failure must surface as RS_ERR_NOMEM from some call (or on_close), nothing may crash, and
 * every block must be freed in the end (checked here and by ASan).
 */
#include "test_conn_harness.h"

typedef struct run {
  h_pair h;
  bool strict; /* no failure injected: everything must work */
  bool nomem;  /* some call reported RS_ERR_NOMEM */
  int errors;
} run;

static long check(run *r, long rc) {
  if (rc == RS_ERR_NOMEM) r->nomem = true;
  if (rc < 0) {
    r->errors++;
    if (r->strict) fail_msg("unexpected error %ld (%s)", rc, rs_strerror((int)rc));
  }
  return rc;
}

static void pump(run *r) {
  check(r, h_pump(&r->h));
}

static void advance(run *r, uint64_t ms) {
  h_pair *h = &r->h;
  h->now += ms;
  if (h->cli.conn) check(r, rs_conn_handle_expiry(h->cli.conn, h->now));
  if (h->srv.conn) check(r, rs_conn_handle_expiry(h->srv.conn, h->now));
  pump(r);
}

static void closed_with_nomem(run *r, const h_peer *p) {
  for (size_t i = 0; i < p->nev; i++) {
    if (p->ev[i].kind == EV_CLOSE && p->ev[i].err == RS_ERR_NOMEM) r->nomem = true;
  }
}

static void exchange(run *r) {
  h_pair *h = &r->h;
  rs_conn *session = NULL;
  h->store = rs_resume_store_new(&h->alloc.mem);
  if (!h->store) {
    r->nomem = true;
    return;
  }
  h->cs.resume = true;
  h->cs.resume_token = rs_bytes_str("alloc-token");
  h->cs.setup_payload = h_pl("setup-md", "setup-data");
  h->cs.mtu = 64;
  h->ss.mtu = 64;
  h->ss.resume = true;
  h->ss.resume_store = h->store;
  h->chunk = 13;
  if (check(r, rs_conn_new(&h->cli.conn, &h->cs, &h_callbacks, &h->cli, &h->alloc.mem, h->now)) <
      0) {
    return;
  }
  if (check(r, h_new_server(h)) < 0) return;
  session = h->srv.conn;
  pump(r);

  uint8_t big[700];
  for (size_t i = 0; i < sizeof(big); i++) big[i] = (uint8_t)i;
  rs_payload small = h_pl("m", "small");
  rs_payload large = {true, {big, 100}, {big, sizeof(big)}};
  check(r, rs_conn_request_response(h->cli.conn, &small, NULL));
  check(r, rs_conn_request_response(h->cli.conn, &large, NULL));
  check(r, rs_conn_request_fnf(h->cli.conn, &large));
  long sid = check(r, rs_conn_request_stream(h->cli.conn, &small, 4, NULL));
  long cid = check(r, rs_conn_request_channel(h->cli.conn, &large, 2, false, NULL));
  check(r, rs_conn_metadata_push(h->cli.conn, rs_bytes_str("push")));
  pump(r);
  if (sid > 0) {
    check(r, rs_conn_send_payload(session, (uint32_t)sid, &small, false));
    check(r, rs_conn_send_payload(session, (uint32_t)sid, &large, false));
  }
  if (cid > 0) {
    check(r, rs_conn_request_n(session, (uint32_t)cid, 5));
    check(r, rs_conn_send_payload(session, (uint32_t)cid, &large, false));
  }
  pump(r);
  if (cid > 0) {
    check(r, rs_conn_send_payload(h->cli.conn, (uint32_t)cid, &large, false));
    check(r, rs_conn_cancel(session, (uint32_t)cid));
    check(r, rs_conn_send_complete(session, (uint32_t)cid));
  }
  advance(r, 1000); /* keepalive */
  advance(r, 0);

  /* The wire is cut halfway through new traffic; the client resumes on a new transport. */
  if (sid > 0) check(r, rs_conn_send_payload(session, (uint32_t)sid, &large, false));
  check(r, rs_conn_request_response(h->cli.conn, &large, NULL));
  check(r, rs_conn_detach(h->cli.conn, h->now));
  if (session) check(r, rs_conn_detach(session, h->now));
  h->srv.conn = NULL;
  if (check(r, h_new_server(h)) < 0) {
    h->srv.conn = session;
    return;
  }
  rs_conn *fresh = h->srv.conn;
  check(r, rs_conn_attach(h->cli.conn, h->now));
  pump(r);
  if (h->srv.conn == fresh) {
    /* Resumption failed (the session died of the failure): keep the session for cleanup. */
    rs_conn_free(fresh);
    h->srv.conn = session;
  }
  if (sid > 0) {
    check(r, rs_conn_send_payload(session, (uint32_t)sid, &small, true));
  }
  pump(r);
  check(r, rs_conn_close(h->cli.conn, rs_bytes_str("bye")));
  pump(r);
  advance(r, 0);
  if (r->strict) {
    assert_int_equal(rs_conn_get_state(h->cli.conn), RS_CONN_STATE_CLOSED);
    assert_int_equal(rs_conn_get_state(session), RS_CONN_STATE_CLOSED);
    assert_int_equal(h_count(&h->cli, EV_PAYLOAD, UINT32_MAX), 9);
    assert_int_equal(h_count(&h->srv, EV_REQUEST, UINT32_MAX), 6);
  }
}

/* A lease exchange (separate: lease and resumption are independent features). */
static void lease_exchange(run *r) {
  h_pair *h = &r->h;
  h->cs.lease = true;
  h->ss.lease = true;
  h->srv.lease_on_setup = 5;
  h->srv.lease_ttl = 1000;
  if (check(r, rs_conn_new(&h->cli.conn, &h->cs, &h_callbacks, &h->cli, &h->alloc.mem, h->now)) <
      0) {
    return;
  }
  if (check(r, h_new_server(h)) < 0) return;
  pump(r);
  rs_payload p = h_pl(NULL, "x");
  check(r, rs_conn_request_response(h->cli.conn, &p, NULL));
  pump(r);
  check(r, rs_conn_send_lease(h->cli.conn, 1000, 1, NULL, h->now));
  pump(r);
  h->cli.echo = true;
  check(r, rs_conn_request_response(h->srv.conn, &p, NULL));
  pump(r);
  if (r->strict) assert_int_equal(h_count(&h->srv, EV_PAYLOAD, UINT32_MAX), 1);
}

static long run_once(void (*fn)(run *), long fail_at, bool after, bool *nomem) {
  run r;
  memset(&r, 0, sizeof(r));
  h_init(&r.h);
  tu_alloc_init(&r.h.alloc, fail_at);
  r.h.alloc.fail_after = after;
  r.h.use_alloc = true;
  r.h.lenient = fail_at != 0;
  r.strict = fail_at == 0;
  fn(&r);
  closed_with_nomem(&r, &r.h.cli);
  closed_with_nomem(&r, &r.h.srv);
  long count = r.h.alloc.count;
  h_free(&r.h);
  if (r.h.alloc.live != 0) fail_msg("fail_at %ld: %ld blocks leaked", fail_at, r.h.alloc.live);
  *nomem = r.nomem;
  return count;
}

static void sweep(void (*fn)(run *)) {
  bool nomem;
  long total = run_once(fn, 0, false, &nomem);
  assert_false(nomem);
  /* Enough allocation points for the sweep to mean something (outputs allocate lazily). */
  assert_true(total > 6);
  /* Allocation n fails alone, then allocation n and every later one fail. */
  for (int after = 0; after <= 1; after++) {
    for (long n = 1; n <= total; n++) {
      run_once(fn, n, after, &nomem);
      if (!nomem) fail_msg("allocation %ld of %ld failed without any RS_ERR_NOMEM", n, total);
    }
  }
}

static void test_alloc_sweep_full_exchange(void **state) {
  (void)state;
  sweep(exchange);
}

static void test_alloc_sweep_lease(void **state) {
  (void)state;
  sweep(lease_exchange);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_alloc_sweep_full_exchange),
      cmocka_unit_test(test_alloc_sweep_lease),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
