//! e2e: durable workflows (`edgeway::workflow`) on Miniflare's local Workflows
//! engine, with the step-level trace read back from D1. The workflow is
//! `flows.rs` in the queues test worker: its parameters choose a flaky step, a
//! slow step with a fallback, a permanent failure, an approval and a sleep.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::{instance_ended, trace_lines};
use edgeway::testing::{TestResponse, Worker};
use serde_json::{json, Value};

fn worker() -> &'static Worker {
    static WORKER: OnceLock<Worker> = OnceLock::new();
    WORKER.get_or_init(|| {
        Worker::start(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/workers/queues/wrangler.toml"
        ))
        .expect("queues worker starts")
    })
}

fn start(id: &str, plan: Value) -> TestResponse {
    worker().post_json(&format!("/flows/{id}"), &plan).unwrap()
}

/// What `GET /flows/{id}` shows on `w`: the engine's status and the trace.
fn inspect_on(w: &Worker, id: &str) -> Value {
    let res = w.get(&format!("/flows/{id}")).unwrap();
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

fn inspect(id: &str) -> Value {
    inspect_on(worker(), id)
}

/// Waits (bounded) until the engine says the instance has ended, and returns
/// what `GET /flows/{id}` shows then.
fn finished_on(w: &Worker, id: &str) -> Value {
    w.wait_for(
        &format!("instance {id} to end"),
        Duration::from_secs(60),
        || {
            let doc = inspect_on(w, id);
            instance_ended(&doc).then_some(doc)
        },
    )
}

fn finished(id: &str) -> Value {
    finished_on(worker(), id)
}

/// Checks that the replays of instance `id` on `w` ran no finished step
/// again: each step counts its side effect in KV, and `charge` fails once.
fn assert_each_step_ran_once(w: &Worker, id: &str) {
    let effect = |name: &str| w.get(&format!("/kv/effects:{id}:{name}")).unwrap().text();
    assert_eq!(effect("reserve"), "1", "reserve ran once");
    assert_eq!(effect("charge"), "2", "charge's two attempts, and no more");
    assert_eq!(effect("finish"), "1");
}

/// Every attempt of every step is one invocation of the workflow's feature,
/// with the step as its route: a step that fails twice is three, two of them
/// errors. Replays run nothing and count nothing.
#[test]
fn each_step_attempt_is_attributed_to_the_workflow() {
    let w = worker();
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 1000;
    // The sleep puts the last step past the flush interval (1 s), so the
    // isolate running it flushes the whole run.
    let res = w
        .post_json(
            "/metered-flows/metered",
            &json!({"flaky_failures": 2, "sleep_ms": 1500}),
        )
        .unwrap();
    assert_eq!(res.status, 201, "{}", res.text());
    w.wait_for(
        "the metered instance to end",
        Duration::from_secs(60),
        || {
            let status = w.get("/metered-flows/metered").unwrap().json();
            (status["status"] == "complete").then_some(())
        },
    );
    let usage = |by: &str| -> Vec<Value> {
        let res = w
            .get(&format!(
                "/ops/usage?by={by}&since={since}&until={}",
                since + 3_600_000
            ))
            .unwrap();
        assert_eq!(res.status, 200, "{}", res.text());
        res.json()["groups"].as_array().unwrap().clone()
    };
    let flow = w.wait_for("the steps' usage", Duration::from_secs(30), || {
        usage("feature")
            .into_iter()
            .find(|g| g["feature"] == "metered-flow" && g["invocations"] == 6)
    });
    // reserve, charge three times, slow, finish.
    assert_eq!(flow["invocations_by_trigger"]["workflow"], 6, "{flow}");
    assert!(
        (flow["error_rate"].as_f64().unwrap() - 2.0 / 6.0).abs() < 1e-9,
        "{flow}"
    );
    // Each attempt of `charge` counted one KV read and one write.
    assert_eq!(flow["operations"]["kv_reads"], 5, "{flow}");
    assert_eq!(flow["operations"]["kv_writes"], 5, "{flow}");
    let charge = usage("route")
        .into_iter()
        .find(|g| g["route"] == "charge")
        .expect("charge's usage");
    assert_eq!(charge["invocations"], 3, "{charge}");
    // The unmetered workflow's steps are nowhere.
    assert!(
        !usage("feature").iter().any(|g| g["feature"] == "flow"),
        "only the metered workflow is attributed"
    );
}

#[test]
fn the_happy_path_runs_every_step_once_and_traces_it() {
    assert_eq!(start("happy", json!({})).status, 201);
    let doc = finished("happy");
    assert_eq!(doc["engine"]["status"], "complete", "{doc:#}");
    assert_eq!(
        doc["engine"]["output"],
        json!({"reserved": 1, "charge_attempts": 1, "slow": "done", "approved_by": null})
    );
    assert_eq!(
        trace_lines(&doc),
        ["reserve#1 ok", "charge#1 ok", "slow#1 ok", "finish#1 ok"]
    );
    for step in doc["steps"].as_array().unwrap() {
        assert_eq!(step["kind"], "run");
        assert!(step["ended_ms"].as_u64().unwrap() >= step["started_ms"].as_u64().unwrap());
    }
    assert_eq!(doc["instance"]["outcome"], "complete");
    let listed = worker().get("/flows").unwrap().json();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["instance"] == "happy"),
        "{listed:#}"
    );
}

