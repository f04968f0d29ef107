//! Repository storage on a local or mounted filesystem.
//!
//! Atomicity comes from the filesystem: every object is written to a temporary file in the
//! target directory and then renamed into place (`put`) or hard-linked into place
//! (`put_if_absent`, where `link(2)` fails when the name exists), after an `fsync` of the
//! file and then of its directory.
//!
//! Bulk objects ([`BackupStore::writer`], [`BackupStore::put_file`]) skip the per-file stall:
//! each is fsynced in the background as soon as it is written ([`WriteBehind`], while the
//! next ones are copied), and stays under its temporary name, readable through this store,
//! until [`BackupStore::sync`] waits for those fsyncs, renames the files into place and
//! fsyncs their directories — before the commit point that references them, and whenever
//! 4,096 objects or 1 GiB are waiting. So a name under the repository is always
//! a durable, complete object, as with a per-file fsync, and a killed run leaves only
//! temporary files (which `gc` removes).
//!
//! Directories are created `0700` and files `0600`: only the repository's owner reads them.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::sync::{Arc, Mutex};

use std::ops::Range;
use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;
use fs_err::tokio as fs;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::{BackupStore, ObjectMeta, ObjectWriter, StoreError, StoreErrorKind, StoreResult};

mod durable;

use durable::{TempFile, create_temp, rename_objects, sync_dir, sync_files};
pub(crate) use durable::{WriteBehind, copy_hashing, copy_immutable_hashing, sync_dirs_and_above};

/// Prefix of in-flight temporary files; `list` skips them.
pub(super) const TMP_PREFIX: &str = ".bcn-tmp-";

/// Objects waiting for [`BackupStore::sync`] beyond these are synced at once.
const PENDING_OBJECTS: usize = 4096;
/// Bytes waiting for [`BackupStore::sync`] beyond which they are synced at once.
const PENDING_BYTES: u64 = 1 << 30;
/// Buffer of a blocking copy.
pub(super) const COPY_BUFFER: usize = 1 << 20;

/// A repository in a directory.
#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
    url: String,
    pending: Arc<Mutex<Pending>>,
    behind: Arc<WriteBehind>,
    /// One sync at a time: a second one must not rename objects whose fsync the first is
    /// still waiting for.
    syncing: Arc<tokio::sync::Mutex<()>>,
}

/// Objects written but not yet synced: each under its temporary name.
#[derive(Debug)]
struct Pending {
    root: PathBuf,
    objects: HashMap<String, PathBuf>,
    bytes: u64,
}

impl Pending {
    fn is_full(&self) -> bool {
        self.objects.len() >= PENDING_OBJECTS || self.bytes >= PENDING_BYTES
    }
}

impl Drop for Pending {
    /// The store goes (a run that failed or was stopped by a signal, before its commit): the
    /// complete objects still waiting are made durable under their names, so that the next
    /// run reuses them instead of copying them again. Objects whose writing was cut short
    /// were never waiting; their temporary files go with their writers.
    fn drop(&mut self) {
        let objects: Vec<(String, PathBuf)> = self.objects.drain().collect();
        if objects.is_empty() {
            return;
        }
        let temporary: Vec<PathBuf> = objects.iter().map(|(_, tmp)| tmp.clone()).collect();
        let synced = sync_files(&temporary).and_then(|()| rename_objects(&self.root, &objects));
        if let Err(e) = synced {
            tracing::warn!(error = %e, objects = objects.len(), "objects copied before the run stopped were not kept; the next run copies them again");
        }
    }
}

