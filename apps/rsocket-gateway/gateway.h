/*
 * rsocket-gateway: browsers over WebSocket (the JSON protocol of rsocket/gateway.h), backends
 * over a few multiplexed RSocket connections each (rsocket/pool.h), credit from the browser's
 * socket to the producing backend. docs/GATEWAY.md is the manual; this file the map:
 *
 *   config.c   options, the command line and the config file (jansson), the route table
 *   main.c     the server: workers, handshake hook, /healthz, signals, reloads (SIGHUP)
 *   client.c   one browser: its messages, its open requests by id, its back-pressure
 *   backend.c  the pools of one worker and what comes back from backends
 *   passthrough.c  RSocket clients (/rsocket): each stream proxied to a backend stream
 *
 * Threads: each worker (rs_server worker loop) has its own pools, parser and buffers; a client
 * and everything about it lives on the worker that accepted it.
 *
 * Reloads (SIGHUP): the main loop parses the configuration again and builds a new route table
 * (gw_table, immutable, reference-counted); each worker adopts it on its own thread
 * (gw_backend_reload, posted with rs_runtime_post): its pools are kept, edited (targets added
 * and removed) or started to serve the new backend lists, and pools no route uses drain. Nothing
 * a stream or a client holds points into a table: a stream keeps its backend connection and the
 * stats slot of its route (stable for the process's life), so the old table is freed as soon as
 * the last worker has let go of it.
 */
#ifndef RSOCKET_GATEWAY_APP_H
#define RSOCKET_GATEWAY_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rsocket/gateway.h"
#include "rsocket/pool.h"
#include "rsocket/websocket.h"

#define GW_CLIENT_MIME "application/x.rsocket-gateway.client+json"

typedef struct gw_client gw_client;
typedef struct gw_stream gw_stream;
typedef struct gw_gateway gw_gateway;
typedef struct gw_rsclient gw_rsclient; /* an RSocket client (passthrough.c) */
typedef struct gw_pstream gw_pstream;   /* one of its streams, proxied to a backend stream */

/* The first byte of every backend stream's user pointer (gw_stream and gw_pstream): whose
 * stream a pool callback is about. */
enum { GW_KIND_JSON = 0, GW_KIND_RSOCKET = 1 };
#define GW_IS_RSOCKET(stream_user) (*(const uint8_t *)(stream_user) == GW_KIND_RSOCKET)

/* ---- configuration (config.c) ---- */

typedef enum gw_match { GW_EXACT = 0, GW_PREFIX, GW_ANY } gw_match;

typedef struct gw_route {
  char *pattern;  /* as written: "rooms.post", "rooms.*", "*" */
  gw_match match; /* GW_PREFIX: `pattern` without its '*' ("rooms.") is the prefix */
  size_t prefix_len;
  size_t group;  /* index into gw_config.groups (gw_table.groups) */
  uint16_t slot; /* its counters' row (gw_slot_of): the same for the same pattern after reloads */
} gw_route;

/* The distinct backend lists: routes naming the same list share one pool per worker. */
typedef struct gw_group {
  char **uris;
  size_t n_uris;
} gw_group;

typedef enum gw_log_format { GW_LOG_TEXT = 0, GW_LOG_JSON, GW_LOG_NONE } gw_log_format;

