//! Bearer JWTs in workerd: the conformance worker's `/tokens` routes trust a
//! local identity provider (tests/support/idp.py), which publishes a JWKS and
//! signs with joserfc, a reference JOSE library. Good tokens pass with their
//! scopes; every kind of bad one is a 401 problem, a missing scope a 403.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edgeway::testing::{Sidecar, TestResponse, Worker};
use serde_json::{json, Value};

const ISSUER: &str = "https://idp.edgeway.test";
const AUDIENCE: &str = "conformance";
/// The worker's root key, for the routes that take a key or a token.
const ROOT_KEY: &str = "auth-e2e-root-key-not-a-real-secret-0123456789";

struct Setup {
    worker: Worker,
    idp_port: u16,
    _idp: Sidecar,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let idp = Sidecar::start(common::python("idp.py"), "identity provider")
            .expect("start the identity provider (did `make toolchain` create .venv?)");
        let idp_port = idp.announcement(Duration::from_secs(30)).unwrap()["port"]
            .as_u64()
            .unwrap() as u16;
        let worker = Worker::builder(format!(
            "{}/tests/workers/conformance/wrangler.toml",
            common::ROOT
        ))
        .var("JWKS_URL", format!("http://127.0.0.1:{idp_port}/jwks.json"))
        .var(
            "UNREACHABLE_JWKS_URL",
            format!("http://127.0.0.1:{idp_port}/missing/jwks.json"),
        )
        .secret("EDGEWAY_ROOT_KEY", ROOT_KEY)
        .start()
        .expect("conformance worker starts");
        Setup {
            worker,
            idp_port,
            _idp: idp,
        }
    })
}

fn idp(path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", setup().idp_port)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Good claims for the worker: right issuer and audience, valid for 10 minutes.
fn claims(scope: &str) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "ada",
        "email": "ada@example.com",
        "scope": scope,
        "iat": now(),
        "exp": now() + 600,
    })
}

/// A token the identity provider signs (`alg` as idp.py takes it).
fn sign(alg: &str, kid: Option<&str>, claims: &Value) -> String {
    sign_as(alg, kid, None, claims)
}

