//! `edgeway new`: writes a ready worker crate from the template in `cli/template/`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Each template file and where it goes in the new crate.
const FILES: [(&str, &str); 7] = [
    ("Cargo.toml", include_str!("../template/Cargo.toml.tmpl")),
    (
        "wrangler.toml",
        include_str!("../template/wrangler.toml.tmpl"),
    ),
    (
        "package.json",
        include_str!("../template/package.json.tmpl"),
    ),
    (".gitignore", include_str!("../template/gitignore.tmpl")),
    ("README.md", include_str!("../template/README.md.tmpl")),
    ("src/lib.rs", include_str!("../template/src/lib.rs")),
    (
        "tests/worker.rs",
        include_str!("../template/tests/worker.rs"),
    ),
];

/// What `edgeway new` was asked for.
#[derive(Debug, Default)]
pub struct NewOptions {
    /// The crate and worker name.
    pub name: String,
    /// Where to create it (default: `./<name>`).
    pub dir: Option<PathBuf>,
    /// A local edgeway checkout to depend on, instead of the crates.io release.
    pub edgeway_path: Option<PathBuf>,
}

/// Creates the crate and returns its directory.
pub fn new(options: &NewOptions) -> Result<PathBuf> {
    check_name(&options.name)?;
    let dir = options
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&options.name));
    if dir.exists() && fs::read_dir(&dir)?.next().is_some() {
        bail!("{} already exists and is not empty", dir.display());
    }
    let (edgeway, edgeway_testing) = match &options.edgeway_path {
        Some(path) => {
            let path = fs::canonicalize(path)
                .with_context(|| format!("edgeway checkout {}", path.display()))?;
            if !path.join("Cargo.toml").is_file() {
                bail!(
                    "{} has no Cargo.toml: not an edgeway checkout",
                    path.display()
                );
            }
            let path = toml_string(&path.display().to_string());
            (
                format!("{{ path = {path} }}"),
                format!("{{ path = {path}, features = [\"testing\"] }}"),
            )
        }
        None => {
            let version = env!("CARGO_PKG_VERSION");
            (
                format!("\"{version}\""),
                format!("{{ version = \"{version}\", features = [\"testing\"] }}"),
            )
        }
    };
    for (path, template) in FILES {
        let text = template
            .replace("{{name}}", &options.name)
            .replace("{{edgeway_testing}}", &edgeway_testing)
            .replace("{{edgeway}}", &edgeway);
        let target = dir.join(path);
        fs::create_dir_all(target.parent().unwrap_or(&dir))?;
        fs::write(&target, text).with_context(|| format!("write {}", target.display()))?;
    }
    if let Some(checkout) = &options.edgeway_path {
        // Build the dependency versions the checkout is tested with; cargo drops
        // the entries this crate does not use.
        let lock = checkout.join("Cargo.lock");
        if lock.is_file() {
            fs::copy(&lock, dir.join("Cargo.lock"))?;
        }
    }
    Ok(dir)
}

/// A name that is a valid crate, Worker, KV id and queue name: lowercase ASCII
/// letters, digits and `-`, starting with a letter, at most 50 characters (queue
/// names add `-clicks` and must stay under 64).
fn check_name(name: &str) -> Result<()> {
    let valid = name.len() <= 50
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.ends_with('-');
    if !valid {
        bail!(
            "`{name}` cannot name a worker: use lowercase letters, digits and `-`, \
             starting with a letter, at most 50 characters"
        );
    }
    Ok(())
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// Prints what to do next.
pub fn next_steps(dir: &Path) {
    println!(
        "created {dir}\n\nnext:\n  cd {dir}\n  npm install\n  EDGEWAY_PROFILE=dev npx wrangler dev\n  cargo test",
        dir = dir.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_suit_cargo_wrangler_and_queues() {
        for good in ["links", "my-worker-2", "a"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "My", "2fast", "a_b", "a-", "a b", &"x".repeat(51)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn writes_every_file_with_the_name_and_dependency_filled_in() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("links");
        new(&NewOptions {
            name: "links".into(),
            dir: Some(target.clone()),
            edgeway_path: None,
        })
        .unwrap();
        for (path, _) in FILES {
            let text = fs::read_to_string(target.join(path)).unwrap();
            assert!(!text.contains("{{"), "{path} still has a placeholder");
        }
        let manifest = fs::read_to_string(target.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"links\""), "{manifest}");
        let version = env!("CARGO_PKG_VERSION");
        assert!(
            manifest.contains(&format!("edgeway = \"{version}\"")),
            "{manifest}"
        );
        let wrangler = fs::read_to_string(target.join("wrangler.toml")).unwrap();
        assert!(
            wrangler.contains("command = \"edgeway build\""),
            "{wrangler}"
        );
        // A second run never overwrites.
        let again = new(&NewOptions {
            name: "links".into(),
            dir: Some(target),
            edgeway_path: None,
        });
        assert!(again.unwrap_err().to_string().contains("not empty"));
    }
}
