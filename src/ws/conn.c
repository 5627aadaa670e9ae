/*
 * A WebSocket connection after the handshake (RFC 6455 sections 5-7), sans-I/O: incremental frame
 * parsing, unmasking, message assembly with a size limit, fail-fast UTF-8 on text, automatic pong,
 * and the close handshake with a timeout.
 *
 * Output is one growable byte queue: messages are sent whole (one frame each), so a control frame
 * queued after a large message waits for it.
 */
#include <openssl/crypto.h>
#include <string.h>

#include "rsocket/ws.h"
#include "ws/deflate_internal.h"
#include "ws/random.h"

#define DEFAULT_MAX_MESSAGE (16u * 1024u * 1024u + 16u)
#define DEFAULT_MAX_QUEUED  (64u * 1024u * 1024u)
#define DEFAULT_CLOSE_MS    5000u
#define MSG_FIRST           256u          /* first size of the assembly buffer */
#define OUT_FIRST           4096u         /* first size of the data queue, */
#define OUT_HINT_MAX        (64u * 1024u) /* or what it reached last time, up to this */
#define CQ_FIRST            256u          /* first size of the control queue */
#define MASK_POOL           512u          /* bytes of masking keys drawn at once (client) */

enum { ST_OPEN, ST_CLOSE_SENT, ST_CLOSED };

/* Client: masking keys drawn from `random` in batches (one call per MASK_POOL/4 frames instead
 * of one per frame); `off` is the next one. Servers do not mask and have none. */
typedef struct ws_keys {
  rs_ws_random_fn random; /* NULL: OpenSSL's */
  void *random_user;
  unsigned off;
  uint8_t pool[MASK_POOL];
} ws_keys;

/* An output queue: bytes b[off..len) are waiting. It exists only while it holds something (freed
 * once written), so an idle connection has none. */
typedef struct ws_q {
  size_t len, off, cap;
  size_t mark; /* see rs_ws_conn.out and .cq */
  uint8_t b[];
} ws_q;

/* What is being read: the header of the next frame, the frame, the data message it belongs
 * to. It exists only while bytes are being read or a frame or message is unfinished: allocated
 * when bytes arrive, freed when a recv ends between frames and messages (see in_release). The
 * message being assembled follows it. */
typedef struct ws_in {
  uint64_t f_len;      /* the frame's payload length */
  uint64_t frame_done; /* and how much of it was read */
  size_t msg_len, msg_cap;
  rs_ws_utf8 utf8;
  uint8_t hdr[RS_WS_MAX_HEADER]; /* the header being read, then what of it the payload needs */
  uint8_t hdr_have;
  uint8_t f_opcode;
  uint8_t f_mask[4];
  uint8_t msg_opcode;
  bool f_fin : 1, f_masked : 1;
  bool in_frame : 1;
  bool in_message : 1;
  bool msg_compressed : 1;        /* the message being assembled had RSV1 on its first frame */
  uint8_t ctl[RS_WS_MAX_CONTROL]; /* the payload of the control frame being read */
  uint8_t msg[];                  /* msg_cap bytes: the data message being assembled */
} ws_in;

/*
 * Sized for the idle connection, which is what a server has most of: what only an active or
 * closing connection needs is allocated when it does (what is being read, the output queues,
 * the masking keys, zlib's streams), and the options are kept as the fields this file reads,
 * not as a copy of rs_ws_options. 120 bytes: a 128-byte malloc chunk.
 */
