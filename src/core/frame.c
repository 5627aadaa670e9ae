/*
 * RSocket 1.0 frame codec: decode (zero-copy, strict on lengths, lenient on unknown flag bits)
 * and encode (validating, so the library never emits an invalid frame).
 *
 * Error codes chosen for malformed input (rs_frame_error.code):
 *   - SETUP and RESUME problems: INVALID_SETUP (the handshake frame is broken);
 *   - a malformed initial request-n of REQUEST_STREAM/REQUEST_CHANNEL (0 or top bit set):
 *     INVALID, a stream-level error, because the frame itself is well delimited;
 *   - everything else (short frames, lengths past the end, trailing bytes on fixed-size frames,
 *     a REQUEST_N of 0, PAYLOAD without N, C or F, bad stream ids): CONNECTION_ERROR.
 * A PAYLOAD with F set and neither N nor C is accepted: it is a fragment continuation whose
 * meaning comes from the first fragment (the spec's fragments carry F; peers differ on N).
 */
#include <string.h>

#include "core/wire.h"
#include "rsocket/frame.h"

#define M RS_FLAG_METADATA
#define F RS_FLAG_FOLLOWS
#define C RS_FLAG_COMPLETE
#define N RS_FLAG_NEXT
#define R 0x080u
#define L 0x040u
#define I RS_FLAG_IGNORE

enum { SID_ZERO, SID_NONZERO, SID_ANY };

enum body_kind {
  BODY_NONE,     /* no metadata, no data */
  BODY_MD_DATA,  /* optional 24-bit metadata length + metadata, then data */
  BODY_MD_ONLY,  /* metadata is the rest of the frame (no length field) */
  BODY_DATA_ONLY /* data is the rest of the frame */
};

typedef struct type_info {
  const char *name;
  uint16_t flags; /* defined flags (I is defined for every type) */
  uint8_t sid;
  uint8_t body;
  uint8_t fixed; /* bytes of fixed fields after the header (SETUP/RESUME: the minimum) */
} type_info;

static const type_info types[64] = {
    [RS_FRAME_SETUP] = {"SETUP", M | R | L, SID_ZERO, BODY_MD_DATA, 12},
    [RS_FRAME_LEASE] = {"LEASE", M, SID_ZERO, BODY_MD_ONLY, 8},
    [RS_FRAME_KEEPALIVE] = {"KEEPALIVE", R, SID_ZERO, BODY_DATA_ONLY, 8},
    [RS_FRAME_REQUEST_RESPONSE] = {"REQUEST_RESPONSE", M | F, SID_NONZERO, BODY_MD_DATA, 0},
    [RS_FRAME_REQUEST_FNF] = {"REQUEST_FNF", M | F, SID_NONZERO, BODY_MD_DATA, 0},
    [RS_FRAME_REQUEST_STREAM] = {"REQUEST_STREAM", M | F, SID_NONZERO, BODY_MD_DATA, 4},
    [RS_FRAME_REQUEST_CHANNEL] = {"REQUEST_CHANNEL", M | F | C, SID_NONZERO, BODY_MD_DATA, 4},
    [RS_FRAME_REQUEST_N] = {"REQUEST_N", 0, SID_NONZERO, BODY_NONE, 4},
    [RS_FRAME_CANCEL] = {"CANCEL", 0, SID_NONZERO, BODY_NONE, 0},
    [RS_FRAME_PAYLOAD] = {"PAYLOAD", M | F | C | N, SID_NONZERO, BODY_MD_DATA, 0},
    [RS_FRAME_ERROR] = {"ERROR", 0, SID_ANY, BODY_DATA_ONLY, 4},
    [RS_FRAME_METADATA_PUSH] = {"METADATA_PUSH", M, SID_ZERO, BODY_MD_ONLY, 0},
    [RS_FRAME_RESUME] = {"RESUME", 0, SID_ZERO, BODY_NONE, 22},
    [RS_FRAME_RESUME_OK] = {"RESUME_OK", 0, SID_ZERO, BODY_NONE, 8},
    [RS_FRAME_EXT] = {"EXT", M, SID_ANY, BODY_MD_DATA, 4},
};

