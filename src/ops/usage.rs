//! The pure part of attribution: what one invocation cost, the per-isolate
//! tally of them by feature, route and trigger, the report an isolate flushes,
//! and the summaries and cost input built from stored reports.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::histogram::Histogram;

/// What started an invocation: the `Ops` layer meters requests; a
/// [metered](crate::queue::Consumer::metered) consumer, cron and workflow the
/// others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// An HTTP request.
    Fetch,
    /// A queue message.
    Queue,
    /// A cron schedule.
    Cron,
    /// A workflow step.
    Workflow,
}

impl Trigger {
    /// Its name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fetch => "fetch",
            Self::Queue => "queue",
            Self::Cron => "cron",
            Self::Workflow => "workflow",
        }
    }

    /// The trigger named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "fetch" => Self::Fetch,
            "queue" => Self::Queue,
            "cron" => Self::Cron,
            "workflow" => Self::Workflow,
            _ => return None,
        })
    }
}

/// The billable operations an invocation made through edgeway's bindings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Operations {
    /// KV reads (one per key read, found or not).
    pub kv_reads: u64,
    /// KV writes.
    pub kv_writes: u64,
    /// KV deletes.
    pub kv_deletes: u64,
    /// KV list calls.
    pub kv_lists: u64,
    /// Queue operations: each 64 KB of a message sent, read and deleted is
    /// one, all three counted when it is sent.
    pub queue_operations: u64,
    /// Outbound `fetch` calls (webhooks, Lambda, the legacy origin, JWKS).
    pub subrequests: u64,
    /// Lambda invocations.
    pub lambda_invocations: u64,
}

impl Operations {
    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &Operations) {
        self.kv_reads += other.kv_reads;
        self.kv_writes += other.kv_writes;
        self.kv_deletes += other.kv_deletes;
        self.kv_lists += other.kv_lists;
        self.queue_operations += other.queue_operations;
        self.subrequests += other.subrequests;
        self.lambda_invocations += other.lambda_invocations;
    }
}

/// How an invocation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP status.
    Status(u16),
    /// A queue message acknowledged.
    Ack,
    /// A queue message put back because another copy of it was running.
    Deferred,
    /// A queue message retried.
    Retry,
    /// A queue message dead-lettered.
    DeadLetter,
    /// A cron run or workflow step that failed.
    Failed,
    /// A cron run or workflow step that succeeded.
    Succeeded,
}

impl Outcome {
    /// A cron run's or step attempt's outcome: succeeded or failed.
    pub(crate) fn of<T, E>(result: &Result<T, E>) -> Self {
        if result.is_ok() {
            Self::Succeeded
        } else {
            Self::Failed
        }
    }

    /// Whether it counts as an error: a 5xx, a retry, a dead letter or a
    /// failure. A 4xx is the client's error, counted apart.
    fn is_error(self) -> bool {
        match self {
            Self::Status(status) => status >= 500,
            Self::Retry | Self::DeadLetter | Self::Failed => true,
            Self::Ack | Self::Deferred | Self::Succeeded => false,
        }
    }
}

/// One invocation, as metered.
#[derive(Clone, Debug)]
pub struct Invocation<'a> {
    /// What started it.
    pub trigger: Trigger,
    /// The route's tag (or the consumer's kind, the workflow's name).
    pub feature: &'a str,
    /// The route's pattern (or the queue, the schedule, the step).
    pub route: &'a str,
    /// Its wall time, ms.
    pub wall_ms: f64,
    /// Whether it was its isolate's first.
    pub cold: bool,
    /// How it ended.
    pub outcome: Outcome,
    /// Bytes received (the request's `content-length`).
    pub bytes_in: u64,
    /// Bytes sent, when known.
    pub bytes_out: u64,
    /// Its billable operations.
    pub operations: Operations,
}

