/*
 * rsocket-c: sans-I/O WebSocket (RFC 6455) building blocks: the frame header codec, masking,
 * incremental UTF-8 validation, close codes, and the HTTP/1.1 upgrade handshake for servers and
 * clients. No sockets, no clocks: bytes in, bytes out.
 */
#ifndef RSOCKET_WS_H
#define RSOCKET_WS_H

#include "rsocket/common.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
  RS_WS_OP_CONTINUATION = 0x0,
  RS_WS_OP_TEXT = 0x1,
  RS_WS_OP_BINARY = 0x2,
  RS_WS_OP_CLOSE = 0x8,
  RS_WS_OP_PING = 0x9,
  RS_WS_OP_PONG = 0xA,
};

/* Close codes we send or check. */
enum {
  RS_WS_CLOSE_NORMAL = 1000,
  RS_WS_CLOSE_GOING_AWAY = 1001,
  RS_WS_CLOSE_PROTOCOL = 1002,
  RS_WS_CLOSE_UNSUPPORTED = 1003,
  RS_WS_CLOSE_NO_STATUS = 1005, /* never sent: "no code in the close frame" */
  RS_WS_CLOSE_ABNORMAL = 1006,  /* never sent: "closed without a close frame" */
  RS_WS_CLOSE_INVALID_DATA = 1007,
  RS_WS_CLOSE_POLICY = 1008,
  RS_WS_CLOSE_TOO_BIG = 1009,
  RS_WS_CLOSE_EXTENSION = 1010,
  RS_WS_CLOSE_INTERNAL = 1011,
  RS_WS_CLOSE_TRY_AGAIN = 1013,
};

#define RS_WS_MAX_HEADER  14u  /* 2 + 8 (length) + 4 (mask) */
#define RS_WS_MAX_CONTROL 125u /* control frame payload limit */

/* A parsed frame header. */
typedef struct rs_ws_frame_header {
  bool fin;
  bool rsv1, rsv2, rsv3;
  uint8_t opcode;
  bool masked;
  uint8_t mask[4];
  uint64_t payload_len;
  size_t header_len; /* bytes of header (2..14) */
} rs_ws_frame_header;

/*
 * Parses the frame header at the start of `buf`. Returns the header length (> 0) with *h filled,
 * 0 when more bytes are needed, or RS_ERR_MALFORMED when the 64-bit length has its top bit set.
 * Semantic checks (masking direction, reserved bits, opcodes, control frame rules) are the
 * caller's: see rs_ws_frame_header_check.
 */
RS_EXPORT rs_ssize rs_ws_frame_header_parse(rs_ws_frame_header *h, const uint8_t *buf, size_t len);

/*
 * The protocol checks for a received header. `from_client` says who sent it (clients must mask,
 * servers must not); `rsv1_allowed` when permessage-deflate was negotiated (and then only on the
 * first frame of a data message: the caller passes `in_message`, true when a fragmented data
 * message is open). Returns 0 or the close code to fail with (1002), and a static reason.
 */
RS_EXPORT int rs_ws_frame_header_check(const rs_ws_frame_header *h, bool from_client,
                                       bool rsv1_allowed, bool in_message, const char **reason);

/*
 * Writes a frame header for a payload of `len` bytes into `out` (at least RS_WS_MAX_HEADER
 * bytes) using the shortest length form. `mask` (4 bytes) is written when not NULL. Returns the
 * header length.
 */
RS_EXPORT size_t rs_ws_frame_header_write(uint8_t *out, bool fin, uint8_t opcode, bool rsv1,
                                          const uint8_t *mask, uint64_t len);

/* The header length rs_ws_frame_header_write would use. */
RS_EXPORT size_t rs_ws_frame_header_size(bool masked, uint64_t len);

/*
 * XORs `len` bytes with the masking key, 8 bytes at a time. `offset` is the position of
 * data[0] within the frame payload (the key rotates with it), so a payload can be unmasked in
 * pieces as it arrives. Masking and unmasking are the same operation.
 */
RS_EXPORT void rs_ws_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset);

/* Incremental UTF-8 validation (fail fast: invalid as soon as no continuation could be valid). */
typedef struct rs_ws_utf8 {
  uint32_t state;
} rs_ws_utf8;

