//! Read-only views of a repository: `describe` and `list`. They never take the lock.

use std::sync::Arc;

use serde::Serialize;

use super::EngineError;
use crate::repo::records::{
    DatabaseRecord, Granularity, Namespace, PitRecord, PitSummary, RepositoryManifest, Status,
    TableRecord,
};
use crate::repo::{PitSelector, Repository};
use crate::store::BackupStore;

/// One PIT in a description.
#[derive(Debug, Clone, Serialize)]
pub struct PitOverview {
    /// Id.
    pub id: String,
    /// Sequence number.
    pub seq: u64,
    /// Parent id.
    pub parent: Option<String>,
    /// Start time.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Commit time.
    pub finished_at: chrono::DateTime<chrono::Utc>,
    /// `incremental` or `full`.
    pub mode: String,
    /// Counts.
    pub summary: PitSummary,
}

/// A deleted object, as of the newest PIT.
#[derive(Debug, Clone, Serialize)]
pub struct DeletedObject {
    /// `table` or `database`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// When the deletion was noticed.
    pub deleted_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The last PIT that holds it live.
    pub last_pit: Option<String>,
}

/// `bcn describe`.
#[derive(Debug, Clone, Serialize)]
pub struct Description {
    /// The repository URL.
    pub repository: String,
    /// Its manifest (id, granularity, scope, creation).
    pub manifest: RepositoryManifest,
    /// Every PIT, oldest first.
    pub pits: Vec<PitOverview>,
    /// Objects deleted, as recorded by the newest PIT.
    pub deleted: Vec<DeletedObject>,
}

/// Describes a repository.
pub async fn describe(store: Arc<dyn BackupStore>) -> Result<Description, EngineError> {
    let repo = Repository::open(store).await?;
    let pits = repo.load_pits().await?;
    let deleted = pits.last().map(deleted_objects).unwrap_or_default();
    Ok(Description {
        repository: repo.url().to_owned(),
        manifest: repo.manifest().clone(),
        pits: pits
            .into_iter()
            .map(|p| PitOverview {
                id: p.id,
                seq: p.seq,
                parent: p.parent,
                started_at: p.started_at,
                finished_at: p.finished_at,
                mode: p.strategy.mode,
                summary: p.summary,
            })
            .collect(),
        deleted,
    })
}

fn deleted_objects(pit: &PitRecord) -> Vec<DeletedObject> {
    let dbs = pit
        .databases
        .iter()
        .filter(|d| d.status == Status::Deleted)
        .map(|d| DeletedObject {
            kind: "database",
            name: d.name.join("."),
            deleted_at: d.deleted_at,
            last_pit: d.last_pit.clone(),
        });
    let tables = pit
        .tables
        .iter()
        .filter(|t| t.status == Status::Deleted)
        .map(|t| DeletedObject {
            kind: "table",
            name: t.name.to_string(),
            deleted_at: t.deleted_at,
            last_pit: t.last_pit.clone(),
        });
    dbs.chain(tables).collect()
}

/// `bcn list`.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    /// The repository URL.
    pub repository: String,
    /// Its granularity.
    pub granularity: Granularity,
    /// The PIT listed.
    pub pit: String,
    /// Its time.
    pub pit_time: chrono::DateTime<chrono::Utc>,
    /// Databases.
    pub databases: Vec<DatabaseRecord>,
    /// Tables.
    pub tables: Vec<TableRecord>,
}

/// Lists the objects of a PIT, optionally of one database.
pub async fn list(
    store: Arc<dyn BackupStore>,
    pit: &PitSelector,
    database: Option<&Namespace>,
) -> Result<Listing, EngineError> {
    let repo = Repository::open(store).await?;
    let pit = repo.resolve_pit(pit).await?;
    let keep_db = |name: &Namespace| database.is_none_or(|d| d == name);
    if let Some(db) = database
        && !pit.databases.iter().any(|d| &d.name == db)
        && !pit.tables.iter().any(|t| &t.name.database == db)
    {
        return Err(EngineError::NotFound(format!(
            "PIT {} has no database `{}`",
            pit.id,
            db.join(".")
        )));
    }
    Ok(Listing {
        repository: repo.url().to_owned(),
        granularity: repo.granularity(),
        pit: pit.id,
        pit_time: pit.started_at,
        databases: pit
            .databases
            .into_iter()
            .filter(|d| keep_db(&d.name))
            .collect(),
        tables: pit
            .tables
            .into_iter()
            .filter(|t| keep_db(&t.name.database))
            .collect(),
    })
}
