/*
 * collab-bot: one simulated user of the collaborative board, through rsocket-gateway's JSON
 * protocol (docs/GATEWAY.md, docs/COLLAB.md). It joins a board, follows its ops, presence and
 * chat, plays a script of steps (edits, cursor glides, chat lines, a dropped connection...) and
 * recovers like the web page does: on a lost WebSocket or a lost subscription it joins again and
 * resumes from its offset ("back — N missed edits applied"), or reloads the board when the epoch
 * changed or the history is gone ("board reloaded"). `make demo` runs two of them.
 */
#include <getopt.h>
#include <jansson.h>
#include <rsocket/websocket.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_STEPS 256

/* What each request id is for. Ids grow for ever; a subscription of an older generation (before
 * a re-join) is recognised by its id and ignored. */
enum { R_NONE, R_JOIN, R_OPS, R_PRESENCE, R_CHAT, R_EDIT, R_POST };

typedef struct bot {
  /* options */
  const char *url, *board, *name;
  bool watch, exit_when_done, quiet;
  double timeout_s;
  char *steps[MAX_STEPS];
  int nsteps, step;
  /* connection */
  uv_loop_t *loop;
  rs_ws_session *ws;
  uv_timer_t step_timer, retry_timer, glide_timer;
  uv_signal_t sigint, sigterm;
  bool open, stopping, dropped;
  unsigned backoff_ms;    /* joining again while the service is away */
  unsigned conn_failures; /* WebSocket failures since the last open */
  /* protocol */
  long long next_id;
  long long join_id, ops_id, presence_id, chat_id;
  /* Requests' kinds by id % 1024 (reqs are answered long before 1024 more are sent); the
   * current subscriptions are told apart by their ids. */
  unsigned char pending_kind[1024];
  /* board state */
  bool joined, ever_joined, rejoining;
  char epoch[80], me[24];
  long long offset, chat_after, catch_up_to, resumed_from;
  json_t *shapes;   /* id -> shape */
  json_t *members;  /* array as last received */
  json_t *snapshot; /* the join's shapes while catching up (compared once caught up) */
  int reloads, resumes;
  /* steps */
  double wait_since;
  double gx, gy, gx1, gy1; /* cursor glide */
  int glide_left;
  int status;
} bot;

static double now_s(bot *b) {
  return (double)uv_now(b->loop) / 1000.0;
}

