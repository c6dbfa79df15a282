//! A worker for the e2e tests of KV, Queues and cron triggers: HTTP routes that
//! produce, a consumer with handlers that succeed, fail once, always fail, and
//! count, scheduled handlers that record and fail, a workflow (`flows`) and a
//! Durable Object counter.

use std::cell::Cell;

mod flows;
mod ledger;

use edgeway::cron::{Cron, Schedule};
use edgeway::kv::PutOptions;
use edgeway::object::Counters;
use edgeway::ops::usage::Report;
use edgeway::ops::Ops;
use edgeway::queue::{Backoff, Consumer, Envelope, Failure, Message, SendOptions};
use edgeway::{App, Error, Json, Path, Query, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

edgeway::binding!(State: Kv = "STATE");
edgeway::binding!(Work: Queue<Envelope> = "WORK");
// A second queue the same consumer serves: the same envelope on both is one
// message, run once (`Consumer::idempotent`).
edgeway::binding!(WorkB: Queue<Envelope> = "WORK_B");
edgeway::binding!(Clicks: Queue<Click> = "CLICKS");
// The same queue, untyped: sends what a `Click` handler cannot decode.
edgeway::binding!(AnyClicks: Queue<Value> = "CLICKS");

/// A plain queue message: what `Producer<Click>` sends and `on_queue` decodes.
#[derive(Serialize, Deserialize)]
struct Click {
    link: String,
    /// Fail the first attempt, to show retries on a plain queue.
    flaky: bool,
}

async fn click(clicks: Clicks, Json(click): Json<Click>) -> Result<StatusCode, Error> {
    clicks.send(&click).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn any_click(clicks: AnyClicks, Json(body): Json<Value>) -> Result<StatusCode, Error> {
    clicks.send(&body).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize)]
struct EnqueueOptions {
    id: Option<String>,
    delay: Option<u32>,
}

async fn enqueue(
    work: Work,
    Path(kind): Path<String>,
    Query(options): Query<EnqueueOptions>,
    Json(body): Json<Value>,
) -> Result<(StatusCode, Json<Value>), Error> {
    let envelope = match options.id {
        Some(id) => Envelope::with_id(kind, id, &body)?,
        None => Envelope::new(kind, &body)?,
    };
    let send = SendOptions {
        delay_seconds: options.delay,
    };
    work.send_with(&envelope, send).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": envelope.id }))))
}

/// Sends one `count-once` envelope, with id `id`, to both work queues at once.
async fn enqueue_twice(
    work: Work,
    work_b: WorkB,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let envelope = Envelope::with_id("count-once", &id, &json!({ "key": id }))?;
    let (a, b) = futures_util::join!(work.send(&envelope), work_b.send(&envelope));
    a?;
    b?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize)]
struct Many {
    pad: Option<usize>,
    kind: Option<String>,
}

async fn enqueue_many(
    work: Work,
    Path(count): Path<usize>,
    Query(many): Query<Many>,
) -> Result<(StatusCode, Json<Value>), Error> {
    let pad = "x".repeat(many.pad.unwrap_or(0));
    let kind = many.kind.as_deref().unwrap_or("count");
    let envelopes = (0..count)
        .map(|i| Envelope::new(kind, &json!({ "i": i, "pad": pad })))
        .collect::<Result<Vec<_>, _>>()?;
    let chunks = work.send_batch(&envelopes, SendOptions::default()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "sent": count, "chunks": chunks })),
    ))
}

async fn oversized(work: Work) -> Result<StatusCode, Error> {
    let envelope = Envelope::new(
        "set",
        &json!({ "key": "big", "value": "x".repeat(200_000) }),
    )?;
    work.send(&envelope).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize)]
struct Ttl {
    ttl: Option<u64>,
}

