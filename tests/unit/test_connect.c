/* The happy-eyeballs connector over loopback: a refused address, a black hole (a listener whose
 * accept queue is full drops SYNs), every address failing, the overall timeout, cancellation. */
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/connect.h"

typedef struct result {
  int calls;
  int status;
  char message[1500];
  uv_tcp_t *tcp;
  char peer[64];
  bool in_start; /* set while rs_connect_start runs: the callback must not come then */
  bool reentered;
} result;

static void on_closed(uv_handle_t *h) {
  free(h);
}

static void on_done(uv_tcp_t *tcp, int status, const char *message, void *arg) {
  result *r = arg;
  r->calls++;
  r->reentered |= r->in_start;
  r->status = status;
  snprintf(r->message, sizeof r->message, "%s", message);
  r->tcp = tcp;
  if (tcp) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    assert_int_equal(uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len), 0);
    char ip[64];
    if (ss.ss_family == AF_INET6)
      uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
    else
      uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
    snprintf(r->peer, sizeof r->peer, "%s", ip);
    uv_close((uv_handle_t *)tcp, on_closed);
  }
}

static struct sockaddr_storage addr(const char *ip, int port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  if (strchr(ip, ':'))
    uv_ip6_addr(ip, port, (struct sockaddr_in6 *)&ss);
  else
    uv_ip4_addr(ip, port, (struct sockaddr_in *)&ss);
  return ss;
}

/* A listening socket on ip (port 0: any); returns the fd and the port in *port. */
static int listen_on(const char *ip, int *port, int backlog) {
  struct sockaddr_storage ss = addr(ip, *port);
  int fd = socket(ss.ss_family, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  socklen_t len =
      ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  assert_int_equal(bind(fd, (struct sockaddr *)&ss, len), 0);
  assert_int_equal(listen(fd, backlog), 0);
  socklen_t bl = sizeof ss;
  getsockname(fd, (struct sockaddr *)&ss, &bl);
  *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                         : ((struct sockaddr_in *)&ss)->sin_port);
  return fd;
}

/* A port on ::1 that drops SYNs: a listener with a backlog of 0 whose one queued connection is
 * never accepted. Returns the listener; *filler is the connection that fills the queue. */
static int black_hole(int *port, int *filler) {
  *port = 0;
  int fd = listen_on("::1", port, 0);
  struct sockaddr_storage ss = addr("::1", *port);
  *filler = socket(AF_INET6, SOCK_STREAM, 0);
  assert_int_equal(connect(*filler, (struct sockaddr *)&ss, sizeof(struct sockaddr_in6)), 0);
  return fd;
}

/* A port nothing listens on (bound, closed: refused for a while). */
static int closed_port(const char *ip) {
  int port = 0;
  close(listen_on(ip, &port, 1));
  return port;
}

static void run(uv_loop_t *loop) {
  uv_run(loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(loop), 0); /* every handle closed */
}

static void test_refused_then_next_at_once(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  int port = 0;
  int lfd = listen_on("127.0.0.1", &port, 8);
  struct sockaddr_storage list[2] = {addr("::1", port), addr("127.0.0.1", port)};
  /* ::1:port is refused: the next address must start at once, not after the stagger. */
  rs__connect_stagger_ms = 60000;
  result r = {0};
  rs_connect *c;
  r.in_start = true;
  uint64_t t0 = uv_hrtime();
  assert_int_equal(rs__connect_start_addrs(&c, &loop, "pair", port, list, 2, 0, on_done, &r), 0);
  r.in_start = false;
  run(&loop);
  rs__connect_stagger_ms = RS_CONNECT_STAGGER_MS;
  assert_int_equal(r.calls, 1);
  assert_false(r.reentered);
  assert_int_equal(r.status, 0);
  assert_string_equal(r.peer, "127.0.0.1");
  assert_true(uv_hrtime() - t0 < 5000000000ull);
  close(lfd);
}

static void test_black_hole_then_stagger(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  int hport, filler, port = 0;
  int hole = black_hole(&hport, &filler);
  int lfd = listen_on("127.0.0.1", &port, 8);
  struct sockaddr_storage list[2] = {addr("::1", hport), addr("127.0.0.1", port)};
  rs__connect_stagger_ms = 100;
  result r = {0};
  rs_connect *c;
  uint64_t t0 = uv_hrtime();
  assert_int_equal(rs__connect_start_addrs(&c, &loop, "pair", port, list, 2, 20000, on_done, &r),
                   0);
  run(&loop); /* the black-holed attempt is closed: the loop ends */
  uint64_t ms = (uv_hrtime() - t0) / 1000000;
  rs__connect_stagger_ms = RS_CONNECT_STAGGER_MS;
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.status, 0);
  assert_string_equal(r.peer, "127.0.0.1");
  assert_true(ms >= 90);   /* the second attempt waited for the stagger */
  assert_true(ms < 10000); /* and did not wait for the first to time out */
  close(lfd);
  close(filler);
  close(hole);
}

