//! The queue consumer, one message at a time through a straight pipeline:
//! decode → skip a duplicate → dispatch to the handler for its kind → decide
//! (the pure [`decide`]) → ack, retry with backoff, or dead-letter with a reason.
//! Messages on the dead-letter queue itself are recorded in KV, then acked.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::rc::Rc;

use futures_util::future::LocalBoxFuture;
use futures_util::stream::{self, StreamExt};
use js_sys::{Array, Object, Reflect};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::{Backoff, Envelope, Producer};
use crate::error::Error;
use crate::kv::{Kv, PutOptions};
use crate::observe::{Level, Line};

/// The kind of the envelopes edgeway puts on a dead-letter queue.
pub const DEAD_LETTER_KIND: &str = "edgeway.dead_letter";

/// Why a handler did not finish a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Worth retrying later (a timeout, a 5xx, a 429): retried with backoff until
    /// the attempts run out, then dead-lettered.
    Transient(String),
    /// Retrying cannot help (bad input, a 4xx): dead-lettered at once.
    Permanent(String),
    /// Like [`Transient`](Self::Transient), but the other side said when to come
    /// back (`Retry-After`); capped at the Queues maximum delay.
    RetryAfter {
        /// Why it failed.
        reason: String,
        /// When to retry, in seconds.
        seconds: u32,
    },
}

impl Failure {
    /// A transient failure with `reason`.
    pub fn transient(reason: impl fmt::Display) -> Self {
        Self::Transient(reason.to_string())
    }

    /// A permanent failure with `reason`.
    pub fn permanent(reason: impl fmt::Display) -> Self {
        Self::Permanent(reason.to_string())
    }
}

/// Client errors (4xx) are permanent; everything else may pass.
impl Failure {
    /// Why it failed.
    pub fn reason(&self) -> &str {
        match self {
            Self::Permanent(reason) | Self::Transient(reason) | Self::RetryAfter { reason, .. } => {
                reason
            }
        }
    }
}

impl From<Error> for Failure {
    /// Client errors and function errors are permanent: the same input fails the
    /// same way. A throttled upstream is retried after its `Retry-After` when it
    /// gave one; anything else is transient.
    fn from(err: Error) -> Self {
        let reason = err.detail().to_owned();
        match (err.kind(), err.retry_after()) {
            (_, Some(seconds)) if err.is_retryable() => Self::RetryAfter { reason, seconds },
            (crate::ErrorKind::FunctionError | crate::ErrorKind::UpstreamRejected, _) => {
                Self::Permanent(reason)
            }
            _ if err.status().is_client_error() => Self::Permanent(reason),
            _ => Self::Transient(reason),
        }
    }
}

/// One message, decoded, as a handler sees it.
pub struct Message<T> {
    /// The decoded body.
    pub body: T,
    /// The envelope id (for a plain queue, the runtime's message id): stable
    /// across redeliveries.
    pub id: String,
    /// The envelope kind (for a plain queue, `queue:<name>`).
    pub kind: String,
    /// The delivery attempt, from the runtime (1 on first delivery).
    pub attempts: u32,
    /// The queue it came from.
    pub queue: String,
    /// The consumer's `max_attempts`.
    pub max_attempts: u32,
    env: worker::Env,
}

impl<T> Message<T> {
    /// Whether a failure now ends in the dead-letter queue.
    pub fn is_last_attempt(&self) -> bool {
        self.attempts >= self.max_attempts
    }

    /// Whether `failure` ends this message: it is permanent, or no attempt is left.
    pub fn gives_up_on(&self, failure: &Failure) -> bool {
        matches!(failure, Failure::Permanent(_)) || self.is_last_attempt()
    }

    /// The worker's bindings.
    pub fn env(&self) -> &worker::Env {
        &self.env
    }
}

/// What the DLQ holds for a message edgeway gave up on, and what is recorded in KV.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Why it was dead-lettered.
    pub reason: String,
    /// How many deliveries were attempted.
    pub attempts: u32,
    /// The queue it was consumed from.
    pub queue: String,
    /// The original message: the envelope, or the raw text when it was not one.
    pub original: serde_json::Value,
    /// When, in ms since the epoch.
    pub failed_at_ms: u64,
}

impl DeadLetter {
    /// A message from `queue` given up on now, after `attempts` deliveries.
    fn now(
        reason: impl Into<String>,
        attempts: u32,
        queue: &str,
        original: serde_json::Value,
    ) -> Self {
        Self {
            reason: reason.into(),
            attempts,
            queue: queue.to_owned(),
            original,
            failed_at_ms: crate::platform::now_ms() as u64,
        }
    }
}

/// What to do with a message after its handler ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Ack,
    Retry { delay_seconds: u32 },
    DeadLetter { reason: String },
}

