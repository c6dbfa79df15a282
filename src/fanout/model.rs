//! The fan-out data model: topics, subscriptions, events and delivery records.
//! Pure; the KV and queue side lives in [`super::publisher`].

use serde::{Deserialize, Serialize};

use super::filter::Filter;
use super::ssrf::SsrfPolicy;
use super::webhook::WebhookSecret;
use crate::error::{Error, ErrorKind};

/// The largest event `data`, in bytes of JSON; the whole event must fit in KV and
/// a webhook body comfortably, and far under a queue message.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// Where a subscription delivers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Target {
    /// A Queue binding of this worker.
    Queue {
        /// The producer binding name.
        binding: String,
    },
    /// An HTTPS endpoint, signed per Standard Webhooks.
    Webhook {
        /// The URL.
        url: String,
        /// `whsec_` secrets; several during a rotation. Never returned by the API.
        secrets: Vec<String>,
    },
}

/// Whether a subscription receives deliveries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Receiving.
    Active,
    /// Exhausted retries on a delivery; still receiving, flagged for attention.
    Failing,
    /// Answered 410 Gone: no more deliveries.
    Disabled,
}

/// A subscription to a topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    /// Its id.
    pub id: String,
    /// The topic.
    pub topic: String,
    /// Where it delivers.
    pub target: Target,
    /// Which events it wants; none means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// Whether it receives deliveries.
    pub status: Status,
    /// Created, in ms since the epoch.
    pub created_at_ms: u64,
}

/// A subscription as the API shows it: everything but the secrets.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SubscriptionView {
    /// Its id.
    pub id: String,
    /// The topic.
    pub topic: String,
    /// `queue` or `webhook`.
    pub kind: &'static str,
    /// The queue binding or webhook URL.
    pub destination: String,
    /// How many signing secrets a webhook has (never the secrets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_count: Option<usize>,
    /// Its filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// Its status.
    pub status: Status,
    /// Created, in ms since the epoch.
    pub created_at_ms: u64,
}

impl Subscription {
    /// The API view, without secrets.
    pub fn view(&self) -> SubscriptionView {
        let (kind, destination, secret_count) = match &self.target {
            Target::Queue { binding } => ("queue", binding.clone(), None),
            Target::Webhook { url, secrets } => ("webhook", url.clone(), Some(secrets.len())),
        };
        SubscriptionView {
            id: self.id.clone(),
            topic: self.topic.clone(),
            kind,
            destination,
            secret_count,
            filter: self.filter.clone(),
            status: self.status,
            created_at_ms: self.created_at_ms,
        }
    }

    /// Whether `event` should be delivered here.
    pub fn wants(&self, event: &Event) -> bool {
        self.status != Status::Disabled
            && self
                .filter
                .as_ref()
                .is_none_or(|f| f.matches(&event.event_type, &event.attributes))
    }
}

/// The body of `POST /v1/topics/{topic}/subscriptions`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// Where to deliver.
    pub target: Target,
    /// Which events; optional.
    #[serde(default)]
    pub filter: Option<serde_json::Value>,
}

impl NewSubscription {
    /// Validates (SSRF policy, secrets, filter) and builds the subscription.
    pub fn into_subscription(
        self,
        topic: &str,
        policy: &SsrfPolicy,
    ) -> Result<Subscription, Error> {
        check_topic(topic)?;
        match &self.target {
            Target::Webhook { url, secrets } => {
                policy.check(url)?;
                if secrets.is_empty() {
                    return Err(Error::new(
                        ErrorKind::JsonShape,
                        "a webhook subscription needs at least one `whsec_` secret",
                    ));
                }
                for secret in secrets {
                    WebhookSecret::parse(secret)?;
                }
            }
            Target::Queue { binding } => {
                if binding.is_empty()
                    || !binding
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(Error::new(
                        ErrorKind::JsonShape,
                        "a queue subscription needs the name of a queue binding",
                    ));
                }
            }
        }
        let filter = self.filter.as_ref().map(Filter::from_json).transpose()?;
        Ok(Subscription {
            id: crate::platform::new_id(),
            topic: topic.to_owned(),
            target: self.target,
            filter,
            status: Status::Active,
            created_at_ms: crate::platform::now_ms() as u64,
        })
    }
}

/// Topic names: 1–128 of `[A-Za-z0-9._-]`.
pub fn check_topic(topic: &str) -> Result<(), Error> {
    let ok = (1..=128).contains(&topic.len())
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "topic {topic:?} must be 1-128 characters of A-Z, a-z, 0-9, `.`, `_` or `-`"
        )))
    }
}

/// The body of `POST /v1/topics/{topic}/events`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    /// What happened, e.g. `order.created`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Flat attributes that filters match on.
    #[serde(default)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// The payload.
    #[serde(default)]
    pub data: serde_json::Value,
}

/// A published event, as stored and as delivered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Its id (UUIDv7): the `webhook-id`, stable across retries and replays.
    pub id: String,
    /// The topic.
    pub topic: String,
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Filterable attributes.
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// The payload.
    pub data: serde_json::Value,
    /// Published, in ms since the epoch.
    pub published_at_ms: u64,
}

