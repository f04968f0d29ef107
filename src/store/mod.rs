//! Backup-repository storage: the narrow seam every repository backend implements.
//!
//! # Contract
//!
//! The repository format in [`crate::repo`] relies on exactly these guarantees, and the
//! conformance suite in `tests/it/store_suite.rs` checks them for every backend:
//!
//! 1. **Atomic visibility.** After [`BackupStore::put`] (or a finished [`ObjectWriter`]) returns,
//!    readers see the whole new object; before it returns they see the old object or none. A
//!    failed or abandoned write leaves no visible object.
//! 2. **Create-if-absent.** [`BackupStore::put_if_absent`] writes only when no object exists at
//!    the key, and fails with [`StoreErrorKind::AlreadyExists`] otherwise. Exactly one of two
//!    racing callers wins. PIT records and locks are written this way.
//! 3. **Read-after-write.** `get`, `head` and `list` see an object as soon as its write returned.
//! 4. **Distinct not-found.** A missing object is [`StoreErrorKind::NotFound`], never a generic
//!    error, so callers can tell "absent" from "unreadable".
//! 5. **Keys** are `/`-separated relative paths made only by [`crate::repo::layout`]; a backend
//!    never interprets them beyond mapping them to its own namespace.

mod local;
mod memory;
#[cfg(feature = "store-s3")]
mod s3;

use std::fmt::{self, Debug};
use std::ops::Range;
use std::sync::Arc;

use crate::location::Kind;
pub use crate::location::{Location, LocationError};
use crate::secret::Secret;
use async_trait::async_trait;
use bytes::Bytes;

pub mod crypto;
pub mod encrypted;

pub use encrypted::EncryptedStore;
pub use local::LocalStore;
pub(crate) use local::{
    Access, TempFile, Unfinished, WriteBehind, copy_hashing_the_copy, durably, is_small,
    sync_dirs_and_above, temp_beside,
};
pub use memory::MemoryStore;
#[cfg(feature = "store-s3")]
pub use s3::S3Store;

/// Metadata of one stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The object's key, relative to the store root.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time, when the backend knows it (gc's grace period uses it).
    pub modified: Option<chrono::DateTime<chrono::Utc>>,
}

/// Maps a key to the name [`BackupStore::list`] gives its object.
pub type ListedNames = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// Pages of a listing ([`BackupStore::list_pages`]).
pub type ListPages<'a> = futures::stream::BoxStream<'a, StoreResult<Vec<ObjectMeta>>>;

/// What went wrong in a store operation, coarse enough for callers to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The object does not exist.
    NotFound,
    /// `put_if_absent` found an object at the key.
    AlreadyExists,
    /// Credentials were refused or the location may not be written.
    PermissionDenied,
    /// A retry may succeed (throttling, connection reset).
    Transient,
    /// Anything else.
    Other,
}

/// An error from a [`BackupStore`], naming the operation and key.
#[derive(Debug, thiserror::Error)]
#[error("{op} {key} in {store}")]
pub struct StoreError {
    kind: StoreErrorKind,
    op: &'static str,
    key: String,
    store: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// Builds an error for `op` on `key` in the store described by `store`.
    pub fn new(
        kind: StoreErrorKind,
        op: &'static str,
        key: impl Into<String>,
        store: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind,
            op,
            key: key.into(),
            store: store.into(),
            source,
        }
    }

    /// The error's kind.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// The key the failed operation was about.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// True when the object did not exist.
    pub fn is_not_found(&self) -> bool {
        self.kind == StoreErrorKind::NotFound
    }
}

/// Refuses a key that could name something outside the store's root: keys come from
/// [`crate::repo::layout`], but parts of them (table keys, PIT ids, file paths) are read from
/// records, which may be damaged or tampered with.
pub(crate) fn check_key(key: &str, store: &str) -> StoreResult<()> {
    if key.is_empty() || crate::names::is_contained_relative(key) {
        Ok(())
    } else {
        Err(StoreError::new(
            StoreErrorKind::Other,
            "refusing the key",
            key,
            store,
            Some(
                "it would leave the repository (an empty, `.` or `..` segment, or a leading `/`)"
                    .into(),
            ),
        ))
    }
}

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// A streaming upload. Nothing is visible until [`ObjectWriter::finish`] returns `Ok`; dropping
/// the writer or calling [`ObjectWriter::abort`] leaves no object behind.
#[async_trait]
pub trait ObjectWriter: Send {
    /// Appends a chunk.
    async fn write(&mut self, chunk: Bytes) -> StoreResult<()>;
    /// Makes the object visible atomically, replacing any previous one.
    async fn finish(self: Box<Self>) -> StoreResult<()>;
    /// Discards everything written.
    async fn abort(self: Box<Self>) -> StoreResult<()>;
}

