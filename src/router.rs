//! The route table: one `matchit` tree per method, compiled once, looked up per request.
//!
//! Lookup is pure: it turns `(method, path)` into a [`Lookup`] without touching JS,
//! so 404, 405 + `Allow`, HEAD, OPTIONS and the trailing-slash policy are all
//! unit-tested natively and on wasm32.

use std::rc::Rc;

use crate::error::{Error, ErrorKind};
use crate::handler::Endpoint;
use crate::http::Method;
use crate::params::ParamSpans;
use crate::request::RouteMeta;

/// What to do with a path that only differs from a route by a trailing slash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TrailingSlash {
    /// `/users/` and `/users` are different paths; the one not registered is a 404.
    #[default]
    Strict,
    /// A request for the form that is not registered gets a `308` to the form that is,
    /// keeping the query string. 308 keeps the method and body.
    Redirect,
}

/// A compiled route.
pub(crate) struct RouteEntry {
    pub meta: Rc<RouteMeta>,
    pub method: Method,
    plan: ParamPlan,
    pub endpoint: Endpoint,
}

/// How to find a route's parameter values in a path it matched.
///
/// Reading them back through matchit's `Params` validates every key and value as
/// UTF-8 again, which costs more than the match itself. When each parameter is a
/// whole path segment (`/users/{id}`, `/files/{*rest}`), which is almost always,
/// the segment index says where the value is, and one scan for `/` finds it.
enum ParamPlan {
    /// Segment indexes; the flag marks a trailing catch-all.
    Segments(Box<[(u16, bool)]>),
    /// Parameters inside a segment (`/x-{id}.json`) or escaped braces: ask matchit.
    Matchit,
}

impl ParamPlan {
    fn for_pattern(pattern: &str) -> Self {
        // A byte scan rather than `str::contains`, whose substring searcher would
        // be compiled on every isolate's first request just for this.
        if pattern
            .as_bytes()
            .windows(2)
            .any(|pair| pair == b"{{" || pair == b"}}")
        {
            return Self::Matchit;
        }
        let mut segments = Vec::new();
        for (index, segment) in pattern.split('/').enumerate() {
            if !segment.contains('{') {
                continue;
            }
            let whole = segment.starts_with('{')
                && segment.ends_with('}')
                && segment.matches('{').count() == 1;
            let Ok(index) = u16::try_from(index) else {
                return Self::Matchit;
            };
            if !whole {
                return Self::Matchit;
            }
            segments.push((index, segment.starts_with("{*")));
        }
        Self::Segments(segments.into())
    }
}

/// Spans of the path segments listed in `plan`, in order. Segment 0 is the empty
/// one before the leading `/`.
fn segment_spans(path: &str, plan: &[(u16, bool)], spans: &mut ParamSpans) {
    let bytes = path.as_bytes();
    let next_slash = |from: usize| {
        bytes[from..]
            .iter()
            .position(|&b| b == b'/')
            .map(|i| from + i)
    };
    let mut index = 0u16;
    let mut start = 0usize;
    for &(segment, catch_all) in plan {
        while index < segment {
            match next_slash(start) {
                Some(slash) => start = slash + 1,
                None => return,
            }
            index += 1;
        }
        let end = if catch_all {
            bytes.len()
        } else {
            next_slash(start).unwrap_or(bytes.len())
        };
        spans.push(start, end);
    }
}

/// A route as declared, before compilation.
pub(crate) struct RouteDef {
    pub method: Method,
    pub path: String,
    pub feature: Option<Rc<str>>,
    pub endpoint: Endpoint,
}

/// The outcome of a lookup.
pub(crate) enum Lookup<'a> {
    /// A route matched; `params` are spans into the looked-up path.
    Matched {
        entry: &'a RouteEntry,
        params: ParamSpans,
    },
    /// The path exists for other methods; `allow` lists them.
    MethodNotAllowed { allow: String },
    /// An `OPTIONS` request for a path with no explicit OPTIONS route.
    Options { allow: String },
    /// The trailing-slash policy redirects to `location`.
    Redirect { location: String },
    /// No route has this path.
    NotFound,
}