struct rs_ws_conn {
  /* options (defaults applied) */
  size_t max_message;
  size_t max_queued;
  rs_ws_callbacks cb;
  void *user;
  const rs_mem *mem;
  uint64_t close_deadline;
  ws_in *in;     /* NULL between frames */
  ws_keys *keys; /* client */
  rs_ws_z *z;    /* allocated only when permessage-deflate was negotiated */
  /* output: data frames and close in `out` (in order); pings and pongs in `cq`, which go out at
   * the next frame boundary of `out`, so a pong never waits behind queued messages. out->mark
   * is where the frame holding out->off begins (off > mark: that frame is partly written and
   * must be finished first). cq->mark is where the last pong queued begins, cq->b[mark..len),
   * while none of it is written and nothing follows it (pong_queued): once PONG_QUEUE_MAX bytes
   * of control frames wait, a newer ping replaces it (RFC 6455 5.5.3 allows answering only the
   * latest), so a ping flood queues a bounded amount, not one pong per ping. NULL: empty. */
  ws_q *out;
  ws_q *cq;
  uint32_t close_timeout_ms;
  int fatal;         /* a fatal error (RS_ERR_NOMEM, RS_ERR_INTERNAL) every call now returns */
  uint32_t out_hint; /* the size the data queue reached before it was last freed (capped) */
  bool server : 1;
  bool close_received : 1;
  bool failed : 1; /* we closed because of a protocol error: drop further input */
  bool deflate : 1;
  bool pong_queued : 1; /* see cq */
  uint8_t state : 2;
  uint8_t last : 2; /* which queue pending() handed out: 1 data, 2 control */
};

rs_ws_conn *rs_ws_conn_new(const rs_ws_options *o, const rs_ws_callbacks *cb, void *user,
                           const rs_mem *mem) {
  if (!mem) mem = rs_mem_default();
  rs_ws_conn *c = mem->calloc(1, sizeof *c, mem->user);
  if (!c) return NULL;
  static const rs_ws_options defaults;
  if (!o) o = &defaults;
  c->max_message = o->max_message ? o->max_message : DEFAULT_MAX_MESSAGE;
  c->max_queued = o->max_queued ? o->max_queued : DEFAULT_MAX_QUEUED;
  c->close_timeout_ms = o->close_timeout_ms ? o->close_timeout_ms : DEFAULT_CLOSE_MS;
  c->server = o->server;
  if (cb) c->cb = *cb;
  c->user = user;
  c->mem = mem;
  c->state = ST_OPEN;
  if (!c->server) {
    c->keys = mem->malloc(sizeof *c->keys, mem->user);
    if (!c->keys) {
      mem->free(c, mem->user);
      return NULL;
    }
    c->keys->random = o->random;
    c->keys->random_user = o->random_user;
    c->keys->off = MASK_POOL; /* drawn at the first frame */
  }
  if (o->deflate.enabled) {
    c->z = mem->calloc(1, sizeof *c->z, mem->user);
    if (!c->z || rs__ws_z_init(c->z, &o->deflate, c->server, mem) != 0) {
      mem->free(c->z, mem->user);
      mem->free(c->keys, mem->user);
      mem->free(c, mem->user);
      return NULL;
    }
    c->deflate = true;
  }
  return c;
}

void rs_ws_conn_free(rs_ws_conn *c) {
  if (!c) return;
  if (c->z) {
    rs__ws_z_free(c->z);
    c->mem->free(c->z, c->mem->user);
  }
  c->mem->free(c->in, c->mem->user);
  c->mem->free(c->out, c->mem->user);
  c->mem->free(c->cq, c->mem->user);
  if (c->keys) OPENSSL_cleanse(c->keys->pool, MASK_POOL);
  c->mem->free(c->keys, c->mem->user);
  c->mem->free(c, c->mem->user);
}

/* Records a fatal error: the connection is finished (no further input is read, no further
 * output handed out, no callback called) and every later call returns the same error. */
static int fatal(rs_ws_conn *c, int rc) {
  if (rs_error_is_fatal(rc) && !c->fatal) {
    c->fatal = rc;
    c->failed = true;
    c->state = ST_CLOSED;
  }
  return rc;
}

/* ---- output ---- */

/* Room for `add` more bytes in *qp (made at `first` bytes, or grown by doubling). */
static int q_reserve(rs_ws_conn *c, ws_q **qp, size_t add, size_t first) {
  ws_q *q = *qp;
  size_t len = q ? q->len : 0;
  if (q && len + add <= q->cap) return 0;
  size_t cap = q ? q->cap * 2 : first;
  while (cap < len + add) cap *= 2;
  ws_q *nq = c->mem->realloc(q, sizeof *q + cap, c->mem->user);
  if (!nq) return RS_ERR_NOMEM;
  if (!q) nq->len = nq->off = nq->mark = 0;
  nq->cap = cap;
  *qp = nq;
  return 0;
}

