//! Jobs: heavy work offloaded to AWS Lambda (`/v1/jobs`).
//!
//! Configuration: the secrets `JOBS_SIGNING_KEY`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY` (and optional `AWS_SESSION_TOKEN`); the vars
//! `AWS_REGION`, `JOBS_FUNCTION`, optional `LAMBDA_ENDPOINT` (a local emulator) and
//! optional `PUBLIC_URL` (the origin the function calls back; by default the
//! origin the job was submitted to), and optional `JOBS_DEADLINE_SECONDS` (how
//! long a running job may wait for its callback; 21600 by default: an
//! asynchronous invocation may wait in Lambda's own queue, and be retried, for up
//! to six hours, its default maximum event age).

use edgeway::aws::lambda::{Lambda, LambdaConfig};
use edgeway::cron::Schedule;
use edgeway::jobs::{JobKeys, JobRecord, JobTask, Jobs};
use edgeway::kv::Kv;
use edgeway::platform::setting;
use edgeway::queue::{Failure, Message, Producer};
use edgeway::worker::Env;
use edgeway::{Error, ErrorKind, HeaderMap, Json, Path, Query, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

/// The job kinds the gateway accepts, with the inputs they take.
const KINDS: &[(&str, &str)] = &[
    (
        "thumbnail",
        "an image (image/png, image/jpeg, image/gif or image/webp)",
    ),
    ("wordcount", r#"JSON {"text": "…"}"#),
];

/// The largest input accepted (KV holds up to 25 MiB; images rarely need more).
pub const INPUT_LIMIT: usize = 8 << 20;

/// The pipeline; job callbacks wake the order workflow's instances waiting on
/// their label jobs.
pub(crate) fn pipeline(env: &Env) -> Result<Jobs, Error> {
    let key = setting(env, "JOBS_SIGNING_KEY").ok_or_else(|| {
        Error::with_status(
            StatusCode::SERVICE_UNAVAILABLE,
            "jobs are not configured on this gateway: set the JOBS_SIGNING_KEY secret",
        )
    })?;
    Ok(Jobs::new(
        Kv::from_env(env, "STORE")?,
        Producer::from_env(env, "EVENTS")?,
        JobKeys::new(&key)?,
    )
    .wakes_workflows(env))
}

/// Checks the input against its kind before anything is stored.
fn validate(kind: &str, content_type: &str, input: &[u8]) -> Result<(), Error> {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    match kind {
        "thumbnail" => {
            if !matches!(
                essence,
                "image/png" | "image/jpeg" | "image/gif" | "image/webp"
            ) {
                return Err(Error::new(
                    ErrorKind::UnsupportedMediaType,
                    format!("a thumbnail job takes {}, not {essence:?}", KINDS[0].1),
                ));
            }
            if input.is_empty() {
                return Err(Error::bad_request("the image is empty"));
            }
            Ok(())
        }
        "wordcount" => {
            if essence != "application/json" {
                return Err(Error::new(
                    ErrorKind::UnsupportedMediaType,
                    "a wordcount job takes application/json",
                ));
            }
            let Json(input) = Json::<Value>::from_slice(input)?;
            if !input.get("text").is_some_and(Value::is_string) {
                return Err(Error::new(
                    ErrorKind::JsonShape,
                    r#"a wordcount job takes a JSON object {"text": "…"}"#,
                ));
            }
            Ok(())
        }
        _ => {
            let known: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
            Err(Error::not_found(format!(
                "no job kind {kind:?}; this gateway runs {}",
                known.join(", ")
            )))
        }
    }
}

/// `POST /v1/jobs/{kind}`: validate, store, enqueue; `202 {id, status}`.
pub async fn submit(
    env: Env,
    Path(kind): Path<String>,
    headers: HeaderMap,
    req: Request,
) -> Result<(StatusCode, Json<JobRecord>), Error> {
    let content_type = headers.get("content-type").unwrap_or("").to_owned();
    let public = setting(&env, "PUBLIC_URL");
    let origin = public.as_deref().unwrap_or_else(|| req.origin()).to_owned();
    let input = <Vec<u8> as edgeway::FromRequest>::from_request(req).await?;
    edgeway::jobs::check_kind(&kind)?;
    validate(&kind, &content_type, &input)?;
    let record = pipeline(&env)?
        .submit(&kind, &content_type, &input, &origin)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(record)))
}

