/*
 * rsocket-c: the RSocket protocol engine (one connection, client or server role).
 *
 * The engine performs no I/O. Bytes received from the transport go in with rs_conn_recv() (byte
 * streams such as TCP or TLS, where every frame carries a 3-byte length prefix) or
 * rs_conn_recv_frame() (message transports such as WebSocket, one frame per message). Bytes to send
 * come out of rs_conn_pending_output() as iovecs, which the transport writes (one writev for many
 * frames) and then acknowledges with rs_conn_consumed(). Time is an argument: every call that may
 * act on timers takes `now_ms` (milliseconds of any monotonic clock, the same clock for the life
 * of the connection), rs_conn_next_deadline() tells when to call rs_conn_handle_expiry() next.
 *
 * Callbacks (rs_conn_callbacks) report what the peer did. They are only ever called from inside
 * rs_conn_recv(), rs_conn_recv_frame() and rs_conn_handle_expiry(), never from the functions that
 * queue output (so a request call never calls back re-entrantly), and never re-entered: while one
 * runs, rs_conn_recv* and rs_conn_handle_expiry fail with RS_ERR_INVALID_STATE. Everything else
 * may be called from inside a callback; such calls only queue output. rs_conn_free() must not be
 * called from inside a callback.
 *
 * Streams are named by their 31-bit stream id. Every stream the application knows about (one it
 * created with a request call, or one offered to it through on_request) ends with exactly one
 * on_stream_closed() callback, however it ended, which is where a per-stream user pointer is
 * released. Fire-and-forget requests create no stream.
 *
 * Payload bytes passed to the engine are copied into its output buffer before the call returns;
 * the caller keeps ownership of them. Payload views passed to callbacks point into the receive
 * buffer (or a reassembly buffer) and are valid only during the callback.
 *
 * All memory comes from the rs_mem given to rs_conn_new(). An allocation failure is fatal
 * (RS_ERR_NOMEM): the connection closes (on_close reports it) and only rs_conn_free() remains
 * legal. The engine is not thread-safe; use a connection from one thread at a time.
 */
#ifndef RSOCKET_CONN_H
#define RSOCKET_CONN_H

#include "rsocket/common.h"
#include "rsocket/frame.h"
#include "rsocket/payload.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_conn rs_conn;

/* A session store for resumption on the server side (see "Resumption" below). */
typedef struct rs_resume_store rs_resume_store;

typedef enum rs_conn_role {
  RS_CONN_CLIENT = 0, /* opened the transport: sends SETUP (or RESUME), odd stream ids */
  RS_CONN_SERVER = 1, /* accepted the transport: waits for SETUP or RESUME, even stream ids */
} rs_conn_role;

typedef enum rs_conn_framing {
  /* Byte stream (TCP, TLS, Unix sockets): every frame is preceded by its 24-bit length. Input
   * goes through rs_conn_recv(); output iovecs cover many frames each. */
  RS_FRAMING_LENGTH_PREFIXED = 0,
  /* Message transport (WebSocket binary messages): one frame per message, no prefix. Input goes
   * through rs_conn_recv_frame(); each output iovec is exactly one frame, with
   * RS_CONN_MESSAGE_HEADROOM writable bytes right before it for a transport header. */
  RS_FRAMING_MESSAGE = 1,
} rs_conn_framing;

/*
 * In message framing, the RS_CONN_MESSAGE_HEADROOM bytes before each output iovec's base belong to
 * the transport, which may write its own header there (a WebSocket header is at most 14 bytes) and
 * send header and frame as one contiguous buffer, without copying the frame.
 */
#define RS_CONN_MESSAGE_HEADROOM 16u

/* The smallest accepted MTU (fragment size including the 3-byte prefix and the header). */
#define RS_CONN_MIN_MTU 64u

/* Marks a credit as unbounded (a cumulative request(n) of 2^31-1 or more). */
#define RS_CREDIT_UNBOUNDED UINT64_MAX

typedef enum rs_conn_state {
  RS_CONN_STATE_SETUP = 0,    /* server: waiting for SETUP or RESUME */
  RS_CONN_STATE_RESUMING,     /* client: RESUME sent, waiting for RESUME_OK */
  RS_CONN_STATE_ESTABLISHED,  /* requests flow (a client is established as soon as it sent SETUP) */
  RS_CONN_STATE_DRAINING,     /* CONNECTION_CLOSE sent or received: open streams finish, no new */
  RS_CONN_STATE_DISCONNECTED, /* transport detached, session kept for resumption */
  RS_CONN_STATE_HANDED_OFF,   /* server: the RESUME received here resumed another connection */
  RS_CONN_STATE_CLOSED,       /* finished; flush the output, then close the transport */
} rs_conn_state;

