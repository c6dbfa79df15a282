//! The wasm entry: `fetch`, `queue` and `scheduled` events from workerd, served by
//! the app, the consumer and the cron handlers, each built once per isolate. The
//! JS glue it uses lives in `js`.
//!
//! The hot path crosses the JS boundary as little as it can: two reads (method and
//! URL) in, one call out to build the `Response`. Headers and body stay in JS until
//! something reads them. When the handler chain completes without awaiting, the
//! `Response` is returned directly instead of through a promise.

use std::cell::OnceCell;

use wasm_bindgen::prelude::*;

use crate::app::{App, Service};
use crate::body::{Body, Inner};
use crate::error::Error;
use crate::fast_path::{poll_once, FirstPoll};
use crate::http::Method;
use crate::js::{
    respond_bytes, respond_static_text, respond_stream, respond_text, JsBody, JsRequest,
};
use crate::request::Request;
use crate::response::{IntoResponse, Response};

thread_local! {
    static SERVICE: OnceCell<Result<Service, Error>> = const { OnceCell::new() };
    #[cfg(feature = "bindings")]
    static CONSUMER: OnceCell<std::rc::Rc<crate::queue::Consumer>> = const { OnceCell::new() };
    #[cfg(feature = "bindings")]
    static CRON: OnceCell<std::rc::Rc<crate::cron::Cron>> = const { OnceCell::new() };
}

/// Serves one scheduled event with the handlers `build` returns, built once per
/// isolate. Called by [`entry!`](crate::entry). The promise rejects when the
/// handler fails, so the runtime records the invocation as failed.
#[cfg(feature = "bindings")]
pub fn serve_scheduled(
    build: fn() -> crate::cron::Cron,
    event: JsValue,
    env: JsValue,
    ctx: JsValue,
) -> JsValue {
    let cron = CRON.with(|cell| cell.get_or_init(|| std::rc::Rc::new(build())).clone());
    let field = |name: &str| js_sys::Reflect::get(&event, &name.into()).unwrap_or_default();
    let schedule = crate::cron::Schedule::new(
        field("cron").as_string().unwrap_or_default(),
        field("scheduledTime").as_f64().unwrap_or_default() as u64,
        wasm_bindgen::JsCast::unchecked_into(env),
        worker::Context::new(wasm_bindgen::JsCast::unchecked_into(ctx)),
    );
    crate::js::drive(async move {
        match cron.run(schedule).await {
            Ok(()) => Ok(JsValue::UNDEFINED),
            Err(err) => Err(js_sys::Error::new(err.detail()).into()),
        }
    })
    .into()
}

