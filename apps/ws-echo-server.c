/*
 * ws-echo-server: a plain WebSocket echo server (text as text, binary as binary) on our own
 * RFC 6455 stack — the target of the conformance tests and the WebSocket benchmark. With --cert
 * and --key it serves wss:// (the runtime's TLS).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rsocket/runtime.h"
#include "runtime/io.h"
#include "runtime/tls.h"
#include "runtime/ws_transport.h"

typedef struct server {
  uv_loop_t *loop;
  rs_io_loop *io;
  uv_tcp_t listeners[RS_IO_MAX_LISTENERS]; /* one per address of the host */
  int nlisteners;
  uv_signal_t sigint, sigterm;
  rs_ws_transport_options wo;
  rs_tls_ctx *tls; /* wss:// */
  struct echo *conns;
  bool stopping;
} server;

typedef struct echo {
  server *srv;
  rt_ws *ws;
  struct echo *next, *prev;
} echo;

static void e_open(void *inner, rt_ws *ws) {
  (void)inner, (void)ws;
}

static int e_message(void *inner, rt_ws *ws, int op, const uint8_t *d, size_t n, uint64_t now) {
  (void)inner, (void)now;
  int rc = rt_ws_send(ws, op, d, n);
  if (rc == RS_ERR_WOULD_BLOCK) rt_ws_close(ws, RS_WS_CLOSE_TRY_AGAIN, "echo queue full");
  return 0;
}

static void e_pull(void *inner, rt_ws *ws) {
  (void)inner, (void)ws;
}

static uint64_t e_deadline(void *inner) {
  (void)inner;
  return UINT64_MAX;
}

static void e_expire(void *inner, uint64_t now) {
  (void)inner, (void)now;
}

static bool e_want_close(void *inner) {
  (void)inner;
  return false;
}

static void e_closed(void *inner, int err, const char *reason) {
  (void)err, (void)reason;
  echo *e = inner;
  server *s = e->srv;
  if (e->prev)
    e->prev->next = e->next;
  else
    s->conns = e->next;
  if (e->next) e->next->prev = e->prev;
  free(e);
  if (s->stopping && !s->conns) rs_io_loop_free(s->io), s->io = NULL;
}

static const rt_ws_inner_ops echo_ops = {e_open,       e_message, e_pull, e_deadline, e_expire,
                                         e_want_close, e_closed,  NULL,   NULL,       NULL};

static void on_connection(uv_stream_t *l, int status) {
  server *s = l->data;
  if (status < 0 || s->stopping) return;
  uv_tcp_t *tcp = malloc(sizeof *tcp);
  if (!tcp) return;
  uv_tcp_init(s->loop, tcp);
  if (uv_accept(l, (uv_stream_t *)tcp) != 0) {
    uv_close((uv_handle_t *)tcp, (uv_close_cb)free);
    return;
  }
  rs_tls *tls = NULL;
  if (s->tls && !(tls = rs_tls_new(s->tls, true, NULL))) {
    uv_close((uv_handle_t *)tcp, (uv_close_cb)free);
    return;
  }
  rs_io_conn *io = rs_io_conn_new(s->io, tcp, tls);
  echo *e = calloc(1, sizeof *e);
  if (!io || !e) {
    free(e);
    if (!io) rs_tls_free(tls);
    if (io)
      rs_io_conn_abort(io, RS_ERR_NOMEM, "out of memory");
    else
      uv_close((uv_handle_t *)tcp, (uv_close_cb)free);
    return;
  }
  e->srv = s;
  e->next = s->conns;
  if (s->conns) s->conns->prev = e;
  s->conns = e;
  e->ws = rt_ws_attach(io, true, &s->wo, NULL, NULL, &echo_ops, e);
  if (!e->ws) {
    s->conns = e->next;
    if (s->conns) s->conns->prev = NULL;
    free(e);
    rs_io_conn_abort(io, RS_ERR_NOMEM, "out of memory");
  }
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  server *s = h->data;
  s->stopping = true;
  for (int i = 0; i < s->nlisteners; i++) uv_close((uv_handle_t *)&s->listeners[i], NULL);
  uv_close((uv_handle_t *)&s->sigint, NULL);
  uv_close((uv_handle_t *)&s->sigterm, NULL);
  if (!s->conns) {
    rs_io_loop_free(s->io);
    s->io = NULL;
    return;
  }
  for (echo *e = s->conns; e; e = e->next)
    rt_ws_close(e->ws, RS_WS_CLOSE_GOING_AWAY, "server stopping");
}

