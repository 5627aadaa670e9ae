/*
 * rsocket-gateway --static DIR: the files of one directory over plain HTTP on the gateway's port,
 * so one process serves a web app and its socket. GET and HEAD only (the runtime answers other
 * methods 405), "/" and ".../" are index.html, no directory listing, nothing outside DIR (no
 * "..", no dot files, symbolic links only when they stay inside), MIME types by extension,
 * ETag + Last-Modified with 304 answers, "Cache-Control: no-cache" (browsers revalidate, so an
 * edited file is seen at once).
 *
 * Files are read on the worker's thread when asked for: this is for a web app's few small files
 * (at most GW_STATIC_MAX_FILE each), not a file server.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gateway.h"

#define GW_STATIC_MAX_FILE (16u << 20)

static const struct {
  const char *ext, *type;
} mime_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"woff2", "font/woff2"},
    {"woff", "font/woff"},
    {"wasm", "application/wasm"},
};

static const char *mime_of(const char *path) {
  const char *dot = strrchr(path, '.');
  const char *slash = strrchr(path, '/');
  if (dot && (!slash || dot > slash))
    for (size_t i = 0; i < sizeof mime_types / sizeof mime_types[0]; i++)
      if (strcasecmp(dot + 1, mime_types[i].ext) == 0) return mime_types[i].type;
  return "application/octet-stream";
}

int gw_static_init(gw_config *c, char *err, size_t errlen) {
  if (!c->static_dir) return 0;
  char real[PATH_MAX];
  struct stat st;
  if (!realpath(c->static_dir, real) || stat(real, &st) != 0) {
    snprintf(err, errlen, "--static %s: %s", c->static_dir, strerror(errno));
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "--static %s: not a directory", c->static_dir);
    return -1;
  }
  free(c->static_real);
  c->static_real = strdup(real);
  return c->static_real ? 0 : -1;
}

static int hexval(uint8_t ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* The request path percent-decoded into out, "index.html" added to a path ending in '/'.
 * Refuses what could leave the directory or name something hidden: "..", "." or any segment
 * starting with '.', a NUL, a backslash, a path not starting with '/'. */
static bool decode_path(rs_bytes path, char *out, size_t cap) {
  if (path.len == 0 || path.ptr[0] != '/') return false;
  size_t o = 0;
  for (size_t i = 0; i < path.len; i++) {
    int ch = path.ptr[i];
    if (ch == '%') {
      if (i + 2 >= path.len) return false;
      int hi = hexval(path.ptr[i + 1]), lo = hexval(path.ptr[i + 2]);
      if (hi < 0 || lo < 0) return false;
      ch = hi * 16 + lo;
      i += 2;
    }
    if (ch == 0 || ch == '\\' || o + 1 >= cap) return false;
    if (ch == '.' && o > 0 && out[o - 1] == '/') return false; /* "/.x", "/..", "/." */
    out[o++] = (char)ch;
  }
  out[o] = '\0';
  if (out[o - 1] == '/') {
    static const char index[] = "index.html";
    if (o + sizeof index > cap) return false;
    memcpy(out + o, index, sizeof index);
  }
  return true;
}

static void http_date(time_t t, char *buf, size_t cap) {
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Serves the request from --static. Returns false when it is not a file there (the caller
 * answers 404). */
bool gw_static_serve(const gw_config *c, const rs_http_request *req, rs_http_response *res) {
  if (!c->static_real) return false;
  char rel[1024], full[PATH_MAX], real[PATH_MAX];
  if (!decode_path(req->path, rel, sizeof rel)) return false;
  int n = snprintf(full, sizeof full, "%s%s", c->static_real, rel);
  if (n < 0 || (size_t)n >= sizeof full) return false;
  /* Symbolic links are followed only when they stay inside the directory. */
  size_t root_len = strlen(c->static_real);
  if (!realpath(full, real) || strncmp(real, c->static_real, root_len) != 0 ||
      real[root_len] != '/')
    return false;
  int fd = open(real, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return false;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > GW_STATIC_MAX_FILE) {
    close(fd);
    return false;
  }
  char etag[64], modified[64], etag_h[80], modified_h[96];
  snprintf(etag, sizeof etag, "\"%llx-%llx\"",
           (unsigned long long)st.st_mtim.tv_sec * 1000000000ull +
               (unsigned long long)st.st_mtim.tv_nsec,
           (unsigned long long)st.st_size);
  http_date(st.st_mtime, modified, sizeof modified);
  snprintf(etag_h, sizeof etag_h, "ETag: %s", etag);
  snprintf(modified_h, sizeof modified_h, "Last-Modified: %s", modified);
  const char *headers[] = {etag_h, modified_h, "Cache-Control: no-cache",
                           "X-Content-Type-Options: nosniff", NULL};
  rs_bytes inm = rs_http_request_header(req, "If-None-Match");
  if (inm.ptr && inm.len == strlen(etag) && memcmp(inm.ptr, etag, inm.len) == 0) {
    close(fd);
    rs_http_respond(res, 304, NULL, headers, NULL, 0);
    return true;
  }
  size_t size = (size_t)st.st_size;
  char *body = malloc(size ? size : 1);
  size_t got = 0;
  while (body && got < size) {
    ssize_t r = pread(fd, body + got, size - got, (off_t)got);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      break;
    }
    got += (size_t)r;
  }
  close(fd);
  if (!body || got != size) {
    free(body);
    static const char msg[] = "cannot read the file\n";
    rs_http_respond(res, 500, "text/plain; charset=utf-8", NULL, msg, sizeof msg - 1);
    return true;
  }
  rs_http_respond(res, 200, mime_of(real), headers, body, size);
  free(body);
  return true;
}
