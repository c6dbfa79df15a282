//! The worker's `Env` (bindings, vars, secrets) and `Context` (`waitUntil`), from
//! a request (feature `bindings`): as methods on [`Request`] and as extractors.

use crate::error::Error;
use crate::extract::FromRequestParts;
use crate::request::Request;

impl Request {
    /// The worker's bindings (KV, queues, vars, secrets). Fails outside workerd.
    pub fn env(&self) -> Result<worker::Env, Error> {
        #[cfg(target_arch = "wasm32")]
        if let Some(js) = &self.js {
            use wasm_bindgen::JsCast;
            return Ok(js.env.clone().unchecked_into());
        }
        Err(Error::internal(
            "this request did not come from workerd, so it has no Env",
        ))
    }

    /// The execution context, for `wait_until`. Fails outside workerd.
    pub fn context(&self) -> Result<worker::Context, Error> {
        #[cfg(target_arch = "wasm32")]
        if let Some(js) = &self.js {
            use wasm_bindgen::JsCast;
            return Ok(worker::Context::new(js.ctx.clone().unchecked_into()));
        }
        Err(Error::internal(
            "this request did not come from workerd, so it has no Context",
        ))
    }
}

/// The worker's bindings (KV, queues, vars, secrets).
impl FromRequestParts for worker::Env {
    fn from_request_parts(req: &mut Request) -> Result<Self, Error> {
        req.env()
    }
}

/// The execution context, for `wait_until` and `pass_through_on_exception`.
impl FromRequestParts for worker::Context {
    fn from_request_parts(req: &mut Request) -> Result<Self, Error> {
        req.context()
    }
}
