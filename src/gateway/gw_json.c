/* JSON validation over jsmn's tokens, string unescaping: the input side of the gateway's JSON. */
#include <limits.h>
#include <string.h>

#include "rsocket/gateway.h"
#include "rsocket/ws.h"

/* jsmn is header-only; this is the one file that instantiates it. STRICT rejects unquoted
 * strings, PARENT_LINKS makes closing brackets O(depth). */
#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

void rs_gw_limits_default(rs_gw_limits *l) {
  l->max_depth = 64;
  l->max_tokens = 16384;
}

int rs_gw_parser_init(rs_gw_parser *p, const rs_mem *mem, const rs_gw_limits *limits) {
  if (!p) return RS_ERR_INVALID_ARGUMENT;
  memset(p, 0, sizeof *p);
  if (limits)
    p->limits = *limits;
  else
    rs_gw_limits_default(&p->limits);
  if (!p->limits.max_depth || !p->limits.max_tokens || p->limits.max_tokens > (1u << 24))
    return RS_ERR_INVALID_ARGUMENT;
  p->mem = mem ? mem : rs_mem_default();
  p->tokens = p->mem->malloc(sizeof(jsmntok_t) * p->limits.max_tokens, p->mem->user);
  return p->tokens ? 0 : RS_ERR_NOMEM;
}

void rs_gw_parser_free(rs_gw_parser *p) {
  if (p && p->mem) p->mem->free(p->tokens, p->mem->user);
  if (p) p->tokens = NULL;
}

static bool is_ws(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}
static bool is_digit(uint8_t c) {
  return c >= '0' && c <= '9';
}

static size_t digits(const uint8_t *p, size_t i, size_t n) {
  while (i < n && is_digit(p[i])) i++;
  return i;
}

/* RFC 8259 section 6: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and nothing else. */
static bool number_ok(const uint8_t *p, size_t n) {
  size_t i = (n && p[0] == '-') ? 1 : 0;
  if (i >= n || !is_digit(p[i])) return false;
  i = p[i] == '0' ? i + 1 : digits(p, i, n);
  if (i < n && p[i] == '.') {
    size_t d = ++i;
    if ((i = digits(p, i, n)) == d) return false;
  }
  if (i < n && (p[i] == 'e' || p[i] == 'E')) {
    i++;
    if (i < n && (p[i] == '+' || p[i] == '-')) i++;
    size_t d = i;
    if ((i = digits(p, i, n)) == d) return false;
  }
  return i == n;
}

static bool literal_is(const uint8_t *p, size_t n, const char *lit) {
  return n == strlen(lit) && memcmp(p, lit, n) == 0;
}

static bool primitive_ok(const uint8_t *p, size_t n) {
  return number_ok(p, n) || literal_is(p, n, "true") || literal_is(p, n, "false") ||
         literal_is(p, n, "null");
}