/// What usage is summed by.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Key {
    /// What started the invocations.
    pub trigger: Trigger,
    /// Their feature tag (`-` when untagged).
    pub feature: String,
    /// Their route (`-` when none matched).
    pub route: String,
}

/// Usage of one key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// Invocations.
    pub invocations: u64,
    /// Of those, errors (5xx, retries, dead letters, failures).
    pub errors: u64,
    /// Of those, client errors (4xx).
    pub client_errors: u64,
    /// Of those, the first of their isolate.
    pub cold_starts: u64,
    /// Wall time of every invocation.
    pub wall: Histogram,
    /// Wall time of the cold ones.
    pub cold_wall: Histogram,
    /// Wall time summed, ms (what Lambda would bill).
    pub wall_ms_total: f64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Billable operations.
    pub operations: Operations,
}

impl Stats {
    /// Counts one invocation.
    pub fn record(&mut self, invocation: &Invocation<'_>) {
        self.invocations += 1;
        if invocation.outcome.is_error() {
            self.errors += 1;
        }
        if matches!(invocation.outcome, Outcome::Status(400..=499)) {
            self.client_errors += 1;
        }
        self.wall.record(invocation.wall_ms);
        self.wall_ms_total += invocation.wall_ms;
        if invocation.cold {
            self.cold_starts += 1;
            self.cold_wall.record(invocation.wall_ms);
        }
        self.bytes_in += invocation.bytes_in;
        self.bytes_out += invocation.bytes_out;
        self.operations.merge(&invocation.operations);
    }

    /// Adds `other` to these.
    pub fn merge(&mut self, other: &Stats) {
        self.invocations += other.invocations;
        self.errors += other.errors;
        self.client_errors += other.client_errors;
        self.cold_starts += other.cold_starts;
        self.wall.merge(&other.wall);
        self.cold_wall.merge(&other.cold_wall);
        self.wall_ms_total += other.wall_ms_total;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.operations.merge(&other.operations);
    }
}

/// An isolate's usage since it last flushed.
#[derive(Debug, Default)]
pub struct Tally {
    entries: BTreeMap<Key, Stats>,
    since_ms: Option<f64>,
}

impl Tally {
    /// Counts `invocation`, which ended at `now_ms`.
    pub fn record(&mut self, invocation: &Invocation<'_>, now_ms: f64) {
        self.since_ms.get_or_insert(now_ms - invocation.wall_ms);
        // Looked up by borrowed parts first: the key is allocated once per
        // isolate and key, not per invocation.
        let found = self.entries.iter_mut().find(|(key, _)| {
            key.trigger == invocation.trigger
                && key.feature == invocation.feature
                && key.route == invocation.route
        });
        match found {
            Some((_, stats)) => stats.record(invocation),
            None => {
                let mut stats = Stats::default();
                stats.record(invocation);
                self.entries.insert(
                    Key {
                        trigger: invocation.trigger,
                        feature: invocation.feature.to_owned(),
                        route: invocation.route.to_owned(),
                    },
                    stats,
                );
            }
        }
    }

    /// Everything counted so far, as a report from `isolate`, and starts over.
    /// `None` when nothing was counted.
    pub fn take(&mut self, isolate: &str, now_ms: f64) -> Option<Report> {
        let since_ms = self.since_ms.take()?;
        let entries = std::mem::take(&mut self.entries)
            .into_iter()
            .map(|(key, stats)| Entry { key, stats })
            .collect();
        Some(Report {
            id: crate::platform::new_id(),
            isolate: isolate.to_owned(),
            from_ms: since_ms as u64,
            to_ms: now_ms as u64,
            entries,
        })
    }
}

/// One key's usage in a report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// What it is the usage of.
    #[serde(flatten)]
    pub key: Key,
    /// The usage.
    pub stats: Stats,
}

