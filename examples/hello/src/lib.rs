//! The smallest edgeway worker: a few routes and no bindings.

use edgeway::{App, Json, Path, Query};
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
    App::new()
        .get("/", || async { "Hello from edgeway!" })
        .get("/hello/{name}", hello)
        .get("/healthz", || async { "ok" })
}

edgeway::entry!(app);
