/*
 * The protocol engine's connection: life cycle, input dispatch, connection-level frames (SETUP,
 * ERROR on stream 0, METADATA_PUSH, EXT), close and drain, timers, and delivery of deferred events.
 * The interaction models live in stream.c; see conn_internal.h for the map of files.
 */
#include <stdlib.h>
#include <string.h>

#include "core/conn_internal.h"

/* ------------------------------------------------------------------------------------------ */
/* Settings                                                                                    */

static const char default_mime[] = "application/octet-stream";

void rs_conn_settings_default(rs_conn_settings *s, rs_conn_role role) {
  if (!s) return;
  memset(s, 0, sizeof(*s));
  s->struct_size = sizeof(*s);
  s->role = role;
  s->framing = RS_FRAMING_LENGTH_PREFIXED;
  s->keepalive_interval_ms = 20000;
  s->max_lifetime_ms = 90000;
  s->metadata_mime = rs_bytes_str(default_mime);
  s->data_mime = rs_bytes_str(default_mime);
  s->resume_buffer_size = 1u << 20;
  s->resume_session_timeout_ms = 120000;
  s->setup_timeout_ms = 10000;
  s->mtu = 0;
  s->max_frame_size = RS_FRAME_MAX_SIZE;
  s->max_reassembly_size = 16u << 20;
  s->max_reassembly_total = 64u << 20;
  s->max_streams = 65536;
  s->max_queued_control = 1024;
  s->max_queued_control_bytes = 4u << 20;
  s->output_block_size = 64u << 10;
  s->output_high_watermark = 1u << 20;
}

static bool bytes_ok(rs_bytes b) {
  return b.ptr || b.len == 0;
}

static int validate_settings(const rs_conn_settings *s) {
  if (s->role != RS_CONN_CLIENT && s->role != RS_CONN_SERVER) return RS_ERR_INVALID_ARGUMENT;
  if (s->framing != RS_FRAMING_LENGTH_PREFIXED && s->framing != RS_FRAMING_MESSAGE) {
    return RS_ERR_INVALID_ARGUMENT;
  }
  if (s->keepalive_interval_ms == 0 || s->keepalive_interval_ms > RS_STREAM_ID_MAX) {
    return RS_ERR_INVALID_ARGUMENT;
  }
  if (s->max_lifetime_ms == 0 || s->max_lifetime_ms > RS_STREAM_ID_MAX) {
    return RS_ERR_INVALID_ARGUMENT;
  }
  if (!bytes_ok(s->metadata_mime) || s->metadata_mime.len > 255) return RS_ERR_INVALID_ARGUMENT;
  if (!bytes_ok(s->data_mime) || s->data_mime.len > 255) return RS_ERR_INVALID_ARGUMENT;
  if (!bytes_ok(s->setup_payload.data) || !bytes_ok(s->setup_payload.metadata)) {
    return RS_ERR_INVALID_ARGUMENT;
  }
  if (s->mtu != 0 && (s->mtu < RS_CONN_MIN_MTU || s->mtu > RS_FRAME_MAX_SIZE + 3)) {
    return RS_ERR_INVALID_ARGUMENT;
  }
  if (s->max_frame_size < RS_FRAME_HEADER_SIZE || s->max_frame_size > RS_FRAME_MAX_SIZE) {
    return RS_ERR_INVALID_ARGUMENT;
  }
  /* Below the 2^30 ids of one parity, so a free id always exists. */
  if (s->max_streams == 0 || s->max_streams > (1u << 29)) return RS_ERR_INVALID_ARGUMENT;
  if (s->max_queued_control == 0) return RS_ERR_INVALID_ARGUMENT;
  if (s->resume) {
    if (s->role == RS_CONN_CLIENT &&
        (s->resume_token.len == 0 || s->resume_token.len > 65535 || !bytes_ok(s->resume_token))) {
      return RS_ERR_INVALID_ARGUMENT;
    }
    if (s->role == RS_CONN_SERVER && !s->resume_store) return RS_ERR_INVALID_ARGUMENT;
    if (s->resume_session_timeout_ms == 0) return RS_ERR_INVALID_ARGUMENT;
  }
  return 0;
}

/* Copies the settings' byte strings into one allocation so the caller's can go away. */
static int own_settings(rs_conn *c) {
  rs_conn_settings *s = &c->s;
  rs_bytes *fields[] = {&s->metadata_mime, &s->data_mime, &s->setup_payload.metadata,
                        &s->setup_payload.data, &s->resume_token};
  size_t total = 0;
  for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) total += fields[i]->len;
  if (total == 0) {
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) fields[i]->ptr = NULL;
    return 0;
  }
  c->owned = c->mem.malloc(total, c->mem.user);
  if (!c->owned) return RS_ERR_NOMEM;
  uint8_t *p = c->owned;
  for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
    if (fields[i]->len) memcpy(p, fields[i]->ptr, fields[i]->len);
    fields[i]->ptr = fields[i]->len ? p : NULL;
    p += fields[i]->len;
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Output primitives                                                                           */

int rs__fatal(rs_conn *c, int err) {
  if (!c->fatal) {
    c->fatal = err;
    static const char msg[] = "out of memory";
    rs__close(c, err, 0, (const uint8_t *)msg, sizeof(msg) - 1, false, false);
  }
  return c->fatal;
}

static bool gated(const rs_conn *c) {
  return c->state == RS_CONN_STATE_DISCONNECTED || c->state == RS_CONN_STATE_RESUMING ||
         c->state == RS_CONN_STATE_HANDED_OFF;
}

