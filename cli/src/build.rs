//! `edgeway build`: cargo → wasm-bindgen → wasm-opt → entry shim, then a size report.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use wasm_bindgen_cli_support::Bindgen;

use crate::tools;

/// Which cargo profile, and with it which post-processing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Size-optimised: LTO, one codegen unit, `opt-level = "z"`, wasm-opt `-Oz`,
    /// names stripped. What `wrangler deploy` ships.
    Release,
    /// The edit loop: incremental, no LTO, no wasm-opt, names kept for stack traces.
    Dev,
}

/// What a panic does to the isolate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Panic {
    /// std is rebuilt with unwinding, so edgeway catches a handler's panic and
    /// answers 500 while the isolate keeps serving. Needs nightly with rust-src.
    Unwind,
    /// A panic traps the instance. Smaller, on stable Rust.
    Abort,
}

/// What a release build optimises the worker crate's own code for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Goal {
    /// `opt-level = "z"` everywhere (and, with panic=unwind, std rebuilt with
    /// its `optimize_for_size` variants): the smallest module and the least
    /// code for the first request to compile. Right for almost every worker.
    Size,
    /// `opt-level = 3` for the worker crate, where its handlers and the serde and
    /// extractor code generic over its types are instantiated; edgeway, std and
    /// the other dependencies stay at `"z"`, with std's fast variants (its
    /// `optimize_for_size` ones cost 7.5% CPU on a 16 KB JSON body). For
    /// CPU-bound workers (large JSON bodies, heavy validation), at some cost in
    /// size and cold start (BENCHMARKS.md, "(e)"). wasm-opt still runs `-Oz`:
    /// `-O3` made it no faster.
    Speed,
}

/// The options of one build.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// Release or dev.
    pub profile: Profile,
    /// Unwind or abort.
    pub panic: Panic,
    /// Whether release builds run wasm-opt.
    pub optimize: bool,
    /// What a release build optimises the worker crate for; `None` takes the
    /// crate's own choice (`[package.metadata.edgeway] optimize-for`), else size.
    pub goal: Option<Goal>,
    /// Whether a release build keeps the wasm name section (function names), for
    /// profiles, compilation traces and stack traces that name Rust functions.
    /// The names are about a fifth of the module, so shipped builds drop them.
    pub keep_names: bool,
    /// Output directory, relative to the crate.
    pub out_dir: PathBuf,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            profile: Profile::Release,
            panic: Panic::Unwind,
            optimize: true,
            goal: None,
            keep_names: false,
            out_dir: PathBuf::from("build"),
        }
    }
}

const TARGET: &str = "wasm32-unknown-unknown";
const SHIM: &str = include_str!("shim.js");

