//! Order fulfilment, the gateway's workflow (`edgeway::workflow`, on Cloudflare
//! Workflows): `POST /v1/orders` starts an instance that
//!
//! 1. reserves the stock (a hold per order in KV),
//! 2. charges the payment service at `PAYMENT_URL` (retried on 408, 429, 5xx
//!    and network errors; a 402 is final),
//! 3. for orders over `ORDER_APPROVAL_CENTS`, waits for
//!    `POST /v1/orders/{id}/approve`; no approval within
//!    `ORDER_APPROVAL_SECONDS` cancels the order,
//! 4. has its shipping label printed on AWS Lambda (a `label` job), waiting for
//!    the job's signed callback for up to `ORDER_LABEL_SECONDS`; a function that
//!    fails, or never calls back, leaves the order for a hand-written label,
//! 5. publishes `order.completed` on the `orders` topic.
//!
//! A charge that fails for good, or a cancellation, undoes what was done,
//! newest first: a refund of whatever the order's idempotency key charged (an
//! attempt whose answer was lost may have charged), then the stock. It then
//! publishes `order.failed` or `order.cancelled` with the reason. The settings
//! an instance runs with are those of the moment it was placed. Every step of every instance is traced in
//! D1 (`TRACE`) and read at `GET /v1/orders/{id}` and
//! `GET /v1/workflows/orders/instances[/{id}]`.

use std::rc::Rc;
use std::time::Duration;

use edgeway::fanout::NewEvent;
use edgeway::jobs::JobRecord;
use edgeway::kv::{Kv, PutOptions};
use edgeway::outbound::{self, OutboundRequest};
use edgeway::platform::setting;
use edgeway::worker::Env;
use edgeway::workflow::{
    Backoff, Definition, InstanceRecord, InstanceStatus, Saga, Step, StepConfig, StepRecord, Trace,
    Workflow, WorkflowEvent,
};
use edgeway::{Error, ErrorKind, Json, Origin, Path, StatusCode, Valid};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The workflow's name, as `[[workflows]]` names it in wrangler.toml.
const NAME: &str = "orders";
/// Its binding.
const BINDING: &str = "ORDERS";
/// The D1 database its step trace is kept in.
const TRACE: &str = "TRACE";
/// The fan-out topic orders are published on.
const TOPIC: &str = "orders";
/// The largest order or approval body taken.
pub const BODY_LIMIT: usize = 64 * 1024;

/// An order as a client places it.
#[derive(Clone, Serialize, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// The client's id for the order: placing it twice starts one instance.
    #[garde(length(min = 1, max = 64), custom(order_id))]
    pub id: String,
    /// Who pays.
    #[garde(length(min = 1, max = 200))]
    pub customer: String,
    /// What is bought.
    #[garde(length(min = 1, max = 50), dive)]
    pub items: Vec<Item>,
    /// Where it goes.
    #[garde(dive)]
    pub ship_to: Address,
}

/// One line of an order.
#[derive(Clone, Serialize, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// The stock-keeping unit.
    #[garde(length(min = 1, max = 64))]
    pub sku: String,
    /// How many.
    #[garde(range(min = 1, max = 1000))]
    pub quantity: u32,
    /// The price of one, in cents.
    #[garde(range(max = 100_000_000))]
    pub unit_cents: u64,
}

/// A postal address; every line is printed on the label.
#[derive(Clone, Serialize, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[garde(length(min = 1, max = 100))]
    name: String,
    #[garde(length(min = 1, max = 200))]
    line1: String,
    #[garde(length(min = 1, max = 100))]
    city: String,
    #[garde(length(min = 1, max = 20))]
    postcode: String,
    #[garde(length(min = 2, max = 2))]
    country: String,
}

/// An order id is an instance id: letters, digits, `-` and `_`.
fn order_id(id: &str, _: &()) -> garde::Result {
    if id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(garde::Error::new(
            "only letters, digits, '-' and '_' may make an order id",
        ))
    }
}

