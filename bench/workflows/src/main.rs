//! What a durable step costs, against what hand-chaining queue messages
//! costs, in the same run:
//! - **per step**: instances of a workflow with 0 and with 20 no-op
//!   `step.run`s, each ending with a step that reads the clock; the difference
//!   of their durations (instance creation to last step, the worker's own
//!   clock), divided by 20;
//! - **a queue round trip**: a message sent from a request and its consumer's
//!   arrival time (the same worker; the consumer's `max_batch_timeout` of 1 s
//!   is part of a queue hop, as it is of every hop of a hand-chained process);
//! - **creation throughput**: instances created per second by concurrent
//!   requests, against queue messages sent per second by the same requests.
//!
//!   cargo run --release -p edgeway-workflow-bench -- [--rounds 10] [--burst 40]
//!
//! The worker is the e2e queues worker (`tests/workers/queues`) in local
//! workerd under `wrangler dev`: Miniflare's Workflows engine is the only local
//! one, so these are ratios on one machine, not production figures. Bounded:
//! rounds × 3 series, then two bursts.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use edgeway::testing::Worker;
use serde_json::{json, Value};

/// The no-op steps of the long instance.
const STEPS: u32 = 20;

fn arg(name: &str, default: usize) -> usize {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// Polls `probe` every 20 ms until it answers, for at most a minute.
fn until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} took over a minute");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start(worker: &Worker, id: &str, steps: u32) {
    let res = worker
        .post_json(&format!("/bench-flows/{id}"), &json!({ "steps": steps }))
        .unwrap();
    assert_eq!(res.status, 201, "{}", res.text());
}

/// The instance's duration by its own clock: creation to its last step.
fn duration(worker: &Worker, id: &str) -> f64 {
    let output: Value = until(&format!("instance {id}"), || {
        let status = worker.get(&format!("/bench-flows/{id}")).unwrap().json();
        match status["status"].as_str() {
            Some("complete") => Some(status["output"].clone()),
            Some("errored" | "terminated") => panic!("instance {id} failed: {status}"),
            _ => None,
        }
    });
    output["ended_ms"].as_f64().unwrap() - output["created_ms"].as_f64().unwrap()
}

fn send_ping(worker: &Worker, id: &str) {
    let res = worker
        .post_json(&format!("/enqueue/ping?id={id}"), &json!({}))
        .unwrap();
    assert_eq!(res.status, 202, "{}", res.text());
}

/// A message's round trip: sent from a request, arrived at its consumer.
fn round_trip(worker: &Worker, id: &str) -> f64 {
    let sent = now_ms();
    send_ping(worker, id);
    let arrived: f64 = until(&format!("message {id}"), || {
        let res = worker.get(&format!("/kv/ping:{id}")).unwrap();
        (res.status == 200).then(|| res.text().parse().unwrap())
    });
    arrived - sent
}

/// Items per second when `burst` calls of `call` run on 8 threads.
fn throughput(burst: usize, call: impl Fn(usize) + Sync) -> f64 {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for lane in 0..8 {
            let call = &call;
            scope.spawn(move || {
                for i in (lane..burst).step_by(8) {
                    call(i);
                }
            });
        }
    });
    burst as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let rounds = arg("--rounds", 10);
    let burst = arg("--burst", 40);
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let worker = Worker::builder(format!("{root}/tests/workers/queues/wrangler.toml"))
        .start()
        .expect("the queues worker starts");

    let (mut queue, mut short, mut long) = (Vec::new(), Vec::new(), Vec::new());
    // Interleaved, after a warm-up round, so drift hits every series alike.
    for round in 0..=rounds {
        let q = round_trip(&worker, &format!("ping-{round}"));
        let id0 = format!("short-{round}");
        let id20 = format!("long-{round}");
        start(&worker, &id0, 0);
        let d0 = duration(&worker, &id0);
        start(&worker, &id20, STEPS);
        let d20 = duration(&worker, &id20);
        if round > 0 {
            queue.push(q);
            short.push(d0);
            long.push(d20);
        }
    }
    let creates = throughput(burst, |i| start(&worker, &format!("burst-{i}"), 1));
    let sends = throughput(burst, |i| send_ping(&worker, &format!("burst-{i}")));

    let queue = median(queue);
    let (short, long) = (median(short), median(long));
    let per_step = (long - short).max(0.0) / f64::from(STEPS);
    println!("| Measure | median | vs the queue anchor |");
    println!("|---|---|---|");
    println!("| a queue round trip (send to consumer) | {queue:.1} ms | 1.00× |");
    println!(
        "| an instance with 0 no-op steps (creation to last step) | {short:.1} ms | {:.2}× |",
        short / queue
    );
    println!(
        "| an instance with {STEPS} no-op steps | {long:.1} ms | {:.2}× |",
        long / queue
    );
    println!(
        "| **one `step.run` of a no-op** | **{per_step:.2} ms** | **{:.3}×** |",
        per_step / queue
    );
    println!(
        "| instances created per second ({burst} requests, 8 at a time) | {creates:.1}/s | {:.2}× the {sends:.1} messages sent per second |",
        creates / sends
    );
}
