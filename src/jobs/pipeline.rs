//! The jobs pipeline on KV, Queues and Lambda: submit, invoke (the queue
//! consumer), callback and poll.
//!
//! KV layout: `job:<id>` holds the [`JobRecord`] as the invoker last wrote it,
//! `job-result:<id>` the function's outcome, `job-running:<id>` marks a job
//! handed to Lambda and not yet reported (the sweep's index), and
//! `job-input:<id>` the input bytes;
//! all expire after [`Jobs::ttl`] (a day by default).
//!
//! The invoker and the callback write different keys on purpose. The function can
//! call back before the invoker has stored `running`; with one key, either write
//! could clobber the other (KV has no compare-and-swap). [`Jobs::get`] merges them.

use serde_json::Value;

use super::model::{check_kind, JobRecord, JobStatus, JobTask, JobWaiter};
use super::{JobInvocation, JobOutcome};
use super::{JobKeys, INPUT_URL_TTL_SECONDS};
use crate::aws::lambda::{Function, Lambda, ASYNC_PAYLOAD_LIMIT};
use crate::error::{Error, ErrorKind};
use crate::kv::{Kv, PutOptions};
use crate::queue::{Envelope, Failure, Message, Producer};

/// The envelope kind of invoke tasks; register [`Jobs::invoke`] for it.
pub const INVOKE_KIND: &str = "jobs.invoke";

/// How far a callback's `webhook-timestamp` may be from the edge's clock.
pub const CALLBACK_TOLERANCE_SECONDS: u64 = 5 * 60;

/// Room left in the Lambda payload for the envelope around an inline input.
const ENVELOPE_OVERHEAD: usize = 4 * 1024;

/// The jobs pipeline for one worker.
pub struct Jobs {
    kv: Kv,
    queue: Producer<Envelope>,
    keys: JobKeys,
    ttl_seconds: u64,
    /// The bindings through which finished jobs reach the workflow instances
    /// waiting on them.
    #[cfg(feature = "workflows")]
    workflow_env: Option<worker::Env>,
}

fn now_ms() -> u64 {
    crate::platform::now_ms() as u64
}

impl Jobs {
    /// Jobs stored in `kv`, queued on `queue`, signed with `keys`.
    pub fn new(kv: Kv, queue: Producer<Envelope>, keys: JobKeys) -> Self {
        Self {
            kv,
            queue,
            keys,
            ttl_seconds: 86_400,
            #[cfg(feature = "workflows")]
            workflow_env: None,
        }
    }

    /// Sends each finished job to the workflow instance waiting on it
    /// ([`Step::job`](crate::workflow::Step::job)), through the workflow
    /// bindings in `env`: when its callback arrives, and when the pipeline
    /// fails it (the invocation gave up, or the sweep found it overdue).
    #[cfg(feature = "workflows")]
    pub fn wakes_workflows(mut self, env: &worker::Env) -> Self {
        self.workflow_env = Some(env.clone());
        self
    }

    /// How long job records and inputs are kept (seconds).
    pub fn ttl(mut self, seconds: u64) -> Self {
        self.ttl_seconds = seconds;
        self
    }

    fn options(&self) -> PutOptions {
        PutOptions::new().expiration_ttl(self.ttl_seconds)
    }

    /// The job, if it exists: the invoker's record with the function's outcome,
    /// when there is one, applied on top.
    pub async fn get(&self, id: &str) -> Result<Option<JobRecord>, Error> {
        let (record, outcome) = futures_util::future::join(
            self.kv.get_json::<JobRecord>(&record_key(id)),
            self.kv.get_json::<StoredOutcome>(&result_key(id)),
        )
        .await;
        let outcome = outcome?;
        Ok(record?.map(|record| merge(record, outcome)))
    }

    async fn save(&self, record: &JobRecord) -> Result<(), Error> {
        self.kv
            .put_json(&record_key(&record.id), record, self.options())
            .await
    }

