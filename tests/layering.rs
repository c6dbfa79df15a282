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
    "middleware/access_log",
    "middleware/body_limit",
    "middleware/cache",
    "middleware/cors",
    "middleware/request_id",
    "middleware/timing",
    "params",
    "request",
    "response",
    "router",
];

/// Leaves the core may use: the clock, randomness and settings, logging, the
/// JSON object writer, panic capture, the synchronous poll, and the JS glue
/// (`js/`, wasm only), which knows no edgeway type.
const LEAF: &[&str] = &[
    "platform",
    "observe",
    "json_text",
    "panic",
    "fast_path",
    "js",
];

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
            // `crate::{a::X, b}`: each item of the group is an import.
            let items = match rest.strip_prefix('{') {
                Some(group) => top_level_items(group),
                None => vec![rest],
            };
            for item in items {
                let item = item.trim_start();
                let end = item
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(item.len());
                let path = base
                    .iter()
                    .copied()
                    .chain(item[..end].split("::").filter(|s| !s.is_empty()))
                    .collect::<Vec<_>>()
                    .join("::");
                if let Some(module) = resolve(&path).filter(|m| m != name) {
                    found.push(module);
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// The comma-separated items of a `{…}` group (the text after its `{`), nested
/// groups kept whole.
fn top_level_items(group: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items
}

/// Middleware that are bindings: the strangler fig (fetch) and the rate limit
/// (the Rate Limiting binding, and API keys).
const BINDING_MIDDLEWARE: &[&str] = &["middleware/strangler", "middleware/rate_limit"];

/// Whether `name` (a module path) is in the HTTP core: a core module or a file
/// under one, but the middleware that are bindings.
fn is_core(name: &str) -> bool {
    let top = name.split('/').next().unwrap_or(name);
    CORE.contains(&name) || (CORE.contains(&top) && !BINDING_MIDDLEWARE.contains(&name))
}

#[test]
fn the_core_imports_only_the_core_and_leaf_services() {
    let all = modules();
    let mut broken = Vec::new();
    for (name, code) in all.iter().filter(|(name, _)| is_core(name)) {
        for import in imports(name, code, &all) {
            let top = import.split('/').next().unwrap_or(&import);
            let allowed = is_core(&import) || LEAF.contains(&top);
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
fn the_js_glue_is_a_leaf_and_nothing_imports_the_entry() {
    let all = modules();
    let mut broken = Vec::new();
    for (name, code) in &all {
        for import in imports(name, code, &all) {
            let glue = name == "js" || name.starts_with("js/");
            if glue && !import.starts_with("js") {
                broken.push(format!("src/{name}.rs (JS glue) imports crate::{import}"));
            }
            // `lib` holds the `entry!` macro, which calls the entry.
            if import == "runtime" && name != "lib" {
                broken.push(format!("src/{name}.rs imports the entry, crate::runtime"));
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
    assert!(imports("request", &all["request"], &all).contains(&"js".to_owned()));
    let grouped = "use crate::{js::respond, queue::{Consumer, Message}, Error};";
    assert_eq!(imports("x", grouped, &all), ["js", "queue"]);
    assert!(is_core("extract/json") && !is_core("middleware/strangler"));
}
