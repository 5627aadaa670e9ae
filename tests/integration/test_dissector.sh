#!/usr/bin/env bash
# The Wireshark dissector tools/wireshark/rsocket.lua, run by tshark on traffic this test records:
# our CLI client against our server over TCP and WebSocket (every interaction model, metadata,
# composite routing and bearer auth, keepalive, fragments, a frame spanning TCP segments, a
# rejected SETUP, and resumption through a proxy that cuts the connection). Checks:
#   * every frame the client logged with --debug (the C decoder's one-line form) is decoded by
#     the dissector to the same line, in the same order, per connection and direction;
#   * decoded fields: SETUP version/keepalive/lifetime/MIME types/resume token, request N,
#     REQUEST_N, CANCEL, PAYLOAD flags, ERROR code names, METADATA_PUSH, KEEPALIVE, RESUME(_OK),
#     routes and auth from composite metadata, data and metadata text;
#   * port preferences, Decode As (-d tcp.port==N,rsocket) and the WebSocket heuristic;
#   * frames built here (all 16 types, every error code name) agree with rsocket-dump, in one
#     TCP segment and cut into 1-, 2- and 7-byte segments; malformed frames are flagged.
# The capture is real (dumpcap on the loopback interface) where capturing is permitted; otherwise
# (no dumpcap, no capture rights, or RS_DISSECTOR_CAPTURE=relay) a TCP relay between client and
# server writes what it forwards as a pcap. The test says which path it used.
# Exit status 77 (skip) only when tshark is not installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=${RS_SRC:-$(cd "$here/../.." && pwd)}
bin=${RS_BIN:-$src/build/bin}
lua=$src/tools/wireshark/rsocket.lua
peers=$src/tests/interop/peers
source "$src/tests/lib.sh"
if ! command -v tshark >/dev/null 2>&1; then
  echo "test_dissector: FAIL: tshark is not installed (scripts/deps test installs it)"
  exit 1
fi
hex2bin() {
  node -e 'process.stdout.write(Buffer.from(require("fs").readFileSync(0, "utf8").replace(/\s/g, ""), "hex"))'
}

