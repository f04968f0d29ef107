//! Backup: one PIT of every object in a repository's scope.
//!
//! 1. Open the catalog and resolve the scope; a table or database that does not exist stops
//!    the run before anything is written (the repository is not even created).
//! 2. Open or create the repository (its scope is fixed at creation) and take its exclusive lock.
//! 3. Compare every table with the newest PIT, by table UUID: the same metadata location is
//!    UNCHANGED and reads nothing more; another name under the same UUID is RENAMED; a UUID
//!    that is gone is DELETED; new UUIDs are NEW.
//! 4. For NEW, CHANGED and RENAMED tables, walk the metadata to every referenced file and copy
//!    those the repository does not hold yet, with size and SHA-256. A file that vanishes
//!    meanwhile (a concurrent expiry) restarts the table from fresh metadata.
//! 5. Write each table's metadata and file list, then — only if every table succeeded — the
//!    PIT record, with create-if-absent.
//! 6. Apply the retention policy, if the request has one, under the same lock; then release it.
//!
//! [`prepare`] does step 1 and opens the repository; [`execute`] does the rest. [`preview`]
//! decides steps 3–4 exactly as [`execute`] would (the same code, up to the point where it
//! would write) and writes nothing: that is a dry run.

mod copy;
mod records;
mod spill;
mod table;
pub(crate) mod view;

use records::{carry_over_missing, database_records, summarize};
use table::{Run, TableJob, failed_record};

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};
use iceberg::{NamespaceIdent, TableIdent};
use serde::Serialize;

use super::files::SnapshotSelection;
use super::maintenance::{self, ForgetReport};
use super::transfer::{self};
use super::{EngineError, Observer, TableError, TableFailure};
use crate::catalog::{self, OpenCatalog, OpenMode};
use crate::context::Context;
use crate::plan::BackupMode;
use crate::plan::{CatalogSpec, Categorizer, Retention};
use crate::repo::lock::{self, DEFAULT_TTL_SECONDS};
use crate::repo::records::{
    Category, FORMAT_VERSION, Namespace, ObjectKind, PitRecord, Scope, StrategyRecord, TableRecord,
};
use crate::repo::{RepoError, Repository};
use crate::store::BackupStore;

/// Knobs of one backup run.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Which snapshots' files to keep.
    pub snapshots: SnapshotSelection,
    /// Incremental, or copy and checksum every file again instead of reusing stored ones.
    pub mode: BackupMode,
    /// Tables backed up at once.
    pub table_concurrency: usize,
    /// Files copied at once per table; small local ones go several to a task, except at 1,
    /// where each file is copied (and reported) before the next starts.
    pub file_concurrency: usize,
    /// Lock TTL in seconds.
    pub lock_ttl_seconds: u64,
    /// The categories this backup takes; tables of other categories are not backed up (and
    /// are EXCLUDED when an earlier PIT held them).
    pub categories: Vec<Category>,
    /// Commit the PIT even when some tables fail; they are recorded as FAILED.
    pub allow_partial: bool,
    /// Applied once the PIT is committed, under the same lock: the PITs it does not keep are
    /// forgotten (a dry run says which it would forget).
    pub retention: Option<Retention>,
}

impl Default for BackupOptions {
    fn default() -> Self {
        Self {
            snapshots: SnapshotSelection::All,
            mode: BackupMode::Incremental,
            table_concurrency: 4,
            file_concurrency: 8,
            lock_ttl_seconds: DEFAULT_TTL_SECONDS,
            categories: vec![Category::Global, Category::Local, Category::Ephemeral],
            allow_partial: false,
            retention: None,
        }
    }
}

/// What to back up where.
#[derive(Debug, Clone)]
pub struct BackupRequest {
    /// The source catalog.
    pub catalog: Arc<CatalogSpec>,
    /// The scope asked for; `None` takes the repository's fixed scope.
    pub database: Option<Namespace>,
    /// The table asked for (needs `database`).
    pub table: Option<String>,
    /// The repository.
    pub store: Arc<dyn BackupStore>,
    /// Table categories.
    pub categorizer: Categorizer,
    /// Knobs.
    pub options: BackupOptions,
}

