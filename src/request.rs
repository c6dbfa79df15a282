//! The request handed to middleware and handlers.

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::ops::Range;
use std::rc::Rc;

use crate::body::Body;
use crate::error::Error;
use crate::http::{split_url, HeaderMap, Method};
use crate::params::{ParamSpans, Params};

/// Default body limit for extractors when no [`body_limit`](crate::middleware::body_limit)
/// layer or [`App::body_limit`](crate::App::body_limit) says otherwise: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// An incoming request.
///
/// On wasm, headers and the body stay on the JS side until first read, so the cost
/// of a request is what its handler touches.
pub struct Request {
    method: Method,
    url: String,
    path: Range<usize>,
    query: Option<Range<usize>>,
    headers: Headers,
    body: Body,
    pub(crate) params: ParamSpans,
    pub(crate) route: Option<Rc<RouteMeta>>,
    pub(crate) state: Rc<Extensions>,
    pub(crate) body_limit: usize,
    pub(crate) cold: bool,
    extensions: Extensions,
    #[cfg(target_arch = "wasm32")]
    pub(crate) js: Option<crate::js::JsRequest>,
}

enum Headers {
    Owned(HeaderMap),
    /// Still in JS (`JsRequest::header`). Incoming headers are immutable in
    /// Workers, so the first mutation copies them into an owned map.
    #[cfg(target_arch = "wasm32")]
    Js,
}

/// What the router knows about the route a request matched.
#[derive(Debug)]
pub struct RouteMeta {
    /// The pattern as registered, e.g. `/users/{id}`.
    pub pattern: Rc<str>,
    /// The feature tag set with [`App::tag`](crate::App::tag), if any.
    pub feature: Option<Rc<str>>,
    /// The names of the pattern's parameters, in order.
    pub param_names: Box<[Rc<str>]>,
}

impl Request {
    /// A request for `url`, which may be absolute (`https://x/a?b`) or a bare path (`/a?b`).
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        let url = url.into();
        let (path, query) = split_url(&url);
        Self {
            method,
            url,
            path,
            query,
            headers: Headers::Owned(HeaderMap::new()),
            body: Body::empty(),
            params: ParamSpans::default(),
            route: None,
            state: Rc::default(),
            body_limit: DEFAULT_BODY_LIMIT,
            cold: false,
            extensions: Extensions::default(),
            #[cfg(target_arch = "wasm32")]
            js: None,
        }
    }

    /// Builder-style: adds a header. Panics on an invalid name or value (meant for tests).
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers_mut()
            .append(name, value)
            .expect("valid header in Request::with_header");
        self
    }

    /// Builder-style: sets the body.
    pub fn with_body(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }

    /// A request whose headers and body stay in JS until first read.
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn from_js(method: Method, url: String, js: crate::js::JsRequest) -> Self {
        let mut request = Self::new(method, url);
        request.headers = Headers::Js;
        request.body = Body(crate::body::Inner::Deferred);
        request.js = Some(js);
        request
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The full URL as received.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The scheme, host and port (`https://edge.example:8443`); empty when the
    /// request was made from a bare path.
    pub fn origin(&self) -> &str {
        &self.url[..self.path.start]
    }

    /// The path, still percent-encoded; `/` when the URL has none.
    pub fn path(&self) -> &str {
        match &self.url[self.path.clone()] {
            "" => "/",
            path => path,
        }
    }

    /// The raw query string without `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.query.clone().map(|range| &self.url[range])
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        match &self.headers {
            Headers::Owned(map) => map.get(name).map(Cow::Borrowed),
            #[cfg(target_arch = "wasm32")]
            Headers::Js => self.js.as_ref()?.header(name).map(Cow::Owned),
        }
    }

    /// A copy of all headers.
    pub fn headers(&self) -> HeaderMap {
        match &self.headers {
            Headers::Owned(map) => map.clone(),
            #[cfg(target_arch = "wasm32")]
            Headers::Js => {
                let mut map = HeaderMap::new();
                if let Some(js) = &self.js {
                    js.for_each_header(|name, value| map.push_trusted(name, value));
                }
                map
            }
        }
    }

    /// Mutable headers (copies them out of JS on first use).
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        #[cfg(target_arch = "wasm32")]
        if let Headers::Js = &self.headers {
            self.headers = Headers::Owned(self.headers());
        }
        match &mut self.headers {
            Headers::Owned(map) => map,
            #[cfg(target_arch = "wasm32")]
            Headers::Js => unreachable!("copied above"),
        }
    }

    /// The declared `content-length`, if present and numeric.
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length")?.trim().parse().ok()
    }

    /// The matched route's pattern and feature tag, once routed.
    pub fn route(&self) -> Option<&RouteMeta> {
        self.route.as_deref()
    }

    /// The path parameters of the matched route, still percent-encoded.
    pub fn params(&self) -> Params<'_> {
        let names = self
            .route
            .as_deref()
            .map_or(&[][..], |route| &route.param_names);
        self.params.view(names, self.path())
    }

    /// The percent-decoded value of path parameter `name`.
    pub fn param(&self, name: &str) -> Option<Result<Cow<'_, str>, Error>> {
        self.params().get(name)
    }

    /// Whether this is the first request served by this isolate.
    pub fn is_cold_start(&self) -> bool {
        self.cold
    }

    /// The body limit in force for this request.
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    /// Sets the body limit that body extractors enforce.
    pub fn set_body_limit(&mut self, limit: usize) {
        self.body_limit = limit;
    }

    /// Takes the body out, leaving an empty one.
    pub fn take_body(&mut self) -> Body {
        let body = std::mem::take(&mut self.body);
        #[cfg(target_arch = "wasm32")]
        if let (crate::body::Inner::Deferred, Some(js)) = (&body.0, &self.js) {
            return Body(crate::body::Inner::Js(js.body()));
        }
        body
    }

    /// Reads the body, enforcing the body limit.
    pub async fn bytes(&mut self) -> Result<Vec<u8>, Error> {
        let limit = self.body_limit;
        // A declared length over the limit is refused before reading: cutting a
        // large upload off mid-stream makes the runtime drop the connection
        // instead of delivering the 413. The request's own body, still in JS,
        // checks it there (one header read instead of two).
        if !self.body_is_in_js() && self.content_length().is_some_and(|len| len > limit as u64) {
            return Err(crate::body::too_large(limit));
        }
        self.take_body().read_to_end(limit).await
    }

    /// Whether the body is the incoming request's, not yet read out of JS.
    fn body_is_in_js(&self) -> bool {
        #[cfg(target_arch = "wasm32")]
        return matches!(self.body.0, crate::body::Inner::Deferred) && self.js.is_some();
        #[cfg(not(target_arch = "wasm32"))]
        false
    }

    /// Per-request values set by middleware for later middleware and handlers.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Mutable per-request values.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    /// App state registered with [`App::state`](crate::App::state).
    pub fn state<T: 'static>(&self) -> Option<&T> {
        self.state.get::<T>()
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// A small type map: app state and per-request values, one value per type.
#[derive(Default)]
pub struct Extensions {
    entries: Vec<(TypeId, Box<dyn Any>)>,
}

