/* Idle-connection mode of rsocket-bench (--idle N): opens N RSocket connections (tcp:// with a
 * length-prefixed SETUP, or ws:// with an upgrade then a SETUP message) or, for the WebSocket
 * models (ws, gw-req, gw-sub), N plain WebSockets (the upgrade only), spread over several
 * 127.0.0.x source addresses, and holds them. With --pid, it reads the server's resident memory
 * before and after and prints the cost per connection. The client side is deliberately minimal
 * (one small struct per connection) so that 10,000 connections are cheap to hold. */
#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rsocket-bench/bench.h"
#include "rsocket/frame.h"
#include "rsocket/ws.h"
#include "rsocket/uri.h"

#define MAX_PENDING_CONNECTS 256
#define HS_CAP               512

typedef struct idle_state idle_state;

typedef struct iconn {
  idle_state *S;
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  bool ready, failed, closed;
  char key[25];
  uint16_t hs_len;
  char *hs; /* ws: upgrade request, then the response head (freed once upgraded) */
  uint8_t *setup_msg;
} iconn;

struct idle_state {
  rs_uri uri;
  struct sockaddr_storage dst;
  iconn *conns;
  int n, sources, next, pending, ready, failed, closed;
  uint8_t setup[128]; /* tcp: length-prefixed SETUP */
  size_t setup_len;
  uint8_t setup_frame[128];
  size_t setup_frame_len;
  char rbuf[4096];
  uv_timer_t hold;
  uv_timer_t progress; /* fails the pending connections after connect_timeout_s without news */
  double connect_timeout_s;
  uv_signal_t sigint, sigterm;
  bool holding, stopping;
  bool plain; /* ws://: a plain WebSocket, ready once upgraded (no SETUP) */
  uint64_t t_start, t_ready;
  const char *first_error;
  char errbuf[200];
};

static void launch(idle_state *S);
static void on_all_ready(idle_state *S);
static void note_progress(idle_state *S);

static void fail(iconn *c, const char *what, int status) {
  idle_state *S = c->S;
  if (!S->first_error) {
    if (status)
      snprintf(S->errbuf, sizeof S->errbuf, "%s: %s", what, uv_strerror(status));
    else
      snprintf(S->errbuf, sizeof S->errbuf, "%s", what);
    S->first_error = S->errbuf;
  }
  if (!c->ready && !c->failed) {
    c->failed = true;
    S->failed++;
    S->pending--;
    launch(S);
    note_progress(S);
  }
}

static void on_closed(uv_handle_t *h) {
  iconn *c = h->data;
  c->S->closed++;
  free(c->hs);
  c->hs = NULL;
  free(c->setup_msg);
  c->setup_msg = NULL;
}

