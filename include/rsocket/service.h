/*
 * rsocket-c service layer: what a small RSocket service is made of, on top of the engine
 * (rsocket/conn.h) and the runtime (rsocket/runtime.h).
 *
 *  - rs_route_of(): the route of a request, from its routing metadata (composite or plain).
 *  - rs_router: routes (a name and the interaction models it serves) to handlers, found in O(1)
 *    by hash; requests without a route, for an unknown route or for a model the route does not
 *    serve are answered with an ERROR frame that says so, before any handler runs.
 *  - rs_feed: the responder's half of a stream (request-stream, or channel) fed by a bounded
 *    queue the handler pushes copies into (or by a pull callback), sent by the engine's pull
 *    producer as the requester's credit and the socket's back-pressure allow. A subscriber that
 *    falls too far behind is dealt with by a policy (by default its stream ends with
 *    APPLICATION_ERROR "subscriber too slow"), so it never grows the server without bound.
 *  - rs_router_serve(): a whole server in one call (listen, print "listening on URI", stop
 *    gracefully on SIGINT/SIGTERM).
 *
 * A service registers its routes and serves them:
 *
 *     rs_router *r = rs_router_new(NULL);
 *     rs_router_add(r, "rooms.post", RS_MODEL_REQUEST_RESPONSE, post, NULL);
 *     rs_router_add(r, "rooms.feed", RS_MODEL_REQUEST_STREAM, feed, NULL);
 *     return rs_router_serve(r, "tcp://127.0.0.1:7878", NULL);
 *
 * Threading: like the engine, everything about one connection happens on its loop's thread. A
 * router is only read once serving starts (rs_router_add before), so several worker loops may
 * share one. A feed belongs to its connection's thread.
 *
 * Errors a peer sees (the spec's codes, chosen so a requester knows whether it may retry):
 *  - no routing metadata, or metadata that does not parse: ERROR[INVALID] "no route: the request
 *    has no routing metadata (message/x.rsocket.routing.v0)" or "malformed routing metadata":
 *    the request itself is wrong, sending it again anywhere fails the same way;
 *  - a route nobody registered, or a registered route asked with another model: ERROR[REJECTED]
 *    "no route 'x' for request-stream" (or "route 'x' serves request-response, not
 *    request-stream"). REJECTED, not APPLICATION_ERROR: the spec's REJECTED means the responder
 *    refused the request and guarantees it did not process it, which is exactly the case and
 *    what lets a gateway or load balancer retry the request on another backend that has the
 *    route; APPLICATION_ERROR means the handler ran and failed.
 * Fire-and-forget has no stream to answer on: unroutable ones are dropped.
 */
#ifndef RSOCKET_SERVICE_H
#define RSOCKET_SERVICE_H

#include "rsocket/conn.h"

