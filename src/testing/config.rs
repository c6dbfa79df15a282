//! The wrangler config the harness runs: the worker's own, minus `[build]`, with
//! absolute paths and the test's variables.

use std::fs;
use std::path::Path;

use super::{fail, HarnessError};

pub(super) fn read_config(config: &Path) -> Result<serde_json::Value, HarnessError> {
    let text =
        fs::read_to_string(config).map_err(|e| fail(format!("{}: {e}", config.display())))?;
    toml::from_str(&text).map_err(|e| fail(format!("{}: {e}", config.display())))
}

/// The config wrangler runs: the original minus `[build]` (the harness already
/// built), with absolute paths and the test's variable overrides.
pub(super) fn derive_config(
    config: &Path,
    vars: &[(String, String)],
) -> Result<String, HarnessError> {
    let dir = config.parent().unwrap_or(Path::new("."));
    let mut value = read_config(config)?;
    let obj = value
        .as_object_mut()
        .ok_or_else(|| fail("wrangler config is not a table"))?;
    obj.remove("build");
    if let Some(main) = obj.get("main").and_then(|m| m.as_str()) {
        let main = dir.join(main).display().to_string();
        obj.insert("main".into(), main.into());
    }
    if let Some(assets) = obj.get_mut("assets").and_then(|a| a.as_object_mut()) {
        if let Some(directory) = assets.get("directory").and_then(|d| d.as_str()) {
            let directory = dir.join(directory).display().to_string();
            assets.insert("directory".into(), directory.into());
        }
    }
    if !vars.is_empty() {
        let table = obj
            .entry("vars")
            .or_insert_with(|| serde_json::json!({}))
            .as_object_mut()
            .ok_or_else(|| fail("`vars` is not a table"))?;
        for (name, value) in vars {
            table.insert(name.clone(), value.clone().into());
        }
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_config_drops_build_and_absolutizes_paths() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("wrangler.toml");
        fs::write(
            &config,
            "name = \"x\"\nmain = \"build/index.js\"\n[build]\ncommand = \"make\"\n[assets]\ndirectory = \"www\"\n[vars]\nA = \"1\"\n",
        )
        .unwrap();
        let derived: serde_json::Value =
            serde_json::from_str(&derive_config(&config, &[("B".into(), "2".into())]).unwrap())
                .unwrap();
        assert!(derived.get("build").is_none());
        assert_eq!(
            derived["main"],
            dir.path().join("build/index.js").display().to_string()
        );
        assert_eq!(
            derived["assets"]["directory"],
            dir.path().join("www").display().to_string()
        );
        assert_eq!(derived["vars"]["A"], "1");
        assert_eq!(derived["vars"]["B"], "2");
    }
}
