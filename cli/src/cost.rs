//! `edgeway cost PROFILE`: what a traffic profile would cost a month on
//! Workers, on Lambda behind API Gateway and on always-on containers, and the
//! traffic multiple at which containers become cheaper, so a team can make the
//! economic decision before it moves an endpoint. The model is
//! `edgeway_protocol::cost`, the same one the gateway's `/v1/ops/cost` runs on
//! observed traffic.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use edgeway_protocol::cost::{self, Assumptions, Prices, Projection, Usage};
use serde::Deserialize;

/// A traffic profile: requests hour by hour, and what one request does.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// What it describes.
    #[serde(default)]
    pub name: Option<String>,
    /// Requests in each hour, in order (a week is 168 hours).
    pub requests_per_hour: Vec<f64>,
    /// The busiest second's rate over its hour's average (default 2): hourly
    /// figures hide bursts, and containers are sized for them.
    #[serde(default = "default_peak_factor")]
    pub peak_factor: f64,
    /// The share of requests that are HTTP (the rest are queue messages, cron
    /// runs and workflow steps); default 1.
    #[serde(default = "default_http_share")]
    pub http_share: f64,
    /// What one request does, on average.
    pub per_request: PerRequest,
    /// Price overrides (`edgeway_protocol::cost::Prices` fields).
    #[serde(default)]
    pub prices: Option<serde_json::Value>,
    /// Assumption overrides (`edgeway_protocol::cost::Assumptions` fields).
    #[serde(default)]
    pub assumptions: Option<serde_json::Value>,
}

fn default_peak_factor() -> f64 {
    2.0
}

fn default_http_share() -> f64 {
    1.0
}

/// One request's time and billable operations, on average.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PerRequest {
    /// Wall time, ms.
    pub wall_ms: f64,
    /// CPU time, ms; without it wall time stands in (an upper bound).
    pub cpu_ms: Option<f64>,
    /// Bytes sent to the client.
    pub bytes_out: f64,
    /// KV reads.
    pub kv_reads: f64,
    /// KV writes.
    pub kv_writes: f64,
    /// KV deletes.
    pub kv_deletes: f64,
    /// KV lists.
    pub kv_lists: f64,
    /// Queue operations (each 64 KB written, read or deleted).
    pub queue_operations: f64,
    /// D1 rows read.
    pub d1_rows_read: f64,
    /// D1 rows written.
    pub d1_rows_written: f64,
    /// Durable Object requests.
    pub object_requests: f64,
}

impl Profile {
    /// The profile's whole period as [`Usage`].
    pub fn usage(&self) -> Result<Usage> {
        if self.requests_per_hour.is_empty() {
            bail!("`requests_per_hour` is empty: give at least one hour");
        }
        if let Some((hour, bad)) = self
            .requests_per_hour
            .iter()
            .enumerate()
            .find(|(_, n)| !(n.is_finite() && **n >= 0.0))
        {
            bail!("`requests_per_hour[{hour}]` is {bad}: requests are zero or more");
        }
        if !(self.peak_factor.is_finite() && self.peak_factor >= 1.0) {
            bail!(
                "`peak_factor` is {}: it must be 1 or more",
                self.peak_factor
            );
        }
        if !(0.0..=1.0).contains(&self.http_share) {
            bail!(
                "`http_share` is {}: it must be from 0 to 1",
                self.http_share
            );
        }
        let requests: f64 = self.requests_per_hour.iter().sum();
        let busiest = self.requests_per_hour.iter().copied().fold(0.0, f64::max);
        let each = &self.per_request;
        Ok(Usage {
            period_hours: self.requests_per_hour.len() as f64,
            invocations: requests,
            http_requests: requests * self.http_share,
            wall_ms: requests * each.wall_ms,
            cpu_ms: each.cpu_ms.map(|cpu| requests * cpu),
            bytes_out: requests * each.bytes_out,
            peak_requests_per_second: busiest / 3600.0 * self.peak_factor,
            kv_reads: requests * each.kv_reads,
            kv_writes: requests * each.kv_writes,
            kv_deletes: requests * each.kv_deletes,
            kv_lists: requests * each.kv_lists,
            queue_operations: requests * each.queue_operations,
            d1_rows_read: requests * each.d1_rows_read,
            d1_rows_written: requests * each.d1_rows_written,
            object_requests: requests * each.object_requests,
        })
    }
}

