//! Progress on stderr: a live bar on a terminal, plain log lines otherwise.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::{Event, Observer};
use crate::report::human_bytes;

/// Renders engine events: a spinner with files and bytes copied (or checked, for `verify`)
/// when stderr is a terminal, log lines when it is not (cron, systemd, CI).
pub(crate) enum Progress {
    /// A live bar.
    Bar {
        /// The bar.
        bar: ProgressBar,
        /// Files done so far.
        files: AtomicU64,
        /// Bytes done so far.
        bytes: AtomicU64,
        /// What was done to them: "copied", "checked".
        done: &'static str,
    },
    /// Log lines.
    Log,
}

impl Progress {
    /// A bar when stderr is a terminal and `quiet` is not set, else log lines; the bar counts
    /// files and bytes copied.
    pub(crate) fn new(quiet: bool) -> Self {
        Self::counting(quiet, "copied")
    }

    /// As [`Progress::new`], for files that are `done` otherwise than copied.
    pub(crate) fn counting(quiet: bool, done: &'static str) -> Self {
        if quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            return Self::Log;
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>4} {prefix} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Self::Bar {
            bar,
            files: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            done,
        }
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        if let Self::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn event(&self, event: &Event<'_>) {
        match (self, event) {
            (Self::Bar { bar, .. }, Event::TableStarted { table }) => {
                bar.set_prefix((*table).to_owned());
            }
            (
                Self::Bar {
                    bar,
                    files,
                    bytes,
                    done,
                },
                Event::FileCopied { bytes: n, .. },
            ) => {
                let f = files.fetch_add(1, Ordering::Relaxed) + 1;
                let b = bytes.fetch_add(*n, Ordering::Relaxed) + n;
                bar.set_message(message(f, b, done));
            }
            (Self::Bar { bar, .. }, Event::TableFinished { table, outcome }) => {
                bar.println(format!("{outcome:>10}  {table}"));
            }
            (Self::Log, Event::TableStarted { table }) => tracing::debug!(%table, "started"),
            (Self::Log, Event::FileCopied { table, bytes }) => {
                tracing::trace!(%table, bytes, "file copied");
            }
            (Self::Log, Event::TableFinished { table, outcome }) => {
                tracing::info!(%table, %outcome, "done");
            }
        }
    }
}

/// The bar's message after `files` files of `bytes` bytes in all were `done`.
fn message(files: u64, bytes: u64, done: &str) -> String {
    let noun = if files == 1 { "file" } else { "files" };
    format!("{files} {noun}, {} {done}", human_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_says_what_was_done_to_how_much() {
        assert_eq!(message(3, 3 << 20, "checked"), "3 files, 3.0 MiB checked");
        assert_eq!(message(1, 10, "copied"), "1 file, 10 B copied");
    }
}
