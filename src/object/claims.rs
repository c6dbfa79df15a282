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

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS edgeway_claim (id INTEGER PRIMARY KEY CHECK (id = 0), state TEXT NOT NULL, until_ms INTEGER NOT NULL, holder TEXT NOT NULL DEFAULT '')";

/// How long a claim holds before another copy may take it over: longer than a
/// consumer invocation may run (15 minutes), so only a crashed one's expires.
const LEASE_MS: u64 = 15 * 60 * 1000;

/// A claim by one delivery: `holder` is the runtime's id of the queue message
/// carrying it, the same on every redelivery of that message and different for
/// another copy.
#[derive(Serialize, Deserialize)]
struct Claim {
    lease_ms: u64,
    holder: String,
}

#[derive(Serialize, Deserialize)]
struct Done {
    keep_ms: u64,
    holder: String,
}

#[derive(Serialize, Deserialize)]
struct Release {
    holder: String,
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
    holder: String,
}

fn table(ctx: &ObjectContext) -> Result<Storage, Error> {
    let storage = ctx.storage();
    storage.run(SCHEMA, &[])?;
    Ok(storage)
}

fn now_ms() -> u64 {
    crate::platform::now_ms() as u64
}

/// What a claim by `holder` at `now` finds, given the stored row.
fn decide(current: Option<&Row>, holder: &str, now: u64) -> Claimed {
    match current {
        Some(row) if row.state == "done" => Claimed::Done,
        // Another copy runs it. A redelivery of the message that holds the claim
        // is not another copy: its earlier run died (a crashed or evicted
        // isolate) without releasing, so it takes its claim back.
        Some(row) if row.until_ms > now && row.holder != holder => Claimed::Busy,
        // Free, or a lease that ran out.
        _ => Claimed::Mine,
    }
}

async fn claim(ctx: ObjectContext, Json(claim): Json<Claim>) -> Result<Json<Claimed>, Error> {
    let storage = table(&ctx)?;
    let now = now_ms();
    let current = storage
        .query::<Row>(
            "SELECT state, until_ms, holder FROM edgeway_claim WHERE id = 0",
            &[],
        )?
        .into_iter()
        .next();
    let answer = decide(current.as_ref(), &claim.holder, now);
    match answer {
        Claimed::Done | Claimed::Busy => {}
        Claimed::Mine => {
            storage.run(
                "INSERT INTO edgeway_claim (id, state, until_ms, holder) VALUES (0, 'running', ?, ?) ON CONFLICT (id) DO UPDATE SET state = 'running', until_ms = excluded.until_ms, holder = excluded.holder",
                &[(now + claim.lease_ms).into(), claim.holder.into()],
            )?;
        }
    }
    if answer == Claimed::Mine {
        // A claim nobody ends is forgotten when its lease runs out.
        storage.set_alarm(now + claim.lease_ms).await?;
    }
    Ok(Json(answer))
}

async fn done(ctx: ObjectContext, Json(done): Json<Done>) -> Result<Json<()>, Error> {
    let storage = table(&ctx)?;
    let until = now_ms() + done.keep_ms;
    let marked = storage.run(
        "UPDATE edgeway_claim SET state = 'done', until_ms = ? WHERE id = 0 AND holder = ?",
        &[until.into(), done.holder.into()],
    )?;
    // Forget it once it is old enough that no redelivery can come. (Not ours
    // any more: a copy that took over after the lease ran out marks it.)
    if marked > 0 {
        storage.set_alarm(until).await?;
    }
    Ok(Json(()))
}

async fn release(ctx: ObjectContext, Json(release): Json<Release>) -> Result<Json<()>, Error> {
    let storage = table(&ctx)?;
    let removed = storage.run(
        "DELETE FROM edgeway_claim WHERE id = 0 AND holder = ? AND state = 'running'",
        &[release.holder.into()],
    )?;
    if removed > 0 {
        forget(&ctx).await?;
    }
    Ok(Json(()))
}

/// Deletes the object's storage and alarm, so an id leaves nothing behind.
async fn forget(ctx: &ObjectContext) -> Result<(), Error> {
    let storage = ctx.storage();
    storage.delete_alarm().await?;
    storage.delete_all().await
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
        // The lease of a running claim ran out, or a done id's TTL did.
        let due = table(&ctx)?
            .query::<Row>(
                "SELECT state, until_ms, holder FROM edgeway_claim WHERE id = 0",
                &[],
            )?
            .into_iter()
            .next()
            .is_none_or(|row| row.until_ms <= now_ms());
        if due {
            forget(&ctx).await?;
        }
        Ok(())
    })
}

/// One message's claim, held while its handler runs.
pub(crate) struct Held {
    stub: Stub,
    keep_ms: u64,
    holder: String,
}

/// Claims message `id` in the namespace bound as `binding`, for the delivery
/// whose runtime message id is `holder`.
pub(crate) async fn claim_message(
    env: &worker::Env,
    binding: &str,
    id: &str,
    holder: &str,
    keep_seconds: u64,
) -> Result<(Claimed, Held), Error> {
    let stub = Objects::from_env(env, binding)?.by_name(id);
    let claim = Claim {
        lease_ms: LEASE_MS,
        holder: holder.to_owned(),
    };
    let answer: Claimed = stub.post("/claim", &claim).await?;
    Ok((
        answer,
        Held {
            stub,
            keep_ms: keep_seconds.saturating_mul(1000),
            holder: holder.to_owned(),
        },
    ))
}

impl Held {
    /// The handler ran to the end: later copies are skipped.
    pub(crate) async fn done(self) -> Result<(), Error> {
        let done = Done {
            keep_ms: self.keep_ms,
            holder: self.holder,
        };
        self.stub.post::<_, ()>("/done", &done).await
    }

    /// The handler failed: the retry (or another copy) may run it.
    pub(crate) async fn release(self) -> Result<(), Error> {
        let release = Release {
            holder: self.holder,
        };
        self.stub.post::<_, ()>("/release", &release).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: &str, until_ms: u64, holder: &str) -> Row {
        Row {
            state: state.into(),
            until_ms,
            holder: holder.into(),
        }
    }

    #[test]
    fn the_first_claim_is_mine_and_a_done_id_is_skipped() {
        assert_eq!(decide(None, "m1", 100), Claimed::Mine);
        assert_eq!(
            decide(Some(&row("done", 900, "m1")), "m2", 100),
            Claimed::Done
        );
        assert_eq!(
            decide(Some(&row("done", 900, "m1")), "m1", 100),
            Claimed::Done
        );
    }

    #[test]
    fn another_copy_waits_while_the_lease_runs() {
        assert_eq!(
            decide(Some(&row("running", 900, "m1")), "m2", 100),
            Claimed::Busy
        );
        // Once the lease ran out, the holder is presumed dead.
        assert_eq!(
            decide(Some(&row("running", 900, "m1")), "m2", 901),
            Claimed::Mine
        );
    }

    #[test]
    fn a_redelivery_of_the_holder_takes_its_claim_back() {
        assert_eq!(
            decide(Some(&row("running", 900, "m1")), "m1", 100),
            Claimed::Mine
        );
    }
}
