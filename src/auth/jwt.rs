//! Bearer JWTs from an identity provider, verified against its JWKS with the
//! runtime's WebCrypto, scoped by route tag like API keys.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::token::{self, Expect, Jwk, JwkSet, Rejection};
use super::{Caller, Principal};
use crate::error::{Error, ErrorKind};
use crate::handler::BoxFuture;
use crate::middleware::{Middleware, Next};
use crate::request::Request;
use crate::response::{IntoResponse, Response};

/// How long an isolate keeps a fetched JWKS, in seconds.
pub const JWKS_CACHE_SECONDS: f64 = 600.0;
/// The largest JWKS read.
const JWKS_MAX_BYTES: u32 = 256 * 1024;
/// How long a JWKS fetch may take.
const JWKS_TIMEOUT_MS: u32 = 5_000;

/// Where an issuer's public keys come from.
#[derive(Clone, Copy, Debug)]
pub struct Jwks(Source);

#[derive(Clone, Copy, Debug)]
enum Source {
    Url(&'static str),
    Setting(&'static str),
    Inline(&'static str),
}

impl Jwks {
    /// Fetched from `url`, which must be `https://` (or `http://` to
    /// `127.0.0.1` or `localhost`); any other URL fails the build when the
    /// configuration is a `const`:
    ///
    /// ```compile_fail
    /// use edgeway::auth::Jwks;
    /// // Plain http to another host: keys an attacker on the path could swap.
    /// const KEYS: Jwks = Jwks::url("http://idp.example/.well-known/jwks.json");
    /// ```
    pub const fn url(url: &'static str) -> Self {
        assert!(
            token::is_jwks_url(url),
            "a JWKS URL must be https://<host>/… (or http:// to 127.0.0.1 or localhost)"
        );
        Self(Source::Url(url))
    }

    /// Fetched from the URL in the Worker setting `name` (a `[vars]` entry), for
    /// an issuer that differs per environment. The URL is checked when the
    /// first token arrives; a missing or bad one answers every request `500`
    /// with a problem naming the setting.
    pub const fn url_from_setting(name: &'static str) -> Self {
        assert!(!name.is_empty(), "name the setting that holds the JWKS URL");
        Self(Source::Setting(name))
    }

    /// These keys (a JWKS document), for an issuer whose keys are fixed.
    pub const fn inline(jwks: &'static str) -> Self {
        assert!(!jwks.is_empty(), "an inline JWKS needs its keys");
        Self(Source::Inline(jwks))
    }

    /// The key that tells this source's cached set apart.
    fn id(self) -> &'static str {
        match self.0 {
            Source::Url(text) | Source::Setting(text) | Source::Inline(text) => text,
        }
    }
}

/// The bearer-JWT guard, configured once as a `const`.
///
/// As a [layer](crate::App::layer), it lets a request through only with
/// `authorization: Bearer <JWT>` that an accepted algorithm (RS256–512,
/// PS256–512, ES256, ES384; never `none` or HMAC) signed with a key from the
/// issuer's JWKS, that has not expired (`exp` is required; `nbf` is honoured),
/// and whose `iss` and `aud` match. Its `scope` (or `scp`) claim is read as
/// [scopes](super::Scope) on route tags, as for API keys: a missing scope is a
/// `403`, everything else a `401` with `WWW-Authenticate: Bearer`.
///
/// ```no_run
/// use edgeway::auth::{Jwks, Jwt};
/// use edgeway::App;
///
/// const TOKENS: Jwt = Jwt::new(
///     Jwks::url("https://idp.example/.well-known/jwks.json"),
///     "https://idp.example/",
///     "orders-api",
/// );
///
/// let app = App::new()
///     .layer(TOKENS)
///     .get("/orders", || async { "[]" })
///     .tag("orders");
/// # app.build().unwrap();
/// ```
///
/// To accept API keys and tokens on the same routes, give it to
/// [`ApiKeys::tokens`](super::ApiKeys::tokens) instead.
#[derive(Clone, Copy, Debug)]
pub struct Jwt {
    jwks: Jwks,
    issuer: &'static str,
    audience: &'static str,
    leeway_seconds: u32,
    cooldown_seconds: u32,
}

impl Jwt {
    /// Tokens signed with a key from `jwks`, issued by `issuer` (`iss`) for
    /// `audience` (one of `aud`).
    pub const fn new(jwks: Jwks, issuer: &'static str, audience: &'static str) -> Self {
        assert!(!issuer.is_empty(), "a JWT issuer (`iss`) cannot be empty");
        assert!(
            !audience.is_empty(),
            "a JWT audience (`aud`) cannot be empty"
        );
        Self {
            jwks,
            issuer,
            audience,
            leeway_seconds: 60,
            cooldown_seconds: 30,
        }
    }

    /// The shortest wait between two fetches of the JWKS (default 30 s, 1 to
    /// 300). A token whose `kid` is not in the set fetches it again, since
    /// the issuer may have rotated its keys; the cooldown keeps a stream of
    /// made-up `kid`s from becoming a stream of fetches.
    pub const fn jwks_cooldown(mut self, seconds: u32) -> Self {
        assert!(
            seconds >= 1 && seconds <= 300,
            "a JWKS cooldown is 1 to 300 seconds"
        );
        self.cooldown_seconds = seconds;
        self
    }

    /// The clock skew tolerated on `exp` and `nbf` (default 60 s, at most 300).
    pub const fn leeway(mut self, seconds: u32) -> Self {
        assert!(
            seconds <= 300,
            "a JWT leeway over 300 s keeps expired tokens alive"
        );
        self.leeway_seconds = seconds;
        self
    }

    async fn guard(self, req: Request, next: Next) -> Response {
        let token = req
            .header("authorization")
            .and_then(|value| crate::http::bearer_token(&value).map(str::to_owned));
        let Some(token) = token else {
            return super::challenge(
                "this route needs a bearer token: send `authorization: Bearer <JWT>`".into(),
                None,
            );
        };
        self.answer(req, &token, next).await
    }

    /// Lets the request through as the caller `token` stands for, or answers
    /// why not: 401 for the token, 403 for a missing scope, 5xx for this side.
    pub(super) async fn answer(self, req: Request, token: &str, next: Next) -> Response {
        match self.authenticate(&req, token).await {
            Ok(Ok(caller)) => super::admit(req, caller, next).await,
            Ok(Err(rejection)) => {
                super::challenge(rejection.to_string(), Some("error=\"invalid_token\""))
            }
            Err(err) => err.into_response(),
        }
    }

    /// The caller `token` stands for, or why it is refused. An `Err` is this
    /// side's failure (no JWKS to check with), not the token's.
    async fn authenticate(
        self,
        req: &Request,
        token: &str,
    ) -> Result<Result<Caller, Rejection>, Error> {
        let signed = match token::split(token) {
            Ok(signed) => signed,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let mut keys = self.keys(req, false).await?;
        if token::choose(&keys, &signed).is_none()
            && !token::knows_kid(&keys, signed.kid.as_deref())
        {
            keys = self.keys(req, true).await?;
        }
        let Some(key) = token::choose(&keys, &signed) else {
            return Ok(Err(Rejection::UnknownKey));
        };
        if !signature_verifies(key, &signed).await {
            return Ok(Err(Rejection::Signature));
        }
        let expect = Expect {
            issuer: self.issuer,
            audience: self.audience,
            leeway_seconds: self.leeway_seconds,
        };
        Ok(
            token::check_claims(&signed, expect, crate::platform::now_ms() / 1000.0).map(
                |verified| Caller {
                    principal: Principal::Token {
                        subject: verified.subject,
                        claims: Rc::new(verified.claims),
                    },
                    scopes: verified.scopes.into(),
                },
            ),
        )
    }

    /// The issuer's keys, from this isolate's copy while it is fresh. With
    /// `refetch`, fetched again. Once a fetch has been tried, at most one per
    /// cooldown: meanwhile the copy serves, stale or not, and without one the
    /// request fails. (Before the isolate's first answer, concurrent requests
    /// each fetch, rather than fail while one waits.) When a fetch fails, the
    /// copy keeps serving.
    async fn keys(self, req: &Request, refetch: bool) -> Result<Rc<[Jwk]>, Error> {
        let now = crate::platform::now_ms();
        let id = self.jwks.id();
        let cached = SETS.with(|sets| sets.borrow().get(id).cloned());
        if let Some(set) = &cached {
            let fresh = set.keys.is_some()
                && (matches!(self.jwks.0, Source::Inline(_))
                    || now - set.fetched_ms < JWKS_CACHE_SECONDS * 1000.0);
            let cooling = now - set.attempted_ms < f64::from(self.cooldown_seconds) * 1000.0;
            if (fresh && !refetch) || cooling {
                return set.keys.clone().ok_or_else(|| {
                    Error::new(
                        ErrorKind::Upstream,
                        format!(
                            "the issuer's JWKS could not be fetched; the next try is within {} s",
                            self.cooldown_seconds
                        ),
                    )
                });
            }
        }
        let keys = cached.as_ref().and_then(|set| set.keys.clone());
        if let Some(set) = &cached {
            if set.keys.is_some() {
                // Requests that arrive during the fetch use the copy meanwhile.
                // (Without one they fetch too, rather than fail while waiting.)
                let set = KeySet {
                    attempted_ms: now,
                    ..set.clone()
                };
                SETS.with(|sets| sets.borrow_mut().insert(id, set));
            }
        }
        let loaded = self.load(req).await;
        let fetched: Rc<[Jwk]> = match loaded {
            Ok(fetched) => fetched.into(),
            // A misconfiguration is no fetch: every request says so.
            Err(err) if err.kind() == ErrorKind::Internal => return Err(err),
            Err(err) => {
                // Keep serving the last good keys; try again after the cooldown.
                let fetched_ms = cached.as_ref().map_or(0.0, |set| set.fetched_ms);
                let set = KeySet {
                    keys: keys.clone(),
                    fetched_ms,
                    attempted_ms: now,
                };
                SETS.with(|sets| sets.borrow_mut().insert(id, set));
                return keys.ok_or(err);
            }
        };
        let set = KeySet {
            keys: Some(fetched.clone()),
            fetched_ms: now,
            attempted_ms: now,
        };
        SETS.with(|sets| sets.borrow_mut().insert(id, set));
        Ok(fetched)
    }

    async fn load(self, req: &Request) -> Result<Vec<Jwk>, Error> {
        let url = match self.jwks.0 {
            Source::Inline(text) => {
                return JwkSet::parse(text.as_bytes())
                    .map_err(|e| Error::internal(format!("the inline JWKS: {e}")))
            }
            Source::Url(url) => url.to_owned(),
            Source::Setting(name) => {
                let url = crate::platform::setting(&req.env()?, name).ok_or_else(|| {
                    Error::internal(format!("set the JWKS URL in the Worker setting `{name}`"))
                })?;
                if !token::is_jwks_url(&url) {
                    return Err(Error::internal(format!(
                        "the Worker setting `{name}` is not a JWKS URL: it must be \
                         https://<host>/… (or http:// to 127.0.0.1 or localhost)"
                    )));
                }
                url
            }
        };
        let reply = crate::outbound::send(&crate::outbound::OutboundRequest {
            method: "GET",
            url: url.clone(),
            headers: vec![("accept".to_owned(), "application/json".to_owned())],
            body: Vec::new(),
            timeout_ms: JWKS_TIMEOUT_MS,
            max_response_bytes: JWKS_MAX_BYTES,
        })
        .await?;
        if reply.status != 200 || reply.truncated {
            return Err(Error::new(
                ErrorKind::Upstream,
                format!(
                    "the JWKS at {url} answered {}{}",
                    reply.status,
                    if reply.truncated {
                        ", over 256 KiB"
                    } else {
                        ""
                    }
                ),
            ));
        }
        JwkSet::parse(&reply.body)
            .map_err(|e| Error::new(ErrorKind::Upstream, format!("{e} (from {url})")))
    }
}

impl Middleware for Jwt {
    fn call(&self, req: Request, next: Next) -> BoxFuture<Response> {
        Box::pin(self.guard(req, next))
    }
}

/// One JWKS source's keys in this isolate.
#[derive(Clone)]
struct KeySet {
    /// The last keys fetched; `None` until a fetch succeeds.
    keys: Option<Rc<[Jwk]>>,
    /// When they were fetched (ms).
    fetched_ms: f64,
    /// When the last fetch began, whether or not it succeeded (ms).
    attempted_ms: f64,
}

thread_local! {
    /// Each JWKS source's keys, by source.
    static SETS: RefCell<HashMap<&'static str, KeySet>> = RefCell::new(HashMap::new());
}

/// Whether the token's signature verifies with `key`, by the runtime's
/// WebCrypto.
#[cfg(target_arch = "wasm32")]
async fn signature_verifies(key: &Jwk, signed: &token::Signed<'_>) -> bool {
    crate::js::crypto::verify(
        signed.alg.name(),
        key.public_json(),
        signed.signing_input.as_bytes(),
        &signed.signature,
    )
    .await
}

/// Natively there is no WebCrypto, and so nothing verifies: the guard fails
/// closed. (Tokens are checked in workerd by the e2e tests.)
#[cfg(not(target_arch = "wasm32"))]
async fn signature_verifies(_: &Jwk, _: &token::Signed<'_>) -> bool {
    false
}
