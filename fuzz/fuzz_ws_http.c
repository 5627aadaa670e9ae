/* The upgrade request parser and the client's response check on arbitrary bytes. */
#include <stdlib.h>
#include <string.h>

#include "rsocket/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rs_ws_request r;
  rs_ssize n = rs_ws_request_parse(&r, data, size);
  if (n > (rs_ssize)size) abort();
  if (n > 0) {
    /* Every view lies inside the head. */
    const rs_bytes *views[] = {&r.method,  &r.path,   &r.host,      &r.key,
                               &r.version, &r.origin, &r.protocols, &r.extensions};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) {
      const rs_bytes *v = views[i];
      if (v->ptr && (v->ptr < data || v->ptr + v->len > data + n)) abort();
    }
    const char *why;
    int st = rs_ws_request_check(&r, &why);
    if (st == 0) {
      char resp[1024];
      if (rs_ws_response_101(resp, sizeof resp, &r, NULL, NULL) <= 0) abort();
    } else if (st != 400 && st != 426) {
      abort();
    }
  }
  const char *why;
  rs_bytes ext;
  (void)rs_ws_client_response_check(data, size, "dGhlIHNhbXBsZSBub25jZQ==", "rsocket", &ext, &why);
  rs_ws_deflate d;
  char resp[256];
  (void)rs_ws_deflate_negotiate((rs_bytes){data, size}, &d, resp, sizeof resp);
  (void)rs_ws_deflate_client_accept((rs_bytes){data, size}, &d);
  return 0;
}
