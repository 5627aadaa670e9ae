/* rsocket-gateway's settings: defaults, the command line, the config file, the route table. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_args.h"
#include "gateway.h"
#include "rsocket/uri.h"

#define MAX_ROUTES   4096
#define MAX_WORKERS  256
#define MAX_BACKENDS RS_POOL_MAX_TARGETS

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: rsocket-gateway --listen ws://127.0.0.1:8080 --route PATTERN=URI[,URI...] ...\n"
      "                       [options]\n"
      "\n"
      "A WebSocket gateway: browsers send JSON requests and subscriptions (req, sub, chan, fnf,\n"
      "more, unsub, ping: see docs/GATEWAY.md); each becomes a stream on one of a few long-lived\n"
      "RSocket connections to the backends that serve its route, the least-loaded one first.\n"
      "Credit flows from each browser's socket to the backend that produces for it. Browsers\n"
      "that speak RSocket themselves connect to /rsocket (or offer the subprotocol 'rsocket'):\n"
      "each of their streams goes to the backend of its routing metadata.\n"
      "\n"
      "  --listen URI             where browsers connect: ws://HOST:PORT[/PATH] or wss:// (with\n"
      "                           --cert and --key); prints 'listening on URI' when ready\n"
      "  --route PATTERN=URIS     backends (tcp://, tls://, ws://, wss://; comma-separated) for\n"
      "                           the routes PATTERN names: an exact route, a prefix ending in\n"
      "                           '.*' (rooms.* is rooms.x, rooms.x.y, not rooms), or '*';\n"
      "                           the most specific wins. Repeat for several.\n"
      "  --config FILE            the same settings as a JSON object (see docs/GATEWAY.md); the\n"
      "                           command line overrides it\n"
      "  --connections-per-backend K   RSocket connections to each backend (default 2)\n"
      "  --lb p2c|round-robin     how a connection is chosen (default p2c: the cheaper of two\n"
      "                           random ones, by load x latency)\n"
      "  --max-message BYTES      largest client message (default 1MiB; over it: close 1009)\n"
      "  --max-buffer BYTES       unsent output per client before it is closed with 1008 'slow\n"
      "                           consumer' (default 1MiB)\n"
      "  --max-clients N          clients at once (default: no limit; over it: HTTP 503)\n"
      "  --max-streams-per-client N   open subs, chans and reqs per client (default 1024)\n"
      "  --credit-window N        items a gateway-managed sub, or an RSocket client's stream at "
      "its\n"
      "                           backend, may have in flight (default 64)\n"
      "  --request-timeout DURATION   a req unanswered this long gets rej TIMEOUT (default 30s)\n"
      "  --workers N              worker threads (default 1)\n"
      "  --busy-poll              never sleep in the kernel: each worker spins on its loop (one\n"
      "                           busy core each) for the lowest latency\n"

      "  --backend-lease          ask backends for leases (SETUP with lease): a connection is\n"
      "                           used only while its lease has permits\n"
      "  --backend-resume DURATION   backend connections use RSocket resumption: one that is\n"
      "                           cut reconnects and resumes its streams (kept this long)\n"
      "  --rsocket-mtu BYTES      RSocket clients (/rsocket): fragment frames to them over\n"
      "                           BYTES (default 0: whole frames; at least 64)\n"
      "  --static DIR             serve the files of DIR over HTTP on the same port (GET and\n"
      "                           HEAD; / is DIR/index.html): a web app and its socket\n"
      "  --log-format text|json|none   one line per connection event on stderr (default\n"
      "                           text: logfmt)\n"
      "  --jwt-secret SECRET|@FILE   clients must authenticate with a JWT signed with HS256\n"
      "                           (or HS384/512) and this secret: ?token= on the URL, the\n"
      "                           first message {\"type\":\"hello\",\"token\":\"...\"}, or\n"
      "                           (RSocket) the SETUP's authentication metadata\n"
      "  --jwt-public-key FILE    the same with RS256/PS256/ES256 (and 384/512) tokens and this\n"
      "                           PEM public key\n"
      "  --jwt-claims NAMES       claims sent to backends besides sub (comma-separated)\n"
      "  --auth-timeout DURATION  time to authenticate (RSocket: to send SETUP) after\n"
      "                           connecting (default 10s)\n"
      "  --origin ORIGIN          allow browsers from ORIGIN only (repeatable; others: 403)\n"
      "  --rate-limit N           messages (RSocket: requests) per second per client, bursts\n"
      "                           of N (over it: rej RATE_LIMITED, RSocket ERROR REJECTED\n"
      "                           \"RATE_LIMITED: ...\"; default: no limit)\n"
      "  --cert FILE, --key FILE  TLS certificate chain and key (wss://)\n"
      "  -h, --help               this help;  -v, --version: print the version\n"
      "\n"
      "Sizes: bytes, or with a unit: 64KiB, 1MiB (also K, M). Durations: seconds, or 500ms, 30s,\n"
      "2m.\n"
      "SIGINT/SIGTERM drain: no new clients or requests, /healthz answers 503, each client is\n"
      "closed with 1001 (RSocket: CONNECTION_CLOSE) once its reqs in flight are answered\n"
      "(--drain-timeout DURATION at most, default 10s); a second signal stops at once.\n"
      "SIGHUP reloads the routes without dropping a client: the --config file is read again\n"
      "and the command line applied over it, as at the start (so --route on the command line\n"
      "stays, and the file's routes apply only without it). Backends that stay keep their\n"
      "connections; a removed backend takes no new request and its open streams go on until\n"
      "they end (--drain-timeout at most). A bad configuration is refused and logged; settings\n"
      "other than the routes are logged as ignored until a restart.\n"
      "HTTP on the same port: GET /healthz (200 while a backend is connected, else 503) and\n"
      "GET /metrics (Prometheus text format).\n"
      "Exit status: 0 ok, 1 cannot listen, 2 usage.\n");
}

void gw_config_init(gw_config *c) {
  memset(c, 0, sizeof *c);
  c->connections = 2;
  c->lb = RS_POOL_P2C;
  c->max_message = 1u << 20;
  c->max_buffer = 1u << 20;
  c->max_streams = 1024;
  c->credit_window = 64;
  c->request_timeout_ms = 30000;
  c->workers = 1;
  c->auth_timeout_ms = 10000;
  c->drain_timeout_ms = 10000;
}

static void clear_routes(gw_config *c) {
  for (size_t i = 0; i < c->n_routes; i++) free(c->routes[i].pattern);
  for (size_t i = 0; i < c->n_groups; i++) {
    for (size_t j = 0; j < c->groups[i].n_uris; j++) free(c->groups[i].uris[j]);
    free(c->groups[i].uris);
  }
  free(c->routes);
  free(c->groups);
  c->routes = NULL, c->groups = NULL, c->n_routes = c->n_groups = 0;
}

void gw_config_free(gw_config *c) {
  clear_routes(c);
  free(c->listen);
  free(c->cert);
  free(c->key);
  free(c->static_dir);
  free(c->static_real);
  free(c->jwt_secret);
  free(c->jwt_public_key);
  for (size_t i = 0; i < c->n_jwt_claims; i++) free(c->jwt_claims[i]);
  free(c->jwt_claims);
  for (size_t i = 0; i < c->n_origins; i++) free(c->origins[i]);
  free(c->origins);
  memset(c, 0, sizeof *c);
}

/* printf-like: clang's -Wformat-nonliteral (the fuzz build) wants the attribute. */
__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...);

