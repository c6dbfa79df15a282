//! `Json<T>`: a JSON body in (415, 413, 400 and 422 told apart), or a JSON response out.

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

impl<T: DeserializeOwned> Json<T> {
    /// Decodes bytes with the extractor's rules: malformed JSON is a 400
    /// `invalid-json`, JSON of the wrong shape a 422 `json-shape`.
    ///
    /// ```
    /// # use edgeway::{ErrorKind, Json};
    /// #[derive(Debug, serde::Deserialize)]
    /// #[serde(deny_unknown_fields)]
    /// struct Note { text: String }
    /// assert!(Json::<Note>::from_slice(br#"{"text":"hi"}"#).is_ok());
    /// assert_eq!(Json::<Note>::from_slice(br#"{"text":1}"#).unwrap_err().kind(), ErrorKind::JsonShape);
    /// // Broken syntax is a 400 even when a wrong field comes first.
    /// assert_eq!(Json::<Note>::from_slice(br#"{"other":1,"#).unwrap_err().kind(), ErrorKind::InvalidJson);
    /// // JSON text is UTF-8: other bytes are a 400, wherever they are.
    /// assert_eq!(Json::<Note>::from_slice(b"{\"text\":\"\xff\"}").unwrap_err().kind(), ErrorKind::InvalidJson);
    /// assert_eq!(Json::<Note>::from_slice(b"{\"other\":\"\xff\"}").unwrap_err().kind(), ErrorKind::InvalidJson);
    /// ```
    pub fn from_slice(body: &[u8]) -> Result<Self, Error> {
        parse(body).map(Json)
    }
}

pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    use serde_json::error::Category;
    let invalid = |err: serde_json::Error| {
        Error::new(
            ErrorKind::InvalidJson,
            format!("the body is not valid JSON: {err}"),
        )
    };
    // JSON text is UTF-8. Checked once for the whole body, so serde_json reads
    // it as text and does not check each string on its own.
    let text = std::str::from_utf8(body).map_err(|e| {
        Error::new(
            ErrorKind::InvalidJson,
            format!(
                "the body is not valid JSON: it is not UTF-8 (at byte {})",
                e.valid_up_to()
            ),
        )
    })?;
    serde_json::from_str(text).map_err(|err| match err.classify() {
        // serde stops at the first error it meets, so a wrong field early in a
        // body that is also malformed (or nested past serde_json's 128 levels)
        // reads as a shape error. Only on this error path, check the syntax of the
        // whole body, so broken JSON is always a 400.
        Category::Data => match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Err(syntax) => invalid(syntax),
            Ok(_) => Error::new(
                ErrorKind::JsonShape,
                format!("the JSON body does not match the expected shape: {err}"),
            ),
        },
        Category::Syntax | Category::Eof | Category::Io => invalid(err),
    })
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => crate::response::typed(StatusCode::OK, "application/json", body.into()),
            Err(err) => {
                Error::internal(format!("could not serialize the response: {err}")).into_response()
            }
        }
    }
}
