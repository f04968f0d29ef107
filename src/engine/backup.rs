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

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use iceberg::spec::TableMetadata;
use iceberg::{NamespaceIdent, TableIdent};
use serde::Serialize;

use super::files::{SnapshotSelection, TableFile, table_files};
use super::transfer::{self, TransferError, file_to_store, hash_stored, sha256_hex};
use super::{EngineError, Event, Observer, TableFailure, error_chain};
use crate::catalog::{self, OpenCatalog, OpenMode};
use crate::context::Context;
use crate::plan::{CatalogSpec, Categorizer};
use crate::repo::layout;
use crate::repo::lock::{self, DEFAULT_TTL_SECONDS};
use crate::repo::records::{
    Category, DatabaseRecord, FORMAT_VERSION, FileEntry, FileList, Namespace, PitRecord,
    PitSummary, Scope, Status, StrategyRecord, TableName, TableRecord, TableState, encode,
};
use crate::repo::{RepoError, Repository};
use crate::store::BackupStore;

/// How many times a table is read again from fresh metadata when its files change under it.
const TABLE_ATTEMPTS: usize = 3;

/// Knobs of one backup run.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Which snapshots' files to keep.
    pub snapshots: SnapshotSelection,
    /// Copy and checksum every file again instead of reusing stored ones.
    pub full: bool,
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
            full: false,
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
            // No scope given means the repository's own, of this catalog.
            let wanted = requested.clone().unwrap_or_else(|| Scope {
                catalog: request.catalog.name.clone(),
                ..repo.scope().clone()
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
        let (pit, failed, skipped) =
            backup_locked(&repo, &catalog, &request, ctx, observer, started_at).await?;
        return Ok(BackupReport {
            repository: repo.url().to_owned(),
            created_repository: created,
            dry_run: true,
            pit,
            failed,
            skipped,
        });
    }
    let guard = lock::acquire(&repo, ctx, "backup", request.options.lock_ttl_seconds).await?;
    let result = backup_locked(&repo, &catalog, &request, ctx, observer, started_at).await;
    let result = match result {
        Ok(_) if guard.is_lost() => Err(EngineError::LockLost(repo.url().to_owned())),
        Ok((pit, failed, skipped)) => repo
            .commit_pit(&pit)
            .await
            .map(|()| (pit, failed, skipped))
            .map_err(EngineError::from),
        Err(e) => Err(e),
    };
    // The lock goes whatever happened; a failure to remove it is reported after the outcome.
    let released = guard.release().await;
    let (pit, failed, skipped) = result?;
    released?;
    Ok(BackupReport {
        repository: repo.url().to_owned(),
        created_repository: created,
        dry_run: false,
        pit,
        failed,
        skipped,
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
async fn backup_locked(
    repo: &Repository,
    catalog: &OpenCatalog,
    request: &BackupRequest,
    ctx: &Context,
    observer: &dyn Observer,
    started_at: DateTime<Utc>,
) -> Result<(PitRecord, Vec<TableFailure>, Vec<SkippedTable>), EngineError> {
    let scope = repo.scope().clone();
    let parent = repo.latest_pit().await?;
    let pit_id = ctx.new_pit_id(started_at, parent.as_ref().map(|p| p.id.as_str()));
    let (namespaces, idents) = objects_in_scope(catalog, &scope).await?;

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
    };
    let mut outcomes: Vec<(TableIdent, Result<Option<TableRecord>, String>)> = stream::iter(idents)
        .map(|ident| {
            let job = &job;
            async move {
                let result = job.backup_table(&ident).await;
                (ident, result)
            }
        })
        .buffer_unordered(request.options.table_concurrency.max(1))
        .collect()
        .await;
    outcomes.sort_by_key(|a| a.0.to_string());

    let mut tables = Vec::new();
    let mut failures = Vec::new();
    for (ident, outcome) in outcomes {
        match outcome {
            Ok(Some(record)) => tables.push(record),
            Ok(None) => {}
            Err(reason) => failures.push(TableFailure {
                table: ident.to_string(),
                reason,
            }),
        }
    }
    if !failures.is_empty() && !request.options.allow_partial {
        return Err(EngineError::TablesFailed {
            failures,
            committed: false,
        });
    }
    for failure in &failures {
        tables.push(failed_record(failure, &job));
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
            seq: parent.as_ref().map_or(1, |p| p.seq + 1),
            parent: parent.map(|p| p.id),
            repository_id: repo.manifest().repository_id.clone(),
            started_at,
            finished_at,
            created_by: crate::VERSION_STRING.to_owned(),
            strategy: StrategyRecord {
                mode: if request.options.full {
                    "full"
                } else {
                    "incremental"
                }
                .into(),
                snapshots: match request.options.snapshots {
                    SnapshotSelection::All => "all",
                    SnapshotSelection::Current => "current",
                }
                .into(),
            },
            databases,
            tables,
        },
        failures,
        skipped,
    ))
}

