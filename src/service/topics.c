/*
 * Topics: fan-out from a name to the feeds subscribed to it (a chat room's subscribers, a
 * board's). A chained hash table of topics, each with a doubly-linked list of subscribers, so
 * publishing costs one hash plus one push per subscriber, and a subscriber leaves in O(1) when
 * its stream ends (the feed's owner hook, before the application's on_close). A topic exists
 * while it has subscribers.
 */
#include <string.h>

#include "service/service_internal.h"

typedef struct topic topic;

typedef struct topic_sub {
  struct topic_sub *next, *prev;
  rs_feed *feed;
  topic *topic;
  rs_topics *owner;
} topic_sub;

struct topic {
  topic *next; /* bucket chain */
  uint32_t hash;
  topic_sub *subs;
  size_t count, len;
  char name[];
};

struct rs_topics {
  rs_mem mem;
  topic **buckets;
  size_t nbuckets; /* a power of two, or 0 */
  size_t ntopics;
};

rs_topics *rs_topics_new(const rs_mem *mem) {
  if (!mem) mem = rs_mem_default();
  rs_topics *t = mem->calloc(1, sizeof *t, mem->user);
  if (t) t->mem = *mem;
  return t;
}

void rs_topics_free(rs_topics *t) {
  if (!t) return;
  for (size_t i = 0; i < t->nbuckets; i++) {
    while (t->buckets[i]) {
      topic *tp = t->buckets[i];
      t->buckets[i] = tp->next;
      while (tp->subs) { /* streams still open keep their feeds, without us */
        topic_sub *s = tp->subs;
        tp->subs = s->next;
        rs__feed_set_owner(s->feed, NULL, NULL);
        t->mem.free(s, t->mem.user);
      }
      t->mem.free(tp, t->mem.user);
    }
  }
  t->mem.free(t->buckets, t->mem.user);
  t->mem.free(t, t->mem.user);
}

/* The slot holding `name`'s topic (or the NULL at the end of its chain). */
static topic **slot_of(const rs_topics *t, const char *name, size_t len, uint32_t hash) {
  if (!t->nbuckets) return NULL;
  topic **p = &t->buckets[hash & (t->nbuckets - 1)];
  while (*p && !((*p)->hash == hash && (*p)->len == len && memcmp((*p)->name, name, len) == 0))
    p = &(*p)->next;
  return p;
}

static topic *find(const rs_topics *t, const char *name) {
  if (!t || !name) return NULL;
  size_t len = strlen(name);
  topic **p = slot_of(t, name, len, rs__svc_hash((const uint8_t *)name, len));
  return p ? *p : NULL;
}

static int grow(rs_topics *t) {
  size_t n = t->nbuckets ? t->nbuckets * 2 : 16;
  topic **b = t->mem.calloc(n, sizeof *b, t->mem.user);
  if (!b) return RS_ERR_NOMEM;
  for (size_t i = 0; i < t->nbuckets; i++) {
    while (t->buckets[i]) {
      topic *tp = t->buckets[i];
      t->buckets[i] = tp->next;
      tp->next = b[tp->hash & (n - 1)];
      b[tp->hash & (n - 1)] = tp;
    }
  }
  t->mem.free(t->buckets, t->mem.user);
  t->buckets = b;
  t->nbuckets = n;
  return 0;
}

/* Unlinks a subscriber; the topic goes when its last one does. */
static void leave(rs_feed *feed, void *owner) {
  (void)feed;
  topic_sub *s = owner;
  topic *tp = s->topic;
  rs_topics *t = s->owner;
  if (s->prev)
    s->prev->next = s->next;
  else
    tp->subs = s->next;
  if (s->next) s->next->prev = s->prev;
  t->mem.free(s, t->mem.user);
  if (--tp->count) return;
  *slot_of(t, tp->name, tp->len, tp->hash) = tp->next;
  t->ntopics--;
  t->mem.free(tp, t->mem.user);
}

int rs_topics_subscribe(rs_topics *t, const char *name, rs_conn *conn, uint32_t stream_id,
                        const rs_feed_options *o) {
  if (!t || !name || !*name || !conn) return RS_ERR_INVALID_ARGUMENT;
  if (t->ntopics >= t->nbuckets && grow(t) != 0) return RS_ERR_NOMEM;
  size_t len = strlen(name);
  uint32_t hash = rs__svc_hash((const uint8_t *)name, len);
  topic **slot = slot_of(t, name, len, hash), *tp = *slot;
  topic_sub *s = t->mem.calloc(1, sizeof *s, t->mem.user);
  if (!s) return RS_ERR_NOMEM;
  if (!tp) {
    tp = t->mem.malloc(sizeof *tp + len + 1, t->mem.user);
    if (!tp) {
      t->mem.free(s, t->mem.user);
      return RS_ERR_NOMEM;
    }
    memset(tp, 0, sizeof *tp);
    memcpy(tp->name, name, len + 1);
    tp->len = len;
    tp->hash = hash;
  }
  int rc = rs_feed_new(&s->feed, conn, stream_id, o);
  if (rc != 0) {
    if (!tp->count) t->mem.free(tp, t->mem.user);
    t->mem.free(s, t->mem.user);
    return rc;
  }
  if (!tp->count) { /* a new topic: into its chain */
    *slot = tp;
    t->ntopics++;
  }
  s->topic = tp;
  s->owner = t;
  s->next = tp->subs;
  if (tp->subs) tp->subs->prev = s;
  tp->subs = s;
  tp->count++;
  rs__feed_set_owner(s->feed, leave, s);
  return 0;
}

rs_ssize rs_topics_publish(rs_topics *t, const char *name, const rs_payload *p) {
  if (!t || !name || !p) return RS_ERR_INVALID_ARGUMENT;
  topic *tp = find(t, name);
  rs_ssize n = 0;
  /* A push never unlinks a subscriber (a feed leaves from the engine's callbacks only). */
  for (topic_sub *s = tp ? tp->subs : NULL; s; s = s->next)
    if (rs_feed_push(s->feed, p) == 0) n++;
  return n;
}

rs_ssize rs_topics_publish_data(rs_topics *t, const char *name, const void *data, size_t len) {
  rs_payload p = {false, {NULL, 0}, {data, len}};
  return rs_topics_publish(t, name, &p);
}

size_t rs_topics_subscribers(const rs_topics *t, const char *name) {
  topic *tp = find(t, name);
  return tp ? tp->count : 0;
}

size_t rs_topics_count(const rs_topics *t) {
  return t ? t->ntopics : 0;
}