/// A token signed by `kid`'s key whose header names `as_kid` instead.
fn sign_as(alg: &str, kid: Option<&str>, as_kid: Option<&str>, claims: &Value) -> String {
    let mut request = json!({ "alg": alg, "claims": claims });
    if let Some(kid) = kid {
        request["kid"] = json!(kid);
    }
    if let Some(as_kid) = as_kid {
        request["as_kid"] = json!(as_kid);
    }
    ureq::post(&idp("/sign"))
        .send(request.to_string())
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

/// Held by the tests that make the worker fetch the JWKS again (tokens with
/// unknown kids, an outage), so the counts one of them asserts are its own.
static FETCHING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn jwks_fetches() -> u64 {
    count(&idp("/fetches"))
}

fn count(url: &str) -> u64 {
    let text = ureq::get(url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    text.parse().unwrap()
}

fn call(method: &str, path: &str, token: &str) -> TestResponse {
    let value = format!("Bearer {token}");
    setup()
        .worker
        .send(method, path, &[("authorization", value.as_str())], vec![])
        .unwrap()
}

/// Asserts a 401 for a refused token, whose detail contains `reason`.
fn refused(res: &TestResponse, reason: &str) {
    let doc = res.assert_problem(401);
    assert_eq!(doc["type"], "urn:edgeway:problem:unauthorized", "{doc}");
    assert!(
        doc["detail"].as_str().unwrap().contains(reason),
        "expected {reason:?} in {doc}"
    );
    assert_eq!(
        res.header("www-authenticate"),
        Some("Bearer realm=\"edgeway\", error=\"invalid_token\""),
        "{doc}"
    );
}

#[test]
fn good_tokens_pass_with_their_subject_and_scopes() {
    for alg in ["RS256", "PS256", "ES256"] {
        let token = sign(alg, None, &claims("openid orders"));
        let res = call("GET", "/tokens/orders", &token);
        assert_eq!(res.status, 200, "{alg}: {}", res.text());
        let doc = res.json();
        assert_eq!(doc["subject"], "ada", "{doc}");
        assert_eq!(doc["email"], "ada@example.com", "{doc}");
        // `openid` grants nothing: only route scopes are kept.
        assert_eq!(doc["scopes"], json!(["orders"]), "{doc}");
        let res = call("POST", "/tokens/orders", &token);
        assert_eq!(res.status, 201, "{alg}: {}", res.text());
    }
    // `aud` as a list that names this audience among others.
    let mut listed = claims("orders");
    listed["aud"] = json!(["billing", AUDIENCE]);
    assert_eq!(
        call("GET", "/tokens/orders", &sign("ES256", None, &listed)).status,
        200
    );
}

#[test]
fn a_missing_scope_is_403_and_a_read_scope_only_reads() {
    let reader = sign("ES256", None, &claims("orders:read"));
    assert_eq!(call("GET", "/tokens/orders", &reader).status, 200);
    let res = call("POST", "/tokens/orders", &reader);
    let doc = res.assert_problem(403);
    assert_eq!(doc["scope"], "orders", "{doc}");
    assert!(res
        .header("www-authenticate")
        .is_some_and(|v| v.contains("error=\"insufficient_scope\"")));
    // A token without any scope for the route.
    let other = sign("RS256", None, &claims("billing"));
    let doc = call("GET", "/tokens/orders", &other).assert_problem(403);
    assert_eq!(doc["scope"], "orders:read", "{doc}");
}

#[test]
fn bad_tokens_are_401_problems_and_never_logged() {
    let w = &setup().worker;
    // No credential: the bare challenge.
    let res = w.get("/tokens/orders").unwrap();
    res.assert_problem(401);
    assert_eq!(
        res.header("www-authenticate"),
        Some("Bearer realm=\"edgeway\"")
    );

    let at = |field: &str, value: Value| {
        let mut claims = claims("orders");
        claims[field] = value;
        claims
    };
    let mut no_exp = claims("orders");
    no_exp.as_object_mut().unwrap().remove("exp");
    let cases = [
        (
            "expired",
            sign("RS256", None, &at("exp", json!(now() - 600))),
            "expired",
        ),
        ("without exp", sign("ES256", None, &no_exp), "expired"),
        (
            "not yet valid",
            sign("ES256", None, &at("nbf", json!(now() + 600))),
            "not valid yet",
        ),
        (
            "another issuer",
            sign("RS256", None, &at("iss", json!("https://evil.example"))),
            "another issuer",
        ),
        (
            "another audience",
            sign("ES256", None, &at("aud", json!("billing"))),
            "another audience",
        ),
        (
            "alg none",
            sign("none", None, &claims("orders")),
            "algorithm \"none\"",
        ),
        (
            "HS256 keyed with the RSA public key",
            sign("HS256-confusion", None, &claims("orders")),
            "algorithm \"HS256\"",
        ),
        (
            "signed by a key outside the JWKS",
            sign("RS256-foreign", None, &claims("orders")),
            "signature does not verify",
        ),
        (
            "an ES256 signature under the RSA key's kid",
            sign_as("ES256", Some("ec-1"), Some("rsa-1"), &claims("orders")),
            "no key in the issuer's JWKS",
        ),
        (
            "a tampered payload",
            tamper(&sign("ES256", None, &claims("orders:read"))),
            "signature does not verify",
        ),
        (
            "not a JWT at all",
            "eyJhbGciOiJSUzI1NiJ9.e30".to_owned(),
            "not a JWT",
        ),
    ];
    for (what, token, reason) in &cases {
        let res = call("GET", "/tokens/orders", token);
        assert!(res.status == 401, "{what}: {} {}", res.status, res.text());
        refused(&res, reason);
    }
    let logs = w.logs();
    for (what, token, _) in &cases {
        let signature = token.rsplit('.').next().unwrap();
        assert!(
            signature.len() < 16 || !logs.contains(signature),
            "the {what} token is in the logs"
        );
    }
}

/// `token` with its payload's scope widened from `orders:read` to `orders`,
/// the signature left as it was.
fn tamper(token: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    parts[1] = URL_SAFE_NO_PAD.encode(payload.replace("orders:read", "orders"));
    parts.join(".")
}

#[test]
fn the_jwks_is_cached_and_fetched_again_for_a_rotated_key() {
    let _alone = FETCHING.lock().unwrap_or_else(|e| e.into_inner());
    let token = sign("ES256", None, &claims("orders"));
    assert_eq!(call("GET", "/tokens/orders", &token).status, 200);
    let before = jwks_fetches();
    for _ in 0..10 {
        assert_eq!(call("GET", "/tokens/orders", &token).status, 200);
    }
    assert_eq!(
        jwks_fetches(),
        before,
        "a good token fetched the JWKS again"
    );

    // The issuer rotates in a new key: a token under its kid fetches the set
    // once more (after the worker's 1 s cooldown) and passes.
    let kid = ureq::post(&idp("/rotate"))
        .send("{}")
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let rotated = sign("ES256", Some(&kid), &claims("orders"));
    assert_eq!(call("GET", "/tokens/orders", &rotated).status, 200);
    assert_eq!(jwks_fetches(), before + 1);

    // Made-up kids, right after: refused, and not a fetch each.
    // Signed first, so only the worker calls are inside the timed window.
    let forged: Vec<String> = (0..10)
        .map(|i| {
            sign_as(
                "ES256",
                None,
                Some(&format!("made-up-{i}")),
                &claims("orders"),
            )
        })
        .collect();
    let fetched = jwks_fetches();
    for forged in &forged {
        let res = call("GET", "/tokens/orders", forged);
        assert_eq!(res.status, 401, "{}", res.text());
    }
    // At most one fetch a second (the cooldown); the ten take well under
    // three seconds even on a loaded machine.
    assert!(
        jwks_fetches() <= fetched + 3,
        "made-up kids fetched the JWKS {} times",
        jwks_fetches() - fetched
    );

    // The provider goes down: the worker keeps the keys it has. A made-up kid
    // tries a fetch (it fails), and good tokens pass throughout.
    fn outage(down: bool) {
        ureq::post(&idp("/outage"))
            .send(json!({ "down": down }).to_string())
            .unwrap();
    }
    /// Ends the outage however the test ends, so no later test sees it.
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            outage(false);
        }
    }
    let _restore = Restore;
    outage(true);
    std::thread::sleep(Duration::from_millis(1100));
    let fetched = jwks_fetches();
    let forged = sign_as("ES256", None, Some("made-up-in-outage"), &claims("orders"));
    assert_eq!(call("GET", "/tokens/orders", &forged).status, 401);
    assert_eq!(
        jwks_fetches(),
        fetched + 1,
        "no fetch was tried in the outage"
    );
    for alg in ["RS256", "ES256"] {
        let res = call("GET", "/tokens/orders", &sign(alg, None, &claims("orders")));
        assert_eq!(res.status, 200, "{alg} in the outage: {}", res.text());
    }
}

