//! Small, allocation-light HTTP vocabulary: methods, status codes and headers.
//!
//! edgeway keeps its own types instead of the `http` crate's: the hot path only
//! needs a handful of operations, and every byte counts in a worker bundle.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use crate::error::{Error, ErrorKind};

/// An HTTP request method.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
    /// Any other token, e.g. `PURGE`.
    Other(Box<str>),
}

impl Method {
    /// Parses a method token. Known methods are matched case-sensitively, as HTTP requires.
    pub fn parse(token: &str) -> Self {
        match token {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "PATCH" => Self::Patch,
            "DELETE" => Self::Delete,
            "OPTIONS" => Self::Options,
            other => Self::Other(other.into()),
        }
    }

    /// The method token.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
            Self::Other(token) => token,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An HTTP status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusCode(u16);

macro_rules! status_codes {
    ($($name:ident = $code:literal, $reason:literal;)*) => {
        impl StatusCode {
            $(
                #[doc = concat!("`", stringify!($code), " ", $reason, "`")]
                pub const $name: StatusCode = StatusCode($code);
            )*

            /// The standard reason phrase, used as the problem `title`.
            pub fn reason(self) -> &'static str {
                match self.0 {
                    $($code => $reason,)*
                    400..=499 => "Client Error",
                    500..=599 => "Server Error",
                    _ => "Unknown Status",
                }
            }
        }
    };
}

status_codes! {
    OK = 200, "OK";
    CREATED = 201, "Created";
    ACCEPTED = 202, "Accepted";
    NO_CONTENT = 204, "No Content";
    MOVED_PERMANENTLY = 301, "Moved Permanently";
    FOUND = 302, "Found";
    SEE_OTHER = 303, "See Other";
    NOT_MODIFIED = 304, "Not Modified";
    TEMPORARY_REDIRECT = 307, "Temporary Redirect";
    PERMANENT_REDIRECT = 308, "Permanent Redirect";
    BAD_REQUEST = 400, "Bad Request";
    UNAUTHORIZED = 401, "Unauthorized";
    FORBIDDEN = 403, "Forbidden";
    NOT_FOUND = 404, "Not Found";
    METHOD_NOT_ALLOWED = 405, "Method Not Allowed";
    CONFLICT = 409, "Conflict";
    GONE = 410, "Gone";
    PAYLOAD_TOO_LARGE = 413, "Content Too Large";
    URI_TOO_LONG = 414, "URI Too Long";
    UNSUPPORTED_MEDIA_TYPE = 415, "Unsupported Media Type";
    UNPROCESSABLE_ENTITY = 422, "Unprocessable Content";
    TOO_MANY_REQUESTS = 429, "Too Many Requests";
    REQUEST_HEADER_FIELDS_TOO_LARGE = 431, "Request Header Fields Too Large";
    INTERNAL_SERVER_ERROR = 500, "Internal Server Error";
    BAD_GATEWAY = 502, "Bad Gateway";
    SERVICE_UNAVAILABLE = 503, "Service Unavailable";
    GATEWAY_TIMEOUT = 504, "Gateway Timeout";
}

impl StatusCode {
    /// A status from its number, if it is in 100..=599.
    pub fn from_u16(code: u16) -> Option<Self> {
        (100..=599).contains(&code).then_some(Self(code))
    }

    /// The number.
    pub fn as_u16(self) -> u16 {
        self.0
    }

    /// 2xx.
    pub fn is_success(self) -> bool {
        (200..300).contains(&self.0)
    }

    /// 4xx.
    pub fn is_client_error(self) -> bool {
        (400..500).contains(&self.0)
    }

    /// 5xx.
    pub fn is_server_error(self) -> bool {
        (500..600).contains(&self.0)
    }

    /// Statuses whose responses must not carry a body (RFC 9110 §6.4.1).
    pub fn forbids_body(self) -> bool {
        matches!(self.0, 100..=199 | 204 | 205 | 304)
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0, self.reason())
    }
}

/// An ordered, multi-valued header list with case-insensitive names.
///
/// Names are stored lowercased. Values are validated on insert: CR, LF and NUL are
/// rejected, which closes header injection at the source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderMap {
    // Values borrowed when compiled in: a response's content type costs no
    // allocation.
    entries: Vec<(Cow<'static, str>, Cow<'static, str>)>,
}