static void say(bot *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(bot *b, const char *fmt, ...) {
  if (b->quiet) return;
  va_list ap;
  va_start(ap, fmt);
  printf("[%s] ", b->name);
  vprintf(fmt, ap);
  printf("\n");
  fflush(stdout);
  va_end(ap);
}

static void send_json(bot *b, json_t *msg) {
  char *s = json_dumps(msg, JSON_COMPACT);
  if (getenv("COLLAB_BOT_DEBUG")) fprintf(stderr, ">> %s\n", s);
  if (s && b->open) rs_ws_session_send(b->ws, true, s, strlen(s));
  free(s);
  json_decref(msg);
}

static long long request(bot *b, const char *type, int kind, const char *route, json_t *data) {
  long long id = ++b->next_id;
  b->pending_kind[id % 1024] = (unsigned char)kind;
  send_json(b, json_pack("{s:s,s:I,s:s,s:o}", "type", type, "id", (json_int_t)id, "route", route,
                         "data", data));
  return id;
}

static void unsub(bot *b, long long *id) {
  if (*id && b->open) send_json(b, json_pack("{s:s,s:I}", "type", "unsub", "id", (json_int_t)*id));
  *id = 0;
}

static const char *member_name(bot *b, const char *id) {
  size_t i;
  json_t *m;
  json_array_foreach(b->members, i, m) {
    if (!strcmp(json_string_value(json_object_get(m, "id")), id))
      return json_string_value(json_object_get(m, "name"));
  }
  return id;
}

static bool has_member(bot *b, const char *name) {
  size_t i;
  json_t *m;
  json_array_foreach(b->members, i, m) {
    if (!strcmp(json_string_value(json_object_get(m, "name")), name)) return true;
  }
  return false;
}

/* ---- joining and recovering ---- */

static void join(bot *b) {
  b->join_id = request(b, "req", R_JOIN, "board.join",
                       json_pack("{s:s,s:s}", "board", b->board, "name", b->name));
}

static void retry_join(uv_timer_t *t) {
  bot *b = t->data;
  if (b->open && !b->joined) join(b);
}

/* A subscription or the service was lost: join again (with backoff while it fails). */
static void lost(bot *b, const char *why) {
  if (!b->joined) return;
  b->joined = false;
  say(b, "lost the board (%s); joining again", why);
  unsub(b, &b->ops_id);
  unsub(b, &b->presence_id);
  unsub(b, &b->chat_id);
  join(b);
}

static void follow(bot *b, long long from) {
  b->ops_id = request(
      b, "sub", R_OPS, "board.ops",
      json_pack("{s:s,s:s,s:I}", "board", b->board, "epoch", b->epoch, "from", (json_int_t)from));
  b->presence_id =
      request(b, "sub", R_PRESENCE, "board.presence", json_pack("{s:s}", "board", b->board));
  b->chat_id = request(b, "sub", R_CHAT, "chat.feed",
                       json_pack("{s:s,s:s,s:I}", "board", b->board, "epoch", b->epoch, "from",
                                 (json_int_t)b->chat_after));
}

static void load_snapshot(bot *b, json_t *shapes) {
  json_object_clear(b->shapes);
  size_t i;
  json_t *s;
  json_array_foreach(shapes, i, s) {
    json_object_set(b->shapes, json_string_value(json_object_get(s, "id")), s);
  }
}

static void on_joined(bot *b, json_t *d) {
  const char *epoch = json_string_value(json_object_get(d, "epoch"));
  long long offset = json_integer_value(json_object_get(d, "offset"));
  json_t *shapes = json_object_get(d, "shapes");
  snprintf(b->me, sizeof b->me, "%s",
           json_string_value(json_object_get(json_object_get(d, "you"), "id")));
  json_decref(b->members);
  b->members = json_incref(json_object_get(d, "members"));
  b->joined = true;
  b->backoff_ms = 0;
  if (!b->ever_joined || strcmp(epoch, b->epoch) != 0) {
    if (b->ever_joined) {
      b->reloads++;
      say(b, "board reloaded: the service restarted (new epoch), %zu notes now",
          json_array_size(shapes));
    } else {
      say(b, "joined board '%s' as %s: %zu notes, %zu online", b->board, b->me,
          json_array_size(shapes), json_array_size(b->members));
    }
    snprintf(b->epoch, sizeof b->epoch, "%s", epoch);
    load_snapshot(b, shapes);
    b->offset = offset;
    b->chat_after = json_integer_value(json_object_get(d, "chat_offset"));
    b->catch_up_to = -1;
    b->ever_joined = true;
  } else {
    /* Same epoch: resume from our offset; the snapshot checks the result once caught up. */
    b->resumed_from = b->offset;
    b->catch_up_to = offset;
    json_decref(b->snapshot);
    b->snapshot = json_incref(shapes);
    if (offset == b->offset) {
      b->catch_up_to = -1;
      b->resumes++;
      say(b, "back — nothing missed");
    }
  }
  follow(b, b->offset);
}

/* Caught up after a resume: say how many ops came in, and whether the board matches. */
static void caught_up(bot *b) {
  json_t *want = json_object();
  size_t i;
  json_t *s;
  json_array_foreach(b->snapshot, i, s) {
    json_object_set(want, json_string_value(json_object_get(s, "id")), s);
  }
  bool same = json_equal(want, b->shapes);
  json_decref(want);
  b->resumes++;
  say(b, "back — %lld missed edits applied%s", b->catch_up_to - b->resumed_from,
      same ? " (the board matches the service's)" : "");
  if (!same) {
    say(b, "MISMATCH: the board after the missed edits differs from the service's snapshot");
    b->status = 1;
  }
  b->catch_up_to = -1;
}

static void apply_op(bot *b, json_t *d) {
  long long off = json_integer_value(json_object_get(d, "offset"));
  json_t *op = json_object_get(d, "op"), *shape = json_object_get(op, "shape");
  const char *kind = json_string_value(json_object_get(op, "kind"));
  const char *id = json_string_value(json_object_get(shape, "id"));
  const char *by = json_string_value(json_object_get(d, "by"));
  if (off != b->offset + 1) {
    say(b, "op %lld after %lld: out of order; reloading", off, b->offset);
    lost(b, "ops out of order");
    return;
  }
  b->offset = off;
  json_t *cur = json_object_get(b->shapes, id);
  if (!strcmp(kind, "add")) {
    json_object_set(b->shapes, id, shape);
  } else if (!strcmp(kind, "delete")) {
    json_object_del(b->shapes, id);
  } else if (cur) {
    json_object_update_existing(cur, shape);
  }
  if (b->watch && strcmp(by, b->me) != 0 && b->catch_up_to < 0) {
    const char *text = json_string_value(json_object_get(shape, "text"));
    say(b, "sees %s %s note %s%s%s%s", member_name(b, by),
        !strcmp(kind, "add")      ? "add"
        : !strcmp(kind, "move")   ? "move"
        : !strcmp(kind, "delete") ? "delete"
                                  : "edit",
        id, text ? " \"" : "", text ? text : "", text ? "\"" : "");
  }
  if (b->catch_up_to >= 0 && b->offset >= b->catch_up_to) caught_up(b);
}

static void presence(bot *b, json_t *d) {
  json_t *list = json_object_get(d, "members");
  if (!list) return; /* cursors: the page draws them; a bot has no use for them */
  size_t i;
  json_t *m;
  json_array_foreach(list, i, m) {
    const char *name = json_string_value(json_object_get(m, "name"));
    if (!has_member(b, name)) say(b, "sees %s join", name);
  }
  json_t *old = b->members;
  b->members = json_incref(list);
  json_array_foreach(old, i, m) {
    const char *name = json_string_value(json_object_get(m, "name"));
    if (!has_member(b, name)) say(b, "sees %s leave", name);
  }
  json_decref(old);
}

/* ---- messages ---- */

static void on_message(rs_ws_session *s, bool text, const uint8_t *data, size_t len, void *user) {
  (void)s, (void)text;
  bot *b = user;
  if (getenv("COLLAB_BOT_DEBUG")) fprintf(stderr, "<< %.*s\n", (int)len, (const char *)data);
  json_t *m = json_loadb((const char *)data, len, 0, NULL);
  const char *type = json_string_value(json_object_get(m, "type"));
  long long id = json_integer_value(json_object_get(m, "id"));
  json_t *d = json_object_get(m, "data");
  const char *err = json_string_value(json_object_get(json_object_get(m, "error"), "message"));
  const char *code = json_string_value(json_object_get(json_object_get(m, "error"), "code"));
  int kind = id > 0 ? b->pending_kind[id % 1024] : R_NONE;
  bool current = id == b->ops_id || id == b->presence_id || id == b->chat_id;
  if (!type || id <= 0) {
    /* pushes ({"type":"ind","route":...}) and rej with "id":null: not ours to handle */
  } else if (id == b->join_id && !strcmp(type, "cfm")) {
    on_joined(b, d);
  } else if (id == b->join_id) {
    /* The service is away (UNAVAILABLE) or restarting: try again with backoff. */
    b->backoff_ms = b->backoff_ms ? (b->backoff_ms * 2 > 2000 ? 2000 : b->backoff_ms * 2) : 200;
    if (b->backoff_ms == 200 && code && !strcmp(code, "UNAVAILABLE"))
      say(b, "cannot join yet: the service is not reachable; retrying");
    else if (b->backoff_ms == 200)
      say(b, "cannot join yet (%s: %s); retrying", code ? code : "?", err ? err : "?");
    uv_timer_start(&b->retry_timer, retry_join, b->backoff_ms, 0);
  } else if (!strcmp(type, "ind") && id == b->ops_id) {
    apply_op(b, d);
  } else if (!strcmp(type, "ind") && id == b->presence_id) {
    presence(b, d);
  } else if (!strcmp(type, "ind") && id == b->chat_id) {
    b->chat_after = json_integer_value(json_object_get(d, "offset"));
    const char *by = json_string_value(json_object_get(d, "by"));
    if (strcmp(by, b->me) != 0)
      say(b, "reads %s: %s", json_string_value(json_object_get(d, "name")),
          json_string_value(json_object_get(d, "text")));
  } else if ((!strcmp(type, "rej") || !strcmp(type, "end")) && current) {
    if (err && !strcmp(err, "HISTORY_GONE")) b->epoch[0] = 0; /* reload */
    b->ops_id = id == b->ops_id ? 0 : b->ops_id;
    b->presence_id = id == b->presence_id ? 0 : b->presence_id;
    b->chat_id = id == b->chat_id ? 0 : b->chat_id;
    lost(b, err ? err : "stream ended");
  } else if (!strcmp(type, "rej") && (kind == R_EDIT || kind == R_POST)) {
    say(b, "was refused: %s", err ? err : "?");
  }
  json_decref(m);
}

/* ---- the WebSocket ---- */

static void connect_ws(bot *b);

static void reconnect(uv_timer_t *t) {
  bot *b = t->data;
  b->dropped = false;
  connect_ws(b);
}

static void on_open(rs_ws_session *s, void *user) {
  (void)s;
  bot *b = user;
  if (getenv("COLLAB_BOT_DEBUG")) fprintf(stderr, "open\n");
  b->open = true;
  b->conn_failures = 0;
  if (b->ever_joined) say(b, "connected again");
  join(b);
}

static void on_close(rs_ws_session *s, unsigned code, const char *reason, bool remote, void *user) {
  (void)s, (void)remote;
  bot *b = user;
  b->ws = NULL;
  b->open = false;
  b->joined = false;
  b->ops_id = b->presence_id = b->chat_id = b->join_id = 0;
  if (b->stopping) return;
  if (b->dropped) return; /* the drop step reconnects */
  /* 200 ms doubling to 2 s, jittered; only the first failure in a row is told. */
  unsigned delay = b->conn_failures < 4 ? 200u << b->conn_failures : 2000u;
  if (b->conn_failures++ == 0)
    say(b, "connection lost (%u%s%s); reconnecting", code, reason && *reason ? ": " : "",
        reason ? reason : "");
  uv_timer_start(&b->retry_timer, reconnect, delay + (unsigned)(rand() % 100), 0);
}

static void connect_ws(bot *b) {
  rs_ws_client_options o;
  rs_ws_client_options_default(&o);
  o.uri = b->url;
  o.callbacks.on_open = on_open;
  o.callbacks.on_message = on_message;
  o.callbacks.on_close = on_close;
  o.user = b;
  char err[300];
  if (rs_ws_client_start(&b->ws, b->loop, &o, err, sizeof err) != 0) {
    fprintf(stderr, "collab-bot: %s\n", err);
    b->status = 2;
    b->stopping = true;
    uv_stop(b->loop);
  }
}

/* ---- steps ---- */

static void run_steps(bot *b);

static void step_again(uv_timer_t *t) {
  run_steps(t->data);
}

static void next_step(bot *b, double delay_s) {
  b->step++;
  b->wait_since = now_s(b);
  uv_timer_start(&b->step_timer, step_again, (uint64_t)(delay_s * 1000), 0);
}

static void glide(uv_timer_t *t) {
  bot *b = t->data;
  double f = 1.0 - (double)--b->glide_left / 8.0;
  double x = b->gx + (b->gx1 - b->gx) * f, y = b->gy + (b->gy1 - b->gy) * f;
  if (b->joined)
    send_json(b, json_pack("{s:s,s:s,s:{s:s,s:f,s:f}}", "type", "fnf", "route", "board.cursor",
                           "data", "board", b->board, "x", x, "y", y));
  if (b->glide_left > 0) return;
  uv_timer_stop(t);
  b->gx = b->gx1, b->gy = b->gy1;
  next_step(b, 0);
}

static void edit(bot *b, const char *kind, json_t *shape) {
  request(b, "req", R_EDIT, "board.edit",
          json_pack("{s:s,s:{s:s,s:o}}", "board", b->board, "op", "kind", kind, "shape", shape));
}

/* Runs the current step: now, or later when it waits for something. */
static void run_steps(bot *b) {
  if (b->stopping) return;
  if (b->step >= b->nsteps) {
    if (b->exit_when_done) {
      b->stopping = true;
      if (b->ws) rs_ws_session_close(b->ws, 1000, "done");
      uv_close((uv_handle_t *)&b->step_timer, NULL);
      uv_close((uv_handle_t *)&b->retry_timer, NULL);
      uv_close((uv_handle_t *)&b->glide_timer, NULL);
      uv_close((uv_handle_t *)&b->sigint, NULL);
      uv_close((uv_handle_t *)&b->sigterm, NULL);
    }
    return;
  }
  char word[32] = "", a[80] = "", rest[600] = "";
  double x = 0, y = 0, secs = 0;
  const char *st = b->steps[b->step];
  int n = 0;
  sscanf(st, "%31s %n", word, &n);
  const char *args = st + n;
  /* Steps that need the board wait until we are on it (after a drop or a restart too). */
  bool waiting = !b->joined || b->catch_up_to >= 0;
  bool ready = false;
  if (!strcmp(word, "sleep") && sscanf(args, "%lf", &secs) == 1) {
    return next_step(b, secs);
  } else if (!strcmp(word, "print")) {
    printf("%s\n", args);
    fflush(stdout);
    return next_step(b, 0);
  } else if (!strcmp(word, "drop") && sscanf(args, "%lf", &secs) == 1) {
    if (waiting) goto wait;
    say(b, "loses its connection for %.1f s", secs);
    b->dropped = true;
    rs_ws_session_abort(b->ws, "dropped by the script");
    uv_timer_start(&b->retry_timer, reconnect, (uint64_t)(secs * 1000), 0);
    return next_step(b, 0);
  }
  if (waiting) goto wait;
  if (!strcmp(word, "add") && sscanf(args, "%79s %lf %lf %n", a, &x, &y, &n) == 3) {
    snprintf(rest, sizeof rest, "%s", args + n);
    say(b, "adds note %s \"%s\"", a, rest);
    edit(b, "add", json_pack("{s:s,s:f,s:f,s:s}", "id", a, "x", x, "y", y, "text", rest));
  } else if (!strcmp(word, "move") && sscanf(args, "%79s %lf %lf", a, &x, &y) == 3) {
    say(b, "moves note %s", a);
    edit(b, "move", json_pack("{s:s,s:f,s:f}", "id", a, "x", x, "y", y));
  } else if (!strcmp(word, "update") && sscanf(args, "%79s %n", a, &n) == 1) {
    say(b, "edits note %s: \"%s\"", a, args + n);
    edit(b, "update", json_pack("{s:s,s:s}", "id", a, "text", args + n));
  } else if (!strcmp(word, "color") && sscanf(args, "%79s %79s", a, rest) == 2) {
    edit(b, "update", json_pack("{s:s,s:s}", "id", a, "color", rest));
  } else if (!strcmp(word, "delete") && sscanf(args, "%79s", a) == 1) {
    say(b, "deletes note %s", a);
    edit(b, "delete", json_pack("{s:s}", "id", a));
  } else if (!strcmp(word, "say")) {
    say(b, "says: %s", args);
    request(b, "req", R_POST, "chat.post", json_pack("{s:s,s:s}", "board", b->board, "text", args));
  } else if (!strcmp(word, "cursor") && sscanf(args, "%lf %lf", &x, &y) == 2) {
    b->gx1 = x, b->gy1 = y, b->glide_left = 8;
    uv_timer_start(&b->glide_timer, glide, 0, 80); /* its end calls next_step */
    return;
  } else if (!strcmp(word, "await") && sscanf(args, "%79s", a) == 1) {
    ready = json_object_get(b->shapes, a) != NULL;
  } else if (!strcmp(word, "await-join")) {
    ready = has_member(b, args);
  } else if (!strcmp(word, "await-leave")) {
    ready = !has_member(b, args);
  } else if (!strcmp(word, "await-reload")) {
    ready = b->reloads > 0;
  } else if (!strcmp(word, "await-resume")) {
    ready = b->resumes > 0;
  } else {
    fprintf(stderr, "collab-bot: bad step '%s'\n", st);
    b->status = 2;
    b->step = b->nsteps;
    return run_steps(b);
  }
  if (strncmp(word, "await", 5) != 0 || ready) return next_step(b, 0.05);
wait:
  if (now_s(b) - b->wait_since > b->timeout_s) {
    say(b, "gave up: step '%s' still waiting after %.0f s", st, b->timeout_s);
    b->status = 1;
    b->step = b->nsteps;
    return run_steps(b);
  }
  uv_timer_start(&b->step_timer, step_again, 50, 0);
}

/* ---- main ---- */

static void on_signal(uv_signal_t *h, int sig) {
  (void)sig;
  bot *b = h->data;
  b->exit_when_done = true;
  b->step = b->nsteps;
  run_steps(b);
}

static void usage(FILE *f) {
  fprintf(
      f, "usage: collab-bot [--url URL] [--board NAME] [--name NAME] [--do STEPS | --script FILE]\n"
         "One simulated user of the collaborative board through rsocket-gateway: joins the\n"
         "board, follows its ops, presence and chat, plays its steps, and recovers from lost\n"
         "connections and service restarts (resumes from its offset, or reloads the board).\n"
         "\n"
         "  --url URL          the gateway (default ws://127.0.0.1:8080/)\n"
         "  --board NAME       the board (default demo)\n"
         "  --name NAME        the user's name (default Bot)\n"
         "  --do STEPS         steps separated by ';' (see below)\n"
         "  --script FILE      steps, one per line ('#' starts a comment; - is stdin)\n"
         "  --watch            also print the other members' edits\n"
         "  --exit             exit when the steps are done (default: keep following)\n"
         "  --timeout SECONDS  a step waiting longer fails the bot (default 30)\n"
         "  --quiet            print nothing but errors\n"
         "  -h, --help         this help;  -v, --version: print the version\n"
         "\n"
         "Steps: sleep S | add ID X Y TEXT | move ID X Y | update ID TEXT | color ID COLOR |\n"
         "  delete ID | cursor X Y (a glide) | say TEXT | drop S (lose the connection for S s) |\n"
         "  await ID (a note exists) | await-join NAME | await-leave NAME | await-reload |\n"
         "  await-resume | print TEXT. Steps that need the board wait until the bot is on it.\n"
         "Exit status: 0 done, 1 a step timed out or the board did not match after a resume,\n"
         "2 usage or the URL.\n");
}

static int add_steps(bot *b, char *text, char sep) {
  for (char *p = text, *end; p && *p; p = end ? end + 1 : NULL) {
    end = strchr(p, sep);
    if (end) *end = 0;
    while (*p == ' ' || *p == '\t') p++;
    size_t n = strlen(p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\r')) p[--n] = 0;
    if (!*p || *p == '#') continue;
    if (b->nsteps == MAX_STEPS - 1) return -1;
    b->steps[b->nsteps++] = strdup(p);
  }
  return 0;
}

int main(int argc, char **argv) {
  static bot b;
  b.url = "ws://127.0.0.1:8080/";
  b.board = "demo";
  b.name = "Bot";
  b.timeout_s = 30;
  static const struct option opts[] = {
      {"url", required_argument, NULL, 'u'},    {"board", required_argument, NULL, 'b'},
      {"name", required_argument, NULL, 'n'},   {"do", required_argument, NULL, 'd'},
      {"script", required_argument, NULL, 's'}, {"watch", no_argument, NULL, 'w'},
      {"exit", no_argument, NULL, 'x'},         {"timeout", required_argument, NULL, 't'},
      {"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'v'},      {NULL, 0, NULL, 0},
  };
  int ch;
  char buf[65536];
  while ((ch = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
    switch (ch) {
    case 'h': usage(stdout); return 0;
    case 'v': printf("collab-bot (rsocket-c) %s\n", RS_VERSION_STRING); return 0;
    case 'u': b.url = optarg; break;
    case 'b': b.board = optarg; break;
    case 'n': b.name = optarg; break;
    case 'w': b.watch = true; break;
    case 'x': b.exit_when_done = true; break;
    case 'q': b.quiet = true; break;
    case 't':
      b.timeout_s = atof(optarg);
      if (b.timeout_s <= 0) return fprintf(stderr, "collab-bot: --timeout wants seconds > 0\n"), 2;
      break;
    case 'd':
      snprintf(buf, sizeof buf, "%s", optarg);
      if (add_steps(&b, buf, ';') < 0) return fprintf(stderr, "collab-bot: too many steps\n"), 2;
      break;
    case 's': {
      FILE *f = strcmp(optarg, "-") ? fopen(optarg, "r") : stdin;
      if (!f) return fprintf(stderr, "collab-bot: cannot read %s\n", optarg), 2;
      size_t n = fread(buf, 1, sizeof buf - 1, f);
      buf[n] = 0;
      if (f != stdin) fclose(f);
      if (add_steps(&b, buf, '\n') < 0) return fprintf(stderr, "collab-bot: too many steps\n"), 2;
      break;
    }
    default: fprintf(stderr, "(collab-bot --help for usage)\n"); return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "collab-bot: unexpected argument '%s'\n(collab-bot --help for usage)\n",
            argv[optind]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  srand((unsigned)getpid());
  uv_loop_t loop;
  uv_loop_init(&loop);
  b.loop = &loop;
  b.shapes = json_object();
  b.members = json_array();
  uv_timer_init(&loop, &b.step_timer);
  uv_timer_init(&loop, &b.retry_timer);
  uv_timer_init(&loop, &b.glide_timer);
  uv_signal_init(&loop, &b.sigint);
  uv_signal_init(&loop, &b.sigterm);
  b.step_timer.data = b.retry_timer.data = b.glide_timer.data = b.sigint.data = b.sigterm.data = &b;
  uv_signal_start(&b.sigint, on_signal, SIGINT);
  uv_signal_start(&b.sigterm, on_signal, SIGTERM);
  b.wait_since = now_s(&b);
  connect_ws(&b);
  uv_timer_start(&b.step_timer, step_again, 0, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  json_decref(b.shapes);
  json_decref(b.members);
  json_decref(b.snapshot);
  for (int i = 0; i < b.nsteps; i++) free(b.steps[i]);
  return b.status;
}