#[test]
fn an_issuer_whose_jwks_cannot_be_fetched_is_a_502_not_a_401() {
    let token = sign("ES256", None, &claims("orders"));
    let doc = call("GET", "/unreachable/orders", &token).assert_problem(502);
    assert_eq!(doc["type"], "urn:edgeway:problem:upstream", "{doc}");
    let w = &setup().worker;
    w.wait_for(
        "the failed fetch in the log",
        Duration::from_secs(10),
        || Some(w.logs()).filter(|logs| logs.contains("/missing/jwks.json answered 404")),
    );
    // Within the cooldown it is not fetched again, and still a 502.
    let asked = count(&idp("/missing/fetches"));
    assert!(asked >= 1);
    call("GET", "/unreachable/orders", &token).assert_problem(502);
    assert_eq!(count(&idp("/missing/fetches")), asked);
}

#[test]
fn one_layer_takes_a_key_or_a_token() {
    let root = call("GET", "/keys-or-tokens/orders", ROOT_KEY);
    assert_eq!(root.status, 200, "{}", root.text());
    assert_eq!(root.json()["subject"], "root");
    let token = sign("RS256", None, &claims("orders:read"));
    let res = call("GET", "/keys-or-tokens/orders", &token);
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["subject"], "ada");
    call("POST", "/keys-or-tokens/orders", &token).assert_problem(403);
    refused(
        &call(
            "GET",
            "/keys-or-tokens/orders",
            &sign("none", None, &claims("orders")),
        ),
        "algorithm \"none\"",
    );
    refused(
        &call("GET", "/keys-or-tokens/orders", "not-the-root-key"),
        "API key is not valid",
    );
    // A token with the `keys` scope still cannot mint keys: they would
    // outlive it.
    let admin = sign("ES256", None, &claims("keys orders"));
    let value = format!("Bearer {admin}");
    let res = setup()
        .worker
        .send(
            "POST",
            "/keys-or-tokens/keys",
            &[
                ("authorization", value.as_str()),
                ("content-type", "application/json"),
            ],
            br#"{"name": "minted", "scopes": ["orders"]}"#.to_vec(),
        )
        .unwrap();
    let doc = res.assert_problem(403);
    assert!(
        doc["detail"]
            .as_str()
            .unwrap()
            .contains("not with a bearer token"),
        "{doc}"
    );
    // The root key can.
    let res = setup()
        .worker
        .send(
            "POST",
            "/keys-or-tokens/keys",
            &[
                ("authorization", format!("Bearer {ROOT_KEY}").as_str()),
                ("content-type", "application/json"),
            ],
            br#"{"name": "minted", "scopes": ["orders"]}"#.to_vec(),
        )
        .unwrap();
    assert_eq!(res.status, 201, "{}", res.text());
    // A JWT in x-api-key is not taken as a token.
    let res = setup()
        .worker
        .send(
            "GET",
            "/keys-or-tokens/orders",
            &[("x-api-key", sign("ES256", None, &claims("orders")).as_str())],
            vec![],
        )
        .unwrap();
    refused(&res, "API key is not valid");
}

