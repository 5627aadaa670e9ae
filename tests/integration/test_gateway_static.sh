#!/usr/bin/env bash
# rsocket-gateway --static DIR: files over plain HTTP on the gateway's port, nothing outside DIR,
# no listing, MIME types, ETag/304, 405 for other methods; /healthz; the WebSocket upgrade on "/"
# still reaches the JSON protocol while GET "/" is index.html; the same over TLS (wss://, https).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bin=${RS_BIN:-build/bin}
py=/usr/bin/python3

mkdir -p "$work/web/sub" "$work/web/emptydir" "$work/outside"
printf '<!doctype html><title>t</title>\n' > "$work/web/index.html"
printf 'body{}\n' > "$work/web/sub/a.css"
printf 'export {}\n' > "$work/web/app.js"
printf 'hidden\n' > "$work/web/.secret"
printf 'secret\n' > "$work/outside/s.txt"
printf 'x' > "$work/web/data.bin"
ln -s "$work/outside/s.txt" "$work/web/escape.txt"
ln -s "$work/web/app.js" "$work/web/inside.js"

# The backend is not started: /healthz must say 503 first.
"$bin/rsocket-gateway" --listen ws://127.0.0.1:0 --route '*=tcp://127.0.0.1:1' \
  --static "$work/web" > "$work/gw.out" 2>&1 &
pids+=($!)
uri=$(listening_uri "$work/gw.out")
port=${uri##*:}

# GET/HEAD/POST with Python's standard library: prints "STATUS CONTENT-TYPE ETAG LENGTH".
http() {
  "$py" - "$port" "$@" << 'PY'
import http.client, sys
port, method, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
hdrs = {"If-None-Match": sys.argv[4]} if len(sys.argv) > 4 else {}
c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
c.putrequest(method, path, skip_accept_encoding=True)
for k, v in hdrs.items():
    c.putheader(k, v)
c.endheaders()
r = c.getresponse()
body = r.read()
print(r.status, r.getheader("Content-Type", "-").split(";")[0], r.getheader("ETag", "-"), len(body))
PY
}
field() { echo "$1" | cut -d' ' -f"$2"; }

check "GET / is index.html" "200 text/html" "$(http GET / | cut -d' ' -f1,2)"
check "GET /index.html" "200 text/html" "$(http GET /index.html | cut -d' ' -f1,2)"
check "CSS type" "200 text/css" "$(http GET /sub/a.css | cut -d' ' -f1,2)"
check "JS type" "200 text/javascript" "$(http GET /app.js | cut -d' ' -f1,2)"
check "unknown type" "200 application/octet-stream" "$(http GET /data.bin | cut -d' ' -f1,2)"
check "symlink inside" "200 text/javascript" "$(http GET /inside.js | cut -d' ' -f1,2)"
check "symlink outside: 404" 404 "$(field "$(http GET /escape.txt)" 1)"
check "dot file: 404" 404 "$(field "$(http GET /.secret)" 1)"
check "..: 404" 404 "$(field "$(http GET /../outside/s.txt)" 1)"
check "encoded ..: 404" 404 "$(field "$(http GET /%2e%2e/outside/s.txt)" 1)"
check "encoded /: 404" 404 "$(field "$(http GET /sub%2f..%2f..%2foutside/s.txt)" 1)"
check "directory without index: no listing" 404 "$(field "$(http GET /emptydir/)" 1)"
check "directory without slash: 404" 404 "$(field "$(http GET /sub)" 1)"
check "missing: 404" 404 "$(field "$(http GET /nope.html)" 1)"
check "POST: 405" 405 "$(field "$(http POST /)" 1)"
head=$(http HEAD /index.html)
check "HEAD: no body" "200 0" "$(field "$head" 1) $(field "$head" 4)"
etag=$(field "$(http GET /index.html)" 3)
check "ETag present" yes "$([ "$etag" != - ] && echo yes || echo no)"
check "If-None-Match: 304" 304 "$(field "$(http GET /index.html "$etag")" 1)"
check "other ETag: 200" 200 "$(field "$(http GET /index.html '"x"')" 1)"
sleep 0.01
printf '<!doctype html><title>changed</title>\n' > "$work/web/index.html"
check "edited file: new ETag" yes "$([ "$(field "$(http GET /index.html)" 3)" != "$etag" ] && echo yes || echo no)"
check "/healthz without backends: 503" 503 "$(field "$(http GET /healthz)" 1)"

# Bad --static values are usage errors.
set +e
"$bin/rsocket-gateway" --listen ws://127.0.0.1:0 --route '*=tcp://127.0.0.1:1' \
  --static "$work/nonexistent" > "$work/bad.out" 2>&1
rc=$?
set -e
check "--static missing dir: exit 2" 2 "$rc"
check "--static missing dir: says why" yes "$(grep -q 'nonexistent' "$work/bad.out" && echo yes || echo no)"
set +e
"$bin/rsocket-gateway" --listen ws://127.0.0.1:0 --route '*=tcp://127.0.0.1:1' \
  --static "$work/web/index.html" > "$work/bad2.out" 2>&1
rc=$?
set -e
check "--static a file: exit 2" 2 "$rc"
# The same over TLS (wss:// with --cert and --key): the page over HTTPS, the JSON protocol over
# wss on the same port.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost -keyout "$work/key.pem" -out "$work/cert.pem" 2> /dev/null
"$bin/rsocket" --server tcp://127.0.0.1:0 > "$work/backend.out" 2>&1 &
pids+=($!)
backend=$(listening_uri "$work/backend.out")
"$bin/rsocket-gateway" --listen wss://localhost:0 --cert "$work/cert.pem" --key "$work/key.pem" \
  --route "*=$backend" --static "$work/web" > "$work/tls.out" 2> "$work/tls.err" &
pids+=($!)
turi=$(listening_uri "$work/tls.out")
check "wss: listening line" yes "$(echo "$turi" | grep -qE '^wss://localhost:[0-9]+$' && echo yes || echo no)"
wait_for "$work/tls.err" backend_connected
check "wss: a req over TLS" '{"type":"cfm","id":1,"data":"tls"}' \
  "$(echo '{"type":"req","id":1,"route":"x","data":"tls"}' | timeout 10 "$bin/ws-client" --ca "$work/cert.pem" --grace 0.5 "$turi/" 2>&1)"
check "https: the page over TLS" "200 <!doctype html><title>changed</title>" "$("$py" - "${turi##*:}" "$work/cert.pem" << 'PY'
import http.client, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
c = http.client.HTTPSConnection("localhost", int(sys.argv[1]), context=ctx, timeout=5)
c.request("GET", "/")
r = c.getresponse()
print(r.status, r.read().decode().strip())
PY
)"
out=$(echo x | timeout 10 "$bin/ws-client" --grace 0.2 "$turi/" 2>&1 || true)
check "wss: an untrusted certificate is refused by the client" yes \
  "$(echo "$out" | grep -qi 'certificate' && echo yes || echo no)"
finish "gateway static files"