typedef struct gw_config {
  char *listen;
  gw_route *routes; /* parsed; gw_table_new takes them */
  size_t n_routes;
  gw_group *groups;
  size_t n_groups;
  int connections;             /* per backend (2) */
  rs_pool_strategy lb;         /* p2c */
  size_t max_message;          /* bytes of one client message (1 MiB) */
  size_t max_buffer;           /* unsent output per client before 1008 (1 MiB) */
  size_t max_clients;          /* 0: no limit beyond the descriptors */
  uint32_t max_streams;        /* per client (1024) */
  uint32_t credit_window;      /* per gateway-managed sub (64) */
  uint32_t request_timeout_ms; /* 30 s */
  int workers;                 /* 1 */
  char *cert, *key;            /* wss:// */
  char *static_dir;            /* --static: as given */
  char *static_real;           /* and resolved (gw_static_init) */
  gw_log_format log_format;    /* text */
  uint32_t backend_resume_ms;  /* 0: backend connections do not resume */
  bool backend_lease;          /* ask backends for leases */
  bool busy_poll;              /* spin on the loops instead of sleeping in epoll */
  /* Authentication and admission (auth.c). */
  uint8_t *jwt_secret; /* --jwt-secret: HS256/384/512 */
  size_t jwt_secret_len;
  uint8_t *jwt_public_key; /* --jwt-public-key: PEM, RS/PS/ES */
  size_t jwt_public_key_len;
  char **jwt_claims; /* --jwt-claims: forwarded to backends besides sub */
  size_t n_jwt_claims;
  uint32_t auth_timeout_ms; /* 10 s */
  char **origins;           /* --origin, repeatable: the allowed Origin values */
  size_t n_origins;
  uint32_t rate_limit;       /* messages per second per client (and burst); 0: none */
  uint32_t drain_timeout_ms; /* SIGTERM: how long reqs in flight may take (10 s) */
  uint32_t rsocket_mtu;      /* fragment frames to RSocket clients over this (0: whole) */
} gw_config;

/* Fills the defaults. */
void gw_config_init(gw_config *c);
void gw_config_free(gw_config *c);
/* Parses argv (and --config FILE, whose values the command line overrides). Returns 0 to run,
 * 1 when it printed --help or --version (exit 0), 2 on a usage error (printed, exit 2). */
int gw_config_parse(gw_config *c, int argc, char **argv);
/* The same for a reload (SIGHUP): `c` fresh from gw_config_init, argv as at the start. Returns 0,
 * or -1 with the reason in `err` (nothing printed). */
int gw_config_reparse(gw_config *c, int argc, char **argv, char *err, size_t errlen);
/* The settings other than the routes that differ between `a` and `b`, as option names separated
 * by commas ("workers,listen"), into `out` ("" when none). A reload applies only the routes. */
void gw_config_changed(const gw_config *a, const gw_config *b, char *out, size_t cap);
/* Adds one `PATTERN=URI[,URI...]` route. Returns 0, or -1 with a reason in `err`. */
int gw_config_add_route(gw_config *c, const char *spec, char *err, size_t errlen);

/* The route table in force: the routes and the distinct backend lists they name. Immutable once
 * built; main and every worker hold a reference; freed by the last gw_table_unref (any
 * thread). */
typedef struct gw_table {
  atomic_uint refs;
  gw_route *routes;
  size_t n_routes;
  gw_group *groups;
  size_t n_groups;
} gw_table;

/* A table of c's routes and groups, which it takes (c has none after), with each route's stats
 * slot. Returns it (one reference), or NULL with a reason in `err`. */
gw_table *gw_table_new(gw_config *c, char *err, size_t errlen);
gw_table *gw_table_ref(gw_table *t);
void gw_table_unref(gw_table *t);
/* The route (index into t->routes) serving `route`: the exact pattern, else the longest matching
 * prefix, else "*". Returns -1 when none matches. */
long gw_table_lookup(const gw_table *t, const uint8_t *route, size_t len);

/* ---- auth.c ---- */
/* A client's --rate-limit token bucket (JSON and RSocket clients). */
typedef struct gw_bucket {
  uint32_t tokens, at; /* thousandths of a message, uv_now in ms (32 bits: differences only) */
} gw_bucket;
#define GW_PREAUTH_MAX (RS_GW_TOKEN_MAX + 1024) /* largest message before authentication */
bool gw_auth_enabled(const gw_config *cfg);
/* Reads SECRET or @FILE. 0, or -1 with a reason in `err`. */
int gw_auth_load_key(const char *arg, uint8_t **out, size_t *len, char *err, size_t errlen);
/* Verifies a token: 0 with the user (sub) and the chosen claims (a JSON object, or NULL), both
 * malloc'd; -1 with the reason in `why`. */
