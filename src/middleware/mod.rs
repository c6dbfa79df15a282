//! Middleware: plain `async fn(Request, Next) -> Response`, composed as an onion.
//!
//! The first layer added is the outermost. App-wide layers run after routing, so
//! they can read the matched route pattern and feature tag, and they also wrap the
//! 404, 405, OPTIONS and redirect answers. Layers on a nested [`App`](crate::App)
//! wrap only that group's routes.
//!
//! ```
//! use edgeway::{App, Next, Request, Response};
//!
//! async fn deny_robots(req: Request, next: Next) -> Response {
//!     let is_robot = req.header("user-agent").is_some_and(|ua| ua.contains("bot"));
//!     let mut response = next.run(req).await;
//!     if is_robot {
//!         response.headers_mut().insert("x-robots-tag", "noindex").unwrap();
//!     }
//!     response
//! }
//!
//! let app = App::new().layer(deny_robots).get("/", || async { "hi" });
//! # app.build().unwrap();
//! ```

mod access_log;
mod body_limit;
#[cfg(feature = "cache")]
mod cache;
mod cors;
#[cfg(feature = "bindings")]
mod rate_limit;
mod request_id;
#[cfg(feature = "bindings")]
mod strangler;
mod timing;

pub use access_log::access_log;
pub use body_limit::body_limit;
#[cfg(feature = "cache")]
pub use cache::{ResponseCache, CACHE_STATUS};
pub use cors::Cors;
#[cfg(feature = "bindings")]
pub use rate_limit::RateLimit;
pub use request_id::{request_id, REQUEST_ID_HEADER};
#[cfg(feature = "bindings")]
pub use strangler::strangler_fig;
pub use timing::timing;

use std::future::Future;
use std::rc::Rc;

use crate::handler::{BoxFuture, Endpoint};
use crate::request::Request;
use crate::response::Response;

/// A layer of the onion. Implemented for every `Fn(Request, Next) -> impl Future<Output = Response>`.
pub trait Middleware: 'static {
    /// Handles `req`, usually by calling `next.run(req)` somewhere in between.
    fn call(&self, req: Request, next: Next) -> BoxFuture<Response>;
}

impl<F, Fut> Middleware for F
where
    F: Fn(Request, Next) -> Fut + 'static,
    Fut: Future<Output = Response> + 'static,
{
    fn call(&self, req: Request, next: Next) -> BoxFuture<Response> {
        Box::pin(self(req, next))
    }
}

/// The rest of the onion: the remaining layers, then the endpoint.
pub struct Next {
    layers: Rc<[Rc<dyn Middleware>]>,
    index: usize,
    endpoint: Endpoint,
}

impl Next {
    pub(crate) fn new(layers: Rc<[Rc<dyn Middleware>]>, endpoint: Endpoint) -> Self {
        Self {
            layers,
            index: 0,
            endpoint,
        }
    }

    /// Passes `req` inward and resolves to the response coming back out.
    pub fn run(mut self, req: Request) -> BoxFuture<Response> {
        match self.layers.get(self.index).cloned() {
            Some(layer) => {
                self.index += 1;
                layer.call(req, self)
            }
            None => (self.endpoint)(req),
        }
    }
}

/// Wraps `endpoint` in `layers` (outermost first) as a new endpoint.
pub(crate) fn wrap(layers: Rc<[Rc<dyn Middleware>]>, endpoint: Endpoint) -> Endpoint {
    if layers.is_empty() {
        return endpoint;
    }
    Rc::new(move |req| Next::new(layers.clone(), endpoint.clone()).run(req))
}
