/* rsocket client mode: one interaction, its payloads printed on stdout. */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli.h"
#include "rsocket/extensions.h"

typedef struct client_state {
  cli_options *o;
  uv_loop_t *loop;
  rs_client *client;
  uv_timer_t timeout;
  int exit_code;
  bool exit_set;
  bool started;              /* the request was issued */
  bool finished;             /* the interaction is over; closing */
  bool connected_once;       /* local errors before this are reported by the CLOSED event */
  char transport_error[300]; /* why the transport went away (TLS failure, reset, …) */
  bool printed;              /* an error line was written */
  uint32_t sid;
  uint64_t received;
  uint64_t requested;
  uint8_t *metadata; /* request metadata (composite or plain) */
  size_t metadata_len;
  bool has_metadata;
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

static void finish(client_state *st, int code) {
  set_exit(st, code);
  if (st->finished) return;
  st->finished = true;
  if (st->in) uv_read_stop(st->in);
  rs_client_close(st->client, true);
}

static void print_payload(client_state *st, const rs_payload *p) {
  if (st->o->show_metadata) {
    if (p->has_metadata) fwrite(p->metadata.ptr, 1, p->metadata.len, stdout);
    fputc('\t', stdout);
  }
  fwrite(p->data.ptr, 1, p->data.len, stdout);
  fputc('\n', stdout);
  fflush(stdout);
}

static void on_payload(rs_conn *conn, uint32_t sid, void *su, const rs_payload *p, unsigned flags,
                       void *user) {
  (void)su;
  client_state *st = user;
  if (sid != st->sid || st->finished) return;
  if (flags & RS_PAYLOAD_NEXT) {
    print_payload(st, p);
    st->received++;
    if (st->o->take && st->received >= st->o->take && !(flags & RS_PAYLOAD_COMPLETE)) {
      rs_conn_cancel(conn, sid);
      finish(st, EXIT_OK);
      return;
    }
    if (st->o->limit_rate && st->received == st->requested && !(flags & RS_PAYLOAD_COMPLETE)) {
      uint64_t n = st->o->limit_rate;
      if (st->o->take && st->requested + n > st->o->take) n = st->o->take - st->requested;
      st->requested += n;
      rs_conn_request_n(conn, sid, n);
    }
  }
  if (flags & RS_PAYLOAD_COMPLETE) {
    /* A channel finishes when both halves are done; our half may still be sending. */
    if (st->o->model != MODEL_CHANNEL || st->out_complete) finish(st, EXIT_OK);
  }
}

static void print_error(client_state *st, uint32_t code, rs_bytes msg) {
  st->printed = true;
  fprintf(stderr, "error: %s (0x%X): %.*s\n", rs_error_code_name(code), code, (int)msg.len,
          msg.ptr ? (const char *)msg.ptr : "");
}

static void on_error(rs_conn *conn, uint32_t sid, void *su, const rs_stream_error *e, void *user) {
  (void)conn, (void)su;
  client_state *st = user;
  if (sid != st->sid || st->finished) return;
  if (e->remote) {
    print_error(st, e->code, e->message);
    finish(st, EXIT_APPLICATION);
  } else if (e->err == RS_ERR_CLOSED) {
    set_exit(st, EXIT_CONNECT); /* the transport went away: on_event(CLOSED) says why */
    st->finished = true;
    return;
  } else {
    fprintf(stderr, "error: %.*s (%s)\n", (int)e->message.len, (const char *)e->message.ptr,
            rs_strerror(e->err));
    finish(st, e->err == RS_ERR_CLOSED ? EXIT_CONNECT : EXIT_PROTOCOL);
  }
}

static void on_close(rs_conn *conn, const rs_close_info *info, void *user) {
  (void)conn;
  client_state *st = user;
  if (st->finished && info->err == RS_ERR_CLOSED) return;
  if (!info->remote && info->err == RS_ERR_CLOSED) return; /* on_event(CLOSED) says why */
  if (info->remote && info->code)
    print_error(st, info->code, info->message);
  else {
    st->printed = true;
    fprintf(stderr, "error: connection closed: %.*s\n", (int)info->message.len,
            info->message.ptr ? (const char *)info->message.ptr : rs_strerror(info->err));
  }
  int code = info->err == RS_ERR_REJECTED || info->err == RS_ERR_PROTOCOL ? EXIT_PROTOCOL
             : info->err == RS_ERR_TIMEOUT                                ? EXIT_TIMEOUT
                                                                          : EXIT_CONNECT;
  set_exit(st, code);
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
  rs_conn *conn = rs_client_conn(st->client);
  while (!st->out_complete && st->out_credit > 0 && st->qhead < st->qtail) {
    bool last = st->in_eof && st->qhead + 1 == st->qtail;
    rs_payload p = {st->has_metadata,
                    {st->metadata, st->metadata_len},
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
  rs_runtime_wake(conn);
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

/* ---- metadata ---- */

static int build_metadata(client_state *st) {
  cli_options *o = st->o;
  bool composite = o->nroutes > 0 || o->auth_bearer || o->auth_simple;
  if (!composite) {
    if (o->metadata.set) {
      st->metadata = o->metadata.ptr;
      st->metadata_len = o->metadata.len;
      st->has_metadata = true;
    }
    return 0;
  }
  size_t cap = 64 + o->metadata.len, len = 0;
  for (int i = 0; i < o->nroutes; i++) cap += strlen(o->routes[i]) + 1;
  if (o->auth_bearer) cap += strlen(o->auth_bearer) + 8;
  if (o->auth_simple) cap += strlen(o->auth_simple) + 8;
  uint8_t *buf = malloc(cap), *tmp = malloc(cap);
  if (!buf || !tmp) return -1;
  rs_ssize n;
  if (o->nroutes > 0) {
    rs_bytes tags[16];
    for (int i = 0; i < o->nroutes; i++) tags[i] = rs_bytes_str(o->routes[i]);
    n = rs_routing_encode(tmp, cap, tags, (size_t)o->nroutes);
    if (n < 0) goto fail;
    n = rs_composite_encode_id(buf + len, cap - len, RS_MIME_ID_ROUTING, tmp, (size_t)n);
    if (n < 0) goto fail;
    len += (size_t)n;
  }
  if (o->auth_bearer || o->auth_simple) {
    if (o->auth_bearer) {
      n = rs_auth_encode_bearer(tmp, cap, o->auth_bearer, strlen(o->auth_bearer));
    } else {
      const char *colon = strchr(o->auth_simple, ':');
      n = rs_auth_encode_simple(tmp, cap, o->auth_simple, (size_t)(colon - o->auth_simple),
                                colon + 1, strlen(colon + 1));
    }
    if (n < 0) goto fail;
    n = rs_composite_encode_id(buf + len, cap - len, RS_MIME_ID_AUTHENTICATION, tmp, (size_t)n);
    if (n < 0) goto fail;
    len += (size_t)n;
  }
  if (o->metadata.set) {
    const char *mime = o->metadata_mime && strcmp(o->metadata_mime, RS_MIME_COMPOSITE_METADATA)
                           ? o->metadata_mime
                           : "application/octet-stream";
    n = rs_composite_encode(buf + len, cap - len, mime, strlen(mime), o->metadata.ptr,
                            o->metadata.len);
    if (n < 0) goto fail;
    len += (size_t)n;
  }
  free(tmp);
  st->metadata = buf;
  st->metadata_len = len;
  st->has_metadata = true;
  return 1;
fail:
  fprintf(stderr, "rsocket: cannot encode metadata: %s\n", rs_strerror((int)n));
  free(buf);
  free(tmp);
  return -1;
}

/* ---- the interaction ---- */

static void start_request(client_state *st) {
  if (st->started) return;
  st->started = true;
  cli_options *o = st->o;
  rs_conn *conn = rs_client_conn(st->client);
  rs_payload p = {st->has_metadata, {st->metadata, st->metadata_len}, {o->data.ptr, o->data.len}};
  rs_ssize r = 0;
  uint64_t initial = o->limit_rate ? o->limit_rate : RS_CREDIT_UNBOUNDED;
  if (o->take && (initial == RS_CREDIT_UNBOUNDED || initial > o->take)) initial = o->take;
  switch (o->model) {
  case MODEL_REQUEST: r = rs_conn_request_response(conn, &p, NULL); break;
  case MODEL_STREAM: r = rs_conn_request_stream(conn, &p, initial, NULL); break;
  case MODEL_FNF: r = rs_conn_request_fnf(conn, &p); break;
  case MODEL_METADATA_PUSH:
    r = rs_conn_metadata_push(conn, (rs_bytes){o->metadata.ptr, o->metadata.len});
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
    fprintf(stderr, "error: cannot send the request: %s\n", rs_strerror((int)r));
    finish(st, r == RS_ERR_NO_LEASE ? EXIT_PROTOCOL : EXIT_CONNECT);
    return;
  }
  st->sid = (uint32_t)r;
  if (o->model == MODEL_FNF || o->model == MODEL_METADATA_PUSH) finish(st, EXIT_OK);
  rs_runtime_wake(conn);
}

static void on_lease(rs_conn *conn, uint32_t ttl, uint32_t n, const rs_bytes *md, void *user) {
  (void)conn, (void)ttl, (void)n, (void)md;
  client_state *st = user;
  if (!st->started) start_request(st); /* a lease server: now we may ask */
}

static void on_event(rs_client *c, rs_client_event ev, const char *msg, void *user) {
  client_state *st = user;
  switch (ev) {
  case RS_CLIENT_CONNECTED:
    st->connected_once = true;
    if (st->o->debug) fprintf(stderr, "* connected to %s\n", msg);
    break;
  case RS_CLIENT_DISCONNECTED:
    snprintf(st->transport_error, sizeof st->transport_error, "%s", msg);
    if (st->o->debug) fprintf(stderr, "* disconnected: %s\n", msg);
    break;
  case RS_CLIENT_RESUMED:
    if (st->o->debug) fprintf(stderr, "* %s\n", msg);
    break;
  case RS_CLIENT_RECONNECTING: fprintf(stderr, "rsocket: %s\n", msg); break;
  case RS_CLIENT_CLOSED:
    if (!st->exit_set || (st->exit_code == EXIT_CONNECT && !st->printed)) {
      /* Connecting, a handshake or the answer to SETUP took too long: a timeout (status 5). */
      bool timeout = rs_client_last_error(c) == RS_ERR_TIMEOUT && !st->connected_once;
      fprintf(stderr, "error: %s\n", st->transport_error[0] ? st->transport_error : msg);
      st->exit_code = timeout ? EXIT_TIMEOUT : EXIT_CONNECT;
      st->exit_set = true;
      st->printed = true;
    }
    st->finished = true;
    uv_timer_stop(&st->timeout);
    uv_close((uv_handle_t *)&st->timeout, NULL);
    if (st->in) uv_close((uv_handle_t *)st->in, NULL);
    st->in = NULL;
    break;
  }
}

static void on_timeout(uv_timer_t *t) {
  client_state *st = t->data;
  fprintf(stderr, "error: timed out after %u ms\n", st->o->timeout_ms);
  set_exit(st, EXIT_TIMEOUT);
  st->finished = true;
  rs_client_close(st->client, false);
}

static void on_frame(rs_conn *conn, bool out, const uint8_t *frame, size_t len, void *user) {
  (void)conn, (void)user;
  cli_debug_frame(out, frame, len);
}

int cli_run_client(cli_options *o) {
  client_state st;
  memset(&st, 0, sizeof st);
  st.o = o;
  uv_loop_t loop;
  uv_loop_init(&loop);
  st.loop = &loop;
  if (build_metadata(&st) < 0) return EXIT_USAGE;

  rs_client_options co;
  rs_client_options_default(&co);
  co.uri = o->uri;
  rs_conn_settings *s = &co.settings;
  if (o->keepalive_ms) s->keepalive_interval_ms = o->keepalive_ms;
  if (o->max_lifetime_ms) s->max_lifetime_ms = o->max_lifetime_ms;
  bool composite = o->nroutes > 0 || o->auth_bearer || o->auth_simple;
  if (composite)
    s->metadata_mime = rs_bytes_str(RS_MIME_COMPOSITE_METADATA);
  else if (o->metadata_mime)
    s->metadata_mime = rs_bytes_str(o->metadata_mime);
  if (o->data_mime) s->data_mime = rs_bytes_str(o->data_mime);
  if (o->setup_data.set || o->setup_metadata.set) {
    s->setup_payload.has_metadata = o->setup_metadata.set;
    s->setup_payload.metadata = (rs_bytes){o->setup_metadata.ptr, o->setup_metadata.len};
    s->setup_payload.data = (rs_bytes){o->setup_data.ptr, o->setup_data.len};
  }
  s->mtu = o->mtu;
  if (o->resume_ms) {
    RAND_bytes(st.token, sizeof st.token);
    s->resume = true;
    s->resume_token = (rs_bytes){st.token, sizeof st.token};
    s->resume_session_timeout_ms = o->resume_ms;
    co.reconnect = true;
    co.backoff_min_ms = 100;
    co.backoff_max_ms = 2000;
  }
  co.callbacks.struct_size = sizeof co.callbacks;
  co.callbacks.on_payload = on_payload;
  co.callbacks.on_error = on_error;
  co.callbacks.on_close = on_close;
  co.callbacks.on_request_n = on_request_n;
  co.callbacks.on_cancel = on_cancel;
  co.callbacks.on_lease = on_lease;
  co.user = &st;
  co.ca_file = o->ca;
  co.insecure = o->insecure;
  co.on_event = on_event;
  co.connect_timeout_ms = o->connect_timeout_ms;
  co.setup_timeout_ms = o->connect_timeout_ms;
  if (o->debug) co.on_frame = on_frame;

  char err[300];
  int rc = rs_client_start(&st.client, &loop, &co, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "rsocket: %s\n", err);
    if (composite) free(st.metadata);
    uv_loop_close(&loop);
    return EXIT_USAGE;
  }
  uv_timer_init(&loop, &st.timeout);
  st.timeout.data = &st;
  if (o->timeout_ms) uv_timer_start(&st.timeout, on_timeout, o->timeout_ms, 0);
  if (o->model == MODEL_CHANNEL && !o->data.set && open_stdin(&st) != 0) {
    fprintf(stderr, "rsocket: cannot read stdin\n");
    rs_client_close(st.client, false);
  }
  /* Requests can be queued before the transport is up: SETUP goes first. */
  start_request(&st);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  if (composite) free(st.metadata);
  while (st.qhead < st.qtail) free(st.queue[st.qhead++]);
  free(st.queue);
  free(st.queue_len);
  free(st.linebuf);
  return st.exit_code;
}
