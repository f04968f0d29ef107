//! Repository storage on a local or mounted filesystem.
//!
//! Atomicity comes from the filesystem: every object is written to a temporary file in the
//! target directory and then renamed into place (`put`) or hard-linked into place
//! (`put_if_absent`, where `link(2)` fails when the name exists), after an `fsync`.
//! Directories are created `0700` and files `0600`: only the repository's owner reads them.

use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt as _;

use fs_err::os::unix::fs::OpenOptionsExt as _;
use std::ops::Range;
use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;
use fs_err::tokio as fs;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::{BackupStore, ObjectMeta, ObjectWriter, StoreError, StoreErrorKind, StoreResult};

/// Prefix of in-flight temporary files; `list` skips them.
const TMP_PREFIX: &str = ".bcn-tmp-";

/// A repository in a directory.
#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
    url: String,
}

impl LocalStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: PathBuf) -> Self {
        let url = format!("file://{}", root.display());
        Self { root, url }
    }

    fn path(&self, key: &str) -> StoreResult<PathBuf> {
        super::check_key(key, &self.url)?;
        Ok(self.root.join(key))
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
        let target = self.path(key)?;
        let dir = target.parent().unwrap_or(&self.root).to_path_buf();
        let created = tokio::task::spawn_blocking(move || {
            // Owner-only, like restic's: a repository holds the tables' data.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| {
                    std::io::Error::new(e.kind(), format!("creating {}: {e}", dir.display()))
                })?;
            let path = dir.join(format!("{TMP_PREFIX}{}", uuid::Uuid::new_v4().simple()));
            let file = fs_err::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            Ok::<_, std::io::Error>((TempFile(Some(path)), file))
        })
        .await;
        match created {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(e)) => Err(self.err("writing", key, e)),
            Err(e) => Err(self.err("writing", key, std::io::Error::other(e))),
        }
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
        let done = tokio::task::spawn_blocking(move || {
            use std::io::Write as _;
            file.write_all(&data)?;
            file.sync_all()?;
            place(tmp.path(), &target)?;
            if op == "writing" {
                tmp.disarm();
            }
            Ok::<_, std::io::Error>(())
        })
        .await;
        match done {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.err(op, key, e)),
            Err(e) => Err(self.err(op, key, std::io::Error::other(e))),
        }
    }
}

/// A temporary file that is removed when dropped, unless it was renamed into place. Futures
/// can be cancelled at any `.await`; this keeps cancelled writes from leaving files behind.
struct TempFile(Option<PathBuf>);

impl TempFile {
    fn path(&self) -> &std::path::Path {
        self.0.as_deref().unwrap_or(std::path::Path::new(""))
    }

    /// The file was renamed or linked into place (or is gone): nothing to remove.
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs_err::remove_file(path);
        }
    }
}

#[async_trait]
impl BackupStore for LocalStore {
    fn url(&self) -> &str {
        &self.url
    }

    async fn get(&self, key: &str) -> StoreResult<Bytes> {
        fs::read(self.path(key)?)
            .await
            .map(Bytes::from)
            .map_err(|e| self.err("reading", key, e))
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> StoreResult<Bytes> {
        let path = self.path(key)?;
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
        match fs::metadata(self.path(key)?).await {
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
            target: self.path(key)?,
            key: key.to_owned(),
            url: self.url.clone(),
        }))
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectMeta>> {
        self.walk(prefix, false).await
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
    target: PathBuf,
    key: String,
    url: String,
}

impl LocalWriter {
    fn err(&self, e: std::io::Error) -> StoreError {
        StoreError::new(
            StoreErrorKind::Other,
            "writing",
            &self.key,
            &self.url,
            Some(Box::new(e)),
        )
    }
}

#[async_trait]
impl ObjectWriter for LocalWriter {
    async fn write(&mut self, chunk: Bytes) -> StoreResult<()> {
        match self.file.write_all(&chunk).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }

    async fn finish(self: Box<Self>) -> StoreResult<()> {
        // Until the rename, dropping `self` (an error, or a cancelled future) removes the
        // temporary file: nothing half-written ever becomes visible.
        if let Err(e) = self.file.sync_all().await {
            return Err(self.err(e));
        }
        if let Err(e) = fs::rename(self.tmp.path(), &self.target).await {
            return Err(self.err(e));
        }
        self.tmp.disarm();
        Ok(())
    }

    async fn abort(self: Box<Self>) -> StoreResult<()> {
        Ok(())
    }
}
