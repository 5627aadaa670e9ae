/* Frame headers, checks, unmasking and UTF-8 over a stream of arbitrary frames; the first byte
 * picks the role. The UTF-8 validator fed in pieces must agree with the one-shot validator. */
#include <stdlib.h>
#include <string.h>

#include "rsocket/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  bool from_client = data[0] & 1, deflate = data[0] & 2;
  size_t off = 1;
  bool in_message = false;
  while (off < size) {
    rs_ws_frame_header h;
    rs_ssize hl = rs_ws_frame_header_parse(&h, data + off, size - off);
    if (hl <= 0) break;
    if ((size_t)hl > RS_WS_MAX_HEADER || (size_t)hl != h.header_len) abort();
    const char *why;
    if (rs_ws_frame_header_check(&h, from_client, deflate, in_message, &why) != 0) {
      if (!why) abort();
      break;
    }
    off += (size_t)hl;
    size_t n = h.payload_len < size - off ? (size_t)h.payload_len : size - off;
    uint8_t *p = malloc(n + 1);
    memcpy(p, data + off, n);
    if (h.masked) {
      /* Unmasking in two pieces equals unmasking at once. */
      uint8_t *q = malloc(n + 1);
      memcpy(q, p, n);
      rs_ws_mask(p, n, h.mask, 0);
      size_t half = n / 2;
      rs_ws_mask(q, half, h.mask, 0);
      rs_ws_mask(q + half, n - half, h.mask, half);
      if (memcmp(p, q, n)) abort();
      free(q);
    }
    rs_ws_utf8 u;
    rs_ws_utf8_init(&u);
    uint32_t s = rs_ws_utf8_feed(&u, p, n / 3);
    if (s != RS_WS_UTF8_REJECT) s = rs_ws_utf8_feed(&u, p + n / 3, n - n / 3);
    if ((s == RS_WS_UTF8_ACCEPT) != rs_ws_utf8_valid(p, n)) abort();
    free(p);
    if (!(h.opcode & 8)) in_message = !h.fin;
    off += n;
  }
  return 0;
}
