//! Rewriting of absolute paths inside the files of an Iceberg table, for a restore to a
//! different location.
//!
//! Everything here works in memory: bytes in, bytes out. Four kinds of file hold absolute
//! paths: the table metadata JSON, manifest lists (Avro), manifests (Avro), position delete
//! files (Parquet) and deletion vectors (Puffin, see [`puffin`]). Data files and statistics
//! (Puffin) files are copied verbatim.
//!
//! Avro files are rewritten generically, value by value, so that fields this code does not
//! know about survive. The header of the input (writer schema JSON, codec, user metadata and
//! sync marker) is copied byte for byte and only the data blocks are encoded again, with the
//! same codec. The values are decoded with the *physical* form of the writer schema (logical
//! types removed): apache-avro 0.21 decodes a `fixed(16)` with logical type `uuid` as if it
//! were a length-prefixed string, which would corrupt manifests of tables partitioned by a
//! `uuid` column, and a physical decode keeps every value exactly as written.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::io::Cursor;
use std::str::FromStr;
use std::sync::Arc;

use apache_avro::types::Value as AvroValue;
use apache_avro::{Codec, Reader as AvroReader, Schema as AvroSchema, Writer as AvroWriter};
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, LargeStringArray, RecordBatch, StringArray, StringViewArray};
use arrow_schema::{DataType, Schema as ArrowSchema};
use bytes::Bytes;
use iceberg::spec::{DataContentType, ManifestStatus};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::properties::WriterProperties;
use serde_json::{Map as JsonMap, Value as JsonValue};

pub mod puffin;

pub use puffin::{is_puffin, rewrite_deletion_vectors};

/// Field id of the `file_path` column of position delete files, also the key of its bounds
/// in manifests.
pub const DELETE_FILE_PATH_FIELD_ID: i32 = 2_147_483_546;

/// Table properties that may hold a path under the table location.
const PATH_PROPERTIES: [&str; 4] = [
    "write.data.path",
    "write.metadata.path",
    "write.object-storage.path",
    "write.folder-storage.path",
];

/// Content code of position delete files in `data_file.content`.
const POSITION_DELETES: i32 = 1;

/// Avro object container magic bytes.
const AVRO_MAGIC: &[u8; 4] = b"Obj\x01";

/// Length of the sync marker that ends the Avro header and every data block.
const AVRO_MARKER_LEN: usize = 16;

