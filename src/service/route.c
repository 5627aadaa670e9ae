/*
 * The route of a request (its first routing tag) and the names of the interaction models.
 * Decoding is the extension codecs' (rsocket/extensions.h): bounded, zero-copy.
 */
#include <string.h>

#include "rsocket/extensions.h"
#include "rsocket/frame.h"
#include "rsocket/service.h"

static bool same(rs_bytes b, const char *s) {
  size_t n = strlen(s);
  return b.len == n && (n == 0 || memcmp(b.ptr, s, n) == 0);
}

/* The first tag of routing metadata: 1, 0 (no tags) or RS_ERR_MALFORMED. */
static int first_tag(rs_bytes routing, rs_bytes *route) {
  rs_routing_iter it;
  rs_routing_iter_init(&it, routing.ptr, routing.len);
  return rs_routing_next(&it, route);
}

int rs_route_of(rs_bytes metadata_mime, const rs_payload *p, rs_bytes *route) {
  if (!p || !route) return RS_ERR_INVALID_ARGUMENT;
  if (!p->has_metadata || p->metadata.len == 0 || !p->metadata.ptr) return 0;
  if (same(metadata_mime, RS_MIME_ROUTING)) return first_tag(p->metadata, route);
  if (!same(metadata_mime, RS_MIME_COMPOSITE_METADATA)) return 0;
  rs_composite_iter it;
  rs_composite_entry e;
  int rc;
  rs_composite_iter_init(&it, p->metadata.ptr, p->metadata.len);
  while ((rc = rs_composite_next(&it, &e)) == 1) {
    /* A well-known entry's `mime` is the table's name, so one comparison covers both forms. */
    if (!same(e.mime, RS_MIME_ROUTING)) continue;
    rc = first_tag(e.content, route);
    if (rc != 0) return rc;
  }
  return rc;
}

const char *rs_model_name(unsigned model) {
  switch (model) {
  case RS_MODEL_REQUEST_RESPONSE: return "request-response";
  case RS_MODEL_FIRE_AND_FORGET: return "fire-and-forget";
  case RS_MODEL_REQUEST_STREAM: return "request-stream";
  case RS_MODEL_REQUEST_CHANNEL: return "request-channel";
  default: return "unknown";
  }
}

unsigned rs_model_of(uint8_t frame_type) {
  switch (frame_type) {
  case RS_FRAME_REQUEST_RESPONSE: return RS_MODEL_REQUEST_RESPONSE;
  case RS_FRAME_REQUEST_FNF: return RS_MODEL_FIRE_AND_FORGET;
  case RS_FRAME_REQUEST_STREAM: return RS_MODEL_REQUEST_STREAM;
  case RS_FRAME_REQUEST_CHANNEL: return RS_MODEL_REQUEST_CHANNEL;
  default: return 0;
  }
}