/*
 * Connection settings. Fill with rs_conn_settings_default(), then change fields. `struct_size`
 * lets later versions add fields at the end: a caller built against an older header passes its
 * smaller size and gets the defaults for the fields it does not know.
 *
 * Every rs_bytes here is copied by rs_conn_new(); the caller keeps ownership.
 */
typedef struct rs_conn_settings {
  size_t struct_size; /* sizeof(rs_conn_settings) */
  rs_conn_role role;
  rs_conn_framing framing;

  /* SETUP (client: what to send; server: ignored, the client's values apply). */
  uint32_t keepalive_interval_ms; /* 1..2^31-1 */
  uint32_t max_lifetime_ms;       /* 1..2^31-1 */
  rs_bytes metadata_mime;         /* up to 255 bytes, opaque to the engine */
  rs_bytes data_mime;             /* up to 255 bytes, opaque to the engine */
  rs_payload setup_payload;       /* client: metadata and data of the SETUP frame */

  /* Lease. Client: ask for lease (SETUP L flag). Server: accept clients that ask for it (a
   * server without it rejects them with UNSUPPORTED_SETUP). With lease on, each side's requester
   * needs a LEASE from the other side before it may send requests (see rs_conn_send_lease). */
  bool lease;

  /* Resumption. Client: ask for it (SETUP R flag) with `resume_token`. Server: allow it; needs
   * `resume_store`, where accepted sessions are registered by token. */
  bool resume;
  rs_bytes resume_token;              /* client: 1..65535 bytes, unique and unpredictable */
  rs_resume_store *resume_store;      /* server: borrowed, must outlive the connection */
  size_t resume_buffer_size;          /* bytes of sent frames retained for retransmission */
  uint32_t resume_session_timeout_ms; /* how long a detached session waits for a new transport */

  /* Server: also send KEEPALIVE(respond) at the client's interval (what rsocket-java does). */
  bool server_keepalive;
  /* Server: how long to wait for the first frame (SETUP or RESUME) before closing; 0: forever.
   * 10 s by default: a connection that says nothing holds a descriptor meanwhile (20,000 silent
   * sockets once locked every client out for the 60 s this used to be). */
  uint32_t setup_timeout_ms;

  /* Fragmentation: 0 sends every frame whole; otherwise frames over `mtu` bytes (counting the
   * 3-byte length prefix and the frame header, as rsocket-java does) are fragmented. >= 64. */
  uint32_t mtu;

  /* Limits. */
  uint32_t max_frame_size;     /* largest inbound frame accepted (6..16,777,215) */
  size_t max_reassembly_size;  /* largest reassembled inbound payload (metadata + data) */
  size_t max_reassembly_total; /* reassembly buffers of all streams together */
  uint32_t max_streams;        /* concurrent streams, both directions together */
  uint32_t max_queued_control; /* control frames queued in reply to the peer and not yet sent */
  size_t output_block_size;    /* granularity of the output buffer (bytes) */

  /* Pull producers (on_produce) are called only while the output waiting to be written is under
   * this many bytes (back-pressure from the transport). 0 = no limit. */
  size_t output_high_watermark;

  /* Bytes of control frames queued in reply to the peer and not yet sent (KEEPALIVE answers
   * echo the peer's data: 900 KEEPALIVEs of 1 MiB to a peer that never reads held 900 MB).
   * Over it the connection closes with CONNECTION_ERROR (RS_ERR_FLOODED). 0 = no limit. */
  size_t max_queued_control_bytes;
} rs_conn_settings;

/*
 * Fills `s` with the defaults for `role`:
 *   struct_size = sizeof(rs_conn_settings); role = `role`; framing = RS_FRAMING_LENGTH_PREFIXED;
 *   keepalive_interval_ms = 20000; max_lifetime_ms = 90000 (rsocket-java's values);
 *   metadata_mime = data_mime = "application/octet-stream"; setup_payload = none;
 *   lease = false; resume = false; resume_token = none; resume_store = NULL;
 *   resume_buffer_size = 1 MiB; resume_session_timeout_ms = 120000;
 *   server_keepalive = false; setup_timeout_ms = 10000;
 *   mtu = 0 (no fragmentation); max_frame_size = 16,777,215; max_reassembly_size = 16 MiB;
 *   max_reassembly_total = 64 MiB;
 *   max_streams = 65536; max_queued_control = 1024; output_block_size = 64 KiB;
 *   output_high_watermark = 1 MiB; max_queued_control_bytes = 4 MiB.
 */
RS_EXPORT void rs_conn_settings_default(rs_conn_settings *s, rs_conn_role role);

