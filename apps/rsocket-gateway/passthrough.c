/*
 * rsocket-gateway: RSocket from the browser (/rsocket, or the subprotocol "rsocket").
 *
 * The client's RSocket connection ends here: its engine (the server's, one per client, on the
 * worker that accepted it) reassembles what the client fragmented and fragments what we send to
 * --rsocket-mtu. Each stream the client opens becomes one stream to a backend, on the pool of
 * the route its routing metadata names (the route table and pools the JSON clients use), and
 * from then on the two streams are tied frame for frame:
 *
 *   client → gateway                       gateway → backend
 *   REQUEST_* (route in its metadata)      the same request; metadata as sent, plus our entry
 *   REQUEST_N                              REQUEST_N, at most --credit-window outstanding,
 *                                          and only while the client's socket takes more
 *   CANCEL                                 CANCEL
 *   PAYLOAD / ERROR (its channel half)     PAYLOAD / ERROR
 *   ... and the same backwards: PAYLOAD (metadata included), COMPLETE, ERROR with its code and
 *   message, REQUEST_N and CANCEL of a channel's half.
 *
 * Credit (request-stream, and the backend's half of a channel): the client's request(n) is its
 * demand; the backend gets it in slices, so that at most --credit-window items are asked of it
 * and not yet received, topped up once half of them came and only while the client's connection
 * is under its output watermark (else on its on_drained). A client that asks for everything
 * (2^31-1: unbounded) gets a fast backend's items at the pace its socket takes them, and the
 * gateway holds at most a window per stream, never the client's whole credit.
 *
 * The gateway's own refusals are ERROR frames whose message starts with the gateway's code
 * (the JSON protocol's names): REJECTED "NO_ROUTE: …", "UNAVAILABLE: …", "TOO_MANY_STREAMS: …",
 * INVALID "BAD_REQUEST: …" (malformed metadata); after the backend got the request, CANCELED
 * "TIMEOUT: …" (request-response over --request-timeout) and CANCELED "UNAVAILABLE: the backend
 * connection was lost: …" (CANCELED: the backend may have acted on it, so a retry is the
 * application's call).
 *
 * Everything about a client, its streams and their backend streams runs on its worker's loop:
 * the callbacks of both engines call each other directly. A stream record (gw_pstream) is held by
 * both engines (each until its on_stream_closed) and freed when both let go.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "rsocket/extensions.h"
#include "rsocket/service.h"

#define LEASE_PERIOD_MS 1000u /* a new lease every second ... */
#define LEASE_TTL_MS    2000u /* ... valid for two, so that a late tick leaves no gap */

struct gw_rsclient {
  gw_gateway *gw;
  rs_conn *conn;
  uint64_t session_id;
  uint8_t *entry; /* the client metadata entry, encoded as a composite metadata entry (made at */
  uint32_t entry_len;  /* the first request: idle clients do not pay for it) */
  char *user, *claims; /* authenticated user and forwarded claims (NULL: none) */
  char *url_token;     /* the ?token= of its upgrade, until SETUP (authentication only) */
  bool opened;         /* SETUP seen: client_open logged */
  bool lease;          /* asked for lease in its SETUP */
  bool slow;           /* closed as a slow consumer */
  bool composite;      /* its metadata MIME is composite metadata */
  bool draining;       /* SIGTERM: closed once its request-responses are answered */
  bool waiting;        /* not read while wait_conn (a backend connection) is over its watermark */
  uint8_t dmime[130];  /* its data MIME as a per-stream MIME entry (0 bytes: application/json) */
  uint8_t dmime_len;   /* or one that cannot be written as one */
  int8_t md_mime_id;   /* its metadata MIME's well-known id (-1: none), looked up once */
  uint32_t streams;    /* open: taken in on_request, not yet in on_stream_closed */
  uint32_t rr_open;    /* of which request-responses (a draining gateway waits for them) */
  gw_bucket rate;      /* --rate-limit */
  gw_pstream *open;    /* its streams (front_open), for closing them at a drain */
  rs_conn *wait_conn;  /* while waiting: the backend connection it waits for */
  gw_rsclient *wait_next; /* gw->pt_waiting */
  char why[160];          /* how the connection ended, for client_close */
  bool why_remote;
  gw_rsclient *prev, *next; /* gw->rs_clients */
};

struct gw_pstream {
  uint8_t kind; /* GW_KIND_RSOCKET: first, as in gw_stream */
  gw_gateway *gw;
  bool front_open; /* the client's engine still knows the stream */
  bool back_open;  /* the backend's engine still knows its stream */
  uint8_t model;   /* GW_RR, GW_STREAM, GW_CHANNEL */
  uint16_t route;  /* its route's stats slot (gw_route_slot): valid across reloads */
  gw_rsclient *client;
  uint32_t fsid, bsid; /* the client's stream id, the backend's */
  rs_conn *back;
  gw_pstream *t_prev, *t_next; /* gw's deadline list (request-response) */
  uint64_t deadline;           /* 0: not on it */
  gw_pstream *c_prev, *c_next; /* the client's open list, while front_open */
  uint64_t demand;             /* the client's credit not yet passed on (UINT64_MAX: unbounded) */
  uint64_t outstanding;        /* credit the backend has and has not used yet */
};

static bool bytes_is(rs_bytes b, const char *s) {
  size_t n = strlen(s);
  return b.len == n && (n == 0 || memcmp(b.ptr, s, n) == 0);
}

/* ---- counting ---- */

