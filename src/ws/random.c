/*
 * Where masking keys and Sec-WebSocket-Key come from. RFC 6455 (10.3) wants them unpredictable,
 * so the default is OpenSSL's CSPRNG. RAND_bytes is the one call in the WebSocket core that may
 * reach the operating system (getrandom, to seed its generator once per process and now and then
 * to reseed): the core already depends on libcrypto for SHA-1, a secure default needs an OS
 * entropy source somewhere, and a caller who wants none (reproducible output, a sandbox) passes
 * its own source (rs_ws_options.random, rs_ws_client_key_random).
 */
#include <limits.h>
#include <openssl/rand.h>

#include "ws/random.h"

int rs__ws_random(rs_ws_random_fn fn, void *user, uint8_t *buf, size_t len) {
  if (fn) return fn(buf, len, user) == 0 ? 0 : RS_ERR_INTERNAL;
  return len <= INT_MAX && RAND_bytes(buf, (int)len) == 1 ? 0 : RS_ERR_INTERNAL;
}
