//! Lambda, end to end: jobs offloaded to a function that calls back, and fan-out
//! deliveries to a Lambda subscriber. The gateway runs in workerd; its queue
//! consumer invokes Lambda with SigV4.
//!
//! Two Lambda stand-ins, both real software rather than mocks of our own:
//! - **moto** (`tests/support/moto_lambda.py`) with SigV4 enforced: it checks our
//!   signature against the IAM key it issued, so a wrong secret gets
//!   `403 SignatureDoesNotMatch`.
//! - **cargo lambda watch**, the local Lambda emulator, running the real
//!   `examples/lambda-jobs` function on `lambda_runtime`. It sits behind
//!   `tests/support/lambda_front.py`, which gives `Event` invocations AWS's
//!   answer-202-then-run semantics (the emulator answers them synchronously) and
//!   throttles the first two invocations of every job with 429.

use std::sync::OnceLock;
use std::time::Duration;

mod common;

use common::{gateway_builder, gateway_for, pipeline, python, AWS_TEST_SECRET, ROOT, SIGNING_KEY};
use edgeway::jobs::JobKeys;
use edgeway::testing::{Sidecar, Worker};
use edgeway::webhook::WebhookSecret;
use serde_json::{json, Value};

fn submit(worker: &Worker, kind: &str, content_type: &str, body: &[u8]) -> String {
    let res = worker
        .send(
            "POST",
            &format!("/v1/jobs/{kind}"),
            &[("content-type", content_type)],
            body.to_vec(),
        )
        .unwrap();
    assert_eq!(res.status, 202, "{}", res.text());
    let record = res.json();
    assert_eq!(record["status"], "queued");
    record["id"].as_str().unwrap().to_owned()
}

fn wait_status(worker: &Worker, id: &str, statuses: &[&str]) -> Value {
    worker.wait_for(
        &format!("job {id} to reach {statuses:?}"),
        Duration::from_secs(60),
        || {
            let job = worker.get(&format!("/v1/jobs/{id}")).ok()?.json();
            statuses.contains(&job["status"].as_str()?).then_some(job)
        },
    )
}

// ---- moto: SigV4 enforced ---------------------------------------------------

fn moto() -> &'static (Sidecar, Value) {
    static MOTO: OnceLock<(Sidecar, Value)> = OnceLock::new();
    MOTO.get_or_init(|| {
        let moto = Sidecar::start(python("moto_lambda.py"), "moto").expect("moto starts");
        let info = moto
            .announcement(Duration::from_secs(60))
            .expect("moto announces itself");
        (moto, info)
    })
}

/// Two gateways against moto: one with the key moto issued, one with a wrong secret.
fn moto_gateways() -> &'static (Worker, Worker) {
    static GATEWAYS: OnceLock<(Worker, Worker)> = OnceLock::new();
    GATEWAYS.get_or_init(|| {
        let (_moto, aws) = moto();
        let text = |k: &str| aws[k].as_str().unwrap().to_owned();
        let good = gateway_for(
            &text("endpoint"),
            &text("access_key_id"),
            &text("secret_access_key"),
            &text("function"),
        );
        let wrong = gateway_for(
            &text("endpoint"),
            &text("access_key_id"),
            "wrong-secret-wrong-secret-wrong-secret00",
            &text("function"),
        );
        (good, wrong)
    })
}

