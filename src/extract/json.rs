use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, ErrorKind};
use crate::extract::{require_content_type, FromRequest};
use crate::request::Request;
use crate::response::{IntoResponse, Response};
use crate::StatusCode;

/// A JSON body in, or a JSON response out.
///
/// As an extractor it requires `content-type: application/json` (or any `+json`
/// type; 415 otherwise), enforces the body limit (413), and reports malformed JSON
/// as 400 and JSON of the wrong shape as 422, with serde's line and column.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # use edgeway::Json;
/// #[derive(Deserialize, Serialize)]
/// struct Note { text: String }
///
/// async fn echo(Json(note): Json<Note>) -> Json<Note> {
///     Json(note)
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest for Json<T> {
    async fn from_request(mut req: Request) -> Result<Self, Error> {
        require_content_type(&req, "application/json", |media| {
            media == "application/json"
                || (media.starts_with("application/") && media.ends_with("+json"))
        })?;
        let body = req.bytes().await?;
        parse(&body).map(Json)
    }
}

pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|err| {
        use serde_json::error::Category;
        match err.classify() {
            Category::Data => Error::new(
                ErrorKind::JsonShape,
                format!("the JSON body does not match the expected shape: {err}"),
            ),
            Category::Syntax | Category::Eof | Category::Io => Error::new(
                ErrorKind::InvalidJson,
                format!("the body is not valid JSON: {err}"),
            ),
        }
    })
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => Response::builder(StatusCode::OK)
                .header("content-type", "application/json")
                .body(body),
            Err(err) => {
                Error::internal(format!("could not serialize the response: {err}")).into_response()
            }
        }
    }
}
