/*
 * ws-client: a plain WebSocket client on our own RFC 6455 stack (the same code path as RSocket
 * over ws:// and wss://): a small wscat, and the client side of the conformance tests.
 *
 * Interactive (the default): each line of standard input goes out as a text message (binary with
 * --binary); each message received is printed on its own line (text as it is, binary in hex).
 * At the end of standard input the client waits for replies until the server has been quiet for
 * --grace seconds, then closes with 1000 and waits for the server's close; it also ends when the
 * server closes. SIGINT or SIGTERM starts the close at once (a second one aborts).
 *
 * Scripted (any of --send, --echo, --expect): standard input is not read; the output is the event
 * log below. This is what the conformance tests drive.
 *
 * Event log (scripted mode, or --events): "open", "text LEN DATA" (DATA cut at 1 KiB),
 * "binary LEN HEX-PREFIX" (32 bytes), "close CODE remote|local REASON", "closed REASON".
 *
 * Exit status: 0 the WebSocket closed with 1000 (either side), 1 it failed or closed with another
 * code (or a line could not be sent), 2 usage, 3 the connection or the handshake failed,
 * 4 timeout.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "runtime/io.h"
#include "runtime/tls.h"
#include "runtime/uri.h"
#include "runtime/ws_transport.h"

#define DEFAULT_TIMEOUT_S 10.0        /* scripted runs; connecting in interactive runs */
#define DEFAULT_GRACE_S   1.0         /* quiet time after the end of stdin before closing */
#define MAX_LINE          (16u << 20) /* longest stdin line (one message) */
#define INPUT_HIGH_WATER  (1u << 20)  /* stop reading stdin while this much output is queued */
#define MAX_EXTRA_HEADERS 8192u       /* -H lines in all (servers limit the request head) */
#define STDIN_BUF         65536

enum { IN_NONE, IN_STREAM, IN_FILE };

typedef struct client {
  uv_loop_t *loop;
  rs_io_loop *io;
  rs_connect *connecting; /* every address of the host, happy eyeballs (rs_connect_start) */
  uv_tcp_t *tcp;          /* connected, until the WebSocket session owns it */
  uv_timer_t timer;       /* --timeout; in interactive runs without it, connecting only */
  uv_timer_t grace;       /* after the end of stdin: close once the server is quiet */
  uv_signal_t sigint, sigterm;
  bool session_handles; /* grace and signals are initialised (once the WebSocket is open) */
  bool grace_on;        /* stdin ended: the grace timer runs, restarted by every message */
  rs_uri uri;
  rs_ws_transport_options wo;
  rs_tls_ctx *tls;
  char *headers; /* validated -H lines, "Name: value\r\n" each */
  size_t headers_len;
  const char *host_header; /* -H 'Host: …' replaces the URI's host in the request */
  rt_ws *ws;
  /* what to do */
  bool scripted, events, echo, binary, has_timeout;
  char **send;
  int nsend;
  long expect, received;
  double timeout_s, grace_s;
  /* standard input (interactive) */
  int in_kind;
  union {
    uv_stream_t stream;
    uv_tty_t tty;
    uv_pipe_t pipe;
  } in;
  uv_fs_t fsreq;
  bool in_reading, in_paused, in_eof, fs_busy;
  char inbuf[STDIN_BUF];
  char *line;
  size_t line_len, line_cap;
  unsigned long long lineno;
  /* state */
  bool opened, timed_out, close_sent, bad_input;
  int close_code; /* -1 until the close handshake ends */
  bool close_remote;
  int status;
} client;

static void free_handle(uv_handle_t *h) {
  free(h);
}

static void close_handle(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* ---- output ---- */

static void print_hex(const uint8_t *d, size_t n) {
  static const char digits[] = "0123456789abcdef";
  char buf[512];
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    buf[k++] = digits[d[i] >> 4];
    buf[k++] = digits[d[i] & 15];
    if (k == sizeof buf) fwrite(buf, 1, k, stdout), k = 0;
  }
  fwrite(buf, 1, k, stdout);
}

