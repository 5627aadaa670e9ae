#!/usr/bin/env bash
# Resumption interop with rsocket-js 1.0.0-alpha.3 across a connection cut by a proxy the test
# controls (peers/cut_proxy.mjs), in both directions:
#   rsocket-js client (peers/js_resume_client.mjs) → proxy → our server: every line exactly once,
#     in order, after a reconnect and RESUME;
#   our client (rsocket --resume) → proxy → rsocket-js server: exactly the stream's 20,000 items.
# rsocket-js sends RESUME with major and minor swapped (0.1); we accept that (see resume.c).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${RS_BIN:-$here/../../build/bin}
peers=$here/peers
source "$here/../lib.sh"
ok() { passes=$((passes + 1)); echo "ok   $1"; }
bad() { fails=$((fails + 1)); echo "FAIL $1"; shift; for f in "$@"; do echo "--- $f"; tail -5 "$f"; done; }
proxy_to() { # target port, cut-after → sets $pport, $proxy
  : > "$work/proxy.out" # now, not in the background child: wait_for must not see the last proxy's line
  node "$peers/cut_proxy.mjs" --target "127.0.0.1:$1" --cut-after "$2" >"$work/proxy.out" 2>&1 &
  proxy=$!
  pids+=($proxy)
  wait_for "$work/proxy.out" '^proxy listening on '
  pport=$(awk '/^proxy listening on /{print $4; exit}' "$work/proxy.out")
}

seq 1 20000 | sed 's/^/line-/' > "$work/lines"

# 1. rsocket-js client → our server
"$bin/rsocket" --server --resume 30 -d @"$work/lines" tcp://127.0.0.1:0 >"$work/srv.out" 2>&1 &
pids+=($!)
wait_for "$work/srv.out" '^listening on '
port=$(awk '/^listening on /{print $3; exit}' "$work/srv.out"); port=${port##*:}
for cut in 20000 120000; do
  proxy_to "$port" "$cut"
  if timeout 60 node "$peers/js_resume_client.mjs" --uri "tcp://127.0.0.1:$pport" \
      >"$work/got" 2>"$work/client.err" && cmp -s "$work/got" "$work/lines" \
      && grep -q '^cut: ' "$work/proxy.out" && grep -q '1 reconnect' "$work/client.err"; then
    ok "rsocket-js client resumes with our server after a cut at $cut bytes (20,000 lines in order)"
  else
    bad "rsocket-js client → our server, cut at $cut" "$work/client.err" "$work/proxy.out"
  fi
  kill "$proxy" 2>/dev/null || true
done

# 2. our client → rsocket-js server
node "$peers/js_echo_server.mjs" --transport tcp --port 0 --resume 30 --stream-count 20000 \
  >"$work/js.out" 2>&1 &
pids+=($!)
wait_for "$work/js.out" '^listening on '
jport=$(awk '/^listening on /{print $3; exit}' "$work/js.out"); jport=${jport##*:}
for cut in 20000 120000; do
  proxy_to "$jport" "$cut"
  if timeout 60 "$bin/rsocket" --stream --limitRate 64 --resume 30 -d item \
      "tcp://127.0.0.1:$pport" >"$work/got" 2>"$work/client.err" \
      && [ "$(wc -l < "$work/got")" -eq 20000 ] && [ "$(sort -u "$work/got")" == item ] \
      && grep -q '^cut: ' "$work/proxy.out" && grep -q 'retrying' "$work/client.err"; then
    ok "our client resumes with the rsocket-js server after a cut at $cut bytes (20,000 items)"
  else
    bad "our client → rsocket-js server, cut at $cut ($(wc -l < "$work/got") items)" \
      "$work/client.err" "$work/proxy.out"
  fi
  kill "$proxy" 2>/dev/null || true
done

finish "rsocket-js resumption"
