/*
 * gw_backend: the backend of the gateway's integration tests (tests/integration/test_gateway*.sh).
 * An RSocket server on the public headers only (rsocket/service.h's router and feeds), whose
 * routes make a backend do everything the gateway must carry or survive:
 *
 *   gw_backend [--delay-ms N] [--lease N] [--name NAME] URI
 *
 * It prints "listening on URI" once ready and serves until SIGINT or SIGTERM.
 *   --delay-ms N  every request-response answer (echo, delay, whoami, bytes) waits N ms more
 *   --lease N     ask requesters for lease and grant N requests per second (a LEASE every
 *                 second, TTL 2 s); 0 grants leases of 0 requests, so no request may come
 *   --name NAME   what whoami answers (default: the URI)
 *
 * Routes (found with rs_route_of, as the gateway sends them in composite metadata; a route with
 * dots is served by its last part, so "rooms.x.echo" is echo):
 *   echo    rr        the data back
 *   delay   rr        the data back after `data` ms (a number; other data: 0) plus --delay-ms
 *   whoami  rr        "NAME" (a JSON string): which backend served
 *   fail    rr, stream, channel   ERROR: data "rejected", "invalid", "canceled" give those codes,
 *                     a number >= 769 (0x301) that application code, anything else
 *                     APPLICATION_ERROR; the message is "failed: " and the data
 *   bytes   rr, stream   a payload that is not plain JSON: data "text" (UTF-8, not JSON),
 *                     "bin" (not UTF-8), "empty", "json" ({"a":[1,2]}), "nul" (UTF-8 with a NUL
 *                     byte and quotes), "spaced" (JSON with whitespace); stream: all of them in
 *                     that order, then complete
 *   count   stream    1, 2, 3... while credit lasts, for ever; data a number N: 1..N then
 *                     complete; data a string: a tag whose elements stats counts apart
 *   chan    channel   each element back (the request's first); completes when the requester does
 *   silent  rr, stream, channel   never answers (request timeouts, open streams, lost backends)
 *   stats   rr        {"requests":…,"rr":…,"fnf":…,"elements":…,"cancels":…,"open":…,
 *                     "with_client":…,"without_client":…,"client":ENTRY|null,
 *                     "last_fnf":DATA|null,"tags":{"TAG":elements,…},"mdpush":…,
 *                     "last_mdpush":ROUTE|null}: requests received (all models, stats itself
 *                     included), request-responses, fire-and-forgets, stream elements produced,
 *                     CANCELs received, streams open now, requests with and without the
 *                     gateway's client metadata entry, the last such entry, METADATA_PUSHes
 *                     received and the route of the last one (printable ASCII; others as '?')
 *   fnf     fnf       counted; its data kept as last_fnf
 *   pushto  rr        data ["ROUTE",DATA]: sends REQUEST_FNF back over the same connection with
 *                     ROUTE as routing metadata (composite) and DATA (raw JSON) as data, then
 *                     answers "pushed" (a backend pushing to the gateway's clients)
 */
#include <rsocket/extensions.h>
#include <rsocket/runtime.h>
#include <rsocket/service.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIENT_MIME "application/x.rsocket-gateway.client+json"
#define MAX_TAGS    64

static struct {
  int delay_ms;
  long lease; /* -1: no lease */
  const char *name;
  uv_loop_t *loop;
  rs_server *server;
  uv_signal_t sigint, sigterm;
} opt = {.lease = -1};

static struct {
  unsigned long long requests, rr, fnf, elements, cancels, with_client, without_client;
  char client[256];
  char *last_fnf;
  size_t last_fnf_len;
  unsigned long long mdpush;
  char last_mdpush[256]; /* its route, made safe for JSON; empty: none yet, or no route */
  struct {
    char name[32];
    unsigned long long elements;
  } tags[MAX_TAGS];
  int n_tags;
} stats;

/* ---- connections (for leases and the open stream count) ---- */

