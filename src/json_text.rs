//! JSON text in and out without more of serde_json than a worker needs.
//!
//! Out: a JSON object written member by member straight to text, for the two
//! objects every worker writes (log lines and problem documents): no
//! `serde_json` map is built, so a worker that writes no other map links no
//! map code.
//!
//! In: every decoder a worker runs reads text (`serde_json::from_str`), so each
//! decoded type is compiled for one reader, and strings are not checked for
//! UTF-8 one by one. Bytes go through [`from_json_bytes`], which checks them
//! once.

/// A JSON object being written.
pub(crate) struct JsonObject(Vec<u8>);

impl JsonObject {
    /// An empty object with room for `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        JsonObject(Vec::with_capacity(capacity))
    }

    /// Adds the member `name` with `value`.
    pub(crate) fn field(
        &mut self,
        name: &str,
        value: &(impl serde::Serialize + ?Sized),
    ) -> &mut Self {
        self.name(name);
        // Serializing to a Vec cannot fail, and these values have no maps
        // with non-string keys.
        let _ = serde_json::to_writer(&mut self.0, value);
        self
    }

    /// Adds the member `name` whose value is already JSON text.
    pub(crate) fn raw_field(&mut self, name: &str, json: &str) -> &mut Self {
        self.name(name);
        self.0.extend_from_slice(json.as_bytes());
        self
    }

    /// Opens the next member: its separator, name and colon.
    fn name(&mut self, name: &str) {
        self.0.push(if self.0.is_empty() { b'{' } else { b',' });
        let _ = serde_json::to_writer(&mut self.0, name);
        self.0.push(b':');
    }

    /// The object's JSON text.
    pub(crate) fn finish(&mut self) -> String {
        if self.0.is_empty() {
            self.0.push(b'{');
        }
        self.0.push(b'}');
        // Only JSON text was written.
        String::from_utf8(std::mem::take(&mut self.0)).unwrap_or_default()
    }
}

/// `value` as JSON text, for [`JsonObject::raw_field`].
pub(crate) fn to_json_text(value: &(impl serde::Serialize + ?Sized)) -> Box<str> {
    // Serializing cannot fail for the values given here (strings and
    // `serde_json::Value`, whose map keys are strings).
    let text = serde_json::to_string(value);
    debug_assert!(text.is_ok(), "a problem member that is not JSON");
    text.unwrap_or_else(|_| "null".to_owned()).into_boxed_str()
}

/// Decodes JSON text given as bytes: checked for UTF-8 once, then read as text.
///
/// serde_json's byte reader checks every string it meets on its own, which on
/// a 16 KB body of short strings cost about a tenth of the request's CPU
/// (BENCHMARKS.md, (e)); and a type decoded from both bytes and text is
/// compiled twice.
// Its callers (outbound replies, jobs, Lambda, tokens) all need the bindings.
#[cfg(any(test, feature = "bindings"))]
pub(crate) fn from_json_bytes<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, serde_json::Error> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        <serde_json::Error as serde::de::Error>::custom(format_args!(
            "the JSON text is not UTF-8: {e}"
        ))
    })?;
    serde_json::from_str(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn members_are_written_in_order_and_escaped() {
        let mut object = JsonObject::with_capacity(16);
        assert_eq!(JsonObject::with_capacity(0).finish(), "{}");
        object
            .field("msg", "a \"quoted\"\nline")
            .field("n", &3u16)
            .field("none", &None::<&str>)
            .raw_field("list", &to_json_text(&[1, 2]));
        assert_eq!(
            object.finish(),
            r#"{"msg":"a \"quoted\"\nline","n":3,"none":null,"list":[1,2]}"#
        );
    }

    #[test]
    fn bytes_are_decoded_as_text_and_other_bytes_are_refused() {
        let v: Vec<String> = from_json_bytes(b"[\"a\",\"\\u00e9t\\u00e9\",\"\xc3\xa9\"]").unwrap();
        assert_eq!(v, ["a", "été", "é"]);
        // Not UTF-8, inside a string or outside one: refused, saying so.
        for bad in [&b"[\"\xff\"]"[..], b"[1]\xff"] {
            let err = from_json_bytes::<serde_json::Value>(bad).unwrap_err();
            assert!(err.to_string().contains("not UTF-8"), "{err}");
        }
        // Syntax errors keep serde_json's own message.
        let err = from_json_bytes::<Vec<u8>>(b"[1,").unwrap_err();
        assert!(err.is_eof(), "{err}");
    }
}
