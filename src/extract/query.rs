use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorKind};
use crate::extract::FromRequestParts;
use crate::request::Request;

/// The query string, deserialized with `serde_urlencoded`. A missing query is the
/// empty string, so a struct whose fields are all optional always extracts.
///
/// ```
/// # use serde::Deserialize;
/// # use edgeway::Query;
/// #[derive(Deserialize)]
/// struct Page { offset: Option<u32>, limit: Option<u32> }
///
/// async fn list(Query(page): Query<Page>) -> String {
///     format!("{}+{}", page.offset.unwrap_or(0), page.limit.unwrap_or(20))
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts for Query<T> {
    fn from_request_parts(req: &mut Request) -> Result<Self, Error> {
        parse(req.query().unwrap_or("")).map(Query)
    }
}

pub(crate) fn parse<T: DeserializeOwned>(query: &str) -> Result<T, Error> {
    serde_urlencoded::from_str(query).map_err(|err| {
        Error::new(
            ErrorKind::InvalidQuery,
            format!("the query string is invalid: {err}"),
        )
    })
}
