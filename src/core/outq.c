/* Output queue: blocks of encoded frames, handed out as iovecs (see outq.h). */
#include "core/outq.h"

#include <string.h>

#include "rsocket/frame.h"

int rs__outq_init(rs_outq *q, const rs_mem *mem, bool message, size_t block_size,
                  uint32_t max_control, size_t max_control_bytes) {
  memset(q, 0, sizeof(*q));
  q->mem = mem;
  q->message = message;
  q->block_size = block_size < 256 ? 256 : block_size;
  q->ctl_cap = max_control ? max_control : 1;
  q->ctl_max_bytes = max_control_bytes;
  /* The control ring is allocated on first use and grows to ctl_cap: an idle connection holds
   * no output memory at all. */
  return 0;
}

static void free_chain(const rs_mem *mem, rs_outblk *b) {
  while (b) {
    rs_outblk *next = b->next;
    mem->free(b, mem->user);
    b = next;
  }
}

void rs__outq_free(rs_outq *q) {
  free_chain(q->mem, q->first);
  free_chain(q->mem, q->spares);
  q->mem->free(q->ctl, q->mem->user);
  q->first = q->last = q->spares = NULL;
  q->nspares = 0;
  q->ctl = NULL;
}

/* Returns a fully consumed block to the spares (or frees it). */
static void release_block(rs_outq *q, rs_outblk *b) {
  if (q->nspares < RS_OUTQ_SPARES && (b->cap == q->block_size || b->cap == RS_OUTQ_SMALL_BLOCK)) {
    b->head = b->tail = 0;
    b->next = q->spares;
    q->spares = b;
    q->nspares++;
  } else {
    q->mem->free(b, q->mem->user);
  }
}

void rs__outq_trim(rs_outq *q) {
  if (q->first) return;
  free_chain(q->mem, q->spares);
  q->spares = NULL;
  q->nspares = 0;
}

/* A spare block of at least `need` bytes, preferring one of `want` bytes; NULL if none. */
static rs_outblk *take_spare(rs_outq *q, size_t need, size_t want) {
  rs_outblk **best = NULL;
  for (rs_outblk **pp = &q->spares; *pp; pp = &(*pp)->next) {
    if ((*pp)->cap < need) continue;
    if (!best || (*pp)->cap == want) best = pp;
    if ((*pp)->cap == want) break;
  }
  if (!best) return NULL;
  rs_outblk *b = *best;
  *best = b->next;
  q->nspares--;
  return b;
}

void rs__outq_clear(rs_outq *q) {
  rs_outblk *b = q->first;
  while (b) {
    rs_outblk *next = b->next;
    release_block(q, b);
    b = next;
  }
  q->first = q->last = NULL;
  q->total_out = q->total_in;
  q->pending = 0;
  q->ctl_head = q->ctl_count = 0;
  q->ctl_bytes = 0;
}

uint8_t *rs__outq_reserve(rs_outq *q, size_t frame_len) {
  size_t pre = q->message ? RS_OUTQ_MSG_REC : RS_FRAME_LENGTH_SIZE;
  size_t need = pre + frame_len;
  rs_outblk *b = q->last;
  if (!b || b->cap - b->tail < need) {
    /* An empty queue starts with a small block; a burst continues with full-size ones. */
    size_t want = (!q->first && need <= RS_OUTQ_SMALL_BLOCK && q->block_size > RS_OUTQ_SMALL_BLOCK)
                      ? RS_OUTQ_SMALL_BLOCK
                      : q->block_size;
    if (need > want || !(b = take_spare(q, need, want))) {
      size_t cap = need > want ? need : want;
      b = q->mem->malloc(sizeof(rs_outblk) + cap, q->mem->user);
      if (!b) return NULL;
      b->cap = cap;
      b->head = b->tail = 0;
    }
    b->next = NULL;
    if (q->last) {
      q->last->next = b;
    } else {
      q->first = b;
    }
    q->last = b;
  }
  uint8_t *p = b->data + b->tail;
  b->tail += need;
  if (q->message) {
    uint32_t l = (uint32_t)frame_len;
    memcpy(p, &l, sizeof(l));
    q->pending += frame_len;
    q->total_in += frame_len;
  } else {
    rs_frame_put_length(p, frame_len);
    q->pending += need;
    q->total_in += need;
  }
  return p + pre;
}