#[test]
fn a_step_that_fails_twice_succeeds_on_its_third_attempt() {
    start("flaky", json!({"flaky_failures": 2}));
    let doc = finished("flaky");
    assert_eq!(doc["engine"]["status"], "complete", "{doc:#}");
    assert_eq!(
        doc["engine"]["output"]["charge_attempts"], 3,
        "the third attempt's output"
    );
    let trace = trace_lines(&doc);
    assert_eq!(
        trace[1..4],
        ["charge#1 error", "charge#2 error", "charge#3 ok"],
        "{trace:?}"
    );
    assert!(doc["steps"][1]["error"]
        .as_str()
        .unwrap()
        .contains("charge failed on attempt 1"));
    // reserve ran once: a retried step does not re-run the steps before it.
    assert_eq!(trace[0], "reserve#1 ok");
    assert_eq!(doc["engine"]["output"]["reserved"], 1);
}

#[test]
fn a_step_past_its_timeout_goes_to_its_fallback() {
    start("slow", json!({"slow_ms": 2000}));
    let doc = finished("slow");
    assert_eq!(doc["engine"]["status"], "complete", "{doc:#}");
    assert_eq!(doc["engine"]["output"]["slow"], "fallback");
    let trace = trace_lines(&doc);
    assert!(trace.contains(&"slow#1 timeout".to_owned()), "{trace:?}");
    assert!(
        trace.contains(&"slow fallback#1 ok".to_owned()),
        "{trace:?}"
    );
    assert!(
        !trace.iter().any(|s| s.starts_with("slow#2")),
        "retries 0: one attempt"
    );
}

#[test]
fn a_permanent_error_skips_the_retries_and_fails_the_instance() {
    start("permanent", json!({"permanent": true}));
    let doc = finished("permanent");
    assert_eq!(doc["engine"]["status"], "errored", "{doc:#}");
    let checks: Vec<_> = trace_lines(&doc)
        .into_iter()
        .filter(|s| s.starts_with("check#"))
        .collect();
    assert_eq!(
        checks,
        ["check#1 error"],
        "3 retries were allowed, none was made"
    );
    assert_eq!(doc["instance"]["outcome"], "errored");
    assert!(
        doc["instance"]["error"]
            .as_str()
            .unwrap()
            .contains("malformed"),
        "{doc:#}"
    );
}

#[test]
fn an_approval_completes_the_instance_and_no_approval_cancels_it() {
    start("approved", json!({"approval_ms": 30000}));
    start("unapproved", json!({"approval_ms": 500}));
    worker().wait_for(
        "the approval wait to start",
        Duration::from_secs(30),
        || {
            trace_lines(&inspect("approved"))
                .contains(&"approval#1 waiting".to_owned())
                .then_some(())
        },
    );
    let res = worker()
        .post_json("/flows/approved/events/approve", &json!({"by": "ada"}))
        .unwrap();
    assert_eq!(res.status, 202, "{}", res.text());
    let doc = finished("approved");
    assert_eq!(doc["engine"]["status"], "complete", "{doc:#}");
    assert_eq!(doc["engine"]["output"]["approved_by"], "ada");
    assert!(trace_lines(&doc).contains(&"approval#1 ok".to_owned()));

    let doc = finished("unapproved");
    assert_eq!(doc["engine"]["status"], "errored", "{doc:#}");
    assert!(
        trace_lines(&doc).contains(&"approval#1 timeout".to_owned()),
        "{doc:#}"
    );
    let reason = doc["instance"]["error"].as_str().unwrap();
    assert!(
        reason.starts_with("cancelled: no \"approve\" event within 500 ms"),
        "{reason}"
    );
    assert!(
        !trace_lines(&doc).iter().any(|s| s.starts_with("finish")),
        "nothing after the cancel"
    );

    // An approval for a finished instance: 409.
    let late = worker()
        .post_json("/flows/unapproved/events/approve", &json!({"by": "ada"}))
        .unwrap();
    assert_eq!(
        late.assert_problem(409)["detail"],
        "instance \"unapproved\" has ended (errored); it takes no events"
    );
}

#[test]
fn a_sleep_is_traced_from_start_to_end() {
    start("sleepy", json!({"sleep_ms": 1000}));
    let doc = finished("sleepy");
    assert_eq!(doc["engine"]["status"], "complete", "{doc:#}");
    let sleep = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "cool down")
        .expect("the sleep is in the trace");
    assert_eq!(sleep["kind"], "sleep");
    assert_eq!(sleep["outcome"], "ok");
    let slept = sleep["ended_ms"].as_u64().unwrap() - sleep["started_ms"].as_u64().unwrap();
    assert!(slept >= 900, "slept {slept} ms");
    assert_eq!(trace_lines(&doc).last().unwrap(), "finish#1 ok");
}