static void close_conn(iconn *c) {
  if (c->closed) return;
  c->closed = true;
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void became_ready(iconn *c) {
  idle_state *S = c->S;
  c->ready = true;
  S->ready++;
  S->pending--;
  launch(S);
  note_progress(S);
}

static void on_setup_written(uv_write_t *req, int status) {
  iconn *c = req->data;
  if (status < 0) {
    fail(c, "write", status);
    close_conn(c);
    return;
  }
  free(c->setup_msg);
  c->setup_msg = NULL;
  became_ready(c);
}

static void send_setup_ws(iconn *c) {
  idle_state *S = c->S;
  uint8_t mask[4];
  uint32_t r = (uint32_t)rand();
  memcpy(mask, &r, 4);
  c->setup_msg = malloc(RS_WS_MAX_HEADER + S->setup_frame_len);
  if (!c->setup_msg) {
    fail(c, "out of memory", 0);
    close_conn(c);
    return;
  }
  size_t h = rs_ws_frame_header_write(c->setup_msg, true, RS_WS_OP_BINARY, false, mask,
                                      S->setup_frame_len);
  memcpy(c->setup_msg + h, S->setup_frame, S->setup_frame_len);
  rs_ws_mask(c->setup_msg + h, S->setup_frame_len, mask, 0);
  uv_buf_t b = uv_buf_init((char *)c->setup_msg, (unsigned)(h + S->setup_frame_len));
  c->wreq.data = c;
  uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_setup_written);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  iconn *c = h->data;
  if (c->S->uri.websocket && c->hs) {
    *buf = uv_buf_init(c->hs + c->hs_len, (unsigned)(HS_CAP - c->hs_len));
    return;
  }
  *buf = uv_buf_init(c->S->rbuf, sizeof c->S->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  iconn *c = s->data;
  idle_state *S = c->S;
  if (n < 0) {
    if (!S->stopping) fail(c, "connection closed by the server", n == UV_EOF ? 0 : (int)n);
    close_conn(c);
    return;
  }
  if (!S->uri.websocket || !c->hs || n == 0) return; /* idle: ignore what the server sends */
  c->hs_len = (uint16_t)(c->hs_len + n);
  const char *reason = NULL;
  rs_ssize head =
      rs_ws_client_response_check((const uint8_t *)c->hs, c->hs_len, c->key, NULL, NULL, &reason);
  if (head == 0 && c->hs_len < HS_CAP) return;
  if (head <= 0) {
    fail(c, reason ? reason : "bad WebSocket handshake", 0);
    close_conn(c);
    return;
  }
  free(c->hs);
  c->hs = NULL;
  if (S->plain)
    became_ready(c);
  else
    send_setup_ws(c);
}

static void on_upgrade_written(uv_write_t *req, int status) {
  iconn *c = req->data;
  if (status < 0) {
    fail(c, "write", status);
    close_conn(c);
    return;
  }
  c->hs_len = 0; /* the buffer now receives the response */
}

static void on_connect(uv_connect_t *req, int status) {
  iconn *c = req->data;
  idle_state *S = c->S;
  if (status < 0) {
    fail(c, "connect", status);
    close_conn(c);
    return;
  }
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  c->wreq.data = c;
  if (!S->uri.websocket) {
    uv_buf_t b = uv_buf_init((char *)S->setup, (unsigned)S->setup_len);
    uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_setup_written);
    return;
  }
  c->hs = malloc(HS_CAP);
  if (!c->hs || rs_ws_client_key(c->key) != 0) {
    fail(c, "out of memory", 0);
    close_conn(c);
    return;
  }
  rs_ssize len = rs_ws_client_request(c->hs, HS_CAP, S->uri.host, S->uri.path, c->key, NULL, false);
  if (len <= 0) {
    fail(c, "upgrade request too long", 0);
    close_conn(c);
    return;
  }
  c->hs_len = (uint16_t)len;
  uv_buf_t b = uv_buf_init(c->hs, (unsigned)len);
  uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_upgrade_written);
}

static void launch(idle_state *S) {
  while (!S->stopping && S->next < S->n && S->pending < MAX_PENDING_CONNECTS) {
    iconn *c = &S->conns[S->next];
    c->S = S;
    uv_tcp_init(uv_default_loop(), &c->tcp);
    c->tcp.data = c;
    c->creq.data = c;
    S->pending++;
    /* Source address 127.0.0.(1 + i % sources), any port: more than one address's worth of
     * ephemeral ports is available this way. */
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(S->next % S->sources));
    S->next++;
    int rc = 0;
    if (S->dst.ss_family == AF_INET) rc = uv_tcp_bind(&c->tcp, (struct sockaddr *)&src, 0);
    if (rc == 0) rc = uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&S->dst, on_connect);
    if (rc != 0) {
      fail(c, "connect", rc);
      close_conn(c);
    }
  }
}

/* Resident memory of `pid` in KiB from /proc, or -1. */
static long rss_kib(long pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%ld/status", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long v = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &v) == 1) break;
  fclose(f);
  return v;
}

static long server_pid;
static long server_rss_before, server_rss_after;
static double hold_seconds;
static bool as_json;