/// A Durable Object class name and the function that builds its definition.
#[cfg(feature = "objects")]
pub type ObjectClass = (&'static str, fn() -> crate::object::Definition);

/// A Durable Object class, built once per isolate: its app, or why it failed
/// to build, and its alarm handler.
#[cfg(feature = "objects")]
struct BuiltObject {
    service: Result<Service, Error>,
    definition: crate::object::Definition,
}

#[cfg(feature = "objects")]
fn built_object(class: &str, definitions: &[ObjectClass]) -> Option<std::rc::Rc<BuiltObject>> {
    use std::rc::Rc;
    thread_local! {
        static BUILT: std::cell::RefCell<Vec<(String, Rc<BuiltObject>)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    BUILT.with(|built| {
        if let Some((_, found)) = built.borrow().iter().find(|(name, _)| name == class) {
            return Some(found.clone());
        }
        let (_, build) = definitions.iter().find(|(name, _)| *name == class)?;
        let definition = build();
        let service = (definition.app)().build();
        if let Err(err) = &service {
            log_object_build_failure(class, err);
        }
        let object = Rc::new(BuiltObject {
            service,
            definition,
        });
        built.borrow_mut().push((class.to_owned(), object.clone()));
        Some(object)
    })
}

/// Logs, once per isolate and class, why a Durable Object's app did not build.
/// Cold and out of line, like `log_build_failure`.
#[cfg(feature = "objects")]
#[cold]
#[inline(never)]
fn log_object_build_failure(class: &str, err: &Error) {
    crate::observe::Line::new()
        .field("msg", "a Durable Object's app failed to build")
        .field("class", &class)
        .field("detail", &err.detail())
        .write(crate::observe::Level::Error);
}

/// Serves a request to a Durable Object of `class` (one of `definitions`),
/// through the app its definition builds once per isolate. `state` is the
/// object's `ctx`, which handlers reach through `ObjectContext`. Called by the
/// class edgeway's shim exports, through [`entry!`](crate::entry).
#[cfg(feature = "objects")]
pub fn serve_object_fetch(
    class: &str,
    definitions: &[ObjectClass],
    state: JsValue,
    env: JsValue,
    request: web_sys::Request,
    method: String,
    url: String,
) -> JsValue {
    match built_object(class, definitions) {
        Some(object) => match &object.service {
            Ok(service) => dispatch(service, request, env, state, &method, url),
            Err(err) => {
                respond(Error::new(err.kind(), err.detail().to_owned()).into_response()).into()
            }
        },
        None => respond(
            Error::internal(format!("no Durable Object class {class} is registered"))
                .into_response(),
        )
        .into(),
    }
}

/// Runs the alarm handler of a Durable Object of `class`. The promise rejects
/// when it fails (or there is none), so the runtime retries the alarm.
#[cfg(feature = "objects")]
pub fn serve_object_alarm(
    class: &str,
    definitions: &[ObjectClass],
    state: JsValue,
    env: JsValue,
) -> JsValue {
    let object = built_object(class, definitions);
    let class = class.to_owned();
    crate::js::drive(async move {
        let alarm = object.and_then(|o| o.definition.alarm.clone());
        let Some(alarm) = alarm else {
            return Err(js_sys::Error::new(&format!("{class} has no alarm handler")).into());
        };
        let ctx =
            crate::object::ObjectContext::new(state, wasm_bindgen::JsCast::unchecked_into(env));
        match crate::panic::catch_panic_future(alarm(ctx)).await {
            Ok(Ok(())) => Ok(JsValue::UNDEFINED),
            Ok(Err(err)) => {
                crate::observe::Line::new()
                    .field("msg", "a Durable Object alarm failed")
                    .field("class", &class)
                    .field("detail", &err.detail())
                    .write(crate::observe::Level::Error);
                Err(js_sys::Error::new(err.detail()).into())
            }
            Err(panic) => Err(js_sys::Error::new(&panic).into()),
        }
    })
    .into()
}

/// A workflow class name and the function that builds its definition.
#[cfg(feature = "workflows")]
pub type WorkflowClass = (&'static str, fn() -> crate::workflow::Definition);

/// Runs one invocation of the workflow registered under `class` (one of
/// `definitions`, each built once per isolate). Called by the class edgeway's shim
/// exports for it, through [`entry!`](crate::entry). The promise resolves to the
/// run's output, or rejects with the error the instance fails with.
#[cfg(feature = "workflows")]
pub fn serve_workflow(
    class: &str,
    definitions: &[WorkflowClass],
    event: JsValue,
    step: JsValue,
    env: JsValue,
) -> JsValue {
    use std::rc::Rc;
    thread_local! {
        static BUILT: std::cell::RefCell<Vec<(String, Rc<crate::workflow::Definition>)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    let definition = BUILT.with(|built| {
        if let Some((_, found)) = built.borrow().iter().find(|(name, _)| name == class) {
            return Some(found.clone());
        }
        let (_, build) = definitions.iter().find(|(name, _)| *name == class)?;
        let definition = Rc::new(build());
        built
            .borrow_mut()
            .push((class.to_owned(), definition.clone()));
        Some(definition)
    });
    let class = class.to_owned();
    crate::js::drive(async move {
        let Some(definition) = definition else {
            return Err(
                js_sys::Error::new(&format!("no workflow is registered as {class}")).into(),
            );
        };
        let env = wasm_bindgen::JsCast::unchecked_into(env);
        match crate::workflow::run(&definition, event, step, env).await {
            Ok(text) => Ok(js_sys::JSON::parse(&text).unwrap_or(JsValue::NULL)),
            Err(err) => Err(crate::js::workflow::step_failure(
                err.detail(),
                err.is_permanent(),
            )),
        }
    })
    .into()
}

/// Serves one queue batch with the consumer `build` returns, built once per
/// isolate. Called by [`entry!`](crate::entry). The promise resolves once every
/// message has been acked, retried or dead-lettered.
#[cfg(feature = "bindings")]
pub fn serve_queue(
    build: fn() -> crate::queue::Consumer,
    batch: JsValue,
    env: JsValue,
    _ctx: JsValue,
) -> JsValue {
    let consumer = CONSUMER.with(|cell| cell.get_or_init(|| std::rc::Rc::new(build())).clone());
    crate::js::drive(async move {
        consumer
            .handle_batch(
                wasm_bindgen::JsCast::unchecked_into(batch),
                wasm_bindgen::JsCast::unchecked_into(env),
            )
            .await;
        Ok(JsValue::UNDEFINED)
    })
    .into()
}

/// Serves one fetch event with the app `build` returns, building it on the first
/// request of the isolate and reusing it afterwards. Called by [`entry!`](crate::entry).
///
/// Returns a `Response`, or a `Promise<Response>` when a handler awaits.
///
/// `method` and `url` are passed in by edgeway's shim, which reads them while it
/// still holds the request: that saves two wasm→JS→wasm round trips per request.
/// Under another entry (such as worker-build's) they are absent and read here instead.
pub fn serve(
    build: fn() -> App,
    request: web_sys::Request,
    env: JsValue,
    ctx: JsValue,
    method: Option<String>,
    url: Option<String>,
) -> JsValue {
    SERVICE.with(|cell| {
        let service = cell.get_or_init(|| {
            let built = build().build();
            if let Err(err) = &built {
                log_build_failure(err);
            }
            built
        });
        match service {
            Ok(service) => {
                let method = method.unwrap_or_else(|| request.method());
                let url = url.unwrap_or_else(|| request.url());
                dispatch(service, request, env, ctx, &method, url)
            }
            Err(err) => answer_build_failure(err),
        }
    })
}

// The two below are cold and out of line: workerd compiles each wasm function on
// its first call, and an app that builds never calls them.

/// Logs, once per isolate, why the app did not build.
#[cold]
#[inline(never)]
fn log_build_failure(err: &Error) {
    crate::observe::Line::new()
        .field("msg", "the app failed to build")
        .field("detail", err.detail())
        .write(crate::observe::Level::Error);
}

/// The answer to every request of an isolate whose app did not build.
#[cold]
#[inline(never)]
fn answer_build_failure(err: &Error) -> JsValue {
    respond(Error::new(err.kind(), err.detail().to_owned()).into_response()).into()
}

fn dispatch(
    service: &Service,
    raw: web_sys::Request,
    env: JsValue,
    ctx: JsValue,
    method: &str,
    url: String,
) -> JsValue {
    let request = Request::from_js(Method::parse(method), url, JsRequest::new(raw, env, ctx));
    // Synchronous fast path: most handlers never await, so poll once before paying
    // for a promise. See `fast_path` for why no wake-up is lost when it is pending.
    match poll_once(service.serve(request)) {
        FirstPoll::Ready(response) => respond(response).into(),
        // Panics while polling are caught inside `Service::serve` (a 500
        // problem); `drive` rejects on any other.
        FirstPoll::Pending(rest) => {
            crate::js::drive(async move { Ok(respond(rest.await).into()) }).into()
        }
    }
}

/// The JS `Response` for `response`, in one call across the boundary.
fn respond(response: Response) -> web_sys::Response {
    let (status, headers, body) = response.into_parts();
    // A plain text answer needs no header init: the runtime sets its content
    // type from a string body (the init costs workerd more than the decode).
    if status == crate::http::StatusCode::OK && is_only_text_plain(&headers) {
        match &body.0 {
            Inner::Bytes(text) => return respond_text(text),
            Inner::Static(text) => return respond_static_text(text),
            _ => {}
        }
    }
    let mut flat = String::with_capacity(headers.iter().map(|(n, v)| n.len() + v.len() + 2).sum());
    for (name, value) in headers.iter() {
        flat.push_str(name);
        flat.push('\n');
        flat.push_str(value);
        flat.push('\n');
    }
    // The JS `Response` constructor throws on a 204 (or 304) with a body.
    let forbids_body = status.forbids_body();
    let status = status.as_u16();
    let bytes = |body: &[u8]| respond_bytes(status, &flat, if forbids_body { &[] } else { body });
    match body.0 {
        Inner::Empty | Inner::Deferred => bytes(&[]),
        Inner::Bytes(body) => bytes(&body),
        Inner::Static(body) => bytes(body),
        Inner::Js(js) => match js.into_stream() {
            Some(stream) => respond_stream(status, &flat, &stream),
            None => bytes(&[]),
        },
    }
}

/// Whether `headers` is the text content type alone.
fn is_only_text_plain(headers: &crate::http::HeaderMap) -> bool {
    let mut all = headers.iter();
    matches!(
        (all.next(), all.next()),
        (Some((name, value)), None) if name == "content-type" && value == crate::response::TEXT_PLAIN
    )
}

impl Body {
    /// A body streamed from JS without being copied into wasm memory (wasm only).
    pub fn from_stream(stream: web_sys::ReadableStream) -> Self {
        Body(Inner::Js(JsBody::Stream(stream)))
    }
}
