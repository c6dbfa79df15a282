//! What the pure core cannot compute itself: the clock, randomness, and the
//! Worker's settings.
//!
//! `SystemTime::now()` panics on wasm32-unknown-unknown, so the clock comes from JS
//! `Date.now()` there. Randomness comes from `getrandom` (Web Crypto on wasm).

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    }
}

/// Fills `buf` with cryptographically secure random bytes.
///
/// # Panics
/// When the platform has no randomness source, which Workers and every supported
/// native target do.
pub fn fill_random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the platform's secure random source failed");
}

/// `N` random bytes as lowercase hex.
pub fn random_hex<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    fill_random(&mut bytes);
    let mut out = String::with_capacity(N * 2);
    for byte in bytes {
        out.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
    }
    out
}

/// A fresh UUIDv7: sortable by creation time (millisecond timestamp first), with
/// 74 random bits from `getrandom`.
pub fn new_id() -> String {
    let mut random = [0u8; 10];
    fill_random(&mut random);
    uuid::Builder::from_unix_timestamp_millis(now_ms() as u64, &random)
        .into_uuid()
        .to_string()
}

/// The size of the wasm linear memory, in bytes: its high-water mark, since linear
/// memory only grows. `None` natively.
pub fn wasm_memory_bytes() -> Option<usize> {
    #[cfg(target_arch = "wasm32")]
    {
        Some(core::arch::wasm32::memory_size(0) * 65536)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        None
    }
}

/// The message of a JS error value (an `Error`'s `message`, a thrown string), or
/// its debug form.
#[cfg(feature = "bindings")]
pub(crate) fn js_error_message(err: &wasm_bindgen::JsValue) -> String {
    use wasm_bindgen::JsCast;
    err.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| err.as_string())
        .unwrap_or_else(|| format!("{err:?}"))
}

/// A Worker setting: a `[vars]` entry or a secret (`wrangler secret put`), which
/// the runtime exposes alike. Unset and blank values are `None`.
#[cfg(feature = "bindings")]
pub fn setting(env: &worker::Env, name: &str) -> Option<String> {
    env.var(name)
        .ok()
        .map(|value| value.to_string())
        .filter(|value| !value.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn clock_works_on_every_target() {
        // 2020-01-01 in ms: a clock that panics or returns 0 fails here, natively and on wasm32.
        assert!(now_ms() > 1_577_836_800_000.0);
    }

    #[test]
    fn ids_are_v7_uuids() {
        let id = new_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "7");
        assert_ne!(id, new_id());
    }

    #[test]
    fn random_hex_is_hex_and_varies() {
        let a = random_hex::<16>();
        let b = random_hex::<16>();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