static inline const type_info *info(uint8_t type) {
  const type_info *t = &types[type & 0x3f];
  return t->name ? t : NULL;
}

void rs_frame_init(rs_frame *f, rs_frame_type type, uint32_t stream_id) {
  memset(f, 0, sizeof *f);
  f->type = (uint8_t)type;
  f->stream_id = stream_id;
  if (type == RS_FRAME_SETUP) f->u.setup.major = RS_VERSION_MAJOR;
  if (type == RS_FRAME_RESUME) f->u.resume.major = RS_VERSION_MAJOR;
}

const char *rs_frame_type_name(uint8_t type) {
  const type_info *t = type < 64 ? info(type) : NULL;
  return t ? t->name : "UNKNOWN";
}

const char *rs_error_code_name(uint32_t code) {
  switch (code) {
  case RS_ERROR_RESERVED: return "RESERVED";
  case RS_ERROR_INVALID_SETUP: return "INVALID_SETUP";
  case RS_ERROR_UNSUPPORTED_SETUP: return "UNSUPPORTED_SETUP";
  case RS_ERROR_REJECTED_SETUP: return "REJECTED_SETUP";
  case RS_ERROR_REJECTED_RESUME: return "REJECTED_RESUME";
  case RS_ERROR_CONNECTION_ERROR: return "CONNECTION_ERROR";
  case RS_ERROR_CONNECTION_CLOSE: return "CONNECTION_CLOSE";
  case RS_ERROR_APPLICATION_ERROR: return "APPLICATION_ERROR";
  case RS_ERROR_REJECTED: return "REJECTED";
  case RS_ERROR_CANCELED: return "CANCELED";
  case RS_ERROR_INVALID: return "INVALID";
  case RS_ERROR_RESERVED_EXT: return "RESERVED_FOR_EXTENSION";
  default: return code >= RS_ERROR_MIN_APPLICATION ? "APPLICATION_DEFINED" : "UNKNOWN";
  }
}

bool rs_frame_type_is_resumable(uint8_t type) {
  return (type >= RS_FRAME_REQUEST_RESPONSE && type <= RS_FRAME_ERROR);
}

void rs_frame_put_length(uint8_t out[RS_FRAME_LENGTH_SIZE], size_t frame_len) {
  rs__put_u24(out, (uint32_t)frame_len);
}

int rs_frame_decode_header(const uint8_t *buf, size_t len, uint32_t *stream_id, uint8_t *type,
                           uint16_t *flags) {
  if (!buf || len < RS_FRAME_HEADER_SIZE) return RS_ERR_FRAME_TOO_SHORT;
  uint16_t w = rs__get_u16(buf + 4);
  if (stream_id) *stream_id = rs__get_u32(buf) & RS_STREAM_ID_MAX;
  if (type) *type = (uint8_t)(w >> 10);
  if (flags) *flags = w & 0x3ff;
  return 0;
}

/* ---- decode ---- */

static int fail(rs_frame_error *e, int err, uint32_t code, size_t offset, const char *msg) {
  if (e) {
    e->err = err;
    e->code = code;
    e->offset = offset;
    e->message = msg;
  }
  return err;
}

#define FAIL(err, code, at, msg) return fail(e, err, code, (size_t)((at) - (buf)), msg)

/* Metadata (with its 24-bit length when M) and data up to `end`. */
static int decode_body(rs_frame *f, const uint8_t *buf, const uint8_t *p, const uint8_t *end,
                       uint32_t code, rs_frame_error *e) {
  if (f->flags & M) {
    if (end - p < 3) FAIL(RS_ERR_FRAME_TOO_SHORT, code, p, "metadata length field cut short");
    uint32_t ml = rs__get_u24(p);
    if (ml > (size_t)(end - p - 3))
      FAIL(RS_ERR_BAD_LENGTH, code, p, "metadata length points past the end of the frame");
    f->has_metadata = true;
    f->metadata.ptr = p + 3;
    f->metadata.len = ml;
    p += 3 + ml;
  }
  f->data.ptr = p;
  f->data.len = (size_t)(end - p);
  return 0;
}

