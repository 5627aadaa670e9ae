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

/* Starts both zlib streams, which allocate through `mem` (kept: it must outlive z).
 * 0 or RS_ERR_NOMEM. */
int rs__ws_z_init(rs_ws_z *z, const rs_ws_deflate *d, bool server, const rs_mem *mem);
void rs__ws_z_free(rs_ws_z *z);
/* Room rs__ws_z_compress needs for a message of `len` bytes. */
size_t rs__ws_z_bound(rs_ws_z *z, size_t len);
/* Compresses one whole message into out[0..cap) (cap from rs__ws_z_bound), the trailing
 * 00 00 FF FF removed. 0, or RS_ERR_INTERNAL (the compressor is unusable then). */
int rs__ws_z_compress(rs_ws_z *z, const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                      size_t *out_len);
/* Inflates one message (the tail appended) into a buffer from `mem`, stopping with
 * RS_ERR_TOO_BIG past `max` bytes; RS_ERR_MALFORMED for a broken stream, RS_ERR_NOMEM. */
int rs__ws_z_inflate(rs_ws_z *z, const uint8_t *in, size_t len, size_t max, uint8_t **out,
                     size_t *out_len, const rs_mem *mem);

#endif