static void print_message(const client *c, int op, const uint8_t *d, size_t n) {
  if (c->events) {
    if (op == RS_WS_OP_TEXT) {
      /* Long texts are cut at 1 KiB on stdout (the length says how long they were). */
      printf("text %zu %.*s%s\n", n, (int)(n > 1024 ? 1024 : n), (const char *)d,
             n > 1024 ? "..." : "");
    } else {
      printf("binary %zu ", n);
      print_hex(d, n < 32 ? n : 32);
      printf("\n");
    }
  } else if (op == RS_WS_OP_TEXT) {
    fwrite(d, 1, n, stdout);
    putchar('\n');
  } else {
    print_hex(d, n);
    putchar('\n');
  }
  fflush(stdout);
}

/* ---- closing ---- */

static void start_close(client *c) {
  if (!c->ws || c->close_sent) return;
  c->close_sent = true;
  rt_ws_close(c->ws, RS_WS_CLOSE_NORMAL, NULL);
}

static void stop_input(client *c) {
  if (c->in_kind == IN_STREAM && !uv_is_closing((uv_handle_t *)&c->in.stream))
    uv_close((uv_handle_t *)&c->in.stream, NULL);
  c->in_reading = false;
  c->in_eof = true;
}

/* The end of standard input: close once the server has been quiet for --grace seconds. */
static void input_ended(client *c);

/* ---- standard input ---- */

static void send_line(client *c) {
  c->lineno++;
  int op = c->binary ? RS_WS_OP_BINARY : RS_WS_OP_TEXT;
  if (op == RS_WS_OP_TEXT && !rs_ws_utf8_valid((const uint8_t *)c->line, c->line_len)) {
    fprintf(stderr,
            "ws-client: line %llu is not valid UTF-8 and was not sent (--binary sends lines as "
            "binary messages)\n",
            c->lineno);
    c->bad_input = true;
    c->line_len = 0;
    return;
  }
  int rc = rt_ws_send(c->ws, op, (const uint8_t *)(c->line ? c->line : ""), c->line_len);
  c->line_len = 0;
  if (rc != 0) {
    fprintf(stderr, "ws-client: line %llu not sent: %s\n", c->lineno, rs_strerror(rc));
    c->bad_input = true;
    stop_input(c);
    start_close(c);
  }
}

static int line_append(client *c, const char *p, size_t n) {
  if (c->line_len + n > MAX_LINE) {
    fprintf(stderr, "ws-client: line %llu is longer than %u MiB\n", c->lineno + 1, MAX_LINE >> 20);
    return -1;
  }
  if (c->line_len + n > c->line_cap) {
    size_t cap = c->line_cap ? c->line_cap : 256;
    while (cap < c->line_len + n) cap *= 2;
    char *nl = realloc(c->line, cap);
    if (!nl) {
      fprintf(stderr, "ws-client: out of memory\n");
      return -1;
    }
    c->line = nl;
    c->line_cap = cap;
  }
  memcpy(c->line + c->line_len, p, n);
  c->line_len += n;
  return 0;
}

/* Bytes from stdin: every complete line becomes a message (without its newline). */
static void feed_input(client *c, const char *p, size_t n) {
  while (n > 0 && c->in_reading) {
    const char *nl = memchr(p, '\n', n);
    size_t k = nl ? (size_t)(nl - p) : n;
    if (line_append(c, p, k) != 0) {
      c->bad_input = true;
      stop_input(c);
      start_close(c);
      return;
    }
    if (nl) {
      send_line(c);
      k++;
    }
    p += k;
    n -= k;
  }
}

static void input_eof(client *c) {
  if (c->line_len > 0) send_line(c); /* a last line without a newline */
  stop_input(c);
  input_ended(c);
}

static void read_file_chunk(client *c);

static void on_fs_read(uv_fs_t *req) {
  client *c = req->data;
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  c->fs_busy = false;
  if (!c->in_reading) return; /* the connection ended meanwhile */
  if (n < 0) {
    fprintf(stderr, "ws-client: cannot read standard input: %s\n", uv_strerror((int)n));
    c->bad_input = true;
    input_eof(c);
    return;
  }
  if (n == 0) {
    input_eof(c);
    return;
  }
  feed_input(c, c->inbuf, (size_t)n);
  if (c->in_reading && c->ws && rt_ws_queued(c->ws) < INPUT_HIGH_WATER)
    read_file_chunk(c);
  else if (c->in_reading)
    c->in_paused = true;
}

