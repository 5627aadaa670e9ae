/*
 * A router on the runtime: the server options that serve it, and rs_router_serve, a service's
 * whole main loop (listen, say where, stop gracefully on SIGINT/SIGTERM).
 */
#include <signal.h>
#include <stdio.h>

#include "rsocket/runtime.h"
#include "rsocket/service.h"

/* Streams that never end (subscriptions) get this long to finish after a signal. */
#define DRAIN_MS 5000

static void *router_as_user(rs_server *server, rs_conn *conn, void *server_user) {
  (void)server, (void)conn;
  return server_user;
}

void rs_router_server_options(rs_router *r, rs_server_options *o) {
  if (!o) return;
  rs_router_callbacks(&o->callbacks);
  o->on_connect = router_as_user;
  o->user = r;
}

typedef struct serve_state {
  rs_server *server;
  uv_signal_t sigint, sigterm;
} serve_state;

static void on_stopped(void *arg) {
  serve_state *s = arg;
  uv_close((uv_handle_t *)&s->sigint, NULL);
  uv_close((uv_handle_t *)&s->sigterm, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  serve_state *s = h->data;
  uv_signal_stop(&s->sigint); /* the default action again: a second signal stops at once */
  uv_signal_stop(&s->sigterm);
  rs_server_stop(s->server, true, on_stopped, s);
}

int rs_router_serve(rs_router *r, const char *uri, const rs_server_options *opts) {
  if (!r || !uri) return RS_ERR_INVALID_ARGUMENT;
  rs_server_options o;
  if (opts)
    o = *opts;
  else
    rs_server_options_default(&o);
  o.uri = uri;
  if (!o.drain_timeout_ms) o.drain_timeout_ms = DRAIN_MS;
  rs_router_server_options(r, &o);

  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) return RS_ERR_IO;
  serve_state s = {0};
  char err[300];
  int rc = rs_server_start(&s.server, &loop, &o, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "cannot listen on %s: %s\n", uri, err);
    uv_loop_close(&loop);
    return rc;
  }
  uv_signal_init(&loop, &s.sigint);
  uv_signal_init(&loop, &s.sigterm);
  s.sigint.data = s.sigterm.data = &s;
  uv_signal_start(&s.sigint, on_signal, SIGINT);
  uv_signal_start(&s.sigterm, on_signal, SIGTERM);
  signal(SIGPIPE, SIG_IGN);
  printf("listening on %s\n", rs_server_uri(s.server));
  fflush(stdout);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return 0;
}
