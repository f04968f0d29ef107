//! Which files make up a table: walked from its metadata, never from a directory listing, so
//! a backup holds exactly what the table references (and nothing an orphan-file cleanup would
//! remove).
//!
//! 1. For each kept snapshot, read its manifest list.
//! 2. For each manifest not seen yet, read it and take every live entry's file (data,
//!    position deletes, equality deletes), with the size the manifest records.
//! 3. Add the statistics and partition-statistics files of the metadata.

use std::collections::HashSet;

use bytes::Bytes;
use iceberg::io::FileIO;
use iceberg::spec::{DataContentType, Manifest, ManifestList, ManifestStatus, TableMetadata};

use crate::repo::records::FileKind;

pub(crate) use crate::plan::SnapshotSelection;

/// A file of the table.
#[derive(Debug, Clone)]
pub(crate) struct TableFile {
    /// Absolute path.
    pub path: String,
    /// Kind.
    pub kind: FileKind,
    /// Size recorded by the referencing metadata, when it records one.
    pub expected_size: Option<u64>,
    /// The content, for metadata files already read while walking.
    pub content: Option<Bytes>,
}

/// Walks the metadata and returns every file it references, each once.
pub(crate) async fn table_files(
    metadata: &TableMetadata,
    file_io: &FileIO,
    selection: SnapshotSelection,
) -> iceberg::Result<Vec<TableFile>> {
    let mut out = Vec::new();
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
        let list_bytes = file_io.new_input(&list_path)?.read().await?;
        let list = ManifestList::parse_with_version(&list_bytes, metadata.format_version())?;
        out.push(TableFile {
            path: list_path,
            kind: FileKind::ManifestList,
            expected_size: None,
            content: Some(list_bytes),
        });
        for manifest_file in list.entries() {
            if !seen.insert(manifest_file.manifest_path.clone()) {
                continue;
            }
            let bytes = file_io
                .new_input(&manifest_file.manifest_path)?
                .read()
                .await?;
            let manifest = Manifest::parse_avro(&bytes)?;
            for entry in manifest.entries() {
                if entry.status() == ManifestStatus::Deleted
                    || !seen.insert(entry.file_path().to_owned())
                {
                    continue;
                }
                out.push(TableFile {
                    path: entry.file_path().to_owned(),
                    kind: match entry.content_type() {
                        DataContentType::Data => FileKind::Data,
                        DataContentType::PositionDeletes => FileKind::PositionDeletes,
                        DataContentType::EqualityDeletes => FileKind::EqualityDeletes,
                    },
                    expected_size: Some(entry.file_size_in_bytes()),
                    content: None,
                });
            }
            out.push(TableFile {
                path: manifest_file.manifest_path.clone(),
                kind: FileKind::Manifest,
                expected_size: u64::try_from(manifest_file.manifest_length).ok(),
                content: Some(bytes),
            });
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
        }));
    for (path, size, kind) in stats {
        if seen.insert(path.clone()) {
            out.push(TableFile {
                path: path.clone(),
                kind,
                expected_size: u64::try_from(size).ok(),
                content: None,
            });
        }
    }
    Ok(out)
}
