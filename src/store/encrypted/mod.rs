//! An encrypted repository: a [`BackupStore`] that seals every object and every key name
//! before they reach the store beneath (see [`super::crypto`]).
//!
//! Only two things are stored in the clear: `bcn-encryption.json` (which says the repository
//! is encrypted, and how) and `keys/<id>.json` (the master keys, wrapped by each user key).
//! Everything else — the repository manifest, PIT records, file lists, table metadata, data
//! and delete files, locks — is sealed, under a sealed name. Table objects are stored under
//! a keyed digest of their key (`tables/<2>/<32>`), so [`BackupStore::list`] names them
//! `tables/#<digest>` and [`BackupStore::listed_names`] maps a key to that name; every other
//! object lists under its own key. Sizes reported by
//! [`BackupStore::head`] and [`BackupStore::list`] are plaintext sizes, so everything above
//! this layer (checksums, size checks, verify, gc) works as on a plain repository. Server-side
//! copies are never used: the bytes must pass through bcn to be sealed.
//!
//! The user key is checked on the first operation, before anything is read or written; a new
//! repository gets its master keys then, and writes its key file and marker with its first
//! object (a dry run writes nothing).

use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::repo::layout;

mod keys;

use super::crypto::{self, CryptoError, KdfCost, MasterKeys, UserKey};
use super::{BackupStore, ObjectMeta, ObjectWriter, StoreError, StoreErrorKind, StoreResult};

/// The clear marker of an encrypted repository.
pub const MARKER: &str = "bcn-encryption.json";
/// Where key files live, in the clear.
pub const KEYS_PREFIX: &str = "keys/";
/// The manifest of a plain repository (a key given for one is an error).
const PLAIN_MANIFEST: &str = "bcn-repository.json";

/// The layout of encrypted repositories this bcn writes and reads. Layout 1 (development
/// builds only) sealed the names of table objects segment by segment.
const FORMAT_VERSION: u32 = 2;

/// How table objects are listed: `tables/#` and their digest.
const DIGEST_MARK: &str = "tables/#";

/// `bcn-encryption.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Marker {
    /// Layout version of encrypted repositories.
    pub format_version: u32,
    /// How objects are sealed.
    pub objects: String,
    /// How names are sealed.
    pub names: String,
}

impl Marker {
    fn current() -> Self {
        Self {
            format_version: FORMAT_VERSION,
            objects: "xchacha20poly1305-stream-be32-64k".into(),
            names: "tables-hmac-sha256-160-else-aes256-siv-base32hex".into(),
        }
    }
}

/// What the first operation found out.
struct Unlocked {
    /// Shared with the blocking tasks that seal and open objects.
    keys: Arc<MasterKeys>,
    /// The key file the user key opened (or will write, for a new repository).
    key_id: String,
    /// For a new repository: the marker and key file, written before its first object.
    pending: Mutex<Option<Vec<(String, Bytes)>>>,
}

/// An encrypted repository over `inner`.
pub struct EncryptedStore {
    inner: Arc<dyn BackupStore>,
    user: UserKey,
    cost: KdfCost,
    unlocked: OnceCell<Result<Unlocked, String>>,
}

impl std::fmt::Debug for EncryptedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedStore")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// Who adds a key, for `bcn key list`.
fn creator() -> String {
    format!(
        "bcn {} on {}",
        crate::VERSION_STRING,
        crate::context::hostname()
    )
}

impl EncryptedStore {
    /// Wraps `inner`, opened with `user` on first use.
    pub fn new(inner: Arc<dyn BackupStore>, user: UserKey) -> Self {
        Self::with_cost(inner, user, KdfCost::default())
    }

    /// As [`EncryptedStore::new`], with the cost new key files are stretched at.
    pub fn with_cost(inner: Arc<dyn BackupStore>, user: UserKey, cost: KdfCost) -> Self {
        Self {
            inner,
            user,
            cost,
            unlocked: OnceCell::new(),
        }
    }

    pub(super) fn error(
        &self,
        op: &'static str,
        key: &str,
        message: impl Into<String>,
    ) -> StoreError {
        let message: String = message.into();
        StoreError::new(
            StoreErrorKind::Other,
            op,
            key,
            self.inner.url(),
            Some(message.into()),
        )
    }

    /// Names the logical key in an error of the store beneath, not its sealed name.
    fn rename(&self, op: &'static str, e: StoreError, key: &str) -> StoreError {
        let kind = e.kind();
        let source: Option<Box<dyn std::error::Error + Send + Sync>> = match kind {
            StoreErrorKind::NotFound | StoreErrorKind::AlreadyExists => None,
            _ => Some(Box::new(e)),
        };
        StoreError::new(kind, op, key, self.inner.url(), source)
    }

