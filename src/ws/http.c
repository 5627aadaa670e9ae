/* The WebSocket opening handshake (RFC 6455 section 4): bounded HTTP/1.1 head parsing, checks,
 * and the requests and responses of both roles. */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "rsocket/http.h"
#include "rsocket/ws.h"
#include "ws/random.h"

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int rs_ws_accept_key(const char *key, size_t key_len, char out[29]) {
  if (!key || key_len > 64) return RS_ERR_INVALID_ARGUMENT;
  char buf[64 + sizeof GUID];
  memcpy(buf, key, key_len);
  memcpy(buf + key_len, GUID, sizeof GUID - 1);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  if (EVP_Digest(buf, key_len + sizeof GUID - 1, digest, &dlen, EVP_sha1(), NULL) != 1 ||
      dlen != 20)
    return RS_ERR_INTERNAL;
  EVP_EncodeBlock((unsigned char *)out, digest, 20); /* 28 characters + NUL */
  return 0;
}

static int lower(int c) {
  return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static bool name_is(rs_bytes name, const char *want) {
  size_t n = strlen(want);
  if (name.len != n) return false;
  for (size_t i = 0; i < n; i++)
    if (lower(name.ptr[i]) != want[i]) return false;
  return true;
}

bool rs_ws_header_has_token(rs_bytes list, const char *token) {
  size_t tl = strlen(token), i = 0;
  while (i < list.len) {
    while (i < list.len && (list.ptr[i] == ' ' || list.ptr[i] == '\t' || list.ptr[i] == ',')) i++;
    size_t start = i;
    while (i < list.len && list.ptr[i] != ',') i++;
    size_t end = i;
    while (end > start && (list.ptr[end - 1] == ' ' || list.ptr[end - 1] == '\t')) end--;
    if (end - start == tl) {
      rs_bytes t = {list.ptr + start, tl};
      if (name_is(t, token)) return true;
    }
  }
  return false;
}

/* Finds the end of the head (after CRLFCRLF). Returns its length, 0 if incomplete, <0 if over
 * the limit. */
static rs_ssize head_length(const uint8_t *buf, size_t len) {
  size_t lim = len < RS_WS_MAX_HANDSHAKE ? len : RS_WS_MAX_HANDSHAKE;
  for (size_t i = 3; i < lim; i++) {
    if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
      return (rs_ssize)(i + 1);
  }
  return len >= RS_WS_MAX_HANDSHAKE ? RS_ERR_MALFORMED : 0;
}

typedef void (*header_fn)(void *ctx, rs_bytes name, rs_bytes value);

/* Parses header lines from p to end (the head without its first line); calls fn for each. */
static int parse_headers(const uint8_t *p, const uint8_t *end, header_fn fn, void *ctx) {
  unsigned count = 0;
  while (p < end) {
    const uint8_t *eol = p;
    while (eol + 1 < end && !(eol[0] == '\r' && eol[1] == '\n')) eol++;
    if (eol + 1 >= end) return RS_ERR_MALFORMED;
    if (eol == p) return 0;                               /* the empty line */
    if (*p == ' ' || *p == '\t') return RS_ERR_MALFORMED; /* obsolete line folding */
    if (++count > RS_WS_MAX_HEADERS) return RS_ERR_MALFORMED;
    const uint8_t *colon = p;
    while (colon < eol && *colon != ':') {
      uint8_t c = *colon;
      if (c <= ' ' || c >= 0x7f) return RS_ERR_MALFORMED; /* token characters only */
      colon++;
    }
    if (colon == eol || colon == p) return RS_ERR_MALFORMED;
    const uint8_t *v = colon + 1, *ve = eol;
    while (v < ve && (*v == ' ' || *v == '\t')) v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
    for (const uint8_t *q = v; q < ve; q++)
      if ((*q < ' ' && *q != '\t') || *q == 0x7f) return RS_ERR_MALFORMED;
    fn(ctx, (rs_bytes){p, (size_t)(colon - p)}, (rs_bytes){v, (size_t)(ve - v)});
    p = eol + 2;
  }
  return RS_ERR_MALFORMED;
}

static void request_header(void *ctx, rs_bytes name, rs_bytes value) {
  rs_ws_request *r = ctx;
  if (name_is(name, "host"))
    r->host = value;
  else if (name_is(name, "upgrade"))
    r->upgrade_websocket |= rs_ws_header_has_token(value, "websocket");
  else if (name_is(name, "connection"))
    r->connection_upgrade |= rs_ws_header_has_token(value, "upgrade");
  else if (name_is(name, "sec-websocket-key")) {
    if (r->key.ptr)
      r->key.len = 0; /* two keys: invalid */
    else
      r->key = value;
    if (!r->key.ptr) r->key = value;
  } else if (name_is(name, "sec-websocket-version"))
    r->version = value;
  else if (name_is(name, "origin"))
    r->origin = value;
  else if (name_is(name, "sec-websocket-protocol") && !r->protocols.ptr)
    r->protocols = value;
  else if (name_is(name, "sec-websocket-extensions") && !r->extensions.ptr)
    r->extensions = value;
}

rs_ssize rs_ws_request_parse(rs_ws_request *req, const uint8_t *buf, size_t len) {
  memset(req, 0, sizeof *req);
  rs_ssize hl = head_length(buf, len);
  if (hl <= 0) return hl;
  const uint8_t *end = buf + hl, *p = buf;
  /* Request line: METHOD SP TARGET SP HTTP/1.x CRLF */
  const uint8_t *sp1 = memchr(p, ' ', (size_t)(end - p));
  if (!sp1 || sp1 == p) return RS_ERR_MALFORMED;
  const uint8_t *sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1));
  if (!sp2 || sp2 == sp1 + 1) return RS_ERR_MALFORMED;
  const uint8_t *eol = sp2;
  while (eol + 1 < end && !(eol[0] == '\r' && eol[1] == '\n')) eol++;
  if (eol - sp2 != 9 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || sp2[8] < '0' || sp2[8] > '9')
    return RS_ERR_MALFORMED;
  for (const uint8_t *q = p; q < sp1; q++)
    if (*q < 'A' || *q > 'Z') return RS_ERR_MALFORMED;
  for (const uint8_t *q = sp1 + 1; q < sp2; q++)
    if (*q <= ' ' || *q >= 0x7f) return RS_ERR_MALFORMED;
  req->method = (rs_bytes){p, (size_t)(sp1 - p)};
  req->path = (rs_bytes){sp1 + 1, (size_t)(sp2 - sp1 - 1)};
  req->http_minor = sp2[8] - '0';
  int rc = parse_headers(eol + 2, end, request_header, req);
  if (rc < 0) return rc;
  return hl;
}

