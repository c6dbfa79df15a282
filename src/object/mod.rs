//! Durable Objects in Rust (feature `objects`): a class is an edgeway [`App`]
//! served by the object's `fetch`, with the same extractors and problem+json
//! errors as a worker's handlers, plus SQLite storage, transactions and alarms.
//! Callers reach an object through its namespace binding, [`Objects`], with
//! typed JSON calls whose errors come back as [`Error`]s.
//!
//! An object runs one request at a time between awaits, and its SQL calls are
//! synchronous, so a handler that reads and writes storage without awaiting in
//! between is atomic: the place for state that must not lose updates (a list
//! many clients change at once, a counter).
//!
//! ```ignore
//! async fn add(State(ctx): State<ObjectContext>, Json(n): Json<i64>) -> Result<Json<i64>, Error> {
//!     let storage = ctx.storage();
//!     storage.run("CREATE TABLE IF NOT EXISTS total (v INTEGER)", &[])?;
//!     ...
//! }
//! fn tally() -> object::Definition {
//!     object::Definition::new(|| App::new().post("/add", add))
//! }
//! edgeway::entry!(fetch: app, objects: { Tally: tally });
//! ```
//!
//! `entry!` exports one class per object from edgeway's shim, extending
//! `DurableObject`; `wrangler.toml` binds it (`[[durable_objects.bindings]]`)
//! and declares it with SQLite storage (`new_sqlite_classes` in a migration).

// Natively only the types are used (user code type-checks its objects).
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

pub(crate) mod claims;
mod counter;

use std::future::Future;
use std::rc::Rc;

use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::JsValue;

pub use claims::claims;
pub use counter::{counter, Counters};

use crate::app::App;
use crate::error::Error;
use crate::extract::FromRequestParts;
use crate::http::{Method, StatusCode};
use crate::request::Request;

type Alarm = Rc<dyn Fn(ObjectContext) -> LocalBoxFuture<'static, Result<(), Error>>>;

/// A Durable Object class: the app its `fetch` serves and what its alarm does.
/// Register it with [`entry!`](crate::entry) under its `class_name`.
pub struct Definition {
    pub(crate) app: Rc<dyn Fn() -> App>,
    pub(crate) alarm: Option<Alarm>,
}

impl Definition {
    /// An object whose requests `app` serves. The app is built once per isolate
    /// and class; handlers reach their object with the [`ObjectContext`] extractor.
    pub fn new(app: impl Fn() -> App + 'static) -> Self {
        Self {
            app: Rc::new(app),
            alarm: None,
        }
    }

    /// Runs `alarm` when the alarm set with [`Storage::set_alarm`] fires. An
    /// error is logged and makes the runtime retry the alarm.
    pub fn on_alarm<F, Fut>(mut self, alarm: F) -> Self
    where
        F: Fn(ObjectContext) -> Fut + 'static,
        Fut: Future<Output = Result<(), Error>> + 'static,
    {
        self.alarm = Some(Rc::new(move |ctx| Box::pin(alarm(ctx))));
        self
    }
}

/// The object a request or an alarm runs in: its id, storage and bindings.
#[derive(Clone)]
pub struct ObjectContext {
    state: JsValue,
    env: worker::Env,
}

impl ObjectContext {
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub(crate) fn new(state: JsValue, env: worker::Env) -> Self {
        Self { state, env }
    }

    /// The object's id, as hex.
    pub fn id(&self) -> String {
        #[cfg(target_arch = "wasm32")]
        return crate::js::object::object_id(&self.state);
        #[cfg(not(target_arch = "wasm32"))]
        String::new()
    }

    /// The name the object's id was made from, when the runtime tells.
    pub fn name(&self) -> Option<String> {
        #[cfg(target_arch = "wasm32")]
        return crate::js::object::object_name(&self.state);
        #[cfg(not(target_arch = "wasm32"))]
        None
    }

    /// The object's SQLite storage.
    pub fn storage(&self) -> Storage {
        #[cfg(target_arch = "wasm32")]
        return Storage {
            js: crate::js::object::object_storage(&self.state),
        };
        #[cfg(not(target_arch = "wasm32"))]
        Storage {
            js: JsValue::UNDEFINED,
        }
    }

    /// The worker's bindings.
    pub fn env(&self) -> &worker::Env {
        &self.env
    }
}

/// The object the request is served in; a 500 outside a Durable Object.
impl FromRequestParts for ObjectContext {
    fn from_request_parts(req: &mut Request) -> Result<Self, Error> {
        #[cfg(target_arch = "wasm32")]
        if let Some(js) = &req.js {
            if crate::js::object::is_object_state(&js.ctx) {
                use wasm_bindgen::JsCast;
                return Ok(Self::new(js.ctx.clone(), js.env.clone().unchecked_into()));
            }
        }
        let _ = req;
        Err(Error::internal(
            "ObjectContext is only available to a Durable Object's handlers",
        ))
    }
}

/// A SQL value to bind: a number, text or null (as JSON values).
pub type SqlValue = serde_json::Value;

