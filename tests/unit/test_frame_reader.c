/* Length-prefixed frame reader: scripted feeds in 1-byte, 7-byte and random chunks. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "rsocket/frame.h"

/* A stream of N frames with varied sizes (some large), each prefixed, and their offsets. */
typedef struct stream {
  uint8_t *bytes;
  size_t len;
  size_t nframes;
  size_t *frame_len;
} stream;

static void make_stream(stream *s, size_t nframes, uint64_t seed) {
  memset(s, 0, sizeof *s);
  s->nframes = nframes;
  s->frame_len = calloc(nframes, sizeof *s->frame_len);
  size_t cap = 0;
  for (size_t i = 0; i < nframes; i++) {
    size_t n = 6 + (size_t)(tu_rand(&seed) % (i % 7 == 0 ? 70000 : 300));
    s->frame_len[i] = n;
    cap += 3 + n;
  }
  s->bytes = malloc(cap);
  uint8_t *p = s->bytes;
  for (size_t i = 0; i < nframes; i++) {
    size_t n = s->frame_len[i];
    rs_frame_put_length(p, n);
    p += 3;
    /* Frame content: its index in every byte, so a mix-up shows. */
    memset(p, (int)(i & 0xff), n);
    p += n;
  }
  s->len = cap;
}

static void free_stream(stream *s) {
  free(s->bytes);
  free(s->frame_len);
}

/* Feeds the stream in chunks chosen by `chunk` (0 = random 1..9000), checks every frame. */
static void feed(const stream *s, size_t chunk, uint64_t seed, const rs_mem *mem) {
  rs_frame_reader r;
  rs_frame_reader_init(&r, mem, 0);
  size_t off = 0, got = 0;
  while (off < s->len) {
    size_t n = chunk ? chunk : 1 + (size_t)(tu_rand(&seed) % 9000);
    if (n > s->len - off) n = s->len - off;
    const uint8_t *in = s->bytes + off;
    size_t left = n;
    while (left > 0) {
      rs_bytes frame;
      rs_ssize used = rs_frame_reader_next(&r, in, left, &frame);
      assert_true(used > 0);
      if (frame.ptr) {
        assert_true(got < s->nframes);
        assert_int_equal(frame.len, s->frame_len[got]);
        for (size_t i = 0; i < frame.len; i++) {
          if (frame.ptr[i] != (uint8_t)(got & 0xff)) fail_msg("frame %zu byte %zu wrong", got, i);
        }
        got++;
      }
      in += used;
      left -= (size_t)used;
    }
    off += n;
  }
  assert_int_equal(got, s->nframes);
  assert_int_equal(rs_frame_reader_pending(&r), 0);
  rs_frame_reader_free(&r);
}

static void test_chunkings(void **state) {
  (void)state;
  stream s;
  make_stream(&s, 60, 42);
  feed(&s, 1, 0, NULL);
  feed(&s, 7, 0, NULL);
  feed(&s, 3, 0, NULL); /* exactly the prefix */
  feed(&s, 9, 0, NULL); /* prefix + header */
  for (uint64_t seed = 1; seed <= 20; seed++) feed(&s, 0, seed, NULL);
  feed(&s, s.len, 0, NULL); /* everything in one read: many frames per read */
  free_stream(&s);
}

static void test_zero_copy_when_whole(void **state) {
  (void)state;
  uint8_t in[] = {0, 0, 6, 0, 0, 0, 5, 0x24, 0, 0, 0, 6, 0, 0, 0, 1, 0x28, 0x40};
  rs_frame_reader r;
  rs_frame_reader_init(&r, NULL, 0);
  rs_bytes f;
  rs_ssize n = rs_frame_reader_next(&r, in, sizeof in, &f);
  assert_int_equal(n, 9);
  assert_ptr_equal(f.ptr, in + 3); /* points into the input: no copy */
  assert_int_equal(f.len, 6);
  n = rs_frame_reader_next(&r, in + 9, sizeof in - 9, &f);
  assert_int_equal(n, 9);
  assert_int_equal(f.len, 6);
  assert_int_equal(f.ptr[4], 0x28);
  rs_frame_reader_free(&r);
}

static void test_split_frame_is_gathered(void **state) {
  (void)state;
  uint8_t in[] = {0, 0, 8, 0, 0, 0, 1, 0x28, 0x60, 'o', 'k'};
  rs_frame_reader r;
  rs_frame_reader_init(&r, NULL, 0);
  rs_bytes f;
  assert_int_equal(rs_frame_reader_next(&r, in, 2, &f), 2); /* partial prefix */
  assert_null(f.ptr);
  assert_int_equal(rs_frame_reader_pending(&r), 2);
  assert_int_equal(rs_frame_reader_next(&r, in + 2, 5, &f), 5);
  assert_null(f.ptr);
  assert_int_equal(rs_frame_reader_next(&r, in + 7, 4, &f), 4);
  assert_non_null(f.ptr);
  assert_int_equal(f.len, 8);
  assert_memory_equal(f.ptr, in + 3, 8);
  assert_int_equal(rs_frame_reader_pending(&r), 0);
  assert_int_equal(rs_frame_reader_next(&r, in, 0, &f), 0);
  assert_null(f.ptr);
  rs_frame_reader_free(&r);
}