static void read_file_chunk(client *c) {
  uv_buf_t b = uv_buf_init(c->inbuf, sizeof c->inbuf);
  c->fsreq.data = c;
  c->in_paused = false;
  if (uv_fs_read(c->loop, &c->fsreq, 0, &b, 1, -1, on_fs_read) == 0) {
    c->fs_busy = true;
  } else {
    fprintf(stderr, "ws-client: cannot read standard input\n");
    c->bad_input = true;
    input_eof(c);
  }
}

static void on_stdin_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  client *c = h->data;
  *buf = uv_buf_init(c->inbuf, sizeof c->inbuf);
}

static void on_stdin(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  client *c = s->data;
  if (n == UV_EOF) {
    input_eof(c);
    return;
  }
  if (n < 0) {
    fprintf(stderr, "ws-client: cannot read standard input: %s\n", uv_strerror((int)n));
    c->bad_input = true;
    input_eof(c);
    return;
  }
  feed_input(c, buf->base, (size_t)n);
  if (c->in_reading && c->ws && rt_ws_queued(c->ws) >= INPUT_HIGH_WATER) {
    uv_read_stop(s);
    c->in_paused = true;
  }
}

/* Starts reading stdin: a terminal or a pipe as lines arrive, a file (or /dev/null) in chunks. */
static void open_input(client *c) {
  c->in_reading = true;
  uv_handle_type t = uv_guess_handle(0);
  int rc = -1;
  if (t == UV_TTY) {
    rc = uv_tty_init(c->loop, &c->in.tty, 0, 1);
  } else if (t == UV_NAMED_PIPE || t == UV_TCP) {
    rc = uv_pipe_init(c->loop, &c->in.pipe, 0);
    if (rc == 0 && (rc = uv_pipe_open(&c->in.pipe, 0)) != 0)
      uv_close((uv_handle_t *)&c->in.pipe, NULL);
  } else if (t == UV_FILE) {
    c->in_kind = IN_FILE;
    read_file_chunk(c);
    return;
  } else {
    input_eof(c); /* no standard input at all */
    return;
  }
  if (rc == 0) {
    c->in_kind = IN_STREAM;
    c->in.stream.data = c;
    rc = uv_read_start(&c->in.stream, on_stdin_alloc, on_stdin);
  }
  if (rc != 0) {
    fprintf(stderr, "ws-client: cannot read standard input: %s\n", uv_strerror(rc));
    c->bad_input = true;
    input_eof(c);
  }
}

/* The WebSocket has room again: read more stdin if it was paused for back-pressure. */
static void resume_input(client *c) {
  if (!c->in_paused || !c->in_reading || !c->ws || rt_ws_queued(c->ws) >= INPUT_HIGH_WATER) return;
  c->in_paused = false;
  if (c->in_kind == IN_FILE) {
    if (!c->fs_busy) read_file_chunk(c);
  } else if (c->in_kind == IN_STREAM) {
    uv_read_start(&c->in.stream, on_stdin_alloc, on_stdin);
  }
}

static void on_grace(uv_timer_t *t) {
  start_close(t->data);
}

static void input_ended(client *c) {
  if (!c->ws || c->close_sent) return;
  if (c->grace_s <= 0) {
    start_close(c);
    return;
  }
  c->grace_on = true;
  uv_timer_start(&c->grace, on_grace, (uint64_t)(c->grace_s * 1000), 0);
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  client *c = h->data;
  if (c->ws && !c->close_sent) {
    stop_input(c);
    start_close(c);
  } else if (c->ws) {
    rs_io_conn_abort(rt_ws_io(c->ws), RS_ERR_CLOSED, "interrupted");
  }
}

/* ---- the WebSocket ---- */

static void c_open(void *inner, rt_ws *ws) {
  client *c = inner;
  c->opened = true;
  if (!c->has_timeout) uv_timer_stop(&c->timer); /* it only bounded connecting */
  uv_timer_init(c->loop, &c->grace);
  c->grace.data = c;
  uv_signal_init(c->loop, &c->sigint);
  uv_signal_init(c->loop, &c->sigterm);
  c->sigint.data = c->sigterm.data = c;
  uv_signal_start(&c->sigint, on_signal, SIGINT);
  uv_signal_start(&c->sigterm, on_signal, SIGTERM);
  c->session_handles = true;
  if (c->events) {
    printf("open\n");
    fflush(stdout);
  }
  if (!c->scripted) {
    open_input(c);
    return;
  }
  for (int i = 0; i < c->nsend; i++)
    rt_ws_send(ws, c->binary ? RS_WS_OP_BINARY : RS_WS_OP_TEXT, (const uint8_t *)c->send[i],
               strlen(c->send[i]));
  if (!c->echo && c->expect == 0) start_close(c);
}