int gw_auth_check(const gw_config *cfg, const char *token, char **user, char **claims, char *why,
                  size_t whylen);
/* --origin: true when `origin` (absent: not a browser) may connect. */
bool gw_origin_allowed(const gw_config *cfg, rs_bytes origin);
/* --rate-limit: a full bucket for a client that connects now (`rate` messages per second, bursts
 * of as many). */
void gw_rate_init(gw_bucket *b, uint32_t rate, uint64_t now_ms);
/* Takes a token from the bucket (0: no limit); false when it is empty. */
bool gw_rate_take(gw_bucket *b, uint32_t rate, uint64_t now_ms);
/* A JSON string body for `s` (escapes '"', '\\', control characters), truncated to fit. */
void gw_json_escape(char *out, size_t cap, const char *s);

/* ---- log.c ---- */
/* One line on stderr: `event`, then key, value pairs (const char *), NULL-terminated. */
void gw_log(const gw_config *cfg, const char *event, ...) __attribute__((sentinel));

/* ---- static.c ---- */
/* Resolves --static (a directory). Returns 0, or -1 with a reason in `err`. */
int gw_static_init(gw_config *c, char *err, size_t errlen);
/* Answers a GET or HEAD from the --static directory; false when no file there matches. */
bool gw_static_serve(const gw_config *c, const rs_http_request *req, rs_http_response *res);

/* ---- counters (metrics.c) ---- */

/* Written by one worker's thread only, read by any: relaxed loads and stores, no locked add. */
typedef _Atomic uint64_t gw_counter;
#define GW_GET(c) atomic_load_explicit(&(c), memory_order_relaxed)
#define GW_ADD(c, n)                                                                               \
  atomic_store_explicit(&(c), atomic_load_explicit(&(c), memory_order_relaxed) + (uint64_t)(n),    \
                        memory_order_relaxed)

enum { GW_IN_INVALID = 0, GW_IN_COUNT = RS_GW_HELLO + 1 };
enum { GW_OUT_CFM, GW_OUT_IND, GW_OUT_END, GW_OUT_REJ, GW_OUT_PONG, GW_OUT_WELCOME, GW_OUT_COUNT };
enum { GW_M_REQ, GW_M_SUB, GW_M_CHAN, GW_M_FNF, GW_MODEL_COUNT };
enum {
  GW_CODE_BAD_REQUEST,
  GW_CODE_NO_ROUTE,
  GW_CODE_UNAVAILABLE,
  GW_CODE_TOO_MANY_STREAMS,
  GW_CODE_TIMEOUT,
  GW_CODE_APPLICATION_ERROR,
  GW_CODE_REJECTED,
  GW_CODE_CANCELED,
  GW_CODE_INVALID,
  GW_CODE_RATE_LIMITED,
  GW_CODE_COUNT
};

typedef struct gw_stats {
  gw_counter clients, clients_total, slow_consumers;
  gw_counter rs_clients, rs_clients_total; /* RSocket clients (passthrough.c) */
  gw_counter streams_open[3];              /* by gw_model - 1 (a gauge: +1, then + (uint64_t)-1) */
  gw_counter msgs_in[GW_IN_COUNT], msgs_out[GW_OUT_COUNT];
  gw_counter client_bytes[2];        /* in, out */
  gw_counter frames[2][64];          /* backend frames: [outbound][type] */
  gw_counter client_frames[2][64];   /* RSocket clients' frames: [outbound][type] */
  gw_counter backend_bytes[2];       /* in, out */
  gw_counter pushes, pushes_dropped; /* messages to clients; unknown push routes */
  /* By route: one row per stats slot (gw_slot_of; row 0: no route), grown by the worker when it
   * adopts a table with new patterns (under snap_mu, which /metrics takes to read them). */
  gw_counter *requests; /* [n_slots * GW_MODEL_COUNT] */
  gw_counter *errors;   /* [n_slots * GW_CODE_COUNT] */
  size_t n_slots;
} gw_stats;