impl Order {
    /// What the order costs, in cents.
    fn total_cents(&self) -> u64 {
        self.items
            .iter()
            .map(|i| u64::from(i.quantity) * i.unit_cents)
            .sum()
    }
}

/// An instance's parameters: the order, the origin the Lambda function calls
/// back (the one the order was placed through, unless `PUBLIC_URL`) and the
/// settings at the time. A replay must take the same steps, so the run reads
/// its settings from here, never from vars a deploy may have changed since.
#[derive(Clone, Serialize, Deserialize)]
struct Placed {
    order: Order,
    origin: String,
    settings: Settings,
}

/// How an order ended, as the instance's output.
#[derive(Serialize)]
struct Fulfilment {
    order: String,
    /// `completed`, `failed` or `cancelled`.
    status: &'static str,
    /// Why it failed or was cancelled, or why its label is hand-written.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    total_cents: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    charge: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    approved_by: Option<String>,
    /// The label the function printed; absent when it must be written by hand.
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<Value>,
    /// The id of the event published on the `orders` topic (set after the
    /// event, which carries the rest, is published).
    #[serde(skip_serializing_if = "String::is_empty")]
    event: String,
}

/// A charge the payment service made.
#[derive(Clone, Serialize, Deserialize)]
struct Charge {
    id: String,
}

/// `POST /v1/orders/{id}/approve`'s body, and the event the instance waits
/// for.
#[derive(Serialize, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// Who approves.
    #[garde(length(min = 1, max = 200), custom(not_blank))]
    by: String,
}

fn not_blank(text: &str, _: &()) -> garde::Result {
    if text.trim().is_empty() {
        Err(garde::Error::new("must not be blank"))
    } else {
        Ok(())
    }
}

/// The step that waits for an approval, and the type of its event.
const APPROVAL: &str = "approval";

/// The workflow's knobs, from wrangler.toml's vars when the order is placed.
#[derive(Clone, Serialize, Deserialize)]
struct Settings {
    payment_url: String,
    approval_cents: u64,
    approval_seconds: u64,
    label_seconds: u64,
}

impl Settings {
    fn from_env(env: &Env) -> Result<Self, Error> {
        let number = |name: &str, default: u64| -> Result<u64, Error> {
            match setting(env, name) {
                Some(text) => text.trim().parse().map_err(|_| {
                    Error::internal(format!("{name} is not a whole number: {text:?}")).permanent()
                }),
                None => Ok(default),
            }
        };
        let payment_url = setting(env, "PAYMENT_URL").ok_or_else(|| {
            Error::with_status(
                StatusCode::SERVICE_UNAVAILABLE,
                "orders are not configured on this gateway: set PAYMENT_URL",
            )
        })?;
        Ok(Self {
            payment_url: payment_url.trim_end_matches('/').to_owned(),
            approval_cents: number("ORDER_APPROVAL_CENTS", 100_000)?,
            approval_seconds: number("ORDER_APPROVAL_SECONDS", 86_400)?,
            label_seconds: number("ORDER_LABEL_SECONDS", 3_600)?,
        })
    }
}