typedef struct conn_state {
  rs_conn *conn;
  uv_timer_t *lease_timer;
  struct conn_state *prev, *next;
} conn_state;

static conn_state *conns;
static rs_router *router;
static rs_conn_callbacks feed_cb; /* the service layer's stream callbacks, which we wrap */

/* ---- request-response answers that wait (delay, silent) ---- */

typedef struct pending {
  rs_conn *conn;
  uint32_t sid;
  bool timed; /* has a running timer (else: silent, never answered) */
  uv_timer_t timer;
  struct pending *prev, *next;
  size_t len;
  uint8_t data[];
} pending;

static pending *pendings;

static void pending_free_cb(uv_handle_t *h) {
  free(h->data);
}

static void pending_drop(pending *p) {
  if (p->prev)
    p->prev->next = p->next;
  else
    pendings = p->next;
  if (p->next) p->next->prev = p->prev;
  if (p->timed) {
    p->timer.data = p;
    uv_close((uv_handle_t *)&p->timer, pending_free_cb);
  } else {
    free(p);
  }
}

static void pending_drop_stream(rs_conn *conn, uint32_t sid, bool all) {
  for (pending *p = pendings, *next; p; p = next) {
    next = p->next;
    if (p->conn == conn && (all || p->sid == sid)) pending_drop(p);
  }
}

static void pending_fire(uv_timer_t *t) {
  pending *p = t->data;
  rs_payload pl = {.data = {p->data, p->len}};
  rs_conn_send_payload(p->conn, p->sid, &pl, true);
  pending_drop(p);
}

/* Answers `req` with `data` after `ms` (0: at once), or never when `silent`. */
static int answer_later(rs_conn *conn, const rs_request *req, const void *data, size_t len,
                        uint64_t ms, bool silent) {
  if (!silent && ms == 0) {
    rs_payload pl = {.data = {data, len}};
    return rs_conn_send_payload(conn, req->stream_id, &pl, true);
  }
  pending *p = calloc(1, sizeof *p + len);
  if (!p) return -1;
  p->conn = conn;
  p->sid = req->stream_id;
  p->len = len;
  if (len) memcpy(p->data, data, len);
  p->next = pendings;
  if (pendings) pendings->prev = p;
  pendings = p;
  if (!silent) {
    p->timed = true;
    uv_timer_init(opt.loop, &p->timer);
    p->timer.data = p;
    uv_timer_start(&p->timer, pending_fire, ms, 0);
  }
  return 0;
}

/* ---- helpers ---- */

static bool data_is(const rs_request *r, const char *s) {
  size_t n = strlen(s);
  return r->payload.data.len == n + 2 && r->payload.data.ptr[0] == '"' &&
         memcmp(r->payload.data.ptr + 1, s, n) == 0;
}

/* The data as a non-negative integer, or -1. */
static long long data_number(const rs_request *r) {
  char buf[24];
  size_t n = r->payload.data.len;
  if (n == 0 || n >= sizeof buf) return -1;
  memcpy(buf, r->payload.data.ptr, n);
  buf[n] = 0;
  char *end;
  long long v = strtoll(buf, &end, 10);
  return *end || v < 0 ? -1 : v;
}

/* ---- routes ---- */

static int echo(rs_conn *c, const rs_request *r, void *user) {
  (void)user;
  return answer_later(c, r, r->payload.data.ptr, r->payload.data.len, (uint64_t)opt.delay_ms,
                      false);
}

