//! Records as bytes: canonical JSON with a checksum field, decoded with the record named
//! in every error.

use serde::{Deserialize, Serialize};

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
    let mut tree: serde_json::Value = serde_json::from_slice(bytes).map_err(corrupt)?;
    // Records written before checksums existed have none; every record written now has one.
    match tree.as_object_mut().and_then(|o| o.remove(CHECKSUM_FIELD)) {
        Some(recorded) if recorded.as_str() != Some(checksum_of(&tree).as_str()) => {
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
    serde_json::from_value(tree).map_err(corrupt)
}

/// The field that holds a record's own checksum.
const CHECKSUM_FIELD: &str = "checksum";

/// `sha256:<hex>` of the compact JSON of `tree` (keys in written order, which the
/// `preserve_order` feature of `serde_json` keeps when the record is read back).
fn checksum_of(tree: &serde_json::Value) -> String {
    use sha2::Digest as _;
    let compact = serde_json::to_vec(tree).unwrap_or_default();
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(&compact)))
}

/// Encodes a record as pretty JSON, with its own checksum as the last field, so that damage
/// or a hand edit is detected when it is read ([`decode`]), not obeyed.
pub fn encode<T: Serialize>(record: &T) -> bytes::Bytes {
    // Serialising these plain structs cannot fail: no maps with non-string keys, no custom
    // serialisers that error.
    let mut tree = serde_json::to_value(record).unwrap_or_default();
    let sum = checksum_of(&tree);
    if let Some(object) = tree.as_object_mut() {
        object.insert(CHECKSUM_FIELD.to_owned(), serde_json::Value::String(sum));
    }
    let mut out = serde_json::to_vec_pretty(&tree).unwrap_or_default();
    out.push(b'\n');
    bytes::Bytes::from(out)
}