#define RS_WS_UTF8_ACCEPT 0u /* at a code point boundary */
#define RS_WS_UTF8_REJECT 1u /* invalid, for good */

static inline void rs_ws_utf8_init(rs_ws_utf8 *u) {
  u->state = RS_WS_UTF8_ACCEPT;
}
/* Feeds bytes; returns the new state: RS_WS_UTF8_ACCEPT, RS_WS_UTF8_REJECT or another value
 * meaning "inside a code point". Once REJECT, it stays REJECT. */
RS_EXPORT uint32_t rs_ws_utf8_feed(rs_ws_utf8 *u, const uint8_t *p, size_t n);
/* Validates a whole buffer. */
RS_EXPORT bool rs_ws_utf8_valid(const uint8_t *p, size_t n);

/* True for close codes a peer may send: 1000-1003, 1007-1014, 3000-4999. */
RS_EXPORT bool rs_ws_close_code_valid(unsigned code);

/* ---- Handshake ---- */

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)), 28 characters + NUL in `out`. */
RS_EXPORT int rs_ws_accept_key(const char *key, size_t key_len, char out[29]);

#define RS_WS_MAX_HANDSHAKE 16384u /* request or response head, bytes */
#define RS_WS_MAX_HEADERS   64u

/* What the server needs from an upgrade request. Views point into the caller's buffer. */
typedef struct rs_ws_request {
  rs_bytes method, path, host, key, version, origin, protocols, extensions;
  bool upgrade_websocket;  /* Upgrade has the "websocket" token */
  bool connection_upgrade; /* Connection has the "upgrade" token */
  int http_minor;          /* HTTP/1.x */
} rs_ws_request;

/*
 * Parses an HTTP/1.1 request head in buf[0..len). Returns the head's length (through the empty
 * line) with *req filled; 0 when incomplete (more bytes needed; the caller must give up beyond
 * RS_WS_MAX_HANDSHAKE); RS_ERR_MALFORMED for a broken request line or header, or too many
 * headers, or a head longer than RS_WS_MAX_HANDSHAKE. Bytes after the head are not touched.
 */
RS_EXPORT rs_ssize rs_ws_request_parse(rs_ws_request *req, const uint8_t *buf, size_t len);

/*
 * Checks an upgrade request. Returns 0 if it is a valid WebSocket upgrade, else the HTTP status
 * to answer (400, or 426 for a version other than 13, or 405 for a method other than GET) with a
 * static reason.
 */
RS_EXPORT int rs_ws_request_check(const rs_ws_request *req, const char **reason);

/*
 * True when `list` (a comma-separated header value) contains `token`, case-insensitively.
 */
RS_EXPORT bool rs_ws_header_has_token(rs_bytes list, const char *token);

/*
 * Writes the 101 response for `req` (its key), with `protocol` (NULL: none) into out. Returns the
 * length or RS_ERR_BUFFER_TOO_SMALL.
 */
RS_EXPORT rs_ssize rs_ws_response_101(char *out, size_t cap, const rs_ws_request *req,
                                      const char *protocol, const char *extensions);

/* Writes an error response (status 400, 403, 405, 426…) with a plain-text body `reason`. */
RS_EXPORT rs_ssize rs_ws_response_error(char *out, size_t cap, int status, const char *reason);

/*
 * Client: writes an upgrade request for `host` (with port when not default) and `path`, with
 * `key` (24 base64 characters, e.g. from rs_ws_client_key), an optional subprotocol, and an offer
 * of permessage-deflate when `offer_deflate`.
 */
RS_EXPORT rs_ssize rs_ws_client_request(char *out, size_t cap, const char *host, const char *path,
                                        const char *key, const char *protocol, bool offer_deflate);

/*
 * Checks one extra header line for rs_ws_client_request_headers: "Name: value", where the name is
 * an HTTP token and the value holds no control character but tab (so no CR or LF can smuggle
 * anything into the request). Headers the handshake writes itself (Host, Upgrade, Connection,
 * Sec-WebSocket-Key, -Version, -Extensions, -Protocol) and message-body headers (Content-Length,
 * Transfer-Encoding) are refused. Returns 0, or RS_ERR_INVALID_ARGUMENT with a static reason.
 */
RS_EXPORT int rs_ws_header_line_check(const char *line, const char **reason);

