//! Idempotency claims in Durable Objects: one object per message id, which
//! lets exactly one copy of a message run at a time and remembers that it ran.
//!
//! A KV check-then-write lets two copies of a message that arrive at once (two
//! batches in parallel, or the same envelope on two queues) both pass before
//! either writes; an object answers their claims one after another.

use serde::{Deserialize, Serialize};

use super::{Definition, ObjectContext, Objects, Storage, Stub};
use crate::app::App;
use crate::error::Error;
use crate::extract::Json;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS edgeway_claim (id INTEGER PRIMARY KEY CHECK (id = 0), state TEXT NOT NULL, until_ms INTEGER NOT NULL)";

/// How long a claim holds before another copy may take it over: longer than a
/// consumer invocation may run (15 minutes), so only a crashed one's expires.
const LEASE_MS: u64 = 15 * 60 * 1000;

#[derive(Serialize, Deserialize)]
struct Claim {
    lease_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct Done {
    keep_ms: u64,
}

/// What a claim found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Claimed {
    /// This copy may run.
    Mine,
    /// Another copy is running: try again later.
    Busy,
    /// A copy ran to the end: skip this one.
    Done,
}

#[derive(Deserialize)]
struct Row {
    state: String,
    until_ms: u64,
}

fn table(ctx: &ObjectContext) -> Result<Storage, Error> {
    let storage = ctx.storage();
    storage.run(SCHEMA, &[])?;
    Ok(storage)
}

fn now_ms() -> u64 {
    crate::platform::now_ms() as u64
}

async fn claim(ctx: ObjectContext, Json(claim): Json<Claim>) -> Result<Json<Claimed>, Error> {
    let storage = table(&ctx)?;
    let now = now_ms();
    let current = storage
        .query::<Row>(
            "SELECT state, until_ms FROM edgeway_claim WHERE id = 0",
            &[],
        )?
        .into_iter()
        .next();
    let answer = match current {
        Some(row) if row.state == "done" => Claimed::Done,
        Some(row) if row.until_ms > now => Claimed::Busy,
        // Free, or a crashed copy's lease ran out.
        _ => {
            storage.run(
                "INSERT INTO edgeway_claim (id, state, until_ms) VALUES (0, 'running', ?) ON CONFLICT (id) DO UPDATE SET state = 'running', until_ms = excluded.until_ms",
                &[(now + claim.lease_ms).into()],
            )?;
            Claimed::Mine
        }
    };
    Ok(Json(answer))
}

async fn done(ctx: ObjectContext, Json(done): Json<Done>) -> Result<Json<()>, Error> {
    let storage = table(&ctx)?;
    storage.run(
        "UPDATE edgeway_claim SET state = 'done', until_ms = ? WHERE id = 0",
        &[(now_ms() + done.keep_ms).into()],
    )?;
    // Forget it once it is old enough that no redelivery can come.
    storage.set_alarm(now_ms() + done.keep_ms).await?;
    Ok(Json(()))
}

async fn release(ctx: ObjectContext) -> Result<Json<()>, Error> {
    table(&ctx)?.run("DELETE FROM edgeway_claim", &[])?;
    Ok(Json(()))
}

/// The claim object class: register it with `entry!(…, objects: { Claims:
/// edgeway::object::claims })`, bind it, and name the binding in
/// [`Consumer::idempotent`](crate::queue::Consumer::idempotent).
pub fn claims() -> Definition {
    Definition::new(|| {
        App::new()
            .post("/claim", claim)
            .post("/done", done)
            .post("/release", release)
    })
    .on_alarm(|ctx: ObjectContext| async move {
        table(&ctx)?.run("DELETE FROM edgeway_claim", &[])?;
        Ok(())
    })
}

/// One message's claim, held while its handler runs.
pub(crate) struct Held {
    stub: Stub,
    keep_ms: u64,
}

/// Claims message `id` in the namespace bound as `binding`.
pub(crate) async fn claim_message(
    env: &worker::Env,
    binding: &str,
    id: &str,
    keep_seconds: u64,
) -> Result<(Claimed, Held), Error> {
    let stub = Objects::from_env(env, binding)?.by_name(id);
    let answer: Claimed = stub.post("/claim", &Claim { lease_ms: LEASE_MS }).await?;
    Ok((
        answer,
        Held {
            stub,
            keep_ms: keep_seconds.saturating_mul(1000),
        },
    ))
}

impl Held {
    /// The handler ran to the end: later copies are skipped.
    pub(crate) async fn done(self) -> Result<(), Error> {
        self.stub
            .post::<_, ()>(
                "/done",
                &Done {
                    keep_ms: self.keep_ms,
                },
            )
            .await
    }

    /// The handler failed: the retry (or another copy) may run it.
    pub(crate) async fn release(self) -> Result<(), Error> {
        self.stub.post::<_, ()>("/release", &()).await
    }
}
