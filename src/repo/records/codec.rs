//! Records as bytes: canonical JSON with a checksum field, decoded with the record named
//! in every error.

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::FORMAT_VERSION;

/// A record that could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or not the expected shape.
    #[error("{what} {key} is corrupt: {source}")]
    Corrupt {
        /// Record kind.
        what: &'static str,
        /// Its key.
        key: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The record's own checksum does not match its content: damaged, or edited by hand.
    #[error("{what} {key} is damaged: its content does not match the checksum it was written with")]
    Damaged {
        /// Record kind.
        what: &'static str,
        /// Its key.
        key: String,
    },
    /// The record parses but holds a value that cannot be used safely (a key or path that
    /// would leave its place in the repository or the restored table).
    #[error("{what} {key} is damaged: {problem}")]
    Invalid {
        /// Record kind.
        what: &'static str,
        /// Its key.
        key: String,
        /// What is wrong.
        problem: String,
    },
    /// Written by a newer bcn.
    #[error(
        "{what} {key} has format version {found}, newer than this bcn supports ({FORMAT_VERSION}); upgrade bcn"
    )]
    TooNew {
        /// Record kind.
        what: &'static str,
        /// Its key.
        key: String,
        /// The version found.
        found: u64,
    },
}

/// Decodes a versioned record, refusing format versions newer than [`FORMAT_VERSION`] and a
/// checksum that does not match.
pub fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    key: &str,
    bytes: &[u8],
) -> Result<T, DecodeError> {
    decode_with(what, key, bytes, false)
}

/// [`decode`], refusing also a record without its checksum when `require_checksum`.
///
/// No `serde_json::Value` tree is built: the checksum is computed while the record is
/// scanned, then the record is deserialised from the bytes. A tree of a
/// 100,000-file list took ~1 KiB a file.
pub fn decode_with<T: serde::de::DeserializeOwned>(
    what: &'static str,
    key: &str,
    bytes: &[u8],
    require_checksum: bool,
) -> Result<T, DecodeError> {
    #[derive(Deserialize)]
    struct Version {
        format_version: u64,
    }
    let corrupt = |source| DecodeError::Corrupt {
        what,
        key: key.to_owned(),
        source,
    };
    let version: Version = serde_json::from_slice(bytes).map_err(corrupt)?;
    if version.format_version > u64::from(FORMAT_VERSION) {
        return Err(DecodeError::TooNew {
            what,
            key: key.to_owned(),
            found: version.format_version,
        });
    }
    let mut hasher = HashWriter(sha2::Sha256::new());
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let recorded =
        serde::de::DeserializeSeed::deserialize(Canonical::record(&mut hasher), &mut deserializer)
            .and_then(|recorded| deserializer.end().map(|()| recorded))
            .map_err(corrupt)?;
    // Records written before checksums existed have none; every record written now has one.
    match recorded {
        Some(recorded) if recorded.as_str() != Some(hasher.checksum().as_str()) => {
            return Err(DecodeError::Damaged {
                what,
                key: key.to_owned(),
            });
        }
        None if require_checksum => {
            return Err(DecodeError::Invalid {
                what,
                key: key.to_owned(),
                problem: "it has no checksum, although every record of this repository is written with one (edited by hand?)".into(),
            });
        }
        _ => {}
    }
    serde_json::from_slice(bytes).map_err(corrupt)
}

/// The field that holds a record's own checksum.
const CHECKSUM_FIELD: &str = "checksum";

/// A SHA-256 fed as a writer.
struct HashWriter(sha2::Sha256);

impl HashWriter {
    /// `sha256:<hex>` of what was written.
    fn checksum(self) -> String {
        format!("sha256:{}", hex::encode(self.0.finalize()))
    }
}

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Encodes a record as pretty JSON, with its own checksum as the last field, so that damage
/// or a hand edit is detected when it is read ([`decode`]), not obeyed. The checksum is the
/// SHA-256 of the record's compact JSON, keys in written order.
pub fn encode<T: Serialize>(record: &T) -> bytes::Bytes {
    // Serialising these plain structs cannot fail: no maps with non-string keys, no custom
    // serialisers that error.
    let mut hasher = HashWriter(sha2::Sha256::new());
    let _ = serde_json::to_writer(&mut hasher, record);
    let field = format!("\"{CHECKSUM_FIELD}\": \"{}\"", hasher.checksum());
    let mut out = serde_json::to_vec_pretty(record).unwrap_or_default();
    // `{\n  "a": 1\n}` becomes `{\n  "a": 1,\n  "checksum": "..."\n}`.
    if out.pop_if(|c| *c == b'}').is_some() {
        if out.ends_with(b"{") {
            out.extend_from_slice(format!("\n  {field}\n}}").as_bytes());
        } else {
            out.pop_if(|c| *c == b'\n');
            out.extend_from_slice(format!(",\n  {field}\n}}").as_bytes());
        }
    }
    out.push(b'\n');
    bytes::Bytes::from(out)
}