static int decode_setup(rs_frame *f, const uint8_t *buf, const uint8_t *p, const uint8_t *end,
                        rs_frame_error *e) {
  const uint32_t code = RS_ERROR_INVALID_SETUP;
  if (end - p < 12) FAIL(RS_ERR_FRAME_TOO_SHORT, code, end, "SETUP shorter than its fixed fields");
  f->u.setup.major = rs__get_u16(p);
  f->u.setup.minor = rs__get_u16(p + 2);
  uint32_t ka = rs__get_u32(p + 4), life = rs__get_u32(p + 8);
  if (ka & 0x80000000u)
    FAIL(RS_ERR_BAD_VALUE, code, p + 4, "keepalive interval has its top bit set");
  if (ka == 0) FAIL(RS_ERR_BAD_VALUE, code, p + 4, "keepalive interval must be greater than 0");
  if (life & 0x80000000u) FAIL(RS_ERR_BAD_VALUE, code, p + 8, "max lifetime has its top bit set");
  if (life == 0) FAIL(RS_ERR_BAD_VALUE, code, p + 8, "max lifetime must be greater than 0");
  f->u.setup.keepalive_ms = ka;
  f->u.setup.max_lifetime_ms = life;
  p += 12;
  if (f->flags & R) {
    if (end - p < 2) FAIL(RS_ERR_FRAME_TOO_SHORT, code, p, "resume token length cut short");
    uint16_t tl = rs__get_u16(p);
    if (tl > end - p - 2) FAIL(RS_ERR_BAD_LENGTH, code, p, "resume token runs past the end");
    f->u.setup.resume_token.ptr = p + 2;
    f->u.setup.resume_token.len = tl;
    p += 2 + tl;
  }
  for (int i = 0; i < 2; i++) {
    if (end - p < 1) FAIL(RS_ERR_FRAME_TOO_SHORT, code, p, "MIME type length missing");
    uint8_t ml = *p;
    if (ml > end - p - 1) FAIL(RS_ERR_BAD_LENGTH, code, p, "MIME type runs past the end");
    rs_bytes *mime = i == 0 ? &f->u.setup.metadata_mime : &f->u.setup.data_mime;
    mime->ptr = p + 1;
    mime->len = ml;
    p += 1 + ml;
  }
  return decode_body(f, buf, p, end, code, e);
}

/* PAYLOAD fast path of rs_frame_decode: a well-formed PAYLOAD on a stream. Returns false to let
 * the general path decode (and report) anything else. */
static bool decode_payload_fast(rs_frame *f, const uint8_t *buf, size_t len) {
  if (len < RS_FRAME_HEADER_SIZE || len > RS_FRAME_MAX_SIZE) return false;
  uint32_t raw = rs__get_u32(buf);
  uint16_t w = rs__get_u16(buf + 4);
  uint16_t flags = w & 0x3ff;
  if ((w >> 10) != RS_FRAME_PAYLOAD || raw == 0 || (raw & 0x80000000u) || !(flags & (N | C | F)))
    return false;
  const uint8_t *p = buf + RS_FRAME_HEADER_SIZE, *end = buf + len;
  rs_bytes md = {NULL, 0};
  if (flags & M) {
    if (end - p < 3) return false;
    size_t ml = rs__get_u24(p);
    p += 3;
    if ((size_t)(end - p) < ml) return false;
    md.ptr = p;
    md.len = ml;
    p += ml;
  }
  /* Same result as the general path: every field written, the union zeroed. */
  memset(&f->u, 0, sizeof f->u);
  f->stream_id = raw;
  f->type = RS_FRAME_PAYLOAD;
  f->flags = flags;
  f->has_metadata = (flags & M) != 0;
  f->metadata = md;
  f->data.ptr = p;
  f->data.len = (size_t)(end - p);
  return true;
}

