/*
 * Internals of the happy-eyeballs connector (the public API is rs_connect_start in
 * rsocket/runtime.h): the stagger between attempts, and an entry point that skips the resolver so
 * that unit tests can race addresses of their choosing.
 */
#ifndef RS_RUNTIME_CONNECT_H
#define RS_RUNTIME_CONNECT_H

#include <uv.h>

#include "rsocket/runtime.h"

/* RFC 8305's recommended "Connection Attempt Delay". */
#define RS_CONNECT_STAGGER_MS 250u

/* The delay in force (tests shorten or lengthen it). */
extern uint32_t rs__connect_stagger_ms;

/* rs_connect_start on a given address list (each with its port), tried in this order; `label`
 * names them in messages ("cannot connect to LABEL:PORT: …"). Same contract otherwise. */
int rs__connect_start_addrs(rs_connect **out, uv_loop_t *loop, const char *label, int port,
                            const struct sockaddr_storage *addrs, int n, uint32_t timeout_ms,
                            rs_connect_cb cb, void *arg);

#endif
