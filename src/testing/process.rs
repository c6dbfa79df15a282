//! Child processes that cannot outlive the test: wrangler and workerd, and the
//! sidecars (webhook receivers, a local AWS) the e2e tests start.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::{fail, HarnessError};

/// A child process in its own process group, with its output captured, that
/// cannot outlive the test process.
///
/// A watchdog in the same group blocks on a pipe whose write end only this
/// process holds. However this process ends (normal exit, panic, SIGKILL), the
/// pipe closes and the watchdog kills the whole group. This also covers values
/// kept in statics, which never drop. On drop the group is killed at once.
pub(super) struct Guarded {
    child: Child,
    // Held open: helper scripts exit when their stdin closes.
    _stdin: Option<std::process::ChildStdin>,
    pub(super) pgid: i32,
    watchdog: Child,
    logs: Arc<Mutex<String>>,
    lines: Arc<(Mutex<Vec<String>>, std::sync::Condvar)>,
}

impl Guarded {
    pub(super) fn spawn(mut command: Command, what: &str) -> Result<Self, HarnessError> {
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

    pub(super) fn logs(&self) -> String {
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

impl Guarded {
    /// SIGKILL to the whole group, no grace period: what a crash looks like.
    pub(super) fn kill_now(&mut self) {
        unsafe { libc::kill(-self.pgid, libc::SIGKILL) };
        let _ = self.child.wait();
        let _ = self.watchdog.try_wait();
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

/// Removes a directory once the test process is gone, however it ends.
///
/// Workers kept in statics never drop, so their `TempDir` never deletes their
/// local state (tens of MB each, dozens per `make test`). A shell in its own
/// process group blocks on a pipe only this process holds; when the pipe
/// closes it waits for the killed workerd to let go, then deletes the tree.
pub(super) struct RemoveOnExit {
    _stdin: std::process::ChildStdin,
    shell: Child,
}

impl Drop for RemoveOnExit {
    /// A worker that drops removes its own directory (`TempDir`); the shell
    /// is only for the ones that never drop.
    fn drop(&mut self) {
        let _ = self.shell.kill();
        let _ = self.shell.wait();
    }
}

impl RemoveOnExit {
    pub(super) fn watch(dir: &std::path::Path) -> Result<Self, HarnessError> {
        let mut shell = Command::new("sh")
            .args(["-c", "cat >/dev/null; sleep 2; rm -rf -- \"$0\""])
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| fail(format!("spawn the temp dir cleaner: {e}")))?;
        let stdin = shell.stdin.take().expect("piped stdin");
        Ok(Self {
            _stdin: stdin,
            shell,
        })
    }
}

/// A helper process for e2e tests: a webhook receiver, a local AWS, a Lambda
/// emulator. Like a [`Worker`](super::Worker), it runs in its own process group, cannot outlive
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
