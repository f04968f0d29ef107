//! Read-only views of a repository: `describe` and `list`. They never take the lock.

use std::sync::Arc;

use serde::Serialize;

use super::EngineError;
use crate::repo::records::{
    DatabaseRecord, Granularity, Namespace, ObjectKind, PitRecord, PitSummary, RepositoryManifest,
    Status, TableRecord,
};
use crate::repo::{PitEntry, PitSelector, Repository};
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
    /// Objects deleted, as recorded by the newest readable PIT.
    pub deleted: Vec<DeletedObject>,
    /// PITs whose record cannot be read, with the reason; the others keep working.
    pub damaged: Vec<DamagedPit>,
    /// Temporary objects of interrupted runs, which `gc` reclaims.
    pub incomplete: IncompleteObjects,
    /// Encryption and immutability.
    pub protection: crate::store::Protection,
}

/// A PIT whose record cannot be used.
#[derive(Debug, Clone, Serialize)]
pub struct DamagedPit {
    /// Its id.
    pub id: String,
    /// The record's key.
    pub key: String,
    /// Why.
    pub reason: String,
}

/// Leftovers of interrupted writes.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct IncompleteObjects {
    /// How many.
    pub objects: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// Describes a repository.
pub async fn describe(store: Arc<dyn BackupStore>) -> Result<Description, EngineError> {
    let repo = Repository::open(store).await?;
    let mut pits = Vec::new();
    let mut damaged = Vec::new();
    for entry in repo.scan_pits().await? {
        match entry {
            PitEntry::Readable(pit) => pits.push(*pit),
            PitEntry::Damaged { id, key, reason } => damaged.push(DamagedPit { id, key, reason }),
        }
    }
    let leftovers = repo.store().list_incomplete("").await?;
    let incomplete = IncompleteObjects {
        objects: leftovers.len(),
        bytes: leftovers.iter().map(|o| o.size).sum(),
    };
    let deleted = pits.last().map(deleted_objects).unwrap_or_default();
    Ok(Description {
        protection: repo.store().protection(),
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
        damaged,
        incomplete,
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

/// One table's difference between two PITs.
#[derive(Debug, Clone, Serialize)]
pub struct TableChange {
    /// Its name in the later PIT (or the earlier one, for deleted tables).
    pub table: String,
    /// A table or a view.
    #[serde(skip_serializing_if = "ObjectKind::is_table")]
    pub kind: ObjectKind,
    /// For renamed tables: the name in the earlier PIT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Current snapshot in the earlier PIT.
    pub snapshot_before: Option<i64>,
    /// Current snapshot in the later PIT.
    pub snapshot_after: Option<i64>,
}

/// `bcn diff`: what happened between two PITs, whatever lies between them.
#[derive(Debug, Clone, Serialize)]
pub struct PitDiff {
    /// The repository URL.
    pub repository: String,
    /// The earlier PIT.
    pub from: String,
    /// The later PIT.
    pub to: String,
    /// Databases live in `to` only.
    pub databases_added: Vec<String>,
    /// Databases live in `from` only.
    pub databases_deleted: Vec<String>,
    /// Tables live in `to` only.
    pub added: Vec<TableChange>,
    /// Tables with other metadata.
    pub changed: Vec<TableChange>,
    /// Tables under another name (same UUID).
    pub renamed: Vec<TableChange>,
    /// Tables live in `from` only.
    pub deleted: Vec<TableChange>,
    /// Tables with the same metadata in both.
    pub unchanged: usize,
}

/// Compares two PITs of a repository by table key.
pub async fn diff(
    store: Arc<dyn BackupStore>,
    a: &PitSelector,
    b: &PitSelector,
) -> Result<PitDiff, EngineError> {
    let repo = Repository::open(store).await?;
    let (mut from, mut to) = (repo.resolve_pit(a).await?, repo.resolve_pit(b).await?);
    if from.id > to.id {
        std::mem::swap(&mut from, &mut to);
    }
    let live = |p: &PitRecord| -> std::collections::BTreeMap<String, TableRecord> {
        p.tables
            .iter()
            .filter(|t| t.status.is_live())
            .map(|t| (t.key.clone(), t.clone()))
            .collect()
    };
    let (before, after) = (live(&from), live(&to));
    let snapshot = |t: &TableRecord| t.state.as_ref().and_then(|s| s.current_snapshot_id);
    let location = |t: &TableRecord| t.state.as_ref().map(|s| s.metadata_location.clone());
    let change = |old: Option<&TableRecord>, new: &TableRecord| TableChange {
        table: new.name.to_string(),
        kind: new.kind,
        from: old
            .filter(|o| o.name != new.name)
            .map(|o| o.name.to_string()),
        snapshot_before: old.and_then(snapshot),
        snapshot_after: snapshot(new),
    };
    let mut out = PitDiff {
        repository: repo.url().to_owned(),
        from: from.id.clone(),
        to: to.id.clone(),
        databases_added: Vec::new(),
        databases_deleted: Vec::new(),
        added: Vec::new(),
        changed: Vec::new(),
        renamed: Vec::new(),
        deleted: Vec::new(),
        unchanged: 0,
    };
    for (key, new) in &after {
        match before.get(key) {
            None => out.added.push(change(None, new)),
            Some(old) if old.name != new.name => out.renamed.push(change(Some(old), new)),
            Some(old) if location(old) != location(new) => out.changed.push(change(Some(old), new)),
            Some(_) => out.unchanged += 1,
        }
    }
    for (key, old) in &before {
        if !after.contains_key(key) {
            out.deleted.push(TableChange {
                table: old.name.to_string(),
                kind: old.kind,
                from: None,
                snapshot_before: snapshot(old),
                snapshot_after: None,
            });
        }
    }
    let live_dbs = |p: &PitRecord| -> Vec<String> {
        p.databases
            .iter()
            .filter(|d| d.status.is_live())
            .map(|d| d.name.join("."))
            .collect()
    };
    let (db_before, db_after) = (live_dbs(&from), live_dbs(&to));
    out.databases_added = db_after
        .iter()
        .filter(|d| !db_before.contains(d))
        .cloned()
        .collect();
    out.databases_deleted = db_before
        .iter()
        .filter(|d| !db_after.contains(d))
        .cloned()
        .collect();
    Ok(out)
}
