//! Throttling on the Workers Rate Limiting binding (feature `bindings`).

use crate::error::{Error, ErrorKind};
use crate::handler::BoxFuture;
use crate::middleware::{Middleware, Next};
use crate::request::Request;
use crate::response::{IntoResponse, Response};

/// A rate limit: at most `limit` requests per `period` seconds for each client,
/// counted by a `[[ratelimits]]` binding.
///
/// Over the limit, a request gets a `429` problem (`rate-limited`) with
/// `Retry-After` and the IETF `RateLimit` and `RateLimit-Policy` headers; the
/// handler never runs. Requests that pass carry `RateLimit-Policy`.
///
/// Clients are told apart by their IP (`cf-connecting-ip`) unless told
/// otherwise: by the API key that called ([`by_caller`](Self::by_caller)) or by
/// any function of the request ([`by`](Self::by)). The count is the binding's:
/// every layer on one binding draws on one budget per client, whatever routes
/// it wraps; [`per_route`](Self::per_route) gives each route its own.
///
/// Declare it as a `const`: a zero limit or a period the binding does not
/// support fails the build, not a request.
///
/// ```compile_fail
/// use edgeway::middleware::RateLimit;
/// const NOTHING: RateLimit = RateLimit::new("WRITE_LIMIT", 0, 10);
/// ```
///
/// ```toml
/// [[ratelimits]]
/// name = "WRITE_LIMIT"
/// namespace_id = "1001"
/// simple = { limit = 30, period = 10 }
/// ```
///
/// ```
/// use edgeway::middleware::RateLimit;
/// use edgeway::App;
///
/// // The same numbers as the binding's `simple`, for the headers.
/// const WRITES: RateLimit = RateLimit::new("WRITE_LIMIT", 30, 10);
///
/// let writes = App::new().layer(WRITES).post("/events", || async { "queued" });
/// let app = App::new().nest("/v1", writes);
/// # app.build().unwrap();
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    binding: &'static str,
    limit: u32,
    period: u32,
    client: Client,
    per_route: bool,
}

#[derive(Clone, Copy, Debug)]
enum Client {
    Ip,
    #[cfg(feature = "auth")]
    Caller,
    By(fn(&Request) -> Option<String>),
}

impl RateLimit {
    /// `limit` requests per `period_seconds` (10 or 60, what the binding
    /// counts over) per client, counted by the binding named `binding`. Give
    /// the binding's `simple` the same numbers: the binding enforces them, and
    /// these go into the headers.
    pub const fn new(binding: &'static str, limit: u32, period_seconds: u32) -> Self {
        assert!(
            limit > 0,
            "a rate limit of 0 lets nothing through: leave the route out instead"
        );
        assert!(
            period_seconds == 10 || period_seconds == 60,
            "the Workers Rate Limiting binding counts over 10 or 60 seconds"
        );
        Self {
            binding,
            limit,
            period: period_seconds,
            client: Client::Ip,
            per_route: false,
        }
    }

    /// Counts per API key or token subject, from the
    /// [`ApiKeys`](crate::auth::ApiKeys) or [`Jwt`](crate::auth::Jwt) layer,
    /// which must sit outside this one. The root key is not counted: whoever
    /// holds it can make any number of keys, so limiting it protects nothing,
    /// and it stays usable when a key's traffic runs wild. A request without a
    /// caller, or a token without a `sub`, is counted by IP.
    #[cfg(feature = "auth")]
    pub const fn by_caller(mut self) -> Self {
        self.client = Client::Caller;
        self
    }

    /// Counts per the string `client` returns for the request; `None` counts it
    /// by IP.
    pub const fn by(mut self, client: fn(&Request) -> Option<String>) -> Self {
        self.client = Client::By(client);
        self
    }

    /// Gives each route pattern its own count, instead of one for every route
    /// the layer wraps.
    pub const fn per_route(mut self) -> Self {
        self.per_route = true;
        self
    }

    /// The IETF `RateLimit-Policy` value: `"<binding>";q=<limit>;w=<period>`.
    fn policy(&self) -> String {
        format!("\"{}\";q={};w={}", self.binding, self.limit, self.period)
    }

    /// Who the request counts against; `None` when it is not counted at all.
    fn client_of(&self, req: &Request) -> Option<String> {
        let ip = || {
            let ip = req.header("cf-connecting-ip");
            format!("ip:{}", ip.as_deref().unwrap_or("unknown"))
        };
        let client = match self.client {
            Client::Ip => ip(),
            #[cfg(feature = "auth")]
            Client::Caller => {
                use crate::auth::Principal;
                match req
                    .extensions()
                    .get::<crate::auth::Caller>()
                    .map(|c| &c.principal)
                {
                    Some(Principal::Root) => return None,
                    Some(Principal::Key(id)) => format!("key:{id}"),
                    Some(Principal::Token {
                        subject: Some(subject),
                        ..
                    }) => format!("sub:{subject}"),
                    Some(Principal::Token { subject: None, .. }) | None => ip(),
                }
            }
            Client::By(client) => client(req).map_or_else(ip, |c| format!("by:{c}")),
        };
        Some(match (self.per_route, req.route()) {
            (true, Some(route)) => format!("{}|{client}", route.pattern),
            _ => client,
        })
    }

