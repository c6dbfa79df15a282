use crate::middleware::Next;
use crate::request::Request;
use crate::response::Response;

/// The strangler fig: the edge serves the routes it has, a legacy origin serves
/// the rest, and endpoints move over one at a time.
///
/// When the Worker var `ORIGIN_URL` is set, a request that matches no route (or
/// no route for its method) is proxied there: method, headers and body go as they
/// came, both bodies stream, hop-by-hop headers are dropped and `x-forwarded-*`
/// added (see [`proxy`](crate::proxy)). The var `ORIGIN_ROUTES` switches migrated
/// routes back to the origin by pattern, e.g. `GET /v1/kv/{*key}`: a rollback per
/// endpoint that changes configuration, not code. An unreachable origin is a 502
/// problem.
///
/// Add it as an app-wide layer: layers run after routing, so it sees which route
/// matched.
pub async fn strangler_fig(req: Request, next: Next) -> Response {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::response::IntoResponse;
        let Ok(env) = req.env() else {
            return next.run(req).await;
        };
        let var = |name: &str| {
            env.var(name)
                .map(|v| v.to_string())
                .ok()
                .filter(|v| !v.trim().is_empty())
        };
        let Some(origin) = var("ORIGIN_URL") else {
            return next.run(req).await;
        };
        let to_origin = match req.route() {
            None => true,
            Some(meta) => var("ORIGIN_ROUTES")
                .is_some_and(|spec| crate::proxy::rolled_back(&spec, req.method(), &meta.pattern)),
        };
        if !to_origin {
            return next.run(req).await;
        }
        match crate::proxy::forward(req, &origin).await {
            Ok(response) => response,
            Err(err) => err.into_response(),
        }
    }
    // Natively there is no origin to call: the app serves everything.
    #[cfg(not(target_arch = "wasm32"))]
    next.run(req).await
}
