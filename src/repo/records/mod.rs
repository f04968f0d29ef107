//! Versioned serde types of the repository format (v2).
//!
//! Readers go through [`decode`], which checks `format_version` before anything else, so a
//! repository written by a newer bcn is refused with a clear message instead of misread.
//! Writers only ever write [`FORMAT_VERSION`]. The meaning of a released version never changes.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod codec;

pub use codec::{DecodeError, decode, decode_with, encode};

/// The repository format version this build writes and the newest it reads.
///
/// - 1: every record one JSON document.
/// - 2: a file list's entries are in parts ([`FileList::parts`]), each its own object,
///   so that no reader or writer holds a whole list's bytes (a 100,000-file list is 37 MB
///   of JSON). A v1 list, with its entries inline, still reads.
pub const FORMAT_VERSION: u32 = 2;

/// Entries of a file list part at most ([`FileList::parts`]).
pub const PART_FILES: usize = 10_000;

/// How much a repository holds; fixed when the repository is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// One table.
    Table,
    /// One database (namespace) and every table in it.
    Database,
    /// Every namespace of a catalog, nested ones included.
    Catalog,
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Table => "table",
            Self::Database => "database",
            Self::Catalog => "catalog",
        })
    }
}

/// A namespace path (`["db"]`, or `["a", "b"]` for a nested namespace).
pub type Namespace = Vec<String>;

/// Joins a namespace for display: `a.b`.
pub fn ns_display(ns: &[String]) -> String {
    ns.join(".")
}

/// What a repository holds: a catalog, optionally narrowed to a database and a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// Name of the catalog in the plan.
    pub catalog: String,
    /// The database, for database and table granularity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<Namespace>,
    /// The table, for table granularity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
}

impl Scope {
    /// The granularity this scope implies.
    pub fn granularity(&self) -> Granularity {
        match (&self.database, &self.table) {
            (_, Some(_)) => Granularity::Table,
            (Some(_), None) => Granularity::Database,
            (None, None) => Granularity::Catalog,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}", self.granularity(), self.catalog)?;
        if let Some(db) = &self.database {
            write!(f, ".{}", ns_display(db))?;
        }
        if let Some(t) = &self.table {
            write!(f, ".{t}")?;
        }
        f.write_str("`")
    }
}

/// `bcn-repository.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepositoryManifest {
    /// Always [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// Random id of this repository.
    pub repository_id: String,
    /// Fixed granularity.
    pub granularity: Granularity,
    /// Fixed scope.
    pub scope: Scope,
    /// When the repository was created.
    pub created_at: DateTime<Utc>,
    /// The bcn version that created it.
    pub created_by: String,
    /// Every record of this repository carries its own checksum (repositories created since
    /// record checksums exist): a record without one is refused as edited.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub record_checksums: bool,
}

/// Status of an object in a PIT, relative to the parent PIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Not in the parent PIT.
    New,
    /// In the parent PIT, with other metadata now.
    Changed,
    /// Same metadata location as in the parent PIT; nothing was read.
    Unchanged,
    /// Same table UUID as in the parent PIT, under another name.
    Renamed,
    /// In the parent PIT (live) and gone from the catalog now.
    Deleted,
    /// Left the repository's categories (moved to `ignore` or another repository).
    Excluded,
    /// Ephemeral: structure kept, no data.
    StructureOnly,
    /// Could not be backed up (only with `allow_partial`).
    Failed,
}

impl Status {
    /// Every status, in report order.
    pub const ALL: [Status; 8] = [
        Self::New,
        Self::Changed,
        Self::Unchanged,
        Self::Renamed,
        Self::Deleted,
        Self::Excluded,
        Self::StructureOnly,
        Self::Failed,
    ];

    /// True for objects that exist in the source catalog at this PIT.
    pub fn is_live(self) -> bool {
        !matches!(self, Self::Deleted | Self::Excluded | Self::Failed)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::New => "NEW",
            Self::Changed => "CHANGED",
            Self::Unchanged => "UNCHANGED",
            Self::Renamed => "RENAMED",
            Self::Deleted => "DELETED",
            Self::Excluded => "EXCLUDED",
            Self::StructureOnly => "STRUCTURE_ONLY",
            Self::Failed => "FAILED",
        })
    }
}

