//! The throughput workloads on the workers-rs `Router`, as its documentation writes
//! it: a `Router` built inside `#[event(fetch)]` for each request. workers-rs has
//! no middleware, so it runs (a) to (c), not (d).

use serde::Serialize;
use worker::{event, Context, Env, Request, Response, Result, Router};

#[derive(Serialize)]
struct Echo {
    name: String,
    greeting: String,
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let github = include_str!("../../../data/github-api-routes.txt")
        .lines()
        .filter(|line| line.starts_with('/'));
    let mut router = Router::new()
        .get("/", |_, _| Response::ok("Hello from edgeway!"))
        .get("/hello/:name", |req, ctx| {
            let greeting = req
                .url()?
                .query_pairs()
                .find(|(k, _)| k == "greeting")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_else(|| "hello".into());
            Response::from_json(&Echo {
                name: ctx.param("name").cloned().unwrap_or_default(),
                greeting,
            })
        });
    for route in github {
        // matchit 0.7 (inside workers-rs) writes parameters as `:name`.
        let pattern = format!("/gh{}", route.replace('{', ":").replace('}', ""));
        router = router.get(&pattern, |_, _| Response::ok("gh"));
    }
    router.run(req, env).await
}
