/*
 * libuv plumbing shared by every transport: one TCP connection (optionally under TLS) driving a
 * sans-I/O "session" (the RSocket engine, or a WebSocket layer stacked on it).
 *
 * The session never sees a socket. The connection feeds it what the socket gave, asks it for its
 * pending output as iovecs, writes them with one writev per loop iteration (a uv_prepare handle
 * flushes every connection that produced output since the loop last slept), tells it how much was
 * written, and arms one timer at the deadline it asks for.
 */
#ifndef RS_RUNTIME_IO_H
#define RS_RUNTIME_IO_H

#include <uv.h>

#include "rsocket/common.h"
#include "runtime/tls.h"

/* A gather-write element (same shape as the engine's output iovecs). */
typedef struct rs_io_vec {
  const uint8_t *base;
  size_t len;
} rs_io_vec;

#define RS_IO_NO_DEADLINE UINT64_MAX
/* How long a finished connection may take to get its last output out (io: written to the
 * socket; the WebSocket and engine glue: moved into it) before it is cut: a peer that reads
 * nothing can never hold a closing connection. */
#define RS_IO_CLOSE_FLUSH_MS 5000u
#define RS_IO_MAX_IOV        64

/*
 * What a connection needs from the protocol above it. All callbacks receive the session pointer
 * given to rs_io_conn_set_session(). Times are milliseconds of the loop's clock (uv_now).
 */
typedef struct rs_io_session_ops {
  /* Bytes received. Returns 0, or a negative rs_error: the connection then flushes what is
   * pending and closes. */
  int (*recv)(void *s, const uint8_t *buf, size_t len, uint64_t now_ms);
  /* Fills up to `max` iovecs with output; returns how many (0 when nothing is pending). The bytes
   * must stay valid until consumed() covers them. */
  int (*pending)(void *s, rs_io_vec *iov, int max);
  /* `n` bytes of the output handed out by pending() were written. */
  void (*consumed)(void *s, size_t n);
  /* The next time expire() must be called, or RS_IO_NO_DEADLINE. */
  uint64_t (*next_deadline)(void *s);
  void (*expire)(void *s, uint64_t now_ms);
  /* True when the session is finished: the connection closes once output is drained. */
  bool (*want_close)(void *s);
  /* The transport is gone (err 0 for an orderly close). The session must not be touched by the
   * connection afterwards; it is the session's to free. */
  void (*closed)(void *s, int err, const char *reason);
  /* True when bytes handed out by pending() stay where they are until consumed() covers them,
   * whatever the session does meanwhile (the engine's block queue): a write the socket could not
   * take at once is finished from them. False (a growable buffer that a send may move): the
   * rest of such a write is copied first and reported consumed at once. */
  bool output_stable;
} rs_io_session_ops;

typedef struct rs_io_conn rs_io_conn;
typedef struct rs_io_loop rs_io_loop;

/* Per-loop state: the flush list and the shared read buffer. One per uv_loop_t (per thread). */
rs_io_loop *rs_io_loop_new(uv_loop_t *loop);
/* Frees it; every connection on it must be closed first. */
void rs_io_loop_free(rs_io_loop *l);
uv_loop_t *rs_io_loop_uv(rs_io_loop *l);

/* The shared rs_io_loop of `loop`, made on first use and reference-counted (thread-safe):
 * every client on one uv loop uses the same one. NULL on allocation failure. */
rs_io_loop *rs_io_loop_get(uv_loop_t *loop);
/* Drops a reference taken with rs_io_loop_get (NULL is ignored). */
void rs_io_loop_put(rs_io_loop *l);

/*
 * Wraps an accepted or connected socket handle (already initialised on `l`'s loop; the connection
 * takes it over and closes it). `tls` (may be NULL) is a fresh session in the right role; the
 * connection owns it. Reading starts when a session is set.
 */