    fn damaged(&self, op: &'static str, key: &str, e: &CryptoError) -> StoreError {
        self.error(op, key, e.to_string())
    }

    /// The name beneath of `key`, or of a name [`BackupStore::list`] gave (`tables/#...`).
    fn stored(unlocked: &Unlocked, key: &str) -> String {
        let Some(rest) = key.strip_prefix(layout::TABLES_PREFIX) else {
            return unlocked.keys.seal_name(key);
        };
        if rest.is_empty() {
            return layout::TABLES_PREFIX.to_owned();
        }
        let digest = match rest.strip_prefix('#') {
            Some(listed) => listed.to_owned(),
            None => unlocked.keys.digest_name(key),
        };
        let fan = digest.get(..2).unwrap_or(&digest);
        format!("{}{fan}/{digest}", layout::TABLES_PREFIX)
    }

    /// The digest in a stored table object name `tables/<2>/<32>`.
    fn stored_digest(stored: &str) -> Option<&str> {
        let (fan, digest) = stored
            .strip_prefix(layout::TABLES_PREFIX)?
            .split_once('/')?;
        let base32hex = |c: u8| c.is_ascii_digit() || (b'a'..=b'v').contains(&c);
        (digest.len() == 32 && digest.starts_with(fan) && fan.len() == 2)
            .then_some(digest)
            .filter(|d| d.bytes().all(base32hex))
    }

    fn plain_meta(unlocked: &Unlocked, meta: &ObjectMeta) -> Option<ObjectMeta> {
        if meta.key == MARKER || meta.key.starts_with(KEYS_PREFIX) {
            return None;
        }
        let opened = if meta.key.starts_with(layout::TABLES_PREFIX) {
            Self::stored_digest(&meta.key)
                .map(|digest| format!("{DIGEST_MARK}{digest}"))
                .ok_or(CryptoError::Format("a table object name that is no digest"))
        } else {
            unlocked.keys.open_name(&meta.key)
        };
        let key = match opened {
            Ok(key) => key,
            Err(e) => {
                tracing::warn!(object = %meta.key, error = %e, "an object of the encrypted repository has a name it did not write; leaving it alone");
                return None;
            }
        };
        Some(ObjectMeta {
            key,
            size: crypto::plain_size(meta.size).unwrap_or(0),
            modified: meta.modified,
        })
    }
}

#[async_trait]
impl BackupStore for EncryptedStore {
    fn url(&self) -> &str {
        self.inner.url()
    }

    fn protection(&self) -> super::Protection {
        super::Protection {
            encrypted: true,
            ..self.inner.protection()
        }
    }

