//! The wasm entry: the only module that talks to workerd directly.
//!
//! The hot path crosses the JS boundary as little as it can: two reads (method and
//! URL) in, one call out to build the `Response`. Headers and body stay in JS until
//! something reads them. When the handler chain completes without awaiting, the
//! `Response` is returned directly instead of through a promise.

use std::cell::OnceCell;

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::app::{App, Service};
use crate::body::{too_large, Inner};
use crate::error::{Error, ErrorKind};
use crate::fast_path::{poll_once, FirstPoll};
use crate::http::{HeaderMap, Method};
use crate::request::Request;
use crate::response::{IntoResponse, Response};

/// The JS objects behind a request. Headers are fetched on first use.
pub(crate) struct JsParts {
    pub request: web_sys::Request,
    headers: OnceCell<web_sys::Headers>,
    // Read by the bindings (`Request::env`, `Request::context`).
    #[cfg_attr(not(feature = "bindings"), allow(dead_code))]
    pub env: JsValue,
    #[cfg_attr(not(feature = "bindings"), allow(dead_code))]
    pub ctx: JsValue,
}

impl JsParts {
    pub fn headers(&self) -> &web_sys::Headers {
        self.headers.get_or_init(|| self.request.headers())
    }
}

#[wasm_bindgen(inline_js = r#"
function pairs(flat) {
  const out = [];
  if (flat.length > 0) {
    const parts = flat.split("\n");
    for (let i = 0; i + 1 < parts.length; i += 2) out.push([parts[i], parts[i + 1]]);
  }
  return out;
}
export function respond_bytes(status, headers, body) {
  return new Response(body.length === 0 ? null : body, { status, headers: pairs(headers) });
}
export function respond_stream(status, headers, stream) {
  return new Response(stream, { status, headers: pairs(headers) });
}
"#)]
extern "C" {
    fn respond_bytes(status: u16, headers: &str, body: &[u8]) -> web_sys::Response;
    fn respond_stream(
        status: u16,
        headers: &str,
        stream: &web_sys::ReadableStream,
    ) -> web_sys::Response;
}

thread_local! {
    static SERVICE: OnceCell<Result<Service, Error>> = const { OnceCell::new() };
    #[cfg(feature = "bindings")]
    static CONSUMER: OnceCell<std::rc::Rc<crate::queue::Consumer>> = const { OnceCell::new() };
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
    wasm_bindgen_futures::future_to_promise(std::panic::AssertUnwindSafe(async move {
        consumer
            .handle_batch(batch.unchecked_into(), env.unchecked_into())
            .await;
        Ok(JsValue::UNDEFINED)
    }))
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
                crate::observe::log(
                    crate::observe::Level::Error,
                    serde_json::json!({"msg": "the app failed to build", "detail": err.detail()}),
                );
            }
            built
        });
        match service {
            Ok(service) => {
                let method = method.unwrap_or_else(|| request.method());
                let url = url.unwrap_or_else(|| request.url());
                dispatch(service, request, env, ctx, &method, url)
            }
            Err(err) => {
                to_js(Error::new(err.kind(), err.detail().to_owned()).into_response()).into()
            }
        }
    })
}

fn dispatch(
    service: &Service,
    raw: web_sys::Request,
    env: JsValue,
    ctx: JsValue,
    method: &str,
    url: String,
) -> JsValue {
    let method = Method::parse(method);
    let js = JsParts {
        request: raw,
        headers: OnceCell::new(),
        env,
        ctx,
    };
    let request = Request::from_js(method, url, js);
    // Synchronous fast path: most handlers never await, so poll once before paying
    // for a promise. See `fast_path` for why no wake-up is lost when it is pending.
    match poll_once(service.handle(request)) {
        FirstPoll::Ready(response) => to_js(response).into(),
        // Panics are already caught inside `Service::handle`, so asserting unwind
        // safety here cannot expose a half-updated state.
        FirstPoll::Pending(rest) => {
            wasm_bindgen_futures::future_to_promise(std::panic::AssertUnwindSafe(async move {
                Ok(to_js(rest.await).into())
            }))
            .into()
        }
    }
}

fn to_js(response: Response) -> web_sys::Response {
    let (status, headers, body) = response.into_parts();
    let mut flat = String::with_capacity(headers.iter().map(|(n, v)| n.len() + v.len() + 2).sum());
    for (name, value) in headers.iter() {
        flat.push_str(name);
        flat.push('\n');
        flat.push_str(value);
        flat.push('\n');
    }
    let status = status.as_u16();
    match body.0 {
        Inner::Empty | Inner::Deferred => respond_bytes(status, &flat, &[]),
        Inner::Bytes(bytes) => respond_bytes(status, &flat, body_bytes(status, &bytes)),
        Inner::Static(bytes) => respond_bytes(status, &flat, body_bytes(status, bytes)),
        Inner::Stream(stream) => respond_stream(status, &flat, &stream),
        Inner::Request(request) => match request.body() {
            Some(stream) => respond_stream(status, &flat, &stream),
            None => respond_bytes(status, &flat, &[]),
        },
    }
}

/// The bytes to send: none for statuses that forbid a body (the JS `Response`
/// constructor throws on a 204 with a body).
fn body_bytes(status: u16, bytes: &[u8]) -> &[u8] {
    if crate::StatusCode::from_u16(status).is_some_and(|s| s.forbids_body()) {
        &[]
    } else {
        bytes
    }
}

/// Reads a JS stream into memory, cancelling it as soon as it passes `limit` bytes.
pub(crate) async fn read_stream(
    stream: web_sys::ReadableStream,
    limit: usize,
) -> Result<Vec<u8>, Error> {
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let mut out = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|err| {
            Error::new(
                ErrorKind::BadRequest,
                format!("could not read the request body: {err:?}"),
            )
        })?;
        if Reflect::get(&chunk, &"done".into())
            .ok()
            .and_then(|d| d.as_bool())
            == Some(true)
        {
            return Ok(out);
        }
        let value: Uint8Array = Reflect::get(&chunk, &"value".into())
            .map_err(|_| Error::internal("a body chunk had no value"))?
            .unchecked_into();
        let len = value.length() as usize;
        if out.len() + len > limit {
            let _ = reader.cancel();
            return Err(too_large(limit));
        }
        let start = out.len();
        out.resize(start + len, 0);
        value.copy_to(&mut out[start..]);
    }
}

/// Copies JS headers into an owned map (names arrive lowercased from workerd).
pub(crate) fn copy_headers(headers: &web_sys::Headers) -> HeaderMap {
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