/// Table categories of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Structure and data.
    #[default]
    Global,
    /// Structure and data, sensitive.
    Local,
    /// Structure only.
    Ephemeral,
    /// Neither backed up nor reported.
    Ignore,
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Global => "global",
            Self::Local => "local",
            Self::Ephemeral => "ephemeral",
            Self::Ignore => "ignore",
        })
    }
}

/// How a PIT was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrategyRecord {
    /// `incremental` or `full`.
    pub mode: String,
    /// `all` or `current`.
    pub snapshots: String,
}

/// A database (namespace) in a PIT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseRecord {
    /// The namespace.
    pub name: Namespace,
    /// NEW, UNCHANGED, CHANGED (properties), DELETED.
    pub status: Status,
    /// Namespace properties.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// When the deletion was noticed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    /// The last PIT in which it was live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pit: Option<String>,
}

/// A table's name in a PIT.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TableName {
    /// Its namespace.
    pub database: Namespace,
    /// Its name.
    pub name: String,
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", ns_display(&self.database), self.name)
    }
}

/// A table in a PIT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableRecord {
    /// Namespace and name at this PIT.
    #[serde(flatten)]
    pub name: TableName,
    /// Repository key of the table (its UUID, or a name digest).
    pub key: String,
    /// A table, or an Iceberg view (whose stored state is its metadata file alone).
    #[serde(default, skip_serializing_if = "ObjectKind::is_table")]
    pub kind: ObjectKind,
    /// The table UUID, when the metadata has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// The plan category.
    pub category: Category,
    /// Status relative to the parent PIT.
    pub status: Status,
    /// For RENAMED: the name in the parent PIT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_name: Option<TableName>,
    /// For DELETED: when it was noticed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    /// For DELETED and EXCLUDED: the last PIT in which it was backed up live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pit: Option<String>,
    /// For FAILED: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The PIT whose stored metadata and file list describe this table here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_in: Option<String>,
    /// What was read from the table's metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<TableState>,
}

/// What a [`TableRecord`] describes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// An Iceberg table.
    #[default]
    Table,
    /// An Iceberg view: metadata only, no files.
    View,
}

impl ObjectKind {
    /// Whether this is a table (the default, left out of records).
    pub fn is_table(&self) -> bool {
        *self == Self::Table
    }

    /// `table` or `view`, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::View => "view",
        }
    }
}

/// The table's state as recorded at backup time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableState {
    /// Iceberg format version.
    pub format_version: u8,
    /// Metadata location in the source catalog.
    pub metadata_location: String,
    /// Table location.
    pub location: String,
    /// Current snapshot, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_snapshot_id: Option<i64>,
    /// Current schema id.
    pub schema_id: i32,
    /// Every schema id the table knows (schema evolution).
    pub schema_ids: Vec<i32>,
    /// Default partition spec id.
    pub spec_id: i32,
    /// Number of snapshots kept in the metadata.
    pub snapshots: usize,
    /// Records in the current snapshot (from its summary), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
    /// Files stored for this table at this PIT (all kinds).
    pub files: u64,
    /// Bytes of those files.
    pub bytes: u64,
    /// Files copied by the backup that made this PIT.
    pub files_added: u64,
    /// Bytes copied by the backup that made this PIT.
    pub bytes_added: u64,
    /// Of `files_added`, those S3 copied itself (warehouse and repository on one service).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub files_server_side: u64,
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "the signature serde's skip_serializing_if requires"
)]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Counts of one PIT.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PitSummary {
    /// Tables by status.
    pub tables: BTreeMap<Status, u64>,
    /// Views by status.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub views: BTreeMap<Status, u64>,
    /// Databases by status.
    pub databases: BTreeMap<Status, u64>,
    /// Files copied by this backup.
    pub files_added: u64,
    /// Bytes copied by this backup.
    pub bytes_added: u64,
    /// Files referenced by this PIT.
    pub files_total: u64,
    /// Bytes referenced by this PIT.
    pub bytes_total: u64,
}

