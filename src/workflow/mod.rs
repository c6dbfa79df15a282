//! Durable workflows on Cloudflare Workflows (feature `workflows`): a workflow
//! is an `async fn` of a typed event and a [`Step`] handle, and each
//! [`Step::run`] is a durable step the engine retries, times out and persists.
//! A finished step never runs again for its instance: after a sleep, a wait or
//! an isolate restart, the engine replays the run and hands back stored outputs.
//!
//! ```ignore
//! async fn fulfil(event: WorkflowEvent<Order>, step: Step) -> Result<Receipt, Error> {
//!     let env = event.env().clone();
//!     let reservation: Reservation = step.run("reserve stock", move || reserve(env.clone())).await?;
//!     let charge = StepConfig::new()
//!         .retries(3, Duration::from_secs(1), Backoff::Exponential)
//!         .timeout(Duration::from_secs(10));
//!     match step.run_with("charge", charge, move || charge_card(order.clone())).await {
//!         Ok(payment) => Ok(Receipt { reservation, payment }),
//!         // The fallback path: compensate, then fail the instance with the reason.
//!         Err(err) => {
//!             step.run("release stock", move || release(reservation.clone())).await?;
//!             Err(err)
//!         }
//!     }
//! }
//!
//! fn orders() -> Definition {
//!     Definition::new("orders", fulfil).trace("TRACE")
//! }
//!
//! edgeway::entry!(fetch: app, workflows: { OrderFulfillment: orders });
//! ```
//!
//! `entry!` exports one class per workflow from edgeway's shim, extending
//! `WorkflowEntrypoint` (`class_name` in `wrangler.toml`'s `[[workflows]]`).
//! With [`Definition::trace`], every instance and every attempt of every step is
//! recorded in D1 and read back with [`Trace`]. Instances are started and
//! steered through the binding, [`Workflow`].

// Natively only the types and the pure checks are used (by user code that
// type-checks its workflows, and by unit tests).
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod binding;
mod config;
#[cfg(feature = "jobs")]
mod job_step;
mod saga;
mod step;
mod trace;

use std::future::Future;
use std::rc::Rc;

use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use binding::{Control, InstanceError, InstanceStatus, Workflow};
pub use config::{
    Backoff, StepConfig, MAX_INSTANCE_ID_BYTES, MAX_STEPS, MAX_STEP_NAME_BYTES, MAX_VALUE_BYTES,
};
pub use saga::Saga;
pub use step::Step;
pub use trace::{InstanceRecord, StepRecord, Trace};

use crate::error::Error;

/// What a run receives: the instance's parameters and where it runs.
pub struct WorkflowEvent<T> {
    /// The parameters the instance was created with.
    pub payload: T,
    /// The instance's id.
    pub instance_id: String,
    /// When the instance was created, in ms since the epoch.
    pub timestamp_ms: u64,
    env: worker::Env,
}

impl<T> WorkflowEvent<T> {
    /// The worker's bindings.
    pub fn env(&self) -> &worker::Env {
        &self.env
    }
}

type Runner = Rc<
    dyn Fn(
        String,
        String,
        u64,
        worker::Env,
        Step,
    ) -> LocalBoxFuture<'static, Result<String, Error>>,
>;

/// A workflow: its name, its run function and where its trace goes. Register it
/// with [`entry!`](crate::entry) under the class name `wrangler.toml` gives it.
pub struct Definition {
    name: &'static str,
    trace: Option<&'static str>,
    run: Runner,
    #[cfg(feature = "ops")]
    ops: Option<crate::ops::Ops>,
}

impl Definition {
    /// The workflow `name` (its `name` in `wrangler.toml`), running `run`.
    ///
    /// Parameters that do not decode as `T` fail the instance at once, without
    /// retries, naming the field.
    pub fn new<T, O, F, Fut>(name: &'static str, run: F) -> Self
    where
        T: DeserializeOwned + 'static,
        O: Serialize + 'static,
        F: Fn(WorkflowEvent<T>, Step) -> Fut + 'static,
        Fut: Future<Output = Result<O, Error>> + 'static,
    {
        let run = Rc::new(run);
        Self {
            name,
            trace: None,
            #[cfg(feature = "ops")]
            ops: None,
            run: Rc::new(move |payload, instance_id, timestamp_ms, env, step| {
                let run = run.clone();
                Box::pin(async move {
                    let payload: T = serde_json::from_str(&payload).map_err(|e| {
                        Error::with_status(
                            crate::http::StatusCode::UNPROCESSABLE_ENTITY,
                            format!("the instance's parameters do not fit: {e}"),
                        )
                        .permanent()
                    })?;
                    let event = WorkflowEvent {
                        payload,
                        instance_id,
                        timestamp_ms,
                        env,
                    };
                    let output = run(event, step).await?;
                    serde_json::to_string(&output)
                        .map_err(|e| Error::internal(format!("workflow output: {e}")))
                })
            }),
        }
    }

    /// Records every instance and step in the D1 database bound as `binding`.
    pub fn trace(mut self, binding: &'static str) -> Self {
        self.trace = Some(binding);
        self
    }

    /// Attributes every step attempt through `ops` (feature `ops`): to this
    /// workflow as the feature and the step's name as the route, with its wall
    /// time, whether it succeeded and the billable operations it made. Replays
    /// of finished steps run nothing and are not counted.
    #[cfg(feature = "ops")]
    pub fn metered(mut self, ops: crate::ops::Ops) -> Self {
        self.ops = Some(ops);
        self
    }

    /// The workflow's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// Runs one invocation of `definition`'s run for workerd's `event` and `step`:
/// the output's JSON text, or the error the instance fails with.
#[cfg(target_arch = "wasm32")]
pub(crate) async fn run(
    definition: &Definition,
    event: wasm_bindgen::JsValue,
    step: wasm_bindgen::JsValue,
    env: worker::Env,
) -> Result<String, Error> {
    use crate::js::workflow as glue;
    use crate::platform::now_ms;

    let instance_id = glue::event_instance_id(&event);
    let trace = match definition.trace {
        Some(binding) => match Trace::from_env(&env, binding) {
            Ok(trace) => Some(trace),
            Err(err) => {
                crate::observe::Line::new()
                    .field("msg", "workflow trace unavailable")
                    .field("detail", &err.detail())
                    .write(crate::observe::Level::Warn);
                None
            }
        },
        None => None,
    };
    let recorder = trace::Recorder::new(trace, definition.name, instance_id.as_str().into());
    recorder.run_started(now_ms()).await;
    let interrupted = Rc::new(std::cell::Cell::new(false));
    #[cfg_attr(not(feature = "ops"), allow(unused_mut))]
    let mut step = Step::new(step, recorder.clone(), interrupted.clone());
    #[cfg(feature = "ops")]
    {
        step.metering = definition.ops.map(|ops| step::StepMetering {
            ops,
            workflow: definition.name,
        });
    }
    #[cfg(feature = "ops")]
    let flush_with = definition.ops.map(|ops| (ops, env.clone()));
    let result = (definition.run)(
        glue::event_payload(&event),
        instance_id,
        glue::event_timestamp(&event) as u64,
        env,
        step,
    )
    .await;
    // An interrupted run has not ended: the engine replays it later.
    if !interrupted.get() {
        let error = result.as_ref().err().map(|e| e.detail().to_owned());
        recorder.run_ended(now_ms(), error.as_deref()).await;
    }
    // The step attempts this run recorded, sent when the interval has passed.
    #[cfg(feature = "ops")]
    if let Some((ops, env)) = flush_with {
        ops.flush_if_due(&env).await;
    }
    result
}