    /// Stores `input` and a `queued` record, then enqueues the invocation. Returns
    /// once the enqueue is durable. `origin` is where the function calls back.
    pub async fn submit(
        &self,
        kind: &str,
        input_type: &str,
        input: &[u8],
        origin: &str,
    ) -> Result<JobRecord, Error> {
        self.submit_for(None, kind, input_type, input, origin).await
    }

    /// [`Jobs::submit`] for a workflow instance that waits on the outcome
    /// (`waiter`): the finished record is sent to it, when this pipeline wakes
    /// workflows (`Jobs::wakes_workflows`, feature `workflows`). The job's id
    /// is the waiter's [`JobWaiter::job_id`], so a second submission for the
    /// same waiter (a retried step) returns the job the first one stored.
    pub async fn submit_for(
        &self,
        waiter: Option<JobWaiter>,
        kind: &str,
        input_type: &str,
        input: &[u8],
        origin: &str,
    ) -> Result<JobRecord, Error> {
        check_kind(kind)?;
        let id = match &waiter {
            Some(waiter) => {
                let id = waiter.job_id();
                if let Some(existing) = self.get(&id).await? {
                    return Ok(existing);
                }
                id
            }
            None => crate::platform::new_id(),
        };
        let record = JobRecord {
            id,
            kind: kind.to_owned(),
            status: JobStatus::Queued,
            attempts: 0,
            input_type: input_type.to_owned(),
            input_bytes: input.len(),
            created_ms: now_ms(),
            invoked_ms: None,
            finished_ms: None,
            result: None,
            error: None,
            waiter,
        };
        self.kv
            .put_bytes(&input_key(&record.id), input, self.options())
            .await?;
        self.save(&record).await?;
        let task = JobTask {
            id: record.id.clone(),
            origin: origin.trim_end_matches('/').to_owned(),
        };
        self.queue
            .send(&Envelope::with_id(INVOKE_KIND, record.id.clone(), &task)?)
            .await?;
        Ok(record)
    }

