//! One table's backup: load it, compare it with the parent PIT and decide what to store
//! ([`ObjectPlan`]), then store it — or, for a dry run, only say what would be stored. The
//! deciding is the same for both; a table that moves on while its files are copied is
//! decided again from fresh metadata.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use iceberg::TableIdent;
use iceberg::io::FileIO;
use iceberg::spec::TableMetadata;

use crate::catalog::OpenCatalog;
use crate::engine::files::{Content, SnapshotSelection, Walked, walk};
use crate::engine::transfer::sha256_hex;
use crate::engine::{Event, Observer, TableError, error_chain};
use crate::plan::BackupMode;
use crate::repo::Repository;
use crate::repo::layout;
use crate::repo::records::{
    Category, FORMAT_VERSION, FileList, ObjectKind, Status, TableName, TableRecord, TableState,
};

use super::BackupRequest;
use super::copy::{WalkedFiles, spill_error};

/// How many times a table is read again from fresh metadata when its files change under it.
const TABLE_ATTEMPTS: usize = 3;

/// How a file got into the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stored {
    /// It was there already.
    Reused,
    /// Streamed through bcn.
    Copied,
    /// Copied by S3 itself.
    ServerSide,
}

/// What one table's backup added to the repository.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Added {
    pub(super) files: u64,
    pub(super) bytes: u64,
    pub(super) server_side: u64,
}

/// Whether a run stores what it decides, or only says what it would store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Run {
    /// Copy files, write metadata and file lists (under the repository's lock).
    Store,
    /// Decide everything, write nothing.
    Preview,
}

pub(super) struct TableJob<'a> {
    pub(super) repo: &'a Repository,
    pub(super) catalog: &'a OpenCatalog,
    pub(super) request: &'a BackupRequest,
    pub(super) observer: &'a dyn Observer,
    pub(super) pit_id: &'a str,
    pub(super) parent_by_key: HashMap<&'a str, &'a TableRecord>,
    /// Tables seen in the catalog but not taken by this backup's categories.
    pub(super) skipped: std::sync::Mutex<Vec<TableName>>,
    /// Objects `bcn verify` marked damaged: never reused, copied again.
    pub(super) damaged: HashSet<String>,
    pub(super) run: Run,
    /// Every table's metadata location, when the catalog lists them at once (SQL catalogs).
    pub(super) locations: Option<HashMap<TableIdent, String>>,
    /// The parent PIT's live tables by metadata location (locations held by one record only).
    pub(super) parent_by_location: HashMap<&'a str, &'a TableRecord>,
    /// Files of one table held in memory ([`crate::context::Context::files_in_memory`]).
    pub(super) files_in_memory: usize,
}

/// What the backup does with one table or view, decided from the catalog, the parent PIT and
/// what the repository holds, before anything is written.
pub(super) enum ObjectPlan {
    /// The same metadata as in the parent PIT: its record carries over, nothing more is read
    /// or written.
    Carry(Box<TableRecord>),
    /// Its metadata, its file list and the files the repository lacks are stored.
    Store(Box<StorePlan>),
}

/// A table or view whose metadata this PIT stores.
pub(super) struct StorePlan {
    /// The PIT's record of it; for a table, the counts of files and bytes are filled in once
    /// the files are stored.
    pub(super) record: TableRecord,
    /// The metadata file, stored as it is.
    pub(super) raw: Bytes,
    /// The file list, without its entries.
    pub(super) filelist: FileList,
    /// A table's files as its walk found them, and how they are read (none for views and
    /// structure-only tables).
    pub(super) files: Option<(WalkedFiles, FileIO)>,
}

