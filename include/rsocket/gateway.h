/*
 * rsocket-gateway's JSON client protocol (issue 14, docs/GATEWAY.md), sans-I/O: JSON text messages
 * from browsers parsed into commands, and the gateway's answers (cfm, ind, end, rej, pong)
 * formatted as JSON. No sockets, no clocks; memory only through the rs_mem given at init. See issue
 * 14 for the protocol.
 *
 * The hot path never builds a document: jsmn (strict) finds the token spans, a validator over
 * them checks what jsmn does not (separators, number grammar, literals, escapes and surrogates,
 * control characters, UTF-8, depth), and `data` goes on as the bytes the client sent.
 */
#ifndef RSOCKET_GATEWAY_H
#define RSOCKET_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rsocket/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RS_GW_ROUTE_MAX  255 /* bytes, after unescaping */
#define RS_GW_ID_STR_MAX 255 /* bytes of a string id as sent (escaped form) */
#define RS_GW_N_MAX      2147483647u
#define RS_GW_TOKEN_MAX  8192 /* bytes of a hello's token */

typedef struct rs_gw_limits {
  uint32_t max_depth;  /* nesting of objects and arrays, the message object counting 1 (64) */
  uint32_t max_tokens; /* jsmn tokens per message or payload (16384) */
} rs_gw_limits;

/* Fills the defaults listed above. */
RS_EXPORT void rs_gw_limits_default(rs_gw_limits *l);

/* Holds the token scratch space: one per thread, reused for every message. */
typedef struct rs_gw_parser {
  const rs_mem *mem;
  rs_gw_limits limits;
  void *tokens; /* jsmntok_t[limits.max_tokens] */
} rs_gw_parser;

/* Allocates the token space through `mem` (NULL: the C library); `limits` NULL: the defaults.
 * Errors: RS_ERR_INVALID_ARGUMENT (p NULL, a limit 0, max_tokens over 1<<24), RS_ERR_NOMEM. */
RS_EXPORT int rs_gw_parser_init(rs_gw_parser *p, const rs_mem *mem, const rs_gw_limits *limits);
RS_EXPORT void rs_gw_parser_free(rs_gw_parser *p);

/* One member of the top-level object: the key as written between its quotes, the value's JSON
 * text (a string with its quotes). Views into the input. */
typedef struct rs_gw_member {
  rs_bytes key;
  rs_bytes value;
} rs_gw_member;
typedef bool (*rs_gw_member_cb)(void *ctx, const rs_gw_member *m); /* false: stop, fail */

/*
 * Checks that buf[0..len) is exactly one JSON value (RFC 8259, whitespace around it allowed)
 * within the limits; when the value is an object, `cb` (may be NULL) sees each of its members
 * in order. On failure *why (if not NULL) is a static message.
 * Errors: RS_ERR_MALFORMED (not JSON, over a limit, or `cb` returned false).
 */
RS_EXPORT int rs_gw_json_check(rs_gw_parser *p, const uint8_t *buf, size_t len, rs_gw_member_cb cb,
                               void *ctx, const char **why);

/* Decodes a validated JSON string body (between the quotes) into out[0..cap). Returns the length,
 * or -1 when it does not fit. */
RS_EXPORT rs_ssize rs_gw_unescape(const uint8_t *s, size_t n, uint8_t *out, size_t cap);

/* Whitespace outside strings: rs_gw_json_is_compact says whether validated JSON text has none;
 * rs_gw_json_compact copies it without (out: at least `len` bytes) and returns the new length.
 * What backends receive is compact JSON (the client may have sent it pretty-printed). */
RS_EXPORT bool rs_gw_json_is_compact(const uint8_t *in, size_t len);
RS_EXPORT size_t rs_gw_json_compact(const uint8_t *in, size_t len, uint8_t *out);

typedef enum rs_gw_type {
  RS_GW_REQ = 1,
  RS_GW_SUB,
  RS_GW_MORE,
  RS_GW_UNSUB,
  RS_GW_CHAN,
  RS_GW_SEND,
  RS_GW_DONE,
  RS_GW_FNF,
  RS_GW_PING,
  RS_GW_HELLO, /* {"type":"hello","token":"…"}: authentication (answered with welcome) */
} rs_gw_type;

typedef enum rs_gw_id_kind { RS_GW_ID_NONE = 0, RS_GW_ID_INT, RS_GW_ID_STR } rs_gw_id_kind;

