/* --debug: every frame sent and received, one decoded line each, on stderr. */
#include <stdio.h>

#include "cli.h"
#include "rsocket/frame.h"

static bool enabled;

void cli_debug_enable(void) {
  enabled = true;
}

bool cli_debug_enabled(void) {
  return enabled;
}

static void preview(const char *label, rs_bytes b) {
  fprintf(stderr, " %s=%zuB", label, b.len);
  if (b.len == 0) return;
  fputs(" \"", stderr);
  size_t n = b.len < 32 ? b.len : 32;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = b.ptr[i];
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
      fputc(c, stderr);
    else
      fprintf(stderr, "\\x%02x", c);
  }
  fputs(b.len > n ? "\"…" : "\"", stderr);
}

void cli_debug_frame(bool out, const uint8_t *frame, size_t len) {
  if (!enabled) return;
  rs_frame f;
  rs_frame_error e;
  int rc = rs_frame_decode(&f, frame, len, &e);
  fprintf(stderr, "%s ", out ? ">>" : "<<");
  if (rc != 0 && rc != RS_ERR_UNKNOWN_FRAME_TYPE && rc != RS_ERR_BAD_STREAM_ID) {
    fprintf(stderr, "malformed frame (%zu bytes): %s at byte %zu\n", len, e.message, e.offset);
    return;
  }
  fprintf(stderr, "%s stream=%u flags=0x%03x", rs_frame_type_name(f.type), f.stream_id, f.flags);
  switch (f.type) {
  case RS_FRAME_SETUP:
    fprintf(stderr, " version=%u.%u keepalive=%ums lifetime=%ums mime=%.*s/%.*s", f.u.setup.major,
            f.u.setup.minor, f.u.setup.keepalive_ms, f.u.setup.max_lifetime_ms,
            (int)f.u.setup.metadata_mime.len, (const char *)f.u.setup.metadata_mime.ptr,
            (int)f.u.setup.data_mime.len, (const char *)f.u.setup.data_mime.ptr);
    break;
  case RS_FRAME_LEASE:
    fprintf(stderr, " ttl=%ums requests=%u", f.u.lease.ttl_ms, f.u.lease.number_of_requests);
    break;
  case RS_FRAME_KEEPALIVE:
    fprintf(stderr, " position=%llu", (unsigned long long)f.u.keepalive.last_received_position);
    break;
  case RS_FRAME_REQUEST_STREAM:
  case RS_FRAME_REQUEST_CHANNEL: fprintf(stderr, " n=%u", f.u.request.initial_request_n); break;
  case RS_FRAME_REQUEST_N: fprintf(stderr, " n=%u", f.u.request_n.n); break;
  case RS_FRAME_ERROR:
    fprintf(stderr, " code=%s(0x%x)", rs_error_code_name(f.u.error.code), f.u.error.code);
    break;
  case RS_FRAME_RESUME:
    fprintf(stderr, " server_pos=%llu client_pos=%llu",
            (unsigned long long)f.u.resume.last_received_server_position,
            (unsigned long long)f.u.resume.first_available_client_position);
    break;
  case RS_FRAME_RESUME_OK:
    fprintf(stderr, " position=%llu",
            (unsigned long long)f.u.resume_ok.last_received_client_position);
    break;
  default: break;
  }
  if (f.has_metadata) preview("metadata", f.metadata);
  if (f.data.len || f.type == RS_FRAME_PAYLOAD || f.type == RS_FRAME_REQUEST_RESPONSE)
    preview("data", f.data);
  fputc('\n', stderr);
}
