/* rsocket-bench's WebSocket client connections (wsload.c), shared with the models built on them
 * (boardload.c). Internal header. */
#ifndef RSOCKET_BENCH_WSLOAD_H
#define RSOCKET_BENCH_WSLOAD_H

#include "rsocket-bench/bench.h"
#include "rsocket/uri.h"
#include "rsocket/ws.h"

#define HS_MAX   8192
#define READ_BUF (64 * 1024)
/* With messages in flight and none answered for this long, the server is not echoing. */
#define STALL_MS 5000u

typedef struct wsload wsload;

typedef struct wconn {
  wsload *L;
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  char key[25];
  char hs[HS_MAX];
  size_t hs_len;
  bool upgraded, writing, done, closing, tcp_closed;
  bool failed; /* never upgraded: counted as a connection failure */
  size_t wlen;
  rs_ws_conn *ws;
  uint64_t quota, issued, finished;
  int inflight; /* gw-sub: subscriptions open; board: requests in flight */
  uint64_t *ring;
  unsigned mask, head, tail;
  /* gw-req: slot s carries ids s+1, s+1+m, s+1+2m… (m = -m), one at a time */
  uint64_t *slot_id;   /* the slot's last id (0: none yet) */
  uint64_t *slot_sent; /* when it was sent; 0: the slot is free */
  uint32_t *free_slots;
  unsigned nfree;
  struct board_user *user; /* board: the simulated user of this connection */
} wconn;

struct wsload {
  worker *w;
  wconn *conns;
  rs_uri uri;
  uint8_t *data;
  /* gw models: a request is msg[0..id_at) + the id's digits + tail[0..tail_len) */
  char *msg, *tail;
  size_t id_at, tail_len;
  uint8_t rbuf[READ_BUF];
  int live, upgraded, failed;
  bool started, stopping;
  uv_timer_t deadline;
  uv_timer_t connect_timer; /* every connection upgraded within --connect-timeout */
  uv_timer_t stall;         /* every second: fails the run when nothing was echoed for STALL_MS */
  uint64_t last_reply;      /* bench_now_ns() of the last echo (or of the start) */
  struct board_load *board; /* board: the model's state (boardload.c) */
};

/* Milliseconds of the monotonic clock, for the WebSocket layer's timers. */
uint64_t wsload_now_ms(void);
/* Writes what the connection has pending (call after rs_ws_conn_send). */
void wsload_flush(wconn *c);
/* Ends the connection's part in the run: nothing more is counted; closes it with 1000. */
void wsload_finish(wconn *c, const char *reason);
/* Reads the type and id of a gateway answer from its first bytes: {"type":"T","id":N or null
 * (0). False when the message does not start so. */
bool wsload_gw_head(const uint8_t *p, size_t len, rs_bytes *type, uint64_t *id);
bool wsload_is_type(rs_bytes t, const char *name);
/* The server is not what the model measures (its error is recorded): stop the run. */
void wsload_wrong_server(wconn *c);

/* ---- --model board (boardload.c) ---- */

/* Sets up the model's state and each connection's user (L->board, c->user); -1: out of memory. */
int board_init(wsload *L);
/* Frees what board_init made (after the loop has run). */
void board_free(wsload *L);
/* The connection is upgraded and the load has started, or it has read something: act. */
void board_kick(wconn *c);
/* A message from the gateway. */
void board_on_message(wconn *c, int opcode, const uint8_t *data, size_t len, uint64_t now);
/* The connection is closing: stop the user's timer. */
void board_conn_closed(wconn *c);
/* The deadline: stop editing, keep reading for the drain time, then close. */
void board_on_deadline(wsload *L);

#endif
