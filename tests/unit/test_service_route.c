/*
 * Service layer: rs_route_of (composite and plain routing metadata, truncation at every byte,
 * random slices in exact-size buffers so any over-read trips ASan) and the router (dispatch by
 * route and model, the spec's error codes for unroutable requests, many routes), and the
 * formatted answers.
 */
#include "test_service.h"

static const rs_bytes composite = {(const uint8_t *)RS_MIME_COMPOSITE_METADATA,
                                   sizeof RS_MIME_COMPOSITE_METADATA - 1};
static const rs_bytes routing = {(const uint8_t *)RS_MIME_ROUTING, sizeof RS_MIME_ROUTING - 1};

/* rs_route_of on a heap copy of exactly `len` bytes (ASan sees any read past it). */
static int route_of_copy(rs_bytes mime, const uint8_t *md, size_t len, char *out) {
  uint8_t *copy = malloc(len ? len : 1);
  assert_non_null(copy);
  if (len) memcpy(copy, md, len);
  rs_payload p = {true, {copy, len}, {NULL, 0}};
  rs_bytes route = {NULL, 0};
  int rc = rs_route_of(mime, &p, &route);
  if (rc == 1) {
    assert_true(route.len >= 1 && route.len <= 255);
    assert_true(route.ptr >= copy && route.ptr + route.len <= copy + len);
    if (out) {
      memcpy(out, route.ptr, route.len);
      out[route.len] = 0;
    }
  }
  free(copy);
  return rc;
}

/* [auth entry][routing entry: tags] as composite metadata; returns its length. */
static size_t two_entries(uint8_t *buf, const rs_bytes *tags, size_t ntags, size_t *first_end) {
  uint8_t content[600];
  rs_ssize a =
      rs_composite_encode_id(buf, 1000, RS_MIME_ID_AUTHENTICATION, (const uint8_t *)"\x81token", 6);
  assert_true(a > 0);
  *first_end = (size_t)a;
  rs_ssize n = rs_routing_encode(content, sizeof content, tags, ntags);
  assert_true(n >= 0);
  rs_ssize b =
      rs_composite_encode_id(buf + a, 1000 - (size_t)a, RS_MIME_ID_ROUTING, content, (size_t)n);
  assert_true(b > 0);
  return (size_t)(a + b);
}

static void test_route_of_well_formed(void **state) {
  (void)state;
  uint8_t md[1000];
  char got[256];
  rs_bytes tags[] = {rs_bytes_str("rooms.post"), rs_bytes_str("second")};
  size_t first_end, len = two_entries(md, tags, 2, &first_end);
  assert_int_equal(route_of_copy(composite, md, len, got), 1);
  assert_string_equal(got, "rooms.post"); /* the first tag of several */

  /* The routing MIME type spelled out instead of its well-known id. */
  uint8_t tagbuf[32], spelled[64];
  rs_ssize n = rs_routing_encode(tagbuf, sizeof tagbuf, tags, 1);
  rs_ssize m = rs_composite_encode(spelled, sizeof spelled, RS_MIME_ROUTING,
                                   strlen(RS_MIME_ROUTING), tagbuf, (size_t)n);
  assert_true(m > 0);
  assert_int_equal(route_of_copy(composite, spelled, (size_t)m, got), 1);
  assert_string_equal(got, "rooms.post");

  /* Plain routing metadata on a connection whose metadata type is routing. */
  assert_int_equal(route_of_copy(routing, tagbuf, (size_t)n, got), 1);
  assert_string_equal(got, "rooms.post");
  /* The same bytes read as composite metadata are not routing metadata. */
  assert_int_not_equal(route_of_copy(composite, tagbuf, (size_t)n, NULL), 1);
}

