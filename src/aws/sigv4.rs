//! AWS Signature Version 4, as pure code on `hmac` and `sha2`.
//!
//! No clock and no I/O: the caller passes the signing time (on wasm32
//! `SystemTime::now()` panics, so the Lambda client takes it from JS `Date.now()`).
//! Both forms are supported: the `Authorization` header ([`sign`]) and the presigned
//! query string ([`presign`]). The official `aws-signing-test-suite/v4` vectors run
//! against both in `tests/sigv4_suite.rs`, natively and on wasm32.
//!
//! ```
//! use edgeway::aws::sigv4::{sign, Credentials, SigningParams, UnsignedRequest};
//! let credentials = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
//! let params = SigningParams::new(&credentials, "us-east-1", "service", 1_440_938_160);
//! let request = UnsignedRequest::new("GET", "/", "", &[("host", "example.amazonaws.com")], b"");
//! let signed = sign(&request, &params);
//! assert!(signed.authorization().unwrap().ends_with(
//!     "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"));
//! ```

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The algorithm name in the string to sign and the `Authorization` header.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// RFC 3986 unreserved characters stay; every other byte is `%XX` (upper-case hex).
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// The same, but `/` separates path segments and stays.
const PATH: &AsciiSet = &STRICT.remove(b'/');
/// For single encoding (S3): existing `%XX` escapes stay as they are.
const PATH_ONCE: &AsciiSet = &PATH.remove(b'%');

/// Headers that proxies and clients rewrite in flight, so signing them would break
/// the signature. The AWS SDKs leave the same ones out.
const UNSIGNABLE_HEADERS: &[&str] = &[
    "authorization",
    "connection",
    "expect",
    "transfer-encoding",
    "user-agent",
    "x-amzn-trace-id",
];

/// An access key, its secret and an optional session token. `Debug` redacts the
/// secret and the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// `AWS_SESSION_TOKEN`, for temporary credentials.
    pub session_token: Option<String>,
}

impl Credentials {
    /// Long-term credentials (no session token).
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }

    /// The same credentials with a session token.
    pub fn with_session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(token.into());
        self
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Where the session token goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionToken {
    /// Sent and covered by the signature (what most services expect).
    Signed,
    /// Sent, but added after signing (a few services, e.g. IoT, require this).
    Unsigned,
}

/// Options that differ between services.
#[derive(Clone, Copy, Debug)]
pub struct SigningSettings {
    /// Remove `.`/`..` segments and repeated slashes from the path first. True for
    /// every service but S3.
    pub normalize_path: bool,
    /// Percent-encode the (already encoded) path a second time. True for every
    /// service but S3: a Lambda ARN's `%3A` is signed as `%253A`. When false,
    /// existing escapes are kept and only unescaped bytes are encoded.
    pub double_encode_path: bool,
    /// Add and sign `x-amz-content-sha256` (header signing only).
    pub content_sha256_header: bool,
    /// Whether the session token is covered by the signature.
    pub session_token: SessionToken,
    /// How long a presigned URL stays valid, in seconds.
    pub expires_in: u32,
}

impl Default for SigningSettings {
    fn default() -> Self {
        Self {
            normalize_path: true,
            double_encode_path: true,
            content_sha256_header: false,
            session_token: SessionToken::Signed,
            expires_in: 3600,
        }
    }
}

/// Who signs, for which region and service, and when.
#[derive(Clone, Debug)]
pub struct SigningParams<'a> {
    /// The credentials.
    pub credentials: &'a Credentials,
    /// The region, e.g. `us-east-1`.
    pub region: &'a str,
    /// The signing name of the service, e.g. `lambda`.
    pub service: &'a str,
    /// The signing time in Unix seconds (UTC).
    pub time: u64,
    /// Per-service options.
    pub settings: SigningSettings,
}

impl<'a> SigningParams<'a> {
    /// Parameters with the default settings (non-S3 services).
    pub fn new(credentials: &'a Credentials, region: &'a str, service: &'a str, time: u64) -> Self {
        Self {
            credentials,
            region,
            service,
            time,
            settings: SigningSettings::default(),
        }
    }

