//! Attribution in workerd: the gateway meters every request, flushes each
//! isolate's tally (here every second, `OPS_FLUSH_SECONDS`) through a queue
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
    common::gateway_builder("http://127.0.0.1:9", "AKIDLOCAL", "not-a-secret", "none")
        .var("OPS_FLUSH_SECONDS", "1")
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
    // nothing; a queued write sends one queue message.
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
    assert_eq!(queues["operations"]["queue_operations"], 1, "{queues}");
    assert_eq!(queues["operations"]["kv_writes"], 0, "{queues}");
    // The harness's first request was the isolate's first: one cold start.
    let health = usage_of(&w, since, "health", |g| {
        g["invocations"].as_u64() >= Some(1)
    });
    assert_eq!(health["cold_starts"], 1, "{health}");
    assert!(health["cold_wall_ms"]["p99"].as_f64().is_some(), "{health}");

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
    // 3 writes in the range, projected to a month.
    let month_multiple = cost["month_multiple"].as_f64().unwrap();
    assert!(
        (kv_writes - 3.0 * month_multiple).abs() < 1e-6 * kv_writes,
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
