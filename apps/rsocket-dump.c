/*
 * rsocket-dump: prints RSocket frames in human-readable or JSON form.
 * Input: length-prefixed frames (as on TCP), hex text with --hex, or one unprefixed frame with
 * --no-length (as a WebSocket message carries it). Streams its input: memory is one frame plus a
 * read buffer.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsocket/frame.h"

#define PREVIEW_HUMAN  48
#define JSON_BYTES_MAX 4096 /* data/metadata beyond this are truncated in --json */

typedef struct dump {
  bool json, hex, no_length;
  FILE *in;
  const char *name;
  int malformed;
  uint64_t frames;
  /* hex decoding state */
  int hex_hi;
  bool in_comment;
  uint64_t hex_line;
  /* the first bytes of the input (after hex decoding), to say what it looks like */
  uint8_t sample[256];
  size_t sample_len;
} dump;

static void usage(FILE *f) {
  fprintf(
      f, "usage: rsocket-dump [--json] [--hex] [--no-length] [FILE]\n"
         "\n"
         "Prints one line per RSocket frame read from FILE (or standard input when FILE is\n"
         "missing or '-').\n"
         "\n"
         "Input:\n"
         "  (default)     frames each preceded by a 3-byte big-endian length, as on TCP\n"
         "  --hex         the same bytes written as hex text (whitespace ignored, '#' starts a\n"
         "                comment that runs to the end of the line)\n"
         "  --no-length   the whole input is one frame without a length prefix, as a WebSocket\n"
         "                binary message carries it (combines with --hex)\n"
         "\n"
         "Output:\n"
         "  (default)     TYPE stream=ID flags=M|C|N <fields> metadata=NB \"…\" data=NB \"…\"\n"
         "  --json        one JSON object per frame: type, stream_id, flags{ignore, metadata,\n"
         "                follows, complete, next, respond, resume, lease}, metadata_len,\n"
         "                data_len, the type's fields (version, keepalive_interval, max_lifetime,\n"
         "                metadata_mime, data_mime, resume_token_len, ttl, number_of_requests,\n"
         "                last_received_position, request_n, error_code, error_message, ext_type,\n"
         "                last_received_server_position, first_available_client_position,\n"
         "                last_received_client_position), and metadata/data as text when they\n"
         "                are printable UTF-8, else metadata_hex/data_hex (first 4 KiB)\n"
         "\n"
         "A malformed frame is reported with its error, the RSocket error code it calls for and\n"
         "its byte offset in the input; reading continues with the next frame when the length\n"
         "prefix was sound.\n"
         "Exit status: 0 all frames valid, 1 a frame was malformed or the input was cut short,\n"
         "2 usage or input error.\n"
         "\n"
         "  -h, --help     this help\n"
         "  -v, --version  print the version\n");
}

/* ---- JSON ---- */

static bool printable_utf8(rs_bytes b) {
  size_t i = 0;
  while (i < b.len) {
    uint8_t c = b.ptr[i];
    if (c < 0x80) {
      if ((c < 0x20 && c != '\n' && c != '\t' && c != '\r') || c == 0x7f) return false;
      i++;
      continue;
    }
    size_t n = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || i + n > b.len) return false;
    uint32_t cp = c & (0x7F >> n);
    for (size_t k = 1; k < n; k++) {
      if ((b.ptr[i + k] & 0xC0) != 0x80) return false;
      cp = cp << 6 | (b.ptr[i + k] & 0x3F);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n;
  }
  return true;
}