# ---- servers ----
start_server() { # name args... ; sets PORT
  "$bin/rsocket" --server "${@:2}" >"$work/$1.out" 2>&1 &
  pids+=($!)
  wait_for "$work/$1.out" '^listening on '
  PORT=$(awk '/^listening on /{print $3; exit}' "$work/$1.out")
  PORT=${PORT##*:}; PORT=${PORT%%/*}
}
seq 1 2000 | sed 's/^/line-/' > "$work/lines"
start_server tcp tcp://127.0.0.1:0; tcp_srv=$PORT
start_server ws ws://127.0.0.1:0/rsocket; ws_srv=$PORT
start_server resume --resume 30 -d @"$work/lines" tcp://127.0.0.1:0; res_srv=$PORT

# ---- the relay, used when dumpcap cannot capture ----
cat > "$work/relay.mjs" <<'RELAY'
// A TCP relay that records what it forwards: for each target port it listens on 127.0.0.1:0 and
// prints "relay LISTEN TARGET"; every chunk is written to a classic pcap file as
// Ethernet/IPv4/TCP packets (at most 16000 bytes of payload each) between the client's port and
// the listening port, after a SYN handshake, with consistent seq/ack numbers and FINs.
import fs from "fs";
import net from "net";
const [out, ...targets] = process.argv.slice(2);
const fd = fs.openSync(out, "w");
const hdr = Buffer.alloc(24);
hdr.writeUInt32LE(0xa1b2c3d4, 0);
hdr.writeUInt16LE(2, 4);
hdr.writeUInt16LE(4, 6);
hdr.writeUInt32LE(262144, 16);
hdr.writeUInt32LE(1, 20); // LINKTYPE_ETHERNET
fs.writeSync(fd, hdr);
const t0 = BigInt(Date.now()) * 1000n, h0 = process.hrtime.bigint();
let ipId = 1;
const sum16 = (buf) => {
  let s = 0;
  for (let i = 0; i + 1 < buf.length; i += 2) s += buf.readUInt16BE(i);
  if (buf.length % 2) s += buf[buf.length - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
};
function packet(sport, dport, seq, ack, flags, payload) {
  const ip = Buffer.alloc(20), tcp = Buffer.alloc(20);
  tcp.writeUInt16BE(sport, 0);
  tcp.writeUInt16BE(dport, 2);
  tcp.writeUInt32BE(seq >>> 0, 4);
  tcp.writeUInt32BE(ack >>> 0, 8);
  tcp[12] = 5 << 4;
  tcp[13] = flags;
  tcp.writeUInt16BE(65535, 14);
  const pseudo = Buffer.from([127, 0, 0, 1, 127, 0, 0, 1, 0, 6, 0, 0]);
  pseudo.writeUInt16BE(20 + payload.length, 10);
  tcp.writeUInt16BE(~sum16(Buffer.concat([pseudo, tcp, payload])) & 0xffff, 16);
  ip[0] = 0x45;
  ip.writeUInt16BE(40 + payload.length, 2);
  ip.writeUInt16BE(ipId++ & 0xffff, 4);
  ip.writeUInt16BE(0x4000, 6);
  ip[8] = 64;
  ip[9] = 6;
  ip.set([127, 0, 0, 1], 12);
  ip.set([127, 0, 0, 1], 16);
  ip.writeUInt16BE(~sum16(ip) & 0xffff, 10);
  const eth = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0]);
  const frame = Buffer.concat([eth, ip, tcp, payload]);
  const us = t0 + (process.hrtime.bigint() - h0) / 1000n;
  const rec = Buffer.alloc(16);
  rec.writeUInt32LE(Number(us / 1000000n), 0);
  rec.writeUInt32LE(Number(us % 1000000n), 4);
  rec.writeUInt32LE(frame.length, 8);
  rec.writeUInt32LE(frame.length, 12);
  fs.writeSync(fd, Buffer.concat([rec, frame]));
}
for (const target of targets) {
  const server = net.createServer((client) => {
    const c = { port: client.remotePort, seq: 1000 }, s = { port: server.address().port, seq: 5000 };
    const send = (from, to, flags, data = Buffer.alloc(0)) => {
      let off = 0;
      do {
        const part = data.subarray(off, off + 16000);
        packet(from.port, to.port, from.seq, to.seq, flags | (part.length ? 0x08 : 0), part);
        from.seq += part.length + (flags & 0x03 ? 1 : 0); // SYN and FIN count one
        off += part.length;
      } while (off < data.length);
    };
    send(c, s, 0x02); // SYN
    send(s, c, 0x12); // SYN+ACK
    send(c, s, 0x10); // ACK
    const up = net.connect(Number(target), "127.0.0.1");
    client.on("data", (d) => { send(c, s, 0x10, d); up.write(d); });
    up.on("data", (d) => { send(s, c, 0x10, d); client.write(d); });
    client.on("end", () => { send(c, s, 0x11); up.end(); });
    up.on("end", () => { send(s, c, 0x11); client.end(); });
    const stop = () => { client.destroy(); up.destroy(); };
    for (const sock of [client, up]) { sock.on("error", stop); sock.on("close", stop); }
  });
  server.listen(0, "127.0.0.1", () => console.log(`relay ${server.address().port} ${target}`));
}
process.on("SIGTERM", () => { fs.closeSync(fd); process.exit(0); });
RELAY

