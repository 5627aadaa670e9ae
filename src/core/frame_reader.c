/*
 * Length-prefixed frame reader (TCP, TLS): 24-bit big-endian length, then the frame.
 * Zero-copy when a frame lies entirely in the bytes fed; otherwise gathered in a buffer that grows
 * as bytes arrive (a peer announcing 16 MiB and sending one byte costs us a few KiB, not 16 MiB).
 */
#include <string.h>

#include "core/wire.h"
#include "rsocket/frame.h"

/* Gathering buffers above this are released once their frame has been handed out, so an idle
 * connection does not keep the memory of its largest frame. */
#define KEEP_BUFFER_MAX (64u * 1024u)
#define MIN_GROWTH      4096u

void rs_frame_reader_init(rs_frame_reader *r, const rs_mem *mem, size_t max_frame) {
  memset(r, 0, sizeof *r);
  r->mem = mem ? mem : rs_mem_default();
  if (max_frame == 0 || max_frame > RS_FRAME_MAX_SIZE) max_frame = RS_FRAME_MAX_SIZE;
  if (max_frame < RS_FRAME_HEADER_SIZE) max_frame = RS_FRAME_HEADER_SIZE;
  r->max_frame = max_frame;
}

static void release(rs_frame_reader *r) {
  r->mem->free(r->buf, r->mem->user);
  r->buf = NULL;
  r->buf_cap = 0;
}

static void reset_frame(rs_frame_reader *r) {
  r->frame_out = false;
  r->buf_len = 0;
  r->need = 0;
  r->hdr_have = 0;
  if (r->buf_cap > KEEP_BUFFER_MAX) release(r);
}

static int reserve(rs_frame_reader *r, size_t want) {
  if (want <= r->buf_cap) return 0;
  size_t cap = r->buf_cap ? r->buf_cap * 2 : MIN_GROWTH;
  if (cap < want) cap = want;
  if (cap > r->need) cap = r->need;
  uint8_t *nb = r->mem->realloc(r->buf, cap, r->mem->user);
  if (!nb) return RS_ERR_NOMEM;
  r->buf = nb;
  r->buf_cap = cap;
  return 0;
}

rs_ssize rs_frame_reader_next(rs_frame_reader *r, const uint8_t *in, size_t len, rs_bytes *frame) {
  frame->ptr = NULL;
  frame->len = 0;
  if (r->error) return r->error;
  if (!in && len) return RS_ERR_INVALID_ARGUMENT;
  if (r->frame_out) reset_frame(r);
  /* Fast path: at a frame boundary with the whole frame in `in` (the usual case). */
  if (r->hdr_have == 0 && len >= RS_FRAME_LENGTH_SIZE) {
    size_t n = rs__get_u24(in);
    if (n >= RS_FRAME_HEADER_SIZE && n <= r->max_frame && len - RS_FRAME_LENGTH_SIZE >= n) {
      frame->ptr = in + RS_FRAME_LENGTH_SIZE;
      frame->len = n;
      return (rs_ssize)(RS_FRAME_LENGTH_SIZE + n);
    }
  }
  size_t used = 0;
  while (r->hdr_have < RS_FRAME_LENGTH_SIZE) {
    if (used == len) return (rs_ssize)used;
    r->hdr[r->hdr_have++] = in[used++];
  }
  if (r->need == 0) {
    size_t n = rs__get_u24(r->hdr);
    if (n < RS_FRAME_HEADER_SIZE) return r->error = RS_ERR_FRAME_TOO_SHORT;
    if (n > r->max_frame) return r->error = RS_ERR_FRAME_TOO_LARGE;
    r->need = n;
  }
  size_t avail = len - used;
  if (r->buf_len == 0 && avail >= r->need) {
    frame->ptr = in + used;
    frame->len = r->need;
    used += r->need;
    r->need = 0;
    r->hdr_have = 0;
    return (rs_ssize)used;
  }
  size_t take = r->need - r->buf_len;
  if (take > avail) take = avail;
  if (take) {
    if (reserve(r, r->buf_len + take) != 0) return r->error = RS_ERR_NOMEM;
    memcpy(r->buf + r->buf_len, in + used, take);
    r->buf_len += take;
    used += take;
  }
  if (r->buf_len == r->need) {
    frame->ptr = r->buf;
    frame->len = r->need;
    r->frame_out = true;
  }
  return (rs_ssize)used;
}

size_t rs_frame_reader_pending(const rs_frame_reader *r) {
  if (r->frame_out) return 0;
  return r->hdr_have + r->buf_len;
}

void rs_frame_reader_free(rs_frame_reader *r) {
  if (r->mem) release(r);
  r->buf_len = 0;
  r->need = 0;
  r->hdr_have = 0;
  r->frame_out = false;
}
