//! Serverless as an economic decision (feature `ops`): every request, queue
//! message, cron run and workflow step attempt attributed to its feature and
//! route with its wall time, cold start, outcome, bytes and billable
//! operations; tallied per isolate, flushed at most once a minute as one queue
//! message, stored in D1, and served as usage summaries and a cost projection
//! against Lambda and containers.
//!
//! ```no_run
//! use edgeway::cron::{Cron, Schedule};
//! use edgeway::ops::usage::Report;
//! use edgeway::ops::Ops;
//! use edgeway::queue::{Consumer, Message};
//! use edgeway::App;
//!
//! // The queue the isolates flush to, and the D1 database the reports land in.
//! const OPS: Ops = Ops::new("OPS_USAGE", "OPS_DB");
//!
//! fn app() -> App {
//!     App::new()
//!         .layer(OPS) // outermost: it times everything inside
//!         .get("/orders", || async { "[]" })
//!         .tag("orders")
//!         .nest("/ops", OPS.api())
//! }
//!
//! fn consumer() -> Consumer {
//!     Consumer::new()
//!         .on_queue("edgeway-ops-usage", |m: Message<Report>| OPS.store(m))
//!         .metered(OPS) // each message, to its kind
//! }
//!
//! fn cron() -> Cron {
//!     Cron::new()
//!         .on("0 * * * *", |_: Schedule| async { Ok(()) })
//!         .tag("reports")
//!         .metered(OPS) // each run, to its tag
//! }
//! # app().build().unwrap();
//! ```
//!
//! What is counted, and how, is in docs/OPERATIONS.md. Wall time is what the
//! runtime lets a worker see; CPU time is not reachable from inside it, so the
//! cost projection bills wall time as CPU time on Workers, an upper bound, and
//! says so.

pub mod alert;
pub mod histogram;
mod meter;
pub mod usage;

pub(crate) use meter::{count, Op};

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use edgeway_protocol::cost::{self, Assumptions, Prices, Projection};
use serde::Deserialize;

use crate::d1::{rows, Database};
use crate::error::{Error, ErrorKind};
use crate::extract::{Json, Query};
use crate::handler::BoxFuture;
use crate::http::Method;
use crate::middleware::{Middleware, Next};
use crate::queue::{Failure, Message, Producer};
use crate::request::Request;
use crate::response::Response;
use crate::App;
use meter::{Counter, Metered};
use usage::{
    Entry, GroupBy, Invocation, Key, Operations, Outcome, Report, Stats, Summary, Tally, Trigger,
};
use worker::Env;

/// How often an isolate flushes, at most: once a minute.
const FLUSH_SECONDS: u32 = 60;
/// The setting that shortens the flush interval, 1 to 60 seconds (tests use 1).
pub const FLUSH_SETTING: &str = "OPS_FLUSH_SECONDS";
/// The setting holding price overrides, a JSON object of
/// `edgeway_protocol::cost::Prices` fields.
pub const PRICES_SETTING: &str = "OPS_PRICES";
/// The setting holding assumption overrides, a JSON object of
/// `edgeway_protocol::cost::Assumptions` fields.
pub const ASSUMPTIONS_SETTING: &str = "OPS_ASSUMPTIONS";
/// The longest period one usage or cost query covers.
const MAX_RANGE_MS: u64 = 31 * 24 * 3600 * 1000;
/// The largest queue message a flush sends: a report of many keys goes out in
/// parts, each well under the 128 KB message limit.
const MAX_MESSAGE_BYTES: usize = 100 * 1024;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS edgeway_usage (report TEXT NOT NULL, isolate TEXT NOT NULL, from_ms INTEGER NOT NULL, to_ms INTEGER NOT NULL, trigger TEXT NOT NULL, feature TEXT NOT NULL, route TEXT NOT NULL, stats TEXT NOT NULL, PRIMARY KEY (report, trigger, feature, route))
CREATE INDEX IF NOT EXISTS edgeway_usage_to ON edgeway_usage (to_ms)
CREATE TABLE IF NOT EXISTS edgeway_ops_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)
CREATE TABLE IF NOT EXISTS edgeway_alert_incidents (rule TEXT PRIMARY KEY, incident TEXT NOT NULL, opened_ms INTEGER NOT NULL)";
/// The incident's rule as it fired (JSON), added to tables made without it.
const ADD_DEFINITION: &str =
    "ALTER TABLE edgeway_alert_incidents ADD COLUMN definition TEXT NOT NULL DEFAULT ''";

