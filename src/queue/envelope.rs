//! The queue message format: a small envelope with a kind, an id and a body.

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};

/// What edgeway puts on a queue. Sent as JSON text, so its size is exactly what
/// the limits check, and decoding is plain serde.
///
/// ```
/// # use edgeway::queue::Envelope;
/// let envelope = Envelope::new("order.created", &serde_json::json!({"order": 7})).unwrap();
/// let text = envelope.to_json();
/// let back = Envelope::from_json(&text).unwrap();
/// assert_eq!(back.kind, "order.created");
/// assert_eq!(back.id, envelope.id);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// What the message means; consumers dispatch on it.
    pub kind: String,
    /// A unique, time-sortable id (UUIDv7); the idempotency key.
    pub id: String,
    /// The payload.
    pub body: serde_json::Value,
}

impl Envelope {
    /// An envelope with a fresh id.
    pub fn new<T: Serialize>(kind: impl Into<String>, body: &T) -> Result<Self, Error> {
        Self::with_id(kind, crate::platform::new_id(), body)
    }

    /// An envelope with a caller-chosen id, e.g. to make a send idempotent.
    pub fn with_id<T: Serialize>(
        kind: impl Into<String>,
        id: impl Into<String>,
        body: &T,
    ) -> Result<Self, Error> {
        let body = serde_json::to_value(body)
            .map_err(|e| Error::internal(format!("could not serialize the message body: {e}")))?;
        Ok(Self {
            kind: kind.into(),
            id: id.into(),
            body,
        })
    }

    /// The JSON text sent to the queue.
    pub fn to_json(&self) -> String {
        // A Value and two strings always serialize.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Decodes an envelope. Anything else is a permanent failure with this reason.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        serde_json::from_str(text).map_err(|e| {
            Error::new(
                ErrorKind::BadRequest,
                format!("not an edgeway envelope ({{kind, id, body}}): {e}"),
            )
        })
    }

    /// The body as `T`.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(&self.body).map_err(|e| {
            Error::new(
                ErrorKind::JsonShape,
                format!("the body of a `{}` message does not decode: {e}", self.kind),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Order {
        order: u32,
    }

    #[test]
    fn numbers_survive_a_round_trip() {
        // Found by the `envelope` fuzz target: without exact float parsing this
        // body came back as 4.4399999999999997e86 after one decode, 4.44e86 after two.
        let text = format!(
            r#"{{"kind":"k","id":"i","body":[{}12579353 44]}}"#,
            "444".to_owned() + &"0".repeat(74)
        )
        .replace(' ', "");
        let once = Envelope::from_json(&text).unwrap();
        let twice = Envelope::from_json(&once.to_json()).unwrap();
        assert_eq!(once.body, twice.body);
    }

    #[test]
    fn round_trips_and_decodes() {
        let envelope = Envelope::new("order.created", &Order { order: 7 }).unwrap();
        assert_eq!(envelope.id.len(), 36);
        let back = Envelope::from_json(&envelope.to_json()).unwrap();
        assert_eq!(back, envelope);
        assert_eq!(back.decode::<Order>().unwrap(), Order { order: 7 });
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        for text in [
            "",
            "{",
            "[1]",
            r#"{"kind":"x"}"#,
            r#"{"kind":1,"id":"a","body":null}"#,
        ] {
            let err = Envelope::from_json(text).unwrap_err();
            assert!(
                err.detail().contains("envelope"),
                "{text}: {}",
                err.detail()
            );
        }
        let envelope = Envelope::with_id("order.created", "id-1", &"not an order").unwrap();
        let err = envelope.decode::<Order>().unwrap_err();
        assert!(err.detail().contains("order.created"), "{}", err.detail());
    }

    #[test]
    fn ids_sort_by_creation_time() {
        let a = Envelope::new("k", &()).unwrap();
        let b = Envelope::new("k", &()).unwrap();
        assert_ne!(a.id, b.id);
        // UUIDv7: the first 48 bits are the millisecond timestamp.
        assert!(a.id[..13] <= b.id[..13]);
    }
}
