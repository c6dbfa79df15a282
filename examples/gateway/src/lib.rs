//! The flagship gateway. So far: health, KV browse/get/put/delete under `/v1/kv`,
//! a queue-backed write path with a consumer and a dead-letter log, and the `www/`
//! console served by Workers Static Assets.

use edgeway::kv::{KvKey, PutOptions};
use edgeway::middleware::{body_limit, request_id, timing};
use edgeway::queue::{Backoff, Consumer, Envelope, Failure, Job};
use edgeway::{App, Error, Json, Path, Query, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

edgeway::binding!(Store: Kv = "STORE");
edgeway::binding!(Events: Queue<Envelope> = "EVENTS");

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok", "service": "edgeway-gateway" }))
}

#[derive(Deserialize)]
struct ListQuery {
    prefix: Option<String>,
}

async fn list_keys(store: Store, Query(q): Query<ListQuery>) -> Result<Json<Vec<KvKey>>, Error> {
    Ok(Json(store.list(q.prefix.as_deref().unwrap_or("")).await?))
}

async fn get_key(store: Store, Path(key): Path<String>) -> Result<String, Error> {
    store
        .get_text(&key)
        .await?
        .ok_or_else(|| Error::not_found(format!("no KV key {key:?}")))
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

fn app() -> App {
    let kv = App::new()
        .layer(body_limit(1 << 20))
        .get("/", list_keys)
        .get("/{*key}", get_key)
        .put("/{*key}", put_key)
        .delete("/{*key}", delete_key);
    App::new()
        .layer(request_id)
        .layer(timing)
        .get("/healthz", healthz)
        .tag("health")
        .nest("/v1/kv", kv)
        .post("/v1/queued/kv/{*key}", put_key_later)
        .tag("queues")
        .get("/v1/dead-letters/{id}", dead_letter)
        .tag("queues")
}

fn consumer() -> Consumer {
    Consumer::new()
        .on("kv.put", |job: Job<QueuedPut>| async move {
            let store = edgeway::kv::Kv::from_env(job.env(), "STORE")?;
            store
                .put_text(&job.body.key, &job.body.value, PutOptions::new())
                .await
                .map_err(Failure::from)
        })
        .max_attempts(5)
        .backoff(Backoff::default())
        .dead_letter_queue("EVENTS_DLQ", "edgeway-events-dlq")
        .record_dead_letters("STORE")
        .idempotent("STORE", 86_400)
}

edgeway::entry!(fetch: app, queue: consumer);
