//! Attribution in workerd: the gateway meters every request, queue message
//! and cron run, flushes each isolate's tally (here every second, `OPS_FLUSH_SECONDS`) through a queue
//! into D1, and `/v1/ops/usage` reports exact counts per feature: invocations,
//! cold starts (forced by restarting the worker) and the KV and queue
//! operations of handlers whose operations are known. `/v1/ops/cost` projects
//! the observed traffic.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edgeway::testing::Worker;
use serde_json::Value;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn gateway() -> Worker {
    // The builder sets OPS_FLUSH_SECONDS to 1.
    common::gateway_builder("http://127.0.0.1:9", "AKIDLOCAL", "not-a-secret", "none")
        .start()
        .expect("gateway starts")
}

/// Waits out the flush interval, then sends the request that flushes the
/// isolate's tally (it is counted in the next one).
fn flush(w: &Worker) {
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(w.get("/healthz").unwrap().status, 200);
}

/// The usage summary of `feature` since `since`, once `done` holds for it.
fn usage_of(w: &Worker, since: u64, feature: &str, done: impl Fn(&Value) -> bool) -> Value {
    w.wait_for(
        &format!("usage of {feature}"),
        Duration::from_secs(30),
        || {
            let res = w
                .get(&format!(
                    "/v1/ops/usage?by=feature&since={since}&until={}",
                    now_ms() + 60_000
                ))
                .unwrap();
            assert_eq!(res.status, 200, "{}", res.text());
            let doc = res.json();
            let group = doc["groups"]
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["feature"] == feature)
                .cloned()?;
            done(&group).then_some(group)
        },
    )
}

