//! A workflow whose parameters choose what happens (a flaky step, a slow step
//! with a fallback, a permanent failure, an approval, a sleep), and the routes
//! that start, inspect and signal its instances: the e2e tests of
//! `edgeway::workflow` (tests/workflows.rs).

use std::time::Duration;

use edgeway::kv::PutOptions;
use edgeway::worker::Env;
use edgeway::workflow::{
    Backoff, Control, Definition, InstanceRecord, InstanceStatus, Step, StepConfig, StepRecord,
    Trace, Workflow, WorkflowEvent,
};
use edgeway::{App, Error, Json, Path, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::State;

/// What an instance does.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// `charge` fails this many times before it succeeds (it may retry 3 times).
    #[serde(default)]
    flaky_failures: u32,
    /// `slow` takes this long; past its 300 ms timeout its fallback runs.
    #[serde(default)]
    slow_ms: u64,
    /// `check` fails permanently, ending the instance without retries.
    #[serde(default)]
    permanent: bool,
    /// Wait this long for an `approve` event.
    #[serde(default)]
    approval_ms: Option<u64>,
    /// Sleep this long before finishing.
    #[serde(default)]
    sleep_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct Approval {
    by: String,
}

/// What a completed instance returns.
#[derive(Serialize, Deserialize)]
struct Outcome {
    reserved: u32,
    charge_attempts: u32,
    slow: String,
    approved_by: Option<String>,
}

/// Counts a side effect in KV (`effects:<instance>:<name>`) and returns the count;
/// fails, retryably, while the count is at most `fail_first`.
fn counted(
    event: &WorkflowEvent<Plan>,
    name: &'static str,
    fail_first: u32,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<u32, Error>>>> {
    let env = event.env().clone();
    let key = format!("effects:{}:{name}", event.instance_id);
    move || {
        let (env, key) = (env.clone(), key.clone());
        Box::pin(async move {
            let kv = State::from_env(&env)?;
            let count = kv
                .get_text(&key)
                .await?
                .map_or(0, |v| v.parse().unwrap_or(0))
                + 1;
            kv.put_text(&key, &count.to_string(), PutOptions::new())
                .await?;
            if count <= fail_first {
                return Err(Error::internal(format!(
                    "{name} failed on attempt {count}, on purpose"
                )));
            }
            Ok(count)
        })
    }
}

async fn flow(event: WorkflowEvent<Plan>, step: Step) -> Result<Outcome, Error> {
    let plan = event.payload.clone();
    let reserved = step.run("reserve", counted(&event, "reserve", 0)).await?;

    let quick = StepConfig::new().retries(3, Duration::from_millis(100), Backoff::Constant);
    let charge_attempts = step
        .run_with(
            "charge",
            quick.clone(),
            counted(&event, "charge", plan.flaky_failures),
        )
        .await?;

    let slow_ms = plan.slow_ms;
    let slow_config = StepConfig::new()
        .retries(0, Duration::from_millis(100), Backoff::Constant)
        .timeout(Duration::from_millis(300));
    let slow = match step
        .run_with("slow", slow_config, move || async move {
            edgeway::worker::Delay::from(Duration::from_millis(slow_ms)).await;
            Ok("done".to_owned())
        })
        .await
    {
        Ok(done) => done,
        // The fallback path: another step, run when the first gave up.
        Err(_) => {
            step.run("slow fallback", || async { Ok("fallback".to_owned()) })
                .await?
        }
    };

    if plan.permanent {
        step.run_with("check", quick, || async {
            Err::<(), _>(Error::bad_request("the order is malformed, on purpose").permanent())
        })
        .await?;
    }

    let approved_by = match plan.approval_ms {
        Some(ms) => {
            let approval: Approval = step
                .wait_for_event("approval", "approve", Duration::from_millis(ms))
                .await
                .map_err(|err| {
                    Error::with_status(StatusCode::CONFLICT, format!("cancelled: {}", err.detail()))
                })?;
            Some(approval.by)
        }
        None => None,
    };

    if plan.sleep_ms > 0 {
        step.sleep("cool down", Duration::from_millis(plan.sleep_ms))
            .await?;
    }
    step.run("finish", counted(&event, "finish", 0)).await?;
    Ok(Outcome {
        reserved,
        charge_attempts,
        slow,
        approved_by,
    })
}

/// The workflow, registered in `entry!` as class `Flow`.
pub fn definition() -> Definition {
    Definition::new("flow", flow).trace("TRACE")
}

/// The same workflow as `metered-flow`, registered as class `MeteredFlow`:
/// each step attempt is attributed through `OPS`. Only one test starts it, so
/// its usage is exact.
pub fn metered_definition() -> Definition {
    Definition::new("metered-flow", flow).metered(crate::OPS)
}

/// What a `bench-flow` instance does: `steps` no-op steps, then one that
/// reads the clock (bench/workflows).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchPlan {
    steps: u32,
}

/// `steps` no-op steps and a clock reading: the instance's output is when it
/// was created and when its last step ran, so a run with more steps shows
/// what each costs.
async fn bench_flow(event: WorkflowEvent<BenchPlan>, step: Step) -> Result<Value, Error> {
    for i in 0..event.payload.steps {
        step.run(&format!("noop {i}"), || async { Ok(()) }).await?;
    }
    let ended_ms: f64 = step
        .run("clock", || async { Ok(edgeway::platform::now_ms()) })
        .await?;
    Ok(serde_json::json!({"created_ms": event.timestamp_ms, "ended_ms": ended_ms}))
}

/// The benchmark's workflow, registered as class `BenchFlow`; untraced, so a
/// step costs what the engine and edgeway's step code cost.
pub fn bench_definition() -> Definition {
    Definition::new("bench-flow", bench_flow)
}

fn bench_flows(env: &Env) -> Result<Workflow<BenchPlan>, Error> {
    Workflow::from_env(env, "BENCH_FLOW")
}

async fn start_bench(
    env: Env,
    Path(id): Path<String>,
    Json(plan): Json<BenchPlan>,
) -> Result<(StatusCode, Json<Value>), Error> {
    create(bench_flows(&env)?, &id, &plan).await
}

async fn bench_status(env: Env, Path(id): Path<String>) -> Result<Json<InstanceStatus>, Error> {
    Ok(Json(bench_flows(&env)?.status(&id).await?))
}

/// `/bench-flows` routes: start an instance, and its engine status.
pub fn bench_routes() -> App {
    App::new()
        .post("/{id}", start_bench)
        .get("/{id}", bench_status)
}

fn flows(env: &Env) -> Result<Workflow<Plan>, Error> {
    Workflow::from_env(env, "FLOW")
}

fn metered_flows(env: &Env) -> Result<Workflow<Plan>, Error> {
    Workflow::from_env(env, "METERED_FLOW")
}

async fn start_metered(
    env: Env,
    Path(id): Path<String>,
    Json(plan): Json<Plan>,
) -> Result<(StatusCode, Json<Value>), Error> {
    create(metered_flows(&env)?, &id, &plan).await
}

async fn metered_status(env: Env, Path(id): Path<String>) -> Result<Json<InstanceStatus>, Error> {
    Ok(Json(metered_flows(&env)?.status(&id).await?))
}

/// `/metered-flows` routes: start an instance, and its engine status.
pub fn metered_routes() -> App {
    App::new()
        .post("/{id}", start_metered)
        .get("/{id}", metered_status)
}

async fn start(
    env: Env,
    Path(id): Path<String>,
    Json(plan): Json<Plan>,
) -> Result<(StatusCode, Json<Value>), Error> {
    create(flows(&env)?, &id, &plan).await
}

/// Creates instance `id` of `workflow` with `plan`: 201 with its id.
async fn create<T: Serialize>(
    workflow: Workflow<T>,
    id: &str,
    plan: &T,
) -> Result<(StatusCode, Json<Value>), Error> {
    let id = workflow.create(Some(id), plan).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "id": id }))))
}

