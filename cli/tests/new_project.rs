//! `edgeway new` as a stranger uses it: a crate written outside this repository,
//! built by `edgeway build` and tested by its own e2e test in local workerd.

use std::path::{Path, PathBuf};
use std::process::Command;

/// This repository: the new crate depends on it with `--path`.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ is inside the repository")
        .to_owned()
}

#[test]
fn the_template_pins_the_tools_this_repository_tests_with() {
    let read = |path: PathBuf| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let ours = read(repo().join("package.json"));
    let template = read(Path::new(env!("CARGO_MANIFEST_DIR")).join("template/package.json.tmpl"));
    for tool in ["wrangler", "binaryen", "node"] {
        assert_eq!(
            template["devDependencies"][tool], ours["devDependencies"][tool],
            "{tool}"
        );
    }
}

/// `PATH` with the `edgeway` binary under test first and without anything of
/// this repository's (its `node_modules/.bin`), so the new crate finds wrangler
/// and wasm-opt the way a stranger's would: through edgeway's discovery.
fn stranger_path(repo: &Path) -> String {
    let edgeway_dir = Path::new(env!("CARGO_BIN_EXE_edgeway"))
        .parent()
        .expect("the binary has a directory")
        .to_owned();
    let inherited = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(edgeway_dir)
        .chain(std::env::split_paths(&inherited).filter(|dir| !dir.starts_with(repo)));
    std::env::join_paths(dirs)
        .expect("PATH entries join")
        .into_string()
        .expect("PATH is UTF-8")
}

#[test]
fn a_new_crate_builds_runs_in_workerd_and_passes_its_own_test() {
    let repo = repo();
    let outside = tempfile::Builder::new()
        .prefix("edgeway-new-")
        .tempdir()
        .unwrap();
    assert!(!outside.path().starts_with(&repo));
    let dir = outside.path().join("links");

    let created = Command::new(env!("CARGO_BIN_EXE_edgeway"))
        .args(["new", "links", "--dir"])
        .arg(&dir)
        .arg("--path")
        .arg(&repo)
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    // `npm install` of the template's package.json, without the network: the
    // tools it pins are the ones this repository installs (checked below), so the
    // crate gets its own `node_modules` pointing at them, as a stranger's would.
    std::os::unix::fs::symlink(repo.join("node_modules"), dir.join("node_modules")).unwrap();

    // What it writes is formatted as rustfmt would.
    let formatted = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["fmt", "--check"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        formatted.status.success(),
        "{}",
        String::from_utf8_lossy(&formatted.stdout)
    );

    // Its own `cargo test`: the harness runs the `[build] command` (`edgeway
    // build`), starts `wrangler dev` and runs the template's e2e test. The
    // workspace's target directory is shared so dependencies compile once.
    let tested = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["test", "--quiet"])
        .current_dir(&dir)
        .env("PATH", stranger_path(&repo))
        .env("CARGO_TARGET_DIR", repo.join("target"))
        .env_remove("WASM_OPT_BIN")
        .env_remove("WRANGLER_BIN")
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&tested.stdout);
    let stderr = String::from_utf8_lossy(&tested.stderr);
    assert!(
        tested.status.success(),
        "the new crate's tests failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("2 passed"), "{stdout}");
    // The worker was built by `edgeway build`, as wrangler would build it.
    for file in ["build/index.js", "build/index_bg.js", "build/index.wasm"] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
}