/// The PIT entry of a table that failed under `allow_partial`: its last good state stays
/// referenced (so gc keeps its files), marked FAILED with the reason.
fn failed_record(failure: &TableFailure, job: &TableJob<'_>) -> TableRecord {
    let previous = job
        .parent_by_key
        .values()
        .find(|t| t.name.to_string() == failure.table);
    let (database, name) = failure
        .table
        .rsplit_once('.')
        .unwrap_or(("", &failure.table));
    let name = TableName {
        database: database.split('.').map(str::to_owned).collect(),
        name: name.to_owned(),
    };
    let mut record = previous.map_or_else(
        || TableRecord {
            key: layout::table_key(None, &name.database, &name.name),
            name: name.clone(),
            uuid: None,
            category: job.request.categorizer.category(&failure.table),
            status: Status::Failed,
            previous_name: None,
            deleted_at: None,
            last_pit: None,
            error: None,
            stored_in: None,
            state: None,
        },
        |p| (*p).clone(),
    );
    record.status = Status::Failed;
    record.error = Some(failure.reason.clone());
    record.last_pit = previous.and_then(|p| p.stored_in.clone());
    if let Some(state) = record.state.as_mut() {
        state.files_added = 0;
        state.bytes_added = 0;
    }
    record
}

/// Namespaces and tables in scope, sorted.
async fn objects_in_scope(
    catalog: &OpenCatalog,
    scope: &Scope,
) -> Result<(Vec<NamespaceIdent>, Vec<TableIdent>), EngineError> {
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
    for ns in &namespaces {
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
    Ok((namespaces, tables))
}

struct TableJob<'a> {
    repo: &'a Repository,
    catalog: &'a OpenCatalog,
    request: &'a BackupRequest,
    observer: &'a dyn Observer,
    pit_id: &'a str,
    parent_by_key: HashMap<&'a str, &'a TableRecord>,
    /// Tables seen in the catalog but not taken by this backup's categories.
    skipped: std::sync::Mutex<Vec<TableName>>,
}

/// Why one attempt at a table failed.
enum AttemptError {
    /// Files changed under us; worth another attempt from fresh metadata.
    Moved(String),
    /// Anything else.
    Fatal(String),
}

