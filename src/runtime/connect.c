/*
 * Happy-eyeballs TCP connection (RFC 8305): every address a name resolves to, in the resolver's
 * order with the two families interleaved, one attempt started every CONNECT_STAGGER_MS (or at
 * once when the previous one fails); the first to connect wins and the others are closed.
 *
 * Life cycle: the racer counts what is still open (the look-up, its two timers, each attempt's
 * handle) and frees itself when the last closes, which is always after the user's callback has
 * returned (or after rs_connect_cancel). The callback never runs inside rs_connect_start.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsocket/runtime.h"
#include "runtime/connect.h"

#define MAX_ADDRS 16

enum { A_WAITING, A_CONNECTING, A_FAILED };

typedef struct attempt {
  rs_connect *owner;
  struct sockaddr_storage addr;
  uv_tcp_t *tcp; /* while connecting; NULL once closed or handed over */
  uv_connect_t req;
  int state;
  int status; /* libuv error of a failed attempt */
} attempt;

struct rs_connect {
  uv_loop_t *loop;
  rs_connect_cb cb;
  void *arg;
  char host[260]; /* as given, bracketed when it is an IPv6 literal */
  char bare[256]; /* as given */
  int port;
  uint32_t timeout_ms;
  uv_getaddrinfo_t gai;
  uv_timer_t stagger;  /* starts the next attempt; also defers an early failure */
  uv_timer_t deadline; /* the whole operation */
  attempt att[MAX_ADDRS];
  int naddr, next, connecting;
  bool resolving;
  bool done; /* the callback ran, or the user cancelled */
  int early_status;
  int refs;
  char msg[1400];
};

uint32_t rs__connect_stagger_ms = RS_CONNECT_STAGGER_MS;

static void unref(rs_connect *c) {
  if (--c->refs == 0) free(c);
}

static void on_handle_closed(uv_handle_t *h) {
  unref(h->data);
}

static void on_attempt_closed(uv_handle_t *h) {
  attempt *a = h->data;
  free(h);
  unref(a->owner);
}

static void close_attempt(attempt *a) {
  if (!a->tcp) return;
  a->tcp->data = a;
  uv_close((uv_handle_t *)a->tcp, on_attempt_closed); /* its connect callback gets ECANCELED */
  a->tcp = NULL;
  if (a->state == A_CONNECTING) a->owner->connecting--;
}

/* "[::1]:7878" or "127.0.0.1:7878". */
static void addr_name(const struct sockaddr_storage *ss, char *out, size_t cap, bool with_port) {
  char ip[64] = "?";
  int port = 0;
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    uv_ip6_name(a, ip, sizeof ip);
    port = ntohs(a->sin6_port);
    if (with_port)
      snprintf(out, cap, "[%s]:%d", ip, port);
    else
      snprintf(out, cap, "%s", ip);
  } else {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    uv_ip4_name(a, ip, sizeof ip);
    port = ntohs(a->sin_port);
    if (with_port)
      snprintf(out, cap, "%s:%d", ip, port);
    else
      snprintf(out, cap, "%s", ip);
  }
}

static const char *attempt_why(const attempt *a) {
  switch (a->state) {
  case A_CONNECTING: return "timed out";
  case A_FAILED: return uv_strerror(a->status);
  default: return "not tried";
  }
}

/* The message when every address failed (or time ran out): each address and why. When the host
 * was the one numeric address, the address is not repeated. */
static void build_failure(rs_connect *c, bool timed_out) {
  int n = snprintf(c->msg, sizeof c->msg, "cannot connect to %s:%d: ", c->host, c->port);
  char one[64];
  if (c->naddr == 1) {
    addr_name(&c->att[0].addr, one, sizeof one, false);
    if (strcmp(one, c->bare) == 0) {
      snprintf(c->msg + n, sizeof c->msg - (size_t)n, "%s", attempt_why(&c->att[0]));
      return;
    }
  }
  if (c->naddr == 0) {
    snprintf(c->msg + n, sizeof c->msg - (size_t)n, "%s",
             timed_out ? "timed out resolving the name" : "no address");
    return;
  }
  for (int i = 0; i < c->naddr && (size_t)n < sizeof c->msg; i++) {
    addr_name(&c->att[i].addr, one, sizeof one, true);
    n += snprintf(c->msg + n, sizeof c->msg - (size_t)n, "%s%s %s", i ? "; " : "", one,
                  attempt_why(&c->att[i]));
  }
}

