/* rsocket client mode: one interaction, its payloads printed on stdout.
 *
 * Errors are reported once, by whichever event learns of them first: a stream's ERROR (exit 1),
 * the connection's end (on_close: a rejected SETUP or RESUME, a connection error or a protocol
 * violation, exit 4), or the client's end (RS_CLIENT_CLOSED: the transport, exit 3). */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli.h"
#include "rsocket/extensions.h"

#define DELAY_BATCH    32   /* --delayElements without --limitRate: items asked at a time (rsc) */
#define RETRY_FIRST_MS 500  /* --retry: first delay, doubled after each attempt */
#define RETRY_MAX_MS   8000 /* and its cap */

/* A payload waiting for its turn to be printed (--delayElements). */
typedef struct held {
  uint8_t *bytes; /* metadata, then data */
  size_t md_len, data_len;
  bool has_md;
} held;

typedef struct client_state {
  cli_options *o;
  uv_loop_t *loop;
  rs_client *client; /* NULL between --retry attempts and once closed */
  rs_client_options co;
  cli_metadata md;
  uv_timer_t timeout, retry_timer, delay_timer;
  int retries; /* --retry attempts made */
  int exit_code;
  bool exit_set;
  bool started;              /* the request was issued */
  bool finished;             /* the interaction is over; closing */
  bool ended;                /* our handles are closed */
  bool connected_once;       /* a transport came up */
  bool in_done;              /* the responder's half is over: completed, or --take reached */
  bool request_written;      /* fire-and-forget, metadata-push: the frame went out */
  bool first_in_seen;        /* a frame came from the server */
  char not_rsocket[200];     /* why that first frame shows the peer does not speak RSocket */
  char transport_error[300]; /* why the transport went away (TLS failure, reset, …) */
  bool printed;              /* an error line was written */
  uint32_t sid;
  uint64_t received, shown, requested;
  uint64_t batch; /* items asked for at a time (--limitRate, --delayElements); 0 = all */
  held *held;     /* --delayElements queue */
  size_t hhead, htail, hcap;
  /* channel outbound */
  uv_pipe_t in_pipe;
  uv_tty_t in_tty;
  uv_stream_t *in;
  char *linebuf;
  size_t line_len, line_cap;
  char **queue; /* lines waiting for credit */
  size_t *queue_len;
  size_t qhead, qtail, qcap;
  bool in_eof, out_complete;
  uint64_t out_credit;
  uint8_t token[16];
} client_state;

static void set_exit(client_state *st, int code) {
  if (!st->exit_set) {
    st->exit_code = code;
    st->exit_set = true;
  }
}

static rs_conn *conn_of(client_state *st) {
  return st->client ? rs_client_conn(st->client) : NULL;
}

/* Ends the interaction: `code` is the exit status, or -1 to decide when the connection is gone
 * (fire-and-forget and metadata-push succeed once their frame went out without an error). */
static void finish(client_state *st, int code) {
  if (code >= 0) set_exit(st, code);
  if (st->finished) return;
  st->finished = true;
  if (st->in) uv_read_stop(st->in);
  if (st->client) rs_client_close(st->client, true);
}

/* ---- output ---- */

static void print_item(client_state *st, bool has_md, const uint8_t *md, size_t md_len,
                       const uint8_t *data, size_t data_len) {
  if (st->o->quiet) return;
  if (st->o->show_metadata) {
    if (has_md) fwrite(md, 1, md_len, stdout);
    fputc('\t', stdout);
  }
  fwrite(data, 1, data_len, stdout);
  fputc('\n', stdout);
  fflush(stdout);
}

static bool delaying(const client_state *st) {
  return st->o->delay_ms && (st->o->model == MODEL_STREAM || st->o->model == MODEL_CHANNEL);
}

