//! The flagship gateway: health, the route table (`/v1/routes`), KV
//! browse/get/put/delete under `/v1/kv`,
//! a queue-backed write path with a consumer and a dead-letter log, fan-out to
//! signed webhooks and queues under `/v1/topics` and `/v1/events`, jobs offloaded
//! to AWS Lambda under `/v1/jobs`, order fulfilment as a durable workflow under
//! `/v1/orders` (`orders.rs`), and the `www/` console served by Workers Static
//! Assets. With `ORIGIN_URL` set it fronts a legacy origin (strangler fig): what it
//! does not serve is proxied there.
//!
//! Everything under `/v1` but the job function's signed callbacks needs an API
//! key whose scopes name the route's tag (`edgeway::auth`); keys are made,
//! listed and revoked under `/v1/keys`.

mod jobs;
mod orders;

use edgeway::auth::ApiKeys;
use edgeway::cron::{Cron, Schedule};
use edgeway::fanout::{Event, FanoutConfig, NewEvent, NewSubscription, SubscriptionView};
use edgeway::kv::{KvKey, PutOptions};
use edgeway::middleware::{
    access_log, body_limit, request_id, strangler_fig, timing, RateLimit, ResponseCache,
};
use edgeway::ops::alert::Alert;
use edgeway::ops::usage::Report;
use edgeway::ops::{Ops, ALERTS_TOPIC};
use edgeway::queue::{Backoff, Consumer, Envelope, Failure, Message};
use edgeway::{App, Error, Json, Path, Query, RouteInfo, Routes, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

edgeway::binding!(Store: Kv = "STORE");
edgeway::binding!(Events: Queue<Envelope> = "EVENTS");

/// `GET /healthz`'s answer. A struct rather than `json!`: every isolate's first
/// request is often a health check, and a map would make it compile the map code.
#[derive(Serialize)]
struct Health {
    status: &'static str,
    service: &'static str,
    wasm_memory_bytes: Option<usize>,
}

/// `GET /healthz`, with the isolate's wasm memory high-water mark (linear memory
/// only grows), which the benchmarks read after their load.
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        service: "edgeway-gateway",
        wasm_memory_bytes: edgeway::platform::wasm_memory_bytes(),
    })
}

/// `GET /v1/routes`: the route table with feature tags, as the console shows it.
async fn routes(Routes(all): Routes) -> Json<Vec<RouteInfo>> {
    Json(all.to_vec())
}

#[derive(Deserialize)]
struct ListQuery {
    prefix: Option<String>,
}

async fn list_keys(store: Store, Query(q): Query<ListQuery>) -> Result<Json<Vec<KvKey>>, Error> {
    Ok(Json(store.list(q.prefix.as_deref().unwrap_or("")).await?))
}

/// A value, cacheable for 30 s: KV itself may take up to 60 s to show a write
/// made elsewhere, and a `PUT` or `DELETE` through `/v1/kv` makes this data
/// center's cached copy stale at once (`KV_CACHE`); a queued write does not.
async fn get_key(
    store: Store,
    Path(key): Path<String>,
) -> Result<([(&'static str, &'static str); 1], String), Error> {
    let value = store
        .get_text(&key)
        .await?
        .ok_or_else(|| Error::not_found(format!("no KV key {key:?}")))?;
    Ok(([("cache-control", "max-age=30")], value))
}

#[derive(Deserialize)]
struct PutQuery {
    ttl: Option<u64>,
}