#[derive(Serialize)]
struct Inspected {
    engine: InstanceStatus,
    instance: Option<InstanceRecord>,
    steps: Vec<StepRecord>,
}

async fn inspect(env: Env, Path(id): Path<String>) -> Result<Json<Inspected>, Error> {
    let engine = flows(&env)?.status(&id).await?;
    let trace = Trace::from_env(&env, "TRACE")?;
    Ok(Json(Inspected {
        engine,
        instance: trace.instance("flow", &id).await?,
        steps: trace.steps("flow", &id).await?,
    }))
}

async fn list(env: Env) -> Result<Json<Vec<InstanceRecord>>, Error> {
    let trace = Trace::from_env(&env, "TRACE")?;
    Ok(Json(trace.instances("flow", 100).await?))
}

async fn signal(
    env: Env,
    Path((id, kind)): Path<(String, String)>,
    Json(payload): Json<Value>,
) -> Result<StatusCode, Error> {
    flows(&env)?.send_event(&id, &kind, &payload).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn control(
    env: Env,
    Path((id, action)): Path<(String, String)>,
) -> Result<StatusCode, Error> {
    let action = match action.as_str() {
        "pause" => Control::Pause,
        "resume" => Control::Resume,
        "terminate" => Control::Terminate,
        "restart" => Control::Restart,
        other => return Err(Error::not_found(format!("no action {other:?}"))),
    };
    flows(&env)?.control(&id, action).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `/flows` routes.
pub fn routes() -> App {
    App::new()
        .get("/", list)
        .post("/{id}", start)
        .get("/{id}", inspect)
        .post("/{id}/events/{kind}", signal)
        .post("/{id}/{action}", control)
}
