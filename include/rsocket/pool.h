/*
 * rsocket-c runtime: a load-balancing pool of client connections (rsocket-java's
 * LoadbalanceRSocketClient, for C).
 *
 * A pool keeps K connections (rs_client, rsocket/runtime.h) to each of N targets (RSocket
 * servers: tcp://, tls://, ws://, wss://) on one libuv loop, and sends each new request on the
 * connection its strategy picks among the candidates: the connections that are established and,
 * when the target sends LEASE, hold a lease with permits left.
 *
 * - RS_POOL_P2C (default): power of two choices. Two distinct targets with a candidate connection
 *   are drawn at random and the cheaper one wins (one such target: it); a target costs what its
 *   cheapest candidate connection costs, and that connection takes the request. A connection's
 *   cost = (requests in flight + open streams + 1) x latency / availability, where latency is a
 *   peak-sensitive EWMA of response times (request-response: request to answer; streams and
 *   channels: request to the first payload; a slower sample counts at once, a faster one decays in
 *   over `ewma_half_life_ms`; between samples the figure itself halves every half-life, so a
 *   connection avoided for being slow is tried again once it looks cheap), and availability the
 *   lease's remaining share (1 without lease, so a target running out of lease gets fewer
 *   requests before it gets none). A connection without a sample yet (every new one) uses the
 *   lowest of the others' (1 ms when none has one), so a target that comes back gets traffic at
 *   once. rsocket-java's WeightedLoadbalanceStrategy is
 *   the model. Targets, not connections, are drawn: with K connections per target, two
 *   connections drawn at random would belong to the same target (K-1)/(N*K-1) of the time (1/3
 *   for two targets of 4), and a slow target would get that share whatever its cost.
 * - RS_POOL_ROUND_ROBIN: every connection in turn (slot 0 of each target, then slot 1...),
 *   skipping those that are not candidates; it ignores load and latency.
 *
 * Every connection that fails or is lost is replaced after a jittered exponential backoff
 * (backoff_min_ms doubling to backoff_max_ms, reset by a connection that stayed up at least
 * backoff_max_ms), for as long as the pool runs, whether the target was ever reachable or not.
 * Its streams end with on_error RS_ERR_CLOSED when it is lost. With resumption on
 * (client.settings.resume) a lost connection first tries to resume its session (the client
 * reconnects with the same backoff) and is replaced only when the session is over; each
 * connection then gets a resume token of its own (16 random bytes; the template's token is not
 * used). While no connection is established but some are resuming (every link cut at once), a
 * new request goes to the least loaded resuming one instead of failing with RS_ERR_UNAVAILABLE:
 * its engine keeps the request and sends it once the session resumes (or ends it with the
 * session). Not with lease.
 *
 * Streams: a request made through the pool is a stream on the chosen connection (the returned
 * rs_conn and stream id); everything after the request is done with the rs_conn_* calls on that
 * connection (rs_conn_request_n, rs_conn_cancel, rs_conn_send_payload for a channel...). The
 * callbacks in client.callbacks see those streams with the stream_user given here. The pool owns
 * the engine's stream user pointer of the streams it opened: do not call rs_conn_stream_set_user
 * on them, and open no stream on a pool's connection with the rs_conn_request_* calls (the pool
 * takes every odd stream id's user pointer for its own record). Streams the target opens toward
 * us (its requests: on_request, even stream ids) are the application's as on any connection.
 *
 * Targets can be added and removed while the pool runs (rs_pool_add_target,
 * rs_pool_remove_target): a removed target takes no new request at once, and its connections
 * drain (the streams open on them go on until they end, then the connection closes) within a
 * deadline of the caller's. A program that reloads its configuration edits its pools this way
 * without cutting a stream.
 *
 * Threading: a pool lives on one loop; every call and callback happens on that loop's thread. A
 * multi-worker server makes one pool per worker (rs_server_options.on_worker_start).
 */
#ifndef RSOCKET_POOL_H
#define RSOCKET_POOL_H

#include "rsocket/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_pool rs_pool;

typedef enum rs_pool_strategy {
  RS_POOL_P2C = 0,
  RS_POOL_ROUND_ROBIN = 1,
} rs_pool_strategy;

#define RS_POOL_MAX_TARGETS     1024
#define RS_POOL_MAX_CONNECTIONS 64 /* per target */

#define RS_POOL_OPTIONS_VERSION 1

