//! The jobs pipeline on KV, Queues and Lambda: submit, invoke (the queue
//! consumer), callback and poll.
//!
//! KV layout: `job:<id>` holds the [`JobRecord`], `job-input:<id>` the input bytes.
//! Both expire after [`Jobs::ttl`] (a day by default).

use serde_json::Value;

use super::model::{check_kind, JobEnvelope, JobOutcome, JobRecord, JobStatus, JobTask};
use super::{JobKeys, INPUT_URL_TTL_SECONDS};
use crate::aws::lambda::{Function, Lambda, ASYNC_PAYLOAD_LIMIT};
use crate::error::{Error, ErrorKind};
use crate::kv::{Kv, PutOptions};
use crate::queue::{Envelope, Failure, Job, Producer};

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
        }
    }

    /// How long job records and inputs are kept (seconds).
    pub fn ttl(mut self, seconds: u64) -> Self {
        self.ttl_seconds = seconds;
        self
    }

    fn options(&self) -> PutOptions {
        PutOptions::new().expiration_ttl(self.ttl_seconds)
    }

    /// The job, if it exists.
    pub async fn get(&self, id: &str) -> Result<Option<JobRecord>, Error> {
        self.kv.get_json(&record_key(id)).await
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
        check_kind(kind)?;
        let record = JobRecord {
            id: crate::platform::new_id(),
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
        job: &Job<JobTask>,
        lambda: &Lambda,
        function: &str,
    ) -> Result<(), Failure> {
        let task = &job.body;
        let Some(mut record) = self.get(&task.id).await? else {
            return Err(Failure::permanent(format!(
                "job {} expired before it was invoked",
                task.id
            )));
        };
        if record.status.is_final() || record.status == JobStatus::Running {
            // Already handed over (a redelivered message): invoking again would run
            // the work twice.
            return Ok(());
        }
        record.attempts = job.attempts;
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
                record.invoked_ms = Some(now_ms());
                record.error = None;
            }
            Err(failure) => {
                let (reason, last) = match failure {
                    Failure::Permanent(r) => (r.clone(), true),
                    Failure::Transient(r) | Failure::RetryAfter { reason: r, .. } => {
                        (r.clone(), job.is_last_attempt())
                    }
                };
                if last {
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
        result
    }

    /// The envelope for `record`: the input inline when it is JSON and fits the
    /// async payload limit, otherwise a signed URL to fetch it.
    async fn envelope(&self, record: &JobRecord, origin: &str) -> Result<JobEnvelope, Error> {
        let mut envelope = JobEnvelope {
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
            envelope.input = Some(serde_json::from_slice::<Value>(&bytes)?);
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
        let outcome: JobOutcome = serde_json::from_slice(body).map_err(|e| {
            Error::new(
                ErrorKind::JsonShape,
                format!("a job outcome is {{\"status\":\"done\",\"output\":…}} or {{\"status\":\"failed\",\"error\":\"…\"}}: {e}"),
            )
        })?;
        let mut record = self
            .get(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("no job {id:?}")))?;
        if record.status.is_final() {
            return Err(Error::with_status(
                crate::StatusCode::CONFLICT,
                format!("job {id} has already ended ({:?})", record.status),
            ));
        }
        match outcome {
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
        record.finished_ms = Some(now_ms());
        self.save(&record).await?;
        Ok(record)
    }
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
