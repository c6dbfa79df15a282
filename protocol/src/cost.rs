//! What a workload costs on Cloudflare Workers, on AWS Lambda behind API
//! Gateway, and on always-on containers (AWS Fargate behind a load balancer),
//! projected to a month; and the **break-even**: the traffic multiple at which
//! containers become cheaper than each serverless option.
//!
//! The input is [`Usage`]: what was observed (edgeway's per-feature counters)
//! or profiled (`edgeway cost <profile>`) over a period. Prices are one table,
//! [`Prices::default`], each with its source in [`SOURCES`]; a deployment
//! overrides any of them with [`Prices::from_json`]. What cannot be observed
//! (Lambda's memory size, a container's size and capacity) is an
//! [`Assumptions`], also overridable.
//!
//! Data services (KV, Queues, D1, Durable Objects) are priced at Cloudflare's
//! rates in all three columns: code on Lambda or in a container that keeps
//! using them pays the same, so the comparison is of compute, requests and
//! egress. CPU time is billed on Workers; when it was not measured, wall time
//! stands in for it, an upper bound (see [`Usage::cpu_ms`]).

use serde::{Deserialize, Serialize};

use crate::{Error, ErrorKind};

/// Hours in the month a projection is for (AWS's and Cloudflare's 730).
pub const HOURS_PER_MONTH: f64 = 730.0;

/// Where a group of [`Prices`] comes from, and when it was last checked.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct PriceSource {
    /// The fields of [`Prices`] it covers.
    pub fields: &'static [&'static str],
    /// The page that states them.
    pub url: &'static str,
    /// When they were checked against it (ISO 8601).
    pub checked: &'static str,
}

/// The source of every default price.
pub const SOURCES: &[PriceSource] = &[
    PriceSource {
        fields: &[
            "workers_base_month",
            "workers_included_requests",
            "workers_per_million_requests",
            "workers_included_cpu_ms",
            "workers_per_million_cpu_ms",
        ],
        url: "https://developers.cloudflare.com/workers/platform/pricing/",
        checked: "2026-11-29",
    },
    PriceSource {
        fields: &[
            "kv_included_reads",
            "kv_per_million_reads",
            "kv_included_writes",
            "kv_per_million_writes",
            "kv_included_deletes",
            "kv_per_million_deletes",
            "kv_included_lists",
            "kv_per_million_lists",
        ],
        url: "https://developers.cloudflare.com/kv/platform/pricing/",
        checked: "2026-11-29",
    },
    PriceSource {
        fields: &["queues_included_operations", "queues_per_million_operations"],
        url: "https://developers.cloudflare.com/queues/platform/pricing/",
        checked: "2026-11-29",
    },
    PriceSource {
        fields: &[
            "d1_included_rows_read",
            "d1_per_million_rows_read",
            "d1_included_rows_written",
            "d1_per_million_rows_written",
        ],
        url: "https://developers.cloudflare.com/d1/platform/pricing/",
        checked: "2026-11-29",
    },
    PriceSource {
        fields: &["objects_included_requests", "objects_per_million_requests"],
        url: "https://developers.cloudflare.com/durable-objects/platform/pricing/",
        checked: "2026-11-29",
    },
    PriceSource {
        fields: &[
            "lambda_per_million_requests",
            "lambda_per_gb_second",
            "lambda_free_requests",
            "lambda_free_gb_seconds",
        ],
        url: "https://aws.amazon.com/lambda/pricing/ (us-east-1, x86)",
        checked: "2026-11-29",
    },
    PriceSource {
        fields: &["api_gateway_per_million_requests"],
        url: "https://aws.amazon.com/api-gateway/pricing/ (HTTP APIs, first 300 million)",
        checked: "2026-11-29",
    },
    PriceSource {
        fields: &["aws_data_out_per_gb", "aws_free_data_out_gb"],
        url: "https://aws.amazon.com/ec2/pricing/on-demand/#Data_Transfer (to the internet, first 10 TB)",
        checked: "2026-11-29",
    },
    PriceSource {
        fields: &["fargate_per_vcpu_hour", "fargate_per_gb_hour"],
        url: "https://aws.amazon.com/fargate/pricing/ (us-east-1, Linux/x86, on demand)",
        checked: "2026-11-29",
    },
    PriceSource {
        fields: &["load_balancer_per_hour", "load_balancer_per_lcu_hour"],
        url: "https://aws.amazon.com/elasticloadbalancing/pricing/ (Application Load Balancer, us-east-1)",
        checked: "2026-11-29",
    },
];