static void hold(client_state *st, const rs_payload *p) {
  if (st->htail == st->hcap) {
    if (st->hhead > 0) {
      memmove(st->held, st->held + st->hhead, (st->htail - st->hhead) * sizeof *st->held);
      st->htail -= st->hhead;
      st->hhead = 0;
    }
    if (st->htail == st->hcap) {
      st->hcap = st->hcap ? st->hcap * 2 : 64;
      if (!(st->held = realloc(st->held, st->hcap * sizeof *st->held))) abort();
    }
  }
  held *h = &st->held[st->htail++];
  h->has_md = p->has_metadata;
  h->md_len = p->has_metadata ? p->metadata.len : 0;
  h->data_len = p->data.len;
  if (!(h->bytes = malloc(h->md_len + h->data_len + 1))) abort();
  if (h->md_len) memcpy(h->bytes, p->metadata.ptr, h->md_len);
  if (h->data_len) memcpy(h->bytes + h->md_len, p->data.ptr, h->data_len);
}

static void show_held(client_state *st) {
  held *h = &st->held[st->hhead++];
  print_item(st, h->has_md, h->bytes, h->md_len, h->bytes + h->md_len, h->data_len);
  free(h->bytes);
  st->shown++;
  if (st->hhead == st->htail) st->hhead = st->htail = 0;
}

/* Prints what is held at once: an error or the end of the connection follows. */
static void flush_held(client_state *st) {
  while (st->hhead < st->htail) show_held(st);
  if (!st->ended) uv_timer_stop(&st->delay_timer);
}

/* Asks for the next batch once every item asked for has been printed. */
static void replenish(client_state *st) {
  rs_conn *conn = conn_of(st);
  if (!st->batch || st->in_done || st->finished || !conn || st->shown < st->requested) return;
  uint64_t n = st->batch;
  if (st->o->take && st->requested + n > st->o->take) n = st->o->take - st->requested;
  if (n == 0) return;
  st->requested += n;
  rs_conn_request_n(conn, st->sid, n);
}

/* Done when the responder's half is over, everything was printed and our half is over too. */
static void try_finish(client_state *st) {
  if (st->finished || !st->in_done || st->hhead < st->htail) return;
  if (st->o->model == MODEL_CHANNEL && !st->out_complete) return;
  finish(st, EXIT_OK);
}

static void on_delay(uv_timer_t *t) {
  client_state *st = t->data;
  if (st->hhead < st->htail) show_held(st);
  if (st->hhead == st->htail) uv_timer_stop(t);
  replenish(st);
  try_finish(st);
}

static void on_payload(rs_conn *conn, uint32_t sid, void *su, const rs_payload *p, unsigned flags,
                       void *user) {
  (void)su;
  client_state *st = user;
  if (sid != st->sid || st->finished || st->in_done) return;
  if (flags & RS_PAYLOAD_NEXT) {
    st->received++;
    if (delaying(st)) {
      hold(st, p);
      if (!uv_is_active((uv_handle_t *)&st->delay_timer))
        uv_timer_start(&st->delay_timer, on_delay, st->o->delay_ms, st->o->delay_ms);
    } else {
      print_item(st, p->has_metadata, p->metadata.ptr, p->metadata.len, p->data.ptr, p->data.len);
      st->shown++;
    }
    if (st->o->take && st->received >= st->o->take) {
      if (!(flags & RS_PAYLOAD_COMPLETE)) rs_conn_cancel(conn, sid);
      st->in_done = true;
      try_finish(st);
      return;
    }
    replenish(st);
  }
  if (flags & RS_PAYLOAD_COMPLETE) {
    st->in_done = true;
    try_finish(st);
  }
}

/* ---- errors ---- */

static void print_error(client_state *st, uint32_t code, rs_bytes msg) {
  st->printed = true;
  fprintf(stderr, "error: %s (0x%X): %.*s\n", rs_error_code_name(code), code, (int)msg.len,
          msg.ptr ? (const char *)msg.ptr : "");
}