#[test]
fn moto_accepts_our_signed_async_invoke_and_rejects_a_wrong_secret() {
    let (good, wrong) = moto_gateways();
    let id = submit(good, "wordcount", "application/json", br#"{"text":"a b"}"#);
    // `running` is set only after Lambda (moto, checking SigV4) answered 202.
    let job = wait_status(good, &id, &["running", "failed"]);
    assert_eq!(job["status"], "running", "{job}");
    assert_eq!(job["attempts"], 1);
    assert!(job["invoked_ms"].as_u64().is_some());

    let id = submit(wrong, "wordcount", "application/json", br#"{"text":"a b"}"#);
    let job = wait_status(wrong, &id, &["running", "failed"]);
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains("403 SignatureDoesNotMatch"),
        "the reason names AWS's answer: {error}"
    );
    // A signature error is permanent: one attempt, then the DLQ.
    assert_eq!(job["attempts"], 1);
}

#[test]
fn a_lambda_subscriber_gets_fan_out_deliveries_signed_with_sigv4() {
    let (_moto, aws) = moto();
    let function = aws["function"].as_str().unwrap();
    let (good, wrong) = moto_gateways();
    for (gateway, should_deliver) in [(good, true), (wrong, false)] {
        let res = gateway
            .post_json(
                "/v1/topics/lambda-topic/subscriptions",
                &json!({"target": {"kind": "lambda", "function": function}}),
            )
            .unwrap();
        assert_eq!(res.status, 201, "{}", res.text());
        let sub = res.json();
        assert_eq!(sub["kind"], "lambda");
        let published = gateway
            .post_json(
                "/v1/topics/lambda-topic/events",
                &json!({"type": "order.created", "data": {"n": 1}}),
            )
            .unwrap()
            .json();
        assert_eq!(published["matched"], 1);
        let event = published["id"].as_str().unwrap();
        let delivery = gateway.wait_for(
            "the Lambda delivery to settle",
            Duration::from_secs(60),
            || {
                let shown = gateway.get(&format!("/v1/events/{event}")).ok()?.json();
                let d = shown["deliveries"].get(0)?.clone();
                (d["state"] == "delivered" || d["state"] == "failed").then_some(d)
            },
        );
        if should_deliver {
            assert_eq!(delivery["state"], "delivered", "{delivery}");
        } else {
            assert_eq!(delivery["state"], "failed", "{delivery}");
            assert!(delivery["last_error"]
                .as_str()
                .unwrap()
                .contains("SignatureDoesNotMatch"));
        }
    }
}

// ---- the full pipeline: cargo lambda watch running examples/lambda-jobs -----

#[test]
fn a_job_throttled_twice_by_lambda_still_ends_done_with_the_right_result() {
    let p = pipeline();
    let text = "the cat and the hat\nand the bat";
    let id = submit(
        &p.gateway,
        "wordcount",
        "application/json",
        json!({ "text": text }).to_string().as_bytes(),
    );
    let job = wait_status(&p.gateway, &id, &["done", "failed"]);
    assert_eq!(job["status"], "done", "{job}\nfront: {}", p.front.logs());
    assert_eq!(job["result"]["words"], 8);
    assert_eq!(job["result"]["lines"], 2);
    assert_eq!(job["result"]["top"][0], json!(["the", 3]));
    // Two 429s, then the accepted invocation.
    assert_eq!(job["attempts"], 3);
    let created = job["created_ms"].as_u64().unwrap();
    let invoked = job["invoked_ms"].as_u64().unwrap();
    let finished = job["finished_ms"].as_u64().unwrap();
    assert!(created <= invoked && invoked <= finished);
}

#[test]
fn an_image_goes_through_a_signed_input_url_and_comes_back_as_a_thumbnail() {
    let p = pipeline();
    let png = std::fs::read(format!("{ROOT}/tests/fixtures/gradient.png")).unwrap();
    let id = submit(&p.gateway, "thumbnail", "image/png", &png);
    let job = wait_status(&p.gateway, &id, &["done", "failed"]);
    assert_eq!(job["status"], "done", "{job}");
    let result = &job["result"];
    assert_eq!(result["original"], json!({"width": 300, "height": 200}));
    assert_eq!(result["width"], 128);
    assert_eq!(result["height"], 85);
    assert!(result["data_url"]
        .as_str()
        .unwrap()
        .starts_with("data:image/png;base64,"));

    // The input URL is signed: without a valid signature, or once expired, 401.
    for query in [
        "expires=99999999999&signature=00".to_owned(),
        JobKeys::new(SIGNING_KEY).unwrap().sign_input(&id, 1),
    ] {
        p.gateway
            .get(&format!("/v1/jobs/{id}/input?{query}"))
            .unwrap()
            .assert_problem(401);
    }
    p.gateway
        .get(&format!("/v1/jobs/{id}/input"))
        .unwrap()
        .assert_problem(400);
}

#[test]
fn forged_replayed_and_late_callbacks_are_rejected() {
    let p = pipeline();
    let id = submit(
        &p.gateway,
        "wordcount",
        "application/json",
        br#"{"text":"one two"}"#,
    );
    let done = wait_status(&p.gateway, &id, &["done", "failed"]);
    assert_eq!(done["status"], "done");

    let body = br#"{"status":"done","output":{"words":999}}"#.to_vec();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let post = |headers: &[(&str, &str)]| {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        p.gateway
            .send("POST", &format!("/v1/jobs/{id}/result"), &all, body.clone())
            .unwrap()
    };
    let signed_by = |secret: &str, timestamp: u64| {
        WebhookSecret::parse(secret)
            .unwrap()
            .sign(&id, timestamp, &body)
    };
    let ts = now.to_string();

    // No signature at all.
    let problem = post(&[]).assert_problem(401);
    assert!(problem["detail"].as_str().unwrap().contains("webhook-id"));
    // Signed with a key the edge never issued.
    let forged = signed_by(&WebhookSecret::generate(), now);
    post(&[
        ("webhook-id", &id),
        ("webhook-timestamp", &ts),
        ("webhook-signature", &forged),
    ])
    .assert_problem(401);
    // The right key, but an hour old: a replay.
    let secret = JobKeys::new(SIGNING_KEY).unwrap().callback_secret(&id);
    let old = (now - 3600).to_string();
    let late = signed_by(&secret, now - 3600);
    let problem = post(&[
        ("webhook-id", &id),
        ("webhook-timestamp", &old),
        ("webhook-signature", &late),
    ])
    .assert_problem(401);
    assert!(problem["detail"].as_str().unwrap().contains("tolerance"));
    // Valid and fresh, but the job has already ended: nothing changes.
    let fresh = signed_by(&secret, now);
    post(&[
        ("webhook-id", &id),
        ("webhook-timestamp", &ts),
        ("webhook-signature", &fresh),
    ])
    .assert_problem(409);
    let job = p.gateway.get(&format!("/v1/jobs/{id}")).unwrap().json();
    assert_eq!(job["result"]["words"], 2);
}

