/* rsocket: curl for RSocket. Command line parsing and dispatch to client or server mode. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsocket/runtime.h"
#include "cli.h"

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: rsocket [options] URI            client: one interaction with a server\n"
      "       rsocket --server [options] URI   server: the echo contract, until SIGINT/SIGTERM\n"
      "\n"
      "URI: tcp://HOST:PORT, tls://HOST:PORT, ws://HOST[:PORT][/PATH], wss://…\n"
      "\n"
      "Interaction (client):\n"
      "  --request               request-response (default)\n"
      "  --stream                request-stream: print every item\n"
      "  --channel               request-channel: each stdin line (or -d) is one payload\n"
      "  --fnf                   fire-and-forget\n"
      "  --metadataPush          metadata-push (sends -m)\n"
      "  -d, --data DATA         payload data; '-' reads stdin, '@FILE' reads a file\n"
      "  -m, --metadata META     payload metadata (same forms as -d)\n"
      "  --dataMimeType, --dmt MIME      SETUP data MIME type (default application/octet-stream)\n"
      "  --metadataMimeType, --mmt MIME  SETUP metadata MIME type (default: composite metadata\n"
      "                                  when a route or auth is given, else\n"
      "                                  application/octet-stream)\n"
      "  -r, --route ROUTE       routing tag (composite metadata); repeat for several\n"
      "  --ab, --authBearer TOKEN        bearer authentication (composite metadata)\n"
      "  --authSimple USER:PASS          simple authentication (composite metadata)\n"
      "  --setupData DATA        SETUP payload data;  --setupMetadata META: its metadata\n"
      "  --take N                cancel after N items (stream, channel)\n"
      "  --limitRate N           request N items at a time (default: all at once)\n"
      "  --showMetadata          print each payload's metadata too (\"metadata<TAB>data\")\n"
      "  --timeout DURATION      give up after DURATION (e.g. 5s, 500ms; default none)\n"
      "  --connect-timeout DURATION  give up when the connection (TCP to every address of\n"
      "                          the name, TLS, WebSocket) is not up within DURATION, or the\n"
      "                          server then does not answer SETUP within DURATION (default 10s)\n"
      "\n"
      "Connection (both modes):\n"
      "  --keepalive DURATION    KEEPALIVE interval (default 20s)\n"
      "  --maxLifetime DURATION  fail without a KEEPALIVE for that long (default 90s)\n"
      "  --fragment MTU          fragment frames over MTU bytes (>= 64)\n"
      "  --resume SECONDS        enable resumption (client: reconnect and resume; server:\n"
      "                          keep sessions that long)\n"
      "  --cert FILE, --key FILE TLS certificate and key (server, tls:// and wss://)\n"
      "  --ca FILE               extra trusted CA (client)\n"
      "  -k, --insecure          do not verify the server certificate (client)\n"
      "  --debug                 print every frame sent and received on stderr\n"
      "\n"
      "Server:\n"
      "  --server                serve the echo contract on URI (prints 'listening on URI')\n"
      "  -d DATA                 answer request-response with DATA; with -d @FILE streams emit\n"
      "                          each line of FILE, then complete\n"
      "  --lease N               grant N requests per second (LEASE every second, TTL 2 s)\n"
      "  --workers N             worker threads (default 1)\n"
      "  --busy-poll             never sleep in the kernel: spin on the event loop (one busy\n"
      "                          core per worker) for the lowest latency; for benchmarks\n"
      "\n"
      "  -h, --help              this help;  -v, --version: print the version\n"
      "\n"
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
  OPT_DMT,
  OPT_MMT,
  OPT_SETUP_DATA,
  OPT_SETUP_MD,
  OPT_AUTH_BEARER,
  OPT_AUTH_SIMPLE,
  OPT_TAKE,
  OPT_LIMIT_RATE,
  OPT_RESUME,
  OPT_KEEPALIVE,
  OPT_LIFETIME,
  OPT_FRAGMENT,
  OPT_TIMEOUT,
  OPT_CONNECT_TIMEOUT,
  OPT_DEBUG,
  OPT_SHOW_MD,
  OPT_SERVER,
  OPT_LEASE,
  OPT_WORKERS,
  OPT_BUSY_POLL,
  OPT_CERT,
  OPT_KEY,
  OPT_CA,
};

static const struct option long_opts[] = {
    {"request", no_argument, NULL, OPT_REQUEST},
    {"stream", no_argument, NULL, OPT_STREAM},
    {"channel", no_argument, NULL, OPT_CHANNEL},
    {"fnf", no_argument, NULL, OPT_FNF},
    {"metadataPush", no_argument, NULL, OPT_MDPUSH},
    {"data", required_argument, NULL, 'd'},
    {"metadata", required_argument, NULL, 'm'},
    {"dataMimeType", required_argument, NULL, OPT_DMT},
    {"dmt", required_argument, NULL, OPT_DMT},
    {"metadataMimeType", required_argument, NULL, OPT_MMT},
    {"mmt", required_argument, NULL, OPT_MMT},
    {"route", required_argument, NULL, 'r'},
    {"setupData", required_argument, NULL, OPT_SETUP_DATA},
    {"setupMetadata", required_argument, NULL, OPT_SETUP_MD},
    {"authBearer", required_argument, NULL, OPT_AUTH_BEARER},
    {"ab", required_argument, NULL, OPT_AUTH_BEARER},
    {"authSimple", required_argument, NULL, OPT_AUTH_SIMPLE},
    {"take", required_argument, NULL, OPT_TAKE},
    {"limitRate", required_argument, NULL, OPT_LIMIT_RATE},
    {"resume", required_argument, NULL, OPT_RESUME},
    {"keepalive", required_argument, NULL, OPT_KEEPALIVE},
    {"keepAlive", required_argument, NULL, OPT_KEEPALIVE},
    {"maxLifetime", required_argument, NULL, OPT_LIFETIME},
    {"fragment", required_argument, NULL, OPT_FRAGMENT},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"debug", no_argument, NULL, OPT_DEBUG},
    {"showMetadata", no_argument, NULL, OPT_SHOW_MD},
    {"server", no_argument, NULL, OPT_SERVER},
    {"lease", required_argument, NULL, OPT_LEASE},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"busy-poll", no_argument, NULL, OPT_BUSY_POLL},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"ca", required_argument, NULL, OPT_CA},
    {"insecure", no_argument, NULL, 'k'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'v'},
    {NULL, 0, NULL, 0},
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

static int parse_count(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *end || s[0] == '-') return -1;
  *out = v;
  return 0;
}

int cli_parse_duration(const char *s, uint32_t *ms) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || v < 0) return -1;
  double mult = 1000;
  if (*end == '\0' || strcmp(end, "s") == 0)
    mult = 1000;
  else if (strcmp(end, "ms") == 0)
    mult = 1;
  else if (strcmp(end, "m") == 0)
    mult = 60000;
  else if (strcmp(end, "h") == 0)
    mult = 3600000;
  else
    return -1;
  double r = v * mult;
  if (r > 2147483647.0) return -1;
  *ms = (uint32_t)r;
  return 0;
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

int main(int argc, char **argv) {
  rs_runtime_tune_malloc(); /* see rsocket/runtime.h */
  cli_options o;
  memset(&o, 0, sizeof o);
  o.model = MODEL_REQUEST;
  o.workers = 1;
  o.connect_timeout_ms = 10000;
  int models = 0, c;
  while ((c = getopt_long(argc, argv, "d:m:r:khv", long_opts, NULL)) != -1) {
    switch (c) {
    case OPT_REQUEST: o.model = MODEL_REQUEST, models++; break;
    case OPT_STREAM: o.model = MODEL_STREAM, models++; break;
    case OPT_CHANNEL: o.model = MODEL_CHANNEL, models++; break;
    case OPT_FNF: o.model = MODEL_FNF, models++; break;
    case OPT_MDPUSH: o.model = MODEL_METADATA_PUSH, models++; break;
    case 'd': o.data_arg = optarg; break;
    case 'm':
      if (cli_read_source(optarg, &o.metadata) != 0) return EXIT_USAGE;
      break;
    case OPT_DMT: o.data_mime = optarg; break;
    case OPT_MMT: o.metadata_mime = optarg; break;
    case 'r':
      if (o.nroutes == (int)(sizeof o.routes / sizeof o.routes[0]))
        return bad_usage("too many routes (%s)", optarg);
      if (strlen(optarg) == 0 || strlen(optarg) > 255)
        return bad_usage("a route must be 1 to 255 bytes: '%s'", optarg);
      o.routes[o.nroutes++] = optarg;
      break;
    case OPT_SETUP_DATA:
      if (cli_read_source(optarg, &o.setup_data) != 0) return EXIT_USAGE;
      break;
    case OPT_SETUP_MD:
      if (cli_read_source(optarg, &o.setup_metadata) != 0) return EXIT_USAGE;
      break;
    case OPT_AUTH_BEARER: o.auth_bearer = optarg; break;
    case OPT_AUTH_SIMPLE:
      if (!strchr(optarg, ':')) return bad_usage("--authSimple needs USER:PASS, got '%s'", optarg);
      o.auth_simple = optarg;
      break;
    case OPT_TAKE:
      if (parse_count(optarg, &o.take) || o.take == 0)
        return bad_usage("--take needs a positive count, got '%s'", optarg);
      break;
    case OPT_LIMIT_RATE:
      if (parse_count(optarg, &o.limit_rate) || o.limit_rate == 0 || o.limit_rate > 0x7fffffff)
        return bad_usage("--limitRate needs a count from 1 to 2147483647, got '%s'", optarg);
      break;
    case OPT_RESUME: {
      uint32_t ms;
      if (cli_parse_duration(optarg, &ms) || ms == 0)
        return bad_usage("--resume needs a duration (seconds), got '%s'", optarg);
      o.resume_ms = ms;
      break;
    }
    case OPT_KEEPALIVE:
      if (cli_parse_duration(optarg, &o.keepalive_ms) || o.keepalive_ms == 0)
        return bad_usage("--keepalive needs a duration such as 20s, got '%s'", optarg);
      break;
    case OPT_LIFETIME:
      if (cli_parse_duration(optarg, &o.max_lifetime_ms) || o.max_lifetime_ms == 0)
        return bad_usage("--maxLifetime needs a duration such as 90s, got '%s'", optarg);
      break;
    case OPT_FRAGMENT: {
      uint64_t v;
      if (parse_count(optarg, &v) || v < 64 || v > 16777215)
        return bad_usage("--fragment needs an MTU from 64 to 16777215, got '%s'", optarg);
      o.mtu = (uint32_t)v;
      break;
    }
    case OPT_TIMEOUT:
      if (cli_parse_duration(optarg, &o.timeout_ms) || o.timeout_ms == 0)
        return bad_usage("--timeout needs a duration such as 5s, got '%s'", optarg);
      break;
    case OPT_CONNECT_TIMEOUT:
      if (cli_parse_duration(optarg, &o.connect_timeout_ms) || o.connect_timeout_ms == 0)
        return bad_usage("--connect-timeout needs a duration such as 10s, got '%s'", optarg);
      break;
    case OPT_DEBUG: o.debug = true; break;
    case OPT_SHOW_MD: o.show_metadata = true; break;
    case OPT_SERVER: o.server = true; break;
    case OPT_LEASE: {
      uint64_t v;
      if (parse_count(optarg, &v) || v == 0 || v > 0x7fffffff)
        return bad_usage("--lease needs a count of requests per second, got '%s'", optarg);
      o.lease_per_second = (uint32_t)v;
      break;
    }
    case OPT_BUSY_POLL: o.busy_poll = true; break;
    case OPT_WORKERS: {
      uint64_t v;
      if (parse_count(optarg, &v) || v == 0 || v > 256)
        return bad_usage("--workers needs a count from 1 to 256, got '%s'", optarg);
      o.workers = (int)v;
      break;
    }
    case OPT_CERT: o.cert = optarg; break;
    case OPT_KEY: o.key = optarg; break;
    case OPT_CA: o.ca = optarg; break;
    case 'k': o.insecure = true; break;
    case 'h': usage(stdout); return EXIT_OK;
    case 'v': printf("rsocket %s (rsocket-c)\n", RS_VERSION_STRING); return EXIT_OK;
    default: fprintf(stderr, "Try 'rsocket --help'.\n"); return EXIT_USAGE;
    }
  }
  if (optind == argc) return bad_usage("%s", "missing URI (e.g. tcp://127.0.0.1:7878)");
  if (optind + 1 < argc) return bad_usage("unexpected argument '%s'", argv[optind + 1]);
  o.uri = argv[optind];
  if (models > 1)
    return bad_usage("%s", "choose one of --request, --stream, --channel, --fnf, --metadataPush");
  if (o.server && models > 0)
    return bad_usage("%s", "--server serves every interaction; drop the model flag");
  if (o.server && o.data_arg && o.data_arg[0] == '@') {
    o.stream_file = o.data_arg + 1;
  }
  if (o.data_arg && !(o.model == MODEL_CHANNEL && strcmp(o.data_arg, "-") == 0) && !o.stream_file) {
    if (cli_read_source(o.data_arg, &o.data) != 0) return EXIT_USAGE;
  }
  if (o.stream_file) {
    if (cli_read_source(o.data_arg, &o.data) != 0) return EXIT_USAGE;
  }
  if (o.model == MODEL_METADATA_PUSH && !o.metadata.set)
    return bad_usage("%s", "--metadataPush sends the metadata given with -m");
  if (o.debug) cli_debug_enable();
  int rc = o.server ? cli_run_server(&o) : cli_run_client(&o);
  free(o.data.ptr);
  free(o.metadata.ptr);
  free(o.setup_data.ptr);
  free(o.setup_metadata.ptr);
  return rc;
}
