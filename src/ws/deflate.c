/* permessage-deflate (RFC 7692): negotiation, and the zlib streams of one connection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws/deflate_internal.h"

/* ---- negotiation ---- */

static bool eq_ci(const uint8_t *p, size_t n, const char *s) {
  if (strlen(s) != n) return false;
  for (size_t i = 0; i < n; i++) {
    int c = p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i];
    if (c != s[i]) return false;
  }
  return true;
}

static void trim(const uint8_t **p, const uint8_t **e) {
  while (*p < *e && (**p == ' ' || **p == '\t')) (*p)++;
  while (*e > *p && ((*e)[-1] == ' ' || (*e)[-1] == '\t')) (*e)--;
}

/* Parses one "permessage-deflate; a; b=c" element. Returns 1 if it is a valid offer or answer
 * (parameters in *d, *client_bits_bare set for a bare client_max_window_bits), 0 otherwise. */
static int parse_element(const uint8_t *p, const uint8_t *e, rs_ws_deflate *d, bool *bare) {
  memset(d, 0, sizeof *d);
  *bare = false;
  const uint8_t *semi = memchr(p, ';', (size_t)(e - p));
  const uint8_t *ne = semi ? semi : e, *np = p;
  trim(&np, &ne);
  if (!eq_ci(np, (size_t)(ne - np), "permessage-deflate")) return 0;
  bool seen[4] = {false, false, false, false};
  while (semi) {
    p = semi + 1;
    semi = memchr(p, ';', (size_t)(e - p));
    const uint8_t *pe = semi ? semi : e;
    const uint8_t *eqs = memchr(p, '=', (size_t)(pe - p));
    const uint8_t *ke = eqs ? eqs : pe, *kp = p;
    trim(&kp, &ke);
    int value = -1;
    if (eqs) {
      const uint8_t *vp = eqs + 1, *ve = pe;
      trim(&vp, &ve);
      if (ve - vp >= 2 && *vp == '"' && ve[-1] == '"') vp++, ve--; /* quoted-string form */
      if (ve == vp || ve - vp > 2) return 0;
      value = 0;
      for (const uint8_t *q = vp; q < ve; q++) {
        if (*q < '0' || *q > '9') return 0;
        value = value * 10 + (*q - '0');
      }
      if (value < 8 || value > 15) return 0;
    }
    size_t kl = (size_t)(ke - kp);
    int idx;
    if (eq_ci(kp, kl, "server_no_context_takeover") && value < 0) {
      idx = 0;
      d->server_no_context_takeover = true;
    } else if (eq_ci(kp, kl, "client_no_context_takeover") && value < 0) {
      idx = 1;
      d->client_no_context_takeover = true;
    } else if (eq_ci(kp, kl, "server_max_window_bits") && value > 0) {
      idx = 2;
      d->server_max_window_bits = value;
    } else if (eq_ci(kp, kl, "client_max_window_bits")) {
      idx = 3;
      if (value > 0)
        d->client_max_window_bits = value;
      else
        *bare = true;
    } else {
      return 0; /* unknown parameter, or a value where none belongs */
    }
    if (seen[idx]) return 0; /* repeated */
    seen[idx] = true;
  }
  return 1;
}

bool rs_ws_deflate_negotiate(rs_bytes offers, rs_ws_deflate *out, char *resp, size_t cap) {
  memset(out, 0, sizeof *out);
  if (!offers.ptr) return false;
  const uint8_t *p = offers.ptr, *end = offers.ptr + offers.len;
  while (p < end) {
    const uint8_t *comma = memchr(p, ',', (size_t)(end - p));
    const uint8_t *e = comma ? comma : end;
    rs_ws_deflate d;
    bool bare;
    if (parse_element(p, e, &d, &bare) && d.server_max_window_bits != 8) {
      /* Accept: echo what the client asked of us; keep its window for our inflater at 15. */
      d.enabled = true;
      int n = snprintf(resp, cap, "permessage-deflate%s%s",
                       d.server_no_context_takeover ? "; server_no_context_takeover" : "",
                       d.client_no_context_takeover ? "; client_no_context_takeover" : "");
      if (n < 0 || (size_t)n >= cap) return false;
      if (d.server_max_window_bits) {
        int m = snprintf(resp + n, cap - (size_t)n, "; server_max_window_bits=%d",
                         d.server_max_window_bits);
        if (m < 0 || (size_t)(n + m) >= cap) return false;
        n += m;
      } else {
        d.server_max_window_bits = 15;
      }
      if (d.client_max_window_bits) {
        int m = snprintf(resp + n, cap - (size_t)n, "; client_max_window_bits=%d",
                         d.client_max_window_bits);
        if (m < 0 || (size_t)(n + m) >= cap) return false;
      } else {
        d.client_max_window_bits = 15;
      }
      *out = d;
      return true;
    }
    p = comma ? comma + 1 : end;
  }
  return false;
}

int rs_ws_deflate_client_accept(rs_bytes value, rs_ws_deflate *out) {
  memset(out, 0, sizeof *out);
  if (!value.ptr || value.len == 0) return 0;                    /* declined: no compression */
  if (memchr(value.ptr, ',', value.len)) return RS_ERR_REJECTED; /* one answer only */
  rs_ws_deflate d;
  bool bare;
  if (!parse_element(value.ptr, value.ptr + value.len, &d, &bare) || bare) return RS_ERR_REJECTED;
  d.enabled = true;
  if (!d.server_max_window_bits) d.server_max_window_bits = 15;
  if (!d.client_max_window_bits) d.client_max_window_bits = 15;
  if (d.client_max_window_bits == 8) d.client_max_window_bits = 9; /* zlib's smallest window */
  *out = d;
  return 0;
}

