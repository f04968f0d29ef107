//! Executing a restore plan: writing, rewriting and checking every file, then registering.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use iceberg::NamespaceIdent;
use iceberg::io::FileIO;
use iceberg::spec::TableMetadata;

use crate::catalog::{self, OpenCatalog, OpenMode};
use crate::context::Context;
use crate::engine::files::{Content, SnapshotSelection, TableFile, Walked, walk};
use crate::engine::rewrite::{self, PathRewriter};
use crate::engine::transfer::{self, maybe_gunzip, sha256_hex};
use crate::engine::{EngineError, Event, Observer, TableError, error_chain};
use crate::repo::records::{Category, FileKind, ObjectKind};
use crate::repo::{Repository, layout};

use super::{
    PROVENANCE_PREFIX, RestoreItem, RestorePlan, RestoreReport, RestoredTable, Target, ident,
};

mod files;

use files::{FileWriter, Written};

/// Runs a prepared restore with the repository and target catalog it carries; only a target
/// `SQLite` catalog that does not exist yet is opened here, to be created.
pub async fn execute(
    plan: RestorePlan,
    ctx: &Context,
    observer: &dyn Observer,
) -> Result<RestoreReport, EngineError> {
    let target = match &plan.target {
        Target::Open(catalog) => catalog.clone(),
        Target::Missing(spec) => catalog::open(spec, OpenMode::CreateIfMissing).await?,
    };
    let repo = plan.repo.clone();
    for (name, properties) in &plan.create_databases {
        let ns = NamespaceIdent::from_strs(name.split('.'))
            .map_err(|e| EngineError::invalid(e.to_string()))?;
        if !target
            .catalog
            .namespace_exists(&ns)
            .await
            .map_err(target.err("checking a database"))?
        {
            target
                .catalog
                .create_namespace(&ns, properties.clone().into_iter().collect())
                .await
                .map_err(target.err(format!("creating database `{ns}`")))?;
        }
    }
    let restored_at = ctx.now();
    let job = Job {
        repo: &repo,
        target: &target,
        plan: &plan,
        observer,
        restored_at,
    };
    let mut tables: Vec<RestoredTable> = stream::iter(plan.tables.clone())
        .map(|item| {
            let job = &job;
            async move {
                let name = item.source.to_string();
                observer.event(&Event::TableStarted { table: &name });
                let result = job.restore_table(&item).await;
                let outcome = if result.is_ok() { "restored" } else { "failed" };
                observer.event(&Event::TableFinished {
                    table: &name,
                    outcome,
                });
                match result {
                    Ok(location) => RestoredTable {
                        item,
                        outcome,
                        metadata_location: Some(location),
                        error: None,
                        error_kind: None,
                    },
                    Err(e) => RestoredTable {
                        item,
                        outcome,
                        metadata_location: None,
                        error_kind: Some(e.kind()),
                        error: Some(e.to_string()),
                    },
                }
            }
        })
        .buffer_unordered(plan.concurrency.max(1))
        .collect()
        .await;
    tables.sort_by(|a, b| a.item.source.cmp(&b.item.source));
    Ok(RestoreReport {
        repository: plan.repository,
        pit: plan.pit,
        target_catalog: plan.target_catalog,
        tables,
    })
}

/// Files restored as they are stored; the other kinds are rewritten.
const VERBATIM: [FileKind; 4] = [
    FileKind::Data,
    FileKind::EqualityDeletes,
    FileKind::Statistics,
    FileKind::PartitionStatistics,
];

pub(super) struct Job<'a> {
    pub(super) repo: &'a Repository,
    pub(super) target: &'a OpenCatalog,
    pub(super) plan: &'a RestorePlan,
    pub(super) observer: &'a dyn Observer,
    pub(super) restored_at: chrono::DateTime<chrono::Utc>,
}