static void json_bytes(json_t *o, const char *key, rs_bytes b) {
  size_t n = b.len < JSON_BYTES_MAX ? b.len : JSON_BYTES_MAX;
  char k[32];
  if (printable_utf8(b) && b.len <= JSON_BYTES_MAX) {
    json_object_set_new(o, key, json_stringn((const char *)b.ptr, b.len));
    return;
  }
  char *hex = malloc(n * 2 + 1);
  if (!hex) return;
  for (size_t i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", b.ptr[i]);
  hex[2 * n] = '\0';
  snprintf(k, sizeof k, "%s_hex", key);
  json_object_set_new(o, k, json_string(hex));
  free(hex);
  if (n < b.len) {
    snprintf(k, sizeof k, "%s_truncated", key);
    json_object_set_new(o, k, json_true());
  }
}

static json_t *json_str(rs_bytes b) {
  return json_stringn((const char *)b.ptr, b.len);
}

static void print_json(const rs_frame *f) {
  json_t *o = json_object();
  json_object_set_new(o, "type", json_string(rs_frame_type_name(f->type)));
  json_object_set_new(o, "stream_id", json_integer(f->stream_id));
  unsigned fl = f->flags;
  bool follows_type = f->type >= RS_FRAME_REQUEST_RESPONSE && f->type <= RS_FRAME_REQUEST_CHANNEL;
  follows_type = follows_type || f->type == RS_FRAME_PAYLOAD;
  bool complete_type = f->type == RS_FRAME_REQUEST_CHANNEL || f->type == RS_FRAME_PAYLOAD;
  json_t *flags = json_object();
  json_object_set_new(flags, "ignore", json_boolean(fl & RS_FLAG_IGNORE));
  json_object_set_new(flags, "metadata", json_boolean(fl & RS_FLAG_METADATA));
  json_object_set_new(flags, "follows", json_boolean(follows_type && (fl & RS_FLAG_FOLLOWS)));
  json_object_set_new(flags, "complete", json_boolean(complete_type && (fl & RS_FLAG_COMPLETE)));
  json_object_set_new(flags, "next",
                      json_boolean(f->type == RS_FRAME_PAYLOAD && (fl & RS_FLAG_NEXT)));
  json_object_set_new(flags, "respond",
                      json_boolean(f->type == RS_FRAME_KEEPALIVE && (fl & RS_FLAG_RESPOND)));
  json_object_set_new(flags, "resume",
                      json_boolean(f->type == RS_FRAME_SETUP && (fl & RS_FLAG_RESUME)));
  json_object_set_new(flags, "lease",
                      json_boolean(f->type == RS_FRAME_SETUP && (fl & RS_FLAG_LEASE)));
  json_object_set_new(o, "flags", flags);
  json_object_set_new(o, "metadata_len", json_integer((json_int_t)f->metadata.len));
  json_object_set_new(o, "data_len", json_integer((json_int_t)f->data.len));
  char ver[16];
  switch (f->type) {
  case RS_FRAME_SETUP:
    snprintf(ver, sizeof ver, "%u.%u", f->u.setup.major, f->u.setup.minor);
    json_object_set_new(o, "version", json_string(ver));
    json_object_set_new(o, "keepalive_interval", json_integer(f->u.setup.keepalive_ms));
    json_object_set_new(o, "max_lifetime", json_integer(f->u.setup.max_lifetime_ms));
    json_object_set_new(o, "metadata_mime", json_str(f->u.setup.metadata_mime));
    json_object_set_new(o, "data_mime", json_str(f->u.setup.data_mime));
    json_object_set_new(o, "resume_token_len",
                        json_integer((json_int_t)f->u.setup.resume_token.len));
    break;
  case RS_FRAME_LEASE:
    json_object_set_new(o, "ttl", json_integer(f->u.lease.ttl_ms));
    json_object_set_new(o, "number_of_requests", json_integer(f->u.lease.number_of_requests));
    break;
  case RS_FRAME_KEEPALIVE:
    json_object_set_new(o, "last_received_position",
                        json_integer((json_int_t)f->u.keepalive.last_received_position));
    break;
  case RS_FRAME_REQUEST_STREAM:
  case RS_FRAME_REQUEST_CHANNEL:
    json_object_set_new(o, "request_n", json_integer(f->u.request.initial_request_n));
    break;
  case RS_FRAME_REQUEST_N:
    json_object_set_new(o, "request_n", json_integer(f->u.request_n.n));
    break;
  case RS_FRAME_ERROR:
    json_object_set_new(o, "error_code", json_integer(f->u.error.code));
    json_object_set_new(o, "error_name", json_string(rs_error_code_name(f->u.error.code)));
    json_object_set_new(o, "error_message", json_str(f->data));
    break;
  case RS_FRAME_RESUME:
    snprintf(ver, sizeof ver, "%u.%u", f->u.resume.major, f->u.resume.minor);
    json_object_set_new(o, "version", json_string(ver));
    json_object_set_new(o, "resume_token_len", json_integer((json_int_t)f->u.resume.token.len));
    json_object_set_new(o, "last_received_server_position",
                        json_integer((json_int_t)f->u.resume.last_received_server_position));
    json_object_set_new(o, "first_available_client_position",
                        json_integer((json_int_t)f->u.resume.first_available_client_position));
    break;
  case RS_FRAME_RESUME_OK:
    json_object_set_new(o, "last_received_client_position",
                        json_integer((json_int_t)f->u.resume_ok.last_received_client_position));
    break;
  case RS_FRAME_EXT:
    json_object_set_new(o, "ext_type", json_integer(f->u.ext.extended_type));
    break;
  default: break;
  }
  if (f->has_metadata) json_bytes(o, "metadata", f->metadata);
  if (f->type != RS_FRAME_ERROR && f->data.len) json_bytes(o, "data", f->data);
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  if (s) puts(s);
  free(s);
  json_decref(o);
}

static void report_error(dump *d, const char *what, const char *code, uint64_t offset) {
  d->malformed++;
  if (d->json) {
    json_t *o = json_object();
    json_object_set_new(o, "error", json_string(what));
    if (code) json_object_set_new(o, "code", json_string(code));
    json_object_set_new(o, "offset", json_integer((json_int_t)offset));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s) puts(s);
    free(s);
    json_decref(o);
  } else {
    printf("malformed frame at byte %llu: %s%s%s%s\n", (unsigned long long)offset, what,
           code ? " (" : "", code ? code : "", code ? ")" : "");
  }
}

