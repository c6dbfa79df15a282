//! Cloudflare Workflows: the methods of a run's `step` object and of the
//! `Workflow` binding, called with plain values (JSON text in and out), so the
//! Rust side needs no JS type of its own.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
// The engine persists what a step's callback returns, so the callback returns
// the output as a JSON value (parsed from the Rust side's JSON text) and the
// step's result comes back as text.
export function step_do(step, name, config, callback) {
  return step
    .do(name, JSON.parse(config), async (ctx) => JSON.parse(await callback(ctx?.attempt ?? 0)))
    .then((value) => JSON.stringify(value ?? null));
}
export function step_sleep(step, name, ms) {
  return step.sleep(name, ms);
}
export function step_sleep_until(step, name, ms) {
  return step.sleepUntil(name, new Date(ms));
}
export function step_wait(step, name, type, timeout) {
  return step
    .waitForEvent(name, { type, timeout })
    .then((event) => JSON.stringify(event?.payload ?? null));
}
// A step failure: the engine stops retrying an error named NonRetryableError.
export function step_failure(message, permanent) {
  const error = new Error(message);
  if (permanent) error.name = "NonRetryableError";
  return error;
}
const TIMED_OUT = Symbol("timed out");
// Settles like `promise`, or resolves to false after `ms` (and true otherwise).
export function settles_within(promise, ms) {
  let timer;
  const late = new Promise((resolve) => (timer = setTimeout(() => resolve(TIMED_OUT), ms)));
  return Promise.race([promise.then(() => true, () => true), late]).then((v) => {
    clearTimeout(timer);
    return v !== TIMED_OUT;
  });
}
// A wait that ran out of time, as opposed to a run interrupted by a pause, a
// restart or an eviction (which the engine replays later). The engine's error
// crosses an RPC boundary, which keeps its message but not always its name.
export function is_timeout(error) {
  return (
    error?.name === "WorkflowTimeoutError" ||
    /^(WorkflowTimeoutError: )?Execution timed out/.test(String(error?.message ?? ""))
  );
}
export function error_message(error) {
  return String(error?.message ?? error);
}
export function event_payload(event) {
  return JSON.stringify(event?.payload ?? null);
}
export function event_instance_id(event) {
  return String(event?.instanceId ?? "");
}
export function event_timestamp(event) {
  const t = event?.timestamp;
  return t instanceof Date ? t.getTime() : Number(t ?? 0);
}
export function workflow_create(binding, id, params) {
  const options = { params: JSON.parse(params) };
  if (id !== undefined) options.id = id;
  return binding.create(options).then((instance) => instance.id);
}
export function workflow_status(binding, id) {
  return binding
    .get(id)
    .then((instance) => instance.status())
    .then((status) => JSON.stringify(status));
}
export function workflow_control(binding, id, action) {
  return binding.get(id).then((instance) => instance[action]());
}
export function workflow_send_event(binding, id, type, payload) {
  return binding.get(id).then((instance) => instance.sendEvent({ type, payload: JSON.parse(payload) }));
}
"#)]
extern "C" {
    /// `step.do(name, config, callback)`; resolves to the output's JSON text.
    pub(crate) fn step_do(
        step: &JsValue,
        name: &str,
        config: &str,
        callback: &Closure<dyn FnMut(u32) -> js_sys::Promise>,
    ) -> js_sys::Promise;
    /// `step.sleep(name, ms)`.
    pub(crate) fn step_sleep(step: &JsValue, name: &str, ms: f64) -> js_sys::Promise;
    /// `step.sleepUntil(name, new Date(ms))`.
    pub(crate) fn step_sleep_until(step: &JsValue, name: &str, ms: f64) -> js_sys::Promise;
    /// `step.waitForEvent(name, {type, timeout})`; resolves to the payload's JSON text.
    pub(crate) fn step_wait(
        step: &JsValue,
        name: &str,
        kind: &str,
        timeout_ms: f64,
    ) -> js_sys::Promise;
    /// An `Error` to reject a step's callback with; `permanent` stops the retries.
    pub(crate) fn step_failure(message: &str, permanent: bool) -> JsValue;
    /// Resolves to whether `promise` settled within `ms`.
    pub(crate) fn settles_within(promise: &js_sys::Promise, ms: f64) -> js_sys::Promise;
    /// Whether a thrown value is the engine's timeout of a wait.
    pub(crate) fn is_timeout(error: &JsValue) -> bool;
    /// The message of a thrown value.
    pub(crate) fn error_message(error: &JsValue) -> String;
    /// A run's event: its payload as JSON text, its instance id, its timestamp in ms.
    pub(crate) fn event_payload(event: &JsValue) -> String;
    pub(crate) fn event_instance_id(event: &JsValue) -> String;
    pub(crate) fn event_timestamp(event: &JsValue) -> f64;
    /// `binding.create({id, params})`; resolves to the instance id.
    pub(crate) fn workflow_create(
        binding: &JsValue,
        id: Option<String>,
        params: &str,
    ) -> js_sys::Promise;
    /// `(await binding.get(id)).status()`, as JSON text.
    pub(crate) fn workflow_status(binding: &JsValue, id: &str) -> js_sys::Promise;
    /// `(await binding.get(id))[action]()`: pause, resume, terminate or restart.
    pub(crate) fn workflow_control(binding: &JsValue, id: &str, action: &str) -> js_sys::Promise;
    /// `(await binding.get(id)).sendEvent({type, payload})`.
    pub(crate) fn workflow_send_event(
        binding: &JsValue,
        id: &str,
        kind: &str,
        payload: &str,
    ) -> js_sys::Promise;
}