typedef struct rs_pool_options {
  size_t struct_size;      /* sizeof(rs_pool_options) */
  const char *const *uris; /* the targets, copied */
  size_t n_uris;           /* 1..RS_POOL_MAX_TARGETS */
  int connections;         /* per target, 1..RS_POOL_MAX_CONNECTIONS; 0 = 2 */
  rs_pool_strategy strategy;
  /* The template of every connection: settings (role forced to client), callbacks (their `user`
   * argument is `user` below; callbacks.struct_size must be set, rs_pool_options_default does),
   * ca_file, insecure, timeouts, ws, on_frame and on_drained (whose `user` is `user` below too).
   * Its uri, user, reconnect, backoff, max_attempts, on_event and probe_at_once (always on) are
   * the pool's own. Borrowed strings (ca_file, ws.*) must outlive
   * the pool; settings are copied (their byte views too). */
  rs_client_options client;
  void *user;
  uint32_t backoff_min_ms;    /* first delay before replacing a connection (±50%); 0 = 100 ms */
  uint32_t backoff_max_ms;    /* cap; 0 = 1 s (a target that comes back is used within ~1 s) */
  uint32_t ewma_half_life_ms; /* 0 = 5000 */
  /* Optional: a connection changed state (RS_CLIENT_CONNECTED, DISCONNECTED, RESUMED,
   * RECONNECTING: a replacement or a resumption attempt is scheduled, the message says why and
   * when; CLOSED when the pool closes or the target is removed, once per connection that was
   * open or connecting). `target` is the target's index (in `uris`, or rs_pool_add_target's),
   * `slot` 0..connections-1, `message` why (valid during the call). */
  void (*on_event)(rs_pool *pool, size_t target, int slot, rs_client_event ev, const char *message,
                   void *user);
} rs_pool_options;

/* Fills defaults: client = rs_client_options_default() with client.callbacks.struct_size set,
 * everything else 0. Returns no errors. */
RS_EXPORT void rs_pool_options_default(rs_pool_options *o);

/*
 * Starts the pool: every connection starts connecting. Requests can be made at once; they fail
 * with RS_ERR_UNAVAILABLE until a connection is established. URIs, WebSocket headers and
 * connection settings are checked before anything starts. When a connection cannot even be
 * started (out of memory, an unreadable ca_file) those already started are aborted: nothing is
 * the caller's, but the loop must run on for them to be released (as uv_loop_close needs anyway).
 * Returns 0, or RS_ERR_INVALID_ARGUMENT (no targets or too many, a bad URI, connections out of
 * range, an unknown strategy, callbacks.struct_size unset, a bad setting or WebSocket header, a
 * ca_file that cannot be loaded) with a reason in `err`, RS_ERR_NOMEM, RS_ERR_INTERNAL (no
 * random bytes for a resume token).
 */
RS_EXPORT int rs_pool_start(rs_pool **out, uv_loop_t *loop, const rs_pool_options *o, char *err,
                            size_t errlen);

/*
 * Closes every connection (graceful: CONNECTION_CLOSE, open streams finish; otherwise aborted,
 * their streams end with on_error RS_ERR_CLOSED) and stops reconnecting; connections not
 * established (connecting, between attempts) stop at once either way. `on_closed` (may be NULL)
 * runs on the loop, never inside this call, once every connection and timer is gone; the pool is
 * freed right after it returns. Requests fail with RS_ERR_CLOSED from this call on. Calling it
 * again during a graceful close with `graceful` false aborts what is still open (the first
 * on_closed stays); other repeated calls do nothing. Returns no errors.
 */
RS_EXPORT void rs_pool_close(rs_pool *p, bool graceful, void (*on_closed)(void *arg), void *arg);

/*
 * Adds a target while the pool runs: `connections` connections to `uri` start connecting, as at
 * rs_pool_start, and take requests once established. The target gets the lowest free index: one
 * a removed target left once it was gone, else rs_pool_targets(). Several targets may have the
 * same URI (a removed one still draining and its successor, say). Returns the index (>= 0), or
 * RS_ERR_INVALID_ARGUMENT (p or uri NULL, a bad URI, RS_POOL_MAX_TARGETS indices in use, a
 * WebSocket URI while client.ws is not valid) with a reason in `err` (may be NULL),
 * RS_ERR_CLOSED (the pool is closing), RS_ERR_NOMEM, RS_ERR_INTERNAL (no random bytes for a
 * resume token); after an error nothing of the target is left once the loop has run.
 */
RS_EXPORT rs_ssize rs_pool_add_target(rs_pool *p, const char *uri, char *err, size_t errlen);

#define RS_POOL_DRAIN_FOREVER UINT32_MAX /* rs_pool_remove_target: no deadline */

/*
 * Removes target `index`. From this call on it takes no new request (it is no candidate:
 * rs_pool_available and the strategies skip it; metadata-push too) and its connections are not
 * replaced. Each established connection closes gracefully (CONNECTION_CLOSE: the streams open on
 * it go on until they end, then it closes; a resuming session with streams open likewise); one
 * not established stops at once. Connections still open `drain_ms` later are aborted, their
 * streams ending with on_error RS_ERR_CLOSED; drain_ms 0 aborts them now, RS_POOL_DRAIN_FOREVER
 * sets no deadline. on_event reports RS_CLIENT_CLOSED for each connection that was open or
 * connecting. Until the last one has closed, rs_pool_target_stats_get reports the target with
 * `draining` set (its figures still count the streams that drain); then its index is free, and
 * rs_pool_targets() shrinks when it was the highest. rs_pool_close during the drain closes the
 * rest with the pool. Returns 0, RS_ERR_INVALID_ARGUMENT (p NULL, no target at `index`),
 * RS_ERR_INVALID_STATE (the target is being removed already), RS_ERR_CLOSED (the pool is
 * closing).
 */
