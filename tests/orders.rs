//! The gateway's order fulfilment workflow (examples/gateway/src/orders.rs) end
//! to end, on Miniflare's local Workflows engine: the payment service is
//! `tests/support/payments.py`, the shipping label is printed by the real
//! `examples/lambda-jobs` under `cargo lambda watch` (behind
//! `tests/support/lambda_front.py`, which loses the invocations of one address
//! on purpose), and every step is read back from the trace.

mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use common::{
    instance_ended, start_payments, start_pipeline_with, trace_lines, Pipeline, SIGNING_KEY,
};
use edgeway::jobs::JobKeys;
use edgeway::testing::{Sidecar, TestResponse, Worker};
use edgeway::webhook::WebhookSecret;
use serde_json::{json, Value};

/// Orders over this total (cents) wait for an approval.
const APPROVAL_CENTS: u64 = 50_000;
/// How long an order waits for its approval, and for its label (seconds).
const APPROVAL_SECONDS: u64 = 8;
const LABEL_SECONDS: u64 = 20;
/// An address the Lambda front accepts and never runs: the function "crashed".
const LOST: &str = "lost-in-lambda";

struct Shop {
    pipeline: Pipeline,
    _payments: Sidecar,
    payments_url: String,
}

fn shop() -> &'static Shop {
    static SHOP: OnceLock<Shop> = OnceLock::new();
    SHOP.get_or_init(|| {
        let (payments, payments_url) = start_payments();
        let url = payments_url.clone();
        let pipeline = start_pipeline_with(&["--lose-when", LOST], move |gateway| {
            gateway
                .var("PAYMENT_URL", url)
                .var("ORDER_APPROVAL_CENTS", APPROVAL_CENTS.to_string())
                .var("ORDER_APPROVAL_SECONDS", APPROVAL_SECONDS.to_string())
                .var("ORDER_LABEL_SECONDS", LABEL_SECONDS.to_string())
        });
        // A first job, so the emulator has built and started the function
        // before any order's label wait starts counting.
        let warm_up = pipeline
            .gateway
            .send(
                "POST",
                "/v1/jobs/wordcount",
                &[("content-type", "application/json")],
                br#"{"text": "warm up"}"#.to_vec(),
            )
            .unwrap();
        assert_eq!(warm_up.status, 202, "{}", warm_up.text());
        let job = warm_up.json()["id"].as_str().unwrap().to_owned();
        pipeline.gateway.wait_for(
            "the warm-up job to be done",
            Duration::from_secs(180),
            || {
                let record = pipeline
                    .gateway
                    .get(&format!("/v1/jobs/{job}"))
                    .ok()?
                    .json();
                (record["status"] == "done").then_some(())
            },
        );
        Shop {
            pipeline,
            _payments: payments,
            payments_url,
        }
    })
}

fn gateway() -> &'static Worker {
    &shop().pipeline.gateway
}

/// An order of `quantity` × 1,000 cents for `customer`, shipped to `name`.
fn order(id: &str, customer: &str, name: &str, quantity: u32) -> Value {
    json!({
        "id": id,
        "customer": customer,
        "items": [{"sku": "mug-blue", "quantity": quantity, "unit_cents": 1000}],
        "ship_to": {"name": name, "line1": "1 Loop Street", "city": "Leeds",
                    "postcode": "LS1 1AA", "country": "GB"},
    })
}

fn place(order: &Value) -> TestResponse {
    gateway().post_json("/v1/orders", order).unwrap()
}

fn placed(order: &Value) {
    let res = place(order);
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["id"], order["id"]);
}

