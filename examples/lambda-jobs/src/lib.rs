//! The AWS Lambda side of edgeway jobs.
//!
//! The edge invokes this function asynchronously with a [`JobInvocation`]. It fetches
//! a large input through the invocation's signed URL, does work that does not belong
//! at the edge (decoding and resizing an image; counting words; printing a
//! shipping label for the gateway's order workflow), and POSTs a
//! [`JobOutcome`] to the callback URL, signed per Standard Webhooks with the job's
//! secret. `main.rs` wires [`handle`] to `lambda_runtime`.

use std::io::Cursor;
use std::time::Duration;

use base64::Engine;
use edgeway_protocol::jobs::{JobInvocation, JobOutcome};
use edgeway_protocol::webhook::{signature_headers, WebhookSecret};
use serde_json::{json, Value};

/// The longest side of a thumbnail, in pixels.
pub const THUMBNAIL_SIZE: u32 = 128;
/// The largest input the function fetches.
pub const INPUT_LIMIT: u64 = 8 << 20;
/// Callback attempts before giving up (the edge's job then stays `running`).
const CALLBACK_ATTEMPTS: u32 = 4;

/// Runs one job and reports it: the whole life of an invocation.
pub fn handle(invocation: &JobInvocation) -> Result<JobOutcome, String> {
    invocation.check().map_err(|e| e.detail().to_owned())?;
    let outcome = run(invocation);
    post_callback(invocation, &outcome)?;
    Ok(outcome)
}

/// Does the work. Bad input is a `failed` outcome, not an error: retrying it
/// would fail the same way.
pub fn run(invocation: &JobInvocation) -> JobOutcome {
    let result = match invocation.kind.as_str() {
        "thumbnail" => fetch_input(invocation).and_then(|bytes| thumbnail(&bytes)),
        "wordcount" => input_json(invocation).and_then(|input| wordcount(&input)),
        "label" => input_json(invocation).and_then(|input| shipping_label(&input)),
        other => Err(format!("this function does not run {other:?} jobs")),
    };
    match result {
        Ok(output) => JobOutcome::Done { output },
        Err(error) => JobOutcome::Failed { error },
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(20)))
        .http_status_as_error(false)
        .build()
        .into()
}

fn fetch_input(invocation: &JobInvocation) -> Result<Vec<u8>, String> {
    let Some(url) = &invocation.input_url else {
        return Err("this job kind needs its input by URL".into());
    };
    let mut response = agent()
        .get(url)
        .call()
        .map_err(|e| format!("fetching the input failed: {e}"))?;
    if response.status() != 200 {
        return Err(format!("fetching the input answered {}", response.status()));
    }
    response
        .body_mut()
        .with_config()
        .limit(INPUT_LIMIT)
        .read_to_vec()
        .map_err(|e| format!("reading the input failed: {e}"))
}

fn input_json(invocation: &JobInvocation) -> Result<Value, String> {
    match &invocation.input {
        Some(input) => Ok(input.clone()),
        None => {
            let bytes = fetch_input(invocation)?;
            serde_json::from_slice(&bytes).map_err(|e| format!("the input is not JSON: {e}"))
        }
    }
}

/// A PNG thumbnail no larger than [`THUMBNAIL_SIZE`] on its longest side, as a
/// data URL, with both sizes.
pub fn thumbnail(bytes: &[u8]) -> Result<Value, String> {
    let image =
        image::load_from_memory(bytes).map_err(|e| format!("the input is not an image: {e}"))?;
    let small = image.thumbnail(THUMBNAIL_SIZE, THUMBNAIL_SIZE);
    let mut png = Vec::new();
    small
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| format!("encoding the thumbnail failed: {e}"))?;
    Ok(json!({
        "original": { "width": image.width(), "height": image.height() },
        "width": small.width(),
        "height": small.height(),
        "data_url": format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&png)
        ),
    }))
}

/// Words, lines and the five most frequent words (case-folded).
pub fn wordcount(input: &Value) -> Result<Value, String> {
    let text = input
        .get("text")
        .and_then(Value::as_str)
        .ok_or("the input must be {\"text\": \"…\"}")?;
    let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
    let mut words = 0u64;
    for word in text
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
    {
        words += 1;
        *counts.entry(word.to_lowercase()).or_default() += 1;
    }
    let mut top: Vec<(String, u64)> = counts.into_iter().collect();
    // Most frequent first; ties in alphabetical order, so the output is stable.
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(5);
    Ok(json!({
        "words": words,
        "lines": text.lines().count(),
        "top": top,
    }))
}

/// The address lines a label needs, in the order they are printed.
const ADDRESS_FIELDS: [&str; 5] = ["name", "line1", "city", "postcode", "country"];

