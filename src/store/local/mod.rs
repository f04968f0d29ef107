//! Repository storage on a local or mounted filesystem.
//!
//! Atomicity comes from the filesystem: every object is written to a temporary file in the
//! target directory and then renamed into place (`put`) or hard-linked into place
//! (`put_if_absent`, where `link(2)` fails when the name exists), after an `fsync` of the
//! file and then of its directory.
//!
//! Bulk objects ([`BackupStore::writer`], [`BackupStore::put_file`]) skip the per-file stall:
//! each is written without a name ([`Unfinished`]: `O_TMPFILE` where the filesystem has it,
//! else a temporary name), a large one fsynced in the background as soon as it is written
//! ([`WriteBehind`], while the next ones are copied), and stays open, readable through this
//! store, until [`BackupStore::sync`] makes the rest durable together (one `syncfs`), links
//! every file under its name and fsyncs their directories — before the commit point that
//! references them, and whenever 4,096 objects (fewer where few files may be open) or 1 GiB
//! are waiting. So a name under the repository is always a durable, complete object, as with
//! a per-file fsync, and a killed run leaves nothing (or, without `O_TMPFILE`, temporary
//! files, which `gc` removes). Creating a file then renaming it took three times as long in
//! one directory of 100,000 files as creating it unnamed and linking it, and did not get
//! faster with more threads.
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
mod unfinished;

pub(crate) use durable::{
    WriteBehind, copy_hashing_the_copy, copy_hashing_the_source, durably, is_small,
    sync_dirs_and_above,
};
use durable::{name_objects, sync_dir};
pub(crate) use unfinished::{Access, TempFile, Unfinished, temp_beside};

/// Prefix of in-flight temporary files; `list` skips them.
pub(super) const TMP_PREFIX: &str = ".bcn-tmp-";

/// Objects waiting for [`BackupStore::sync`] beyond these are synced at once: 4,096, or a
/// quarter of the files this process may open (each waiting object holds its file open, a
/// large one two while its fsync is in flight).
static PENDING_OBJECTS: std::sync::LazyLock<usize> =
    std::sync::LazyLock::new(|| (open_files_limit() / 4).clamp(16, 4096));

/// How many files this process may open, raised first to the most it is allowed (a soft
/// limit of 1,024 is common; the hard one is often far higher).
fn open_files_limit() -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    let current = match raised.current {
        Some(max)
            if limit.current.is_some_and(|c| c < max)
                && setrlimit(Resource::Nofile, raised).is_ok() =>
        {
            Some(max)
        }
        _ => limit.current,
    };
    current.map_or(usize::MAX, |c| usize::try_from(c).unwrap_or(usize::MAX))
}

/// Bytes waiting for [`BackupStore::sync`] beyond which they are synced at once.
const PENDING_BYTES: u64 = 1 << 30;
/// Buffer of a blocking copy.
pub(super) const COPY_BUFFER: usize = 1 << 20;

/// Where an object's bytes are.
enum Current {
    /// Under its name.
    Named(PathBuf),
    /// In a file still waiting for its name: a handle of the reader's own.
    Waiting(std::fs::File),
}

/// Reads `range` (cut at its end) of a waiting object's file, by position: its handles share
/// one file offset.
async fn read_waiting(file: std::fs::File, range: Range<u64>) -> std::io::Result<Vec<u8>> {
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt as _;
        let end = range.end.min(file.metadata()?.len());
        let start = range.start.min(end);
        let mut buf = vec![0; usize::try_from(end - start).map_err(std::io::Error::other)?];
        file.read_exact_at(&mut buf, start)?;
        Ok(buf)
    })
    .await
    .map_err(std::io::Error::other)?
}

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

/// Objects written but not yet synced: each an open file without its name.
#[derive(Debug)]
struct Pending {
    root: PathBuf,
    objects: HashMap<String, Waiting>,
    bytes: u64,
    /// What a sync that failed said: the objects it took may be lost, so every later sync
    /// fails too (the copies that added them were told they were stored).
    failed: Option<String>,
}

/// A complete object waiting for its name.
#[derive(Debug)]
struct Waiting {
    file: Unfinished,
    /// Its fsync was started in the background ([`WriteBehind::start_open`]).
    started: bool,
}