# ---- capture: dumpcap on lo, or the relay ----
cap_mode= dumpcap_pid= relay_pid=
start_capture() { # sets cap_mode, cap, tcp_port, ws_port, res_port (what the clients dial)
  cap_mode=relay
  if [ "${RS_DISSECTOR_CAPTURE:-auto}" != relay ] && command -v dumpcap >/dev/null 2>&1; then
    cap=$work/capture.pcapng
    # Only 127.0.0.1 on both ends: tests running in parallel may connect from 127.0.0.x (x > 1)
    # with a source port equal to one of our server ports, which would add foreign streams.
    dumpcap -i lo -f "src host 127.0.0.1 and dst host 127.0.0.1 and (tcp port $tcp_srv or tcp port $ws_srv or tcp port $res_srv)" -w "$cap" -q \
      2>"$work/dumpcap.err" &
    dumpcap_pid=$!
    pids+=($dumpcap_pid)
    # dumpcap says "Capturing on" before it opens the device: it must still run a moment later.
    for _ in $(seq 1 100); do
      grep -q '^Capturing on' "$work/dumpcap.err" && break
      kill -0 "$dumpcap_pid" 2>/dev/null || break
      sleep 0.05
    done
    sleep 0.5
    if kill -0 "$dumpcap_pid" 2>/dev/null && grep -q '^Capturing on' "$work/dumpcap.err" && [ -s "$cap" ]; then
      cap_mode=dumpcap tcp_port=$tcp_srv ws_port=$ws_srv res_port=$res_srv
      return
    fi
    echo "test_dissector: dumpcap cannot capture here ($(grep -v '^Capturing on' "$work/dumpcap.err" | head -n 2 | tr '\n' ' ')); using the relay"
    kill "$dumpcap_pid" 2>/dev/null || true
  fi
  cap=$work/relay.pcap
  node "$work/relay.mjs" "$cap" "$tcp_srv" "$ws_srv" "$res_srv" >"$work/relay.out" 2>&1 &
  relay_pid=$!
  pids+=($relay_pid)
  for _ in $(seq 1 200); do
    [ "$(grep -c '^relay ' "$work/relay.out" 2>/dev/null)" = 3 ] && break
    sleep 0.05
  done
  relay_port() { awk -v t="$1" '$1 == "relay" && $3 == t {print $2}' "$work/relay.out"; }
  tcp_port=$(relay_port "$tcp_srv") ws_port=$(relay_port "$ws_srv") res_port=$(relay_port "$res_srv")
  [ -n "$tcp_port" ] && [ -n "$ws_port" ] && [ -n "$res_port" ] || {
    echo "relay did not start"; cat "$work/relay.out"; exit 1; }
}
stop_capture() {
  sleep 0.3 # the last packets reach the capture
  local pid=$relay_pid
  [ "$cap_mode" = dumpcap ] && pid=$dumpcap_pid
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# ---- traffic: one connection per client run, in order; each run's frames logged by --debug ----
head -c 200000 /dev/zero | tr '\0' 'z' > "$work/big"
head -c 150 /dev/zero | tr '\0' 'q' > "$work/medium"
printf 'a\nb\n' > "$work/ab"
runs=0
client() { # port label args... ; the client's --debug lines go to run.N
  local port=$1 label=$2
  echo "$port $label" >> "$work/runs"
  timeout 20 "$bin/rsocket" --debug --timeout 10s "${@:3}" >"$work/run.$runs.out" 2>"$work/run.$runs" || true
  runs=$((runs + 1))
}
traffic() {
  : > "$work/runs"
  runs=0
  local t=tcp://127.0.0.1:$tcp_port w=ws://127.0.0.1:$ws_port/rsocket
  client "$tcp_port" rr --mmt text/plain --dmt application/json -m meta-rr -d hello-rr "$t"
  client "$tcp_port" stream --stream --take 3 -d tick "$t"
  client "$tcp_port" limit --stream --take 4 --limitRate 2 -d lr "$t"
  client "$tcp_port" fnf --fnf -d note "$t"
  client "$tcp_port" channel --channel "$t" < "$work/ab"
  client "$tcp_port" push --metadataPush -m push-md "$t"
  client "$tcp_port" route -r rooms.post --ab TOKEN -m md -d routed "$t"
  client "$tcp_port" keepalive --channel --keepalive 100ms "$t" < <(echo k1; sleep 0.6; echo k2)
  client "$tcp_port" big -d @"$work/big" "$t"
  client "$tcp_port" fragment --fragment 64 -d @"$work/medium" "$t"
  client "$tcp_port" rejected --resume 30 -d x "$t"
  client "$ws_port" ws-rr -m ws-meta -d ws-hello "$w"
  client "$ws_port" ws-stream --stream --take 3 -d ws-tick "$w"
  client "$ws_port" ws-fnf --fnf -d ws-note "$w"
  client "$ws_port" ws-channel --channel "$w" < "$work/ab"
  client "$ws_port" ws-push --metadataPush -m ws-push "$w"
  client "$ws_port" ws-route -r ws.route --ab WSTOKEN -d ws-routed "$w"
  # Resumption: client → cut proxy → server; the proxy cuts after 3000 bytes, the client resumes.
  : > "$work/proxy.out" # now, not in the background child: wait_for must not see the last proxy's line
  node "$peers/cut_proxy.mjs" --target "127.0.0.1:$res_port" --cut-after 3000 >"$work/proxy.out" 2>&1 &
  local proxy_pid=$!
  pids+=($proxy_pid)
  wait_for "$work/proxy.out" '^proxy listening on '
  local pport
  pport=$(awk '/^proxy listening on /{print $4; exit}' "$work/proxy.out")
  timeout 30 "$bin/rsocket" --stream --limitRate 64 --resume 30 --debug "tcp://127.0.0.1:$pport" \
    >"$work/resume.out" 2>"$work/resume.err" || true
  kill "$proxy_pid" 2>/dev/null || true
}

# ---- decoding: per-frame records from tshark's JSON ----
cat > "$work/frames.mjs" <<'FRAMES'
// Reads `tshark -T json --no-duplicate-keys -J "tcp rsocket"` and answers about RSocket frames.
//   flatten FILE < json     FILE gets one line per frame: {stream, sport, dport, f: {field: [values]}}
//                           (values cut at 300 characters)
//   rows FILE               stream TAB srcport TAB dstport TAB summary, one line per frame
//   first FILE COND FIELD…  the fields of the first frame COND holds for, space-separated
//   all FILE COND FIELD     that field of every frame COND holds for, one per line
//   count FILE COND         how many frames COND holds for
// COND is JavaScript over t (the frame type), v(field) (its first value) and port(n).
import fs from "fs";
const [cmd, file, cond, ...names] = process.argv.slice(2);
if (cmd === "flatten") {
  const text = fs.readFileSync(0, "utf8").trim();
  const lines = [];
  for (const p of text ? JSON.parse(text) : []) {
    const l = p._source.layers;
    if (!l.rsocket) continue;
    const tcp = [].concat(l.tcp)[0] || {};
    for (const r of [].concat(l.rsocket)) {
      const f = {};
      const walk = (o) => {
        for (const [k, val] of Object.entries(o))
          for (const x of [].concat(val)) {
            if (typeof x === "object") walk(x);
            else if (!k.endsWith("_tree")) (f[k] ||= []).push(x.length > 300 ? x.slice(0, 300) + "…" : x);
          }
      };
      walk(r);
      lines.push(JSON.stringify({ stream: tcp["tcp.stream"], sport: tcp["tcp.srcport"], dport: tcp["tcp.dstport"], f }));
    }
  }
  fs.writeFileSync(file, lines.map((x) => x + "\n").join(""));
  process.exit(0);
}
const frames = fs.readFileSync(file, "utf8").split("\n").filter(Boolean).map((x) => JSON.parse(x));
const first = (fr, n) => (fr.f[n] || [])[0];
const test = new Function("t", "v", "port", `return (${cond || "true"});`);
const hits = frames.filter((fr) => test(Number(first(fr, "rsocket.frame_type")), (n) => first(fr, n),
  (n) => fr.sport === String(n) || fr.dport === String(n)));
const show = (fr, n) => (fr.f[n] || ["(none)"]).join(",");
if (cmd === "rows") for (const fr of frames) console.log([fr.stream, fr.sport, fr.dport, first(fr, "rsocket.summary")].join("\t"));
if (cmd === "first" && hits.length) console.log(names.map((n) => show(hits[0], n)).join(" "));
if (cmd === "all") for (const fr of hits) console.log(show(fr, names[0]));
if (cmd === "count") console.log(hits.length);
FRAMES
decode() { # jsonl-file: decodes with tshark_args into per-frame records
  tshark "${tshark_args[@]}" -T json --no-duplicate-keys -J "tcp rsocket" 2>>"$work/tshark.err" |
    node "$work/frames.mjs" flatten "$1"
}
ts() { tshark "${tshark_args[@]}" "$@" 2>>"$work/tshark.err"; }
packets() { ts -Y "$1" -T fields -e frame.number | grep -c . || true; }
rows() { node "$work/frames.mjs" rows "$1"; }
first() { node "$work/frames.mjs" first "$db" "$@"; }
count() { node "$work/frames.mjs" count "$db" "$1"; }
main_args() {
  tshark_args=(-n -r "$cap" -X "lua_script:$lua" -d "tcp.port==$tcp_port,rsocket"
    -d "tcp.port==$res_port,rsocket" -o "rsocket.ws_ports:$ws_port")
}

start_capture
traffic
stop_capture
main_args
db=$work/main.jsonl
decode "$db"
if [ "$cap_mode" = dumpcap ] && [ "$(count true)" -eq 0 ]; then
  echo "test_dissector: the loopback capture holds no RSocket frame; recording again with the relay"
  RS_DISSECTOR_CAPTURE=relay
  start_capture
  traffic
  stop_capture
  main_args
  decode "$db"
fi
echo "test_dissector: capture by $cap_mode: $(ts -T fields -e frame.number | grep -c .) packets, $(count true) RSocket frames"
check "client runs" "17" "$runs"
rows "$db" > "$work/frames.tsv"

# ---- every frame a client logged, decoded to the same line ----
for ((k = 0; k < runs; k++)); do
  read -r port label < <(sed -n "$((k + 1))p" "$work/runs")
  want_out=$(sed -n 's/^>> //p' "$work/run.$k")
  want_in=$(sed -n 's/^<< //p' "$work/run.$k")
  got_out=$(awk -F'\t' -v s="$k" -v p="$port" '$1 == s && $3 == p {print $4}' "$work/frames.tsv")
  got_in=$(awk -F'\t' -v s="$k" -v p="$port" '$1 == s && $2 == p {print $4}' "$work/frames.tsv")
  [ -n "$want_out" ] || { fails=$((fails + 1)); echo "FAIL $label: the client logged no frame"; }
  check "$label: frames sent" "$want_out" "$got_out"
  # The client may close before the server's last frames reach it: what it logged comes first.
  check "$label: frames received" "$want_in" "$(head -n "$(printf '%s' "$want_in" | grep -c '')" <<< "$got_in")"
done

# ---- decoded fields ----
T="port($tcp_port)"
W="port($ws_port)"
check "SETUP version, keepalive, lifetime, MIME types" "1.0 20000 90000 text/plain application/json" \
  "$(first "$T && t == 1 && v('rsocket.metadata_mime') == 'text/plain'" rsocket.version \
    rsocket.keepalive_interval rsocket.max_lifetime rsocket.metadata_mime rsocket.data_mime)"
check "SETUP composite metadata MIME" "1" \
  "$(count "$T && t == 1 && v('rsocket.metadata_mime') == 'message/x.rsocket.composite-metadata.v0'")"
check "REQUEST_RESPONSE metadata and data" "1 meta-rr hello-rr" \
  "$(first "$T && t == 4 && v('rsocket.data_text') == 'hello-rr'" rsocket.stream_id \
    rsocket.metadata_text rsocket.data_text)"
check "PAYLOAD echo: N and C, not F; metadata and data" "1 1 0 meta-rr hello-rr" \
  "$(first "$T && t == 10 && v('rsocket.data_text') == 'hello-rr'" rsocket.flags.next \
    rsocket.flags.complete rsocket.flags.follows rsocket.metadata_text rsocket.data_text)"
check "REQUEST_STREAM initial request N" "1 3 tick" \
  "$(first "$T && t == 6" rsocket.stream_id rsocket.initial_request_n rsocket.data_text)"
check "stream PAYLOADs: next, not complete" "3" \
  "$(count "$T && t == 10 && v('rsocket.data_text') == 'tick' && v('rsocket.flags.next') == '1' && v('rsocket.flags.complete') == '0'")"
check "CANCEL" "1 0x0000" "$(first "$T && t == 9" rsocket.stream_id rsocket.flags)"
check "REQUEST_N" "1 2" "$(first "$T && t == 8" rsocket.stream_id rsocket.request_n)"
check "REQUEST_FNF" "note" "$(first "$T && t == 5" rsocket.data_text)"
check "REQUEST_CHANNEL" "2147483647 a" "$(first "$T && t == 7" rsocket.initial_request_n rsocket.data_text)"
check "METADATA_PUSH" "0 1 push-md" \
  "$(first "$T && t == 12" rsocket.stream_id rsocket.flags.metadata rsocket.metadata_text)"
check "composite metadata: route, bearer token, an entry" "rooms.post bearer TOKEN md" \
  "$(first "$T && t == 4 && v('rsocket.route')" rsocket.route rsocket.auth.type rsocket.auth.token \
    rsocket.composite.text)"
check "KEEPALIVE: the client asks (R)" "1 0 0" \
  "$(first "$T && t == 3 && v('rsocket.flags.respond') == '1'" rsocket.flags.respond rsocket.stream_id \
    rsocket.last_received_position)"
check "KEEPALIVE: the server answers" "0" \
  "$(first "$T && t == 3 && v('rsocket.flags.respond') == '0'" rsocket.flags.respond)"
check "a 200,000-byte frame each way" "200000 200000" \
  "$(first "$T && t == 4 && v('rsocket.data_length') == '200000'" rsocket.data_length) $(first \
    "$T && t == 10 && v('rsocket.data_length') == '200000'" rsocket.data_length)"
check "frames reassembled from several segments" "2" \
  "$(packets "tcp.port==$tcp_port && rsocket.data_length == 200000 && tcp.reassembled.length")"
check "several frames in one segment" "1" \
  "$(ts -Y "tcp.port==$tcp_port" -T fields -e rsocket.stream_id | awk -F, 'NF > 1 {print; exit}' | grep -c . || true)"
check "fragments: F on REQUEST_RESPONSE and PAYLOAD" "1 1" \
  "$(first "$T && t == 4 && v('rsocket.flags.follows') == '1'" rsocket.flags.follows) $(first \
    "$T && t == 10 && v('rsocket.flags.follows') == '1'" rsocket.flags.follows)"
check "SETUP with resume: R flag, 16-byte token" "1 16" \
  "$(first "$T && t == 1 && v('rsocket.flags.resume') == '1'" rsocket.flags.resume rsocket.resume_token_length)"
check "ERROR REJECTED_SETUP" "0 0x00000003 REJECTED_SETUP resumption is not supported" \
  "$(first "$T && t == 11 && v('rsocket.error_name') == 'REJECTED_SETUP'" rsocket.stream_id \
    rsocket.error_code rsocket.error_name rsocket.error_message)"
check "ERROR CONNECTION_CLOSE from closing clients" "CONNECTION_CLOSE client closing" \
  "$(first "$T && t == 11 && v('rsocket.error_code') == '0x00000102'" rsocket.error_name rsocket.error_message)"
check "expert info on ERROR frames" "yes" \
  "$([ "$(packets "tcp.port==$tcp_port && rsocket.error")" -gt 0 ] && echo yes || echo no)"
check "no malformed frame, no violation" "0" "$(packets "rsocket.malformed || rsocket.violation || _ws.malformed")"

# WebSocket: the same fields, one frame per binary message.
check "ws SETUP" "1.0 application/octet-stream application/octet-stream" \
  "$(first "$W && t == 1" rsocket.version rsocket.metadata_mime rsocket.data_mime)"
check "ws REQUEST_RESPONSE" "ws-meta ws-hello" \
  "$(first "$W && t == 4 && v('rsocket.data_text') == 'ws-hello'" rsocket.metadata_text rsocket.data_text)"
check "ws PAYLOAD echo" "1 1 ws-meta ws-hello" \
  "$(first "$W && t == 10 && v('rsocket.data_text') == 'ws-hello'" rsocket.flags.next \
    rsocket.flags.complete rsocket.metadata_text rsocket.data_text)"
check "ws REQUEST_STREAM" "3 ws-tick" "$(first "$W && t == 6" rsocket.initial_request_n rsocket.data_text)"
check "ws stream PAYLOADs" "3" "$(count "$W && t == 10 && v('rsocket.data_text') == 'ws-tick'")"
check "ws CANCEL" "1" "$(first "$W && t == 9" rsocket.stream_id)"
check "ws REQUEST_FNF" "ws-note" "$(first "$W && t == 5" rsocket.data_text)"
check "ws REQUEST_CHANNEL" "a" "$(first "$W && t == 7" rsocket.data_text)"
check "ws METADATA_PUSH" "ws-push" "$(first "$W && t == 12" rsocket.metadata_text)"
check "ws route and token" "ws.route WSTOKEN" "$(first "$W && v('rsocket.route')" rsocket.route rsocket.auth.token)"
check "ws ERROR CONNECTION_CLOSE" "CONNECTION_CLOSE" "$(first "$W && t == 11" rsocket.error_name)"
check "ws frames have no length prefix" "0" "$(count "$W && v('rsocket.length') !== undefined")"
check "clean tshark runs (no Lua error)" "" "$(grep -i -E 'lua|error' "$work/tshark.err" || true)"

# Without the port preference the heuristic finds RSocket in the WebSocket messages.
on_port() { awk -F'\t' -v p="$1" '$2 == p || $3 == p {print $4}'; }
tshark_args=(-n -r "$cap" -X "lua_script:$lua" -d "tcp.port==$ws_port,http")
decode "$work/heur.jsonl"
check "ws heuristic: the same frames as the port preference" "$(on_port "$ws_port" < "$work/frames.tsv")" \
  "$(rows "$work/heur.jsonl" | on_port "$ws_port")"
# The TCP port preference instead of Decode As.
tshark_args=(-n -r "$cap" -X "lua_script:$lua" -o "rsocket.tcp_ports:$tcp_port")
decode "$work/pref.jsonl"
check "TCP port preference: the same frames as Decode As" "$(on_port "$tcp_port" < "$work/frames.tsv")" \
  "$(rows "$work/pref.jsonl" | on_port "$tcp_port")"

# Resumption: the client's second connection sends RESUME, the server answers RESUME_OK.
main_args
R="port($res_port)"
check "resume: the stream completed" "$(cat "$work/lines")" "$(cat "$work/resume.out")"
check "resume: two connections" "2" "$(packets "tcp.port==$res_port && tcp.flags.syn == 1 && tcp.flags.ack == 0")"
check "RESUME: version, token length" "1.0 16" "$(first "$R && t == 13" rsocket.version rsocket.resume_token_length)"
check "RESUME decoded as the client logged it" "$(sed -n 's/^>> \(RESUME .*\)/\1/p' "$work/resume.err" | head -n 1)" \
  "$(first "$R && t == 13" rsocket.summary)"
check "RESUME_OK decoded as the client logged it" \
  "$(sed -n 's/^<< \(RESUME_OK .*\)/\1/p' "$work/resume.err" | head -n 1)" "$(first "$R && t == 14" rsocket.summary)"

# ---- frames built here: all types, every error code name, against rsocket-dump ----
vectors=(
  "00 00 00 00 05 C0 00 01 00 00 00 00 27 10 00 01 86 A0 00 02 AB CD 03 6D 2F 61 03 64 2F 62 00 00 02 73 6D 73 64"
  "00 00 00 00 09 00 00 00 07 D0 00 00 00 05 6C 6D"
  "00 00 00 00 0C 00 00 00 00 00 00 00 01 00 6B 61"
  "00 00 00 09 11 80 00 00 03 6D 64 31 66 72 61 67"
  "00 00 00 0B 15 00 00 00 02 7E 01 2F 66"
  "00 00 00 0D 19 80 00 00 00 0A 00 00 00 73"
  "00 00 00 0F 1C C0 00 00 00 02 63 63"
  "00 00 00 02 20 00 00 00 01 00"
  "00 00 00 02 24 00"
  "00 00 00 02 28 80 66"
  "00 00 00 02 28 40"
  "00 00 00 02 29 60 00 00 01 5C 22 0A"
  "00 00 00 02 28 60 30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 67 68 69 6A 6B 6C 6D 6E 6F 70 71 72 73 74 75 76 77 78 79 7A 41 42 43 44 45 46 47 48 49 4A 4B 4C 4D 4E 4F 50 51 52 53 54 55 56 57 58"
  "00 00 00 00 2C 00 00 00 00 01 62 61 64"
  "00 00 00 00 2C 00 00 00 00 02 75"
  "00 00 00 00 2C 00 00 00 00 03 72"
  "00 00 00 00 2C 00 00 00 00 04 72 72"
  "00 00 00 00 2C 00 00 00 01 01 63 65"
  "00 00 00 00 2C 00 00 00 01 02 63 63"
  "00 00 00 04 2C 00 00 00 02 01"
  "00 00 00 04 2C 00 00 00 02 02"
  "00 00 00 04 2C 00 00 00 02 03"
  "00 00 00 04 2C 00 00 00 02 04 69 6E 76"
  "00 00 00 04 2C 00 00 00 03 01 63 75 73 74 6F 6D"
  "00 00 00 04 2C 00 FF FF FF FF"
  "00 00 00 00 31 00 81 74 6F 6B"
  "00 00 00 00 34 00 00 01 00 00 00 00 00 00 00 00 00 00 00 05 00 00 00 00 00 00 00 06"
  "00 00 00 00 38 00 00 00 00 00 00 00 01 00"
  "00 00 00 03 FF 00 00 00 00 07 00 00 01 6D 64 61 74 61"
)
for vec in "${vectors[@]}"; do
  h=${vec// /}
  printf '%06x%s\n' $((${#h} / 2)) "$h"
done | hex2bin > "$work/vectors.bin"
want_vectors=$("$bin/rsocket-dump" "$work/vectors.bin")
check "vectors: rsocket-dump reads them all" "${#vectors[@]}" "$(grep -c -v '^malformed' <<< "$want_vectors")"
to_pcap() { # out.pcap [chunk sizes…] < bytes: one TCP packet 40000 → 7878 per chunk (the last size repeats)
  local out=$1
  node -e '
    const data = require("fs").readFileSync(0), sizes = process.argv.slice(1).map(Number);
    let off = 0, i = 0, text = "";
    while (off < data.length) {
      const n = sizes.length ? sizes[Math.min(i++, sizes.length - 1)] : data.length;
      const chunk = data.subarray(off, off + n);
      for (let j = 0; j < chunk.length; j += 16)
        text += j.toString(16).padStart(6, "0") + " " +
          [...chunk.subarray(j, j + 16)].map((b) => b.toString(16).padStart(2, "0")).join(" ") + "\n";
      off += n;
    }
    process.stdout.write(text);' "${@:2}" > "$out.txt"
  text2pcap -q -T 40000,7878 "$out.txt" "$out" >"$out.log" 2>&1 || { cat "$out.log"; exit 1; }
}
to_pcap "$work/one.pcap" < "$work/vectors.bin"
to_pcap "$work/cut.pcap" 1 2 7 < "$work/vectors.bin"
# rsocket-dump previews 48 bytes, --debug (and the dissector by default) 32.
tshark_args=(-n -r "$work/one.pcap" -X "lua_script:$lua")
check "summary preview: 32 bytes by default" \
  'PAYLOAD stream=2 flags=C|N data=60B "0123456789abcdefghijklmnopqrstuv"...' \
  "$(decode "$work/one32.jsonl"; node "$work/frames.mjs" first "$work/one32.jsonl" "v('rsocket.data_length') == '60'" rsocket.summary)"
tshark_args=(-n -r "$work/one.pcap" -X "lua_script:$lua" -o rsocket.preview:48)
db=$work/one.jsonl
decode "$db"
check "vectors in one segment (port 7878 by default)" "$want_vectors" "$(rows "$db" | cut -f4)"
check "vectors in one segment: one packet" "1" "$(ts -T fields -e frame.number | grep -c .)"
check "error code names" \
  "INVALID_SETUP UNSUPPORTED_SETUP REJECTED_SETUP REJECTED_RESUME CONNECTION_ERROR CONNECTION_CLOSE APPLICATION_ERROR REJECTED CANCELED INVALID APPLICATION_DEFINED RESERVED_FOR_EXTENSION" \
  "$(node "$work/frames.mjs" all "$db" "t == 11" rsocket.error_name | tr '\n' ' ' | sed 's/ $//')"
check "SETUP R|L|M fields" "1.0 10000 100000 1 1 1 2 m/a d/b sm sd" \
  "$(first "t == 1" rsocket.version rsocket.keepalive_interval rsocket.max_lifetime rsocket.flags.resume \
    rsocket.flags.lease rsocket.flags.metadata rsocket.resume_token_length rsocket.metadata_mime \
    rsocket.data_mime rsocket.metadata_text rsocket.data_text)"
check "LEASE ttl, requests, metadata" "2000 5 lm" \
  "$(first "t == 2" rsocket.lease.ttl rsocket.lease.requests rsocket.metadata_text)"
check "KEEPALIVE position, data" "256 ka" "$(first "t == 3" rsocket.last_received_position rsocket.data_text)"
check "REQUEST_STREAM: M with empty metadata, F" "0 1 s" \
  "$(first "t == 6" rsocket.metadata_length rsocket.flags.follows rsocket.data_text)"
check "EXT: I, type, metadata, data" "1 7 m data" \
  "$(first "t == 63" rsocket.flags.ignore rsocket.ext_type rsocket.metadata_text rsocket.data_text)"
check "RESUME positions" "5 6" \
  "$(first "t == 13" rsocket.resume.last_received_server_position rsocket.resume.first_available_client_position)"
check "RESUME_OK position" "256" "$(first "t == 14" rsocket.resume.last_received_client_position)"
check "no violation among the vectors" "0" "$(packets 'rsocket.violation || rsocket.malformed')"
tshark_args=(-n -r "$work/cut.pcap" -X "lua_script:$lua" -o rsocket.preview:48)
decode "$work/cut.jsonl"
check "vectors cut in 1-, 2- and 7-byte segments" "$want_vectors" "$(rows "$work/cut.jsonl" | cut -f4)"
# Malformed input is flagged: a metadata length past the end; REQUEST_N of 0; CANCEL on stream 0.
echo "00000b 00000001 1100 00000f 6d64" | hex2bin | to_pcap "$work/bad.pcap"
tshark_args=(-n -r "$work/bad.pcap" -X "lua_script:$lua")
check "malformed frame flagged" "1" "$(packets 'rsocket.malformed')"
echo "00000a 00000005 2000 00000000  000006 00000000 2400" | hex2bin | to_pcap "$work/bad2.pcap"
tshark_args=(-n -r "$work/bad2.pcap" -X "lua_script:$lua")
check "protocol violations flagged" "request N must be > 0,CANCEL must not use stream 0" \
  "$(ts -Y 'rsocket.violation' -T fields -e _ws.expert.message)"

echo "test_dissector: $passes passed, $fails failed (capture: $cap_mode)"
[ "$fails" -eq 0 ]
