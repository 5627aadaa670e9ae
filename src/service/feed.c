/*
 * Feeds: the responder's half of a stream fed through a bounded queue of copies, sent by the
 * engine's pull producer. The engine calls on_produce only while the stream has credit and the
 * connection's output is under its high watermark, so a feed never sends past the requester's
 * request(n) nor piles bytes on a socket that does not drain; what the service pushes meanwhile
 * waits in the queue, whose bounds (items and bytes) and overflow policy keep a slow subscriber
 * from growing the server.
 *
 * Life cycle: the stream's user pointer is the feed. It is over (`ended`) once our half has sent
 * its last frame (complete, error) or the peer canceled or failed it; its queue is dropped then.
 * The engine's on_stream_closed, which always comes last and never inside one of our calls,
 * runs the application's on_close and frees the feed.
 */
#include <string.h>

#include "rsocket/frame.h"
#include "service/service_internal.h"

/* Items sent per on_produce call at most: the engine checks the watermark between calls, so
 * this bounds how far one call can overshoot it, and lets other streams have their turn. */
#define BATCH 64

typedef struct feed_item {
  struct feed_item *next;
  bool has_metadata;
  size_t md_len, data_len;
  /* metadata then data bytes follow */
} feed_item;

struct rs_feed {
  rs_conn *conn;
  uint32_t sid;
  rs_feed_options o;
  rs_mem mem;
  feed_item *head, *tail;
  size_t items, bytes;
  uint64_t dropped;
  bool completing;                        /* rs_feed_complete: complete after the queue */
  bool ended;                             /* our half is over: nothing more is sent */
  int reason;                             /* for on_close */
  void (*leave)(rs_feed *f, void *owner); /* a topic it belongs to */
  void *owner;
};

void rs_feed_options_default(rs_feed_options *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->max_items = 256;
  o->max_bytes = 1u << 20;
  o->overflow = RS_FEED_OVERFLOW_ERROR;
  o->overflow_error = "subscriber too slow";
}

static void drop_queue(rs_feed *f) {
  while (f->head) {
    feed_item *it = f->head;
    f->head = it->next;
    f->mem.free(it, f->mem.user);
  }
  f->tail = NULL;
  f->items = f->bytes = 0;
}

/* Our half is over: nothing queued will be sent. on_close comes with on_stream_closed. */
static void end(rs_feed *f, int reason) {
  if (f->ended) return;
  f->ended = true;
  f->reason = reason;
  drop_queue(f);
}

int rs_feed_new(rs_feed **out, rs_conn *conn, uint32_t stream_id, const rs_feed_options *o) {
  rs_feed_options d;
  if (!o) {
    rs_feed_options_default(&d);
    o = &d;
  }
  if (!out || !conn || o->struct_size == 0 || !o->max_items || !o->max_bytes)
    return RS_ERR_INVALID_ARGUMENT;
  const rs_mem *mem = o->mem ? o->mem : rs_mem_default();
  rs_feed *f = mem->calloc(1, sizeof *f, mem->user);
  if (!f) return RS_ERR_NOMEM;
  /* A caller built against a smaller rs_feed_options gets defaults for the fields it lacks. */
  rs_feed_options_default(&f->o);
  memcpy(&f->o, o, o->struct_size < sizeof f->o ? o->struct_size : sizeof f->o);
  f->o.struct_size = sizeof f->o;
  if (!f->o.overflow_error) f->o.overflow_error = "subscriber too slow";
  f->mem = *mem;
  f->conn = conn;
  f->sid = stream_id;
  int rc = rs_conn_set_producer(conn, stream_id);
  if (rc == 0) rc = rs_conn_stream_set_user(conn, stream_id, f);
  if (rc != 0) {
    mem->free(f, mem->user);
    return rc;
  }
  *out = f;
  return 0;
}

