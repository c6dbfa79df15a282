//! # edgeway-protocol
//!
//! What edgeway shares with code outside the edge, with no Workers runtime in it:
//! Standard Webhooks signing ([`webhook`]), the job messages a function on AWS
//! Lambda is invoked with and reports back ([`jobs`]), and the cost model that
//! compares a workload on Workers, Lambda and containers ([`cost`]), which the
//! `edgeway cost` command runs on a traffic profile. A Lambda function written
//! in Rust depends on this crate alone. edgeway re-exports `webhook` as
//! `edgeway::webhook`, and `JobInvocation` and `JobOutcome` from `edgeway::jobs`.

pub mod cost;
pub mod jobs;
pub mod webhook;

use std::borrow::Cow;
use std::fmt;

/// What went wrong with a secret, a signature or a job message.
///
/// It is deliberately not a `std::error::Error`: edgeway turns any of those into
/// a 500 with `?`, and this one must convert by kind instead (a bad secret is a
/// 400, a signature that does not verify a 401), with `edgeway::Error::from_protocol`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    detail: Cow<'static, str>,
}

/// The kind of an [`Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A webhook secret is not `whsec_` and base64 of at least 16 bytes.
    InvalidSecret,
    /// A signed message does not verify: no matching signature, or a timestamp
    /// outside the tolerance.
    Unauthorized,
    /// A job invocation lacks what a function needs.
    InvalidInvocation,
    /// A price, an assumption or a usage figure is unknown, negative or not a
    /// number.
    InvalidConfiguration,
}

impl Error {
    fn new(kind: ErrorKind, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Why, in a sentence.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}
