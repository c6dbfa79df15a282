//! The e2e harness: runs a worker in local workerd (`wrangler dev`, with Miniflare's
//! local KV and Queues) and talks real HTTP to it. Native only, behind the `testing`
//! feature.
//!
//! ```no_run
//! use edgeway::testing::Worker;
//!
//! let worker = Worker::start("examples/hello/wrangler.toml").unwrap();
//! let res = worker.get("/").unwrap();
//! assert_eq!(res.status, 200);
//! // Dropping `worker` kills wrangler and workerd, even if the test panicked.
//! ```
//!
//! - **Build once.** The worker's `[build] command` runs at most once per source
//!   change, under a file lock, so parallel test binaries share one build.
//! - **Isolated.** Each [`Worker`] gets free ports and its own state directory.
//! - **No orphans.** wrangler and workerd run in their own process group, which is
//!   killed on drop, and which a watchdog in that group kills as soon as the test
//!   process is gone, however it ended.
//! - **Logs.** stdout and stderr are captured; they are printed when a test panics.

mod build;
mod config;
mod process;
mod response;
mod tools;

pub use process::Sidecar;
pub use response::TestResponse;

use std::fmt;
use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use process::Guarded;
use response::{agent, parse_response};

/// What went wrong starting or talking to a worker.
#[derive(Debug)]
pub struct HarnessError(String);

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HarnessError {}

fn fail(msg: impl Into<String>) -> HarnessError {
    HarnessError(msg.into())
}

/// Configures a [`Worker`] before starting it.
#[derive(Clone, Debug)]
pub struct WorkerBuilder {
    config: PathBuf,
    vars: Vec<(String, String)>,
    secrets: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    ready_path: String,
    timeout: Duration,
}

impl WorkerBuilder {
    /// Overrides (or adds) a `[vars]` entry.
    pub fn var(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.vars.push((name.into(), value.into()));
        self
    }

    /// Sets a Worker secret, as `wrangler secret put` would in production. It goes
    /// in a private `.dev.vars`, so wrangler treats it as a secret and never
    /// prints its value (a `var` it prints at start-up).
    pub fn secret(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.secrets.push((name.into(), value.into()));
        self
    }

    /// A header sent with every request [`Worker::send`] and its shorthands
    /// make, such as the API key of a worker whose routes need one. A header of
    /// the same name passed to `send` replaces it, and an empty value there
    /// leaves it out. [`Worker::send_raw`] sends exactly its bytes.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The path polled until the worker answers (default `/`). Any HTTP status counts.
    pub fn ready_path(mut self, path: impl Into<String>) -> Self {
        self.ready_path = path.into();
        self
    }

    /// How long to wait for readiness (default 90 s, which covers a first build).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the worker if its sources changed, starts it and waits until it answers.
    pub fn start(self) -> Result<Worker, HarnessError> {
        let config = fs::canonicalize(&self.config)
            .map_err(|e| fail(format!("wrangler config {}: {e}", self.config.display())))?;
        let root = build::workspace_root(&config)?;
        let wrangler = tools::wrangler(config.parent().unwrap_or(&root))?;
        let path = tools::tool_path(&wrangler);
        build::ensure_built(&root, &config, &path)?;

        let dir = tempfile::Builder::new()
            .prefix("edgeway-worker-")
            .tempdir()
            .map_err(|e| fail(format!("temp dir: {e}")))?;
        let derived = config::derive_config(&config, &self.vars)?;
        let derived_path = dir.path().join("wrangler.json");
        fs::write(&derived_path, derived).map_err(|e| fail(format!("write config: {e}")))?;
        if !self.secrets.is_empty() {
            // wrangler reads `.dev.vars` next to the config it is given.
            let lines: String = self
                .secrets
                .iter()
                .map(|(name, value)| {
                    format!("{name}={}\n", serde_json::Value::from(value.as_str()))
                })
                .collect();
            fs::write(dir.path().join(".dev.vars"), lines)
                .map_err(|e| fail(format!("write .dev.vars: {e}")))?;
        }

        let launch = Launch {
            wrangler,
            path,
            derived_path,
            cwd: config.parent().unwrap_or(&root).to_owned(),
            ready_path: self.ready_path,
            timeout: self.timeout,
        };
        let cleaner = process::RemoveOnExit::watch(dir.path())?;
        let (base_url, group) = launch.spawn(dir.path())?;
        let mut worker = Worker {
            base_url,
            group,
            dir,
            _cleaner: cleaner,
            headers: self.headers,
            agent: agent(),
            launch,
        };
        worker.wait_serving()?;
        Ok(worker)
    }
}