#[test]
fn a_jwks_url_setting_that_is_not_one_is_a_500_logged_by_name() {
    let token = sign("ES256", None, &claims("orders"));
    // The client gets the usual opaque 500; the log says what to fix.
    call("GET", "/misconfigured/orders", &token).assert_problem(500);
    let w = &setup().worker;
    let logged = w.wait_for(
        "the misconfiguration in the log",
        Duration::from_secs(10),
        || Some(w.logs()).filter(|logs| logs.contains("`PLAIN_HTTP_JWKS_URL` is not a JWKS URL")),
    );
    assert!(!logged.contains(&token), "the token is in the logs");
}

#[test]
fn every_token_in_the_bad_token_corpus_is_a_401_problem() {
    let _alone = FETCHING.lock().unwrap_or_else(|e| e.into_inner());
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    let corpus =
        std::fs::read_to_string(format!("{}/tests/corpus/bad_tokens.jsonl", common::ROOT)).unwrap();
    let cases: Vec<Value> = corpus
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(cases.len() >= 40, "the corpus has {} tokens", cases.len());
    let w = &setup().worker;
    let mut failures = Vec::new();
    for case in &cases {
        let token = STANDARD.decode(case["token"].as_str().unwrap()).unwrap();
        for path in ["/tokens/orders", "/keys-or-tokens/orders"] {
            let mut raw = format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\nauthorization: Bearer ").into_bytes();
            raw.extend_from_slice(&token);
            raw.extend_from_slice(b"\r\n\r\n");
            let res = w.send_raw(&raw).unwrap();
            let problem = res.header("content-type") == Some("application/problem+json");
            if res.status != 401 || !problem {
                failures.push(format!(
                    "{} on {path}: {} {}",
                    case["name"],
                    res.status,
                    res.text()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Nothing broke: a good token still passes.
    let token = sign("ES256", None, &claims("orders"));
    assert_eq!(call("GET", "/tokens/orders", &token).status, 200);
}

#[test]
fn made_up_api_keys_stop_costing_kv_reads_at_the_lookup_limit() {
    // Five lookups a minute per client (the worker's KEY_LOOKUPS): five
    // made-up keys are each read and refused, the sixth is not read at all.
    for i in 0..5 {
        let key = format!("ewk_{i:016x}_{}", "a".repeat(64));
        refused(
            &call("GET", "/keys-or-tokens/orders", &key),
            "API key is not valid",
        );
    }
    let key = format!("ewk_{:016x}_{}", 99, "a".repeat(64));
    let res = call("GET", "/keys-or-tokens/orders", &key);
    let doc = res.assert_problem(429);
    assert!(
        doc["detail"].as_str().unwrap().contains("API-key lookups"),
        "{doc}"
    );
    assert_eq!(res.header("retry-after"), Some("60"));
    // The root key and tokens need no lookup and still pass.
    assert_eq!(call("GET", "/keys-or-tokens/orders", ROOT_KEY).status, 200);
    let token = sign("ES256", None, &claims("orders"));
    assert_eq!(call("GET", "/keys-or-tokens/orders", &token).status, 200);
}