/// An error while rewriting the paths of a table file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RewriteError {
    /// A path does not lie under the source table location.
    #[error("path {path} is outside the table location {location}")]
    OutsideLocation {
        /// The path found in the file.
        path: String,
        /// The source table location.
        location: String,
    },
    /// The table metadata is not valid JSON, or could not be serialized again.
    #[error("parsing table metadata json: {0}")]
    MetadataJson(#[from] serde_json::Error),
    /// A field of the table metadata does not have the expected type.
    #[error("table metadata field {field} {problem}")]
    MetadataField {
        /// Where the field is, e.g. `snapshots[2].manifest-list`.
        field: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// An Avro file could not be decoded.
    #[error("reading avro {file}: {source}")]
    AvroRead {
        /// `manifest` or `manifest list`.
        file: &'static str,
        /// The decoding error.
        #[source]
        source: apache_avro::Error,
    },
    /// The header of an Avro file is malformed or uses an unsupported codec.
    #[error("reading avro {file} header: {problem}")]
    AvroHeader {
        /// `manifest` or `manifest list`.
        file: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// An Avro record lacks a field, or the field does not have the expected type.
    #[error("avro {file} record {index}: field {field} {problem}")]
    AvroField {
        /// `manifest` or `manifest list`.
        file: &'static str,
        /// Index of the record in the file, from 0.
        index: usize,
        /// Name of the field, e.g. `data_file.file_path`.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// An Avro file could not be encoded again.
    #[error("writing avro {file}: {source}")]
    AvroWrite {
        /// `manifest` or `manifest list`.
        file: &'static str,
        /// The encoding error.
        #[source]
        source: apache_avro::Error,
    },
    /// A position delete file could not be read.
    #[error("reading parquet position delete file: {0}")]
    ParquetRead(#[source] ParquetError),
    /// A position delete file could not be written.
    #[error("writing parquet position delete file: {0}")]
    ParquetWrite(#[source] ParquetError),
    /// A position delete file has no usable `file_path` column.
    #[error("parquet position delete file: column file_path {problem}")]
    DeleteFilePathColumn {
        /// What is wrong with it.
        problem: String,
    },
    /// A deletion-vector (Puffin) file is malformed or cannot be rewritten.
    #[error("puffin deletion vector file: {problem}")]
    Puffin {
        /// What is wrong with it.
        problem: String,
    },
}

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

/// Moves paths from one table location to another.
///
/// Matching is done on a normalized form: `file:/x`, `file:///x`, `file://localhost/x` and `/x`
/// are the same location, `s3a://` and `s3n://` are `s3://`, and scheme case does not matter.
/// The rewritten path always starts with the target location exactly as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRewriter {
    /// The source location as given, for messages.
    from: String,
    /// The normalized source location, without trailing slash.
    from_normalized: String,
    /// The target location as given, without trailing slash.
    to: String,
    /// The normalized target location, without trailing slash.
    to_normalized: String,
    /// Roots outside the source location (`write.data.path`, files added from elsewhere):
    /// each normalized source root with its target, `<to>/_external/<n>`.
    external: Vec<(String, String)>,
    /// Every path stays where it is (`restore --original-location`).
    in_place: bool,
}

/// One root of a table's files and where a restore puts it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RootMapping {
    /// The source root.
    pub from: String,
    /// Its place in the restored table.
    pub to: String,
}

impl PathRewriter {
    /// Creates a rewriter from the source table location `from` to the target table location
    /// `to` (any URL form: `file:///..`, `file:/..`, `/..`, `s3://..`, `s3a://..`).
    #[must_use]
    pub fn new(from: &str, to: &str) -> Self {
        let to = to.trim_end_matches('/');
        Self {
            from: from.to_owned(),
            from_normalized: normalize(from).trim_end_matches('/').to_owned(),
            to: to.to_owned(),
            to_normalized: normalize(to).trim_end_matches('/').to_owned(),
            external: Vec::new(),
            in_place: false,
        }
    }

    /// A rewriter that keeps every path as it is, inside the location or not (in-place
    /// recovery); only paths that could climb (`..`) out of the location, or anywhere when
    /// outside it, are refused.
    #[must_use]
    pub fn in_place(location: &str) -> Self {
        let mut rw = Self::new(location, location);
        rw.in_place = true;
        rw
    }

    /// A rewriter that also maps files outside the source location: each root of `paths` that
    /// is not under it — one of `roots` (the table's `write.data.path` and friends) when the
    /// file lies there, else the file's directory — goes to `<to>/_external/<n>`, numbered in
    /// sorted order so that every restore of the table maps it alike.
    #[must_use]
    pub fn with_external<'a>(
        from: &str,
        to: &str,
        roots: &[String],
        paths: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut rw = Self::new(from, to);
        let roots: Vec<String> = roots
            .iter()
            .map(|r| normalize(r).trim_end_matches('/').to_owned())
            .filter(|r| !r.is_empty() && !rw.is_under(r))
            .collect();
        let mut external: Vec<String> = Vec::new();
        for path in paths {
            // A path that could climb (`..`) gets no root: it stays unmapped and its rewrite
            // fails, so a tampered path is refused rather than placed.
            let tail = split_scheme(path).map_or(path, |(_, rest)| rest);
            if rw.is_under(path) || crate::names::may_escape(tail) {
                continue;
            }
            let normalized = normalize(path);
            let root = roots
                .iter()
                .filter(|r| {
                    normalized
                        .strip_prefix(r.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
                })
                .max_by_key(|r| r.len())
                .cloned()
                .or_else(|| normalized.rsplit_once('/').map(|(dir, _)| dir.to_owned()));
            if let Some(root) = root
                && !external.contains(&root)
            {
                external.push(root);
            }
        }
        external.sort();
        let to = rw.to.clone();
        rw.external = external
            .into_iter()
            .enumerate()
            .map(|(n, root)| (root, format!("{to}/_external/{n}")))
            .collect();
        rw
    }

    /// A rewriter with the external roots a restore plan decided ([`PathRewriter::external_roots`]).
    #[must_use]
    pub fn with_roots(from: &str, to: &str, roots: &[RootMapping]) -> Self {
        let mut rw = Self::new(from, to);
        rw.external = roots
            .iter()
            .map(|m| {
                (
                    normalize(&m.from).trim_end_matches('/').to_owned(),
                    m.to.clone(),
                )
            })
            .collect();
        rw
    }

    /// The roots outside the source location and where they go, for `restore --dry-run`.
    #[must_use]
    pub fn external_roots(&self) -> Vec<RootMapping> {
        self.external
            .iter()
            .map(|(from, to)| RootMapping {
                from: from.clone(),
                to: to.clone(),
            })
            .collect()
    }

    /// Rewrites `path`, which must lie under the source location, to the same place under the
    /// target location.
    ///
    /// # Errors
    ///
    /// [`RewriteError::OutsideLocation`] when `path` is not under the source location.
    pub fn rewrite(&self, path: &str) -> Result<String, RewriteError> {
        if self.in_place {
            // Under the recorded location, only the tail after it is checked (a location may
            // itself hold `..`: pyiceberg makes `<wh>/db/../../x` for a table named `../../x`);
            // a file outside it must not climb at all.
            if self.relative(path).is_some() {
                return Ok(path.to_owned());
            }
            let rest = split_scheme(path).map_or(path, |(_, rest)| rest);
            return if crate::names::may_escape(rest) {
                Err(RewriteError::OutsideLocation {
                    path: path.to_owned(),
                    location: self.from.clone(),
                })
            } else {
                Ok(path.to_owned())
            };
        }
        if let Some(rest) = self.relative(path) {
            return Ok(format!("{}{rest}", self.to));
        }
        let normalized = normalize(path);
        self.external
            .iter()
            .find_map(|(root, to)| {
                let rest = normalized.strip_prefix(root.as_str())?;
                ((rest.is_empty() || rest.starts_with('/')) && !crate::names::may_escape(rest))
                    .then(|| format!("{to}{rest}"))
            })
            .ok_or_else(|| RewriteError::OutsideLocation {
                path: path.to_owned(),
                location: self.from.clone(),
            })
    }

    /// Whether `path` lies under (or is) the source location or one of its external roots.
    #[must_use]
    pub fn is_under(&self, path: &str) -> bool {
        self.in_place
            || self.relative(path).is_some()
            || (!self.external.is_empty() && self.rewrite(path).is_ok())
    }

    /// Whether source and target are the same location and no external root is mapped, so
    /// that nothing needs rewriting.
    #[must_use]
    pub fn is_identity(&self) -> bool {
        self.from_normalized == self.to_normalized && self.external.is_empty()
    }

    /// The part of `path` after the source location: empty or starting with `/`. A tail that
    /// could climb out of the location (`/../x`, `/%2e%2e/x`) is not under it: a damaged or
    /// tampered path never becomes a target outside the restored table's location.
    fn relative(&self, path: &str) -> Option<String> {
        let normalized = normalize(path);
        let rest = normalized.strip_prefix(&self.from_normalized)?;
        ((rest.is_empty() || rest.starts_with('/')) && !crate::names::may_escape(rest))
            .then(|| rest.to_owned())
    }
}

/// Normalizes the scheme part of a path (see [`PathRewriter`]); the rest is kept as is.
fn normalize(path: &str) -> String {
    let Some((scheme, rest)) = split_scheme(path) else {
        return path.to_owned();
    };
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "file" => normalize_file(rest),
        "s3" | "s3a" | "s3n" => format!("s3:{rest}"),
        _ => format!("{scheme}:{rest}"),
    }
}

/// The local path of the part after `file:`, or `file:` and that part when it names a host.
fn normalize_file(rest: &str) -> String {
    if let Some(local) = rest.strip_prefix("//localhost/") {
        return format!("/{local}");
    }
    match rest.strip_prefix("//") {
        Some(after) if after.starts_with('/') => after.to_owned(),
        Some(_) => format!("file:{rest}"),
        None => rest.to_owned(),
    }
}

/// Splits `scheme:rest` when `path` starts with a URL scheme of at least two characters (so
/// that a Windows drive letter is not taken for one).
fn split_scheme(path: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = path.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = scheme.len() > 1
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some((scheme, rest))
}

// ---------------------------------------------------------------------------------------------
// Table metadata JSON
// ---------------------------------------------------------------------------------------------

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
pub fn rewrite_table_metadata(
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
pub fn path_properties(json: &[u8]) -> Vec<String> {
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

/// The parts of an Avro object container file header that rewriting needs.
struct AvroHeader {
    /// Length of the header in bytes (magic, metadata map and sync marker).
    len: usize,
    /// The header metadata map.
    metadata: HashMap<String, AvroValue>,
}

/// Decodes the header of an Avro object container file.
fn parse_avro_header(avro: &[u8], file: &'static str) -> Result<AvroHeader, RewriteError> {
    let header_error = |problem: String| RewriteError::AvroHeader { file, problem };
    let body = avro
        .strip_prefix(AVRO_MAGIC)
        .ok_or_else(|| header_error("not an avro object container file".to_owned()))?;
    let mut cursor = Cursor::new(body);
    let map = apache_avro::from_avro_datum(&AvroSchema::map(AvroSchema::Bytes), &mut cursor, None)
        .map_err(|source| RewriteError::AvroRead { file, source })?;
    let AvroValue::Map(metadata) = map else {
        return Err(header_error("metadata is not a map".to_owned()));
    };
    let consumed =
        usize::try_from(cursor.position()).map_err(|_| header_error("too large".to_owned()))?;
    let len = AVRO_MAGIC.len() + consumed + AVRO_MARKER_LEN;
    if len > avro.len() {
        return Err(header_error("truncated sync marker".to_owned()));
    }
    Ok(AvroHeader { len, metadata })
}

/// The bytes of header metadata entry `key`, if any.
fn header_bytes<'a>(header: &'a AvroHeader, key: &str) -> Option<&'a [u8]> {
    match header.metadata.get(key) {
        Some(AvroValue::Bytes(bytes)) => Some(bytes),
        _ => None,
    }
}

/// The codec named in the header, with its compression level when one is recorded.
fn avro_codec(header: &AvroHeader, file: &'static str) -> Result<Codec, RewriteError> {
    let header_error = |problem: String| RewriteError::AvroHeader { file, problem };
    let name = header_bytes(header, "avro.codec").unwrap_or(b"null");
    let name = std::str::from_utf8(name)
        .map_err(|_| header_error("codec name is not utf-8".to_owned()))?;
    let codec =
        Codec::from_str(name).map_err(|_| header_error(format!("unsupported codec {name}")))?;
    let level = header_bytes(header, "avro.codec.compression_level").and_then(<[u8]>::first);
    Ok(match (codec, level) {
        (Codec::Zstandard(_), Some(&level)) => {
            Codec::Zstandard(apache_avro::ZstandardSettings::new(level))
        }
        _ => codec,
    })
}

/// The writer schema of the file with every logical type removed (see the module docs), parsed
/// and as JSON text.
fn physical_schema(
    header: &AvroHeader,
    file: &'static str,
) -> Result<(AvroSchema, String), RewriteError> {
    let header_error = |problem: String| RewriteError::AvroHeader { file, problem };
    let json = header_bytes(header, "avro.schema")
        .ok_or_else(|| header_error("no avro.schema".to_owned()))?;
    let mut schema: JsonValue = serde_json::from_slice(json)
        .map_err(|e| header_error(format!("schema is not json: {e}")))?;
    strip_logical_types(&mut schema);
    let parsed =
        AvroSchema::parse(&schema).map_err(|source| RewriteError::AvroRead { file, source })?;
    Ok((parsed, schema.to_string()))
}

/// Removes every `logicalType` attribute from an Avro schema in JSON form (default values,
/// which are data, are left alone).
fn strip_logical_types(schema: &mut JsonValue) {
    match schema {
        JsonValue::Object(map) => {
            map.remove("logicalType");
            map.iter_mut()
                .filter(|(key, _)| key.as_str() != "default")
                .for_each(|(_, value)| strip_logical_types(value));
        }
        JsonValue::Array(items) => items.iter_mut().for_each(strip_logical_types),
        _ => {}
    }
}

/// A decoded Avro container file, ready to be encoded again with its own header.
struct AvroFile<'a> {
    /// The input bytes.
    bytes: &'a [u8],
    /// The parsed header.
    header: AvroHeader,
    /// The physical writer schema.
    schema: AvroSchema,
    /// The records.
    records: Vec<AvroValue>,
}

impl<'a> AvroFile<'a> {
    /// Decodes every record of `bytes` with the physical form of its writer schema.
    fn read(bytes: &'a [u8], file: &'static str) -> Result<Self, RewriteError> {
        let header = parse_avro_header(bytes, file)?;
        let (schema, schema_json) = physical_schema(&header, file)?;
        let physical = Self::with_header_schema(bytes, &header, schema_json, file)?;
        let read_error = |source| RewriteError::AvroRead { file, source };
        let records = AvroReader::new(physical.as_slice())
            .map_err(read_error)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(read_error)?;
        Ok(Self {
            bytes,
            header,
            schema,
            records,
        })
    }

    /// A copy of `bytes` whose header declares `schema` instead of the original writer schema.
    fn with_header_schema(
        bytes: &[u8],
        header: &AvroHeader,
        schema_json: String,
        file: &'static str,
    ) -> Result<Vec<u8>, RewriteError> {
        let mut metadata = header.metadata.clone();
        metadata.insert(
            "avro.schema".to_owned(),
            AvroValue::Bytes(schema_json.into_bytes()),
        );
        let map = apache_avro::to_avro_datum(
            &AvroSchema::map(AvroSchema::Bytes),
            AvroValue::Map(metadata),
        )
        .map_err(|source| RewriteError::AvroRead { file, source })?;
        let marker_start = header.len - AVRO_MARKER_LEN;
        Ok([AVRO_MAGIC.as_slice(), &map, &bytes[marker_start..]].concat())
    }

    /// Encodes the records again after the original header, with the original codec and
    /// sync marker.
    fn write(&self, file: &'static str) -> Result<Vec<u8>, RewriteError> {
        let codec = avro_codec(&self.header, file)?;
        let mut marker = [0u8; AVRO_MARKER_LEN];
        marker.copy_from_slice(&self.bytes[self.header.len - AVRO_MARKER_LEN..self.header.len]);
        let out = self.bytes[..self.header.len].to_vec();
        let mut writer = AvroWriter::append_to_with_codec(&self.schema, out, codec, marker);
        let write_error = |source| RewriteError::AvroWrite { file, source };
        for record in &self.records {
            writer.append_value_ref(record).map_err(write_error)?;
        }
        writer.into_inner().map_err(write_error)
    }
}

/// The value of field `name` of a record, looking through a union.
fn field_mut<'v>(record: &'v mut AvroValue, name: &str) -> Option<&'v mut AvroValue> {
    let AvroValue::Record(fields) = record else {
        return None;
    };
    let (_, value) = fields.iter_mut().find(|(field, _)| field == name)?;
    Some(union_inner(value))
}

