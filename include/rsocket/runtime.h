/*
 * rsocket-c runtime: the RSocket engine (rsocket/conn.h) on real networks, with libuv.
 *
 * A server listens on a URI (tcp://, tls://, ws://, wss://) with one or more worker loops (one
 * thread each, SO_REUSEPORT), on every address its host resolves to; a client connects to one,
 * trying every address of the host (happy eyeballs, rs_connect_start), with every stage bounded
 * (connect_timeout_ms, setup_timeout_ms), reconnects with jittered exponential backoff and
 * resumes its session when resumption is on. The engine's whole API stays reachable:
 * callbacks receive the rs_conn, and every rs_conn_* call works on it (flow control, lease,
 * resume, availability).
 *
 * Threading: everything about one connection happens on its loop's thread. Output queued on an
 * rs_conn from anywhere on that thread (its callbacks, a timer, another connection's callback)
 * goes out before the loop next sleeps, with nothing to call: the engine tells the runtime
 * (rs_conn_callbacks.on_wake). Streams can also be fed by pull producers (rs_conn_set_producer),
 * which the runtime calls while the socket keeps up. Work for another loop (another worker, a
 * client's loop) goes there with rs_runtime_post, callable from any thread; a multi-worker server
 * keeps per-worker state with the worker hooks of rs_server_options (on_worker_start,
 * on_worker_stop, rs_runtime_worker_user).
 */
#ifndef RSOCKET_RUNTIME_H
#define RSOCKET_RUNTIME_H

#include <uv.h>

#include "rsocket/conn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_server rs_server;
typedef struct rs_client rs_client;
/* WebSocket sessions and plain HTTP on a ws:// or wss:// server: see rsocket/websocket.h. */
typedef struct rs_http_request rs_http_request;
typedef struct rs_http_response rs_http_response;
typedef struct rs_ws_decision rs_ws_decision;
typedef struct rs_ws_session_callbacks rs_ws_session_callbacks;

/* The per-connection user pointer the application chose (server: returned by on_connect;
 * client: rs_client_options.user). */
RS_EXPORT void *rs_runtime_user(rs_conn *conn);

/* The libuv loop `conn` runs on (a server's worker loop, or the client's). */
RS_EXPORT uv_loop_t *rs_runtime_loop(rs_conn *conn);

/*
 * Back-pressure for code that pushes (pull producers, rs_conn_set_producer, need none of this):
 * true while the output `conn` has not written yet is under settings.output_high_watermark. When
 * it answers false, on_drained (rs_server_options / rs_client_options) follows once, when the
 * output has fallen to half the watermark. Independently, a server does not read from a client
 * whose requests made it queue more than 4 x the watermark until the output is back to half of
 * it (so a client that sends and never reads cannot grow the server without limit; clients
 * always read, so two peers can never both wait for the other).
 */
RS_EXPORT bool rs_runtime_writable(rs_conn *conn);

/*
 * Stops (true) or restarts reading from the peer of `conn`: back-pressure toward a peer whose
 * requests feed something that cannot keep up (a proxy stops reading a client while the
 * connection it forwards to is over its watermark, and restarts in that one's on_drained). Frames
 * already read are still delivered; nothing more is read until it restarts, keepalives included,
 * so pause for as long as the cause lasts, not longer. Independent of the read cap above: the
 * peer is read when neither holds it. Survives a change of transport (reconnect, resumption).
 * Call on the connection's loop thread. Does nothing for a NULL `conn`.
 */
RS_EXPORT void rs_runtime_pause_reading(rs_conn *conn, bool paused);

/* The peer's address ("127.0.0.1:50000"), or "" when not connected. */
RS_EXPORT const char *rs_runtime_peer(rs_conn *conn);

/*
 * Raises this process's soft limit on open descriptors (RLIMIT_NOFILE) to its hard limit, for
 * servers: the soft default (1,024 on Debian) is reached by a few hundred idle sockets, the hard
 * one (524,288 under systemd) is what the administrator allows. Returns the soft limit now in
 * force, or RS_ERR_IO when it cannot be read (it is left as it was when raising fails).
 */
RS_EXPORT long rs_runtime_raise_fd_limit(void);

