//! Which files make up a table: walked from its metadata, never from a directory listing, so
//! a backup holds exactly what the table references (and nothing an orphan-file cleanup would
//! remove).
//!
//! 1. For each kept snapshot, read its manifest list.
//! 2. For each manifest not seen yet, read it and take every live entry's file (data,
//!    position deletes, equality deletes), with the size the manifest records.
//! 3. Add the statistics and partition-statistics files of the metadata.
//!
//! Manifest lists and manifests are immutable: one that the previous backup of the table
//! walked (its file list records what each references, [`Walked`]) is not read again, so an
//! incremental backup reads only the metadata files that are new since.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _, stream};
use iceberg::io::FileIO;
use iceberg::spec::{DataContentType, Manifest, ManifestList, ManifestStatus, TableMetadata};

use crate::repo::records::{FileEntry, FileKind};

pub(crate) use crate::plan::SnapshotSelection;

/// A file of the table.
#[derive(Debug, Clone)]
pub(crate) struct TableFile {
    /// Absolute path.
    pub path: String,
    /// Kind.
    pub kind: FileKind,
    /// Size recorded by the referencing metadata, else for a metadata file read while
    /// walking the size read.
    pub expected_size: Option<u64>,
    /// For a metadata file read while walking, the SHA-256 of the bytes read: the copy a
    /// backup stores must have it, so that its file list holds exactly what that copy
    /// references. The bytes themselves are not kept (~220 MB of manifests for a table of a
    /// million files): the copy reads them again.
    pub walked_sha256: Option<[u8; 32]>,
    /// For a manifest list or a manifest: the files it references.
    pub refs: Option<Refs>,
}

impl TableFile {
    fn new(path: String, kind: FileKind, expected_size: Option<u64>) -> Self {
        Self {
            path,
            kind,
            expected_size,
            walked_sha256: None,
            refs: None,
        }
    }
}

/// The files a manifest list or manifest references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refs {
    /// Read now: by [`path_digest`].
    Paths(Vec<PathDigest>),
    /// Walked by an earlier backup and not read again: by their indices in its file list.
    /// The walk does not hand out the files such a manifest references; they are the
    /// earlier list's entries at these indices.
    Earlier(Vec<u32>),
}

/// The manifest lists and manifests an earlier backup walked, with what each references
/// (from its file list): they are immutable, so they need not be read again. Only these are
/// held (about one entry in a thousand), not the data files.
#[derive(Debug, Default)]
pub(crate) struct Walked {
    /// By path.
    by_path: HashMap<String, Earlier>,
    /// The paths of the manifests, by index in the earlier list.
    manifests: HashMap<u32, String>,
}

/// A manifest list or manifest of an earlier file list.
#[derive(Debug)]
struct Earlier {
    kind: FileKind,
    size: u64,
    refs: Vec<u32>,
}

impl Walked {
    /// Takes note of entry `index` of an earlier file list of the table, read in order.
    pub(crate) fn add(&mut self, index: u32, entry: &FileEntry) {
        let Some(refs) = &entry.refs else { return };
        if entry.kind == FileKind::Manifest {
            self.manifests.insert(index, entry.path.clone());
        }
        self.by_path.insert(
            entry.path.clone(),
            Earlier {
                kind: entry.kind,
                size: entry.size,
                refs: refs.clone(),
            },
        );
    }

    /// Once the whole earlier list (of `len` entries) was added: forgets the metadata files
    /// that reference an entry beyond it (a damaged list), which are then read again.
    #[must_use]
    pub(crate) fn checked(mut self, len: u32) -> Self {
        self.by_path.retain(|_, e| e.refs.iter().all(|&i| i < len));
        self
    }

    /// What the metadata file at `path` references, when it was walked before (and, for a
    /// manifest, had `size` bytes).
    fn refs(&self, path: &str, size: Option<u64>) -> Option<&Earlier> {
        self.by_path
            .get(path)
            .filter(|e| size.is_none_or(|s| s == e.size))
    }

