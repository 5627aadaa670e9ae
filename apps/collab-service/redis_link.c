/*
 * The Redis engine's two connections (redis_link.h). States: DOWN (waiting to reconnect),
 * CONNECTING (resolving, connecting, setting up; requests are refused meanwhile), READY, CLOSED.
 * One timer serves each state: the reconnect delay, the connect deadline, the watchdog that
 * fails a link whose commands get no answer (hiredis 0.14 has no command timeouts; a Redis that
 * hangs would otherwise hold requests for ever).
 */
#include "redis_link.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <time.h>

#include <hiredis/async.h>

#include "redis_uv.h"

typedef enum lstate { L_DOWN, L_CONNECTING, L_READY, L_CLOSED } lstate;

struct rlink_cmd {
  rlink *l;
  int argc, cap;
  char **argv;
  size_t *lens;
  int script; /* rlink_script, or -1 */
  bool retried, broken;
  rlink_reply_fn fn;
  void *arg;
};

/* A setup command's reply tells which step it was. */
typedef enum step_kind { STEP_AUTH, STEP_SELECT, STEP_LOAD, STEP_SETNX, STEP_GET } step_kind;
typedef struct step {
  rlink *l;
  step_kind kind;
  int script;
} step;

struct rlink {
  uv_loop_t *loop;
  rlink_url url;
  rlink_options o;
  rlink_callbacks cb;
  lstate state;
  redisAsyncContext *cmd, *sub;
  uv_timer_t timer;
  uv_getaddrinfo_t gai;
  bool resolving;
  char ip[INET6_ADDRSTRLEN];
  char name[300];
  char prefix[65];
  char reason[300];
  char epoch[80];
  char sha[RLS_COUNT][41];
  /* Setup commands' steps: 0 AUTH, 1 SELECT, 2.. the scripts, then SET NX, GET, the events'
   * AUTH. */
  step steps[RLS_COUNT + 5];
  bool cmd_done, subscribed;
  bool ever_ready, told_down;
  bool draining;  /* fail() reads the events that arrived before the failure */
  bool in_events; /* inside the events connection's callback (not to be read again) */
  unsigned attempts;
  size_t inflight;
  uint64_t progress; /* loop time of the last answer (or of a send while none was awaited) */
  uint64_t rnd;
};

/* ---- URL ---- */

static int url_fail(char *err, size_t errlen, const char *why) {
  snprintf(err, errlen, "bad --redis URL: %s (redis://[[user]:password@]host[:port][/db])", why);
  return -1;
}

int rlink_url_parse(const char *url, rlink_url *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  out->port = 6379;
  if (strncmp(url, "redis://", 8)) return url_fail(err, errlen, "it must start with redis://");
  const char *p = url + 8, *at = strrchr(p, '@');
  if (at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    size_t ulen = colon ? (size_t)(colon - p) : 0;
    const char *pw = colon ? colon + 1 : p;
    size_t plen = (size_t)(at - pw);
    if (ulen >= sizeof out->user || plen >= sizeof out->password || plen == 0)
      return url_fail(err, errlen, "bad user or password");
    memcpy(out->user, p, ulen);
    memcpy(out->password, pw, plen);
    p = at + 1;
  }
  const char *host = p, *hend;
  if (*p == '[') { /* [IPv6] */
    hend = strchr(p, ']');
    if (!hend) return url_fail(err, errlen, "unclosed [");
    host = p + 1;
    p = hend + 1;
  } else {
    hend = p + strcspn(p, ":/");
    p = hend;
  }
  size_t hlen = (size_t)(hend - host);
  if (hlen == 0 || hlen >= sizeof out->host) return url_fail(err, errlen, "no host");
  memcpy(out->host, host, hlen);
  char *end;
  if (*p == ':') {
    errno = 0;
    long port = strtol(p + 1, &end, 10);
    if (errno || end == p + 1 || port < 1 || port > 65535 || (*end && *end != '/'))
      return url_fail(err, errlen, "bad port");
    out->port = (int)port;
    p = end;
  }
  if (*p == '/' && p[1]) {
    errno = 0;
    long db = strtol(p + 1, &end, 10);
    if (errno || end == p + 1 || *end || db < 0 || db > 65535)
      return url_fail(err, errlen, "bad database number");
    out->db = (int)db;
  } else if (*p && strcmp(p, "/")) {
    return url_fail(err, errlen, "unexpected text after the host");
  }
  return 0;
}

