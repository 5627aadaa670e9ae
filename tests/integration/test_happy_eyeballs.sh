#!/usr/bin/env bash
# Names with several addresses, the first one wrong. In a private mount namespace whose
# /etc/hosts makes `rs-v6first` resolve to ::1 first, then 127.0.0.1 (what a Debian /etc/hosts does
# for localhost), servers listening on 127.0.0.1 only are reached by `rsocket` over tcp, tls, ws
# and wss, by ws-client and by rsocket-bench; when every address fails the error names each one;
# a server given `localhost` listens on both addresses; and when the first address black-holes
# (drops SYNs) the next one is tried after the stagger, not after the connect timeout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${RS_BIN:-$here/../../build/bin}
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)

# Our own /etc/hosts: re-run inside a private mount namespace and bind-mount it there. Where that
# is not possible (in a chroot, `unshare -m` cannot make the root private), a resolver hook
# (tests/support/resolver_hook.c, LD_PRELOAD) gives the same answers for the names in it.
build=${RS_BUILD_DIR:-$here/../../build}
hook=$build/tests/libresolver_hook.so
if [ -z "${RS_HE_NAMESPACE:-}" ]; then
  if unshare -m true 2>/dev/null; then exec unshare -m env RS_HE_NAMESPACE=mount bash "$0" "$@"; fi
  if [ ! -f "$hook" ]; then
    echo "FAIL test_happy_eyeballs: 'unshare -m' is not permitted here and $hook is missing"
    echo "(build with -DRS_TESTS=ON); nothing was tested"
    exit 1
  fi
  echo "note: no private mount namespace here; names resolve through $hook"
  export RS_HE_NAMESPACE=hook
fi
source "$here/../lib.sh"

cat > "$work/hosts" <<'EOF'
127.0.0.1 localhost
::1 localhost
::1 rs-v6first
127.0.0.1 rs-v6first
EOF
if [ "$RS_HE_NAMESPACE" = mount ]; then
  mount --bind "$work/hosts" /etc/hosts
else
  # Sanitized programs insist on their runtime coming first; the hook is not sanitized.
  export LD_PRELOAD=$hook RS_TEST_HOSTS=$work/hosts
  export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
fi
# The premise: the resolver gives ::1 first (glibc sorts ::1 before 127.0.0.1).
first=$(getent ahosts rs-v6first | awk '/STREAM/{print $1; exit}')
if [ "$first" != "::1" ]; then
  echo "FAIL test_happy_eyeballs: rs-v6first resolves to '$first' first, not ::1; the test cannot"
  echo "show anything here"; getent ahosts rs-v6first; exit 1
fi
# And nothing of ours listens on ::1 for the ports below (the servers bind 127.0.0.1 only).

