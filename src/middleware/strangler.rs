//! The strangler fig as a middleware: what the app does not route goes to the
//! legacy origin (feature `bindings`).

use crate::middleware::Next;
use crate::request::Request;
use crate::response::Response;

/// The strangler fig: the edge serves the routes it has, a legacy origin serves
/// the rest, and endpoints move over one at a time.
///
/// When the Worker var `ORIGIN_URL` is set, a request that matches no route (or
/// no route for its method) is proxied there: method, headers and body go as they
/// came, both bodies stream, hop-by-hop headers are dropped and `x-forwarded-*`
/// added, and edge credentials dropped: edgeway API keys (`ewk_…`) and, with
/// the `auth` feature, the root key. The var `ORIGIN_ROUTES` switches migrated
/// routes back to the origin by
/// pattern, e.g. `GET /v1/kv/{*key}`: a rollback per
/// endpoint that changes configuration, not code. An unreachable origin is a 502
/// problem.
///
/// Add it as an app-wide layer: layers run after routing, so it sees which route
/// matched.
pub async fn strangler_fig(req: Request, next: Next) -> Response {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::response::IntoResponse;
        // Read once per isolate: a Worker's settings do not change under a running
        // isolate, and this layer sits in front of every request.
        thread_local! {
            static SETTINGS: std::cell::OnceCell<Option<OriginSettings>> =
                const { std::cell::OnceCell::new() };
        }
        let settings = SETTINGS.with(|cell| {
            cell.get_or_init(|| {
                let env = req.env().ok()?;
                Some(OriginSettings {
                    url: crate::platform::setting(&env, "ORIGIN_URL")?.into(),
                    rolled_back: crate::platform::setting(&env, "ORIGIN_ROUTES").map(Into::into),
                    #[cfg(feature = "auth")]
                    root_key: crate::platform::setting(&env, crate::auth::ROOT_SECRET)
                        .map(|root| crate::auth::key::hash(&root)),
                })
            })
            .clone()
        });
        let Some(settings) = settings else {
            return next.run(req).await;
        };
        let (origin, rolled_back) = (settings.url.clone(), settings.rolled_back.clone());
        let to_origin = match req.route() {
            None => true,
            Some(meta) => rolled_back
                .as_deref()
                .is_some_and(|spec| crate::proxy::rolled_back(spec, req.method(), &meta.pattern)),
        };
        if !to_origin {
            return next.run(req).await;
        }
        // Boxed, so the forwarding state machine is a function of its own: the
        // runtime compiles each function on its first call, and an isolate that
        // never proxies then never compiles it (BENCHMARKS.md, "Size budget").
        let forwarding: crate::handler::BoxFuture<Response> = Box::pin(async move {
            // The root API key is the edge's; `ewk_` keys are withheld by `proxy`.
            let withheld = |token: &str| {
                #[cfg(feature = "auth")]
                if let Some(root) = &settings.root_key {
                    return crate::auth::key::verify(token, root);
                }
                let _ = token;
                false
            };
            match crate::proxy::forward(req, &origin, &withheld).await {
                Ok(response) => response,
                Err(err) => err.into_response(),
            }
        });
        forwarding.await
    }
    // Natively there is no origin to call: the app serves everything.
    #[cfg(not(target_arch = "wasm32"))]
    next.run(req).await
}

/// `ORIGIN_URL` and `ORIGIN_ROUTES`, as read once per isolate.
#[cfg(target_arch = "wasm32")]
#[derive(Clone)]
struct OriginSettings {
    url: std::rc::Rc<str>,
    rolled_back: Option<std::rc::Rc<str>>,
    /// The SHA-256 of the root API key, which never goes to the origin.
    #[cfg(feature = "auth")]
    root_key: Option<[u8; 32]>,
}
