//! The Cache API's default cache, keyed by URL strings, with answers passed as
//! plain values: a status, headers as JSON pairs and the body.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen(inline_js = r#"
// [status, headers as JSON pairs, body bytes], or undefined on a miss.
export function cache_match(key) {
  return caches.default.match(key).then(async (res) =>
    res === undefined
      ? undefined
      : [res.status, JSON.stringify([...res.headers]), new Uint8Array(await res.arrayBuffer())]);
}
export function cache_put(key, status, headers, body) {
  return caches.default.put(key, new Response(body, { status, headers: JSON.parse(headers) }));
}
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    fn cache_match(key: &str) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(catch)]
    fn cache_put(
        key: &str,
        status: u16,
        headers: &str,
        body: &[u8],
    ) -> Result<js_sys::Promise, JsValue>;
}

/// `caches.default.match(key)`: the status, the headers as JSON `[name,
/// value]` pairs and the body; `None` on a miss or when the cache fails.
pub(crate) async fn lookup(key: &str) -> Option<(u16, String, Vec<u8>)> {
    let found = super::settled(&cache_match(key).ok()?).await.ok()?;
    let found: js_sys::Array = found.dyn_into().ok()?;
    let status = found.get(0).as_f64()? as u16;
    let headers = found.get(1).as_string()?;
    let body = js_sys::Uint8Array::new(&found.get(2)).to_vec();
    Some((status, headers, body))
}

/// `caches.default.put(key, new Response(body, {status, headers}))`, with the
/// headers as JSON pairs. Answers whether the cache took it.
pub(crate) async fn store(key: &str, status: u16, headers: &str, body: &[u8]) -> bool {
    match cache_put(key, status, headers, body) {
        Ok(promise) => super::settled(&promise).await.is_ok(),
        Err(_) => false,
    }
}