static void test_route_of_no_route(void **state) {
  (void)state;
  uint8_t md[1000];
  size_t first_end;
  rs_bytes tags[] = {rs_bytes_str("r")};
  size_t len = two_entries(md, tags, 1, &first_end);
  rs_bytes route;
  /* No metadata at all, or another MIME type. */
  rs_payload none = h_pl(NULL, "x");
  assert_int_equal(rs_route_of(composite, &none, &route), 0);
  assert_int_equal(route_of_copy(rs_bytes_str("application/octet-stream"), md, len, NULL), 0);
  assert_int_equal(route_of_copy((rs_bytes){NULL, 0}, md, len, NULL), 0);
  /* Composite metadata without a routing entry. */
  assert_int_equal(route_of_copy(composite, md, first_end, NULL), 0);
  /* A routing entry without tags, then one with: the first tag that exists. */
  uint8_t two[64], tagbuf[8];
  rs_ssize a = rs_composite_encode_id(two, sizeof two, RS_MIME_ID_ROUTING, NULL, 0);
  rs_ssize n = rs_routing_encode(tagbuf, sizeof tagbuf, tags, 1);
  rs_ssize b = rs_composite_encode_id(two + a, sizeof two - (size_t)a, RS_MIME_ID_ROUTING, tagbuf,
                                      (size_t)n);
  char got[8];
  assert_int_equal(route_of_copy(composite, two, (size_t)a, NULL), 0);
  assert_int_equal(route_of_copy(composite, two, (size_t)(a + b), got), 1);
  assert_string_equal(got, "r");
  /* Empty plain routing metadata. */
  assert_int_equal(route_of_copy(routing, tagbuf, 0, NULL), 0);
  assert_int_equal(rs_route_of(composite, NULL, &route), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_route_of(composite, &none, NULL), RS_ERR_INVALID_ARGUMENT);
}

/* Every prefix of [auth][routing "rooms.post"]: no route at the entry boundaries, malformed in
 * between, the route once the routing entry is whole. */
static void test_route_of_truncated(void **state) {
  (void)state;
  uint8_t md[1000];
  size_t first_end;
  rs_bytes tags[] = {rs_bytes_str("rooms.post")};
  size_t len = two_entries(md, tags, 1, &first_end);
  for (size_t cut = 0; cut <= len; cut++) {
    int rc = route_of_copy(composite, md, cut, NULL);
    if (cut == len)
      assert_int_equal(rc, 1);
    else if (cut == 0 || cut == first_end)
      assert_int_equal(rc, 0);
    else
      assert_int_equal(rc, RS_ERR_MALFORMED);
  }
  /* Plain routing: a tag whose length runs past the end, and a zero-length tag. */
  const uint8_t bad[] = {5, 'a', 'b'}, zero[] = {0, 'a'};
  assert_int_equal(route_of_copy(routing, bad, sizeof bad, NULL), RS_ERR_MALFORMED);
  assert_int_equal(route_of_copy(routing, zero, sizeof zero, NULL), RS_ERR_MALFORMED);
  /* A malformed routing entry inside well-formed composite metadata. */
  uint8_t c[16];
  rs_ssize n = rs_composite_encode_id(c, sizeof c, RS_MIME_ID_ROUTING, bad, sizeof bad);
  assert_int_equal(route_of_copy(composite, c, (size_t)n, NULL), RS_ERR_MALFORMED);
}

/* Random bytes and random slices of valid metadata, each in an exact-size buffer. */
static void test_route_of_random_slices(void **state) {
  (void)state;
  uint64_t rng = 42;
  uint8_t md[1000], buf[600];
  size_t first_end;
  rs_bytes tags[] = {rs_bytes_str("a.b"), rs_bytes_str("c")};
  size_t len = two_entries(md, tags, 2, &first_end);
  for (int i = 0; i < 20000; i++) {
    size_t n = (size_t)(tu_rand(&rng) % sizeof buf);
    const uint8_t *src = buf;
    if (i % 2) {
      size_t off = (size_t)(tu_rand(&rng) % len);
      n = n % (len - off + 1);
      src = md + off;
    } else {
      for (size_t k = 0; k < n; k++) buf[k] = (uint8_t)tu_rand(&rng);
      if (n) buf[0] = (uint8_t)(buf[0] | 0x80); /* well-known ids, to reach deeper */
    }
    int rc = route_of_copy(i % 3 ? composite : routing, src, n, NULL);
    assert_true(rc == 1 || rc == 0 || rc == RS_ERR_MALFORMED);
  }
}

/* ---- router ---- */

typedef struct calls {
  int n;
  uint8_t type;
  void *user;
} calls;

static calls seen;