static void on_error(rs_conn *conn, uint32_t sid, void *su, const rs_stream_error *e, void *user) {
  (void)conn, (void)su;
  client_state *st = user;
  if (sid != st->sid || st->finished) return;
  if (e->err == RS_ERR_CLOSED) {
    st->in_done = true; /* the connection ended: on_close or RS_CLIENT_CLOSED says why */
    return;
  }
  flush_held(st);
  if (e->remote) {
    print_error(st, e->code, e->message);
    finish(st, EXIT_APPLICATION);
  } else {
    st->printed = true;
    fprintf(stderr, "error: %.*s (%s)\n", (int)e->message.len, (const char *)e->message.ptr,
            rs_strerror(e->err));
    finish(st, EXIT_PROTOCOL);
  }
}

static void on_close(rs_conn *conn, const rs_close_info *info, void *user) {
  (void)conn;
  client_state *st = user;
  flush_held(st);
  if (st->exit_set) return;                                /* decided already */
  if (!info->remote && info->err == RS_ERR_CLOSED) return; /* RS_CLIENT_CLOSED says why */
  bool protocol = info->err == RS_ERR_REJECTED || info->err == RS_ERR_PROTOCOL ||
                  info->err == RS_ERR_FRAME_TOO_LARGE || info->err == RS_ERR_FLOODED ||
                  (info->remote && info->code == RS_ERROR_CONNECTION_ERROR);
  st->printed = true;
  if (!info->remote && st->not_rsocket[0])
    fprintf(stderr, "error: the peer does not speak RSocket (%s)\n", st->not_rsocket);
  else if (info->remote && info->code)
    print_error(st, info->code, info->message);
  else
    fprintf(stderr, "error: connection closed: %.*s\n", (int)info->message.len,
            info->message.ptr ? (const char *)info->message.ptr : rs_strerror(info->err));
  /* A keepalive or resumption timeout is a lost connection; 5 is for --timeout. */
  set_exit(st, protocol ? EXIT_PROTOCOL : EXIT_CONNECT);
  st->finished = true;
}

/* ---- channel input: stdin lines ---- */

static void queue_line(client_state *st, const char *p, size_t n) {
  if (st->qtail == st->qcap) {
    size_t live = st->qtail - st->qhead;
    if (st->qhead > 0) {
      memmove(st->queue, st->queue + st->qhead, live * sizeof *st->queue);
      memmove(st->queue_len, st->queue_len + st->qhead, live * sizeof *st->queue_len);
      st->qhead = 0, st->qtail = live;
    }
    if (st->qtail == st->qcap) {
      st->qcap = st->qcap ? st->qcap * 2 : 64;
      st->queue = realloc(st->queue, st->qcap * sizeof *st->queue);
      st->queue_len = realloc(st->queue_len, st->qcap * sizeof *st->queue_len);
      if (!st->queue || !st->queue_len) abort();
    }
  }
  char *copy = malloc(n + 1);
  if (!copy) abort();
  memcpy(copy, p, n);
  st->queue[st->qtail] = copy;
  st->queue_len[st->qtail++] = n;
}

static void pump_channel(client_state *st) {
  rs_conn *conn = conn_of(st);
  if (!conn) return;
  rs_bytes md = {st->md.request, st->md.request_len};
  while (!st->out_complete && st->out_credit > 0 && st->qhead < st->qtail) {
    bool last = st->in_eof && st->qhead + 1 == st->qtail;
    rs_payload p = {st->md.request != NULL,
                    md,
                    {(const uint8_t *)st->queue[st->qhead], st->queue_len[st->qhead]}};
    if (rs_conn_send_payload(conn, st->sid, &p, last) != 0) break;
    free(st->queue[st->qhead++]);
    st->out_credit--;
    if (last) st->out_complete = true;
  }
  if (!st->out_complete && st->in_eof && st->qhead == st->qtail) {
    rs_conn_send_complete(conn, st->sid);
    st->out_complete = true;
  }
  try_finish(st);
}