/* One whole frame that starts at `offset` in the input. False when it is malformed. */
static bool handle_frame(dump *d, const uint8_t *p, size_t len, uint64_t offset) {
  rs_frame f;
  rs_frame_error e;
  d->frames++;
  if (rs_frame_decode(&f, p, len, &e) != 0) {
    report_error(d, e.message, rs_error_code_name(e.code), offset + e.offset);
    return false;
  }
  if (d->json) {
    print_json(&f);
  } else {
    char line[1024];
    rs_frame_describe(&f, PREVIEW_HUMAN, line, sizeof line);
    puts(line);
  }
  return true;
}

/* ---- input ---- */

static void keep_sample(dump *d, const void *p, size_t n) {
  size_t room = sizeof d->sample - d->sample_len;
  if (n > room) n = room;
  memcpy(d->sample + d->sample_len, p, n);
  d->sample_len += n;
}

/* Reads the next chunk of input bytes (decoding hex if asked). Returns the count, 0 at EOF, -1 on
 * a read or hex error (reported). */
static long next_bytes(dump *d, uint8_t *buf, size_t cap) {
  if (!d->hex) {
    size_t n = fread(buf, 1, cap, d->in);
    if (n == 0 && ferror(d->in)) {
      fprintf(stderr, "rsocket-dump: cannot read %s: %s\n", d->name, strerror(errno));
      return -1;
    }
    keep_sample(d, buf, n);
    return (long)n;
  }
  size_t out = 0;
  char text[8192];
  while (out == 0) {
    size_t want = (cap - out) * 2 < sizeof text ? (cap - out) * 2 : sizeof text;
    size_t n = fread(text, 1, want, d->in);
    if (n == 0) {
      if (ferror(d->in)) {
        fprintf(stderr, "rsocket-dump: cannot read %s: %s\n", d->name, strerror(errno));
        return -1;
      }
      if (d->hex_hi >= 0) {
        fprintf(stderr, "rsocket-dump: odd number of hex digits at the end of the input\n");
        return -1;
      }
      return 0;
    }
    for (size_t i = 0; i < n; i++) {
      char c = text[i];
      if (c == '\n') {
        d->in_comment = false;
        d->hex_line++;
        continue;
      }
      if (d->in_comment || c == ' ' || c == '\t' || c == '\r' || c == ',') continue;
      if (c == '#') {
        d->in_comment = true;
        continue;
      }
      int v = (c >= '0' && c <= '9')   ? c - '0'
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                       : -1;
      if (v < 0) {
        unsigned long long line = (unsigned long long)d->hex_line + 1;
        if (c > 0x20 && c < 0x7f)
          fprintf(stderr, "rsocket-dump: line %llu: '%c' is not a hex digit\n", line, c);
        else
          fprintf(stderr,
                  "rsocket-dump: line %llu: byte 0x%02x is not a hex digit (binary input? "
                  "without --hex the bytes are read as they are)\n",
                  line, (unsigned)(uint8_t)c);
        return -1;
      }
      if (d->hex_hi < 0) {
        d->hex_hi = v;
      } else {
        buf[out] = (uint8_t)(d->hex_hi << 4 | v);
        keep_sample(d, buf + out++, 1);
        d->hex_hi = -1;
      }
    }
  }
  return (long)out;
}

