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

#include "rsocket/websocket.h"

#define DEFAULT_TIMEOUT_S 10.0        /* scripted runs; connecting in interactive runs */
#define DEFAULT_GRACE_S   1.0         /* quiet time after the end of stdin before closing */
#define MAX_LINE          (16u << 20) /* longest stdin line (one message) */
#define INPUT_HIGH_WATER  (1u << 20)  /* stop reading stdin while this much output is queued */
#define MAX_EXTRA_HEADERS 8192u       /* -H lines in all (servers limit the request head) */
#define STDIN_BUF         65536

enum { IN_NONE, IN_STREAM, IN_FILE };

typedef struct client {
  uv_loop_t *loop;
  uv_timer_t timer; /* --timeout; in interactive runs without it, connecting only */
  uv_timer_t grace; /* after the end of stdin: close once the server is quiet */
  uv_signal_t sigint, sigterm;
  bool session_handles; /* grace and signals are initialised (once the WebSocket is open) */
  bool grace_on;        /* stdin ended: the grace timer runs, restarted by every message */
  const char *uri;
  char authority[300]; /* HOST:PORT of the URI, for messages */
  bool secure;         /* wss:// */
  rs_ws_client_options o;
  char **headers; /* validated -H lines, "Name: value" each, NULL-terminated */
  size_t nheaders, headers_len;
  const char *host_header; /* -H 'Host: …' replaces the URI's host in the request */
  rs_ws_session *ws;       /* from rs_ws_client_start until on_close */
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
  int status;
} client;

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
  rs_ws_session_close(c->ws, RS_WS_CLOSE_NORMAL, NULL);
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
  if (!c->binary && !rs_ws_utf8_valid((const uint8_t *)c->line, c->line_len)) {
    fprintf(stderr,
            "ws-client: line %llu is not valid UTF-8 and was not sent (--binary sends lines as "
            "binary messages)\n",
            c->lineno);
    c->bad_input = true;
    c->line_len = 0;
    return;
  }
  int rc = rs_ws_session_send(c->ws, !c->binary, c->line ? c->line : "", c->line_len);
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
  if (c->in_reading && c->ws && rs_ws_session_writable(c->ws))
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
  if (c->in_reading && c->ws && !rs_ws_session_writable(c->ws)) {
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
  if (!c->in_paused || !c->in_reading || !c->ws) return;
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
    rs_ws_session_abort(c->ws, "interrupted");
  }
}

/* ---- the WebSocket ---- */

static void c_open(rs_ws_session *ws, void *user) {
  client *c = user;
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
    rs_ws_session_send(ws, !c->binary, c->send[i], strlen(c->send[i]));
  if (!c->echo && c->expect == 0) start_close(c);
}

static void c_message(rs_ws_session *ws, bool text, const uint8_t *d, size_t n, void *user) {
  client *c = user;
  print_message(c, text ? RS_WS_OP_TEXT : RS_WS_OP_BINARY, d, n);
  c->received++;
  if (c->echo) rs_ws_session_send(ws, text, d, n);
  if (c->scripted && !c->echo && c->expect > 0 && c->received == c->expect) start_close(c);
  if (c->grace_on && !c->close_sent) /* still talking: wait for quiet again */
    uv_timer_start(&c->grace, on_grace, (uint64_t)(c->grace_s * 1000), 0);
}

static void c_drained(rs_ws_session *ws, void *user) {
  (void)ws;
  resume_input(user);
}

/* Why the connection ended before the WebSocket opened, with a hint for certificate trouble. */
static void report_not_opened(const client *c, const char *reason) {
  const char *hint = "";
  if (strstr(reason, "certificate"))
    hint = " (--ca FILE trusts the server's certificate; -k skips verification)";
  else if (!c->secure && strstr(reason, "closed by peer"))
    hint = " (does it want wss://?)";
  if (strncmp(reason, "cannot connect to ", 18) == 0)
    fprintf(stderr, "ws-client: %s\n", reason); /* names every address tried */
  else
    fprintf(stderr, "ws-client: WebSocket handshake with %s failed: %s%s\n", c->authority, reason,
            hint);
}

