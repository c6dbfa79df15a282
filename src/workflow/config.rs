//! Step settings and the engine's limits: plain Rust, checked before a call
//! reaches the runtime, so a mistake is a clear error and not a thrown
//! exception from inside the engine.

use std::time::Duration;

use crate::error::Error;
use crate::http::StatusCode;

/// The most a step's output, an event's payload or an instance's parameters may
/// take as JSON: what Cloudflare Workflows persists per value.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// The longest step name, in bytes.
pub const MAX_STEP_NAME_BYTES: usize = 256;
/// The most steps (runs, sleeps and waits) one instance may take.
pub const MAX_STEPS: u32 = 1024;
/// The longest instance id, in bytes.
pub const MAX_INSTANCE_ID_BYTES: usize = 100;

/// How the delay between a step's attempts grows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backoff {
    /// The same delay every time.
    Constant,
    /// `delay × attempt`.
    Linear,
    /// `delay × 2^(attempt - 1)`.
    Exponential,
}

impl Backoff {
    fn as_str(self) -> &'static str {
        match self {
            Self::Constant => "constant",
            Self::Linear => "linear",
            Self::Exponential => "exponential",
        }
    }
}

/// Retries, timeout and backoff of one step; the engine applies them.
///
/// ```
/// use std::time::Duration;
/// use edgeway::workflow::{Backoff, StepConfig};
/// let charge = StepConfig::new()
///     .retries(5, Duration::from_secs(2), Backoff::Exponential)
///     .timeout(Duration::from_secs(30));
/// assert_eq!(
///     charge.to_json(),
///     r#"{"retries":{"limit":5,"delay":2000,"backoff":"exponential"},"timeout":30000}"#
/// );
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepConfig {
    retries: Option<(u32, Duration, Backoff)>,
    timeout: Option<Duration>,
}

impl StepConfig {
    /// The engine's defaults: 5 retries, 10 s apart, exponential; 10 minutes a try.
    pub fn new() -> Self {
        Self::default()
    }

    /// Retries after the first attempt fails: at most `limit`, `delay` apart,
    /// growing by `backoff`. `limit` 0 means one attempt only.
    pub fn retries(mut self, limit: u32, delay: Duration, backoff: Backoff) -> Self {
        self.retries = Some((limit, delay, backoff));
        self
    }

    /// How long one attempt may take before it counts as failed.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The attempt timeout, if set.
    pub fn attempt_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The config object `step.do` takes, as JSON (durations in ms).
    pub fn to_json(&self) -> String {
        #[derive(serde::Serialize)]
        struct Retries {
            limit: u32,
            delay: u64,
            backoff: &'static str,
        }
        #[derive(serde::Serialize)]
        struct Config {
            #[serde(skip_serializing_if = "Option::is_none")]
            retries: Option<Retries>,
            #[serde(skip_serializing_if = "Option::is_none")]
            timeout: Option<u64>,
        }
        let config = Config {
            retries: self.retries.map(|(limit, delay, backoff)| Retries {
                limit,
                delay: millis(delay),
                backoff: backoff.as_str(),
            }),
            timeout: self.timeout.map(millis),
        };
        serde_json::to_string(&config).expect("a step config serializes")
    }
}

/// A duration in whole ms, at least 1 (the engine rejects a zero timeout).
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// A step name the engine accepts: not empty, at most [`MAX_STEP_NAME_BYTES`].
pub(crate) fn check_step_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > MAX_STEP_NAME_BYTES {
        return Err(Error::bad_request(format!(
            "a step name must have 1 to {MAX_STEP_NAME_BYTES} bytes; this one has {}",
            name.len()
        ))
        .permanent());
    }
    Ok(())
}

/// A value the engine can keep: at most [`MAX_VALUE_BYTES`] of JSON. `what` names
/// it in the error ("the output of step \"charge\"").
pub(crate) fn check_value_size(json: &str, what: &str) -> Result<(), Error> {
    if json.len() > MAX_VALUE_BYTES {
        return Err(Error::with_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{what} is {} bytes of JSON; a workflow keeps at most {MAX_VALUE_BYTES}",
                json.len()
            ),
        )
        .permanent());
    }
    Ok(())
}

/// An instance id the engine accepts: 1 to [`MAX_INSTANCE_ID_BYTES`] of letters,
/// digits, `-` and `_`.
pub(crate) fn check_instance_id(id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id.len() <= MAX_INSTANCE_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(Error::bad_request(format!(
            "an instance id must be 1 to {MAX_INSTANCE_ID_BYTES} letters, digits, '-' or '_': {id:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_config_leaves_the_engine_defaults() {
        assert_eq!(StepConfig::new().to_json(), "{}");
    }

    #[test]
    fn durations_are_whole_milliseconds_and_never_zero() {
        let config = StepConfig::new()
            .retries(0, Duration::from_micros(10), Backoff::Constant)
            .timeout(Duration::from_millis(1500));
        assert_eq!(
            config.to_json(),
            r#"{"retries":{"limit":0,"delay":1,"backoff":"constant"},"timeout":1500}"#
        );
    }

    #[test]
    fn step_names_are_bounded_and_the_error_is_permanent() {
        assert!(check_step_name("charge").is_ok());
        let err = check_step_name("").unwrap_err();
        assert_eq!(err.status().as_u16(), 400);
        assert!(err.is_permanent());
        assert!(check_step_name(&"x".repeat(MAX_STEP_NAME_BYTES)).is_ok());
        assert!(check_step_name(&"x".repeat(MAX_STEP_NAME_BYTES + 1)).is_err());
    }

    #[test]
    fn values_over_a_mebibyte_are_refused_with_413() {
        assert!(check_value_size(&"1".repeat(MAX_VALUE_BYTES), "x").is_ok());
        let err = check_value_size(&"1".repeat(MAX_VALUE_BYTES + 1), "the output").unwrap_err();
        assert_eq!(err.status().as_u16(), 413);
        assert!(err.detail().starts_with("the output is 1048577 bytes"));
    }

    #[test]
    fn instance_ids_are_checked() {
        assert!(check_instance_id("order-42_a").is_ok());
        for bad in ["", "a/b", "a b", &"x".repeat(MAX_INSTANCE_ID_BYTES + 1)] {
            assert_eq!(
                check_instance_id(bad).unwrap_err().status().as_u16(),
                400,
                "{bad:?}"
            );
        }
    }
}
