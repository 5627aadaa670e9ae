#!/usr/bin/env bash
# rsocket-gateway authentication and admission (issue 15, item 2): JWT by ?token= or hello (HS256
# with --jwt-secret, RS256 and ES256 with --jwt-public-key), every kind of bad token closed with
# 4401 and its reason (expired, not yet valid, wrong signature, alg none, the HS/RS confusion,
# malformed, no sub), authentication required and its timeout, the tighter size limit before it,
# --origin (403), --rate-limit (rej RATE_LIMITED), and --max-clients (503).
# Tokens are made with Debian's python3-jwt (and python3-cryptography for RS256/ES256).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bin=${RS_BIN:-build/bin}
py=/usr/bin/python3
"$py" -c 'import jwt, cryptography' 2> /dev/null || {
  echo "python3-jwt and python3-cryptography are needed (scripts/deps test)"
  exit 1
}
secret=0123456789abcdef0123456789abcdef

"$bin/rsocket" --server tcp://127.0.0.1:0 > "$work/backend.out" 2>&1 &
pids+=($!)
backend=$(listening_uri "$work/backend.out")

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/rsa.pem" 2> /dev/null
openssl pkey -in "$work/rsa.pem" -pubout -out "$work/rsa.pub"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ec.pem" 2> /dev/null
openssl pkey -in "$work/ec.pem" -pubout -out "$work/ec.pub"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ec2.pem" 2> /dev/null

# token ALG KEY CLAIMS-JSON: KEY is a secret, or @FILE (a PEM private key); CLAIMS may use $now.
token() {
  "$py" - "$@" << 'PY'
import json, jwt, re, sys, time
alg, key, claims = sys.argv[1], sys.argv[2], sys.argv[3]
now = int(time.time())
claims = re.sub(r"\$now([+-]\d+)?", lambda m: str(now + int(m.group(1) or 0)), claims)
claims = json.loads(claims)
if key.startswith("@"):
    key = open(key[1:]).read()
print(jwt.encode(claims, None if alg == "none" else key, algorithm=alg))
PY
}

gateway() { # NAME ARGS... → $gw_uri
  "$bin/rsocket-gateway" --listen ws://127.0.0.1:0 --route "*=$backend" "${@:2}" > "$work/$1.out" 2> "$work/$1.err" &
  pids+=($!)
  gw_uri=$(listening_uri "$work/$1.out")
  wait_for "$work/$1.err" backend_connected
}

# session URL LINES...: the messages and the close, one line each (ws-client --events).
session() {
  local url=$1
  shift
  printf '%s\n' "$@" | timeout 10 "$bin/ws-client" --events --grace 0.5 "$url" 2>&1 |
    grep -v '^open$' | grep -v '^closed' | sed -E 's/^text [0-9]+ //' || true
}

gateway hs --jwt-secret "$secret" --jwt-claims role --auth-timeout 1s --rate-limit 5
good=$(token HS256 "$secret" '{"sub":"ada","role":"admin","exp":$now+600}')
req='{"type":"req","id":1,"route":"x","data":"hi"}'

out=$(session "$gw_uri/" "{\"type\":\"hello\",\"token\":\"$good\"}" "$req")
check "hello: welcome names the user" yes "$(echo "$out" | grep -qE '^\{"type":"welcome","session":"[0-9a-f]{16}","user":"ada"\}$' && echo yes || echo no)"
check "hello: then requests work" '{"type":"cfm","id":1,"data":"hi"}' "$(echo "$out" | sed -n 2p)"
check "?token=: requests work at once" '{"type":"cfm","id":1,"data":"hi"}' "$(session "$gw_uri/?token=$good" "$req" | head -1)"

refused() { # NAME TOKEN WANT-REASON
  local out
  out=$(session "$gw_uri/" "{\"type\":\"hello\",\"token\":\"$2\"}" "$req")
  check "$1: close 4401" "close 4401 remote $3" "$(echo "$out" | tail -1)"
  check "$1: no answer to the request" 0 "$(echo "$out" | grep -c cfm || true)"
}
refused expired "$(token HS256 "$secret" '{"sub":"ada","exp":$now-10}')" "token expired"
refused "not yet valid" "$(token HS256 "$secret" '{"sub":"ada","nbf":$now+600}')" "token not valid yet (nbf)"
refused "wrong secret" "$(token HS256 wrong-secret-wrong-secret '{"sub":"ada"}')" "token refused: malformed or wrongly signed"
refused "alg none" "$(token none x '{"sub":"ada"}')" "token refused: algorithm none not accepted (HS256/384/512 only)"
refused "RS256 on an HS gateway" "$(token RS256 @"$work/rsa.pem" '{"sub":"ada"}')" "token refused: algorithm RS256 not accepted (HS256/384/512 only)"
refused "malformed" "not.a.token" "token refused: malformed"
refused "no sub" "$(token HS256 "$secret" '{"name":"ada"}')" 'token refused: no "sub" claim (1 to 255 bytes)'
check "?token= bad: close 4401" "close 4401 remote token expired" \
  "$(session "$gw_uri/?token=$(token HS256 "$secret" '{"sub":"ada","exp":$now-10}')" "$req" | tail -1)"

out=$(session "$gw_uri/" '{"type":"ping","id":1}' "$req")
check "before authentication: ping answered" '{"type":"pong","id":1}' "$(echo "$out" | head -1)"
check "before authentication: a request closes with 4401" \
  'close 4401 remote authentication required: send {"type":"hello","token":...} first' "$(echo "$out" | tail -1)"
check "authentication timeout" "close 4401 remote authentication timeout" \
  "$( (sleep 3) | timeout 10 "$bin/ws-client" --events --grace 3 "$gw_uri/" 2>&1 | grep '^close ' || true)"