int rs_frame_decode(rs_frame *f, const uint8_t *buf, size_t len, rs_frame_error *e) {
  if (f && buf && decode_payload_fast(f, buf, len)) return 0;
  if (!f || (!buf && len))
    return fail(e, RS_ERR_INVALID_ARGUMENT, RS_ERROR_CONNECTION_ERROR, 0, "no frame given");
  memset(f, 0, sizeof *f);
  if (len < RS_FRAME_HEADER_SIZE)
    return fail(e, RS_ERR_FRAME_TOO_SHORT, RS_ERROR_CONNECTION_ERROR, 0,
                "frame shorter than the 6-byte header");
  if (len > RS_FRAME_MAX_SIZE)
    return fail(e, RS_ERR_FRAME_TOO_LARGE, RS_ERROR_CONNECTION_ERROR, 0,
                "frame longer than 16,777,215 bytes");
  uint32_t raw = rs__get_u32(buf);
  uint16_t w = rs__get_u16(buf + 4);
  f->stream_id = raw & RS_STREAM_ID_MAX;
  f->type = (uint8_t)(w >> 10);
  f->flags = w & 0x3ff;
  const uint8_t *p = buf + RS_FRAME_HEADER_SIZE, *end = buf + len;
  const type_info *t = info(f->type);
  if (!t) FAIL(RS_ERR_UNKNOWN_FRAME_TYPE, RS_ERROR_CONNECTION_ERROR, buf + 4, "unknown frame type");
  bool handshake = f->type == RS_FRAME_SETUP || f->type == RS_FRAME_RESUME;
  uint32_t code = handshake ? RS_ERROR_INVALID_SETUP : RS_ERROR_CONNECTION_ERROR;
  if (raw & 0x80000000u)
    FAIL(RS_ERR_BAD_STREAM_ID, code, buf, "reserved top bit of the stream id is set");
  if (t->sid == SID_ZERO && f->stream_id != 0)
    FAIL(RS_ERR_BAD_STREAM_ID, code, buf, "this frame type must use stream 0");
  if (t->sid == SID_NONZERO && f->stream_id == 0)
    FAIL(RS_ERR_BAD_STREAM_ID, code, buf, "this frame type must not use stream 0");
  if ((size_t)(end - p) < t->fixed)
    FAIL(RS_ERR_FRAME_TOO_SHORT, code, end, "frame shorter than its fixed fields");

  switch (f->type) {
  case RS_FRAME_SETUP: return decode_setup(f, buf, p, end, e);
  case RS_FRAME_LEASE: {
    uint32_t ttl = rs__get_u32(p), n = rs__get_u32(p + 4);
    if (ttl & 0x80000000u) FAIL(RS_ERR_BAD_VALUE, code, p, "lease TTL has its top bit set");
    if (n & 0x80000000u)
      FAIL(RS_ERR_BAD_VALUE, code, p + 4, "lease number of requests has its top bit set");
    f->u.lease.ttl_ms = ttl;
    f->u.lease.number_of_requests = n;
    p += 8;
    if (f->flags & M) {
      f->has_metadata = true;
      f->metadata.ptr = p;
      f->metadata.len = (size_t)(end - p);
    } else if (p != end) {
      FAIL(RS_ERR_BAD_LENGTH, code, p, "bytes after the LEASE fields without the M flag");
    }
    return 0;
  }
  case RS_FRAME_KEEPALIVE: {
    uint64_t pos = rs__get_u64(p);
    if (pos >> 63) FAIL(RS_ERR_BAD_VALUE, code, p, "keepalive position has its top bit set");
    f->u.keepalive.last_received_position = pos;
    f->data.ptr = p + 8;
    f->data.len = (size_t)(end - p - 8);
    return 0;
  }
  case RS_FRAME_REQUEST_RESPONSE:
  case RS_FRAME_REQUEST_FNF: return decode_body(f, buf, p, end, code, e);
  case RS_FRAME_REQUEST_STREAM:
  case RS_FRAME_REQUEST_CHANNEL: {
    uint32_t n = rs__get_u32(p);
    if (n & 0x80000000u)
      FAIL(RS_ERR_BAD_VALUE, RS_ERROR_INVALID, p, "initial request-n has its top bit set");
    if (n == 0)
      FAIL(RS_ERR_BAD_VALUE, RS_ERROR_INVALID, p, "initial request-n must be greater than 0");
    f->u.request.initial_request_n = n;
    return decode_body(f, buf, p + 4, end, code, e);
  }
  case RS_FRAME_REQUEST_N: {
    if (end - p != 4) FAIL(RS_ERR_BAD_LENGTH, code, p + 4, "REQUEST_N must be exactly 10 bytes");
    uint32_t n = rs__get_u32(p);
    if (n & 0x80000000u) FAIL(RS_ERR_BAD_VALUE, code, p, "request-n has its top bit set");
    if (n == 0) FAIL(RS_ERR_BAD_VALUE, code, p, "request-n must be greater than 0");
    f->u.request_n.n = n;
    return 0;
  }
  case RS_FRAME_CANCEL:
    if (p != end) FAIL(RS_ERR_BAD_LENGTH, code, p, "CANCEL must be exactly 6 bytes");
    return 0;
  case RS_FRAME_PAYLOAD:
    if (!(f->flags & (N | C | F)))
      FAIL(RS_ERR_BAD_FLAGS, code, buf + 4, "PAYLOAD with neither NEXT nor COMPLETE");
    return decode_body(f, buf, p, end, code, e);
  case RS_FRAME_ERROR:
    f->u.error.code = rs__get_u32(p);
    f->data.ptr = p + 4;
    f->data.len = (size_t)(end - p - 4);
    return 0;
  case RS_FRAME_METADATA_PUSH:
    if (!(f->flags & M)) FAIL(RS_ERR_BAD_FLAGS, code, buf + 4, "METADATA_PUSH without the M flag");
    f->has_metadata = true;
    f->metadata.ptr = p;
    f->metadata.len = (size_t)(end - p);
    return 0;
  case RS_FRAME_RESUME: {
    f->u.resume.major = rs__get_u16(p);
    f->u.resume.minor = rs__get_u16(p + 2);
    uint16_t tl = rs__get_u16(p + 4);
    if ((size_t)(end - p) != 22u + tl)
      FAIL(RS_ERR_BAD_LENGTH, code, p + 4, "RESUME length does not match its token length");
    f->u.resume.token.ptr = p + 6;
    f->u.resume.token.len = tl;
    p += 6 + tl;
    uint64_t a = rs__get_u64(p), b = rs__get_u64(p + 8);
    if (a >> 63)
      FAIL(RS_ERR_BAD_VALUE, code, p, "last received server position has its top bit set");
    if (b >> 63)
      FAIL(RS_ERR_BAD_VALUE, code, p + 8, "first available client position has its top bit set");
    f->u.resume.last_received_server_position = a;
    f->u.resume.first_available_client_position = b;
    return 0;
  }
  case RS_FRAME_RESUME_OK: {
    if (end - p != 8) FAIL(RS_ERR_BAD_LENGTH, code, p + 8, "RESUME_OK must be exactly 14 bytes");
    uint64_t pos = rs__get_u64(p);
    if (pos >> 63) FAIL(RS_ERR_BAD_VALUE, code, p, "resume position has its top bit set");
    f->u.resume_ok.last_received_client_position = pos;
    return 0;
  }
  case RS_FRAME_EXT: {
    uint32_t xt = rs__get_u32(p);
    if (xt & 0x80000000u) FAIL(RS_ERR_BAD_VALUE, code, p, "extended type has its top bit set");
    if (xt == 0) FAIL(RS_ERR_BAD_VALUE, code, p, "extended type must be greater than 0");
    f->u.ext.extended_type = xt;
    return decode_body(f, buf, p + 4, end, code, e);
  }
  default: break;
  }
  FAIL(RS_ERR_UNKNOWN_FRAME_TYPE, RS_ERROR_CONNECTION_ERROR, buf + 4, "unknown frame type");
}