/// The topic alerts are published to, by whatever `publish` a worker gives
/// [`Ops::check_alerts`] (the gateway's fan-out).
pub const ALERTS_TOPIC: &str = "ops-alerts";

/// Attribution, configured once as a `const`: the queue isolates flush their
/// tallies to, and the D1 database a consumer stores them in.
///
/// As a [layer](crate::App::layer) (put it outermost), it meters every request
/// the app serves: its route's tag and pattern, wall time, whether it was its
/// isolate's first, its status, bytes in and out, and the KV reads, writes,
/// deletes and lists, queue operations, subrequests and Lambda invocations it
/// made through edgeway. [`Consumer::metered`](crate::queue::Consumer::metered),
/// [`Cron::metered`](crate::cron::Cron::metered) and
/// `workflow::Definition::metered` (feature `workflows`) do the same
/// for queue messages, cron runs and workflow step attempts. The tally stays
/// in the isolate and is flushed by its first invocation after the flush
/// interval (60 s): a request with `waitUntil`, the others before they return.
#[derive(Clone, Copy, Debug)]
pub struct Ops {
    queue: &'static str,
    database: &'static str,
}

thread_local! {
    static TALLY: RefCell<Tally> = RefCell::new(Tally::default());
    /// When this isolate last flushed (ms); 0 before its first invocation.
    static LAST_FLUSH: Cell<f64> = const { Cell::new(0.0) };
    /// The flush interval this isolate uses, ms (read from settings once).
    static FLUSH_MS: Cell<f64> = const { Cell::new(0.0) };
    static ISOLATE: String = crate::platform::random_hex::<8>();
    static SCHEMA_READY: Cell<bool> = const { Cell::new(false) };
}

impl Ops {
    /// Tallies flushed to the queue bound as `queue`, stored in the D1
    /// database bound as `database`.
    pub const fn new(queue: &'static str, database: &'static str) -> Self {
        Self { queue, database }
    }

    /// The usage, cost and alert routes, tagged `ops`, to
    /// [nest](crate::App::nest) behind authentication: `GET
    /// /usage?since=&until=&by=feature|route` and `GET /cost?since=&until=`
    /// (times in ms since the epoch; the default is the last hour), `GET
    /// /alerts` (the rules and open incidents) and `PUT /alerts` (the rules, a
    /// JSON list of [`alert::Rule`]; a bad list is a 422 naming every problem).
    pub fn api(self) -> App {
        App::new()
            .get("/alerts", move |env: Env| self.alerts(env))
            .tag("ops")
            .put("/alerts", move |env: Env, rules: String| {
                self.set_rules(env, rules)
            })
            .tag("ops")
            .get(
                "/usage",
                move |env: Env, Query(range): Query<RangeQuery>| self.usage(env, range),
            )
            .tag("ops")
            .get("/cost", move |env: Env, Query(range): Query<RangeQuery>| {
                self.cost(env, range)
            })
            .tag("ops")
    }

    /// Stores a flushed report (the consumer's handler for the ops queue).
    /// Storing it twice keeps one copy. A [metered](crate::queue::Consumer::metered)
    /// consumer leaves these messages out of the tally: counting them would make
    /// every report send another.
    pub async fn store(self, message: Message<Report>) -> Result<(), Failure> {
        meter::exclude();
        let db = self.db(message.env()).map_err(Failure::from)?;
        self.ready(&db).await.map_err(Failure::from)?;
        let report = &message.body;
        let rows: Vec<serde_json::Value> = report
            .entries
            .iter()
            .map(|entry| {
                let stats = serde_json::to_string(&entry.stats).expect("stats serialize");
                serde_json::json!([
                    report.id,
                    report.isolate,
                    report.from_ms,
                    report.to_ms,
                    entry.key.trigger.as_str(),
                    entry.key.feature,
                    entry.key.route,
                    stats,
                ])
            })
            .collect();
        db.batch(
            "INSERT OR IGNORE INTO edgeway_usage VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            &serde_json::Value::Array(rows).to_string(),
        )
        .await
        .map_err(|e| {
            Failure::from(Error::new(
                ErrorKind::Upstream,
                format!("store ops usage: {e}"),
            ))
        })
    }

