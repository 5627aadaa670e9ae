/*
 * rsocket-bench: a load generator for RSocket servers, in the spirit of h2load.
 *
 *   rsocket-bench [-c CONNECTIONS] [-n REQUESTS | -D SECONDS] [-m IN_FLIGHT]
 *                 [--model rr|fnf|stream|channel|ws|gw-req|gw-sub|board] [--size BYTES]
 *                 [--threads N] [--json] URI
 *   rsocket-bench --codec [-D SECONDS] [--json]
 *   rsocket-bench --idle N [--model MODEL] [--sources K] [-D SECONDS] [--json] URI
 */
#define _GNU_SOURCE /* pthread_tryjoin_np */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "rsocket-bench/bench.h"
#include "rsocket/runtime.h"
#include "rsocket/uri.h"

#define BENCH_VERSION RS_VERSION_STRING

enum { EXIT_OK = 0, EXIT_ERRORS = 1, EXIT_USAGE = 2, EXIT_CONNECT = 3 };

uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void worker_error(worker *w, const char *fmt, ...) {
  if (w->first_error[0]) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w->first_error, sizeof w->first_error, fmt, ap);
  va_end(ap);
}

uint64_t worker_start_clock(worker *w) {
  w->start_ns = w->measure_ns = w->end_ns = bench_now_ns();
  if (w->cfg->requests) return 0;
  w->measure_ns += (uint64_t)(w->cfg->warmup_s * 1e9);
  w->deadline_ns = w->measure_ns + (uint64_t)(w->cfg->duration_s * 1e9);
  return (w->deadline_ns - w->start_ns) / 1000000u;
}

bool worker_measuring(const worker *w, uint64_t now) {
  return now >= w->measure_ns && (w->deadline_ns == 0 || now <= w->deadline_ns);
}

static void on_progress(uv_timer_t *t) {
  worker *w = t->data;
  atomic_store_explicit(&w->progress, w->completed, memory_order_relaxed);
}

void worker_progress_start(worker *w) {
  uv_timer_init(&w->loop, &w->progress_timer);
  w->progress_timer.data = w;
  uv_timer_start(&w->progress_timer, on_progress, 200, 200);
  uv_unref((uv_handle_t *)&w->progress_timer);
}

void worker_progress_stop(worker *w) {
  uv_close((uv_handle_t *)&w->progress_timer, NULL);
}

typedef struct probe {
  struct sockaddr_storage *out;
  char *err;
  size_t errlen;
  int status;
} probe;

static void on_probe(uv_tcp_t *tcp, int status, const char *message, void *arg) {
  probe *p = arg;
  p->status = status;
  if (status != 0) {
    snprintf(p->err, p->errlen, "%s", message);
    return;
  }
  int len = sizeof *p->out;
  if (uv_tcp_getpeername(tcp, (struct sockaddr *)p->out, &len) != 0) {
    snprintf(p->err, p->errlen, "cannot read the peer address");
    p->status = -1;
  }
  uv_close((uv_handle_t *)tcp, (uv_close_cb)free);
}

int bench_resolve(const char *host, int port, double timeout_s, struct sockaddr_storage *out,
                  char *err, size_t errlen) {
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) {
    snprintf(err, errlen, "cannot create an event loop");
    return -1;
  }
  probe p = {out, err, errlen, -1};
  rs_connect *c;
  int rc = rs_connect_start(&c, &loop, host, port, (uint32_t)(timeout_s * 1000), on_probe, &p);
  if (rc != 0) snprintf(err, errlen, "cannot connect to %s:%d: %s", host, port, rs_strerror(rc));
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return rc == 0 && p.status == 0 ? 0 : -1;
}

const char *bench_model_name(bench_model m) {
  static const char *names[] = {"rr", "fnf",    "stream", "channel",
                                "ws", "gw-req", "gw-sub", "board"};
  return names[m];
}

