/* Transport URIs: tcp://host:port, tls://host:port, ws://host[:port][/path], wss://… */
#ifndef RS_RUNTIME_URI_H
#define RS_RUNTIME_URI_H

#include "rsocket/common.h"

typedef enum rs_uri_scheme { RS_URI_TCP, RS_URI_TLS, RS_URI_WS, RS_URI_WSS } rs_uri_scheme;

typedef struct rs_uri {
  rs_uri_scheme scheme;
  char host[256]; /* without brackets for IPv6 literals */
  int port;
  char path[1024]; /* "/" when absent; WebSocket only */
  bool secure;     /* tls or wss */
  bool websocket;  /* ws or wss */
} rs_uri;

/*
 * Parses `text`. ws/wss default to ports 80/443 and path "/"; tcp/tls need a port. Returns 0, or
 * RS_ERR_INVALID_ARGUMENT with a one-line reason in `err` (errlen bytes) such as
 * "unknown scheme 'http' (use tcp://, tls://, ws:// or wss://)".
 */
int rs_uri_parse(const char *text, rs_uri *out, char *err, size_t errlen);

/* The scheme's name ("tcp", "tls", "ws", "wss"). */
const char *rs_uri_scheme_name(rs_uri_scheme s);

#endif
