//! The throughput workloads (bench/hotpath.mjs) on edgeway:
//! (a) `GET /` text; (b) `GET /hello/{name}?greeting=` JSON; (c) the 130 GitHub API
//! routes; (d) `GET /mw/ping` behind request id, timing, CORS and a body limit.

use edgeway::middleware::{body_limit, request_id, timing, Cors};
use edgeway::{App, Json, Method, Path, Query};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Greeting {
    greeting: Option<String>,
}

#[derive(Serialize)]
struct Echo {
    name: String,
    greeting: String,
}

async fn hello(Path(name): Path<String>, Query(q): Query<Greeting>) -> Json<Echo> {
    Json(Echo {
        greeting: q.greeting.unwrap_or_else(|| "hello".into()),
        name,
    })
}

fn app() -> App {
    let github = include_str!("../../../data/github-api-routes.txt")
        .lines()
        .filter(|line| line.starts_with('/'))
        .fold(App::new(), |app, route| app.get(route, || async { "gh" }));
    let middleware = App::new()
        .layer(request_id)
        .layer(timing)
        .layer(
            Cors::new()
                .allow_origin("https://app.example")
                .allow_methods([Method::Get, Method::Post]),
        )
        .layer(body_limit(64 * 1024))
        .get("/ping", || async { "pong" });
    App::new()
        .get("/", || async { "Hello from edgeway!" })
        .get("/hello/{name}", hello)
        .nest("/gh", github)
        .nest("/mw", middleware)
}

edgeway::entry!(app);