static int c_message(void *inner, rt_ws *ws, int op, const uint8_t *d, size_t n, uint64_t now) {
  (void)now;
  client *c = inner;
  print_message(c, op, d, n);
  c->received++;
  if (c->echo) rt_ws_send(ws, op, d, n);
  if (c->scripted && !c->echo && c->expect > 0 && c->received == c->expect) start_close(c);
  if (c->grace_on && !c->close_sent) /* still talking: wait for quiet again */
    uv_timer_start(&c->grace, on_grace, (uint64_t)(c->grace_s * 1000), 0);
  return 0;
}

static void c_pull(void *inner, rt_ws *ws) {
  (void)ws;
  resume_input(inner);
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
  if (c->events) {
    printf("close %u %s %.*s\n", code, remote ? "remote" : "local", (int)reason.len,
           reason.ptr ? (const char *)reason.ptr : "");
    fflush(stdout);
  } else if (code != RS_WS_CLOSE_NORMAL) {
    fprintf(stderr, "ws-client: %s with %u%s%.*s\n",
            remote ? "the server closed the WebSocket" : "WebSocket failed", code,
            reason.len ? ": " : "", (int)reason.len, reason.ptr ? (const char *)reason.ptr : "");
  }
  /* The server closes first: nothing more can be sent, so stop reading stdin. */
  if (remote) stop_input(c);
}

/* Why the connection ended before the WebSocket opened, with a hint for certificate trouble. */
static void report_not_opened(const client *c, const char *reason) {
  const char *hint = "";
  if (strstr(reason, "certificate"))
    hint = " (--ca FILE trusts the server's certificate; -k skips verification)";
  else if (!c->uri.secure && strstr(reason, "closed by peer"))
    hint = " (does it want wss://?)";
  fprintf(stderr, "ws-client: WebSocket handshake with %s:%d failed: %s%s\n", c->uri.host,
          c->uri.port, reason, hint);
}

static void c_closed(void *inner, int err, const char *reason) {
  (void)err;
  client *c = inner;
  if (!reason || !reason[0]) reason = "-";
  if (c->events) {
    printf("closed %s\n", reason);
    fflush(stdout);
  }
  c->ws = NULL;
  if (!c->timed_out) {
    if (!c->opened) {
      report_not_opened(c, reason);
      c->status = 3;
    } else {
      if (c->close_code < 0 && !c->events)
        fprintf(stderr, "ws-client: connection closed without a close handshake: %s\n", reason);
      c->status = c->close_code == RS_WS_CLOSE_NORMAL && !c->bad_input ? 0 : 1;
    }
  }
  close_handle((uv_handle_t *)&c->timer);
  stop_input(c);
  if (c->session_handles) {
    close_handle((uv_handle_t *)&c->grace);
    close_handle((uv_handle_t *)&c->sigint);
    close_handle((uv_handle_t *)&c->sigterm);
  }
}

static const rt_ws_inner_ops client_ops = {c_open,   c_message,    c_pull,   c_deadline,
                                           c_expire, c_want_close, c_closed, c_ws_close,
                                           NULL,     NULL};

static void on_timeout(uv_timer_t *t) {
  client *c = t->data;
  c->timed_out = true;
  c->status = 4;
  if (c->opened)
    fprintf(stderr, "ws-client: timeout after %g s\n", c->timeout_s);
  else if (c->ws) /* TCP is up, the server did not answer the handshake */
    fprintf(stderr, "ws-client: WebSocket handshake with %s:%d timed out after %g s (%s)\n",
            c->uri.host, c->uri.port, c->timeout_s,
            c->uri.secure ? "no TLS answer: is it a wss:// server, or does it want ws://?"
                          : "no answer to the upgrade request: is it a WebSocket server?");
  else
    fprintf(stderr, "ws-client: cannot connect to %s:%d: timed out after %g s\n", c->uri.host,
            c->uri.port, c->timeout_s);
  if (c->ws) {
    rs_io_conn_abort(rt_ws_io(c->ws), RS_ERR_TIMEOUT, "timeout");
  } else {
    uv_close((uv_handle_t *)&c->timer, NULL);
    if (c->connecting) rs_connect_cancel(c->connecting);
    c->connecting = NULL;
    if (c->tcp) uv_close((uv_handle_t *)c->tcp, free_handle);
    c->tcp = NULL;
  }
}