start() { # name, command... → sets $uri and $port (waits for "listening on URI")
  local name=$1; shift
  "$@" > "$work/$name.log" 2>&1 &
  pids+=($!)
  uri=$(listening_uri "$work/$name.log")
  port=${uri##*:}; port=${port%%/*}
}
elapsed_ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=rs-v6first \
  -addext subjectAltName=DNS:rs-v6first,DNS:localhost -keyout "$work/key.pem" \
  -out "$work/cert.pem" 2>/dev/null
tlsopts=(--cert "$work/cert.pem" --key "$work/key.pem")

# ---- every transport reaches a server on 127.0.0.1 through a name whose first address is ::1
start tcp "$bin/rsocket" --server tcp://127.0.0.1:0; tcp_port=$port
start tls "$bin/rsocket" --server tls://127.0.0.1:0 "${tlsopts[@]}"; tls_port=$port
start ws "$bin/rsocket" --server ws://127.0.0.1:0/rs; ws_port=$port
start wss "$bin/rsocket" --server wss://127.0.0.1:0/rs "${tlsopts[@]}"; wss_port=$port
# --ca only where there is TLS (the CLI refuses it on plain URIs).
rs_cli() {
  local ca=()
  for a in "$@"; do case $a in tls://* | wss://*) ca=(--ca "$work/cert.pem") ;; esac; done
  timeout 30 "$bin/rsocket" --timeout 20s "${ca[@]}" "$@"
}
c=(rs_cli)
check "tcp via ::1-first name" "x" "$("${c[@]}" -d x "tcp://rs-v6first:$tcp_port" 2>&1)"
check "tls via ::1-first name" "x" "$("${c[@]}" -d x "tls://rs-v6first:$tls_port" 2>&1)"
check "ws via ::1-first name" "x" "$("${c[@]}" -d x "ws://rs-v6first:$ws_port/rs" 2>&1)"
check "wss via ::1-first name" "x" "$("${c[@]}" -d x "wss://rs-v6first:$wss_port/rs" 2>&1)"
check "stream via ::1-first name" "$(printf 's\ns')" \
  "$("${c[@]}" --stream --take 2 -d s "tcp://rs-v6first:$tcp_port" 2>&1)"
# --debug says which address answered.
"${c[@]}" --debug -d x "tcp://rs-v6first:$tcp_port" >/dev/null 2>"$work/debug.err" || true
check "connected to the IPv4 address" "* connected to 127.0.0.1:$tcp_port" \
  "$(grep '^\* connected' "$work/debug.err")"

# ---- ws-client and rsocket-bench
start echo "$bin/ws-echo-server" --host 127.0.0.1 --port 0; echo_port=$port
set +e
out=$(timeout 30 "$bin/ws-client" --send hello --expect 1 "ws://rs-v6first:$echo_port/" 2>&1)
check "ws-client via ::1-first name: exit" "0" "$?"
set -e
check "ws-client via ::1-first name: echo" "text 5 hello" "$(grep '^text' <<<"$out")"
for args in "-n 200 -c 2 tcp://rs-v6first:$tcp_port" "-n 200 tls://rs-v6first:$tls_port" \
  "-n 200 ws://rs-v6first:$ws_port/rs" "--model ws -n 200 -c 2 ws://rs-v6first:$echo_port/"; do
  set +e
  timeout 60 "$bin/rsocket-bench" -k --json $args > "$work/bench.json" 2>"$work/bench.err"
  rc=$?
  set -e
  check "rsocket-bench $args: exit" "0" "$rc"
  [ "$rc" -eq 0 ] || { cat "$work/bench.json" "$work/bench.err"; }
  check "rsocket-bench $args: no errors" "1" "$(grep -c '"errors":0,"connect_failures":0' "$work/bench.json" || true)"
done
set +e
timeout 30 "$bin/rsocket-bench" --idle 3 -D 0.2 "tcp://rs-v6first:$tcp_port" >"$work/idle.out" 2>&1
check "rsocket-bench --idle via ::1-first name" "0" "$?"
set -e

# ---- every address fails: the message names both
dead=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
set +e
timeout 30 "$bin/rsocket" -d x "tcp://rs-v6first:$dead" >/dev/null 2>"$work/dead.err"
check "all addresses refused: exit" "3" "$?"
set -e
check "all addresses refused: message" \
  "error: cannot connect to rs-v6first:$dead: [::1]:$dead connection refused; 127.0.0.1:$dead connection refused" \
  "$(cat "$work/dead.err")"
set +e
timeout 30 "$bin/ws-client" "ws://rs-v6first:$dead/" >/dev/null 2>"$work/wsdead.err"
check "ws-client, all refused: exit" "3" "$?"
set -e
check "ws-client, all refused: message" \
  "ws-client: cannot connect to rs-v6first:$dead: [::1]:$dead connection refused; 127.0.0.1:$dead connection refused" \
  "$(cat "$work/wsdead.err")"

# ---- a server given `localhost` listens where clients look: ::1 and 127.0.0.1
start lo "$bin/rsocket" --server tcp://localhost:0
check "server on localhost: listening line" "listening on tcp://localhost:$port" \
  "$(grep '^listening on ' "$work/lo.log")"
check "server on localhost: via 127.0.0.1" "a" "$("${c[@]}" -d a "tcp://127.0.0.1:$port" 2>&1)"
check "server on localhost: via ::1" "b" "$("${c[@]}" -d b "tcp://[::1]:$port" 2>&1)"
check "server on localhost: via the name" "c" "$("${c[@]}" -d c "tcp://localhost:$port" 2>&1)"
start wslo "$bin/rsocket" --server ws://localhost:0/rs
check "ws server on localhost: via ::1" "d" "$("${c[@]}" -d d "ws://[::1]:$port/rs" 2>&1)"
check "ws server on localhost: via 127.0.0.1" "e" "$("${c[@]}" -d e "ws://127.0.0.1:$port/rs" 2>&1)"
start echolo "$bin/ws-echo-server" --host localhost --port 0
for a in 127.0.0.1 '[::1]'; do
  out=$(timeout 30 "$bin/ws-client" --send hi --expect 1 "ws://$a:$port/" 2>&1 || true)
  check "ws-echo-server on localhost: via $a" "text 2 hi" "$(grep '^text' <<<"$out")"
done

# ---- the first address black-holes: the stagger (250 ms) moves on, not the connect timeout.
# A listener on [::1]:PORT whose accept queue is full drops SYNs, like an unroutable address.
"$py" "$here/peers.py" blackhole ::1 "$tcp_port" > "$work/hole.log" 2>&1 &
pids+=($!)
wait_for "$work/hole.log" '^ready'
if "$py" "$here/peers.py" probe ::1 "$tcp_port" 1; then
  t0=$(date +%s%N)
  check "first address black-holed: tcp" "x" \
    "$(timeout 30 "$bin/rsocket" --connect-timeout 20s -d x "tcp://rs-v6first:$tcp_port" 2>&1)"
  ms=$(elapsed_ms "$t0")
  # Without the stagger this takes the whole connect timeout (20 s) and fails.
  [ "$ms" -lt 10000 ] && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL black hole: took $ms ms"; }
  echo "black-holed first address: connected in $ms ms"
  check "first address black-holed: rsocket-bench" "0" \
    "$(timeout 60 "$bin/rsocket-bench" -n 50 "tcp://rs-v6first:$tcp_port" >/dev/null 2>&1; echo $?)"
else
  echo "note: a full accept queue on ::1 does not drop SYNs here; black-hole case skipped"
fi
# The classic unroutable address, when this network drops rather than answers (many sandboxes
# proxy or reject it). glibc sorts 127.0.0.1 before it, so /etc/gai.conf puts it first.
if "$py" "$here/peers.py" probe 10.255.255.1 "$tcp_port" 1 && [ -e /etc/gai.conf ]; then
  printf '10.255.255.1 rs-unroutable\n127.0.0.1 rs-unroutable\n' >> "$work/hosts"
  printf 'precedence ::1/128 50\nprecedence ::/0 40\nprecedence 2002::/16 30\nprecedence ::/96 20\nprecedence ::ffff:0:0/96 10\nprecedence ::ffff:10.255.255.1/128 45\n' > "$work/gai.conf"
  mount --bind "$work/gai.conf" /etc/gai.conf
  if [ "$(getent ahosts rs-unroutable | awk '/STREAM/{print $1; exit}')" = 10.255.255.1 ]; then
    t0=$(date +%s%N)
    check "first address unroutable: tcp" "x" \
      "$(timeout 30 "$bin/rsocket" --connect-timeout 20s -d x "tcp://rs-unroutable:$tcp_port" 2>&1)"
    ms=$(elapsed_ms "$t0")
    [ "$ms" -lt 10000 ] && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL unroutable: took $ms ms"; }
  else
    echo "note: cannot order 10.255.255.1 first with gai.conf here; unroutable case skipped"
  fi
else
  echo "note: 10.255.255.1 answers or rejects here instead of dropping; unroutable case skipped"
fi

finish test_happy_eyeballs
