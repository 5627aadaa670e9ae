/* The URI parser is public now (rsocket/uri.h); this name stays for the code that still
 * includes it from src/ (the runtime, ws-client). */
#ifndef RS_RUNTIME_URI_H
#define RS_RUNTIME_URI_H

#include "rsocket/uri.h"

#endif