impl NewEvent {
    /// Validates and stamps the event with an id and time.
    pub fn into_event(self, topic: &str) -> Result<Event, Error> {
        check_topic(topic)?;
        if self.event_type.is_empty() || self.event_type.len() > 128 {
            return Err(Error::new(
                ErrorKind::JsonShape,
                "`type` must be 1-128 characters",
            ));
        }
        let attributes_ok = self
            .attributes
            .values()
            .all(|v| !v.is_object() && !v.is_array());
        if !attributes_ok {
            return Err(Error::new(
                ErrorKind::JsonShape,
                "`attributes` values must be strings, numbers or booleans",
            ));
        }
        let event = Event {
            id: crate::platform::new_id(),
            topic: topic.to_owned(),
            event_type: self.event_type,
            attributes: self.attributes,
            data: self.data,
            published_at_ms: crate::platform::now_ms() as u64,
        };
        let size = serde_json::to_string(&event)
            .map(|s| s.len())
            .unwrap_or(usize::MAX);
        if size > MAX_EVENT_BYTES {
            return Err(Error::new(
                ErrorKind::PayloadTooLarge,
                format!("the event is {size} bytes as JSON; at most {MAX_EVENT_BYTES} are allowed"),
            ));
        }
        Ok(event)
    }
}

/// What a delivery message on the queue carries: references, not copies, so a
/// fan-out to many subscribers stays far under the batch limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryTask {
    /// The event.
    pub event_id: String,
    /// The topic.
    pub topic: String,
    /// The subscriber.
    pub subscription_id: String,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Failed at least once; will be retried.
    Retrying,
    /// The subscriber took it.
    Delivered,
    /// Gave up: in the DLQ.
    Failed,
    /// The subscription was disabled (410) before or during delivery.
    Skipped,
}

/// The delivery log entry for one event × subscriber.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// The subscriber.
    pub subscription_id: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts so far.
    pub attempts: u32,
    /// The last HTTP status, for webhooks.
    pub last_status: Option<u16>,
    /// The last error.
    pub last_error: Option<String>,
    /// First attempt, ms since the epoch.
    pub first_attempt_ms: u64,
    /// Last attempt, ms since the epoch.
    pub last_attempt_ms: u64,
}

/// How a webhook answer counts, per the delivery rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// 2xx.
    Delivered,
    /// 410: disable the subscription.
    Gone,
    /// 429 or 5xx: retry, after `Retry-After` when given.
    Retry {
        /// Seconds from `Retry-After`, if any.
        after_seconds: Option<u32>,
    },
    /// Anything else, 3xx included (redirects are never followed).
    Failed,
}

/// Classifies a webhook response.
pub fn classify(status: u16, retry_after: Option<&str>) -> WebhookOutcome {
    match status {
        200..=299 => WebhookOutcome::Delivered,
        410 => WebhookOutcome::Gone,
        429 | 500..=599 => WebhookOutcome::Retry {
            after_seconds: retry_after.and_then(|v| v.trim().parse().ok()),
        },
        _ => WebhookOutcome::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn webhook(url: &str) -> NewSubscription {
        serde_json::from_value(json!({
            "target": {"kind": "webhook", "url": url, "secrets": ["whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"]},
            "filter": {"type": {"prefix": "order."}}
        }))
        .unwrap()
    }

    #[test]
    fn subscriptions_validate_and_hide_secrets() {
        let sub = webhook("https://hooks.example.com/in")
            .into_subscription("orders", &SsrfPolicy::production())
            .unwrap();
        let view = serde_json::to_string(&sub.view()).unwrap();
        assert!(!view.contains("whsec_"), "{view}");
        assert!(view.contains(r#""secret_count":1"#), "{view}");
        let err = webhook("https://169.254.169.254/")
            .into_subscription("orders", &SsrfPolicy::production())
            .unwrap_err();
        assert_eq!(err.status().as_u16(), 422);
        assert!(webhook("https://x.example.com/")
            .into_subscription("bad topic!", &SsrfPolicy::production())
            .is_err());
    }

    #[test]
    fn events_validate_and_filters_select() {
        let event = NewEvent {
            event_type: "order.created".into(),
            attributes: json!({"region": "eu"}).as_object().unwrap().clone(),
            data: json!({"order": 1}),
        }
        .into_event("orders")
        .unwrap();
        let sub = webhook("https://hooks.example.com/in")
            .into_subscription("orders", &SsrfPolicy::production())
            .unwrap();
        assert!(sub.wants(&event));
        let mut other = event.clone();
        other.event_type = "invoice.paid".into();
        assert!(!sub.wants(&other));
        let mut disabled = sub.clone();
        disabled.status = Status::Disabled;
        assert!(!disabled.wants(&event));
        let big = NewEvent {
            event_type: "x".into(),
            attributes: Default::default(),
            data: json!("y".repeat(MAX_EVENT_BYTES)),
        };
        assert_eq!(big.into_event("t").unwrap_err().status().as_u16(), 413);
    }

    #[test]
    fn webhook_answers_are_classified() {
        assert_eq!(classify(204, None), WebhookOutcome::Delivered);
        assert_eq!(classify(410, None), WebhookOutcome::Gone);
        assert_eq!(
            classify(429, Some("7")),
            WebhookOutcome::Retry {
                after_seconds: Some(7)
            }
        );
        assert_eq!(
            classify(503, Some("soon")),
            WebhookOutcome::Retry {
                after_seconds: None
            }
        );
        assert_eq!(classify(301, None), WebhookOutcome::Failed);
        assert_eq!(classify(404, None), WebhookOutcome::Failed);
    }
}
