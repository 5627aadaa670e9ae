/*
 * Fuzzes rs_ws_conn_recv with permessage-deflate negotiated, in either role, the input fed in
 * chunks whose sizes the input chooses, with small limits so that compression bombs hit them.
 *
 * Oracles: a delivered message is within max_message and text is valid UTF-8; whatever the
 * connection writes (pongs, close frames, and echoes of the messages it got, which drive the
 * compressor) goes to a second connection in the other role with the same agreement, which must
 * accept all of it (a close it starts itself means we wrote something broken); an allocation
 * failure (an allocator that fails from allocation N on, N chosen by the input) shows as
 * RS_ERR_NOMEM and every block is given back.
 *
 * Input: byte 0 options (bit 0: we are the client, so frames must be unmasked; bit 1: deflate off;
 * bit 2: server_no_context_takeover; bit 3: client_no_context_takeover; bit 4: 9-bit windows;
 * bit 5: echo messages; bit 6: fail allocations), byte 1 the largest chunk (1..256), byte 2 the
 * seed of the chunk sizes and of the time steps, byte 3 the allocation that fails first (with bit
 * 6), then the bytes to feed.
 */
#include <stdlib.h>
#include <string.h>

#include "rsocket/ws.h"

#define MAX_MESSAGE 4096u

typedef struct counter {
  rs_mem mem;
  long count, fail_from, live;
} counter;

static bool take(counter *a) {
  return !(a->fail_from > 0 && ++a->count >= a->fail_from);
}

static void *c_malloc(size_t n, void *user) {
  counter *a = user;
  void *p = take(a) ? malloc(n) : NULL;
  a->live += p != NULL;
  return p;
}

static void *c_calloc(size_t n, size_t size, void *user) {
  counter *a = user;
  void *p = take(a) ? calloc(n, size) : NULL;
  a->live += p != NULL;
  return p;
}

static void *c_realloc(void *ptr, size_t n, void *user) {
  counter *a = user;
  void *p = take(a) ? realloc(ptr, n) : NULL;
  a->live += p != NULL && ptr == NULL;
  return p;
}

static void c_free(void *ptr, void *user) {
  counter *a = user;
  a->live -= ptr != NULL;
  free(ptr);
}

typedef struct side {
  bool echo;
  bool is_peer;
} side;

static void on_message(rs_ws_conn *c, int op, const uint8_t *d, size_t len, void *user) {
  side *s = user;
  if (!s->is_peer && len > MAX_MESSAGE) abort();
  if (op == RS_WS_OP_TEXT && !rs_ws_utf8_valid(d, len)) abort();
  if (s->echo) rs_ws_conn_send(c, op, d, len); /* errors: closing, full, out of memory */
}

static void on_close(rs_ws_conn *c, unsigned code, rs_bytes reason, bool remote, void *user) {
  (void)c, (void)code, (void)reason;
  side *s = user;
  if (s->is_peer && !remote) abort(); /* the peer refused what we wrote */
}

static const rs_ws_callbacks cbs = {on_message, NULL, on_close};

/* Hands everything `from` wrote to `to`, `step` bytes at a time at most. */
static void flow(rs_ws_conn *from, rs_ws_conn *to, size_t step) {
  rs_bytes out;
  while (rs_ws_conn_pending(from, &out) && out.len > 0) {
    size_t n = out.len < step ? out.len : step;
    if (rs_ws_conn_recv(to, out.ptr, n, 0) != 0) abort(); /* the peer never runs out */
    rs_ws_conn_consumed(from, n);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 4) return 0;
  uint8_t opt = data[0];
  size_t max_chunk = (size_t)data[1] + 1;
  uint32_t seed = data[2];
  counter a = {{c_malloc, c_free, c_calloc, c_realloc, NULL}, 0, 0, 0};
  a.mem.user = &a;
  if (opt & 64) a.fail_from = data[3] + 1;
  data += 4;
  size -= 4;

  int bits = opt & 16 ? 9 : 15;
  rs_ws_deflate d = {!(opt & 2), opt & 4, opt & 8, bits, bits};
  bool server = !(opt & 1);
  rs_ws_options o = {
      .server = server, .max_message = MAX_MESSAGE, .max_queued = 65536, .deflate = d};
  rs_ws_options po = {.server = !server, .max_message = 1u << 20, .deflate = d};
  side us = {opt & 32, false}, peer = {false, true};
  rs_ws_conn *c = rs_ws_conn_new(&o, &cbs, &us, &a.mem);
  rs_ws_conn *p = rs_ws_conn_new(&po, &cbs, &peer, NULL);
  if (!p) abort();
  if (!c) {
    if (!(opt & 64)) abort();
  } else {
    uint64_t now = 0;
    size_t off = 0;
    while (off < size) {
      seed = seed * 1103515245u + 12345u;
      size_t n = 1 + (seed >> 16) % max_chunk;
      if (n > size - off) n = size - off;
      int rc = rs_ws_conn_recv(c, data + off, n, now);
      if (rc != 0) {
        if (rc != RS_ERR_NOMEM || !(opt & 64)) abort();
        if (rs_ws_conn_recv(c, data, 1, now) != rc || !rs_ws_conn_want_close(c)) abort();
        break;
      }
      off += n;
      flow(c, p, 1 + (seed >> 8) % 300);
      now += seed % 2000;
      if (rs_ws_conn_next_deadline(c) <= now) rs_ws_conn_handle_expiry(c, now);
    }
    flow(c, p, 1 << 20);
    rs_ws_conn_free(c);
  }
  rs_ws_conn_free(p);
  if (a.live != 0) abort();
  return 0;
}
