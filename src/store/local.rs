//! Repository storage on a local or mounted filesystem.
//!
//! Atomicity comes from the filesystem: every object is written to a temporary file in the
//! target directory and then renamed into place (`put`) or hard-linked into place
//! (`put_if_absent`, where `link(2)` fails when the name exists), after an `fsync`.

use std::io::ErrorKind;
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

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
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

    async fn temp_file(&self, key: &str) -> StoreResult<(PathBuf, fs::File)> {
        let target = self.path(key);
        let dir = target.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir)
            .await
            .map_err(|e| self.err("creating directory for", key, e))?;
        let tmp = dir.join(format!("{TMP_PREFIX}{}", uuid::Uuid::new_v4().simple()));
        let file = fs::File::create(&tmp)
            .await
            .map_err(|e| self.err("writing", key, e))?;
        Ok((tmp, file))
    }

    async fn write_temp(&self, key: &str, data: &[u8]) -> StoreResult<PathBuf> {
        let (tmp, mut file) = self.temp_file(key).await?;
        let result = async {
            file.write_all(data).await?;
            file.sync_all().await
        }
        .await;
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp).await;
            return Err(self.err("writing", key, e));
        }
        Ok(tmp)
    }
}

#[async_trait]
impl BackupStore for LocalStore {
    fn url(&self) -> &str {
        &self.url
    }

    async fn get(&self, key: &str) -> StoreResult<Bytes> {
        fs::read(self.path(key))
            .await
            .map(Bytes::from)
            .map_err(|e| self.err("reading", key, e))
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> StoreResult<Bytes> {
        let read = async {
            let mut file = fs::File::open(self.path(key)).await?;
            file.seek(std::io::SeekFrom::Start(range.start)).await?;
            let len = usize::try_from(range.end.saturating_sub(range.start)).unwrap_or(usize::MAX);
            let mut buf = Vec::with_capacity(len.min(64 << 20));
            file.take(len as u64).read_to_end(&mut buf).await?;
            Ok::<_, std::io::Error>(Bytes::from(buf))
        };
        read.await.map_err(|e| self.err("reading", key, e))
    }

    async fn head(&self, key: &str) -> StoreResult<Option<ObjectMeta>> {
        match fs::metadata(self.path(key)).await {
            Ok(m) if m.is_file() => Ok(Some(ObjectMeta {
                key: key.to_owned(),
                size: m.len(),
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err("inspecting", key, e)),
        }
    }

    async fn put(&self, key: &str, data: Bytes) -> StoreResult<()> {
        let tmp = self.write_temp(key, &data).await?;
        fs::rename(&tmp, self.path(key))
            .await
            .map_err(|e| self.err("writing", key, e))
    }

    async fn put_if_absent(&self, key: &str, data: Bytes) -> StoreResult<()> {
        let tmp = self.write_temp(key, &data).await?;
        // link(2) is atomic and refuses an existing name: exactly one racer wins.
        let linked = fs::hard_link(&tmp, self.path(key)).await;
        let _ = fs::remove_file(&tmp).await;
        linked.map_err(|e| self.err("creating", key, e))
    }

    async fn writer(&self, key: &str) -> StoreResult<Box<dyn ObjectWriter>> {
        let (tmp, file) = self.temp_file(key).await?;
        Ok(Box::new(LocalWriter {
            file: Some(file),
            tmp,
            target: self.path(key),
            key: key.to_owned(),
            url: self.url.clone(),
        }))
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectMeta>> {
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
                if name.starts_with(TMP_PREFIX) {
                    continue;
                }
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
                } else if key.starts_with(prefix) {
                    let size = entry
                        .metadata()
                        .await
                        .map_err(|e| self.err("listing", &key, e))?;
                    out.push(ObjectMeta {
                        key,
                        size: size.len(),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        match fs::remove_file(self.path(key)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err("deleting", key, e)),
        }
    }
}

struct LocalWriter {
    file: Option<fs::File>,
    tmp: PathBuf,
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
        let Some(file) = self.file.as_mut() else {
            return Err(self.err(std::io::Error::other("writer already finished")));
        };
        match file.write_all(&chunk).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }

    async fn finish(mut self: Box<Self>) -> StoreResult<()> {
        if let Some(file) = self.file.take()
            && let Err(e) = file.sync_all().await
        {
            return Err(self.err(e));
        }
        match fs::rename(&self.tmp, &self.target).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }

    async fn abort(mut self: Box<Self>) -> StoreResult<()> {
        self.file.take();
        let _ = fs::remove_file(&self.tmp).await;
        Ok(())
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        // An abandoned upload must leave nothing visible; the temporary file is not visible to
        // `list`, and removing it here keeps the directory clean.
        if self.file.is_some() {
            let _ = fs_err::remove_file(&self.tmp);
        }
    }
}
