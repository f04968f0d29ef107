//! One table's backup: load, compare with the parent PIT, copy what the repository lacks,
//! write its metadata and file list; retried from fresh metadata when the table moves on.

use std::collections::{HashMap, HashSet};

use iceberg::TableIdent;
use iceberg::spec::TableMetadata;

use crate::catalog::OpenCatalog;
use crate::engine::files::{SnapshotSelection, Walked, table_files};
use crate::engine::transfer::sha256_hex;
use crate::engine::{Event, Observer, error_chain};
use crate::plan::BackupMode;
use crate::repo::Repository;
use crate::repo::layout;
use crate::repo::records::{
    Category, FORMAT_VERSION, FileEntry, FileList, ObjectKind, Status, TableName, TableRecord,
    TableState, encode,
};

use super::BackupRequest;
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
}

/// Why one attempt at a table failed.
pub(super) enum AttemptError {
    /// Files changed under us; worth another attempt from fresh metadata.
    Moved(String),
    /// Anything else.
    Fatal(String),
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
    pub(super) fn taken(&self, ident: &TableIdent) -> Option<(TableName, String, Category)> {
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

    /// Backs up one table; `None` for tables in the `ignore` category.
    pub(super) async fn backup_table(
        &self,
        ident: &TableIdent,
    ) -> Result<Option<TableRecord>, String> {
        let Some((name, qualified, category)) = self.taken(ident) else {
            return Ok(None);
        };
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
                Err(AttemptError::Fatal(reason)) => {
                    return Err(if qualified.chars().any(char::is_control) {
                        format!(
                            "{reason}; the table's name holds a control character, which iceberg-rust's file access drops from paths, so its files cannot be read: rename the table, or give it the `ignore` category"
                        )
                    } else {
                        reason
                    });
                }
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
        let same_metadata = |p: &TableRecord| {
            p.state
                .as_ref()
                .is_some_and(|s| s.metadata_location == metadata_location)
        };
        if let Some(prev) = previous.filter(|p| {
            (self.request.options.mode == BackupMode::Incremental)
                && !self.has_damage(&key, p.stored_in.as_deref())
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
                state.files_server_side = 0;
            }
            return Ok(record);
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

        let previous_files = match previous.and_then(|p| p.stored_in.as_deref()) {
            Some(pit)
                if (self.request.options.mode == BackupMode::Incremental)
                    && previous.is_some_and(|p| p.category != Category::Ephemeral) =>
            {
                // A damaged parent file list only costs re-reading the stored files.
                match self.repo.load_filelist(&key, pit).await {
                    Ok(list) => list.files,
                    Err(e) => {
                        tracing::warn!(table = %name, error = %error_chain(&e), "the previous file list cannot be read; checksumming the stored files again");
                        Vec::new()
                    }
                }
            }
            _ => Vec::new(),
        };
        let known: HashMap<String, FileEntry> = previous_files
            .iter()
            .map(|f| (f.rel.clone(), f.clone()))
            .collect();
        let files = if category == Category::Ephemeral {
            Vec::new()
        } else {
            let walked = Walked::new(previous_files);
            table_files(metadata, &file_io, self.request.options.snapshots, &walked)
                .await
                .map_err(|e| AttemptError::Moved(error_chain(&e)))?
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
            // Durable with the PIT record that references them (see `commit_pit`).
            store
                .put_staged(&metadata_key, raw)
                .await
                .map_err(|e| fatal(&e))?;
            let filelist_key = layout::filelist(&key, self.pit_id);
            store
                .put_staged(&filelist_key, encode(&filelist))
                .await
                .map_err(|e| fatal(&e))?;
        }
        Ok(TableRecord {
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
                &filelist,
                added,
            )),
        })
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
    added: Added,
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
        files_added: added.files,
        bytes_added: added.bytes,
        files_server_side: added.server_side,
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
