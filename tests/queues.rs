//! Typed KV, the queue producer and the consumer framework, in workerd with
//! Miniflare's local KV and Queues (`tests/workers/queues`).

use std::sync::OnceLock;
use std::time::Duration;

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

fn enqueue(kind: &str, body: Value) -> String {
    let res = worker()
        .post_json(&format!("/enqueue/{kind}"), &body)
        .unwrap();
    assert_eq!(res.status, 202, "{}", res.text());
    res.json()["id"].as_str().unwrap().to_owned()
}

/// Polls `path` (bounded) until `done` accepts the response.
fn wait_for(path: &str, what: &str, done: impl Fn(&TestResponse) -> bool) -> TestResponse {
    worker().wait_for(what, Duration::from_secs(45), || {
        Some(worker().get(path).unwrap()).filter(|res| done(res))
    })
}

/// A text answer goes out as a string body with no header init (the runtime
/// sets its content type); one whose bytes are not UTF-8 must keep them. This
/// worker adds no header to answers, so both take that path.
#[test]
fn text_answers_keep_their_bytes_and_content_type() {
    let res = worker().get("/").unwrap();
    assert_eq!(res.text(), "queues");
    assert_eq!(res.header("content-type"), Some("text/plain;charset=UTF-8"));
    let res = worker().get("/bom").unwrap();
    assert_eq!(res.body, b"\xef\xbb\xbfbom");
    let res = worker().get("/mislabelled").unwrap();
    assert_eq!(res.status, 200);
    assert_eq!(res.body, b"caf\xe9");
    assert_eq!(res.header("content-type"), Some("text/plain;charset=UTF-8"));
}

#[test]
fn round_trip_a_handler_enqueues_and_the_consumer_applies_the_effect() {
    enqueue(
        "set",
        json!({"key": "greeting", "value": "hello via the queue"}),
    );
    let res = wait_for("/kv/greeting", "the consumer's write", |r| r.status == 200);
    assert_eq!(res.text(), "hello via the queue");
}

#[test]
fn a_transient_failure_is_retried_and_the_handler_sees_the_real_attempt_count() {
    let id = enqueue("flaky", json!({"key": "flaky-result"}));
    let res = wait_for("/kv/flaky-result", "the second attempt", |r| {
        r.status == 200
    });
    // The handler stored `attempts` as the runtime reported it: 2, not a guess.
    assert_eq!(res.text(), "2");
    // And the first delivery really failed and was retried: the consumer's own
    // record of each delivery, not the handler's.
    let outcomes = worker().wait_for("both deliveries logged", Duration::from_secs(45), || {
        let outcomes = handled(&id);
        (outcomes.len() >= 2).then_some(outcomes)
    });
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert_eq!(outcomes[0].0, 1, "{outcomes:?}");
    assert!(outcomes[0].1.starts_with("Retry"), "{outcomes:?}");
    assert_eq!(outcomes[1], (2, "Ack".to_owned()));
}

