//! The throughput workloads (bench/hotpath.mjs) on edgeway:
//! (a) `GET /` text; (b) `GET /hello/{name}?greeting=` JSON; (c) the 130 GitHub API
//! routes; (d) `GET /mw/ping` behind request id, timing, CORS and a body limit;
//! (e) `POST /orders`: a 16 KB order validated into a typed struct (the same
//! rules as the Hono twin's zod schema) and answered with a computed summary.

use edgeway::middleware::{body_limit, request_id, timing, Cors};
use edgeway::{App, Json, Method, Path, Query, Valid};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Greeting {
    greeting: Option<String>,
}

#[derive(Serialize)]
struct Echo {
    name: String,
    greeting: String,
}

async fn hello(Path(name): Path<String>, Query(q): Query<Greeting>) -> Json<Echo> {
    Json(Echo {
        greeting: q.greeting.unwrap_or_else(|| "hello".into()),
        name,
    })
}

#[derive(Deserialize, garde::Validate)]
struct Order {
    #[garde(length(min = 1, max = 64))]
    id: String,
    #[garde(dive)]
    customer: Customer,
    #[garde(length(min = 3, max = 3))]
    currency: String,
    #[garde(dive)]
    shipping: Address,
    #[garde(length(max = 500))]
    note: Option<String>,
    #[garde(length(min = 1, max = 500), dive)]
    items: Vec<Item>,
}

#[derive(Deserialize, garde::Validate)]
struct Customer {
    #[garde(length(min = 1, max = 64))]
    id: String,
    #[garde(length(min = 3, max = 254), contains("@"))]
    email: String,
    #[garde(length(min = 1, max = 128))]
    name: String,
}

#[derive(Deserialize, garde::Validate)]
struct Address {
    #[garde(length(min = 2, max = 2))]
    country: String,
    #[garde(length(min = 1, max = 16))]
    postal_code: String,
    #[garde(length(min = 1, max = 64))]
    city: String,
    #[garde(length(min = 1, max = 128))]
    street: String,
}

#[derive(Deserialize, garde::Validate)]
struct Item {
    #[garde(length(min = 1, max = 32))]
    sku: String,
    #[garde(length(min = 1, max = 128))]
    name: String,
    #[garde(range(min = 1, max = 1000))]
    quantity: u32,
    #[garde(range(min = 0, max = 10_000_000))]
    unit_price_cents: u64,
    #[garde(range(min = 0, max = 10_000))]
    tax_rate_bp: u32,
}

#[derive(Serialize)]
struct Summary {
    id: String,
    currency: String,
    lines: usize,
    units: u64,
    subtotal_cents: u64,
    tax_cents: u64,
    total_cents: u64,
}

async fn order(Valid(Json(order)): Valid<Json<Order>>) -> Json<Summary> {
    let (mut units, mut subtotal, mut tax) = (0u64, 0u64, 0u64);
    for item in &order.items {
        let line = u64::from(item.quantity) * item.unit_price_cents;
        units += u64::from(item.quantity);
        subtotal += line;
        // Rounded half up to the cent, as the Hono twin does.
        tax += (line * u64::from(item.tax_rate_bp) + 5_000) / 10_000;
    }
    Json(Summary {
        lines: order.items.len(),
        id: order.id,
        currency: order.currency,
        units,
        subtotal_cents: subtotal,
        tax_cents: tax,
        total_cents: subtotal + tax,
    })
}

fn app() -> App {
    let github = include_str!("../../../data/github-api-routes.txt")
        .lines()
        .filter(|line| line.starts_with('/'))
        .fold(App::new(), |app, route| app.get(route, || async { "gh" }));
    let middleware = App::new()
        .layer(request_id)
        .layer(timing)
        .layer(
            Cors::new()
                .allow_origin("https://app.example")
                .allow_methods([Method::Get, Method::Post]),
        )
        .layer(body_limit(64 * 1024))
        .get("/ping", || async { "pong" });
    App::new()
        .get("/", || async { "Hello from edgeway!" })
        .get("/hello/{name}", hello)
        .post("/orders", order)
        .nest("/gh", github)
        .nest("/mw", middleware)
}

edgeway::entry!(app);
