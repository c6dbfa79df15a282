//! Authentication (feature `auth`): API keys issued through an admin API and
//! stored hashed in KV (`ApiKeys`), and, with feature `jwt`, bearer JWTs
//! verified against an identity provider's JWKS (`Jwt`). Both grant
//! [scopes](Scope) on route tags, and both hand the handler a [`Caller`].
//!
//! A key is `ewk_<id>_<secret>`, 256 random bits, shown once when it is made;
//! KV keeps only its SHA-256. A request presents it as `authorization: Bearer
//! <key>` or `x-api-key: <key>`. Each key holds scopes named after the
//! [route tags](crate::App::tag) it may call: `kv` (every method on routes
//! tagged `kv`), `kv:read` (their `GET` and `HEAD` only) or `*`.
//!
//! The first key is a Worker secret (`wrangler secret put EDGEWAY_ROOT_KEY`,
//! at least 32 characters), which holds `*` and is never stored. With it,
//! `POST` to the admin routes makes scoped keys; a key can only grant scopes it
//! holds.
//!
//! ```no_run
//! use edgeway::auth::ApiKeys;
//! use edgeway::App;
//!
//! const KEYS: ApiKeys = ApiKeys::new("API_KEYS");
//!
//! let management = App::new()
//!     .layer(KEYS)
//!     .get("/kv/{*key}", || async { "value" })
//!     .tag("kv")
//!     .nest("/keys", KEYS.admin());
//! let app = App::new()
//!     .get("/healthz", || async { "ok" }) // outside the layer: public
//!     .nest("/v1", management);
//! # app.build().unwrap();
//! ```
//!
//! Revocation is immediate in the isolate that revokes, and elsewhere once KV
//! has propagated the delete (up to 60 s) and the isolate's copy of the key
//! (kept [`CACHE_SECONDS`]) has expired.

#[cfg(feature = "jwt")]
mod jwt;
pub(crate) mod key;
#[cfg(feature = "jwt")]
mod token;

#[cfg(feature = "jwt")]
pub use jwt::{Jwks, Jwt, JWKS_CACHE_SECONDS};
pub use key::Scope;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};
use crate::extract::{FromRequestParts, Json, Path};
use crate::handler::BoxFuture;
use crate::http::{Method, StatusCode};
use crate::kv::{Kv, PutOptions};
use crate::middleware::{Middleware, Next, RateLimit};
use crate::request::Request;
use crate::response::{IntoResponse, Response};
use crate::{App, Routes};
use worker::Env;

/// How long an isolate keeps a key it has read from KV, in seconds.
pub const CACHE_SECONDS: f64 = 30.0;
/// The shortest root secret accepted.
const ROOT_MIN_LEN: usize = 32;
/// Where key records live in the namespace.
const RECORD_PREFIX: &str = "apikey:";
/// The most scopes one key holds.
const MAX_SCOPES: usize = 16;
/// The Worker secret that holds the root key, unless
/// [`ApiKeys::root_secret`] names another.
pub const ROOT_SECRET: &str = "EDGEWAY_ROOT_KEY";
/// The scope the admin routes need (their route tag).
pub const ADMIN_TAG: &str = "keys";

/// The API-key guard and its admin routes, configured once as a `const`.
///
/// As a [layer](crate::App::layer), it lets a request through only with a key
/// whose scopes allow the matched route's tag and method: no or a bad key is a
/// `401` problem with `WWW-Authenticate: Bearer`, a missing scope a `403`
/// naming the scope. The routes outside the layer stay public.
#[derive(Clone, Copy, Debug)]
pub struct ApiKeys {
    binding: &'static str,
    root_secret: &'static str,
    #[cfg(feature = "jwt")]
    tokens: Option<Jwt>,
    lookups: Option<RateLimit>,
}

