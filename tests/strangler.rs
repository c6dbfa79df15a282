//! The strangler fig, end to end: the gateway in workerd in front of a local legacy
//! origin (`tests/support/legacy_origin.py`), which echoes what reached it.

mod common;

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use edgeway::testing::{Sidecar, Worker};
use serde_json::Value;
use sha2::{Digest, Sha256};

use common::ROOT;

fn origin() -> &'static (Sidecar, String) {
    static ORIGIN: OnceLock<(Sidecar, String)> = OnceLock::new();
    ORIGIN.get_or_init(|| {
        let mut command = Command::new(format!("{ROOT}/.venv/bin/python"));
        command.arg(format!("{ROOT}/tests/support/legacy_origin.py"));
        let origin = Sidecar::start(command, "legacy origin").expect("origin starts");
        let port = origin.announcement(Duration::from_secs(30)).unwrap()["port"]
            .as_u64()
            .unwrap();
        (origin, format!("http://127.0.0.1:{port}"))
    })
}

fn gateway(rolled_back: &str) -> Worker {
    common::signed_in(Worker::builder(format!("{ROOT}/wrangler.toml")))
        .var("ORIGIN_URL", origin().1.clone())
        .var("ORIGIN_ROUTES", rolled_back)
        .ready_path("/healthz")
        .start()
        .expect("gateway starts")
}

/// Before the switch: the gateway serves its routes and proxies the rest.
fn fronting() -> &'static Worker {
    static W: OnceLock<Worker> = OnceLock::new();
    W.get_or_init(|| gateway(""))
}

#[test]
fn unmatched_requests_reach_the_origin_as_they_were_sent() {
    let w = fronting();
    let body: Vec<u8> = (0..(2 << 20)).map(|i| (i % 251) as u8).collect();
    let res = w
        .send(
            "PATCH",
            "/legacy/orders/7?expand=items&expand=notes",
            &[
                ("content-type", "application/octet-stream"),
                ("x-custom", "kept"),
                // workerd consumes `connection` itself, so the headers it lists
                // are unit-tested in `proxy`; these reach the worker and must stop.
                ("keep-alive", "timeout=5"),
                ("proxy-authorization", "Basic c2VjcmV0"),
                ("te", "trailers"),
                ("x-forwarded-for", "203.0.113.9"),
            ],
            body.clone(),
        )
        .unwrap();
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-origin"), Some("legacy"));
    assert!(
        res.header("x-request-id").is_some(),
        "edge layers still run"
    );
    let echo = res.json();
    assert_eq!(echo["method"], "PATCH");
    assert_eq!(echo["path"], "/legacy/orders/7");
    assert_eq!(echo["query"], "expand=items&expand=notes");
    // The 2 MiB body streamed through, byte for byte (no body limit applies).
    assert_eq!(echo["body_len"], body.len());
    assert_eq!(echo["body_sha256"], hex(&Sha256::digest(&body)));
    let headers = &echo["headers"];
    assert_eq!(headers["x-custom"], "kept");
    // The harness sends the root API key on every request: it is the edge's
    // credential and never reaches the origin.
    assert!(
        headers.get("authorization").is_none(),
        "the root key was forwarded: {headers}"
    );
    assert_eq!(headers["content-type"], "application/octet-stream");
    for hop in ["keep-alive", "proxy-authorization", "te"] {
        assert!(headers.get(hop).is_none(), "{hop} was forwarded: {headers}");
    }
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert!(headers["x-forwarded-host"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    // The client's chain, then the address the edge saw (`cf-connecting-ip`).
    let chain: Vec<&str> = headers["x-forwarded-for"]
        .as_str()
        .unwrap()
        .split(", ")
        .collect();
    assert_eq!(chain.len(), 2, "{chain:?}");
    assert_eq!(chain[0], "203.0.113.9");
    assert!(chain[1].parse::<std::net::IpAddr>().is_ok(), "{chain:?}");
    assert!(headers.get("x-request-id").is_some());
}

#[test]
fn redirects_pass_through_and_streams_arrive_whole() {
    let w = fronting();
    let res = w.get("/redirect").unwrap();
    assert_eq!(res.status, 302);
    assert_eq!(res.header("location"), Some("/elsewhere"));

    let res = w.get("/stream").unwrap();
    assert_eq!(res.status, 200);
    let text = res.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 50);
    assert_eq!(lines[49], "line 49");
}

#[test]
fn the_gateway_keeps_its_own_routes() {
    let w = fronting();
    let routes = w.get("/v1/routes").unwrap();
    assert_eq!(routes.status, 200);
    let table: Vec<Value> = serde_json::from_str(&routes.text()).unwrap();
    assert!(table
        .iter()
        .any(|r| r["pattern"] == "/v1/routes" && r["feature"] == "meta"));
    assert!(table
        .iter()
        .any(|r| r["pattern"] == "/v1/jobs/{kind}" && r["method"] == "POST"));
    assert_eq!(w.get("/healthz").unwrap().json()["status"], "ok");
}

#[test]
fn flipping_the_switch_sends_a_migrated_route_back_to_the_origin() {
    let request = |w: &Worker| w.get("/v1/routes?probe=1").unwrap();
    // Before: the edge answers.
    let before = request(fronting());
    assert!(before.json().is_array(), "{}", before.text());
    // After: the same request, with GET /v1/routes rolled back in configuration.
    let rolled_back = gateway("GET /v1/routes, POST /v1/nothing");
    let after = request(&rolled_back);
    assert_eq!(after.header("x-origin"), Some("legacy"));
    let echo = after.json();
    assert_eq!(echo["path"], "/v1/routes");
    assert_eq!(echo["query"], "probe=1");
    // Other routes stay at the edge.
    assert_eq!(rolled_back.get("/healthz").unwrap().json()["status"], "ok");
}

#[test]
fn an_unreachable_origin_is_a_502_problem() {
    let w = Worker::builder(format!("{ROOT}/wrangler.toml"))
        .var("ORIGIN_URL", "http://127.0.0.1:9")
        .ready_path("/healthz")
        .start()
        .unwrap();
    let doc = w.get("/legacy/anything").unwrap().assert_problem(502);
    assert_eq!(doc["type"], "urn:edgeway:problem:upstream");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
