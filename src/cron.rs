//! Scheduled events (feature `bindings`): handlers by cron expression, for the
//! `[triggers] crons` of `wrangler.toml`.
//!
//! ```ignore
//! fn cron() -> Cron {
//!     Cron::new()
//!         .on("*/5 * * * *", |schedule: Schedule| async move { sweep(schedule.env()).await })
//!         .on("0 3 * * *", nightly_report)
//! }
//! edgeway::entry!(fetch: app, queue: consumer, scheduled: cron);
//! ```
//!
//! A handler's error (or panic) is logged with the cron expression and fails the
//! invocation, so the runtime records it as failed; a cron with no handler fails
//! the same way, rather than passing silently.

use std::future::Future;
use std::rc::Rc;

use futures_util::future::LocalBoxFuture;

use crate::error::Error;
use crate::observe::{Level, Line};

/// One scheduled event, as a handler sees it.
pub struct Schedule {
    /// The cron expression that fired, as `wrangler.toml` writes it.
    pub cron: String,
    /// When the event was scheduled to run, in ms since the epoch.
    pub scheduled_time_ms: u64,
    env: worker::Env,
    context: worker::Context,
}

impl Schedule {
    /// An event for `cron`, scheduled at `scheduled_time_ms`: what the entry
    /// builds from workerd's event, and what a test builds to drive a [`Cron`].
    pub fn new(
        cron: String,
        scheduled_time_ms: u64,
        env: worker::Env,
        context: worker::Context,
    ) -> Self {
        Self {
            cron,
            scheduled_time_ms,
            env,
            context,
        }
    }

    /// The worker's bindings.
    pub fn env(&self) -> &worker::Env {
        &self.env
    }

    /// The execution context, for `wait_until`.
    pub fn context(&self) -> &worker::Context {
        &self.context
    }
}

type ErasedHandler = Rc<dyn Fn(Schedule) -> LocalBoxFuture<'static, Result<(), Error>>>;

/// A handler, with the cron expression it runs for and its feature tag.
struct Entry {
    cron: String,
    #[cfg_attr(not(feature = "ops"), allow(dead_code))] // read only to attribute runs
    feature: Option<String>,
    handler: ErasedHandler,
}

/// The worker's scheduled-event handlers, by cron expression.
#[derive(Default)]
pub struct Cron {
    handlers: Vec<Entry>,
    #[cfg(feature = "ops")]
    ops: Option<crate::ops::Ops>,
}

impl Cron {
    /// No handlers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `handler` when `cron` fires. The expression is matched as
    /// `wrangler.toml` lists it, with runs of whitespace treated as one space.
    pub fn on<F, Fut>(mut self, cron: &str, handler: F) -> Self
    where
        F: Fn(Schedule) -> Fut + 'static,
        Fut: Future<Output = Result<(), Error>> + 'static,
    {
        let erased: ErasedHandler = Rc::new(move |schedule| Box::pin(handler(schedule)));
        self.handlers.push(Entry {
            cron: normalize(cron),
            feature: None,
            handler: erased,
        });
        self
    }

    /// Tags the handler added last with `feature`, as
    /// [`App::tag`](crate::App::tag) tags a route: its runs are attributed
    /// to it when the cron is metered (feature `ops`; untagged, to `cron`).
    ///
    /// # Panics
    ///
    /// When no handler has been added yet: a programming error.
    pub fn tag(mut self, feature: &str) -> Self {
        let last = self
            .handlers
            .last_mut()
            .expect("Cron::tag follows Cron::on");
        last.feature = Some(feature.to_owned());
        self
    }

    /// Attributes every run through `ops` (feature `ops`): to the handler's
    /// tag, with its expression as the route, its wall time, whether it was
    /// its isolate's first invocation, whether it succeeded, and the billable
    /// operations it made.
    #[cfg(feature = "ops")]
    pub fn metered(mut self, ops: crate::ops::Ops) -> Self {
        self.ops = Some(ops);
        self
    }

    /// Runs the handler for `schedule.cron`: its result, a panic as an error, or
    /// an error when no handler matches. Every outcome is logged.
    pub async fn run(&self, schedule: Schedule) -> Result<(), Error> {
        let cron = schedule.cron.clone();
        let scheduled_time_ms = schedule.scheduled_time_ms;
        let key = normalize(&cron);
        let entry = self.handlers.iter().find(|entry| entry.cron == key);
        #[cfg(feature = "ops")]
        let attribution = self.ops.map(|ops| {
            let cold = crate::observe::take_cold_start();
            ops.attribution(crate::ops::usage::Trigger::Cron, cold)
        });
        #[cfg(feature = "ops")]
        let env = schedule.env().clone();
        let work = async {
            match entry {
                Some(entry) => crate::panic::catch_panic_future((entry.handler)(schedule))
                    .await
                    .unwrap_or_else(|panic| Err(Error::internal(panic))),
                None => Err(Error::internal(format!(
                    "no handler for cron {cron:?} (handled: {})",
                    self.handlers
                        .iter()
                        .map(|entry| format!("{:?}", entry.cron))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
            }
        };
        #[cfg(feature = "ops")]
        let result = match attribution {
            Some(attribution) => {
                let result = attribution.meter(work).await;
                let outcome = crate::ops::usage::Outcome::of(&result);
                let feature = entry.and_then(|e| e.feature.as_deref()).unwrap_or("cron");
                attribution.finish(feature, &key, outcome, &env).await;
                result
            }
            None => work.await,
        };
        #[cfg(not(feature = "ops"))]
        let result = work.await;
        match &result {
            Ok(()) => Line::new()
                .field("msg", "scheduled event handled")
                .field("cron", &cron)
                .field("scheduled_time_ms", &scheduled_time_ms)
                .write(Level::Info),
            Err(err) => Line::new()
                .field("msg", "scheduled event failed")
                .field("cron", &cron)
                .field("scheduled_time_ms", &scheduled_time_ms)
                .field("error", &err.detail())
                .write(Level::Error),
        }
        result
    }
}

/// `cron` with runs of whitespace as one space.
fn normalize(cron: &str) -> String {
    cron.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use wasm_bindgen::JsCast;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn schedule(cron: &str) -> Schedule {
        // The handlers below never touch the bindings.
        let env: worker::Env = wasm_bindgen::JsValue::UNDEFINED.unchecked_into();
        let context = worker::Context::new(wasm_bindgen::JsValue::UNDEFINED.unchecked_into());
        Schedule::new(cron.to_owned(), 1_700_000_000_000, env, context)
    }

    #[test]
    fn dispatches_on_the_expression_and_fails_loudly_without_a_handler() {
        let ran = Rc::new(RefCell::new(Vec::new()));
        let seen = ran.clone();
        let cron = Cron::new()
            .on("*/5 * * * *", move |s: Schedule| {
                let seen = seen.clone();
                async move {
                    seen.borrow_mut().push(s.cron);
                    Ok(())
                }
            })
            .on("0 3 * * *", |_| async {
                Err(Error::internal("nightly failed"))
            });
        let run = |c: &str| crate::__private::block_on(cron.run(schedule(c)));
        assert!(run("*/5  *  * * *").is_ok());
        assert_eq!(*ran.borrow(), ["*/5  *  * * *"]);
        assert_eq!(run("0 3 * * *").unwrap_err().detail(), "nightly failed");
        let missing = run("1 1 1 1 1").unwrap_err();
        assert!(
            missing.detail().contains("no handler"),
            "{}",
            missing.detail()
        );
        assert!(
            missing.detail().contains("\"*/5 * * * *\""),
            "{}",
            missing.detail()
        );
    }
}
