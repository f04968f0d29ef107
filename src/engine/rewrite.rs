//! Rewriting of absolute paths inside the files of an Iceberg table, for a restore to a
//! different location.
//!
//! Everything here works in memory: bytes in, bytes out. Four kinds of file hold absolute
//! paths: the table metadata JSON, manifest lists (Avro), manifests (Avro) and position
//! delete files (Parquet). Data files and statistics (Puffin) files are copied verbatim.
//!
//! Avro files are rewritten generically, value by value, so that fields this code does not
//! know about survive. The header of the input (writer schema JSON, codec, user metadata and
//! sync marker) is copied byte for byte and only the data blocks are encoded again, with the
//! same codec. The values are decoded with the *physical* form of the writer schema (logical
//! types removed): apache-avro 0.21 decodes a `fixed(16)` with logical type `uuid` as if it
//! were a length-prefixed string, which would corrupt manifests of tables partitioned by a
//! `uuid` column, and a physical decode keeps every value exactly as written.

use std::collections::{BTreeMap, HashMap};
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
        }
    }

    /// Rewrites `path`, which must lie under the source location, to the same place under the
    /// target location.
    pub fn rewrite(&self, path: &str) -> Result<String, RewriteError> {
        self.relative(path)
            .map(|rest| format!("{}{rest}", self.to))
            .ok_or_else(|| RewriteError::OutsideLocation {
                path: path.to_owned(),
                location: self.from.clone(),
            })
    }

    /// Whether `path` lies under (or is) the source location.
    #[must_use]
    pub fn is_under(&self, path: &str) -> bool {
        self.relative(path).is_some()
    }

    /// Whether source and target are the same location, so that nothing needs rewriting.
    #[must_use]
    pub fn is_identity(&self) -> bool {
        self.from_normalized == self.to_normalized
    }

    /// The part of `path` after the source location: empty or starting with `/`.
    fn relative(&self, path: &str) -> Option<String> {
        let normalized = normalize(path);
        let rest = normalized.strip_prefix(&self.from_normalized)?;
        (rest.is_empty() || rest.starts_with('/')).then(|| rest.to_owned())
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

/// Rewrites the path properties under the source location, then merges `set_properties`.
/// Returns a warning for each path property left unchanged.
fn rewrite_properties(
    root: &mut JsonMap<String, JsonValue>,
    rw: &PathRewriter,
    set_properties: &BTreeMap<String, String>,
) -> Result<Vec<String>, RewriteError> {
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
    fn update_size(
        self,
        record: &mut AvroValue,
        name: &'static str,
        path: &str,
        new_sizes: &HashMap<String, i64>,
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
pub fn rewrite_manifest_list(
    avro: &[u8],
    rw: &PathRewriter,
    new_sizes: &HashMap<String, i64>,
) -> Result<Vec<u8>, RewriteError> {
    const FILE: &str = "manifest list";
    let mut list = AvroFile::read(avro, FILE)?;
    for (index, record) in list.records.iter_mut().enumerate() {
        let context = RecordContext { file: FILE, index };
        let (_, new_path) = context.rewrite_path(record, "manifest_path", rw)?;
        context.update_size(record, "manifest_length", &new_path, new_sizes)?;
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
pub fn rewrite_manifest(
    avro: &[u8],
    rw: &PathRewriter,
    new_sizes: &HashMap<String, i64>,
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
fn rewrite_manifest_entry(
    context: RecordContext,
    entry: &mut AvroValue,
    rw: &PathRewriter,
    new_sizes: &HashMap<String, i64>,
) -> Result<ManifestFileRef, RewriteError> {
    let status = context.int_or(entry, "status", -1)?;
    let status = ManifestStatus::try_from(status)
        .map_err(|_| context.error("status", "is not a valid status"))?;
    let data_file =
        field_mut(entry, "data_file").ok_or_else(|| context.error("data_file", "is missing"))?;
    let content = context.int_or(data_file, "content", 0)?;
    let (old_path, new_path) = context.rewrite_path(data_file, "file_path", rw)?;
    let file_size_in_bytes =
        context.update_size(data_file, "file_size_in_bytes", &new_path, new_sizes)?;
    rewrite_referenced_data_file(context, data_file, rw)?;
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
            .map_err(|_| context.error("data_file.content", "is not a valid content type"))?,
        file_format: file_format(context, data_file)?,
        status,
        file_size_in_bytes,
    })
}

/// Rewrites the optional `referenced_data_file` of a `data_file` record.
fn rewrite_referenced_data_file(
    context: RecordContext,
    data_file: &mut AvroValue,
    rw: &PathRewriter,
) -> Result<(), RewriteError> {
    match field_mut(data_file, "referenced_data_file") {
        None | Some(AvroValue::Null) => Ok(()),
        Some(AvroValue::String(path)) => {
            *path = rw.rewrite(path)?;
            Ok(())
        }
        Some(_) => Err(context.error("data_file.referenced_data_file", "is not a string")),
    }
}

/// The `file_format` of a `data_file` record.
fn file_format(context: RecordContext, data_file: &mut AvroValue) -> Result<String, RewriteError> {
    match field_mut(data_file, "file_format") {
        Some(AvroValue::String(format)) => Ok(format.clone()),
        Some(AvroValue::Enum(_, format)) => Ok(format.clone()),
        _ => Err(context.error("data_file.file_format", "is missing or not a string")),
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
pub fn rewrite_position_delete_file(
    parquet: Bytes,
    rw: &PathRewriter,
) -> Result<Vec<u8>, RewriteError> {
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
