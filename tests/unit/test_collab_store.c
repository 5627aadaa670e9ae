/*
 * collab-service's board engine (apps/collab-service/store.h) without sockets: op validation,
 * the in-memory engine's ordering, last writer wins, deleted shapes, history and HISTORY_GONE
 * bounds, snapshots, limits (shapes, boards, text, tombstones).
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

static collab_limits lim;

static int setup(void **state) {
  (void)state;
  collab_limits_default(&lim);
  return 0;
}

/* The op of `text` (JSON), parsed: NULL expects `error` in err. */
static json_t *op_of(const char *text, const char *error) {
  json_t *in = json_loads(text, 0, NULL);
  assert_non_null(in);
  char err[200] = "";
  json_t *op = collab_op_parse(in, &lim, err, sizeof err);
  json_decref(in);
  if (error) {
    assert_null(op);
    assert_string_equal(err, error);
  } else if (!op) {
    fail_msg("%s: %s", text, err);
  }
  return op;
}

static char *dump(const json_t *j) {
  return json_dumps(j, JSON_COMPACT);
}

static void assert_json(const json_t *j, const char *want) {
  char *s = dump(j);
  assert_string_equal(s, want);
  free(s);
}

/* Edits `text` on board b1: the offset, or COLLAB_ERR with `error`. */
static int64_t edit(collab_store *s, const char *text, const char *error) {
  json_t *op = op_of(text, NULL);
  char err[200] = "";
  int64_t off = s->ops->edit(s, "b1", op, "m1", err, sizeof err);
  json_decref(op);
  if (error) {
    assert_int_equal(off, COLLAB_ERR);
    assert_string_equal(err, error);
  } else if (off < 0) {
    fail_msg("%s: %s", text, err);
  }
  return off;
}

typedef struct items {
  char text[8][300];
  uint64_t off[8];
  int n;
} items;

static void collect(const char *json, size_t len, uint64_t offset, void *arg) {
  items *it = arg;
  assert_true(it->n < 8);
  snprintf(it->text[it->n], sizeof it->text[0], "%.*s", (int)len, json);
  it->off[it->n++] = offset;
}

static void test_op_parse(void **state) {
  (void)state;
  json_t *op =
      op_of("{\"kind\":\"add\",\"shape\":{\"x\":1,\"y\":2.5,\"text\":\"hi\",\"zz\":1}}", NULL);
  assert_json(op, "{\"kind\":\"add\",\"shape\":{\"x\":1,\"y\":2.5,\"text\":\"hi\",\"w\":160,"
                  "\"h\":120,\"color\":\"#ffd54f\"}}");
  json_decref(op);
  op = op_of("{\"kind\":\"move\",\"shape\":{\"id\":\"a\",\"x\":1,\"y\":2,\"text\":\"dropped\"}}",
             NULL);
  assert_json(op, "{\"kind\":\"move\",\"shape\":{\"id\":\"a\",\"x\":1,\"y\":2}}");
  json_decref(op);
  op = op_of("{\"kind\":\"delete\",\"shape\":{\"id\":\"a\",\"x\":1}}", NULL);
  assert_json(op, "{\"kind\":\"delete\",\"shape\":{\"id\":\"a\"}}");
  json_decref(op);

  op_of("{\"kind\":\"jump\",\"shape\":{}}",
        "bad op: 'kind' must be \"add\", \"move\", \"update\" or \"delete\"");
  op_of("{\"kind\":\"add\"}", "bad op: 'shape' must be an object");
  op_of("[]", "bad op: 'op' must be an object");
  op_of("{\"kind\":\"add\",\"shape\":{\"x\":1}}", "bad op: add needs 'x' and 'y'");
  op_of("{\"kind\":\"move\",\"shape\":{\"id\":\"a\",\"y\":1}}", "bad op: move needs 'x' and 'y'");
  op_of("{\"kind\":\"move\",\"shape\":{\"x\":1,\"y\":1}}",
        "bad op: 'shape.id' must be a string of 1 to 64 letters, digits, '.', '_', '-' or ':'");
  op_of("{\"kind\":\"delete\",\"shape\":{\"id\":\"a b\"}}",
        "bad op: 'shape.id' must be a string of 1 to 64 letters, digits, '.', '_', '-' or ':'");
  op_of("{\"kind\":\"update\",\"shape\":{\"id\":\"a\"}}",
        "bad op: update needs at least one of x, y, w, h, text, color");
  op_of("{\"kind\":\"update\",\"shape\":{\"id\":\"a\",\"x\":1e7}}",
        "bad op: 'x' must be a number from -1000000 to 1000000");
  op_of("{\"kind\":\"update\",\"shape\":{\"id\":\"a\",\"w\":0}}",
        "bad op: 'w' must be a number from 1 to 10000");
  op_of("{\"kind\":\"update\",\"shape\":{\"id\":\"a\",\"color\":\"\"}}",
        "bad op: 'color' must not be empty");
  op_of("{\"kind\":\"update\",\"shape\":{\"id\":\"a\",\"text\":7}}",
        "bad op: 'text' must be a string");
  lim.max_text = 3;
  op_of("{\"kind\":\"update\",\"shape\":{\"id\":\"a\",\"text\":\"four\"}}",
        "bad op: 'text' is longer than 3 bytes");
  json_decref(op_of("{\"kind\":\"update\",\"shape\":{\"id\":\"a\",\"text\":\"abc\"}}", NULL));
}