/* ["ROUTE",DATA] -> REQUEST_FNF on the requester's own connection, then "pushed". */
static int pushto(rs_conn *c, const rs_request *r, void *user) {
  (void)user;
  const uint8_t *d = r->payload.data.ptr;
  size_t n = r->payload.data.len;
  const uint8_t *q = n > 4 && d[0] == '[' && d[1] == '"' ? memchr(d + 2, '"', n - 2) : NULL;
  if (!q || q + 2 >= d + n || q[1] != ',' || d[n - 1] != ']')
    return rs_service_errorf(c, r->stream_id, RS_ERROR_INVALID, "pushto needs [\"ROUTE\",DATA]");
  rs_bytes tag = {d + 2, (size_t)(q - d - 2)};
  uint8_t routing[300], md[320];
  rs_ssize rn = rs_routing_encode(routing, sizeof routing, &tag, 1);
  rs_ssize mn = rn > 0 ? rs_composite_encode(md, sizeof md, RS_MIME_ROUTING,
                                             strlen(RS_MIME_ROUTING), routing, (size_t)rn)
                       : -1;
  if (mn < 0) return rs_service_errorf(c, r->stream_id, RS_ERROR_INVALID, "pushto: bad route");
  rs_payload p = {.metadata = {md, (size_t)mn},
                  .has_metadata = true,
                  .data = {q + 2, (size_t)(d + n - 1 - (q + 2))}};
  if (rs_conn_request_fnf(c, &p) < 0)
    return rs_service_errorf(c, r->stream_id, RS_ERROR_APPLICATION_ERROR, "pushto: cannot send");
  rs_payload ok = {.data = {(const uint8_t *)"\"pushed\"", 8}};
  return rs_conn_send_payload(c, r->stream_id, &ok, true);
}

static int delay(rs_conn *c, const rs_request *r, void *user) {
  (void)user;
  long long ms = data_number(r);
  return answer_later(c, r, r->payload.data.ptr, r->payload.data.len,
                      (uint64_t)(ms < 0 ? 0 : ms) + (uint64_t)opt.delay_ms, false);
}

static int whoami(rs_conn *c, const rs_request *r, void *user) {
  (void)user;
  char buf[300];
  int n = snprintf(buf, sizeof buf, "\"%s\"", opt.name);
  return answer_later(c, r, buf, (size_t)n, (uint64_t)opt.delay_ms, false);
}

static int fail(rs_conn *c, const rs_request *r, void *user) {
  (void)user;
  uint32_t code = RS_ERROR_APPLICATION_ERROR;
  long long n = data_number(r);
  if (data_is(r, "rejected"))
    code = RS_ERROR_REJECTED;
  else if (data_is(r, "invalid"))
    code = RS_ERROR_INVALID;
  else if (data_is(r, "canceled"))
    code = RS_ERROR_CANCELED;
  else if (n >= RS_ERROR_MIN_APPLICATION && n < RS_ERROR_RESERVED_EXT)
    code = (uint32_t)n;
  return rs_service_errorf(c, r->stream_id, code, "failed: %.*s", (int)r->payload.data.len,
                           (const char *)r->payload.data.ptr);
}

static const struct {
  const char *name;
  const char *bytes;
  size_t len;
} kinds[] = {
    {"text", "hello, world", 12},
    {"bin", "\xff\xfe\x00\x01", 4},
    {"empty", "", 0},
    {"json", "{\"a\":[1,2]}", 11},
    {"nul", "a\0b \"q\" \\", 9},
    {"spaced", " { \"a\" : [ 1 , 2 ] } ", 21},
};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

static int bytes_rr(rs_conn *c, const rs_request *r, void *user) {
  (void)user;
  for (size_t i = 0; i < N_KINDS; i++)
    if (data_is(r, kinds[i].name))
      return answer_later(c, r, kinds[i].bytes, kinds[i].len, (uint64_t)opt.delay_ms, false);
  return rs_service_errorf(c, r->stream_id, RS_ERROR_APPLICATION_ERROR, "bytes: unknown kind");
}

static int bytes_stream(rs_conn *c, const rs_request *r, void *user) {
  (void)user;
  rs_feed *f;
  if (rs_feed_new(&f, c, r->stream_id, NULL) != 0) return -1;
  for (size_t i = 0; i < N_KINDS; i++) {
    rs_feed_push_data(f, kinds[i].bytes, kinds[i].len);
    stats.elements++;
  }
  rs_feed_complete(f);
  return 0;
}