/* One backend target as /metrics shows it: a worker's copy, strings its own. */
typedef struct gw_backend_snap {
  const void *pool; /* which pool and target index: the snapshot's layout (never dereferenced) */
  size_t index;
  char *uri, *label; /* the backend, the route patterns its pool serves */
  rs_pool_target_stats st;
} gw_backend_snap;

/* Stats slots: every route pattern seen since the start gets one, for the process's life, so
 * that a stream's counters never point into a route table that a reload replaced. */
#define GW_SLOTS_MAX 65535
/* The slot of `pattern` (>= 1; 0 is "no route"), or -1 when GW_SLOTS_MAX patterns have been
 * seen already. Any thread. */
long gw_slot_of(const char *pattern);
void gw_slots_free(void);

/* ---- runtime state ---- */

typedef enum gw_model { GW_RR = 1, GW_STREAM, GW_CHANNEL } gw_model;

/* A queued upstream element of a channel (send while the backend gave no credit). */
typedef struct gw_up {
  struct gw_up *next;
  size_t len;
  uint8_t data[];
} gw_up;

/* One request of one client, open on a backend stream. Owned by two parties: the client (until
 * the request is over for it: answered, rejected, unsubscribed, or the client gone) and the
 * engine (until on_stream_closed); freed when both let go. */
struct gw_stream {
  uint8_t kind;      /* GW_KIND_JSON (0: calloc) */
  gw_client *client; /* NULL once the client let go */
  rs_conn *conn;     /* the backend connection; NULL once the engine let go */
  uint32_t sid;
  gw_model model;
  uint16_t route;       /* its route's stats slot (gw_route_slot): valid across reloads */
  bool client_credit;   /* sub/chan opened with "n": the client's request(n) go through */
  bool up_done;         /* chan: the client sent done (or the backend cancelled our half) */
  bool up_cancelled;    /* chan: the backend cancelled our half: sends are dropped */
  bool starved;         /* on the client's list of streams waiting for its socket to drain */
  bool blocked;         /* chan: counted in the client's blocked_chans */
  uint32_t outstanding; /* gateway-managed credit granted to the backend and not yet used */
  uint64_t up_credit;   /* chan: elements the backend lets us send */
  gw_up *up_head, *up_tail;
  size_t up_count;
  /* The request timeout list of the worker (request-response only). */
  gw_stream *t_prev, *t_next;
  uint64_t deadline;
  /* The client's id table entry and the starved list. */
  gw_stream *starved_next;
  rs_gw_id_kind id_kind;
  int64_t id_num;
  uint8_t id_len;
  char id[]; /* id_len bytes as the client wrote it (escaped form), NUL-terminated */
};

/* One browser. */
struct gw_client {
  gw_gateway *gw;
  rs_ws_session *ws;
  uint64_t session_id;
  char *entry;       /* the client metadata entry's JSON, made at the first request */
  char *user;        /* the authenticated user id (NULL: none) */
  char *claims;      /* the claims forwarded to backends, a JSON object (NULL: none) */
  bool authed;       /* authenticated, or no authentication configured */
  gw_bucket rate;    /* --rate-limit */
  uint32_t opened_s; /* uv_now / 1000 at on_open: the authentication deadline */
  uint32_t rr_open;  /* reqs awaiting their answer (a draining gateway waits) */
  uint32_t entry_len;
  /* Open requests by id: open addressing, linear probing, power-of-two capacity. */
  gw_stream **table;
  uint32_t cap, count;
  gw_stream *starved; /* gateway-managed streams that wait for the socket to drain */
  bool closing;       /* close started (slow consumer, protocol error): nothing more is sent */
  bool paused;        /* reading paused for back-pressure, for one of: */
  bool out_full;      /*   our output to it is over the watermark (it reads slower than it asks) */
  bool waiting_backend;   /* a backend connection is over its watermark (on gw->waiting) */
  uint32_t blocked_chans; /* channels whose queued sends reached the credit window */
  gw_client *wait_next;
};

