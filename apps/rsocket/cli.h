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

typedef struct cli_options {
  const char *uri;
  bool server;
  cli_model model;
  cli_buf data;         /* -d: literal, @file, or - (stdin) */
  const char *data_arg; /* as given (channel reads stdin lines itself) */
  cli_buf metadata;     /* -m */
  const char *data_mime, *metadata_mime;
  const char *routes[16];
  int nroutes;
  cli_buf setup_data, setup_metadata;
  const char *auth_bearer, *auth_simple;
  uint64_t take;       /* 0 = unlimited */
  uint64_t limit_rate; /* 0 = request everything at once (unbounded) */
  uint32_t resume_ms;
  uint32_t keepalive_ms, max_lifetime_ms;
  uint32_t mtu;
  uint32_t timeout_ms;         /* the whole interaction; 0 = none */
  uint32_t connect_timeout_ms; /* connecting, and then the server's first answer, each */
  bool debug;
  bool show_metadata;
  /* Server */
  uint32_t lease_per_second;
  int workers;
  bool busy_poll; /* server: spin instead of sleeping in the kernel */
  const char *cert, *key, *ca;
  bool insecure;
  const char *stream_file; /* server: -d @file for streams */
} cli_options;

/* Prints a received or sent frame on stderr (--debug). `out` is true for sent frames. */
void cli_debug_frame(bool out, const uint8_t *frame, size_t len);

/* Wraps `settings` so that every frame in and out is printed (--debug). Installed by the
 * runtime tap in debug.c. */
void cli_debug_enable(void);
bool cli_debug_enabled(void);

/* Reads a whole file (or stdin for "-") into *out. Returns 0 or -1 with a message printed. */
int cli_read_source(const char *arg, cli_buf *out);

/* Parses "500ms", "20s", "2m", or a plain number of seconds. Returns 0 or -1. */
int cli_parse_duration(const char *s, uint32_t *ms);

int cli_run_client(cli_options *o);
int cli_run_server(cli_options *o);

#endif
