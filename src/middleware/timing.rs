//! `server-timing` and one structured log line per request.

use crate::middleware::{Next, REQUEST_ID_HEADER};
use crate::request::Request;
use crate::response::Response;

/// Adds `server-timing: app;dur=<ms>` and writes one structured JSON log line per
/// request: method, route *pattern* (never the raw path, which may hold ids),
/// status, duration, the cold-start flag and the route's feature tag.
///
/// On Workers the clock only advances across I/O, so a CPU-only handler reports
/// 0 ms; that is the platform's timer, not a bug.
pub async fn timing(req: Request, next: Next) -> Response {
    let start = crate::platform::now_ms();
    let method = req.method().clone();
    let cold = req.is_cold_start();
    let (route, feature) = match req.route() {
        Some(meta) => (Some(meta.pattern.clone()), meta.feature.clone()),
        None => (None, None),
    };
    let request_id = req.header(REQUEST_ID_HEADER).map(|id| id.into_owned());
    let mut response = next.run(req).await;
    let duration_ms = crate::platform::now_ms() - start;
    let _ = response
        .headers_mut()
        .append("server-timing", format!("app;dur={duration_ms:.1}"));
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
