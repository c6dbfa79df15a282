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

use std::fmt;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

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
        let root = workspace_root(&config)?;
        ensure_built(&root, &config)?;

        let dir = tempfile::Builder::new()
            .prefix("edgeway-worker-")
            .tempdir()
            .map_err(|e| fail(format!("temp dir: {e}")))?;
        let derived = derive_config(&config, &self.vars)?;
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

        let port = free_port()?;
        let inspector_port = free_port()?;
        let mut command = Command::new(root.join("node_modules/.bin/wrangler"));
        command
            .arg("dev")
            .arg("--config")
            .arg(&derived_path)
            .args(["--ip", "127.0.0.1", "--port", &port.to_string()])
            .args(["--inspector-port", &inspector_port.to_string()])
            .arg("--persist-to")
            .arg(dir.path().join("state"))
            .args(["--show-interactive-dev-session=false", "--log-level", "log"])
            .current_dir(config.parent().unwrap_or(&root))
            .env("PATH", tool_path(&root))
            .env("WRANGLER_SEND_METRICS", "false")
            // No network here: skip Miniflare's fetch of the real `request.cf` data.
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("WRANGLER_LOG_PATH", dir.path().join("wrangler-logs"))
            .stdin(Stdio::null());
        let group = Guarded::spawn(command, "wrangler (did `make toolchain` run?)")?;
        let worker = Worker {
            base_url: format!("http://127.0.0.1:{port}"),
            group,
            dir,
            agent: agent(),
        };
        worker.wait_ready(&self.ready_path, self.timeout)?;
        Ok(worker)
    }
}

/// A worker running in local workerd. Killed, with its whole process tree, on drop.
pub struct Worker {
    base_url: String,
    group: Guarded,
    dir: tempfile::TempDir,
    agent: ureq::Agent,
}