/* A client's id, kept as it was written so that it is echoed back exactly: `text` is the digits
 * of an integer, or the escaped body of a string (validated JSON, without the quotes). The gateway
 * copies `text` when it keeps the id beyond the message buffer. */
typedef struct rs_gw_id {
  rs_gw_id_kind kind;
  int64_t num; /* RS_GW_ID_INT only */
  rs_bytes text;
} rs_gw_id;

typedef struct rs_gw_cmd {
  rs_gw_type type;
  rs_gw_id id;      /* RS_GW_ID_NONE only for an fnf without id */
  size_t route_len; /* req, sub, chan, fnf: the route, unescaped, non-empty */
  uint8_t route[RS_GW_ROUTE_MAX];
  bool has_n;
  uint32_t n;     /* 1..RS_GW_N_MAX when has_n (required for more) */
  rs_bytes data;  /* the JSON text of data as sent; len 0 when absent (means null) */
  rs_bytes token; /* hello: the token, the string's body (no escapes: refused) */
} rs_gw_cmd;

/* Why a message was refused: `code` is "BAD_REQUEST", `message` a static sentence, `id` the
 * message's id when one could be read (for {"type":"rej","id":…}), else RS_GW_ID_NONE. */
typedef struct rs_gw_error {
  const char *code;
  const char *message;
  rs_gw_id id;
} rs_gw_error;

/*
 * Parses one client message. Views in *cmd and err->id point into buf. Unknown fields are
 * ignored; a known field (type, id, route, n, data) twice is an error; fields that the type does
 * not use are ignored.
 * Errors: RS_ERR_MALFORMED (*err says why), RS_ERR_INVALID_ARGUMENT (p, cmd or err NULL).
 */
RS_EXPORT int rs_gw_parse(rs_gw_parser *p, const uint8_t *buf, size_t len, rs_gw_cmd *cmd,
                          rs_gw_error *err);

/* The output: either the caller's fixed buffer (never grown) or one grown through rs_mem. */
typedef struct rs_gw_buf {
  const rs_mem *mem; /* NULL: fixed */
  uint8_t *ptr;
  size_t len, cap;
} rs_gw_buf;

RS_EXPORT void rs_gw_buf_init_fixed(rs_gw_buf *b, uint8_t *ptr, size_t cap);
RS_EXPORT void rs_gw_buf_init(rs_gw_buf *b, const rs_mem *mem); /* mem NULL: the C library */
RS_EXPORT void rs_gw_buf_free(rs_gw_buf *b);                    /* growable only */

/*
 * Formatters: each appends one complete message to `b`, or nothing when it fails.
 * Errors (all of them): RS_ERR_BUFFER_TOO_SMALL (fixed buffer full), RS_ERR_NOMEM.
 */
/* {"type":"cfm"|"ind","id":…,"data":…}: `data` is JSON text already validated (a command's
 * data); empty means null. */
RS_EXPORT int rs_gw_format_data(rs_gw_buf *b, bool ind, const rs_gw_id *id, rs_bytes data);
/* The same for a backend's payload, which may be anything: valid JSON goes in as it is, other
 * UTF-8 as a JSON string, other bytes as "data_b64" (base64), empty as "data":null. */
RS_EXPORT int rs_gw_format_payload(rs_gw_buf *b, rs_gw_parser *p, bool ind, const rs_gw_id *id,
                                   rs_bytes payload);
/* A push: {"type":"ind","route":"…","data":…} without an id, the route escaped (bytes that are
 * not UTF-8 become U+FFFD), the payload embedded as rs_gw_format_payload does. */
RS_EXPORT int rs_gw_format_push(rs_gw_buf *b, rs_gw_parser *p, rs_bytes route, rs_bytes payload);
/* {"type":"welcome","session":"…","user":"…"}, the answer to an accepted hello. */
RS_EXPORT int rs_gw_format_welcome(rs_gw_buf *b, const char *session, rs_bytes user);
RS_EXPORT int rs_gw_format_end(rs_gw_buf *b, const rs_gw_id *id);
RS_EXPORT int rs_gw_format_pong(rs_gw_buf *b, const rs_gw_id *id);
/* {"type":"rej","id":…|null,"error":{"code":…,"message":…}}: code and message are escaped; bytes
 * of the message that are not UTF-8 become U+FFFD. */
RS_EXPORT int rs_gw_format_rej(rs_gw_buf *b, const rs_gw_id *id, const char *code,
                               rs_bytes message);

#ifdef __cplusplus
}
#endif
#endif