/* One pool of a worker: the backends of one backend list. */
typedef struct gw_pool {
  rs_pool *pool;
  char *label;   /* the route patterns it serves, space-separated (the metrics' pool label) */
  uint8_t *down; /* per target index and connection: its failure was logged */
  size_t n_down; /* target indices it covers */
  bool draining; /* no route uses it now: its targets drain, then it closes */
  bool closing;  /* rs_pool_close called */
  struct gw_pool *next;
} gw_pool;

/* What each worker has. */
struct gw_gateway {
  const gw_config *cfg; /* the settings of the start (reloads change only the table) */
  uv_loop_t *loop;
  int index;
  gw_table *table; /* the routes this worker serves (one reference) */
  gw_pool **pools; /* one per table group */
  gw_pool *all;    /* every pool: the table's, then those draining */
  bool stopping;
  bool snap_dirty; /* the pools changed: the next snapshot is made anew */
  rs_gw_parser parser;
  rs_gw_buf out;    /* outgoing messages are formatted here */
  uint8_t *scratch; /* compacted data and metadata of a request */
  size_t scratch_cap;
  uv_timer_t timer;  /* request timeouts */
  uv_timer_t health; /* refreshes backends_up for /healthz (read from any worker) */
  bool timers;       /* both initialised */
  atomic_bool backends_up;
  gw_stream *t_head, *t_tail;
  gw_client *waiting; /* clients paused because a backend connection is not writable */
  long cur_route;     /* the stats slot of the message being handled, for counting rej (0: none) */
  uint64_t next_session;
  atomic_size_t *clients; /* the whole gateway's count, for --max-clients */
  atomic_bool *draining;  /* SIGTERM came: finish reqs, then close clients with 1001 */
  int stop_pending;
  void (*stop_done)(gw_gateway *gw);
  rs_server *server;
  gw_client **sessions; /* this worker's clients by session id (push.c) */
  uint32_t sessions_cap, n_sessions;
  uv_timer_t auth_timer;         /* closes clients that did not authenticate in time */
  uint32_t unauthed;             /* clients waiting to authenticate */
  gw_rsclient *rs_clients;       /* this worker's RSocket clients (passthrough.c) */
  gw_pstream *pt_head, *pt_tail; /* their request-responses in deadline order */
  uv_timer_t pt_timer;           /* request timeouts of RSocket clients, and their drain */
  uint64_t pt_drain_at;          /* SIGTERM: when the last RSocket clients are closed (0: no) */
  gw_rsclient *pt_waiting;       /* RSocket clients paused for a full backend connection */
  uv_timer_t pt_lease;           /* leases to RSocket clients that asked for lease */
  gw_stats stats;
  pthread_mutex_t snap_mu; /* guards snap and the per-route counters' arrays, for /metrics */
  gw_backend_snap *snap;
  size_t n_snap;
};

/* ---- metrics.c ---- */
int gw_stats_init(gw_gateway *gw); /* 0, or -1: out of memory */
void gw_stats_free(gw_gateway *gw);
/* Room for the counters of slots below `n_slots` (on the worker's thread). 0, or -1. */
int gw_stats_grow(gw_gateway *gw, size_t n_slots);
/* Copies the pools' figures for /metrics (on the worker's thread); logs backend_drained for each
 * removed backend whose connections are all gone since the last copy. */
