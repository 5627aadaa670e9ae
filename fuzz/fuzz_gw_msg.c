/*
 * The gateway's client message parser (src/rsocket/gateway.h) on arbitrary input, in a buffer of
 * exactly its size so any read past it trips ASan. A message either parses into a command whose
 * views lie inside the input, or fails with BAD_REQUEST and a message. Whatever we format from it
 * must load in jansson: the cfm and ind of a command's data, the rej of a refusal, and the input
 * itself embedded as a backend payload. jansson refuses numbers beyond a double or an int64 and
 * "\u0000" in an object key, which JSON allows: such a refusal is not a failure.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "rsocket/gateway.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must_load(const rs_gw_buf *b) {
  json_error_t e;
  json_t *j = json_loadb((const char *)b->ptr, b->len, JSON_ALLOW_NUL, &e);
  if (!j && !strstr(e.text, "overflow") && !strstr(e.text, "too big") &&
      !strstr(e.text, "NUL byte in object key"))
    abort();
  json_decref(j);
}

static bool inside(rs_bytes v, const uint8_t *p, size_t n) {
  return !v.len || (v.ptr >= p && v.ptr + v.len <= p + n);
}

static void check_cmd(rs_gw_parser *gp, const rs_gw_cmd *c, const uint8_t *in, size_t n) {
  if (c->type < RS_GW_REQ || c->type > RS_GW_HELLO) abort();
  if (!inside(c->data, in, n) || !inside(c->id.text, in, n)) abort();
  if (c->has_n && (c->n < 1 || c->n > RS_GW_N_MAX)) abort();
  if (c->route_len > RS_GW_ROUTE_MAX) abort();
  /* A command's data is JSON, so it goes out as it came in. */
  if (c->data.len && rs_gw_json_check(gp, c->data.ptr, c->data.len, NULL, NULL, NULL)) abort();
  for (int ind = 0; ind < 2; ind++) {
    rs_gw_buf b;
    rs_gw_buf_init(&b, NULL);
    if (rs_gw_format_data(&b, ind, &c->id, c->data)) abort();
    must_load(&b);
    b.len = 0;
    if (rs_gw_format_end(&b, &c->id) || (must_load(&b), 0)) abort();
    rs_gw_buf_free(&b);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static rs_gw_parser gp;
  if (!gp.tokens && rs_gw_parser_init(&gp, NULL, NULL)) abort();
  uint8_t *in = malloc(size ? size : 1);
  if (!in) return 0;
  memcpy(in, data, size);
  rs_gw_cmd c;
  rs_gw_error e;
  rs_gw_buf b;
  rs_gw_buf_init(&b, NULL);
  int rc = rs_gw_parse(&gp, in, size, &c, &e);
  if (rc == 0)
    check_cmd(&gp, &c, in, size);
  else if (rc != RS_ERR_MALFORMED || !e.message || strcmp(e.code, "BAD_REQUEST"))
    abort();
  else if (rs_gw_format_rej(&b, &e.id, e.code, rs_bytes_str(e.message)))
    abort();
  else
    must_load(&b);
  b.len = 0;
  rs_gw_id id = {RS_GW_ID_INT, 1, rs_bytes_str("1")};
  if (rs_gw_format_payload(&b, &gp, true, &id, (rs_bytes){in, size})) abort();
  must_load(&b);
  /* A backend's error message is any bytes too. */
  b.len = 0;
  if (rs_gw_format_rej(&b, &id, "APPLICATION_ERROR", (rs_bytes){in, size})) abort();
  must_load(&b);
  rs_gw_buf_free(&b);
  free(in);
  return 0;
}