/// `GET /v1/jobs/{id}`: status, attempts, timings and result.
pub async fn show(env: Env, Path(id): Path<String>) -> Result<Json<JobRecord>, Error> {
    pipeline(&env)?
        .get(&id)
        .await?
        .map(Json)
        .ok_or_else(|| Error::not_found(format!("no job {id:?} (unknown or expired)")))
}

#[derive(Deserialize)]
pub struct InputQuery {
    expires: u64,
    signature: String,
}

/// `GET /v1/jobs/{id}/input?expires&signature`: the input, for the function.
pub async fn input(
    env: Env,
    Path(id): Path<String>,
    Query(q): Query<InputQuery>,
) -> Result<Response, Error> {
    let (content_type, bytes) = pipeline(&env)?.input(&id, q.expires, &q.signature).await?;
    Ok(Response::builder(StatusCode::OK)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .body(bytes))
}

/// `POST /v1/jobs/{id}/result`: the function's signed callback.
pub async fn result(
    env: Env,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Vec<u8>,
) -> Result<Json<Value>, Error> {
    let record = pipeline(&env)?
        .complete(&id, |name| headers.get(name).map(str::to_owned), &body)
        .await?;
    Ok(Json(json!({ "id": record.id, "status": record.status })))
}

/// The consumer handler for `jobs.invoke`.
pub async fn invoke(job: Message<JobTask>) -> Result<(), Failure> {
    let env = job.env();
    let jobs = pipeline(env).map_err(|e| Failure::permanent(e.detail()))?;
    let lambda = LambdaConfig::from_env(env)
        .map(Lambda::new)
        .map_err(|e| Failure::permanent(e.detail()));
    let function = setting(env, "JOBS_FUNCTION").unwrap_or_else(|| "edgeway-jobs".into());
    match lambda {
        Ok(lambda) => jobs.invoke(&job, &lambda, &function).await,
        Err(failure) => Err(failure),
    }
}

/// The cron sweep: fails, with a reason, every job whose function has not called
/// back within `JOBS_DEADLINE_SECONDS` of its invocation.
pub async fn sweep(schedule: Schedule) -> Result<(), Error> {
    let env = schedule.env();
    if setting(env, "JOBS_SIGNING_KEY").is_none() {
        // Jobs are not configured here: nothing can be running.
        return Ok(());
    }
    let deadline = match setting(env, "JOBS_DEADLINE_SECONDS") {
        Some(text) => text.trim().parse().map_err(|_| {
            Error::internal(format!(
                "JOBS_DEADLINE_SECONDS is not a number of seconds: {text:?}"
            ))
        })?,
        None => 21_600,
    };
    let failed = pipeline(env)?.sweep(deadline).await?;
    edgeway::observe::log(
        edgeway::observe::Level::Info,
        json!({"msg": "job sweep", "deadline_seconds": deadline, "failed": failed}),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_checked_per_kind() {
        assert!(validate("thumbnail", "image/png", b"\x89PNG").is_ok());
        assert_eq!(
            validate("thumbnail", "text/plain", b"x")
                .unwrap_err()
                .kind(),
            ErrorKind::UnsupportedMediaType
        );
        assert!(validate("thumbnail", "image/png", b"").is_err());
        assert!(validate("wordcount", "application/json", br#"{"text":"a b"}"#).is_ok());
        assert_eq!(
            validate("wordcount", "application/json", br#"{"text":1}"#)
                .unwrap_err()
                .kind(),
            ErrorKind::JsonShape
        );
        assert_eq!(
            validate("wordcount", "application/json", b"{")
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidJson
        );
        assert_eq!(
            validate("mine-bitcoin", "application/json", b"{}")
                .unwrap_err()
                .status(),
            StatusCode::NOT_FOUND
        );
    }
}