// The standard methods get fixed slots so that lookup is an index, not a search.
// A `static`, not a `const`: a const array of `Method` would be built and dropped
// at every use.
static SLOTS: [Method; 7] = [
    Method::Get,
    Method::Head,
    Method::Post,
    Method::Put,
    Method::Patch,
    Method::Delete,
    Method::Options,
];

fn slot(method: &Method) -> Option<usize> {
    match method {
        Method::Get => Some(0),
        Method::Head => Some(1),
        Method::Post => Some(2),
        Method::Put => Some(3),
        Method::Patch => Some(4),
        Method::Delete => Some(5),
        Method::Options => Some(6),
        Method::Other(_) => None,
    }
}

/// Every route, compiled into per-method matchit trees.
pub(crate) struct RouteTable {
    standard: [Option<matchit::Router<usize>>; 7],
    other: Vec<(Method, matchit::Router<usize>)>,
    entries: Vec<RouteEntry>,
    trailing_slash: TrailingSlash,
}

impl RouteTable {
    /// Compiles `defs`. A conflict or malformed pattern is an error naming both routes.
    pub fn build(defs: Vec<RouteDef>, trailing_slash: TrailingSlash) -> Result<Self, Error> {
        let mut table = Self {
            standard: Default::default(),
            other: Vec::new(),
            entries: Vec::with_capacity(defs.len()),
            trailing_slash,
        };
        for def in defs {
            let id = table.entries.len();
            if !def.path.starts_with('/') {
                return Err(route_error(None, &def.method, &def.path));
            }
            let tree = table.tree_mut(&def.method);
            tree.insert(def.path.as_str(), id)
                .map_err(|err| route_error(Some(err), &def.method, &def.path))?;
            table.entries.push(RouteEntry {
                plan: ParamPlan::for_pattern(&def.path),
                meta: Rc::new(RouteMeta {
                    param_names: param_names(&def.path).into(),
                    pattern: def.path.into(),
                    feature: def.feature,
                }),
                method: def.method,
                endpoint: def.endpoint,
            });
        }
        Ok(table)
    }

    fn tree_mut(&mut self, method: &Method) -> &mut matchit::Router<usize> {
        if let Some(i) = slot(method) {
            return self.standard[i].get_or_insert_with(matchit::Router::new);
        }
        let i = match self.other.iter().position(|(m, _)| m == method) {
            Some(i) => i,
            None => {
                self.other.push((method.clone(), matchit::Router::new()));
                self.other.len() - 1
            }
        };
        &mut self.other[i].1
    }

    fn tree(&self, method: &Method) -> Option<&matchit::Router<usize>> {
        match slot(method) {
            Some(i) => self.standard[i].as_ref(),
            None => self
                .other
                .iter()
                .find(|(m, _)| m == method)
                .map(|(_, tree)| tree),
        }
    }

    /// Every compiled route, in registration order.
    pub fn entries(&self) -> &[RouteEntry] {
        &self.entries
    }

