/*
 * Shared by the service layer tests: a client (the harness's recording peer) and a server whose
 * callbacks come from the router (rs_router_callbacks), wired back to back in memory; and
 * routing metadata builders.
 */
#ifndef RS_TEST_SERVICE_H
#define RS_TEST_SERVICE_H

#include "test_conn_harness.h"
#include "rsocket/extensions.h"
#include "rsocket/service.h"

/* Composite metadata with one routing entry holding `route`. */
static inline size_t svc_route_md(uint8_t *buf, size_t cap, const char *route) {
  uint8_t tags[300];
  rs_bytes t = rs_bytes_str(route);
  rs_ssize n = rs_routing_encode(tags, sizeof tags, &t, 1);
  assert_true(n > 0);
  rs_ssize m = rs_composite_encode_id(buf, cap, RS_MIME_ID_ROUTING, tags, (size_t)n);
  assert_true(m > 0);
  return (size_t)m;
}

/* A payload routed to `route` with `data` (the metadata lives in `md`, >= 300 bytes). */
static inline rs_payload svc_req(uint8_t *md, const char *route, const char *data) {
  rs_payload p = h_pl(NULL, data);
  p.has_metadata = true;
  p.metadata.ptr = md;
  p.metadata.len = svc_route_md(md, 300, route);
  return p;
}

/* Starts a pair: the client speaks composite metadata (or `mime`), the server routes with `r`. */
static inline void svc_start_mime(h_pair *h, rs_router *r, const char *mime) {
  h_init(h);
  h->cs.metadata_mime = rs_bytes_str(mime);
  rs_conn_callbacks cb;
  memset(&cb, 0, sizeof cb);
  rs_router_callbacks(&cb);
  assert_int_equal(rs_conn_new(&h->cli.conn, &h->cs, &h_callbacks, &h->cli, NULL, h->now), 0);
  assert_int_equal(rs_conn_new(&h->srv.conn, &h->ss, &cb, r, NULL, h->now), 0);
  h_pump_ok(h);
}

static inline void svc_start(h_pair *h, rs_router *r) {
  svc_start_mime(h, r, RS_MIME_COMPOSITE_METADATA);
}

/* The error the client got on `sid`: asserts its code and message. */
static inline void svc_assert_error(h_pair *h, uint32_t sid, uint32_t code, const char *msg) {
  const h_event *e = h_find(&h->cli, EV_ERROR, sid, 0);
  assert_int_equal(e->code, code);
  assert_string_equal((const char *)e->data, msg);
}

/* Ends the server connection the way a runtime does (every stream's callbacks run, so feeds are
 * released), then frees both sides and the router (may be NULL). */
static inline void svc_free(h_pair *h, rs_router *r) {
  if (rs_conn_get_state(h->srv.conn) != RS_CONN_STATE_CLOSED)
    rs_conn_abort(h->srv.conn, rs_bytes_str("test over"));
  assert_int_equal(rs_conn_handle_expiry(h->srv.conn, h->now), 0);
  h_free(h);
  rs_router_free(r);
}

#endif