/* ---- encode ---- */

static bool has_md_section(const type_info *t) {
  return t->body == BODY_MD_DATA || t->body == BODY_MD_ONLY;
}

/* Validates `f` for encoding; returns its head size (everything before the metadata bytes). */
static rs_ssize check(const rs_frame *f, const type_info **tout) {
  if (!f) return RS_ERR_INVALID_ARGUMENT;
  const type_info *t = f->type < 64 ? info(f->type) : NULL;
  if (!t) return RS_ERR_INVALID_ARGUMENT;
  if (f->stream_id > RS_STREAM_ID_MAX) return RS_ERR_INVALID_ARGUMENT;
  if (t->sid == SID_ZERO && f->stream_id != 0) return RS_ERR_INVALID_ARGUMENT;
  if (t->sid == SID_NONZERO && f->stream_id == 0) return RS_ERR_INVALID_ARGUMENT;
  bool md = f->has_metadata || f->type == RS_FRAME_METADATA_PUSH;
  if (md && !has_md_section(t)) return RS_ERR_INVALID_ARGUMENT;
  if (f->data.len && (t->body == BODY_NONE || t->body == BODY_MD_ONLY))
    return RS_ERR_INVALID_ARGUMENT;
  if ((f->metadata.len && !f->metadata.ptr) || (f->data.len && !f->data.ptr))
    return RS_ERR_INVALID_ARGUMENT;
  size_t head = RS_FRAME_HEADER_SIZE + t->fixed;
  switch (f->type) {
  case RS_FRAME_SETUP: {
    const __typeof__(f->u.setup) *s = &f->u.setup;
    if (s->keepalive_ms == 0 || s->keepalive_ms > 0x7fffffffu) return RS_ERR_INVALID_ARGUMENT;
    if (s->max_lifetime_ms == 0 || s->max_lifetime_ms > 0x7fffffffu) return RS_ERR_INVALID_ARGUMENT;
    if (s->metadata_mime.len > 255 || s->data_mime.len > 255) return RS_ERR_INVALID_ARGUMENT;
    if ((s->metadata_mime.len && !s->metadata_mime.ptr) || (s->data_mime.len && !s->data_mime.ptr))
      return RS_ERR_INVALID_ARGUMENT;
    if (f->flags & R) {
      if (s->resume_token.len > 0xffff || (s->resume_token.len && !s->resume_token.ptr))
        return RS_ERR_INVALID_ARGUMENT;
      head += 2 + s->resume_token.len;
    } else if (s->resume_token.len) {
      return RS_ERR_INVALID_ARGUMENT; /* a token without the R flag would be lost */
    }
    head += 2 + s->metadata_mime.len + s->data_mime.len;
    break;
  }
  case RS_FRAME_LEASE:
    if (f->u.lease.ttl_ms > 0x7fffffffu || f->u.lease.number_of_requests > 0x7fffffffu)
      return RS_ERR_INVALID_ARGUMENT;
    break;
  case RS_FRAME_KEEPALIVE:
    if (f->u.keepalive.last_received_position > RS_POSITION_MAX) return RS_ERR_INVALID_ARGUMENT;
    break;
  case RS_FRAME_REQUEST_STREAM:
  case RS_FRAME_REQUEST_CHANNEL:
    if (f->u.request.initial_request_n == 0 || f->u.request.initial_request_n > RS_REQUEST_N_MAX)
      return RS_ERR_INVALID_ARGUMENT;
    break;
  case RS_FRAME_REQUEST_N:
    if (f->u.request_n.n == 0 || f->u.request_n.n > RS_REQUEST_N_MAX)
      return RS_ERR_INVALID_ARGUMENT;
    break;
  case RS_FRAME_PAYLOAD:
    if (!(f->flags & (N | C | F))) return RS_ERR_INVALID_ARGUMENT;
    break;
  case RS_FRAME_RESUME:
    if (f->u.resume.token.len > 0xffff || (f->u.resume.token.len && !f->u.resume.token.ptr))
      return RS_ERR_INVALID_ARGUMENT;
    if (f->u.resume.last_received_server_position > RS_POSITION_MAX ||
        f->u.resume.first_available_client_position > RS_POSITION_MAX)
      return RS_ERR_INVALID_ARGUMENT;
    head += f->u.resume.token.len;
    break;
  case RS_FRAME_RESUME_OK:
    if (f->u.resume_ok.last_received_client_position > RS_POSITION_MAX)
      return RS_ERR_INVALID_ARGUMENT;
    break;
  case RS_FRAME_EXT:
    if (f->u.ext.extended_type == 0 || f->u.ext.extended_type > 0x7fffffffu)
      return RS_ERR_INVALID_ARGUMENT;
    break;
  default: break;
  }
  if (md && t->body == BODY_MD_DATA) {
    if (f->metadata.len > RS_METADATA_LENGTH_MAX) return RS_ERR_INVALID_ARGUMENT;
    head += 3;
  }
  *tout = t;
  return (rs_ssize)head;
}