static void test_all_fail_names_every_address(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  int port = closed_port("127.0.0.1");
  struct sockaddr_storage list[2] = {addr("::1", port), addr("127.0.0.1", port)};
  result r = {0};
  rs_connect *c;
  assert_int_equal(rs__connect_start_addrs(&c, &loop, "localhost", port, list, 2, 0, on_done, &r),
                   0);
  run(&loop);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.status, RS_ERR_IO);
  assert_null(r.tcp);
  char want[200];
  snprintf(want, sizeof want,
           "cannot connect to localhost:%d: [::1]:%d connection refused; 127.0.0.1:%d "
           "connection refused",
           port, port, port);
  assert_string_equal(r.message, want);
}

static void test_timeout(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  int hport, filler;
  int hole = black_hole(&hport, &filler);
  struct sockaddr_storage list[2] = {addr("::1", hport), addr("::1", hport)};
  rs__connect_stagger_ms = 60000; /* the second is never tried */
  result r = {0};
  rs_connect *c;
  assert_int_equal(rs__connect_start_addrs(&c, &loop, "hole", hport, list, 2, 150, on_done, &r), 0);
  run(&loop);
  rs__connect_stagger_ms = RS_CONNECT_STAGGER_MS;
  assert_int_equal(r.status, RS_ERR_TIMEOUT);
  char want[200];
  snprintf(want, sizeof want, "cannot connect to hole:%d: [::1]:%d timed out; [::1]:%d not tried",
           hport, hport, hport);
  assert_string_equal(r.message, want);
  close(filler);
  close(hole);
}

static void test_cancel(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  int hport, filler;
  int hole = black_hole(&hport, &filler);
  struct sockaddr_storage list[1] = {addr("::1", hport)};
  result r = {0};
  rs_connect *c;
  assert_int_equal(rs__connect_start_addrs(&c, &loop, "hole", hport, list, 1, 0, on_done, &r), 0);
  uv_run(&loop, UV_RUN_NOWAIT); /* the attempt is in flight */
  rs_connect_cancel(c);
  run(&loop);
  assert_int_equal(r.calls, 0);
  /* Cancelled while resolving, too. */
  uv_loop_init(&loop);
  assert_int_equal(rs_connect_start(&c, &loop, "localhost", hport, 0, on_done, &r), 0);
  rs_connect_cancel(c);
  run(&loop);
  assert_int_equal(r.calls, 0);
  close(filler);
  close(hole);
}

static void test_numeric_host_and_errors(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  int port = closed_port("127.0.0.1");
  result r = {0};
  rs_connect *c;
  r.in_start = true;
  assert_int_equal(rs_connect_start(&c, &loop, "127.0.0.1", port, 5000, on_done, &r), 0);
  r.in_start = false;
  run(&loop);
  assert_false(r.reentered);
  char want[120];
  snprintf(want, sizeof want, "cannot connect to 127.0.0.1:%d: connection refused", port);
  assert_string_equal(r.message, want);

  uv_loop_init(&loop);
  memset(&r, 0, sizeof r);
  assert_int_equal(rs_connect_start(&c, &loop, "no.such.host.invalid", 1, 5000, on_done, &r), 0);
  run(&loop);
  assert_int_equal(r.status, RS_ERR_IO);
  assert_non_null(strstr(r.message, "cannot resolve no.such.host.invalid: "));

  uv_loop_init(&loop);
  assert_int_equal(rs_connect_start(&c, &loop, "", 1, 0, on_done, &r), RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_connect_start(&c, &loop, "x", 70000, 0, on_done, &r),
                   RS_ERR_INVALID_ARGUMENT);
  assert_int_equal(rs_connect_start(&c, &loop, "x", 1, 0, NULL, &r), RS_ERR_INVALID_ARGUMENT);
  run(&loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_refused_then_next_at_once),
      cmocka_unit_test(test_black_hole_then_stagger),
      cmocka_unit_test(test_all_fail_names_every_address),
      cmocka_unit_test(test_timeout),
      cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_numeric_host_and_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