/// Every price the projection uses, in US dollars. Missing fields in an
/// override keep their defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Prices {
    /// The Workers Paid plan, per month.
    pub workers_base_month: f64,
    /// Requests the plan includes per month.
    pub workers_included_requests: f64,
    /// Each further million requests.
    pub workers_per_million_requests: f64,
    /// CPU milliseconds the plan includes per month.
    pub workers_included_cpu_ms: f64,
    /// Each further million CPU milliseconds.
    pub workers_per_million_cpu_ms: f64,
    /// KV reads included per month.
    pub kv_included_reads: f64,
    /// Each further million KV reads.
    pub kv_per_million_reads: f64,
    /// KV writes included per month.
    pub kv_included_writes: f64,
    /// Each further million KV writes.
    pub kv_per_million_writes: f64,
    /// KV deletes included per month.
    pub kv_included_deletes: f64,
    /// Each further million KV deletes.
    pub kv_per_million_deletes: f64,
    /// KV lists included per month.
    pub kv_included_lists: f64,
    /// Each further million KV lists.
    pub kv_per_million_lists: f64,
    /// Queue operations included per month (each 64 KB written, read or
    /// deleted is one).
    pub queues_included_operations: f64,
    /// Each further million queue operations.
    pub queues_per_million_operations: f64,
    /// D1 rows read included per month.
    pub d1_included_rows_read: f64,
    /// Each further million D1 rows read.
    pub d1_per_million_rows_read: f64,
    /// D1 rows written included per month.
    pub d1_included_rows_written: f64,
    /// Each further million D1 rows written.
    pub d1_per_million_rows_written: f64,
    /// Durable Object requests included per month.
    pub objects_included_requests: f64,
    /// Each further million Durable Object requests.
    pub objects_per_million_requests: f64,
    /// Each million Lambda requests.
    pub lambda_per_million_requests: f64,
    /// Each GB-second of Lambda duration.
    pub lambda_per_gb_second: f64,
    /// Lambda requests free per month (the always-free tier).
    pub lambda_free_requests: f64,
    /// Lambda GB-seconds free per month.
    pub lambda_free_gb_seconds: f64,
    /// Each million API Gateway HTTP API requests.
    pub api_gateway_per_million_requests: f64,
    /// Each GB from AWS to the internet.
    pub aws_data_out_per_gb: f64,
    /// GB to the internet free per month.
    pub aws_free_data_out_gb: f64,
    /// Each vCPU-hour of a Fargate task.
    pub fargate_per_vcpu_hour: f64,
    /// Each GB-hour of a Fargate task's memory.
    pub fargate_per_gb_hour: f64,
    /// Each hour of an Application Load Balancer.
    pub load_balancer_per_hour: f64,
    /// Each load balancer capacity unit-hour.
    pub load_balancer_per_lcu_hour: f64,
}