/* ---- what the input looks like, when it is not what we expected ---- */

static bool looks_like_hex(const uint8_t *p, size_t n) {
  size_t digits = 0;
  bool comment = false;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    if (c == '\n') comment = false;
    if (comment || c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',') continue;
    if (c == '#') {
      comment = true;
      continue;
    }
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
    digits++;
  }
  return digits >= 6;
}

static bool looks_like_text(const uint8_t *p, size_t n) {
  /* The sample may end inside a UTF-8 character: leave a cut one out. */
  size_t start = n;
  while (start > 0 && n - start < 3 && (p[start - 1] & 0xC0) == 0x80) start--;
  if (start > 0 && p[start - 1] >= 0xC0) {
    uint8_t lead = p[start - 1];
    size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    if (n - (start - 1) < want) n = start - 1;
  }
  rs_bytes b = {p, n};
  return n > 0 && printable_utf8(b);
}

/* No frame could be read from the start of the input: say what it looks like and what inputs
 * rsocket-dump takes (the issue behind "truncated frame: 9 of 6841708 bytes" for text). */
static void hint_input(const dump *d) {
  rs_frame f;
  rs_frame_error e;
  if (!d->hex && looks_like_hex(d->sample, d->sample_len))
    fprintf(stderr, "rsocket-dump: the input looks like hex text: read it with --hex\n");
  else if (!d->no_length && d->sample_len < sizeof d->sample &&
           rs_frame_decode(&f, d->sample, d->sample_len, &e) == 0)
    fprintf(stderr,
            "rsocket-dump: the input looks like one %s frame without a length prefix: "
            "read it with --no-length%s\n",
            rs_frame_type_name(f.type), d->hex ? " --hex" : "");
  else if (looks_like_text(d->sample, d->sample_len))
    fprintf(stderr, "rsocket-dump: the input looks like text, not RSocket frames\n");
  else
    fprintf(stderr, "rsocket-dump: the input does not look like %sRSocket frames\n",
            d->no_length ? "an " : "length-prefixed ");
  fprintf(stderr, "rsocket-dump reads frames each preceded by a 3-byte big-endian length (as on "
                  "TCP), the same bytes\nwritten as hex text with --hex, or one frame without a "
                  "length prefix with --no-length\n(as a WebSocket message carries it).\n");
}