    async fn check(self, req: Request, next: Next) -> Response {
        match self.admits(&req).await {
            Ok(true) => {}
            Ok(false) => return self.refusal(),
            Err(err) => return err.into_response(),
        }
        let mut response = next.run(req).await;
        let _ = response
            .headers_mut()
            .insert("ratelimit-policy", self.policy());
        response
    }

    /// Counts `req` against its client's budget; whether it is within it. A
    /// request with no client to count is.
    pub(crate) async fn admits(&self, req: &Request) -> Result<bool, Error> {
        let Some(client) = self.client_of(req) else {
            return Ok(true);
        };
        let limiter = req.env()?.rate_limiter(self.binding).map_err(|e| {
            Error::internal(format!("no rate limiting binding {:?}: {e}", self.binding))
        })?;
        match limiter.limit(client).await {
            Ok(outcome) => Ok(outcome.success),
            Err(e) => Err(Error::internal(format!(
                "rate limiting {:?} failed: {e}",
                self.binding
            ))),
        }
    }

    /// The period, in seconds: how long a refused client should wait.
    #[cfg(feature = "auth")]
    pub(crate) fn period(&self) -> u32 {
        self.period
    }

    #[cold]
    #[inline(never)]
    fn refusal(&self) -> Response {
        let mut response = Error::new(
            ErrorKind::RateLimited,
            format!(
                "over the limit of {} requests per {} seconds; try again after `retry-after` seconds",
                self.limit, self.period
            ),
        )
        .with_retry_after(self.period)
        .into_response();
        let headers = response.headers_mut();
        let _ = headers.insert("ratelimit-policy", self.policy());
        // The binding says only yes or no, not when its window ends, so the
        // reset is the period: never sooner than the truth.
        let _ = headers.insert(
            "ratelimit",
            format!("\"{}\";r=0;t={}", self.binding, self.period),
        );
        response
    }
}

impl Middleware for RateLimit {
    fn call(&self, req: Request, next: Next) -> BoxFuture<Response> {
        Box::pin(self.check(req, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn request() -> Request {
        Request::new(Method::Post, "/v1/events").with_header("cf-connecting-ip", "203.0.113.9")
    }

    #[test]
    fn clients_are_told_apart_by_ip_or_a_function() {
        let limit = RateLimit::new("L", 5, 10);
        assert_eq!(
            limit.client_of(&request()).as_deref(),
            Some("ip:203.0.113.9")
        );
        assert_eq!(
            limit.client_of(&Request::new(Method::Get, "/")).as_deref(),
            Some("ip:unknown")
        );
        let by_tenant = limit.by(|req| req.header("x-tenant").map(|t| t.into_owned()));
        assert_eq!(
            by_tenant
                .client_of(&request().with_header("x-tenant", "acme"))
                .as_deref(),
            Some("by:acme")
        );
        // No tenant: counted by IP, never skipped.
        assert_eq!(
            by_tenant.client_of(&request()).as_deref(),
            Some("ip:203.0.113.9")
        );
    }

    #[test]
    fn the_policy_header_names_the_binding_limit_and_window() {
        assert_eq!(
            RateLimit::new("WRITE_LIMIT", 30, 10).policy(),
            "\"WRITE_LIMIT\";q=30;w=10"
        );
    }

    #[test]
    fn a_refusal_is_a_429_problem_with_the_headers() {
        let response = RateLimit::new("L", 5, 60).refusal();
        assert_eq!(response.status().as_u16(), 429);
        assert_eq!(response.headers().get("retry-after"), Some("60"));
        assert_eq!(response.headers().get("ratelimit"), Some("\"L\";r=0;t=60"));
        assert_eq!(
            response.headers().get("ratelimit-policy"),
            Some("\"L\";q=5;w=60")
        );
    }

    #[test]
    #[should_panic(expected = "a rate limit of 0")]
    fn a_zero_limit_is_refused() {
        let _ = RateLimit::new("L", 0, 10);
    }

    #[test]
    #[should_panic(expected = "10 or 60 seconds")]
    fn a_period_the_binding_cannot_count_is_refused() {
        let _ = RateLimit::new("L", 5, 30);
    }
}
