/* The public WebSocket session API over loopback: one ws:// server port carrying RSocket on
 * /rsocket, plain messages on /json, refusals, plain HTTP (GET, HEAD, 405, 404); the handshake
 * hook's view of the request; the Origin hook (whole value, the server's user pointer); session
 * back-pressure (writable, on_drained, pause_reading); client failures; graceful stop. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsocket/websocket.h"

/* ---- the pure helpers ---- */

static rs_http_request parse(const char *head) {
  rs_http_request r;
  assert_true(rs_http_request_parse(&r, (const uint8_t *)head, strlen(head), "peer") > 0);
  return r;
}

static void test_request_views(void **state) {
  (void)state;
  rs_http_request r = parse("GET /a/b?token=x%2By+z&flag&e=&bad=%4&nul=%00#frag HTTP/1.1\r\n"
                            "Host: h:1\r\nX-Thing:  two words \r\nx-thing: second\r\n"
                            "Origin: https://app.example\r\n\r\n");
  tu_assert_bytes_str(r.method, "GET");
  tu_assert_bytes_str(r.path, "/a/b");
  tu_assert_bytes_str(r.query, "token=x%2By+z&flag&e=&bad=%4&nul=%00");
  tu_assert_bytes_str(r.origin, "https://app.example");
  assert_false(r.websocket);
  assert_string_equal(r.peer, "peer");
  tu_assert_bytes_str(rs_http_request_header(&r, "x-THING"), "two words");
  assert_null(rs_http_request_header(&r, "Missing").ptr);
  assert_null(rs_http_request_header(&r, "X-Thin").ptr);
  char out[16];
  assert_int_equal(rs_http_query_param(&r, "token", out, sizeof out), 5);
  assert_string_equal(out, "x+y z");
  assert_int_equal(rs_http_query_param(&r, "flag", out, sizeof out), 0);
  assert_int_equal(rs_http_query_param(&r, "e", out, sizeof out), 0);
  assert_int_equal(rs_http_query_param(&r, "bad", out, sizeof out), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_http_query_param(&r, "nul", out, sizeof out), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_http_query_param(&r, "tok", out, sizeof out), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_http_query_param(&r, "token", out, 5), RS_ERR_BUFFER_TOO_SMALL);
  rs_http_request q = parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  assert_null(q.query.ptr);
  assert_int_equal(rs_http_query_param(&q, "a", out, sizeof out), RS_ERR_INVALID_ARGUMENT);
  rs_http_request u = parse("GET /x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: json, rsocket\r\n"
                            "\r\n");
  assert_true(u.websocket);
  assert_true(rs_http_request_offers(&u, "rsocket"));
  assert_true(rs_http_request_offers(&u, "json"));
  assert_false(rs_http_request_offers(&u, "rsock"));
  assert_string_equal(rs_http_status_text(404), "Not Found");
}

/* ---- the server ---- */

#define LONG_ORIGIN 3000

typedef struct fixture {
  uv_loop_t loop;
  rs_server *server;
  int port;
  char uri[128];
  /* what the server saw */
  char origin_seen[LONG_ORIGIN + 64];
  void *origin_user;
  int origin_calls;
  char path_seen[64], query_token[64], header_seen[64];
  int upgrades, opens, closes, drains;
  int flood_left;
  unsigned last_close_code;
  rs_ws_session *server_session;
  bool stopped;
} fixture;

static fixture F;

static bool origin_allowed(const char *origin, void *user) {
  F.origin_calls++;
  F.origin_user = user;
  snprintf(F.origin_seen, sizeof F.origin_seen, "%s", origin ? origin : "(none)");
  return !origin || strstr(origin, "evil") == NULL;
}

