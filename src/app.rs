//! [`App`], the builder, and [`Service`], what it compiles into once per isolate.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::error::{Error, ErrorKind};
use crate::handler::{into_endpoint, BoxFuture, Endpoint, Handler};
use crate::http::{Method, StatusCode};
use crate::middleware::{wrap, Middleware, Next, REQUEST_ID_HEADER};
use crate::observe::Level;
use crate::panic::{catch_panic_future, CatchPanic};
use crate::request::{Extensions, Request, DEFAULT_BODY_LIMIT};
use crate::response::{IntoResponse, Response};
use crate::router::{Lookup, RouteDef, RouteTable, TrailingSlash};

/// Declares routes, middleware and state; [`build`](App::build) compiles it.
///
/// ```
/// use edgeway::{App, Json, Path, StatusCode};
///
/// async fn show(Path(id): Path<u32>) -> String {
///     format!("user {id}")
/// }
///
/// let service = App::new()
///     .get("/", || async { "hello" })
///     .get("/users/{id}", show)
///     .tag("users")
///     .post("/echo", |Json(v): Json<serde_json::Value>| async move { (StatusCode::CREATED, Json(v)) })
///     .build()
///     .expect("routes do not conflict");
/// assert_eq!(service.routes().len(), 3);
/// ```
pub struct App {
    routes: Vec<RouteDef>,
    layers: Vec<Rc<dyn Middleware>>,
    state: Extensions,
    fallback: Option<Endpoint>,
    trailing_slash: TrailingSlash,
    body_limit: usize,
    errors: Vec<Error>,
}

impl Default for App {
    fn default() -> Self {
        Self::new()
    }
}

impl App {
    /// An app with no routes, strict trailing slashes and a 1 MiB body limit.
    pub fn new() -> Self {
        Self {
            routes: Vec::new(),
            layers: Vec::new(),
            state: Extensions::default(),
            fallback: None,
            trailing_slash: TrailingSlash::Strict,
            body_limit: DEFAULT_BODY_LIMIT,
            errors: Vec::new(),
        }
    }

    /// Adds a route for `method` and a matchit pattern (`/users/{id}`, `/files/{*path}`).
    pub fn route<H: Handler<T>, T>(mut self, method: Method, path: &str, handler: H) -> Self {
        self.routes.push(RouteDef {
            method,
            path: path.to_owned(),
            feature: None,
            endpoint: into_endpoint(handler),
        });
        self
    }

    /// Adds a `GET` route (which also answers `HEAD`).
    pub fn get<H: Handler<T>, T>(self, path: &str, handler: H) -> Self {
        self.route(Method::Get, path, handler)
    }

    /// Adds a `POST` route.
    pub fn post<H: Handler<T>, T>(self, path: &str, handler: H) -> Self {
        self.route(Method::Post, path, handler)
    }

    /// Adds a `PUT` route.
    pub fn put<H: Handler<T>, T>(self, path: &str, handler: H) -> Self {
        self.route(Method::Put, path, handler)
    }

    /// Adds a `PATCH` route.
    pub fn patch<H: Handler<T>, T>(self, path: &str, handler: H) -> Self {
        self.route(Method::Patch, path, handler)
    }

    /// Adds a `DELETE` route.
    pub fn delete<H: Handler<T>, T>(self, path: &str, handler: H) -> Self {
        self.route(Method::Delete, path, handler)
    }

    /// Tags the route added last with a feature name, reported in request logs and
    /// in [`Service::routes`].
    pub fn tag(mut self, feature: &str) -> Self {
        match self.routes.last_mut() {
            Some(route) => route.feature = Some(feature.into()),
            None => self.errors.push(Error::new(
                ErrorKind::InvalidRoute,
                format!("App::tag({feature:?}) was called before any route was added"),
            )),
        }
        self
    }

