/*
 * collab-service's board engines (apps/collab-service/store.h) without the service: op
 * validation; then the same cases on the in-memory engine and on the Redis engine (ordering,
 * last writer wins, deleted shapes, history and HISTORY_GONE bounds, snapshots, limits); then
 * what only Redis does: two instances editing one board at once (one order, no offset twice),
 * an instance that loads a board later, catching up after missed events and loading again when
 * the history needed is gone, the epoch changing when Redis loses its data, presence across
 * instances with expiry (a dead instance's members go), cursors relayed, a flushed script
 * cache, and Redis going away and coming back.
 *
 * The Redis cases start a redis-server of their own on a free loopback port (persistence off,
 * a scratch directory) and are skipped, saying so, when there is no redis-server.
 */
#include "testutil.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>
#include <uv.h>

#include "store.h"
#include "redis_link.h"
#include "store_redis.h"

static collab_limits lim;
/* Each test's own loop: one that fails leaves its stores behind, on a loop nobody runs again. */
static uv_loop_t *loop;

/* ---- the redis-server of the Redis cases ---- */

static int redis_port;
static pid_t redis_pid;
static char redis_dir[64], redis_url[64];
static int prefixes;

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  close(fd);
  return ntohs(a.sin_port);
}

static redisContext *raw(void) {
  struct timeval tv = {2, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
  if (c && c->err) {
    redisFree(c);
    return NULL;
  }
  return c;
}

/* Starts redis-server on redis_port: true once it answers (5 s at most). */
static bool redis_start(void) {
  char port[16];
  snprintf(port, sizeof port, "%d", redis_port);
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* not left behind by a test that crashes */
    if (!freopen("/dev/null", "w", stdout)) _exit(127);
    execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", "--dir", redis_dir, (char *)NULL);
    _exit(127);
  }
  if (pid < 0) return false;
  redis_pid = pid;
  for (int i = 0; i < 100; i++) {
    redisContext *c = raw();
    if (c) {
      redisFree(c);
      return true;
    }
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) break; /* exec failed or the port was taken */
    usleep(50000);
  }
  redis_pid = 0;
  return false;
}

static void redis_stop(void) {
  if (!redis_pid) return;
  kill(redis_pid, SIGKILL);
  waitpid(redis_pid, NULL, 0);
  redis_pid = 0;
}

static int group_setup(void **state) {
  (void)state;
  snprintf(redis_dir, sizeof redis_dir, "/tmp/test_collab_store.XXXXXX");
  if (!mkdtemp(redis_dir) || (redis_port = free_port()) < 0 || !redis_start()) {
    fprintf(stderr, "test_collab_store: no redis-server (the Debian package redis-server, "
                    "scripts/deps test): the Redis engine's cases are skipped\n");
    redis_port = 0;
    return 0;
  }
  snprintf(redis_url, sizeof redis_url, "redis://127.0.0.1:%d", redis_port);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  redis_stop();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", redis_dir);
  if (system(cmd) != 0) return -1;
  return 0;
}

/* ---- driving the loop ---- */

/* Runs the loop until *flag, failing the test after 10 s. */
static void run_until(const bool *flag) {
  uint64_t deadline = uv_hrtime() + 10000000000ull;
  while (!*flag) {
    if (uv_hrtime() > deadline) fail_msg("timed out");
    uv_run(loop, UV_RUN_NOWAIT);
    if (!*flag) usleep(1000);
  }
}

