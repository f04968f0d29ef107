//! Writing one table's files: verbatim copies, rewritten metadata, and the record of what
//! was written (removed again when the table fails, made durable before it is registered).

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use futures::{TryStreamExt, stream};
use iceberg::io::FileIO;

use crate::engine::rewrite::{self, PathRewriter};
use crate::engine::transfer::{self, TransferError, read_verified, sha256_hex};
use crate::engine::{Event, Observer, TableError, error_chain};
use crate::repo::layout;
use crate::repo::records::{FileEntry, FileKind};
use crate::store::BackupStore;

use crate::engine::restore::RestoreItem;

/// Files written so far for one table, removed again if the table fails; and the directories
/// of every local file of the table once complete (written, or kept from an interrupted
/// restore), which is made durable while the next ones are written.
#[derive(Default)]
pub(super) struct Written {
    /// Written metadata files (few: one per manifest and manifest list).
    pub(super) paths: std::sync::Mutex<Vec<String>>,
    /// Verbatim copies by their index in the file list: 8 bytes a file rather than its path.
    /// Shared with the blocking tasks that claim them.
    copied: std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
    pub(super) dirs: std::sync::Mutex<BTreeSet<std::path::PathBuf>>,
    pub(super) behind: crate::store::WriteBehind,
}

impl Written {
    pub(super) fn push(&self, path: String) {
        self.paths
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(path);
    }

    /// The file at `index` in the file list is being copied.
    fn copying(&self, index: u64) {
        self.copied
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(index);
    }