async fn put_kv(
    state: State,
    Path(key): Path<String>,
    Query(ttl): Query<Ttl>,
    body: String,
) -> Result<StatusCode, Error> {
    let mut options = PutOptions::new();
    if let Some(ttl) = ttl.ttl {
        options = options.expiration_ttl(ttl);
    }
    state.put_text(&key, &body, options).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_kv(state: State, Path(key): Path<String>) -> Result<String, Error> {
    state
        .get_text(&key)
        .await?
        .ok_or_else(|| Error::not_found(format!("no key {key:?}")))
}

#[derive(Deserialize)]
struct Prefix {
    prefix: String,
    page_size: Option<u64>,
}

async fn list_kv(state: State, Query(prefix): Query<Prefix>) -> Result<Json<Value>, Error> {
    let mut names = Vec::new();
    let mut pages = 0;
    let mut listing = state.list_pages(&prefix.prefix);
    if let Some(size) = prefix.page_size {
        listing = listing.page_size(size);
    }
    while let Some(page) = listing.next_page().await? {
        pages += 1;
        names.extend(page.into_iter().map(|k| k.name));
    }
    Ok(Json(
        json!({ "count": names.len(), "pages": pages, "keys": names }),
    ))
}

async fn dead_letter(state: State, Path(id): Path<String>) -> Result<Json<Value>, Error> {
    let letter = Consumer::recorded_dead_letter(&state, &id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no dead letter {id:?}")))?;
    Ok(Json(serde_json::to_value(letter)?))
}

async fn add_to_counter(
    env: edgeway::worker::Env,
    Path(name): Path<String>,
    Json(by): Json<i64>,
) -> Result<Json<i64>, Error> {
    Ok(Json(
        Counters::from_env(&env, "COUNTERS")?.add(&name, by).await?,
    ))
}

async fn read_counter(
    env: edgeway::worker::Env,
    Path(name): Path<String>,
) -> Result<Json<i64>, Error> {
    Ok(Json(
        Counters::from_env(&env, "COUNTERS")?.get(&name).await?,
    ))
}

/// Forwards `/ledgers/{name}/…` to the ledger object `name`, answering with its
/// status and JSON (its errors become this worker's, with their status).
async fn to_ledger(
    env: edgeway::worker::Env,
    method: edgeway::Method,
    Path((name, rest)): Path<(String, String)>,
    body: String,
) -> Result<(StatusCode, Json<Value>), Error> {
    let ledger = edgeway::object::Objects::from_env(&env, "LEDGERS")?.by_name(&name);
    let body = (!body.is_empty()).then_some(body);
    let status = if method == edgeway::Method::Post {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let answer: Value = ledger.call(method, &format!("/{rest}"), body).await?;

    Ok((status, Json(answer)))
}

fn app() -> App {
    App::new()
        .post("/enqueue/{kind}", enqueue)
        .post("/enqueue-many/{count}", enqueue_many)
        .post("/enqueue-twice/{id}", enqueue_twice)
        .post("/oversized", oversized)
        .put("/kv/{key}", put_kv)
        .get("/kv/{key}", get_kv)
        .get("/kv", list_kv)
        .get("/dead-letters/{id}", dead_letter)
        .post("/clicks", click)
        .post("/clicks/raw", any_click)
        .nest("/flows", flows::routes())
        .nest("/metered-flows", flows::metered_routes())
        .nest("/bench-flows", flows::bench_routes())
        .nest("/ops", OPS.api())
        .post("/counters/{name}", add_to_counter)
        .get("/counters/{name}", read_counter)
        .post("/ledgers/{name}/{*rest}", to_ledger)
        .get("/ledgers/{name}/{*rest}", to_ledger)
        .get("/", || async { "queues" })
        // Labelled as text answers are, but Latin-1. This worker adds no
        // header, so this answer takes the text path (a string body) and must
        // fall back to sending its bytes as they are (tests/queues.rs).
        // A text answer that starts with a byte-order mark, which is part of it.
        .get("/bom", || async { "\u{feff}bom" })
        .get("/mislabelled", || async {
            edgeway::Response::builder(StatusCode::OK)
                .header("content-type", "text/plain;charset=UTF-8")
                .body(b"caf\xe9".to_vec())
        })
        // Its polls flush the tallies of the metered workflow's steps.
        .layer(OPS)
}

/// Attribution of the metered workflow's steps (tests/workflows.rs).
pub const OPS: Ops = Ops::new("OPS_USAGE", "OPS_DB");

#[derive(Deserialize)]
struct Set {
    key: String,
    value: String,
}

#[derive(Deserialize)]
struct Keyed {
    key: String,
}

#[derive(Deserialize)]
struct Count {
    i: usize,
}

fn kv(job_env: &edgeway::worker::Env) -> Result<edgeway::kv::Kv, Failure> {
    edgeway::kv::Kv::from_env(job_env, "STATE").map_err(Failure::from)
}

thread_local! {
    static IN_FLIGHT: Cell<u32> = const { Cell::new(0) };
    static PEAK: Cell<u32> = const { Cell::new(0) };
    static SERIAL_IN_FLIGHT: Cell<u32> = const { Cell::new(0) };
    static SERIAL_PEAK: Cell<u32> = const { Cell::new(0) };
}

/// Holds `message` for 200 ms, counting the handlers doing so at once in
/// `in_flight`, then stores the highest count seen so far (`peak`) under
/// `<prefix>:<i>`.
async fn record_peak(
    message: Message<Count>,
    prefix: &str,
    in_flight: &'static std::thread::LocalKey<Cell<u32>>,
    peak: &'static std::thread::LocalKey<Cell<u32>>,
) -> Result<(), Failure> {
    let now = in_flight.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    peak.with(|p| p.set(p.get().max(now)));
    edgeway::worker::Delay::from(std::time::Duration::from_millis(200)).await;
    in_flight.with(|c| c.set(c.get() - 1));
    let highest = peak.with(Cell::get);
    kv(message.env())?
        .put_text(
            &format!("{prefix}:{:04}", message.body.i),
            &highest.to_string(),
            PutOptions::new(),
        )
        .await
        .map_err(Failure::from)
}

fn consumer() -> Consumer {
    Consumer::new()
        .on("set", |message: Message<Set>| async move {
            let kv = kv(message.env())?;
            kv.put_text(&message.body.key, &message.body.value, PutOptions::new())
                .await
                .map_err(Failure::from)
        })
        .on("flaky", |message: Message<Keyed>| async move {
            if message.attempts < 2 {
                return Err(Failure::transient("the first attempt always fails"));
            }
            let kv = kv(message.env())?;
            kv.put_text(
                &message.body.key,
                &message.attempts.to_string(),
                PutOptions::new(),
            )
            .await
            .map_err(Failure::from)
        })
        // bench/workflows' anchor: when a message arrived, for its round trip.
        .on("ping", |message: Message<Value>| async move {
            let kv = kv(message.env())?;
            let arrived = edgeway::platform::now_ms().to_string();
            kv.put_text(&format!("ping:{}", message.id), &arrived, PutOptions::new())
                .await
                .map_err(Failure::from)
        })
        .on("poison", |_job: Message<Value>| async move {
            Err(Failure::permanent(
                "poison pill: this message can never be processed",
            ))
        })
        .on("count", |message: Message<Count>| async move {
            let kv = kv(message.env())?;
            kv.put_text(
                &format!("count:{:04}", message.body.i),
                "1",
                PutOptions::new(),
            )
            .await
            .map_err(Failure::from)
        })
        // A kind that aggregates: one call for all of a batch's `sum` messages,
        // adding their `i`s to one counter (and counting the calls).
        .on_batch("sum", |messages: Vec<Message<Count>>| async move {
            let Some(first) = messages.first() else {
                return Ok(());
            };
            let counters = Counters::from_env(first.env(), "COUNTERS")?;
            let total: i64 = messages.iter().map(|m| m.body.i as i64).sum();
            counters.add("sum", total).await?;
            counters.add("sum-calls", 1).await?;
            Ok(())
        })
        // Holds long enough for a copy on the other queue to arrive meanwhile,
        // then counts the run in a counter object (which loses no update).
        .on("count-once", |message: Message<Keyed>| async move {
            // Long enough that the copy on the other queue, whose batch may be
            // flushed up to a second later on a busy machine, finds it running.
            edgeway::worker::Delay::from(std::time::Duration::from_millis(3000)).await;
            Counters::from_env(message.env(), "COUNTERS")?
                .add(&format!("once:{}", message.body.key), 1)
                .await?;
            Ok(())
        })
        .on("tally", |message: Message<Keyed>| async move {
            let kv = kv(message.env())?;
            let current: u32 = kv
                .get_text(&message.body.key)
                .await?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            kv.put_text(
                &message.body.key,
                &(current + 1).to_string(),
                PutOptions::new(),
            )
            .await
            .map_err(Failure::from)
        })
        // Counts handlers running at the same time in this isolate, to show that
        // one batch is processed concurrently and within the configured limit.
        .on("overlap", |message: Message<Count>| {
            record_peak(message, "overlap", &IN_FLIGHT, &PEAK)
        })
        // The same work, limited to one at a time by `.limit("serial", 1)`.
        .on("serial", |message: Message<Count>| {
            record_peak(message, "serial", &SERIAL_IN_FLIGHT, &SERIAL_PEAK)
        })
        .limit("serial", 1)
        .on_queue("edgeway-clicks", |message: Message<Click>| async move {
            if message.body.flaky && message.attempts < 2 {
                // The id of this attempt, to compare with the next one's.
                kv(message.env())?
                    .put_text(
                        &format!("click-first:{}", message.body.link),
                        &message.id,
                        PutOptions::new(),
                    )
                    .await?;
                return Err(Failure::transient(
                    "the first attempt of a flaky click fails",
                ));
            }
            let seen =
                json!({"id": message.id, "kind": message.kind, "attempts": message.attempts});
            kv(message.env())?
                .put_json(
                    &format!("click:{}", message.body.link),
                    &seen,
                    PutOptions::new(),
                )
                .await
                .map_err(Failure::from)
        })
        .max_attempts(4)
        .backoff(Backoff {
            base_seconds: 1,
            max_seconds: 2,
        })
        .concurrency(8)
        .on_queue("edgeway-queues-ops", |report: Message<Report>| {
            OPS.store(report)
        })
        .dead_letter_queue("DLQ", "edgeway-work-dlq")
        .record_dead_letters("STATE")
        .idempotent("CLAIMS", 3600)
}

/// Every five minutes: record what fired. Nightly: fail, to show a failure is
/// reported, not swallowed.
fn cron() -> Cron {
    Cron::new()
        .on("*/5 * * * *", |schedule: Schedule| async move {
            let fired =
                json!({"cron": schedule.cron, "scheduled_time_ms": schedule.scheduled_time_ms});
            State::from_env(schedule.env())?
                .put_json("cron:last", &fired, PutOptions::new())
                .await
        })
        .on("0 3 * * *", |_| async {
            Err(Error::internal("the nightly report failed on purpose"))
        })
}

edgeway::entry!(
    fetch: app,
    queue: consumer,
    scheduled: cron,
    workflows: {
        Flow: flows::definition,
        MeteredFlow: flows::metered_definition,
        BenchFlow: flows::bench_definition,
    },
    objects: {
        Counter: edgeway::object::counter,
        Ledger: ledger::definition,
        Claims: edgeway::object::claims,
    },
);