int rs__send_raw(rs_conn *c, const uint8_t *frame, size_t len) {
  bool was_empty = c->out.pending == 0;
  uint8_t *p = rs__outq_reserve(&c->out, len);
  if (!p) return rs__fatal(c, RS_ERR_NOMEM);
  memcpy(p, frame, len);
  if (was_empty) rs__wake(c);
  return 0;
}

int rs__send_direct(rs_conn *c, const rs_frame *f) {
  if (c->fatal) return c->fatal;
  rs_ssize n = rs_frame_encoded_size(f);
  if (n < 0) return (int)n;
  bool was_empty = c->out.pending == 0;
  uint8_t *p = rs__outq_reserve(&c->out, (size_t)n);
  if (!p) return rs__fatal(c, RS_ERR_NOMEM);
  if (rs_frame_encode(f, p, (size_t)n) != n) return rs__fatal(c, RS_ERR_INTERNAL);
  if (was_empty) rs__wake(c);
  return 0;
}

int rs__send_frame(rs_conn *c, const rs_frame *f) {
  if (c->fatal) return c->fatal;
  rs_ssize n = rs_frame_encoded_size(f);
  if (n < 0) return (int)n;
  if ((size_t)n > RS_FRAME_MAX_SIZE) return RS_ERR_FRAME_TOO_LARGE;
  bool resumable = c->resume_on && rs_frame_type_is_resumable(f->type);
  if (gated(c)) {
    /* No transport (or not yet resumed): only what resumption will retransmit matters. */
    if (!resumable) return 0;
    uint8_t *tmp = c->mem.malloc((size_t)n, c->mem.user);
    if (!tmp) return rs__fatal(c, RS_ERR_NOMEM);
    rs_ssize w = rs_frame_encode(f, tmp, (size_t)n);
    int rc = w == n ? rs__retain_frame(c, tmp, (size_t)n) : RS_ERR_INTERNAL;
    c->mem.free(tmp, c->mem.user);
    if (rc == RS_ERR_INTERNAL) return rs__fatal(c, rc);
    return rc;
  }
  bool was_empty = c->out.pending == 0;
  uint8_t *p = rs__outq_reserve(&c->out, (size_t)n);
  if (!p) return rs__fatal(c, RS_ERR_NOMEM);
  rs_ssize w = rs_frame_encode(f, p, (size_t)n);
  if (w != n) {
    /* rs_frame_encoded_size accepted it, so this cannot happen; the queue now holds garbage. */
    return rs__fatal(c, RS_ERR_INTERNAL);
  }
  if (was_empty) rs__wake(c);
  if (resumable) return rs__retain_frame(c, p, (size_t)n);
  return 0;
}

int rs__send_control(rs_conn *c, const rs_frame *f) {
  rs_ssize size = rs_frame_encoded_size(f);
  if (rs__outq_control_full(&c->out, size > 0 ? (size_t)size : 0)) {
    rs__conn_error(c, RS_ERR_FLOODED, RS_ERROR_CONNECTION_ERROR,
                   "too many control frames or bytes queued in reply (peer not reading)");
    return RS_ERR_FLOODED;
  }
  uint64_t before = c->out.total_in;
  int rc = rs__send_frame(c, f);
  if (rc == 0 && c->out.total_in != before &&
      rs__outq_mark_control(&c->out, (size_t)(c->out.total_in - before)) != 0)
    return rs__fatal(c, RS_ERR_NOMEM);
  return rc;
}

int rs__send_error(rs_conn *c, uint32_t stream_id, uint32_t code, const char *msg, bool reactive) {
  rs_frame f;
  rs_frame_init(&f, RS_FRAME_ERROR, stream_id);
  f.u.error.code = code;
  f.data = rs_bytes_str(msg);
  return reactive ? rs__send_control(c, &f) : rs__send_frame(c, &f);
}

/* ------------------------------------------------------------------------------------------ */
/* Events and close                                                                            */

bool rs__can_callback(const rs_conn *c) {
  return c->in_dispatch && c->in_callback == 0;
}

void rs__stream_end(rs_conn *c, rs_stream *s) {
  rs__ready_remove(c, s);
  s->flags |= RS_ST_ENDED;
  rs__smap_remove(&c->streams, s->id);
  rs__reasm_free(&c->mem, s->reasm);
  s->reasm = NULL;
  if (!(s->flags & RS_ST_APP)) {
    rs__stream_release(&c->streams, s);
  } else {
    s->next = NULL;
    if (c->closed_tail) {
      c->closed_tail->next = s;
    } else {
      c->closed_head = s;
    }
    c->closed_tail = s;
    rs__wake(c); /* on_stream_closed is owed: the deadline is now */
  }
  if (c->state == RS_CONN_STATE_DRAINING) rs__check_drained(c);
}

void rs__deliver_events(rs_conn *c) {
  if (!rs__can_callback(c)) return;
  for (;;) {
    rs_stream *s = c->closed_head;
    if (s) {
      c->closed_head = s->next;
      if (!c->closed_head) c->closed_tail = NULL;
      if (c->cb.on_stream_closed) {
        c->in_callback++;
        c->cb.on_stream_closed(c, s->id, s->user, c->user);
        c->in_callback--;
      }
      rs__stream_release(&c->streams, s);
      continue;
    }
    if (c->close_pending) {
      c->close_pending = false;
      rs_stream_error e = {c->close_info.err == RS_ERR_NOMEM ? RS_ERR_NOMEM : RS_ERR_CLOSED,
                           c->close_info.code, c->close_info.message, c->close_info.remote};
      rs__streams_teardown(c, &e);
      c->close_done = true;
      if (c->cb.on_close) {
        c->in_callback++;
        c->cb.on_close(c, &c->close_info, c->user);
        c->in_callback--;
      }
      continue;
    }
    break;
  }
}

