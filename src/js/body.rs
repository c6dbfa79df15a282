//! Bodies that stay in JS: the incoming request's, and streams passed through
//! (an origin's response). Read into wasm memory only when something asks.

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::JsCast;

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
    /// measured; BENCHMARKS.md). Anything else (chunked, undeclared, a stream
    /// passed through) is read chunk by chunk and cancelled past the limit.
    pub async fn read(self, limit: usize) -> Result<Vec<u8>, ReadError> {
        if let JsBody::Request(request) = &self {
            let declared = request
                .headers()
                .get("content-length")
                .ok()
                .flatten()
                .and_then(|v| v.trim().parse::<usize>().ok());
            if let Some(declared) = declared.filter(|&n| n <= limit) {
                return read_whole(request, declared, limit).await;
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
