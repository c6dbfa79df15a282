//! The gateway, deployed config and all: the root `wrangler.toml`.

use std::sync::OnceLock;
use std::time::Duration;

use edgeway::testing::Worker;

fn gateway() -> &'static Worker {
    static WORKER: OnceLock<Worker> = OnceLock::new();
    WORKER.get_or_init(|| {
        Worker::builder(concat!(env!("CARGO_MANIFEST_DIR"), "/wrangler.toml"))
            .ready_path("/healthz")
            .start()
            .expect("gateway starts")
    })
}

#[test]
fn serves_health_and_the_console() {
    let worker = gateway();
    let res = worker.get("/healthz").unwrap();
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["status"], "ok");
    assert!(res.header("x-request-id").is_some_and(|id| id.len() == 32));
    assert!(res
        .header("server-timing")
        .is_some_and(|t| t.starts_with("app;dur=")));

    let page = worker.get("/").unwrap();
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/html")));
    assert!(page.text().contains("edgeway console"));

    // API paths run the worker first: an unknown one is the worker's 404 problem.
    worker.get("/v1/nope").unwrap().assert_problem(404);
}

#[test]
fn kv_browse_get_put_delete() {
    let w = gateway();
    let put = |key: &str, value: &str| {
        w.send(
            "PUT",
            &format!("/v1/kv/{key}"),
            &[("content-type", "text/plain")],
            value.as_bytes().to_vec(),
        )
        .unwrap()
    };
    assert_eq!(put("notes/one", "first").status, 204);
    assert_eq!(put("notes/two", "second").status, 204);
    assert_eq!(put("other", "x").status, 204);
    assert_eq!(w.get("/v1/kv/notes/one").unwrap().text(), "first");

    let listed = w.get("/v1/kv?prefix=notes/").unwrap().json();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["notes/one", "notes/two"]);

    assert_eq!(
        w.send("DELETE", "/v1/kv/notes/one", &[], vec![])
            .unwrap()
            .status,
        204
    );
    w.get("/v1/kv/notes/one").unwrap().assert_problem(404);

    let doc = w
        .send("PUT", "/v1/kv/short?ttl=10", &[], b"v".to_vec())
        .unwrap()
        .assert_problem(400);
    assert!(
        doc["detail"].as_str().unwrap().contains("at least 60"),
        "{doc}"
    );
    w.send(
        "PUT",
        &format!("/v1/kv/{}", "k".repeat(600)),
        &[],
        b"v".to_vec(),
    )
    .unwrap()
    .assert_problem(400);
}

#[test]
fn a_queued_write_is_applied_by_the_consumer() {
    let w = gateway();
    let res = w
        .send(
            "POST",
            "/v1/queued/kv/later",
            &[],
            b"applied off the request path".to_vec(),
        )
        .unwrap();
    assert_eq!(res.status, 202, "{}", res.text());
    let res = w.wait_for("the consumer's write", Duration::from_secs(45), || {
        Some(w.get("/v1/kv/later").unwrap()).filter(|res| res.status == 200)
    });
    assert_eq!(res.text(), "applied off the request path");
}
