/* rsocket: curl for RSocket. Command line parsing and dispatch to client or server mode. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rsocket/runtime.h"
#include "rsocket/ws.h"
#include "cli.h"
#include "cli_args.h"

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: rsocket [options] URI            client: one interaction with a server\n"
      "       rsocket --server [options] URI   server: the echo contract, until SIGINT/SIGTERM\n"
      "\n"
      "URI: tcp://HOST:PORT, tls://HOST:PORT, ws://HOST[:PORT][/PATH], wss://…\n"
      "\n"
      "Client:\n"
      "  --request               request-response (default)\n"
      "  --stream                request-stream: print every item\n"
      "  --channel               request-channel: each stdin line (or -d) is one payload\n"
      "  --fnf                   fire-and-forget\n"
      "  --metadataPush          metadata-push (sends the -m metadata)\n"
      "  --im, --interactionModel MODEL  REQUEST_RESPONSE, REQUEST_STREAM, REQUEST_CHANNEL,\n"
      "                          FIRE_AND_FORGET or METADATA_PUSH\n"
      "  -d, --data DATA         payload data; '-' reads stdin, '@FILE' reads a file\n"
      "  -l, --load FILE         payload data from FILE (same as -d @FILE)\n"
      "  -m, --metadata META     payload metadata (same forms as -d); repeat for several\n"
      "  --mmt, --metadataMimeType MIME  the MIME type of the -m of the same rank. One -m\n"
      "                          alone is sent as it is, of that type (default\n"
      "                          application/octet-stream); several -m, or -m with a route or\n"
      "                          authentication, become composite metadata entries\n"
      "  --dmt, --dataMimeType MIME      SETUP data MIME type (default application/octet-stream)\n"
      "  -r, --route ROUTE       routing tag (composite metadata); repeat for several\n"
      "  --ab, --authBearer TOKEN        bearer authentication (composite metadata)\n"
      "  -u, --as, --authSimple USER:PASS  simple authentication (composite metadata)\n"
      "  --sd, --setupData DATA  SETUP payload data (same forms as -d)\n"
      "  --sm, --setupMetadata META      SETUP payload metadata (same forms as -d)\n"
      "  --smmt, --setupMetadataMimeType MIME  send --sm as a composite metadata entry of that\n"
      "                          type (message/x.rsocket.authentication.v0: simple:USER:PASS or\n"
      "                          token:TOKEN)\n"
      "  --take N                cancel after N items (stream, channel)\n"
      "  --limitRate N           request N items at a time (default: all at once)\n"
      "  --delayElements DURATION  print stream and channel items DURATION apart, asking for\n"
      "                          more as they are printed (a plain number is milliseconds)\n"
      "  --showMetadata          print each payload's metadata too (\"metadata<TAB>data\")\n"
      "  -q, --quiet             do not print the payloads received\n"
      "  --timeout DURATION      give up after DURATION (e.g. 5s, 500ms; default none)\n"
      "  --connect-timeout DURATION  give up when the connection (TCP to every address of\n"
      "                          the name, TLS, WebSocket) is not up within DURATION, or the\n"
      "                          server then does not answer SETUP within DURATION (default 10s)\n"
      "  --retry N               when the connection cannot be made, try N more times\n"
      "                          (0.5 s, then twice as long each time, at most 8 s)\n"
      "  --keepalive, --keepAlive DURATION  KEEPALIVE interval (default 20s)\n"
      "  --maxLifetime DURATION  fail without a KEEPALIVE for that long (default 90s)\n"
      "  --ca, --trustCert FILE  extra trusted CA (tls://, wss://)\n"
      "  -k, --insecure          do not verify the server certificate (tls://, wss://)\n"
      "  --wsh, --wsHeader 'NAME: VALUE'  extra header of the WebSocket upgrade request\n"
      "                          (ws://, wss://); repeat for several\n"
      "\n"
      "Both modes:\n"
      "  --fragment MTU          fragment frames over MTU bytes (>= 64)\n"
      "  --resume SECONDS        enable resumption (client: reconnect and resume; server:\n"
      "                          keep sessions that long)\n"
      "  --debug                 print every frame sent and received on stderr\n"
      "  -w, --wiretap           --debug, plus a hex dump of every frame\n"
      "\n"
      "Server:\n"
      "  --server                serve the echo contract on URI (prints 'listening on URI'):\n"
      "                          requests come back as they came; a stream requested without\n"
      "                          data counts 1, 2, 3…; fire-and-forget and metadata-push are\n"
      "                          printed\n"
      "  -d DATA                 answer request-response with DATA; with -d @FILE (or -l FILE)\n"
      "                          streams emit each line of FILE, then complete\n"
      "  --lease N               grant N requests per second (LEASE every second, TTL 2 s)\n"
      "  --workers N             worker threads (default 1)\n"
      "  --max-connections N     connections per worker (default 10000); when full, the oldest\n"
      "                          one that has not sent SETUP yet is cut to make room\n"
      "  --busy-poll             never sleep in the kernel: spin on the event loop (one busy\n"
      "                          core per worker) for the lowest latency; for benchmarks\n"
      "  --cert FILE, --key FILE TLS certificate chain and key (tls:// and wss:// only)\n"
      "\n"
      "  -h, --help              this help;  -v, --version: print the version\n"
      "\n"
      "Durations: a number of seconds, or with a unit: 500ms, 20s, 2m, 1h.\n"
      "Output: the data of each payload received, one per line, on stdout.\n"
      "Exit status: 0 ok, 1 the server answered with an error, 2 usage, 3 connection failed or\n"
      "lost, 4 protocol error or setup rejected, 5 timeout (--timeout or --connect-timeout).\n");
}

enum {
  OPT_REQUEST = 1000,
  OPT_STREAM,
  OPT_CHANNEL,
  OPT_FNF,
  OPT_MDPUSH,
  OPT_IM,
  OPT_DMT,
  OPT_MMT,
  OPT_SETUP_DATA,
  OPT_SETUP_MD,
  OPT_SETUP_MMT,
  OPT_AUTH_BEARER,
  OPT_TAKE,
  OPT_LIMIT_RATE,
  OPT_DELAY,
  OPT_RETRY,
  OPT_RESUME,
  OPT_KEEPALIVE,
  OPT_LIFETIME,
  OPT_FRAGMENT,
  OPT_TIMEOUT,
  OPT_CONNECT_TIMEOUT,
  OPT_DEBUG,
  OPT_SHOW_MD,
  OPT_WS_HEADER,
  OPT_SERVER,
  OPT_LEASE,
  OPT_WORKERS,
  OPT_MAX_CONNECTIONS,
  OPT_BUSY_POLL,
  OPT_CERT,
  OPT_KEY,
  OPT_CA,
  OPT_RSC_UNSUPPORTED,
};

static const struct option long_opts[] = {
    {"request", no_argument, NULL, OPT_REQUEST},
    {"stream", no_argument, NULL, OPT_STREAM},
    {"channel", no_argument, NULL, OPT_CHANNEL},
    {"fnf", no_argument, NULL, OPT_FNF},
    {"metadataPush", no_argument, NULL, OPT_MDPUSH},
    {"interactionModel", required_argument, NULL, OPT_IM},
    {"im", required_argument, NULL, OPT_IM},
    {"data", required_argument, NULL, 'd'},
    {"load", required_argument, NULL, 'l'},
    {"metadata", required_argument, NULL, 'm'},
    {"dataMimeType", required_argument, NULL, OPT_DMT},
    {"dmt", required_argument, NULL, OPT_DMT},
    {"metadataMimeType", required_argument, NULL, OPT_MMT},
    {"mmt", required_argument, NULL, OPT_MMT},
    {"route", required_argument, NULL, 'r'},
    {"setupData", required_argument, NULL, OPT_SETUP_DATA},
    {"sd", required_argument, NULL, OPT_SETUP_DATA},
    {"setupMetadata", required_argument, NULL, OPT_SETUP_MD},
    {"sm", required_argument, NULL, OPT_SETUP_MD},
    {"setupMetadataMimeType", required_argument, NULL, OPT_SETUP_MMT},
    {"smmt", required_argument, NULL, OPT_SETUP_MMT},
    {"authBearer", required_argument, NULL, OPT_AUTH_BEARER},
    {"ab", required_argument, NULL, OPT_AUTH_BEARER},
    {"authSimple", required_argument, NULL, 'u'},
    {"as", required_argument, NULL, 'u'},
    {"take", required_argument, NULL, OPT_TAKE},
    {"limitRate", required_argument, NULL, OPT_LIMIT_RATE},
    {"delayElements", required_argument, NULL, OPT_DELAY},
    {"retry", required_argument, NULL, OPT_RETRY},
    {"resume", required_argument, NULL, OPT_RESUME},
    {"keepalive", required_argument, NULL, OPT_KEEPALIVE},
    {"keepAlive", required_argument, NULL, OPT_KEEPALIVE},
    {"maxLifetime", required_argument, NULL, OPT_LIFETIME},
    {"fragment", required_argument, NULL, OPT_FRAGMENT},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"debug", no_argument, NULL, OPT_DEBUG},
    {"wiretap", no_argument, NULL, 'w'},
    {"quiet", no_argument, NULL, 'q'},
    {"showMetadata", no_argument, NULL, OPT_SHOW_MD},
    {"wsHeader", required_argument, NULL, OPT_WS_HEADER},
    {"wsh", required_argument, NULL, OPT_WS_HEADER},
    {"server", no_argument, NULL, OPT_SERVER},
    {"lease", required_argument, NULL, OPT_LEASE},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"busy-poll", no_argument, NULL, OPT_BUSY_POLL},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"ca", required_argument, NULL, OPT_CA},
    {"trustCert", required_argument, NULL, OPT_CA},
    {"insecure", no_argument, NULL, 'k'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'v'},
    /* rsc options we do not implement: refused with a word on what to do instead. */
    {"log", optional_argument, NULL, OPT_RSC_UNSUPPORTED},
    {"trace", optional_argument, NULL, OPT_RSC_UNSUPPORTED},
    {"printB3", optional_argument, NULL, OPT_RSC_UNSUPPORTED},
    {"zipkinUrl", optional_argument, NULL, OPT_RSC_UNSUPPORTED},
    {"authBasic", optional_argument, NULL, OPT_RSC_UNSUPPORTED},
    {"stacktrace", optional_argument, NULL, OPT_RSC_UNSUPPORTED},
    {"showSystemProperties", optional_argument, NULL, OPT_RSC_UNSUPPORTED},
    {"completion", optional_argument, NULL, OPT_RSC_UNSUPPORTED},
    {"argsFile", optional_argument, NULL, OPT_RSC_UNSUPPORTED},
    {"dumpArgs", optional_argument, NULL, OPT_RSC_UNSUPPORTED},
    {NULL, 0, NULL, 0},
};

