//! One entry of a run, as a value: [`EntryRun`] opens the entry's repository once, decides
//! what is due from what it records, and runs due → hooks → backup → retention →
//! verification, then [`EntryRun::finish`] writes the reports and sends the notifications.

use std::sync::Arc;

use serde_json::Value;

use super::preview::actions;
use super::schedule::{entry_due, full_due, verify_due};
use super::{ApplyOptions, EntryReport, EntryStatus};
use crate::context::Context;
use crate::engine::backup::{self, BackupOptions, BackupRequest};
use crate::engine::metrics::RepositoryState;
use crate::engine::verify::{self, VerifyRequest};
use crate::engine::{EngineError, Observer, Quiet, error_chain, notify};
use crate::plan::{BackupEntry, BackupMode, NotifyEvent, Plan, Subset};
use crate::repo::records::Scope;
use crate::repo::{PitEntry, RepoError, Repository};
use crate::store::BackupStore;

/// How an entry's steps ended.
enum Ending {
    /// Run the after hooks, write the reports, send the notifications.
    Finish,
    /// Nothing ran (not due, or a dry run): the report is complete as it is.
    Quiet,
}

/// What an entry's repository records decided.
enum Next {
    /// Nothing more to run (not due, a dry run, a failed `before` hook).
    Done(Ending),
    /// Only the verification is due; `done` verifications ran before.
    VerifyOnly {
        store: Arc<dyn BackupStore>,
        done: usize,
    },
    /// The backup is due (its `before` hooks have run), then the verification when
    /// `verify_after` says how many ran before.
    Backup {
        request: Box<BackupRequest>,
        repo: Option<Repository>,
        store: Arc<dyn BackupStore>,
        verify_after: Option<usize>,
    },
}

/// When an entry must stop: the run is told to (a signal, a cancelled `bcn serve` job), or
/// its strategy's `timeout` has passed since the entry started.
#[derive(Clone, Copy)]
struct Stop<'a> {
    cancel: Option<&'a super::Cancel>,
    /// When the timeout passes, and the timeout.
    timeout: Option<(tokio::time::Instant, chrono::Duration)>,
}

