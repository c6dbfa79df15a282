//! A worker for the e2e tests: every extractor, every built-in middleware and every
//! error path of edgeway, reachable over HTTP.

use std::rc::Rc;

use edgeway::auth::{ApiKeys, Caller, Jwks, Jwt, Principal};
use edgeway::middleware::{
    access_log, body_limit, request_id, timing, Cors, RateLimit, ResponseCache,
};
use edgeway::{
    App, Error, Form, HeaderMap, IntoResponse, Json, Method, Origin, Path, Query, Request,
    Response, State, StatusCode, TrailingSlash, Url, Valid,
};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize)]
struct Note {
    text: String,
    stars: u8,
}

/// A sign-up whose fields have rules (`Valid<Json<…>>`).
#[derive(Deserialize, Serialize, garde::Validate)]
struct SignUp {
    #[garde(length(min = 3, max = 20))]
    handle: String,
    #[garde(contains("@"))]
    email: String,
    #[garde(range(min = 13))]
    age: u8,
}

#[derive(Deserialize, Serialize)]
struct Paging {
    offset: u32,
    limit: Option<u32>,
}

struct Config {
    name: &'static str,
}

async fn echo_note(Json(note): Json<Note>) -> (StatusCode, Json<Note>) {
    (StatusCode::CREATED, Json(note))
}

async fn raw(req: Request) -> String {
    format!(
        "{} {} {}",
        req.method(),
        req.path(),
        req.query().unwrap_or("")
    )
}

async fn fail() -> Result<&'static str, Error> {
    Err(Error::internal("the database password is hunter2"))
}

async fn panics() -> &'static str {
    let items: Vec<u8> = Vec::new();
    // An out-of-bounds index: the kind of bug that panics in production.
    let _ = items[usize::from(items.is_empty()) * 3];
    "unreachable"
}

#[cfg(target_arch = "wasm32")]
mod js {
    use super::*;
    use std::time::Duration;

    #[derive(Deserialize)]
    pub struct Wait {
        ms: u64,
    }

    pub async fn slow(Query(wait): Query<Wait>) -> String {
        worker::Delay::from(Duration::from_millis(wait.ms.min(10_000))).await;
        format!("slept {} ms", wait.ms)
    }

    pub async fn var(env: worker::Env) -> Result<String, Error> {
        Ok(env.var("GREETING")?.to_string())
    }

    pub async fn background(ctx: worker::Context) -> &'static str {
        ctx.wait_until(async {
            edgeway::observe::log(
                edgeway::observe::Level::Info,
                serde_json::json!({"msg": "wait_until ran"}),
            );
        });
        "scheduled"
    }
}