/// `pits/<id>.json`: the commit point of one backup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PitRecord {
    /// Always [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// Sortable id, `YYYYMMDDTHHMMSS.mmmZ-xxxxxx`.
    pub id: String,
    /// 1 for the first PIT of the repository, then +1.
    pub seq: u64,
    /// The PIT this one was compared against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The repository this PIT belongs to.
    pub repository_id: String,
    /// When the backup started (the PIT's time).
    pub started_at: DateTime<Utc>,
    /// When it was committed.
    pub finished_at: DateTime<Utc>,
    /// The bcn version that wrote it.
    pub created_by: String,
    /// How it was taken.
    pub strategy: StrategyRecord,
    /// Counts.
    pub summary: PitSummary,
    /// Databases in scope.
    pub databases: Vec<DatabaseRecord>,
    /// Tables in scope (live, renamed and carried-over deleted ones).
    pub tables: Vec<TableRecord>,
}

/// The kind of an Iceberg file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// A data file.
    Data,
    /// A position-delete file (its rows name data files).
    PositionDeletes,
    /// An equality-delete file.
    EqualityDeletes,
    /// A manifest.
    Manifest,
    /// A snapshot's manifest list.
    ManifestList,
    /// A Puffin statistics file.
    Statistics,
    /// A partition statistics file.
    PartitionStatistics,
}

/// One stored file of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// The file's absolute path in the source table.
    pub path: String,
    /// Its path relative to the table's stored `files/` prefix.
    pub rel: String,
    /// What it is.
    pub kind: FileKind,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// For a manifest list or a manifest: the files it references (the indices in
    /// [`FileList::files`] of its manifests, or of its live data and delete files). Manifest
    /// lists and manifests are immutable, so the next incremental backup takes what one
    /// references from here instead of reading it again. Absent in lists written before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refs: Option<Vec<u32>>,
}

/// `tables/<key>/filelists/<pit>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileList {
    /// Always [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// The table key.
    pub table_key: String,
    /// The PIT that wrote it.
    pub pit: String,
    /// The source table location.
    pub location: String,
    /// The source metadata location.
    pub metadata_location: String,
    /// SHA-256 of the stored metadata JSON.
    pub metadata_sha256: String,
    /// Only the current snapshot's files are stored (strategy `snapshots: current`); a
    /// restore keeps only that snapshot.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub current_snapshot_only: bool,
    /// Every file, sorted by `rel`. Written inline by format v1; since v2 in
    /// [`FileList::parts`], and filled from them when the whole list is read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileEntry>,
    /// The parts that hold the entries, in `rel` order: part `i` is the object
    /// `tables/<key>/filelists/<pit>.<i>.jsonl`, one compact JSON [`FileEntry`] a line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<FileListPart>,
}

/// What a file list records of one of its parts: enough to refuse a part that was damaged,
/// cut short or swapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileListPart {
    /// Entries in it.
    pub files: u64,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
}

/// `locks/exclusive.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockRecord {
    /// Always [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// Id of the run that holds the lock.
    pub run_id: String,
    /// Host name of the holder.
    pub host: String,
    /// Process id of the holder.
    pub pid: u32,
    /// What the holder runs (`backup`, `gc`).
    pub command: String,
    /// When the lock was taken.
    pub created_at: DateTime<Utc>,
    /// Refreshed while the holder runs.
    pub heartbeat_at: DateTime<Utc>,
    /// Seconds after the last heartbeat at which the lock counts as stale.
    pub ttl_seconds: u64,
}

/// `damaged/<digest>.json`: an object `bcn verify` found damaged or missing. Backups never
/// reuse it (they copy it again from the live table) and remove the marker once the object is
/// good again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DamageRecord {
    /// Always [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// The damaged object.
    pub key: String,
    /// What verify found.
    pub problem: String,
    /// When.
    pub found_at: DateTime<Utc>,
}

