#!/usr/bin/env bash
# The README's "short tour of the CLI", line by line as written there (only the port is changed to
# a free one, and build/bin to the build under test): each line's output, exit status and what the
# server saw. The tour is read from README.md and must equal the copy below, so the two cannot
# drift apart. The last line, an endless stream, runs through a proxy that cuts the connection
# (when node is there): the numbers go on across the cut, none lost or repeated.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=${RS_SRC:-$here/../..}
bin=${RS_BIN:-$src/build/bin}
source "$here/../lib.sh"

tour=(
  "build/bin/rsocket --server --resume 30 tcp://127.0.0.1:7878 &   # prints \"listening on tcp://127.0.0.1:7878\""
  "build/bin/rsocket -d hello tcp://127.0.0.1:7878             # request-response → hello"
  "build/bin/rsocket --stream --take 3 -d tick tcp://127.0.0.1:7878   # tick, tick, tick"
  "build/bin/rsocket --stream --take 3 tcp://127.0.0.1:7878    # a stream without data counts: 1, 2, 3"
  "printf 'a\\nb\\n' | build/bin/rsocket --channel tcp://127.0.0.1:7878   # a, b"
  "build/bin/rsocket --fnf -d note tcp://127.0.0.1:7878         # the server prints \"fnf note\""
  "build/bin/rsocket -r rooms.post --ab TOKEN -d '{\"x\":1}' --debug tcp://127.0.0.1:7878   # frames on stderr"
  "build/bin/rsocket --stream --resume 30 --limitRate 64 --delayElements 1s tcp://127.0.0.1:7878   # 1, 2, 3… one a second, resumed across a cut connection; Ctrl-C stops it"
)

# The tour as README.md has it: the lines of the first ```sh block after its heading.
mapfile -t readme < <(awk '/^## A short tour of the CLI/{t=1} t&&/^```sh/{b=1;next} b&&/^```/{exit} b' \
  "$src/README.md")
check "README tour has ${#tour[@]} lines" "${#tour[@]}" "${#readme[@]}"
for i in "${!tour[@]}"; do check "README tour line $((i + 1))" "${tour[$i]}" "${readme[$i]:-}"; done

# A free port for 7878: the server takes one, tells it, and the tour's lines use it.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
line() { # the tour's line N, runnable here
  local l=${tour[$1]//build\/bin\//$bin/}
  printf '%s' "${l//127.0.0.1:7878/127.0.0.1:$2}"
}

cd "$work"
eval "$(line 0 "$port")" >"$work/server.out" 2>"$work/server.err"
pids+=($!)
check "1: server starts" "listening on tcp://127.0.0.1:$port" "$(listening_uri "$work/server.out" \
  | sed 's/^/listening on /')"

run() { # N -> stdout in $work/out.N, stderr in $work/err.N; prints the exit status
  local rc=0
  timeout 20 bash -c "$(line "$1" "$port")" >"$work/out.$1" 2>"$work/err.$1" || rc=$?
  echo "$rc"
}
check "2: exit" 0 "$(run 1)"
check "2: request-response" "hello" "$(cat "$work/out.1")"
check "3: exit" 0 "$(run 2)"
check "3: stream" "$(printf 'tick\ntick\ntick')" "$(cat "$work/out.2")"
check "4: exit" 0 "$(run 3)"
check "4: stream without data" "$(printf '1\n2\n3')" "$(cat "$work/out.3")"
check "5: exit" 0 "$(run 4)"
check "5: channel" "$(printf 'a\nb')" "$(cat "$work/out.4")"
check "6: exit" 0 "$(run 5)"
check "6: nothing printed" "" "$(cat "$work/out.5" "$work/err.5")"
wait_for "$work/server.out" '^fnf note$'
check "7: exit" 0 "$(run 6)"
check "7: response" '{"x":1}' "$(cat "$work/out.6")"
grep -q '^>> REQUEST_RESPONSE stream=1 flags=M' "$work/err.6" && grep -q '^<< PAYLOAD stream=1' "$work/err.6" \
  && grep -q '^   entry message/x.rsocket.routing.v0 .* routes rooms.post$' "$work/err.6" \
  && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL 7: frames on stderr:"; cat "$work/err.6"; }

# 8: the endless stream, one number a second. Through the cut proxy when node is here: the proxy
# cuts the connection after two seconds; the client reconnects and resumes, and the numbers go
# on from where they were.
target=$port
if command -v node >/dev/null; then
  node "$here/../interop/peers/cut_proxy.mjs" --target "127.0.0.1:$port" >"$work/proxy.out" 2>&1 &
  proxy=$!
  pids+=($proxy)
  wait_for "$work/proxy.out" '^proxy listening on '
  target=$(awk '/^proxy listening on /{print $4; exit}' "$work/proxy.out")
fi
bash -c "exec $(line 7 "$target")" >"$work/out.7" 2>"$work/err.7" &
client=$!
pids+=($client)
sleep 2.5
[ "$target" = "$port" ] || kill -USR1 "$proxy"
sleep 3
kill -TERM "$client"
set +e; wait "$client"; set -e
n=$(wc -l <"$work/out.7")
check "8: counts from 1 without a gap" "$(seq 1 "$n")" "$(cat "$work/out.7")"
[ "$n" -ge 4 ] && [ "$n" -le 7 ] && passes=$((passes + 1)) \
  || { fails=$((fails + 1)); echo "FAIL 8: $n numbers in 5.5 s at one a second"; cat "$work/err.7"; }
if [ "$target" != "$port" ]; then
  grep -q '^cut: ' "$work/proxy.out" && grep -q '^rsocket: .*retrying in' "$work/err.7" \
    && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL 8: no cut and reconnection:"; \
      cat "$work/proxy.out" "$work/err.7"; }
fi

# The tour's server stops cleanly (under ASan: no leak).
kill -TERM "${pids[0]}"
set +e; wait "${pids[0]}"; rc=$?; set -e
check "server exit status after SIGTERM" 0 "$rc"
[ "$rc" -eq 0 ] || head -50 "$work/server.err"
finish test_cli_tour