/// What an isolate flushes: its usage over `[from_ms, to_ms]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Unique, so a redelivered report is stored once.
    pub id: String,
    /// The isolate that counted it.
    pub isolate: String,
    /// When its first invocation started, ms since the epoch.
    pub from_ms: u64,
    /// When it was flushed.
    pub to_ms: u64,
    /// Usage by key.
    pub entries: Vec<Entry>,
}

impl Report {
    /// The report in parts whose JSON is at most about `max_bytes` each (an
    /// entry larger than that goes alone), ids `<id>.0`, `<id>.1`, …: queue
    /// messages have a size limit, and a busy isolate has many keys.
    pub fn into_parts(self, max_bytes: usize) -> Vec<Report> {
        // Room for the report's own fields around the entries.
        let budget = max_bytes.saturating_sub(256);
        let mut parts: Vec<Vec<Entry>> = vec![Vec::new()];
        let mut size = 0;
        for entry in self.entries {
            let len = serde_json::to_vec(&entry).map_or(0, |json| json.len()) + 1;
            let current = parts.last_mut().expect("one part at least");
            if !current.is_empty() && size + len > budget {
                parts.push(Vec::new());
                size = 0;
            }
            parts.last_mut().expect("one part at least").push(entry);
            size += len;
        }
        parts
            .into_iter()
            .enumerate()
            .map(|(n, entries)| Report {
                id: format!("{}.{n}", self.id),
                isolate: self.isolate.clone(),
                from_ms: self.from_ms,
                to_ms: self.to_ms,
                entries,
            })
            .collect()
    }
}

/// What usage summaries are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// The feature tag.
    Feature,
    /// The route (with its feature).
    Route,
}

impl GroupBy {
    /// `feature` or `route`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "feature" => Some(Self::Feature),
            "route" => Some(Self::Route),
            _ => None,
        }
    }
}

/// One group's usage over a period, as the usage API answers it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// The feature tag.
    pub feature: String,
    /// The route, when grouped by route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// By trigger: `fetch`, `queue`, `cron`, `workflow`.
    pub invocations_by_trigger: BTreeMap<&'static str, u64>,
    /// Invocations by minute, `[minute start (ms since the epoch), count]`,
    /// oldest first: each report counts in the minute it was flushed.
    pub per_minute: Vec<(u64, u64)>,
    /// Invocations.
    pub invocations: u64,
    /// Errors over invocations.
    pub error_rate: f64,
    /// Client errors (4xx) over invocations.
    pub client_error_rate: f64,
    /// Wall-time quantiles, ms (the upper bound of the bucket).
    pub wall_ms: Quantiles,
    /// Cold starts.
    pub cold_starts: u64,
    /// Cold starts over invocations.
    pub cold_start_rate: f64,
    /// Wall-time quantiles of the cold invocations.
    pub cold_wall_ms: Quantiles,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Billable operations.
    pub operations: Operations,
}

/// P50, P95 and P99; `None` with no samples.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Quantiles {
    /// The median.
    pub p50: Option<f64>,
    /// The 95th percentile.
    pub p95: Option<f64>,
    /// The 99th percentile.
    pub p99: Option<f64>,
}

impl Quantiles {
    /// The quantiles of `histogram`.
    pub fn of(histogram: &Histogram) -> Self {
        Self {
            p50: histogram.quantile(0.50),
            p95: histogram.quantile(0.95),
            p99: histogram.quantile(0.99),
        }
    }
}

/// A group's usage as it is summed: its stats, invocations by trigger, and
/// invocations by the minute they were flushed in.
#[derive(Default)]
struct Group {
    stats: Stats,
    triggers: BTreeMap<&'static str, u64>,
    minutes: BTreeMap<u64, u64>,
}