    async fn meter(self, req: Request, next: Next) -> Response {
        let started = crate::platform::now_ms();
        let cold = req.is_cold_start();
        let route = req
            .route()
            .map(|route| (route.pattern.clone(), route.feature.clone()));
        // Reading a header crosses into JS: only requests with a body pay it.
        let bytes_in = match req.method() {
            Method::Get | Method::Head | Method::Options => 0,
            _ => req
                .header("content-length")
                .and_then(|length| length.parse().ok())
                .unwrap_or(0),
        };
        let flush_to = if due(started, || req.env().ok()) {
            req.env().ok().zip(req.context().ok())
        } else {
            None
        };
        let counter = Rc::new(Counter::default());
        let response = Metered::new(next.run(req), counter.clone()).await;
        let ended = crate::platform::now_ms();
        let bytes_out = response
            .body()
            .as_bytes()
            .map(|bytes| bytes.len() as u64)
            .or_else(|| {
                response
                    .headers()
                    .get("content-length")
                    .and_then(|l| l.parse().ok())
            })
            .unwrap_or(0);
        let (pattern, feature) = match &route {
            Some((pattern, feature)) => (&**pattern, feature.as_deref().unwrap_or("-")),
            None => ("-", "-"),
        };
        record(
            &counter,
            Invocation {
                trigger: Trigger::Fetch,
                feature,
                route: pattern,
                wall_ms: ended - started,
                cold,
                outcome: Outcome::Status(response.status().as_u16()),
                bytes_in,
                bytes_out,
                operations: Operations::default(),
            },
            ended,
        );
        if let Some((env, ctx)) = flush_to {
            if let Some(report) = take_report(ended) {
                ctx.wait_until(self.send(env, report));
            }
        }
        response
    }

    /// Starts attributing one invocation that is not a request (a queue
    /// message, a cron run, a workflow step attempt): wrap its work in
    /// [`Attribution::meter`], then [`Attribution::finish`] it.
    pub(crate) fn attribution(self, trigger: Trigger, cold: bool) -> Attribution {
        Attribution {
            ops: self,
            trigger,
            cold,
            started: crate::platform::now_ms(),
            counter: Rc::new(Counter::default()),
        }
    }

    /// Sends this isolate's tally when the flush interval has passed, and
    /// returns once it is sent: for invocations that are not requests, which
    /// have no response to outlive and whose promise keeps the isolate until
    /// the send is done.
    pub(crate) async fn flush_if_due(self, env: &worker::Env) {
        let now = crate::platform::now_ms();
        if due(now, || Some(env.clone())) {
            if let Some(report) = take_report(now) {
                self.send(env.clone(), report).await;
            }
        }
    }

    /// Sends `report` to the queue, in parts; a failure is logged, not
    /// raised: attribution never fails the invocation it measures.
    async fn send(self, env: worker::Env, report: Report) {
        let sent = async {
            let producer = Producer::<Report>::from_env(&env, self.queue)?;
            for part in report.into_parts(MAX_MESSAGE_BYTES) {
                producer.send(&part).await?;
            }
            Ok::<_, Error>(())
        }
        .await;
        if let Err(err) = sent {
            crate::observe::Line::new()
                .field("msg", "ops usage flush failed")
                .field("detail", &err.detail())
                .write(crate::observe::Level::Warn);
        }
    }

    fn db(self, env: &worker::Env) -> Result<Database, Error> {
        Database::open(env, self.database, "ops usage")
    }

    async fn ready(self, db: &Database) -> Result<(), Error> {
        if SCHEMA_READY.get() {
            return Ok(());
        }
        db.exec(SCHEMA)
            .await
            .map_err(|e| Error::internal(format!("create the ops usage table: {e}")))?;
        // Incident tables made before incidents kept their rule: add the
        // column (their open incidents have no rule to resolve with).
        if let Err(e) = db.exec(ADD_DEFINITION).await {
            if !e.contains("duplicate column") {
                return Err(Error::internal(format!(
                    "add the incidents' rule column: {e}"
                )));
            }
        }
        SCHEMA_READY.set(true);
        Ok(())
    }