/* What the client asked for in its SETUP, for on_setup. Views valid during the callback only. */
typedef struct rs_setup_info {
  uint16_t major, minor;
  uint32_t keepalive_interval_ms;
  uint32_t max_lifetime_ms;
  rs_bytes metadata_mime;
  rs_bytes data_mime;
  bool lease;
  bool resume;
  rs_bytes resume_token; /* empty unless `resume` */
  rs_payload payload;
} rs_setup_info;

/* An incoming request, for on_request. Views valid during the callback only. */
typedef struct rs_request {
  uint8_t type;       /* RS_FRAME_REQUEST_RESPONSE, _FNF, _STREAM or _CHANNEL */
  uint32_t stream_id; /* the stream to answer on (FNF: informational only) */
  uint64_t initial_n; /* STREAM and CHANNEL: credit for our responses (RS_CREDIT_UNBOUNDED if so) */
  bool complete;      /* CHANNEL: the requester's half is already complete */
  rs_payload payload;
} rs_request;

/* How a stream ended abnormally, for on_error. `message` is valid during the callback only. */
typedef struct rs_stream_error {
  int err;          /* rs_error: RS_ERR_REJECTED, RS_ERR_CANCELED, RS_ERR_PROTOCOL, RS_ERR_TOO_BIG,
                       RS_ERR_CLOSED (the connection ended), RS_ERR_NO_CREDIT, ... */
  uint32_t code;    /* RSocket error code received (remote) or sent (local); 0 if none */
  rs_bytes message; /* received error data (UTF-8), or a static explanation */
  bool remote;      /* true when the peer sent an ERROR frame */
} rs_stream_error;

/* How the connection ended, for on_close. `message` is valid during the callback only. */
typedef struct rs_close_info {
  int err;          /* RS_ERR_CLOSED (graceful or aborted), RS_ERR_REJECTED (setup or resume
                       refused), RS_ERR_TIMEOUT (keepalive, setup or session timeout),
                       RS_ERR_PROTOCOL (a peer broke the protocol), RS_ERR_FLOODED, RS_ERR_NOMEM */
  uint32_t code;    /* RSocket error code of the ERROR frame received or sent; 0 if none */
  rs_bytes message; /* its data, or a static explanation */
  bool remote;      /* true when the peer's ERROR frame ended the connection */
} rs_close_info;

/* on_payload flags. */
#define RS_PAYLOAD_NEXT     0x1u /* the payload carries an element (onNext) */
#define RS_PAYLOAD_COMPLETE 0x2u /* the peer's half of the stream is complete (onComplete) */

/*
 * Callbacks. Any may be NULL (the event is then dropped, except on_setup: NULL accepts every
 * SETUP, and on_request: NULL rejects every request with REJECTED). `user` is the pointer given
 * to rs_conn_new(); `stream_user` the one set with rs_conn_stream_set_user() or given to the
 * request call. `struct_size` works as in rs_conn_settings: set it to sizeof(rs_conn_callbacks).
 */
