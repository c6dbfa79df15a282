//! e2e: Durable Objects from Rust (`edgeway::object`) in local workerd: the
//! counter object, reached from a worker's handlers through its namespace.

use std::sync::OnceLock;
use std::thread;

use edgeway::testing::Worker;
use serde_json::json;

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

/// The KV read-modify-write this replaces kept some of these; the object keeps
/// every one.
#[test]
fn two_hundred_concurrent_increments_count_exactly_two_hundred() {
    let w = worker();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let base = w.base_url().to_owned();
            thread::spawn(move || {
                let agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .new_agent();
                for _ in 0..25 {
                    let res = agent
                        .post(format!("{base}/counters/clicks"))
                        .header("content-type", "application/json")
                        .send("1")
                        .unwrap();
                    assert_eq!(res.status().as_u16(), 200);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(w.get("/counters/clicks").unwrap().json(), json!(200));
    // Another name is another object.
    assert_eq!(w.get("/counters/other").unwrap().json(), json!(0));
    assert_eq!(
        w.post_json("/counters/other", &json!(-3)).unwrap().json(),
        json!(-3)
    );
}

#[test]
fn a_bad_body_is_refused_before_it_reaches_the_object() {
    let res = worker()
        .post_json("/counters/clicks", &json!("one"))
        .unwrap();
    res.assert_problem(422);
}

#[test]
fn a_transaction_that_fails_keeps_nothing() {
    let w = worker();
    let res = w
        .post_json("/ledgers/tx/entries", &json!({"notes": ["a", "b"]}))
        .unwrap();
    assert_eq!(res.status, 201, "{}", res.text());
    let res = w
        .post_json(
            "/ledgers/tx/entries",
            &json!({"notes": ["c", "d"], "fail": true}),
        )
        .unwrap();
    // The object's 409 comes back through the stub with its status and detail.
    assert_eq!(
        res.assert_problem(409)["detail"],
        "failed after writing, on purpose"
    );
    assert_eq!(
        w.get("/ledgers/tx/entries").unwrap().json(),
        json!(["a", "b"])
    );
}

#[test]
fn an_alarm_fires_and_runs_its_handler() {
    let w = worker();
    let res = w
        .post_json("/ledgers/alarmed/alarm", &json!({"in_ms": 300}))
        .unwrap();
    assert_eq!(res.status, 201, "{}", res.text());
    assert!(
        res.json().as_u64().is_some(),
        "the alarm is set: {}",
        res.text()
    );
    w.wait_for(
        "the alarm to write its entry",
        std::time::Duration::from_secs(20),
        || (w.get("/ledgers/alarmed/entries").unwrap().json() == json!(["alarm"])).then_some(()),
    );
}

/// What an object stores survives workerd dying: started again on the same
/// state directory, the counter and the ledger hold what they held.
#[test]
fn an_object_keeps_its_storage_across_a_workerd_crash() {
    // Its own worker, so killing it disturbs no other test.
    let mut w = Worker::start(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/workers/queues/wrangler.toml"
    ))
    .expect("queues worker starts");
    assert_eq!(
        w.post_json("/counters/kept", &json!(7)).unwrap().json(),
        json!(7)
    );
    let res = w
        .post_json("/ledgers/kept/entries", &json!({"notes": ["before"]}))
        .unwrap();
    assert_eq!(res.status, 201, "{}", res.text());

    w.restart()
        .expect("the worker starts again on the same state");

    assert_eq!(w.get("/counters/kept").unwrap().json(), json!(7));
    assert_eq!(
        w.get("/ledgers/kept/entries").unwrap().json(),
        json!(["before"])
    );
    assert_eq!(
        w.post_json("/counters/kept", &json!(1)).unwrap().json(),
        json!(8)
    );
}
