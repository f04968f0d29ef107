//! What a reviewer reads: every table's action.

use super::TableAction;
use crate::engine::backup::BackupReport;
use crate::repo::records::{Category, Status};

/// Every table's action, for the report.
pub(super) fn actions(backup: &BackupReport) -> Vec<TableAction> {
    let pit = &backup.pit;
    let mut out: Vec<TableAction> = pit
        .tables
        .iter()
        .filter(|t| match t.status {
            // Carried-over tombstones are old news.
            Status::Deleted => t.deleted_at == Some(pit.started_at),
            Status::Excluded => t.last_pit == pit.parent,
            _ => true,
        })
        .map(|t| {
            let (files, bytes) = t
                .state
                .as_ref()
                .map_or((0, 0), |s| (s.files_added, s.bytes_added));
            let detail = match (&t.previous_name, &t.error) {
                (Some(old), _) => format!("was {old}"),
                (_, Some(e)) => e.clone(),
                _ => format!("category {}", t.category),
            };
            let action = match t.status {
                Status::StructureOnly => "structure-only".to_owned(),
                s => s.to_string().to_lowercase(),
            };
            TableAction {
                action,
                table: t.name.to_string(),
                files,
                bytes,
                detail,
            }
        })
        .collect();
    for s in &backup.skipped {
        let action = if s.category == Category::Ignore {
            "ignored"
        } else {
            "not-taken"
        };
        out.push(TableAction {
            action: action.into(),
            table: s.table.clone(),
            files: 0,
            bytes: 0,
            detail: format!("category {}", s.category),
        });
    }
    out
}
