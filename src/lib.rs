//! # edgeway
//!
//! An edge-function framework for Rust on Cloudflare Workers: a `matchit` router
//! built once per isolate, axum-style extractors, Hono-style middleware, and
//! problem+json errors, on a fetch entry that crosses the JS boundary as little as
//! it can.
//!
//! ```
//! use edgeway::{App, Json, Path, Query, StatusCode};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Paging { limit: Option<u32> }
//!
//! #[derive(Serialize, Deserialize)]
//! struct Note { text: String }
//!
//! async fn show(Path(id): Path<u32>, Query(paging): Query<Paging>) -> String {
//!     format!("note {id}, limit {}", paging.limit.unwrap_or(10))
//! }
//!
//! async fn create(Json(note): Json<Note>) -> (StatusCode, Json<Note>) {
//!     (StatusCode::CREATED, Json(note))
//! }
//!
//! fn app() -> App {
//!     App::new()
//!         .layer(edgeway::middleware::request_id)
//!         .layer(edgeway::middleware::access_log)
//!         .layer(edgeway::middleware::timing)
//!         .get("/notes/{id}", show)
//!         .post("/notes", create)
//! }
//!
//! // In a worker crate, this exports `fetch` to workerd:
//! edgeway::entry!(app);
//! # fn main() {
//! # let service = app().build().unwrap();
//! # let req = edgeway::Request::new(edgeway::Method::Get, "/notes/7?limit=3");
//! # let res = edgeway::__private::block_on(service.handle(req));
//! # assert_eq!(res.body_text(), "note 7, limit 3");
//! # }
//! ```
//!
//! The pure core (routing, extraction, errors, middleware) has no JS in it and is
//! tested natively and on wasm32. Only the wasm-only entry and its JS glue touch
//! workerd (docs/ARCHITECTURE.md, "Layers").
#![warn(missing_docs)]

mod app;
#[cfg(feature = "auth")]
pub mod auth;
#[cfg(feature = "aws")]
pub mod aws;
mod body;
#[cfg(feature = "bindings")]
pub mod cron;
#[cfg(any(feature = "ops", feature = "workflows"))]
mod d1;
#[cfg(feature = "bindings")]
mod env;
mod error;
mod extract;
#[cfg(feature = "fanout")]
pub mod fanout;
// Used by the wasm entry; compiled everywhere so its tests run natively too.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod fast_path;
mod handler;
mod http;
#[cfg(feature = "jobs")]
pub mod jobs;
#[cfg(target_arch = "wasm32")]
mod js;
mod json_text;
#[cfg(feature = "bindings")]
pub mod kv;
pub mod middleware;
#[cfg(feature = "objects")]
pub mod object;
pub mod observe;
#[cfg(feature = "ops")]
pub mod ops;
#[cfg(feature = "bindings")]
pub mod outbound;
mod panic;
mod params;
pub mod platform;
#[cfg(feature = "bindings")]
mod proxy;
#[cfg(feature = "bindings")]
pub mod queue;
mod request;
mod response;
mod router;
#[cfg(target_arch = "wasm32")]
mod runtime;
#[cfg(test)]
mod service_tests;
#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
pub mod testing;
#[cfg(feature = "workflows")]
pub mod workflow;
/// Standard Webhooks v1 signing and verification (feature `signing`), from
/// `edgeway-protocol`: fan-out deliveries and job callbacks are both signed this way.
#[cfg(feature = "signing")]
pub use edgeway_protocol::webhook;

pub use app::{App, RouteInfo, RouteMatch, Routes, Service};
pub use body::Body;
pub use error::{Error, ErrorKind};
pub use extract::{Form, FromRequest, FromRequestParts, Json, Origin, Path, Query, State, Url};
#[cfg(feature = "validate")]
pub use extract::{Valid, Validated};
pub use handler::{BoxFuture, Handler};
pub use http::{HeaderMap, Method, StatusCode};
pub use middleware::{Middleware, Next};
pub use params::Params;
pub use request::{Extensions, Request, RouteMeta, DEFAULT_BODY_LIMIT};
pub use response::{IntoResponse, Response, ResponseBuilder};
pub use router::TrailingSlash;