typedef struct rs_conn_callbacks {
  size_t struct_size;

  /* Server: a valid SETUP arrived. Return 0 to accept. Return non-zero to reject with
   * REJECTED_SETUP (message set with rs_conn_reject_setup(), else "setup rejected"). A server
   * with lease on should grant a first lease here (rs_conn_send_lease). */
  int (*on_setup)(rs_conn *conn, const rs_setup_info *setup, void *user);

  /* The connection ended (once). Every open stream got on_error + on_stream_closed before. */
  void (*on_close)(rs_conn *conn, const rs_close_info *info, void *user);

  /* A new request from the peer. Set a stream user pointer with rs_conn_stream_set_user() and
   * answer now or later. Return 0 to take it; non-zero rejects it with ERROR[REJECTED] (nothing
   * is sent for FNF) and no other callback follows for it. */
  int (*on_request)(rs_conn *conn, const rs_request *req, void *user);

  /* PAYLOAD on a stream: `flags` has RS_PAYLOAD_NEXT (then `p` is the element) and/or
   * RS_PAYLOAD_COMPLETE. Every NEXT consumed one credit granted with request(n). */
  void (*on_payload)(rs_conn *conn, uint32_t stream_id, void *stream_user, const rs_payload *p,
                     unsigned flags, void *user);

  /* The peer granted `n` more elements for our side of a stream or channel
   * (RS_CREDIT_UNBOUNDED for REQUEST_N(2^31-1)). */
  void (*on_request_n)(rs_conn *conn, uint32_t stream_id, void *stream_user, uint64_t n,
                       void *user);

  /* The peer canceled our outbound half: stop producing (a responder's stream is over; a
   * channel requester keeps receiving until the responder completes). */
  void (*on_cancel)(rs_conn *conn, uint32_t stream_id, void *stream_user, void *user);

  /* The stream ended abnormally (ERROR received, a limit hit, the connection lost). */
  void (*on_error)(rs_conn *conn, uint32_t stream_id, void *stream_user,
                   const rs_stream_error *error, void *user);

  /* The stream is over and its id forgotten; release `stream_user`. Called exactly once per
   * stream the application knows about. */
  void (*on_stream_closed)(rs_conn *conn, uint32_t stream_id, void *stream_user, void *user);

  /* METADATA_PUSH received. */
  void (*on_metadata_push)(rs_conn *conn, rs_bytes metadata, void *user);

  /* LEASE received: we may send `requests` new requests in the next `ttl_ms`. `metadata` is
   * NULL when the frame had none. */
  void (*on_lease)(rs_conn *conn, uint32_t ttl_ms, uint32_t requests, const rs_bytes *metadata,
                   void *user);

  /* Server: a RESUME on another transport took this session over while its transport still
   * looked alive. Close that old transport and stop feeding it to this connection; output handed
   * out by rs_conn_pending_output is dropped when this returns. */
  void (*on_detached)(rs_conn *conn, void *user);

  /* For the event loop driving the connection (hiredis' addWrite): output appeared in an empty
   * queue, or the next deadline moved earlier (a stream ended or the connection closed), through
   * an API call made outside rs_conn_recv*() and rs_conn_handle_expiry() (after those, the driver
   * flushes and re-reads the deadline anyway). Called from inside the API call that caused it,
   * also from inside other callbacks; it must not call into the engine (read-only calls such as
   * rs_conn_next_deadline aside): schedule a flush. Idempotent scheduling is expected: it may be
   * called again before the flush happens. The runtime sets it; rs_runtime users need nothing. */
  void (*on_wake)(rs_conn *conn, void *user);

  /*
   * Pull production (nghttp2's data provider), for streams given a producer with
   * rs_conn_set_producer(): our half of `stream_id` may send now. It has `credit` elements
   * (>= 1, RS_CREDIT_UNBOUNDED if so), the output is under output_high_watermark and, with
   * resumption, the retained-frame window has room. Send with rs_conn_send_payload (one element
   * or several; each uses a credit), end with rs_conn_send_complete or rs_conn_send_error.
   * Return RS_PRODUCE_MORE to be called again when there is room and credit, RS_PRODUCE_PAUSE
   * when nothing is ready: no call then until rs_conn_resume_producer(). Returning MORE without
   * sending anything counts as PAUSE (no busy loop). Only called from rs_conn_produce().
   */
  int (*on_produce)(rs_conn *conn, uint32_t stream_id, void *stream_user, uint64_t credit,
                    void *user);
} rs_conn_callbacks;

/* on_produce results. */
#define RS_PRODUCE_MORE  0
#define RS_PRODUCE_PAUSE 1

/* An output buffer: same layout as struct iovec and libuv's uv_buf_t on Unix. */
typedef struct rs_iov {
  uint8_t *base;
  size_t len;
} rs_iov;

/* -------------------------------------------------------------------------------------------- */
/* Life cycle                                                                                     */

/*
 * Creates a connection. `settings` and `callbacks` are copied (NULL settings: defaults for a
 * client; NULL callbacks: none); `mem` may be NULL (C library). A client queues its SETUP at once
 * (or nothing when it will resume: see rs_conn_attach). `now_ms` starts the timers.
 *
 * Returns 0 and the connection in *out, or RS_ERR_INVALID_ARGUMENT (out NULL, a setting out of
 * range: keepalive or lifetime 0 or over 2^31-1, MIME over 255 bytes, mtu between 1 and 63,
 * max_streams 0 or over 2^29, max_frame_size under 6, max_queued_control 0, resume without token
 * (client) or store (server), token over 65535 bytes; callbacks with struct_size unset),
 * RS_ERR_NOMEM.
 */
RS_EXPORT int rs_conn_new(rs_conn **out, const rs_conn_settings *settings,
                          const rs_conn_callbacks *callbacks, void *user, const rs_mem *mem,
                          uint64_t now_ms);

/* Frees the connection, its streams and buffers, without calling any callback (streams still
 * open are forgotten). Unregisters it from its resume store. `conn` may be NULL. */
RS_EXPORT void rs_conn_free(rs_conn *conn);

/* The user pointer given to rs_conn_new. */
RS_EXPORT void *rs_conn_user(const rs_conn *conn);
RS_EXPORT rs_conn_role rs_conn_get_role(const rs_conn *conn);
RS_EXPORT rs_conn_state rs_conn_get_state(const rs_conn *conn);
/* The settings in force (a copy made by rs_conn_new, defaults filled in); NULL for NULL. A
 * server's metadata_mime and data_mime are the client's once its SETUP arrived (before: its own
 * settings'); the views stay valid until rs_conn_free. */
RS_EXPORT const rs_conn_settings *rs_conn_get_settings(const rs_conn *conn);

/* -------------------------------------------------------------------------------------------- */
/* Input, output, time                                                                           */