rs_io_conn *rs_io_conn_new(rs_io_loop *l, uv_tcp_t *tcp, rs_tls *tls);
/* Accepts a connection from `listener` (on `l`'s loop) into a new connection that holds its
 * handle in the same allocation: what a server should use. `extra` more bytes (8-byte aligned,
 * zeroed) come with them for the caller's own per-connection objects (rs_io_conn_extra), freed
 * with the connection after its session's closed(): a server's idle connection is then one
 * block instead of several. NULL when the accept or the allocation fails. rs_io_conn_set_tls
 * may give it a TLS session before its session is set. */
rs_io_conn *rs_io_conn_accept(rs_io_loop *l, uv_stream_t *listener, size_t extra);
/* The `extra` bytes of an accepted connection (NULL when it has none). */
void *rs_io_conn_extra(rs_io_conn *c);
void rs_io_conn_set_tls(rs_io_conn *c, rs_tls *tls);
void rs_io_conn_set_session(rs_io_conn *c, const rs_io_session_ops *ops, void *session);

/* Marks the connection as having output or a new deadline: it is flushed before the loop next
 * sleeps. Call after acting on the session from outside its callbacks. */
void rs_io_conn_wake(rs_io_conn *c);

/* Flushes what is pending, then closes. The session's closed() is called once, later. */
void rs_io_conn_close(rs_io_conn *c);
/* Closes at once without flushing. */
void rs_io_conn_abort(rs_io_conn *c, int err, const char *reason);

/* Bytes handed to the kernel but not yet confirmed written (back-pressure signal). */
size_t rs_io_conn_write_backlog(const rs_io_conn *c);
/* Stops or restarts reading from the socket (back-pressure toward the peer). */
void rs_io_conn_pause_reading(rs_io_conn *c, bool paused);

/* The libuv loop of the connection. */
uv_loop_t *rs_io_conn_uv(const rs_io_conn *c);

/* True when the connection is plain TCP or its TLS handshake is done. */
bool rs_io_conn_handshake_done(const rs_io_conn *c);

/* The peer's address as "host:port" or "[v6]:port" (empty if unknown), formatted at the first
 * call and kept for the connection's life. */
const char *rs_io_conn_peer(const rs_io_conn *c);
/* The same into `out` (RS_IO_PEER_MAX bytes are enough), without keeping it; returns its length
 * (0: unknown). For a use that does not outlive the call, such as a handshake's request. */
#define RS_IO_PEER_MAX 64
size_t rs_io_conn_peer_format(const rs_io_conn *c, char *out, size_t cap);

/*
 * Opens a listening TCP socket on host:port (numeric address or name; a name's first address)
 * with SO_REUSEADDR and, if `reuseport`, SO_REUSEPORT so several loops (threads) can accept on
 * the same port. Returns 0 and the handle in *out (initialised on `loop`), or a negative rs_error
 * (RS_ERR_IO, with `err` filled: e.g. "127.0.0.1:7878: address already in use").
 */
int rs_io_listen(uv_loop_t *loop, const char *host, int port, bool reuseport, int backlog,
                 uv_tcp_t *out, uv_connection_cb on_connection, char *err, size_t errlen);

/* The most addresses one listening name is bound to. */
#define RS_IO_MAX_LISTENERS 8

/*
 * Listens on every address `host` resolves to (up to `max`, and RS_IO_MAX_LISTENERS), all on the
 * same port: "localhost" gets both ::1 and 127.0.0.1, so that clients find the server whichever
 * address they try first. With port 0, the port is chosen by the first address. Addresses the
 * host does not have (::1 without IPv6) are skipped; any other failure fails the whole call. An
 * IPv6 socket bound beside IPv4 ones is IPv6-only. Returns the number of handles initialised in
 * out[0..n-1] (their `data` is the caller's to set), or RS_ERR_IO with `err` filled, e.g.
 * "localhost:7878 ([::1]): Address already in use".
 */
int rs_io_listen_all(uv_loop_t *loop, const char *host, int port, bool reuseport, int backlog,
                     uv_tcp_t *out, int max, uv_connection_cb on_connection, char *err,
                     size_t errlen);

/* The port a listening handle is bound to (useful after binding port 0), or -1. */
int rs_io_bound_port(const uv_tcp_t *tcp);

#endif