fn show(id: &str) -> Value {
    let res = gateway().get(&format!("/v1/orders/{id}")).unwrap();
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

/// Waits (bounded) for the instance to end; what `GET /v1/orders/{id}` shows then.
fn ended(id: &str, within: Duration) -> Value {
    gateway().wait_for(&format!("order {id} to end"), within, || {
        let doc = show(id);
        instance_ended(&doc).then_some(doc)
    })
}

fn ledger() -> Value {
    ureq::get(&format!("{}/ledger", shop().payments_url))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .map(|text| serde_json::from_str(&text).unwrap())
        .unwrap()
}

fn kv(key: &str) -> TestResponse {
    gateway().get(&format!("/v1/kv/{key}")).unwrap()
}

/// The event the instance published, as the fan-out stored it.
fn published(doc: &Value) -> Value {
    let id = doc["engine"]["output"]["event"]
        .as_str()
        .expect("an event id");
    let res = gateway().get(&format!("/v1/events/{id}")).unwrap();
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["event"].clone()
}

#[test]
fn an_order_charged_on_its_third_attempt_completes_with_a_label_from_lambda() {
    placed(&order("happy-1", "flaky-ann", "Ann Smith", 3));
    let doc = ended("happy-1", Duration::from_secs(90));
    let output = &doc["engine"]["output"];
    assert_eq!(doc["engine"]["status"], "complete", "{doc:#}");
    assert_eq!(output["status"], "completed", "{doc:#}");
    assert_eq!(output["total_cents"], 3000);
    assert!(output.get("reason").is_none(), "{output}");
    assert!(
        output.get("approved_by").is_none(),
        "no approval under the threshold"
    );
    // Printed by the Lambda function, for this order.
    let tracking = output["label"]["tracking"]
        .as_str()
        .expect("a tracking number");
    assert!(tracking.starts_with("EW"), "{tracking}");
    assert!(output["label"]["text"]
        .as_str()
        .unwrap()
        .contains("Ann Smith\n1 Loop Street"));
    assert_eq!(
        trace_lines(&doc),
        [
            "reserve stock#1 ok",
            "charge#1 error",
            "charge#2 error",
            "charge#3 ok",
            "label: submit#1 ok",
            "label#1 ok",
            "publish order.completed#1 ok",
        ],
        "every step once, the charge's three attempts each a row"
    );
    assert!(doc["steps"][1]["error"].as_str().unwrap().contains("503"));
    assert_eq!(doc["instance"]["outcome"], "complete");

    // The third attempt's charge is the output, and the service charged once.
    let ledger = ledger();
    assert_eq!(ledger["attempts"]["happy-1"], 3);
    let charge = ledger["charges"]["happy-1"]["id"].as_str().unwrap();
    assert_eq!(output["charge"], charge);
    assert!(ledger["refunds"].get(charge).is_none());

    let event = published(&doc);
    assert_eq!(event["type"], "order.completed");
    assert_eq!(event["topic"], "orders");
    assert_eq!(event["data"]["label"]["tracking"], tracking);
    let hold = kv("stock-hold:happy-1").json();
    assert_eq!(hold["released"], false);
    assert_eq!(hold["items"][0]["quantity"], 3);
}

#[test]
fn a_payment_service_that_stays_down_fails_the_order_after_its_retries() {
    placed(&order("down-1", "down-dan", "Dan", 1));
    let doc = ended("down-1", Duration::from_secs(60));
    let output = &doc["engine"]["output"];
    assert_eq!(output["status"], "failed", "{doc:#}");
    let reason = output["reason"].as_str().unwrap();
    assert!(reason.contains("answered 503"), "{reason}");
    // The charge's first attempt and its three retries, then the undo.
    assert_eq!(
        trace_lines(&doc),
        [
            "reserve stock#1 ok",
            "charge#1 error",
            "charge#2 error",
            "charge#3 error",
            "charge#4 error",
            "refund#1 ok",
            "release stock#1 ok",
            "publish order.failed#1 ok",
        ]
    );
    assert_eq!(ledger()["attempts"]["down-1"], 4);
    assert_eq!(kv("stock-hold:down-1").json()["released"], true);
}

#[test]
fn a_declined_card_releases_the_stock_and_publishes_order_failed() {
    placed(&order("declined-1", "declined-bob", "Bob", 1));
    let doc = ended("declined-1", Duration::from_secs(60));
    let output = &doc["engine"]["output"];
    assert_eq!(output["status"], "failed", "{doc:#}");
    let reason = output["reason"].as_str().unwrap();
    assert!(
        reason.contains("402") && reason.contains("card declined"),
        "{reason}"
    );
    // A 402 is final: one attempt, then the compensations (a refund of
    // nothing: the key charged nothing) and the news.
    assert_eq!(
        trace_lines(&doc),
        [
            "reserve stock#1 ok",
            "charge#1 error",
            "refund#1 ok",
            "release stock#1 ok",
            "publish order.failed#1 ok",
        ]
    );
    let ledger = ledger();
    assert_eq!(ledger["attempts"]["declined-1"], 1);
    assert!(ledger["charges"].get("declined-1").is_none());
    assert!(output.get("charge").is_none(), "{output}");
    assert_eq!(kv("stock-hold:declined-1").json()["released"], true);
    let event = published(&doc);
    assert_eq!(event["type"], "order.failed");
    assert_eq!(event["attributes"]["status"], "failed");
    assert_eq!(event["data"]["reason"], reason);
}

/// Waits until the order's instance waits for its approval.
fn awaiting_approval(id: &str) {
    gateway().wait_for(
        &format!("order {id} to wait for its approval"),
        Duration::from_secs(60),
        || {
            trace_lines(&show(id))
                .contains(&"approval#1 waiting".to_owned())
                .then_some(())
        },
    );
}

fn approve(id: &str, by: &str) -> TestResponse {
    gateway()
        .post_json(&format!("/v1/orders/{id}/approve"), &json!({ "by": by }))
        .unwrap()
}

#[test]
fn a_large_order_waits_for_its_approval_and_completes_once_approved() {
    placed(&order("large-1", "carol", "Carol", 60));
    awaiting_approval("large-1");
    assert_eq!(approve("large-1", "dana@shop").status, 202);
    let doc = ended("large-1", Duration::from_secs(60));
    let output = &doc["engine"]["output"];
    assert_eq!(output["status"], "completed", "{doc:#}");
    assert_eq!(output["approved_by"], "dana@shop");
    assert_eq!(output["total_cents"], 60_000);
    assert_eq!(
        trace_lines(&doc),
        [
            "reserve stock#1 ok",
            "charge#1 ok",
            "approval#1 ok",
            "label: submit#1 ok",
            "label#1 ok",
            "publish order.completed#1 ok",
        ]
    );
    // An approval for an order that has ended changes nothing.
    let problem = approve("large-1", "dana@shop").assert_problem(409);
    assert!(problem["detail"].as_str().unwrap().contains("has ended"));
}

#[test]
fn a_large_order_without_an_approval_is_cancelled_refunded_and_released() {
    placed(&order("large-2", "erin", "Erin", 80));
    let doc = ended("large-2", Duration::from_secs(60 + APPROVAL_SECONDS));
    let output = &doc["engine"]["output"];
    assert_eq!(output["status"], "cancelled", "{doc:#}");
    assert_eq!(
        output["reason"],
        format!("no approval within {APPROVAL_SECONDS} s for an order of 80000 cents")
    );
    // Undone newest first: the refund, then the stock.
    assert_eq!(
        trace_lines(&doc),
        [
            "reserve stock#1 ok",
            "charge#1 ok",
            "approval#1 timeout",
            "refund#1 ok",
            "release stock#1 ok",
            "publish order.cancelled#1 ok",
        ]
    );
    let ledger = ledger();
    let charge = ledger["charges"]["large-2"]["id"].as_str().unwrap();
    assert_eq!(ledger["refunds"][charge], "large-2");
    assert_eq!(output["charge"], charge, "the charge made, and refunded");
    assert_eq!(kv("stock-hold:large-2").json()["released"], true);
    assert_eq!(published(&doc)["type"], "order.cancelled");
}

#[test]
fn a_label_function_that_never_calls_back_ends_in_the_fallback() {
    placed(&order("lost-1", "frank", LOST, 1));
    gateway().wait_for(
        "the order to wait for its label",
        Duration::from_secs(60),
        || {
            trace_lines(&show("lost-1"))
                .contains(&"label#1 waiting".to_owned())
                .then_some(())
        },
    );
    // Waiting, but for its label: an approval is refused.
    let problem = approve("lost-1", "dana").assert_problem(409);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("is not waiting for an approval"),
        "{problem}"
    );
    let doc = ended("lost-1", Duration::from_secs(60 + LABEL_SECONDS));
    let output = &doc["engine"]["output"];
    assert_eq!(output["status"], "completed", "{doc:#}");
    assert!(output.get("label").is_none(), "{output}");
    let reason = output["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("the label must be written by hand: job ")
            && reason.ends_with(&format!("did not call back within {LABEL_SECONDS} s")),
        "{reason}"
    );
    assert_eq!(
        trace_lines(&doc),
        [
            "reserve stock#1 ok",
            "charge#1 ok",
            "label: submit#1 ok",
            "label#1 timeout",
            "label fallback#1 ok",
            "publish order.completed#1 ok",
        ]
    );
    assert_eq!(kv("hand-label:lost-1").text(), reason);
    // The job the instance gave up on still shows who waited for it.
    let job_id = reason
        .trim_start_matches("the label must be written by hand: job ")
        .split(' ')
        .next()
        .unwrap();
    let job = gateway().get(&format!("/v1/jobs/{job_id}")).unwrap().json();
    assert_eq!(job["kind"], "label");
    assert_eq!(
        job["status"], "running",
        "accepted by Lambda, never reported"
    );
    assert_eq!(
        job["waiter"],
        json!({"binding": "ORDERS", "instance": "lost-1", "step": "label"})
    );

    // The function's callback, late: the job is done, the instance that gave
    // up takes nothing, and the order stands as it ended.
    let body = br#"{"status":"done","output":{"tracking":"EW0000000001"}}"#;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let secret = JobKeys::new(SIGNING_KEY).unwrap().callback_secret(job_id);
    let signature = WebhookSecret::parse(&secret)
        .unwrap()
        .sign(job_id, now, body);
    let res = gateway()
        .send(
            "POST",
            &format!("/v1/jobs/{job_id}/result"),
            &[
                ("content-type", "application/json"),
                ("webhook-id", job_id),
                ("webhook-timestamp", &now.to_string()),
                ("webhook-signature", &signature),
            ],
            body.to_vec(),
        )
        .unwrap();
    assert_eq!(res.status, 200, "{}", res.text());
    let job = gateway().get(&format!("/v1/jobs/{job_id}")).unwrap().json();
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(show("lost-1")["engine"]["output"], *output);
}

