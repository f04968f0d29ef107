//! Avro object container files, rewritten a record at a time without decoding them.
//!
//! The header (magic, metadata with the writer schema, codec and user metadata, sync marker)
//! is kept byte for byte. Each data block is decompressed and its records are walked over
//! their binary encoding, driven by the writer schema: the walk finds where each field's
//! bytes lie, an edit replaces the few ranges it changes (a path, a size), every other byte
//! is copied as written, and the records are compressed again with the file's codec, in
//! blocks of the usual size. So fields this code does not know about survive exactly, and
//! logical types are never interpreted: only the physical encoding (a schema's `type`) drives
//! the walk, which keeps a Java-style `uuid` (`fixed(16)`) or a `date` exactly as written.
//! Nothing is held per record beyond the ranges of its fields.

use std::collections::HashMap;
use std::io::Cursor;
use std::ops::Range;
use std::str::FromStr;

use super::RewriteError;
use apache_avro::types::Value as AvroValue;
use apache_avro::{Codec, Schema as AvroSchema};
use serde_json::Value as JsonValue;

/// Avro object container magic bytes.
const AVRO_MAGIC: &[u8; 4] = b"Obj\x01";

/// Length of the sync marker that ends the Avro header and every data block.
const AVRO_MARKER_LEN: usize = 16;

/// How deep values may nest (records in records, arrays of maps…): deeper is refused rather
/// than followed, so a recursive schema cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

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

// ---------------------------------------------------------------------------------------------
// The writer schema, as far as the encoding goes
// ---------------------------------------------------------------------------------------------

/// One type of a writer schema, reduced to what its binary encoding depends on. Nodes refer
/// to each other by index in [`Schema::nodes`], so named types may be referenced (and recur).
#[derive(Debug)]
enum Node {
    Null,
    Boolean,
    /// `int`, `long` and `enum` (its index): a zig-zag varint.
    Varint,
    Float,
    Double,
    /// `bytes` and `string`: a length, then the bytes.
    Bytes,
    Fixed(usize),
    Enum(Vec<String>),
    Array(usize),
    Map(usize),
    Union(Vec<usize>),
    Record(Vec<(String, usize)>),
}

/// A compiled writer schema.
struct Schema {
    nodes: Vec<Node>,
    root: usize,
}

/// Index of the `bytes`/`string` node every schema starts with (the keys of maps).
const STRING_NODE: usize = 0;

impl Schema {
    /// Compiles the writer schema of a file (JSON text from its header).
    fn compile(json: &[u8]) -> Result<Self, String> {
        let json: JsonValue =
            serde_json::from_slice(json).map_err(|e| format!("schema is not json: {e}"))?;
        let mut compiler = Compiler {
            nodes: vec![Node::Bytes],
            names: HashMap::new(),
        };
        let root = compiler.compile(&json, "")?;
        Ok(Self {
            nodes: compiler.nodes,
            root,
        })
    }
}

struct Compiler {
    nodes: Vec<Node>,
    names: HashMap<String, usize>,
}