static void stop_all(idle_state *S) {
  if (S->stopping) return;
  S->stopping = true;
  for (int i = 0; i < S->next; i++) close_conn(&S->conns[i]);
  uv_close((uv_handle_t *)&S->hold, NULL);
  uv_close((uv_handle_t *)&S->progress, NULL);
  uv_close((uv_handle_t *)&S->sigint, NULL);
  uv_close((uv_handle_t *)&S->sigterm, NULL);
}

static void report(idle_state *S) {
  long self = rss_kib((long)getpid());
  double secs = (double)(S->t_ready - S->t_start) / 1e9;
  double per = -1;
  if (server_pid && server_rss_before >= 0 && server_rss_after >= 0 && S->ready > 0)
    per = (double)(server_rss_after - server_rss_before) * 1024.0 / S->ready;
  if (as_json) {
    json_t *o = json_object();
    json_object_set_new(o, "uri",
                        json_string(S->plain           ? "ws-plain"
                                    : S->uri.websocket ? "ws"
                                                       : "tcp"));
    json_object_set_new(o, "requested", json_integer(S->n));
    json_object_set_new(o, "open", json_integer(S->ready));
    json_object_set_new(o, "failed", json_integer(S->failed));
    json_object_set_new(o, "sources", json_integer(S->sources));
    json_object_set_new(o, "connect_seconds", json_real(secs));
    json_object_set_new(o, "client_rss_kib", json_integer(self));
    if (server_pid) {
      json_object_set_new(o, "server_rss_before_kib", json_integer(server_rss_before));
      json_object_set_new(o, "server_rss_after_kib", json_integer(server_rss_after));
      json_object_set_new(o, "server_bytes_per_connection", json_real(per));
    }
    if (S->first_error) json_object_set_new(o, "first_error", json_string(S->first_error));
    char *s = json_dumps(o, JSON_COMPACT);
    puts(s);
    free(s);
    json_decref(o);
  } else {
    printf("idle: %d of %d connections open (%d failed) in %.2f s from %d source addresses\n",
           S->ready, S->n, S->failed, secs, S->sources);
    if (server_pid)
      printf("server (pid %ld) resident memory: %ld KiB before, %ld KiB after: %.0f bytes per "
             "idle connection\n",
             server_pid, server_rss_before, server_rss_after, per);
    printf("this client: %ld KiB resident\n", self);
    if (S->first_error) printf("first error: %s\n", S->first_error);
  }
  fflush(stdout);
}

static void on_hold_done(uv_timer_t *t) {
  stop_all(t->data);
}

static void on_settled(uv_timer_t *t) {
  idle_state *S = t->data;
  if (server_pid) server_rss_after = rss_kib(server_pid);
  report(S);
  if (S->ready == 0) {
    stop_all(S); /* nothing to hold */
    return;
  }
  if (hold_seconds > 0) uv_timer_start(&S->hold, on_hold_done, (uint64_t)(hold_seconds * 1000), 0);
  /* else hold until a signal */
}

static void on_stalled(uv_timer_t *t) {
  idle_state *S = t->data;
  char why[100];
  snprintf(why, sizeof why, "%s within %g s",
           S->uri.websocket ? "no WebSocket upgrade" : "not connected", S->connect_timeout_s);
  for (int i = 0; i < S->next; i++) {
    iconn *c = &S->conns[i];
    if (c->ready || c->failed || c->closed) continue;
    fail(c, why, 0);
    close_conn(c);
  }
}

/* A connection became ready or failed: the next gets connect_timeout_s again; all settled,
 * measure. */
static void note_progress(idle_state *S) {
  if (S->stopping || S->t_ready) return;
  if (S->ready + S->failed == S->n) {
    uv_timer_stop(&S->progress);
    on_all_ready(S);
    return;
  }
  uv_timer_start(&S->progress, on_stalled, (uint64_t)(S->connect_timeout_s * 1000), 0);
}