/* Keeps up to RS_CLOSE_MSG_MAX bytes of a close message in a buffer allocated on first use (a
 * connection that never closes holds none). Returns the length kept, or -1 when the buffer
 * cannot be allocated. */
static rs_ssize keep_close_msg(rs_conn *c, const uint8_t *msg, size_t len) {
  if (len > RS_CLOSE_MSG_MAX) len = RS_CLOSE_MSG_MAX;
  if (len == 0) return 0;
  if (!c->close_msg && !(c->close_msg = c->mem.malloc(RS_CLOSE_MSG_MAX, c->mem.user))) return -1;
  if (msg != c->close_msg) memmove(c->close_msg, msg, len);
  return (rs_ssize)len;
}

void rs__close(rs_conn *c, int err, uint32_t code, const uint8_t *msg, size_t msg_len, bool remote,
               bool send) {
  if (c->state == RS_CONN_STATE_CLOSED) return;
  if (send && code && !c->fatal) {
    rs_frame f;
    rs_frame_init(&f, RS_FRAME_ERROR, 0);
    f.u.error.code = code;
    f.data.ptr = msg;
    f.data.len = msg_len;
    rs__send_frame(c, &f);
  }
  rs__store_unregister(c);
  c->state = RS_CONN_STATE_CLOSED;
  rs_ssize kept = keep_close_msg(c, msg, msg_len);
  if (kept < 0) err = RS_ERR_NOMEM; /* closing anyway; the message is lost */
  msg_len = kept > 0 ? (size_t)kept : 0;
  c->close_info.err = err;
  c->close_info.code = code;
  c->close_info.message.ptr = msg_len ? c->close_msg : (const uint8_t *)"";
  c->close_info.message.len = msg_len;
  c->close_info.remote = remote;
  c->close_pending = true;
  rs__wake(c); /* on_close is owed: the deadline is now */
}

void rs__conn_error(rs_conn *c, int err, uint32_t code, const char *msg) {
  size_t len = strlen(msg);
  rs__close(c, err, code, (const uint8_t *)msg, len, false, true);
}

void rs__check_drained(rs_conn *c) {
  if (c->state != RS_CONN_STATE_DRAINING || c->streams.count != 0) return;
  rs__close(c, RS_ERR_CLOSED, RS_ERROR_CONNECTION_CLOSE, c->close_msg, c->drain_len,
            c->close_info.remote, false);
}

/* ------------------------------------------------------------------------------------------ */
/* Life cycle                                                                                  */

static int send_setup(rs_conn *c) {
  rs_frame f;
  rs_frame_init(&f, RS_FRAME_SETUP, 0);
  f.u.setup.keepalive_ms = c->s.keepalive_interval_ms;
  f.u.setup.max_lifetime_ms = c->s.max_lifetime_ms;
  f.u.setup.metadata_mime = c->s.metadata_mime;
  f.u.setup.data_mime = c->s.data_mime;
  if (c->s.lease) f.flags |= RS_FLAG_LEASE;
  if (c->s.resume) {
    f.flags |= RS_FLAG_RESUME;
    f.u.setup.resume_token = c->s.resume_token;
  }
  f.has_metadata = c->s.setup_payload.has_metadata;
  f.metadata = c->s.setup_payload.metadata;
  f.data = c->s.setup_payload.data;
  int rc = rs__send_frame(c, &f);
  if (rc == RS_ERR_FRAME_TOO_LARGE || rc == RS_ERR_INVALID_ARGUMENT) return RS_ERR_INVALID_ARGUMENT;
  return rc;
}

int rs_conn_new(rs_conn **out, const rs_conn_settings *settings, const rs_conn_callbacks *callbacks,
                void *user, const rs_mem *mem, uint64_t now_ms) {
  if (!out) return RS_ERR_INVALID_ARGUMENT;
  *out = NULL;
  if (!mem) mem = rs_mem_default();
  rs_conn_settings s;
  rs_conn_settings_default(&s, settings ? settings->role : RS_CONN_CLIENT);
  if (settings) {
    if (settings->struct_size < offsetof(rs_conn_settings, framing) + sizeof(settings->framing)) {
      return RS_ERR_INVALID_ARGUMENT;
    }
    size_t n = settings->struct_size < sizeof(s) ? settings->struct_size : sizeof(s);
    memcpy(&s, settings, n);
    s.struct_size = sizeof(s);
  }
  int rc = validate_settings(&s);
  if (rc) return rc;

  rs_conn *c = mem->calloc(1, sizeof(*c), mem->user);
  if (!c) return RS_ERR_NOMEM;
  c->mem = *mem;
  c->s = s;
  if (callbacks && callbacks->struct_size < sizeof(size_t) + sizeof(void *)) {
    mem->free(c, mem->user);
    return RS_ERR_INVALID_ARGUMENT; /* struct_size not set */
  }
  if (callbacks) {
    size_t n = callbacks->struct_size < sizeof(c->cb) ? callbacks->struct_size : sizeof(c->cb);
    memcpy(&c->cb, callbacks, n);
  }
  c->user = user;
  c->now = now_ms;
  c->last_rx = now_ms;
  c->next_keepalive = RS_NO_DEADLINE;
  c->setup_deadline = RS_NO_DEADLINE;
  c->session_deadline = RS_NO_DEADLINE;
  c->retain.limit = s.resume_buffer_size;
  rs__smap_init(&c->streams, &c->mem, 4096);
  rs_frame_reader_init(&c->reader, &c->mem, s.max_frame_size);
  rc = rs__outq_init(&c->out, &c->mem, s.framing == RS_FRAMING_MESSAGE, s.output_block_size,
                     s.max_queued_control, s.max_queued_control_bytes);
  if (rc == 0) rc = own_settings(c);
  if (rc) {
    rs_conn_free(c);
    return rc;
  }
  if (s.role == RS_CONN_CLIENT) {
    c->next_stream_id = 1;
    c->keepalive_ms = s.keepalive_interval_ms;
    c->lifetime_ms = s.max_lifetime_ms;
    c->lease_on = s.lease;
    c->resume_on = s.resume;
    c->state = RS_CONN_STATE_ESTABLISHED;
    rc = send_setup(c);
    if (rc) {
      rs_conn_free(c);
      return rc;
    }
    c->setup_end = c->out.total_in;
    rs__keepalive_start(c);
  } else {
    c->next_stream_id = 2;
    c->state = RS_CONN_STATE_SETUP;
    c->setup_deadline = s.setup_timeout_ms ? now_ms + s.setup_timeout_ms : RS_NO_DEADLINE;
  }
  c->wake_ready = true;
  *out = c;
  return 0;
}

