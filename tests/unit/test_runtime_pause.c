/*
 * rs_runtime_pause_reading: a server connection whose reading the application paused receives
 * nothing more from its peer (however much the peer sends) until it is resumed, and then
 * everything. A raw TCP client on loopback sends fire-and-forget requests; the server pauses at
 * the first one.
 */
#include "testutil.h"

#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rsocket/runtime.h"

#define MORE 50 /* requests sent while paused */

typedef struct pause_state {
  rs_conn *conn;
  int fnf;
  bool stopped;
} pause_state;

static pause_state st;

static int on_request(rs_conn *conn, const rs_request *req, void *user) {
  (void)user;
  assert_int_equal(req->type, RS_FRAME_REQUEST_FNF);
  if (st.fnf++ == 0) {
    st.conn = conn;
    rs_runtime_pause_reading(conn, true);
  }
  return 0;
}

/* Writes one frame with its length prefix to the blocking socket `fd`. */
static void send_frame(int fd, const rs_frame *f) {
  uint8_t buf[256];
  rs_ssize n = rs_frame_encode(f, buf + RS_FRAME_LENGTH_SIZE, sizeof buf - RS_FRAME_LENGTH_SIZE);
  assert_true(n > 0);
  rs_frame_put_length(buf, (size_t)n);
  size_t len = (size_t)n + RS_FRAME_LENGTH_SIZE;
  assert_int_equal(write(fd, buf, len), (ssize_t)len);
}

static void send_fnf(int fd, uint32_t sid) {
  rs_frame f;
  rs_frame_init(&f, RS_FRAME_REQUEST_FNF, sid);
  f.data = rs_bytes_str("x");
  send_frame(fd, &f);
}

/* Runs the loop for about `ms` (or until `until` fire-and-forget were received). */
static void run_for(uv_loop_t *loop, int ms, int until) {
  for (int i = 0; i < ms && st.fnf < until; i++) {
    uv_run(loop, UV_RUN_NOWAIT);
    poll(NULL, 0, 1);
  }
}

static void on_stopped(void *arg) {
  ((pause_state *)arg)->stopped = true;
}

static void test_paused_connection_is_not_read_until_resumed(void **state) {
  (void)state;
  memset(&st, 0, sizeof st);
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  rs_server_options o;
  rs_server_options_default(&o);
  o.uri = "tcp://127.0.0.1:0";
  o.callbacks.struct_size = sizeof o.callbacks;
  o.callbacks.on_request = on_request;
  rs_server *srv;
  char err[256];
  assert_int_equal(rs_server_start(&srv, &loop, &o, err, sizeof err), 0);

  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)rs_server_port(srv))};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  rs_frame f;
  rs_frame_init(&f, RS_FRAME_SETUP, 0);
  f.u.setup.keepalive_ms = 20000;
  f.u.setup.max_lifetime_ms = 90000;
  f.u.setup.metadata_mime = rs_bytes_str("text/plain");
  f.u.setup.data_mime = rs_bytes_str("text/plain");
  send_frame(fd, &f);
  send_fnf(fd, 1);
  run_for(&loop, 5000, 1);
  assert_int_equal(st.fnf, 1); /* and reading is paused now */

  for (uint32_t i = 0; i < MORE; i++) send_fnf(fd, 3 + 2 * i);
  run_for(&loop, 300, 2);
  assert_int_equal(st.fnf, 1);             /* nothing read while paused */
  rs_runtime_pause_reading(st.conn, true); /* idempotent */
  run_for(&loop, 50, 2);
  assert_int_equal(st.fnf, 1);

  rs_runtime_pause_reading(st.conn, false);
  run_for(&loop, 5000, 1 + MORE);
  assert_int_equal(st.fnf, 1 + MORE);   /* all of it once resumed */
  rs_runtime_pause_reading(NULL, true); /* does nothing */

  close(fd);
  rs_server_stop(srv, false, on_stopped, &st);
  for (int i = 0; i < 1000 && !st.stopped; i++) uv_run(&loop, UV_RUN_ONCE);
  assert_true(st.stopped);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_paused_connection_is_not_read_until_resumed)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
