//! Service-level tests of the pure core: routing answers, extractors, middleware
//! and error rendering, driven through `Service::handle` without workerd. They run
//! natively and on wasm32.

use std::cell::RefCell;
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::__private::block_on;
use crate::middleware::{access_log, body_limit, request_id, timing, Cors, REQUEST_ID_HEADER};
use crate::{
    App, Error, Form, HeaderMap, Json, Method, Next, Path, Query, Request, Response, State,
    StatusCode, TrailingSlash,
};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn call(app: App, req: Request) -> Response {
    block_on(app.build().expect("app builds").handle(req))
}

fn get(path: &str) -> Request {
    Request::new(Method::Get, path)
}

fn problem(response: &Response) -> serde_json::Value {
    assert_eq!(
        response.headers().get("content-type"),
        Some("application/problem+json"),
        "{}",
        response.body_text()
    );
    serde_json::from_str(&response.body_text()).unwrap()
}

#[derive(Deserialize, Serialize, Debug, PartialEq)]
struct Note {
    text: String,
    stars: u8,
}

fn notes() -> App {
    App::new()
        .get("/", || async { "root" })
        .post("/notes", |Json(note): Json<Note>| async move {
            (StatusCode::CREATED, Json(note))
        })
        .put("/form", |Form(note): Form<Note>| async move { Json(note) })
        .get("/notes/{id}", |Path(id): Path<u32>| async move {
            format!("note {id}")
        })
        .get(
            "/search",
            |Query(note): Query<Note>| async move { Json(note) },
        )
        .post("/raw", |body: Vec<u8>| async move {
            format!("{} bytes", body.len())
        })
        .post("/text", |body: String| async move { body })
        .post(
            "/any",
            |Json(v): Json<serde_json::Value>| async move { Json(v) },
        )
}

#[test]
fn routes_and_404_405_head_options() {
    let res = call(notes(), get("/"));
    assert_eq!((res.status(), &*res.body_text()), (StatusCode::OK, "root"));

    let res = call(notes(), get("/missing"));
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(problem(&res)["type"], "urn:edgeway:problem:not-found");

    let res = call(notes(), Request::new(Method::Delete, "/notes/1"));
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.headers().get("allow"), Some("GET, HEAD, OPTIONS"));
    assert!(problem(&res)["detail"].as_str().unwrap().contains("DELETE"));

    let res = call(notes(), Request::new(Method::Head, "/notes/7"));
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.body_text(), "");
    assert_eq!(
        res.headers().get("content-type"),
        Some("text/plain;charset=UTF-8")
    );

    let res = call(notes(), Request::new(Method::Options, "/notes"));
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(res.headers().get("allow"), Some("POST, OPTIONS"));
}

#[test]
fn trailing_slash_redirect_policy() {
    let app = || notes().trailing_slash(TrailingSlash::Redirect);
    let res = call(app(), get("/notes/3/?x=1"));
    assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(res.headers().get("location"), Some("/notes/3?x=1"));
    assert_eq!(
        call(notes(), get("/notes/3/")).status(),
        StatusCode::NOT_FOUND
    );
}

