/*
 * Fragmentation on send and reassembly on receive.
 *
 * Sending follows what rsocket-java sends and accepts: the MTU counts the 3-byte length prefix and
 * the frame header, every non-final fragment is exactly MTU - 3 bytes (never a tiny one: Java
 * refuses non-final fragments under 61 bytes), all metadata goes before any data (each fragment
 * carrying metadata has its own metadata length), the first fragment is the original frame type
 * with F set (a PAYLOAD keeps N, C waits for the last fragment), and continuations are PAYLOAD
 * frames with N always set, F on all but the last, and C on the last if the original had it.
 *
 * Receiving gathers metadata and data of the fragments in two growing buffers up to
 * max_reassembly_size per payload and max_reassembly_total for the whole connection (so many
 * streams each holding a partial payload cannot exhaust memory), accepting continuations with or
 * without N.
 */
#include <string.h>

#include "core/conn_internal.h"

static size_t fixed_len(uint8_t type) {
  return (type == RS_FRAME_REQUEST_STREAM || type == RS_FRAME_REQUEST_CHANNEL) ? 4 : 0;
}

int rs__check_payload_size(const rs_conn *c, uint8_t type, const rs_payload *p) {
  size_t md = p->has_metadata ? p->metadata.len : 0;
  if (c->s.mtu) return 0; /* anything can be fragmented */
  if (md > RS_METADATA_LENGTH_MAX) return RS_ERR_FRAME_TOO_LARGE;
  size_t size = RS_FRAME_HEADER_SIZE + fixed_len(type) + (p->has_metadata ? 3 : 0);
  if (md > RS_FRAME_MAX_SIZE - size || p->data.len > RS_FRAME_MAX_SIZE - size - md) {
    return RS_ERR_FRAME_TOO_LARGE;
  }
  return 0;
}

int rs__send_payload_frames(rs_conn *c, uint8_t type, uint32_t stream_id, uint16_t flags,
                            uint32_t n, const rs_payload *p) {
  size_t md_len = p->has_metadata ? p->metadata.len : 0;
  size_t data_len = p->data.len;
  size_t fixed = fixed_len(type);
  size_t cap = c->s.mtu ? c->s.mtu - RS_FRAME_LENGTH_SIZE : RS_FRAME_MAX_SIZE;
  size_t head = RS_FRAME_HEADER_SIZE + fixed + (p->has_metadata ? 3 : 0);
  rs_frame f;
  if (md_len <= cap && data_len <= cap && head + md_len + data_len <= cap) {
    rs_frame_init(&f, type, stream_id);
    f.flags = flags & (RS_FLAG_NEXT | RS_FLAG_COMPLETE);
    if (fixed) f.u.request.initial_request_n = n;
    f.has_metadata = p->has_metadata;
    f.metadata = p->metadata;
    f.data = p->data;
    return rs__send_frame(c, &f);
  }
  if (!c->s.mtu) return RS_ERR_FRAME_TOO_LARGE;

  size_t md_off = 0, data_off = 0;
  bool md_pending = p->has_metadata; /* even empty metadata must be announced once (M, length 0) */
  bool first = true;
  for (;;) {
    uint8_t ftype = first ? type : RS_FRAME_PAYLOAD;
    rs_frame_init(&f, ftype, stream_id);
    size_t room = cap - RS_FRAME_HEADER_SIZE;
    if (first && fixed) {
      f.u.request.initial_request_n = n;
      room -= fixed;
    }
    if (md_pending) {
      room -= 3;
      size_t take = md_len - md_off < room ? md_len - md_off : room;
      f.has_metadata = true;
      f.metadata.ptr = take ? p->metadata.ptr + md_off : NULL;
      f.metadata.len = take;
      md_off += take;
      room -= take;
      if (md_off == md_len) md_pending = false;
    }
    if (!md_pending) {
      size_t take = data_len - data_off < room ? data_len - data_off : room;
      f.data.ptr = take ? p->data.ptr + data_off : NULL;
      f.data.len = take;
      data_off += take;
    }
    bool last = !md_pending && data_off == data_len;
    uint16_t fl = last ? 0 : RS_FLAG_FOLLOWS;
    if (ftype == RS_FRAME_PAYLOAD) {
      fl |= first ? (flags & RS_FLAG_NEXT) : RS_FLAG_NEXT;
      if (last) fl |= flags & RS_FLAG_COMPLETE;
    }
    f.flags = fl;
    int rc = rs__send_frame(c, &f);
    if (rc) return rc;
    if (last) return 0;
    first = false;
  }
}

static int append(rs_conn *c, uint8_t **buf, size_t *len, size_t *cap, rs_bytes b) {
  if (!b.len) return 0;
  if (*cap - *len < b.len) {
    size_t ncap = *cap ? *cap : 256;
    while (ncap - *len < b.len) ncap *= 2;
    /* Grow to what is needed when doubling would overrun the limits. */
    if (ncap > c->s.max_reassembly_size) ncap = *len + b.len;
    if (c->reasm_bytes - *cap + ncap > c->s.max_reassembly_total) return RS_ERR_TOO_BIG;
    uint8_t *nb = c->mem.realloc(*buf, ncap, c->mem.user);
    if (!nb) return RS_ERR_NOMEM;
    c->reasm_bytes += ncap - *cap;
    *buf = nb;
    *cap = ncap;
  }
  memcpy(*buf + *len, b.ptr, b.len);
  *len += b.len;
  return 0;
}

static int add_fragment(rs_conn *c, rs_reasm *r, const rs_frame *f) {
  size_t md = f->has_metadata ? f->metadata.len : 0;
  size_t total = r->md_len + r->data_len;
  size_t max = c->s.max_reassembly_size;
  if (total > max || md > max - total || f->data.len > max - total - md) return RS_ERR_TOO_BIG;
  if (f->has_metadata) {
    r->has_md = true;
    int rc = append(c, &r->md, &r->md_len, &r->md_cap, f->metadata);
    if (rc) return rc;
  }
  return append(c, &r->data, &r->data_len, &r->data_cap, f->data);
}

int rs__reasm_start(rs_conn *c, rs_stream *s, const rs_frame *f) {
  size_t md = f->has_metadata ? f->metadata.len : 0;
  if (md > c->s.max_reassembly_size || f->data.len > c->s.max_reassembly_size - md) {
    return RS_ERR_TOO_BIG;
  }
  rs_reasm *r = c->mem.calloc(1, sizeof(*r), c->mem.user);
  if (!r) return RS_ERR_NOMEM;
  r->type = f->type;
  r->flags = f->flags;
  r->budget = &c->reasm_bytes;
  if (f->type == RS_FRAME_REQUEST_STREAM || f->type == RS_FRAME_REQUEST_CHANNEL) {
    r->initial_n = f->u.request.initial_request_n;
  }
  s->reasm = r;
  return add_fragment(c, r, f);
}

int rs__reasm_append(rs_conn *c, rs_stream *s, const rs_frame *f, bool *done) {
  rs_reasm *r = s->reasm;
  int rc = add_fragment(c, r, f);
  if (rc) return rc;
  if (f->flags & RS_FLAG_COMPLETE) r->flags |= RS_FLAG_COMPLETE;
  /* F with C: the spec says F is ignored, so C ends the reassembly. */
  *done = !(f->flags & RS_FLAG_FOLLOWS) || (f->flags & RS_FLAG_COMPLETE);
  return 0;
}
