/* Human-readable one-line descriptions of frames (rs_frame_describe): rsocket-dump and
 * `rsocket --debug` print them. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "rsocket/frame.h"

/* A line being written into buf: `len` bytes are there (NUL-terminated while cap > 0), `need`
 * counts what the whole line takes (snprintf's return value). */
typedef struct out {
  char *buf;
  size_t cap, len, need;
} out;

__attribute__((format(printf, 2, 3))) static void put(out *o, const char *fmt, ...) {
  char *dst = o->len + 1 < o->cap ? o->buf + o->len : NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(dst, dst ? o->cap - o->len : 0, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  o->need += (size_t)n;
  if (!dst) return;
  o->len += (size_t)n;
  if (o->len >= o->cap) o->len = o->cap - 1;
}

size_t rs_frame_flag_names(const rs_frame *f, char *buf, size_t cap) {
  out o = {buf, cap, 0, 0};
  if (cap) buf[0] = '\0';
  if (!f) return 0;
  const char *sep = "";
#define FLAG(bit, name)                                                                            \
  if (f->flags & (bit)) {                                                                          \
    put(&o, "%s%s", sep, name);                                                                    \
    sep = "|";                                                                                     \
  }
  FLAG(RS_FLAG_IGNORE, "I");
  FLAG(RS_FLAG_METADATA, "M");
  switch (f->type) {
  case RS_FRAME_SETUP:
    FLAG(RS_FLAG_RESUME, "R");
    FLAG(RS_FLAG_LEASE, "L");
    break;
  case RS_FRAME_KEEPALIVE: FLAG(RS_FLAG_RESPOND, "R"); break;
  case RS_FRAME_REQUEST_RESPONSE:
  case RS_FRAME_REQUEST_FNF:
  case RS_FRAME_REQUEST_STREAM: FLAG(RS_FLAG_FOLLOWS, "F"); break;
  case RS_FRAME_REQUEST_CHANNEL:
    FLAG(RS_FLAG_FOLLOWS, "F");
    FLAG(RS_FLAG_COMPLETE, "C");
    break;
  case RS_FRAME_PAYLOAD:
    FLAG(RS_FLAG_FOLLOWS, "F");
    FLAG(RS_FLAG_COMPLETE, "C");
    FLAG(RS_FLAG_NEXT, "N");
    break;
  default: break;
  }
#undef FLAG
  if (o.need == 0) put(&o, "-");
  return o.need;
}

static void preview_bytes(out *o, const char *label, rs_bytes b, size_t max) {
  put(o, " %s=%zuB", label, b.len);
  if (b.len == 0 || max == 0) return;
  put(o, " \"");
  size_t n = b.len < max ? b.len : max;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = b.ptr[i];
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
      put(o, "%c", c);
    else
      put(o, "\\x%02x", c);
  }
  put(o, b.len > n ? "\"..." : "\"");
}

size_t rs_frame_describe(const rs_frame *f, size_t preview, char *buf, size_t cap) {
  out o = {buf, cap, 0, 0};
  if (cap) buf[0] = '\0';
  if (!f) return 0;
  char flags[32]; /* every flag of one type fits: "I|M|F|C|N" */
  rs_frame_flag_names(f, flags, sizeof flags);
  put(&o, "%s stream=%" PRIu32 " flags=%s", rs_frame_type_name(f->type), f->stream_id, flags);
  switch (f->type) {
  case RS_FRAME_SETUP:
    put(&o, " version=%u.%u keepalive=%" PRIu32 "ms lifetime=%" PRIu32 "ms", f->u.setup.major,
        f->u.setup.minor, f->u.setup.keepalive_ms, f->u.setup.max_lifetime_ms);
    if (f->flags & RS_FLAG_RESUME) put(&o, " token=%zuB", f->u.setup.resume_token.len);
    put(&o, " metadata-mime=%.*s data-mime=%.*s", (int)f->u.setup.metadata_mime.len,
        (const char *)f->u.setup.metadata_mime.ptr, (int)f->u.setup.data_mime.len,
        (const char *)f->u.setup.data_mime.ptr);
    break;
  case RS_FRAME_LEASE:
    put(&o, " ttl=%" PRIu32 "ms requests=%" PRIu32, f->u.lease.ttl_ms,
        f->u.lease.number_of_requests);
    break;
  case RS_FRAME_KEEPALIVE:
    put(&o, " position=%" PRIu64, f->u.keepalive.last_received_position);
    break;
  case RS_FRAME_REQUEST_STREAM:
  case RS_FRAME_REQUEST_CHANNEL: put(&o, " n=%" PRIu32, f->u.request.initial_request_n); break;
  case RS_FRAME_REQUEST_N: put(&o, " n=%" PRIu32, f->u.request_n.n); break;
  case RS_FRAME_ERROR:
    put(&o, " code=%s(0x%" PRIX32 ")", rs_error_code_name(f->u.error.code), f->u.error.code);
    break;
  case RS_FRAME_RESUME:
    put(&o,
        " version=%u.%u token=%zuB last-received-server=%" PRIu64
        " first-available-client=%" PRIu64,
        f->u.resume.major, f->u.resume.minor, f->u.resume.token.len,
        f->u.resume.last_received_server_position, f->u.resume.first_available_client_position);
    break;
  case RS_FRAME_RESUME_OK:
    put(&o, " last-received-client=%" PRIu64, f->u.resume_ok.last_received_client_position);
    break;
  case RS_FRAME_EXT: put(&o, " ext-type=%" PRIu32, f->u.ext.extended_type); break;
  default: break;
  }
  if (f->has_metadata) preview_bytes(&o, "metadata", f->metadata, preview);
  bool has_data = f->type != RS_FRAME_LEASE && f->type != RS_FRAME_METADATA_PUSH &&
                  f->type != RS_FRAME_REQUEST_N && f->type != RS_FRAME_CANCEL &&
                  f->type != RS_FRAME_RESUME && f->type != RS_FRAME_RESUME_OK;
  if (has_data) preview_bytes(&o, f->type == RS_FRAME_ERROR ? "message" : "data", f->data, preview);
  return o.need;
}
