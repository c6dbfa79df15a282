//! Every extractor, built-in middleware and error path of edgeway, over real HTTP
//! against `tests/workers/conformance` running in workerd.

use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use edgeway::testing::{TestResponse, Worker};
use serde_json::json;

/// One worker for the whole file: tests share it and run in parallel, which also
/// exercises concurrent requests. Statics never drop; the harness's watchdog kills
/// the worker's process group when this test process exits.
fn worker() -> &'static Worker {
    static WORKER: OnceLock<Worker> = OnceLock::new();
    WORKER.get_or_init(|| {
        Worker::start(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/workers/conformance/wrangler.toml"
        ))
        .expect("conformance worker starts")
    })
}

fn post(path: &str, content_type: &str, body: &str) -> TestResponse {
    worker()
        .send(
            "POST",
            path,
            &[("content-type", content_type)],
            body.as_bytes().to_vec(),
        )
        .unwrap()
}

fn detail(doc: &serde_json::Value) -> &str {
    doc["detail"].as_str().unwrap()
}

#[test]
fn path_extractor() {
    let w = worker();
    assert_eq!(w.get("/path/42").unwrap().text(), "id 42");
    assert_eq!(w.get("/pair/ann%20b/9").unwrap().text(), "ann b 9");
    let doc = w.get("/path/abc").unwrap().assert_problem(400);
    assert_eq!(doc["type"], "urn:edgeway:problem:invalid-path-param");
    assert!(
        detail(&doc).contains("`id`") && detail(&doc).contains("u32"),
        "{doc}"
    );
    let doc = w.get("/pair/ann/-1").unwrap().assert_problem(400);
    assert!(detail(&doc).contains("`post`"), "{doc}");
}

#[test]
fn query_extractor() {
    let w = worker();
    assert_eq!(
        w.get("/query?offset=5&limit=10").unwrap().json(),
        json!({"offset": 5, "limit": 10})
    );
    assert_eq!(
        w.get("/query?offset=5").unwrap().json(),
        json!({"offset": 5, "limit": null})
    );
    let doc = w.get("/query?offset=x").unwrap().assert_problem(400);
    assert_eq!(doc["type"], "urn:edgeway:problem:invalid-query");
    w.get("/query").unwrap().assert_problem(400);
    w.get("/query?offset=1&offset=2")
        .unwrap()
        .assert_problem(400);
}