/// The `worker` crate edgeway builds on, for `Env`, `Context` and other bindings.
#[cfg(feature = "bindings")]
pub use worker;

/// What the `entry!` and `binding!` macros and the doctests reach; not an API.
#[doc(hidden)]
pub mod __private {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    #[cfg(target_arch = "wasm32")]
    pub use crate::runtime::serve;
    #[cfg(all(target_arch = "wasm32", feature = "workflows"))]
    pub use crate::runtime::serve_workflow;
    #[cfg(all(target_arch = "wasm32", feature = "objects"))]
    pub use crate::runtime::{serve_object_alarm, serve_object_fetch, ObjectClass};
    #[cfg(all(target_arch = "wasm32", feature = "bindings"))]
    pub use crate::runtime::{serve_queue, serve_scheduled};

    /// `text`'s bytes as an array, for the `edgeway.classes` custom section the
    /// entry writes (a `static` needs an array, not a `&str`).
    pub const fn section<const N: usize>(text: &str) -> [u8; N] {
        let bytes = text.as_bytes();
        let mut out = [0u8; N];
        let mut i = 0;
        while i < N {
            out[i] = bytes[i];
            i += 1;
        }
        out
    }
    #[cfg(target_arch = "wasm32")]
    pub use {wasm_bindgen, web_sys};

    /// Polls `future` once and returns its output, for driving a `Service` in
    /// doctests and unit tests.
    ///
    /// # Panics
    /// If the future is still pending: pure-core futures never wait on I/O, so a
    /// pending one means the test reached something that needs workerd.
    pub fn block_on<F: Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("future awaited I/O; run it in workerd instead"),
        }
    }
}