    /// The stored entries flushed in `[since, until)`, with when each was
    /// flushed.
    async fn entries(self, env: &Env, range: Range) -> Result<Vec<(u64, Entry)>, Error> {
        #[derive(Deserialize)]
        struct Row {
            trigger: String,
            feature: String,
            route: String,
            to_ms: f64,
            stats: String,
        }
        let db = self.db(env)?;
        self.ready(&db).await?;
        let text = db
            .query(
                "SELECT trigger, feature, route, to_ms, stats FROM edgeway_usage WHERE to_ms >= ?1 AND to_ms < ?2",
                serde_json::json!([range.since, range.until]),
                "ops usage",
            )
            .await?;
        let rows: Vec<Row> = rows(&text, "ops usage")?;
        rows.into_iter()
            .map(|row| {
                let stats: Stats = serde_json::from_str(&row.stats)
                    .map_err(|e| Error::internal(format!("a stored ops usage row: {e}")))?;
                let trigger = Trigger::parse(&row.trigger).ok_or_else(|| {
                    Error::internal(format!("a stored trigger {:?}", row.trigger))
                })?;
                let key = Key {
                    trigger,
                    feature: row.feature,
                    route: row.route,
                };
                Ok((row.to_ms as u64, Entry { key, stats }))
            })
            .collect()
    }

    /// The stored alert rules (none until set).
    async fn rules(self, db: &Database) -> Result<Vec<alert::Rule>, Error> {
        #[derive(Deserialize)]
        struct Setting {
            value: String,
        }
        let text = db
            .query(
                "SELECT value FROM edgeway_ops_settings WHERE name = 'alert_rules'",
                serde_json::json!([]),
                "the alert rules",
            )
            .await?;
        let rows: Vec<Setting> = rows(&text, "the alert rules")?;
        match rows.first() {
            None => Ok(Vec::new()),
            Some(row) => alert::parse_rules(&row.value).map_err(|problems| {
                Error::internal(format!("the stored alert rules: {}", problems.join("; ")))
            }),
        }
    }

    /// The open incidents: rule, incident id, when it opened.
    async fn incidents(self, db: &Database) -> Result<Vec<Incident>, Error> {
        let text = db
            .query(
                "SELECT rule, incident, opened_ms, definition FROM edgeway_alert_incidents ORDER BY rule",
                serde_json::json!([]),
                "the alert incidents",
            )
            .await?;
        rows(&text, "the alert incidents")
    }

    async fn alerts(self, env: Env) -> Result<Json<serde_json::Value>, Error> {
        let db = self.db(&env)?;
        self.ready(&db).await?;
        let rules = self.rules(&db).await?;
        let incidents = self.incidents(&db).await?;
        Ok(Json(
            serde_json::json!({ "rules": rules, "incidents": incidents }),
        ))
    }

    async fn set_rules(self, env: Env, text: String) -> Result<Json<Vec<alert::Rule>>, Error> {
        let rules = alert::parse_rules(&text).map_err(|problems| {
            Error::new(
                ErrorKind::Validation,
                format!("the alert rules are not valid: {}", problems.join("; ")),
            )
            .with_json_member(
                "errors",
                serde_json::Value::Array(problems.into_iter().map(Into::into).collect()),
            )
        })?;
        let db = self.db(&env)?;
        self.ready(&db).await?;
        let stored = serde_json::to_string(&rules).expect("rules serialize");
        db.run(
            "INSERT INTO edgeway_ops_settings VALUES ('alert_rules', ?1) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            &serde_json::json!([stored]).to_string(),
        )
        .await
        .map_err(|e| Error::internal(format!("store the alert rules: {e}")))?;
        Ok(Json(rules))
    }