/* `slot`: a route's stats slot (gw_route_slot), 0 or -1 for none. */
static void count_error(gw_gateway *gw, long slot, const char *code) {
  size_t row = slot > 0 ? (size_t)slot : 0;
  GW_ADD(gw->stats.errors[row * GW_CODE_COUNT + (size_t)gw_code_of(code)], 1);
}

/* Ends the client's stream with ERROR[rcode] "CODE: message" (a refusal of the gateway's). */
static void refuse(gw_rsclient *c, uint32_t sid, long route, uint32_t rcode, const char *code,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void refuse(gw_rsclient *c, uint32_t sid, long route, uint32_t rcode, const char *code,
                   const char *fmt, ...) {
  char msg[400];
  int n = snprintf(msg, sizeof msg, "%s: ", code);
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
  va_end(ap);
  size_t len = (size_t)n + (m > 0 ? (size_t)m : 0);
  if (len >= sizeof msg) len = sizeof msg - 1;
  count_error(c->gw, route, code);
  rs_conn_send_error(c->conn, sid, rcode, (rs_bytes){(const uint8_t *)msg, len});
}

/* ---- request timeouts (request-response): one list in deadline order, one timer ---- */

static void timeout_remove(gw_gateway *gw, gw_pstream *ps) {
  if (!ps->deadline) return;
  *(ps->t_prev ? &ps->t_prev->t_next : &gw->pt_head) = ps->t_next;
  *(ps->t_next ? &ps->t_next->t_prev : &gw->pt_tail) = ps->t_prev;
  ps->t_prev = ps->t_next = NULL;
  ps->deadline = 0;
}

static void drain_close(gw_rsclient *c, const char *why);

static void timer_fire(uv_timer_t *t);

/* The timer serves the request timeouts and, while draining, the --drain-timeout deadline. */
static void timer_arm(gw_gateway *gw) {
  uint64_t at = gw->pt_head ? gw->pt_head->deadline : UINT64_MAX;
  if (gw->pt_drain_at && gw->pt_drain_at < at) at = gw->pt_drain_at;
  if (at == UINT64_MAX) return;
  uint64_t now = uv_now(gw->loop);
  uv_timer_start(&gw->pt_timer, timer_fire, at > now ? at - now : 0, 0);
}

static void timer_fire(uv_timer_t *t) {
  gw_gateway *gw = t->data;
  uint64_t now = uv_now(gw->loop);
  while (gw->pt_head && gw->pt_head->deadline <= now) {
    gw_pstream *ps = gw->pt_head;
    timeout_remove(gw, ps);
    refuse(ps->client, ps->fsid, ps->route, RS_ERROR_CANCELED, "TIMEOUT",
           "no answer from the backend within %" PRIu32 " ms", gw->cfg->request_timeout_ms);
    if (ps->back_open) rs_conn_cancel(ps->back, ps->bsid);
  }
  if (gw->pt_drain_at && gw->pt_drain_at <= now) { /* --drain-timeout: the rest goes now */
    gw->pt_drain_at = 0;
    for (gw_rsclient *c = gw->rs_clients; c; c = c->next)
      if (c->draining) drain_close(c, "the gateway is shutting down: its --drain-timeout passed");
  }
  timer_arm(gw);
}

static void timeout_add(gw_gateway *gw, gw_pstream *ps) {
  ps->deadline = uv_now(gw->loop) + gw->cfg->request_timeout_ms;
  if (!ps->deadline) ps->deadline = 1;
  ps->t_prev = gw->pt_tail;
  *(gw->pt_tail ? &gw->pt_tail->t_next : &gw->pt_head) = ps;
  gw->pt_tail = ps;
  if (gw->pt_head == ps) timer_arm(gw);
}

/* ---- the backend's side of a stream ---- */

/* A client whose unsent output is already over --max-buffer when more must be queued for it
 * reads slower than it asks (its credit is larger than what it reads): it is closed. One large
 * payload alone never trips it. Returns false when the client was closed. */
static bool front_room(gw_rsclient *c) {
  if (c->slow) return false;
  if (rs_conn_pending_bytes(c->conn) <= c->gw->cfg->max_buffer) return true;
  c->slow = true;
  GW_ADD(c->gw->stats.slow_consumers, 1);
  rs_conn_abort(c->conn, rs_bytes_str("slow consumer: unsent output over --max-buffer"));
  return false;
}

static void pstream_maybe_free(gw_pstream *ps) {
  if (!ps->front_open && !ps->back_open) free(ps);
}

/* ---- credit: the client's demand passed on a window at a time (see the top) ---- */

static void demand_add(gw_pstream *ps, uint64_t n) {
  if (n >= RS_REQUEST_N_MAX || ps->demand > UINT64_MAX - n)
    ps->demand = UINT64_MAX; /* unbounded, as the spec reads 2^31-1 */
  else
    ps->demand += n;
}

/* Passes the client's demand on to the backend while the window allows it and the client's
 * connection takes more (else its on_drained calls again). */
static void credit_top_up(gw_pstream *ps) {
  if (!ps->front_open || !ps->back_open || ps->model == GW_RR || ps->demand == 0) return;
  uint64_t window = ps->gw->cfg->credit_window ? ps->gw->cfg->credit_window : 1;
  if (ps->outstanding > window / 2) return;           /* in slices of half a window at least */
  if (!rs_runtime_writable(ps->client->conn)) return; /* gw_pt_drained calls again */
  uint64_t grant = window - ps->outstanding;
  if (grant > ps->demand) grant = ps->demand;
  if (ps->demand != UINT64_MAX) ps->demand -= grant;
  ps->outstanding += grant;
  rs_conn_request_n(ps->back, ps->bsid, grant);
}

void gw_pt_drained(rs_conn *conn, void *user) {
  (void)conn;
  gw_rsclient *c = user;
  for (gw_pstream *ps = c ? c->open : NULL; ps; ps = ps->c_next) credit_top_up(ps);
}

/* ---- back-pressure toward the client: reading pauses while a backend connection is full ---- */

/* After forwarding something of `c` on `back`: over its output watermark, `c` is not read until
 * that connection drains (gw_pt_backend_drained), so a client that sends faster than a backend
 * takes (fire-and-forget, new requests, channel elements) waits in its own socket and the
 * kernel's buffers, not in the gateway's memory. */
static void wait_backend(gw_rsclient *c, rs_conn *back) {
  if (c->waiting || !back || rs_runtime_writable(back)) return;
  c->waiting = true;
  c->wait_conn = back;
  c->wait_next = c->gw->pt_waiting;
  c->gw->pt_waiting = c;
  rs_runtime_pause_reading(c->conn, true);
}

static void unlink_waiting(gw_rsclient *c) {
  if (!c->waiting) return;
  for (gw_rsclient **pp = &c->gw->pt_waiting; *pp; pp = &(*pp)->wait_next)
    if (*pp == c) {
      *pp = c->wait_next;
      break;
    }
  c->waiting = false;
  c->wait_conn = NULL;
  c->wait_next = NULL;
}

void gw_pt_backend_drained(gw_gateway *gw, rs_conn *back) {
  for (gw_rsclient **pp = &gw->pt_waiting; *pp;) {
    gw_rsclient *c = *pp;
    if (back && c->wait_conn != back) {
      pp = &c->wait_next;
      continue;
    }
    *pp = c->wait_next;
    c->waiting = false;
    c->wait_conn = NULL;
    c->wait_next = NULL;
    rs_runtime_pause_reading(c->conn, false);
  }
}

void gw_pt_back_payload(gw_pstream *ps, const rs_payload *p, unsigned flags) {
  if (!ps->front_open || !front_room(ps->client)) return;
  rs_conn *front = ps->client->conn;
  bool complete = (flags & RS_PAYLOAD_COMPLETE) != 0;
  if (ps->model == GW_RR) timeout_remove(ps->client->gw, ps);
  if (flags & RS_PAYLOAD_NEXT)
    rs_conn_send_payload(front, ps->fsid, p, complete);
  else if (complete)
    rs_conn_send_complete(front, ps->fsid);
  if ((flags & RS_PAYLOAD_NEXT) && !complete && ps->model != GW_RR) {
    if (ps->outstanding) ps->outstanding--;
    credit_top_up(ps);
  }
}

/* The code and message a client gets for a backend stream's error. */
void gw_pt_back_error(gw_pstream *ps, const rs_stream_error *e) {
  if (!ps->front_open) return;
  gw_rsclient *c = ps->client;
  timeout_remove(c->gw, ps);
  uint32_t code = e->code;
  bool stream_code = code == RS_ERROR_APPLICATION_ERROR || code == RS_ERROR_REJECTED ||
                     code == RS_ERROR_CANCELED || code == RS_ERROR_INVALID ||
                     (code >= RS_ERROR_MIN_APPLICATION && code != RS_ERROR_RESERVED_EXT);
  if (e->remote && stream_code) { /* the backend's own: passed on as it is */
    const char *name =
        code >= RS_ERROR_MIN_APPLICATION ? "APPLICATION_ERROR" : rs_error_code_name(code);
    count_error(c->gw, ps->route, name);
    rs_conn_send_error(c->conn, ps->fsid, code, e->message);
    return;
  }
  int len = (int)(e->message.len > 200 ? 200 : e->message.len);
  const char *msg = e->message.ptr ? (const char *)e->message.ptr : "";
  if (e->remote || e->err == RS_ERR_CLOSED)
    refuse(c, ps->fsid, ps->route, RS_ERROR_CANCELED, "UNAVAILABLE",
           "the backend connection was lost: %.*s", len, msg);
  else
    refuse(c, ps->fsid, ps->route, RS_ERROR_APPLICATION_ERROR, "APPLICATION_ERROR",
           "the backend stream failed: %.*s", len, msg);
}

void gw_pt_back_request_n(gw_pstream *ps, uint64_t n) {
  if (ps->front_open) rs_conn_request_n(ps->client->conn, ps->fsid, n);
}

/* The backend cancelled our half of a channel: the client's half stops too. */
void gw_pt_back_cancel(gw_pstream *ps) {
  if (ps->front_open) rs_conn_cancel(ps->client->conn, ps->fsid);
}

void gw_pt_back_closed(gw_pstream *ps) {
  ps->back_open = false;
  GW_ADD(ps->gw->stats.streams_open[ps->model - 1], (uint64_t)-1);
  /* The backend's stream is over: a channel whose client half is still open stops it. */
  if (ps->front_open && ps->model == GW_CHANNEL) rs_conn_cancel(ps->client->conn, ps->fsid);
  pstream_maybe_free(ps);
}

/* ---- the client's requests ---- */

/* The metadata a backend gets (its connections' MIME is composite metadata): the client's
 * entries as sent (a client's own entry of GW_CLIENT_MIME is dropped: only the gateway writes
 * it), or, for another metadata MIME (routing), its metadata as one entry of that MIME; then the
 * client's data MIME when it is not application/json (the backend connection's); then the
 * client entry. Written into `buf` (cap bytes: enough for the metadata plus 512 and the entry).
 * Returns the length, or -1 for metadata that cannot be carried (malformed composite). */
static rs_ssize backend_metadata(gw_rsclient *c, const rs_payload *p, uint8_t *buf, size_t cap) {
  size_t off = 0;
  rs_ssize n;
  if (c->composite && p->has_metadata) {
    rs_composite_iter it;
    rs_composite_entry e;
    int r;
    size_t gl = strlen(GW_CLIENT_MIME);
    rs_composite_iter_init(&it, p->metadata.ptr, p->metadata.len);
    while ((r = rs_composite_next(&it, &e)) == 1) {
      if (!e.well_known && e.mime.len == gl && memcmp(e.mime.ptr, GW_CLIENT_MIME, gl) == 0)
        continue;
      n = e.well_known ? rs_composite_encode_id(buf + off, cap - off, e.mime_id, e.content.ptr,
                                                e.content.len)
                       : rs_composite_encode(buf + off, cap - off, (const char *)e.mime.ptr,
                                             e.mime.len, e.content.ptr, e.content.len);
      if (n < 0) return -1;
      off += (size_t)n;
    }
    if (r < 0) return -1;
  } else if (p->has_metadata && p->metadata.len) {
    rs_bytes mime = rs_conn_get_settings(c->conn)->metadata_mime;
    n = c->md_mime_id >= 0 ? rs_composite_encode_id(buf, cap, (uint8_t)c->md_mime_id,
                                                    p->metadata.ptr, p->metadata.len)
                           : rs_composite_encode(buf, cap, (const char *)mime.ptr, mime.len,
                                                 p->metadata.ptr, p->metadata.len);
    if (n < 0) return -1;
    off += (size_t)n;
  }
  if (c->dmime_len) { /* the backend connection's data MIME is application/json */
    n = rs_composite_encode_id(buf + off, cap - off, RS_MIME_ID_DATA_MIME, c->dmime, c->dmime_len);
    off += n > 0 ? (size_t)n : 0;
  }
  if (c->entry && cap - off >= c->entry_len) {
    memcpy(buf + off, c->entry, c->entry_len);
    off += c->entry_len;
  }
  return (rs_ssize)off;
}

/* The client entry, encoded once: every request copies it (without it, out of memory, requests
 * go without). */
static void make_entry(gw_rsclient *c) {
  uint32_t len;
  char *json = gw_entry_make(c->session_id, rs_runtime_peer(c->conn), c->user, c->claims, &len);
  size_t cap = json ? 1 + strlen(GW_CLIENT_MIME) + 3 + len : 0;
  c->entry = json ? malloc(cap) : NULL;
  rs_ssize n = c->entry ? rs_composite_encode(c->entry, cap, GW_CLIENT_MIME, strlen(GW_CLIENT_MIME),
                                              (const uint8_t *)json, len)
                        : -1;
  free(json);
  if (n < 0) {
    free(c->entry);
    c->entry = NULL;
    return;
  }
  c->entry_len = (uint32_t)n;
}

/* backend_metadata into gw->scratch, or into a buffer of its own (*heap: the caller frees it)
 * when it does not fit there. Returns the length with *buf set, -1 for metadata that cannot be
 * carried, -2 when out of memory. */
static rs_ssize make_metadata(gw_rsclient *c, const rs_payload *p, uint8_t **buf, uint8_t **heap) {
  gw_gateway *gw = c->gw;
  if (!c->entry) make_entry(c);
  size_t need = (p->has_metadata ? p->metadata.len : 0) + 512 + c->entry_len;
  *heap = need > gw->scratch_cap ? malloc(need) : NULL;
  if (need > gw->scratch_cap && !*heap) return -2;
  *buf = *heap ? *heap : gw->scratch;
  return backend_metadata(c, p, *buf, need);
}

static int model_of(uint8_t type) {
  switch (type) {
  case RS_FRAME_REQUEST_RESPONSE: return GW_RR;
  case RS_FRAME_REQUEST_STREAM: return GW_STREAM;
  case RS_FRAME_REQUEST_CHANNEL: return GW_CHANNEL;
  default: return 0; /* fire-and-forget */
  }
}

/* The route (index into gw->table->routes), or -1 after refusing the stream (sid 0:
 * fire-and-forget, nothing to say). */
static long find_route(gw_rsclient *c, const rs_payload *p, uint32_t sid, int metric) {
  gw_gateway *gw = c->gw;
  rs_bytes tag;
  int r = rs_route_of(rs_conn_get_settings(c->conn)->metadata_mime, p, &tag);
  long route = r == 1 ? gw_table_lookup(gw->table, tag.ptr, tag.len) : -1;
  if (metric >= 0)
    GW_ADD(gw->stats.requests[(size_t)gw_route_slot(gw, route) * GW_MODEL_COUNT + metric], 1);
  if (route >= 0) return route;
  if (!sid) {
    count_error(gw, -1, r < 0 ? "BAD_REQUEST" : "NO_ROUTE");
  } else if (r < 0) {
    refuse(c, sid, -1, RS_ERROR_INVALID, "BAD_REQUEST", "malformed routing metadata");
  } else if (r == 0) {
    refuse(c, sid, -1, RS_ERROR_REJECTED, "NO_ROUTE",
           "the request has no route: send routing metadata (message/x.rsocket.routing.v0, in "
           "composite metadata or as the connection's metadata MIME)");
  } else {
    refuse(c, sid, -1, RS_ERROR_REJECTED, "NO_ROUTE", "no backend serves route '%.*s'",
           (int)tag.len, (const char *)tag.ptr);
  }
  return -1;
}

/* Opens the backend stream of a client's request. */
static void open_stream(gw_rsclient *c, const rs_request *req, gw_model model) {
  gw_gateway *gw = c->gw;
  const gw_config *cfg = gw->cfg;
  long index = find_route(c, &req->payload, req->stream_id, (int)model - 1);
  if (index < 0) return;
  long route = gw_route_slot(gw, index); /* what is counted, below and in ps->route */
  if (c->streams >= cfg->max_streams) {
    refuse(c, req->stream_id, route, RS_ERROR_REJECTED, "TOO_MANY_STREAMS",
           "%" PRIu32 " streams are open (--max-streams-per-client)", cfg->max_streams);
    return;
  }
  if (atomic_load_explicit(gw->draining, memory_order_relaxed)) {
    refuse(c, req->stream_id, route, RS_ERROR_REJECTED, "UNAVAILABLE",
           "the gateway is shutting down");
    return;
  }
  uint8_t *buf = NULL, *heap = NULL;
  gw_pstream *ps = calloc(1, sizeof *ps);
  rs_ssize mlen = ps ? make_metadata(c, &req->payload, &buf, &heap) : -2;
  if (mlen < 0) {
    if (mlen == -1)
      refuse(c, req->stream_id, route, RS_ERROR_INVALID, "BAD_REQUEST",
             "malformed composite metadata");
    else
      refuse(c, req->stream_id, route, RS_ERROR_REJECTED, "UNAVAILABLE",
             "the gateway is out of memory");
    free(heap);
    free(ps);
    return;
  }
  ps->kind = GW_KIND_RSOCKET;
  ps->gw = gw;
  ps->model = (uint8_t)model;
  ps->route = (uint16_t)route;
  ps->client = c;
  ps->fsid = req->stream_id;
  rs_payload p = {.has_metadata = true, .metadata = {buf, (size_t)mlen}, .data = req->payload.data};
  rs_pool *pool = gw_route_pool(gw, index);
  rs_ssize sid;
  uint64_t first = 0; /* the first slice of the client's initial credit */
  if (model != GW_RR) {
    demand_add(ps, req->initial_n);
    first = ps->demand < cfg->credit_window ? ps->demand : cfg->credit_window;
    if (first == 0 && ps->demand) first = 1;
    if (ps->demand != UINT64_MAX) ps->demand -= first;
    ps->outstanding = first;
  }
  switch (model) {
  case GW_RR: sid = rs_pool_request_response(pool, &p, ps, &ps->back); break;
  case GW_STREAM: sid = rs_pool_request_stream(pool, &p, first, ps, &ps->back); break;
  default: sid = rs_pool_request_channel(pool, &p, first, req->complete, ps, &ps->back); break;
  }
  free(heap);
  if (sid < 0) {
    free(ps);
    refuse(c, req->stream_id, route, RS_ERROR_REJECTED, "UNAVAILABLE",
           "no backend can take the request now: %s",
           sid == RS_ERR_UNAVAILABLE ? "none is connected or has lease" : rs_strerror((int)sid));
    return;
  }
  ps->bsid = (uint32_t)sid;
  ps->front_open = ps->back_open = true;
  rs_conn_stream_set_user(c->conn, req->stream_id, ps);
  c->streams++;
  ps->c_next = c->open;
  if (c->open) c->open->c_prev = ps;
  c->open = ps;
  GW_ADD(gw->stats.streams_open[model - 1], 1);
  if (model == GW_RR) {
    c->rr_open++;
    if (cfg->request_timeout_ms) timeout_add(gw, ps);
  }
  wait_backend(c, ps->back);
}

static void send_fnf(gw_rsclient *c, const rs_request *req) {
  gw_gateway *gw = c->gw;
  long index = find_route(c, &req->payload, 0, GW_M_FNF);
  if (index < 0) return;
  long route = gw_route_slot(gw, index);
  uint8_t *buf = NULL, *heap = NULL;
  rs_ssize mlen = make_metadata(c, &req->payload, &buf, &heap);
  if (mlen >= 0) {
    rs_payload p = {
        .has_metadata = true, .metadata = {buf, (size_t)mlen}, .data = req->payload.data};
    rs_conn *back = NULL;
    if (rs_pool_request_fnf(gw_route_pool(gw, index), &p, &back) < 0)
      count_error(gw, route, "UNAVAILABLE"); /* nobody to tell: fire-and-forget */
    else
      wait_backend(c, back);
  } else {
    count_error(gw, route, "BAD_REQUEST");
  }
  free(heap);
}

/* --rate-limit: false (and the request refused, or dropped and counted) when the client's
 * bucket is empty. */
static bool rate_ok(gw_rsclient *c, uint32_t sid) {
  gw_gateway *gw = c->gw;
  uint32_t rate = gw->cfg->rate_limit;
  if (gw_rate_take(&c->rate, rate, uv_now(gw->loop))) return true;
  if (sid)
    refuse(c, sid, -1, RS_ERROR_REJECTED, "RATE_LIMITED",
           "over %" PRIu32 " requests per second (--rate-limit)", rate);
  else
    count_error(gw, -1, "RATE_LIMITED"); /* fire-and-forget, metadata-push: dropped */
  return false;
}

static int on_request(rs_conn *conn, const rs_request *req, void *user) {
  (void)conn;
  gw_rsclient *c = user;
  if (!c) return 1;
  int model = model_of(req->type);
  if (!rate_ok(c, model ? req->stream_id : 0)) return 0;
  if (model)
    open_stream(c, req, (gw_model)model);
  else
    send_fnf(c, req);
  return 0;
}

/* The client's half of a channel: elements, completion. */
static void on_payload(rs_conn *conn, uint32_t sid, void *stream_user, const rs_payload *p,
                       unsigned flags, void *user) {
  (void)conn, (void)sid, (void)user;
  gw_pstream *ps = stream_user;
  if (!ps || !ps->back_open) return;
  bool complete = (flags & RS_PAYLOAD_COMPLETE) != 0;
  if (flags & RS_PAYLOAD_NEXT)
    rs_conn_send_payload(ps->back, ps->bsid, p, complete);
  else if (complete)
    rs_conn_send_complete(ps->back, ps->bsid);
  if (ps->client) wait_backend(ps->client, ps->back);
}

static void on_request_n(rs_conn *conn, uint32_t sid, void *stream_user, uint64_t n, void *user) {
  (void)conn, (void)sid, (void)user;
  gw_pstream *ps = stream_user;
  if (!ps || !ps->back_open) return;
  demand_add(ps, n);
  credit_top_up(ps);
  if (ps->client) wait_backend(ps->client, ps->back);
}

static void on_cancel(rs_conn *conn, uint32_t sid, void *stream_user, void *user) {
  (void)conn, (void)sid, (void)user;
  gw_pstream *ps = stream_user;
  if (ps && ps->back_open) rs_conn_cancel(ps->back, ps->bsid);
}

/* The client ended the stream with an ERROR (its half of a channel), or the stream ended on the
 * client's side for another reason (its connection is gone, a limit). */
static void on_error(rs_conn *conn, uint32_t sid, void *stream_user, const rs_stream_error *e,
                     void *user) {
  (void)conn, (void)sid, (void)user;
  gw_pstream *ps = stream_user;
  if (!ps || !ps->back_open) return;
  if (e->remote && ps->model == GW_CHANNEL &&
      rs_conn_send_error(ps->back, ps->bsid, e->code, e->message) == 0)
    return;
  rs_conn_cancel(ps->back, ps->bsid);
}

static void on_stream_closed(rs_conn *conn, uint32_t sid, void *stream_user, void *user) {
  (void)conn, (void)sid;
  gw_rsclient *c = user;
  gw_pstream *ps = stream_user;
  if (!ps || !c) return;
  c->streams--;
  bool rr = ps->model == GW_RR;
  *(ps->c_prev ? &ps->c_prev->c_next : &c->open) = ps->c_next;
  if (ps->c_next) ps->c_next->c_prev = ps->c_prev;
  timeout_remove(c->gw, ps);
  ps->front_open = false;
  ps->client = NULL;
  if (ps->back_open) rs_conn_cancel(ps->back, ps->bsid); /* nothing if it is over already */
  pstream_maybe_free(ps);
  /* Draining: the last request-response answered, the client goes. */
  if (rr && --c->rr_open == 0 && c->draining) drain_close(c, "the gateway is shutting down");
}

/* METADATA_PUSH from a client: to every connected backend of the route its metadata names
 * (one connection each), with the client entry added like a request's. Without a route, or
 * with no backend connected, it is dropped and counted: METADATA_PUSH has no answer. A push that
 * fills a backend connection pauses the client like a fire-and-forget does (wait_backend). */
static void on_metadata_push(rs_conn *conn, rs_bytes metadata, void *user) {
  (void)conn;
  gw_rsclient *c = user;
  if (!c || !rate_ok(c, 0)) return;
  gw_gateway *gw = c->gw;
  rs_payload p = {.has_metadata = true, .metadata = metadata};
  long index = find_route(c, &p, 0, -1);
  if (index < 0) return;
  long route = gw_route_slot(gw, index);
  uint8_t *buf = NULL, *heap = NULL;
  rs_conn *full = NULL;
  rs_ssize mlen = make_metadata(c, &p, &buf, &heap);
  rs_ssize sent = mlen >= 0 ? rs_pool_metadata_push(gw_route_pool(gw, index),
                                                    (rs_bytes){buf, (size_t)mlen}, &full)
                            : -1;
  if (sent <= 0) count_error(gw, route, mlen < 0 ? "BAD_REQUEST" : "UNAVAILABLE");
  free(heap);
  wait_backend(c, full); /* no flow control: a flood waits until the backend drains */
}

/* ---- the connection ---- */

static void session_hex(const gw_rsclient *c, char out[20]) {
  snprintf(out, 20, "%016" PRIx64, c->session_id);
}

/* The bearer token of a SETUP's authentication metadata (in composite metadata, or the whole
 * metadata when that is the connection's metadata MIME), NUL-terminated into `out`. Returns 0,
 * -1 with the reason in `why`, or -2 when the SETUP has no authentication metadata. */
static int setup_token(const rs_setup_info *s, char *out, size_t cap, char *why, size_t whylen) {
  const char *auth_mime = RS_MIME_AUTHENTICATION;
  rs_bytes md = s->payload.has_metadata ? s->payload.metadata : (rs_bytes){0};
  rs_bytes content = {0};
  bool found = false;
  if (bytes_is(s->metadata_mime, RS_MIME_COMPOSITE_METADATA)) {
    rs_composite_iter it;
    rs_composite_entry e;
    rs_composite_iter_init(&it, md.ptr, md.len);
    while (!found && rs_composite_next(&it, &e) == 1)
      if (bytes_is(e.mime, auth_mime)) content = e.content, found = true;
  } else if (bytes_is(s->metadata_mime, auth_mime)) {
    content = md, found = true;
  }
  rs_auth a;
  if (!found) {
    snprintf(why, whylen,
             "authentication required: a bearer token in the SETUP's authentication metadata "
             "(%s) or ?token= on the URL",
             auth_mime);
    return -2;
  }
  if (rs_auth_decode(&a, content.ptr, content.len) != 0 || !bytes_is(a.type, "bearer")) {
    snprintf(why, whylen, "authentication refused: a bearer token is required");
    return -1;
  }
  if (a.payload.len == 0 || a.payload.len >= cap) {
    snprintf(why, whylen, "token refused: malformed");
    return -1;
  }
  memcpy(out, a.payload.ptr, a.payload.len);
  out[a.payload.len] = '\0';
  return 0;
}

/* The lease granted to every client that asked for lease, every second: the share of the
 * backends' capacity this worker can use now, times --max-streams-per-client requests. */
static uint32_t lease_permits(gw_gateway *gw) {
  double usable, total;
  gw_backend_capacity(gw, &usable, &total);
  if (usable <= 0 || total <= 0) return 0;
  double permits = (double)gw->cfg->max_streams * usable / total;
  return permits < 1 ? 1 : (uint32_t)(permits + 0.5);
}

static void grant_lease(gw_rsclient *c, uint32_t permits) {
  rs_conn_send_lease(c->conn, LEASE_TTL_MS, permits, NULL, 0);
}

static void lease_tick(uv_timer_t *t) {
  gw_gateway *gw = t->data;
  uint32_t permits = UINT32_MAX;
  for (gw_rsclient *c = gw->rs_clients; c; c = c->next) {
    if (!c->lease) continue;
    if (permits == UINT32_MAX) permits = lease_permits(gw);
    grant_lease(c, permits);
  }
}

void gw_pt_start(gw_gateway *gw) {
  uv_timer_start(&gw->pt_lease, lease_tick, LEASE_PERIOD_MS, LEASE_PERIOD_MS);
}

/* With authentication on: the token of the SETUP's authentication metadata or, when it has
 * none, the ?token= of the upgrade's URL (the SETUP's wins when both are given). A SETUP larger
 * than the JSON protocol's limit before authentication (GW_PREAUTH_MAX) is refused before its
 * token is looked at. Returns 0 (authenticated), or -1 after refusing the SETUP
 * (REJECTED_SETUP with the reason). */
static int authenticate(gw_rsclient *c, const rs_setup_info *s) {
  gw_gateway *gw = c->gw;
  char *token = malloc(RS_GW_TOKEN_MAX + 1), why[200];
  int rc = -1;
  size_t size = s->payload.data.len + (s->payload.has_metadata ? s->payload.metadata.len : 0);
  if (!token) {
    snprintf(why, sizeof why, "out of memory");
  } else if (size > GW_PREAUTH_MAX) {
    snprintf(why, sizeof why,
             "SETUP too big before authentication: %zu bytes of metadata and data (at most %d)",
             size, GW_PREAUTH_MAX);
  } else {
    rc = setup_token(s, token, RS_GW_TOKEN_MAX + 1, why, sizeof why);
    if (rc == -2 && c->url_token) {
      snprintf(token, RS_GW_TOKEN_MAX + 1, "%s", c->url_token);
      rc = 0;
    }
  }
  if (rc == 0) rc = gw_auth_check(gw->cfg, token, &c->user, &c->claims, why, sizeof why);
  free(token);
  free(c->url_token);
  c->url_token = NULL;
  if (rc != 0) {
    rs_conn_reject_setup(c->conn, rs_bytes_str(why));
    return -1;
  }
  char sid[20];
  session_hex(c, sid);
  gw_log(gw->cfg, "client_auth", "session", sid, "user", c->user, NULL);
  return 0;
}

static int on_setup(rs_conn *conn, const rs_setup_info *s, void *user) {
  gw_rsclient *c = user;
  if (!c) return 1;
  gw_gateway *gw = c->gw;
  char sid[20];
  session_hex(c, sid);
  c->opened = true;
  gw_log(gw->cfg, "client_open", "session", sid, "peer", rs_runtime_peer(conn), "protocol",
         "rsocket", NULL);
  c->composite = bytes_is(s->metadata_mime, RS_MIME_COMPOSITE_METADATA);
  c->md_mime_id = (int8_t)rs_mime_id((const char *)s->metadata_mime.ptr, s->metadata_mime.len);
  if (!bytes_is(s->data_mime, "application/json")) {
    rs_ssize n = rs_data_mime_encode(c->dmime, sizeof c->dmime, (const char *)s->data_mime.ptr,
                                     s->data_mime.len);
    c->dmime_len = n > 0 ? (uint8_t)n : 0;
  }
  if (gw_auth_enabled(gw->cfg) && authenticate(c, s) != 0) return 1;
  c->lease = s->lease;
  if (c->lease) grant_lease(c, lease_permits(gw));
  return 0;
}

static void on_close(rs_conn *conn, const rs_close_info *info, void *user) {
  (void)conn;
  gw_rsclient *c = user;
  if (!c) return;
  snprintf(c->why, sizeof c->why, "%.*s", (int)(info->message.len > 150 ? 150 : info->message.len),
           info->message.ptr ? (const char *)info->message.ptr : "");
  c->why_remote = info->remote;
}

const rs_conn_callbacks gw_pt_callbacks = {
    .struct_size = sizeof(rs_conn_callbacks),
    .on_setup = on_setup,
    .on_close = on_close,
    .on_request = on_request,
    .on_payload = on_payload,
    .on_request_n = on_request_n,
    .on_cancel = on_cancel,
    .on_error = on_error,
    .on_stream_closed = on_stream_closed,
    .on_metadata_push = on_metadata_push,
};

void *gw_pt_connect(rs_server *server, rs_conn *conn, void *server_user) {
  (void)server, (void)server_user;
  gw_gateway *gw = rs_runtime_worker_user(conn);
  gw_rsclient *c = gw ? calloc(1, sizeof *c) : NULL;
  if (!c) {
    rs_conn_abort(conn, rs_bytes_str("out of memory"));
    return NULL;
  }
  c->gw = gw;
  c->conn = conn;
  c->session_id = gw_session_new(gw);
  gw_rate_init(&c->rate, gw->cfg->rate_limit, uv_now(gw->loop));
  const char *token = gw_client_url_token_take();
  if (token && gw_auth_enabled(gw->cfg)) c->url_token = strdup(token); /* NULL: none then */
  c->next = gw->rs_clients;
  if (c->next) c->next->prev = c;
  gw->rs_clients = c;
  GW_ADD(gw->stats.rs_clients, 1);
  GW_ADD(gw->stats.rs_clients_total, 1);
  size_t n = atomic_fetch_add(gw->clients, 1) + 1;
  if (gw->cfg->max_clients && n > gw->cfg->max_clients)
    rs_conn_abort(conn, rs_bytes_str("too many clients: try again later"));
  return c;
}

void gw_pt_disconnect(rs_server *server, rs_conn *conn, void *conn_user, void *server_user) {
  (void)server, (void)conn, (void)server_user;
  gw_rsclient *c = conn_user;
  if (!c) return;
  gw_gateway *gw = c->gw;
  if (c->opened) {
    char sid[20];
    session_hex(c, sid);
    gw_log(gw->cfg, "client_close", "session", sid, "protocol", "rsocket", "reason", c->why, "by",
           c->why_remote ? "client" : "gateway", NULL);
  }
  *(c->prev ? &c->prev->next : &gw->rs_clients) = c->next;
  if (c->next) c->next->prev = c->prev;
  unlink_waiting(c);
  atomic_fetch_sub(gw->clients, 1);
  GW_ADD(gw->stats.rs_clients, (uint64_t)-1);
  free(c->url_token);
  free(c->entry);
  free(c->user);
  free(c->claims);
  free(c);
}

/* A draining client goes: its streams still open end with CANCELED "UNAVAILABLE: …" (their
 * backend streams are cancelled), then CONNECTION_CLOSE, and the connection closes. */
static void drain_close(gw_rsclient *c, const char *why) {
  c->draining = false;
  if (c->waiting) { /* read again: the close lingers over its input instead of cutting it */
    unlink_waiting(c);
    rs_runtime_pause_reading(c->conn, false);
  }
  for (gw_pstream *ps = c->open, *next; ps; ps = next) {
    next = ps->c_next;
    timeout_remove(c->gw, ps);
    if (ps->back_open) rs_conn_cancel(ps->back, ps->bsid);
    refuse(c, ps->fsid, ps->route, RS_ERROR_CANCELED, "UNAVAILABLE", "%s", why);
  }
  rs_conn_close(c->conn, rs_bytes_str("the gateway is shutting down"));
}

/* Like JSON clients: a client without a request-response in flight goes now, the others once
 * their last one is answered (subscriptions and channels do not hold it: the client opens them
 * again elsewhere), all by --drain-timeout. */
void gw_pt_drain_all(gw_gateway *gw) {
  gw->pt_drain_at = uv_now(gw->loop) + gw->cfg->drain_timeout_ms;
  for (gw_rsclient *c = gw->rs_clients; c; c = c->next) {
    if (c->rr_open)
      c->draining = true;
    else
      drain_close(c, "the gateway is shutting down");
  }
  timer_arm(gw);
}

/* ---- pushes (push.c) ---- */

size_t gw_rsclients_push(gw_gateway *gw, int kind, uint64_t session, rs_bytes user, rs_bytes route,
                         rs_bytes data) {
  uint8_t routing[RS_GW_ROUTE_MAX + 1], md[RS_GW_ROUTE_MAX + 16];
  rs_ssize rn = rs_routing_encode(routing, sizeof routing, &route, 1);
  if (rn <= 0) return 0;
  rs_ssize cn = rs_composite_encode(md, sizeof md, RS_MIME_ROUTING, strlen(RS_MIME_ROUTING),
                                    routing, (size_t)rn);
  size_t reached = 0;
  for (gw_rsclient *c = gw->rs_clients; c; c = c->next) {
    if (!c->opened || c->slow) continue;
    if (kind == GW_PUSH_SESSION && c->session_id != session) continue;
    if (kind == GW_PUSH_USER &&
        (!c->user || strlen(c->user) != user.len || memcmp(c->user, user.ptr, user.len) != 0))
      continue;
    /* The route as the client reads metadata: composite, plain routing, or none. */
    rs_payload p = {.data = data};
    const rs_conn_settings *set = rs_conn_get_settings(c->conn);
    if (c->composite && cn > 0) {
      p.metadata = (rs_bytes){md, (size_t)cn};
      p.has_metadata = true;
    } else if (bytes_is(set->metadata_mime, RS_MIME_ROUTING)) {
      p.metadata = (rs_bytes){routing, (size_t)rn};
      p.has_metadata = true;
    }
    if (rs_conn_request_fnf(c->conn, &p) >= 0) reached++;
  }
  return reached;
}
