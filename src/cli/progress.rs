//! Progress on stderr: a live bar on a terminal, plain log lines otherwise.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::{Event, Observer};
use crate::report::human_bytes;

/// Renders engine events: a spinner with files and bytes copied when stderr is a terminal,
/// log lines when it is not (cron, systemd, CI).
pub(crate) enum Progress {
    /// A live bar.
    Bar {
        /// The bar.
        bar: ProgressBar,
        /// Files copied so far.
        files: AtomicU64,
        /// Bytes copied so far.
        bytes: AtomicU64,
    },
    /// Log lines.
    Log,
}

impl Progress {
    /// A bar when stderr is a terminal and `quiet` is not set, else log lines.
    pub(crate) fn new(quiet: bool) -> Self {
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
            (Self::Bar { bar, files, bytes }, Event::FileCopied { bytes: n, .. }) => {
                let f = files.fetch_add(1, Ordering::Relaxed) + 1;
                let b = bytes.fetch_add(*n, Ordering::Relaxed) + n;
                bar.set_message(format!("{f} files, {} copied", human_bytes(b)));
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