/// How a store protects what it holds, for `describe`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Protection {
    /// Everything is encrypted on the client ([`EncryptedStore`]).
    pub encrypted: bool,
    /// Objects are written immutable: S3 Object Lock mode and retention.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<String>,
}

/// Bytes of CPU work (hashing, sealing, opening) that go to the blocking pool rather than
/// being done where the future runs.
const OFF_THREAD_BYTES: usize = 128 * 1024;

/// Runs `work`, CPU or blocking work over `len` bytes, on the blocking pool when `len` is
/// [`OFF_THREAD_BYTES`] or more, else right here. The futures of one run are polled on one
/// thread: checksums or encryption done there would make every copy of a backup or restore
/// share one core. An error only when the runtime is shutting down; a panic is passed on.
pub(crate) async fn off_thread<T: Send + 'static>(
    len: usize,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<T> {
    if len < OFF_THREAD_BYTES {
        return Ok(work());
    }
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => Ok(done),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(std::io::Error::other(e)),
    }
}

/// Storage for a backup repository. See the module documentation for the contract.
#[async_trait]
pub trait BackupStore: Debug + Send + Sync {
    /// A URL naming this store, for messages (`file:///backups/x`, `s3://bucket/prefix`).
    fn url(&self) -> &str;
    /// How this store protects its objects.
    fn protection(&self) -> Protection {
        Protection::default()
    }
    /// Reads a whole object.
    async fn get(&self, key: &str) -> StoreResult<Bytes>;
    /// Reads `range` of an object (clamped to its end).
    async fn get_range(&self, key: &str, range: Range<u64>) -> StoreResult<Bytes>;
    /// Size of an object, or `None` when it does not exist.
    async fn head(&self, key: &str) -> StoreResult<Option<ObjectMeta>>;
    /// Writes an object atomically, replacing any previous one.
    async fn put(&self, key: &str, data: Bytes) -> StoreResult<()>;
    /// Writes an object only when none exists ([`StoreErrorKind::AlreadyExists`] otherwise).
    async fn put_if_absent(&self, key: &str, data: Bytes) -> StoreResult<()>;
    /// Starts a streaming upload of a (possibly large) object. Once finished, the object
    /// reads back through this store; it is durable, and visible to every reader, after
    /// [`BackupStore::sync`] (stores that write durably at once, like S3, need none).
    async fn writer(&self, key: &str) -> StoreResult<Box<dyn ObjectWriter>>;

    /// Writes a whole object as [`BackupStore::writer`] does: durable after
    /// [`BackupStore::sync`]. For what a commit point will reference; records that must be
    /// durable at once use [`BackupStore::put`].
    async fn put_staged(&self, key: &str, data: Bytes) -> StoreResult<()> {
        let mut writer = self.writer(key).await?;
        if let Err(e) = writer.write(data).await {
            let _ = writer.abort().await;
            return Err(e);
        }
        writer.finish().await
    }

