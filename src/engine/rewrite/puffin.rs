//! Deletion vectors: Puffin files whose blobs name the data file they delete from.
//!
//! A format-v3 table keeps its position deletes as `deletion-vector-v1` blobs in Puffin files;
//! each blob's `referenced-data-file` property (in the file's footer) is an absolute path. The
//! footer is the last part of a Puffin file, so moving a table rewrites it alone: every blob
//! keeps its bytes and its offset, which the manifests record as `content_offset` and
//! `content_size_in_bytes`; only the file's size changes (see the manifest rewrite).
//!
//! Layout (<https://iceberg.apache.org/puffin-spec/>):
//! `Magic Blob₁ … Blobₙ Footer`, with `Footer = Magic FooterPayload FooterPayloadSize Flags Magic`,
//! `FooterPayloadSize` a 4-byte little-endian length and `Flags` 4 bytes whose bit 0 of the
//! first byte marks an LZ4-compressed payload.

use serde_json::Value as JsonValue;

use super::{PathRewriter, RewriteError};

/// The 4 bytes that start and end a Puffin file and start its footer.
pub(crate) const PUFFIN_MAGIC: &[u8; 4] = b"PFA1";

/// The blob property holding the path of the data file a deletion vector applies to.
const REFERENCED_DATA_FILE: &str = "referenced-data-file";

/// Whether `bytes` look like a Puffin file (its magic at both ends).
pub(crate) fn is_puffin(bytes: &[u8]) -> bool {
    bytes.len() >= 2 * PUFFIN_MAGIC.len()
        && bytes.starts_with(PUFFIN_MAGIC)
        && bytes.ends_with(PUFFIN_MAGIC)
}