/*
 * Cross-thread work: runs fn(arg) on `loop`'s thread soon after. Callable from any thread, the
 * loop's own included (fn never runs inside this call). Functions posted to one loop run each
 * exactly once, in the order they were posted (so one thread's posts keep that thread's order),
 * between the loop's other callbacks. A wake-up runs at most a bounded batch of what was queued
 * when it began and leaves the rest for the next loop iteration, so however fast other threads
 * post, the loop's timers and sockets keep their turn. fn must not block: it holds up its loop.
 *
 * A loop accepts posts while something of the runtime runs on it: each server worker (from
 * rs_server_start until that worker stops, see on_worker_stop and rs_server_worker_loop), each
 * client (from rs_client_start until it is freed, after RS_CLIENT_CLOSED) and each
 * rs_runtime_loop_init not yet matched by rs_runtime_loop_close. When one of these ends,
 * everything posted to the loop before then has run; when the last ends, later posts fail with
 * RS_ERR_CLOSED. So a posted function is never dropped: it runs, or the post fails and says so.
 *
 * Returns 0: fn(arg) will run exactly once, on the loop's thread. RS_ERR_CLOSED: nothing of the
 * runtime runs on `loop` (any more, or yet): fn will never run and `arg` is still the caller's.
 * RS_ERR_NOMEM; RS_ERR_INVALID_ARGUMENT (loop or fn NULL).
 */
RS_EXPORT int rs_runtime_post(uv_loop_t *loop, void (*fn)(void *arg), void *arg);

/*
 * Lets rs_runtime_post reach `loop`, a loop of the caller's own (the loops of servers and
 * clients need no call: they accept posts while those run). Call on the loop's thread, or before
 * the loop runs. Counted: each successful call needs one rs_runtime_loop_close. Until then the
 * loop holds one more active handle, so uv_run(loop, UV_RUN_DEFAULT) does not return.
 * Returns 0, RS_ERR_INVALID_ARGUMENT (loop NULL), RS_ERR_NOMEM, RS_ERR_IO (libuv cannot make the
 * wake-up handle: out of file descriptors).
 */
RS_EXPORT int rs_runtime_loop_init(uv_loop_t *loop);

/*
 * Ends one rs_runtime_loop_init, on the loop's thread. Everything posted to `loop` before the
 * call has run when it returns (inside this call if it was still queued). If nothing else of the
 * runtime runs on the loop, later posts fail with RS_ERR_CLOSED and the wake-up handle closes:
 * run the loop on (uv_loop_close needs that anyway) so its memory is freed.
 * Returns 0, RS_ERR_INVALID_ARGUMENT (loop NULL, or no rs_runtime_loop_init of it is open).
 */
RS_EXPORT int rs_runtime_loop_close(uv_loop_t *loop);

/*
 * Runs `loop` like uv_run(loop, UV_RUN_DEFAULT) but never sleeps in the kernel: it polls with a
 * zero timeout until no active handle remains. This trades one busy core per loop for the
 * scheduler wake-up of every blocking poll (about 10-20 us on virtual machines): for latency
 * benchmarks and dedicated hosts. Returns when the loop has nothing left to do.
 */
RS_EXPORT void rs_runtime_run_busy(uv_loop_t *loop);

/*
 * Process-wide malloc tuning for servers and load generators (glibc; a no-op elsewhere): raises
 * the heap trim threshold to 64 MiB and the top pad to 16 MiB. By default glibc gives the top of
 * its heap back to the kernel whenever more than 128 KiB is free there, so a connection that
 * writes a megabyte per loop iteration shrinks and regrows (and page-faults) the heap every
 * iteration: request-response with 16 KiB payloads and 64 in flight ran 7x slower. Call once at
 * startup, before creating threads. The cost is memory kept by the process after a burst.
 */
RS_EXPORT void rs_runtime_tune_malloc(void);

