//! Avro object container files, rewritten value by value with their header kept byte for byte.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::io::Cursor;
use std::str::FromStr;

use super::{PathRewriter, RewriteError};
use apache_avro::types::Value as AvroValue;
use apache_avro::{Codec, Reader as AvroReader, Schema as AvroSchema, Writer as AvroWriter};
use serde_json::Value as JsonValue;

/// Avro object container magic bytes.
const AVRO_MAGIC: &[u8; 4] = b"Obj\x01";

/// Length of the sync marker that ends the Avro header and every data block.
const AVRO_MARKER_LEN: usize = 16;

/// The parts of an Avro object container file header that rewriting needs.
pub(super) struct AvroHeader {
    /// Length of the header in bytes (magic, metadata map and sync marker).
    pub(super) len: usize,
    /// The header metadata map.
    pub(super) metadata: HashMap<String, AvroValue>,
}

/// Decodes the header of an Avro object container file.
pub(super) fn parse_avro_header(
    avro: &[u8],
    file: &'static str,
) -> Result<AvroHeader, RewriteError> {
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
pub(super) fn strip_logical_types(schema: &mut JsonValue) {
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
pub(super) struct AvroFile<'a> {
    /// The input bytes.
    pub(super) bytes: &'a [u8],
    /// The parsed header.
    pub(super) header: AvroHeader,
    /// The physical writer schema.
    pub(super) schema: AvroSchema,
    /// The records.
    pub(super) records: Vec<AvroValue>,
}

impl<'a> AvroFile<'a> {
    /// Decodes every record of `bytes` with the physical form of its writer schema.
    pub(super) fn read(bytes: &'a [u8], file: &'static str) -> Result<Self, RewriteError> {
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
    pub(super) fn with_header_schema(
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
    pub(super) fn write(&self, file: &'static str) -> Result<Vec<u8>, RewriteError> {
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
pub(super) fn field_mut<'v>(record: &'v mut AvroValue, name: &str) -> Option<&'v mut AvroValue> {
    let AvroValue::Record(fields) = record else {
        return None;
    };
    let (_, value) = fields.iter_mut().find(|(field, _)| field == name)?;
    Some(union_inner(value))
}

/// The value inside a union (a non-union value is returned as is).
pub(super) fn union_inner(value: &mut AvroValue) -> &mut AvroValue {
    match value {
        AvroValue::Union(_, inner) => union_inner(inner.as_mut()),
        other => other,
    }
}

/// Locates problems in one record of an Avro file.
#[derive(Clone, Copy)]
pub(super) struct RecordContext {
    /// `manifest` or `manifest list`.
    pub(super) file: &'static str,
    /// Index of the record.
    pub(super) index: usize,
}

impl RecordContext {
    /// Builds a [`RewriteError::AvroField`] for this record.
    pub(super) fn error(self, field: &'static str, problem: &'static str) -> RewriteError {
        RewriteError::AvroField {
            file: self.file,
            index: self.index,
            field,
            problem,
        }
    }

    /// Rewrites the required string field `name` of `record` and returns (old, new) paths.
    pub(super) fn rewrite_path(
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
    pub(super) fn update_size<S: BuildHasher>(
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
    pub(super) fn int_or(
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