    /// Mounts every route of `group` under `prefix`, wrapped in `group`'s layers.
    /// `group`'s state is merged into this app's.
    pub fn nest(mut self, prefix: &str, group: App) -> Self {
        let prefix = prefix.trim_end_matches('/');
        if !prefix.starts_with('/') {
            self.errors.push(Error::new(
                ErrorKind::InvalidRoute,
                format!("nest prefix {prefix:?} must start with `/` and not be `/`"),
            ));
            return self;
        }
        if group.fallback.is_some() {
            self.errors.push(Error::new(
                ErrorKind::InvalidRoute,
                format!("the app nested at {prefix} has a fallback; only the root app's fallback is used"),
            ));
        }
        self.errors.extend(group.errors);
        let layers: Rc<[Rc<dyn Middleware>]> = group.layers.into();
        for route in group.routes {
            let path = if route.path == "/" {
                prefix.to_owned()
            } else {
                format!("{prefix}{}", route.path)
            };
            self.routes.push(RouteDef {
                path,
                endpoint: wrap(layers.clone(), route.endpoint),
                ..route
            });
        }
        self.state.merge(group.state);
        self
    }

    /// Adds a middleware layer. The first layer added is the outermost.
    pub fn layer(mut self, middleware: impl Middleware) -> Self {
        self.layers.push(Rc::new(middleware));
        self
    }

    /// Registers state for the [`State`](crate::State) extractor; one value per type.
    pub fn state<T: Clone + 'static>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// Answers requests no route matches (instead of a 404 problem).
    pub fn fallback<H: Handler<T>, T>(mut self, handler: H) -> Self {
        self.fallback = Some(into_endpoint(handler));
        self
    }

    /// Sets the trailing-slash policy; see [`TrailingSlash`].
    pub fn trailing_slash(mut self, policy: TrailingSlash) -> Self {
        self.trailing_slash = policy;
        self
    }

    /// The default body limit for body extractors, in bytes.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Compiles the route table. Conflicting or malformed routes are an error that
    /// names the routes involved; this never panics.
    pub fn build(self) -> Result<Service, Error> {
        if let Some(err) = self.errors.into_iter().next() {
            return Err(err);
        }
        // Behind app-wide middleware, each endpoint catches its own panics, so
        // the 500 still passes back out through it (request id, CORS, timing)
        // like any other response. Without it, `serve`'s own catch gives the same
        // 500 and saves a boxed future per request.
        let layered = !self.layers.is_empty();
        let catch_if_layered = |endpoint| {
            if layered {
                catch_panics(endpoint)
            } else {
                endpoint
            }
        };
        let routes = self
            .routes
            .into_iter()
            .map(|route| RouteDef {
                endpoint: catch_if_layered(route.endpoint),
                ..route
            })
            .collect();
        let table = RouteTable::build(routes, self.trailing_slash)?;
        let mut state = self.state;
        // What the `Routes` extractor lists, as shared pointers: the strings are
        // made only when a handler asks, not on every isolate's first request.
        state.insert(RouteIndex(
            table
                .entries()
                .iter()
                .map(|entry| (entry.method.clone(), entry.meta.clone()))
                .collect(),
        ));
        Ok(Service(Rc::new(Inner {
            table,
            layers: self.layers.into(),
            state: Rc::new(state),
            fallback: self.fallback.map(catch_if_layered),
            body_limit: self.body_limit,
        })))
    }
}

/// A compiled app. Cheap to clone; build it once per isolate and reuse it.
#[derive(Clone)]
pub struct Service(Rc<Inner>);

struct Inner {
    table: RouteTable,
    layers: Rc<[Rc<dyn Middleware>]>,
    state: Rc<Extensions>,
    fallback: Option<Endpoint>,
    body_limit: usize,
}

/// The route that matched a path, from [`Service::match_route`].
#[derive(Debug)]
pub struct RouteMatch<'a> {
    /// The pattern as registered.
    pub pattern: &'a str,
    names: &'a [Rc<str>],
    spans: crate::params::ParamSpans,
    path: &'a str,
}

impl RouteMatch<'_> {
    /// The captured parameters, in route order, borrowed from the path.
    pub fn params(&self) -> crate::Params<'_> {
        self.spans.view(self.names, self.path)
    }
}

