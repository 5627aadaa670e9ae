/* WebSocket as a runtime session: handshake, then frames, then the inner protocol. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt_internal.h"
#include "runtime/ws_transport.h"

#define HANDSHAKE_TIMEOUT_MS 10000u
#define HS_OUT_CAP           2048u
#define HS_BUF_FIRST         1024u /* first size of a head buffer (a head that came in pieces) */
#define PULL_HIGH_WATER      (1u << 20) /* stop moving inner output while this much is queued */

enum { HS_SERVER_WAIT, HS_CLIENT_WAIT, HS_DONE, HS_REJECTED };

/* What only the opening handshake needs, freed once it is done and its bytes are written (an
 * open WebSocket keeps none of it: idle connections are what a gateway has most of). A head that
 * arrives in one read (the common case) is parsed where it is, in the loop's read buffer; only
 * one that comes in pieces is gathered in `buf`. Everything here is small and exactly sized: a
 * gateway accepting thousands of clients at once would otherwise leave the holes of large
 * temporary blocks between the long-lived ones. */
typedef struct rt_ws_hs {
  const rs_ws_transport_options *o; /* borrowed from the server or the client, which outlive it */
  const char *path; /* server: the only path served (NULL: any); client: the one asked for.
                       Borrowed from the server's or client's URI. */
  uint64_t deadline;
  rs_ws_deflate deflate; /* negotiated */
  char key[25];          /* client: Sec-WebSocket-Key */
  rt_pending pending;    /* server: on the worker's list of undecided connections (rt_ws_pending) */
  char *out;             /* the request, the 101, or a refusal or HTTP answer to send (malloc'd) */
  uint32_t out_len, out_off;
  uint32_t len, cap; /* of `buf` */
  uint8_t *buf;      /* the part of a request or response head read so far (NULL: none) */
} rt_ws_hs;

struct rt_ws {
  rs_io_conn *io;
  const rt_ws_inner_ops *ops;
  void *inner;
  rs_ws_conn *ws;
  rt_ws_hs *h; /* NULL once the handshake is over */
  /* Chosen (server) or offered (client): the options' subprotocol, a copy of the server hook's
   * choice (protocol_owned), or NULL. */
  const char *protocol;
  uint64_t closing_since;
  /* Zero-copy output (see rt_ws_inner_ops.direct_pending): the header of each message is written
   * in its headroom. `direct_off` bytes (header included) of the first message are written;
   * `lay_ws` bytes of the WebSocket's own queue come after that message and before the others
   * in the current output layout (see direct_consumed). */
  uint32_t direct_off; /* a message is at most a frame: 16 MiB */
  uint32_t lay_ws;     /* only what the WebSocket queued itself (pongs, close) */
  uint8_t hs;
  bool server : 1;
  bool protocol_owned : 1;
  bool deflate_on : 1; /* permessage-deflate was negotiated */
  bool direct : 1;
  bool late_messages : 1; /* deliver messages that arrive after our close (rt_ws_attach_client) */
  bool in_place : 1;      /* in memory of the caller's (rt_ws_attach_in): not freed here */
};

static const rs_ws_transport_options no_options;

/* The loop's time, which recv and expire are also given. */
static uint64_t now_of(const rt_ws *w) {
  return uv_now(rs_io_conn_uv(w->io));
}

static void ws_on_message(rs_ws_conn *c, int op, const uint8_t *d, size_t len, void *user) {
  rt_ws *w = user;
  uint64_t now = now_of(w);
  if (rs_ws_conn_closing(c) && !w->late_messages) return; /* the inner protocol is done */
  if (w->ops->on_message(w->inner, w, op, d, len, now) != 0 && !rs_ws_conn_closing(c))
    rs_ws_conn_close(c, RS_WS_CLOSE_UNSUPPORTED, "unsupported message", now);
}

static void ws_on_close(rs_ws_conn *c, unsigned code, rs_bytes reason, bool remote, void *user) {
  (void)c;
  rt_ws *w = user;
  if (w->ops->on_ws_close) w->ops->on_ws_close(w->inner, code, reason, remote);
}

static const rs_ws_callbacks ws_cbs = {ws_on_message, NULL, ws_on_close};

