//! Finding the external tools a build needs, without ever downloading one.
//!
//! Each tool is looked up in order: its environment variable, the project's
//! `node_modules/.bin` (in the crate's directory or any directory above it),
//! edgeway's own toolchain (when this binary was built from a checkout), then
//! `PATH`. A miss is an error that names what to install.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

/// A tool the build or the test harness runs.
#[derive(Clone, Copy, Debug)]
pub struct Tool {
    /// The executable's name.
    pub name: &'static str,
    /// The environment variable that overrides the lookup.
    pub env: &'static str,
    /// What to do when it is missing.
    pub install: &'static str,
}

/// binaryen's optimiser, for release builds.
pub const WASM_OPT: Tool = Tool {
    name: "wasm-opt",
    env: "WASM_OPT_BIN",
    install: "install binaryen: `npm install --save-dev binaryen` in your project \
              (or `apt-get install binaryen`), or build with --no-opt",
};

impl Tool {
    /// The tool's path, found from `start` (the crate's directory).
    pub fn find(&self, start: &Path) -> Result<PathBuf> {
        if let Some(path) = std::env::var_os(self.env).filter(|p| !p.is_empty()) {
            let path = PathBuf::from(path);
            if is_executable(&path) {
                return Ok(path);
            }
            bail!(
                "{} is set to {}, which is not an executable file",
                self.env,
                path.display()
            );
        }
        // The project first, then edgeway's own toolchain when this binary was
        // built from a checkout (`make toolchain` installs it there).
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).parent();
        let in_project = start
            .ancestors()
            .chain(checkout)
            .map(|dir| dir.join("node_modules/.bin").join(self.name))
            .find(|path| is_executable(path));
        let on_path = || {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(self.name))
                    .find(|path| is_executable(path))
            })
        };
        match in_project.or_else(on_path) {
            Some(path) => Ok(path),
            None => bail!(
                "{} not found ({} unset, no node_modules/.bin/{} above {} or in edgeway's checkout, none on PATH): {}",
                self.name,
                self.env,
                self.name,
                start.display(),
                self.install
            ),
        }
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const FAKE: Tool = Tool {
        name: "edgeway-test-tool-that-does-not-exist",
        env: "EDGEWAY_TEST_TOOL_BIN",
        install: "install the test tool",
    };

    #[test]
    fn finds_a_tool_in_node_modules_above_the_crate() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("node_modules/.bin");
        std::fs::create_dir_all(&bin).unwrap();
        let tool = bin.join(FAKE.name);
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let crate_dir = dir.path().join("crates/worker");
        std::fs::create_dir_all(&crate_dir).unwrap();
        assert_eq!(FAKE.find(&crate_dir).unwrap(), tool);
    }

    #[test]
    fn a_missing_tool_says_what_to_install() {
        let dir = tempfile::tempdir().unwrap();
        let err = FAKE.find(dir.path()).unwrap_err().to_string();
        assert!(err.contains("install the test tool"), "{err}");
        assert!(err.contains("EDGEWAY_TEST_TOOL_BIN"), "{err}");
    }
}
