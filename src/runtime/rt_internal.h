/* Internals shared by the runtime's server, client and transport files. */
#ifndef RS_RUNTIME_RT_INTERNAL_H
#define RS_RUNTIME_RT_INTERNAL_H

#include "rsocket/frame.h"
#include "rsocket/runtime.h"
#include "runtime/io.h"
#include "runtime/tls.h"
#include "rsocket/uri.h"

typedef struct rt_worker rt_worker;

/* A server connection that has not proven itself yet (no SETUP, or a WebSocket handshake not
 * decided), on its worker's oldest-first list: when the worker is full the oldest is shed. */
typedef struct rt_pending {
  struct rt_pending *next, *prev; /* circular, around the worker's sentinel; NULL: not linked */
  rs_io_conn *io;
} rt_pending;

/* Worker side of rt_pending (runtime_server.c). */
void rt_pending_add(rt_worker *w, rt_pending *p, rs_io_conn *io);
void rt_pending_remove(rt_pending *p);

/*
 * The glue of one engine to its transport. The engine's user pointer is this struct; the
 * application's callbacks are forwarded with the application's user pointer.
 */
typedef struct rt_conn {
  rs_conn *conn;
  rs_io_conn *io; /* NULL while no transport is attached */
  uv_loop_t *loop;
  uv_timer_t timer;             /* drives the engine's timers while detached */
  const rs_conn_callbacks *app; /* the application's callbacks (owned by server or client) */
  void *app_user;
  rs_server *server; /* server side */
  rt_worker *worker;
  rs_client *client;           /* client side */
  struct rt_conn *next, *prev; /* worker's list */
  bool closed;                 /* on_close was delivered */
  bool timer_closing;
  bool ws; /* the transport is WebSocket (message framing) */
  /* Client, per transport: the engine's output started to flow; the server's first frame came. */
  bool ready, answered;
  /* Frame tap (debugging): whole frames in and out. */
  void (*tap)(rs_conn *conn, bool outbound, const uint8_t *frame, size_t len, void *user);
  rs_frame_reader tap_in, tap_out;
  void *ws_layer; /* the WebSocket session stacked between io and engine */
  void (*on_drained)(rs_conn *conn, void *user); /* the application's, or NULL */
  bool want_drained;      /* rs_runtime_writable said no: on_drained is owed */
  bool read_paused;       /* over the read cap: the peer is not read until the output drains */
  bool app_paused;        /* rs_runtime_pause_reading: not read until the application resumes */
  uint32_t produce_calls; /* budget of the next rs_conn_produce_some (engine_pending) */
  uint64_t finished_at;   /* when the engine was first seen closed (0: not yet) */
  rt_pending pending;     /* server: until SETUP was accepted */
} rt_conn;

/* Engine callbacks that forward to rt_conn.app (runtime_conn.c). */
extern const rs_conn_callbacks rt_forward_callbacks;

/* Session ops that drive an engine in length-prefixed framing (runtime_conn.c). */
extern const rs_io_session_ops rt_engine_ops;

/* Attaches `io` to `rc` (plain or WebSocket per rc->ws). 0 or a negative rs_error. */
int rt_conn_attach_io(rt_conn *rc, rs_io_conn *io, const rs_uri *uri,
                      const rs_ws_transport_options *ws, bool server);

/* Server: the WebSocket `ws` (handshake done or being answered) on `io` carries `rc`'s engine
 * from now on. */
struct rt_ws;
void rt_conn_adopt_ws(rt_conn *rc, rs_io_conn *io, struct rt_ws *ws);

/* The transport of `rc` went away (called by the session ops' closed hook). */
void rt_conn_transport_closed(rt_conn *rc, int err, const char *reason);

/* Server/client hooks called by rt_conn_transport_closed. */
void rt_server_conn_gone(rt_conn *rc, int err, const char *reason);
void rt_client_transport_gone(rt_conn *rc, int err, const char *reason);
/* The client's engine went from RESUMING to ESTABLISHED. */
void rt_client_resumed(rt_conn *rc);
/* Client: the transport took the engine's first output (TLS and WebSocket handshakes done). */
void rt_client_transport_ready(rt_conn *rc);
/* Client: the first bytes from the server arrived on this transport. */
void rt_client_answered(rt_conn *rc);

/* After the transport took output: on_drained and reading resume once it is down to half the
 * high watermark. */
void rt_conn_output_taken(rt_conn *rc);
/* After input: stops reading a peer whose answers queue up past the read cap. */
void rt_conn_input_given(rt_conn *rc);

/* Flushes the engine's output before the loop sleeps, or re-arms its timer while detached. */
void rt_conn_wake(rt_conn *rc);

/* Starts the detached-timer of `rc` at the engine's deadline (or stops it). */
void rt_conn_arm_detached_timer(rt_conn *rc);

/* Sets up the frame tap of `rc` (fn may be NULL). */
void rt_conn_set_tap(rt_conn *rc, void (*fn)(rs_conn *, bool, const uint8_t *, size_t, void *));
/* Feeds bytes (length-prefixed) or one frame (message framing) to the tap. */
void rt_conn_tap(rt_conn *rc, bool outbound, const uint8_t *buf, size_t len);

/* Frees the engine and the glue (the transport must be gone). Deferred until the timer handle
 * has closed. */
void rt_conn_destroy(rt_conn *rc);

#endif