    /// Records, when called with a position in `indices`, that the file at that index in the
    /// file list was written.
    fn claims(&self, indices: Vec<u64>) -> impl Fn(usize) + Send + 'static {
        let copied = self.copied.clone();
        move |at| {
            copied
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(indices[at]);
        }
    }

    /// The indices in the file list of the files copied so far (none after this).
    pub(super) fn take_copied(&self) -> Vec<u64> {
        std::mem::take(
            &mut *self
                .copied
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The file at `path` has its final content (`size` bytes) and name: making it durable
    /// starts.
    pub(super) fn complete(&self, path: &str, size: u64) {
        if let Some(file) = transfer::local_path(path) {
            if let Some(dir) = file.parent() {
                let mut dirs = self
                    .dirs
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if !dirs.contains(dir) {
                    dirs.insert(dir.to_path_buf());
                }
            }
            self.behind.start(file, size);
        }
    }

    /// Makes every file of the table durable, with its directories: once, before the table
    /// is registered.
    pub(super) async fn sync(&self) -> Result<(), TableError> {
        let failed =
            |e: std::io::Error| TableError::Io(format!("making the restored files durable: {e}"));
        self.behind.wait().await.map_err(failed)?;
        let dirs = std::mem::take(
            &mut *self
                .dirs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        crate::store::durably(move || crate::store::sync_dirs_and_above(&dirs))
            .await
            .map_err(failed)
    }

    pub(super) async fn remove_all(&self, file_io: &FileIO) {
        let paths = std::mem::take(
            &mut *self
                .paths
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for path in paths {
            if let Err(e) = file_io.delete(&path).await {
                tracing::warn!(%path, error = %e, "could not remove a file of a failed restore");
            }
        }
    }
}

/// Small files copied by one task of the blocking pool: one hand-off between the runtime and
/// the pool for them all, where each had its own.
const BATCH: usize = 32;

pub(super) struct FileWriter<'a> {
    pub(super) item: &'a RestoreItem,
    pub(super) rw: &'a PathRewriter,
    pub(super) file_io: &'a FileIO,
    pub(super) store: &'a dyn BackupStore,
    pub(super) written: &'a Written,
    pub(super) observer: &'a dyn Observer,
}

impl FileWriter<'_> {
    fn target_path(&self, entry: &FileEntry) -> Result<String, TableError> {
        self.rw
            .rewrite(&entry.path)
            .map_err(|e| TableError::Unsupported(error_chain(&e)))
    }

    /// Whether `path` must be written: it is absent. A file already there is kept when it has
    /// exactly the content to restore (size and SHA-256: a re-run after an interrupted
    /// restore); any other file stops the table, since nothing is overwritten.
    async fn must_write(&self, path: &str, size: u64, sha256: &str) -> Result<bool, TableError> {
        let found = transfer::file_size(self.file_io, path)
            .await
            .map_err(|e| TableError::transfer(&e))?;
        let Some(found) = found else {
            return Ok(true);
        };
        if found == size {
            let (sum, _) = transfer::hash_file(self.file_io, path)
                .await
                .map_err(|e| TableError::transfer(&e))?;
            if sum == sha256 {
                self.written.complete(path, size);
                return Ok(false);
            }
        }
        if self.item.overwrite {
            tracing::warn!(%path, "replacing a different file at its original path (--replace)");
            return Ok(true);
        }
        Err(TableError::Conflict(format!(
            "refusing to overwrite {path}: a different file is already there ({found} bytes; the restored file has {size} bytes and SHA-256 {sha256}); remove it, or restore to another location"
        )))
    }

    /// Copies `entries`, each with its index in the file list, as they are stored: small
    /// ones several at a time in one task of the blocking pool (see [`BATCH`]).
    pub(super) async fn copy_verbatim<'e>(
        &self,
        entries: impl Iterator<Item = (&'e FileEntry, u64)>,
    ) -> Result<(), TableError> {
        let mut entries = entries.peekable();
        let batches = std::iter::from_fn(move || {
            let first = entries.next()?;
            let mut batch = vec![first];
            // Remote copies overlap their latencies: they go one by one, 8 at once.
            if crate::store::is_small(first.0.size) && self.copies_locally(first.0) {
                while batch.len() < BATCH
                    && let Some(next) = entries.next_if(|(e, _)| crate::store::is_small(e.size))
                {
                    batch.push(next);
                }
            }
            Some(batch)
        });
        stream::iter(batches.map(Ok::<_, TableError>))
            .try_for_each_concurrent(8, |batch| self.copy_batch(batch))
            .await
    }

    /// Whether `entry` is copied from a file of the repository to a local file.
    fn copies_locally(&self, entry: &FileEntry) -> bool {
        self.target_path(entry)
            .is_ok_and(|path| transfer::local_path(&path).is_some())
            && self
                .store
                .local_file(&layout::table_file(&self.item.key, &entry.rel))
                .is_some()
    }

    /// Copies `batch` where nothing is in the way (as when restoring into a new location),
    /// then each file that found something there, or is not local, one by one.
    async fn copy_batch(&self, batch: Vec<(&FileEntry, u64)>) -> Result<(), TableError> {
        let paths = batch
            .iter()
            .map(|(entry, _)| self.target_path(entry))
            .collect::<Result<Vec<_>, _>>()?;
        let keys: Vec<String> = batch
            .iter()
            .map(|(entry, _)| layout::table_file(&self.item.key, &entry.rel))
            .collect();
        let copies: Vec<transfer::Absent> = batch
            .iter()
            .zip(&paths)
            .zip(&keys)
            .map(|(((entry, _), path), key)| transfer::Absent {
                key,
                sha256: &entry.sha256,
                size: entry.size,
                path,
            })
            .collect();
        let claims = self
            .written
            .claims(batch.iter().map(|(_, index)| *index).collect());
        let placed = transfer::store_to_absent_files(self.store, &copies, claims)
            .await
            .map_err(|e| TableError::transfer(&e))?;
        for ((((entry, index), path), key), placed) in
            batch.into_iter().zip(&paths).zip(&keys).zip(placed)
        {
            if !matches!(placed, transfer::Placed::Copied(_)) {
                if !self.must_write(path, entry.size, &entry.sha256).await? {
                    continue;
                }
                // Something is there and may be replaced, or the copy is not local.
                self.written.copying(index);
                transfer::store_to_file(
                    self.store,
                    key,
                    &entry.sha256,
                    entry.size,
                    self.file_io,
                    path,
                )
                .await
                .map_err(|e| TableError::transfer(&e))?;
            }
            self.written.complete(path, entry.size);
            self.observer.event(&Event::FileCopied {
                table: &self.item.target.to_string(),
                bytes: entry.size,
            });
        }
        Ok(())
    }

    /// Writes metadata-level files, rewritten when the location changes; returns the new
    /// size of each by its new path. The rewriting runs on the blocking pool, a few files
    /// at once (it is CPU work: decompressing, walking and compressing every block).
    pub(super) async fn rewrite_all<'e>(
        &self,
        entries: impl Iterator<Item = &'e FileEntry>,
        sizes: HashMap<String, i64>,
    ) -> Result<HashMap<String, i64>, TableError> {
        let sizes = std::sync::Arc::new(sizes);
        let results: Vec<(String, i64)> = stream::iter(entries.map(Ok::<_, TableError>))
            .map_ok(|entry| {
                let sizes = sizes.clone();
                async move {
                    let path = self.target_path(entry)?;
                    let key = layout::table_file(&self.item.key, &entry.rel);
                    // Held until written: the process's bound on metadata in memory.
                    let _room = transfer::metadata_room(Some(entry.size)).await;
                    let data = read_verified(self.store, &key, &entry.sha256)
                        .await
                        .map_err(|e: TransferError| TableError::transfer(&e))?;
                    let data = if self.rw.is_identity() {
                        data
                    } else {
                        let rw = self.rw.clone();
                        let (kind, source) = (entry.kind, entry.path.clone());
                        let rewritten = tokio::task::spawn_blocking(move || {
                            match kind {
                                // Deletion vectors (format v3) are position deletes in Puffin
                                // files; a file list does not record the format, the bytes do.
                                FileKind::PositionDeletes if rewrite::is_puffin(&data) => {
                                    rewrite::rewrite_deletion_vectors(&data, &rw)
                                }
                                FileKind::PositionDeletes => {
                                    rewrite::rewrite_position_delete_file(data, &rw)
                                }
                                FileKind::Manifest => {
                                    rewrite::rewrite_manifest(&data, &rw, &sizes).map(|(b, _)| b)
                                }
                                _ => rewrite::rewrite_manifest_list(&data, &rw, &sizes),
                            }
                            .map_err(|e| {
                                TableError::Damaged(format!(
                                    "rewriting {source}: {}",
                                    error_chain(&e)
                                ))
                            })
                        })
                        .await
                        .map_err(|e| TableError::Io(e.to_string()))??;
                        Bytes::from(rewritten)
                    };
                    let size = data.len() as u64;
                    if self.must_write(&path, size, &sha256_hex(&data)).await? {
                        self.written.push(path.clone());
                        transfer::bytes_to_file(self.file_io, &path, data)
                            .await
                            .map_err(|e| TableError::transfer(&e))?;
                        self.written.complete(&path, size);
                    }
                    Ok((path, i64::try_from(size).unwrap_or(i64::MAX)))
                }
            })
            .try_buffer_unordered(8)
            .try_collect()
            .await?;
        Ok(results.into_iter().collect())
    }
}
