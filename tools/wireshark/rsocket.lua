-- RSocket 1.0 dissector for Wireshark and tshark (written for and tested with 4.0).
--
-- Decodes every RSocket 1.0 frame type, its flags and fields, metadata and data, and the
-- composite-metadata extensions (routing, authentication, per-stream MIME types) on connections
-- whose SETUP announced composite metadata.
--
-- Transports:
--   * TCP: each frame is preceded by a 3-byte big-endian length; several frames per segment and
--     frames spanning segments are handled with TCP reassembly. Ports: preference "TCP ports"
--     (default 7878), or Decode As... → TCP port → RSOCKET (tshark: -d tcp.port==N,rsocket).
--   * WebSocket: one frame per binary message, no length prefix. Found by a heuristic on every
--     WebSocket message (a strict frame check, then the whole connection once a frame matched), by
--     the negotiated subprotocol "rsocket", or by the preference "WebSocket ports" (the HTTP
--     upgrade on those TCP ports is decoded too).
--
-- Install: copy this file to ~/.local/lib/wireshark/plugins/ (see README.md beside it).
-- The "Summary" field (rsocket.summary), also shown in the Info column, is the one-line text that
-- `rsocket --debug` prints for the frame (rsocket-dump prints the same with a 48-byte preview:
-- preference "Preview bytes").

local rs = Proto("rsocket", "RSocket")
local rs_ws = Proto("rsocket_ws", "RSocket over WebSocket")

local band = (bit32 and bit32.band) or bit.band

-- Frame types and what their layout allows.
--   sid: "zero", "nonzero" or "any"; flags: defined flags besides I; fixed: bytes of fixed fields
--   after the 6-byte header (a minimum for SETUP and RESUME); exact: the only valid frame size;
--   follows: bit 0x80 is F (fragmentation) rather than R.
local F_I, F_M, F_F, F_C, F_N, F_R, F_L = 0x200, 0x100, 0x80, 0x40, 0x20, 0x80, 0x40
local TYPES = {
  [0x01] = { name = "SETUP", sid = "zero", flags = F_M + F_R + F_L, fixed = 12 },
  [0x02] = { name = "LEASE", sid = "zero", flags = F_M, fixed = 8 },
  [0x03] = { name = "KEEPALIVE", sid = "zero", flags = F_R, fixed = 8 },
  [0x04] = { name = "REQUEST_RESPONSE", sid = "nonzero", flags = F_M + F_F, fixed = 0,
             follows = true },
  [0x05] = { name = "REQUEST_FNF", sid = "nonzero", flags = F_M + F_F, fixed = 0, follows = true },
  [0x06] = { name = "REQUEST_STREAM", sid = "nonzero", flags = F_M + F_F, fixed = 4,
             follows = true },
  [0x07] = { name = "REQUEST_CHANNEL", sid = "nonzero", flags = F_M + F_F + F_C, fixed = 4,
             follows = true },
  [0x08] = { name = "REQUEST_N", sid = "nonzero", flags = 0, fixed = 4, exact = 10 },
  [0x09] = { name = "CANCEL", sid = "nonzero", flags = 0, fixed = 0, exact = 6 },
  [0x0A] = { name = "PAYLOAD", sid = "nonzero", flags = F_M + F_F + F_C + F_N, fixed = 0,
             follows = true },
  [0x0B] = { name = "ERROR", sid = "any", flags = 0, fixed = 4 },
  [0x0C] = { name = "METADATA_PUSH", sid = "zero", flags = F_M, fixed = 0 },
  [0x0D] = { name = "RESUME", sid = "zero", flags = 0, fixed = 22 },
  [0x0E] = { name = "RESUME_OK", sid = "zero", flags = 0, fixed = 8, exact = 14 },
  [0x3F] = { name = "EXT", sid = "any", flags = F_M, fixed = 4 },
}
local TYPE_NAMES = { [0x00] = "RESERVED" }
for code, t in pairs(TYPES) do TYPE_NAMES[code] = t.name end

local ERROR_NAMES = {
  [0x00000000] = "RESERVED",
  [0x00000001] = "INVALID_SETUP",
  [0x00000002] = "UNSUPPORTED_SETUP",
  [0x00000003] = "REJECTED_SETUP",
  [0x00000004] = "REJECTED_RESUME",
  [0x00000101] = "CONNECTION_ERROR",
  [0x00000102] = "CONNECTION_CLOSE",
  [0x00000201] = "APPLICATION_ERROR",
  [0x00000202] = "REJECTED",
  [0x00000203] = "CANCELED",
  [0x00000204] = "INVALID",
  [0xFFFFFFFF] = "RESERVED_FOR_EXTENSION",
}
local function error_name(code)
  return ERROR_NAMES[code] or (code >= 0x301 and "APPLICATION_DEFINED" or "UNKNOWN")
end

local COMPOSITE_MIME = "message/x.rsocket.composite-metadata.v0"
local ROUTING_MIME = "message/x.rsocket.routing.v0"