/// Pure decision: success acks, permanent failures and exhausted retries go to the
/// DLQ with a reason, other failures retry after a jittered backoff.
pub(crate) fn decide(
    result: &Result<(), Failure>,
    attempts: u32,
    max_attempts: u32,
    backoff: &Backoff,
    random: u32,
) -> Action {
    match result {
        Ok(()) => Action::Ack,
        Err(Failure::Permanent(reason)) => Action::DeadLetter {
            reason: reason.clone(),
        },
        Err(Failure::Transient(reason) | Failure::RetryAfter { reason, .. })
            if attempts >= max_attempts =>
        {
            Action::DeadLetter {
                reason: format!("gave up after {attempts} attempts; last error: {reason}"),
            }
        }
        Err(Failure::Transient(_)) => Action::Retry {
            delay_seconds: backoff.delay(attempts, random),
        },
        Err(Failure::RetryAfter { seconds, .. }) => Action::Retry {
            delay_seconds: (*seconds).min(super::limits::MAX_DELAY_SECONDS),
        },
    }
}

type ErasedHandler = Rc<dyn Fn(Envelope, Delivery) -> LocalBoxFuture<'static, Result<(), Failure>>>;

/// A batch handler, type-erased: it decodes what it can of a kind's envelopes
/// (with each one's attempt count), rejects the rest, and runs once for them all.
type ErasedBatchHandler = Rc<dyn Fn(Vec<(Envelope, u32)>, String, worker::Env, u32) -> BatchRun>;

/// Runs the batch handlers on a batch and returns the messages left for the
/// per-message pipeline. Set only by [`Consumer::on_batch`], so a worker with
/// no batch handler links none of that path.
type BatchRunner = for<'a> fn(
    &'a Consumer,
    Vec<JsMessage>,
    &'a str,
    &'a worker::Env,
    &'a RefCell<HashSet<String>>,
    &'a Cell<bool>,
) -> LocalBoxFuture<'a, Vec<JsMessage>>;

/// One run of a batch handler: the envelopes whose body did not decode (by
/// id, each a permanent failure), and the run for the others.
struct BatchRun {
    rejected: Vec<(String, Failure)>,
    run: LocalBoxFuture<'static, Result<(), Failure>>,
}

/// What the runtime says about one delivery of a message.
struct Delivery {
    attempts: u32,
    max_attempts: u32,
    queue: String,
    env: worker::Env,
}

/// A queue consumer: typed handlers by message kind, ack/retry per message.
///
/// ```ignore
/// fn consumer() -> Consumer {
///     Consumer::new()
///         .on("order.created", |message: Message<Order>| async move { ship(message.body).await })
///         .max_attempts(5)
///         .backoff(Backoff { base_seconds: 2, max_seconds: 300 })
///         .concurrency(16)
///         .dead_letter_queue("DLQ", "orders-dlq")
///         .record_dead_letters("STATE")
///         .idempotent("CLAIMS", 86_400)
/// }
/// edgeway::entry!(fetch: app, queue: consumer);
/// ```
///
/// Set the queue's `max_retries` in wrangler.toml to at least `max_attempts`, so
/// edgeway (which records a reason) dead-letters before the runtime does.
pub struct Consumer {
    handlers: Vec<(String, ErasedHandler)>,
    batch_handlers: Vec<(String, ErasedBatchHandler)>,
    batch_runner: Option<BatchRunner>,
    /// Queues whose messages are plain `T`s (what a `Producer<T>` sends), each with
    /// the handler kind registered for it by [`Consumer::on_queue`].
    plain_queues: Vec<(String, String)>,
    max_attempts: u32,
    backoff: Backoff,
    concurrency: usize,
    /// Per-kind limits on handlers running at once in this isolate.
    kind_limits: Vec<(String, Rc<super::semaphore::Semaphore>)>,
    dead_letter: Option<(String, String)>,
    dead_letter_log: Option<String>,
    /// The claims namespace and how long a handled id is remembered.
    #[cfg_attr(not(feature = "objects"), allow(dead_code))]
    idempotency: Option<(String, u64)>,
    /// Where each message's attribution goes, when metered.
    #[cfg(feature = "ops")]
    ops: Option<crate::ops::Ops>,
}

/// How a message's delivery ended, for attribution (`ops::usage::Outcome`
/// holds the same, and exists only with feature `ops`); a batch handler's run
/// ended as the worst of its messages, in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Settled {
    Ack,
    /// Put back because another copy of it was running: not an error.
    Deferred,
    Retry,
    DeadLetter,
}

impl From<&Action> for Settled {
    fn from(action: &Action) -> Self {
        match action {
            Action::Ack => Self::Ack,
            Action::Retry { .. } => Self::Retry,
            Action::DeadLetter { .. } => Self::DeadLetter,
        }
    }
}

impl Default for Consumer {
    fn default() -> Self {
        Self::new()
    }
}

impl Consumer {
    /// No handlers; 5 attempts; the default [`Backoff`]; 16 messages at a time.
    pub fn new() -> Self {
        Self {
            handlers: Vec::new(),
            batch_handlers: Vec::new(),
            batch_runner: None,
            plain_queues: Vec::new(),
            max_attempts: 5,
            backoff: Backoff::default(),
            concurrency: 16,
            kind_limits: Vec::new(),
            dead_letter: None,
            dead_letter_log: None,
            idempotency: None,
            #[cfg(feature = "ops")]
            ops: None,
        }
    }