/// One row of the route table, for introspection (e.g. `GET /v1/routes`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RouteInfo {
    /// The method.
    pub method: String,
    /// The pattern as registered.
    pub pattern: String,
    /// The feature tag, if any.
    pub feature: Option<String>,
}

/// The app's route table, as an extractor: a handler that takes `Routes` can
/// serve it (e.g. `GET /v1/routes`). Built once with the app.
///
/// ```
/// use edgeway::{App, Json, Routes, RouteInfo};
/// async fn routes(Routes(all): Routes) -> Json<Vec<RouteInfo>> {
///     Json(all.to_vec())
/// }
/// let app = App::new().get("/routes", routes).tag("meta");
/// # let service = app.build().unwrap();
/// # let res = edgeway::__private::block_on(
/// #     service.handle(edgeway::Request::new(edgeway::Method::Get, "/routes")));
/// # assert!(res.body_text().contains(r#""feature":"meta""#));
/// ```
#[derive(Clone, Debug)]
pub struct Routes(pub Rc<[RouteInfo]>);

impl crate::extract::FromRequestParts for Routes {
    fn from_request_parts(req: &mut Request) -> Result<Self, Error> {
        let index = req
            .state::<RouteIndex>()
            .ok_or_else(|| Error::internal("the route table is registered by App::build"))?;
        Ok(Routes(
            index
                .0
                .iter()
                .map(|(method, meta)| route_info(method, meta))
                .collect(),
        ))
    }
}

/// The routes `App::build` registers for the [`Routes`] extractor.
struct RouteIndex(Rc<[(Method, Rc<crate::request::RouteMeta>)]>);

fn route_info(method: &Method, meta: &crate::request::RouteMeta) -> RouteInfo {
    RouteInfo {
        method: method.to_string(),
        pattern: meta.pattern.to_string(),
        feature: meta.feature.as_deref().map(str::to_owned),
    }
}

impl Service {
    /// Every route in registration order.
    pub fn routes(&self) -> Vec<RouteInfo> {
        self.0
            .table
            .entries()
            .iter()
            .map(|entry| route_info(&entry.method, &entry.meta))
            .collect()
    }

    /// Which route serves `method path`, with its raw path parameters, without
    /// running anything. HEAD falls back to GET as in [`handle`](Self::handle).
    ///
    /// ```
    /// # use edgeway::{App, Method};
    /// let service = App::new().get("/users/{id}", || async { "" }).build().unwrap();
    /// let found = service.match_route(&Method::Get, "/users/7").unwrap();
    /// assert_eq!(found.pattern, "/users/{id}");
    /// assert_eq!(found.params().get("id").unwrap().unwrap(), "7");
    /// assert!(service.match_route(&Method::Post, "/users/7").is_none());
    /// ```
    pub fn match_route<'a>(&'a self, method: &Method, path: &'a str) -> Option<RouteMatch<'a>> {
        match self.0.table.lookup(method, path, None) {
            Lookup::Matched { entry, params } => Some(RouteMatch {
                pattern: &entry.meta.pattern,
                names: &entry.meta.param_names,
                spans: params,
                path,
            }),
            _ => None,
        }
    }

    /// Handles one request: route, run the layers and the endpoint, turn a panic into
    /// a 500, drop the body of a HEAD response, and log server errors with the request id.
    ///
    /// When nothing on the way awaits I/O, the returned future completes on its first
    /// poll; the wasm entry uses that to answer without a JS promise.
    pub fn handle(&self, req: Request) -> BoxFuture<Response> {
        Box::pin(self.serve(req))
    }

