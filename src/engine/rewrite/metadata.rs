//! The table metadata JSON: its location, snapshots' manifest lists, statistics and the
//! table properties that hold paths.

use std::collections::BTreeMap;

use super::{PathRewriter, RewriteError};
use serde_json::{Map as JsonMap, Value as JsonValue};

/// Table properties that may hold a path under the table location.
const PATH_PROPERTIES: [&str; 4] = [
    "write.data.path",
    "write.metadata.path",
    "write.object-storage.path",
    "write.folder-storage.path",
];

/// Rewrites the paths of a table metadata JSON file (format v1, v2 or v3).
///
/// Rewritten: `location`, every `snapshots[].manifest-list`, v1 `snapshots[].manifests[]`,
/// `statistics[].statistics-path`, `partition-statistics[].statistics-path`, and the path
/// properties (`write.data.path`, `write.metadata.path`, `write.object-storage.path`,
/// `write.folder-storage.path`) that lie under the source location. A path property outside
/// it is left as is and reported in the returned warnings. `metadata-log` is emptied (the
/// previous metadata files are not restored), `set_properties` are merged into `properties`
/// (after the rewrite, so they win), and `table-uuid` is replaced when `new_uuid` is given.
/// Every other field, known or not, is kept, in order; `last-updated-ms` is not touched.
///
/// # Errors
///
/// When the JSON is invalid, a field above does not have its expected type, or a path other
/// than a path property is outside the source location.
pub(crate) fn rewrite_table_metadata(
    json: &[u8],
    rw: &PathRewriter,
    set_properties: &BTreeMap<String, String>,
    new_uuid: Option<uuid::Uuid>,
) -> Result<(Vec<u8>, Vec<String>), RewriteError> {
    let mut doc: JsonValue = serde_json::from_slice(json)?;
    let root = doc
        .as_object_mut()
        .ok_or_else(|| metadata_error("(root)", "is not an object"))?;
    let location = root
        .get_mut("location")
        .ok_or_else(|| metadata_error("location", "is missing"))?;
    rewrite_json_path(location, rw, "location")?;
    rewrite_snapshots(root, rw)?;
    rewrite_statistics(root, "statistics", rw)?;
    rewrite_statistics(root, "partition-statistics", rw)?;
    let warnings = rewrite_properties(root, rw, set_properties)?;
    if let Some(log) = root.get_mut("metadata-log") {
        *log = JsonValue::Array(Vec::new());
    }
    if let Some(uuid) = new_uuid {
        root.insert("table-uuid".to_owned(), JsonValue::String(uuid.to_string()));
    }
    Ok((serde_json::to_vec(&doc)?, warnings))
}

/// Builds a [`RewriteError::MetadataField`].
fn metadata_error(field: impl Into<String>, problem: &'static str) -> RewriteError {
    RewriteError::MetadataField {
        field: field.into(),
        problem,
    }
}

/// Rewrites a JSON string holding a path; `field` names it in errors.
fn rewrite_json_path(
    value: &mut JsonValue,
    rw: &PathRewriter,
    field: &str,
) -> Result<(), RewriteError> {
    let path = value
        .as_str()
        .ok_or_else(|| metadata_error(field, "is not a string"))?;
    *value = JsonValue::String(rw.rewrite(path)?);
    Ok(())
}

/// The elements of the optional array `root[key]`.
fn json_array<'a>(
    root: &'a mut JsonMap<String, JsonValue>,
    key: &str,
) -> Result<&'a mut [JsonValue], RewriteError> {
    match root.get_mut(key) {
        None | Some(JsonValue::Null) => Ok(&mut []),
        Some(JsonValue::Array(items)) => Ok(items),
        Some(_) => Err(metadata_error(key, "is not an array")),
    }
}

/// Rewrites `manifest-list` and the v1 `manifests` of every snapshot.
fn rewrite_snapshots(
    root: &mut JsonMap<String, JsonValue>,
    rw: &PathRewriter,
) -> Result<(), RewriteError> {
    for (i, snapshot) in json_array(root, "snapshots")?.iter_mut().enumerate() {
        let snapshot = snapshot
            .as_object_mut()
            .ok_or_else(|| metadata_error(format!("snapshots[{i}]"), "is not an object"))?;
        if let Some(list) = snapshot.get_mut("manifest-list") {
            rewrite_json_path(list, rw, &format!("snapshots[{i}].manifest-list"))?;
        }
        for (j, manifest) in json_array(snapshot, "manifests")?.iter_mut().enumerate() {
            rewrite_json_path(manifest, rw, &format!("snapshots[{i}].manifests[{j}]"))?;
        }
    }
    Ok(())
}

/// Rewrites `statistics-path` of every entry of the statistics array `key`.
fn rewrite_statistics(
    root: &mut JsonMap<String, JsonValue>,
    key: &str,
    rw: &PathRewriter,
) -> Result<(), RewriteError> {
    for (i, entry) in json_array(root, key)?.iter_mut().enumerate() {
        let field = format!("{key}[{i}].statistics-path");
        let path = entry
            .get_mut("statistics-path")
            .ok_or_else(|| metadata_error(field.clone(), "is missing"))?;
        rewrite_json_path(path, rw, &field)?;
    }
    Ok(())
}

/// The path properties of a table metadata JSON (`write.data.path`, ...), where files may live
/// outside the table location.
#[must_use]
pub(crate) fn path_properties(json: &[u8]) -> Vec<String> {
    let doc: JsonValue = serde_json::from_slice(json).unwrap_or_default();
    PATH_PROPERTIES
        .iter()
        .filter_map(|key| {
            doc.get("properties")?
                .get(*key)?
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

/// Rewrites the path properties under the source location, then merges `set_properties`.
/// Returns a warning for each path property left unchanged.
fn rewrite_properties(
    root: &mut JsonMap<String, JsonValue>,
    rw: &PathRewriter,
    set_properties: &BTreeMap<String, String>,
) -> Result<Vec<String>, RewriteError> {
    if set_properties.is_empty() && !root.contains_key("properties") {
        return Ok(Vec::new());
    }
    let properties = root
        .entry("properties")
        .or_insert_with(|| JsonValue::Object(JsonMap::new()))
        .as_object_mut()
        .ok_or_else(|| metadata_error("properties", "is not an object"))?;
    let mut warnings = Vec::new();
    for key in PATH_PROPERTIES {
        let Some(value) = properties.get_mut(key) else {
            continue;
        };
        let field = format!("properties.{key}");
        let path = value
            .as_str()
            .ok_or_else(|| metadata_error(field, "is not a string"))?;
        if rw.is_under(path) {
            *value = JsonValue::String(rw.rewrite(path)?);
        } else {
            warnings.push(format!(
                "property {key} = {path} is outside the table location {}; left unchanged",
                rw.from
            ));
        }
    }
    for (key, value) in set_properties {
        properties.insert(key.clone(), JsonValue::String(value.clone()));
    }
    Ok(warnings)
}

// ---------------------------------------------------------------------------------------------
// Avro container files
// ---------------------------------------------------------------------------------------------
