#include "rsocket/uri.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
  const char *name;
  rs_uri_scheme scheme;
  int default_port;
} schemes[] = {
    {"tcp", RS_URI_TCP, 0},
    {"tls", RS_URI_TLS, 0},
    {"ws", RS_URI_WS, 80},
    {"wss", RS_URI_WSS, 443},
};

const char *rs_uri_scheme_name(rs_uri_scheme s) {
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
    if (schemes[i].scheme == s) return schemes[i].name;
  return "?";
}

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return RS_ERR_INVALID_ARGUMENT;
}

int rs_uri_parse(const char *text, rs_uri *out, char *err, size_t errlen) {
  if (!text || !out) return fail(err, errlen, "%s", "no URI given");
  memset(out, 0, sizeof *out);
  const char *sep = strstr(text, "://");
  if (!sep)
    return fail(err, errlen, "'%s' is not a URI (use tcp://host:port or ws://host:port)", text);
  size_t slen = (size_t)(sep - text);
  int idx = -1;
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
    if (strlen(schemes[i].name) == slen && strncmp(schemes[i].name, text, slen) == 0) idx = (int)i;
  }
  if (idx < 0) {
    char scheme[32];
    snprintf(scheme, sizeof scheme, "%.*s", (int)(slen < 31 ? slen : 31), text);
    return fail(err, errlen, "unknown scheme '%s' (use tcp://, tls://, ws:// or wss://)", scheme);
  }
  out->scheme = schemes[idx].scheme;
  out->secure = out->scheme == RS_URI_TLS || out->scheme == RS_URI_WSS;
  out->websocket = out->scheme == RS_URI_WS || out->scheme == RS_URI_WSS;

  const char *p = sep + 3;
  const char *host_end;
  const char *after;
  if (*p == '[') {
    host_end = strchr(p, ']');
    if (!host_end) return fail(err, errlen, "unterminated IPv6 address in '%s'", text);
    p++;
    after = host_end + 1;
  } else {
    host_end = p + strcspn(p, ":/?#");
    after = host_end;
  }
  size_t hlen = (size_t)(host_end - p);
  if (hlen == 0) return fail(err, errlen, "no host in '%s'", text);
  if (hlen >= sizeof out->host) return fail(err, errlen, "host name too long in '%s'", text);
  memcpy(out->host, p, hlen);
  out->host[hlen] = '\0';

  out->port = schemes[idx].default_port;
  if (*after == ':') {
    char *end;
    long port = strtol(after + 1, &end, 10);
    if (end == after + 1 || port < 0 || port > 65535 || (*end && *end != '/' && *end != '?'))
      return fail(err, errlen, "bad port in '%s' (0..65535)", text);
    out->port = (int)port;
    after = end;
  } else if (*after && *after != '/' && *after != '?') {
    return fail(err, errlen, "unexpected characters after the host in '%s'", text);
  }
  if (!out->websocket) {
    if (*after == ':' || out->port == 0) {
      if (!strchr(sep + 3, ':') || (*(sep + 3) == '[' && !strstr(sep + 3, "]:")))
        return fail(err, errlen, "'%s' needs a port (e.g. tcp://127.0.0.1:7878)", text);
    }
    if (*after && strcmp(after, "/") != 0)
      return fail(err, errlen, "a path is only meaningful for ws:// and wss:// ('%s')", text);
    strcpy(out->path, "/");
    return 0;
  }
  if (*after == '\0') {
    strcpy(out->path, "/");
  } else {
    if (*after != '/') return fail(err, errlen, "bad path in '%s'", text);
    if (strlen(after) >= sizeof out->path) return fail(err, errlen, "path too long in '%s'", text);
    strcpy(out->path, after);
  }
  return 0;
}
