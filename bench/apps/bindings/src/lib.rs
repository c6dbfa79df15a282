//! The workloads of bench/hotpath.mjs that need bindings: `GET
//! /auth/bearer/ping` behind the API-key guard presented its root key (Hono:
//! `bearerAuth`) and `GET /auth/jwk/ping` behind a JWT signed RS256 by a key of
//! a fixed JWKS, `iss` and `aud` checked (Hono: `jwk`), for (d); and the text
//! hello with and without the `Ops` layer in front of it, for (a).

use edgeway::auth::{ApiKeys, Jwks, Jwt};
use edgeway::ops::Ops;
use edgeway::App;

/// Only the root key is presented, so the namespace is never read.
const KEYS: ApiKeys = ApiKeys::new("API_KEYS");
const TOKENS: Jwt = Jwt::new(
    Jwks::inline(include_str!("../../../data/jwt/jwks.json")),
    "https://idp.bench.example",
    "bench",
);

/// Bare workerd binds no queue: the flush, once a minute, fails and is logged;
/// what is measured is what every request pays.
const OPS: Ops = Ops::new("OPS_USAGE", "OPS_DB");

fn app() -> App {
    let bearer = App::new()
        .layer(KEYS)
        .get("/ping", || async { "pong" })
        .tag("ping");
    let jwk = App::new()
        .layer(TOKENS)
        .get("/ping", || async { "pong" })
        .tag("ping");
    App::new()
        .get("/", || async { "Hello from edgeway!" })
        .nest("/auth/bearer", bearer)
        .nest("/auth/jwk", jwk)
        .get("/hello", || async { "Hello from edgeway!" })
        .nest(
            "/metered",
            App::new()
                .layer(OPS)
                .get("/hello", || async { "Hello from edgeway!" })
                .tag("hello"),
        )
}

edgeway::entry!(app);
