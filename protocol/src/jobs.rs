//! The job messages between the edge and the function that does the work (on
//! AWS Lambda): what the function is invoked with, and what it reports back to
//! the signed callback URL.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, ErrorKind};

/// What the Lambda function receives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobInvocation {
    /// The job id; also the `webhook-id` of the callback.
    pub id: String,
    /// The kind of work.
    pub kind: String,
    /// The input's media type.
    pub input_type: String,
    /// The input itself, when it is JSON and fits in the invocation payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// Otherwise a short-lived signed URL to fetch it from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_url: Option<String>,
    /// Where to POST the [`JobOutcome`].
    pub callback_url: String,
    /// The Standard Webhooks secret (`whsec_…`) that signs the callback; it
    /// signs this job's callback and nothing else.
    pub callback_secret: String,
}

impl JobInvocation {
    /// Checks the fields a function relies on, so a malformed invocation fails
    /// with a message instead of a panic on the Lambda side.
    pub fn check(&self) -> Result<(), Error> {
        let invalid = |detail| Error::new(ErrorKind::InvalidInvocation, detail);
        if self.input.is_none() && self.input_url.is_none() {
            return Err(invalid("the invocation has neither input nor input_url"));
        }
        if !self.callback_url.starts_with("http://") && !self.callback_url.starts_with("https://") {
            return Err(invalid("callback_url must be an http(s) URL"));
        }
        Ok(())
    }
}

/// What the function reports back: `{"status":"done","output":…}` or
/// `{"status":"failed","error":"…"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase", deny_unknown_fields)]
pub enum JobOutcome {
    /// The work is done; `output` is the result.
    Done {
        /// The result.
        output: Value,
    },
    /// The work failed; retrying the same input would fail the same way.
    Failed {
        /// Why.
        error: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_have_one_wire_shape() {
        let done: JobOutcome =
            serde_json::from_str(r#"{"status":"done","output":{"n":1}}"#).unwrap();
        assert_eq!(
            done,
            JobOutcome::Done {
                output: serde_json::json!({"n": 1})
            }
        );
        let failed: JobOutcome =
            serde_json::from_str(r#"{"status":"failed","error":"bad"}"#).unwrap();
        assert_eq!(
            failed,
            JobOutcome::Failed {
                error: "bad".into()
            }
        );
        assert!(serde_json::from_str::<JobOutcome>(r#"{"status":"running"}"#).is_err());
        assert!(
            serde_json::from_str::<JobOutcome>(r#"{"status":"done","output":1,"x":2}"#).is_err()
        );
    }

    #[test]
    fn an_invocation_needs_an_input_and_a_callback() {
        let mut env = JobInvocation {
            id: "j".into(),
            kind: "k".into(),
            input_type: "application/json".into(),
            input: None,
            input_url: None,
            callback_url: "http://127.0.0.1/v1/jobs/j/result".into(),
            callback_secret: "whsec_x".into(),
        };
        assert!(env.check().is_err());
        env.input = Some(serde_json::json!({}));
        assert!(env.check().is_ok());
        env.callback_url = "file:///etc/passwd".into();
        assert!(env.check().is_err());
    }
}
