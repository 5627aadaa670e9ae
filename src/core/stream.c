/*
 * The interaction models, both sides: request-response, fire-and-forget, request-stream and
 * request-channel. Each stream is two halves, ours (outbound) and the peer's (inbound); a stream
 * ends when both are done, or at once on ERROR, a requester's CANCEL or a local failure.
 *
 *   model      we are      our half (OUT)                  peer's half (IN)
 *   response   requester   done at once                    one PAYLOAD (any PAYLOAD completes)
 *   response   responder   one PAYLOAD (credit 1)          done at once
 *   stream     requester   done at once                    PAYLOADs within our request(n)
 *   stream     responder   PAYLOADs within the peer's n    done at once
 *   channel    requester   first element in the request,   PAYLOADs within our request(n)
 *                          more within the peer's n
 *   channel    responder   PAYLOADs within the peer's n    first element in the request, more
 *                                                          within our request(n)
 *
 * Cancel rules (rsocket-java's de-facto semantics): a requester's CANCEL ends the whole stream; a
 * responder's CANCEL on a channel only ends the requester's half (the requester stops sending and
 * keeps receiving); ERROR from either side ends both halves.
 */
#include <string.h>

#include "core/conn_internal.h"

static bool bytes_ok(rs_bytes b) {
  return b.ptr || b.len == 0;
}

static bool payload_ok(const rs_payload *p) {
  return p && bytes_ok(p->data) && (!p->has_metadata || bytes_ok(p->metadata));
}

/* 64-bit saturating credit; a total of 2^31-1 or more is unbounded (rsocket-java's convention). */
static uint64_t credit_add(uint64_t cur, uint64_t n) {
  if (cur == RS_CREDIT_UNBOUNDED || n == RS_CREDIT_UNBOUNDED) return RS_CREDIT_UNBOUNDED;
  uint64_t sum = cur + n;
  if (sum < cur || sum >= RS_REQUEST_N_MAX) return RS_CREDIT_UNBOUNDED;
  return sum;
}

static uint64_t credit_of(uint64_t n) {
  return n >= RS_REQUEST_N_MAX ? RS_CREDIT_UNBOUNDED : n;
}

static uint32_t wire_n(uint64_t n) {
  return n >= RS_REQUEST_N_MAX ? RS_REQUEST_N_MAX : (uint32_t)n;
}

static void end_stream(rs_conn *c, rs_stream *s) {
  if (!(s->flags & RS_ST_ENDED)) rs__stream_end(c, s);
}

static void maybe_end(rs_conn *c, rs_stream *s) {
  if ((s->flags & RS_ST_IN_DONE) && (s->flags & RS_ST_OUT_DONE)) end_stream(c, s);
}

/* Streams the application may act on (not those still reassembling an inbound request). */
static rs_stream *app_stream(const rs_conn *c, uint32_t id) {
  rs_stream *s = rs__smap_get(&c->streams, id);
  return s && (s->flags & RS_ST_APP) ? s : NULL;
}

static int api_check(const rs_conn *c) {
  if (!c) return RS_ERR_INVALID_ARGUMENT;
  if (c->fatal) return c->fatal;
  if (c->state == RS_CONN_STATE_CLOSED || c->state == RS_CONN_STATE_HANDED_OFF) {
    return RS_ERR_CLOSED;
  }
  return 0;
}

