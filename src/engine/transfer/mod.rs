//! Moving bytes between a table's `FileIO` and the repository, with checksums.
//!
//! Large files stream in fixed-size chunks, and at most [`COPY_SLOTS`] files move at once in
//! the whole process, whatever `--jobs`: memory stays bounded by the chunk size times the
//! slots, whatever the file sizes, the number of files and of tables copied at once.

use std::sync::LazyLock;

use bytes::Bytes;
use iceberg::io::FileIO;
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::store::{Access, BackupStore, StoreError, TempFile, Unfinished, temp_beside};

/// Bytes per read and write of a streaming copy.
const CHUNK: u64 = 2 << 20;

/// Files copied or hashed at once in the process. Local copies need few (the disk is the
/// limit); remote ones overlap their latencies with as many.
const COPY_SLOTS: usize = 16;

static SLOTS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(COPY_SLOTS));

/// Waits for one of the [`COPY_SLOTS`].
async fn copy_slot() -> SemaphorePermit<'static> {
    SLOTS
        .acquire()
        .await
        .expect("the copy slots are never closed")
}

/// Bytes of whole metadata files (manifests, manifest lists, position-delete files) held at
/// once in the process, whatever `--jobs`: read to be decoded or rewritten, and what was
/// decoded from them until it is handed on. A table's walk reads several manifests at once
/// (Iceberg writers cut them at 8 MiB): with a bound per table only, 64 tables at once would
/// hold 64 times that.
const METADATA_BUDGET: u32 = 64 << 20;

/// What a metadata file of unknown size is counted as.
const UNKNOWN_METADATA_SIZE: u64 = 1 << 20;

/// [`METADATA_BUDGET`] unless [`set_metadata_budget`] chose another before the first use.
static CHOSEN_BUDGET: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

static METADATA_ROOM: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(metadata_budget() as usize));

/// The process's budget of metadata bytes held at once.
fn metadata_budget() -> u32 {
    *CHOSEN_BUDGET.get_or_init(|| METADATA_BUDGET)
}

/// Chooses the process's budget of metadata bytes held at once (at least one byte), for tests
/// that make every metadata file wait for all of it; without effect once the budget is in use.
pub(crate) fn set_metadata_budget(bytes: u32) {
    let _ = CHOSEN_BUDGET.set(bytes.max(1));
}

/// Waits until a metadata file of `size` bytes (`None`: unknown) may be held, within the
/// process's budget ([`METADATA_BUDGET`]); the room is given back when the permit is
/// dropped. A file larger than the whole budget waits for all of it. Waiters are served in
/// order, so one table's earlier file gets its room before its later ones.
pub(crate) async fn metadata_room(size: Option<u64>) -> SemaphorePermit<'static> {
    let budget = metadata_budget();
    let bytes = size
        .unwrap_or(UNKNOWN_METADATA_SIZE)
        .clamp(1, u64::from(budget));
    METADATA_ROOM
        .acquire_many(u32::try_from(bytes).unwrap_or(budget))
        .await
        .expect("the metadata room is never closed")
}

/// Errors moving one file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransferError {
    /// The table side failed.
    #[error("{op} {path}")]
    Table {
        /// What was done.
        op: &'static str,
        /// The file.
        path: String,
        /// iceberg's error.
        #[source]
        source: iceberg::Error,
    },
    /// The repository side failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file does not have the size its metadata records.
    #[error("{path} has {actual} bytes but its metadata records {expected}")]
    SizeMismatch {
        /// The file.
        path: String,
        /// Size recorded.
        expected: u64,
        /// Size found.
        actual: u64,
    },
    /// Content read back does not match its checksum. File lists carry their own checksum,
    /// which was checked when the list was read, so it is the stored file that changed.
    #[error(
        "{what} {key} is damaged: its content has SHA-256 {actual} and {actual_size} bytes, but the file list (which passed its own check) records {expected} and {expected_size} bytes"
    )]
    ChecksumMismatch {
        /// What it is.
        what: &'static str,
        /// Its key or path.
        key: String,
        /// SHA-256 recorded.
        expected: String,
        /// SHA-256 found.
        actual: String,
        /// Size recorded (or the size read, when only the checksum was recorded).
        expected_size: u64,
        /// Size found.
        actual_size: u64,
    },
}

