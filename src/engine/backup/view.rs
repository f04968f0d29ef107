//! One view's backup: its current metadata file is all there is to keep (a view has no data
//! files, and its metadata holds every version), stored like a table's metadata with an empty
//! file list, so that gc, verify and restore find it where they find a table's.

use iceberg::TableIdent;
use serde_json::Value as JsonValue;

use super::table::{ObjectPlan, StorePlan, TableJob, carried};
use crate::engine::TableError;
use crate::engine::transfer::{maybe_gunzip, sha256_hex};
use crate::plan::BackupMode;
use crate::repo::layout;
use crate::repo::records::{
    Category, FORMAT_VERSION, FileList, ObjectKind, Status, TableName, TableRecord, TableState,
};

/// What bcn reads from a view's metadata file.
#[derive(Debug)]
pub(crate) struct ViewFacts {
    /// `view-uuid`.
    pub uuid: String,
    /// `format-version`.
    pub format_version: u8,
    /// `location`.
    pub location: String,
    /// The schema of the current version.
    pub schema_id: i32,
    /// Every schema id.
    pub schema_ids: Vec<i32>,
    /// Number of versions kept.
    pub versions: usize,
}

impl ViewFacts {
    /// Reads the facts of a view metadata file (gzipped or not).
    pub(crate) fn parse(raw: &[u8]) -> Result<Self, String> {
        let json = maybe_gunzip(raw).map_err(|e| e.to_string())?;
        let doc: JsonValue = serde_json::from_slice(&json).map_err(|e| e.to_string())?;
        let text = |field: &str| {
            doc.get(field)
                .and_then(JsonValue::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("view metadata has no `{field}`"))
        };
        let current = doc
            .get("current-version-id")
            .and_then(JsonValue::as_i64)
            .ok_or("view metadata has no `current-version-id`")?;
        let versions = doc
            .get("versions")
            .and_then(JsonValue::as_array)
            .ok_or("view metadata has no `versions`")?;
        let schema_id = versions
            .iter()
            .find(|v| v.get("version-id").and_then(JsonValue::as_i64) == Some(current))
            .and_then(|v| v.get("schema-id"))
            .and_then(JsonValue::as_i64)
            .and_then(|id| i32::try_from(id).ok())
            .ok_or("view metadata lacks its current version")?;
        let mut schema_ids: Vec<i32> = doc
            .get("schemas")
            .and_then(JsonValue::as_array)
            .map(|s| {
                s.iter()
                    .filter_map(|s| s.get("schema-id").and_then(JsonValue::as_i64))
                    .filter_map(|id| i32::try_from(id).ok())
                    .collect()
            })
            .unwrap_or_default();
        schema_ids.sort_unstable();
        Ok(Self {
            uuid: text("view-uuid")?,
            format_version: doc
                .get("format-version")
                .and_then(JsonValue::as_u64)
                .and_then(|v| u8::try_from(v).ok())
                .ok_or("view metadata has no `format-version`")?,
            location: text("location")?,
            schema_id,
            schema_ids,
            versions: versions.len(),
        })
    }
}

impl TableJob<'_> {
    /// Decides what this PIT does with a view; `None` for a view dropped since it was listed.
    pub(super) async fn plan_view(
        &self,
        ident: &TableIdent,
        name: &TableName,
        category: Category,
    ) -> Result<Option<ObjectPlan>, TableError> {
        let Some(entry) = self
            .catalog
            .load_view(ident)
            .await
            .map_err(|e| TableError::catalog(&e))?
        else {
            return Ok(None);
        };
        let metadata_location = entry.metadata_location;
        let raw = self
            .catalog
            .file_io
            .new_input(&metadata_location)
            .map_err(|e| TableError::io(&e))?
            .read()
            .await
            .map_err(|e| TableError::io(&e).context(format!("reading {metadata_location}")))?;
        let facts = ViewFacts::parse(&raw)
            .map_err(|e| TableError::Damaged(format!("reading {metadata_location}: {e}")))?;
        let key = layout::table_key(Some(&facts.uuid), &name.database, &name.name);
        let previous = self.parent_by_key.get(key.as_str()).copied();
        let renamed_from = previous.filter(|p| p.name != *name).map(|p| p.name.clone());
        let same = previous.is_some_and(|p| {
            p.stored_in.is_some()
                && p.state
                    .as_ref()
                    .is_some_and(|s| s.metadata_location == metadata_location)
        });
        let unchanged = same
            && (self.request.options.mode == BackupMode::Incremental)
            && previous.is_some_and(|p| !self.has_damage(&key, p.stored_in.as_deref()));
        if let Some(prev) = previous.filter(|_| unchanged) {
            let mut record = carried(prev, name, renamed_from);
            record.category = category;
            return Ok(Some(ObjectPlan::Carry(Box::new(record))));
        }
        let filelist = FileList {
            format_version: FORMAT_VERSION,
            table_key: key.clone(),
            pit: self.pit_id.to_owned(),
            location: facts.location.clone(),
            metadata_location: metadata_location.clone(),
            metadata_sha256: sha256_hex(&raw),
            current_snapshot_only: false,
            files: Vec::new(),
            parts: Vec::new(),
        };
        let record = TableRecord {
            name: name.clone(),
            key,
            kind: ObjectKind::View,
            uuid: Some(facts.uuid),
            category,
            status: match (&renamed_from, previous) {
                (Some(_), _) => Status::Renamed,
                (None, None) => Status::New,
                (None, Some(_)) if same => Status::Unchanged,
                (None, Some(_)) => Status::Changed,
            },
            previous_name: renamed_from,
            deleted_at: None,
            last_pit: None,
            error: None,
            stored_in: Some(self.pit_id.to_owned()),
            state: Some(TableState {
                format_version: facts.format_version,
                metadata_location,
                location: facts.location,
                current_snapshot_id: None,
                schema_id: facts.schema_id,
                schema_ids: facts.schema_ids,
                spec_id: 0,
                snapshots: facts.versions,
                records: None,
                files: 0,
                bytes: 0,
                files_added: 0,
                bytes_added: raw.len() as u64,
                files_server_side: 0,
            }),
        };
        Ok(Some(ObjectPlan::Store(Box::new(StorePlan {
            record,
            raw,
            filelist,
            files: None,
        }))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_a_view_record_needs() {
        let raw = br#"{"view-uuid":"fa6506c3-7681-40c8-86dc-e36561f83385","format-version":1,
            "location":"s3://b/wh/db/v","current-version-id":2,
            "versions":[{"version-id":1,"schema-id":0},{"version-id":2,"schema-id":1}],
            "version-log":[],"schemas":[{"schema-id":1},{"schema-id":0}]}"#;
        let facts = ViewFacts::parse(raw).unwrap();
        assert_eq!(facts.uuid, "fa6506c3-7681-40c8-86dc-e36561f83385");
        assert_eq!(facts.location, "s3://b/wh/db/v");
        assert_eq!((facts.schema_id, facts.versions), (1, 2));
        assert_eq!(facts.schema_ids, [0, 1]);
        let err = ViewFacts::parse(br#"{"format-version":1}"#).unwrap_err();
        assert!(err.contains("current-version-id"), "{err}");
    }
}
