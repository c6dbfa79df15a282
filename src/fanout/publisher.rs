//! The fan-out publisher on KV and Queues: subscriptions per topic, publish (one
//! batched enqueue of delivery tasks), delivery with signing and a delivery log,
//! and replay.
//!
//! Each topic's subscriptions live in a Durable Object of their own (see
//! `topics`), which applies concurrent changes one at a time; a publish reads
//! them with one call. KV holds `event:<id>`, the event (with a TTL, for
//! replay), and `delivery:<event id>:<subscription id>`, the delivery log.

use std::rc::Rc;

use super::model::{
    classify, merge_subscriptions, DeliveryRecord, DeliveryState, DeliveryTask, Event, NewEvent,
    NewSubscription, Status, Subscription, Target, WebhookOutcome,
};
use super::ssrf::SsrfPolicy;
use crate::aws::lambda::{Function, Lambda, LambdaConfig};
use crate::error::Error;
use crate::kv::{Kv, PutOptions};
use crate::object::Objects;
use crate::outbound::OutboundRequest;
use crate::queue::{Envelope, Failure, Message, Producer, SendOptions};
use crate::webhook::{signature_headers, WebhookSecret};

/// `id` as one path segment for a topic object's routes.
fn path_segment(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The envelope kind of delivery tasks; register [`Fanout::deliver`] for it.
pub const DELIVERY_KIND: &str = "fanout.deliver";

/// How long a webhook may take to answer.
pub const WEBHOOK_TIMEOUT_MS: u32 = 10_000;

/// The most of a webhook's answer read (the rest is cancelled unread).
pub const WEBHOOK_ANSWER_BYTES: u32 = 16 * 1024;

/// Fan-out over a KV namespace, the topic objects that hold subscriptions and
/// the queue that carries delivery tasks.
pub struct Fanout {
    kv: Kv,
    topics: Objects,
    deliveries: Producer<Envelope>,
    policy: SsrfPolicy,
    event_ttl_seconds: u64,
    /// Shared, not copied: `FanoutConfig` parses them once per isolate and hands
    /// the same list to every publisher it opens.
    declared: Rc<[Subscription]>,
}

impl Fanout {
    /// A publisher keeping subscriptions in the `topics` objects (class
    /// [`topics`](super::topics)), events in `kv`, and enqueueing on
    /// `deliveries`, checking webhook URLs against `policy`. Events are kept for
    /// a day.
    pub fn new(
        kv: Kv,
        topics: Objects,
        deliveries: Producer<Envelope>,
        policy: SsrfPolicy,
    ) -> Self {
        Self {
            kv,
            topics,
            deliveries,
            policy,
            event_ttl_seconds: 86_400,
            declared: Rc::from([]),
        }
    }

    /// Adds subscriptions declared in configuration (see
    /// [`declared_subscriptions`](super::model::declared_subscriptions)). They
    /// receive events like API ones, but the API cannot delete them.
    pub fn declare(mut self, subscriptions: impl Into<Rc<[Subscription]>>) -> Self {
        self.declared = subscriptions.into();
        self
    }

    /// How long events (and their delivery logs) stay replayable, in seconds (≥ 60).
    pub fn event_ttl(mut self, seconds: u64) -> Self {
        self.event_ttl_seconds = seconds.max(60);
        self
    }

    /// The subscriptions of `topic`: the declared ones, then those created
    /// through the API.
    pub async fn subscriptions(&self, topic: &str) -> Result<Vec<Subscription>, Error> {
        let stored = self.stored_subscriptions(topic).await?;
        Ok(merge_subscriptions(topic, &self.declared, stored))
    }

    /// What the topic's object holds: API subscriptions, and status overrides
    /// of declared ones.
    async fn stored_subscriptions(&self, topic: &str) -> Result<Vec<Subscription>, Error> {
        super::model::check_topic(topic)?;
        self.topics.by_name(topic).get("/subscriptions").await
    }

    /// Validates and adds a subscription. The topic's object applies concurrent
    /// subscribes one after another, so none is lost.
    pub async fn subscribe(
        &self,
        topic: &str,
        new: NewSubscription,
    ) -> Result<Subscription, Error> {
        let sub = new.into_subscription(topic, &self.policy)?;
        self.topics
            .by_name(topic)
            .post("/subscriptions", &sub)
            .await
    }

    /// Removes a subscription; `false` when there was none.
    pub async fn unsubscribe(&self, topic: &str, id: &str) -> Result<bool, Error> {
        if self.declared.iter().any(|d| d.topic == topic && d.id == id) {
            return Err(Error::with_status(
                crate::StatusCode::CONFLICT,
                format!("subscription {id:?} is declared in the worker's configuration (SUBSCRIPTIONS); remove it there and deploy"),
            ));
        }
        super::model::check_topic(topic)?;
        self.topics
            .by_name(topic)
            .delete(&format!("/subscriptions/{}", path_segment(id)))
            .await
    }

    async fn set_status(&self, topic: &str, id: &str, status: Status) -> Result<(), Error> {
        let declared = self.declared.iter().find(|d| d.id == id).cloned();
        let _changed: bool = self
            .topics
            .by_name(topic)
            .put(
                &format!("/subscriptions/{}/status", path_segment(id)),
                &super::topics::StatusChange { status, declared },
            )
            .await?;
        Ok(())
    }

    /// Publishes: validates, stores the event for replay, and enqueues one delivery
    /// task per matching subscriber in as few `sendBatch` calls as the limits allow.
    /// Returns the event and how many subscribers matched, once the enqueue is durable.
    pub async fn publish(&self, topic: &str, new: NewEvent) -> Result<(Event, usize), Error> {
        let event = new.into_event(topic)?;
        // Storing the event and reading the subscribers do not depend on each other.
        let event_key = format!("event:{}", event.id);
        let store = self.kv.put_json(
            &event_key,
            &event,
            PutOptions::new().expiration_ttl(self.event_ttl_seconds),
        );
        let (stored, subs) = futures_util::future::join(store, self.subscriptions(topic)).await;
        stored?;
        let subs = subs?;
        let matched = subs
            .iter()
            .filter(|s| s.wants(&event))
            .map(|s| s.id.as_str());
        let count = self.enqueue(&event, matched).await?;
        Ok((event, count))
    }

    async fn enqueue<'a>(
        &self,
        event: &Event,
        subscription_ids: impl Iterator<Item = &'a str>,
    ) -> Result<usize, Error> {
        let tasks = subscription_ids
            .map(|subscription_id| {
                Envelope::new(
                    DELIVERY_KIND,
                    &DeliveryTask {
                        event_id: event.id.clone(),
                        topic: event.topic.clone(),
                        subscription_id: subscription_id.to_owned(),
                    },
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !tasks.is_empty() {
            self.deliveries
                .send_batch(&tasks, SendOptions::default())
                .await?;
        }
        Ok(tasks.len())
    }

    /// The event and its delivery log, while it is within its TTL.
    pub async fn event(&self, id: &str) -> Result<Option<(Event, Vec<DeliveryRecord>)>, Error> {
        let Some(event) = self.kv.get_json::<Event>(&format!("event:{id}")).await? else {
            return Ok(None);
        };
        let mut records = Vec::new();
        for key in self.kv.list(&format!("delivery:{id}:")).await? {
            if let Some(record) = self.kv.get_json::<DeliveryRecord>(&key.name).await? {
                records.push(record);
            }
        }
        Ok(Some((event, records)))
    }

    /// Delivers the event again to every current subscriber it matches, or to one.
    /// `None` when the event is unknown or expired.
    pub async fn replay(&self, id: &str, only: Option<&str>) -> Result<Option<usize>, Error> {
        let Some(event) = self.kv.get_json::<Event>(&format!("event:{id}")).await? else {
            return Ok(None);
        };
        let subs = self.subscriptions(&event.topic).await?;
        let ids = subs
            .iter()
            .filter(|s| s.wants(&event) && only.is_none_or(|o| o == s.id))
            .map(|s| s.id.as_str());
        self.enqueue(&event, ids).await.map(Some)
    }

    /// Runs one delivery task: the consumer handler for [`DELIVERY_KIND`].
    pub async fn deliver(&self, message: &Message<DeliveryTask>) -> Result<(), Failure> {
        let task = &message.body;
        let Some(event) = self
            .kv
            .get_json::<Event>(&format!("event:{}", task.event_id))
            .await?
        else {
            return Err(Failure::permanent(format!(
                "event {} expired before delivery",
                task.event_id
            )));
        };
        let subs = self.subscriptions(&task.topic).await?;
        let log_key = format!("delivery:{}:{}", task.event_id, task.subscription_id);
        let previous: Option<DeliveryRecord> = self.kv.get_json(&log_key).await?;
        let now = crate::platform::now_ms() as u64;
        let mut record = previous.unwrap_or(DeliveryRecord {
            subscription_id: task.subscription_id.clone(),
            state: DeliveryState::Retrying,
            attempts: 0,
            last_status: None,
            last_error: None,
            first_attempt_ms: now,
            last_attempt_ms: now,
        });
        record.attempts += 1;
        record.last_attempt_ms = now;
        let Some(sub) = subs.into_iter().find(|s| s.id == task.subscription_id) else {
            record.state = DeliveryState::Skipped;
            record.last_error = Some("the subscription was deleted".into());
            return self.log(&log_key, &record).await;
        };
        if sub.status == Status::Disabled {
            record.state = DeliveryState::Skipped;
            record.last_error = Some("the subscription is disabled".into());
            return self.log(&log_key, &record).await;
        }
        let result = match &sub.target {
            Target::Queue { binding } => self.to_queue(message, binding, &event).await,
            Target::Webhook { url, secrets } => {
                self.to_webhook(url, secrets, &event, &mut record).await
            }
            Target::Lambda {
                function,
                qualifier,
            } => to_lambda(message, function, qualifier.as_deref(), &event).await,
        };
        match &result {
            Ok(()) => {
                record.state = DeliveryState::Delivered;
                record.last_error = None;
            }
            Err(failure) => {
                let final_failure = message.gives_up_on(failure);
                record.last_error = Some(failure.reason().to_owned());
                record.state = if final_failure {
                    DeliveryState::Failed
                } else {
                    DeliveryState::Retrying
                };
                if final_failure && sub.status == Status::Active {
                    self.set_status(&sub.topic, &sub.id, Status::Failing)
                        .await?;
                }
            }
        }
        self.log(&log_key, &record).await?;
        result
    }

    async fn log(&self, key: &str, record: &DeliveryRecord) -> Result<(), Failure> {
        self.kv
            .put_json(
                key,
                record,
                PutOptions::new().expiration_ttl(self.event_ttl_seconds),
            )
            .await
            .map_err(Failure::from)
    }

    async fn to_queue(
        &self,
        message: &Message<DeliveryTask>,
        binding: &str,
        event: &Event,
    ) -> Result<(), Failure> {
        let producer = Producer::<Envelope>::from_env(message.env(), binding)
            .map_err(|e| Failure::permanent(e.detail()))?;
        let envelope = Envelope::with_id(event.event_type.clone(), event.id.clone(), event)?;
        producer.send(&envelope).await.map_err(Failure::from)
    }

    async fn to_webhook(
        &self,
        url: &str,
        secrets: &[String],
        event: &Event,
        record: &mut DeliveryRecord,
    ) -> Result<(), Failure> {
        // Re-checked at delivery: the policy may have tightened since subscribing.
        self.policy
            .check(url)
            .map_err(|e| Failure::permanent(e.detail()))?;
        let secrets = secrets
            .iter()
            .map(|s| WebhookSecret::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Failure::permanent(e.detail()))?;
        let body = serde_json::to_vec(event).map_err(|e| Failure::permanent(e.to_string()))?;
        let timestamp = (crate::platform::now_ms() / 1000.0) as u64;
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        headers.extend(
            signature_headers(&secrets, &event.id, timestamp, &body)
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value)),
        );
        let request = OutboundRequest {
            method: "POST",
            url: url.to_owned(),
            headers,
            body,
            timeout_ms: WEBHOOK_TIMEOUT_MS,
            // Only the status, `Retry-After` and an excerpt for the log matter.
            max_response_bytes: WEBHOOK_ANSWER_BYTES,
        };
        let reply = crate::outbound::send(&request)
            .await
            .map_err(|e| Failure::transient(format!("webhook request failed: {}", e.detail())))?;
        let status = reply.status;
        let retry_after = reply.header("retry-after");
        let excerpt = reply.excerpt(200);
        record.last_status = Some(status);
        match classify(status, retry_after) {
            WebhookOutcome::Delivered => Ok(()),
            WebhookOutcome::Gone => {
                self.set_status(&event.topic, &record.subscription_id, Status::Disabled)
                    .await?;
                Err(Failure::permanent(
                    "410 Gone: the subscription is now disabled",
                ))
            }
            WebhookOutcome::Retry {
                after_seconds: Some(seconds),
            } => Err(Failure::RetryAfter {
                reason: format!("webhook answered {status}: {excerpt}"),
                seconds,
            }),
            WebhookOutcome::Retry {
                after_seconds: None,
            } => Err(Failure::transient(format!(
                "webhook answered {status}: {excerpt}"
            ))),
            WebhookOutcome::Failed => Err(Failure::transient(format!(
                "webhook answered {status} (only 2xx counts; redirects are not followed): {excerpt}"
            ))),
        }
    }
}

/// Invokes the function asynchronously with the event. Throttling and 5xx are
/// retried; a refused call (bad credentials, unknown function) is permanent.
async fn to_lambda(
    message: &Message<DeliveryTask>,
    function: &str,
    qualifier: Option<&str>,
    event: &Event,
) -> Result<(), Failure> {
    let config =
        LambdaConfig::from_env(message.env()).map_err(|e| Failure::permanent(e.detail()))?;
    let mut target = Function::new(function);
    if let Some(q) = qualifier {
        target = target.qualifier(q);
    }
    Lambda::new(config)
        .invoke_async(target, event)
        .await
        .map_err(Failure::from)
}