/// `verifications/<id>.json`: one run of `bcn verify`, so that `bcn apply` schedules the
/// next one from the repository's own history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationRecord {
    /// Always [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// Sortable id (a time, as PIT ids).
    pub id: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Whether nothing was found wrong.
    pub clean: bool,
    /// Problems found.
    pub problems: usize,
    /// PITs checked.
    pub pits: usize,
    /// `--read-data` subset, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_data: Option<String>,
    /// Whether a restore test ran.
    #[serde(default)]
    pub restore_test: bool,
    /// Wall time, milliseconds.
    pub millis: u64,
}

impl PitRecord {
    /// Checks every value that becomes part of a repository key.
    pub fn check(&self) -> Result<(), String> {
        use super::layout::{check_pit_id, check_table_key};
        check_pit_id(&self.id)?;
        if let Some(parent) = &self.parent {
            check_pit_id(parent)?;
        }
        for table in &self.tables {
            check_table_key(&table.key).map_err(|e| format!("table {}: {e}", table.name))?;
            for pit in table.stored_in.iter().chain(&table.last_pit) {
                check_pit_id(pit).map_err(|e| format!("table {}: {e}", table.name))?;
            }
        }
        Ok(())
    }
}

impl FileList {
    /// Checks every value that becomes part of a repository key or a restored path.
    pub fn check(&self) -> Result<(), String> {
        use super::layout::{check_pit_id, check_table_key};
        check_table_key(&self.table_key)?;
        check_pit_id(&self.pit)?;
        for (i, part) in self.parts.iter().enumerate() {
            if !is_sha256(&part.sha256) {
                return Err(format!("part {i}: invalid SHA-256 {:?}", part.sha256));
            }
        }
        if !self.files.is_empty() && !self.parts.is_empty() {
            return Err("it has entries both inline and in parts".into());
        }
        self.files.iter().try_for_each(FileEntry::check)
    }
}

impl FileEntry {
    /// Checks a value that becomes part of a repository key or a restored path.
    pub fn check(&self) -> Result<(), String> {
        super::layout::check_relative_file(&self.rel)?;
        if !is_sha256(&self.sha256) {
            return Err(format!(
                "file {}: invalid SHA-256 {:?}",
                self.rel, self.sha256
            ));
        }
        Ok(())
    }
}

fn is_sha256(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A file list part's bytes: `entries`, one compact JSON object a line.
///
/// # Panics
///
/// Never: a [`FileEntry`] is strings and numbers, which always serialise.
pub fn encode_part(entries: &[FileEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 320);
    for entry in entries {
        serde_json::to_writer(&mut out, entry).expect("a file entry serialises");
        out.push(b'\n');
    }
    out
}

/// Reads a part written by [`encode_part`], refusing one that does not match what its file
/// list records of it (`part`) or holds an entry [`FileEntry::check`] refuses.
pub fn decode_part(
    key: &str,
    part: &FileListPart,
    bytes: &[u8],
) -> Result<Vec<FileEntry>, DecodeError> {
    use sha2::Digest as _;
    if bytes.len() as u64 != part.size || hex::encode(sha2::Sha256::digest(bytes)) != part.sha256 {
        return Err(DecodeError::Damaged {
            what: "file list part",
            key: key.to_owned(),
        });
    }
    let entries = serde_json::Deserializer::from_slice(bytes)
        .into_iter::<FileEntry>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| DecodeError::Corrupt {
            what: "file list part",
            key: key.to_owned(),
            source,
        })?;
    let invalid = |problem| DecodeError::Invalid {
        what: "file list part",
        key: key.to_owned(),
        problem,
    };
    if entries.len() as u64 != part.files {
        return Err(invalid(format!(
            "it holds {} entries, its file list records {}",
            entries.len(),
            part.files
        )));
    }
    entries
        .iter()
        .try_for_each(FileEntry::check)
        .map_err(invalid)?;
    Ok(entries)
}

#[cfg(test)]
mod tests;
