//! A core `Response` as a JS `Response`, in one call across the boundary.

use wasm_bindgen::prelude::*;

use super::JsBody;
use crate::body::Inner;
use crate::response::Response;

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
    fn respond_bytes(status: u16, headers: &str, body: &[u8]) -> web_sys::Response;
    fn respond_stream(
        status: u16,
        headers: &str,
        stream: &web_sys::ReadableStream,
    ) -> web_sys::Response;
}

/// The JS `Response` for `response`. Headers cross as one string (`name\nvalue\n`
/// pairs) rather than one JS string per name and value.
pub(crate) fn respond(response: Response) -> web_sys::Response {
    let (status, headers, body) = response.into_parts();
    let mut flat = String::with_capacity(headers.iter().map(|(n, v)| n.len() + v.len() + 2).sum());
    for (name, value) in headers.iter() {
        flat.push_str(name);
        flat.push('\n');
        flat.push_str(value);
        flat.push('\n');
    }
    let forbids_body = status.forbids_body();
    let status = status.as_u16();
    // The JS `Response` constructor throws on a 204 (or 304) with a body.
    let bytes = |bytes: &[u8]| -> web_sys::Response {
        respond_bytes(status, &flat, if forbids_body { &[] } else { bytes })
    };
    match body.0 {
        Inner::Empty | Inner::Deferred => bytes(&[]),
        Inner::Bytes(body) => bytes(&body),
        Inner::Static(body) => bytes(body),
        Inner::Host(host) => match host
            .into_any()
            .downcast::<JsBody>()
            .ok()
            .and_then(|js| js.into_stream())
        {
            Some(stream) => respond_stream(status, &flat, &stream),
            None => bytes(&[]),
        },
    }
}
