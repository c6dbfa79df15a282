//! Each topic's stored subscriptions in a Durable Object of its own, so that
//! concurrent subscribes, unsubscribes and status changes are applied one after
//! another and none is lost (a KV list, read, changed and written back by
//! concurrent requests, kept 8 of 30 concurrent subscribes).
//!
//! The object is an edgeway app over one SQLite table; [`Fanout`](super::Fanout)
//! calls it by topic name. Register it as a class of the worker:
//! `entry!(…, objects: { Topics: edgeway::fanout::topics })`, bound as `TOPICS`
//! (or the name given to `FanoutConfig::topics_binding`) with SQLite storage.

use serde::{Deserialize, Serialize};

use super::model::{Status, Subscription};
use crate::app::App;
use crate::error::Error;
use crate::extract::{Json, Path};
use crate::http::StatusCode;
use crate::object::{Definition, ObjectContext, Storage};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS edgeway_subscriptions (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL)";

/// A status change; `declared` is the subscription from configuration to store
/// when the topic does not hold it yet (declared subscriptions live in config;
/// only their status is stored).
#[derive(Serialize, Deserialize)]
pub(crate) struct StatusChange {
    pub status: Status,
    pub declared: Option<Subscription>,
}

#[derive(Deserialize)]
struct Row {
    body: String,
}

fn table(ctx: &ObjectContext) -> Result<Storage, Error> {
    let storage = ctx.storage();
    storage.run(SCHEMA, &[])?;
    Ok(storage)
}

fn stored(storage: &Storage) -> Result<Vec<Subscription>, Error> {
    storage
        .query::<Row>("SELECT body FROM edgeway_subscriptions ORDER BY seq", &[])?
        .into_iter()
        .map(|row| {
            serde_json::from_str(&row.body)
                .map_err(|e| Error::internal(format!("a stored subscription does not decode: {e}")))
        })
        .collect()
}

fn encode(sub: &Subscription) -> Result<String, Error> {
    serde_json::to_string(sub).map_err(|e| Error::internal(format!("subscription: {e}")))
}

async fn list(ctx: ObjectContext) -> Result<Json<Vec<Subscription>>, Error> {
    Ok(Json(stored(&table(&ctx)?)?))
}

async fn add(
    ctx: ObjectContext,
    Json(sub): Json<Subscription>,
) -> Result<(StatusCode, Json<Subscription>), Error> {
    let written = table(&ctx)?.run(
        "INSERT INTO edgeway_subscriptions (id, body) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
        &[sub.id.clone().into(), encode(&sub)?.into()],
    )?;
    if written == 0 {
        return Err(Error::with_status(
            StatusCode::CONFLICT,
            format!("subscription {:?} already exists", sub.id),
        ));
    }
    Ok((StatusCode::CREATED, Json(sub)))
}

async fn remove(ctx: ObjectContext, Path(id): Path<String>) -> Result<Json<bool>, Error> {
    let removed = table(&ctx)?.run(
        "DELETE FROM edgeway_subscriptions WHERE id = ?",
        &[id.into()],
    )?;
    Ok(Json(removed > 0))
}

/// Sets a subscription's status, unless it is disabled (a 410 is final); stores
/// a declared subscription first when the topic does not hold it. One
/// transaction, so a concurrent change cannot slip in between.
async fn set_status(
    ctx: ObjectContext,
    Path(id): Path<String>,
    Json(change): Json<StatusChange>,
) -> Result<Json<bool>, Error> {
    let storage = table(&ctx)?;
    let changed = storage.transaction(|| {
        let current = stored(&storage)?.into_iter().find(|s| s.id == id);
        let mut sub = match (current, change.declared) {
            (Some(sub), _) => sub,
            (None, Some(declared)) if declared.id == id => declared,
            (None, _) => return Ok(false),
        };
        if sub.status == Status::Disabled {
            return Ok(false);
        }
        sub.status = change.status;
        storage.run(
            "INSERT INTO edgeway_subscriptions (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body",
            &[id.clone().into(), encode(&sub)?.into()],
        )?;
        Ok(true)
    })?;
    Ok(Json(changed))
}

/// The topic object class (see the module docs).
pub fn topics() -> Definition {
    Definition::new(|| {
        App::new()
            .get("/subscriptions", list)
            .post("/subscriptions", add)
            .delete("/subscriptions/{id}", remove)
            .put("/subscriptions/{id}/status", set_status)
    })
}