    /// The input of job `id`, for the holder of a signed input URL: its media type
    /// and bytes.
    pub async fn input(
        &self,
        id: &str,
        expires: u64,
        signature: &str,
    ) -> Result<(String, Vec<u8>), Error> {
        self.keys
            .verify_input(id, expires, signature, now_ms() / 1000)?;
        let record = self
            .get(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("no job {id:?}")))?;
        let bytes = self
            .kv
            .get_bytes(&input_key(id))
            .await?
            .ok_or_else(|| Error::not_found(format!("job {id:?} has no stored input")))?;
        Ok((record.input_type, bytes))
    }

    /// The consumer handler for [`INVOKE_KIND`]: invokes `function` asynchronously
    /// with the job's envelope. Throttling and 5xx are retried with the
    /// consumer's backoff; when no attempt is left, or the failure is permanent,
    /// the job is `failed` with the reason (and the consumer dead-letters it).
    pub async fn invoke(
        &self,
        job: &Message<JobTask>,
        lambda: &Lambda,
        function: &str,
    ) -> Result<(), Failure> {
        let task = &job.body;
        let Some(mut record) = self.kv.get_json::<JobRecord>(&record_key(&task.id)).await? else {
            return Err(Failure::permanent(format!(
                "job {} expired before it was invoked",
                task.id
            )));
        };
        let reported = self
            .kv
            .get_json::<StoredOutcome>(&result_key(&task.id))
            .await?
            .is_some();
        if reported || record.status.is_final() || record.status == JobStatus::Running {
            // Already handed over (a redelivered message): invoking again would run
            // the work twice.
            return Ok(());
        }
        record.attempts = job.attempts;
        // Taken before the call: the function may report back before it returns.
        let handed_over_ms = now_ms();
        let result = match self.envelope(&record, &task.origin).await {
            Ok(envelope) => lambda
                .invoke_async(Function::new(function), &envelope)
                .await
                .map_err(Failure::from),
            Err(e) => Err(Failure::from(e)),
        };
        match &result {
            Ok(()) => {
                record.status = JobStatus::Running;
                record.invoked_ms = Some(handed_over_ms);
                record.error = None;
            }
            Err(failure) => {
                let reason = failure.reason();
                if job.gives_up_on(failure) {
                    record.status = JobStatus::Failed;
                    record.finished_ms = Some(now_ms());
                    record.error = Some(format!(
                        "could not invoke the function after {} attempt(s): {reason}",
                        job.attempts
                    ));
                } else {
                    record.error = Some(format!("attempt {} failed: {reason}", job.attempts));
                }
            }
        }
        self.save(&record).await?;
        if record.status == JobStatus::Failed {
            self.wake_or_log(&record).await;
        }
        if record.status == JobStatus::Running {
            // The sweep's index: it lists running jobs, not every job.
            self.kv
                .put_text(&running_key(&record.id), "", self.options())
                .await?;
        }
        result
    }

    /// The envelope for `record`: the input inline when it is JSON and fits the
    /// async payload limit, otherwise a signed URL to fetch it.
    async fn envelope(&self, record: &JobRecord, origin: &str) -> Result<JobInvocation, Error> {
        let mut envelope = JobInvocation {
            id: record.id.clone(),
            kind: record.kind.clone(),
            input_type: record.input_type.clone(),
            input: None,
            input_url: None,
            callback_url: format!("{origin}/v1/jobs/{}/result", record.id),
            callback_secret: self.keys.callback_secret(&record.id),
        };
        let inline = is_json(&record.input_type)
            && record.input_bytes + ENVELOPE_OVERHEAD <= ASYNC_PAYLOAD_LIMIT;
        if inline {
            let bytes = self
                .kv
                .get_bytes(&input_key(&record.id))
                .await?
                .ok_or_else(|| Error::internal(format!("job {} lost its input", record.id)))?;
            envelope.input = Some(crate::json_text::from_json_bytes::<Value>(&bytes)?);
        } else {
            let expires = now_ms() / 1000 + INPUT_URL_TTL_SECONDS;
            envelope.input_url = Some(format!(
                "{origin}/v1/jobs/{}/input?{}",
                record.id,
                self.keys.sign_input(&record.id, expires)
            ));
        }
        Ok(envelope)
    }

    /// Fails, with a reason, every job still `running` more than
    /// `deadline_seconds` after its invocation: its function never called back.
    /// Meant for a cron trigger. A callback that arrives later is refused (409),
    /// like any callback for a job that has ended. Returns the ids it failed.
    pub async fn sweep(&self, deadline_seconds: u64) -> Result<Vec<String>, Error> {
        let now = now_ms();
        let mut failed = Vec::new();
        let mut pages = self.kv.list_pages("job-running:");
        while let Some(page) = pages.next_page().await? {
            for key in page {
                let id = key.name.trim_start_matches("job-running:");
                let mut record = match self.get(id).await {
                    Ok(Some(record)) => record,
                    // Expired with its TTL: nothing left to sweep.
                    Ok(None) => {
                        let _ = self.kv.delete(&key.name).await;
                        continue;
                    }
                    // One unreadable record must not stop the sweep of the others.
                    Err(err) => {
                        crate::observe::Line::new()
                            .field("msg", "job sweep skipped a record")
                            .field("id", &id)
                            .field("error", &err.detail())
                            .write(crate::observe::Level::Warn);
                        continue;
                    }
                };
                if let Some(reason) = overdue(&record, now, deadline_seconds) {
                    record.status = JobStatus::Failed;
                    record.finished_ms = Some(now);
                    record.error = Some(reason);
                    self.save(&record).await?;
                    self.wake_or_log(&record).await;
                    failed.push(record.id.clone());
                }
                if record.status != JobStatus::Running {
                    let _ = self.kv.delete(&key.name).await;
                }
            }
        }
        Ok(failed)
    }

    /// Takes a callback: verifies it (401 when forged, replayed outside the
    /// tolerance, or meant for another job), then stores the outcome. A job that
    /// has already ended answers 409, so a replay inside the tolerance changes
    /// nothing.
    pub async fn complete(
        &self,
        id: &str,
        header: impl Fn(&str) -> Option<String>,
        body: &[u8],
    ) -> Result<JobRecord, Error> {
        self.keys.verify_callback(
            id,
            header("webhook-id").as_deref(),
            header("webhook-timestamp").as_deref(),
            header("webhook-signature").as_deref(),
            body,
            now_ms() / 1000,
            CALLBACK_TOLERANCE_SECONDS,
        )?;
        let outcome: JobOutcome = crate::json_text::from_json_bytes(body).map_err(|e| {
            Error::new(
                ErrorKind::JsonShape,
                format!("a job outcome is {{\"status\":\"done\",\"output\":…}} or {{\"status\":\"failed\",\"error\":\"…\"}}: {e}"),
            )
        })?;
        let record = self
            .get(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("no job {id:?}")))?;
        if record.status.is_final() {
            return Err(Error::with_status(
                crate::StatusCode::CONFLICT,
                format!("job {id} has already ended ({:?})", record.status),
            ));
        }
        let stored = StoredOutcome {
            outcome,
            finished_ms: now_ms(),
        };
        let finished = merge(record, Some(stored.clone()));
        // Before the outcome is stored: when the engine cannot be reached, the
        // callback fails and the function's retry wakes the instance.
        if let Err(err) = self.wake(&finished).await {
            if err.kind() == ErrorKind::Upstream {
                return Err(err);
            }
            // Anything else would fail every retry too: the outcome is kept.
            log_unwoken(&finished, &err);
        }
        self.kv
            .put_json(&result_key(id), &stored, self.options())
            .await?;
        // Off the sweep's index; a failure here only costs the sweep a read.
        let _ = self.kv.delete(&running_key(id)).await;
        Ok(finished)
    }

    /// Sends a finished job to the workflow instance waiting on it, if any.
    /// An instance that is gone (404) or has ended (409, after its wait timed
    /// out) takes nothing, which is not an error.
    async fn wake(&self, record: &JobRecord) -> Result<(), Error> {
        let Some(waiter) = &record.waiter else {
            return Ok(());
        };
        #[cfg(feature = "workflows")]
        if let Some(env) = &self.workflow_env {
            let workflow =
                crate::workflow::Workflow::<()>::named(env, waiter.binding.clone().into())?;
            let event_type = JobWaiter::event_type(&record.id);
            return match workflow
                .send_event(&waiter.instance, &event_type, record)
                .await
            {
                Err(err) if matches!(err.status().as_u16(), 404 | 409) => Ok(()),
                other => other,
            };
        }
        Err(Error::internal(format!(
            "instance {:?} waits on this job, but this Jobs does not wake workflows (Jobs::wakes_workflows)",
            waiter.instance
        )))
    }

    /// [`Jobs::wake`] where the job has failed already and its record is
    /// stored: an instance that cannot be reached is left to its timeout.
    async fn wake_or_log(&self, record: &JobRecord) {
        if let Err(err) = self.wake(record).await {
            log_unwoken(record, &err);
        }
    }
}

