//! Fan-out (feature `fanout`): one published event becomes independent, retried,
//! logged deliveries to every matching subscriber. Signing, the SSRF guard, filter
//! policies and the model are pure and tested natively and on wasm32; `publisher`
//! is the KV and Queues side.
//!
//! A worker declares where its fan-out lives once, as a [`FanoutConfig`], opens it
//! in the handlers that publish or manage subscriptions, and registers
//! [`Consumer::fanout`](crate::queue::Consumer::fanout) to deliver; the
//! [`FanoutConfig`] page has the whole worker.

mod config;
pub mod filter;
pub mod model;
pub mod publisher;
pub mod ssrf;
/// Standard Webhooks signing, shared with job callbacks.
pub use crate::webhook;

pub use config::FanoutConfig;
pub use filter::Filter;
pub use model::{Event, NewEvent, NewSubscription, Subscription, Target};
pub use publisher::{Fanout, DELIVERY_KIND};
pub use ssrf::SsrfPolicy;
pub use webhook::WebhookSecret;