/// How a worker is started, kept for [`Worker::restart`].
struct Launch {
    wrangler: PathBuf,
    path: String,
    derived_path: PathBuf,
    cwd: PathBuf,
    ready_path: String,
    timeout: Duration,
}

impl Launch {
    /// `wrangler dev` on free ports with its state in `dir`/state.
    fn spawn(&self, dir: &Path) -> Result<(String, Guarded), HarnessError> {
        let port = free_port()?;
        let inspector_port = free_port()?;
        let mut command = Command::new(&self.wrangler);
        command
            .arg("dev")
            .arg("--config")
            .arg(&self.derived_path)
            .args(["--ip", "127.0.0.1", "--port", &port.to_string()])
            .args(["--inspector-port", &inspector_port.to_string()])
            .arg("--persist-to")
            .arg(dir.join("state"))
            .args(["--show-interactive-dev-session=false", "--log-level", "log"])
            .current_dir(&self.cwd)
            .env("PATH", &self.path)
            .env("WRANGLER_SEND_METRICS", "false")
            // No network here: skip Miniflare's fetch of the real `request.cf` data.
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("WRANGLER_LOG_PATH", dir.join("wrangler-logs"))
            .stdin(Stdio::null());
        let group = Guarded::spawn(command, &format!("{}", self.wrangler.display()))?;
        Ok((format!("http://127.0.0.1:{port}"), group))
    }
}

/// A worker running in local workerd. Killed, with its whole process tree, on drop.
pub struct Worker {
    base_url: String,
    group: Guarded,
    dir: tempfile::TempDir,
    _cleaner: process::RemoveOnExit,
    headers: Vec<(String, String)>,
    agent: ureq::Agent,
    launch: Launch,
}

impl Worker {
    /// Configures a worker from its `wrangler.toml`.
    pub fn builder(config: impl AsRef<Path>) -> WorkerBuilder {
        WorkerBuilder {
            config: config.as_ref().to_owned(),
            vars: Vec::new(),
            secrets: Vec::new(),
            headers: Vec::new(),
            ready_path: "/".into(),
            timeout: Duration::from_secs(90),
        }
    }

    /// Builds if needed, starts, and waits until the worker answers.
    pub fn start(config: impl AsRef<Path>) -> Result<Self, HarnessError> {
        Self::builder(config).start()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Everything wrangler and workerd printed so far, including `console.log` lines.
    pub fn logs(&self) -> String {
        self.group.logs()
    }

    /// The process group that holds wrangler and workerd.
    pub fn process_group(&self) -> i32 {
        self.group.pgid
    }

    /// This worker's private directory (config and local state).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills wrangler and workerd at once, as a crash would, and starts them
    /// again on the same local state (KV, D1, Durable Objects, queues), on new
    /// ports. Logs start afresh.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.group.kill_now();
        self.respawn()?;
        self.wait_serving()
    }

    /// wrangler and workerd again, on new ports.
    fn respawn(&mut self) -> Result<(), HarnessError> {
        let (base_url, group) = self.launch.spawn(self.dir.path())?;
        self.base_url = base_url;
        self.group = group;
        Ok(())
    }