static const char *const rsc_instead[][2] = {
    {"log", "--debug shows every frame"},
    {"trace", "Zipkin tracing metadata is not implemented"},
    {"printB3", "Zipkin tracing metadata is not implemented"},
    {"zipkinUrl", "Zipkin tracing metadata is not implemented"},
    {"authBasic", "use --authSimple USER:PASS (the authentication extension)"},
    {"stacktrace", "errors are a single line; there is no stack to show"},
    {"showSystemProperties", "there are no system properties"},
    {"completion", "there is no shell completion yet"},
    {"argsFile", "keep the arguments in a shell script"},
    {"dumpArgs", "keep the arguments in a shell script"},
};

__attribute__((format(printf, 1, 2))) static int bad_usage(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "rsocket: ");
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nTry 'rsocket --help'.\n");
  return EXIT_USAGE;
}

int cli_parse_duration(const char *s, uint32_t *ms) {
  return cli_arg_duration(s, ms);
}

int cli_read_source(const char *arg, cli_buf *out) {
  out->set = true;
  if (strcmp(arg, "-") != 0 && arg[0] != '@') {
    out->len = strlen(arg);
    out->ptr = malloc(out->len + 1);
    if (!out->ptr) return -1;
    memcpy(out->ptr, arg, out->len + 1);
    return 0;
  }
  FILE *f = strcmp(arg, "-") == 0 ? stdin : fopen(arg + 1, "rb");
  if (!f) {
    fprintf(stderr, "rsocket: cannot open %s: %s\n", arg + 1, strerror(errno));
    return -1;
  }
  size_t cap = 4096, len = 0;
  uint8_t *buf = malloc(cap);
  size_t n;
  while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
    len += n;
    if (len == cap) {
      if (cap >= ((size_t)1 << 30)) {
        fprintf(stderr, "rsocket: %s is larger than 1 GiB\n", arg);
        free(buf);
        buf = NULL;
        break;
      }
      uint8_t *nb = realloc(buf, cap *= 2);
      if (!nb) free(buf);
      buf = nb;
    }
  }
  bool err = ferror(f);
  if (f != stdin) fclose(f);
  if (!buf || err) {
    if (err) fprintf(stderr, "rsocket: cannot read %s\n", arg);
    free(buf);
    return -1;
  }
  out->ptr = buf;
  out->len = len;
  return 0;
}

