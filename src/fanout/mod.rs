//! Fan-out (feature `fanout`): one published event becomes independent, retried,
//! logged deliveries to every matching subscriber. Signing, the SSRF guard, filter
//! policies and the model are pure and tested natively and on wasm32; `publisher`
//! is the KV and Queues side, and `topics` the Durable Object class that keeps
//! each topic's subscriptions.
//!
//! A worker declares where its fan-out lives once, as a [`FanoutConfig`], opens it
//! in the handlers that publish or manage subscriptions, and registers
//! [`Consumer::fanout`](crate::queue::Consumer::fanout) to deliver; the
//! [`FanoutConfig`] page has the whole worker.

mod config;
mod filter;
mod model;
mod publisher;
mod ssrf;
mod topics;

pub use config::FanoutConfig;
pub use filter::{Condition, Conditions, Filter};
pub use model::{
    declared_subscriptions, DeliveryRecord, DeliveryState, DeliveryTask, Event, NewEvent,
    NewSubscription, Status, Subscription, SubscriptionView, Target, WebhookOutcome,
    MAX_EVENT_BYTES,
};
pub use publisher::{Fanout, DELIVERY_KIND, WEBHOOK_TIMEOUT_MS};
pub use ssrf::SsrfPolicy;
pub use topics::topics;
