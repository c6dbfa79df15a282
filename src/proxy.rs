//! Reverse proxying to an origin, for the strangler-fig pattern: endpoints move to
//! the edge one at a time, and whatever the edge does not serve yet goes to the
//! legacy origin. See [`middleware::strangler_fig`](crate::middleware::strangler_fig).
//!
//! The rules (which headers go, which are added, which routes fall back) are pure
//! and tested natively; `forward` (wasm only) is the thin `fetch` that streams both
//! bodies.
// Natively only the tests call the rules; on wasm `forward` does.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use crate::http::{HeaderMap, Method};

/// Connection-level headers (RFC 9110 §7.6.1) that a proxy must not forward, plus
/// `host` and `content-length`, which `fetch` sets from the URL and the stream.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn is_hop_by_hop(name: &str, listed_in_connection: &[String]) -> bool {
    HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
        || listed_in_connection
            .iter()
            .any(|c| name.eq_ignore_ascii_case(c))
}

fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("connection")
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Whether a header carries an edge credential, which is never the origin's
/// business: an edgeway API key (`ewk_…`), or a token `withheld` recognises
/// (the root key).
fn is_edge_key(name: &str, value: &str, withheld: &dyn Fn(&str) -> bool) -> bool {
    let token = if name.eq_ignore_ascii_case("x-api-key") {
        Some(value.trim())
    } else if name.eq_ignore_ascii_case("authorization") {
        crate::http::bearer_token(value)
    } else {
        None
    };
    token.is_some_and(|token| token.starts_with("ewk_") || withheld(token))
}

/// The headers to send to the origin: the client's, minus hop-by-hop ones (and
/// any the client listed in `Connection`), minus `host`, `content-length` and
/// edge credentials (edgeway API keys, and tokens `withheld` recognises), plus
/// `x-forwarded-for`, `x-forwarded-proto` and `x-forwarded-host`. The origin's
/// own credentials pass through.
pub fn request_headers(
    incoming: &HeaderMap,
    client_ip: Option<&str>,
    proto: &str,
    withheld: &dyn Fn(&str) -> bool,
) -> Vec<(String, String)> {
    let listed = connection_tokens(incoming);
    let mut out: Vec<(String, String)> = incoming
        .iter()
        .filter(|(name, _)| {
            !is_hop_by_hop(name, &listed)
                && !name.eq_ignore_ascii_case("host")
                && !name.eq_ignore_ascii_case("content-length")
                && !name.to_ascii_lowercase().starts_with("x-forwarded-")
        })
        .filter(|(name, value)| !is_edge_key(name, value, withheld))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    // Append to a chain from an earlier proxy rather than replace it.
    let chain: Vec<&str> = incoming.get_all("x-forwarded-for").collect();
    let mut forwarded_for = chain.join(", ");
    if let Some(ip) = client_ip {
        if !forwarded_for.is_empty() {
            forwarded_for.push_str(", ");
        }
        forwarded_for.push_str(ip);
    }
    if !forwarded_for.is_empty() {
        out.push(("x-forwarded-for".into(), forwarded_for));
    }
    out.push(("x-forwarded-proto".into(), proto.to_owned()));
    if let Some(host) = incoming.get("host") {
        out.push(("x-forwarded-host".into(), host.to_owned()));
    }
    out
}

