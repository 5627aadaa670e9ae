/* Loopback floor of rsocket-bench (--floor): the round-trip time of a 25-byte message over a
 * loopback TCP connection between two threads using plain blocking read/write, no event loop and
 * no protocol. It is what the kernel and the machine cost, the limit under every request-response
 * latency measured on this machine. */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rsocket-bench/bench.h"

#define MSG 25

static void *echo_thread(void *arg) {
  int fd = *(int *)arg;
  char b[256];
  for (;;) {
    ssize_t n = read(fd, b, sizeof b);
    if (n <= 0) break;
    if (write(fd, b, (size_t)n) != n) break;
  }
  close(fd);
  return NULL;
}

int floor_bench(bool json, double seconds) {
  int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 1) != 0 ||
      getsockname(l, (struct sockaddr *)&a, &alen) != 0) {
    perror("rsocket-bench: floor: listen");
    return 1;
  }
  int c = socket(AF_INET, SOCK_STREAM, 0);
  if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) != 0) {
    perror("rsocket-bench: floor: connect");
    return 1;
  }
  int s = accept(l, NULL, NULL);
  close(l);
  if (s < 0) {
    perror("rsocket-bench: floor: accept");
    return 1;
  }
  setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  pthread_t th;
  pthread_create(&th, NULL, echo_thread, &s);
  hist h;
  hist_init(&h);
  char b[MSG] = {0};
  uint64_t t0 = bench_now_ns(), limit = (uint64_t)(seconds * 1e9);
  int status = 0;
  while (bench_now_ns() - t0 < limit) {
    uint64_t t = bench_now_ns();
    if (write(c, b, MSG) != MSG) {
      status = 1;
      break;
    }
    size_t got = 0;
    while (got < MSG) {
      ssize_t n = read(c, b + got, MSG - got);
      if (n <= 0) {
        status = 1;
        break;
      }
      got += (size_t)n;
    }
    if (status) break;
    hist_record(&h, bench_now_ns() - t);
  }
  shutdown(c, SHUT_RDWR);
  close(c);
  pthread_join(th, NULL);
  if (json) {
    json_t *o = json_object();
    json_object_set_new(o, "floor", json_string("blocking loopback TCP ping-pong, 25 bytes"));
    json_object_set_new(o, "samples", json_integer((json_int_t)h.count));
    json_t *lat = json_object();
    json_object_set_new(lat, "min", json_real(h.min / 1e3));
    json_object_set_new(lat, "p50", json_real(hist_quantile(&h, 0.5) / 1e3));
    json_object_set_new(lat, "p90", json_real(hist_quantile(&h, 0.9) / 1e3));
    json_object_set_new(lat, "p99", json_real(hist_quantile(&h, 0.99) / 1e3));
    json_object_set_new(lat, "max", json_real(h.max / 1e3));
    json_object_set_new(o, "latency_us", lat);
    char *txt = json_dumps(o, JSON_COMPACT);
    puts(txt);
    free(txt);
    json_decref(o);
  } else {
    printf("loopback floor (blocking TCP ping-pong, 25 bytes, no event loop, no protocol):\n");
    printf("latency (us): min %.1f  p50 %.1f  p90 %.1f  p99 %.1f  max %.1f  (%llu samples)\n",
           h.min / 1e3, hist_quantile(&h, 0.5) / 1e3, hist_quantile(&h, 0.9) / 1e3,
           hist_quantile(&h, 0.99) / 1e3, h.max / 1e3, (unsigned long long)h.count);
  }
  return status;
}
