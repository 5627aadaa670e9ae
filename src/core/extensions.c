/*
 * Codecs for the well-known RSocket extensions: composite metadata, routing, authentication,
 * per-stream data MIME types, Zipkin tracing. Custom MIME and auth-type strings use the
 * "length minus one" 7-bit encoding that rsocket-java, -go and -js use (1..128 bytes).
 */
#include <string.h>

#include "core/wire.h"
#include "rsocket/extensions.h"

/* The well-known MIME types by id, with their lengths (rs_mime_id compares lengths first). */
typedef struct mime_name {
  const char *name;
  size_t len;
} mime_name;
#define MIME(s)                                                                                    \
  { s, sizeof(s) - 1 }

static const mime_name mime_names[128] = {
    [0x00] = MIME("application/avro"),
    [0x01] = MIME("application/cbor"),
    [0x02] = MIME("application/graphql"),
    [0x03] = MIME("application/gzip"),
    [0x04] = MIME("application/javascript"),
    [0x05] = MIME("application/json"),
    [0x06] = MIME("application/octet-stream"),
    [0x07] = MIME("application/pdf"),
    [0x08] = MIME("application/vnd.apache.thrift.binary"),
    [0x09] = MIME("application/vnd.google.protobuf"),
    [0x0A] = MIME("application/xml"),
    [0x0B] = MIME("application/zip"),
    [0x0C] = MIME("audio/aac"),
    [0x0D] = MIME("audio/mp3"),
    [0x0E] = MIME("audio/mp4"),
    [0x0F] = MIME("audio/mpeg3"),
    [0x10] = MIME("audio/mpeg"),
    [0x11] = MIME("audio/ogg"),
    [0x12] = MIME("audio/opus"),
    [0x13] = MIME("audio/vorbis"),
    [0x14] = MIME("image/bmp"),
    [0x15] = MIME("image/gif"),
    [0x16] = MIME("image/heic-sequence"),
    [0x17] = MIME("image/heic"),
    [0x18] = MIME("image/heif-sequence"),
    [0x19] = MIME("image/heif"),
    [0x1A] = MIME("image/jpeg"),
    [0x1B] = MIME("image/png"),
    [0x1C] = MIME("image/tiff"),
    [0x1D] = MIME("multipart/mixed"),
    [0x1E] = MIME("text/css"),
    [0x1F] = MIME("text/csv"),
    [0x20] = MIME("text/html"),
    [0x21] = MIME("text/plain"),
    [0x22] = MIME("text/xml"),
    [0x23] = MIME("video/H264"),
    [0x24] = MIME("video/H265"),
    [0x25] = MIME("video/VP8"),
    [0x26] = MIME("application/x-hessian"),
    [0x27] = MIME("application/x-java-object"),
    [0x28] = MIME("application/cloudevents+json"),
    [0x29] = MIME("application/x-capnp"),
    [0x2A] = MIME("application/x-flatbuffers"),
    [0x7A] = MIME(RS_MIME_DATA_MIME),
    [0x7B] = MIME(RS_MIME_ACCEPT_MIMES),
    [0x7C] = MIME(RS_MIME_AUTHENTICATION),
    [0x7D] = MIME(RS_MIME_TRACING_ZIPKIN),
    [0x7E] = MIME(RS_MIME_ROUTING),
    [0x7F] = MIME(RS_MIME_COMPOSITE_METADATA),
};
#undef MIME

const char *rs_mime_name(uint8_t id) {
  return id < 128 ? mime_names[id].name : NULL;
}

int rs_mime_id(const char *name, size_t len) {
  if (!name || len == 0 || len > 128) return -1;
  /* 49 entries; compare the lengths and the cheap first and last bytes before the whole string
   * (this runs for every composite entry written with a MIME string: per request in a gateway). */
  for (int i = 0; i < 128; i++) {
    const mime_name *m = &mime_names[i];
    if (m->len != len || m->name[0] != name[0] || m->name[len - 1] != name[len - 1]) continue;
    if (memcmp(m->name, name, len) == 0) return i;
  }
  return -1;
}

static rs_bytes bytes_of(const char *s) {
  rs_bytes b = {(const uint8_t *)s, s ? strlen(s) : 0};
  return b;
}

