/*
 * rsocket-c runtime: WebSocket sessions and plain HTTP, on the same port as RSocket.
 *
 * A ws:// or wss:// rs_server (rsocket/runtime.h) answers every HTTP request that arrives on its
 * port. For each WebSocket upgrade, the handshake hook (rs_server_options.on_upgrade) sees the
 * request (path, query, subprotocols offered, the whole Origin, any header) and decides what the
 * connection becomes: RSocket over WebSocket (the engine and rs_server_options.callbacks, as
 * without a hook), a plain WebSocket session carrying text and binary messages
 * (rs_server_options.messages), or a refusal with an HTTP status. A request that is not an
 * upgrade goes to rs_server_options.on_http, which answers it (health checks, metrics, static
 * files); the connection closes after the answer.
 *
 * rs_ws_client_start opens the same kind of session as a client (ws:// or wss://).
 *
 * Every session call is made on the session's loop thread (the worker that accepted it, or the
 * client's loop); callbacks run there too. Sends queue: nothing needs to be flushed or woken, and
 * output goes out before the loop next sleeps. Back-pressure: rs_ws_session_writable() says
 * whether the unsent output is under the connection's high watermark
 * (rs_conn_settings.output_high_watermark of the server's settings, or the client's
 * high_watermark); after it said no, on_drained follows once the output fell to half of it.
 */
#ifndef RSOCKET_WEBSOCKET_H
#define RSOCKET_WEBSOCKET_H

#include "rsocket/http.h"
#include "rsocket/runtime.h"
#include "rsocket/ws.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- The handshake decision ---- */

typedef enum rs_ws_verdict {
  RS_WS_RSOCKET = 0, /* RSocket over WebSocket: rs_server_options.callbacks */
  RS_WS_MESSAGES,    /* a plain WebSocket session: rs_server_options.messages */
  RS_WS_REFUSE,      /* answer `status` with `reason` as a text/plain body, and close */
} rs_ws_verdict;

/*
 * What the handshake hook decides, pre-filled with what the server does without a hook: RSocket
 * when the path is the one in the server's URI, else a refusal with 404; the subprotocol is
 * rs_ws_transport_options.subprotocol when the client offered it.
 */
typedef struct rs_ws_decision {
  rs_ws_verdict verdict;
  int status;         /* RS_WS_REFUSE: an HTTP status, 400..599 (others become 403) */
  const char *reason; /* RS_WS_REFUSE: one line, copied (NULL: the status' own text) */
  /* The subprotocol to answer with (copied): one the client offered (rs_http_request_offers),
   * or NULL for none. A value the client did not offer refuses the upgrade with 500. */
  const char *subprotocol;
  /* RS_WS_MESSAGES: the session's user pointer (rs_ws_session_user). RS_WS_RSOCKET: the
   * connection's user (rs_runtime_user) until on_connect, which can read it and replace it. */
  void *user;
} rs_ws_decision;

/* ---- Plain HTTP answers ---- */

typedef struct rs_http_response rs_http_response;

#define RS_HTTP_MAX_BODY (64u << 20) /* the largest body rs_http_respond takes */

/*
 * Answers the request given to on_http, during that call (once). `content_type` may be NULL
 * (no Content-Type). `headers` is a NULL-terminated array of extra "Name: value" lines (NULL:
 * none) checked like rs_ws_header_line_check (no control characters, none of the headers the
 * answer sets itself). Content-Length is always sent; the body is left out for HEAD; the
 * connection closes after the answer ("Connection: close"). A request on_http does not answer
 * gets 404.
 * Returns 0, RS_ERR_INVALID_STATE (already answered, or the hook returned), RS_ERR_INVALID_ARGUMENT
 * (a status outside 200..599, a bad header line, a body over RS_HTTP_MAX_BODY), RS_ERR_NOMEM.
 */
RS_EXPORT int rs_http_respond(rs_http_response *res, int status, const char *content_type,
                              const char *const *headers, const void *body, size_t len);

/* ---- Sessions ---- */

typedef struct rs_ws_session rs_ws_session;

typedef struct rs_ws_session_callbacks {
  /* The session is open: messages may flow. */
  void (*on_open)(rs_ws_session *s, void *user);
  /* A whole message; `text` messages are valid UTF-8. `data` is valid during the call. Messages
   * that arrive after our close and before the peer's are delivered too. */
  void (*on_message)(rs_ws_session *s, bool text, const uint8_t *data, size_t len, void *user);
  /* The output fell to half the high watermark after rs_ws_session_writable() said no. */
  void (*on_drained)(rs_ws_session *s, void *user);
  /* The session is over: `code` is the peer's close code (`remote` true; 1005 when it sent none)
   * or ours (the one given to rs_ws_session_close, or the one the session failed with: 1002,
   * 1007, 1009...), 1006 when the connection ended without a close handshake (then `reason` says
   * why: "connection reset by peer", "cannot connect to ..."). The session is freed when this
   * returns. Servers call it for every session whose on_open ran; clients exactly once. */
  void (*on_close)(rs_ws_session *s, unsigned code, const char *reason, bool remote, void *user);
} rs_ws_session_callbacks;

