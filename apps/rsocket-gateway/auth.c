/*
 * rsocket-gateway: authentication (JWT, with libjwt) and admission (Origin allow-list, per-client
 * rate limit).
 *
 * With --jwt-secret (HS256/384/512) or --jwt-public-key (RS*, PS*, ES*), a client must present a
 * token before anything else: as ?token= on the WebSocket URL, or as its first message
 * {"type":"hello","token":"…"} (answered {"type":"welcome","session":"…","user":"…"}), within
 * --auth-timeout. A token that is malformed, wrongly signed, signed with an algorithm of the other
 * family (the HS/RS confusion attack), expired (exp), not yet valid (nbf) or without a "sub"
 * closes the connection with 4401 and the reason. Until then only hello and ping are accepted and
 * messages are at most GW_PREAUTH_MAX bytes. The user id (sub) and the claims named by
 * --jwt-claims travel to backends in the client metadata entry.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway.h"

bool gw_auth_enabled(const gw_config *cfg) {
  return cfg->jwt_secret || cfg->jwt_public_key;
}

/* Reads SECRET or @FILE (the whole file, a trailing newline removed). */
int gw_auth_load_key(const char *arg, uint8_t **out, size_t *len, char *err, size_t errlen) {
  if (arg[0] != '@') {
    *len = strlen(arg);
    *out = (uint8_t *)strdup(arg);
    return *out ? 0 : -1;
  }
  FILE *f = fopen(arg + 1, "rb");
  if (!f) {
    snprintf(err, errlen, "cannot read %s: %s", arg + 1, strerror(errno));
    return -1;
  }
  size_t cap = 4096, n = 0;
  uint8_t *buf = malloc(cap);
  for (size_t r; buf && (r = fread(buf + n, 1, cap - n, f)) > 0;) {
    n += r;
    if (n == cap) {
      if (cap >= (1u << 20)) {
        fclose(f);
        free(buf);
        snprintf(err, errlen, "%s: over 1 MiB", arg + 1);
        return -1;
      }
      uint8_t *nb = realloc(buf, cap *= 2);
      if (!nb) free(buf);
      buf = nb;
    }
  }
  fclose(f);
  if (!buf) return -1;
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
  buf[n] = '\0'; /* n < cap: the loop grows the buffer when it fills */
  if (!n) {
    free(buf);
    snprintf(err, errlen, "%s is empty", arg + 1);
    return -1;
  }
  *out = buf;
  *len = n;
  return 0;
}

static bool alg_is_hmac(jwt_alg_t a) {
  return a == JWT_ALG_HS256 || a == JWT_ALG_HS384 || a == JWT_ALG_HS512;
}

static bool alg_is_public(jwt_alg_t a) {
  switch (a) {
  case JWT_ALG_RS256:
  case JWT_ALG_RS384:
  case JWT_ALG_RS512:
  case JWT_ALG_ES256:
  case JWT_ALG_ES384:
  case JWT_ALG_ES512: return true;
  default: return false;
  }
}

/* A JSON string's body: escapes for '"', '\\' and control characters. */
void gw_json_escape(char *out, size_t cap, const char *s) {
  size_t o = 0;
  for (; *s && o + 7 < cap; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      out[o++] = '\\', out[o++] = (char)ch;
    else if (ch < 0x20)
      o += (size_t)snprintf(out + o, cap - o, "\\u%04x", ch);
    else
      out[o++] = (char)ch;
  }
  out[o] = '\0';
}

/* The "alg" of a JWT's header (its first dot-separated part, base64url JSON). */
static int header_alg(const char *token, char *alg, size_t cap) {
  const char *dot = strchr(token, '.');
  size_t n = dot ? (size_t)(dot - token) : 0;
  if (n == 0 || n > 2048) return -1;
  /* base64url to base64, padded */
  char b64[2052];
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    char ch = token[i];
    if (ch == '-')
      ch = '+';
    else if (ch == '_')
      ch = '/';
    else if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')))
      return -1;
    b64[m++] = ch;
  }
  while (m % 4) b64[m++] = '=';
  unsigned char raw[1540];
  int r = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)m);
  if (r < 0) return -1;
  size_t pad = (n % 4 == 2) ? 2 : (n % 4 == 3) ? 1 : 0;
  json_t *h = json_loadb((const char *)raw, (size_t)r - pad, 0, NULL);
  const char *v = json_is_object(h) ? json_string_value(json_object_get(h, "alg")) : NULL;
  int rc = v && strlen(v) < cap ? 0 : -1;
  if (!rc) strcpy(alg, v);
  json_decref(h);
  return rc;
}

