/* rsocket client: request and SETUP metadata from the command line, composed as rsc does.
 *
 * Requests carry one metadata value of the connection's metadata MIME type (SETUP). A single -m
 * without a route or authentication is sent as it is, of type --mmt (default
 * application/octet-stream). Anything more becomes composite metadata, whose entries are, in
 * order: the routing tags (-r), the authentication (--ab or --authSimple), then each -m with the
 * --mmt of the same rank (the last -m may go without one: application/octet-stream).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rsocket/extensions.h"

#define MIME_OCTET_STREAM  "application/octet-stream"
#define MIME_AUTH_BASIC    "message/x.rsocket.authentication.basic.v0"
#define MIME_APP_INFO      "message/x.rsocket.application+json"
#define MAX_METADATA_BYTES 16777215u /* a frame's 24-bit length bounds any metadata */

/* Letters and digits of `s`, lower-cased, without the "x." or "x-" of a vendor-less subtype and
 * without a ".v0" version suffix: "message/x.rsocket.routing.v0" and "MESSAGE_RSOCKET_ROUTING"
 * both become "messagersocketrouting". */
static void squash(const char *s, char *out, size_t cap) {
  size_t n = 0;
  const char *slash = strchr(s, '/');
  size_t len = strlen(s);
  if (len > 3 && strcmp(s + len - 3, ".v0") == 0) len -= 3;
  for (size_t i = 0; i < len && n + 1 < cap; i++) {
    if (slash && s + i == slash + 1 && s[i] == 'x' && (s[i + 1] == '.' || s[i + 1] == '-')) {
      i++;
      continue;
    }
    if (isalnum((unsigned char)s[i])) out[n++] = (char)tolower((unsigned char)s[i]);
  }
  out[n] = '\0';
}

const char *cli_mime(const char *arg) {
  if (strchr(arg, '/')) return arg;
  if (strcmp(arg, "AUTHENTICATION_BASIC") == 0) return MIME_AUTH_BASIC;
  if (strcmp(arg, "APP_INFO") == 0) return MIME_APP_INFO;
  char want[160], have[160];
  squash(arg, want, sizeof want);
  for (int id = 0; id < 128 && want[0]; id++) {
    const char *name = rs_mime_name((uint8_t)id);
    if (!name) continue;
    squash(name, have, sizeof have);
    if (strcmp(want, have) == 0) return name;
  }
  return NULL;
}

typedef struct growbuf {
  uint8_t *ptr;
  size_t len, cap;
} growbuf;

static int reserve(growbuf *b, size_t more) {
  if (b->len + more <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + more) cap *= 2;
  uint8_t *p = realloc(b->ptr, cap);
  if (!p) return -1;
  b->ptr = p;
  b->cap = cap;
  return 0;
}

/* Appends one composite entry; `id` >= 0 uses a well-known id, else `mime`. */
static int add_entry(growbuf *b, int id, const char *mime, const uint8_t *content, size_t len) {
  rs_ssize need = id >= 0 ? rs_composite_encode_id(NULL, 0, (uint8_t)id, content, len)
                          : rs_composite_encode(NULL, 0, mime, strlen(mime), content, len);
  if (need < 0) {
    fprintf(stderr, "rsocket: cannot add a %s metadata entry of %zu bytes: %s\n",
            id >= 0 ? rs_mime_name((uint8_t)id) : mime, len, rs_strerror((int)need));
    return -1;
  }
  if (reserve(b, (size_t)need) != 0) return -1;
  rs_ssize n =
      id >= 0
          ? rs_composite_encode_id(b->ptr + b->len, b->cap - b->len, (uint8_t)id, content, len)
          : rs_composite_encode(b->ptr + b->len, b->cap - b->len, mime, strlen(mime), content, len);
  if (n < 0) return -1;
  b->len += (size_t)n;
  return 0;
}

/* Encodes an authentication entry's content (bearer or simple "USER:PASS") into *out. */
static int auth_content(const char *bearer, const char *simple, growbuf *out) {
  const char *colon = simple ? strchr(simple, ':') : NULL;
  size_t need = bearer ? strlen(bearer) + 8 : strlen(simple) + 8;
  if (reserve(out, need) != 0) return -1;
  rs_ssize n = bearer ? rs_auth_encode_bearer(out->ptr, out->cap, bearer, strlen(bearer))
                      : rs_auth_encode_simple(out->ptr, out->cap, simple, (size_t)(colon - simple),
                                              colon + 1, strlen(colon + 1));
  if (n < 0) {
    fprintf(stderr, "rsocket: cannot encode the authentication: %s\n", rs_strerror((int)n));
    return -1;
  }
  out->len = (size_t)n;
  return 0;
}

/* --sm with --smmt: one composite entry; for the authentication type, rsc's "simple:USER:PASS"
 * and "token:TOKEN" forms are encoded as the extension says. */
