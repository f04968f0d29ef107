//! Machine-readable output: every command's `--output json` document is built here, so its
//! shape is versioned in one place.

pub mod render;

use serde::Serialize;
use serde_json::{Map, Value};

/// Version of the JSON output documents. Fields may be added within a version; removing or
/// changing the meaning of one bumps it.
pub const OUTPUT_VERSION: u32 = 1;

/// Wraps a command's result in the versioned envelope:
/// `{"output_version": 1, "command": "...", ...fields of value}`.
pub fn document(command: &str, value: &impl Serialize) -> Value {
    let mut out = Map::new();
    out.insert("output_version".into(), OUTPUT_VERSION.into());
    out.insert("command".into(), command.into());
    match serde_json::to_value(value) {
        Ok(Value::Object(fields)) => out.extend(fields),
        Ok(other) => {
            out.insert("result".into(), other);
        }
        Err(e) => {
            out.insert(
                "error".into(),
                Value::String(format!("serialising the result: {e}")),
            );
        }
    }
    Value::Object(out)
}

/// The document printed for a failed command.
pub fn error_document(command: &str, message: &str, hint: Option<&str>, exit_code: u8) -> Value {
    let mut error = serde_json::json!({ "message": message, "exit_code": exit_code });
    if let Some(hint) = hint {
        error["hint"] = Value::String(hint.to_owned());
    }
    document(command, &serde_json::json!({ "error": error }))
}

/// Human-readable byte counts: `512 B`, `1.5 KiB`, `3.2 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    #[expect(clippy::cast_precision_loss, reason = "display only")]
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_human() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn documents_carry_version_and_command() {
        let doc = document("list", &serde_json::json!({"a": 1}));
        assert_eq!(doc["output_version"], 1);
        assert_eq!(doc["command"], "list");
        assert_eq!(doc["a"], 1);
    }
}