/// The cargo profiles edgeway builds with, defined on the command line so a
/// worker crate needs no `[profile]` section of its own (and a workspace's
/// native release profile is left alone).
fn profile_config(profile: Profile) -> (&'static str, &'static [&'static str]) {
    match profile {
        Profile::Release => (
            "edgeway-release",
            &[
                "profile.edgeway-release.inherits=\"release\"",
                "profile.edgeway-release.opt-level=\"z\"",
                "profile.edgeway-release.lto=true",
                "profile.edgeway-release.codegen-units=1",
                "profile.edgeway-release.debug=false",
                // Not `true`, whatever the workspace's release profile says: that
                // would drop the name section `--keep-names` keeps. The shipped
                // build drops it later, in wasm-bindgen and wasm-opt.
                "profile.edgeway-release.strip=\"debuginfo\"",
                "profile.edgeway-release.incremental=false",
            ],
        ),
        Profile::Dev => (
            "edgeway-dev",
            &[
                "profile.edgeway-dev.inherits=\"dev\"",
                // Unoptimised async state machines are large enough to make the
                // glue step slow; opt-level 1 costs little compile time.
                "profile.edgeway-dev.opt-level=1",
                "profile.edgeway-dev.debug=false",
                "profile.edgeway-dev.incremental=true",
            ],
        ),
    }
}

/// What the build optimises for: the command line's choice, else the crate's,
/// else size.
fn goal(command_line: Option<Goal>, crate_choice: Option<Goal>) -> Goal {
    command_line.or(crate_choice).unwrap_or(Goal::Size)
}

/// The cargo profile of a build and its `--config` settings: the profile's own,
/// then, for a release built for speed, `opt-level = 3` for the worker crate
/// alone. The rest stays at `"z"`: at 3 as well (serde_json, core, alloc,
/// dlmalloc) they made workload (e) no faster, only larger (BENCHMARKS.md).
fn cargo_settings(options: &BuildOptions, package: &str) -> (&'static str, Vec<String>) {
    let (profile, config) = profile_config(options.profile);
    let mut settings: Vec<String> = config.iter().map(|s| s.to_string()).collect();
    if options.profile == Profile::Release && options.goal == Some(Goal::Speed) {
        settings.push(format!(
            "profile.{profile}.package.\"{package}\".opt-level=3"
        ));
    }
    (profile, settings)
}

/// Builds the worker crate in `crate_dir`.
pub fn build(crate_dir: &Path, options: &BuildOptions) -> Result<()> {
    let started = Instant::now();
    let package = Package::read(crate_dir)?;
    // The command line wins over the crate's own choice.
    let options = &BuildOptions {
        goal: Some(goal(options.goal, package.goal)),
        ..options.clone()
    };
    let out_dir = crate_dir.join(&options.out_dir);
    fs::create_dir_all(&out_dir)?;
    // Two builds of one worker at once (a test run beside `wrangler dev`, or
    // `make test`'s pre-build beside the harness) take turns: the second finds
    // the first's output up to date instead of racing it into the same files.
    let lock = fs::File::create(out_dir.join(".edgeway-lock"))?;
    lock.lock()
        .with_context(|| format!("lock {}", out_dir.display()))?;

    let step = Instant::now();
    let wasm = cargo_build(crate_dir, &package, options)?;
    let cargo_time = step.elapsed();

    // Nothing changed since the last build into `out_dir`: keep its output, so a
    // `wrangler dev` restart or a second build in one test run costs only cargo's
    // no-op check, not another wasm-opt pass.
    let stamp_path = out_dir.join(".edgeway-stamp");
    let stamp = stamp(&wasm, options)?;
    let outputs = ["index.js", "index_bg.js", "index.wasm"];
    if outputs.iter().all(|name| out_dir.join(name).is_file())
        && fs::read_to_string(&stamp_path).ok().as_deref() == Some(stamp.as_str())
    {
        eprintln!(
            "edgeway: {} is up to date ({})",
            package.name,
            out_dir.display()
        );
        return Ok(());
    }

    let classes = exported_classes(&fs::read(&wasm)?)?;
    let step = Instant::now();
    let staging = out_dir.join(".staging");
    if staging.exists() {
        fs::remove_dir_all(&staging)?;
    }
    let release = options.profile == Profile::Release;
    let mut output = Bindgen::new()
        .input_path(&wasm)
        .out_name("index")
        .bundler(true)?
        .typescript(false)
        .remove_name_section(release && !options.keep_names)
        .remove_producers_section(release)
        .generate_output()
        .with_context(|| format!("wasm-bindgen on {}", wasm.display()))?;
    unlist_unused_closure_shims(output.wasm_mut())?;
    output.emit(&staging)?;
    let bindgen_time = step.elapsed();

    let step = Instant::now();
    let module = out_dir.join("index.wasm");
    let bindgen_wasm = staging.join("index_bg.wasm");
    if release && options.optimize {
        wasm_opt(crate_dir, &bindgen_wasm, &module, options.keep_names)?;
    } else {
        fs::rename(&bindgen_wasm, &module)?;
    }
    let opt_time = step.elapsed();

    // The glue and its snippets, then the entry last: a watcher that reloads on
    // index.js never sees a half-written worker.
    replace(&staging.join("index_bg.js"), &out_dir.join("index_bg.js"))?;
    let snippets = out_dir.join("snippets");
    if snippets.exists() {
        fs::remove_dir_all(&snippets)?;
    }
    if staging.join("snippets").exists() {
        fs::rename(staging.join("snippets"), &snippets)?;
    }
    let shim = render_shim(&snippet_modules(&snippets)?, &classes);
    let entry = out_dir.join("index.js");
    let tmp = out_dir.join(".index.js.tmp");
    fs::write(&tmp, shim)?;
    fs::rename(&tmp, &entry)?;
    fs::remove_dir_all(&staging)?;
    fs::write(&stamp_path, stamp)?;

    let wasm_bytes = fs::read(&module)?;
    let glue = fs::metadata(out_dir.join("index_bg.js"))?.len();
    eprintln!(
        "edgeway: built {} ({}, panic={}{}) in {:.1}s (cargo {:.1}s, wasm-bindgen {:.1}s, wasm-opt {:.1}s): \
         index.wasm {} bytes ({} gzip), glue {} bytes",
        package.name,
        match (release, options.goal) {
            (false, _) => "dev",
            (true, Some(Goal::Speed)) => "release for speed",
            (true, _) => "release",
        },
        match options.panic {
            Panic::Unwind => "unwind",
            Panic::Abort => "abort",
        },
        if release && options.keep_names {
            ", names kept"
        } else {
            ""
        },
        started.elapsed().as_secs_f64(),
        cargo_time.as_secs_f64(),
        bindgen_time.as_secs_f64(),
        opt_time.as_secs_f64(),
        wasm_bytes.len(),
        gzip_len(&wasm_bytes)?,
        glue,
    );
    Ok(())
}

/// The crate being built: its name, library target and cargo's target directory.
struct Package {
    name: String,
    /// `[package.metadata.edgeway] optimize-for`, if the crate sets it.
    goal: Option<Goal>,
    lib_name: String,
    target_dir: PathBuf,
}

impl Package {
    fn read(crate_dir: &Path) -> Result<Package> {
        let manifest = crate_dir.join("Cargo.toml");
        if !manifest.is_file() {
            bail!(
                "no Cargo.toml in {}: run `edgeway build` from the worker crate's directory",
                crate_dir.display()
            );
        }
        let output = Command::new("cargo")
            .args([
                "metadata",
                "--format-version=1",
                "--no-deps",
                "--manifest-path",
            ])
            .arg(&manifest)
            .output()
            .context("run `cargo metadata` (is cargo on PATH?)")?;
        if !output.status.success() {
            bail!(
                "cargo metadata failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let meta: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        let manifest = fs::canonicalize(&manifest)?;
        let package = meta["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| {
                p["manifest_path"]
                    .as_str()
                    .is_some_and(|m| Path::new(m) == manifest)
            })
            .with_context(|| format!("{} declares no package", manifest.display()))?;
        let lib = package["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| {
                t["crate_types"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
            })
            .with_context(|| {
                format!(
                    "{} has no cdylib library: add `[lib] crate-type = [\"cdylib\"]`",
                    manifest.display()
                )
            })?;
        let goal = goal_of(package).with_context(|| manifest.display().to_string())?;
        Ok(Package {
            name: package["name"].as_str().unwrap_or_default().to_owned(),
            goal,
            lib_name: lib["name"].as_str().unwrap_or_default().replace('-', "_"),
            target_dir: PathBuf::from(meta["target_directory"].as_str().unwrap_or("target")),
        })
    }
}

/// The crate's own choice, `[package.metadata.edgeway] optimize-for`, from its
/// `cargo metadata` entry.
fn goal_of(package: &serde_json::Value) -> Result<Option<Goal>> {
    Ok(match &package["metadata"]["edgeway"]["optimize-for"] {
        serde_json::Value::Null => None,
        value => Some(match value.as_str() {
            Some("size") => Goal::Size,
            Some("speed") => Goal::Speed,
            _ => bail!(
                "`[package.metadata.edgeway] optimize-for` takes \"size\" or \"speed\", not {value}"
            ),
        }),
    })
}

/// What a panic=unwind build adds: cargo's arguments, then rustc's flags.
fn unwind_flags(options: &BuildOptions) -> (Vec<&'static str>, Vec<&'static str>) {
    let mut args = vec!["-Zbuild-std=std,panic_unwind"];
    let mut rustflags = vec!["-Cpanic=unwind"];
    if options.profile == Profile::Release {
        // Panic locations (file, line, column) were 3% of hello gzipped, and
        // nothing edgeway runs shows them: no panic hook prints on wasm32 and
        // edgeway logs the message. A hook a worker installs prints
        // `<redacted>`; dev and `--keep-names` builds keep them for debugging.
        if !options.keep_names {
            rustflags.push("-Zlocation-detail=none");
        }
        // std's smaller variants (sorting, UTF-8 checks, number formatting):
        // 6.4 KiB of the gateway, but 7.5% more CPU on a 16 KB JSON body, so
        // not for a crate built for speed. BENCHMARKS.md, "Size budget".
        if options.goal != Some(Goal::Speed) {
            args.push("-Zbuild-std-features=panic-unwind,optimize_for_size");
        }
    }
    (args, rustflags)
}

fn cargo_build(crate_dir: &Path, package: &Package, options: &BuildOptions) -> Result<PathBuf> {
    let (profile, config) = cargo_settings(options, &package.name);
    let mut cargo = Command::new("cargo");
    if options.panic == Panic::Unwind {
        cargo.arg("+nightly");
    }
    cargo
        .current_dir(crate_dir)
        .args(["build", "--lib", "--target", TARGET, "--profile", profile]);
    for setting in config {
        cargo.args(["--config", &setting]);
    }
    if options.panic == Panic::Unwind {
        let (args, rustflags) = unwind_flags(options);
        cargo.args(args);
        let mut flags = std::env::var("RUSTFLAGS").unwrap_or_default();
        for flag in rustflags {
            if !flags.is_empty() {
                flags.push(' ');
            }
            flags.push_str(flag);
        }
        cargo.env("RUSTFLAGS", flags);
    }
    // Under `cargo run`, rustup pins its own toolchain for children; the `+nightly`
    // above (or the project's default) must win.
    cargo.env_remove("RUSTUP_TOOLCHAIN");
    let status = cargo.status().context("run cargo (is it on PATH?)")?;
    if !status.success() {
        if options.panic == Panic::Unwind {
            bail!(
                "cargo build failed ({status}); panic=unwind needs nightly with rust-src and the \
                 wasm32 target: `rustup toolchain install nightly --profile minimal \
                 --component rust-src --target {TARGET}` (or build with --panic abort)"
            );
        }
        bail!("cargo build failed ({status})");
    }
    let wasm = package
        .target_dir
        .join(TARGET)
        .join(profile)
        .join(format!("{}.wasm", package.lib_name));
    if !wasm.is_file() {
        bail!("cargo reported success but {} is missing", wasm.display());
    }
    Ok(wasm)
}

/// What the output depends on beyond the sources cargo already tracked: the
/// compiled module's bytes, the options, and this tool itself (its shim, glue and
/// wasm-opt settings).
fn stamp(wasm: &Path, options: &BuildOptions) -> Result<String> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    fs::read(wasm)?.hash(&mut hasher);
    let tool = std::env::current_exe()
        .and_then(fs::metadata)
        .and_then(|m| m.modified())
        .ok();
    Ok(format!(
        "{} {:x} {:?} {:?} {} {:?} {} {:?}",
        env!("CARGO_PKG_VERSION"),
        hasher.finish(),
        options.profile,
        options.panic,
        options.optimize,
        options.goal,
        options.keep_names,
        tool,
    ))
}

/// Takes out of the function table the closure shims no code can call.
///
/// wasm-bindgen describes every imported JS function to itself through an
/// exported function the linker must keep, and a describe function whose
/// signature takes a closure (js-sys alone has dozens: each typed array's
/// `forEach`, `find`, `sort`...) takes the address of a shim that calls it,
/// which puts the shim in the function table. wasm-bindgen runs the describe
/// functions, exports the shims the glue uses, and deletes the describe
/// functions, but the table keeps every shim, and nothing in a table can be
/// removed as dead: in hello they were 9 KB of code that no path reaches.
///
/// A shim is only ever called from JS, by its export, so a slot holding one that
/// is not exported is never called. The slot keeps its index (other indices are
/// baked into code and vtables) and points at a stub that traps instead, and
/// wasm-opt then drops the shims and what only they used (a dev build, which
/// skips wasm-opt, keeps them, unlisted). Returns how many slots changed.
///
/// This reads wasm-bindgen's internals as of 0.2.130 (shims live in
/// `wasm_bindgen::convert::closures`, JS calls them only by export, and no
/// destructor is passed as a table index): re-check it when bumping the pin.
fn unlist_unused_closure_shims(module: &mut walrus::Module) -> Result<usize> {
    // Two function tables (which rustc never makes): leave them alone, as
    // wasm-bindgen's own passes do.
    let Some(table) = module.tables.main_function_table().ok().flatten() else {
        return Ok(0);
    };
    let exported: std::collections::HashSet<walrus::FunctionId> = module
        .exports
        .iter()
        .filter_map(|export| match export.item {
            walrus::ExportItem::Function(id) => Some(id),
            _ => None,
        })
        .collect();
    let unused: std::collections::HashSet<walrus::FunctionId> = module
        .funcs
        .iter()
        .filter(|func| !exported.contains(&func.id()))
        .filter(|func| func.name.as_deref().is_some_and(is_closure_shim))
        .map(|func| func.id())
        .collect();
    if unused.is_empty() {
        return Ok(0);
    }
    let stub = trap_stub(module);
    let mut unlisted = 0;
    for &segment in &module.tables.get(table).elem_segments {
        let slots: Vec<&mut walrus::FunctionId> = match &mut module.elements.get_mut(segment).items
        {
            walrus::ElementItems::Functions(ids) => ids.iter_mut().collect(),
            walrus::ElementItems::Expressions(_, exprs) => exprs
                .iter_mut()
                .filter_map(|expr| match expr {
                    walrus::ConstExpr::RefFunc(id) => Some(id),
                    _ => None,
                })
                .collect(),
        };
        for slot in slots.into_iter().filter(|slot| unused.contains(*slot)) {
            *slot = stub;
            unlisted += 1;
        }
    }
    Ok(unlisted)
}

/// Whether `name` (from the name section, demangled, crate hashes included)
/// is one of wasm-bindgen's closure call shims.
fn is_closure_shim(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("wasm_bindgen") else {
        return false;
    };
    // Names carry the crate's hash: `wasm_bindgen[0123456789abcdef]::…`.
    let rest = match rest.strip_prefix('[') {
        Some(hashed) => hashed.split_once(']').map_or("", |(_, path)| path),
        None => rest,
    };
    rest.starts_with("::convert::closures::")
}

/// A function of no arguments that traps: what an unused table slot points at.
fn trap_stub(module: &mut walrus::Module) -> walrus::FunctionId {
    let mut builder = walrus::FunctionBuilder::new(&mut module.types, &[], &[]);
    builder.func_body().unreachable();
    builder.finish(Vec::new(), &mut module.funcs)
}

fn wasm_opt(crate_dir: &Path, input: &Path, output: &Path, keep_names: bool) -> Result<()> {
    let wasm_opt = tools::WASM_OPT.find(crate_dir)?;
    let mut command = Command::new(&wasm_opt);
    command.args(name_args(keep_names));
    command.args(["-Oz", "--strip-producers"]);
    // workerd compiles wasm lazily, one function at a time on its first call, so
    // a function is compiled whole even when a request runs one branch of it.
    // Unlimited one-caller inlining folds the whole request path, error branches
    // included, into one 28 KB `fetch` that Liftoff compiles in about 3 ms on the
    // first request; capping it keeps the module as small and cuts that
    // first-request compilation by about a quarter (BENCHMARKS.md, "Cold start").
    command.args(["--one-caller-inline-max-function-size", "200"]);
    // The features rustc's wasm32 output and wasm-bindgen's glue use, named one by
    // one: never let wasm-opt emit an encoding workerd may not accept yet.
    for feature in [
        "mutable-globals",
        "sign-ext",
        "nontrapping-float-to-int",
        "bulk-memory",
        "multivalue",
        "reference-types",
        "exception-handling",
    ] {
        command.arg(format!("--enable-{feature}"));
    }
    let status = command
        .arg(input)
        .arg("-o")
        .arg(output)
        .status()
        .with_context(|| format!("run {}", wasm_opt.display()))?;
    if !status.success() {
        bail!("{} failed ({status})", wasm_opt.display());
    }
    Ok(())
}

/// wasm-opt's arguments for the name section, given before `-Oz`: `-g` keeps and
/// updates it, after `--strip-dwarf` drops any DWARF (which would otherwise be
/// carried through the optimisation); `--strip-debug` drops both.
fn name_args(keep_names: bool) -> &'static [&'static str] {
    if keep_names {
        &["--strip-dwarf", "-g"]
    } else {
        &["--strip-debug"]
    }
}

