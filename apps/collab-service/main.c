/*
 * collab-service: the collaborative board's backend (docs/COLLAB.md). Options, the engine (in
 * memory with a fresh epoch, or Redis with --redis), one loop with the server, a one-second tick
 * for idle members, and a clean stop on SIGINT/SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <rsocket/runtime.h>

#include "service.h"
#include "redis_link.h"
#include "store_redis.h"

#define DEFAULT_LISTEN "tcp://127.0.0.1:7001"

typedef struct app {
  collab_service *svc;
  collab_store *store;
  rs_server *server;
  uv_signal_t sigint, sigterm;
  uv_timer_t tick;
} app;

static void usage(FILE *f) {
  fprintf(
      f, "usage: collab-service [--listen URI] [--redis URL] [--history N] [limits...]\n"
         "The collaborative board's RSocket service: board.join, board.ops, board.edit,\n"
         "board.cursor, board.presence, chat.post, chat.feed (docs/COLLAB.md), usually behind\n"
         "rsocket-gateway. Boards live in memory (a restart starts a new epoch), or in Redis\n"
         "with --redis, where several instances share them.\n"
         "\n"
         "  --listen URI             tcp://, tls://, ws:// or wss:// (default " DEFAULT_LISTEN ")\n"
         "  --redis URL              keep boards in Redis: "
         "redis://[[user]:password@]host[:port][/db]\n"
         "                           (requests fail with \"storage unavailable\" while it is not\n"
         "                           reachable; the service reconnects by itself)\n"
         "  --redis-prefix PREFIX    of every Redis key and channel (default collab:)\n"
         "  --history N              ops and chat messages kept per board (default 1000)\n"
         "  --max-boards N           boards in the process (default 1000)\n"
         "  --max-shapes N           shapes per board (default 1000)\n"
         "  --max-members N          members per board (default 100)\n"
         "  --max-text BYTES         text of a shape or a chat message (default 4000)\n"
         "  --member-timeout SECONDS a member with no open stream leaves after this (default 30)\n"
         "  --resume SECONDS         allow RSocket resumption: a connection that is cut keeps\n"
         "                           its session (streams, members) this long for its client\n"
         "                           to resume it (rsocket-gateway --backend-resume; default off)\n"
         "  --cert FILE, --key FILE  TLS certificate and key for tls:// and wss://\n"
         "  -h, --help               this help;  -v, --version: print the version\n"
         "\n"
         "Prints \"listening on URI\" once ready; SIGINT or SIGTERM stops (open streams get 5 s).\n"
         "One loop serves every board (no worker threads: ops are ordered on it).\n"
         "Exit status: 0 stopped, 1 cannot listen, 2 usage.\n");
}

static int usage_error(const char *msg, const char *arg) {
  fprintf(stderr, "collab-service: %s%s\n(collab-service --help for usage)\n", msg, arg);
  return 2;
}

static int number(const char *s, size_t lo, size_t hi, size_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *end || *s == '-' || v < lo || v > hi) return -1;
  *out = (size_t)v;
  return 0;
}

/* 16 hex digits from the system's random source (the clock if it fails). */
static void draw_epoch(char *out, size_t n) {
  uint64_t r;
  if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    r = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec;
  }
  snprintf(out, n, "%016llx", (unsigned long long)r);
}

static void on_tick(uv_timer_t *t) {
  app *a = t->data;
  collab_service_tick(a->svc, uv_now(t->loop));
}

/* The server's user pointer is the router (the connections' too): the app is one per process. */
static app *the_app;

static void on_disconnect(rs_server *s, rs_conn *conn, void *conn_user, void *server_user) {
  (void)s, (void)conn_user, (void)server_user;
  collab_service_conn_gone(the_app->svc, conn);
}

static void on_drained(rs_conn *conn, void *user) {
  (void)user;
  collab_service_conn_drained(the_app->svc, conn);
}