static int setup_entry(const cli_options *o, growbuf *b) {
  const char *mime = o->setup_metadata_mime;
  const cli_buf *sm = &o->setup_metadata;
  if (strcmp(mime, MIME_AUTH_BASIC) == 0) {
    fprintf(stderr,
            "rsocket: --smmt %s (Spring Security 5.2's basic authentication) is not "
            "supported; use --smmt " RS_MIME_AUTHENTICATION " with simple:USER:PASS\n",
            mime);
    return -1;
  }
  if (strcmp(mime, RS_MIME_AUTHENTICATION) != 0)
    return add_entry(b, -1, mime, sm->ptr ? sm->ptr : (const uint8_t *)"", sm->len);
  char *text = malloc(sm->len + 1);
  if (!text) return -1;
  memcpy(text, sm->ptr ? (const char *)sm->ptr : "", sm->len);
  text[sm->len] = '\0';
  growbuf content = {0};
  int rc = -1;
  if (strncmp(text, "token:", 6) == 0)
    rc = auth_content(text + 6, NULL, &content);
  else if (strncmp(text, "simple:", 7) == 0 && strchr(text + 7, ':'))
    rc = auth_content(NULL, text + 7, &content);
  else
    fprintf(stderr, "rsocket: with --smmt " RS_MIME_AUTHENTICATION
                    ", --sm is simple:USER:PASS or token:TOKEN\n");
  if (rc == 0) rc = add_entry(b, RS_MIME_ID_AUTHENTICATION, NULL, content.ptr, content.len);
  free(content.ptr);
  free(text);
  return rc;
}

static int build_request(const cli_options *o, int nmimes, cli_metadata *out) {
  growbuf b = {0}, tmp = {0};
  int rc = -1;
  if (o->nroutes > 0) {
    rs_bytes tags[CLI_MAX_ROUTES];
    size_t need = 0;
    for (int i = 0; i < o->nroutes; i++) {
      tags[i] = rs_bytes_str(o->routes[i]);
      need += tags[i].len + 1;
    }
    rs_ssize n;
    if (reserve(&tmp, need) != 0 ||
        (n = rs_routing_encode(tmp.ptr, tmp.cap, tags, (size_t)o->nroutes)) < 0 ||
        add_entry(&b, RS_MIME_ID_ROUTING, NULL, tmp.ptr, (size_t)n) != 0)
      goto done;
  }
  if (o->auth_bearer || o->auth_simple) {
    tmp.len = 0;
    if (auth_content(o->auth_bearer, o->auth_bearer ? NULL : o->auth_simple, &tmp) != 0 ||
        add_entry(&b, RS_MIME_ID_AUTHENTICATION, NULL, tmp.ptr, tmp.len) != 0)
      goto done;
  }
  for (int i = 0; i < o->nmetadata; i++) {
    const char *mime = i < nmimes ? o->metadata_mimes[i] : MIME_OCTET_STREAM;
    if (add_entry(&b, -1, mime, o->metadata[i].ptr, o->metadata[i].len) != 0) goto done;
  }
  if (b.len > MAX_METADATA_BYTES) {
    fprintf(stderr, "rsocket: the metadata is %zu bytes, over the 16 MiB a frame can carry\n",
            b.len);
    goto done;
  }
  out->request = b.ptr;
  out->request_len = b.len;
  b.ptr = NULL;
  rc = 0;
done:
  free(b.ptr);
  free(tmp.ptr);
  return rc;
}

int cli_metadata_build(const cli_options *o, cli_metadata *out) {
  memset(out, 0, sizeof *out);
  int nm = o->nmetadata, nt = o->nmetadata_mimes;
  bool extensions = o->nroutes > 0 || o->auth_bearer || o->auth_simple;
  out->composite = extensions || nm > 1 || o->setup_metadata_mime;
  if (o->setup_metadata_mime && !o->setup_metadata.set) {
    fprintf(stderr, "rsocket: --smmt names the type of the SETUP metadata: give it with --sm\n");
    return -1;
  }
  /* "--mmt <composite>" with built entries names the connection's type, not an entry's. */
  if (out->composite && nt == 1 && nm <= 1 &&
      strcmp(o->metadata_mimes[0], RS_MIME_COMPOSITE_METADATA) == 0)
    nt = 0;
  if (out->composite ? nt > nm || nt < nm - 1 : nt > 1) {
    fprintf(stderr,
            "rsocket: %d --mmt for %d -m: each --mmt gives the MIME type of the -m of the same "
            "rank (the last -m may go without one: %s)\n",
            nt, nm, MIME_OCTET_STREAM);
    return -1;
  }
  if (out->composite) {
    out->mime = RS_MIME_COMPOSITE_METADATA;
    if (build_request(o, nt, out) != 0) return -1;
  } else {
    out->mime = nt ? o->metadata_mimes[0] : MIME_OCTET_STREAM;
    if (nm == 1) {
      out->request = malloc(o->metadata[0].len ? o->metadata[0].len : 1);
      if (!out->request) return -1;
      memcpy(out->request, o->metadata[0].ptr ? o->metadata[0].ptr : (const uint8_t *)"",
             o->metadata[0].len);
      out->request_len = o->metadata[0].len;
    }
  }
  if (o->setup_metadata.set) {
    growbuf b = {0};
    int rc = 0;
    if (o->setup_metadata_mime) {
      rc = setup_entry(o, &b);
    } else if ((rc = reserve(&b, o->setup_metadata.len + 1)) == 0) {
      memcpy(b.ptr, o->setup_metadata.ptr ? o->setup_metadata.ptr : (const uint8_t *)"",
             o->setup_metadata.len);
      b.len = o->setup_metadata.len;
    }
    if (rc != 0) {
      free(b.ptr);
      cli_metadata_free(out);
      return -1;
    }
    out->setup = b.ptr;
    out->setup_len = b.len;
  }
  return 0;
}

void cli_metadata_free(cli_metadata *m) {
  free(m->request);
  free(m->setup);
  m->request = m->setup = NULL;
}
