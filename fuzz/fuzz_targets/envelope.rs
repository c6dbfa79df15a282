//! Queue envelope decoding: any text decodes to an envelope or a clean error, and
//! an envelope that decodes re-encodes to text that decodes to the same envelope.
#![no_main]

use edgeway::queue::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(envelope) = Envelope::from_json(text) {
        let again = Envelope::from_json(&envelope.to_json()).expect("a re-encoded envelope decodes");
        assert_eq!(again.id, envelope.id);
        assert_eq!(again.kind, envelope.kind);
        assert_eq!(again.body, envelope.body);
    }
});