impl Job<'_> {
    async fn restore_table(&self, item: &RestoreItem) -> Result<String, TableError> {
        if item.kind == ObjectKind::View {
            return self.restore_view(item).await;
        }
        if item.category == Category::Ephemeral {
            return self.create_empty(item).await;
        }
        let (filelist, metadata_raw) = self.load_stored(item).await?;
        let rw = if item.in_place {
            PathRewriter::in_place(&filelist.location)
        } else {
            PathRewriter::with_roots(&filelist.location, &item.location, &item.external_roots)
        };
        let written = Written::default();
        let result = match self
            .write_table(item, &filelist, &metadata_raw, &rw, &written)
            .await
        {
            Ok(location) => self.install(item, Install::Register(location)).await,
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.remove_written(item, &filelist, &rw, &written).await;
        }
        result
    }

    /// Removes what a failed restore of `item` wrote: the metadata files it rewrote, and
    /// the verbatim copies it made, found again by their place in the file list.
    async fn remove_written(
        &self,
        item: &RestoreItem,
        filelist: &crate::repo::records::FileList,
        rw: &PathRewriter,
        written: &Written,
    ) {
        let file_io = &self.target.file_io;
        let mut copied = written.take_copied();
        copied.sort_unstable();
        let mut index = 0u64;
        let mut parts = std::pin::pin!(self.repo.filelist_parts(
            &item.key,
            &item.stored_in,
            filelist
        ));
        while !copied.is_empty() {
            let part = match parts.try_next().await {
                Ok(Some(part)) => part,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(table = %item.target, error = %error_chain(&e), files = copied.len(), "could not read the file list again to remove the files of a failed restore");
                    break;
                }
            };
            for entry in part.iter() {
                if copied.binary_search(&index).is_ok()
                    && let Ok(path) = rw.rewrite(&entry.path)
                {
                    written.push(path);
                }
                index += 1;
            }
            copied.retain(|&i| i >= index);
            // A part's files at a time: the paths are not gathered for the whole table.
            written.remove_all(file_io).await;
        }
        written.remove_all(file_io).await;
    }

    /// An ephemeral table: created empty, with the schema, partition spec, sort order and
    /// properties it had, at its new location.
    async fn create_empty(&self, item: &RestoreItem) -> Result<String, TableError> {
        let raw = self
            .repo
            .load_table_metadata(&item.key, &item.stored_in)
            .await
            .map_err(|e| TableError::repo(&e))?;
        let metadata = stored_metadata(&raw)?;
        let mut properties: HashMap<String, String> = metadata.properties().clone();
        properties.extend(self.provenance(item));
        let creation = iceberg::TableCreation::builder()
            .name(item.target.name.clone())
            .location(item.location.clone())
            .schema((**metadata.current_schema()).clone())
            .partition_spec(
                metadata
                    .default_partition_spec()
                    .as_ref()
                    .clone()
                    .into_unbound(),
            )
            .sort_order((**metadata.default_sort_order()).clone())
            .properties(properties)
            .format_version(metadata.format_version())
            .build();
        self.install(item, Install::CreateEmpty(Box::new(creation)))
            .await
    }

    /// The stored file list of `item` (without the entries of its parts) and its metadata,
    /// checked against the checksum the file list records.
    pub(super) async fn load_stored(
        &self,
        item: &RestoreItem,
    ) -> Result<(crate::repo::records::FileList, Bytes), TableError> {
        let filelist = self
            .repo
            .load_filelist_header(&item.key, &item.stored_in)
            .await
            .map_err(|e| TableError::repo(&e))?;
        let metadata_raw = self
            .repo
            .load_table_metadata(&item.key, &item.stored_in)
            .await
            .map_err(|e| TableError::repo(&e))?;
        if sha256_hex(&metadata_raw) != filelist.metadata_sha256 {
            return Err(TableError::Damaged(format!(
                "stored metadata {} does not match its checksum",
                layout::table_metadata(&item.key, &item.stored_in)
            )));
        }
        Ok((filelist, metadata_raw))
    }

    /// Steps 1–4: everything but the registration, every file written durable. Returns the
    /// new metadata location.
    async fn write_table(
        &self,
        item: &RestoreItem,
        filelist: &crate::repo::records::FileList,
        metadata_raw: &[u8],
        rw: &PathRewriter,
        written: &Written,
    ) -> Result<String, TableError> {
        let file_io = &self.target.file_io;
        let store = self.repo.store().as_ref();
        let writer = FileWriter {
            item,
            rw,
            file_io,
            store,
            written,
            observer: self.observer,
        };

        // Verbatim files first, a part of the file list at a time (a list is not held whole);
        // then each level of metadata once the sizes it records are known.
        let started = std::time::Instant::now();
        let phase = |what: &str| {
            tracing::debug!(table = %item.target, elapsed_ms = started.elapsed().as_millis(), "{what}");
        };
        let mut rewritten = Vec::new();
        let mut parts = std::pin::pin!(self.repo.filelist_parts(
            &item.key,
            &item.stored_in,
            filelist
        ));
        let mut first = 0u64;
        while let Some(part) = parts.try_next().await.map_err(|e| TableError::repo(&e))? {
            writer
                .copy_verbatim(
                    part.iter()
                        .zip(first..)
                        .filter(|(f, _)| VERBATIM.contains(&f.kind)),
                )
                .await?;
            first += part.len() as u64;
            rewritten.extend(part.iter().filter(|f| !VERBATIM.contains(&f.kind)).cloned());
        }
        phase("data files copied");
        let by_kind =
            |kinds: &'static [FileKind]| rewritten.iter().filter(move |f| kinds.contains(&f.kind));
        let delete_sizes = writer
            .rewrite_all(by_kind(&[FileKind::PositionDeletes]), HashMap::new())
            .await?;
        let manifest_sizes = writer
            .rewrite_all(by_kind(&[FileKind::Manifest]), delete_sizes)
            .await?;
        phase("delete files and manifests written");
        writer
            .rewrite_all(by_kind(&[FileKind::ManifestList]), manifest_sizes)
            .await?;
        phase("manifest lists written");

        let json = maybe_gunzip(metadata_raw)
            .map_err(|e| TableError::Damaged(format!("decompressing stored metadata: {e}")))?;
        let json = if filelist.current_snapshot_only {
            std::borrow::Cow::Owned(
                keep_only_current_snapshot(&json)
                    .map_err(|e| TableError::Damaged(format!("trimming stored metadata: {e}")))?,
            )
        } else {
            json
        };
        let new_uuid = (!item.keeps_uuid).then(uuid::Uuid::new_v4);
        let (json, warnings) =
            rewrite::rewrite_table_metadata(&json, rw, &self.provenance(item), new_uuid)
                .map_err(|e| TableError::Damaged(error_chain(&e)))?;
        for warning in warnings {
            tracing::warn!(table = %item.target, %warning, "restored metadata");
        }
        let metadata_location = format!(
            "{}/metadata/{:05}-{}.metadata.json",
            item.location,
            next_metadata_version(&filelist.metadata_location),
            uuid::Uuid::new_v4()
        );
        let size = json.len() as u64;
        transfer::bytes_to_file(file_io, &metadata_location, Bytes::from(json))
            .await
            .map_err(|e| TableError::transfer(&e))?;
        written.push(metadata_location.clone());
        written.complete(&metadata_location, size);
        drop(rewritten);

        // Step 4: read everything back before the table becomes visible, while every file
        // written is made durable (neither changes a file; both must be done first).
        let read_back = async {
            let metadata = crate::engine::files::read_table_metadata(file_io, &metadata_location)
                .await
                .map_err(|e| {
                    TableError::Damaged(format!(
                        "the restored metadata {metadata_location} does not read back: {}",
                        error_chain(&e)
                    ))
                })?;
            check_reachable(&metadata, file_io, &metadata_location).await?;
            phase("read back");
            Ok::<_, TableError>(())
        };
        let durable = async {
            written.sync().await?;
            phase("durable");
            Ok(())
        };
        // Both to the end, even when one fails: nothing is removed while it is being synced.
        let (read_back, durable) = tokio::join!(read_back, durable);
        read_back?;
        durable?;
        Ok(metadata_location)
    }

    pub(super) fn provenance(&self, item: &RestoreItem) -> BTreeMap<String, String> {
        let mut p = BTreeMap::new();
        p.insert(
            format!("{PROVENANCE_PREFIX}repository"),
            self.plan.repository.clone(),
        );
        p.insert(format!("{PROVENANCE_PREFIX}pit"), self.plan.pit.clone());
        p.insert(
            format!("{PROVENANCE_PREFIX}source-table"),
            format!("{}.{}", self.plan.source_catalog, item.source),
        );
        if let Some(uuid) = &item.uuid {
            p.insert(format!("{PROVENANCE_PREFIX}source-uuid"), uuid.clone());
        }
        p.insert(
            format!("{PROVENANCE_PREFIX}restored-at"),
            self.restored_at.to_rfc3339(),
        );
        p
    }

    /// Step 5, for data and structure-only tables alike: puts the table in the catalog. A
    /// table it replaces is dropped first (catalogs cannot swap a table's metadata) and
    /// registered back when the new one cannot be put in place, so a failed replace loses
    /// nothing. The swap runs to its end even when the restore is stopped meanwhile (a
    /// signal, a cancelled job: see [`crate::engine::finish`]), so that a stop never leaves
    /// the old table dropped and the new one not registered. Returns the table's metadata
    /// location.
    async fn install(&self, item: &RestoreItem, install: Install) -> Result<String, TableError> {
        let ident = ident(&item.target).map_err(|e| TableError::Unsupported(e.to_string()))?;
        let done = format!(
            "table {} was {} in catalog `{}`",
            item.target,
            match (&install, item.action == "replace") {
                (Install::CreateEmpty(_), _) => "created empty",
                (Install::Register(_), true) => "restored (replacing any table of that name)",
                (Install::Register(_), false) => "registered",
            },
            self.target.name
        );
        let swap = swap(
            self.target.clone(),
            ident,
            item.action == "replace",
            install,
        );
        crate::engine::finish::to_the_end(done, swap).await
    }
}