typedef struct counter {
  unsigned long long next, limit; /* limit 0: for ever */
  int tag;                        /* -1: none */
} counter;

static void count_pull(rs_feed *f, uint64_t credit, void *user) {
  counter *k = user;
  for (uint64_t i = 0; i < credit && i < 64; i++) {
    if (k->limit && k->next > k->limit) {
      rs_feed_complete(f);
      return;
    }
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%llu", k->next++);
    if (rs_feed_push_data(f, buf, (size_t)n) != 0) return;
    stats.elements++;
    if (k->tag >= 0) stats.tags[k->tag].elements++;
  }
  if (k->limit && k->next > k->limit) rs_feed_complete(f);
}

static void count_close(rs_feed *f, int reason, void *user) {
  (void)f, (void)reason;
  free(user);
}

static int tag_index(const rs_bytes *d) {
  if (d->len < 2 || d->ptr[0] != '"' || d->len - 2 >= sizeof stats.tags[0].name) return -1;
  size_t n = d->len - 2;
  for (int i = 0; i < stats.n_tags; i++)
    if (strlen(stats.tags[i].name) == n && memcmp(stats.tags[i].name, d->ptr + 1, n) == 0) return i;
  if (stats.n_tags == MAX_TAGS) return -1;
  memcpy(stats.tags[stats.n_tags].name, d->ptr + 1, n);
  stats.tags[stats.n_tags].name[n] = 0;
  return stats.n_tags++;
}

static int count(rs_conn *c, const rs_request *r, void *user) {
  (void)user;
  counter *k = calloc(1, sizeof *k);
  if (!k) return -1;
  long long n = data_number(r);
  k->next = 1;
  k->limit = n > 0 ? (unsigned long long)n : 0;
  k->tag = tag_index(&r->payload.data);
  rs_feed_options o;
  rs_feed_options_default(&o);
  o.on_pull = count_pull;
  o.on_close = count_close;
  o.user = k;
  rs_feed *f;
  if (rs_feed_new(&f, c, r->stream_id, &o) != 0) {
    free(k);
    return -1;
  }
  if (n == 0) rs_feed_complete(f); /* count 0: nothing, then the end */
  return 0;
}

/* Channel echo: every element of the requester goes back. Credit for the requester's elements is
 * given one for one as they are queued, so no more than a window waits here. */
typedef struct chan_state {
  rs_conn *conn;
  uint32_t sid;
  uint64_t owed; /* credit to give once the queue drained */
} chan_state;

#define CHAN_WINDOW 16

static void chan_input(rs_feed *f, const rs_payload *p, unsigned flags, void *user) {
  chan_state *s = user;
  if (flags & RS_PAYLOAD_NEXT) {
    rs_feed_push_data(f, p->data.ptr, p->data.len);
    if (rs_feed_queued(f) < CHAN_WINDOW)
      rs_conn_request_n(s->conn, s->sid, 1);
    else
      s->owed++;
  }
  if (flags & RS_PAYLOAD_COMPLETE) rs_feed_complete(f);
}

static void chan_pull(rs_feed *f, uint64_t credit, void *user) {
  (void)f, (void)credit;
  chan_state *s = user;
  if (s->owed && rs_conn_request_n(s->conn, s->sid, s->owed) == 0) s->owed = 0;
}

static void chan_close(rs_feed *f, int reason, void *user) {
  (void)f, (void)reason;
  free(user);
}

static int chan(rs_conn *c, const rs_request *r, void *user) {
  (void)user;
  chan_state *s = calloc(1, sizeof *s);
  if (!s) return -1;
  s->conn = c;
  s->sid = r->stream_id;
  rs_feed_options o;
  rs_feed_options_default(&o);
  o.on_input = chan_input;
  o.on_pull = chan_pull;
  o.on_close = chan_close;
  o.user = s;
  rs_feed *f;
  if (rs_feed_new(&f, c, r->stream_id, &o) != 0) {
    free(s);
    return -1;
  }
  rs_feed_push_data(f, r->payload.data.ptr, r->payload.data.len);
  if (r->complete)
    rs_feed_complete(f);
  else
    rs_conn_request_n(c, r->stream_id, CHAN_WINDOW);
  return 0;
}