impl TableJob<'_> {
    /// Whether the table state a new PIT would carry over (its stored files, or the file list
    /// and metadata of `stored_in`) holds an object marked damaged.
    pub(super) fn has_damage(&self, key: &str, stored_in: Option<&str>) -> bool {
        let files = format!("{}files/", layout::table_prefix(key));
        self.damaged.iter().any(|k| {
            k.starts_with(&files)
                || stored_in.is_some_and(|pit| {
                    *k == layout::filelist(key, pit) || *k == layout::table_metadata(key, pit)
                })
        })
    }

    /// The name and category of `ident` when this backup takes it; otherwise records it as
    /// skipped (`ignore`, or a category the entry does not take) and returns `None`.
    fn taken(&self, ident: &TableIdent) -> Option<(TableName, String, Category)> {
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
            return None;
        }
        self.observer
            .event(&Event::TableStarted { table: &qualified });
        Some((name, qualified, category))
    }

    /// Backs up one table or view: `None` when this backup does not take it (its category),
    /// or for a view dropped since it was listed. A table whose files change while they are
    /// copied is decided again from fresh metadata, a few times.
    pub(super) async fn backup_object(
        &self,
        ident: &TableIdent,
        kind: ObjectKind,
    ) -> Result<Option<TableRecord>, TableError> {
        let Some((name, qualified, category)) = self.taken(ident) else {
            return Ok(None);
        };
        let mut last = String::new();
        for attempt in 1..=TABLE_ATTEMPTS {
            let outcome = match kind {
                ObjectKind::Table => self.table_attempt(ident, &name, category).await,
                ObjectKind::View => match self.plan_view(ident, &name, category).await {
                    Ok(Some(plan)) => self.carry_out(plan).await,
                    Ok(None) => return Ok(None),
                    Err(e) => Err(e),
                },
            };
            match outcome {
                Ok(record) => {
                    self.observer.event(&Event::TableFinished {
                        table: &qualified,
                        outcome: &record.status.to_string(),
                    });
                    return Ok(Some(record));
                }
                Err(TableError::Moved(reason)) if kind == ObjectKind::Table => {
                    tracing::warn!(table = %qualified, attempt, %reason, "table changed while it was copied; reading it again");
                    last = reason;
                }
                Err(e) if kind == ObjectKind::Table && qualified.chars().any(char::is_control) => {
                    return Err(TableError::Unsupported(format!(
                        "{e}; the table's name holds a control character, which iceberg-rust's file access drops from paths, so its files cannot be read: rename the table, or give it the `ignore` category"
                    )));
                }
                Err(e) => return Err(e),
            }
        }
        Err(TableError::Moved(format!(
            "the table kept changing while it was copied ({TABLE_ATTEMPTS} attempts): {last}"
        )))
    }

    /// Stores what `plan` decided, or, for a dry run, says what would be stored.
    pub(super) async fn carry_out(&self, plan: ObjectPlan) -> Result<TableRecord, TableError> {
        let plan = match plan {
            ObjectPlan::Carry(record) => return Ok(*record),
            ObjectPlan::Store(plan) => *plan,
        };
        let StorePlan {
            mut record,
            raw,
            filelist,
            files,
        } = plan;
        let key = record.key.clone();
        let stored = if let Some((files, file_io)) = files {
            Some(self.store_files(&file_io, files, filelist).await?)
        } else {
            if self.run == Run::Store {
                self.repo
                    .stage_filelist(filelist)
                    .await
                    .map_err(|e| TableError::repo(&e))?;
            }
            None
        };
        if record.kind == ObjectKind::Table
            && let Some(state) = record.state.as_mut()
        {
            let (files, bytes, added) = stored.unwrap_or_default();
            state.files = files;
            state.bytes = bytes;
            state.files_added = added.files;
            state.bytes_added = added.bytes;
            state.files_server_side = added.server_side;
        }
        if self.run == Run::Store {
            // Durable with the PIT record that references it (see `commit_pit`).
            self.repo
                .store()
                .put_staged(&layout::table_metadata(&key, self.pit_id), raw)
                .await
                .map_err(|e| TableError::io(&e))?;
        }
        Ok(record)
    }

    /// One attempt at a table. A file that cannot be read counts as "moved" (worth another
    /// attempt) only when the table's metadata pointer moved meanwhile; otherwise the table is
    /// damaged and the attempt fails for good, saying so.
    async fn table_attempt(
        &self,
        ident: &TableIdent,
        name: &TableName,
        category: Category,
    ) -> Result<TableRecord, TableError> {
        if let Some(record) = self.carried_by_location(ident, name, category) {
            return Ok(record);
        }
        let table = self
            .catalog
            .catalog
            .load_table(ident)
            .await
            .map_err(|e| TableError::catalog(&e))?;
        let Some(metadata_location) = table.metadata_location().map(str::to_owned) else {
            return Err(TableError::Catalog(
                "the catalog returned no metadata location".into(),
            ));
        };
        let outcome = match self
            .plan_table(&table, &metadata_location, name, category)
            .await
        {
            Ok(plan) => self.carry_out(plan).await,
            Err(e) => Err(e),
        };
        match outcome {
            Err(TableError::Moved(reason)) => {
                let now = self.catalog.catalog.load_table(ident).await.ok();
                let moved = now.as_ref().and_then(|t| t.metadata_location())
                    != Some(metadata_location.as_str());
                Err(if moved {
                    TableError::Moved(reason)
                } else {
                    TableError::Damaged(format!(
                        "{reason}; the table's metadata did not change meanwhile, so this is not a concurrent expiry: the table is damaged, or its files were removed outside Iceberg"
                    ))
                })
            }
            other => other,
        }
    }

    /// The parent's record of a table whose catalog entry still points at the metadata file
    /// that record describes, carried over without loading the table — when the catalog
    /// listed its metadata location. The same metadata file means the same table UUID, so the
    /// same record [`Self::plan_table`] would find by key and carry over: this decides the same,
    /// from one catalog query instead of a metadata read per table.
    fn carried_by_location(
        &self,
        ident: &TableIdent,
        name: &TableName,
        category: Category,
    ) -> Option<TableRecord> {
        let location = self.locations.as_ref()?.get(ident)?;
        let previous = *self.parent_by_location.get(location.as_str())?;
        // A table without a UUID is keyed by its name.
        let same_key = previous.uuid.is_some() || previous.name == *name;
        let carry = self.request.options.mode == BackupMode::Incremental
            && same_key
            && previous.category == category
            && !self.has_damage(&previous.key, previous.stored_in.as_deref());
        carry.then(|| {
            let renamed_from = (previous.name != *name).then(|| previous.name.clone());
            carried(previous, name, renamed_from)
        })
    }

    /// Decides what this PIT does with a table, reading its metadata, the previous file list
    /// and (for files not in it) what the repository holds.
    async fn plan_table(
        &self,
        table: &iceberg::table::Table,
        metadata_location: &str,
        name: &TableName,
        category: Category,
    ) -> Result<ObjectPlan, TableError> {
        let metadata_location = metadata_location.to_owned();
        let file_io = table.file_io().clone();
        let raw = crate::engine::files::read_whole(&file_io, &metadata_location)
            .await
            .map_err(|e| {
                TableError::Moved(format!("reading {metadata_location}: {}", error_chain(&e)))
            })?;
        let identity = RawIdentity::parse(&raw)
            .map_err(|e| TableError::Damaged(format!("reading {metadata_location}: {e}")))?;
        let metadata = table.metadata();
        let key = layout::table_key(identity.uuid.as_deref(), &name.database, &name.name);
        let previous = self.parent_by_key.get(key.as_str()).copied();
        let incremental = self.request.options.mode == BackupMode::Incremental;

        let renamed_from = previous.filter(|p| p.name != *name).map(|p| p.name.clone());
        let same_metadata = |p: &TableRecord| {
            p.state
                .as_ref()
                .is_some_and(|s| s.metadata_location == metadata_location)
        };
        if let Some(prev) = previous.filter(|p| {
            incremental
                && !self.has_damage(&key, p.stored_in.as_deref())
                && p.category == category
                && same_metadata(p)
        }) {
            // Decided from the catalog entry alone: nothing else is read.
            return Ok(ObjectPlan::Carry(Box::new(carried(
                prev,
                name,
                renamed_from,
            ))));
        }
        let status = if renamed_from.is_some() {
            Status::Renamed
        } else if category == Category::Ephemeral {
            Status::StructureOnly
        } else if previous.is_none() {
            Status::New
        } else if previous.is_some_and(same_metadata) {
            // Walked again only to replace damaged copies.
            Status::Unchanged
        } else {
            Status::Changed
        };

        let files = if category == Category::Ephemeral {
            None
        } else {
            let earlier = match previous.and_then(|p| p.stored_in.as_deref()) {
                Some(pit)
                    if incremental
                        && previous.is_some_and(|p| p.category != Category::Ephemeral) =>
                {
                    self.earlier_list(&key, pit, name).await
                }
                _ => None,
            };
            let (earlier, walked) = earlier
                .map_or((None, Walked::default()), |(list, len, walked)| {
                    (Some((list, len)), walked)
                });
            let mut files = WalkedFiles::new(metadata.location(), earlier, self.files_in_memory);
            walk(
                metadata,
                &file_io,
                self.request.options.snapshots,
                &walked,
                Content::Keep,
                |batch| std::future::ready(files.add(batch).map_err(Walking::Spill)),
            )
            .await
            .map_err(|e| match e {
                Walking::Walk(e) => TableError::Moved(error_chain(&e)),
                Walking::Spill(e) => spill_error("writing", &e),
            })?;
            Some((files, file_io))
        };
        let filelist = FileList {
            format_version: FORMAT_VERSION,
            table_key: key.clone(),
            pit: self.pit_id.to_owned(),
            location: metadata.location().to_owned(),
            metadata_location: metadata_location.clone(),
            metadata_sha256: sha256_hex(&raw),
            current_snapshot_only: self.request.options.snapshots == SnapshotSelection::Current,
            files: Vec::new(),
            parts: Vec::new(),
        };
        let record = TableRecord {
            name: name.clone(),
            key,
            kind: ObjectKind::Table,
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
            )),
        };
        Ok(ObjectPlan::Store(Box::new(StorePlan {
            record,
            raw,
            filelist,
            files,
        })))
    }

    /// The earlier file list of a table, when its entries can be reused: the list, its
    /// number of entries, and the manifest lists and manifests it records as walked. Read
    /// through once here (and once more as the files are stored), a part at a time; one that
    /// cannot be read, or is not in order, only costs checksumming the stored files again.
    async fn earlier_list(
        &self,
        key: &str,
        pit: &str,
        name: &TableName,
    ) -> Option<(FileList, u32, Walked)> {
        let read = async {
            let list = self.repo.load_filelist_header(key, pit).await?;
            let mut walked = Walked::default();
            let mut len: u32 = 0;
            let mut previous_rel: Option<String> = None;
            let mut parts = Box::pin(self.repo.filelist_parts(key, pit, &list));
            while let Some(part) = futures::TryStreamExt::try_next(&mut parts).await? {
                for entry in part.iter() {
                    if previous_rel.as_ref().is_some_and(|r| *r > entry.rel) {
                        return Ok(None);
                    }
                    walked.add(len, entry);
                    previous_rel = Some(entry.rel.clone());
                    len = len.saturating_add(1);
                }
            }
            drop(parts);
            Ok::<_, crate::repo::RepoError>(Some((list, len, walked.checked(len))))
        };
        match read.await {
            Ok(Some(found)) => Some(found),
            Ok(None) => {
                tracing::warn!(table = %name, "the previous file list is not in order; checksumming the stored files again");
                None
            }
            Err(e) => {
                tracing::warn!(table = %name, error = %error_chain(&e), "the previous file list cannot be read; checksumming the stored files again");
                None
            }
        }
    }
}