/// An object's SQLite storage. Calls are synchronous: statements run with no
/// await between them are applied together, and no other request of the object
/// runs in between.
#[derive(Clone)]
pub struct Storage {
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    js: JsValue,
}

impl Storage {
    /// Runs a statement (`?` placeholders, bound in order) for its effect;
    /// returns the rows it wrote.
    pub fn run(&self, query: &str, bindings: &[SqlValue]) -> Result<u64, Error> {
        #[cfg(target_arch = "wasm32")]
        {
            let bindings = serde_json::to_string(bindings).unwrap_or_else(|_| "[]".into());
            crate::js::object::sql_run(&self.js, query, &bindings)
                .map(|n| n as u64)
                .map_err(|e| sql_error(query, &e))
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (query, bindings);
            Err(outside_workerd())
        }
    }

    /// Runs a query and decodes each row (an object of its columns) as `T`.
    pub fn query<T: DeserializeOwned>(
        &self,
        query: &str,
        bindings: &[SqlValue],
    ) -> Result<Vec<T>, Error> {
        #[cfg(target_arch = "wasm32")]
        {
            let bindings = serde_json::to_string(bindings).unwrap_or_else(|_| "[]".into());
            let rows = crate::js::object::sql_rows(&self.js, query, &bindings)
                .map_err(|e| sql_error(query, &e))?;
            serde_json::from_str(&rows)
                .map_err(|e| Error::internal(format!("rows of {query:?} do not decode: {e}")))
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (query, bindings);
            Err(outside_workerd())
        }
    }

    /// Runs `work` in a transaction: every statement it runs is applied, or,
    /// when it returns an error, none is.
    pub fn transaction<R>(&self, work: impl FnOnce() -> Result<R, Error>) -> Result<R, Error> {
        #[cfg(target_arch = "wasm32")]
        {
            use std::panic::AssertUnwindSafe;
            let mut work = Some(work);
            let mut outcome = None;
            // A panic in `work` reaches JS as a thrown error, which rolls the
            // transaction back; nothing half-written is kept.
            let mut work_slot = AssertUnwindSafe(&mut work);
            let mut outcome_slot = AssertUnwindSafe(&mut outcome);
            let mut body = move || {
                let result = work_slot.take().map(|w| w());
                let ok = matches!(result, Some(Ok(_)));
                **outcome_slot = result;
                ok
            };
            let committed = crate::js::object::transaction_sync(&self.js, &mut body);
            match (outcome, committed) {
                (Some(Ok(value)), Ok(())) => Ok(value),
                (Some(Err(err)), _) => Err(err),
                (_, Err(thrown)) => Err(sql_error("the transaction", &thrown)),
                (None, Ok(())) => Err(Error::internal("the transaction did not run")),
            }
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = work;
            Err(outside_workerd())
        }
    }

    /// Sets the object's alarm to fire at `at_ms` (ms since the epoch), replacing
    /// any earlier one.
    pub async fn set_alarm(&self, at_ms: u64) -> Result<(), Error> {
        #[cfg(target_arch = "wasm32")]
        {
            settle(
                "setAlarm",
                crate::js::object::set_alarm(&self.js, at_ms as f64),
            )
            .await
            .map(|_| ())
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = at_ms;
            Err(outside_workerd())
        }
    }

    /// When the alarm will fire, if one is set.
    pub async fn alarm(&self) -> Result<Option<u64>, Error> {
        #[cfg(target_arch = "wasm32")]
        {
            let at = settle("getAlarm", crate::js::object::get_alarm(&self.js)).await?;
            Ok(at.as_f64().map(|ms| ms as u64))
        }
        #[cfg(not(target_arch = "wasm32"))]
        Err(outside_workerd())
    }

    /// Deletes everything the object stores (its tables and keys), so an object
    /// that is done leaves nothing behind.
    pub async fn delete_all(&self) -> Result<(), Error> {
        #[cfg(target_arch = "wasm32")]
        {
            settle("deleteAll", crate::js::object::delete_all(&self.js))
                .await
                .map(|_| ())
        }
        #[cfg(not(target_arch = "wasm32"))]
        Err(outside_workerd())
    }

    /// Cancels the alarm.
    pub async fn delete_alarm(&self) -> Result<(), Error> {
        #[cfg(target_arch = "wasm32")]
        {
            settle("deleteAlarm", crate::js::object::delete_alarm(&self.js))
                .await
                .map(|_| ())
        }
        #[cfg(not(target_arch = "wasm32"))]
        Err(outside_workerd())
    }
}

/// Awaits a storage call's promise; a rejection is an error naming the call.
#[cfg(target_arch = "wasm32")]
async fn settle(what: &str, promise: js_sys::Promise) -> Result<JsValue, Error> {
    crate::js::settled(&promise)
        .await
        .map_err(|e| sql_error(what, &e))
}

#[cfg(target_arch = "wasm32")]
fn sql_error(what: &str, thrown: &JsValue) -> Error {
    Error::internal(format!(
        "{what}: {}",
        crate::js::object::thrown_message(thrown)
    ))
}

