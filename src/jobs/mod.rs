//! Jobs (feature `jobs`): heavy work leaves the edge. A job is stored in KV,
//! queued, invoked on AWS Lambda asynchronously, and reported back through a signed
//! callback.
//!
//! The types here are shared with the Lambda side (`examples/lambda-jobs`), so the
//! envelope and the outcome are one Rust type on both ends. Signing is pure:
//! - **Callbacks** are Standard Webhooks messages (`webhook-id` = the job id),
//!   signed with a per-job secret derived from the worker's `JOBS_SIGNING_KEY`, so
//!   the edge stores no per-job secret and a secret leaked from one job signs no
//!   other. The edge verifies them with a timestamp tolerance.
//! - **Input URLs** let the function fetch an input too large for a Lambda
//!   payload: `?expires=<unix>&signature=<hex HMAC>`, short-lived and bound to
//!   the job.

mod model;
mod pipeline;

pub use edgeway_protocol::jobs::{JobInvocation, JobOutcome};
pub use model::{check_kind, JobRecord, JobStatus, JobTask, JobWaiter};
pub use pipeline::{Jobs, CALLBACK_TOLERANCE_SECONDS, INVOKE_KIND};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::error::{Error, ErrorKind};
use crate::webhook::WebhookSecret;

type HmacSha256 = Hmac<Sha256>;

/// How long a signed input URL stays valid, in seconds.
pub const INPUT_URL_TTL_SECONDS: u64 = 15 * 60;

/// The worker's master key for job signing (the `JOBS_SIGNING_KEY` secret).
/// `Debug` redacts it.
#[derive(Clone)]
pub struct JobKeys {
    key: Vec<u8>,
}

impl std::fmt::Debug for JobKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JobKeys(<redacted>)")
    }
}

impl JobKeys {
    /// A master key; at least 32 bytes of secret text.
    pub fn new(key: &str) -> Result<Self, Error> {
        if key.len() < 32 {
            return Err(Error::internal(
                "JOBS_SIGNING_KEY must hold at least 32 characters of secret",
            ));
        }
        Ok(Self {
            key: key.as_bytes().to_vec(),
        })
    }