/// What stops the walk of a table's metadata in a backup.
enum Walking {
    Walk(iceberg::Error),
    Spill(std::io::Error),
}

impl From<iceberg::Error> for Walking {
    fn from(e: iceberg::Error) -> Self {
        Self::Walk(e)
    }
}

/// The parent PIT's record of an object whose metadata did not change, for the new PIT: under
/// its name now, UNCHANGED or RENAMED, nothing added.
pub(super) fn carried(
    previous: &TableRecord,
    name: &TableName,
    renamed_from: Option<TableName>,
) -> TableRecord {
    let mut record = previous.clone();
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
        state.files_server_side = 0;
    }
    record
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
        // Filled in once the files are stored.
        files: 0,
        bytes: 0,
        files_added: 0,
        bytes_added: 0,
        files_server_side: 0,
    }
}

/// The PIT entry of a table that failed under `allow_partial`: its last good state stays
/// referenced (so gc keeps its files), marked FAILED with the reason.
pub(super) fn failed_record(
    ident: &TableIdent,
    kind: ObjectKind,
    reason: &str,
    job: &TableJob<'_>,
) -> TableRecord {
    let name = TableName {
        database: ident.namespace().to_vec(),
        name: ident.name().to_owned(),
    };
    let previous = job
        .parent_by_key
        .values()
        .find(|t| t.name == name && t.kind == kind);
    let mut record = previous.map_or_else(
        || TableRecord {
            key: layout::table_key(None, &name.database, &name.name),
            kind,
            name: name.clone(),
            uuid: None,
            category: job.request.categorizer.category(&name.to_string()),
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
    record.error = Some(reason.to_owned());
    record.last_pit = previous.and_then(|p| p.stored_in.clone());
    if let Some(state) = record.state.as_mut() {
        state.files_added = 0;
        state.bytes_added = 0;
        state.files_server_side = 0;
    }
    record
}