/*
 * Happy-eyeballs TCP connection (RFC 8305), what rs_client uses for every transport. Resolves
 * `host` (a name, or a numeric IPv4 or IPv6 address without brackets) and connects to `port` on
 * every address it resolves to, in the resolver's order with IPv6 and IPv4 interleaved: the next
 * attempt starts 250 ms after the previous one, or at once when it fails; the first connection
 * up wins and the other attempts are closed. A numeric address is used as it is, without a
 * look-up. `timeout_ms` bounds the whole operation, look-up included (0: no limit).
 *
 * `cb` runs exactly once, on `loop`'s thread, never inside rs_connect_start, unless
 * rs_connect_cancel is called first. On success `tcp` is a connected handle initialised on
 * `loop`, now the caller's: it was allocated with malloc, so close it with uv_close and free it in
 * the close callback. On failure `tcp` is NULL, `status` is RS_ERR_IO (the name does not resolve,
 * or every address failed), RS_ERR_TIMEOUT or RS_ERR_NOMEM, and `message` (valid during the
 * callback) names each address tried and why, e.g. "cannot connect to localhost:7878: [::1]:7878
 * connection refused; 127.0.0.1:7878 connection refused" ("cannot connect to 127.0.0.1:1:
 * connection refused" when the host was the one numeric address).
 *
 * Returns 0 and the operation in *out, or RS_ERR_INVALID_ARGUMENT (no host, a host over 255
 * bytes, a port outside 0..65535, no callback), RS_ERR_NOMEM; then `cb` is never called.
 */
typedef struct rs_connect rs_connect;
typedef void (*rs_connect_cb)(uv_tcp_t *tcp, int status, const char *message, void *arg);
RS_EXPORT int rs_connect_start(rs_connect **out, uv_loop_t *loop, const char *host, int port,
                               uint32_t timeout_ms, rs_connect_cb cb, void *arg);

/* Stops an operation whose callback has not run yet: every attempt is closed and the callback
 * never runs. The operation's memory is released once libuv has closed its handles, so the loop
 * must run on. Must not be called after the callback ran (the operation is gone then). */
RS_EXPORT void rs_connect_cancel(rs_connect *c);

/* WebSocket transport options (ws:// and wss://). */
typedef struct rs_ws_transport_options {
  size_t max_message;      /* largest inbound message; 0 = 16 MiB + 16 */
  bool deflate;            /* offer (client) or accept (server) permessage-deflate */
  const char *subprotocol; /* client: offer it; server: accept only clients offering it (NULL:
                              none asked, any offer is declined). Borrowed: must stay valid
                              while the server or client runs. */
  /* Server: return true to accept a browser's Origin: the whole header value, NUL-terminated
   * (NULL: the request had none); `user` is the server's user pointer (rs_server_options.user).
   * NULL = accept all. Refused upgrades get 403. (rs_server_options.on_upgrade sees the Origin
   * too, with everything else about the request.) */
  bool (*origin_allowed)(const char *origin, void *user);
  /* Client: extra header lines for the upgrade request (cookies, Authorization, …), a
     NULL-terminated array of "Name: value" (NULL: none), sent in order after the handshake's own
     headers. rs_client_start refuses a malformed line (see rs_ws_header_line_check in
     rsocket/ws.h: no CR/LF or other control characters, no header the handshake sets itself).
     Borrowed: must stay valid while the client runs. */
  const char *const *headers;
} rs_ws_transport_options;

#define RS_SERVER_OPTIONS_VERSION 2