/// The outcome of a committed backup.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    /// The repository URL.
    pub repository: String,
    /// Whether this run created the repository.
    pub created_repository: bool,
    /// Whether this was a dry run (nothing written, `pit` is what would be committed).
    pub dry_run: bool,
    /// The committed PIT (for a dry run: the PIT that would be committed).
    pub pit: PitRecord,
    /// Tables that failed (only with `allow_partial`; they are FAILED in the PIT).
    pub failed: Vec<TableFailure>,
    /// Tables in scope that this backup does not take: `ignore`d ones, and those of
    /// categories the entry does not take.
    pub skipped: Vec<SkippedTable>,
    /// Newer PITs whose record cannot be read: this backup compared against the newest
    /// readable one instead.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub damaged_pits: Vec<String>,
    /// What the request's retention policy forgot (for a dry run: would forget).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<ForgetReport>,
    /// Why the retention policy could not be applied; the PIT is committed all the same.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_error: Option<String>,
}

/// A table in scope that was not backed up because of its category.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedTable {
    /// `database.table`.
    pub table: String,
    /// Its category.
    pub category: Category,
}

/// A backup, prepared: the catalog opened and the scope found in it, the repository opened
/// (or planned, when this backup creates it). Nothing is written yet.
pub struct BackupPlan {
    request: BackupRequest,
    catalog: OpenCatalog,
    /// The repository; when `create` is set, the one this backup would create.
    repo: Repository,
    /// The repository does not exist yet: [`execute`] creates it with this scope.
    create: Option<Scope>,
    started_at: DateTime<Utc>,
}

impl std::fmt::Debug for BackupPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupPlan")
            .field("repository", &self.repo.url())
            .field("catalog", &self.catalog.name)
            .field("create", &self.create)
            .field("started_at", &self.started_at)
            .finish_non_exhaustive()
    }
}

impl BackupPlan {
    /// Whether the backup creates the repository (it does not exist yet).
    pub fn creates_repository(&self) -> bool {
        self.create.is_some()
    }
}

/// Runs one backup: [`prepare`], then [`execute`]. See the module documentation for the steps.
pub async fn run(
    request: BackupRequest,
    ctx: &Context,
    observer: &dyn Observer,
) -> Result<BackupReport, EngineError> {
    execute(prepare(request, ctx).await?, ctx, observer).await
}

