//! The flagship gateway. It starts as a skeleton: health and route introspection,
//! with the `www/` console served by Workers Static Assets.

use edgeway::middleware::{request_id, timing};
use edgeway::{App, Json};
use serde_json::json;

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "service": "edgeway-gateway" }))
}

fn app() -> App {
    App::new()
        .layer(request_id)
        .layer(timing)
        .get("/healthz", healthz)
        .tag("health")
}

edgeway::entry!(app);