static int fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

/* A route pattern: an exact route (1..255 bytes, no '*'), "PREFIX.*" or "*". */
static int parse_pattern(const char *p, gw_route *r, char *err, size_t errlen) {
  size_t n = strlen(p);
  if (n == 0) return fail(err, errlen, "empty route pattern");
  if (n > RS_GW_ROUTE_MAX) return fail(err, errlen, "route pattern over 255 bytes");
  if (strcmp(p, "*") == 0) {
    r->match = GW_ANY;
  } else if (n >= 3 && p[n - 1] == '*' && p[n - 2] == '.') {
    r->match = GW_PREFIX;
    r->prefix_len = n - 1;
  } else {
    r->match = GW_EXACT;
  }
  size_t scan = r->match == GW_PREFIX ? n - 1 : (r->match == GW_ANY ? 0 : n);
  for (size_t i = 0; i < scan; i++)
    if (p[i] == '*' || (unsigned char)p[i] < 0x20 || p[i] == 0x7f)
      return fail(err, errlen,
                  "bad route pattern '%s': '*' only as '*' or at the end after '.' (rooms.*), "
                  "no control characters",
                  p);
  return 0;
}

static int check_backend_uri(const char *u, char *err, size_t errlen) {
  rs_uri parsed;
  char why[200];
  if (rs_uri_parse(u, &parsed, why, sizeof why) != 0)
    return fail(err, errlen, "bad backend URI '%s': %s", u, why);
  return 0;
}

