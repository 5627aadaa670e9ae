/*
 * rsocket-c: codecs for the well-known RSocket extensions (rsocket/rsocket Extensions/, version 0):
 * composite metadata, routing, authentication, per-stream data MIME types and Zipkin tracing.
 *
 * All decoders are zero-copy (views into the caller's buffer) and bounded by the length they are
 * given; all encoders write into a caller buffer and return the bytes written or
 * RS_ERR_BUFFER_TOO_SMALL, never writing past `cap`. Passing buf=NULL, cap=0 to an encoder returns
 * the size it needs.
 *
 * Custom MIME and auth-type strings use the "length minus one" 7-bit encoding every peer uses
 * (rsocket-java, -go, -js): strings of 1..128 bytes.
 */
#ifndef RSOCKET_EXTENSIONS_H
#define RSOCKET_EXTENSIONS_H

#include "rsocket/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RS_MIME_COMPOSITE_METADATA "message/x.rsocket.composite-metadata.v0"
#define RS_MIME_ROUTING            "message/x.rsocket.routing.v0"
#define RS_MIME_AUTHENTICATION     "message/x.rsocket.authentication.v0"
#define RS_MIME_TRACING_ZIPKIN     "message/x.rsocket.tracing-zipkin.v0"
#define RS_MIME_DATA_MIME          "message/x.rsocket.mime-type.v0"
#define RS_MIME_ACCEPT_MIMES       "message/x.rsocket.accept-mime-types.v0"

#define RS_MIME_ID_OCTET_STREAM       0x06
#define RS_MIME_ID_JSON               0x05
#define RS_MIME_ID_TEXT_PLAIN         0x21
#define RS_MIME_ID_DATA_MIME          0x7A
#define RS_MIME_ID_ACCEPT_MIMES       0x7B
#define RS_MIME_ID_AUTHENTICATION     0x7C
#define RS_MIME_ID_TRACING_ZIPKIN     0x7D
#define RS_MIME_ID_ROUTING            0x7E
#define RS_MIME_ID_COMPOSITE_METADATA 0x7F

#define RS_AUTH_SIMPLE 0x00
#define RS_AUTH_BEARER 0x01

/* Well-known MIME type table (2.7 of the reference): name of `id`, or NULL if unassigned. */
RS_EXPORT const char *rs_mime_name(uint8_t id);
/* Well-known id of a MIME type name (exact, case-sensitive match), or -1. */
RS_EXPORT int rs_mime_id(const char *name, size_t len);

/* ---- Composite metadata ---- */

typedef struct rs_composite_entry {
  bool well_known;  /* the MIME type was sent as a 7-bit id */
  uint8_t mime_id;  /* the id when well_known (may be an id this library has no name for) */
  rs_bytes mime;    /* the MIME type string: the table's name when well_known (empty if the
                       id is unassigned), else a view into the input */
  rs_bytes content; /* the entry's metadata bytes */
} rs_composite_entry;

typedef struct rs_composite_iter {
  const uint8_t *buf;
  size_t len, off;
  int error; /* sticky */
} rs_composite_iter;

RS_EXPORT void rs_composite_iter_init(rs_composite_iter *it, const uint8_t *buf, size_t len);
/*
 * Next entry. Returns 1 with *entry filled, 0 at the end, or RS_ERR_MALFORMED (sticky) when an
 * entry is cut short or a length points past the end.
 */
RS_EXPORT int rs_composite_next(rs_composite_iter *it, rs_composite_entry *entry);

/*
 * Appends one entry. A `mime` that names a well-known type is sent as its id. Errors:
 * RS_ERR_INVALID_ARGUMENT (mime empty or over 128 bytes and not well-known, content over 2^24-1),
 * RS_ERR_BUFFER_TOO_SMALL.
 */
RS_EXPORT rs_ssize rs_composite_encode(uint8_t *buf, size_t cap, const char *mime, size_t mime_len,
                                       const uint8_t *content, size_t content_len);
/* Appends one entry with a well-known id (0..127). */
RS_EXPORT rs_ssize rs_composite_encode_id(uint8_t *buf, size_t cap, uint8_t id,
                                          const uint8_t *content, size_t content_len);

