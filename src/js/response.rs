//! The JS `Response`, built in one call across the boundary.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
// Headers go to the Response constructor as a record, not as [name, value]
// pairs: workerd converts a record much faster (about 25 µs less per request with
// four headers, measured; BENCHMARKS.md, "Where the hot-path time goes"). A
// block that names a header twice (set-cookie) keeps the pairs, which a record
// cannot hold. The inits of 200 answers are kept per isolate by their header
// block, which repeats for a route that sets no per-request header.
const inits = new Map();
function headers(flat) {
  const out = {};
  if (flat.length === 0) return out;
  const parts = flat.split("\n");
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const name = parts[i];
    if (name in out) return pairs(parts);
    out[name] = parts[i + 1];
  }
  return out;
}
function pairs(parts) {
  const out = [];
  for (let i = 0; i + 1 < parts.length; i += 2) out.push([parts[i], parts[i + 1]]);
  return out;
}
function init(status, flat) {
  if (status !== 200) return { status, headers: headers(flat) };
  let found = inits.get(flat);
  if (found === undefined) {
    found = { status, headers: headers(flat) };
    // Blocks with per-request values (request ids) never repeat: bound the map.
    if (inits.size >= 64) inits.clear();
    inits.set(flat, found);
  }
  return found;
}
// A 200 text answer whose only header is the text content type goes out as
// Hono's `c.text()` does: a string body and no init, the runtime setting that
// content type itself. Bytes that are not UTF-8 keep the general path.
// `ignoreBOM`: a leading byte-order mark is part of the body, not dropped.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
export function respond_text(body) {
  let text;
  try {
    text = utf8.decode(body);
  } catch {
    return new Response(body, init(200, "content-type\ntext/plain;charset=UTF-8\n"));
  }
  return new Response(text);
}
export function respond_bytes(status, headers, body) {
  return new Response(body.length === 0 ? null : body, init(status, headers));
}
export function respond_stream(status, headers, stream) {
  return new Response(stream, init(status, headers));
}
"#)]
extern "C" {
    /// A `Response` with `status`, `headers` as `name\nvalue\n` pairs (one string
    /// across the boundary, not one per name and value) and `body` (none if empty).
    pub(crate) fn respond_bytes(status: u16, headers: &str, body: &[u8]) -> web_sys::Response;
    /// A 200 `text/plain;charset=UTF-8` answer of `body`, with no other header.
    pub(crate) fn respond_text(body: &[u8]) -> web_sys::Response;
    /// The same, streaming `stream` as the body.
    pub(crate) fn respond_stream(
        status: u16,
        headers: &str,
        stream: &web_sys::ReadableStream,
    ) -> web_sys::Response;
}