/// The run of one order.
async fn fulfil(event: WorkflowEvent<Placed>, step: Step) -> Result<Fulfilment, Error> {
    let env = event.env().clone();
    let Placed {
        order,
        origin,
        settings,
    } = event.payload;
    let order = Rc::new(order);
    let total_cents = order.total_cents();
    let mut saga = Saga::new();

    let reserve = {
        let (env, order) = (env.clone(), order.clone());
        move || write_hold(env.clone(), order.clone(), false)
    };
    step.run("reserve stock", reserve).await?;
    {
        let (env, order) = (env.clone(), order.clone());
        saga.on_failure("release stock", move || {
            write_hold(env.clone(), order.clone(), true)
        });
    }

    // Registered before the charge: an attempt whose answer was lost may
    // have charged, so a failed charge is refunded too, by its idempotency
    // key (a refund of nothing is a no-op).
    {
        let (url, id) = (settings.payment_url.clone(), order.id.clone());
        saga.on_failure("refund", move || refund(url.clone(), id.clone()));
    }
    let charging = StepConfig::new()
        .retries(3, Duration::from_millis(500), Backoff::Exponential)
        .timeout(Duration::from_secs(10));
    let charge = {
        let (url, order) = (settings.payment_url.clone(), order.clone());
        move || charge(url.clone(), order.clone())
    };
    let charge = match step.run_with("charge", charging, charge).await {
        Ok(charge) => charge,
        Err(err) => {
            let reason = format!("the payment failed: {}", err.detail());
            return give_up(&env, &step, &mut saga, &order, None, "failed", reason).await;
        }
    };

    let mut approved_by = None;
    if total_cents > settings.approval_cents {
        let wait = Duration::from_secs(settings.approval_seconds);
        match step
            .wait_for_event::<Approval>(APPROVAL, APPROVAL, wait)
            .await
        {
            Ok(approval) => approved_by = Some(approval.by),
            Err(err) if err.status() == StatusCode::GATEWAY_TIMEOUT => {
                let reason = format!(
                    "no approval within {} s for an order of {total_cents} cents",
                    settings.approval_seconds
                );
                let charged = Some(charge.id);
                return give_up(&env, &step, &mut saga, &order, charged, "cancelled", reason).await;
            }
            Err(err) => return Err(err),
        }
    }

    let submit = {
        let (env, order, origin) = (env.clone(), order.clone(), origin.clone());
        move |waiter| {
            let (env, order, origin) = (env.clone(), order.clone(), origin.clone());
            async move {
                let input =
                    serde_json::to_vec(&json!({"order_id": order.id, "ship_to": order.ship_to}))?;
                crate::jobs::pipeline(&env)?
                    .submit_for(Some(waiter), "label", "application/json", &input, &origin)
                    .await
            }
        }
    };
    // The fallback: an order whose label could not be printed still ships,
    // with a label written by hand.
    let label_wait = Duration::from_secs(settings.label_seconds);
    let (label, reason) = match step.job("label", BINDING, label_wait, submit).await {
        Ok(JobRecord { result, .. }) => (result, None),
        Err(err) => {
            let reason = format!("the label must be written by hand: {}", err.detail());
            let note = {
                let (env, id, reason) = (env.clone(), order.id.clone(), reason.clone());
                move || mark_for_hand_label(env.clone(), id.clone(), reason.clone())
            };
            step.run("label fallback", note).await?;
            (None, Some(reason))
        }
    };

    let mut fulfilment = Fulfilment {
        order: order.id.clone(),
        status: "completed",
        reason,
        total_cents,
        charge: Some(charge.id),
        approved_by,
        label,
        event: String::new(),
    };
    fulfilment.event = publish_step(&env, &step, "order.completed", &fulfilment).await?;
    Ok(fulfilment)
}

/// The end of an order that cannot complete: undo what was done, newest
/// first, then say why on the `orders` topic. `charge` is the charge that was
/// made (and is refunded now), if one was.
async fn give_up(
    env: &Env,
    step: &Step,
    saga: &mut Saga,
    order: &Order,
    charge: Option<String>,
    status: &'static str,
    reason: String,
) -> Result<Fulfilment, Error> {
    saga.compensate(step).await?;
    let mut fulfilment = Fulfilment {
        order: order.id.clone(),
        status,
        reason: Some(reason),
        total_cents: order.total_cents(),
        charge,
        approved_by: None,
        label: None,
        event: String::new(),
    };
    fulfilment.event = publish_step(env, step, &format!("order.{status}"), &fulfilment).await?;
    Ok(fulfilment)
}