impl Compiler {
    fn push(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn compile(&mut self, json: &JsonValue, namespace: &str) -> Result<usize, String> {
        match json {
            JsonValue::String(name) => self.named(name, namespace),
            JsonValue::Array(branches) => {
                let branches = branches
                    .iter()
                    .map(|branch| self.compile(branch, namespace))
                    .collect::<Result<_, _>>()?;
                Ok(self.push(Node::Union(branches)))
            }
            JsonValue::Object(map) => match map.get("type") {
                Some(JsonValue::String(kind)) => match kind.as_str() {
                    "record" | "error" => self.record(map, namespace),
                    "enum" => {
                        let symbols = map
                            .get("symbols")
                            .and_then(JsonValue::as_array)
                            .ok_or("an enum has no symbols")?
                            .iter()
                            .map(|s| s.as_str().map(str::to_owned).ok_or("an enum symbol"))
                            .collect::<Result<Vec<_>, _>>()?;
                        let index = self.push(Node::Enum(symbols));
                        self.define(map, namespace, index)?;
                        Ok(index)
                    }
                    "fixed" => {
                        let size = map
                            .get("size")
                            .and_then(JsonValue::as_u64)
                            .and_then(|size| usize::try_from(size).ok())
                            .ok_or("a fixed type has no size")?;
                        let index = self.push(Node::Fixed(size));
                        self.define(map, namespace, index)?;
                        Ok(index)
                    }
                    "array" => {
                        let items = map.get("items").ok_or("an array has no items")?;
                        let items = self.compile(items, namespace)?;
                        Ok(self.push(Node::Array(items)))
                    }
                    "map" => {
                        let values = map.get("values").ok_or("a map has no values")?;
                        let values = self.compile(values, namespace)?;
                        Ok(self.push(Node::Map(values)))
                    }
                    // A primitive with attributes, such as a logical type.
                    _ => self.named(kind, namespace),
                },
                Some(inner @ (JsonValue::Object(_) | JsonValue::Array(_))) => {
                    self.compile(inner, namespace)
                }
                _ => Err("a schema object has no type".to_owned()),
            },
            _ => Err(format!("{json} is not a schema")),
        }
    }

    /// A primitive type, or a reference to a named type defined before.
    fn named(&mut self, name: &str, namespace: &str) -> Result<usize, String> {
        let node = match name {
            "null" => Node::Null,
            "boolean" => Node::Boolean,
            "int" | "long" => Node::Varint,
            "float" => Node::Float,
            "double" => Node::Double,
            "bytes" | "string" => Node::Bytes,
            _ => {
                let full = full_name(name, namespace);
                return self
                    .names
                    .get(&full)
                    .or_else(|| self.names.get(name))
                    .copied()
                    .ok_or_else(|| format!("unknown type {name}"));
            }
        };
        Ok(self.push(node))
    }

    fn record(
        &mut self,
        map: &serde_json::Map<String, JsonValue>,
        namespace: &str,
    ) -> Result<usize, String> {
        // Named before its fields are compiled: a field may refer to the record itself.
        let index = self.push(Node::Record(Vec::new()));
        let namespace = self.define(map, namespace, index)?;
        let fields = map
            .get("fields")
            .and_then(JsonValue::as_array)
            .ok_or("a record has no fields")?
            .iter()
            .map(|field| {
                let name = field
                    .get("name")
                    .and_then(JsonValue::as_str)
                    .ok_or("a record field has no name")?;
                let kind = field.get("type").ok_or("a record field has no type")?;
                Ok((name.to_owned(), self.compile(kind, &namespace)?))
            })
            .collect::<Result<Vec<_>, String>>()?;
        self.nodes[index] = Node::Record(fields);
        Ok(index)
    }

    /// Registers the named type at `index` under its full and short names; returns the
    /// namespace its own definitions are in.
    fn define(
        &mut self,
        map: &serde_json::Map<String, JsonValue>,
        namespace: &str,
        index: usize,
    ) -> Result<String, String> {
        let name = map
            .get("name")
            .and_then(JsonValue::as_str)
            .ok_or("a named type has no name")?;
        let namespace = map
            .get("namespace")
            .and_then(JsonValue::as_str)
            .unwrap_or(namespace);
        let full = full_name(name, namespace);
        let own_namespace = full.rsplit_once('.').map_or("", |(ns, _)| ns).to_owned();
        let short = full.rsplit('.').next().unwrap_or(&full).to_owned();
        self.names.entry(short).or_insert(index);
        self.names.insert(full, index);
        Ok(own_namespace)
    }
}

fn full_name(name: &str, namespace: &str) -> String {
    if name.contains('.') || namespace.is_empty() {
        name.to_owned()
    } else {
        format!("{namespace}.{name}")
    }
}

// ---------------------------------------------------------------------------------------------
// Encoded values
// ---------------------------------------------------------------------------------------------

/// What is wrong with the encoded data.
pub(super) type Malformed = &'static str;

/// Reads a zig-zag varint at `*pos`.
fn read_long(data: &[u8], pos: &mut usize) -> Result<i64, Malformed> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *data.get(*pos).ok_or("truncated number")?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            #[expect(clippy::cast_possible_wrap, reason = "zig-zag decoding")]
            return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
        }
    }
    Err("number longer than 10 bytes")
}

/// Appends `value` as a zig-zag varint.
pub(super) fn write_long(out: &mut Vec<u8>, value: i64) {
    #[expect(clippy::cast_sign_loss, reason = "zig-zag encoding")]
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        #[expect(clippy::cast_possible_truncation, reason = "the low 7 bits")]
        out.push((zigzag as u8 & 0x7f) | 0x80);
        zigzag >>= 7;
    }
    #[expect(clippy::cast_possible_truncation, reason = "below 0x80")]
    out.push(zigzag as u8);
}

