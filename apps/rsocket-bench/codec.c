/* Codec micro-benchmark of rsocket-bench (--codec): PAYLOAD frames of 0, 64 and 1024 data bytes
 * encoded, decoded, and read+decoded from a length-prefixed byte stream, beside memcpy of the
 * same number of bytes. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsocket-bench/bench.h"
#include "rsocket/frame.h"

/* Keeps the compiler from dropping work whose result is not otherwise used. */
#define SINK(p) __asm__ volatile("" : : "r"(p) : "memory")

#define STREAM_BYTES (1u << 20)
#define BATCH        1024

typedef struct result {
  double ns_per_frame;
  double frames_per_s;
} result;

/* Runs `body` in batches for TRIALS slices of seconds/TRIALS each and returns the best ns per
 * iteration: the usual defence of a micro-benchmark against a noisy (virtual) machine. */
#define TRIALS 5
#define TIMED(seconds, iters_per_batch, body)                                                      \
  ({                                                                                               \
    double best_ = 1e30;                                                                           \
    for (int t_ = 0; t_ < TRIALS; t_++) {                                                          \
      uint64_t t0_ = bench_now_ns(), n_ = 0, limit_ = (uint64_t)((seconds)*1e9 / TRIALS), el_;     \
      do {                                                                                         \
        for (int b_ = 0; b_ < BATCH; b_++) {                                                       \
          body;                                                                                    \
        }                                                                                          \
        n_ += (uint64_t)BATCH * (iters_per_batch);                                                 \
      } while ((el_ = bench_now_ns() - t0_) < limit_);                                             \
      double r_ = (double)el_ / (double)n_;                                                        \
      if (r_ < best_) best_ = r_;                                                                  \
    }                                                                                              \
    best_;                                                                                         \
  })

int codec_bench(bool json, double seconds) {
  static const size_t sizes[] = {0, 64, 1024};
  uint8_t *src = malloc(2048), *dst = malloc(2048), *stream = malloc(STREAM_BYTES);
  uint8_t *data = malloc(1024);
  if (!src || !dst || !stream || !data) {
    fprintf(stderr, "rsocket-bench: out of memory\n");
    return 1;
  }
  memset(data, 'x', 1024);
  json_t *rows = json_array();
  if (!json) {
    printf(
        "rsocket-bench --codec: PAYLOAD frames (NEXT, stream 1), %.2f s per figure (best of %d)\n",
        seconds, TRIALS);
    printf("%-6s %-7s %14s %14s %14s %14s %9s %9s %9s\n", "data", "frame", "encode/s", "decode/s",
           "read+dec/s", "memcpy/s", "enc/cpy", "dec/cpy", "rd/cpy");
  }
  int status = 0;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t size = sizes[i];
    rs_frame f;
    rs_frame_init(&f, RS_FRAME_PAYLOAD, 1);
    f.flags = RS_FLAG_NEXT;
    f.data = (rs_bytes){data, size};
    rs_ssize flen = rs_frame_encode(&f, src, 2048);
    if (flen <= 0) {
      fprintf(stderr, "rsocket-bench: encode failed: %s\n", rs_strerror((int)flen));
      status = 1;
      break;
    }
    /* A byte stream of length-prefixed copies of the frame, as TCP would deliver it. */
    size_t per = 3 + (size_t)flen, count = STREAM_BYTES / per;
    for (size_t k = 0; k < count; k++) {
      rs_frame_put_length(stream + k * per, (size_t)flen);
      memcpy(stream + k * per + 3, src, (size_t)flen);
    }
    double enc = TIMED(seconds, 1, {
      rs_ssize r = rs_frame_encode(&f, dst, 2048);
      SINK(dst);
      if (r != flen) abort();
    });
    double dec = TIMED(seconds, 1, {
      rs_frame out;
      if (rs_frame_decode(&out, src, (size_t)flen, NULL) != 0) abort();
      SINK(out.data.ptr);
    });
    double rd = 1e30;
    for (int t = 0; t < TRIALS; t++) {
      rs_frame_reader r;
      rs_frame_reader_init(&r, NULL, 0);
      uint64_t t0 = bench_now_ns(), frames = 0, limit = (uint64_t)(seconds * 1e9 / TRIALS), el;
      do {
        size_t off = 0;
        while (off < count * per) {
          rs_bytes fr;
          rs_ssize used = rs_frame_reader_next(&r, stream + off, count * per - off, &fr);
          if (used <= 0) abort();
          off += (size_t)used;
          rs_frame out;
          if (fr.ptr && rs_frame_decode(&out, fr.ptr, fr.len, NULL) == 0) {
            SINK(out.data.ptr);
            frames++;
          }
        }
      } while ((el = bench_now_ns() - t0) < limit);
      rs_frame_reader_free(&r);
      if ((double)el / (double)frames < rd) rd = (double)el / (double)frames;
    }
    double cpy = TIMED(seconds, 1, {
      memcpy(dst, src, (size_t)flen);
      SINK(dst);
    });
    if (json) {
      json_t *o = json_object();
      json_object_set_new(o, "data_bytes", json_integer((json_int_t)size));
      json_object_set_new(o, "frame_bytes", json_integer((json_int_t)flen));
      json_object_set_new(o, "encode_per_s", json_real(1e9 / enc));
      json_object_set_new(o, "decode_per_s", json_real(1e9 / dec));
      json_object_set_new(o, "read_decode_per_s", json_real(1e9 / rd));
      json_object_set_new(o, "memcpy_per_s", json_real(1e9 / cpy));
      json_object_set_new(o, "encode_vs_memcpy", json_real(enc / cpy));
      json_object_set_new(o, "decode_vs_memcpy", json_real(dec / cpy));
      json_object_set_new(o, "read_decode_vs_memcpy", json_real(rd / cpy));
      json_array_append_new(rows, o);
    } else {
      printf("%-6zu %-7zd %14.0f %14.0f %14.0f %14.0f %8.2fx %8.2fx %8.2fx\n", size, flen,
             1e9 / enc, 1e9 / dec, 1e9 / rd, 1e9 / cpy, enc / cpy, dec / cpy, rd / cpy);
    }
  }
  if (json) {
    json_t *o = json_object();
    json_object_set_new(o, "codec", rows);
    char *s = json_dumps(o, JSON_COMPACT);
    puts(s);
    free(s);
    json_decref(o);
  } else {
    json_decref(rows);
    printf("(x = time per frame relative to memcpy of the frame's bytes; decode returns views, "
           "encode copies the data)\n");
  }
  free(src);
  free(dst);
  free(stream);
  free(data);
  return status;
}