void gw_stats_snapshot(gw_gateway *gw);
/* Counts one backend frame (the pools' on_frame tap). */
void gw_stats_frame(gw_gateway *gw, bool outbound, const uint8_t *frame, size_t len);
/* Counts one RSocket client's frame (the server's on_frame tap). */
void gw_stats_client_frame(rs_conn *conn, bool outbound, const uint8_t *frame, size_t len,
                           void *user);
/* GW_CODE_* of a code name (unknown names count as UNAVAILABLE). */
int gw_code_of(const char *code);
/* Answers GET /metrics; `reloads` counts configuration reloads: [0] ok, [1] refused. */
void gw_metrics_render(rs_server *server, const gw_counter reloads[2], rs_http_response *res);

/* ---- backend.c ---- */
/* Makes the worker's pools for gw->table. Returns 0, or -1 with a reason in `err`. */
int gw_backend_start(gw_gateway *gw, char *err, size_t errlen);
/* Adopts table `t` (takes the caller's reference), on the worker's thread: pools of backend lists
 * that stay are kept, a pool whose list changed gets its new targets and drains the removed ones
 * (within --drain-timeout), new lists get new pools, pools no route uses drain and close. */
void gw_backend_reload(gw_gateway *gw, gw_table *t);
/* The pool of route `route` (an index into gw->table->routes; NULL when its pool could not be
 * made). */
rs_pool *gw_route_pool(gw_gateway *gw, long route);
/* The stats slot of route `route` (0 for -1: no route). */
static inline uint16_t gw_route_slot(const gw_gateway *gw, long route) {
  return route >= 0 ? gw->table->routes[route].slot : 0;
}
/* For leases to RSocket clients: connections of the table's backends that can take a request
 * now (weighted by lease availability), and connections there would be with all up. */
void gw_backend_capacity(gw_gateway *gw, double *usable, double *total);
/* Closes them (graceful or not); gw is freed by `done` once everything is closed. */
void gw_backend_stop(gw_gateway *gw, void (*done)(gw_gateway *gw));
/* True when some backend connection is established. */
bool gw_backend_any_connected(gw_gateway *gw);
/* Opens the backend stream of a req, sub or chan. Returns 0, or the pool's error (nothing open:
 * the caller rejects and frees). */
int gw_backend_open(gw_gateway *gw, gw_client *c, gw_stream *st, rs_pool *pool,
                    const rs_gw_cmd *cmd);
/* Fire-and-forget. Returns 0 or the pool's error. */
int gw_backend_fnf(gw_gateway *gw, gw_client *c, rs_pool *pool, const rs_gw_cmd *cmd);
/* The client metadata entry's JSON ({"session":…,"peer":…,"user":…,"claims":…}), malloc'd, its
 * length in *len; NULL when out of memory. `user` and `claims` may be NULL. */
char *gw_entry_make(uint64_t session, const char *peer, const char *user, const char *claims,
                    uint32_t *len);
/* The client let go of `st` (cancelling the backend stream when `cancel`). */
void gw_stream_release(gw_stream *st, bool cancel);
/* Grants the backend more gateway-managed credit when the client's socket has room. */
void gw_stream_refill(gw_stream *st);
/* Sends queued channel elements the backend has credit for. */
void gw_stream_flush_up(gw_stream *st);

/* ---- push.c ---- */
enum { GW_PUSH_ALL, GW_PUSH_SESSION, GW_PUSH_USER };
/* A push to the worker's RSocket clients (passthrough.c): REQUEST_FNF with the route as routing
 * metadata (composite when the client's metadata is) and the data. Returns the clients reached. */
size_t gw_rsclients_push(gw_gateway *gw, int kind, uint64_t session, rs_bytes user, rs_bytes route,
                         rs_bytes data);
/* A backend's request on a gateway connection: fire-and-forget pushes are delivered (0), other
 * requests refused (non-zero: ERROR REJECTED). */