/* ---- the shared [flag|7-bit id or len-1] MIME/type header ---- */

/* Size of a MIME header for `mime` (1 for a well-known id, 1 + len otherwise), or an error. */
static rs_ssize mime_header_size(const char *mime, size_t len, int *id_out) {
  int id = rs_mime_id(mime, len);
  *id_out = id;
  if (id >= 0) return 1;
  if (!mime || len == 0 || len > 128) return RS_ERR_INVALID_ARGUMENT;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)mime[i] > 0x7f) return RS_ERR_INVALID_ARGUMENT; /* US-ASCII only */
  return (rs_ssize)(1 + len);
}

static uint8_t *put_mime_header(uint8_t *p, int id, const char *mime, size_t len) {
  if (id >= 0) {
    *p++ = (uint8_t)(0x80 | id);
    return p;
  }
  *p++ = (uint8_t)(len - 1);
  return rs__put_bytes(p, (const uint8_t *)mime, len);
}

/* Reads a MIME header at buf[0..len): sets well_known, id and mime; returns bytes used or <0. */
static rs_ssize get_mime_header(const uint8_t *buf, size_t len, bool *well_known, uint8_t *id,
                                rs_bytes *mime) {
  if (len < 1) return RS_ERR_MALFORMED;
  uint8_t b = buf[0];
  if (b & 0x80) {
    *well_known = true;
    *id = b & 0x7f;
    *mime = (rs_bytes){(const uint8_t *)mime_names[*id].name, mime_names[*id].len};
    return 1;
  }
  size_t n = (size_t)b + 1;
  if (len - 1 < n) return RS_ERR_MALFORMED;
  *well_known = false;
  *id = 0;
  mime->ptr = buf + 1;
  mime->len = n;
  return (rs_ssize)(1 + n);
}

/* ---- composite metadata ---- */

void rs_composite_iter_init(rs_composite_iter *it, const uint8_t *buf, size_t len) {
  it->buf = buf;
  it->len = buf ? len : 0;
  it->off = 0;
  it->error = 0;
}

int rs_composite_next(rs_composite_iter *it, rs_composite_entry *entry) {
  if (it->error) return it->error;
  if (it->off == it->len) return 0;
  const uint8_t *p = it->buf + it->off;
  size_t left = it->len - it->off;
  rs_ssize h = get_mime_header(p, left, &entry->well_known, &entry->mime_id, &entry->mime);
  if (h < 0 || left - (size_t)h < 3) return it->error = RS_ERR_MALFORMED;
  size_t n = rs__get_u24(p + h);
  if (n > left - (size_t)h - 3) return it->error = RS_ERR_MALFORMED;
  entry->content.ptr = p + h + 3;
  entry->content.len = n;
  it->off += (size_t)h + 3 + n;
  return 1;
}

static rs_ssize composite_put(uint8_t *buf, size_t cap, int id, const char *mime, size_t mime_len,
                              rs_ssize hsize, const uint8_t *content, size_t content_len) {
  if (content_len > 0xFFFFFF || (content_len && !content)) return RS_ERR_INVALID_ARGUMENT;
  size_t total = (size_t)hsize + 3 + content_len;
  if (!buf && cap == 0) return (rs_ssize)total;
  if (!buf || cap < total) return RS_ERR_BUFFER_TOO_SMALL;
  uint8_t *p = put_mime_header(buf, id, mime, mime_len);
  p = rs__put_u24(p, (uint32_t)content_len);
  rs__put_bytes(p, content, content_len);
  return (rs_ssize)total;
}

rs_ssize rs_composite_encode(uint8_t *buf, size_t cap, const char *mime, size_t mime_len,
                             const uint8_t *content, size_t content_len) {
  int id;
  rs_ssize h = mime_header_size(mime, mime_len, &id);
  if (h < 0) return h;
  return composite_put(buf, cap, id, mime, mime_len, h, content, content_len);
}

rs_ssize rs_composite_encode_id(uint8_t *buf, size_t cap, uint8_t id, const uint8_t *content,
                                size_t content_len) {
  if (id > 0x7f) return RS_ERR_INVALID_ARGUMENT;
  return composite_put(buf, cap, id, NULL, 0, 1, content, content_len);
}

/* ---- routing ---- */

