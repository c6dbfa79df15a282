//! A run's `step` handle: durable steps, sleeps and waits on the engine, each
//! recorded in the trace.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::JsValue;

use super::config::{check_step_name, millis, StepConfig, MAX_STEPS};
use super::trace::Recorder;
use crate::error::Error;
use crate::http::StatusCode;

/// The handle a workflow uses for every durable thing it does.
///
/// Steps are identified by their names and their order, so a run must take the
/// same steps in the same order every time it is replayed: decide on step
/// outputs, not on the clock or randomness outside a step.
pub struct Step {
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    js: JsValue,
    recorder: Recorder,
    next: Cell<u32>,
    /// Set when the engine interrupted a sleep or a wait (a pause, a restart):
    /// the run did not end, it will be replayed.
    interrupted: Rc<Cell<bool>>,
    /// Where each step attempt is attributed, when the workflow is metered.
    #[cfg(feature = "ops")]
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub(crate) metering: Option<StepMetering>,
}

/// Attribution of a metered workflow's step attempts: through `ops`, to the
/// workflow's name as the feature.
#[cfg(feature = "ops")]
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) struct StepMetering {
    pub(crate) ops: crate::ops::Ops,
    pub(crate) workflow: &'static str,
}

impl Step {
    pub(crate) fn new(js: JsValue, recorder: Recorder, interrupted: Rc<Cell<bool>>) -> Self {
        Self {
            js,
            recorder,
            next: Cell::new(0),
            interrupted,
            #[cfg(feature = "ops")]
            metering: None,
        }
    }

    /// The id of the instance this run belongs to.
    pub fn instance_id(&self) -> &str {
        self.recorder.instance()
    }

    /// This step's place in the run; fails past [`MAX_STEPS`].
    fn take_seq(&self, name: &str) -> Result<u32, Error> {
        check_step_name(name)?;
        let seq = self.next.get();
        if seq >= MAX_STEPS {
            return Err(Error::with_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "step {name:?} would be step {} of this instance; the limit is {MAX_STEPS}",
                    seq + 1
                ),
            )
            .permanent());
        }
        self.next.set(seq + 1);
        Ok(seq)
    }

    /// Runs `work` as a durable step with the engine's default retries: its
    /// output is persisted, so once it succeeds it never runs again for this
    /// instance, and a replay gets the stored output.
    ///
    /// An `Err` is retried unless it is [permanent](Error::permanent); when the
    /// retries run out the step fails with the last attempt's error, which the
    /// workflow may handle (a fallback step) or return (the instance fails).
    pub async fn run<T, F, Fut>(&self, name: &str, work: F) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned + 'static,
        F: Fn() -> Fut + 'static,
        Fut: Future<Output = Result<T, Error>> + 'static,
    {
        self.run_with(name, StepConfig::new(), work).await
    }

    /// [`Step::run`] with its own retries, backoff and timeout.
    pub async fn run_with<T, F, Fut>(
        &self,
        name: &str,
        config: StepConfig,
        work: F,
    ) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned + 'static,
        F: Fn() -> Fut + 'static,
        Fut: Future<Output = Result<T, Error>> + 'static,
    {
        let seq = self.take_seq(name)?;
        #[cfg(target_arch = "wasm32")]
        {
            // Only this part is generic: the engine's side of a step is one
            // copy for every step of every workflow.
            let work: wasm::Work = Rc::new(move || {
                let output = work();
                Box::pin(async move {
                    serde_json::to_string(&output.await?)
                        .map_err(|e| Error::internal(format!("step output: {e}")).permanent())
                })
            });
            let text = wasm::run(self, seq, name, config, work).await?;
            serde_json::from_str(&text).map_err(|e| {
                Error::internal(format!(
                    "step {name:?} stored an output that no longer decodes: {e}"
                ))
                .permanent()
            })
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (seq, config, work);
            Err(outside_workerd())
        }
    }

    /// Sleeps for `duration`; the instance hibernates and costs nothing meanwhile.
    pub async fn sleep(&self, name: &str, duration: Duration) -> Result<(), Error> {
        let seq = self.take_seq(name)?;
        #[cfg(target_arch = "wasm32")]
        {
            let ms = millis(duration) as f64;
            wasm::pause(self, seq, name, super::trace::Kind::Sleep, || {
                crate::js::workflow::step_sleep(&self.js, name, ms)
            })
            .await
            .map(|_| ())
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (seq, millis(duration));
            Err(outside_workerd())
        }
    }

    /// Sleeps until `when`.
    pub async fn sleep_until(&self, name: &str, when: SystemTime) -> Result<(), Error> {
        let seq = self.take_seq(name)?;
        let ms = when
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as f64)
            .unwrap_or(0.0);
        #[cfg(target_arch = "wasm32")]
        {
            wasm::pause(self, seq, name, super::trace::Kind::Sleep, || {
                crate::js::workflow::step_sleep_until(&self.js, name, ms)
            })
            .await
            .map(|_| ())
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (seq, ms);
            Err(outside_workerd())
        }
    }

    /// Waits up to `timeout` for an event of type `kind` sent to this instance
    /// ([`Workflow::send_event`](super::Workflow::send_event)) and returns its
    /// payload. No event in time is a 504 error the workflow may handle.
    pub async fn wait_for_event<T: DeserializeOwned>(
        &self,
        name: &str,
        kind: &str,
        timeout: Duration,
    ) -> Result<T, Error> {
        let seq = self.take_seq(name)?;
        #[cfg(target_arch = "wasm32")]
        {
            let ms = millis(timeout) as f64;
            let text = wasm::pause(self, seq, name, super::trace::Kind::Wait, || {
                crate::js::workflow::step_wait(&self.js, name, kind, ms)
            })
            .await
            .map_err(|err| {
                timed_out_as(err, |err| {
                    format!(
                        "no {kind:?} event within {} ms: {}",
                        millis(timeout),
                        err.detail()
                    )
                })
            })?;
            serde_json::from_str(&text).map_err(|e| {
                Error::with_status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("the {kind:?} event's payload does not fit: {e}"),
                )
                .permanent()
            })
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (seq, kind, millis(timeout));
            Err(outside_workerd())
        }
    }
}

