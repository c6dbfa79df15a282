//! The gateway skeleton, deployed config and all: the root `wrangler.toml`.

use edgeway::testing::Worker;

#[test]
fn serves_health_and_the_console() {
    let worker = Worker::builder(concat!(env!("CARGO_MANIFEST_DIR"), "/wrangler.toml"))
        .ready_path("/healthz")
        .start()
        .expect("gateway starts");

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
