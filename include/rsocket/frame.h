/*
 * rsocket-c: RSocket 1.0 frame codec (sans-I/O).
 *
 * Decode is zero-copy: every rs_bytes in a decoded rs_frame points into the caller's buffer and is
 * valid as long as that buffer is. Encode writes into a caller buffer; reserve RS_FRAME_LENGTH_SIZE
 * bytes of headroom in front of it and a TCP transport can prepend the 24-bit length without a
 * copy.
 *
 * A frame here is always the bytes *after* any transport length prefix: exactly what a WebSocket
 * binary message carries, and what follows the 3-byte length on TCP.
 */
#ifndef RSOCKET_FRAME_H
#define RSOCKET_FRAME_H

#include "rsocket/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Frame types (6 bits on the wire). */
typedef enum rs_frame_type {
  RS_FRAME_RESERVED = 0x00,
  RS_FRAME_SETUP = 0x01,
  RS_FRAME_LEASE = 0x02,
  RS_FRAME_KEEPALIVE = 0x03,
  RS_FRAME_REQUEST_RESPONSE = 0x04,
  RS_FRAME_REQUEST_FNF = 0x05,
  RS_FRAME_REQUEST_STREAM = 0x06,
  RS_FRAME_REQUEST_CHANNEL = 0x07,
  RS_FRAME_REQUEST_N = 0x08,
  RS_FRAME_CANCEL = 0x09,
  RS_FRAME_PAYLOAD = 0x0A,
  RS_FRAME_ERROR = 0x0B,
  RS_FRAME_METADATA_PUSH = 0x0C,
  RS_FRAME_RESUME = 0x0D,
  RS_FRAME_RESUME_OK = 0x0E,
  RS_FRAME_EXT = 0x3F,
} rs_frame_type;

/* Flags: the low 10 bits of the type/flags word. Some bits mean different things per type. */
#define RS_FLAG_IGNORE 0x200u /* I: ignore the frame if not understood */
#define RS_FLAG_METADATA                                                                           \
  0x100u /* M: metadata present (maintained by the encoder from has_metadata) */
#define RS_FLAG_FOLLOWS  0x080u /* F: more fragments follow (REQUEST_*, PAYLOAD) */
#define RS_FLAG_RESUME   0x080u /* R: resume enabled (SETUP) */
#define RS_FLAG_RESPOND  0x080u /* R: please respond (KEEPALIVE) */
#define RS_FLAG_COMPLETE 0x040u /* C: complete (REQUEST_CHANNEL, PAYLOAD) */
#define RS_FLAG_LEASE    0x040u /* L: honour lease (SETUP) */
#define RS_FLAG_NEXT     0x020u /* N: next (PAYLOAD) */

/* RSocket error codes (ERROR frame). */
#define RS_ERROR_RESERVED          0x00000000u
#define RS_ERROR_INVALID_SETUP     0x00000001u
#define RS_ERROR_UNSUPPORTED_SETUP 0x00000002u
#define RS_ERROR_REJECTED_SETUP    0x00000003u
#define RS_ERROR_REJECTED_RESUME   0x00000004u
#define RS_ERROR_CONNECTION_ERROR  0x00000101u
#define RS_ERROR_CONNECTION_CLOSE  0x00000102u
#define RS_ERROR_APPLICATION_ERROR 0x00000201u
#define RS_ERROR_REJECTED          0x00000202u
#define RS_ERROR_CANCELED          0x00000203u
#define RS_ERROR_INVALID           0x00000204u
#define RS_ERROR_MIN_APPLICATION   0x00000301u /* first application-defined code */
#define RS_ERROR_RESERVED_EXT      0xFFFFFFFFu

