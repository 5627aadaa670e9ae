#!/usr/bin/env bash
# collab-service's Redis engine with two instances sharing boards, real processes on loopback:
# a redis-server of its own (persistence off), two collab-services with --redis, gateways in
# front of each and of both. Concurrent edits through both instances (one order, no offset
# twice, identical shapes everywhere), one browser spread over both, presence across instances,
# kill -9 of a service (its members go), Redis down (clear errors, services up) and back empty
# (new epoch, HISTORY_GONE, joining again). The driver is collab_redis_driver.py.
# Skipped (77) without redis-server: scripts/deps test installs it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${RS_BIN:-$here/../../build/bin}
source "$here/../lib.sh"

if ! command -v redis-server >/dev/null 2>&1; then
  echo "test_collab_redis: skipped: no redis-server (Debian package redis-server; scripts/deps test)"
  exit 77
fi

rc=0
timeout 240 /usr/bin/python3 "$here/collab_redis_driver.py" "$bin" "$work" \
  >"$work/driver.out" 2>"$work/driver.err" || rc=$?
# The driver stops what it started; these are for a driver that was killed.
while read -r _ pid; do pids+=("$pid"); done < <(grep '^pid ' "$work/driver.out" || true)
grep -v '^pid ' "$work/driver.out" || true
passes=$((passes + $(grep -c '^ok ' "$work/driver.out" || true)))
fails=$((fails + $(grep -c '^FAIL ' "$work/driver.out" || true)))
if [ "$rc" -ne 0 ]; then
  [ "$(grep -c '^FAIL ' "$work/driver.out" || true)" -gt 0 ] || fails=$((fails + 1))
  echo "driver exit status $rc"; tail -20 "$work/driver.err"
  for f in svc1 svc2 gwAB; do echo "--- $f (last lines)"; tail -15 "$work/$f.out" 2>/dev/null || true; done
fi
# Sanitizer builds: a report in a process' output is a failure, whatever its exit status.
reports=$(grep -l 'Sanitizer' "$work"/*.out 2>/dev/null || true)
check "no sanitizer report" "" "$reports"
[ -z "$reports" ] || grep -h -A20 'Sanitizer' $reports | head -60
finish test_collab_redis