static void test_board_names(void **state) {
  (void)state;
  assert_true(collab_board_name_ok("b1"));
  assert_true(collab_board_name_ok("demo_board-2.v"));
  assert_false(collab_board_name_ok(""));
  assert_false(collab_board_name_ok(NULL));
  assert_false(collab_board_name_ok("a b"));
  assert_false(collab_board_name_ok("é"));
  char name[66];
  memset(name, 'a', 65);
  name[65] = 0;
  assert_false(collab_board_name_ok(name));
  name[64] = 0;
  assert_true(collab_board_name_ok(name));
}

/* Ops get offsets 1, 2, 3... in order; last writer wins per field; the log says who. */
static void test_edits_ordered(void **state) {
  (void)state;
  collab_store *s = collab_store_mem_new(&lim, "e1");
  assert_string_equal(s->ops->epoch(s), "e1");
  char err[200];
  assert_int_equal(s->ops->open(s, "b1", err, sizeof err), 0);
  assert_int_equal(edit(s, "{\"kind\":\"add\",\"shape\":{\"id\":\"n1\",\"x\":1,\"y\":2}}", NULL),
                   1);
  assert_int_equal(edit(s, "{\"kind\":\"add\",\"shape\":{\"x\":5,\"y\":6}}", NULL), 2);
  assert_int_equal(edit(s, "{\"kind\":\"move\",\"shape\":{\"id\":\"n1\",\"x\":10,\"y\":20}}", NULL),
                   3);
  assert_int_equal(
      edit(s, "{\"kind\":\"update\",\"shape\":{\"id\":\"n1\",\"x\":11,\"text\":\"t\"}}", NULL), 4);
  assert_int_equal(s->ops->head(s, "b1", COLLAB_LOG_OPS), 4);

  uint64_t off;
  json_t *shapes = s->ops->snapshot(s, "b1", &off);
  assert_int_equal(off, 4);
  assert_json(shapes, "[{\"id\":\"n1\",\"x\":11,\"y\":20,\"w\":160,\"h\":120,\"text\":\"t\","
                      "\"color\":\"#ffd54f\"},{\"id\":\"s2\",\"x\":5,\"y\":6,\"w\":160,\"h\":120,"
                      "\"text\":\"\",\"color\":\"#ffd54f\"}]");
  json_decref(shapes);

  items it = {0};
  assert_int_equal(s->ops->read(s, "b1", COLLAB_LOG_OPS, 1, 2, collect, &it), 2);
  assert_int_equal(it.off[0], 2);
  assert_string_equal(it.text[0], "{\"offset\":2,\"op\":{\"kind\":\"add\",\"shape\":{\"id\":\"s2\","
                                  "\"x\":5,\"y\":6,\"w\":160,\"h\":120,\"text\":\"\","
                                  "\"color\":\"#ffd54f\"}},\"by\":\"m1\"}");
  assert_string_equal(it.text[1],
                      "{\"offset\":3,\"op\":{\"kind\":\"move\",\"shape\":{\"id\":\"n1\","
                      "\"x\":10,\"y\":20}},\"by\":\"m1\"}");
  it.n = 0;
  assert_int_equal(s->ops->read(s, "b1", COLLAB_LOG_OPS, 4, 10, collect, &it), 0);
  /* An unknown board is empty at offset 0. */
  assert_int_equal(s->ops->read(s, "zz", COLLAB_LOG_OPS, 0, 10, collect, &it), 0);
  assert_int_equal(s->ops->read(s, "zz", COLLAB_LOG_OPS, 1, 10, collect, &it), COLLAB_GONE);
  shapes = s->ops->snapshot(s, "zz", &off);
  assert_int_equal(off, 0);
  assert_int_equal(json_array_size(shapes), 0);
  json_decref(shapes);
  s->ops->free(s);
}