/* ---- small things ---- */

static void say(rlink *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(rlink *l, const char *fmt, ...) {
  char line[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (l->o.log)
    l->o.log(line, l->o.log_user);
  else
    fprintf(stderr, "collab-service: %s\n", line);
}

static uint64_t next_random(rlink *l) {
  l->rnd ^= l->rnd << 13, l->rnd ^= l->rnd >> 7, l->rnd ^= l->rnd << 17;
  return l->rnd;
}

bool rlink_ready(const rlink *l) {
  return l->state == L_READY;
}

const char *rlink_reason(const rlink *l) {
  return l->reason;
}

const char *rlink_name(const rlink *l) {
  return l->name;
}

/* ---- commands ---- */

rlink_cmd *rlink_command(const char *name) {
  rlink_cmd *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->script = -1;
  rlink_args(c, name);
  return c;
}

rlink_cmd *rlink_script_cmd(rlink_script s, int nkeys) {
  rlink_cmd *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->script = (int)s;
  rlink_args(c, "EVALSHA");
  rlink_args(c, ""); /* the sha, known when sent */
  rlink_argf(c, "%d", nkeys);
  return c;
}

void rlink_arg(rlink_cmd *c, const char *s, size_t len) {
  if (!c || c->broken) return;
  if (c->argc == c->cap) {
    int cap = c->cap ? c->cap * 2 : 16;
    char **argv = realloc(c->argv, (size_t)cap * sizeof *argv);
    if (argv) c->argv = argv;
    size_t *lens = argv ? realloc(c->lens, (size_t)cap * sizeof *lens) : NULL;
    if (lens) c->lens = lens;
    if (!argv || !lens) {
      c->broken = true;
      return;
    }
    c->cap = cap;
  }
  char *copy = malloc(len + 1);
  if (!copy) {
    c->broken = true;
    return;
  }
  memcpy(copy, s, len);
  copy[len] = 0;
  c->argv[c->argc] = copy;
  c->lens[c->argc++] = len;
}

void rlink_args(rlink_cmd *c, const char *s) {
  rlink_arg(c, s, strlen(s));
}

void rlink_argf(rlink_cmd *c, const char *fmt, ...) {
  char buf[512]; /* keys and channels: a 64-byte prefix and a 64-byte board name fit */
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof buf) {
    if (c) c->broken = true;
    return;
  }
  rlink_arg(c, buf, (size_t)n);
}

static void cmd_free(rlink_cmd *c) {
  for (int i = 0; i < c->argc; i++) free(c->argv[i]);
  free(c->argv);
  free(c->lens);
  free(c);
}

static void replace_arg(rlink_cmd *c, int i, const char *s) {
  char *copy = strdup(s);
  if (!copy) {
    c->broken = true;
    return;
  }
  free(c->argv[i]);
  c->argv[i] = copy;
  c->lens[i] = strlen(s);
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata);

static int submit(rlink *l, rlink_cmd *c) {
  if (c->broken || !l->cmd) return -1;
  if (redisAsyncCommandArgv(l->cmd, on_reply, c, c->argc, (const char **)c->argv, c->lens) !=
      REDIS_OK)
    return -1;
  if (l->inflight++ == 0) l->progress = uv_now(l->loop);
  return 0;
}

int rlink_send(rlink *l, rlink_cmd *c, rlink_reply_fn fn, void *arg) {
  if (!c) return -1;
  if (l->state != L_READY) {
    cmd_free(c);
    return -1;
  }
  c->l = l, c->fn = fn, c->arg = arg;
  if (c->script >= 0) replace_arg(c, 1, l->sha[c->script]);
  if (submit(l, c) < 0) {
    cmd_free(c);
    return -1;
  }
  return 0;
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata) {
  (void)ac;
  rlink_cmd *c = privdata;
  rlink *l = c->l;
  redisReply *reply = r;
  l->inflight--;
  l->progress = uv_now(l->loop);
  /* The script cache was flushed (SCRIPT FLUSH, a failover): the script itself, once. */
  if (reply && reply->type == REDIS_REPLY_ERROR && c->script >= 0 && !c->retried &&
      !strncmp(reply->str, "NOSCRIPT", 8) && l->state == L_READY) {
    c->retried = true;
    replace_arg(c, 0, "EVAL");
    replace_arg(c, 1, collab_redis_scripts[c->script]);
    if (submit(l, c) == 0) return;
    reply = NULL;
  }
  if (c->fn) c->fn(reply, c->arg);
  cmd_free(c);
}

/* ---- the connection's life ---- */

static void connect_start(rlink *l);
static void on_timer(uv_timer_t *t);

/* Frees both connections: their commands get NULL replies now (or, for the one whose callback
 * is running, as soon as it returns). */
static void drop_contexts(rlink *l) {
  redisAsyncContext *cmd = l->cmd, *sub = l->sub;
  l->cmd = l->sub = NULL;
  if (cmd) redisAsyncFree(cmd);
  if (sub) redisAsyncFree(sub);
}

/*
 * Delivers the events already received on the events connection, before it is dropped with the
 * link. When Redis goes away, both connections see their end in the same loop iteration; if the
 * command connection's comes first, the items Redis published just before (an edit whose answer
 * another instance got) would otherwise be lost with the socket's unread bytes, and this
 * instance's followers would never see them (the epoch they belong to may be lost with Redis).
 * Reads only what is there (bounded), never waits.
 */
static void drain_events(rlink *l) {
  l->draining = true;
  for (int i = 0; i < 64 && l->sub && !l->in_events; i++) {
    int avail = 0;
    if (ioctl(l->sub->c.fd, FIONREAD, &avail) < 0 || avail <= 0) break;
    redisAsyncHandleRead(l->sub); /* at its end, context_gone clears l->sub */
  }
  l->draining = false;
}

static void fail(rlink *l, const char *reason) {
  if (l->state == L_DOWN || l->state == L_CLOSED) return;
  bool was_ready = l->state == L_READY;
  l->state = L_DOWN;
  snprintf(l->reason, sizeof l->reason, "%s", reason);
  if (was_ready) drain_events(l);
  drop_contexts(l);
  if (was_ready)
    say(l, "redis %s: connection lost (%s); reconnecting", l->name, l->reason);
  else if (!l->told_down)
    say(l, "redis %s: unavailable (%s); retrying", l->name, l->reason);
  l->told_down = true;
  /* Jittered exponential backoff: 0.5 to 1.5 times base * 2^attempts, capped. */
  uint64_t delay = l->o.backoff_ms;
  for (unsigned i = 0; i < l->attempts && delay < l->o.max_backoff_ms; i++) delay *= 2;
  if (delay > l->o.max_backoff_ms) delay = l->o.max_backoff_ms;
  delay = delay / 2 + next_random(l) % (delay + 1);
  l->attempts++;
  uv_timer_start(&l->timer, on_timer, was_ready ? 0 : delay, 0);
  if (l->cb.down) l->cb.down(l->reason, l->cb.user);
}

static void maybe_ready(rlink *l) {
  if (l->state != L_CONNECTING || !l->cmd_done || !l->subscribed) return;
  l->state = L_READY;
  l->attempts = 0;
  l->told_down = false;
  snprintf(l->reason, sizeof l->reason, "ready");
  say(l, "redis %s: connected%s (epoch %s)", l->name, l->ever_ready ? " again" : "", l->epoch);
  l->ever_ready = true;
  l->progress = uv_now(l->loop);
  uv_timer_start(&l->timer, on_timer, 1000, 1000);
  if (l->cb.ready) l->cb.ready(l->epoch, l->cb.user);
}

static void on_timer(uv_timer_t *t) {
  rlink *l = t->data;
  char why[120];
  switch (l->state) {
  case L_DOWN: connect_start(l); break;
  case L_CONNECTING:
    snprintf(why, sizeof why, "no connection after %u ms", l->o.timeout_ms);
    fail(l, why);
    break;
  case L_READY:
    if (l->inflight > 0 && uv_now(l->loop) - l->progress >= l->o.timeout_ms) {
      snprintf(why, sizeof why, "no answer for %u ms", l->o.timeout_ms);
      fail(l, why);
    }
    break;
  case L_CLOSED: break;
  }
}

/* A connection's end, reported by hiredis, which frees the context after the callback. */
static void context_gone(const redisAsyncContext *ac, const char *what) {
  rlink *l = ac->data;
  if (ac == l->cmd)
    l->cmd = NULL;
  else if (ac == l->sub)
    l->sub = NULL;
  else
    return; /* one we dropped ourselves */
  char why[300];
  snprintf(why, sizeof why, "%s%s", what, ac->errstr[0] ? ac->errstr : "closed by the server");
  fail(l, why);
}

static void on_connect(const redisAsyncContext *ac, int status) {
  if (status != REDIS_OK) context_gone(ac, "");
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  (void)status;
  context_gone(ac, "");
}

static void on_setup(redisAsyncContext *ac, void *r, void *privdata) {
  (void)ac;
  step *s = privdata;
  rlink *l = s->l;
  redisReply *reply = r;
  if (!reply || l->state != L_CONNECTING) return;
  char why[300];
  if (reply->type == REDIS_REPLY_ERROR) {
    snprintf(why, sizeof why, "%s", reply->str);
    return fail(l, why);
  }
  if (s->kind == STEP_LOAD) {
    if (reply->type != REDIS_REPLY_STRING || reply->len >= sizeof l->sha[0])
      return fail(l, "SCRIPT LOAD: unexpected reply");
    memcpy(l->sha[s->script], reply->str, reply->len + 1);
  } else if (s->kind == STEP_GET) {
    if (reply->type != REDIS_REPLY_STRING || reply->len == 0 || reply->len >= sizeof l->epoch)
      return fail(l, "the epoch key holds no epoch");
    memcpy(l->epoch, reply->str, reply->len + 1);
    l->cmd_done = true;
    maybe_ready(l);
  }
}

static void psub_reply(rlink *l, redisReply *reply);

static void on_psub(redisAsyncContext *ac, void *r, void *privdata) {
  (void)ac;
  rlink *l = privdata;
  bool outer = !l->in_events;
  l->in_events = true;
  psub_reply(l, r);
  if (outer) l->in_events = false;
}

static void psub_reply(rlink *l, redisReply *reply) {
  if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
  const redisReply *kind = reply->element[0];
  if (kind->type != REDIS_REPLY_STRING) return;
  if (!strcmp(kind->str, "psubscribe")) {
    l->subscribed = true;
    maybe_ready(l);
  } else if (!strcmp(kind->str, "pmessage") && reply->elements == 4 &&
             (l->state == L_READY || l->draining)) {
    const redisReply *ch = reply->element[2], *msg = reply->element[3];
    if (ch->type == REDIS_REPLY_STRING && msg->type == REDIS_REPLY_STRING && l->cb.message)
      l->cb.message(ch->str, ch->len, msg->str, msg->len, l->cb.user);
  }
}

static redisAsyncContext *open_context(rlink *l) {
  redisAsyncContext *ac = redisAsyncConnect(l->ip, l->url.port);
  if (!ac) {
    snprintf(l->reason, sizeof l->reason, "out of memory");
    return NULL;
  }
  if (ac->err) {
    snprintf(l->reason, sizeof l->reason, "%s", ac->errstr);
    redisAsyncFree(ac);
    return NULL;
  }
  ac->data = l;
  if (collab_redis_attach(ac, l->loop) < 0) {
    snprintf(l->reason, sizeof l->reason, "cannot watch the socket");
    redisAsyncFree(ac);
    return NULL;
  }
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  return ac;
}

static void setup(rlink *l, redisAsyncContext *ac, step *s, step_kind kind, int script, int argc,
                  const char **argv) {
  *s = (step){l, kind, script};
  size_t lens[8];
  for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
  redisAsyncCommandArgv(ac, on_setup, s, argc, argv, lens);
}

static void auth(rlink *l, redisAsyncContext *ac, step *s) {
  if (!l->url.password[0]) return;
  const char *two[] = {"AUTH", l->url.password}, *three[] = {"AUTH", l->url.user, l->url.password};
  if (l->url.user[0])
    setup(l, ac, s, STEP_AUTH, 0, 3, three);
  else
    setup(l, ac, s, STEP_AUTH, 0, 2, two);
}

static void open_contexts(rlink *l) {
  l->cmd = open_context(l);
  l->sub = l->cmd ? open_context(l) : NULL;
  if (!l->sub) {
    char why[300];
    snprintf(why, sizeof why, "%s", l->reason);
    return fail(l, why);
  }
  /* Commands: AUTH, SELECT, the scripts, the epoch (created when missing, then read). */
  step *st = l->steps;
  auth(l, l->cmd, &st[0]);
  char db[16], key[96], fresh[17];
  snprintf(db, sizeof db, "%d", l->url.db);
  const char *select[] = {"SELECT", db};
  if (l->url.db) setup(l, l->cmd, &st[1], STEP_SELECT, 0, 2, select);
  for (int i = 0; i < RLS_COUNT; i++) {
    const char *load[] = {"SCRIPT", "LOAD", collab_redis_scripts[i]};
    setup(l, l->cmd, &st[2 + i], STEP_LOAD, i, 3, load);
  }
  snprintf(key, sizeof key, "%sepoch", l->prefix);
  snprintf(fresh, sizeof fresh, "%016llx", (unsigned long long)next_random(l));
  const char *setnx[] = {"SET", key, fresh, "NX"}, *get[] = {"GET", key};
  setup(l, l->cmd, &st[2 + RLS_COUNT], STEP_SETNX, 0, 4, setnx);
  setup(l, l->cmd, &st[3 + RLS_COUNT], STEP_GET, 0, 2, get);
  /* Events: AUTH, then the pattern of every board's channel. */
  auth(l, l->sub, &st[4 + RLS_COUNT]);
  char pattern[96];
  snprintf(pattern, sizeof pattern, "%sev:*", l->prefix);
  const char *psub[] = {"PSUBSCRIBE", pattern};
  size_t plens[] = {10, strlen(pattern)};
  redisAsyncCommandArgv(l->sub, on_psub, l, 2, psub, plens);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  rlink *l = req->data;
  l->resolving = false;
  if (l->state != L_CONNECTING) {
    uv_freeaddrinfo(res);
    return;
  }
  char why[400];
  if (status < 0 || !res) {
    uv_freeaddrinfo(res);
    snprintf(why, sizeof why, "cannot resolve %s: %s", l->url.host, uv_strerror(status));
    return fail(l, why);
  }
  const void *addr = res->ai_family == AF_INET6
                         ? (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr
                         : (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
  inet_ntop(res->ai_family, addr, l->ip, sizeof l->ip);
  uv_freeaddrinfo(res);
  open_contexts(l);
}

/* Resolves the host on the loop's thread pool (hiredis 0.14 would block the loop on it), then
 * opens both connections. */
static void connect_start(rlink *l) {
  l->state = L_CONNECTING;
  l->cmd_done = l->subscribed = false;
  /* The reason stays the last failure's while reconnecting: what a refused request says. */
  uv_timer_start(&l->timer, on_timer, l->o.timeout_ms, 0);
  struct addrinfo hints = {0};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  char port[16];
  snprintf(port, sizeof port, "%d", l->url.port);
  l->gai.data = l;
  int rc = uv_getaddrinfo(l->loop, &l->gai, on_resolved, l->url.host, port, &hints);
  if (rc < 0) {
    char why[200];
    snprintf(why, sizeof why, "cannot resolve %s: %s", l->url.host, uv_strerror(rc));
    return fail(l, why);
  }
  l->resolving = true;
}

rlink *rlink_new(uv_loop_t *loop, const rlink_url *url, const rlink_options *o,
                 const rlink_callbacks *cb) {
  rlink *l = calloc(1, sizeof *l);
  if (!l) return NULL;
  l->loop = loop;
  l->url = *url;
  l->o = *o;
  if (!l->o.timeout_ms) l->o.timeout_ms = 5000;
  if (!l->o.backoff_ms) l->o.backoff_ms = 100;
  if (l->o.max_backoff_ms < l->o.backoff_ms) l->o.max_backoff_ms = 5000;
  l->cb = *cb;
  snprintf(l->prefix, sizeof l->prefix, "%s", o->prefix ? o->prefix : "collab:");
  snprintf(l->name, sizeof l->name, strchr(url->host, ':') ? "[%s]:%d/%d" : "%s:%d/%d", url->host,
           url->port, url->db);
  if (getrandom(&l->rnd, sizeof l->rnd, 0) != (ssize_t)sizeof l->rnd)
    l->rnd = (uint64_t)time(NULL) * 6364136223846793005ull;
  l->rnd |= 1;
  uv_timer_init(loop, &l->timer);
  l->timer.data = l;
  l->state = L_DOWN;
  snprintf(l->reason, sizeof l->reason, "connecting");
  connect_start(l);
  return l;
}

void rlink_reconnect(rlink *l, const char *reason) {
  fail(l, reason);
}

void rlink_close(rlink *l) {
  if (l->state == L_CLOSED) return;
  l->state = L_CLOSED;
  snprintf(l->reason, sizeof l->reason, "stopping");
  drop_contexts(l);
  if (l->resolving) uv_cancel((uv_req_t *)&l->gai);
  uv_close((uv_handle_t *)&l->timer, NULL);
}

void rlink_free(rlink *l) {
  free(l);
}
