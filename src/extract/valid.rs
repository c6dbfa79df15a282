//! `Valid<E>`: an extractor whose value must also pass its `garde` rules
//! (feature `validate`).

use crate::error::{Error, ErrorKind};
use crate::extract::{Form, FromRequest, FromRequestParts, Json, Path, Query};
use crate::request::Request;

/// `E`'s value, checked against its [`garde::Validate`] rules after it
/// decodes. A value that breaks them is a 422 `validation` problem whose
/// `errors` member lists every violation as `{"path", "message"}`, so a client
/// can show all of them at once.
///
/// ```
/// # use edgeway::{Json, Valid};
/// #[derive(serde::Deserialize, garde::Validate)]
/// struct Line {
///     #[garde(length(min = 1, max = 32))]
///     sku: String,
///     #[garde(range(min = 1, max = 1000))]
///     quantity: u32,
/// }
///
/// async fn add(Valid(Json(line)): Valid<Json<Line>>) -> String {
///     format!("{} × {}", line.quantity, line.sku)
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Valid<E>(pub E);

/// An extractor that holds one value to validate.
pub trait Validated {
    /// The value's type.
    type Value: garde::Validate<Context = ()>;
    /// The value.
    fn value(&self) -> &Self::Value;
}

macro_rules! validated {
    ($($extractor:ident),*) => {$(
        impl<T: garde::Validate<Context = ()>> Validated for $extractor<T> {
            type Value = T;
            fn value(&self) -> &T {
                &self.0
            }
        }
    )*};
}
validated!(Json, Form, Query, Path);

impl<E: FromRequestParts + Validated> FromRequestParts for Valid<E> {
    fn from_request_parts(req: &mut Request) -> Result<Self, Error> {
        check(E::from_request_parts(req)?).map(Valid)
    }
}

impl<E: FromRequest + Validated> FromRequest for Valid<E> {
    async fn from_request(req: Request) -> Result<Self, Error> {
        check(E::from_request(req).await?).map(Valid)
    }
}

fn check<E: Validated>(extracted: E) -> Result<E, Error> {
    match garde::Validate::validate(extracted.value()) {
        Ok(()) => Ok(extracted),
        Err(report) => Err(to_error(&report)),
    }
}

/// The 422 for a report: the first violation in the detail, all of them in
/// `errors`.
fn to_error(report: &garde::Report) -> Error {
    let errors: Vec<serde_json::Value> = report
        .iter()
        .map(|(path, error)| serde_json::json!({"path": path.to_string(), "message": error.message()}))
        .collect();
    let detail = match report.iter().next() {
        Some((path, error)) if errors.len() == 1 => format!("{path}: {}", error.message()),
        Some((path, error)) => format!(
            "{path}: {} (and {} more; see errors)",
            error.message(),
            errors.len() - 1
        ),
        None => "the input breaks a rule".to_owned(),
    };
    Error::new(ErrorKind::Validation, detail).with_json_member("errors", errors.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, garde::Validate)]
    struct Order {
        #[garde(length(min = 1))]
        id: String,
        #[garde(dive, length(min = 1, max = 3))]
        lines: Vec<Line>,
    }

    #[derive(Debug, serde::Deserialize, garde::Validate)]
    struct Line {
        #[garde(range(min = 1))]
        quantity: u32,
    }

    #[test]
    fn a_valid_value_passes_through() {
        let json = Json::<Order>::from_slice(br#"{"id":"a","lines":[{"quantity":2}]}"#).unwrap();
        assert!(check(json).is_ok());
    }

    #[test]
    fn every_violation_is_listed_with_its_path() {
        let json = Json::<Order>::from_slice(br#"{"id":"","lines":[{"quantity":0}]}"#).unwrap();
        let err = check(json).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Validation);
        assert_eq!(err.status().as_u16(), 422);
        let doc: serde_json::Value = serde_json::from_str(&err.to_problem_json()).unwrap();
        assert_eq!(doc["type"], "urn:edgeway:problem:validation");
        let paths: Vec<&str> = doc["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths, ["id", "lines[0].quantity"]);
        assert!(doc["detail"].as_str().unwrap().contains("and 1 more"));
    }
}
