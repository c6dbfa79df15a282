//! AWS from the edge (feature `aws`): SigV4 signing and a Lambda Invoke client, on
//! `hmac` and `sha2`, with no AWS SDK in the wasm.
//!
//! Signing is pure and tested natively and on wasm32 against the official suite;
//! `lambda` holds the pure request/response rules and a thin `fetch` adapter.

pub mod lambda;
pub mod sigv4;
#[cfg(test)]
mod sigv4_suite;