#[test]
fn a_job_whose_function_never_calls_back_is_failed_by_the_cron_sweep() {
    // A front that accepts the invocation (202) and never runs it: the function
    // died without calling back. The gateway's deadline is 0 s: any job running
    // when the sweep comes is overdue.
    let mut command = python("lambda_front.py");
    command
        .args(["--backend", "http://127.0.0.1:9"])
        .args(["--lose-when", "lost-in-lambda"]);
    let front = Sidecar::start(command, "lossy lambda front").expect("front starts");
    let endpoint = front.announcement(Duration::from_secs(30)).unwrap()["endpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    let gateway = gateway_builder(&endpoint, "AKIDLOCAL", AWS_TEST_SECRET, "lambda-jobs")
        .var("JOBS_DEADLINE_SECONDS", "0")
        .start()
        .expect("gateway starts");
    let id = submit(
        &gateway,
        "wordcount",
        "application/json",
        br#"{"text":"lost-in-lambda"}"#,
    );
    gateway.wait_for("the job to run", Duration::from_secs(45), || {
        let job = gateway.get(&format!("/v1/jobs/{id}")).unwrap().json();
        (job["status"] == "running").then_some(())
    });
    // The cron trigger, as Miniflare fires it locally.
    let swept = gateway
        .get("/cdn-cgi/local/scheduled?cron=*/5+*+*+*+*")
        .unwrap();
    assert_eq!(swept.status, 200, "{}", swept.text());
    let job = gateway.get(&format!("/v1/jobs/{id}")).unwrap().json();
    assert_eq!(job["status"], "failed", "{job}");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("did not call back within 0 s"),
        "{job}"
    );
    assert!(job["finished_ms"].as_u64().is_some(), "{job}");
}