static void on_request_n(rs_conn *conn, uint32_t sid, void *su, uint64_t n, void *user) {
  (void)conn, (void)su;
  client_state *st = user;
  if (sid != st->sid) return;
  st->out_credit = n == RS_CREDIT_UNBOUNDED || st->out_credit + n < st->out_credit
                       ? RS_CREDIT_UNBOUNDED
                       : st->out_credit + n;
  pump_channel(st);
}

static void on_cancel(rs_conn *conn, uint32_t sid, void *su, void *user) {
  (void)conn, (void)su;
  client_state *st = user;
  if (sid != st->sid) return;
  st->out_complete = true; /* the responder wants no more from us */
  if (st->in) uv_read_stop(st->in);
  try_finish(st);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  buf->base = malloc(suggested);
  buf->len = buf->base ? suggested : 0;
}

static void add_input(client_state *st, const char *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '\n') {
      size_t len = st->line_len;
      if (len > 0 && st->linebuf[len - 1] == '\r') len--;
      queue_line(st, st->linebuf ? st->linebuf : "", len);
      st->line_len = 0;
      continue;
    }
    if (st->line_len == st->line_cap) {
      st->line_cap = st->line_cap ? st->line_cap * 2 : 256;
      st->linebuf = realloc(st->linebuf, st->line_cap);
      if (!st->linebuf) abort();
    }
    st->linebuf[st->line_len++] = p[i];
  }
}

static void input_eof(client_state *st) {
  if (st->line_len > 0) queue_line(st, st->linebuf, st->line_len);
  st->line_len = 0;
  st->in_eof = true;
}

static void start_request(client_state *st);

static void on_stdin(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  client_state *st = s->data;
  if (n > 0) add_input(st, buf->base, (size_t)n);
  if (n < 0) {
    input_eof(st);
    uv_read_stop(s);
  }
  free(buf->base);
  if (st->started)
    pump_channel(st);
  else if (!st->finished)
    start_request(st);
}

/* Reads stdin for --channel: a file is read at once, a pipe or terminal as lines arrive. */
static int open_stdin(client_state *st) {
  uv_handle_type t = uv_guess_handle(0);
  if (t == UV_NAMED_PIPE && uv_pipe_init(st->loop, &st->in_pipe, 0) == 0 &&
      uv_pipe_open(&st->in_pipe, 0) == 0) {
    st->in = (uv_stream_t *)&st->in_pipe;
  } else if (t == UV_TTY && uv_tty_init(st->loop, &st->in_tty, 0, 1) == 0) {
    st->in = (uv_stream_t *)&st->in_tty;
  } else {
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) add_input(st, buf, n);
    input_eof(st);
    return 0;
  }
  st->in->data = st;
  return uv_read_start(st->in, on_alloc, on_stdin);
}

/* ---- the interaction ---- */

