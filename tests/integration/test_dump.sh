#!/usr/bin/env bash
# rsocket-dump: the reference hex vectors in every input mode and both output forms; malformed
# input reported with its offset and exit status 1; bad usage exit status 2.
set -euo pipefail
bin=${RS_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/build/bin}
dump=$bin/rsocket-dump
source "$(dirname "$0")/../lib.sh"
field() { # json-line key → value (via node)
  node -e 'const o=JSON.parse(process.argv[1]); const v=process.argv[2].split(".").reduce((a,k)=>a==null?a:a[k],o); console.log(typeof v==="object"?JSON.stringify(v):String(v))' "$1" "$2"
}
prefixed() { # hex of one frame → hex with its 3-byte length
  local h=${1// /}
  printf '%06x %s\n' $((${#h} / 2)) "$h"
}

# Reference vectors (shared/reference/rsocket-protocol.md 1.18), one per line: hex, then the
# human line we expect.
vectors=(
  "00 00 00 00 04 00 00 01 00 00 00 00 01 F4 00 00 05 DC 01 61 01 62|SETUP stream=0 flags=- version=1.0 keepalive=500ms lifetime=1500ms metadata-mime=a data-mime=b data=0B"
  "00 00 00 00 04 C0 00 01 00 00 00 00 01 F4 00 00 05 DC 00 03 74 6F 6B 01 61 01 62|SETUP stream=0 flags=R|L version=1.0 keepalive=500ms lifetime=1500ms token=3B metadata-mime=a data-mime=b data=0B"
  "00 00 00 00 08 00 00 00 03 E8 00 00 00 0A|LEASE stream=0 flags=- ttl=1000ms requests=10"
  "00 00 00 00 0C 80 00 00 00 00 00 00 00 00|KEEPALIVE stream=0 flags=R position=0 data=0B"
  "00 00 00 01 11 00 00 00 01 6D 64|REQUEST_RESPONSE stream=1 flags=M metadata=1B \"m\" data=1B \"d\""
  "00 00 00 03 14 00 78|REQUEST_FNF stream=3 flags=- data=1B \"x\""
  "00 00 00 05 18 00 7F FF FF FF 73|REQUEST_STREAM stream=5 flags=- n=2147483647 data=1B \"s\""
  "00 00 00 07 1C 40 00 00 00 01 63|REQUEST_CHANNEL stream=7 flags=C n=1 data=1B \"c\""
  "00 00 00 05 20 00 00 00 00 0A|REQUEST_N stream=5 flags=- n=10"
  "00 00 00 05 24 00|CANCEL stream=5 flags=-"
  "00 00 00 01 28 60 6F 6B|PAYLOAD stream=1 flags=C|N data=2B \"ok\""
  "00 00 00 01 29 20 00 00 00 64|PAYLOAD stream=1 flags=M|N metadata=0B data=1B \"d\""
  "00 00 00 01 2C 00 00 00 02 01 65|ERROR stream=1 flags=- code=APPLICATION_ERROR(0x201) message=1B \"e\""
  "00 00 00 00 31 00 6D 64|METADATA_PUSH stream=0 flags=M metadata=2B \"md\""
  "00 00 00 00 34 00 00 01 00 00 00 03 74 6F 6B 00 00 00 00 00 00 00 10 00 00 00 00 00 00 00 20|RESUME stream=0 flags=- version=1.0 token=3B last-received-server=16 first-available-client=32"
  "00 00 00 00 38 00 00 00 00 00 00 00 00 20|RESUME_OK stream=0 flags=- last-received-client=32"
  "00 00 00 01 FE 00 00 00 00 01|EXT stream=1 flags=I ext-type=1 data=0B"
)
: > "$work/all.hex"
: > "$work/want.txt"
for v in "${vectors[@]}"; do
  hex=${v%%|*}
  line=${v#*|}
  prefixed "$hex" >> "$work/all.hex"
  printf '%s\n' "$line" >> "$work/want.txt"
  # --no-length: the frame alone, as a WebSocket message
  check "no-length $line" "$line" "$(printf '%s' "$hex" | "$dump" --hex --no-length)"
done
check "hex, all vectors" "$(cat "$work/want.txt")" "$("$dump" --hex "$work/all.hex")"
# Binary input gives the same as hex.
node -e 'process.stdout.write(Buffer.from(require("fs").readFileSync(0, "utf8").replace(/\s/g, ""), "hex"))' \
  < "$work/all.hex" > "$work/all.bin"
check "binary input" "$(cat "$work/want.txt")" "$("$dump" < "$work/all.bin")"
check "stdin '-'" "$(cat "$work/want.txt")" "$("$dump" - < "$work/all.bin")"

# JSON: exact fields.
"$dump" --json "$work/all.bin" > "$work/all.json"
check "json lines" "${#vectors[@]}" "$(wc -l < "$work/all.json" | tr -d ' ')"
l() { sed -n "${1}p" "$work/all.json"; }
check "setup type" "SETUP" "$(field "$(l 1)" type)"
check "setup version" "1.0" "$(field "$(l 1)" version)"
check "setup keepalive" "500" "$(field "$(l 1)" keepalive_interval)"
check "setup lifetime" "1500" "$(field "$(l 1)" max_lifetime)"
check "setup mimes" "a b" "$(field "$(l 1)" metadata_mime) $(field "$(l 1)" data_mime)"
check "setup flags" '{"ignore":false,"metadata":false,"follows":false,"complete":false,"next":false,"respond":false,"resume":false,"lease":false}' "$(field "$(l 1)" flags)"
check "setup R|L" "true true 3" "$(field "$(l 2)" flags.resume) $(field "$(l 2)" flags.lease) $(field "$(l 2)" resume_token_len)"
check "lease" "1000 10" "$(field "$(l 3)" ttl) $(field "$(l 3)" number_of_requests)"
check "keepalive respond" "true 0" "$(field "$(l 4)" flags.respond) $(field "$(l 4)" last_received_position)"
check "rr metadata" "1 1 m d" "$(field "$(l 5)" metadata_len) $(field "$(l 5)" data_len) $(field "$(l 5)" metadata) $(field "$(l 5)" data)"
check "stream request_n" "5 2147483647" "$(field "$(l 7)" stream_id) $(field "$(l 7)" request_n)"
check "channel complete" "true" "$(field "$(l 8)" flags.complete)"
check "request_n" "10" "$(field "$(l 9)" request_n)"
check "payload N|C" "true true false" "$(field "$(l 11)" flags.next) $(field "$(l 11)" flags.complete) $(field "$(l 11)" flags.follows)"
check "payload empty metadata" "true 0" "$(field "$(l 12)" flags.metadata) $(field "$(l 12)" metadata_len)"
check "error" "513 e" "$(field "$(l 13)" error_code) $(field "$(l 13)" error_message)"
check "resume positions" "16 32" "$(field "$(l 15)" last_received_server_position) $(field "$(l 15)" first_available_client_position)"
check "resume_ok" "32" "$(field "$(l 16)" last_received_client_position)"
check "ext" "1 true" "$(field "$(l 17)" ext_type) $(field "$(l 17)" flags.ignore)"

# Malformed input: message, offset, exit status 1; reading goes on after a bad frame body.
set +e
out=$(printf '000006 00 00 00 01 28 40\n00000a 00 00 00 05 20 00 00 00 00 00\n000006 00 00 00 01 28 40\n' | "$dump" --hex); rc=$?
check "request-n 0 exit" "1" "$rc"
check "request-n 0 report" "$(printf 'PAYLOAD stream=1 flags=C data=0B\nmalformed frame at byte 18: request-n must be greater than 0 (CONNECTION_ERROR)\nPAYLOAD stream=1 flags=C data=0B')" "$out"
out=$(printf '00000b 00 00 00 01 11 00 00 00 05 6D 64' | "$dump" --hex --json); rc=$?
check "metadata past end" '1 {"error":"metadata length points past the end of the frame","code":"CONNECTION_ERROR","offset":9}' "$rc $out"
out=$(printf '000004 00 00 00 01' | "$dump" --hex 2>/dev/null); rc=$?
check "short prefix" "1 malformed frame at byte 0: length prefix 4 is below 6 (frames are 6 to 16,777,215 bytes) (CONNECTION_ERROR)" "$rc $out"
out=$(printf '000006 00 00 00 01 28 40 000008 00 00' | "$dump" --hex); rc=$?
check "truncated" "$(printf '1 PAYLOAD stream=1 flags=C data=0B\nmalformed frame at byte 9: truncated frame: 2 of 8 bytes')" "$rc $out"
out=$(printf '00 00' | "$dump" --hex 2>&1); rc=$?
check "cut prefix" "1 malformed frame at byte 0: input ends inside a length prefix (2 of 3 bytes)" "$rc $out"
out=$(printf '00 0g' | "$dump" --hex 2>&1); rc=$?
check "bad hex" "2" "$rc"
"$dump" --bogus >/dev/null 2>&1; check "bad option" "2" "$?"
"$dump" a b >/dev/null 2>&1; check "two files" "2" "$?"
"$dump" /nonexistent >/dev/null 2>&1; check "missing file" "2" "$?"
"$dump" --help | grep -q -- '--no-length'; check "help" "0" "$?"
set -e

# Input that is not length-prefixed frames: one line on stdout as before, and on stderr what the
# input looks like and which inputs rsocket-dump takes (it said only "truncated frame: 9 of
# 6841708 bytes" for text).
hint() { # label, want on stderr (fixed string), input (printf format), args...
  local label=$1 want=$2 input=$3; shift 3
  set +e
  # shellcheck disable=SC2059
  printf "$input" | "$dump" "$@" > "$work/hint.out" 2> "$work/hint.err"; local rc=$?
  set -e
  check "$label exit" 1 "$rc"
  check "$label: one report on stdout" 1 "$(grep -c '^\(malformed frame at byte 0\|{"error"\)' "$work/hint.out")"
  if grep -qF -- "$want" "$work/hint.err" && grep -qF -- "--no-length" "$work/hint.err"; then
    passes=$((passes + 1)); else fails=$((fails + 1)); echo "FAIL $label hint: $(cat "$work/hint.err")"; fi
}
hint "text" "the input looks like text, not RSocket frames" 'hello world\n'
hint "hex text without --hex" "the input looks like hex text: read it with --hex" \
  '000006 00 00 00 05 24 00\n'
hint "unprefixed frame" "looks like one PAYLOAD frame without a length prefix: read it with --no-length" \
  '\x00\x00\x00\x01\x28\x60\x6f\x6b'
hint "unprefixed frame in hex" "read it with --no-length --hex" '00 00 00 01 28 60 6f 6b' --hex
hint "absurd length" "does not look like length-prefixed RSocket frames" '\xf0\x00\x00\xff\x01\x02\x03'
hint "--no-length with hex text" "read it with --hex" '00 00 00 01 28 60 6f 6b\n' --no-length
hint "--json text" "looks like text" 'hello world\n' --json
# A capture cut inside its first frame is not called "not RSocket": no hint.
set +e
printf '\x00\x00\x08\x00\x00\x00\x01' | "$dump" > "$work/hint.out" 2> "$work/hint.err"
set -e
check "small truncated first frame: no hint" "" "$(cat "$work/hint.err")"
set +e
printf '\x00\x00\x06' | "$dump" --hex > /dev/null 2> "$work/hint.err"; rc=$?
set -e
check "binary with --hex exit" 2 "$rc"
check "binary with --hex message" \
  "rsocket-dump: line 1: byte 0x00 is not a hex digit (binary input? without --hex the bytes are read as they are)" \
  "$(cat "$work/hint.err")"
version=$(sed -n 's/^#define RS_VERSION_STRING "\(.*\)"/\1/p' "$(dirname "$0")/../../include/rsocket/common.h")
check "-v" "rsocket-dump $version (rsocket-c)" "$("$dump" -v)"
check "--version" "rsocket-dump $version (rsocket-c)" "$("$dump" --version)"
check "comments in hex" "CANCEL stream=5 flags=-" "$(printf '# a comment\n000006 # length\n00 00 00 05 24 00 # cancel\n' | "$dump" --hex)"

echo "test_dump: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
