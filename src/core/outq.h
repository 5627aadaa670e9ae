/*
 * Output queue of the protocol engine: a chain of blocks holding encoded frames, handed to the
 * transport as iovecs and released as it reports them written.
 *
 * Blocks are never moved or reallocated, so bytes handed out stay valid while new frames are
 * appended. Length-prefixed framing packs frames back to back, each after its 3-byte length, so
 * one iovec covers many frames. Message framing stores each frame after a record header of
 * RS_OUTQ_MSG_REC bytes (its length, then RS_CONN_MESSAGE_HEADROOM bytes the transport may
 * overwrite), so each iovec is one frame and the transport can write its header in front of it.
 *
 * The queue also tracks "reactive" control frames (replies the peer provoked: KEEPALIVE answers,
 * ERROR refusals) still unwritten, which is what bounds a peer that floods us with requests for
 * replies while not reading.
 */
#ifndef RS_CORE_OUTQ_H
#define RS_CORE_OUTQ_H

#include "rsocket/conn.h"

#define RS_OUTQ_MSG_LEN 4u
#define RS_OUTQ_MSG_REC (RS_OUTQ_MSG_LEN + RS_CONN_MESSAGE_HEADROOM)
/* First block of a burst that starts with a small frame. */
#define RS_OUTQ_SMALL_BLOCK 1024u
/* Empty blocks kept for reuse. A busy connection reuses them instead of a malloc/free per loop
 * iteration (which makes glibc trim and regrow its heap: a 6x throughput loss measured with
 * 4 KiB payloads); rs__outq_trim gives them back once the connection is quiet. */
#define RS_OUTQ_SPARES 4u

typedef struct rs_outblk {
  struct rs_outblk *next;
  size_t cap;  /* bytes in data[] */
  size_t head; /* first unconsumed byte (a record start in message framing) */
  size_t tail; /* end of written bytes */
  uint8_t data[];
} rs_outblk;

typedef struct rs_outq {
  const rs_mem *mem;
  rs_outblk *first, *last;
  rs_outblk *spares; /* empty blocks kept for reuse (at most RS_OUTQ_SPARES) */
  unsigned nspares;
  size_t block_size;
  size_t pending;               /* bytes rs_conn_pending_output would hand out */
  bool message;                 /* message framing */
  uint64_t total_in, total_out; /* monotonic counts of pending units appended / consumed */
  /* Ring of the unwritten reactive control frames: for each, the total_in value at its end and
   * its length (two uint64_t per entry). */
  uint64_t *ctl;
  uint32_t ctl_cap;     /* limit (max_queued_control) */
  size_t ctl_bytes;     /* their bytes together */
  size_t ctl_max_bytes; /* limit (max_queued_control_bytes) */
  uint32_t ctl_alloc;   /* entries allocated in ctl (grows up to ctl_cap) */
  uint32_t ctl_head, ctl_count;
} rs_outq;

/* Prepares an empty queue (allocates nothing). `max_control` bounds the reactive control frames.
 * Returns 0. */
int rs__outq_init(rs_outq *q, const rs_mem *mem, bool message, size_t block_size,
                  uint32_t max_control, size_t max_control_bytes);

/* Frees every block. */
void rs__outq_free(rs_outq *q);

/* Frees the spare blocks when nothing is queued (called when the connection is quiet). */
void rs__outq_trim(rs_outq *q);

/* Drops every queued byte (the transport is gone). */
void rs__outq_clear(rs_outq *q);

/*
 * Reserves room for one frame of `frame_len` bytes and returns where to write it (the framing
 * prefix or record is already written), or NULL on allocation failure. The frame is counted as
 * queued immediately: the caller must write all of it before returning to the application.
 */
uint8_t *rs__outq_reserve(rs_outq *q, size_t frame_len);

/* True if one more reactive control frame would exceed the limit. */
bool rs__outq_control_full(const rs_outq *q, size_t add_bytes);

/* Records that the frame just reserved is a reactive control frame. Call only when
 * !rs__outq_control_full(). Returns 0 or RS_ERR_NOMEM. */
int rs__outq_mark_control(rs_outq *q, size_t len);

/* Fills iovecs (see rs_conn_pending_output). */
int rs__outq_iov(const rs_outq *q, rs_iov *iov, int max_iov);

/* Releases `n` written bytes. Returns 0 or RS_ERR_INVALID_ARGUMENT. */
int rs__outq_consume(rs_outq *q, size_t n);

#endif