/// The consumer's log of envelope `id`: `(attempts, outcome)` per delivery it
/// handled (duplicates it skipped are not handled).
fn handled(id: &str) -> Vec<(u64, String)> {
    worker()
        .logs()
        .lines()
        // Warnings arrive wrapped in terminal colour codes: take the JSON object.
        .filter_map(|line| {
            serde_json::from_str::<Value>(line.get(line.find('{')?..=line.rfind('}')?)?).ok()
        })
        .filter(|doc| doc["msg"] == "message handled" && doc["id"] == id)
        .map(|doc| {
            (
                doc["attempts"].as_u64().unwrap_or(0),
                doc["outcome"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_permanent_failure_ends_in_the_dlq_with_its_reason() {
    let id = enqueue("poison", json!({"anything": true}));
    let res = wait_for(&format!("/dead-letters/{id}"), "the dead letter", |r| {
        r.status == 200
    });
    let letter = res.json();
    assert_eq!(
        letter["reason"],
        "poison pill: this message can never be processed"
    );
    assert_eq!(letter["attempts"], 1);
    assert_eq!(letter["queue"], "edgeway-work");
    assert_eq!(letter["original"]["kind"], "poison");
    assert_eq!(letter["original"]["id"], id.as_str());

    // An unknown kind and a body that does not decode are permanent too.
    let unknown = enqueue("no.such.kind", json!({}));
    let res = wait_for(&format!("/dead-letters/{unknown}"), "unknown kind", |r| {
        r.status == 200
    });
    assert!(res.json()["reason"]
        .as_str()
        .unwrap()
        .contains("no handler"));
    let bad = enqueue("count", json!({"i": "not a number"}));
    let res = wait_for(&format!("/dead-letters/{bad}"), "undecodable body", |r| {
        r.status == 200
    });
    assert!(
        res.json()["reason"]
            .as_str()
            .unwrap()
            .contains("does not decode"),
        "{}",
        res.text()
    );
}

#[test]
fn a_plain_queue_delivers_what_its_producer_sent() {
    let w = worker();
    let sent = w
        .post_json("/clicks", &json!({"link": "plain", "flaky": true}))
        .unwrap();
    assert_eq!(sent.status, 202, "{}", sent.text());
    let res = wait_for("/kv/click:plain", "the click, on its second attempt", |r| {
        r.status == 200
    });
    let seen = res.json();
    assert_eq!(seen["kind"], "queue:edgeway-clicks");
    // Retried like an envelope, with the runtime's message id as the job id: the
    // same on both attempts.
    assert_eq!(seen["attempts"], 2);
    let first = worker().get("/kv/click-first:plain").unwrap().text();
    assert_eq!(seen["id"], first.as_str(), "{seen}");

    // Something that is not a `Click` on the same queue is dead-lettered with a
    // reason, keyed by the runtime's message id.
    let sent = w
        .post_json("/clicks/raw", &json!({"link": 7, "note": "not-a-click"}))
        .unwrap();
    assert_eq!(sent.status, 202, "{}", sent.text());
    let letter = w.wait_for(
        "the undecodable click's dead letter",
        Duration::from_secs(45),
        || {
            let keys = w.get("/kv?prefix=dead-letter:").unwrap().json();
            keys["keys"].as_array().unwrap().iter().find_map(|key| {
                let id = key.as_str()?.strip_prefix("dead-letter:")?;
                let letter = w.get(&format!("/dead-letters/{id}")).unwrap().json();
                (letter["original"]["body"]["note"] == "not-a-click")
                    .then(|| (id.to_owned(), letter))
            })
        },
    );
    let (key_id, letter) = letter;
    // Keyed by the id its handler saw: the runtime's message id.
    assert_eq!(letter["original"]["id"], key_id.as_str(), "{letter}");
    assert!(!key_id.starts_with("raw-"), "{key_id}");
    assert_eq!(letter["queue"], "edgeway-clicks");
    assert_eq!(letter["original"]["kind"], "queue:edgeway-clicks");
    assert!(
        letter["reason"]
            .as_str()
            .unwrap()
            .contains("does not decode"),
        "{letter}"
    );
}

#[test]
fn cron_triggers_run_their_handler_and_failures_are_reported() {
    let w = worker();
    // Miniflare's stand-in for the scheduler: the event as a cron trigger fires it.
    let fire = |cron: &str| {
        w.get(&format!(
            "/cdn-cgi/local/scheduled?cron={}",
            cron.replace(' ', "+")
        ))
        .unwrap()
    };
    let res = fire("*/5 * * * *");
    assert_eq!(res.status, 200, "{}", res.text());
    let fired = wait_for("/kv/cron:last", "the cron handler's write", |r| {
        r.status == 200
    })
    .json();
    assert_eq!(fired["cron"], "*/5 * * * *");
    assert!(
        fired["scheduled_time_ms"].as_u64().unwrap() > 1_600_000_000_000,
        "{fired}"
    );

    // A failing handler and an expression nobody handles both fail the
    // invocation, with the reason in the log.
    assert_eq!(fire("0 3 * * *").status, 500);
    assert_eq!(fire("1 1 1 1 1").status, 500);
    w.wait_for("both failures logged", Duration::from_secs(30), || {
        let logs = w.logs();
        (logs.contains("the nightly report failed on purpose")
            && logs.contains(r#"no handler for cron \"1 1 1 1 1\""#))
        .then_some(())
    });
}

fn skipped_duplicates() -> usize {
    worker()
        .logs()
        .matches("duplicate delivery skipped")
        .count()
}

fn wait_for_skips(at_least: usize) {
    let what = format!("{at_least} skipped duplicates");
    worker().wait_for(&what, Duration::from_secs(45), || {
        (skipped_duplicates() >= at_least).then_some(())
    });
}

#[test]
fn a_redelivered_message_is_applied_once() {
    let body = json!({"key": "tally"});
    let send = || {
        let res = worker()
            .post_json("/enqueue/tally?id=tally-once-0001", &body)
            .unwrap();
        assert_eq!(res.status, 202);
    };
    // Two copies at once (most likely in one batch)...
    send();
    send();
    wait_for_skips(1);
    let res = wait_for("/kv/tally", "the tally", |r| r.status == 200);
    assert_eq!(res.text(), "1", "the effect was applied exactly once");
    // ...and a third copy after the first was processed.
    send();
    wait_for_skips(2);
    assert_eq!(worker().get("/kv/tally").unwrap().text(), "1");
    // The tally's read-modify-write could hide two concurrent applications; the
    // consumer's log cannot: one delivery handled, the others skipped.
    assert_eq!(handled("tally-once-0001"), [(1, "Ack".to_owned())]);
}

#[test]
fn a_batch_of_250_is_split_and_arrives_complete() {
    let res = worker()
        .send("POST", "/enqueue-many/250", &[], vec![])
        .unwrap();
    assert_eq!(res.status, 202, "{}", res.text());
    let sent = res.json();
    assert_eq!(sent["sent"], 250);
    assert!(sent["chunks"].as_u64().unwrap() >= 3, "{sent}");
    let res = wait_for("/kv?prefix=count:", "all 250 messages", |r| {
        r.json()["count"] == 250
    });
    assert_eq!(res.json()["count"], 250);

    // 60 messages of ~5 KB are 300 KB: one sendBatch would fail, so it takes two.
    let res = worker()
        .send("POST", "/enqueue-many/60?pad=5000", &[], vec![])
        .unwrap();
    assert_eq!(res.status, 202, "{}", res.text());
    assert_eq!(res.json()["chunks"], 2);
}

#[test]
fn a_batch_is_processed_concurrently_within_the_limit() {
    let res = worker()
        .send("POST", "/enqueue-many/24?kind=overlap", &[], vec![])
        .unwrap();
    assert_eq!(res.status, 202, "{}", res.text());
    wait_for("/kv?prefix=overlap:", "24 overlapping handlers", |r| {
        r.json()["count"] == 24
    });
    let peaks: Vec<u32> = (0..24)
        .map(|i| {
            worker()
                .get(&format!("/kv/overlap:{i:04}"))
                .unwrap()
                .text()
                .parse()
                .unwrap()
        })
        .collect();
    let peak = *peaks.iter().max().unwrap();
    // Handlers overlapped (not one at a time), and never more than `concurrency(8)`.
    assert!(peak > 1, "handlers ran one at a time: {peaks:?}");
    assert!(peak <= 8, "more than 8 handlers at once: {peaks:?}");
}

#[test]
fn a_kind_with_a_limit_of_one_runs_one_message_at_a_time() {
    let res = worker()
        .send("POST", "/enqueue-many/8?kind=serial", &[], vec![])
        .unwrap();
    assert_eq!(res.status, 202, "{}", res.text());
    wait_for("/kv?prefix=serial:", "8 serial handlers", |r| {
        r.json()["count"] == 8
    });
    // The batch runs 8 at a time, but never two `serial` handlers at once.
    for i in 0..8 {
        let peak = worker().get(&format!("/kv/serial:{i:04}")).unwrap().text();
        assert_eq!(peak, "1", "serial:{i:04}");
    }
}

#[test]
fn limits_are_clear_4xx_problems_and_nothing_is_sent() {
    let doc = worker()
        .send("POST", "/oversized", &[], vec![])
        .unwrap()
        .assert_problem(413);
    assert!(doc["detail"].as_str().unwrap().contains("128000"), "{doc}");

    let doc = worker()
        .post_json(
            "/enqueue/set?delay=50000",
            &json!({"key": "k", "value": "v"}),
        )
        .unwrap()
        .assert_problem(400);
    assert!(doc["detail"].as_str().unwrap().contains("43200"), "{doc}");

    let res = worker()
        .send(
            "PUT",
            "/kv/short-lived?ttl=30",
            &[("content-type", "text/plain")],
            b"v".to_vec(),
        )
        .unwrap();
    let doc = res.assert_problem(400);
    assert!(
        doc["detail"].as_str().unwrap().contains("at least 60"),
        "{doc}"
    );
    worker().get("/kv/short-lived").unwrap().assert_problem(404);

    let long_key = "k".repeat(600);
    let doc = worker()
        .send("PUT", &format!("/kv/{long_key}"), &[], b"v".to_vec())
        .unwrap()
        .assert_problem(400);
    assert!(doc["detail"].as_str().unwrap().contains("512"), "{doc}");

    let res = worker()
        .send("PUT", "/kv/fine?ttl=120", &[], b"kept".to_vec())
        .unwrap();
    assert_eq!(res.status, 204, "{}", res.text());
    assert_eq!(worker().get("/kv/fine").unwrap().text(), "kept");
}

/// Two copies of one message at once (the same envelope on two queues the
/// consumer serves, handled in parallel): one runs, the other finds it running,
/// waits, and is skipped once it is done. The handler counts its runs in a
/// counter object, which loses no update. (A KV "seen" check let both run.)
#[test]
fn two_copies_of_a_message_at_once_run_it_once() {
    let w = worker();
    let id = "twice-1";
    let res = w
        .send("POST", &format!("/enqueue-twice/{id}"), &[], Vec::new())
        .unwrap();
    assert_eq!(res.status, 202, "{}", res.text());
    w.wait_for(
        "the second copy to be skipped",
        Duration::from_secs(30),
        || {
            w.logs()
                .lines()
                .any(|l| l.contains("duplicate delivery skipped") && l.contains(id))
                .then_some(())
        },
    );
    assert!(
        w.logs()
            .lines()
            .any(|l| l.contains("another copy is running") && l.contains(id)),
        "the copies overlapped: one found the other running"
    );
    assert_eq!(
        w.get(&format!("/counters/once:{id}")).unwrap().json(),
        json!(1)
    );
}

/// A batch handler gets the `sum` messages of a batch in one call: 50 messages
/// add up exactly (none lost, none twice) in far fewer calls, and a body that
/// does not decode is dead-lettered alone.
#[test]
fn a_batch_handler_aggregates_a_kind_in_one_call() {
    let w = worker();
    let res = w
        .send(
            "POST",
            "/enqueue/sum?id=bad-sum",
            &[("content-type", "application/json")],
            br#"{"i": "x"}"#.to_vec(),
        )
        .unwrap();
    assert_eq!(res.status, 202, "{}", res.text());
    let res = w
        .send("POST", "/enqueue-many/50?kind=sum", &[], Vec::new())
        .unwrap();
    assert_eq!(res.status, 202, "{}", res.text());
    let expected: i64 = (0..50).sum();
    w.wait_for("the sum of all 50", Duration::from_secs(30), || {
        (w.get("/counters/sum").unwrap().json() == json!(expected)).then_some(())
    });
    let calls = w
        .get("/counters/sum-calls")
        .unwrap()
        .json()
        .as_i64()
        .unwrap();
    assert!((1..50).contains(&calls), "50 messages took {calls} calls");
    let letter = w.wait_for(
        "the undecodable sum's dead letter",
        Duration::from_secs(30),
        || {
            let res = w.get("/dead-letters/bad-sum").unwrap();
            (res.status == 200).then(|| res.json())
        },
    );
    assert!(
        letter["reason"].as_str().unwrap().contains("invalid type"),
        "{letter:#}"
    );
    assert_eq!(w.get("/counters/sum").unwrap().json(), json!(expected));
}