/* Room for one more item of `size` bytes. */
static bool fits(const rs_feed *f, size_t size) {
  if (f->items == 0) return true;
  return f->items < f->o.max_items && f->bytes <= f->o.max_bytes &&
         size <= f->o.max_bytes - f->bytes;
}

static int overflow(rs_feed *f, size_t size) {
  switch (f->o.overflow) {
  case RS_FEED_OVERFLOW_REFUSE: return RS_ERR_WOULD_BLOCK;
  case RS_FEED_OVERFLOW_DROP_OLDEST:
    while (f->head && !fits(f, size)) {
      feed_item *it = f->head;
      f->head = it->next;
      if (!f->head) f->tail = NULL;
      f->items--;
      f->bytes -= it->md_len + it->data_len;
      f->mem.free(it, f->mem.user);
      f->dropped++;
    }
    return 0;
  default:
    rs_conn_send_error(f->conn, f->sid, RS_ERROR_APPLICATION_ERROR,
                       rs_bytes_str(f->o.overflow_error));
    end(f, RS_ERR_FLOODED);
    return RS_ERR_FLOODED;
  }
}

int rs_feed_push(rs_feed *f, const rs_payload *p) {
  if (!f || !p) return RS_ERR_INVALID_ARGUMENT;
  if (f->ended || f->completing) return RS_ERR_STREAM_CLOSED;
  size_t md = p->has_metadata ? p->metadata.len : 0, size = md + p->data.len;
  if (!fits(f, size)) {
    int rc = overflow(f, size);
    if (rc) return rc;
  }
  feed_item *it = f->mem.malloc(sizeof *it + size, f->mem.user);
  if (!it) return RS_ERR_NOMEM;
  it->next = NULL;
  it->has_metadata = p->has_metadata;
  it->md_len = md;
  it->data_len = p->data.len;
  uint8_t *bytes = (uint8_t *)(it + 1);
  if (md) memcpy(bytes, p->metadata.ptr, md);
  if (p->data.len) memcpy(bytes + md, p->data.ptr, p->data.len);
  bool was_empty = !f->head;
  if (f->tail)
    f->tail->next = it;
  else
    f->head = it;
  f->tail = it;
  f->items++;
  f->bytes += size;
  /* The producer pauses only on an empty queue, so only the first item needs to wake it. */
  if (was_empty) rs_conn_resume_producer(f->conn, f->sid);
  return 0;
}

int rs_feed_push_data(rs_feed *f, const void *data, size_t len) {
  rs_payload p = {false, {NULL, 0}, {data, len}};
  return rs_feed_push(f, &p);
}

int rs_feed_complete(rs_feed *f) {
  if (!f) return RS_ERR_INVALID_ARGUMENT;
  if (f->ended || f->completing) return RS_ERR_STREAM_CLOSED;
  f->completing = true;
  if (f->head) return 0; /* the last item carries the COMPLETE flag */
  int rc = rs_conn_send_complete(f->conn, f->sid);
  end(f, 0);
  return rc;
}

int rs_feed_error(rs_feed *f, uint32_t code, rs_bytes message) {
  if (!f) return RS_ERR_INVALID_ARGUMENT;
  if (f->ended) return RS_ERR_STREAM_CLOSED;
  int rc = rs_conn_send_error(f->conn, f->sid, code, message);
  if (rc == RS_ERR_INVALID_ARGUMENT) return rc; /* a code the engine refuses: nothing happened */
  end(f, 0);
  return rc;
}

int rs_feed_wake(rs_feed *f) {
  if (!f) return RS_ERR_INVALID_ARGUMENT;
  if (f->ended || f->completing) return RS_ERR_STREAM_CLOSED;
  return rs_conn_resume_producer(f->conn, f->sid);
}

size_t rs_feed_queued(const rs_feed *f) {
  return f ? f->items : 0;
}

uint64_t rs_feed_dropped(const rs_feed *f) {
  return f ? f->dropped : 0;
}

rs_conn *rs_feed_conn(const rs_feed *f) {
  return f ? f->conn : NULL;
}

