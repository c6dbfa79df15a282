//! A response cache on the Cache API, with strong ETags and 304s (feature `cache`).

use sha2::{Digest, Sha256};

use crate::handler::BoxFuture;
use crate::http::{HeaderMap, Method, StatusCode};
use crate::middleware::{Middleware, Next};
use crate::request::Request;
use crate::response::Response;

/// The header that says what the cache did (RFC 9211): `edgeway; hit`,
/// `edgeway; fwd=miss; stored`, `edgeway; fwd=miss`, `edgeway; fwd=request`
/// (the client asked for a fresh answer) or `edgeway; fwd=bypass`.
pub const CACHE_STATUS: &str = "cache-status";

/// Serves `GET`s from the Cache API and answers `If-None-Match` with `304`.
///
/// - **What is stored:** a `200` whose `Cache-Control` has a positive
///   `max-age` or `s-maxage` and none of `no-store`, `private` or `no-cache`,
///   with no `Set-Cookie`, no `Vary` beyond the declared headers, and a body
///   in memory of at most 1 MiB. The cache keeps it for that long. Handlers
///   decide with their `Cache-Control`.
/// - **ETags:** a stored or storable answer without an `ETag` gets a strong one
///   (a SHA-256 of its body), and a request whose `If-None-Match` names it gets
///   a `304` with no body, whether the answer came from the cache or not.
/// - **Keys:** the URL, plus the values of the headers declared with
///   [`vary`](Self::vary), each variant stored apart.
/// - **Who is served:** a request with credentials (`Authorization`,
///   `X-Api-Key`) or a `Cookie` bypasses the cache, unless the routes say
///   their answers are the same for everyone who may call them
///   ([`ignore_credentials`](Self::ignore_credentials), inside the layer that
///   checks the credentials); such answers go out as `private, no-cache`, so
///   no cache between here and the client keeps them for others. `Cache-Control: no-store` bypasses it;
///   `no-cache` fetches a fresh answer and stores it.
/// - **Invalidation:** a successful write (`POST`, `PUT`, `PATCH`, `DELETE`)
///   through the same layer makes every stored `GET` of its path (compared
///   percent-decoded) stale, every query and variant of it, by moving the path
///   to a new generation. Writes that reach the data some other way (a queue
///   consumer, another worker) do not. The
///   Cache API is per data center, so elsewhere a stale answer lives until its
///   `max-age`; keep that short where writes must show at once everywhere.
///
/// ```
/// use edgeway::middleware::ResponseCache;
/// use edgeway::App;
///
/// const CACHE: ResponseCache = ResponseCache::new().vary(&["accept-language"]);
///
/// let app = App::new().layer(CACHE).get("/greeting", || async {
///     ([("cache-control", "max-age=60")], "hello")
/// });
/// # app.build().unwrap();
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ResponseCache {
    vary: &'static [&'static str],
    credentials: bool,
}

/// The largest body stored.
const MAX_BODY: usize = 1 << 20;
/// How long a path's generation marker is kept, in seconds: longer than any
/// answer it keys, so a marker never expires under a live answer.
const GENERATION_SECONDS: u32 = 7 * 24 * 3600;

impl ResponseCache {
    /// A cache keyed by URL alone, bypassed by requests with credentials.
    pub const fn new() -> Self {
        Self {
            vary: &[],
            credentials: false,
        }
    }