impl ApiKeys {
    /// Keys stored in the KV namespace bound as `binding`. Give them a namespace
    /// of their own: anything that can write to it can mint a key.
    pub const fn new(binding: &'static str) -> Self {
        Self {
            binding,
            root_secret: ROOT_SECRET,
            #[cfg(feature = "jwt")]
            tokens: None,
            lookups: None,
        }
    }

    /// Counts each read of a key from KV (a key this isolate holds no fresh
    /// copy of) against `limit`, by client IP unless `limit` says otherwise;
    /// over it, the request is a `429` before the read. Keys in use are read
    /// once per isolate per [`CACHE_SECONDS`], so this costs their callers
    /// little, while made-up keys, which are never cached, stop turning into
    /// a KV read each.
    pub const fn lookups(mut self, limit: RateLimit) -> Self {
        self.lookups = Some(limit);
        self
    }

    /// Also accepts bearer JWTs that `tokens` verifies, with their `scope`
    /// claim read like a key's scopes: one layer for the people who sign in
    /// through an identity provider and the programs that hold keys (feature
    /// `jwt`).
    #[cfg(feature = "jwt")]
    pub const fn tokens(mut self, tokens: Jwt) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// The Worker secret holding the root key (default `EDGEWAY_ROOT_KEY`).
    pub const fn root_secret(mut self, name: &'static str) -> Self {
        self.root_secret = name;
        self
    }

    /// The admin routes, tagged `keys`, to [nest](crate::App::nest) behind this
    /// layer: `POST /` makes a key (with an API key only: one made with a
    /// bearer token would outlive it) (`{"name", "scopes"}`; the answer carries the
    /// key, once), `GET /` lists the keys within the caller's scopes (never
    /// their secrets or hashes) and `DELETE /{id}` revokes one of them.
    pub fn admin(self) -> App {
        App::new()
            .post(
                "/",
                move |caller: Caller, env: Env, routes: Routes, Json(new): Json<NewApiKey>| {
                    self.create(caller, env, routes, new)
                },
            )
            .tag(ADMIN_TAG)
            // Each handler takes the `Caller`, so mounted without the layer they
            // fail closed instead of serving everyone.
            .get("/", move |caller: Caller, env: Env| self.list(caller, env))
            .tag(ADMIN_TAG)
            .delete(
                "/{id}",
                move |caller: Caller, env: Env, Path(id): Path<String>| {
                    self.revoke(caller, env, id)
                },
            )
            .tag(ADMIN_TAG)
    }

    async fn guard(self, req: Request, next: Next) -> Response {
        let authorization = req.header("authorization");
        let token = key::presented(authorization.as_deref(), req.header("x-api-key").as_deref());
        let Some(token) = token else {
            return challenge(
                "this route needs an API key: send `authorization: Bearer <key>`".into(),
                None,
            );
        };
        // A JWT comes as `authorization: Bearer`, never as `x-api-key`.
        #[cfg(feature = "jwt")]
        if let Some(tokens) = self
            .tokens
            .filter(|_| authorization.is_some() && token::looks_like_jwt(&token))
        {
            return tokens.answer(req, &token, next).await;
        }
        match self.authenticate(&req, &token).await {
            Ok(Some(caller)) => admit(req, caller, next).await,
            Ok(None) => challenge(
                "the API key is not valid: unknown, revoked or malformed".into(),
                Some("error=\"invalid_token\""),
            ),
            Err(err) => err.into_response(),
        }
    }

    /// The caller a token stands for, `None` when it is not a valid key.
    async fn authenticate(self, req: &Request, token: &str) -> Result<Option<Caller>, Error> {
        if let Some(token) = key::parse_token(token) {
            let Some(record) = self.record(req, token.id).await? else {
                return Ok(None);
            };
            return Ok(key::verify(token.secret, &record.hash).then(|| Caller {
                principal: Principal::Key(record.id.clone()),
                scopes: record.scopes.clone().into(),
            }));
        }
        let Some(root) = crate::platform::setting(&req.env()?, self.root_secret) else {
            return Ok(None);
        };
        if root.len() < ROOT_MIN_LEN {
            return Err(Error::internal(format!(
                "the root key secret {} is shorter than {ROOT_MIN_LEN} characters; \
                 set a longer one with `wrangler secret put {}`",
                self.root_secret, self.root_secret
            )));
        }
        Ok(key::verify(token, &key::hash(&root)).then(Caller::root))
    }

