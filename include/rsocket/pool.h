/*
 * rsocket-c runtime: a load-balancing pool of client connections (rsocket-java's
 * LoadbalanceRSocketClient, for C).
 *
 * A pool keeps K connections (rs_client, rsocket/runtime.h) to each of N targets (RSocket
 * servers: tcp://, tls://, ws://, wss://) on one libuv loop, and sends each new request on the
 * connection its strategy picks among the candidates: the connections that are established and,
 * when the target sends LEASE, hold a lease with permits left.
 *
 * - RS_POOL_P2C (default): power of two choices. Two candidates drawn at random, the cheaper one
 *   wins; cost = (requests in flight + open streams + 1) x latency / availability, where latency
 *   is a peak-sensitive EWMA of response times (a slower sample counts at once, a faster one
 *   decays in over `ewma_half_life_ms`), and availability the lease's remaining share (1 without
 *   lease). A connection without a sample yet uses the median of the others' (1 ms when none has
 *   one), so a target that comes back gets traffic at once. rsocket-java's
 *   WeightedLoadbalanceStrategy is the model.
 * - RS_POOL_ROUND_ROBIN: the candidates in turn.
 *
 * Every connection that fails or is lost is replaced after a jittered exponential backoff
 * (backoff_min_ms doubling to backoff_max_ms, reset by a connection that stays up), for as long as
 * the pool runs, whether the target was ever reachable or not; with resumption on
 * (client.settings.resume) a lost connection first tries to resume its session.
 *
 * Streams: a request made through the pool is a stream on the chosen connection (the returned
 * rs_conn and stream id); everything after the request is done with the rs_conn_* calls on that
 * connection (rs_conn_request_n, rs_conn_cancel, rs_conn_send_payload for a channel...). The
 * callbacks in client.callbacks see those streams with the stream_user given here. The pool owns
 * the engine's stream user pointer of the streams it opened: do not call rs_conn_stream_set_user
 * on them. Streams the target opens toward us (its requests: on_request, even stream ids) are the
 * application's as on any connection.
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
   * argument is `user` below), ca_file, insecure, timeouts, ws, on_frame, on_drained. Its uri,
   * user, reconnect, backoff and max_attempts and on_event are the pool's own. Borrowed strings
   * (ca_file, ws.*) must outlive the pool; settings are copied. */
  rs_client_options client;
  void *user;
  uint32_t backoff_min_ms;    /* first delay before replacing a connection (±50%); 0 = 100 ms */
  uint32_t backoff_max_ms;    /* cap; 0 = 1 s (a target that comes back is used within ~1 s) */
  uint32_t ewma_half_life_ms; /* 0 = 5000 */
  /* Optional: a connection changed state (RS_CLIENT_CONNECTED, DISCONNECTED, RESUMED,
   * RECONNECTING; CLOSED only when the pool closes). `target` is the index in `uris`, `slot`
   * 0..connections-1, `message` why (valid during the call). */
  void (*on_event)(rs_pool *pool, size_t target, int slot, rs_client_event ev, const char *message,
                   void *user);
} rs_pool_options;

/* Fills defaults: client = rs_client_options_default(), everything else 0. */
RS_EXPORT void rs_pool_options_default(rs_pool_options *o);

/*
 * Starts the pool: every connection starts connecting. Requests can be made at once; they fail
 * with RS_ERR_UNAVAILABLE until a connection is established. Returns 0, or
 * RS_ERR_INVALID_ARGUMENT (no targets or too many, a bad URI, a bad setting) with a reason in
 * `err`, RS_ERR_NOMEM.
 */
RS_EXPORT int rs_pool_start(rs_pool **out, uv_loop_t *loop, const rs_pool_options *o, char *err,
                            size_t errlen);

/*
 * Closes every connection (graceful: CONNECTION_CLOSE, open streams finish; otherwise aborted,
 * their streams end with on_error RS_ERR_CLOSED) and stops reconnecting. `on_closed` (may be
 * NULL) runs on the loop once every connection is gone; the pool is freed right after. Requests
 * fail with RS_ERR_CLOSED from this call on.
 */
RS_EXPORT void rs_pool_close(rs_pool *p, bool graceful, void (*on_closed)(void *arg), void *arg);

/*
 * Requests: pick a connection, open the stream on it, and return its stream id (> 0, fire-and-
 * forget: the id used) with the connection in *conn (may be NULL for fire-and-forget). Errors:
 * RS_ERR_UNAVAILABLE (no candidate: nothing connected, or no lease left anywhere),
 * RS_ERR_CLOSED (the pool is closing), RS_ERR_NOMEM, and those of the rs_conn_request_* call.
 */
RS_EXPORT rs_ssize rs_pool_request_response(rs_pool *p, const rs_payload *pl, void *stream_user,
                                            rs_conn **conn);
RS_EXPORT rs_ssize rs_pool_request_stream(rs_pool *p, const rs_payload *pl, uint64_t initial_n,
                                          void *stream_user, rs_conn **conn);
RS_EXPORT rs_ssize rs_pool_request_channel(rs_pool *p, const rs_payload *pl, uint64_t initial_n,
                                           bool complete, void *stream_user, rs_conn **conn);
RS_EXPORT rs_ssize rs_pool_request_fnf(rs_pool *p, const rs_payload *pl, rs_conn **conn);

/* The stream_user given when the pool opened `stream_id` on `conn` (NULL if unknown). */
RS_EXPORT void *rs_pool_stream_user(rs_conn *conn, uint32_t stream_id);

/* The pool `conn` belongs to, or NULL (any connection). */
RS_EXPORT rs_pool *rs_pool_of(rs_conn *conn);
RS_EXPORT void *rs_pool_user(const rs_pool *p);

/* How many connections are candidates now (established, with lease permits when leased). */
RS_EXPORT size_t rs_pool_available(rs_pool *p);

/* What the pool knows about one target, for metrics and tests. */
typedef struct rs_pool_target_stats {
  const char *uri;
  int connections;     /* established */
  int candidates;      /* established and with lease permits */
  uint64_t in_flight;  /* request-response streams waiting for their answer */
  uint64_t streams;    /* request-stream and channel streams open */
  uint64_t requests;   /* requests sent since the start (fire-and-forget included) */
  uint64_t failures;   /* connection attempts that failed and connections lost */
  double latency_ms;   /* the EWMA, averaged over the connections that have a sample (0: none) */
  double availability; /* the lease's share averaged over established connections (1: no lease) */
} rs_pool_target_stats;

/* Number of targets (n_uris). */
RS_EXPORT size_t rs_pool_targets(const rs_pool *p);
/* Fills *out for target `index`. Returns 0 or RS_ERR_INVALID_ARGUMENT (index out of range). */
RS_EXPORT int rs_pool_target_stats_get(rs_pool *p, size_t index, rs_pool_target_stats *out);

#ifdef __cplusplus
}
#endif
#endif