static int silent(rs_conn *c, const rs_request *r, void *user) {
  (void)user;
  if (r->type == RS_FRAME_REQUEST_RESPONSE) return answer_later(c, r, NULL, 0, 0, true);
  return 0; /* a stream or channel that never sends: the engine keeps it open */
}

static int on_fnf(rs_conn *c, const rs_request *r, void *user) {
  (void)c, (void)user;
  stats.fnf++;
  free(stats.last_fnf);
  stats.last_fnf_len = r->payload.data.len;
  stats.last_fnf = malloc(stats.last_fnf_len + 1);
  if (stats.last_fnf) memcpy(stats.last_fnf, r->payload.data.ptr, stats.last_fnf_len);
  return 0;
}

static int stats_rr(rs_conn *c, const rs_request *r, void *user) {
  (void)user;
  size_t open = 0;
  for (conn_state *s = conns; s; s = s->next) open += rs_conn_stream_count(s->conn);
  open -= 1; /* this request */
  size_t cap = 4608 + stats.last_fnf_len, off = 0;
  char *buf = malloc(cap);
  if (!buf) return -1;
  off += (size_t)snprintf(
      buf + off, cap - off,
      "{\"requests\":%llu,\"rr\":%llu,\"fnf\":%llu,\"elements\":%llu,"
      "\"cancels\":%llu,\"open\":%zu,\"with_client\":%llu,"
      "\"without_client\":%llu,\"client\":%s,\"last_fnf\":%.*s,\"mdpush\":%llu,"
      "\"last_mdpush\":%s%s%s,\"tags\":{",
      stats.requests, stats.rr, stats.fnf, stats.elements, stats.cancels, open, stats.with_client,
      stats.without_client, stats.client[0] ? stats.client : "null",
      stats.last_fnf ? (int)stats.last_fnf_len : 4, stats.last_fnf ? stats.last_fnf : "null",
      stats.mdpush, stats.last_mdpush[0] ? "\"" : "",
      stats.last_mdpush[0] ? stats.last_mdpush : "null", stats.last_mdpush[0] ? "\"" : "");
  for (int i = 0; i < stats.n_tags; i++)
    off += (size_t)snprintf(buf + off, cap - off, "%s\"%s\":%llu", i ? "," : "", stats.tags[i].name,
                            stats.tags[i].elements);
  off += (size_t)snprintf(buf + off, cap - off, "}}");
  int rc = answer_later(c, r, buf, off, 0, false);
  free(buf);
  return rc;
}

/* ---- callbacks: count, then route (or forward to the feeds) ---- */

static void note_client(const rs_payload *p) {
  rs_composite_iter it;
  rs_composite_entry e;
  rs_composite_iter_init(&it, p->metadata.ptr, p->metadata.len);
  while (p->has_metadata && rs_composite_next(&it, &e) == 1) {
    if (e.mime.len == strlen(CLIENT_MIME) && memcmp(e.mime.ptr, CLIENT_MIME, e.mime.len) == 0 &&
        e.content.len < sizeof stats.client) {
      memcpy(stats.client, e.content.ptr, e.content.len);
      stats.client[e.content.len] = 0;
      stats.with_client++;
      return;
    }
  }
  stats.without_client++;
}

/* "rooms.x.echo" is served as "echo": the request goes to the router with routing metadata of
 * its route's last dot-separated part, so every gateway route pattern can reach every route. */