    /// Handles envelopes of `kind`, decoding their body as `T`. A body that does not
    /// decode is a permanent failure.
    pub fn on<T, F, Fut>(mut self, kind: &str, handler: F) -> Self
    where
        T: DeserializeOwned + 'static,
        F: Fn(Message<T>) -> Fut + 'static,
        Fut: Future<Output = Result<(), Failure>> + 'static,
    {
        let handler = Rc::new(handler);
        let erased: ErasedHandler = Rc::new(move |envelope: Envelope, delivery: Delivery| {
            let handler = handler.clone();
            Box::pin(async move {
                let body = envelope
                    .decode::<T>()
                    .map_err(|e| Failure::permanent(e.detail()))?;
                handler(Message {
                    body,
                    id: envelope.id,
                    kind: envelope.kind,
                    attempts: delivery.attempts,
                    queue: delivery.queue,
                    max_attempts: delivery.max_attempts,
                    env: delivery.env,
                })
                .await
            })
        });
        self.handlers.push((kind.to_owned(), erased));
        self
    }

    /// Handles the envelopes of `kind` in a batch together, for kinds that
    /// aggregate (sum clicks, write one row for many events): one call with
    /// every message of that kind the batch holds. `Ok` acks them all; a
    /// failure retries them all (with the backoff of the most attempted) or
    /// dead-letters them, as for single messages; a body that does not decode
    /// is dead-lettered alone. With [`idempotent`](Self::idempotent), ids that
    /// already ran are left out and ids another copy is running are retried.
    pub fn on_batch<T, F, Fut>(mut self, kind: &str, handler: F) -> Self
    where
        T: DeserializeOwned + 'static,
        F: Fn(Vec<Message<T>>) -> Fut + 'static,
        Fut: Future<Output = Result<(), Failure>> + 'static,
    {
        let handler = Rc::new(handler);
        let erased: ErasedBatchHandler = Rc::new(move |envelopes, queue, env, max_attempts| {
            let mut rejected = Vec::new();
            let mut messages = Vec::with_capacity(envelopes.len());
            for (envelope, attempts) in envelopes {
                match envelope.decode::<T>() {
                    Ok(body) => messages.push(Message {
                        body,
                        id: envelope.id,
                        kind: envelope.kind,
                        attempts,
                        queue: queue.clone(),
                        max_attempts,
                        env: env.clone(),
                    }),
                    Err(err) => rejected.push((envelope.id, Failure::permanent(err.detail()))),
                }
            }
            let handler = handler.clone();
            BatchRun {
                rejected,
                run: Box::pin(async move {
                    if messages.is_empty() {
                        return Ok(());
                    }
                    handler(messages).await
                }),
            }
        });
        self.batch_handlers.push((kind.to_owned(), erased));
        self.batch_runner = Some(|consumer, messages, queue, env, in_batch, cold| {
            Box::pin(consumer.run_batch_kinds(messages, queue, env, in_batch, cold))
        });
        self
    }

    /// Handles every message of queue `queue_name` as a plain `T`: the JSON a
    /// [`Producer<T>`](super::Producer) sends, without an [`Envelope`]. The message's
    /// `id` is the runtime's message id (stable across redeliveries, so
    /// [`idempotent`](Self::idempotent) works), its `kind` is `queue:<name>`, and
    /// retries, backoff and dead letters work as for envelopes. `queue_name` is
    /// the queue's name as the runtime reports it (`[[queues.consumers]] queue`),
    /// so a worker deployed under several wrangler environments with different
    /// queue names registers each of them.
    ///
    /// ```ignore
    /// edgeway::binding!(Clicks: Queue<Click> = "CLICKS");
    ///
    /// Consumer::new().on_queue("clicks", |message: Message<Click>| async move { count(message.body).await })
    /// ```
    pub fn on_queue<T, F, Fut>(mut self, queue_name: &str, handler: F) -> Self
    where
        T: DeserializeOwned + 'static,
        F: Fn(Message<T>) -> Fut + 'static,
        Fut: Future<Output = Result<(), Failure>> + 'static,
    {
        let kind = format!("queue:{queue_name}");
        self.plain_queues
            .push((queue_name.to_owned(), kind.clone()));
        self.on(&kind, handler)
    }

    /// Attributes every message to its kind (the feature) and queue (the
    /// route) through `ops` (feature `ops`): its wall time, whether it was its
    /// isolate's first invocation, whether it was acked, deferred (another
    /// copy was running), retried or dead-lettered, and the billable
    /// operations its handler made. A batch
    /// handler's run is one invocation. [`Ops::store`](crate::ops::Ops::store)'s
    /// own messages are left out.
    #[cfg(feature = "ops")]
    pub fn metered(mut self, ops: crate::ops::Ops) -> Self {
        self.ops = Some(ops);
        self
    }

    /// Deliveries before a transiently failing message is dead-lettered.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The retry schedule.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// How many messages of one batch run at once.
    pub fn concurrency(mut self, limit: usize) -> Self {
        self.concurrency = limit.max(1);
        self
    }

    /// At most `limit` handlers of `kind` run at once in this isolate, across
    /// batches (the consumer's [`concurrency`](Self::concurrency) still caps the
    /// batch). `1` runs a kind's messages one at a time, e.g. a read-modify-write
    /// on KV. Isolates do not share the limit: for one across all of them, set the
    /// queue's `max_concurrency` in wrangler.toml too.
    pub fn limit(mut self, kind: &str, limit: usize) -> Self {
        self.kind_limits
            .push((kind.to_owned(), super::semaphore::Semaphore::new(limit)));
        self
    }

