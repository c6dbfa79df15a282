//! Fan-out building blocks (feature `fanout`): Standard Webhooks signing, the SSRF
//! guard for subscriber URLs, and subscription filter policies. All pure, tested
//! natively and on wasm32.

pub mod filter;
pub mod ssrf;
pub mod webhook;

pub use filter::Filter;
pub use ssrf::SsrfPolicy;
pub use webhook::WebhookSecret;