    /// The same parameters with other settings.
    pub fn settings(mut self, settings: SigningSettings) -> Self {
        self.settings = settings;
        self
    }
}

/// The parts of an HTTP request that a signature covers.
#[derive(Clone, Debug)]
pub struct UnsignedRequest<'a> {
    /// The method, upper-case.
    pub method: &'a str,
    /// The path as sent on the wire (percent-encoded where it needs to be).
    pub path: &'a str,
    /// The raw query string, without `?` (may be empty).
    pub query: &'a str,
    /// The headers, in order; names in any case. `host` must be among them.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub body: &'a [u8],
}

impl<'a> UnsignedRequest<'a> {
    /// A request from its parts.
    pub fn new(
        method: &'a str,
        path: &'a str,
        query: &'a str,
        headers: &'a [(&'a str, &'a str)],
        body: &'a [u8],
    ) -> Self {
        Self {
            method,
            path,
            query,
            headers,
            body,
        }
    }
}

/// The result of signing: what to add to the request, and the intermediate strings
/// (useful when a service answers `SignatureDoesNotMatch` with its own version).
#[derive(Clone, Debug)]
pub struct Signed {
    /// Headers to add, replacing any of the same name (header signing).
    pub headers: Vec<(&'static str, String)>,
    /// Query parameters to append, already encoded (presigning).
    pub query: Vec<(&'static str, String)>,
    /// The canonical request.
    pub canonical_request: String,
    /// The string to sign.
    pub string_to_sign: String,
    /// The hex signature.
    pub signature: String,
}

impl Signed {
    /// The `Authorization` header value, for header signing.
    pub fn authorization(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(name, _)| *name == "authorization")
            .map(|(_, value)| value.as_str())
    }

    /// The encoded query parameters joined with `&`, for presigning.
    pub fn query_string(&self) -> String {
        let mut out = String::new();
        for (i, (name, value)) in self.query.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.push_str(name);
            out.push('=');
            out.push_str(value);
        }
        out
    }
}

/// Signs `request` with an `Authorization` header.
pub fn sign(request: &UnsignedRequest<'_>, params: &SigningParams<'_>) -> Signed {
    let stamp = Timestamp::new(params.time);
    let payload_hash = hex::encode(Sha256::digest(request.body));
    let token = params.credentials.session_token.as_deref();

    let mut headers = canonical_headers(request.headers, &["x-amz-date", "x-amz-security-token"]);
    headers.push(("x-amz-date".into(), stamp.amz_date.clone()));
    if let (Some(token), SessionToken::Signed) = (token, params.settings.session_token) {
        headers.push(("x-amz-security-token".into(), token.to_owned()));
    }
    if params.settings.content_sha256_header {
        headers.retain(|(name, _)| name != "x-amz-content-sha256");
        headers.push(("x-amz-content-sha256".into(), payload_hash.clone()));
    }
    headers.sort_by(|a, b| a.0.cmp(&b.0));

    let query = canonical_query(request.query.split('&').map(split_pair).collect());
    let (canonical_request, signed_headers) =
        canonical_request(request, params, &query, &headers, &payload_hash);
    let (string_to_sign, signature) = finish(params, &stamp, &canonical_request);

    let mut out = vec![("x-amz-date", stamp.amz_date.clone())];
    if let Some(token) = token {
        out.push(("x-amz-security-token", token.to_owned()));
    }
    if params.settings.content_sha256_header {
        out.push(("x-amz-content-sha256", payload_hash));
    }
    out.push((
        "authorization",
        format!(
            "{ALGORITHM} Credential={}/{}, SignedHeaders={signed_headers}, Signature={signature}",
            params.credentials.access_key_id,
            stamp.scope(params)
        ),
    ));
    Signed {
        headers: out,
        query: Vec::new(),
        canonical_request,
        string_to_sign,
        signature,
    }
}

