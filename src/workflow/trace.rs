//! The step-level trace: every instance, and every attempt of every step, with
//! its timing and outcome, in D1 (strongly consistent, so a console polling an
//! instance sees each step as it starts and ends).
//!
//! Writes are idempotent, because the engine replays a run from its start after
//! every sleep, wait or restart of the isolate: an attempt's row is written by the
//! attempt itself (the engine never re-runs a finished step), and a sleep's or
//! wait's row is inserted once and closed once. A failed trace write is logged and
//! never fails the workflow.

use std::cell::Cell;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::d1::{rows, Database};
use crate::error::Error;
use crate::observe::{Level, Line};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS edgeway_workflow_instances (workflow TEXT NOT NULL, instance TEXT NOT NULL, started_ms INTEGER NOT NULL, ended_ms INTEGER, outcome TEXT NOT NULL, error TEXT, PRIMARY KEY (workflow, instance))
CREATE TABLE IF NOT EXISTS edgeway_workflow_steps (workflow TEXT NOT NULL, instance TEXT NOT NULL, seq INTEGER NOT NULL, attempt INTEGER NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL, started_ms INTEGER NOT NULL, ended_ms INTEGER, outcome TEXT NOT NULL, error TEXT, PRIMARY KEY (workflow, instance, seq, attempt))";

/// The longest error reason kept per attempt, in bytes.
const MAX_REASON_BYTES: usize = 1000;

thread_local! {
    /// Whether this isolate has created the tables.
    static SCHEMA_READY: Cell<bool> = const { Cell::new(false) };
}

/// One instance as the trace saw it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct InstanceRecord {
    /// The workflow's name.
    pub workflow: String,
    /// The instance id.
    pub instance: String,
    /// When its first run started, in ms since the epoch.
    pub started_ms: u64,
    /// When it completed or failed for good.
    pub ended_ms: Option<u64>,
    /// `running`, `complete` or `errored`.
    pub outcome: String,
    /// Why it failed.
    pub error: Option<String>,
}

/// One attempt of one step.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StepRecord {
    /// The step's place in the run, from 0.
    pub seq: u32,
    /// The attempt, from 1 (sleeps and waits have one).
    pub attempt: u32,
    /// The step's name.
    pub name: String,
    /// `run`, `sleep` or `wait`.
    pub kind: String,
    /// When the attempt started, in ms since the epoch.
    pub started_ms: u64,
    /// When it ended; absent while it runs, sleeps or waits.
    pub ended_ms: Option<u64>,
    /// `running`, `sleeping`, `waiting`, `ok`, `error` or `timeout`.
    pub outcome: String,
    /// Why the attempt failed.
    pub error: Option<String>,
}

/// The trace tables in a D1 database, for reading.
#[derive(Clone)]
pub struct Trace {
    db: Database,
}

impl Trace {
    /// The trace in the D1 database bound as `binding`.
    pub fn from_env(env: &worker::Env, binding: &str) -> Result<Self, Error> {
        Ok(Self {
            db: Database::open(env, binding, "the workflow trace")?,
        })
    }

    async fn ready(&self) -> Result<(), Error> {
        if SCHEMA_READY.get() {
            return Ok(());
        }
        self.db
            .exec(SCHEMA)
            .await
            .map_err(|e| Error::internal(format!("create the workflow trace tables: {e}")))?;
        SCHEMA_READY.set(true);
        Ok(())
    }

    /// The newest `limit` instances of `workflow`, newest first.
    pub async fn instances(
        &self,
        workflow: &str,
        limit: u32,
    ) -> Result<Vec<InstanceRecord>, Error> {
        self.ready().await?;
        self.query(
            "SELECT * FROM edgeway_workflow_instances WHERE workflow = ?1 ORDER BY started_ms DESC, instance LIMIT ?2",
            json!([workflow, limit]),
        )
        .await
    }

    /// One instance, if the trace has seen it.
    pub async fn instance(
        &self,
        workflow: &str,
        instance: &str,
    ) -> Result<Option<InstanceRecord>, Error> {
        self.ready().await?;
        let rows = self
            .query(
                "SELECT * FROM edgeway_workflow_instances WHERE workflow = ?1 AND instance = ?2",
                json!([workflow, instance]),
            )
            .await?;
        Ok(rows.into_iter().next())
    }

    /// Every attempt of every step of an instance, in order.
    pub async fn steps(&self, workflow: &str, instance: &str) -> Result<Vec<StepRecord>, Error> {
        self.ready().await?;
        self.query(
            "SELECT seq, attempt, name, kind, started_ms, ended_ms, outcome, error FROM edgeway_workflow_steps WHERE workflow = ?1 AND instance = ?2 ORDER BY seq, attempt",
            json!([workflow, instance]),
        )
        .await
    }

