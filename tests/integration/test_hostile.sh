#!/usr/bin/env bash
# Hostile peers against `rsocket --server` (tests/integration/hostile.py does the attacking and
# samples the server from /proc): each attack must leave the server's memory bounded, the
# attacker cut within the stated time, and a legitimate client answered meanwhile.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bin=${RS_BIN:-build/bin}
py=/usr/bin/python3
hostile=$(dirname "$0")/hostile.py
build=${RS_BUILD_DIR:-build}
# Memory bounds: a sanitizer build keeps freed memory in quarantine and shadows all of it.
rss_max=256
grep -q '^RS_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2> /dev/null && rss_max=768

"$bin/rsocket" --server tcp://127.0.0.1:0 > "$work/tcp.out" 2>&1 &
spid=$!
pids+=("$spid")
uri=$(listening_uri "$work/tcp.out")
port=${uri##*:}

# A legitimate client's answer while an attack runs (prints "ok" or what went wrong).
legit() {
  local got
  got=$("$bin/rsocket" --timeout 3 -d hi "$uri" 2>&1) || true
  [ "$got" = hi ] && echo ok || echo "$got"
}

# 1. A client that sends requests and never reads their answers (item 1 and 4 of issue 13):
# bounded memory, and cut once its keepalive lifetime is over plus the close deadline (5 s).
"$py" "$hostile" nonreader 127.0.0.1 "$port" "$spid" > "$work/nonreader" &
attack=$!
sleep 1
check "non-reader: a legitimate client is answered meanwhile" ok "$(legit)"
wait "$attack"
reaped=$(awk '/^reaped/{print $2}' "$work/nonreader")
rss=$(awk '/^max_rss_mib/{print $2}' "$work/nonreader")
check "non-reader: cut within 15 s (reaped $reaped)" yes \
  "$(awk -v r="$reaped" 'BEGIN{print (r != "never" && r + 0 < 15) ? "yes" : "no"}')"
check "non-reader: server RSS under $rss_max MiB ($rss MiB)" yes \
  "$([ "$rss" -lt "$rss_max" ] && echo yes || echo no)"
check "non-reader: the server is still up" ok "$(legit)"

# 2. 65,000 streams on one connection, then the connection closed (item 5): tearing them down is
# linear, so a second client's request made right after is answered at once (a quadratic
# teardown froze the loop 6 s; the bound here is loose so a slow machine does not fail it).
"$py" "$hostile" teardown 127.0.0.1 "$port" "$spid" > "$work/teardown"
ms=$(awk '/^answer_ms/{print $2}' "$work/teardown")
check "65,000 streams torn down: a second client answered within 2 s (${ms} ms)" yes \
  "$([ "${ms:-99999}" -lt 2000 ] && echo yes || echo no)"

# 3. Sockets that never send anything (item 9): with --max-connections 100, 300 idle sockets do
# not lock a legitimate client out: the oldest connections that have not set up are cut.
"$bin/rsocket" --server --max-connections 100 tcp://127.0.0.1:0 > "$work/idle.out" 2>&1 &
ipid=$!
pids+=("$ipid")
iuri=$(listening_uri "$work/idle.out")
"$py" "$hostile" idle 127.0.0.1 "${iuri##*:}" "$ipid" > "$work/idle"
ms=$(awk '/^answer_ms/{print $2}' "$work/idle")
shed=$(awk '/^shed/{print $2}' "$work/idle")
check "300 idle sockets, 100 allowed: a legitimate client answered within 2 s (${ms} ms)" yes \
  "$([ "${ms:-99999}" -lt 2000 ] && echo yes || echo no)"
check "300 idle sockets, 100 allowed: at least 200 shed ($shed)" yes \
  "$([ "${shed:-0}" -ge 200 ] && echo yes || echo no)"
kill "$ipid"

# 4. Resumable sessions left behind (item 8): 300 connections each SETUP with resumption, start an
# endless stream and go; the store ends the oldest detached sessions past its budget (64 MiB of
# retained frames), so memory stays bounded and other clients are served.
"$bin/rsocket" --server --resume 30 tcp://127.0.0.1:0 > "$work/resume.out" 2>&1 &
rpid=$!
pids+=("$rpid")
ruri=$(listening_uri "$work/resume.out")
"$py" "$hostile" resume 127.0.0.1 "${ruri##*:}" "$rpid" > "$work/resume"
rss=$(awk '/^max_rss_mib/{print $2}' "$work/resume")
check "300 resumable sessions left behind: server RSS under $rss_max MiB ($rss MiB)" yes \
  "$([ "$rss" -lt "$rss_max" ] && echo yes || echo no)"
check "300 resumable sessions left behind: a legitimate client answered" hi \
  "$("$bin/rsocket" --timeout 3 -d hi "$ruri" 2>&1 || true)"
kill "$rpid"

# 4b. WebSocket PING flood, never reading the PONGs (item 2): only the latest pong is queued.
for server in echo rsocket; do
  if [ $server = echo ]; then
    "$bin/ws-echo-server" --port 0 > "$work/ws.out" 2>&1 &
  else
    "$bin/rsocket" --server ws://127.0.0.1:0 > "$work/ws.out" 2>&1 &
  fi
  wpid=$!
  pids+=("$wpid")
  wuri=$(listening_uri "$work/ws.out")
  wport=${wuri##*:}
  wport=${wport%%/*}
  "$py" "$hostile" pingflood 127.0.0.1 "$wport" "$wpid" > "$work/pingflood"
  rss=$(awk '/^max_rss_mib/{print $2}' "$work/pingflood")
  sent=$(awk '/^sent_mib/{print $2}' "$work/pingflood")
  check "ping flood on $server ($sent MiB of pings): RSS under 64 MiB ($rss MiB)" yes \
    "$([ "$rss" -lt 64 ] && echo yes || echo no)"
  kill "$wpid"
done

# 5. SIGTERM while a channel stays open and a client does not read (item 6): the graceful stop
# ends on its own (drain deadline), exit status 0; a second signal cuts everything at once.
stop_server() { # URI-file, signals (1 or 2): prints "STATUS SECONDS"
  "$bin/rsocket" --server tcp://127.0.0.1:0 > "$work/stop.out" 2>&1 &
  local sp=$!
  pids+=("$sp")
  local u
  u=$(listening_uri "$work/stop.out")
  (sleep 60 | "$bin/rsocket" --channel "$u" > /dev/null 2>&1) &
  pids+=($!)
  ("$bin/rsocket" --stream "$u" | sleep 60) > /dev/null 2>&1 &
  pids+=($!)
  sleep 1
  local t0=$SECONDS rc=0
  kill -TERM "$sp"
  if [ "$1" = 2 ]; then sleep 0.3; kill -TERM "$sp"; fi
  for _ in $(seq 1 300); do kill -0 "$sp" 2> /dev/null || break; sleep 0.1; done
  wait "$sp" || rc=$?
  echo "$rc $((SECONDS - t0))"
}
read -r rc secs <<< "$(stop_server 1)"
check "SIGTERM with an idle channel and a non-reader: exit status" 0 "$rc"
check "SIGTERM with an idle channel and a non-reader: stopped within 15 s (${secs} s)" yes \
  "$([ "$secs" -le 15 ] && echo yes || echo no)"
read -r rc secs <<< "$(stop_server 2)"
check "a second SIGTERM: exit status" 0 "$rc"
check "a second SIGTERM: stopped at once (${secs} s)" yes "$([ "$secs" -le 3 ] && echo yes || echo no)"

# 6. Terminal injection (item 11): fnf and metadata-push data is printed with control bytes,
# backslashes and C1 controls escaped; UTF-8 text stays readable.
"$bin/rsocket" --fnf -d "$(printf 'a\033]52;c;ZXZpbA==\007b\nc\\d κόσμε \xc2\x9b')" "$uri"
wait_for "$work/tcp.out" '^fnf a'
check "fnf data escaped" 'fnf a\x1b]52;c;ZXZpbA==\x07b\nc\\d κόσμε \xc2\x9b' "$(grep '^fnf a' "$work/tcp.out")"

# 7. A stdout nobody reads (item 10): 100 fire-and-forgets of 3,000 bytes (more than a pipe
# holds) never block the loop; a request is answered; SIGTERM still stops it.
mkfifo "$work/fifo"
exec 7<> "$work/fifo"
"$bin/rsocket" --server tcp://127.0.0.1:0 >&7 2> "$work/fifo.err" &
fpid=$!
pids+=("$fpid")
furi=$(timeout 10 head -n 1 "$work/fifo" | awk '{print $3}')
big=$(head -c 3000 /dev/zero | tr '\0' x)
for _ in $(seq 1 100); do "$bin/rsocket" --fnf -d "$big" "$furi"; done
got=$("$bin/rsocket" --timeout 3 -d hi "$furi" 2>&1) || true
check "stdout not read: a request is still answered" hi "$got"
kill -TERM "$fpid"
rc=0
for _ in $(seq 1 150); do kill -0 "$fpid" 2> /dev/null || break; sleep 0.1; done
wait "$fpid" || rc=$?
check "stdout not read: SIGTERM stops it, status 0" 0 "$rc"
exec 7>&-

finish test_hostile