fn table_err(op: &'static str, path: &str) -> impl FnOnce(iceberg::Error) -> TransferError {
    let path = path.to_owned();
    move |source| TransferError::Table { op, path, source }
}

/// SHA-256 of `data`, hex.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Copies one table file into the store under `key`. Returns the size and SHA-256.
pub(crate) async fn file_to_store(
    file_io: &FileIO,
    path: &str,
    store: &dyn BackupStore,
    key: &str,
) -> Result<(u64, String), TransferError> {
    let _slot = copy_slot().await;
    if let Some(local) = local_path(path) {
        return Ok(store.put_file(key, &local).await?);
    }
    let mut chunks = FileChunks::open(file_io, path).await?;
    let mut writer = store.writer(key).await?;
    let mut hasher = Sha256::new();
    loop {
        let chunk = match chunks.next().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(e);
            }
        };
        hasher.update(&chunk);
        if let Err(e) = writer.write(chunk).await {
            let _ = writer.abort().await;
            return Err(e.into());
        }
    }
    let (size, offset) = (chunks.size, chunks.offset);
    if offset != size {
        let _ = writer.abort().await;
        return Err(TransferError::SizeMismatch {
            path: path.to_owned(),
            expected: size,
            actual: offset,
        });
    }
    writer.finish().await?;
    Ok((size, hex::encode(hasher.finalize())))
}

/// [`file_to_store`] for local files (a key and a path each), small ones: in order until
/// one fails (see [`BackupStore::put_files`]), taking one of the [`COPY_SLOTS`] for them all.
pub(crate) async fn files_to_store(
    store: &dyn BackupStore,
    files: &[(String, std::path::PathBuf)],
) -> Vec<Result<(u64, String), StoreError>> {
    let _slot = copy_slot().await;
    store.put_files(files).await
}

