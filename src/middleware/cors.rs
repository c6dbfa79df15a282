//! CORS: preflights answered here, allowed origins echoed on responses.

use crate::error::{Error, ErrorKind};
use crate::handler::BoxFuture;
use crate::http::{Method, StatusCode};
use crate::middleware::{Middleware, Next};
use crate::request::Request;
use crate::response::{IntoResponse, Response};

/// Cross-origin resource sharing. Denies every origin until told otherwise.
///
/// Preflights (`OPTIONS` with `access-control-request-method`) are answered here:
/// `204` with the allowed methods, headers and max-age when the origin, method and
/// headers are allowed, `403` problem+json when they are not. Other requests from
/// an allowed origin get `access-control-allow-origin`; requests from other origins
/// are served without it, so the browser withholds the response.
///
/// ```
/// use edgeway::{App, Method, middleware::Cors};
///
/// let cors = Cors::new()
///     .allow_origin("https://app.example.com")
///     .allow_methods([Method::Get, Method::Post])
///     .allow_headers(["content-type"])
///     .allow_credentials(true)
///     .max_age(600);
/// let app = App::new().layer(cors).get("/", || async { "hi" });
/// # app.build().unwrap();
/// ```
#[derive(Clone, Debug, Default)]
pub struct Cors {
    origins: Origins,
    methods: Vec<Method>,
    headers: Vec<String>,
    expose: Vec<String>,
    credentials: bool,
    max_age: Option<u32>,
}

#[derive(Clone, Debug, Default)]
enum Origins {
    #[default]
    None,
    Any,
    List(Vec<String>),
}

impl Cors {
    /// A policy that allows no origin, and GET/HEAD/POST once an origin is allowed.
    pub fn new() -> Self {
        Self {
            methods: vec![Method::Get, Method::Head, Method::Post],
            ..Self::default()
        }
    }

    /// Allows `origin` (scheme, host and port, e.g. `https://app.example.com`).
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        let origin = origin.into().trim_end_matches('/').to_ascii_lowercase();
        match &mut self.origins {
            Origins::List(list) => list.push(origin),
            _ => self.origins = Origins::List(vec![origin]),
        }
        self
    }

    /// Allows every origin. With credentials the origin is reflected rather than `*`,
    /// as the Fetch standard requires.
    pub fn allow_any_origin(mut self) -> Self {
        self.origins = Origins::Any;
        self
    }

    /// The methods allowed cross-origin (replaces the default GET/HEAD/POST).
    pub fn allow_methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.methods = methods.into_iter().collect();
        self
    }

    /// The request headers allowed cross-origin (case-insensitive).
    pub fn allow_headers<S: Into<String>>(mut self, headers: impl IntoIterator<Item = S>) -> Self {
        self.headers = headers
            .into_iter()
            .map(|h| h.into().to_ascii_lowercase())
            .collect();
        self
    }

    /// Response headers that scripts on the allowed origins may read.
    pub fn expose_headers<S: Into<String>>(mut self, headers: impl IntoIterator<Item = S>) -> Self {
        self.expose = headers.into_iter().map(Into::into).collect();
        self
    }

    /// Allows cookies and HTTP auth on cross-origin requests.
    pub fn allow_credentials(mut self, allow: bool) -> Self {
        self.credentials = allow;
        self
    }

    /// How long browsers may cache a preflight answer, in seconds.
    pub fn max_age(mut self, seconds: u32) -> Self {
        self.max_age = Some(seconds);
        self
    }

    fn allows_origin(&self, origin: &str) -> bool {
        match &self.origins {
            Origins::None => false,
            Origins::Any => true,
            Origins::List(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)),
        }
    }

    /// The `access-control-allow-origin` value for an allowed origin.
    fn allow_origin_value(&self, origin: &str) -> String {
        match (&self.origins, self.credentials) {
            (Origins::Any, false) => "*".into(),
            _ => origin.into(),
        }
    }

    fn preflight(&self, req: &Request, origin: &str) -> Response {
        let requested_method = req
            .header("access-control-request-method")
            .map(|m| Method::parse(m.trim()));
        let method_ok = requested_method
            .as_ref()
            .is_some_and(|m| self.methods.contains(m));
        let requested_headers: Vec<String> = req
            .header("access-control-request-headers")
            .map(|h| {
                h.split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let headers_ok = requested_headers.iter().all(|h| self.headers.contains(h));
        if !self.allows_origin(origin) || !method_ok || !headers_ok {
            let why = if !self.allows_origin(origin) {
                format!("origin `{origin}` is not allowed")
            } else if !method_ok {
                format!(
                    "method `{}` is not allowed cross-origin",
                    requested_method.map(|m| m.to_string()).unwrap_or_default()
                )
            } else {
                format!(
                    "request headers {:?} are not all allowed cross-origin",
                    requested_headers
                )
            };
            let mut response = Error::new(ErrorKind::CorsRejected, why).into_response();
            let _ = response.headers_mut().append("vary", "origin");
            return response;
        }
        let methods: Vec<&str> = self.methods.iter().map(Method::as_str).collect();
        let mut builder = Response::builder(StatusCode::NO_CONTENT)
            .header(
                "access-control-allow-origin",
                self.allow_origin_value(origin),
            )
            .header("access-control-allow-methods", methods.join(", "))
            .header("vary", "origin");
        if !self.headers.is_empty() {
            builder = builder.header("access-control-allow-headers", self.headers.join(", "));
        }
        if self.credentials {
            builder = builder.header("access-control-allow-credentials", "true");
        }
        if let Some(max_age) = self.max_age {
            builder = builder.header("access-control-max-age", max_age.to_string());
        }
        builder.body(crate::Body::empty())
    }
}

impl Middleware for Cors {
    fn call(&self, req: Request, next: Next) -> BoxFuture<Response> {
        let Some(origin) = req.header("origin").map(|o| o.into_owned()) else {
            return next.run(req);
        };
        if *req.method() == Method::Options && req.header("access-control-request-method").is_some()
        {
            let response = self.preflight(&req, &origin);
            return Box::pin(async move { response });
        }
        let allowed = self
            .allows_origin(&origin)
            .then(|| self.allow_origin_value(&origin));
        let credentials = self.credentials;
        let expose = self.expose.join(", ");
        Box::pin(async move {
            let mut response = next.run(req).await;
            let headers = response.headers_mut();
            let _ = headers.append("vary", "origin");
            if let Some(value) = allowed {
                let _ = headers.insert("access-control-allow-origin", value);
                if credentials {
                    let _ = headers.insert("access-control-allow-credentials", "true");
                }
                if !expose.is_empty() {
                    let _ = headers.insert("access-control-expose-headers", expose);
                }
            }
            response
        })
    }
}
