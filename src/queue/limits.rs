//! Cloudflare Queues limits, checked before the runtime would throw, and the
//! splitting of large batches into sends the runtime accepts.

use std::ops::Range;

use crate::error::{Error, ErrorKind};

/// The largest message Queues accepts, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 128_000;
/// The largest `sendBatch` payload, in bytes.
pub const MAX_BATCH_BYTES: usize = 256_000;
/// The most messages one `sendBatch` takes.
pub const MAX_BATCH_MESSAGES: usize = 100;
/// The longest delivery delay, in seconds (12 hours).
pub const MAX_DELAY_SECONDS: u32 = 43_200;
/// Bytes counted per message on top of its body, for the runtime's own framing
/// (content type, delay, ids). Conservative, so a planned chunk never overflows.
pub const PER_MESSAGE_OVERHEAD: usize = 256;

/// Rejects a message body over [`MAX_MESSAGE_BYTES`] with a 413.
pub fn check_message(index: Option<usize>, size: usize) -> Result<(), Error> {
    if size > MAX_MESSAGE_BYTES {
        let which = index.map_or_else(|| "the message".to_owned(), |i| format!("message {i}"));
        return Err(Error::new(
            ErrorKind::PayloadTooLarge,
            format!("{which} is {size} bytes serialized; a queue message can be at most {MAX_MESSAGE_BYTES}"),
        )
        .with_member("limit", "queue-message-size"));
    }
    Ok(())
}

/// Rejects a delay over [`MAX_DELAY_SECONDS`] with a 400.
pub fn check_delay(delay_seconds: u32) -> Result<(), Error> {
    if delay_seconds > MAX_DELAY_SECONDS {
        return Err(Error::new(
            ErrorKind::BadRequest,
            format!("delay_seconds is {delay_seconds}; Queues delay delivery by at most {MAX_DELAY_SECONDS} s (12 h)"),
        )
        .with_member("limit", "queue-delay"));
    }
    Ok(())
}

/// Splits messages of the given serialized sizes into consecutive chunks of at
/// most [`MAX_BATCH_MESSAGES`] messages and [`MAX_BATCH_BYTES`] bytes, counting
/// [`PER_MESSAGE_OVERHEAD`] per message. Every size must already pass
/// [`check_message`], so each message fits in a chunk of its own.
pub fn plan_chunks(sizes: &[usize]) -> Vec<Range<usize>> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, size) in sizes.iter().enumerate() {
        let cost = size + PER_MESSAGE_OVERHEAD;
        if i > start && (i - start == MAX_BATCH_MESSAGES || bytes + cost > MAX_BATCH_BYTES) {
            chunks.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += cost;
    }
    if start < sizes.len() {
        chunks.push(start..sizes.len());
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::StatusCode;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn check_plan(sizes: &[usize]) -> Vec<Range<usize>> {
        let chunks = plan_chunks(sizes);
        // Contiguous, complete, and each within both limits.
        let mut next = 0;
        for chunk in &chunks {
            assert_eq!(chunk.start, next);
            assert!(!chunk.is_empty());
            assert!(chunk.len() <= MAX_BATCH_MESSAGES);
            let bytes: usize = sizes[chunk.clone()]
                .iter()
                .map(|s| s + PER_MESSAGE_OVERHEAD)
                .sum();
            assert!(bytes <= MAX_BATCH_BYTES, "{bytes}");
            next = chunk.end;
        }
        assert_eq!(next, sizes.len());
        chunks
    }

    #[test]
    fn small_messages_split_by_count() {
        assert_eq!(check_plan(&[10; 250]).len(), 3);
        assert_eq!(check_plan(&[10; 100]).len(), 1);
        assert_eq!(check_plan(&[10; 101]).len(), 2);
        assert!(check_plan(&[]).is_empty());
    }

    #[test]
    fn large_messages_split_by_bytes() {
        // 100 KB messages: two fit in 256 KB, a third does not.
        let chunks = check_plan(&[100_000; 5]);
        assert_eq!(chunks, [0..2, 2..4, 4..5]);
        // The 256 KB failure fan-out users hit: 60 messages of 5 KB are 300 KB.
        assert_eq!(check_plan(&[5_000; 60]).len(), 2);
        // Mixed sizes.
        check_plan(&[127_000, 1, 127_000, 50_000, 3, 128_000, 128_000]);
    }

    #[test]
    fn single_message_and_delay_limits() {
        assert!(check_message(None, MAX_MESSAGE_BYTES).is_ok());
        let err = check_message(Some(7), MAX_MESSAGE_BYTES + 1).unwrap_err();
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(err.detail().contains("message 7"), "{}", err.detail());
        assert!(check_delay(MAX_DELAY_SECONDS).is_ok());
        assert_eq!(
            check_delay(MAX_DELAY_SECONDS + 1).unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
    }
}
