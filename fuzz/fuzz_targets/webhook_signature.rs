//! Standard Webhooks signature parsing: arbitrary `webhook-timestamp` and
//! `webhook-signature` headers never verify unless they are the real signature,
//! and never panic. The real signature of the same message always verifies.
#![no_main]

use edgeway::webhook::{verify, WebhookSecret};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(3, '\n');
    let timestamp = parts.next().unwrap_or("");
    let signature = parts.next().unwrap_or("");
    let body = parts.next().unwrap_or("").as_bytes();
    let secret = WebhookSecret::parse(SECRET).unwrap();
    let now = 1_700_000_000;
    let real = secret.sign("msg_1", now, body);
    let result = verify(std::slice::from_ref(&secret), "msg_1", timestamp, signature, body, now, 300);
    if result.is_ok() {
        assert!(signature.split(' ').any(|s| s == real), "accepted {signature:?}");
    }
    assert!(verify(std::slice::from_ref(&secret), "msg_1", &now.to_string(), &real, body, now, 300).is_ok());
    // Any secret text parses or fails cleanly.
    let _ = WebhookSecret::parse(signature);
});