impl TableJob<'_> {
    /// Backs up one table; `None` for tables in the `ignore` category.
    async fn backup_table(&self, ident: &TableIdent) -> Result<Option<TableRecord>, String> {
        let name = TableName {
            database: ident.namespace().to_vec(),
            name: ident.name().to_owned(),
        };
        let qualified = name.to_string();
        let category = self.request.categorizer.category(&qualified);
        if category == Category::Ignore || !self.request.options.categories.contains(&category) {
            self.skipped
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(name);
            return Ok(None);
        }
        self.observer
            .event(&Event::TableStarted { table: &qualified });
        let mut last = String::new();
        for attempt in 1..=TABLE_ATTEMPTS {
            match self.attempt(ident, &name, category).await {
                Ok(record) => {
                    self.observer.event(&Event::TableFinished {
                        table: &qualified,
                        outcome: &record.status.to_string(),
                    });
                    return Ok(Some(record));
                }
                Err(AttemptError::Fatal(reason)) => return Err(reason),
                Err(AttemptError::Moved(reason)) => {
                    tracing::warn!(table = %qualified, attempt, %reason, "table changed while it was copied; reading it again");
                    last = reason;
                }
            }
        }
        Err(format!(
            "the table kept changing while it was copied ({TABLE_ATTEMPTS} attempts): {last}"
        ))
    }

    /// One attempt at a table. A file that cannot be read counts as "moved" (worth another
    /// attempt) only when the table's metadata pointer moved meanwhile; otherwise the table is
    /// damaged and the attempt fails for good, saying so.
    async fn attempt(
        &self,
        ident: &TableIdent,
        name: &TableName,
        category: Category,
    ) -> Result<TableRecord, AttemptError> {
        let table = self
            .catalog
            .catalog
            .load_table(ident)
            .await
            .map_err(|e| AttemptError::Fatal(error_chain(&e)))?;
        let Some(metadata_location) = table.metadata_location().map(str::to_owned) else {
            return Err(AttemptError::Fatal(
                "the catalog returned no metadata location".into(),
            ));
        };
        match self
            .attempt_at(&table, &metadata_location, name, category)
            .await
        {
            Err(AttemptError::Moved(reason)) => {
                let now = self.catalog.catalog.load_table(ident).await.ok();
                let moved = now.as_ref().and_then(|t| t.metadata_location())
                    != Some(metadata_location.as_str());
                Err(if moved {
                    AttemptError::Moved(reason)
                } else {
                    AttemptError::Fatal(format!(
                        "{reason}; the table's metadata did not change meanwhile, so this is not a concurrent expiry: the table is damaged, or its files were removed outside Iceberg"
                    ))
                })
            }
            other => other,
        }
    }

    async fn attempt_at(
        &self,
        table: &iceberg::table::Table,
        metadata_location: &str,
        name: &TableName,
        category: Category,
    ) -> Result<TableRecord, AttemptError> {
        let fatal = |e: &(dyn std::error::Error + 'static)| AttemptError::Fatal(error_chain(e));
        let metadata_location = metadata_location.to_owned();
        let file_io = table.file_io().clone();
        let raw = file_io
            .new_input(&metadata_location)
            .map_err(|e| fatal(&e))?
            .read()
            .await
            .map_err(|e| {
                AttemptError::Moved(format!("reading {metadata_location}: {}", error_chain(&e)))
            })?;
        let identity = RawIdentity::parse(&raw)
            .map_err(|e| AttemptError::Fatal(format!("reading {metadata_location}: {e}")))?;
        let metadata = table.metadata();
        let key = layout::table_key(identity.uuid.as_deref(), &name.database, &name.name);
        let previous = self.parent_by_key.get(key.as_str()).copied();

        let renamed_from = previous.filter(|p| p.name != *name).map(|p| p.name.clone());
        if let Some(prev) = previous.filter(|p| {
            !self.request.options.full
                && p.category == category
                && p.state
                    .as_ref()
                    .is_some_and(|s| s.metadata_location == metadata_location)
        }) {
            // Decided from the catalog entry alone: nothing else is read.
            let mut record = prev.clone();
            record.name = name.clone();
            record.status = if renamed_from.is_some() {
                Status::Renamed
            } else {
                Status::Unchanged
            };
            record.previous_name = renamed_from;
            if let Some(state) = record.state.as_mut() {
                state.files_added = 0;
                state.bytes_added = 0;
            }
            return Ok(record);
        }
        let status = if renamed_from.is_some() {
            Status::Renamed
        } else if category == Category::Ephemeral {
            Status::StructureOnly
        } else if previous.is_none() {
            Status::New
        } else {
            Status::Changed
        };

        let files = if category == Category::Ephemeral {
            Vec::new()
        } else {
            table_files(metadata, &file_io, self.request.options.snapshots)
                .await
                .map_err(|e| AttemptError::Moved(error_chain(&e)))?
        };
        let known = match previous.and_then(|p| p.stored_in.as_deref()) {
            Some(pit)
                if !self.request.options.full
                    && previous.is_some_and(|p| p.category != Category::Ephemeral) =>
            {
                self.repo
                    .load_filelist(&key, pit)
                    .await
                    .map_err(|e| fatal(&e))?
                    .files
                    .into_iter()
                    .map(|f| (f.rel.clone(), f))
                    .collect()
            }
            _ => HashMap::new(),
        };
        let (entries, added) = self
            .copy_files(&key, metadata.location(), &file_io, files, &known)
            .await?;

        let filelist = FileList {
            format_version: FORMAT_VERSION,
            table_key: key.clone(),
            pit: self.pit_id.to_owned(),
            location: metadata.location().to_owned(),
            metadata_location: metadata_location.clone(),
            metadata_sha256: sha256_hex(&raw),
            current_snapshot_only: self.request.options.snapshots == SnapshotSelection::Current,
            files: entries,
        };
        if !self.request.options.dry_run {
            let store = self.repo.store();
            let metadata_key = layout::table_metadata(&key, self.pit_id);
            store.put(&metadata_key, raw).await.map_err(|e| fatal(&e))?;
            let filelist_key = layout::filelist(&key, self.pit_id);
            store
                .put(&filelist_key, encode(&filelist))
                .await
                .map_err(|e| fatal(&e))?;
        }
        Ok(TableRecord {
            name: name.clone(),
            key,
            uuid: identity.uuid,
            category,
            status,
            previous_name: renamed_from,
            deleted_at: None,
            last_pit: None,
            error: None,
            stored_in: Some(self.pit_id.to_owned()),
            state: Some(table_state(
                metadata,
                identity.format_version,
                &metadata_location,
                &filelist,
                added,
            )),
        })
    }

    /// Copies the files the repository lacks; returns the file list entries and what was added.
    async fn copy_files(
        &self,
        key: &str,
        location: &str,
        file_io: &iceberg::io::FileIO,
        files: Vec<TableFile>,
        known: &HashMap<String, FileEntry>,
    ) -> Result<(Vec<FileEntry>, (u64, u64)), AttemptError> {
        let results: Vec<(FileEntry, bool)> = stream::iter(files)
            .map(|file| self.store_file(key, location, file_io, file, known))
            .buffer_unordered(self.request.options.file_concurrency.max(1))
            .try_collect()
            .await?;
        let (mut added_files, mut added_bytes) = (0, 0);
        let mut entries = Vec::with_capacity(results.len());
        for (entry, added) in results {
            if added {
                added_files += 1;
                added_bytes += entry.size;
            }
            entries.push(entry);
        }
        entries.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok((entries, (added_files, added_bytes)))
    }

    /// Makes sure one file is in the repository. Returns its entry and whether it was copied
    /// (for a dry run: whether it would be).
    async fn store_file(
        &self,
        key: &str,
        location: &str,
        file_io: &iceberg::io::FileIO,
        file: TableFile,
        known: &HashMap<String, FileEntry>,
    ) -> Result<(FileEntry, bool), AttemptError> {
        let fatal = |e: &(dyn std::error::Error + 'static)| AttemptError::Fatal(error_chain(e));
        let full = self.request.options.full;
        let rel = layout::relative_file_path(location, &file.path);
        let size_ok = |size: u64| file.expected_size.is_none_or(|e| e == size);
        if let Some(entry) = known.get(&rel).filter(|e| !full && size_ok(e.size)) {
            return Ok((
                FileEntry {
                    path: file.path,
                    ..entry.clone()
                },
                false,
            ));
        }
        let store = self.repo.store().as_ref();
        let object = layout::table_file(key, &rel);
        let stored = store.head(&object).await.map_err(|e| fatal(&e))?;
        if let Some(meta) = stored.filter(|m| !full && size_ok(m.size)) {
            // Left by an interrupted run: reuse it, checksummed from the repository.
            let sha256 = if self.request.options.dry_run {
                String::new()
            } else {
                hash_stored(store, &object, meta.size)
                    .await
                    .map_err(|e| fatal(&e))?
            };
            let entry = FileEntry {
                path: file.path,
                rel,
                kind: file.kind,
                size: meta.size,
                sha256,
            };
            return Ok((entry, false));
        }
        if self.request.options.dry_run {
            let size = match (file.expected_size, &file.content) {
                (Some(size), _) => size,
                (None, Some(content)) => content.len() as u64,
                (None, None) => transfer::file_size(file_io, &file.path)
                    .await
                    .map_err(|e| fatal(&e))?
                    .unwrap_or(0),
            };
            let entry = FileEntry {
                path: file.path,
                rel,
                kind: file.kind,
                size,
                sha256: String::new(),
            };
            return Ok((entry, true));
        }
        let (size, sha256) =
            match file_to_store(file_io, &file.path, file.content, store, &object).await {
                Ok(done) => done,
                Err(e) => return Err(self.classify(file_io, &file.path, &e).await),
            };
        if !size_ok(size) {
            let _ = store.delete(&object).await;
            let expected = file.expected_size.unwrap_or(0);
            let e = TransferError::SizeMismatch {
                path: file.path,
                expected,
                actual: size,
            };
            return Err(AttemptError::Fatal(e.to_string()));
        }
        self.observer.event(&Event::FileCopied {
            table: key,
            bytes: size,
        });
        Ok((
            FileEntry {
                path: file.path,
                rel,
                kind: file.kind,
                size,
                sha256,
            },
            true,
        ))
    }

    /// A copy failed: if the file is gone, the table moved on (retry); else it is fatal.
    async fn classify(
        &self,
        file_io: &iceberg::io::FileIO,
        path: &str,
        e: &TransferError,
    ) -> AttemptError {
        match file_io.exists(path).await {
            Ok(false) => AttemptError::Moved(format!("{path} vanished while it was copied")),
            _ => AttemptError::Fatal(error_chain(e)),
        }
    }
}

/// The identity fields read from the raw metadata JSON (iceberg's parser invents a UUID for
/// format-v1 tables without one, which would make every backup see a new table).
struct RawIdentity {
    uuid: Option<String>,
    format_version: u8,
}

impl RawIdentity {
    fn parse(raw: &[u8]) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        struct Fields {
            #[serde(rename = "table-uuid")]
            uuid: Option<String>,
            #[serde(rename = "format-version")]
            format_version: u8,
        }
        let json = super::transfer::maybe_gunzip(raw).map_err(|e| e.to_string())?;
        let fields: Fields = serde_json::from_slice(&json).map_err(|e| e.to_string())?;
        Ok(Self {
            uuid: fields.uuid,
            format_version: fields.format_version,
        })
    }
}

