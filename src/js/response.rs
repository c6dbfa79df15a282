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
// Compiled-in bodies as strings, by the index wasm keeps for each (`remember`).
const texts = [];
export function remember(body) {
  try {
    texts.push(utf8.decode(body));
    return true;
  } catch {
    return false;
  }
}
export function respond_remembered(text) {
  return new Response(texts[text]);
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
    /// Keeps `body` as a JS string, the next in [`respond_remembered`]'s list;
    /// false (and nothing kept) when it is not UTF-8.
    fn remember(body: &[u8]) -> bool;
    /// A 200 `text/plain;charset=UTF-8` answer of the `text`th remembered string.
    fn respond_remembered(text: usize) -> web_sys::Response;
    /// The same, streaming `stream` as the body.
    pub(crate) fn respond_stream(
        status: u16,
        headers: &str,
        stream: &web_sys::ReadableStream,
    ) -> web_sys::Response;
}

/// How many compiled-in bodies keep their JS string; past that, new ones are
/// decoded per answer (a `&'static` body can be leaked memory, so the number of
/// distinct ones is not bounded by the program's literals).
const REMEMBERED: usize = 64;

thread_local! {
    /// Compiled-in bodies seen, by address and length, with the index of their
    /// JS string (`None`: not UTF-8). A `&'static [u8]` never changes, so it is
    /// decoded once per isolate, not once per answer (decoding it every time cost
    /// hello 6 % more CPU per request, measured).
    static SEEN: std::cell::RefCell<Vec<(usize, usize, Option<usize>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The index of the JS string of a compiled-in body, decoded on its first answer;
/// `None` when it is not UTF-8 or too many are kept already.
fn remembered(body: &'static [u8]) -> Option<usize> {
    let key = (body.as_ptr() as usize, body.len());
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        if let Some(&(_, _, text)) = seen.iter().find(|(at, len, _)| (*at, *len) == key) {
            return text;
        }
        if seen.len() == REMEMBERED {
            return None;
        }
        let text = remember(body).then(|| seen.iter().filter(|s| s.2.is_some()).count());
        seen.push((key.0, key.1, text));
        text
    })
}

/// [`respond_text`] for a compiled-in body.
pub(crate) fn respond_static_text(body: &'static [u8]) -> web_sys::Response {
    match remembered(body) {
        Some(text) => respond_remembered(text),
        None => respond_text(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test as test;

    async fn body(response: web_sys::Response) -> Vec<u8> {
        let buffer = crate::js::settled(&response.array_buffer().unwrap())
            .await
            .unwrap();
        js_sys::Uint8Array::new(&buffer).to_vec()
    }

    #[test]
    async fn compiled_in_bodies_are_answered_exactly_every_time() {
        // Not UTF-8 first, so that the strings kept after it are counted right.
        static BINARY: &[u8] = b"\xff\xfe not text";
        static ONE: &[u8] = b"one compiled-in text";
        static TWO: &[u8] = b"two compiled-in text";
        for _ in 0..3 {
            for expected in [BINARY, ONE, TWO, &TWO[4..]] {
                let response = respond_static_text(expected);
                let kind = response.headers().get("content-type").unwrap();
                assert_eq!(kind.as_deref(), Some("text/plain;charset=UTF-8"));
                assert_eq!(body(response).await, expected);
            }
        }
    }
}
