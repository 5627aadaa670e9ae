/*
 * Cross-thread posts (rs_runtime_post): which loops accept them.
 *
 * A loop accepts posts while something holds a reference on it: each server worker running on
 * it, each client on it, each rs_runtime_loop_init not yet closed. References are counted, so a
 * server's worker 0, clients and the application can share the caller's loop.
 */
#ifndef RS_RUNTIME_POST_H
#define RS_RUNTIME_POST_H

#include <uv.h>

/* Takes a reference on `loop` (on its thread, or before it runs): the first one makes the loop's
 * wake-up handle. Returns 0, RS_ERR_NOMEM or RS_ERR_IO (libuv could not make the handle). */
int rt_post_acquire(uv_loop_t *loop);

/* Drops a reference taken with rt_post_acquire, on the loop's thread. Everything posted until
 * now runs before this returns; at the last reference the loop stops accepting posts and its
 * handle closes (the loop must run on for its memory to be freed). */
void rt_post_release(uv_loop_t *loop);

#endif