    /// Where dead letters go: the producer binding of the DLQ and the DLQ's queue
    /// name (batches from that queue are dead letters to record, not to handle).
    pub fn dead_letter_queue(mut self, binding: &str, queue_name: &str) -> Self {
        self.dead_letter = Some((binding.to_owned(), queue_name.to_owned()));
        self
    }

    /// Records every dead letter that reaches the DLQ in this KV namespace, under
    /// `dead-letter:<id>`, so the reason stays visible (see [`Consumer::recorded_dead_letter`]).
    pub fn record_dead_letters(mut self, kv_binding: &str) -> Self {
        self.dead_letter_log = Some(kv_binding.to_owned());
        self
    }

    /// Runs each message id once: a copy that arrives while another runs (two
    /// batches in parallel, or the same envelope on two queues) waits and is
    /// retried, and one that arrives after is skipped, for `ttl_seconds`.
    /// `claims_binding` names a Durable Object namespace of class
    /// [`claims`](crate::object::claims) (SQLite storage), one object per id, which
    /// answers concurrent claims one after another; a KV check could not
    /// (two copies both read "not seen" before either wrote).
    #[cfg(feature = "objects")]
    pub fn idempotent(mut self, claims_binding: &str, ttl_seconds: u64) -> Self {
        self.idempotency = Some((claims_binding.to_owned(), ttl_seconds));
        self
    }

    /// The dead letter recorded for envelope `id`, if any.
    pub async fn recorded_dead_letter(kv: &Kv, id: &str) -> Result<Option<DeadLetter>, Error> {
        kv.get_json(&format!("dead-letter:{id}")).await
    }