/// The snippet modules wasm-bindgen wrote (inline JS from `#[wasm_bindgen(inline_js)]`),
/// as import specifiers relative to the output directory.
fn snippet_modules(snippets: &Path) -> Result<Vec<String>> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
        let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = format!("{prefix}/{}", entry.file_name().to_string_lossy());
            if entry.file_type()?.is_dir() {
                walk(&entry.path(), &name, out)?;
            } else {
                out.push(name);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    if snippets.is_dir() {
        walk(snippets, "./snippets", &mut out)?;
    }
    Ok(out)
}

/// A class the shim exports for workerd to instantiate.
#[derive(Debug, PartialEq)]
enum Class {
    /// A Cloudflare Workflows entrypoint, run through the wasm export
    /// `__edgeway_workflow`.
    Workflow(String),
    /// A Durable Object, served through `__edgeway_object_fetch` and
    /// `__edgeway_object_alarm`.
    Object(String),
}

impl Class {
    fn name(&self) -> &str {
        match self {
            Class::Workflow(name) | Class::Object(name) => name,
        }
    }
}

/// The classes `entry!` declared, from the `edgeway.classes` custom section of
/// the compiled module: one `kind Name` a line.
fn exported_classes(wasm: &[u8]) -> Result<Vec<Class>> {
    let mut classes = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let wasmparser::Payload::CustomSection(section) = payload? else {
            continue;
        };
        if section.name() != "edgeway.classes" {
            continue;
        }
        let text = std::str::from_utf8(section.data()).context("edgeway.classes is not UTF-8")?;
        for line in text.lines().filter(|l| !l.is_empty()) {
            let (kind, name) = line
                .split_once(' ')
                .with_context(|| format!("edgeway.classes: {line:?}"))?;
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                bail!("edgeway.classes: {name:?} is not a class name");
            }
            // Names the shim itself uses, or a name declared twice, would make
            // the worker's entry fail to load at deploy time: fail the build.
            const TAKEN: &[&str] = &[
                "DurableObject",
                "WorkflowEntrypoint",
                "handlers",
                "imports",
                "instance",
                "wasmModule",
            ];
            if TAKEN.contains(&name) || name.starts_with("snippet") {
                bail!("edgeway.classes: {name:?} is a name edgeway's entry uses; rename the class");
            }
            if classes.iter().any(|c: &Class| c.name() == name) {
                bail!("edgeway.classes: {name:?} is declared twice");
            }
            match kind {
                "workflow" => classes.push(Class::Workflow(name.to_owned())),
                "object" => classes.push(Class::Object(name.to_owned())),
                _ => bail!("edgeway.classes: unknown kind {kind:?} (is this edgeway build older than the crate?)"),
            }
        }
    }
    Ok(classes)
}