static void choose_direct(rt_ws *w) {
  w->direct = w->server && !w->deflate_on && w->ops->direct_pending && w->ops->direct_consumed;
  w->direct_off = 0;
}

static int make_ws(rt_ws *w) {
  rs_ws_options wo = {
      .server = w->server, .max_message = w->h->o->max_message, .deflate = w->h->deflate};
  w->deflate_on = w->h->deflate.enabled;
  w->ws = rs_ws_conn_new(&wo, &ws_cbs, w, NULL);
  choose_direct(w);
  return w->ws ? 0 : RS_ERR_NOMEM;
}

/* Sets the handshake's output to a copy of out[0..n) (n <= 0: nothing). 0 or RS_ERR_NOMEM. */
static int set_out(rt_ws_hs *h, const char *out, rs_ssize n) {
  free(h->out);
  h->out = NULL;
  h->out_len = h->out_off = 0;
  if (n <= 0) return 0;
  if (!(h->out = malloc((size_t)n))) return RS_ERR_NOMEM;
  memcpy(h->out, out, (size_t)n);
  h->out_len = (uint32_t)n;
  return 0;
}

static void reject(rt_ws *w, int status, const char *reason) {
  char out[HS_OUT_CAP];
  set_out(w->h, out, rs_ws_response_error(out, sizeof out, status, reason)); /* NOMEM: no answer */
  w->hs = HS_REJECTED;
}

/* Server: does the request target name the served path? A query string is not part of it. */
static bool path_served(rs_bytes target, const char *path) {
  size_t tl = 0, pl = strcspn(path, "?#");
  while (tl < target.len && target.ptr[tl] != '?' && target.ptr[tl] != '#') tl++;
  return tl == pl && memcmp(target.ptr, path, pl) == 0;
}

/* Client: the server answered with something other than 101; say what, from its status line. */
static void refused(rt_ws *w, const uint8_t *head, size_t have) {
  char line[160];
  size_t n = 0;
  while (n < have && n < sizeof line - 1 && head[n] != '\r' && head[n] != '\n') {
    uint8_t c = head[n];
    line[n++] = c >= ' ' && c < 0x7f ? (char)c : '?';
  }
  line[n] = '\0';
  char why[300];
  snprintf(why, sizeof why, "the server refused the WebSocket upgrade of %.100s: %s",
           w->h->path && *w->h->path ? w->h->path : "/", line);
  rs_io_conn_abort(w->io, RS_ERR_REJECTED, why);
}

/* Server: chooses the subprotocol (the configured one, if the client offered it). */
static void choose_protocol(rt_ws *w, const rs_ws_request *req) {
  const char *mine = w->h->o->subprotocol;
  w->protocol = NULL;
  if (mine && req->protocols.ptr && rs_ws_header_has_token(req->protocols, mine))
    w->protocol = mine;
}

/* Client: why the handshake failed. A server that answered with another status than 101 is named
 * by its status line ("HTTP/1.1 404 Not Found"), which says more than "not 101" to whoever reads
 * the message. */
static void refusal_reason(const uint8_t *head, size_t len, const char *why, char *out,
                           size_t cap) {
  if (!why) why = "bad WebSocket handshake response";
  size_t n = 0;
  if (len >= 12 && memcmp(head, "HTTP/1.", 7) == 0 && memcmp(head + 9, "101", 3) != 0) {
    while (n < len && n < 60 && head[n] >= 0x20 && head[n] < 0x7f) n++;
    snprintf(out, cap, "the server refused the WebSocket upgrade: %.*s", (int)n,
             (const char *)head);
    return;
  }
  snprintf(out, cap, "%s", why);
}

/* Server: a request without "Upgrade: websocket" goes to the inner's decide hook, which may
 * answer it as plain HTTP; otherwise it gets the answer of a failed upgrade. */
static void plain_http(rt_ws *w, const uint8_t *head, size_t have) {
  rs_http_request hreq;
  char peer[RS_IO_PEER_MAX];
  rs_io_conn_peer_format(w->io, peer, sizeof peer);
  rt_ws_verdict v = {0};
  if (rs_http_request_parse(&hreq, head, have, peer) > 0) w->ops->decide(w->inner, w, &hreq, &v);
  if (!v.http) {
    reject(w, 400, "missing 'Upgrade: websocket'");
    return;
  }
  free(w->h->out);
  w->h->out = v.http;
  w->h->out_len = (uint32_t)v.http_len; /* at most RS_HTTP_MAX_BODY and a head */
  w->h->out_off = 0;
  w->hs = HS_REJECTED;
}

