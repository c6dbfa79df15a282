//! Building the worker once per source change, shared by every test process.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use super::config::read_config;
use super::{fail, HarnessError};

/// The directory holding `Cargo.lock` above `config`.
pub(super) fn workspace_root(config: &Path) -> Result<PathBuf, HarnessError> {
    config
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .map(Path::to_owned)
        .ok_or_else(|| fail(format!("no Cargo.lock above {}", config.display())))
}

/// Runs the config's `[build] command` unless the sources are unchanged since the
/// last successful build. A file lock serializes builds across test processes.
pub(super) fn ensure_built(root: &Path, config: &Path, path: &str) -> Result<(), HarnessError> {
    let value = read_config(config)?;
    let Some(command) = value["build"]["command"].as_str() else {
        return Ok(());
    };
    let stamp_dir = root.join("target/edgeway-harness");
    fs::create_dir_all(&stamp_dir).map_err(|e| fail(format!("{}: {e}", stamp_dir.display())))?;
    let name = config
        .strip_prefix(root)
        .unwrap_or(config)
        .display()
        .to_string()
        .replace('/', "_");
    let lock = fs::File::create(stamp_dir.join(format!("{name}.lock")))
        .map_err(|e| fail(format!("lock file: {e}")))?;
    use std::os::fd::AsRawFd;
    // Held until `lock` drops at the end of this function.
    unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };

    let main = config
        .parent()
        .unwrap_or(root)
        .join(value["main"].as_str().unwrap_or("build/index.js"));
    let fingerprint = format!("{command}\n{}", newest_source(root, config));
    let stamp = stamp_dir.join(format!("{name}.stamp"));
    if main.is_file() && fs::read_to_string(&stamp).ok().as_deref() == Some(fingerprint.as_str()) {
        return Ok(());
    }
    eprintln!("edgeway harness: building {} ({command})", config.display());
    let output = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(config.parent().unwrap_or(root))
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fail(format!("run `{command}`: {e}")))?;
    if !output.status.success() {
        return Err(fail(format!(
            "`{command}` failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    fs::write(&stamp, fingerprint).map_err(|e| fail(format!("write stamp: {e}")))?;
    Ok(())
}

/// The newest modification time among what a worker build reads: the library,
/// the examples and test workers, the build command (`cli/`) and the worker's
/// own crate (not the test files themselves, so editing a test never rebuilds a
/// worker).
fn newest_source(root: &Path, config: &Path) -> String {
    fn walk(dir: &Path, newest: &mut SystemTime) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if !matches!(
                    &*name,
                    "target" | "build" | "node_modules" | ".git" | ".wrangler" | ".venv"
                ) {
                    walk(&path, newest);
                }
            } else if name.ends_with(".rs")
                || name.ends_with(".js")
                || name.ends_with(".toml")
                || name == "Cargo.lock"
            {
                if let Ok(modified) = entry.metadata().and_then(|m| m.modified()) {
                    *newest = (*newest).max(modified);
                }
            }
        }
    }
    let mut newest = SystemTime::UNIX_EPOCH;
    walk(&root.join("src"), &mut newest);
    walk(&root.join("examples"), &mut newest);
    walk(&root.join("tests/workers"), &mut newest);
    // The build command itself: `edgeway build` and the shim it writes.
    walk(&root.join("cli"), &mut newest);
    // Webhook signing and the job messages.
    walk(&root.join("protocol"), &mut newest);
    // edgeway itself, when the worker depends on a checkout outside its workspace.
    let edgeway = Path::new(env!("CARGO_MANIFEST_DIR"));
    if edgeway != root {
        walk(&edgeway.join("src"), &mut newest);
        walk(&edgeway.join("cli"), &mut newest);
        walk(&edgeway.join("protocol"), &mut newest);
    }
    // A worker crate elsewhere (the root config builds examples/gateway, covered above).
    if let Some(dir) = config.parent().filter(|dir| *dir != root) {
        walk(dir, &mut newest);
    }
    for file in ["Cargo.toml", "Cargo.lock"] {
        if let Ok(modified) = fs::metadata(root.join(file)).and_then(|m| m.modified()) {
            newest = newest.max(modified);
        }
    }
    format!(
        "{:?}",
        newest
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
    )
}
