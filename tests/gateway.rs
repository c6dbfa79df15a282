//! The gateway, deployed config and all: the root `wrangler.toml`.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use edgeway::testing::Worker;

fn gateway() -> &'static Worker {
    static WORKER: OnceLock<Worker> = OnceLock::new();
    WORKER.get_or_init(|| {
        common::signed_in(Worker::builder(format!("{}/wrangler.toml", common::ROOT)))
            .secret("JOBS_SIGNING_KEY", common::SIGNING_KEY)
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
    // Then from the cache, until a write through the gateway makes it stale.
    let cached = w.get("/v1/kv/notes/one").unwrap();
    assert_eq!(cached.text(), "first");
    assert_eq!(cached.header("cache-status"), Some("edgeway; hit"));
    // Served to a key holder: no cache on the way may keep it for others.
    assert_eq!(cached.header("cache-control"), Some("private, no-cache"));
    assert_eq!(put("notes/one", "first, edited").status, 204);
    assert_eq!(w.get("/v1/kv/notes/one").unwrap().text(), "first, edited");

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

/// `authorization: Bearer <key>`, replacing the harness's root key.
fn bearer(key: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {key}"))
}

#[test]
fn the_management_api_is_closed_without_a_valid_key() {
    let w = gateway();
    // No key: 401 with the Bearer challenge. An empty value leaves out the
    // harness's root key.
    let res = w
        .send("GET", "/v1/kv?prefix=a", &[("authorization", "")], vec![])
        .unwrap();
    let doc = res.assert_problem(401);
    assert_eq!(doc["type"], "urn:edgeway:problem:unauthorized");
    assert_eq!(
        res.header("www-authenticate"),
        Some("Bearer realm=\"edgeway\"")
    );
    // A wrong root key, and a well-formed key that was never issued.
    for key in [
        "e2e-root-api-key-not-a-real-secret-012345678X".to_owned(),
        format!("ewk_0123456789abcdef_{}", "a".repeat(64)),
    ] {
        let (name, value) = bearer(&key);
        let res = w
            .send("GET", "/v1/routes", &[(name, value.as_str())], vec![])
            .unwrap();
        res.assert_problem(401);
        assert!(
            res.header("www-authenticate")
                .is_some_and(|v| v.contains("error=\"invalid_token\"")),
            "{:?}",
            res.headers
        );
    }
    // Writes too, and the key admin.
    w.send("PUT", "/v1/kv/x", &[("authorization", "")], b"v".to_vec())
        .unwrap()
        .assert_problem(401);
    w.send("GET", "/v1/keys", &[("authorization", "")], vec![])
        .unwrap()
        .assert_problem(401);
    // Health stays public, and the job function's callback keeps its own
    // signature check (401 for a missing signature, not for a missing key).
    let health = w
        .send("GET", "/healthz", &[("authorization", "")], vec![])
        .unwrap();
    assert_eq!(health.status, 200);
    let res = w
        .send(
            "POST",
            "/v1/jobs/0190d5a0-0000-7000-8000-000000000001/result",
            &[("authorization", ""), ("content-type", "application/json")],
            b"{}".to_vec(),
        )
        .unwrap();
    let doc = res.assert_problem(401);
    assert!(
        res.header("www-authenticate").is_none()
            && !doc["detail"].as_str().unwrap().contains("API key"),
        "the callback's own check answered, not the key layer: {doc}"
    );
}

#[test]
fn scoped_keys_are_made_checked_and_revoked_and_never_logged() {
    let w = gateway();
    let made = w
        .post_json(
            "/v1/keys",
            &serde_json::json!({"name": "kv reader", "scopes": ["kv:read", "keys"]}),
        )
        .unwrap();
    assert_eq!(made.status, 201, "{}", made.text());
    let made = made.json();
    let key = made["key"].as_str().unwrap().to_owned();
    let id = made["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with(&format!("ewk_{id}_")), "{made}");
    assert_eq!(made["scopes"], serde_json::json!(["kv:read", "keys"]));
    let (auth, value) = bearer(&key);
    let as_reader = |method: &str, path: &str| {
        w.send(method, path, &[(auth, value.as_str())], b"v".to_vec())
            .unwrap()
    };

    // Reads of its tag pass; writes and other tags are 403 naming the scope.
    assert_eq!(as_reader("GET", "/v1/kv?prefix=none/").status, 200);
    as_reader("GET", "/v1/kv/absent").assert_problem(404);
    let res = as_reader("PUT", "/v1/kv/written");
    let doc = res.assert_problem(403);
    assert_eq!(doc["type"], "urn:edgeway:problem:forbidden");
    assert_eq!(doc["scope"], "kv");
    assert_eq!(
        res.header("www-authenticate"),
        Some("Bearer realm=\"edgeway\", error=\"insufficient_scope\", scope=\"kv\"")
    );
    assert_eq!(
        as_reader("GET", "/v1/topics/t/subscriptions").assert_problem(403)["scope"],
        "fanout:read"
    );
    // The same key as x-api-key.
    let res = w
        .send(
            "GET",
            "/v1/kv?prefix=none/",
            &[("authorization", ""), ("x-api-key", key.as_str())],
            vec![],
        )
        .unwrap();
    assert_eq!(res.status, 200);

    // It may make keys, but only with scopes it holds.
    let grant = |scopes: serde_json::Value| {
        w.send(
            "POST",
            "/v1/keys",
            &[(auth, value.as_str()), ("content-type", "application/json")],
            serde_json::json!({"name": "child", "scopes": scopes})
                .to_string()
                .into_bytes(),
        )
        .unwrap()
    };
    grant(serde_json::json!(["*"])).assert_problem(403);
    grant(serde_json::json!(["kv"])).assert_problem(403);
    let child = grant(serde_json::json!(["kv:read"]));
    assert_eq!(child.status, 201, "{}", child.text());
    // Nor revoke a key that holds more than it does.
    let above = make_key(w, "above the reader", serde_json::json!(["fanout"]));
    let above_id = &above[4..20];
    let res = w
        .send(
            "DELETE",
            &format!("/v1/keys/{above_id}"),
            &[(auth, value.as_str())],
            vec![],
        )
        .unwrap();
    assert!(res.assert_problem(403)["detail"]
        .as_str()
        .unwrap()
        .contains("fanout"),);
    let doc = grant(serde_json::json!(["nope"])).assert_problem(422);
    assert!(doc["detail"].as_str().unwrap().contains("nope"), "{doc}");
    // Its listing holds the keys within its scopes: its child, not the one above.
    let seen = as_reader("GET", "/v1/keys").json();
    let ids: Vec<&str> = seen
        .as_array()
        .unwrap()
        .iter()
        .map(|view| view["id"].as_str().unwrap())
        .collect();
    let child_id = &child.json()["id"].as_str().unwrap().to_owned();
    assert!(
        ids.contains(&child_id.as_str()) && ids.contains(&id.as_str()),
        "{seen}"
    );
    assert!(!ids.contains(&above_id), "{seen}");

    // Listed without secrets or hashes.
    let listed = w.get("/v1/keys").unwrap();
    assert_eq!(listed.status, 200);
    let text = listed.text();
    assert!(text.contains(&id), "{text}");
    assert!(
        !text.contains(&key[key.len() - 64..]) && !text.contains("hash"),
        "{text}"
    );

    // Revoked: 401 at once, and a second revoke is a 404.
    let res = w
        .send("DELETE", &format!("/v1/keys/{id}"), &[], vec![])
        .unwrap();
    assert_eq!(res.status, 204, "{}", res.text());
    as_reader("GET", "/v1/kv?prefix=none/").assert_problem(401);
    w.send("DELETE", &format!("/v1/keys/{id}"), &[], vec![])
        .unwrap()
        .assert_problem(404);

    let logs = w.logs();
    assert!(
        !logs.contains(&key[key.len() - 64..]),
        "a key is in the logs"
    );
    assert!(
        !logs.contains(common::ROOT_KEY),
        "the root key is in the logs"
    );
}

/// Makes a key with `scopes` using the root key; returns the whole key.
fn make_key(w: &Worker, name: &str, scopes: serde_json::Value) -> String {
    let res = w
        .post_json(
            "/v1/keys",
            &serde_json::json!({"name": name, "scopes": scopes}),
        )
        .unwrap();
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()["key"].as_str().unwrap().to_owned()
}

#[test]
fn writes_are_rate_limited_per_key_and_the_limit_resets() {
    let w = gateway();
    let other = make_key(w, "unaffected", serde_json::json!(["fanout"]));
    let publish = |key: &str| {
        let (name, value) = bearer(key);
        w.send(
            "POST",
            "/v1/topics/ratelimit/events",
            &[(name, value.as_str()), ("content-type", "application/json")],
            br#"{"type": "rate.probe", "data": {}}"#.to_vec(),
        )
        .unwrap()
    };
    // Local windows are aligned to the clock (10 s here): start just after one
    // begins, so the 31 requests fall in one window; on a machine so slow that
    // they did not, try again with a fresh key.
    let millis = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    };
    let (limited, res) = (1..=3)
        .find_map(|attempt| {
            let key = make_key(
                w,
                &format!("limited {attempt}"),
                serde_json::json!(["fanout"]),
            );
            while !(100..1_000).contains(&(millis() % 10_000)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let window = millis() / 10_000;
            let passed: Vec<_> = (0..30).map(|_| publish(&key)).collect();
            let refused = publish(&key);
            if millis() / 10_000 != window {
                return None;
            }
            for (n, res) in passed.iter().enumerate() {
                assert_eq!(res.status, 202, "publish {n}: {}", res.text());
                assert_eq!(
                    res.header("ratelimit-policy"),
                    Some("\"WRITE_LIMIT\";q=30;w=10")
                );
            }
            Some((key, refused))
        })
        .expect("31 requests fit in a 10 s window in one of three tries");
    let doc = res.assert_problem(429);
    assert_eq!(doc["type"], "urn:edgeway:problem:rate-limited");
    assert_eq!(res.header("retry-after"), Some("10"));
    assert_eq!(res.header("ratelimit"), Some("\"WRITE_LIMIT\";r=0;t=10"));
    assert_eq!(
        res.header("ratelimit-policy"),
        Some("\"WRITE_LIMIT\";q=30;w=10")
    );
    // Another key, and the root key, are not held back by it.
    assert_eq!(publish(&other).status, 202);
    let root = w
        .post_json(
            "/v1/topics/ratelimit/events",
            &serde_json::json!({"type": "rate.probe", "data": {}}),
        )
        .unwrap();
    assert_eq!(root.status, 202, "{}", root.text());
    // The next window lets the limited key in again.
    w.wait_for("the limit to reset", Duration::from_secs(15), || {
        std::thread::sleep(Duration::from_millis(500));
        Some(()).filter(|_| publish(&limited).status == 202)
    });
}