/*
 * rs_ws_client_request with extra header lines: `headers` is a NULL-terminated array of
 * "Name: value" strings (NULL: none), each written after the handshake's own headers as
 * "Name: value" with the blanks around the value trimmed. Returns the length,
 * RS_ERR_INVALID_ARGUMENT (a line fails rs_ws_header_line_check) or RS_ERR_BUFFER_TOO_SMALL.
 */
RS_EXPORT rs_ssize rs_ws_client_request_headers(char *out, size_t cap, const char *host,
                                                const char *path, const char *key,
                                                const char *protocol, bool offer_deflate,
                                                const char *const *headers);

/*
 * A source of random bytes: fills buf[0..len) and returns 0, or non-zero when it cannot (the call
 * that asked then fails with RS_ERR_INTERNAL). RFC 6455 wants masking keys and Sec-WebSocket-Key
 * unpredictable: replace the default source (OpenSSL's CSPRNG, RAND_bytes) only with another
 * secure one, or with a fixed one where output must be reproducible (tests, fuzzing, replay).
 */
typedef int (*rs_ws_random_fn)(uint8_t *buf, size_t len, void *user);

/* Client: a fresh random key (24 base64 characters + NUL) from 16 bytes of `random` (NULL: the
 * default source), called once. 0 or RS_ERR_INTERNAL (the source failed). */
RS_EXPORT int rs_ws_client_key_random(char out[25], rs_ws_random_fn random, void *user);

/* rs_ws_client_key_random with the default source. 0 or RS_ERR_INTERNAL. */
RS_EXPORT int rs_ws_client_key(char out[25]);

/*
 * Client: checks the server's response head in buf[0..len). Returns the head's length when it is
 * a valid 101 for `key` (and any subprotocol is the one offered), 0 when incomplete, or
 * (`extensions`: where to return the Sec-WebSocket-Extensions value when we offered one; NULL
 * refuses any extension)
 * RS_ERR_REJECTED (with a reason: not 101, bad accept value, unexpected extension or protocol)
 * or RS_ERR_MALFORMED.
 */
RS_EXPORT rs_ssize rs_ws_client_response_check(const uint8_t *buf, size_t len, const char *key,
                                               const char *protocol, rs_bytes *extensions,
                                               const char **reason);

/* ---- permessage-deflate (RFC 7692) ---- */

typedef struct rs_ws_deflate {
  bool enabled;
  bool server_no_context_takeover;
  bool client_no_context_takeover;
  int server_max_window_bits; /* 9..15 (15 when not negotiated) */
  int client_max_window_bits; /* 8..15 */
} rs_ws_deflate;

/*
 * Server: picks the first acceptable permessage-deflate offer in a Sec-WebSocket-Extensions
 * value. Offers with unknown or repeated parameters or out-of-range values are declined (RFC
 * 7692 5.1), as is server_max_window_bits=8 (zlib cannot compress with a 256-byte window).
 * Returns true with *out and the response header value in `resp`; false to decline them all.
 */
RS_EXPORT bool rs_ws_deflate_negotiate(rs_bytes offers, rs_ws_deflate *out, char *resp, size_t cap);

/* Client: reads the server's Sec-WebSocket-Extensions answer to our offer of
 * "permessage-deflate; client_max_window_bits". 0 or RS_ERR_REJECTED. */
RS_EXPORT int rs_ws_deflate_client_accept(rs_bytes value, rs_ws_deflate *out);

/* ---- Connection (after the handshake) ---- */

typedef struct rs_ws_conn rs_ws_conn;

typedef struct rs_ws_callbacks {
  /* A whole message (text already validated as UTF-8). `data` is valid during the call. Messages
   * that arrive after our close frame and before the peer's are delivered too
   * (rs_ws_conn_closing() tells them apart); after the peer's close nothing is. */
  void (*on_message)(rs_ws_conn *c, int opcode, const uint8_t *data, size_t len, void *user);
  /* A ping arrived (the pong is already queued when auto_pong). */
  void (*on_ping)(rs_ws_conn *c, const uint8_t *data, size_t len, void *user);
  /* The close handshake finished or the connection failed: `code` is the peer's code (1005 when
   * it sent none) or the one we failed with; `remote` tells which. */
  void (*on_close)(rs_ws_conn *c, unsigned code, rs_bytes reason, bool remote, void *user);
} rs_ws_callbacks;

