/*
 * hiredis' asynchronous context on a libuv loop. Our own small adapter rather than hiredis'
 * adapters/libuv.h because Debian 12's (hiredis 0.14.1) ignores poll errors: libuv reports a
 * refused or reset connection as a poll error and stops the poll, that adapter returns without
 * telling hiredis, and the context then waits for ever (a refused connect never fails). Here an
 * error is handed to hiredis as readiness, so it reads the socket's error and fails the context.
 */
#ifndef COLLAB_REDIS_UV_H
#define COLLAB_REDIS_UV_H

#include <hiredis/async.h>
#include <uv.h>

/* Drives `ac` from `loop` (before any command is sent): 0, or -1 (out of memory, bad socket). */
int collab_redis_attach(redisAsyncContext *ac, uv_loop_t *loop);

#endif