async fn put_key(
    store: Store,
    Path(key): Path<String>,
    Query(q): Query<PutQuery>,
    value: String,
) -> Result<StatusCode, Error> {
    let mut options = PutOptions::new();
    if let Some(ttl) = q.ttl {
        options = options.expiration_ttl(ttl);
    }
    store.put_text(&key, &value, options).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_key(store: Store, Path(key): Path<String>) -> Result<StatusCode, Error> {
    store.delete(&key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A write that leaves the request path: queued, applied by the consumer.
#[derive(Serialize, Deserialize)]
struct QueuedPut {
    key: String,
    value: String,
}

async fn put_key_later(
    events: Events,
    Path(key): Path<String>,
    value: String,
) -> Result<(StatusCode, Json<Value>), Error> {
    edgeway::kv::check_key(&key)?;
    let envelope = Envelope::new("kv.put", &QueuedPut { key, value })?;
    events.send(&envelope).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": envelope.id }))))
}

async fn dead_letter(store: Store, Path(id): Path<String>) -> Result<Json<Value>, Error> {
    let letter = Consumer::recorded_dead_letter(&store, &id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no dead letter {id:?}")))?;
    Ok(Json(serde_json::to_value(letter)?))
}

/// Fan-out over `STORE` and `EVENTS`. Webhook targets must be public `https`
/// URLs, unless `WEBHOOK_ALLOW_HOSTS` (a comma-separated list, for local
/// development only) names the host; `SUBSCRIPTIONS` declares subscriptions in
/// wrangler.toml, webhook secrets as `env:NAME`.
pub(crate) const FANOUT: FanoutConfig = FanoutConfig::new("STORE", "EVENTS");

/// The declared `audit-trail` subscription delivers `audit.recorded` events to
/// this worker's queue; this handler files each one in KV under `audit:<id>`.
async fn record_audit(message: Message<Event>) -> Result<(), Failure> {
    let store = edgeway::kv::Kv::from_env(message.env(), "STORE")?;
    store
        .put_json(
            &format!("audit:{}", message.body.id),
            &message.body,
            PutOptions::new(),
        )
        .await
        .map_err(Failure::from)
}

async fn subscribe(
    env: edgeway::worker::Env,
    Path(topic): Path<String>,
    Json(new): Json<NewSubscription>,
) -> Result<(StatusCode, Json<SubscriptionView>), Error> {
    let sub = FANOUT.open(&env)?.subscribe(&topic, new).await?;
    Ok((StatusCode::CREATED, Json(sub.view())))
}

async fn list_subscriptions(
    env: edgeway::worker::Env,
    Path(topic): Path<String>,
) -> Result<Json<Vec<SubscriptionView>>, Error> {
    let subs = FANOUT.open(&env)?.subscriptions(&topic).await?;
    Ok(Json(subs.iter().map(|s| s.view()).collect()))
}

async fn unsubscribe(
    env: edgeway::worker::Env,
    Path((topic, id)): Path<(String, String)>,
) -> Result<StatusCode, Error> {
    if FANOUT.open(&env)?.unsubscribe(&topic, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::not_found(format!(
            "no subscription {id:?} on topic {topic:?}"
        )))
    }
}

async fn publish(
    env: edgeway::worker::Env,
    Path(topic): Path<String>,
    Json(new): Json<NewEvent>,
) -> Result<(StatusCode, Json<Value>), Error> {
    let (event, matched) = FANOUT.open(&env)?.publish(&topic, new).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": event.id, "matched": matched })),
    ))
}

async fn show_event(
    env: edgeway::worker::Env,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let (event, deliveries) = FANOUT
        .open(&env)?
        .event(&id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no event {id:?} (unknown or expired)")))?;
    Ok(Json(json!({ "event": event, "deliveries": deliveries })))
}

#[derive(Deserialize)]
struct ReplayQuery {
    subscription: Option<String>,
}

async fn replay(
    env: edgeway::worker::Env,
    Path(id): Path<String>,
    Query(q): Query<ReplayQuery>,
) -> Result<(StatusCode, Json<Value>), Error> {
    let matched = FANOUT
        .open(&env)?
        .replay(&id, q.subscription.as_deref())
        .await?
        .ok_or_else(|| Error::not_found(format!("no event {id:?} (unknown or expired)")))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "matched": matched })),
    ))
}

/// The management API's keys, in a KV namespace of their own (whoever can write
/// to a namespace can mint keys in it). The root key is the Worker secret
/// `EDGEWAY_ROOT_KEY`. Reads of keys from KV are limited per client IP
/// (`KEY_LOOKUPS`), so made-up keys cannot each cost one.
const API_KEYS: ApiKeys = ApiKeys::new("API_KEYS").lookups(RateLimit::new("KEY_LOOKUPS", 100, 60));

/// KV values from the Cache API. They are the same for every key holder, and
/// the layer sits inside the key check, so requests with keys are served too.
const KV_CACHE: ResponseCache = ResponseCache::new().ignore_credentials();

/// Writes that cost money downstream (deliveries, Lambda invocations): 30 per
/// 10 s per API key, as the `WRITE_LIMIT` binding in wrangler.toml counts them,
/// shared by every route the layer wraps (publishing, subscribing and job
/// submission draw on one budget).
const WRITES: RateLimit = RateLimit::new("WRITE_LIMIT", 30, 10).by_caller();

/// Placed orders: each starts a workflow instance, a charge and a Lambda job,
/// so they are limited per API key too, on a budget of their own
/// (`ORDER_LIMIT` in wrangler.toml): 300 a minute.
const PLACED_ORDERS: RateLimit = RateLimit::new("ORDER_LIMIT", 300, 60).by_caller();

/// Every request attributed to its feature and route, with its billable
/// operations: tallied per isolate, flushed at most once a minute to
/// `OPS_USAGE`, stored in `OPS_DB`, read at `/v1/ops/usage` and `/v1/ops/cost`.
pub(crate) const OPS: Ops = Ops::new("OPS_USAGE", "OPS_DB");