/* ---- Routing (message/x.rsocket.routing.v0) ---- */

typedef struct rs_routing_iter {
  const uint8_t *buf;
  size_t len, off;
  int error;
} rs_routing_iter;

RS_EXPORT void rs_routing_iter_init(rs_routing_iter *it, const uint8_t *buf, size_t len);
/* Next tag: 1 with *tag set, 0 at the end, RS_ERR_MALFORMED (tag length 0 or past the end). */
RS_EXPORT int rs_routing_next(rs_routing_iter *it, rs_bytes *tag);
/* Encodes `n` tags (each 1..255 bytes, else RS_ERR_INVALID_ARGUMENT). */
RS_EXPORT rs_ssize rs_routing_encode(uint8_t *buf, size_t cap, const rs_bytes *tags, size_t n);

/* ---- Authentication (message/x.rsocket.authentication.v0) ---- */

typedef struct rs_auth {
  bool well_known;  /* auth type sent as an id */
  uint8_t type_id;  /* when well_known: RS_AUTH_SIMPLE, RS_AUTH_BEARER or another id */
  rs_bytes type;    /* "simple", "bearer", "" for unknown ids, or the custom type string */
  rs_bytes payload; /* the rest of the entry */
} rs_auth;

/* Decodes an authentication entry's content. 0 or RS_ERR_MALFORMED. */
RS_EXPORT int rs_auth_decode(rs_auth *out, const uint8_t *buf, size_t len);
/* Splits a simple-auth payload into user and password. 0 or RS_ERR_MALFORMED. */
RS_EXPORT int rs_auth_simple_decode(rs_bytes payload, rs_bytes *user, rs_bytes *password);
/* Simple auth: user of at most 65,535 bytes. */
RS_EXPORT rs_ssize rs_auth_encode_simple(uint8_t *buf, size_t cap, const char *user,
                                         size_t user_len, const char *password,
                                         size_t password_len);
RS_EXPORT rs_ssize rs_auth_encode_bearer(uint8_t *buf, size_t cap, const char *token,
                                         size_t token_len);
/* Custom auth type (1..128 bytes; "simple"/"bearer" are sent as their ids). */
RS_EXPORT rs_ssize rs_auth_encode_custom(uint8_t *buf, size_t cap, const char *type,
                                         size_t type_len, const uint8_t *payload,
                                         size_t payload_len);

/* ---- Per-stream data MIME (mime-type.v0) and accept list (accept-mime-types.v0) ---- */

/*
 * Encodes one MIME declaration ([M][id] or [len-1][string]). RS_ERR_INVALID_ARGUMENT if the MIME
 * is not well-known and empty or over 128 bytes.
 */
RS_EXPORT rs_ssize rs_data_mime_encode(uint8_t *buf, size_t cap, const char *mime, size_t mime_len);
/*
 * Decodes one MIME declaration at the start of `buf`. Sets *mime (the table's name for ids, or a
 * view), *consumed. Returns 0 or RS_ERR_MALFORMED. For accept lists call it repeatedly.
 */
RS_EXPORT int rs_data_mime_decode(const uint8_t *buf, size_t len, rs_bytes *mime, size_t *consumed);

/* ---- Tracing (tracing-zipkin.v0) ---- */

#define RS_TRACE_IDS        0x80
#define RS_TRACE_DEBUG      0x40
#define RS_TRACE_SAMPLED    0x20
#define RS_TRACE_NOT_SAMPLE 0x10
#define RS_TRACE_ID128      0x08
#define RS_TRACE_PARENT     0x04

typedef struct rs_trace {
  uint8_t flags;
  uint64_t trace_id_high; /* when RS_TRACE_ID128 */
  uint64_t trace_id;
  uint64_t span_id;
  uint64_t parent_span_id; /* when RS_TRACE_PARENT */
} rs_trace;

RS_EXPORT int rs_trace_decode(rs_trace *out, const uint8_t *buf, size_t len);
RS_EXPORT rs_ssize rs_trace_encode(uint8_t *buf, size_t cap, const rs_trace *t);

#ifdef __cplusplus
}
#endif
#endif
