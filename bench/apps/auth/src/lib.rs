//! The authentication rows of workload (d) (bench/hotpath.mjs): `GET
//! /auth/bearer/ping` behind the API-key guard presented its root key (Hono:
//! `bearerAuth`), and `GET /auth/jwk/ping` behind a JWT signed RS256 by a key
//! of a fixed JWKS, `iss` and `aud` checked (Hono: `jwk`).

use edgeway::auth::{ApiKeys, Jwks, Jwt};
use edgeway::App;

/// Only the root key is presented, so the namespace is never read.
const KEYS: ApiKeys = ApiKeys::new("API_KEYS");
const TOKENS: Jwt = Jwt::new(
    Jwks::inline(include_str!("../../../data/jwt/jwks.json")),
    "https://idp.bench.example",
    "bench",
);

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
}

edgeway::entry!(app);
