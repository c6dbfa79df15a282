//! Subscription filter policies: a documented subset of SNS filter policies.
//!
//! ```json
//! {
//!   "type": ["order.created", {"prefix": "invoice."}],
//!   "attributes": {
//!     "region": ["eu", "us"],
//!     "tier": "gold",
//!     "vip": {"exists": true},
//!     "country": {"prefix": "DE"}
//!   }
//! }
//! ```
//!
//! Every key must match (AND); within a key, any listed condition may match (OR).
//! A condition is an exact string, `{"prefix": "..."}`, or `{"exists": bool}`
//! (attributes only). An absent `type` or `attributes` matches everything. Numbers
//! and booleans in attributes compare by their JSON text.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};

/// One condition on a string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Condition {
    /// Equal to this value.
    Exact(String),
    /// Starts with this value.
    Prefix {
        /// The prefix.
        prefix: String,
    },
    /// Present (`true`) or absent (`false`).
    Exists {
        /// Whether the attribute must be present.
        exists: bool,
    },
}

/// One condition or a list of them (any of).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Conditions {
    /// A single condition.
    One(Condition),
    /// Any of these.
    AnyOf(Vec<Condition>),
}

impl Conditions {
    fn list(&self) -> &[Condition] {
        match self {
            Self::One(condition) => std::slice::from_ref(condition),
            Self::AnyOf(list) => list,
        }
    }

    fn matches(&self, value: Option<&str>) -> bool {
        self.list()
            .iter()
            .any(|condition| match (condition, value) {
                (Condition::Exact(expected), Some(value)) => expected == value,
                (Condition::Prefix { prefix }, Some(value)) => value.starts_with(prefix.as_str()),
                (Condition::Exists { exists }, value) => *exists == value.is_some(),
                (_, None) => false,
            })
    }
}

/// A subscription's filter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Conditions on the event type.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<Conditions>,
    /// Conditions on attributes, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Conditions>,
}

impl Filter {
    /// Parses and validates a filter policy.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, Error> {
        let filter: Self = serde_json::from_value(value.clone())
            .map_err(|e| Error::new(ErrorKind::JsonShape, format!("invalid filter policy: {e}")))?;
        let empty_list = filter
            .event_type
            .iter()
            .chain(filter.attributes.values())
            .any(|c| c.list().is_empty());
        if empty_list {
            return Err(Error::new(
                ErrorKind::JsonShape,
                "invalid filter policy: an empty list matches nothing",
            ));
        }
        if filter.event_type.as_ref().is_some_and(|c| {
            c.list()
                .iter()
                .any(|c| matches!(c, Condition::Exists { .. }))
        }) {
            return Err(Error::new(
                ErrorKind::JsonShape,
                "invalid filter policy: `exists` applies to attributes, not to `type`",
            ));
        }
        Ok(filter)
    }

    /// Whether an event of `event_type` with `attributes` passes.
    pub fn matches(
        &self,
        event_type: &str,
        attributes: &serde_json::Map<String, serde_json::Value>,
    ) -> bool {
        if let Some(conditions) = &self.event_type {
            if !conditions.matches(Some(event_type)) {
                return false;
            }
        }
        self.attributes.iter().all(|(name, conditions)| {
            let value = attributes.get(name).map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            conditions.matches(value.as_deref())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn attrs(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn empty_filter_matches_everything() {
        let filter = Filter::from_json(&json!({})).unwrap();
        assert!(filter.matches("anything", &attrs(json!({}))));
    }

    #[test]
    fn type_exact_prefix_and_any_of() {
        let filter =
            Filter::from_json(&json!({"type": ["order.created", {"prefix": "invoice."}]})).unwrap();
        assert!(filter.matches("order.created", &attrs(json!({}))));
        assert!(filter.matches("invoice.paid", &attrs(json!({}))));
        assert!(!filter.matches("order.cancelled", &attrs(json!({}))));
        let single = Filter::from_json(&json!({"type": {"prefix": "order."}})).unwrap();
        assert!(single.matches("order.cancelled", &attrs(json!({}))));
        assert!(!single.matches("orders", &attrs(json!({}))));
    }

    #[test]
    fn attributes_are_and_across_keys_or_within() {
        let filter = Filter::from_json(&json!({
            "attributes": {"region": ["eu", "us"], "tier": "gold", "vip": {"exists": true}, "beta": {"exists": false}}
        }))
        .unwrap();
        assert!(filter.matches(
            "x",
            &attrs(json!({"region": "eu", "tier": "gold", "vip": 1}))
        ));
        assert!(!filter.matches(
            "x",
            &attrs(json!({"region": "apac", "tier": "gold", "vip": 1}))
        ));
        assert!(!filter.matches(
            "x",
            &attrs(json!({"region": "eu", "tier": "silver", "vip": 1}))
        ));
        assert!(!filter.matches("x", &attrs(json!({"region": "eu", "tier": "gold"}))));
        assert!(!filter.matches(
            "x",
            &attrs(json!({"region": "eu", "tier": "gold", "vip": 1, "beta": true}))
        ));
        let numbers = Filter::from_json(&json!({"attributes": {"count": "3"}})).unwrap();
        assert!(numbers.matches("x", &attrs(json!({"count": 3}))));
    }

    #[test]
    fn invalid_policies_are_clear_errors() {
        for bad in [
            json!({"type": []}),
            json!({"type": {"exists": true}}),
            json!({"attributes": {"a": [1, 2]}}),
            json!({"unknown": 1}),
            json!({"type": 7}),
        ] {
            let err = Filter::from_json(&bad).unwrap_err();
            assert!(
                err.detail().contains("filter policy"),
                "{bad}: {}",
                err.detail()
            );
        }
    }
}