static int echo_route(rs_conn *c, const rs_request *r, void *user) {
  seen.n++;
  seen.type = r->type;
  seen.user = user;
  if (r->type == RS_FRAME_REQUEST_RESPONSE)
    assert_int_equal(rs_service_replyf(c, r->stream_id, "%s:%.*s", (const char *)user,
                                       (int)r->payload.data.len, (const char *)r->payload.data.ptr),
                     0);
  if (r->type == RS_FRAME_REQUEST_STREAM)
    assert_int_equal(rs_service_errorf(c, r->stream_id, RS_ERROR_APPLICATION_ERROR, "n=%d", 7), 0);
  return 0;
}

static int refuse_route(rs_conn *c, const rs_request *r, void *user) {
  (void)c, (void)r, (void)user;
  return -1;
}

static rs_router *router_with_routes(void) {
  rs_router *r = rs_router_new(NULL);
  assert_non_null(r);
  assert_int_equal(rs_router_add(r, "a", RS_MODEL_REQUEST_RESPONSE, echo_route, "A"), 0);
  assert_int_equal(
      rs_router_add(r, "b", RS_MODEL_REQUEST_RESPONSE | RS_MODEL_FIRE_AND_FORGET, echo_route, "B"),
      0);
  assert_int_equal(rs_router_add(r, "a", RS_MODEL_REQUEST_STREAM, echo_route, "A-stream"), 0);
  assert_int_equal(rs_router_add(r, "no", RS_MODEL_REQUEST_RESPONSE, refuse_route, NULL), 0);
  assert_int_equal(rs_router_count(r), 5);
  return r;
}

static void test_router_dispatch(void **state) {
  (void)state;
  rs_router *r = router_with_routes();
  h_pair h;
  svc_start(&h, r);
  uint8_t md[300];
  memset(&seen, 0, sizeof seen);
  rs_payload p = svc_req(md, "a", "hi");
  rs_ssize sid = rs_conn_request_response(h.cli.conn, &p, NULL);
  h_pump_ok(&h);
  assert_int_equal(seen.n, 1);
  assert_string_equal((const char *)h_find(&h.cli, EV_PAYLOAD, (uint32_t)sid, 0)->data, "A:hi");
  /* Same route, another model: its own handler. */
  sid = rs_conn_request_stream(h.cli.conn, &p, 4, NULL);
  h_pump_ok(&h);
  assert_int_equal(seen.type, RS_FRAME_REQUEST_STREAM);
  svc_assert_error(&h, (uint32_t)sid, RS_ERROR_APPLICATION_ERROR, "n=7");
  /* A route for two models. */
  p = svc_req(md, "b", "x");
  assert_true(rs_conn_request_fnf(h.cli.conn, &p) > 0);
  h_pump_ok(&h);
  assert_int_equal(seen.n, 3);
  assert_int_equal(seen.type, RS_FRAME_REQUEST_FNF);
  assert_string_equal((const char *)seen.user, "B");
  /* A handler's non-zero return: the engine's REJECTED. */
  p = svc_req(md, "no", "x");
  sid = rs_conn_request_response(h.cli.conn, &p, NULL);
  h_pump_ok(&h);
  assert_int_equal(h_find(&h.cli, EV_ERROR, (uint32_t)sid, 0)->code, RS_ERROR_REJECTED);
  svc_free(&h, r);
}

