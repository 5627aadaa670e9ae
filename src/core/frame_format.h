/* Human-readable one-line descriptions of frames, shared by rsocket-dump and `rsocket --debug`.
 * Internal (rs__ prefix): the format may change between versions. */
#ifndef RS_CORE_FRAME_FORMAT_H
#define RS_CORE_FRAME_FORMAT_H

#include <stddef.h>

#include "rsocket/frame.h"

/* The names of the flags set in `f`, as meant for its type ("M|F|N", "R" = respond on KEEPALIVE,
 * resume on SETUP; "-" when none), written into buf. Returns buf. */
const char *rs__frame_flag_names(const rs_frame *f, char *buf, size_t cap);

/* One line (no newline): type, stream, flags, the type's fields, metadata and data sizes with an
 * escaped preview of at most `preview` bytes each. Truncates to cap. Returns the length written. */
size_t rs__frame_describe(const rs_frame *f, size_t preview, char *buf, size_t cap);

#endif