/// A shipping label for `{"order_id": "…", "ship_to": {name, line1, city,
/// postcode, country}}`: a tracking number derived from the order (so a
/// retried job prints the same label) and the label's text.
pub fn shipping_label(input: &Value) -> Result<Value, String> {
    let order = input
        .get("order_id")
        .and_then(Value::as_str)
        .ok_or("the input must name its order_id")?;
    let ship_to = input
        .get("ship_to")
        .ok_or("the input must carry a ship_to address")?;
    let mut lines = Vec::with_capacity(ADDRESS_FIELDS.len());
    for field in ADDRESS_FIELDS {
        match ship_to.get(field).and_then(Value::as_str).map(str::trim) {
            Some(line) if !line.is_empty() => lines.push(line),
            _ => return Err(format!("the address has no {field}")),
        }
    }
    let tracking = tracking_number(order);
    Ok(json!({
        "carrier": "edgeway-post",
        "tracking": tracking,
        "text": format!("SHIP TO\n{}\nTRACKING {tracking}\nORDER {order}", lines.join("\n")),
    }))
}

/// `EW` and ten digits, the same for the same order: FNV-1a of the order id.
fn tracking_number(order: &str) -> String {
    let hash = order.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("EW{:010}", hash % 10_000_000_000)
}

/// POSTs the outcome, signed with the job's secret. A 409 means the edge already
/// has an outcome for this job (an earlier attempt got through), which is fine.
pub fn post_callback(invocation: &JobInvocation, outcome: &JobOutcome) -> Result<(), String> {
    let secret =
        WebhookSecret::parse(&invocation.callback_secret).map_err(|e| e.detail().to_owned())?;
    let body = serde_json::to_vec(outcome).map_err(|e| e.to_string())?;
    let mut last_error = String::new();
    for attempt in 0..CALLBACK_ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(250 << attempt));
        }
        // Signed afresh each attempt, so the timestamp stays inside the tolerance.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        let mut request = agent()
            .post(&invocation.callback_url)
            .header("content-type", "application/json");
        for (name, value) in
            signature_headers(std::slice::from_ref(&secret), &invocation.id, now, &body)
        {
            request = request.header(name, value);
        }
        match request.send(&body[..]) {
            Ok(response) if response.status().is_success() || response.status() == 409 => {
                return Ok(())
            }
            Ok(response) if response.status().is_client_error() => {
                return Err(format!(
                    "the edge refused the callback: {}",
                    response.status()
                ))
            }
            Ok(response) => last_error = format!("the edge answered {}", response.status()),
            Err(e) => last_error = e.to_string(),
        }
    }
    Err(format!(
        "the callback failed {CALLBACK_ATTEMPTS} times; last: {last_error}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_words_stably() {
        let out = wordcount(&json!({"text": "the cat and The hat\nand the bat"})).unwrap();
        assert_eq!(out["words"], 8);
        assert_eq!(out["lines"], 2);
        assert_eq!(out["top"][0], json!(["the", 3]));
        assert_eq!(out["top"][1], json!(["and", 2]));
        assert!(wordcount(&json!({"txt": 1})).is_err());
    }

    #[test]
    fn thumbnails_fit_the_box_and_keep_the_aspect_ratio() {
        let mut png = Vec::new();
        image::DynamicImage::new_rgb8(640, 320)
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let out = thumbnail(&png).unwrap();
        assert_eq!(out["width"], 128);
        assert_eq!(out["height"], 64);
        assert_eq!(out["original"], json!({"width": 640, "height": 320}));
        assert!(out["data_url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,"));
        assert!(thumbnail(b"not an image")
            .unwrap_err()
            .contains("not an image"));
    }

    #[test]
    fn labels_are_stable_per_order_and_need_a_whole_address() {
        let input = json!({"order_id": "o-1", "ship_to": {"name": "Ada", "line1": "1 Loop St",
            "city": "Leeds", "postcode": "LS1 1AA", "country": "GB"}});
        let label = shipping_label(&input).unwrap();
        assert_eq!(label, shipping_label(&input).unwrap());
        let tracking = label["tracking"].as_str().unwrap();
        assert!(
            tracking.starts_with("EW") && tracking.len() == 12,
            "{tracking}"
        );
        assert!(label["text"]
            .as_str()
            .unwrap()
            .contains("Ada\n1 Loop St\nLeeds"));
        let other = json!({"order_id": "o-2", "ship_to": input["ship_to"]});
        assert_ne!(
            shipping_label(&other).unwrap()["tracking"],
            label["tracking"]
        );
        let mut no_city = input.clone();
        no_city["ship_to"]["city"] = json!(" ");
        assert_eq!(
            shipping_label(&no_city).unwrap_err(),
            "the address has no city"
        );
    }

    #[test]
    fn unknown_kinds_fail_as_outcomes() {
        let invocation = JobInvocation {
            id: "j".into(),
            kind: "mine".into(),
            input_type: "application/json".into(),
            input: Some(json!({})),
            input_url: None,
            callback_url: "http://127.0.0.1:1/".into(),
            callback_secret: WebhookSecret::generate(),
        };
        assert!(matches!(run(&invocation), JobOutcome::Failed { .. }));
    }
}