thread_local! {
    /// How many times the cached routes' handlers ran for each name: what the
    /// cache saves.
    static RENDERS: std::cell::RefCell<std::collections::HashMap<String, u32>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

fn render(name: &str) {
    RENDERS.with(|renders| *renders.borrow_mut().entry(name.to_owned()).or_default() += 1);
}

/// Routes behind the response cache: a greeting per name, one per language
/// (`Vary: accept-language`), a write that makes a name's greeting stale, and
/// the render count, which is not cached.
fn cached() -> App {
    const CACHE: ResponseCache = ResponseCache::new().vary(&["accept-language"]);
    App::new()
        .layer(CACHE)
        .get(
            "/{name}",
            |Path(name): Path<String>, headers: HeaderMap| async move {
                render(&name);
                let greeting = match headers.get("accept-language") {
                    Some(lang) if lang.starts_with("fr") => "bonjour",
                    _ => "hello",
                };
                (
                    [("cache-control", "max-age=300")],
                    format!("{greeting} {name}"),
                )
            },
        )
        .put("/{name}", |Path(_): Path<String>| async move {
            StatusCode::NO_CONTENT
        })
        .get("/{name}/private", |Path(name): Path<String>| async move {
            render(&name);
            ([("cache-control", "private, max-age=300")], name)
        })
}

/// The identity provider the token routes trust; the harness points
/// `JWKS_URL` at the tests' provider.
const TOKENS: Jwt = Jwt::new(
    Jwks::url_from_setting("JWKS_URL"),
    "https://idp.edgeway.test",
    "conformance",
)
// The tests rotate a key and check the fetch a second later.
.jwks_cooldown(1);

/// Routes behind bearer JWTs: orders (tag `orders`), answering who called.
fn orders(app: App) -> App {
    let who = |caller: Caller| async move {
        let (subject, email) = match &caller.principal {
            Principal::Token { subject, claims } => (subject.clone(), claims["email"].clone()),
            Principal::Root => (Some("root".to_owned()), serde_json::Value::Null),
            Principal::Key(id) => (Some(id.clone()), serde_json::Value::Null),
        };
        let scopes: Vec<String> = caller.scopes.iter().map(ToString::to_string).collect();
        Json(serde_json::json!({ "subject": subject, "email": email, "scopes": scopes }))
    };
    app.get("/orders", who)
        .tag("orders")
        .post("/orders", move |caller: Caller| async move {
            (StatusCode::CREATED, who(caller).await)
        })
        .tag("orders")
}

fn app() -> App {
    // A JWKS URL setting that is not one: every request is a 500 naming it.
    const MISCONFIGURED: Jwt = Jwt::new(
        Jwks::url_from_setting("PLAIN_HTTP_JWKS_URL"),
        "https://idp.edgeway.test",
        "conformance",
    );
    let tokens = orders(App::new().layer(TOKENS));
    // KV reads of keys: 5 per minute per client, so the tests can pass it.
    const KEYS: ApiKeys = ApiKeys::new("API_KEYS")
        .tokens(TOKENS)
        .lookups(RateLimit::new("KEY_LOOKUPS", 5, 60));
    let keys_or_tokens = orders(App::new().layer(KEYS)).nest("/keys", KEYS.admin());
    let misconfigured = orders(App::new().layer(MISCONFIGURED));
    // An issuer whose JWKS cannot be fetched: a 502, not a 401.
    const UNREACHABLE: Jwt = Jwt::new(
        Jwks::url_from_setting("UNREACHABLE_JWKS_URL"),
        "https://idp.edgeway.test",
        "conformance",
    );
    let unreachable = orders(App::new().layer(UNREACHABLE));
    let limited = App::new()
        .layer(body_limit(16))
        .post("/echo", |body: Vec<u8>| async move {
            format!("{} bytes", body.len())
        });

    let app = App::new()
        .layer(request_id)
        .layer(access_log)
        .layer(timing)
        .layer(
            Cors::new()
                .allow_origin("https://app.example")
                .allow_methods([Method::Get, Method::Post, Method::Put])
                .allow_headers(["content-type", "x-request-id"])
                .max_age(600),
        )
        .trailing_slash(TrailingSlash::Redirect)
        .state(Rc::new(Config {
            name: "conformance",
        }))
        .get("/", || async { "conformance" })
        .get("/path/{id}", |Path(id): Path<u32>| async move {
            format!("id {id}")
        })
        .get(
            "/pair/{user}/{post}",
            |Path((user, post)): Path<(String, u64)>| async move { format!("{user} {post}") },
        )
        .get("/query", |Query(paging): Query<Paging>| async move {
            Json(paging)
        })
        .post("/json", echo_note)
        .post("/form", |Form(note): Form<Note>| async move { Json(note) })
        .post(
            "/signups",
            |Valid(Json(signup)): Valid<Json<SignUp>>| async move {
                (StatusCode::CREATED, Json(signup))
            },
        )
        .post("/bytes", |body: Vec<u8>| async move {
            format!("{} bytes", body.len())
        })
        .post("/text", |body: String| async move { body })
        .get("/headers", |headers: HeaderMap| async move {
            headers.get("x-test").unwrap_or("none").to_owned()
        })
        .get("/cookies", || async {
            // Two values of one header: the JS side must not fold them into one.
            let mut res = "two cookies".into_response();
            let headers = res.headers_mut();
            headers.append("set-cookie", "a=1; Path=/")?;
            headers.append("set-cookie", "b=2; Path=/")?;
            headers.insert("x-once", "yes")?;
            Ok::<_, Error>(res)
        })
        .get("/state", |State(config): State<Rc<Config>>| async move {
            config.name
        })
        .get("/raw", raw)
        .get("/url", |Url(url): Url| async move { url })
        .post("/things", |Origin(origin): Origin| async move {
            Response::see_other(&format!("{origin}/things/42"))
        })
        .get("/fail", fail)
        .get("/panic", panics)
        .get("/tagged/{id}", || async { "tagged" })
        .tag("demo")
        .nest("/limited", limited)
        .nest("/cached", cached())
        .nest("/tokens", tokens)
        .nest("/keys-or-tokens", keys_or_tokens)
        .nest("/misconfigured", misconfigured)
        .nest("/unreachable", unreachable)
        .get("/renders/{name}", |Path(name): Path<String>| async move {
            RENDERS.with(|renders| {
                renders
                    .borrow()
                    .get(&name)
                    .copied()
                    .unwrap_or(0)
                    .to_string()
            })
        });

    #[cfg(target_arch = "wasm32")]
    let app = app
        .get("/slow", js::slow)
        .get("/env", js::var)
        .get("/ctx", js::background);
    app
}

edgeway::entry!(app);