/* TCP is up: TLS for wss://, then the WebSocket handshake. */
static void start_session(client *c) {
  rs_tls *tls = NULL;
  if (c->tls && !(tls = rs_tls_new(c->tls, false, c->uri.host))) {
    fprintf(stderr, "ws-client: out of memory\n");
    c->status = 3;
    uv_close((uv_handle_t *)&c->timer, NULL);
    uv_close((uv_handle_t *)c->tcp, free_handle);
    c->tcp = NULL;
    return;
  }
  rs_io_conn *io = rs_io_conn_new(c->io, c->tcp, tls);
  c->tcp = NULL; /* the connection owns it */
  char host[300];
  bool v6 = strchr(c->uri.host, ':') != NULL;
  if (c->host_header)
    snprintf(host, sizeof host, "%s", c->host_header);
  else if (c->uri.port == (c->uri.secure ? 443 : 80))
    snprintf(host, sizeof host, v6 ? "[%s]" : "%s", c->uri.host);
  else
    snprintf(host, sizeof host, v6 ? "[%s]:%d" : "%s:%d", c->uri.host, c->uri.port);
  c->ws =
      io ? rt_ws_attach_client(io, &c->wo, host, c->uri.path, c->headers, &client_ops, c) : NULL;
  if (!c->ws) {
    fprintf(stderr, "ws-client: out of memory\n");
    c->status = 3;
    if (io) rs_io_conn_abort(io, RS_ERR_NOMEM, "out of memory");
  }
}

static void on_connect(uv_tcp_t *tcp, int status, const char *message, void *arg) {
  client *c = arg;
  c->connecting = NULL;
  if (status != 0) {
    fprintf(stderr, "ws-client: %s\n", message); /* names every address tried */
    c->status = 3;
    uv_close((uv_handle_t *)&c->timer, NULL);
    return;
  }
  c->tcp = tcp;
  start_session(c);
}

/* ---- options ---- */

static void usage(FILE *f) {
  fprintf(f,
          "usage: ws-client [options] ws://HOST[:PORT][/PATH]   (or wss://)\n"
          "\n"
          "A WebSocket client. Each line of standard input is sent as a text message; each\n"
          "message received is printed on its own line (text as is, binary in hex). At the end\n"
          "of input it waits until the server has been quiet for --grace seconds, closes with\n"
          "1000 and waits for the server's close. SIGINT/SIGTERM close at once.\n"
          "\n"
          "  -H, --header 'NAME: VALUE'  add a header to the upgrade request (repeatable;\n"
          "                       'Host: …' replaces the host)\n"
          "      --ca FILE        wss://: trust the CA certificate(s) in FILE as well\n"
          "  -k, --insecure       wss://: do not verify the server certificate\n"
          "      --binary         send lines (or --send) as binary messages\n"
          "      --grace SECONDS  quiet time after the end of input before closing (default 1)\n"
          "      --events         print the event log instead of bare messages\n"
          "      --max-message BYTES  largest message accepted (larger: close 1009)\n"
          "      --deflate        offer permessage-deflate (RFC 7692)\n"
          "      --subprotocol P  offer subprotocol P\n"
          "      --timeout SECONDS  give up after SECONDS (default: 10 for scripted runs;\n"
          "                       otherwise none, but connecting must take less than 10)\n"
          "  -h, --help           this help\n"
          "  -v, --version        print the version\n"
          "\n"
          "Scripted runs (standard input is not read; the output is the event log):\n"
          "      --send TEXT      send TEXT once open (repeatable), then close unless\n"
          "                       --echo or --expect\n"
          "      --echo           send every message received back until the server closes\n"
          "      --expect N       close (1000) after receiving N messages\n"
          "\n"
          "Event log: open / text LEN DATA / binary LEN HEX / close CODE remote|local REASON /\n"
          "closed REASON.\n"
          "Exit status: 0 closed with 1000, 1 failed, closed with another code or a line was not\n"
          "sent, 2 usage, 3 connection or handshake failed, 4 timeout.\n");
}