typedef struct rs_server_options {
  size_t struct_size;          /* sizeof(rs_server_options) */
  const char *uri;             /* where to listen, e.g. "tcp://127.0.0.1:7878" (port 0: any) */
  int workers;                 /* worker loops (threads); 1 uses only the caller's loop */
  const char *cert_file;       /* tls:// and wss://: PEM certificate chain */
  const char *key_file;        /* and its private key */
  rs_conn_settings settings;   /* for every accepted connection (role is forced to server) */
  rs_conn_callbacks callbacks; /* their `user` argument is the per-connection user */
  /* A connection was accepted (on its worker's thread). Returns its user pointer. May be NULL. */
  void *(*on_connect)(rs_server *server, rs_conn *conn, void *server_user);
  /* The connection is gone (after on_close); release the per-connection user. May be NULL. */
  void (*on_disconnect)(rs_server *server, rs_conn *conn, void *conn_user, void *server_user);
  void *user;             /* server_user */
  size_t max_connections; /* per worker; 0 = unlimited. Over it new connections are closed. */
  rs_ws_transport_options ws;
  /* Optional tap: every whole frame received (outbound false) or written (true), without any
   * transport prefix. For logging and debugging; it costs a second pass over the bytes. */
  void (*on_frame)(rs_conn *conn, bool outbound, const uint8_t *frame, size_t len, void *user);
  /* The output of `conn` fell to half of settings.output_high_watermark after
   * rs_runtime_writable() said it was full: produce again. `user` is the connection's user. */
  void (*on_drained)(rs_conn *conn, void *user);
  /* Worker threads (workers > 1) run their loops with rs_runtime_run_busy: one busy core per
   * worker for lower latency. The caller's loop is the caller's to run. */
  bool busy_poll;
  /* Graceful stop: connections whose streams have not finished this long after
   * CONNECTION_CLOSE are aborted (rs_server_options_default: 10 s). 0 waits for them as long as
   * it takes (a stream that never ends keeps the server running). */
  uint32_t drain_timeout_ms;
  /* Worker life cycle (version 2), for per-worker state such as a pool of backend clients on the
   * worker's loop. on_worker_start runs once per worker on the worker's own thread (worker 0: the
   * caller's, inside rs_server_start) before it accepts anything; every worker's has returned
   * before any worker accepts a connection and before rs_server_start returns (no hook runs when
   * it fails). Do not wait there for another worker. It returns the worker's user pointer
   * (rs_runtime_worker_user, rs_server_worker_user), which may be NULL. May be NULL. */
  void *(*on_worker_start)(rs_server *server, int worker_index, uv_loop_t *loop, void *server_user);
  /* Once the server is stopping and the worker's last connection is gone (after its
   * on_disconnect), on the worker's thread: release `worker_user`. What was posted to the
   * worker's loop before has run; posts after it fail with RS_ERR_CLOSED, unless something else
   * of the runtime still runs on that loop (worker 0 shares the caller's loop: a client or
   * rs_runtime_loop_init there keeps it open). May be NULL. */
  void (*on_worker_stop)(rs_server *server, int worker_index, uv_loop_t *loop, void *worker_user,
                         void *server_user);
  /* ws:// and wss:// only (rsocket/websocket.h). The handshake hook: decides what each
   * WebSocket upgrade becomes (RSocket, plain messages, or a refusal) after the checks of RFC
   * 6455 and origin_allowed passed. `d` arrives pre-filled with what happens without the hook.
   * NULL: RSocket on the URI's path, 404 elsewhere. */
  void (*on_upgrade)(rs_server *server, const rs_http_request *req, rs_ws_decision *d,
                     void *server_user);
  /* ws:// and wss:// only: the callbacks of plain WebSocket sessions (RS_WS_MESSAGES).
   * Borrowed: must outlive the server. NULL: on_upgrade must not choose RS_WS_MESSAGES. */
  const rs_ws_session_callbacks *messages;
  /* ws:// and wss:// only: answers a request that is not a WebSocket upgrade with
   * rs_http_respond (GET and HEAD; other methods get 405 without calling it). NULL: such
   * requests get 400. */
  void (*on_http)(rs_server *server, const rs_http_request *req, rs_http_response *res,
                  void *server_user);
} rs_server_options;

/* Fills defaults: workers 1, settings = rs_conn_settings_default(server), drain_timeout_ms
 * 10000, everything else 0. */
RS_EXPORT void rs_server_options_default(rs_server_options *o);

/*
 * Starts listening on `loop` (and `workers`-1 more loops on their own threads), on every address
 * the URI's host resolves to ("localhost": ::1 and 127.0.0.1), all on one port; addresses this
 * machine lacks are skipped. A ws:// or wss:// server serves the URI's path only ("/" when the
 * URI has none) and answers 404 to other paths. Returns 0, or RS_ERR_INVALID_ARGUMENT (bad URI,
 * missing certificate for tls/wss, ws not built) or RS_ERR_IO (cannot resolve or bind, e.g.
 * "localhost:7878 ([::1]): Address already in use"), with a one-line reason in `err`.
 */
RS_EXPORT int rs_server_start(rs_server **out, uv_loop_t *loop, const rs_server_options *o,
                              char *err, size_t errlen);

