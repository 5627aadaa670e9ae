/*
 * The board rules every engine follows: what a valid board name and op are, and how an op
 * changes a board's shapes (last writer wins per field, deleted shapes stay deleted). Pure
 * functions on jansson values.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "store.h"

#define COORD_MAX     1000000.0
#define SIZE_MAX_     10000.0
#define ID_MAX        64
#define COLOR_MAX     32
#define DEFAULT_W     160
#define DEFAULT_H     120
#define DEFAULT_COLOR "#ffd54f"

void collab_limits_default(collab_limits *l) {
  l->history = 1000;
  l->max_boards = 1000;
  l->max_shapes = 1000;
  l->max_members = 100;
  l->max_text = 4000;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  if (errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return COLLAB_ERR;
}

static int name_ok(const char *s, size_t max, const char *extra) {
  size_t n = strlen(s);
  if (n == 0 || n > max) return 0;
  for (; *s; s++) {
    char c = *s;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          strchr(extra, c)))
      return 0;
  }
  return 1;
}

int collab_board_name_ok(const char *s) {
  return s && name_ok(s, 64, "._-");
}

/* Copies field `k` of `in` into `out` when present and valid; 1 copied, 0 absent, COLLAB_ERR. */
static int take_number(json_t *out, const json_t *in, const char *k, double lo, double hi,
                       char *err, size_t errlen) {
  json_t *v = json_object_get(in, k);
  if (!v) return 0;
  double d = json_number_value(v);
  if (!json_is_number(v) || !isfinite(d) || d < lo || d > hi)
    return fail(err, errlen, "bad op: '%s' must be a number from %.0f to %.0f", k, lo, hi);
  json_object_set_new(out, k,
                      json_is_integer(v) ? json_integer(json_integer_value(v)) : json_real(d));
  return 1;
}

static int take_string(json_t *out, const json_t *in, const char *k, size_t min, size_t max,
                       char *err, size_t errlen) {
  json_t *v = json_object_get(in, k);
  if (!v) return 0;
  if (!json_is_string(v)) return fail(err, errlen, "bad op: '%s' must be a string", k);
  size_t n = json_string_length(v);
  if (n > max) return fail(err, errlen, "bad op: '%s' is longer than %zu bytes", k, max);
  if (n < min) return fail(err, errlen, "bad op: '%s' must not be empty", k);
  json_object_set_new(out, k, json_stringn(json_string_value(v), n));
  return 1;
}

/* The shape fields other than id, in the order ops and snapshots show them. */
static int take_fields(json_t *out, const json_t *in, const collab_limits *l, char *err,
                       size_t errlen) {
  int got = 0, r;
  if ((r = take_number(out, in, "x", -COORD_MAX, COORD_MAX, err, errlen)) < 0) return r;
  got += r;
  if ((r = take_number(out, in, "y", -COORD_MAX, COORD_MAX, err, errlen)) < 0) return r;
  got += r;
  if ((r = take_number(out, in, "w", 1, SIZE_MAX_, err, errlen)) < 0) return r;
  got += r;
  if ((r = take_number(out, in, "h", 1, SIZE_MAX_, err, errlen)) < 0) return r;
  got += r;
  if ((r = take_string(out, in, "text", 0, l->max_text, err, errlen)) < 0) return r;
  got += r;
  if ((r = take_string(out, in, "color", 1, COLOR_MAX, err, errlen)) < 0) return r;
  return got + r;
}