impl HeaderMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_ref())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_ref())
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Replaces every value of `name` with `value`.
    pub fn insert(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
    ) -> Result<(), Error> {
        let name = normalize_name(name.into())?;
        let value = checked_value(&name, value.into())?;
        self.entries.retain(|(key, _)| *key != name);
        self.entries.push((name, Cow::Owned(value)));
        Ok(())
    }

    /// Adds a value for `name`, keeping existing ones (e.g. `set-cookie`, `vary`).
    pub fn append(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
    ) -> Result<(), Error> {
        let name = normalize_name(name.into())?;
        let value = checked_value(&name, value.into())?;
        self.entries.push((name, Cow::Owned(value)));
        Ok(())
    }

    /// Removes every value of `name`.
    pub fn remove(&mut self, name: &str) {
        self.entries
            .retain(|(key, _)| !key.eq_ignore_ascii_case(name));
    }

    /// All `(name, value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds an entry the caller guarantees is valid (already lowercased and checked).
    pub(crate) fn push_trusted(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) {
        self.entries.push((name.into(), value.into()));
    }
}

fn normalize_name(name: Cow<'static, str>) -> Result<Cow<'static, str>, Error> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return Err(Error::new(
            ErrorKind::InvalidHeader,
            format!("invalid header name {name:?}"),
        ));
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Ok(Cow::Owned(name.to_ascii_lowercase()))
    } else {
        Ok(name)
    }
}

fn checked_value(name: &str, value: String) -> Result<String, Error> {
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(Error::new(
            ErrorKind::InvalidHeader,
            format!("header `{name}` has a CR, LF or NUL in its value"),
        ));
    }
    Ok(value)
}

/// The token of an `Authorization: Bearer <token>` value (the scheme is
/// case-insensitive); `None` for another scheme or an empty token.
#[cfg(feature = "bindings")]
pub(crate) fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The media type of a `content-type` value, lowercased, without parameters.
pub(crate) fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The scheme, host and port of an absolute URL; empty for a bare path.
#[cfg(feature = "aws")]
pub(crate) fn url_origin(url: &str) -> &str {
    &url[..split_url(url).0.start]
}

/// Splits an absolute URL or a bare path into the path's and the query's byte
/// ranges (the query without `?`, the fragment dropped).
pub(crate) fn split_url(url: &str) -> (Range<usize>, Option<Range<usize>>) {
    // A byte search: `str::find` with a string pattern sets up a two-way searcher,
    // which costs more than scanning a URL this short.
    let scheme_end = url.as_bytes().windows(3).position(|w| w == b"://");
    let start = match scheme_end {
        Some(scheme_end) => {
            let authority = scheme_end + 3;
            url[authority..]
                .find(['/', '?', '#'])
                .map_or(url.len(), |i| authority + i)
        }
        None => 0,
    };
    let end = url[start..]
        .find(['?', '#'])
        .map_or(url.len(), |i| start + i);
    let query = (url[end..].starts_with('?')).then(|| {
        let query_start = end + 1;
        let query_end = url[query_start..]
            .find('#')
            .map_or(url.len(), |i| query_start + i);
        query_start..query_end
    });
    (start..end, query)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn methods_round_trip() {
        for token in [
            "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PURGE",
        ] {
            assert_eq!(Method::parse(token).as_str(), token);
        }
        assert_eq!(Method::parse("get"), Method::Other("get".into()));
    }

    #[test]
    fn status_classes_and_reasons() {
        assert!(StatusCode::ACCEPTED.is_success());
        assert!(StatusCode::GONE.is_client_error());
        assert!(StatusCode::BAD_GATEWAY.is_server_error());
        assert_eq!(
            StatusCode::METHOD_NOT_ALLOWED.reason(),
            "Method Not Allowed"
        );
        assert_eq!(StatusCode::from_u16(418).unwrap().reason(), "Client Error");
        assert!(StatusCode::from_u16(99).is_none());
        assert!(StatusCode::NO_CONTENT.forbids_body());
    }

    #[test]
    fn headers_are_case_insensitive_and_multi_valued() {
        let mut headers = HeaderMap::new();
        headers.insert("Content-Type", "text/plain").unwrap();
        headers.append("vary", "origin").unwrap();
        headers.append("Vary", "accept").unwrap();
        assert_eq!(headers.get("content-type"), Some("text/plain"));
        assert_eq!(
            headers.get_all("VARY").collect::<Vec<_>>(),
            ["origin", "accept"]
        );
        headers.insert("vary", "*").unwrap();
        assert_eq!(headers.get_all("vary").collect::<Vec<_>>(), ["*"]);
        headers.remove("CONTENT-TYPE");
        assert!(!headers.contains("content-type"));
    }

    #[test]
    fn header_injection_is_rejected() {
        let mut headers = HeaderMap::new();
        let err = headers.insert("x-a", "1\r\nset-cookie: evil").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidHeader);
        assert!(headers.insert("bad name", "1").is_err());
        assert!(headers.insert("", "1").is_err());
    }

    #[test]
    fn media_type_strips_parameters() {
        assert_eq!(
            media_type("Application/JSON; charset=utf-8"),
            "application/json"
        );
        assert_eq!(media_type(""), "");
    }
}
