//! The request's own address: [`Url`] and [`Origin`], for building absolute links
//! (a `Location`, a callback URL) without reaching for the whole [`Request`].

use crate::error::Error;
use crate::extract::FromRequestParts;
use crate::request::Request;

/// The full URL of the request, as the runtime received it.
///
/// ```
/// use edgeway::Url;
///
/// async fn whoami(Url(url): Url) -> String {
///     format!("you asked for {url}")
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url(pub String);

impl FromRequestParts for Url {
    fn from_request_parts(req: &mut Request) -> Result<Self, Error> {
        Ok(Url(req.url().to_owned()))
    }
}

/// The scheme, host and port the request was made to (`https://edge.example`),
/// without a trailing slash: the base for absolute links to this worker.
///
/// ```
/// use edgeway::{Origin, Response};
///
/// async fn create(Origin(origin): Origin) -> Response {
///     Response::see_other(&format!("{origin}/v1/things/42"))
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin(pub String);

impl FromRequestParts for Origin {
    fn from_request_parts(req: &mut Request) -> Result<Self, Error> {
        Ok(Origin(req.origin().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn url_and_origin_come_from_the_request() {
        let mut req = Request::new(Method::Get, "https://edge.example:8443/a/b?c=d");
        assert_eq!(
            Url::from_request_parts(&mut req).unwrap(),
            Url("https://edge.example:8443/a/b?c=d".into())
        );
        assert_eq!(
            Origin::from_request_parts(&mut req).unwrap(),
            Origin("https://edge.example:8443".into())
        );
    }
}