    /// The stored key `id`, from this isolate's copy while it is fresh.
    async fn record(self, req: &Request, id: &str) -> Result<Option<Rc<Record>>, Error> {
        let now = crate::platform::now_ms();
        let cached = CACHE.with(|cache| {
            cache
                .borrow()
                .get(id)
                .filter(|(_, fetched)| now - fetched < CACHE_SECONDS * 1000.0)
                .map(|(record, _)| record.clone())
        });
        if cached.is_some() {
            return Ok(cached);
        }
        if let Some(limit) = self.lookups {
            if !limit.admits(req).await? {
                return Err(Error::new(
                    ErrorKind::RateLimited,
                    "too many API-key lookups from this client; \
                     try again after `retry-after` seconds",
                )
                .with_retry_after(limit.period()));
            }
        }
        let stored: Option<Record> = Kv::from_request(req, self.binding)?
            .get_json(&format!("{RECORD_PREFIX}{id}"))
            .await?;
        let Some(record) = stored else {
            return Ok(None);
        };
        // A read that began before this isolate revoked the key must not bring
        // it back.
        if REVOKED.with(|revoked| revoked.borrow().contains(id)) {
            return Ok(None);
        }
        let record = Rc::new(record);
        CACHE.with(|cache| {
            cache
                .borrow_mut()
                .insert(id.to_owned(), (record.clone(), now));
        });
        Ok(Some(record))
    }

