//! The job types the edge keeps to itself: the record in KV, the queue task and
//! job kinds. What the function sees is in `edgeway_protocol::jobs`.

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
    /// The workflow instance its outcome is sent to, when a workflow step
    /// submitted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiter: Option<JobWaiter>,
}

/// A workflow instance that waits for a job's outcome: when the job ends, the
/// pipeline sends the instance the finished [`JobRecord`] as an event of type
/// [`JobWaiter::event_type`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobWaiter {
    /// The workflow binding the instance is reached through, e.g. `ORDERS`.
    pub binding: String,
    /// The instance's id.
    pub instance: String,
    /// The step that submitted the job.
    pub step: String,
}

impl JobWaiter {
    /// The id of the job this waiter's step submits: the same for every
    /// attempt of the step, so a retried submission finds the job the first
    /// one stored instead of starting a second. 32 hex characters of the
    /// SHA-256 of the binding, the instance and the step.
    pub fn job_id(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(self.binding.as_bytes())
            .chain_update(b"\n")
            .chain_update(self.instance.as_bytes())
            .chain_update(b"\n")
            .chain_update(self.step.as_bytes())
            .finalize();
        hex::encode(&digest[..16])
    }

    /// The event type job `id`'s outcome is sent as: `job-<id>`.
    pub fn event_type(id: &str) -> String {
        format!("job-{id}")
    }
}

/// The queue message that asks the consumer to invoke a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTask {
    /// The job id.
    pub id: String,
    /// The origin the function calls back (the edge's public URL).
    pub origin: String,
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
    fn kinds_are_checked() {
        assert!(check_kind("thumbnail").is_ok());
        assert!(check_kind("word-count2").is_ok());
        for bad in ["", "Thumb", "a/b", "x".repeat(33).as_str()] {
            assert!(check_kind(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_waiters_job_id_is_stable_and_its_own() {
        let waiter = |instance: &str, step: &str| JobWaiter {
            binding: "ORDERS".into(),
            instance: instance.into(),
            step: step.into(),
        };
        let id = waiter("o-1", "label").job_id();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(id, waiter("o-1", "label").job_id());
        assert_ne!(id, waiter("o-2", "label").job_id());
        assert_ne!(id, waiter("o-1", "invoice").job_id());
    }

    #[test]
    fn statuses_serialize_lowercase() {
        assert_eq!(
            serde_json::to_string(&JobStatus::Running).unwrap(),
            r#""running""#
        );
        assert!(JobStatus::Done.is_final() && !JobStatus::Queued.is_final());
    }
}
