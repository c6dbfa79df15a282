//! Finding wrangler the way `edgeway build` finds its tools: the environment
//! (`WRANGLER_BIN`), then `node_modules/.bin` in the worker's directory or any
//! directory above it, then edgeway's own checkout (when it is a path or git
//! dependency with its toolchain installed), then `PATH`. A miss fails at once
//! with what to install; nothing is ever downloaded.

use std::path::{Path, PathBuf};

use super::{fail, HarnessError};

/// The environment variable that names the wrangler executable.
const WRANGLER_ENV: &str = "WRANGLER_BIN";

/// The wrangler executable for the worker in `start` (its config's directory).
pub(super) fn wrangler(start: &Path) -> Result<PathBuf, HarnessError> {
    find(
        start,
        "wrangler",
        WRANGLER_ENV,
        Path::new(env!("CARGO_MANIFEST_DIR")),
    )
    .map_err(|searched| {
        fail(format!(
            "wrangler not found ({searched}): install it in your project with \
                 `npm install --save-dev wrangler` (Node 20 or later), or set {WRANGLER_ENV}"
        ))
    })
}

/// `name` from `env`, `node_modules/.bin` at or above `start`, the same under
/// `edgeway_dir`, or `PATH`; on a miss, where it looked.
fn find(start: &Path, name: &str, env: &str, edgeway_dir: &Path) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(format!(
                "{env} is {}, which is not an executable file",
                path.display()
            ))
        };
    }
    let in_project = start
        .ancestors()
        .chain([edgeway_dir])
        .map(|dir| dir.join("node_modules/.bin").join(name))
        .find(|path| is_executable(path));
    let on_path = || {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|path| is_executable(path))
        })
    };
    in_project.or_else(on_path).ok_or_else(|| {
        format!(
            "{env} unset, no node_modules/.bin/{name} at or above {} or in {}, none on PATH",
            start.display(),
            edgeway_dir.display()
        )
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `PATH` with the directory holding `wrangler` first, so the build command and
/// wrangler itself find the Node, esbuild and wasm-opt installed beside it.
pub(super) fn tool_path(wrangler: &Path) -> String {
    let bin = wrangler.parent().unwrap_or(Path::new("."));
    match std::env::var("PATH") {
        Ok(path) => format!("{}:{path}", bin.display()),
        Err(_) => bin.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const NAME: &str = "edgeway-harness-test-tool-that-does-not-exist";
    const ENV: &str = "EDGEWAY_HARNESS_TEST_TOOL_BIN";

    fn install(dir: &Path) -> PathBuf {
        let bin = dir.join("node_modules/.bin");
        std::fs::create_dir_all(&bin).unwrap();
        let tool = bin.join(NAME);
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        tool
    }

    #[test]
    fn the_project_comes_before_edgeways_checkout() {
        let project = tempfile::tempdir().unwrap();
        let edgeway = tempfile::tempdir().unwrap();
        let theirs = install(project.path());
        let ours = install(edgeway.path());
        let worker = project.path().join("workers/api");
        std::fs::create_dir_all(&worker).unwrap();
        assert_eq!(find(&worker, NAME, ENV, edgeway.path()).unwrap(), theirs);
        let elsewhere = tempfile::tempdir().unwrap();
        assert_eq!(
            find(elsewhere.path(), NAME, ENV, edgeway.path()).unwrap(),
            ours
        );
    }

    #[test]
    fn a_miss_says_where_it_looked() {
        let project = tempfile::tempdir().unwrap();
        let err = find(project.path(), NAME, ENV, project.path()).unwrap_err();
        assert!(err.contains(ENV), "{err}");
        assert!(err.contains("none on PATH"), "{err}");
    }
}
