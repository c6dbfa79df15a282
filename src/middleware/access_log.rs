//! One structured JSON log line per request.

use crate::middleware::{Next, REQUEST_ID_HEADER};
use crate::request::Request;
use crate::response::Response;

/// Writes one structured JSON log line per request, after its answer: method,
/// route *pattern* (never the raw path, which may hold ids), status, duration,
/// the cold-start flag, the route's feature tag and the request id. Layer it
/// inside [`request_id`](crate::middleware::request_id) so the line carries the id.
///
/// On Workers the clock only advances across I/O, so `duration_ms` of a
/// CPU-only handler is 0; that is the platform's timer, not a bug.
///
/// ```text
/// {"msg":"request","method":"GET","route":"/notes/{id}","status":200,"duration_ms":0.0,
///  "cold":true,"feature":null,"request_id":"7f3a…","level":"info","ts":…}
/// ```
pub async fn access_log(req: Request, next: Next) -> Response {
    let start = crate::platform::now_ms();
    let method = req.method().clone();
    let cold = req.is_cold_start();
    let (route, feature) = match req.route() {
        Some(meta) => (Some(meta.pattern.clone()), meta.feature.clone()),
        None => (None, None),
    };
    let request_id = req.header(REQUEST_ID_HEADER).map(|id| id.into_owned());
    let response = next.run(req).await;
    let duration_ms = crate::platform::now_ms() - start;
    crate::observe::Line::new()
        .field("msg", "request")
        .field("method", &method.as_str())
        .field("route", &route.as_deref())
        .field("status", &response.status().as_u16())
        .field("duration_ms", &duration_ms)
        .field("cold", &cold)
        .field("feature", &feature.as_deref())
        .field("request_id", &request_id)
        .write(crate::observe::Level::Info);
    response
}