static void on_upgrade(rs_server *s, const rs_http_request *req, rs_ws_decision *d, void *user) {
  (void)s, (void)user;
  F.upgrades++;
  snprintf(F.path_seen, sizeof F.path_seen, "%.*s", (int)req->path.len, req->path.ptr);
  char tok[64];
  if (rs_http_query_param(req, "token", tok, sizeof tok) >= 0)
    snprintf(F.query_token, sizeof F.query_token, "%s", tok);
  rs_bytes h = rs_http_request_header(req, "X-Test");
  if (h.ptr) snprintf(F.header_seen, sizeof F.header_seen, "%.*s", (int)h.len, h.ptr);
  if (req->path.len == 5 && memcmp(req->path.ptr, "/json", 5) == 0) {
    d->verdict = RS_WS_MESSAGES;
    d->subprotocol = rs_http_request_offers(req, "json") ? "json" : NULL;
    d->user = &F;
  } else if (req->path.len == 5 && memcmp(req->path.ptr, "/deny", 5) == 0) {
    d->verdict = RS_WS_REFUSE;
    d->status = 401;
    d->reason = "no token";
  } else if (req->path.len == 6 && memcmp(req->path.ptr, "/wrong", 6) == 0) {
    d->verdict = RS_WS_MESSAGES;
    d->subprotocol = "never-offered";
  }
  /* /rsocket: the default (RSocket on the URI's path) */
}

static void s_open(rs_ws_session *s, void *user) {
  assert_ptr_equal(user, &F);
  F.opens++;
  F.server_session = s;
}

/* "flood N": N messages of 64 KiB, sent while writable and continued on_drained, then "done". */
static void pump(rs_ws_session *s) {
  static uint8_t block[65536];
  while (F.flood_left > 0 && rs_ws_session_writable(s)) {
    assert_int_equal(rs_ws_session_send(s, false, block, sizeof block), 0);
    if (--F.flood_left == 0) assert_int_equal(rs_ws_session_send(s, true, "done", 4), 0);
  }
}

/* Echoes in upper case, or starts a flood. */
static void s_message(rs_ws_session *s, bool text, const uint8_t *d, size_t n, void *user) {
  (void)user;
  if (n > 6 && memcmp(d, "flood ", 6) == 0) {
    F.flood_left = atoi((const char *)d + 6);
    pump(s);
    return;
  }
  if (!text) { /* binary: echoed whole */
    assert_int_equal(rs_ws_session_send(s, false, d, n), 0);
    return;
  }
  char up[256];
  size_t m = n < sizeof up ? n : sizeof up;
  for (size_t i = 0; i < m; i++) up[i] = (char)(d[i] >= 'a' && d[i] <= 'z' ? d[i] - 32 : d[i]);
  assert_int_equal(rs_ws_session_send(s, text, up, m), 0);
}

static void s_drained(rs_ws_session *s, void *user) {
  (void)user;
  F.drains++;
  pump(s);
}

static void s_close(rs_ws_session *s, unsigned code, const char *reason, bool remote, void *user) {
  (void)s, (void)reason, (void)remote, (void)user;
  F.closes++;
  F.last_close_code = code;
  F.server_session = NULL;
}

static const rs_ws_session_callbacks server_cbs = {s_open, s_message, s_drained, s_close};

static void on_http(rs_server *s, const rs_http_request *req, rs_http_response *res, void *user) {
  (void)s, (void)user;
  if (req->path.len == 8 && memcmp(req->path.ptr, "/healthz", 8) == 0) {
    static const char *const hdrs[] = {"Cache-Control: no-store", NULL};
    assert_int_equal(rs_http_respond(res, 200, "text/plain", hdrs, "ok\n", 3), 0);
    assert_int_equal(rs_http_respond(res, 200, NULL, NULL, "x", 1), RS_ERR_INVALID_STATE);
  } else if (req->path.len == 4 && memcmp(req->path.ptr, "/bad", 4) == 0) {
    static const char *const evil[] = {"X: a\r\nSet-Cookie: b", NULL};
    assert_int_equal(rs_http_respond(res, 200, NULL, evil, "", 0), RS_ERR_INVALID_ARGUMENT);
    assert_int_equal(rs_http_respond(res, 99, NULL, NULL, "", 0), RS_ERR_INVALID_ARGUMENT);
  }
}

/* RSocket on /rsocket: request-response echo. */
static int on_request(rs_conn *conn, const rs_request *req, void *user) {
  (void)user;
  rs_payload p = rs_payload_data(req->payload.data);
  return rs_conn_send_payload(conn, req->stream_id, &p, true);
}

