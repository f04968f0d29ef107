//! Restore: any subset of a PIT into any catalog, database and location.
//!
//! `prepare` reads the repository and the target catalog and decides everything; it writes
//! nothing, and `--dry-run` prints its result. `execute` then, per table:
//!
//! 1. Reads the stored file list and metadata, checking the metadata checksum.
//! 2. Writes every file to the target location: data, equality-delete and statistics files
//!    verbatim (streamed, checksummed); when the location changes, position-delete files,
//!    manifests and manifest lists are rewritten with the new paths and the new sizes of the
//!    files they reference. An existing file with the expected size is kept; any other
//!    existing file stops the table (nothing is ever overwritten).
//! 3. Writes new table metadata (paths rewritten, provenance properties added).
//! 4. Checks every file's size and reads the new metadata back.
//! 5. Only then registers the table (with `--replace`: drops the old entry first and puts it
//!    back if registering fails). A table that fails before this step leaves nothing
//!    registered and its written files removed.

mod execute;
mod view;

pub use execute::execute;

use std::collections::BTreeMap;
use std::sync::Arc;

use iceberg::{NamespaceIdent, TableIdent};
use serde::Serialize;

use super::{EngineError, TableFailure};
use crate::catalog::OpenCatalog;
use crate::plan::CatalogSpec;
use crate::repo::records::{Category, Namespace, ObjectKind, Status, TableName, ns_display};
use crate::repo::{PitSelector, Repository};
use crate::store::BackupStore;

mod prepare;

pub use prepare::prepare;

/// Table property prefix of restore provenance.
pub const PROVENANCE_PREFIX: &str = "bcn.restore.";

/// What to restore where.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// The repository.
    pub store: Arc<dyn BackupStore>,
    /// Which PIT.
    pub pit: PitSelector,
    /// Only these databases (empty: all).
    pub databases: Vec<Namespace>,
    /// Only tables matching these `database.table` names or globs (empty: all).
    pub tables: Vec<String>,
    /// Restore tables that were deleted before the PIT too.
    pub include_deleted: bool,
    /// The target catalog.
    pub target: Arc<CatalogSpec>,
    /// Put the tables into this database (one source database only).
    pub target_database: Option<Namespace>,
    /// Give the table this name (one table only).
    pub target_table: Option<String>,
    /// Root under which `<database>/<table>` locations are made; default: the target
    /// catalog's warehouse.
    pub target_location: Option<crate::location::Location>,
    /// Replace tables that exist in the target (and, with `original_location`, files that
    /// differ at their original paths).
    pub replace: bool,
    /// Restore every table at the location it had at the PIT, every file at its own path,
    /// under its own name and UUID (in-place recovery after a lost bucket or catalog).
    pub original_location: bool,
    /// Tables restored at once.
    pub concurrency: usize,
}

/// One table of a restore plan.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreItem {
    /// The table (or view) in the PIT.
    pub source: TableName,
    /// A table or a view.
    #[serde(skip_serializing_if = "ObjectKind::is_table")]
    pub kind: ObjectKind,
    /// What the user should know before restoring it (a view under another database).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Its status in the PIT.
    pub status: Status,
    /// Its category; `ephemeral` tables are restored empty, with their structure.
    pub category: Category,
    /// Its repository key.
    pub key: String,
    /// The table to create.
    pub target: TableName,
    /// The location of the restored table.
    pub location: String,
    /// Files to write.
    pub files: u64,
    /// Bytes to write.
    pub bytes: u64,
    /// `create`, or `replace` (the target exists and `--replace` was given).
    pub action: &'static str,
    /// Whether the table keeps its UUID (restored to its own name in its own catalog).
    pub keeps_uuid: bool,
    /// Restored in place: every file at its own path, nothing rewritten.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub in_place: bool,
    /// In place with `--replace`: a different file at a file's path is replaced.
    #[serde(skip)]
    pub overwrite: bool,
    /// Roots of the table's files outside its location (`write.data.path`, files added from
    /// elsewhere, an earlier location) and where each goes: `<location>/_external/<n>`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub external_roots: Vec<crate::engine::rewrite::RootMapping>,
    #[serde(skip)]
    stored_in: String,
    #[serde(skip)]
    uuid: Option<String>,
}

/// Everything a restore will do, and what it needs to do it: the opened repository and
/// target catalog travel with the plan, so that [`execute`] opens nothing again.
#[derive(Debug, Clone, Serialize)]
pub struct RestorePlan {
    /// The repository URL.
    pub repository: String,
    /// The PIT restored.
    pub pit: String,
    /// Its time.
    pub pit_time: chrono::DateTime<chrono::Utc>,
    /// The target catalog.
    pub target_catalog: String,
    /// Databases that will be created, with their properties.
    pub create_databases: Vec<(String, BTreeMap<String, String>)>,
    /// The tables.
    pub tables: Vec<RestoreItem>,
    #[serde(skip)]
    source_catalog: String,
    /// The repository, opened once by [`prepare`].
    #[serde(skip)]
    repo: Repository,
    /// The target catalog as [`prepare`] found it.
    #[serde(skip)]
    target: Target,
    /// Tables restored at once.
    #[serde(skip)]
    concurrency: usize,
}

/// The target catalog of a prepared restore.
#[derive(Debug, Clone)]
enum Target {
    /// Opened.
    Open(OpenCatalog),
    /// A `SQLite` catalog whose file does not exist yet: [`execute`] creates it (a dry run
    /// never does).
    Missing(Arc<CatalogSpec>),
}

impl RestorePlan {
    /// The target catalog, when it exists already.
    pub fn target(&self) -> Option<&OpenCatalog> {
        match &self.target {
            Target::Open(catalog) => Some(catalog),
            Target::Missing(_) => None,
        }
    }
}

/// The outcome of one table.
#[derive(Debug, Clone, Serialize)]
pub struct RestoredTable {
    /// The plan item.
    #[serde(flatten)]
    pub item: RestoreItem,
    /// `restored` or `failed`.
    pub outcome: &'static str,
    /// The registered metadata location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_location: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What kind of failure it was ([`TableError::kind`](crate::engine::TableError::kind)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<&'static str>,
}

/// The outcome of a restore.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// The repository URL.
    pub repository: String,
    /// The PIT restored.
    pub pit: String,
    /// The target catalog.
    pub target_catalog: String,
    /// Per table.
    pub tables: Vec<RestoredTable>,
}

impl RestoreReport {
    /// The failures, for the exit status.
    pub fn failures(&self) -> Vec<TableFailure> {
        self.tables
            .iter()
            .filter_map(|t| {
                t.error.as_ref().map(|e| TableFailure {
                    table: t.item.source.to_string(),
                    kind: t.error_kind.unwrap_or("io"),
                    reason: e.clone(),
                })
            })
            .collect()
    }
}

fn ident(name: &TableName) -> Result<TableIdent, EngineError> {
    let ns = NamespaceIdent::from_vec(name.database.clone()).map_err(|e| {
        EngineError::invalid(format!(
            "invalid database name `{}`: {e}",
            ns_display(&name.database)
        ))
    })?;
    Ok(TableIdent::new(ns, name.name.clone()))
}
