#!/usr/bin/env bash
# Resumption across a cut connection: our client streams 20,000 numbered lines from our server
# through a proxy that cuts the TCP connection part-way; the client reconnects, resumes the
# session, and must print every line exactly once, in order. Then the same with the server gone
# for good: the client gives up with a clear error.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${RS_BIN:-$here/../../build/bin}
peers=$here/../interop/peers
source "$here/../lib.sh"

seq 1 20000 | sed 's/^/line-/' > "$work/lines"
"$bin/rsocket" --server --resume 30 -d @"$work/lines" tcp://127.0.0.1:0 >"$work/srv.out" 2>&1 &
pids+=($!)
wait_for "$work/srv.out" '^listening on '
port=$(awk '/^listening on /{print $3; exit}' "$work/srv.out"); port=${port##*:}

for cut in 3000 50000 150000; do
  : > "$work/proxy.out" # now, not in the background child: wait_for must not see the last proxy's line
  node "$peers/cut_proxy.mjs" --target "127.0.0.1:$port" --cut-after "$cut" >"$work/proxy.out" 2>&1 &
  proxy=$!
  pids+=($proxy)
  wait_for "$work/proxy.out" '^proxy listening on '
  pport=$(awk '/^proxy listening on /{print $4; exit}' "$work/proxy.out")
  if timeout 60 "$bin/rsocket" --stream --limitRate 64 --resume 30 --debug \
      "tcp://127.0.0.1:$pport" >"$work/got" 2>"$work/client.err"; then
    if cmp -s "$work/got" "$work/lines" && grep -q '^cut: ' "$work/proxy.out" \
        && grep -q 'session resumed' "$work/client.err"; then
      passes=$((passes + 1))
    else
      fails=$((fails + 1))
      echo "FAIL resume after ${cut} bytes: $(wc -l < "$work/got") lines, proxy: $(cat "$work/proxy.out" | tr '\n' ' ')"
      diff <(cat "$work/lines") "$work/got" | head -5
      grep -v '^[<>]' "$work/client.err" | head -5
    fi
  else
    fails=$((fails + 1)); echo "FAIL client exit $? after cut at ${cut}:"; grep -v '^[<>]' "$work/client.err" | tail -5
  fi
  kill "$proxy" 2>/dev/null || true
done

# Resumption torture at full speed: unbounded credit (no --limitRate), 300,000 lines, the proxy
# cutting 40 times after 20-120 KB each. The server's producer stops at half its retained window
# and asks the client's position, so no frame the client may need is ever dropped: every line
# arrives once, in order (a pushing producer got REJECTED_RESUME at the first cut).
seq 1 300000 | sed 's/^/line-/' > "$work/big"
for scheme in tcp ws; do
  "$bin/rsocket" --server --resume 60 -d @"$work/big" "$scheme://127.0.0.1:0" >"$work/t-$scheme.out" 2>&1 &
  pids+=($!)
  wait_for "$work/t-$scheme.out" '^listening on '
  tport=$(awk '/^listening on /{print $3; exit}' "$work/t-$scheme.out"); tport=${tport##*:}; tport=${tport%%/*}
  : > "$work/tproxy.out" # now: wait_for must not see the last loop's proxy line
  node "$peers/cut_proxy.mjs" --target "127.0.0.1:$tport" --cuts 40 --cut-min 20000 --cut-max 120000 \
    >"$work/tproxy.out" 2>&1 &
  tproxy=$!
  pids+=($tproxy)
  wait_for "$work/tproxy.out" '^proxy listening on '
  pport=$(awk '/^proxy listening on /{print $4; exit}' "$work/tproxy.out")
  rc=0
  timeout 120 "$bin/rsocket" --stream --resume 60 -d x "$scheme://127.0.0.1:$pport" \
    >"$work/tgot" 2>"$work/tclient.err" || rc=$?
  cuts=$(grep -c '^cut: ' "$work/tproxy.out" || true)
  check "torture $scheme: exit" 0 "$rc"
  check "torture $scheme: 40 cuts" 40 "$cuts"
  if cmp -s "$work/tgot" "$work/big"; then passes=$((passes + 1)); else
    fails=$((fails + 1))
    echo "FAIL torture $scheme: $(wc -l < "$work/tgot") lines after $cuts cuts"
    diff "$work/big" "$work/tgot" | head -5
    tail -3 "$work/tclient.err"
  fi
  kill "$tproxy" 2>/dev/null || true
done

# The same over WebSocket (the proxy cuts the TCP connection under it): the server's frames go
# out zero-copy from the engine, and the resumed session takes the new transport over.
"$bin/rsocket" --server --resume 30 -d @"$work/lines" ws://127.0.0.1:0 >"$work/srvws.out" 2>&1 &
pids+=($!)
wait_for "$work/srvws.out" '^listening on '
wsport=$(awk '/^listening on /{print $3; exit}' "$work/srvws.out"); wsport=${wsport##*:}; wsport=${wsport%%/*}
: > "$work/proxy.out" # now, not in the background child: wait_for must not see the last proxy's line
node "$peers/cut_proxy.mjs" --target "127.0.0.1:$wsport" --cut-after 70000 >"$work/proxy.out" 2>&1 &
proxy=$!
pids+=($proxy)
wait_for "$work/proxy.out" '^proxy listening on '
pport=$(awk '/^proxy listening on /{print $4; exit}' "$work/proxy.out")
if timeout 60 "$bin/rsocket" --stream --limitRate 64 --resume 30 --debug "ws://127.0.0.1:$pport" \
    >"$work/got" 2>"$work/client.err" && cmp -s "$work/got" "$work/lines" \
    && grep -q '^cut: ' "$work/proxy.out" && grep -q 'session resumed' "$work/client.err"; then
  passes=$((passes + 1))
else
  fails=$((fails + 1))
  echo "FAIL resume over ws: $(wc -l < "$work/got") lines, proxy: $(tr '\n' ' ' < "$work/proxy.out")"
  grep -v '^[<>]' "$work/client.err" | tail -5
fi
kill "$proxy" 2>/dev/null || true

# A first connection that fails is reported at once, resumption or not.
set +e
timeout 60 "$bin/rsocket" --stream --resume 2 "tcp://127.0.0.1:1" >/dev/null 2>"$work/gone.err"
rc=$?
set -e
if [ "$rc" -eq 3 ] && grep -q 'connection refused' "$work/gone.err"; then passes=$((passes + 1)); else
  fails=$((fails + 1)); echo "FAIL unreachable with --resume: exit $rc"; cat "$work/gone.err"; fi

# The server goes away for good mid-stream: the client retries, then the 2 s session expires and
# it fails with a clear error instead of starting a new session.
"$bin/rsocket" --server --resume 30 tcp://127.0.0.1:0 >"$work/srv2.out" 2>&1 &
srv2=$!
pids+=($srv2)
wait_for "$work/srv2.out" '^listening on '
uri2=$(awk '/^listening on /{print $3; exit}' "$work/srv2.out")
set +e
timeout 60 "$bin/rsocket" --stream --limitRate 1 --resume 2 -d x "$uri2" >"$work/partial" 2>"$work/expire.err" &
cpid=$!
for _ in $(seq 1 100); do [ -s "$work/partial" ] && break; sleep 0.05; done
kill -9 "$srv2"
wait "$cpid"
rc=$?
set -e
if [ "$rc" -eq 3 ] && grep -Eq 'timed out|expired' "$work/expire.err"; then passes=$((passes + 1)); else
  fails=$((fails + 1)); echo "FAIL session expiry: exit $rc"; cat "$work/expire.err"; fi

finish test_resume