/// The entry shim with the snippet modules imported and handed to the instance
/// under the names the wasm module imports them by, and the declared classes.
fn render_shim(snippets: &[String], classes: &[Class]) -> String {
    let mut imports = String::new();
    let mut modules = String::new();
    for (i, path) in snippets.iter().enumerate() {
        let _ = writeln!(imports, "import * as snippet{i} from \"{path}\";");
        let _ = write!(modules, "\"{path}\": snippet{i}, ");
    }
    let mut class_imports = String::new();
    let mut exports = String::new();
    // Each class extends the runtime's base class, which is how workerd hands it
    // `env` and `ctx` (a bare class gets no env).
    let mut bases = Vec::new();
    for class in classes {
        match class {
            Class::Workflow(name) => {
                bases.push("WorkflowEntrypoint");
                let _ = write!(
                    exports,
                    "export class {name} extends WorkflowEntrypoint {{\n  run(event, step) {{\n    return imports.__edgeway_workflow(\"{name}\", event, step, this.env);\n  }}\n}}\n"
                );
            }
            Class::Object(name) => {
                bases.push("DurableObject");
                let _ = write!(
                    exports,
                    "export class {name} extends DurableObject {{\n  fetch(request) {{\n    return imports.__edgeway_object_fetch(\"{name}\", this.ctx, this.env, request, request.method, request.url);\n  }}\n  alarm() {{\n    return imports.__edgeway_object_alarm(\"{name}\", this.ctx, this.env);\n  }}\n}}\n"
                );
            }
        }
    }
    bases.sort_unstable();
    bases.dedup();
    if !bases.is_empty() {
        class_imports = format!(
            "import {{ {} }} from \"cloudflare:workers\";",
            bases.join(", ")
        );
    }
    SHIM.replace("/*SNIPPET_IMPORTS*/", imports.trim_end())
        .replace("/*SNIPPET_MODULES*/", modules.trim_end())
        .replace("/*CLASS_IMPORTS*/", &class_imports)
        .replace("/*CLASSES*/", exports.trim_end())
}