    /// Handles one batch from the runtime: every message is acked, retried or
    /// dead-lettered individually, up to `concurrency` at a time.
    /// [`entry!`](crate::entry) calls this from the worker's `queue` export.
    pub async fn handle_batch(self: Rc<Self>, batch: JsMessageBatch, env: worker::Env) {
        let queue = batch.queue();
        let messages: Vec<JsMessage> = batch
            .messages()
            .iter()
            .map(JsCast::unchecked_into)
            .collect();
        let is_dead_letter_queue = self
            .dead_letter
            .as_ref()
            .is_some_and(|(_, name)| *name == queue);
        // Ids already taken by a message of this batch: two copies of one envelope in
        // the same batch would otherwise both pass the KV check before either records.
        let in_batch = RefCell::new(HashSet::new());
        // The batch is a cold start when it is the isolate's first invocation;
        // its first message to start carries that.
        #[cfg(feature = "ops")]
        let cold = Cell::new(self.ops.is_some() && crate::observe::take_cold_start());
        #[cfg(not(feature = "ops"))]
        let cold = Cell::new(false);
        let cold = &cold;
        let messages = match self.batch_runner {
            Some(run) if !is_dead_letter_queue => {
                run(&self, messages, &queue, &env, &in_batch, cold).await
            }
            _ => messages,
        };
        stream::iter(messages)
            .for_each_concurrent(self.concurrency, |message| {
                let this = self.clone();
                let env = env.clone();
                let queue = queue.clone();
                let in_batch = &in_batch;
                async move {
                    let work: LocalBoxFuture<'_, (String, Settled)> = if is_dead_letter_queue {
                        Box::pin(async {
                            let settled = this.record(message, &queue, &env).await;
                            (DEAD_LETTER_KIND.to_owned(), settled)
                        })
                    } else {
                        Box::pin(this.process(message, &queue, &env, in_batch))
                    };
                    this.attributed(&queue, &env, cold, work).await;
                }
            })
            .await;
    }

    /// Runs `work`, one message's (or one batch handler's) invocation, and
    /// attributes it to the kind it returns when the consumer is metered.
    async fn attributed(
        &self,
        queue: &str,
        env: &worker::Env,
        cold: &Cell<bool>,
        work: LocalBoxFuture<'_, (String, Settled)>,
    ) {
        #[cfg(feature = "ops")]
        if let Some(ops) = self.ops {
            use crate::ops::usage::{Outcome, Trigger};
            let attribution = ops.attribution(Trigger::Queue, cold.replace(false));
            let (kind, settled) = attribution.meter(work).await;
            let outcome = match settled {
                Settled::Ack => Outcome::Ack,
                Settled::Deferred => Outcome::Deferred,
                Settled::Retry => Outcome::Retry,
                Settled::DeadLetter => Outcome::DeadLetter,
            };
            attribution.finish(&kind, queue, outcome, env).await;
            return;
        }
        let _ = (queue, env, cold);
        work.await;
    }

    /// Runs the batch handlers on the messages of their kinds, and returns the
    /// other messages for the per-message pipeline.
    async fn run_batch_kinds(
        &self,
        messages: Vec<JsMessage>,
        queue: &str,
        env: &worker::Env,
        in_batch: &RefCell<HashSet<String>>,
        cold: &Cell<bool>,
    ) -> Vec<JsMessage> {
        let mut rest = Vec::new();
        let mut groups: Vec<Vec<(JsMessage, Envelope)>> =
            (0..self.batch_handlers.len()).map(|_| Vec::new()).collect();
        for message in messages {
            let found = self.decode(&message, queue).ok().and_then(|envelope| {
                self.batch_handlers
                    .iter()
                    .position(|(kind, _)| *kind == envelope.kind)
                    .map(|i| (i, envelope))
            });
            match found {
                Some((i, envelope)) => groups[i].push((message, envelope)),
                None => rest.push(message),
            }
        }
        for (i, group) in groups.into_iter().enumerate() {
            if !group.is_empty() {
                let run = self.run_group(i, group, queue, env, in_batch);
                self.attributed(queue, env, cold, Box::pin(run)).await;
            }
        }
        rest
    }

    /// One batch handler's messages: skip and hold back duplicates, run the
    /// handler once for the rest, then ack, retry or dead-letter each.
    async fn run_group(
        &self,
        handler: usize,
        group: Vec<(JsMessage, Envelope)>,
        queue: &str,
        env: &worker::Env,
        in_batch: &RefCell<HashSet<String>>,
    ) -> (String, Settled) {
        let kind = self.batch_handlers[handler].0.clone();
        let mut settled = Settled::Ack;
        let mut claimed = Vec::new();
        for (message, envelope) in group {
            let attempts = message.attempts();
            match self.seen(env, &envelope.id, &message.id(), in_batch).await {
                Err(err) => {
                    settled = settled.max(Settled::Retry);
                    retry_later(message, &self.backoff, attempts, err.detail())
                }
                Ok(Seen::Duplicate) => {
                    log_copy("duplicate delivery skipped", queue, &envelope, attempts);
                    message.ack();
                }
                Ok(Seen::Busy) => {
                    settled = settled.max(Settled::Deferred);
                    message.retry(&retry_options(self.backoff.delay_now(attempts)));
                }
                Ok(seen) => claimed.push((message, envelope, seen)),
            }
        }
        if claimed.is_empty() {
            return (kind, settled);
        }
        let inputs = claimed
            .iter()
            .map(|(message, envelope, _)| (envelope.clone(), message.attempts()))
            .collect();
        // A kind's limit (`limit(kind, n)`) holds for its batch handler too.
        let limit = self
            .kind_limits
            .iter()
            .find(|(limited, _)| *limited == kind)
            .map(|(_, semaphore)| semaphore.clone());
        let _permit = match &limit {
            Some(semaphore) => Some(semaphore.acquire().await),
            None => None,
        };
        let BatchRun { rejected, run } = (self.batch_handlers[handler].1)(
            inputs,
            queue.to_owned(),
            env.clone(),
            self.max_attempts,
        );
        let result = crate::panic::catch_panic_future(run)
            .await
            .unwrap_or_else(|panic| Err(Failure::permanent(panic)));
        // One retry delay for the group: the backoff of its most attempted message.
        let most = claimed
            .iter()
            .map(|(m, _, _)| m.attempts())
            .max()
            .unwrap_or(1);
        let mut random = [0u8; 4];
        crate::platform::fill_random(&mut random);
        let random = u32::from_le_bytes(random);
        Line::new()
            .field("msg", "batch handled")
            .field("queue", &queue)
            .field("kind", &kind)
            .field("messages", &(claimed.len() - rejected.len()))
            .field("rejected", &rejected.len())
            .field("error", &(result.as_ref().err().map(Failure::reason)))
            .write(if result.is_ok() {
                Level::Info
            } else {
                Level::Warn
            });
        for (message, envelope, seen) in claimed {
            let attempts = message.attempts();
            let own = rejected
                .iter()
                .find(|(id, _)| *id == envelope.id)
                .map(|(_, f)| Err(f.clone()));
            let action = match own {
                Some(failure) => {
                    decide(&failure, attempts, self.max_attempts, &self.backoff, random)
                }
                None => match decide(&result, most, self.max_attempts, &self.backoff, random) {
                    // Dead-letter only the messages that used up their own attempts.
                    Action::DeadLetter { .. }
                        if attempts < self.max_attempts
                            && !matches!(result, Err(Failure::Permanent(_))) =>
                    {
                        Action::Retry {
                            delay_seconds: self.backoff.delay(attempts, random),
                        }
                    }
                    other => other,
                },
            };
            settled = settled.max(Settled::from(&action));
            let original = || serde_json::to_value(&envelope).unwrap_or_default();
            self.act(action, message, seen, env, queue, &envelope.id, original)
                .await;
        }
        (kind, settled)
    }

    /// Carries out one message's decision: ends its claim (done only on an ack;
    /// a failed record only risks a duplicate later, and a release lets the
    /// retry or another copy run it), then acks, retries after the delay, or
    /// dead-letters the message with its original.
    #[allow(clippy::too_many_arguments)]
    async fn act(
        &self,
        action: Action,
        message: JsMessage,
        seen: Seen,
        env: &worker::Env,
        queue: &str,
        id: &str,
        original: impl FnOnce() -> serde_json::Value,
    ) {
        let _ = seen.finish(matches!(action, Action::Ack)).await;
        match action {
            Action::Ack => message.ack(),
            Action::Retry { delay_seconds } => message.retry(&retry_options(delay_seconds)),
            Action::DeadLetter { reason } => {
                let letter = DeadLetter::now(reason, message.attempts(), queue, original());
                self.dead_letter(message, env, id, letter).await
            }
        }
    }

    /// One message, through the pipeline: decode → skip a duplicate → dispatch →
    /// decide → ack, retry or dead-letter. Returns its kind (`-` when it did not
    /// decode) and how it ended.
    async fn process(
        &self,
        message: JsMessage,
        queue: &str,
        env: &worker::Env,
        in_batch: &RefCell<HashSet<String>>,
    ) -> (String, Settled) {
        let attempts = message.attempts();
        let envelope = match self.decode(&message, queue) {
            Ok(envelope) => envelope,
            Err((id, letter)) => {
                self.dead_letter(message, env, &id, letter).await;
                return ("-".to_owned(), Settled::DeadLetter);
            }
        };
        let seen = match self.seen(env, &envelope.id, &message.id(), in_batch).await {
            Ok(seen) => seen,
            Err(err) => {
                retry_later(message, &self.backoff, attempts, err.detail());
                return (envelope.kind, Settled::Retry);
            }
        };
        match seen {
            Seen::Duplicate => {
                log_copy("duplicate delivery skipped", queue, &envelope, attempts);
                message.ack();
                return (envelope.kind, Settled::Ack);
            }
            Seen::Busy => {
                log_copy(
                    "another copy is running; retrying later",
                    queue,
                    &envelope,
                    attempts,
                );
                message.retry(&retry_options(self.backoff.delay_now(attempts)));
                return (envelope.kind, Settled::Deferred);
            }
            Seen::Untracked | Seen::Claimed(_) => {}
        }
        let id = envelope.id.clone();
        let kind = envelope.kind.clone();
        let original = serde_json::to_value(&envelope).unwrap_or_default();
        let result = self.dispatch(envelope, attempts, queue, env).await;
        let mut random = [0u8; 4];
        crate::platform::fill_random(&mut random);
        let action = decide(
            &result,
            attempts,
            self.max_attempts,
            &self.backoff,
            u32::from_le_bytes(random),
        );
        Line::new()
            .field("msg", "message handled")
            .field("queue", &queue)
            .field("id", &id)
            .field("kind", &kind)
            .field("attempts", &attempts)
            .field("outcome", &format!("{action:?}"))
            .field("error", &(result.as_ref().err().map(Failure::reason)))
            .write(if result.is_ok() {
                Level::Info
            } else {
                Level::Warn
            });
        let settled = Settled::from(&action);
        self.act(action, message, seen, env, queue, &id, move || original)
            .await;
        (kind, settled)
    }

    /// The envelope: the message itself, or, on a plain queue
    /// ([`on_queue`](Self::on_queue)), its JSON wrapped under the queue's kind and
    /// the runtime's message id. What does not decode is a dead letter, keyed by
    /// a hash of its text.
    fn decode(&self, message: &JsMessage, queue: &str) -> Result<Envelope, (String, DeadLetter)> {
        let text = body_text(&message.body());
        let plain_kind = self
            .plain_queues
            .iter()
            .find(|(name, _)| name == queue)
            .map(|(_, kind)| kind);
        let decoded = match plain_kind {
            Some(kind) => serde_json::from_str(&text)
                .map(|body| Envelope {
                    kind: kind.clone(),
                    id: message.id(),
                    body,
                })
                .map_err(|e| format!("a message on queue {queue:?} is not JSON: {e}")),
            None => Envelope::from_json(&text).map_err(|e| e.detail().to_owned()),
        };
        decoded.map_err(|reason| {
            let original = serde_json::Value::String(text);
            let id = message_id(&original);
            (
                id,
                DeadLetter::now(reason, message.attempts(), queue, original),
            )
        })
    }

    /// Whether envelope `id` may run now (with idempotency on): a second copy
    /// in this batch, or one that ran to the end, is a duplicate; one that
    /// another copy is running is busy.
    /// `holder` is the runtime's id of the queue message: a redelivery of the
    /// message that holds a claim takes it back (its earlier run died).
    async fn seen(
        &self,
        env: &worker::Env,
        id: &str,
        holder: &str,
        in_batch: &RefCell<HashSet<String>>,
    ) -> Result<Seen, Error> {
        #[cfg(feature = "objects")]
        if let Some((binding, ttl)) = &self.idempotency {
            if !in_batch.borrow_mut().insert(id.to_owned()) {
                return Ok(Seen::Duplicate);
            }
            let (answer, held) =
                crate::object::claims::claim_message(env, binding, id, holder, *ttl).await?;
            return Ok(match answer {
                crate::object::claims::Claimed::Mine => Seen::Claimed(held),
                crate::object::claims::Claimed::Busy => Seen::Busy,
                crate::object::claims::Claimed::Done => Seen::Duplicate,
            });
        }
        let _ = (env, id, holder, in_batch);
        Ok(Seen::Untracked)
    }

    /// Runs the handler for the envelope's kind, catching a panic as a permanent
    /// failure. No handler is a permanent failure too.
    async fn dispatch(
        &self,
        envelope: Envelope,
        attempts: u32,
        queue: &str,
        env: &worker::Env,
    ) -> Result<(), Failure> {
        let limit = self
            .kind_limits
            .iter()
            .find(|(kind, _)| *kind == envelope.kind)
            .map(|(_, semaphore)| semaphore.clone());
        // Held until the handler is done.
        let _permit = match &limit {
            Some(semaphore) => Some(semaphore.acquire().await),
            None => None,
        };
        let Some(handler) = self
            .handlers
            .iter()
            .find(|(kind, _)| *kind == envelope.kind)
            .map(|(_, h)| h.clone())
        else {
            return Err(Failure::permanent(format!(
                "no handler for kind {:?}",
                envelope.kind
            )));
        };
        let delivery = Delivery {
            attempts,
            max_attempts: self.max_attempts,
            queue: queue.to_owned(),
            env: env.clone(),
        };
        crate::panic::catch_panic_future(handler(envelope, delivery))
            .await
            .unwrap_or_else(|panic| Err(Failure::permanent(panic)))
    }

    /// Sends `letter` to the DLQ and acks the message. Without a DLQ of our own,
    /// the runtime retries it and, past `max_retries`, moves it to the DLQ
    /// configured in wrangler.toml: it is never dropped here.
    async fn dead_letter(
        &self,
        message: JsMessage,
        env: &worker::Env,
        id: &str,
        letter: DeadLetter,
    ) {
        Line::new()
            .field("msg", "dead-lettered")
            .field("queue", &letter.queue)
            .field("id", &id)
            .field("reason", &letter.reason)
            .field("attempts", &letter.attempts)
            .write(Level::Error);
        let attempts = letter.attempts;
        let Some((binding, _)) = &self.dead_letter else {
            return message.retry(&retry_options(self.backoff.delay_now(attempts)));
        };
        let sent = match Producer::<Envelope>::from_env(env, binding) {
            Ok(dlq) => match Envelope::with_id(DEAD_LETTER_KIND, id, &letter) {
                Ok(envelope) => dlq.send(&envelope).await,
                Err(err) => Err(err),
            },
            Err(err) => Err(err),
        };
        match sent {
            Ok(()) => message.ack(),
            Err(err) => retry_later(message, &self.backoff, attempts, err.detail()),
        }
    }

    /// A message on the DLQ: record it in KV with its reason, then ack (or
    /// retry, when KV fails).
    async fn record(&self, message: JsMessage, queue: &str, env: &worker::Env) -> Settled {
        let text = body_text(&message.body());
        let letter = match Envelope::from_json(&text) {
            Ok(envelope) if envelope.kind == DEAD_LETTER_KIND => envelope
                .decode::<DeadLetter>()
                .map(|letter| (envelope.id.clone(), letter)),
            Ok(envelope) => Ok((
                envelope.id.clone(),
                DeadLetter::now(
                    "the runtime moved it to the DLQ after max_retries",
                    message.attempts(),
                    queue,
                    serde_json::to_value(&envelope).unwrap_or_default(),
                ),
            )),
            // A plain message (`on_queue`) the runtime gave up on: keyed by its
            // message id, as its handler saw it.
            Err(err) => match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(body) => Ok((
                    message.id(),
                    DeadLetter::now(
                        "the runtime moved it to the DLQ after max_retries",
                        message.attempts(),
                        queue,
                        body,
                    ),
                )),
                Err(_) => Err(err),
            },
        };
        let (id, letter) = match letter {
            Ok(found) => found,
            Err(err) => {
                let original = serde_json::Value::String(text);
                (
                    message_id(&original),
                    DeadLetter::now(
                        format!("undecodable message on the DLQ: {}", err.detail()),
                        message.attempts(),
                        queue,
                        original,
                    ),
                )
            }
        };
        let Some(binding) = &self.dead_letter_log else {
            Line::new()
                .field("msg", "dead letter")
                .field("id", &id)
                .field("letter", &letter)
                .write(Level::Error);
            message.ack();
            return Settled::Ack;
        };
        let stored = match Kv::from_env(env, binding) {
            Ok(kv) => {
                kv.put_json(&format!("dead-letter:{id}"), &letter, PutOptions::new())
                    .await
            }
            Err(err) => Err(err),
        };
        match stored {
            Ok(()) => {
                message.ack();
                Settled::Ack
            }
            Err(err) => {
                let attempts = message.attempts();
                retry_later(message, &self.backoff, attempts, err.detail());
                Settled::Retry
            }
        }
    }
}