/* The TCP port the server listens on (useful with port 0). */
RS_EXPORT int rs_server_port(const rs_server *s);

/* The URI it listens on, host as given, with the real port ("tcp://localhost:7878"). */
RS_EXPORT const char *rs_server_uri(const rs_server *s);

/* Connections currently open (all workers). */
RS_EXPORT size_t rs_server_connection_count(const rs_server *s);

/* How many worker loops the server runs (the `workers` option, at least 1). */
RS_EXPORT int rs_server_workers(const rs_server *s);

/* The loop of worker `index` (0: the loop given to rs_server_start), where rs_runtime_post sends
 * work for that worker; NULL when `index` is out of range. Callable from any thread while the
 * server runs. */
RS_EXPORT uv_loop_t *rs_server_worker_loop(const rs_server *s, int index);

/* The pointer on_worker_start returned for worker `index` (NULL without that hook, or when
 * `index` is out of range). Every worker's hook has returned before any worker runs, so any
 * worker's thread may read any worker's pointer, and so may the caller's once rs_server_start
 * has returned; what it points to is the application's to share or not. */
RS_EXPORT void *rs_server_worker_user(const rs_server *s, int index);

/* The server worker `conn` runs on: the pointer its on_worker_start returned (NULL for a
 * client's connection) ... */
RS_EXPORT void *rs_runtime_worker_user(rs_conn *conn);

/* ... and its index, 0 to rs_server_workers() - 1 (-1 for a client's connection). */
RS_EXPORT int rs_runtime_worker_index(rs_conn *conn);

/*
 * Stops accepting. With `graceful`, open connections get CONNECTION_CLOSE and finish their
 * streams (those still open after drain_timeout_ms, when set, are aborted); otherwise they are
 * aborted. `on_stopped` (may be NULL) runs on the caller's loop when
 * every connection is gone and the worker threads have ended; the server is freed right after.
 * Calling it again during a graceful stop with `graceful` false cuts what is still open at once
 * (a second Ctrl-C); other repeated calls do nothing.
 * Call from the thread of the loop given to rs_server_start.
 */
RS_EXPORT void rs_server_stop(rs_server *s, bool graceful, void (*on_stopped)(void *arg),
                              void *arg);

typedef enum rs_client_event {
  RS_CLIENT_CONNECTED,    /* transport up and the server answered (see setup_timeout_ms) */
  RS_CLIENT_DISCONNECTED, /* transport lost; `message` says why */
  RS_CLIENT_RESUMED,      /* RESUME_OK received: streams go on */
  RS_CLIENT_RECONNECTING, /* next attempt scheduled */
  RS_CLIENT_CLOSED,       /* finished for good (closed, rejected, attempts exhausted): the client
                             is freed after this callback returns */
} rs_client_event;

#define RS_CLIENT_OPTIONS_VERSION 3

/* A timeout of rs_client_options that never expires. */
#define RS_CLIENT_NO_TIMEOUT UINT32_MAX