#[cfg(not(target_arch = "wasm32"))]
fn outside_workerd() -> Error {
    Error::internal("Durable Objects run only in workerd")
}

/// A Durable Object namespace binding (`[[durable_objects.bindings]]`).
#[derive(Clone)]
pub struct Objects {
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    js: JsValue,
    binding: std::rc::Rc<str>,
}

impl Objects {
    /// The namespace bound as `binding` in `env`.
    pub fn from_env(env: &worker::Env, binding: &str) -> Result<Self, Error> {
        let js =
            js_sys::Reflect::get(env.as_ref(), &JsValue::from_str(binding)).unwrap_or_default();
        if js.is_undefined() || js.is_null() {
            return Err(Error::internal(format!(
                "no Durable Object binding {binding:?}: add it to [[durable_objects.bindings]] in wrangler.toml"
            )));
        }
        Ok(Self {
            js,
            binding: binding.into(),
        })
    }

    /// The namespace bound as `binding`, from a request's environment.
    pub fn from_request(req: &Request, binding: &str) -> Result<Self, Error> {
        Self::from_env(&req.env()?, binding)
    }

    /// The object named `name` (the same name always reaches the same object).
    pub fn by_name(&self, name: &str) -> Stub {
        #[cfg(target_arch = "wasm32")]
        let js = crate::js::object::stub_by_name(&self.js, name);
        #[cfg(not(target_arch = "wasm32"))]
        let js = JsValue::UNDEFINED;
        Stub {
            js,
            label: format!("{}({name:?})", self.binding),
        }
    }
}

/// One object, called with JSON requests its app answers.
pub struct Stub {
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    js: JsValue,
    label: String,
}

impl Stub {
    /// `GET path`, decoding the JSON answer.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        self.call(Method::Get, path, None).await
    }

    /// `POST path` with `body` as JSON, decoding the JSON answer.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, Error> {
        self.call(Method::Post, path, Some(to_json(body)?)).await
    }

    /// `PUT path` with `body` as JSON, decoding the JSON answer.
    pub async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, Error> {
        self.call(Method::Put, path, Some(to_json(body)?)).await
    }

    /// `DELETE path`, decoding the JSON answer.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        self.call(Method::Delete, path, None).await
    }

    /// Any call. A 2xx answer decodes as `T` (an empty body as JSON `null`); any
    /// other is an error with the object's status and problem detail.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<T, Error> {
        #[cfg(target_arch = "wasm32")]
        {
            let url = format!("https://object{path}");
            let answer = crate::js::settled(&crate::js::object::stub_fetch(
                &self.js,
                method.as_str(),
                &url,
                body,
            ))
            .await
            .map_err(|e| {
                Error::new(
                    crate::error::ErrorKind::Upstream,
                    format!("{}: {}", self.label, crate::js::object::thrown_message(&e)),
                )
            })?;
            let answer = js_sys::Array::from(&answer);
            let status = answer.get(0).as_f64().unwrap_or(500.0) as u16;
            let text = answer.get(1).as_string().unwrap_or_default();
            decode_answer(&self.label, method, path, status, &text)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (method, path, body, &self.label);
            Err(outside_workerd())
        }
    }
}

fn to_json<B: Serialize>(body: &B) -> Result<String, Error> {
    serde_json::to_string(body).map_err(|e| Error::internal(format!("object request body: {e}")))
}

/// An object's answer: the decoded body of a 2xx, or the error its problem
/// document describes, with its status.
fn decode_answer<T: DeserializeOwned>(
    label: &str,
    method: Method,
    path: &str,
    status: u16,
    text: &str,
) -> Result<T, Error> {
    if (200..300).contains(&status) {
        let text = if text.is_empty() { "null" } else { text };
        return serde_json::from_str(text).map_err(|e| {
            Error::internal(format!(
                "{label} answered {method:?} {path} with unexpected JSON: {e}"
            ))
        });
    }
    let detail = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|doc| doc["detail"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{label} answered {method:?} {path} with {status}"));
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    Err(Error::with_status(status, detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_success_decodes_and_an_empty_body_is_null() {
        let n: i64 = decode_answer("T", Method::Get, "/", 200, "41").unwrap();
        assert_eq!(n, 41);
        let none: Option<i64> = decode_answer("T", Method::Delete, "/", 204, "").unwrap();
        assert_eq!(none, None);
    }

    #[test]
    fn a_problem_keeps_its_status_and_detail() {
        let err = decode_answer::<i64>(
            "T(\"a\")",
            Method::Post,
            "/add",
            409,
            r#"{"type":"about:blank","status":409,"detail":"taken"}"#,
        )
        .unwrap_err();
        assert_eq!(err.status().as_u16(), 409);
        assert_eq!(err.detail(), "taken");
        let err = decode_answer::<i64>("T(\"a\")", Method::Get, "/x", 502, "oops").unwrap_err();
        assert_eq!(err.detail(), "T(\"a\") answered Get /x with 502");
    }
}
