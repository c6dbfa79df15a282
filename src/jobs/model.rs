//! The job types, shared by the edge and the Lambda function.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Stored and queued; not yet handed to Lambda.
    Queued,
    /// Lambda accepted the invocation; the result has not come back yet.
    Running,
    /// The function reported a result.
    Done,
    /// The function reported an error, or the invocation failed for good.
    Failed,
}

impl JobStatus {
    /// Whether the job has ended (`done` or `failed`).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Failed)
    }
}

/// A job as `GET /v1/jobs/{id}` shows it: status, attempts, timings and result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job id (a UUIDv7, so ids sort by submission time).
    pub id: String,
    /// The kind of work, e.g. `thumbnail`.
    pub kind: String,
    /// Where it is.
    pub status: JobStatus,
    /// Invocation attempts so far.
    pub attempts: u32,
    /// The input's media type.
    pub input_type: String,
    /// The input's size in bytes.
    pub input_bytes: usize,
    /// When it was submitted (Unix ms).
    pub created_ms: u64,
    /// When Lambda accepted it (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoked_ms: Option<u64>,
    /// When it ended (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<u64>,
    /// The function's output, once `done`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Why it failed, or the last retryable error while it is still queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The queue message that asks the consumer to invoke a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTask {
    /// The job id.
    pub id: String,
    /// The origin the function calls back (the edge's public URL).
    pub origin: String,
}

/// What the Lambda function receives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobEnvelope {
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

impl JobEnvelope {
    /// Checks the fields a function relies on, so a malformed envelope fails
    /// with a message instead of a panic on the Lambda side.
    pub fn check(&self) -> Result<(), Error> {
        if self.input.is_none() && self.input_url.is_none() {
            return Err(Error::bad_request(
                "the envelope has neither input nor input_url",
            ));
        }
        if !self.callback_url.starts_with("http://") && !self.callback_url.starts_with("https://") {
            return Err(Error::bad_request("callback_url must be an http(s) URL"));
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

/// Checks a job kind: 1 to 32 of `a-z 0-9 -`.
pub fn check_kind(kind: &str) -> Result<(), Error> {
    let ok = !kind.is_empty()
        && kind.len() <= 32
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            crate::ErrorKind::InvalidPathParam,
            format!("`{kind}` is not a job kind (1 to 32 of a-z 0-9 -)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

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
    fn kinds_are_checked() {
        assert!(check_kind("thumbnail").is_ok());
        assert!(check_kind("word-count2").is_ok());
        for bad in ["", "Thumb", "a/b", "x".repeat(33).as_str()] {
            assert!(check_kind(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn statuses_serialize_lowercase() {
        assert_eq!(
            serde_json::to_string(&JobStatus::Running).unwrap(),
            r#""running""#
        );
        assert!(JobStatus::Done.is_final() && !JobStatus::Queued.is_final());
    }

    #[test]
    fn an_envelope_needs_an_input_and_a_callback() {
        let mut env = JobEnvelope {
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