/// Rewrites the `referenced-data-file` property of every blob of a Puffin file, keeping the
/// blobs byte for byte (and so their offsets), the other footer fields and their order.
///
/// # Errors
///
/// When the file is not a well-formed Puffin file, its footer is compressed (no writer known
/// to bcn does that), its payload is not the JSON the spec describes, or a referenced data
/// file lies outside the table's mapped roots.
pub(crate) fn rewrite_deletion_vectors(
    puffin: &[u8],
    rw: &PathRewriter,
) -> Result<Vec<u8>, RewriteError> {
    let bad = |problem: String| RewriteError::Puffin { problem };
    let magic = PUFFIN_MAGIC.len();
    // File magic, footer magic, payload size, flags, closing magic.
    if !is_puffin(puffin) || puffin.len() < 4 * magic + 8 {
        return Err(bad(
            "not a Puffin file (magic `PFA1` missing at its start or end)".into(),
        ));
    }
    let end = puffin.len();
    let flags = &puffin[end - magic - 4..end - magic];
    if flags[0] & 1 != 0 {
        return Err(bad(
            "its footer is LZ4-compressed, which bcn cannot rewrite yet; restore it with --original-location"
                .into(),
        ));
    }
    let size_at = end - magic - 8;
    let mut size = [0; 4];
    size.copy_from_slice(&puffin[size_at..size_at + 4]);
    let payload_size = u32::from_le_bytes(size) as usize;
    let footer_start = size_at
        .checked_sub(payload_size + magic)
        .filter(|start| *start >= magic)
        .ok_or_else(|| {
            bad(format!(
                "footer payload size {payload_size} exceeds the file"
            ))
        })?;
    if &puffin[footer_start..footer_start + magic] != PUFFIN_MAGIC {
        return Err(bad("footer does not start with the magic `PFA1`".into()));
    }
    let payload = &puffin[footer_start + magic..size_at];
    let mut footer: JsonValue = serde_json::from_slice(payload)
        .map_err(|e| bad(format!("footer payload is not JSON: {e}")))?;
    let blobs = footer
        .get_mut("blobs")
        .and_then(JsonValue::as_array_mut)
        .ok_or_else(|| bad("footer has no `blobs` array".into()))?;
    for (index, blob) in blobs.iter_mut().enumerate() {
        let Some(path) = blob
            .get_mut("properties")
            .and_then(|p| p.get_mut(REFERENCED_DATA_FILE))
        else {
            continue;
        };
        let JsonValue::String(path) = path else {
            return Err(bad(format!(
                "blob {index}: property `{REFERENCED_DATA_FILE}` is not a string"
            )));
        };
        *path = rw.rewrite(path)?;
    }
    let payload = serde_json::to_vec(&footer)?;
    let payload_size = u32::try_from(payload.len())
        .map_err(|_| bad("rewritten footer payload exceeds 4 GiB".into()))?;
    let mut out = Vec::with_capacity(footer_start + magic + payload.len() + 8 + magic);
    out.extend_from_slice(&puffin[..footer_start]);
    out.extend_from_slice(PUFFIN_MAGIC);
    out.extend_from_slice(&payload);
    out.extend_from_slice(&payload_size.to_le_bytes());
    out.extend_from_slice(flags);
    out.extend_from_slice(PUFFIN_MAGIC);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Puffin file with the given blob bytes and footer JSON (uncompressed footer).
    fn puffin(blobs: &[&[u8]], footer: &JsonValue) -> Vec<u8> {
        let mut out = PUFFIN_MAGIC.to_vec();
        for blob in blobs {
            out.extend_from_slice(blob);
        }
        let payload = serde_json::to_vec(footer).unwrap();
        out.extend_from_slice(PUFFIN_MAGIC);
        out.extend_from_slice(&payload);
        out.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(PUFFIN_MAGIC);
        out
    }

    fn footer(paths: &[&str]) -> JsonValue {
        let blobs: Vec<JsonValue> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| {
                serde_json::json!({
                    "type": "deletion-vector-v1",
                    "fields": [2_147_483_645],
                    "snapshot-id": -1,
                    "sequence-number": -1,
                    "offset": 4 + 10 * i,
                    "length": 10,
                    "properties": {"referenced-data-file": p, "cardinality": "2"}
                })
            })
            .collect();
        serde_json::json!({"blobs": blobs, "properties": {"created-by": "test"}})
    }

    fn rewriter() -> PathRewriter {
        PathRewriter::new("s3://src/wh/db/t", "file:///restore/db/t")
    }

    #[test]
    fn moves_referenced_data_files_and_keeps_blobs_in_place() {
        let blobs: [&[u8]; 2] = [b"0123456789", b"abcdefghij"];
        let input = puffin(
            &blobs,
            &footer(&[
                "s3://src/wh/db/t/data/a.parquet",
                "s3://src/wh/db/t/data/b.parquet",
            ]),
        );
        let output = rewrite_deletion_vectors(&input, &rewriter()).unwrap();
        // Blobs are where the manifest says they are.
        assert_eq!(&output[..24], &input[..24]);
        assert!(is_puffin(&output));
        let expected = puffin(
            &blobs,
            &footer(&[
                "file:///restore/db/t/data/a.parquet",
                "file:///restore/db/t/data/b.parquet",
            ]),
        );
        assert_eq!(output, expected);
    }

    #[test]
    fn refuses_damaged_or_compressed_files_and_foreign_paths() {
        let input = puffin(
            &[b"0123456789"],
            &footer(&["s3://src/wh/db/t/data/a.parquet"]),
        );
        let mut compressed = input.clone();
        let flags = compressed.len() - 8;
        compressed[flags] = 1;
        let err = rewrite_deletion_vectors(&compressed, &rewriter()).unwrap_err();
        assert!(err.to_string().contains("LZ4"), "{err}");

        let mut truncated = input[..input.len() - 30].to_vec();
        truncated.extend_from_slice(PUFFIN_MAGIC);
        assert!(rewrite_deletion_vectors(&truncated, &rewriter()).is_err());
        assert!(rewrite_deletion_vectors(b"PAR1xxxxPAR1", &rewriter()).is_err());

        let foreign = puffin(&[b"0123456789"], &footer(&["s3://elsewhere/a.parquet"]));
        let err = rewrite_deletion_vectors(&foreign, &rewriter()).unwrap_err();
        assert!(matches!(err, RewriteError::OutsideLocation { .. }), "{err}");
    }
}