    /// Resolves a request line.
    pub fn lookup(&self, method: &Method, path: &str, query: Option<&str>) -> Lookup<'_> {
        if let Some(found) = self.find(method, path) {
            return found;
        }
        // HEAD is served by the GET route when there is no explicit HEAD route.
        if *method == Method::Head {
            if let Some(found) = self.find(&Method::Get, path) {
                return found;
            }
        }
        let allow = self.allowed(path);
        if !allow.is_empty() {
            return if *method == Method::Options {
                Lookup::Options { allow }
            } else {
                Lookup::MethodNotAllowed { allow }
            };
        }
        if self.trailing_slash == TrailingSlash::Redirect {
            let toggled = match path.strip_suffix('/') {
                Some(trimmed) if !trimmed.is_empty() => trimmed.to_owned(),
                Some(_) => return Lookup::NotFound,
                None => format!("{path}/"),
            };
            if !self.allowed(&toggled).is_empty() {
                let location = match query {
                    Some(query) => format!("{toggled}?{query}"),
                    None => toggled,
                };
                return Lookup::Redirect { location };
            }
        }
        Lookup::NotFound
    }

    fn find(&self, method: &Method, path: &str) -> Option<Lookup<'_>> {
        let matched = self.tree(method)?.at(path).ok()?;
        let entry = &self.entries[*matched.value];
        let mut params = ParamSpans::default();
        match &entry.plan {
            ParamPlan::Segments(plan) => segment_spans(path, plan, &mut params),
            ParamPlan::Matchit => {
                let base = path.as_ptr() as usize;
                for (_, value) in matched.params.iter() {
                    // matchit hands back slices of `path` itself; record where they are.
                    let start = (value.as_ptr() as usize).wrapping_sub(base);
                    debug_assert!(
                        start + value.len() <= path.len(),
                        "matchit param outside the path"
                    );
                    params.push(start, start + value.len());
                }
            }
        }
        Some(Lookup::Matched { entry, params })
    }

    /// The `Allow` value for `path`: every method with a route for it, in a stable order,
    /// plus HEAD where GET exists and OPTIONS (always answered). Empty when none.
    pub fn allowed(&self, path: &str) -> String {
        let matches = |tree: &Option<matchit::Router<usize>>| {
            tree.as_ref().is_some_and(|t| t.at(path).is_ok())
        };
        let mut allow: Vec<&str> = Vec::new();
        for (method, tree) in SLOTS.iter().zip(&self.standard) {
            if matches(tree) {
                allow.push(method.as_str());
            }
        }
        for (method, tree) in &self.other {
            if tree.at(path).is_ok() {
                allow.push(method.as_str());
            }
        }
        if allow.is_empty() {
            return String::new();
        }
        if allow.contains(&"GET") && !allow.contains(&"HEAD") {
            allow.insert(1, "HEAD");
        }
        if !allow.contains(&"OPTIONS") {
            allow.push("OPTIONS");
        }
        allow.join(", ")
    }
}

/// The parameter names of a matchit pattern, in order (`{id}` and `{*rest}`; `{{`/`}}` are escapes).
/// The build error for a route: no leading `/` (`err` is `None`), a conflict, or
/// a pattern matchit refuses. Cold and out of line: the runtime compiles each
/// function on its first call, and a valid table never calls this.
#[cold]
#[inline(never)]
fn route_error(err: Option<matchit::InsertError>, method: &Method, path: &str) -> Error {
    match err {
        None => Error::new(
            ErrorKind::InvalidRoute,
            format!("route `{method} {path}` must start with `/`"),
        ),
        Some(matchit::InsertError::Conflict { with }) => Error::new(
            ErrorKind::RouteConflict,
            format!("route `{method} {path}` conflicts with `{method} {with}`"),
        ),
        Some(other) => Error::new(
            ErrorKind::InvalidRoute,
            format!("route `{method} {path}` is invalid: {other}"),
        ),
    }
}

