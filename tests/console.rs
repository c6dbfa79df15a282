//! The `www/` console in real headless Chromium (Debian's `chromium`, driven by
//! `playwright-core`), against the gateway with the whole jobs loop behind it:
//! sign in with an API key (after a wrong one is refused), publish an event and
//! see it delivered, browse KV, run a word count and a
//! thumbnail on Lambda, place an order and watch its workflow's steps turn
//! complete, and read an API error, all at phone width. The screenshot
//! is kept in `target/test-artifacts/console.png`.

mod common;

use std::process::Command;

use common::{start_payments, start_pipeline_with, ROOT};

#[test]
fn the_console_publishes_runs_jobs_and_browses_kv_in_chromium() {
    let (_payments, payments_url) = start_payments();
    let pipeline = start_pipeline_with(&["--throttle-first", "2"], |gateway| {
        gateway.var("PAYMENT_URL", payments_url)
    });
    let gateway = &pipeline.gateway;
    let artifacts = format!("{ROOT}/target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = format!("{artifacts}/console.png");
    let _ = std::fs::remove_file(&screenshot);

    let output = Command::new(format!("{ROOT}/node_modules/.bin/node"))
        .arg(format!("{ROOT}/tests/browser/console.mjs"))
        .arg(gateway.base_url())
        .arg(format!("{ROOT}/tests/fixtures/gradient.png"))
        .arg(&screenshot)
        .arg(common::ROOT_KEY)
        .current_dir(ROOT)
        .output()
        .expect("run node (did `make toolchain` install node_modules?)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser run failed:\n{stdout}\n{stderr}\ngateway logs:\n{}",
        gateway.logs()
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["thumbnail"], serde_json::json!([128, 85]));
    assert_eq!(summary["order_status"], "completed");
    assert!(summary["routes"].as_u64().unwrap() > 10);
    let png = std::fs::read(&screenshot).expect("the screenshot was saved");
    assert!(png.starts_with(b"\x89PNG"));
}
