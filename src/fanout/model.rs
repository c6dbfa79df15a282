//! The fan-out data model: topics, subscriptions, events and delivery records.
//! Pure; the KV and queue side lives in [`super::publisher`].

use serde::{Deserialize, Serialize};

use super::filter::Filter;
use super::ssrf::SsrfPolicy;
use crate::error::{Error, ErrorKind};
use crate::webhook::WebhookSecret;

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
    /// An AWS Lambda function, invoked asynchronously with the event as payload,
    /// in the worker's `AWS_REGION` with its AWS credentials.
    Lambda {
        /// The function name or ARN.
        function: String,
        /// A version or alias.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        qualifier: Option<String>,
    },
}

impl Target {
    fn check(&self, policy: &SsrfPolicy) -> Result<(), Error> {
        match self {
            Target::Webhook { url, secrets } => {
                policy.check(url)?;
                // An empty list and a malformed secret are the same mistake in the
                // body's shape: both are a 422 naming the field.
                let invalid = |detail: &str| {
                    Error::new(ErrorKind::JsonShape, detail.to_owned())
                        .with_member("field", "target.secrets")
                };
                if secrets.is_empty() {
                    return Err(invalid(
                        "a webhook subscription needs at least one `whsec_` secret",
                    ));
                }
                for secret in secrets {
                    WebhookSecret::parse(secret).map_err(|e| invalid(e.detail()))?;
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
            Target::Lambda {
                function,
                qualifier,
            } => {
                let mut f = crate::aws::lambda::Function::new(function.clone());
                if let Some(q) = qualifier {
                    f = f.qualifier(q.clone());
                }
                f.check()
                    .map_err(|e| Error::new(ErrorKind::JsonShape, e.detail().to_owned()))?;
            }
        }
        Ok(())
    }
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
    /// Declared in the worker's configuration rather than created through the API;
    /// only a deploy can remove it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub declared: bool,
}

/// A subscription as the API shows it: everything but the secrets.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SubscriptionView {
    /// Its id.
    pub id: String,
    /// The topic.
    pub topic: String,
    /// `queue`, `webhook` or `lambda`.
    pub kind: &'static str,
    /// The queue binding, webhook URL or function.
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
    /// Declared in configuration (not removable through the API).
    pub declared: bool,
}

impl Subscription {
    /// The API view, without secrets.
    pub fn view(&self) -> SubscriptionView {
        let (kind, destination, secret_count) = match &self.target {
            Target::Queue { binding } => ("queue", binding.clone(), None),
            Target::Webhook { url, secrets } => ("webhook", url.clone(), Some(secrets.len())),
            Target::Lambda {
                function,
                qualifier,
            } => (
                "lambda",
                match qualifier {
                    Some(q) => format!("{function}:{q}"),
                    None => function.clone(),
                },
                None,
            ),
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
            declared: self.declared,
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
        self.target.check(policy)?;
        let filter = self.filter.as_ref().map(Filter::from_json).transpose()?;
        Ok(Subscription {
            id: crate::platform::new_id(),
            topic: topic.to_owned(),
            target: self.target,
            filter,
            status: Status::Active,
            created_at_ms: crate::platform::now_ms() as u64,
            declared: false,
        })
    }
}

/// One subscription in the `SUBSCRIPTIONS` configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeclaredSubscription {
    id: String,
    target: Target,
    #[serde(default)]
    filter: Option<serde_json::Value>,
}

/// Parses subscriptions declared in configuration: a JSON object from topic to a
/// list of `{"id", "target", "filter"}`, e.g.
/// `{"orders": [{"id": "audit", "target": {"kind": "queue", "binding": "AUDIT"}}]}`.
///
/// Secrets do not belong in configuration: a webhook secret written `env:NAME` is
/// read from the Worker secret `NAME` through `secret`. Each declaration is
/// validated like an API subscription (SSRF policy included); ids must be unique.
pub fn declared_subscriptions(
    json: &str,
    policy: &SsrfPolicy,
    secret: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Subscription>, Error> {
    let invalid = |detail: String| Error::internal(format!("SUBSCRIPTIONS: {detail}"));
    let topics: std::collections::BTreeMap<String, Vec<DeclaredSubscription>> =
        serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
    let mut out: Vec<Subscription> = Vec::new();
    for (topic, declared) in topics {
        for d in declared {
            let ok_id = (1..=64).contains(&d.id.len())
                && d.id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok_id || out.iter().any(|s| s.id == d.id) {
                return Err(invalid(format!(
                    "subscription id {:?} must be unique, 1-64 of A-Z a-z 0-9 - _",
                    d.id
                )));
            }
            let mut target = d.target;
            if let Target::Webhook { secrets, .. } = &mut target {
                for s in secrets.iter_mut() {
                    if let Some(name) = s.strip_prefix("env:") {
                        *s = secret(name)
                            .ok_or_else(|| invalid(format!("the Worker has no secret {name:?}")))?;
                    }
                }
            }
            let new = NewSubscription {
                target,
                filter: d.filter,
            };
            let mut sub = new
                .into_subscription(&topic, policy)
                .map_err(|e| invalid(format!("{topic}/{}: {}", d.id, e.detail())))?;
            sub.id = d.id;
            sub.created_at_ms = 0;
            sub.declared = true;
            out.push(sub);
        }
    }
    Ok(out)
}

/// A topic's subscriptions: the declared ones first (with any status the store
/// recorded for them, e.g. `disabled` after a 410), then the stored ones.
pub fn merge_subscriptions(
    topic: &str,
    declared: &[Subscription],
    stored: Vec<Subscription>,
) -> Vec<Subscription> {
    let mut out: Vec<Subscription> = declared
        .iter()
        .filter(|d| d.topic == topic)
        .map(|d| {
            let mut sub = d.clone();
            if let Some(s) = stored.iter().find(|s| s.id == d.id) {
                sub.status = s.status;
            }
            sub
        })
        .collect();
    let declared_here: Vec<String> = out.iter().map(|s| s.id.clone()).collect();
    out.extend(
        stored
            .into_iter()
            .filter(|s| !declared_here.contains(&s.id)),
    );
    out
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
    fn missing_and_malformed_secrets_are_the_same_422() {
        let parse = |secrets: serde_json::Value| {
            serde_json::from_value::<NewSubscription>(json!({
                "target": {"kind": "webhook", "url": "https://x.example.com/", "secrets": secrets}
            }))
            .unwrap()
            .into_subscription("orders", &SsrfPolicy::production())
            .unwrap_err()
        };
        for secrets in [
            json!([]),
            json!(["not-a-secret"]),
            json!(["whsec_c2hvcnQ="]),
        ] {
            let err = parse(secrets.clone());
            assert_eq!(err.kind(), ErrorKind::JsonShape, "{secrets}");
            assert_eq!(err.status().as_u16(), 422, "{secrets}");
            let problem = err.to_problem_json();
            assert!(problem.contains(r#""field":"target.secrets""#), "{problem}");
        }
    }

    #[test]
    fn lambda_targets_validate_their_function() {
        let parse = |target: serde_json::Value| {
            serde_json::from_value::<NewSubscription>(json!({ "target": target }))
                .unwrap()
                .into_subscription("orders", &SsrfPolicy::production())
        };
        let sub =
            parse(json!({"kind": "lambda", "function": "billing", "qualifier": "live"})).unwrap();
        assert_eq!(sub.view().kind, "lambda");
        assert_eq!(sub.view().destination, "billing:live");
        let err = parse(json!({"kind": "lambda", "function": "no spaces"})).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::JsonShape);
    }

    #[test]
    fn declared_subscriptions_parse_resolve_secrets_and_merge() {
        let json = r#"{
            "orders": [
                {"id": "audit", "target": {"kind": "queue", "binding": "AUDIT"}},
                {"id": "crm", "target": {"kind": "webhook", "url": "https://crm.example.com/in",
                  "secrets": ["env:CRM_SECRET"]}, "filter": {"type": ["order.created"]}}
            ],
            "users": [{"id": "mirror", "target": {"kind": "lambda", "function": "mirror"}}]
        }"#;
        let secret = |name: &str| {
            (name == "CRM_SECRET").then(|| "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".to_owned())
        };
        let policy = SsrfPolicy::production();
        let declared = declared_subscriptions(json, &policy, secret).unwrap();
        assert_eq!(declared.len(), 3);
        assert!(declared
            .iter()
            .all(|s| s.declared && s.status == Status::Active));
        let crm = declared.iter().find(|s| s.id == "crm").unwrap();
        assert!(
            matches!(&crm.target, Target::Webhook { secrets, .. } if secrets[0].starts_with("whsec_"))
        );

        // A stored status (410 disabled it) overrides the declared one; stored
        // API subscriptions follow.
        let mut disabled = declared[0].clone();
        disabled.status = Status::Disabled;
        let api = webhook("https://hooks.example.com/x")
            .into_subscription("orders", &policy)
            .unwrap();
        let merged = merge_subscriptions("orders", &declared, vec![disabled, api.clone()]);
        let ids: Vec<&str> = merged.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["audit", "crm", api.id.as_str()]);
        assert_eq!(merged[0].status, Status::Disabled);

        // Missing secrets, unsafe URLs and duplicate ids fail the whole config.
        assert!(declared_subscriptions(json, &policy, |_| None).is_err());
        let unsafe_url = r#"{"t": [{"id": "x", "target": {"kind": "webhook",
            "url": "https://127.0.0.1/", "secrets": ["whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"]}}]}"#;
        assert!(declared_subscriptions(unsafe_url, &policy, |_| None).is_err());
        let dup = r#"{"a": [{"id": "x", "target": {"kind": "queue", "binding": "Q"}}],
                      "b": [{"id": "x", "target": {"kind": "queue", "binding": "Q"}}]}"#;
        assert!(declared_subscriptions(dup, &policy, |_| None).is_err());
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
