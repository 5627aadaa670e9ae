/*
 * rsocket-gateway: pushes from backends. A backend reaches clients without being asked by sending
 * REQUEST_FNF to the gateway over a connection the gateway opened, with the route
 *   push.all               every client of this gateway
 *   push.session.<id>      the client whose session id (the client metadata entry's) is <id>
 *   push.user.<id>         the clients authenticated as <id> (once authentication exists: until
 *                          then no client has a user, and such pushes reach nobody)
 * and the gateway delivers {"type":"ind","route":"…","data":…} (no id) to each. A push arrives on
 * one worker (the one whose pool owns the connection); the others get a copy through
 * rs_runtime_post. A session id names its worker (its top byte), so push.session goes to that
 * worker only. Pushes are not flow-controlled: a client that does not read them is closed as a
 * slow consumer (--max-buffer) like any other.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "rsocket/service.h"

typedef enum push_kind { PUSH_ALL, PUSH_SESSION, PUSH_USER } push_kind;

typedef struct push_job {
  gw_gateway *gw; /* the worker it runs on */
  push_kind kind;
  uint64_t session; /* PUSH_SESSION */
  size_t user_off;  /* PUSH_USER: where the user id starts in the route */
  size_t route_len, data_len;
  uint8_t bytes[]; /* route, then data */
} push_job;

/* ---- sessions by id (open addressing, linear probing, backward-shift deletion) ---- */

static uint32_t slot_of(uint64_t id, uint32_t mask) {
  return (uint32_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & mask;
}

static void put_raw(gw_client **t, uint32_t cap, gw_client *c) {
  uint32_t mask = cap - 1, i = slot_of(c->session_id, mask);
  while (t[i]) i = (i + 1) & mask;
  t[i] = c;
}

bool gw_sessions_add(gw_gateway *gw, gw_client *c) {
  if ((gw->n_sessions + 1) * 4 > gw->sessions_cap * 3) {
    uint32_t ncap = gw->sessions_cap ? gw->sessions_cap * 2 : 64;
    gw_client **nt = calloc(ncap, sizeof *nt);
    if (!nt) return false;
    for (uint32_t i = 0; i < gw->sessions_cap; i++)
      if (gw->sessions[i]) put_raw(nt, ncap, gw->sessions[i]);
    free(gw->sessions);
    gw->sessions = nt;
    gw->sessions_cap = ncap;
  }
  put_raw(gw->sessions, gw->sessions_cap, c);
  gw->n_sessions++;
  return true;
}

gw_client *gw_sessions_find_id(gw_gateway *gw, uint64_t id) {
  if (!gw->sessions_cap) return NULL;
  uint32_t mask = gw->sessions_cap - 1;
  for (uint32_t i = slot_of(id, mask); gw->sessions[i]; i = (i + 1) & mask)
    if (gw->sessions[i]->session_id == id) return gw->sessions[i];
  return NULL;
}

void gw_sessions_remove(gw_gateway *gw, gw_client *c) {
  if (!gw->sessions_cap) return;
  uint32_t mask = gw->sessions_cap - 1, i = slot_of(c->session_id, mask);
  while (gw->sessions[i] != c) {
    if (!gw->sessions[i]) return;
    i = (i + 1) & mask;
  }
  gw->sessions[i] = NULL;
  gw->n_sessions--;
  for (uint32_t j = (i + 1) & mask; gw->sessions[j]; j = (j + 1) & mask) {
    uint32_t home = slot_of(gw->sessions[j]->session_id, mask);
    bool in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!in_range) {
      gw->sessions[i] = gw->sessions[j];
      gw->sessions[j] = NULL;
      i = j;
    }
  }
}

/* ---- delivery ---- */

