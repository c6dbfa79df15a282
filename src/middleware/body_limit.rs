//! A per-route or app-wide cap on request bodies, enforced on the bytes read.

use crate::body::too_large;
use crate::middleware::{Middleware, Next};
use crate::request::Request;
use crate::response::IntoResponse;

/// Caps request bodies at `max_bytes`: a declared `content-length` over the cap is
/// refused with 413 before anything is read, and body extractors stop reading at the
/// cap, so a client that lies about its length gets the same 413.
///
/// ```
/// # use edgeway::{App, middleware::body_limit};
/// let app = App::new().layer(body_limit(64 * 1024)).post("/notes", |body: String| async move { body });
/// # app.build().unwrap();
/// ```
pub fn body_limit(max_bytes: usize) -> impl Middleware {
    move |mut req: Request, next: Next| async move {
        if req
            .content_length()
            .is_some_and(|len| len > max_bytes as u64)
        {
            return too_large(max_bytes).into_response();
        }
        req.set_body_limit(max_bytes);
        next.run(req).await
    }
}
