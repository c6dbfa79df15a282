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

/// One log line written field by field, straight to JSON text: no map is
/// built, so a worker whose only JSON objects are its logs and problems
/// links no map code.
pub(crate) struct Line(Vec<u8>);

impl Line {
    /// An empty line.
    pub(crate) fn new() -> Self {
        Line(Vec::with_capacity(128))
    }

    /// Adds `name` with `value`.
    pub(crate) fn field(
        &mut self,
        name: &str,
        value: &(impl serde::Serialize + ?Sized),
    ) -> &mut Self {
        self.0.push(if self.0.is_empty() { b'{' } else { b',' });
        // Serializing to a Vec cannot fail, and these values have no maps with
        // non-string keys.
        let _ = serde_json::to_writer(&mut self.0, name);
        self.0.push(b':');
        let _ = serde_json::to_writer(&mut self.0, value);
        self
    }

    /// Adds `level` and `ts` and writes the line.
    pub(crate) fn write(&mut self, level: Level) {
        self.field("level", level.as_str());
        self.field("ts", &(crate::platform::now_ms() as u64));
        self.0.push(b'}');
        // Only JSON text was written.
        write_line(level, std::str::from_utf8(&self.0).unwrap_or_default());
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
