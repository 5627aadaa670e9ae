/*
 * The Redis engine's link to Redis: two hiredis connections on the loop, one for commands and
 * scripts, one subscribed to the key prefix's event channels. It connects, loads the scripts
 * (redis_scripts.c), reads (or creates) the epoch and subscribes before it says it is ready;
 * when either connection fails it frees both, says why, and reconnects with jittered backoff.
 * Commands are only sent while ready: a caller learns at once when they cannot be.
 */
#ifndef COLLAB_REDIS_LINK_H
#define COLLAB_REDIS_LINK_H

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Where Redis is: redis://[[user]:password@]host[:port][/db]. */
typedef struct rlink_url {
  char host[256];
  int port;
  int db;
  char user[128], password[256]; /* empty: no AUTH */
} rlink_url;

/* Parses `url`: 0, or -1 with the reason in err. */
int rlink_url_parse(const char *url, rlink_url *out, char *err, size_t errlen);

/* The scripts (redis_scripts.c). */
typedef enum rlink_script {
  RLS_OPEN = 0,
  RLS_EDIT,
  RLS_APPEND,
  RLS_TAIL,
  RLS_PRESENCE,
  RLS_MEMBER,
  RLS_COUNT
} rlink_script;
extern const char *const collab_redis_scripts[RLS_COUNT];

typedef struct rlink rlink;

typedef struct rlink_callbacks {
  /* Connected, the scripts loaded, subscribed: commands may go. `epoch` is the prefix's epoch
   * key, created with a random value when it was missing. */
  void (*ready)(const char *epoch, void *user);
  /* Not connected any more (or the connection attempt failed): every command in flight has had
   * its NULL reply already. */
  void (*down)(const char *reason, void *user);
  /* A message on one of the prefix's event channels ("<prefix>ev:<board>"). */
  void (*message)(const char *channel, size_t clen, const char *msg, size_t mlen, void *user);
  void *user;
} rlink_callbacks;

typedef struct rlink_options {
  const char *prefix;  /* key prefix, e.g. "collab:" */
  uint32_t timeout_ms; /* connecting, and a command without an answer, fails after it */
  uint32_t backoff_ms; /* first reconnect delay (doubling, at most max_backoff_ms, +-50%) */
  uint32_t max_backoff_ms;
  void (*log)(const char *line, void *user); /* one line per state change; NULL: stderr */
  void *log_user;
} rlink_options;

/* Starts connecting at once. NULL when out of memory. */
rlink *rlink_new(uv_loop_t *loop, const rlink_url *url, const rlink_options *o,
                 const rlink_callbacks *cb);
bool rlink_ready(const rlink *l);
/* Why the link is not ready ("connecting", "Connection refused"...). */
const char *rlink_reason(const rlink *l);
/* "127.0.0.1:6379/0", for messages. */
const char *rlink_name(const rlink *l);

/* A command being built: rlink_command or rlink_script, then arguments, then rlink_send. */
typedef struct rlink_cmd rlink_cmd;
/* The reply (NULL: none will come, the link went down); hiredis frees it after the call. */
typedef void (*rlink_reply_fn)(redisReply *reply, void *arg);

rlink_cmd *rlink_command(const char *name);
/* EVALSHA of script `s` with `nkeys` keys (the first nkeys arguments added): EVAL instead when
 * Redis answers NOSCRIPT (its script cache was flushed). */
rlink_cmd *rlink_script_cmd(rlink_script s, int nkeys);
void rlink_arg(rlink_cmd *c, const char *s, size_t len);
void rlink_args(rlink_cmd *c, const char *s); /* a NUL-terminated argument */
void rlink_argf(rlink_cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sends (and frees) the command: 0, then fn is called exactly once, later; or -1 when the link
 * is not ready or memory ran out (fn is not called). A NULL command (out of memory while
 * building) is -1. fn may be NULL. */
int rlink_send(rlink *l, rlink_cmd *c, rlink_reply_fn fn, void *arg);

/* Drops both connections and connects again at once (the epoch key vanished: the setup
 * creates a new one). `reason` is logged. */
void rlink_reconnect(rlink *l, const char *reason);

/* Disconnects for good: commands in flight get their NULL reply before it returns. */
void rlink_close(rlink *l);
/* Frees the link (after rlink_close, once the loop has closed its handles). */
void rlink_free(rlink *l);

#endif
