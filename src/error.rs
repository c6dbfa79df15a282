//! The framework's one error type, rendered as RFC 9457 `application/problem+json`.

use std::borrow::Cow;
use std::fmt;

use crate::http::StatusCode;
use crate::response::{IntoResponse, Response};

/// What went wrong, as a stable machine-readable category.
///
/// Each kind maps to one problem `type` URI (`urn:edgeway:problem:<slug>`) and a
/// default status, so clients can branch on `type` rather than parse `detail`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No route matches the path.
    NotFound,
    /// The path exists, but not for this method.
    MethodNotAllowed,
    /// The request body is not valid JSON.
    InvalidJson,
    /// The JSON is well formed but does not fit the expected shape.
    JsonShape,
    /// The input has the right shape but breaks a rule (a range, a length, a
    /// format); the problem's `errors` member lists each violation (422).
    Validation,
    /// The `content-type` is missing or not the one the handler reads.
    UnsupportedMediaType,
    /// A path parameter does not parse as the handler's type.
    InvalidPathParam,
    /// The query string does not parse as the handler's type.
    InvalidQuery,
    /// A urlencoded form body does not parse.
    InvalidForm,
    /// The body is not valid UTF-8 where text was expected.
    InvalidUtf8,
    /// The body is larger than the route's limit.
    PayloadTooLarge,
    /// A header is missing, malformed or not allowed.
    InvalidHeader,
    /// Any other client error with its own status.
    BadRequest,
    /// A cross-origin request from an origin that is not allowed.
    CorsRejected,
    /// A URL that must not be called: an internal address, a disallowed scheme.
    UnsafeUrl,
    /// Two routes conflict; returned by [`App::build`](crate::App::build).
    RouteConflict,
    /// A route pattern is malformed; returned by [`App::build`](crate::App::build).
    InvalidRoute,
    /// A handler asked for state that was never registered with [`App::state`](crate::App::state).
    MissingState,
    /// The request's signature or credentials do not verify (401).
    Unauthorized,
    /// The credentials verify but do not allow this route (403).
    Forbidden,
    /// An upstream service (e.g. Lambda) failed or could not be reached (502).
    /// Retryable.
    Upstream,
    /// This client sent more requests than its rate limit allows (429), with
    /// `Retry-After`. Retryable, after that.
    RateLimited,
    /// An upstream service throttled the call (503). Retryable, after
    /// [`Error::retry_after`] when the service said how long.
    Throttled,
    /// An upstream service refused the call for good: bad credentials, an unknown
    /// function, a malformed request (502). Not retryable.
    UpstreamRejected,
    /// A Lambda function ran and reported an error (`X-Amz-Function-Error`, 502).
    /// Not retryable: the same input fails the same way.
    FunctionError,
    /// A handler panicked; the request got a 500 and the isolate kept serving.
    Panic,
    /// Anything else that failed on the server. Its detail is logged, never sent.
    Internal,
    /// An error whose status says it all, made with [`Error::with_status`] (e.g. a
    /// 409 or a 410 from a handler). Its problem `type` is `about:blank`, which
    /// RFC 9457 (§4.2.1) reserves for problems with no meaning beyond the status.
    Status,
}

