/* Error strings, the default allocator and small shared helpers. */
#include "rsocket/common.h"

#include <stdlib.h>
#include <string.h>

rs_bytes rs_bytes_str(const char *s) {
  rs_bytes b = {(const uint8_t *)s, s ? strlen(s) : 0};
  return b;
}

static void *libc_malloc(size_t size, void *user) {
  (void)user;
  return malloc(size);
}

static void libc_free(void *ptr, void *user) {
  (void)user;
  free(ptr);
}

static void *libc_calloc(size_t n, size_t size, void *user) {
  (void)user;
  return calloc(n, size);
}

static void *libc_realloc(void *ptr, size_t size, void *user) {
  (void)user;
  return realloc(ptr, size);
}

static const rs_mem default_mem = {libc_malloc, libc_free, libc_calloc, libc_realloc, NULL};

const rs_mem *rs_mem_default(void) {
  return &default_mem;
}

struct err_entry {
  int code;
  const char *name;
  const char *text;
};

static const struct err_entry errors[] = {
    {RS_OK, "RS_OK", "success"},
    {RS_ERR_INVALID_ARGUMENT, "RS_ERR_INVALID_ARGUMENT", "invalid argument"},
    {RS_ERR_BUFFER_TOO_SMALL, "RS_ERR_BUFFER_TOO_SMALL", "buffer too small"},
    {RS_ERR_INVALID_STATE, "RS_ERR_INVALID_STATE", "not allowed in the current state"},
    {RS_ERR_WOULD_BLOCK, "RS_ERR_WOULD_BLOCK", "would block"},
    {RS_ERR_INCOMPLETE, "RS_ERR_INCOMPLETE", "incomplete input"},
    {RS_ERR_FRAME_TOO_SHORT, "RS_ERR_FRAME_TOO_SHORT", "frame too short"},
    {RS_ERR_FRAME_TOO_LARGE, "RS_ERR_FRAME_TOO_LARGE", "frame too large"},
    {RS_ERR_BAD_LENGTH, "RS_ERR_BAD_LENGTH", "length field past the end of the frame"},
    {RS_ERR_BAD_STREAM_ID, "RS_ERR_BAD_STREAM_ID", "stream id not allowed for the frame type"},
    {RS_ERR_BAD_FLAGS, "RS_ERR_BAD_FLAGS", "invalid flag combination"},
    {RS_ERR_BAD_VALUE, "RS_ERR_BAD_VALUE", "field value out of range"},
    {RS_ERR_UNKNOWN_FRAME_TYPE, "RS_ERR_UNKNOWN_FRAME_TYPE", "unknown frame type"},
    {RS_ERR_BAD_VERSION, "RS_ERR_BAD_VERSION", "unsupported protocol version"},
    {RS_ERR_MALFORMED, "RS_ERR_MALFORMED", "malformed input"},
    {RS_ERR_STREAM_CLOSED, "RS_ERR_STREAM_CLOSED", "stream closed"},
    {RS_ERR_NO_CREDIT, "RS_ERR_NO_CREDIT", "no request(n) credit"},
    {RS_ERR_NO_LEASE, "RS_ERR_NO_LEASE", "no valid lease"},
    {RS_ERR_TOO_MANY_STREAMS, "RS_ERR_TOO_MANY_STREAMS", "too many streams"},
    {RS_ERR_FLOODED, "RS_ERR_FLOODED", "peer flooded control frames"},
    {RS_ERR_TOO_BIG, "RS_ERR_TOO_BIG", "payload over the configured maximum"},
    {RS_ERR_REJECTED, "RS_ERR_REJECTED", "rejected by the peer"},
    {RS_ERR_CANCELED, "RS_ERR_CANCELED", "canceled"},
    {RS_ERR_PROTOCOL, "RS_ERR_PROTOCOL", "protocol violation"},
    {RS_ERR_TIMEOUT, "RS_ERR_TIMEOUT", "timed out"},
    {RS_ERR_CLOSED, "RS_ERR_CLOSED", "connection closed"},
    {RS_ERR_APPLICATION, "RS_ERR_APPLICATION", "application error from the peer"},
    {RS_ERR_UNAVAILABLE, "RS_ERR_UNAVAILABLE", "no connection available"},
    {RS_ERR_FATAL, "RS_ERR_FATAL", "fatal error"},
    {RS_ERR_NOMEM, "RS_ERR_NOMEM", "out of memory"},
    {RS_ERR_INTERNAL, "RS_ERR_INTERNAL", "internal error"},
    {RS_ERR_IO, "RS_ERR_IO", "I/O error"},
};

static const struct err_entry *find_error(int err) {
  for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
    if (errors[i].code == err) return &errors[i];
  }
  return NULL;
}

const char *rs_strerror(int err) {
  const struct err_entry *e = find_error(err);
  return e ? e->text : "unknown error";
}

const char *rs_error_name(int err) {
  const struct err_entry *e = find_error(err);
  return e ? e->name : "RS_ERR_UNKNOWN";
}
