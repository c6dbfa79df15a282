//! Exponential backoff with full jitter, for queue retries.

/// `delay = random(0 ..= min(max, base · 2^(attempt-1)))` seconds.
///
/// Full jitter spreads retries of a failed batch over the whole window, so a
/// recovering downstream is not hit by all of them at once. The caller supplies the
/// random number, which keeps this pure (and testable on every target).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The cap of the first retry's window, in seconds.
    pub base_seconds: u32,
    /// The largest window, in seconds.
    pub max_seconds: u32,
}

impl Default for Backoff {
    /// 2 s, doubling up to 5 minutes.
    fn default() -> Self {
        Self {
            base_seconds: 2,
            max_seconds: 300,
        }
    }
}

impl Backoff {
    /// The window's upper bound after `attempt` failed attempts (1-based).
    pub fn window(&self, attempt: u32) -> u32 {
        let doublings = attempt.saturating_sub(1).min(31);
        self.base_seconds
            .saturating_mul(1u32 << doublings)
            .min(self.max_seconds)
    }

    /// The delay before the next attempt, given `attempt` failed attempts and a
    /// uniformly random `random`.
    pub fn delay(&self, attempt: u32, random: u32) -> u32 {
        let window = self.window(attempt);
        if window == 0 {
            return 0;
        }
        random % (window + 1)
    }

    /// [`delay`](Self::delay) with randomness from the platform.
    pub fn delay_now(&self, attempt: u32) -> u32 {
        let mut bytes = [0u8; 4];
        crate::platform::fill_random(&mut bytes);
        self.delay(attempt, u32::from_le_bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn windows_double_then_cap() {
        let b = Backoff {
            base_seconds: 2,
            max_seconds: 60,
        };
        let windows: Vec<u32> = (1..=7).map(|a| b.window(a)).collect();
        assert_eq!(windows, [2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(b.window(0), 2);
        assert_eq!(b.window(u32::MAX), 60);
    }

    #[test]
    fn delays_stay_inside_the_window_and_cover_it() {
        let b = Backoff {
            base_seconds: 1,
            max_seconds: 300,
        };
        for attempt in 1..12 {
            let window = b.window(attempt);
            for random in [0, 1, 7, 1_000, u32::MAX] {
                assert!(b.delay(attempt, random) <= window);
            }
            assert_eq!(b.delay(attempt, window), window);
            assert_eq!(b.delay(attempt, 0), 0);
        }
        assert!(b.delay_now(3) <= 4);
        assert_eq!(
            Backoff {
                base_seconds: 0,
                max_seconds: 0
            }
            .delay(5, 9),
            0
        );
    }
}
