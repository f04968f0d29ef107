//! Error helpers shared by every layer.

/// Formats an error with its chain of causes on one line, skipping causes whose text the
/// message already contains (thiserror's `#[error(transparent)]` and wrappers that repeat
/// their source).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