/* Next free stream id of our parity: wraps after 2^31-1 and skips ids still in use. */
static uint32_t alloc_stream_id(rs_conn *c) {
  uint32_t first = c->s.role == RS_CONN_CLIENT ? 1 : 2;
  for (;;) {
    uint32_t id = c->next_stream_id;
    uint32_t next = id + 2;
    c->next_stream_id = next > RS_STREAM_ID_MAX ? first : next;
    if (!rs__smap_get(&c->streams, id)) return id;
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Requester API                                                                               */

static rs_ssize start_request(rs_conn *c, uint8_t type, const rs_payload *p, uint64_t n,
                              bool complete, void *stream_user) {
  if (!c || !payload_ok(p)) return RS_ERR_INVALID_ARGUMENT;
  if ((type == RS_FRAME_REQUEST_STREAM || type == RS_FRAME_REQUEST_CHANNEL) && n == 0) {
    return RS_ERR_INVALID_ARGUMENT;
  }
  int rc = api_check(c);
  if (rc) return rc;
  if (c->state == RS_CONN_STATE_DRAINING) return RS_ERR_CLOSED;
  if (c->state == RS_CONN_STATE_SETUP) return RS_ERR_INVALID_STATE;
  rc = rs__check_payload_size(c, type, p);
  if (rc) return rc;
  bool fnf = type == RS_FRAME_REQUEST_FNF;
  if (!fnf && c->streams.count >= c->s.max_streams) return RS_ERR_TOO_MANY_STREAMS;
  if (c->lease_on) {
    rc = rs__lease_take_outbound(c);
    if (rc) return rc;
  }
  uint32_t id = alloc_stream_id(c);
  if (!fnf) {
    rs_stream *s = rs__stream_alloc(&c->streams);
    if (!s) return rs__fatal(c, RS_ERR_NOMEM);
    s->id = id;
    s->model = type;
    s->user = stream_user;
    s->flags = RS_ST_REQUESTER | RS_ST_APP;
    switch (type) {
    case RS_FRAME_REQUEST_RESPONSE:
      s->flags |= RS_ST_OUT_DONE;
      s->in_credit = 1;
      break;
    case RS_FRAME_REQUEST_STREAM:
      s->flags |= RS_ST_OUT_DONE;
      s->in_credit = credit_of(n);
      break;
    default: /* channel */
      s->in_credit = credit_of(n);
      if (complete) s->flags |= RS_ST_OUT_DONE;
      break;
    }
    if (rs__smap_put(&c->streams, s)) {
      rs__stream_release(&c->streams, s);
      return rs__fatal(c, RS_ERR_NOMEM);
    }
  }
  uint16_t flags = (type == RS_FRAME_REQUEST_CHANNEL && complete) ? RS_FLAG_COMPLETE : 0;
  rc = rs__send_payload_frames(c, type, id, flags, wire_n(n), p);
  if (rc) return rc;
  return (rs_ssize)id;
}

rs_ssize rs_conn_request_response(rs_conn *c, const rs_payload *p, void *stream_user) {
  return start_request(c, RS_FRAME_REQUEST_RESPONSE, p, 0, false, stream_user);
}

rs_ssize rs_conn_request_fnf(rs_conn *c, const rs_payload *p) {
  return start_request(c, RS_FRAME_REQUEST_FNF, p, 0, false, NULL);
}

rs_ssize rs_conn_request_stream(rs_conn *c, const rs_payload *p, uint64_t initial_n,
                                void *stream_user) {
  return start_request(c, RS_FRAME_REQUEST_STREAM, p, initial_n, false, stream_user);
}

rs_ssize rs_conn_request_channel(rs_conn *c, const rs_payload *p, uint64_t initial_n, bool complete,
                                 void *stream_user) {
  return start_request(c, RS_FRAME_REQUEST_CHANNEL, p, initial_n, complete, stream_user);
}

/* ------------------------------------------------------------------------------------------ */
/* Stream API                                                                                  */

rs_stream *rs__outbound_stream(rs_conn *c, uint32_t id, int *rc) {
  *rc = api_check(c);
  if (*rc) return NULL;
  rs_stream *s = app_stream(c, id);
  if (!s) {
    *rc = RS_ERR_STREAM_CLOSED;
    return NULL;
  }
  if ((s->flags & RS_ST_REQUESTER) && s->model != RS_FRAME_REQUEST_CHANNEL) {
    *rc = RS_ERR_INVALID_STATE;
    return NULL;
  }
  if (s->flags & RS_ST_OUT_DONE) {
    *rc = RS_ERR_STREAM_CLOSED;
    return NULL;
  }
  return s;
}

int rs_conn_send_payload(rs_conn *c, uint32_t id, const rs_payload *p, bool complete) {
  if (!payload_ok(p)) return RS_ERR_INVALID_ARGUMENT;
  int rc;
  rs_stream *s = rs__outbound_stream(c, id, &rc);
  if (!s) return rc;
  rc = rs__check_payload_size(c, RS_FRAME_PAYLOAD, p);
  if (rc) return rc;
  bool response = s->model == RS_FRAME_REQUEST_RESPONSE;
  if (response) complete = true;
  if (!response && s->out_credit == 0) return RS_ERR_NO_CREDIT;
  uint16_t flags = RS_FLAG_NEXT | (complete ? RS_FLAG_COMPLETE : 0);
  rc = rs__send_payload_frames(c, RS_FRAME_PAYLOAD, id, flags, 0, p);
  if (rc) return rc;
  if (!response && s->out_credit != RS_CREDIT_UNBOUNDED) s->out_credit--;
  if (complete) {
    s->flags |= RS_ST_OUT_DONE;
    maybe_end(c, s);
  }
  return 0;
}

int rs_conn_send_complete(rs_conn *c, uint32_t id) {
  int rc;
  rs_stream *s = rs__outbound_stream(c, id, &rc);
  if (!s) return rc;
  rs_frame f;
  rs_frame_init(&f, RS_FRAME_PAYLOAD, id);
  f.flags = RS_FLAG_COMPLETE;
  rc = rs__send_frame(c, &f);
  if (rc) return rc;
  s->flags |= RS_ST_OUT_DONE;
  maybe_end(c, s);
  return 0;
}

int rs_conn_send_error(rs_conn *c, uint32_t id, uint32_t code, rs_bytes message) {
  int rc = api_check(c);
  if (rc) return rc;
  if (!bytes_ok(message)) return RS_ERR_INVALID_ARGUMENT;
  if (code < RS_ERROR_APPLICATION_ERROR || code == RS_ERROR_RESERVED_EXT) {
    return RS_ERR_INVALID_ARGUMENT;
  }
  if (message.len > RS_FRAME_MAX_SIZE - 10) return RS_ERR_FRAME_TOO_LARGE;
  rs_stream *s = app_stream(c, id);
  if (!s) return RS_ERR_STREAM_CLOSED;
  if ((s->flags & RS_ST_REQUESTER) && s->model != RS_FRAME_REQUEST_CHANNEL) {
    return RS_ERR_INVALID_STATE;
  }
  rs_frame f;
  rs_frame_init(&f, RS_FRAME_ERROR, id);
  f.u.error.code = code;
  f.data = message;
  rc = rs__send_frame(c, &f);
  if (rc) return rc;
  end_stream(c, s);
  return 0;
}

int rs_conn_request_n(rs_conn *c, uint32_t id, uint64_t n) {
  int rc = api_check(c);
  if (rc) return rc;
  if (n == 0) return RS_ERR_INVALID_ARGUMENT;
  rs_stream *s = app_stream(c, id);
  if (!s) return RS_ERR_STREAM_CLOSED;
  if (s->model == RS_FRAME_REQUEST_RESPONSE ||
      (s->model == RS_FRAME_REQUEST_STREAM && !(s->flags & RS_ST_REQUESTER))) {
    return RS_ERR_INVALID_STATE;
  }
  if (s->flags & RS_ST_IN_DONE) return RS_ERR_STREAM_CLOSED;
  if (s->in_credit == RS_CREDIT_UNBOUNDED) return 0; /* the peer may already send everything */
  uint64_t credit = credit_add(s->in_credit, credit_of(n));
  rs_frame f;
  rs_frame_init(&f, RS_FRAME_REQUEST_N, id);
  /* Becoming unbounded: say so with 2^31-1, which every peer reads as unbounded, so the peer's
   * count (which lags ours by what is in flight) cannot stay finite while we stop asking. */
  f.u.request_n.n = credit == RS_CREDIT_UNBOUNDED ? RS_REQUEST_N_MAX : wire_n(n);
  rc = rs__send_frame(c, &f);
  if (rc) return rc;
  s->in_credit = credit;
  return 0;
}

int rs_conn_cancel(rs_conn *c, uint32_t id) {
  int rc = api_check(c);
  if (rc) return rc;
  rs_stream *s = app_stream(c, id);
  if (!s) return RS_ERR_STREAM_CLOSED;
  bool requester = (s->flags & RS_ST_REQUESTER) != 0;
  if (!requester && s->model != RS_FRAME_REQUEST_CHANNEL) return RS_ERR_INVALID_STATE;
  if (!requester && (s->flags & RS_ST_IN_DONE)) return RS_ERR_STREAM_CLOSED;
  rs_frame f;
  rs_frame_init(&f, RS_FRAME_CANCEL, id);
  rc = rs__send_frame(c, &f);
  if (rc) return rc;
  if (requester) {
    end_stream(c, s);
  } else {
    /* Channel responder: only the requester's half ends. */
    s->flags |= RS_ST_IN_DONE;
    rs__reasm_free(&c->mem, s->reasm);
    s->reasm = NULL;
    maybe_end(c, s);
  }
  return 0;
}

int rs_conn_stream_set_user(rs_conn *c, uint32_t id, void *stream_user) {
  if (!c) return RS_ERR_INVALID_ARGUMENT;
  rs_stream *s = app_stream(c, id);
  if (!s) return RS_ERR_STREAM_CLOSED;
  s->user = stream_user;
  return 0;
}

void *rs_conn_stream_user(const rs_conn *c, uint32_t id) {
  if (!c) return NULL;
  rs_stream *s = app_stream(c, id);
  return s ? s->user : NULL;
}

uint64_t rs_conn_stream_credit(const rs_conn *c, uint32_t id) {
  if (!c) return 0;
  rs_stream *s = app_stream(c, id);
  if (!s || (s->flags & RS_ST_OUT_DONE)) return 0;
  if (s->model == RS_FRAME_REQUEST_RESPONSE) return 1;
  return s->out_credit;
}

size_t rs_conn_stream_count(const rs_conn *c) {
  return c ? c->streams.count : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Inbound                                                                                     */

void rs__stream_fail(rs_conn *c, rs_stream *s, int err, uint32_t code, const char *msg) {
  rs_frame f;
  if (s->flags & RS_ST_REQUESTER) {
    rs_frame_init(&f, RS_FRAME_CANCEL, s->id);
    rs__send_control(c, &f);
  } else {
    rs__send_error(c, s->id, code, msg, true);
  }
  if (c->fatal) return;
  if ((s->flags & RS_ST_APP) && c->cb.on_error) {
    rs_stream_error e = {err, code, rs_bytes_str(msg), false};
    c->in_callback++;
    c->cb.on_error(c, s->id, s->user, &e, c->user);
    c->in_callback--;
  }
  end_stream(c, s);
}

void rs__streams_teardown(rs_conn *c, const rs_stream_error *e) {
  c->ready_head = c->ready_tail = NULL; /* every stream goes */
  rs_stream *list = rs__smap_drain(&c->streams);
  while (list) {
    rs_stream *s = list;
    list = s->next;
    s->flags |= RS_ST_ENDED;
    if (s->flags & RS_ST_APP) {
      c->in_callback++;
      if (c->cb.on_error) c->cb.on_error(c, s->id, s->user, e, c->user);
      if (c->cb.on_stream_closed) c->cb.on_stream_closed(c, s->id, s->user, c->user);
      c->in_callback--;
    }
    rs__stream_release(&c->streams, s);
  }
}

/* Refuses a request the application never sees. FNF gets no answer. */
static void refuse(rs_conn *c, uint32_t id, uint8_t type, const char *why) {
  if (type != RS_FRAME_REQUEST_FNF) rs__send_error(c, id, RS_ERROR_REJECTED, why, true);
}

void rs__deliver_request(rs_conn *c, rs_stream *s, uint8_t type, uint16_t flags, uint32_t n,
                         const rs_payload *p) {
  uint32_t id = s->id;
  rs_request req;
  req.type = type;
  req.stream_id = id;
  req.initial_n = credit_of(n);
  req.complete = type == RS_FRAME_REQUEST_CHANNEL && (flags & RS_FLAG_COMPLETE);
  req.payload = *p;
  if (type == RS_FRAME_REQUEST_FNF) {
    end_stream(c, s); /* not known to the application: released at once */
    if (c->cb.on_request) {
      c->in_callback++;
      c->cb.on_request(c, &req, c->user);
      c->in_callback--;
    }
    return;
  }
  s->model = type;
  s->flags = RS_ST_APP;
  switch (type) {
  case RS_FRAME_REQUEST_RESPONSE:
    s->flags |= RS_ST_IN_DONE;
    s->out_credit = 1;
    break;
  case RS_FRAME_REQUEST_STREAM:
    s->flags |= RS_ST_IN_DONE;
    s->out_credit = credit_of(n);
    break;
  default: /* channel: the first element came with the request; more need our request(n) */
    s->out_credit = credit_of(n);
    s->in_credit = 0;
    if (req.complete) s->flags |= RS_ST_IN_DONE;
    break;
  }
  if (!c->cb.on_request) {
    s->flags &= (uint8_t)~RS_ST_APP;
    end_stream(c, s);
    refuse(c, id, type, "no request handler");
    return;
  }
  c->in_callback++;
  int rc = c->cb.on_request(c, &req, c->user);
  c->in_callback--;
  if (rc != 0 && !(s->flags & RS_ST_ENDED) && !c->fatal && c->state != RS_CONN_STATE_CLOSED) {
    s->flags &= (uint8_t)~RS_ST_APP;
    end_stream(c, s);
    refuse(c, id, type, "request rejected");
  }
}

void rs__on_request_frame(rs_conn *c, const rs_frame *f) {
  uint32_t id = f->stream_id;
  uint8_t type = f->type;
  bool peer_parity = c->s.role == RS_CONN_CLIENT ? (id % 2 == 0) : (id % 2 == 1);
  if (!peer_parity) {
    rs__conn_error(c, RS_ERR_PROTOCOL, RS_ERROR_CONNECTION_ERROR,
                   "request on a stream id of the requester's own parity");
    return;
  }
  if (rs__smap_get(&c->streams, id)) return; /* id in use: the spec says ignore */
  if (c->state == RS_CONN_STATE_DRAINING) {
    refuse(c, id, type, "connection is closing");
    return;
  }
  if (c->streams.count >= c->s.max_streams) {
    refuse(c, id, type, "too many streams");
    return;
  }
  /* A fragmented request counts once against the lease, at its first fragment. */
  if (c->lease_on && !rs__lease_take_inbound(c)) {
    refuse(c, id, type, "no lease");
    return;
  }
  rs_stream *s = rs__stream_alloc(&c->streams);
  if (!s) {
    rs__fatal(c, RS_ERR_NOMEM);
    return;
  }
  s->id = id;
  s->model = type;
  if (rs__smap_put(&c->streams, s)) {
    rs__stream_release(&c->streams, s);
    rs__fatal(c, RS_ERR_NOMEM);
    return;
  }
  uint32_t n = (type == RS_FRAME_REQUEST_STREAM || type == RS_FRAME_REQUEST_CHANNEL)
                   ? f->u.request.initial_request_n
                   : 0;
  if (f->flags & RS_FLAG_FOLLOWS) {
    int rc = rs__reasm_start(c, s, f);
    if (rc == RS_ERR_TOO_BIG) {
      end_stream(c, s);
      if (type != RS_FRAME_REQUEST_FNF) {
        rs__send_error(c, id, RS_ERROR_INVALID, "request over the reassembly limit", true);
      }
    } else if (rc) {
      rs__fatal(c, rc);
    }
    return;
  }
  rs_payload p = {f->has_metadata, f->metadata, f->data};
  rs__deliver_request(c, s, type, f->flags, n, &p);
}

void rs__deliver_payload(rs_conn *c, rs_stream *s, uint16_t flags, const rs_payload *p) {
  unsigned ev = 0;
  if (flags & RS_FLAG_NEXT) ev |= RS_PAYLOAD_NEXT;
  if (flags & RS_FLAG_COMPLETE) ev |= RS_PAYLOAD_COMPLETE;
  /* Any PAYLOAD ends a request-response, with or without C (spec: act as if C were set). */
  if (s->model == RS_FRAME_REQUEST_RESPONSE) ev |= RS_PAYLOAD_COMPLETE;
  if (ev & RS_PAYLOAD_COMPLETE) s->flags |= RS_ST_IN_DONE;
  if (c->cb.on_payload) {
    static const rs_payload empty = {false, {NULL, 0}, {NULL, 0}};
    c->in_callback++;
    c->cb.on_payload(c, s->id, s->user, (ev & RS_PAYLOAD_NEXT) ? p : &empty, ev, c->user);
    c->in_callback--;
  }
  if (!(s->flags & RS_ST_ENDED)) maybe_end(c, s);
}

/* Takes one credit for an inbound element; false when the peer exceeded what we granted. */
static bool take_in_credit(rs_stream *s) {
  if (s->model == RS_FRAME_REQUEST_RESPONSE || s->in_credit == RS_CREDIT_UNBOUNDED) return true;
  if (s->in_credit == 0) return false;
  s->in_credit--;
  return true;
}

static void finish_reassembly(rs_conn *c, rs_stream *s) {
  rs_reasm *r = s->reasm;
  s->reasm = NULL;
  rs_payload p = {r->has_md, {r->md, r->md_len}, {r->data, r->data_len}};
  if (s->flags & RS_ST_APP) {
    rs__deliver_payload(c, s, r->flags, &p);
  } else {
    rs__deliver_request(c, s, r->type, r->flags, r->initial_n, &p);
  }
  rs__reasm_free(&c->mem, r);
}

static void on_payload_frame(rs_conn *c, rs_stream *s, const rs_frame *f) {
  if (s->reasm) {
    bool done = false;
    int rc = rs__reasm_append(c, s, f, &done);
    if (rc == RS_ERR_TOO_BIG) {
      if (s->flags & RS_ST_APP) {
        rs__stream_fail(c, s, RS_ERR_TOO_BIG, RS_ERROR_INVALID,
                        "payload over the reassembly limit");
      } else {
        uint8_t type = s->reasm->type;
        end_stream(c, s);
        if (type != RS_FRAME_REQUEST_FNF) {
          rs__send_error(c, f->stream_id, RS_ERROR_INVALID, "request over the reassembly limit",
                         true);
        }
      }
      return;
    }
    if (rc) {
      rs__fatal(c, rc);
      return;
    }
    if (done) finish_reassembly(c, s);
    return;
  }
  if (!(s->flags & RS_ST_APP) || (s->flags & RS_ST_IN_DONE)) return; /* late or senseless */
  uint16_t flags = f->flags;
  if ((flags & RS_FLAG_NEXT) && !take_in_credit(s)) {
    rs__stream_fail(c, s, RS_ERR_PROTOCOL, RS_ERROR_INVALID, "request(n) credit exceeded");
    return;
  }
  if ((flags & RS_FLAG_FOLLOWS) && !(flags & RS_FLAG_COMPLETE)) {
    int rc = rs__reasm_start(c, s, f);
    if (rc == RS_ERR_TOO_BIG) {
      rs__stream_fail(c, s, RS_ERR_TOO_BIG, RS_ERROR_INVALID, "payload over the reassembly limit");
    } else if (rc) {
      rs__fatal(c, rc);
    }
    return;
  }
  rs_payload p = {f->has_metadata, f->metadata, f->data};
  rs__deliver_payload(c, s, flags, &p);
}

static int remote_error_code(uint32_t code) {
  switch (code) {
  case RS_ERROR_REJECTED: return RS_ERR_REJECTED;
  case RS_ERROR_CANCELED: return RS_ERR_CANCELED;
  case RS_ERROR_INVALID: return RS_ERR_PROTOCOL;
  case RS_ERROR_APPLICATION_ERROR: return RS_ERR_APPLICATION;
  default: return code >= RS_ERROR_MIN_APPLICATION ? RS_ERR_APPLICATION : RS_ERR_PROTOCOL;
  }
}

void rs__on_stream_frame(rs_conn *c, const rs_frame *f) {
  rs_stream *s = rs__smap_get(&c->streams, f->stream_id);
  if (!s) return; /* unknown or finished stream: ignored, as the spec says */
  bool app = (s->flags & RS_ST_APP) != 0;
  switch (f->type) {
  case RS_FRAME_PAYLOAD: on_payload_frame(c, s, f); return;
  case RS_FRAME_REQUEST_N:
    if (!app || (s->flags & RS_ST_OUT_DONE) || s->model == RS_FRAME_REQUEST_RESPONSE) return;
    s->out_credit = credit_add(s->out_credit, credit_of(f->u.request_n.n));
    if (c->cb.on_request_n) {
      c->in_callback++;
      c->cb.on_request_n(c, s->id, s->user, credit_of(f->u.request_n.n), c->user);
      c->in_callback--;
    }
    if (!(s->flags & RS_ST_ENDED)) rs__ready_update(c, s);
    return;
  case RS_FRAME_CANCEL:
    if (!app) {
      end_stream(c, s); /* a request abandoned while being reassembled */
      return;
    }
    if (s->flags & RS_ST_REQUESTER) {
      /* A responder's CANCEL only makes sense on a channel: it ends our half. */
      if (s->model != RS_FRAME_REQUEST_CHANNEL || (s->flags & RS_ST_OUT_DONE)) return;
      s->flags |= RS_ST_OUT_DONE;
    } else {
      s->flags |= RS_ST_OUT_DONE | RS_ST_IN_DONE;
    }
    if (c->cb.on_cancel) {
      c->in_callback++;
      c->cb.on_cancel(c, s->id, s->user, c->user);
      c->in_callback--;
    }
    if (s->flags & RS_ST_REQUESTER) {
      if (!(s->flags & RS_ST_ENDED)) maybe_end(c, s);
    } else {
      end_stream(c, s);
    }
    return;
  case RS_FRAME_ERROR:
    if (app && c->cb.on_error) {
      rs_stream_error e = {remote_error_code(f->u.error.code), f->u.error.code, f->data, true};
      c->in_callback++;
      c->cb.on_error(c, s->id, s->user, &e, c->user);
      c->in_callback--;
    }
    end_stream(c, s);
    return;
  default: return;
  }
}
