/* The zlib streams of one permessage-deflate connection (internal). */
#ifndef RS_WS_DEFLATE_INTERNAL_H
#define RS_WS_DEFLATE_INTERNAL_H

#include <zlib.h>

#include "rsocket/ws.h"

typedef struct rs_ws_z {
  z_stream def, inf;
  bool ready;
  bool our_no_takeover; /* reset our compressor after every message */
} rs_ws_z;

int rs__ws_z_init(rs_ws_z *z, const rs_ws_deflate *d, bool server);
void rs__ws_z_free(rs_ws_z *z);
/* Compresses one whole message (trailing 00 00 FF FF removed) into a buffer from `mem`. */
int rs__ws_z_compress(rs_ws_z *z, const uint8_t *in, size_t len, uint8_t **out, size_t *out_len,
                      const rs_mem *mem);
/* Inflates one message (the tail appended), stopping with RS_ERR_TOO_BIG past `max` bytes;
 * RS_ERR_MALFORMED for a broken stream. */
int rs__ws_z_inflate(rs_ws_z *z, const uint8_t *in, size_t len, size_t max, uint8_t **out,
                     size_t *out_len, const rs_mem *mem);

#endif
