//! The pure part of alerts: rules, what a rule observes in stored usage, and
//! whether a run fires, resolves or leaves an incident alone.

use serde::{Deserialize, Serialize};

use super::usage::{Entry, Stats};

/// What a rule watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// The 99th percentile of cold invocations' wall time, ms.
    ColdStartP99Ms,
    /// Errors (5xx, retries, dead letters, failures) over invocations.
    ErrorRate,
}

impl Metric {
    fn as_str(self) -> &'static str {
        match self {
            Self::ColdStartP99Ms => "cold_start_p99_ms",
            Self::ErrorRate => "error_rate",
        }
    }
}

/// An alert rule: `metric` over the last `window_minutes` of the matching
/// usage, breached above `threshold`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Its name, 1–64 of `a-z 0-9 . _ -`: what incidents are kept by.
    pub name: String,
    /// What it watches.
    pub metric: Metric,
    /// Only this feature's usage; every feature when absent.
    #[serde(default)]
    pub feature: Option<String>,
    /// Only this route's usage; every route when absent.
    #[serde(default)]
    pub route: Option<String>,
    /// Breached above this (ms for a latency, a fraction for a rate).
    pub threshold: f64,
    /// How far back it looks, 1 to 1440 minutes (default 5).
    #[serde(default = "default_window")]
    pub window_minutes: u32,
    /// Fewer matching invocations (cold ones, for a cold-start rule) than
    /// this in the window is no signal, and no breach (default 1).
    #[serde(default = "default_min_invocations")]
    pub min_invocations: u64,
}

fn default_window() -> u32 {
    5
}

fn default_min_invocations() -> u64 {
    1
}

/// Parses and checks a rule list. Every problem is reported, each naming the
/// rule by index and the field: an unknown field, a negative threshold, a
/// window out of range, a name used twice.
pub fn parse_rules(json: &str) -> Result<Vec<Rule>, Vec<String>> {
    let values: Vec<serde_json::Value> = serde_json::from_str(json)
        .map_err(|e| vec![format!("the rules are not a JSON list: {e}")])?;
    let mut rules: Vec<Rule> = Vec::new();
    let mut problems = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        match serde_json::from_value::<Rule>(value) {
            Ok(rule) => {
                problems.extend(
                    rule.problems()
                        .into_iter()
                        .map(|p| format!("rules[{i}]: {p}")),
                );
                if rules.iter().any(|r| r.name == rule.name) {
                    problems.push(format!("rules[{i}].name: {:?} is used twice", rule.name));
                }
                rules.push(rule);
            }
            Err(e) => problems.push(format!("rules[{i}]: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(problems)
    }
}

/// What a rule saw in its window.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Observation {
    /// The metric's value; `None` with too little usage to tell.
    pub value: Option<f64>,
    /// The invocations it is over (cold ones, for a cold-start rule).
    pub invocations: u64,
}

impl Rule {
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let name_ok = (1..=64).contains(&self.name.len())
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        if !name_ok {
            problems.push(format!(
                "name: {:?} is not 1-64 of a-z, 0-9, `.`, `_`, `-`",
                self.name
            ));
        }
        if !(self.threshold.is_finite() && self.threshold >= 0.0) {
            problems.push(format!(
                "threshold: {} is not a number of zero or more",
                self.threshold
            ));
        }
        if self.metric == Metric::ErrorRate && self.threshold > 1.0 {
            problems.push(format!(
                "threshold: an error rate is a fraction from 0 to 1, not {}",
                self.threshold
            ));
        }
        if !(1..=1440).contains(&self.window_minutes) {
            problems.push(format!(
                "window_minutes: {} is not 1 to 1440",
                self.window_minutes
            ));
        }
        problems
    }

    /// Whether `entry` is usage this rule watches.
    fn matches(&self, entry: &Entry) -> bool {
        self.feature
            .as_deref()
            .is_none_or(|f| f == entry.key.feature)
            && self.route.as_deref().is_none_or(|r| r == entry.key.route)
    }

    /// The metric over `entries` (the window's stored usage).
    pub fn observe<'a>(&self, entries: impl IntoIterator<Item = &'a Entry>) -> Observation {
        let mut total = Stats::default();
        for entry in entries.into_iter().filter(|e| self.matches(e)) {
            total.merge(&entry.stats);
        }
        let (value, invocations) = match self.metric {
            Metric::ColdStartP99Ms => (total.cold_wall.quantile(0.99), total.cold_starts),
            Metric::ErrorRate => (
                (total.invocations > 0).then(|| total.errors as f64 / total.invocations as f64),
                total.invocations,
            ),
        };
        Observation {
            value: value.filter(|_| invocations >= self.min_invocations),
            invocations,
        }
    }

    /// Whether `observation` breaches the rule.
    pub fn breached(&self, observation: &Observation) -> bool {
        observation
            .value
            .is_some_and(|value| value > self.threshold)
    }

    /// The event type, attributes and data an alert about this rule carries.
    pub fn alert(&self, fired: bool, incident: &str, observation: &Observation) -> Alert {
        Alert {
            event_type: if fired { FIRED } else { RESOLVED },
            rule: self.clone(),
            metric: self.metric.as_str(),
            incident: incident.to_owned(),
            observation: *observation,
        }
    }
}

/// The event type of a breach.
pub const FIRED: &str = "ops.alert.fired";
/// The event type of a breach that has cleared.
pub const RESOLVED: &str = "ops.alert.resolved";

