/*
 * ws-client: a plain WebSocket client on our own RFC 6455 stack (the same code path as RSocket
 * over ws://): the client side of the conformance tests, and a small wscat.
 *
 *   ws-client [--echo] [--send TEXT]... [--binary] [--expect N] [--max-message BYTES]
 *             [--deflate] [--subprotocol P] [--timeout SECONDS] ws://HOST:PORT/PATH
 *
 * Prints one line per event on stdout: "open", "text LEN DATA" (DATA cut at 1 KiB), "binary LEN
 * HEX-PREFIX" (32 bytes),
 * "close CODE remote|local REASON", "closed REASON".
 * Exit status: 0 the WebSocket closed with 1000 (either side), 1 it failed or closed with another
 * code, 2 usage, 3 the connection or the handshake failed, 4 timeout.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsocket/runtime.h"
#include "runtime/io.h"
#include "runtime/uri.h"
#include "runtime/ws_transport.h"

typedef struct client {
  uv_loop_t *loop;
  rs_io_loop *io;
  rs_connect *connecting; /* every address of the host, happy eyeballs */
  uv_timer_t timer;
  rs_uri uri;
  rs_ws_transport_options wo;
  rt_ws *ws;
  bool echo, binary, opened, timed_out;
  char **send;
  int nsend;
  long expect, received;
  int close_code; /* -1 until the close handshake ends */
  bool close_remote;
  int status;
} client;

static void c_open(void *inner, rt_ws *ws) {
  client *c = inner;
  c->opened = true;
  printf("open\n");
  fflush(stdout);
  for (int i = 0; i < c->nsend; i++)
    rt_ws_send(ws, c->binary ? RS_WS_OP_BINARY : RS_WS_OP_TEXT, (const uint8_t *)c->send[i],
               strlen(c->send[i]));
  if (!c->echo && c->expect == 0) rt_ws_close(ws, RS_WS_CLOSE_NORMAL, NULL);
}

static int c_message(void *inner, rt_ws *ws, int op, const uint8_t *d, size_t n, uint64_t now) {
  (void)now;
  client *c = inner;
  if (op == RS_WS_OP_TEXT) {
    /* Long texts are cut at 1 KiB on stdout (the length says how long they were). */
    printf("text %zu %.*s%s\n", n, (int)(n > 1024 ? 1024 : n), (const char *)d,
           n > 1024 ? "..." : "");
  } else {
    printf("binary %zu ", n);
    for (size_t i = 0; i < n && i < 32; i++) printf("%02x", d[i]);
    printf("\n");
  }
  fflush(stdout);
  c->received++;
  if (c->echo) rt_ws_send(ws, op, d, n);
  if (!c->echo && c->expect > 0 && c->received == c->expect)
    rt_ws_close(ws, RS_WS_CLOSE_NORMAL, NULL);
  return 0;
}

static void c_pull(void *inner, rt_ws *ws) {
  (void)inner, (void)ws;
}

static uint64_t c_deadline(void *inner) {
  (void)inner;
  return UINT64_MAX;
}

static void c_expire(void *inner, uint64_t now) {
  (void)inner, (void)now;
}

static bool c_want_close(void *inner) {
  (void)inner;
  return false;
}

static void c_ws_close(void *inner, unsigned code, rs_bytes reason, bool remote) {
  client *c = inner;
  c->close_code = (int)code;
  c->close_remote = remote;
  printf("close %u %s %.*s\n", code, remote ? "remote" : "local", (int)reason.len,
         reason.ptr ? (const char *)reason.ptr : "");
  fflush(stdout);
}

static void c_closed(void *inner, int err, const char *reason) {
  (void)err;
  client *c = inner;
  printf("closed %s\n", reason && reason[0] ? reason : "-");
  fflush(stdout);
  c->ws = NULL;
  if (!c->timed_out) {
    if (!c->opened)
      c->status = 3;
    else
      c->status = c->close_code == RS_WS_CLOSE_NORMAL ? 0 : 1;
  }
  uv_close((uv_handle_t *)&c->timer, NULL);
}

static const rt_ws_inner_ops client_ops = {c_open,   c_message,    c_pull,   c_deadline,
                                           c_expire, c_want_close, c_closed, c_ws_close,
                                           NULL,     NULL};

static void on_timeout(uv_timer_t *t) {
  client *c = t->data;
  c->timed_out = true;
  c->status = 4;
  fprintf(stderr, "ws-client: timeout\n");
  if (c->ws) {
    rs_io_conn_abort(rt_ws_io(c->ws), RS_ERR_TIMEOUT, "timeout");
  } else {
    uv_close((uv_handle_t *)&c->timer, NULL);
    rs_connect_cancel(c->connecting);
    c->connecting = NULL;
  }
}

