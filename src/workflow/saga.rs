//! Compensations for a run whose later step fails for good (the saga pattern):
//! each step that changes the world registers how to undo it, and when the run
//! gives up, the undos run as durable steps, newest first.

use std::future::Future;
use std::rc::Rc;

use futures_util::future::LocalBoxFuture;

use super::Step;
use crate::error::Error;

type Undo = Rc<dyn Fn() -> LocalBoxFuture<'static, Result<(), Error>>>;

/// The compensations registered so far in one run.
///
/// ```ignore
/// let mut saga = Saga::new();
/// let hold = step.run("reserve stock", reserve).await?;
/// saga.on_failure("release stock", move || release(hold.clone()));
/// if let Err(err) = step.run_with("charge", retried, charge).await {
///     saga.compensate(&step).await?; // "release stock", as a durable step
///     return Err(err);
/// }
/// ```
///
/// Register a compensation after the step it undoes has succeeded: a replay
/// rebuilds the list in the same order, because the run takes the same steps.
#[derive(Default)]
pub struct Saga {
    undos: Vec<(String, Undo)>,
}

impl Saga {
    /// No compensations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `undo` as the step `name`, to run if the run gives up later.
    /// It runs with the engine's default retries, like [`Step::run`]; it must be
    /// safe to run twice, as any step attempt must.
    pub fn on_failure<F, Fut>(&mut self, name: impl Into<String>, undo: F)
    where
        F: Fn() -> Fut + 'static,
        Fut: Future<Output = Result<(), Error>> + 'static,
    {
        self.undos.push((
            name.into(),
            Rc::new(move || Box::pin(undo()) as LocalBoxFuture<_>),
        ));
    }

    /// Runs every registered compensation as a durable step, newest first, and
    /// clears the list. Stops at the first compensation that fails for good and
    /// returns its error: what is left undone is then the instance's error to
    /// report, not something to skip silently.
    pub async fn compensate(&mut self, step: &Step) -> Result<(), Error> {
        while let Some((name, undo)) = self.undos.pop() {
            step.run(&name, move || undo()).await?;
        }
        Ok(())
    }
}