#[test]
fn bad_input_is_a_clear_problem() {
    let w = worker();
    // A malformed body and parameters of the wrong shape.
    let res = w
        .send(
            "POST",
            "/flows/bad-json",
            &[("content-type", "application/json")],
            b"{".to_vec(),
        )
        .unwrap();
    res.assert_problem(400);
    assert_eq!(start("dup", json!({})).status, 201);
    start("shape", json!({"slow_ms": "soon"})).assert_problem(422);
    // An id the engine would refuse, and a second create with the same id.
    let doc = start("a%20b", json!({})).assert_problem(400);
    assert!(
        doc["detail"].as_str().unwrap().contains("instance id"),
        "{doc:#}"
    );
    assert_eq!(
        start("dup", json!({})).assert_problem(409)["detail"],
        "FLOW already has an instance \"dup\""
    );
    // Unknown instances.
    w.get("/flows/nobody").unwrap().assert_problem(404);
    w.post_json("/flows/nobody/events/approve", &json!({}))
        .unwrap()
        .assert_problem(404);
    // An event payload over the engine's 1 MiB.
    let big = json!({"blob": "x".repeat(1024 * 1024)});
    let res = w.post_json("/flows/dup/events/approve", &big).unwrap();
    res.assert_problem(413);
}

/// Durability across a crash: workerd is killed while an instance waits for
/// an event, and started again on the same local state. The event then reaches
/// the instance, whose run the engine replays from the start: the steps that
/// had finished (each counts its side effect in KV) never run again.
#[test]
fn an_instance_waiting_when_workerd_is_killed_finishes_after_a_restart() {
    let mut w = Worker::start(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/workers/queues/wrangler.toml"
    ))
    .expect("a queues worker of this test's own starts");
    let res = w
        .post_json(
            "/flows/crash",
            &json!({"flaky_failures": 1, "approval_ms": 120000}),
        )
        .unwrap();
    assert_eq!(res.status, 201, "{}", res.text());
    w.wait_for("the instance to wait", Duration::from_secs(30), || {
        trace_lines(&inspect_on(&w, "crash"))
            .contains(&"approval#1 waiting".to_owned())
            .then_some(())
    });
    w.restart().expect("workerd starts again on the same state");
    let res = w
        .post_json("/flows/crash/events/approve", &json!({"by": "ops"}))
        .unwrap();
    assert_eq!(res.status, 202, "{}", res.text());
    let doc = finished_on(&w, "crash");
    assert_eq!(doc["engine"]["status"], "complete", "{doc:#}");
    assert_eq!(doc["engine"]["output"]["approved_by"], "ops");
    assert_each_step_ran_once(&w, "crash");
    assert_eq!(
        trace_lines(&doc),
        [
            "reserve#1 ok",
            "charge#1 error",
            "charge#2 ok",
            "slow#1 ok",
            "approval#1 ok",
            "finish#1 ok"
        ],
        "one row per attempt, none duplicated by the replay"
    );
}

/// Durability: an instance paused while it sleeps loses its run in memory (the
/// engine aborts its Durable Object, as an eviction would); resumed, the engine
/// replays the run from the start, and the steps that had finished (each counts
/// its side effect in KV) are never run again.
///
/// A workerd restart while an instance waits for an event is tested above. A
/// restart mid-sleep is not: Miniflare's engine keeps sleep timers in memory
/// and has no alarm to wake an instance after a restart, so a sleeping
/// instance stays `running` locally (production wakes it).
#[test]
fn a_paused_and_resumed_instance_finishes_without_rerunning_its_steps() {
    let w = worker();
    let res = w
        .post_json(
            "/flows/durable",
            &json!({"flaky_failures": 1, "sleep_ms": 3000}),
        )
        .unwrap();
    assert_eq!(res.status, 201, "{}", res.text());
    w.wait_for("the instance to sleep", Duration::from_secs(30), || {
        trace_lines(&inspect("durable"))
            .contains(&"cool down#1 sleeping".to_owned())
            .then_some(())
    });
    assert_eq!(
        w.post_json("/flows/durable/pause", &json!({}))
            .unwrap()
            .status,
        202
    );
    w.wait_for("the instance to pause", Duration::from_secs(30), || {
        (inspect("durable")["engine"]["status"] == "paused").then_some(())
    });
    assert_eq!(
        w.post_json("/flows/durable/resume", &json!({}))
            .unwrap()
            .status,
        202
    );
    let doc = finished("durable");
    assert_eq!(doc["engine"]["status"], "complete", "{doc:#}");
    assert_each_step_ran_once(w, "durable");
    assert_eq!(doc["engine"]["output"]["charge_attempts"], 2);
    assert_eq!(
        trace_lines(&doc),
        [
            "reserve#1 ok",
            "charge#1 error",
            "charge#2 ok",
            "slow#1 ok",
            "cool down#1 ok",
            "finish#1 ok"
        ],
        "one row per attempt, none duplicated by the replay"
    );
}