static void c_close(rs_ws_session *ws, unsigned code, const char *reason, bool remote, void *user) {
  (void)ws;
  client *c = user;
  bool handshake = code != RS_WS_CLOSE_ABNORMAL; /* a close frame was sent or received */
  if (c->events) {
    if (handshake) printf("close %u %s %s\n", code, remote ? "remote" : "local", reason);
    printf("closed %s\n", handshake ? "closed" : reason[0] ? reason : "-");
    fflush(stdout);
  } else if (handshake && code != RS_WS_CLOSE_NORMAL) {
    fprintf(stderr, "ws-client: %s with %u%s%s\n",
            remote ? "the server closed the WebSocket" : "WebSocket failed", code,
            reason[0] ? ": " : "", reason);
  }
  c->ws = NULL;
  if (!c->timed_out) {
    if (!c->opened) {
      report_not_opened(c, reason);
      c->status = 3;
    } else {
      if (!handshake && !c->events)
        fprintf(stderr, "ws-client: connection closed without a close handshake: %s\n", reason);
      c->status = code == RS_WS_CLOSE_NORMAL && !c->bad_input ? 0 : 1;
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

static const rs_ws_session_callbacks client_callbacks = {
    .on_open = c_open,
    .on_message = c_message,
    .on_drained = c_drained,
    .on_close = c_close,
};

static void on_timeout(uv_timer_t *t) {
  client *c = t->data;
  c->timed_out = true;
  c->status = 4;
  if (c->opened)
    fprintf(stderr, "ws-client: timeout after %g s\n", c->timeout_s);
  else if (*rs_ws_session_peer(c->ws)) /* TCP is up, the server did not answer the handshake */
    fprintf(stderr, "ws-client: WebSocket handshake with %s timed out after %g s (%s)\n",
            c->authority, c->timeout_s,
            c->secure ? "no TLS answer: is it a wss:// server, or does it want ws://?"
                      : "no answer to the upgrade request: is it a WebSocket server?");
  else
    fprintf(stderr, "ws-client: cannot connect to %s: timed out after %g s\n", c->authority,
            c->timeout_s);
  rs_ws_session_abort(c->ws, "timeout");
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
  char **nh = realloc(c->headers, (c->nheaders + 2) * sizeof *nh);
  if (!nh) return 1;
  c->headers = nh;
  char *line = malloc(nlen + vlen + 3);
  if (!line) return 1;
  sprintf(line, "%.*s: %.*s", (int)nlen, arg, (int)vlen, v);
  nh[c->nheaders++] = line;
  nh[c->nheaders] = NULL;
  c->headers_len += nlen + vlen + 4;
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
      c->o.ws.max_message = (size_t)v;
      break;
    }
    case 'd': c->o.ws.deflate = true; break;
    case 'p': c->o.ws.subprotocol = optarg; break;
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
  c->uri = uri;
  c->secure = strncmp(uri, "wss://", 6) == 0;
  const char *host = uri + (c->secure ? 6 : 5);
  size_t hl = strcspn(host, "/?#");
  snprintf(c->authority, sizeof c->authority, "%.*s", (int)(hl < 256 ? hl : 256), host);
  bool has_port = c->authority[0] == '[' ? strstr(c->authority, "]:") != NULL
                                         : strchr(c->authority, ':') != NULL;
  if (!has_port)
    snprintf(c->authority + strlen(c->authority), sizeof c->authority - strlen(c->authority), ":%d",
             c->secure ? 443 : 80);
  if ((ca || insecure) && !c->secure) {
    fprintf(stderr, "ws-client: --ca and -k are for wss:// URIs\n");
    return 2;
  }
  if (ca && access(ca, R_OK) != 0) {
    fprintf(stderr, "ws-client: cannot read --ca %s: %s\n", ca, strerror(errno));
    return 2;
  }
  c->o.ca_file = ca;
  c->o.insecure = insecure;
  if (c->scripted) c->events = true;
  if (!c->has_timeout) c->timeout_s = DEFAULT_TIMEOUT_S;
  return -1;
}

static void free_client(client *c) {
  free(c->send);
  for (size_t i = 0; i < c->nheaders; i++) free(c->headers[i]);
  free(c->headers);
  free((char *)c->host_header);
  free(c->line);
}

int main(int argc, char **argv) {
  /* Static: what it points to stays reachable on every way out of main (no leak reports). */
  static client c;
  c.grace_s = DEFAULT_GRACE_S;
  rs_ws_client_options_default(&c.o);
  c.send = calloc((size_t)argc, sizeof *c.send);
  if (!c.send) return 1;
  int done = parse_args(&c, argc, argv);
  if (done >= 0) {
    free_client(&c);
    return done;
  }
  signal(SIGPIPE, SIG_IGN);
  c.loop = uv_default_loop();
  /* The timer bounds connecting (every address of the name), the handshake and, with --timeout,
   * the exchange; the library's own limit is off so a timeout reads the same at every stage. */
  c.o.uri = c.uri;
  c.o.ws.headers = (const char *const *)c.headers;
  c.o.host_header = c.host_header;
  c.o.connect_timeout_ms = RS_CLIENT_NO_TIMEOUT;
  c.o.high_watermark = INPUT_HIGH_WATER;
  c.o.callbacks = client_callbacks;
  c.o.user = &c;
  char err[400];
  int rc = rs_ws_client_start(&c.ws, c.loop, &c.o, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "ws-client: %s\n", err);
    free_client(&c);
    return rc == RS_ERR_INVALID_ARGUMENT ? 2 : 1;
  }
  uv_timer_init(c.loop, &c.timer);
  c.timer.data = &c;
  uv_timer_start(&c.timer, on_timeout, (uint64_t)(c.timeout_s * 1000), 0);
  uv_run(c.loop, UV_RUN_DEFAULT);
  uv_loop_close(c.loop);
  free_client(&c);
  return c.status;
}
