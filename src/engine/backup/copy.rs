//! The copy step of a table's backup: each file the walk found is reused when the repository
//! holds it, copied server-side on one S3 service, or streamed and checksummed.

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt, stream};

use crate::engine::files::TableFile;
use crate::engine::transfer::{self, TransferError, file_to_store, hash_stored};
use crate::engine::{Event, error_chain};
use crate::plan::BackupMode;
use crate::repo::layout;
use crate::repo::records::{FileEntry, FileKind};

use super::table::{Added, AttemptError, Stored, TableJob};

impl TableJob<'_> {
    /// Copies the files the repository lacks; returns the file list entries and what was added.
    pub(super) async fn copy_files(
        &self,
        key: &str,
        location: &str,
        file_io: &iceberg::io::FileIO,
        files: Vec<TableFile>,
        known: &HashMap<String, FileEntry>,
    ) -> Result<(Vec<FileEntry>, Added), AttemptError> {
        let mut refs: HashMap<String, Vec<String>> = HashMap::new();
        let files: Vec<TableFile> = files
            .into_iter()
            .map(|mut file| {
                if matches!(file.kind, FileKind::Manifest | FileKind::ManifestList) {
                    refs.insert(file.path.clone(), std::mem::take(&mut file.refs));
                }
                file
            })
            .collect();
        let results: Vec<(FileEntry, Stored)> = stream::iter(files)
            .map(|file| self.store_file(key, location, file_io, file, known))
            .buffer_unordered(self.request.options.file_concurrency.max(1))
            .try_collect()
            .await?;
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
        // What each manifest list and manifest references, as indices into the sorted list,
        // so that the next backup need not read them again.
        let index: HashMap<&str, u32> = entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some((e.path.as_str(), u32::try_from(i).ok()?)))
            .collect();
        let resolved: Vec<Option<Vec<u32>>> = entries
            .iter()
            .map(|e| {
                let paths = refs.get(&e.path)?;
                paths
                    .iter()
                    .map(|p| index.get(p.as_str()).copied())
                    .collect()
            })
            .collect();
        for (entry, refs) in entries.iter_mut().zip(resolved) {
            entry.refs = refs;
        }
        Ok((entries, added))
    }

    /// Makes sure one file is in the repository. Returns its entry and how it got there (for
    /// a dry run: whether it would be copied).
    async fn store_file(
        &self,
        key: &str,
        location: &str,
        file_io: &iceberg::io::FileIO,
        file: TableFile,
        known: &HashMap<String, FileEntry>,
    ) -> Result<(FileEntry, Stored), AttemptError> {
        let fatal = |e: &(dyn std::error::Error + 'static)| AttemptError::Fatal(error_chain(e));
        let full = self.request.options.mode == BackupMode::Full;
        let rel = layout::relative_file_path(location, &file.path);
        let object = layout::table_file(key, &rel);
        let damaged = self.damaged.contains(&object);
        let size_ok = |size: u64| file.expected_size.is_none_or(|e| e == size);
        if let Some(entry) = known
            .get(&rel)
            .filter(|e| !full && !damaged && size_ok(e.size))
        {
            return Ok((
                FileEntry {
                    path: file.path,
                    refs: None,
                    ..entry.clone()
                },
                Stored::Reused,
            ));
        }
        let store = self.repo.store().as_ref();
        let stored = store.head(&object).await.map_err(|e| fatal(&e))?;
        if let Some(meta) = stored.filter(|m| !full && !damaged && size_ok(m.size)) {
            // Left by an interrupted run: reuse it, checksummed from the repository.
            let sha256 = if self.request.options.dry_run {
                String::new()
            } else {
                hash_stored(store, &object, meta.size)
                    .await
                    .map_err(|e| fatal(&e))?
            };
            let entry = FileEntry {
                path: file.path,
                rel,
                kind: file.kind,
                size: meta.size,
                sha256,
                refs: None,
            };
            return Ok((entry, Stored::Reused));
        }
        if self.request.options.dry_run {
            let size = match (file.expected_size, &file.content) {
                (Some(size), _) => size,
                (None, Some(content)) => content.len() as u64,
                (None, None) => transfer::file_size(file_io, &file.path)
                    .await
                    .map_err(|e| fatal(&e))?
                    .unwrap_or(0),
            };
            let entry = FileEntry {
                path: file.path,
                rel,
                kind: file.kind,
                size,
                sha256: String::new(),
                refs: None,
            };
            return Ok((entry, Stored::Copied));
        }
        if let Some(done) = self
            .copy_server_side(key, file_io, &file, &rel, &object)
            .await?
        {
            self.healed(damaged, &object).await;
            return Ok(done);
        }
        let (size, sha256) =
            match file_to_store(file_io, &file.path, file.content, store, &object).await {
                Ok(done) => done,
                Err(e) => return Err(self.classify(file_io, &file.path, &e).await),
            };
        if !size_ok(size) {
            let _ = store.delete(&object).await;
            let expected = file.expected_size.unwrap_or(0);
            let e = TransferError::SizeMismatch {
                path: file.path,
                expected,
                actual: size,
            };
            return Err(AttemptError::Fatal(e.to_string()));
        }
        self.observer.event(&Event::FileCopied {
            table: key,
            bytes: size,
        });
        self.healed(damaged, &object).await;
        Ok((
            FileEntry {
                path: file.path,
                rel,
                kind: file.kind,
                size,
                sha256,
                refs: None,
            },
            Stored::Copied,
        ))
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
    ) -> Result<Option<(FileEntry, Stored)>, AttemptError> {
        /// `CopyObject` copies at most 5 GiB.
        const MAX_COPY: u64 = 5 << 30;
        let on_s3 = file.path.starts_with("s3://") || file.path.starts_with("s3a://");
        if !on_s3 || file.content.is_some() || file.expected_size.is_none_or(|s| s > MAX_COPY) {
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
            return Err(AttemptError::Fatal(e.to_string()));
        }
        let sha256 = if sha256.is_empty() {
            hash_stored(store, object, size)
                .await
                .map_err(|e| AttemptError::Fatal(error_chain(&e)))?
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
    ) -> AttemptError {
        match file_io.exists(path).await {
            Ok(false) => AttemptError::Moved(format!("{path} vanished while it was copied")),
            _ => AttemptError::Fatal(error_chain(e)),
        }
    }
}