    /// Stores a variant per value of each of these request headers (names in
    /// lowercase), and says so in the answer's `Vary`.
    pub const fn vary(mut self, headers: &'static [&'static str]) -> Self {
        self.vary = headers;
        self
    }

    /// Serves and stores requests with credentials or cookies too: for routes
    /// whose answers do not depend on who asks, behind the layer that checks
    /// who may ask. The credential headers are never part of the key.
    pub const fn ignore_credentials(mut self) -> Self {
        self.credentials = true;
        self
    }

    async fn serve(self, req: Request, next: Next) -> Response {
        match req.method() {
            Method::Get => self.read(req, next).await,
            Method::Post | Method::Put | Method::Patch | Method::Delete => {
                let path = path_of(&req);
                let response = next.run(req).await;
                if response.status().is_success() {
                    store::new_generation(&path).await;
                }
                response
            }
            _ => next.run(req).await,
        }
    }

    async fn read(self, req: Request, next: Next) -> Response {
        let if_none_match = req.header("if-none-match").map(|v| v.into_owned());
        let directives = req.header("cache-control").map(|v| v.to_ascii_lowercase());
        let has = |directive: &str| {
            directives
                .as_deref()
                .is_some_and(|d| has_directive(d, directive))
        };
        let with_credentials = ["authorization", "x-api-key", "cookie"]
            .iter()
            .any(|name| req.header(name).is_some());
        if (with_credentials && !self.credentials) || has("no-store") {
            let mut response = next.run(req).await;
            finish(
                &mut response,
                if_none_match.as_deref(),
                "edgeway; fwd=bypass",
            );
            return response;
        }
        // Served to a key holder: clients must not keep it as if anyone could
        // read it (a shared cache keeps answers to `x-api-key` requests).
        let credentialed = with_credentials && self.credentials;
        let path = path_of(&req);
        let generation = store::generation(&path).await;
        let key = variant_key(req.url(), &generation, &self.vary_values(&req));
        if !has("no-cache") {
            if let Some(mut hit) = store::lookup(&key).await {
                if credentialed {
                    keep_private(&mut hit);
                }
                finish(&mut hit, if_none_match.as_deref(), "edgeway; hit");
                return hit;
            }
        }
        let mut response = next.run(req).await;
        let status = if storable(&response, self.vary) {
            if response.headers().get("etag").is_none() {
                if let Some(body) = response.body().as_bytes() {
                    let etag = strong_etag(body);
                    let _ = response.headers_mut().insert("etag", etag);
                }
            }
            if !self.vary.is_empty() {
                let vary = merge_vary(response.headers().get("vary"), self.vary);
                let _ = response.headers_mut().insert("vary", vary);
            }
            store::put(&key, &response).await;
            if credentialed {
                keep_private(&mut response);
            }
            if has("no-cache") {
                "edgeway; fwd=request; stored"
            } else {
                "edgeway; fwd=miss; stored"
            }
        } else if has("no-cache") {
            "edgeway; fwd=request"
        } else {
            "edgeway; fwd=miss"
        };
        finish(&mut response, if_none_match.as_deref(), status);
        response
    }

    /// The request's values of the declared `Vary` headers, in order.
    fn vary_values(&self, req: &Request) -> Vec<String> {
        self.vary
            .iter()
            .map(|name| req.header(name).map(|v| v.into_owned()).unwrap_or_default())
            .collect()
    }
}

impl Default for ResponseCache {
    fn default() -> Self {
        Self::new()
    }
}

impl Middleware for ResponseCache {
    fn call(&self, req: Request, next: Next) -> BoxFuture<Response> {
        Box::pin(self.serve(req, next))
    }
}

/// Whether a `Cache-Control` value (lowercase) has `directive`, bare or with a
/// value.
fn has_directive(value: &str, directive: &str) -> bool {
    value.split(',').any(|part| {
        let name = part.split('=').next().unwrap_or("").trim();
        name == directive
    })
}

/// The seconds of a `name=<seconds>` directive.
fn seconds(value: &str, name: &str) -> Option<u64> {
    value.split(',').find_map(|part| {
        let (key, seconds) = part.split_once('=')?;
        (key.trim() == name)
            .then(|| seconds.trim().trim_matches('"').parse().ok())
            .flatten()
    })
}

/// The origin and decoded path a generation marker is kept for, so
/// `/kv/%41` and `/kv/A` share one.
fn path_of(req: &Request) -> String {
    let path = percent_encoding::percent_decode_str(req.path()).decode_utf8_lossy();
    format!("{}{path}", req.origin())
}

/// Tells clients to keep an answer to themselves and check it before reuse
/// (the ETag makes that a `304`).
fn keep_private(response: &mut Response) {
    let _ = response
        .headers_mut()
        .insert("cache-control", "private, no-cache".to_owned());
}

/// The handler's `Vary` names with the declared ones added.
fn merge_vary(own: Option<&str>, declared: &[&str]) -> String {
    let mut names: Vec<String> = own
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect();
    for name in declared {
        if !names.iter().any(|n| n == name) {
            names.push((*name).to_owned());
        }
    }
    names.join(", ")
}

/// Whether an answer may be stored: see [`ResponseCache`]. A `Vary` naming a
/// header the layer does not key by would serve one variant to all.
fn storable(response: &Response, declared_vary: &[&str]) -> bool {
    let headers = response.headers();
    let Some(control) = headers.get("cache-control").map(str::to_ascii_lowercase) else {
        return false;
    };
    let lifetime = seconds(&control, "s-maxage")
        .or_else(|| seconds(&control, "max-age"))
        .unwrap_or(0);
    response.status() == StatusCode::OK
        && lifetime > 0
        && !["no-store", "private", "no-cache"]
            .iter()
            .any(|d| has_directive(&control, d))
        && headers.get("set-cookie").is_none()
        && headers.get("vary").is_none_or(|vary| {
            vary.split(',')
                .map(|name| name.trim().to_ascii_lowercase())
                .filter(|name| !name.is_empty())
                .all(|name| declared_vary.contains(&name.as_str()))
        })
        && response
            .body()
            .as_bytes()
            .is_some_and(|body| body.len() <= MAX_BODY)
}

