//! A Lambda job as a workflow step (features `workflows` and `jobs`): the job is
//! submitted once, as a durable step, and the run waits for its signed callback
//! as an event, with a timeout the workflow can route to a fallback.

use std::future::Future;
use std::time::Duration;

use super::step::timed_out_as;
use super::Step;
use crate::error::{Error, ErrorKind};
use crate::jobs::{JobRecord, JobStatus, JobWaiter};

impl Step {
    /// Runs a Lambda job as a step of this instance.
    ///
    /// `submit` runs as the durable step `"<name>: submit"`: it hands the job to
    /// the pipeline with the [`JobWaiter`] it is given
    /// ([`Jobs::submit_for`](crate::jobs::Jobs::submit_for)), so the pipeline
    /// sends the finished record to this instance through the workflow binding
    /// `binding`. The waiter names the job, so an attempt of the step that is
    /// retried after the job was stored finds that job rather than starting
    /// another. The run then waits up to `timeout` for it, as the step `name`;
    /// an instance that sleeps or is evicted meanwhile costs nothing.
    ///
    /// Returns the record when the function reports `done`. A reported failure
    /// is a permanent error with the function's reason; no callback within
    /// `timeout` is a 504 the workflow may route to a fallback (a function that
    /// crashed, or whose callback was lost, no longer hangs the instance).
    ///
    /// ```ignore
    /// let label = step.job("label", "ORDERS", Duration::from_secs(600), move |waiter| {
    ///     let (env, input) = (env.clone(), input.clone());
    ///     async move { jobs(&env)?.submit_for(Some(waiter), "label", "application/json", &input, &origin).await }
    /// }).await;
    /// ```
    pub async fn job<F, Fut>(
        &self,
        name: &str,
        binding: &'static str,
        timeout: Duration,
        submit: F,
    ) -> Result<JobRecord, Error>
    where
        F: Fn(JobWaiter) -> Fut + 'static,
        Fut: Future<Output = Result<JobRecord, Error>> + 'static,
    {
        let waiter = JobWaiter {
            binding: binding.to_owned(),
            instance: self.instance_id().to_owned(),
            step: name.to_owned(),
        };
        let submitted: JobRecord = self
            .run(&format!("{name}: submit"), move || submit(waiter.clone()))
            .await?;
        // A retried submission can find the job already ended, its event sent
        // before anything waited for it.
        if submitted.status.is_final() {
            return job_result(submitted);
        }
        let id = submitted.id;
        let finished: JobRecord = self
            .wait_for_event(name, &JobWaiter::event_type(&id), timeout)
            .await
            .map_err(|err| {
                timed_out_as(err, |_| {
                    format!(
                        "job {id} did not call back within {} s",
                        timeout.as_secs_f64()
                    )
                })
            })?;
        job_result(finished)
    }
}

/// The finished record of a `done` job, or the failure its function reported.
fn job_result(record: JobRecord) -> Result<JobRecord, Error> {
    if record.status == JobStatus::Done {
        return Ok(record);
    }
    let reason = record.error.as_deref().unwrap_or("no reason given");
    Err(Error::new(
        ErrorKind::Upstream,
        format!("job {} ({}) failed: {reason}", record.id, record.kind),
    )
    .permanent())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn record(status: JobStatus, error: Option<&str>) -> JobRecord {
        JobRecord {
            id: "j1".into(),
            kind: "label".into(),
            status,
            attempts: 1,
            input_type: "application/json".into(),
            input_bytes: 2,
            created_ms: 1,
            invoked_ms: Some(2),
            finished_ms: Some(3),
            result: Some(serde_json::json!({"tracking": "1Z"})),
            error: error.map(str::to_owned),
            waiter: None,
        }
    }

    #[test]
    fn a_done_job_is_the_steps_result_and_a_failed_one_is_permanent() {
        assert_eq!(
            job_result(record(JobStatus::Done, None)).unwrap().result,
            Some(serde_json::json!({"tracking": "1Z"}))
        );
        let err = job_result(record(
            JobStatus::Failed,
            Some("the function reported: no address"),
        ))
        .unwrap_err();
        assert!(err.is_permanent());
        assert!(err.detail().contains("no address"), "{}", err.detail());
        assert!(err.detail().contains("j1 (label)"), "{}", err.detail());
    }

    #[test]
    fn the_event_names_the_job() {
        assert_eq!(JobWaiter::event_type("j1"), "job-j1");
    }
}