#[test]
fn json_extractor() {
    let res = post("/json", "application/json", r#"{"text":"hi","stars":4}"#);
    assert_eq!(res.status, 201);
    assert_eq!(res.json(), json!({"text": "hi", "stars": 4}));

    let doc = post("/json", "application/json", "{\"text\":\n\"hi\",").assert_problem(400);
    assert_eq!(doc["type"], "urn:edgeway:problem:invalid-json");
    assert!(detail(&doc).contains("line 2 column"), "{doc}");

    let doc = post("/json", "application/json", r#"{"text":"hi","stars":999}"#).assert_problem(422);
    assert_eq!(doc["type"], "urn:edgeway:problem:json-shape");

    let doc = post("/json", "text/plain", r#"{"text":"hi","stars":4}"#).assert_problem(415);
    assert!(detail(&doc).contains("application/json"), "{doc}");
    let res = worker()
        .send("POST", "/json", &[], br#"{"text":"hi","stars":4}"#.to_vec())
        .unwrap();
    res.assert_problem(415);
}

#[test]
fn form_bytes_text_headers_state_and_raw_request() {
    let w = worker();
    let res = post(
        "/form",
        "application/x-www-form-urlencoded",
        "text=a+b&stars=2",
    );
    assert_eq!(res.json(), json!({"text": "a b", "stars": 2}));
    post("/form", "application/x-www-form-urlencoded", "text=a").assert_problem(400);
    post("/form", "application/json", "text=a&stars=1").assert_problem(415);

    assert_eq!(
        w.send("POST", "/bytes", &[], vec![0, 255, 1])
            .unwrap()
            .text(),
        "3 bytes"
    );
    assert_eq!(post("/text", "text/plain", "héllo").text(), "héllo");
    let doc = w
        .send("POST", "/text", &[], vec![b'a', 0xff, 0xfe])
        .unwrap()
        .assert_problem(400);
    assert_eq!(doc["type"], "urn:edgeway:problem:invalid-utf8");

    assert_eq!(
        w.send("GET", "/headers", &[("x-test", "yes")], vec![])
            .unwrap()
            .text(),
        "yes"
    );
    assert_eq!(w.get("/state").unwrap().text(), "conformance");
    assert_eq!(w.get("/raw?a=1").unwrap().text(), "GET /raw a=1");
}

#[test]
fn url_and_origin_extractors() {
    let w = worker();
    assert_eq!(w.get("/url?q=1").unwrap().text(), w.url("/url?q=1"));
    let res = w.send("POST", "/things", &[], vec![]).unwrap();
    assert_eq!(res.status, 303);
    assert_eq!(res.header("location"), Some(w.url("/things/42").as_str()));
}

#[test]
fn env_and_context_extractors() {
    let w = worker();
    assert_eq!(w.get("/env").unwrap().text(), "hello from vars");
    assert_eq!(w.get("/ctx").unwrap().text(), "scheduled");
    wait_for_log(w, "wait_until ran");
}

#[test]
fn not_found_method_not_allowed_head_options_and_redirect() {
    let w = worker();
    let doc = w.get("/nope").unwrap().assert_problem(404);
    assert_eq!(doc["type"], "urn:edgeway:problem:not-found");

    let res = w.send("DELETE", "/path/1", &[], vec![]).unwrap();
    res.assert_problem(405);
    assert_eq!(res.header("allow"), Some("GET, HEAD, OPTIONS"));

    let res = w.send("HEAD", "/path/1", &[], vec![]).unwrap();
    assert_eq!(res.status, 200);
    assert!(res.body.is_empty());

    let res = w.send("OPTIONS", "/json", &[], vec![]).unwrap();
    assert_eq!(res.status, 204);
    assert_eq!(res.header("allow"), Some("POST, OPTIONS"));

    let res = w.get("/path/7/?x=1").unwrap();
    assert_eq!(res.status, 308);
    assert_eq!(res.header("location"), Some("/path/7?x=1"));
}

#[test]
fn request_id_timing_and_access_log_middleware() {
    let w = worker();
    let res = w.get("/tagged/1").unwrap();
    let id = res.header("x-request-id").expect("request id").to_owned();
    assert_eq!(id.len(), 32);
    assert!(res.header("server-timing").unwrap().starts_with("app;dur="));
    let res = w
        .send("GET", "/", &[("x-request-id", "client-chosen-1")], vec![])
        .unwrap();
    assert_eq!(res.header("x-request-id"), Some("client-chosen-1"));

    // One structured line per request, with the route pattern and the feature tag.
    let line = wait_for_log(w, &format!("\"request_id\":\"{id}\""));
    let log: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(log["route"], "/tagged/{id}");
    assert_eq!(log["feature"], "demo");
    assert_eq!(log["method"], "GET");
    assert_eq!(log["status"], 200);
    assert!(log["duration_ms"].is_number());
    assert!(log["cold"].is_boolean());
    // Exactly one request in this isolate was the cold one.
    let cold = w.logs().matches("\"cold\":true").count();
    assert_eq!(cold, 1, "{}", w.logs());
}

#[test]
fn cors_middleware() {
    let w = worker();
    let preflight_with = |origin: &str, method: &str, headers: &str| {
        w.send(
            "OPTIONS",
            "/json",
            &[
                ("origin", origin),
                ("access-control-request-method", method),
                ("access-control-request-headers", headers),
            ],
            vec![],
        )
        .unwrap()
    };
    let preflight = |origin: &str, method: &str| preflight_with(origin, method, "content-type");
    let res = preflight("https://app.example", "POST");
    assert_eq!(res.status, 204);
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        res.header("access-control-allow-methods"),
        Some("GET, POST, PUT")
    );
    assert_eq!(res.header("access-control-max-age"), Some("600"));
    assert_eq!(
        res.header("access-control-allow-headers"),
        Some("content-type, x-request-id")
    );
    preflight("https://evil.example", "POST").assert_problem(403);
    preflight("https://app.example", "DELETE").assert_problem(403);
    let doc =
        preflight_with("https://app.example", "POST", "content-type, x-evil").assert_problem(403);
    assert!(detail(&doc).contains("x-evil"), "{doc}");

    let res = w
        .send("GET", "/", &[("origin", "https://app.example")], vec![])
        .unwrap();
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let res = w
        .send("GET", "/", &[("origin", "https://evil.example")], vec![])
        .unwrap();
    assert_eq!(res.status, 200);
    assert_eq!(res.header("access-control-allow-origin"), None);
}

#[test]
fn body_limit_middleware() {
    let w = worker();
    assert_eq!(
        w.send("POST", "/limited/echo", &[], vec![b'x'; 16])
            .unwrap()
            .text(),
        "16 bytes"
    );
    let doc = w
        .send("POST", "/limited/echo", &[], vec![b'x'; 17])
        .unwrap()
        .assert_problem(413);
    assert_eq!(doc["type"], "urn:edgeway:problem:payload-too-large");
    // No content-length at all (chunked): the limit holds on the bytes actually read.
    let mut raw = b"POST /limited/echo HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..4 {
        raw.extend_from_slice(b"8\r\n12345678\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    w.send_raw(&raw).unwrap().assert_problem(413);
}

#[test]
fn handler_error_is_500_with_detail_only_in_the_log() {
    let w = worker();
    let res = w.get("/fail").unwrap();
    let doc = res.assert_problem(500);
    assert!(!res.text().contains("hunter2"));
    assert_eq!(doc["type"], "urn:edgeway:problem:internal");
    let id = res.header("x-request-id").unwrap();
    let line = wait_for_log(w, "hunter2");
    assert!(
        line.contains(id),
        "the log line carries the request id: {line}"
    );
}

#[test]
fn a_body_that_breaks_its_rules_is_a_422_listing_every_violation() {
    let ok = post(
        "/signups",
        "application/json",
        r#"{"handle":"ada","email":"ada@example.com","age":36}"#,
    );
    assert_eq!(ok.status, 201, "{}", ok.text());
    let bad = post(
        "/signups",
        "application/json",
        r#"{"handle":"a","email":"nope","age":12}"#,
    );
    let doc = bad.assert_problem(422);
    assert_eq!(doc["type"], "urn:edgeway:problem:validation");
    let paths: Vec<&str> = doc["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["age", "email", "handle"]);
    assert!(
        doc["detail"].as_str().unwrap().starts_with("age: "),
        "{doc:#}"
    );
    // The shape is checked first: a wrong type is still a 422 json-shape.
    let shape = post("/signups", "application/json", r#"{"handle":1}"#);
    assert_eq!(
        shape.assert_problem(422)["type"],
        "urn:edgeway:problem:json-shape"
    );
}

#[test]
fn a_header_set_twice_arrives_twice_next_to_single_ones() {
    let res = worker().get("/cookies").unwrap();
    let cookies: Vec<&str> = res
        .headers
        .iter()
        .filter(|(name, _)| name == "set-cookie")
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(cookies, ["a=1; Path=/", "b=2; Path=/"]);
    assert_eq!(res.header("x-once"), Some("yes"));
    assert_eq!(res.text(), "two cookies");
}

#[test]
fn a_panic_fails_one_request_while_others_in_flight_and_after_succeed() {
    let w = worker();
    let base = w.base_url().to_owned();
    let started = Instant::now();
    let in_flight = thread::spawn(move || {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let mut res = agent.get(format!("{base}/slow?ms=1500")).call().unwrap();
        (
            res.status().as_u16(),
            res.body_mut().read_to_string().unwrap(),
        )
    });
    thread::sleep(Duration::from_millis(400));
    let res = w.get("/panic").unwrap();
    let doc = res.assert_problem(500);
    assert_eq!(doc["type"], "urn:edgeway:problem:panic");
    // The 500 went back out through the middleware like any response.
    let id = res
        .header("x-request-id")
        .expect("request id on the 500")
        .to_owned();
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the panic was answered while /slow was in flight"
    );
    assert_eq!(in_flight.join().unwrap(), (200, "slept 1500 ms".to_owned()));
    assert_eq!(w.get("/path/5").unwrap().text(), "id 5");
    let line = wait_for_log(w, "handler panicked");
    assert!(
        line.contains(&id),
        "the panic is logged with the request id: {line}"
    );
}

/// Waits (bounded) for a log line containing `needle` and returns it.
fn wait_for_log(worker: &Worker, needle: &str) -> String {
    worker.wait_for(
        &format!("a log line with {needle:?}"),
        Duration::from_secs(10),
        || {
            // workerd prefixes console output; keep the JSON object.
            worker
                .logs()
                .lines()
                .find(|l| l.contains(needle))
                .map(|line| line[line.find('{').unwrap_or(0)..].to_owned())
        },
    )
}

/// How many times the cached greeting of `name` was rendered.
fn renders(w: &Worker, name: &str) -> u32 {
    w.get(&format!("/renders/{name}"))
        .unwrap()
        .text()
        .parse()
        .unwrap()
}

#[test]
fn a_second_get_is_served_from_the_cache_until_a_write_makes_it_stale() {
    const NAME: &str = "ada";
    let w = worker();
    let first = w.get("/cached/ada").unwrap();
    assert_eq!(first.status, 200);
    assert_eq!(first.text(), "hello ada");
    assert_eq!(
        first.header("cache-status"),
        Some("edgeway; fwd=miss; stored")
    );
    let etag = first.header("etag").expect("a strong etag").to_owned();
    assert!(etag.starts_with('"'), "{etag}");
    let rendered = renders(w, NAME);

    // Served from the cache: same answer, the handler did not run.
    let second = w.get("/cached/ada").unwrap();
    assert_eq!(second.text(), "hello ada");
    assert_eq!(second.header("cache-status"), Some("edgeway; hit"));
    assert_eq!(second.header("etag"), Some(etag.as_str()));
    assert_eq!(renders(w, NAME), rendered);

    // The client holds it already: 304, no body.
    let res = w
        .send("GET", "/cached/ada", &[("if-none-match", &etag)], vec![])
        .unwrap();
    assert_eq!(res.status, 304);
    assert!(res.body.is_empty());
    assert_eq!(res.header("etag"), Some(etag.as_str()));
    assert_eq!(renders(w, NAME), rendered);

    // A write through the same layer makes it stale: the next GET renders again.
    assert_eq!(
        w.send("PUT", "/cached/ada", &[], vec![]).unwrap().status,
        204
    );
    let after = w.get("/cached/ada").unwrap();
    assert_eq!(
        after.header("cache-status"),
        Some("edgeway; fwd=miss; stored")
    );
    assert_eq!(renders(w, NAME), rendered + 1);
    // A client asking for a fresh answer gets one.
    let fresh = w
        .send(
            "GET",
            "/cached/ada",
            &[("cache-control", "no-cache")],
            vec![],
        )
        .unwrap();
    assert_eq!(
        fresh.header("cache-status"),
        Some("edgeway; fwd=request; stored")
    );
    assert_eq!(renders(w, NAME), rendered + 2);
}

#[test]
fn credentials_cookies_and_private_answers_are_never_cached() {
    const NAME: &str = "grace";
    let w = worker();
    let before = renders(w, NAME);
    for headers in [
        [("authorization", "Bearer someone")],
        [("x-api-key", "someone")],
        [("cookie", "session=1")],
    ] {
        for _ in 0..2 {
            let res = w.send("GET", "/cached/grace", &headers, vec![]).unwrap();
            assert_eq!(res.text(), "hello grace");
            assert_eq!(res.header("cache-status"), Some("edgeway; fwd=bypass"));
        }
    }
    assert_eq!(
        renders(w, NAME),
        before + 6,
        "every request with credentials ran"
    );
    for _ in 0..2 {
        let res = w.get("/cached/grace/private").unwrap();
        assert_eq!(res.header("cache-status"), Some("edgeway; fwd=miss"));
    }
    assert_eq!(
        renders(w, NAME),
        before + 8,
        "a private answer is never stored"
    );
}

#[test]
fn each_declared_vary_value_is_its_own_entry() {
    let w = worker();
    let get = |lang: &str| {
        w.send("GET", "/cached/lin", &[("accept-language", lang)], vec![])
            .unwrap()
    };
    assert_eq!(get("fr").text(), "bonjour lin");
    assert_eq!(get("en").text(), "hello lin");
    let fr = get("fr");
    assert_eq!(fr.text(), "bonjour lin");
    assert_eq!(fr.header("cache-status"), Some("edgeway; hit"));
    assert_eq!(fr.header("vary"), Some("accept-language"));
    let en = get("en");
    assert_eq!(en.text(), "hello lin");
    assert_eq!(en.header("cache-status"), Some("edgeway; hit"));
}