static void deliver(gw_gateway *gw, const push_job *j) {
  rs_bytes route = {j->bytes, j->route_len};
  rs_bytes data = {j->bytes + j->route_len, j->data_len};
  gw->out.len = 0;
  if (rs_gw_format_push(&gw->out, &gw->parser, route, data) != 0) return;
  size_t len = gw->out.len;
  GW_ADD(gw->stats.pushes, 1);
  if (j->kind == PUSH_SESSION) {
    gw_client *c = gw_sessions_find_id(gw, j->session);
    if (c) gw_client_send_copy(c, gw->out.ptr, len);
  } else {
    /* A send may close a slow consumer: that only marks it; it leaves the table in on_close,
     * later, so the walk is safe. */
    const uint8_t *user = j->bytes + j->user_off;
    size_t user_len = j->route_len - j->user_off;
    for (uint32_t i = 0; i < gw->sessions_cap; i++) {
      gw_client *c = gw->sessions[i];
      if (!c) continue;
      if (j->kind == PUSH_USER &&
          (!c->user || strlen(c->user) != user_len || memcmp(c->user, user, user_len) != 0))
        continue; /* no user until the client authenticated */
      gw_client_send_copy(c, gw->out.ptr, len);
    }
  }
  gw->out.len = 0;
}

static void run_job(void *arg) {
  push_job *j = arg;
  deliver(j->gw, j);
  free(j);
}

/* Copies the push for worker `to` and posts it there. */
static void post_job(gw_gateway *to, const push_job *j) {
  size_t n = sizeof *j + j->route_len + j->data_len;
  push_job *copy = malloc(n);
  if (!copy) return;
  memcpy(copy, j, n);
  copy->gw = to;
  if (rs_runtime_post(to->loop, run_job, copy) != 0) free(copy); /* that worker is stopping */
}

static bool has_prefix(rs_bytes s, const char *p, size_t *rest) {
  size_t n = strlen(p);
  if (s.len < n || memcmp(s.ptr, p, n) != 0) return false;
  *rest = n;
  return true;
}

/* A backend's request on a connection the gateway opened. Only fire-and-forget pushes are
 * served; anything else is refused (ERROR REJECTED). */
int gw_push_request(rs_conn *conn, const rs_request *req, gw_gateway *gw) {
  if (req->type != RS_FRAME_REQUEST_FNF) return -1;
  rs_bytes route;
  const rs_conn_settings *set = rs_conn_get_settings(conn);
  if (rs_route_of(set->metadata_mime, &req->payload, &route) != 0 || route.len == 0) {
    GW_ADD(gw->stats.pushes_dropped, 1);
    return 0;
  }
  push_job j = {.gw = gw};
  size_t off;
  if (route.len == 8 && memcmp(route.ptr, "push.all", 8) == 0) {
    j.kind = PUSH_ALL;
  } else if (has_prefix(route, "push.session.", &off)) {
    char hex[17];
    size_t n = route.len - off;
    if (n != 16) {
      GW_ADD(gw->stats.pushes_dropped, 1);
      return 0;
    }
    memcpy(hex, route.ptr + off, 16);
    hex[16] = '\0';
    char *end;
    j.session = strtoull(hex, &end, 16);
    if (*end) {
      GW_ADD(gw->stats.pushes_dropped, 1);
      return 0;
    }
    j.kind = PUSH_SESSION;
  } else if (has_prefix(route, "push.user.", &off) && route.len > off) {
    j.kind = PUSH_USER;
    j.user_off = off;
  } else {
    GW_ADD(gw->stats.pushes_dropped, 1);
    return 0;
  }
  j.route_len = route.len;
  j.data_len = req->payload.data.len;
  size_t n = sizeof j + j.route_len + j.data_len;
  push_job *job = malloc(n);
  if (!job) return 0;
  *job = j;
  memcpy(job->bytes, route.ptr, route.len);
  if (j.data_len) memcpy(job->bytes + route.len, req->payload.data.ptr, j.data_len);
  rs_server *server = gw->server;
  int workers = server ? rs_server_workers(server) : 1;
  if (j.kind == PUSH_SESSION) {
    int w = (int)(j.session >> 56);
    gw_gateway *to = w < workers && server ? rs_server_worker_user(server, w) : NULL;
    if (to == gw || !server)
      deliver(gw, job);
    else if (to)
      post_job(to, job);
  } else {
    for (int w = 0; w < workers && server; w++) {
      gw_gateway *to = rs_server_worker_user(server, w);
      if (to && to != gw) post_job(to, job);
    }
    deliver(gw, job);
  }
  free(job);
  return 0;
}