static void usage(FILE *f) {
  fprintf(f, "usage: ws-echo-server [--host HOST] [--port PORT] [--max-message BYTES] [--deflate]\n"
             "                      [--cert FILE --key FILE]\n"
             "\n"
             "A WebSocket echo server: every text message comes back as text, every binary one as\n"
             "binary. Prints 'listening on ws://HOST:PORT' (wss:// with TLS) when ready;\n"
             "SIGINT/SIGTERM close every connection with 1001 and exit.\n"
             "\n"
             "  --host HOST          address to bind (default 127.0.0.1)\n"
             "  --port PORT          port (default 9001; 0 picks a free one)\n"
             "  --max-message BYTES  largest message accepted; larger ones close with 1009\n"
             "                       (default 16 MiB)\n"
             "  --deflate            negotiate permessage-deflate (RFC 7692)\n"
             "  --cert FILE          serve wss://: TLS certificate chain (PEM)\n"
             "  --key FILE           and its private key (PEM)\n"
             "  -h, --help           this help\n"
             "  -v, --version        print the version\n"
             "\n"
             "Exit status: 0 stopped by SIGINT/SIGTERM, 2 usage, 3 cannot listen or load the\n"
             "certificate.\n");
}

int main(int argc, char **argv) {
  rs_runtime_tune_malloc(); /* see rsocket/runtime.h */
  const char *host = "127.0.0.1";
  long port = 9001;
  unsigned long long max_message = 0;
  bool deflate = false;
  const char *cert = NULL, *key = NULL;
  static const struct option opts[] = {
      {"host", required_argument, NULL, 'H'},
      {"port", required_argument, NULL, 'p'},
      {"max-message", required_argument, NULL, 'm'},
      {"deflate", no_argument, NULL, 'd'},
      {"cert", required_argument, NULL, 'c'},
      {"key", required_argument, NULL, 'k'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'v'},
      {NULL, 0, NULL, 0},
  };
  int c;
  char *end;
  while ((c = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
    switch (c) {
    case 'H': host = optarg; break;
    case 'p':
      port = strtol(optarg, &end, 10);
      if (*end || port < 0 || port > 65535) {
        fprintf(stderr, "ws-echo-server: bad port '%s'\n", optarg);
        return 2;
      }
      break;
    case 'm':
      max_message = strtoull(optarg, &end, 10);
      if (*end || max_message == 0 || optarg[0] == '-') {
        fprintf(stderr, "ws-echo-server: bad --max-message '%s'\n", optarg);
        return 2;
      }
      break;
    case 'd': deflate = true; break;
    case 'c': cert = optarg; break;
    case 'k': key = optarg; break;
    case 'h': usage(stdout); return 0;
    case 'v': printf("ws-echo-server %s (rsocket-c)\n", RS_VERSION_STRING); return 0;
    default: fprintf(stderr, "Try 'ws-echo-server --help'.\n"); return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "ws-echo-server: unexpected argument '%s'\nTry 'ws-echo-server --help'.\n",
            argv[optind]);
    return 2;
  }
  if (!cert != !key) {
    fprintf(stderr, "ws-echo-server: --cert and --key go together\n");
    return 2;
  }
  for (int i = 0; cert && i < 2; i++) {
    const char *file = i ? key : cert;
    if (access(file, R_OK) != 0) {
      fprintf(stderr, "ws-echo-server: cannot read --%s %s: %s\n", i ? "key" : "cert", file,
              strerror(errno));
      return 3;
    }
  }
  rs_tls_ctx *tls = NULL;
  if (cert) {
    char terr[RS_TLS_ERRLEN];
    if (!(tls = rs_tls_ctx_server_files(cert, key, terr))) {
      fprintf(stderr, "ws-echo-server: %s\n", terr);
      return 3;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t loop;
  uv_loop_init(&loop);
  server s;
  memset(&s, 0, sizeof s);
  s.loop = &loop;
  s.io = rs_io_loop_new(&loop);
  s.wo.max_message = (size_t)max_message;
  s.wo.deflate = deflate;
  s.tls = tls;
  char err[256];
  s.nlisteners = rs_io_listen_all(&loop, host, (int)port, false, 1024, s.listeners,
                                  RS_IO_MAX_LISTENERS, on_connection, err, sizeof err);
  if (s.nlisteners < 0) {
    fprintf(stderr, "ws-echo-server: cannot listen: %s\n", err);
    rs_tls_ctx_free(tls);
    return 3;
  }
  for (int i = 0; i < s.nlisteners; i++) s.listeners[i].data = &s;
  uv_signal_init(&loop, &s.sigint);
  uv_signal_init(&loop, &s.sigterm);
  s.sigint.data = s.sigterm.data = &s;
  uv_signal_start(&s.sigint, on_signal, SIGINT);
  uv_signal_start(&s.sigterm, on_signal, SIGTERM);
  bool v6 = strchr(host, ':') != NULL;
  printf(v6 ? "listening on %s://[%s]:%d\n" : "listening on %s://%s:%d\n", tls ? "wss" : "ws", host,
         rs_io_bound_port(&s.listeners[0]));
  fflush(stdout);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  rs_tls_ctx_free(tls);
  return 0;
}