    fn mac(&self, parts: &[&[u8]]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC accepts any key length");
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                mac.update(b"\n");
            }
            mac.update(part);
        }
        mac
    }

    /// The Standard Webhooks secret that signs job `id`'s callback.
    pub fn callback_secret(&self, id: &str) -> String {
        use base64::Engine;
        let derived = self
            .mac(&[b"callback", id.as_bytes()])
            .finalize()
            .into_bytes();
        format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(derived)
        )
    }

    /// Verifies a callback for job `id`: the Standard Webhooks headers, the
    /// timestamp within `tolerance_seconds` of `now`, and `webhook-id` naming this
    /// job. Every failure is a 401 problem.
    #[allow(clippy::too_many_arguments)]
    pub fn verify_callback(
        &self,
        id: &str,
        webhook_id: Option<&str>,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: u64,
        tolerance_seconds: u64,
    ) -> Result<(), Error> {
        let (Some(webhook_id), Some(timestamp), Some(signature)) =
            (webhook_id, timestamp, signature)
        else {
            return Err(Error::new(
                ErrorKind::Unauthorized,
                "a job callback must carry webhook-id, webhook-timestamp and webhook-signature",
            ));
        };
        if webhook_id != id {
            return Err(Error::new(
                ErrorKind::Unauthorized,
                "webhook-id does not name this job",
            ));
        }
        let secret =
            WebhookSecret::parse(&self.callback_secret(id)).map_err(Error::from_protocol)?;
        crate::webhook::verify(
            &[secret],
            id,
            timestamp,
            signature,
            body,
            now,
            tolerance_seconds,
        )
        .map_err(Error::from_protocol)
    }

    /// The query string (`expires=…&signature=…`) that lets its holder fetch job
    /// `id`'s input until `expires` (Unix seconds).
    pub fn sign_input(&self, id: &str, expires: u64) -> String {
        let tag = self
            .mac(&[b"input", id.as_bytes(), expires.to_string().as_bytes()])
            .finalize()
            .into_bytes();
        format!("expires={expires}&signature={}", hex::encode(tag))
    }

    /// Checks an input URL's `expires` and `signature` at `now`, comparing the
    /// signature in constant time. Failures are 401 problems.
    pub fn verify_input(
        &self,
        id: &str,
        expires: u64,
        signature: &str,
        now: u64,
    ) -> Result<(), Error> {
        if now > expires {
            return Err(Error::new(
                ErrorKind::Unauthorized,
                "this input URL has expired",
            ));
        }
        let tag = hex::decode(signature).map_err(|_| {
            Error::new(
                ErrorKind::Unauthorized,
                "the input URL's signature is not hex",
            )
        })?;
        self.mac(&[b"input", id.as_bytes(), expires.to_string().as_bytes()])
            .verify_slice(&tag)
            .map_err(|_| {
                Error::new(
                    ErrorKind::Unauthorized,
                    "the input URL's signature does not match",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn keys() -> JobKeys {
        JobKeys::new("test-master-key-test-master-key-0").unwrap()
    }

    #[test]
    fn short_master_keys_are_refused() {
        assert!(JobKeys::new("short").is_err());
        assert!(!format!("{:?}", keys()).contains("master"));
    }

    #[test]
    fn each_job_has_its_own_callback_secret() {
        let k = keys();
        assert_ne!(k.callback_secret("a"), k.callback_secret("b"));
        assert_eq!(k.callback_secret("a"), k.callback_secret("a"));
        assert!(WebhookSecret::parse(&k.callback_secret("a")).is_ok());
    }

    #[test]
    fn callbacks_verify_and_forgeries_replays_and_swaps_do_not() {
        let k = keys();
        let body = br#"{"status":"done","output":{"words":2}}"#;
        let secret = WebhookSecret::parse(&k.callback_secret("job1")).unwrap();
        let signature = secret.sign("job1", 1000, body);
        let check = |id: &str, wid: &str, ts: &str, sig: &str, now: u64| {
            k.verify_callback(id, Some(wid), Some(ts), Some(sig), body, now, 300)
        };
        assert!(check("job1", "job1", "1000", &signature, 1100).is_ok());
        // A replay after the tolerance window.
        let late = check("job1", "job1", "1000", &signature, 1400).unwrap_err();
        assert_eq!(late.kind(), ErrorKind::Unauthorized);
        // A signature for one job does not complete another.
        assert!(check("job2", "job1", "1000", &signature, 1000).is_err());
        assert!(check("job2", "job2", "1000", &signature, 1000).is_err());
        // A forged signature.
        let forged = WebhookSecret::parse(&WebhookSecret::generate())
            .unwrap()
            .sign("job1", 1000, body);
        assert!(check("job1", "job1", "1000", &forged, 1000).is_err());
        // Missing headers.
        let missing = k
            .verify_callback(
                "job1",
                None,
                Some("1000"),
                Some(&signature),
                body,
                1000,
                300,
            )
            .unwrap_err();
        assert_eq!(missing.status().as_u16(), 401);
    }

    #[test]
    fn input_urls_expire_and_are_bound_to_the_job() {
        let k = keys();
        let query = k.sign_input("job1", 2000);
        let signature = query.split("signature=").nth(1).unwrap();
        assert!(k.verify_input("job1", 2000, signature, 1999).is_ok());
        assert!(k.verify_input("job1", 2000, signature, 2001).is_err());
        assert!(k.verify_input("job2", 2000, signature, 1999).is_err());
        assert!(k.verify_input("job1", 2001, signature, 1999).is_err());
        assert!(k.verify_input("job1", 2000, "zz", 1999).is_err());
    }
}