    /// Evaluates every alert rule over its window of stored usage (a cron
    /// handler's work, every minute): a new breach opens an incident and
    /// `publish`es `ops.alert.fired`, a cleared one closes it and publishes
    /// `ops.alert.resolved`. Each happens once per incident, however many runs
    /// overlap: the incident row is the lock. When `publish` fails, the
    /// change is undone, so the next run tries again. An incident whose rule
    /// was removed resolves on the next run, with the rule as it fired.
    pub async fn check_alerts<F, Fut>(self, env: &Env, publish: F) -> Result<(), Error>
    where
        F: Fn(alert::Alert) -> Fut,
        Fut: std::future::Future<Output = Result<(), Error>>,
    {
        let db = self.db(env)?;
        self.ready(&db).await?;
        let rules = self.rules(&db).await?;
        let open = self.incidents(&db).await?;
        // Rules removed while their incident was open: resolved now, with the
        // rule as it fired.
        let removed: Vec<alert::Rule> = open
            .iter()
            .filter(|incident| !rules.iter().any(|rule| rule.name == incident.rule))
            // Through `parse_rules`, which the stored rules take too: one
            // decoder of rules in the module, not two.
            .filter_map(|incident| {
                match alert::parse_rules(&format!("[{}]", incident.definition)) {
                    Ok(mut one) => one.pop(),
                    Err(problems) => {
                        let msg = "an open incident's rule was removed and its definition \
                                   is unreadable; it stays open";
                        crate::observe::Line::new()
                            .field("msg", msg)
                            .field("rule", &incident.rule)
                            .field("incident", &incident.incident)
                            .field("problems", &problems)
                            .write(crate::observe::Level::Warn);
                        None
                    }
                }
            })
            .collect();
        if rules.is_empty() && removed.is_empty() {
            return Ok(());
        }
        let now = crate::platform::now_ms() as u64;
        let widest = rules
            .iter()
            .chain(&removed)
            .map(|r| r.window_minutes)
            .max()
            .unwrap_or(1);
        let stored = self
            .entries(
                env,
                Range {
                    since: now.saturating_sub(u64::from(widest) * 60_000),
                    until: now + 1,
                },
            )
            .await?;
        let mut failed = Vec::new();
        let checked = rules.iter().map(|rule| (rule, false));
        for (rule, is_removed) in checked.chain(removed.iter().map(|rule| (rule, true))) {
            let since = now.saturating_sub(u64::from(rule.window_minutes) * 60_000);
            let observation = rule.observe(
                stored
                    .iter()
                    .filter(|(flushed, _)| *flushed >= since)
                    .map(|(_, entry)| entry),
            );
            let incident = open.iter().find(|i| i.rule == rule.name);
            let breached = !is_removed && rule.breached(&observation);
            // Kept with an incident that opens (or is opened again).
            let definition = || serde_json::to_string(rule).expect("a rule serializes");
            let changed = match alert::transition(breached, incident.is_some()) {
                alert::Transition::Stay => continue,
                alert::Transition::Fire => {
                    let id = crate::platform::new_id();
                    let opened = db
                        .run(
                            "INSERT OR IGNORE INTO edgeway_alert_incidents (rule, incident, opened_ms, definition) VALUES (?1, ?2, ?3, ?4)",
                            &serde_json::json!([rule.name, id, now, definition()]).to_string(),
                        )
                        .await
                        .map_err(|e| Error::internal(format!("open an incident: {e}")))?;
                    (opened == 1).then(|| (rule.alert(true, &id, &observation), id))
                }
                alert::Transition::Resolve => {
                    let id = incident.map(|i| i.incident.clone()).unwrap_or_default();
                    let closed = db
                        .run(
                            "DELETE FROM edgeway_alert_incidents WHERE rule = ?1 AND incident = ?2",
                            &serde_json::json!([rule.name, id]).to_string(),
                        )
                        .await
                        .map_err(|e| Error::internal(format!("close an incident: {e}")))?;
                    (closed == 1).then(|| (rule.alert(false, &id, &observation), id))
                }
            };
            // Another run made this change first: it publishes.
            let Some((alert, id)) = changed else { continue };
            let fired = alert.event_type == alert::FIRED;
            if let Err(err) = publish(alert).await {
                // Undo, so the next run publishes it.
                let undo = if fired {
                    (
                        "DELETE FROM edgeway_alert_incidents WHERE rule = ?1 AND incident = ?2",
                        serde_json::json!([rule.name, id]),
                    )
                } else {
                    (
                        "INSERT OR IGNORE INTO edgeway_alert_incidents (rule, incident, opened_ms, definition) VALUES (?1, ?2, ?3, ?4)",
                        serde_json::json!([rule.name, id, now, definition()]),
                    )
                };
                let _ = db.run(undo.0, &undo.1.to_string()).await;
                failed.push(format!("{}: {}", rule.name, err.detail()));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Upstream,
                format!("publishing alerts failed: {}", failed.join("; ")),
            ))
        }
    }

    async fn usage(self, env: Env, query: RangeQuery) -> Result<Json<UsageAnswer>, Error> {
        let range = Range::from_query(&query, crate::platform::now_ms() as u64)?;
        let by = match query.by.as_deref() {
            None => GroupBy::Feature,
            Some(text) => GroupBy::parse(text).ok_or_else(|| {
                Error::bad_request(format!("`by` is `feature` or `route`, not {text:?}"))
                    .with_member("parameter", "by")
            })?,
        };
        let entries = self.entries(&env, range).await?;
        Ok(Json(UsageAnswer {
            since: range.since,
            until: range.until,
            groups: usage::summarize(entries.iter().map(|(flushed, entry)| (*flushed, entry)), by),
        }))
    }

    async fn cost(self, env: Env, query: RangeQuery) -> Result<Json<Projection>, Error> {
        if query.by.is_some() {
            return Err(Error::bad_request("`/cost` takes `since` and `until` only")
                .with_member("parameter", "by"));
        }
        let range = Range::from_query(&query, crate::platform::now_ms() as u64)?;
        let setting = |name: &str| crate::platform::setting(&env, name);
        let prices = match setting(PRICES_SETTING) {
            Some(json) => Prices::from_json(&json),
            None => Ok(Prices::default()),
        }
        .map_err(|e| Error::internal(format!("the setting {PRICES_SETTING}: {}", e.detail())))?;
        let assumptions = match setting(ASSUMPTIONS_SETTING) {
            Some(json) => Assumptions::from_json(&json),
            None => Ok(Assumptions::default()),
        }
        .map_err(|e| {
            Error::internal(format!("the setting {ASSUMPTIONS_SETTING}: {}", e.detail()))
        })?;
        let entries = self.entries(&env, range).await?;
        let observed = observed_usage(&entries, range);
        cost::project(&observed, &prices, &assumptions)
            .map(Json)
            .map_err(|e| Error::internal(e.detail().to_owned()))
    }
}