static int on_request(rs_conn *conn, const rs_request *req, void *user) {
  (void)user;
  stats.requests++;
  if (req->type == RS_FRAME_REQUEST_RESPONSE) stats.rr++;
  note_client(&req->payload);
  rs_bytes route;
  if (rs_route_of(rs_conn_get_settings(conn)->metadata_mime, &req->payload, &route) != 1)
    return rs_router_dispatch(router, conn, req);
  const uint8_t *dot = NULL;
  for (size_t i = 0; i < route.len; i++)
    if (route.ptr[i] == '.') dot = route.ptr + i;
  if (!dot || dot + 1 == route.ptr + route.len) return rs_router_dispatch(router, conn, req);
  rs_bytes last = {dot + 1, (size_t)(route.ptr + route.len - dot - 1)};
  uint8_t tags[300], md[400];
  rs_ssize tn = rs_routing_encode(tags, sizeof tags, &last, 1);
  rs_ssize mn = tn > 0 ? rs_composite_encode(md, sizeof md, RS_MIME_ROUTING,
                                             strlen(RS_MIME_ROUTING), tags, (size_t)tn)
                       : -1;
  if (mn <= 0) return rs_router_dispatch(router, conn, req);
  rs_request copy = *req;
  copy.payload.metadata = (rs_bytes){md, (size_t)mn};
  return rs_router_dispatch(router, conn, &copy);
}

static void on_metadata_push(rs_conn *conn, rs_bytes metadata, void *user) {
  (void)user;
  stats.mdpush++;
  stats.last_mdpush[0] = 0;
  rs_payload p = {.metadata = metadata, .has_metadata = true};
  rs_bytes route;
  if (rs_route_of(rs_conn_get_settings(conn)->metadata_mime, &p, &route) != 1 ||
      route.len >= sizeof stats.last_mdpush)
    return;
  for (size_t i = 0; i < route.len; i++) {
    uint8_t ch = route.ptr[i];
    stats.last_mdpush[i] = ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\' ? '?' : (char)ch;
  }
  stats.last_mdpush[route.len] = 0;
}

static void on_cancel(rs_conn *conn, uint32_t sid, void *su, void *user) {
  stats.cancels++;
  pending_drop_stream(conn, sid, false);
  if (su) feed_cb.on_cancel(conn, sid, su, user);
}

static void on_stream_closed(rs_conn *conn, uint32_t sid, void *su, void *user) {
  pending_drop_stream(conn, sid, false);
  if (su) feed_cb.on_stream_closed(conn, sid, su, user);
}

static void grant_lease(uv_timer_t *t) {
  conn_state *s = t->data;
  rs_conn_send_lease(s->conn, 2000, (uint32_t)opt.lease, NULL, uv_now(opt.loop));
}

static int on_setup(rs_conn *conn, const rs_setup_info *setup, void *user) {
  conn_state *s = user;
  if (opt.lease < 0 || !setup->lease) return 0;
  if (!(s->lease_timer = malloc(sizeof *s->lease_timer))) return -1;
  uv_timer_init(rs_runtime_loop(conn), s->lease_timer);
  s->lease_timer->data = s;
  grant_lease(s->lease_timer);
  uv_timer_start(s->lease_timer, grant_lease, 1000, 1000);
  return 0;
}

static void *on_connect(rs_server *server, rs_conn *conn, void *server_user) {
  (void)server, (void)server_user;
  conn_state *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->conn = conn;
  s->next = conns;
  if (conns) conns->prev = s;
  conns = s;
  return s;
}

static void free_handle(uv_handle_t *h) {
  free(h);
}

static void on_disconnect(rs_server *server, rs_conn *conn, void *conn_user, void *server_user) {
  (void)server, (void)server_user;
  conn_state *s = conn_user;
  pending_drop_stream(conn, 0, true);
  if (!s) return;
  if (s->prev)
    s->prev->next = s->next;
  else
    conns = s->next;
  if (s->next) s->next->prev = s->prev;
  if (s->lease_timer) uv_close((uv_handle_t *)s->lease_timer, free_handle);
  free(s);
}

/* ---- main ---- */

