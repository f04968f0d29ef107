//! Manifest lists and manifests: every file path, and the path bounds of position deletes.

use std::collections::HashMap;
use std::hash::BuildHasher;

use iceberg::spec::{DataContentType, ManifestStatus};

use super::avro::{
    Edits, Encoded, Fields, Malformed, RecordContext, read_records, rewrite_records, write_bytes,
    write_long,
};
use super::{DELETE_FILE_PATH_FIELD_ID, PathRewriter, RewriteError};

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
    rewrite_records(avro, "manifest list", |ctx, fields, edits| {
        let (_, new_path) = ctx.rewrite_path(&fields, "manifest_path", rw, edits)?;
        ctx.update_size(&fields, "manifest_length", &new_path, new_sizes, edits)?;
        Ok(())
    })
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
/// Everything else is kept byte for byte.
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
    let mut refs = Vec::new();
    let rewritten = rewrite_records(avro, "manifest", |ctx, entry, edits| {
        refs.push(rewrite_manifest_entry(ctx, &entry, rw, new_sizes, edits)?);
        Ok(())
    })?;
    Ok((rewritten, refs))
}

/// The files a manifest's live entries (added or existing, not deleted) reference: path,
/// content and the size the manifest records, read a record at a time without decoding the
/// records (a manifest decoded whole holds every entry's statistics at once).
///
/// # Errors
///
/// As [`rewrite_manifest`], for the fields read.
pub(crate) fn live_manifest_files(
    avro: &[u8],
) -> Result<Vec<(String, DataContentType, i64)>, RewriteError> {
    let mut files = Vec::new();
    read_records(avro, "manifest", |ctx, entry| {
        let (status, data_file, content) = entry_head(ctx, &entry)?;
        if status == ManifestStatus::Deleted {
            return Ok(());
        }
        let path = data_file
            .get("file_path")
            .and_then(Encoded::str)
            .ok_or_else(|| ctx.error("data_file.file_path", "is missing or not a string"))?;
        let size = data_file
            .get("file_size_in_bytes")
            .and_then(Encoded::long)
            .ok_or_else(|| ctx.error("data_file.file_size_in_bytes", "is missing or not a long"))?;
        files.push((path.to_owned(), content, size));
        Ok(())
    })?;
    Ok(files)
}

/// What every reader of a `manifest_entry` record needs first: its status, the fields of its
/// `data_file` and their content (format v1 has none: data).
fn entry_head<'a>(
    ctx: RecordContext,
    entry: &Fields<'a>,
) -> Result<(ManifestStatus, Fields<'a>, DataContentType), RewriteError> {
    let status = ManifestStatus::try_from(ctx.int_or(entry, "status", -1)?)
        .map_err(|_| ctx.error("status", "is not a valid status"))?;
    let data_file = entry
        .get("data_file")
        .ok_or_else(|| ctx.error("data_file", "is missing"))?;
    let data_file = ctx.fields(data_file)?;
    let content = DataContentType::try_from(ctx.int_or(&data_file, "content", 0)?)
        .map_err(|_| ctx.error("data_file.content", "is not a valid content type"))?;
    Ok((status, data_file, content))
}

/// Rewrites one `manifest_entry` record.
fn rewrite_manifest_entry<S: BuildHasher>(
    ctx: RecordContext,
    entry: &Fields<'_>,
    rw: &PathRewriter,
    new_sizes: &HashMap<String, i64, S>,
    edits: &mut Edits,
) -> Result<ManifestFileRef, RewriteError> {
    let (status, data_file, content) = entry_head(ctx, entry)?;
    let (old_path, new_path) = ctx.rewrite_path(&data_file, "file_path", rw, edits)?;
    let file_size_in_bytes = ctx.update_size(
        &data_file,
        "file_size_in_bytes",
        &new_path,
        new_sizes,
        edits,
    )?;
    rewrite_referenced_data_file(ctx, &data_file, rw, edits)?;
    if content == DataContentType::PositionDeletes {
        for bounds in ["lower_bounds", "upper_bounds"] {
            if let Some(map) = data_file.get(bounds) {
                rewrite_path_bounds(map, rw, edits).map_err(|problem| ctx.malformed(problem))?;
            }
        }
    }
    Ok(ManifestFileRef {
        old_path,
        new_path,
        content,
        file_format: file_format(ctx, &data_file)?,
        status,
        file_size_in_bytes,
    })
}

/// Rewrites the optional `referenced_data_file` of a `data_file` record.
fn rewrite_referenced_data_file(
    ctx: RecordContext,
    data_file: &Fields,
    rw: &PathRewriter,
    edits: &mut Edits,
) -> Result<(), RewriteError> {
    let Some(value) = data_file.get("referenced_data_file") else {
        return Ok(());
    };
    if value.is_null() {
        return Ok(());
    }
    let path = value
        .str()
        .ok_or_else(|| ctx.error("data_file.referenced_data_file", "is not a string"))?;
    edits.bytes(value, rw.rewrite(path)?.as_bytes());
    Ok(())
}

/// The `file_format` of a `data_file` record.
fn file_format(ctx: RecordContext, data_file: &Fields) -> Result<String, RewriteError> {
    data_file
        .get("file_format")
        .and_then(Encoded::str)
        .map(str::to_owned)
        .ok_or_else(|| ctx.error("data_file.file_format", "is missing or not a string"))
}

/// Rewrites the `file_path` bounds of a bounds map, dropping those not under the source.
///
/// Iceberg writes maps with int keys as an array of `{key, value}` records; a real Avro map
/// (string keys) is handled too. Bounds are single-value serialized: UTF-8 for strings. The
/// entries are written again as one block; nothing changes when there is no path bound.
fn rewrite_path_bounds(
    bounds: Encoded<'_>,
    rw: &PathRewriter,
    edits: &mut Edits,
) -> Result<(), Malformed> {
    let path_key = DELETE_FILE_PATH_FIELD_ID.to_string();
    let mut kept = Vec::new();
    let mut count = 0;
    let mut changed = false;
    for (key, entry) in bounds.entries()? {
        // The bound of the path column: its value, and the bytes of the entry around it.
        let value = match key {
            Some(key) if key.str() == Some(path_key.as_str()) => Some(entry.inner()?),
            Some(_) => None,
            None => {
                let fields = entry.fields()?;
                let is_path = fields.get("key").and_then(Encoded::long)
                    == Some(i64::from(DELETE_FILE_PATH_FIELD_ID));
                if is_path { fields.get("value") } else { None }
            }
        };
        let start = key.map_or(entry.range().start, |key| key.range().start);
        let whole = start..entry.range().end;
        let data = entry.block();
        match value {
            None => kept.extend_from_slice(&data[whole]),
            Some(value) => {
                changed = true;
                let new = value
                    .bytes()
                    .and_then(|bytes| std::str::from_utf8(bytes).ok())
                    .and_then(|path| rw.rewrite(path).ok());
                let Some(new) = new else {
                    continue; // dropped: not a whole path under the source
                };
                kept.extend_from_slice(&data[start..value.range().start]);
                write_bytes(&mut kept, new.as_bytes());
                kept.extend_from_slice(&data[value.range().end..whole.end]);
            }
        }
        count += 1;
    }
    if changed {
        let mut encoded = Vec::with_capacity(kept.len() + 4);
        if count > 0 {
            write_long(&mut encoded, count);
            encoded.extend_from_slice(&kept);
        }
        write_long(&mut encoded, 0);
        edits.replace(bounds, encoded);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Position delete files
// ---------------------------------------------------------------------------------------------