/// A strong ETag for `body`: the first 128 bits of its SHA-256, quoted.
fn strong_etag(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(body)[..16]))
}

/// Whether `If-None-Match` names `etag`, by the weak comparison RFC 9110
/// (§13.1.2) asks for: `W/` prefixes are ignored, `*` matches any.
fn none_match(if_none_match: &str, etag: &str) -> bool {
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let etag = opaque(etag);
    if_none_match
        .split(',')
        .any(|tag| tag.trim() == "*" || opaque(tag) == etag)
}

/// Records what the cache did and turns a `200` the client already holds into
/// a `304` with no body.
fn finish(response: &mut Response, if_none_match: Option<&str>, status: &str) {
    let _ = response
        .headers_mut()
        .insert(CACHE_STATUS, status.to_owned());
    let not_modified = response.status() == StatusCode::OK
        && if_none_match
            .zip(response.headers().get("etag"))
            .is_some_and(|(wanted, etag)| none_match(wanted, etag));
    if not_modified {
        let mut headers = HeaderMap::new();
        for name in ["etag", "cache-control", "vary", "expires", CACHE_STATUS] {
            if let Some(value) = response.headers().get(name) {
                let _ = headers.insert(name, value.to_owned());
            }
        }
        *response = Response::new(StatusCode::NOT_MODIFIED, crate::Body::empty());
        *response.headers_mut() = headers;
    }
}

/// The key of one stored variant: the URL with the path's generation and a
/// digest of the `Vary` values as extra query parameters (the Cache API keys
/// by URL alone).
fn variant_key(url: &str, generation: &str, vary: &[String]) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    let mut key = format!("{url}{separator}edgeway-generation={generation}");
    if !vary.is_empty() {
        let digest = Sha256::digest(vary.join("\n").as_bytes());
        key.push_str("&edgeway-vary=");
        key.push_str(&hex::encode(&digest[..16]));
    }
    key
}

/// The key of a path's generation marker.
fn generation_key(path: &str) -> String {
    format!("{path}?edgeway-generation-of-path")
}

/// The Cache API calls; natively there is no cache, so every lookup misses.
mod store {
    use super::*;

    /// The path's current generation, starting a new one when it has none
    /// (never seen, evicted or expired: the answers stored under the old
    /// one, if any, must not come back).
    pub(super) async fn generation(path: &str) -> String {
        #[cfg(target_arch = "wasm32")]
        if let Some(marker) = lookup(&generation_key(path)).await {
            if let Some(generation) = marker.body().as_bytes() {
                return String::from_utf8_lossy(generation).into_owned();
            }
        }
        new_generation(path).await
    }

    /// Moves `path` to a new generation, so nothing stored under the old one
    /// is served again.
    pub(super) async fn new_generation(path: &str) -> String {
        let generation = crate::platform::random_hex::<8>();
        let marker = Response::builder(StatusCode::OK)
            .header("cache-control", format!("max-age={GENERATION_SECONDS}"))
            .body(generation.clone());
        put(&generation_key(path), &marker).await;
        generation
    }

    pub(super) async fn lookup(key: &str) -> Option<Response> {
        #[cfg(target_arch = "wasm32")]
        {
            let (status, headers, body) = crate::js::cache::lookup(key).await?;
            let headers: Vec<(String, String)> = serde_json::from_str(&headers).ok()?;
            let mut response = Response::new(StatusCode::from_u16(status)?, body);
            for (name, value) in headers {
                let _ = response.headers_mut().append(name, value);
            }
            Some(response)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = key;
            None
        }
    }

