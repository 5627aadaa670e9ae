/*
 * Fuzzes a client-side protocol engine: it sends SETUP and requests of every kind, then reads
 * arbitrary bytes as if from the server, which drives the requester state machines, credit
 * checks, reassembly of responses, LEASE handling and (with resumption on) detach / attach /
 * RESUME_OK handling.
 *
 * Input layout: byte 0 = options (bit 0: message framing; bit 1: lease; bit 2: resumption; bit 3:
 * MTU 64; bit 4: tiny limits), byte 1 = seed, then the bytes to feed (in message framing: frames
 * as [u16 length][bytes]). A 0xFF byte at a chunk boundary cuts the transport and resumes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rsocket/conn.h"

typedef struct app {
  uint32_t script;
} app;

static uint32_t next(app *a) {
  a->script = a->script * 1103515245u + 12345u;
  return a->script >> 8;
}

static int on_request(rs_conn *c, const rs_request *r, void *user) {
  app *a = user;
  if (r->type == RS_FRAME_REQUEST_RESPONSE && (next(a) & 1)) {
    rs_conn_send_payload(c, r->stream_id, &r->payload, true);
  }
  return (int)(next(a) & 4);
}

static void on_payload(rs_conn *c, uint32_t sid, void *su, const rs_payload *p, unsigned flags,
                       void *user) {
  (void)su;
  (void)p;
  (void)flags;
  app *a = user;
  uint32_t r = next(a);
  if (r & 1) rs_conn_request_n(c, sid, 1 + (r >> 4) % 5);
  if ((r & 0x30) == 0x30) rs_conn_cancel(c, sid);
}

static void on_request_n(rs_conn *c, uint32_t sid, void *su, uint64_t n, void *user) {
  (void)su;
  (void)n;
  app *a = user;
  rs_payload p = {false, {NULL, 0}, {(const uint8_t *)"up", 2}};
  rs_conn_send_payload(c, sid, &p, (next(a) & 3) == 0);
}

static void on_lease(rs_conn *c, uint32_t ttl, uint32_t n, const rs_bytes *md, void *user) {
  (void)ttl;
  (void)n;
  (void)md;
  (void)user;
  rs_payload p = {false, {NULL, 0}, {(const uint8_t *)"leased", 6}};
  rs_conn_request_response(c, &p, NULL);
}

static const rs_conn_callbacks callbacks = {
    .struct_size = sizeof(rs_conn_callbacks),
    .on_request = on_request,
    .on_payload = on_payload,
    .on_request_n = on_request_n,
    .on_lease = on_lease,
};

static void drain(rs_conn *c) {
  rs_iov iov[32];
  int n = rs_conn_pending_output(c, iov, 32);
  size_t total = 0;
  for (int i = 0; i < n; i++) total += iov[i].len;
  if (total) rs_conn_consumed(c, total);
}

static void requests(rs_conn *c) {
  uint8_t big[300];
  memset(big, 'b', sizeof(big));
  rs_payload small = {true, {(const uint8_t *)"m", 1}, {(const uint8_t *)"d", 1}};
  rs_payload large = {true, {big, 100}, {big, sizeof(big)}};
  rs_conn_request_response(c, &small, NULL);
  rs_conn_request_response(c, &large, NULL);
  rs_conn_request_fnf(c, &small);
  rs_conn_request_stream(c, &small, 3, NULL);
  rs_conn_request_stream(c, &large, RS_CREDIT_UNBOUNDED, NULL);
  rs_conn_request_channel(c, &small, 2, false, NULL);
  rs_conn_request_channel(c, &large, 1, true, NULL);
  rs_conn_metadata_push(c, rs_bytes_str("push"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  uint8_t opt = data[0];
  app a = {data[1]};
  data += 2;
  size -= 2;
  bool message = opt & 1;
  rs_conn_settings s;
  rs_conn_settings_default(&s, RS_CONN_CLIENT);
  s.framing = message ? RS_FRAMING_MESSAGE : RS_FRAMING_LENGTH_PREFIXED;
  s.keepalive_interval_ms = 100;
  s.max_lifetime_ms = 1000;
  s.lease = opt & 2;
  if (opt & 4) {
    s.resume = true;
    s.resume_token = rs_bytes_str("fuzz-token");
    s.resume_buffer_size = 2048;
  }
  if (opt & 8) s.mtu = 64;
  if (opt & 16) {
    s.max_streams = 6;
    s.max_reassembly_size = 200;
    s.max_reassembly_total = 600;
    s.max_queued_control = 3;
    s.max_frame_size = 300;
  }
  rs_conn *c = NULL;
  if (rs_conn_new(&c, &s, &callbacks, &a, NULL, 0) != 0) return 0;
  requests(c);
  uint64_t now = 0;
  size_t off = 0;
  while (off < size) {
    if (data[off] == 0xFF && s.resume) {
      /* The transport breaks; a new one comes up and the client resumes. */
      off++;
      drain(c);
      if (rs_conn_detach(c, now) != 0) break;
      if (rs_conn_get_state(c) == RS_CONN_STATE_DISCONNECTED) rs_conn_attach(c, now);
      continue;
    }
    if (message) {
      if (size - off < 2) break;
      size_t n = (size_t)data[off] << 8 | data[off + 1];
      off += 2;
      if (n > size - off) n = size - off;
      if (rs_conn_recv_frame(c, data + off, n, now) < 0) break;
      off += n;
    } else {
      size_t n = 1 + next(&a) % 48;
      if (n > size - off) n = size - off;
      rs_ssize r = rs_conn_recv(c, data + off, n, now);
      if (r < 0) break;
      off += (size_t)r;
    }
    uint32_t r = next(&a);
    if (r & 1) drain(c);
    now += r % 150;
    if (rs_conn_next_deadline(c) <= now) rs_conn_handle_expiry(c, now);
    if ((r & 0x700) == 0x700) requests(c);
  }
  drain(c);
  rs_conn_handle_expiry(c, now + 100000);
  rs_conn_free(c);
  return 0;
}
