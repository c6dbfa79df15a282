//! A request from workerd: method and URL read up front by the shim, headers
//! and body left in JS until something asks for them.

use std::cell::OnceCell;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// The JS objects behind a request. Headers are fetched on first use.
pub(crate) struct JsRequest {
    request: web_sys::Request,
    headers: OnceCell<web_sys::Headers>,
    // Read by the bindings (`Request::env`, `Request::context`).
    #[cfg_attr(not(feature = "bindings"), allow(dead_code))]
    pub env: JsValue,
    #[cfg_attr(not(feature = "bindings"), allow(dead_code))]
    pub ctx: JsValue,
}

impl JsRequest {
    /// The request as workerd handed it over, with its bindings and context.
    pub fn new(request: web_sys::Request, env: JsValue, ctx: JsValue) -> Self {
        Self {
            request,
            headers: OnceCell::new(),
            env,
            ctx,
        }
    }

    fn js_headers(&self) -> &web_sys::Headers {
        self.headers.get_or_init(|| self.request.headers())
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<String> {
        self.js_headers().get(name).ok().flatten()
    }

    /// Every header, as workerd lists them (names lowercased).
    pub fn for_each_header(&self, mut each: impl FnMut(String, String)) {
        if let Ok(Some(entries)) = js_sys::try_iter(self.js_headers()) {
            for entry in entries.flatten() {
                let pair: js_sys::Array = entry.unchecked_into();
                if let (Some(name), Some(value)) =
                    (pair.get(0).as_string(), pair.get(1).as_string())
                {
                    each(name, value);
                }
            }
        }
    }

    /// The body, still in JS.
    pub fn body(&self) -> super::JsBody {
        // `Clone::clone` copies the JS reference; `Request::clone` would tee the body.
        super::JsBody::Request(Clone::clone(&self.request))
    }
}