RS_EXPORT int rs_pool_remove_target(rs_pool *p, size_t index, uint32_t drain_ms);

/*
 * Requests: pick a connection, open the stream on it, and return its stream id (> 0, fire-and-
 * forget: the id used) with the connection in *conn (may be NULL for fire-and-forget). Errors:
 * RS_ERR_INVALID_ARGUMENT (p or pl NULL), RS_ERR_UNAVAILABLE (no candidate: nothing connected,
 * or no lease left anywhere), RS_ERR_CLOSED (the pool is closing), RS_ERR_NOMEM, and those of the
 * rs_conn_request_* call (RS_ERR_INVALID_ARGUMENT for initial_n 0, RS_ERR_TOO_MANY_STREAMS,
 * RS_ERR_FRAME_TOO_LARGE...).
 */
RS_EXPORT rs_ssize rs_pool_request_response(rs_pool *p, const rs_payload *pl, void *stream_user,
                                            rs_conn **conn);
RS_EXPORT rs_ssize rs_pool_request_stream(rs_pool *p, const rs_payload *pl, uint64_t initial_n,
                                          void *stream_user, rs_conn **conn);
RS_EXPORT rs_ssize rs_pool_request_channel(rs_pool *p, const rs_payload *pl, uint64_t initial_n,
                                           bool complete, void *stream_user, rs_conn **conn);
RS_EXPORT rs_ssize rs_pool_request_fnf(rs_pool *p, const rs_payload *pl, rs_conn **conn);

/*
 * METADATA_PUSH to every target, on one established connection of each: the first in slot order
 * under its output watermark (rs_runtime_writable), else the first established one (lease does
 * not apply to metadata-push). METADATA_PUSH has no flow control: a caller that forwards them
 * from a peer passes `full` (may be NULL), set to a connection this push left over its output
 * watermark (NULL when none), and stops reading its peer until that connection drains
 * (rs_client_options.on_drained), so a flood waits in the peer's socket rather than in memory.
 * Returns how many targets it was queued for (0: none is connected), or RS_ERR_INVALID_ARGUMENT
 * (p NULL), RS_ERR_CLOSED (the pool is closing), RS_ERR_FRAME_TOO_LARGE (over one frame or the
 * connections' mtu), RS_ERR_NOMEM.
 */
RS_EXPORT rs_ssize rs_pool_metadata_push(rs_pool *p, rs_bytes metadata, rs_conn **full);

/* The stream_user given when the pool opened `stream_id` on `conn` (NULL if unknown: no such
 * stream, an even id, or not a pool's connection). `conn`: a connection of the runtime. Returns
 * no errors. */
RS_EXPORT void *rs_pool_stream_user(rs_conn *conn, uint32_t stream_id);

/* The pool `conn` belongs to, or NULL: `conn` may be any connection of the runtime (a server's,
 * a client's, a pool's; it is recognised by the pool's callbacks, so nothing of another owner's is
 * dereferenced) or NULL; only an engine made with rs_conn_new outside the runtime is not allowed
 * (as for rs_runtime_user). Returns no errors. */
RS_EXPORT rs_pool *rs_pool_of(rs_conn *conn);
/* rs_pool_options.user (NULL for NULL). Returns no errors. */
RS_EXPORT void *rs_pool_user(const rs_pool *p);

/* How many connections are candidates now (established, with lease permits when leased); 0 once
 * closing. Returns no errors. */
RS_EXPORT size_t rs_pool_available(rs_pool *p);

/* What the pool knows about one target, for metrics and tests. */
typedef struct rs_pool_target_stats {
  const char *uri;
  int connections;     /* established */
  int candidates;      /* established and with lease permits */
  uint64_t in_flight;  /* request-response streams waiting for their answer */
  uint64_t streams;    /* request-stream and channel streams open */
  uint64_t requests;   /* requests sent since the start (fire-and-forget included) */
  uint64_t failures;   /* connection attempts that failed and connections lost (with resumption,
                          the attempts to resume are the client's and not counted) */
  double latency_ms;   /* the EWMA, averaged over the connections that have a sample (0: none) */
  double availability; /* the lease's share averaged over established connections (1: no
                          lease; 0: none established) */
  bool draining;       /* removed (rs_pool_remove_target): its connections are closing; it has
                          no candidates */
} rs_pool_target_stats;

/* One past the highest target index in use: n_uris until targets are added or removed; an index
 * below it may be free (a removed target that is gone). 0 for NULL. Returns no errors. */
RS_EXPORT size_t rs_pool_targets(const rs_pool *p);
/* Fills *out for target `index` (out->uri is valid while the target is in the pool: until the
 * pool is freed, or a removed target is gone). Returns 0 or RS_ERR_INVALID_ARGUMENT (p or out
 * NULL, index out of range or free). */
RS_EXPORT int rs_pool_target_stats_get(rs_pool *p, size_t index, rs_pool_target_stats *out);

#ifdef __cplusplus
}
#endif
#endif
