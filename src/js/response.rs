//! The JS `Response`, built in one call across the boundary.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
// Headers go to the Response constructor as a record, not as [name, value]
// pairs: workerd converts a record much faster (about 25 µs less per request with
// four headers, measured; BENCHMARKS.md, "Where the hot-path time goes"). A
// block that names a header twice (set-cookie) keeps the pairs, which a record
// cannot hold.
//
// The inits of 200 answers are kept per isolate by their header block, which
// repeats for a route that sets no per-request header, from the block's second
// answer on. A kept init holds a `Headers` object: the constructor copies it into
// the response's own headers (never sharing it), which costs workerd less than
// converting a record (BENCHMARKS.md, "Where the hot-path time goes"). A block
// seen once is only marked: blocks with per-request values (request ids) never
// repeat, and a `Headers` built for them would be work thrown away.
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
  const found = inits.get(flat);
  if (found) return found;
  if (found === null) {
    const kept = { status, headers: new Headers(headers(flat)) };
    inits.set(flat, kept);
    return kept;
  }
  // Bounded, for the blocks that never repeat; a kept block cleared with them
  // is kept again from its next two answers.
  if (inits.size >= 64) inits.clear();
  inits.set(flat, null);
  return { status, headers: headers(flat) };
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
// Compiled-in bodies as strings, by the index `remember` gave each.
const texts = [];
export function remember(body) {
  try {
    return texts.push(utf8.decode(body)) - 1;
  } catch {
    return -1;
  }
}
export function respond_remembered(index) {
  return new Response(texts[index]);
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
    /// Keeps `body` as a JS string and returns its index for
    /// [`respond_remembered`]; -1, keeping nothing, when it is not UTF-8.
    fn remember(body: &[u8]) -> i32;
    /// A 200 `text/plain;charset=UTF-8` answer of the string kept at `index`.
    fn respond_remembered(index: u32) -> web_sys::Response;
}

/// How many compiled-in bodies keep their JS string; past that, new ones are
/// decoded per answer (a `&'static` body can be leaked memory, so the number of
/// distinct ones is not bounded by the program's literals).
const MAX_REMEMBERED: usize = 64;

/// A compiled-in body answered before: where it is, and the index of its JS
/// string (`None`: not UTF-8).
struct Remembered {
    at: usize,
    len: usize,
    index: Option<u32>,
}

thread_local! {
    /// The compiled-in bodies answered so far. A `&'static [u8]` stays as it is
    /// for the isolate's life (`Body`'s `From` impls say so), so it is decoded
    /// once per isolate, not once per answer (decoding it every time cost hello
    /// 6 % more CPU per request, measured).
    static REMEMBERED: std::cell::RefCell<Vec<Remembered>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// [`respond_text`] for a compiled-in body: its JS string is decoded on its
/// first answer and kept.
pub(crate) fn respond_static_text(body: &'static [u8]) -> web_sys::Response {
    let (at, len) = (body.as_ptr() as usize, body.len());
    let index = REMEMBERED.with(|remembered| {
        let mut remembered = remembered.borrow_mut();
        if let Some(seen) = remembered.iter().find(|r| (r.at, r.len) == (at, len)) {
            return Some(seen.index);
        }
        if remembered.len() == MAX_REMEMBERED {
            return None;
        }
        let index = u32::try_from(remember(body)).ok();
        remembered.push(Remembered { at, len, index });
        Some(index)
    });
    match index {
        Some(Some(index)) => respond_remembered(index),
        // Past the list, or not UTF-8 (which `respond_text` sends as bytes).
        _ => respond_text(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::js::promise::tests::bounded;
    use crate::js::settled;
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// The status, content type and body of `response`.
    async fn read(response: web_sys::Response) -> (u16, Option<String>, Vec<u8>) {
        let kind = response.headers().get("content-type").unwrap();
        let promise = response.array_buffer().unwrap();
        let buffer = bounded(settled(&promise)).await.unwrap();
        (
            response.status(),
            kind,
            js_sys::Uint8Array::new(&buffer).to_vec(),
        )
    }

    fn remembered() -> usize {
        REMEMBERED.with(|remembered| remembered.borrow().len())
    }

    /// Every header of `response`, in the order `Headers` iterates them.
    fn headers_of(response: &web_sys::Response) -> Vec<(String, String)> {
        js_sys::try_iter(&response.headers())
            .unwrap()
            .unwrap()
            .map(|entry| {
                let pair: js_sys::Array = entry.unwrap().into();
                (
                    pair.get(0).as_string().unwrap(),
                    pair.get(1).as_string().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    async fn repeated_header_blocks_answer_their_own_headers_every_time() {
        // Two blocks in turns, each kept from its second answer on: one of
        // distinct names (a record, then a `Headers` from it), one naming a
        // header twice (pairs, which a record cannot hold). Then a status that
        // is never kept. Each answer has its own block's headers, whichever was
        // kept last. (That a response's headers changed later never reach the
        // next one is workerd's copy of a `Headers` init; Node copies too.)
        let json = "content-type\napplication/json\nx-route\njson\n";
        let cookies = "content-type\ntext/plain\nset-cookie\na=1\nset-cookie\nb=2\n";
        let expect = |block: &str| -> Vec<(String, String)> {
            let parts: Vec<&str> = block.split('\n').collect();
            parts
                .chunks_exact(2)
                .map(|pair| (pair[0].to_owned(), pair[1].to_owned()))
                .collect()
        };
        let answers = [(200, json), (200, cookies)].repeat(3);
        for (status, block) in answers.into_iter().chain([(201, json), (201, json)]) {
            let response = respond_bytes(status, block, b"{}");
            assert_eq!(headers_of(&response), expect(block), "{block:?}");
            response.headers().set("x-route", "changed").unwrap();
            let (got_status, _, body) = read(response).await;
            assert_eq!((got_status, body), (status, b"{}".to_vec()));
        }
    }

    #[test]
    async fn compiled_in_bodies_are_answered_exactly_every_time() {
        const TEXT: Option<&str> = Some("text/plain;charset=UTF-8");
        // Not UTF-8 first, so that the indexes of the strings kept after it are
        // checked; two of one length and two at one address, told apart; a
        // byte-order mark, which is part of the body.
        static BINARY: &[u8] = b"\xff\xfe not text";
        static ONE: &[u8] = b"one compiled-in text";
        static TWO: &[u8] = b"two compiled-in text";
        static BOM: &[u8] = b"\xef\xbb\xbfmarked";
        let bodies = [BINARY, ONE, TWO, &TWO[4..], &TWO[..3], BOM];
        for _ in 0..3 {
            for body in bodies {
                let answer = read(respond_static_text(body)).await;
                assert_eq!(answer, (200, TEXT.map(String::from), body.to_vec()));
            }
            // Each decoded on its first answer only.
            assert_eq!(remembered(), bodies.len());
        }

        // Fill the list, then past it: bodies are decoded per answer, still exactly.
        for n in remembered()..MAX_REMEMBERED {
            let body: &'static [u8] = format!("body {n}").into_bytes().leak();
            assert_eq!(read(respond_static_text(body)).await.2, body);
        }
        assert_eq!(remembered(), MAX_REMEMBERED);
        let past: &'static [u8] = b"past the list";
        for _ in 0..2 {
            assert_eq!(read(respond_static_text(past)).await.2, past);
        }
        assert_eq!(remembered(), MAX_REMEMBERED);
    }
}