/// Writes the JSON value it deserialises from in compact form, byte for byte as
/// `serde_json` writes a `Value` parsed from it (the same parse events, each written the way
/// the `Value` would write it: keys in document order, which the `preserve_order` feature
/// keeps), so that a record's checksum needs no tree. At the top of a record
/// ([`Canonical::record`]) it leaves the checksum field out and returns it.
struct Canonical<'w> {
    out: &'w mut HashWriter,
    /// Written before the value: the comma between elements.
    prefix: Option<u8>,
    top: bool,
}

impl<'w> Canonical<'w> {
    fn record(out: &'w mut HashWriter) -> Self {
        Self {
            out,
            prefix: None,
            top: true,
        }
    }

    fn nested(out: &mut HashWriter, prefix: Option<u8>) -> Canonical<'_> {
        Canonical {
            out,
            prefix,
            top: false,
        }
    }

    /// Writes `value` as JSON, after the separator owed before it.
    fn put<E: serde::de::Error>(&mut self, value: &impl Serialize) -> Result<(), E> {
        self.raw(b"");
        serde_json::to_writer(&mut *self.out, value).map_err(E::custom)
    }

    /// Writes `bytes` as they are, after the separator owed before them.
    fn raw(&mut self, bytes: &[u8]) {
        use std::io::Write as _;
        if let Some(prefix) = self.prefix.take() {
            let _ = self.out.write_all(&[prefix]);
        }
        let _ = self.out.write_all(bytes);
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Canonical<'_> {
    /// The checksum field's value, at the top of a record.
    type Value = Option<serde_json::Value>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Canonical<'_> {
    type Value = Option<serde_json::Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: serde::de::Error>(mut self, v: bool) -> Result<Self::Value, E> {
        self.put(&v).map(|()| None)
    }

    fn visit_i64<E: serde::de::Error>(mut self, v: i64) -> Result<Self::Value, E> {
        self.put(&v).map(|()| None)
    }

    fn visit_u64<E: serde::de::Error>(mut self, v: u64) -> Result<Self::Value, E> {
        self.put(&v).map(|()| None)
    }

    fn visit_f64<E: serde::de::Error>(mut self, v: f64) -> Result<Self::Value, E> {
        // As a `Value` holds it: a number that is not finite is `null`.
        self.put(&serde_json::Number::from_f64(v)).map(|()| None)
    }

    fn visit_str<E: serde::de::Error>(mut self, v: &str) -> Result<Self::Value, E> {
        self.put(&v).map(|()| None)
    }

    fn visit_unit<E: serde::de::Error>(mut self) -> Result<Self::Value, E> {
        self.raw(b"null");
        Ok(None)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        mut self,
        mut seq: A,
    ) -> Result<Self::Value, A::Error> {
        self.raw(b"[");
        let mut prefix = None;
        while seq
            .next_element_seed(Canonical::nested(self.out, prefix))?
            .is_some()
        {
            prefix = Some(b',');
        }
        self.raw(b"]");
        Ok(None)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        mut self,
        mut map: A,
    ) -> Result<Self::Value, A::Error> {
        self.raw(b"{");
        let mut prefix = None;
        let mut checksum = None;
        while let Some(key) = map.next_key::<String>()? {
            if self.top && key == CHECKSUM_FIELD {
                checksum = Some(map.next_value::<serde_json::Value>()?);
                continue;
            }
            let mut entry = Canonical::nested(self.out, prefix.take());
            entry.put(&key)?;
            entry.raw(b":");
            map.next_value_seed(Canonical::nested(self.out, None))?;
            prefix = Some(b',');
        }
        self.raw(b"}");
        Ok(checksum)
    }
}
