//! The `Workflow` binding: create instances and steer them from a handler.

use std::borrow::Cow;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;

use super::config::{check_instance_id, check_value_size};
use crate::error::Error;
use crate::http::StatusCode;
use crate::request::Request;

/// A workflow binding (`[[workflows]]` in `wrangler.toml`) whose instances take
/// parameters of type `T`.
///
/// ```ignore
/// let orders = Workflow::<Order>::from_request(&req, "ORDERS")?;
/// let id = orders.create(Some(&order.id), &order).await?;
/// let status = orders.status(&id).await?;
/// ```
pub struct Workflow<T> {
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    js: JsValue,
    binding: Cow<'static, str>,
    params: PhantomData<fn(T)>,
}

/// An instance's state, as the engine reports it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct InstanceStatus {
    /// `queued`, `running`, `paused`, `waiting`, `waitingForPause`, `errored`,
    /// `terminated`, `complete` or `unknown`.
    pub status: String,
    /// Why it errored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<InstanceError>,
    /// What the run returned, once complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
}

/// The error an instance ended with.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct InstanceError {
    /// The error's name.
    #[serde(default)]
    pub name: String,
    /// Its message.
    #[serde(default)]
    pub message: String,
}

impl InstanceStatus {
    /// Whether the instance has ended and can take no more events.
    pub fn is_finished(&self) -> bool {
        matches!(self.status.as_str(), "complete" | "errored" | "terminated")
    }
}

/// What to do with an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Pause it after the current step.
    Pause,
    /// Resume a paused instance.
    Resume,
    /// Stop it for good.
    Terminate,
    /// Run it again from the start, with the same parameters.
    Restart,
}

impl Control {
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    fn method(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Terminate => "terminate",
            Self::Restart => "restart",
        }
    }
}

impl<T: Serialize> Workflow<T> {
    /// The binding named `binding` in `env`.
    pub fn from_env(env: &worker::Env, binding: &'static str) -> Result<Self, Error> {
        Self::named(env, Cow::Borrowed(binding))
    }

    /// The binding whose name is only known at run time (a stored
    /// [`JobWaiter`](crate::jobs::JobWaiter)'s).
    pub(crate) fn named(env: &worker::Env, binding: Cow<'static, str>) -> Result<Self, Error> {
        let js =
            js_sys::Reflect::get(env.as_ref(), &JsValue::from_str(&binding)).unwrap_or_default();
        if js.is_undefined() || js.is_null() {
            return Err(Error::internal(format!(
                "no workflow binding {binding:?}: add a [[workflows]] entry with binding = {binding:?} to wrangler.toml"
            )));
        }
        Ok(Self {
            js,
            binding,
            params: PhantomData,
        })
    }

    /// The binding named `binding`, from a request's environment.
    pub fn from_request(req: &Request, binding: &'static str) -> Result<Self, Error> {
        Self::from_env(&req.env()?, binding)
    }

    /// Starts an instance with `params`. With an `id`, a second create with the
    /// same id is a 409, so a retried request starts nothing twice; without one
    /// the engine picks an id. Returns the id.
    pub async fn create(&self, id: Option<&str>, params: &T) -> Result<String, Error> {
        if let Some(id) = id {
            check_instance_id(id)?;
        }
        let json = serde_json::to_string(params)
            .map_err(|e| Error::internal(format!("workflow parameters: {e}")))?;
        check_value_size(&json, "the instance's parameters")?;
        #[cfg(target_arch = "wasm32")]
        {
            let created = self
                .call(
                    id.unwrap_or_default(),
                    crate::js::workflow::workflow_create(&self.js, id.map(str::to_owned), &json),
                )
                .await?;
            Ok(created.as_string().unwrap_or_default())
        }
        #[cfg(not(target_arch = "wasm32"))]
        Err(Error::internal("workflows run only in workerd"))
    }

