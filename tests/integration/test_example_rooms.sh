#!/usr/bin/env bash
# examples/rooms.c, the service layer's example, driven by the rsocket CLI over tcp:// and ws://:
# a feed of room "a" gets exactly the posts made to "a" after it subscribed, in order, with
# their offsets, while room "b" is posted to as well; bad input and unroutable requests get the
# documented errors; plain routing metadata routes too; a subscriber that asks for 2 items and
# never reads more is cut off with "subscriber too slow" once its queue (256) is full, having
# received only its 2; SIGTERM stops the server (status 0: under ASan, no leak) with a feed open.
set -euo pipefail
bin=${RS_BIN:-$(dirname "$0")/../../build/bin}
source "$(dirname "$0")/../lib.sh"
cli=$bin/rsocket

post() { "$cli" --timeout 20s -r rooms.post -d "$2" "$1"; }
# The error line the CLI prints for a request, and its exit status.
fails() {
  local out rc=0
  out=$("$cli" --timeout 20s "$@" 2>&1) || rc=$?
  echo "$out (exit $rc)"
}
# Waits up to 20 s for child $1 to exit; sets $status to its exit status (or "running").
wait_exit() {
  status=running
  for _ in $(seq 1 400); do
    kill -0 "$1" 2>/dev/null && { sleep 0.05; continue; }
    status=0
    wait "$1" || status=$?
    return
  done
}

