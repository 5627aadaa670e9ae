/* Client messages into commands, and the gateway's answers into JSON (issue 14's protocol). */
#include <string.h>

#include "rsocket/gateway.h"
#include "rsocket/ws.h"

enum { F_TYPE, F_ID, F_ROUTE, F_N, F_DATA, F_TOKEN, F_COUNT };
static const char *const field_names[F_COUNT] = {"type", "id", "route", "n", "data", "token"};

typedef struct fields {
  rs_bytes v[F_COUNT]; /* JSON text of each known field; ptr NULL when absent */
  const char *why;
  int dup; /* the field seen twice, when why says so */
} fields;

/* Keys are compared unescaped ("t\u0079pe" is "type"): a key that merely looks different must
 * not let a second "type" through. */
static bool on_member(void *ctx, const rs_gw_member *m) {
  fields *f = ctx;
  uint8_t key[8];
  rs_ssize n = rs_gw_unescape(m->key.ptr, m->key.len, key, sizeof key);
  for (int i = 0; n > 0 && i < F_COUNT; i++) {
    if ((size_t)n != strlen(field_names[i]) || memcmp(key, field_names[i], (size_t)n)) continue;
    if (f->v[i].ptr) return f->dup = i, f->why = "duplicate field", false;
    f->v[i] = m->value;
  }
  return true;
}

/* Digits only (an optional '-' when `neg`), into *out; false on overflow or any other form. The
 * text is a JSON number already. */
