//! Bodies that stay in JS: the incoming request's, and streams passed through
//! (an origin's response). Read into wasm memory only when something asks.

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen(inline_js = r#"
// A number across the boundary instead of a header name in and its value out.
export function declared_length(request) {
  const value = request.headers.get("content-length");
  return value !== null && /^\s*[0-9]+\s*$/.test(value) ? Number(value) : -1;
}
"#)]
extern "C" {
    /// The request's `content-length` when it is a decimal number; -1 otherwise.
    fn declared_length(request: &web_sys::Request) -> f64;
}

/// A body on the JS side.
pub(crate) enum JsBody {
    /// The incoming request, whose body has not been read yet.
    Request(web_sys::Request),
    /// A JS stream, e.g. an origin's response body passed through untouched.
    Stream(web_sys::ReadableStream),
}

impl JsBody {
    /// The stream, if there is a body at all.
    pub fn into_stream(self) -> Option<web_sys::ReadableStream> {
        match self {
            JsBody::Request(request) => request.body(),
            JsBody::Stream(stream) => Some(stream),
        }
    }

    /// Reads it all, stopping as soon as it passes `limit` bytes.
    ///
    /// A request whose `content-length` is within the limit is read in one
    /// call (`arrayBuffer()`): workerd delivers no more than a request
    /// declares, and a stream read chunk by chunk costs a promise, a JS object
    /// and a copy per chunk (a quarter of the CPU of a 16 KB JSON POST,
    /// measured; BENCHMARKS.md). One that declares more than the limit is
    /// refused before anything is read: cutting an upload off mid-stream makes
    /// the runtime drop the connection instead of delivering the 413. Anything
    /// else (chunked, undeclared, a stream passed through) is read chunk by
    /// chunk and cancelled past the limit.
    pub async fn read(self, limit: usize) -> Result<Vec<u8>, ReadError> {
        if let JsBody::Request(request) = &self {
            let declared = declared_length(request);
            if declared > limit as f64 {
                return Err(ReadError::TooLarge);
            }
            if declared >= 0.0 {
                return read_whole(request, declared as usize, limit).await;
            }
        }
        match self.into_stream() {
            Some(stream) => read_stream(stream, limit).await,
            None => Ok(Vec::new()),
        }
    }
}

/// Why a JS body could not be read.
pub(crate) enum ReadError {
    /// It passed the limit; the stream was cancelled.
    TooLarge,
    /// The stream failed, with the runtime's message.
    Failed(String),
}

/// A request body of `declared` bytes, read in one call and checked again
/// against `limit` once read.
async fn read_whole(
    request: &web_sys::Request,
    declared: usize,
    limit: usize,
) -> Result<Vec<u8>, ReadError> {
    if declared == 0 {
        return Ok(Vec::new());
    }
    let promise = request
        .array_buffer()
        .map_err(|err| ReadError::Failed(format!("{err:?}")))?;
    let buffer = super::settled(&promise)
        .await
        .map_err(|err| ReadError::Failed(format!("{err:?}")))?;
    let bytes = Uint8Array::new(&buffer);
    if bytes.length() as usize > limit {
        return Err(ReadError::TooLarge);
    }
    Ok(bytes.to_vec())
}

/// Reads a JS stream into memory, cancelling it as soon as it passes `limit` bytes.
async fn read_stream(stream: web_sys::ReadableStream, limit: usize) -> Result<Vec<u8>, ReadError> {
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let mut out = Vec::new();
    loop {
        let chunk = super::settled(&reader.read())
            .await
            .map_err(|err| ReadError::Failed(format!("{err:?}")))?;
        if Reflect::get(&chunk, &"done".into())
            .ok()
            .and_then(|d| d.as_bool())
            == Some(true)
        {
            return Ok(out);
        }
        let value: Uint8Array = Reflect::get(&chunk, &"value".into())
            .map_err(|_| ReadError::Failed("a body chunk had no value".into()))?
            .unchecked_into();
        let len = value.length() as usize;
        if out.len() + len > limit {
            let _ = reader.cancel();
            return Err(ReadError::TooLarge);
        }
        let start = out.len();
        out.resize(start + len, 0);
        value.copy_to(&mut out[start..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn post(content_length: Option<&str>, body: &str) -> web_sys::Request {
        let headers = web_sys::Headers::new().unwrap();
        if let Some(value) = content_length {
            headers.set("content-length", value).unwrap();
        }
        let init = web_sys::RequestInit::new();
        init.set_method("POST");
        init.set_headers(&headers);
        init.set_body(&JsValue::from_str(body));
        web_sys::Request::new_with_str_and_init("http://edgeway.test/", &init).unwrap()
    }

    #[test]
    fn only_a_decimal_content_length_is_a_declared_length() {
        for (value, expected) in [
            (Some("5"), 5.0),
            (Some(" 12 "), 12.0),
            (Some("0"), 0.0),
            (Some("1e3"), -1.0),
            (Some("0x10"), -1.0),
            (Some("-3"), -1.0),
            (Some(""), -1.0),
            (None, -1.0),
        ] {
            assert_eq!(declared_length(&post(value, "")), expected, "{value:?}");
        }
    }

    #[test]
    async fn a_declared_length_over_the_limit_is_refused_and_one_within_read_whole() {
        // Refused without reading a byte.
        let request = post(Some("5"), "hello");
        let refused = JsBody::Request(Clone::clone(&request)).read(4).await;
        assert!(matches!(refused, Err(ReadError::TooLarge)));
        assert!(!request.body_used());
        let within = JsBody::Request(post(Some("5"), "hello")).read(5).await;
        assert_eq!(within.ok(), Some(b"hello".to_vec()));
        // Undeclared: read as a stream, the limit held on the bytes.
        let undeclared = JsBody::Request(post(None, "hello"));
        assert_eq!(undeclared.read(5).await.ok(), Some(b"hello".to_vec()));
        let undeclared = JsBody::Request(post(None, "hello"));
        assert!(matches!(undeclared.read(4).await, Err(ReadError::TooLarge)));
    }
}
