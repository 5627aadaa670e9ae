/*
 * Internals of the protocol engine shared by its files:
 *   conn.c       life cycle, input dispatch, connection-level frames, close, timers, events
 *   stream.c     the interaction models: requester API, responder callbacks, credit, cancel
 *   fragment.c   outbound fragmentation at the MTU, inbound reassembly
 *   lease.c      granting and honouring leases, availability()
 *   keepalive.c  KEEPALIVE send/answer and the lifetime check
 *   resume.c     positions, retained frames, RESUME/RESUME_OK, the session store
 */
#ifndef RS_CORE_CONN_INTERNAL_H
#define RS_CORE_CONN_INTERNAL_H

#include "rsocket/conn.h"
#include "rsocket/frame.h"

#include "core/outq.h"
#include "core/stream_map.h"

#define RS_NO_DEADLINE   UINT64_MAX
#define RS_CLOSE_MSG_MAX 512u

typedef struct rs_lease_state {
  bool valid;       /* a LEASE was sent/received on this transport */
  uint64_t expiry;  /* time when it stops allowing requests */
  uint32_t granted; /* number_of_requests of the lease */
  uint32_t remaining;
} rs_lease_state;

/* Sent resumable frames kept for retransmission: records of [u32 length][frame bytes]. */
typedef struct rs_retain {
  uint8_t *buf;
  size_t cap, off, len; /* records live in buf[off, off + len) */
  size_t limit;         /* resume_buffer_size */
  uint64_t first_pos;   /* position of the first retained frame */
} rs_retain;

struct rs_conn {
  rs_mem mem;
  rs_conn_settings s; /* rs_bytes point into `owned` */
  rs_conn_callbacks cb;
  void *user;
  uint8_t *owned;      /* copies of the settings' byte strings */
  uint8_t *setup_mime; /* server: the client's SETUP MIME types (s.*_mime point into it) */

  rs_conn_state state;
  uint64_t now;
  int fatal;        /* sticky fatal error (RS_ERR_NOMEM) */
  int in_callback;  /* >0 while an application callback runs */
  bool in_dispatch; /* inside rs_conn_recv* / rs_conn_handle_expiry */
  bool wake_ready;  /* rs_conn_new has returned: on_wake may be called */

  rs_frame_reader reader;
  rs_outq out;
  rs_stream_map streams;
  rs_stream *closed_head, *closed_tail; /* ended streams awaiting on_stream_closed */
  rs_stream *ready_head, *ready_tail;   /* producers with credit, not paused (produce.c) */
  bool probe_outstanding; /* resumption: KEEPALIVE(respond) sent to learn the peer's position */
  uint32_t next_stream_id;
  size_t reasm_bytes; /* reassembly buffers allocated, all streams */

  /* Negotiated by SETUP. */
  uint32_t keepalive_ms, lifetime_ms;
  bool lease_on, resume_on;
  bool setup_confirmed; /* client: the server showed it accepted our SETUP */
  uint64_t setup_end;   /* client: out.total_in right after SETUP: written once total_out gets
                           there (until then no transport has carried it: availability 0) */

  /* Setup handling (server). */
  bool in_on_setup;
  uint8_t *reject_msg;
  size_t reject_len;
  uint64_t setup_deadline;

  /* Keepalive. */
  uint64_t last_rx;        /* last time any frame arrived */
  uint64_t next_keepalive; /* RS_NO_DEADLINE when we do not send them */
  bool input_paused;       /* rs_conn_set_input_paused: no lifetime check; a server sends too */

  /* Close. */
  bool close_pending; /* on_close (and stream teardown) not yet delivered */
  bool close_done;    /* on_close delivered */
  rs_close_info close_info;
  uint8_t *close_msg; /* RS_CLOSE_MSG_MAX bytes, allocated when a close message is kept */
  size_t drain_len;   /* DRAINING: length of the CONNECTION_CLOSE message in close_msg */

  /* Lease. */
  rs_lease_state peer_lease; /* what the peer granted us (our requests) */
  rs_lease_state our_lease;  /* what we granted the peer (its requests) */