impl LocalStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: PathBuf) -> Self {
        let url = format!("file://{}", root.display());
        let pending = Arc::new(Mutex::new(Pending {
            root: root.clone(),
            objects: HashMap::new(),
            bytes: 0,
        }));
        Self {
            root,
            url,
            pending,
            behind: Arc::default(),
            syncing: Arc::default(),
        }
    }

    fn path(&self, key: &str) -> StoreResult<PathBuf> {
        super::check_key(key, &self.url)?;
        Ok(self.root.join(key))
    }

    /// Where the bytes of `key` are now: its temporary name until it is synced.
    fn current_path(&self, key: &str) -> StoreResult<PathBuf> {
        let path = self.path(key)?;
        Ok(self
            .pending
            .lock()
            .map_err(|_| self.err("reading", key, std::io::Error::other("poisoned")))?
            .objects
            .get(key)
            .cloned()
            .unwrap_or(path))
    }

    /// Records a written object under its temporary name; syncs when enough are waiting.
    async fn add_pending(&self, key: &str, tmp: TempFile, size: u64) -> StoreResult<()> {
        let full = {
            let mut pending = self
                .pending
                .lock()
                .map_err(|_| self.err("writing", key, std::io::Error::other("poisoned lock")))?;
            let path = tmp.keep();
            self.behind.start(path.clone(), size);
            if let Some(older) = pending.objects.insert(key.to_owned(), path) {
                let _ = fs_err::remove_file(older);
            }
            pending.bytes += size;
            pending.is_full()
        };
        if full { self.sync().await } else { Ok(()) }
    }

    /// Forgets a waiting object about to be replaced or deleted, removing its bytes.
    fn drop_pending(&self, key: &str) {
        if let Ok(mut pending) = self.pending.lock()
            && let Some(tmp) = pending.objects.remove(key)
        {
            let _ = fs_err::remove_file(tmp);
        }
    }

    fn err(&self, op: &'static str, key: &str, e: std::io::Error) -> StoreError {
        let kind = match e.kind() {
            ErrorKind::NotFound => StoreErrorKind::NotFound,
            ErrorKind::AlreadyExists => StoreErrorKind::AlreadyExists,
            ErrorKind::PermissionDenied => StoreErrorKind::PermissionDenied,
            ErrorKind::Interrupted | ErrorKind::TimedOut => StoreErrorKind::Transient,
            _ => StoreErrorKind::Other,
        };
        StoreError::new(kind, op, key, &self.url, Some(Box::new(e)))
    }

    /// Creates a temporary file next to `key`'s path. Runs as one blocking task whose output
    /// owns the file: if the caller is cancelled meanwhile, the output is dropped and the file
    /// removed, so no cancellation can leave a temporary file behind.
    async fn temp_file(&self, key: &str) -> StoreResult<(TempFile, fs_err::File)> {
        let dir = self.dir_of(key)?;
        let created = tokio::task::spawn_blocking(move || create_temp(&dir)).await;
        match created {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(e)) => Err(self.err("writing", key, e)),
            Err(e) => Err(self.err("writing", key, std::io::Error::other(e))),
        }
    }

    /// The directory `key`'s file goes in.
    fn dir_of(&self, key: &str) -> StoreResult<PathBuf> {
        let target = self.path(key)?;
        Ok(target.parent().unwrap_or(&self.root).to_path_buf())
    }

    /// Writes `data` to a temporary file and moves it into place with `place` — all in one
    /// blocking task, which completes (or cleans up) even if the caller is cancelled.
    async fn write_atomically(
        &self,
        op: &'static str,
        key: &str,
        data: Bytes,
        place: fn(&std::path::Path, &std::path::Path) -> std::io::Result<()>,
    ) -> StoreResult<()> {
        let (tmp, mut file) = self.temp_file(key).await?;
        let target = self.path(key)?;
        if op == "writing" {
            self.drop_pending(key);
        }
        let done = tokio::task::spawn_blocking(move || {
            use std::io::Write as _;
            file.write_all(&data)?;
            file.sync_all()?;
            place(tmp.path(), &target)?;
            if op == "writing" {
                tmp.disarm();
            }
            // The new name is durable with its directory.
            sync_dir(target.parent().unwrap_or(&target))
        })
        .await;
        match done {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.err(op, key, e)),
            Err(e) => Err(self.err(op, key, std::io::Error::other(e))),
        }
    }
}

#[async_trait]
impl BackupStore for LocalStore {
    fn url(&self) -> &str {
        &self.url
    }