/* Ends the race: closes every handle but the winner's, then calls back once. */
static void deliver(rs_connect *c, uv_tcp_t *tcp, int status) {
  c->done = true;
  if (c->resolving) uv_cancel((uv_req_t *)&c->gai); /* its callback still runs, and unrefs */
  for (int i = 0; i < c->naddr; i++) close_attempt(&c->att[i]);
  uv_close((uv_handle_t *)&c->stagger, on_handle_closed);
  uv_close((uv_handle_t *)&c->deadline, on_handle_closed);
  c->cb(tcp, status, status ? c->msg : "", c->arg);
}

static void fail(rs_connect *c, int status, bool timed_out) {
  build_failure(c, timed_out);
  deliver(c, NULL, status);
}

static void start_next(rs_connect *c);
static void on_deadline(uv_timer_t *t);

static void on_stagger(uv_timer_t *t) {
  rs_connect *c = t->data;
  if (c->done) return;
  if (c->early_status) {
    deliver(c, NULL, c->early_status);
    return;
  }
  start_next(c);
}

static void on_connected(uv_connect_t *req, int status) {
  attempt *a = req->data;
  rs_connect *c = a->owner;
  if (!a->tcp || c->done) return; /* closed by us: ECANCELED */
  if (status == 0) {
    uv_tcp_t *tcp = a->tcp;
    a->tcp = NULL; /* handed over: not ours to close */
    c->connecting--;
    c->refs--; /* cannot reach 0: the timers are still open */
    tcp->data = NULL;
    deliver(c, tcp, 0);
    return;
  }
  close_attempt(a);
  a->state = A_FAILED;
  a->status = status;
  if (c->next < c->naddr) {
    start_next(c); /* a failure starts the next address at once */
  } else if (c->connecting == 0) {
    fail(c, RS_ERR_IO, false);
  }
}

static void start_next(rs_connect *c) {
  while (c->next < c->naddr) {
    attempt *a = &c->att[c->next++];
    a->tcp = malloc(sizeof *a->tcp);
    if (!a->tcp || uv_tcp_init(c->loop, a->tcp) != 0) {
      free(a->tcp);
      a->tcp = NULL;
      a->state = A_FAILED;
      a->status = UV_ENOMEM;
      continue;
    }
    c->refs++;
    a->state = A_CONNECTING;
    c->connecting++;
    a->req.data = a;
    int rc = uv_tcp_connect(&a->req, a->tcp, (const struct sockaddr *)&a->addr, on_connected);
    if (rc < 0) {
      close_attempt(a);
      a->state = A_FAILED;
      a->status = rc;
      continue;
    }
    if (c->next < c->naddr) uv_timer_start(&c->stagger, on_stagger, rs__connect_stagger_ms, 0);
    return;
  }
  uv_timer_stop(&c->stagger);
  if (c->connecting == 0) fail(c, RS_ERR_IO, false);
}

/* Keeps the resolver's order but interleaves the families, starting with the first's (RFC 8305
 * section 4), and drops duplicates. */
static void order_addresses(rs_connect *c, const struct addrinfo *res) {
  const struct addrinfo *list[2][MAX_ADDRS];
  int count[2] = {0, 0};
  int first = -1;
  for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    if (ai->ai_addrlen > sizeof(struct sockaddr_storage)) continue;
    int f = ai->ai_family == AF_INET6;
    if (first < 0) first = f;
    bool dup = false;
    for (int i = 0; i < count[f] && !dup; i++)
      dup = list[f][i]->ai_addrlen == ai->ai_addrlen &&
            memcmp(list[f][i]->ai_addr, ai->ai_addr, ai->ai_addrlen) == 0;
    if (!dup && count[f] < MAX_ADDRS) list[f][count[f]++] = ai;
  }
  if (first < 0) return;
  int idx[2] = {0, 0}, f = first;
  while (c->naddr < MAX_ADDRS && (idx[0] < count[0] || idx[1] < count[1])) {
    if (idx[f] < count[f]) {
      const struct addrinfo *ai = list[f][idx[f]++];
      attempt *a = &c->att[c->naddr++];
      a->owner = c;
      memcpy(&a->addr, ai->ai_addr, ai->ai_addrlen);
    }
    f = !f;
  }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  rs_connect *c = req->data;
  c->resolving = false;
  if (c->done) {
    uv_freeaddrinfo(res);
    unref(c);
    return;
  }
  c->refs--; /* cannot reach 0: the timers are still open */
  if (status < 0) {
    snprintf(c->msg, sizeof c->msg, "cannot resolve %s: %s", c->bare, uv_strerror(status));
    uv_freeaddrinfo(res);
    deliver(c, NULL, RS_ERR_IO);
    return;
  }
  order_addresses(c, res);
  uv_freeaddrinfo(res);
  if (c->naddr == 0) {
    fail(c, RS_ERR_IO, false);
    return;
  }
  start_next(c);
}