#[test]
fn a_label_the_function_cannot_print_ends_in_the_fallback_at_once() {
    let mut no_city = order("unprintable-1", "gina", "Gina", 1);
    no_city["ship_to"]["city"] = json!(" ");
    placed(&no_city);
    let doc = ended("unprintable-1", Duration::from_secs(60));
    let output = &doc["engine"]["output"];
    assert_eq!(output["status"], "completed", "{doc:#}");
    let reason = output["reason"].as_str().unwrap();
    assert!(
        reason.contains("failed: the function reported: the address has no city"),
        "{reason}"
    );
    // The failure arrived as the job's event: no wait ran out.
    assert_eq!(
        trace_lines(&doc),
        [
            "reserve stock#1 ok",
            "charge#1 ok",
            "label: submit#1 ok",
            "label#1 ok",
            "label fallback#1 ok",
            "publish order.completed#1 ok",
        ]
    );
}

#[test]
fn bad_orders_and_unknown_instances_get_clear_problems() {
    let w = gateway();
    let send = |body: &[u8]| {
        w.send(
            "POST",
            "/v1/orders",
            &[("content-type", "application/json")],
            body.to_vec(),
        )
        .unwrap()
    };
    send(b"{\"id\": ").assert_problem(400);
    send(b"[]").assert_problem(422);
    // Every violation at once, each with its path.
    let mut bad = order("bad id!", "", "Gus", 0);
    bad["ship_to"]["country"] = json!("GBR");
    let problem = place(&bad).assert_problem(422);
    let paths: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    for path in ["id", "customer", "items[0].quantity", "ship_to.country"] {
        assert!(paths.contains(&path), "{path} in {paths:?}");
    }
    let mut unknown_field = order("x-1", "gus", "Gus", 1);
    unknown_field["coupon"] = json!("FREE");
    place(&unknown_field).assert_problem(422);
    send(&vec![b' '; 70 * 1024]).assert_problem(413);
    assert_eq!(
        w.get("/v1/orders/x-1").unwrap().status,
        404,
        "nothing started"
    );

    // Placing the same order twice starts one instance.
    placed(&order("twice-1", "hank", "Hank", 1));
    let problem = place(&order("twice-1", "hank", "Hank", 1)).assert_problem(409);
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("already been placed"));

    w.get("/v1/orders/no-such-order")
        .unwrap()
        .assert_problem(404);
    approve("no-such-order", "dana").assert_problem(404);
    w.post_json("/v1/orders/twice-1/approve", &json!({"by": " "}))
        .unwrap()
        .assert_problem(422);
    w.post_json(
        "/v1/orders/twice-1/approve",
        &json!({"by": "a", "note": "b"}),
    )
    .unwrap()
    .assert_problem(422);
    // An oversized event never reaches the engine.
    w.post_json(
        "/v1/orders/twice-1/approve",
        &json!({"by": "x".repeat(70 * 1024)}),
    )
    .unwrap()
    .assert_problem(413);
    w.get("/v1/workflows/shipping/instances")
        .unwrap()
        .assert_problem(404);
    w.get("/v1/workflows/orders/instances/no-such-order")
        .unwrap()
        .assert_problem(404);
    ended("twice-1", Duration::from_secs(60));
}