    /// Stores the local file at `path` under `key`, as [`BackupStore::writer`] would (durable
    /// after [`BackupStore::sync`]); returns the size and SHA-256 of what was read. Stores on
    /// a local filesystem copy in one blocking task.
    async fn put_file(&self, key: &str, path: &std::path::Path) -> StoreResult<(u64, String)> {
        use sha2::Digest as _;
        use std::io::Read as _;
        const PIECE: usize = 1 << 20;
        let io = |e: std::io::Error| {
            StoreError::new(
                StoreErrorKind::Other,
                "copying a file into",
                key,
                self.url(),
                Some(Box::new(e)),
            )
        };
        let source = path.to_owned();
        let mut file = off_thread(usize::MAX, move || fs_err::File::open(source))
            .await
            .and_then(|opened| opened)
            .map_err(io)?;
        let mut writer = self.writer(key).await?;
        let mut hasher = sha2::Sha256::new();
        let mut size = 0u64;
        loop {
            // Read and hashed on the blocking pool, a piece at a time.
            let piece = off_thread(usize::MAX, move || {
                let mut chunk = Vec::with_capacity(PIECE);
                (&mut file).take(PIECE as u64).read_to_end(&mut chunk)?;
                hasher.update(&chunk);
                Ok::<_, std::io::Error>((file, hasher, chunk))
            })
            .await
            .and_then(|read| read);
            let chunk;
            (file, hasher, chunk) = match piece {
                Ok(piece) => piece,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(io(e));
                }
            };
            if chunk.is_empty() {
                break;
            }
            size += chunk.len() as u64;
            let full = chunk.len() == PIECE;
            if let Err(e) = writer.write(Bytes::from(chunk)).await {
                let _ = writer.abort().await;
                return Err(e);
            }
            if !full {
                break;
            }
        }
        writer.finish().await?;
        Ok((size, hex::encode(hasher.finalize())))
    }

    /// [`BackupStore::put_file`] for each of `files` (a key and a local path), in order, until
    /// one fails: the results of those done, the failure last. Stores on a local filesystem
    /// copy them all in one blocking task (for many small files: one hand-off, not one each).
    async fn put_files(
        &self,
        files: &[(String, std::path::PathBuf)],
    ) -> Vec<StoreResult<(u64, String)>> {
        let mut done = Vec::with_capacity(files.len());
        for (key, path) in files {
            let result = self.put_file(key, path).await;
            let failed = result.is_err();
            done.push(result);
            if failed {
                break;
            }
        }
        done
    }

    /// Makes every object written with [`BackupStore::writer`] or [`BackupStore::put_file`]
    /// durable and visible to every reader. Called before a commit point references them.
    async fn sync(&self) -> StoreResult<()> {
        Ok(())
    }

    /// The local file holding the bytes of `key` verbatim, for stores on a local filesystem
    /// (restore then copies it in one blocking task); `None` elsewhere.
    fn local_file(&self, key: &str) -> Option<std::path::PathBuf> {
        let _ = key;
        None
    }
    /// Every object whose key starts with `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectMeta>>;

    /// Every object whose key starts with `prefix`, as [`BackupStore::list`] gives them but a
    /// page at a time and in no order: for callers that look at each object once and keep
    /// less of it than the listing holds (a repository of a million files lists ~200 MB of
    /// keys). A page may be empty (S3 answers an empty listing with one). The default is one
    /// page, the whole listing.
    fn list_pages(&self, prefix: &str) -> ListPages<'_> {
        let prefix = prefix.to_owned();
        Box::pin(futures::stream::once(
            async move { self.list(&prefix).await },
        ))
    }
    /// Deletes an object; deleting a missing object succeeds.
    async fn delete(&self, key: &str) -> StoreResult<()>;

    /// How [`BackupStore::list`] names the object of each key: the key itself, except in a
    /// store that cannot list keys (an encrypted repository lists table objects by an opaque
    /// digest). Callers comparing a listing with the keys they expect compare the names this
    /// gives; every method taking a key also takes such a name.
    async fn listed_names(&self) -> StoreResult<ListedNames> {
        Ok(Arc::new(|key: &str| key.to_owned()))
    }

    /// Until when an object cannot be deleted (S3 Object Lock retention), if it is retained;
    /// `forget` and `gc` leave such objects alone and say so.
    async fn retained_until(
        &self,
        key: &str,
    ) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
        let _ = key;
        Ok(None)
    }

    /// Whether the store holds nothing at all (a new repository is only created in an empty
    /// location). The default lists every object; backends override it with a cheaper check.
    async fn is_empty(&self) -> StoreResult<bool> {
        Ok(self.list("").await?.is_empty())
    }

    /// Leftovers of writes that never finished (a killed process), under `prefix`: temporary
    /// files, incomplete multipart uploads. [`BackupStore::list`] never shows them; `gc`
    /// reclaims them and `describe` counts them. Each key is only meaningful to
    /// [`BackupStore::delete_incomplete`].
    async fn list_incomplete(&self, prefix: &str) -> StoreResult<Vec<ObjectMeta>> {
        let _ = prefix;
        Ok(Vec::new())
    }

    /// Removes one leftover that [`BackupStore::list_incomplete`] returned.
    async fn delete_incomplete(&self, key: &str) -> StoreResult<()> {
        let _ = key;
        Ok(())
    }

    /// Copies `source` (an `s3://bucket/key` URL on the S3 service at `endpoint`, `None` for
    /// AWS) into `key` without its bytes passing through bcn, when this store lives on that
    /// same service. Returns the size and SHA-256 of the copy, or `None` when this store
    /// cannot copy from there (the caller then streams the file). Atomic like `put`.
    async fn copy_from_s3(
        &self,
        source: &str,
        endpoint: Option<&str>,
        key: &str,
    ) -> StoreResult<Option<(u64, String)>> {
        let _ = (source, endpoint, key);
        Ok(None)
    }
}

