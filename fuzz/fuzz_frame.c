/* Frame decoder: decode → encode → decode must give the same frame, field for field. */
#include <stdlib.h>
#include <string.h>

#include "rsocket/frame.h"

static void same_bytes(rs_bytes a, rs_bytes b) {
  if (a.len != b.len || (a.len && memcmp(a.ptr, b.ptr, a.len) != 0)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rs_frame a, b;
  rs_frame_error e;
  if (rs_frame_decode(&a, data, size, &e) != 0) {
    if (!e.message || e.offset > size) abort();
    return 0;
  }
  rs_ssize n = rs_frame_encoded_size(&a);
  if (n < 0) abort(); /* everything that decodes must encode */
  uint8_t *buf = malloc((size_t)n);
  if (rs_frame_encode(&a, buf, (size_t)n) != n) abort();
  if (rs_frame_decode(&b, buf, (size_t)n, &e) != 0) abort();
  /* Flags come back masked to the type's defined bits (plus I); M follows has_metadata. */
  if (a.type != b.type || a.stream_id != b.stream_id || a.has_metadata != b.has_metadata) abort();
  if ((b.flags & ~a.flags) != 0) abort();
  same_bytes(a.metadata, b.metadata);
  same_bytes(a.data, b.data);
  switch (a.type) {
  case RS_FRAME_SETUP:
    if (a.u.setup.major != b.u.setup.major || a.u.setup.minor != b.u.setup.minor ||
        a.u.setup.keepalive_ms != b.u.setup.keepalive_ms ||
        a.u.setup.max_lifetime_ms != b.u.setup.max_lifetime_ms)
      abort();
    same_bytes(a.u.setup.resume_token, b.u.setup.resume_token);
    same_bytes(a.u.setup.metadata_mime, b.u.setup.metadata_mime);
    same_bytes(a.u.setup.data_mime, b.u.setup.data_mime);
    break;
  case RS_FRAME_RESUME:
    same_bytes(a.u.resume.token, b.u.resume.token);
    if (a.u.resume.last_received_server_position != b.u.resume.last_received_server_position ||
        a.u.resume.first_available_client_position != b.u.resume.first_available_client_position)
      abort();
    break;
  default:
    /* The remaining union members are plain integers: compare the whole union. */
    if (memcmp(&a.u, &b.u, sizeof a.u) != 0) abort();
  }
  /* head + metadata + data == the encoding */
  rs_ssize h = rs_frame_head_size(&a);
  if (h < 6 || h > n) abort();
  free(buf);
  return 0;
}