    /// The manifests (with their lengths) of a manifest list walked before: `None` when the
    /// earlier list lacks one of them.
    fn manifests_of(&self, list: &Earlier) -> Option<Vec<(String, Option<u64>)>> {
        list.refs
            .iter()
            .map(|i| {
                let path = self.manifests.get(i)?;
                let size = self.by_path.get(path)?.size;
                Some((path.clone(), Some(size)))
            })
            .collect()
    }
}

/// Manifests [`walk`] reads and decodes at once.
const MANIFESTS_AT_ONCE: usize = 8;

/// What [`walk`] keeps of the metadata files it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Content {
    /// The SHA-256 of what was read ([`TableFile::walked_sha256`]: a backup stores exactly
    /// the bytes it walked) and what each references ([`TableFile::refs`], for the file list).
    Keep,
    /// Nothing: only the paths, kinds and sizes of the table's files are wanted.
    Drop,
}

/// A path by its digest ([`path_digest`]): 16 bytes where a path takes ~100.
pub(crate) type PathDigest = [u8; 16];

/// The first 16 bytes of the SHA-256 of `path`: two paths of one table share it with a
/// chance of about n² / 2¹²⁹ (10⁻²⁷ for a million files).
pub(crate) fn path_digest(path: &str) -> PathDigest {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(path.as_bytes());
    let mut out = [0; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// Walks the metadata and hands `each` what it references a batch at a time: each manifest
/// list, each manifest with its live data and delete files, then the statistics files. No
/// manifest list or manifest is read twice, and one that `walked` records is not read at
/// all (it comes alone, with [`Refs::Earlier`]); a data file that several manifests hold
/// comes once with each. Only the manifests being read are held, so the walk of a table of
/// any size takes the same memory.
pub(crate) async fn walk<E, Fut>(
    metadata: &TableMetadata,
    file_io: &FileIO,
    selection: SnapshotSelection,
    walked: &Walked,
    content: Content,
    mut each: impl FnMut(Vec<TableFile>) -> Fut,
) -> Result<(), E>
where
    E: From<iceberg::Error>,
    Fut: Future<Output = Result<(), E>>,
{
    let keep = content == Content::Keep;
    let refs = |files: &[TableFile]| match content {
        Content::Keep => Some(Refs::Paths(
            files.iter().map(|f| path_digest(&f.path)).collect(),
        )),
        Content::Drop => None,
    };
    let mut seen = HashSet::new();
    let snapshots: Vec<_> = match selection {
        SnapshotSelection::All => metadata.snapshots().cloned().collect(),
        SnapshotSelection::Current => metadata.current_snapshot().cloned().into_iter().collect(),
    };
    for snapshot in snapshots {
        let list_path = snapshot.manifest_list().to_owned();
        if !seen.insert(list_path.clone()) {
            continue;
        }
        // The manifests of the list, each with its length.
        let earlier = walked
            .refs(&list_path, None)
            .filter(|e| e.kind == FileKind::ManifestList)
            .and_then(|e| Some((e, walked.manifests_of(e)?)));
        let manifests = if let Some((earlier, manifests)) = earlier {
            let mut list = TableFile::new(list_path, FileKind::ManifestList, None);
            list.refs = Some(Refs::Earlier(earlier.refs.clone()));
            each(vec![list]).await?;
            manifests
        } else {
            let (mut list, manifests) = read_manifest_list(metadata, file_io, list_path).await?;
            if content == Content::Drop {
                list.walked_sha256 = None;
                list.refs = None;
            }
            each(vec![list]).await?;
            manifests
        };
        // Manifests are read and decoded several at a time, the decoding on the blocking pool:
        // it is most of a first backup's CPU (100,000 files: 100 manifests of 1,000 entries).
        let fresh: Vec<(String, Option<u64>)> = manifests
            .into_iter()
            .filter(|(path, _)| seen.insert(path.clone()))
            .collect();
        // Room for a manifest in the process's bound on metadata in memory is taken in the
        // manifests' order, before its read starts, and held until what was decoded is
        // handed on: a table's earlier manifest never waits for room its later ones hold.
        let mut read = std::pin::pin!(
            stream::iter(fresh)
                .then(|(path, length)| async move {
                    let earlier = walked
                        .refs(&path, length)
                        .filter(|e| e.kind == FileKind::Manifest);
                    let room = match earlier {
                        Some(_) => None,
                        None => Some(crate::engine::transfer::metadata_room(length).await),
                    };
                    (path, length, earlier, room)
                })
                .map(|(path, length, earlier, room)| async move {
                    if let Some(earlier) = earlier {
                        let manifest = TableFile {
                            refs: Some(Refs::Earlier(earlier.refs.clone())),
                            ..TableFile::new(path, FileKind::Manifest, Some(earlier.size))
                        };
                        return Ok((vec![manifest], room));
                    }
                    let bytes = read_whole(file_io, &path).await?;
                    let read = tokio::task::spawn_blocking(move || {
                        Ok((
                            manifest_entries(&bytes)?,
                            keep.then(|| sha256(&bytes)),
                            bytes.len() as u64,
                        ))
                    })
                    .await
                    .map_err(|e| iceberg::Error::new(iceberg::ErrorKind::Unexpected, e.to_string()))
                    .and_then(|r: iceberg::Result<_>| r)?;
                    let (mut entries, sha256, read) = read;
                    let refs = refs(&entries);
                    // The length the manifest list records, else the length read.
                    entries.push(TableFile {
                        walked_sha256: sha256,
                        refs,
                        ..TableFile::new(path, FileKind::Manifest, length.or(Some(read)))
                    });
                    Ok::<_, iceberg::Error>((entries, room))
                })
                .buffered(MANIFESTS_AT_ONCE)
        );
        while let Some((entries, room)) = read.try_next().await? {
            each(entries).await?;
            drop(room);
        }
    }
    let stats = metadata
        .statistics_iter()
        .map(|s| {
            (
                &s.statistics_path,
                s.file_size_in_bytes,
                FileKind::Statistics,
            )
        })
        .chain(metadata.partition_statistics_iter().map(|s| {
            (
                &s.statistics_path,
                s.file_size_in_bytes,
                FileKind::PartitionStatistics,
            )
        }))
        .map(|(path, size, kind)| TableFile::new(path.clone(), kind, u64::try_from(size).ok()))
        .collect::<Vec<_>>();
    if !stats.is_empty() {
        each(stats).await?;
    }
    Ok(())
}

/// Reads a whole metadata file: a local one into a buffer of its size, any other through
/// `file_io` (which hands back a 2 MiB buffer for a 220 KiB manifest, and reserves as much
/// for a 1.5 KiB table metadata file: at `--jobs 64` those reservations were most of a
/// restore's heap).
pub(crate) async fn read_whole(file_io: &FileIO, path: &str) -> iceberg::Result<Bytes> {
    let Some(local) = crate::engine::transfer::local_path(path) else {
        return file_io.new_input(path)?.read().await;
    };
    tokio::fs::read(&local).await.map(Bytes::from).map_err(|e| {
        iceberg::Error::new(
            iceberg::ErrorKind::Unexpected,
            format!("cannot read {path}"),
        )
        .with_source(e)
    })
}

/// Reads and parses a table metadata file (gzip-compressed or not) through [`read_whole`].
pub(crate) async fn read_table_metadata(
    file_io: &FileIO,
    path: &str,
) -> iceberg::Result<TableMetadata> {
    let raw = read_whole(file_io, path).await?;
    let json = crate::engine::transfer::maybe_gunzip(&raw).map_err(|e| {
        iceberg::Error::new(iceberg::ErrorKind::DataInvalid, "cannot decompress").with_source(e)
    })?;
    serde_json::from_slice(&json).map_err(|e| {
        iceberg::Error::new(iceberg::ErrorKind::DataInvalid, "cannot parse").with_source(e)
    })
}

/// The SHA-256 of `bytes`.
fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

/// Reads a manifest list: the list as a table file, and its manifests with their lengths.
async fn read_manifest_list(
    metadata: &TableMetadata,
    file_io: &FileIO,
    path: String,
) -> iceberg::Result<(TableFile, Vec<(String, Option<u64>)>)> {
    let bytes = read_whole(file_io, &path).await?;
    let list = ManifestList::parse_with_version(&bytes, metadata.format_version())?;
    let manifests: Vec<(String, Option<u64>)> = list
        .entries()
        .iter()
        .map(|m| {
            let length = u64::try_from(m.manifest_length).ok();
            (m.manifest_path.clone(), length)
        })
        .collect();
    let file = TableFile {
        refs: Some(Refs::Paths(
            manifests.iter().map(|(p, _)| path_digest(p)).collect(),
        )),
        walked_sha256: Some(sha256(&bytes)),
        ..TableFile::new(path, FileKind::ManifestList, Some(bytes.len() as u64))
    };
    Ok((file, manifests))
}

/// The live data and delete files of a manifest, with the sizes it records. Entries are
/// walked one at a time over their encoding and only their status, content, path and size
/// read (no statistics decoded): a manifest decoded whole (iceberg's `Manifest::parse_avro`)
/// holds every entry's statistics at once, ~3 KiB an entry for two columns, 30 MB for a
/// manifest of 10,000 files. One that does not read this way is parsed whole, for iceberg's
/// error.
fn manifest_entries(bytes: &[u8]) -> iceberg::Result<Vec<TableFile>> {
    match live_entries(bytes) {
        Some(files) => Ok(files),
        None => Ok(Manifest::parse_avro(bytes)?
            .entries()
            .iter()
            .filter(|e| e.status() != ManifestStatus::Deleted)
            .map(|e| {
                TableFile::new(
                    e.file_path().to_owned(),
                    kind_of(e.content_type()),
                    Some(e.file_size_in_bytes()),
                )
            })
            .collect()),
    }
}

/// [`manifest_entries`], an entry at a time: `None` for anything unexpected.
fn live_entries(bytes: &[u8]) -> Option<Vec<TableFile>> {
    crate::engine::rewrite::live_manifest_files(bytes)
        .ok()?
        .into_iter()
        .map(|(path, content, size)| {
            Some(TableFile::new(
                path,
                kind_of(content),
                Some(u64::try_from(size).ok()?),
            ))
        })
        .collect()
}

/// The kind of file a manifest entry's content names.
fn kind_of(content: DataContentType) -> FileKind {
    match content {
        DataContentType::Data => FileKind::Data,
        DataContentType::PositionDeletes => FileKind::PositionDeletes,
        DataContentType::EqualityDeletes => FileKind::EqualityDeletes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::types::Value;

    /// A manifest's entries as Avro writes them: `status`, then `data_file` with `content`
    /// (format v2 and later; `None` leaves the field out, as format v1 does), path and size.
    fn manifest(entries: &[(i32, Option<i32>, &str, i64)]) -> Vec<u8> {
        let content = if entries.iter().any(|e| e.1.is_some()) {
            r#"{"name": "content", "type": "int"},"#
        } else {
            ""
        };
        let schema = apache_avro::Schema::parse_str(&format!(
            r#"{{"type": "record", "name": "manifest_entry", "fields": [
                {{"name": "status", "type": "int"}},
                {{"name": "snapshot_id", "type": ["null", "long"]}},
                {{"name": "data_file", "type": {{"type": "record", "name": "r2", "fields": [
                    {content}
                    {{"name": "file_path", "type": "string"}},
                    {{"name": "file_format", "type": "string"}},
                    {{"name": "file_size_in_bytes", "type": "long"}}
                ]}}}}
            ]}}"#
        ))
        .unwrap();
        let mut writer = apache_avro::Writer::new(&schema, Vec::new());
        for &(status, content, path, size) in entries {
            let mut file = Vec::new();
            if let Some(content) = content {
                file.push(("content".to_owned(), Value::Int(content)));
            }
            file.push(("file_path".to_owned(), Value::String(path.to_owned())));
            file.push((
                "file_format".to_owned(),
                Value::String("PARQUET".to_owned()),
            ));
            file.push(("file_size_in_bytes".to_owned(), Value::Long(size)));
            writer
                .append(Value::Record(vec![
                    ("status".to_owned(), Value::Int(status)),
                    (
                        "snapshot_id".to_owned(),
                        Value::Union(1, Box::new(Value::Long(7))),
                    ),
                    ("data_file".to_owned(), Value::Record(file)),
                ]))
                .unwrap();
        }
        writer.into_inner().unwrap()
    }

    fn listed(bytes: &[u8]) -> Vec<(String, FileKind, Option<u64>)> {
        live_entries(bytes)
            .expect("read entry by entry")
            .into_iter()
            .map(|f| (f.path, f.kind, f.expected_size))
            .collect()
    }

    #[test]
    fn a_manifest_lists_its_live_files_with_their_kinds_and_sizes() {
        let bytes = manifest(&[
            (1, Some(0), "s3://b/t/data/a.parquet", 10),
            (2, Some(0), "s3://b/t/data/gone.parquet", 11),
            (0, Some(1), "s3://b/t/data/pos.parquet", 12),
            (1, Some(2), "s3://b/t/data/eq.parquet", 13),
        ]);
        assert_eq!(
            listed(&bytes),
            vec![
                ("s3://b/t/data/a.parquet".into(), FileKind::Data, Some(10)),
                (
                    "s3://b/t/data/pos.parquet".into(),
                    FileKind::PositionDeletes,
                    Some(12)
                ),
                (
                    "s3://b/t/data/eq.parquet".into(),
                    FileKind::EqualityDeletes,
                    Some(13)
                ),
            ],
            "the deleted entry is left out"
        );
    }

    #[test]
    fn a_format_v1_manifest_holds_data_files() {
        let bytes = manifest(&[(1, None, "file:///t/data/a.parquet", 5)]);
        assert_eq!(
            listed(&bytes),
            vec![("file:///t/data/a.parquet".into(), FileKind::Data, Some(5))]
        );
    }

    #[test]
    fn what_does_not_read_entry_by_entry_is_left_to_iceberg() {
        let bytes = manifest(&[(1, Some(9), "s3://b/t/data/a.parquet", 10)]);
        assert!(live_entries(&bytes).is_none(), "an unknown content type");
        assert!(live_entries(b"not avro").is_none());
        assert!(manifest_entries(b"not avro").is_err());
    }
}

