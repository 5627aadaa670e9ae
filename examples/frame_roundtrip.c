/* The README example: encode a REQUEST_STREAM frame with TCP headroom, decode it back. */
#include <rsocket/frame.h>
#include <stdio.h>

int main(void) {
  uint8_t buf[64];
  rs_frame f;
  rs_frame_init(&f, RS_FRAME_REQUEST_STREAM, 1);
  f.u.request.initial_request_n = 8;
  f.data = rs_bytes_str("hello");

  rs_ssize n = rs_frame_encode(&f, buf + RS_FRAME_LENGTH_SIZE, sizeof buf - RS_FRAME_LENGTH_SIZE);
  if (n < 0) return fprintf(stderr, "encode: %s\n", rs_strerror((int)n)), 1;
  rs_frame_put_length(buf, (size_t)n); /* buf[0 .. n+3) is ready for a TCP socket */

  rs_frame g;
  rs_frame_error err;
  if (rs_frame_decode(&g, buf + RS_FRAME_LENGTH_SIZE, (size_t)n, &err) != 0)
    return fprintf(stderr, "decode: %s at byte %zu\n", err.message, err.offset), 1;
  printf("%s stream=%u n=%u data=%.*s\n", rs_frame_type_name(g.type), g.stream_id,
         g.u.request.initial_request_n, (int)g.data.len, (const char *)g.data.ptr);
  return 0;
}
