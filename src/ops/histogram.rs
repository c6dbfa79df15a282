//! A latency histogram that merges: fixed log-scale buckets, so per-isolate
//! histograms add up to the histogram of all their samples, and P50, P95 and
//! P99 come out of the sum within one bucket of the truth.
//!
//! Buckets are 8 to every doubling from 10 µs (each at most 12.5 % wide), up
//! to about 5.6 minutes; slower samples share the last bucket. The index is
//! read off the float's bits, so recording is a few integer operations.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The number of buckets.
pub const BUCKETS: usize = 200;
/// The lower bound of the first bucket, in ms.
const FLOOR_MS: f64 = 0.01;
/// Buckets per doubling (a power of two: the sub-bucket is mantissa bits).
const PER_DOUBLING: usize = 8;
const SUB_BITS: u32 = PER_DOUBLING.trailing_zeros();

/// Counts of durations in fixed log-scale buckets.
#[derive(Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: Box::new([0; BUCKETS]),
            total: 0,
        }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .field("buckets", &self.nonzero().collect::<Vec<_>>())
            .finish()
    }
}

/// The bucket a duration in ms falls into.
pub fn bucket_of(ms: f64) -> usize {
    let scaled = ms / FLOOR_MS;
    // Below the floor, NaN and negatives: the first bucket.
    if scaled.is_nan() || scaled < 1.0 {
        return 0;
    }
    let bits = scaled.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as usize - 1023;
    let sub = ((bits >> (52 - SUB_BITS)) & (PER_DOUBLING as u64 - 1)) as usize;
    (exponent * PER_DOUBLING + sub).min(BUCKETS - 1)
}

/// The bounds `[lower, upper)` of bucket `index`, in ms.
pub fn bounds(index: usize) -> (f64, f64) {
    let doubling = (index / PER_DOUBLING) as i32;
    let sub = (index % PER_DOUBLING) as f64;
    let base = FLOOR_MS * 2f64.powi(doubling);
    let step = base / PER_DOUBLING as f64;
    (base + sub * step, base + (sub + 1.0) * step)
}

impl Histogram {
    /// Counts one duration, in ms.
    pub fn record(&mut self, ms: f64) {
        self.counts[bucket_of(ms)] += 1;
        self.total += 1;
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.total += other.total;
    }

    /// How many durations it holds.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `q` quantile (0 to 1), as the upper bound of the bucket it falls
    /// in: within one bucket of the true value and not below it, unless that
    /// is past the last bucket (about 5.6 minutes). `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        Some(bounds(self.quantile_bucket(q)?).1)
    }

    /// The bucket holding the `q` quantile: the sample of rank ⌈q·n⌉.
    pub fn quantile_bucket(&self, q: f64) -> Option<usize> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        self.counts.iter().position(|&n| {
            seen += n;
            seen >= rank
        })
    }

    /// The nonzero buckets, by index.
    pub fn nonzero(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(i, &n)| (i, n))
    }
}

/// Stored as its nonzero buckets, `[[index, count], …]`.
impl Serialize for Histogram {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.nonzero())
    }
}

impl<'de> Deserialize<'de> for Histogram {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pairs = Vec::<(usize, u64)>::deserialize(d)?;
        let mut histogram = Histogram::default();
        for (index, count) in pairs {
            if index >= BUCKETS {
                return Err(serde::de::Error::custom(format!(
                    "histogram bucket {index} is beyond the last, {}",
                    BUCKETS - 1
                )));
            }
            histogram.counts[index] += count;
            histogram.total += count;
        }
        Ok(histogram)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// A small deterministic generator (xorshift), so the test needs no crate.
    struct Random(u64);
    impl Random {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
        /// Log-uniform from 0.05 ms to 20 s: the spread of real latencies.
        fn latency(&mut self) -> f64 {
            0.05 * (20_000.0f64 / 0.05).powf(self.next())
        }
    }

    #[test]
    fn buckets_tile_the_range_without_gaps() {
        for i in 0..BUCKETS - 1 {
            let (lower, upper) = bounds(i);
            assert!(lower < upper);
            assert!((upper - bounds(i + 1).0).abs() < 1e-9 * upper, "{i}");
            assert_eq!(bucket_of(lower), i, "lower bound of {i}");
            assert_eq!(
                bucket_of(upper * (1.0 - 1e-12)),
                i,
                "just under the upper bound of {i}"
            );
            assert!(upper / lower <= 1.125 + 1e-12);
        }
        assert_eq!(bucket_of(0.0), 0);
        assert_eq!(bucket_of(-3.0), 0);
        assert_eq!(bucket_of(f64::NAN), 0);
        assert_eq!(bucket_of(1e12), BUCKETS - 1);
    }

    #[test]
    fn merged_quantiles_are_within_one_bucket_of_the_sorted_truth() {
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        for round in 0..20 {
            // Samples spread over several isolates' histograms, then merged.
            let isolates = 1 + round % 5;
            let mut parts = vec![Histogram::default(); isolates];
            let mut all = Vec::new();
            for i in 0..(50 + round * 97) {
                let ms = random.latency();
                parts[i % isolates].record(ms);
                all.push(ms);
            }
            let mut merged = Histogram::default();
            for part in &parts {
                merged.merge(part);
            }
            assert_eq!(merged.count(), all.len() as u64);
            all.sort_by(f64::total_cmp);
            for q in [0.5, 0.9, 0.95, 0.99, 1.0] {
                let rank = ((q * all.len() as f64).ceil() as usize).max(1);
                let truth = all[rank - 1];
                let bucket = merged.quantile_bucket(q).unwrap();
                let (lower, upper) = bounds(bucket);
                assert!(
                    (lower..upper).contains(&truth),
                    "round {round} q{q}: {truth} is not in [{lower}, {upper})"
                );
                assert_eq!(merged.quantile(q), Some(upper));
            }
        }
        assert_eq!(Histogram::default().quantile(0.99), None);
    }

    #[test]
    fn it_round_trips_as_its_nonzero_buckets() {
        let mut histogram = Histogram::default();
        for ms in [0.2, 0.2, 3.0, 1500.0] {
            histogram.record(ms);
        }
        let json = serde_json::to_string(&histogram).unwrap();
        assert_eq!(json.matches('[').count(), 4, "{json}");
        let back: Histogram = serde_json::from_str(&json).unwrap();
        assert_eq!(back, histogram);
        assert!(serde_json::from_str::<Histogram>("[[200, 1]]").is_err());
    }
}
