//! Publish latency for 1, 10 and 50 matching subscribers, as a ratio to the latency
//! of one queue send from the same gateway in the same run.
//!
//!   cargo run --release -p edgeway-fanout-bench -- [--rounds 60]
//!
//! The gateway runs in local workerd (`wrangler dev`, the only way to get local
//! Queues). Latency is what the worker itself measures (`server-timing` from the
//! timing middleware; the Workers clock advances across I/O, in whole
//! milliseconds). Subscribers are webhooks to a loopback sink that answers 204;
//! delivery happens after the publish returns, so it is not part of the measured
//! latency. Bounded: rounds × 5 series.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::thread;

use edgeway::testing::Worker;
use serde_json::json;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// A loopback sink that answers every request with 204.
fn sink() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the sink");
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let _ = reader
                        .get_mut()
                        .write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
                }
            });
        }
    });
    port
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .skip_while(|a| a != "--rounds")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let port = sink();
    // The management API needs a key: the root key, as a local secret.
    let root_key = edgeway::platform::random_hex::<32>();
    let gateway = Worker::builder(format!("{root}/wrangler.toml"))
        .secret("EDGEWAY_ROOT_KEY", root_key.clone())
        .header("authorization", format!("Bearer {root_key}"))
        .var("WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
        .ready_path("/healthz")
        .start()
        .expect("gateway starts");
    let fanouts = [1usize, 10, 50];
    for n in fanouts {
        for _ in 0..n {
            let body = json!({"target": {"kind": "webhook", "url": format!("http://127.0.0.1:{port}/"), "secrets": [SECRET]}});
            let res = gateway
                .post_json(&format!("/v1/topics/bench{n}/subscriptions"), &body)
                .unwrap();
            assert_eq!(res.status, 201, "{}", res.text());
        }
    }
    // The worker's own measurement (`server-timing`, from the timing middleware):
    // the client-side round trip through wrangler's dev proxy adds a fixed ~90 ms
    // that would swamp the difference being measured.
    let time = |method: &str, path: &str, body: &[u8], content_type: &str| {
        let res = gateway
            .send(
                method,
                path,
                &[("content-type", content_type)],
                body.to_vec(),
            )
            .unwrap();
        assert!(
            matches!(res.status, 200 | 202),
            "{path}: {} {}",
            res.status,
            res.text()
        );
        res.header("server-timing")
            .and_then(|t| t.strip_prefix("app;dur="))
            .and_then(|d| d.parse::<f64>().ok())
            .expect("server-timing from the timing middleware")
    };
    let event = json!({"type": "bench", "data": {"x": 1}}).to_string();
    // A key to read back, for the KV read next to the Durable Object call.
    let res = gateway
        .send(
            "PUT",
            "/v1/kv/bench-key",
            &[("content-type", "text/plain")],
            b"v".to_vec(),
        )
        .unwrap();
    assert!(res.status < 300, "{}", res.text());
    let mut samples: Vec<(String, Vec<f64>)> = vec![
        ("one queue send".into(), Vec::new()),
        ("GET /healthz (no I/O)".into(), Vec::new()),
        ("one KV read (GET /v1/kv/{key})".into(), Vec::new()),
        (
            "one Durable Object call (GET /v1/topics/{topic}/subscriptions)".into(),
            Vec::new(),
        ),
    ];
    for n in fanouts {
        samples.push((format!("publish to {n}"), Vec::new()));
    }
    // Interleaved, after a warm-up round, so drift hits every series alike.
    for round in 0..=rounds {
        let mut row = vec![
            time("POST", "/v1/queued/kv/bench", b"v", "text/plain"),
            time("GET", "/healthz", b"", "text/plain"),
            time("GET", "/v1/kv/bench-key", b"", "text/plain"),
            time("GET", "/v1/topics/bench1/subscriptions", b"", "text/plain"),
        ];
        for n in fanouts {
            row.push(time(
                "POST",
                &format!("/v1/topics/bench{n}/events"),
                event.as_bytes(),
                "application/json",
            ));
        }
        if round > 0 {
            for (series, value) in samples.iter_mut().zip(row) {
                series.1.push(value);
            }
        }
    }
    // After every publish and its deliveries: the isolate's linear memory, which
    // only grows, so this is its high-water mark.
    let memory = gateway.get("/healthz").unwrap().json()["wasm_memory_bytes"]
        .as_u64()
        .unwrap_or(0);
    println!(
        "gateway wasm memory after the run: {:.1} MiB (target <= 16 MiB)",
        memory as f64 / (1 << 20) as f64
    );
    println!();
    let anchor = median(samples[0].1.clone());
    let kv_read = median(samples[2].1.clone());
    let object_call = median(samples[3].1.clone());
    println!(
        "a Durable Object call vs a KV read: {:.2}× ({object_call:.2} ms vs {kv_read:.2} ms, the worker's own timing)",
        object_call / kv_read.max(0.001)
    );
    println!();
    println!("| Operation | median ms | vs one send |");
    println!("|---|---|---|");
    for (name, values) in samples {
        let m = median(values);
        println!("| {name} | {m:.2} | {:.2}× |", m / anchor);
    }
}
