// Serializes one frame of every type rsocket-core@1.0.0-alpha.3 supports with its own codec,
// writes them length-prefixed to OUT.bin, and the fields we expect rsocket-dump --json to show
// to OUT.json (one object per frame). Usage: node js_frames.mjs OUT
import fs from "fs";
import { serializeFrameWithLength, FrameTypes, Flags } from "rsocket-core";

const out = process.argv[2];
if (!out) {
  console.error("usage: node js_frames.mjs OUT");
  process.exit(2);
}
const b = (s) => Buffer.from(s);
const frames = [];
const expect = [];
const F = (frame, fields) => {
  frames.push(serializeFrameWithLength(frame));
  expect.push(fields);
};
const flags = (o) => ({ ignore: false, metadata: false, follows: false, complete: false, next: false,
                        respond: false, resume: false, lease: false, ...o });

F({ type: FrameTypes.SETUP, streamId: 0, flags: Flags.METADATA, majorVersion: 1, minorVersion: 0,
    keepAlive: 60000, lifetime: 300000, metadataMimeType: "message/x.rsocket.composite-metadata.v0",
    dataMimeType: "application/json", resumeToken: null, metadata: b("setup-md"), data: b("{\"a\":1}") },
  { type: "SETUP", stream_id: 0, flags: flags({ metadata: true }), version: "1.0",
    keepalive_interval: 60000, max_lifetime: 300000,
    metadata_mime: "message/x.rsocket.composite-metadata.v0", data_mime: "application/json",
    resume_token_len: 0, metadata_len: 8, data_len: 7, metadata: "setup-md", data: "{\"a\":1}" });
F({ type: FrameTypes.SETUP, streamId: 0, flags: Flags.RESUME_ENABLE | Flags.LEASE, majorVersion: 1,
    minorVersion: 0, keepAlive: 1, lifetime: 2147483647, metadataMimeType: "a", dataMimeType: "b",
    resumeToken: b("0123456789abcdef"), data: null },
  { type: "SETUP", flags: flags({ resume: true, lease: true }), keepalive_interval: 1,
    max_lifetime: 2147483647, resume_token_len: 16, metadata_len: 0, data_len: 0 });
F({ type: FrameTypes.LEASE, streamId: 0, flags: Flags.METADATA, ttl: 30000, requestCount: 100,
    metadata: b("lease-md") },
  { type: "LEASE", flags: flags({ metadata: true }), ttl: 30000, number_of_requests: 100,
    metadata_len: 8, metadata: "lease-md" });
F({ type: FrameTypes.LEASE, streamId: 0, flags: Flags.NONE, ttl: 0, requestCount: 0 },
  { type: "LEASE", flags: flags({}), ttl: 0, number_of_requests: 0, metadata_len: 0 });
F({ type: FrameTypes.KEEPALIVE, streamId: 0, flags: Flags.RESPOND, lastReceivedPosition: 123456789,
    data: b("ping") },
  { type: "KEEPALIVE", flags: flags({ respond: true }), last_received_position: 123456789,
    data_len: 4, data: "ping" });
F({ type: FrameTypes.REQUEST_RESPONSE, streamId: 1, flags: Flags.METADATA, metadata: b("m"), data: b("d") },
  { type: "REQUEST_RESPONSE", stream_id: 1, flags: flags({ metadata: true }), metadata_len: 1,
    data_len: 1, metadata: "m", data: "d" });
F({ type: FrameTypes.REQUEST_RESPONSE, streamId: 3, flags: Flags.METADATA, metadata: null, data: b("x") },
  { type: "REQUEST_RESPONSE", stream_id: 3, flags: flags({ metadata: true }), metadata_len: 0,
    data_len: 1, metadata: "" });
F({ type: FrameTypes.REQUEST_FNF, streamId: 5, flags: Flags.FOLLOWS, data: b("part") },
  { type: "REQUEST_FNF", stream_id: 5, flags: flags({ follows: true }), data_len: 4 });
F({ type: FrameTypes.REQUEST_STREAM, streamId: 7, flags: Flags.NONE, requestN: 2147483647, data: b("s") },
  { type: "REQUEST_STREAM", stream_id: 7, request_n: 2147483647, data_len: 1, flags: flags({}) });
F({ type: FrameTypes.REQUEST_CHANNEL, streamId: 9, flags: Flags.COMPLETE | Flags.METADATA,
    requestN: 1, metadata: b("cm"), data: b("c") },
  { type: "REQUEST_CHANNEL", stream_id: 9, request_n: 1,
    flags: flags({ complete: true, metadata: true }), metadata: "cm", data: "c" });
F({ type: FrameTypes.REQUEST_N, streamId: 7, flags: Flags.NONE, requestN: 1000 },
  { type: "REQUEST_N", stream_id: 7, request_n: 1000, metadata_len: 0, data_len: 0 });
F({ type: FrameTypes.CANCEL, streamId: 7, flags: Flags.NONE },
  { type: "CANCEL", stream_id: 7, metadata_len: 0, data_len: 0, flags: flags({}) });
F({ type: FrameTypes.PAYLOAD, streamId: 1, flags: Flags.NEXT | Flags.COMPLETE, data: b("ok") },
  { type: "PAYLOAD", stream_id: 1, flags: flags({ next: true, complete: true }), data: "ok" });
F({ type: FrameTypes.PAYLOAD, streamId: 1, flags: Flags.COMPLETE },
  { type: "PAYLOAD", flags: flags({ complete: true }), data_len: 0 });
F({ type: FrameTypes.PAYLOAD, streamId: 11, flags: Flags.NEXT | Flags.FOLLOWS | Flags.METADATA,
    metadata: Buffer.from([0, 1, 2, 255]), data: b("frag") },
  { type: "PAYLOAD", stream_id: 11, flags: flags({ next: true, follows: true, metadata: true }),
    metadata_hex: "000102ff", data: "frag" });
F({ type: FrameTypes.ERROR, streamId: 1, flags: Flags.NONE, code: 0x201, message: "no such route" },
  { type: "ERROR", stream_id: 1, error_code: 0x201, error_message: "no such route" });
F({ type: FrameTypes.ERROR, streamId: 0, flags: Flags.NONE, code: 0x102, message: "bye" },
  { type: "ERROR", stream_id: 0, error_code: 0x102, error_message: "bye" });
F({ type: FrameTypes.ERROR, streamId: 13, flags: Flags.NONE, code: 0x301, message: "custom" },
  { type: "ERROR", stream_id: 13, error_code: 0x301 });
F({ type: FrameTypes.METADATA_PUSH, streamId: 0, flags: Flags.METADATA, metadata: b("pushed") },
  { type: "METADATA_PUSH", stream_id: 0, flags: flags({ metadata: true }), metadata: "pushed", metadata_len: 6 });
F({ type: FrameTypes.RESUME, streamId: 0, flags: Flags.NONE, majorVersion: 1, minorVersion: 0,
    resumeToken: b("token"), serverPosition: 4096, clientPosition: 8192 },
  { type: "RESUME", stream_id: 0, version: "1.0", resume_token_len: 5,
    last_received_server_position: 4096, first_available_client_position: 8192 });
F({ type: FrameTypes.RESUME_OK, streamId: 0, flags: Flags.NONE, clientPosition: 65536 },
  { type: "RESUME_OK", last_received_client_position: 65536 });

fs.writeFileSync(`${out}.bin`, Buffer.concat(frames));
fs.writeFileSync(`${out}.json`, expect.map((e) => JSON.stringify(e)).join("\n") + "\n");
console.log(`${frames.length} frames`);