/// How to reach an S3 repository. Every field is optional: `None` falls back to the standard
/// AWS configuration (environment variables such as `AWS_REGION`, `AWS_ENDPOINT_URL`,
/// `AWS_ACCESS_KEY_ID`, then the shared profile files, then instance or container roles).
///
/// `Debug` never prints the secret key or the session token (they are [`Secret`]s).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// Endpoint URL of an S3-compatible server (`http://127.0.0.1:9000`); `None` for AWS.
    pub endpoint: Option<String>,
    /// Region to sign requests for; when neither this nor the environment names one,
    /// `us-east-1`.
    pub region: Option<String>,
    /// Address buckets as `endpoint/bucket/key` instead of `bucket.endpoint/key`. Most
    /// S3-compatible servers need it. An endpoint that comes from the environment
    /// (`AWS_ENDPOINT_URL`) implies it.
    pub path_style: bool,
    /// Static access key id; given together with `secret_access_key`.
    pub access_key_id: Option<String>,
    /// Static secret access key; given together with `access_key_id`.
    pub secret_access_key: Option<Secret>,
    /// Session token of temporary credentials.
    pub session_token: Option<Secret>,
    /// Object Lock retention given to every object written (locks excepted).
    pub object_lock: Option<ObjectLock>,
    /// Server-side encryption of every object written: algorithm and optional KMS key.
    pub sse: Option<(String, Option<String>)>,
    /// How long one attempt of a request waits for the first byte of the answer (from the
    /// moment it is sent), then it is retried; `None`: two minutes.
    pub read_timeout: Option<std::time::Duration>,
}

/// S3 Object Lock retention of what bcn writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectLock {
    /// Compliance (nobody may delete) rather than governance mode.
    pub compliance: bool,
    /// Days of retention from the write.
    pub days: u32,
}

impl fmt::Display for ObjectLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "S3 Object Lock, {} mode, {} day{}",
            if self.compliance {
                "compliance"
            } else {
                "governance"
            },
            self.days,
            if self.days == 1 { "" } else { "s" }
        )
    }
}

/// Opening the store a repository location names.
impl Location {
    /// Opens the store at this location. An S3 location uses [`S3Options::default`]: the
    /// standard AWS configuration (`AWS_REGION`, `AWS_ENDPOINT_URL`, credentials from the
    /// environment or profile); see [`Location::open_with`].
    pub fn open(&self) -> Result<std::sync::Arc<dyn BackupStore>, LocationError> {
        self.open_with(&S3Options::default())
    }

    /// Opens the store at this location; an S3 location connects with `s3` (other locations
    /// ignore it). Nothing is contacted yet: connection problems show on the first operation.
    pub fn open_with(
        &self,
        s3: &S3Options,
    ) -> Result<std::sync::Arc<dyn BackupStore>, LocationError> {
        match self.kind() {
            Kind::Local(path) => Ok(std::sync::Arc::new(LocalStore::new(path.clone()))),
            Kind::Memory(name) => Ok(std::sync::Arc::new(MemoryStore::shared(name))),
            #[cfg(feature = "store-s3")]
            Kind::S3 { bucket, prefix } => Ok(std::sync::Arc::new(S3Store::new(
                bucket,
                prefix,
                s3.clone(),
            )?)),
            #[cfg(not(feature = "store-s3"))]
            Kind::S3 { .. } => {
                let _ = s3;
                Err(LocationError::UnsupportedScheme {
                    scheme: "s3".into(),
                    url: format!("{self} (this build has no S3 repository support)"),
                })
            }
            Kind::Other { scheme } => Err(LocationError::UnsupportedScheme {
                scheme: scheme.clone(),
                url: self.to_string(),
            }),
        }
    }
}