fn app() -> App {
    let kv_values = App::new()
        .layer(KV_CACHE)
        .layer(body_limit(1 << 20))
        .get("/{*key}", get_key)
        .tag("kv")
        .put("/{*key}", put_key)
        .tag("kv")
        .delete("/{*key}", delete_key)
        .tag("kv");
    let jobs = App::new()
        .layer(WRITES)
        .layer(body_limit(jobs::INPUT_LIMIT))
        .post("/{kind}", jobs::submit)
        .tag("jobs");
    let topic_writes = App::new()
        .layer(WRITES)
        .post("/{topic}/subscriptions", subscribe)
        .tag("fanout")
        .post("/{topic}/events", publish)
        .tag("fanout");
    // Orders: each starts an instance of the fulfilment workflow.
    let placing = App::new()
        .layer(PLACED_ORDERS)
        .layer(body_limit(orders::BODY_LIMIT))
        .post("/", orders::place)
        .tag("orders");
    let orders = App::new()
        .layer(body_limit(orders::BODY_LIMIT))
        .get("/{id}", orders::show)
        .tag("orders")
        .post("/{id}/approve", orders::approve)
        .tag("orders");
    // Called by the Lambda function, with their own signatures instead of a key.
    let job_function = App::new()
        .layer(body_limit(jobs::INPUT_LIMIT))
        .get("/{id}/input", jobs::input)
        .tag("jobs")
        .post("/{id}/result", jobs::result)
        .tag("jobs");
    // Closed by default: every management route needs a key with its tag's scope.
    let management = App::new()
        .layer(API_KEYS)
        .get("/routes", routes)
        .tag("meta")
        .get("/kv", list_keys)
        .tag("kv")
        .nest("/kv", kv_values)
        .post("/queued/kv/{*key}", put_key_later)
        .tag("queues")
        .get("/dead-letters/{id}", dead_letter)
        .tag("queues")
        .nest("/topics", topic_writes)
        .get("/topics/{topic}/subscriptions", list_subscriptions)
        .tag("fanout")
        .delete("/topics/{topic}/subscriptions/{id}", unsubscribe)
        .tag("fanout")
        .get("/events/{id}", show_event)
        .tag("fanout")
        .post("/events/{id}/replay", replay)
        .tag("fanout")
        .nest("/jobs", jobs)
        .get("/jobs/{id}", jobs::show)
        .tag("jobs")
        .nest("/orders", placing)
        .nest("/orders", orders)
        .get("/workflows/{name}/instances", orders::instances)
        .tag("orders")
        .get("/workflows/{name}/instances/{id}", orders::instance)
        .tag("orders")
        .nest("/keys", API_KEYS.admin())
        .nest("/ops", OPS.api());
    App::new()
        // Outermost, so it times everything the others do.
        .layer(OPS)
        .layer(request_id)
        .layer(access_log)
        .layer(timing)
        // Unmatched routes, and routes listed in ORIGIN_ROUTES, go to ORIGIN_URL.
        .layer(strangler_fig)
        .get("/healthz", healthz)
        .tag("health")
        .nest("/v1/jobs", job_function)
        .nest("/v1", management)
}

fn consumer() -> Consumer {
    Consumer::new()
        .on("kv.put", |message: Message<QueuedPut>| async move {
            let store = edgeway::kv::Kv::from_env(message.env(), "STORE")?;
            store
                .put_text(&message.body.key, &message.body.value, PutOptions::new())
                .await
                .map_err(Failure::from)
        })
        .fanout(FANOUT)
        .on(edgeway::jobs::INVOKE_KIND, jobs::invoke)
        .on("audit.recorded", record_audit)
        .on_queue("edgeway-ops-usage", |report: Message<Report>| {
            OPS.store(report)
        })
        .max_attempts(5)
        .backoff(Backoff::default())
        .dead_letter_queue("EVENTS_DLQ", "edgeway-events-dlq")
        .record_dead_letters("STORE")
        .idempotent("CLAIMS", 86_400)
        .metered(OPS)
}

/// Every five minutes, jobs whose function never called back are failed;
/// every minute, the alert rules are evaluated over the stored usage.
fn cron() -> Cron {
    Cron::new()
        .on("*/5 * * * *", jobs::sweep)
        .tag("jobs")
        .on("* * * * *", |schedule: Schedule| async move {
            let env = schedule.env().clone();
            OPS.check_alerts(schedule.env(), |alert| publish_alert(env.clone(), alert))
                .await
        })
        .tag("ops")
        .metered(OPS)
}

/// An alert as an event on the `ops-alerts` topic: to signed webhooks like
/// any other, filterable by rule and metric.
async fn publish_alert(env: edgeway::worker::Env, alert: Alert) -> Result<(), Error> {
    let mut attributes = serde_json::Map::new();
    attributes.insert("rule".into(), alert.rule.name.clone().into());
    attributes.insert("metric".into(), alert.metric.into());
    let event = NewEvent {
        event_type: alert.event_type.to_owned(),
        attributes,
        data: serde_json::to_value(&alert)?,
    };
    FANOUT.open(&env)?.publish(ALERTS_TOPIC, event).await?;
    Ok(())
}

edgeway::entry!(
    fetch: app,
    queue: consumer,
    scheduled: cron,
    workflows: { OrderFulfillment: orders::definition },
    objects: { Topics: edgeway::fanout::topics, Claims: edgeway::object::claims },
);
