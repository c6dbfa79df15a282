//! The fault-injected soak: many events fanned out to three webhook subscribers
//! (healthy; flaky, failing 30% with 500/429 plus latency; down for a while in the
//! middle of the run) and jobs sent to a Lambda that throttles 20% of calls.
//!
//! Size and outage come from the environment, so `make test` runs a small version
//! and `make soak` the full one (see RELIABILITY.md):
//! `SOAK_EVENTS` (default 200), `SOAK_JOBS` (20), `SOAK_OUTAGE_SECONDS` (5).
//! Everything runs on loopback, is bounded, and stops by itself; no timing is
//! asserted. The figures are printed and written to `target/soak/report.json`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{python, start_pipeline, ROOT};
use edgeway::testing::Sidecar;
use serde_json::{json, Value};

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const ROUTES: [&str; 3] = ["/healthy", "/flaky", "/outage"];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn get_json(url: &str) -> Value {
    let text = ureq::get(url)
        .call()
        .unwrap()
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn fault_injected_soak_loses_nothing() {
    let events = env_usize("SOAK_EVENTS", 200);
    let jobs = env_usize("SOAK_JOBS", 20);
    let outage = env_usize("SOAK_OUTAGE_SECONDS", 5);
    let started = Instant::now();

    let mut command = python("soak_receiver.py");
    command.args([SECRET, "7"]);
    let receiver = Sidecar::start(command, "soak receiver").unwrap();
    let port = receiver.announcement(Duration::from_secs(30)).unwrap()["port"]
        .as_u64()
        .unwrap();
    let receiver_url = format!("http://127.0.0.1:{port}");
    let pipeline = start_pipeline(&["--throttle-rate", "0.2"]);
    let gateway = &pipeline.gateway;

    let mut subscriptions = BTreeMap::new();
    for route in ROUTES {
        let res = gateway
            .post_json(
                "/v1/topics/soak/subscriptions",
                &json!({"target": {"kind": "webhook", "url": format!("{receiver_url}{route}"),
                        "secrets": [SECRET]}}),
            )
            .unwrap();
        assert_eq!(res.status, 201, "{}", res.text());
        subscriptions.insert(res.json()["id"].as_str().unwrap().to_owned(), route);
    }

    // Publish from four clients; start the outage halfway through.
    let published = Arc::new(Mutex::new(Vec::with_capacity(events)));
    let publish_errors = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let base = gateway.base_url().to_owned();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (published, errors, next, base, receiver_url) = (
                published.clone(),
                publish_errors.clone(),
                next.clone(),
                base.clone(),
                receiver_url.clone(),
            );
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n >= events {
                        break;
                    }
                    if n == events / 2 {
                        agent
                            .post(format!("{receiver_url}/_outage?seconds={outage}"))
                            .send_empty()
                            .unwrap();
                    }
                    let event = json!({"type": "soak.tick", "data": {"n": n}}).to_string();
                    let res = agent
                        .post(format!("{base}/v1/topics/soak/events"))
                        .header("content-type", "application/json")
                        .header("authorization", format!("Bearer {}", common::ROOT_KEY))
                        .send(event.as_bytes());
                    match res {
                        Ok(mut res) if res.status() == 202 => {
                            let text = res.body_mut().read_to_string().unwrap();
                            let body: Value = serde_json::from_str(&text).unwrap();
                            assert_eq!(body["matched"], 3);
                            published
                                .lock()
                                .unwrap()
                                .push(body["id"].as_str().unwrap().to_owned());
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            })
        })
        .collect();

    // Jobs, meanwhile.
    let mut job_ids = Vec::new();
    for n in 0..jobs {
        let res = gateway
            .post_json(
                "/v1/jobs/wordcount",
                &json!({"text": format!("soak job {n} of {jobs}")}),
            )
            .unwrap();
        assert_eq!(res.status, 202, "{}", res.text());
        job_ids.push(res.json()["id"].as_str().unwrap().to_owned());
    }
    for client in clients {
        client.join().unwrap();
    }
    let publish_done = started.elapsed();
    let published = published.lock().unwrap().clone();
    assert_eq!(
        publish_errors.load(Ordering::SeqCst),
        0,
        "publishing clients saw errors"
    );
    assert_eq!(published.len(), events);

    // Settle: whatever the receiver has not got must end `failed` in the delivery
    // log (with a reason) or arrive. Poll only those, until none is in flight.
    let deadline = Instant::now() + Duration::from_secs(240 + 2 * outage as u64);
    let mut failed: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    let mut logged_but_not_received;
    loop {
        let stats = get_json(&format!("{receiver_url}/stats"));
        let mut pending = Vec::new();
        for route in ROUTES {
            let got: BTreeSet<&str> = stats[route]["delivered_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            for id in &published {
                if !got.contains(id.as_str()) {
                    pending.push((id.clone(), route));
                }
            }
        }
        failed.clear();
        logged_but_not_received = 0;
        let mut in_flight = 0;
        let mut shown_cache: BTreeMap<String, Value> = BTreeMap::new();
        for (event, route) in &pending {
            let shown = shown_cache
                .entry(event.clone())
                .or_insert_with(|| gateway.get(&format!("/v1/events/{event}")).unwrap().json());
            let delivery = shown["deliveries"].as_array().and_then(|ds| {
                ds.iter().find(|d| {
                    subscriptions.get(d["subscription_id"].as_str().unwrap()) == Some(route)
                })
            });
            match delivery.map(|d| (d["state"].as_str().unwrap(), d)) {
                Some(("failed", d)) => failed.entry(route).or_default().push((
                    event.clone(),
                    d["last_error"].as_str().unwrap_or("").to_owned(),
                )),
                Some(("delivered", _)) => logged_but_not_received += 1,
                _ => in_flight += 1,
            }
        }
        if in_flight == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{in_flight} deliveries still in flight at the deadline"
        );
        std::thread::sleep(Duration::from_secs(2));
    }

    // Jobs: each ends done, or failed with a reason.
    let mut jobs_done = 0;
    let mut jobs_failed = Vec::new();
    let mut job_attempts = 0;
    for id in &job_ids {
        let job = gateway.wait_for(
            &format!("job {id} to end"),
            Duration::from_secs(180),
            || {
                let job = gateway.get(&format!("/v1/jobs/{id}")).ok()?.json();
                matches!(job["status"].as_str(), Some("done" | "failed")).then_some(job)
            },
        );
        job_attempts += job["attempts"].as_u64().unwrap();
        if job["status"] == "done" {
            jobs_done += 1;
        } else {
            let reason = job["error"].as_str().unwrap_or("");
            assert!(!reason.is_empty(), "job {id} failed without a reason");
            jobs_failed.push(reason.to_owned());
        }
    }
    let wall = started.elapsed();

    // Dead letters recorded in KV: one per failed delivery and failed job. The DLQ
    // consumer records each in a batch of its own, a moment after the delivery or
    // job is marked failed, so wait (bounded) for the count, then compare exactly.
    let expected_dead_letters = ROUTES
        .iter()
        .map(|route| failed.get(route).map_or(0, Vec::len))
        .sum::<usize>()
        + jobs_failed.len();
    let dead_letters = gateway.wait_for(
        "every dead letter to be recorded in KV",
        Duration::from_secs(60),
        || {
            let listed = gateway.get("/v1/kv?prefix=dead-letter:").ok()?.json();
            let count = listed.as_array()?.len();
            (count >= expected_dead_letters).then_some(count)
        },
    );

    let stats = get_json(&format!("{receiver_url}/stats"));
    let mut report = json!({
        "events": events, "subscribers": 3, "jobs": jobs, "outage_seconds": outage,
        "publish_seconds": publish_done.as_secs_f64(), "wall_seconds": wall.as_secs_f64(),
        "publish_errors": 0, "dead_letters_in_kv": dead_letters,
        "jobs_done": jobs_done, "jobs_failed": jobs_failed.len(), "job_attempts": job_attempts,
    });
    let mut total_failed = 0;
    for route in ROUTES {
        let r = &stats[route];
        let delivered = r["delivered_ids"].as_array().unwrap().len();
        let failed_here = failed.get(route).map_or(0, Vec::len);
        total_failed += failed_here;
        let mut delays: Vec<f64> = r["delays_ms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        delays.sort_by(f64::total_cmp);
        assert_eq!(
            r["unverified"], 0,
            "{route}: a delivery failed verification"
        );
        for (event, reason) in failed.get(route).into_iter().flatten() {
            assert!(
                !reason.is_empty(),
                "{route}: {event} failed without a reason"
            );
        }
        // Zero lost: every event was received, or failed with a reason.
        assert_eq!(
            delivered + failed_here,
            events,
            "{route}: {delivered} delivered + {failed_here} failed != {events}"
        );
        report[route.trim_start_matches('/')] = json!({
            "delivered": delivered,
            "dead_lettered": failed_here,
            "attempts": r["attempts"],
            "retried_attempts": r["attempts"].as_u64().unwrap() - delivered as u64,
            "refused_by_receiver": r["refused"],
            "duplicates": r["duplicates"],
            "delay_ms_p50": percentile(&delays, 50.0),
            "delay_ms_p99": percentile(&delays, 99.0),
        });
    }
    assert_eq!(
        logged_but_not_received, 0,
        "logged as delivered but never received"
    );
    assert_eq!(
        dead_letters,
        total_failed + jobs_failed.len(),
        "every failed delivery and job sits in the DLQ"
    );
    assert_eq!(gateway.get("/healthz").unwrap().status, 200);

    let dir = format!("{ROOT}/target/soak");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        format!("{dir}/report.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    eprintln!(
        "soak report: {}",
        serde_json::to_string_pretty(&report).unwrap()
    );
}
