/* --debug: every frame sent and received, one decoded line each, on stderr. */
#include <stdio.h>

#include "cli.h"
#include "core/frame_format.h"

static bool enabled;

void cli_debug_enable(void) {
  enabled = true;
}

bool cli_debug_enabled(void) {
  return enabled;
}

void cli_debug_frame(bool out, const uint8_t *frame, size_t len) {
  if (!enabled) return;
  rs_frame f;
  rs_frame_error e;
  int rc = rs_frame_decode(&f, frame, len, &e);
  if (rc != 0) {
    fprintf(stderr, "%s malformed frame (%zu bytes): %s at byte %zu\n", out ? ">>" : "<<", len,
            e.message, e.offset);
    return;
  }
  char line[512];
  rs__frame_describe(&f, 32, line, sizeof line);
  fprintf(stderr, "%s %s\n", out ? ">>" : "<<", line);
}