fn param_names(pattern: &str) -> Vec<Rc<str>> {
    let mut names = Vec::new();
    let bytes = pattern.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' if bytes.get(i + 1) == Some(&b'{') => i += 2,
            b'}' if bytes.get(i + 1) == Some(&b'}') => i += 2,
            b'{' => {
                let end = pattern[i..].find('}').map_or(bytes.len(), |j| i + j);
                names.push(pattern[i + 1..end].trim_start_matches('*').into());
                i = end + 1;
            }
            _ => i += 1,
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::IntoResponse;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn endpoint() -> Endpoint {
        Rc::new(|_req| Box::pin(async { "ok".into_response() }))
    }

    fn def(method: Method, path: &str) -> RouteDef {
        RouteDef {
            method,
            path: path.into(),
            feature: None,
            endpoint: endpoint(),
        }
    }

    fn table(routes: &[(Method, &str)], trailing_slash: TrailingSlash) -> RouteTable {
        let defs = routes.iter().map(|(m, p)| def(m.clone(), p)).collect();
        RouteTable::build(defs, trailing_slash).unwrap()
    }

    fn pattern(lookup: Lookup<'_>) -> String {
        match lookup {
            Lookup::Matched { entry, .. } => entry.meta.pattern.to_string(),
            _ => panic!("expected a match"),
        }
    }

    #[test]
    fn matches_per_method_and_captures_params_in_order() {
        let t = table(
            &[
                (Method::Get, "/users/{id}/posts/{post}"),
                (Method::Post, "/users/{id}"),
                (Method::Get, "/files/{*path}"),
            ],
            TrailingSlash::Strict,
        );
        match t.lookup(&Method::Get, "/users/7/posts/x%20y", None) {
            Lookup::Matched { entry, params } => {
                assert_eq!(&*entry.meta.pattern, "/users/{id}/posts/{post}");
                let params = params.view(&entry.meta.param_names, "/users/7/posts/x%20y");
                let got: Vec<_> = params.iter().collect();
                assert_eq!(got, [("id", "7"), ("post", "x%20y")]);
                assert_eq!(params.get("post").unwrap().unwrap(), "x y");
            }
            _ => panic!("expected a match"),
        }
        match t.lookup(&Method::Get, "/files/a/b/c.txt", None) {
            Lookup::Matched { params, entry } => {
                let params = params.view(&entry.meta.param_names, "/files/a/b/c.txt");
                assert_eq!(params.get("path").unwrap().unwrap(), "a/b/c.txt")
            }
            _ => panic!("expected a match"),
        }
    }

    #[test]
    fn unknown_path_is_not_found() {
        let t = table(&[(Method::Get, "/a")], TrailingSlash::Strict);
        assert!(matches!(
            t.lookup(&Method::Get, "/b", None),
            Lookup::NotFound
        ));
        assert!(matches!(
            t.lookup(&Method::Post, "/b", None),
            Lookup::NotFound
        ));
    }

    #[test]
    fn wrong_method_is_405_with_allow() {
        let t = table(
            &[
                (Method::Get, "/items"),
                (Method::Post, "/items"),
                (Method::parse("PURGE"), "/items"),
            ],
            TrailingSlash::Strict,
        );
        match t.lookup(&Method::Delete, "/items", None) {
            Lookup::MethodNotAllowed { allow } => {
                assert_eq!(allow, "GET, HEAD, POST, PURGE, OPTIONS")
            }
            _ => panic!("expected 405"),
        }
    }

    #[test]
    fn head_falls_back_to_get_and_options_is_automatic() {
        let t = table(&[(Method::Get, "/a")], TrailingSlash::Strict);
        assert_eq!(pattern(t.lookup(&Method::Head, "/a", None)), "/a");
        match t.lookup(&Method::Options, "/a", None) {
            Lookup::Options { allow } => assert_eq!(allow, "GET, HEAD, OPTIONS"),
            _ => panic!("expected automatic OPTIONS"),
        }
        assert!(matches!(
            t.lookup(&Method::Options, "/nope", None),
            Lookup::NotFound
        ));
    }

    #[test]
    fn explicit_head_and_options_routes_win() {
        let t = table(
            &[
                (Method::Get, "/a"),
                (Method::Head, "/a"),
                (Method::Options, "/a"),
            ],
            TrailingSlash::Strict,
        );
        assert!(
            matches!(t.lookup(&Method::Head, "/a", None), Lookup::Matched { entry, .. } if entry.method == Method::Head)
        );
        assert!(
            matches!(t.lookup(&Method::Options, "/a", None), Lookup::Matched { entry, .. } if entry.method == Method::Options)
        );
    }

    #[test]
    fn conflicts_are_build_errors_naming_both_routes() {
        let defs = vec![
            def(Method::Get, "/users/{id}"),
            def(Method::Get, "/users/{name}"),
        ];
        let err = RouteTable::build(defs, TrailingSlash::Strict)
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::RouteConflict);
        assert!(
            err.detail().contains("GET /users/{name}"),
            "{}",
            err.detail()
        );
        assert!(err.detail().contains("GET /users/{id}"), "{}", err.detail());

        let dup = vec![def(Method::Post, "/x"), def(Method::Post, "/x")];
        assert_eq!(
            RouteTable::build(dup, TrailingSlash::Strict)
                .err()
                .unwrap()
                .kind(),
            ErrorKind::RouteConflict
        );
        // The same path under different methods is not a conflict.
        let ok = vec![def(Method::Get, "/x"), def(Method::Post, "/x")];
        assert!(RouteTable::build(ok, TrailingSlash::Strict).is_ok());
    }

    #[test]
    fn malformed_patterns_are_build_errors() {
        for bad in ["/a/{*rest}/b", "/{a}{b}", "/{", "no-slash"] {
            let err = RouteTable::build(vec![def(Method::Get, bad)], TrailingSlash::Strict)
                .err()
                .unwrap_or_else(|| panic!("{bad} should be rejected"));
            assert_eq!(err.kind(), ErrorKind::InvalidRoute, "{bad}");
        }
    }

    #[test]
    fn trailing_slash_policies() {
        let routes = [(Method::Get, "/a"), (Method::Get, "/b/")];
        let strict = table(&routes, TrailingSlash::Strict);
        assert!(matches!(
            strict.lookup(&Method::Get, "/a/", None),
            Lookup::NotFound
        ));
        let redirect = table(&routes, TrailingSlash::Redirect);
        match redirect.lookup(&Method::Get, "/a/", Some("x=1")) {
            Lookup::Redirect { location } => assert_eq!(location, "/a?x=1"),
            _ => panic!("expected redirect"),
        }
        match redirect.lookup(&Method::Post, "/b", None) {
            Lookup::Redirect { location } => assert_eq!(location, "/b/"),
            _ => panic!("expected redirect"),
        }
        assert!(matches!(
            redirect.lookup(&Method::Get, "/c/", None),
            Lookup::NotFound
        ));
    }

    #[test]
    fn segment_plans_agree_with_matchit() {
        let cases: &[(&str, &[&str])] = &[
            ("/a/{x}", &["/a/1", "/a/%20"]),
            ("/a/{x}/b/{y}", &["/a/1/b/2", "/a/xx/b/"]),
            ("/{x}/{y}/{z}", &["/1/2/3"]),
            (
                "/files/{*rest}",
                &["/files/a", "/files/a/b/c.txt", "/files/a//b"],
            ),
            ("/u/{id}/{*rest}", &["/u/7/x/y"]),
            ("/x-{id}.json", &["/x-12.json"]),
            ("/{{lit}}/{a}", &["/{lit}/q"]),
            ("/static", &["/static"]),
        ];
        for (pattern, paths) in cases {
            let mut router = matchit::Router::new();
            router.insert(*pattern, ()).unwrap();
            let table = table(&[(Method::Get, pattern)], TrailingSlash::Strict);
            for path in *paths {
                let Ok(expected) = router.at(path) else {
                    continue;
                };
                let expected: Vec<&str> = expected.params.iter().map(|(_, v)| v).collect();
                let Lookup::Matched { params, .. } = table.lookup(&Method::Get, path, None) else {
                    panic!("{pattern} should match {path}");
                };
                let got: Vec<&str> = params.view(&[], path).spans().collect();
                assert_eq!(got, expected, "{pattern} on {path}");
            }
        }
        assert!(matches!(
            ParamPlan::for_pattern("/x-{id}.json"),
            ParamPlan::Matchit
        ));
        assert!(matches!(
            ParamPlan::for_pattern("/a/{b}"),
            ParamPlan::Segments(_)
        ));
    }

    #[test]
    fn param_names_skip_escapes() {
        let names: Vec<String> = param_names("/{{lit}}/{a}/x-{b}/{*rest}")
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, ["a", "b", "rest"]);
    }
}