impl Worker {
    /// Configures a worker from its `wrangler.toml`.
    pub fn builder(config: impl AsRef<Path>) -> WorkerBuilder {
        WorkerBuilder {
            config: config.as_ref().to_owned(),
            vars: Vec::new(),
            secrets: Vec::new(),
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
        for (name, value) in headers {
            request = request.header(*name, *value);
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
            if Instant::now() > deadline {
                return Err(fail(format!(
                    "worker not ready after {timeout:?}; logs:\n{}",
                    self.logs()
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

/// A child process in its own process group, with its output captured, that
/// cannot outlive the test process.
///
/// A watchdog in the same group blocks on a pipe whose write end only this
/// process holds. However this process ends (normal exit, panic, SIGKILL), the
/// pipe closes and the watchdog kills the whole group. This also covers values
/// kept in statics, which never drop. On drop the group is killed at once.
struct Guarded {
    child: Child,
    // Held open: helper scripts exit when their stdin closes.
    _stdin: Option<std::process::ChildStdin>,
    pgid: i32,
    watchdog: Child,
    logs: Arc<Mutex<String>>,
    lines: Arc<(Mutex<Vec<String>>, std::sync::Condvar)>,
}

impl Guarded {
    fn spawn(mut command: Command, what: &str) -> Result<Self, HarnessError> {
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command
            .spawn()
            .map_err(|e| fail(format!("spawn {what}: {e}")))?;
        let logs = Arc::new(Mutex::new(String::new()));
        let lines = Arc::new((Mutex::new(Vec::new()), std::sync::Condvar::new()));
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        for (stream, is_stdout) in [
            (stdout.map(|s| Box::new(s) as Box<dyn Read + Send>), true),
            (stderr.map(|s| Box::new(s) as Box<dyn Read + Send>), false),
        ] {
            let Some(stream) = stream else { continue };
            let logs = logs.clone();
            let lines = lines.clone();
            thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    {
                        let mut logs = logs.lock().unwrap_or_else(|e| e.into_inner());
                        logs.push_str(&line);
                        logs.push('\n');
                    }
                    if is_stdout {
                        let (stdout_lines, ready) = &*lines;
                        stdout_lines
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(line);
                        ready.notify_all();
                    }
                }
            });
        }
        let pgid = child.id() as i32;
        let watchdog = Command::new("sh")
            .args(["-c", "cat >/dev/null; kill -KILL 0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(pgid)
            .spawn();
        match watchdog {
            Ok(watchdog) => Ok(Self {
                _stdin: child.stdin.take(),
                child,
                pgid,
                watchdog,
                logs,
                lines,
            }),
            Err(e) => {
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
                let _ = child.wait();
                Err(fail(format!("spawn watchdog: {e}")))
            }
        }
    }

    fn logs(&self) -> String {
        self.logs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The first stdout line that `matches`, waiting at most `timeout`.
    fn wait_line(
        &self,
        matches: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, HarnessError> {
        let deadline = Instant::now() + timeout;
        let (lines, ready) = &*self.lines;
        let mut guard = lines.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(line) = guard.iter().find(|l| matches(l)) {
                return Ok(line.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(fail(format!(
                    "no expected output after {timeout:?}; output:\n{}",
                    self.logs()
                )));
            }
            guard = ready
                .wait_timeout(guard, left.min(Duration::from_millis(200)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn alive(&self) -> bool {
        // Signal 0 checks existence; ESRCH means the whole group is gone.
        unsafe { libc::kill(-self.pgid, 0) == 0 }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        unsafe { libc::kill(-self.pgid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let _ = self.child.try_wait();
            let _ = self.watchdog.try_wait();
            if !self.alive() || Instant::now() > deadline {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        unsafe { libc::kill(-self.pgid, libc::SIGKILL) };
        let _ = self.child.wait();
        let _ = self.watchdog.wait();
        // Reaped processes vanish at once; give the kernel a moment for the rest.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.alive() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A helper process for e2e tests: a webhook receiver, a local AWS, a Lambda
/// emulator. Like a [`Worker`], it runs in its own process group, cannot outlive
/// the test process, and is killed on drop.
///
/// ```no_run
/// use edgeway::testing::Sidecar;
/// use std::process::Command;
/// let mut command = Command::new(".venv/bin/python");
/// command.arg("tests/support/lambda_front.py").args(["--backend", "http://127.0.0.1:9001"]);
/// let front = Sidecar::start(command, "the Lambda front").unwrap();
/// // Scripts announce themselves with one JSON line on stdout.
/// let info = front.announcement(std::time::Duration::from_secs(30)).unwrap();
/// println!("{}", info["endpoint"]);
/// ```
pub struct Sidecar {
    name: String,
    group: Guarded,
}

impl Sidecar {
    /// Spawns `command`. Its stdout and stderr are captured; its stdin is a pipe
    /// that stays open until the sidecar drops or the test process ends, so a
    /// script can block on stdin and exit when it closes.
    pub fn start(mut command: Command, name: &str) -> Result<Self, HarnessError> {
        command.stdin(Stdio::piped());
        Ok(Self {
            name: name.to_owned(),
            group: Guarded::spawn(command, name)?,
        })
    }

    /// The first stdout line that parses as a JSON object, waiting at most
    /// `timeout`.
    pub fn announcement(&self, timeout: Duration) -> Result<serde_json::Value, HarnessError> {
        let line = self
            .group
            .wait_line(|l| l.trim_start().starts_with('{'), timeout)
            .map_err(|e| fail(format!("{}: {e}", self.name)))?;
        serde_json::from_str(&line).map_err(|e| fail(format!("{}: {e}: {line}", self.name)))
    }

    /// Everything it printed so far.
    pub fn logs(&self) -> String {
        self.group.logs()
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("---- {} output ----\n{}", self.name, self.logs());
        }
    }
}

/// A response read to the end.
#[derive(Clone, Debug)]
pub struct TestResponse {
    /// The status code.
    pub status: u16,
    /// Headers with lowercase names, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl TestResponse {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// When the body is not JSON; the message shows the status and body.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "expected JSON ({e}); status {}, body: {}",
                self.status,
                self.text()
            )
        })
    }

    /// Asserts this is an RFC 9457 problem with `status`, and returns the document.
    ///
    /// # Panics
    /// When it is not.
    pub fn assert_problem(&self, status: u16) -> serde_json::Value {
        assert_eq!(self.status, status, "body: {}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            self.text()
        );
        let doc = self.json();
        assert_eq!(doc["status"], status);
        for field in ["type", "title", "detail"] {
            assert!(doc[field].is_string(), "problem without `{field}`: {doc}");
        }
        doc
    }
}

fn parse_response(bytes: &[u8]) -> Result<TestResponse, HarnessError> {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            fail(format!(
                "no complete response head in {:?}",
                String::from_utf8_lossy(bytes)
            ))
        })?;
    let head = String::from_utf8_lossy(&bytes[..split]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| fail(format!("bad status line in {head:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = bytes[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Ok(TestResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&data[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        data = &data[eol + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
    out
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

fn free_port() -> Result<u16, HarnessError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| fail(format!("no free port: {e}")))
}

/// The directory holding `Cargo.lock` above `config`.
fn workspace_root(config: &Path) -> Result<PathBuf, HarnessError> {
    config
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .map(Path::to_owned)
        .ok_or_else(|| fail(format!("no Cargo.lock above {}", config.display())))
}

/// PATH with the project's Node 22, wrangler, esbuild and wasm-opt first.
fn tool_path(root: &Path) -> String {
    let bin = root.join("node_modules/.bin");
    match std::env::var("PATH") {
        Ok(path) => format!("{}:{path}", bin.display()),
        Err(_) => bin.display().to_string(),
    }
}

fn read_config(config: &Path) -> Result<serde_json::Value, HarnessError> {
    let text =
        fs::read_to_string(config).map_err(|e| fail(format!("{}: {e}", config.display())))?;
    toml::from_str(&text).map_err(|e| fail(format!("{}: {e}", config.display())))
}

/// The config wrangler runs: the original minus `[build]` (the harness already
/// built), with absolute paths and the test's variable overrides.
fn derive_config(config: &Path, vars: &[(String, String)]) -> Result<String, HarnessError> {
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

/// Runs the config's `[build] command` unless the sources are unchanged since the
/// last successful build. A file lock serializes builds across test processes.
fn ensure_built(root: &Path, config: &Path) -> Result<(), HarnessError> {
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
        .env("PATH", tool_path(root))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_raw_responses_including_chunked() {
        let res = parse_response(b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!(res.status, 413);
        assert_eq!(res.header("content-type"), Some("text/plain"));
        assert_eq!(res.text(), "abcde");
        assert!(parse_response(b"garbage").is_err());
    }

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
