/*
 * Pull production, in the spirit of nghttp2's data provider: instead of pushing elements and
 * watching credit and output size itself, an application gives a stream a producer and the engine
 * calls on_produce while that stream has credit and the connection has room. Room is the output
 * high watermark (back-pressure from the socket) and, with resumption, the retained-frame window:
 * a producer never outruns what a resumption can retransmit.
 *
 * Ready streams sit on a doubly linked list (O(1) to add, remove and rotate), so thousands of
 * streams waiting for credit cost nothing per rs_conn_produce. A stream joins when it gets a
 * producer, credit (REQUEST_N) or a resume, and leaves when it pauses, runs out of credit, ends
 * its half or ends; the last two are noticed lazily when it comes up.
 */
#include "core/conn_internal.h"

static bool ready(const rs_stream *s) {
  return (s->flags & (RS_ST_PRODUCE | RS_ST_PAUSED | RS_ST_OUT_DONE | RS_ST_ENDED)) ==
             RS_ST_PRODUCE &&
         s->out_credit > 0;
}

void rs__ready_remove(rs_conn *c, rs_stream *s) {
  if (!(s->flags & RS_ST_READY)) return;
  if (s->rprev)
    s->rprev->rnext = s->rnext;
  else
    c->ready_head = s->rnext;
  if (s->rnext)
    s->rnext->rprev = s->rprev;
  else
    c->ready_tail = s->rprev;
  s->rnext = s->rprev = NULL;
  s->flags &= (uint8_t)~RS_ST_READY;
}

static void ready_append(rs_conn *c, rs_stream *s) {
  s->rnext = NULL;
  s->rprev = c->ready_tail;
  if (c->ready_tail)
    c->ready_tail->rnext = s;
  else
    c->ready_head = s;
  c->ready_tail = s;
  s->flags |= RS_ST_READY;
}

void rs__ready_update(rs_conn *c, rs_stream *s) {
  if (!ready(s)) {
    rs__ready_remove(c, s);
    return;
  }
  if (s->flags & RS_ST_READY) return;
  ready_append(c, s);
  rs__wake(c);
}

/* Resumption: frames in the retained window that the peer has not acknowledged. Production stops
 * at half the window, so frames sent directly (and a fragmented element) still fit; from a
 * quarter on, the peer is asked for its position. */
static bool window_room(rs_conn *c) {
  if (!c->resume_on) return true;
  size_t limit = c->retain.limit;
  if (c->retain.len >= limit / 4 && !c->probe_outstanding &&
      c->state == RS_CONN_STATE_ESTABLISHED) {
    rs_frame f;
    rs_frame_init(&f, RS_FRAME_KEEPALIVE, 0);
    f.flags = RS_FLAG_RESPOND;
    f.u.keepalive.last_received_position = c->recv_pos;
    if (rs__send_frame(c, &f) == 0) c->probe_outstanding = true;
  }
  return c->retain.len < limit / 2;
}

static bool room(const rs_conn *c) {
  if (c->fatal) return false;
  if (c->state != RS_CONN_STATE_ESTABLISHED && c->state != RS_CONN_STATE_DRAINING) return false;
  if (c->s.output_high_watermark && c->out.pending >= c->s.output_high_watermark) return false;
  return true;
}

bool rs_conn_want_produce(const rs_conn *c) {
  if (!c || !c->ready_head || c->in_dispatch || !room(c)) return false;
  /* A full window still wants one call: it sends the position probe. */
  return !c->resume_on || c->retain.len < c->retain.limit / 2 || !c->probe_outstanding;
}

int rs_conn_set_producer(rs_conn *c, uint32_t id) {
  int rc;
  rs_stream *s = rs__outbound_stream(c, id, &rc);
  if (!s) return rc;
  s->flags |= RS_ST_PRODUCE;
  s->flags &= (uint8_t)~RS_ST_PAUSED;
  rs__ready_update(c, s);
  return 0;
}

int rs_conn_resume_producer(rs_conn *c, uint32_t id) {
  int rc;
  rs_stream *s = rs__outbound_stream(c, id, &rc);
  if (!s) return rc;
  if (!(s->flags & RS_ST_PRODUCE)) return RS_ERR_INVALID_STATE;
  s->flags &= (uint8_t)~RS_ST_PAUSED;
  rs__ready_update(c, s);
  return 0;
}

/* Calls ready producers in turn, at most `max_calls` times, while there is room. */
static int produce(rs_conn *c, uint64_t max_calls, uint64_t now_ms) {
  if (c->in_callback || c->in_dispatch) return RS_ERR_INVALID_STATE;
  if (c->fatal) return c->fatal;
  if (!c->ready_head || !c->cb.on_produce) return 0;
  c->in_dispatch = true;
  if (now_ms > c->now) c->now = now_ms;
  uint64_t calls = 0;
  while (c->ready_head && calls < max_calls && room(c) && window_room(c)) {
    rs_stream *s = c->ready_head;
    rs__ready_remove(c, s);
    if (!ready(s)) continue; /* credit used up or half ended since it was queued */
    uint64_t before = c->out.total_in;
    uint32_t id = s->id;
    calls++;
    c->in_callback++;
    int r = c->cb.on_produce(c, id, s->user, s->out_credit, c->user);
    c->in_callback--;
    /* The stream may have ended (complete, error) and its struct been recycled: look it up. */
    if (rs__smap_get(&c->streams, id) != s || (s->flags & RS_ST_ENDED)) continue;
    if (r == RS_PRODUCE_PAUSE || c->out.total_in == before) {
      s->flags |= RS_ST_PAUSED;
      continue;
    }
    /* Round robin: to the back, unless the callback queued it already (a producer that resumed
     * itself, as rs_feed's pull sources do): twice on the list would loop the list. */
    if (ready(s) && !(s->flags & RS_ST_READY)) ready_append(c, s);
  }
  rs__deliver_events(c);
  c->in_dispatch = false;
  return c->fatal;
}

int rs_conn_produce(rs_conn *c, uint64_t now_ms) {
  if (!c) return RS_ERR_INVALID_ARGUMENT;
  return produce(c, UINT64_MAX, now_ms);
}

int rs_conn_produce_some(rs_conn *c, uint32_t max_calls, uint64_t now_ms) {
  if (!c || max_calls == 0) return RS_ERR_INVALID_ARGUMENT;
  return produce(c, max_calls, now_ms);
}
