//! Outbound HTTP from the worker: one thin `fetch` adapter shared by the Lambda
//! client, webhook delivery and handlers that call other services.
//!
//! Redirects are never followed (a 3xx is an answer, not an instruction: following
//! one could leave the SSRF guard's checks behind), every call has a timeout, and
//! no answer is read past its cap: a receiver that streams without end costs
//! `max_response_bytes` of memory, not the isolate.

use js_sys::{Array, Promise, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::error::{Error, ErrorKind};

#[wasm_bindgen(inline_js = r#"
export function outbound_fetch(method, url, headers, body, timeoutMs, maxBytes) {
  return fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : body.slice(),
    redirect: "manual",
    signal: AbortSignal.timeout(timeoutMs),
  }).then(async (res) => {
    const chunks = [];
    let size = 0;
    let truncated = false;
    if (res.body) {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (size + value.length > maxBytes) {
          chunks.push(value.subarray(0, maxBytes - size));
          size = maxBytes;
          truncated = true;
          await reader.cancel();
          break;
        }
        chunks.push(value);
        size += value.length;
      }
    }
    const out = new Uint8Array(size);
    let at = 0;
    for (const chunk of chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return [res.status, [...res.headers], out, truncated];
  });
}
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    fn outbound_fetch(
        method: &str,
        url: &str,
        headers: &Array,
        body: Option<Vec<u8>>,
        timeout_ms: u32,
        max_bytes: u32,
    ) -> Result<Promise, JsValue>;
}

/// A request to send.
#[derive(Clone, Debug)]
pub struct OutboundRequest {
    /// The method.
    pub method: &'static str,
    /// The absolute URL.
    pub url: String,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The body; empty sends none.
    pub body: Vec<u8>,
    /// How long to wait for the whole answer.
    pub timeout_ms: u32,
    /// The most of the answer's body to read; the rest is cancelled unread.
    pub max_response_bytes: u32,
}

/// What came back.
#[derive(Clone, Debug)]
pub struct OutboundReply {
    /// The status code.
    pub status: u16,
    /// Header names (lower-case, as `Headers` iterates them) and values.
    pub headers: Vec<(String, String)>,
    /// The body, at most the request's `max_response_bytes` of it.
    pub body: Vec<u8>,
    /// Whether the body was cut at `max_response_bytes`.
    pub truncated: bool,
}

impl OutboundReply {
    /// The first value of `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body decoded as JSON; a body that is not the JSON of `T` is a 502
    /// `upstream` error (which says so when the body was cut at the cap).
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        crate::json_text::from_json_bytes(&self.body).map_err(|e| {
            let cut = if self.truncated {
                " (cut at the request's max_response_bytes)"
            } else {
                ""
            };
            Error::new(
                ErrorKind::Upstream,
                format!("the reply's body does not decode{cut}: {e}"),
            )
        })
    }

    /// Up to `max` bytes of the body as text, for error messages.
    pub fn excerpt(&self, max: usize) -> String {
        let end = self.body.len().min(max);
        String::from_utf8_lossy(&self.body[..end]).into_owned()
    }
}

/// Awaits a JS promise: on wasm through edgeway's promise glue (no closures per
/// await); natively, where the bindings only type-check, through
/// wasm-bindgen-futures.
pub(crate) async fn awaited(promise: Promise) -> Result<JsValue, JsValue> {
    #[cfg(target_arch = "wasm32")]
    return crate::js::settled(&promise).await;
    #[cfg(not(target_arch = "wasm32"))]
    return wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Awaits a promise-returning JS call that may also throw synchronously; either
/// failure becomes an [`ErrorKind::Upstream`] error saying `what` failed.
pub(crate) async fn settle(
    call: Result<Promise, JsValue>,
    what: impl FnOnce() -> String,
) -> Result<JsValue, Error> {
    let settled = match call {
        Ok(promise) => awaited(promise).await,
        Err(e) => Err(e),
    };
    settled.map_err(|e| {
        Error::new(
            ErrorKind::Upstream,
            format!("{}: {}", what(), crate::platform::js_error_message(&e)),
        )
    })
}

/// Sends `request` with the runtime's `fetch`. A network failure or a timeout is a
/// retryable [`ErrorKind::Upstream`] error.
pub async fn send(request: &OutboundRequest) -> Result<OutboundReply, Error> {
    #[cfg(feature = "ops")]
    crate::ops::count(crate::ops::Op::Subrequest);
    let headers = Array::new();
    for (name, value) in &request.headers {
        headers.push(&Array::of2(&name.into(), &value.into()));
    }
    let body = (!request.body.is_empty()).then(|| request.body.clone());
    let answer = settle(
        outbound_fetch(
            request.method,
            &request.url,
            &headers,
            body,
            request.timeout_ms,
            request.max_response_bytes,
        ),
        || format!("{} {} failed", request.method, request.url),
    )
    .await?;
    let answer: Array = answer.into();
    let status = answer.get(0).as_f64().unwrap_or(0.0) as u16;
    let headers = Array::from(&answer.get(1))
        .iter()
        .map(|pair| {
            let pair = Array::from(&pair);
            (
                pair.get(0).as_string().unwrap_or_default(),
                pair.get(1).as_string().unwrap_or_default(),
            )
        })
        .collect();
    let body = Uint8Array::from(answer.get(2)).to_vec();
    Ok(OutboundReply {
        status,
        headers,
        body,
        truncated: answer.get(3).as_bool().unwrap_or(false),
    })
}
