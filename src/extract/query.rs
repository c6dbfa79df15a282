//! `Query<T>`: the query string, with errors that name the failing parameter.

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
    decode(query.as_bytes(), ErrorKind::InvalidQuery, "query parameter")
}

/// Decodes urlencoded `input` (a query string or a form body). The problem names
/// the field that failed, in its detail and as a `parameter` member, so a client
/// can point at it.
pub(crate) fn decode<T: DeserializeOwned>(
    input: &[u8],
    kind: ErrorKind,
    what: &str,
) -> Result<T, Error> {
    let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(input));
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let field = err.path().to_string();
        let cause = err.into_inner();
        if field.is_empty() || field == "." {
            return Error::new(kind, format!("the {what}s are invalid: {cause}"));
        }
        Error::new(kind, format!("the {what} `{field}` is invalid: {cause}"))
            .with_member("parameter", field)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Page {
        limit: Option<u32>,
        sort: String,
    }

    #[test]
    fn a_bad_value_names_its_parameter() {
        let err = parse::<Page>("sort=name&limit=ten").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidQuery);
        assert!(err.detail().contains("`limit`"), "{}", err.detail());
        let doc: serde_json::Value = serde_json::from_str(&err.to_problem_json()).unwrap();
        assert_eq!(doc["parameter"], "limit");
    }

    #[test]
    fn a_missing_field_is_named_too() {
        let err = parse::<Page>("limit=3").unwrap_err();
        assert!(err.detail().contains("sort"), "{}", err.detail());
    }

    #[test]
    fn good_queries_still_parse() {
        let page = parse::<Page>("sort=name&limit=3").unwrap();
        assert_eq!((page.limit, page.sort.as_str()), (Some(3), "name"));
    }
}