void rs_conn_free(rs_conn *c) {
  if (!c) return;
  rs__store_unregister(c);
  while (c->closed_head) {
    rs_stream *s = c->closed_head;
    c->closed_head = s->next;
    rs__reasm_free(&c->mem, s->reasm);
    c->mem.free(s, c->mem.user);
  }
  rs__smap_free(&c->streams);
  rs_frame_reader_free(&c->reader);
  rs__outq_free(&c->out);
  rs__retain_free(c);
  c->mem.free(c->reject_msg, c->mem.user);
  c->mem.free(c->close_msg, c->mem.user);
  c->mem.free(c->token, c->mem.user);
  c->mem.free(c->owned, c->mem.user);
  c->mem.free(c->setup_mime, c->mem.user);
  c->mem.free(c, c->mem.user);
}

void *rs_conn_user(const rs_conn *c) {
  return c ? c->user : NULL;
}

const rs_conn_settings *rs_conn_get_settings(const rs_conn *c) {
  return c ? &c->s : NULL;
}

rs_conn_role rs_conn_get_role(const rs_conn *c) {
  return c ? c->s.role : RS_CONN_CLIENT;
}

rs_conn_state rs_conn_get_state(const rs_conn *c) {
  return c ? c->state : RS_CONN_STATE_CLOSED;
}

/* ------------------------------------------------------------------------------------------ */
/* SETUP (server)                                                                              */

static void reject_setup(rs_conn *c, uint32_t code, const char *msg) {
  rs__close(c, RS_ERR_REJECTED, code, (const uint8_t *)msg, strlen(msg), false, true);
}

/* The client's MIME types become the settings in force (a router reads the metadata type to find
 * routes). One allocation for both; the server's own values pointed into `owned`. */
static int keep_setup_mime(rs_conn *c, const rs_frame *f) {
  rs_bytes md = f->u.setup.metadata_mime, data = f->u.setup.data_mime;
  uint8_t *p = NULL;
  if (md.len + data.len) {
    p = c->mem.malloc(md.len + data.len, c->mem.user);
    if (!p) return RS_ERR_NOMEM;
    if (md.len) memcpy(p, md.ptr, md.len);
    if (data.len) memcpy(p + md.len, data.ptr, data.len);
  }
  c->mem.free(c->setup_mime, c->mem.user);
  c->setup_mime = p;
  c->s.metadata_mime = (rs_bytes){md.len ? p : NULL, md.len};
  c->s.data_mime = (rs_bytes){data.len ? p + md.len : NULL, data.len};
  return 0;
}

static void on_setup_frame(rs_conn *c, const rs_frame *f) {
  if (f->u.setup.major != RS_VERSION_MAJOR) {
    reject_setup(c, RS_ERROR_UNSUPPORTED_SETUP, "unsupported protocol version");
    return;
  }
  if (f->u.setup.keepalive_ms == 0 || f->u.setup.max_lifetime_ms == 0 ||
      f->u.setup.keepalive_ms > RS_STREAM_ID_MAX || f->u.setup.max_lifetime_ms > RS_STREAM_ID_MAX) {
    reject_setup(c, RS_ERROR_INVALID_SETUP, "keepalive interval and lifetime must be > 0");
    return;
  }
  bool lease = (f->flags & RS_FLAG_LEASE) != 0;
  bool resume = (f->flags & RS_FLAG_RESUME) != 0;
  if (lease && !c->s.lease) {
    reject_setup(c, RS_ERROR_UNSUPPORTED_SETUP, "lease is not supported");
    return;
  }
  if (resume && !c->s.resume) {
    /* The spec's answer (rsocket-java sends UNSUPPORTED_SETUP; clients accept either). */
    reject_setup(c, RS_ERROR_REJECTED_SETUP, "resumption is not supported");
    return;
  }
  if (resume) {
    if (f->u.setup.resume_token.len == 0) {
      reject_setup(c, RS_ERROR_INVALID_SETUP, "empty resume token");
      return;
    }
    int rc = rs__store_register(c, f->u.setup.resume_token);
    if (rc == RS_ERR_REJECTED) {
      reject_setup(c, RS_ERROR_REJECTED_SETUP, "resume token already in use");
      return;
    }
    if (rc) {
      rs__fatal(c, rc);
      return;
    }
  }
  if (keep_setup_mime(c, f) != 0) {
    rs__fatal(c, RS_ERR_NOMEM);
    return;
  }
  c->keepalive_ms = f->u.setup.keepalive_ms;
  c->lifetime_ms = f->u.setup.max_lifetime_ms;
  c->lease_on = lease;
  c->resume_on = resume;
  c->state = RS_CONN_STATE_ESTABLISHED;
  c->setup_deadline = RS_NO_DEADLINE;
  rs__keepalive_start(c);

  int accept = 0;
  if (c->cb.on_setup) {
    rs_setup_info info;
    memset(&info, 0, sizeof(info));
    info.major = f->u.setup.major;
    info.minor = f->u.setup.minor;
    info.keepalive_interval_ms = f->u.setup.keepalive_ms;
    info.max_lifetime_ms = f->u.setup.max_lifetime_ms;
    info.metadata_mime = f->u.setup.metadata_mime;
    info.data_mime = f->u.setup.data_mime;
    info.lease = lease;
    info.resume = resume;
    if (resume) info.resume_token = f->u.setup.resume_token;
    info.payload.has_metadata = f->has_metadata;
    info.payload.metadata = f->metadata;
    info.payload.data = f->data;
    c->in_on_setup = true;
    c->in_callback++;
    accept = c->cb.on_setup(c, &info, c->user);
    c->in_callback--;
    c->in_on_setup = false;
  }
  if (c->fatal || c->state == RS_CONN_STATE_CLOSED) return;
  if (accept != 0) {
    static const char dflt[] = "setup rejected";
    const uint8_t *msg = c->reject_msg ? c->reject_msg : (const uint8_t *)dflt;
    size_t len = c->reject_msg ? c->reject_len : sizeof(dflt) - 1;
    rs__close(c, RS_ERR_REJECTED, RS_ERROR_REJECTED_SETUP, msg, len, false, true);
  }
}

