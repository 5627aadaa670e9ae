/* rsocket-bench: a load generator for RSocket (and plain WebSocket) servers. Internal header. */
#ifndef RSOCKET_BENCH_H
#define RSOCKET_BENCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* ---- latency histogram: log-linear buckets, under 1% relative error, values in ns ---- */

#define HIST_SUB_BITS 6
#define HIST_SUB      (1u << HIST_SUB_BITS) /* sub-buckets per power of two */
#define HIST_BUCKETS  (2 * HIST_SUB + (64 - HIST_SUB_BITS - 1) * HIST_SUB)

typedef struct hist {
  uint64_t count;
  uint64_t min, max;
  double sum;
  uint64_t buckets[HIST_BUCKETS];
} hist;

void hist_init(hist *h);
void hist_record(hist *h, uint64_t v);
void hist_merge(hist *into, const hist *from);
/* The value at quantile q in [0, 1] (the upper edge of its bucket, clamped to max). */
uint64_t hist_quantile(const hist *h, double q);
double hist_mean(const hist *h);

/* ---- configuration ---- */

typedef enum bench_model {
  MODEL_RR,
  MODEL_FNF,
  MODEL_STREAM,
  MODEL_CHANNEL,
  MODEL_WS,     /* plain WebSocket echo of binary messages */
  MODEL_GW_REQ, /* rsocket-gateway JSON protocol: req -> cfm */
  MODEL_GW_SUB, /* rsocket-gateway JSON protocol: sub -> ind, ind… */
  MODEL_BOARD,  /* collab-service through rsocket-gateway: users editing boards (boardload.c) */
} bench_model;

typedef struct bench_cfg {
  const char *uri;
  bench_model model;
  int connections;
  int threads;
  int in_flight;     /* per connection */
  uint64_t requests; /* total; 0 when running for a duration */
  double duration_s; /* when requests == 0 */
  double warmup_s;   /* with a duration: not measured */
  size_t size;       /* payload data bytes */
  const char *route; /* gw models: the route of every req or sub */
  bool route_given;  /* --route given: RSocket models send it as routing metadata */
  uint32_t window;   /* stream: credit window */
  int boards;        /* board: boards bench-0 .. bench-(boards-1) the users spread over */
  double rate;       /* board: edits per second per user */
  bool json;
  bool insecure;
  bool progress;               /* live progress line on stderr */
  bool busy_poll;              /* spin on the event loops instead of sleeping */
  double connect_timeout_s;    /* connecting, handshakes and the server's first answer, each */
  struct sockaddr_storage dst; /* ws, gw-*: the address that accepted (bench_resolve) */
  char dst_error[200];         /* or why none did */
} bench_cfg;

const char *bench_model_name(bench_model m);

/* ---- per-thread worker ---- */

typedef struct worker {
  int id;
  const bench_cfg *cfg;
  uv_loop_t loop;
  pthread_t thread;
  int nconns;
  uint64_t quota; /* requests for this worker (0: duration) */
  uint64_t start_ns, measure_ns, end_ns;
  uint64_t deadline_ns;          /* end of the measured window with -D; 0 with -n */
  uv_timer_t progress_timer;     /* copies `completed` into `progress` for the live line */
  atomic_uint_fast64_t progress; /* completed, for the live line */
  /* results (read after join) */
  hist lat;
  uint64_t completed, errors, bytes_out, bytes_in;
  hist edit_lat; /* board: edit -> its cfm (lat: edit -> delivered to each subscriber) */
  hist all_lat;  /* board: edit -> delivered to every user of its board (the last delivery) */
  uint64_t ops;  /* board: edits confirmed, sent within the measured window */
  int conn_failures;
  char first_error[200];
} worker;

/* Monotonic nanoseconds. */
uint64_t bench_now_ns(void);

/* Runs the RSocket workloads (rr, fnf, stream, channel) of one worker to completion. */
int rsload_run(worker *w);
/* Runs the WebSocket workloads (ws, gw-req, gw-sub, board) of one worker to completion. */
int wsload_run(worker *w);

/* Starts the worker's clock once its connections are up: start, measured window (after the
 * warm-up) and, with -D, deadline_ns. Returns the milliseconds until the deadline (0 with -n). */
uint64_t worker_start_clock(worker *w);
/* True when a completion at `now` falls inside the measured window. */
bool worker_measuring(const worker *w, uint64_t now);
/* The live-line timer on the worker's loop (unreferenced: it never keeps the loop alive). */
void worker_progress_start(worker *w);
void worker_progress_stop(worker *w);

/* Finds the address of host:port that accepts connections: every address the name resolves to
 * is raced once (rs_connect_start, happy eyeballs) and the winner's is stored in `out` (that probe
 * connection is closed at once). 0, or -1 with a message in `err` such as "cannot connect to
 * localhost:7878: [::1]:7878 connection refused; 127.0.0.1:7878 connection refused". */
int bench_resolve(const char *host, int port, double timeout_s, struct sockaddr_storage *out,
                  char *err, size_t errlen);

/* Records a failure (keeps the first message). */
void worker_error(worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- other modes ---- */

/* Codec micro-benchmark: prints a table (or JSON). Returns an exit status. */
int codec_bench(bool json, double seconds);

/* Loopback floor: blocking TCP ping-pong between two threads. Returns an exit status. */
int floor_bench(bool json, double seconds);

/* Opens `n` idle connections (RSocket over tcp:// or ws://, or with `plain` WebSockets that
 * send nothing after the upgrade, ws:// only) from `sources` 127.0.0.x addresses and holds them
 * `hold_s` seconds (0: until SIGINT/SIGTERM). With `pid` (0: none), reports that process's
 * resident memory per connection. A connection still not ready (tcp: SETUP written; ws: upgraded
 * and, unless plain, SETUP written) after `connect_timeout_s` without any other becoming ready
 * fails. Returns an exit status. */
int idle_run(const char *uri, int n, int sources, double hold_s, bool json, long pid,
             double connect_timeout_s, bool plain);

#endif