static void test_router_unroutable(void **state) {
  (void)state;
  rs_router *r = router_with_routes();
  h_pair h;
  svc_start(&h, r);
  uint8_t md[300];
  memset(&seen, 0, sizeof seen);
  rs_payload p = svc_req(md, "x.y", "");
  rs_ssize sid = rs_conn_request_stream(h.cli.conn, &p, 1, NULL);
  h_pump_ok(&h);
  svc_assert_error(&h, (uint32_t)sid, RS_ERROR_REJECTED, "no route 'x.y' for request-stream");
  p = svc_req(md, "b", "");
  sid = rs_conn_request_channel(h.cli.conn, &p, 1, true, NULL);
  h_pump_ok(&h);
  svc_assert_error(&h, (uint32_t)sid, RS_ERROR_REJECTED,
                   "route 'b' serves request-response and fire-and-forget, not request-channel");
  /* No metadata; composite metadata without routing; malformed metadata. */
  p = h_pl(NULL, "x");
  sid = rs_conn_request_response(h.cli.conn, &p, NULL);
  h_pump_ok(&h);
  svc_assert_error(&h, (uint32_t)sid, RS_ERROR_INVALID,
                   "no route: the request has no routing metadata (message/x.rsocket.routing.v0)");
  uint8_t bad[8];
  rs_ssize n =
      rs_composite_encode_id(bad, sizeof bad, RS_MIME_ID_ROUTING, (const uint8_t *)"\x09x", 2);
  p = h_pl(NULL, "x");
  p.has_metadata = true;
  p.metadata = (rs_bytes){bad, (size_t)n};
  sid = rs_conn_request_response(h.cli.conn, &p, NULL);
  h_pump_ok(&h);
  svc_assert_error(&h, (uint32_t)sid, RS_ERROR_INVALID, "malformed routing metadata");
  /* A route with bytes an error message should not carry. */
  p = svc_req(md, "q'\x01", "");
  sid = rs_conn_request_response(h.cli.conn, &p, NULL);
  h_pump_ok(&h);
  svc_assert_error(&h, (uint32_t)sid, RS_ERROR_REJECTED,
                   "no route 'q?"
                   "?' for request-response");
  /* Fire-and-forget has no stream to refuse: dropped quietly. */
  size_t errors = h_count(&h.cli, EV_ERROR, UINT32_MAX);
  p = svc_req(md, "nowhere", "");
  assert_true(rs_conn_request_fnf(h.cli.conn, &p) > 0);
  h_pump_ok(&h);
  assert_int_equal(h_count(&h.cli, EV_ERROR, UINT32_MAX), errors);
  assert_int_equal(seen.n, 0);
  assert_int_equal(rs_conn_get_state(h.srv.conn), RS_CONN_STATE_ESTABLISHED);
  svc_free(&h, r);
}

/* The server's settings show the client's metadata type: plain routing metadata routes, and a
 * connection without a routing type is told what to use. */
static void test_router_metadata_mime(void **state) {
  (void)state;
  rs_router *r = router_with_routes();
  h_pair h;
  svc_start_mime(&h, r, RS_MIME_ROUTING);
  tu_assert_bytes_str(rs_conn_get_settings(h.srv.conn)->metadata_mime, RS_MIME_ROUTING);
  rs_payload p = h_pl("\x01"
                      "a",
                      "plain");
  rs_ssize sid = rs_conn_request_response(h.cli.conn, &p, NULL);
  h_pump_ok(&h);
  assert_string_equal((const char *)h_find(&h.cli, EV_PAYLOAD, (uint32_t)sid, 0)->data, "A:plain");
  svc_free(&h, NULL);

  svc_start_mime(&h, r, "text/plain");
  sid = rs_conn_request_response(h.cli.conn, &p, NULL);
  h_pump_ok(&h);
  svc_assert_error(&h, (uint32_t)sid, RS_ERROR_INVALID,
                   "no route: the connection's metadata type is 'text/plain'; routes travel in "
                   "message/x.rsocket.composite-metadata.v0 (a routing entry) or "
                   "message/x.rsocket.routing.v0");
  svc_free(&h, r);
}

static void test_router_many_routes(void **state) {
  (void)state;
  rs_router *r = rs_router_new(NULL);
  char name[32];
  for (int i = 0; i < 500; i++) {
    snprintf(name, sizeof name, "svc.route%d", i);
    assert_int_equal(rs_router_add(r, name, RS_MODEL_REQUEST_RESPONSE, echo_route, "M"), 0);
  }
  assert_int_equal(rs_router_count(r), 500);
  h_pair h;
  svc_start(&h, r);
  uint8_t md[300];
  for (int i = 0; i < 500; i += 7) {
    snprintf(name, sizeof name, "svc.route%d", i);
    rs_payload p = svc_req(md, name, "");
    rs_ssize sid = rs_conn_request_response(h.cli.conn, &p, NULL);
    h_pump_ok(&h);
    assert_string_equal((const char *)h_find(&h.cli, EV_PAYLOAD, (uint32_t)sid, 0)->data, "M:");
  }
  svc_free(&h, r);
}