/// Logs that the instance waiting on `record` was not told the job ended: it
/// takes its wait's timeout instead.
fn log_unwoken(record: &JobRecord, err: &Error) {
    crate::observe::Line::new()
        .field("msg", "job waiter not woken")
        .field("job", &record.id)
        .field("detail", &err.detail())
        .write(crate::observe::Level::Warn);
}

/// Why a job `running` since its invocation has failed by `now_ms`, if it has:
/// its function did not call back within `deadline_seconds` (it crashed, timed
/// out, or its callback was lost).
fn overdue(record: &JobRecord, now_ms: u64, deadline_seconds: u64) -> Option<String> {
    let invoked_ms = record
        .invoked_ms
        .filter(|_| record.status == JobStatus::Running)?;
    let waited_ms = now_ms.saturating_sub(invoked_ms);
    (waited_ms > deadline_seconds.saturating_mul(1000)).then(|| {
        format!(
            "the function did not call back within {deadline_seconds} s of its invocation \
             ({} s ago); it may have crashed or timed out",
            waited_ms / 1000
        )
    })
}

/// The function's outcome as stored, with when it arrived.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct StoredOutcome {
    outcome: JobOutcome,
    finished_ms: u64,
}

/// The record with the outcome applied: the outcome decides the status.
fn merge(mut record: JobRecord, outcome: Option<StoredOutcome>) -> JobRecord {
    let Some(stored) = outcome else {
        return record;
    };
    match stored.outcome {
        JobOutcome::Done { output } => {
            record.status = JobStatus::Done;
            record.result = Some(output);
            record.error = None;
        }
        JobOutcome::Failed { error } => {
            record.status = JobStatus::Failed;
            record.error = Some(format!("the function reported: {error}"));
        }
    }
    record.finished_ms = Some(stored.finished_ms);
    record
}