static void usage(FILE *f) {
  fprintf(
      f, "usage: rsocket-bench [options] URI\n"
         "       rsocket-bench --codec [-D SECONDS] [--json]\n"
         "       rsocket-bench --floor [-D SECONDS] [--json]\n"
         "       rsocket-bench --idle N [--model MODEL] [--sources K] [--pid PID] [-D SECONDS]\n"
         "                     [--json] URI\n"
         "\n"
         "Load generator for RSocket servers (tcp://, tls://, ws://, wss://). The server must\n"
         "implement the echo contract of `rsocket --server` (request-response echoes, streams\n"
         "repeat the request until cancelled, channels echo every element).\n"
         "\n"
         "Load:\n"
         "  -c, --connections N   connections (default 1)\n"
         "  -n, --requests N      total requests; for --model stream and gw-sub, items (default\n"
         "                        100000)\n"
         "  -D, --duration S      run for S seconds instead of a request count\n"
         "      --warmup S        with -D: run S seconds first without measuring (default 0)\n"
         "  -m, --in-flight N     per connection: requests in flight (rr, ws, gw-req), channel\n"
         "                        elements in flight (channel) or concurrent streams (stream,\n"
         "                        gw-sub); default 1\n"
         "      --model MODEL     rr (request-response, default), fnf (fire-and-forget, then\n"
         "                        one request-response to confirm), stream, channel, ws\n"
         "                        (plain WebSocket echo of binary messages, ws:// only), or\n"
         "                        rsocket-gateway's JSON protocol (ws:// only): gw-req (req\n"
         "                        answered by cfm) or gw-sub (sub with gateway-managed credit,\n"
         "                        counting ind messages); the gateway's backend echoes; or\n"
         "                        board: users of collab-service through the gateway, one\n"
         "                        per connection (-c), joining boards, following their ops\n"
         "                        and editing a note of their own at --rate per second, for\n"
         "                        -D seconds (default 10): latency is op -> delivered to\n"
         "                        each subscriber of the board, and to everyone on it\n"
         "  -s, --size BYTES      payload data size (default 16; gw-*: a JSON string of BYTES)\n"
         "      --route ROUTE     the route of every request: gw-* (default bench.echo); rr,\n"
         "                        fnf, stream, channel: sent as routing metadata (connection\n"
         "                        metadata MIME message/x.rsocket.routing.v0), as a gateway's\n"
         "                        /rsocket needs (default: no metadata)\n"
         "      --window N        stream: credit window, refilled by half (default 4096)\n"
         "      --boards N        board: boards bench-0 .. bench-N-1, users dealt round-robin\n"
         "                        (default 20)\n"
         "      --rate R          board: edits per second per user (default 5)\n"
         "  -t, --threads N       client threads, one event loop each (default 1)\n"
         "  -k, --insecure        tls/wss: do not verify the server certificate\n"
         "      --connect-timeout S  per connection: connecting (every address of the name),\n"
         "                        TLS and WebSocket handshakes, then the server's first answer\n"
         "                        to SETUP, each within S seconds (default 10)\n"
         "      --busy-poll       spin on the event loops instead of sleeping in the kernel\n"
         "                        (lower latency; one busy core per thread)\n"
         "\n"
         "Other modes:\n"
         "      --codec           frame codec micro-benchmark (encode/decode PAYLOAD frames of\n"
         "                        0, 64 and 1024 bytes beside memcpy of the same bytes)\n"
         "      --floor           loopback floor: round trips of 25 bytes over TCP between two\n"
         "                        threads with blocking read/write (no event loop, no protocol)\n"
         "      --idle N          open N idle connections (RSocket over tcp:// or ws://; with\n"
         "                        --model ws, gw-req or gw-sub plain WebSockets that send nothing\n"
         "                        after the upgrade) and hold them for -D seconds (default: until\n"
         "                        SIGINT/SIGTERM), to measure the server's memory per connection\n"
         "      --sources K       --idle: spread connections over source addresses\n"
         "                        127.0.0.1 .. 127.0.0.K (default 8)\n"
         "      --pid PID         --idle: report PID's resident memory per connection (the\n"
         "                        server's, read from /proc before and after connecting)\n"
         "\n"
         "Output:\n"
         "      --json            one JSON object on stdout instead of the text summary\n"
         "      --no-progress     no live progress line (it is shown only on a terminal)\n"
         "  -h, --help            this help\n"
         "  -v, --version         version\n"
         "\n"
         "Latency is measured from sending a request (or channel element) to its answer; for\n"
         "streams, from granting credit (REQUEST_STREAM or REQUEST_N) to the item that used it.\n"
         "Exit status: 0 ok, 1 some requests failed or the run ended short (the first error is\n"
         "also on stderr), 2 usage, 3 no connection could be made.\n");
}

