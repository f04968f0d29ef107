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

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::backup::{self, BackupOptions, BackupReport, BackupRequest};
use super::files::SnapshotSelection;
use super::maintenance::{self, ForgetReport};
use super::retention::{self, Decision};
use super::verify::{self, VerifyReport, VerifyRequest};
use super::{EngineError, Observer, error_chain, notify};
use crate::context::Context;
use crate::plan::{BackupEntry, NotifyEvent, Plan, ReportTemplate};
use crate::repo::records::{Scope, Status};
use crate::repo::{RepoError, Repository};
use crate::report::render;

/// Knobs of one `apply` run.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Plan and report, write nothing, send nothing.
    pub dry_run: bool,
    /// Run entries that are not due.
    pub force: bool,
    /// Only these entries (empty: all).
    pub only: Vec<String>,
    /// Cancelled on SIGINT/SIGTERM: the running entry stops and is reported as interrupted,
    /// and no further entry starts.
    pub cancel: Option<tokio_util::sync::CancellationToken>,
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
            return Err(EngineError::Invalid(format!(
                "--only {name}: the plan has no entry `{name}`; entries: {}",
                known.join(", ")
            )));
        }
    }
    if plan.backups().is_empty() {
        return Err(EngineError::Invalid(
            "the plan has no `backups:` entries; nothing to apply".into(),
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
            .is_some_and(tokio_util::sync::CancellationToken::is_cancelled)
        {
            tracing::warn!(entry = %entry.name, "not started: the run was interrupted");
            continue;
        }
        let _span = tracing::info_span!("entry", entry = %entry.name).entered();
        entries.push(Box::pin(run_entry(plan, entry, options, ctx, observer)).await);
    }
    let report = ApplyReport {
        dry_run: options.dry_run,
        entries,
    };
    if !options.dry_run
        && let Some(path) = plan.metrics_textfile()
    {
        super::metrics::write_textfile(path, &super::metrics::render(&report)).map_err(|e| {
            EngineError::Invalid(format!("writing metrics to {}: {e}", path.display()))
        })?;
    }
    Ok(report)
}

async fn run_entry(
    plan: &Plan,
    entry: &BackupEntry,
    options: &ApplyOptions,
    ctx: &Context,
    observer: &dyn Observer,
) -> EntryReport {
    let started_at = ctx.now();
    let scope = Scope {
        catalog: entry.catalog.name.clone(),
        database: entry.database.clone(),
        table: entry.table.clone(),
    };
    let mut report = EntryReport {
        entry: entry.name.clone(),
        repository: entry.repository.location.to_string(),
        scope: scope.to_string(),
        due: true,
        due_reason: String::new(),
        status: EntryStatus::Failed,
        error: None,
        backup: None,
        actions: Vec::new(),
        retention: None,
        reports: Vec::new(),
        notes: Vec::new(),
        verify_due: None,
        verification: None,
        verification_failed: false,
        full_due: None,
        repository_state: None,
        finished_at: started_at,
        started_at,
    };
    // Everything that can fail before the backup starts (a repository that cannot be opened:
    // credentials refused, a bucket gone, a damaged record) is a failed entry like any other:
    // reported, written and notified.
    let store = match super::open_repository_store(&entry.repository) {
        Ok(store) => store,
        Err(e) => return finish(plan, ctx, failed(report, &e), entry, options).await,
    };
    match due(&store, entry, options, started_at).await {
        Ok((due, reason)) => {
            report.due = due;
            report.due_reason = reason;
        }
        Err(e) => return finish(plan, ctx, failed(report, &e), entry, options).await,
    }
    let verify_due = match &entry.strategy.verify {
        Some(policy) => match verify_due(&store, policy, options, started_at).await {
            Ok((due, reason)) => {
                report.verify_due = Some(reason);
                due
            }
            Err(e) => return finish(plan, ctx, failed(report, &e), entry, options).await,
        },
        None => false,
    };
    if !report.due {
        report.status = EntryStatus::Skipped;
        if verify_due && !options.dry_run {
            // Only the verification is due.
            run_verification(&mut report, &store, entry, ctx).await;
            return finish(plan, ctx, report, entry, options).await;
        }
        // An entry that is not due still reports its repository's state in the metrics, so
        // that "last success" never disappears between runs.
        if !options.dry_run && plan.metrics_textfile().is_some() {
            report.repository_state =
                super::metrics::RepositoryState::read(&entry.repository).await;
        }
        return report;
    }
    let strategy = &entry.strategy;
    let full_due = match strategy.full_every {
        Some(every) if !strategy.full => match full_due(&store, every, started_at).await {
            Ok((due, reason)) => {
                report.full_due = Some(reason);
                due
            }
            Err(e) => return finish(plan, ctx, failed(report, &e), entry, options).await,
        },
        _ => false,
    };
    let request = BackupRequest {
        catalog: entry.catalog.clone(),
        database: entry.database.clone(),
        table: entry.table.clone(),
        store: store.clone(),
        categorizer: plan.categorizer().clone(),
        options: BackupOptions {
            snapshots: if strategy.current_snapshot_only {
                SnapshotSelection::Current
            } else {
                SnapshotSelection::All
            },
            full: strategy.full || full_due,
            categories: entry.categories.clone(),
            allow_partial: strategy.allow_partial,
            dry_run: options.dry_run,
            ..BackupOptions::default()
        },
    };
    if options.dry_run {
        return dry_run(report, request, entry, ctx, observer).await;
    }
    for argv in &entry.hooks.before {
        let env = [("BCN_ENTRY", entry.name.clone())];
        if let Err(e) = super::hooks::run(argv, &env, entry.hooks.timeout).await {
            report.error = Some(format!("before hook: {e}; nothing was backed up"));
            return finish(plan, ctx, report, entry, options).await;
        }
    }
    let start_doc = serde_json::to_value(&report).unwrap_or(Value::Null);
    notify::send(
        plan.notifications(),
        NotifyEvent::Start,
        &entry.name,
        "started",
        &start_doc,
    )
    .await;
    let cancelled = async {
        match &options.cancel {
            Some(token) => token.cancelled().await,
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        outcome = backup::run(request, ctx, observer) => outcome,
        () = cancelled => Err(EngineError::Interrupted),
    };
    match outcome {
        Ok(backup) => {
            report.status = if backup.failed.is_empty() {
                EntryStatus::Succeeded
            } else {
                EntryStatus::Partial
            };
            report.actions = actions(&backup);
            report.backup = Some(backup);
            if !strategy.retention.is_empty() {
                match maintenance::forget(store.clone(), &strategy.retention, true, ctx).await {
                    Ok(forgotten) => report.retention = Some(forgotten),
                    Err(e) => report.notes.push(format!(
                        "retention failed (the PIT is committed): {}",
                        error_chain(&e)
                    )),
                }
            }
            if verify_due {
                run_verification(&mut report, &store, entry, ctx).await;
            }
        }
        Err(e) => {
            report.status = if matches!(&e, EngineError::Repo(RepoError::Locked(_))) {
                EntryStatus::Locked
            } else {
                EntryStatus::Failed
            };
            report.error = Some(error_chain(&e));
        }
    }
    finish(plan, ctx, report, entry, options).await
}

/// Writes the entry's reports and sends its notifications: success or failure of the
/// backup, and a `verify_failure` when its verification found damage. A dry run does
/// neither.
async fn finish(
    plan: &Plan,
    ctx: &Context,
    mut report: EntryReport,
    entry: &BackupEntry,
    options: &ApplyOptions,
) -> EntryReport {
    if options.dry_run {
        return report;
    }
    run_after_hooks(&mut report, entry).await;
    report.finished_at = ctx.now().max(report.started_at);
    report.repository_state = super::metrics::RepositoryState::read(&entry.repository).await;
    write_reports(plan, &mut report);
    let doc = serde_json::to_value(&report).unwrap_or(Value::Null);
    let (event, status) = match report.status {
        EntryStatus::Succeeded => (NotifyEvent::Success, "succeeded"),
        EntryStatus::Partial => (NotifyEvent::Failure, "partial"),
        _ => (
            NotifyEvent::Failure,
            if report.status == EntryStatus::Locked {
                "locked"
            } else {
                "failed"
            },
        ),
    };
    let mut failures = Vec::new();
    if report.status != EntryStatus::Skipped {
        failures.extend(notify::send(plan.notifications(), event, &entry.name, status, &doc).await);
    }
    if report.verification_failed {
        failures.extend(
            notify::send(
                plan.notifications(),
                NotifyEvent::VerifyFailure,
                &entry.name,
                "damaged",
                &doc,
            )
            .await,
        );
    }
    for failure in failures {
        report.notes.push(format!("notification failed: {failure}"));
    }
    report
}

/// Runs the entry's `after` hooks with its outcome in their environment; failures become
/// notes.
async fn run_after_hooks(report: &mut EntryReport, entry: &BackupEntry) {
    let status = serde_json::to_value(report.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut env = vec![("BCN_ENTRY", entry.name.clone()), ("BCN_STATUS", status)];
    if let Some(backup) = report.backup.as_ref().filter(|_| report.error.is_none()) {
        env.push(("BCN_PIT", backup.pit.id.clone()));
    }
    if let Some(error) = &report.error {
        env.push(("BCN_ERROR", crate::secret::redact(error).into_owned()));
    }
    for argv in &entry.hooks.after {
        if let Err(e) = super::hooks::run(argv, &env, entry.hooks.timeout).await {
            report.notes.push(format!("after hook: {e}"));
        }
    }
}

/// Whether an incremental strategy's periodic full backup is due: the repository's newest
/// full PIT is older than `every` (or there is none).
async fn full_due(
    store: &std::sync::Arc<dyn crate::store::BackupStore>,
    every: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<(bool, String), EngineError> {
    let repo = match Repository::open(store.clone()).await {
        Ok(repo) => repo,
        Err(RepoError::NotARepository { .. }) => {
            return Ok((false, "the first backup copies everything anyway".into()));
        }
        Err(e) => return Err(e.into()),
    };
    let newest_full = repo
        .scan_pits()
        .await?
        .into_iter()
        .filter_map(|p| match p {
            crate::repo::PitEntry::Readable(pit) => Some(pit),
            crate::repo::PitEntry::Damaged { .. } => None,
        })
        .filter(|p| p.strategy.mode == "full" || p.parent.is_none())
        .map(|p| p.started_at)
        .max();
    Ok(match newest_full {
        None => (
            true,
            format!("full: no full PIT yet, full_every {}", human(every)),
        ),
        Some(at) if now - at >= every => (
            true,
            format!(
                "full: newest full PIT is {} old, full_every {}",
                human(now - at),
                human(every)
            ),
        ),
        Some(at) => (
            false,
            format!(
                "incremental: newest full PIT is {} old, full_every {}: full in {}",
                human(now - at),
                human(every),
                human(every - (now - at))
            ),
        ),
    })
}

/// Whether the entry's verification is due, and why, from the repository's own record of
/// verifications.
async fn verify_due(
    store: &std::sync::Arc<dyn crate::store::BackupStore>,
    policy: &crate::plan::VerifyPolicy,
    options: &ApplyOptions,
    now: DateTime<Utc>,
) -> Result<(bool, String), EngineError> {
    let last = match Repository::open(store.clone()).await {
        Ok(repo) => repo.verifications().await?.pop(),
        Err(RepoError::NotARepository { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let Some(last) = last else {
        return Ok((true, "never verified".into()));
    };
    let age = now - last.started_at;
    let outcome = if last.clean { "clean" } else { "found damage" };
    Ok(match policy.interval {
        _ if options.force => (
            true,
            format!("--force (last {} ago, {outcome})", human(age)),
        ),
        None => (true, "no interval: every run".into()),
        Some(interval) if age >= interval => (
            true,
            format!(
                "last {} ago ({outcome}), interval {}",
                human(age),
                human(interval)
            ),
        ),
        Some(interval) => (
            false,
            format!(
                "last {} ago ({outcome}), interval {}: due in {}",
                human(age),
                human(interval),
                human(interval - age)
            ),
        ),
    })
}

/// Runs the entry's verification; a slice subset rotates with each recorded run.
async fn run_verification(
    report: &mut EntryReport,
    store: &std::sync::Arc<dyn crate::store::BackupStore>,
    entry: &BackupEntry,
    ctx: &Context,
) {
    let Some(policy) = &entry.strategy.verify else {
        return;
    };
    let read_data = match policy.read_data {
        Some(crate::plan::Subset::Slice { t, .. }) => {
            let done = match Repository::open(store.clone()).await {
                Ok(repo) => repo.verifications().await.map_or(0, |v| v.len()),
                Err(_) => 0,
            };
            let k = u32::try_from(done % t as usize).unwrap_or(0) + 1;
            Some(crate::plan::Subset::Slice { k, t })
        }
        other => other,
    };
    let request = VerifyRequest {
        store: store.clone(),
        pit: None,
        read_data,
        restore_test: policy.restore_test.then(Vec::new),
        concurrency: 4,
        repair: None,
    };
    match verify::verify(&request, ctx, &super::Quiet).await {
        Ok(verification) => {
            report.verification_failed = !verification.is_clean();
            if report.verification_failed {
                report.notes.push(format!(
                    "verification found {} problem(s): see `verification.problems`",
                    verification.problems.len()
                ));
            }
            report.verification = Some(verification);
        }
        Err(e) => {
            report.verification_failed = true;
            report
                .notes
                .push(format!("verification could not run: {}", error_chain(&e)));
        }
    }
}

fn failed(mut report: EntryReport, e: &EngineError) -> EntryReport {
    report.status = if matches!(e, EngineError::Repo(RepoError::Locked(_))) {
        EntryStatus::Locked
    } else {
        EntryStatus::Failed
    };
    report.error = Some(error_chain(e));
    report
}

/// Whether the entry is due, and why.
async fn due(
    store: &std::sync::Arc<dyn crate::store::BackupStore>,
    entry: &BackupEntry,
    options: &ApplyOptions,
    now: DateTime<Utc>,
) -> Result<(bool, String), EngineError> {
    let latest = match Repository::open(store.clone()).await {
        Ok(repo) => repo.latest_pit().await?,
        Err(RepoError::NotARepository { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let Some(latest) = latest else {
        return Ok((true, "no PIT yet".into()));
    };
    let age = now - latest.started_at;
    let age_text = human(age);
    match entry.strategy.interval {
        _ if options.force => Ok((true, format!("--force (newest PIT {age_text} old)"))),
        None => Ok((true, "no interval: every run".into())),
        Some(interval) if age >= interval => Ok((
            true,
            format!("newest PIT is {age_text} old, interval {}", human(interval)),
        )),
        Some(interval) => Ok((
            false,
            format!(
                "newest PIT is {age_text} old, interval {}: due in {}",
                human(interval),
                human(interval - age)
            ),
        )),
    }
}

/// A duration in words, to the second.
fn human(d: chrono::Duration) -> String {
    let seconds = u64::try_from(d.num_seconds()).unwrap_or(0);
    humantime::format_duration(std::time::Duration::from_secs(seconds)).to_string()
}

async fn dry_run(
    mut report: EntryReport,
    request: BackupRequest,
    entry: &BackupEntry,
    ctx: &Context,
    observer: &dyn Observer,
) -> EntryReport {
    let store = request.store.clone();
    match backup::run(request, ctx, observer).await {
        Ok(backup) => {
            report.status = EntryStatus::Planned;
            report.actions = actions(&backup);
            if backup.created_repository {
                report.notes.push(format!(
                    "the repository does not exist yet: the first run creates it, holding {}",
                    report.scope
                ));
            }
            if !entry.strategy.retention.is_empty() {
                report.retention = retention_preview(&store, &backup, entry).await.ok();
            }
            report.backup = Some(backup);
            report.notes.push(
                "files and bytes are as of now: tables written to before the run will copy more"
                    .into(),
            );
        }
        Err(e) => {
            report.status = EntryStatus::Failed;
            report.error = Some(error_chain(&e));
        }
    }
    report
}

/// What retention would forget once the planned PIT exists.
async fn retention_preview(
    store: &std::sync::Arc<dyn crate::store::BackupStore>,
    backup: &BackupReport,
    entry: &BackupEntry,
) -> Result<ForgetReport, EngineError> {
    let (mut times, damaged) = match Repository::open(store.clone()).await {
        Ok(repo) => maintenance::pit_times(&repo).await?,
        Err(_) => (Vec::new(), Vec::new()),
    };
    times.push((
        format!("{} (this run)", backup.pit.id),
        backup.pit.started_at,
    ));
    let decisions: Vec<Decision> = retention::decide(&times, &entry.strategy.retention);
    Ok(ForgetReport {
        repository: backup.repository.clone(),
        applied: false,
        policy: entry.strategy.retention.clone(),
        forgotten: decisions
            .iter()
            .filter(|d| !d.keep)
            .map(|d| d.pit.clone())
            .collect(),
        decisions,
        damaged,
        locked: Vec::new(),
    })
}

/// Every table's action, for the report.
fn actions(backup: &BackupReport) -> Vec<TableAction> {
    let pit = &backup.pit;
    let mut out: Vec<TableAction> = pit
        .tables
        .iter()
        .filter(|t| match t.status {
            // Carried-over tombstones are old news.
            Status::Deleted => t.deleted_at == Some(pit.started_at),
            Status::Excluded => t.last_pit == pit.parent,
            _ => true,
        })
        .map(|t| {
            let (files, bytes) = t
                .state
                .as_ref()
                .map_or((0, 0), |s| (s.files_added, s.bytes_added));
            let detail = match (&t.previous_name, &t.error) {
                (Some(old), _) => format!("was {old}"),
                (_, Some(e)) => e.clone(),
                _ => format!("category {}", t.category),
            };
            let action = match t.status {
                Status::StructureOnly => "structure-only".to_owned(),
                s => s.to_string().to_lowercase(),
            };
            TableAction {
                action,
                table: t.name.to_string(),
                files,
                bytes,
                detail,
            }
        })
        .collect();
    for s in &backup.skipped {
        let action = if s.category == crate::repo::records::Category::Ignore {
            "ignored"
        } else {
            "not-taken"
        };
        out.push(TableAction {
            action: action.into(),
            table: s.table.clone(),
            files: 0,
            bytes: 0,
            detail: format!("category {}", s.category),
        });
    }
    out
}

/// Renders the plan's reports for this entry; failures become notes.
fn write_reports(plan: &Plan, report: &mut EntryReport) {
    let data = serde_json::to_value(&*report).unwrap_or(Value::Null);
    let pit = report
        .backup
        .as_ref()
        .map_or("none".to_owned(), |b| b.pit.id.clone());
    let vars = serde_json::json!({
        "entry": report.entry,
        "pit": pit,
        "date": report.started_at.format("%Y-%m-%d").to_string(),
        "time": report.started_at.format("%H%M%S").to_string(),
        "status": serde_json::to_value(report.status).unwrap_or(Value::Null),
    });
    for spec in plan.reports() {
        let result = (|| -> Result<PathBuf, String> {
            let template = match &spec.template {
                ReportTemplate::Text => render::TEXT.to_owned(),
                ReportTemplate::Markdown => render::MARKDOWN.to_owned(),
                ReportTemplate::File(path) => {
                    fs_err::read_to_string(path).map_err(|e| e.to_string())?
                }
            };
            let rel =
                render::render("output path", &spec.output, &vars).map_err(|e| e.to_string())?;
            let path = plan.base().join(rel.trim());
            let text = render::render(&format!("{:?}", spec.template), &template, &data)
                .map_err(|e| e.to_string())?;
            if let Some(dir) = path.parent() {
                fs_err::create_dir_all(dir).map_err(|e| e.to_string())?;
            }
            fs_err::write(&path, text).map_err(|e| e.to_string())?;
            Ok(path)
        })();
        match result {
            Ok(path) => report.reports.push(path),
            Err(e) => report.notes.push(format!("report not written: {e}")),
        }
    }
}