scenario() {
  local scheme=$1 srv uri feed first j i
  "$bin/example-rooms" "$scheme://127.0.0.1:0" >"$work/srv-$scheme" 2>&1 &
  srv=$!
  pids+=("$srv")
  uri=$(listening_uri "$work/srv-$scheme")
  check "$scheme: first post of a" '{"offset":1}' "$(post "$uri" '{"room":"a","text":"before"}')"

  # The feed: posts to "a" until one shows up in it (the subscription is then in place).
  "$cli" --stream -r rooms.feed -d '{"room":"a"}' "$uri" >"$work/feed-$scheme" 2>&1 &
  feed=$!
  pids+=("$feed")
  for i in $(seq 1 200); do
    post "$uri" "{\"room\":\"a\",\"text\":\"sync$i\"}" >/dev/null
    grep -q sync "$work/feed-$scheme" && break
    sleep 0.05
  done
  first=$(head -1 "$work/feed-$scheme")
  j=$(sed -n 's/.*"text":"sync\([0-9]*\)".*/\1/p' <<<"$first")
  check "$scheme: the feed starts with a sync post" '{"offset":'$((j + 1))',"text":"sync'"$j"'"}' \
    "$first"

  check "$scheme: post a" '{"offset":'$((i + 2))'}' "$(post "$uri" '{"room":"a","text":"m1"}')"
  check "$scheme: post b" '{"offset":1}' "$(post "$uri" '{"room":"b","text":"x1"}')"
  check "$scheme: post a again" '{"offset":'$((i + 3))'}' \
    "$(post "$uri" '{"room":"a","text":"m2 \"quoted\" é"}')"
  check "$scheme: post b again" '{"offset":2}' "$(post "$uri" '{"room":"b","text":"x2"}')"
  post "$uri" '{"room":"a","text":"end"}' >/dev/null
  wait_for "$work/feed-$scheme" '"end"'

  local want="" k
  for k in $(seq "$j" "$i"); do want+='{"offset":'$((k + 1))',"text":"sync'$k'"}'$'\n'; done
  want+='{"offset":'$((i + 2))',"text":"m1"}'$'\n'
  want+='{"offset":'$((i + 3))',"text":"m2 \"quoted\" é"}'$'\n'
  want+='{"offset":'$((i + 4))',"text":"end"}'
  check "$scheme: the feed has exactly the later posts of a, in order" "$want" \
    "$(cat "$work/feed-$scheme")"

  # Bad input: APPLICATION_ERROR with what was wrong.
  local app="error: APPLICATION_ERROR (0x201): bad request:"
  local want_post='(want {"room": "R", "text": "T"}) (exit 1)'
  check "$scheme: not JSON" "$app '[' or '{' expected near 'hello' $want_post" \
    "$(fails -r rooms.post -d 'hello' "$uri")"
  check "$scheme: no room" "$app Object item not found: room $want_post" \
    "$(fails -r rooms.post -d '{"text":"x"}' "$uri")"
  check "$scheme: text not a string" "$app Expected string, got integer $want_post" \
    "$(fails -r rooms.post -d '{"room":"a","text":5}' "$uri")"
  head -c 5000 /dev/zero | tr '\0' 'x' >"$work/long"
  printf '{"room":"a","text":"%s"}' "$(cat "$work/long")" >"$work/long.json"
  check "$scheme: text too long" \
    "$app room must have 1 to 100 bytes, text at most 4096 $want_post" \
    "$(fails -r rooms.post -d @"$work/long.json" "$uri")"
  check "$scheme: feed without a room" "$app Object item not found: room (want {\"room\": \"R\"}) (exit 1)" \
    "$(fails --stream -r rooms.feed -d '{}' "$uri")"
  # Unroutable: REJECTED (never processed), INVALID (no routing metadata).
  check "$scheme: unknown route" \
    "error: REJECTED (0x202): no route 'rooms.nope' for request-response (exit 1)" \
    "$(fails -r rooms.nope -d '{}' "$uri")"
  check "$scheme: wrong model" \
    "error: REJECTED (0x202): route 'rooms.post' serves request-response, not request-stream (exit 1)" \
    "$(fails --stream -r rooms.post -d '{}' "$uri")"
  check "$scheme: no route" "error: INVALID (0x204): no route: the connection's metadata type is 'application/octet-stream'; routes travel in message/x.rsocket.composite-metadata.v0 (a routing entry) or message/x.rsocket.routing.v0 (exit 1)" \
    "$(fails -d '{}' "$uri")"
  # Plain routing metadata, on a connection whose metadata type says so.
  printf '\012rooms.post' >"$work/route"
  check "$scheme: plain routing metadata" '{"offset":3}' \
    "$("$cli" --timeout 20s --mmt message/x.rsocket.routing.v0 -m @"$work/route" \
      -d '{"room":"b","text":"plain"}' "$uri")"

  # A slow subscriber: 2 items of credit, never more (--delayElements holds what it gets, so
  # --debug's "<< PAYLOAD" on stderr shows when the subscription is in place); 300 more posts
  # overflow its queue of 256.
  "$cli" --debug --stream --limitRate 2 --delayElements 1h -r rooms.feed -d '{"room":"slow"}' \
    "$uri" >"$work/slow-$scheme" 2>"$work/slow-$scheme.err" &
  local slow=$!
  pids+=("$slow")
  for i in $(seq 1 200); do
    post "$uri" "{\"room\":\"slow\",\"text\":\"s$i\"}" >/dev/null
    grep -q '^<< PAYLOAD' "$work/slow-$scheme.err" && break
    sleep 0.05
  done
  seq 1 300 | xargs -P 4 -I{} "$cli" --timeout 20s -q -r rooms.post \
    -d '{"room":"slow","text":"flood {}"}' "$uri"
  wait_exit "$slow"
  check "$scheme: the slow subscriber is cut off" 1 "$status"
  check "$scheme: it got its 2 items" 2 "$(wc -l <"$work/slow-$scheme")"
  check "$scheme: the error says why" "error: APPLICATION_ERROR (0x201): subscriber too slow" \
    "$(grep '^error' "$work/slow-$scheme.err")"

  # SIGTERM with a feed still open: the server stops (drain 5 s), exit status 0.
  kill -TERM "$srv"
  wait_exit "$srv"
  check "$scheme: SIGTERM stops the server" 0 "$status"
  wait_exit "$feed"
  check "$scheme: the open feed ends with the server" "4 error: CONNECTION_ERROR (0x101): server stopped" \
    "$status $(tail -1 "$work/feed-$scheme")"
}

scenario tcp
scenario ws
finish test_example_rooms
