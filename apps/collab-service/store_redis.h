/*
 * The Redis board engine (docs/COLLAB.md, "Storage"): several collab-service instances share
 * boards through one Redis, on hiredis driven by the process' libuv loop (never blocking it).
 */
#ifndef COLLAB_STORE_REDIS_H
#define COLLAB_STORE_REDIS_H

#include <uv.h>

#include "store.h"

typedef struct collab_redis_options {
  const char *url;          /* redis://[[user]:password@]host[:port][/db] */
  const char *prefix;       /* of every key and channel (collab_redis_prefix_ok) */
  uint32_t presence_ttl_ms; /* a member not refreshed for this long is gone (a dead instance's) */
  uint32_t refresh_ms;      /* how often an instance refreshes its members */
  uint32_t timeout_ms;      /* connecting, or a command without an answer, fails after it */
  uint32_t backoff_ms, max_backoff_ms;       /* reconnect delays (jittered, doubling) */
  void (*log)(const char *line, void *user); /* one line per state change; NULL: stderr */
  void *log_user;
} collab_redis_options;

/* Fills the defaults: prefix "collab:", presence_ttl_ms 6000, refresh_ms 2000, timeout_ms 5000,
 * backoff_ms 100, max_backoff_ms 5000, no URL, log to stderr. */
void collab_redis_options_default(collab_redis_options *o);

/* A key prefix: 1 to 64 bytes of letters, digits, ':', '.', '_', '-' (no glob characters: the
 * engine subscribes to "<prefix>ev:*"). */
int collab_redis_prefix_ok(const char *prefix);

/*
 * A Redis engine on `loop`, which starts connecting at once (requests fail with "storage
 * unavailable: ..." until it is connected; it reconnects by itself). NULL with the reason in
 * err (bad URL or prefix, out of memory). Free it with ops->close, then run the loop until its
 * handles are closed, then ops->free.
 */
collab_store *collab_store_redis_new(const collab_limits *limits, uv_loop_t *loop,
                                     const collab_redis_options *o, char *err, size_t errlen);

/* True while connected (for tests and logs). */
bool collab_store_redis_ready(collab_store *s);

#endif