static bool parse_u64(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *end || s[0] == '-') return false;
  *out = v;
  return true;
}

static bool parse_double(const char *s, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end || !(v >= 0) || v > 1e7) return false;
  *out = v;
  return true;
}

/* A route goes into the JSON as it is: nothing that would need escaping. */
static bool route_ok(const char *r) {
  size_t n = strlen(r);
  if (n < 1 || n > 255) return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)r[i] < 0x20 || r[i] == '"' || r[i] == '\\') return false;
  return true;
}

static int bad(const char *fmt, const char *arg) __attribute__((format(printf, 1, 0)));

static int bad(const char *fmt, const char *arg) {
  fprintf(stderr, "rsocket-bench: ");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
  fprintf(stderr, fmt, arg);
#pragma GCC diagnostic pop
  fprintf(stderr, "\n(try rsocket-bench --help)\n");
  return EXIT_USAGE;
}

static void *worker_main(void *arg) {
  worker *w = arg;
  if (w->cfg->model >= MODEL_WS)
    wsload_run(w);
  else
    rsload_run(w);
  return NULL;
}

static void fmt_count(char *out, size_t cap, double v) {
  uint64_t n = (uint64_t)(v + 0.5);
  char digits[32];
  int len = snprintf(digits, sizeof digits, "%" PRIu64, n);
  size_t o = 0;
  for (int i = 0; i < len && o + 2 < cap; i++) {
    if (i > 0 && (len - i) % 3 == 0) out[o++] = ',';
    out[o++] = digits[i];
  }
  out[o] = 0;
}

static json_t *latency_json(const hist *h) {
  static const double qs[] = {0.5, 0.9, 0.99, 0.999};
  static const char *qn[] = {"p50", "p90", "p99", "p99_9"};
  json_t *l = json_object();
  json_object_set_new(l, "min", json_real(h->min / 1e3));
  json_object_set_new(l, "mean", json_real(hist_mean(h) / 1e3));
  for (int i = 0; i < 4; i++)
    json_object_set_new(l, qn[i], json_real(hist_quantile(h, qs[i]) / 1e3));
  json_object_set_new(l, "max", json_real(h->max / 1e3));
  json_object_set_new(l, "samples", json_integer((json_int_t)h->count));
  return l;
}

static void print_latency(const char *what, const hist *h) {
  if (!h->count) return;
  printf("%s (us): min %.1f  mean %.1f  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  "
         "(%" PRIu64 " samples)\n",
         what, h->min / 1e3, hist_mean(h) / 1e3, hist_quantile(h, 0.5) / 1e3,
         hist_quantile(h, 0.9) / 1e3, hist_quantile(h, 0.99) / 1e3, hist_quantile(h, 0.999) / 1e3,
         h->max / 1e3, h->count);
}