bool rs__outq_control_full(const rs_outq *q, size_t add_bytes) {
  return q->ctl_count >= q->ctl_cap ||
         (q->ctl_max_bytes && q->ctl_bytes + add_bytes > q->ctl_max_bytes);
}

int rs__outq_mark_control(rs_outq *q, size_t len) {
  if (q->ctl_count >= q->ctl_cap) return 0;
  if (q->ctl_count == q->ctl_alloc) {
    /* Grow the ring (16, 32, ... up to ctl_cap entries), unrolling it to start at 0. */
    uint32_t n = q->ctl_alloc ? q->ctl_alloc * 2 : 16;
    if (n > q->ctl_cap) n = q->ctl_cap;
    uint64_t *ring = q->mem->malloc(sizeof(uint64_t) * 2 * n, q->mem->user);
    if (!ring) return RS_ERR_NOMEM;
    for (uint32_t i = 0; i < q->ctl_count; i++) {
      uint32_t from = (q->ctl_head + i) % q->ctl_alloc;
      ring[2 * i] = q->ctl[2 * from];
      ring[2 * i + 1] = q->ctl[2 * from + 1];
    }
    q->mem->free(q->ctl, q->mem->user);
    q->ctl = ring;
    q->ctl_alloc = n;
    q->ctl_head = 0;
  }
  uint32_t at = (q->ctl_head + q->ctl_count) % q->ctl_alloc;
  q->ctl[2 * at] = q->total_in;
  q->ctl[2 * at + 1] = len;
  q->ctl_count++;
  q->ctl_bytes += len;
  return 0;
}

int rs__outq_iov(const rs_outq *q, rs_iov *iov, int max_iov) {
  int n = 0;
  for (const rs_outblk *b = q->first; b && n < max_iov; b = b->next) {
    if (!q->message) {
      if (b->tail > b->head) {
        iov[n].base = (uint8_t *)b->data + b->head;
        iov[n].len = b->tail - b->head;
        n++;
      }
      continue;
    }
    size_t off = b->head;
    while (off < b->tail && n < max_iov) {
      uint32_t l;
      memcpy(&l, b->data + off, sizeof(l));
      iov[n].base = (uint8_t *)b->data + off + RS_OUTQ_MSG_REC;
      iov[n].len = l;
      n++;
      off += RS_OUTQ_MSG_REC + l;
    }
  }
  return n;
}

int rs__outq_consume(rs_outq *q, size_t n) {
  if (n > q->pending) return RS_ERR_INVALID_ARGUMENT;
  if (q->message) {
    /* Check first that n ends on a frame boundary, so a bad call changes nothing. */
    size_t left = n;
    for (const rs_outblk *b = q->first; b && left; b = b->next) {
      size_t off = b->head;
      while (off < b->tail && left) {
        uint32_t l;
        memcpy(&l, b->data + off, sizeof(l));
        if (l > left) return RS_ERR_INVALID_ARGUMENT;
        left -= l;
        off += RS_OUTQ_MSG_REC + l;
      }
    }
  }
  size_t left = n;
  while (left && q->first) {
    rs_outblk *b = q->first;
    if (q->message) {
      while (b->head < b->tail && left) {
        uint32_t l;
        memcpy(&l, b->data + b->head, sizeof(l));
        left -= l;
        b->head += RS_OUTQ_MSG_REC + l;
      }
    } else {
      size_t avail = b->tail - b->head;
      size_t take = avail < left ? avail : left;
      b->head += take;
      left -= take;
    }
    if (b->head < b->tail) break;
    q->first = b->next;
    if (q->last == b) q->last = NULL;
    release_block(q, b);
  }
  q->pending -= n;
  q->total_out += n;
  while (q->ctl_count && q->ctl[2 * q->ctl_head] <= q->total_out) {
    q->ctl_bytes -= (size_t)q->ctl[2 * q->ctl_head + 1];
    q->ctl_head = (q->ctl_head + 1) % q->ctl_alloc;
    q->ctl_count--;
  }
  return 0;
}
