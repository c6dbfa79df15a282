//! Structured logs: one JSON object per line, which Workers Logs and `wrangler tail`
//! index by field.

use std::cell::Cell;

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
    let mut fields = match fields {
        serde_json::Value::Object(map) => map,
        other => {
            let mut map = serde_json::Map::new();
            map.insert("msg".into(), other);
            map
        }
    };
    fields.insert("level".into(), level.as_str().into());
    fields.insert("ts".into(), (crate::platform::now_ms() as u64).into());
    let line = serde_json::Value::Object(fields).to_string();
    write_line(level, &line);
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
    eprintln!("{line}");
}

thread_local! {
    static COLD: Cell<bool> = const { Cell::new(true) };
}

/// `true` exactly once per isolate: for the first invocation that asks (every
/// request asks, and metered queue batches, cron runs and step attempts).
pub(crate) fn take_cold_start() -> bool {
    COLD.with(|cold| cold.replace(false))
}