int gw_auth_check(const gw_config *cfg, const char *token, char **user, char **claims, char *why,
                  size_t whylen) {
  *user = *claims = NULL;
  bool hmac = cfg->jwt_secret != NULL;
  const uint8_t *key = hmac ? cfg->jwt_secret : cfg->jwt_public_key;
  size_t key_len = hmac ? cfg->jwt_secret_len : cfg->jwt_public_key_len;
  /* The header's algorithm decides how libjwt checks the signature: read it first, so that a
   * token of the other family never reaches the check (an HS256 token "signed" with our public
   * key as its HMAC secret would pass it), nor does "none". */
  char alg[16];
  if (header_alg(token, alg, sizeof alg) != 0) {
    snprintf(why, whylen, "token refused: malformed");
    return -1;
  }
  jwt_alg_t a = jwt_str_alg(alg);
  if (a == JWT_ALG_NONE || a == JWT_ALG_INVAL || (hmac ? !alg_is_hmac(a) : !alg_is_public(a))) {
    snprintf(why, whylen, "token refused: algorithm %s not accepted (%s only)", alg,
             hmac ? "HS256/384/512" : "RS/ES 256/384/512");
    return -1;
  }
  jwt_t *jwt = NULL;
  int rc = jwt_decode(&jwt, token, key, (int)key_len);
  if (rc != 0 || !jwt) {
    snprintf(why, whylen, "token refused: malformed or wrongly signed");
    return -1;
  }
  a = jwt_get_alg(jwt);
  if (a == JWT_ALG_NONE || (hmac ? !alg_is_hmac(a) : !alg_is_public(a))) {
    jwt_free(jwt);
    snprintf(why, whylen, "token refused: algorithm not accepted");
    return -1;
  }
  time_t now = time(NULL);
  errno = 0;
  long exp = jwt_get_grant_int(jwt, "exp");
  if (errno == 0 && exp <= (long)now) {
    jwt_free(jwt);
    snprintf(why, whylen, "token expired");
    return -1;
  }
  errno = 0;
  long nbf = jwt_get_grant_int(jwt, "nbf");
  if (errno == 0 && nbf > (long)now) {
    jwt_free(jwt);
    snprintf(why, whylen, "token not valid yet (nbf)");
    return -1;
  }
  const char *sub = jwt_get_grant(jwt, "sub");
  if (!sub || !*sub || strlen(sub) > 255) {
    jwt_free(jwt);
    snprintf(why, whylen, "token refused: no \"sub\" claim (1 to 255 bytes)");
    return -1;
  }
  *user = strdup(sub);
  /* The chosen claims as one JSON object (their values as the token has them). */
  if (cfg->n_jwt_claims) {
    size_t cap = 64, len = 1;
    char *obj = malloc(cap);
    if (obj) obj[0] = '{';
    for (size_t i = 0; obj && i < cfg->n_jwt_claims; i++) {
      char *v = jwt_get_grants_json(jwt, cfg->jwt_claims[i]);
      if (!v) continue;
      char name[256];
      gw_json_escape(name, sizeof name, cfg->jwt_claims[i]);
      size_t need = len + strlen(name) + strlen(v) + 8;
      if (need > 4096) { /* the entry rides on every request: keep it small */
        free(v);
        continue;
      }
      if (need > cap) {
        char *no = realloc(obj, cap = need * 2);
        if (!no) {
          free(v);
          free(obj);
          obj = NULL;
          break;
        }
        obj = no;
      }
      len += (size_t)sprintf(obj + len, "%s\"%s\":%s", len > 1 ? "," : "", name, v);
      free(v);
    }
    if (obj && len > 1) {
      obj[len++] = '}';
      obj[len] = '\0';
      *claims = obj;
    } else {
      free(obj);
    }
  }
  jwt_free(jwt);
  if (!*user) {
    free(*claims);
    *claims = NULL;
    snprintf(why, whylen, "out of memory");
    return -1;
  }
  return 0;
}

bool gw_origin_allowed(const gw_config *cfg, rs_bytes origin) {
  if (!cfg->n_origins) return true;
  if (!origin.ptr) return true; /* not a browser: browsers always send Origin */
  for (size_t i = 0; i < cfg->n_origins; i++)
    if (strlen(cfg->origins[i]) == origin.len &&
        memcmp(cfg->origins[i], origin.ptr, origin.len) == 0)
      return true;
  return false;
}

/* Token bucket: `rate` messages per second, bursts of as many. Tokens in thousandths. */
static uint64_t bucket_full(uint32_t rate) {
  uint64_t full = (uint64_t)rate * 1000;
  return full > UINT32_MAX ? UINT32_MAX : full;
}

void gw_rate_init(gw_bucket *b, uint32_t rate, uint64_t now_ms) {
  b->tokens = (uint32_t)bucket_full(rate);
  b->at = (uint32_t)now_ms;
}

bool gw_rate_take(gw_bucket *b, uint32_t rate, uint64_t now_ms) {
  if (!rate) return true;
  uint64_t full = bucket_full(rate);
  uint32_t now32 = (uint32_t)now_ms;
  uint64_t t = b->tokens + (uint64_t)(uint32_t)(now32 - b->at) * rate;
  b->tokens = (uint32_t)(t > full ? full : t);
  b->at = now32;
  if (b->tokens < 1000) return false;
  b->tokens -= 1000;
  return true;
}