void rs_routing_iter_init(rs_routing_iter *it, const uint8_t *buf, size_t len) {
  it->buf = buf;
  it->len = buf ? len : 0;
  it->off = 0;
  it->error = 0;
}

int rs_routing_next(rs_routing_iter *it, rs_bytes *tag) {
  if (it->error) return it->error;
  if (it->off == it->len) return 0;
  size_t n = it->buf[it->off];
  if (n == 0 || n > it->len - it->off - 1) return it->error = RS_ERR_MALFORMED;
  tag->ptr = it->buf + it->off + 1;
  tag->len = n;
  it->off += 1 + n;
  return 1;
}

rs_ssize rs_routing_encode(uint8_t *buf, size_t cap, const rs_bytes *tags, size_t n) {
  if (n && !tags) return RS_ERR_INVALID_ARGUMENT;
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    if (tags[i].len == 0 || tags[i].len > 255 || !tags[i].ptr) return RS_ERR_INVALID_ARGUMENT;
    total += 1 + tags[i].len;
  }
  if (!buf && cap == 0) return (rs_ssize)total;
  if (!buf || cap < total) return RS_ERR_BUFFER_TOO_SMALL;
  uint8_t *p = buf;
  for (size_t i = 0; i < n; i++) {
    *p++ = (uint8_t)tags[i].len;
    p = rs__put_bytes(p, tags[i].ptr, tags[i].len);
  }
  return (rs_ssize)total;
}

/* ---- authentication ---- */

static const char *const auth_names[] = {"simple", "bearer"};

int rs_auth_decode(rs_auth *out, const uint8_t *buf, size_t len) {
  if (!out || !buf || len < 1) return RS_ERR_MALFORMED;
  uint8_t b = buf[0];
  if (b & 0x80) {
    out->well_known = true;
    out->type_id = b & 0x7f;
    out->type = bytes_of(out->type_id < 2 ? auth_names[out->type_id] : "");
    out->payload.ptr = buf + 1;
    out->payload.len = len - 1;
    return 0;
  }
  size_t n = (size_t)b + 1;
  if (len - 1 < n) return RS_ERR_MALFORMED;
  out->well_known = false;
  out->type_id = 0;
  out->type.ptr = buf + 1;
  out->type.len = n;
  out->payload.ptr = buf + 1 + n;
  out->payload.len = len - 1 - n;
  return 0;
}

int rs_auth_simple_decode(rs_bytes payload, rs_bytes *user, rs_bytes *password) {
  if (payload.len < 2 || !payload.ptr) return RS_ERR_MALFORMED;
  size_t ul = rs__get_u16(payload.ptr);
  if (ul > payload.len - 2) return RS_ERR_MALFORMED;
  user->ptr = payload.ptr + 2;
  user->len = ul;
  password->ptr = payload.ptr + 2 + ul;
  password->len = payload.len - 2 - ul;
  return 0;
}

rs_ssize rs_auth_encode_simple(uint8_t *buf, size_t cap, const char *user, size_t user_len,
                               const char *password, size_t password_len) {
  if (user_len > 0xffff || (user_len && !user) || (password_len && !password))
    return RS_ERR_INVALID_ARGUMENT;
  size_t total = 1 + 2 + user_len + password_len;
  if (!buf && cap == 0) return (rs_ssize)total;
  if (!buf || cap < total) return RS_ERR_BUFFER_TOO_SMALL;
  uint8_t *p = buf;
  *p++ = 0x80 | RS_AUTH_SIMPLE;
  p = rs__put_u16(p, (uint16_t)user_len);
  p = rs__put_bytes(p, (const uint8_t *)user, user_len);
  rs__put_bytes(p, (const uint8_t *)password, password_len);
  return (rs_ssize)total;
}

rs_ssize rs_auth_encode_bearer(uint8_t *buf, size_t cap, const char *token, size_t token_len) {
  if (token_len && !token) return RS_ERR_INVALID_ARGUMENT;
  size_t total = 1 + token_len;
  if (!buf && cap == 0) return (rs_ssize)total;
  if (!buf || cap < total) return RS_ERR_BUFFER_TOO_SMALL;
  buf[0] = 0x80 | RS_AUTH_BEARER;
  rs__put_bytes(buf + 1, (const uint8_t *)token, token_len);
  return (rs_ssize)total;
}

