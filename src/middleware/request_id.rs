//! Request ids: one per request, from the client when sane, echoed on the response.

use crate::middleware::Next;
use crate::request::Request;
use crate::response::Response;

/// The header that carries the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Gives every request an id: the client's `x-request-id` when it is sane (1–128
/// visible ASCII characters), otherwise 128 random bits from `getrandom` as hex.
/// The id is set on the request, for later layers and handlers, and echoed on the
/// response.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = match req.header(REQUEST_ID_HEADER) {
        Some(id) if is_sane(&id) => id.into_owned(),
        _ => {
            let id = crate::platform::random_hex::<16>();
            // The id is hex, so the insert cannot fail.
            let _ = req.headers_mut().insert(REQUEST_ID_HEADER, id.clone());
            id
        }
    };
    let mut response = next.run(req).await;
    let _ = response.headers_mut().insert(REQUEST_ID_HEADER, id);
    response
}

fn is_sane(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn sane_ids() {
        assert!(is_sane("abc-123"));
        assert!(!is_sane(""));
        assert!(!is_sane("has space"));
        assert!(!is_sane(&"x".repeat(129)));
    }
}
