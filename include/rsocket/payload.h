/*
 * rsocket-c: the payload of an RSocket request or response (metadata + data).
 *
 * A payload is a pair of byte views; it never owns memory. `has_metadata` keeps the wire's
 * distinction between "no metadata" (M flag clear) and "empty metadata" (M set, length 0), which
 * some peers (Java) treat differently.
 */
#ifndef RSOCKET_PAYLOAD_H
#define RSOCKET_PAYLOAD_H

#include "rsocket/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_payload {
  bool has_metadata; /* false: metadata is absent (and `metadata` is ignored) */
  rs_bytes metadata;
  rs_bytes data;
} rs_payload;

/* A payload with only data (no metadata). The view points at `data`; nothing is copied. */
static inline rs_payload rs_payload_data(rs_bytes data) {
  rs_payload p = {false, {NULL, 0}, data};
  return p;
}

/* A payload with metadata and data. The views are kept as given; nothing is copied. */
static inline rs_payload rs_payload_make(rs_bytes metadata, rs_bytes data) {
  rs_payload p = {true, metadata, data};
  return p;
}

/* Bytes the payload carries (metadata + data), ignoring metadata when has_metadata is false. */
static inline size_t rs_payload_size(const rs_payload *p) {
  return (p->has_metadata ? p->metadata.len : 0) + p->data.len;
}

#ifdef __cplusplus
}
#endif
#endif
