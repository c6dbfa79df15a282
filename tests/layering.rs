//! The layering in docs/ARCHITECTURE.md, checked from the source: which module
//! may import which. Fails, naming the file and the import, when a change breaks it.

use std::collections::BTreeMap;
use std::path::Path;

/// The HTTP core: no JS, no bindings; tested natively and on wasm32.
const CORE: &[&str] = &[
    "app",
    "body",
    "error",
    "extract",
    "handler",
    "http",
    "middleware",
    "middleware/body_limit",
    "middleware/cors",
    "middleware/request_id",
    "middleware/timing",
    "params",
    "request",
    "response",
    "router",
];

/// Leaf services the core may use: the clock, randomness and settings, logging,
/// panic capture, the synchronous poll.
const LEAF: &[&str] = &["platform", "observe", "panic", "fast_path"];

/// Modules allowed to use the JS glue (`js/`): the entry and the bindings that
/// hand bodies and requests to JS (`lib` holds the `entry!` macro).
const GLUE_USERS: &[&str] = &["lib", "runtime", "env", "proxy"];

/// Every module's source (tests cut off, comments removed), by path under `src/`
/// without `.rs` (`queue/consumer`, `queue` for `queue/mod.rs`).
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).unwrap().with_extension("");
                let mut name = rel.to_string_lossy().into_owned();
                if let Some(parent) = name.strip_suffix("/mod") {
                    name = parent.to_owned();
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
                let code: String = code
                    .lines()
                    .map(|line| line.split("//").next().unwrap())
                    .collect::<Vec<_>>()
                    .join("\n");
                out.insert(name, code);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

/// The modules `code` (in module `name`) imports through `crate::` or `super::`.
fn imports(name: &str, code: &str, all: &BTreeMap<String, String>) -> Vec<String> {
    let resolve = |path: &str| {
        let parts: Vec<&str> = path.split("::").collect();
        (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("/"))
            .find(|candidate| all.contains_key(candidate))
    };
    let parent: Vec<&str> = {
        let mut parts: Vec<&str> = name.split('/').collect();
        parts.pop();
        parts
    };
    let mut found = Vec::new();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent)] {
        for (at, _) in code.match_indices(prefix) {
            let rest = &code[at + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            let path = base
                .iter()
                .copied()
                .chain(rest[..end].split("::").filter(|s| !s.is_empty()))
                .collect::<Vec<_>>()
                .join("::");
            if let Some(module) = resolve(&path).filter(|m| m != name) {
                found.push(module);
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[test]
fn the_core_imports_only_the_core_and_leaf_services() {
    let all = modules();
    let mut broken = Vec::new();
    for name in CORE {
        let code = &all[*name];
        for import in imports(name, code, &all) {
            let top = import.split('/').next().unwrap();
            let allowed = CORE.contains(&import.as_str())
                || CORE.contains(&top) && import != "middleware/strangler"
                || LEAF.contains(&import.as_str());
            if !allowed {
                broken.push(format!("src/{name}.rs imports crate::{import}"));
            }
        }
        for foreign in ["wasm_bindgen", "web_sys", "js_sys", "worker::"] {
            if code.contains(foreign) {
                broken.push(format!("src/{name}.rs uses {foreign}"));
            }
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn only_the_entry_and_the_bindings_use_the_js_glue() {
    let all = modules();
    let mut broken = Vec::new();
    for (name, code) in &all {
        if name == "js" || name.starts_with("js/") || GLUE_USERS.contains(&name.as_str()) {
            continue;
        }
        for import in imports(name, code, &all) {
            if import == "js" || import.starts_with("js/") || import == "runtime" {
                broken.push(format!("src/{name}.rs imports crate::{import}"));
            }
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn queues_do_not_depend_on_http_routing() {
    let all = modules();
    let mut broken = Vec::new();
    for (name, code) in all.iter().filter(|(n, _)| n.starts_with("queue")) {
        for import in imports(name, code, &all) {
            if ["app", "router", "handler", "extract", "middleware"]
                .contains(&import.split('/').next().unwrap())
            {
                broken.push(format!("src/{name}.rs imports crate::{import}"));
            }
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn the_checker_sees_imports() {
    // Guards the checks above against passing because they see nothing.
    let all = modules();
    assert!(imports("app", &all["app"], &all).contains(&"router".to_owned()));
    assert!(imports("runtime", &all["runtime"], &all).contains(&"js".to_owned()));
    assert!(imports("js/request", &all["js/request"], &all).contains(&"request".to_owned()));
}