static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int main(int argc, char **argv) {
  rs_runtime_tune_malloc();    /* see rsocket/runtime.h */
  rs_runtime_raise_fd_limit(); /* --connections and idle mode open thousands */
  bench_cfg cfg = {.model = MODEL_RR,
                   .connections = 1,
                   .threads = 1,
                   .in_flight = 1,
                   .size = 16,
                   .window = 4096,
                   .route = "bench.echo",
                   .boards = 20,
                   .rate = 5,
                   .connect_timeout_s = 10};
  bool have_n = false, have_d = false, codec = false, no_progress = false, floor_mode = false;
  uint64_t idle = 0, sources = 8, pid = 0;
  enum {
    OPT_MODEL = 256,
    OPT_WARMUP,
    OPT_WINDOW,
    OPT_JSON,
    OPT_CODEC,
    OPT_IDLE,
    OPT_SOURCES,
    OPT_PID,
    OPT_BUSY_POLL,
    OPT_FLOOR,
    OPT_NO_PROGRESS,
    OPT_CONNECT_TIMEOUT,
    OPT_ROUTE,
    OPT_BOARDS,
    OPT_RATE,
  };
  static const struct option longopts[] = {
      {"connections", required_argument, NULL, 'c'},
      {"requests", required_argument, NULL, 'n'},
      {"duration", required_argument, NULL, 'D'},
      {"warmup", required_argument, NULL, OPT_WARMUP},
      {"in-flight", required_argument, NULL, 'm'},
      {"model", required_argument, NULL, OPT_MODEL},
      {"size", required_argument, NULL, 's'},
      {"window", required_argument, NULL, OPT_WINDOW},
      {"route", required_argument, NULL, OPT_ROUTE},
      {"boards", required_argument, NULL, OPT_BOARDS},
      {"rate", required_argument, NULL, OPT_RATE},
      {"threads", required_argument, NULL, 't'},
      {"insecure", no_argument, NULL, 'k'},
      {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
      {"json", no_argument, NULL, OPT_JSON},
      {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
      {"codec", no_argument, NULL, OPT_CODEC},
      {"idle", required_argument, NULL, OPT_IDLE},
      {"sources", required_argument, NULL, OPT_SOURCES},
      {"pid", required_argument, NULL, OPT_PID},
      {"busy-poll", no_argument, NULL, OPT_BUSY_POLL},
      {"floor", no_argument, NULL, OPT_FLOOR},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'v'},
      {NULL, 0, NULL, 0},
  };
  int ch;
  uint64_t u;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, ":c:n:D:m:s:t:khv", longopts, NULL)) != -1) {
    switch (ch) {
    case 'c':
      if (!parse_u64(optarg, &u) || u < 1 || u > 1000000) return bad("bad -c: %s", optarg);
      cfg.connections = (int)u;
      break;
    case 'n':
      if (!parse_u64(optarg, &u) || u < 1) return bad("bad -n: %s", optarg);
      cfg.requests = u;
      have_n = true;
      break;
    case 'D':
      if (!parse_double(optarg, &cfg.duration_s) || cfg.duration_s <= 0)
        return bad("bad -D: %s", optarg);
      have_d = true;
      break;
    case OPT_WARMUP:
      if (!parse_double(optarg, &cfg.warmup_s)) return bad("bad --warmup: %s", optarg);
      break;
    case 'm':
      if (!parse_u64(optarg, &u) || u < 1 || u > 1000000) return bad("bad -m: %s", optarg);
      cfg.in_flight = (int)u;
      break;
    case OPT_MODEL:
      if (!strcmp(optarg, "rr"))
        cfg.model = MODEL_RR;
      else if (!strcmp(optarg, "fnf"))
        cfg.model = MODEL_FNF;
      else if (!strcmp(optarg, "stream"))
        cfg.model = MODEL_STREAM;
      else if (!strcmp(optarg, "channel"))
        cfg.model = MODEL_CHANNEL;
      else if (!strcmp(optarg, "ws"))
        cfg.model = MODEL_WS;
      else if (!strcmp(optarg, "gw-req"))
        cfg.model = MODEL_GW_REQ;
      else if (!strcmp(optarg, "gw-sub"))
        cfg.model = MODEL_GW_SUB;
      else if (!strcmp(optarg, "board"))
        cfg.model = MODEL_BOARD;
      else
        return bad("unknown --model %s (rr, fnf, stream, channel, ws, gw-req, gw-sub, board)",
                   optarg);
      break;
    case OPT_ROUTE:
      if (!route_ok(optarg))
        return bad("bad --route: %s (1 to 255 bytes, no quote, backslash or control character)",
                   optarg);
      cfg.route = optarg;
      cfg.route_given = true;
      break;
    case 's':
      if (!parse_u64(optarg, &u) || u > 16u * 1024 * 1024) return bad("bad --size: %s", optarg);
      cfg.size = (size_t)u;
      break;
    case OPT_WINDOW:
      if (!parse_u64(optarg, &u) || u < 1 || u > 0x7fffffff) return bad("bad --window: %s", optarg);
      cfg.window = (uint32_t)u;
      break;
    case OPT_BOARDS:
      if (!parse_u64(optarg, &u) || u < 1 || u > 1000000) return bad("bad --boards: %s", optarg);
      cfg.boards = (int)u;
      break;
    case OPT_RATE:
      if (!parse_double(optarg, &cfg.rate) || cfg.rate < 0.01 || cfg.rate > 10000)
        return bad("bad --rate: %s (0.01 to 10000 edits per second)", optarg);
      break;
    case 't':
      if (!parse_u64(optarg, &u) || u < 1 || u > 256) return bad("bad --threads: %s", optarg);
      cfg.threads = (int)u;
      break;
    case 'k': cfg.insecure = true; break;
    case OPT_CONNECT_TIMEOUT:
      if (!parse_double(optarg, &cfg.connect_timeout_s) || cfg.connect_timeout_s < 0.001)
        return bad("bad --connect-timeout: %s", optarg);
      break;
    case OPT_JSON: cfg.json = true; break;
    case OPT_NO_PROGRESS: no_progress = true; break;
    case OPT_CODEC: codec = true; break;
    case OPT_IDLE:
      if (!parse_u64(optarg, &idle) || idle < 1 || idle > 1000000)
        return bad("bad --idle: %s", optarg);
      break;
    case OPT_SOURCES:
      if (!parse_u64(optarg, &sources) || sources < 1 || sources > 254)
        return bad("bad --sources: %s (1..254)", optarg);
      break;
    case OPT_FLOOR: floor_mode = true; break;
    case OPT_BUSY_POLL: cfg.busy_poll = true; break;
    case OPT_PID:
      if (!parse_u64(optarg, &pid) || pid < 1 || pid > 0x7fffffff)
        return bad("bad --pid: %s", optarg);
      break;
    case 'h': usage(stdout); return EXIT_OK;
    case 'v': printf("rsocket-bench %s (rsocket-c)\n", BENCH_VERSION); return EXIT_OK;
    case ':': return bad("option %s needs a value", argv[optind - 1]);
    default: return bad("unknown option %s", argv[optind - 1]);
    }
  }
  if (have_n && have_d) return bad("%s", "-n and -D are exclusive");
  if (floor_mode) {
    if (optind != argc) return bad("--floor takes no URI (got %s)", argv[optind]);
    return floor_bench(cfg.json, have_d ? cfg.duration_s : 2);
  }
  if (codec) {
    if (optind != argc) return bad("--codec takes no URI (got %s)", argv[optind]);
    return codec_bench(cfg.json, have_d ? cfg.duration_s : 0.5);
  }
  if (optind >= argc) return bad("%s", "missing URI");
  if (optind + 1 < argc) return bad("unexpected argument %s", argv[optind + 1]);
  cfg.uri = argv[optind];
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  if (idle)
    return idle_run(cfg.uri, (int)idle, (int)sources, have_d ? cfg.duration_s : 0, cfg.json,
                    (long)pid, cfg.connect_timeout_s, cfg.model >= MODEL_WS);
  if (cfg.model >= MODEL_WS && strncmp(cfg.uri, "ws://", 5) != 0)
    return bad("--model ws, gw-req, gw-sub and board need a ws:// URI (got %s)", cfg.uri);
  if (cfg.model == MODEL_BOARD && have_n)
    return bad("%s", "--model board runs for a duration: -D, not -n");
  if (cfg.model == MODEL_BOARD && !have_d) {
    cfg.duration_s = 10;
    have_d = true;
  }
  if (cfg.model >= MODEL_WS) {
    /* Every worker connects to the one address found to accept. (The RSocket models go through
     * rs_client, which races the addresses itself.) */
    rs_uri parsed;
    char err[sizeof cfg.dst_error];
    if (rs_uri_parse(cfg.uri, &parsed, err, sizeof err) != 0) return bad("%s", err);
    if (bench_resolve(parsed.host, parsed.port, cfg.connect_timeout_s, &cfg.dst, err, sizeof err) !=
        0)
      snprintf(cfg.dst_error, sizeof cfg.dst_error, "%s", err); /* every worker reports it */
  }
  if (!have_n && !have_d) cfg.requests = 100000;
  if (cfg.warmup_s > 0 && !have_d) return bad("%s", "--warmup needs -D");
  if (cfg.threads > cfg.connections) cfg.threads = cfg.connections;
  cfg.progress = !no_progress && !cfg.json && isatty(STDERR_FILENO);

  worker *ws = calloc((size_t)cfg.threads, sizeof *ws);
  if (!ws) return EXIT_ERRORS;
  for (int i = 0; i < cfg.threads; i++) {
    worker *w = &ws[i];
    w->id = i;
    w->cfg = &cfg;
    w->nconns = cfg.connections / cfg.threads + (i < cfg.connections % cfg.threads);
    if (cfg.requests) {
      /* Share requests in proportion to connections. */
      w->quota = cfg.requests / (uint64_t)cfg.connections * (uint64_t)w->nconns;
      if (i == 0) w->quota += cfg.requests % (uint64_t)cfg.connections;
    }
    hist_init(&w->lat);
    hist_init(&w->edit_lat);
    hist_init(&w->all_lat);
    atomic_init(&w->progress, 0);
    uv_loop_init(&w->loop);
  }
  uint64_t t0 = bench_now_ns();
  for (int i = 0; i < cfg.threads; i++) pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]);

  if (cfg.progress) {
    /* Live line until every worker is done (joined in order; the line runs on this thread). */
    uint64_t last = 0, last_t = t0;
    for (;;) {
      struct timespec ts = {0, 250 * 1000 * 1000};
      nanosleep(&ts, NULL);
      bool all_done = true;
      uint64_t done = 0;
      for (int i = 0; i < cfg.threads; i++) {
        done += atomic_load_explicit(&ws[i].progress, memory_order_relaxed);
        if (pthread_tryjoin_np(ws[i].thread, NULL) != 0)
          all_done = false;
        else
          ws[i].thread = 0;
      }
      uint64_t now = bench_now_ns();
      double rate = (double)(done - last) / ((double)(now - last_t) / 1e9);
      char a[32], b[32];
      fmt_count(a, sizeof a, (double)done);
      fmt_count(b, sizeof b, rate);
      fprintf(stderr, "\r%7.1f s  %s done  %s/s      ", (double)(now - t0) / 1e9, a, b);
      last = done, last_t = now;
      if (all_done) break;
    }
    fprintf(stderr, "\r%60s\r", "");
  }
  for (int i = 0; i < cfg.threads; i++)
    if (ws[i].thread) pthread_join(ws[i].thread, NULL);

  hist lat, edit_lat, all_lat;
  hist_init(&lat);
  hist_init(&edit_lat);
  hist_init(&all_lat);
  uint64_t ops = 0, completed = 0, errors = 0, bytes_out = 0, bytes_in = 0, start = UINT64_MAX,
           end = 0;
  int conn_failures = 0;
  const char *first_error = NULL;
  for (int i = 0; i < cfg.threads; i++) {
    worker *w = &ws[i];
    hist_merge(&lat, &w->lat);
    hist_merge(&edit_lat, &w->edit_lat);
    hist_merge(&all_lat, &w->all_lat);
    ops += w->ops;
    completed += w->completed;
    errors += w->errors;
    bytes_out += w->bytes_out;
    bytes_in += w->bytes_in;
    conn_failures += w->conn_failures;
    if (!first_error && w->first_error[0]) first_error = w->first_error;
    if (w->start_ns && w->measure_ns < start) start = w->measure_ns;
    if (w->end_ns > end) end = w->end_ns;
    uv_loop_close(&w->loop);
  }
  /* A run of -n that ended short failed, whatever the workers said (a server that closed early
   * with 1000, say). */
  char short_run[160];
  bool incomplete = cfg.requests && completed < cfg.requests && conn_failures < cfg.connections;
  if (incomplete) {
    snprintf(short_run, sizeof short_run, "only %" PRIu64 " of %" PRIu64 " completed", completed,
             cfg.requests);
    if (!first_error) first_error = short_run;
  }
  /* No connection at all: one line on stderr says why (the summary would be all zeros). */
  if (conn_failures == cfg.connections && !cfg.json) {
    fprintf(stderr, "rsocket-bench: %s\n", first_error ? first_error : "no connection");
    free(ws);
    return EXIT_CONNECT;
  }
  double elapsed = (start != UINT64_MAX && end > start) ? (double)(end - start) / 1e9 : 0;
  double rate = elapsed > 0 ? (double)completed / elapsed : 0;
  const char *unit = cfg.model == MODEL_STREAM || cfg.model == MODEL_GW_SUB ? "items"
                     : cfg.model == MODEL_CHANNEL                           ? "elements"
                     : cfg.model == MODEL_WS                                ? "messages"
                     : cfg.model == MODEL_BOARD                             ? "deliveries"
                                                                            : "requests";
  bool has_latency = lat.count > 0;
  bool board = cfg.model == MODEL_BOARD;

  if (cfg.json) {
    json_t *o = json_object();
    json_object_set_new(o, "tool", json_string("rsocket-bench " BENCH_VERSION));
    json_object_set_new(o, "uri", json_string(cfg.uri));
    json_object_set_new(o, "model", json_string(bench_model_name(cfg.model)));
    json_object_set_new(o, "connections", json_integer(cfg.connections));
    json_object_set_new(o, "in_flight", json_integer(cfg.in_flight));
    json_object_set_new(o, "size", json_integer((json_int_t)cfg.size));
    json_object_set_new(o, "threads", json_integer(cfg.threads));
    json_object_set_new(o, "elapsed_s", json_real(elapsed));
    json_object_set_new(o, "completed", json_integer((json_int_t)completed));
    json_object_set_new(o, "unit", json_string(unit));
    json_object_set_new(o, "rate", json_real(rate));
    json_object_set_new(o, "bytes_out_per_s", json_real(elapsed > 0 ? bytes_out / elapsed : 0));
    json_object_set_new(o, "bytes_in_per_s", json_real(elapsed > 0 ? bytes_in / elapsed : 0));
    json_object_set_new(o, "errors", json_integer((json_int_t)errors));
    json_object_set_new(o, "connect_failures", json_integer(conn_failures));
    if (first_error) json_object_set_new(o, "first_error", json_string(first_error));
    if (has_latency) json_object_set_new(o, "latency_us", latency_json(&lat));
    if (board) {
      json_object_set_new(o, "boards", json_integer(cfg.boards));
      json_object_set_new(o, "rate_per_user", json_real(cfg.rate));
      json_object_set_new(o, "ops", json_integer((json_int_t)ops));
      json_object_set_new(o, "ops_per_s", json_real(elapsed > 0 ? ops / elapsed : 0));
      if (edit_lat.count) json_object_set_new(o, "edit_latency_us", latency_json(&edit_lat));
      if (all_lat.count) json_object_set_new(o, "everyone_latency_us", latency_json(&all_lat));
    }
    char *s = json_dumps(o, JSON_COMPACT);
    puts(s);
    free(s);
    json_decref(o);
  } else {
    char a[32], b[32];
    printf("rsocket-bench %s: %s to %s\n", BENCH_VERSION, bench_model_name(cfg.model), cfg.uri);
    if (board)
      printf("  %d users (connections) on %d boards, %g edits/s each, %d thread(s)\n",
             cfg.connections, cfg.boards < cfg.connections ? cfg.boards : cfg.connections, cfg.rate,
             cfg.threads);
    else
      printf("  %d connection(s), %d in flight each, %zu-byte payloads, %d thread(s)\n",
             cfg.connections, cfg.in_flight, cfg.size, cfg.threads);
    fmt_count(a, sizeof a, (double)completed);
    fmt_count(b, sizeof b, rate);
    printf("finished in %.3f s: %s %s, %s %s/s, %" PRIu64 " errors\n", elapsed, a, unit, b, unit,
           errors);
    if (!board)
      printf("traffic (payload data): %.2f MB/s out, %.2f MB/s in\n",
             elapsed > 0 ? bytes_out / elapsed / 1e6 : 0,
             elapsed > 0 ? bytes_in / elapsed / 1e6 : 0);
    if (board) {
      fmt_count(a, sizeof a, (double)ops);
      fmt_count(b, sizeof b, elapsed > 0 ? ops / elapsed : 0);
      printf("edits: %s confirmed, %s/s\n", a, b);
      print_latency("op -> delivered to each subscriber", &lat);
      print_latency("op -> delivered to everyone on its board", &all_lat);
      print_latency("edit -> its cfm", &edit_lat);
    } else {
      print_latency("latency", &lat);
    }
    if (first_error) printf("first error: %s\n", first_error);
  }
  int status = (errors || conn_failures || first_error) ? EXIT_ERRORS : EXIT_OK;
  if (conn_failures == cfg.connections) status = EXIT_CONNECT;
  if (status == EXIT_ERRORS && !cfg.json)
    fprintf(stderr, "rsocket-bench: %s\n", first_error ? first_error : "some requests failed");
  free(ws); /* first_error points into it */
  return status;
}