  /* Resumption. */
  uint64_t sent_pos, recv_pos;
  rs_retain retain;
  rs_resume_store *store;
  bool in_store;
  rs_conn *store_next;
  /* Server, detached: the store's oldest-first list of detached sessions and what this one
   * holds (its retained buffer), counted against the store's budget. */
  bool in_detached;
  rs_conn *det_prev, *det_next;
  size_t det_bytes;
  uint8_t *token;
  size_t token_len;
  uint64_t session_deadline; /* detached: when the session gives up */
  rs_conn *handoff;          /* HANDED_OFF: the session resumed */
};

/* ---- conn.c ---- */

/* Encodes `f` and queues it (resumable frames are also retained). While detached or resuming,
 * resumable frames are only retained and others dropped. Returns 0 or RS_ERR_NOMEM (and sets the
 * sticky fatal error), RS_ERR_FRAME_TOO_LARGE, RS_ERR_INVALID_ARGUMENT from the codec. */
int rs__send_frame(rs_conn *c, const rs_frame *f);
/* Encodes and queues `f` whatever the state, without retaining it (RESUME, RESUME_OK). */
int rs__send_direct(rs_conn *c, const rs_frame *f);
/* Queues a frame as-is (already encoded), bypassing the detached gate (RESUME, retransmission). */
int rs__send_raw(rs_conn *c, const uint8_t *frame, size_t len);
/* Sends a reactive control frame (a reply the peer provoked), enforcing max_queued_control:
 * a flood closes the connection with RS_ERR_FLOODED. Returns 0 or an error. */
int rs__send_control(rs_conn *c, const rs_frame *f);
/* Sends ERROR on `stream_id` (0: connection). */
int rs__send_error(rs_conn *c, uint32_t stream_id, uint32_t code, const char *msg, bool reactive);

/* Tells the driver (on_wake) that output or an earlier deadline appeared, unless it will look by
 * itself (inside a dispatch) or the connection is still being made. */
static inline void rs__wake(rs_conn *c) {
  if (c->wake_ready && !c->in_dispatch && c->cb.on_wake) c->cb.on_wake(c, c->user);
}

/* Records an allocation failure: the connection becomes unusable. Returns RS_ERR_NOMEM. */
int rs__fatal(rs_conn *c, int err);

/*
 * Ends the connection: sends ERROR[code] on stream 0 when `code` != 0, moves to CLOSED and
 * schedules stream teardown and on_close. `msg` is copied (truncated to RS_CLOSE_MSG_MAX).
 */
void rs__close(rs_conn *c, int err, uint32_t code, const uint8_t *msg, size_t msg_len, bool remote,
               bool send);
/* rs__close with a C-string message for a protocol violation we detected (sends the ERROR). */
void rs__conn_error(rs_conn *c, int err, uint32_t code, const char *msg);

/* Moves a stream out of the map into the closed list (on_stream_closed owed if RS_ST_APP). */
void rs__stream_end(rs_conn *c, rs_stream *s);
/* Delivers pending on_stream_closed and on_close. */
void rs__deliver_events(rs_conn *c);
/* True when a callback may be delivered now (inside a dispatch, not inside a callback). */
bool rs__can_callback(const rs_conn *c);

/* Called when the last stream ends while draining. */
void rs__check_drained(rs_conn *c);

/* ---- stream.c ---- */
/* Our half of stream `id`, open for sending (send_payload, send_complete, producers); or NULL
 * with *rc set: the API errors, RS_ERR_STREAM_CLOSED, RS_ERR_INVALID_STATE (no half to send). */
rs_stream *rs__outbound_stream(rs_conn *c, uint32_t id, int *rc);
void rs__on_request_frame(rs_conn *c, const rs_frame *f);
void rs__on_stream_frame(rs_conn *c, const rs_frame *f);
/* Delivers a complete (possibly reassembled) request or payload. */
void rs__deliver_request(rs_conn *c, rs_stream *s, uint8_t type, uint16_t flags, uint32_t n,
                         const rs_payload *p);