#define RS_FRAME_HEADER_SIZE   6u          /* stream id + type/flags */
#define RS_FRAME_LENGTH_SIZE   3u          /* TCP length prefix */
#define RS_FRAME_MAX_SIZE      0xFFFFFFu   /* 16,777,215: the largest frame on any transport */
#define RS_METADATA_LENGTH_MAX 0xFFFFFFu   /* 24-bit metadata length field */
#define RS_REQUEST_N_MAX       0x7FFFFFFFu /* 2^31-1: "unbounded" by convention */
#define RS_STREAM_ID_MAX       0x7FFFFFFFu
#define RS_POSITION_MAX        0x7FFFFFFFFFFFFFFFull
#define RS_VERSION_MAJOR       1u
#define RS_VERSION_MINOR       0u

/*
 * One decoded (or to-be-encoded) frame. The common fields come first; the fields specific to the
 * frame type are in the union member named after it. For REQUEST_*, PAYLOAD and EXT, `metadata` and
 * `data` carry the payload; for LEASE and METADATA_PUSH only `metadata`; for KEEPALIVE only `data`
 * (the bytes echoed back); for ERROR `data` is the UTF-8 message.
 *
 * `has_metadata` distinguishes "no metadata" (M=0) from "empty metadata" (M=1, length 0).
 */
typedef struct rs_frame {
  uint32_t stream_id;
  uint8_t type;   /* rs_frame_type */
  uint16_t flags; /* as received (decode) or requested (encode); see rs_frame_encode */
  bool has_metadata;
  rs_bytes metadata;
  rs_bytes data;
  union {
    struct {
      uint16_t major, minor;
      uint32_t keepalive_ms;    /* > 0, 31-bit */
      uint32_t max_lifetime_ms; /* > 0, 31-bit */
      rs_bytes resume_token;    /* present iff flags & RS_FLAG_RESUME; up to 65,535 bytes */
      rs_bytes metadata_mime;   /* up to 255 bytes of ASCII, not interpreted */
      rs_bytes data_mime;
    } setup;
    struct {
      uint32_t ttl_ms;             /* 31-bit; 0 stops requests */
      uint32_t number_of_requests; /* 31-bit */
    } lease;
    struct {
      uint64_t last_received_position; /* 63-bit; 0 without resumption */
    } keepalive;
    struct {
      uint32_t initial_request_n; /* REQUEST_STREAM and REQUEST_CHANNEL: 1..2^31-1 */
    } request;
    struct {
      uint32_t n; /* 1..2^31-1 */
    } request_n;
    struct {
      uint32_t code; /* RS_ERROR_* or application-defined */
    } error;
    struct {
      uint16_t major, minor;
      rs_bytes token;
      uint64_t last_received_server_position;   /* 63-bit */
      uint64_t first_available_client_position; /* 63-bit */
    } resume;
    struct {
      uint64_t last_received_client_position; /* 63-bit */
    } resume_ok;
    struct {
      uint32_t extended_type; /* 31-bit, > 0 */
    } ext;
  } u;
} rs_frame;

/*
 * Why a frame was refused, for the peer and for people. `code` is the RSocket error code the spec
 * implies for this violation (INVALID_SETUP for a broken SETUP/RESUME handshake frame, INVALID for
 * a malformed request on a stream, CONNECTION_ERROR otherwise); `offset` is the byte offset in the
 * frame of the offending field; `message` is a static, human-readable sentence.
 */
typedef struct rs_frame_error {
  int err;       /* rs_error (negative) */
  uint32_t code; /* RS_ERROR_* to send */
  size_t offset; /* byte offset of the problem inside the frame */
  const char *message;
} rs_frame_error;

/* Zeroes `f` and sets its type and stream id (and version 1.0 for SETUP and RESUME). */
RS_EXPORT void rs_frame_init(rs_frame *f, rs_frame_type type, uint32_t stream_id);