    /// Waits until the worker answers. Its ports were free when `free_port` looked,
    /// a moment before wrangler bound them; when another process of a busy test
    /// run took one in between, it starts again on new ports (twice at most).
    fn wait_serving(&mut self) -> Result<(), HarnessError> {
        let mut retries = 2;
        loop {
            match self.wait_ready(&self.launch.ready_path, self.launch.timeout) {
                Err(_) if retries > 0 && port_taken(&self.logs()) => {
                    retries -= 1;
                    self.group.kill_now();
                    self.respawn()?;
                }
                done => return done,
            }
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Result<TestResponse, HarnessError> {
        self.send("GET", path, &[], Vec::new())
    }

    /// `POST path` with a JSON body.
    pub fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<TestResponse, HarnessError> {
        self.send(
            "POST",
            path,
            &[("content-type", "application/json")],
            body.to_string().into_bytes(),
        )
    }

    /// Sends any request; non-2xx statuses are returned, not treated as errors.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<TestResponse, HarnessError> {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        let named = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        for (name, value) in &self.headers {
            if !named(name) {
                request = request.header(name.as_str(), value.as_str());
            }
        }
        for (name, value) in headers {
            let replaces_default = self
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name));
            if !(value.is_empty() && replaces_default) {
                request = request.header(*name, *value);
            }
        }
        let request = request
            .body(body)
            .map_err(|e| fail(format!("build request: {e}")))?;
        let mut response = self
            .agent
            .run(request)
            .map_err(|e| fail(format!("{method} {path}: {e}")))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .map_err(|e| fail(format!("{method} {path}: reading body: {e}")))?;
        Ok(TestResponse {
            status,
            headers,
            body,
        })
    }

    /// Writes `raw` bytes to a fresh connection and parses what comes back, for
    /// requests an HTTP client refuses to send (chunked bodies, odd framing, NUL
    /// bytes). `raw` should ask for `connection: close`.
    pub fn send_raw(&self, raw: &[u8]) -> Result<TestResponse, HarnessError> {
        use std::io::Write;
        let addr = self.base_url.trim_start_matches("http://");
        let mut stream =
            std::net::TcpStream::connect(addr).map_err(|e| fail(format!("connect {addr}: {e}")))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| fail(e.to_string()))?;
        stream
            .write_all(raw)
            .map_err(|e| fail(format!("write: {e}")))?;
        let mut bytes = Vec::new();
        // The server may close early (e.g. after a 413); keep whatever arrived.
        let _ = stream.read_to_end(&mut bytes);
        parse_response(&bytes)
    }

    /// Polls `check` until it returns `Some`, for at most `timeout`, and returns
    /// the value. Panics with `what` and this worker's logs when time runs out:
    /// the one bounded wait the e2e tests use for asynchronous effects.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = check() {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; logs:\n{}",
                self.logs()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_ready(&self, path: &str, timeout: Duration) -> Result<(), HarnessError> {
        let deadline = Instant::now() + timeout;
        let probe = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .new_agent();
        loop {
            if probe.get(self.url(path)).call().is_ok() {
                return Ok(());
            }
            let logs = self.logs();
            if port_taken(&logs) {
                return Err(fail(format!(
                    "a port of the worker was taken; logs:\n{logs}"
                )));
            }
            if Instant::now() > deadline {
                return Err(fail(format!(
                    "worker not ready after {timeout:?}; logs:\n{logs}"
                )));
            }
            thread::sleep(Duration::from_millis(150));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("---- worker logs ({}) ----\n{}", self.base_url, self.logs());
        }
        // `group` drops next and kills wrangler and workerd.
    }
}

/// Whether workerd reported that a port it was given is someone else's.
fn port_taken(logs: &str) -> bool {
    logs.contains("Address already in use")
}

fn free_port() -> Result<u16, HarnessError> {
    #[cfg(test)]
    if let Some(port) = tests::TAKEN.with(|taken| taken.take()) {
        return Ok(port);
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| fail(format!("no free port: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// A port the next `free_port` hands out, free or not.
        pub(super) static TAKEN: Cell<Option<u16>> = const { Cell::new(None) };
    }

    #[test]
    fn a_port_taken_before_wrangler_binds_it_is_retried_on_a_new_one() {
        let holder = TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = holder.local_addr().unwrap().port();
        TAKEN.with(|next| next.set(Some(taken)));
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello/wrangler.toml");
        let worker = Worker::start(config).expect("the worker starts on another port");
        assert_ne!(worker.base_url(), format!("http://127.0.0.1:{taken}"));
        assert_eq!(worker.get("/").unwrap().text(), "Hello from edgeway!");
        drop(holder);
    }
}
