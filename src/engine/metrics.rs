//! Prometheus metrics of `bcn apply`, in the text format that `node_exporter`'s textfile
//! collector reads: written after every run, atomically (a temporary file renamed into
//! place), one series per entry.
//!
//! What an alert needs comes from the repository itself (its newest PIT, its verification
//! records), so an entry that was not due this run still reports when it last succeeded.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::apply::{ApplyReport, EntryReport, EntryStatus};
use crate::repo::{PitEntry, Repository, layout};
use crate::store::BackupStore;

/// What the repository of an entry holds after a run.
#[derive(Debug, Clone, Serialize)]
pub struct RepositoryState {
    /// When the newest PIT was committed.
    pub last_success: Option<DateTime<Utc>>,
    /// When the newest PIT's backup started.
    pub last_pit_started: Option<DateTime<Utc>>,
    /// PITs (readable or not).
    pub pits: usize,
    /// Bytes of every table object.
    pub bytes: u64,
    /// The newest verification: when, and whether it was clean.
    pub last_verification: Option<(DateTime<Utc>, bool)>,
}

impl RepositoryState {
    /// Reads the state of the repository in `store`; `None` when it cannot be read.
    pub async fn read(store: Arc<dyn BackupStore>) -> Option<Self> {
        let repo = Repository::open(store).await.ok()?;
        let pits = repo.scan_pits().await.ok()?;
        let newest = pits.iter().rev().find_map(|p| match p {
            PitEntry::Readable(pit) => Some(pit),
            PitEntry::Damaged { .. } => None,
        });
        // A page at a time: a repository of a million files lists ~200 MB of keys.
        let bytes = futures::TryStreamExt::try_fold(
            repo.store().list_pages(layout::TABLES_PREFIX),
            0u64,
            |sum, page| async move { Ok(sum + page.iter().map(|o| o.size).sum::<u64>()) },
        )
        .await
        .ok()?;
        let last_verification = repo
            .verifications()
            .await
            .ok()?
            .pop()
            .map(|v| (v.started_at, v.clean));
        Some(Self {
            last_success: newest.map(|p| p.finished_at),
            last_pit_started: newest.map(|p| p.started_at),
            pits: pits.len(),
            bytes,
            last_verification,
        })
    }
}

/// One metric family: name, help, and a value per entry (`None`: no sample).
type Family<'a> = (
    &'a str,
    &'a str,
    Box<dyn Fn(&EntryReport) -> Option<f64> + 'a>,
);

/// The metrics of a run, in the Prometheus text format.
pub(crate) fn render(report: &ApplyReport) -> String {
    #[expect(clippy::cast_precision_loss, reason = "metrics are floats")]
    let n = |v: u64| v as f64;
    #[expect(clippy::cast_precision_loss, reason = "metrics are floats")]
    let time = |t: DateTime<Utc>| t.timestamp_millis() as f64 / 1000.0;
    let state = |e: &EntryReport| e.repository_state.clone();
    let families: Vec<Family<'_>> = vec![
        (
            "bcn_last_success_timestamp_seconds",
            "When the entry's newest PIT was committed (from the repository).",
            Box::new(move |e| state(e)?.last_success.map(time)),
        ),
        (
            "bcn_last_attempt_timestamp_seconds",
            "When the entry last ran (this run, or the start of its newest PIT when not due).",
            Box::new(move |e| {
                if e.status == EntryStatus::Skipped && e.verification.is_none() {
                    state(e)?.last_pit_started.map(time)
                } else {
                    Some(time(e.started_at))
                }
            }),
        ),
        (
            "bcn_entry_duration_seconds",
            "How long the entry took in this run.",
            Box::new(move |e| {
                #[expect(clippy::cast_precision_loss, reason = "metrics are floats")]
                let ms = (e.finished_at - e.started_at).num_milliseconds() as f64;
                Some(ms / 1000.0)
            }),
        ),
        (
            "bcn_files_copied",
            "Files this run copied into the repository.",
            Box::new(move |e| {
                Some(n(e
                    .backup
                    .as_ref()
                    .map_or(0, |b| b.pit.summary.files_added)))
            }),
        ),
        (
            "bcn_bytes_copied",
            "Bytes this run copied into the repository.",
            Box::new(move |e| {
                Some(n(e
                    .backup
                    .as_ref()
                    .map_or(0, |b| b.pit.summary.bytes_added)))
            }),
        ),
        (
            "bcn_server_side_copies",
            "Files S3 copied itself in this run (warehouse and repository on one service).",
            Box::new(move |e| {
                Some(n(e.backup.as_ref().map_or(0, |b| {
                    b.pit
                        .tables
                        .iter()
                        .filter_map(|t| t.state.as_ref())
                        .map(|s| s.files_server_side)
                        .sum()
                })))
            }),
        ),
        (
            "bcn_pits",
            "PITs in the entry's repository.",
            Box::new(move |e| state(e).map(|s| n(s.pits as u64))),
        ),
        (
            "bcn_repository_bytes",
            "Bytes of every table object in the entry's repository.",
            Box::new(move |e| state(e).map(|s| n(s.bytes))),
        ),
        (
            "bcn_last_verification_timestamp_seconds",
            "When the entry's repository was last verified.",
            Box::new(move |e| state(e)?.last_verification.map(|(t, _)| time(t))),
        ),
        (
            "bcn_last_verification_success",
            "1 when the newest verification found nothing wrong, 0 when it found damage.",
            Box::new(move |e| {
                state(e)?
                    .last_verification
                    .map(|(_, clean)| if clean { 1.0 } else { 0.0 })
            }),
        ),
    ];
    let mut out = String::new();
    for (name, help, value) in &families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for entry in &report.entries {
            if let Some(v) = value(entry) {
                let _ = writeln!(out, "{name}{{{}}} {v}", labels(entry, None));
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP bcn_entry_status The outcome of the entry's last run (1 for its status).\n# TYPE bcn_entry_status gauge"
    );
    for entry in &report.entries {
        for status in ["succeeded", "partial", "failed", "locked", "skipped"] {
            let current = serde_json::to_value(entry.status)
                .ok()
                .is_some_and(|v| v == status);
            let _ = writeln!(
                out,
                "bcn_entry_status{{{}}} {}",
                labels(entry, Some(status)),
                u8::from(current)
            );
        }
    }
    out
}

/// `entry="...",repository="..."[,status="..."]`, escaped as the text format wants.
fn labels(entry: &EntryReport, status: Option<&str>) -> String {
    let escape = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let mut out = format!(
        "entry=\"{}\",repository=\"{}\"",
        escape(&entry.entry),
        escape(&crate::secret::redact(&entry.repository))
    );
    if let Some(status) = status {
        let _ = write!(out, ",status=\"{status}\"");
    }
    out
}

/// Replaces `path` with `text` atomically: written to a temporary file in the same directory,
/// then renamed, so a collector never reads half a file.
pub(crate) fn write_textfile(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs_err::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    fs_err::write(&tmp, text)?;
    fs_err::rename(&tmp, path)
}