int rs_conn_reject_setup(rs_conn *c, rs_bytes message) {
  if (!c || !bytes_ok(message)) return RS_ERR_INVALID_ARGUMENT;
  if (!c->in_on_setup) return RS_ERR_INVALID_STATE;
  c->mem.free(c->reject_msg, c->mem.user);
  c->reject_msg = NULL;
  c->reject_len = 0;
  if (message.len) {
    c->reject_msg = c->mem.malloc(message.len, c->mem.user);
    if (!c->reject_msg) return rs__fatal(c, RS_ERR_NOMEM);
    memcpy(c->reject_msg, message.ptr, message.len);
    c->reject_len = message.len;
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Input dispatch                                                                              */

static bool is_setup_code(uint32_t code) {
  return code == RS_ERROR_INVALID_SETUP || code == RS_ERROR_UNSUPPORTED_SETUP ||
         code == RS_ERROR_REJECTED_SETUP || code == RS_ERROR_REJECTED_RESUME;
}

static void on_connection_error_frame(rs_conn *c, const rs_frame *f) {
  uint32_t code = f->u.error.code;
  if (is_setup_code(code)) {
    /* Only meaningful to a client whose SETUP has not been shown accepted; the spec tells a
     * server to ignore them and a client to ignore them after establishment. */
    if (c->s.role == RS_CONN_CLIENT && !c->setup_confirmed && code != RS_ERROR_REJECTED_RESUME) {
      rs__close(c, RS_ERR_REJECTED, code, f->data.ptr, f->data.len, true, false);
    }
    return;
  }
  if (code == RS_ERROR_CONNECTION_CLOSE) {
    if (c->state == RS_CONN_STATE_ESTABLISHED) {
      c->state = RS_CONN_STATE_DRAINING;
      rs_ssize kept = keep_close_msg(c, f->data.ptr, f->data.len);
      if (kept < 0) {
        rs__fatal(c, RS_ERR_NOMEM);
        return;
      }
      c->drain_len = (size_t)kept;
      c->close_info.remote = true;
      rs__check_drained(c);
    }
    return;
  }
  if (code == RS_ERROR_CONNECTION_ERROR) {
    rs__close(c, RS_ERR_CLOSED, code, f->data.ptr, f->data.len, true, false);
    return;
  }
  /* Stream-level or unknown codes on stream 0 (rsocket-java answers a second SETUP with
   * APPLICATION_ERROR on stream 0): they make no sense here, so they are ignored. */
}

static void on_metadata_push(rs_conn *c, const rs_frame *f) {
  if (c->cb.on_metadata_push) {
    c->in_callback++;
    c->cb.on_metadata_push(c, f->metadata, c->user);
    c->in_callback--;
  }
}

/* A frame the decoder refused. The spec's ignore rules come first, then the I flag. */
static void on_decode_error(rs_conn *c, int rc, const rs_frame *f, const rs_frame_error *fe) {
  uint8_t type = f->type;
  if (rc == RS_ERR_BAD_STREAM_ID) {
    /* PAYLOAD, CANCEL, ERROR, REQUEST_N on stream 0; METADATA_PUSH on a stream; SETUP or RESUME
     * (after setup) on a stream: all ignored by the spec's rules. */
    switch (type) {
    case RS_FRAME_PAYLOAD:
    case RS_FRAME_CANCEL:
    case RS_FRAME_ERROR:
    case RS_FRAME_REQUEST_N:
    case RS_FRAME_METADATA_PUSH:
    case RS_FRAME_SETUP:
    case RS_FRAME_RESUME:
    case RS_FRAME_RESUME_OK: return;
    default: break;
    }
  }
  if (f->flags & RS_FLAG_IGNORE) return;
  if (rc == RS_ERR_UNKNOWN_FRAME_TYPE) {
    rs__conn_error(c, RS_ERR_PROTOCOL, RS_ERROR_CONNECTION_ERROR, "unknown frame type");
    return;
  }
  if (type == RS_FRAME_SETUP || type == RS_FRAME_RESUME) return; /* ignored after setup */
  bool stream_frame =
      f->stream_id != 0 && (type == RS_FRAME_REQUEST_RESPONSE || type == RS_FRAME_REQUEST_FNF ||
                            type == RS_FRAME_REQUEST_STREAM || type == RS_FRAME_REQUEST_CHANNEL ||
                            type == RS_FRAME_REQUEST_N || type == RS_FRAME_PAYLOAD);
  if (stream_frame && fe->code == RS_ERROR_INVALID && rc != RS_ERR_BAD_LENGTH) {
    /* A malformed request or request(n) on a stream: a stream error, the connection survives. */
    rs_stream *s = rs__smap_get(&c->streams, f->stream_id);
    if (s) {
      rs__stream_fail(c, s, RS_ERR_PROTOCOL, RS_ERROR_INVALID,
                      fe->message ? fe->message : "invalid");
    } else if (type != RS_FRAME_REQUEST_N && type != RS_FRAME_PAYLOAD &&
               type != RS_FRAME_REQUEST_FNF) {
      rs__send_error(c, f->stream_id, RS_ERROR_INVALID, fe->message ? fe->message : "invalid",
                     true);
    }
    return;
  }
  rs__conn_error(c, RS_ERR_PROTOCOL, RS_ERROR_CONNECTION_ERROR,
                 fe->message ? fe->message : "malformed frame");
}

static void server_first_frame(rs_conn *c, int rc, const rs_frame *f, const rs_frame_error *fe) {
  if (rc < 0) {
    uint32_t code = rc == RS_ERR_BAD_VERSION ? RS_ERROR_UNSUPPORTED_SETUP : RS_ERROR_INVALID_SETUP;
    bool handshake = f->type == RS_FRAME_SETUP || f->type == RS_FRAME_RESUME;
    const char *msg =
        handshake && fe->message ? fe->message : "first frame must be SETUP or RESUME";
    rs__close(c, RS_ERR_PROTOCOL, code, (const uint8_t *)msg, strlen(msg), false, true);
    return;
  }
  if (f->type == RS_FRAME_SETUP) {
    on_setup_frame(c, f);
  } else if (f->type == RS_FRAME_RESUME) {
    rs__on_resume(c, f);
  } else {
    static const char msg[] = "first frame must be SETUP or RESUME";
    rs__close(c, RS_ERR_PROTOCOL, RS_ERROR_INVALID_SETUP, (const uint8_t *)msg, sizeof(msg) - 1,
              false, true);
  }
}

static void handle_frame(rs_conn *c, const uint8_t *buf, size_t len) {
  uint32_t sid;
  uint8_t type;
  uint16_t flags;
  if (len > c->s.max_frame_size) {
    rs__conn_error(c, RS_ERR_FRAME_TOO_LARGE, RS_ERROR_CONNECTION_ERROR, "frame too large");
    return;
  }
  if (rs_frame_decode_header(buf, len, &sid, &type, &flags) < 0) {
    rs__conn_error(c, RS_ERR_PROTOCOL,
                   c->state == RS_CONN_STATE_SETUP ? RS_ERROR_INVALID_SETUP
                                                   : RS_ERROR_CONNECTION_ERROR,
                   "frame shorter than its header");
    return;
  }
  c->last_rx = c->now;
  rs_frame f;
  rs_frame_error fe;
  memset(&fe, 0, sizeof(fe));
  int rc = rs_frame_decode(&f, buf, len, &fe);
  if (rc < 0) {
    /* The header fields are what the decoder could read; make sure they are the real ones. */
    f.stream_id = sid;
    f.type = type;
    f.flags = flags;
  }
  switch (c->state) {
  case RS_CONN_STATE_SETUP: server_first_frame(c, rc, &f, &fe); return;
  case RS_CONN_STATE_RESUMING:
    if (rc == 0 && type == RS_FRAME_RESUME_OK) {
      rs__on_resume_ok(c, &f);
    } else if (rc == 0 && type == RS_FRAME_ERROR && sid == 0) {
      static const char msg[] = "resumption rejected";
      bool rejected = f.u.error.code == RS_ERROR_REJECTED_RESUME;
      rs__close(c, rejected ? RS_ERR_REJECTED : RS_ERR_CLOSED, f.u.error.code,
                f.data.len ? f.data.ptr : (const uint8_t *)msg, f.data.len ? f.data.len : 0, true,
                false);
    } else if (!(rc == 0 && (type == RS_FRAME_KEEPALIVE || type == RS_FRAME_LEASE))) {
      rs__conn_error(c, RS_ERR_PROTOCOL, RS_ERROR_CONNECTION_ERROR,
                     "unexpected frame while resuming");
    }
    return;
  case RS_CONN_STATE_ESTABLISHED:
  case RS_CONN_STATE_DRAINING: break;
  default: return; /* closed, handed off, detached: ignore */
  }
  if (c->resume_on && rs_frame_type_is_resumable(type)) c->recv_pos += len;
  if (c->s.role == RS_CONN_CLIENT && !(rc == 0 && type == RS_FRAME_ERROR && sid == 0)) {
    c->setup_confirmed = true;
  }
  if (rc < 0) {
    on_decode_error(c, rc, &f, &fe);
    return;
  }
  switch (type) {
  case RS_FRAME_SETUP: return; /* a second SETUP (server) or any SETUP (client): ignored */
  case RS_FRAME_LEASE: rs__lease_on_frame(c, &f); return;
  case RS_FRAME_KEEPALIVE: rs__keepalive_on_frame(c, &f); return;
  case RS_FRAME_REQUEST_RESPONSE:
  case RS_FRAME_REQUEST_FNF:
  case RS_FRAME_REQUEST_STREAM:
  case RS_FRAME_REQUEST_CHANNEL: rs__on_request_frame(c, &f); return;
  case RS_FRAME_REQUEST_N:
  case RS_FRAME_CANCEL:
  case RS_FRAME_PAYLOAD: rs__on_stream_frame(c, &f); return;
  case RS_FRAME_ERROR:
    if (sid == 0) {
      on_connection_error_frame(c, &f);
    } else {
      rs__on_stream_frame(c, &f);
    }
    return;
  case RS_FRAME_METADATA_PUSH: on_metadata_push(c, &f); return;
  case RS_FRAME_RESUME:
    rs__conn_error(c, RS_ERR_PROTOCOL, RS_ERROR_CONNECTION_ERROR, "RESUME after setup");
    return;
  case RS_FRAME_RESUME_OK: return; /* makes no sense here: ignored */
  default:
    /* EXT (no extension is understood by the engine) or anything else the decoder let through. */
    if (!(flags & RS_FLAG_IGNORE)) {
      rs__conn_error(c, RS_ERR_PROTOCOL, RS_ERROR_CONNECTION_ERROR, "unsupported frame");
    }
    return;
  }
}

static int enter(rs_conn *c, uint64_t now) {
  if (c->in_callback || c->in_dispatch) return RS_ERR_INVALID_STATE;
  c->in_dispatch = true;
  if (now > c->now) c->now = now;
  return 0;
}

static void leave(rs_conn *c) {
  rs__deliver_events(c);
  c->in_dispatch = false;
}

rs_ssize rs_conn_recv(rs_conn *c, const uint8_t *buf, size_t len, uint64_t now_ms) {
  if (!c || (!buf && len)) return RS_ERR_INVALID_ARGUMENT;
  if (c->fatal) return c->fatal;
  if (c->s.framing != RS_FRAMING_LENGTH_PREFIXED) return RS_ERR_INVALID_STATE;
  if (c->state == RS_CONN_STATE_DISCONNECTED) return RS_ERR_INVALID_STATE;
  int rc = enter(c, now_ms);
  if (rc) return rc;
  size_t off = 0;
  while (off < len) {
    if (c->state == RS_CONN_STATE_CLOSED) {
      off = len;
      break;
    }
    if (c->state == RS_CONN_STATE_HANDED_OFF) break;
    rs_bytes fr = {NULL, 0};
    rs_ssize n = rs_frame_reader_next(&c->reader, buf + off, len - off, &fr);
    if (n < 0) {
      if (n == RS_ERR_NOMEM) {
        rs__fatal(c, RS_ERR_NOMEM);
      } else {
        uint32_t code =
            c->state == RS_CONN_STATE_SETUP ? RS_ERROR_INVALID_SETUP : RS_ERROR_CONNECTION_ERROR;
        rs__conn_error(c, n == RS_ERR_FRAME_TOO_LARGE ? RS_ERR_FRAME_TOO_LARGE : RS_ERR_PROTOCOL,
                       code, n == RS_ERR_FRAME_TOO_LARGE ? "frame too large" : "bad frame length");
      }
      off = len;
      break;
    }
    off += (size_t)n;
    if (fr.ptr) handle_frame(c, fr.ptr, fr.len);
    if (c->fatal) break;
    if (n == 0 && !fr.ptr) break;
  }
  leave(c);
  if (c->fatal) return c->fatal;
  return (rs_ssize)off;
}

int rs_conn_recv_frame(rs_conn *c, const uint8_t *frame, size_t len, uint64_t now_ms) {
  if (!c || (!frame && len)) return RS_ERR_INVALID_ARGUMENT;
  if (c->fatal) return c->fatal;
  if (c->s.framing != RS_FRAMING_MESSAGE) return RS_ERR_INVALID_STATE;
  if (c->state == RS_CONN_STATE_DISCONNECTED) return RS_ERR_INVALID_STATE;
  int rc = enter(c, now_ms);
  if (rc) return rc;
  if (c->state != RS_CONN_STATE_CLOSED && c->state != RS_CONN_STATE_HANDED_OFF) {
    handle_frame(c, frame, len);
  }
  leave(c);
  return c->fatal;
}

/* ------------------------------------------------------------------------------------------ */
/* Output and time                                                                             */

int rs_conn_pending_output(rs_conn *c, rs_iov *iov, int max_iov) {
  if (!c || !iov || max_iov <= 0) return 0;
  return rs__outq_iov(&c->out, iov, max_iov);
}

size_t rs_conn_pending_bytes(const rs_conn *c) {
  return c ? c->out.pending : 0;
}

int rs_conn_consumed(rs_conn *c, size_t n) {
  if (!c) return RS_ERR_INVALID_ARGUMENT;
  return rs__outq_consume(&c->out, n);
}

bool rs_conn_want_close(const rs_conn *c) {
  if (!c) return true;
  return (c->state == RS_CONN_STATE_CLOSED || c->state == RS_CONN_STATE_HANDED_OFF) &&
         c->out.pending == 0;
}

uint64_t rs_conn_next_deadline(const rs_conn *c) {
  if (!c) return RS_NO_DEADLINE;
  if (c->closed_head || c->close_pending) return c->now;
  switch (c->state) {
  case RS_CONN_STATE_SETUP: return c->setup_deadline;
  case RS_CONN_STATE_DISCONNECTED: return c->session_deadline;
  case RS_CONN_STATE_ESTABLISHED:
  case RS_CONN_STATE_DRAINING:
  case RS_CONN_STATE_RESUMING: return rs__keepalive_deadline(c);
  default: return RS_NO_DEADLINE;
  }
}

int rs_conn_handle_expiry(rs_conn *c, uint64_t now_ms) {
  if (!c) return RS_ERR_INVALID_ARGUMENT;
  int rc = enter(c, now_ms);
  if (rc) return rc;
  if (!c->fatal) {
    switch (c->state) {
    case RS_CONN_STATE_SETUP:
      if (c->now >= c->setup_deadline) {
        static const char msg[] = "no SETUP received in time";
        rs__close(c, RS_ERR_TIMEOUT, 0, (const uint8_t *)msg, sizeof(msg) - 1, false, false);
      }
      break;
    case RS_CONN_STATE_DISCONNECTED:
      if (c->now >= c->session_deadline) {
        static const char msg[] = "resume session timed out";
        rs__close(c, RS_ERR_TIMEOUT, 0, (const uint8_t *)msg, sizeof(msg) - 1, false, false);
      }
      break;
    case RS_CONN_STATE_ESTABLISHED:
    case RS_CONN_STATE_DRAINING:
    case RS_CONN_STATE_RESUMING: rs__keepalive_expiry(c); break;
    default: break;
    }
  }
  leave(c);
  return c->fatal;
}

/* ------------------------------------------------------------------------------------------ */
/* Connection control                                                                          */

int rs_conn_metadata_push(rs_conn *c, rs_bytes metadata) {
  if (!c || !bytes_ok(metadata)) return RS_ERR_INVALID_ARGUMENT;
  if (c->fatal) return c->fatal;
  if (c->state == RS_CONN_STATE_CLOSED || c->state == RS_CONN_STATE_HANDED_OFF ||
      c->state == RS_CONN_STATE_DRAINING) {
    return RS_ERR_CLOSED;
  }
  if (c->state != RS_CONN_STATE_ESTABLISHED) return RS_ERR_INVALID_STATE;
  size_t size = RS_FRAME_HEADER_SIZE + metadata.len;
  if (size > RS_FRAME_MAX_SIZE || (c->s.mtu && size + RS_FRAME_LENGTH_SIZE > c->s.mtu)) {
    return RS_ERR_FRAME_TOO_LARGE;
  }
  rs_frame f;
  rs_frame_init(&f, RS_FRAME_METADATA_PUSH, 0);
  f.has_metadata = true;
  f.metadata = metadata;
  return rs__send_frame(c, &f);
}

int rs_conn_set_input_paused(rs_conn *c, bool paused, uint64_t now_ms) {
  if (!c) return RS_ERR_INVALID_ARGUMENT;
  if (now_ms > c->now) c->now = now_ms;
  rs__keepalive_input_paused(c, paused);
  return 0;
}

int rs_conn_send_keepalive(rs_conn *c, rs_bytes data) {
  if (!c || !bytes_ok(data)) return RS_ERR_INVALID_ARGUMENT;
  if (c->fatal) return c->fatal;
  if (c->state == RS_CONN_STATE_CLOSED || c->state == RS_CONN_STATE_HANDED_OFF) {
    return RS_ERR_CLOSED;
  }
  if (c->state != RS_CONN_STATE_ESTABLISHED && c->state != RS_CONN_STATE_DRAINING) {
    return RS_ERR_INVALID_STATE;
  }
  if (data.len > RS_FRAME_MAX_SIZE - 14) return RS_ERR_INVALID_ARGUMENT;
  rs_frame f;
  rs_frame_init(&f, RS_FRAME_KEEPALIVE, 0);
  f.flags = RS_FLAG_RESPOND;
  f.u.keepalive.last_received_position = c->resume_on ? c->recv_pos : 0;
  f.data = data;
  return rs__send_frame(c, &f);
}

int rs_conn_close(rs_conn *c, rs_bytes message) {
  if (!c || !bytes_ok(message)) return RS_ERR_INVALID_ARGUMENT;
  if (c->fatal) return c->fatal;
  if (c->state == RS_CONN_STATE_CLOSED || c->state == RS_CONN_STATE_DRAINING ||
      c->state == RS_CONN_STATE_HANDED_OFF) {
    return RS_ERR_CLOSED;
  }
  if (c->state != RS_CONN_STATE_ESTABLISHED) {
    /* Nothing to drain over (no transport or no session yet): close now. */
    rs__close(c, RS_ERR_CLOSED, RS_ERROR_CONNECTION_CLOSE, message.ptr, message.len, false,
              c->state != RS_CONN_STATE_DISCONNECTED);
    return c->fatal;
  }
  rs_frame f;
  rs_frame_init(&f, RS_FRAME_ERROR, 0);
  f.u.error.code = RS_ERROR_CONNECTION_CLOSE;
  f.data = message;
  int rc = rs__send_frame(c, &f);
  if (rc) return rc;
  c->state = RS_CONN_STATE_DRAINING;
  rs_ssize kept = keep_close_msg(c, message.ptr, message.len);
  if (kept < 0) return rs__fatal(c, RS_ERR_NOMEM);
  c->drain_len = (size_t)kept;
  c->close_info.remote = false;
  rs__check_drained(c);
  return 0;
}

int rs_conn_abort(rs_conn *c, rs_bytes message) {
  if (!c || !bytes_ok(message)) return RS_ERR_INVALID_ARGUMENT;
  if (c->fatal) return c->fatal;
  if (c->state == RS_CONN_STATE_CLOSED) return RS_ERR_CLOSED;
  rs__close(c, RS_ERR_CLOSED, RS_ERROR_CONNECTION_ERROR, message.ptr, message.len, false,
            !gated(c));
  return c->fatal;
}