/* The group with exactly these URIs, or a new one. */
static long find_group(gw_config *c, char **uris, size_t n) {
  for (size_t g = 0; g < c->n_groups; g++) {
    if (c->groups[g].n_uris != n) continue;
    size_t i = 0;
    while (i < n && strcmp(c->groups[g].uris[i], uris[i]) == 0) i++;
    if (i == n) return (long)g;
  }
  return -1;
}

static int add_route_uris(gw_config *c, const char *pattern, char **uris, size_t n, char *err,
                          size_t errlen) {
  gw_route r = {0};
  if (parse_pattern(pattern, &r, err, errlen)) return -1;
  if (n == 0) return fail(err, errlen, "route '%s' names no backend", pattern);
  for (size_t i = 0; i < n; i++)
    if (check_backend_uri(uris[i], err, errlen)) return -1;
  for (size_t i = 0; i < c->n_routes; i++)
    if (strcmp(c->routes[i].pattern, pattern) == 0)
      return fail(err, errlen, "route pattern '%s' given twice", pattern);
  if (c->n_routes == MAX_ROUTES) return fail(err, errlen, "more than %d routes", MAX_ROUTES);
  long g = find_group(c, uris, n);
  if (g < 0) {
    gw_group *ng = realloc(c->groups, (c->n_groups + 1) * sizeof *ng);
    if (!ng) return fail(err, errlen, "out of memory");
    c->groups = ng;
    gw_group *grp = &c->groups[c->n_groups];
    grp->uris = calloc(n, sizeof *grp->uris);
    if (!grp->uris) return fail(err, errlen, "out of memory");
    grp->n_uris = n;
    for (size_t i = 0; i < n; i++) grp->uris[i] = strdup(uris[i]);
    g = (long)c->n_groups++;
  }
  gw_route *nr = realloc(c->routes, (c->n_routes + 1) * sizeof *nr);
  if (!nr) return fail(err, errlen, "out of memory");
  c->routes = nr;
  r.pattern = strdup(pattern);
  r.group = (size_t)g;
  c->routes[c->n_routes++] = r;
  return 0;
}

int gw_config_add_route(gw_config *c, const char *spec, char *err, size_t errlen) {
  const char *eq = strchr(spec, '=');
  if (!eq) return fail(err, errlen, "--route needs PATTERN=URI[,URI...], got '%s'", spec);
  char *pattern = strndup(spec, (size_t)(eq - spec));
  char *list = strdup(eq + 1);
  char *uris[MAX_BACKENDS];
  size_t n = 0;
  int rc = 0;
  for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
       tok = strtok_r(NULL, ",", &save)) {
    if (n == MAX_BACKENDS) {
      rc = fail(err, errlen, "route '%s': more than %d backends", pattern, MAX_BACKENDS);
      break;
    }
    uris[n++] = tok;
  }
  if (rc == 0) rc = add_route_uris(c, pattern, uris, n, err, errlen);
  free(pattern);
  free(list);
  return rc;
}

/* ---- the route table ---- */

gw_table *gw_table_new(gw_config *c, char *err, size_t errlen) {
  gw_table *t = calloc(1, sizeof *t);
  if (!t) {
    fail(err, errlen, "out of memory");
    return NULL;
  }
  for (size_t i = 0; i < c->n_routes; i++) {
    long slot = gw_slot_of(c->routes[i].pattern);
    if (slot < 0) {
      fail(err, errlen, "more than %d distinct route patterns since the start: restart the gateway",
           GW_SLOTS_MAX);
      free(t);
      return NULL;
    }
    c->routes[i].slot = (uint16_t)slot;
  }
  atomic_init(&t->refs, 1);
  t->routes = c->routes, t->n_routes = c->n_routes;
  t->groups = c->groups, t->n_groups = c->n_groups;
  c->routes = NULL, c->groups = NULL, c->n_routes = c->n_groups = 0;
  return t;
}

gw_table *gw_table_ref(gw_table *t) {
  atomic_fetch_add(&t->refs, 1);
  return t;
}

void gw_table_unref(gw_table *t) {
  if (!t || atomic_fetch_sub(&t->refs, 1) != 1) return;
  gw_config c = {
      .routes = t->routes, .n_routes = t->n_routes, .groups = t->groups, .n_groups = t->n_groups};
  clear_routes(&c);
  free(t);
}