/* The option's name as the user spelled it, for messages. */
static void opt_name(int c, int longindex, char *name, size_t cap) {
  if (longindex >= 0)
    snprintf(name, cap, "--%s", long_opts[longindex].name);
  else
    snprintf(name, cap, "-%c", c);
}

/* Options meaningful in one mode only: the first one seen of each kind, for the mode check. */
static bool client_only(int c) {
  switch (c) {
  case 'm':
  case 'r':
  case 'u':
  case 'q':
  case 'k':
  case OPT_REQUEST:
  case OPT_STREAM:
  case OPT_CHANNEL:
  case OPT_FNF:
  case OPT_MDPUSH:
  case OPT_IM:
  case OPT_DMT:
  case OPT_MMT:
  case OPT_SETUP_DATA:
  case OPT_SETUP_MD:
  case OPT_SETUP_MMT:
  case OPT_AUTH_BEARER:
  case OPT_TAKE:
  case OPT_LIMIT_RATE:
  case OPT_DELAY:
  case OPT_RETRY:
  case OPT_KEEPALIVE:
  case OPT_LIFETIME:
  case OPT_TIMEOUT:
  case OPT_CONNECT_TIMEOUT:
  case OPT_SHOW_MD:
  case OPT_WS_HEADER:
  case OPT_CA: return true;
  default: return false;
  }
}