void rs__deliver_payload(rs_conn *c, rs_stream *s, uint16_t flags, const rs_payload *p);
/* Ends a stream because of a local failure (credit exceeded, reassembly too big, malformed):
 * tells the peer (CANCEL as requester, ERROR[code] as responder) and the application. */
void rs__stream_fail(rs_conn *c, rs_stream *s, int err, uint32_t code, const char *msg);
/* Ends every stream with on_error(RS_ERR_CLOSED-like `info`) + on_stream_closed. */
void rs__streams_teardown(rs_conn *c, const rs_stream_error *e);

/* ---- fragment.c ---- */
/* Sends REQUEST_* or PAYLOAD `type` carrying `p`, fragmenting at the MTU. `flags` may hold N and
 * C; `n` is the initial request-n of REQUEST_STREAM/CHANNEL. */
int rs__send_payload_frames(rs_conn *c, uint8_t type, uint32_t stream_id, uint16_t flags,
                            uint32_t n, const rs_payload *p);
/* Checks that `p` can be sent as `type` (size limits). Returns 0 or RS_ERR_FRAME_TOO_LARGE. */
int rs__check_payload_size(const rs_conn *c, uint8_t type, const rs_payload *p);
/* First fragment (F set) of `f` arrived on stream `s`: start gathering. 0, or an rs_error
 * (RS_ERR_TOO_BIG over the limit, RS_ERR_NOMEM). */
int rs__reasm_start(rs_conn *c, rs_stream *s, const rs_frame *f);
/* A continuation PAYLOAD: appends; *done when it was the last one. 0 or an rs_error. */
int rs__reasm_append(rs_conn *c, rs_stream *s, const rs_frame *f, bool *done);

/* ---- lease.c ---- */
/* Our requester takes one request from the peer's lease. Returns 0 or RS_ERR_NO_LEASE. */
int rs__lease_take_outbound(rs_conn *c);
/* The peer's request takes one from our lease. Returns true if allowed. */
bool rs__lease_take_inbound(rs_conn *c);
void rs__lease_on_frame(rs_conn *c, const rs_frame *f);
void rs__lease_reset(rs_conn *c);

/* ---- produce.c ---- */
/* Puts `s` on the ready list if its producer can run (credit, not paused, half open). Outside a
 * dispatch this wakes the driver. */
void rs__ready_update(rs_conn *c, rs_stream *s);
/* Takes `s` off the ready list (stream ended or torn down). */
void rs__ready_remove(rs_conn *c, rs_stream *s);

/* ---- keepalive.c ---- */
void rs__keepalive_start(rs_conn *c);
void rs__keepalive_on_frame(rs_conn *c, const rs_frame *f);
void rs__keepalive_expiry(rs_conn *c);
uint64_t rs__keepalive_deadline(const rs_conn *c);
void rs__keepalive_input_paused(rs_conn *c, bool paused);

/* ---- resume.c ---- */
/* A resumable frame of `len` bytes was queued: advance the position and retain it. */
int rs__retain_frame(rs_conn *c, const uint8_t *frame, size_t len);
/* The peer has received everything up to `pos`: drop retained frames before it. */
void rs__retain_trim(rs_conn *c, uint64_t pos);
void rs__retain_free(rs_conn *c);
/* Queues every retained frame from position `pos` on. Returns 0, RS_ERR_INVALID_STATE (pos not
 * available or not on a frame boundary), RS_ERR_NOMEM. */
int rs__retransmit_from(rs_conn *c, uint64_t pos);
/* Server: registers the session under its token. 0, RS_ERR_REJECTED (token in use), NOMEM. */
int rs__store_register(rs_conn *c, rs_bytes token);
void rs__store_unregister(rs_conn *c);
/* Server, state SETUP: handles a RESUME frame. */
void rs__on_resume(rs_conn *c, const rs_frame *f);
/* Client, state RESUMING: handles RESUME_OK. */
void rs__on_resume_ok(rs_conn *c, const rs_frame *f);

#endif