uint32_t rs_feed_stream_id(const rs_feed *f) {
  return f ? f->sid : 0;
}

void *rs_feed_user(const rs_feed *f) {
  return f ? f->o.user : NULL;
}

void rs__feed_set_owner(rs_feed *f, void (*leave)(rs_feed *f, void *owner), void *owner) {
  f->leave = leave;
  f->owner = owner;
}

/* ---- the engine's callbacks ---- */

static int on_produce(rs_conn *conn, uint32_t sid, void *su, uint64_t credit, void *user) {
  (void)user;
  rs_feed *f = su;
  if (!f || f->ended) return RS_PRODUCE_PAUSE;
  if (!f->head && !f->completing && f->o.on_pull) f->o.on_pull(f, credit, f->o.user);
  for (int n = 0; f->head && n < BATCH; n++) {
    feed_item *it = f->head;
    const uint8_t *bytes = (const uint8_t *)(it + 1);
    rs_payload p = {it->has_metadata, {bytes, it->md_len}, {bytes + it->md_len, it->data_len}};
    bool last = f->completing && !it->next;
    int rc = rs_conn_send_payload(conn, sid, &p, last);
    if (rc == RS_ERR_NO_CREDIT) return RS_PRODUCE_MORE; /* the engine waits for request(n) */
    if (rc != 0) {
      /* Too large for a frame (with mtu 0) or the connection failed: the item cannot go out,
       * and the stream would stall behind it. */
      if (rc == RS_ERR_FRAME_TOO_LARGE)
        rs_conn_send_error(conn, sid, RS_ERROR_APPLICATION_ERROR,
                           rs_bytes_str("stream item too large for a frame"));
      end(f, rc);
      return RS_PRODUCE_PAUSE;
    }
    f->head = it->next;
    if (!f->head) f->tail = NULL;
    f->items--;
    f->bytes -= it->md_len + it->data_len;
    f->mem.free(it, f->mem.user);
    if (last) {
      end(f, 0);
      return RS_PRODUCE_PAUSE;
    }
  }
  if (f->head) return RS_PRODUCE_MORE;
  if (f->completing && !f->ended) {
    rs_conn_send_complete(conn, sid);
    end(f, 0);
  }
  /* A pull source is asked again when credit comes; a call that sends nothing pauses it. */
  return f->o.on_pull && !f->ended ? RS_PRODUCE_MORE : RS_PRODUCE_PAUSE;
}

static void on_payload(rs_conn *conn, uint32_t sid, void *su, const rs_payload *p, unsigned flags,
                       void *user) {
  (void)conn, (void)sid, (void)user;
  rs_feed *f = su;
  if (f && f->o.on_input) f->o.on_input(f, p, flags, f->o.user);
}

static void on_cancel(rs_conn *conn, uint32_t sid, void *su, void *user) {
  (void)conn, (void)sid, (void)user;
  if (su) end(su, RS_ERR_CANCELED);
}

static void on_error(rs_conn *conn, uint32_t sid, void *su, const rs_stream_error *e, void *user) {
  (void)conn, (void)sid, (void)user;
  if (su) end(su, e->err);
}

static void on_stream_closed(rs_conn *conn, uint32_t sid, void *su, void *user) {
  (void)conn, (void)sid, (void)user;
  rs_feed *f = su;
  if (!f) return;
  end(f, RS_ERR_CLOSED); /* normally ended already; otherwise it went with its connection */
  if (f->leave) f->leave(f, f->owner);
  if (f->o.on_close) f->o.on_close(f, f->reason, f->o.user);
  f->mem.free(f, f->mem.user);
}

void rs_feed_callbacks(rs_conn_callbacks *cb) {
  if (!cb) return;
  cb->on_produce = on_produce;
  cb->on_payload = on_payload;
  cb->on_cancel = on_cancel;
  cb->on_error = on_error;
  cb->on_stream_closed = on_stream_closed;
}