/* ---- streams ---- */

/* zlib allocates through the connection's allocator, never the global one (`opaque` is the
 * rs_mem). */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size) {
  const rs_mem *mem = opaque;
  if (size && items > SIZE_MAX / size) return Z_NULL;
  return mem->malloc((size_t)items * size, mem->user);
}

static void z_free(voidpf opaque, voidpf ptr) {
  const rs_mem *mem = opaque;
  mem->free(ptr, mem->user);
}

int rs__ws_z_init(rs_ws_z *z, const rs_ws_deflate *d, bool server, const rs_mem *mem) {
  memset(z, 0, sizeof *z);
  z->our_no_takeover = server ? d->server_no_context_takeover : d->client_no_context_takeover;
  int our_bits = server ? d->server_max_window_bits : d->client_max_window_bits;
  if (our_bits < 9) our_bits = 9;
  z->def.zalloc = z->inf.zalloc = z_alloc;
  z->def.zfree = z->inf.zfree = z_free;
  z->def.opaque = z->inf.opaque = (voidpf)mem;
  /* Both fail only for want of memory: our parameters are always valid. */
  if (deflateInit2(&z->def, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -our_bits, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK)
    return RS_ERR_NOMEM;
  if (inflateInit2(&z->inf, -15) != Z_OK) {
    deflateEnd(&z->def);
    return RS_ERR_NOMEM;
  }
  z->ready = true;
  return 0;
}

void rs__ws_z_free(rs_ws_z *z) {
  if (!z->ready) return;
  deflateEnd(&z->def);
  inflateEnd(&z->inf);
  z->ready = false;
}

size_t rs__ws_z_bound(rs_ws_z *z, size_t len) {
  /* deflateBound is for one Z_FINISH pass; a sync flush adds an empty stored block (<= 6 bytes). */
  return deflateBound(&z->def, (uLong)len) + 16;
}

int rs__ws_z_compress(rs_ws_z *z, const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                      size_t *out_len) {
  z->def.next_in = (Bytef *)(uintptr_t)in;
  z->def.avail_in = (uInt)len;
  z->def.next_out = out;
  z->def.avail_out = (uInt)cap;
  int rc = deflate(&z->def, Z_SYNC_FLUSH);
  /* All input taken and room left over: nothing of this message is still inside zlib. */
  if (rc != Z_OK || z->def.avail_in != 0 || z->def.avail_out == 0) return RS_ERR_INTERNAL;
  size_t n = cap - z->def.avail_out;
  /* A sync flush ends with 00 00 FF FF, which the receiver appends back (RFC 7692 7.2.1). */
  if (n >= 4 && memcmp(out + n - 4, "\x00\x00\xff\xff", 4) == 0) n -= 4;
  if (z->our_no_takeover) deflateReset(&z->def);
  *out_len = n;
  return 0;
}

int rs__ws_z_inflate(rs_ws_z *z, const uint8_t *in, size_t len, size_t max, uint8_t **out,
                     size_t *out_len, const rs_mem *mem) {
  static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};
  size_t cap = len * 4 + 64 < max + 1 ? len * 4 + 64 : max + 1, n = 0;
  uint8_t *buf = mem->malloc(cap, mem->user);
  if (!buf) return RS_ERR_NOMEM;
  bool ended = false;
  for (int part = 0; part < 2 && !ended; part++) {
    z->inf.next_in = (Bytef *)(uintptr_t)(part == 0 ? in : tail);
    z->inf.avail_in = (uInt)(part == 0 ? len : 4);
    while (z->inf.avail_in > 0) {
      if (n == cap) {
        if (cap > max) { /* over the limit: stop inflating (compression bombs) */
          mem->free(buf, mem->user);
          return RS_ERR_TOO_BIG;
        }
        size_t ncap = cap * 2 < max + 1 ? cap * 2 : max + 1;
        uint8_t *nb = mem->realloc(buf, ncap, mem->user);
        if (!nb) {
          mem->free(buf, mem->user);
          return RS_ERR_NOMEM;
        }
        buf = nb;
        cap = ncap;
      }
      z->inf.next_out = buf + n;
      z->inf.avail_out = (uInt)(cap - n);
      int rc = inflate(&z->inf, Z_SYNC_FLUSH);
      n = cap - z->inf.avail_out;
      if (rc == Z_STREAM_END) {
        /* A block with BFINAL set ended the stream (RFC 7692 7.2.3.4): the message ends here,
         * our tail is not needed, and the next message starts a new stream. Anything else of
         * the payload after it is not DEFLATE. */
        bool junk = part == 0 && z->inf.avail_in > 0;
        inflateReset(&z->inf);
        if (junk) {
          mem->free(buf, mem->user);
          return RS_ERR_MALFORMED;
        }
        ended = true;
        break;
      }
      if (rc == Z_BUF_ERROR && z->inf.avail_out > 0) break; /* no progress possible */
      if (rc != Z_OK && rc != Z_BUF_ERROR) {
        mem->free(buf, mem->user);
        /* The window is allocated by the first inflate: out of memory is not bad input. */
        return rc == Z_MEM_ERROR ? RS_ERR_NOMEM : RS_ERR_MALFORMED;
      }
    }
  }
  if (n > max) {
    mem->free(buf, mem->user);
    return RS_ERR_TOO_BIG;
  }
  *out = buf;
  *out_len = n;
  return 0;
}
