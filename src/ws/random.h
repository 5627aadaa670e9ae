/* Random bytes for the WebSocket core: the caller's source or the default one (internal). */
#ifndef RS_WS_RANDOM_H
#define RS_WS_RANDOM_H

#include "rsocket/ws.h"

/* Fills buf[0..len) from `fn` (NULL: the default source). 0 or RS_ERR_INTERNAL. */
int rs__ws_random(rs_ws_random_fn fn, void *user, uint8_t *buf, size_t len);

#endif
