/*
 * rs_route_of on arbitrary metadata. The first byte picks the connection's metadata type
 * (composite, routing, or another), the rest is the metadata, in a buffer of exactly its size so
 * any read past it trips ASan. A route found must be a tag inside the input, behind its own
 * length byte; the same input must give the same answer twice.
 */
#include <stdlib.h>
#include <string.h>

#include "rsocket/extensions.h"
#include "rsocket/service.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  static const char *const mimes[] = {RS_MIME_COMPOSITE_METADATA, RS_MIME_ROUTING,
                                      "application/json"};
  rs_bytes mime = rs_bytes_str(mimes[data[0] % 3]);
  size_t len = size - 1;
  uint8_t *md = malloc(len ? len : 1);
  if (!md) return 0;
  if (len) memcpy(md, data + 1, len);
  rs_payload p = {(data[0] & 0x80) == 0, {md, len}, {NULL, 0}};
  rs_bytes route = {NULL, 0}, again = {NULL, 0};
  int rc = rs_route_of(mime, &p, &route);
  if (rc != 1 && rc != 0 && rc != RS_ERR_MALFORMED) abort();
  if (rc == 1) {
    if (route.len < 1 || route.len > 255) abort();
    if (route.ptr <= md || route.ptr + route.len > md + len) abort();
    if (route.ptr[-1] != route.len) abort(); /* a routing tag follows its length byte */
    if (data[0] % 3 == 1 && route.ptr != md + 1) abort();
  }
  if (data[0] % 3 == 2 && rc != 0) abort();
  if (!p.has_metadata && rc != 0) abort();
  if (rs_route_of(mime, &p, &again) != rc || (rc == 1 && again.ptr != route.ptr)) abort();
  free(md);
  return 0;
}
