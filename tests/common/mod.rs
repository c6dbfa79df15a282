//! Set-ups shared by the e2e tests that need more than one process.

#![allow(dead_code)]

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use edgeway::testing::{Sidecar, Worker, WorkerBuilder};

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The gateway's JOBS_SIGNING_KEY in tests; tests use it to forge and replay.
pub const SIGNING_KEY: &str = "e2e-jobs-signing-key-not-a-real-secret-0123456789";

/// The gateway's root API key in tests (its `EDGEWAY_ROOT_KEY` secret).
pub const ROOT_KEY: &str = "e2e-root-api-key-not-a-real-secret-0123456789";

/// `builder` with the root key as the gateway's secret, sent on every request
/// the harness makes: the management API is closed without it.
pub fn signed_in(builder: WorkerBuilder) -> WorkerBuilder {
    builder
        .secret("EDGEWAY_ROOT_KEY", ROOT_KEY)
        .header("authorization", format!("Bearer {ROOT_KEY}"))
}

/// The AWS secret the pipeline's gateway holds: distinctive, so a log grep finds it.
pub const AWS_TEST_SECRET: &str = "aws-secret-e2e-Zq81vB47tW";

/// A script from `tests/support` under the project's venv.
pub fn python(script: &str) -> Command {
    let mut command = Command::new(format!("{ROOT}/.venv/bin/python"));
    command.arg(format!("{ROOT}/tests/support/{script}"));
    command
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The root gateway, with jobs pointed at `endpoint` and local webhooks allowed.
pub fn gateway_for(endpoint: &str, key_id: &str, secret: &str, function: &str) -> Worker {
    gateway_builder(endpoint, key_id, secret, function)
        .start()
        .expect("gateway starts")
}

/// [`gateway_for`], before it starts, for tests that set more.
pub fn gateway_builder(
    endpoint: &str,
    key_id: &str,
    secret: &str,
    function: &str,
) -> WorkerBuilder {
    signed_in(Worker::builder(format!("{ROOT}/wrangler.toml")))
        .secret("JOBS_SIGNING_KEY", SIGNING_KEY)
        .secret("AWS_ACCESS_KEY_ID", key_id)
        .secret("AWS_SECRET_ACCESS_KEY", secret)
        .var("AWS_REGION", "us-east-1")
        .var("LAMBDA_ENDPOINT", endpoint)
        .var("JOBS_FUNCTION", function)
        .var("WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
        // Usage reported every second, so tests see it without waiting a minute.
        .var("OPS_FLUSH_SECONDS", "1")
        .ready_path("/healthz")
}

/// `tests/support/payments.py`, the payment service the gateway's orders
/// charge: the sidecar (keep it) and its base URL.
pub fn start_payments() -> (Sidecar, String) {
    let payments = Sidecar::start(python("payments.py"), "payments").expect("payments start");
    let port = payments.announcement(Duration::from_secs(30)).unwrap()["port"]
        .as_u64()
        .unwrap();
    (payments, format!("http://127.0.0.1:{port}"))
}

/// The whole jobs loop on one machine: the gateway, the Invoke front (which
/// throttles each job's first two invocations) and `cargo lambda watch` running
/// `examples/lambda-jobs`.
pub struct Pipeline {
    pub gateway: Worker,
    pub front: Sidecar,
    _emulator: Sidecar,
}

pub fn pipeline() -> &'static Pipeline {
    static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    PIPELINE.get_or_init(|| start_pipeline(&["--throttle-first", "2"]))
}

/// Starts the jobs loop with `front_args` for the Invoke front's fault injection.
pub fn start_pipeline(front_args: &[&str]) -> Pipeline {
    start_pipeline_with(front_args, |gateway| gateway)
}

/// [`start_pipeline`], with `configure` setting more on the gateway.
pub fn start_pipeline_with(
    front_args: &[&str],
    configure: impl FnOnce(WorkerBuilder) -> WorkerBuilder,
) -> Pipeline {
    {
        let emulator_port = free_port();
        let mut command = Command::new("cargo");
        command
            .args(["lambda", "watch", "--ignore-changes", "--quiet"])
            .args(["-A", "127.0.0.1", "-P", &emulator_port.to_string()])
            .args(["-p", "lambda-jobs"])
            .current_dir(ROOT)
            .env(
                "PATH",
                format!(
                    "{ROOT}/.venv/bin:{}",
                    std::env::var("PATH").unwrap_or_default()
                ),
            );
        let emulator = Sidecar::start(command, "cargo lambda watch").expect("emulator starts");

        let mut command = python("lambda_front.py");
        command
            .args(["--backend", &format!("http://127.0.0.1:{emulator_port}")])
            .args(front_args);
        let front = Sidecar::start(command, "lambda front").expect("front starts");
        let front_url = front.announcement(Duration::from_secs(30)).unwrap()["endpoint"]
            .as_str()
            .unwrap()
            .to_owned();

        let gateway = configure(gateway_builder(
            &front_url,
            "AKIDLOCAL",
            AWS_TEST_SECRET,
            "lambda-jobs",
        ))
        .start()
        .expect("gateway starts");
        Pipeline {
            gateway,
            front,
            _emulator: emulator,
        }
    }
}

/// A workflow instance's trace (`steps` in its view) as `name#attempt
/// outcome` lines, in order.
pub fn trace_lines(doc: &serde_json::Value) -> Vec<String> {
    doc["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            format!(
                "{}#{} {}",
                s["name"].as_str().unwrap(),
                s["attempt"],
                s["outcome"].as_str().unwrap()
            )
        })
        .collect()
}

/// Whether a workflow instance's view (`engine` the engine's status) shows it
/// has ended: `complete`, `errored` or `terminated`.
pub fn instance_ended(doc: &serde_json::Value) -> bool {
    matches!(
        doc["engine"]["status"].as_str(),
        Some("complete" | "errored" | "terminated")
    )
}