static void start_server(void) {
  memset(&F, 0, sizeof F);
  assert_int_equal(uv_loop_init(&F.loop), 0);
  rs_server_options o;
  rs_server_options_default(&o);
  o.uri = "ws://127.0.0.1:0/rsocket";
  o.callbacks.struct_size = sizeof o.callbacks;
  o.callbacks.on_request = on_request;
  o.on_upgrade = on_upgrade;
  o.messages = &server_cbs;
  o.on_http = on_http;
  o.ws.origin_allowed = origin_allowed;
  o.user = &F;
  o.settings.output_high_watermark = 256 * 1024;
  char err[256];
  assert_int_equal(rs_server_start(&F.server, &F.loop, &o, err, sizeof err), 0);
  F.port = rs_server_port(F.server);
}

static void on_stopped(void *arg) {
  (void)arg;
  F.stopped = true;
}

static void stop_server(void) {
  rs_server_stop(F.server, true, on_stopped, NULL);
  for (int i = 0; i < 2000 && !F.stopped; i++) uv_run(&F.loop, UV_RUN_ONCE);
  assert_true(F.stopped);
  uv_run(&F.loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&F.loop), 0);
}

/* ---- a raw HTTP exchange (the client side of plain HTTP and refusals) ---- */

typedef struct raw {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  uv_timer_t timer; /* with `piece`: writes the request `piece` bytes at a time */
  char *request;
  size_t request_len, sent, piece;
  const char *until; /* close once the reply holds this (NULL: a 101 head, or the server's close) */
  char reply[8192];
  size_t len;
  bool done;
} raw;

static void raw_timer_closed(uv_handle_t *h) {
  ((raw *)h->data)->done = true;
}

static void raw_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  (void)sz;
  raw *r = h->data;
  *b = uv_buf_init(r->reply + r->len, (unsigned)(sizeof r->reply - 1 - r->len));
}

static void raw_closed(uv_handle_t *h) {
  raw *r = h->data;
  if (r->piece)
    uv_close((uv_handle_t *)&r->timer, raw_timer_closed);
  else
    r->done = true;
}

static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  raw *r = s->data;
  if (n > 0) r->len += (size_t)n;
  r->reply[r->len] = '\0';
  bool upgraded = strncmp(r->reply, "HTTP/1.1 101 ", 13) == 0 && strstr(r->reply, "\r\n\r\n");
  if (r->until) upgraded = strstr(r->reply, r->until) != NULL;
  if (n < 0 || upgraded || r->len == sizeof r->reply - 1) {
    if (r->piece) uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)s, raw_closed);
  }
}

static void raw_written(uv_write_t *w, int status) {
  (void)w, (void)status;
}

/* The next piece of the request (the whole of it goes out in a few milliseconds). */
static void raw_tick(uv_timer_t *t) {
  raw *r = t->data;
  size_t n = r->request_len - r->sent < r->piece ? r->request_len - r->sent : r->piece;
  uv_buf_t b = uv_buf_init(r->request + r->sent, (unsigned)n);
  int w = uv_try_write((uv_stream_t *)&r->tcp, &b, 1);
  if (w > 0) r->sent += (size_t)w;
  if (r->sent == r->request_len) uv_timer_stop(t);
}

static void raw_connected(uv_connect_t *c, int status) {
  raw *r = c->data;
  assert_int_equal(status, 0);
  if (r->piece) {
    uv_timer_start(&r->timer, raw_tick, 0, 2);
  } else {
    uv_buf_t b = uv_buf_init(r->request, (unsigned)r->request_len);
    uv_write(&r->wreq, (uv_stream_t *)&r->tcp, &b, 1, raw_written);
  }
  uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_read);
}

/* Sends `request` (`piece` bytes at a time, 2 ms apart; 0: at once) and returns everything the
 * server sent until it closed, or until the reply holds `until`. */
static const char *exchange_pieces(raw *r, const char *request, size_t len, size_t piece,
                                   const char *until) {
  memset(r, 0, sizeof *r);
  r->request = (char *)request;
  r->request_len = len;
  r->piece = piece;
  r->until = until;
  if (piece) {
    uv_timer_init(&F.loop, &r->timer);
    r->timer.data = r;
  }
  uv_tcp_init(&F.loop, &r->tcp);
  r->tcp.data = r;
  r->creq.data = r;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", F.port, &a);
  uv_tcp_connect(&r->creq, &r->tcp, (struct sockaddr *)&a, raw_connected);
  for (int i = 0; i < 20000 && !r->done; i++) uv_run(&F.loop, UV_RUN_ONCE);
  assert_true(r->done);
  r->reply[r->len] = '\0';
  return r->reply;
}

