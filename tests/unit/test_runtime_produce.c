/*
 * The runtime drives pull producers in chunks: a grant of credit goes to the socket while it is
 * being produced, not after all of it (which left a fast reader idle: request-stream with small
 * items ran at half speed). A raw TCP client on loopback asks for 2,048 items; the server's
 * producer notes, at each call, how much it produced and how much still waits in the engine.
 */
#include "testutil.h"

#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rsocket/runtime.h"

#define ITEMS      2048
#define ITEM_DATA  16
#define ITEM_BYTES (3 + 6 + ITEM_DATA) /* length prefix, header, data */
#define PER_CALL   64                  /* like rsocket --server */

typedef struct prod_state {
  int produced;
  int first_written_at; /* items produced when some output had left the engine (-1: not yet) */
  bool stopped;
} prod_state;

static prod_state st;

static int on_request(rs_conn *conn, const rs_request *req, void *user) {
  (void)user;
  assert_int_equal(req->type, RS_FRAME_REQUEST_STREAM);
  return rs_conn_set_producer(conn, req->stream_id);
}

static int on_produce(rs_conn *conn, uint32_t sid, void *su, uint64_t credit, void *user) {
  (void)su, (void)user;
  /* The engine's output holds nothing but our items: less than we produced means the runtime
   * wrote some of them between two calls. */
  if (st.first_written_at < 0 && rs_conn_pending_bytes(conn) < (size_t)st.produced * ITEM_BYTES)
    st.first_written_at = st.produced;
  static const uint8_t data[ITEM_DATA] = "0123456789abcdef";
  for (int i = 0; i < PER_CALL && credit > 0; i++, credit--) {
    rs_payload p = {false, {NULL, 0}, {data, sizeof data}};
    assert_int_equal(rs_conn_send_payload(conn, sid, &p, false), 0);
    st.produced++;
  }
  return RS_PRODUCE_MORE;
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

static void on_stopped(void *arg) {
  ((prod_state *)arg)->stopped = true;
}

static void test_grant_is_written_while_produced(void **state) {
  (void)state;
  memset(&st, 0, sizeof st);
  st.first_written_at = -1;
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  rs_server_options o;
  rs_server_options_default(&o);
  o.uri = "tcp://127.0.0.1:0";
  o.callbacks.struct_size = sizeof o.callbacks;
  o.callbacks.on_request = on_request;
  o.callbacks.on_produce = on_produce;
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
  rs_frame_init(&f, RS_FRAME_REQUEST_STREAM, 1);
  f.u.request.initial_request_n = ITEMS;
  f.data = rs_bytes_str("go");
  send_frame(fd, &f);

  /* Run the server and read everything it sends: ITEMS PAYLOAD frames of ITEM_BYTES each. */
  size_t want = (size_t)ITEMS * ITEM_BYTES, got = 0;
  for (int i = 0; i < 100000 && got < want; i++) {
    uv_run(&loop, UV_RUN_NOWAIT);
    struct pollfd pfd = {fd, POLLIN, 0};
    if (poll(&pfd, 1, 10) == 1) {
      uint8_t buf[65536];
      ssize_t n = read(fd, buf, sizeof buf);
      assert_true(n > 0);
      got += (size_t)n;
    }
  }
  assert_int_equal(got, want);
  assert_int_equal(st.produced, ITEMS);
  /* The first bytes left after the first burst of calls (16 at most), long before the grant was
   * produced. Filling the grant first gave -1: nothing written until the producer had
   * finished. */
  assert_true(st.first_written_at > 0);
  assert_true(st.first_written_at <= 16 * PER_CALL);

  close(fd);
  rs_server_stop(srv, false, on_stopped, &st);
  for (int i = 0; i < 1000 && !st.stopped; i++) uv_run(&loop, UV_RUN_ONCE);
  assert_true(st.stopped);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_grant_is_written_while_produced)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
