/*
 * Fuzzes a server-side protocol engine with arbitrary input, with or without a valid SETUP in
 * front of it, in both framings, with lease, resumption and fragmentation toggled by the input.
 * The application side answers requests (responses, stream items, request(n), cancel, errors) so
 * the stream state machines are driven from both ends; time advances with the input too.
 *
 * Input layout: byte 0 = options (bit 0: prepend a valid SETUP; bit 1: message framing; bit 2:
 * lease; bit 3: resumption; bit 4: MTU 64; bit 5: tiny limits), byte 1 = chunking seed, then the
 * bytes to feed (in message framing: frames as [u16 length][bytes]).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rsocket/conn.h"

typedef struct app {
  rs_conn *conn;
  uint32_t script; /* varies what the application does */
} app;

static int on_setup(rs_conn *c, const rs_setup_info *s, void *user) {
  app *a = user;
  if (s->lease) rs_conn_send_lease(c, 1000, 3, NULL, 0);
  return (a->script & 0x40) ? 1 : 0;
}

static int on_request(rs_conn *c, const rs_request *r, void *user) {
  app *a = user;
  a->script = a->script * 1103515245u + 12345u;
  rs_payload p = r->payload;
  switch (r->type) {
  case RS_FRAME_REQUEST_RESPONSE:
    if (a->script & 1) rs_conn_send_payload(c, r->stream_id, &p, true);
    break;
  case RS_FRAME_REQUEST_STREAM:
    for (int i = 0; i < 3; i++) rs_conn_send_payload(c, r->stream_id, &p, i == 2);
    break;
  case RS_FRAME_REQUEST_CHANNEL:
    rs_conn_request_n(c, r->stream_id, 2);
    rs_conn_send_payload(c, r->stream_id, &p, false);
    if (a->script & 2) rs_conn_cancel(c, r->stream_id);
    break;
  default: break;
  }
  return (a->script & 0x300) == 0x300 ? 1 : 0;
}

static void on_payload(rs_conn *c, uint32_t sid, void *su, const rs_payload *p, unsigned flags,
                       void *user) {
  (void)su;
  app *a = user;
  a->script = a->script * 1103515245u + 12345u;
  if (flags & RS_PAYLOAD_NEXT) {
    if (a->script & 4) rs_conn_send_payload(c, sid, p, false);
    if (a->script & 8) rs_conn_request_n(c, sid, a->script >> 20);
  }
  if (a->script & 16) rs_conn_send_error(c, sid, RS_ERROR_APPLICATION_ERROR, rs_bytes_str("no"));
  if (a->script & 32) rs_conn_send_complete(c, sid);
}

static void on_request_n(rs_conn *c, uint32_t sid, void *su, uint64_t n, void *user) {
  (void)su;
  (void)n;
  (void)user;
  rs_payload p = {false, {NULL, 0}, {(const uint8_t *)"item", 4}};
  rs_conn_send_payload(c, sid, &p, false);
}

static void on_cancel(rs_conn *c, uint32_t sid, void *su, void *user) {
  (void)su;
  (void)user;
  rs_conn_send_complete(c, sid);
}

static void on_metadata_push(rs_conn *c, rs_bytes md, void *user) {
  (void)user;
  rs_conn_metadata_push(c, md);
}

static const rs_conn_callbacks callbacks = {
    .struct_size = sizeof(rs_conn_callbacks),
    .on_setup = on_setup,
    .on_request = on_request,
    .on_payload = on_payload,
    .on_request_n = on_request_n,
    .on_cancel = on_cancel,
    .on_metadata_push = on_metadata_push,
};

static void drain(rs_conn *c) {
  rs_iov iov[32];
  int n = rs_conn_pending_output(c, iov, 32);
  size_t total = 0;
  for (int i = 0; i < n; i++) total += iov[i].len;
  if (total) rs_conn_consumed(c, total);
}