static const char *exchange(raw *r, const char *request) {
  return exchange_pieces(r, request, strlen(request), 0, NULL);
}

static const char *upgrade_head(char *buf, size_t cap, const char *target, const char *extra) {
  snprintf(buf, cap,
           "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
           target, extra);
  return buf;
}

static void test_plain_http(void **state) {
  (void)state;
  start_server();
  raw r;
  const char *rep = exchange(&r, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_non_null(strstr(rep, "HTTP/1.1 200 OK\r\n"));
  assert_non_null(strstr(rep, "Content-Length: 3\r\n"));
  assert_non_null(strstr(rep, "Cache-Control: no-store\r\n"));
  assert_non_null(strstr(rep, "Connection: close\r\n"));
  assert_non_null(strstr(rep, "\r\n\r\nok\n"));
  rep = exchange(&r, "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_non_null(strstr(rep, "Content-Length: 3\r\n"));
  assert_null(strstr(rep, "ok\n")); /* no body for HEAD */
  rep = exchange(&r, "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  assert_non_null(strstr(rep, "HTTP/1.1 405 Method Not Allowed\r\n"));
  assert_non_null(strstr(rep, "Allow: GET, HEAD\r\n"));
  rep = exchange(&r, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_non_null(strstr(rep, "HTTP/1.1 404 Not Found\r\n"));
  rep = exchange(&r, "GET /bad HTTP/1.1\r\nHost: x\r\n\r\n"); /* rejected answers: 404 */
  assert_non_null(strstr(rep, "HTTP/1.1 404 Not Found\r\n"));
  assert_null(strstr(rep, "Set-Cookie"));
  assert_int_equal(F.upgrades, 0);
  stop_server();
}

static void test_refusals(void **state) {
  (void)state;
  start_server();
  raw r;
  char head[1024];
  const char *rep =
      exchange(&r, upgrade_head(head, sizeof head, "/deny?token=t1", "X-Test: v\r\n"));
  assert_non_null(strstr(rep, "HTTP/1.1 401 Unauthorized\r\n"));
  assert_non_null(strstr(rep, "no token"));
  assert_string_equal(F.path_seen, "/deny");
  assert_string_equal(F.query_token, "t1");
  assert_string_equal(F.header_seen, "v");
  rep = exchange(&r, upgrade_head(head, sizeof head, "/elsewhere", ""));
  assert_non_null(strstr(rep, "HTTP/1.1 404 Not Found\r\n"));
  rep = exchange(&r, upgrade_head(head, sizeof head, "/wrong", ""));
  assert_non_null(strstr(rep, "HTTP/1.1 500 "));
  stop_server();
}

/* Regression (issue 12): the Origin hook got a NULL user pointer and an Origin cut at 511 bytes.
 * It now gets the server's user pointer and the whole value. */
static void test_origin_hook_whole_value_and_user(void **state) {
  (void)state;
  start_server();
  raw r;
  char head[LONG_ORIGIN + 512], extra[LONG_ORIGIN + 64];
  const char *rep;
  char origin[LONG_ORIGIN + 1];
  memcpy(origin, "https://", 8);
  memset(origin + 8, 'a', LONG_ORIGIN - 8);
  origin[LONG_ORIGIN] = '\0';
  snprintf(extra, sizeof extra, "Origin: %s\r\n", origin);
  rep = exchange(&r, upgrade_head(head, sizeof head, "/json", extra));
  assert_non_null(strstr(rep, "HTTP/1.1 101 "));
  assert_ptr_equal(F.origin_user, &F);
  assert_int_equal(strlen(F.origin_seen), LONG_ORIGIN);
  assert_string_equal(F.origin_seen, origin);
  rep = exchange(&r, upgrade_head(head, sizeof head, "/json", "Origin: https://evil.example\r\n"));
  assert_non_null(strstr(rep, "HTTP/1.1 403 Forbidden\r\n"));
  stop_server();
}

/* Regression (issue 13): a request head over 16 KiB got 400 instead of 431. */
static void test_oversized_head_gets_431(void **state) {
  (void)state;
  start_server();
  raw r;
  size_t n = 20000;
  char *req = malloc(n + 64);
  assert_non_null(req);
  int k = snprintf(req, n + 64, "GET /json HTTP/1.1\r\nHost: x\r\nX-Big: ");
  memset(req + k, 'a', n - (size_t)k);
  strcpy(req + n, "\r\n\r\n");
  const char *rep = exchange(&r, req);
  free(req);
  assert_non_null(strstr(rep, "HTTP/1.1 431 Request Header Fields Too Large\r\n"));
  stop_server();
}

/* A head is parsed where it arrived when one read has all of it, else gathered across reads:
 * both must answer the same, and a frame right behind the head (in the same read as its end)
 * must reach the session. */
static void test_head_whole_or_in_pieces(void **state) {
  (void)state;
  start_server();
  static const size_t pieces[] = {0, 1, 7, 100};
  for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
    raw r;
    char req[1024];
    upgrade_head(req, sizeof req, "/json", "");
    size_t n = strlen(req);
    /* A masked text frame "hi" (mask 01 02 03 04). */
    const uint8_t frame[] = {0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2};
    memcpy(req + n, frame, sizeof frame);
    const char *rep = exchange_pieces(&r, req, n + sizeof frame, pieces[i], "\x81\x02HI");
    assert_non_null(strstr(rep, "HTTP/1.1 101 "));
    assert_non_null(strstr(rep, "\r\n\r\n\x81\x02HI"));
  }
  for (int i = 0; i < 200 && F.closes < F.opens; i++) uv_run(&F.loop, UV_RUN_ONCE);
  assert_int_equal(F.opens, 4);
  stop_server();
}

/* ---- clients ---- */

#define ECHO_SIZE 65536

typedef struct peer {
  rs_ws_session *s;
  int opens, closes;
  unsigned code;
  bool remote;
  char reason[512];
  char last[256];
  int messages, done;
  int binaries, corrupt;
  size_t bytes;
  char subprotocol[32];
} peer;

static void c_open(rs_ws_session *s, void *user) {
  peer *p = user;
  p->opens++;
  const char *sp = rs_ws_session_subprotocol(s);
  snprintf(p->subprotocol, sizeof p->subprotocol, "%s", sp ? sp : "");
}

static void c_message(rs_ws_session *s, bool text, const uint8_t *d, size_t n, void *user) {
  (void)s;
  peer *p = user;
  p->messages++;
  p->bytes += n;
  if (text) {
    snprintf(p->last, sizeof p->last, "%.*s", (int)n, (const char *)d);
    if (n == 4 && memcmp(d, "done", 4) == 0) p->done++;
  } else if (n == ECHO_SIZE) { /* echo i: every byte is i */
    bool same = true;
    for (size_t i = 0; i < n; i++) same &= d[i] == (uint8_t)p->binaries;
    p->corrupt += !same;
    p->binaries++;
  }
}

static void c_close(rs_ws_session *s, unsigned code, const char *reason, bool remote, void *user) {
  (void)s;
  peer *p = user;
  p->closes++;
  p->code = code;
  p->remote = remote;
  snprintf(p->reason, sizeof p->reason, "%s", reason);
  p->s = NULL;
}

static const rs_ws_session_callbacks client_cbs = {c_open, c_message, NULL, c_close};

static void start_client(peer *p, const char *uri, const char *subprotocol) {
  memset(p, 0, sizeof *p);
  rs_ws_client_options o;
  rs_ws_client_options_default(&o);
  o.uri = uri;
  o.ws.subprotocol = subprotocol;
  o.callbacks = client_cbs;
  o.user = p;
  char err[256];
  assert_int_equal(rs_ws_client_start(&p->s, &F.loop, &o, err, sizeof err), 0);
}

#define RUN_UNTIL(cond)                                                                            \
  do {                                                                                             \
    for (int i_ = 0; i_ < 5000 && !(cond); i_++) uv_run(&F.loop, UV_RUN_ONCE);                     \
    assert_true(cond);                                                                             \
  } while (0)

static void test_messages_and_close(void **state) {
  (void)state;
  start_server();
  char uri[128];
  snprintf(uri, sizeof uri, "ws://127.0.0.1:%d/json?token=abc", F.port);
  peer p;
  start_client(&p, uri, "json");
  assert_int_equal(rs_ws_session_send(p.s, true, "early", 5), RS_ERR_INVALID_STATE);
  RUN_UNTIL(p.opens == 1 && F.opens == 1);
  assert_string_equal(p.subprotocol, "json");
  assert_string_equal(rs_ws_session_subprotocol(F.server_session), "json");
  assert_string_equal(F.query_token, "abc");
  assert_ptr_equal(rs_ws_session_server(F.server_session), F.server);
  assert_true(strncmp(rs_ws_session_peer(F.server_session), "127.0.0.1:", 10) == 0);
  assert_int_equal(rs_ws_session_send(p.s, true, "hello", 5), 0);
  assert_int_equal(rs_ws_session_send(p.s, true, "\xff", 1), RS_ERR_INVALID_ARGUMENT);
  RUN_UNTIL(p.messages == 1);
  assert_string_equal(p.last, "HELLO");
  rs_ws_session_close(p.s, 4000, "bye");
  RUN_UNTIL(p.closes == 1 && F.closes == 1);
  assert_int_equal(p.code, 4000); /* the server's answer echoes our code */
  assert_int_equal(F.last_close_code, 4000);
  stop_server();
}

/* Back-pressure: the client stops reading, the server fills its watermark and gets on_drained
 * once the client reads again. */
static void test_drained(void **state) {
  (void)state;
  start_server();
  char uri[128];
  snprintf(uri, sizeof uri, "ws://127.0.0.1:%d/json", F.port);
  peer p;
  start_client(&p, uri, NULL);
  RUN_UNTIL(p.opens == 1 && F.server_session);
  rs_ws_session_pause_reading(p.s, true);
  assert_int_equal(rs_ws_session_send(p.s, true, "flood 512", 9), 0); /* 32 MiB */
  /* The server sends while its output is under the watermark, then waits: no kernel buffer
   * holds 32 MiB, so it is still waiting for a reader. */
  RUN_UNTIL(F.flood_left > 0 && F.flood_left < 512);
  for (int i = 0; i < 200; i++) uv_run(&F.loop, UV_RUN_NOWAIT);
  assert_true(F.flood_left > 0);
  assert_true(p.bytes == 0);
  rs_ws_session_pause_reading(p.s, false);
  RUN_UNTIL(p.done == 1);
  assert_true(F.drains >= 1);
  assert_int_equal(p.bytes, 512 * 65536 + 4);
  rs_ws_session_close(p.s, RS_WS_CLOSE_NORMAL, NULL);
  RUN_UNTIL(p.closes == 1);
  stop_server();
}

/* Regression: a session that sends while a write the socket could not take at once is still in
 * flight (echoes to a client that is not reading) grows the WebSocket's buffer, which may move
 * it; the write in flight must not be made from the old place. 200 echoes of 64 KiB with a
 * pattern each arrive intact, in order. */
static void test_send_while_partial_write_in_flight(void **state) {
  (void)state;
  start_server();
  char uri[128];
  snprintf(uri, sizeof uri, "ws://127.0.0.1:%d/json", F.port);
  peer p;
  start_client(&p, uri, NULL);
  RUN_UNTIL(p.opens == 1 && F.server_session);
  rs_ws_session_pause_reading(p.s, true);
  static uint8_t msg[ECHO_SIZE];
  for (int i = 0; i < 200; i++) {
    memset(msg, i, sizeof msg);
    assert_int_equal(rs_ws_session_send(p.s, false, msg, sizeof msg), 0);
    uv_run(&F.loop, UV_RUN_NOWAIT);
  }
  for (int i = 0; i < 300; i++) uv_run(&F.loop, UV_RUN_NOWAIT);
  assert_true(p.binaries == 0);
  rs_ws_session_pause_reading(p.s, false);
  RUN_UNTIL(p.binaries == 200);
  assert_int_equal(p.corrupt, 0);
  rs_ws_session_close(p.s, RS_WS_CLOSE_NORMAL, NULL);
  RUN_UNTIL(p.closes == 1);
  stop_server();
}

/* RSocket over the same port, on /rsocket. */
typedef struct rsc {
  rs_client *c;
  bool connected, answered, closed;
  char answer[64];
} rsc;

static void rsc_event(rs_client *c, rs_client_event ev, const char *msg, void *user) {
  (void)c, (void)msg;
  rsc *r = user;
  if (ev == RS_CLIENT_CONNECTED) r->connected = true;
  if (ev == RS_CLIENT_CLOSED) r->closed = true;
}

static void rsc_payload(rs_conn *conn, uint32_t sid, void *su, const rs_payload *p, unsigned fl,
                        void *user) {
  (void)conn, (void)sid, (void)su, (void)fl;
  rsc *r = user;
  snprintf(r->answer, sizeof r->answer, "%.*s", (int)p->data.len, (const char *)p->data.ptr);
  r->answered = true;
}

static void test_rsocket_beside_messages(void **state) {
  (void)state;
  start_server();
  char uri[128];
  snprintf(uri, sizeof uri, "ws://127.0.0.1:%d/json", F.port);
  peer p;
  start_client(&p, uri, NULL);
  rsc r = {0};
  rs_client_options o;
  rs_client_options_default(&o);
  snprintf(uri, sizeof uri, "ws://127.0.0.1:%d/rsocket", F.port);
  o.uri = uri;
  o.callbacks.struct_size = sizeof o.callbacks;
  o.callbacks.on_payload = rsc_payload;
  o.on_event = rsc_event;
  o.user = &r;
  char err[256];
  assert_int_equal(rs_client_start(&r.c, &F.loop, &o, err, sizeof err), 0);
  rs_payload pl = rs_payload_data(rs_bytes_str("ping"));
  assert_true(rs_conn_request_response(rs_client_conn(r.c), &pl, NULL) > 0);
  RUN_UNTIL(r.answered && p.opens == 1);
  assert_string_equal(r.answer, "ping");
  assert_int_equal(rs_server_connection_count(F.server), 2);
  assert_int_equal(rs_ws_session_send(p.s, true, "x", 1), 0);
  RUN_UNTIL(p.messages == 1);
  rs_client_close(r.c, false);
  RUN_UNTIL(r.closed);
  /* A graceful stop closes plain sessions with 1001. */
  rs_server_stop(F.server, true, on_stopped, NULL);
  RUN_UNTIL(p.closes == 1 && F.stopped);
  assert_int_equal(p.code, RS_WS_CLOSE_GOING_AWAY);
  assert_true(p.remote);
  uv_run(&F.loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&F.loop), 0);
}

static void test_client_failures(void **state) {
  (void)state;
  start_server();
  peer p;
  char uri[128];
  /* a refused upgrade: on_close 1006 with the server's status line */
  snprintf(uri, sizeof uri, "ws://127.0.0.1:%d/deny", F.port);
  start_client(&p, uri, NULL);
  RUN_UNTIL(p.closes == 1);
  assert_int_equal(p.opens, 0);
  assert_int_equal(p.code, RS_WS_CLOSE_ABNORMAL);
  assert_non_null(strstr(p.reason, "401"));
  /* nothing listening */
  stop_server();
  assert_int_equal(uv_loop_init(&F.loop), 0);
  snprintf(uri, sizeof uri, "ws://127.0.0.1:%d/", F.port);
  start_client(&p, uri, NULL);
  RUN_UNTIL(p.closes == 1);
  assert_non_null(strstr(p.reason, "cannot connect to 127.0.0.1"));
  /* closed while connecting: on_close later, never inside the call */
  start_client(&p, uri, NULL);
  rs_ws_session_close(p.s, RS_WS_CLOSE_NORMAL, NULL);
  assert_int_equal(p.closes, 0);
  RUN_UNTIL(p.closes == 1);
  /* bad arguments */
  rs_ws_client_options o;
  rs_ws_client_options_default(&o);
  o.callbacks = client_cbs;
  o.uri = "tcp://127.0.0.1:1";
  char err[256];
  rs_ws_session *s;
  assert_int_equal(rs_ws_client_start(&s, &F.loop, &o, err, sizeof err), RS_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(err, "not a WebSocket URI"));
  o.uri = uri;
  o.host_header = "a\r\nb";
  assert_int_equal(rs_ws_client_start(&s, &F.loop, &o, err, sizeof err), RS_ERR_INVALID_ARGUMENT);
  uv_run(&F.loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&F.loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_request_views),
      cmocka_unit_test(test_plain_http),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_origin_hook_whole_value_and_user),
      cmocka_unit_test(test_oversized_head_gets_431),
      cmocka_unit_test(test_head_whole_or_in_pieces),
      cmocka_unit_test(test_messages_and_close),
      cmocka_unit_test(test_drained),
      cmocka_unit_test(test_send_while_partial_write_in_flight),
      cmocka_unit_test(test_rsocket_beside_messages),
      cmocka_unit_test(test_client_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