/* Server: what to do with a valid upgrade: the default (the served path is this server's,
 * others get 404; the configured subprotocol when offered), then the inner's decide hook.
 * Returns 0 to go on with the 101, or 1 when the request was refused. */
static int decide(rt_ws *w, const rs_ws_request *req, const uint8_t *head, size_t have) {
  rt_ws_verdict v = {0};
  choose_protocol(w, req);
  v.d.subprotocol = w->protocol;
  if (w->h->path && !path_served(req->path, w->h->path)) {
    v.d.verdict = RS_WS_REFUSE;
    v.d.status = 404;
    v.d.reason = "no WebSocket endpoint at this path";
  }
  rs_http_request hreq;
  char peer[RS_IO_PEER_MAX];
  rs_io_conn_peer_format(w->io, peer, sizeof peer);
  if (w->ops->decide && rs_http_request_parse(&hreq, head, have, peer) > 0)
    w->ops->decide(w->inner, w, &hreq, &v);
  free(v.http); /* only for plain HTTP */
  if (v.d.verdict == RS_WS_REFUSE) {
    int status = v.d.status >= 400 && v.d.status <= 599 ? v.d.status : 403;
    reject(w, status, v.d.reason ? v.d.reason : rs_http_status_text(status));
    return 1;
  }
  w->protocol = NULL;
  if (v.d.subprotocol) {
    if (!rs_ws_header_has_token(req->protocols, v.d.subprotocol)) {
      reject(w, 500, "the server chose a subprotocol the client did not offer");
      return 1;
    }
    if (v.d.subprotocol != w->h->o->subprotocol) {
      char *copy = strdup(v.d.subprotocol);
      if (!copy) {
        reject(w, 503, "out of memory");
        return 1;
      }
      w->protocol = copy;
      w->protocol_owned = true;
    } else {
      w->protocol = w->h->o->subprotocol;
    }
  }
  return 0;
}

static bool has_head_end(const uint8_t *p, size_t n) {
  for (size_t i = 3; i < n; i++)
    if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r') return true;
  return false;
}

static void hs_free(rt_ws *w) {
  if (!w->h) return;
  rt_pending_remove(&w->h->pending);
  free(w->h->out);
  free(w->h->buf);
  free(w->h);
  w->h = NULL;
}

/* Adds buf[0..take) to the head gathered in h->buf (at most RS_WS_MAX_HANDSHAKE bytes in all).
 * 0 or RS_ERR_NOMEM. */
static int gather(rt_ws_hs *h, const uint8_t *buf, size_t take) {
  size_t have = h->len + take;
  if (have > h->cap) {
    size_t cap = h->cap ? h->cap : HS_BUF_FIRST;
    while (cap < have) cap *= 2;
    if (cap > RS_WS_MAX_HANDSHAKE) cap = RS_WS_MAX_HANDSHAKE;
    uint8_t *nb = realloc(h->buf, cap);
    if (!nb) return RS_ERR_NOMEM;
    h->buf = nb;
    h->cap = (uint32_t)cap;
  }
  memcpy(h->buf + h->len, buf, take);
  h->len = (uint32_t)have;
  return 0;
}

/* An incomplete head: the bytes of this read are kept for the next (those of earlier reads
 * were gathered already). */
static int incomplete(rt_ws_hs *h, const uint8_t *buf, size_t take, size_t had, size_t *used) {
  *used = take;
  return had ? 0 : gather(h, buf, take);
}