/// What the idempotency check found for one envelope.
#[cfg_attr(not(feature = "objects"), allow(dead_code))]
enum Seen {
    /// Idempotency is off.
    Untracked,
    /// Ran to the end before (or is earlier in this batch): skip it.
    Duplicate,
    /// Another copy is running: retry later.
    Busy,
    /// This copy holds the claim: mark it done or release it.
    #[cfg(feature = "objects")]
    Claimed(crate::object::claims::Held),
    #[cfg(not(feature = "objects"))]
    Claimed(std::convert::Infallible),
}

impl Seen {
    /// Ends the claim: `done` when the handler succeeded (later copies are
    /// skipped), released otherwise.
    async fn finish(self, done: bool) -> Result<(), Error> {
        match self {
            #[cfg(feature = "objects")]
            Seen::Claimed(held) if done => held.done().await,
            #[cfg(feature = "objects")]
            Seen::Claimed(held) => held.release().await,
            #[cfg(not(feature = "objects"))]
            Seen::Claimed(never) => match never {},
            Seen::Untracked | Seen::Duplicate | Seen::Busy => {
                let _ = done;
                Ok(())
            }
        }
    }
}

/// The log line for a copy of a message that is not run: `msg` says why.
fn log_copy(msg: &str, queue: &str, envelope: &Envelope, attempts: u32) {
    Line::new()
        .field("msg", msg)
        .field("queue", queue)
        .field("id", &envelope.id)
        .field("kind", &envelope.kind)
        .field("attempts", &attempts)
        .write(Level::Info);
}