-- Well-known MIME type ids of the composite-metadata extension (7-bit).
local WELL_KNOWN_MIME = {
  [0x00] = "application/avro", [0x01] = "application/cbor", [0x02] = "application/graphql",
  [0x03] = "application/gzip", [0x04] = "application/javascript", [0x05] = "application/json",
  [0x06] = "application/octet-stream", [0x07] = "application/pdf",
  [0x08] = "application/vnd.apache.thrift.binary", [0x09] = "application/vnd.google.protobuf",
  [0x0A] = "application/xml", [0x0B] = "application/zip", [0x0C] = "audio/aac",
  [0x0D] = "audio/mp3", [0x0E] = "audio/mp4", [0x0F] = "audio/mpeg3", [0x10] = "audio/mpeg",
  [0x11] = "audio/ogg", [0x12] = "audio/opus", [0x13] = "audio/vorbis", [0x14] = "image/bmp",
  [0x15] = "image/gif", [0x16] = "image/heic-sequence", [0x17] = "image/heic",
  [0x18] = "image/heif-sequence", [0x19] = "image/heif", [0x1A] = "image/jpeg",
  [0x1B] = "image/png", [0x1C] = "image/tiff", [0x1D] = "multipart/mixed", [0x1E] = "text/css",
  [0x1F] = "text/csv", [0x20] = "text/html", [0x21] = "text/plain", [0x22] = "text/xml",
  [0x23] = "video/H264", [0x24] = "video/H265", [0x25] = "video/VP8",
  [0x26] = "application/x-hessian", [0x27] = "application/x-java-object",
  [0x28] = "application/cloudevents+json", [0x29] = "application/x-capnp",
  [0x2A] = "application/x-flatbuffers",
  [0x7A] = "message/x.rsocket.mime-type.v0", [0x7B] = "message/x.rsocket.accept-mime-types.v0",
  [0x7C] = "message/x.rsocket.authentication.v0", [0x7D] = "message/x.rsocket.tracing-zipkin.v0",
  [0x7E] = ROUTING_MIME, [0x7F] = COMPOSITE_MIME,
}
local AUTH_TYPES = { [0x00] = "simple", [0x01] = "bearer" }

---------------------------------------------------------------------------------------------------
-- Fields