/// One invocation that is not a request, being attributed: from
/// [`Ops::attribution`] to [`Attribution::finish`].
pub(crate) struct Attribution {
    ops: Ops,
    trigger: Trigger,
    cold: bool,
    started: f64,
    counter: Rc<Counter>,
}

impl Attribution {
    /// `work`, with the billable operations it makes counted against this
    /// invocation.
    pub(crate) fn meter<F: std::future::Future>(&self, work: F) -> Metered<F> {
        Metered::new(work, self.counter.clone())
    }

    /// Records the invocation as `feature` and `route` with its `outcome`,
    /// then [flushes](Ops::flush_if_due) the tally when the interval has passed.
    pub(crate) async fn finish(
        self,
        feature: &str,
        route: &str,
        outcome: Outcome,
        env: &worker::Env,
    ) {
        let ops = self.ops;
        self.record(feature, route, outcome);
        ops.flush_if_due(env).await;
    }

    /// Records the invocation as `feature` and `route` with its `outcome`, and
    /// leaves the flush to a later call (a step attempt: the engine's timeout
    /// covers its whole callback).
    pub(crate) fn record(self, feature: &str, route: &str, outcome: Outcome) {
        let ended = crate::platform::now_ms();
        record(
            &self.counter,
            Invocation {
                trigger: self.trigger,
                feature,
                route,
                wall_ms: ended - self.started,
                cold: self.cold,
                outcome,
                bytes_in: 0,
                bytes_out: 0,
                operations: Operations::default(),
            },
            ended,
        );
    }
}