static int handshake(rt_ws *w, const uint8_t *buf, size_t len, size_t *used) {
  rt_ws_hs *h = w->h;
  *used = 0;
  size_t had = h->len; /* bytes of the head from earlier reads */
  size_t take = len < RS_WS_MAX_HANDSHAKE - had ? len : RS_WS_MAX_HANDSHAKE - had;
  size_t have = had + take;
  /* The head so far: where it arrived when this read has all of it, else gathered. */
  const uint8_t *head = buf;
  if (had > 0) {
    int rc = gather(h, buf, take);
    if (rc != 0) return rc;
    head = h->buf;
  }
  if (w->hs == HS_SERVER_WAIT) {
    rs_ws_request req;
    rs_ssize hl = rs_ws_request_parse(&req, head, have);
    if (hl == 0) {
      if (have == RS_WS_MAX_HANDSHAKE) {
        reject(w, 431, "request head too large");
        return 0;
      }
      return incomplete(h, buf, take, had, used);
    }
    if (hl < 0) {
      bool too_long = have == RS_WS_MAX_HANDSHAKE && !has_head_end(head, have);
      if (too_long)
        reject(w, 431, "request head too large");
      else
        reject(w, 400, "malformed HTTP request");
      return 0;
    }
    if (!req.upgrade_websocket && w->ops->decide) {
      plain_http(w, head, have);
      return 0;
    }
    const char *why = NULL;
    int status = rs_ws_request_check(&req, &why);
    if (status) {
      reject(w, status, why);
      return 0;
    }
    if (decide(w, &req, head, have) != 0) return 0;
    char ext[160], out[HS_OUT_CAP];
    bool deflate =
        h->o->deflate && rs_ws_deflate_negotiate(req.extensions, &h->deflate, ext, sizeof ext);
    rs_ssize n = rs_ws_response_101(out, sizeof out, &req, w->protocol, deflate ? ext : NULL);
    if (n < 0 || set_out(h, out, n) != 0 || make_ws(w) != 0) return RS_ERR_NOMEM;
    w->hs = HS_DONE;
    *used = (size_t)hl - had;
  } else {
    const char *why = NULL;
    rs_bytes ext = {NULL, 0};
    rs_ssize hl = rs_ws_client_response_check(head, have, h->key, w->protocol,
                                              h->o->deflate ? &ext : NULL, &why);
    if (hl > 0 && rs_ws_deflate_client_accept(ext, &h->deflate) != 0) {
      why = "server answered permessage-deflate with parameters we cannot use";
      hl = RS_ERR_REJECTED;
    }
    if (hl == 0) {
      if (have == RS_WS_MAX_HANDSHAKE) return RS_ERR_PROTOCOL;
      return incomplete(h, buf, take, had, used);
    }
    if (hl == RS_ERR_REJECTED && have > 12 && memcmp(head + 9, "101", 3) != 0) {
      refused(w, head, have);
      return RS_ERR_REJECTED;
    }
    if (hl < 0) {
      char reason[128];
      refusal_reason(head, have, why, reason, sizeof reason);
      rs_io_conn_abort(w->io, RS_ERR_PROTOCOL, reason);
      return RS_ERR_PROTOCOL;
    }
    if (make_ws(w) != 0) return RS_ERR_NOMEM;
    w->hs = HS_DONE;
    *used = (size_t)hl - had;
  }
  if (h->out_off == h->out_len) hs_free(w); /* client: the request was written long ago */
  w->ops->on_open(w->inner, w);
  return 0;
}

/* ---- io session ops ---- */

static int s_recv(void *s, const uint8_t *buf, size_t len, uint64_t now) {
  rt_ws *w = s;
  if (w->hs == HS_REJECTED) return 0;
  if (w->hs != HS_DONE) {
    size_t used;
    int rc = handshake(w, buf, len, &used);
    if (rc < 0) return rc;
    if (w->hs != HS_DONE) return 0;
    buf += used;
    len -= used;
    if (len == 0) return 0;
  }
  return rs_ws_conn_recv(w->ws, buf, len, now);
}

