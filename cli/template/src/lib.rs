//! {{name}}: an edgeway worker. Short links live in KV; every visit is sent to a
//! queue and counted by the queue's consumer, off the request path.

use edgeway::kv::PutOptions;
use edgeway::queue::{Consumer, Failure, Message};
use edgeway::{App, Error, ErrorKind, Json, Origin, Path, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

edgeway::binding!(Links: Kv = "LINKS");
edgeway::binding!(Clicks: Queue<Click> = "CLICKS");

/// The body of `PUT /links/{slug}`.
#[derive(Deserialize)]
struct NewLink {
    url: String,
}

/// One visit, as the `CLICKS` queue carries it.
#[derive(Serialize, Deserialize)]
struct Click {
    slug: String,
}

fn link_key(slug: &str) -> Result<String, Error> {
    let key = format!("link:{slug}");
    edgeway::kv::check_key(&key)?;
    Ok(key)
}

/// `PUT /links/{slug}`: creates or replaces a short link.
async fn put_link(
    links: Links,
    Origin(origin): Origin,
    Path(slug): Path<String>,
    Json(new): Json<NewLink>,
) -> Result<(StatusCode, Json<Value>), Error> {
    if !(new.url.starts_with("https://") || new.url.starts_with("http://")) {
        return Err(
            Error::new(ErrorKind::JsonShape, "`url` must be an http or https URL")
                .with_member("field", "url"),
        );
    }
    links
        .put_text(&link_key(&slug)?, &new.url, PutOptions::new())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "short": format!("{origin}/{slug}"), "url": new.url })),
    ))
}

/// `GET /{slug}`: redirects to the link and queues a click.
async fn visit(links: Links, clicks: Clicks, Path(slug): Path<String>) -> Result<Response, Error> {
    let url = links
        .get_text(&link_key(&slug)?)
        .await?
        .ok_or_else(|| Error::not_found(format!("no short link {slug:?}")))?;
    clicks.send(&Click { slug }).await?;
    Ok(Response::found(&url))
}

/// `GET /links/{slug}`: the link and how many visits were counted so far.
async fn show_link(links: Links, Path(slug): Path<String>) -> Result<Json<Value>, Error> {
    let url = links
        .get_text(&link_key(&slug)?)
        .await?
        .ok_or_else(|| Error::not_found(format!("no short link {slug:?}")))?;
    let clicks = links.list(&format!("click:{slug}:")).await?.len();
    Ok(Json(json!({ "slug": slug, "url": url, "clicks": clicks })))
}

const USAGE: &str = "{{name}}: PUT /links/{slug} with {\"url\": \"https://…\"}, then GET /{slug}";

fn app() -> App {
    App::new()
        .get("/", || async { USAGE })
        .put("/links/{slug}", put_link)
        .get("/links/{slug}", show_link)
        .get("/{slug}", visit)
}

/// Counts each click as its own KV key, named by the queue message id: a
/// redelivered message writes the same key again, and concurrent clicks never
/// overwrite each other (a read-modify-write counter on KV would lose updates).
fn consumer() -> Consumer {
    Consumer::new().on_queue("{{name}}-clicks", |message: Message<Click>| async move {
        let links = Links::from_env(message.env())?;
        let key = format!("click:{}:{}", message.body.slug, message.id);
        links
            .put_text(&key, "", PutOptions::new())
            .await
            .map_err(Failure::from)
    })
}

edgeway::entry!(fetch: app, queue: consumer);