long gw_table_lookup(const gw_table *t, const uint8_t *route, size_t len) {
  long best = -1, any = -1;
  size_t best_len = 0;
  for (size_t i = 0; i < t->n_routes; i++) {
    const gw_route *r = &t->routes[i];
    switch (r->match) {
    case GW_EXACT:
      if (strlen(r->pattern) == len && memcmp(r->pattern, route, len) == 0) return (long)i;
      break;
    case GW_PREFIX:
      /* "rooms.*" needs at least one byte after "rooms." */
      if (len > r->prefix_len && r->prefix_len > best_len &&
          memcmp(r->pattern, route, r->prefix_len) == 0) {
        best = (long)i;
        best_len = r->prefix_len;
      }
      break;
    case GW_ANY: any = (long)i; break;
    }
  }
  return best >= 0 ? best : any;
}

/* ---- values ---- */

/* One setting by name, from the command line or the config file (as text). */
typedef enum opt_id {
  O_LISTEN = 1000,
  O_ROUTE,
  O_CONFIG,
  O_CONNECTIONS,
  O_LB,
  O_MAX_MESSAGE,
  O_MAX_BUFFER,
  O_MAX_CLIENTS,
  O_MAX_STREAMS,
  O_CREDIT,
  O_TIMEOUT,
  O_WORKERS,
  O_CERT,
  O_KEY,
  O_STATIC,
  O_LOG_FORMAT,
  O_BACKEND_RESUME,
  O_JWT_SECRET,
  O_JWT_PUBLIC_KEY,
  O_JWT_CLAIMS,
  O_AUTH_TIMEOUT,
  O_ORIGIN,
  O_RATE_LIMIT,
  O_DRAIN_TIMEOUT,
  O_BACKEND_LEASE,
  O_RSOCKET_MTU,
  O_BUSY_POLL,
} opt_id;

static const struct option long_opts[] = {
    {"listen", required_argument, NULL, O_LISTEN},
    {"route", required_argument, NULL, O_ROUTE},
    {"config", required_argument, NULL, O_CONFIG},
    {"connections-per-backend", required_argument, NULL, O_CONNECTIONS},
    {"lb", required_argument, NULL, O_LB},
    {"max-message", required_argument, NULL, O_MAX_MESSAGE},
    {"max-buffer", required_argument, NULL, O_MAX_BUFFER},
    {"max-clients", required_argument, NULL, O_MAX_CLIENTS},
    {"max-streams-per-client", required_argument, NULL, O_MAX_STREAMS},
    {"credit-window", required_argument, NULL, O_CREDIT},
    {"request-timeout", required_argument, NULL, O_TIMEOUT},
    {"workers", required_argument, NULL, O_WORKERS},
    {"cert", required_argument, NULL, O_CERT},
    {"key", required_argument, NULL, O_KEY},
    {"static", required_argument, NULL, O_STATIC},
    {"log-format", required_argument, NULL, O_LOG_FORMAT},
    {"backend-resume", required_argument, NULL, O_BACKEND_RESUME},
    {"jwt-secret", required_argument, NULL, O_JWT_SECRET},
    {"jwt-public-key", required_argument, NULL, O_JWT_PUBLIC_KEY},
    {"jwt-claims", required_argument, NULL, O_JWT_CLAIMS},
    {"auth-timeout", required_argument, NULL, O_AUTH_TIMEOUT},
    {"origin", required_argument, NULL, O_ORIGIN},
    {"rate-limit", required_argument, NULL, O_RATE_LIMIT},
    {"drain-timeout", required_argument, NULL, O_DRAIN_TIMEOUT},
    {"backend-lease", no_argument, NULL, O_BACKEND_LEASE},
    {"busy-poll", no_argument, NULL, O_BUSY_POLL},
    {"rsocket-mtu", required_argument, NULL, O_RSOCKET_MTU},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'v'},
    {NULL, 0, NULL, 0},
};

static const char *opt_name(int id) {
  for (const struct option *o = long_opts; o->name; o++)
    if (o->val == id) return o->name;
  return "?";
}

static int set_string(char **dst, const char *v) {
  free(*dst);
  *dst = strdup(v);
  return *dst ? 0 : -1;
}

