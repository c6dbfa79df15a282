//! Request and response bodies: bytes in memory, or (on wasm) a body that stays
//! in JS until something reads it.

use crate::error::{Error, ErrorKind};

/// A body. Natively it is always bytes; on wasm it can also live on the JS side
/// until something reads it, so a handler that ignores the body never pays for
/// copying it into wasm memory.
#[derive(Default)]
pub struct Body(pub(crate) Inner);

#[derive(Default)]
pub(crate) enum Inner {
    #[default]
    Empty,
    Bytes(Vec<u8>),
    /// Compiled-in bytes (`&'static str` responses): no allocation, no copy. They
    /// stay as they are for the isolate's life, so their text is decoded once
    /// per isolate (`js::respond_static_text`).
    Static(&'static [u8]),
    /// The incoming request's body, not touched yet: it stays in JS and costs
    /// nothing unless [`Request::take_body`](crate::Request::take_body) resolves it.
    #[cfg(target_arch = "wasm32")]
    Deferred,
    /// A body in JS: the request's, or a stream passed through.
    #[cfg(target_arch = "wasm32")]
    Js(crate::js::JsBody),
}

impl Body {
    /// An empty body.
    pub fn empty() -> Self {
        Self(Inner::Empty)
    }

    /// The bytes, if the body is already in memory.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.0 {
            Inner::Empty => Some(&[]),
            Inner::Bytes(bytes) => Some(bytes),
            Inner::Static(bytes) => Some(bytes),
            #[cfg(target_arch = "wasm32")]
            _ => None,
        }
    }

    /// Reads the whole body, failing with 413 as soon as it exceeds `limit` bytes.
    ///
    /// The limit is enforced on the bytes actually read, not on `content-length`, so a
    /// client that lies about its length is still cut off.
    pub async fn read_to_end(self, limit: usize) -> Result<Vec<u8>, Error> {
        let bytes = match self.0 {
            Inner::Empty => Vec::new(),
            #[cfg(target_arch = "wasm32")]
            Inner::Deferred => Vec::new(),
            Inner::Bytes(bytes) => bytes,
            Inner::Static(bytes) => bytes.to_vec(),
            #[cfg(target_arch = "wasm32")]
            Inner::Js(js) => js.read(limit).await.map_err(|err| match err {
                crate::js::ReadError::TooLarge => too_large(limit),
                crate::js::ReadError::Failed(why) => Error::new(
                    ErrorKind::BadRequest,
                    format!("could not read the request body: {why}"),
                ),
            })?,
        };
        if bytes.len() > limit {
            return Err(too_large(limit));
        }
        Ok(bytes)
    }
}

pub(crate) fn too_large(limit: usize) -> Error {
    Error::new(
        ErrorKind::PayloadTooLarge,
        format!("the request body is larger than this route's limit of {limit} bytes"),
    )
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Self(Inner::Bytes(bytes))
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Self(Inner::Bytes(text.into_bytes()))
    }
}

/// Compiled-in text. The bytes must not change while the isolate lives (memory
/// leaked and later taken back with `Box::from_raw` breaks that): a text answer
/// of them is decoded to a JS string once and kept.
impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Self(Inner::Static(text.as_bytes()))
    }
}

/// Compiled-in bytes, which must not change while the isolate lives (see the
/// `&'static str` conversion).
impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Self {
        Self(Inner::Static(bytes))
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Inner::Empty => f.write_str("Body::Empty"),
            Inner::Bytes(bytes) => write!(f, "Body::Bytes({} bytes)", bytes.len()),
            Inner::Static(bytes) => write!(f, "Body::Static({} bytes)", bytes.len()),
            #[cfg(target_arch = "wasm32")]
            _ => f.write_str("Body::Js"),
        }
    }
}
