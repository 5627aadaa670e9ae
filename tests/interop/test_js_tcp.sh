#!/usr/bin/env bash
# rsocket-js 1.0.0-alpha.3 interop over TCP, both directions (see js_interop.sh).
exec bash "$(dirname "$0")/js_interop.sh" tcp
