//! Every key of the repository format is built here and only here.
//!
//! ```text
//! bcn-repository.json                              the repository manifest
//! pits/<pit-id>.json                               a PIT record: the commit point
//! tables/<table-key>/metadata/<pit-id>.metadata.json   table metadata as of that PIT (verbatim)
//! tables/<table-key>/files/<path relative to the table location>   verbatim Iceberg files
//! tables/<table-key>/filelists/<pit-id>.json       every file of the table at that PIT
//! tables/<table-key>/filelists/<pit-id>.<n>.jsonl  its entries, in parts (format v2)
//! locks/exclusive.json                             the writer lock
//! damaged/<digest>.json                            an object verify found damaged or missing
//! verifications/<id>.json                          one run of `bcn verify` and its outcome
//! ```
//!
//! A table key is the table UUID, or `name-<digest>` for a format-v1 table without one.

use sha2::{Digest, Sha256};

/// The repository manifest.
pub const MANIFEST: &str = "bcn-repository.json";
/// Prefix of every PIT record.
pub const PITS_PREFIX: &str = "pits/";
/// The one exclusive lock of a repository.
pub const EXCLUSIVE_LOCK: &str = "locks/exclusive.json";
/// Prefix under which table objects live.
pub const TABLES_PREFIX: &str = "tables/";
/// Prefix of verification records.
pub const VERIFICATIONS_PREFIX: &str = "verifications/";

/// Key of the record of verification `id`.
pub fn verification(id: &str) -> String {
    format!("{VERIFICATIONS_PREFIX}{id}.json")
}

/// Prefix of damage markers: objects `bcn verify` found damaged or missing.
pub const DAMAGED_PREFIX: &str = "damaged/";

/// Key of the damage marker of the object `key` (a digest, so any key fits).
pub fn damaged(key: &str) -> String {
    format!(
        "{DAMAGED_PREFIX}{}.json",
        &hex::encode(Sha256::digest(key.as_bytes()))[..32]
    )
}

/// Key of the PIT record `pit`.
pub fn pit(pit: &str) -> String {
    format!("{PITS_PREFIX}{pit}.json")
}

/// The PIT id of a key under [`PITS_PREFIX`], if it is one.
pub fn pit_id_of(key: &str) -> Option<&str> {
    key.strip_prefix(PITS_PREFIX)?
        .strip_suffix(".json")
        .filter(|id| !id.contains('/'))
}

/// Key of a table's metadata as of `pit`.
pub fn table_metadata(table_key: &str, pit: &str) -> String {
    format!("{TABLES_PREFIX}{table_key}/metadata/{pit}.metadata.json")
}

/// Key of a table's file list as of `pit`.
pub fn filelist(table_key: &str, pit: &str) -> String {
    format!("{TABLES_PREFIX}{table_key}/filelists/{pit}.json")
}

/// Key of part `n` of a table's file list as of `pit`.
pub fn filelist_part(table_key: &str, pit: &str, n: usize) -> String {
    format!("{TABLES_PREFIX}{table_key}/filelists/{pit}.{n}.jsonl")
}

/// Key of a stored Iceberg file, `rel` being its path relative to the table location.
pub fn table_file(table_key: &str, rel: &str) -> String {
    format!("{TABLES_PREFIX}{table_key}/files/{rel}")
}

/// Prefix of every object of one table.
pub fn table_prefix(table_key: &str) -> String {
    format!("{TABLES_PREFIX}{table_key}/")
}

/// Key for a table identified by UUID, or by name when the table has none (format v1).
pub fn table_key(uuid: Option<&str>, database: &[String], table: &str) -> String {
    if let Some(uuid) = uuid {
        uuid.to_ascii_lowercase()
    } else {
        let mut hasher = Sha256::new();
        for part in database {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        hasher.update(table.as_bytes());
        format!("name-{}", &hex::encode(hasher.finalize())[..32])
    }
}

/// Checks a table key read from a record before it becomes part of a repository key: a
/// lower-case UUID, or `name-` and 32 hex digits.
pub fn check_table_key(key: &str) -> Result<(), String> {
    let by_name = key
        .strip_prefix("name-")
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    let by_uuid = key.len() == 36
        && uuid::Uuid::parse_str(key).is_ok()
        && !key.bytes().any(|b| b.is_ascii_uppercase());
    if by_name || by_uuid {
        Ok(())
    } else {
        Err(format!(
            "invalid table key {key:?} (a UUID or `name-<digest>` was expected)"
        ))
    }
}

/// Checks a PIT id read from a record before it becomes part of a repository key: ASCII
/// letters, digits, `.`, `-` and `_`, not starting with `.`.
pub fn check_pit_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid PIT id {id:?}"))
    }
}

/// Checks a stored file's path relative to its table's `files/` prefix (see
/// [`crate::names::is_contained_relative`]).
pub fn check_relative_file(rel: &str) -> Result<(), String> {
    if crate::names::is_contained_relative(rel) {
        Ok(())
    } else {
        Err(format!(
            "invalid stored file path {rel:?}: it would leave the table's files/ prefix"
        ))
    }
}