    async fn query<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        args: Value,
    ) -> Result<Vec<T>, Error> {
        const WHAT: &str = "the workflow trace";
        rows(&self.db.query(sql, args, WHAT).await?, WHAT)
    }

    async fn write(&self, sql: &str, args: Value) {
        let result = async {
            self.ready().await?;
            self.db
                .run(sql, &args.to_string())
                .await
                .map_err(Error::internal)?;
            Ok::<_, Error>(())
        }
        .await;
        if let Err(err) = result {
            Line::new()
                .field("msg", "workflow trace write failed")
                .field("detail", &err.detail())
                .write(Level::Warn);
        }
    }
}

/// What a run records: its instance, and each step of it.
#[derive(Clone)]
pub(crate) struct Recorder {
    trace: Option<Trace>,
    workflow: &'static str,
    instance: Rc<str>,
}

/// A step's kind, as the trace names it.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Run,
    Sleep,
    Wait,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Run => "run",
            Self::Sleep => "sleep",
            Self::Wait => "wait",
        }
    }

    /// The outcome while the step is under way.
    fn pending(self) -> &'static str {
        match self {
            Self::Run => "running",
            Self::Sleep => "sleeping",
            Self::Wait => "waiting",
        }
    }
}

impl Recorder {
    pub(crate) fn new(trace: Option<Trace>, workflow: &'static str, instance: Rc<str>) -> Self {
        Self {
            trace,
            workflow,
            instance,
        }
    }

    /// The instance this run belongs to.
    pub(crate) fn instance(&self) -> &str {
        &self.instance
    }

    pub(crate) async fn run_started(&self, now_ms: f64) {
        let Some(trace) = &self.trace else { return };
        trace
            .write(
                "INSERT OR IGNORE INTO edgeway_workflow_instances (workflow, instance, started_ms, outcome) VALUES (?1, ?2, ?3, 'running')",
                json!([self.workflow, &*self.instance, now_ms.floor()]),
            )
            .await;
    }

    pub(crate) async fn run_ended(&self, now_ms: f64, error: Option<&str>) {
        let Some(trace) = &self.trace else { return };
        let outcome = if error.is_some() {
            "errored"
        } else {
            "complete"
        };
        trace
            .write(
                "UPDATE edgeway_workflow_instances SET ended_ms = ?3, outcome = ?4, error = ?5 WHERE workflow = ?1 AND instance = ?2",
                json!([self.workflow, &*self.instance, now_ms.floor(), outcome, reason(error)]),
            )
            .await;
    }

    /// A step's attempt began. A run's attempt replaces an older row with its
    /// number (a restarted instance); a sleep or wait keeps the first.
    pub(crate) async fn step_started(
        &self,
        seq: u32,
        attempt: u32,
        name: &str,
        kind: Kind,
        now_ms: f64,
    ) {
        let Some(trace) = &self.trace else { return };
        let verb = match kind {
            Kind::Run => "INSERT OR REPLACE",
            Kind::Sleep | Kind::Wait => "INSERT OR IGNORE",
        };
        trace
            .write(
                &format!("{verb} INTO edgeway_workflow_steps (workflow, instance, seq, attempt, name, kind, started_ms, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                json!([
                    self.workflow,
                    &*self.instance,
                    seq,
                    attempt,
                    name,
                    kind.as_str(),
                    now_ms.floor(),
                    kind.pending(),
                ]),
            )
            .await;
    }

    /// A step's attempt ended with `outcome` (`ok`, `error`, `timeout`); only the
    /// first end counts, so a replay cannot move it.
    pub(crate) async fn step_ended(
        &self,
        seq: u32,
        attempt: u32,
        outcome: &str,
        error: Option<&str>,
        now_ms: f64,
    ) {
        let Some(trace) = &self.trace else { return };
        trace
            .write(
                "UPDATE edgeway_workflow_steps SET ended_ms = ?5, outcome = ?6, error = ?7 WHERE workflow = ?1 AND instance = ?2 AND seq = ?3 AND attempt = ?4 AND ended_ms IS NULL",
                json!([
                    self.workflow,
                    &*self.instance,
                    seq,
                    attempt,
                    now_ms.floor(),
                    outcome,
                    reason(error),
                ]),
            )
            .await;
    }
}

/// An error reason as stored: cut to [`MAX_REASON_BYTES`] on a char boundary.
fn reason(error: Option<&str>) -> Option<&str> {
    match error {
        None => None,
        Some(text) => {
            let mut end = text.len().min(MAX_REASON_BYTES);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            Some(&text[..end])
        }
    }
}
