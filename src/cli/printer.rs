//! The one place that writes to stdout and stderr.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the printer is where output happens"
)]

use std::io::Write;

use serde::Serialize;

use super::{ExitStatus, OutputFormat};
use crate::engine::error_chain;

/// Renders results as text or JSON; errors always go to stderr as text too.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    format: OutputFormat,
    quiet: bool,
}

impl Printer {
    /// A printer for `format`.
    pub fn new(format: OutputFormat, quiet: bool) -> Self {
        Self { format, quiet }
    }

    /// Whether `-q` was given: no progress, only errors on stderr.
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// Whether the JSON document is wanted instead of text.
    pub fn is_json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    /// Prints the command's result: `json` in JSON mode, else `text()`.
    pub fn result(&self, command: &str, json: &impl Serialize, text: impl FnOnce() -> String) {
        let out = if self.is_json() {
            let doc = crate::report::document(command, json);
            serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
        } else {
            text()
        };
        write_stdout(&out);
    }

    /// Prints text that is the same in every format (the plan schema).
    pub fn raw(&self, text: &str) {
        write_stdout(text);
    }

    /// Reports a failed command.
    pub fn error(&self, command: &str, error: &anyhow::Error, status: ExitStatus) {
        let message = error_chain(error.as_ref());
        // How to go on when the cause is one the user can remove (a full disk); an invalid
        // request's hint is part of its message already.
        let cause = crate::error::hint(&message);
        if self.is_json() {
            // How to fix it, apart, for programs that show it in their own words.
            let hint = error
                .chain()
                .find_map(|c| c.downcast_ref::<crate::engine::EngineError>()?.hint())
                .or(cause);
            let doc = crate::report::error_document(command, &message, hint, status.code());
            write_stdout(&(serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"));
        }
        write_stderr(&format!("error: {message}\n"));
        if let Some(hint) = cause {
            write_stderr(&format!("hint: {hint}\n"));
        }
    }

    /// Reports an error on stderr only, for commands whose result document already
    /// describes it.
    pub fn error_text(&self, error: &anyhow::Error) {
        let message = error_chain(error.as_ref());
        write_stderr(&format!("error: {message}\n"));
        if let Some(hint) = crate::error::hint(&message) {
            write_stderr(&format!("hint: {hint}\n"));
        }
    }
}

/// Writes to stdout, secrets redacted; a closed pipe (`bcn list | head`) is not an error.
fn write_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(crate::secret::redact(text).as_bytes())
        .and_then(|()| stdout.flush());
}

/// Writes to stderr, secrets redacted; a closed stream is not an error (`eprintln!` would
/// panic, and a panic could leave the repository locked).
pub(crate) fn write_stderr(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr
        .write_all(crate::secret::redact(text).as_bytes())
        .and_then(|()| stderr.flush());
}

/// Formats rows as aligned columns.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::from(" ");
        for (i, cell) in cells.iter().enumerate() {
            s.push(' ');
            s.push_str(cell);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(widths[i].saturating_sub(cell.chars().count()) + 1));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}