/// Appends `bytes` as Avro `bytes` (or `string`): length, then content.
pub(super) fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_long(out, i64::try_from(bytes.len()).unwrap_or(i64::MAX));
    out.extend_from_slice(bytes);
}

/// A length read as a varint: never negative, never past the data.
fn read_len(data: &[u8], pos: &mut usize) -> Result<usize, Malformed> {
    let len = usize::try_from(read_long(data, pos)?).map_err(|_| "negative length")?;
    if data.len() - *pos < len {
        return Err("length past the end of the block");
    }
    Ok(len)
}

/// Refuses a count of items (or records) larger than the bytes left to hold them: every value
/// of a table's metadata takes at least a byte (an array of nulls would not), so a damaged or
/// hostile count is refused here instead of being counted through.
fn check_count(count: u64, data: &[u8], pos: usize) -> Result<(), Malformed> {
    if count > (data.len() - pos) as u64 {
        return Err("more items than bytes left");
    }
    Ok(())
}

/// One value inside a decompressed block: where its bytes are and what type they encode.
#[derive(Clone, Copy)]
pub(super) struct Encoded<'a> {
    schema: &'a Schema,
    node: usize,
    data: &'a [u8],
    range: (usize, usize),
}

impl<'a> Encoded<'a> {
    /// The value of type `node` starting at `start`, its end found by walking it.
    fn at(
        schema: &'a Schema,
        node: usize,
        data: &'a [u8],
        start: usize,
    ) -> Result<Self, Malformed> {
        let mut end = start;
        skip(schema, node, data, &mut end, 0)?;
        Ok(Self {
            schema,
            node,
            data,
            range: (start, end),
        })
    }

    /// The byte range of the value in its block.
    pub(super) fn range(self) -> Range<usize> {
        self.range.0..self.range.1
    }

    /// The whole block the value is in.
    pub(super) fn block(self) -> &'a [u8] {
        self.data
    }

    /// The value inside a union (any other value as is). It ends where the union does: an
    /// encoded union is the branch's index, then the branch's value.
    pub(super) fn inner(self) -> Result<Self, Malformed> {
        let Node::Union(branches) = &self.schema.nodes[self.node] else {
            return Ok(self);
        };
        let mut pos = self.range.0;
        let branch = usize::try_from(read_long(self.data, &mut pos)?)
            .ok()
            .and_then(|index| branches.get(index))
            .ok_or("union branch out of range")?;
        Self {
            node: *branch,
            range: (pos, self.range.1),
            ..self
        }
        .inner()
    }

    /// The fields of a record, each looked at through its union (empty for any other value).
    pub(super) fn fields(self) -> Result<Fields<'a>, Malformed> {
        if !matches!(self.schema.nodes[self.node], Node::Record(_)) {
            return Ok(Fields(Vec::new()));
        }
        Fields::walk(self.schema, self.node, self.data, self.range.0).map(|(fields, _)| fields)
    }

    /// The entries of an array (keys `None`) or a map; empty for any other value.
    pub(super) fn entries(self) -> Result<Vec<(Option<Self>, Self)>, Malformed> {
        let (item, keyed) = match self.schema.nodes[self.node] {
            Node::Array(item) => (item, false),
            Node::Map(value) => (value, true),
            _ => return Ok(Vec::new()),
        };
        let mut entries = Vec::new();
        let mut pos = self.range.0;
        loop {
            let count = read_long(self.data, &mut pos)?;
            if count == 0 {
                return Ok(entries);
            }
            if count < 0 {
                read_long(self.data, &mut pos)?; // the block's size in bytes
            }
            check_count(count.unsigned_abs(), self.data, pos)?;
            for _ in 0..count.unsigned_abs() {
                let key = if keyed {
                    let key = Self::at(self.schema, STRING_NODE, self.data, pos)?;
                    pos = key.range.1;
                    Some(key)
                } else {
                    None
                };
                let value = Self::at(self.schema, item, self.data, pos)?;
                pos = value.range.1;
                entries.push((key, value));
            }
        }
    }

    /// An `int` or `long`.
    pub(super) fn long(self) -> Option<i64> {
        matches!(self.schema.nodes[self.node], Node::Varint)
            .then(|| read_long(self.data, &mut self.range.0.clone()).ok())
            .flatten()
    }

    /// A `bytes` or `string`.
    pub(super) fn bytes(self) -> Option<&'a [u8]> {
        if !matches!(self.schema.nodes[self.node], Node::Bytes) {
            return None;
        }
        let mut pos = self.range.0;
        let len = read_len(self.data, &mut pos).ok()?;
        Some(&self.data[pos..pos + len])
    }

    /// A `string` (or `bytes`) that is UTF-8, or the symbol of an `enum`.
    pub(super) fn str(self) -> Option<&'a str> {
        if let Node::Enum(symbols) = &self.schema.nodes[self.node] {
            let index = read_long(self.data, &mut self.range.0.clone()).ok()?;
            return symbols
                .get(usize::try_from(index).ok()?)
                .map(String::as_str);
        }
        std::str::from_utf8(self.bytes()?).ok()
    }

    /// Whether the value is `null`.
    pub(super) fn is_null(self) -> bool {
        matches!(self.schema.nodes[self.node], Node::Null)
    }
}