impl ErrorKind {
    /// The slug used in the problem `type` URI.
    pub fn slug(self) -> &'static str {
        match self {
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::InvalidJson => "invalid-json",
            Self::JsonShape => "json-shape",
            Self::Validation => "validation",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::InvalidPathParam => "invalid-path-param",
            Self::InvalidQuery => "invalid-query",
            Self::InvalidForm => "invalid-form",
            Self::InvalidUtf8 => "invalid-utf8",
            Self::PayloadTooLarge => "payload-too-large",
            Self::InvalidHeader => "invalid-header",
            Self::BadRequest => "bad-request",
            Self::CorsRejected => "cors-rejected",
            Self::UnsafeUrl => "unsafe-url",
            Self::RouteConflict => "route-conflict",
            Self::InvalidRoute => "invalid-route",
            Self::MissingState => "missing-state",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::Upstream => "upstream",
            Self::RateLimited => "rate-limited",
            Self::Throttled => "throttled",
            Self::UpstreamRejected => "upstream-rejected",
            Self::FunctionError => "function-error",
            Self::Panic => "panic",
            Self::Internal => "internal",
            Self::Status => "status",
        }
    }

    fn default_status(self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::JsonShape | Self::Validation | Self::UnsafeUrl => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::CorsRejected | Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Upstream | Self::UpstreamRejected | Self::FunctionError => {
                StatusCode::BAD_GATEWAY
            }
            Self::Throttled => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::InvalidJson
            | Self::InvalidPathParam
            | Self::InvalidQuery
            | Self::InvalidForm
            | Self::InvalidUtf8
            | Self::InvalidHeader
            | Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::RouteConflict
            | Self::InvalidRoute
            | Self::MissingState
            | Self::Panic
            | Self::Internal
            | Self::Status => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The framework's error: a status, a kind and a human-readable detail.
///
/// Client errors (4xx) render their `detail` in the response. Server errors (5xx)
/// render a generic detail; the real one is kept for the log line, which carries
/// the request id, so nothing internal leaks to the client.
///
/// Any `std::error::Error` converts into an internal (500) `Error`, so `?` works in
/// handlers that return `Result<T, edgeway::Error>`. (Like `anyhow::Error`, this type
/// does not itself implement `std::error::Error`, which is what makes that blanket
/// conversion possible.)
///
/// ```
/// use edgeway::{Error, ErrorKind, StatusCode};
/// let err = Error::new(ErrorKind::BadRequest, "`name` must not be empty");
/// assert_eq!(err.status(), StatusCode::BAD_REQUEST);
/// assert!(err.to_problem_json().contains("must not be empty"));
/// ```
pub struct Error {
    kind: ErrorKind,
    status: StatusCode,
    detail: Cow<'static, str>,
    /// Extension members, each value already JSON text: serialized when added,
    /// so only a worker that calls [`Error::with_json_member`] (or uses a part
    /// of edgeway that does, like `Valid`) links `serde_json::Value`'s serializer.
    extra: Vec<(&'static str, Box<str>)>,
    retry_after: Option<u32>,
    permanent: bool,
}

impl Error {
    /// An error of `kind` with its default status.
    pub fn new(kind: ErrorKind, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            status: kind.default_status(),
            detail: detail.into(),
            extra: Vec::new(),
            retry_after: None,
            permanent: false,
        }
    }

    /// An error with an explicit status, e.g. 409 or 410 from a handler. Its
    /// problem `type` is `about:blank` and its `title` the status's reason, so the
    /// document never claims a meaning the status does not have. As with every
    /// server error, a 5xx detail is logged, never sent.
    ///
    /// ```
    /// use edgeway::{Error, StatusCode};
    /// let err = Error::with_status(StatusCode::CONFLICT, "job 7 has already ended");
    /// let doc: serde_json::Value = serde_json::from_str(&err.to_problem_json()).unwrap();
    /// assert_eq!(doc["type"], "about:blank");
    /// assert_eq!(doc["title"], "Conflict");
    /// assert_eq!(doc["status"], 409);
    /// ```
    pub fn with_status(status: StatusCode, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind: ErrorKind::Status,
            status,
            detail: detail.into(),
            extra: Vec::new(),
            retry_after: None,
            permanent: false,
        }
    }

    /// A 400 with `detail`.
    pub fn bad_request(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::BadRequest, detail)
    }

    /// A 404 with `detail`.
    pub fn not_found(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::NotFound, detail)
    }

    /// A 500 whose `detail` is logged, never sent.
    pub fn internal(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Internal, detail)
    }

    /// The same error (kind, status, members) with a new detail.
    #[cfg_attr(not(feature = "bindings"), allow(dead_code))]
    pub(crate) fn with_detail(mut self, detail: impl Into<Cow<'static, str>>) -> Self {
        self.detail = detail.into();
        self
    }

    /// Adds an extension member to the problem document (RFC 9457 §3.2).
    pub fn with_member(mut self, name: &'static str, value: impl Into<String>) -> Self {
        let value: String = value.into();
        self.extra
            .push((name, crate::json_text::to_json_text(&value)));
        self
    }

    /// Adds an extension member whose value is any JSON (a list of violations).
    pub fn with_json_member(mut self, name: &'static str, value: serde_json::Value) -> Self {
        self.extra
            .push((name, crate::json_text::to_json_text(&value)));
        self
    }

    /// Says how many seconds to wait before retrying (e.g. an upstream's
    /// `Retry-After`). Rendered as the `retry-after` response header.
    pub fn with_retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Seconds to wait before retrying, when known.
    pub fn retry_after(&self) -> Option<u32> {
        self.retry_after
    }

    /// Marks the failure as one that trying again cannot fix (a declined card, a
    /// malformed order): a workflow step that fails with it is not retried.
    pub fn permanent(mut self) -> Self {
        self.permanent = true;
        self
    }

    /// Whether trying again cannot help: marked with [`Error::permanent`], or an
    /// upstream that refused the call or a function that reported an error.
    pub fn is_permanent(&self) -> bool {
        self.permanent
            || matches!(
                self.kind,
                ErrorKind::UpstreamRejected | ErrorKind::FunctionError
            )
    }

    /// Whether trying the same thing again later may succeed: a throttled or
    /// failing upstream.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Upstream | ErrorKind::Throttled | ErrorKind::RateLimited
        )
    }

    /// The category.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status it renders with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The full detail, including for server errors. Meant for logs.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The problem `type` URI: `urn:edgeway:problem:<slug>`, or `about:blank` for
    /// [`ErrorKind::Status`].
    pub fn type_uri(&self) -> String {
        if self.kind == ErrorKind::Status {
            return "about:blank".to_owned();
        }
        format!("urn:edgeway:problem:{}", self.kind.slug())
    }

    /// The problem document as JSON. Server errors get a generic detail.
    pub fn to_problem_json(&self) -> String {
        let detail: &str = if self.status.is_server_error() {
            "The server could not complete the request; see the log entry for this request id."
        } else {
            &self.detail
        };
        // Written member by member rather than built as a map: the map code
        // would be linked into every worker for this one document.
        let mut doc = crate::json_text::JsonObject::with_capacity(128 + detail.len());
        doc.field("type", &self.type_uri())
            .field("title", self.status.reason())
            .field("status", &self.status.as_u16())
            .field("detail", detail);
        for (name, value) in &self.extra {
            // The standard members are not overridden by an extension.
            if !matches!(*name, "type" | "title" | "status" | "detail") {
                doc.raw_field(name, value);
            }
        }
        doc.finish()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("status", &self.status.as_u16())
            .field("detail", &self.detail)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.status.reason(),
            self.kind.slug(),
            self.detail
        )
    }
}