/* Deleted shapes stay deleted: no edit, no re-add of the id; unknown ids are told apart. */
static void test_deleted_shapes(void **state) {
  (void)state;
  lim.max_shapes = 2; /* tombstones: 8 */
  collab_store *s = collab_store_mem_new(&lim, "e");
  char err[200];
  s->ops->open(s, "b1", err, sizeof err);
  edit(s, "{\"kind\":\"add\",\"shape\":{\"id\":\"a\",\"x\":1,\"y\":2}}", NULL);
  edit(s, "{\"kind\":\"delete\",\"shape\":{\"id\":\"a\"}}", NULL);
  edit(s, "{\"kind\":\"move\",\"shape\":{\"id\":\"a\",\"x\":1,\"y\":2}}", "shape 'a' was deleted");
  edit(s, "{\"kind\":\"update\",\"shape\":{\"id\":\"a\",\"text\":\"x\"}}", "shape 'a' was deleted");
  edit(s, "{\"kind\":\"delete\",\"shape\":{\"id\":\"a\"}}", "shape 'a' was deleted");
  edit(s, "{\"kind\":\"add\",\"shape\":{\"id\":\"a\",\"x\":1,\"y\":2}}", "shape 'a' was deleted");
  edit(s, "{\"kind\":\"move\",\"shape\":{\"id\":\"q\",\"x\":1,\"y\":2}}",
       "no shape 'q' on board 'b1'");
  edit(s, "{\"kind\":\"add\",\"shape\":{\"id\":\"b\",\"x\":1,\"y\":2}}", NULL);
  edit(s, "{\"kind\":\"add\",\"shape\":{\"id\":\"b\",\"x\":1,\"y\":2}}",
       "shape 'b' already exists");
  edit(s, "{\"kind\":\"add\",\"shape\":{\"x\":1,\"y\":2}}", NULL);
  edit(s, "{\"kind\":\"add\",\"shape\":{\"x\":1,\"y\":2}}",
       "board 'b1' is full: 2 shapes (--max-shapes)");
  /* Refused edits took no offset. */
  assert_int_equal(s->ops->head(s, "b1", COLLAB_LOG_OPS), 4);
  /* Tombstones are bounded (4 x max_shapes): the oldest goes first. */
  char text[200];
  edit(s, "{\"kind\":\"delete\",\"shape\":{\"id\":\"b\"}}", NULL);
  edit(s, "{\"kind\":\"delete\",\"shape\":{\"id\":\"s4\"}}", NULL);
  for (int i = 0; i < 8; i++) { /* 3 + 8 tombstones: a, b and s4 go */
    snprintf(text, sizeof text, "{\"kind\":\"add\",\"shape\":{\"id\":\"t%d\",\"x\":1,\"y\":2}}", i);
    edit(s, text, NULL);
    snprintf(text, sizeof text, "{\"kind\":\"delete\",\"shape\":{\"id\":\"t%d\"}}", i);
    edit(s, text, NULL);
  }
  edit(s, "{\"kind\":\"delete\",\"shape\":{\"id\":\"s4\"}}", "no shape 's4' on board 'b1'");
  edit(s, "{\"kind\":\"delete\",\"shape\":{\"id\":\"t0\"}}", "shape 't0' was deleted");
  edit(s, "{\"kind\":\"delete\",\"shape\":{\"id\":\"a\"}}", "no shape 'a' on board 'b1'");
  edit(s, "{\"kind\":\"delete\",\"shape\":{\"id\":\"t7\"}}", "shape 't7' was deleted");
  s->ops->free(s);
}