static bool key_valid(rs_bytes key) {
  if (key.len != 24 || key.ptr[22] != '=' || key.ptr[23] != '=') return false;
  for (size_t i = 0; i < 22; i++) {
    uint8_t c = key.ptr[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
          c == '/'))
      return false;
  }
  /* 22 characters carry 132 bits; the last one may only hold 4 of the 16 bytes' bits. */
  const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const char *pos = strchr(alphabet, key.ptr[21]);
  return pos && ((pos - alphabet) & 0x0f) == 0;
}

int rs_ws_request_check(const rs_ws_request *r, const char **reason) {
  const char *why = NULL;
  int status = 400;
  if (r->method.len != 3 || memcmp(r->method.ptr, "GET", 3) != 0)
    why = "a WebSocket upgrade must use GET";
  else if (r->http_minor < 1)
    why = "HTTP/1.1 or later is required";
  else if (!r->host.ptr || r->host.len == 0)
    why = "missing Host header";
  else if (!r->upgrade_websocket)
    why = "missing 'Upgrade: websocket'";
  else if (!r->connection_upgrade)
    why = "missing 'Connection: Upgrade'";
  else if (!r->key.ptr || !key_valid(r->key))
    why = "missing or invalid Sec-WebSocket-Key";
  else if (!r->version.ptr)
    why = "missing Sec-WebSocket-Version";
  else if (r->version.len != 2 || memcmp(r->version.ptr, "13", 2) != 0) {
    why = "unsupported WebSocket version (only 13)";
    status = 426;
  }
  if (reason) *reason = why;
  return why ? status : 0;
}

