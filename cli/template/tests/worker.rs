//! The worker in local workerd (`wrangler dev`), over real HTTP.
#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

use edgeway::testing::Worker;
use serde_json::json;

fn start() -> Worker {
    Worker::start(concat!(env!("CARGO_MANIFEST_DIR"), "/wrangler.toml")).expect("the worker starts")
}

#[test]
fn a_short_link_redirects_and_counts_its_visits() {
    let worker = start();
    let created = worker
        .send(
            "PUT",
            "/links/docs",
            &[("content-type", "application/json")],
            json!({"url": "https://developers.cloudflare.com/workers/"})
                .to_string()
                .into_bytes(),
        )
        .unwrap();
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json()["short"], worker.url("/docs"));

    for _ in 0..3 {
        let visit = worker.get("/docs").unwrap();
        assert_eq!(visit.status, 302);
        assert_eq!(
            visit.header("location"),
            Some("https://developers.cloudflare.com/workers/")
        );
    }
    worker.wait_for("three counted clicks", Duration::from_secs(45), || {
        let link = worker.get("/links/docs").unwrap().json();
        (link["clicks"] == 3).then_some(())
    });
}

#[test]
fn bad_input_is_a_problem_and_nothing_is_stored() {
    let worker = start();
    let not_a_url = worker
        .send(
            "PUT",
            "/links/bad",
            &[("content-type", "application/json")],
            br#"{"url": "javascript:alert(1)"}"#.to_vec(),
        )
        .unwrap();
    let problem = not_a_url.assert_problem(422);
    assert_eq!(problem["field"], "url");
    worker.get("/bad").unwrap().assert_problem(404);
    worker
        .send(
            "PUT",
            "/links/bad",
            &[("content-type", "application/json")],
            b"{".to_vec(),
        )
        .unwrap()
        .assert_problem(400);
}