local pf = {
  length = ProtoField.uint24("rsocket.length", "Frame Length", base.DEC),
  stream_id = ProtoField.uint32("rsocket.stream_id", "Stream ID", base.DEC, nil, 0x7FFFFFFF),
  frame_type = ProtoField.uint16("rsocket.frame_type", "Frame Type", base.HEX, TYPE_NAMES, 0xFC00),
  flags = ProtoField.uint16("rsocket.flags", "Flags", base.HEX, nil, 0x03FF),
  flag_ignore = ProtoField.bool("rsocket.flags.ignore", "Ignore (I)", 16, nil, F_I),
  flag_metadata = ProtoField.bool("rsocket.flags.metadata", "Metadata (M)", 16, nil, F_M),
  flag_follows = ProtoField.bool("rsocket.flags.follows", "Follows (F)", 16, nil, F_F),
  flag_complete = ProtoField.bool("rsocket.flags.complete", "Complete (C)", 16, nil, F_C),
  flag_next = ProtoField.bool("rsocket.flags.next", "Next (N)", 16, nil, F_N),
  flag_resume = ProtoField.bool("rsocket.flags.resume", "Resume Enable (R)", 16, nil, F_R),
  flag_lease = ProtoField.bool("rsocket.flags.lease", "Will Honor Lease (L)", 16, nil, F_L),
  flag_respond = ProtoField.bool("rsocket.flags.respond", "Respond (R)", 16, nil, F_R),
  version = ProtoField.string("rsocket.version", "Version"),
  version_major = ProtoField.uint16("rsocket.version.major", "Major Version", base.DEC),
  version_minor = ProtoField.uint16("rsocket.version.minor", "Minor Version", base.DEC),
  keepalive = ProtoField.uint32("rsocket.keepalive_interval", "Keepalive Interval (ms)", base.DEC,
    nil, 0x7FFFFFFF),
  lifetime = ProtoField.uint32("rsocket.max_lifetime", "Max Lifetime (ms)", base.DEC, nil,
    0x7FFFFFFF),
  token_length = ProtoField.uint16("rsocket.resume_token_length", "Resume Token Length", base.DEC),
  token = ProtoField.bytes("rsocket.resume_token", "Resume Token"),
  mdmime_length = ProtoField.uint8("rsocket.metadata_mime_length", "Metadata MIME Length",
    base.DEC),
  mdmime = ProtoField.string("rsocket.metadata_mime", "Metadata MIME Type"),
  dmime_length = ProtoField.uint8("rsocket.data_mime_length", "Data MIME Length", base.DEC),
  dmime = ProtoField.string("rsocket.data_mime", "Data MIME Type"),
  ttl = ProtoField.uint32("rsocket.lease.ttl", "Time-To-Live (ms)", base.DEC, nil, 0x7FFFFFFF),
  requests = ProtoField.uint32("rsocket.lease.requests", "Number of Requests", base.DEC, nil,
    0x7FFFFFFF),
  position = ProtoField.uint64("rsocket.last_received_position", "Last Received Position",
    base.DEC),
  initial_n = ProtoField.uint32("rsocket.initial_request_n", "Initial Request N", base.DEC, nil,
    0x7FFFFFFF),
  request_n = ProtoField.uint32("rsocket.request_n", "Request N", base.DEC, nil, 0x7FFFFFFF),
  error_code = ProtoField.uint32("rsocket.error_code", "Error Code", base.HEX, ERROR_NAMES),
  error_name = ProtoField.string("rsocket.error_name", "Error Name"),
  error_message = ProtoField.string("rsocket.error_message", "Error Message"),
  ext_type = ProtoField.uint32("rsocket.ext_type", "Extended Type", base.DEC, nil, 0x7FFFFFFF),
  server_pos = ProtoField.uint64("rsocket.resume.last_received_server_position",
    "Last Received Server Position", base.DEC),
  client_first = ProtoField.uint64("rsocket.resume.first_available_client_position",
    "First Available Client Position", base.DEC),
  client_pos = ProtoField.uint64("rsocket.resume.last_received_client_position",
    "Last Received Client Position", base.DEC),
  metadata_length = ProtoField.uint24("rsocket.metadata_length", "Metadata Length", base.DEC),
  metadata = ProtoField.bytes("rsocket.metadata", "Metadata"),
  metadata_text = ProtoField.string("rsocket.metadata_text", "Metadata (text)"),
  data_length = ProtoField.uint32("rsocket.data_length", "Data Length", base.DEC),
  data = ProtoField.bytes("rsocket.data", "Data"),
  data_text = ProtoField.string("rsocket.data_text", "Data (text)"),
  entry = ProtoField.string("rsocket.composite.entry", "Composite Metadata Entry"),
  entry_mime_id = ProtoField.uint8("rsocket.composite.mime_id", "Well-known MIME Type", base.HEX,
    WELL_KNOWN_MIME, 0x7F),
  entry_mime_length = ProtoField.uint8("rsocket.composite.mime_length", "MIME Type Length - 1",
    base.DEC, nil, 0x7F),
  entry_mime = ProtoField.string("rsocket.composite.mime", "MIME Type"),
  entry_length = ProtoField.uint24("rsocket.composite.length", "Entry Length", base.DEC),
  entry_payload = ProtoField.bytes("rsocket.composite.payload", "Entry Payload"),
  entry_text = ProtoField.string("rsocket.composite.text", "Entry Payload (text)"),
  route_length = ProtoField.uint8("rsocket.route_length", "Route Tag Length", base.DEC),
  route = ProtoField.string("rsocket.route", "Route"),
  auth_type = ProtoField.string("rsocket.auth.type", "Authentication Type"),
  auth_username = ProtoField.string("rsocket.auth.username", "Username"),
  auth_password = ProtoField.string("rsocket.auth.password", "Password"),
  auth_token = ProtoField.string("rsocket.auth.token", "Bearer Token"),
  auth_payload = ProtoField.bytes("rsocket.auth.payload", "Authentication Payload"),
  stream_mime = ProtoField.string("rsocket.stream_mime", "Stream Data MIME Type"),
  summary = ProtoField.string("rsocket.summary", "Summary"),
}
local field_list = {}
for _, f in pairs(pf) do field_list[#field_list + 1] = f end
rs.fields = field_list

local ex = {
  malformed = ProtoExpert.new("rsocket.malformed", "Malformed RSocket frame",
    expert.group.MALFORMED, expert.severity.ERROR),
  violation = ProtoExpert.new("rsocket.violation", "RSocket protocol violation",
    expert.group.PROTOCOL, expert.severity.WARN),
  fragment = ProtoExpert.new("rsocket.fragment", "RSocket fragment (F flag): more follows",
    expert.group.REASSEMBLE, expert.severity.NOTE),
  error_frame = ProtoExpert.new("rsocket.error", "RSocket ERROR frame", expert.group.RESPONSE_CODE,
    expert.severity.NOTE),
}
rs.experts = { ex.malformed, ex.violation, ex.fragment, ex.error_frame }

---------------------------------------------------------------------------------------------------
-- Preferences

rs.prefs.tcp_ports = Pref.range("TCP ports", "7878",
  "TCP ports carrying length-prefixed RSocket frames", 65535)
rs.prefs.ws_ports = Pref.range("WebSocket ports", "",
  "TCP ports of WebSocket servers carrying RSocket (one frame per binary message); the HTTP " ..
  "upgrade on these ports is decoded as well", 65535)
rs.prefs.ws_heuristic = Pref.bool("Detect RSocket in WebSocket messages", true,
  "Try every WebSocket message with no other dissector: a well-formed RSocket frame marks the " ..
  "connection as RSocket")
rs.prefs.preview = Pref.uint("Preview bytes", 32,
  "Bytes of metadata and data shown in the summary line (rsocket --debug: 32, rsocket-dump: 48)")
rs.prefs.composite = Pref.bool("Decode composite metadata", true,
  "Decode routing, authentication and MIME entries when SETUP announced " .. COMPOSITE_MIME)

---------------------------------------------------------------------------------------------------
-- Per-connection state: the SETUP's MIME types, and WebSocket connections known to carry RSocket.

local conns = {}

local function conv_key(pinfo)
  local a = tostring(pinfo.src) .. "/" .. tostring(pinfo.src_port)
  local b = tostring(pinfo.dst) .. "/" .. tostring(pinfo.dst_port)
  if a < b then return a .. " " .. b end
  return b .. " " .. a
end

local function conv_state(pinfo)
  local key = conv_key(pinfo)
  local st = conns[key]
  if not st then
    st = {}
    conns[key] = st
  end
  return st
end

function rs.init()
  conns = {}
end

---------------------------------------------------------------------------------------------------
-- Helpers

-- The preview of bytes as rsocket-dump prints it: ` label=NB "text"` with at most "Preview bytes"
-- bytes, non-printable bytes (and `"` `\`) as \xNN, and `...` when cut.
local function preview(label, tvb, off, len)
  local s = string.format(" %s=%dB", label, len)
  local n = math.min(len, rs.prefs.preview)
  if n == 0 then return s end
  local raw = tvb:raw(off, n)
  local parts = {}
  for i = 1, n do
    local c = raw:byte(i)
    if c >= 0x20 and c < 0x7f and c ~= 0x22 and c ~= 0x5c then
      parts[#parts + 1] = string.char(c)
    else
      parts[#parts + 1] = string.format("\\x%02x", c)
    end
  end
  return s .. ' "' .. table.concat(parts) .. (len > n and '"...' or '"')
end

-- True when bytes are printable UTF-8 text (tab, CR and LF allowed); looks at most 4 KiB.
local TEXT_MAX = 4096
local function is_text(tvb, off, len)
  if len == 0 or len > TEXT_MAX then return false end
  local raw = tvb:raw(off, len)
  local i, n = 1, #raw
  while i <= n do
    local c = raw:byte(i)
    if c < 0x80 then
      if (c < 0x20 and c ~= 9 and c ~= 10 and c ~= 13) or c == 0x7f then return false end
      i = i + 1
    else
      local extra
      if c >= 0xC2 and c <= 0xDF then extra = 1
      elseif c >= 0xE0 and c <= 0xEF then extra = 2
      elseif c >= 0xF0 and c <= 0xF4 then extra = 3
      else return false end
      if i + extra > n then return false end
      for k = 1, extra do
        local cc = raw:byte(i + k)
        if cc < 0x80 or cc > 0xBF then return false end
      end
      i = i + extra + 1
    end
  end
  return true
end

local function flag_names(ftype, flags)
  local names = {}
  local function add(bit, name)
    if band(flags, bit) ~= 0 then names[#names + 1] = name end
  end
  add(F_I, "I")
  add(F_M, "M")
  if ftype == 0x01 then
    add(F_R, "R"); add(F_L, "L")
  elseif ftype == 0x03 then
    add(F_R, "R")
  elseif ftype == 0x04 or ftype == 0x05 or ftype == 0x06 then
    add(F_F, "F")
  elseif ftype == 0x07 then
    add(F_F, "F"); add(F_C, "C")
  elseif ftype == 0x0A then
    add(F_F, "F"); add(F_C, "C"); add(F_N, "N")
  end
  if #names == 0 then return "-" end
  return table.concat(names, "|")
end

---------------------------------------------------------------------------------------------------
-- Composite metadata and its extensions

local function dissect_routing(tvb, off, len, tree)
  local stop = off + len
  local routes = {}
  while off < stop do
    local n = tvb(off, 1):uint()
    tree:add(pf.route_length, tvb(off, 1))
    if off + 1 + n > stop then
      tree:add_proto_expert_info(ex.malformed, "route tag runs past the end of its entry")
      return routes
    end
    if n > 0 then
      tree:add(pf.route, tvb(off + 1, n))
      routes[#routes + 1] = tvb(off + 1, n):string(ENC_UTF_8)
    end
    off = off + 1 + n
  end
  return routes
end

local function dissect_auth(tvb, off, len, tree)
  if len < 1 then
    tree:add_proto_expert_info(ex.malformed, "empty authentication entry")
    return
  end
  local b = tvb(off, 1):uint()
  local atype, p
  if b >= 0x80 then
    atype = AUTH_TYPES[b - 0x80] or string.format("reserved 0x%02x", b - 0x80)
    tree:add(pf.auth_type, tvb(off, 1), atype)
    p = off + 1
  else
    local n = b + 1
    if 1 + n > len then
      tree:add_proto_expert_info(ex.malformed, "authentication type runs past the entry")
      return
    end
    atype = tvb(off + 1, n):string()
    tree:add(pf.auth_type, tvb(off + 1, n))
    p = off + 1 + n
  end
  local rest = off + len - p
  if atype == "simple" and rest >= 2 then
    local ulen = tvb(p, 2):uint()
    if 2 + ulen <= rest then
      tree:add(pf.auth_username, tvb(p + 2, ulen))
      if rest - 2 - ulen > 0 then tree:add(pf.auth_password, tvb(p + 2 + ulen, rest - 2 - ulen)) end
      return
    end
    tree:add_proto_expert_info(ex.malformed, "simple authentication username past the entry")
  elseif atype == "bearer" and rest > 0 then
    tree:add(pf.auth_token, tvb(p, rest))
    return
  end
  if rest > 0 then tree:add(pf.auth_payload, tvb(p, rest)) end
end

-- A MIME reference of the per-stream MIME extensions: [M:1][id or length-1:7] then the string.
-- Returns the bytes used, or nil.
local function dissect_mime_ref(tvb, off, stop, tree)
  if off >= stop then return nil end
  local b = tvb(off, 1):uint()
  if b >= 0x80 then
    tree:add(pf.stream_mime, tvb(off, 1), WELL_KNOWN_MIME[b - 0x80] or
      string.format("reserved id 0x%02x", b - 0x80))
    return 1
  end
  local n = b + 1
  if off + 1 + n > stop then return nil end
  tree:add(pf.stream_mime, tvb(off + 1, n))
  return 1 + n
end

-- True when [off, off+len) is a well-formed sequence of composite-metadata entries.
local function composite_well_formed(tvb, off, len)
  local stop = off + len
  if len < 4 then return false end
  while off < stop do
    local b = tvb(off, 1):uint()
    local p = off + 1
    if b < 0x80 then p = p + b + 1 end
    if p + 3 > stop then return false end
    p = p + 3 + tvb(p, 3):uint()
    if p > stop then return false end
    off = p
  end
  return true
end

local function dissect_composite(tvb, off, len, tree)
  local stop = off + len
  local routes = {}
  while off < stop do
    local start = off
    local b = tvb(off, 1):uint()
    local mime, header
    if b >= 0x80 then
      mime = WELL_KNOWN_MIME[b - 0x80] or string.format("reserved id 0x%02x", b - 0x80)
      header = 1
    else
      if off + 1 + b + 1 > stop then
        tree:add_proto_expert_info(ex.malformed, "composite metadata: MIME type past the end")
        return routes
      end
      mime = tvb(off + 1, b + 1):string()
      header = 1 + b + 1
    end
    if off + header + 3 > stop then
      tree:add_proto_expert_info(ex.malformed, "composite metadata: entry length past the end")
      return routes
    end
    local elen = tvb(off + header, 3):uint()
    local total = header + 3 + elen
    if off + total > stop then
      tree:add_proto_expert_info(ex.malformed, "composite metadata: entry runs past the end")
      return routes
    end
    local item = tree:add(pf.entry, tvb(start, total), mime)
    if b >= 0x80 then
      item:add(pf.entry_mime_id, tvb(off, 1))
    else
      item:add(pf.entry_mime_length, tvb(off, 1))
      item:add(pf.entry_mime, tvb(off + 1, b + 1))
    end
    item:add(pf.entry_length, tvb(off + header, 3))
    local p = off + header + 3
    if elen > 0 then
      if mime == ROUTING_MIME then
        for _, r in ipairs(dissect_routing(tvb, p, elen, item)) do routes[#routes + 1] = r end
      elseif mime == "message/x.rsocket.authentication.v0" then
        dissect_auth(tvb, p, elen, item)
      elseif mime == "message/x.rsocket.mime-type.v0" then
        dissect_mime_ref(tvb, p, p + elen, item)
      elseif mime == "message/x.rsocket.accept-mime-types.v0" then
        local q = p
        while q < p + elen do
          local used = dissect_mime_ref(tvb, q, p + elen, item)
          if not used then break end
          q = q + used
        end
      else
        local payload = item:add(pf.entry_payload, tvb(p, elen))
        if is_text(tvb, p, elen) then payload:add(pf.entry_text, tvb(p, elen)) end
      end
    end
    if #routes > 0 and mime == ROUTING_MIME then
      item:append_text(" (" .. table.concat(routes, ", ") .. ")")
    end
    off = off + total
  end
  return routes
end

-- Metadata of a frame: raw bytes, as text when printable, and decoded by its MIME type.
local function add_metadata(tvb, off, len, tree, mime)
  if len == 0 then
    tree:add(pf.metadata, tvb(off, 0))
    return
  end
  local item = tree:add(pf.metadata, tvb(off, len))
  if is_text(tvb, off, len) then item:add(pf.metadata_text, tvb(off, len)) end
  if not rs.prefs.composite then return end
  -- Without a SETUP in the capture the MIME type is unknown: try composite when it parses.
  if mime == COMPOSITE_MIME or (mime == nil and composite_well_formed(tvb, off, len)) then
    local routes = dissect_composite(tvb, off, len, item)
    if #routes > 0 then item:append_text(" [route " .. table.concat(routes, ", ") .. "]") end
  elseif mime == ROUTING_MIME then
    dissect_routing(tvb, off, len, item)
  end
end

local function add_data(tvb, off, len, tree)
  tree:add(pf.data_length, len):set_generated()
  if len == 0 then return end
  local item = tree:add(pf.data, tvb(off, len))
  if is_text(tvb, off, len) then item:add(pf.data_text, tvb(off, len)) end
end

-- The version of SETUP and RESUME: major and minor, 2 bytes each.
local function add_version(tvb, p, tree)
  local major, minor = tvb(p, 2):uint(), tvb(p + 2, 2):uint()
  local item = tree:add(pf.version, tvb(p, 4), string.format("%d.%d", major, minor))
  item:add(pf.version_major, tvb(p, 2))
  item:add(pf.version_minor, tvb(p + 2, 2))
  if major ~= 1 then item:add_proto_expert_info(ex.violation, "RSocket 1.x has major version 1") end
  return major, minor
end

---------------------------------------------------------------------------------------------------
-- One frame: tvb[off, off+len) without any length prefix, into ftree. Returns the summary line.

local function dissect_frame(tvb, pinfo, ftree, off, len, prefix_len)
  if prefix_len > 0 then ftree:add(pf.length, tvb(off - prefix_len, prefix_len)) end
  if len < 6 then
    local msg = string.format("frame of %d bytes is shorter than the 6-byte header", len)
    ftree:add_proto_expert_info(ex.malformed, msg)
    ftree:append_text(", malformed")
    return "malformed frame: " .. msg
  end
  local stop = off + len
  local sid = band(tvb(off, 4):uint(), 0x7FFFFFFF)
  local w = tvb(off + 4, 2):uint()
  local ftype = math.floor(w / 1024)
  local flags = band(w, 0x3FF)
  local t = TYPES[ftype]
  local tname = TYPE_NAMES[ftype] or "UNKNOWN"
  local sid_item = ftree:add(pf.stream_id, tvb(off, 4))
  if tvb(off, 4):uint() >= 0x80000000 then
    sid_item:add_proto_expert_info(ex.violation, "reserved top bit of the stream ID is set")
  end
  ftree:add(pf.frame_type, tvb(off + 4, 2))
  local fitem = ftree:add(pf.flags, tvb(off + 4, 2))
  fitem:append_text(" (" .. flag_names(ftype, flags) .. ")")
  fitem:add(pf.flag_ignore, tvb(off + 4, 2))
  fitem:add(pf.flag_metadata, tvb(off + 4, 2))
  if ftype == 0x01 then
    fitem:add(pf.flag_resume, tvb(off + 4, 2))
    fitem:add(pf.flag_lease, tvb(off + 4, 2))
  elseif ftype == 0x03 then
    fitem:add(pf.flag_respond, tvb(off + 4, 2))
  elseif t and t.follows then
    fitem:add(pf.flag_follows, tvb(off + 4, 2))
    if band(t.flags, F_C) ~= 0 then fitem:add(pf.flag_complete, tvb(off + 4, 2)) end
    if band(t.flags, F_N) ~= 0 then fitem:add(pf.flag_next, tvb(off + 4, 2)) end
  end
  ftree:append_text(string.format(", %s, Stream ID: %d", tname, sid))

  local summary = string.format("%s stream=%d flags=%s", tname, sid, flag_names(ftype, flags))
  if not t then
    ftree:add_proto_expert_info(ex.malformed, string.format("unknown frame type 0x%02x", ftype))
    if len > 6 then ftree:add(pf.data, tvb(off + 6, len - 6)) end
    return summary
  end
  if t.sid == "zero" and sid ~= 0 then
    sid_item:add_proto_expert_info(ex.violation, tname .. " must use stream 0")
  elseif t.sid == "nonzero" and sid == 0 then
    sid_item:add_proto_expert_info(ex.violation, tname .. " must not use stream 0")
  end
  local undefined = band(flags, 0x3FF - F_I - t.flags)
  if undefined ~= 0 then
    fitem:add_proto_expert_info(ex.violation,
      string.format("flags 0x%03x are not defined for %s (ignored)", undefined, tname))
  end
  local has_md = band(flags, F_M) ~= 0
  if t.follows and band(flags, F_F) ~= 0 then
    fitem:add_proto_expert_info(ex.fragment)
  end

  local function malformed(msg)
    ftree:add_proto_expert_info(ex.malformed, msg)
    ftree:append_text(", malformed")
    return "malformed frame: " .. msg
  end
  if len < 6 + t.fixed then
    return malformed(string.format("%s needs at least %d bytes, has %d", tname, 6 + t.fixed, len))
  end
  if t.exact and len ~= t.exact then
    return malformed(string.format("%s is %d bytes, not %d", tname, t.exact, len))
  end

  local p = off + 6
  local st = conv_state(pinfo)
  local md_mime = st.metadata_mime
  local body = "md_data" -- how the rest of the frame is laid out
  if ftype == 0x01 then -- SETUP
    local major, minor = add_version(tvb, p, ftree)
    ftree:add(pf.keepalive, tvb(p + 4, 4))
    ftree:add(pf.lifetime, tvb(p + 8, 4))
    summary = summary .. string.format(" version=%d.%d keepalive=%dms lifetime=%dms", major, minor,
      band(tvb(p + 4, 4):uint(), 0x7FFFFFFF), band(tvb(p + 8, 4):uint(), 0x7FFFFFFF))
    p = p + 12
    if band(flags, F_R) ~= 0 then
      if p + 2 > stop then return malformed("resume token length past the end of SETUP") end
      local tl = tvb(p, 2):uint()
      ftree:add(pf.token_length, tvb(p, 2))
      if p + 2 + tl > stop then return malformed("resume token past the end of SETUP") end
      if tl > 0 then ftree:add(pf.token, tvb(p + 2, tl)) end
      summary = summary .. string.format(" token=%dB", tl)
      p = p + 2 + tl
    end
    local mimes = {}
    for i, which in ipairs({ "metadata", "data" }) do
      if p + 1 > stop then return malformed(which .. " MIME length past the end of SETUP") end
      local ml = tvb(p, 1):uint()
      if p + 1 + ml > stop then return malformed(which .. " MIME type past the end of SETUP") end
      ftree:add(i == 1 and pf.mdmime_length or pf.dmime_length, tvb(p, 1))
      mimes[i] = ml > 0 and tvb(p + 1, ml):string() or ""
      ftree:add(i == 1 and pf.mdmime or pf.dmime, tvb(p + 1, ml))
      p = p + 1 + ml
    end
    summary = summary .. string.format(" metadata-mime=%s data-mime=%s", mimes[1], mimes[2])
    if not pinfo.visited then
      st.metadata_mime, st.data_mime = mimes[1], mimes[2]
    end
    md_mime = mimes[1]
  elseif ftype == 0x02 then -- LEASE
    ftree:add(pf.ttl, tvb(p, 4))
    ftree:add(pf.requests, tvb(p + 4, 4))
    summary = summary .. string.format(" ttl=%dms requests=%d", band(tvb(p, 4):uint(), 0x7FFFFFFF),
      band(tvb(p + 4, 4):uint(), 0x7FFFFFFF))
    p = p + 8
    body = has_md and "md_only" or "none"
  elseif ftype == 0x03 then -- KEEPALIVE
    ftree:add(pf.position, tvb(p, 8))
    summary = summary .. " position=" .. tostring(tvb(p, 8):uint64())
    p = p + 8
    body = "data_only"
  elseif ftype == 0x06 or ftype == 0x07 then -- REQUEST_STREAM, REQUEST_CHANNEL
    local n = band(tvb(p, 4):uint(), 0x7FFFFFFF)
    local item = ftree:add(pf.initial_n, tvb(p, 4))
    if n == 0 then item:add_proto_expert_info(ex.violation, "initial request N must be > 0") end
    summary = summary .. " n=" .. n
    p = p + 4
  elseif ftype == 0x08 then -- REQUEST_N
    local n = band(tvb(p, 4):uint(), 0x7FFFFFFF)
    local item = ftree:add(pf.request_n, tvb(p, 4))
    if n == 0 then item:add_proto_expert_info(ex.violation, "request N must be > 0") end
    summary = summary .. " n=" .. n
    p = p + 4
    body = "none"
  elseif ftype == 0x09 then -- CANCEL
    body = "none"
  elseif ftype == 0x0A then -- PAYLOAD
    if band(flags, F_C + F_N + F_F) == 0 then
      fitem:add_proto_expert_info(ex.violation, "PAYLOAD with neither N, C nor F")
    end
  elseif ftype == 0x0B then -- ERROR
    local code = tvb(p, 4):uint()
    local name = error_name(code)
    ftree:add(pf.error_code, tvb(p, 4))
    ftree:add(pf.error_name, tvb(p, 4), name):set_generated()
    ftree:add_proto_expert_info(ex.error_frame, string.format("ERROR %s (0x%X)", name, code))
    summary = summary .. string.format(" code=%s(0x%X)", name, code)
    p = p + 4
    if p < stop then
      ftree:add(pf.error_message, tvb(p, stop - p), tvb(p, stop - p):string(ENC_UTF_8))
    end
    summary = summary .. preview("message", tvb, p, stop - p)
    ftree:append_text(string.format(", %s", name))
    return summary
  elseif ftype == 0x0C then -- METADATA_PUSH
    if not has_md then fitem:add_proto_expert_info(ex.violation, "METADATA_PUSH must set M") end
    body = "md_only"
    has_md = true
  elseif ftype == 0x0D then -- RESUME
    local major, minor = add_version(tvb, p, ftree)
    local tl = tvb(p + 4, 2):uint()
    ftree:add(pf.token_length, tvb(p + 4, 2))
    if len ~= 28 + tl then
      return malformed(string.format("RESUME with a %d-byte token is %d bytes, not %d", tl, 28 + tl,
        len))
    end
    if tl > 0 then ftree:add(pf.token, tvb(p + 6, tl)) end
    p = p + 6 + tl
    ftree:add(pf.server_pos, tvb(p, 8))
    ftree:add(pf.client_first, tvb(p + 8, 8))
    summary = summary .. string.format(" version=%d.%d token=%dB last-received-server=%s" ..
      " first-available-client=%s", major, minor, tl, tostring(tvb(p, 8):uint64()),
      tostring(tvb(p + 8, 8):uint64()))
    return summary
  elseif ftype == 0x0E then -- RESUME_OK
    ftree:add(pf.client_pos, tvb(p, 8))
    summary = summary .. " last-received-client=" .. tostring(tvb(p, 8):uint64())
    return summary
  elseif ftype == 0x3F then -- EXT
    ftree:add(pf.ext_type, tvb(p, 4))
    summary = summary .. " ext-type=" .. band(tvb(p, 4):uint(), 0x7FFFFFFF)
    p = p + 4
  end

  if body == "md_data" then
    if has_md then
      if p + 3 > stop then return malformed("metadata length past the end of the frame") end
      local ml = tvb(p, 3):uint()
      ftree:add(pf.metadata_length, tvb(p, 3))
      if p + 3 + ml > stop then
        return malformed(string.format("metadata length %d points past the end of the frame", ml))
      end
      add_metadata(tvb, p + 3, ml, ftree, md_mime)
      summary = summary .. preview("metadata", tvb, p + 3, ml)
      p = p + 3 + ml
    end
    add_data(tvb, p, stop - p, ftree)
    summary = summary .. preview("data", tvb, p, stop - p)
  elseif body == "md_only" then
    add_metadata(tvb, p, stop - p, ftree, ftype == 0x0C and md_mime or nil)
    summary = summary .. preview("metadata", tvb, p, stop - p)
  elseif body == "data_only" then
    add_data(tvb, p, stop - p, ftree)
    summary = summary .. preview("data", tvb, p, stop - p)
  elseif p < stop then
    ftree:add_proto_expert_info(ex.malformed,
      string.format("%d unexpected trailing bytes", stop - p))
  end
  return summary
end

-- Shows one frame: its subtree with the summary as a generated field, and the summary in the Info
-- column (the frames of one packet separated by "; ").
local function show(tvb, pinfo, tree, off, len, prefix_len)
  local range = tvb(off - prefix_len, len + prefix_len)
  local ftree = tree:add(rs, range)
  local summary = dissect_frame(tvb, pinfo, ftree, off, len, prefix_len)
  ftree:add(pf.summary, range, summary):set_generated()
  -- pinfo.private lives for one dissection of one packet. The fence keeps the frames shown so
  -- far when WebSocket rewrites the column for its next message in the same packet.
  local shown = tonumber(pinfo.private.rsocket_frames or "0")
  pinfo.private.rsocket_frames = tostring(shown + 1)
  pinfo.cols.protocol = "RSocket"
  pinfo.cols.info = shown == 0 and summary or "; " .. summary
  pinfo.cols.info:fence()
end

-----------------------------------------------------------------------------------------------
-- TCP: 3-byte length prefix per frame

local function tcp_pdu_length(tvb, pinfo, off)
  return 3 + tvb(off, 3):uint()
end

local function tcp_pdu(tvb, pinfo, tree)
  show(tvb, pinfo, tree, 3, tvb:len() - 3, 3)
  return tvb:len()
end

function rs.dissector(tvb, pinfo, tree)
  dissect_tcp_pdus(tvb, tree, 3, tcp_pdu_length, tcp_pdu, true)
  return tvb:len()
end

---------------------------------------------------------------------------------------------------
-- WebSocket: one frame per binary message

function rs_ws.dissector(tvb, pinfo, tree)
  show(tvb, pinfo, tree, 0, tvb:len(), 0)
  return tvb:len()
end

-- A strict check that the message is one well-formed RSocket frame.
local function plausible_frame(tvb)
  local len = tvb:len()
  if len < 6 then return false end
  local sid = tvb(0, 4):uint()
  if sid >= 0x80000000 then return false end
  local w = tvb(4, 2):uint()
  local ftype, flags = math.floor(w / 1024), band(w, 0x3FF)
  local t = TYPES[ftype]
  if not t or band(flags, 0x3FF - F_I - t.flags) ~= 0 then return false end
  if (t.sid == "zero" and sid ~= 0) or (t.sid == "nonzero" and sid == 0) then return false end
  if len < 6 + t.fixed or (t.exact and len ~= t.exact) then return false end
  local p = 6 + t.fixed
  if ftype == 0x01 then
    if tvb(6, 2):uint() ~= 1 then return false end
    if band(flags, F_R) ~= 0 then
      if p + 2 > len then return false end
      p = p + 2 + tvb(p, 2):uint()
    end
    for _ = 1, 2 do
      if p + 1 > len then return false end
      p = p + 1 + tvb(p, 1):uint()
    end
    if p > len then return false end
  elseif ftype == 0x08 or ftype == 0x06 or ftype == 0x07 then
    if band(tvb(6, 4):uint(), 0x7FFFFFFF) == 0 then return false end
  elseif ftype == 0x0A then
    if band(flags, F_C + F_N + F_F) == 0 then return false end
  elseif ftype == 0x0C then
    if band(flags, F_M) == 0 then return false end
  elseif ftype == 0x0D then
    if tvb(6, 2):uint() ~= 1 or len ~= 28 + tvb(10, 2):uint() then return false end
  end
  local md_len_field = ftype == 0x01 or (ftype >= 0x04 and ftype <= 0x07) or ftype == 0x0A or
    ftype == 0x3F
  if md_len_field and band(flags, F_M) ~= 0 then
    if p + 3 > len or p + 3 + tvb(p, 3):uint() > len then return false end
  end
  return true
end

local function ws_heuristic(tvb, pinfo, tree)
  if not rs.prefs.ws_heuristic then return false end
  local st = conv_state(pinfo)
  if not st.websocket then
    if not plausible_frame(tvb) then return false end
    st.websocket = true
  end
  rs_ws.dissector(tvb, pinfo, tree)
  return true
end

---------------------------------------------------------------------------------------------------
-- Registration

local tcp_table = DissectorTable.get("tcp.port")
local ws_port_table = DissectorTable.get("ws.port")
-- The HTTP handle the tcp.port table uses ("http" where that one is missing).
local ok, http = pcall(Dissector.get, "http-over-tcp")
if not ok or not http then http = Dissector.get("http") end
local registered = { tcp = "", ws = "" }

local function register_ports()
  if registered.tcp ~= "" then tcp_table:remove(registered.tcp, rs) end
  if registered.ws ~= "" then
    tcp_table:remove(registered.ws, http)
    ws_port_table:remove(registered.ws, rs_ws)
  end
  registered.tcp = rs.prefs.tcp_ports or ""
  registered.ws = rs.prefs.ws_ports or ""
  if registered.tcp ~= "" then tcp_table:add(registered.tcp, rs) end
  if registered.ws ~= "" then
    tcp_table:add(registered.ws, http)
    ws_port_table:add(registered.ws, rs_ws)
  end
end

function rs.prefs_changed()
  register_ports()
end

tcp_table:add_for_decode_as(rs)
DissectorTable.get("ws.protocol"):add("rsocket", rs_ws)
rs:register_heuristic("ws", ws_heuristic)
register_ports()