/* History: the last N items per log; older or future offsets are GONE. */
static void test_history_bounds(void **state) {
  (void)state;
  lim.history = 3;
  collab_store *s = collab_store_mem_new(&lim, "e");
  char err[200];
  s->ops->open(s, "b1", err, sizeof err);
  edit(s, "{\"kind\":\"add\",\"shape\":{\"id\":\"a\",\"x\":0,\"y\":0}}", NULL);
  for (int i = 1; i <= 6; i++) {
    char text[100];
    snprintf(text, sizeof text, "{\"kind\":\"move\",\"shape\":{\"id\":\"a\",\"x\":%d,\"y\":0}}", i);
    edit(s, text, NULL);
  }
  items it = {0};
  assert_int_equal(s->ops->read(s, "b1", COLLAB_LOG_OPS, 3, 10, collect, &it), COLLAB_GONE);
  assert_int_equal(s->ops->read(s, "b1", COLLAB_LOG_OPS, 4, 10, collect, &it), 3);
  assert_int_equal(it.off[0], 5);
  assert_int_equal(it.off[2], 7);
  assert_int_equal(s->ops->read(s, "b1", COLLAB_LOG_OPS, 7, 10, collect, &it), 0);
  assert_int_equal(s->ops->read(s, "b1", COLLAB_LOG_OPS, 8, 10, collect, &it), COLLAB_GONE);

  /* The chat log has its own offsets and the same bound. */
  for (int i = 0; i < 4; i++) {
    json_t *msg = json_pack("{s:i,s:s}", "offset", 0, "text", "hi");
    assert_int_equal(s->ops->append(s, "b1", COLLAB_LOG_CHAT, msg, err, sizeof err), i + 1);
    json_decref(msg);
  }
  it.n = 0;
  assert_int_equal(s->ops->read(s, "b1", COLLAB_LOG_CHAT, 1, 10, collect, &it), 3);
  assert_string_equal(it.text[0], "{\"offset\":2,\"text\":\"hi\"}");
  assert_int_equal(s->ops->read(s, "b1", COLLAB_LOG_CHAT, 0, 10, collect, &it), COLLAB_GONE);
  json_t *msg = json_object();
  assert_int_equal(s->ops->append(s, "nope", COLLAB_LOG_CHAT, msg, err, sizeof err), COLLAB_ERR);
  assert_string_equal(err, "board 'nope' is not open");
  json_decref(msg);
  s->ops->free(s);
}

static void test_board_limit(void **state) {
  (void)state;
  lim.max_boards = 2;
  collab_store *s = collab_store_mem_new(&lim, NULL);
  assert_string_equal(s->ops->epoch(s), "0");
  char err[200] = "";
  assert_int_equal(s->ops->open(s, "a", err, sizeof err), 0);
  assert_int_equal(s->ops->open(s, "b", err, sizeof err), 0);
  assert_int_equal(s->ops->open(s, "a", err, sizeof err), 0); /* already there */
  assert_int_equal(s->ops->open(s, "c", err, sizeof err), COLLAB_ERR);
  assert_string_equal(err, "too many boards: 2 (--max-boards)");
  json_t *op = op_of("{\"kind\":\"add\",\"shape\":{\"x\":1,\"y\":2}}", NULL);
  assert_int_equal(s->ops->edit(s, "c", op, "m1", err, sizeof err), COLLAB_ERR);
  assert_string_equal(err, "board 'c' is not open");
  json_decref(op);
  s->ops->free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_op_parse, setup),
      cmocka_unit_test_setup(test_board_names, setup),
      cmocka_unit_test_setup(test_edits_ordered, setup),
      cmocka_unit_test_setup(test_deleted_shapes, setup),
      cmocka_unit_test_setup(test_history_bounds, setup),
      cmocka_unit_test_setup(test_board_limit, setup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