impl Default for Prices {
    fn default() -> Self {
        Self {
            workers_base_month: 5.0,
            workers_included_requests: 10e6,
            workers_per_million_requests: 0.30,
            workers_included_cpu_ms: 30e6,
            workers_per_million_cpu_ms: 0.02,
            kv_included_reads: 10e6,
            kv_per_million_reads: 0.50,
            kv_included_writes: 1e6,
            kv_per_million_writes: 5.0,
            kv_included_deletes: 1e6,
            kv_per_million_deletes: 5.0,
            kv_included_lists: 1e6,
            kv_per_million_lists: 5.0,
            queues_included_operations: 1e6,
            queues_per_million_operations: 0.40,
            d1_included_rows_read: 25e9,
            d1_per_million_rows_read: 0.001,
            d1_included_rows_written: 50e6,
            d1_per_million_rows_written: 1.0,
            objects_included_requests: 1e6,
            objects_per_million_requests: 0.15,
            lambda_per_million_requests: 0.20,
            lambda_per_gb_second: 0.000_016_666_7,
            lambda_free_requests: 1e6,
            lambda_free_gb_seconds: 400_000.0,
            api_gateway_per_million_requests: 1.0,
            aws_data_out_per_gb: 0.09,
            aws_free_data_out_gb: 100.0,
            fargate_per_vcpu_hour: 0.040_48,
            fargate_per_gb_hour: 0.004_445,
            load_balancer_per_hour: 0.0225,
            load_balancer_per_lcu_hour: 0.008,
        }
    }
}

impl Prices {
    /// The default table with the fields `json` (an object) sets replaced. An
    /// unknown field or a negative or non-finite price is an error naming it.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let prices: Self = parse("prices", json)?;
        let value = serde_json::to_value(&prices).expect("prices serialize");
        check_non_negative("prices", &value)?;
        Ok(prices)
    }
}

/// What cannot be observed: how big the Lambda function and the containers
/// would be, and how much one container serves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Assumptions {
    /// The Lambda function's memory, in MB (it bills GB-seconds of it).
    pub lambda_memory_mb: f64,
    /// vCPUs per container.
    pub container_vcpu: f64,
    /// Memory per container, in GB.
    pub container_memory_gb: f64,
    /// Requests per second one vCPU serves at the latency you want.
    pub requests_per_second_per_vcpu: f64,
    /// Containers that run whatever the traffic (two, for availability).
    pub min_containers: u32,
}

impl Default for Assumptions {
    fn default() -> Self {
        Self {
            lambda_memory_mb: 256.0,
            container_vcpu: 0.5,
            container_memory_gb: 1.0,
            requests_per_second_per_vcpu: 200.0,
            min_containers: 2,
        }
    }
}

impl Assumptions {
    /// The defaults with the fields `json` (an object) sets replaced. An
    /// unknown field, a negative or zero size or capacity is an error.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let assumptions: Self = parse("assumptions", json)?;
        for (name, value) in [
            ("lambda_memory_mb", assumptions.lambda_memory_mb),
            ("container_vcpu", assumptions.container_vcpu),
            ("container_memory_gb", assumptions.container_memory_gb),
            (
                "requests_per_second_per_vcpu",
                assumptions.requests_per_second_per_vcpu,
            ),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(invalid(format!(
                    "assumptions: `{name}` must be a positive number, not {value}"
                )));
            }
        }
        Ok(assumptions)
    }
}

/// A workload over a period: invocations, their time and their billable
/// operations. Every count is a total over `period_hours`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Usage {
    /// How long the traffic was observed, in hours.
    pub period_hours: f64,
    /// Invocations of every kind: requests, queue messages, cron runs,
    /// workflow steps.
    pub invocations: f64,
    /// Of those, HTTP requests (behind API Gateway on AWS).
    pub http_requests: f64,
    /// Wall time summed over invocations, in ms (Lambda bills it).
    pub wall_ms: f64,
    /// CPU time summed over invocations, in ms, when measured. `None`: wall
    /// time stands in for it, so the Workers CPU line is an upper bound.
    pub cpu_ms: Option<f64>,
    /// Bytes sent to clients.
    pub bytes_out: f64,
    /// The busiest second's requests (containers are sized for it).
    pub peak_requests_per_second: f64,
    /// KV reads.
    pub kv_reads: f64,
    /// KV writes.
    pub kv_writes: f64,
    /// KV deletes.
    pub kv_deletes: f64,
    /// KV lists.
    pub kv_lists: f64,
    /// Queue operations.
    pub queue_operations: f64,
    /// D1 rows read.
    pub d1_rows_read: f64,
    /// D1 rows written.
    pub d1_rows_written: f64,
    /// Durable Object requests.
    pub object_requests: f64,
}

