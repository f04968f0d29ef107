//! `bcn apply`: reconcile every entry of the plan.
//!
//! For each entry (in plan order, or those named with `--only`):
//! 1. Decide whether it is due: no PIT yet, its newest PIT older than the strategy's
//!    interval, or `--force`.
//! 2. Notify `start`; back up (same code path as `bcn backup`); apply the strategy's
//!    retention (`forget`); render the reports; notify `success` or `failure`.
//! 3. One entry's failure never stops the others.
//!
//! With `--dry-run`, step 2 runs the backup's dry run instead: every table's action, the PITs
//! retention would forget, and what cannot be predicted — and nothing is written or sent.

mod entry;
mod preview;
mod reports;
mod schedule;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::Instrument as _;

use super::backup::BackupReport;
use super::maintenance::ForgetReport;
use super::verify::VerifyReport;
use super::{EngineError, Observer};
use crate::context::Context;
use crate::plan::Plan;
use entry::EntryRun;

/// Knobs of one `apply` run.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Plan and report, write nothing, send nothing.
    pub dry_run: bool,
    /// Run entries that are not due.
    pub force: bool,
    /// Only these entries (empty: all).
    pub only: Vec<String>,
    /// Cancelled to stop the run (SIGINT/SIGTERM, a cancelled `bcn serve` job): the running
    /// entry stops — its repository's records being read, its `before` hooks (killed), its
    /// backup or its verification — and is reported as interrupted (report, notification,
    /// metrics, after `after` hooks); no further entry starts. An entry past its strategy's
    /// `timeout` stops the same way, and the next one starts.
    pub cancel: Option<Cancel>,
}

/// How a run is told to stop, and what told it.
#[derive(Debug, Clone)]
pub struct Cancel {
    /// Cancelled to stop.
    pub token: tokio_util::sync::CancellationToken,
    /// What stopped it, as the entry's error says it: "interrupted by {by}".
    pub by: &'static str,
}

/// How an entry ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryStatus {
    /// Not due.
    Skipped,
    /// Dry run: what would happen is in the report.
    Planned,
    /// PIT committed, every table backed up.
    Succeeded,
    /// PIT committed with some tables FAILED (`allow_partial`).
    Partial,
    /// Nothing committed.
    Failed,
    /// Another run holds the repository's lock.
    Locked,
}

/// One table's action in an entry, as a reviewer reads it.
#[derive(Debug, Clone, Serialize)]
pub struct TableAction {
    /// `new`, `changed`, `unchanged`, `renamed`, `deleted`, `excluded`, `structure-only`,
    /// `ignored`, `not-taken`, `failed`.
    pub action: String,
    /// `database.table`.
    pub table: String,
    /// Files copied (or to copy).
    pub files: u64,
    /// Bytes copied (or to copy).
    pub bytes: u64,
    /// More: the old name, the category, the reason.
    pub detail: String,
}

/// The outcome of one entry.
#[derive(Debug, Clone, Serialize)]
pub struct EntryReport {
    /// The entry's name.
    pub entry: String,
    /// The repository URL.
    pub repository: String,
    /// What it backs up.
    pub scope: String,
    /// Whether it was due.
    pub due: bool,
    /// Why (or why not).
    pub due_reason: String,
    /// How it ended.
    pub status: EntryStatus,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The backup (or its dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupReport>,
    /// Per table.
    pub actions: Vec<TableAction>,
    /// Retention's decisions (dry run: what it would forget).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<ForgetReport>,
    /// Reports written.
    pub reports: Vec<PathBuf>,
    /// Things a reviewer should know, and what cannot be predicted.
    pub notes: Vec<String>,
    /// Whether the scheduled verification was due, and why (`None`: the strategy has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_due: Option<String>,
    /// The verification run after the backup (or alone, when only it was due).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerifyReport>,
    /// The verification found damage, or could not run.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub verification_failed: bool,
    /// With `full_every`: whether this backup is a full one, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_due: Option<String>,
    /// The repository after the run, for metrics (`None` when it could not be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository_state: Option<super::metrics::RepositoryState>,
    /// When the entry finished.
    pub finished_at: DateTime<Utc>,
    /// When the entry started.
    pub started_at: DateTime<Utc>,
}

/// The outcome of a run.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Per entry, in plan order.
    pub entries: Vec<EntryReport>,
}

/// Runs `apply`. Fails only for an invalid request (unknown `--only` entry).
pub async fn run(
    plan: &Plan,
    options: &ApplyOptions,
    ctx: &Context,
    observer: &dyn Observer,
) -> Result<ApplyReport, EngineError> {
    for name in &options.only {
        if !plan.backups().iter().any(|b| &b.name == name) {
            let known: Vec<&str> = plan.backups().iter().map(|b| b.name.as_str()).collect();
            return Err(EngineError::invalid_hint(
                format!("--only {name}: the plan has no entry `{name}`"),
                format!("entries: {}", known.join(", ")),
            ));
        }
    }
    if plan.backups().is_empty() {
        return Err(EngineError::invalid(
            "the plan has no `backups:` entries; nothing to apply",
        ));
    }
    let mut entries = Vec::new();
    for entry in plan
        .backups()
        .iter()
        .filter(|b| options.only.is_empty() || options.only.contains(&b.name))
    {
        if options
            .cancel
            .as_ref()
            .is_some_and(|c| c.token.is_cancelled())
        {
            tracing::warn!(entry = %entry.name, "not started: the run was interrupted");
            continue;
        }
        let span = tracing::info_span!("entry", entry = %entry.name);
        let run = EntryRun::new(plan, entry, options, ctx);
        entries.push(Box::pin(run.run(observer).instrument(span)).await);
    }
    let report = ApplyReport {
        dry_run: options.dry_run,
        entries,
    };
    if !options.dry_run
        && let Some(path) = plan.metrics_textfile()
    {
        super::metrics::write_textfile(path, &super::metrics::render(&report)).map_err(
            |source| EngineError::Io {
                what: format!("writing metrics to {}", path.display()),
                source,
            },
        )?;
    }
    Ok(report)
}
