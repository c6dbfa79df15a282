//! Durable Objects: a state's SQLite storage and alarms, and a namespace's
//! stubs, called with plain values (SQL bindings and rows as JSON text).

use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
export function is_object_state(ctx) {
  return typeof ctx?.storage?.sql?.exec === "function";
}
export function object_storage(ctx) {
  return ctx.storage;
}
export function object_id(ctx) {
  return String(ctx.id);
}
export function object_name(ctx) {
  return ctx.id?.name ?? undefined;
}
// Rows as JSON text; throws (with SQLite's message) on a bad statement.
export function sql_rows(storage, query, bindings) {
  return JSON.stringify(storage.sql.exec(query, ...JSON.parse(bindings)).toArray());
}
// Runs a statement for its effect; answers the rows it wrote.
export function sql_run(storage, query, bindings) {
  return storage.sql.exec(query, ...JSON.parse(bindings)).rowsWritten;
}
// `work` answers false to roll back: the throw is what makes SQLite undo.
export function transaction_sync(storage, work) {
  storage.transactionSync(() => {
    if (!work()) throw new Error("rolled back");
  });
}
export function set_alarm(storage, ms) {
  return storage.setAlarm(ms);
}
export function get_alarm(storage) {
  return storage.getAlarm().then((t) => (t === null || t === undefined ? undefined : Number(t)));
}
export function delete_alarm(storage) {
  return storage.deleteAlarm();
}
export function delete_all(storage) {
  return storage.deleteAll();
}
export function stub_by_name(namespace, name) {
  return namespace.get(namespace.idFromName(name));
}
// One call to an object's fetch; answers [status, body text].
export function stub_fetch(stub, method, url, body) {
  const init = { method };
  if (body !== undefined) {
    init.body = body;
    init.headers = { "content-type": "application/json" };
  }
  return stub.fetch(url, init).then(async (res) => [res.status, await res.text()]);
}
export function thrown_message(error) {
  return String(error?.message ?? error);
}
"#)]
extern "C" {
    /// Whether `ctx` is a Durable Object's state with SQLite storage.
    pub(crate) fn is_object_state(ctx: &JsValue) -> bool;
    /// `ctx.storage`.
    pub(crate) fn object_storage(ctx: &JsValue) -> JsValue;
    /// `ctx.id` as hex.
    pub(crate) fn object_id(ctx: &JsValue) -> String;
    /// The name the id was made from, when the runtime says.
    pub(crate) fn object_name(ctx: &JsValue) -> Option<String>;
    /// `storage.sql.exec(query, ...bindings).toArray()` as JSON text.
    #[wasm_bindgen(catch)]
    pub(crate) fn sql_rows(
        storage: &JsValue,
        query: &str,
        bindings: &str,
    ) -> Result<String, JsValue>;
    /// `storage.sql.exec(query, ...bindings).rowsWritten`.
    #[wasm_bindgen(catch)]
    pub(crate) fn sql_run(storage: &JsValue, query: &str, bindings: &str) -> Result<f64, JsValue>;
    /// `storage.transactionSync(work)`: rolled back when `work` answers false.
    #[wasm_bindgen(catch)]
    pub(crate) fn transaction_sync(
        storage: &JsValue,
        work: &mut dyn FnMut() -> bool,
    ) -> Result<(), JsValue>;
    /// `storage.setAlarm(ms)`.
    pub(crate) fn set_alarm(storage: &JsValue, ms: f64) -> js_sys::Promise;
    /// `storage.getAlarm()`: ms since the epoch, or undefined.
    pub(crate) fn get_alarm(storage: &JsValue) -> js_sys::Promise;
    /// `storage.deleteAlarm()`.
    pub(crate) fn delete_alarm(storage: &JsValue) -> js_sys::Promise;
    /// `storage.deleteAll()`.
    pub(crate) fn delete_all(storage: &JsValue) -> js_sys::Promise;
    /// `namespace.get(namespace.idFromName(name))`.
    pub(crate) fn stub_by_name(namespace: &JsValue, name: &str) -> JsValue;
    /// `stub.fetch(url, {method, body})`; resolves to `[status, text]`.
    pub(crate) fn stub_fetch(
        stub: &JsValue,
        method: &str,
        url: &str,
        body: Option<String>,
    ) -> js_sys::Promise;
    /// The message of a thrown value.
    pub(crate) fn thrown_message(error: &JsValue) -> String;
}