/// The value inside a union (a non-union value is returned as is).
fn union_inner(value: &mut AvroValue) -> &mut AvroValue {
    match value {
        AvroValue::Union(_, inner) => union_inner(inner.as_mut()),
        other => other,
    }
}

/// Locates problems in one record of an Avro file.
#[derive(Clone, Copy)]
struct RecordContext {
    /// `manifest` or `manifest list`.
    file: &'static str,
    /// Index of the record.
    index: usize,
}

impl RecordContext {
    /// Builds a [`RewriteError::AvroField`] for this record.
    fn error(self, field: &'static str, problem: &'static str) -> RewriteError {
        RewriteError::AvroField {
            file: self.file,
            index: self.index,
            field,
            problem,
        }
    }

    /// Rewrites the required string field `name` of `record` and returns (old, new) paths.
    fn rewrite_path(
        self,
        record: &mut AvroValue,
        name: &'static str,
        rw: &PathRewriter,
    ) -> Result<(String, String), RewriteError> {
        let value = field_mut(record, name).ok_or_else(|| self.error(name, "is missing"))?;
        let AvroValue::String(path) = value else {
            return Err(self.error(name, "is not a string"));
        };
        let new = rw.rewrite(path)?;
        let old = std::mem::replace(path, new.clone());
        Ok((old, new))
    }

    /// Sets the long field `name` of `record` to `size` when `new_sizes` has one for `path`;
    /// returns the value the field had.
    fn update_size<S: BuildHasher>(
        self,
        record: &mut AvroValue,
        name: &'static str,
        path: &str,
        new_sizes: &HashMap<String, i64, S>,
    ) -> Result<i64, RewriteError> {
        let value = field_mut(record, name).ok_or_else(|| self.error(name, "is missing"))?;
        let AvroValue::Long(size) = value else {
            return Err(self.error(name, "is not a long"));
        };
        let old = *size;
        if let Some(&new) = new_sizes.get(path) {
            *size = new;
        }
        Ok(old)
    }

