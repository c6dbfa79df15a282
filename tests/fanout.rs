//! Fan-out through the gateway in workerd: subscriptions, publish, signed webhook
//! deliveries verified by the official `standardwebhooks` library (Python), retries,
//! 410, replay, filters at scale, and the SSRF guard.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use edgeway::testing::{Sidecar, Worker};
use serde_json::{json, Value};

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
/// The second secret of a rotation in progress.
const NEXT_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
use common::ROOT;

/// The Python receiver, in its own process group like the worker.
struct Receiver {
    port: u16,
    _process: Sidecar,
}

fn receiver() -> &'static Receiver {
    static RECEIVER: OnceLock<Receiver> = OnceLock::new();
    RECEIVER.get_or_init(|| {
        let mut command = Command::new(format!("{ROOT}/.venv/bin/python"));
        command
            .arg(format!("{ROOT}/tests/support/webhook_receiver.py"))
            .args([SECRET, NEXT_SECRET]);
        let process = Sidecar::start(command, "webhook receiver")
            .expect("start the receiver (did `make toolchain` create .venv?)");
        let info = process.announcement(Duration::from_secs(30)).unwrap();
        Receiver {
            port: info["port"].as_u64().expect("receiver port") as u16,
            _process: process,
        }
    })
}

fn gateway() -> &'static Worker {
    static WORKER: OnceLock<Worker> = OnceLock::new();
    WORKER.get_or_init(|| {
        common::signed_in(Worker::builder(format!("{ROOT}/wrangler.toml")))
            .var("WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
            .ready_path("/healthz")
            .start()
            .expect("gateway starts")
    })
}