/* Frees a queue that was all written. The data queue's size is remembered so that the next
 * burst of the same size needs one allocation, not a chain of doublings. */
static void q_drop(rs_ws_conn *c, ws_q **qp) {
  if (qp == &c->out)
    c->out_hint = (uint32_t)(c->out->cap < OUT_HINT_MAX ? c->out->cap : OUT_HINT_MAX);
  c->mem->free(*qp, c->mem->user);
  *qp = NULL;
}

static int out_reserve(rs_ws_conn *c, size_t add) {
  ws_q *q = c->out;
  if (q && q->len + add > q->cap && q->mark > 0 && q->mark >= q->len / 2) {
    /* Slide the unsent bytes (from the start of the frame being written) to the front. */
    memmove(q->b, q->b + q->mark, q->len - q->mark);
    q->len -= q->mark;
    q->off -= q->mark;
    q->mark = 0;
  }
  return q_reserve(c, &c->out, add, c->out_hint ? c->out_hint : OUT_FIRST);
}

/* A fresh unpredictable masking key (RFC 6455 5.3). */
static int next_mask_key(rs_ws_conn *c, uint8_t key[4]) {
  ws_keys *k = c->keys;
  if (k->off == MASK_POOL) {
    int rc = rs__ws_random(k->random, k->random_user, k->pool, MASK_POOL);
    if (rc != 0) return rc;
    k->off = 0;
  }
  memcpy(key, k->pool + k->off, 4);
  k->off += 4;
  return 0;
}

#define PONG_QUEUE_MAX 16384u /* see pong_queued */

/* Room for a ping or pong in the control queue. */
static int cq_reserve(rs_ws_conn *c, size_t add) {
  c->pong_queued = false; /* whatever is queued next follows it */
  return q_reserve(c, &c->cq, add, CQ_FIRST);
}

static int queue_frame_rsv(rs_ws_conn *c, int opcode, bool rsv1, const uint8_t *a, size_t alen,
                           const uint8_t *b, size_t blen) {
  size_t len = alen + blen;
  bool mask = !c->server;
  bool ctl = opcode == RS_WS_OP_PING || opcode == RS_WS_OP_PONG;
  if ((ctl ? cq_reserve(c, RS_WS_MAX_HEADER + len) : out_reserve(c, RS_WS_MAX_HEADER + len)) != 0)
    return RS_ERR_NOMEM;
  uint8_t key[4] = {0, 0, 0, 0};
  if (mask) {
    int rc = next_mask_key(c, key);
    if (rc) return rc;
  }
  ws_q *q = ctl ? c->cq : c->out;
  uint8_t *p = q->b + q->len;
  size_t hl = rs_ws_frame_header_write(p, true, (uint8_t)opcode, rsv1, mask ? key : NULL, len);
  if (alen) memcpy(p + hl, a, alen);
  if (blen) memcpy(p + hl + alen, b, blen);
  if (mask) rs_ws_mask(p + hl, len, key, 0);
  q->len += hl + len;
  return 0;
}

static int queue_frame(rs_ws_conn *c, int opcode, const uint8_t *a, size_t alen, const uint8_t *b,
                       size_t blen) {
  return queue_frame_rsv(c, opcode, false, a, alen, b, blen);
}

/* Compresses a data message straight into the output: room for the largest result is made
 * first, then the frame header goes in front of what zlib wrote (moved back when the header is
 * shorter than the room left for it). */