impl Usage {
    /// The same traffic `multiple` times over (the peak too).
    pub fn scaled(&self, multiple: f64) -> Self {
        Self {
            period_hours: self.period_hours,
            invocations: self.invocations * multiple,
            http_requests: self.http_requests * multiple,
            wall_ms: self.wall_ms * multiple,
            cpu_ms: self.cpu_ms.map(|cpu| cpu * multiple),
            bytes_out: self.bytes_out * multiple,
            peak_requests_per_second: self.peak_requests_per_second * multiple,
            kv_reads: self.kv_reads * multiple,
            kv_writes: self.kv_writes * multiple,
            kv_deletes: self.kv_deletes * multiple,
            kv_lists: self.kv_lists * multiple,
            queue_operations: self.queue_operations * multiple,
            d1_rows_read: self.d1_rows_read * multiple,
            d1_rows_written: self.d1_rows_written * multiple,
            object_requests: self.object_requests * multiple,
        }
    }

    /// Checks the period is positive and no count is negative or not finite.
    pub fn validate(&self) -> Result<(), Error> {
        if !(self.period_hours.is_finite() && self.period_hours > 0.0) {
            return Err(invalid(format!(
                "usage: `period_hours` must be positive, not {}",
                self.period_hours
            )));
        }
        let value = serde_json::to_value(self).expect("usage serializes");
        check_non_negative("usage", &value)
    }
}

/// One line of a bill.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Line {
    /// What is billed.
    pub item: &'static str,
    /// How much of it, in `unit`s, per month.
    pub quantity: f64,
    /// The unit of `quantity`.
    pub unit: &'static str,
    /// Its cost per month, in US dollars.
    pub usd: f64,
}

/// A platform's monthly bill for the workload.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bill {
    /// The platform.
    pub platform: &'static str,
    /// What it charges for.
    pub lines: Vec<Line>,
    /// The sum of the lines, per month.
    pub total_usd: f64,
}

impl Bill {
    fn new(platform: &'static str, lines: Vec<Line>) -> Self {
        let total_usd = lines.iter().map(|line| line.usd).sum();
        Self {
            platform,
            lines,
            total_usd,
        }
    }
}

/// The traffic multiples at which always-on containers cost no more than
/// each serverless option; `None` when they do not within a million times
/// the traffic. Below 1: containers are already cheaper.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BreakEven {
    /// Containers against Workers.
    pub workers: Option<f64>,
    /// Containers against Lambda behind API Gateway.
    pub lambda: Option<f64>,
}

/// The workload's month on each platform, and the break-even.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Projection {
    /// How many times the observed period a month is.
    pub month_multiple: f64,
    /// Cloudflare Workers.
    pub workers: Bill,
    /// AWS Lambda behind an API Gateway HTTP API.
    pub lambda: Bill,
    /// Always-on Fargate containers sized for the peak, behind a load balancer.
    pub containers: Bill,
    /// Where containers become cheaper.
    pub break_even: BreakEven,
    /// Whether the Workers CPU line is wall time (an upper bound) because CPU
    /// time was not measured.
    pub cpu_is_wall_time: bool,
}

/// Projects `usage` to a month on each platform, with the break-even.
pub fn project(
    usage: &Usage,
    prices: &Prices,
    assumptions: &Assumptions,
) -> Result<Projection, Error> {
    usage.validate()?;
    let month_multiple = HOURS_PER_MONTH / usage.period_hours;
    let month = usage.scaled(month_multiple);
    // The peak is a rate: a month does not make it higher.
    let month = Usage {
        peak_requests_per_second: usage.peak_requests_per_second,
        ..month
    };
    let bills = |u: &Usage| {
        (
            workers_bill(u, prices),
            lambda_bill(u, prices, assumptions),
            containers_bill(u, prices, assumptions),
        )
    };
    let (workers, lambda, containers) = bills(&month);
    let break_even = BreakEven {
        workers: break_even(|m| {
            let (w, _, c) = bills(&month.scaled(m));
            c.total_usd <= w.total_usd
        }),
        lambda: break_even(|m| {
            let (_, l, c) = bills(&month.scaled(m));
            c.total_usd <= l.total_usd
        }),
    };
    Ok(Projection {
        month_multiple,
        workers,
        lambda,
        containers,
        break_even,
        cpu_is_wall_time: usage.cpu_ms.is_none(),
    })
}