/// Adds `invocation`, with the operations `counter` holds, to this isolate's
/// tally, unless it left itself out.
fn record(counter: &Counter, mut invocation: Invocation<'_>, now: f64) {
    if counter.excluded.get() {
        return;
    }
    // The isolate's first tallied invocation starts its first interval.
    if LAST_FLUSH.get() == 0.0 {
        LAST_FLUSH.set(now);
    }
    invocation.operations = *counter.operations.borrow();
    TALLY.with(|tally| tally.borrow_mut().record(&invocation, now));
}

/// Whether the flush interval has passed since this isolate last flushed
/// (then a new one starts). The first call reads the interval from `env`; the
/// first call or tallied invocation, whichever comes first, starts the first
/// interval.
fn due(now: f64, env: impl FnOnce() -> Option<worker::Env>) -> bool {
    if FLUSH_MS.get() == 0.0 {
        let seconds = env()
            .and_then(|env| crate::platform::setting(&env, FLUSH_SETTING))
            .and_then(|text| text.trim().parse::<u32>().ok())
            .filter(|seconds| (1..=FLUSH_SECONDS).contains(seconds))
            .unwrap_or(FLUSH_SECONDS);
        FLUSH_MS.set(f64::from(seconds) * 1000.0);
    }
    let last = LAST_FLUSH.get();
    if last == 0.0 {
        LAST_FLUSH.set(now);
        return false;
    }
    if now - last < FLUSH_MS.get() {
        return false;
    }
    LAST_FLUSH.set(now);
    true
}

/// This isolate's tally as a report, and a new tally started; `None` when
/// nothing was recorded.
fn take_report(now: f64) -> Option<Report> {
    ISOLATE.with(|isolate| TALLY.with(|t| t.borrow_mut().take(isolate, now)))
}

impl Middleware for Ops {
    fn call(&self, req: Request, next: Next) -> BoxFuture<Response> {
        Box::pin(self.meter(req, next))
    }
}

/// The query of the usage and cost routes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    /// The start, ms since the epoch (default: an hour before `until`).
    pub since: Option<u64>,
    /// The end, exclusive, ms since the epoch (default: now).
    pub until: Option<u64>,
    /// `feature` (default) or `route`, for `/usage`.
    pub by: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Range {
    since: u64,
    until: u64,
}

impl Range {
    fn from_query(query: &RangeQuery, now: u64) -> Result<Self, Error> {
        let until = query.until.unwrap_or(now);
        let since = query.since.unwrap_or(until.saturating_sub(3_600_000));
        if since >= until {
            return Err(Error::bad_request(format!(
                "`since` ({since}) must be before `until` ({until})"
            ))
            .with_member("parameter", "since"));
        }
        if until - since > MAX_RANGE_MS {
            return Err(Error::bad_request("a range covers at most 31 days")
                .with_member("parameter", "since"));
        }
        Ok(Self { since, until })
    }
}

/// An open alert incident.
#[derive(Debug, serde::Serialize, Deserialize)]
struct Incident {
    rule: String,
    incident: String,
    opened_ms: u64,
    /// The rule as it was when the incident opened (JSON): what resolves the
    /// incident once the rule is removed.
    #[serde(skip_serializing)]
    definition: String,
}

/// The usage API's answer.
#[derive(Debug, serde::Serialize)]
pub struct UsageAnswer {
    /// The range's start, ms since the epoch.
    pub since: u64,
    /// Its end, exclusive.
    pub until: u64,
    /// One summary per feature or route, busiest first.
    pub groups: Vec<Summary>,
}

