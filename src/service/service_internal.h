/* What the service layer's files share and the public header does not show. */
#ifndef RS_SERVICE_INTERNAL_H
#define RS_SERVICE_INTERNAL_H

#include "rsocket/service.h"

/* Gives `feed` an owner told first when its stream is over (before the application's on_close),
 * so a topic can drop it; `leave` NULL detaches the owner. */
void rs__feed_set_owner(rs_feed *feed, void (*leave)(rs_feed *feed, void *owner), void *owner);

/* FNV-1a: route and topic names are short, and a table never holds a peer's keys. */
static inline uint32_t rs__svc_hash(const uint8_t *p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

#endif