/// Exports the worker's handlers: `fetch` serving the [`App`] that `build` returns,
/// and optionally (feature `bindings`) `queue` serving the `queue::Consumer` that
/// `consumer` returns and `scheduled` serving the `cron::Cron` that `cron`
/// returns; and (feature `workflows`) one class per workflow, named as
/// `wrangler.toml`'s `[[workflows]] class_name`, running the
/// `workflow::Definition` its function returns. `edgeway build` writes those
/// classes into the worker's entry.
///
/// Each is built on its first event in an isolate and reused after that. App
/// build errors (such as conflicting routes) are logged and answered with a 500
/// problem response.
///
/// ```ignore
/// fn app() -> edgeway::App {
///     edgeway::App::new().get("/", || async { "hello" })
/// }
/// edgeway::entry!(app);
/// // or, with a queue consumer and cron triggers:
/// // edgeway::entry!(fetch: app, queue: consumer, scheduled: cron);
/// // or with workflows (queue and scheduled stay optional, in this order):
/// // edgeway::entry!(fetch: app, workflows: { OrderFulfillment: orders });
/// ```
#[macro_export]
macro_rules! entry {
    (
        fetch: $build:expr
        $(, queue: $consumer:expr)?
        $(, scheduled: $cron:expr)?
        $(, workflows: { $($class:ident : $definition:expr),+ $(,)? })?
        $(, objects: { $($object:ident : $object_definition:expr),+ $(,)? })?
        $(,)?
    ) => {
        $crate::entry!($build);
        $($crate::entry!(@queue $consumer);)?
        $($crate::entry!(@scheduled $cron);)?
        $($crate::entry!(@workflows $($class : $definition),+);)?
        $($crate::entry!(@objects $($object : $object_definition),+);)?
    };
    (@objects $($class:ident : $definition:expr),+) => {
        $crate::__with_objects! {
        // Type-checks every definition on every target.
        $(const _: fn() -> $crate::object::Definition = $definition;)+

        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        mod __edgeway_object_entry {
            #[allow(unused_imports)]
            use super::*;
            use $crate::__private::wasm_bindgen;

            const CLASSES: &[$crate::__private::ObjectClass] =
                &[$((stringify!($class), $definition as fn() -> $crate::object::Definition)),+];

            #[wasm_bindgen::prelude::wasm_bindgen]
            pub fn __edgeway_object_fetch(
                class: &str,
                state: wasm_bindgen::JsValue,
                env: wasm_bindgen::JsValue,
                request: $crate::__private::web_sys::Request,
                method: String,
                url: String,
            ) -> wasm_bindgen::JsValue {
                $crate::__private::serve_object_fetch(class, CLASSES, state, env, request, method, url)
            }

            #[wasm_bindgen::prelude::wasm_bindgen]
            pub fn __edgeway_object_alarm(
                class: &str,
                state: wasm_bindgen::JsValue,
                env: wasm_bindgen::JsValue,
            ) -> wasm_bindgen::JsValue {
                $crate::__private::serve_object_alarm(class, CLASSES, state, env)
            }

            // The classes `edgeway build` exports from the shim, one a line.
            const NAMES: &str = concat!($("object ", stringify!($class), "\n"),+);
            #[link_section = "edgeway.classes"]
            #[used]
            static NAMES_SECTION: [u8; NAMES.len()] = $crate::__private::section(NAMES);
        }
        }
    };
    (@workflows $($class:ident : $definition:expr),+) => {
        $crate::__with_workflows! {
        // Type-checks every definition on every target.
        $(const _: fn() -> $crate::workflow::Definition = $definition;)+

        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        mod __edgeway_workflow_entry {
            #[allow(unused_imports)]
            use super::*;
            use $crate::__private::wasm_bindgen;

            #[wasm_bindgen::prelude::wasm_bindgen]
            pub fn __edgeway_workflow(
                class: &str,
                event: wasm_bindgen::JsValue,
                step: wasm_bindgen::JsValue,
                env: wasm_bindgen::JsValue,
            ) -> wasm_bindgen::JsValue {
                $crate::__private::serve_workflow(
                    class,
                    &[$((stringify!($class), $definition as fn() -> $crate::workflow::Definition)),+],
                    event,
                    step,
                    env,
                )
            }

            // The classes `edgeway build` exports from the shim, one a line.
            const CLASSES: &str = concat!($("workflow ", stringify!($class), "\n"),+);
            #[link_section = "edgeway.classes"]
            #[used]
            static CLASSES_SECTION: [u8; CLASSES.len()] = $crate::__private::section(CLASSES);
        }
        }
    };
    (@queue $consumer:expr) => {
        $crate::__with_bindings! {
        // Type-checks `consumer` on every target.
        const _: fn() -> $crate::queue::Consumer = $consumer;

        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        mod __edgeway_queue_entry {
            #[allow(unused_imports)]
            use super::*;
            use $crate::__private::wasm_bindgen;

            #[wasm_bindgen::prelude::wasm_bindgen]
            pub fn queue(
                batch: wasm_bindgen::JsValue,
                env: wasm_bindgen::JsValue,
                ctx: wasm_bindgen::JsValue,
            ) -> wasm_bindgen::JsValue {
                $crate::__private::serve_queue($consumer, batch, env, ctx)
            }
        }
        }
    };
    (@scheduled $cron:expr) => {
        $crate::__with_bindings! {
        // Type-checks `cron` on every target.
        const _: fn() -> $crate::cron::Cron = $cron;

        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        mod __edgeway_scheduled_entry {
            #[allow(unused_imports)]
            use super::*;
            use $crate::__private::wasm_bindgen;

            #[wasm_bindgen::prelude::wasm_bindgen]
            pub fn scheduled(
                event: wasm_bindgen::JsValue,
                env: wasm_bindgen::JsValue,
                ctx: wasm_bindgen::JsValue,
            ) -> wasm_bindgen::JsValue {
                $crate::__private::serve_scheduled($cron, event, env, ctx)
            }
        }
        }
    };
    ($build:expr) => {
        // Type-checks `build` on every target, so native `cargo check` catches mistakes.
        const _: fn() -> $crate::App = $build;

        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        mod __edgeway_entry {
            #[allow(unused_imports)]
            use super::*;
            use $crate::__private::wasm_bindgen;

            #[wasm_bindgen::prelude::wasm_bindgen]
            pub fn fetch(
                request: $crate::__private::web_sys::Request,
                env: wasm_bindgen::JsValue,
                ctx: wasm_bindgen::JsValue,
                method: Option<String>,
                url: Option<String>,
            ) -> wasm_bindgen::JsValue {
                $crate::__private::serve($build, request, env, ctx, method, url)
            }
        }
    };
}