/// Publishes `event_type` with the fulfilment as its data, as a step; returns
/// the event's id. Delivery is at least once: an attempt that published and
/// then failed (its answer lost) is retried, and publishes again, under a new
/// event id; subscribers that must act once key on the order.
async fn publish_step(
    env: &Env,
    step: &Step,
    event_type: &str,
    fulfilment: &Fulfilment,
) -> Result<String, Error> {
    let data = serde_json::to_value(fulfilment)?;
    let env = env.clone();
    let event_type = event_type.to_owned();
    step.run(&format!("publish {event_type}"), move || {
        let (env, event_type, data) = (env.clone(), event_type.clone(), data.clone());
        async move {
            let mut attributes = serde_json::Map::new();
            attributes.insert("status".into(), data["status"].clone());
            let event = NewEvent {
                event_type,
                attributes,
                data,
            };
            let (event, _) = crate::FANOUT.open(&env)?.publish(TOPIC, event).await?;
            Ok(event.id)
        }
    })
    .await
}

fn store(env: &Env) -> Result<Kv, Error> {
    Kv::from_env(env, "STORE")
}

/// The stock an order holds, in KV under `stock-hold:<order>`.
#[derive(Serialize, Deserialize)]
struct Hold {
    items: Vec<Item>,
    released: bool,
}

/// The order's hold, written whole: a release rather than a read and change,
/// because a KV read may be stale, and a stale miss must not leave the stock
/// held.
async fn write_hold(env: Env, order: Rc<Order>, released: bool) -> Result<(), Error> {
    let hold = Hold {
        items: order.items.clone(),
        released,
    };
    store(&env)?
        .put_json(
            &format!("stock-hold:{}", order.id),
            &hold,
            PutOptions::new(),
        )
        .await
}

async fn mark_for_hand_label(env: Env, order: String, reason: String) -> Result<(), Error> {
    store(&env)?
        .put_text(&format!("hand-label:{order}"), &reason, PutOptions::new())
        .await
}

/// One charge attempt: 201 is the charge; 402 (declined) and other 4xx are
/// final; 408, 429, 5xx and network failures are retried by the step.
async fn charge(payment_url: String, order: Rc<Order>) -> Result<Charge, Error> {
    let body = serde_json::to_vec(&json!({
        "order_id": order.id,
        "customer": order.customer,
        "amount_cents": order.total_cents(),
    }))?;
    let reply = post(&format!("{payment_url}/charges"), &order.id, body).await?;
    match reply.status {
        200 | 201 => reply.json().map_err(|e| {
            Error::new(
                ErrorKind::Upstream,
                format!("the payment service's charge: {}", e.detail()),
            )
        }),
        status @ 400..=499 if !matches!(status, 408 | 429) => Err(Error::new(
            ErrorKind::Upstream,
            format!(
                "the payment service refused: {status} {}",
                reply.excerpt(200)
            ),
        )
        .permanent()),
        status => Err(Error::new(
            ErrorKind::Upstream,
            format!("the payment service answered {status}"),
        )),
    }
}

/// Refunds whatever the order's idempotency key charged; a key that charged
/// nothing (404) has nothing to refund.
async fn refund(payment_url: String, order: String) -> Result<(), Error> {
    let body = serde_json::to_vec(&json!({ "idempotency_key": order }))?;
    let reply = post(&format!("{payment_url}/refunds"), &order, body).await?;
    match reply.status {
        200 | 404 => Ok(()),
        status => Err(Error::new(
            ErrorKind::Upstream,
            format!("the refund of order {order} answered {status}"),
        )),
    }
}

async fn post(url: &str, key: &str, body: Vec<u8>) -> Result<outbound::OutboundReply, Error> {
    outbound::send(&OutboundRequest {
        method: "POST",
        url: url.to_owned(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            // The payment service charges once per key, however often a step retries.
            ("idempotency-key".into(), key.to_owned()),
        ],
        body,
        timeout_ms: 8_000,
        max_response_bytes: 64 * 1024,
    })
    .await
}

/// The workflow, registered in `entry!` as the class `OrderFulfillment`.
pub fn definition() -> Definition {
    Definition::new(NAME, fulfil)
        .trace(TRACE)
        .metered(crate::OPS)
}

fn orders(env: &Env) -> Result<Workflow<Placed>, Error> {
    Workflow::from_env(env, BINDING)
}

