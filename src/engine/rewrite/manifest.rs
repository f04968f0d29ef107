//! Manifest lists and manifests: every file path, and the path bounds of position deletes.

use std::collections::HashMap;
use std::hash::BuildHasher;

use apache_avro::types::Value as AvroValue;
use iceberg::spec::{DataContentType, ManifestStatus};

use super::avro::{AvroFile, RecordContext, field_mut, union_inner};
use super::{DELETE_FILE_PATH_FIELD_ID, PathRewriter, RewriteError};

/// Content code of position delete files in `data_file.content`.
const POSITION_DELETES: i32 = 1;

/// Rewrites a manifest list (Avro, any format version): `manifest_path` of every entry is
/// moved to the target location, and `manifest_length` is set from `new_sizes` (keyed by the
/// new path) when it has the manifest, else kept. Everything else is kept as is.
///
/// # Errors
///
/// When the file is not a valid Avro container (or uses a codec not compiled in), a record
/// lacks `manifest_path` or `manifest_length`, or a manifest is outside the source location.
pub(crate) fn rewrite_manifest_list<S: BuildHasher>(
    avro: &[u8],
    rw: &PathRewriter,
    new_sizes: &HashMap<String, i64, S>,
) -> Result<Vec<u8>, RewriteError> {
    const FILE: &str = "manifest list";
    let mut list = AvroFile::read(avro, FILE)?;
    for (index, record) in list.records.iter_mut().enumerate() {
        let ctx = RecordContext { file: FILE, index };
        let (_, new_path) = ctx.rewrite_path(record, "manifest_path", rw)?;
        ctx.update_size(record, "manifest_length", &new_path, new_sizes)?;
    }
    list.write(FILE)
}

// ---------------------------------------------------------------------------------------------
// Manifests
// ---------------------------------------------------------------------------------------------

/// A file referenced by a manifest entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ManifestFileRef {
    /// The path as found in the manifest.
    pub old_path: String,
    /// The path written in the rewritten manifest.
    pub new_path: String,
    /// Data, position deletes or equality deletes.
    pub content: DataContentType,
    /// The file format as written in the manifest (`PARQUET`, `AVRO`, `ORC`, `PUFFIN`).
    pub file_format: String,
    /// Whether the entry was added, existing or deleted (a deleted entry's file may be gone).
    pub status: ManifestStatus,
    /// `file_size_in_bytes` as found in the manifest, before any update from `new_sizes`.
    pub file_size_in_bytes: i64,
}