rs_ssize rs_auth_encode_custom(uint8_t *buf, size_t cap, const char *type, size_t type_len,
                               const uint8_t *payload, size_t payload_len) {
  if (!type || type_len == 0 || type_len > 128 || (payload_len && !payload))
    return RS_ERR_INVALID_ARGUMENT;
  int id = -1;
  for (int i = 0; i < 2; i++)
    if (strlen(auth_names[i]) == type_len && memcmp(auth_names[i], type, type_len) == 0) id = i;
  size_t total = (id >= 0 ? 1 : 1 + type_len) + payload_len;
  if (!buf && cap == 0) return (rs_ssize)total;
  if (!buf || cap < total) return RS_ERR_BUFFER_TOO_SMALL;
  uint8_t *p = buf;
  if (id >= 0) {
    *p++ = (uint8_t)(0x80 | id);
  } else {
    *p++ = (uint8_t)(type_len - 1);
    p = rs__put_bytes(p, (const uint8_t *)type, type_len);
  }
  rs__put_bytes(p, payload, payload_len);
  return (rs_ssize)total;
}

/* ---- per-stream data MIME ---- */

rs_ssize rs_data_mime_encode(uint8_t *buf, size_t cap, const char *mime, size_t mime_len) {
  int id;
  rs_ssize h = mime_header_size(mime, mime_len, &id);
  if (h < 0) return h;
  if (!buf && cap == 0) return h;
  if (!buf || cap < (size_t)h) return RS_ERR_BUFFER_TOO_SMALL;
  put_mime_header(buf, id, mime, mime_len);
  return h;
}

int rs_data_mime_decode(const uint8_t *buf, size_t len, rs_bytes *mime, size_t *consumed) {
  bool wk;
  uint8_t id;
  if (!buf || !mime || !consumed) return RS_ERR_MALFORMED;
  rs_ssize h = get_mime_header(buf, len, &wk, &id, mime);
  if (h < 0) return RS_ERR_MALFORMED;
  *consumed = (size_t)h;
  return 0;
}

/* ---- Zipkin tracing ---- */

static size_t trace_size(uint8_t flags) {
  if (!(flags & RS_TRACE_IDS)) return 1;
  return 1 + 16 + ((flags & RS_TRACE_ID128) ? 8 : 0) + ((flags & RS_TRACE_PARENT) ? 8 : 0);
}

int rs_trace_decode(rs_trace *out, const uint8_t *buf, size_t len) {
  if (!out || !buf || len < 1) return RS_ERR_MALFORMED;
  memset(out, 0, sizeof *out);
  out->flags = buf[0];
  if (len != trace_size(out->flags)) return RS_ERR_MALFORMED;
  if (!(out->flags & RS_TRACE_IDS)) return 0;
  const uint8_t *p = buf + 1;
  if (out->flags & RS_TRACE_ID128) {
    out->trace_id_high = rs__get_u64(p);
    p += 8;
  }
  out->trace_id = rs__get_u64(p);
  out->span_id = rs__get_u64(p + 8);
  p += 16;
  if (out->flags & RS_TRACE_PARENT) out->parent_span_id = rs__get_u64(p);
  return 0;
}

rs_ssize rs_trace_encode(uint8_t *buf, size_t cap, const rs_trace *t) {
  if (!t) return RS_ERR_INVALID_ARGUMENT;
  /* Without IDs the 128-bit and parent flags describe nothing: one flag byte, as decoded. */
  size_t total = trace_size(t->flags);
  if (!buf && cap == 0) return (rs_ssize)total;
  if (!buf || cap < total) return RS_ERR_BUFFER_TOO_SMALL;
  uint8_t *p = buf;
  *p++ = (uint8_t)(t->flags & 0xfc);
  if (t->flags & RS_TRACE_IDS) {
    if (t->flags & RS_TRACE_ID128) p = rs__put_u64(p, t->trace_id_high);
    p = rs__put_u64(p, t->trace_id);
    p = rs__put_u64(p, t->span_id);
    if (t->flags & RS_TRACE_PARENT) rs__put_u64(p, t->parent_span_id);
  }
  return (rs_ssize)total;
}
