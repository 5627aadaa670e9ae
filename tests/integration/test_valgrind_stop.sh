#!/usr/bin/env bash
# Servers start, serve one client and stop on SIGTERM under valgrind with 0 errors: the CLI server
# with one worker (the worker array was freed while worker 0's handles were still closing: 29
# invalid reads and writes inside uv_run, which ASan cannot see inside libuv), with two workers,
# over ws:// (sessions), and ws-echo-server. Skipped for sanitizer builds (valgrind cannot run
# them) and when valgrind is missing.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bin=${RS_BIN:-build/bin}
build=${RS_BUILD_DIR:-build}
if grep -q '^RS_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  echo "test_valgrind_stop: skipped (sanitizer build)"; exit 0
fi
if ! command -v valgrind > /dev/null; then
  echo "test_valgrind_stop: skipped (no valgrind; scripts/deps test installs it)"; exit 0
fi

vg=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite)

# Starts a server under valgrind, waits (up to 60 s: valgrind is slow) for its listening line.
start() {
  local name=$1; shift
  "${vg[@]}" "$@" > "$work/$name.out" 2> "$work/$name.err" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1 600); do grep -q '^listening on ' "$work/$name.out" && break; sleep 0.1; done
  uri=$(awk '/^listening on /{print $3; exit}' "$work/$name.out")
}

# SIGTERM, then the exit status (valgrind's 99 means errors) within 60 s.
stop() {
  local name=$1
  kill -TERM "$pid"
  local rc=0
  for _ in $(seq 1 600); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
  wait "$pid" || rc=$?
  check "$name: exit status after SIGTERM" 0 "$rc"
  check "$name: valgrind errors" "" "$(grep -E 'Invalid|uninitialised|definitely lost' "$work/$name.err" | head -3)"
}

start tcp1 "$bin/rsocket" --server tcp://127.0.0.1:0
check "tcp1: answers" hi "$("$bin/rsocket" -d hi "$uri")"
stop tcp1

start tcp2 "$bin/rsocket" --server --workers 2 tcp://127.0.0.1:0
check "tcp2: answers" "$(printf '1\n2\n3')" "$("$bin/rsocket" --stream --take 3 "$uri")"
stop tcp2

start ws "$bin/rsocket" --server ws://127.0.0.1:0
check "ws: answers" hi "$("$bin/rsocket" -d hi "$uri")"
stop ws

start echo "$bin/ws-echo-server" --port 0
check "ws-echo-server: echoes" hi "$(echo hi | "$bin/ws-client" --grace 0.2 "$uri/")"
stop echo

finish test_valgrind_stop