json_t *collab_op_parse(const json_t *op, const collab_limits *l, char *err, size_t errlen) {
  static const char *const kinds[] = {"add", "move", "update", "delete"};
  if (!json_is_object(op)) return fail(err, errlen, "bad op: 'op' must be an object"), NULL;
  const char *kind = json_string_value(json_object_get(op, "kind"));
  int k = -1;
  for (int i = 0; kind && i < 4; i++)
    if (!strcmp(kind, kinds[i])) k = i;
  if (k < 0)
    return fail(err, errlen, "bad op: 'kind' must be \"add\", \"move\", \"update\" or \"delete\""),
           NULL;
  const json_t *in = json_object_get(op, "shape");
  if (!json_is_object(in)) return fail(err, errlen, "bad op: 'shape' must be an object"), NULL;

  json_t *shape = json_object(), *id = json_object_get(in, "id");
  if (id || k != 0) {
    if (!json_is_string(id) || !name_ok(json_string_value(id), ID_MAX, "._-:")) {
      json_decref(shape);
      return fail(err, errlen,
                  "bad op: 'shape.id' must be a string of 1 to 64 letters, digits, '.', '_', "
                  "'-' or ':'"),
             NULL;
    }
    json_object_set_new(shape, "id", json_string(json_string_value(id)));
  }
  int got = 0;
  if (k == 1) { /* move: x and y only */
    int a = take_number(shape, in, "x", -COORD_MAX, COORD_MAX, err, errlen);
    int b = a < 0 ? a : take_number(shape, in, "y", -COORD_MAX, COORD_MAX, err, errlen);
    got = b < 0 ? b : a + b;
    if (got >= 0 && got < 2) got = fail(err, errlen, "bad op: move needs 'x' and 'y'");
  } else if (k != 3) {
    got = take_fields(shape, in, l, err, errlen);
    if (got >= 0 && k == 0 && (!json_object_get(shape, "x") || !json_object_get(shape, "y")))
      got = fail(err, errlen, "bad op: add needs 'x' and 'y'");
    if (got == 0 && k == 2)
      got = fail(err, errlen, "bad op: update needs at least one of x, y, w, h, text, color");
  }
  if (got < 0) return json_decref(shape), NULL;
  if (k == 0) { /* defaults, so an add op carries the whole shape */
    if (!json_object_get(shape, "w")) json_object_set_new(shape, "w", json_integer(DEFAULT_W));
    if (!json_object_get(shape, "h")) json_object_set_new(shape, "h", json_integer(DEFAULT_H));
    if (!json_object_get(shape, "text")) json_object_set_new(shape, "text", json_string(""));
    if (!json_object_get(shape, "color"))
      json_object_set_new(shape, "color", json_string(DEFAULT_COLOR));
  }
  return json_pack("{s:s,s:o}", "kind", kinds[k], "shape", shape);
}

int collab_shapes_check(const json_t *shapes, const json_t *deleted, json_t *op, uint64_t offset,
                        const char *board, const collab_limits *l, char *err, size_t errlen) {
  const char *kind = json_string_value(json_object_get(op, "kind"));
  json_t *shape = json_object_get(op, "shape");
  const char *id = json_string_value(json_object_get(shape, "id"));
  char named[32];
  if (!kind || !json_is_object(shape)) return fail(err, errlen, "bad op: not normalized");
  if (!strcmp(kind, "add")) {
    if (!id) { /* named after its offset; "s<n>" can only clash with a client's own choice */
      snprintf(named, sizeof named, "s%llu", (unsigned long long)offset);
      id = named;
    }
    if (json_object_get(deleted, id)) return fail(err, errlen, "shape '%s' was deleted", id);
    if (json_object_get(shapes, id)) return fail(err, errlen, "shape '%s' already exists", id);
    if (json_object_size(shapes) >= l->max_shapes)
      return fail(err, errlen, "board '%s' is full: %zu shapes (--max-shapes)", board,
                  l->max_shapes);
    if (id == named) {
      /* The op shows the id first, like the others. */
      json_t *s = json_pack("{s:s}", "id", id);
      json_object_update(s, shape);
      json_object_set_new(op, "shape", s);
    }
    return 0;
  }
  if (!id) return fail(err, errlen, "bad op: not normalized");
  if (json_object_get(deleted, id)) return fail(err, errlen, "shape '%s' was deleted", id);
  if (!json_object_get(shapes, id))
    return fail(err, errlen, "no shape '%s' on board '%s'", id, board);
  return 0;
}

void collab_shapes_commit(json_t *shapes, json_t *deleted, const json_t *op, uint64_t offset,
                          const collab_limits *l) {
  const char *kind = json_string_value(json_object_get(op, "kind"));
  json_t *shape = json_object_get(op, "shape");
  const char *id = json_string_value(json_object_get(shape, "id"));
  if (!strcmp(kind, "add")) {
    json_object_set_new(shapes, id, json_deep_copy(shape));
  } else if (!strcmp(kind, "delete")) {
    /* Tombstones are bounded: past 4 x max_shapes the oldest goes (then "no shape"). */
    if (json_object_size(deleted) >= 4 * l->max_shapes) {
      void *it = json_object_iter(deleted);
      if (it) json_object_del(deleted, json_object_iter_key(it));
    }
    json_object_set_new(deleted, id, json_integer((json_int_t)offset));
    json_object_del(shapes, id);
  } else { /* move, update: last writer wins per field */
    json_object_update_existing(json_object_get(shapes, id), shape);
  }
}

int collab_shapes_apply(json_t *shapes, json_t *deleted, json_t *op, uint64_t offset,
                        const char *board, const collab_limits *l, char *err, size_t errlen) {
  if (collab_shapes_check(shapes, deleted, op, offset, board, l, err, errlen) < 0)
    return COLLAB_ERR;
  collab_shapes_commit(shapes, deleted, op, offset, l);
  return 0;
}