    async fn create(
        self,
        caller: Caller,
        env: Env,
        routes: Routes,
        new: NewApiKey,
    ) -> Result<(StatusCode, Json<CreatedApiKey>), Error> {
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(Error::new(
                ErrorKind::Validation,
                "`name` must be 1-64 characters, none of them control characters",
            ));
        }
        if new.scopes.is_empty() || new.scopes.len() > MAX_SCOPES {
            return Err(Error::new(
                ErrorKind::Validation,
                format!("`scopes` must list 1-{MAX_SCOPES} scopes"),
            ));
        }
        // A scope names a route tag; one that names none is a typo that would
        // make a key that can call nothing.
        let unknown: Vec<(usize, &str)> = new
            .scopes
            .iter()
            .enumerate()
            .filter_map(|(i, scope)| scope.tag().map(|tag| (i, tag)))
            .filter(|(_, tag)| {
                !routes
                    .0
                    .iter()
                    .any(|route| route.feature.as_deref() == Some(*tag))
            })
            .collect();
        if !unknown.is_empty() {
            let names: Vec<&str> = unknown.iter().map(|(_, tag)| *tag).collect();
            let errors: Vec<serde_json::Value> = unknown
                .iter()
                .map(|(i, tag)| {
                    serde_json::json!({
                        "path": format!("scopes[{i}]"),
                        "message": format!("no route is tagged `{tag}`"),
                    })
                })
                .collect();
            return Err(Error::new(
                ErrorKind::Validation,
                format!("unknown scope: no route is tagged `{}`", names.join("`, `")),
            )
            .with_json_member("errors", serde_json::Value::Array(errors)));
        }
        // A key made with a token would outlive the token's `exp` and its
        // revocation at the identity provider.
        if matches!(caller.principal, Principal::Token { .. }) {
            return Err(Error::new(
                ErrorKind::Forbidden,
                "API keys are made with an API key, not with a bearer token",
            ));
        }
        if let Some(beyond) = caller.first_not_held(&new.scopes) {
            return Err(Error::new(
                ErrorKind::Forbidden,
                format!(
                    "a key can only grant scopes it holds, and this one does not hold `{beyond}`"
                ),
            ));
        }
        let (id, token, hash) = key::new_key();
        let record = Record {
            id: id.clone(),
            name: name.to_owned(),
            scopes: new.scopes,
            hash,
            created_at_ms: crate::platform::now_ms() as u64,
        };
        Kv::from_env(&env, self.binding)?
            .put_json(&format!("{RECORD_PREFIX}{id}"), &record, PutOptions::new())
            .await?;
        Ok((
            StatusCode::CREATED,
            Json(CreatedApiKey {
                key: token,
                view: record.view(),
            }),
        ))
    }

    /// The keys within the caller's scopes (every key, for the root key): as
    /// with revoking, a key sees no key above it.
    async fn list(self, caller: Caller, env: Env) -> Result<Json<Vec<ApiKeyView>>, Error> {
        let store = Kv::from_env(&env, self.binding)?;
        let names = store.list(RECORD_PREFIX).await?;
        // One read at a time: an admin listing, where a join of futures would
        // only add code to every worker that mounts the admin routes.
        let mut views = Vec::with_capacity(names.len());
        for entry in &names {
            if let Some(record) = store.get_json::<Record>(&entry.name).await? {
                if caller.first_not_held(&record.scopes).is_none() {
                    views.push(record.view());
                }
            }
        }
        views.sort_unstable_by_key(|view| view.created_at_ms);
        Ok(Json(views))
    }

    async fn revoke(self, caller: Caller, env: Env, id: String) -> Result<StatusCode, Error> {
        if !key::is_id(&id) {
            return Err(Error::not_found(format!("no API key {id:?}")));
        }
        let store = Kv::from_env(&env, self.binding)?;
        let name = format!("{RECORD_PREFIX}{id}");
        let Some(record) = store.get_json::<Record>(&name).await? else {
            return Err(Error::not_found(format!("no API key {id:?}")));
        };
        // As with granting: a key may revoke only keys within its own scopes,
        // so a `keys` key cannot take away the keys of those above it.
        if let Some(beyond) = caller.first_not_held(&record.scopes) {
            return Err(Error::new(
                ErrorKind::Forbidden,
                format!(
                    "a key may only revoke keys within its scopes, and that one holds `{beyond}`"
                ),
            ));
        }
        store.delete(&name).await?;
        REVOKED.with(|revoked| revoked.borrow_mut().insert(id.clone()));
        CACHE.with(|cache| cache.borrow_mut().remove(&id));
        Ok(StatusCode::NO_CONTENT)
    }
}

impl Middleware for ApiKeys {
    fn call(&self, req: Request, next: Next) -> BoxFuture<Response> {
        Box::pin(self.guard(req, next))
    }
}

thread_local! {
    /// Keys read from KV, with when they were read (ms).
    static CACHE: RefCell<HashMap<String, (Rc<Record>, f64)>> = RefCell::new(HashMap::new());
    /// Ids this isolate revoked: never valid again here, even if a KV read
    /// that began before the revocation answers after it. Ids are random, so
    /// the set grows only with the revocations one isolate serves.
    static REVOKED: RefCell<std::collections::HashSet<String>> =
        RefCell::new(std::collections::HashSet::new());
}

