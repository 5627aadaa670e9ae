/* WebSocket frame headers, masking, UTF-8 validation and close codes (RFC 6455 section 5). */
#include <string.h>

#include "rsocket/ws.h"

rs_ssize rs_ws_frame_header_parse(rs_ws_frame_header *h, const uint8_t *buf, size_t len) {
  if (len < 2) return 0;
  uint8_t b0 = buf[0], b1 = buf[1];
  h->fin = b0 & 0x80;
  h->rsv1 = b0 & 0x40;
  h->rsv2 = b0 & 0x20;
  h->rsv3 = b0 & 0x10;
  h->opcode = b0 & 0x0f;
  h->masked = b1 & 0x80;
  uint64_t n = b1 & 0x7f;
  size_t hl = 2;
  if (n == 126) {
    if (len < 4) return 0;
    n = (uint64_t)buf[2] << 8 | buf[3];
    hl = 4;
  } else if (n == 127) {
    if (len < 10) return 0;
    n = 0;
    for (int i = 0; i < 8; i++) n = n << 8 | buf[2 + i];
    if (n >> 63) return RS_ERR_MALFORMED;
    hl = 10;
  }
  if (h->masked) {
    if (len < hl + 4) return 0;
    memcpy(h->mask, buf + hl, 4);
    hl += 4;
  } else {
    memset(h->mask, 0, 4);
  }
  h->payload_len = n;
  h->header_len = hl;
  return (rs_ssize)hl;
}

int rs_ws_frame_header_check(const rs_ws_frame_header *h, bool from_client, bool rsv1_allowed,
                             bool in_message, const char **reason) {
  const char *why = NULL;
  bool control = h->opcode & 0x8;
  if (h->rsv2 || h->rsv3)
    why = "reserved bits set";
  else if (h->rsv1 && (!rsv1_allowed || control || h->opcode == RS_WS_OP_CONTINUATION))
    why = "RSV1 set without a negotiated extension for it";
  else if ((h->opcode > RS_WS_OP_BINARY && h->opcode < RS_WS_OP_CLOSE) || h->opcode > RS_WS_OP_PONG)
    why = "reserved opcode";
  else if (from_client && !h->masked)
    why = "client frame not masked";
  else if (!from_client && h->masked)
    why = "server frame masked";
  else if (control && !h->fin)
    why = "fragmented control frame";
  else if (control && h->payload_len > RS_WS_MAX_CONTROL)
    why = "control frame over 125 bytes";
  else if (h->opcode == RS_WS_OP_CONTINUATION && !in_message)
    why = "continuation without a message";
  else if ((h->opcode == RS_WS_OP_TEXT || h->opcode == RS_WS_OP_BINARY) && in_message)
    why = "new message inside a fragmented message";
  if (reason) *reason = why;
  return why ? RS_WS_CLOSE_PROTOCOL : 0;
}

size_t rs_ws_frame_header_size(bool masked, uint64_t len) {
  return (len < 126 ? 2 : len <= 0xffff ? 4 : 10) + (masked ? 4 : 0);
}

size_t rs_ws_frame_header_write(uint8_t *out, bool fin, uint8_t opcode, bool rsv1,
                                const uint8_t *mask, uint64_t len) {
  size_t i = 0;
  out[i++] = (uint8_t)((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (opcode & 0x0f));
  uint8_t m = mask ? 0x80 : 0;
  if (len < 126) {
    out[i++] = (uint8_t)(m | len);
  } else if (len <= 0xffff) {
    out[i++] = m | 126;
    out[i++] = (uint8_t)(len >> 8);
    out[i++] = (uint8_t)len;
  } else {
    out[i++] = m | 127;
    for (int s = 56; s >= 0; s -= 8) out[i++] = (uint8_t)(len >> s);
  }
  if (mask) {
    memcpy(out + i, mask, 4);
    i += 4;
  }
  return i;
}

void rs_ws_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset) {
  uint8_t m8[8];
  for (int i = 0; i < 8; i++) m8[i] = mask[(offset + (uint64_t)i) & 3];
  uint64_t m;
  memcpy(&m, m8, 8);
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t v;
    memcpy(&v, data + i, 8);
    v ^= m;
    memcpy(data + i, &v, 8);
  }
  for (; i < len; i++) data[i] ^= m8[i & 7];
}

/* ---- UTF-8: a hand-written state machine over the RFC 3629 byte ranges ---- */

enum {
  U_ACCEPT = RS_WS_UTF8_ACCEPT,
  U_REJECT = RS_WS_UTF8_REJECT,
  U_CONT1, /* one more 80..BF */
  U_CONT2, /* two more 80..BF */
  U_CONT3, /* three more 80..BF */
  U_E0,    /* after E0: A0..BF (no overlongs), then one more */
  U_ED,    /* after ED: 80..9F (no surrogates), then one more */
  U_F0,    /* after F0: 90..BF (no overlongs), then two more */
  U_F4,    /* after F4: 80..8F (nothing above U+10FFFF), then two more */
};

static inline uint32_t step(uint32_t s, uint8_t c) {
  switch (s) {
  case U_ACCEPT:
    if (c < 0x80) return U_ACCEPT;
    if (c >= 0xC2 && c <= 0xDF) return U_CONT1;
    if (c == 0xE0) return U_E0;
    if (c == 0xED) return U_ED;
    if (c >= 0xE1 && c <= 0xEF) return U_CONT2;
    if (c == 0xF0) return U_F0;
    if (c >= 0xF1 && c <= 0xF3) return U_CONT3;
    if (c == 0xF4) return U_F4;
    return U_REJECT;
  case U_CONT1: return (c & 0xC0) == 0x80 ? U_ACCEPT : U_REJECT;
  case U_CONT2: return (c & 0xC0) == 0x80 ? U_CONT1 : U_REJECT;
  case U_CONT3: return (c & 0xC0) == 0x80 ? U_CONT2 : U_REJECT;
  case U_E0: return c >= 0xA0 && c <= 0xBF ? U_CONT1 : U_REJECT;
  case U_ED: return c >= 0x80 && c <= 0x9F ? U_CONT1 : U_REJECT;
  case U_F0: return c >= 0x90 && c <= 0xBF ? U_CONT2 : U_REJECT;
  case U_F4: return c >= 0x80 && c <= 0x8F ? U_CONT2 : U_REJECT;
  default: return U_REJECT;
  }
}

uint32_t rs_ws_utf8_feed(rs_ws_utf8 *u, const uint8_t *p, size_t n) {
  uint32_t s = u->state;
  size_t i = 0;
  while (i < n && s != U_REJECT) {
    if (s == U_ACCEPT) {
      /* ASCII runs 8 bytes at a time. */
      while (i + 8 <= n) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        if (v & 0x8080808080808080ull) break;
        i += 8;
      }
      if (i == n) break;
    }
    s = step(s, p[i++]);
  }
  u->state = s;
  return s;
}

bool rs_ws_utf8_valid(const uint8_t *p, size_t n) {
  rs_ws_utf8 u;
  rs_ws_utf8_init(&u);
  return rs_ws_utf8_feed(&u, p, n) == RS_WS_UTF8_ACCEPT;
}

bool rs_ws_close_code_valid(unsigned code) {
  if (code >= 3000 && code <= 4999) return true;
  if (code < 1000 || code > 1014) return false;
  return code != 1004 && code != 1005 && code != 1006;
}