static void start_request(client_state *st) {
  rs_conn *conn = conn_of(st);
  /* With --retry the request waits for a transport: a failed attempt takes its engine along. */
  if (st->started || !conn || (st->o->retry && !st->connected_once)) return;
  st->started = true;
  cli_options *o = st->o;
  rs_payload p = {
      st->md.request != NULL, {st->md.request, st->md.request_len}, {o->data.ptr, o->data.len}};
  rs_ssize r = 0;
  st->batch = o->limit_rate ? o->limit_rate : delaying(st) ? DELAY_BATCH : 0;
  uint64_t initial = st->batch ? st->batch : RS_CREDIT_UNBOUNDED;
  if (o->take && (initial == RS_CREDIT_UNBOUNDED || initial > o->take)) initial = o->take;
  switch (o->model) {
  case MODEL_REQUEST: r = rs_conn_request_response(conn, &p, NULL); break;
  case MODEL_STREAM: r = rs_conn_request_stream(conn, &p, initial, NULL); break;
  case MODEL_FNF: r = rs_conn_request_fnf(conn, &p); break;
  case MODEL_METADATA_PUSH:
    r = rs_conn_metadata_push(conn, (rs_bytes){st->md.request, st->md.request_len});
    break;
  case MODEL_CHANNEL: {
    bool from_stdin = !o->data.set;
    if (from_stdin) {
      /* The first line is the REQUEST_CHANNEL payload: wait for it. */
      if (st->qhead == st->qtail && !st->in_eof) {
        st->started = false;
        return;
      }
      if (st->qhead == st->qtail) { /* empty input: a channel with an empty, complete half */
        p.data = (rs_bytes){(const uint8_t *)"", 0};
        st->out_complete = true;
      } else {
        p.data = (rs_bytes){(const uint8_t *)st->queue[st->qhead], st->queue_len[st->qhead]};
        st->out_complete = st->in_eof && st->qhead + 1 == st->qtail;
      }
    } else {
      st->out_complete = true; /* -d DATA: one payload, our half complete */
    }
    r = rs_conn_request_channel(conn, &p, initial, st->out_complete, NULL);
    if (from_stdin && st->qhead < st->qtail) free(st->queue[st->qhead++]);
    break;
  }
  }
  st->requested = initial;
  if (r < 0) {
    st->printed = true;
    fprintf(stderr, "error: cannot send the request: %s\n", rs_strerror((int)r));
    finish(st, r == RS_ERR_NO_LEASE ? EXIT_PROTOCOL : EXIT_CONNECT);
    return;
  }
  st->sid = (uint32_t)r;
  if (o->model == MODEL_FNF || o->model == MODEL_METADATA_PUSH) finish(st, -1);
}

static void on_lease(rs_conn *conn, uint32_t ttl, uint32_t n, const rs_bytes *md, void *user) {
  (void)conn, (void)ttl, (void)n, (void)md;
  client_state *st = user;
  if (!st->started) start_request(st); /* a lease server: now we may ask */
}

/* The first frame from the server: is it one an RSocket server could send? An echo server sends
 * our SETUP and request back; anything else may fail to decode at all. */
static void check_first_frame(client_state *st, const uint8_t *frame, size_t len) {
  rs_frame f;
  rs_frame_error e;
  if (rs_frame_decode(&f, frame, len, &e) != 0) {
    snprintf(st->not_rsocket, sizeof st->not_rsocket,
             "the first frame from the server is not a valid RSocket frame: %s at byte %zu",
             e.message, e.offset);
  } else if (f.type == RS_FRAME_SETUP || f.type == RS_FRAME_RESUME) {
    snprintf(st->not_rsocket, sizeof st->not_rsocket,
             "the first frame from the server is a %s, which only clients send: it looks like an "
             "echo server sending our own frames back",
             rs_frame_type_name(f.type));
  } else if ((f.type == RS_FRAME_REQUEST_RESPONSE || f.type == RS_FRAME_REQUEST_FNF ||
              f.type == RS_FRAME_REQUEST_STREAM || f.type == RS_FRAME_REQUEST_CHANNEL) &&
             (f.stream_id & 1)) {
    snprintf(st->not_rsocket, sizeof st->not_rsocket,
             "the first frame from the server is a %s on stream %u, our own request: it looks "
             "like an echo server sending our frames back",
             rs_frame_type_name(f.type), f.stream_id);
  }
}

static void on_frame(rs_conn *conn, bool out, const uint8_t *frame, size_t len, void *user) {
  (void)conn;
  client_state *st = user;
  cli_debug_frame(out, frame, len);
  uint32_t sid;
  uint8_t type;
  uint16_t flags;
  if (out) {
    if (rs_frame_decode_header(frame, len, &sid, &type, &flags) == 0 &&
        (type == RS_FRAME_REQUEST_FNF || type == RS_FRAME_METADATA_PUSH))
      st->request_written = true;
  } else if (!st->first_in_seen) {
    st->first_in_seen = true;
    check_first_frame(st, frame, len);
  }
}

static void end_handles(client_state *st) {
  if (st->ended) return;
  st->ended = true;
  uv_close((uv_handle_t *)&st->timeout, NULL);
  uv_close((uv_handle_t *)&st->retry_timer, NULL);
  uv_close((uv_handle_t *)&st->delay_timer, NULL);
  if (st->in) uv_close((uv_handle_t *)st->in, NULL);
  st->in = NULL;
}