/// Size and SHA-256 of an object already in the store (reused after an interrupted run).
pub(crate) async fn hash_stored(
    store: &dyn BackupStore,
    key: &str,
    size: u64,
) -> Result<String, TransferError> {
    let _slot = copy_slot().await;
    let mut hasher = Sha256::new();
    let mut offset = 0;
    while offset < size {
        let chunk = store
            .get_range(key, offset..(offset + CHUNK).min(size))
            .await?;
        if chunk.is_empty() {
            break;
        }
        offset += chunk.len() as u64;
        hasher.update(&chunk);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Reads a whole stored object and checks its checksum.
pub(crate) async fn read_verified(
    store: &dyn BackupStore,
    key: &str,
    sha256: &str,
) -> Result<Bytes, TransferError> {
    let data = store.get(key).await?;
    let actual = sha256_hex(&data);
    if actual != sha256 {
        return Err(TransferError::ChecksumMismatch {
            what: "stored file",
            key: key.to_owned(),
            expected: sha256.to_owned(),
            actual,
            expected_size: data.len() as u64,
            actual_size: data.len() as u64,
        });
    }
    Ok(data)
}

/// The local path of a `file:` URL or an absolute path; `None` for object stores.
pub(crate) fn local_path(path: &str) -> Option<std::path::PathBuf> {
    let rest = path
        .strip_prefix("file://localhost")
        .or_else(|| path.strip_prefix("file://"))
        .or_else(|| path.strip_prefix("file:"))
        .unwrap_or(path);
    rest.starts_with('/')
        .then(|| std::path::PathBuf::from(rest))
}

/// A file being written at a table location. Nothing appears under its name until
/// [`TargetWriter::finish`]: on a local filesystem the bytes go to a temporary name in the same
/// directory, renamed into place at the end (a killed restore leaves no partial file that would
/// block the next run); on object stores an upload is not visible before it completes.
pub(crate) enum TargetWriter {
    /// A local file.
    Local {
        /// The open temporary file.
        file: tokio::fs::File,
        /// Its name; removed on drop unless renamed.
        tmp: TempFile,
        /// The final name.
        dest: std::path::PathBuf,
        /// The URL, for messages.
        path: String,
    },
    /// Any other `FileIO` storage.
    Io(Box<dyn iceberg::io::FileWrite>, String),
}

impl TargetWriter {
    /// Starts writing `path`.
    pub(crate) async fn create(file_io: &FileIO, path: &str) -> Result<Self, TransferError> {
        let io_err = |op: &'static str, e: std::io::Error| TransferError::Table {
            op,
            path: path.to_owned(),
            source: iceberg::Error::new(iceberg::ErrorKind::Unexpected, e.to_string()),
        };
        if let Some(dest) = local_path(path) {
            // One blocking task whose output owns the file: if this future is cancelled (a
            // sibling copy failed), the task still completes and dropping its output removes
            // the file, so no cancellation leaves a temporary file behind.
            let target = dest.clone();
            let created = tokio::task::spawn_blocking(move || temp_beside(&target, Access::Umask))
                .await
                .map_err(|e| io_err("creating", std::io::Error::other(e)))?
                .map_err(|e| io_err("creating", e))?;
            let (tmp, file) = created;
            return Ok(Self::Local {
                file: tokio::fs::File::from_std(file),
                tmp,
                dest,
                path: path.to_owned(),
            });
        }
        let output = file_io
            .new_output(path)
            .map_err(table_err("creating", path))?;
        let writer = output.writer().await.map_err(table_err("creating", path))?;
        Ok(Self::Io(writer, path.to_owned()))
    }

    /// Appends `chunk`.
    pub(crate) async fn write(&mut self, chunk: Bytes) -> Result<(), TransferError> {
        use tokio::io::AsyncWriteExt as _;
        match self {
            Self::Local { file, path, .. } => {
                file.write_all(&chunk)
                    .await
                    .map_err(|e| TransferError::Table {
                        op: "writing",
                        path: path.clone(),
                        source: iceberg::Error::new(iceberg::ErrorKind::Unexpected, e.to_string()),
                    })
            }
            Self::Io(writer, path) => writer
                .write(chunk)
                .await
                .map_err(table_err("writing", path)),
        }
    }

    /// Makes the file visible under its name.
    pub(crate) async fn finish(self) -> Result<(), TransferError> {
        use tokio::io::AsyncWriteExt as _;
        match self {
            Self::Local {
                mut file,
                tmp,
                dest,
                path,
            } => {
                let fail = |e: std::io::Error| TransferError::Table {
                    op: "writing",
                    path: path.clone(),
                    source: iceberg::Error::new(iceberg::ErrorKind::Unexpected, e.to_string()),
                };
                file.flush().await.map_err(fail)?;
                drop(file);
                // Not awaited: a future dropped meanwhile (a sibling failed, and the table's
                // files are being removed) would leave the rename running on without it.
                tmp.rename_to(&dest).map_err(fail)
            }
            Self::Io(mut writer, path) => writer.close().await.map_err(table_err("writing", &path)),
        }
    }
}

/// SHA-256 and size of the file at `path`, read through `file_io` in chunks.
pub(crate) async fn hash_file(
    file_io: &FileIO,
    path: &str,
) -> Result<(String, u64), TransferError> {
    let mut chunks = FileChunks::open(file_io, path).await?;
    let mut hasher = Sha256::new();
    while let Some(chunk) = chunks.next().await? {
        hasher.update(&chunk);
    }
    Ok((hex::encode(hasher.finalize()), chunks.offset))
}

/// A table file read in [`CHUNK`]-sized pieces, so that memory stays bounded.
struct FileChunks {
    reader: Box<dyn iceberg::io::FileRead>,
    path: String,
    /// Size when opened.
    size: u64,
    /// Bytes read so far.
    offset: u64,
}

impl FileChunks {
    async fn open(file_io: &FileIO, path: &str) -> Result<Self, TransferError> {
        let input = file_io
            .new_input(path)
            .map_err(table_err("opening", path))?;
        let size = input
            .metadata()
            .await
            .map_err(table_err("reading the size of", path))?
            .size;
        let reader = input.reader().await.map_err(table_err("opening", path))?;
        Ok(Self {
            reader,
            path: path.to_owned(),
            size,
            offset: 0,
        })
    }

    /// The next chunk, or `None` at the end (or when the file turned out shorter).
    async fn next(&mut self) -> Result<Option<Bytes>, TransferError> {
        if self.offset >= self.size {
            return Ok(None);
        }
        let end = (self.offset + CHUNK).min(self.size);
        let chunk = self
            .reader
            .read(self.offset..end)
            .await
            .map_err(table_err("reading", &self.path))?;
        if chunk.is_empty() {
            return Ok(None);
        }
        self.offset += chunk.len() as u64;
        Ok(Some(chunk))
    }
}

/// Copies a stored object to `path` through `file_io`, streaming, checking the checksum
/// on the way. Returns the size written.
pub(crate) async fn store_to_file(
    store: &dyn BackupStore,
    key: &str,
    sha256: &str,
    size: u64,
    file_io: &FileIO,
    path: &str,
) -> Result<u64, TransferError> {
    let _slot = copy_slot().await;
    if let Some(copy) = Local::of(store, key, sha256, size, path) {
        return match run_local(store, vec![Some(copy)], None).await?.pop() {
            Some(Placed::Copied(copied)) => Ok(copied),
            // Only a claimed copy looks, or can find its name taken.
            _ => Ok(0),
        };
    }
    let mut writer = TargetWriter::create(file_io, path).await?;
    let mut hasher = Sha256::new();
    let mut offset = 0;
    while offset < size {
        let chunk = store
            .get_range(key, offset..(offset + CHUNK).min(size))
            .await?;
        if chunk.is_empty() {
            break;
        }
        offset += chunk.len() as u64;
        let piece = chunk.clone();
        hasher = crate::store::off_thread(piece.len(), move || {
            hasher.update(&piece);
            hasher
        })
        .await
        .map_err(|e| TransferError::Table {
            op: "checking",
            path: path.to_owned(),
            source: iceberg::Error::new(iceberg::ErrorKind::Unexpected, e.to_string()),
        })?;
        writer.write(chunk).await?;
    }
    let actual = hex::encode(hasher.finalize());
    if actual != sha256 || offset != size {
        // Leave no file that looks complete: a local temporary file goes with the writer; an
        // upload is completed only to be deleted (FileIO has no abort).
        if let TargetWriter::Io(..) = writer {
            let _ = writer.finish().await;
            let _ = file_io.delete(path).await;
        }
        return Err(TransferError::ChecksumMismatch {
            what: "stored file",
            key: key.to_owned(),
            expected: sha256.to_owned(),
            actual,
            expected_size: size,
            actual_size: offset,
        });
    }
    writer.finish().await?;
    Ok(offset)
}

/// What happened to one copy of [`store_to_absent_files`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Placed {
    /// The file was copied: its size.
    Copied(u64),
    /// Something is at the path already: nothing was written.
    Occupied,
    /// The store or the path is not local: nothing was done.
    NotLocal,
}