rs_ssize rs_frame_head_size(const rs_frame *f) {
  const type_info *t;
  return check(f, &t);
}

rs_ssize rs_frame_encoded_size(const rs_frame *f) {
  const type_info *t;
  rs_ssize head = check(f, &t);
  if (head < 0) return head;
  bool md = f->has_metadata || f->type == RS_FRAME_METADATA_PUSH;
  size_t total = (size_t)head + (md ? f->metadata.len : 0) + f->data.len;
  if (total > RS_FRAME_MAX_SIZE) return RS_ERR_INVALID_ARGUMENT;
  return (rs_ssize)total;
}

static uint8_t *write_head(const rs_frame *f, const type_info *t, uint8_t *p) {
  bool md = f->has_metadata || f->type == RS_FRAME_METADATA_PUSH;
  uint16_t flags = (uint16_t)(f->flags & (t->flags | I) & ~M);
  if (md) flags |= M;
  p = rs__put_u32(p, f->stream_id);
  p = rs__put_u16(p, (uint16_t)((unsigned)f->type << 10 | flags));
  switch (f->type) {
  case RS_FRAME_SETUP:
    p = rs__put_u16(p, f->u.setup.major);
    p = rs__put_u16(p, f->u.setup.minor);
    p = rs__put_u32(p, f->u.setup.keepalive_ms);
    p = rs__put_u32(p, f->u.setup.max_lifetime_ms);
    if (flags & R) {
      p = rs__put_u16(p, (uint16_t)f->u.setup.resume_token.len);
      p = rs__put_bytes(p, f->u.setup.resume_token.ptr, f->u.setup.resume_token.len);
    }
    *p++ = (uint8_t)f->u.setup.metadata_mime.len;
    p = rs__put_bytes(p, f->u.setup.metadata_mime.ptr, f->u.setup.metadata_mime.len);
    *p++ = (uint8_t)f->u.setup.data_mime.len;
    p = rs__put_bytes(p, f->u.setup.data_mime.ptr, f->u.setup.data_mime.len);
    break;
  case RS_FRAME_LEASE:
    p = rs__put_u32(p, f->u.lease.ttl_ms);
    p = rs__put_u32(p, f->u.lease.number_of_requests);
    break;
  case RS_FRAME_KEEPALIVE: p = rs__put_u64(p, f->u.keepalive.last_received_position); break;
  case RS_FRAME_REQUEST_STREAM:
  case RS_FRAME_REQUEST_CHANNEL: p = rs__put_u32(p, f->u.request.initial_request_n); break;
  case RS_FRAME_REQUEST_N: p = rs__put_u32(p, f->u.request_n.n); break;
  case RS_FRAME_ERROR: p = rs__put_u32(p, f->u.error.code); break;
  case RS_FRAME_RESUME:
    p = rs__put_u16(p, f->u.resume.major);
    p = rs__put_u16(p, f->u.resume.minor);
    p = rs__put_u16(p, (uint16_t)f->u.resume.token.len);
    p = rs__put_bytes(p, f->u.resume.token.ptr, f->u.resume.token.len);
    p = rs__put_u64(p, f->u.resume.last_received_server_position);
    p = rs__put_u64(p, f->u.resume.first_available_client_position);
    break;
  case RS_FRAME_RESUME_OK: p = rs__put_u64(p, f->u.resume_ok.last_received_client_position); break;
  case RS_FRAME_EXT: p = rs__put_u32(p, f->u.ext.extended_type); break;
  default: break;
  }
  if (md && t->body == BODY_MD_DATA) p = rs__put_u24(p, (uint32_t)f->metadata.len);
  return p;
}