impl Pending {
    fn is_full(&self) -> bool {
        self.objects.len() >= *PENDING_OBJECTS || self.bytes >= PENDING_BYTES
    }

    /// Takes the waiting objects: key, file, and whether its fsync was started.
    fn take(&mut self) -> Vec<(String, Unfinished, bool)> {
        self.bytes = 0;
        self.objects
            .drain()
            .map(|(key, w)| (key, w.file, w.started))
            .collect()
    }
}

impl Drop for Pending {
    /// The store goes (a run that failed or was stopped by a signal, before its commit): the
    /// complete objects still waiting are made durable under their names, so that the next
    /// run reuses them instead of copying them again. Objects whose writing was cut short
    /// were never waiting; their unfinished files go with their writers.
    fn drop(&mut self) {
        // Background fsyncs may not have finished: each file is synced here.
        let objects: Vec<_> = self
            .take()
            .into_iter()
            .map(|(key, file, _)| (key, file, false))
            .collect();
        let count = objects.len();
        if count == 0 {
            return;
        }
        if let Err(e) = name_objects(&self.root, objects) {
            tracing::warn!(error = %e, objects = count, "objects copied before the run stopped were not kept; the next run copies them again");
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
            failed: None,
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

    /// Where the bytes of `key` are now: its name, or a handle of its own on the open file of
    /// an object still waiting for its name.
    fn current(&self, key: &str) -> StoreResult<Current> {
        let path = self.path(key)?;
        let pending = self
            .pending
            .lock()
            .map_err(|_| self.err("reading", key, std::io::Error::other("poisoned")))?;
        match pending.objects.get(key) {
            Some(waiting) => match waiting.file.open().try_clone() {
                Ok(file) => Ok(Current::Waiting(file)),
                Err(e) => Err(self.err("reading", key, e)),
            },
            None => Ok(Current::Named(path)),
        }
    }

    /// Records a written object, still without its name; syncs when enough are waiting.
    async fn add_pending(&self, key: &str, file: Unfinished, size: u64) -> StoreResult<()> {
        let full = {
            let mut pending = self
                .pending
                .lock()
                .map_err(|_| self.err("writing", key, std::io::Error::other("poisoned lock")))?;
            // A large file's fsync starts now; one that cannot (no handle left) is synced with
            // the small ones.
            let started = !is_small(size)
                && match file.open().try_clone() {
                    Ok(handle) => {
                        self.behind.start_open(handle);
                        true
                    }
                    Err(_) => false,
                };
            // One replaced goes with its file.
            pending
                .objects
                .insert(key.to_owned(), Waiting { file, started });
            pending.bytes += size;
            pending.is_full()
        };
        if full {
            self.sync_waiting(true).await
        } else {
            Ok(())
        }
    }

    /// Makes the waiting objects durable and gives them their names; with `if_full`, only
    /// when they are still too many once this sync's turn comes. Every copy that adds an
    /// object past the limit asks for a sync, and they queue behind the one under way: the
    /// first takes them all, the others find a short list and leave it to grow (a sync of a
    /// few dozen objects was an fsync each and a sync of their directories, ~45 of them in a
    /// backup of 100,000 small files).
    ///
    /// It runs in a task of its own, to its end whoever stops waiting for it (a copy dropped
    /// because another failed): no object is taken and then dropped without its name, no
    /// background fsync is left unawaited, and the next sync waits until these names are
    /// durable.
    async fn sync_waiting(&self, if_full: bool) -> StoreResult<()> {
        let store = self.handle();
        tokio::spawn(async move {
            let synced = store.sync_now(if_full).await;
            // The last handle may be this one (its run was dropped meanwhile): the objects
            // still waiting are then named as it drops, which blocks.
            tokio::task::spawn_blocking(move || drop(store));
            synced
        })
        .await
        .unwrap_or_else(|e| Err(self.err("syncing", "", std::io::Error::other(e))))
    }

    /// Another handle on this store: the same waiting objects, syncs and background fsyncs.
    fn handle(&self) -> Self {
        LocalStore {
            root: self.root.clone(),
            url: self.url.clone(),
            pending: self.pending.clone(),
            behind: self.behind.clone(),
            syncing: self.syncing.clone(),
        }
    }

    async fn sync_now(&self, if_full: bool) -> StoreResult<()> {
        let _one = self.syncing.lock().await;
        let objects = {
            let mut pending = self
                .pending
                .lock()
                .map_err(|_| self.err("syncing", "", std::io::Error::other("poisoned lock")))?;
            if let Some(failed) = &pending.failed {
                let e = std::io::Error::other(format!("an earlier sync failed: {failed}"));
                return Err(self.err("syncing", "", e));
            }
            if if_full && !pending.is_full() {
                return Ok(());
            }
            pending.take()
        };
        if objects.is_empty() {
            return Ok(());
        }
        let root = self.root.clone();
        let count = objects.len();
        let behind = self.behind.wait().await;
        let renamed = match behind {
            Ok(()) => durably(move || name_objects(&root, objects)).await,
            Err(e) => Err(e),
        };
        renamed.map_err(|e| {
            let said = format!("{count} objects written: {e}");
            if let Ok(mut pending) = self.pending.lock() {
                pending.failed = Some(said.clone());
            }
            self.err("syncing", "", std::io::Error::new(e.kind(), said))
        })
    }

    /// Forgets a waiting object about to be replaced or deleted: its file goes.
    fn drop_pending(&self, key: &str) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.objects.remove(key);
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

    /// Writes `data` to a temporary file and moves it into place with `place` — all in one
    /// blocking task, which completes (or cleans up) even if the caller is cancelled.
    async fn write_atomically(
        &self,
        op: &'static str,
        key: &str,
        data: Bytes,
        place: fn(&std::path::Path, &std::path::Path) -> std::io::Result<()>,
    ) -> StoreResult<()> {
        let target = self.path(key)?;
        if op == "writing" {
            self.drop_pending(key);
        }
        // One blocking task, which completes (or removes its temporary file) even if the
        // caller is cancelled.
        let done = tokio::task::spawn_blocking(move || {
            use std::io::Write as _;
            let (tmp, mut file) = temp_beside(&target, Access::Owner)?;
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
        let read = match self.current(key)? {
            Current::Named(path) => fs::read(path).await,
            Current::Waiting(file) => read_waiting(file, 0..u64::MAX).await,
        };
        read.map(Bytes::from)
            .map_err(|e| self.err("reading", key, e))
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> StoreResult<Bytes> {
        let path = match self.current(key)? {
            Current::Named(path) => path,
            Current::Waiting(file) => {
                return read_waiting(file, range)
                    .await
                    .map(Bytes::from)
                    .map_err(|e| self.err("reading", key, e));
            }
        };
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
        let metadata = match self.current(key)? {
            Current::Named(path) => fs::metadata(path).await,
            Current::Waiting(file) => file.metadata(),
        };
        match metadata {
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
        let target = self.path(key)?;
        // One blocking task whose output owns the file: if the caller is cancelled meanwhile,
        // the output is dropped with the file.
        let created = tokio::task::spawn_blocking(move || {
            let unfinished = Unfinished::beside(&target, Access::Owner)?;
            let handle = unfinished.open().try_clone()?;
            Ok::<_, std::io::Error>((unfinished, handle))
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
        .map_err(|e| self.err("writing", key, e))?;
        let (unfinished, handle) = created;
        Ok(Box::new(LocalWriter {
            file: tokio::fs::File::from_std(handle),
            unfinished,
            key: key.to_owned(),
            written: 0,
            store: self.handle(),
        }))
    }

    async fn put_file(&self, key: &str, path: &std::path::Path) -> StoreResult<(u64, String)> {
        let target = self.path(key)?;
        let source = path.to_path_buf();
        // One blocking task and one buffer per file: no hand-offs per chunk. Its output owns
        // the unfinished file, which goes if the caller is gone meanwhile.
        let (file, copied) = tokio::task::spawn_blocking(move || copy_into(&source, &target))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(|e| self.err("copying a file into", key, e))?;
        self.add_pending(key, file, copied.0).await?;
        Ok(copied)
    }

    async fn put_files(&self, files: &[(String, PathBuf)]) -> Vec<StoreResult<(u64, String)>> {
        let mut jobs = Vec::with_capacity(files.len());
        let mut refused = None;
        for (key, path) in files {
            match self.path(key) {
                Ok(target) => jobs.push((path.clone(), target)),
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        // One blocking task and one buffer per file, for them all; its output owns the
        // unfinished files, which go if the caller is gone meanwhile.
        let results = tokio::task::spawn_blocking(move || {
            let mut results = Vec::with_capacity(jobs.len());
            for (source, target) in jobs {
                let one = copy_into(&source, &target);
                let failed = one.is_err();
                results.push(one);
                if failed {
                    break;
                }
            }
            results
        })
        .await
        .unwrap_or_else(|e| vec![Err(std::io::Error::other(e))]);
        let mut done = Vec::with_capacity(files.len());
        for ((key, _), one) in files.iter().zip(results) {
            let stored = match one {
                Ok((file, (size, sha256))) => self
                    .add_pending(key, file, size)
                    .await
                    .map(|()| (size, sha256)),
                Err(e) => Err(self.err("copying a file into", key, e)),
            };
            let failed = stored.is_err();
            done.push(stored);
            if failed {
                return done;
            }
        }
        done.extend(refused.map(Err));
        done
    }

    async fn sync(&self) -> StoreResult<()> {
        self.sync_waiting(false).await
    }

    fn local_file(&self, key: &str) -> Option<PathBuf> {
        match self.current(key).ok()? {
            Current::Named(path) => Some(path),
            // No name yet: read through the store.
            Current::Waiting(_) => None,
        }
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectMeta>> {
        use futures::TryStreamExt as _;
        let mut listed: Vec<ObjectMeta> = self.list_pages(prefix).try_concat().await?;
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listed)
    }

    fn list_pages(&self, prefix: &str) -> super::ListPages<'_> {
        use futures::{StreamExt as _, TryStreamExt as _};
        let waiting = match self.waiting(prefix) {
            Ok(waiting) => waiting,
            Err(e) => return Box::pin(futures::stream::once(async { Err(e) })),
        };
        let keys: std::collections::HashSet<String> =
            waiting.iter().map(|o| o.key.clone()).collect();
        let walked = self.walk_pages(prefix, false).map_ok(move |mut page| {
            if !keys.is_empty() {
                page.retain(|o| !keys.contains(&o.key));
            }
            page
        });
        let first = (!waiting.is_empty()).then_some(Ok(waiting));
        Box::pin(futures::stream::iter(first).chain(walked))
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
    /// Objects under `prefix` waiting for a sync: this store's already, listed with the rest.
    fn waiting(&self, prefix: &str) -> StoreResult<Vec<ObjectMeta>> {
        let waiting: Vec<(String, std::io::Result<std::fs::Metadata>)> = self
            .pending
            .lock()
            .map_err(|_| self.err("listing", prefix, std::io::Error::other("poisoned lock")))?
            .objects
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(k, w)| (k.clone(), w.file.open().metadata()))
            .collect();
        waiting
            .into_iter()
            .map(|(key, meta)| match meta {
                Ok(meta) => Ok(ObjectMeta {
                    key,
                    size: meta.len(),
                    modified: meta.modified().ok().map(Into::into),
                }),
                Err(e) => Err(self.err("listing", &key, e)),
            })
            .collect()
    }

    async fn walk(&self, prefix: &str, temporaries: bool) -> StoreResult<Vec<ObjectMeta>> {
        use futures::TryStreamExt as _;
        let mut out: Vec<ObjectMeta> = self.walk_pages(prefix, temporaries).try_concat().await?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// The objects (or with `temporaries` the leftover temporary files) under `prefix`, in
    /// pages of at most [`PAGE_OBJECTS`], each read in one blocking task.
    fn walk_pages(&self, prefix: &str, temporaries: bool) -> super::ListPages<'_> {
        let walker = Walker::new(&self.root, prefix, temporaries);
        let prefix = prefix.to_owned();
        Box::pin(futures::stream::try_unfold(walker, move |mut walker| {
            let prefix = prefix.clone();
            async move {
                let (walker, page) = tokio::task::spawn_blocking(move || {
                    let page = walker.next_page();
                    (walker, page)
                })
                .await
                .map_err(|e| self.err("listing", &prefix, std::io::Error::other(e)))?;
                match page {
                    Ok(Some(page)) => Ok(Some((page, walker))),
                    Ok(None) => Ok(None),
                    Err((key, e)) => Err(self.err("listing", &key, e)),
                }
            }
        }))
    }
}

/// Objects in a page of a local listing: one directory of a million files does not take a
/// million keys of memory at once (~170 MB).
const PAGE_OBJECTS: usize = 1000;

/// A walk of the directories under a prefix, a page at a time.
struct Walker {
    prefix: String,
    temporaries: bool,
    /// Directories still to read, each with the key prefix of what it holds.
    stack: Vec<(PathBuf, String)>,
    /// The directory being read.
    open: Option<(std::fs::ReadDir, String)>,
}

impl Walker {
    fn new(root: &std::path::Path, prefix: &str, temporaries: bool) -> Self {
        // Walk from the deepest directory the prefix names, then filter by the full prefix.
        let dir_part = prefix.rfind('/').map_or("", |i| &prefix[..i]);
        Self {
            prefix: prefix.to_owned(),
            temporaries,
            stack: vec![(root.join(dir_part), dir_part.to_owned())],
            open: None,
        }
    }

    /// The next objects (or temporary files), at most [`PAGE_OBJECTS`]; `None` at the end;
    /// on a failure, the key it concerns.
    fn next_page(&mut self) -> Result<Option<Vec<ObjectMeta>>, (String, std::io::Error)> {
        let mut page = Vec::new();
        while page.len() < PAGE_OBJECTS {
            let Some((entries, rel)) = &mut self.open else {
                let Some((dir, rel)) = self.stack.pop() else {
                    break;
                };
                match std::fs::read_dir(&dir) {
                    Ok(entries) => self.open = Some((entries, rel)),
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err((self.prefix.clone(), e)),
                }
                continue;
            };
            let Some(entry) = entries.next() else {
                self.open = None;
                continue;
            };
            let entry = entry.map_err(|e| (self.prefix.clone(), e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_temporary = name.starts_with(TMP_PREFIX);
            let key = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let file_type = match entry.file_type() {
                Ok(file_type) => file_type,
                Err(e) => return Err((key, e)),
            };
            if file_type.is_dir() {
                if key.starts_with(&self.prefix) || self.prefix.starts_with(&format!("{key}/")) {
                    self.stack.push((entry.path(), key));
                }
            } else if key.starts_with(&self.prefix) && is_temporary == self.temporaries {
                match entry.metadata() {
                    Ok(meta) => page.push(ObjectMeta {
                        key,
                        size: meta.len(),
                        modified: meta.modified().ok().map(Into::into),
                    }),
                    // Gone since the directory was read (a gc, a replaced temporary file).
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err((key, e)),
                }
            }
        }
        Ok((!page.is_empty()).then_some(page))
    }
}

struct LocalWriter {
    /// A handle of the writer's own on `unfinished`.
    file: tokio::fs::File,
    unfinished: Unfinished,
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
        // cancelled future) drops the unfinished file: nothing half-written ever becomes
        // visible. tokio's file may still hold a write in flight: flush it first.
        if let Err(e) = self.file.flush().await {
            return Err(self.err(e));
        }
        let LocalWriter {
            file,
            unfinished,
            key,
            written,
            store,
        } = *self;
        drop(file);
        store.add_pending(&key, unfinished, written).await
    }

    async fn abort(self: Box<Self>) -> StoreResult<()> {
        Ok(())
    }
}

/// Copies the local file `source` into an unfinished object file for `target`: the file,
/// and the size and SHA-256 of what was read.
///
/// The checksum is taken of the source's bytes as they are read, not of the copy (as
/// [`copy_hashing_the_copy`] does for restores), and the kernel copies them
/// ([`copy_hashing_the_source`]): a copy the kernel or the filesystem got wrong (such bugs
/// have shipped: the block cloning of `OpenZFS` 2.2.0) then disagrees with its recorded
/// checksum, and `bcn verify` finds it, where a checksum of the copy would vouch for it.
fn copy_into(
    source: &std::path::Path,
    target: &std::path::Path,
) -> std::io::Result<(Unfinished, (u64, String))> {
    let from = fs_err::File::open(source)?;
    let size = from.metadata()?.len();
    let mut file = Unfinished::beside(target, Access::Owner)?;
    let copied = copy_hashing_the_source(from.into_parts().0, size, file.file())
        .map_err(|e| std::io::Error::new(e.kind(), format!("copying {}: {e}", source.display())))?;
    Ok((file, copied))
}

#[cfg(test)]
mod tests;