/*
 * Feeds bytes read from a length-prefixed transport. Frames may be split anywhere; partial frames
 * are kept (copied) until complete. Callbacks run from inside this call.
 *
 * Returns the number of bytes consumed: `len`, except on a server connection whose RESUME
 * resumed another session (state RS_CONN_STATE_HANDED_OFF), where it stops right after the
 * RESUME frame: feed the rest to rs_conn_resumed_session(). Once closed, bytes are consumed and
 * ignored. Protocol violations are not errors of this call: they close the connection (ERROR
 * frame queued, on_close called).
 * Errors: RS_ERR_INVALID_ARGUMENT (NULL conn, NULL buf with len > 0), RS_ERR_INVALID_STATE
 * (message framing, called from a callback, or the connection is detached), RS_ERR_NOMEM (fatal).
 */
RS_EXPORT rs_ssize rs_conn_recv(rs_conn *conn, const uint8_t *buf, size_t len, uint64_t now_ms);

/*
 * Feeds one whole frame from a message transport (no length prefix). Same behaviour and errors
 * as rs_conn_recv (RS_ERR_INVALID_STATE in length-prefixed framing); returns 0.
 */
RS_EXPORT int rs_conn_recv_frame(rs_conn *conn, const uint8_t *frame, size_t len, uint64_t now_ms);

/*
 * Fills up to `max_iov` buffers with output waiting to be written, oldest first, and returns how
 * many (0 when none). The bytes stay valid and unchanged until rs_conn_consumed() covers them,
 * rs_conn_detach() or rs_conn_free(); calling again returns the same bytes first. Length-prefixed:
 * each buffer holds many whole frames with their prefixes. Message framing: each buffer is one
 * frame, see RS_CONN_MESSAGE_HEADROOM. Never fails (NULL conn or max_iov <= 0 give 0).
 */
RS_EXPORT int rs_conn_pending_output(rs_conn *conn, rs_iov *iov, int max_iov);

/* Bytes waiting in the output (what rs_conn_pending_output would hand out in all). A gateway
 * uses it as back-pressure: stop producing while it is large. */
RS_EXPORT size_t rs_conn_pending_bytes(const rs_conn *conn);

/*
 * The transport wrote the first `n` bytes handed out by rs_conn_pending_output. In message
 * framing `n` must end on a frame boundary. Returns 0, or RS_ERR_INVALID_ARGUMENT (n over the
 * pending bytes, or mid-frame in message framing).
 */
RS_EXPORT int rs_conn_consumed(rs_conn *conn, size_t n);

/* True when the transport should be closed: the connection is closed (or handed off) and all its
 * output has been consumed. */
RS_EXPORT bool rs_conn_want_close(const rs_conn *conn);

/* When rs_conn_handle_expiry must be called next (a time on the clock of `now_ms`), or UINT64_MAX
 * when no timer runs. May be in the past: call it right away. */
RS_EXPORT uint64_t rs_conn_next_deadline(const rs_conn *conn);

/*
 * Advances the connection's clock to `now_ms` and acts on every timer due: sends KEEPALIVE,
 * closes after the keepalive lifetime, the setup timeout or the resume session timeout, and
 * delivers on_stream_closed/on_close for streams ended by API calls. Callbacks run from inside.
 * Returns 0, or RS_ERR_INVALID_ARGUMENT, RS_ERR_INVALID_STATE (called from a callback),
 * RS_ERR_NOMEM (fatal).
 */
RS_EXPORT int rs_conn_handle_expiry(rs_conn *conn, uint64_t now_ms);

/* -------------------------------------------------------------------------------------------- */
/* Requests (requester side). Each returns the new stream id (> 0) or a negative rs_error.       */
/* Common errors: RS_ERR_INVALID_ARGUMENT (NULL conn or payload, initial_n 0),                    */
/* RS_ERR_CLOSED (closed, draining or handed off), RS_ERR_INVALID_STATE (server before SETUP),    */
/* RS_ERR_NO_LEASE (lease on and none valid: nothing is sent), RS_ERR_TOO_MANY_STREAMS,           */
/* RS_ERR_FRAME_TOO_LARGE (payload over 16,777,215 bytes with mtu 0), RS_ERR_NOMEM (fatal).       */
/* While detached or resuming, requests are accepted and sent after resumption.                   */

/* Request-response. One on_payload (NEXT|COMPLETE, or COMPLETE alone for an empty result) or one
 * on_error follows, then on_stream_closed. */
RS_EXPORT rs_ssize rs_conn_request_response(rs_conn *conn, const rs_payload *p, void *stream_user);

/* Fire-and-forget. Returns the stream id used; no stream remains and no callback follows. */
RS_EXPORT rs_ssize rs_conn_request_fnf(rs_conn *conn, const rs_payload *p);

