/*
 * rsocket-c: transport URIs, the strings rs_server_start and rs_connect take (rsocket/runtime.h):
 *   tcp://HOST:PORT     RSocket over TCP (length-prefixed frames)
 *   tls://HOST:PORT     the same over TLS
 *   ws://HOST[:PORT][/PATH]   RSocket over WebSocket, one frame per binary message (port 80)
 *   wss://HOST[:PORT][/PATH]  the same over TLS (port 443)
 * HOST is a name, an IPv4 address or an IPv6 address in brackets ("[::1]"). PORT is 0..65535
 * (0: a server takes any free port). Programs that take such URIs can check and pick them apart
 * with rs_uri_parse without a loop or a connection; it allocates nothing.
 */
#ifndef RSOCKET_URI_H
#define RSOCKET_URI_H

#include "rsocket/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rs_uri_scheme { RS_URI_TCP, RS_URI_TLS, RS_URI_WS, RS_URI_WSS } rs_uri_scheme;

/* Sizes of rs_uri's strings, their NUL included: longer hosts or paths fail to parse. */
#define RS_URI_HOST_MAX 256
#define RS_URI_PATH_MAX 1024

/* A parsed URI. Plain data: copy it, keep it on the stack. */
typedef struct rs_uri {
  rs_uri_scheme scheme;
  char host[RS_URI_HOST_MAX]; /* as written, without the brackets of an IPv6 literal */
  int port;                   /* as written, else 80 (ws) or 443 (wss) */
  char path[RS_URI_PATH_MAX]; /* ws/wss: from the first '/' on, query included ("/p?q=1"), "/"
                                 when absent; tcp/tls: always "/" */
  bool secure;                /* tls or wss */
  bool websocket;             /* ws or wss */
} rs_uri;

/*
 * Parses `text` into `out` (all of it: out is zeroed first). tcp:// and tls:// need a port and
 * take no path ("/" alone is accepted); ws:// and wss:// default to ports 80 and 443 and path "/".
 * The scheme is lower case. Returns 0, or RS_ERR_INVALID_ARGUMENT (text or out NULL, or text not
 * such a URI) with a one-line reason in `err` (at most errlen bytes with the NUL; err may be
 * NULL) such as "unknown scheme 'http' (use tcp://, tls://, ws:// or wss://)".
 */
RS_EXPORT int rs_uri_parse(const char *text, rs_uri *out, char *err, size_t errlen);

/* The scheme's name: "tcp", "tls", "ws", "wss"; "?" for a value outside the enum. Returns no
 * errors. */
RS_EXPORT const char *rs_uri_scheme_name(rs_uri_scheme scheme);

#ifdef __cplusplus
}
#endif

#endif