#[test]
fn a_hundred_concurrent_orders_all_end_completed_or_failed_with_a_reason() {
    let w = gateway();
    let ids: Vec<String> = (0..100).map(|i| format!("rush-{i:03}")).collect();
    std::thread::scope(|scope| {
        for chunk in ids.chunks(10) {
            scope.spawn(move || {
                for id in chunk {
                    // Every tenth card is declined.
                    let customer = if id.ends_with('7') {
                        "declined-rush"
                    } else {
                        "rush"
                    };
                    placed(&order(id, customer, "Rush", 2));
                }
            });
        }
    });
    let mut ends: BTreeMap<String, usize> = BTreeMap::new();
    let mut labelled = 0;
    for id in &ids {
        let doc = ended(id, Duration::from_secs(240));
        let output = &doc["engine"]["output"];
        assert_eq!(doc["engine"]["status"], "complete", "{id}: {doc:#}");
        let status = output["status"].as_str().unwrap();
        match status {
            // A label from Lambda or, when 90 jobs queue up behind one local
            // emulator for longer than the wait, the timeout's fallback: an
            // end with its reason either way, and never another error.
            "completed" if output["label"]["tracking"].is_string() => labelled += 1,
            "completed" => {
                let reason = output["reason"].as_str().unwrap_or_default();
                assert!(
                    reason.ends_with(&format!("did not call back within {LABEL_SECONDS} s")),
                    "{id}: {output}"
                );
            }
            "failed" => {
                assert!(id.ends_with('7'), "{id} failed: {output}");
                assert!(output["reason"].as_str().unwrap().contains("card declined"));
            }
            other => panic!("{id} ended {other}: {output}"),
        }
        *ends.entry(status.to_owned()).or_default() += 1;
    }
    assert_eq!(ends.get("failed"), Some(&10), "{ends:?}");
    assert_eq!(ends.get("completed"), Some(&90), "{ends:?}");
    // The jobs wake their orders under this load too (the tests above hold
    // each single order to its label).
    assert!(
        labelled > 0,
        "no order of the rush got its label from Lambda"
    );
    println!("{labelled} of 90 rush orders labelled by Lambda within {LABEL_SECONDS} s");
    // Listed by the trace, newest first, each ended.
    let listed = w.get("/v1/workflows/orders/instances").unwrap().json();
    let rush: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["instance"].as_str().unwrap().starts_with("rush-"))
        .collect();
    assert!(rush.len() >= 90, "{} rush instances listed", rush.len());
    assert!(rush.iter().all(|i| i["outcome"] == "complete"));
}