    /// [`handle`](Self::handle) without boxing the future: the wasm entry polls
    /// it once in place, one allocation fewer per request.
    pub(crate) fn serve(&self, mut req: Request) -> Served {
        let inner = &*self.0;
        req.state = inner.state.clone();
        req.body_limit = inner.body_limit;
        req.cold = crate::observe::take_cold_start();
        let is_head = *req.method() == Method::Head;
        let endpoint = match inner.table.lookup(req.method(), req.path(), req.query()) {
            Lookup::Matched { entry, params } => {
                req.params = params;
                req.route = Some(entry.meta.clone());
                entry.endpoint.clone()
            }
            unmatched => not_routed(unmatched, &req, inner.fallback.as_ref()),
        };
        // The outer catch is for panics in middleware (and in endpoints when there
        // is none); behind middleware, endpoints catch their own.
        Served {
            chain: catch_panic_future(Next::new(inner.layers.clone(), endpoint).run(req)),
            is_head,
        }
    }
}

/// The future of [`Service::serve`]: the chain of layers and endpoint, then a
/// panic turned into a 500, the body of a HEAD answer dropped and a server error
/// logged. `Unpin`, so that it can be polled once where it is and moved after.
pub(crate) struct Served {
    chain: CatchPanic<BoxFuture<Response>>,
    is_head: bool,
}

impl Future for Served {
    type Output = Response;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let mut response = match Pin::new(&mut self.chain).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(response)) => response,
            Poll::Ready(Err(panic)) => panic_response(panic),
        };
        if self.is_head {
            response.replace_body(crate::Body::empty());
        }
        if let Some(detail) = response.internal_error() {
            log_failure(&response, detail);
        }
        Poll::Ready(response)
    }
}

/// Logs a server error's detail with its request id. Out of line and cold: the
/// runtime compiles a function on its first call, so keeping this out of the
/// request path keeps it out of every isolate's first request.
#[cold]
#[inline(never)]
fn log_failure(response: &Response, detail: &str) {
    crate::observe::Line::new()
        .field("msg", "request failed")
        .field("status", &response.status().as_u16())
        .field("detail", detail)
        .field("request_id", &response.headers().get(REQUEST_ID_HEADER))
        .write(Level::Error);
}

/// The endpoint for a request no route matched: 405 with `Allow`, OPTIONS, a
/// trailing-slash redirect, the fallback, or 404. Out of line and cold, like
/// `log_failure`, so a matched request's first call never compiles it.
#[cold]
#[inline(never)]
fn not_routed(lookup: Lookup<'_>, req: &Request, fallback: Option<&Endpoint>) -> Endpoint {
    match lookup {
        Lookup::Matched { entry, .. } => entry.endpoint.clone(),
        Lookup::MethodNotAllowed { allow } => {
            let detail = format!(
                "{} is not allowed on {}; allowed: {allow}",
                req.method(),
                req.path()
            );
            respond_with(move || {
                let mut response =
                    Error::new(ErrorKind::MethodNotAllowed, detail.clone()).into_response();
                let _ = response.headers_mut().insert("allow", allow.clone());
                response
            })
        }
        Lookup::Options { allow } => respond_with(move || {
            Response::builder(StatusCode::NO_CONTENT)
                .header("allow", allow.clone())
                .body(crate::Body::empty())
        }),
        Lookup::Redirect { location } => {
            respond_with(move || Response::permanent_redirect(&location))
        }
        Lookup::NotFound => match fallback {
            Some(fallback) => fallback.clone(),
            None => {
                let detail = format!("no route matches {}", req.path());
                respond_with(move || {
                    Error::new(ErrorKind::NotFound, detail.clone()).into_response()
                })
            }
        },
    }
}

fn catch_panics(endpoint: Endpoint) -> Endpoint {
    Rc::new(move |req| Box::pin(panic_to_500(endpoint(req))))
}

async fn panic_to_500(future: BoxFuture<Response>) -> Response {
    catch_panic_future(future)
        .await
        .unwrap_or_else(panic_response)
}

/// The 500 problem for a caught panic. Cold and out of line, like `log_failure`.
#[cold]
#[inline(never)]
fn panic_response(message: String) -> Response {
    Error::new(ErrorKind::Panic, message).into_response()
}

fn respond_with(make: impl Fn() -> Response + 'static) -> Endpoint {
    Rc::new(move |_req| {
        let response = make();
        Box::pin(async move { response })
    })
}