    async fn get(&self, key: &str) -> StoreResult<Bytes> {
        let unlocked = self.unlocked().await?;
        let sealed = self
            .inner
            .get(&Self::stored(unlocked, key))
            .await
            .map_err(|e| self.rename("accessing", e, key))?;
        let (keys, name) = (unlocked.keys.clone(), key.to_owned());
        off_thread(sealed.len(), move || keys.open(&name, &sealed))
            .await
            .map(Bytes::from)
            .map_err(|e| self.damaged("reading", key, &e))
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> StoreResult<Bytes> {
        let unlocked = self.unlocked().await?;
        let stored = Self::stored(unlocked, key);
        let meta = self.inner.head(&stored).await?.ok_or_else(|| {
            StoreError::new(
                StoreErrorKind::NotFound,
                "reading",
                key,
                self.inner.url(),
                None,
            )
        })?;
        let size = crypto::plain_size(meta.size)
            .ok_or_else(|| self.error("reading", key, "its stored size fits no sealed object"))?;
        let (start, end) = (range.start.min(size), range.end.min(size));
        if start >= end {
            return Ok(Bytes::new());
        }
        let chunk = crypto::CHUNK as u64;
        let sealed_chunk = (crypto::CHUNK + crypto::TAG) as u64;
        let header = crypto::HEADER as u64;
        let (first, last) = (start / chunk, (end - 1) / chunk);
        let body_start = header + first * sealed_chunk;
        let body_end = (header + (last + 1) * sealed_chunk).min(meta.size);
        let (head, body) = if first == 0 {
            let all = self.inner.get_range(&stored, 0..body_end).await?;
            (
                all.slice(..crypto::HEADER.min(all.len())),
                all.slice(crypto::HEADER.min(all.len())..),
            )
        } else {
            (
                self.inner.get_range(&stored, 0..header).await?,
                self.inner.get_range(&stored, body_start..body_end).await?,
            )
        };
        let (keys, name, total) = (
            unlocked.keys.clone(),
            key.to_owned(),
            crypto::chunk_count(size),
        );
        let plain = off_thread(body.len(), move || {
            keys.open_chunks(&name, &head, &body, first, total)
        })
        .await
        .map_err(|e| self.damaged("reading", key, &e))?;
        let offset = usize::try_from(start - first * chunk).unwrap_or(usize::MAX);
        let len = usize::try_from(end - start).unwrap_or(usize::MAX);
        Ok(Bytes::from(plain).slice(offset..offset + len))
    }

    async fn head(&self, key: &str) -> StoreResult<Option<ObjectMeta>> {
        let unlocked = self.unlocked().await?;
        Ok(self
            .inner
            .head(&Self::stored(unlocked, key))
            .await?
            .map(|meta| ObjectMeta {
                key: key.to_owned(),
                size: crypto::plain_size(meta.size).unwrap_or(0),
                modified: meta.modified,
            }))
    }

    async fn put(&self, key: &str, data: Bytes) -> StoreResult<()> {
        let unlocked = self.unlocked().await?;
        self.initialize(unlocked).await?;
        let sealed = unlocked.keys.seal(key, &data);
        self.inner
            .put(&Self::stored(unlocked, key), Bytes::from(sealed))
            .await
            .map_err(|e| self.rename("accessing", e, key))
    }

    async fn put_if_absent(&self, key: &str, data: Bytes) -> StoreResult<()> {
        let unlocked = self.unlocked().await?;
        self.initialize(unlocked).await?;
        let sealed = unlocked.keys.seal(key, &data);
        self.inner
            .put_if_absent(&Self::stored(unlocked, key), Bytes::from(sealed))
            .await
            .map_err(|e| self.rename("accessing", e, key))
    }

    async fn writer(&self, key: &str) -> StoreResult<Box<dyn ObjectWriter>> {
        let unlocked = self.unlocked().await?;
        self.initialize(unlocked).await?;
        let inner = self.inner.writer(&Self::stored(unlocked, key)).await?;
        Ok(Box::new(SealingWriter {
            inner,
            sealer: Some(unlocked.keys.sealer(key)),
            pending: Vec::with_capacity(crypto::CHUNK),
            key: key.to_owned(),
            url: self.inner.url().to_owned(),
        }))
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectMeta>> {
        let unlocked = self.unlocked().await?;
        if prefix.len() > layout::TABLES_PREFIX.len() && prefix.starts_with(layout::TABLES_PREFIX) {
            return Err(self.error(
                "listing",
                prefix,
                "an encrypted repository lists the objects of tables only all together",
            ));
        }
        let mut out: Vec<ObjectMeta> = self
            .inner
            .list(&Self::stored(unlocked, prefix))
            .await?
            .into_iter()
            .filter_map(|meta| Self::plain_meta(unlocked, &meta))
            .filter(|meta| meta.key.starts_with(prefix))
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn list_pages(&self, prefix: &str) -> super::ListPages<'_> {
        use futures::TryStreamExt as _;
        let prefix = prefix.to_owned();
        let pages = futures::stream::once(async move {
            let unlocked = self.unlocked().await?;
            if prefix.len() > layout::TABLES_PREFIX.len()
                && prefix.starts_with(layout::TABLES_PREFIX)
            {
                return Err(self.error(
                    "listing",
                    &prefix,
                    "an encrypted repository lists the objects of tables only all together",
                ));
            }
            let inner = self.inner.list_pages(&Self::stored(unlocked, &prefix));
            Ok(inner.map_ok(move |page| {
                page.iter()
                    .filter_map(|meta| Self::plain_meta(unlocked, meta))
                    .filter(|meta| meta.key.starts_with(prefix.as_str()))
                    .collect()
            }))
        })
        .try_flatten();
        Box::pin(pages)
    }

    async fn sync(&self) -> StoreResult<()> {
        self.inner.sync().await
    }

    async fn listed_names(&self) -> StoreResult<super::ListedNames> {
        let unlocked = self.unlocked().await?;
        let keys = unlocked.keys.clone();
        Ok(Arc::new(move |key: &str| {
            if key.starts_with(layout::TABLES_PREFIX) {
                format!("{DIGEST_MARK}{}", keys.digest_name(key))
            } else {
                key.to_owned()
            }
        }))
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        let unlocked = self.unlocked().await?;
        self.inner
            .delete(&Self::stored(unlocked, key))
            .await
            .map_err(|e| self.rename("accessing", e, key))
    }

    async fn retained_until(
        &self,
        key: &str,
    ) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
        let unlocked = self.unlocked().await?;
        self.inner
            .retained_until(&Self::stored(unlocked, key))
            .await
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        // A repository whose creation stopped after its marker and key file is still empty.
        Ok(self
            .inner
            .list("")
            .await?
            .iter()
            .all(|m| m.key == MARKER || m.key.starts_with(KEYS_PREFIX)))
    }

    async fn list_incomplete(&self, prefix: &str) -> StoreResult<Vec<ObjectMeta>> {
        let unlocked = self.unlocked().await?;
        self.inner
            .list_incomplete(&Self::stored(unlocked, prefix))
            .await
    }

    async fn delete_incomplete(&self, key: &str) -> StoreResult<()> {
        self.inner.delete_incomplete(key).await
    }
}

/// [`super::off_thread`] for sealing and opening.
async fn off_thread<T: Send + 'static>(
    len: usize,
    work: impl FnOnce() -> Result<T, CryptoError> + Send + 'static,
) -> Result<T, CryptoError> {
    super::off_thread(len, work)
        .await
        .unwrap_or(Err(CryptoError::Format("the runtime stopped")))
}