    /// The int field `name` of `record`, or `default` when the record has no such field.
    fn int_or(
        self,
        record: &mut AvroValue,
        name: &'static str,
        default: i32,
    ) -> Result<i32, RewriteError> {
        match field_mut(record, name) {
            None => Ok(default),
            Some(AvroValue::Int(value)) => Ok(*value),
            Some(_) => Err(self.error(name, "is not an int")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Manifest lists
// ---------------------------------------------------------------------------------------------

/// Rewrites a manifest list (Avro, any format version): `manifest_path` of every entry is
/// moved to the target location, and `manifest_length` is set from `new_sizes` (keyed by the
/// new path) when it has the manifest, else kept. Everything else is kept as is.
///
/// # Errors
///
/// When the file is not a valid Avro container (or uses a codec not compiled in), a record
/// lacks `manifest_path` or `manifest_length`, or a manifest is outside the source location.
pub fn rewrite_manifest_list<S: BuildHasher>(
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
pub struct ManifestFileRef {
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
pub fn rewrite_manifest<S: BuildHasher>(
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
fn file_format(ctx: RecordContext, data_file: &mut AvroValue) -> Result<String, RewriteError> {
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

/// Rewrites the `file_path` column (field id 2147483546, else the column named `file_path`)
/// of a position delete Parquet file, value by value.
///
/// Every other column, the Parquet schema (with field ids), the key-value metadata and the
/// compression codec of each column are kept, and so are the row group boundaries.
///
/// # Errors
///
/// When the file cannot be read, has no string `file_path` column, or holds a path outside
/// the source location.
pub fn rewrite_position_delete_file(
    parquet: impl Into<Bytes>,
    rw: &PathRewriter,
) -> Result<Vec<u8>, RewriteError> {
    let parquet: Bytes = parquet.into();
    let reader_metadata = ArrowReaderMetadata::load(&parquet, ArrowReaderOptions::new())
        .map_err(RewriteError::ParquetRead)?;
    let schema = Arc::clone(reader_metadata.schema());
    let column = file_path_column(&schema)?;
    let metadata = Arc::clone(reader_metadata.metadata());
    let options = ArrowWriterOptions::new()
        .with_properties(writer_properties(&metadata))
        .with_skip_arrow_metadata(true)
        .with_parquet_schema(metadata.file_metadata().schema_descr().clone());
    let mut writer = ArrowWriter::try_new_with_options(Vec::new(), Arc::clone(&schema), options)
        .map_err(RewriteError::ParquetWrite)?;
    for row_group in 0..metadata.num_row_groups() {
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(
            parquet.clone(),
            reader_metadata.clone(),
        )
        .with_row_groups(vec![row_group])
        .build()
        .map_err(RewriteError::ParquetRead)?;
        for batch in reader {
            let batch = batch.map_err(|e| RewriteError::ParquetRead(e.into()))?;
            let batch = rewrite_batch(&batch, column, rw)?;
            writer.write(&batch).map_err(RewriteError::ParquetWrite)?;
        }
        writer.flush().map_err(RewriteError::ParquetWrite)?;
    }
    writer.into_inner().map_err(RewriteError::ParquetWrite)
}

/// Index of the `file_path` column: by field id, else by name.
fn file_path_column(schema: &ArrowSchema) -> Result<usize, RewriteError> {
    let id = DELETE_FILE_PATH_FIELD_ID.to_string();
    let fields = schema.fields();
    fields
        .iter()
        .position(|field| field.metadata().get("PARQUET:field_id") == Some(&id))
        .or_else(|| fields.iter().position(|field| field.name() == "file_path"))
        .ok_or_else(|| RewriteError::DeleteFilePathColumn {
            problem: "is missing (no field id 2147483546)".to_owned(),
        })
}

/// Writer properties that keep the key-value metadata and per-column compression of the input
/// and never split a row group.
fn writer_properties(metadata: &ParquetMetaData) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_key_value_metadata(metadata.file_metadata().key_value_metadata().cloned())
        .set_max_row_group_row_count(None)
        .set_max_row_group_bytes(None);
    if let Some(row_group) = metadata.row_groups().first() {
        for column in row_group.columns() {
            builder =
                builder.set_column_compression(column.column_path().clone(), column.compression());
        }
    }
    builder.build()
}

/// A copy of `batch` with column `column` rewritten.
fn rewrite_batch(
    batch: &RecordBatch,
    column: usize,
    rw: &PathRewriter,
) -> Result<RecordBatch, RewriteError> {
    let mut columns = batch.columns().to_vec();
    columns[column] = rewrite_path_array(&columns[column], rw)?;
    RecordBatch::try_new(batch.schema(), columns)
        .map_err(|e| RewriteError::ParquetWrite(ParquetError::ArrowError(e.to_string())))
}

/// Rewrites every path of a string array, keeping nulls and the array type.
fn rewrite_path_array(array: &ArrayRef, rw: &PathRewriter) -> Result<ArrayRef, RewriteError> {
    let rewrite = |path: Option<&str>| path.map(|path| rw.rewrite(path)).transpose();
    Ok(match array.data_type() {
        DataType::Utf8 => Arc::new(
            array
                .as_string::<i32>()
                .iter()
                .map(rewrite)
                .collect::<Result<StringArray, _>>()?,
        ),
        DataType::LargeUtf8 => Arc::new(
            array
                .as_string::<i64>()
                .iter()
                .map(rewrite)
                .collect::<Result<LargeStringArray, _>>()?,
        ),
        DataType::Utf8View => Arc::new(
            array
                .as_string_view()
                .iter()
                .map(rewrite)
                .collect::<Result<StringViewArray, _>>()?,
        ),
        other => {
            return Err(RewriteError::DeleteFilePathColumn {
                problem: format!("has type {other}, not a string"),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::Arc;

    use apache_avro::types::Value as AvroValue;
    use apache_avro::{Codec, Reader as AvroReader, Schema as AvroSchema, Writer as AvroWriter};
    use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema as ArrowSchema};
    use bytes::Bytes;
    use iceberg::io::FileIO;
    use iceberg::spec::{
        DataContentType, DataFile, DataFileBuilder, DataFileFormat, Datum, FormatVersion, Literal,
        Manifest, ManifestContentType, ManifestFile, ManifestList, ManifestListWriter,
        ManifestStatus, ManifestWriterBuilder, NestedField, PartitionSpec, PrimitiveType, Schema,
        Struct, TableMetadata, Transform, Type,
    };
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::metadata::KeyValue;
    use parquet::file::properties::WriterProperties;
    use serde_json::json;

    use super::{
        AvroFile, DELETE_FILE_PATH_FIELD_ID, ManifestFileRef, PathRewriter, RewriteError,
        parse_avro_header, rewrite_manifest, rewrite_manifest_list, rewrite_position_delete_file,
        rewrite_table_metadata,
    };

    const OLD: &str = "s3a://old-bucket/wh/db/t";
    const NEW: &str = "s3://new-bucket/restored/t";
    const SNAPSHOT_ID: i64 = 3_051_729_675_574_597_004;

    fn rewriter() -> PathRewriter {
        PathRewriter::new(OLD, NEW)
    }

    // ---- PathRewriter -------------------------------------------------------------------

    #[test]
    fn file_url_forms_are_one_location() {
        for from in [
            "file:/data/wh/t",
            "file:///data/wh/t",
            "/data/wh/t",
            "file:///data/wh/t/",
        ] {
            let rw = PathRewriter::new(from, "file:///restore/t2");
            for path in [
                "file:/data/wh/t/data/a.parquet",
                "file:///data/wh/t/data/a.parquet",
                "/data/wh/t/data/a.parquet",
                "file://localhost/data/wh/t/data/a.parquet",
            ] {
                assert_eq!(
                    rw.rewrite(path).unwrap(),
                    "file:///restore/t2/data/a.parquet",
                    "{from} {path}"
                );
            }
        }
    }

    #[test]
    fn output_keeps_the_target_form() {
        let rw = PathRewriter::new("file:///data/wh/t", "file:/restore/t2/");
        assert_eq!(
            rw.rewrite("/data/wh/t/m.avro").unwrap(),
            "file:/restore/t2/m.avro"
        );
        let rw = PathRewriter::new("file:///data/wh/t", "/restore/t2");
        assert_eq!(
            rw.rewrite("file:/data/wh/t/m.avro").unwrap(),
            "/restore/t2/m.avro"
        );
        let rw = PathRewriter::new("s3://b/t", "s3a://c/u");
        assert_eq!(rw.rewrite("s3://b/t/m.avro").unwrap(), "s3a://c/u/m.avro");
    }

    #[test]
    fn s3a_and_s3n_match_s3() {
        let rw = PathRewriter::new("s3a://bucket/wh/t", "s3://other/t");
        for path in [
            "s3://bucket/wh/t/x",
            "s3a://bucket/wh/t/x",
            "s3n://bucket/wh/t/x",
            "S3A://bucket/wh/t/x",
        ] {
            assert_eq!(rw.rewrite(path).unwrap(), "s3://other/t/x", "{path}");
        }
        assert_eq!(rw.rewrite("s3://bucket/wh/t").unwrap(), "s3://other/t");
    }

    #[test]
    fn files_outside_the_location_map_under_external_roots() {
        let paths = [
            "file:///wh/t/data/a.parquet",
            "file:///elsewhere/data/cat=1/b.parquet",
            "file:///elsewhere/data/cat=2/c.parquet",
            "file:///imported/d.parquet",
            "file:///wh/t/../../../etc/e.parquet",
        ];
        let rw = PathRewriter::with_external(
            "file:///wh/t",
            "file:///new/t",
            &["file:///elsewhere/data".to_owned()],
            paths,
        );
        let roots: Vec<(String, String)> = rw
            .external_roots()
            .into_iter()
            .map(|m| (m.from, m.to))
            .collect();
        assert_eq!(
            roots,
            [
                (
                    "/elsewhere/data".to_owned(),
                    "file:///new/t/_external/0".to_owned()
                ),
                (
                    "/imported".to_owned(),
                    "file:///new/t/_external/1".to_owned()
                ),
            ]
        );
        assert_eq!(
            rw.rewrite(paths[2]).unwrap(),
            "file:///new/t/_external/0/cat=2/c.parquet"
        );
        assert_eq!(
            rw.rewrite("file:///elsewhere/data").unwrap(),
            "file:///new/t/_external/0",
            "the path property follows its root"
        );
        assert!(
            rw.rewrite(paths[4]).is_err(),
            "a climbing path gets no root"
        );
        let same = PathRewriter::with_roots("file:///wh/t", "file:///new/t", &rw.external_roots());
        assert_eq!(
            same.rewrite(paths[3]).unwrap(),
            rw.rewrite(paths[3]).unwrap()
        );
        let in_place = PathRewriter::in_place("file:///wh/t");
        assert_eq!(in_place.rewrite(paths[3]).unwrap(), paths[3]);
        assert!(in_place.rewrite(paths[4]).is_err());
    }

    #[test]
    fn a_path_that_climbs_out_is_never_rewritten() {
        let rw = PathRewriter::new("file:///data/wh/t", "file:///restore/t2");
        for path in [
            "file:///data/wh/t/../../../etc/cron.d/x",
            "file:///data/wh/t/data/%2e%2e/%2e%2e/x",
            "file:///data/wh/t/data/a%2F..%2F..%2Fx",
            "file:///data/wh/t/./x",
        ] {
            assert!(
                matches!(rw.rewrite(path), Err(RewriteError::OutsideLocation { .. })),
                "{path}"
            );
        }
        // A source location that itself holds `..` (pyiceberg names a table `../x` so) is
        // matched as written; only the tail after it is checked.
        let rw = PathRewriter::new("file:///wh/db.db/../../x", "file:///restore/db/safe");
        assert_eq!(
            rw.rewrite("file:///wh/db.db/../../x/data/a.parquet")
                .unwrap(),
            "file:///restore/db/safe/data/a.parquet"
        );
    }

    #[test]
    fn path_outside_the_location_is_an_error() {
        let rw = PathRewriter::new("s3://bucket/wh/t", "s3://other/t");
        for path in [
            "s3://bucket/wh/t2/data/x.parquet",
            "s3://bucket/wh/x.parquet",
            "gs://bucket/wh/t/x.parquet",
            "/bucket/wh/t/x.parquet",
            "",
        ] {
            let err = rw.rewrite(path).unwrap_err();
            assert!(
                matches!(err, RewriteError::OutsideLocation { .. }),
                "{path}"
            );
            assert_eq!(
                err.to_string(),
                format!("path {path} is outside the table location s3://bucket/wh/t")
            );
        }
        let rw = PathRewriter::new("file:/data/t", "file:/x");
        assert!(rw.rewrite("file://otherhost/data/t/a").is_err());
        assert!(rw.rewrite("hdfs:/data/t/a").is_err());
    }

    #[test]
    fn identity_is_judged_on_normalized_locations() {
        assert!(PathRewriter::new("file:/data/t", "file:///data/t/").is_identity());
        assert!(PathRewriter::new("s3a://b/t", "s3://b/t").is_identity());
        assert!(!PathRewriter::new("s3://b/t", "s3://b/t2").is_identity());
        assert!(!PathRewriter::new("/data/t", "/data/u").is_identity());
    }

    // ---- table metadata -----------------------------------------------------------------

    fn metadata_v2() -> serde_json::Value {
        json!({
            "format-version": 2,
            "table-uuid": "9c12d441-03fe-4693-9a96-a0705ddf69c1",
            "location": OLD,
            "last-sequence-number": 2,
            "last-updated-ms": 1_602_638_573_590_i64,
            "last-column-id": 2,
            "current-schema-id": 0,
            "schemas": [{"type": "struct", "schema-id": 0, "fields": [
                {"id": 1, "name": "id", "required": true, "type": "long"},
                {"id": 2, "name": "region", "required": false, "type": "string"}]}],
            "default-spec-id": 0,
            "partition-specs": [{"spec-id": 0, "fields": [
                {"name": "region", "transform": "identity", "source-id": 2, "field-id": 1000}]}],
            "last-partition-id": 1000,
            "default-sort-order-id": 0,
            "sort-orders": [{"order-id": 0, "fields": []}],
            "properties": {
                "owner": "alice",
                "write.data.path": format!("{OLD}/data-elsewhere"),
                "write.metadata.path": "s3://audit/metadata",
                "write.object-storage.path": format!("{OLD}/objects"),
            },
            "current-snapshot-id": 3_055_729_675_574_597_004_i64,
            "snapshots": [
                {"snapshot-id": 3_051_729_675_574_597_004_i64, "timestamp-ms": 1_515_100_955_770_i64,
                 "sequence-number": 1, "summary": {"operation": "append"},
                 "manifest-list": format!("{OLD}/metadata/snap-1.avro"), "schema-id": 0},
                {"snapshot-id": 3_055_729_675_574_597_004_i64,
                 "parent-snapshot-id": 3_051_729_675_574_597_004_i64, "timestamp-ms": 1_555_100_955_770_i64,
                 "sequence-number": 2, "summary": {"operation": "overwrite", "x": "y"},
                 "manifest-list": "s3n://old-bucket/wh/db/t/metadata/snap-2.avro", "schema-id": 0}
            ],
            "snapshot-log": [
                {"snapshot-id": 3_051_729_675_574_597_004_i64, "timestamp-ms": 1_515_100_955_770_i64},
                {"snapshot-id": 3_055_729_675_574_597_004_i64, "timestamp-ms": 1_555_100_955_770_i64}],
            "metadata-log": [{"metadata-file": format!("{OLD}/metadata/v1.json"), "timestamp-ms": 1_515_100}],
            "refs": {
                "main": {"snapshot-id": 3_055_729_675_574_597_004_i64, "type": "branch"},
                "v1": {"snapshot-id": 3_051_729_675_574_597_004_i64, "type": "tag", "max-ref-age-ms": 10}},
            "statistics": [{"snapshot-id": 3_055_729_675_574_597_004_i64,
                "statistics-path": format!("{OLD}/metadata/stats.puffin"),
                "file-size-in-bytes": 413, "file-footer-size-in-bytes": 42,
                "blob-metadata": [{"type": "apache-datasketches-theta-v1", "snapshot-id": 3_055_729_675_574_597_004_i64,
                    "sequence-number": 2, "fields": [1], "properties": {"ndv": "3"}}]}],
            "partition-statistics": [{"snapshot-id": 3_055_729_675_574_597_004_i64,
                "statistics-path": format!("{OLD}/metadata/partition-stats.parquet"),
                "file-size-in-bytes": 43}],
            "x-unknown-field": {"kept": [1, 2.5, "three"]}
        })
    }

    #[test]
    fn metadata_v2_paths_are_rewritten_and_the_rest_kept() {
        let input = metadata_v2();
        let set = BTreeMap::from([("restored-from".to_owned(), OLD.to_owned())]);
        let new_uuid = uuid::Uuid::now_v7();
        let (out, warnings) = rewrite_table_metadata(
            &serde_json::to_vec(&input).unwrap(),
            &rewriter(),
            &set,
            Some(new_uuid),
        )
        .unwrap();
        let out: serde_json::Value = serde_json::from_slice(&out).unwrap();

        let mut expected = input;
        expected["location"] = json!(NEW);
        expected["table-uuid"] = json!(new_uuid.to_string());
        expected["snapshots"][0]["manifest-list"] = json!(format!("{NEW}/metadata/snap-1.avro"));
        expected["snapshots"][1]["manifest-list"] = json!(format!("{NEW}/metadata/snap-2.avro"));
        expected["statistics"][0]["statistics-path"] =
            json!(format!("{NEW}/metadata/stats.puffin"));
        expected["partition-statistics"][0]["statistics-path"] =
            json!(format!("{NEW}/metadata/partition-stats.parquet"));
        expected["metadata-log"] = json!([]);
        expected["properties"]["write.data.path"] = json!(format!("{NEW}/data-elsewhere"));
        expected["properties"]["write.object-storage.path"] = json!(format!("{NEW}/objects"));
        expected["properties"]["restored-from"] = json!(OLD);
        assert_eq!(out, expected);
        // Key order is kept too.
        let keys =
            |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&out), keys(&expected));

        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("write.metadata.path = s3://audit/metadata"),
            "{warnings:?}"
        );

        let parsed: TableMetadata = serde_json::from_value(out).unwrap();
        assert_eq!(parsed.location(), NEW);
        assert_eq!(parsed.uuid(), new_uuid);
        assert_eq!(parsed.last_updated_ms(), 1_602_638_573_590);
        assert_eq!(parsed.snapshots().count(), 2);
        assert!(
            parsed
                .snapshots()
                .all(|s| s.manifest_list().starts_with(NEW))
        );
        assert!(parsed.metadata_log().is_empty());
    }

    #[test]
    fn metadata_v1_manifests_are_rewritten() {
        let input = json!({
            "format-version": 1,
            "location": "file:/data/wh/t",
            "last-updated-ms": 1_602_638_573_874_i64,
            "last-column-id": 1,
            "schema": {"type": "struct", "fields": [{"id": 1, "name": "x", "required": true, "type": "long"}]},
            "partition-spec": [],
            "snapshots": [{"snapshot-id": 1, "timestamp-ms": 1_515_100_955_770_i64,
                "manifests": ["file:///data/wh/t/metadata/m1.avro", "/data/wh/t/metadata/m2.avro"]}]
        });
        let rw = PathRewriter::new("file:///data/wh/t", "file:///restored/t");
        let (out, warnings) =
            rewrite_table_metadata(input.to_string().as_bytes(), &rw, &BTreeMap::new(), None)
                .unwrap();
        let out: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let mut expected = input;
        expected["location"] = json!("file:///restored/t");
        expected["snapshots"][0]["manifests"] = json!([
            "file:///restored/t/metadata/m1.avro",
            "file:///restored/t/metadata/m2.avro"
        ]);
        assert_eq!(out, expected);
        assert!(warnings.is_empty());
    }

    #[test]
    fn metadata_errors_name_the_field() {
        let mut input = metadata_v2();
        input["snapshots"][1]["manifest-list"] = json!("s3://elsewhere/snap-2.avro");
        let err = rewrite_table_metadata(
            input.to_string().as_bytes(),
            &rewriter(),
            &BTreeMap::new(),
            None,
        )
        .unwrap_err();
        assert!(
            matches!(err, RewriteError::OutsideLocation { ref path, .. } if path == "s3://elsewhere/snap-2.avro")
        );

        input["snapshots"][1]["manifest-list"] = json!(42);
        let err = rewrite_table_metadata(
            input.to_string().as_bytes(),
            &rewriter(),
            &BTreeMap::new(),
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "table metadata field snapshots[1].manifest-list is not a string"
        );

        let err = rewrite_table_metadata(b"{\"location\": ", &rewriter(), &BTreeMap::new(), None)
            .unwrap_err();
        assert!(
            err.to_string().starts_with("parsing table metadata json: "),
            "{err}"
        );
    }

    // ---- Avro helpers -------------------------------------------------------------------

    /// The header metadata of an Avro file, as strings.
    fn avro_metadata(avro: &[u8]) -> BTreeMap<String, Vec<u8>> {
        parse_avro_header(avro, "test")
            .unwrap()
            .metadata
            .into_iter()
            .map(|(key, value)| match value {
                AvroValue::Bytes(bytes) => (key, bytes),
                other => panic!("{key}: {other:?}"),
            })
            .collect()
    }

    /// The same Avro file written again with `codec` (a generic copy).
    fn recompress(avro: &[u8], codec: Codec) -> Vec<u8> {
        let reader = AvroReader::new(avro).unwrap();
        let schema = reader.writer_schema().clone();
        let metadata = reader.user_metadata().clone();
        let records = reader.collect::<Result<Vec<_>, _>>().unwrap();
        let mut writer = AvroWriter::with_codec(&schema, Vec::new(), codec);
        for (key, value) in metadata {
            writer.add_user_metadata(key, value).unwrap();
        }
        for record in records {
            writer.append(record).unwrap();
        }
        writer.into_inner().unwrap()
    }

    async fn read_file(io: &FileIO, path: &str) -> Vec<u8> {
        io.new_input(path).unwrap().read().await.unwrap().to_vec()
    }

    // ---- manifest lists -----------------------------------------------------------------

    fn manifest_file(name: &str, content: ManifestContentType, seq: i64) -> ManifestFile {
        ManifestFile {
            manifest_path: format!("{OLD}/metadata/{name}"),
            manifest_length: 5000 + seq,
            partition_spec_id: 0,
            content,
            sequence_number: seq,
            min_sequence_number: seq - 1,
            added_snapshot_id: SNAPSHOT_ID + seq,
            added_files_count: Some(2),
            existing_files_count: Some(1),
            deleted_files_count: Some(0),
            added_rows_count: Some(200),
            existing_rows_count: Some(100),
            deleted_rows_count: Some(0),
            partitions: None,
            key_metadata: None,
            first_row_id: None,
        }
    }

    async fn write_manifest_list(version: FormatVersion) -> Vec<u8> {
        let io = FileIO::new_with_memory();
        let path = format!("memory:///lists/{version}.avro");
        let writer = io.new_output(&path).unwrap().writer().await.unwrap();
        let mut list = match version {
            FormatVersion::V1 => ManifestListWriter::v1(writer, SNAPSHOT_ID, Some(1)),
            FormatVersion::V2 => ManifestListWriter::v2(writer, SNAPSHOT_ID, Some(1), 7),
            FormatVersion::V3 => ManifestListWriter::v3(writer, SNAPSHOT_ID, Some(1), 7, Some(10)),
        };
        let deletes = if version == FormatVersion::V1 {
            ManifestContentType::Data
        } else {
            ManifestContentType::Deletes
        };
        list.add_manifests(
            [
                manifest_file("m0.avro", ManifestContentType::Data, 5),
                manifest_file("m1.avro", deletes, 6),
                manifest_file("m2.avro", ManifestContentType::Data, 7),
            ]
            .into_iter(),
        )
        .unwrap();
        list.close().await.unwrap();
        read_file(&io, &path).await
    }

    #[tokio::test]
    async fn manifest_list_paths_and_lengths_are_rewritten() {
        for version in [FormatVersion::V1, FormatVersion::V2, FormatVersion::V3] {
            let input = write_manifest_list(version).await;
            let new_sizes = HashMap::from([(format!("{NEW}/metadata/m1.avro"), 4242_i64)]);
            let output = rewrite_manifest_list(&input, &rewriter(), &new_sizes).unwrap();

            let before = ManifestList::parse_with_version(&input, version).unwrap();
            let after = ManifestList::parse_with_version(&output, version).unwrap();
            let mut expected = before.entries().to_vec();
            for manifest in &mut expected {
                manifest.manifest_path = manifest.manifest_path.replace(OLD, NEW);
            }
            expected[1].manifest_length = 4242;
            assert_eq!(after.entries(), expected.as_slice(), "{version}");
            assert_ne!(expected[0].manifest_length, 4242);
            assert_eq!(avro_metadata(&output), avro_metadata(&input), "{version}");
        }
    }

    #[tokio::test]
    async fn manifest_list_codec_is_kept() {
        let plain = write_manifest_list(FormatVersion::V2).await;
        for codec in [
            Codec::Snappy,
            Codec::Deflate(apache_avro::DeflateSettings::default()),
            Codec::Zstandard(apache_avro::ZstandardSettings::new(3)),
        ] {
            let input = recompress(&plain, codec);
            let output = rewrite_manifest_list(&input, &rewriter(), &HashMap::new()).unwrap();
            let metadata = avro_metadata(&output);
            let name: &str = codec.into();
            assert_eq!(metadata["avro.codec"], name.as_bytes());
            assert_eq!(metadata, avro_metadata(&input));
            let after = ManifestList::parse_with_version(&output, FormatVersion::V2).unwrap();
            assert!(
                after
                    .entries()
                    .iter()
                    .all(|m| m.manifest_path.starts_with(NEW))
            );
        }
        let zstd = recompress(
            &plain,
            Codec::Zstandard(apache_avro::ZstandardSettings::new(3)),
        );
        let output = rewrite_manifest_list(&zstd, &rewriter(), &HashMap::new()).unwrap();
        assert_eq!(avro_metadata(&output)["avro.codec.compression_level"], [3]);
    }

    #[tokio::test]
    async fn manifest_list_errors() {
        let input = write_manifest_list(FormatVersion::V2).await;
        let rw = PathRewriter::new("s3://old-bucket/wh/db/other", NEW);
        assert!(matches!(
            rewrite_manifest_list(&input, &rw, &HashMap::new()),
            Err(RewriteError::OutsideLocation { .. })
        ));
        let err = rewrite_manifest_list(b"not avro", &rewriter(), &HashMap::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "reading avro manifest list header: not an avro object container file"
        );
        let truncated = &input[..input.len() - 20];
        assert!(rewrite_manifest_list(truncated, &rewriter(), &HashMap::new()).is_err());
    }

    // ---- manifests ----------------------------------------------------------------------

    fn table_schema() -> Arc<Schema> {
        Arc::new(
            Schema::builder()
                .with_schema_id(0)
                .with_fields([
                    NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
                    NestedField::optional(2, "region", Type::Primitive(PrimitiveType::String))
                        .into(),
                    NestedField::optional(3, "day", Type::Primitive(PrimitiveType::Date)).into(),
                ])
                .build()
                .unwrap(),
        )
    }

    fn partition_spec(schema: &Arc<Schema>) -> PartitionSpec {
        PartitionSpec::builder(schema.clone())
            .with_spec_id(0)
            .add_partition_field("region", "region", Transform::Identity)
            .unwrap()
            .add_partition_field("day", "day", Transform::Identity)
            .unwrap()
            .build()
            .unwrap()
    }

    fn partition(region: &str, day: i32) -> Struct {
        Struct::from_iter([Some(Literal::string(region)), Some(Literal::date(day))])
    }

    fn data_file(prefix: &str, name: &str, size: u64) -> DataFile {
        DataFileBuilder::default()
            .content(DataContentType::Data)
            .file_path(format!("{prefix}/data/{name}"))
            .file_format(DataFileFormat::Parquet)
            .partition(partition("eu", 19_000))
            .partition_spec_id(0)
            .record_count(100)
            .file_size_in_bytes(size)
            .column_sizes(HashMap::from([(1, 800), (2, 300)]))
            .value_counts(HashMap::from([(1, 100), (2, 100)]))
            .null_value_counts(HashMap::from([(2, 3)]))
            .lower_bounds(HashMap::from([
                (1, Datum::long(1)),
                (2, Datum::string("a")),
            ]))
            .upper_bounds(HashMap::from([
                (1, Datum::long(100)),
                (2, Datum::string("z")),
            ]))
            .split_offsets(Some(vec![4]))
            .build()
            .unwrap()
    }

    /// A position delete file with `file_path` bounds `lower`/`upper` (None: no bound).
    fn position_delete_file(
        prefix: &str,
        name: &str,
        lower: Option<&str>,
        upper: Option<&str>,
    ) -> DataFile {
        let mut lower_bounds = HashMap::from([(2_147_483_545, Datum::long(0))]);
        let mut upper_bounds = HashMap::from([(2_147_483_545, Datum::long(9))]);
        if let Some(lower) = lower {
            lower_bounds.insert(DELETE_FILE_PATH_FIELD_ID, Datum::string(lower));
        }
        if let Some(upper) = upper {
            upper_bounds.insert(DELETE_FILE_PATH_FIELD_ID, Datum::string(upper));
        }
        DataFileBuilder::default()
            .content(DataContentType::PositionDeletes)
            .file_path(format!("{prefix}/data/{name}"))
            .file_format(DataFileFormat::Parquet)
            .partition(partition("us", 19_001))
            .partition_spec_id(0)
            .record_count(10)
            .file_size_in_bytes(1500)
            .lower_bounds(lower_bounds)
            .upper_bounds(upper_bounds)
            .referenced_data_file(Some(format!("{prefix}/data/d0.parquet")))
            .build()
            .unwrap()
    }

    async fn write_data_manifest(version: FormatVersion) -> Vec<u8> {
        let io = FileIO::new_with_memory();
        let path = "memory:///m/data.avro";
        let schema = table_schema();
        let builder = ManifestWriterBuilder::new(
            io.new_output(path).unwrap(),
            Some(SNAPSHOT_ID),
            schema.clone(),
            partition_spec(&schema),
        );
        let mut writer = match version {
            FormatVersion::V1 => builder.build_v1(),
            FormatVersion::V2 => builder.build_v2_data(),
            FormatVersion::V3 => builder.build_v3_data(),
        };
        writer
            .add_file(data_file(OLD, "d0.parquet", 1000), 3)
            .unwrap();
        writer
            .add_existing_file(data_file(OLD, "d1.parquet", 1001), 17, 2, Some(2))
            .unwrap();
        writer
            .add_delete_file(data_file(OLD, "d2.parquet", 1002), 1, Some(1))
            .unwrap();
        writer.write_manifest_file().await.unwrap();
        read_file(&io, path).await
    }

    async fn write_delete_manifest(version: FormatVersion, files: Vec<DataFile>) -> Vec<u8> {
        let io = FileIO::new_with_memory();
        let path = "memory:///m/deletes.avro";
        let schema = table_schema();
        let builder = ManifestWriterBuilder::new(
            io.new_output(path).unwrap(),
            Some(SNAPSHOT_ID),
            schema.clone(),
            partition_spec(&schema),
        );
        let mut writer = match version {
            FormatVersion::V3 => builder.build_v3_deletes(),
            _ => builder.build_v2_deletes(),
        };
        for file in files {
            writer.add_file(file, 4).unwrap();
        }
        writer.write_manifest_file().await.unwrap();
        read_file(&io, path).await
    }

    /// Asserts that `output` parses to the entries of `input` with each data file replaced.
    fn assert_entries(input: &[u8], output: &[u8], expected_files: Vec<DataFile>) {
        let before = Manifest::parse_avro(input).unwrap();
        let after = Manifest::parse_avro(output).unwrap();
        assert_eq!(after.metadata(), before.metadata());
        let expected: Vec<_> = before
            .entries()
            .iter()
            .zip(expected_files)
            .map(|(entry, data_file)| iceberg::spec::ManifestEntry {
                data_file,
                ..(**entry).clone()
            })
            .collect();
        let actual: Vec<_> = after
            .entries()
            .iter()
            .map(|entry| (**entry).clone())
            .collect();
        assert_eq!(actual, expected);
        assert_eq!(avro_metadata(output), avro_metadata(input));
    }

    #[tokio::test]
    async fn data_manifest_paths_and_sizes_are_rewritten() {
        for version in [FormatVersion::V1, FormatVersion::V2, FormatVersion::V3] {
            let input = write_data_manifest(version).await;
            let new_sizes = HashMap::from([(format!("{NEW}/data/d1.parquet"), 77_i64)]);
            let (output, refs) = rewrite_manifest(&input, &rewriter(), &new_sizes).unwrap();
            assert_entries(
                &input,
                &output,
                vec![
                    data_file(NEW, "d0.parquet", 1000),
                    data_file(NEW, "d1.parquet", 77),
                    data_file(NEW, "d2.parquet", 1002),
                ],
            );
            let statuses = [
                ManifestStatus::Added,
                ManifestStatus::Existing,
                ManifestStatus::Deleted,
            ];
            let expected_refs: Vec<_> = (0..3)
                .map(|i| ManifestFileRef {
                    old_path: format!("{OLD}/data/d{i}.parquet"),
                    new_path: format!("{NEW}/data/d{i}.parquet"),
                    content: DataContentType::Data,
                    file_format: "PARQUET".to_owned(),
                    status: statuses[i],
                    file_size_in_bytes: 1000 + i64::try_from(i).unwrap(),
                })
                .collect();
            assert_eq!(refs, expected_refs, "{version}");
        }
    }

    #[tokio::test]
    async fn delete_manifest_bounds_and_referenced_files_are_rewritten() {
        for version in [FormatVersion::V2, FormatVersion::V3] {
            let full = format!("{OLD}/data/d0.parquet");
            let input = write_delete_manifest(
                version,
                vec![
                    position_delete_file(OLD, "del0.parquet", Some(&full), Some(&full)),
                    // Truncated bounds: the lower one no longer holds the whole location.
                    position_delete_file(
                        OLD,
                        "del1.parquet",
                        Some("s3a://old-bu"),
                        Some(&format!("{OLD}/data/e")),
                    ),
                ],
            )
            .await;
            let new_sizes = HashMap::from([(format!("{NEW}/data/del0.parquet"), 1499_i64)]);
            let (output, refs) = rewrite_manifest(&input, &rewriter(), &new_sizes).unwrap();

            let new_full = format!("{NEW}/data/d0.parquet");
            let mut first =
                position_delete_file(NEW, "del0.parquet", Some(&new_full), Some(&new_full));
            first = DataFileBuilder::default()
                .content(first.content_type())
                .file_path(first.file_path().to_owned())
                .file_format(first.file_format())
                .partition(first.partition().clone())
                .partition_spec_id(0)
                .record_count(first.record_count())
                .file_size_in_bytes(1499)
                .lower_bounds(first.lower_bounds().clone())
                .upper_bounds(first.upper_bounds().clone())
                .referenced_data_file(first.referenced_data_file())
                .build()
                .unwrap();
            let second =
                position_delete_file(NEW, "del1.parquet", None, Some(&format!("{NEW}/data/e")));
            assert_entries(&input, &output, vec![first, second]);
            assert!(
                refs.iter()
                    .all(|r| r.content == DataContentType::PositionDeletes)
            );
            assert_eq!(refs[0].file_size_in_bytes, 1500);
            assert_eq!(refs[1].new_path, format!("{NEW}/data/del1.parquet"));
        }
    }

    #[tokio::test]
    async fn manifest_codec_is_kept() {
        let plain = write_data_manifest(FormatVersion::V2).await;
        let input = recompress(&plain, Codec::Snappy);
        let (output, _) = rewrite_manifest(&input, &rewriter(), &HashMap::new()).unwrap();
        assert_eq!(avro_metadata(&output)["avro.codec"], b"snappy");
        assert_entries(
            &input,
            &output,
            vec![
                data_file(NEW, "d0.parquet", 1000),
                data_file(NEW, "d1.parquet", 1001),
                data_file(NEW, "d2.parquet", 1002),
            ],
        );
    }

    #[tokio::test]
    async fn manifest_errors_name_the_record() {
        let input = write_data_manifest(FormatVersion::V2).await;
        let rw = PathRewriter::new("s3://old-bucket/wh/db/t/data/d0.parquet", NEW);
        let err = rewrite_manifest(&input, &rw, &HashMap::new()).unwrap_err();
        assert!(
            err.to_string()
                .contains("d1.parquet is outside the table location"),
            "{err}"
        );
    }

    /// Physical schema of a hand-made manifest: partition `u` is a Java-style `uuid`
    /// (`fixed(16)`), `day` a `date`; bounds are a real Avro map for once.
    const UUID_MANIFEST_SCHEMA: &str = r#"{"type": "record", "name": "manifest_entry", "fields": [
        {"name": "status", "type": "int", "field-id": 0},
        {"name": "data_file", "field-id": 2, "type": {"type": "record", "name": "r2", "fields": [
            {"name": "content", "type": "int", "field-id": 134},
            {"name": "file_path", "type": "string", "field-id": 100},
            {"name": "file_format", "type": "string", "field-id": 101},
            {"name": "partition", "field-id": 102, "type": {"type": "record", "name": "r102", "fields": [
                {"name": "u", "field-id": 1000, "type": ["null",
                    {"type": "fixed", "name": "uuid_fixed", "size": 16, "logicalType": "uuid"}]},
                {"name": "day", "field-id": 1001, "type": ["null", {"type": "int", "logicalType": "date"}]}]}},
            {"name": "file_size_in_bytes", "type": "long", "field-id": 104},
            {"name": "lower_bounds", "field-id": 125, "type": ["null", {"type": "map", "values": "bytes"}]},
            {"name": "x_unknown", "type": "string", "field-id": 9999}]}}]}"#;

    #[test]
    fn fixed_uuid_partitions_and_avro_map_bounds_survive() {
        let logical_json = UUID_MANIFEST_SCHEMA.to_owned();
        let mut physical_json: serde_json::Value = serde_json::from_str(&logical_json).unwrap();
        super::strip_logical_types(&mut physical_json);
        let physical = AvroSchema::parse(&physical_json).unwrap();
        let uuid = [7_u8; 16];
        let record = |path: &str, bound: &str| {
            AvroValue::Record(vec![
                ("status".into(), AvroValue::Int(1)),
                (
                    "data_file".into(),
                    AvroValue::Record(vec![
                        ("content".into(), AvroValue::Int(1)),
                        ("file_path".into(), AvroValue::String(path.into())),
                        ("file_format".into(), AvroValue::String("PARQUET".into())),
                        (
                            "partition".into(),
                            AvroValue::Record(vec![
                                (
                                    "u".into(),
                                    AvroValue::Union(
                                        1,
                                        Box::new(AvroValue::Fixed(16, uuid.to_vec())),
                                    ),
                                ),
                                (
                                    "day".into(),
                                    AvroValue::Union(1, Box::new(AvroValue::Int(19_000))),
                                ),
                            ]),
                        ),
                        ("file_size_in_bytes".into(), AvroValue::Long(10)),
                        (
                            "lower_bounds".into(),
                            AvroValue::Union(
                                1,
                                Box::new(AvroValue::Map(HashMap::from([
                                    (
                                        "2147483546".to_owned(),
                                        AvroValue::Bytes(bound.as_bytes().to_vec()),
                                    ),
                                    ("2147483545".to_owned(), AvroValue::Bytes(vec![0; 8])),
                                ]))),
                            ),
                        ),
                        ("x_unknown".into(), AvroValue::String("kept".into())),
                    ]),
                ),
            ])
        };
        let mut writer = AvroWriter::with_codec(
            &physical,
            Vec::new(),
            Codec::Deflate(apache_avro::DeflateSettings::default()),
        );
        writer
            .add_user_metadata("format-version".into(), "2")
            .unwrap();
        writer
            .append(record(
                &format!("{OLD}/data/a.parquet"),
                &format!("{OLD}/data/x.parquet"),
            ))
            .unwrap();
        writer
            .append(record(&format!("{OLD}/data/b.parquet"), "s3a://ol"))
            .unwrap();
        let written = writer.into_inner().unwrap();
        // Declare the logical (Java-style) schema in the header, as Iceberg Java would.
        let header = parse_avro_header(&written, "test").unwrap();
        let input =
            AvroFile::with_header_schema(&written, &header, logical_json.clone(), "test").unwrap();

        let (output, refs) = rewrite_manifest(&input, &rewriter(), &HashMap::new()).unwrap();
        assert_eq!(
            avro_metadata(&output)["avro.schema"],
            logical_json.as_bytes()
        );
        assert_eq!(refs.len(), 2);

        let header = parse_avro_header(&output, "test").unwrap();
        let physical_out =
            AvroFile::with_header_schema(&output, &header, physical_json.to_string(), "test")
                .unwrap();
        let records = AvroReader::new(physical_out.as_slice())
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let first = record(
            &format!("{NEW}/data/a.parquet"),
            &format!("{NEW}/data/x.parquet"),
        );
        assert_eq!(records[0], first);
        let mut second = record(&format!("{NEW}/data/b.parquet"), "");
        if let Some(AvroValue::Map(bounds)) = super::field_mut(&mut second, "data_file")
            .and_then(|data_file| super::field_mut(data_file, "lower_bounds"))
        {
            bounds.remove("2147483546");
        }
        assert_eq!(records[1], second);
    }

    // ---- position delete files ----------------------------------------------------------

    fn field_with_id(name: &str, data_type: DataType, id: i32) -> Field {
        Field::new(name, data_type, false).with_metadata(HashMap::from([(
            "PARQUET:field_id".to_owned(),
            id.to_string(),
        )]))
    }

    fn delete_batch(prefix: &str, files: &[&str], positions: &[i64]) -> RecordBatch {
        let schema = Arc::new(ArrowSchema::new(vec![
            field_with_id("file_path", DataType::Utf8, DELETE_FILE_PATH_FIELD_ID),
            field_with_id("pos", DataType::Int64, 2_147_483_545),
        ]));
        let paths: StringArray = files
            .iter()
            .map(|f| Some(format!("{prefix}/data/{f}")))
            .collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(paths),
            Arc::new(Int64Array::from(positions.to_vec())),
        ];
        RecordBatch::try_new(schema, columns).unwrap()
    }

    fn write_delete_file(compression: Compression) -> Vec<u8> {
        let props = WriterProperties::builder()
            .set_compression(compression)
            .set_key_value_metadata(Some(vec![KeyValue::new(
                "iceberg.schema".into(),
                "{}".to_owned(),
            )]))
            .build();
        let first = delete_batch(OLD, &["a.parquet", "a.parquet", "b.parquet"], &[0, 5, 2]);
        let mut writer = ArrowWriter::try_new(Vec::new(), first.schema(), Some(props)).unwrap();
        writer.write(&first).unwrap();
        writer.flush().unwrap();
        writer
            .write(&delete_batch(OLD, &["c.parquet", "d.parquet"], &[1, 7]))
            .unwrap();
        writer.into_inner().unwrap()
    }

    fn read_batches(parquet: Vec<u8>) -> Vec<RecordBatch> {
        ParquetRecordBatchReaderBuilder::try_new(Bytes::from(parquet))
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn position_delete_file_paths_are_rewritten() {
        for compression in [
            Compression::ZSTD(ZstdLevel::try_new(3).unwrap()),
            Compression::SNAPPY,
        ] {
            let input = write_delete_file(compression);
            let output = rewrite_position_delete_file(input.clone(), &rewriter()).unwrap();

            let meta_in =
                ParquetRecordBatchReaderBuilder::try_new(Bytes::from(input.clone())).unwrap();
            let meta_out =
                ParquetRecordBatchReaderBuilder::try_new(Bytes::from(output.clone())).unwrap();
            let (meta_in, meta_out) = (meta_in.metadata(), meta_out.metadata());
            assert_eq!(
                meta_out.file_metadata().schema_descr(),
                meta_in.file_metadata().schema_descr()
            );
            assert_eq!(
                meta_out.file_metadata().key_value_metadata(),
                meta_in.file_metadata().key_value_metadata()
            );
            let ids: Vec<_> = meta_out
                .file_metadata()
                .schema_descr()
                .columns()
                .iter()
                .map(|c| c.self_type().get_basic_info().id())
                .collect();
            assert_eq!(ids, [DELETE_FILE_PATH_FIELD_ID, 2_147_483_545]);
            let rows = |m: &parquet::file::metadata::ParquetMetaData| {
                m.row_groups()
                    .iter()
                    .map(parquet::file::metadata::RowGroupMetaData::num_rows)
                    .collect::<Vec<_>>()
            };
            assert_eq!(rows(meta_out), [3, 2]);
            assert_eq!(rows(meta_out), rows(meta_in));
            for group in meta_out.row_groups() {
                for column in group.columns() {
                    assert_eq!(
                        std::mem::discriminant(&column.compression()),
                        std::mem::discriminant(&compression)
                    );
                }
            }

            // Both row groups come back as one batch.
            let (batches, batches_in) = (read_batches(output), read_batches(input));
            let files = [
                "a.parquet",
                "a.parquet",
                "b.parquet",
                "c.parquet",
                "d.parquet",
            ];
            assert_eq!(batches, [delete_batch(NEW, &files, &[0, 5, 2, 1, 7])]);
            assert_eq!(batches_in, [delete_batch(OLD, &files, &[0, 5, 2, 1, 7])]);
        }
    }

    #[test]
    fn position_delete_file_errors() {
        let input = write_delete_file(Compression::UNCOMPRESSED);
        let rw = PathRewriter::new("s3://old-bucket/wh/db/other", NEW);
        assert!(matches!(
            rewrite_position_delete_file(input, &rw),
            Err(RewriteError::OutsideLocation { .. })
        ));
        let err = rewrite_position_delete_file(b"nope".to_vec(), &rewriter()).unwrap_err();
        assert!(matches!(err, RewriteError::ParquetRead(_)), "{err}");

        let schema = Arc::new(ArrowSchema::new(vec![field_with_id(
            "pos",
            DataType::Int64,
            2_147_483_545,
        )]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1]))])
            .unwrap();
        let mut writer = ArrowWriter::try_new(Vec::new(), schema, None).unwrap();
        writer.write(&batch).unwrap();
        let err =
            rewrite_position_delete_file(writer.into_inner().unwrap(), &rewriter()).unwrap_err();
        assert!(
            err.to_string().contains("column file_path is missing"),
            "{err}"
        );
    }
}