impl Extensions {
    /// Inserts `value`, replacing any value of the same type.
    pub fn insert<T: 'static>(&mut self, value: T) {
        let id = TypeId::of::<T>();
        self.entries.retain(|(key, _)| *key != id);
        self.entries.push((id, Box::new(value)));
    }

    /// The value of type `T`.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        let id = TypeId::of::<T>();
        self.entries
            .iter()
            .find(|(key, _)| *key == id)
            .and_then(|(_, value)| value.downcast_ref())
    }

    /// Moves every entry of `other` into `self`; `other` wins on conflicts.
    pub(crate) fn merge(&mut self, other: Extensions) {
        for (id, value) in other.entries {
            self.entries.retain(|(key, _)| *key != id);
            self.entries.push((id, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn splits_absolute_and_relative_urls() {
        let req = Request::new(Method::Get, "https://example.com/a/b?x=1&y=2#frag");
        assert_eq!(req.path(), "/a/b");
        assert_eq!(req.query(), Some("x=1&y=2"));
        let req = Request::new(Method::Get, "/only/path");
        assert_eq!(req.path(), "/only/path");
        assert_eq!(req.query(), None);
        assert_eq!(req.origin(), "");
        let req = Request::new(Method::Get, "http://127.0.0.1:8787/v1/jobs/x?y");
        assert_eq!(req.origin(), "http://127.0.0.1:8787");
        assert_eq!(
            Request::new(Method::Get, "https://edge.example?q").origin(),
            "https://edge.example"
        );
        let req = Request::new(Method::Get, "http://host?q");
        assert_eq!(req.path(), "/");
        assert_eq!(req.query(), Some("q"));
        let req = Request::new(Method::Get, "http://host");
        assert_eq!(req.path(), "/");
    }

    #[test]
    fn extensions_hold_one_value_per_type() {
        let mut ext = Extensions::default();
        ext.insert(1u32);
        ext.insert(2u32);
        ext.insert("s");
        assert_eq!(ext.get::<u32>(), Some(&2));
        assert_eq!(ext.get::<&str>(), Some(&"s"));
        assert_eq!(ext.get::<u64>(), None);
    }

    #[test]
    fn headers_can_be_mutated() {
        let mut req = Request::new(Method::Get, "/").with_header("X-A", "1");
        req.headers_mut().insert("x-b", "2").unwrap();
        assert_eq!(req.header("x-a").as_deref(), Some("1"));
        assert_eq!(req.header("X-B").as_deref(), Some("2"));
    }
}