fn result_key(id: &str) -> String {
    format!("job-result:{id}")
}

/// The sweep's index entry for a running job.
fn running_key(id: &str) -> String {
    format!("job-running:{id}")
}

fn record_key(id: &str) -> String {
    format!("job:{id}")
}

fn input_key(id: &str) -> String {
    format!("job-input:{id}")
}

fn is_json(media_type: &str) -> bool {
    let essence = media_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json") || essence.ends_with("+json")
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn record(status: JobStatus) -> JobRecord {
        JobRecord {
            id: "j".into(),
            kind: "k".into(),
            status,
            attempts: 2,
            input_type: "application/json".into(),
            input_bytes: 2,
            created_ms: 1,
            invoked_ms: Some(2),
            finished_ms: None,
            result: None,
            error: Some("attempt 1 failed".into()),
            waiter: None,
        }
    }

    #[test]
    fn the_outcome_decides_the_status_whatever_the_invoker_wrote_last() {
        // The callback arrived before the invoker stored `running`.
        let done = merge(
            record(JobStatus::Queued),
            Some(StoredOutcome {
                outcome: JobOutcome::Done {
                    output: serde_json::json!({"n": 1}),
                },
                finished_ms: 9,
            }),
        );
        assert_eq!(done.status, JobStatus::Done);
        assert_eq!(done.result, Some(serde_json::json!({"n": 1})));
        assert_eq!(
            (done.attempts, done.finished_ms, done.error),
            (2, Some(9), None)
        );

        let failed = merge(
            record(JobStatus::Running),
            Some(StoredOutcome {
                outcome: JobOutcome::Failed {
                    error: "not an image".into(),
                },
                finished_ms: 9,
            }),
        );
        assert_eq!(failed.status, JobStatus::Failed);
        assert!(failed.error.unwrap().contains("not an image"));
        assert_eq!(
            merge(record(JobStatus::Running), None).status,
            JobStatus::Running
        );
    }

    #[test]
    fn only_a_running_job_past_its_deadline_is_overdue() {
        let mut job = record(JobStatus::Running);
        job.invoked_ms = Some(1_000_000);
        assert_eq!(overdue(&job, 1_000_000 + 60_000, 60), None);
        let reason = overdue(&job, 1_000_000 + 61_000, 60).unwrap();
        assert!(reason.contains("did not call back within 60 s"), "{reason}");
        for status in [JobStatus::Queued, JobStatus::Done, JobStatus::Failed] {
            job.status = status;
            assert_eq!(overdue(&job, u64::MAX, 60), None, "{status:?}");
        }
        job.status = JobStatus::Running;
        job.invoked_ms = None;
        assert_eq!(overdue(&job, u64::MAX, 60), None);
    }
}