/* Applies one setting given as text. Returns 0, or -1 with a reason in err. */
static int apply(gw_config *c, int id, const char *v, char *err, size_t errlen) {
  uint64_t n;
  size_t sz;
  uint32_t ms;
  const char *name = opt_name(id);
  switch (id) {
  case O_LISTEN: {
    rs_uri u;
    char why[200];
    if (rs_uri_parse(v, &u, why, sizeof why) != 0) return fail(err, errlen, "--listen: %s", why);
    if (u.scheme != RS_URI_WS && u.scheme != RS_URI_WSS)
      return fail(err, errlen, "--listen needs ws://HOST:PORT[/PATH] or wss://, got '%s'", v);
    return set_string(&c->listen, v);
  }
  case O_ROUTE: return gw_config_add_route(c, v, err, errlen);
  case O_CONNECTIONS:
    if (cli_arg_u64(v, &n) || n < 1 || n > RS_POOL_MAX_CONNECTIONS)
      return fail(err, errlen, "--%s needs 1..%d, got '%s'", name, RS_POOL_MAX_CONNECTIONS, v);
    c->connections = (int)n;
    return 0;
  case O_LB:
    if (strcmp(v, "p2c") == 0)
      c->lb = RS_POOL_P2C;
    else if (strcmp(v, "round-robin") == 0)
      c->lb = RS_POOL_ROUND_ROBIN;
    else
      return fail(err, errlen, "--lb is p2c or round-robin, got '%s'", v);
    return 0;
  case O_MAX_MESSAGE:
    if (cli_arg_size(v, &sz) || sz < 64 || sz > (64u << 20))
      return fail(err, errlen, "--max-message needs 64 bytes to 64MiB, got '%s'", v);
    c->max_message = sz;
    return 0;
  case O_MAX_BUFFER:
    if (cli_arg_size(v, &sz) || sz < 1024 || sz > (1ull << 30))
      return fail(err, errlen, "--max-buffer needs 1KiB to 1GiB, got '%s'", v);
    c->max_buffer = sz;
    return 0;
  case O_MAX_CLIENTS:
    if (cli_arg_u64(v, &n) || n > 100000000)
      return fail(err, errlen, "--max-clients needs a count (0: no limit), got '%s'", v);
    c->max_clients = (size_t)n;
    return 0;
  case O_MAX_STREAMS:
    if (cli_arg_u64(v, &n) || n < 1 || n > 1000000)
      return fail(err, errlen, "--max-streams-per-client needs 1..1000000, got '%s'", v);
    c->max_streams = (uint32_t)n;
    return 0;
  case O_CREDIT:
    if (cli_arg_u64(v, &n) || n < 1 || n > 1000000)
      return fail(err, errlen, "--credit-window needs 1..1000000, got '%s'", v);
    c->credit_window = (uint32_t)n;
    return 0;
  case O_TIMEOUT:
    if (cli_arg_duration(v, &ms) || ms == 0)
      return fail(err, errlen, "--request-timeout needs a duration such as 30s, got '%s'", v);
    c->request_timeout_ms = ms;
    return 0;
  case O_WORKERS:
    if (cli_arg_u64(v, &n) || n < 1 || n > MAX_WORKERS)
      return fail(err, errlen, "--workers needs 1..%d, got '%s'", MAX_WORKERS, v);
    c->workers = (int)n;
    return 0;
  case O_CERT: return set_string(&c->cert, v);
  case O_KEY: return set_string(&c->key, v);
  case O_STATIC: return set_string(&c->static_dir, v);
  case O_JWT_SECRET: {
    char why[300] = "out of memory";
    free(c->jwt_secret);
    c->jwt_secret = NULL;
    if (gw_auth_load_key(v, &c->jwt_secret, &c->jwt_secret_len, why, sizeof why))
      return fail(err, errlen, "--jwt-secret: %s", why);
    if (c->jwt_secret_len < 16)
      return fail(err, errlen, "--jwt-secret: at least 16 bytes (HS256 keys should be 32)");
    return 0;
  }
  case O_JWT_PUBLIC_KEY: {
    char path[4096], why[300] = "out of memory";
    snprintf(path, sizeof path, "@%s", v);
    free(c->jwt_public_key);
    c->jwt_public_key = NULL;
    if (gw_auth_load_key(path, &c->jwt_public_key, &c->jwt_public_key_len, why, sizeof why))
      return fail(err, errlen, "--jwt-public-key: %s", why);
    if (!strstr((const char *)c->jwt_public_key, "-----BEGIN PUBLIC KEY-----"))
      return fail(err, errlen, "--jwt-public-key %s: not a PEM public key", v);
    return 0;
  }
  case O_JWT_CLAIMS: {
    for (size_t i = 0; i < c->n_jwt_claims; i++) free(c->jwt_claims[i]);
    free(c->jwt_claims);
    c->jwt_claims = NULL;
    c->n_jwt_claims = 0;
    char *copy = strdup(v);
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
      char **nc = realloc(c->jwt_claims, (c->n_jwt_claims + 1) * sizeof *nc);
      if (!nc || strlen(tok) > 64) {
        free(copy);
        return fail(err, errlen, "--jwt-claims: names of at most 64 bytes, comma-separated");
      }
      c->jwt_claims = nc;
      c->jwt_claims[c->n_jwt_claims++] = strdup(tok);
    }
    free(copy);
    return 0;
  }
  case O_AUTH_TIMEOUT:
    if (cli_arg_duration(v, &ms) || ms == 0)
      return fail(err, errlen, "--auth-timeout needs a duration such as 10s, got '%s'", v);
    c->auth_timeout_ms = ms;
    return 0;
  case O_ORIGIN: {
    if (!*v || strchr(v, ' ') || strchr(v, ','))
      return fail(err, errlen,
                  "--origin needs one origin such as https://app.example.com, got '%s'", v);
    char **no = realloc(c->origins, (c->n_origins + 1) * sizeof *no);
    if (!no) return fail(err, errlen, "out of memory");
    c->origins = no;
    c->origins[c->n_origins++] = strdup(v);
    return 0;
  }
  case O_RATE_LIMIT:
    if (cli_arg_u64(v, &n) || n > 1000000)
      return fail(err, errlen, "--rate-limit needs messages per second (0: none), got '%s'", v);
    c->rate_limit = (uint32_t)n;
    return 0;
  case O_BACKEND_LEASE: /* the command line gives no value; the config file true or false */
    if (v && strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
      return fail(err, errlen, "backend_lease is true or false, got '%s'", v);
    c->backend_lease = !v || strcmp(v, "true") == 0;
    return 0;
  case O_RSOCKET_MTU:
    if (cli_arg_size(v, &sz) || (sz != 0 && sz < RS_CONN_MIN_MTU) || sz > (16u << 20))
      return fail(err, errlen,
                  "--rsocket-mtu needs 0 (whole frames) or 64 bytes to 16MiB, got '%s'", v);
    c->rsocket_mtu = (uint32_t)sz;
    return 0;
  case O_BUSY_POLL:
    if (v && strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
      return fail(err, errlen, "busy_poll is true or false, got '%s'", v);
    c->busy_poll = !v || strcmp(v, "true") == 0;
    return 0;
  case O_DRAIN_TIMEOUT:
    if (cli_arg_duration(v, &ms))
      return fail(err, errlen, "--drain-timeout needs a duration such as 10s, got '%s'", v);
    c->drain_timeout_ms = ms;
    return 0;
  case O_BACKEND_RESUME:
    if (cli_arg_duration(v, &ms) || ms == 0)
      return fail(err, errlen, "--backend-resume needs a duration such as 30s, got '%s'", v);
    c->backend_resume_ms = ms;
    return 0;
  case O_LOG_FORMAT:
    if (strcmp(v, "text") == 0)
      c->log_format = GW_LOG_TEXT;
    else if (strcmp(v, "json") == 0)
      c->log_format = GW_LOG_JSON;
    else if (strcmp(v, "none") == 0)
      c->log_format = GW_LOG_NONE;
    else
      return fail(err, errlen, "--log-format is text, json or none, got '%s'", v);
    return 0;
  default: return fail(err, errlen, "unknown setting");
  }
}

/* ---- the config file ---- */

/* A JSON value as the text the command line would give: strings as they are, integers and reals
 * printed. */
static int json_text(json_t *v, char *buf, size_t cap) {
  if (json_is_string(v)) {
    snprintf(buf, cap, "%s", json_string_value(v));
    return 0;
  }
  if (json_is_integer(v)) {
    snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    return 0;
  }
  if (json_is_boolean(v)) {
    snprintf(buf, cap, "%s", json_is_true(v) ? "true" : "false");
    return 0;
  }
  if (json_is_real(v)) {
    snprintf(buf, cap, "%.17g", json_real_value(v));
    return 0;
  }
  return -1;
}

/* routes: {"PATTERN": "URI" | ["URI", ...], ...} */
static int config_routes(gw_config *c, json_t *routes, const char *path, char *err, size_t errlen) {
  if (!json_is_object(routes))
    return fail(err, errlen, "%s: \"routes\" must be an object of PATTERN: URI or [URI, ...]",
                path);
  const char *pattern;
  json_t *v;
  json_object_foreach(routes, pattern, v) {
    char *uris[MAX_BACKENDS];
    size_t n = 0;
    if (json_is_string(v)) {
      uris[n++] = (char *)json_string_value(v);
    } else if (json_is_array(v) && json_array_size(v) <= MAX_BACKENDS) {
      size_t i;
      json_t *u;
      json_array_foreach(v, i, u) {
        if (!json_is_string(u))
          return fail(err, errlen, "%s: route '%s': backends must be URI strings", path, pattern);
        uris[n++] = (char *)json_string_value(u);
      }
    } else {
      return fail(err, errlen, "%s: route '%s' needs a URI or a list of URIs", path, pattern);
    }
    char why[300];
    if (add_route_uris(c, pattern, uris, n, why, sizeof why))
      return fail(err, errlen, "%s: %s", path, why);
  }
  return 0;
}

static int config_file(gw_config *c, const char *path, char *err, size_t errlen) {
  json_error_t je;
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
  if (!root) {
    if (je.line <= 0) return fail(err, errlen, "cannot read %s: %s", path, je.text);
    return fail(err, errlen, "%s:%d:%d: %s", path, je.line, je.column, je.text);
  }
  int rc = 0;
  if (!json_is_object(root)) {
    rc = fail(err, errlen, "%s: the config is a JSON object of settings", path);
    goto out;
  }
  const char *key;
  json_t *v;
  json_object_foreach(root, key, v) {
    if (strcmp(key, "routes") == 0) {
      if ((rc = config_routes(c, v, path, err, errlen))) goto out;
      continue;
    }
    /* Keys are the long options, with '-' or '_': "max_buffer" or "max-buffer". */
    char name[64];
    snprintf(name, sizeof name, "%s", key);
    for (char *p = name; *p; p++)
      if (*p == '_') *p = '-';
    int id = 0;
    for (const struct option *o = long_opts; o->name; o++)
      if (o->val >= O_LISTEN && o->val != O_ROUTE && o->val != O_CONFIG &&
          strcmp(o->name, name) == 0)
        id = o->val;
    if (!id) {
      rc = fail(err, errlen, "%s: unknown setting \"%s\"", path, key);
      goto out;
    }
    char text[512];
    if (json_text(v, text, sizeof text)) {
      rc = fail(err, errlen, "%s: \"%s\" must be a string, a number or a boolean", path, key);
      goto out;
    }
    char why[300];
    if (apply(c, id, text, why, sizeof why)) {
      rc = fail(err, errlen, "%s: %s", path, why);
      goto out;
    }
  }
out:
  json_decref(root);
  return rc;
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...);

static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("rsocket-gateway: ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\n(rsocket-gateway --help for usage)\n", stderr);
  return 2;
}

