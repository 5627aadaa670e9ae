/*
 * KEEPALIVE: the client sends KEEPALIVE(respond) every keepalive interval (a server too when
 * server_keepalive is set, as rsocket-java does); both sides answer KEEPALIVE(respond) with
 * KEEPALIVE echoing its data; both sides close the connection with CONNECTION_ERROR when no frame
 * at all arrived for max lifetime (any frame proves the peer alive, so a busy connection whose
 * keepalive answers sit behind data is not killed). With resumption, the position carried by a
 * KEEPALIVE lets the retained frames the peer already has be dropped.
 *
 * While the application does not read the peer (rs_conn_set_input_paused: its frames wait in the
 * transport, a gateway holding a client back while a backend is full), the peer's silence proves
 * nothing: the lifetime check stops, and restarts from the moment reading resumes. The peer, whose
 * KEEPALIVEs are neither read nor answered meanwhile, hears from us anyway: a server sends
 * KEEPALIVE (without respond) every keepalive interval while paused.
 */
#include <stdio.h>

#include "core/conn_internal.h"

static uint64_t sat_add(uint64_t a, uint64_t b) {
  return a + b < a ? RS_NO_DEADLINE : a + b;
}

static bool sends_keepalive(const rs_conn *c) {
  return c->s.role == RS_CONN_CLIENT || c->s.server_keepalive;
}

void rs__keepalive_input_paused(rs_conn *c, bool paused) {
  if (c->input_paused == paused) return;
  c->input_paused = paused;
  if (paused) {
    if (!sends_keepalive(c)) c->next_keepalive = sat_add(c->now, c->keepalive_ms);
  } else {
    c->last_rx = c->now; /* a whole lifetime from now to hear from the peer */
    if (!sends_keepalive(c)) c->next_keepalive = RS_NO_DEADLINE;
  }
}

void rs__keepalive_start(rs_conn *c) {
  c->last_rx = c->now;
  c->next_keepalive = sends_keepalive(c) ? sat_add(c->now, c->keepalive_ms) : RS_NO_DEADLINE;
}

void rs__keepalive_on_frame(rs_conn *c, const rs_frame *f) {
  if (c->resume_on) rs__retain_trim(c, f->u.keepalive.last_received_position);
  c->probe_outstanding = false; /* any KEEPALIVE carries the peer's position */
  /* Keepalives are the connection's clock when it is quiet: give spare output memory back. */
  rs__outq_trim(&c->out);
  if (!(f->flags & RS_FLAG_RESPOND)) return;
  rs_frame r;
  rs_frame_init(&r, RS_FRAME_KEEPALIVE, 0);
  r.u.keepalive.last_received_position = c->resume_on ? c->recv_pos : 0;
  r.data = f->data;
  rs__send_control(c, &r);
}

uint64_t rs__keepalive_deadline(const rs_conn *c) {
  uint64_t d = c->input_paused ? RS_NO_DEADLINE : sat_add(c->last_rx, c->lifetime_ms);
  if (c->state != RS_CONN_STATE_RESUMING && c->next_keepalive < d) d = c->next_keepalive;
  return d;
}

void rs__keepalive_expiry(rs_conn *c) {
  if (!c->input_paused && c->now >= sat_add(c->last_rx, c->lifetime_ms)) {
    char msg[64];
    snprintf(msg, sizeof(msg), "no keepalive for %u ms", (unsigned)c->lifetime_ms);
    rs__conn_error(c, RS_ERR_TIMEOUT, RS_ERROR_CONNECTION_ERROR, msg);
    return;
  }
  if (c->state == RS_CONN_STATE_RESUMING || c->now < c->next_keepalive) return;
  rs__outq_trim(&c->out);
  rs_frame f;
  rs_frame_init(&f, RS_FRAME_KEEPALIVE, 0);
  f.flags = sends_keepalive(c) ? RS_FLAG_RESPOND : 0; /* a paused server's: no answer wanted */
  f.u.keepalive.last_received_position = c->resume_on ? c->recv_pos : 0;
  if (rs__send_frame(c, &f)) return;
  c->next_keepalive = sat_add(c->next_keepalive, c->keepalive_ms);
  if (c->next_keepalive <= c->now) c->next_keepalive = sat_add(c->now, c->keepalive_ms);
}
