//! Responses and the [`IntoResponse`] conversion that handlers return through.

use std::borrow::Cow;

use crate::body::Body;
use crate::error::Error;
use crate::http::{HeaderMap, StatusCode};

/// An outgoing response.
#[derive(Debug)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Body,
    internal_error: Option<String>,
}

impl Response {
    /// A response with `status`, no headers and `body`.
    pub fn new(status: StatusCode, body: impl Into<Body>) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            body: body.into(),
            internal_error: None,
        }
    }

    /// Starts a response with `status`.
    pub fn builder(status: StatusCode) -> ResponseBuilder {
        ResponseBuilder {
            response: Self::new(status, Body::empty()),
            error: None,
        }
    }

    /// A `308 Permanent Redirect` to `location`, which keeps the method and body.
    pub fn permanent_redirect(location: &str) -> Self {
        Self::redirect(StatusCode::PERMANENT_REDIRECT, location)
    }

    /// A `307 Temporary Redirect` to `location`, which keeps the method and body.
    pub fn temporary_redirect(location: &str) -> Self {
        Self::redirect(StatusCode::TEMPORARY_REDIRECT, location)
    }

    /// A `303 See Other` to `location`: the client follows it with a `GET`, as
    /// after a form `POST` that created something.
    pub fn see_other(location: &str) -> Self {
        Self::redirect(StatusCode::SEE_OTHER, location)
    }

    /// A `302 Found` to `location`, the classic temporary redirect (clients may
    /// turn a `POST` into a `GET`; use [`Response::temporary_redirect`] to forbid that).
    pub fn found(location: &str) -> Self {
        Self::redirect(StatusCode::FOUND, location)
    }

    fn redirect(status: StatusCode, location: &str) -> Self {
        Self::builder(status)
            .header("location", location)
            .body(Body::empty())
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Sets the status.
    pub fn set_status(&mut self, status: StatusCode) {
        self.status = status;
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Mutable headers.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// Replaces the body, returning the old one.
    pub fn replace_body(&mut self, body: impl Into<Body>) -> Body {
        std::mem::replace(&mut self.body, body.into())
    }

    /// The body as text when it is in memory and UTF-8; empty otherwise. For tests and logs.
    pub fn body_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.body.as_bytes().unwrap_or_default())
    }

    /// The detail of a server error this response stands for, kept for the log and
    /// never sent to the client.
    pub fn internal_error(&self) -> Option<&str> {
        self.internal_error.as_deref()
    }

    /// Records the detail of a server error for the request's log line.
    pub fn set_internal_error(&mut self, detail: String) {
        self.internal_error = Some(detail);
    }

    #[cfg(target_arch = "wasm32")]
    pub(crate) fn into_parts(self) -> (StatusCode, HeaderMap, Body) {
        (self.status, self.headers, self.body)
    }
}

/// Builds a [`Response`]. An invalid header turns the result into a 500, and the
/// reason is logged, so a typo in a header name can never send a malformed response.
#[must_use]
pub struct ResponseBuilder {
    response: Response,
    error: Option<Error>,
}

impl ResponseBuilder {
    /// Appends a header.
    pub fn header(mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) -> Self {
        if self.error.is_none() {
            if let Err(err) = self.response.headers.append(name, value) {
                self.error = Some(err);
            }
        }
        self
    }

    /// Finishes with `body`.
    pub fn body(mut self, body: impl Into<Body>) -> Response {
        match self.error {
            Some(err) => Error::internal(format!("invalid response header: {}", err.detail()))
                .into_response(),
            None => {
                self.response.body = body.into();
                self.response
            }
        }
    }
}

/// Anything a handler can return.
///
/// Implemented for strings (`text/plain`), [`Json`](crate::Json), [`StatusCode`],
/// `(StatusCode, T)`, header arrays `[(name, value); N]` in front of a body,
/// [`Response`], [`Error`] and `Result<T, E>` where both sides convert.
pub trait IntoResponse {
    /// Converts into a response.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        Response::new(self, Body::empty())
    }
}