/* Runs the loop for `ms`. */
static void run_for(unsigned ms) {
  uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000u;
  while (uv_hrtime() < end) {
    uv_run(loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
}

/* What a store told its user. */
typedef struct seen_events {
  int items, resets, members, cursors, lefts;
  char cursor_id[24], left_id[24];
  double x, y;
} seen_events;

static void ev_items(const char *b, collab_log l, void *u) {
  (void)b, (void)l;
  ((seen_events *)u)->items++;
}
static void ev_reset(void *u) {
  ((seen_events *)u)->resets++;
}
static void ev_members(const char *b, void *u) {
  (void)b;
  ((seen_events *)u)->members++;
}
static void ev_left(const char *b, const char *id, void *u) {
  (void)b;
  seen_events *e = u;
  e->lefts++;
  snprintf(e->left_id, sizeof e->left_id, "%s", id);
}
static void ev_cursor(const char *b, const char *id, double x, double y, void *u) {
  (void)b;
  seen_events *e = u;
  e->cursors++;
  snprintf(e->cursor_id, sizeof e->cursor_id, "%s", id);
  e->x = x, e->y = y;
}

static void quiet(const char *line, void *user) {
  (void)line, (void)user;
}

static void listen_to(collab_store *s, seen_events *e) {
  memset(e, 0, sizeof *e);
  s->events = (collab_events){ev_items, ev_reset, ev_members, ev_left, ev_cursor, e};
}

/* ---- the engines ---- */

typedef struct engine {
  const char *name;
  bool redis;
} engine;
static engine mem_engine = {"memory", false}, redis_engine = {"redis", true};

static void skip_without_redis(void) {
  if (!redis_port) {
    print_message("no redis-server: skipped\n");
    skip();
  }
}

/* A Redis store on a new prefix (each test its own boards) or on `prefix`, connected. */
static collab_store *redis_store(const char *prefix, const char *url) {
  char own[32];
  if (!prefix) snprintf(own, sizeof own, "t%d:", ++prefixes), prefix = own;
  collab_redis_options o;
  collab_redis_options_default(&o);
  o.url = url ? url : redis_url;
  o.prefix = prefix;
  o.presence_ttl_ms = 600;
  o.refresh_ms = 150;
  o.timeout_ms = 2000;
  o.backoff_ms = 20;
  o.max_backoff_ms = 200;
  o.log = quiet;
  char err[200];
  collab_store *s = collab_store_redis_new(&lim, loop, &o, err, sizeof err);
  if (!s) fail_msg("%s", err);
  return s;
}

static bool ready_flag(collab_store *s) {
  return collab_store_redis_ready(s);
}

static void wait_ready(collab_store *s) {
  uint64_t deadline = uv_hrtime() + 10000000000ull;
  while (!ready_flag(s)) {
    if (uv_hrtime() > deadline) fail_msg("the Redis engine never connected");
    uv_run(loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
}

static collab_store *make(void **state, const char *epoch) {
  engine *e = *state;
  if (!e->redis) return collab_store_mem_new(&lim, epoch);
  skip_without_redis();
  collab_store *s = redis_store(NULL, NULL);
  wait_ready(s);
  return s;
}

/* Frees stores (closing the Redis ones and letting the loop close their handles). */
static void drop(collab_store *s) {
  if (s->ops->close) {
    s->ops->close(s);
    run_for(20);
  }
  s->ops->free(s);
}

/* ---- the calls, waited for ---- */

typedef struct waiter {
  bool done;
  collab_result r;
  char err[400];
} waiter;

static void on_done(const collab_result *r, void *arg) {
  waiter *w = arg;
  w->r = *r;
  snprintf(w->err, sizeof w->err, "%s", r->err ? r->err : "");
  w->r.err = w->err;
  w->done = true;
}

static int64_t open_board(collab_store *s, const char *board, char *err, size_t errlen) {
  waiter w = {0};
  s->ops->open(s, board, false, on_done, &w);
  run_until(&w.done);
  if (errlen) snprintf(err, errlen, "%s", w.err);
  return w.r.value;
}

static int64_t append_to(collab_store *s, const char *board, json_t *item, char *err,
                         size_t errlen) {
  waiter w = {0};
  s->ops->append(s, board, COLLAB_LOG_CHAT, item, on_done, &w);
  run_until(&w.done);
  if (errlen) snprintf(err, errlen, "%s", w.err);
  return w.r.value;
}

static int setup(void **state) {
  (void)state;
  collab_limits_default(&lim);
  loop = malloc(sizeof *loop);
  return loop && uv_loop_init(loop) == 0 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  if (uv_loop_close(loop) == 0) free(loop); /* else a failed test's: left alone */
  loop = NULL;
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

/* Edits `text` on `board` as m1: the offset, or COLLAB_ERR with `error`. */
static int64_t edit_on(collab_store *s, const char *board, const char *text, const char *error) {
  json_t *op = op_of(text, NULL);
  waiter w = {0};
  s->ops->edit(s, board, op, "m1", on_done, &w);
  run_until(&w.done);
  json_decref(op);
  if (error) {
    assert_int_equal(w.r.value, COLLAB_ERR);
    assert_string_equal(w.err, error);
  } else if (w.r.value < 0) {
    fail_msg("%s: %s", text, w.err);
  }
  return w.r.value;
}

static int64_t edit(collab_store *s, const char *text, const char *error) {
  return edit_on(s, "b1", text, error);
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

/* ---- the same cases on every engine ---- */

/* Ops get offsets 1, 2, 3... in order; last writer wins per field; the log says who. */
static void test_edits_ordered(void **state) {
  collab_store *s = make(state, "e1");
  if (!((engine *)*state)->redis) assert_string_equal(s->ops->epoch(s), "e1");
  assert_int_equal(strlen(s->ops->epoch(s)) > 0, 1);
  char err[200];
  assert_int_equal(open_board(s, "b1", err, sizeof err), 0);
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
  assert_int_equal(s->ops->oldest(s, "zz", COLLAB_LOG_OPS), 1);
  shapes = s->ops->snapshot(s, "zz", &off);
  assert_int_equal(off, 0);
  assert_int_equal(json_array_size(shapes), 0);
  json_decref(shapes);
  drop(s);
}

/* Deleted shapes stay deleted: no edit, no re-add of the id; unknown ids are told apart. */
static void test_deleted_shapes(void **state) {
  lim.max_shapes = 2; /* tombstones: 8 */
  collab_store *s = make(state, "e");
  char err[200];
  open_board(s, "b1", err, sizeof err);
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
  drop(s);
}

/* History: the last N items per log; older or future offsets are GONE. */
static void test_history_bounds(void **state) {
  lim.history = 3;
  collab_store *s = make(state, "e");
  char err[200];
  open_board(s, "b1", err, sizeof err);
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
  assert_int_equal(s->ops->oldest(s, "b1", COLLAB_LOG_OPS), 5);

  /* The chat log has its own offsets and the same bound. */
  for (int i = 0; i < 4; i++) {
    json_t *msg = json_pack("{s:i,s:s}", "offset", 0, "text", "hi");
    assert_int_equal(append_to(s, "b1", msg, err, sizeof err), i + 1);
    json_decref(msg);
  }
  it.n = 0;
  assert_int_equal(s->ops->read(s, "b1", COLLAB_LOG_CHAT, 1, 10, collect, &it), 3);
  assert_string_equal(it.text[0], "{\"offset\":2,\"text\":\"hi\"}");
  assert_int_equal(s->ops->read(s, "b1", COLLAB_LOG_CHAT, 0, 10, collect, &it), COLLAB_GONE);
  json_t *msg = json_object();
  assert_int_equal(append_to(s, "nope", msg, err, sizeof err), COLLAB_ERR);
  assert_string_equal(err, "board 'nope' is not open");
  json_decref(msg);
  drop(s);
}

static void test_board_limit(void **state) {
  lim.max_boards = 2;
  collab_store *s = make(state, NULL);
  if (!((engine *)*state)->redis) assert_string_equal(s->ops->epoch(s), "0");
  char err[200] = "";
  assert_int_equal(open_board(s, "a", err, sizeof err), 0);
  assert_int_equal(open_board(s, "b", err, sizeof err), 0);
  assert_int_equal(open_board(s, "a", err, sizeof err), 0); /* already there */
  assert_int_equal(open_board(s, "c", err, sizeof err), COLLAB_ERR);
  assert_string_equal(err, "too many boards: 2 (--max-boards)");
  edit_on(s, "c", "{\"kind\":\"add\",\"shape\":{\"x\":1,\"y\":2}}", "board 'c' is not open");
  drop(s);
}

/* Opening with a session's new member draws member numbers and counts the board's joins. */
static void test_members(void **state) {
  collab_store *s = make(state, "e");
  waiter w = {0};
  s->ops->open(s, "b1", "s1", on_done, &w);
  run_until(&w.done);
  assert_int_equal(w.r.value, 0);
  assert_int_equal(w.r.member, 1);
  assert_int_equal(w.r.joins, 0);
  w.done = false;
  s->ops->open(s, "b2", "s2", on_done, &w);
  run_until(&w.done);
  assert_int_equal(w.r.member, 2);
  assert_int_equal(w.r.joins, 0);
  w.done = false;
  s->ops->open(s, "b1", "s3", on_done, &w);
  run_until(&w.done);
  assert_int_equal(w.r.member, 3);
  assert_int_equal(w.r.joins, 1);
  drop(s);
}

/* ---- what only the Redis engine does ---- */

static void until_head(collab_store *s, const char *board, collab_log log, uint64_t n) {
  uint64_t deadline = uv_hrtime() + 10000000000ull;
  while (s->ops->head(s, board, log) < n) {
    if (uv_hrtime() > deadline)
      fail_msg("head of %s stays at %llu, not %llu", board,
               (unsigned long long)s->ops->head(s, board, log), (unsigned long long)n);
    uv_run(loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
}

/* A snapshot as {id: shape}: instances that loaded a board list its shapes in another order. */
static json_t *shapes_by_id(collab_store *s, const char *board, uint64_t *off) {
  json_t *a = s->ops->snapshot(s, board, off), *o = json_object();
  for (size_t i = 0; i < json_array_size(a); i++) {
    json_t *sh = json_array_get(a, i);
    json_object_set(o, json_string_value(json_object_get(sh, "id")), sh);
  }
  json_decref(a);
  return o;
}

static void append_text(const char *json, size_t len, uint64_t offset, void *arg) {
  (void)offset;
  json_t *a = arg;
  json_array_append_new(a, json_stringn(json, len));
}

/* Every item of a log the replica keeps, as text. */
static json_t *log_of(collab_store *s, const char *board, collab_log log) {
  json_t *a = json_array();
  uint64_t from = s->ops->oldest(s, board, log) - 1;
  assert_true(s->ops->read(s, board, log, from, 100000, append_text, a) >= 0);
  return a;
}

static void assert_same_board(collab_store *a, collab_store *b, const char *board) {
  uint64_t oa, ob;
  json_t *sa = shapes_by_id(a, board, &oa), *sb = shapes_by_id(b, board, &ob);
  assert_int_equal(oa, ob);
  assert_true(json_equal(sa, sb));
  json_decref(sa), json_decref(sb);
  for (int l = 0; l < 2; l++) {
    json_t *la = log_of(a, board, (collab_log)l), *lb = log_of(b, board, (collab_log)l);
    assert_true(json_equal(la, lb));
    json_decref(la), json_decref(lb);
  }
}

static collab_store *second(const char *prefix) {
  collab_store *s = redis_store(prefix, NULL);
  wait_ready(s);
  return s;
}

/*
 * Two instances edit one board at once, without waiting for each other: every edit gets an
 * offset, no offset twice, and both replicas end the same, in the same order. A third instance
 * loads the board afterwards and has it too.
 */
static void test_two_instances(void **state) {
  (void)state;
  skip_without_redis();
  char prefix[32];
  snprintf(prefix, sizeof prefix, "t%d:", ++prefixes);
  collab_store *a = second(prefix), *b = second(prefix);
  assert_string_equal(a->ops->epoch(a), b->ops->epoch(b));
  char err[200];
  assert_int_equal(open_board(a, "b1", err, sizeof err), 0);
  assert_int_equal(open_board(b, "b1", err, sizeof err), 0);
  edit_on(a, "b1", "{\"kind\":\"add\",\"shape\":{\"id\":\"n1\",\"x\":0,\"y\":0}}", NULL);
  until_head(b, "b1", COLLAB_LOG_OPS, 1);

  enum { N = 30 };
  waiter wa[N] = {{0}}, wb[N] = {{0}};
  json_t *ops[2 * N];
  for (int i = 0; i < N; i++) {
    char text[200];
    snprintf(text, sizeof text, "{\"kind\":\"move\",\"shape\":{\"id\":\"n1\",\"x\":%d,\"y\":1}}",
             i);
    ops[i] = op_of(text, NULL);
    /* Adds without an id are named after the offset they get, whoever wins. */
    snprintf(text, sizeof text, "{\"kind\":\"%s\",\"shape\":{%s\"x\":%d,\"y\":2,\"text\":\"b\"}}",
             i % 3 ? "update" : "add", i % 3 ? "\"id\":\"n1\"," : "", i);
    ops[N + i] = op_of(text, NULL);
    a->ops->edit(a, "b1", ops[i], "ma", on_done, &wa[i]);
    b->ops->edit(b, "b1", ops[N + i], "mb", on_done, &wb[i]);
  }
  bool seen[2 * N + 2] = {false};
  for (int i = 0; i < N; i++) {
    run_until(&wa[i].done);
    run_until(&wb[i].done);
    for (int k = 0; k < 2; k++) {
      waiter *w = k ? &wb[i] : &wa[i];
      if (w->r.value < 0) fail_msg("edit refused: %s", w->err);
      assert_true(w->r.value >= 2 && w->r.value <= 2 * N + 1);
      assert_false(seen[w->r.value]); /* never the same offset twice */
      seen[w->r.value] = true;
    }
    if (i % 3 == 0) { /* the name is the offset it got */
      char want[32];
      snprintf(want, sizeof want, "s%lld", (long long)wb[i].r.value);
      assert_string_equal(
          json_string_value(json_object_get(json_object_get(ops[N + i], "shape"), "id")), want);
    }
  }
  for (int i = 0; i < 2 * N; i++) json_decref(ops[i]);
  until_head(a, "b1", COLLAB_LOG_OPS, 2 * N + 1);
  until_head(b, "b1", COLLAB_LOG_OPS, 2 * N + 1);
  assert_same_board(a, b, "b1");

  json_t *msg = json_pack("{s:i,s:s}", "offset", 0, "text", "hello");
  assert_int_equal(append_to(b, "b1", msg, err, sizeof err), 1);
  json_decref(msg);
  until_head(a, "b1", COLLAB_LOG_CHAT, 1);

  collab_store *c = second(prefix);
  assert_int_equal(open_board(c, "b1", err, sizeof err), 0);
  assert_same_board(a, c, "b1");
  drop(a), drop(b), drop(c);
}

/* Runs a command on the test's own connection to Redis. */
static void raw_cmd(redisContext *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *reply = redisvCommand(r, fmt, ap);
  va_end(ap);
  if (!reply || reply->type == REDIS_REPLY_ERROR)
    fail_msg("redis: %s", reply ? reply->str : r->errstr);
  freeReplyObject(reply);
}

/* Another writer's move of n1 to x = off, written into Redis as the edit script does. */
static void raw_move(redisContext *r, const char *prefix, int off, bool publish) {
  char item[200], shape[200];
  snprintf(item, sizeof item,
           "{\"offset\":%d,\"op\":{\"kind\":\"move\",\"shape\":{\"id\":\"n1\",\"x\":%d,\"y\":0}},"
           "\"by\":\"mx\"}",
           off, off);
  snprintf(shape, sizeof shape,
           "{\"id\":\"n1\",\"x\":%d,\"y\":0,\"w\":160,\"h\":120,\"text\":\"\",\"color\":"
           "\"#ffd54f\"}",
           off);
  raw_cmd(r, "XADD %sb:b1:ops MAXLEN 3 %d-0 j %s", prefix, off, item);
  raw_cmd(r, "HSET %sb:b1:shapes n1 %s", prefix, shape);
  raw_cmd(r, "HSET %sb:b1:meta ops %d", prefix, off);
  char msg[260];
  snprintf(msg, sizeof msg, "o%d %s", off, item);
  if (publish) raw_cmd(r, "PUBLISH %sev:b1 %s", prefix, msg);
}

static double x_of(collab_store *s) {
  uint64_t off;
  json_t *o = shapes_by_id(s, "b1", &off);
  double x = json_number_value(json_object_get(json_object_get(o, "n1"), "x"));
  json_decref(o);
  return x;
}

static int64_t sync_to(collab_store *s, const char *board, uint64_t offset) {
  waiter w = {0};
  s->ops->sync(s, board, COLLAB_LOG_OPS, offset, on_done, &w);
  run_until(&w.done);
  return w.r.value;
}

/*
 * A subscriber's `from` ahead of this instance's replica (it saw the board through another
 * instance, whose items this one has not received yet): sync catches the replica up from Redis,
 * and only an offset Redis never had is GONE. It checks the epoch first: one this instance has
 * not heard of yet is taken (events.reset) before it answers.
 */
static void test_lagging_replica(void **state) {
  (void)state;
  skip_without_redis();
  char prefix[32], err[200];
  snprintf(prefix, sizeof prefix, "t%d:", ++prefixes);
  collab_store *a = second(prefix);
  seen_events ea;
  listen_to(a, &ea);
  assert_int_equal(open_board(a, "b1", err, sizeof err), 0);
  edit_on(a, "b1", "{\"kind\":\"add\",\"shape\":{\"id\":\"n1\",\"x\":0,\"y\":0}}", NULL);
  redisContext *r = raw();
  assert_non_null(r);
  raw_move(r, prefix, 2, false); /* written by another instance, not announced yet */
  raw_move(r, prefix, 3, false);
  run_for(20);
  assert_int_equal(a->ops->head(a, "b1", COLLAB_LOG_OPS), 1);
  assert_int_equal(a->ops->read(a, "b1", COLLAB_LOG_OPS, 3, 0, NULL, NULL), COLLAB_GONE);
  assert_int_equal(sync_to(a, "b1", 3), 0);
  assert_int_equal(a->ops->head(a, "b1", COLLAB_LOG_OPS), 3);
  assert_true(x_of(a) == 3);
  assert_int_equal(a->ops->read(a, "b1", COLLAB_LOG_OPS, 3, 0, NULL, NULL), 0);
  assert_int_equal(sync_to(a, "b1", 9), COLLAB_GONE); /* beyond Redis' head */
  assert_int_equal(sync_to(a, "b1", 2), 0);           /* already there */
  assert_int_equal(ea.resets, 0);
  /* Another epoch in Redis that this instance has not noticed yet: taken before the answer. */
  raw_cmd(r, "SET %sepoch e2", prefix);
  assert_int_equal(sync_to(a, "b1", 3), 0);
  assert_string_equal(a->ops->epoch(a), "e2");
  assert_int_equal(ea.resets, 1);
  redisFree(r);
  drop(a);
}

/* An event that comes after missed ones: the replica catches up from the log, or, when what
 * it missed is older than the history kept, loads the board again. */
static void test_catch_up(void **state) {
  (void)state;
  skip_without_redis();
  lim.history = 3;
  char prefix[32], err[200];
  snprintf(prefix, sizeof prefix, "t%d:", ++prefixes);
  collab_store *a = second(prefix);
  assert_int_equal(open_board(a, "b1", err, sizeof err), 0);
  edit_on(a, "b1", "{\"kind\":\"add\",\"shape\":{\"id\":\"n1\",\"x\":0,\"y\":0}}", NULL);
  redisContext *r = raw();
  assert_non_null(r);
  /* 2..3 unannounced, 4 announced: a gap the log still has. */
  raw_move(r, prefix, 2, false);
  raw_move(r, prefix, 3, false);
  raw_move(r, prefix, 4, true);
  until_head(a, "b1", COLLAB_LOG_OPS, 4);
  assert_true(x_of(a) == 4);
  assert_int_equal(a->ops->oldest(a, "b1", COLLAB_LOG_OPS), 2);
  /* 5..9 unannounced, 10 announced: 5..7 are gone from the log, the board is loaded again. */
  for (int i = 5; i <= 10; i++) raw_move(r, prefix, i, i == 10);
  until_head(a, "b1", COLLAB_LOG_OPS, 10);
  assert_true(x_of(a) == 10);
  assert_int_equal(a->ops->oldest(a, "b1", COLLAB_LOG_OPS), 8);
  items it = {0};
  assert_int_equal(a->ops->read(a, "b1", COLLAB_LOG_OPS, 7, 10, collect, &it), 3);
  assert_int_equal(it.off[0], 8);
  /* And its own edits go on from there. */
  assert_int_equal(
      edit_on(a, "b1", "{\"kind\":\"move\",\"shape\":{\"id\":\"n1\",\"x\":11,\"y\":0}}", NULL), 11);
  redisFree(r);
  drop(a);
}

/* The events connections are cut: the instances reconnect and catch up with what was written
 * meanwhile (a write that meets the reconnection is refused: the client sends it again). */
static void test_reconnect(void **state) {
  (void)state;
  skip_without_redis();
  char prefix[32], err[200];
  snprintf(prefix, sizeof prefix, "t%d:", ++prefixes);
  collab_store *a = second(prefix), *b = second(prefix);
  open_board(a, "b1", err, sizeof err);
  open_board(b, "b1", err, sizeof err);
  edit_on(a, "b1", "{\"kind\":\"add\",\"shape\":{\"id\":\"n1\",\"x\":0,\"y\":0}}", NULL);
  until_head(b, "b1", COLLAB_LOG_OPS, 1);
  redisContext *r = raw();
  raw_cmd(r, "CLIENT KILL TYPE pubsub");
  redisFree(r);
  int done = 0;
  for (int i = 0; i < 500 && done < 5; i++) {
    json_t *op = op_of("{\"kind\":\"move\",\"shape\":{\"id\":\"n1\",\"x\":1,\"y\":2}}", NULL);
    waiter w = {0};
    a->ops->edit(a, "b1", op, "m1", on_done, &w);
    run_until(&w.done);
    json_decref(op);
    if (w.r.value > 0)
      done++;
    else
      run_for(10);
  }
  assert_int_equal(done, 5);
  until_head(b, "b1", COLLAB_LOG_OPS, 6);
  assert_same_board(a, b, "b1");
  drop(a), drop(b);
}

/* Redis loses its data: the instances take the new epoch, drop their replicas and say so. */
static void test_epoch_reset(void **state) {
  (void)state;
  skip_without_redis();
  char prefix[32], err[200];
  snprintf(prefix, sizeof prefix, "t%d:", ++prefixes);
  collab_store *a = second(prefix), *b = second(prefix);
  seen_events ea, eb;
  listen_to(a, &ea), listen_to(b, &eb);
  open_board(a, "b1", err, sizeof err);
  open_board(b, "b1", err, sizeof err);
  edit_on(a, "b1", "{\"kind\":\"add\",\"shape\":{\"id\":\"n1\",\"x\":0,\"y\":0}}", NULL);
  until_head(b, "b1", COLLAB_LOG_OPS, 1);
  char old[80];
  snprintf(old, sizeof old, "%s", a->ops->epoch(a));
  redisContext *r = raw();
  raw_cmd(r, "FLUSHALL");
  redisFree(r);
  /* The next write finds no epoch: the instance reconnects, makes a new one, and the board is
   * empty on it (the write may meet the reconnection: then it is refused, and tried again). */
  int64_t off = COLLAB_ERR;
  for (int i = 0; i < 100 && off < 0; i++) {
    json_t *op = op_of("{\"kind\":\"add\",\"shape\":{\"id\":\"n2\",\"x\":0,\"y\":0}}", NULL);
    waiter w = {0};
    a->ops->edit(a, "b1", op, "m1", on_done, &w);
    run_until(&w.done);
    json_decref(op);
    off = w.r.value;
    if (off < 0) {
      assert_true(!strncmp(w.err, "storage unavailable: ", 21));
      run_for(50);
    }
  }
  assert_int_equal(off, 1);
  assert_string_not_equal(a->ops->epoch(a), old);
  assert_int_equal(ea.resets, 1);
  /* The other instance notices too (its epoch check, every refresh). */
  uint64_t deadline = uv_hrtime() + 10000000000ull;
  while (eb.resets == 0 && uv_hrtime() < deadline) run_for(10);
  assert_int_equal(eb.resets, 1);
  assert_string_equal(b->ops->epoch(b), a->ops->epoch(a));
  assert_int_equal(b->ops->head(b, "b1", COLLAB_LOG_OPS), 0); /* its replica is gone */
  assert_int_equal(open_board(b, "b1", err, sizeof err), 0);
  assert_int_equal(b->ops->head(b, "b1", COLLAB_LOG_OPS), 1);
  drop(a), drop(b);
}

static bool has_member(collab_store *s, const char *id) {
  const json_t *o = s->ops->others(s, "b1");
  for (size_t i = 0; i < json_array_size(o); i++)
    if (!strcmp(json_string_value(json_object_get(json_array_get(o, i), "id")), id)) return true;
  return false;
}

static void until_member(collab_store *s, const char *id, bool present) {
  uint64_t deadline = uv_hrtime() + 10000000000ull;
  while (has_member(s, id) != present) {
    if (uv_hrtime() > deadline) fail_msg("member %s never %s", id, present ? "came" : "left");
    run_for(5);
  }
}

/* Holds member `id` (session "s-<id>"). */
static void put(collab_store *s, const char *id, const char *name, int n) {
  char session[32];
  snprintf(session, sizeof session, "s-%s", id);
  json_t *m = json_pack("{s:s,s:s,s:s,s:i,s:s}", "id", id, "name", name, "color", "#e91e63", "n", n,
                        "s", session);
  s->ops->member_put(s, "b1", m, NULL, NULL);
  json_decref(m);
}

/*
 * Members across instances: every instance sees every member; the member of a session is found
 * (and kept: the same member when the session joins through another instance); one that leaves
 * the board goes from every instance, one an instance lets go stays while another holds it, a
 * dead instance's go after the expiry; cursors reach the other instances, not the sender.
 */
static void test_presence(void **state) {
  (void)state;
  skip_without_redis();
  char prefix[32], err[200];
  snprintf(prefix, sizeof prefix, "t%d:", ++prefixes);
  collab_store *a = second(prefix), *b = second(prefix), *c = second(prefix);
  seen_events ea, eb, ec;
  listen_to(a, &ea), listen_to(b, &eb), listen_to(c, &ec);
  waiter w = {0};
  a->ops->open(a, "b1", "s-m1", on_done, &w); /* a new member: m1 */
  run_until(&w.done);
  assert_int_equal(w.r.member, 1);
  open_board(b, "b1", err, sizeof err);
  open_board(c, "b1", err, sizeof err);
  put(a, "m1", "Ada", 0);
  put(b, "m2", "Bob", 1);
  put(c, "m3", "Cy", 2);
  until_member(a, "m2", true);
  until_member(a, "m3", true);
  until_member(b, "m1", true);
  until_member(c, "m2", true);
  assert_true(has_member(a, "m1")); /* its own too: the service tells them apart */
  assert_true(eb.members > 0);
  const json_t *o = b->ops->others(b, "b1");
  json_t *want = json_pack("{s:s,s:s,s:s,s:i,s:s}", "id", "m1", "name", "Ada", "color", "#e91e63",
                           "n", 0, "s", "s-m1");
  bool found = false;
  for (size_t i = 0; i < json_array_size(o); i++) found |= json_equal(json_array_get(o, i), want);
  assert_true(found);
  json_decref(want);

  /* The session's member, from another instance: found, and kept when it joins there. */
  w.done = false;
  b->ops->lookup(b, "b1", "s-m1", on_done, &w);
  run_until(&w.done);
  assert_non_null(w.r.record);
  assert_string_equal(json_string_value(json_object_get(w.r.record, "id")), "m1");
  /* A put that is waited for: once done, any instance finds the member (a join answers then). */
  json_t *m7 = json_pack("{s:s,s:s,s:s,s:i,s:s}", "id", "m7", "name", "Gil", "color", "#e91e63",
                         "n", 7, "s", "s-m7");
  w.done = false;
  a->ops->member_put(a, "b1", m7, on_done, &w);
  json_decref(m7);
  run_until(&w.done);
  assert_int_equal(w.r.value, 0);
  w.done = false;
  c->ops->lookup(c, "b1", "s-m7", on_done, &w);
  run_until(&w.done);
  assert_non_null(w.r.record);
  assert_string_equal(json_string_value(json_object_get(w.r.record, "name")), "Gil");
  w.done = false;
  b->ops->lookup(b, "b1", "nobody", on_done, &w);
  run_until(&w.done);
  assert_int_equal(w.r.value, 0);
  assert_null(w.r.record);
  w.done = false;
  c->ops->open(c, "b1", "s-m1", on_done, &w);
  run_until(&w.done);
  assert_int_equal(w.r.member, 1);
  assert_int_equal(w.r.joins, 0);

  /* Cursors: to the others, never back. */
  a->ops->cursor(a, "b1", "m1", 3.5, -2);
  uint64_t deadline = uv_hrtime() + 10000000000ull;
  while ((eb.cursors == 0 || ec.cursors == 0) && uv_hrtime() < deadline) run_for(5);
  assert_int_equal(eb.cursors, 1);
  assert_string_equal(eb.cursor_id, "m1");
  assert_true(eb.x == 3.5 && eb.y == -2);
  run_for(50);
  assert_int_equal(ea.cursors, 0);

  /* Held by two: one letting it go is not a leave; leaving the board is, everywhere. */
  put(a, "m2", "Bob", 1);
  run_for(50);
  b->ops->member_drop(b, "b1", "m2", false);
  run_for(100);
  assert_true(has_member(c, "m2"));
  assert_int_equal(ea.lefts, 0);
  put(b, "m2", "Bob", 1);
  run_for(50);
  b->ops->member_drop(b, "b1", "m2", true);
  until_member(c, "m2", false);
  deadline = uv_hrtime() + 10000000000ull;
  while (ea.lefts == 0 && uv_hrtime() < deadline) run_for(5);
  assert_int_equal(ea.lefts, 1); /* a held it: told to let it go */
  assert_string_equal(ea.left_id, "m2");
  run_for(400); /* a's refreshes do not bring it back */
  assert_false(has_member(c, "m2"));
  assert_int_equal(eb.lefts, 0);

  /* Held by two and renamed through one: the other's refreshes do not undo it. */
  put(a, "m8", "Hal", 8);
  put(b, "m8", "Hal", 8);
  run_for(100);
  put(b, "m8", "Hank", 8);
  run_for(800); /* a refreshes every 150 ms */
  const json_t *seen = c->ops->others(c, "b1");
  const char *name8 = NULL;
  for (size_t i = 0; i < json_array_size(seen); i++)
    if (!strcmp(json_string_value(json_object_get(json_array_get(seen, i), "id")), "m8"))
      name8 = json_string_value(json_object_get(json_array_get(seen, i), "name"));
  assert_non_null(name8);
  assert_string_equal(name8, "Hank");
  /* The script itself: a refresh (write 0) keeps the record, a join (write 1) replaces it. */
  redisContext *r = raw();
  char k[7][96], ch[96];
  const char *what[] = {"epoch", "b:b1:pz", "b:b1:ph", "b:b1:pn", "b:b1:ps", "b:b1:pl", "b:b1:pv"};
  for (int i = 0; i < 7; i++) snprintf(k[i], sizeof k[i], "%s%s", prefix, what[i]);
  snprintf(ch, sizeof ch, "%sev:b1", prefix);
  for (int write = 0; write < 2; write++) {
    redisReply *rep = redisCommand(
        r, "EVAL %s 7 %s %s %s %s %s %s %s %s 60000 %s zz 1 m8 s-m8 %s %d 0",
        collab_redis_scripts[RLS_PRESENCE], k[0], k[1], k[2], k[3], k[4], k[5], k[6],
        a->ops->epoch(a), ch,
        "{\"id\":\"m8\",\"name\":\"Old\",\"color\":\"#e91e63\",\"n\":8,\"s\":\"s-m8\"}", write);
    assert_true(rep && rep->type == REDIS_REPLY_ARRAY);
    freeReplyObject(rep);
    rep = redisCommand(r, "HGET %s m8", k[2]);
    assert_true(rep && rep->type == REDIS_REPLY_STRING);
    assert_non_null(strstr(rep->str, write ? "\"Old\"" : "\"Hank\""));
    freeReplyObject(rep);
  }
  redisFree(r);

  /* An instance that dies without a word: its members go after the expiry (600 ms here). */
  uint64_t t0 = uv_hrtime();
  drop(c);
  until_member(a, "m3", false);
  until_member(b, "m3", false);
  assert_true(uv_hrtime() - t0 < 5000000000ull);
  assert_true(has_member(b, "m1")); /* refreshed, so still there */
  drop(a), drop(b);
}

/* The longest prefix and board name: every key and channel still fits (regression: a channel
 * of a 64-byte prefix and a 64-byte board was cut, and every write on that board failed). */
static void test_long_names(void **state) {
  (void)state;
  skip_without_redis();
  char prefix[65], board[65], err[200];
  snprintf(prefix, sizeof prefix, "t%d:%s", ++prefixes,
           "pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp");
  memset(board, 'b', 64);
  board[64] = 0;
  collab_store *a = second(prefix), *b = second(prefix);
  assert_int_equal(open_board(a, board, err, sizeof err), 0);
  assert_int_equal(open_board(b, board, err, sizeof err), 0);
  assert_int_equal(edit_on(a, board, "{\"kind\":\"add\",\"shape\":{\"x\":1,\"y\":2}}", NULL), 1);
  json_t *msg = json_pack("{s:i,s:s}", "offset", 0, "text", "hi");
  assert_int_equal(append_to(b, board, msg, err, sizeof err), 1);
  json_decref(msg);
  until_head(b, board, COLLAB_LOG_OPS, 1);
  until_head(a, board, COLLAB_LOG_CHAT, 1);
  drop(a), drop(b);
}

/* Redis forgot the scripts (SCRIPT FLUSH): EVALSHA is refused, the script goes itself. */
static void test_noscript(void **state) {
  (void)state;
  skip_without_redis();
  char err[200];
  collab_store *a = second(NULL);
  open_board(a, "b1", err, sizeof err);
  redisContext *r = raw();
  raw_cmd(r, "SCRIPT FLUSH");
  redisFree(r);
  assert_int_equal(edit(a, "{\"kind\":\"add\",\"shape\":{\"x\":1,\"y\":2}}", NULL), 1);
  assert_int_equal(edit(a, "{\"kind\":\"add\",\"shape\":{\"x\":1,\"y\":2}}", NULL), 2);
  drop(a);
}

/* No Redis at all: requests fail at once, saying why. */
static void test_unreachable(void **state) {
  (void)state;
  int port = free_port();
  char url[64], err[300];
  snprintf(url, sizeof url, "redis://127.0.0.1:%d/2", port);
  collab_store *a = redis_store(NULL, url);
  run_for(300);
  assert_false(collab_store_redis_ready(a));
  assert_int_equal(open_board(a, "b1", err, sizeof err), COLLAB_ERR);
  char want[100];
  snprintf(want, sizeof want, "storage unavailable: redis 127.0.0.1:%d/2: ", port);
  assert_true(!strncmp(err, want, strlen(want)));
  assert_non_null(strstr(err, "refused"));
  drop(a);
  char bad[200];
  collab_redis_options o;
  collab_redis_options_default(&o);
  o.url = "http://x";
  assert_null(collab_store_redis_new(&lim, loop, &o, bad, sizeof bad));
  assert_string_equal(bad, "bad --redis URL: it must start with redis:// "
                           "(redis://[[user]:password@]host[:port][/db])");
  o.url = "redis://h:1/2";
  o.prefix = "a*";
  assert_null(collab_store_redis_new(&lim, loop, &o, bad, sizeof bad));
}

/* Redis goes away (requests fail, the replica still serves reads) and comes back empty: a new
 * epoch, and the board works again. Last: it restarts the test's redis-server. */
static void test_redis_restart(void **state) {
  (void)state;
  skip_without_redis();
  char err[300];
  collab_store *a = second(NULL);
  seen_events ea;
  listen_to(a, &ea);
  open_board(a, "b1", err, sizeof err);
  edit(a, "{\"kind\":\"add\",\"shape\":{\"id\":\"n1\",\"x\":1,\"y\":2}}", NULL);
  char old[80];
  snprintf(old, sizeof old, "%s", a->ops->epoch(a));
  redis_stop();
  uint64_t deadline = uv_hrtime() + 10000000000ull;
  while (collab_store_redis_ready(a) && uv_hrtime() < deadline) run_for(5);
  assert_false(collab_store_redis_ready(a));
  json_t *op = op_of("{\"kind\":\"add\",\"shape\":{\"x\":1,\"y\":2}}", NULL);
  waiter w = {0};
  a->ops->edit(a, "b1", op, "m1", on_done, &w);
  assert_true(w.done); /* at once */
  json_decref(op);
  assert_int_equal(w.r.value, COLLAB_ERR);
  assert_true(!strncmp(w.err, "storage unavailable: redis 127.0.0.1:", 37));
  assert_int_equal(a->ops->head(a, "b1", COLLAB_LOG_OPS), 1); /* reads go on */
  assert_true(redis_start());
  wait_ready(a);
  assert_string_not_equal(a->ops->epoch(a), old);
  assert_int_equal(ea.resets, 1);
  assert_int_equal(open_board(a, "b1", err, sizeof err), 0);
  assert_int_equal(a->ops->head(a, "b1", COLLAB_LOG_OPS), 0);
  assert_int_equal(edit(a, "{\"kind\":\"add\",\"shape\":{\"id\":\"n1\",\"x\":1,\"y\":2}}", NULL),
                   1);
  drop(a);
}

int main(void) {
#define BOTH(t)                                                                                    \
  cmocka_unit_test_prestate_setup_teardown(t, setup, teardown, &mem_engine),                       \
      cmocka_unit_test_prestate_setup_teardown(t, setup, teardown, &redis_engine)
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_op_parse, setup, teardown),
      cmocka_unit_test_setup_teardown(test_board_names, setup, teardown),
      BOTH(test_edits_ordered),
      BOTH(test_deleted_shapes),
      BOTH(test_history_bounds),
      BOTH(test_board_limit),
      BOTH(test_members),
      cmocka_unit_test_setup_teardown(test_two_instances, setup, teardown),
      cmocka_unit_test_setup_teardown(test_catch_up, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lagging_replica, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
      cmocka_unit_test_setup_teardown(test_epoch_reset, setup, teardown),
      cmocka_unit_test_setup_teardown(test_presence, setup, teardown),
      cmocka_unit_test_setup_teardown(test_long_names, setup, teardown),
      cmocka_unit_test_setup_teardown(test_noscript, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
      cmocka_unit_test_setup_teardown(test_redis_restart, setup, teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
