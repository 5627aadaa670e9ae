/* Plain WebSocket sessions (rsocket/websocket.h) inside the runtime. */
#ifndef RS_RUNTIME_WS_SESSION_H
#define RS_RUNTIME_WS_SESSION_H

#include "rsocket/websocket.h"
#include "runtime/connect.h"
#include "runtime/rt_internal.h"
#include "runtime/io.h"
#include "runtime/tls.h"
#include "runtime/uri.h"
#include "runtime/ws_transport.h"

/* What a client session adds. */
typedef struct rt_ws_client {
  rs_ws_session_callbacks callbacks;
  rs_ws_transport_options wo;
  rs_uri uri;
  rs_tls_ctx *tls;
  rs_io_loop *io;
  rs_connect *connecting;
  uv_loop_t *loop;
  size_t high_watermark;
  uv_timer_t timer; /* the connect timeout, then the report of a failure */
  uint32_t timeout_ms;
  bool failing;
  char why[300];
  char host_header[256]; /* empty: from the URI */
} rt_ws_client;

/* One per open WebSocket: a server may hold tens of thousands, mostly idle, so it keeps only what
 * it cannot find elsewhere (the loop and the watermark are its worker's or its client's). */
struct rs_ws_session {
  rt_ws *ws; /* NULL before a client connected and after the transport is gone */
  const rs_ws_session_callbacks *cb;
  void *user;
  char *close_reason; /* the close handshake's reason (malloc'd once it ended), or NULL */
  uint16_t close_code;
  bool open : 1, closing : 1, finished : 1, want_drained : 1;
  bool have_close : 1, close_remote : 1;
  bool in_place : 1; /* in memory of its connection's (rt_session_new_in): not freed here */
  /* Server side: the worker's list of sessions (handshakes in progress included). */
  rt_worker *worker;
  struct rs_ws_session *next, *prev;
  rt_ws_client *client; /* client side */
};

/* rs_http_respond's target, alive during rs_server_options.on_http only. */
struct rs_http_response {
  bool in_hook, answered, head_only;
  char *out;
  size_t out_len;
};

extern const rt_ws_inner_ops rt_session_ops;

rs_ws_session *rt_session_new(const rs_ws_session_callbacks *cb, void *user);
/* The same in `place` (sizeof(rs_ws_session) zeroed bytes that outlive the session, such as
 * rs_io_conn_extra's): rt_session_free then frees only what the session allocated. */
rs_ws_session *rt_session_new_in(void *place, const rs_ws_session_callbacks *cb, void *user);
void rt_session_free(rs_ws_session *s);
/* The transport is gone: on_close (when the session opened, or for a client). Once. */
void rt_session_finish(rs_ws_session *s, const char *reason);

/* Server (runtime_server.c): a worker's loop, server and output_high_watermark. */
uv_loop_t *rt_worker_loop(const rt_worker *w);
rs_server *rt_worker_server(const rt_worker *w);
size_t rt_worker_watermark(const rt_worker *w);
/* Server (runtime_server.c): what to do with a request; the session's transport is gone. */
void rt_server_decide(rs_ws_session *s, rt_ws *ws, const rs_http_request *req, rt_ws_verdict *v);
void rt_server_session_gone(rs_ws_session *s);

/* Client: the transport is gone; or stop before there is one. */
void rt_ws_client_closed(rs_ws_session *s, const char *reason);
void rt_ws_client_abort(rs_ws_session *s, const char *reason);

#endif
