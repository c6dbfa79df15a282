//! `Form<T>`: an `application/x-www-form-urlencoded` body.

use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorKind};
use crate::extract::{require_content_type, FromRequest};
use crate::request::Request;

/// A `application/x-www-form-urlencoded` body, deserialized with `serde_urlencoded`.
#[derive(Clone, Debug)]
pub struct Form<T>(pub T);

impl<T: DeserializeOwned> FromRequest for Form<T> {
    async fn from_request(mut req: Request) -> Result<Self, Error> {
        require_content_type(&req, "application/x-www-form-urlencoded", |media| {
            media == "application/x-www-form-urlencoded"
        })?;
        let body = req.bytes().await?;
        super::query::decode(&body, ErrorKind::InvalidForm, "form field").map(Form)
    }
}
