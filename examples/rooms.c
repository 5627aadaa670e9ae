/*
 * rooms: a chat service on rsocket/service.h, in one page.
 *
 *   example-rooms URI        (tcp://127.0.0.1:7878, ws://127.0.0.1:8080/, ...; prints
 *                             "listening on URI" and serves until SIGINT or SIGTERM)
 *
 * Routes (routing metadata, e.g. `rsocket -r rooms.post`), JSON data:
 *   rooms.post  request-response  {"room": R, "text": T}  ->  {"offset": N}
 *               N counts the posts of room R: 1 for its first, then 2, 3... (per process)
 *   rooms.feed  request-stream    {"room": R}  ->  {"offset": N, "text": T} for every post to R
 *               made after the subscription, in order; never another room's
 * Bad input (not JSON, no room, a field that is not a string, room over 100 bytes or text over
 * 4096) gets ERROR[APPLICATION_ERROR] "bad request: WHY (want {"room": "R", ...})". Each subscriber
 * has a queue of 256 posts (rs_feed's default): one that reads slower than the room is posted to is
 * cut off with ERROR[APPLICATION_ERROR] "subscriber too slow" rather than growing the server.
 */
#include <jansson.h>
#include <rsocket/service.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rs_topics *topics; /* room -> its subscribers */

/* The request's {"room": R[, "text": T]}, or NULL once the requester has been told why not. */
static json_t *parse(rs_conn *c, const rs_request *r, const char **room, const char **text) {
  json_error_t e;
  json_t *j = json_loadb((const char *)r->payload.data.ptr, r->payload.data.len, 0, &e);
  if (j && !json_unpack_ex(j, &e, 0, text ? "{s:s,s:s}" : "{s:s}", "room", room, "text", text)) {
    if (**room && strlen(*room) <= 100 && (!text || strlen(*text) <= 4096)) return j;
    strcpy(e.text, "room must have 1 to 100 bytes, text at most 4096");
  }
  rs_service_errorf(c, r->stream_id, RS_ERROR_APPLICATION_ERROR, "bad request: %s (want %s)",
                    e.text, text ? "{\"room\": \"R\", \"text\": \"T\"}" : "{\"room\": \"R\"}");
  json_decref(j);
  return NULL;
}

static int post(rs_conn *c, const rs_request *r, void *user) {
  const char *room, *text;
  json_t *in = parse(c, r, &room, &text), *rooms = user;
  if (!in) return 0;
  json_int_t n = json_integer_value(json_object_get(rooms, room)) + 1;
  json_object_set_new(rooms, room, json_integer(n));
  json_t *item = json_pack("{s:I,s:s}", "offset", n, "text", text);
  char *json = json_dumps(item, JSON_COMPACT);
  rs_topics_publish_data(topics, room, json, strlen(json));
  free(json), json_decref(item), json_decref(in);
  return rs_service_replyf(c, r->stream_id, "{\"offset\":%" JSON_INTEGER_FORMAT "}", n);
}

static int feed(rs_conn *c, const rs_request *r, void *user) {
  const char *room;
  json_t *in = parse(c, r, &room, NULL);
  int rc = in ? rs_topics_subscribe(user, room, c, r->stream_id, NULL) : 0;
  json_decref(in);
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 2) return fprintf(stderr, "usage: example-rooms URI\n"), 2;
  json_t *rooms = json_object();
  topics = rs_topics_new(NULL);
  rs_router *router = rs_router_new(NULL);
  rs_router_add(router, "rooms.post", RS_MODEL_REQUEST_RESPONSE, post, rooms);
  rs_router_add(router, "rooms.feed", RS_MODEL_REQUEST_STREAM, feed, topics);
  int rc = rs_router_serve(router, argv[1], NULL);
  rs_router_free(router), rs_topics_free(topics), json_decref(rooms);
  return rc ? 1 : 0;
}