/// `quantity` beyond `included`, at `per_million`.
fn metered(
    item: &'static str,
    unit: &'static str,
    quantity: f64,
    included: f64,
    per_million: f64,
) -> Line {
    Line {
        item,
        quantity,
        unit,
        usd: (quantity - included).max(0.0) / 1e6 * per_million,
    }
}

/// KV, Queues, D1 and Durable Objects at Cloudflare's prices: the same in
/// every column.
fn data_services(u: &Usage, p: &Prices) -> Vec<Line> {
    vec![
        metered(
            "KV reads",
            "reads",
            u.kv_reads,
            p.kv_included_reads,
            p.kv_per_million_reads,
        ),
        metered(
            "KV writes",
            "writes",
            u.kv_writes,
            p.kv_included_writes,
            p.kv_per_million_writes,
        ),
        metered(
            "KV deletes",
            "deletes",
            u.kv_deletes,
            p.kv_included_deletes,
            p.kv_per_million_deletes,
        ),
        metered(
            "KV lists",
            "lists",
            u.kv_lists,
            p.kv_included_lists,
            p.kv_per_million_lists,
        ),
        metered(
            "Queue operations",
            "operations",
            u.queue_operations,
            p.queues_included_operations,
            p.queues_per_million_operations,
        ),
        metered(
            "D1 rows read",
            "rows",
            u.d1_rows_read,
            p.d1_included_rows_read,
            p.d1_per_million_rows_read,
        ),
        metered(
            "D1 rows written",
            "rows",
            u.d1_rows_written,
            p.d1_included_rows_written,
            p.d1_per_million_rows_written,
        ),
        metered(
            "Durable Object requests",
            "requests",
            u.object_requests,
            p.objects_included_requests,
            p.objects_per_million_requests,
        ),
    ]
}

fn workers_bill(u: &Usage, p: &Prices) -> Bill {
    let cpu_ms = u.cpu_ms.unwrap_or(u.wall_ms);
    let mut lines = vec![
        Line {
            item: "Workers Paid plan",
            quantity: 1.0,
            unit: "month",
            usd: p.workers_base_month,
        },
        metered(
            "Requests",
            "requests",
            u.invocations,
            p.workers_included_requests,
            p.workers_per_million_requests,
        ),
        metered(
            "CPU time",
            "CPU ms",
            cpu_ms,
            p.workers_included_cpu_ms,
            p.workers_per_million_cpu_ms,
        ),
    ];
    lines.extend(data_services(u, p));
    Bill::new("Cloudflare Workers", lines)
}

fn lambda_bill(u: &Usage, p: &Prices, a: &Assumptions) -> Bill {
    let gb_seconds = u.wall_ms / 1000.0 * a.lambda_memory_mb / 1024.0;
    let gb_out = u.bytes_out / 1e9;
    let mut lines = vec![
        metered(
            "Lambda requests",
            "requests",
            u.invocations,
            p.lambda_free_requests,
            p.lambda_per_million_requests,
        ),
        Line {
            item: "Lambda duration",
            quantity: gb_seconds,
            unit: "GB-seconds",
            usd: (gb_seconds - p.lambda_free_gb_seconds).max(0.0) * p.lambda_per_gb_second,
        },
        metered(
            "API Gateway requests",
            "requests",
            u.http_requests,
            0.0,
            p.api_gateway_per_million_requests,
        ),
        Line {
            item: "Data out",
            quantity: gb_out,
            unit: "GB",
            usd: (gb_out - p.aws_free_data_out_gb).max(0.0) * p.aws_data_out_per_gb,
        },
    ];
    lines.extend(data_services(u, p));
    Bill::new("AWS Lambda + API Gateway", lines)
}