static int hex4(const uint8_t *p, size_t i, size_t n) {
  if (i + 4 > n) return -1;
  int v = 0;
  for (size_t k = i; k < i + 4; k++) {
    uint8_t c = p[k];
    uint8_t lc = c | 0x20; /* ASCII letters to lower case */
    int d = is_digit(c) ? c - '0' : (lc >= 'a' && lc <= 'f') ? lc - 'a' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/* Reads the escape at p[i] == '\\'; returns the index after it and the code point in *cp (a
 * surrogate pair combined), or 0 when the escape is invalid (a lone surrogate included). */
static size_t escape(const uint8_t *p, size_t i, size_t n, uint32_t *cp) {
  if (i + 1 >= n) return 0;
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  const char *e = memchr(from, p[i + 1], sizeof from - 1);
  if (e) {
    *cp = (uint8_t)to[e - from];
    return i + 2;
  }
  int hi = p[i + 1] == 'u' ? hex4(p, i + 2, n) : -1;
  if (hi < 0 || (hi >= 0xDC00 && hi <= 0xDFFF)) return 0;
  *cp = (uint32_t)hi;
  if (hi < 0xD800 || hi > 0xDBFF) return i + 6;
  /* A high surrogate is JSON only as the first half of a pair (jansson agrees). */
  int lo = (i + 7 < n && p[i + 6] == '\\' && p[i + 7] == 'u') ? hex4(p, i + 8, n) : -1;
  if (lo < 0xDC00 || lo > 0xDFFF) return 0;
  *cp = 0x10000 + (((uint32_t)hi - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
  return i + 12;
}

/* A string body: no control characters, valid escapes. UTF-8 is checked once for the input. */
static bool string_ok(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    if (p[i] < 0x20) return false;
    i = p[i] == '\\' ? escape(p, i, n, &cp) : i + 1;
    if (!i) return false;
  }
  return true;
}

typedef struct walk {
  const uint8_t *s;
  const jsmntok_t *tok;
  int count, next;
  uint32_t max_depth;
  const char *why;
  rs_gw_member_cb cb;
  void *ctx;
} walk;

/* Bytes [from, to) hold whitespace around exactly one `sep`, or whitespace only when sep is 0:
 * the text between tokens that jsmn skips without looking. */
static bool gap(const uint8_t *s, long from, long to, uint8_t sep) {
  if (from > to) return false;
  while (from < to && is_ws(s[from])) from++;
  if (sep) {
    if (from == to || s[from] != sep) return false;
    from++;
    while (from < to && is_ws(s[from])) from++;
  }
  return from == to;
}

static long raw_start(const jsmntok_t *t) {
  return t->type == JSMN_STRING ? t->start - 1 : t->start;
}

static long fail(walk *w, const char *why) {
  if (!w->why) w->why = why;
  return -1;
}

static long value(walk *w, long cur, uint8_t sep, uint32_t depth);

/* A string token (a key when `key`): its text, and no children but a key's one value. */
static long string_tok(walk *w, long cur, uint8_t sep, bool key) {
  if (w->next >= w->count) return fail(w, "malformed JSON");
  const jsmntok_t *t = &w->tok[w->next++];
  if (t->type != JSMN_STRING || t->size != (key ? 1 : 0) || !gap(w->s, cur, t->start - 1, sep))
    return fail(w, "malformed JSON");
  if (!string_ok(w->s + t->start, (size_t)(t->end - t->start)))
    return fail(w, "invalid JSON string (control character, escape or lone surrogate)");
  return t->end + 1;
}

static long member(walk *w, long cur, uint8_t sep, uint32_t depth, bool root) {
  const jsmntok_t *k = &w->tok[w->next];
  if ((cur = string_tok(w, cur, sep, true)) < 0) return -1;
  if (w->next >= w->count) return fail(w, "malformed JSON");
  long vstart = raw_start(&w->tok[w->next]);
  if ((cur = value(w, cur, ':', depth)) < 0 || !root || !w->cb) return cur;
  rs_gw_member m = {{w->s + k->start, (size_t)(k->end - k->start)},
                    {w->s + vstart, (size_t)(cur - vstart)}};
  return w->cb(w->ctx, &m) ? cur : fail(w, NULL);
}

static long container(walk *w, const jsmntok_t *t, uint32_t depth) {
  bool root = t == w->tok;
  long cur = t->start + 1;
  for (int i = 0; i < t->size && cur >= 0; i++) {
    uint8_t sep = i ? ',' : 0;
    cur = t->type == JSMN_OBJECT ? member(w, cur, sep, depth, root) : value(w, cur, sep, depth);
  }
  if (cur < 0) return -1;
  return gap(w->s, cur, t->end - 1, 0) ? t->end : fail(w, "malformed JSON");
}

static long value(walk *w, long cur, uint8_t sep, uint32_t depth) {
  if (w->next >= w->count) return fail(w, "malformed JSON");
  const jsmntok_t *t = &w->tok[w->next];
  if (t->type == JSMN_STRING) return string_tok(w, cur, sep, false);
  w->next++;
  if (!gap(w->s, cur, t->start, sep)) return fail(w, "malformed JSON");
  if (t->type == JSMN_PRIMITIVE) {
    if (t->size || !primitive_ok(w->s + t->start, (size_t)(t->end - t->start)))
      return fail(w, "invalid JSON number or literal");
    return t->end;
  }
  if (depth >= w->max_depth) return fail(w, "JSON nested too deep");
  return container(w, t, depth + 1);
}

/* jsmn in strict mode wants a delimiter after a primitive, so a bare top-level number or literal
 * (valid JSON since RFC 7159) never reaches it: it is checked here. */
static int check_tokens(rs_gw_parser *p, const uint8_t *buf, size_t len, walk *w) {
  jsmn_parser jp;
  jsmn_init(&jp);
  int r = jsmn_parse(&jp, (const char *)buf, len, p->tokens, p->limits.max_tokens);
  if (r == JSMN_ERROR_NOMEM) return fail(w, "too many JSON tokens"), RS_ERR_MALFORMED;
  if (r <= 0) return fail(w, "malformed JSON"), RS_ERR_MALFORMED;
  w->count = r;
  long end = value(w, 0, 0, 0);
  /* jsmn stops at a NUL byte: the trailing gap check refuses one. */
  if (end < 0 || !gap(buf, end, (long)len, 0) || w->next != r)
    return fail(w, "malformed JSON"), RS_ERR_MALFORMED;
  return 0;
}

int rs_gw_json_check(rs_gw_parser *p, const uint8_t *buf, size_t len, rs_gw_member_cb cb, void *ctx,
                     const char **why) {
  walk w = {buf, p->tokens, 0, 0, p->limits.max_depth, NULL, cb, ctx};
  size_t a = 0, b = len;
  while (a < b && is_ws(buf[a])) a++;
  while (b > a && is_ws(buf[b - 1])) b--;
  int rc = RS_ERR_MALFORMED;
  if (len > INT_MAX)
    fail(&w, "message too long");
  else if (a == b)
    fail(&w, "empty message");
  else if (!rs_ws_utf8_valid(buf, len))
    fail(&w, "invalid UTF-8");
  else if (buf[a] != '{' && buf[a] != '[' && buf[a] != '"')
    rc = primitive_ok(buf + a, b - a) ? 0 : (fail(&w, "malformed JSON"), RS_ERR_MALFORMED);
  else
    rc = check_tokens(p, buf, len, &w);
  if (why) *why = rc ? (w.why ? w.why : "malformed JSON") : NULL;
  return rc;
}

static size_t put_utf8(uint8_t *o, uint32_t cp) {
  if (cp < 0x80) return o[0] = (uint8_t)cp, 1;
  if (cp < 0x800) return o[0] = (uint8_t)(0xC0 | cp >> 6), o[1] = (uint8_t)(0x80 | (cp & 63)), 2;
  if (cp < 0x10000) {
    o[0] = (uint8_t)(0xE0 | cp >> 12);
    o[1] = (uint8_t)(0x80 | ((cp >> 6) & 63));
    o[2] = (uint8_t)(0x80 | (cp & 63));
    return 3;
  }
  o[0] = (uint8_t)(0xF0 | cp >> 18);
  o[1] = (uint8_t)(0x80 | ((cp >> 12) & 63));
  o[2] = (uint8_t)(0x80 | ((cp >> 6) & 63));
  o[3] = (uint8_t)(0x80 | (cp & 63));
  return 4;
}

rs_ssize rs_gw_unescape(const uint8_t *s, size_t n, uint8_t *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    uint8_t tmp[4];
    uint32_t cp = s[i];
    size_t next = s[i] == '\\' ? escape(s, i, n, &cp) : i + 1;
    if (!next) return -1; /* not validated input: refuse rather than guess */
    size_t k = s[i] == '\\' ? put_utf8(tmp, cp) : (tmp[0] = s[i], 1);
    if (o + k > cap) return -1;
    memcpy(out + o, tmp, k);
    o += k;
    i = next;
  }
  return (rs_ssize)o;
}

/* Copies `in` without whitespace outside strings into `out`, or with `out` NULL stops at the
 * first such whitespace; returns the bytes kept, or SIZE_MAX when it stopped. */
static size_t compact(const uint8_t *in, size_t len, uint8_t *out) {
  size_t o = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < len; i++) {
    uint8_t c = in[i];
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (!out) return SIZE_MAX;
      continue;
    } else if (c == '"') {
      in_string = true;
    }
    if (out) out[o] = c;
    o++;
  }
  return o;
}

size_t rs_gw_json_compact(const uint8_t *in, size_t len, uint8_t *out) {
  return compact(in, len, out);
}

bool rs_gw_json_is_compact(const uint8_t *in, size_t len) {
  return compact(in, len, NULL) != SIZE_MAX;
}