/* A valid SETUP (ka 500 ms, life 1500 ms, MIME "a"/"b"), optionally with R+L. */
static size_t setup_frame(uint8_t *out, bool lease, bool resume) {
  static const uint8_t plain[] = {0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
                                  0x00, 0x01, 0xF4, 0x00, 0x00, 0x05, 0xDC, 0x01, 0x61, 0x01, 0x62};
  static const uint8_t tok[] = {0x00, 0x03, 0x74, 0x6F, 0x6B};
  size_t n = 0;
  memcpy(out, plain, 18);
  n = 18;
  out[4] = (uint8_t)(0x04 | 0);
  out[5] = (uint8_t)((lease ? 0x40 : 0) | (resume ? 0x80 : 0));
  if (resume) {
    memcpy(out + n, tok, sizeof(tok));
    n += sizeof(tok);
  }
  memcpy(out + n, plain + 18, 4);
  return n + 4;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  uint8_t opt = data[0];
  uint32_t seed = data[1];
  data += 2;
  size -= 2;
  bool message = opt & 2;
  rs_conn_settings s;
  rs_conn_settings_default(&s, RS_CONN_SERVER);
  s.framing = message ? RS_FRAMING_MESSAGE : RS_FRAMING_LENGTH_PREFIXED;
  s.lease = opt & 4;
  rs_resume_store *store = NULL;
  if (opt & 8) {
    store = rs_resume_store_new(NULL);
    if (!store) return 0;
    s.resume = true;
    s.resume_store = store;
    s.resume_buffer_size = 4096;
  }
  if (opt & 16) s.mtu = 64;
  if (opt & 32) {
    s.max_streams = 4;
    s.max_reassembly_size = 300;
    s.max_reassembly_total = 1000;
    s.max_queued_control = 4;
    s.max_frame_size = 512;
  }
  app a = {NULL, seed};
  if (rs_conn_new(&a.conn, &s, &callbacks, &a, NULL, 0) != 0) {
    rs_resume_store_free(store);
    return 0;
  }
  uint64_t now = 0;
  if (opt & 1) {
    uint8_t setup[40];
    size_t n = setup_frame(setup + 3, s.lease, s.resume);
    if (message) {
      rs_conn_recv_frame(a.conn, setup + 3, n, now);
    } else {
      rs_frame_put_length(setup, n);
      rs_conn_recv(a.conn, setup, n + 3, now);
    }
  }
  size_t off = 0;
  while (off < size) {
    if (message) {
      if (size - off < 2) break;
      size_t n = (size_t)data[off] << 8 | data[off + 1];
      off += 2;
      if (n > size - off) n = size - off;
      if (rs_conn_recv_frame(a.conn, data + off, n, now) < 0) break;
      off += n;
    } else {
      seed = seed * 1103515245u + 12345u;
      size_t n = 1 + (seed >> 16) % 64;
      if (n > size - off) n = size - off;
      rs_ssize r = rs_conn_recv(a.conn, data + off, n, now);
      if (r < 0) break;
      off += (size_t)r;
      if ((size_t)r < n) break; /* handed off */
    }
    if (seed & 0x10000) drain(a.conn);
    now += seed % 700;
    if (rs_conn_next_deadline(a.conn) <= now) rs_conn_handle_expiry(a.conn, now);
    if ((seed & 0xF00000) == 0xF00000) {
      rs_payload p = {true, {(const uint8_t *)"m", 1}, {(const uint8_t *)"d", 1}};
      rs_conn_request_stream(a.conn, &p, 2, NULL);
    }
  }
  drain(a.conn);
  rs_conn_handle_expiry(a.conn, now + 200000);
  if (!(seed & 1)) rs_conn_detach(a.conn, now);
  rs_conn_handle_expiry(a.conn, now + 400000);
  drain(a.conn);
  rs_conn_free(a.conn);
  rs_resume_store_free(store);
  return 0;
}
