//! `server-timing`: how long the app took, for the browser's network panel.

use crate::middleware::Next;
use crate::request::Request;
use crate::response::Response;

/// Adds `server-timing: app;dur=<ms>`, the time from this layer to the answer,
/// in milliseconds with one decimal. Pair it with
/// [`access_log`](crate::middleware::access_log) for a log line per request.
///
/// On Workers the clock only advances across I/O, so a CPU-only handler reports
/// 0 ms; that is the platform's timer, not a bug.
pub async fn timing(req: Request, next: Next) -> Response {
    let start = crate::platform::now_ms();
    let mut response = next.run(req).await;
    let duration = server_timing(crate::platform::now_ms() - start);
    let _ = response.headers_mut().append("server-timing", duration);
    response
}

/// `app;dur=` and `ms` in tenths, written with integer formatting: a float
/// written with a precision (`{:.1}`) links and compiles float-to-decimal code
/// that every isolate's first request would pay for.
fn server_timing(ms: f64) -> String {
    // A clock that steps back reads as 0 (as does NaN, which `as` maps to 0), and
    // the bound keeps the tenths within a u64. Non-negative, so adding a half and
    // truncating rounds without a call to `round`.
    let tenths = (ms.clamp(0.0, 1e15) * 10.0 + 0.5) as u64;
    format!("app;dur={}.{}", tenths / 10, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::server_timing;

    #[test]
    fn durations_are_written_in_tenths_of_a_millisecond() {
        assert_eq!(server_timing(0.0), "app;dur=0.0");
        assert_eq!(server_timing(12.0), "app;dur=12.0");
        assert_eq!(server_timing(3.24), "app;dur=3.2");
        assert_eq!(server_timing(0.96), "app;dur=1.0");
        assert_eq!(server_timing(-5.0), "app;dur=0.0");
        assert_eq!(server_timing(1234.56), "app;dur=1234.6");
        assert_eq!(server_timing(f64::NAN), "app;dur=0.0");
        assert_eq!(server_timing(f64::INFINITY), "app;dur=1000000000000000.0");
    }
}