/// The stored entries of `range` as the cost model's input: invocations, wall
/// time, bytes and operations summed, HTTP requests apart, and the busiest
/// minute's HTTP rate as the peak.
fn observed_usage(entries: &[(u64, Entry)], range: Range) -> cost::Usage {
    let mut total = Stats::default();
    let mut http = 0;
    let mut per_minute: std::collections::BTreeMap<u64, u64> = std::collections::BTreeMap::new();
    for (flushed_ms, entry) in entries {
        total.merge(&entry.stats);
        if entry.key.trigger == Trigger::Fetch {
            http += entry.stats.invocations;
            *per_minute.entry(flushed_ms / 60_000).or_default() += entry.stats.invocations;
        }
    }
    let busiest = per_minute.values().copied().max().unwrap_or(0);
    let ops = total.operations;
    cost::Usage {
        period_hours: (range.until - range.since) as f64 / 3_600_000.0,
        invocations: total.invocations as f64,
        http_requests: http as f64,
        wall_ms: total.wall_ms_total,
        cpu_ms: None,
        bytes_out: total.bytes_out as f64,
        peak_requests_per_second: busiest as f64 / 60.0,
        kv_reads: ops.kv_reads as f64,
        kv_writes: ops.kv_writes as f64,
        kv_deletes: ops.kv_deletes as f64,
        kv_lists: ops.kv_lists as f64,
        queue_operations: ops.queue_operations as f64,
        ..cost::Usage::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn invocation(route: &str) -> Invocation<'_> {
        Invocation {
            trigger: Trigger::Queue,
            feature: "kind",
            route,
            wall_ms: 2.0,
            cold: false,
            outcome: Outcome::Deferred,
            bytes_in: 0,
            bytes_out: 0,
            operations: Operations::default(),
        }
    }

    #[test]
    fn the_first_tallied_invocation_starts_the_interval_and_excluded_ones_are_not_tallied() {
        // Each test has its own thread, so its own isolate state.
        let counted = Counter::default();
        counted.operations.borrow_mut().kv_reads = 2;
        record(&counted, invocation("q"), 1_000.0);
        let left_out = Counter::default();
        left_out.excluded.set(true);
        record(&left_out, invocation("ops"), 1_500.0);
        // No setting outside workerd: the default minute, from the first record.
        assert!(!due(60_999.0, || None));
        assert!(due(61_000.0, || None));
        assert!(!due(61_001.0, || None));
        let report = take_report(61_000.0).expect("one invocation was tallied");
        // The report covers the invocation from its start (2 ms before it ended).
        assert_eq!(report.from_ms, 998);
        assert_eq!(report.entries.len(), 1);
        let stats = &report.entries[0].stats;
        assert_eq!(
            (stats.invocations, stats.errors),
            (1, 0),
            "deferred is no error"
        );
        assert_eq!(stats.operations.kv_reads, 2);
        assert!(take_report(62_000.0).is_none());
    }

    #[test]
    fn ranges_default_to_the_last_hour_and_bad_ones_are_400s() {
        let query = |since, until| RangeQuery {
            since,
            until,
            by: None,
        };
        assert_eq!(
            Range::from_query(&query(None, None), 10_000_000).unwrap(),
            Range {
                since: 6_400_000,
                until: 10_000_000
            }
        );
        let err = Range::from_query(&query(Some(5), Some(5)), 0).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadRequest);
        assert!(err.detail().contains("before"));
        let err = Range::from_query(&query(Some(0), Some(MAX_RANGE_MS + 1)), 0).unwrap_err();
        assert!(err.detail().contains("31 days"));
    }

    #[test]
    fn observed_usage_sums_entries_and_takes_the_busiest_minute_as_the_peak() {
        let entry = |trigger, invocations, minute: u64| {
            let stats = Stats {
                invocations,
                wall_ms_total: invocations as f64 * 10.0,
                bytes_out: invocations * 100,
                operations: Operations {
                    kv_reads: invocations,
                    ..Operations::default()
                },
                ..Stats::default()
            };
            (
                minute * 60_000 + 5,
                Entry {
                    key: Key {
                        trigger,
                        feature: "kv".into(),
                        route: "/kv".into(),
                    },
                    stats,
                },
            )
        };
        let entries = [
            entry(Trigger::Fetch, 120, 1),
            entry(Trigger::Fetch, 600, 2),
            entry(Trigger::Fetch, 60, 2),
            entry(Trigger::Queue, 6000, 2),
        ];
        let usage = observed_usage(
            &entries,
            Range {
                since: 0,
                until: 7_200_000,
            },
        );
        assert_eq!(usage.period_hours, 2.0);
        assert_eq!(usage.invocations, 6780.0);
        assert_eq!(usage.http_requests, 780.0);
        // Minute 2 had 660 HTTP requests: 11 a second.
        assert_eq!(usage.peak_requests_per_second, 11.0);
        assert_eq!(usage.kv_reads, 6780.0);
        assert_eq!(usage.cpu_ms, None);
    }
}