/// All cold starts since `since`, over every feature.
fn cold_starts(w: &Worker, since: u64) -> u64 {
    let res = w
        .get(&format!(
            "/v1/ops/usage?since={since}&until={}",
            now_ms() + 60_000
        ))
        .unwrap();
    res.json()["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["cold_starts"].as_u64().unwrap())
        .sum()
}

#[test]
fn usage_has_exact_invocations_cold_starts_and_operations_per_feature() {
    let since = now_ms() - 1000;
    let mut w = gateway();
    // Known operations: each PUT writes one KV key; the first GET of a key
    // reads it once, the second is served by the response cache and reads
    // nothing; a queued write sends one queue message (three operations).
    for i in 0..3 {
        let res = w
            .send("PUT", &format!("/v1/kv/ops/{i}"), &[], b"v".to_vec())
            .unwrap();
        assert_eq!(res.status, 204, "{}", res.text());
    }
    for path in ["/v1/kv/ops/0", "/v1/kv/ops/1", "/v1/kv/ops/0"] {
        assert_eq!(w.get(path).unwrap().status, 200);
    }
    let res = w
        .send("POST", "/v1/queued/kv/ops-later", &[], b"later".to_vec())
        .unwrap();
    assert_eq!(res.status, 202, "{}", res.text());
    // A 404 on a tagged route is a client error, not an error.
    assert_eq!(w.get("/v1/kv/ops/absent").unwrap().status, 404);
    flush(&w);

    let kv = usage_of(&w, since, "kv", |g| g["invocations"] == 7);
    assert_eq!(kv["invocations_by_trigger"]["fetch"], 7, "{kv}");
    assert_eq!(kv["operations"]["kv_writes"], 3, "{kv}");
    // The absent key's GET read KV too (and found nothing): 3 reads.
    assert_eq!(kv["operations"]["kv_reads"], 3, "{kv}");
    assert_eq!(kv["operations"]["queue_operations"], 0, "{kv}");
    assert_eq!(kv["cold_starts"], 0, "{kv}");
    assert_eq!(kv["error_rate"], 0.0, "{kv}");
    assert!(
        (kv["client_error_rate"].as_f64().unwrap() - 1.0 / 7.0).abs() < 1e-9,
        "{kv}"
    );
    assert!(kv["wall_ms"]["p99"].as_f64().unwrap() > 0.0, "{kv}");
    let queues = usage_of(&w, since, "queues", |g| g["invocations"] == 1);
    // One message: written, read and deleted.
    assert_eq!(queues["operations"]["queue_operations"], 3, "{queues}");
    assert_eq!(queues["operations"]["kv_writes"], 0, "{queues}");
    // The harness's first request was the isolate's first: one cold start.
    let health = usage_of(&w, since, "health", |g| {
        g["invocations"].as_u64() >= Some(1)
    });
    assert_eq!(health["cold_starts"], 1, "{health}");
    assert!(health["cold_wall_ms"]["p99"].as_f64().is_some(), "{health}");
    // The queued write's message, attributed to its kind: one KV write.
    let put = usage_of(&w, since, "kv.put", |g| g["invocations"] == 1);
    assert_eq!(put["invocations_by_trigger"]["queue"], 1, "{put}");
    assert_eq!(put["operations"]["kv_writes"], 1, "{put}");
    assert_eq!(put["error_rate"], 0.0, "{put}");
    // A cron run, attributed to its handler's tag: the jobs sweep lists the
    // running jobs once.
    run_cron(&w, "*/5 * * * *");
    let sweep = usage_of(&w, since, "jobs", |g| g["invocations"] == 1);
    assert_eq!(sweep["invocations_by_trigger"]["cron"], 1, "{sweep}");
    assert_eq!(sweep["operations"]["kv_lists"], 1, "{sweep}");
    assert_eq!(sweep["error_rate"], 0.0, "{sweep}");
    // The reports' own messages are not attributed (each would report itself).
    let features = w
        .get(&format!(
            "/v1/ops/usage?by=feature&since={since}&until={}",
            now_ms() + 60_000
        ))
        .unwrap()
        .json();
    assert!(
        !features.to_string().contains("queue:edgeway-ops-usage"),
        "{features}"
    );

    // Two restarts: two more isolates, each with one cold start.
    for expected in [2, 3] {
        w.restart().expect("the gateway restarts");
        flush(&w);
        w.wait_for(
            "the new isolate's cold start",
            Duration::from_secs(30),
            || (cold_starts(&w, since) == expected).then_some(()),
        );
    }
    // Nothing of the first isolate's was counted twice.
    let kv = usage_of(&w, since, "kv", |_| true);
    assert_eq!(kv["invocations"], 7, "{kv}");
    assert_eq!(cold_starts(&w, since), 3);

    // The cost of what was observed, on three platforms.
    let res = w
        .get(&format!(
            "/v1/ops/cost?since={since}&until={}",
            now_ms() + 60_000
        ))
        .unwrap();
    assert_eq!(res.status, 200, "{}", res.text());
    let cost = res.json();
    for bill in ["workers", "lambda", "containers"] {
        assert!(cost[bill]["total_usd"].as_f64().unwrap() > 0.0, "{cost}");
    }
    assert_eq!(cost["cpu_is_wall_time"], true, "{cost}");
    let kv_writes = cost["workers"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["item"] == "KV writes")
        .unwrap()["quantity"]
        .as_f64()
        .unwrap();
    // 4 writes in the range (3 PUTs and the queued one), projected to a month.
    let month_multiple = cost["month_multiple"].as_f64().unwrap();
    assert!(
        (kv_writes - 4.0 * month_multiple).abs() < 1e-6 * kv_writes,
        "{cost}"
    );
}

#[test]
fn bad_usage_queries_are_400_problems_and_the_api_needs_a_key() {
    let w = gateway();
    for (path, parameter) in [
        ("/v1/ops/usage?by=nope", "by"),
        ("/v1/ops/usage?since=5&until=5", "since"),
        ("/v1/ops/usage?since=9&until=3", "since"),
        ("/v1/ops/usage?since=yesterday", "since"),
        ("/v1/ops/usage?since=0&until=99999999999", "since"),
        ("/v1/ops/usage?window=1h", "window"),
        ("/v1/ops/cost?by=feature", "by"),
    ] {
        let res = w.get(path).unwrap();
        let doc = res.assert_problem(400);
        assert!(
            doc["parameter"] == parameter || doc["detail"].as_str().unwrap().contains(parameter),
            "{path}: {doc}"
        );
    }
    w.send("GET", "/v1/ops/usage", &[("authorization", "")], vec![])
        .unwrap()
        .assert_problem(401);
}

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// Runs the handler of `cron`, as the scheduler would.
fn run_cron(w: &Worker, cron: &str) {
    let res = w
        .get(&format!(
            "/cdn-cgi/local/scheduled?cron={}",
            cron.replace(' ', "+")
        ))
        .unwrap();
    assert_eq!(res.status, 200, "{}", res.text());
}

/// Runs the every-minute cron: the alert rules are evaluated.
fn check_alerts(w: &Worker) {
    run_cron(w, "* * * * *");
}

fn put_rules(w: &Worker, rules: Value) -> edgeway::testing::TestResponse {
    w.send(
        "PUT",
        "/v1/ops/alerts",
        &[("content-type", "application/json")],
        rules.to_string().into_bytes(),
    )
    .unwrap()
}

#[test]
fn an_alert_fires_once_reaches_a_signed_webhook_and_resolves_once() {
    let receiver = edgeway::testing::Sidecar::start(
        {
            let mut command = common::python("webhook_receiver.py");
            command.arg(SECRET);
            command
        },
        "webhook receiver",
    )
    .unwrap();
    let port = receiver.announcement(Duration::from_secs(30)).unwrap()["port"]
        .as_u64()
        .unwrap();
    let alerts_received = || -> Vec<Value> {
        let body = ureq::get(&format!("http://127.0.0.1:{port}/received"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        serde_json::from_str::<Vec<Value>>(&body)
            .unwrap()
            .into_iter()
            .filter(|r| r["path"] == "/ok?sub=alerts")
            .collect()
    };

    let since = now_ms() - 1000;
    let w = gateway();
    let res = w
        .post_json(
            "/v1/topics/ops-alerts/subscriptions",
            &serde_json::json!({"target": {"kind": "webhook",
                "url": format!("http://127.0.0.1:{port}/ok?sub=alerts"), "secrets": [SECRET]}}),
        )
        .unwrap();
    assert_eq!(res.status, 201, "{}", res.text());
    // Any cold start of the health route breaches this rule; the harness's
    // first request was one.
    let rule = |threshold: f64| {
        serde_json::json!([{"name": "health-cold", "metric": "cold_start_p99_ms",
            "feature": "health", "threshold": threshold, "window_minutes": 60}])
    };
    let res = put_rules(&w, rule(0.001));
    assert_eq!(res.status, 200, "{}", res.text());
    flush(&w);
    usage_of(&w, since, "health", |g| g["cold_starts"] == 1);

    check_alerts(&w);
    let fired = w.wait_for("the fired alert", Duration::from_secs(30), || {
        alerts_received()
            .into_iter()
            .find(|r| r["type"] == "ops.alert.fired")
    });
    assert_eq!(fired["verified"], true, "{fired}");
    assert_eq!(fired["attributes"]["rule"], "health-cold", "{fired}");
    let open = w.get("/v1/ops/alerts").unwrap().json();
    assert_eq!(open["incidents"].as_array().unwrap().len(), 1, "{open}");
    // Still breached: more runs fire nothing more.
    check_alerts(&w);
    check_alerts(&w);
    // Deliveries go through a queue: give a duplicate time to arrive.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        alerts_received()
            .iter()
            .filter(|r| r["type"] == "ops.alert.fired")
            .count(),
        1
    );

    // The threshold raised above it: the incident resolves, once.
    assert_eq!(put_rules(&w, rule(1e9)).status, 200);
    check_alerts(&w);
    let resolved = w.wait_for("the resolved alert", Duration::from_secs(30), || {
        alerts_received()
            .into_iter()
            .find(|r| r["type"] == "ops.alert.resolved")
    });
    assert_eq!(resolved["verified"], true, "{resolved}");
    check_alerts(&w);

    // Breached again: a second incident. Removing the rule resolves it, once.
    assert_eq!(put_rules(&w, rule(0.001)).status, 200);
    check_alerts(&w);
    let fired_again = w.wait_for("the second incident", Duration::from_secs(30), || {
        let fired: Vec<Value> = alerts_received()
            .into_iter()
            .filter(|r| r["type"] == "ops.alert.fired")
            .collect();
        (fired.len() == 2).then(|| fired[1].clone())
    });
    assert_eq!(put_rules(&w, serde_json::json!([])).status, 200);
    check_alerts(&w);
    let resolved_again = w.wait_for(
        "the removed rule's resolution",
        Duration::from_secs(30),
        || {
            let resolved: Vec<Value> = alerts_received()
                .into_iter()
                .filter(|r| r["type"] == "ops.alert.resolved")
                .collect();
            (resolved.len() == 2).then(|| resolved[1].clone())
        },
    );
    check_alerts(&w);
    std::thread::sleep(Duration::from_secs(4));
    let all = alerts_received();
    assert_eq!(all.len(), 4, "{all:?}");
    // Both events carry the same incident.
    let incident = |delivery: &Value| {
        let id = delivery["id"].as_str().unwrap();
        w.get(&format!("/v1/events/{id}")).unwrap().json()["event"]["data"]["incident"].clone()
    };
    assert_eq!(incident(&fired), incident(&resolved));
    assert!(incident(&fired).is_string());
    assert_eq!(incident(&fired_again), incident(&resolved_again));
    assert_ne!(incident(&fired), incident(&fired_again));
    let open = w.get("/v1/ops/alerts").unwrap().json();
    assert_eq!(open["incidents"], serde_json::json!([]), "{open}");
}

#[test]
fn bad_alert_rules_are_422_problems_naming_each_problem() {
    let w = gateway();
    let res = put_rules(
        &w,
        serde_json::json!([
            {"name": "a", "metric": "error_rate", "threshold": -1},
            {"name": "b", "metric": "error_rate", "threshold": 2},
        ]),
    );
    let doc = res.assert_problem(422);
    let errors = doc["errors"].to_string();
    assert!(errors.contains("rules[0]: threshold: -1"), "{doc}");
    assert!(
        errors.contains("rules[1]: threshold: an error rate"),
        "{doc}"
    );
    let res = put_rules(
        &w,
        serde_json::json!([{"name": "b", "metric": "error_rate", "threshold": 0.5, "treshold": 1}]),
    );
    let doc = res.assert_problem(422);
    assert!(
        doc["errors"].to_string().contains("rules[0]")
            && doc["detail"].as_str().unwrap().contains("treshold"),
        "{doc}"
    );
    let res = w
        .send("PUT", "/v1/ops/alerts", &[], b"not json".to_vec())
        .unwrap();
    res.assert_problem(422);
    // Nothing was stored.
    assert_eq!(
        w.get("/v1/ops/alerts").unwrap().json()["rules"],
        serde_json::json!([])
    );
}
