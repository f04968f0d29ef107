//! The files of a table's backup: which ones the repository holds already (from the
//! previous file list, or left by an interrupted run) and which to copy ([`FilePlan`]); then
//! each is reused, copied server-side on one S3 service, or streamed and checksummed.

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt, stream};

use crate::engine::files::{PathDigest, TableFile, Walked, path_digest};
use crate::engine::transfer::{self, TransferError, file_to_store, hash_stored};
use crate::engine::{Event, TableError, error_chain};
use crate::plan::BackupMode;
use crate::repo::layout;
use crate::repo::records::{FileEntry, FileKind};

use super::table::{Added, Stored, TableJob};

/// What a backup does with one file of a table.
pub(super) enum FilePlan {
    /// The previous file list has it, with this entry.
    Known(FileEntry),
    /// The repository holds it (left by an interrupted run): checksummed there.
    InRepository {
        /// The file as the walk found it.
        file: TableFile,
        /// Its path relative to the table's location.
        rel: String,
        /// Its size in the repository.
        size: u64,
    },
    /// To be copied.
    Copy {
        /// The file as the walk found it.
        file: TableFile,
        /// Its path relative to the table's location.
        rel: String,
        /// `bcn verify` marked the stored copy damaged: it is replaced.
        damaged: bool,
    },
}

