//! Structured logs: one JSON object per line, which Workers Logs and `wrangler tail`
//! index by field.

use std::cell::Cell;

use crate::json_text::JsonObject;

/// A log line's severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Routine events, e.g. one line per request.
    Info,
    /// Something recoverable went wrong.
    Warn,
    /// A request failed on the server side, or a handler panicked.
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// Writes `fields` as one JSON line with `level` and `ts` (ms since the epoch) added.
/// Non-object values are wrapped as `{"msg": value}`.
pub fn log(level: Level, fields: serde_json::Value) {
    let mut line = Line::new();
    match &fields {
        serde_json::Value::Object(map) => {
            for (name, value) in map {
                // `level` and `ts` are the logger's own.
                if name != "level" && name != "ts" {
                    line.field(name, value);
                }
            }
        }
        other => {
            line.field("msg", other);
        }
    }
    line.write(level);
}

/// One log line written field by field, straight to JSON text (no map is
/// built).
pub(crate) struct Line(JsonObject);

impl Line {
    /// An empty line.
    pub(crate) fn new() -> Self {
        Line(JsonObject::with_capacity(128))
    }

    /// Adds `name` with `value`.
    pub(crate) fn field(
        &mut self,
        name: &str,
        value: &(impl serde::Serialize + ?Sized),
    ) -> &mut Self {
        self.0.field(name, value);
        self
    }

    /// Adds `level` and `ts` and writes the line.
    pub(crate) fn write(&mut self, level: Level) {
        self.field("level", level.as_str());
        self.field("ts", &(crate::platform::now_ms() as u64));
        write_line(level, &self.0.finish());
    }
}

#[cfg(target_arch = "wasm32")]
fn write_line(level: Level, line: &str) {
    let line = wasm_bindgen::JsValue::from_str(line);
    match level {
        Level::Error => web_sys::console::error_1(&line),
        Level::Warn => web_sys::console::warn_1(&line),
        Level::Info => web_sys::console::log_1(&line),
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn write_line(_level: Level, line: &str) {
    #[cfg(test)]
    CAPTURED.with(|captured| captured.borrow_mut().push(line.to_owned()));
    eprintln!("{line}");
}

#[cfg(all(test, not(target_arch = "wasm32")))]
thread_local! {
    static CAPTURED: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The lines this thread has written so far, taken (native unit tests only).
#[cfg(all(test, not(target_arch = "wasm32")))]
pub(crate) fn take_captured() -> Vec<String> {
    CAPTURED.with(|captured| std::mem::take(&mut *captured.borrow_mut()))
}

thread_local! {
    static COLD: Cell<bool> = const { Cell::new(true) };
}

/// `true` exactly once per isolate: for the first invocation that asks (every
/// request asks, and metered queue batches, cron runs and step attempts).
pub(crate) fn take_cold_start() -> bool {
    COLD.with(|cold| cold.replace(false))
}