static int queue_compressed(rs_ws_conn *c, int opcode, const uint8_t *data, size_t len) {
  bool mask = !c->server;
  size_t bound = rs__ws_z_bound(c->z, len);
  uint8_t key[4] = {0, 0, 0, 0};
  int rc = out_reserve(c, RS_WS_MAX_HEADER + bound);
  if (rc == 0 && mask) rc = next_mask_key(c, key);
  if (rc != 0) return rc;
  uint8_t *p = c->out->b + c->out->len;
  size_t zlen;
  rc = rs__ws_z_compress(c->z, data, len, p + RS_WS_MAX_HEADER, bound, &zlen);
  if (rc != 0) return rc;
  size_t hl = rs_ws_frame_header_size(mask, zlen);
  memmove(p + hl, p + RS_WS_MAX_HEADER, zlen);
  rs_ws_frame_header_write(p, true, (uint8_t)opcode, true, mask ? key : NULL, zlen);
  if (mask) rs_ws_mask(p + hl, zlen, key, 0);
  c->out->len += hl + zlen;
  return 0;
}

int rs_ws_conn_send(rs_ws_conn *c, int opcode, const uint8_t *data, size_t len) {
  if (!c || (len && !data)) return RS_ERR_INVALID_ARGUMENT;
  if (c->fatal) return c->fatal;
  if (opcode != RS_WS_OP_TEXT && opcode != RS_WS_OP_BINARY && opcode != RS_WS_OP_PING &&
      opcode != RS_WS_OP_PONG)
    return RS_ERR_INVALID_ARGUMENT;
  if ((opcode & 8) && len > RS_WS_MAX_CONTROL) return RS_ERR_INVALID_ARGUMENT;
  if (c->state != ST_OPEN) return RS_ERR_CLOSED;
  if (rs_ws_conn_queued(c) + len > c->max_queued) return RS_ERR_WOULD_BLOCK;
  /* Empty messages go uncompressed (RSV1 clear): zlib has nothing to flush for them. */
  if (c->deflate && !(opcode & 8) && len > 0)
    return fatal(c, queue_compressed(c, opcode, data, len));
  return fatal(c, queue_frame(c, opcode, data, len, NULL, 0));
}

static int send_close(rs_ws_conn *c, unsigned code, const char *reason, size_t rlen, uint64_t now) {
  if (c->state != ST_OPEN) return RS_ERR_CLOSED;
  uint8_t cp[2] = {(uint8_t)(code >> 8), (uint8_t)code};
  if (rlen > RS_WS_MAX_CONTROL - 2) rlen = RS_WS_MAX_CONTROL - 2;
  int rc = code == RS_WS_CLOSE_NO_STATUS
               ? queue_frame(c, RS_WS_OP_CLOSE, NULL, 0, NULL, 0)
               : queue_frame(c, RS_WS_OP_CLOSE, cp, 2, (const uint8_t *)reason, rlen);
  c->state = c->close_received ? ST_CLOSED : ST_CLOSE_SENT;
  c->close_deadline = now + c->close_timeout_ms;
  return rc;
}

int rs_ws_conn_close(rs_ws_conn *c, unsigned code, const char *reason, uint64_t now_ms) {
  if (!c) return RS_ERR_INVALID_ARGUMENT;
  if (c->fatal) return c->fatal;
  return fatal(c, send_close(c, code, reason, reason ? strlen(reason) : 0, now_ms));
}

/* Bytes of the frame that starts at out[off] (we wrote it, so its header is well formed). */
static size_t out_frame_size(const ws_q *q, size_t off) {
  rs_ws_frame_header h;
  rs_ssize hl = rs_ws_frame_header_parse(&h, q->b + off, q->len - off);
  return hl > 0 ? (size_t)hl + (size_t)h.payload_len : q->len - off;
}

static size_t q_waiting(const ws_q *q) {
  return q ? q->len - q->off : 0;
}

int rs_ws_conn_pending(rs_ws_conn *c, rs_bytes *out) {
  if (c->fatal) return 0;
  ws_q *cq = c->cq, *o = c->out;
  bool have_ctl = q_waiting(cq) > 0;
  bool have_data = q_waiting(o) > 0;
  bool data_mid = have_data && o->off > o->mark;
  c->last = 0;
  if (have_ctl && (cq->off > 0 || !data_mid)) {
    out->ptr = cq->b + cq->off;
    out->len = cq->len - cq->off;
    c->last = 2;
    return 1;
  }
  if (!have_data) return 0;
  out->ptr = o->b + o->off;
  /* With control frames waiting, hand out only the rest of the frame being written. */
  out->len = have_ctl ? o->mark + out_frame_size(o, o->mark) - o->off : o->len - o->off;
  c->last = 1;
  return 1;
}

