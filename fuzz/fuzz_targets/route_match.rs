//! Route matching and parameter decoding over the 130 GitHub API routes: any
//! method and path must match, miss or answer 404/405 without panicking, and
//! every captured parameter must decode or fail cleanly.
#![no_main]

use std::sync::OnceLock;

use edgeway::{Method, Request, Service};
use libfuzzer_sys::fuzz_target;

thread_local! {
    static SERVICE: Service = edgeway_router_bench::edgeway_service();
}
static METHODS: OnceLock<Vec<Method>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Ok(path) = std::str::from_utf8(rest) else { return };
    let methods = METHODS.get_or_init(|| {
        ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "BREW"]
            .into_iter()
            .map(Method::parse)
            .collect()
    });
    let method = &methods[selector as usize % methods.len()];
    SERVICE.with(|service| {
        if let Some(found) = service.match_route(method, path) {
            for (name, _raw) in found.params().iter() {
                // Percent-decoding may fail (a 400 to the client), never panic.
                let _ = found.params().get(name);
            }
        }
        // The whole dispatch too: routing, 404/405/OPTIONS, the handler's answer.
        let url = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
        let response = edgeway::__private::block_on(service.handle(Request::new(method.clone(), url)));
        assert!(response.status().as_u16() >= 200);
    });
});