fn table_state(
    metadata: &TableMetadata,
    format_version: u8,
    metadata_location: &str,
    filelist: &FileList,
    (files_added, bytes_added): (u64, u64),
) -> TableState {
    let current = metadata.current_snapshot();
    TableState {
        format_version,
        metadata_location: metadata_location.to_owned(),
        location: metadata.location().to_owned(),
        current_snapshot_id: current.map(|s| s.snapshot_id()),
        schema_id: metadata.current_schema_id(),
        schema_ids: {
            let mut ids: Vec<i32> = metadata.schemas_iter().map(|s| s.schema_id()).collect();
            ids.sort_unstable();
            ids
        },
        spec_id: metadata.default_partition_spec_id(),
        snapshots: metadata.snapshots().len(),
        records: current
            .and_then(|s| s.summary().additional_properties.get("total-records"))
            .and_then(|v| v.parse().ok()),
        files: filelist.files.len() as u64,
        bytes: filelist.files.iter().map(|f| f.size).sum(),
        files_added,
        bytes_added,
    }
}

/// Tables of the parent PIT that are not live now become DELETED (or EXCLUDED when the plan
/// now ignores them); those already deleted are carried over so the PIT stays complete.
/// Tables of the parent PIT that are not live now become DELETED, or EXCLUDED when they are
/// still in the catalog but no longer taken by this backup's categories; those already gone
/// are carried over so that the PIT stays complete.
fn carry_over_missing(
    tables: &mut Vec<TableRecord>,
    parent: Option<&PitRecord>,
    skipped: &[TableName],
    now: DateTime<Utc>,
) {
    let Some(parent) = parent else { return };
    let present: std::collections::HashSet<String> = tables.iter().map(|t| t.key.clone()).collect();
    for prev in &parent.tables {
        if present.contains(&prev.key) {
            continue;
        }
        let mut record = prev.clone();
        record.previous_name = None;
        record.error = None;
        if let Some(state) = record.state.as_mut() {
            state.files_added = 0;
            state.bytes_added = 0;
        }
        if prev.status.is_live() {
            record.last_pit = Some(parent.id.clone());
            if skipped.contains(&prev.name) {
                record.status = Status::Excluded;
            } else {
                record.status = Status::Deleted;
                record.deleted_at = Some(now);
            }
        }
        tables.push(record);
    }
    tables.sort_by(|a, b| a.name.cmp(&b.name).then(a.key.cmp(&b.key)));
}

