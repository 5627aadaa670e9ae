/* The `rsocket` command: shared definitions of its client and server modes. */
#ifndef RS_APPS_CLI_H
#define RS_APPS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rsocket/runtime.h"

/* Exit statuses (documented in --help and docs/rsocket.1). */
enum {
  EXIT_OK = 0,
  EXIT_APPLICATION = 1, /* the peer answered with an ERROR frame (stream-level) */
  EXIT_USAGE = 2,       /* bad command line */
  EXIT_CONNECT = 3,     /* cannot connect, TLS failure, connection lost */
  EXIT_PROTOCOL = 4,    /* setup rejected, connection error, protocol violation */
  EXIT_TIMEOUT = 5,     /* --timeout or --connect-timeout expired */
};

typedef enum cli_model {
  MODEL_REQUEST,
  MODEL_STREAM,
  MODEL_CHANNEL,
  MODEL_FNF,
  MODEL_METADATA_PUSH,
} cli_model;

typedef struct cli_buf {
  uint8_t *ptr;
  size_t len;
  bool set;
} cli_buf;

#define CLI_MAX_METADATA 16 /* -m and --mmt values */
#define CLI_MAX_ROUTES   16
#define CLI_MAX_HEADERS  32 /* --wsHeader */

typedef struct cli_options {
  const char *uri;
  bool server;
  cli_model model;
  cli_buf data;                       /* -d: literal, @file, or - (stdin) */
  const char *data_arg;               /* as given (channel reads stdin lines itself) */
  cli_buf metadata[CLI_MAX_METADATA]; /* -m, in order */
  int nmetadata;
  const char *metadata_mimes[CLI_MAX_METADATA]; /* --mmt, in order (canonical names) */
  int nmetadata_mimes;
  const char *data_mime;
  const char *routes[CLI_MAX_ROUTES];
  int nroutes;
  cli_buf setup_data, setup_metadata;
  const char *setup_metadata_mime; /* --smmt: --sm becomes a composite metadata entry */
  const char *auth_bearer, *auth_simple;
  uint64_t take;       /* 0 = unlimited */
  uint64_t limit_rate; /* 0 = request everything at once (unbounded) */
  uint32_t resume_ms;
  uint32_t keepalive_ms, max_lifetime_ms;
  uint32_t mtu;
  uint32_t timeout_ms;         /* the whole interaction; 0 = none */
  uint32_t connect_timeout_ms; /* connecting, and then the server's first answer, each */
  int retry;                   /* --retry: attempts after a first connection that fails */
  uint32_t delay_ms;           /* --delayElements */
  const char *ws_headers[CLI_MAX_HEADERS + 1]; /* --wsHeader, NULL-terminated */
  int nws_headers;
  bool quiet; /* -q: do not print received payloads */
  bool debug;
  bool wiretap; /* -w: --debug plus a hex dump of every frame */
  bool show_metadata;
  /* Server */
  uint32_t lease_per_second;
  int workers;
  size_t max_connections; /* per worker */
  bool busy_poll;         /* server: spin instead of sleeping in the kernel */
  const char *cert, *key, *ca;
  bool insecure;
  const char *stream_file; /* server: -d @file for streams */
} cli_options;

/* Prints a received or sent frame on stderr (--debug), with a hex dump of its bytes under
 * --wiretap. `out` is true for sent frames. */
void cli_debug_frame(bool out, const uint8_t *frame, size_t len);

/* Turns --debug (and with `wiretap`, the hex dumps) on. */
void cli_debug_enable(bool wiretap);
bool cli_debug_enabled(void);

/* The connection's metadata is composite: --debug lists the entries of each frame's metadata. */
void cli_debug_composite(bool on);

/* Reads a whole file (or stdin for "-"), or takes a literal, into *out. Returns 0 or -1 with a
 * message printed. */
int cli_read_source(const char *arg, cli_buf *out);

/* Parses "500ms", "20s", "2m", or a plain number of seconds. Returns 0 or -1. */
int cli_parse_duration(const char *s, uint32_t *ms);

/* A MIME type argument: a MIME type as given, or rsc's name of a well-known one
 * (APPLICATION_JSON, TEXT_PLAIN, MESSAGE_RSOCKET_ROUTING…) as its MIME type. NULL for a name
 * that is neither. */
const char *cli_mime(const char *arg);

/* The metadata of every request (routes, authentication, -m with --mmt) and of the SETUP frame
 * (--sm, --smmt), as the connection's metadata MIME type says. */
typedef struct cli_metadata {
  const char *mime; /* the SETUP frame's metadata MIME type (static or from the options) */
  bool composite;
  uint8_t *request; /* NULL when requests carry no metadata */
  size_t request_len;
  uint8_t *setup; /* NULL when --sm was not given */
  size_t setup_len;
} cli_metadata;

/* Builds the metadata. Returns 0, or -1 with a message printed (a usage error). */
int cli_metadata_build(const cli_options *o, cli_metadata *out);
void cli_metadata_free(cli_metadata *m);

int cli_run_client(cli_options *o);
int cli_run_server(cli_options *o);

#endif