void rs_ws_conn_consumed(rs_ws_conn *c, size_t n) {
  if (c->last == 2) {
    if (!c->cq) return; /* all of it was consumed already: nothing was handed out since */
    c->cq->off += n;
    if (c->cq->off >= c->cq->len) q_drop(c, &c->cq);
    c->pong_queued = false; /* partly or wholly written */
    return;
  }
  if (!c->out) return;
  ws_q *q = c->out;
  q->off += n;
  if (q->off >= q->len) {
    q_drop(c, &c->out);
    return;
  }
  while (q->mark < q->off) {
    size_t end = q->mark + out_frame_size(q, q->mark);
    if (end > q->off) break;
    q->mark = end;
  }
}

size_t rs_ws_conn_queued(const rs_ws_conn *c) {
  return q_waiting(c->out) + q_waiting(c->cq);
}

bool rs_ws_conn_want_close(const rs_ws_conn *c) {
  if (c->fatal) return true;
  return c->state == ST_CLOSED && rs_ws_conn_queued(c) == 0;
}

bool rs_ws_conn_closing(const rs_ws_conn *c) {
  return c->state != ST_OPEN;
}

uint64_t rs_ws_conn_next_deadline(const rs_ws_conn *c) {
  return c->state == ST_CLOSE_SENT ? c->close_deadline : UINT64_MAX;
}

void rs_ws_conn_handle_expiry(rs_ws_conn *c, uint64_t now_ms) {
  if (c->state == ST_CLOSE_SENT && now_ms >= c->close_deadline) c->state = ST_CLOSED;
}

/* ---- input ---- */

/* Fails the connection: close frame with `code`, drop further input. Returns 0, or the fatal
 * error queueing the close frame met (then on_close is not called). */
static int fail(rs_ws_conn *c, unsigned code, const char *why, uint64_t now) {
  if (c->failed) return 0;
  c->failed = true;
  int rc = send_close(c, code, why, strlen(why), now);
  c->state = ST_CLOSED; /* we do not wait for the peer after failing it */
  if (rs_error_is_fatal(rc)) return rc;
  if (c->cb.on_close) c->cb.on_close(c, code, rs_bytes_str(why), false, c->user);
  return 0;
}

/* A whole control frame arrived. Returns 0 or a fatal error. */
static int on_control(rs_ws_conn *c, uint64_t now) {
  size_t n = (size_t)c->in->f_len;
  const uint8_t *payload = c->in->ctl;
  switch (c->in->f_opcode) {
  case RS_WS_OP_PING:
    if (c->state == ST_OPEN) {
      /* Every ping is answered while little is queued; beyond that only the latest. */
      if (c->pong_queued && q_waiting(c->cq) > PONG_QUEUE_MAX) c->cq->len = c->cq->mark;
      int rc = queue_frame(c, RS_WS_OP_PONG, payload, n, NULL, 0);
      if (rc != 0) return rc;
      c->cq->mark = c->cq->len - rs_ws_frame_header_size(!c->server, n) - n;
      c->pong_queued = true;
    }
    if (c->cb.on_ping) c->cb.on_ping(c, payload, n, c->user);
    break;
  case RS_WS_OP_PONG: break; /* unsolicited pongs are fine */
  case RS_WS_OP_CLOSE: {
    unsigned code = RS_WS_CLOSE_NO_STATUS;
    rs_bytes reason = {NULL, 0};
    if (n == 1) return fail(c, RS_WS_CLOSE_PROTOCOL, "close frame with a 1-byte payload", now);
    if (n >= 2) {
      code = (unsigned)payload[0] << 8 | payload[1];
      if (!rs_ws_close_code_valid(code))
        return fail(c, RS_WS_CLOSE_PROTOCOL, "invalid close code", now);
      reason.ptr = payload + 2;
      reason.len = n - 2;
      if (!rs_ws_utf8_valid(reason.ptr, reason.len))
        return fail(c, RS_WS_CLOSE_INVALID_DATA, "close reason is not UTF-8", now);
    }
    c->close_received = true;
    if (c->state == ST_OPEN) {
      /* Echo the peer's code (1000 when it gave none). */
      unsigned echo = code == RS_WS_CLOSE_NO_STATUS ? RS_WS_CLOSE_NORMAL : code;
      int rc = send_close(c, echo, NULL, 0, now);
      if (rc != 0) return rc;
    }
    c->state = ST_CLOSED;
    if (c->cb.on_close) c->cb.on_close(c, code, reason, true, c->user);
    break;
  }
  default: break;
  }
  return 0;
}