static void on_stopped(void *arg) {
  (void)arg;
  uv_close((uv_handle_t *)&opt.sigint, NULL);
  uv_close((uv_handle_t *)&opt.sigterm, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)h, (void)signum;
  uv_signal_stop(&opt.sigint);
  uv_signal_stop(&opt.sigterm);
  rs_server_stop(opt.server, false, on_stopped, NULL);
}

static int usage(void) {
  fprintf(stderr, "usage: gw_backend [--delay-ms N] [--lease N] [--name NAME] URI\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *uri = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--delay-ms") == 0 && i + 1 < argc)
      opt.delay_ms = atoi(argv[++i]);
    else if (strcmp(argv[i], "--lease") == 0 && i + 1 < argc)
      opt.lease = atol(argv[++i]);
    else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
      opt.name = argv[++i];
    else if (argv[i][0] != '-' && !uri)
      uri = argv[i];
    else
      return usage();
  }
  if (!uri || opt.delay_ms < 0) return usage();
  if (!opt.name) opt.name = uri;

  router = rs_router_new(NULL);
  rs_router_add(router, "echo", RS_MODEL_REQUEST_RESPONSE, echo, NULL);
  rs_router_add(router, "delay", RS_MODEL_REQUEST_RESPONSE, delay, NULL);
  rs_router_add(router, "whoami", RS_MODEL_REQUEST_RESPONSE, whoami, NULL);
  rs_router_add(router, "fail",
                RS_MODEL_REQUEST_RESPONSE | RS_MODEL_REQUEST_STREAM | RS_MODEL_REQUEST_CHANNEL,
                fail, NULL);
  rs_router_add(router, "bytes", RS_MODEL_REQUEST_RESPONSE, bytes_rr, NULL);
  rs_router_add(router, "bytes", RS_MODEL_REQUEST_STREAM, bytes_stream, NULL);
  rs_router_add(router, "count", RS_MODEL_REQUEST_STREAM, count, NULL);
  rs_router_add(router, "chan", RS_MODEL_REQUEST_CHANNEL, chan, NULL);
  rs_router_add(router, "silent",
                RS_MODEL_REQUEST_RESPONSE | RS_MODEL_REQUEST_STREAM | RS_MODEL_REQUEST_CHANNEL,
                silent, NULL);
  rs_router_add(router, "stats", RS_MODEL_REQUEST_RESPONSE, stats_rr, NULL);
  rs_router_add(router, "fnf", RS_MODEL_FIRE_AND_FORGET, on_fnf, NULL);
  rs_router_add(router, "pushto", RS_MODEL_REQUEST_RESPONSE, pushto, NULL);

  rs_server_options o;
  rs_server_options_default(&o);
  o.uri = uri;
  o.drain_timeout_ms = 1000;
  o.settings.lease = opt.lease >= 0;
  rs_router_callbacks(&o.callbacks);
  feed_cb = o.callbacks;
  o.callbacks.on_request = on_request;
  o.callbacks.on_cancel = on_cancel;
  o.callbacks.on_stream_closed = on_stream_closed;
  o.callbacks.on_setup = on_setup;
  o.callbacks.on_metadata_push = on_metadata_push;
  o.on_connect = on_connect;
  o.on_disconnect = on_disconnect;

  uv_loop_t loop;
  uv_loop_init(&loop);
  opt.loop = &loop;
  char err[300];
  if (rs_server_start(&opt.server, &loop, &o, err, sizeof err) != 0) {
    fprintf(stderr, "gw_backend: cannot listen on %s: %s\n", uri, err);
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  uv_signal_init(&loop, &opt.sigint);
  uv_signal_init(&loop, &opt.sigterm);
  uv_signal_start(&opt.sigint, on_signal, SIGINT);
  uv_signal_start(&opt.sigterm, on_signal, SIGTERM);
  printf("listening on %s\n", rs_server_uri(opt.server));
  fflush(stdout);
  uv_run(&loop, UV_RUN_DEFAULT);
  while (pendings) pending_drop(pendings);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  rs_router_free(router);
  free(stats.last_fnf);
  return 0;
}
