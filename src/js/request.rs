//! A request from workerd: method and URL read up front, headers and body left in
//! JS until something asks for them.

use std::any::Any;
use std::cell::OnceCell;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::JsBody;
use crate::body::Body;
use crate::http::{HeaderMap, Method};
use crate::request::{HostRequest, Request};

/// The JS objects behind a request. Headers are fetched on first use.
pub(crate) struct JsRequest {
    pub request: web_sys::Request,
    headers: OnceCell<web_sys::Headers>,
    // Read by the bindings (`Request::env`, `Request::context`).
    #[cfg_attr(not(feature = "bindings"), allow(dead_code))]
    pub env: JsValue,
    #[cfg_attr(not(feature = "bindings"), allow(dead_code))]
    pub ctx: JsValue,
}

impl JsRequest {
    fn headers(&self) -> &web_sys::Headers {
        self.headers.get_or_init(|| self.request.headers())
    }
}

impl HostRequest for JsRequest {
    fn header(&self, name: &str) -> Option<String> {
        self.headers().get(name).ok().flatten()
    }

    fn headers(&self) -> HeaderMap {
        copy_headers(JsRequest::headers(self))
    }

    fn body(&self) -> Body {
        // `Clone::clone` copies the JS reference; `Request::clone` would tee the body.
        Body::from_host(Box::new(JsBody::Request(Clone::clone(&self.request))))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The core request for a fetch event: `method` and `url` as the shim read them,
/// the rest behind [`JsRequest`].
pub(crate) fn from_workerd(
    method: Method,
    url: String,
    request: web_sys::Request,
    env: JsValue,
    ctx: JsValue,
) -> Request {
    Request::from_host(
        method,
        url,
        Box::new(JsRequest {
            request,
            headers: OnceCell::new(),
            env,
            ctx,
        }),
    )
}

/// Copies JS headers into an owned map (names arrive lowercased from workerd).
fn copy_headers(headers: &web_sys::Headers) -> HeaderMap {
    let mut map = HeaderMap::new();
    if let Ok(Some(entries)) = js_sys::try_iter(headers) {
        for entry in entries.flatten() {
            let pair: js_sys::Array = entry.unchecked_into();
            if let (Some(name), Some(value)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                map.push_trusted(name, value);
            }
        }
    }
    map
}