/// The catalog side of a table's install (step 5), in a task of its own; one at a time for
/// a table (a cancelled job's swap ends before another job's swap of that table begins).
async fn swap(
    target: OpenCatalog,
    ident: iceberg::TableIdent,
    replace: bool,
    install: Install,
) -> Result<String, TableError> {
    let _one = crate::engine::finish::one_at_a_time(format!("{}/{ident}", target.name)).await;
    let catalog = &target.catalog;
    let chain = |e: &(dyn std::error::Error + 'static)| error_chain(e);
    let previous = if replace
        && catalog
            .table_exists(&ident)
            .await
            .map_err(|e| TableError::catalog(&e))?
    {
        let old = catalog
            .load_table(&ident)
            .await
            .map_err(|e| TableError::catalog(&e))?;
        let old_location = old.metadata_location().map(str::to_owned);
        catalog
            .drop_table(&ident)
            .await
            .map_err(|e| TableError::catalog(&e).context("dropping the table to replace"))?;
        old_location
    } else {
        None
    };
    let installed = match install {
        Install::Register(location) => target
            .register(&ident, &location)
            .await
            .map(|()| location)
            .map_err(|e| chain(&e)),
        Install::CreateEmpty(creation) => catalog
            .create_table(ident.namespace(), *creation)
            .await
            .map(|table| table.metadata_location().unwrap_or_default().to_owned())
            .map_err(|e| format!("creating empty table {ident}: {}", chain(&e))),
    };
    let Err(mut message) = installed else {
        return installed.map_err(TableError::Catalog);
    };
    if let Some(old) = previous {
        let put_back = target.register(&ident, &old).await;
        said_put_back(&mut message, "table", &old, put_back);
    }
    Err(TableError::Catalog(message))
}

/// Adds to `message` (why a replacement could not be put in place) what became of the
/// replaced table or view (`what`), whose metadata `old` was registered back.
pub(super) fn said_put_back(
    message: &mut String,
    what: &str,
    old: &str,
    put_back: Result<(), crate::catalog::CatalogError>,
) {
    match put_back {
        Ok(()) => {
            let _ = write!(message, "; the replaced {what} was put back");
        }
        Err(e) => {
            let _ = write!(
                message,
                "; putting the replaced {what} back failed too ({}); its metadata is {old}",
                error_chain(&e)
            );
        }
    }
}

/// Reads stored table metadata (gzipped or not).
fn stored_metadata(raw: &[u8]) -> Result<TableMetadata, TableError> {
    let json = maybe_gunzip(raw)
        .map_err(|e| TableError::Damaged(format!("decompressing stored metadata: {e}")))?;
    serde_json::from_slice(&json)
        .map_err(|e| TableError::Damaged(format!("reading stored metadata: {e}")))
}

/// How a restored table is put in the catalog.
enum Install {
    /// Register the written metadata file.
    Register(String),
    /// Create the table empty (structure-only tables).
    CreateEmpty(Box<iceberg::TableCreation>),
}

/// Walks the restored metadata as a reader would (every snapshot's manifest list, manifests,
/// data and delete files, statistics files) and checks that each file it reaches exists at the
/// target with the size the metadata records. A damaged or tampered file list could otherwise
/// lead to a registered table whose files are missing.
async fn check_reachable(
    metadata: &TableMetadata,
    file_io: &FileIO,
    metadata_location: &str,
) -> Result<(), TableError> {
    let unreadable = |e: iceberg::Error| {
        TableError::Damaged(format!(
            "the restored table {metadata_location} does not read back: {}",
            error_chain(&e)
        ))
    };
    // A manifest's files are checked as it is read: nothing of the table is held whole.
    walk(
        metadata,
        file_io,
        SnapshotSelection::All,
        &Walked::default(),
        Content::Drop,
        |files| check_present(files, file_io),
    )
    .await
    .map_err(|e| match e {
        Reached::Walk(e) => unreadable(e),
        Reached::Table(e) => e,
    })
}

/// What stops [`check_reachable`]: metadata that does not read, or a file it reaches that is
/// not as the metadata records.
enum Reached {
    Walk(iceberg::Error),
    Table(TableError),
}

impl From<iceberg::Error> for Reached {
    fn from(e: iceberg::Error) -> Self {
        Self::Walk(e)
    }
}

/// Checks that each of `files` is at the target with the size the metadata records. Local
/// files are looked at a few hundred per task of the blocking pool (a hand-off per file cost
/// more than the `stat` itself: 1.5 s of a restore of 100,000 small files); others by their
/// storage, 16 at a time.
async fn check_present(files: Vec<TableFile>, file_io: &FileIO) -> Result<(), Reached> {
    /// Local files one blocking task looks at.
    const LOCAL_BATCH: usize = 256;
    let mut local = Vec::new();
    let mut remote = Vec::new();
    // Manifest lists were read while walking.
    for file in files
        .into_iter()
        .filter(|f| f.kind != FileKind::ManifestList)
    {
        match transfer::local_path(&file.path) {
            Some(path) => local.push((path, file)),
            None => remote.push(file),
        }
    }
    let mut batches = Vec::new();
    let mut local = local.into_iter().peekable();
    while local.peek().is_some() {
        batches.push(local.by_ref().take(LOCAL_BATCH).collect::<Vec<_>>());
    }
    let local = stream::iter(batches.into_iter().map(Ok::<_, TableError>)).try_for_each_concurrent(
        4,
        |batch| async move {
            tokio::task::spawn_blocking(move || {
                batch.iter().try_for_each(|(path, file)| {
                    let found = transfer::local_file_size(path).map_err(|e| TableError::io(&e))?;
                    present(file, found)
                })
            })
            .await
            .map_err(|e| TableError::io(&e))?
        },
    );
    let remote = stream::iter(remote.into_iter().map(Ok::<_, TableError>)).try_for_each_concurrent(
        16,
        |file| async move {
            let found = transfer::file_size(file_io, &file.path)
                .await
                .map_err(|e| TableError::transfer(&e))?;
            present(&file, found)
        },
    );
    futures::try_join!(local, remote).map_err(Reached::Table)?;
    Ok(())
}

/// Whether `file`, which has `found` bytes at the target (`None`: it is not there), is as the
/// restored metadata records it.
fn present(file: &TableFile, found: Option<u64>) -> Result<(), TableError> {
    match (found, file.expected_size) {
        (None, _) => Err(TableError::Damaged(format!(
            "the restored metadata references {} ({:?}), which is not at the target; the repository's file list does not match its metadata (damaged repository?)",
            file.path, file.kind
        ))),
        (Some(found), Some(expected)) if found != expected => Err(TableError::Damaged(format!(
            "{} has {found} bytes at the target, but the restored metadata records {expected}",
            file.path
        ))),
        _ => Ok(()),
    }
}

/// The version number for the restored metadata file: one past the source's, so that tools
/// that number metadata files keep counting up.
pub(super) fn next_metadata_version(source_location: &str) -> u64 {
    source_location
        .rsplit('/')
        .next()
        .and_then(|name| name.split('-').next())
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |v| v + 1)
}

