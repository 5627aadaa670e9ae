#include "redis_uv.h"

#include <stdlib.h>

typedef struct ruv {
  redisAsyncContext *ac; /* NULL once hiredis let go of the context */
  uv_poll_t poll;
  int events;
} ruv;

static void on_poll(uv_poll_t *h, int status, int events) {
  ruv *p = h->data;
  /* An error (libuv stopped the poll): let hiredis try what it waits for and see the error. */
  if (status < 0) events = p->events;
  if (p->ac && (events & UV_READABLE)) redisAsyncHandleRead(p->ac);
  if (p->ac && (events & UV_WRITABLE)) redisAsyncHandleWrite(p->ac);
}

static void update(ruv *p, int events) {
  p->events = events;
  if (events)
    uv_poll_start(&p->poll, events, on_poll);
  else
    uv_poll_stop(&p->poll);
}

static void add_read(void *data) {
  ruv *p = data;
  update(p, p->events | UV_READABLE);
}

static void del_read(void *data) {
  ruv *p = data;
  update(p, p->events & ~UV_READABLE);
}

static void add_write(void *data) {
  ruv *p = data;
  update(p, p->events | UV_WRITABLE);
}

static void del_write(void *data) {
  ruv *p = data;
  update(p, p->events & ~UV_WRITABLE);
}

static void on_closed(uv_handle_t *h) {
  free(h->data);
}

/* hiredis frees the context: the poll goes, its memory with the close callback. */
static void cleanup(void *data) {
  ruv *p = data;
  p->ac = NULL;
  uv_close((uv_handle_t *)&p->poll, on_closed);
}

int collab_redis_attach(redisAsyncContext *ac, uv_loop_t *loop) {
  if (ac->ev.data) return -1;
  ruv *p = calloc(1, sizeof *p);
  if (!p) return -1;
  if (uv_poll_init(loop, &p->poll, ac->c.fd) != 0) {
    free(p);
    return -1;
  }
  p->ac = ac;
  p->poll.data = p;
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  ac->ev.cleanup = cleanup;
  ac->ev.data = p;
  return 0;
}