static void on_retry(uv_timer_t *t) {
  client_state *st = t->data;
  if (st->finished) return;
  st->transport_error[0] = '\0';
  char err[300];
  if (rs_client_start(&st->client, st->loop, &st->co, err, sizeof err) != 0) {
    fprintf(stderr, "rsocket: %s\n", err);
    st->client = NULL;
    set_exit(st, EXIT_CONNECT);
    end_handles(st);
  }
}

/* After a first connection that failed, --retry tries again: 0.5 s, 1 s, 2 s… up to 8 s. */
static bool retry_later(client_state *st, const char *why) {
  if (st->connected_once || st->exit_set || st->finished || st->retries >= st->o->retry)
    return false;
  st->retries++;
  uint64_t ms = RETRY_FIRST_MS;
  for (int i = 1; i < st->retries && ms < RETRY_MAX_MS; i++) ms *= 2;
  if (ms > RETRY_MAX_MS) ms = RETRY_MAX_MS;
  fprintf(stderr, "rsocket: %s; retry %d of %d in %.1f s\n", why, st->retries, st->o->retry,
          (double)ms / 1000);
  uv_timer_start(&st->retry_timer, on_retry, ms, 0);
  return true;
}

static void connection_failed(client_state *st, const char *why) {
  st->printed = true;
  if (st->not_rsocket[0]) {
    fprintf(stderr, "error: the peer does not speak RSocket (%s)\n", st->not_rsocket);
    st->exit_code = EXIT_PROTOCOL;
  } else {
    fprintf(stderr, "error: %s\n", why);
    if (strstr(why, "certificate verify failed"))
      fprintf(stderr, strstr(why, "mismatch")
                          ? "hint: connect with a name the certificate is for, or skip the check "
                            "with -k (for tests only)\n"
                          : "hint: trust the server's CA with --ca FILE, or skip the check with "
                            "-k (for tests only)\n");
    st->exit_code = EXIT_CONNECT;
  }
  st->exit_set = true;
}

static void on_event(rs_client *c, rs_client_event ev, const char *msg, void *user) {
  client_state *st = user;
  switch (ev) {
  case RS_CLIENT_CONNECTED:
    st->connected_once = true;
    if (st->o->debug) fprintf(stderr, "* connected to %s\n", msg);
    if (st->o->retry && !st->started && !st->finished) start_request(st);
    break;
  case RS_CLIENT_DISCONNECTED:
    snprintf(st->transport_error, sizeof st->transport_error, "%s", msg);
    if (st->o->debug) fprintf(stderr, "* disconnected: %s\n", msg);
    break;
  case RS_CLIENT_RESUMED:
    if (st->o->debug) fprintf(stderr, "* %s\n", msg);
    break;
  case RS_CLIENT_RECONNECTING: fprintf(stderr, "rsocket: %s\n", msg); break;
  case RS_CLIENT_CLOSED: {
    st->client = NULL;
    flush_held(st);
    const char *why = st->transport_error[0] ? st->transport_error : msg;
    if (retry_later(st, why)) return;
    bool one_way = st->o->model == MODEL_FNF || st->o->model == MODEL_METADATA_PUSH;
    if (!st->exit_set && one_way && st->request_written)
      set_exit(st, EXIT_OK);
    else if (!st->exit_set || (st->exit_code == EXIT_CONNECT && !st->printed)) {
      connection_failed(st, why);
      /* Connecting, a handshake or the answer to SETUP took too long: a timeout (status 5). */
      if (st->exit_code == EXIT_CONNECT && !st->connected_once &&
          rs_client_last_error(c) == RS_ERR_TIMEOUT)
        st->exit_code = EXIT_TIMEOUT;
    }
    st->finished = true;
    end_handles(st);
    break;
  }
  }
}

