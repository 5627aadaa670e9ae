/* Formatted answers and errors: the two lines every handler writes, in one. */
#include <stdarg.h>
#include <stdio.h>

#include "rsocket/service.h"

/* Formats `fmt` (into a stack buffer, or the heap when longer) and sends it as the answer of
 * request-response `sid` or, when `error`, as ERROR[`code`]. */
__attribute__((format(printf, 5, 0))) static int send_formatted(rs_conn *conn, uint32_t sid,
                                                                bool error, uint32_t code,
                                                                const char *fmt, va_list ap) {
  if (!conn || !fmt) return RS_ERR_INVALID_ARGUMENT;
  char buf[512], *text = buf;
  va_list again;
  va_copy(again, ap);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  if (n >= 0 && (size_t)n >= sizeof buf) {
    text = rs_mem_default()->malloc((size_t)n + 1, NULL);
    if (text) vsnprintf(text, (size_t)n + 1, fmt, again);
  }
  va_end(again);
  if (n < 0) return RS_ERR_INVALID_ARGUMENT;
  if (!text) return RS_ERR_NOMEM;
  rs_bytes b = {(const uint8_t *)text, (size_t)n};
  rs_payload p = {false, {NULL, 0}, b};
  int rc =
      error ? rs_conn_send_error(conn, sid, code, b) : rs_conn_send_payload(conn, sid, &p, true);
  if (text != buf) rs_mem_default()->free(text, NULL);
  return rc;
}

int rs_service_replyf(rs_conn *conn, uint32_t stream_id, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = send_formatted(conn, stream_id, false, 0, fmt, ap);
  va_end(ap);
  return rc;
}

int rs_service_errorf(rs_conn *conn, uint32_t stream_id, uint32_t code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = send_formatted(conn, stream_id, true, code, fmt, ap);
  va_end(ap);
  return rc;
}
