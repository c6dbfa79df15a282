//! D1 for edgeway's own tables (ops usage, the workflow trace): statements and
//! rows cross the boundary as JSON text (`js/d1`), so the bundle carries no
//! per-row-type conversion and no D1 wrapper types.
// Natively there is no D1: only the pure parts of its users run there.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use wasm_bindgen::JsValue;

use crate::error::Error;

/// A D1 database binding.
#[derive(Clone)]
pub(crate) struct Database(JsValue);

impl Database {
    /// The database bound as `binding`; `what` names its use in the error.
    pub(crate) fn open(env: &worker::Env, binding: &str, what: &str) -> Result<Self, Error> {
        let db =
            js_sys::Reflect::get(env, &JsValue::from_str(binding)).unwrap_or(JsValue::UNDEFINED);
        if db.is_undefined() || db.is_null() {
            return Err(Error::internal(format!(
                "no D1 binding {binding:?} for {what}"
            )));
        }
        Ok(Self(db))
    }

    /// Statements separated by newlines, without parameters.
    pub(crate) async fn exec(&self, sql: &str) -> Result<(), String> {
        #[cfg(target_arch = "wasm32")]
        return crate::js::d1::exec(&self.0, sql).await;
        #[cfg(not(target_arch = "wasm32"))]
        no_d1(sql)
    }

    /// `sql` once per JSON array of parameters in `rows`, in one batch: all or
    /// none.
    #[cfg_attr(not(feature = "ops"), allow(dead_code))] // only ops stores batches
    pub(crate) async fn batch(&self, sql: &str, rows: &str) -> Result<(), String> {
        #[cfg(target_arch = "wasm32")]
        return crate::js::d1::batch(&self.0, sql, rows).await;
        #[cfg(not(target_arch = "wasm32"))]
        no_d1((sql, rows))
    }

    /// Runs `sql` with the parameters `args` (a JSON array); how many rows it
    /// changed.
    pub(crate) async fn run(&self, sql: &str, args: &str) -> Result<u64, String> {
        #[cfg(target_arch = "wasm32")]
        return crate::js::d1::run(&self.0, sql, args).await;
        #[cfg(not(target_arch = "wasm32"))]
        no_d1((sql, args))
    }

    /// The rows `sql` selects with the parameters `args`, as JSON text; `what`
    /// names the read in an error. (Not generic: [`rows`] decodes, so one
    /// copy of the call serves every row type.)
    pub(crate) async fn query(
        &self,
        sql: &str,
        args: serde_json::Value,
        what: &str,
    ) -> Result<String, Error> {
        #[cfg(target_arch = "wasm32")]
        let text = crate::js::d1::all(&self.0, sql, &args.to_string()).await;
        #[cfg(not(target_arch = "wasm32"))]
        let text = no_d1((sql, args));
        text.map_err(|e| Error::internal(format!("read {what}: {e}")))
    }
}

/// `text`, rows from [`Database::query`], decoded; `what` names them in an
/// error.
pub(crate) fn rows<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &str,
) -> Result<Vec<T>, Error> {
    // The text reader, as every decoder in edgeway: a second reader would
    // compile every deserializer twice.
    serde_json::from_str(text).map_err(|e| Error::internal(format!("read {what}: {e}")))
}

#[cfg(not(target_arch = "wasm32"))]
fn no_d1<T>(_unused: impl Sized) -> Result<T, String> {
    Err("D1 is only in the Workers runtime".to_owned())
}