rs_ssize rs_ws_response_101(char *out, size_t cap, const rs_ws_request *req, const char *protocol,
                            const char *extensions) {
  char accept[29];
  if (rs_ws_accept_key((const char *)req->key.ptr, req->key.len, accept) != 0)
    return RS_ERR_INVALID_ARGUMENT;
  int n = snprintf(out, cap,
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n",
                   accept);
  if (n >= 0 && (size_t)n < cap && protocol)
    n += snprintf(out + n, cap - (size_t)n, "Sec-WebSocket-Protocol: %s\r\n", protocol);
  if (n >= 0 && (size_t)n < cap && extensions)
    n += snprintf(out + n, cap - (size_t)n, "Sec-WebSocket-Extensions: %s\r\n", extensions);
  if (n >= 0 && (size_t)n < cap) n += snprintf(out + n, cap - (size_t)n, "\r\n");
  if (n < 0 || (size_t)n >= cap) return RS_ERR_BUFFER_TOO_SMALL;
  return n;
}

static const char *status_text(int status) {
  return rs_http_status_text(status);
}

rs_ssize rs_ws_response_error(char *out, size_t cap, int status, const char *reason) {
  if (!reason) reason = status_text(status);
  int n =
      snprintf(out, cap,
               "HTTP/1.1 %d %s\r\n%sContent-Type: text/plain\r\nContent-Length: %zu\r\n"
               "Connection: close\r\n\r\n%s\n",
               status, status_text(status), status == 426 ? "Sec-WebSocket-Version: 13\r\n" : "",
               strlen(reason) + 1, reason);
  if (n < 0 || (size_t)n >= cap) return RS_ERR_BUFFER_TOO_SMALL;
  return n;
}

static bool is_tchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Splits "Name: value" into the name's length and the trimmed value. */
static void split_header(const char *line, size_t *name_len, const char **value,
                         size_t *value_len) {
  const char *colon = strchr(line, ':');
  *name_len = colon ? (size_t)(colon - line) : strlen(line);
  const char *v = colon ? colon + 1 : line + *name_len;
  while (*v == ' ' || *v == '\t') v++;
  size_t n = strlen(v);
  while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
  *value = v;
  *value_len = n;
}

int rs_ws_header_line_check(const char *line, const char **reason) {
  static const char *const reserved[] = {
      "host",
      "upgrade",
      "connection",
      "sec-websocket-key",
      "sec-websocket-version",
      "sec-websocket-extensions",
      "sec-websocket-protocol",
      "content-length",
      "transfer-encoding",
  };
  const char *why = NULL;
  const char *colon = line ? strchr(line, ':') : NULL;
  size_t nl = colon ? (size_t)(colon - line) : 0;
  if (!colon)
    why = "a header is 'Name: value'";
  else if (nl == 0)
    why = "the header name is empty";
  for (size_t i = 0; !why && i < nl; i++)
    if (!is_tchar(line[i]))
      why = "the header name may hold only letters, digits and !#$%&'*+-.^_`|~";
  for (const char *q = colon ? colon + 1 : NULL; !why && *q; q++) {
    unsigned char c = (unsigned char)*q;
    if ((c < ' ' && c != '\t') || c == 0x7f) why = "the header value holds a control character";
  }
  for (size_t i = 0; !why && i < sizeof reserved / sizeof reserved[0]; i++)
    if (name_is((rs_bytes){(const uint8_t *)line, nl}, reserved[i]))
      why = "the WebSocket handshake sets this header itself";
  if (reason) *reason = why;
  return why ? RS_ERR_INVALID_ARGUMENT : 0;
}

rs_ssize rs_ws_client_request_headers(char *out, size_t cap, const char *host, const char *path,
                                      const char *key, const char *protocol, bool offer_deflate,
                                      const char *const *headers) {
  for (size_t i = 0; headers && headers[i]; i++)
    if (rs_ws_header_line_check(headers[i], NULL) != 0) return RS_ERR_INVALID_ARGUMENT;
  int n = snprintf(out, cap,
                   "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n",
                   path && *path ? path : "/", host, key);
  if (n >= 0 && (size_t)n < cap && protocol)
    n += snprintf(out + n, cap - (size_t)n, "Sec-WebSocket-Protocol: %s\r\n", protocol);
  if (n >= 0 && (size_t)n < cap && offer_deflate)
    n += snprintf(out + n, cap - (size_t)n,
                  "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n");
  for (size_t i = 0; headers && headers[i] && n >= 0 && (size_t)n < cap; i++) {
    size_t nl, vl;
    const char *v;
    split_header(headers[i], &nl, &v, &vl);
    n += snprintf(out + n, cap - (size_t)n, "%.*s: %.*s\r\n", (int)nl, headers[i], (int)vl, v);
  }
  if (n >= 0 && (size_t)n < cap) n += snprintf(out + n, cap - (size_t)n, "\r\n");
  if (n < 0 || (size_t)n >= cap) return RS_ERR_BUFFER_TOO_SMALL;
  return n;
}