/// Signs `request` as a presigned URL: the signature travels in the query string.
pub fn presign(request: &UnsignedRequest<'_>, params: &SigningParams<'_>) -> Signed {
    let stamp = Timestamp::new(params.time);
    let payload_hash = hex::encode(Sha256::digest(request.body));
    let token = params.credentials.session_token.as_deref();

    let mut headers = canonical_headers(request.headers, &[]);
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let signed_headers = join_names(&headers);
    let credential = format!(
        "{}/{}",
        params.credentials.access_key_id,
        stamp.scope(params)
    );

    // The order AWS's own presigners emit; the canonical query sorts them anyway.
    let mut added: Vec<(&'static str, String)> = vec![
        ("X-Amz-Algorithm", ALGORITHM.to_owned()),
        ("X-Amz-Credential", encode(&credential, STRICT)),
        ("X-Amz-Date", stamp.amz_date.clone()),
        ("X-Amz-SignedHeaders", encode(&signed_headers, STRICT)),
        ("X-Amz-Expires", params.settings.expires_in.to_string()),
    ];
    let token_param = token.map(|t| ("X-Amz-Security-Token", encode(t, STRICT)));
    if let (Some(param), SessionToken::Signed) = (&token_param, params.settings.session_token) {
        added.push(param.clone());
    }

    let mut pairs: Vec<(String, String)> = request.query.split('&').map(split_pair).collect();
    pairs.extend(added.iter().map(|(k, v)| ((*k).to_owned(), decode(v))));
    let query = canonical_query(pairs);
    let (canonical_request, _) =
        canonical_request(request, params, &query, &headers, &payload_hash);
    let (string_to_sign, signature) = finish(params, &stamp, &canonical_request);

    if let (Some(param), SessionToken::Unsigned) = (token_param, params.settings.session_token) {
        added.push(param);
    }
    added.push(("X-Amz-Signature", signature.clone()));
    Signed {
        headers: Vec::new(),
        query: added,
        canonical_request,
        string_to_sign,
        signature,
    }
}

/// The signing key for a day, region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn canonical_request(
    request: &UnsignedRequest<'_>,
    params: &SigningParams<'_>,
    query: &str,
    headers: &[(String, String)],
    payload_hash: &str,
) -> (String, String) {
    let signed_headers = join_names(headers);
    let mut out = String::with_capacity(256);
    out.push_str(request.method);
    out.push('\n');
    out.push_str(&canonical_path(request.path, &params.settings));
    out.push('\n');
    out.push_str(query);
    out.push('\n');
    for (name, value) in headers {
        out.push_str(name);
        out.push(':');
        out.push_str(value);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers);
    out.push('\n');
    out.push_str(payload_hash);
    (out, signed_headers)
}

fn finish(
    params: &SigningParams<'_>,
    stamp: &Timestamp,
    canonical_request: &str,
) -> (String, String) {
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        stamp.amz_date,
        stamp.scope(params),
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let key = signing_key(
        &params.credentials.secret_access_key,
        &stamp.date,
        params.region,
        params.service,
    );
    let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    (string_to_sign, signature)
}

/// Lower-cased names, values trimmed with inner runs of whitespace folded to one
/// space, repeated names joined with `,` in their original order, and the names in
/// `replaced` dropped (the signer sets those itself).
fn canonical_headers(headers: &[(&str, &str)], replaced: &[&str]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(headers.len() + 3);
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        if UNSIGNABLE_HEADERS.contains(&name.as_str()) || replaced.contains(&name.as_str()) {
            continue;
        }
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            None => out.push((name, value)),
        }
    }
    out
}

fn join_names(headers: &[(String, String)]) -> String {
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    names.join(";")
}

/// The path, normalized (RFC 3986 dot segments, no empty segments) when the
/// service wants it, then URI-encoded; non-S3 services encode the wire path again.
fn canonical_path(path: &str, settings: &SigningSettings) -> String {
    let path = if path.is_empty() { "/" } else { path };
    let normalized;
    let path = if settings.normalize_path {
        normalized = normalize(path);
        normalized.as_str()
    } else {
        path
    };
    encode(
        path,
        if settings.double_encode_path {
            PATH
        } else {
            PATH_ONCE
        },
    )
}