static bool tchar(unsigned char ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
         (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Checks one -H argument and appends it as "Name: value\r\n". Returns 0, or 2 after saying what
 * is wrong with it. */
static int add_header(client *c, const char *arg) {
  const char *colon = strchr(arg, ':');
  const char *why = NULL, *instead = NULL;
  size_t nlen = colon ? (size_t)(colon - arg) : 0;
  for (size_t i = 0; i < nlen && !why; i++)
    if (!tchar((unsigned char)arg[i]))
      why = "the name has a character HTTP does not allow in header names";
  if (!colon || nlen == 0) why = "expected 'Name: value'";
  const char *v = colon ? colon + 1 : "";
  while (*v == ' ' || *v == '\t') v++;
  size_t vlen = strlen(v);
  while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) vlen--;
  for (size_t i = 0; i < vlen && !why; i++) {
    unsigned char ch = (unsigned char)v[i];
    if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
      why = "the value has a control character (line breaks cannot be sent)";
  }
  static const struct {
    const char *name, *instead;
  } owned[] = {
      {"Upgrade", NULL},
      {"Connection", NULL},
      {"Sec-WebSocket-Key", NULL},
      {"Sec-WebSocket-Version", NULL},
      {"Sec-WebSocket-Accept", NULL},
      {"Sec-WebSocket-Protocol", "use --subprotocol"},
      {"Sec-WebSocket-Extensions", "use --deflate"},
      {"Content-Length", "the upgrade request has no body"},
      {"Transfer-Encoding", "the upgrade request has no body"},
  };
  for (size_t i = 0; !why && i < sizeof owned / sizeof owned[0]; i++) {
    if (strlen(owned[i].name) == nlen && strncasecmp(arg, owned[i].name, nlen) == 0) {
      why = "ws-client writes this header itself";
      instead = owned[i].instead;
    }
  }
  if (!why && nlen == 4 && strncasecmp(arg, "Host", 4) == 0) {
    if (c->host_header) why = "Host given twice";
    if (vlen == 0) why = "empty Host";
    if (!why) {
      char *h = strndup(v, vlen);
      if (!h) return 1;
      c->host_header = h;
      return 0;
    }
  }
  if (!why && c->headers_len + nlen + vlen + 4 > MAX_EXTRA_HEADERS)
    why = "the -H headers are longer than 8 KiB in all";
  if (why) {
    fprintf(stderr, "ws-client: bad -H '%s': %s%s%s\n", arg, why, instead ? "; " : "",
            instead ? instead : "");
    return 2;
  }
  char *nh = realloc(c->headers, c->headers_len + nlen + vlen + 5);
  if (!nh) return 1;
  c->headers = nh;
  c->headers_len +=
      (size_t)sprintf(nh + c->headers_len, "%.*s: %.*s\r\n", (int)nlen, arg, (int)vlen, v);
  return 0;
}

static bool parse_seconds(const char *s, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end || !(v >= 0) || v > 1e6) return false;
  *out = v;
  return true;
}

static int bad(const char *what, const char *arg) {
  fprintf(stderr, "ws-client: bad %s '%s'\nTry 'ws-client --help'.\n", what, arg);
  return 2;
}

