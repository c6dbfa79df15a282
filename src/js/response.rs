//! The JS `Response`, built in one call across the boundary.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
function pairs(flat) {
  const out = [];
  if (flat.length > 0) {
    const parts = flat.split("\n");
    for (let i = 0; i + 1 < parts.length; i += 2) out.push([parts[i], parts[i + 1]]);
  }
  return out;
}
export function respond_bytes(status, headers, body) {
  return new Response(body.length === 0 ? null : body, { status, headers: pairs(headers) });
}
export function respond_stream(status, headers, stream) {
  return new Response(stream, { status, headers: pairs(headers) });
}
"#)]
extern "C" {
    /// A `Response` with `status`, `headers` as `name\nvalue\n` pairs (one string
    /// across the boundary, not one per name and value) and `body` (none if empty).
    pub(crate) fn respond_bytes(status: u16, headers: &str, body: &[u8]) -> web_sys::Response;
    /// The same, streaming `stream` as the body.
    pub(crate) fn respond_stream(
        status: u16,
        headers: &str,
        stream: &web_sys::ReadableStream,
    ) -> web_sys::Response;
}