/// One file for [`store_to_absent_files`]: the stored object `key` (of `size` bytes and
/// SHA-256 `sha256`) to `path`.
pub(crate) struct Absent<'a> {
    pub(crate) key: &'a str,
    pub(crate) sha256: &'a str,
    pub(crate) size: u64,
    pub(crate) path: &'a str,
}

/// [`store_to_file`] where nothing is expected at the paths, from a local store to local
/// paths, all in one blocking task (one hand-off for many small files, where each had its
/// own). Nothing is overwritten: a file takes its name by a link, which refuses an existing
/// one ([`Placed::Occupied`]: the caller decides; a large file is looked for first, to spare
/// copying it in vain). Once a file has its name, `claim` is called with its position in
/// `copies` (the caller records that it wrote it, to remove it if the table fails). Returns
/// what happened to each file, in order; the first failure ends the batch.
pub(crate) async fn store_to_absent_files(
    store: &dyn BackupStore,
    copies: &[Absent<'_>],
    claim: impl Fn(usize) + Send + 'static,
) -> Result<Vec<Placed>, TransferError> {
    let local: Vec<Option<Local>> = copies
        .iter()
        .map(|c| Local::of(store, c.key, c.sha256, c.size, c.path))
        .collect();
    if local.iter().all(Option::is_none) {
        return Ok(copies.iter().map(|_| Placed::NotLocal).collect());
    }
    let _slot = copy_slot().await;
    run_local(store, local, Some(Box::new(claim))).await
}

/// One copy from a store on the local filesystem to a local path (owned: it runs on the
/// blocking pool).
struct Local {
    key: String,
    object: std::path::PathBuf,
    sha256: String,
    size: u64,
    dest: std::path::PathBuf,
}

/// What went wrong with one local copy, small enough to leave the blocking task.
enum Failed {
    Object(std::io::Error),
    Target(&'static str, std::io::Error),
    Mismatch(u64, String),
}

impl Local {
    /// The copy of `key` to `path`, when both are local.
    fn of(store: &dyn BackupStore, key: &str, sha256: &str, size: u64, path: &str) -> Option<Self> {
        Some(Self {
            key: key.to_owned(),
            object: store.local_file(key)?,
            sha256: sha256.to_owned(),
            size,
            dest: local_path(path)?,
        })
    }

    /// Copies the object into an unfinished file beside the destination, one buffer, the
    /// checksum checked before the file takes its name. Without `claim` it replaces whatever
    /// is at the destination (the caller decided that it may); with it, it never does, and
    /// `claim` is called once the file has its name. The naming happens under `still`'s
    /// lock and only while it holds `true` (the caller still waits).
    fn copy(
        &self,
        claim: Option<&dyn Fn()>,
        still: &std::sync::Mutex<bool>,
    ) -> Result<Placed, Failed> {
        if claim.is_some() && !crate::store::is_small(self.size) {
            match std::fs::symlink_metadata(&self.dest) {
                Ok(_) => return Ok(Placed::Occupied),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Failed::Target("reading the size of", e)),
            }
        }
        // Opened before the target, so that a missing object is told apart from a failed write.
        let from = std::fs::File::open(&self.object).map_err(Failed::Object)?;
        let mut file = Unfinished::beside(&self.dest, Access::Umask)
            .map_err(|e| Failed::Target("creating", e))?;
        let (copied, actual) = crate::store::copy_hashing_the_copy(from, self.size, file.file())
            .map_err(|e| Failed::Target("writing", e))?;
        if copied != self.size || actual != self.sha256 {
            // The unfinished file goes with `file`.
            return Err(Failed::Mismatch(copied, actual));
        }
        let waited = still
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !*waited {
            // The unfinished file goes with `file`.
            return Err(Failed::Target(
                "writing",
                std::io::Error::other("cancelled"),
            ));
        }
        let Some(claim) = claim else {
            file.finish(&self.dest)
                .map_err(|e| Failed::Target("writing", e))?;
            return Ok(Placed::Copied(copied));
        };
        if !file
            .finish_new(&self.dest)
            .map_err(|e| Failed::Target("writing", e))?
        {
            return Ok(Placed::Occupied);
        }
        claim();
        Ok(Placed::Copied(copied))
    }

    fn error(&self, store: &dyn BackupStore, failed: Failed) -> TransferError {
        match failed {
            Failed::Object(e) => {
                let kind = if e.kind() == std::io::ErrorKind::NotFound {
                    crate::store::StoreErrorKind::NotFound
                } else {
                    crate::store::StoreErrorKind::Other
                };
                let e = StoreError::new(kind, "reading", &self.key, store.url(), Some(Box::new(e)));
                TransferError::Store(e)
            }
            Failed::Target(op, e) => TransferError::Table {
                op,
                path: self.dest.display().to_string(),
                source: iceberg::Error::new(iceberg::ErrorKind::Unexpected, e.to_string()),
            },
            Failed::Mismatch(actual_size, actual) => TransferError::ChecksumMismatch {
                what: "stored file",
                key: self.key.clone(),
                expected: self.sha256.clone(),
                actual,
                expected_size: self.size,
                actual_size,
            },
        }
    }
}

/// Runs `copies` (`None`: not local, left alone) one after the other in one blocking task,
/// as [`Local::copy`] says; with `claim`, it is told the position of each file named.
async fn run_local(
    store: &dyn BackupStore,
    copies: Vec<Option<Local>>,
    claim: Option<Box<dyn Fn(usize) + Send>>,
) -> Result<Vec<Placed>, TransferError> {
    /// Whether the caller still waits. The blocking task runs on when this future is dropped
    /// (a sibling copy failed and the table's files are being removed): it must then not
    /// give a file its name. The naming happens under the lock, so once the guard has
    /// dropped it either happened already or never will.
    struct Waiting(std::sync::Arc<std::sync::Mutex<bool>>);
    impl Drop for Waiting {
        fn drop(&mut self) {
            *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = false;
        }
    }
    let waiting = Waiting(std::sync::Arc::new(std::sync::Mutex::new(true)));
    let still = waiting.0.clone();
    let done = tokio::task::spawn_blocking(move || {
        let mut placed = Vec::with_capacity(copies.len());
        for (at, copy) in copies.iter().enumerate() {
            let Some(copy) = copy else {
                placed.push(Placed::NotLocal);
                continue;
            };
            let claimed = claim.as_ref().map(|claim| move || claim(at));
            match copy.copy(claimed.as_ref().map(|c| c as &dyn Fn()), &still) {
                Ok(one) => placed.push(one),
                Err(failed) => return (copies, Err((at, failed))),
            }
        }
        (copies, Ok(placed))
    })
    .await;
    drop(waiting);
    match done {
        Ok((_, Ok(placed))) => Ok(placed),
        Ok((copies, Err((at, failed)))) => Err(copies[at]
            .as_ref()
            .map(|copy| copy.error(store, failed))
            .expect("only local copies fail")),
        Err(e) => Err(TransferError::Table {
            op: "writing",
            path: "a restored file".to_owned(),
            source: iceberg::Error::new(iceberg::ErrorKind::Unexpected, e.to_string()),
        }),
    }
}

/// Makes a local file written at `path` durable with its directories (object stores are
/// durable once written): before a restored view is registered.
pub(crate) async fn sync_local_file(path: &str) -> Result<(), String> {
    let Some(file) = local_path(path) else {
        return Ok(());
    };
    tokio::task::spawn_blocking(move || {
        fs_err::File::open(&file)?.sync_all()?;
        let dirs = file
            .parent()
            .map(std::path::Path::to_path_buf)
            .into_iter()
            .collect();
        crate::store::sync_dirs_and_above(&dirs)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("making the restored file durable: {e}"))
}

/// Writes `data` to `path` (see [`TargetWriter`]).
pub(crate) async fn bytes_to_file(
    file_io: &FileIO,
    path: &str,
    data: Bytes,
) -> Result<(), TransferError> {
    let mut writer = TargetWriter::create(file_io, path).await?;
    writer.write(data).await?;
    writer.finish().await
}

/// The size of the local file `local`, or `None` when it does not exist, in the calling
/// thread: one `stat`, for callers that look at many files in one task of the blocking pool.
pub(crate) fn local_file_size(local: &std::path::Path) -> std::io::Result<Option<u64>> {
    match fs_err::metadata(local) {
        Ok(meta) => Ok(Some(meta.len())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Size of the file at `path`, or `None` when it does not exist. A local file takes one
/// `stat` (a restore asks twice per file: before writing it and when reading the table back);
/// other storage asks `file_io`.
pub(crate) async fn file_size(file_io: &FileIO, path: &str) -> Result<Option<u64>, TransferError> {
    if let Some(local) = local_path(path) {
        return tokio::task::spawn_blocking(move || local_file_size(&local))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(|e| TransferError::Table {
                op: "reading the size of",
                path: path.to_owned(),
                source: iceberg::Error::new(iceberg::ErrorKind::Unexpected, e.to_string()),
            });
    }
    if !file_io
        .exists(path)
        .await
        .map_err(table_err("checking", path))?
    {
        return Ok(None);
    }
    let input = file_io
        .new_input(path)
        .map_err(table_err("opening", path))?;
    Ok(Some(
        input
            .metadata()
            .await
            .map_err(table_err("reading the size of", path))?
            .size,
    ))
}

/// Table metadata files may be gzip-compressed (`.gz.metadata.json`); returns the JSON bytes.
pub(crate) fn maybe_gunzip(data: &[u8]) -> std::io::Result<std::borrow::Cow<'_, [u8]>> {
    use std::io::Read;
    if data.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data).read_to_end(&mut out)?;
        Ok(std::borrow::Cow::Owned(out))
    } else {
        Ok(std::borrow::Cow::Borrowed(data))
    }
}

#[cfg(test)]
mod tests;