/* Request-stream with `initial_n` credit (>= 1; 2^31-1 or more means unbounded). */
RS_EXPORT rs_ssize rs_conn_request_stream(rs_conn *conn, const rs_payload *p, uint64_t initial_n,
                                          void *stream_user);

/* Request-channel: `p` is the first element of our half (it needs no credit), `initial_n` the
 * credit for the responder's half, `complete` ends our half at once. Further elements need credit
 * from the responder (on_request_n). */
RS_EXPORT rs_ssize rs_conn_request_channel(rs_conn *conn, const rs_payload *p, uint64_t initial_n,
                                           bool complete, void *stream_user);

/*
 * METADATA_PUSH (never fragmented, not counted against the lease). Returns 0, or
 * RS_ERR_INVALID_ARGUMENT, RS_ERR_CLOSED, RS_ERR_INVALID_STATE (server before SETUP, or
 * resuming), RS_ERR_FRAME_TOO_LARGE (over one frame or the mtu), RS_ERR_NOMEM.
 */
RS_EXPORT int rs_conn_metadata_push(rs_conn *conn, rs_bytes metadata);

/* -------------------------------------------------------------------------------------------- */
/* Streams. Common errors: RS_ERR_INVALID_ARGUMENT (NULL conn), RS_ERR_STREAM_CLOSED (no such     */
/* stream, or our half of it is over), RS_ERR_CLOSED (connection closed), RS_ERR_NOMEM (fatal).   */

/*
 * Sends one element on our half of a stream: a response (request-response responder: `complete`
 * is implied), a stream element (responder) or a channel element (either side). Needs credit
 * except for a request-response answer. `complete` also ends our half (PAYLOAD N|C).
 * Returns 0, or the common errors, RS_ERR_NO_CREDIT (nothing sent), RS_ERR_INVALID_STATE (we are
 * the requester of a request-response or request-stream: we have no half to send on),
 * RS_ERR_FRAME_TOO_LARGE.
 */
RS_EXPORT int rs_conn_send_payload(rs_conn *conn, uint32_t stream_id, const rs_payload *p,
                                   bool complete);

/* Ends our half without an element (PAYLOAD with C only; for request-response an empty answer).
 * Returns 0, the common errors, RS_ERR_INVALID_STATE (as rs_conn_send_payload). */
RS_EXPORT int rs_conn_send_complete(rs_conn *conn, uint32_t stream_id);

/*
 * Ends the stream with ERROR[`code`] (APPLICATION_ERROR, REJECTED, CANCELED, INVALID, or an
 * application code >= 0x301) and `message` (UTF-8, copied). Both halves end. A requester may only
 * send an error on a channel (use rs_conn_cancel otherwise). Returns 0, the common errors,
 * RS_ERR_INVALID_ARGUMENT (a connection-level or reserved code), RS_ERR_INVALID_STATE,
 * RS_ERR_FRAME_TOO_LARGE (message over one frame).
 */
RS_EXPORT int rs_conn_send_error(rs_conn *conn, uint32_t stream_id, uint32_t code,
                                 rs_bytes message);

/*
 * Grants the peer `n` more elements on the stream we receive (REQUEST_N). Credit is 64-bit and
 * saturating; once 2^31-1 or more is outstanding it is unbounded: the call that gets there sends
 * REQUEST_N(2^31-1) (unbounded for every peer) and later calls send nothing. Returns 0, the common
 * errors, RS_ERR_INVALID_ARGUMENT (n == 0), RS_ERR_INVALID_STATE (request-response, or we are a
 * stream's responder).
 */
RS_EXPORT int rs_conn_request_n(rs_conn *conn, uint32_t stream_id, uint64_t n);

/*
 * Cancels. Requester: CANCEL ends the whole stream (on_stream_closed follows later, from
 * rs_conn_handle_expiry or the next rs_conn_recv; late frames are ignored). Channel responder:
 * CANCEL only stops the requester's half; ours continues. Returns 0, the common errors,
 * RS_ERR_INVALID_STATE (a stream responder has nothing to cancel: use rs_conn_send_error).
 */
RS_EXPORT int rs_conn_cancel(rs_conn *conn, uint32_t stream_id);

/*
 * Pull production: from now on on_produce is called for our half of the stream whenever it has
 * credit and the connection has room (see on_produce), instead of the application pushing
 * elements and watching credit and output itself. Any stream with an outbound half: a responder
 * (request-response, stream, channel) or a channel's requester. Returns 0, the common errors,
 * RS_ERR_INVALID_STATE (we have no half to send on).
 */
RS_EXPORT int rs_conn_set_producer(rs_conn *conn, uint32_t stream_id);