/// The fields of a record by name, each looked at through its union.
pub(super) struct Fields<'a>(Vec<(&'a str, Encoded<'a>)>);

impl<'a> Fields<'a> {
    /// The fields of the record of type `node` that starts at `start`, and where it ends: each
    /// field's bytes are walked once (walking the record first, to find its end, walked them
    /// twice; its unions, three times: 5 % of a restore's CPU).
    fn walk(
        schema: &'a Schema,
        node: usize,
        data: &'a [u8],
        start: usize,
    ) -> Result<(Self, usize), Malformed> {
        let Node::Record(fields) = &schema.nodes[node] else {
            return Err("a record is expected");
        };
        let mut pos = start;
        let mut found = Vec::with_capacity(fields.len());
        for (name, node) in fields {
            let value = Encoded::at(schema, *node, data, pos)?;
            pos = value.range.1;
            found.push((name.as_str(), value.inner()?));
        }
        Ok((Self(found), pos))
    }

    pub(super) fn get(&self, name: &str) -> Option<Encoded<'a>> {
        self.0
            .iter()
            .find(|(field, _)| *field == name)
            .map(|(_, value)| *value)
    }
}

/// Advances `pos` past one value of type `node`.
fn skip(
    schema: &Schema,
    node: usize,
    data: &[u8],
    pos: &mut usize,
    depth: usize,
) -> Result<(), Malformed> {
    if depth > MAX_DEPTH {
        return Err("values nested too deep");
    }
    let advance = |pos: &mut usize, len: usize| {
        if data.len() - *pos < len {
            return Err("value past the end of the block");
        }
        *pos += len;
        Ok(())
    };
    match &schema.nodes[node] {
        Node::Null => Ok(()),
        Node::Boolean => advance(pos, 1),
        Node::Varint | Node::Enum(_) => read_long(data, pos).map(drop),
        Node::Float => advance(pos, 4),
        Node::Double => advance(pos, 8),
        Node::Bytes => {
            let len = read_len(data, pos)?;
            advance(pos, len)
        }
        Node::Fixed(size) => advance(pos, *size),
        Node::Union(branches) => {
            let branch = usize::try_from(read_long(data, pos)?)
                .ok()
                .and_then(|index| branches.get(index))
                .ok_or("union branch out of range")?;
            skip(schema, *branch, data, pos, depth + 1)
        }
        Node::Record(fields) => fields
            .iter()
            .try_for_each(|(_, field)| skip(schema, *field, data, pos, depth + 1)),
        &Node::Array(item) | &Node::Map(item) => {
            let keyed = matches!(schema.nodes[node], Node::Map(_));
            loop {
                let count = read_long(data, pos)?;
                if count == 0 {
                    return Ok(());
                }
                if count < 0 {
                    // A block that gives its size can be skipped whole.
                    let size = read_len(data, pos)?;
                    advance(pos, size)?;
                    continue;
                }
                check_count(count.unsigned_abs(), data, *pos)?;
                for _ in 0..count {
                    if keyed {
                        skip(schema, STRING_NODE, data, pos, depth + 1)?;
                    }
                    skip(schema, item, data, pos, depth + 1)?;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rewriting a file
// ---------------------------------------------------------------------------------------------

/// The byte ranges of a block to replace, with what replaces them.
#[derive(Default)]
pub(super) struct Edits(Vec<(Range<usize>, Vec<u8>)>);

impl Edits {
    /// Replaces the bytes of `value` with `bytes` (an encoding of the same type).
    pub(super) fn replace(&mut self, value: Encoded, bytes: Vec<u8>) {
        self.0.push((value.range(), bytes));
    }

    /// Replaces a `string` or `bytes` value.
    pub(super) fn bytes(&mut self, value: Encoded, bytes: &[u8]) {
        let mut out = Vec::with_capacity(bytes.len() + 2);
        write_bytes(&mut out, bytes);
        self.replace(value, out);
    }

    /// Replaces an `int` or `long` value.
    pub(super) fn long(&mut self, value: Encoded, long: i64) {
        let mut out = Vec::with_capacity(10);
        write_long(&mut out, long);
        self.replace(value, out);
    }

    /// `block` with the edits applied, appended to `out`.
    fn apply(&mut self, block: &[u8], out: &mut Vec<u8>) {
        self.0.sort_by_key(|(range, _)| range.start);
        let mut copied = 0;
        for (range, bytes) in self.0.drain(..) {
            debug_assert!(range.start >= copied, "overlapping edits");
            out.extend_from_slice(&block[copied..range.start]);
            out.extend_from_slice(&bytes);
            copied = range.end;
        }
        out.extend_from_slice(&block[copied..]);
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

    /// Builds a [`RewriteError::AvroData`] for this record.
    pub(super) fn malformed(self, problem: Malformed) -> RewriteError {
        RewriteError::AvroData {
            file: self.file,
            problem: format!("record {}: {problem}", self.index),
        }
    }

    /// The fields of `record` (a record value).
    pub(super) fn fields(self, record: Encoded<'_>) -> Result<Fields<'_>, RewriteError> {
        record.fields().map_err(|problem| self.malformed(problem))
    }

    /// Rewrites the required string field `name` and returns (old, new) paths.
    pub(super) fn rewrite_path(
        self,
        fields: &Fields,
        name: &'static str,
        rw: &super::PathRewriter,
        edits: &mut Edits,
    ) -> Result<(String, String), RewriteError> {
        let value = fields
            .get(name)
            .ok_or_else(|| self.error(name, "is missing"))?;
        let old = value
            .str()
            .ok_or_else(|| self.error(name, "is not a string"))?;
        let new = rw.rewrite(old)?;
        edits.bytes(value, new.as_bytes());
        Ok((old.to_owned(), new))
    }

    /// Sets the long field `name` to `size` when `new_sizes` has one for `path`; returns the
    /// value the field had.
    pub(super) fn update_size<S: std::hash::BuildHasher>(
        self,
        fields: &Fields,
        name: &'static str,
        path: &str,
        new_sizes: &HashMap<String, i64, S>,
        edits: &mut Edits,
    ) -> Result<i64, RewriteError> {
        let value = fields
            .get(name)
            .ok_or_else(|| self.error(name, "is missing"))?;
        let old = value
            .long()
            .ok_or_else(|| self.error(name, "is not a long"))?;
        if let Some(&new) = new_sizes.get(path)
            && new != old
        {
            edits.long(value, new);
        }
        Ok(old)
    }

    /// The int field `name`, or `default` when the record has no such field.
    pub(super) fn int_or(
        self,
        fields: &Fields,
        name: &'static str,
        default: i32,
    ) -> Result<i32, RewriteError> {
        match fields.get(name) {
            None => Ok(default),
            Some(value) => value
                .long()
                .and_then(|v| i32::try_from(v).ok())
                .ok_or_else(|| self.error(name, "is not an int")),
        }
    }
}

/// About how many bytes of records (before compression) one written block holds: Avro's usual
/// sync interval. Records are written again in blocks of this size whatever blocks they came
/// in: pyiceberg writes a block per record, and compressing (or reading back) a thousand
/// blocks of 250 bytes costs a compressor's set-up each.
const BLOCK_SIZE: usize = 64 * 1024;

/// The data blocks of the file being written.
struct BlockWriter<'a> {
    compressor: Compressor,
    marker: &'a [u8],
    /// The records of the next block, not yet compressed.
    records: Vec<u8>,
    count: usize,
}

impl BlockWriter<'_> {
    /// Writes the records gathered so far as one block, if any.
    fn flush(&mut self, out: &mut Vec<u8>, file: &'static str) -> Result<(), RewriteError> {
        if self.count == 0 {
            return Ok(());
        }
        let block = self.compressor.compress(&mut self.records, file)?;
        write_long(out, i64::try_from(self.count).unwrap_or(i64::MAX));
        write_bytes(out, &block);
        out.extend_from_slice(self.marker);
        self.records.clear();
        self.count = 0;
        Ok(())
    }
}

/// Compresses written blocks: `deflate` through one zlib stream for the whole file (apache-avro
/// sets a compressor up, and clears its tables, for every block), other codecs as apache-avro
/// does.
enum Compressor {
    Deflate(flate2::Compress),
    Other(Codec),
}

impl Compressor {
    fn new(codec: Codec) -> Self {
        match codec {
            Codec::Deflate(_) => {
                Self::Deflate(flate2::Compress::new(flate2::Compression::default(), false))
            }
            other => Self::Other(other),
        }
    }

    /// The compressed form of `data` (which may be left changed).
    fn compress(
        &mut self,
        data: &mut Vec<u8>,
        file: &'static str,
    ) -> Result<Vec<u8>, RewriteError> {
        let failed = |problem: String| RewriteError::AvroEncode { file, problem };
        match self {
            Self::Deflate(deflate) => {
                deflate.reset();
                let mut out = Vec::with_capacity(data.len() / 4 + 64);
                loop {
                    let done = usize::try_from(deflate.total_in()).unwrap_or(data.len());
                    let status = deflate
                        .compress_vec(&data[done..], &mut out, flate2::FlushCompress::Finish)
                        .map_err(|e| failed(format!("deflate: {e}")))?;
                    if status == flate2::Status::StreamEnd {
                        return Ok(out);
                    }
                    out.reserve(out.capacity().max(64));
                }
            }
            Self::Other(codec) => {
                codec
                    .compress(data)
                    .map_err(|source| RewriteError::AvroWrite { file, source })?;
                Ok(std::mem::take(data))
            }
        }
    }
}

/// Inflates one raw `deflate` block through `stream`, reset first.
fn inflate(stream: &mut flate2::Decompress, data: &[u8]) -> Result<Vec<u8>, Malformed> {
    stream.reset(false);
    let mut out = Vec::with_capacity(data.len().saturating_mul(4).max(256));
    loop {
        let (read, wrote) = (stream.total_in(), stream.total_out());
        let done = usize::try_from(read).unwrap_or(data.len()).min(data.len());
        let status = stream
            .decompress_vec(&data[done..], &mut out, flate2::FlushDecompress::Finish)
            .map_err(|_| "damaged deflate data")?;
        if status == flate2::Status::StreamEnd {
            return Ok(out);
        }
        if out.len() == out.capacity() {
            out.reserve(out.capacity());
        } else if stream.total_in() == read && stream.total_out() == wrote {
            return Err("deflate data ends early");
        }
    }
}

/// An Avro container file read a data block at a time.
struct Container<'a> {
    avro: &'a [u8],
    file: &'static str,
    header_len: usize,
    codec: Codec,
    /// `deflate` blocks are inflated through one stream for the whole file (apache-avro sets
    /// one up, and builds its tables, for every block; pyiceberg writes a block per record).
    inflate: Option<flate2::Decompress>,
    schema: Schema,
    /// Where the next block starts.
    pos: usize,
    /// The index in the file of the next block's first record.
    index: usize,
}

impl<'a> Container<'a> {
    fn open(avro: &'a [u8], file: &'static str) -> Result<Self, RewriteError> {
        let header = parse_avro_header(avro, file)?;
        let codec = avro_codec(&header, file)?;
        let schema = header_bytes(&header, "avro.schema")
            .ok_or_else(|| RewriteError::AvroHeader {
                file,
                problem: "no avro.schema".to_owned(),
            })
            .and_then(|json| {
                Schema::compile(json).map_err(|problem| RewriteError::AvroHeader { file, problem })
            })?;
        Ok(Self {
            avro,
            file,
            header_len: header.len,
            inflate: matches!(codec, Codec::Deflate(_)).then(|| flate2::Decompress::new(false)),
            codec,
            schema,
            pos: header.len,
            index: 0,
        })
    }

    /// The header, sync marker included.
    fn header(&self) -> &'a [u8] {
        &self.avro[..self.header_len]
    }

    fn marker(&self) -> &'a [u8] {
        &self.avro[self.header_len - AVRO_MARKER_LEN..self.header_len]
    }

    /// The next data block, decompressed, with its number of records; `each` gets each of
    /// them (its index in the file and its value). `None` after the last block.
    fn next_block(
        &mut self,
        mut each: impl FnMut(RecordContext, Fields<'_>) -> Result<(), RewriteError>,
    ) -> Result<Option<(Vec<u8>, usize)>, RewriteError> {
        let (avro, file, marker) = (self.avro, self.file, self.marker());
        if self.pos >= avro.len() {
            return Ok(None);
        }
        let block_start = self.pos;
        let framing = |problem: Malformed| RewriteError::AvroData {
            file,
            problem: format!("block at byte {block_start}: {problem}"),
        };
        let pos = &mut self.pos;
        let count = read_long(avro, pos).map_err(framing)?;
        let count = usize::try_from(count).map_err(|_| framing("negative record count"))?;
        let size = read_len(avro, pos).map_err(framing)?;
        let stored = &avro[*pos..*pos + size];
        *pos += size;
        if avro.get(*pos..*pos + AVRO_MARKER_LEN) != Some(marker) {
            return Err(framing("no sync marker after the block"));
        }
        *pos += AVRO_MARKER_LEN;

        let block = if let Some(stream) = &mut self.inflate {
            inflate(stream, stored).map_err(framing)?
        } else {
            let mut block = stored.to_vec();
            self.codec
                .decompress(&mut block)
                .map_err(|source| RewriteError::AvroRead { file, source })?;
            block
        };
        check_count(u64::try_from(count).unwrap_or(u64::MAX), &block, 0).map_err(framing)?;
        let mut at = 0;
        for _ in 0..count {
            let ctx = RecordContext {
                file,
                index: self.index,
            };
            let (record, end) = Fields::walk(&self.schema, self.schema.root, &block, at)
                .map_err(|p| ctx.malformed(p))?;
            at = end;
            each(ctx, record)?;
            self.index += 1;
        }
        if at != block.len() {
            return Err(framing("bytes after the block's last record"));
        }
        Ok(Some((block, count)))
    }
}

/// Reads an Avro container file a record at a time: `each` gets each record (its index in
/// the file and its fields), in order.
pub(super) fn read_records(
    avro: &[u8],
    file: &'static str,
    mut each: impl FnMut(RecordContext, Fields<'_>) -> Result<(), RewriteError>,
) -> Result<(), RewriteError> {
    let mut container = Container::open(avro, file)?;
    while container.next_block(&mut each)?.is_some() {}
    Ok(())
}

/// Rewrites an Avro container file a record at a time: `edit` gets each record (its index
/// in the file and its fields) and records the ranges to replace. The header and the sync
/// marker are kept; the records are written in blocks of about [`BLOCK_SIZE`] bytes, compressed
/// with the file's codec.
pub(super) fn rewrite_records(
    avro: &[u8],
    file: &'static str,
    mut edit: impl FnMut(RecordContext, Fields<'_>, &mut Edits) -> Result<(), RewriteError>,
) -> Result<Vec<u8>, RewriteError> {
    let mut container = Container::open(avro, file)?;
    let mut out = Vec::with_capacity(avro.len() + avro.len() / 8);
    out.extend_from_slice(container.header());
    let mut blocks = BlockWriter {
        compressor: Compressor::new(container.codec),
        marker: container.marker(),
        records: Vec::new(),
        count: 0,
    };
    let mut edits = Edits::default();
    while let Some((block, count)) =
        container.next_block(|ctx, record| edit(ctx, record, &mut edits))?
    {
        edits.apply(&block, &mut blocks.records);
        blocks.count += count;
        if blocks.records.len() >= BLOCK_SIZE {
            blocks.flush(&mut out, container.file)?;
        }
    }
    blocks.flush(&mut out, container.file)?;
    Ok(out)
}