/// Expands its input when edgeway's `bindings` feature is on; otherwise it is a
/// compile error that names the feature, rather than "could not find `queue`".
#[cfg(feature = "bindings")]
#[doc(hidden)]
#[macro_export]
macro_rules! __with_bindings {
    ($($body:tt)*) => { $($body)* };
}

#[cfg(not(feature = "bindings"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __with_bindings {
    ($($body:tt)*) => {
        ::core::compile_error!(
            "this needs edgeway's `bindings` feature (KV, Queues, Env), which is on by default: \
             remove `default-features = false` from the edgeway dependency, or add `features = [\"bindings\"]`"
        );
    };
}

#[cfg(feature = "objects")]
#[doc(hidden)]
#[macro_export]
macro_rules! __with_objects {
    ($($body:tt)*) => { $($body)* };
}

#[cfg(not(feature = "objects"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __with_objects {
    ($($body:tt)*) => {
        compile_error!("`entry!(…, objects: {…})` needs edgeway's `objects` feature");
    };
}

#[cfg(feature = "workflows")]
#[doc(hidden)]
#[macro_export]
macro_rules! __with_workflows {
    ($($body:tt)*) => { $($body)* };
}

#[cfg(not(feature = "workflows"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __with_workflows {
    ($($body:tt)*) => {
        compile_error!("`entry!(…, workflows: {…})` needs edgeway's `workflows` feature");
    };
}

/// Declares a typed binding extractor named after a `wrangler.toml` binding
/// (feature `bindings`). Outside a request (a queue consumer), open it with
/// `Items::from_env(message.env())`.
///
/// ```ignore
/// edgeway::binding!(pub Items: Kv = "ITEMS");
/// edgeway::binding!(pub Jobs: Queue<edgeway::queue::Envelope> = "JOBS");
///
/// async fn put(items: Items, jobs: Jobs, Json(item): Json<Item>) -> Result<StatusCode, Error> {
///     items.put_json(&item.id, &item, PutOptions::new()).await?;
///     jobs.send(&Envelope::new("item.created", &item)?).await?;
///     Ok(StatusCode::CREATED)
/// }
/// ```
#[macro_export]
macro_rules! binding {
    ($(#[$meta:meta])* $vis:vis $name:ident : Kv = $binding:literal) => { $crate::__with_bindings! {
        $(#[$meta])*
        #[doc = concat!("The `", $binding, "` KV namespace.")]
        $vis struct $name(pub $crate::kv::Kv);

        impl ::core::ops::Deref for $name {
            type Target = $crate::kv::Kv;
            fn deref(&self) -> &$crate::kv::Kv {
                &self.0
            }
        }

        impl $name {
            /// The binding in `env`, outside a request (a queue consumer, a cron job).
            #[allow(dead_code)]
            $vis fn from_env(env: &$crate::worker::Env) -> ::core::result::Result<Self, $crate::Error> {
                $crate::kv::Kv::from_env(env, $binding).map($name)
            }
        }

        impl $crate::FromRequestParts for $name {
            fn from_request_parts(req: &mut $crate::Request) -> ::core::result::Result<Self, $crate::Error> {
                $crate::kv::Kv::from_request(req, $binding).map($name)
            }
        }
    } };
    ($(#[$meta:meta])* $vis:vis $name:ident : Queue<$message:ty> = $binding:literal) => { $crate::__with_bindings! {
        $(#[$meta])*
        #[doc = concat!("The `", $binding, "` queue producer.")]
        $vis struct $name(pub $crate::queue::Producer<$message>);

        impl ::core::ops::Deref for $name {
            type Target = $crate::queue::Producer<$message>;
            fn deref(&self) -> &$crate::queue::Producer<$message> {
                &self.0
            }
        }

        impl $name {
            /// The binding in `env`, outside a request (a queue consumer, a cron job).
            #[allow(dead_code)]
            $vis fn from_env(env: &$crate::worker::Env) -> ::core::result::Result<Self, $crate::Error> {
                $crate::queue::Producer::from_env(env, $binding).map($name)
            }
        }

        impl $crate::FromRequestParts for $name {
            fn from_request_parts(req: &mut $crate::Request) -> ::core::result::Result<Self, $crate::Error> {
                $crate::queue::Producer::from_request(req, $binding).map($name)
            }
        }
    } };
}
