/* --debug: every frame sent and received, one decoded line each, on stderr; the entries of
 * composite metadata on the lines below; --wiretap adds a hex dump of the frame's bytes. */
#include <stdio.h>

#include "cli.h"
#include "rsocket/extensions.h"
#include "rsocket/frame.h"

#define PREVIEW 32 /* bytes of metadata, data and entries shown */

static bool enabled, hexdump, composite;

void cli_debug_enable(bool wiretap) {
  enabled = true;
  hexdump = wiretap;
}

bool cli_debug_enabled(void) {
  return enabled;
}

void cli_debug_composite(bool on) {
  composite = on;
}

/* Writes up to PREVIEW bytes of `b` quoted, with non-printable bytes, quotes and backslashes as
 * \xNN (as the frame lines do). */
static void put_escaped(rs_bytes b) {
  fputc('"', stderr);
  for (size_t i = 0; i < b.len && i < PREVIEW; i++) {
    uint8_t c = b.ptr[i];
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
      fputc(c, stderr);
    else
      fprintf(stderr, "\\x%02x", c);
  }
  fputs(b.len > PREVIEW ? "\"..." : "\"", stderr);
}

static void put_entries(rs_bytes md) {
  rs_composite_iter it;
  rs_composite_entry e;
  int rc;
  rs_composite_iter_init(&it, md.ptr, md.len);
  while ((rc = rs_composite_next(&it, &e)) == 1) {
    if (e.mime.len)
      fprintf(stderr, "   entry %.*s %zuB ", (int)e.mime.len, (const char *)e.mime.ptr,
              e.content.len);
    else
      fprintf(stderr, "   entry id 0x%02x %zuB ", e.mime_id, e.content.len);
    rs_routing_iter ri;
    rs_bytes tag;
    if (e.well_known && e.mime_id == RS_MIME_ID_ROUTING) {
      rs_routing_iter_init(&ri, e.content.ptr, e.content.len);
      fputs("routes", stderr);
      for (int n = 0; rs_routing_next(&ri, &tag) == 1; n++)
        fprintf(stderr, "%s%.*s", n ? ", " : " ", (int)tag.len, (const char *)tag.ptr);
    } else {
      put_escaped(e.content);
    }
    fputc('\n', stderr);
  }
  if (rc < 0) fputs("   (malformed composite metadata)\n", stderr);
}

static void put_hex(const uint8_t *p, size_t len) {
  for (size_t off = 0; off < len; off += 16) {
    fprintf(stderr, "   %06zx ", off);
    for (size_t i = off; i < off + 16; i++) {
      if (i < len)
        fprintf(stderr, " %02x", p[i]);
      else
        fputs("   ", stderr);
    }
    fputs("  |", stderr);
    for (size_t i = off; i < off + 16 && i < len; i++)
      fputc(p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '.', stderr);
    fputs("|\n", stderr);
  }
}

void cli_debug_frame(bool out, const uint8_t *frame, size_t len) {
  if (!enabled) return;
  rs_frame f;
  rs_frame_error e;
  int rc = rs_frame_decode(&f, frame, len, &e);
  if (rc != 0) {
    fprintf(stderr, "%s malformed frame (%zu bytes): %s at byte %zu\n", out ? ">>" : "<<", len,
            e.message, e.offset);
  } else {
    char line[512];
    rs_frame_describe(&f, PREVIEW, line, sizeof line);
    fprintf(stderr, "%s %s\n", out ? ">>" : "<<", line);
    if (composite && f.has_metadata && f.metadata.len > 0) put_entries(f.metadata);
  }
  if (hexdump) put_hex(frame, len);
}