/* A producer that paused (RS_PRODUCE_PAUSE) has something again: it is called at the next
 * rs_conn_produce (on_wake tells the driver). Returns 0 (also when not paused), the common
 * errors, RS_ERR_INVALID_STATE (no producer on the stream). */
RS_EXPORT int rs_conn_resume_producer(rs_conn *conn, uint32_t stream_id);

/* True when a producer is ready and the connection has room: call rs_conn_produce. Cheap. */
RS_EXPORT bool rs_conn_want_produce(const rs_conn *conn);

/*
 * Calls ready producers in turn (round robin, one call each per turn) until the output reaches
 * output_high_watermark (or, with resumption, the retained-frame window is half full: then a
 * KEEPALIVE with the respond flag asks the peer for its position, so acknowledged frames can be
 * dropped and production continue) or no producer is ready. Drivers call it before taking the
 * pending output. Callbacks run from inside. Returns 0, or RS_ERR_INVALID_ARGUMENT,
 * RS_ERR_INVALID_STATE (called from a callback), RS_ERR_NOMEM (fatal).
 */
RS_EXPORT int rs_conn_produce(rs_conn *conn, uint64_t now_ms);

/*
 * rs_conn_produce, but at most `max_calls` calls of on_produce (one call each per turn, as
 * there). A driver that writes between such calls puts the first elements of a large grant of
 * credit on the wire while the rest is still being produced, instead of after all of it (a
 * REQUEST_N for thousands of small elements takes 100 us and more to produce, and a fast reader
 * waits meanwhile). The runtime starts each burst with 16 calls and doubles: a call should send a
 * modest batch (rsocket --server sends up to 64 elements or 64 KiB). Returns 0, or
 * RS_ERR_INVALID_ARGUMENT (no connection, or max_calls 0), RS_ERR_INVALID_STATE (called from a
 * callback), RS_ERR_NOMEM (fatal).
 */
RS_EXPORT int rs_conn_produce_some(rs_conn *conn, uint32_t max_calls, uint64_t now_ms);

/* Sets or gets the stream's user pointer. set: 0 or RS_ERR_STREAM_CLOSED; get: NULL if none. */
RS_EXPORT int rs_conn_stream_set_user(rs_conn *conn, uint32_t stream_id, void *stream_user);
RS_EXPORT void *rs_conn_stream_user(const rs_conn *conn, uint32_t stream_id);

/* Credit we have for our half of a stream (RS_CREDIT_UNBOUNDED if unbounded, 0 when over or
 * unknown). A request-response responder has 1 until it answers. */
RS_EXPORT uint64_t rs_conn_stream_credit(const rs_conn *conn, uint32_t stream_id);

/* Number of open streams (both directions), including inbound requests still being reassembled.
 */
RS_EXPORT size_t rs_conn_stream_count(const rs_conn *conn);

/* -------------------------------------------------------------------------------------------- */
/* Connection control                                                                             */

/* Server, inside on_setup: the message of the REJECTED_SETUP that a non-zero return sends
 * (copied). Returns 0, RS_ERR_INVALID_STATE (not inside on_setup), RS_ERR_NOMEM. */
RS_EXPORT int rs_conn_reject_setup(rs_conn *conn, rs_bytes message);

/*
 * Grants the peer's requester `requests` new requests during `ttl_ms` from `now_ms` (LEASE frame;
 * either role, only when lease is on; a `now_ms` earlier than the connection's clock counts as
 * its clock, so 0 means "the last time the engine was given"). Replaces the previous lease; ttl or
 * requests 0 stop all requests. Over-lease requests are then answered with ERROR[REJECTED] (FNF
 * silently dropped). Returns 0, RS_ERR_INVALID_ARGUMENT (a value over 2^31-1), RS_ERR_INVALID_STATE
 * (lease off, or server before SETUP), RS_ERR_CLOSED, RS_ERR_NOMEM.
 */
RS_EXPORT int rs_conn_send_lease(rs_conn *conn, uint32_t ttl_ms, uint32_t requests,
                                 const rs_bytes *metadata, uint64_t now_ms);

/*
 * How available this connection is for new requests, in [0, 1], for load balancers: 0 when not
 * established (setup pending, resuming, detached; a client whose SETUP no transport has written
 * yet, i.e. rs_conn_consumed has not covered it), draining or closed; without lease 1;
 * with lease remaining/granted requests of the current lease, 0 once it expired at `now_ms`.
 */
RS_EXPORT double rs_conn_availability(const rs_conn *conn, uint64_t now_ms);