static void test_router_add_errors(void **state) {
  (void)state;
  rs_router *r = rs_router_new(NULL);
  char long_name[300];
  memset(long_name, 'x', sizeof long_name);
  long_name[256] = 0;
  assert_int_equal(rs_router_add(NULL, "a", RS_MODEL_REQUEST_RESPONSE, echo_route, NULL),
                   RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_router_add(r, "", RS_MODEL_REQUEST_RESPONSE, echo_route, NULL),
                   RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_router_add(r, long_name, RS_MODEL_REQUEST_RESPONSE, echo_route, NULL),
                   RS_ERR_INVALID_ARGUMENT);
  long_name[255] = 0;
  assert_int_equal(rs_router_add(r, long_name, RS_MODEL_REQUEST_RESPONSE, echo_route, NULL), 0);
  assert_int_equal(rs_router_add(r, "a", 0, echo_route, NULL), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_router_add(r, "a", 0x10, echo_route, NULL), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_router_add(r, "a", RS_MODEL_REQUEST_RESPONSE, NULL, NULL),
                   RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_router_add(r, "a", RS_MODEL_REQUEST_STREAM, echo_route, NULL), 0);
  /* Taken for one of the models: nothing registered. */
  assert_int_equal(
      rs_router_add(r, "a", RS_MODEL_REQUEST_RESPONSE | RS_MODEL_REQUEST_STREAM, echo_route, NULL),
      RS_ERR_INVALID_STATE);
  assert_int_equal(rs_router_count(r), 2);
  assert_int_equal(rs_router_dispatch(NULL, NULL, NULL), RS_ERR_INVALID_ARGUMENT);
  assert_string_equal(rs_model_name(RS_MODEL_REQUEST_CHANNEL), "request-channel");
  assert_string_equal(rs_model_name(3), "unknown");
  assert_int_equal(rs_model_of(RS_FRAME_REQUEST_STREAM), RS_MODEL_REQUEST_STREAM);
  assert_int_equal(rs_model_of(RS_FRAME_PAYLOAD), 0);
  rs_router_free(r);
  rs_router_free(NULL);
}

/* Allocation failures while adding leave a usable router and no leak. */
static void test_router_alloc_failures(void **state) {
  (void)state;
  for (long fail = 1; fail < 40; fail++) {
    tu_alloc a;
    tu_alloc_init(&a, fail);
    rs_router *r = rs_router_new(&a.mem);
    if (!r) continue;
    char name[16];
    for (int i = 0; i < 20; i++) {
      snprintf(name, sizeof name, "r%d", i);
      int rc = rs_router_add(r, name, RS_MODEL_REQUEST_RESPONSE, echo_route, NULL);
      assert_true(rc == 0 || rc == RS_ERR_NOMEM);
    }
    rs_router_free(r);
    assert_int_equal(a.live, 0);
  }
}

/* Long formatted answers go through the heap. */
static void test_replyf_long(void **state) {
  (void)state;
  rs_router *r = rs_router_new(NULL);
  assert_int_equal(rs_router_add(r, "a", RS_MODEL_REQUEST_RESPONSE, echo_route, "L"), 0);
  h_pair h;
  svc_start(&h, r);
  char big[2000];
  memset(big, 'z', sizeof big - 1);
  big[sizeof big - 1] = 0;
  uint8_t md[300];
  rs_payload p = svc_req(md, "a", big);
  rs_ssize sid = rs_conn_request_response(h.cli.conn, &p, NULL);
  h_pump_ok(&h);
  const h_event *e = h_find(&h.cli, EV_PAYLOAD, (uint32_t)sid, 0);
  assert_int_equal(e->data_len, 2 + sizeof big - 1);
  assert_memory_equal(e->data, "L:zzz", 5);
  assert_int_equal(rs_service_replyf(NULL, 1, "x"), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_service_errorf(h.srv.conn, 99, RS_ERROR_APPLICATION_ERROR, "x"),
                   RS_ERR_STREAM_CLOSED);
  svc_free(&h, r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_route_of_well_formed), cmocka_unit_test(test_route_of_no_route),
      cmocka_unit_test(test_route_of_truncated),   cmocka_unit_test(test_route_of_random_slices),
      cmocka_unit_test(test_router_dispatch),      cmocka_unit_test(test_router_unroutable),
      cmocka_unit_test(test_router_metadata_mime), cmocka_unit_test(test_router_many_routes),
      cmocka_unit_test(test_router_add_errors),    cmocka_unit_test(test_router_alloc_failures),
      cmocka_unit_test(test_replyf_long),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
