//! JS glue (wasm32 only): the one place that calls into workerd's JS objects.
//!
//! It is a leaf: it imports nothing from the rest of the crate, so it knows no
//! edgeway type, and everything above it (the core's `Request` and `Body` on
//! wasm, the entry, the bindings) calls down into it with plain Rust values.
//! Calls are static, not through trait objects, so a worker that never reads a
//! header or a body links none of the JS that would (dynamic dispatch cost hello
//! 5.5 KiB gzip, measured).

mod body;
#[cfg(feature = "cache")]
pub(crate) mod cache;
#[cfg(feature = "jwt")]
pub(crate) mod crypto;
#[cfg(any(feature = "ops", feature = "workflows"))]
pub(crate) mod d1;
#[cfg(feature = "objects")]
pub(crate) mod object;
mod promise;
mod request;
mod response;
#[cfg(feature = "workflows")]
pub(crate) mod workflow;

pub(crate) use body::{JsBody, ReadError};
pub(crate) use promise::{drive, settled};
pub(crate) use request::JsRequest;
pub(crate) use response::{respond_bytes, respond_static_text, respond_stream, respond_text};
