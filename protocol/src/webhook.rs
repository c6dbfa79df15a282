//! Standard Webhooks v1 signing and verification: edgeway's fan-out deliveries
//! and job callbacks are both signed this way.
//!
//! A delivery carries `webhook-id` (stable across retries), `webhook-timestamp`
//! (Unix seconds) and `webhook-signature`: space-separated `v1,<base64 HMAC-SHA256
//! of "{id}.{timestamp}.{body}">`, one per active secret, so a receiver keeps
//! verifying while secrets rotate. Secrets are `whsec_<base64 key>`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::{Error, ErrorKind};

type HmacSha256 = Hmac<Sha256>;

/// How far a `webhook-timestamp` may be from now, in seconds (the spec's default).
pub const DEFAULT_TOLERANCE_SECONDS: u64 = 5 * 60;

/// A signing secret. Its `Debug` never prints the key.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

impl WebhookSecret {
    /// Parses `whsec_<base64>`. A secret without the prefix is taken as base64 too.
    pub fn parse(secret: &str) -> Result<Self, Error> {
        let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
        let key = STANDARD.decode(encoded).map_err(|_| {
            Error::new(
                ErrorKind::InvalidSecret,
                "a webhook secret must be `whsec_` followed by base64",
            )
        })?;
        if key.len() < 16 {
            return Err(Error::new(
                ErrorKind::InvalidSecret,
                "a webhook secret must hold at least 16 bytes of key",
            ));
        }
        Ok(Self { key })
    }

    /// A fresh 32-byte secret, as `whsec_<base64>`.
    pub fn generate() -> String {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the platform's secure random source failed");
        format!("whsec_{}", STANDARD.encode(key))
    }

    /// The `v1,<signature>` for one message.
    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        format!(
            "v1,{}",
            STANDARD.encode(self.mac(id, timestamp, body).finalize().into_bytes())
        )
    }

    fn mac(&self, id: &str, timestamp: u64, body: &[u8]) -> HmacSha256 {
        // HMAC takes keys of any length; this cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC accepts any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// Whether `signature` (one `v1,<base64>` entry) signs this message, compared
    /// in constant time.
    fn verifies(&self, id: &str, timestamp: u64, body: &[u8], signature: &str) -> bool {
        let Some(encoded) = signature.strip_prefix("v1,") else {
            return false;
        };
        let Ok(expected) = STANDARD.decode(encoded) else {
            return false;
        };
        self.mac(id, timestamp, body)
            .verify_slice(&expected)
            .is_ok()
    }
}

/// The three Standard Webhooks headers for a delivery, signed with every secret.
pub fn signature_headers(
    secrets: &[WebhookSecret],
    id: &str,
    timestamp: u64,
    body: &[u8],
) -> [(&'static str, String); 3] {
    let signatures: Vec<String> = secrets
        .iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect();
    [
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signatures.join(" ")),
    ]
}

/// Verifies a delivery: the timestamp is within `tolerance_seconds` of `now`, and
/// at least one listed `v1` signature matches one of `secrets`. Failures are
/// [`ErrorKind::Unauthorized`] and say which check failed, never what the right
/// signature was.
pub fn verify(
    secrets: &[WebhookSecret],
    id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now_seconds: u64,
    tolerance_seconds: u64,
) -> Result<(), Error> {
    let unauthorized = |detail: &'static str| Error::new(ErrorKind::Unauthorized, detail);
    let timestamp: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| unauthorized("webhook-timestamp is not a Unix time in seconds"))?;
    if timestamp.abs_diff(now_seconds) > tolerance_seconds {
        return Err(unauthorized(
            "webhook-timestamp is outside the allowed tolerance (replayed or clock skew)",
        ));
    }
    let matched = signature_header
        .split(' ')
        .filter(|s| !s.is_empty())
        .any(|signature| {
            secrets
                .iter()
                .any(|secret| secret.verifies(id, timestamp, body, signature))
        });
    if matched {
        Ok(())
    } else {
        Err(unauthorized("no webhook-signature matches a known secret"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The published Standard Webhooks test vector.
    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TIMESTAMP: u64 = 1649367553;
    const BODY: &str = r#"{"email":"test@example.com","username":"test_user"}"#;
    const EXPECTED: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    #[test]
    fn signs_the_spec_vector() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        assert_eq!(secret.sign(ID, TIMESTAMP, BODY.as_bytes()), EXPECTED);
    }

    #[test]
    fn verifies_within_tolerance_and_rejects_replays_and_forgeries() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let ok = |ts: &str, sig: &str, body: &str, now: u64| {
            verify(
                std::slice::from_ref(&secret),
                ID,
                ts,
                sig,
                body.as_bytes(),
                now,
                DEFAULT_TOLERANCE_SECONDS,
            )
        };
        let ts = TIMESTAMP.to_string();
        assert!(ok(&ts, EXPECTED, BODY, TIMESTAMP + 10).is_ok());
        // Several signatures (key rotation): one match is enough.
        assert!(ok(&ts, &format!("v1,AAAA {EXPECTED}"), BODY, TIMESTAMP).is_ok());
        let replay = ok(&ts, EXPECTED, BODY, TIMESTAMP + 301).unwrap_err();
        assert_eq!(replay.kind(), ErrorKind::Unauthorized);
        assert!(replay.detail().contains("tolerance"));
        assert!(ok(&ts, EXPECTED, "{\"email\":\"x\"}", TIMESTAMP).is_err());
        assert!(ok(
            &ts,
            "v2,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            BODY,
            TIMESTAMP
        )
        .is_err());
        assert!(ok(&ts, "v1,not base64!", BODY, TIMESTAMP).is_err());
        assert!(ok("yesterday", EXPECTED, BODY, TIMESTAMP).is_err());
        let other = WebhookSecret::parse(&WebhookSecret::generate()).unwrap();
        assert!(verify(&[other], ID, &ts, EXPECTED, BODY.as_bytes(), TIMESTAMP, 300).is_err());
    }

    #[test]
    fn headers_carry_one_signature_per_secret() {
        let a = WebhookSecret::parse(SECRET).unwrap();
        let b = WebhookSecret::parse(&WebhookSecret::generate()).unwrap();
        let [id, ts, sig] = signature_headers(&[a, b], ID, TIMESTAMP, BODY.as_bytes());
        assert_eq!(id, ("webhook-id", ID.to_owned()));
        assert_eq!(ts, ("webhook-timestamp", TIMESTAMP.to_string()));
        let parts: Vec<&str> = sig.1.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], EXPECTED);
    }

    #[test]
    fn secrets_parse_strictly_and_never_print() {
        assert!(WebhookSecret::parse("whsec_!!!").is_err());
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_err());
        let generated = WebhookSecret::generate();
        assert!(generated.starts_with("whsec_"));
        let secret = WebhookSecret::parse(&generated).unwrap();
        assert!(!format!("{secret:?}").contains(&generated[6..]));
    }
}
