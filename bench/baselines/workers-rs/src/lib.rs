//! The workers-rs entry with no router: the `worker` crate's own per-request cost.

use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(_req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    Response::ok("Hello from edgeway!")
}
