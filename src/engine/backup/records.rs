//! Assembling the PIT record: tables carried over as DELETED or EXCLUDED, databases with their
//! statuses, and the summary counts.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use iceberg::NamespaceIdent;

use crate::catalog::OpenCatalog;
use crate::engine::EngineError;
use crate::repo::records::{
    DatabaseRecord, Namespace, ObjectKind, PitRecord, PitSummary, Status, TableName, TableRecord,
};

/// Tables of the parent PIT that are not live now become DELETED, or EXCLUDED when they are
/// still in the catalog but no longer taken by this backup's categories; those already gone
/// are carried over so that the PIT stays complete.
pub(super) fn carry_over_missing(
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
            state.files_server_side = 0;
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

/// The databases in scope with their properties and statuses; those gone since the parent PIT
/// become DELETED.
pub(super) async fn database_records(
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

/// Counts of tables and databases by status, and the files and bytes added and referenced.
pub(super) fn summarize(tables: &[TableRecord], databases: &[DatabaseRecord]) -> PitSummary {
    let mut summary = PitSummary::default();
    for t in tables {
        let by_status = match t.kind {
            ObjectKind::Table => &mut summary.tables,
            ObjectKind::View => &mut summary.views,
        };
        *by_status.entry(t.status).or_default() += 1;
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