/* argv (and its --config file) into `c`. Returns 0 to run, 1 when it printed --help or
 * --version (`startup` only), -1 with the reason in `err`. */
static int parse(gw_config *c, int argc, char **argv, bool startup, char *err, size_t errlen) {
  /* The config file first, whatever its place on the line: the command line overrides it. */
  for (int i = 1; i < argc; i++) {
    const char *path = NULL;
    if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
      path = argv[i + 1];
    else if (strncmp(argv[i], "--config=", 9) == 0)
      path = argv[i] + 9;
    if (path && config_file(c, path, err, errlen)) return -1;
  }
  bool cli_routes = false;
  optind = 0; /* glibc: start afresh, also for the second parse of a reload */
  opterr = startup;
  int ch;
  while ((ch = getopt_long(argc, argv, "hv", long_opts, NULL)) != -1) {
    switch (ch) {
    case 'h':
      if (!startup) break;
      usage(stdout);
      return 1;
    case 'v':
      if (!startup) break;
      printf("rsocket-gateway (rsocket-c) %s\n", RS_VERSION_STRING);
      return 1;
    case O_CONFIG: break;
    case '?': return fail(err, errlen, "bad option");
    default:
      if (ch == O_ROUTE && !cli_routes && c->n_routes) {
        clear_routes(c); /* --route on the command line replaces the file's routes */
      }
      if (ch == O_ROUTE) cli_routes = true;
      if (apply(c, ch, optarg, err, errlen)) return -1;
    }
  }
  if (optind < argc) return fail(err, errlen, "unexpected argument '%s'", argv[optind]);
  if (!c->listen) return fail(err, errlen, "--listen URI is required (e.g. ws://127.0.0.1:8080)");
  if (c->n_routes == 0) return fail(err, errlen, "at least one --route PATTERN=URI is required");
  bool wss = strncmp(c->listen, "wss://", 6) == 0;
  if (wss && (!c->cert || !c->key))
    return fail(err, errlen, "wss:// needs --cert FILE and --key FILE");
  if (!wss && (c->cert || c->key)) return fail(err, errlen, "--cert and --key are for wss:// only");
  if (gw_static_init(c, err, errlen)) return -1;
  if (c->jwt_secret && c->jwt_public_key)
    return fail(err, errlen, "--jwt-secret and --jwt-public-key exclude each other");
  if (c->n_jwt_claims && !gw_auth_enabled(c))
    return fail(err, errlen, "--jwt-claims needs --jwt-secret or --jwt-public-key");
  return 0;
}