impl Stop<'_> {
    /// Resolves when the entry must stop; never without a cancel or a timeout.
    async fn fired(self) {
        let cancelled = async {
            match self.cancel {
                Some(cancel) => cancel.token.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let timed_out = async {
            match self.timeout {
                Some((deadline, _)) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = cancelled => {}
            () = timed_out => {}
        }
    }

    /// Whether what stopped the entry is its timeout (not a signal or a cancel).
    fn timed_out(self) -> bool {
        self.cancel
            .is_none_or(|cancel| !cancel.token.is_cancelled())
            && self.timeout.is_some()
    }

    /// What stopped the entry, as its error says it: "interrupted by {by}".
    fn by(self) -> String {
        match (self.timed_out(), self.timeout, self.cancel) {
            (true, Some((_, timeout)), _) => {
                format!(
                    "its strategy's timeout ({})",
                    super::schedule::human(timeout)
                )
            }
            (_, _, Some(cancel)) => cancel.by.to_owned(),
            _ => "a signal".to_owned(),
        }
    }
}

/// One entry being run.
pub(super) struct EntryRun<'a> {
    plan: &'a Plan,
    entry: &'a BackupEntry,
    options: &'a ApplyOptions,
    ctx: &'a Context,
    /// The repository's storage, once opened.
    store: Option<Arc<dyn BackupStore>>,
    stop: Stop<'a>,
    report: EntryReport,
}

impl<'a> EntryRun<'a> {
    pub(super) fn new(
        plan: &'a Plan,
        entry: &'a BackupEntry,
        options: &'a ApplyOptions,
        ctx: &'a Context,
    ) -> Self {
        let started_at = ctx.now();
        let scope = Scope {
            catalog: entry.catalog.name.clone(),
            database: entry.database.clone(),
            table: entry.table.clone(),
        };
        let report = EntryReport {
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
        let stop = Stop {
            cancel: options.cancel.as_ref(),
            timeout: entry.strategy.timeout.map(|timeout| {
                let length = timeout.to_std().unwrap_or_default();
                (tokio::time::Instant::now() + length, timeout)
            }),
        };
        Self {
            plan,
            entry,
            options,
            ctx,
            store: None,
            stop,
            report,
        }
    }

    /// Runs the entry to its report. Everything that fails — before the backup too (a
    /// repository that cannot be opened: credentials refused, a bucket gone, a damaged
    /// record) — is a failed entry like any other: reported, written and notified.
    pub(super) async fn run(mut self, observer: &dyn Observer) -> EntryReport {
        let ending = match Box::pin(self.steps(observer)).await {
            Ok(ending) => ending,
            Err(e) => {
                self.report.status = if e.kind() == crate::error::ErrorKind::Locked {
                    EntryStatus::Locked
                } else {
                    EntryStatus::Failed
                };
                let error = error_chain(&e);
                if let Some(hint) = crate::error::hint(&error) {
                    self.report.notes.push(format!("hint: {hint}"));
                }
                self.report.error = Some(error);
                Ending::Finish
            }
        };
        match ending {
            Ending::Quiet => self.report,
            Ending::Finish => self.finish().await,
        }
    }

    async fn steps(&mut self, observer: &dyn Observer) -> Result<Ending, EngineError> {
        let stop = self.stop;
        // Until the backup starts, a cancel stops the entry at once (a `before` hook running
        // is killed): nothing was copied.
        let next = tokio::select! {
            biased;
            () = stop.fired() => {
                return Err(EngineError::InterruptedBeforeBackup { by: stop.by() });
            }
            next = self.prepare(observer) => next?,
        };
        let (request, repo, store, verify_after) = match next {
            Next::Done(ending) => return Ok(ending),
            Next::VerifyOnly { store, done } => {
                self.verify(&store, done).await;
                return Ok(Ending::Finish);
            }
            Next::Backup {
                request,
                repo,
                store,
                verify_after,
            } => (request, repo, store, verify_after),
        };
        let start_doc = serde_json::to_value(&self.report).unwrap_or(Value::Null);
        let notifications = self.plan.notifications();
        notify::send(
            notifications,
            NotifyEvent::Start,
            &self.entry.name,
            "started",
            &start_doc,
        )
        .await;
        // The backup applies the retention policy under its own lock, after the commit.
        let scope = crate::engine::finish::new_scope();
        let run = Box::pin(crate::engine::finish::scoped(&scope, async {
            let plan = backup::prepare_with(*request, repo, self.ctx).await?;
            backup::execute(plan, self.ctx, observer).await
        }));
        let mut backup = tokio::select! {
            outcome = run => outcome?,
            () = stop.fired() => {
                // A commit under way ends first (and releases the lock): say whether it landed.
                let settled =
                    crate::engine::finish::settle_scope(&scope, crate::engine::finish::LIMIT).await;
                return Err(EngineError::Interrupted { by: stop.by(), said: settled.said() });
            }
        };
        self.report.status = if backup.failed.is_empty() {
            EntryStatus::Succeeded
        } else {
            EntryStatus::Partial
        };
        self.report.actions = actions(&backup);
        self.report.retention = backup.retention.take();
        if let Some(e) = backup.retention_error.take() {
            self.report
                .notes
                .push(format!("retention failed (the PIT is committed): {e}"));
        }
        self.report.backup = Some(backup);
        if let Some(done) = verify_after {
            self.verify(&store, done).await;
        }
        Ok(Ending::Finish)
    }

    /// Reads what the entry's repository records and decides what is due; runs the `before`
    /// hooks when the backup is.
    async fn prepare(&mut self, observer: &dyn Observer) -> Result<Next, EngineError> {
        let (entry, options, strategy) = (self.entry, self.options, &self.entry.strategy);
        let now = self.report.started_at;
        let store = crate::engine::open_repository_store(&entry.repository)?;
        self.store = Some(store.clone());
        // Opened once: every decision below reads what this repository records.
        let repo = match Repository::open(store.clone()).await {
            Ok(repo) => Some(repo),
            Err(RepoError::NotARepository { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let newest_pit = match &repo {
            Some(repo) => repo.latest_pit().await?.map(|p| p.started_at),
            None => None,
        };
        (self.report.due, self.report.due_reason) =
            entry_due(newest_pit, strategy.interval, options.force, now);
        let verifications = match (&strategy.verify, &repo) {
            (Some(_), Some(repo)) => repo.verifications().await?,
            _ => Vec::new(),
        };
        let verify_is_due = strategy.verify.as_ref().is_some_and(|policy| {
            let last = verifications.last().map(|v| (v.started_at, v.clean));
            let (due, reason) = verify_due(last, policy.interval, options.force, now);
            self.report.verify_due = Some(reason);
            due
        });
        if !self.report.due {
            self.report.status = EntryStatus::Skipped;
            if verify_is_due && !options.dry_run {
                // Only the verification is due.
                return Ok(Next::VerifyOnly {
                    store,
                    done: verifications.len(),
                });
            }
            // An entry that is not due still reports its repository's state in the metrics,
            // so that "last success" never disappears between runs.
            if !options.dry_run && self.plan.metrics_textfile().is_some() {
                self.report.repository_state = RepositoryState::read(store).await;
            }
            return Ok(Next::Done(Ending::Quiet));
        }
        let mut mode = strategy.mode;
        if let (Some(every), BackupMode::Incremental) = (strategy.full_every, mode) {
            let newest_full = match &repo {
                Some(repo) => newest_full_pit(repo).await?,
                None => None,
            };
            let (due, reason) = full_due(repo.is_none(), newest_full, every, now);
            self.report.full_due = Some(reason);
            if due {
                mode = BackupMode::Full;
            }
        }
        let request = BackupRequest {
            catalog: entry.catalog.clone(),
            database: entry.database.clone(),
            table: entry.table.clone(),
            store: store.clone(),
            categorizer: self.plan.categorizer().clone(),
            options: BackupOptions {
                snapshots: strategy.snapshots,
                mode,
                categories: entry.categories.clone(),
                allow_partial: strategy.allow_partial,
                retention: (!strategy.retention.is_empty()).then(|| strategy.retention.clone()),
                ..BackupOptions::default()
            },
        };
        if options.dry_run {
            self.dry_run(request, repo, observer).await;
            return Ok(Next::Done(Ending::Quiet));
        }
        for argv in &entry.hooks.before {
            let env = [("BCN_ENTRY", entry.name.clone())];
            if let Err(e) = crate::engine::hooks::run(argv, &env, entry.hooks.timeout).await {
                self.report.error = Some(format!("before hook: {e}; nothing was backed up"));
                return Ok(Next::Done(Ending::Finish));
            }
        }
        Ok(Next::Backup {
            request: Box::new(request),
            repo,
            store,
            verify_after: verify_is_due.then_some(verifications.len()),
        })
    }

    /// The backup's dry run: prepared, then previewed — every table's action and what
    /// retention would forget, decided as the run would decide them.
    async fn dry_run(
        &mut self,
        request: BackupRequest,
        repo: Option<Repository>,
        observer: &dyn Observer,
    ) {
        let report = &mut self.report;
        let preview = match backup::prepare_with(request, repo, self.ctx).await {
            Ok(plan) => backup::preview(plan, self.ctx, observer).await,
            Err(e) => Err(e),
        };
        match preview {
            Ok(mut backup) => {
                report.status = EntryStatus::Planned;
                report.actions = actions(&backup);
                if backup.created_repository {
                    report.notes.push(format!(
                        "the repository does not exist yet: the first run creates it, holding {}",
                        report.scope
                    ));
                }
                report.retention = backup.retention.take();
                if let Some(e) = backup.retention_error.take() {
                    report
                        .notes
                        .push(format!("retention cannot be previewed: {e}"));
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
    }

    /// Runs the entry's verification; a slice subset rotates with each recorded run (`done`
    /// verifications so far).
    async fn verify(&mut self, store: &Arc<dyn BackupStore>, done: usize) {
        let Some(policy) = &self.entry.strategy.verify else {
            return;
        };
        let read_data = match policy.read_data {
            Some(Subset::Slice { t, .. }) => {
                let k = u32::try_from(done % t as usize).unwrap_or(0) + 1;
                Some(Subset::Slice { k, t })
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
        let stop = self.stop;
        let report = &mut self.report;
        let outcome = tokio::select! {
            biased;
            () = stop.fired() => {
                // Read-only but for its record, written last: nothing is recorded, and the
                // restore test's scratch catalog goes with its guard. Stopped by a signal or
                // a cancel, it is put off; cut by the timeout, it could not run, which is a
                // failed verification as any other that could not run: a verification that
                // never fits in the timeout must not go unheard.
                let by = stop.by();
                if stop.timed_out() {
                    report.verification_failed = true;
                    report.notes.push(format!(
                        "verification could not run to its end: interrupted by {by}; nothing was recorded"
                    ));
                } else {
                    report.notes.push(format!(
                        "verification interrupted by {by}: not recorded, so it is due again on the next run"
                    ));
                }
                return;
            }
            outcome = verify::verify(&request, self.ctx, &Quiet) => outcome,
        };
        match outcome {
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

    /// Runs the after hooks, writes the entry's reports (off the async threads) and sends its
    /// notifications: success or failure of the backup, and a `verify_failure` when its
    /// verification found damage. A dry run does none of it.
    async fn finish(mut self) -> EntryReport {
        if self.options.dry_run {
            return self.report;
        }
        self.run_after_hooks().await;
        let mut report = self.report;
        report.finished_at = self.ctx.now().max(report.started_at);
        if let Some(store) = self.store {
            report.repository_state = RepositoryState::read(store).await;
        }
        let (specs, base) = (self.plan.reports().to_vec(), self.plan.base().to_path_buf());
        let mut report = match tokio::task::spawn_blocking(move || {
            super::reports::write(&specs, &base, &mut report);
            report
        })
        .await
        {
            Ok(report) => report,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        let doc = serde_json::to_value(&report).unwrap_or(Value::Null);
        let (event, status) = match report.status {
            EntryStatus::Succeeded => (NotifyEvent::Success, "succeeded"),
            EntryStatus::Partial => (NotifyEvent::Failure, "partial"),
            EntryStatus::Locked => (NotifyEvent::Failure, "locked"),
            _ => (NotifyEvent::Failure, "failed"),
        };
        let notifications = self.plan.notifications();
        let name = &self.entry.name;
        let mut failures = Vec::new();
        if report.status != EntryStatus::Skipped {
            failures.extend(notify::send(notifications, event, name, status, &doc).await);
        }
        if report.verification_failed {
            let event = NotifyEvent::VerifyFailure;
            failures.extend(notify::send(notifications, event, name, "damaged", &doc).await);
        }
        for failure in failures {
            report.notes.push(format!("notification failed: {failure}"));
        }
        report
    }

    /// Runs the entry's `after` hooks with its outcome in their environment; failures become
    /// notes.
    async fn run_after_hooks(&mut self) {
        let report = &mut self.report;
        let status = serde_json::to_value(report.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut env = vec![
            ("BCN_ENTRY", self.entry.name.clone()),
            ("BCN_STATUS", status),
        ];
        if let Some(backup) = report.backup.as_ref().filter(|_| report.error.is_none()) {
            env.push(("BCN_PIT", backup.pit.id.clone()));
        }
        if let Some(error) = &report.error {
            env.push(("BCN_ERROR", crate::secret::redact(error).into_owned()));
        }
        let hooks = &self.entry.hooks;
        for argv in &hooks.after {
            if let Err(e) = crate::engine::hooks::run(argv, &env, hooks.timeout).await {
                report.notes.push(format!("after hook: {e}"));
            }
        }
    }
}

/// When the repository's newest full PIT (or its first, which copied everything) started.
async fn newest_full_pit(
    repo: &Repository,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, EngineError> {
    Ok(repo
        .scan_pits()
        .await?
        .into_iter()
        .filter_map(|p| match p {
            PitEntry::Readable(pit) => Some(pit),
            PitEntry::Damaged { .. } => None,
        })
        .filter(|p| p.strategy.mode == BackupMode::Full.as_str() || p.parent.is_none())
        .map(|p| p.started_at)
        .max())
}
