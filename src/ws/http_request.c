/* The HTTP request head as the WebSocket server's hooks see it: headers, query parameters and
 * subprotocols, read on demand from the head already checked by rs_ws_request_parse. */
#include <string.h>

#include "rsocket/http.h"
#include "rsocket/ws.h"

static int lower(int c) {
  return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

rs_ssize rs_http_request_parse(rs_http_request *req, const uint8_t *buf, size_t len,
                               const char *peer) {
  memset(req, 0, sizeof *req);
  rs_ws_request ws;
  rs_ssize hl = rs_ws_request_parse(&ws, buf, len);
  if (hl <= 0) return hl;
  req->method = ws.method;
  req->target = ws.path;
  size_t p = 0;
  while (p < ws.path.len && ws.path.ptr[p] != '?' && ws.path.ptr[p] != '#') p++;
  req->path = (rs_bytes){ws.path.ptr, p};
  if (p < ws.path.len && ws.path.ptr[p] == '?') {
    size_t q = p + 1;
    while (q < ws.path.len && ws.path.ptr[q] != '#') q++;
    req->query = (rs_bytes){ws.path.ptr + p + 1, q - p - 1};
  }
  req->host = ws.host;
  req->origin = ws.origin;
  req->protocols = ws.protocols;
  req->websocket = rs_ws_request_check(&ws, NULL) == 0;
  req->peer = peer ? peer : "";
  req->head = (rs_bytes){buf, (size_t)hl};
  return hl;
}

/* The head was validated by rs_ws_request_parse: CRLF-terminated lines, token names, values
 * without control characters, an empty line at the end. */
rs_bytes rs_http_request_header(const rs_http_request *req, const char *name) {
  rs_bytes none = {NULL, 0};
  if (!req || !req->head.ptr || !name) return none;
  size_t nl = strlen(name);
  const uint8_t *p = req->head.ptr, *end = p + req->head.len;
  const uint8_t *eol = memchr(p, '\n', (size_t)(end - p)); /* skip the request line */
  while (eol && eol + 1 < end) {
    p = eol + 1;
    eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol || eol - p < 1) break;
    const uint8_t *le = eol - 1; /* the CR */
    if (le == p) break;          /* the empty line */
    const uint8_t *colon = memchr(p, ':', (size_t)(le - p));
    if (!colon || (size_t)(colon - p) != nl) continue;
    size_t i = 0;
    while (i < nl && lower(p[i]) == lower((unsigned char)name[i])) i++;
    if (i != nl) continue;
    const uint8_t *v = colon + 1, *ve = le;
    while (v < ve && (*v == ' ' || *v == '\t')) v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
    return (rs_bytes){v, (size_t)(ve - v)};
  }
  return none;
}

static int hexval(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = (uint8_t)lower(c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..n) into out (cap bytes, NUL included). */
static rs_ssize decode(const uint8_t *s, size_t n, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    int c = s[i];
    if (c == '+') {
      c = ' ';
    } else if (c == '%') {
      if (i + 2 >= n) return RS_ERR_INVALID_ARGUMENT;
      int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
      if (h < 0 || l < 0) return RS_ERR_INVALID_ARGUMENT;
      c = h * 16 + l;
      if (c == 0) return RS_ERR_INVALID_ARGUMENT;
      i += 2;
    }
    if (o + 1 >= cap) return RS_ERR_BUFFER_TOO_SMALL;
    out[o++] = (char)c;
  }
  if (cap == 0) return RS_ERR_BUFFER_TOO_SMALL;
  out[o] = '\0';
  return (rs_ssize)o;
}

rs_ssize rs_http_query_param(const rs_http_request *req, const char *name, char *out, size_t cap) {
  if (!req || !name || !out || !req->query.ptr) return RS_ERR_INVALID_ARGUMENT;
  size_t nl = strlen(name);
  const uint8_t *q = req->query.ptr, *end = q + req->query.len;
  while (q < end) {
    const uint8_t *amp = memchr(q, '&', (size_t)(end - q));
    const uint8_t *pe = amp ? amp : end;
    const uint8_t *eq = memchr(q, '=', (size_t)(pe - q));
    const uint8_t *ne = eq ? eq : pe;
    if ((size_t)(ne - q) == nl && memcmp(q, name, nl) == 0)
      return eq ? decode(eq + 1, (size_t)(pe - eq - 1), out, cap) : decode(pe, 0, out, cap);
    q = pe + (amp ? 1 : 0);
  }
  return RS_ERR_INVALID_ARGUMENT;
}

bool rs_http_request_offers(const rs_http_request *req, const char *token) {
  return req && token && *token && req->protocols.ptr &&
         rs_ws_header_has_token(req->protocols, token);
}

const char *rs_http_status_text(int status) {
  switch (status) {
  case 200: return "OK";
  case 201: return "Created";
  case 204: return "No Content";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 304: return "Not Modified";
  case 307: return "Temporary Redirect";
  case 308: return "Permanent Redirect";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 406: return "Not Acceptable";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 415: return "Unsupported Media Type";
  case 426: return "Upgrade Required";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return status >= 200 && status < 300 ? "OK" : "Error";
  }
}
