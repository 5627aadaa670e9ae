// Composite metadata for the gateway passthrough peers (pt_backend.mjs, pt_client.mjs).
export const CLIENT_MIME = "application/x.rsocket-gateway.client+json";

// The entries of composite metadata: [{mime (null for a well-known id), id (-1 for a string), content}].
export function entries(md) {
  const out = [];
  let off = 0;
  while (md && off < md.length) {
    const b = md[off++];
    let mime = null;
    let id = -1;
    if (b & 0x80) id = b & 0x7f;
    else {
      mime = md.subarray(off, off + b + 1).toString();
      off += b + 1;
    }
    const len = md.readUIntBE(off, 3);
    off += 3;
    out.push({ mime, id, content: md.subarray(off, off + len) });
    off += len;
  }
  return out;
}
