//! JS glue (wasm32 only): the one place that calls into workerd's JS objects.
//!
//! The HTTP core (`request`, `body`, `response`, routing, extraction) knows no JS:
//! a request from workerd carries its headers and body behind the core's
//! [`HostRequest`](crate::request::HostRequest) and
//! [`HostBody`](crate::body::HostBody) traits, implemented here, and the entry
//! (`runtime`) turns a core `Response` into a JS one with [`respond`]. The
//! bindings (`proxy`, `platform`) use this module too; nothing here is public.

mod body;
mod request;
mod response;

#[cfg(feature = "bindings")]
pub(crate) use body::into_js_body;
pub(crate) use body::JsBody;
pub(crate) use request::from_workerd;
#[cfg(feature = "bindings")]
pub(crate) use request::JsRequest;
pub(crate) use response::respond;
