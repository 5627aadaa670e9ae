/*
 * Streams of a connection: the per-stream state, an open-addressing map from stream id to stream
 * (linear probing, backward-shift deletion, no tombstones) and a free list of stream structs so a
 * busy connection allocates nothing per request once warm.
 */
#ifndef RS_CORE_STREAM_MAP_H
#define RS_CORE_STREAM_MAP_H

#include "rsocket/conn.h"

/* Stream flags. */
#define RS_ST_REQUESTER 0x01u /* we sent the request */
#define RS_ST_IN_DONE   0x02u /* no more PAYLOAD will be accepted from the peer */
#define RS_ST_OUT_DONE  0x04u /* we will send no more PAYLOAD */
#define RS_ST_APP       0x08u /* the application knows the stream (on_stream_closed owed) */
#define RS_ST_PRODUCE   0x10u /* a pull producer sends our half (rs_conn_set_producer) */
#define RS_ST_PAUSED    0x20u /* its producer said RS_PRODUCE_PAUSE */
#define RS_ST_READY     0x40u /* on the connection's ready list */
#define RS_ST_ENDED     0x80u /* out of the map: on the closed list or released */

/* Reassembly of a fragmented frame (metadata and data are gathered separately). */
typedef struct rs_reasm {
  uint8_t *md, *data;
  size_t md_len, md_cap, data_len, data_cap;
  bool has_md;
  uint8_t type;       /* type of the first fragment */
  uint16_t flags;     /* flags of the first fragment; C is or'ed in from the last */
  uint32_t initial_n; /* REQUEST_STREAM / REQUEST_CHANNEL */
  size_t *budget;     /* the connection's count of reassembly bytes allocated */
} rs_reasm;

typedef struct rs_stream {
  uint32_t id;
  uint8_t model;       /* RS_FRAME_REQUEST_RESPONSE, _STREAM or _CHANNEL (FNF while reassembling) */
  uint8_t flags;       /* RS_ST_* */
  uint64_t out_credit; /* elements we may still send (RS_CREDIT_UNBOUNDED) */
  uint64_t in_credit;  /* elements we granted and the peer has not sent yet */
  void *user;
  rs_reasm *reasm;
  struct rs_stream *next; /* free list, or list of closed streams awaiting on_stream_closed */
  struct rs_stream *rnext, *rprev; /* the ready list of producers (RS_ST_READY) */
} rs_stream;

typedef struct rs_stream_map {
  const rs_mem *mem;
  rs_stream **slots;
  uint32_t cap; /* power of two, or 0 before the first insert */
  uint32_t count;
  rs_stream *free_list;
  uint32_t free_count, free_max;
} rs_stream_map;

void rs__smap_init(rs_stream_map *m, const rs_mem *mem, uint32_t free_max);
/* Frees the table, every stream in it (and its reassembly buffers) and the free list. */
void rs__smap_free(rs_stream_map *m);

/* A zeroed stream struct (from the free list if possible) or NULL. Not inserted. */
rs_stream *rs__stream_alloc(rs_stream_map *m);
/* Returns a stream struct (not in the map) to the free list; frees its reassembly buffers. */
void rs__stream_release(rs_stream_map *m, rs_stream *s);
void rs__reasm_free(const rs_mem *mem, rs_reasm *r);

rs_stream *rs__smap_get(const rs_stream_map *m, uint32_t id);
/* Inserts `s` (its id must not be present). Returns 0 or RS_ERR_NOMEM. */
int rs__smap_put(rs_stream_map *m, rs_stream *s);
/* Removes the stream with `id` if present and returns it. */
rs_stream *rs__smap_remove(rs_stream_map *m, uint32_t id);
/* Grows the table so that one more insert cannot fail. Returns 0 or RS_ERR_NOMEM. */
int rs__smap_reserve(rs_stream_map *m);

/* Takes every stream out of the map (no callbacks) as a linked list through ->next. */
rs_stream *rs__smap_drain(rs_stream_map *m);

#endif