static bool integer(rs_bytes t, bool neg, uint64_t max, uint64_t *out) {
  size_t i = neg && t.len && t.ptr[0] == '-' ? 1 : 0;
  uint64_t v = 0;
  if (i == t.len) return false;
  for (; i < t.len; i++) {
    if (t.ptr[i] < '0' || t.ptr[i] > '9') return false;
    unsigned d = t.ptr[i] - '0';
    if (v > (max - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

static const char *parse_id(rs_bytes t, rs_gw_id *id) {
  if (t.ptr[0] == '"') {
    if (t.len - 2 > RS_GW_ID_STR_MAX) return "bad id: a string id is at most 255 bytes";
    *id = (rs_gw_id){RS_GW_ID_STR, 0, {t.ptr + 1, t.len - 2}};
    return NULL;
  }
  bool neg = t.ptr[0] == '-';
  uint64_t v;
  /* INT64_MIN's magnitude is one more than INT64_MAX's. */
  if (!integer(t, true, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &v))
    return "bad id: an integer within 64 bits (no fraction, no exponent) or a string";
  *id = (rs_gw_id){RS_GW_ID_INT, neg ? (int64_t)(0 - v) : (int64_t)v, t};
  return NULL;
}

/* What each type carries: need (bit set: required) and use (bit set: read). */
#define B(f) (1u << (f))
static const struct {
  const char *name;
  unsigned need, use;
} types[] = {
    [RS_GW_REQ] = {"req", B(F_ID) | B(F_ROUTE), B(F_DATA)},
    [RS_GW_SUB] = {"sub", B(F_ID) | B(F_ROUTE), B(F_DATA) | B(F_N)},
    [RS_GW_MORE] = {"more", B(F_ID) | B(F_N), 0},
    [RS_GW_UNSUB] = {"unsub", B(F_ID), 0},
    [RS_GW_CHAN] = {"chan", B(F_ID) | B(F_ROUTE), B(F_DATA) | B(F_N)},
    [RS_GW_SEND] = {"send", B(F_ID), B(F_DATA)},
    [RS_GW_DONE] = {"done", B(F_ID), 0},
    [RS_GW_FNF] = {"fnf", B(F_ROUTE), B(F_DATA) | B(F_ID)},
    [RS_GW_PING] = {"ping", B(F_ID), 0},
    [RS_GW_HELLO] = {"hello", B(F_TOKEN), B(F_ID)},
};

static const char *parse_type(rs_bytes t, rs_gw_type *type) {
  uint8_t name[8];
  rs_ssize n = t.ptr[0] == '"' ? rs_gw_unescape(t.ptr + 1, t.len - 2, name, sizeof name) : -2;
  if (n == -2) return "bad type: not a string";
  for (int i = RS_GW_REQ; n > 0 && i <= RS_GW_HELLO; i++) {
    if ((size_t)n == strlen(types[i].name) && !memcmp(name, types[i].name, (size_t)n)) {
      *type = (rs_gw_type)i;
      return NULL;
    }
  }
  return "unknown type";
}

static const char *parse_route(rs_bytes t, rs_gw_cmd *cmd) {
  if (t.ptr[0] != '"') return "bad route: not a string";
  rs_ssize n = rs_gw_unescape(t.ptr + 1, t.len - 2, cmd->route, sizeof cmd->route);
  if (n < 0) return "bad route: longer than 255 bytes";
  if (n == 0) return "bad route: empty";
  cmd->route_len = (size_t)n;
  return NULL;
}

static const char *parse_fields(const fields *f, rs_gw_cmd *cmd) {
  const char *why;
  if (!f->v[F_TYPE].ptr) return "missing field: type";
  if ((why = parse_type(f->v[F_TYPE], &cmd->type))) return why;
  unsigned need = types[cmd->type].need, use = need | types[cmd->type].use;
  static const char *const missing[F_COUNT] = {
      NULL, "missing field: id",   "missing field: route", "missing field: n",
      NULL, "missing field: token"};
  for (int i = 0; i < F_COUNT; i++)
    if ((need & B(i)) && !f->v[i].ptr) return missing[i];
  if ((use & B(F_ROUTE)) && (why = parse_route(f->v[F_ROUTE], cmd))) return why;
  if ((use & B(F_N)) && f->v[F_N].ptr) {
    uint64_t n;
    if (!integer(f->v[F_N], false, RS_GW_N_MAX, &n) || n == 0)
      return "bad n: an integer from 1 to 2147483647";
    cmd->has_n = true;
    cmd->n = (uint32_t)n;
  }
  if (use & B(F_DATA)) cmd->data = f->v[F_DATA];
  if (use & B(F_TOKEN)) {
    rs_bytes t = f->v[F_TOKEN];
    /* A JWT is base64url and dots: no escape is ever needed, so none is accepted. */
    if (t.ptr[0] != '"' || t.len < 3 || memchr(t.ptr + 1, '\\', t.len - 2))
      return "bad token: a non-empty string without escapes";
    if (t.len - 2 > RS_GW_TOKEN_MAX) return "bad token: longer than 8192 bytes";
    cmd->token = (rs_bytes){t.ptr + 1, t.len - 2};
  }
  if (!(use & B(F_ID))) cmd->id = (rs_gw_id){0};
  return NULL;
}

int rs_gw_parse(rs_gw_parser *p, const uint8_t *buf, size_t len, rs_gw_cmd *cmd, rs_gw_error *err) {
  if (!p || !cmd || !err) return RS_ERR_INVALID_ARGUMENT;
  memset(cmd, 0, sizeof *cmd);
  *err = (rs_gw_error){"BAD_REQUEST", NULL, {0}};
  fields f = {0};
  const char *why = NULL;
  if (rs_gw_json_check(p, buf, len, on_member, &f, &why)) {
    err->message = f.why ? f.why : why;
    /* A duplicate stops the walk after the members before it were checked: a single id among
     * them is readable and names the request. */
    if (f.why && f.dup != F_ID && f.v[F_ID].ptr) (void)parse_id(f.v[F_ID], &err->id);
    return RS_ERR_MALFORMED;
  }
  size_t a = 0;
  while (buf[a] == ' ' || buf[a] == '\t' || buf[a] == '\n' || buf[a] == '\r') a++;
  if (buf[a] != '{') return err->message = "not a JSON object", RS_ERR_MALFORMED;
  /* The id first: every later refusal can then name the request it refuses. */
  if (f.v[F_ID].ptr && (why = parse_id(f.v[F_ID], &cmd->id)))
    return err->message = why, RS_ERR_MALFORMED;
  err->id = cmd->id;
  if ((why = parse_fields(&f, cmd))) return err->message = why, RS_ERR_MALFORMED;
  return 0;
}

/* Output */

void rs_gw_buf_init_fixed(rs_gw_buf *b, uint8_t *ptr, size_t cap) {
  *b = (rs_gw_buf){NULL, ptr, 0, cap};
}

void rs_gw_buf_init(rs_gw_buf *b, const rs_mem *mem) {
  *b = (rs_gw_buf){mem ? mem : rs_mem_default(), NULL, 0, 0};
}

void rs_gw_buf_free(rs_gw_buf *b) {
  if (b->mem) b->mem->free(b->ptr, b->mem->user);
  b->ptr = NULL;
  b->len = b->cap = 0;
}

static int reserve(rs_gw_buf *b, size_t n) {
  if (n <= b->cap - b->len) return 0;
  if (!b->mem) return RS_ERR_BUFFER_TOO_SMALL;
  size_t cap = b->cap ? b->cap : 256;
  while (cap - b->len < n) {
    if (cap > SIZE_MAX / 2) return RS_ERR_NOMEM;
    cap *= 2;
  }
  uint8_t *p = b->mem->realloc(b->ptr, cap, b->mem->user);
  if (!p) return RS_ERR_NOMEM;
  b->ptr = p;
  b->cap = cap;
  return 0;
}

static int put(rs_gw_buf *b, const void *p, size_t n) {
  int rc = reserve(b, n);
  if (rc) return rc;
  if (n) memcpy(b->ptr + b->len, p, n);
  b->len += n;
  return 0;
}

static int puts_(rs_gw_buf *b, const char *s) {
  return put(b, s, strlen(s));
}

/* A string's body escaped as JSON; bytes outside valid UTF-8 become U+FFFD, so that a backend's
 * message can never make the output invalid. */
static int put_escaped(rs_gw_buf *b, const uint8_t *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  bool utf8 = rs_ws_utf8_valid(s, n);
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    uint8_t c = s[i];
    char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
    if (c == '"' || c == '\\')
      e[1] = (char)c, rc = put(b, e, 2);
    else if (c < 0x20 || c == 0x7f)
      rc = put(b, e, 6);
    else if (c >= 0x80 && !utf8)
      rc = puts_(b, "\\ufffd");
    else
      rc = put(b, &c, 1);
  }
  return rc;
}

static int put_id(rs_gw_buf *b, const rs_gw_id *id) {
  if (!id || id->kind == RS_GW_ID_NONE) return puts_(b, "null");
  if (id->kind == RS_GW_ID_INT) return put(b, id->text.ptr, id->text.len);
  int rc = puts_(b, "\"");
  if (!rc) rc = put(b, id->text.ptr, id->text.len);
  return rc ? rc : puts_(b, "\"");
}

static int put_base64(rs_gw_buf *b, const uint8_t *s, size_t n) {
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i += 3) {
    uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) |
                 (i + 2 < n ? s[i + 2] : 0);
    char q[4] = {abc[v >> 18], abc[(v >> 12) & 63], i + 1 < n ? abc[(v >> 6) & 63] : '=',
                 i + 2 < n ? abc[v & 63] : '='};
    rc = put(b, q, 4);
  }
  return rc;
}

/* Runs the parts of one message; on failure the buffer is back to where it was. */
static int finish(rs_gw_buf *b, size_t mark, int rc) {
  if (rc) b->len = mark;
  return rc;
}

static int head(rs_gw_buf *b, const char *type, const rs_gw_id *id) {
  int rc = puts_(b, "{\"type\":\"");
  if (!rc) rc = puts_(b, type);
  if (!rc) rc = puts_(b, "\",\"id\":");
  return rc ? rc : put_id(b, id);
}

int rs_gw_format_data(rs_gw_buf *b, bool ind, const rs_gw_id *id, rs_bytes data) {
  size_t mark = b->len;
  int rc = head(b, ind ? "ind" : "cfm", id);
  if (!rc) rc = puts_(b, ",\"data\":");
  if (!rc) rc = data.len ? put(b, data.ptr, data.len) : puts_(b, "null");
  return finish(b, mark, rc ? rc : puts_(b, "}"));
}

/* The rest of a message carrying a backend's payload: `,"data":…}` or `,"data_b64":"…"}`. */
static int put_payload(rs_gw_buf *b, rs_gw_parser *p, rs_bytes payload) {
  if (!payload.len) return puts_(b, ",\"data\":null}");
  if (!rs_gw_json_check(p, payload.ptr, payload.len, NULL, NULL, NULL)) {
    int rc = puts_(b, ",\"data\":");
    if (!rc) rc = put(b, payload.ptr, payload.len);
    return rc ? rc : puts_(b, "}");
  }
  bool text = rs_ws_utf8_valid(payload.ptr, payload.len);
  int rc = puts_(b, text ? ",\"data\":\"" : ",\"data_b64\":\"");
  if (!rc)
    rc = text ? put_escaped(b, payload.ptr, payload.len) : put_base64(b, payload.ptr, payload.len);
  return rc ? rc : puts_(b, "\"}");
}

int rs_gw_format_payload(rs_gw_buf *b, rs_gw_parser *p, bool ind, const rs_gw_id *id,
                         rs_bytes payload) {
  size_t mark = b->len;
  int rc = head(b, ind ? "ind" : "cfm", id);
  return finish(b, mark, rc ? rc : put_payload(b, p, payload));
}

int rs_gw_format_push(rs_gw_buf *b, rs_gw_parser *p, rs_bytes route, rs_bytes payload) {
  size_t mark = b->len;
  int rc = puts_(b, "{\"type\":\"ind\",\"route\":\"");
  if (!rc) rc = put_escaped(b, route.ptr, route.len);
  if (!rc) rc = puts_(b, "\"");
  return finish(b, mark, rc ? rc : put_payload(b, p, payload));
}

int rs_gw_format_welcome(rs_gw_buf *b, const char *session, rs_bytes user) {
  size_t mark = b->len;
  int rc = puts_(b, "{\"type\":\"welcome\",\"session\":\"");
  if (!rc) rc = put_escaped(b, (const uint8_t *)session, strlen(session));
  if (!rc) rc = puts_(b, "\",\"user\":\"");
  if (!rc) rc = put_escaped(b, user.ptr, user.len);
  return finish(b, mark, rc ? rc : puts_(b, "\"}"));
}

int rs_gw_format_end(rs_gw_buf *b, const rs_gw_id *id) {
  size_t mark = b->len;
  int rc = head(b, "end", id);
  return finish(b, mark, rc ? rc : puts_(b, "}"));
}

int rs_gw_format_pong(rs_gw_buf *b, const rs_gw_id *id) {
  size_t mark = b->len;
  int rc = head(b, "pong", id);
  return finish(b, mark, rc ? rc : puts_(b, "}"));
}

int rs_gw_format_rej(rs_gw_buf *b, const rs_gw_id *id, const char *code, rs_bytes message) {
  size_t mark = b->len;
  int rc = head(b, "rej", id);
  if (!rc) rc = puts_(b, ",\"error\":{\"code\":\"");
  if (!rc) rc = put_escaped(b, (const uint8_t *)code, strlen(code));
  if (!rc) rc = puts_(b, "\",\"message\":\"");
  if (!rc) rc = put_escaped(b, message.ptr, message.len);
  return finish(b, mark, rc ? rc : puts_(b, "\"}}"));
}