async fn database_records(
    catalog: &OpenCatalog,
    namespaces: &[NamespaceIdent],
    parent: Option<&PitRecord>,
    now: DateTime<Utc>,
) -> Result<Vec<DatabaseRecord>, EngineError> {
    let previous: HashMap<&Namespace, &DatabaseRecord> = parent
        .iter()
        .flat_map(|p| &p.databases)
        .map(|d| (&d.name, d))
        .collect();
    let mut out = Vec::new();
    for ns in namespaces {
        let properties: BTreeMap<String, String> = catalog
            .catalog
            .get_namespace(ns)
            .await
            .map_err(catalog.err(format!("reading database `{ns}`")))?
            .properties()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let name = ns.to_vec();
        let status = match previous.get(&name) {
            Some(p) if p.status.is_live() && p.properties == properties => Status::Unchanged,
            Some(p) if p.status.is_live() => Status::Changed,
            _ => Status::New,
        };
        out.push(DatabaseRecord {
            name,
            status,
            properties,
            deleted_at: None,
            last_pit: None,
        });
    }
    if let Some(parent) = parent {
        for prev in &parent.databases {
            if out.iter().any(|d| d.name == prev.name) {
                continue;
            }
            let mut record = prev.clone();
            if prev.status.is_live() {
                record.status = Status::Deleted;
                record.deleted_at = Some(now);
                record.last_pit = Some(parent.id.clone());
            }
            out.push(record);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn summarize(tables: &[TableRecord], databases: &[DatabaseRecord]) -> PitSummary {
    let mut summary = PitSummary::default();
    for t in tables {
        *summary.tables.entry(t.status).or_default() += 1;
        if let Some(state) = t.state.as_ref().filter(|_| t.status.is_live()) {
            summary.files_added += state.files_added;
            summary.bytes_added += state.bytes_added;
            summary.files_total += state.files;
            summary.bytes_total += state.bytes;
        }
    }
    for d in databases {
        *summary.databases.entry(d.status).or_default() += 1;
    }
    summary
}
