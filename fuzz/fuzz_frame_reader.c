/* Length-prefixed reader: the input is split into chunks whose sizes come from the input itself;
 * every frame handed out must decode or fail cleanly, and splitting must not change the frames. */
#include <stdlib.h>
#include <string.h>

#include "rsocket/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  size_t step = (size_t)data[0] % 17 + 1;
  data++, size--;
  rs_frame_reader whole, split;
  rs_frame_reader_init(&whole, NULL, 1u << 16);
  rs_frame_reader_init(&split, NULL, 1u << 16);
  /* Reference: the frames of the input fed at once. */
  size_t nref = 0, cap = 64;
  rs_bytes *ref = malloc(cap * sizeof *ref);
  const uint8_t *p = data;
  size_t left = size;
  int werr = 0;
  while (left) {
    rs_bytes f;
    rs_ssize n = rs_frame_reader_next(&whole, p, left, &f);
    if (n < 0) {
      werr = (int)n;
      break;
    }
    if (f.ptr) {
      if (nref == cap) ref = realloc(ref, (cap *= 2) * sizeof *ref);
      ref[nref++] = f; /* points into `data` (zero-copy) since everything was fed at once */
      rs_frame fr;
      rs_frame_error e;
      (void)rs_frame_decode(&fr, f.ptr, f.len, &e);
    }
    p += n, left -= (size_t)n;
  }
  /* Split feed: the same frames in the same order, and the same error. */
  size_t got = 0, off = 0;
  int serr = 0;
  while (off < size && !serr) {
    size_t chunk = size - off < step ? size - off : step;
    const uint8_t *q = data + off;
    size_t l = chunk;
    while (l) {
      rs_bytes f;
      rs_ssize n = rs_frame_reader_next(&split, q, l, &f);
      if (n < 0) {
        serr = (int)n;
        break;
      }
      if (f.ptr) {
        if (got >= nref || ref[got].len != f.len || memcmp(ref[got].ptr, f.ptr, f.len)) abort();
        got++;
      }
      q += n, l -= (size_t)n;
    }
    off += chunk;
  }
  if (serr != werr) abort();
  if (!werr && got != nref) abort();
  rs_frame_reader_free(&whole);
  rs_frame_reader_free(&split);
  free(ref);
  return 0;
}