impl TableJob<'_> {
    /// Decides, for each file the walk found, whether the repository holds it already.
    /// Returns the plans and what each manifest list and manifest references.
    pub(super) async fn plan_files(
        &self,
        key: &str,
        location: &str,
        files: Vec<TableFile>,
        walked: &Walked,
    ) -> Result<(Vec<FilePlan>, HashMap<String, Vec<PathDigest>>), TableError> {
        let mut refs: HashMap<String, Vec<PathDigest>> = HashMap::new();
        let files: Vec<TableFile> = files
            .into_iter()
            .map(|mut file| {
                if matches!(file.kind, FileKind::Manifest | FileKind::ManifestList) {
                    refs.insert(file.path.clone(), std::mem::take(&mut file.refs));
                }
                file
            })
            .collect();
        let plans = stream::iter(files)
            .map(|file| self.plan_file(key, location, file, walked))
            .buffer_unordered(self.request.options.file_concurrency.max(1))
            .try_collect()
            .await?;
        Ok((plans, refs))
    }

    async fn plan_file(
        &self,
        key: &str,
        location: &str,
        file: TableFile,
        walked: &Walked,
    ) -> Result<FilePlan, TableError> {
        let full = self.request.options.mode == BackupMode::Full;
        let rel = layout::relative_file_path(location, &file.path);
        let object = layout::table_file(key, &rel);
        let damaged = self.damaged.contains(&object);
        let reusable =
            |size: u64| !full && !damaged && file.expected_size.is_none_or(|e| e == size);
        if let Some(entry) = walked.by_rel(&rel).filter(|e| reusable(e.size)) {
            return Ok(FilePlan::Known(FileEntry {
                path: file.path,
                refs: None,
                ..entry.clone()
            }));
        }
        let stored = self
            .repo
            .store()
            .head(&object)
            .await
            .map_err(|e| TableError::io(&e))?;
        Ok(match stored.filter(|m| reusable(m.size)) {
            Some(meta) => FilePlan::InRepository {
                file,
                rel,
                size: meta.size,
            },
            None => FilePlan::Copy { file, rel, damaged },
        })
    }

    /// What storing `files` would add, without writing: sizes as the metadata records them
    /// (or read from the table's storage), no checksums.
    pub(super) async fn preview_files(
        &self,
        file_io: &iceberg::io::FileIO,
        files: Vec<FilePlan>,
    ) -> Result<(Vec<FileEntry>, Added), TableError> {
        let results: Vec<(FileEntry, Stored)> = stream::iter(files)
            .map(|plan| async move {
                Ok(match plan {
                    FilePlan::Known(entry) => (entry, Stored::Reused),
                    FilePlan::InRepository { file, rel, size } => {
                        (entry(file, rel, size, String::new()), Stored::Reused)
                    }
                    FilePlan::Copy { file, rel, .. } => {
                        let size = match file.expected_size {
                            Some(size) => size,
                            None => transfer::file_size(file_io, &file.path)
                                .await
                                .map_err(|e| TableError::io(&e))?
                                .unwrap_or(0),
                        };
                        (entry(file, rel, size, String::new()), Stored::Copied)
                    }
                })
            })
            .buffer_unordered(self.request.options.file_concurrency.max(1))
            .try_collect()
            .await?;
        Ok(sorted(results, &HashMap::new()))
    }

    /// Stores the files the repository lacks; returns the file list entries and what was
    /// added.
    pub(super) async fn store_files(
        &self,
        key: &str,
        file_io: &iceberg::io::FileIO,
        files: Vec<FilePlan>,
        refs: &HashMap<String, Vec<PathDigest>>,
    ) -> Result<(Vec<FileEntry>, Added), TableError> {
        let results: Vec<(FileEntry, Stored)> = stream::iter(files)
            .map(|plan| self.store_file(key, file_io, plan))
            .buffer_unordered(self.request.options.file_concurrency.max(1))
            .try_collect()
            .await?;
        Ok(sorted(results, refs))
    }

    /// Makes sure one file is in the repository. Returns its entry and how it got there.
    async fn store_file(
        &self,
        key: &str,
        file_io: &iceberg::io::FileIO,
        plan: FilePlan,
    ) -> Result<(FileEntry, Stored), TableError> {
        let store = self.repo.store().as_ref();
        let (file, rel, damaged) = match plan {
            FilePlan::Known(entry) => return Ok((entry, Stored::Reused)),
            FilePlan::InRepository { file, rel, size } => {
                let object = layout::table_file(key, &rel);
                let sha256 = hash_stored(store, &object, size)
                    .await
                    .map_err(|e| TableError::io(&e))?;
                if file.walked_sha256.is_none_or(|w| hex::encode(w) == sha256) {
                    return Ok((entry(file, rel, size, sha256), Stored::Reused));
                }
                // Not the metadata file walked: copied again (and checked against it).
                (file, rel, true)
            }
            FilePlan::Copy { file, rel, damaged } => (file, rel, damaged),
        };
        let object = layout::table_file(key, &rel);
        if let Some(done) = self
            .copy_server_side(key, file_io, &file, &rel, &object)
            .await?
        {
            self.healed(damaged, &object).await;
            return Ok(done);
        }
        let (size, sha256) = match file_to_store(file_io, &file.path, store, &object).await {
            Ok(done) => done,
            Err(e) => return Err(self.classify(file_io, &file.path, &e).await),
        };
        if let Some(walked) = file.walked_sha256.map(hex::encode)
            && walked != sha256
        {
            let _ = store.delete(&object).await;
            return Err(TableError::Damaged(format!(
                "{} changed after it was read: its SHA-256 is now {sha256}, it was {walked} when the files it references were listed; Iceberg metadata files are never rewritten in place, so the file is damaged or something rewrote it; run the backup again once the table is sound",
                file.path
            )));
        }
        if file.expected_size.is_some_and(|e| e != size) {
            let _ = store.delete(&object).await;
            let e = TransferError::SizeMismatch {
                path: file.path,
                expected: file.expected_size.unwrap_or(0),
                actual: size,
            };
            return Err(TableError::Damaged(e.to_string()));
        }
        self.observer.event(&Event::FileCopied {
            table: key,
            bytes: size,
        });
        self.healed(damaged, &object).await;
        Ok((entry(file, rel, size, sha256), Stored::Copied))
    }

    /// A damaged object was copied again from the live table: its marker goes.
    async fn healed(&self, damaged: bool, object: &str) {
        if damaged {
            tracing::info!(
                object,
                "a damaged stored file was copied again from the live table"
            );
            if let Err(e) = self.repo.clear_damaged(object).await {
                tracing::warn!(object, error = %error_chain(&e), "could not remove the damage marker");
            }
        }
    }

    /// Copies a file on S3 into an S3 repository on the same service with a server-side copy
    /// (no bytes through bcn); `None` when that is not possible and the file must be streamed.
    /// The SHA-256 is the one S3 computed for the copy, or read back from the repository.
    async fn copy_server_side(
        &self,
        key: &str,
        file_io: &iceberg::io::FileIO,
        file: &TableFile,
        rel: &str,
        object: &str,
    ) -> Result<Option<(FileEntry, Stored)>, TableError> {
        /// `CopyObject` copies at most 5 GiB.
        const MAX_COPY: u64 = 5 << 30;
        let on_s3 = file.path.starts_with("s3://") || file.path.starts_with("s3a://");
        if !on_s3 || file.walked_sha256.is_some() || file.expected_size.is_none_or(|s| s > MAX_COPY)
        {
            return Ok(None);
        }
        let store = self.repo.store().as_ref();
        let endpoint = file_io.config().get("s3.endpoint").map(String::as_str);
        let (size, sha256) = match store.copy_from_s3(&file.path, endpoint, object).await {
            Ok(Some(copied)) => copied,
            Ok(None) => return Ok(None),
            Err(e) => {
                return Err(self
                    .classify(file_io, &file.path, &TransferError::Store(e))
                    .await);
            }
        };
        if file.expected_size != Some(size) {
            let _ = store.delete(object).await;
            let e = TransferError::SizeMismatch {
                path: file.path.clone(),
                expected: file.expected_size.unwrap_or(0),
                actual: size,
            };
            return Err(TableError::Damaged(e.to_string()));
        }
        let sha256 = if sha256.is_empty() {
            hash_stored(store, object, size)
                .await
                .map_err(|e| TableError::io(&e))?
        } else {
            sha256
        };
        self.observer.event(&Event::FileCopied {
            table: key,
            bytes: size,
        });
        let entry = FileEntry {
            path: file.path.clone(),
            rel: rel.to_owned(),
            kind: file.kind,
            size,
            sha256,
            refs: None,
        };
        Ok(Some((entry, Stored::ServerSide)))
    }

    /// A copy failed: if the file is gone, the table moved on (retry); else it is fatal.
    async fn classify(
        &self,
        file_io: &iceberg::io::FileIO,
        path: &str,
        e: &TransferError,
    ) -> TableError {
        match file_io.exists(path).await {
            Ok(false) => TableError::Moved(format!("{path} vanished while it was copied")),
            _ => TableError::io(e),
        }
    }
}

