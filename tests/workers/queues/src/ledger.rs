//! A Durable Object for the e2e tests of `edgeway::object` storage: entries
//! written in a transaction that may roll back, and an alarm that writes one.

use edgeway::object::{Definition, ObjectContext, Storage};
use edgeway::{App, Error, Json, StatusCode};
use serde::{Deserialize, Serialize};

const SCHEMA: &str =
    "CREATE TABLE IF NOT EXISTS entries (seq INTEGER PRIMARY KEY AUTOINCREMENT, note TEXT NOT NULL)";

#[derive(Deserialize)]
struct Entries {
    notes: Vec<String>,
    /// Fail after writing them all: the transaction must keep none.
    #[serde(default)]
    fail: bool,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    note: String,
}

#[derive(Deserialize)]
struct Alarm {
    in_ms: u64,
}

fn table(ctx: &ObjectContext) -> Result<Storage, Error> {
    let storage = ctx.storage();
    storage.run(SCHEMA, &[])?;
    Ok(storage)
}

async fn write(ctx: ObjectContext, Json(entries): Json<Entries>) -> Result<StatusCode, Error> {
    let storage = table(&ctx)?;
    storage.transaction(|| {
        for note in &entries.notes {
            storage.run(
                "INSERT INTO entries (note) VALUES (?)",
                &[note.as_str().into()],
            )?;
        }
        if entries.fail {
            return Err(Error::with_status(
                StatusCode::CONFLICT,
                "failed after writing, on purpose",
            ));
        }
        Ok(())
    })?;
    Ok(StatusCode::CREATED)
}

async fn read(ctx: ObjectContext) -> Result<Json<Vec<String>>, Error> {
    let rows: Vec<Entry> = table(&ctx)?.query("SELECT note FROM entries ORDER BY seq", &[])?;
    Ok(Json(rows.into_iter().map(|e| e.note).collect()))
}

async fn set_alarm(
    ctx: ObjectContext,
    Json(alarm): Json<Alarm>,
) -> Result<Json<Option<u64>>, Error> {
    let storage = ctx.storage();
    let at = edgeway::platform::now_ms() as u64 + alarm.in_ms;
    storage.set_alarm(at).await?;
    Ok(Json(storage.alarm().await?))
}

/// The `Ledger` class.
pub fn definition() -> Definition {
    Definition::new(|| {
        App::new()
            .post("/entries", write)
            .get("/entries", read)
            .post("/alarm", set_alarm)
    })
    .on_alarm(|ctx: ObjectContext| async move {
        table(&ctx)?.run("INSERT INTO entries (note) VALUES ('alarm')", &[])?;
        Ok(())
    })
}
