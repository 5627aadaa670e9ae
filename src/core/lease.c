/*
 * Lease: a responder grants the peer's requester N requests for TTL milliseconds (LEASE frame);
 * the newest lease replaces the previous one, and an expired lease allows nothing. Our requester
 * honours the peer's lease (a request without one fails locally with RS_ERR_NO_LEASE, nothing is
 * sent); our responder enforces the one it granted (ERROR[REJECTED]; fire-and-forget is dropped
 * silently, as rsocket-java does). Lease state does not survive resumption.
 */
#include <string.h>

#include "core/conn_internal.h"

static bool lease_allows(const rs_lease_state *l, uint64_t now) {
  return l->valid && now < l->expiry && l->remaining > 0;
}

int rs__lease_take_outbound(rs_conn *c) {
  if (!lease_allows(&c->peer_lease, c->now)) return RS_ERR_NO_LEASE;
  c->peer_lease.remaining--;
  return 0;
}

bool rs__lease_take_inbound(rs_conn *c) {
  if (!lease_allows(&c->our_lease, c->now)) return false;
  c->our_lease.remaining--;
  return true;
}

void rs__lease_reset(rs_conn *c) {
  memset(&c->peer_lease, 0, sizeof(c->peer_lease));
  memset(&c->our_lease, 0, sizeof(c->our_lease));
}

void rs__lease_on_frame(rs_conn *c, const rs_frame *f) {
  if (!c->lease_on) return; /* a LEASE we did not ask for makes no sense: ignored */
  c->peer_lease.valid = true;
  c->peer_lease.expiry = c->now + f->u.lease.ttl_ms;
  c->peer_lease.granted = f->u.lease.number_of_requests;
  c->peer_lease.remaining = f->u.lease.number_of_requests;
  if (c->cb.on_lease) {
    c->in_callback++;
    c->cb.on_lease(c, f->u.lease.ttl_ms, f->u.lease.number_of_requests,
                   f->has_metadata ? &f->metadata : NULL, c->user);
    c->in_callback--;
  }
}

int rs_conn_send_lease(rs_conn *c, uint32_t ttl_ms, uint32_t requests, const rs_bytes *metadata,
                       uint64_t now_ms) {
  if (!c || ttl_ms > RS_REQUEST_N_MAX || requests > RS_REQUEST_N_MAX) {
    return RS_ERR_INVALID_ARGUMENT;
  }
  if (metadata && !metadata->ptr && metadata->len) return RS_ERR_INVALID_ARGUMENT;
  if (c->fatal) return c->fatal;
  if (c->state == RS_CONN_STATE_CLOSED || c->state == RS_CONN_STATE_HANDED_OFF) {
    return RS_ERR_CLOSED;
  }
  if (!c->lease_on ||
      (c->state != RS_CONN_STATE_ESTABLISHED && c->state != RS_CONN_STATE_DRAINING)) {
    return RS_ERR_INVALID_STATE;
  }
  if (metadata && metadata->len > RS_FRAME_MAX_SIZE - 14) return RS_ERR_FRAME_TOO_LARGE;
  rs_frame f;
  rs_frame_init(&f, RS_FRAME_LEASE, 0);
  f.u.lease.ttl_ms = ttl_ms;
  f.u.lease.number_of_requests = requests;
  if (metadata) {
    f.has_metadata = true;
    f.metadata = *metadata;
  }
  int rc = rs__send_frame(c, &f);
  if (rc) return rc;
  c->our_lease.valid = true;
  c->our_lease.expiry = (now_ms > c->now ? now_ms : c->now) + ttl_ms;
  c->our_lease.granted = requests;
  c->our_lease.remaining = requests;
  return 0;
}

double rs_conn_availability(const rs_conn *c, uint64_t now_ms) {
  if (!c || c->fatal || c->state != RS_CONN_STATE_ESTABLISHED) return 0.0;
  /* A client is established as soon as SETUP is queued, but it is available only once a
   * transport has taken it (a pool must not pick a backend it has never reached). */
  if (c->s.role == RS_CONN_CLIENT && c->out.total_out < c->setup_end) return 0.0;
  if (!c->lease_on) return 1.0;
  const rs_lease_state *l = &c->peer_lease;
  if (!l->valid || l->granted == 0 || now_ms >= l->expiry) return 0.0;
  return (double)l->remaining / (double)l->granted;
}