static int run_prefixed(dump *d) {
  static uint8_t buf[65536];
  rs_frame_reader r;
  rs_frame_reader_init(&r, NULL, 0);
  uint64_t total = 0; /* bytes consumed so far */
  int rc = 0;
  for (;;) {
    long n = next_bytes(d, buf, sizeof buf);
    if (n < 0) {
      rc = 2;
      break;
    }
    if (n == 0) break;
    size_t off = 0;
    while (off < (size_t)n) {
      rs_bytes frame;
      uint64_t before = total;
      rs_ssize used = rs_frame_reader_next(&r, buf + off, (size_t)n - off, &frame);
      if (used < 0) {
        /* The reader consumes a whole prefix before judging it: the bad prefix starts at the
         * first byte not yet counted, minus what was consumed of it in earlier calls. */
        size_t in_prefix = r.hdr_have;
        uint64_t at = before + (uint64_t)(r.hdr_have == 3 ? 3 : 0) - in_prefix;
        char what[160];
        snprintf(what, sizeof what, "length prefix %u %s (frames are 6 to 16,777,215 bytes)",
                 (unsigned)r.hdr[0] << 16 | (unsigned)r.hdr[1] << 8 | r.hdr[2],
                 used == RS_ERR_FRAME_TOO_SHORT ? "is below 6" : "is too large");
        report_error(d, what, "CONNECTION_ERROR", at);
        if (d->frames == 0) hint_input(d);
        rs_frame_reader_free(&r);
        return 1;
      }
      off += (size_t)used;
      total += (uint64_t)used;
      if (frame.ptr) handle_frame(d, frame.ptr, frame.len, total - frame.len);
    }
  }
  size_t pending = rs_frame_reader_pending(&r);
  if (rc == 0 && pending > 0) {
    char what[160];
    if (r.hdr_have < 3)
      snprintf(what, sizeof what, "input ends inside a length prefix (%zu of 3 bytes)", r.hdr_have);
    else
      snprintf(what, sizeof what, "truncated frame: %zu of %zu bytes", r.buf_len, r.need);
    report_error(d, what, NULL, total - pending);
    /* A first frame cut short is worth a hint when the input looks like text, or when its
     * length is absurd for the input (more than 16 times what followed, and at least 64 KiB);
     * a small frame cut short is just a cut capture. */
    bool absurd = r.need >= 65536 && r.need / 16 > r.buf_len;
    if (d->frames == 0 && r.hdr_have == 3 &&
        (absurd || looks_like_text(d->sample, d->sample_len) ||
         (!d->hex && looks_like_hex(d->sample, d->sample_len))))
      hint_input(d);
  }
  rs_frame_reader_free(&r);
  return rc;
}

static int run_single(dump *d) {
  size_t cap = 65536, len = 0;
  uint8_t *buf = malloc(cap);
  for (;;) {
    if (!buf) return 2;
    if (len == cap) {
      if (cap > RS_FRAME_MAX_SIZE) {
        fprintf(stderr, "rsocket-dump: input longer than the largest frame (16,777,215 bytes)\n");
        free(buf);
        return 1;
      }
      uint8_t *nb = realloc(buf, cap * 2);
      if (!nb) free(buf);
      buf = nb;
      cap *= 2;
      continue;
    }
    long n = next_bytes(d, buf + len, cap - len);
    if (n < 0) {
      free(buf);
      return 2;
    }
    if (n == 0) break;
    len += (size_t)n;
  }
  if (!handle_frame(d, buf, len, 0) && (looks_like_text(d->sample, d->sample_len) ||
                                        (!d->hex && looks_like_hex(d->sample, d->sample_len))))
    hint_input(d);
  free(buf);
  return 0;
}

int main(int argc, char **argv) {
  dump d;
  memset(&d, 0, sizeof d);
  d.hex_hi = -1;
  static const struct option opts[] = {
      {"json", no_argument, NULL, 'j'},      {"hex", no_argument, NULL, 'x'},
      {"no-length", no_argument, NULL, 'n'}, {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'v'},   {NULL, 0, NULL, 0},
  };
  int c;
  while ((c = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
    switch (c) {
    case 'j': d.json = true; break;
    case 'x': d.hex = true; break;
    case 'n': d.no_length = true; break;
    case 'h': usage(stdout); return 0;
    case 'v': printf("rsocket-dump %s (rsocket-c)\n", RS_VERSION_STRING); return 0;
    default: fprintf(stderr, "Try 'rsocket-dump --help'.\n"); return 2;
    }
  }
  if (optind + 1 < argc) {
    fprintf(stderr, "rsocket-dump: one input file at most\nTry 'rsocket-dump --help'.\n");
    return 2;
  }
  d.name = optind < argc ? argv[optind] : "-";
  d.in = strcmp(d.name, "-") == 0 ? stdin : fopen(d.name, "rb");
  if (!d.in) {
    fprintf(stderr, "rsocket-dump: cannot open %s: %s\n", d.name, strerror(errno));
    return 2;
  }
  int rc = d.no_length ? run_single(&d) : run_prefixed(&d);
  if (d.in != stdin) fclose(d.in);
  fflush(stdout);
  if (rc) return rc;
  return d.malformed ? 1 : 0;
}
