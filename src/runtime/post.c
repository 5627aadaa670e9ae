/*
 * rs_runtime_post: run a function on another loop's thread.
 *
 * Each loop that accepts posts has one entry in a process-wide registry: a uv_async_t and a
 * mutex-protected FIFO of posted items. A post looks its loop up under the registry's read lock
 * and keeps that lock until it has queued the item and signalled the handle; dropping the last
 * reference takes the write lock to unlink the entry. So a post either lands in a queue that
 * will be run, or finds no entry and fails with RS_ERR_CLOSED, and no uv_async_send can reach a
 * handle that is closing. The lock is writer-preferring where glibc offers it, so a flood of
 * posts cannot hold off a loop that is stopping.
 *
 * uv_async_send coalesces: only a post into an empty queue signals. Each wake-up takes the queue
 * as it stands (later posts wait for the next wake-up) and runs at most POST_BATCH items of it,
 * keeping the rest for the next wake-up, which it asks for, so the loop's timers and sockets get
 * their turn between batches however fast other threads post.
 */
#define _GNU_SOURCE /* PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "rsocket/runtime.h"
#include "runtime/post.h"

#define POST_BATCH 1024

typedef struct post_item {
  struct post_item *next;
  void (*fn)(void *arg);
  void *arg;
} post_item;

typedef struct post_loop {
  uv_loop_t *loop;
  uv_async_t async;
  pthread_mutex_t mu; /* guards head and tail */
  post_item *head, *tail;
  /* The loop thread's own: items taken from the queue and not run yet; unlinked from the
   * registry (no post can arrive any more). */
  post_item *run_head, *run_tail;
  bool unlinked;
  int refs, user_refs; /* under the registry's write lock */
  struct post_loop *next;
} post_loop;

#ifdef PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP
static pthread_rwlock_t registry_lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
#else
static pthread_rwlock_t registry_lock = PTHREAD_RWLOCK_INITIALIZER;
#endif
static post_loop *registry;

static post_loop *find(uv_loop_t *loop) {
  post_loop *p = registry;
  while (p && p->loop != loop) p = p->next;
  return p;
}

/* Moves what was posted to the run list (behind what an earlier batch left there) and runs up
 * to `max` items of it, in order; what is left waits for the next wake-up, which it asks for.
 * Re-entrant: a posted function that releases the loop runs the rest first. Returns whether
 * anything was there to run. */
static bool run_batch(post_loop *p, size_t max) {
  pthread_mutex_lock(&p->mu);
  post_item *head = p->head, *tail = p->tail;
  p->head = p->tail = NULL;
  pthread_mutex_unlock(&p->mu);
  if (head) {
    if (p->run_tail)
      p->run_tail->next = head;
    else
      p->run_head = head;
    p->run_tail = tail;
  }
  bool any = p->run_head != NULL;
  for (size_t n = 0; p->run_head && (n < max || p->unlinked); n++) {
    post_item *it = p->run_head;
    p->run_head = it->next;
    if (!p->run_head) p->run_tail = NULL;
    void (*fn)(void *) = it->fn;
    void *arg = it->arg;
    free(it);
    fn(arg);
  }
  if (p->run_head) uv_async_send(&p->async);
  return any;
}

static void on_async(uv_async_t *a) {
  run_batch(a->data, POST_BATCH);
}

static void on_closed(uv_handle_t *h) {
  post_loop *p = h->data;
  pthread_mutex_destroy(&p->mu);
  free(p);
}

static int acquire(uv_loop_t *loop, bool user) {
  int rc = 0;
  pthread_rwlock_wrlock(&registry_lock);
  post_loop *p = find(loop);
  if (!p) {
    p = calloc(1, sizeof *p);
    if (!p) {
      rc = RS_ERR_NOMEM;
    } else if (uv_async_init(loop, &p->async, on_async) != 0) {
      free(p);
      p = NULL;
      rc = RS_ERR_IO;
    } else {
      pthread_mutex_init(&p->mu, NULL);
      p->async.data = p;
      p->loop = loop;
      p->next = registry;
      registry = p;
    }
  }
  if (p) {
    p->refs++;
    if (user) p->user_refs++;
  }
  pthread_rwlock_unlock(&registry_lock);
  return rc;
}

static int release(uv_loop_t *loop, bool user) {
  pthread_rwlock_wrlock(&registry_lock);
  post_loop *p = find(loop);
  if (!p || (user && p->user_refs == 0)) {
    pthread_rwlock_unlock(&registry_lock);
    return RS_ERR_INVALID_ARGUMENT;
  }
  if (user) p->user_refs--;
  bool last = --p->refs == 0;
  if (last) {
    post_loop **pp = &registry;
    while (*pp != p) pp = &(*pp)->next;
    *pp = p->next;
    p->unlinked = true;
  }
  pthread_rwlock_unlock(&registry_lock);
  if (!last) {
    run_batch(p, SIZE_MAX);
    return 0;
  }
  /* Unlinked: nothing can be added any more, so this ends. */
  while (run_batch(p, SIZE_MAX)) {
  }
  uv_close((uv_handle_t *)&p->async, on_closed);
  return 0;
}

int rt_post_acquire(uv_loop_t *loop) {
  return acquire(loop, false);
}

void rt_post_release(uv_loop_t *loop) {
  release(loop, false);
}

int rs_runtime_loop_init(uv_loop_t *loop) {
  return loop ? acquire(loop, true) : RS_ERR_INVALID_ARGUMENT;
}

int rs_runtime_loop_close(uv_loop_t *loop) {
  return loop ? release(loop, true) : RS_ERR_INVALID_ARGUMENT;
}

int rs_runtime_post(uv_loop_t *loop, void (*fn)(void *arg), void *arg) {
  if (!loop || !fn) return RS_ERR_INVALID_ARGUMENT;
  post_item *it = malloc(sizeof *it);
  if (!it) return RS_ERR_NOMEM;
  it->next = NULL;
  it->fn = fn;
  it->arg = arg;
  pthread_rwlock_rdlock(&registry_lock);
  post_loop *p = find(loop);
  if (!p) {
    pthread_rwlock_unlock(&registry_lock);
    free(it);
    return RS_ERR_CLOSED;
  }
  pthread_mutex_lock(&p->mu);
  bool was_empty = !p->head;
  if (p->tail)
    p->tail->next = it;
  else
    p->head = it;
  p->tail = it;
  pthread_mutex_unlock(&p->mu);
  if (was_empty) uv_async_send(&p->async);
  pthread_rwlock_unlock(&registry_lock);
  return 0;
}