static int s_pending(void *s, rs_io_vec *iov, int max) {
  rt_ws *w = s;
  int n = 0;
  if (max < 1) return 0;
  if (w->h && w->h->out_off < w->h->out_len) {
    iov[n].base = (const uint8_t *)w->h->out + w->h->out_off;
    iov[n].len = w->h->out_len - w->h->out_off;
    n++;
  }
  if (w->hs != HS_DONE || n == max) return n;
  if (w->ops->before_output) w->ops->before_output(w->inner, w);
  if (!w->direct && !rs_ws_conn_closing(w->ws) && rs_ws_conn_queued(w->ws) < PULL_HIGH_WATER)
    w->ops->pull(w->inner, w);
  if (!rs_ws_conn_closing(w->ws) && w->ops->want_close(w->inner))
    rs_ws_conn_close(w->ws, RS_WS_CLOSE_NORMAL, NULL, now_of(w));
  rs_bytes out;
  bool have_ws = rs_ws_conn_pending(w->ws, &out) && out.len > 0;
  if (!w->direct) {
    if (have_ws) {
      iov[n].base = out.ptr;
      iov[n].len = out.len;
      n++;
    }
    return n;
  }
  /* Zero-copy: a message already partly written must be finished first; then the WebSocket's
   * own frames (pongs, close); then whole messages, unless a close frame was queued. */
  rs_iov fr[RS_IO_MAX_IOV];
  int k = w->ops->direct_pending(w->inner, fr, max - n < RS_IO_MAX_IOV ? max - n : RS_IO_MAX_IOV);
  int i = 0;
  w->lay_ws = 0;
  if (w->direct_off > 0 && k > 0) {
    size_t hl = rs_ws_frame_header_size(false, fr[0].len);
    rs_ws_frame_header_write(fr[0].base - hl, true, RS_WS_OP_BINARY, false, NULL, fr[0].len);
    iov[n].base = fr[0].base - hl + w->direct_off;
    iov[n].len = hl + fr[0].len - w->direct_off;
    n++;
    i = 1;
  }
  if (have_ws && n < max) {
    iov[n].base = out.ptr;
    iov[n].len = out.len;
    n++;
    w->lay_ws = (uint32_t)out.len;
  }
  if (rs_ws_conn_closing(w->ws)) return n;
  for (; i < k && n < max; i++) {
    size_t hl = rs_ws_frame_header_size(false, fr[i].len);
    rs_ws_frame_header_write(fr[i].base - hl, true, RS_WS_OP_BINARY, false, NULL, fr[i].len);
    iov[n].base = fr[i].base - hl;
    iov[n].len = hl + fr[i].len;
    n++;
  }
  return n;
}

/* Zero-copy: `n` more bytes of the current layout were written. The layout is the rest of the
 * first message when direct_off > 0, then lay_ws bytes of the WebSocket's queue, then whole
 * messages; a write may stop anywhere and continue later with the same layout (the transport
 * finishes an async write without asking s_pending again), so the state is kept exact. */
static void direct_consumed(rt_ws *w, size_t n) {
  rs_iov fr[RS_IO_MAX_IOV];
  int k = w->ops->direct_pending(w->inner, fr, RS_IO_MAX_IOV);
  int i = 0;
  if (w->direct_off > 0 && k > 0) {
    size_t total = rs_ws_frame_header_size(false, fr[0].len) + fr[0].len;
    size_t take = n < total - w->direct_off ? n : total - w->direct_off;
    w->direct_off += (uint32_t)take;
    n -= take;
    if (w->direct_off < total) return;
    w->direct_off = 0;
    w->ops->direct_consumed(w->inner, fr[0].len);
    i = 1;
  }
  size_t ws = n < w->lay_ws ? n : w->lay_ws;
  if (ws) rs_ws_conn_consumed(w->ws, ws);
  n -= ws;
  w->lay_ws -= (uint32_t)ws;
  for (; i < k && n > 0; i++) {
    size_t total = rs_ws_frame_header_size(false, fr[i].len) + fr[i].len;
    if (n < total) {
      w->direct_off = (uint32_t)n; /* the rest of this message comes first from now on */
      return;
    }
    n -= total;
    w->ops->direct_consumed(w->inner, fr[i].len);
  }
}

static void s_consumed(void *s, size_t n) {
  rt_ws *w = s;
  size_t hs = w->h ? w->h->out_len - w->h->out_off : 0;
  if (hs) {
    size_t k = n < hs ? n : hs;
    w->h->out_off += (uint32_t)k;
    n -= k;
    if (w->h->out_off == w->h->out_len && w->hs == HS_DONE)
      hs_free(w); /* an open connection keeps no handshake memory */
  }
  if (!n || !w->ws) return;
  if (w->direct)
    direct_consumed(w, n);
  else
    rs_ws_conn_consumed(w->ws, n);
}

