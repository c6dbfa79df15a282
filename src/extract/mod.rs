//! Extractors: typed views of a request that handlers take as arguments.
//!
//! Parts extractors ([`FromRequestParts`]) read without consuming and may appear in
//! any position. Body extractors ([`FromRequest`]) consume the request and must be
//! the last argument. Every failure is an [`Error`] that renders as problem+json.

mod form;
mod json;
mod path;
mod query;
mod state;
mod url;
#[cfg(feature = "validate")]
mod valid;

pub use form::Form;
pub use json::Json;
pub use path::Path;
pub use query::Query;
pub use state::State;
pub use url::{Origin, Url};
#[cfg(feature = "validate")]
pub use valid::{Valid, Validated};

use std::future::Future;

use crate::error::{Error, ErrorKind};
use crate::http::{HeaderMap, Method};
use crate::request::Request;

/// Extracts a value from the request without consuming it.
pub trait FromRequestParts: Sized {
    /// Reads `Self` from `req`.
    fn from_request_parts(req: &mut Request) -> Result<Self, Error>;
}

/// Extracts a value by consuming the request (typically its body).
///
/// `M` is a marker that lets every [`FromRequestParts`] type also be used in the last
/// position; you never name it.
pub trait FromRequest<M = private::ViaRequest>: Sized {
    /// Reads `Self` from `req`.
    fn from_request(req: Request) -> impl Future<Output = Result<Self, Error>>;
}

mod private {
    /// Marker: the type implements [`FromRequest`](super::FromRequest) directly.
    pub enum ViaRequest {}
    /// Marker: the type implements [`FromRequestParts`](super::FromRequestParts).
    pub enum ViaParts {}
}

impl<T: FromRequestParts> FromRequest<private::ViaParts> for T {
    async fn from_request(mut req: Request) -> Result<Self, Error> {
        T::from_request_parts(&mut req)
    }
}

impl FromRequest for Request {
    async fn from_request(req: Request) -> Result<Self, Error> {
        Ok(req)
    }
}

impl FromRequestParts for Method {
    fn from_request_parts(req: &mut Request) -> Result<Self, Error> {
        Ok(req.method().clone())
    }
}

impl FromRequestParts for HeaderMap {
    fn from_request_parts(req: &mut Request) -> Result<Self, Error> {
        Ok(req.headers())
    }
}

/// The raw body, limited by the route's body limit.
impl FromRequest for Vec<u8> {
    async fn from_request(mut req: Request) -> Result<Self, Error> {
        req.bytes().await
    }
}

/// The body as UTF-8 text, limited by the route's body limit.
impl FromRequest for String {
    async fn from_request(mut req: Request) -> Result<Self, Error> {
        let bytes = req.bytes().await?;
        String::from_utf8(bytes).map_err(|err| {
            Error::new(
                ErrorKind::InvalidUtf8,
                format!(
                    "the request body is not valid UTF-8 (invalid byte at offset {})",
                    err.utf8_error().valid_up_to()
                ),
            )
        })
    }
}

/// Fails with 415 unless the request's media type satisfies `accepts`.
pub(crate) fn require_content_type(
    req: &Request,
    expected: &str,
    accepts: impl Fn(&str) -> bool,
) -> Result<(), Error> {
    let found = req.header("content-type");
    let media = found.as_deref().map(crate::http::media_type);
    match media {
        Some(media) if accepts(&media) => Ok(()),
        Some(media) => Err(Error::new(
            ErrorKind::UnsupportedMediaType,
            format!("expected `content-type: {expected}`, got `{media}`"),
        )),
        None => Err(Error::new(
            ErrorKind::UnsupportedMediaType,
            format!("expected `content-type: {expected}`, but the request has no content-type"),
        )),
    }
}