/// Rewrites a manifest (Avro, any format version) and lists the files it references.
///
/// In every entry's `data_file`: `file_path` and `referenced_data_file` (when set) are moved
/// to the target location, `file_size_in_bytes` is set from `new_sizes` (keyed by the new
/// path) when it has the file, and, for position delete files, the `lower_bounds` and
/// `upper_bounds` of the `file_path` column (field id 2147483546) are moved too; a bound that
/// is not a path under the source location (e.g. truncated) is dropped rather than left wrong.
/// Everything else is kept as is.
///
/// # Errors
///
/// When the file is not a valid Avro container (or uses a codec not compiled in), an entry
/// lacks one of the fields above or has an invalid status or content, or a referenced file
/// is outside the source location.
pub(crate) fn rewrite_manifest<S: BuildHasher>(
    avro: &[u8],
    rw: &PathRewriter,
    new_sizes: &HashMap<String, i64, S>,
) -> Result<(Vec<u8>, Vec<ManifestFileRef>), RewriteError> {
    const FILE: &str = "manifest";
    let mut manifest = AvroFile::read(avro, FILE)?;
    let refs = manifest
        .records
        .iter_mut()
        .enumerate()
        .map(|(index, entry)| {
            rewrite_manifest_entry(RecordContext { file: FILE, index }, entry, rw, new_sizes)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((manifest.write(FILE)?, refs))
}

/// Rewrites one `manifest_entry` record.
fn rewrite_manifest_entry<S: BuildHasher>(
    ctx: RecordContext,
    entry: &mut AvroValue,
    rw: &PathRewriter,
    new_sizes: &HashMap<String, i64, S>,
) -> Result<ManifestFileRef, RewriteError> {
    let status = ctx.int_or(entry, "status", -1)?;
    let status = ManifestStatus::try_from(status)
        .map_err(|_| ctx.error("status", "is not a valid status"))?;
    let data_file =
        field_mut(entry, "data_file").ok_or_else(|| ctx.error("data_file", "is missing"))?;
    let content = ctx.int_or(data_file, "content", 0)?;
    let (old_path, new_path) = ctx.rewrite_path(data_file, "file_path", rw)?;
    let file_size_in_bytes =
        ctx.update_size(data_file, "file_size_in_bytes", &new_path, new_sizes)?;
    rewrite_referenced_data_file(ctx, data_file, rw)?;
    if content == POSITION_DELETES {
        for bounds in ["lower_bounds", "upper_bounds"] {
            if let Some(map) = field_mut(data_file, bounds) {
                rewrite_path_bounds(map, rw);
            }
        }
    }
    Ok(ManifestFileRef {
        old_path,
        new_path,
        content: DataContentType::try_from(content)
            .map_err(|_| ctx.error("data_file.content", "is not a valid content type"))?,
        file_format: file_format(ctx, data_file)?,
        status,
        file_size_in_bytes,
    })
}

/// Rewrites the optional `referenced_data_file` of a `data_file` record.
fn rewrite_referenced_data_file(
    ctx: RecordContext,
    data_file: &mut AvroValue,
    rw: &PathRewriter,
) -> Result<(), RewriteError> {
    match field_mut(data_file, "referenced_data_file") {
        None | Some(AvroValue::Null) => Ok(()),
        Some(AvroValue::String(path)) => {
            *path = rw.rewrite(path)?;
            Ok(())
        }
        Some(_) => Err(ctx.error("data_file.referenced_data_file", "is not a string")),
    }
}

/// The `file_format` of a `data_file` record.
pub(super) fn file_format(
    ctx: RecordContext,
    data_file: &mut AvroValue,
) -> Result<String, RewriteError> {
    match field_mut(data_file, "file_format") {
        Some(AvroValue::String(format) | AvroValue::Enum(_, format)) => Ok(format.clone()),
        _ => Err(ctx.error("data_file.file_format", "is missing or not a string")),
    }
}

/// Rewrites the `file_path` bounds of a bounds map, dropping those not under the source.
///
/// Iceberg writes maps with int keys as an array of `{key, value}` records; a real Avro map
/// (string keys) is handled too. Bounds are single-value serialized: UTF-8 for strings.
fn rewrite_path_bounds(bounds: &mut AvroValue, rw: &PathRewriter) {
    match bounds {
        AvroValue::Array(entries) => entries.retain_mut(|entry| {
            let is_path_key = matches!(
                field_mut(entry, "key"),
                Some(AvroValue::Int(DELETE_FILE_PATH_FIELD_ID))
            );
            !is_path_key || field_mut(entry, "value").is_some_and(|value| rewrite_bound(value, rw))
        }),
        AvroValue::Map(entries) => {
            let key = DELETE_FILE_PATH_FIELD_ID.to_string();
            if let Some(value) = entries.get_mut(&key)
                && !rewrite_bound(union_inner(value), rw)
            {
                entries.remove(&key);
            }
        }
        _ => {}
    }
}

/// Rewrites one serialized path bound in place; false when it cannot be (not a full path
/// under the source location), in which case it must be dropped.
fn rewrite_bound(value: &mut AvroValue, rw: &PathRewriter) -> bool {
    let AvroValue::Bytes(bytes) = value else {
        return false;
    };
    let Some(new) = std::str::from_utf8(bytes)
        .ok()
        .and_then(|path| rw.rewrite(path).ok())
    else {
        return false;
    };
    *bytes = new.into_bytes();
    true
}

// ---------------------------------------------------------------------------------------------
// Position delete files
// ---------------------------------------------------------------------------------------------