big=$("$py" -c 'print("{\"type\":\"ping\",\"id\":1,\"x\":\"" + "a" * 20000 + "\"}")')
check "before authentication: 20 KB message closes with 1009" \
  "close 1009 remote message too big before authentication" "$(session "$gw_uri/" "$big" | tail -1)"
check "hello twice: BAD_REQUEST" '{"type":"rej","id":null,"error":{"code":"BAD_REQUEST","message":"already authenticated"}}' \
  "$(session "$gw_uri/?token=$good" "{\"type\":\"hello\",\"token\":\"$good\"}" | head -1)"

# Rate limit: 5 per second, bursts of 5: of 12 requests sent at once, 5 answered, 7 refused.
msgs=()
for i in $(seq 1 12); do msgs+=("{\"type\":\"req\",\"id\":$i,\"route\":\"x\",\"data\":$i}"); done
out=$(session "$gw_uri/?token=$good" "${msgs[@]}")
check "rate limit: 5 answered" 5 "$(echo "$out" | grep -c '"cfm"' || true)"
check "rate limit: 7 RATE_LIMITED" 7 "$(echo "$out" | grep -c '"code":"RATE_LIMITED"' || true)"
metrics=$("$py" -c "import urllib.request, sys; print(urllib.request.urlopen('http://127.0.0.1:${gw_uri##*:}/metrics', timeout=5).read().decode())")
check "rate limit: counted under its own code in errors_total (not as UNAVAILABLE)" \
  'rsocket_gateway_errors_total{route="",code="RATE_LIMITED"} 7' \
  "$(echo "$metrics" | grep -F 'code="RATE_LIMITED"' || true)"

# The logs say who authenticated.
check "client_auth logged" yes "$(grep -q 'event=client_auth session=[0-9a-f]* user=ada' "$work/hs.err" && echo yes || echo no)"

# RS256 and ES256 with a public key; an HS256 token signed with the public key as its secret (the
# algorithm confusion attack) is refused.
gateway rs --jwt-public-key "$work/rsa.pub"
check "RS256: accepted" '{"type":"cfm","id":1,"data":"hi"}' \
  "$(session "$gw_uri/?token=$(token RS256 @"$work/rsa.pem" '{"sub":"bob","exp":$now+60}')" "$req" | head -1)"
confused=$("$py" - "$work/rsa.pub" << 'PY'
import base64, hashlib, hmac, json, sys
key = open(sys.argv[1], "rb").read()
b = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=")
msg = b(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + b"." + b(json.dumps({"sub": "eve"}).encode())
sig = b(hmac.new(key.rstrip(b"\n"), msg, hashlib.sha256).digest())
print((msg + b"." + sig).decode())
PY
)
check "HS256 signed with the public key: refused" \
  "close 4401 remote token refused: algorithm HS256 not accepted (RS/ES 256/384/512 only)" \
  "$(session "$gw_uri/?token=$confused" "$req" | tail -1)"
gateway es --jwt-public-key "$work/ec.pub"
check "ES256: accepted" '{"type":"cfm","id":1,"data":"hi"}' \
  "$(session "$gw_uri/?token=$(token ES256 @"$work/ec.pem" '{"sub":"cy"}')" "$req" | head -1)"
check "ES256 signed by another EC key: refused" "close 4401 remote token refused: malformed or wrongly signed" \
  "$(session "$gw_uri/?token=$(token ES256 @"$work/ec2.pem" '{"sub":"cy"}')" "$req" | tail -1)"

# --origin: browsers from elsewhere get 403; listed origins and non-browsers (no Origin) pass.
gateway origin --origin https://app.example --origin http://127.0.0.1:8080
out=$(echo x | timeout 5 "$bin/ws-client" -H 'Origin: https://evil.example' "$gw_uri/" 2>&1 || true)
check "other origin: 403" yes "$(echo "$out" | grep -q '403 Forbidden' && echo yes || echo no)"
check "listed origin: served" '{"type":"cfm","id":1,"data":"hi"}' \
  "$(printf '%s\n' "$req" | timeout 5 "$bin/ws-client" --grace 0.5 -H 'Origin: https://app.example' "$gw_uri/" 2>&1 | head -1)"
check "no Origin: served" '{"type":"cfm","id":1,"data":"hi"}' "$(session "$gw_uri/" "$req" | head -1)"

# --max-clients: the next upgrade is refused with 503.
gateway max --max-clients 1
(sleep 3) | timeout 10 "$bin/ws-client" "$gw_uri/" > /dev/null 2>&1 &
holder=$!
sleep 0.5
out=$(echo x | timeout 5 "$bin/ws-client" "$gw_uri/" 2>&1 || true)
check "over --max-clients: 503" yes "$(echo "$out" | grep -q '503 Service Unavailable' && echo yes || echo no)"
wait "$holder" || true

# Usage errors.
set +e
"$bin/rsocket-gateway" --listen ws://127.0.0.1:0 --route "*=$backend" --jwt-secret short > /dev/null 2> "$work/u1"
check "--jwt-secret too short: exit 2" 2 "$?"
"$bin/rsocket-gateway" --listen ws://127.0.0.1:0 --route "*=$backend" --jwt-public-key "$work/rsa.pem" > /dev/null 2> "$work/u2"
check "--jwt-public-key with a private key: exit 2" 2 "$?"
"$bin/rsocket-gateway" --listen ws://127.0.0.1:0 --route "*=$backend" --jwt-secret "$secret" --jwt-public-key "$work/rsa.pub" > /dev/null 2> "$work/u3"
check "both keys: exit 2" 2 "$?"
set -e
finish "gateway authentication and admission"