/* Parses the command line into `c`. Returns -1 to go on, or an exit status. */
static int parse_args(client *c, int argc, char **argv) {
  static const struct option opts[] = {
      {"echo", no_argument, NULL, 'e'},
      {"send", required_argument, NULL, 's'},
      {"binary", no_argument, NULL, 'b'},
      {"expect", required_argument, NULL, 'n'},
      {"max-message", required_argument, NULL, 'm'},
      {"deflate", no_argument, NULL, 'd'},
      {"subprotocol", required_argument, NULL, 'p'},
      {"timeout", required_argument, NULL, 't'},
      {"header", required_argument, NULL, 'H'},
      {"ca", required_argument, NULL, 'C'},
      {"insecure", no_argument, NULL, 'k'},
      {"grace", required_argument, NULL, 'g'},
      {"events", no_argument, NULL, 'E'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'v'},
      {NULL, 0, NULL, 0},
  };
  const char *ca = NULL;
  bool insecure = false;
  int ch, rc;
  char *end;
  while ((ch = getopt_long(argc, argv, "hvkH:", opts, NULL)) != -1) {
    switch (ch) {
    case 'e': c->echo = c->scripted = true; break;
    case 's':
      c->send[c->nsend++] = optarg;
      c->scripted = true;
      break;
    case 'b': c->binary = true; break;
    case 'n':
      c->expect = strtol(optarg, &end, 10);
      if (*end || end == optarg || c->expect < 0) return bad("--expect", optarg);
      c->scripted = true;
      break;
    case 'm': {
      unsigned long long v = strtoull(optarg, &end, 10);
      if (*end || v == 0 || optarg[0] == '-') return bad("--max-message", optarg);
      c->wo.max_message = (size_t)v;
      break;
    }
    case 'd': c->wo.deflate = true; break;
    case 'p': c->wo.subprotocol = optarg; break;
    case 't':
      if (!parse_seconds(optarg, &c->timeout_s) || c->timeout_s <= 0)
        return bad("--timeout", optarg);
      c->has_timeout = true;
      break;
    case 'H':
      if ((rc = add_header(c, optarg)) != 0) return rc;
      break;
    case 'C': ca = optarg; break;
    case 'k': insecure = true; break;
    case 'g':
      if (!parse_seconds(optarg, &c->grace_s)) return bad("--grace", optarg);
      break;
    case 'E': c->events = true; break;
    case 'h': usage(stdout); return 0;
    case 'v': printf("ws-client %s (rsocket-c)\n", RS_VERSION_STRING); return 0;
    default: fprintf(stderr, "Try 'ws-client --help'.\n"); return 2;
    }
  }
  if (optind >= argc) {
    fprintf(stderr, "ws-client: missing URI (ws://HOST[:PORT][/PATH] or wss://…)\n"
                    "Try 'ws-client --help'.\n");
    return 2;
  }
  if (optind + 1 < argc) {
    fprintf(stderr, "ws-client: unexpected argument '%s'\nTry 'ws-client --help'.\n",
            argv[optind + 1]);
    return 2;
  }
  const char *uri = argv[optind];
  if (strncmp(uri, "ws://", 5) != 0 && strncmp(uri, "wss://", 6) != 0) {
    fprintf(stderr, "ws-client: '%s' is not a WebSocket URI (ws://HOST[:PORT][/PATH] or wss://…)\n",
            uri);
    return 2;
  }
  char err[200];
  if (rs_uri_parse(uri, &c->uri, err, sizeof err) != 0) {
    fprintf(stderr, "ws-client: %s\n", err);
    return 2;
  }
  if ((ca || insecure) && !c->uri.secure) {
    fprintf(stderr, "ws-client: --ca and -k are for wss:// URIs\n");
    return 2;
  }
  if (ca && access(ca, R_OK) != 0) {
    fprintf(stderr, "ws-client: cannot read --ca %s: %s\n", ca, strerror(errno));
    return 2;
  }
  if (c->uri.secure) {
    char terr[RS_TLS_ERRLEN];
    c->tls = rs_tls_ctx_client(ca, insecure, terr);
    if (!c->tls) {
      fprintf(stderr, "ws-client: %s\n", terr);
      return 2;
    }
  }
  if (c->scripted) c->events = true;
  if (!c->has_timeout) c->timeout_s = DEFAULT_TIMEOUT_S;
  return -1;
}

int main(int argc, char **argv) {
  /* Static: what it points to stays reachable on every way out of main (no leak reports). */
  static client c;
  c.close_code = -1;
  c.grace_s = DEFAULT_GRACE_S;
  c.send = calloc((size_t)argc, sizeof *c.send);
  if (!c.send) return 1;
  int done = parse_args(&c, argc, argv);
  if (done >= 0) {
    free(c.send);
    free(c.headers);
    free((char *)c.host_header);
    rs_tls_ctx_free(c.tls);
    return done;
  }
  double timeout = c.timeout_s;
  signal(SIGPIPE, SIG_IGN);
  c.loop = uv_default_loop();
  c.io = rs_io_loop_new(c.loop);
  if (!c.io) return 1;
  /* The timer bounds connecting (every address of the name), the handshake and, with --timeout,
   * the exchange; the connector's own limit is off so a timeout reads the same at every stage. */
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
  free(c.headers);
  free((char *)c.host_header);
  free(c.line);
  rs_tls_ctx_free(c.tls);
  return c.status;
}
