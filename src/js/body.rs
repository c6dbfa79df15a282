//! Bodies that stay in JS: the incoming request's, and streams passed through
//! (an origin's response). Read into wasm memory only when something asks.

use std::any::Any;

use futures_util::future::LocalBoxFuture;
use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::body::{too_large, Body, HostBody};
use crate::error::{Error, ErrorKind};

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
}

impl HostBody for JsBody {
    fn read_to_end(
        self: Box<Self>,
        limit: usize,
    ) -> LocalBoxFuture<'static, Result<Vec<u8>, Error>> {
        Box::pin(async move {
            match self.into_stream() {
                Some(stream) => read_stream(stream, limit).await,
                None => Ok(Vec::new()),
            }
        })
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

impl Body {
    /// A body streamed from JS without being copied into wasm memory.
    pub fn from_stream(stream: web_sys::ReadableStream) -> Self {
        Body::from_host(Box::new(JsBody::Stream(stream)))
    }
}

/// `body` as a JS `fetch`/`Response` body: the stream when it is still in JS,
/// bytes otherwise, `null` when empty.
#[cfg(feature = "bindings")]
pub(crate) fn into_js_body(body: Body) -> wasm_bindgen::JsValue {
    use crate::body::Inner;
    use wasm_bindgen::JsValue;
    match body.0 {
        Inner::Host(host) => host
            .into_any()
            .downcast::<JsBody>()
            .ok()
            .and_then(|js| js.into_stream())
            .map_or(JsValue::NULL, Into::into),
        Inner::Bytes(bytes) => Uint8Array::from(&bytes[..]).into(),
        Inner::Static(bytes) => Uint8Array::from(bytes).into(),
        Inner::Empty | Inner::Deferred => JsValue::NULL,
    }
}

/// Reads a JS stream into memory, cancelling it as soon as it passes `limit` bytes.
async fn read_stream(stream: web_sys::ReadableStream, limit: usize) -> Result<Vec<u8>, Error> {
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let mut out = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|err| {
            Error::new(
                ErrorKind::BadRequest,
                format!("could not read the request body: {err:?}"),
            )
        })?;
        if Reflect::get(&chunk, &"done".into())
            .ok()
            .and_then(|d| d.as_bool())
            == Some(true)
        {
            return Ok(out);
        }
        let value: Uint8Array = Reflect::get(&chunk, &"value".into())
            .map_err(|_| Error::internal("a body chunk had no value"))?
            .unchecked_into();
        let len = value.length() as usize;
        if out.len() + len > limit {
            let _ = reader.cancel();
            return Err(too_large(limit));
        }
        let start = out.len();
        out.resize(start + len, 0);
        value.copy_to(&mut out[start..]);
    }
}