static bool server_only(int c) {
  return c == OPT_LEASE || c == OPT_WORKERS || c == OPT_MAX_CONNECTIONS || c == OPT_BUSY_POLL ||
         c == OPT_CERT || c == OPT_KEY;
}

static int parse_model(const char *s, cli_model *m) {
  static const struct {
    const char *name;
    cli_model model;
  } names[] = {
      {"REQUEST_RESPONSE", MODEL_REQUEST}, {"REQUEST_STREAM", MODEL_STREAM},
      {"REQUEST_CHANNEL", MODEL_CHANNEL},  {"FIRE_AND_FORGET", MODEL_FNF},
      {"REQUEST_FNF", MODEL_FNF},          {"METADATA_PUSH", MODEL_METADATA_PUSH},
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (strcasecmp(s, names[i].name) == 0) {
      *m = names[i].model;
      return 0;
    }
  }
  return -1;
}

static bool starts_with(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* --delayElements: rsc counts milliseconds; a unit may be given as for every duration. */
static int parse_delay(const char *s, uint32_t *ms) {
  uint64_t v;
  if (cli_arg_u64(s, &v) == 0) {
    if (v > 2147483647u) return -1;
    *ms = (uint32_t)v;
    return 0;
  }
  return cli_parse_duration(s, ms);
}

/* Checks the options against the mode and the URI's scheme. Returns 0 or EXIT_USAGE. */
static int check_modes(const cli_options *o, int models, const char *client_flag,
                       const char *server_flag, bool certs_given) {
  bool secure = starts_with(o->uri, "tls://") || starts_with(o->uri, "wss://");
  bool websocket = starts_with(o->uri, "ws://") || starts_with(o->uri, "wss://");
  if (models > 1)
    return bad_usage("%s", "choose one of --request, --stream, --channel, --fnf, --metadataPush");
  if (o->server) {
    if (models > 0)
      return bad_usage("%s", "--server serves every interaction; drop the model flag");
    if (client_flag)
      return bad_usage("%s is a client option; --server does not use it%s", client_flag,
                       strcmp(client_flag, "--keepalive") == 0 ||
                               strcmp(client_flag, "--maxLifetime") == 0
                           ? " (a server keeps the times its clients ask for in SETUP)"
                           : "");
    if (certs_given && !secure)
      return bad_usage("--cert and --key are for tls:// and wss:// servers, and %s is not "
                       "encrypted: serve tls://… or wss://…, or drop them",
                       o->uri);
    if (secure && (!o->cert || !o->key))
      return bad_usage("a %.3s:// server needs --cert FILE and --key FILE", o->uri);
    return 0;
  }
  if (certs_given)
    return bad_usage("%s", "--cert and --key are server options; a client trusts a server's "
                           "certificate with --ca FILE");
  if (server_flag) return bad_usage("%s is a server option: give --server too", server_flag);
  if ((o->ca || o->insecure) && !secure)
    return bad_usage("--ca and -k are for tls:// and wss:// URIs; %s is not encrypted", o->uri);
  if (o->nws_headers && !websocket)
    return bad_usage("--wsHeader is for ws:// and wss:// URIs; %s is not a WebSocket", o->uri);
  if (o->model == MODEL_METADATA_PUSH && o->nmetadata == 0)
    return bad_usage("%s", "--metadataPush sends the metadata given with -m");
  return 0;
}

static void free_options(cli_options *o, char *load_arg) {
  free(o->data.ptr);
  for (int i = 0; i < o->nmetadata; i++) free(o->metadata[i].ptr);
  free(o->setup_data.ptr);
  free(o->setup_metadata.ptr);
  free(load_arg);
}

static int run(int argc, char **argv, cli_options *o, char **load_arg) {
  int models = 0;
  char client_flag[48] = "", server_flag[48] = "";
  const char *load = NULL;
  bool certs_given = false;
  o->model = MODEL_REQUEST;
  o->workers = 1;
  o->max_connections = 10000;
  o->connect_timeout_ms = 10000;
  for (;;) {
    int longindex = -1;
    int c = getopt_long(argc, argv, "d:l:m:r:u:qwkhv", long_opts, &longindex);
    if (c == -1) break;
    if (client_only(c) && !client_flag[0]) opt_name(c, longindex, client_flag, sizeof client_flag);
    if (server_only(c) && !server_flag[0] && c != OPT_CERT && c != OPT_KEY)
      opt_name(c, longindex, server_flag, sizeof server_flag);
    switch (c) {
    case OPT_REQUEST: o->model = MODEL_REQUEST, models++; break;
    case OPT_STREAM: o->model = MODEL_STREAM, models++; break;
    case OPT_CHANNEL: o->model = MODEL_CHANNEL, models++; break;
    case OPT_FNF: o->model = MODEL_FNF, models++; break;
    case OPT_MDPUSH: o->model = MODEL_METADATA_PUSH, models++; break;
    case OPT_IM:
      if (parse_model(optarg, &o->model) != 0)
        return bad_usage("--im needs REQUEST_RESPONSE, REQUEST_STREAM, REQUEST_CHANNEL, "
                         "FIRE_AND_FORGET or METADATA_PUSH, got '%s'",
                         optarg);
      models++;
      break;
    case 'd': o->data_arg = optarg; break;
    case 'l':
      if (starts_with(optarg, "http://") || starts_with(optarg, "https://"))
        return bad_usage("-l reads local files; for a URL: curl -s %s | rsocket -d - …", optarg);
      load = starts_with(optarg, "file://") ? optarg + 7 : optarg;
      break;
    case 'm':
      if (o->nmetadata == CLI_MAX_METADATA) return bad_usage("at most %d -m", CLI_MAX_METADATA);
      if (cli_read_source(optarg, &o->metadata[o->nmetadata++]) != 0) return EXIT_USAGE;
      break;
    case OPT_DMT:
      if (!(o->data_mime = cli_mime(optarg)))
        return bad_usage("--dmt: '%s' is neither a MIME type nor the name of a well-known one "
                         "(such as APPLICATION_JSON)",
                         optarg);
      break;
    case OPT_MMT:
      if (o->nmetadata_mimes == CLI_MAX_METADATA)
        return bad_usage("at most %d --mmt", CLI_MAX_METADATA);
      if (!(o->metadata_mimes[o->nmetadata_mimes++] = cli_mime(optarg)))
        return bad_usage("--mmt: '%s' is neither a MIME type nor the name of a well-known one "
                         "(such as APPLICATION_JSON)",
                         optarg);
      break;
    case 'r':
      if (o->nroutes == CLI_MAX_ROUTES) return bad_usage("too many routes (%s)", optarg);
      if (strlen(optarg) == 0 || strlen(optarg) > 255)
        return bad_usage("a route must be 1 to 255 bytes: '%s'", optarg);
      o->routes[o->nroutes++] = optarg;
      break;
    case OPT_SETUP_DATA:
      free(o->setup_data.ptr);
      if (cli_read_source(optarg, &o->setup_data) != 0) return EXIT_USAGE;
      break;
    case OPT_SETUP_MD:
      free(o->setup_metadata.ptr);
      if (cli_read_source(optarg, &o->setup_metadata) != 0) return EXIT_USAGE;
      break;
    case OPT_SETUP_MMT:
      if (!(o->setup_metadata_mime = cli_mime(optarg)))
        return bad_usage("--smmt: '%s' is neither a MIME type nor the name of a well-known one "
                         "(such as MESSAGE_RSOCKET_AUTHENTICATION)",
                         optarg);
      break;
    case OPT_AUTH_BEARER: o->auth_bearer = optarg; break;
    case 'u':
      if (!strchr(optarg, ':')) return bad_usage("--authSimple needs USER:PASS, got '%s'", optarg);
      o->auth_simple = optarg;
      break;
    case OPT_TAKE:
      if (cli_arg_u64(optarg, &o->take) || o->take == 0)
        return bad_usage("--take needs a positive count, got '%s'", optarg);
      break;
    case OPT_LIMIT_RATE:
      if (cli_arg_u64(optarg, &o->limit_rate) || o->limit_rate == 0 || o->limit_rate > 0x7fffffff)
        return bad_usage("--limitRate needs a count from 1 to 2147483647, got '%s'", optarg);
      break;
    case OPT_DELAY:
      if (parse_delay(optarg, &o->delay_ms) || o->delay_ms == 0)
        return bad_usage("--delayElements needs milliseconds or a duration such as 1s, got '%s'",
                         optarg);
      break;
    case OPT_RETRY: {
      uint64_t v;
      if (cli_arg_u64(optarg, &v) || v == 0 || v > 1000)
        return bad_usage("--retry needs a count of attempts from 1 to 1000, got '%s'", optarg);
      o->retry = (int)v;
      break;
    }
    case OPT_RESUME: {
      uint32_t ms;
      if (cli_parse_duration(optarg, &ms) || ms == 0)
        return bad_usage("--resume needs a duration (seconds), got '%s'", optarg);
      o->resume_ms = ms;
      break;
    }
    case OPT_KEEPALIVE:
      if (cli_parse_duration(optarg, &o->keepalive_ms) || o->keepalive_ms == 0)
        return bad_usage("--keepalive needs a duration such as 20s, got '%s'", optarg);
      break;
    case OPT_LIFETIME:
      if (cli_parse_duration(optarg, &o->max_lifetime_ms) || o->max_lifetime_ms == 0)
        return bad_usage("--maxLifetime needs a duration such as 90s, got '%s'", optarg);
      break;
    case OPT_FRAGMENT: {
      uint64_t v;
      if (cli_arg_u64(optarg, &v) || v < 64 || v > 16777215)
        return bad_usage("--fragment needs an MTU from 64 to 16777215, got '%s'", optarg);
      o->mtu = (uint32_t)v;
      break;
    }
    case OPT_TIMEOUT:
      if (cli_parse_duration(optarg, &o->timeout_ms) || o->timeout_ms == 0)
        return bad_usage("--timeout needs a duration such as 5s, got '%s'", optarg);
      break;
    case OPT_CONNECT_TIMEOUT:
      if (cli_parse_duration(optarg, &o->connect_timeout_ms) || o->connect_timeout_ms == 0)
        return bad_usage("--connect-timeout needs a duration such as 10s, got '%s'", optarg);
      break;
    case OPT_DEBUG: o->debug = true; break;
    case 'w': o->debug = o->wiretap = true; break;
    case 'q': o->quiet = true; break;
    case OPT_SHOW_MD: o->show_metadata = true; break;
    case OPT_WS_HEADER: {
      const char *why = NULL;
      if (rs_ws_header_line_check(optarg, &why) != 0)
        return bad_usage("--wsHeader '%s': %s", optarg, why);
      if (o->nws_headers == CLI_MAX_HEADERS)
        return bad_usage("at most %d --wsHeader", CLI_MAX_HEADERS);
      o->ws_headers[o->nws_headers++] = optarg;
      break;
    }
    case OPT_SERVER: o->server = true; break;
    case OPT_LEASE: {
      uint64_t v;
      if (cli_arg_u64(optarg, &v) || v == 0 || v > 0x7fffffff)
        return bad_usage("--lease needs a count of requests per second, got '%s'", optarg);
      o->lease_per_second = (uint32_t)v;
      break;
    }
    case OPT_BUSY_POLL: o->busy_poll = true; break;
    case OPT_WORKERS: {
      uint64_t v;
      if (cli_arg_u64(optarg, &v) || v == 0 || v > 256)
        return bad_usage("--workers needs a count from 1 to 256, got '%s'", optarg);
      o->workers = (int)v;
      break;
    }
    case OPT_MAX_CONNECTIONS: {
      uint64_t v;
      if (cli_arg_u64(optarg, &v) || v == 0 || v > 10000000)
        return bad_usage("--max-connections needs a count from 1 to 10000000, got '%s'", optarg);
      o->max_connections = (size_t)v;
      break;
    }
    case OPT_CERT: o->cert = optarg, certs_given = true; break;
    case OPT_KEY: o->key = optarg, certs_given = true; break;
    case OPT_CA:
      if (o->ca) return bad_usage("%s", "one --ca FILE only (put several certificates in it)");
      o->ca = optarg;
      break;
    case 'k': o->insecure = true; break;
    case 'h': usage(stdout); return EXIT_OK;
    case 'v': printf("rsocket (rsocket-c) %s\n", RS_VERSION_STRING); return EXIT_OK;
    case OPT_RSC_UNSUPPORTED: {
      const char *name = long_opts[longindex].name;
      for (size_t i = 0; i < sizeof rsc_instead / sizeof rsc_instead[0]; i++)
        if (strcmp(rsc_instead[i][0], name) == 0)
          return bad_usage("--%s (an rsc option) is not supported: %s. See 'RSC COMPATIBILITY' "
                           "in rsocket(1)",
                           name, rsc_instead[i][1]);
      return EXIT_USAGE;
    }
    default: fprintf(stderr, "Try 'rsocket --help'.\n"); return EXIT_USAGE;
    }
  }
  if (optind == argc) return bad_usage("%s", "missing URI (e.g. tcp://127.0.0.1:7878)");
  if (optind + 1 < argc) return bad_usage("unexpected argument '%s'", argv[optind + 1]);
  o->uri = argv[optind];
  int rc = check_modes(o, models, client_flag[0] ? client_flag : NULL,
                       server_flag[0] ? server_flag : NULL, certs_given);
  if (rc) return rc;
  if (load) {
    if (o->data_arg) return bad_usage("%s", "give the data with -d or with -l, not both");
    if (strcmp(load, "-") != 0) {
      if (!(*load_arg = malloc(strlen(load) + 2))) return EXIT_USAGE;
      sprintf(*load_arg, "@%s", load);
      o->data_arg = *load_arg;
    } else {
      o->data_arg = load;
    }
  }
  if (o->server && o->data_arg && o->data_arg[0] == '@') o->stream_file = o->data_arg + 1;
  bool channel_stdin = o->model == MODEL_CHANNEL && o->data_arg && strcmp(o->data_arg, "-") == 0;
  if (o->data_arg && !channel_stdin && cli_read_source(o->data_arg, &o->data) != 0)
    return EXIT_USAGE;
  if (o->debug) cli_debug_enable(o->wiretap);
  return o->server ? cli_run_server(o) : cli_run_client(o);
}

int main(int argc, char **argv) {
  rs_runtime_tune_malloc();    /* see rsocket/runtime.h */
  rs_runtime_raise_fd_limit(); /* a server holds a descriptor per client */
  cli_options o;
  memset(&o, 0, sizeof o);
  char *load_arg = NULL;
  int rc = run(argc, argv, &o, &load_arg);
  free_options(&o, load_arg);
  return rc;
}