/// Lets `caller` through when its scopes allow the matched route's tag and
/// method, for the extractor to find; otherwise a `403` naming the scope.
async fn admit(mut req: Request, caller: Caller, next: Next) -> Response {
    let tag = req.route().and_then(|route| route.feature.clone());
    if !key::allowed(&caller.scopes, tag.as_deref(), req.method()) {
        let needed = match (&tag, req.method()) {
            (Some(tag), Method::Get | Method::Head) => format!("{tag}:read"),
            (Some(tag), _) => tag.to_string(),
            (None, _) => "*".to_owned(),
        };
        let mut response = Error::new(
            ErrorKind::Forbidden,
            format!("this credential lacks the scope `{needed}` for this route"),
        )
        .with_member("scope", needed.clone())
        .into_response();
        let _ = response.headers_mut().insert(
            "www-authenticate",
            format!("Bearer realm=\"edgeway\", error=\"insufficient_scope\", scope=\"{needed}\""),
        );
        return response;
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// A `401` problem with its `WWW-Authenticate` challenge (RFC 6750).
fn challenge(detail: String, error: Option<&str>) -> Response {
    let mut response = Error::new(ErrorKind::Unauthorized, detail).into_response();
    let value = match error {
        Some(error) => format!("Bearer realm=\"edgeway\", {error}"),
        None => "Bearer realm=\"edgeway\"".to_owned(),
    };
    let _ = response.headers_mut().insert("www-authenticate", value);
    response
}

/// A stored key. Its secret is not here, only the secret's hash.
#[derive(Serialize, Deserialize)]
struct Record {
    id: String,
    name: String,
    scopes: Vec<Scope>,
    #[serde(with = "hex_hash")]
    hash: [u8; 32],
    created_at_ms: u64,
}

impl Record {
    fn view(&self) -> ApiKeyView {
        ApiKeyView {
            id: self.id.clone(),
            name: self.name.clone(),
            scopes: self.scopes.clone(),
            created_at_ms: self.created_at_ms,
        }
    }
}

mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(hash: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(hash))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let mut hash = [0; 32];
        hex::decode_to_slice(text.as_bytes(), &mut hash).map_err(serde::de::Error::custom)?;
        Ok(hash)
    }
}

/// The body of `POST` to the admin routes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// What the key is for, 1–64 characters (shown in listings).
    pub name: String,
    /// What it may call; see [`Scope`].
    pub scopes: Vec<Scope>,
}

/// A key as listed: never its secret or hash.
#[derive(Clone, Debug, Serialize)]
pub struct ApiKeyView {
    /// Its public id (the part after `ewk_`).
    pub id: String,
    /// What it is for.
    pub name: String,
    /// What it may call.
    pub scopes: Vec<Scope>,
    /// Made, in ms since the epoch.
    pub created_at_ms: u64,
}

/// The answer to making a key: the key itself, shown this once, and its view.
#[derive(Serialize)]
pub struct CreatedApiKey {
    /// The whole key, `ewk_<id>_<secret>`. Not stored; a lost key is revoked and
    /// replaced.
    pub key: String,
    /// The key as listings show it.
    #[serde(flatten)]
    pub view: ApiKeyView,
}

/// Who the [`ApiKeys`] or `Jwt` layer let through, as an extractor: who it
/// is and its scopes. A route outside the layers cannot extract it, so a
/// handler that takes it fails closed (500) when mounted unguarded.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Who presented the credential.
    pub principal: Principal,
    /// What it may call.
    pub scopes: Rc<[Scope]>,
}

/// Whose credential a [`Caller`] presented.
#[derive(Clone, Debug)]
pub enum Principal {
    /// The root key (the Worker secret).
    Root,
    /// An issued API key, by its id.
    Key(String),
    /// A verified JWT: its subject (`sub`) and all of its claims.
    Token {
        /// The `sub` claim, when it has one.
        subject: Option<String>,
        /// Every claim, for what a handler reads itself (`email`, roles).
        claims: Rc<serde_json::Value>,
    },
}

impl Caller {
    /// The first of `scopes` that goes beyond this caller's own: what it may
    /// neither grant nor take away.
    fn first_not_held<'a>(&self, scopes: &'a [Scope]) -> Option<&'a Scope> {
        scopes
            .iter()
            .find(|scope| !self.scopes.iter().any(|held| scope.within(held)))
    }

    fn root() -> Self {
        Self {
            principal: Principal::Root,
            scopes: Rc::from([Scope::parse("*").expect("`*` is a scope")]),
        }
    }
}

impl FromRequestParts for Caller {
    fn from_request_parts(req: &mut Request) -> Result<Self, Error> {
        req.extensions().get::<Caller>().cloned().ok_or_else(|| {
            Error::internal("this route takes a Caller but is not behind the ApiKeys or Jwt layer")
        })
    }
}
