/*
 * The router: (route, interaction model) -> handler. Routes live in an open-addressing table
 * (linear probing, FNV-1a hash, load at most 1/2), so a lookup hashes the route once and compares
 * it with one entry in the usual case, however many routes a service has. Routes are never
 * removed, so no deletion scheme is needed. Requests that cannot be routed are answered here with
 * the spec's error codes (see rsocket/service.h for why each).
 */
#include <stdio.h>
#include <string.h>

#include "rsocket/extensions.h"
#include "rsocket/frame.h"
#include "service/service_internal.h"

#define MODELS 4

typedef struct route_slot {
  char *name; /* NULL: empty slot */
  size_t len;
  uint32_t hash;
  unsigned models; /* RS_MODEL_* bits with a handler */
  struct {
    rs_route_handler fn;
    void *user;
  } h[MODELS];
} route_slot;

struct rs_router {
  rs_mem mem;
  route_slot *slots;
  size_t cap; /* a power of two, or 0 */
  size_t used, pairs;
};

/* Index of a model bit (0..3). */
static int model_index(unsigned model) {
  int i = 0;
  while (i < MODELS && model != (1u << i)) i++;
  return i;
}

rs_router *rs_router_new(const rs_mem *mem) {
  if (!mem) mem = rs_mem_default();
  rs_router *r = mem->calloc(1, sizeof *r, mem->user);
  if (r) r->mem = *mem;
  return r;
}

void rs_router_free(rs_router *r) {
  if (!r) return;
  for (size_t i = 0; i < r->cap; i++) r->mem.free(r->slots[i].name, r->mem.user);
  r->mem.free(r->slots, r->mem.user);
  r->mem.free(r, r->mem.user);
}

size_t rs_router_count(const rs_router *r) {
  return r ? r->pairs : 0;
}

static route_slot *find(const rs_router *r, const uint8_t *name, size_t len, uint32_t hash) {
  if (!r->cap) return NULL;
  for (size_t i = hash & (r->cap - 1);; i = (i + 1) & (r->cap - 1)) {
    route_slot *s = &r->slots[i];
    if (!s->name) return s; /* the empty slot where it would go */
    if (s->hash == hash && s->len == len && memcmp(s->name, name, len) == 0) return s;
  }
}

static int grow(rs_router *r) {
  size_t cap = r->cap ? r->cap * 2 : 16;
  route_slot *old = r->slots, *slots = r->mem.calloc(cap, sizeof *slots, r->mem.user);
  if (!slots) return RS_ERR_NOMEM;
  size_t old_cap = r->cap;
  r->slots = slots;
  r->cap = cap;
  for (size_t i = 0; i < old_cap; i++) {
    if (old[i].name) *find(r, (const uint8_t *)old[i].name, old[i].len, old[i].hash) = old[i];
  }
  r->mem.free(old, r->mem.user);
  return 0;
}

int rs_router_add(rs_router *r, const char *route, unsigned models, rs_route_handler handler,
                  void *user) {
  if (!r || !route || !handler || !models || (models & ~RS_MODEL_ALL))
    return RS_ERR_INVALID_ARGUMENT;
  size_t len = strlen(route);
  if (len == 0 || len > 255) return RS_ERR_INVALID_ARGUMENT;
  if ((r->used + 1) * 2 > r->cap) {
    int rc = grow(r);
    if (rc) return rc;
  }
  uint32_t hash = rs__svc_hash((const uint8_t *)route, len);
  route_slot *s = find(r, (const uint8_t *)route, len, hash);
  if (s->models & models) return RS_ERR_INVALID_STATE;
  if (!s->name) {
    s->name = r->mem.malloc(len + 1, r->mem.user);
    if (!s->name) return RS_ERR_NOMEM;
    memcpy(s->name, route, len + 1);
    s->len = len;
    s->hash = hash;
    r->used++;
  }
  for (int i = 0; i < MODELS; i++) {
    if (!(models & (1u << i))) continue;
    s->h[i].fn = handler;
    s->h[i].user = user;
    r->pairs++;
  }
  s->models |= models;
  return 0;
}

/* ---- dispatch ---- */

/* Copies `b` into `out` for an error message: printable ASCII kept, other bytes as '?'. */
static void printable(char *out, size_t cap, rs_bytes b) {
  size_t n = b.len < cap - 1 ? b.len : cap - 1;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = b.ptr[i];
    out[i] = c >= 0x20 && c < 0x7f && c != '\'' ? (char)c : '?';
  }
  out[n] = '\0';
}

/* Answers a request that no handler will see. Fire-and-forget has no stream: nothing to say. */
static int refuse(rs_conn *conn, const rs_request *req, uint32_t code, const char *msg) {
  if (req->type != RS_FRAME_REQUEST_FNF)
    rs_conn_send_error(conn, req->stream_id, code, rs_bytes_str(msg));
  return 0;
}

static int no_route(rs_conn *conn, const rs_request *req, int rc) {
  if (rc < 0) return refuse(conn, req, RS_ERROR_INVALID, "malformed routing metadata");
  rs_bytes mime = rs_conn_get_settings(conn)->metadata_mime;
  char msg[512], type[256];
  printable(type, sizeof type, mime);
  if (mime.len && strcmp(type, RS_MIME_ROUTING) != 0 && strcmp(type, RS_MIME_COMPOSITE_METADATA))
    snprintf(msg, sizeof msg,
             "no route: the connection's metadata type is '%s'; routes travel in "
             "%s (a routing entry) or %s",
             type, RS_MIME_COMPOSITE_METADATA, RS_MIME_ROUTING);
  else
    snprintf(msg, sizeof msg, "no route: the request has no routing metadata (%s)",
             RS_MIME_ROUTING);
  return refuse(conn, req, RS_ERROR_INVALID, msg);
}

static int wrong_route(rs_conn *conn, const rs_request *req, const route_slot *s, rs_bytes route,
                       unsigned model) {
  char name[256], msg[512], served[80] = "";
  printable(name, sizeof name, route);
  if (!s || !s->name) {
    snprintf(msg, sizeof msg, "no route '%s' for %s", name, rs_model_name(model));
  } else {
    for (int i = 0; i < MODELS; i++) {
      if (!(s->models & (1u << i))) continue;
      size_t n = strlen(served);
      snprintf(served + n, sizeof served - n, "%s%s", n ? " and " : "", rs_model_name(1u << i));
    }
    snprintf(msg, sizeof msg, "route '%s' serves %s, not %s", name, served, rs_model_name(model));
  }
  return refuse(conn, req, RS_ERROR_REJECTED, msg);
}

int rs_router_dispatch(const rs_router *r, rs_conn *conn, const rs_request *req) {
  if (!r || !conn || !req) return RS_ERR_INVALID_ARGUMENT;
  unsigned model = rs_model_of(req->type);
  rs_bytes route = {NULL, 0};
  int rc = rs_route_of(rs_conn_get_settings(conn)->metadata_mime, &req->payload, &route);
  if (rc != 1) return no_route(conn, req, rc);
  const route_slot *s = find(r, route.ptr, route.len, rs__svc_hash(route.ptr, route.len));
  if (!s || !(s->models & model)) return wrong_route(conn, req, s, route, model);
  int i = model_index(model);
  return s->h[i].fn(conn, req, s->h[i].user);
}

static int on_request(rs_conn *conn, const rs_request *req, void *user) {
  return rs_router_dispatch(user, conn, req);
}

void rs_router_callbacks(rs_conn_callbacks *cb) {
  if (!cb) return;
  cb->struct_size = sizeof *cb;
  cb->on_request = on_request;
  rs_feed_callbacks(cb);
}