/// How many containers serve `peak` requests per second.
fn containers_for(peak: f64, a: &Assumptions) -> f64 {
    let per_container = a.requests_per_second_per_vcpu * a.container_vcpu;
    (peak / per_container)
        .ceil()
        .max(f64::from(a.min_containers))
}

fn containers_bill(u: &Usage, p: &Prices, a: &Assumptions) -> Bill {
    let count = containers_for(u.peak_requests_per_second, a);
    let hours = HOURS_PER_MONTH;
    let gb_out = u.bytes_out / 1e9;
    // Load balancer capacity units from the bytes it processes (1 GB an hour
    // is one). New connections (25 a second to the unit) are left out:
    // clients of an API keep theirs alive.
    let lcu = gb_out / hours;
    let mut lines = vec![
        Line {
            item: "Container vCPU",
            quantity: count * a.container_vcpu * hours,
            unit: "vCPU-hours",
            usd: count * a.container_vcpu * hours * p.fargate_per_vcpu_hour,
        },
        Line {
            item: "Container memory",
            quantity: count * a.container_memory_gb * hours,
            unit: "GB-hours",
            usd: count * a.container_memory_gb * hours * p.fargate_per_gb_hour,
        },
        Line {
            item: "Load balancer",
            quantity: hours,
            unit: "hours",
            usd: hours * p.load_balancer_per_hour,
        },
        Line {
            item: "Load balancer capacity",
            quantity: lcu * hours,
            unit: "LCU-hours",
            usd: lcu * hours * p.load_balancer_per_lcu_hour,
        },
        Line {
            item: "Data out",
            quantity: gb_out,
            unit: "GB",
            usd: (gb_out - p.aws_free_data_out_gb).max(0.0) * p.aws_data_out_per_gb,
        },
    ];
    lines.extend(data_services(u, p));
    Bill::new("Containers (Fargate + load balancer)", lines)
}