/*
 * Decodes one frame of `len` bytes (no transport length prefix). Every view in `out` points into
 * `buf`. Unknown flag bits are kept in out->flags and otherwise ignored.
 *
 * On RS_ERR_UNKNOWN_FRAME_TYPE and RS_ERR_BAD_STREAM_ID the header fields of `out` (stream_id,
 * type, flags) are still filled in, so a caller can apply the spec's "ignore" rules (I flag,
 * PAYLOAD or CANCEL on stream 0, METADATA_PUSH on a stream). `err` may be NULL.
 *
 * Returns 0, or: RS_ERR_FRAME_TOO_SHORT, RS_ERR_FRAME_TOO_LARGE, RS_ERR_BAD_LENGTH,
 * RS_ERR_BAD_STREAM_ID, RS_ERR_BAD_FLAGS, RS_ERR_BAD_VALUE, RS_ERR_UNKNOWN_FRAME_TYPE,
 * RS_ERR_INVALID_ARGUMENT (NULL out or buf with len > 0).
 */
RS_EXPORT int rs_frame_decode(rs_frame *out, const uint8_t *buf, size_t len, rs_frame_error *err);

/*
 * Reads just the 6-byte header: stream id, type and flags. Returns 0 or RS_ERR_FRAME_TOO_SHORT.
 */
RS_EXPORT int rs_frame_decode_header(const uint8_t *buf, size_t len, uint32_t *stream_id,
                                     uint8_t *type, uint16_t *flags);

/*
 * Size in bytes of `f` encoded (without a transport length prefix), or a negative rs_error if `f`
 * cannot be encoded (same checks as rs_frame_encode).
 */
RS_EXPORT rs_ssize rs_frame_encoded_size(const rs_frame *f);

/*
 * Size of the head of `f`: every byte before its metadata bytes (header, fixed fields, SETUP
 * strings, the 24-bit metadata length when present). The frame on the wire is head, metadata, data.
 * This lets a sender write the head into a small buffer and gather the payload bytes with writev,
 * no copy.
 */
RS_EXPORT rs_ssize rs_frame_head_size(const rs_frame *f);

/* Writes the head of `f` (see rs_frame_head_size) into `buf`. Returns its length or an error. */
RS_EXPORT rs_ssize rs_frame_encode_head(const rs_frame *f, uint8_t *buf, size_t cap);

/*
 * Encodes `f` into `buf`. The M flag is set from has_metadata (always set for METADATA_PUSH);
 * flag bits not defined for the type are sent as 0. Returns the frame length, or:
 *   RS_ERR_BUFFER_TOO_SMALL  `cap` is less than rs_frame_encoded_size(f) (nothing useful written);
 *   RS_ERR_INVALID_ARGUMENT  a field out of range: stream id not allowed for the type, request-n 0
 *                            or over 2^31-1, keepalive or lifetime 0, a string too long for its
 *                            length field, metadata on a type without it, over 16,777,215 bytes.
 */
RS_EXPORT rs_ssize rs_frame_encode(const rs_frame *f, uint8_t *buf, size_t cap);

/* Writes the 24-bit big-endian length prefix for a frame of `frame_len` bytes (<=
 * RS_FRAME_MAX_SIZE). */
RS_EXPORT void rs_frame_put_length(uint8_t out[RS_FRAME_LENGTH_SIZE], size_t frame_len);

/* Spec names: "REQUEST_STREAM", "APPLICATION_ERROR"; "UNKNOWN" / "APPLICATION_DEFINED" otherwise.
 */
RS_EXPORT const char *rs_frame_type_name(uint8_t type);
RS_EXPORT const char *rs_error_code_name(uint32_t code);

/* True for types whose frames count toward resume positions (REQUEST_*, REQUEST_N, CANCEL, ERROR,
 * PAYLOAD). */
RS_EXPORT bool rs_frame_type_is_resumable(uint8_t type);

