//! D1 with statements and rows as JSON text: one call across the boundary per
//! statement or batch, and no per-row-type deserializer in the bundle.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
export function d1_exec(db, sql) {
  return db.exec(sql);
}
// One statement, bound with each JSON array of `rows` in turn, as one batch.
export function d1_batch(db, sql, rows) {
  const statement = db.prepare(sql);
  return db.batch(JSON.parse(rows).map((args) => statement.bind(...args)));
}
// How many rows one statement changed.
export function d1_run(db, sql, args) {
  return db
    .prepare(sql)
    .bind(...JSON.parse(args))
    .run()
    .then((result) => result.meta.changes);
}
// The rows of one query, as JSON text.
export function d1_all(db, sql, args) {
  return db
    .prepare(sql)
    .bind(...JSON.parse(args))
    .all()
    .then((result) => JSON.stringify(result.results));
}
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    fn d1_exec(db: &JsValue, sql: &str) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(catch)]
    fn d1_batch(db: &JsValue, sql: &str, rows: &str) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(catch)]
    fn d1_run(db: &JsValue, sql: &str, args: &str) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(catch)]
    fn d1_all(db: &JsValue, sql: &str, args: &str) -> Result<js_sys::Promise, JsValue>;
}

async fn settle(call: Result<js_sys::Promise, JsValue>) -> Result<JsValue, String> {
    let settled = match call {
        Ok(promise) => super::settled(&promise).await,
        Err(e) => Err(e),
    };
    settled.map_err(|e| {
        js_sys::Reflect::get(&e, &"message".into())
            .ok()
            .and_then(|m| m.as_string())
            .unwrap_or_else(|| format!("{e:?}"))
    })
}

/// `db.exec(sql)`: statements separated by newlines, no parameters.
pub(crate) async fn exec(db: &JsValue, sql: &str) -> Result<(), String> {
    settle(d1_exec(db, sql)).await.map(drop)
}

/// `sql` run once per JSON array of parameters in `rows` (a JSON array of
/// arrays), in one batch: all or none.
#[cfg_attr(not(feature = "ops"), allow(dead_code))] // only ops stores batches
pub(crate) async fn batch(db: &JsValue, sql: &str, rows: &str) -> Result<(), String> {
    settle(d1_batch(db, sql, rows)).await.map(drop)
}

/// Runs `sql` with the parameters `args` (a JSON array); how many rows it
/// changed.
pub(crate) async fn run(db: &JsValue, sql: &str, args: &str) -> Result<u64, String> {
    settle(d1_run(db, sql, args))
        .await?
        .as_f64()
        .map(|changes| changes as u64)
        .ok_or_else(|| "D1 answered no count of changed rows".to_owned())
}

/// The rows `sql` with the parameters `args` (a JSON array) selects, as a
/// JSON array of objects.
pub(crate) async fn all(db: &JsValue, sql: &str, args: &str) -> Result<String, String> {
    settle(d1_all(db, sql, args))
        .await?
        .as_string()
        .ok_or_else(|| "D1 answered rows that are not JSON text".to_owned())
}
