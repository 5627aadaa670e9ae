/*
 * rsocket-c: the HTTP request as a WebSocket server's hooks see it (rsocket/websocket.h), and
 * sans-I/O helpers to read it: headers, query parameters, offered subprotocols. No sockets.
 */
#ifndef RSOCKET_HTTP_H
#define RSOCKET_HTTP_H

#include "rsocket/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An HTTP request head. Every view points into the connection's buffer and is valid during the
 * hook only. A view whose ptr is NULL was absent (an empty query has ptr set and len 0). */
typedef struct rs_http_request {
  rs_bytes method;    /* "GET" */
  rs_bytes target;    /* as sent: "/rooms?token=abc" */
  rs_bytes path;      /* the target up to '?' or '#': "/rooms" */
  rs_bytes query;     /* after '?', without it and without a fragment: "token=abc" */
  rs_bytes host;      /* Host header */
  rs_bytes origin;    /* Origin header, whole */
  rs_bytes protocols; /* Sec-WebSocket-Protocol: the subprotocols offered, comma-separated */
  bool websocket;     /* a valid WebSocket upgrade (false: plain HTTP) */
  const char *peer;   /* the client's address, "127.0.0.1:50000" */
  rs_bytes head;      /* the whole head, request line to the empty line */
} rs_http_request;

/* The value of header `name` (case-insensitive), blanks around it trimmed; the first one when
 * repeated. {NULL, 0} when absent. */
RS_EXPORT rs_bytes rs_http_request_header(const rs_http_request *req, const char *name);

/*
 * The value of query parameter `name` ("token" in "?a=1&token=x%2By"), percent-decoded ('+' is
 * a space) into `out` with a terminating NUL. Returns its length (>= 0; a parameter without
 * '=' has the empty value), RS_ERR_INVALID_ARGUMENT when absent or badly encoded (a '%' not
 * followed by two hex digits, or a decoded NUL), RS_ERR_BUFFER_TOO_SMALL when it does not fit.
 */
RS_EXPORT rs_ssize rs_http_query_param(const rs_http_request *req, const char *name, char *out,
                                       size_t cap);

/* True when `token` is one of the subprotocols the request offers (compared case-insensitively). */
RS_EXPORT bool rs_http_request_offers(const rs_http_request *req, const char *token);

/*
 * Fills *req from a request head in buf[0..len) (through the empty line; bytes after it are not
 * read) and `peer` (borrowed, may be NULL: ""). `websocket` is true when the head is a valid
 * WebSocket upgrade (rs_ws_request_check). Returns the head's length, 0 when incomplete, or
 * RS_ERR_MALFORMED (see rs_ws_request_parse).
 */
RS_EXPORT rs_ssize rs_http_request_parse(rs_http_request *req, const uint8_t *buf, size_t len,
                                         const char *peer);

/* The reason phrase of an HTTP status ("Not Found"); "Error" for one it does not know. */
RS_EXPORT const char *rs_http_status_text(int status);

#ifdef __cplusplus
}
#endif
#endif