#[test]
fn json_extractor_errors() {
    let json = |ct: Option<&'static str>, body: &str| {
        let mut req = Request::new(Method::Post, "/notes").with_body(body.to_owned());
        if let Some(ct) = ct {
            req = req.with_header("content-type", ct);
        }
        call(notes(), req)
    };
    let res = json(Some("application/json"), r#"{"text":"a","stars":3}"#);
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.body_text(), r#"{"text":"a","stars":3}"#);
    assert_eq!(
        json(
            Some("application/merge-patch+json"),
            r#"{"text":"a","stars":3}"#
        )
        .status(),
        StatusCode::CREATED
    );

    let res = json(Some("application/json"), r#"{"text":"a","#);
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let doc = problem(&res);
    assert_eq!(doc["type"], "urn:edgeway:problem:invalid-json");
    assert!(
        doc["detail"].as_str().unwrap().contains("line 1 column"),
        "{doc}"
    );

    let res = json(Some("application/json"), r#"{"text":"a","stars":"many"}"#);
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let doc = problem(&res);
    assert_eq!(doc["type"], "urn:edgeway:problem:json-shape");
    assert!(
        doc["detail"].as_str().unwrap().contains("expected u8"),
        "{doc}"
    );

    let res = json(None, r#"{"text":"a","stars":3}"#);
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(problem(&res)["detail"]
        .as_str()
        .unwrap()
        .contains("no content-type"));
    let res = json(Some("text/plain"), r#"{"text":"a","stars":3}"#);
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // serde_json's recursion limit turns a deeply nested document into a 400, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let res = call(
        notes(),
        Request::new(Method::Post, "/any")
            .with_header("content-type", "application/json")
            .with_body(deep),
    );
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(problem(&res)["detail"]
        .as_str()
        .unwrap()
        .contains("recursion limit"));
}

#[test]
fn path_query_form_and_body_extractors() {
    let res = call(notes(), get("/notes/abc"));
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let detail = problem(&res)["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("`id`") && detail.contains("u32"),
        "{detail}"
    );

    let res = call(notes(), get("/search?text=hi&stars=2"));
    assert_eq!(res.body_text(), r#"{"text":"hi","stars":2}"#);
    let res = call(notes(), get("/search?text=hi&stars=lots"));
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(problem(&res)["type"], "urn:edgeway:problem:invalid-query");
    assert_eq!(
        call(notes(), get("/search")).status(),
        StatusCode::BAD_REQUEST
    );

    let form = |ct: &'static str, body: &str| {
        call(
            notes(),
            Request::new(Method::Put, "/form")
                .with_header("content-type", ct)
                .with_body(body.to_owned()),
        )
    };
    assert_eq!(
        form("application/x-www-form-urlencoded", "text=a+b&stars=5").body_text(),
        r#"{"text":"a b","stars":5}"#
    );
    assert_eq!(
        form("application/x-www-form-urlencoded", "text=a").status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        form("application/json", "text=a&stars=1").status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );

    let res = call(
        notes(),
        Request::new(Method::Post, "/raw").with_body(vec![0u8, 159, 146, 150]),
    );
    assert_eq!(res.body_text(), "4 bytes");
    let res = call(
        notes(),
        Request::new(Method::Post, "/text").with_body(vec![0u8, 159, 146, 150]),
    );
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(problem(&res)["type"], "urn:edgeway:problem:invalid-utf8");
}

#[test]
fn body_limits_check_both_declared_and_actual_length() {
    let app = || notes().layer(body_limit(8));
    let declared = Request::new(Method::Post, "/raw")
        .with_header("content-length", "100")
        .with_body("short");
    assert_eq!(
        call(app(), declared).status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // A lying (small) content-length does not get a big body through.
    let lying = Request::new(Method::Post, "/raw")
        .with_header("content-length", "3")
        .with_body("far more than eight bytes");
    let res = call(app(), lying);
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        problem(&res)["type"],
        "urn:edgeway:problem:payload-too-large"
    );
    let ok = Request::new(Method::Post, "/raw").with_body("12345678");
    assert_eq!(call(app(), ok).body_text(), "8 bytes");
    // The app-wide default applies without the middleware.
    let big = Request::new(Method::Post, "/raw").with_body(vec![b'x'; 20]);
    assert_eq!(
        call(notes().body_limit(10), big).status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[test]
fn handler_errors_are_500_without_detail() {
    let app = App::new().get("/fail", || async {
        Err::<&str, Error>(Error::internal("secret connection string"))
    });
    let res = call(app, get("/fail"));
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!res.body_text().contains("secret"));
    assert_eq!(res.internal_error(), Some("secret connection string"));
}

// wasm32 unit tests build with panic=abort, where a panic cannot be caught; the
// worker builds use panic=unwind, and tests/conformance.rs proves recovery there.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn a_panicking_handler_is_a_500_and_the_service_keeps_serving() {
    // With and without app-wide middleware: behind it, the 500 must pass back
    // out through it (the request id is set on it).
    for behind_middleware in [false, true] {
        let mut app = App::new()
            .get("/panic", || async {
                if true {
                    panic!("boom");
                }
                "unreachable"
            })
            .get("/ok", || async { "fine" })
            .fallback(|| async {
                if true {
                    panic!("lost");
                }
                "unreachable"
            });
        if behind_middleware {
            app = app.layer(request_id);
        }
        let service = app.build().unwrap();
        for (path, detail) in [("/panic", "boom"), ("/elsewhere", "lost")] {
            let res = block_on(service.handle(get(path)));
            assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(problem(&res)["type"], "urn:edgeway:problem:panic");
            let expected = format!("handler panicked: {detail}");
            assert_eq!(res.internal_error(), Some(expected.as_str()));
            assert_eq!(
                res.headers().contains(REQUEST_ID_HEADER),
                behind_middleware,
                "{path}"
            );
        }
        assert_eq!(block_on(service.handle(get("/ok"))).body_text(), "fine");
    }
}

#[test]
fn state_headers_and_missing_state() {
    #[derive(Clone)]
    struct Greeting(&'static str);
    let app = App::new()
        .state(Greeting("hey"))
        .get(
            "/",
            |State(g): State<Greeting>, headers: HeaderMap| async move {
                format!("{} {}", g.0, headers.get("x-name").unwrap_or("?"))
            },
        )
        .get(
            "/missing",
            |State(n): State<u64>| async move { n.to_string() },
        );
    let res = call(app, get("/").with_header("X-Name", "ann"));
    assert_eq!(res.body_text(), "hey ann");
    let res = call(
        App::new().get(
            "/missing",
            |State(n): State<u64>| async move { n.to_string() },
        ),
        get("/missing"),
    );
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(problem(&res)["type"], "urn:edgeway:problem:missing-state");
}

#[test]
fn middleware_runs_as_an_onion_in_order_and_sees_the_route() {
    let trace = Rc::new(RefCell::new(Vec::<String>::new()));
    let layer = |name: &'static str, trace: Rc<RefCell<Vec<String>>>| {
        move |req: Request, next: Next| {
            let trace = trace.clone();
            async move {
                let pattern = req
                    .route()
                    .map(|r| r.pattern.to_string())
                    .unwrap_or_default();
                trace.borrow_mut().push(format!("{name} in {pattern}"));
                let res = next.run(req).await;
                trace.borrow_mut().push(format!("{name} out"));
                res
            }
        }
    };
    let app = App::new()
        .layer(layer("a", trace.clone()))
        .layer(layer("b", trace.clone()))
        .get("/users/{id}", || async { "u" });
    call(app, get("/users/1"));
    assert_eq!(
        *trace.borrow(),
        ["a in /users/{id}", "b in /users/{id}", "b out", "a out"]
    );
}

#[test]
fn nested_groups_get_prefix_layers_and_state() {
    async fn tag(req: Request, next: Next) -> Response {
        let mut res = next.run(req).await;
        res.headers_mut().insert("x-group", "api").unwrap();
        res
    }
    let api = App::new()
        .layer(tag)
        .state(7u8)
        .get("/", || async { "api root" })
        .get(
            "/items/{id}",
            |Path(id): Path<u8>, State(n): State<u8>| async move { format!("{}", id + n) },
        );
    let app = App::new().get("/", || async { "root" }).nest("/api/", api);
    let service = app.build().unwrap();
    let res = block_on(service.handle(get("/api/items/1")));
    assert_eq!(
        (res.body_text().into_owned(), res.headers().get("x-group")),
        ("8".into(), Some("api"))
    );
    let res = block_on(service.handle(get("/api")));
    assert_eq!(res.body_text(), "api root");
    // The group's layer does not leak onto the parent's routes.
    let res = block_on(service.handle(get("/")));
    assert_eq!(res.headers().get("x-group"), None);
    let patterns: Vec<_> = service.routes().into_iter().map(|r| r.pattern).collect();
    assert_eq!(patterns, ["/", "/api", "/api/items/{id}"]);
}

#[test]
fn build_errors_never_panic() {
    let conflict = App::new()
        .get("/a/{x}", || async { "" })
        .get("/a/{y}", || async { "" });
    let err = conflict.build().err().unwrap();
    assert!(
        err.detail().contains("/a/{y}") && err.detail().contains("/a/{x}"),
        "{}",
        err.detail()
    );
    assert!(App::new().tag("x").build().is_err());
    assert!(App::new().nest("api", App::new()).build().is_err());
    assert!(App::new()
        .nest("/api", App::new().fallback(|| async { "" }))
        .build()
        .is_err());
}

#[test]
fn fallback_answers_unmatched_requests() {
    let app = App::new()
        .get("/a", || async { "a" })
        .fallback(|req: Request| async move { format!("fallback for {}", req.path()) });
    assert_eq!(call(app, get("/zzz")).body_text(), "fallback for /zzz");
}

#[test]
fn request_id_is_generated_or_kept_and_echoed() {
    let app = || {
        App::new()
            .layer(request_id)
            .get("/", |headers: HeaderMap| async move {
                headers.get("x-request-id").unwrap_or("none").to_owned()
            })
    };
    let res = call(app(), get("/"));
    let id = res.headers().get("x-request-id").unwrap().to_owned();
    assert_eq!(id.len(), 32);
    assert_eq!(res.body_text(), id, "the handler sees the same id");
    let res = call(app(), get("/").with_header("x-request-id", "abc-123"));
    assert_eq!(res.headers().get("x-request-id"), Some("abc-123"));
    let res = call(app(), get("/").with_header("x-request-id", "bad id"));
    assert_ne!(res.headers().get("x-request-id"), Some("bad id"));
}

#[test]
fn timing_adds_server_timing() {
    let res = call(
        App::new().layer(timing).get("/", || async { "t" }),
        get("/"),
    );
    assert!(res
        .headers()
        .get("server-timing")
        .unwrap()
        .starts_with("app;dur="));
}

#[test]
fn timing_writes_no_log_line_and_access_log_one_with_the_request_id() {
    #[cfg(not(target_arch = "wasm32"))]
    crate::observe::take_captured();
    let app = App::new()
        .layer(request_id)
        .layer(access_log)
        .layer(timing)
        .get("/notes/{id}", || async { (StatusCode::CREATED, "made") })
        .tag("notes");
    let res = call(app, get("/notes/7"));
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.body_text(), "made");
    #[cfg(not(target_arch = "wasm32"))]
    {
        let lines = crate::observe::take_captured();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(line["msg"], "request");
        assert_eq!(line["route"], "/notes/{id}");
        assert_eq!(line["feature"], "notes");
        assert_eq!(line["status"], 201);
        let id = res.headers().get("x-request-id").expect("a request id");
        assert_eq!(line["request_id"].as_str(), Some(id));
        let alone = call(
            App::new().layer(timing).get("/", || async { "t" }),
            get("/"),
        );
        assert!(alone.headers().get("server-timing").is_some());
        assert!(crate::observe::take_captured().is_empty());
    }
}

#[test]
fn cors_denies_by_default_and_answers_preflight() {
    let open = || {
        App::new()
            .layer(
                Cors::new()
                    .allow_origin("https://app.example")
                    .allow_methods([Method::Get, Method::Put])
                    .allow_headers(["content-type"])
                    .allow_credentials(true)
                    .max_age(600),
            )
            .get("/r", || async { "r" })
            .put("/r", || async { "r" })
    };
    let preflight = |origin: &str, method: &str, headers: &str| {
        Request::new(Method::Options, "/r")
            .with_header("origin", origin.to_owned())
            .with_header("access-control-request-method", method.to_owned())
            .with_header("access-control-request-headers", headers.to_owned())
    };
    let res = call(
        open(),
        preflight("https://app.example", "PUT", "Content-Type"),
    );
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let h = res.headers();
    assert_eq!(
        h.get("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(h.get("access-control-allow-methods"), Some("GET, PUT"));
    assert_eq!(h.get("access-control-allow-headers"), Some("content-type"));
    assert_eq!(h.get("access-control-allow-credentials"), Some("true"));
    assert_eq!(h.get("access-control-max-age"), Some("600"));

    let res = call(open(), preflight("https://evil.example", "PUT", ""));
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(problem(&res)["type"], "urn:edgeway:problem:cors-rejected");
    assert_eq!(
        call(open(), preflight("https://app.example", "DELETE", "")).status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(open(), preflight("https://app.example", "PUT", "x-secret")).status(),
        StatusCode::FORBIDDEN
    );

    let simple = call(
        open(),
        get("/r").with_header("origin", "https://app.example"),
    );
    assert_eq!(
        simple.headers().get("access-control-allow-origin"),
        Some("https://app.example")
    );
    let denied = call(
        open(),
        get("/r").with_header("origin", "https://evil.example"),
    );
    assert_eq!(denied.status(), StatusCode::OK);
    assert_eq!(denied.headers().get("access-control-allow-origin"), None);

    // The default policy allows no origin at all.
    let closed = App::new().layer(Cors::new()).get("/r", || async { "r" });
    let res = call(closed, preflight("https://app.example", "GET", ""));
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[test]
fn route_introspection_reports_tags() {
    let service = App::new()
        .get("/a", || async { "" })
        .tag("kv")
        .build()
        .unwrap();
    let routes = service.routes();
    assert_eq!(routes[0].feature.as_deref(), Some("kv"));
    assert_eq!(routes[0].method, "GET");
}