/// A file list entry.
fn entry(file: TableFile, rel: String, size: u64, sha256: String) -> FileEntry {
    FileEntry {
        path: file.path,
        rel,
        kind: file.kind,
        size,
        sha256,
        refs: None,
    }
}

/// The entries sorted by their relative path, with what each manifest list and manifest
/// references as indices into that order (so that the next backup need not read them
/// again); and what was added.
fn sorted(
    results: Vec<(FileEntry, Stored)>,
    refs: &HashMap<String, Vec<PathDigest>>,
) -> (Vec<FileEntry>, Added) {
    let mut added = Added::default();
    let mut entries = Vec::with_capacity(results.len());
    for (entry, stored) in results {
        if stored != Stored::Reused {
            added.files += 1;
            added.bytes += entry.size;
        }
        if stored == Stored::ServerSide {
            added.server_side += 1;
        }
        entries.push(entry);
    }
    entries.sort_by(|a, b| a.rel.cmp(&b.rel));
    let index: HashMap<PathDigest, u32> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| Some((path_digest(&e.path), u32::try_from(i).ok()?)))
        .collect();
    let resolved: Vec<Option<Vec<u32>>> = entries
        .iter()
        .map(|e| {
            let digests = refs.get(&e.path)?;
            digests.iter().map(|d| index.get(d).copied()).collect()
        })
        .collect();
    for (entry, refs) in entries.iter_mut().zip(resolved) {
        entry.refs = refs;
    }
    (entries, added)
}