/// The smallest multiple in [1/1000, 1,000,000] at which `cheaper` holds and
/// keeps holding up to the top of the range, to 0.1 %; `None` if there is none.
fn break_even(cheaper: impl Fn(f64) -> bool) -> Option<f64> {
    const LOW: f64 = 1e-3;
    const HIGH: f64 = 1e6;
    if !cheaper(HIGH) {
        return None;
    }
    // Walk down from the top in steps of 1 %, to the last multiple where
    // containers still win; then narrow it.
    let mut high = HIGH;
    let mut low = high / 1.01;
    while low >= LOW && cheaper(low) {
        high = low;
        low /= 1.01;
    }
    if low < LOW {
        return Some(LOW);
    }
    while high / low > 1.001 {
        let mid = (low * high).sqrt();
        if cheaper(mid) {
            high = mid;
        } else {
            low = mid;
        }
    }
    Some(high)
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T, Error> {
    // The text reader: a worker that also decodes with it (edgeway does)
    // links one copy of each deserializer, not two.
    serde_json::from_str(json).map_err(|e| invalid(format!("{what}: {e}")))
}

/// Every number in `value` (an object) is finite and not negative.
fn check_non_negative(what: &str, value: &serde_json::Value) -> Result<(), Error> {
    for (name, number) in value.as_object().into_iter().flatten() {
        if let Some(n) = number.as_f64() {
            if !(n.is_finite() && n >= 0.0) {
                return Err(invalid(format!(
                    "{what}: `{name}` must be a number of zero or more, not {n}"
                )));
            }
        } else if !number.is_null() {
            return Err(invalid(format!("{what}: `{name}` must be a number")));
        }
    }
    Ok(())
}

fn invalid(detail: String) -> Error {
    Error::new(ErrorKind::InvalidConfiguration, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6 * b.abs().max(1.0)
    }

    fn line<'a>(bill: &'a Bill, item: &str) -> &'a Line {
        bill.lines.iter().find(|l| l.item == item).unwrap()
    }

    /// A month of traffic, by hand: 20 M requests of 50 ms wall and 3 ms CPU,
    /// 30 M KV reads, 2 M writes, 2 KB out each (40 GB), 40 requests a second
    /// at peak.
    fn month() -> Usage {
        Usage {
            period_hours: HOURS_PER_MONTH,
            invocations: 20e6,
            http_requests: 20e6,
            wall_ms: 20e6 * 50.0,
            cpu_ms: Some(20e6 * 3.0),
            bytes_out: 40e9,
            peak_requests_per_second: 40.0,
            kv_reads: 30e6,
            kv_writes: 2e6,
            ..Usage::default()
        }
    }

    #[test]
    fn the_bills_match_figures_computed_by_hand() {
        let p = project(&month(), &Prices::default(), &Assumptions::default()).unwrap();
        assert!(close(p.month_multiple, 1.0));
        // Data services: (30 - 10) M reads × $0.50 + (2 - 1) M writes × $5.
        let data = 20.0 * 0.50 + 5.0;
        // Workers: $5 + (20 - 10) M × $0.30 + (60 - 30) M CPU ms × $0.02.
        assert!(close(line(&p.workers, "Requests").usd, 3.0));
        assert!(close(line(&p.workers, "CPU time").usd, 0.6));
        assert!(
            close(p.workers.total_usd, 5.0 + 3.0 + 0.6 + data),
            "{}",
            p.workers.total_usd
        );
        // Lambda at 256 MB: 1 M s × 0.25 GB = 250,000 GB-s, under the free
        // 400,000; (20 - 1) M requests × $0.20; API Gateway 20 M × $1; 40 GB
        // out is under the free 100.
        assert!(close(
            line(&p.lambda, "Lambda duration").quantity,
            250_000.0
        ));
        assert!(close(line(&p.lambda, "Lambda duration").usd, 0.0));
        let lambda = 19.0 * 0.20 + 20.0 + data;
        assert!(close(p.lambda.total_usd, lambda), "{}", p.lambda.total_usd);
        // Containers: 40 rps needs 1 container of 0.5 vCPU at 200 rps/vCPU,
        // but 2 run at least: 2 × (0.5 × $0.04048 + 1 × $0.004445) × 730 h,
        // the load balancer's 730 h × $0.0225, and its LCUs: 40 GB / 730 h
        // an hour, so 40 LCU-hours × $0.008.
        let compute = 2.0 * (0.5 * 0.04048 + 0.004445) * 730.0;
        let balancer = 730.0 * 0.0225 + 40.0 * 0.008;
        let containers = compute + balancer + data;
        assert!(
            close(p.containers.total_usd, containers),
            "{}",
            p.containers.total_usd
        );
        assert!(!p.cpu_is_wall_time);
    }

    #[test]
    fn an_observed_hour_is_projected_to_a_month() {
        let hour = Usage {
            period_hours: 1.0,
            ..month().scaled(1.0 / 730.0)
        };
        let hour = Usage {
            peak_requests_per_second: 40.0,
            ..hour
        };
        let from_hour = project(&hour, &Prices::default(), &Assumptions::default()).unwrap();
        let from_month = project(&month(), &Prices::default(), &Assumptions::default()).unwrap();
        assert!(close(from_hour.month_multiple, 730.0));
        assert!(close(
            from_hour.workers.total_usd,
            from_month.workers.total_usd
        ));
        assert!(close(
            from_hour.containers.total_usd,
            from_month.containers.total_usd
        ));
    }

    #[test]
    fn without_cpu_time_wall_time_is_billed_and_said_to_be() {
        let usage = Usage {
            cpu_ms: None,
            ..month()
        };
        let p = project(&usage, &Prices::default(), &Assumptions::default()).unwrap();
        assert!(p.cpu_is_wall_time);
        // (1,000 M - 30 M) wall ms × $0.02 per million.
        assert!(close(line(&p.workers, "CPU time").usd, 970.0 * 0.02));
    }

    /// `month()` with its busiest second `peak_to_average` times its average.
    fn with_peak(peak_to_average: f64) -> Usage {
        let average = 20e6 / (HOURS_PER_MONTH * 3600.0);
        Usage {
            peak_requests_per_second: average * peak_to_average,
            ..month()
        }
    }

    #[test]
    fn the_break_even_is_where_containers_stop_costing_more() {
        let prices = Prices::default();
        let assumptions = Assumptions::default();
        let steady = with_peak(1.5);
        let p = project(&steady, &prices, &assumptions).unwrap();
        let m = p
            .break_even
            .workers
            .expect("steady traffic: containers win at some volume");
        // Containers are dearer now, and not dearer at the multiple.
        assert!(m > 1.0, "{m}");
        let at = |m: f64| project(&steady.scaled(m), &prices, &assumptions).unwrap();
        assert!(at(m).containers.total_usd <= at(m).workers.total_usd);
        assert!(at(m / 1.01).containers.total_usd > at(m / 1.01).workers.total_usd);
        // Lambda behind API Gateway costs more per request: containers win sooner.
        let lambda = p.break_even.lambda.unwrap();
        assert!(lambda < m, "{lambda} {m}");
        assert!(at(lambda).containers.total_usd <= at(lambda).lambda.total_usd);
    }

    #[test]
    fn spiky_traffic_keeps_serverless_cheaper_than_sizing_for_its_peak() {
        let a = Assumptions::default();
        let steady = project(&with_peak(1.5), &Prices::default(), &a).unwrap();
        let spiky = project(&with_peak(10.0), &Prices::default(), &a).unwrap();
        // Today both fit the minimum of two containers; the bill is the same.
        assert!(close(
            spiky.containers.total_usd,
            steady.containers.total_usd
        ));
        assert!(close(spiky.workers.total_usd, steady.workers.total_usd));
        // Sized for a peak 10 times the average, containers never catch up
        // with Workers, and catch up with Lambda only at a higher volume.
        assert_eq!(spiky.break_even.workers, None);
        assert!(spiky.break_even.lambda.unwrap() > steady.break_even.lambda.unwrap());
    }

    #[test]
    fn overrides_keep_the_rest_of_the_table_and_bad_ones_are_named() {
        let prices = Prices::from_json(r#"{"workers_per_million_requests": 0.5}"#).unwrap();
        assert_eq!(prices.workers_per_million_requests, 0.5);
        assert_eq!(
            prices.kv_per_million_reads,
            Prices::default().kv_per_million_reads
        );
        let err = Prices::from_json(r#"{"workers_per_milion_requests": 0.5}"#).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfiguration);
        assert!(
            err.detail().contains("workers_per_milion_requests"),
            "{err}"
        );
        let err = Prices::from_json(r#"{"kv_per_million_reads": -1}"#).unwrap_err();
        assert!(err.detail().contains("kv_per_million_reads"), "{err}");
        let err = Assumptions::from_json(r#"{"container_vcpu": 0}"#).unwrap_err();
        assert!(err.detail().contains("container_vcpu"), "{err}");
        let err = Assumptions::from_json(r#"{"containers": 3}"#).unwrap_err();
        assert!(err.detail().contains("containers"), "{err}");
        let bad = Usage {
            kv_reads: -5.0,
            ..month()
        };
        let err = project(&bad, &Prices::default(), &Assumptions::default()).unwrap_err();
        assert!(err.detail().contains("kv_reads"), "{err}");
        let bad = Usage {
            period_hours: 0.0,
            ..month()
        };
        assert!(project(&bad, &Prices::default(), &Assumptions::default()).is_err());
    }

    #[test]
    fn every_default_price_has_a_source() {
        let prices = serde_json::to_value(Prices::default()).unwrap();
        for name in prices.as_object().unwrap().keys() {
            assert!(
                SOURCES.iter().any(|s| s.fields.contains(&name.as_str())),
                "{name} has no source"
            );
        }
        for source in SOURCES {
            for field in source.fields {
                assert!(prices.get(*field).is_some(), "{field} is not a price");
            }
        }
    }
}