/// Options of `edgeway cost`.
#[derive(Debug, Default)]
pub struct CostOptions {
    /// The profile file.
    pub profile: Option<std::path::PathBuf>,
    /// A file of price overrides, over the profile's own.
    pub prices: Option<std::path::PathBuf>,
    /// A file of assumption overrides, over the profile's own.
    pub assumptions: Option<std::path::PathBuf>,
    /// Print the projection as JSON instead of a report.
    pub json: bool,
}

/// Runs `edgeway cost`.
pub fn cost(options: &CostOptions) -> Result<()> {
    let Some(path) = &options.profile else {
        bail!("`edgeway cost` needs a PROFILE (a JSON file; see docs/OPERATIONS.md)");
    };
    let profile = read_profile(path)?;
    let prices = overrides(
        profile.prices.as_ref(),
        options.prices.as_deref(),
        Prices::from_json,
    )?;
    let assumptions = overrides(
        profile.assumptions.as_ref(),
        options.assumptions.as_deref(),
        Assumptions::from_json,
    )?;
    let usage = profile.usage()?;
    let projection = cost::project(&usage, &prices, &assumptions)
        .map_err(|e| anyhow::anyhow!("{}", e.detail()))?;
    if options.json {
        println!("{}", serde_json::to_string_pretty(&projection)?);
    } else {
        print!("{}", report(&profile, &usage, &projection));
    }
    Ok(())
}

fn read_profile(path: &Path) -> Result<Profile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the profile {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("the profile {}", path.display()))
}

/// The profile's overrides, with the file's (if any) merged over them.
fn overrides<T>(
    inline: Option<&serde_json::Value>,
    file: Option<&Path>,
    parse: impl Fn(&str) -> Result<T, edgeway_protocol::Error>,
) -> Result<T> {
    let mut merged = inline.cloned().unwrap_or_else(|| serde_json::json!({}));
    if let Some(file) = file {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let over: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}", file.display()))?;
        match (merged.as_object_mut(), over.as_object()) {
            (Some(merged), Some(over)) => merged.extend(over.clone()),
            _ => bail!("{}: overrides are a JSON object", file.display()),
        }
    }
    parse(&merged.to_string()).map_err(|e| anyhow::anyhow!("{}", e.detail()))
}

fn usd(value: f64) -> String {
    if value >= 100.0 {
        format!("${value:.0}")
    } else {
        format!("${value:.2}")
    }
}

fn millions(value: f64) -> String {
    format!("{:.1} M", value / 1e6)
}