/* Room for `n` more bytes of the message being assembled (c->in may move). */
static int msg_reserve(rs_ws_conn *c, size_t n) {
  ws_in *in = c->in;
  if (in->msg_len + n <= in->msg_cap) return 0;
  size_t cap = in->msg_cap ? in->msg_cap : MSG_FIRST;
  while (cap < in->msg_len + n) cap *= 2;
  if (cap > c->max_message) cap = c->max_message;
  ws_in *nin = c->mem->realloc(in, sizeof *in + cap, c->mem->user);
  if (!nin) return RS_ERR_NOMEM;
  nin->msg_cap = cap;
  c->in = nin;
  return 0;
}

/* The reading state, made when bytes arrive (with room for a small message). */
static int in_make(rs_ws_conn *c) {
  if (c->in) return 0;
  ws_in *in = c->mem->malloc(sizeof *in + MSG_FIRST, c->mem->user);
  if (!in) return RS_ERR_NOMEM;
  memset(in, 0, sizeof *in);
  in->msg_cap = MSG_FIRST;
  c->in = in;
  return 0;
}

/* After a recv: between frames and messages (or when no more input will be read), an idle
 * connection keeps no reading state. */
static void in_release(rs_ws_conn *c) {
  ws_in *in = c->in;
  if (!in) return;
  bool ignored = c->failed || (c->state == ST_CLOSED && c->close_received);
  if (!ignored && (in->in_frame || in->in_message || in->hdr_have)) return;
  c->mem->free(in, c->mem->user);
  c->in = NULL;
}