#[test]
fn bad_submissions_get_clear_problems() {
    let p = pipeline();
    let send = |kind: &str, content_type: &str, body: &[u8]| {
        p.gateway
            .send(
                "POST",
                &format!("/v1/jobs/{kind}"),
                &[("content-type", content_type)],
                body.to_vec(),
            )
            .unwrap()
    };
    send("mine-bitcoin", "application/json", b"{}").assert_problem(404);
    send("Thumb!", "application/json", b"{}").assert_problem(400);
    send("thumbnail", "text/plain", b"hello").assert_problem(415);
    send("wordcount", "application/json", b"{\"text\":").assert_problem(400);
    send("wordcount", "application/json", b"{\"text\":7}").assert_problem(422);
    p.gateway
        .get("/v1/jobs/0190d5a0-0000-7000-8000-000000000000")
        .unwrap()
        .assert_problem(404);
}

#[test]
fn no_secret_reaches_a_log_line_or_a_response() {
    let p = pipeline();
    let w = &p.gateway;
    // A webhook subscription with a secret, delivering to a port nobody listens on,
    // so its failures are logged.
    let webhook_secret = WebhookSecret::generate();
    let created = w
        .post_json(
            "/v1/topics/secrets-topic/subscriptions",
            &json!({"target": {"kind": "webhook", "url": "http://127.0.0.1:9/hook",
                    "secrets": [webhook_secret]}}),
        )
        .unwrap();
    assert_eq!(created.status, 201);
    let listed = w.get("/v1/topics/secrets-topic/subscriptions").unwrap();
    let published = w
        .post_json("/v1/topics/secrets-topic/events", &json!({"type": "t"}))
        .unwrap()
        .json();
    let event = published["id"].as_str().unwrap().to_owned();
    let shown = w.wait_for("a failed delivery attempt", Duration::from_secs(30), || {
        let shown = w.get(&format!("/v1/events/{event}")).ok()?;
        shown.json()["deliveries"]
            .get(0)
            .is_some_and(|d| d["attempts"].as_u64() >= Some(1))
            .then_some(shown)
    });
    // A job (SigV4 with the AWS secret; a callback secret in its envelope) and a
    // forged callback.
    let id = submit(w, "wordcount", "application/json", br#"{"text":"s"}"#);
    let job = wait_status(w, &id, &["done", "failed"]);
    let forged = w
        .send(
            "POST",
            &format!("/v1/jobs/{id}/result"),
            &[
                ("webhook-id", &id),
                ("webhook-timestamp", "1"),
                ("webhook-signature", "v1,AAAA"),
            ],
            b"{}".to_vec(),
        )
        .unwrap();

    let callback_secret = JobKeys::new(SIGNING_KEY).unwrap().callback_secret(&id);
    let webhook_key = webhook_secret.trim_start_matches("whsec_");
    let callback_key = callback_secret.trim_start_matches("whsec_");
    let seen = [
        ("the gateway's logs", w.logs()),
        ("the subscription listing", listed.text()),
        ("the creation answer", created.text()),
        ("the event view", shown.text()),
        ("the job view", job.to_string()),
        ("the forged callback's answer", forged.text()),
    ];
    for (where_, text) in &seen {
        for (what, secret) in [
            ("JOBS_SIGNING_KEY", SIGNING_KEY),
            ("AWS_SECRET_ACCESS_KEY", AWS_TEST_SECRET),
            ("a webhook secret", webhook_key),
            ("a job's callback secret", callback_key),
        ] {
            assert!(!text.contains(secret), "{what} appears in {where_}");
        }
    }
    assert!(
        w.logs().contains("\"msg\":\"request\""),
        "the logs were captured"
    );
}
