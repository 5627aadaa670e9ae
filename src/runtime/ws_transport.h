/* WebSocket over a runtime connection: the opening handshake, then rs_ws_conn, with an "inner"
 * protocol on top (the RSocket engine in message framing, or a plain message handler). */
#ifndef RS_RUNTIME_WS_TRANSPORT_H
#define RS_RUNTIME_WS_TRANSPORT_H

#include "rsocket/http.h"
#include "rsocket/runtime.h"
#include "rsocket/websocket.h"
#include "rsocket/ws.h"
#include "runtime/io.h"
#include "runtime/uri.h"

typedef struct rt_ws rt_ws;

/* What a server does with a request (see rt_ws_inner_ops.decide). */
typedef struct rt_ws_verdict {
  rs_ws_decision d;
  /* Plain HTTP: a whole response to write before closing (malloc'd; the rt_ws frees it), or
   * NULL for the default answer (400: not a WebSocket upgrade). */
  char *http;
  size_t http_len;
} rt_ws_verdict;

typedef struct rt_ws_inner_ops {
  /* The handshake is done; messages may flow. */
  void (*on_open)(void *inner, rt_ws *ws);
  /* A whole message. Return non-zero to fail the connection (1003 for a wrong message type). */
  int (*on_message)(void *inner, rt_ws *ws, int opcode, const uint8_t *data, size_t len,
                    uint64_t now);
  /* Move outbound messages into the WebSocket with rt_ws_send while it has room. */
  void (*pull)(void *inner, rt_ws *ws);
  uint64_t (*next_deadline)(void *inner);
  void (*expire)(void *inner, uint64_t now);
  /* The inner protocol is finished: the WebSocket closes (1000). */
  bool (*want_close)(void *inner);
  /* The transport is gone. */
  void (*closed)(void *inner, int err, const char *reason);
  /* Optional: the close handshake ended or the WebSocket failed; `code` is the peer's (remote) or
   * the one we failed with. Called before closed(). */
  void (*on_ws_close)(void *inner, unsigned code, rs_bytes reason, bool remote);
  /* Optional zero-copy output, used instead of pull() when the WebSocket neither masks (server
   * role) nor compresses: whole messages oldest first, each with RS_CONN_MESSAGE_HEADROOM
   * writable bytes before it, where the frame header is written. direct_consumed() reports the
   * first `n` bytes of messages (always whole messages) as written. */
  int (*direct_pending)(void *inner, rs_iov *iov, int max);
  void (*direct_consumed)(void *inner, size_t n);
  /* Optional, server: a request head arrived; `v` is pre-filled with what happens without this
   * hook (RSocket on the served path, else 404; the configured subprotocol when offered). A
   * request without "Upgrade: websocket" is plain HTTP: set v->http to answer it. For an
   * upgrade, set v->d. The hook may hand the connection to another inner protocol with
   * rt_ws_set_inner; the current one's on_open runs once the 101 is queued. */
  void (*decide)(void *inner, rt_ws *ws, const rs_http_request *req, rt_ws_verdict *v);
  /* Optional: called at the start of every output round, before the WebSocket hands its queued
   * bytes to the transport, so it may queue more (rt_ws_send) safely: the place for callbacks
   * such as "output drained". (Not from consumed: a send there could move bytes the transport
   * is about to write.) */
  void (*before_output)(void *inner, rt_ws *ws);
} rt_ws_inner_ops;

/* Creates the session and attaches it to `io` (server or client role). `host`/`path` are for the
 * client's request; a server serves only `path` (borrowed: it must outlive the connection; NULL
 * serves any path) and answers 404 to others. NULL on allocation failure. */
rt_ws *rt_ws_attach(rs_io_conn *io, bool server, const rs_ws_transport_options *o, const char *host,
                    const char *path, const rt_ws_inner_ops *ops, void *inner);

/* The bytes rt_ws_attach_in needs (a multiple of 8). */
size_t rt_ws_size(void);
/* rt_ws_attach (server role) into `place`: rt_ws_size() zeroed, 8-byte aligned bytes that
 * outlive the transport (rs_io_conn_extra's). The rt_ws itself is then never freed, only what it
 * allocated. */
rt_ws *rt_ws_attach_in(void *place, rs_io_conn *io, const rs_ws_transport_options *o,
                       const char *path, const rt_ws_inner_ops *ops, void *inner);

/* Client role for a plain WebSocket program (ws-client). `headers` is "Name: value\r\n" repeated
 * (NULL or "" for none), added to the upgrade request; the caller has checked the names and values
 * (no CR, LF or NUL inside a line, no header the handshake sets itself). Unlike rt_ws_attach,
 * messages that arrive after our close and before the server's still reach on_message (the
 * last replies a client prints). NULL on allocation failure. */
rt_ws *rt_ws_attach_client(rs_io_conn *io, const rs_ws_transport_options *o, const char *host,
                           const char *path, const char *headers, const rt_ws_inner_ops *ops,
                           void *inner);
/* Checks client options (the extra headers). 0, or RS_ERR_INVALID_ARGUMENT with a reason. */
int rt_ws_check_options(const rs_ws_transport_options *o, char *err, size_t errlen);

/* Queues a message. Returns 0, RS_ERR_WOULD_BLOCK (the WebSocket's queue is full: try later),
 * RS_ERR_CLOSED. */
int rt_ws_send(rt_ws *ws, int opcode, const uint8_t *data, size_t len);
/* Bytes queued and not yet written. */
size_t rt_ws_queued(const rt_ws *ws);
/* Replaces the inner protocol (a server resumption hands the transport to another session). */
void rt_ws_set_inner(rt_ws *ws, const rt_ws_inner_ops *ops, void *inner);
rs_io_conn *rt_ws_io(rt_ws *ws);
/* Server: a list node that lives as long as the handshake (NULL once it is over): the worker links
 * it among its connections not set up yet; it is unlinked when the handshake state goes. */
struct rt_pending *rt_ws_pending(rt_ws *ws);
/* The subprotocol agreed in the handshake, or NULL. */
const char *rt_ws_subprotocol(const rt_ws *ws);
/* The Host header for `uri` ("example.com", "[::1]:8080"). */
void rt_ws_host_header(const rs_uri *uri, char *out, size_t cap);
/* Starts the close handshake. */
void rt_ws_close(rt_ws *ws, unsigned code, const char *reason);

#endif