/// Normalises a location so that equal places compare equal: `file:/x`, `file:///x` and `/x`
/// become `file:///x`; `s3a://` and `s3n://` become `s3://`; trailing slashes go.
///
/// Frozen: the keys of stored files are derived from it (see [`relative_file_path`]), so a
/// change would make every incremental backup copy such files again. Restores compare paths
/// with [`crate::location::match_key`] instead.
pub fn normalize_location(location: &str) -> String {
    let trimmed = location.trim_end_matches('/');
    let normalized = if let Some(rest) = trimmed.strip_prefix("file:") {
        format!("file:///{}", rest.trim_start_matches('/'))
    } else if trimmed.starts_with('/') {
        format!("file://{trimmed}")
    } else if let Some(rest) = trimmed
        .strip_prefix("s3a://")
        .or_else(|| trimmed.strip_prefix("s3n://"))
    {
        format!("s3://{rest}")
    } else {
        trimmed.to_owned()
    };
    if normalized.is_empty() {
        location.to_owned()
    } else {
        normalized
    }
}

/// The storage-relative path of `file` inside the table `location`: its path below the location
/// when it lies there, else `_external/<scheme>/<authority and path>` so that no two files can
/// collide and no key can escape the table's prefix.
pub fn relative_file_path(location: &str, file: &str) -> String {
    let location = normalize_location(location);
    let file = normalize_location(file);
    if let Some(rel) = file
        .strip_prefix(&location)
        .and_then(|r| r.strip_prefix('/'))
        && is_safe_relative(rel)
    {
        return rel.to_owned();
    }
    let (scheme, rest) = file.split_once("://").unwrap_or(("none", &file));
    let rest: Vec<&str> = rest
        .split('/')
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
        .collect();
    format!("_external/{scheme}/{}", rest.join("/"))
}

fn is_safe_relative(rel: &str) -> bool {
    !rel.is_empty()
        && rel
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable() {
        assert_eq!(pit("p1"), "pits/p1.json");
        assert_eq!(pit_id_of("pits/p1.json"), Some("p1"));
        assert_eq!(pit_id_of("pits/x/p1.json"), None);
        assert_eq!(
            table_metadata("u", "p"),
            "tables/u/metadata/p.metadata.json"
        );
        assert_eq!(filelist("u", "p"), "tables/u/filelists/p.json");
        assert_eq!(filelist_part("u", "p", 3), "tables/u/filelists/p.3.jsonl");
        assert_eq!(
            table_file("u", "data/a.parquet"),
            "tables/u/files/data/a.parquet"
        );
        assert_eq!(table_key(Some("ABC"), &[], "t"), "abc");
        let by_name = table_key(None, &["db".into()], "t");
        assert!(by_name.starts_with("name-") && by_name.len() == 37);
        assert_ne!(by_name, table_key(None, &["d".into()], "bt"));
    }

    #[test]
    fn keys_from_records_are_checked() {
        assert!(check_table_key("0f8fad5b-d9cb-469f-a165-70867728950e").is_ok());
        assert!(check_table_key(&table_key(None, &["d".into()], "t")).is_ok());
        for bad in [
            "..",
            "../x",
            "0F8FAD5B-D9CB-469F-A165-70867728950E",
            "name-xyz",
            "",
        ] {
            assert!(check_table_key(bad).is_err(), "{bad}");
        }
        assert!(check_pit_id("20261121T065012.345Z-ab12cd").is_ok());
        for bad in ["", "..", "../p", "a/b", ".hidden"] {
            assert!(check_pit_id(bad).is_err(), "{bad}");
        }
        assert!(check_relative_file("data/a.parquet").is_ok());
        assert!(check_relative_file("../../a").is_err());
    }

    #[test]
    fn locations_normalize() {
        assert_eq!(normalize_location("file:/w/t/"), "file:///w/t");
        assert_eq!(normalize_location("file:///w/t"), "file:///w/t");
        assert_eq!(normalize_location("/w/t"), "file:///w/t");
        assert_eq!(normalize_location("s3a://b/w"), "s3://b/w");
    }

    #[test]
    fn relative_paths_never_escape() {
        assert_eq!(
            relative_file_path("file:/w/t", "file:///w/t/data/a.parquet"),
            "data/a.parquet"
        );
        assert_eq!(
            relative_file_path("s3://b/t", "s3a://b/t/metadata/m.avro"),
            "metadata/m.avro"
        );
        assert_eq!(
            relative_file_path("s3://b/t", "s3://b/other/x.parquet"),
            "_external/s3/b/other/x.parquet"
        );
        assert_eq!(
            relative_file_path("file:///w/t", "file:///w/t/../../etc/passwd"),
            "_external/file/w/t/etc/passwd"
        );
    }
}