fn replace(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).with_context(|| format!("move {} to {}", from.display(), to.display()))
}

fn gzip_len(bytes: &[u8]) -> Result<usize> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(module: &mut walrus::Module, name: &str) -> walrus::FunctionId {
        let mut builder = walrus::FunctionBuilder::new(&mut module.types, &[], &[]);
        builder.name(name.to_owned()).func_body();
        builder.finish(Vec::new(), &mut module.funcs)
    }

    #[test]
    fn closure_shims_leave_the_table_unless_exported() {
        let mut module = walrus::Module::default();
        let used = named(
            &mut module,
            "wasm_bindgen::convert::closures::_::invoke::<(), true>",
        );
        let unused = named(
            &mut module,
            "wasm_bindgen[9654e4cb361db095]::convert::closures::_::invoke::<i8, u32, js_sys::Int8Array, true>",
        );
        let handler = named(&mut module, "hello::app");
        module.exports.add("invoke", used);
        let table = module
            .tables
            .add_local(false, 4, None, walrus::RefType::FUNCREF);
        let segment = module.elements.add(
            walrus::ElementKind::Active {
                table,
                offset: walrus::ConstExpr::Value(walrus::ir::Value::I32(1)),
            },
            walrus::ElementItems::Functions(vec![used, unused, handler, unused]),
        );
        module.tables.get_mut(table).elem_segments.insert(segment);
        // The form wasm-bindgen's externref pass may leave: expressions.
        let expressions = module.elements.add(
            walrus::ElementKind::Active {
                table,
                offset: walrus::ConstExpr::Value(walrus::ir::Value::I32(5)),
            },
            walrus::ElementItems::Expressions(
                walrus::RefType::FUNCREF,
                vec![
                    walrus::ConstExpr::RefFunc(unused),
                    walrus::ConstExpr::RefNull(walrus::RefType::FUNCREF),
                    walrus::ConstExpr::RefFunc(handler),
                ],
            ),
        );
        module
            .tables
            .get_mut(table)
            .elem_segments
            .insert(expressions);

        assert_eq!(unlist_unused_closure_shims(&mut module).unwrap(), 3);
        let walrus::ElementItems::Functions(slots) = &module.elements.get(segment).items else {
            panic!("the segment changed form");
        };
        // Every slot keeps its index; the unused shim's slots now hold one stub.
        assert_eq!(slots.len(), 4);
        assert_eq!((slots[0], slots[2]), (used, handler));
        assert_eq!(slots[1], slots[3]);
        let stub = slots[1];
        assert!(![used, unused, handler].contains(&stub));
        let walrus::ElementItems::Expressions(_, exprs) = &module.elements.get(expressions).items
        else {
            panic!("the segment changed form");
        };
        assert!(matches!(
            exprs[..],
            [
                walrus::ConstExpr::RefFunc(first),
                walrus::ConstExpr::RefNull(_),
                walrus::ConstExpr::RefFunc(last),
            ] if first == stub && last == handler
        ));
        assert!(!is_closure_shim("wasm_bindgen::JsValue::as_string"));
        assert!(!is_closure_shim(
            "wasm_bindgen_futures::convert::closures::f"
        ));
        assert!(!is_closure_shim(
            "<T as wasm_bindgen::closure::IntoWasmClosure<dyn FnMut()>>::unsize::{closure#0}"
        ));
        assert!(!is_closure_shim("my_crate::convert::closures::f"));
    }

    #[test]
    fn size_builds_take_std_small_and_only_shipped_builds_drop_panic_locations() {
        let with = |profile, goal| {
            unwind_flags(&BuildOptions {
                profile,
                goal: Some(goal),
                ..BuildOptions::default()
            })
        };
        let small_std = "-Zbuild-std-features=panic-unwind,optimize_for_size";
        let no_locations = "-Zlocation-detail=none";
        let (args, flags) = with(Profile::Release, Goal::Size);
        assert!(args.contains(&small_std) && flags.contains(&no_locations));
        let (args, flags) = with(Profile::Release, Goal::Speed);
        assert!(!args.contains(&small_std) && flags.contains(&no_locations));
        let (args, flags) = with(Profile::Dev, Goal::Size);
        assert!(!args.contains(&small_std) && !flags.contains(&no_locations));
        let (_, flags) = unwind_flags(&BuildOptions {
            keep_names: true,
            ..BuildOptions::default()
        });
        assert!(
            !flags.contains(&no_locations),
            "a build for debugging keeps them"
        );
        assert!(
            args.contains(&"-Zbuild-std=std,panic_unwind") && flags.contains(&"-Cpanic=unwind")
        );
    }

    #[test]
    fn shipped_builds_drop_the_name_section_and_keep_names_keeps_it() {
        assert_eq!(name_args(false), ["--strip-debug"]);
        assert!(name_args(true).contains(&"-g"));
        assert!(!name_args(true).contains(&"--strip-debug"));
        assert!(!BuildOptions::default().keep_names);
    }

    #[test]
    fn the_goal_comes_from_the_command_line_then_the_crate_then_size() {
        let package = |metadata: serde_json::Value| serde_json::json!({ "metadata": metadata });
        let speed = package(serde_json::json!({ "edgeway": { "optimize-for": "speed" } }));
        assert_eq!(goal_of(&speed).unwrap(), Some(Goal::Speed));
        assert_eq!(goal_of(&package(serde_json::Value::Null)).unwrap(), None);
        assert_eq!(
            goal_of(&package(serde_json::json!({ "other": 1 }))).unwrap(),
            None
        );
        for bad in [serde_json::json!("fast"), serde_json::json!(3)] {
            let bad = package(serde_json::json!({ "edgeway": { "optimize-for": bad } }));
            let err = goal_of(&bad).unwrap_err().to_string();
            assert!(err.contains("takes \"size\" or \"speed\""), "{err}");
        }
        assert_eq!(goal(Some(Goal::Size), Some(Goal::Speed)), Goal::Size);
        assert_eq!(goal(None, Some(Goal::Speed)), Goal::Speed);
        assert_eq!(goal(None, None), Goal::Size);
    }

    #[test]
    fn building_for_speed_raises_only_the_worker_crate_to_opt_level_3() {
        let speed = BuildOptions {
            goal: Some(Goal::Speed),
            ..BuildOptions::default()
        };
        let (profile, settings) = cargo_settings(&speed, "my-worker");
        assert_eq!(profile, "edgeway-release");
        assert!(settings.contains(&"profile.edgeway-release.opt-level=\"z\"".to_string()));
        assert_eq!(
            settings.last().unwrap(),
            "profile.edgeway-release.package.\"my-worker\".opt-level=3"
        );
        let (_, size) = cargo_settings(&BuildOptions::default(), "my-worker");
        assert!(!size.iter().any(|s| s.contains(".package.")));
        // The edit loop ignores the goal: it is never optimised for either.
        let dev = BuildOptions {
            profile: Profile::Dev,
            ..speed
        };
        let (profile, settings) = cargo_settings(&dev, "my-worker");
        assert_eq!(profile, "edgeway-dev");
        assert!(!settings.iter().any(|s| s.contains(".package.")));
    }

    #[test]
    fn the_shim_imports_each_snippet_and_passes_it_under_its_module_name() {
        let shim = render_shim(
            &[
                "./snippets/edgeway-1/inline0.js".into(),
                "./snippets/worker-2/inline1.js".into(),
            ],
            &[],
        );
        assert!(shim.contains("import * as snippet0 from \"./snippets/edgeway-1/inline0.js\";"));
        assert!(shim.contains("\"./snippets/worker-2/inline1.js\": snippet1,"));
        assert!(!shim.contains("/*SNIPPET"), "placeholders left in:\n{shim}");
    }

    #[test]
    fn each_workflow_class_extends_the_entrypoint_and_calls_into_wasm() {
        let shim = render_shim(&[], &[Class::Workflow("OrderFulfillment".into())]);
        assert!(shim.contains("import { WorkflowEntrypoint } from \"cloudflare:workers\";"));
        assert!(shim.contains("export class OrderFulfillment extends WorkflowEntrypoint {"));
        assert!(shim.contains(
            "return imports.__edgeway_workflow(\"OrderFulfillment\", event, step, this.env);"
        ));
        assert!(!render_shim(&[], &[]).contains("cloudflare:workers"));
    }

    #[test]
    fn an_object_class_extends_durable_object_and_serves_fetch_and_alarm() {
        let shim = render_shim(
            &[],
            &[
                Class::Object("Topics".into()),
                Class::Workflow("Orders".into()),
            ],
        );
        assert!(shim
            .contains("import { DurableObject, WorkflowEntrypoint } from \"cloudflare:workers\";"));
        assert!(shim.contains("export class Topics extends DurableObject {"));
        assert!(shim.contains("imports.__edgeway_object_fetch(\"Topics\", this.ctx, this.env, request, request.method, request.url)"));
        assert!(shim.contains("imports.__edgeway_object_alarm(\"Topics\", this.ctx, this.env)"));
    }

    /// A module with only the `edgeway.classes` section: magic, version, then
    /// custom section 0 holding `body`.
    fn module_with_classes(body: &[u8]) -> Vec<u8> {
        let name = b"edgeway.classes";
        let mut wasm = b"\0asm\x01\0\0\0\0".to_vec();
        wasm.push((1 + name.len() + body.len()) as u8);
        wasm.push(name.len() as u8);
        wasm.extend_from_slice(name);
        wasm.extend_from_slice(body);
        wasm
    }

    #[test]
    fn classes_are_read_from_the_custom_section() {
        let body = b"workflow Orders\nworkflow Refunds\n";
        let mut wasm = module_with_classes(body);
        assert_eq!(
            exported_classes(&wasm).unwrap(),
            [
                Class::Workflow("Orders".into()),
                Class::Workflow("Refunds".into())
            ]
        );
        let bad = wasm.len() - body.len();
        wasm[bad] = b'x';
        assert!(
            exported_classes(&wasm).is_err(),
            "an unknown kind fails the build"
        );
    }

    #[test]
    fn a_class_named_like_the_entry_or_declared_twice_fails_the_build() {
        for body in [
            &b"object DurableObject\n"[..],
            b"workflow handlers\n",
            b"workflow Orders\nobject Orders\n",
        ] {
            let err = exported_classes(&module_with_classes(body))
                .unwrap_err()
                .to_string();
            assert!(err.contains("edgeway.classes"), "{err}");
        }
        assert!(
            exported_classes(&module_with_classes(b"workflow Orders\nobject Topics\n")).is_ok()
        );
    }

    #[test]
    fn snippets_are_listed_in_a_stable_order() {
        let dir = tempfile::tempdir().unwrap();
        for path in ["b/inline0.js", "a/inline1.js", "a/inline0.js"] {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "").unwrap();
        }
        assert_eq!(
            snippet_modules(dir.path()).unwrap(),
            [
                "./snippets/a/inline0.js",
                "./snippets/a/inline1.js",
                "./snippets/b/inline0.js"
            ]
        );
    }
}