/// Sums `entries`, each with when it was flushed (ms), into one summary per
/// group, busiest first.
pub fn summarize<'a>(
    entries: impl IntoIterator<Item = (u64, &'a Entry)>,
    by: GroupBy,
) -> Vec<Summary> {
    let mut groups: BTreeMap<(String, Option<String>), Group> = BTreeMap::new();
    for (flushed_ms, entry) in entries {
        let route = match by {
            GroupBy::Feature => None,
            GroupBy::Route => Some(entry.key.route.clone()),
        };
        let group = groups
            .entry((entry.key.feature.clone(), route))
            .or_default();
        group.stats.merge(&entry.stats);
        *group
            .triggers
            .entry(entry.key.trigger.as_str())
            .or_default() += entry.stats.invocations;
        *group
            .minutes
            .entry(flushed_ms / 60_000 * 60_000)
            .or_default() += entry.stats.invocations;
    }
    let rate = |part: u64, whole: u64| {
        if whole == 0 {
            0.0
        } else {
            part as f64 / whole as f64
        }
    };
    let mut summaries: Vec<Summary> = groups
        .into_iter()
        .map(
            |(
                (feature, route),
                Group {
                    stats,
                    triggers,
                    minutes,
                },
            )| Summary {
                feature,
                route,
                invocations_by_trigger: triggers,
                per_minute: minutes.into_iter().collect(),
                invocations: stats.invocations,
                error_rate: rate(stats.errors, stats.invocations),
                client_error_rate: rate(stats.client_errors, stats.invocations),
                wall_ms: Quantiles::of(&stats.wall),
                cold_starts: stats.cold_starts,
                cold_start_rate: rate(stats.cold_starts, stats.invocations),
                cold_wall_ms: Quantiles::of(&stats.cold_wall),
                bytes_in: stats.bytes_in,
                bytes_out: stats.bytes_out,
                operations: stats.operations,
            },
        )
        .collect();
    summaries.sort_by_key(|summary| std::cmp::Reverse(summary.invocations));
    summaries
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn invocation<'a>(feature: &'a str, route: &'a str, ms: f64) -> Invocation<'a> {
        Invocation {
            trigger: Trigger::Fetch,
            feature,
            route,
            wall_ms: ms,
            cold: false,
            outcome: Outcome::Status(200),
            bytes_in: 10,
            bytes_out: 100,
            operations: Operations {
                kv_reads: 1,
                ..Operations::default()
            },
        }
    }

    #[test]
    fn a_tally_counts_by_key_and_starts_over_when_taken() {
        let mut tally = Tally::default();
        assert!(tally.take("i", 0.0).is_none());
        tally.record(&invocation("kv", "/v1/kv/{*key}", 2.0), 1000.0);
        tally.record(
            &Invocation {
                cold: true,
                outcome: Outcome::Status(503),
                ..invocation("kv", "/v1/kv/{*key}", 40.0)
            },
            1100.0,
        );
        tally.record(
            &Invocation {
                outcome: Outcome::Status(404),
                ..invocation("kv", "/v1/kv", 1.0)
            },
            1200.0,
        );
        tally.record(
            &Invocation {
                trigger: Trigger::Queue,
                outcome: Outcome::Retry,
                ..invocation("fanout", "events", 5.0)
            },
            1300.0,
        );
        let report = tally.take("isolate-1", 2000.0).unwrap();
        assert_eq!(report.from_ms, 998);
        assert_eq!(report.to_ms, 2000);
        assert_eq!(report.entries.len(), 3);
        let one = report
            .entries
            .iter()
            .find(|e| e.key.route == "/v1/kv/{*key}")
            .unwrap();
        assert_eq!(one.stats.invocations, 2);
        assert_eq!(one.stats.errors, 1);
        assert_eq!(one.stats.cold_starts, 1);
        assert_eq!(one.stats.cold_wall.count(), 1);
        assert_eq!(one.stats.operations.kv_reads, 2);
        assert_eq!(one.stats.bytes_out, 200);
        assert!(tally.take("isolate-1", 3000.0).is_none());
    }

    #[test]
    fn summaries_merge_isolates_by_feature_or_route() {
        let mut a = Tally::default();
        let mut b = Tally::default();
        for i in 0..90 {
            a.record(
                &invocation("kv", "/v1/kv/{*key}", 1.0 + f64::from(i % 3)),
                0.0,
            );
        }
        for _ in 0..10 {
            b.record(
                &Invocation {
                    cold: true,
                    outcome: Outcome::Status(500),
                    ..invocation("kv", "/v1/kv/{*key}", 300.0)
                },
                0.0,
            );
        }
        b.record(&invocation("kv", "/v1/kv", 1.0), 0.0);
        b.record(&invocation("fanout", "/v1/topics/{topic}/events", 1.0), 0.0);
        let reports = [a.take("a", 1.0).unwrap(), b.take("b", 1.0).unwrap()];
        // Isolate a flushed in minute 1, b in minute 2.
        let entries: Vec<(u64, &Entry)> = reports
            .iter()
            .enumerate()
            .flat_map(|(i, r)| {
                r.entries
                    .iter()
                    .map(move |e| (60_000 * (i as u64 + 1) + 7, e))
            })
            .collect();

        let by_feature = summarize(entries.iter().copied(), GroupBy::Feature);
        assert_eq!(by_feature.len(), 2);
        let kv = &by_feature[0];
        assert_eq!((kv.feature.as_str(), kv.route.as_deref()), ("kv", None));
        assert_eq!(kv.invocations, 101);
        assert_eq!(kv.invocations_by_trigger["fetch"], 101);
        assert_eq!(kv.cold_starts, 10);
        assert!((kv.error_rate - 10.0 / 101.0).abs() < 1e-12);
        // 10 of 101 took 300 ms: the P95 is among them, the median is not.
        assert!(kv.wall_ms.p50.unwrap() < 5.0);
        assert!(kv.wall_ms.p95.unwrap() >= 300.0);
        assert!(kv.cold_wall_ms.p99.unwrap() >= 300.0);
        assert_eq!(kv.operations.kv_reads, 101);
        assert_eq!(kv.per_minute, [(60_000, 90), (120_000, 11)]);

        let by_route = summarize(entries.iter().copied(), GroupBy::Route);
        assert_eq!(by_route.len(), 3);
        assert_eq!(by_route[0].route.as_deref(), Some("/v1/kv/{*key}"));
        assert_eq!(by_route[0].invocations, 100);
    }

    #[test]
    fn a_big_report_goes_out_in_parts_under_the_message_limit() {
        let mut tally = Tally::default();
        // 300 routes, each with latencies spread over many buckets.
        for route in 0..300 {
            let route = format!("/r/{route}");
            for i in 0..60 {
                tally.record(&invocation("kv", &route, 0.02 * 1.3f64.powi(i)), 0.0);
            }
        }
        let report = tally.take("i", 1.0).unwrap();
        let whole = serde_json::to_vec(&report).unwrap().len();
        assert!(whole > 200 * 1024, "{whole}");
        let parts = report.clone().into_parts(100 * 1024);
        assert!(parts.len() >= 3);
        for (n, part) in parts.iter().enumerate() {
            assert_eq!(part.id, format!("{}.{n}", report.id));
            assert!(serde_json::to_vec(part).unwrap().len() <= 100 * 1024);
        }
        let entries: usize = parts.iter().map(|p| p.entries.len()).sum();
        assert_eq!(entries, 300);
        // A small report is one part.
        let mut small = Tally::default();
        small.record(&invocation("kv", "/kv", 1.0), 0.0);
        assert_eq!(
            small.take("i", 1.0).unwrap().into_parts(100 * 1024).len(),
            1
        );
    }

    #[test]
    fn a_report_round_trips_through_json() {
        let mut tally = Tally::default();
        tally.record(&invocation("kv", "/v1/kv", 3.0), 10.0);
        let report = tally.take("i", 20.0).unwrap();
        let text = serde_json::to_string(&report).unwrap();
        let back: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report);
    }
}