/// An alert to publish: fired once per incident, resolved once.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alert {
    /// `ops.alert.fired` or `ops.alert.resolved`.
    #[serde(rename = "type")]
    pub event_type: &'static str,
    /// The rule.
    pub rule: Rule,
    /// The rule's metric, by name (for filters).
    pub metric: &'static str,
    /// The incident both events of one breach share.
    pub incident: String,
    /// What the rule saw when it fired or resolved.
    pub observation: Observation,
}

/// What a run does about one rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// A new breach: open an incident and fire.
    Fire,
    /// The open incident's breach has cleared: close it and resolve.
    Resolve,
    /// Nothing changed (still breached, or still fine).
    Stay,
}

/// The transition for a rule that is `breached` now, with an incident open
/// or not.
pub fn transition(breached: bool, open: bool) -> Transition {
    match (breached, open) {
        (true, false) => Transition::Fire,
        (false, true) => Transition::Resolve,
        _ => Transition::Stay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::usage::{Invocation, Operations, Outcome, Tally, Trigger};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn rules_parse_with_defaults_and_every_problem_is_named() {
        let rules = parse_rules(
            r#"[{"name": "kv-cold", "metric": "cold_start_p99_ms", "feature": "kv", "threshold": 250}]"#,
        )
        .unwrap();
        assert_eq!(rules[0].window_minutes, 5);
        assert_eq!(rules[0].min_invocations, 1);
        let problems = parse_rules(
            r#"[{"name": "a", "metric": "error_rate", "threshold": -0.1},
                {"name": "b", "metric": "error_rate", "threshold": 0.1},
                {"name": "a", "metric": "error_rate", "threshold": 2, "window_minutes": 0}]"#,
        )
        .unwrap_err();
        let all = problems.join("\n");
        assert!(all.contains("rules[0]: threshold: -0.1"), "{all}");
        assert!(all.contains("rules[2]: threshold: an error rate"), "{all}");
        assert!(all.contains("rules[2]: window_minutes: 0"), "{all}");
        assert!(all.contains("rules[2].name: \"a\" is used twice"), "{all}");
        // A structural error names the rule, and the field.
        let unknown = parse_rules(
            r#"[{"name": "b", "metric": "error_rate", "threshold": 0.1},
                {"name": "c", "metric": "error_rate", "threshold": 0.1, "windw": 5}]"#,
        )
        .unwrap_err()
        .join("");
        assert!(
            unknown.contains("rules[1]") && unknown.contains("windw"),
            "{unknown}"
        );
        let metric = parse_rules(r#"[{"name": "c", "metric": "p50", "threshold": 1}]"#)
            .unwrap_err()
            .join("");
        assert!(
            metric.contains("rules[0]") && metric.contains("p50"),
            "{metric}"
        );
        assert!(parse_rules("{}").is_err());
    }

    fn entries() -> Vec<Entry> {
        let mut tally = Tally::default();
        let mut record = |feature: &'static str, ms: f64, cold: bool, status: u16| {
            tally.record(
                &Invocation {
                    trigger: Trigger::Fetch,
                    feature,
                    route: "/r",
                    wall_ms: ms,
                    cold,
                    outcome: Outcome::Status(status),
                    bytes_in: 0,
                    bytes_out: 0,
                    operations: Operations::default(),
                },
                0.0,
            )
        };
        record("kv", 400.0, true, 200);
        for _ in 0..9 {
            record("kv", 2.0, false, 200);
        }
        record("jobs", 1.0, false, 500);
        record("jobs", 1.0, false, 200);
        tally.take("i", 1.0).unwrap().entries
    }

    #[test]
    fn rules_observe_their_feature_and_fire_only_above_the_threshold() {
        let rule = |json: &str| parse_rules(&format!("[{json}]")).unwrap().remove(0);
        let cold = rule(
            r#"{"name": "c", "metric": "cold_start_p99_ms", "feature": "kv", "threshold": 300}"#,
        );
        let seen = cold.observe(&entries());
        assert_eq!(seen.invocations, 1);
        assert!(seen.value.unwrap() >= 400.0);
        assert!(cold.breached(&seen));
        let higher = Rule {
            threshold: 1000.0,
            ..cold.clone()
        };
        assert!(!higher.breached(&higher.observe(&entries())));
        // Two cold invocations needed, one seen: no signal, no breach.
        let quieter = Rule {
            min_invocations: 2,
            ..cold.clone()
        };
        assert_eq!(quieter.observe(&entries()).value, None);
        let errors =
            rule(r#"{"name": "e", "metric": "error_rate", "feature": "jobs", "threshold": 0.4}"#);
        let seen = errors.observe(&entries());
        assert_eq!((seen.value, seen.invocations), (Some(0.5), 2));
        assert!(errors.breached(&seen));
        let everywhere = rule(r#"{"name": "e", "metric": "error_rate", "threshold": 0.4}"#);
        assert!(!everywhere.breached(&everywhere.observe(&entries())));
        let alert = errors.alert(true, "inc-1", &seen);
        assert_eq!(alert.event_type, FIRED);
        assert_eq!(alert.metric, "error_rate");
    }

    #[test]
    fn an_incident_fires_once_and_resolves_once() {
        assert_eq!(transition(true, false), Transition::Fire);
        assert_eq!(transition(true, true), Transition::Stay);
        assert_eq!(transition(false, true), Transition::Resolve);
        assert_eq!(transition(false, false), Transition::Stay);
    }
}