fn normalize(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let trailing = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    let mut out = String::with_capacity(path.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if trailing || out.is_empty() {
        out.push('/');
    }
    out
}

/// Decoded `(key, value)` pairs, each re-encoded strictly, sorted by key then value.
fn canonical_query(pairs: Vec<(String, String)>) -> String {
    let mut encoded: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(k, v)| !(k.is_empty() && v.is_empty()))
        .map(|(k, v)| (encode(&k, STRICT), encode(&v, STRICT)))
        .collect();
    encoded.sort();
    let mut out = String::new();
    for (i, (k, v)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

fn split_pair(pair: &str) -> (String, String) {
    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
    (decode(k), decode(v))
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn encode(s: &str, set: &'static AsciiSet) -> String {
    utf8_percent_encode(s, set).to_string()
}

/// `20150830T123600Z` and `20150830` for a Unix time.
struct Timestamp {
    amz_date: String,
    date: String,
}

impl Timestamp {
    fn new(unix_seconds: u64) -> Self {
        let t = time::OffsetDateTime::from_unix_timestamp(unix_seconds as i64)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let date = format!("{:04}{:02}{:02}", t.year(), t.month() as u8, t.day());
        let amz_date = format!("{date}T{:02}{:02}{:02}Z", t.hour(), t.minute(), t.second());
        Self { amz_date, date }
    }

    fn scope(&self, params: &SigningParams<'_>) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, params.region, params.service
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_dot_segments_and_slashes() {
        assert_eq!(normalize("/example/.."), "/");
        assert_eq!(normalize("/example1/example2/../.."), "/");
        assert_eq!(normalize("//example//"), "/example/");
        assert_eq!(normalize("/./"), "/");
        assert_eq!(normalize("/a/./b/."), "/a/b/");
        assert_eq!(normalize(""), "/");
    }

    #[test]
    fn a_function_arn_is_double_encoded() {
        let settings = SigningSettings::default();
        assert_eq!(
            canonical_path(
                "/2015-03-31/functions/arn%3Aaws%3Alambda/invocations",
                &settings
            ),
            "/2015-03-31/functions/arn%253Aaws%253Alambda/invocations"
        );
        let s3 = SigningSettings {
            double_encode_path: false,
            normalize_path: false,
            ..settings
        };
        assert_eq!(canonical_path("/a%3Ab c", &s3), "/a%3Ab%20c");
    }

    #[test]
    fn the_query_is_decoded_re_encoded_and_sorted() {
        let pairs = "b=2&a=%7e&a=1&c&%E1%88%B4=x+y"
            .split('&')
            .map(split_pair)
            .collect();
        assert_eq!(canonical_query(pairs), "%E1%88%B4=x%2By&a=1&a=~&b=2&c=");
    }

    #[test]
    fn unsignable_headers_are_left_out_and_repeats_joined() {
        let headers = canonical_headers(
            &[
                ("Host", "h"),
                ("User-Agent", "x"),
                ("My-Header", " a   b "),
                ("my-header", "c"),
            ],
            &[],
        );
        assert_eq!(
            headers,
            vec![
                ("host".to_owned(), "h".to_owned()),
                ("my-header".to_owned(), "a b,c".to_owned())
            ]
        );
    }

    #[test]
    fn the_debug_form_redacts_secrets() {
        let c = Credentials::new("AKID", "SECRET").with_session_token("TOKEN");
        let shown = format!("{c:?}");
        assert!(shown.contains("AKID"));
        assert!(!shown.contains("SECRET") && !shown.contains("TOKEN"));
    }

    #[test]
    fn timestamps_format_in_utc() {
        let t = Timestamp::new(1_440_938_160);
        assert_eq!(t.amz_date, "20150830T123600Z");
        assert_eq!(t.date, "20150830");
    }
}