#ifdef __cplusplus
extern "C" {
#endif

struct rs_server_options; /* rsocket/runtime.h */

/* -------------------------------------------------------------------------------------------- */
/* Routes                                                                                       */

/*
 * The route of a request: the first tag of its routing metadata. `metadata_mime` is the
 * connection's metadata MIME type (rs_conn_get_settings(conn)->metadata_mime: a server's is the
 * client's from SETUP):
 *  - message/x.rsocket.composite-metadata.v0: the first tag of the first routing entry
 *    (message/x.rsocket.routing.v0, as its well-known id or spelled out) that has a tag; entries
 *    after it are not examined;
 *  - message/x.rsocket.routing.v0: the first tag of the metadata itself;
 *  - any other type: no route.
 * Bounded by the metadata's length: nothing past it is read. On success *route is a view into
 * `p`'s metadata (1..255 bytes, not NUL-terminated), valid as long as the metadata is.
 *
 * Returns 1 with *route set; 0 when there is no route (no metadata, another MIME type, no routing
 * entry, a routing entry without tags); RS_ERR_MALFORMED when the composite metadata is cut
 * short before a routing entry was found, or the routing tags are (a tag of length 0 or running
 * past the end); RS_ERR_INVALID_ARGUMENT (p or route NULL).
 */
RS_EXPORT int rs_route_of(rs_bytes metadata_mime, const rs_payload *p, rs_bytes *route);

/* -------------------------------------------------------------------------------------------- */
/* Router                                                                                       */

/* Interaction models, as bits: a route may serve several. */
typedef enum rs_model {
  RS_MODEL_REQUEST_RESPONSE = 1u << 0,
  RS_MODEL_FIRE_AND_FORGET = 1u << 1,
  RS_MODEL_REQUEST_STREAM = 1u << 2,
  RS_MODEL_REQUEST_CHANNEL = 1u << 3,
} rs_model;

#define RS_MODEL_ALL 0xFu

/* "request-response", "fire-and-forget", "request-stream", "request-channel" for one model (one
 * bit), "unknown" otherwise. Never NULL. */
RS_EXPORT const char *rs_model_name(unsigned model);

/* The model of a request frame type (RS_FRAME_REQUEST_*), 0 for other types. */
RS_EXPORT unsigned rs_model_of(uint8_t frame_type);

/*
 * A route's handler: a request for it arrived (the same call as rs_conn_callbacks.on_request,
 * with `user` the pointer given to rs_router_add). Answer now or later on req->stream_id with the
 * engine's calls (rs_conn_send_payload, rs_conn_send_error...), or give a stream to an rs_feed.
 * Return 0 to take the request; non-zero rejects it with ERROR[REJECTED] (nothing is sent for
 * fire-and-forget) and nothing more happens to it.
 *
 * On a connection driven by rs_router_callbacks the stream user pointer belongs to the service
 * layer: leave it NULL or give the stream to an rs_feed (which sets it).
 */
typedef int (*rs_route_handler)(rs_conn *conn, const rs_request *req, void *user);

typedef struct rs_router rs_router;

/* A router with no routes. `mem` NULL: the C library. Returns NULL when out of memory. */
RS_EXPORT rs_router *rs_router_new(const rs_mem *mem);

/* Frees the router and its routes. Connections served by it must be gone. NULL is ignored. */
RS_EXPORT void rs_router_free(rs_router *r);

/*
 * Registers `handler` (with `user`) for requests to `route` (a NUL-terminated string of 1..255
 * bytes, copied) in each model of `models` (RS_MODEL_* bits). The same route may have other
 * handlers for other models. Lookup costs one hash of the route, whatever the number of routes.
 * Not thread-safe: add every route before serving.
 *
 * Returns 0, or RS_ERR_INVALID_ARGUMENT (NULL router, route or handler; route empty or over 255
 * bytes; models 0 or with bits outside RS_MODEL_ALL), RS_ERR_INVALID_STATE (the route already
 * has a handler for one of these models; nothing is registered then), RS_ERR_NOMEM.
 */
RS_EXPORT int rs_router_add(rs_router *r, const char *route, unsigned models,
                            rs_route_handler handler, void *user);

/* Number of (route, model) pairs registered. */
RS_EXPORT size_t rs_router_count(const rs_router *r);

/*
 * Routes one request (what on_request does on a connection whose callbacks come from
 * rs_router_callbacks; call it from your own on_request to route some requests and handle
 * others). Finds the route with rs_route_of and the connection's metadata MIME type, then calls
 * its handler for req->type and returns what the handler returns. A request that cannot be
 * routed is answered here, as the header comment says, and 0 is returned (the error is the
 * answer); only a handler's non-zero return rejects with the engine's generic REJECTED.
 * Returns the handler's result, 0, or RS_ERR_INVALID_ARGUMENT (NULL argument).
 */
RS_EXPORT int rs_router_dispatch(const rs_router *r, rs_conn *conn, const rs_request *req);

/*
 * Fills `cb` for a connection served by a router: struct_size, on_request (rs_router_dispatch
 * with `user` as the router: make the router the connection's user pointer), and the stream
 * callbacks of rs_feed_callbacks. Other fields are left as they are (on_setup, on_close,
 * on_metadata_push...), so set them after or before as you like.
 */
RS_EXPORT void rs_router_callbacks(rs_conn_callbacks *cb);

/*
 * Makes `o` serve `r` with the runtime: callbacks from rs_router_callbacks, and the router as
 * every connection's user pointer (o->on_connect returns o->user, which becomes `r`). The other
 * fields (uri, settings, workers, TLS files...) are left for the caller.
 */
RS_EXPORT void rs_router_server_options(rs_router *r, struct rs_server_options *o);

/*
 * Serves `r` on `uri` (tcp://, tls://, ws://, wss://) until SIGINT or SIGTERM, on a loop of its
 * own, then returns. `o` (may be NULL: rs_server_options_default) gives the other server
 * options; its uri, on_connect, user and the callbacks rs_router_callbacks sets are replaced
 * (on_setup, on_close... are kept), and a drain_timeout_ms of 0
 * becomes 5000 (streams that never end, such as subscriptions, would hold the stop for ever).
 * Once listening it prints "listening on URI" (the real port when the URI said 0) on stdout and
 * flushes it, also when stdout is a pipe. The first signal stops gracefully (CONNECTION_CLOSE,
 * open streams get drain_timeout_ms to finish), a second one kills the process (default action).
 * SIGPIPE is ignored (a peer that goes away is a write error, not a signal).
 *
 * Returns 0 after a stop, or the error of rs_server_start (RS_ERR_INVALID_ARGUMENT,
 * RS_ERR_IO), whose reason is printed on stderr, or RS_ERR_INVALID_ARGUMENT (NULL r or uri).
 */
RS_EXPORT int rs_router_serve(rs_router *r, const char *uri, const struct rs_server_options *o);

/* -------------------------------------------------------------------------------------------- */
/* Feeds: the responder's half of a stream, fed through a bounded queue                          */

typedef struct rs_feed rs_feed;

/* What rs_feed_push does when the queue is full (max_items or max_bytes reached). */
typedef enum rs_feed_overflow {
  /* End the stream with ERROR[APPLICATION_ERROR] and overflow_message; the push returns
   * RS_ERR_FLOODED. A subscriber too slow for the rate of events is cut off, it can subscribe
   * again (and resume from an offset, where the service has them). The default. */
  RS_FEED_OVERFLOW_ERROR = 0,
  /* Refuse the item: the push returns RS_ERR_WOULD_BLOCK and the stream goes on (the caller
   * keeps it or drops it; on_pull tells when there is room again). */
  RS_FEED_OVERFLOW_REFUSE = 1,
  /* Drop the oldest queued item to make room (a latest-value feed, e.g. cursors or prices);
   * rs_feed_dropped counts them. */
  RS_FEED_OVERFLOW_DROP_OLDEST = 2,
} rs_feed_overflow;

typedef struct rs_feed_options {
  size_t struct_size;         /* sizeof(rs_feed_options) */
  size_t max_items;           /* items queued and not yet sent */
  size_t max_bytes;           /* bytes (metadata + data) of those items */
  rs_feed_overflow overflow;  /* what a push to a full queue does */
  const char *overflow_error; /* the ERROR message of RS_FEED_OVERFLOW_ERROR (NUL-terminated,
                                 UTF-8; borrowed: must outlive the feed) */
  /*
   * Pull source (may be NULL): the queue is empty, the stream has `credit` (>= 1,
   * RS_CREDIT_UNBOUNDED if so) and the connection has room. Push up to `credit` items (more
   * than that wait in the queue, within its bounds), complete, fail, or push nothing: then it is
   * called again after the next push (or rs_feed_wake). Runs inside the engine's producer call.
   */
  void (*on_pull)(rs_feed *feed, uint64_t credit, void *user);
  /* Channels: an element (RS_PAYLOAD_NEXT) and/or the end (RS_PAYLOAD_COMPLETE) of the
   * requester's half. Grant credit for it with rs_conn_request_n. May be NULL. */
  void (*on_input)(rs_feed *feed, const rs_payload *p, unsigned flags, void *user);
  /*
   * The stream is over, however it ended: `reason` is 0 when it completed or the service failed
   * it (rs_feed_complete, rs_feed_error), RS_ERR_FLOODED when the overflow policy ended it,
   * RS_ERR_CANCELED when the requester canceled, or the engine's error when the stream or the
   * connection failed (RS_ERR_CLOSED when the connection went away, RS_ERR_APPLICATION when a
   * channel requester sent an ERROR...). Called exactly once, from the engine's callbacks, never
   * from inside an rs_feed_* call; the feed is freed when it returns: forget it here. May be NULL.
   */
  void (*on_close)(rs_feed *feed, int reason, void *user);
  void *user;
  const rs_mem *mem; /* for the feed and its items; NULL: the C library */
} rs_feed_options;

/*
 * Fills defaults: struct_size = sizeof(rs_feed_options); max_items = 256; max_bytes = 1 MiB;
 * overflow = RS_FEED_OVERFLOW_ERROR; overflow_error = "subscriber too slow"; no callbacks;
 * user = NULL; mem = NULL.
 */
RS_EXPORT void rs_feed_options_default(rs_feed_options *o);

/*
 * Takes over the responder's half of `stream_id` (a request-stream or request-channel we
 * answer; a channel requester's half works too): sets the stream's user pointer to the feed and
 * makes it a pull producer (rs_conn_set_producer), so items go out only while the stream has
 * credit and the output is under the connection's output_high_watermark. `o` is copied (NULL:
 * defaults). The connection's callbacks must forward to the feed: rs_feed_callbacks (or
 * rs_router_callbacks) sets them.
 *
 * Returns 0 and the feed in *out, or RS_ERR_INVALID_ARGUMENT (NULL out or conn, max_items or
 * max_bytes 0, struct_size unset), RS_ERR_STREAM_CLOSED (no such stream, or our half is over),
 * RS_ERR_INVALID_STATE (we have no half to send on, e.g. a request-stream we requested),
 * RS_ERR_CLOSED (connection closed), RS_ERR_NOMEM.
 */
RS_EXPORT int rs_feed_new(rs_feed **out, rs_conn *conn, uint32_t stream_id,
                          const rs_feed_options *o);

/*
 * Queues a copy of `p` (the caller keeps its buffers) to be sent when credit and room allow.
 * An item is accepted when the queue holds fewer than max_items items and max_bytes bytes with
 * it (an item alone over max_bytes is accepted into an empty queue, so it cannot block the feed
 * for ever).
 *
 * Returns 0, or RS_ERR_INVALID_ARGUMENT (NULL feed or payload), RS_ERR_STREAM_CLOSED (the stream
 * is over, or rs_feed_complete was called: the item is not queued), RS_ERR_FLOODED (the queue was
 * full and the overflow policy RS_FEED_OVERFLOW_ERROR ended the stream), RS_ERR_WOULD_BLOCK
 * (full, RS_FEED_OVERFLOW_REFUSE: not queued), RS_ERR_NOMEM (not queued; the stream goes on).
 */
RS_EXPORT int rs_feed_push(rs_feed *feed, const rs_payload *p);

/* rs_feed_push of a payload with data only (no metadata). Same results. */
RS_EXPORT int rs_feed_push_data(rs_feed *feed, const void *data, size_t len);

/*
 * Completes the stream once the queued items are sent (the last one carries the COMPLETE flag;
 * at once when the queue is empty). Later pushes fail with RS_ERR_STREAM_CLOSED.
 * Returns 0, or RS_ERR_INVALID_ARGUMENT (NULL), RS_ERR_STREAM_CLOSED (already over or
 * completing), RS_ERR_CLOSED, RS_ERR_NOMEM (the engine's, fatal for the connection).
 */
RS_EXPORT int rs_feed_complete(rs_feed *feed);

/*
 * Ends the stream at once with ERROR[`code`] and `message` (see rs_conn_send_error), dropping
 * what is queued. Returns 0, or RS_ERR_INVALID_ARGUMENT (NULL feed, a code rs_conn_send_error
 * refuses), RS_ERR_STREAM_CLOSED (already over), RS_ERR_CLOSED, RS_ERR_FRAME_TOO_LARGE,
 * RS_ERR_NOMEM.
 */
RS_EXPORT int rs_feed_error(rs_feed *feed, uint32_t code, rs_bytes message);

/* For a pull source (on_pull) that has something again without pushing from a callback: asks
 * for an on_pull call at the next production. Returns 0, or RS_ERR_INVALID_ARGUMENT (NULL),
 * RS_ERR_STREAM_CLOSED (over). */
RS_EXPORT int rs_feed_wake(rs_feed *feed);

/* Items queued and not yet sent; items dropped by RS_FEED_OVERFLOW_DROP_OLDEST so far. */
RS_EXPORT size_t rs_feed_queued(const rs_feed *feed);
RS_EXPORT uint64_t rs_feed_dropped(const rs_feed *feed);

/* The connection and stream of the feed, and its user pointer (rs_feed_options.user). */
RS_EXPORT rs_conn *rs_feed_conn(const rs_feed *feed);
RS_EXPORT uint32_t rs_feed_stream_id(const rs_feed *feed);
RS_EXPORT void *rs_feed_user(const rs_feed *feed);

/*
 * Sets the stream callbacks that drive feeds in `cb`: on_produce, on_payload, on_cancel,
 * on_error, on_stream_closed (nothing else is touched). They take every non-NULL stream user
 * pointer for an rs_feed and ignore streams whose user pointer is NULL. A connection that also
 * has streams of its own (with other user pointers) keeps its own callbacks and forwards the
 * feeds' streams to the functions this fills in.
 */
RS_EXPORT void rs_feed_callbacks(rs_conn_callbacks *cb);

/* -------------------------------------------------------------------------------------------- */
/* Topics: fan-out from a name to the feeds subscribed to it                                     */

/*
 * A table of topics (a chat room, a board, a ticker), each with the feeds subscribed to it.
 * Publishing to a topic pushes a copy to each of its subscribers (each under its own queue
 * bounds and overflow policy, so a slow one never holds the others back); a subscriber leaves by
 * itself when its stream ends. Cost: one hash of the name, then one push per subscriber. A topic
 * exists while it has subscribers. Topics and their feeds belong to one loop's thread.
 */
typedef struct rs_topics rs_topics;

/* An empty table. `mem` NULL: the C library. Returns NULL when out of memory. */
RS_EXPORT rs_topics *rs_topics_new(const rs_mem *mem);

/* Frees the table. Feeds still subscribed go on as plain feeds (they only stop receiving what is
 * published). NULL is ignored. */
RS_EXPORT void rs_topics_free(rs_topics *t);

/*
 * Subscribes the responder's half of `stream_id` to `topic` (NUL-terminated, copied): makes it
 * an rs_feed (rs_feed_new with `o`, NULL for defaults; its on_close and user work as usual) that
 * receives everything published to the topic from now on. Returns 0, or RS_ERR_INVALID_ARGUMENT
 * (NULL t, conn or topic, empty topic), RS_ERR_NOMEM, or the errors of rs_feed_new.
 */
RS_EXPORT int rs_topics_subscribe(rs_topics *t, const char *topic, rs_conn *conn,
                                  uint32_t stream_id, const rs_feed_options *o);

/*
 * Pushes a copy of `p` to every subscriber of `topic` (rs_feed_push: a subscriber whose queue is
 * full meets its overflow policy; the others are not affected). Returns the number of
 * subscribers that queued it (0 for a topic nobody subscribed to), or RS_ERR_INVALID_ARGUMENT
 * (NULL argument).
 */
RS_EXPORT rs_ssize rs_topics_publish(rs_topics *t, const char *topic, const rs_payload *p);

/* rs_topics_publish of a payload with data only. Same results. */
RS_EXPORT rs_ssize rs_topics_publish_data(rs_topics *t, const char *topic, const void *data,
                                          size_t len);

/* Subscribers of `topic` (0 when none or NULL); topics with at least one subscriber. */
RS_EXPORT size_t rs_topics_subscribers(const rs_topics *t, const char *topic);
RS_EXPORT size_t rs_topics_count(const rs_topics *t);

/* -------------------------------------------------------------------------------------------- */
/* Formatted answers                                                                            */

#if defined(__GNUC__)
#define RS_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define RS_PRINTF(f, a)
#endif

/*
 * Answers request-response `stream_id` with data formatted as printf does (no metadata).
 * Returns what rs_conn_send_payload returns, or RS_ERR_INVALID_ARGUMENT (NULL conn or fmt, a
 * format vsnprintf fails), RS_ERR_NOMEM.
 */
RS_EXPORT int rs_service_replyf(rs_conn *conn, uint32_t stream_id, const char *fmt, ...)
    RS_PRINTF(3, 4);

/*
 * Ends `stream_id` with ERROR[`code`] and a message formatted as printf does (keep it UTF-8).
 * Returns what rs_conn_send_error returns, or RS_ERR_INVALID_ARGUMENT (NULL conn or fmt, a
 * format vsnprintf fails), RS_ERR_NOMEM.
 */
RS_EXPORT int rs_service_errorf(rs_conn *conn, uint32_t stream_id, uint32_t code, const char *fmt,
                                ...) RS_PRINTF(4, 5);

#ifdef __cplusplus
}
#endif
#endif