/// `err`, or, when it is a wait that ran out of time (504), the same 504
/// saying `detail(&err)` instead.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(super) fn timed_out_as(err: Error, detail: impl FnOnce(&Error) -> String) -> Error {
    if err.status() == StatusCode::GATEWAY_TIMEOUT {
        Error::with_status(StatusCode::GATEWAY_TIMEOUT, detail(&err))
    } else {
        err
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn outside_workerd() -> Error {
    Error::internal("workflow steps run only in workerd")
}

#[cfg(target_arch = "wasm32")]
mod wasm {
    use std::cell::RefCell;
    use std::future::Future;
    use std::panic::AssertUnwindSafe;
    use std::rc::Rc;

    use js_sys::Promise;
    use wasm_bindgen::prelude::*;

    use futures_util::future::LocalBoxFuture;

    use super::super::config::{check_value_size, StepConfig};
    use super::super::trace::Kind;
    use super::{Error, StatusCode, Step};
    use crate::js::workflow as glue;
    use crate::platform::now_ms;

    /// A step's work, with its output as JSON text.
    pub(super) type Work = Rc<dyn Fn() -> LocalBoxFuture<'static, Result<String, Error>>>;

    /// One `step.do`: each attempt the engine starts runs `work` once, recorded,
    /// raced against the attempt timeout, and answers the output's JSON text or a
    /// failure the engine retries unless it is permanent.
    pub(super) async fn run(
        step: &Step,
        seq: u32,
        name: &str,
        config: StepConfig,
        work: Work,
    ) -> Result<String, Error> {
        // The last attempt's error, to hand back with its kind and status intact.
        let last_error: Rc<RefCell<Option<Error>>> = Rc::default();
        let recorder = step.recorder.clone();
        let step_name: Rc<str> = name.into();
        let timeout = config.attempt_timeout().map(|t| super::millis(t) as f64);
        #[cfg(feature = "ops")]
        let metering = step.metering;
        let callback = {
            let last_error = last_error.clone();
            // Panics in `work` are caught below, so no half-updated state leaks.
            let last_error = AssertUnwindSafe(last_error);
            let work = AssertUnwindSafe(work);
            Closure::<dyn FnMut(u32) -> Promise>::new(move |attempt: u32| {
                // Whole wrappers, not their fields: a closure that named `work.0`
                // would capture the field, which is not unwind safe.
                let (work, last_error) = (&work, &last_error);
                let (work, recorder, name, last_error) = (
                    work.0.clone(),
                    recorder.clone(),
                    step_name.clone(),
                    last_error.0.clone(),
                );
                crate::js::drive(async move {
                    recorder
                        .step_started(seq, attempt, &name, Kind::Run, now_ms())
                        .await;
                    let attempt_name = name.clone();
                    let work_done: futures_util::future::LocalBoxFuture<'static, _> =
                        Box::pin(caught(async move {
                            let text = work().await?;
                            check_value_size(
                                &text,
                                &format!("the output of step {attempt_name:?}"),
                            )?;
                            Ok(text)
                        }));
                    // Each attempt is one invocation, attributed to the workflow
                    // with the step as its route.
                    #[cfg(feature = "ops")]
                    let attribution = metering.map(|m| {
                        let cold = crate::observe::take_cold_start();
                        m.ops
                            .attribution(crate::ops::usage::Trigger::Workflow, cold)
                    });
                    #[cfg(feature = "ops")]
                    let work_done = match &attribution {
                        Some(attribution) => Box::pin(attribution.meter(work_done)),
                        None => work_done,
                    };
                    let result = attempt_within(&name, timeout, work_done).await;
                    // Recorded only: the run flushes when it returns, outside
                    // the engine's timeout of this callback.
                    #[cfg(feature = "ops")]
                    if let (Some(attribution), Some(metering)) = (attribution, metering) {
                        let outcome = crate::ops::usage::Outcome::of(&result);
                        attribution.record(metering.workflow, &name, outcome);
                    }

                    let (outcome, error) = match &result {
                        Ok(_) => ("ok", None),
                        Err(err) if err.status() == StatusCode::GATEWAY_TIMEOUT => {
                            ("timeout", Some(err.detail()))
                        }
                        Err(err) => ("error", Some(err.detail())),
                    };
                    recorder
                        .step_ended(seq, attempt, outcome, error, now_ms())
                        .await;
                    match result {
                        Ok(text) => Ok(JsValue::from_str(&text)),
                        Err(err) => {
                            let failure = glue::step_failure(err.detail(), err.is_permanent());
                            *last_error.borrow_mut() = Some(err);
                            Err(failure)
                        }
                    }
                })
            })
        };
        let result =
            crate::js::settled(&glue::step_do(&step.js, name, &config.to_json(), &callback)).await;
        drop(callback);
        match result {
            Ok(text) => Ok(text.as_string().unwrap_or_default()),
            Err(thrown) => Err(last_error.borrow_mut().take().unwrap_or_else(|| {
                // A failure recorded by an earlier run of this instance: the engine
                // replays its message only.
                Error::internal(format!(
                    "step {name:?} failed: {}",
                    glue::error_message(&thrown)
                ))
            })),
        }
    }

    /// `work`'s result, or its panic as an error: a panicking step is a failed
    /// attempt, retried like any other.
    async fn caught(
        work: impl Future<Output = Result<String, Error>> + 'static,
    ) -> Result<String, Error> {
        let work: futures_util::future::LocalBoxFuture<'static, _> = Box::pin(work);
        match crate::panic::catch_panic_future(work).await {
            Ok(result) => result,
            Err(message) => Err(Error::new(crate::error::ErrorKind::Panic, message)),
        }
    }

    /// `work`, or a 504 error when it has not finished within `timeout_ms`.
    async fn attempt_within(
        name: &str,
        timeout_ms: Option<f64>,
        work: futures_util::future::LocalBoxFuture<'static, Result<String, Error>>,
    ) -> Result<String, Error> {
        let Some(ms) = timeout_ms else {
            return work.await;
        };
        let slot: Rc<RefCell<Option<Result<String, Error>>>> = Rc::default();
        let promise = {
            let slot = slot.clone();
            crate::js::drive(async move {
                *slot.borrow_mut() = Some(work.await);
                Ok(JsValue::UNDEFINED)
            })
        };
        let in_time = crate::js::settled(&glue::settles_within(&promise, ms))
            .await
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let finished = slot.borrow_mut().take();
        match finished {
            Some(result) if in_time => result,
            _ => Err(Error::with_status(
                StatusCode::GATEWAY_TIMEOUT,
                format!("step {name:?} did not finish within {ms} ms"),
            )),
        }
    }

    /// A sleep or a wait: recorded when it starts (once, even on replays) and
    /// when it ends. A rejection that is not a wait's timeout means the run was
    /// interrupted (paused, restarted, evicted): the step has not ended, so its
    /// row stays open for the replay to close, and the run is marked so its end
    /// is not recorded either.
    pub(super) async fn pause(
        step: &Step,
        seq: u32,
        name: &str,
        kind: Kind,
        call: impl FnOnce() -> Promise,
    ) -> Result<String, Error> {
        step.recorder
            .step_started(seq, 1, name, kind, now_ms())
            .await;
        match crate::js::settled(&call()).await {
            Ok(value) => {
                step.recorder.step_ended(seq, 1, "ok", None, now_ms()).await;
                Ok(value.as_string().unwrap_or_default())
            }
            Err(thrown) => {
                let message = glue::error_message(&thrown);
                if glue::is_timeout(&thrown) {
                    step.recorder
                        .step_ended(seq, 1, "timeout", Some(&message), now_ms())
                        .await;
                    Err(Error::with_status(StatusCode::GATEWAY_TIMEOUT, message))
                } else {
                    step.interrupted.set(true);
                    Err(Error::new(crate::error::ErrorKind::Upstream, message))
                }
            }
        }
    }
}