/*
 * Queues a text (valid UTF-8 required) or binary message, copied. Returns 0,
 * RS_ERR_INVALID_STATE (not open yet), RS_ERR_CLOSED (closing or closed), RS_ERR_WOULD_BLOCK
 * (64 MiB already queued: the peer does not read; see rs_ws_session_writable),
 * RS_ERR_INVALID_ARGUMENT (text that is not UTF-8), RS_ERR_NOMEM.
 */
RS_EXPORT int rs_ws_session_send(rs_ws_session *s, bool text, const void *data, size_t len);

/* True while the unsent output is under the high watermark; when false, on_drained follows. */
RS_EXPORT bool rs_ws_session_writable(rs_ws_session *s);

/* Bytes queued and not yet written to the socket. */
RS_EXPORT size_t rs_ws_session_queued(const rs_ws_session *s);

/*
 * Starts the close handshake (code 1000..4999 but 1004-1006 and 1015; `reason` at most 123
 * bytes, may be NULL). What was queued goes out first; on_close follows when the peer answers
 * (or 5 s later). A client still connecting stops. Calling it again does nothing.
 */
RS_EXPORT void rs_ws_session_close(rs_ws_session *s, unsigned code, const char *reason);

/* Closes the connection at once, without a close handshake; on_close follows (1006). */
RS_EXPORT void rs_ws_session_abort(rs_ws_session *s, const char *reason);

/* Stops (true) or restarts reading from the peer: back-pressure toward a client that sends
 * faster than the application can take. */
RS_EXPORT void rs_ws_session_pause_reading(rs_ws_session *s, bool paused);

RS_EXPORT void *rs_ws_session_user(const rs_ws_session *s);
RS_EXPORT void rs_ws_session_set_user(rs_ws_session *s, void *user);
/* The peer's address ("127.0.0.1:50000"), or "" when not connected. */
RS_EXPORT const char *rs_ws_session_peer(const rs_ws_session *s);
/* The subprotocol agreed in the handshake, or NULL. */
RS_EXPORT const char *rs_ws_session_subprotocol(const rs_ws_session *s);
RS_EXPORT uv_loop_t *rs_ws_session_loop(const rs_ws_session *s);
/* The server that accepted the session (NULL for a client). */
RS_EXPORT rs_server *rs_ws_session_server(const rs_ws_session *s);

/* ---- Clients ---- */

#define RS_WS_CLIENT_OPTIONS_VERSION 1

typedef struct rs_ws_client_options {
  size_t struct_size;         /* sizeof(rs_ws_client_options) */
  const char *uri;            /* "ws://127.0.0.1:8080/path?query" or "wss://…" */
  rs_ws_transport_options ws; /* subprotocol offered, extra headers, deflate, max_message */
  const char *ca_file;        /* wss: extra trusted CA (PEM) */
  bool insecure;              /* wss: skip certificate verification (tests only) */
  /* TCP (every address, see rs_connect_start), TLS and the upgrade; 0 = 10 s,
   * RS_CLIENT_NO_TIMEOUT = none. */
  uint32_t connect_timeout_ms;
  size_t high_watermark; /* see rs_ws_session_writable; 0 = 1 MiB */
  rs_ws_session_callbacks callbacks;
  void *user;
  /* The Host header's value instead of the URI's host[:port] (NULL: from the URI), e.g. to
   * reach a virtual host through an address. Checked like a header value. */
  const char *host_header;
} rs_ws_client_options;

/* Fills defaults: every field 0 but struct_size. */
RS_EXPORT void rs_ws_client_options_default(rs_ws_client_options *o);

/*
 * Starts connecting. The session's on_open runs once the server accepted the upgrade; on_close
 * runs exactly once, whatever happens (a failure to connect is code 1006 with the reason, e.g.
 * "cannot connect to 127.0.0.1:1: connection refused" or "the server refused the WebSocket
 * upgrade of /x: HTTP/1.1 404 Not Found"), never inside this call. Returns 0 and the session in
 * *out, or RS_ERR_INVALID_ARGUMENT (not a ws:// or wss:// URI, a bad header line, no on_close)
 * with a reason in `err`, RS_ERR_NOMEM.
 */
RS_EXPORT int rs_ws_client_start(rs_ws_session **out, uv_loop_t *loop,
                                 const rs_ws_client_options *o, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
