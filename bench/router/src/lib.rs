//! The GitHub API route set, shared by the router benchmark and its smoke test.

/// The 130 route patterns, in matchit syntax.
pub fn routes() -> Vec<&'static str> {
    include_str!("../../data/github-api-routes.txt")
        .lines()
        .filter(|line| line.starts_with('/'))
        .collect()
}

/// One concrete request path per route: `{pN}` becomes `pN`.
pub fn paths() -> Vec<String> {
    routes()
        .iter()
        .map(|route| route.replace(['{', '}'], ""))
        .collect()
}

/// Every route as a GET route of an edgeway app.
pub fn edgeway_service() -> edgeway::Service {
    routes()
        .into_iter()
        .fold(edgeway::App::new(), |app, route| {
            app.get(route, || async { "" })
        })
        .build()
        .expect("the GitHub routes do not conflict")
}

/// Every route in a raw matchit router.
pub fn matchit_router() -> matchit::Router<usize> {
    let mut router = matchit::Router::new();
    for (i, route) in routes().into_iter().enumerate() {
        router
            .insert(route, i)
            .expect("the GitHub routes do not conflict");
    }
    router
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_matches_its_own_route_in_both_routers() {
        let service = edgeway_service();
        let router = matchit_router();
        let routes = routes();
        assert_eq!(routes.len(), 130);
        for (i, path) in paths().iter().enumerate() {
            assert_eq!(*router.at(path).unwrap().value, i);
            let found = service.match_route(&edgeway::Method::Get, path).unwrap();
            assert_eq!(found.pattern, routes[i]);
            let raw: Vec<_> = router
                .at(path)
                .unwrap()
                .params
                .iter()
                .map(|(_, v)| v.to_owned())
                .collect();
            let ours: Vec<_> = found.params().iter().map(|(_, v)| v.to_owned()).collect();
            assert_eq!(raw, ours);
        }
    }
}