/// Step 1: checks the request against the repository's fixed scope, opens the catalog and
/// finds the scope in it. Writes nothing.
pub async fn prepare(request: BackupRequest, ctx: &Context) -> Result<BackupPlan, EngineError> {
    let existing = match Repository::open(request.store.clone()).await {
        Ok(repo) => Some(repo),
        Err(RepoError::NotARepository { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    prepare_with(request, existing, ctx).await
}

/// As [`prepare`], with the repository the caller has opened already (`None`: there is none
/// at the request's store yet), so that it is not opened twice.
pub async fn prepare_with(
    request: BackupRequest,
    existing: Option<Repository>,
    ctx: &Context,
) -> Result<BackupPlan, EngineError> {
    let started_at = ctx.now();
    let requested = requested_scope(&request)?;
    // The repository's fixed scope is checked before the catalog is even opened. No database
    // means the whole catalog: a repository that holds less refuses it, rather than quietly
    // backing up less than was asked for.
    if let Some(repo) = &existing {
        let wanted = requested.clone().unwrap_or_else(|| Scope {
            catalog: request.catalog.name.clone(),
            database: None,
            table: None,
        });
        repo.check_scope(&wanted)?;
    }
    let catalog = catalog::open(&request.catalog, OpenMode::Existing).await?;
    let (repo, create) = if let Some(repo) = existing {
        (repo, None)
    } else {
        let scope = requested.unwrap_or_else(|| Scope {
            catalog: request.catalog.name.clone(),
            database: None,
            table: None,
        });
        // A missing table or database stops the run before the repository exists. Once it
        // exists, objects that go away are recorded as DELETED instead.
        ensure_scope_exists(&catalog, &scope).await?;
        let planned = Repository::planned(request.store.clone(), &scope, started_at);
        (planned, Some(scope))
    };
    Ok(BackupPlan {
        request,
        catalog,
        repo,
        create,
        started_at,
    })
}

/// A dry run: decides every table's status and the files it would copy exactly as
/// [`execute`] would, and what the retention policy would forget; takes no lock (readers
/// never do) and writes nothing.
pub async fn preview(
    plan: BackupPlan,
    ctx: &Context,
    observer: &dyn Observer,
) -> Result<BackupReport, EngineError> {
    let outcome = decide(&plan, &plan.repo, Run::Preview, ctx, observer).await?;
    let retention = match &plan.request.options.retention {
        Some(policy) => {
            let exists = plan.create.is_none();
            maintenance::forget_preview(&plan.repo, exists, &outcome.pit, policy)
                .await
                .map(Some)
        }
        None => Ok(None),
    };
    Ok(outcome.report(&plan.repo, plan.create.is_some(), true, retention))
}

/// Steps 2–6: creates the repository if it does not exist, takes its lock, stores every
/// table and commits the PIT, applies the retention policy, releases the lock.
pub async fn execute(
    plan: BackupPlan,
    ctx: &Context,
    observer: &dyn Observer,
) -> Result<BackupReport, EngineError> {
    let (repo, created) = match &plan.create {
        Some(scope) => {
            Repository::open_or_init(plan.request.store.clone(), Some(scope), plan.started_at)
                .await?
        }
        None => (plan.repo.clone(), false),
    };
    let options = &plan.request.options;
    let guard = lock::acquire(&repo, ctx, "backup", options.lock_ttl_seconds).await?;
    let result = decide(&plan, &repo, Run::Store, ctx, observer).await;
    let held = match &result {
        Ok(_) => guard.still_held().await.map_err(EngineError::from),
        Err(_) => Ok(true),
    };
    let (result, guard) = match (result, held) {
        (Ok(_), Ok(false)) => (Err(EngineError::LockLost(repo.url().to_owned())), guard),
        (Ok(outcome), Ok(true)) => 'commit: {
            // What the record references is made durable first (this may be stopped), then
            // the record is created: that runs to its end even when the run is stopped
            // meanwhile (see `finish`), and the lock goes only after it: no gc comes between.
            if let Err(e) = repo.store().sync().await {
                break 'commit (Err(EngineError::from(RepoError::from(e))), guard);
            }
            let done = format!("PIT {} was committed to {}", outcome.pit.id, repo.url());
            let (owned, pit) = (repo.clone(), outcome.pit.clone());
            let commit = async move {
                match owned.commit_pit(&pit).await {
                    Ok(()) => Ok(guard),
                    Err(e) => Err((e, guard)),
                }
            };
            match crate::engine::finish::to_the_end(done, commit).await {
                Ok(guard) => (Ok(outcome), guard),
                Err((e, guard)) => (Err(EngineError::from(e)), guard),
            }
        }
        (Err(e), _) | (Ok(_), Err(e)) => (Err(e), guard),
    };
    // Retention runs under the lock that committed the PIT, so no other run comes between.
    let retention = match (&result, &options.retention) {
        (Ok(_), Some(policy)) => maintenance::forget_locked(&repo, policy, true, ctx)
            .await
            .map(Some),
        _ => Ok(None),
    };
    // The lock goes whatever happened; a failure to remove it is reported after the outcome.
    let released = guard.release().await;
    let outcome = result?;
    released?;
    Ok(outcome.report(&repo, created, false, retention))
}

fn requested_scope(request: &BackupRequest) -> Result<Option<Scope>, EngineError> {
    match (&request.database, &request.table) {
        (None, Some(_)) => Err(EngineError::invalid("--table needs --database")),
        (None, None) => Ok(None),
        (database, table) => Ok(Some(Scope {
            catalog: request.catalog.name.clone(),
            database: database.clone(),
            table: table.clone(),
        })),
    }
}

async fn ensure_scope_exists(catalog: &OpenCatalog, scope: &Scope) -> Result<(), EngineError> {
    let Some(db) = &scope.database else {
        return Ok(());
    };
    let ns = NamespaceIdent::from_vec(db.clone())
        .map_err(|e| EngineError::invalid(format!("invalid database name: {e}")))?;
    let exists = catalog
        .catalog
        .namespace_exists(&ns)
        .await
        .map_err(catalog.err("checking a database"))?;
    if !exists {
        return Err(EngineError::NotFound(format!(
            "database `{ns}` does not exist in catalog `{}`",
            catalog.name
        )));
    }
    if let Some(table) = &scope.table {
        let ident = TableIdent::new(ns, table.clone());
        let exists = catalog
            .catalog
            .table_exists(&ident)
            .await
            .map_err(catalog.err("checking a table"))?;
        if !exists {
            return Err(EngineError::NotFound(format!(
                "table `{ident}` does not exist in catalog `{}`",
                catalog.name
            )));
        }
    }
    Ok(())
}

/// What deciding (and, for a real run, storing) every object produced: the PIT to commit,
/// failed and skipped tables, and damaged newer PITs passed over.
struct Outcome {
    pit: PitRecord,
    failed: Vec<TableFailure>,
    skipped: Vec<SkippedTable>,
    damaged_pits: Vec<String>,
}

impl Outcome {
    fn report(
        self,
        repo: &Repository,
        created_repository: bool,
        dry_run: bool,
        retention: Result<Option<ForgetReport>, EngineError>,
    ) -> BackupReport {
        let (retention, retention_error) = match retention {
            Ok(report) => (report, None),
            Err(e) => (None, Some(crate::engine::error_chain(&e))),
        };
        BackupReport {
            repository: repo.url().to_owned(),
            created_repository,
            dry_run,
            pit: self.pit,
            failed: self.failed,
            skipped: self.skipped,
            damaged_pits: self.damaged_pits,
            retention,
            retention_error,
        }
    }
}

/// Steps 3–4: every object's status and files, decided against the newest readable PIT of
/// `repo`, and (for [`Run::Store`]) stored; the PIT record that would commit them.
async fn decide(
    plan: &BackupPlan,
    repo: &Repository,
    run: Run,
    ctx: &Context,
    observer: &dyn Observer,
) -> Result<Outcome, EngineError> {
    let (catalog, request, started_at) = (&plan.catalog, &plan.request, plan.started_at);
    let scope = repo.scope().clone();
    let (parent, damaged_pits) = repo.newest_readable_pit().await?;
    let damaged = repo.damaged_objects().await?;
    // The new PIT sorts after every existing one, damaged ones included.
    let newest = damaged_pits
        .first()
        .map(String::as_str)
        .or(parent.as_ref().map(|p| p.id.as_str()));
    let pit_id = ctx.new_pit_id(started_at, newest);
    let (namespaces, idents, views) = objects_in_scope(catalog, &scope).await?;

    let job = TableJob {
        repo,
        catalog,
        request,
        observer,
        pit_id: &pit_id,
        parent_by_key: parent
            .iter()
            .flat_map(|p| &p.tables)
            .filter(|t| t.status.is_live())
            .map(|t| (t.key.as_str(), t))
            .collect(),
        skipped: std::sync::Mutex::default(),
        damaged,
        run,
        locations: catalog.table_locations().await,
        parent_by_location: parent_by_location(parent.as_ref()),
        files_in_memory: ctx.files_in_memory(),
    };
    let objects = idents
        .into_iter()
        .map(|i| (i, ObjectKind::Table))
        .chain(views.into_iter().map(|v| (v, ObjectKind::View)));
    let mut outcomes: Vec<(
        TableIdent,
        ObjectKind,
        Result<Option<TableRecord>, TableError>,
    )> = stream::iter(objects)
        .map(|(ident, kind)| {
            let job = &job;
            async move {
                let result = job.backup_object(&ident, kind).await;
                (ident, kind, result)
            }
        })
        .buffer_unordered(request.options.table_concurrency.max(1))
        .collect()
        .await;
    outcomes.sort_by_key(|a| (a.0.to_string(), a.1.is_table()));

    let mut tables = Vec::new();
    let mut failed = Vec::new();
    for (ident, kind, outcome) in outcomes {
        match outcome {
            Ok(Some(record)) => tables.push(record),
            Ok(None) => {}
            Err(reason) => failed.push((ident, kind, reason)),
        }
    }
    let failures: Vec<TableFailure> = failed
        .iter()
        .map(|(ident, _, error)| TableFailure::new(&ident.to_string(), error))
        .collect();
    if !failures.is_empty() && !request.options.allow_partial {
        return Err(EngineError::TablesFailed {
            failures,
            committed: false,
        });
    }
    for (ident, kind, error) in &failed {
        tables.push(failed_record(ident, *kind, error.message(), &job));
    }
    let skipped = std::mem::take(
        &mut *job
            .skipped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    carry_over_missing(&mut tables, parent.as_ref(), &skipped, started_at);
    let skipped = skipped
        .into_iter()
        .map(|name| {
            let table = name.to_string();
            SkippedTable {
                category: request.categorizer.category(&table),
                table,
            }
        })
        .collect();
    let databases = database_records(catalog, &namespaces, parent.as_ref(), started_at).await?;
    let finished_at = ctx.now();
    Ok(Outcome {
        pit: PitRecord {
            format_version: FORMAT_VERSION,
            summary: summarize(&tables, &databases),
            id: pit_id,
            seq: parent.as_ref().map_or(1, |p| p.seq + 1) + damaged_pits.len() as u64,
            parent: parent.map(|p| p.id),
            repository_id: repo.manifest().repository_id.clone(),
            started_at,
            finished_at,
            created_by: crate::VERSION_STRING.to_owned(),
            strategy: StrategyRecord {
                mode: request.options.mode.as_str().into(),
                snapshots: request.options.snapshots.as_str().into(),
            },
            databases,
            tables,
        },
        failed: failures,
        skipped,
        damaged_pits,
    })
}

/// The parent PIT's live tables by the metadata location they record; a location two records
/// share is left out (neither is carried over by location).
fn parent_by_location(parent: Option<&PitRecord>) -> std::collections::HashMap<&str, &TableRecord> {
    let mut by_location = std::collections::HashMap::new();
    let mut shared = std::collections::HashSet::new();
    let tables = parent
        .iter()
        .flat_map(|p| &p.tables)
        .filter(|t| t.status.is_live() && t.kind == ObjectKind::Table);
    for table in tables {
        let Some(state) = &table.state else { continue };
        let location = state.metadata_location.as_str();
        if by_location.insert(location, table).is_some() {
            shared.insert(location);
        }
    }
    by_location.retain(|location, _| !shared.contains(location));
    by_location
}

/// Namespaces, tables and views in scope, sorted.
async fn objects_in_scope(
    catalog: &OpenCatalog,
    scope: &Scope,
) -> Result<(Vec<NamespaceIdent>, Vec<TableIdent>, Vec<TableIdent>), EngineError> {
    let namespaces = match &scope.database {
        None => catalog.all_namespaces().await?,
        Some(db) => {
            let ns = NamespaceIdent::from_vec(db.clone())
                .map_err(|e| EngineError::invalid(format!("invalid database name: {e}")))?;
            // A database that vanished is recorded as DELETED, with all its tables.
            if catalog
                .catalog
                .namespace_exists(&ns)
                .await
                .map_err(catalog.err("checking a database"))?
            {
                vec![ns]
            } else {
                vec![]
            }
        }
    };
    let mut tables = Vec::new();
    let mut views = Vec::new();
    for ns in &namespaces {
        views.extend(
            catalog
                .list_views(ns)
                .await?
                .into_iter()
                .filter(|v| scope.table.as_ref().is_none_or(|name| v == name))
                .map(|v| TableIdent::new(ns.clone(), v)),
        );
        let listed = catalog
            .catalog
            .list_tables(ns)
            .await
            .map_err(catalog.err(format!("listing tables of `{ns}`")))?;
        tables.extend(
            listed
                .into_iter()
                .filter(|t| t.namespace() == ns)
                .filter(|t| scope.table.as_ref().is_none_or(|name| t.name() == name)),
        );
    }
    tables.sort_by_key(ToString::to_string);
    tables.dedup();
    Ok((namespaces, tables, views))
}
