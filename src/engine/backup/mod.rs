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
//!    PIT record, with create-if-absent. Then release the lock.

mod copy;
mod records;
mod table;
pub(crate) mod view;

use records::{carry_over_missing, database_records, summarize};
use table::{TableJob, failed_record};

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};
use iceberg::{NamespaceIdent, TableIdent};
use serde::Serialize;

use super::files::SnapshotSelection;
use super::transfer::{self};
use super::{EngineError, Observer, TableFailure};
use crate::catalog::{self, OpenCatalog, OpenMode};
use crate::context::Context;
use crate::plan::BackupMode;
use crate::plan::{CatalogSpec, Categorizer};
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
    /// Files copied at once per table.
    pub file_concurrency: usize,
    /// Lock TTL in seconds.
    pub lock_ttl_seconds: u64,
    /// The categories this backup takes; tables of other categories are not backed up (and
    /// are EXCLUDED when an earlier PIT held them).
    pub categories: Vec<Category>,
    /// Commit the PIT even when some tables fail; they are recorded as FAILED.
    pub allow_partial: bool,
    /// Read everything, decide everything, write nothing (no lock, no repository, no files).
    pub dry_run: bool,
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
            dry_run: false,
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
}

/// A table in scope that was not backed up because of its category.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedTable {
    /// `database.table`.
    pub table: String,
    /// Its category.
    pub category: Category,
}

/// Runs one backup. See the module documentation for the steps.
pub async fn run(
    request: BackupRequest,
    ctx: &Context,
    observer: &dyn Observer,
) -> Result<BackupReport, EngineError> {
    let started_at = ctx.now();
    let requested = requested_scope(&request)?;
    // The repository's fixed scope is checked before the catalog is even opened.
    let existing = match Repository::open(request.store.clone()).await {
        Ok(repo) => {
            // No database means the whole catalog: a repository that holds less refuses it,
            // rather than quietly backing up less than was asked for.
            let wanted = requested.clone().unwrap_or_else(|| Scope {
                catalog: request.catalog.name.clone(),
                database: None,
                table: None,
            });
            repo.check_scope(&wanted)?;
            Some(repo)
        }
        Err(RepoError::NotARepository { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let catalog = catalog::open(&request.catalog, OpenMode::Existing).await?;
    let (repo, created) = if let Some(repo) = existing {
        (repo, false)
    } else {
        let scope = requested.unwrap_or_else(|| Scope {
            catalog: request.catalog.name.clone(),
            database: None,
            table: None,
        });
        // A missing table or database stops the run before the repository exists. Once it
        // exists, objects that go away are recorded as DELETED instead.
        ensure_scope_exists(&catalog, &scope).await?;
        if request.options.dry_run {
            // A dry run creates nothing: it works against the repository-to-be.
            (
                Repository::planned(request.store.clone(), &scope, started_at),
                true,
            )
        } else {
            Repository::open_or_init(request.store.clone(), Some(&scope), started_at).await?
        }
    };
    if request.options.dry_run {
        // Readers never take the lock, and a dry run only reads.
        let (pit, failed, skipped, damaged_pits) =
            backup_locked(&repo, &catalog, &request, ctx, observer, started_at).await?;
        return Ok(BackupReport {
            repository: repo.url().to_owned(),
            created_repository: created,
            dry_run: true,
            pit,
            failed,
            skipped,
            damaged_pits,
        });
    }
    let guard = lock::acquire(&repo, ctx, "backup", request.options.lock_ttl_seconds).await?;
    let result = backup_locked(&repo, &catalog, &request, ctx, observer, started_at).await;
    let held = match &result {
        Ok(_) => guard.still_held().await.map_err(EngineError::from),
        Err(_) => Ok(true),
    };
    let result = match (result, held) {
        (Ok(_), Ok(false)) => Err(EngineError::LockLost(repo.url().to_owned())),
        (Ok((pit, failed, skipped, damaged_pits)), Ok(true)) => repo
            .commit_pit(&pit)
            .await
            .map(|()| (pit, failed, skipped, damaged_pits))
            .map_err(EngineError::from),
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
    };
    // The lock goes whatever happened; a failure to remove it is reported after the outcome.
    let released = guard.release().await;
    let (pit, failed, skipped, damaged_pits) = result?;
    released?;
    Ok(BackupReport {
        repository: repo.url().to_owned(),
        created_repository: created,
        dry_run: false,
        pit,
        failed,
        skipped,
        damaged_pits,
    })
}

fn requested_scope(request: &BackupRequest) -> Result<Option<Scope>, EngineError> {
    match (&request.database, &request.table) {
        (None, Some(_)) => Err(EngineError::Invalid("--table needs --database".into())),
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
        .map_err(|e| EngineError::Invalid(format!("invalid database name: {e}")))?;
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

/// Everything except the commit, under the lock.
/// What a backup under the lock produced: the PIT to commit, failed and skipped tables, and
/// damaged newer PITs passed over.
type Locked = (PitRecord, Vec<TableFailure>, Vec<SkippedTable>, Vec<String>);

async fn backup_locked(
    repo: &Repository,
    catalog: &OpenCatalog,
    request: &BackupRequest,
    ctx: &Context,
    observer: &dyn Observer,
    started_at: DateTime<Utc>,
) -> Result<Locked, EngineError> {
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
    };
    let objects = idents
        .into_iter()
        .map(|i| (i, ObjectKind::Table))
        .chain(views.into_iter().map(|v| (v, ObjectKind::View)));
    let mut outcomes: Vec<(TableIdent, ObjectKind, Result<Option<TableRecord>, String>)> =
        stream::iter(objects)
            .map(|(ident, kind)| {
                let job = &job;
                async move {
                    let result = match kind {
                        ObjectKind::Table => job.backup_table(&ident).await,
                        ObjectKind::View => job.backup_view(&ident).await,
                    };
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
        .map(|(ident, _, reason)| TableFailure {
            table: crate::names::escape_control(&ident.to_string()).into_owned(),
            reason: crate::names::escape_control(reason).into_owned(),
        })
        .collect();
    if !failures.is_empty() && !request.options.allow_partial {
        return Err(EngineError::TablesFailed {
            failures,
            committed: false,
        });
    }
    for (ident, kind, reason) in &failed {
        tables.push(failed_record(ident, *kind, reason, &job));
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
    Ok((
        PitRecord {
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
        failures,
        skipped,
        damaged_pits,
    ))
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
                .map_err(|e| EngineError::Invalid(format!("invalid database name: {e}")))?;
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
