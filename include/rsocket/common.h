/*
 * rsocket-c: common definitions shared by every layer.
 *
 * librsocket performs no I/O in its cores: bytes go in, bytes come out, time is an argument.
 * This header holds what every module needs: the export macro, the signed size type, byte views,
 * the per-object allocator hook and the one error enum with rs_strerror().
 */
#ifndef RSOCKET_COMMON_H
#define RSOCKET_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(RS_BUILDING)
#define RS_EXPORT __attribute__((visibility("default")))
#else
#define RS_EXPORT
#endif

#define RS_VERSION_STRING "0.1.0"

/* Signed size: a byte count when >= 0, an rs_error when < 0. */
typedef ptrdiff_t rs_ssize;

/* A read-only view of bytes owned by someone else. `ptr` may be NULL only when `len` is 0. */
typedef struct rs_bytes {
  const uint8_t *ptr;
  size_t len;
} rs_bytes;

/* Makes a view of a NUL-terminated string (without the NUL). */
RS_EXPORT rs_bytes rs_bytes_str(const char *s);

/*
 * Allocator hook. Every object of the cores allocates through one of these, which is what lets a
 * test make allocation N fail. Pass NULL wherever an `const rs_mem *` is taken for malloc/free.
 * `realloc` must behave like realloc(3) (NULL ptr allocates); `free` accepts NULL.
 */
typedef struct rs_mem {
  void *(*malloc)(size_t size, void *user);
  void (*free)(void *ptr, void *user);
  void *(*calloc)(size_t n, size_t size, void *user);
  void *(*realloc)(void *ptr, size_t size, void *user);
  void *user;
} rs_mem;

/* The allocator that calls the C library. Never NULL. */
RS_EXPORT const rs_mem *rs_mem_default(void);

/*
 * Errors. Every fallible function returns 0 (or a non-negative count) on success and one of these
 * on failure. Codes below RS_ERR_FATAL leave the object they came from unusable: the only legal
 * call after one is its delete/free function.
 */
typedef enum rs_error {
  RS_OK = 0,
  /* Caller errors. */
  RS_ERR_INVALID_ARGUMENT = -501, /* a NULL where an object is needed, a value out of range */
  RS_ERR_BUFFER_TOO_SMALL = -502, /* the output buffer cannot hold the result */
  RS_ERR_INVALID_STATE = -503,    /* the call is not allowed in the object's current state */
  RS_ERR_WOULD_BLOCK = -504,      /* no credit / nothing to do now; try again later */
  /* Input that is not valid for the protocol (frame decode, parsers). */
  RS_ERR_INCOMPLETE = -510,      /* more bytes are needed */
  RS_ERR_FRAME_TOO_SHORT = -511, /* shorter than the fixed fields of its type */
  RS_ERR_FRAME_TOO_LARGE = -512, /* over 16,777,215 bytes or a configured limit */
  RS_ERR_BAD_LENGTH = -513,      /* a length field points past the end or does not add up */
  RS_ERR_BAD_STREAM_ID = -514,   /* stream id not allowed for the frame type, or top bit set */
  RS_ERR_BAD_FLAGS = -515, /* a flag combination the spec forbids (e.g. PAYLOAD, no N, no C) */
  RS_ERR_BAD_VALUE = -516, /* a field out of range (request-n 0, keepalive 0, top bit set) */
  RS_ERR_UNKNOWN_FRAME_TYPE = -517, /* reserved or unassigned frame type */
  RS_ERR_BAD_VERSION = -518,        /* protocol version we do not speak */
  RS_ERR_MALFORMED = -519,          /* any other malformed input (extensions, metadata) */
  /* Protocol engine (stream and connection level). */
  RS_ERR_STREAM_CLOSED = -530, /* the stream has ended or never existed */
  RS_ERR_NO_CREDIT = -531,     /* the peer has not granted request(n) for this */
  RS_ERR_NO_LEASE = -532,      /* no valid lease allows a new request */
  RS_ERR_TOO_MANY_STREAMS = -533,
  RS_ERR_FLOODED = -534,  /* the peer queued too many control frames */
  RS_ERR_TOO_BIG = -535,  /* reassembled payload over the configured maximum */
  RS_ERR_REJECTED = -536, /* the peer refused (setup, resume or a request) */
  RS_ERR_CANCELED = -537,
  RS_ERR_PROTOCOL = -538, /* the peer broke the protocol */
  RS_ERR_TIMEOUT = -539,
  RS_ERR_CLOSED = -540,      /* the connection is closed or closing */
  RS_ERR_APPLICATION = -541, /* the peer's application failed the stream (APPLICATION_ERROR) */
  RS_ERR_UNAVAILABLE = -542, /* no connection can take the request now (rsocket/pool.h) */
  /* Fatal: the object is unusable afterwards. */
  RS_ERR_FATAL = -900,
  RS_ERR_NOMEM = -901, /* an allocation failed */
  RS_ERR_INTERNAL = -902,
  RS_ERR_IO = -903, /* runtime only: a system call failed */
} rs_error;

/* A short English description of `err` (never NULL; "unknown error" for foreign values). */
RS_EXPORT const char *rs_strerror(int err);

/* The identifier of `err` as written in this header, e.g. "RS_ERR_NOMEM". */
RS_EXPORT const char *rs_error_name(int err);

/* True when `err` is below RS_ERR_FATAL. */
static inline bool rs_error_is_fatal(int err) {
  return err < RS_ERR_FATAL;
}

#ifdef __cplusplus
}
#endif
#endif