/// Seals a stream chunk by chunk; a chunk is sealed once the next byte shows it is not the last.
struct SealingWriter {
    inner: Box<dyn ObjectWriter>,
    /// `None` only while a write seals on the blocking pool, or after that failed.
    sealer: Option<crypto::Sealer>,
    /// The last bytes written, at most a chunk, not sealed yet.
    pending: Vec<u8>,
    /// The object's key and the store's URL, for messages.
    key: String,
    url: String,
}

/// Seals every whole chunk of `pending` followed by `data` but the last (it may end the
/// object); returns the sealed bytes and leaves the rest, at most a chunk, in `pending`.
fn seal_all_but_last(sealer: &mut crypto::Sealer, pending: &mut Vec<u8>, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        data.len() + crypto::HEADER + crypto::TAG * (data.len() / crypto::CHUNK + 2),
    );
    let mut data = data;
    while !data.is_empty() {
        if pending.len() == crypto::CHUNK {
            sealer.seal_into(pending, false, &mut out);
            pending.clear();
        }
        if pending.is_empty() && data.len() > crypto::CHUNK {
            // Sealed from where it is, not copied to `pending` first.
            sealer.seal_into(&data[..crypto::CHUNK], false, &mut out);
            data = &data[crypto::CHUNK..];
            continue;
        }
        let take = (crypto::CHUNK - pending.len()).min(data.len());
        pending.extend_from_slice(&data[..take]);
        data = &data[take..];
    }
    out
}

impl SealingWriter {
    fn failed(&self, why: Box<dyn std::error::Error + Send + Sync>) -> StoreError {
        StoreError::new(
            StoreErrorKind::Other,
            "writing",
            &self.key,
            &self.url,
            Some(why),
        )
    }

    /// The sealer, taken while a write seals: gone only after a write failed while sealing.
    fn take_sealer(&mut self) -> StoreResult<crypto::Sealer> {
        self.sealer
            .take()
            .ok_or_else(|| self.failed("an earlier write of this object failed".into()))
    }
}

#[async_trait]
impl ObjectWriter for SealingWriter {
    async fn write(&mut self, chunk: Bytes) -> StoreResult<()> {
        let mut sealer = self.take_sealer()?;
        let mut pending = std::mem::take(&mut self.pending);
        let (sealer, pending, out) = off_thread(chunk.len(), move || {
            let out = seal_all_but_last(&mut sealer, &mut pending, &chunk);
            Ok((sealer, pending, out))
        })
        .await
        .map_err(|e| self.failed(Box::new(e)))?;
        (self.sealer, self.pending) = (Some(sealer), pending);
        if out.is_empty() {
            return Ok(());
        }
        self.inner.write(Bytes::from(out)).await
    }

    async fn finish(mut self: Box<Self>) -> StoreResult<()> {
        let mut sealer = self.take_sealer()?;
        let mut out = Vec::with_capacity(self.pending.len() + crypto::HEADER + crypto::TAG);
        sealer.seal_into(&self.pending, true, &mut out);
        self.inner.write(Bytes::from(out)).await?;
        self.inner.finish().await
    }

    async fn abort(self: Box<Self>) -> StoreResult<()> {
        self.inner.abort().await
    }
}

#[cfg(test)]
mod tests;