/// The projection as Markdown: the three monthly totals, each bill's lines,
/// and the break-even in words.
pub fn report(profile: &Profile, usage: &Usage, p: &Projection) -> String {
    let mut out = String::new();
    let name = profile.name.as_deref().unwrap_or("the profile");
    let monthly = usage.invocations * p.month_multiple;
    let _ = writeln!(
        out,
        "{name}: {} invocations over {} h, {} a month; busiest second {:.0} requests\n",
        millions(usage.invocations),
        usage.period_hours,
        millions(monthly),
        usage.peak_requests_per_second
    );
    let _ = writeln!(
        out,
        "| per month | Workers | Lambda + API Gateway | Containers |"
    );
    let _ = writeln!(out, "|---|---|---|---|");
    let _ = writeln!(
        out,
        "| total | {} | {} | {} |\n",
        usd(p.workers.total_usd),
        usd(p.lambda.total_usd),
        usd(p.containers.total_usd)
    );
    for bill in [&p.workers, &p.lambda, &p.containers] {
        let _ = writeln!(out, "{}: {}", bill.platform, usd(bill.total_usd));
        for line in bill
            .lines
            .iter()
            .filter(|l| l.usd > 0.0 || l.quantity > 0.0)
        {
            let _ = writeln!(
                out,
                "  {:<26} {:>16.0} {:<12} {}",
                line.item,
                line.quantity,
                line.unit,
                usd(line.usd)
            );
        }
        let _ = writeln!(out);
    }
    let say = |against: &str, multiple: Option<f64>| {
        match multiple {
        None => format!(
            "Containers do not become cheaper than {against} at up to a million times this traffic."
        ),
        Some(m) if m <= 1.0 => format!(
            "Containers are already cheaper than {against}: from {m:.2}× this traffic ({} invocations a month).",
            millions(monthly * m)
        ),
        Some(m) => format!(
            "Containers become cheaper than {against} at {m:.1}× this traffic ({} invocations a month).",
            millions(monthly * m)
        ),
    }
    };
    let _ = writeln!(out, "{}", say("Workers", p.break_even.workers));
    let _ = writeln!(out, "{}", say("Lambda", p.break_even.lambda));
    if p.cpu_is_wall_time {
        let _ = writeln!(
            out,
            "CPU time was not given: the Workers CPU line bills wall time, an upper bound."
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> Profile {
        let path = format!(
            "{}/../bench/data/traffic/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        read_profile(Path::new(&path)).unwrap()
    }

    #[test]
    fn a_profile_becomes_its_period_s_usage() {
        let profile: Profile = serde_json::from_str(
            r#"{"requests_per_hour": [3600, 7200, 0], "peak_factor": 1.5, "http_share": 0.5,
                "per_request": {"wall_ms": 20, "kv_reads": 2, "bytes_out": 1000}}"#,
        )
        .unwrap();
        let usage = profile.usage().unwrap();
        assert_eq!(usage.period_hours, 3.0);
        assert_eq!(usage.invocations, 10_800.0);
        assert_eq!(usage.http_requests, 5_400.0);
        assert_eq!(usage.wall_ms, 216_000.0);
        assert_eq!(usage.cpu_ms, None);
        assert_eq!(usage.kv_reads, 21_600.0);
        // The busiest hour is 2 a second on average; its busiest second 3.
        assert_eq!(usage.peak_requests_per_second, 3.0);
    }

    #[test]
    fn bad_profiles_say_what_is_wrong() {
        let parse = |json: &str| serde_json::from_str::<Profile>(json).map_err(|e| e.to_string());
        assert!(
            parse(r#"{"requests_per_hour": [1], "per_request": {}, "peak": 2}"#)
                .unwrap_err()
                .contains("peak")
        );
        assert!(
            parse(r#"{"requests_per_hour": [1], "per_request": {"kv_read": 1}}"#)
                .unwrap_err()
                .contains("kv_read")
        );
        let usage = |json: &str| parse(json).unwrap().usage().unwrap_err().to_string();
        assert!(usage(r#"{"requests_per_hour": [], "per_request": {}}"#).contains("empty"));
        assert!(
            usage(r#"{"requests_per_hour": [1, -2], "per_request": {}}"#)
                .contains("requests_per_hour[1]")
        );
        assert!(
            usage(r#"{"requests_per_hour": [1], "peak_factor": 0.5, "per_request": {}}"#)
                .contains("peak_factor")
        );
        let bad_price = overrides(
            Some(&serde_json::json!({"kv_reads": 1})),
            None,
            Prices::from_json,
        );
        assert!(bad_price.unwrap_err().to_string().contains("kv_reads"));
    }

    #[test]
    fn the_example_profiles_reach_the_conclusions_their_shapes_predict() {
        let project = |name: &str| {
            let profile = example(name);
            let usage = profile.usage().unwrap();
            let prices = Prices::default();
            let assumptions = Assumptions::default();
            let p = cost::project(&usage, &prices, &assumptions).unwrap();
            let text = report(&profile, &usage, &p);
            (p, text)
        };
        // Spiky: quiet nights and weekends, bursts at launches. Workers is
        // the cheapest, and containers sized for the bursts never catch up.
        let (spiky, text) = project("spiky");
        assert!(spiky.workers.total_usd < spiky.lambda.total_usd);
        assert!(spiky.workers.total_usd < spiky.containers.total_usd);
        assert_eq!(spiky.break_even.workers, None, "{text}");
        // Steady: the same load around the clock at a high volume. Containers
        // are already cheaper than Lambda behind API Gateway, and cheaper than
        // Workers at a few times the volume.
        let (steady, text) = project("steady");
        assert!(steady.break_even.lambda.unwrap() <= 1.0, "{text}");
        let workers = steady.break_even.workers.unwrap();
        assert!(workers > 1.0 && workers < 20.0, "{text}");
        assert!(
            text.contains("Containers become cheaper than Workers at"),
            "{text}"
        );
    }
}