typedef struct rs_client_options {
  size_t struct_size;          /* sizeof(rs_client_options) */
  const char *uri;             /* "tcp://127.0.0.1:7878", "wss://host/path", … */
  rs_conn_settings settings;   /* role is forced to client */
  rs_conn_callbacks callbacks; /* their `user` argument is `user` below */
  void *user;
  const char *ca_file; /* tls/wss: extra trusted CA (PEM) */
  bool insecure;       /* tls/wss: skip certificate verification (tests only) */
  /* Per attempt, the whole way to a transport that carries frames: resolving the name, TCP on
   * every address (see rs_connect_start), the TLS handshake and the WebSocket upgrade.
   * 0 = 10 s; RS_CLIENT_NO_TIMEOUT = none. */
  uint32_t connect_timeout_ms;
  /* Reconnect after a transport that was up is lost (with resumption the session continues
   * until resume_session_timeout_ms runs out; without it a new engine is made and the old
   * streams end with RS_ERR_CLOSED). A first connection that fails is not retried. */
  bool reconnect;
  uint32_t backoff_min_ms; /* first delay (jittered ±50%); 0 = 100 ms */
  uint32_t backoff_max_ms; /* cap; 0 = 16 s */
  int max_attempts;        /* consecutive failed attempts before giving up; 0 = unlimited */
  void (*on_event)(rs_client *c, rs_client_event ev, const char *message, void *user);
  rs_ws_transport_options ws;
  /* Optional frame tap, as in rs_server_options (`user` is the client's user pointer). */
  void (*on_frame)(rs_conn *conn, bool outbound, const uint8_t *frame, size_t len, void *user);
  /* The output of `conn` fell to half of settings.output_high_watermark after
   * rs_runtime_writable() said it was full: produce again. `user` is the connection's user. */
  void (*on_drained)(rs_conn *conn, void *user);
  /* How long the server has, once SETUP (or RESUME) is written, to send its first frame.
   * RSocket accepts a SETUP silently, so when the server has sent nothing 1 s after it (or half
   * this timeout, if shorter) the client sends KEEPALIVE(respond): any frame the server sends
   * (that KEEPALIVE's answer, a response, LEASE, ERROR, RESUME_OK) proves it speaks RSocket and
   * makes the connection established (RS_CLIENT_CONNECTED). A peer
   * that accepts TCP and never answers fails the attempt with RS_ERR_TIMEOUT after this long.
   * 0 = 10 s; RS_CLIENT_NO_TIMEOUT = do not wait: no KEEPALIVE is added and the connection is
   * established as soon as SETUP is written. (Version 2.) */
  uint32_t setup_timeout_ms;
  /* Send that KEEPALIVE(respond) together with SETUP instead of after 1 s of silence, so that a
   * long-lived connection is established one round trip after SETUP (load-balancing pools use
   * it: a backend that comes back is used at once). The default waits because a client that
   * sends a request and closes at once should not leave a KEEPALIVE to answer on a closing
   * connection (rsocket-js 1.0.0-alpha.3 crashes then). (Version 3.) */
  bool probe_at_once;
} rs_client_options;

/* Fills defaults: settings = rs_conn_settings_default(client), everything else 0. */
RS_EXPORT void rs_client_options_default(rs_client_options *o);

/*
 * Creates the engine at once (so requests can be queued before the transport is up; they go out
 * after SETUP) and starts connecting. Returns 0, or RS_ERR_INVALID_ARGUMENT (bad URI, settings
 * or WebSocket headers) with a reason in `err`, RS_ERR_NOMEM. Connection failures are reported
 * through on_event, not here.
 */
RS_EXPORT int rs_client_start(rs_client **out, uv_loop_t *loop, const rs_client_options *o,
                              char *err, size_t errlen);

/* The engine. Stable for the client's life when resumption is on; otherwise it changes on
 * reconnect (RS_CLIENT_CONNECTED tells). */
RS_EXPORT rs_conn *rs_client_conn(rs_client *c);

/* True while the connection is established: from RS_CLIENT_CONNECTED to the transport's loss. */
RS_EXPORT bool rs_client_connected(const rs_client *c);

/*
 * Why the last attempt failed or the transport went away, for on_event (DISCONNECTED,
 * RECONNECTING, CLOSED): RS_ERR_TIMEOUT (connecting, a handshake or the answer to SETUP took
 * longer than allowed), RS_ERR_IO (the name does not resolve, no address accepts, the
 * connection broke), RS_ERR_PROTOCOL (TLS or WebSocket handshake failed, the peer broke the
 * protocol), RS_ERR_CLOSED (closed by rs_client_close or by the peer), RS_ERR_NOMEM; 0 before
 * any. The message given to on_event says the same in words.
 */
RS_EXPORT int rs_client_last_error(const rs_client *c);

/* Closes. Graceful sends CONNECTION_CLOSE and waits for open streams (while connecting, it first
 * connects so that what was queued goes out). Otherwise it aborts at once, whatever the stage:
 * a connection attempt, a TLS or WebSocket handshake or an established session (which gets
 * ERROR[CONNECTION_ERROR] when the transport can still carry it). The client is freed after
 * on_event(RS_CLIENT_CLOSED), which never runs inside this call. */
RS_EXPORT void rs_client_close(rs_client *c, bool graceful);

#ifdef __cplusplus
}
#endif
#endif
