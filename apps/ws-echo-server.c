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

#include "rsocket/websocket.h"

/* Echo with back-pressure: while the echoes are not written (the client does not read), the
 * client is not read either; reading resumes when the output drained. */
static void e_message(rs_ws_session *ws, bool text, const uint8_t *d, size_t n, void *user) {
  (void)user;
  int rc = rs_ws_session_send(ws, text, d, n);
  if (rc == RS_ERR_WOULD_BLOCK) rs_ws_session_close(ws, RS_WS_CLOSE_TRY_AGAIN, "echo queue full");
  if (rc == 0 && !rs_ws_session_writable(ws)) rs_ws_session_pause_reading(ws, true);
}

static void e_drained(rs_ws_session *ws, void *user) {
  (void)user;
  rs_ws_session_pause_reading(ws, false);
}

static const rs_ws_session_callbacks echo_callbacks = {
    .on_message = e_message,
    .on_drained = e_drained,
};

/* Every path is served, with plain messages. */
static void on_upgrade(rs_server *s, const rs_http_request *req, rs_ws_decision *d, void *user) {
  (void)s, (void)req, (void)user;
  d->verdict = RS_WS_MESSAGES;
}

typedef struct stopper {
  rs_server *server;
  uv_signal_t sigint, sigterm;
} stopper;

static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  stopper *st = h->data;
  uv_close((uv_handle_t *)&st->sigint, NULL);
  uv_close((uv_handle_t *)&st->sigterm, NULL);
  rs_server_stop(st->server, true, NULL, NULL); /* every session gets 1001 */
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
  rs_runtime_tune_malloc();    /* see rsocket/runtime.h */
  rs_runtime_raise_fd_limit(); /* every client is a descriptor */
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
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t loop;
  uv_loop_init(&loop);
  char uri[400];
  bool v6 = strchr(host, ':') != NULL;
  snprintf(uri, sizeof uri, v6 ? "%s://[%s]:%ld/" : "%s://%s:%ld/", cert ? "wss" : "ws", host,
           port);
  rs_server_options o;
  rs_server_options_default(&o);
  o.uri = uri;
  o.cert_file = cert;
  o.key_file = key;
  o.ws.max_message = (size_t)max_message;
  o.ws.deflate = deflate;
  o.on_upgrade = on_upgrade;
  o.messages = &echo_callbacks;
  o.drain_timeout_ms = 10000;
  stopper st = {0};
  char err[512];
  if (rs_server_start(&st.server, &loop, &o, err, sizeof err) != 0) {
    fprintf(stderr, "ws-echo-server: cannot listen: %s\n", err);
    uv_loop_close(&loop);
    return 3;
  }
  uv_signal_init(&loop, &st.sigint);
  uv_signal_init(&loop, &st.sigterm);
  st.sigint.data = st.sigterm.data = &st;
  uv_signal_start(&st.sigint, on_signal, SIGINT);
  uv_signal_start(&st.sigterm, on_signal, SIGTERM);
  printf(v6 ? "listening on %s://[%s]:%d\n" : "listening on %s://%s:%d\n", cert ? "wss" : "ws",
         host, rs_server_port(st.server));
  fflush(stdout);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return 0;
}
