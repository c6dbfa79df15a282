//! Filter-policy parsing and evaluation: the input is split into a policy and an
//! event (type and attributes); parsing either succeeds or fails cleanly, and a
//! parsed policy evaluates any event without panicking, deterministically.
#![no_main]

use edgeway::fanout::Filter;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (policy, event) = text.split_once('\n').unwrap_or((text, "{}"));
    let Ok(policy) = serde_json::from_str::<serde_json::Value>(policy) else { return };
    let Ok(filter) = Filter::from_json(&policy) else { return };
    let (event_type, attributes) = event.split_once('\t').unwrap_or(("order.created", event));
    let attributes = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(attributes)
        .unwrap_or_default();
    let first = filter.matches(event_type, &attributes);
    assert_eq!(first, filter.matches(event_type, &attributes));
});