static void on_stopped(void *arg) {
  app *a = arg;
  if (a->store->ops->close) a->store->ops->close(a->store);
  uv_close((uv_handle_t *)&a->sigint, NULL);
  uv_close((uv_handle_t *)&a->sigterm, NULL);
  uv_close((uv_handle_t *)&a->tick, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  app *a = h->data;
  uv_signal_stop(&a->sigint); /* the default action again: a second signal stops at once */
  uv_signal_stop(&a->sigterm);
  collab_service_stop(a->svc);
  rs_server_stop(a->server, true, on_stopped, a);
}

int main(int argc, char **argv) {
  const char *listen = DEFAULT_LISTEN, *cert = NULL, *key = NULL;
  collab_redis_options ro;
  collab_redis_options_default(&ro);
  collab_limits lim;
  collab_limits_default(&lim);
  size_t timeout_s = 30, resume_s = 0;
  enum {
    O_LISTEN = 256,
    O_HISTORY,
    O_BOARDS,
    O_SHAPES,
    O_MEMBERS,
    O_TEXT,
    O_TIMEOUT,
    O_CERT,
    O_KEY,
    O_RESUME,
    O_REDIS,
    O_PREFIX
  };
  static const struct option opts[] = {
      {"listen", required_argument, NULL, O_LISTEN},
      {"history", required_argument, NULL, O_HISTORY},
      {"max-boards", required_argument, NULL, O_BOARDS},
      {"max-shapes", required_argument, NULL, O_SHAPES},
      {"max-members", required_argument, NULL, O_MEMBERS},
      {"max-text", required_argument, NULL, O_TEXT},
      {"member-timeout", required_argument, NULL, O_TIMEOUT},
      {"cert", required_argument, NULL, O_CERT},
      {"key", required_argument, NULL, O_KEY},
      {"resume", required_argument, NULL, O_RESUME},
      {"redis", required_argument, NULL, O_REDIS},
      {"redis-prefix", required_argument, NULL, O_PREFIX},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'v'},
      {NULL, 0, NULL, 0},
  };
  int ch;
  while ((ch = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
    size_t *target = NULL, lo = 1, hi = 1000000;
    switch (ch) {
    case 'h': usage(stdout); return 0;
    case 'v': printf("collab-service (rsocket-c) %s\n", RS_VERSION_STRING); return 0;
    case O_LISTEN: listen = optarg; break;
    case O_CERT: cert = optarg; break;
    case O_KEY: key = optarg; break;
    case O_REDIS: ro.url = optarg; break;
    case O_PREFIX: ro.prefix = optarg; break;
    case O_HISTORY: target = &lim.history; break;
    case O_BOARDS: target = &lim.max_boards; break;
    case O_SHAPES: target = &lim.max_shapes; break;
    case O_MEMBERS: target = &lim.max_members; break;
    case O_TEXT: target = &lim.max_text, hi = 1000000; break;
    case O_TIMEOUT: target = &timeout_s, lo = 0, hi = 86400; break;
    case O_RESUME: target = &resume_s, lo = 1, hi = 86400; break;
    default: return usage_error("bad option", "");
    }
    if (target && number(optarg, lo, hi, target) < 0) {
      char msg[120];
      snprintf(msg, sizeof msg, "--%s wants a whole number from %zu to %zu, not ",
               opts[ch - O_LISTEN].name, lo, hi);
      return usage_error(msg, optarg);
    }
  }
  if (optind < argc) return usage_error("unexpected argument ", argv[optind]);

  char err[300];
  if (ro.url) {
    rlink_url u;
    if (rlink_url_parse(ro.url, &u, err, sizeof err) < 0) return usage_error(err, "");
  }
  if (!collab_redis_prefix_ok(ro.prefix))
    return usage_error("--redis-prefix wants 1 to 64 letters, digits, ':', '.', '_' or '-', not ",
                       ro.prefix);

  rs_runtime_tune_malloc();
  uv_loop_t loop;
  uv_loop_init(&loop);
  app a = {0};
  if (ro.url) {
    a.store = collab_store_redis_new(&lim, &loop, &ro, err, sizeof err);
  } else {
    char epoch[17];
    draw_epoch(epoch, sizeof epoch);
    a.store = collab_store_mem_new(&lim, epoch);
    snprintf(err, sizeof err, "out of memory");
  }
  a.svc = a.store ? collab_service_new(a.store, (uint64_t)timeout_s * 1000) : NULL;
  rs_router *router = rs_router_new(NULL);
  if (!a.svc || !router || collab_service_routes(a.svc, router) != 0) {
    fprintf(stderr, "collab-service: %s\n", a.store ? "out of memory" : err);
    return 1;
  }

  rs_server_options o;
  rs_server_options_default(&o);
  o.uri = listen;
  o.cert_file = cert;
  o.key_file = key;
  o.drain_timeout_ms = 5000; /* subscriptions never end by themselves */
  if (resume_s) {
    o.settings.resume = true;
    o.settings.resume_session_timeout_ms = (uint32_t)resume_s * 1000;
  }
  rs_router_server_options(router, &o);
  o.on_disconnect = on_disconnect;
  o.on_drained = on_drained;
  the_app = &a;

  int rc = rs_server_start(&a.server, &loop, &o, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "collab-service: cannot listen on %s: %s\n", listen, err);
    if (a.store->ops->close) a.store->ops->close(a.store);
    uv_run(&loop, UV_RUN_DEFAULT); /* the engine's handles close */
  } else {
    uv_signal_init(&loop, &a.sigint);
    uv_signal_init(&loop, &a.sigterm);
    uv_timer_init(&loop, &a.tick);
    a.sigint.data = a.sigterm.data = a.tick.data = &a;
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_timer_start(&a.tick, on_tick, 1000, 1000);
    collab_service_tick(a.svc, uv_now(&loop));
    signal(SIGPIPE, SIG_IGN);
    printf("listening on %s\n", rs_server_uri(a.server));
    fflush(stdout);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_loop_close(&loop);
  collab_service_free(a.svc);
  a.store->ops->free(a.store);
  rs_router_free(router);
  return rc ? 1 : 0;
}