static void on_all_ready(idle_state *S) {
  S->t_ready = bench_now_ns();
  /* Let the server finish processing the last SETUPs before measuring. */
  uv_timer_start(&S->hold, on_settled, 500, 0);
}

static void on_signal(uv_signal_t *h, int sig) {
  (void)sig;
  stop_all(h->data);
}

int idle_run(const char *uri, int n, int sources, double hold_s, bool json, long pid,
             double connect_timeout_s, bool plain) {
  idle_state *S = calloc(1, sizeof *S);
  if (!S) return 1;
  char err[1500];
  if (rs_uri_parse(uri, &S->uri, err, sizeof err) != 0) {
    fprintf(stderr, "rsocket-bench: %s\n", err);
    free(S);
    return 2;
  }
  if (S->uri.secure || (plain && !S->uri.websocket)) {
    fprintf(stderr, "rsocket-bench: --idle supports tcp:// and ws:// only (ws:// only for the "
                    "WebSocket models)\n");
    free(S);
    return 2;
  }
  S->plain = plain;
  S->connect_timeout_s = connect_timeout_s;
  if (bench_resolve(S->uri.host, S->uri.port, connect_timeout_s, &S->dst, err, sizeof err) != 0) {
    fprintf(stderr, "rsocket-bench: %s\n", err);
    free(S);
    return 3;
  }
  /* SETUP: keepalive 10 minutes, lifetime ~24 days, so idle connections stay up. */
  rs_frame f;
  rs_frame_init(&f, RS_FRAME_SETUP, 0);
  f.u.setup.keepalive_ms = 600000;
  f.u.setup.max_lifetime_ms = 0x7fffffff;
  f.u.setup.metadata_mime = rs_bytes_str("application/octet-stream");
  f.u.setup.data_mime = rs_bytes_str("application/octet-stream");
  rs_ssize flen = rs_frame_encode(&f, S->setup_frame, sizeof S->setup_frame);
  if (flen <= 0) {
    fprintf(stderr, "rsocket-bench: cannot encode SETUP: %s\n", rs_strerror((int)flen));
    free(S);
    return 1;
  }
  S->setup_frame_len = (size_t)flen;
  rs_frame_put_length(S->setup, (size_t)flen);
  memcpy(S->setup + 3, S->setup_frame, (size_t)flen);
  S->setup_len = 3 + (size_t)flen;
  S->n = n;
  S->sources = S->dst.ss_family == AF_INET ? sources : 1;
  S->conns = calloc((size_t)n, sizeof *S->conns);
  if (!S->conns) {
    free(S);
    return 1;
  }
  server_pid = pid;
  hold_seconds = hold_s;
  as_json = json;
  if (pid) server_rss_before = rss_kib(pid);
  if (pid && server_rss_before < 0) {
    fprintf(stderr, "rsocket-bench: cannot read /proc/%ld/status\n", pid);
    free(S->conns);
    free(S);
    return 2;
  }
  uv_loop_t *loop = uv_default_loop();
  uv_timer_init(loop, &S->hold);
  S->hold.data = S;
  uv_timer_init(loop, &S->progress);
  S->progress.data = S;
  uv_timer_start(&S->progress, on_stalled, (uint64_t)(connect_timeout_s * 1000), 0);
  uv_signal_init(loop, &S->sigint);
  uv_signal_init(loop, &S->sigterm);
  S->sigint.data = S->sigterm.data = S;
  uv_signal_start(&S->sigint, on_signal, SIGINT);
  uv_signal_start(&S->sigterm, on_signal, SIGTERM);
  S->t_start = bench_now_ns();
  launch(S);
  uv_run(loop, UV_RUN_DEFAULT);
  int status = S->ready == 0 ? 3 : S->failed ? 1 : 0;
  if (!S->t_ready) report(S); /* interrupted before every connection was up */
  uv_loop_close(loop);
  free(S->conns);
  free(S);
  return status;
}