/* When the WebSocket started closing (0: not yet). A peer that reads nothing never receives our
 * close frame behind the output it does not take, so after RS_IO_CLOSE_FLUSH_MS the session is done
 * whatever is still queued (the transport then cuts it if it cannot be written). */
static uint64_t closing_since(rt_ws *w) {
  if (!w->closing_since && w->ws && rs_ws_conn_closing(w->ws)) w->closing_since = now_of(w);
  return w->closing_since;
}

static uint64_t s_deadline(void *s) {
  rt_ws *w = s;
  if (w->hs == HS_SERVER_WAIT || w->hs == HS_CLIENT_WAIT) return w->h->deadline;
  uint64_t d = w->ops->next_deadline(w->inner);
  if (w->ws) {
    uint64_t e = rs_ws_conn_next_deadline(w->ws);
    if (e < d) d = e;
    if (closing_since(w) && w->closing_since + RS_IO_CLOSE_FLUSH_MS < d)
      d = w->closing_since + RS_IO_CLOSE_FLUSH_MS;
  }
  return d;
}

static void s_expire(void *s, uint64_t now) {
  rt_ws *w = s;
  if ((w->hs == HS_SERVER_WAIT || w->hs == HS_CLIENT_WAIT) && now >= w->h->deadline) {
    rs_io_conn_abort(w->io, RS_ERR_TIMEOUT, "WebSocket handshake timed out");
    return;
  }
  w->ops->expire(w->inner, now);
  if (w->ws) rs_ws_conn_handle_expiry(w->ws, now);
}

static bool s_want_close(void *s) {
  rt_ws *w = s;
  if (w->hs == HS_REJECTED) return true; /* once the answer is written (or cannot be) */
  if (w->hs != HS_DONE) return false;
  if (rs_ws_conn_want_close(w->ws)) return true;
  return closing_since(w) && now_of(w) >= w->closing_since + RS_IO_CLOSE_FLUSH_MS;
}

static void s_closed(void *s, int err, const char *reason) {
  rt_ws *w = s;
  hs_free(w); /* first: off the worker's list before the inner protocol's end can finish it */
  w->ops->closed(w->inner, err, reason);
  rs_ws_conn_free(w->ws);
  if (w->protocol_owned) free((char *)(uintptr_t)w->protocol);
  if (!w->in_place) free(w);
}

/* Not output_stable: the WebSocket's queues are growable buffers that a send, or a pong queued
 * while reading, may move. */
static const rs_io_session_ops ws_session_ops = {s_recv,   s_pending,    s_consumed, s_deadline,
                                                 s_expire, s_want_close, s_closed,   false};

static rt_ws *attach(void *place, rs_io_conn *io, bool server, const rs_ws_transport_options *o,
                     const char *host, const char *path, const char *headers, bool late_messages,
                     const rt_ws_inner_ops *ops, void *inner) {
  rt_ws *w = place ? place : calloc(1, sizeof *w);
  if (!w) return NULL;
  w->in_place = place != NULL;
  rt_ws_hs *h = malloc(sizeof *h);
  if (!h) {
    if (!place) free(w);
    return NULL;
  }
  memset(h, 0, sizeof *h);
  w->h = h;
  h->o = o ? o : &no_options;
  h->path = path;
  h->deadline = uv_now(rs_io_conn_uv(io)) + HANDSHAKE_TIMEOUT_MS;
  w->io = io;
  w->server = server;
  w->ops = ops;
  w->inner = inner;
  w->hs = server ? HS_SERVER_WAIT : HS_CLIENT_WAIT;
  w->late_messages = late_messages;
  if (!server) {
    w->protocol = h->o->subprotocol;
    rs_ssize n = -1;
    size_t extra = headers ? strlen(headers) : 0;
    size_t cap = HS_OUT_CAP + extra + (path ? strlen(path) : 0);
    for (size_t i = 0; h->o->headers && h->o->headers[i]; i++) cap += strlen(h->o->headers[i]) + 4;
    h->out = malloc(cap);
    if (h->out && rs_ws_client_key(h->key) == 0)
      n = rs_ws_client_request_headers(h->out, cap - extra, host, path, h->key, w->protocol,
                                       h->o->deflate, h->o->headers);
    if (n >= 2 && extra) { /* the extra lines go before the empty line that ends the head */
      memcpy(h->out + n - 2, headers, extra);
      memcpy(h->out + n - 2 + extra, "\r\n", 2);
      n += (rs_ssize)extra;
    }
    if (n < 0) {
      free(h->out);
      free(h);
      if (!place) free(w);
      return NULL;
    }
    h->out_len = (uint32_t)n;
  }
  rs_io_conn_set_session(io, &ws_session_ops, w);
  return w;
}