rs_ssize rs_frame_encode_head(const rs_frame *f, uint8_t *buf, size_t cap) {
  const type_info *t;
  rs_ssize head = check(f, &t);
  if (head < 0) return head;
  if (!buf || cap < (size_t)head) return RS_ERR_BUFFER_TOO_SMALL;
  write_head(f, t, buf);
  return head;
}

/* PAYLOAD, the frame of every response and stream element, without the generic checks' table
 * lookups and switches. Returns 0 when `f` needs the general path (which reports errors). */
static rs_ssize encode_payload_fast(const rs_frame *f, uint8_t *buf, size_t cap) {
  size_t ml = f->has_metadata ? f->metadata.len : 0;
  if (f->stream_id == 0 || f->stream_id > RS_STREAM_ID_MAX || !(f->flags & (N | C | F)) ||
      ml > RS_METADATA_LENGTH_MAX || (ml && !f->metadata.ptr) || (f->data.len && !f->data.ptr))
    return 0;
  size_t total = RS_FRAME_HEADER_SIZE + (f->has_metadata ? 3 + ml : 0) + f->data.len;
  if (total > RS_FRAME_MAX_SIZE) return 0;
  if (!buf || cap < total) return RS_ERR_BUFFER_TOO_SMALL;
  uint16_t flags = (uint16_t)(f->flags & (I | F | C | N));
  if (f->has_metadata) flags |= M;
  uint8_t *p = rs__put_u32(buf, f->stream_id);
  p = rs__put_u16(p, (uint16_t)((unsigned)RS_FRAME_PAYLOAD << 10 | flags));
  if (f->has_metadata) {
    p = rs__put_u24(p, (uint32_t)ml);
    p = rs__put_bytes(p, f->metadata.ptr, ml);
  }
  rs__put_bytes(p, f->data.ptr, f->data.len);
  return (rs_ssize)total;
}

rs_ssize rs_frame_encode(const rs_frame *f, uint8_t *buf, size_t cap) {
  if (f && f->type == RS_FRAME_PAYLOAD) {
    rs_ssize n = encode_payload_fast(f, buf, cap);
    if (n != 0) return n;
  }
  rs_ssize total = rs_frame_encoded_size(f);
  if (total < 0) return total;
  if (!buf || cap < (size_t)total) return RS_ERR_BUFFER_TOO_SMALL;
  const type_info *t = info(f->type);
  uint8_t *p = write_head(f, t, buf);
  if (f->has_metadata || f->type == RS_FRAME_METADATA_PUSH)
    p = rs__put_bytes(p, f->metadata.ptr, f->metadata.len);
  rs__put_bytes(p, f->data.ptr, f->data.len);
  return total;
}