    /// The instance's status; 404 when there is no such instance.
    pub async fn status(&self, id: &str) -> Result<InstanceStatus, Error> {
        check_instance_id(id)?;
        #[cfg(target_arch = "wasm32")]
        {
            let text = self
                .call(id, crate::js::workflow::workflow_status(&self.js, id))
                .await?;
            serde_json::from_str(&text.as_string().unwrap_or_default())
                .map_err(|e| Error::internal(format!("instance status: {e}")))
        }
        #[cfg(not(target_arch = "wasm32"))]
        Err(Error::internal("workflows run only in workerd"))
    }

    /// Pauses, resumes, terminates or restarts the instance.
    pub async fn control(&self, id: &str, action: Control) -> Result<(), Error> {
        check_instance_id(id)?;
        #[cfg(target_arch = "wasm32")]
        {
            self.call(
                id,
                crate::js::workflow::workflow_control(&self.js, id, action.method()),
            )
            .await?;
            Ok(())
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = action;
            Err(Error::internal("workflows run only in workerd"))
        }
    }

    /// Sends an event of type `kind` to the instance, for its
    /// [`Step::wait_for_event`](super::Step::wait_for_event). 404 for an
    /// unknown instance, 409 for one that has finished, 413 for a payload over
    /// 1 MiB.
    pub async fn send_event<E: Serialize>(
        &self,
        id: &str,
        kind: &str,
        payload: &E,
    ) -> Result<(), Error> {
        check_instance_id(id)?;
        let json = serde_json::to_string(payload)
            .map_err(|e| Error::internal(format!("event payload: {e}")))?;
        check_value_size(&json, "the event's payload")?;
        let status = self.status(id).await?;
        if status.is_finished() {
            return Err(Error::with_status(
                StatusCode::CONFLICT,
                format!(
                    "instance {id:?} has ended ({}); it takes no events",
                    status.status
                ),
            ));
        }
        #[cfg(target_arch = "wasm32")]
        {
            self.call(
                id,
                crate::js::workflow::workflow_send_event(&self.js, id, kind, &json),
            )
            .await?;
            Ok(())
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = kind;
            Err(Error::internal("workflows run only in workerd"))
        }
    }

    /// Awaits a binding call, mapping the engine's "not found" and "already
    /// exists" to 404 and 409.
    #[cfg(target_arch = "wasm32")]
    async fn call(&self, id: &str, promise: js_sys::Promise) -> Result<JsValue, Error> {
        crate::js::settled(&promise).await.map_err(|thrown| {
            let message = crate::js::workflow::error_message(&thrown);
            classify(&self.binding, id, &message)
        })
    }
}

/// The error for a failed binding call, from the engine's message.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn classify(binding: &str, id: &str, message: &str) -> Error {
    let lower = message.to_ascii_lowercase();
    if lower.contains("not_found") || lower.contains("not found") {
        Error::not_found(format!("{binding} has no instance {id:?}"))
    } else if lower.contains("already_exists") || lower.contains("already exists") {
        Error::with_status(
            StatusCode::CONFLICT,
            format!("{binding} already has an instance {id:?}"),
        )
    } else {
        Error::new(
            crate::error::ErrorKind::Upstream,
            format!("{binding}: {message}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_messages_map_to_statuses() {
        assert_eq!(
            classify("ORDERS", "a", "instance.not_found")
                .status()
                .as_u16(),
            404
        );
        assert_eq!(
            classify("ORDERS", "a", "Error: instance.already_exists")
                .status()
                .as_u16(),
            409
        );
        assert_eq!(classify("ORDERS", "a", "boom").status().as_u16(), 502);
    }

    #[test]
    fn finished_statuses() {
        let status = |s: &str| InstanceStatus {
            status: s.into(),
            error: None,
            output: None,
        };
        assert!(status("complete").is_finished());
        assert!(status("errored").is_finished());
        assert!(!status("waiting").is_finished());
    }
}