fn received() -> Vec<Value> {
    let url = format!("http://127.0.0.1:{}/received", receiver().port);
    let body = ureq::get(&url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    serde_json::from_str::<Value>(&body)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn subscribe(topic: &str, path: &str, filter: Value) -> String {
    let url = format!("http://127.0.0.1:{}{path}", receiver().port);
    let mut body =
        json!({"target": {"kind": "webhook", "url": url, "secrets": [SECRET, NEXT_SECRET]}});
    if !filter.is_null() {
        body["filter"] = filter;
    }
    let res = gateway()
        .post_json(&format!("/v1/topics/{topic}/subscriptions"), &body)
        .unwrap();
    assert_eq!(res.status, 201, "{}", res.text());
    assert!(
        !res.text().contains("whsec_"),
        "secrets leaked: {}",
        res.text()
    );
    res.json()["id"].as_str().unwrap().to_owned()
}

fn publish(topic: &str, event: Value) -> (String, u64) {
    let res = gateway()
        .post_json(&format!("/v1/topics/{topic}/events"), &event)
        .unwrap();
    assert_eq!(res.status, 202, "{}", res.text());
    let doc = res.json();
    (
        doc["id"].as_str().unwrap().to_owned(),
        doc["matched"].as_u64().unwrap(),
    )
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    gateway().wait_for(what, Duration::from_secs(60), || done().then_some(()));
}

/// Waits until event `id`'s single delivery is logged as delivered after
/// `attempts` attempts (any number when `None`).
fn wait_logged_delivered(id: &str, attempts: Option<u64>) {
    wait_until("the delivery log", || {
        let doc = gateway().get(&format!("/v1/events/{id}")).unwrap().json();
        let delivery = &doc["deliveries"][0];
        delivery["state"] == "delivered"
            && attempts.is_none_or(|n| delivery["attempts"].as_u64() == Some(n))
    });
}

/// Waits until the receiver at `path` has seen attempt `n` of event `id`.
fn wait_attempt(path: &str, id: &str, n: u64) {
    wait_until(&format!("attempt {n} at {path}"), || {
        deliveries_to(path)
            .iter()
            .any(|r| r["id"] == id && r["attempt"].as_u64() == Some(n))
    });
}

fn deliveries_to(path: &str) -> Vec<Value> {
    received()
        .into_iter()
        .filter(|r| r["path"] == path)
        .collect()
}

#[test]
fn deliveries_are_signed_and_verify_with_the_reference_library() {
    subscribe("ref", "/ok?sub=ref", Value::Null);
    let (id, matched) = publish(
        "ref",
        json!({"type": "order.created", "data": {"order": 1}}),
    );
    assert_eq!(matched, 1);
    wait_until("the delivery", || {
        deliveries_to("/ok?sub=ref")
            .iter()
            .any(|r| r["id"] == id.as_str())
    });
    let got = deliveries_to("/ok?sub=ref");
    assert!(got.iter().all(|r| r["verified"] == true), "{got:?}");
    // Two secrets (a rotation in progress): two v1 signatures on each delivery,
    // each of which verifies with its own secret.
    assert_eq!(got[0]["signatures"], 2);
    assert_eq!(got[0]["verified_each"], json!([true, true]), "{got:?}");
    wait_logged_delivered(&id, None);
}

#[test]
fn a_receiver_failing_twice_gets_the_event_on_the_third_attempt() {
    subscribe("flaky", "/flaky", Value::Null);
    let (id, _) = publish("flaky", json!({"type": "t"}));
    wait_attempt("/flaky", &id, 3);
    wait_logged_delivered(&id, Some(3));
    // Same webhook-id on every attempt: all three arrived under the event's id
    // (the receiver numbers attempts per webhook-id, so a new id per retry would
    // show as three first attempts under three ids).
    let attempts: Vec<u64> = deliveries_to("/flaky")
        .iter()
        .filter(|r| r["id"] == id.as_str())
        .map(|r| r["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
}

#[test]
fn an_answer_that_never_ends_is_read_only_to_its_cap() {
    // Reading the whole answer would run into the 10 s timeout on every attempt;
    // read to its cap, the 200 is a delivery on the first.
    subscribe("endless", "/endless", Value::Null);
    let (id, _) = publish("endless", json!({"type": "t"}));
    wait_logged_delivered(&id, Some(1));
}

#[test]
fn retry_after_from_a_429_is_honoured() {
    subscribe("slow", "/slow", Value::Null);
    let (id, _) = publish("slow", json!({"type": "t"}));
    wait_attempt("/slow", &id, 2);
    wait_logged_delivered(&id, Some(2));
    // The receiver asked for 8 s. Ignoring it, the consumer's backoff would have
    // redelivered within its first window (0–2 s, plus the 1 s batch timeout).
    let at = |n: u64| {
        deliveries_to("/slow")
            .iter()
            .find(|r| r["id"] == id.as_str() && r["attempt"].as_u64() == Some(n))
            .and_then(|r| r["at"].as_f64())
            .unwrap()
    };
    let gap = at(2) - at(1);
    assert!(
        gap >= 7.5,
        "redelivered {gap:.1} s after a Retry-After of 8 s"
    );
}

#[test]
fn a_receiver_that_stays_down_ends_in_the_dlq_and_the_subscription_is_marked_failing() {
    let sub = subscribe("down", "/down", Value::Null);
    let (id, _) = publish("down", json!({"type": "t"}));
    // The gateway's consumer gives up after 5 attempts (backoff 2 s doubling, with
    // full jitter: about 15 s on average, at most 30 s).
    wait_until("the delivery to fail for good", || {
        let doc = gateway().get(&format!("/v1/events/{id}")).unwrap().json();
        doc["deliveries"][0]["state"] == "failed"
    });
    let doc = gateway().get(&format!("/v1/events/{id}")).unwrap().json();
    let record = &doc["deliveries"][0];
    assert_eq!(record["attempts"], 5, "{record}");
    assert_eq!(record["last_status"], 503);
    assert!(
        record["last_error"].as_str().unwrap().contains("503"),
        "{record}"
    );
    assert_eq!(
        deliveries_to("/down")
            .iter()
            .filter(|r| r["id"] == id.as_str())
            .count(),
        5
    );
    let subs = gateway()
        .get("/v1/topics/down/subscriptions")
        .unwrap()
        .json();
    assert_eq!(subs[0]["id"], sub.as_str());
    assert_eq!(subs[0]["status"], "failing");
    // The DLQ consumer recorded the dead letter, with the reason, in KV.
    wait_until("the dead letter to be recorded", || {
        let keys = gateway().get("/v1/kv?prefix=dead-letter:").unwrap().json();
        keys.as_array().unwrap().iter().any(|k| {
            let letter = gateway()
                .get(&format!("/v1/kv/{}", k["name"].as_str().unwrap()))
                .unwrap()
                .json();
            letter["original"]["body"]["event_id"] == id.as_str()
                && letter["reason"]
                    .as_str()
                    .unwrap_or("")
                    .contains("gave up after 5 attempts")
        })
    });
}

#[test]
fn gone_disables_the_subscription_and_replay_redelivers() {
    let gone = subscribe("replay", "/gone?sub=gone", Value::Null);
    let ok = subscribe("replay", "/ok?sub=replay", Value::Null);
    let (id, matched) = publish("replay", json!({"type": "t"}));
    assert_eq!(matched, 2);
    wait_until("the 410 to disable the subscription", || {
        let subs = gateway()
            .get("/v1/topics/replay/subscriptions")
            .unwrap()
            .json();
        subs.as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == gone.as_str() && s["status"] == "disabled")
    });
    wait_until("the first delivery", || {
        deliveries_to("/ok?sub=replay").len() == 1
    });

    let res = gateway()
        .send(
            "POST",
            &format!("/v1/events/{id}/replay?subscription={ok}"),
            &[],
            vec![],
        )
        .unwrap();
    assert_eq!(res.status, 202, "{}", res.text());
    assert_eq!(res.json()["matched"], 1);
    wait_until("the replayed delivery", || {
        deliveries_to("/ok?sub=replay").len() == 2
    });
    let again = deliveries_to("/ok?sub=replay");
    assert_eq!(
        again[0]["id"], again[1]["id"],
        "a replay keeps the webhook-id"
    );
    // The disabled subscription gets nothing more.
    let res = gateway()
        .send("POST", &format!("/v1/events/{id}/replay"), &[], vec![])
        .unwrap();
    assert_eq!(res.json()["matched"], 1);
    gateway()
        .send("POST", "/v1/events/nope/replay", &[], vec![])
        .unwrap()
        .assert_problem(404);
}

/// Concurrent subscribes to one topic: each topic's subscriptions live in a
/// Durable Object that applies them one after another. (A KV list read, changed
/// and written back kept 8 of 30.)
#[test]
fn fifty_concurrent_subscribes_are_all_kept_and_all_receive_the_next_event() {
    let topic = "crowd";
    let n = 50;
    let subscribers: Vec<_> = (0..n)
        .map(|i| {
            thread::spawn(move || subscribe(topic, &format!("/ok?sub=crowd-{i}"), Value::Null))
        })
        .collect();
    let ids: BTreeSet<String> = subscribers.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(ids.len(), n, "50 distinct subscriptions were created");
    let listed = gateway()
        .get(&format!("/v1/topics/{topic}/subscriptions"))
        .unwrap()
        .json();
    let listed: BTreeSet<String> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, ids, "every subscribe is listed");

    let (id, matched) = publish(topic, json!({"type": "crowd.ping", "data": {}}));
    assert_eq!(matched as usize, n);
    wait_until("a delivery to each of the 50", || {
        let got: BTreeSet<String> = received()
            .into_iter()
            .filter(|r| r["id"] == id.as_str())
            .map(|r| r["path"].as_str().unwrap().to_owned())
            .collect();
        got.len() == n
    });
}

#[test]
fn every_subscriber_gets_exactly_what_its_filter_matches() {
    let topic = "scale";
    let subscribers = [
        ("/ok?sub=orders", json!({"type": {"prefix": "order."}})),
        ("/ok?sub=eu", json!({"attributes": {"region": ["eu"]}})),
        ("/ok?sub=all", Value::Null),
    ];
    for (path, filter) in &subscribers {
        subscribe(topic, path, filter.clone());
    }
    let mut expected: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let n = 30;
    for i in 0..n {
        let kind = if i % 2 == 0 {
            "order.created"
        } else {
            "invoice.paid"
        };
        let region = ["eu", "us", "apac"][i % 3];
        let (id, matched) = publish(
            topic,
            json!({"type": kind, "attributes": {"region": region}, "data": {"i": i}}),
        );
        let mut m = 0;
        for (path, _) in &subscribers {
            let wants = match *path {
                "/ok?sub=orders" => kind.starts_with("order."),
                "/ok?sub=eu" => region == "eu",
                _ => true,
            };
            if wants {
                expected.entry(path).or_default().insert(id.clone());
                m += 1;
            }
        }
        assert_eq!(matched, m, "event {i}");
    }
    let total: usize = expected.values().map(BTreeSet::len).sum();
    wait_until("every matching delivery", || {
        subscribers
            .iter()
            .map(|(p, _)| deliveries_to(p).len())
            .sum::<usize>()
            >= total
    });
    let mut duplicates = 0;
    for (path, _) in &subscribers {
        let got = deliveries_to(path);
        assert!(got.iter().all(|r| r["verified"] == true));
        let ids: BTreeSet<String> = got
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        duplicates += got.len() - ids.len();
        assert_eq!(
            &ids, &expected[path],
            "{path} got exactly what its filter matches"
        );
    }
    eprintln!(
        "fan-out scale: {n} events x 3 subscribers, {total} deliveries, {duplicates} duplicates"
    );
}

#[test]
fn subscriptions_to_internal_addresses_are_refused() {
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "https://localhost/hook",
        "http://[::ffff:7f00:1]:9/hook",
        "https://0x7f000001/hook",
        "file:///etc/passwd",
    ] {
        let body = json!({"target": {"kind": "webhook", "url": url, "secrets": [SECRET]}});
        let res = gateway()
            .post_json("/v1/topics/ssrf/subscriptions", &body)
            .unwrap();
        // 127.0.0.1 is on this test's dev allowlist, and its IPv4 spellings normalise
        // to it. The IPv6-mapped form is another host, so it stays refused.
        if url.contains("0x7f000001") {
            assert_eq!(res.status, 201, "{url}: {}", res.text());
            continue;
        }
        let doc = res.assert_problem(422);
        assert_eq!(doc["type"], "urn:edgeway:problem:unsafe-url", "{url}");
    }
    let no_secret =
        json!({"target": {"kind": "webhook", "url": "https://example.com/", "secrets": []}});
    gateway()
        .post_json("/v1/topics/ssrf/subscriptions", &no_secret)
        .unwrap()
        .assert_problem(422);
    let bad_filter =
        json!({"target": {"kind": "queue", "binding": "EVENTS"}, "filter": {"type": []}});
    gateway()
        .post_json("/v1/topics/ssrf/subscriptions", &bad_filter)
        .unwrap()
        .assert_problem(422);
}

#[test]
fn a_subscription_declared_in_wrangler_toml_delivers_and_cannot_be_deleted() {
    let w = gateway();
    let subs = w.get("/v1/topics/audit/subscriptions").unwrap().json();
    let declared = subs
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "audit-trail")
        .expect("the root wrangler.toml declares audit-trail")
        .clone();
    assert_eq!(declared["declared"], true);
    assert_eq!(declared["kind"], "queue");

    // Filtered in: delivered to the queue, then filed in KV by the consumer.
    let (id, matched) = publish(
        "audit",
        json!({"type": "audit.recorded", "data": {"who": "ada"}}),
    );
    assert_eq!(matched, 1);
    let filed = w.wait_for("the audit record in KV", Duration::from_secs(30), || {
        let res = w.get(&format!("/v1/kv/audit:{id}")).ok()?;
        (res.status == 200).then(|| res.json())
    });
    assert_eq!(filed["data"]["who"], "ada");
    // Filtered out.
    let (_, matched) = publish("audit", json!({"type": "audit.viewed"}));
    assert_eq!(matched, 0);

    let doc = w
        .send(
            "DELETE",
            "/v1/topics/audit/subscriptions/audit-trail",
            &[],
            Vec::new(),
        )
        .unwrap()
        .assert_problem(409);
    assert!(doc["detail"].as_str().unwrap().contains("SUBSCRIPTIONS"));
}