typedef struct rs_ws_options {
  bool server;               /* server role: expects masked frames, sends unmasked */
  size_t max_message;        /* largest inbound message; larger: close 1009 (0 = 16 MiB) */
  uint32_t close_timeout_ms; /* wait for the peer's close after ours (0 = 5000) */
  size_t max_queued;     /* output bytes queued before sends fail with WOULD_BLOCK (0 = 64 MiB) */
  rs_ws_deflate deflate; /* negotiated permessage-deflate (enabled false: none) */
  /* Client: the source of masking keys (NULL: OpenSSL's CSPRNG). It is asked for 512 bytes at a
   * time, the first time a frame is sent and then every 128 frames; each frame takes the next 4
   * bytes. With a fixed source (and the same calls) a client's output is the same byte for byte.
   * Fields added after 0.1.0 (like these two) read as "default" when zero, so designated or zero
   * initializers keep working. */
  rs_ws_random_fn random;
  void *random_user;
} rs_ws_options;

/*
 * Creates a connection. Everything it allocates, zlib's streams included, comes from `mem` (NULL:
 * rs_mem_default()), which must outlive the connection. With permessage-deflate the zlib streams
 * are set up here (about 270 KB with 15-bit windows; the inflater adds its 32 KB window with the
 * first compressed message). Returns NULL on allocation failure.
 *
 * Fatal errors: an allocation that fails inside any call (or a random source or zlib that fails:
 * RS_ERR_INTERNAL) finishes the connection for good: that call and every later recv, send and
 * close return the same error, pending() hands out nothing more, want_close() is true, and no
 * callback is called for it. The only thing left to do is rs_ws_conn_free (nothing leaks).
 */
RS_EXPORT rs_ws_conn *rs_ws_conn_new(const rs_ws_options *o, const rs_ws_callbacks *cb, void *user,
                                     const rs_mem *mem);
RS_EXPORT void rs_ws_conn_free(rs_ws_conn *c);

/*
 * Feeds received bytes. Protocol violations queue a close frame with the right code (1002, 1007,
 * 1009) and call on_close; they are not errors of this call. Returns 0, RS_ERR_INVALID_ARGUMENT
 * (NULL connection, or NULL buf with len > 0), or a fatal RS_ERR_NOMEM or RS_ERR_INTERNAL.
 */
RS_EXPORT int rs_ws_conn_recv(rs_ws_conn *c, const uint8_t *buf, size_t len, uint64_t now_ms);

/* Queues a message (copied; compressed when permessage-deflate was negotiated; masked in the
 * client role). Returns 0, RS_ERR_CLOSED (closing), RS_ERR_WOULD_BLOCK (over max_queued),
 * RS_ERR_INVALID_ARGUMENT, or a fatal RS_ERR_NOMEM or RS_ERR_INTERNAL. */
RS_EXPORT int rs_ws_conn_send(rs_ws_conn *c, int opcode, const uint8_t *data, size_t len);

/* Starts the close handshake with `code` and `reason` (at most 123 bytes). Returns 0,
 * RS_ERR_CLOSED (a close frame was already sent), RS_ERR_INVALID_ARGUMENT, or a fatal
 * RS_ERR_NOMEM or RS_ERR_INTERNAL. */
RS_EXPORT int rs_ws_conn_close(rs_ws_conn *c, unsigned code, const char *reason, uint64_t now_ms);

/* Output: one buffer of queued bytes (returns 0 or 1), then consumed(n). */
RS_EXPORT int rs_ws_conn_pending(rs_ws_conn *c, rs_bytes *out);
RS_EXPORT void rs_ws_conn_consumed(rs_ws_conn *c, size_t n);
RS_EXPORT size_t rs_ws_conn_queued(const rs_ws_conn *c);

/* True when the close handshake is over (or timed out) and all output was consumed: close the
 * transport. */
RS_EXPORT bool rs_ws_conn_want_close(const rs_ws_conn *c);
/* True once a close frame was sent or received. */
RS_EXPORT bool rs_ws_conn_closing(const rs_ws_conn *c);
RS_EXPORT uint64_t rs_ws_conn_next_deadline(const rs_ws_conn *c);
RS_EXPORT void rs_ws_conn_handle_expiry(rs_ws_conn *c, uint64_t now_ms);

#ifdef __cplusplus
}
#endif
#endif