#[cfg(test)]
mod walked_tests {
    use super::*;

    fn entry(path: &str, kind: FileKind, refs: Option<Vec<u32>>) -> FileEntry {
        FileEntry {
            path: path.to_owned(),
            rel: path.to_owned(),
            kind,
            size: 1,
            sha256: "0".repeat(64),
            refs,
        }
    }

    #[test]
    fn a_manifest_whose_references_go_beyond_the_list_is_read_again() {
        let mut walked = Walked::default();
        walked.add(0, &entry("d", FileKind::Data, None));
        walked.add(1, &entry("m1", FileKind::Manifest, Some(vec![0])));
        walked.add(2, &entry("m2", FileKind::Manifest, Some(vec![0, 7])));
        walked.add(3, &entry("l", FileKind::ManifestList, Some(vec![1, 2])));
        let walked = walked.checked(4);
        assert!(walked.refs("m1", Some(1)).is_some());
        assert!(walked.refs("m1", Some(2)).is_none(), "another length");
        assert!(
            walked.refs("m2", Some(1)).is_none(),
            "entry 7 is beyond the list"
        );
        let list = walked.refs("l", None).unwrap();
        assert!(
            walked.manifests_of(list).is_none(),
            "the list is read again with its damaged manifest"
        );
    }
}