static int recv_bytes(rs_ws_conn *c, const uint8_t *buf, size_t len, uint64_t now) {
  size_t off = 0;
  if (len == 0 || c->failed || (c->state == ST_CLOSED && c->close_received)) return 0;
  int rc = in_make(c);
  if (rc != 0) return rc;
  while (off < len) {
    if (c->fatal) return c->fatal; /* met inside a callback */
    if (c->failed || (c->state == ST_CLOSED && c->close_received)) return 0; /* ignore the rest */
    ws_in *in = c->in;
    if (!in->in_frame) {
      size_t take = RS_WS_MAX_HEADER - in->hdr_have;
      if (take > len - off) take = len - off;
      memcpy(in->hdr + in->hdr_have, buf + off, take);
      rs_ws_frame_header h;
      rs_ssize hl = rs_ws_frame_header_parse(&h, in->hdr, in->hdr_have + take);
      if (hl < 0) return fail(c, RS_WS_CLOSE_PROTOCOL, "frame length has its top bit set", now);
      if (hl == 0) {
        in->hdr_have = (uint8_t)(in->hdr_have + take);
        off += take;
        continue;
      }
      off += (size_t)hl - in->hdr_have;
      in->hdr_have = 0;
      const char *why = NULL;
      if (rs_ws_frame_header_check(&h, c->server, c->deflate, in->in_message, &why) != 0)
        return fail(c, RS_WS_CLOSE_PROTOCOL, why, now);
      in->f_opcode = h.opcode;
      in->f_fin = h.fin;
      in->f_masked = h.masked;
      memcpy(in->f_mask, h.mask, sizeof in->f_mask);
      in->f_len = h.payload_len; /* a control frame's was checked: at most RS_WS_MAX_CONTROL */
      if (!(h.opcode & 8)) {
        uint64_t total = (in->in_message ? in->msg_len : 0) + h.payload_len;
        if (total > c->max_message) return fail(c, RS_WS_CLOSE_TOO_BIG, "message too big", now);
        if (!in->in_message) {
          in->in_message = true;
          in->msg_compressed = h.rsv1;
          in->msg_opcode = h.opcode;
          in->msg_len = 0;
          rs_ws_utf8_init(&in->utf8);
        }
      }
      in->in_frame = true;
      in->frame_done = 0;
    }
    /* Payload bytes of the current frame. */
    bool control = in->f_opcode & 8;
    uint64_t left = in->f_len - in->frame_done;
    size_t n = left < len - off ? (size_t)left : len - off;
    if (n > 0) {
      uint8_t *dst;
      if (control) {
        dst = in->ctl + in->frame_done;
      } else {
        if (msg_reserve(c, n) != 0) return RS_ERR_NOMEM;
        in = c->in;
        dst = in->msg + in->msg_len;
        in->msg_len += n;
      }
      memcpy(dst, buf + off, n);
      if (in->f_masked) rs_ws_mask(dst, n, in->f_mask, in->frame_done);
      if (!control && in->msg_opcode == RS_WS_OP_TEXT && !in->msg_compressed &&
          rs_ws_utf8_feed(&in->utf8, dst, n) == RS_WS_UTF8_REJECT)
        return fail(c, RS_WS_CLOSE_INVALID_DATA, "text message is not valid UTF-8", now);
      off += n;
      in->frame_done += n;
    }
    if (in->frame_done < in->f_len) continue;
    /* The frame is complete. */
    in->in_frame = false;
    if (control) {
      rc = on_control(c, now);
      if (rc != 0) return rc;
      continue;
    }
    if (!in->f_fin) continue;
    in->in_message = false;
    const uint8_t *data = in->msg;
    size_t dlen = in->msg_len;
    uint8_t *inflated = NULL;
    if (in->msg_compressed) {
      int zr =
          rs__ws_z_inflate(c->z, in->msg, in->msg_len, c->max_message, &inflated, &dlen, c->mem);
      if (zr == RS_ERR_NOMEM) return zr;
      if (zr == RS_ERR_TOO_BIG)
        return fail(c, RS_WS_CLOSE_TOO_BIG, "message too big once inflated", now);
      if (zr != 0) return fail(c, RS_WS_CLOSE_INVALID_DATA, "invalid compressed data", now);
      data = inflated;
      if (in->msg_opcode == RS_WS_OP_TEXT) rs_ws_utf8_feed(&in->utf8, data, dlen);
    }
    if (in->msg_opcode == RS_WS_OP_TEXT && in->utf8.state != RS_WS_UTF8_ACCEPT) {
      c->mem->free(inflated, c->mem->user);
      return fail(c, RS_WS_CLOSE_INVALID_DATA, "text message is not valid UTF-8", now);
    }
    /* Data sent before the peer's close is delivered even after ours went out (RFC 6455 5.5.1:
     * it may have been on the wire, or the peer may finish a message first); after the peer's close
     * nothing is read. */
    if (c->state != ST_CLOSED && c->cb.on_message)
      c->cb.on_message(c, in->msg_opcode, data, dlen, c->user);
    c->mem->free(inflated, c->mem->user);
    in->msg_len = 0;
  }
  return c->fatal; /* a callback's call may have met one */
}

int rs_ws_conn_recv(rs_ws_conn *c, const uint8_t *buf, size_t len, uint64_t now_ms) {
  if (!c || (len && !buf)) return RS_ERR_INVALID_ARGUMENT;
  if (c->fatal) return c->fatal;
  int rc = fatal(c, recv_bytes(c, buf, len, now_ms));
  in_release(c);
  return rc;
}
