/*
 * collab-service's routes on rsocket/service.h: members, presence, and the subscriptions that
 * follow a board's logs, over a board engine (store.h). One loop's thread owns all of it.
 */
#ifndef COLLAB_SERVICE_H
#define COLLAB_SERVICE_H

#include <rsocket/service.h>
#include <stdint.h>

#include "store.h"

typedef struct collab_service collab_service;

/* A service over `store` (borrowed; its limits apply). member_timeout_ms: how long a member with
 * no open stream stays. NULL when out of memory. */
collab_service *collab_service_new(collab_store *store, uint64_t member_timeout_ms);

/* Registers the seven routes on `r`: 0, or the first error of rs_router_add. */
int collab_service_routes(collab_service *svc, rs_router *r);

/* Time passes (milliseconds of a monotonic clock): members idle past the timeout leave. */
void collab_service_tick(collab_service *svc, uint64_t now_ms);

/* The server's on_drained: joins parked while `conn` was over its output watermark go on. */
void collab_service_conn_drained(collab_service *svc, rs_conn *conn);

/* A connection is gone (after its streams ended): members whose session it was, or whose join
 * came through it and have no stream open, leave. */
void collab_service_conn_gone(collab_service *svc, rs_conn *conn);

/* The process is stopping: every subscription ends now with APPLICATION_ERROR "service
 * stopping" (they never end by themselves), so the server's graceful stop does not wait for its
 * drain deadline. Their on_close (and the members' leaves) follow from the engine. */
void collab_service_stop(collab_service *svc);

/* Members and boards now (for logs and tests). */
size_t collab_service_members(const collab_service *svc);

/* Frees everything; every connection must be gone. The store is the caller's. */
void collab_service_free(collab_service *svc);

#endif
