//! `edgeway`: the command that starts and builds edgeway worker crates.
//!
//! ```text
//! edgeway new NAME [--dir DIR] [--path EDGEWAY_CHECKOUT]
//! edgeway build [--dev] [--panic abort|unwind] [--optimize-for size|speed] [--no-opt]
//!               [--out-dir build]
//! edgeway cost PROFILE [--prices FILE] [--assume FILE] [--json]
//! ```
//!
//! `edgeway cost` projects a traffic profile to a month on Workers, on Lambda
//! behind API Gateway and on always-on containers, with the break-even.
//!
//! `edgeway new` writes a ready crate: a worker with a route, a KV binding, a
//! queue and its consumer, an e2e test, `wrangler.toml`, `package.json` and a
//! README.
//!
//! Run from the worker crate's directory (as wrangler runs a `[build] command`).
//! It compiles the crate to wasm32 with edgeway's size profile, generates the JS
//! glue with wasm-bindgen (linked in, at the exact version edgeway pins), shrinks
//! the module with wasm-opt, and writes `build/index.js`, edgeway's entry shim,
//! next to `build/index_bg.js` and `build/index.wasm`. It never downloads
//! anything: a missing tool is an error that says what to install.

mod build;
mod cost;
mod new;
mod tools;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::build::{BuildOptions, Goal, Panic, Profile};

const USAGE: &str = "\
usage: edgeway new NAME [--dir DIR] [--path EDGEWAY_CHECKOUT]
                                   start a worker crate in ./NAME (or DIR); --path
                                   depends on a local edgeway checkout instead of
                                   the crates.io release
       edgeway build [options]     build the worker crate in this directory
       edgeway cost PROFILE [--prices FILE] [--assume FILE] [--json]
                                   what a traffic profile (JSON: requests per hour and
                                   what a request does) costs a month on Workers, on
                                   Lambda + API Gateway and on containers, and where
                                   containers become cheaper (docs/OPERATIONS.md)

build options:
  --dev              unoptimised, incremental build with names kept (the edit loop);
                     EDGEWAY_PROFILE=dev selects it too, so one wrangler.toml serves
                     `wrangler dev` and `wrangler deploy`
  --release          the size-optimised build (the default)
  --panic <unwind|abort>
                     unwind (default): a panicking handler answers 500 and the isolate
                     keeps serving; needs nightly Rust with rust-src
                     abort: smaller, but a panic takes the isolate down
  --optimize-for <size|speed>
                     size: the smallest module and the fastest cold start
                     speed: the worker crate's own code (its handlers, and the serde
                     and extractor code instantiated for its types) at opt-level 3,
                     for CPU-bound workers; larger, and slower to start.
                     Default: the crate's [package.metadata.edgeway] optimize-for,
                     else size
  --no-opt           skip wasm-opt (release builds run it by default)
  --keep-names       keep the wasm name section in a release build, so profiles,
                     compilation traces and stack traces name Rust functions
                     (a larger module: for measuring, not for shipping);
                     EDGEWAY_KEEP_NAMES=1 selects it too, so the benchmarks'
                     wrangler builds can keep names (bench/profile.mjs)
  --out-dir <dir>    where to write the worker (default: build)
  -h, --help         this text
  -V, --version      the version";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("edgeway: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_env();
    let mut command = None;
    let mut new = new::NewOptions::default();
    let mut options = BuildOptions::default();
    let mut costing = cost::CostOptions::default();
    if std::env::var("EDGEWAY_PROFILE").as_deref() == Ok("dev") {
        options.profile = Profile::Dev;
    }
    if std::env::var("EDGEWAY_KEEP_NAMES").as_deref() == Ok("1") {
        options.keep_names = true;
    }
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => {
                println!("{USAGE}");
                return Ok(());
            }
            Short('V') | Long("version") => {
                println!("edgeway {}", env!("CARGO_PKG_VERSION"));
                return Ok(());
            }
            Long("dev") => options.profile = Profile::Dev,
            Long("release") => options.profile = Profile::Release,
            Long("no-opt") => options.optimize = false,
            Long("keep-names") => options.keep_names = true,
            Long("optimize-for") => {
                options.goal = match parser.value()?.string()?.as_str() {
                    "size" => Some(Goal::Size),
                    "speed" => Some(Goal::Speed),
                    other => bail!("--optimize-for takes `size` or `speed`, not `{other}`"),
                }
            }
            Long("panic") => {
                options.panic = match parser.value()?.string()?.as_str() {
                    "unwind" => Panic::Unwind,
                    "abort" => Panic::Abort,
                    other => bail!("--panic takes `unwind` or `abort`, not `{other}`"),
                }
            }
            Long("out-dir") => options.out_dir = PathBuf::from(parser.value()?),
            Long("dir") => new.dir = Some(PathBuf::from(parser.value()?)),
            Long("path") => new.edgeway_path = Some(PathBuf::from(parser.value()?)),
            Long("prices") => costing.prices = Some(PathBuf::from(parser.value()?)),
            Long("assume") => costing.assumptions = Some(PathBuf::from(parser.value()?)),
            Long("json") => costing.json = true,
            Value(value) if command.is_none() => command = Some(value.string()?),
            Value(value) if command.as_deref() == Some("new") && new.name.is_empty() => {
                new.name = value.string()?
            }
            Value(value) if command.as_deref() == Some("cost") && costing.profile.is_none() => {
                costing.profile = Some(PathBuf::from(value))
            }
            _ => return Err(arg.unexpected()).context(USAGE),
        }
    }
    match command.as_deref() {
        Some("build") => build::build(&std::env::current_dir()?, &options),
        Some("cost") => cost::cost(&costing),
        Some("new") if new.name.is_empty() => bail!("`edgeway new` needs a NAME\n\n{USAGE}"),
        Some("new") => {
            let dir = new::new(&new)?;
            new::next_steps(&dir);
            Ok(())
        }
        Some(other) => bail!("unknown command `{other}`\n\n{USAGE}"),
        None => bail!("no command given\n\n{USAGE}"),
    }
}