int gw_config_parse(gw_config *c, int argc, char **argv) {
  char err[512];
  int rc = parse(c, argc, argv, true, err, sizeof err);
  return rc < 0 ? usage_error("%s", err) : rc;
}

int gw_config_reparse(gw_config *c, int argc, char **argv, char *err, size_t errlen) {
  return parse(c, argc, argv, false, err, errlen) == 0 ? 0 : -1;
}

static bool str_differ(const char *a, const char *b) {
  return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

static bool bytes_differ(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  return alen != blen || (alen && memcmp(a, b, alen) != 0);
}

static bool list_differ(char **a, size_t an, char **b, size_t bn) {
  if (an != bn) return true;
  for (size_t i = 0; i < an; i++)
    if (strcmp(a[i], b[i]) != 0) return true;
  return false;
}

void gw_config_changed(const gw_config *a, const gw_config *b, char *out, size_t cap) {
  const struct {
    bool differ;
    int id;
  } checks[] = {
      {str_differ(a->listen, b->listen), O_LISTEN},
      {a->workers != b->workers, O_WORKERS},
      {str_differ(a->cert, b->cert), O_CERT},
      {str_differ(a->key, b->key), O_KEY},
      {a->connections != b->connections, O_CONNECTIONS},
      {a->lb != b->lb, O_LB},
      {a->max_message != b->max_message, O_MAX_MESSAGE},
      {a->max_buffer != b->max_buffer, O_MAX_BUFFER},
      {a->max_clients != b->max_clients, O_MAX_CLIENTS},
      {a->max_streams != b->max_streams, O_MAX_STREAMS},
      {a->credit_window != b->credit_window, O_CREDIT},
      {a->request_timeout_ms != b->request_timeout_ms, O_TIMEOUT},
      {str_differ(a->static_dir, b->static_dir), O_STATIC},
      {a->log_format != b->log_format, O_LOG_FORMAT},
      {a->backend_resume_ms != b->backend_resume_ms, O_BACKEND_RESUME},
      {a->backend_lease != b->backend_lease, O_BACKEND_LEASE},
      {a->busy_poll != b->busy_poll, O_BUSY_POLL},
      {bytes_differ(a->jwt_secret, a->jwt_secret_len, b->jwt_secret, b->jwt_secret_len),
       O_JWT_SECRET},
      {bytes_differ(a->jwt_public_key, a->jwt_public_key_len, b->jwt_public_key,
                    b->jwt_public_key_len),
       O_JWT_PUBLIC_KEY},
      {list_differ(a->jwt_claims, a->n_jwt_claims, b->jwt_claims, b->n_jwt_claims), O_JWT_CLAIMS},
      {a->auth_timeout_ms != b->auth_timeout_ms, O_AUTH_TIMEOUT},
      {list_differ(a->origins, a->n_origins, b->origins, b->n_origins), O_ORIGIN},
      {a->rate_limit != b->rate_limit, O_RATE_LIMIT},
      {a->drain_timeout_ms != b->drain_timeout_ms, O_DRAIN_TIMEOUT},
      {a->rsocket_mtu != b->rsocket_mtu, O_RSOCKET_MTU},
  };
  size_t len = 0;
  out[0] = '\0';
  for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
    if (!checks[i].differ) continue;
    int n = snprintf(out + len, cap - len, "%s%s", len ? "," : "", opt_name(checks[i].id));
    if (n < 0 || (size_t)n >= cap - len) break;
    len += (size_t)n;
  }
}