/// Keeps only the current snapshot in table metadata (for PITs taken with
/// `snapshots: current`, whose older snapshots' files were not stored): the snapshot list,
/// the refs, the snapshot log and statistics of other snapshots go.
fn keep_only_current_snapshot(json: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    use serde_json::Value;
    let mut doc: Value = serde_json::from_slice(json)?;
    let current = doc
        .get("current-snapshot-id")
        .and_then(Value::as_i64)
        .filter(|id| *id >= 0);
    let is_current = |v: &Value, field: &str| v.get(field).and_then(Value::as_i64) == current;
    if let Some(obj) = doc.as_object_mut() {
        if let Some(Value::Array(items)) = obj.get_mut("snapshots") {
            items.retain(|s| is_current(s, "snapshot-id"));
        }
        if let Some(Value::Object(refs)) = obj.get_mut("refs") {
            refs.retain(|_, r| is_current(r, "snapshot-id"));
        }
        if let Some(Value::Array(log)) = obj.get_mut("snapshot-log") {
            log.retain(|l| is_current(l, "snapshot-id"));
        }
        for key in ["statistics", "partition-statistics"] {
            if let Some(Value::Array(stats)) = obj.get_mut(key) {
                stats.retain(|st| is_current(st, "snapshot-id"));
            }
        }
    }
    serde_json::to_vec(&doc)
}

#[cfg(test)]
mod tests;
