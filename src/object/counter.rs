//! A counter that loses no update: one Durable Object per name, whose add is a
//! single SQL statement. For click counts and other totals many requests change
//! at once (a KV read-modify-write under concurrency keeps only some of them).

use serde::{Deserialize, Serialize};

use super::{Definition, ObjectContext, Objects};
use crate::app::App;
use crate::error::Error;
use crate::extract::Json;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS edgeway_counter (id INTEGER PRIMARY KEY CHECK (id = 0), value INTEGER NOT NULL)";

#[derive(Serialize, Deserialize)]
struct Add {
    by: i64,
}

#[derive(Serialize, Deserialize)]
struct Value {
    value: i64,
}

fn value(ctx: &ObjectContext) -> Result<i64, Error> {
    let storage = ctx.storage();
    storage.run(SCHEMA, &[])?;
    Ok(storage
        .query::<Value>("SELECT value FROM edgeway_counter WHERE id = 0", &[])?
        .first()
        .map_or(0, |v| v.value))
}

async fn add(ctx: ObjectContext, Json(add): Json<Add>) -> Result<Json<Value>, Error> {
    let storage = ctx.storage();
    storage.run(SCHEMA, &[])?;
    storage.run(
        "INSERT INTO edgeway_counter (id, value) VALUES (0, ?) ON CONFLICT (id) DO UPDATE SET value = value + excluded.value",
        &[add.by.into()],
    )?;
    Ok(Json(Value {
        value: value(&ctx)?,
    }))
}

async fn read(ctx: ObjectContext) -> Result<Json<Value>, Error> {
    Ok(Json(Value {
        value: value(&ctx)?,
    }))
}

/// The counter class: register it with `entry!(…, objects: { Counter: counter })`
/// and bind it (`[[durable_objects.bindings]]`, SQLite storage), then use it
/// through [`Counters`].
pub fn counter() -> Definition {
    Definition::new(|| App::new().post("/add", add).get("/", read))
}

/// Named counters in a namespace of [`counter`] objects.
#[derive(Clone)]
pub struct Counters(Objects);

impl Counters {
    /// The counters bound as `binding` in `env`.
    pub fn from_env(env: &worker::Env, binding: &'static str) -> Result<Self, Error> {
        Objects::from_env(env, binding).map(Self)
    }

    /// Adds `by` (negative to subtract) to the counter `name`; returns its new value.
    pub async fn add(&self, name: &str, by: i64) -> Result<i64, Error> {
        let value: Value = self.0.by_name(name).post("/add", &Add { by }).await?;
        Ok(value.value)
    }

    /// The counter's value (0 if it was never added to).
    pub async fn get(&self, name: &str) -> Result<i64, Error> {
        let value: Value = self.0.by_name(name).get("/").await?;
        Ok(value.value)
    }
}