int gw_push_request(rs_conn *conn, const rs_request *req, gw_gateway *gw);
/* The worker's clients by session id. */
bool gw_sessions_add(gw_gateway *gw, gw_client *c);
void gw_sessions_remove(gw_gateway *gw, gw_client *c);
gw_client *gw_sessions_find_id(gw_gateway *gw, uint64_t id);

/* ---- passthrough.c ---- */
/* The server's RSocket side: callbacks, on_connect, on_disconnect (main.c sets them). */
extern const rs_conn_callbacks gw_pt_callbacks;
void *gw_pt_connect(rs_server *server, rs_conn *conn, void *server_user);
void gw_pt_disconnect(rs_server *server, rs_conn *conn, void *conn_user, void *server_user);
/* A client's output fell back under its watermark: its streams' credit is topped up. */
void gw_pt_drained(rs_conn *conn, void *user);
/* Starts the worker's lease timer (its handles are initialised by gw_backend_start). */
void gw_pt_start(gw_gateway *gw);
/* Draining: each RSocket client is closed (CONNECTION_CLOSE) once its request-responses in
 * flight are answered, its other streams ending with CANCELED "UNAVAILABLE: …"; what is left at
 * --drain-timeout goes then. */
void gw_pt_drain_all(gw_gateway *gw);
/* The backend connection `back` drained (NULL: one was lost): clients paused for it are read
 * again. */
void gw_pt_backend_drained(gw_gateway *gw, rs_conn *back);
/* What a backend did on a stream of an RSocket client (backend.c's pool callbacks). */
void gw_pt_back_payload(gw_pstream *ps, const rs_payload *p, unsigned flags);
void gw_pt_back_error(gw_pstream *ps, const rs_stream_error *e);
void gw_pt_back_request_n(gw_pstream *ps, uint64_t n);
void gw_pt_back_cancel(gw_pstream *ps);
void gw_pt_back_closed(gw_pstream *ps);

/* ---- client.c ---- */
/* A new session id, unique on this worker, naming the worker in its top byte. */
uint64_t gw_session_new(gw_gateway *gw);
/* Keeps the ?token= of an accepted upgrade for the on_open (JSON) or on_connect (RSocket) that
 * follows on this thread. */
void gw_client_url_token(const rs_http_request *req);
/* That token, once (NULL: none). */
const char *gw_client_url_token_take(void);
/* Starts the worker's authentication deadline timer (when authentication is on). */
void gw_client_auth_start(gw_gateway *gw);
/* Draining (on the worker's thread): clients without a req in flight are closed with 1001 now,
 * the others once their last req is answered. */
void gw_client_drain_all(gw_gateway *gw);
extern const rs_ws_session_callbacks gw_client_callbacks;
/* Sends one formatted message (gw->out) to the client; false when the client is closing or was
 * just closed as a slow consumer. */
bool gw_client_send(gw_client *c, int type /* GW_OUT_* */);
/* Sends len bytes of JSON (a push) to the client; same checks as gw_client_send. */
bool gw_client_send_copy(gw_client *c, const uint8_t *msg, size_t len);
/* Removes `st` from the client's id table (and starved list). */
void gw_client_forget(gw_client *c, gw_stream *st);
/* A rej for `st`'s id with `code` and `message`, then the client forgets it. */
void gw_client_reject(gw_client *c, gw_stream *st, const char *code, const char *message,
                      size_t message_len);
/* Puts `st` on the client's starved list (it is refilled in on_drained). */
void gw_client_starve(gw_client *c, gw_stream *st);
/* A backend connection could not take more: stop reading the client until it drains. */
void gw_client_wait_backend(gw_client *c);
/* Pauses or resumes reading the client after a back-pressure flag changed. */
void gw_client_update_reading(gw_client *c);
/* The id of `st` as an rs_gw_id (views into st). */
rs_gw_id gw_stream_id(const gw_stream *st);

#endif