/*
 * A decoded frame (rs_frame_decode) for people, on one line without a newline: type, stream,
 * flags, the fields of its type, then the metadata and data sizes (ERROR: the message) each with
 * a quoted preview of at most `preview` bytes (0: sizes only), for example
 *   REQUEST_STREAM stream=1 flags=M n=16 metadata=6B "\x05hello" data=2B "hi"
 *   ERROR stream=0 flags=- code=CONNECTION_ERROR(0x101) message=4B "gone"
 * In a preview, bytes outside printable ASCII, '"' and '\' appear as \xNN; "..." follows a cut
 * preview. The format is for logs and debugging (rsocket-dump, `rsocket --debug`), not for
 * parsing: it may change between versions.
 *
 * Writes at most `cap` bytes into `buf`, the terminating NUL included (a longer line is cut;
 * buf may be NULL when cap is 0), and returns the length of the whole line, like snprintf: a
 * result >= cap means it was cut. A NULL frame gives "" and 0. Returns no errors.
 */
RS_EXPORT size_t rs_frame_describe(const rs_frame *f, size_t preview, char *buf, size_t cap);

/*
 * The flags set in `f` that mean something for its type, by their letters in the spec joined
 * with '|': I (ignore), M (metadata), F (follows), C (complete), N (next); R is respond on
 * KEEPALIVE and resume on SETUP, L lease on SETUP. "-" when none, "" for a NULL frame. Written
 * and returned like rs_frame_describe (at most "I|M|F|C|N", 10 bytes with the NUL). Returns no
 * errors.
 */
RS_EXPORT size_t rs_frame_flag_names(const rs_frame *f, char *buf, size_t cap);

/*
 * Length-prefixed frame reader for byte-stream transports (TCP, TLS). Feed it what the socket gave;
 * it hands out whole frames. When a frame lies entirely inside the bytes fed, the view points into
 * them (zero-copy); a frame split across reads is gathered in an internal buffer that grows up to
 * the frame size, allocated through `mem`.
 *
 * The struct is public so it can be embedded; its fields are private.
 */
typedef struct rs_frame_reader {
  const rs_mem *mem;
  size_t max_frame; /* frames longer than this are refused */
  uint8_t hdr[3];   /* partial length prefix */
  size_t hdr_have;
  size_t need;  /* length of the frame being gathered (0 if none) */
  uint8_t *buf; /* gathering buffer */
  size_t buf_len, buf_cap;
  bool frame_out; /* the gathering buffer was handed out; reset on the next call */
  int error;      /* sticky error */
} rs_frame_reader;

/*
 * Prepares `r`. `mem` may be NULL (C library). `max_frame` is clamped to [6, RS_FRAME_MAX_SIZE];
 * 0 means RS_FRAME_MAX_SIZE. Cannot fail.
 */
RS_EXPORT void rs_frame_reader_init(rs_frame_reader *r, const rs_mem *mem, size_t max_frame);

/*
 * Consumes bytes from `in` until one frame is complete or `in` is used up. Returns the number of
 * bytes consumed (call again with the rest); `*frame` is set to the complete frame (valid until the
 * next call, or as long as `in` when it points into it), or to {NULL, 0} when none is complete yet.
 *
 * Errors are sticky (every later call returns the same one):
 *   RS_ERR_FRAME_TOO_SHORT  a length prefix below 6 (the frame header size);
 *   RS_ERR_FRAME_TOO_LARGE  a length prefix over max_frame;
 *   RS_ERR_NOMEM            the gathering buffer could not be allocated.
 */
RS_EXPORT rs_ssize rs_frame_reader_next(rs_frame_reader *r, const uint8_t *in, size_t len,
                                        rs_bytes *frame);

/* Bytes held for a frame not yet complete (0 at a frame boundary). */
RS_EXPORT size_t rs_frame_reader_pending(const rs_frame_reader *r);

/* Frees the gathering buffer. `r` may be reinitialised afterwards. */
RS_EXPORT void rs_frame_reader_free(rs_frame_reader *r);

#ifdef __cplusplus
}
#endif
#endif