static void on_deadline(uv_timer_t *t) {
  rs_connect *c = t->data;
  if (c->done) return;
  fail(c, RS_ERR_TIMEOUT, true);
}

static rs_connect *connect_new(uv_loop_t *loop, const char *host, int port, uint32_t timeout_ms,
                               rs_connect_cb cb, void *arg) {
  rs_connect *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->loop = loop;
  c->cb = cb;
  c->arg = arg;
  c->port = port;
  c->timeout_ms = timeout_ms;
  snprintf(c->bare, sizeof c->bare, "%s", host);
  snprintf(c->host, sizeof c->host, strchr(host, ':') ? "[%s]" : "%s", host);
  uv_timer_init(loop, &c->stagger);
  uv_timer_init(loop, &c->deadline);
  c->stagger.data = c->deadline.data = c;
  c->refs = 2;
  if (timeout_ms) uv_timer_start(&c->deadline, on_deadline, timeout_ms, 0);
  return c;
}

static bool bad_args(rs_connect **out, uv_loop_t *loop, const char *host, int port,
                     rs_connect_cb cb) {
  return !out || !loop || !host || !*host || strlen(host) >= 256 || port < 0 || port > 65535 || !cb;
}

int rs_connect_start(rs_connect **out, uv_loop_t *loop, const char *host, int port,
                     uint32_t timeout_ms, rs_connect_cb cb, void *arg) {
  if (bad_args(out, loop, host, port, cb)) return RS_ERR_INVALID_ARGUMENT;
  rs_connect *c = connect_new(loop, host, port, timeout_ms, cb, arg);
  if (!c) return RS_ERR_NOMEM;
  /* A numeric address needs no look-up: no trip through libuv's thread pool (which a busy
   * process may keep waiting longer than the whole timeout). */
  struct sockaddr_storage numeric;
  memset(&numeric, 0, sizeof numeric);
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&numeric) == 0 ||
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&numeric) == 0) {
    c->att[0].owner = c;
    c->att[0].addr = numeric;
    c->naddr = 1;
    uv_timer_start(&c->stagger, on_stagger, 0, 0); /* the attempt starts from the loop */
    *out = c;
    return 0;
  }
  char portstr[16];
  snprintf(portstr, sizeof portstr, "%d", port);
  struct addrinfo hints = {0};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  c->gai.data = c;
  int rc = uv_getaddrinfo(loop, &c->gai, on_resolved, host, portstr, &hints);
  if (rc < 0) {
    /* Reported from the loop, like every other outcome. */
    snprintf(c->msg, sizeof c->msg, "cannot resolve %s: %s", host, uv_strerror(rc));
    c->early_status = RS_ERR_IO;
    uv_timer_start(&c->stagger, on_stagger, 0, 0);
  } else {
    c->resolving = true;
    c->refs++;
  }
  *out = c;
  return 0;
}

int rs__connect_start_addrs(rs_connect **out, uv_loop_t *loop, const char *label, int port,
                            const struct sockaddr_storage *addrs, int n, uint32_t timeout_ms,
                            rs_connect_cb cb, void *arg) {
  if (bad_args(out, loop, label, port, cb) || !addrs || n < 1 || n > MAX_ADDRS)
    return RS_ERR_INVALID_ARGUMENT;
  rs_connect *c = connect_new(loop, label, port, timeout_ms, cb, arg);
  if (!c) return RS_ERR_NOMEM;
  for (int i = 0; i < n; i++) {
    c->att[i].owner = c;
    c->att[i].addr = addrs[i];
  }
  c->naddr = n;
  uv_timer_start(&c->stagger, on_stagger, 0, 0); /* the first attempt starts from the loop */
  *out = c;
  return 0;
}

void rs_connect_cancel(rs_connect *c) {
  if (!c || c->done) return;
  c->done = true;
  if (c->resolving) uv_cancel((uv_req_t *)&c->gai);
  for (int i = 0; i < c->naddr; i++) close_attempt(&c->att[i]);
  uv_close((uv_handle_t *)&c->stagger, on_handle_closed);
  uv_close((uv_handle_t *)&c->deadline, on_handle_closed);
}