    async fn get(&self, key: &str) -> StoreResult<Bytes> {
        fs::read(self.current_path(key)?)
            .await
            .map(Bytes::from)
            .map_err(|e| self.err("reading", key, e))
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> StoreResult<Bytes> {
        let path = self.current_path(key)?;
        let read = async {
            let mut file = fs::File::open(path).await?;
            file.seek(std::io::SeekFrom::Start(range.start)).await?;
            let len = usize::try_from(range.end.saturating_sub(range.start)).unwrap_or(usize::MAX);
            let mut buf = Vec::with_capacity(len.min(64 << 20));
            file.take(len as u64).read_to_end(&mut buf).await?;
            Ok::<_, std::io::Error>(Bytes::from(buf))
        };
        read.await.map_err(|e| self.err("reading", key, e))
    }

    async fn head(&self, key: &str) -> StoreResult<Option<ObjectMeta>> {
        match fs::metadata(self.current_path(key)?).await {
            Ok(m) if m.is_file() => Ok(Some(ObjectMeta {
                key: key.to_owned(),
                size: m.len(),
                modified: m.modified().ok().map(Into::into),
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err("inspecting", key, e)),
        }
    }

    async fn put(&self, key: &str, data: Bytes) -> StoreResult<()> {
        self.write_atomically("writing", key, data, |tmp, target| {
            fs_err::rename(tmp, target)
        })
        .await
    }

    async fn put_if_absent(&self, key: &str, data: Bytes) -> StoreResult<()> {
        // link(2) is atomic and refuses an existing name: exactly one racer wins. The
        // temporary name is removed afterwards either way.
        self.write_atomically("creating", key, data, |tmp, target| {
            fs_err::hard_link(tmp, target)
        })
        .await
    }

    async fn writer(&self, key: &str) -> StoreResult<Box<dyn ObjectWriter>> {
        let (tmp, file) = self.temp_file(key).await?;
        Ok(Box::new(LocalWriter {
            file: fs::File::from_std(file),
            tmp,
            key: key.to_owned(),
            written: 0,
            store: LocalStore {
                root: self.root.clone(),
                url: self.url.clone(),
                pending: self.pending.clone(),
                behind: self.behind.clone(),
                syncing: self.syncing.clone(),
            },
        }))
    }

    async fn put_file(&self, key: &str, path: &std::path::Path) -> StoreResult<(u64, String)> {
        let dir = self.dir_of(key)?;
        let source = path.to_path_buf();
        // One blocking task and one buffer per file: no hand-offs per chunk. Its output owns
        // the temporary file, removed if the caller is gone meanwhile.
        let (tmp, copied) = tokio::task::spawn_blocking(move || {
            let mut from = fs_err::File::open(&source)?;
            let size = from.metadata()?.len();
            let (tmp, mut file) = create_temp(&dir)?;
            let copied = copy_hashing(&mut from, size, &mut file)?;
            Ok::<_, std::io::Error>((tmp, copied))
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
        .map_err(|e| self.err("copying a file into", key, e))?;
        self.add_pending(key, tmp, copied.0).await?;
        Ok(copied)
    }

    async fn sync(&self) -> StoreResult<()> {
        let _one = self.syncing.lock().await;
        let objects: Vec<(String, PathBuf)> = {
            let mut pending = self
                .pending
                .lock()
                .map_err(|_| self.err("syncing", "", std::io::Error::other("poisoned lock")))?;
            pending.bytes = 0;
            pending.objects.drain().collect()
        };
        if objects.is_empty() {
            return Ok(());
        }
        let root = self.root.clone();
        let count = objects.len();
        let behind = self.behind.wait().await;
        let renamed = match behind {
            Ok(()) => tokio::task::spawn_blocking(move || rename_objects(&root, &objects))
                .await
                .map_err(std::io::Error::other)
                .and_then(|r| r),
            Err(e) => Err(e),
        };
        renamed.map_err(|e| {
            self.err(
                "syncing",
                "",
                std::io::Error::new(e.kind(), format!("{count} objects written: {e}")),
            )
        })
    }

    fn local_file(&self, key: &str) -> Option<PathBuf> {
        self.current_path(key).ok()
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectMeta>> {
        let mut listed = self.walk(prefix, false).await?;
        // Objects waiting for a sync are this store's already.
        let waiting: Vec<(String, PathBuf)> = self
            .pending
            .lock()
            .map_err(|_| self.err("listing", prefix, std::io::Error::other("poisoned lock")))?
            .objects
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect();
        if waiting.is_empty() {
            return Ok(listed);
        }
        for (key, tmp) in waiting {
            let meta = fs::metadata(&tmp)
                .await
                .map_err(|e| self.err("listing", &key, e))?;
            listed.retain(|o| o.key != key);
            listed.push(ObjectMeta {
                key,
                size: meta.len(),
                modified: meta.modified().ok().map(Into::into),
            });
        }
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listed)
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        match fs::read_dir(&self.root).await {
            Ok(mut entries) => Ok(entries
                .next_entry()
                .await
                .map_err(|e| self.err("listing", "", e))?
                .is_none()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(true),
            Err(e) => Err(self.err("listing", "", e)),
        }
    }

    async fn list_incomplete(&self, prefix: &str) -> StoreResult<Vec<ObjectMeta>> {
        self.walk(prefix, true).await
    }

    async fn delete_incomplete(&self, key: &str) -> StoreResult<()> {
        let name = key.rsplit('/').next().unwrap_or(key);
        if !name.starts_with(TMP_PREFIX) {
            return Err(StoreError::new(
                StoreErrorKind::Other,
                "deleting a leftover",
                key,
                &self.url,
                Some(format!("not a temporary file ({TMP_PREFIX}*)").into()),
            ));
        }
        self.delete(key).await
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.drop_pending(key);
        match fs::remove_file(self.path(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err("deleting", key, e)),
        }
    }
}

impl LocalStore {
    /// Every file under `prefix`: the objects, or with `temporaries` only the temporary files
    /// of unfinished writes.
    async fn walk(&self, prefix: &str, temporaries: bool) -> StoreResult<Vec<ObjectMeta>> {
        // Walk from the deepest directory the prefix names, then filter by the full prefix.
        let dir_part = prefix.rfind('/').map_or("", |i| &prefix[..i]);
        let mut out = Vec::new();
        let mut stack = vec![(self.root.join(dir_part), dir_part.to_owned())];
        while let Some((dir, rel)) = stack.pop() {
            let mut entries = match fs::read_dir(&dir).await {
                Ok(entries) => entries,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(self.err("listing", prefix, e)),
            };
            while let Some(entry) = entries
                .next_entry()
                .await
                .map_err(|e| self.err("listing", prefix, e))?
            {
                let name = entry.file_name().to_string_lossy().into_owned();
                let is_temporary = name.starts_with(TMP_PREFIX);
                let key = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                let file_type = entry
                    .file_type()
                    .await
                    .map_err(|e| self.err("listing", prefix, e))?;
                if file_type.is_dir() {
                    if key.starts_with(prefix) || prefix.starts_with(&format!("{key}/")) {
                        stack.push((entry.path(), key));
                    }
                } else if key.starts_with(prefix) && is_temporary == temporaries {
                    let size = entry
                        .metadata()
                        .await
                        .map_err(|e| self.err("listing", &key, e))?;
                    out.push(ObjectMeta {
                        key,
                        size: size.len(),
                        modified: size.modified().ok().map(Into::into),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

struct LocalWriter {
    file: fs::File,
    tmp: TempFile,
    key: String,
    written: u64,
    /// The store's root, URL and waiting objects.
    store: LocalStore,
}

impl LocalWriter {
    fn err(&self, e: std::io::Error) -> StoreError {
        self.store.err("writing", &self.key, e)
    }
}

#[async_trait]
impl ObjectWriter for LocalWriter {
    async fn write(&mut self, chunk: Bytes) -> StoreResult<()> {
        match self.file.write_all(&chunk).await {
            Ok(()) => {
                self.written += chunk.len() as u64;
                Ok(())
            }
            Err(e) => Err(self.err(e)),
        }
    }

    async fn finish(mut self: Box<Self>) -> StoreResult<()> {
        // Until the object is handed to the waiting list, dropping `self` (an error, or a
        // cancelled future) removes the temporary file: nothing half-written ever becomes
        // visible. tokio's file may still hold a write in flight: flush it first.
        if let Err(e) = self.file.flush().await {
            return Err(self.err(e));
        }
        let LocalWriter {
            tmp,
            key,
            written,
            store,
            ..
        } = *self;
        store.add_pending(&key, tmp, written).await
    }

    async fn abort(self: Box<Self>) -> StoreResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