rs_ssize rs_ws_client_request(char *out, size_t cap, const char *host, const char *path,
                              const char *key, const char *protocol, bool offer_deflate) {
  return rs_ws_client_request_headers(out, cap, host, path, key, protocol, offer_deflate, NULL);
}

int rs_ws_client_key_random(char out[25], rs_ws_random_fn random, void *user) {
  unsigned char raw[16];
  int rc = rs__ws_random(random, user, raw, sizeof raw);
  if (rc != 0) return rc;
  EVP_EncodeBlock((unsigned char *)out, raw, 16);
  return 0;
}

int rs_ws_client_key(char out[25]) {
  return rs_ws_client_key_random(out, NULL, NULL);
}

typedef struct response_ctx {
  rs_bytes accept, protocol, extensions;
  bool upgrade, connection;
} response_ctx;

static void response_header(void *ctx, rs_bytes name, rs_bytes value) {
  response_ctx *r = ctx;
  if (name_is(name, "sec-websocket-accept"))
    r->accept = value;
  else if (name_is(name, "sec-websocket-protocol"))
    r->protocol = value;
  else if (name_is(name, "sec-websocket-extensions"))
    r->extensions = value;
  else if (name_is(name, "upgrade"))
    r->upgrade |= rs_ws_header_has_token(value, "websocket");
  else if (name_is(name, "connection"))
    r->connection |= rs_ws_header_has_token(value, "upgrade");
}

rs_ssize rs_ws_client_response_check(const uint8_t *buf, size_t len, const char *key,
                                     const char *protocol, rs_bytes *extensions,
                                     const char **reason) {
  const char *why = NULL;
  rs_ssize hl = head_length(buf, len);
  if (hl <= 0) {
    if (hl < 0 && reason) *reason = "response head too long";
    return hl;
  }
  const uint8_t *end = buf + hl;
  if (hl < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ') {
    if (reason) *reason = "not an HTTP/1.1 response";
    return RS_ERR_MALFORMED;
  }
  const uint8_t *eol = buf;
  while (eol + 1 < end && !(eol[0] == '\r' && eol[1] == '\n')) eol++;
  if (memcmp(buf + 9, "101", 3) != 0) {
    if (reason) *reason = "the server refused the upgrade (status is not 101)";
    return RS_ERR_REJECTED;
  }
  response_ctx r;
  memset(&r, 0, sizeof r);
  if (parse_headers(eol + 2, end, response_header, &r) < 0) {
    if (reason) *reason = "malformed response header";
    return RS_ERR_MALFORMED;
  }
  char accept[29];
  if (rs_ws_accept_key(key, strlen(key), accept) != 0) return RS_ERR_INVALID_ARGUMENT;
  if (!r.upgrade)
    why = "response lacks 'Upgrade: websocket'";
  else if (!r.connection)
    why = "response lacks 'Connection: Upgrade'";
  else if (r.accept.len != 28 || memcmp(r.accept.ptr, accept, 28) != 0)
    why = "wrong Sec-WebSocket-Accept";
  else if (r.extensions.ptr && r.extensions.len && !extensions)
    why = "server chose an extension we did not offer";
  else if (r.protocol.ptr && (!protocol || r.protocol.len != strlen(protocol) ||
                              memcmp(r.protocol.ptr, protocol, r.protocol.len) != 0))
    why = "server chose a subprotocol we did not offer";
  if (reason) *reason = why;
  if (!why && extensions) *extensions = r.extensions;
  return why ? RS_ERR_REJECTED : hl;
}