impl<E: std::error::Error + 'static> From<E> for Error {
    fn from(err: E) -> Self {
        Self::internal(err.to_string())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let mut response = crate::response::typed(
            self.status,
            "application/problem+json",
            self.to_problem_json().into(),
        );
        if let Some(seconds) = self.retry_after {
            // A decimal number is always a valid header value.
            let _ = response
                .headers_mut()
                .insert("retry-after", seconds.to_string());
        }
        if self.status.is_server_error() {
            response.set_internal_error(self.detail.into_owned());
        }
        response
    }
}

#[cfg(feature = "signing")]
impl Error {
    /// An [`edgeway_protocol`] error as a problem: secrets that do not parse and
    /// job invocations that lack a field are 400s, signatures that do not verify
    /// 401s. (It is not a `std::error::Error`, so `?` cannot make it a 500.)
    pub fn from_protocol(err: edgeway_protocol::Error) -> Self {
        let kind = match err.kind() {
            edgeway_protocol::ErrorKind::Unauthorized => ErrorKind::Unauthorized,
            _ => ErrorKind::BadRequest,
        };
        Error::new(kind, err.detail().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn client_errors_render_their_detail() {
        let body = Error::new(ErrorKind::InvalidPathParam, "`id` must be u32").to_problem_json();
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["type"], "urn:edgeway:problem:invalid-path-param");
        assert_eq!(doc["title"], "Bad Request");
        assert_eq!(doc["status"], 400);
        assert_eq!(doc["detail"], "`id` must be u32");
    }

    #[test]
    fn server_errors_hide_their_detail_but_keep_it_for_the_log() {
        let err = Error::internal("db password is hunter2");
        assert!(!err.to_problem_json().contains("hunter2"));
        let response = err.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.internal_error(), Some("db password is hunter2"));
        assert!(!response.body_text().contains("hunter2"));
        assert_eq!(
            response.headers().get("content-type"),
            Some("application/problem+json")
        );
    }

    #[test]
    fn std_errors_become_internal() {
        fn parse() -> Result<u8, Error> {
            Ok("300".parse::<u8>()?)
        }
        assert_eq!(parse().unwrap_err().kind(), ErrorKind::Internal);
    }

    #[test]
    fn extension_members_are_rendered() {
        let body = Error::bad_request("x")
            .with_member("param", "id")
            .with_json_member("errors", serde_json::json!([{"path": "a"}]))
            // An extension cannot replace a standard member.
            .with_member("status", "nope")
            .to_problem_json();
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["param"], "id");
        assert_eq!(doc["errors"][0]["path"], "a");
        assert_eq!(doc["status"], 400);
        assert_eq!(body.matches("\"status\"").count(), 1, "{body}");
    }

    #[test]
    fn an_explicit_status_is_about_blank_with_its_own_title() {
        let conflict = Error::with_status(StatusCode::CONFLICT, "job 7 has already ended");
        let doc: serde_json::Value = serde_json::from_str(&conflict.to_problem_json()).unwrap();
        assert_eq!(doc["type"], "about:blank");
        assert_eq!(doc["title"], "Conflict");
        assert_eq!(doc["status"], 409);
        assert_eq!(doc["detail"], "job 7 has already ended");

        // A 5xx keeps its detail for the log, as every server error does.
        let down = Error::with_status(StatusCode::SERVICE_UNAVAILABLE, "JOBS_SIGNING_KEY unset");
        let doc: serde_json::Value = serde_json::from_str(&down.to_problem_json()).unwrap();
        assert_eq!(doc["type"], "about:blank");
        assert_eq!(doc["status"], 503);
        assert!(!doc["detail"].as_str().unwrap().contains("JOBS_SIGNING_KEY"));
    }
}