rt_ws *rt_ws_attach(rs_io_conn *io, bool server, const rs_ws_transport_options *o, const char *host,
                    const char *path, const rt_ws_inner_ops *ops, void *inner) {
  return attach(NULL, io, server, o, host, path, NULL, false, ops, inner);
}

size_t rt_ws_size(void) {
  return (sizeof(rt_ws) + 7) & ~(size_t)7;
}

rt_ws *rt_ws_attach_in(void *place, rs_io_conn *io, const rs_ws_transport_options *o,
                       const char *path, const rt_ws_inner_ops *ops, void *inner) {
  return attach(place, io, true, o, NULL, path, NULL, false, ops, inner);
}

rt_ws *rt_ws_attach_client(rs_io_conn *io, const rs_ws_transport_options *o, const char *host,
                           const char *path, const char *headers, const rt_ws_inner_ops *ops,
                           void *inner) {
  return attach(NULL, io, false, o, host, path, headers, true, ops, inner);
}

int rt_ws_check_options(const rs_ws_transport_options *o, char *err, size_t errlen) {
  size_t total = 0;
  for (size_t i = 0; o->headers && o->headers[i]; i++) {
    const char *why = NULL;
    if (rs_ws_header_line_check(o->headers[i], &why) != 0) {
      snprintf(err, errlen, "bad WebSocket header '%.100s': %s", o->headers[i], why);
      return RS_ERR_INVALID_ARGUMENT;
    }
    total += strlen(o->headers[i]) + 2;
  }
  if (total > RS_WS_MAX_HANDSHAKE / 2) {
    snprintf(err, errlen, "the extra WebSocket headers are too long (%zu bytes; at most %u)", total,
             RS_WS_MAX_HANDSHAKE / 2);
    return RS_ERR_INVALID_ARGUMENT;
  }
  return 0;
}

int rt_ws_send(rt_ws *w, int opcode, const uint8_t *data, size_t len) {
  if (!w->ws) return RS_ERR_INVALID_STATE;
  int rc = rs_ws_conn_send(w->ws, opcode, data, len);
  if (rc == 0) rs_io_conn_wake(w->io); /* cheap; a no-op while the connection is being flushed */
  return rc;
}

size_t rt_ws_queued(const rt_ws *w) {
  return w->ws ? rs_ws_conn_queued(w->ws) : 0;
}

void rt_ws_set_inner(rt_ws *w, const rt_ws_inner_ops *ops, void *inner) {
  w->ops = ops;
  w->inner = inner;
  /* The previous inner's unsent output is gone with it (a resumption hand-off happens right
   * after the RESUME frame, before any reply was written). */
  if (w->ws) choose_direct(w);
}

rt_pending *rt_ws_pending(rt_ws *w) {
  return w->h ? &w->h->pending : NULL;
}

rs_io_conn *rt_ws_io(rt_ws *w) {
  return w->io;
}

const char *rt_ws_subprotocol(const rt_ws *w) {
  return w->hs == HS_DONE ? w->protocol : NULL;
}

void rt_ws_close(rt_ws *w, unsigned code, const char *reason) {
  if (w->ws) rs_ws_conn_close(w->ws, code, reason, now_of(w));
  rs_io_conn_wake(w->io);
}

void rt_ws_host_header(const rs_uri *uri, char *out, size_t cap) {
  bool default_port = uri->port == (uri->secure ? 443 : 80);
  bool v6 = strchr(uri->host, ':') != NULL;
  if (default_port)
    snprintf(out, cap, v6 ? "[%s]" : "%s", uri->host);
  else
    snprintf(out, cap, v6 ? "[%s]:%d" : "%s:%d", uri->host, uri->port);
}