static void on_timeout(uv_timer_t *t) {
  client_state *st = t->data;
  flush_held(st);
  st->printed = true;
  fprintf(stderr, "error: timed out after %u ms\n", st->o->timeout_ms);
  set_exit(st, EXIT_TIMEOUT);
  st->finished = true;
  if (st->client)
    rs_client_close(st->client, false);
  else
    end_handles(st); /* between --retry attempts */
}

static void fill_options(client_state *st) {
  cli_options *o = st->o;
  rs_client_options *co = &st->co;
  rs_client_options_default(co);
  co->uri = o->uri;
  rs_conn_settings *s = &co->settings;
  if (o->keepalive_ms) s->keepalive_interval_ms = o->keepalive_ms;
  if (o->max_lifetime_ms) s->max_lifetime_ms = o->max_lifetime_ms;
  s->metadata_mime = rs_bytes_str(st->md.mime);
  if (o->data_mime) s->data_mime = rs_bytes_str(o->data_mime);
  if (o->setup_data.set || st->md.setup) {
    s->setup_payload.has_metadata = st->md.setup != NULL;
    s->setup_payload.metadata = (rs_bytes){st->md.setup, st->md.setup_len};
    s->setup_payload.data = (rs_bytes){o->setup_data.ptr, o->setup_data.len};
  }
  s->mtu = o->mtu;
  if (o->resume_ms) {
    RAND_bytes(st->token, sizeof st->token);
    s->resume = true;
    s->resume_token = (rs_bytes){st->token, sizeof st->token};
    s->resume_session_timeout_ms = o->resume_ms;
    co->reconnect = true;
    co->backoff_min_ms = 100;
    co->backoff_max_ms = 2000;
  }
  co->callbacks.struct_size = sizeof co->callbacks;
  co->callbacks.on_payload = on_payload;
  co->callbacks.on_error = on_error;
  co->callbacks.on_close = on_close;
  co->callbacks.on_request_n = on_request_n;
  co->callbacks.on_cancel = on_cancel;
  co->callbacks.on_lease = on_lease;
  co->user = st;
  co->ca_file = o->ca;
  co->insecure = o->insecure;
  co->on_event = on_event;
  co->on_frame = on_frame; /* --debug, and the first frame's check */
  co->ws.headers = o->nws_headers ? o->ws_headers : NULL;
  co->connect_timeout_ms = o->connect_timeout_ms;
  co->setup_timeout_ms = o->connect_timeout_ms;
}

int cli_run_client(cli_options *o) {
  client_state st;
  memset(&st, 0, sizeof st);
  st.o = o;
  if (cli_metadata_build(o, &st.md) != 0) return EXIT_USAGE;
  cli_debug_composite(st.md.composite);
  fill_options(&st);
  uv_loop_t loop;
  uv_loop_init(&loop);
  st.loop = &loop;
  char err[300];
  int rc = rs_client_start(&st.client, &loop, &st.co, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "rsocket: %s\n", err);
    cli_metadata_free(&st.md);
    uv_loop_close(&loop);
    return EXIT_USAGE;
  }
  uv_timer_init(&loop, &st.timeout);
  uv_timer_init(&loop, &st.retry_timer);
  uv_timer_init(&loop, &st.delay_timer);
  st.timeout.data = st.retry_timer.data = st.delay_timer.data = &st;
  if (o->timeout_ms) uv_timer_start(&st.timeout, on_timeout, o->timeout_ms, 0);
  if (o->model == MODEL_CHANNEL && !o->data.set && open_stdin(&st) != 0) {
    fprintf(stderr, "rsocket: cannot read stdin\n");
    rs_client_close(st.client, false);
  }
  /* Requests can be queued before the transport is up: SETUP goes first. */
  start_request(&st);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  cli_metadata_free(&st.md);
  while (st.qhead < st.qtail) free(st.queue[st.qhead++]);
  while (st.hhead < st.htail) free(st.held[st.hhead++].bytes);
  free(st.held);
  free(st.queue);
  free(st.queue_len);
  free(st.linebuf);
  return st.exit_code;
}