    /// Stores `response` under `key`. A failed put of an answer costs a later
    /// miss; of a new generation marker, the invalidation (the old answers
    /// stay until their `max-age`), which is why writes await it.
    pub(super) async fn put(key: &str, response: &Response) {
        #[cfg(target_arch = "wasm32")]
        {
            let Some(body) = response.body().as_bytes() else {
                return;
            };
            let headers: Vec<(&str, &str)> = response
                .headers()
                .iter()
                .filter(|(name, _)| *name != CACHE_STATUS)
                .collect();
            if let Ok(headers) = serde_json::to_string(&headers) {
                crate::js::cache::store(key, response.status().as_u16(), &headers, body).await;
            }
        }
        #[cfg(not(target_arch = "wasm32"))]
        let _ = (key, response);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn answer(cache_control: &str) -> Response {
        Response::builder(StatusCode::OK)
            .header("cache-control", cache_control.to_owned())
            .body("body")
    }

    #[test]
    fn only_fresh_public_200s_in_memory_are_stored() {
        let storable = |response: &Response| storable(response, &["accept-language"]);
        assert!(storable(&answer("max-age=60")));
        assert!(storable(&answer("public, s-maxage=30")));
        assert!(storable(&answer("Max-Age=60")));
        assert!(!storable(&answer("max-age=0")));
        assert!(!storable(&answer("no-store, max-age=60")));
        assert!(!storable(&answer("private, max-age=60")));
        assert!(!storable(&answer("no-cache, max-age=60")));
        assert!(!storable(&answer("must-revalidate")));
        assert!(!storable(
            &Response::builder(StatusCode::OK).body("no header")
        ));
        let varying = |vary: &str| {
            Response::builder(StatusCode::OK)
                .header("cache-control", "max-age=60")
                .header("vary", vary.to_owned())
                .body("x")
        };
        assert!(storable(&varying("Accept-Language")));
        assert!(
            !storable(&varying("accept")),
            "a Vary the key does not cover"
        );
        assert!(!storable(&varying("*")));
        let with_cookie = Response::builder(StatusCode::OK)
            .header("cache-control", "max-age=60")
            .header("set-cookie", "a=1")
            .body("x");
        assert!(!storable(&with_cookie));
        let not_ok = Response::builder(StatusCode::NOT_FOUND)
            .header("cache-control", "max-age=60")
            .body("x");
        assert!(!storable(&not_ok));
        let huge = Response::builder(StatusCode::OK)
            .header("cache-control", "max-age=60")
            .body(vec![0u8; MAX_BODY + 1]);
        assert!(!storable(&huge));
    }

    #[test]
    fn vary_keeps_the_handlers_names_and_adds_the_declared() {
        assert_eq!(merge_vary(None, &["accept-language"]), "accept-language");
        assert_eq!(
            merge_vary(Some("Accept-Language, origin"), &["accept-language"]),
            "accept-language, origin"
        );
    }

    #[test]
    fn directives_are_whole_names() {
        assert!(has_directive("no-cache, max-age=5", "no-cache"));
        assert!(!has_directive("no-cache-ish", "no-cache"));
        assert_eq!(seconds("public, max-age=\"60\"", "max-age"), Some(60));
        assert_eq!(seconds("s-maxage=5, max-age=60", "max-age"), Some(60));
        assert_eq!(seconds("max-age=soon", "max-age"), None);
    }

    #[test]
    fn etags_are_strong_and_follow_the_body() {
        let a = strong_etag(b"one");
        assert!(a.starts_with('"') && a.ends_with('"') && a.len() == 34);
        assert_eq!(a, strong_etag(b"one"));
        assert_ne!(a, strong_etag(b"two"));
    }

    #[test]
    fn if_none_match_compares_weakly_and_lists() {
        assert!(none_match("\"abc\"", "\"abc\""));
        assert!(none_match("W/\"abc\"", "\"abc\""));
        assert!(none_match("\"x\", \"abc\"", "\"abc\""));
        assert!(none_match("*", "\"abc\""));
        assert!(!none_match("\"abd\"", "\"abc\""));
    }

    #[test]
    fn a_match_becomes_a_304_without_a_body() {
        let mut response = answer("max-age=60");
        let _ = response.headers_mut().insert("etag", "\"abc\"".to_owned());
        finish(&mut response, Some("\"abc\""), "edgeway; hit");
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert!(response.body().as_bytes().is_none_or(<[u8]>::is_empty));
        assert_eq!(response.headers().get("etag"), Some("\"abc\""));
        assert_eq!(response.headers().get(CACHE_STATUS), Some("edgeway; hit"));
        assert_eq!(response.headers().get("cache-control"), Some("max-age=60"));

        let mut other = answer("max-age=60");
        let _ = other.headers_mut().insert("etag", "\"abc\"".to_owned());
        finish(&mut other, Some("\"zzz\""), "edgeway; fwd=miss");
        assert_eq!(other.status(), StatusCode::OK);
    }

    #[test]
    fn keys_carry_the_generation_and_the_variant() {
        assert_eq!(
            variant_key("https://a/x", "g1", &[]),
            "https://a/x?edgeway-generation=g1"
        );
        assert_eq!(
            variant_key("https://a/x?q=1", "g1", &[]),
            "https://a/x?q=1&edgeway-generation=g1"
        );
        let en = variant_key("https://a/x", "g1", &["en".into()]);
        let fr = variant_key("https://a/x", "g1", &["fr".into()]);
        assert_ne!(en, fr);
        assert!(en.starts_with("https://a/x?edgeway-generation=g1&edgeway-vary="));
        assert_ne!(
            variant_key("https://a/x", "g2", &[]),
            variant_key("https://a/x", "g1", &[])
        );
    }
}