fn retry_later(message: JsMessage, backoff: &Backoff, attempts: u32, why: &str) {
    Line::new()
        .field("msg", "retrying after an infrastructure error")
        .field("error", &why)
        .write(Level::Warn);
    message.retry(&retry_options(backoff.delay_now(attempts)));
}

/// A stable id for a message that is not an envelope: a hash of its text.
fn message_id(original: &serde_json::Value) -> String {
    let text = original.to_string();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("raw-{hash:016x}")
}

fn retry_options(delay_seconds: u32) -> JsValue {
    let options = Object::new();
    let _ = Reflect::set(
        &options,
        &"delaySeconds".into(),
        &JsValue::from(delay_seconds),
    );
    options.into()
}

/// A message body as text: strings as they are, anything else as JSON.
fn body_text(body: &JsValue) -> String {
    match body.as_string() {
        Some(text) => text,
        None => js_sys::JSON::stringify(body)
            .ok()
            .and_then(|s| s.as_string())
            .unwrap_or_else(|| crate::platform::js_error_message(body)),
    }
}

#[wasm_bindgen]
extern "C" {
    /// The JS `MessageBatch` handed to the `queue` handler.
    pub type JsMessageBatch;
    #[wasm_bindgen(method, getter)]
    fn queue(this: &JsMessageBatch) -> String;
    #[wasm_bindgen(method, getter)]
    fn messages(this: &JsMessageBatch) -> Array;

    /// One JS `Message`, with the runtime's real `attempts` count, which
    /// workers-rs does not expose.
    pub type JsMessage;
    #[wasm_bindgen(method, getter)]
    fn body(this: &JsMessage) -> JsValue;
    #[wasm_bindgen(method, getter)]
    fn attempts(this: &JsMessage) -> u32;
    #[wasm_bindgen(method, getter)]
    fn id(this: &JsMessage) -> String;
    #[wasm_bindgen(method)]
    fn ack(this: &JsMessage);
    #[wasm_bindgen(method)]
    fn retry(this: &JsMessage, options: &JsValue);
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const B: Backoff = Backoff {
        base_seconds: 2,
        max_seconds: 60,
    };

    #[test]
    fn success_acks() {
        assert_eq!(decide(&Ok(()), 1, 5, &B, 0), Action::Ack);
    }

    #[test]
    fn transient_failures_retry_with_backoff_until_attempts_run_out() {
        let failed = Err(Failure::transient("503 from upstream"));
        assert_eq!(
            decide(&failed, 1, 3, &B, 2),
            Action::Retry { delay_seconds: 2 }
        );
        assert_eq!(
            decide(&failed, 2, 3, &B, 4),
            Action::Retry { delay_seconds: 4 }
        );
        match decide(&failed, 3, 3, &B, 0) {
            Action::DeadLetter { reason } => {
                assert!(
                    reason.contains("3 attempts") && reason.contains("503"),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let failed = Err(Failure::RetryAfter {
            reason: "429".into(),
            seconds: 30,
        });
        assert_eq!(
            decide(&failed, 1, 3, &B, 0),
            Action::Retry { delay_seconds: 30 }
        );
        let huge = Err(Failure::RetryAfter {
            reason: "429".into(),
            seconds: u32::MAX,
        });
        assert_eq!(
            decide(&huge, 1, 3, &B, 0),
            Action::Retry {
                delay_seconds: 43_200
            }
        );
        assert!(matches!(
            decide(&failed, 3, 3, &B, 0),
            Action::DeadLetter { .. }
        ));
    }

    #[test]
    fn permanent_failures_dead_letter_at_once() {
        let failed = Err(Failure::permanent("unknown customer"));
        assert_eq!(
            decide(&failed, 1, 5, &B, 0),
            Action::DeadLetter {
                reason: "unknown customer".into()
            }
        );
    }

    #[test]
    fn client_errors_are_permanent_server_errors_transient() {
        assert!(matches!(
            Failure::from(Error::bad_request("x")),
            Failure::Permanent(_)
        ));
        assert!(matches!(
            Failure::from(Error::internal("x")),
            Failure::Transient(_)
        ));
    }

    #[test]
    fn raw_message_ids_are_stable() {
        let a = message_id(&serde_json::json!("hello"));
        assert_eq!(a, message_id(&serde_json::json!("hello")));
        assert_ne!(a, message_id(&serde_json::json!("hello!")));
        assert!(a.starts_with("raw-"));
    }
}