static void on_connect(uv_tcp_t *tcp, int status, const char *message, void *arg) {
  client *c = arg;
  c->connecting = NULL;
  if (status != 0) {
    fprintf(stderr, "ws-client: %s\n", message);
    c->status = 3;
    uv_close((uv_handle_t *)&c->timer, NULL);
    return;
  }
  rs_io_conn *io = rs_io_conn_new(c->io, tcp, NULL); /* the connection owns tcp */
  char host[300];
  if (c->uri.port == 80)
    snprintf(host, sizeof host, "%s", c->uri.host);
  else
    snprintf(host, sizeof host, "%s:%d", c->uri.host, c->uri.port);
  c->ws = io ? rt_ws_attach(io, false, &c->wo, host, c->uri.path, &client_ops, c) : NULL;
  if (!c->ws) {
    fprintf(stderr, "ws-client: out of memory\n");
    c->status = 3;
    uv_close((uv_handle_t *)&c->timer, NULL);
    if (io)
      rs_io_conn_abort(io, RS_ERR_NOMEM, "out of memory");
    else
      uv_close((uv_handle_t *)tcp, (uv_close_cb)free);
  }
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: ws-client [options] ws://HOST:PORT/PATH\n"
          "  --echo               send every message received back (text as text, binary as\n"
          "                       binary) until the server closes\n"
          "  --send TEXT          send TEXT once open (repeatable)\n"
          "  --binary             --send as binary messages\n"
          "  --expect N           close (1000) after receiving N messages (default: close after\n"
          "                       sending, unless --echo)\n"
          "  --max-message BYTES  largest message accepted (larger: close 1009)\n"
          "  --deflate            offer permessage-deflate (RFC 7692)\n"
          "  --subprotocol P      offer subprotocol P\n"
          "  --timeout SECONDS    give up after SECONDS (default 10)\n"
          "  -h, --help\n"
          "Prints open / text LEN DATA / binary LEN HEX / close CODE remote|local REASON /\n"
          "closed REASON. Exit: 0 closed with 1000, 1 failed or other close code, 2 usage,\n"
          "3 connection or handshake failed, 4 timeout.\n");
}

int main(int argc, char **argv) {
  client c;
  memset(&c, 0, sizeof c);
  c.close_code = -1;
  double timeout = 10;
  static const struct option opts[] = {
      {"echo", no_argument, NULL, 'e'},
      {"send", required_argument, NULL, 's'},
      {"binary", no_argument, NULL, 'b'},
      {"expect", required_argument, NULL, 'n'},
      {"max-message", required_argument, NULL, 'm'},
      {"deflate", no_argument, NULL, 'd'},
      {"subprotocol", required_argument, NULL, 'p'},
      {"timeout", required_argument, NULL, 't'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  c.send = calloc((size_t)argc, sizeof *c.send);
  if (!c.send) return 1;
  int ch;
  char *end;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
    case 'e': c.echo = true; break;
    case 's': c.send[c.nsend++] = optarg; break;
    case 'b': c.binary = true; break;
    case 'n':
      c.expect = strtol(optarg, &end, 10);
      if (*end || c.expect < 0) {
        fprintf(stderr, "ws-client: bad --expect %s\n", optarg);
        return 2;
      }
      break;
    case 'm': {
      unsigned long long v = strtoull(optarg, &end, 10);
      if (*end || v == 0) {
        fprintf(stderr, "ws-client: bad --max-message %s\n", optarg);
        return 2;
      }
      c.wo.max_message = (size_t)v;
      break;
    }
    case 'd': c.wo.deflate = true; break;
    case 'p': c.wo.subprotocol = optarg; break;
    case 't':
      timeout = strtod(optarg, &end);
      if (*end || !(timeout > 0)) {
        fprintf(stderr, "ws-client: bad --timeout %s\n", optarg);
        return 2;
      }
      break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind + 1 != argc) {
    usage(stderr);
    return 2;
  }
  char err[200];
  if (rs_uri_parse(argv[optind], &c.uri, err, sizeof err) != 0 || c.uri.scheme != RS_URI_WS) {
    fprintf(stderr, "ws-client: %s\n", c.uri.scheme != RS_URI_WS ? "only ws:// URIs" : err);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  c.loop = uv_default_loop();
  c.io = rs_io_loop_new(c.loop);
  if (!c.io) return 1;
  /* The timer bounds everything (connecting, the handshake, the exchange); the connector's own
   * limit is left off so that a timeout is reported the same way at every stage. */
  if (rs_connect_start(&c.connecting, c.loop, c.uri.host, c.uri.port, 0, on_connect, &c) != 0) {
    fprintf(stderr, "ws-client: out of memory\n");
    return 1;
  }
  uv_timer_init(c.loop, &c.timer);
  c.timer.data = &c;
  uv_timer_start(&c.timer, on_timeout, (uint64_t)(timeout * 1000), 0);
  uv_run(c.loop, UV_RUN_DEFAULT);
  rs_io_loop_free(c.io);
  uv_run(c.loop, UV_RUN_DEFAULT);
  uv_loop_close(c.loop);
  free(c.send);
  return c.status;
}