/// The origin's response headers to pass back: all but hop-by-hop ones.
pub fn response_headers(from_origin: &HeaderMap) -> Vec<(String, String)> {
    let listed = connection_tokens(from_origin);
    from_origin
        .iter()
        .filter(|(name, _)| {
            !is_hop_by_hop(name, &listed) && !name.eq_ignore_ascii_case("content-length")
        })
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

/// The origin URL for a request: the origin's scheme, host and base path, then the
/// request's path and query unchanged.
pub fn target_url(origin: &str, path: &str, query: Option<&str>) -> String {
    let mut url = origin.trim_end_matches('/').to_owned();
    url.push_str(path);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// Whether a matched route is switched back to the origin by `spec`, a
/// comma-separated list of route patterns, each optionally preceded by a method:
/// `GET /v1/kv/{*key}, /v1/reports/{id}`. Patterns are compared as registered, so
/// one entry covers every path the route matches.
pub fn rolled_back(spec: &str, method: &Method, pattern: &str) -> bool {
    spec.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| match entry.split_once(char::is_whitespace) {
            Some((m, p)) => {
                let m = Method::parse(m);
                let method_matches = m == *method || (*method == Method::Head && m == Method::Get);
                method_matches && p.trim() == pattern
            }
            None => entry == pattern,
        })
}

#[cfg(target_arch = "wasm32")]
mod fetch {
    use js_sys::{Array, Promise};
    use wasm_bindgen::prelude::*;

    use crate::body::{Body, Inner};
    use crate::error::Error;
    use crate::http::{HeaderMap, StatusCode};
    use crate::request::Request;
    use crate::response::Response;

    #[wasm_bindgen(inline_js = r#"
export function proxy_fetch(method, url, headers, body) {
  const init = { method, headers, redirect: "manual" };
  if (body) { init.body = body; init.duplex = "half"; }
  return fetch(url, init).then((res) => [res.status, [...res.headers], res.body]);
}
"#)]
    extern "C" {
        #[wasm_bindgen(catch)]
        fn proxy_fetch(
            method: &str,
            url: &str,
            headers: &Array,
            body: JsValue,
        ) -> Result<Promise, JsValue>;
    }

    /// Sends `req` to `origin`, streaming the request body up and the response
    /// body back without holding either in memory. Redirects are passed to the
    /// client, not followed.
    pub async fn forward(
        mut req: Request,
        origin: &str,
        withheld: &dyn Fn(&str) -> bool,
    ) -> Result<Response, Error> {
        let url = super::target_url(origin, req.path(), req.query());
        let proto = if req.url().starts_with("https:") {
            "https"
        } else {
            "http"
        };
        let incoming = req.headers();
        let client_ip = incoming.get("cf-connecting-ip").map(str::to_owned);
        let headers = Array::new();
        for (name, value) in
            super::request_headers(&incoming, client_ip.as_deref(), proto, withheld)
        {
            headers.push(&Array::of2(&name.into(), &value.into()));
        }
        let method = req.method().as_str().to_owned();
        // A stream when the body is still in JS (the usual case), bytes when a
        // layer already read it.
        // A stream when the body is still in JS (the usual case), bytes when a
        // layer already read it.
        let body: JsValue = match req.take_body().0 {
            Inner::Js(js) => js.into_stream().map_or(JsValue::NULL, Into::into),
            Inner::Bytes(bytes) => js_sys::Uint8Array::from(&bytes[..]).into(),
            Inner::Static(bytes) => js_sys::Uint8Array::from(bytes).into(),
            Inner::Empty | Inner::Deferred => JsValue::NULL,
        };
        #[cfg(feature = "ops")]
        crate::ops::count(crate::ops::Op::Subrequest);
        let answer = crate::outbound::settle(proxy_fetch(&method, &url, &headers, body), || {
            "the origin could not be reached".to_owned()
        })
        .await?;
        let answer: Array = answer.into();
        let status = StatusCode::from_u16(answer.get(0).as_f64().unwrap_or(502.0) as u16)
            .unwrap_or(StatusCode::BAD_GATEWAY);
        let mut from_origin = HeaderMap::new();
        for pair in Array::from(&answer.get(1)).iter() {
            let pair = Array::from(&pair);
            if let (Some(n), Some(v)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                from_origin.push_trusted(n, v);
            }
        }
        let stream = answer.get(2);
        let body = if stream.is_null() || stream.is_undefined() {
            Body::empty()
        } else {
            Body::from_stream(stream.unchecked_into())
        };
        let mut builder = Response::builder(status);
        for (name, value) in super::response_headers(&from_origin) {
            builder = builder.header(name, value);
        }
        Ok(builder.body(body))
    }
}

#[cfg(target_arch = "wasm32")]
pub use fetch::forward;

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (n, v) in pairs {
            map.append(*n, *v).unwrap();
        }
        map
    }

    #[test]
    fn edge_api_keys_never_reach_the_origin_but_its_own_credentials_do() {
        let key = format!("ewk_0123456789abcdef_{}", "a".repeat(64));
        let root = |token: &str| token == "the-root-key";
        for (name, value) in [
            ("authorization", format!("Bearer {key}")),
            ("authorization", format!("bearer  {key}")),
            ("x-api-key", key.clone()),
            ("authorization", "Bearer the-root-key".to_owned()),
            ("x-api-key", "the-root-key".to_owned()),
        ] {
            let out = request_headers(&headers(&[(name, value.as_str())]), None, "https", &root);
            assert!(out.iter().all(|(n, _)| n != name), "{name}: {value}");
        }
        for (name, value) in [
            ("authorization", "Bearer origin-token"),
            ("authorization", "Basic dXNlcjpwYXNz"),
            ("x-api-key", "origin-key"),
        ] {
            let out = request_headers(&headers(&[(name, value)]), None, "https", &root);
            assert!(out.iter().any(|(n, v)| n == name && v == value), "{name}");
        }
    }

    #[test]
    fn hop_by_hop_headers_stay_and_forwarding_headers_are_added() {
        let incoming = headers(&[
            ("host", "edge.example"),
            ("connection", "keep-alive, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("content-length", "3"),
            ("accept", "text/html"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        let out = request_headers(&incoming, Some("198.51.100.7"), "https", &|_| false);
        let get = |n: &str| out.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("accept"), Some("text/html"));
        for dropped in [
            "connection",
            "x-secret-hop",
            "keep-alive",
            "te",
            "host",
            "content-length",
        ] {
            assert_eq!(get(dropped), None, "{dropped}");
        }
        assert_eq!(get("x-forwarded-for"), Some("203.0.113.9, 198.51.100.7"));
        assert_eq!(get("x-forwarded-proto"), Some("https"));
        assert_eq!(get("x-forwarded-host"), Some("edge.example"));
    }

    #[test]
    fn response_hop_by_hop_headers_are_dropped() {
        let from_origin = headers(&[
            ("transfer-encoding", "chunked"),
            ("content-type", "text/plain"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
        ]);
        let out = response_headers(&from_origin);
        assert_eq!(
            out,
            vec![
                ("content-type".to_owned(), "text/plain".to_owned()),
                ("set-cookie".to_owned(), "a=1".to_owned()),
                ("set-cookie".to_owned(), "b=2".to_owned()),
            ]
        );
    }

    #[test]
    fn target_urls_keep_path_and_query() {
        assert_eq!(
            target_url("http://127.0.0.1:8080/", "/a/b%20c", Some("x=1&x=2")),
            "http://127.0.0.1:8080/a/b%20c?x=1&x=2"
        );
        assert_eq!(
            target_url("https://legacy.example/base", "/a", None),
            "https://legacy.example/base/a"
        );
    }

    #[test]
    fn rollback_entries_match_routes_with_or_without_a_method() {
        let spec = "GET /v1/kv/{*key}, /v1/routes ,";
        assert!(rolled_back(spec, &Method::Get, "/v1/kv/{*key}"));
        assert!(rolled_back(spec, &Method::Head, "/v1/kv/{*key}"));
        assert!(!rolled_back(spec, &Method::Put, "/v1/kv/{*key}"));
        assert!(rolled_back(spec, &Method::Post, "/v1/routes"));
        assert!(!rolled_back(spec, &Method::Get, "/v1/kv"));
        assert!(!rolled_back("", &Method::Get, "/"));
    }
}