static void test_short_length_is_sticky(void **state) {
  (void)state;
  for (uint8_t bad = 0; bad < 6; bad++) {
    uint8_t in[] = {0, 0, bad, 0, 0, 0, 0, 0, 0};
    rs_frame_reader r;
    rs_frame_reader_init(&r, NULL, 0);
    rs_bytes f;
    assert_int_equal(rs_frame_reader_next(&r, in, sizeof in, &f), RS_ERR_FRAME_TOO_SHORT);
    assert_int_equal(rs_frame_reader_next(&r, in, sizeof in, &f), RS_ERR_FRAME_TOO_SHORT);
    rs_frame_reader_free(&r);
  }
}

static void test_max_frame(void **state) {
  (void)state;
  rs_frame_reader r;
  rs_bytes f;
  /* 0xFFFFFF is accepted with the default (protocol) maximum; bytes arrive a piece at a time and
   * memory grows with them. */
  rs_frame_reader_init(&r, NULL, 0);
  uint8_t pre[3] = {0xff, 0xff, 0xff};
  assert_int_equal(rs_frame_reader_next(&r, pre, 3, &f), 3);
  uint8_t *chunk = calloc(1, 1 << 20);
  size_t total = 0;
  while (total < 0xFFFFFF) {
    size_t n = 0xFFFFFF - total < (1u << 20) ? 0xFFFFFF - total : (1u << 20);
    assert_int_equal(rs_frame_reader_next(&r, chunk, n, &f), (rs_ssize)n);
    total += n;
    if (total < 0xFFFFFF) {
      assert_null(f.ptr);
      assert_true(r.buf_cap <= 2 * total + 4096);
    }
  }
  assert_non_null(f.ptr);
  assert_int_equal(f.len, 0xFFFFFF);
  rs_frame_reader_free(&r);
  free(chunk);

  /* A configured maximum refuses longer frames before reading them. */
  rs_frame_reader_init(&r, NULL, 100);
  uint8_t big[3] = {0, 0, 101};
  assert_int_equal(rs_frame_reader_next(&r, big, 3, &f), RS_ERR_FRAME_TOO_LARGE);
  assert_int_equal(rs_frame_reader_next(&r, big, 3, &f), RS_ERR_FRAME_TOO_LARGE);
  rs_frame_reader_free(&r);
  rs_frame_reader_init(&r, NULL, 100);
  uint8_t ok[3] = {0, 0, 100};
  assert_int_equal(rs_frame_reader_next(&r, ok, 3, &f), 3);
  rs_frame_reader_free(&r);
}

static void test_allocation_failure(void **state) {
  (void)state;
  tu_alloc a;
  tu_alloc_init(&a, 1); /* the first allocation fails */
  rs_frame_reader r;
  rs_frame_reader_init(&r, &a.mem, 0);
  uint8_t in[] = {0, 0, 10, 0, 0, 0, 1};
  rs_bytes f;
  assert_int_equal(rs_frame_reader_next(&r, in, sizeof in, &f), RS_ERR_NOMEM);
  assert_int_equal(rs_frame_reader_next(&r, in, sizeof in, &f), RS_ERR_NOMEM); /* sticky */
  rs_frame_reader_free(&r);
  assert_int_equal(a.live, 0);

  /* Every allocation index along a long split feed fails cleanly, nothing leaks. */
  stream s;
  make_stream(&s, 8, 7);
  for (long n = 1; n < 40; n++) {
    tu_alloc_init(&a, n);
    rs_frame_reader_init(&r, &a.mem, 0);
    size_t off = 0;
    int err = 0;
    while (off < s.len && !err) {
      size_t chunk = s.len - off < 100 ? s.len - off : 100;
      rs_ssize used = rs_frame_reader_next(&r, s.bytes + off, chunk, &f);
      if (used < 0)
        err = (int)used;
      else
        off += (size_t)used;
    }
    if (err) assert_int_equal(err, RS_ERR_NOMEM);
    rs_frame_reader_free(&r);
    assert_int_equal(a.live, 0);
  }
  free_stream(&s);
}

static void test_large_buffer_released_after_frame(void **state) {
  (void)state;
  rs_frame_reader r;
  rs_frame_reader_init(&r, NULL, 0);
  size_t n = 200000;
  uint8_t *in = calloc(1, n + 3);
  rs_frame_put_length(in, n);
  rs_bytes f;
  assert_int_equal(rs_frame_reader_next(&r, in, 1000, &f), 1000);
  assert_int_equal(rs_frame_reader_next(&r, in + 1000, n + 3 - 1000, &f), (rs_ssize)(n + 3 - 1000));
  assert_int_equal(f.len, n);
  /* The next call releases the big gathering buffer: idle connections stay small. */
  assert_int_equal(rs_frame_reader_next(&r, in, 0, &f), 0);
  assert_int_equal(r.buf_cap, 0);
  rs_frame_reader_free(&r);
  free(in);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_chunkings),
      cmocka_unit_test(test_zero_copy_when_whole),
      cmocka_unit_test(test_split_frame_is_gathered),
      cmocka_unit_test(test_short_length_is_sticky),
      cmocka_unit_test(test_max_frame),
      cmocka_unit_test(test_allocation_failure),
      cmocka_unit_test(test_large_buffer_released_after_frame),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