/*
 * Tells the engine that the application stopped (paused true) or resumed (false) reading the
 * peer: its frames wait in the transport meanwhile, so their absence proves nothing. While
 * paused, the max-lifetime check does not run (on resume the peer has a whole lifetime again,
 * from now_ms), and a server sends KEEPALIVE without the respond flag every keepalive interval,
 * so that a peer whose KEEPALIVEs go unanswered meanwhile still hears from it. Callable from the
 * engine's callbacks; the next deadline (rs_conn_next_deadline) may change. The runtime calls it
 * from rs_runtime_pause_reading. Returns 0 or RS_ERR_INVALID_ARGUMENT (conn NULL).
 */
RS_EXPORT int rs_conn_set_input_paused(rs_conn *conn, bool paused, uint64_t now_ms);

/* Sends KEEPALIVE with the respond flag and `data` now (besides the periodic ones). Returns 0,
 * RS_ERR_INVALID_ARGUMENT, RS_ERR_CLOSED, RS_ERR_INVALID_STATE (not established), RS_ERR_NOMEM. */
RS_EXPORT int rs_conn_send_keepalive(rs_conn *conn, rs_bytes data);

/*
 * Graceful close: sends ERROR[CONNECTION_CLOSE] with `message`; open streams finish, new requests
 * are refused (ours with RS_ERR_CLOSED, the peer's with REJECTED), and once none remains the
 * connection closes (on_close with RS_ERR_CLOSED). Returns 0, RS_ERR_CLOSED (already closed or
 * closing), RS_ERR_NOMEM.
 */
RS_EXPORT int rs_conn_close(rs_conn *conn, rs_bytes message);

/* Immediate close: sends ERROR[CONNECTION_ERROR] with `message`; every stream ends with
 * RS_ERR_CLOSED; on_close follows (from rs_conn_handle_expiry or the next rs_conn_recv).
 * Returns 0, RS_ERR_CLOSED (already closed), RS_ERR_NOMEM. */
RS_EXPORT int rs_conn_abort(rs_conn *conn, rs_bytes message);

/* -------------------------------------------------------------------------------------------- */
/* Resumption                                                                                    */

/*
 * The transport broke. Without resumption the connection closes (streams end with RS_ERR_CLOSED,
 * on_close with RS_ERR_CLOSED, delivered at the next rs_conn_handle_expiry). With resumption
 * established, it keeps its streams, drops its unsent output and partial input, and waits
 * (state DISCONNECTED) up to resume_session_timeout_ms for rs_conn_attach (client) or a RESUME
 * (server). Returns 0, RS_ERR_INVALID_ARGUMENT, RS_ERR_CLOSED (already closed).
 */
RS_EXPORT int rs_conn_detach(rs_conn *conn, uint64_t now_ms);

/*
 * Client: a new transport is up; queues RESUME (token, positions) and nothing else until
 * RESUME_OK, after which the frames the server missed are sent again. On REJECTED_RESUME the
 * connection closes with RS_ERR_REJECTED (do not retry). Returns 0, RS_ERR_INVALID_ARGUMENT,
 * RS_ERR_INVALID_STATE (server, not detached, or resumption off), RS_ERR_NOMEM.
 */
RS_EXPORT int rs_conn_attach(rs_conn *conn, uint64_t now_ms);

/* Server: after a RESUME handed this connection off, the session it resumed (which owns the new
 * transport from now on); NULL otherwise. Free this connection once its output is consumed. */
RS_EXPORT rs_conn *rs_conn_resumed_session(const rs_conn *conn);

/* Our implied positions: bytes of resumable frames sent (queued) and received so far. */
RS_EXPORT uint64_t rs_conn_sent_position(const rs_conn *conn);
RS_EXPORT uint64_t rs_conn_received_position(const rs_conn *conn);

/* A server's table of resumable sessions by token. Returns NULL on allocation failure. */
RS_EXPORT rs_resume_store *rs_resume_store_new(const rs_mem *mem);
/* Frees the store; connections still registered are unlinked (they can no longer be resumed). */
RS_EXPORT void rs_resume_store_free(rs_resume_store *store);
/* Number of sessions registered. */
RS_EXPORT size_t rs_resume_store_count(const rs_resume_store *store);

/*
 * Bounds the sessions that wait detached (their transport gone, their streams and retained
 * frames kept for a RESUME): at most `max_detached` of them and `max_bytes` of retained frames
 * together (0: no limit). Past either, the oldest detached session ends at once, as if its
 * resume_session_timeout_ms had run out (its streams get errors, a later RESUME is rejected).
 * Defaults: 10,000 sessions, 64 MiB. Returns 0 or RS_ERR_INVALID_ARGUMENT (no store).
 */
RS_EXPORT int rs_resume_store_set_limits(rs_resume_store *store, size_t max_detached,
                                         size_t max_bytes);

/* Sessions waiting detached now, and (in *bytes, may be NULL) the retained bytes they hold. */
RS_EXPORT size_t rs_resume_store_detached(const rs_resume_store *store, size_t *bytes);

#ifdef __cplusplus
}
#endif
#endif
