/*
 * rsocket-gateway's structured log: one line per connection event on standard error, as logfmt
 * (--log-format text, the default) or one JSON object per line (json), or nothing (none).
 *
 *   2026-12-03T16:55:00.123Z event=client_open session=5f0c1e2d3a4b5c6d peer=127.0.0.1:50000
 *   {"ts":"2026-12-03T16:55:00.123Z","event":"client_open","session":"5f0c...","peer":"..."}
 *
 * Each line is formatted whole and written with one write(2), so lines of different worker
 * threads never interleave. Values are escaped (peers choose close reasons).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gateway.h"

#define LINE_MAX_BYTES 2048

typedef struct line {
  char buf[LINE_MAX_BYTES];
  size_t len;
} line;

static void add(line *l, const char *s, size_t n) {
  if (l->len + n > sizeof l->buf - 2) n = sizeof l->buf - 2 - l->len;
  memcpy(l->buf + l->len, s, n);
  l->len += n;
}

static void add_s(line *l, const char *s) {
  add(l, s, strlen(s));
}

/* A value: JSON string escapes for json; for text, quoted (with the same escapes) when it holds
 * a space, a quote, '=' or a control character. */
static void add_value(line *l, const char *v, bool json) {
  bool quote = json || !*v;
  for (const char *p = v; *p && !quote; p++)
    if ((unsigned char)*p <= ' ' || *p == '"' || *p == '=' || *p == '\\') quote = true;
  if (quote) add(l, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
    char esc[8];
    if (*p == '"' || *p == '\\') {
      esc[0] = '\\', esc[1] = (char)*p;
      add(l, esc, 2);
    } else if (*p < 0x20 || *p == 0x7f) {
      snprintf(esc, sizeof esc, "\\u%04x", *p);
      add(l, esc, 6);
    } else {
      add(l, (const char *)p, 1);
    }
  }
  if (quote) add(l, "\"", 1);
}

void gw_log(const gw_config *cfg, const char *event, ...) {
  if (cfg->log_format == GW_LOG_NONE) return;
  bool json = cfg->log_format == GW_LOG_JSON;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char when[40];
  size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000);
  line l = {.len = 0};
  if (json) {
    add_s(&l, "{\"ts\":\"");
    add_s(&l, when);
    add_s(&l, "\",\"event\":");
    add_value(&l, event, true);
  } else {
    add_s(&l, when);
    add_s(&l, " event=");
    add_value(&l, event, false);
  }
  va_list ap;
  va_start(ap, event);
  for (const char *key; (key = va_arg(ap, const char *));) {
    const char *value = va_arg(ap, const char *);
    if (json) {
      add_s(&l, ",\"");
      add_s(&l, key);
      add_s(&l, "\":");
    } else {
      add_s(&l, " ");
      add_s(&l, key);
      add_s(&l, "=");
    }
    add_value(&l, value ? value : "", json);
  }
  va_end(ap);
  if (json) add_s(&l, "}");
  l.buf[l.len++] = '\n';
  /* One write per line; a full or closed stderr loses the line rather than blocking long. */
  ssize_t w = write(STDERR_FILENO, l.buf, l.len);
  (void)w;
}