/// `POST /v1/orders`: a valid order starts its instance (201). Placing the
/// same id again starts nothing (409).
pub async fn place(
    env: Env,
    Origin(origin): Origin,
    Valid(Json(order)): Valid<Json<Order>>,
) -> Result<(StatusCode, Json<Value>), Error> {
    let settings = Settings::from_env(&env)?;
    let origin = setting(&env, "PUBLIC_URL").unwrap_or(origin);
    let total_cents = order.total_cents();
    let id = order.id.clone();
    orders(&env)?
        .create(
            Some(&id),
            &Placed {
                order,
                origin,
                settings,
            },
        )
        .await
        .map_err(|err| match err.status() {
            StatusCode::CONFLICT => Error::with_status(
                StatusCode::CONFLICT,
                format!("order {id:?} has already been placed"),
            ),
            _ => err,
        })?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "total_cents": total_cents })),
    ))
}

/// An instance as the API shows it: the engine's status, the trace's record
/// and every step attempt.
#[derive(Serialize)]
pub struct InstanceView {
    id: String,
    engine: InstanceStatus,
    instance: Option<InstanceRecord>,
    steps: Vec<StepRecord>,
}

async fn view(env: &Env, id: &str) -> Result<InstanceView, Error> {
    let engine = orders(env)?.status(id).await?;
    let trace = Trace::from_env(env, TRACE)?;
    Ok(InstanceView {
        id: id.to_owned(),
        engine,
        instance: trace.instance(NAME, id).await?,
        steps: trace.steps(NAME, id).await?,
    })
}

/// `GET /v1/orders/{id}`.
pub async fn show(env: Env, Path(id): Path<String>) -> Result<Json<InstanceView>, Error> {
    Ok(Json(view(&env, &id).await?))
}

/// `POST /v1/orders/{id}/approve` `{"by": "…"}`: 202 once the waiting
/// instance has it; 404 for an unknown order, 409 for one that has ended or is
/// not waiting for an approval (as its trace shows: the engine's `waiting`
/// status does not say which wait).
pub async fn approve(
    env: Env,
    Path(id): Path<String>,
    Valid(Json(approval)): Valid<Json<Approval>>,
) -> Result<StatusCode, Error> {
    let workflow = orders(&env)?;
    let waiting = Trace::from_env(&env, TRACE)?
        .steps(NAME, &id)
        .await?
        .iter()
        .any(|s| s.name == APPROVAL && s.outcome == "waiting");
    if waiting {
        // The binding answers 404 and 409 itself, should it have ended since.
        workflow.send_event(&id, APPROVAL, &approval).await?;
        return Ok(StatusCode::ACCEPTED);
    }
    // Only a refusal needs the engine's status, to say why (404 if unknown).
    let engine = workflow.status(&id).await?;
    let why = if engine.is_finished() {
        format!("order {id:?} has ended ({})", engine.status)
    } else {
        format!("order {id:?} is not waiting for an approval")
    };
    Err(Error::with_status(StatusCode::CONFLICT, why))
}

/// The workflow named in a `/v1/workflows/{name}` path: this gateway runs one.
fn known(name: &str) -> Result<(), Error> {
    if name == NAME {
        Ok(())
    } else {
        Err(Error::not_found(format!(
            "no workflow {name:?}; this gateway runs {NAME:?}"
        )))
    }
}

/// `GET /v1/workflows/{name}/instances`: the newest 100, from the trace.
pub async fn instances(
    env: Env,
    Path(name): Path<String>,
) -> Result<Json<Vec<InstanceRecord>>, Error> {
    known(&name)?;
    Ok(Json(
        Trace::from_env(&env, TRACE)?.instances(NAME, 100).await?,
    ))
}

/// `GET /v1/workflows/{name}/instances/{id}`.
pub async fn instance(
    env: Env,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<InstanceView>, Error> {
    known(&name)?;
    Ok(Json(view(&env, &id).await?))
}