impl IntoResponse for () {
    fn into_response(self) -> Response {
        StatusCode::NO_CONTENT.into_response()
    }
}

/// The content type of text answers: exactly what the runtime gives a
/// `Response` made from a string, so a text answer can be made that way
/// (`runtime::respond`).
pub(crate) const TEXT_PLAIN: &str = "text/plain;charset=UTF-8";

/// A response of `status` and `body` whose one header is the compiled-in
/// `content_type` (which allocates nothing).
pub(crate) fn typed(status: StatusCode, content_type: &'static str, body: Body) -> Response {
    let mut response = Response::new(status, body);
    response.headers.push_trusted("content-type", content_type);
    response
}

fn text(body: Body) -> Response {
    typed(StatusCode::OK, TEXT_PLAIN, body)
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        text(Body::from(self))
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        text(Body::from(self))
    }
}

impl IntoResponse for Cow<'static, str> {
    fn into_response(self) -> Response {
        text(Body::from(self.into_owned()))
    }
}

impl IntoResponse for Vec<u8> {
    fn into_response(self) -> Response {
        typed(StatusCode::OK, "application/octet-stream", self.into())
    }
}

impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(value) => value.into_response(),
            Err(err) => err.into_response(),
        }
    }
}

impl<T: IntoResponse> IntoResponse for (StatusCode, T) {
    fn into_response(self) -> Response {
        let mut response = self.1.into_response();
        response.status = self.0;
        response
    }
}

impl<K, V, const N: usize, T> IntoResponse for ([(K, V); N], T)
where
    K: Into<Cow<'static, str>>,
    V: Into<String>,
    T: IntoResponse,
{
    fn into_response(self) -> Response {
        let mut response = self.1.into_response();
        for (name, value) in self.0 {
            if let Err(err) = response.headers.insert(name, value) {
                return Error::internal(format!("invalid response header: {}", err.detail()))
                    .into_response();
            }
        }
        response
    }
}

impl<K, V, const N: usize, T> IntoResponse for (StatusCode, [(K, V); N], T)
where
    K: Into<Cow<'static, str>>,
    V: Into<String>,
    T: IntoResponse,
{
    fn into_response(self) -> Response {
        (self.0, (self.1, self.2).into_response()).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn strings_are_plain_text() {
        let response = "hi".into_response();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers().get("content-type"),
            Some("text/plain;charset=UTF-8")
        );
        assert_eq!(response.body_text(), "hi");
    }

    #[test]
    fn tuples_set_status_and_headers() {
        let response = (
            StatusCode::CREATED,
            [("location", "/items/1")],
            String::from("made"),
        )
            .into_response();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers().get("location"), Some("/items/1"));
        assert_eq!(response.body_text(), "made");
    }

    #[test]
    fn results_render_either_side() {
        let ok: Result<&'static str, Error> = Ok("fine");
        assert_eq!(ok.into_response().status(), StatusCode::OK);
        let err: Result<&'static str, Error> = Err(Error::bad_request("nope"));
        let response = err.into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(response.body_text().contains("nope"));
    }

    #[test]
    fn an_invalid_header_becomes_a_500_not_a_malformed_response() {
        let response = ([("x-bad", "a\nb")], "body").into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let response = Response::builder(StatusCode::OK)
            .header("bad name", "v")
            .body("x");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn unit_is_no_content() {
        assert_eq!(().into_response().status(), StatusCode::NO_CONTENT);
    }

    #[test]
    fn redirect_helpers_set_their_status_and_location() {
        for (response, status) in [
            (Response::found("/a"), 302),
            (Response::see_other("/a"), 303),
            (Response::temporary_redirect("/a"), 307),
            (Response::permanent_redirect("/a"), 308),
        ] {
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(response.headers().get("location"), Some("/a"));
            assert!(response.body_text().is_empty());
        }
    }
}
