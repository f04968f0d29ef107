//! An in-process store: the reference implementation of the contract, for tests and dry runs.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;

use super::{BackupStore, ObjectMeta, ObjectWriter, StoreError, StoreErrorKind, StoreResult};

type Objects = Arc<Mutex<BTreeMap<String, Bytes>>>;

/// Named stores of this process, so `memory://name` opened twice sees the same objects.
static SHARED: LazyLock<Mutex<HashMap<String, Objects>>> = LazyLock::new(Default::default);

/// A store held in memory.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    objects: Objects,
    url: String,
}

impl MemoryStore {
    /// A fresh, empty store.
    pub fn new() -> Self {
        Self {
            objects: Objects::default(),
            url: "memory://anonymous".into(),
        }
    }

    /// The store registered under `name` in this process (created empty on first use).
    pub fn shared(name: &str) -> Self {
        let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        let objects = shared.entry(name.to_owned()).or_default().clone();
        Self {
            objects,
            url: format!("memory://{name}"),
        }
    }

    fn objects(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Bytes>> {
        self.objects.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn not_found(&self, key: &str) -> StoreError {
        StoreError::new(StoreErrorKind::NotFound, "reading", key, &self.url, None)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl BackupStore for MemoryStore {
    fn url(&self) -> &str {
        &self.url
    }

    async fn get(&self, key: &str) -> StoreResult<Bytes> {
        self.objects()
            .get(key)
            .cloned()
            .ok_or_else(|| self.not_found(key))
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> StoreResult<Bytes> {
        let data = self.get(key).await?;
        let len = data.len() as u64;
        let (start, end) = (range.start.min(len), range.end.min(len));
        Ok(data.slice(usize::try_from(start).unwrap_or(0)..usize::try_from(end).unwrap_or(0)))
    }

    async fn head(&self, key: &str) -> StoreResult<Option<ObjectMeta>> {
        Ok(self.objects().get(key).map(|d| ObjectMeta {
            key: key.to_owned(),
            size: d.len() as u64,
            modified: None,
        }))
    }

    async fn put(&self, key: &str, data: Bytes) -> StoreResult<()> {
        self.objects().insert(key.to_owned(), data);
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, data: Bytes) -> StoreResult<()> {
        let mut objects = self.objects();
        if objects.contains_key(key) {
            return Err(StoreError::new(
                StoreErrorKind::AlreadyExists,
                "creating",
                key,
                &self.url,
                None,
            ));
        }
        objects.insert(key.to_owned(), data);
        Ok(())
    }

    async fn writer(&self, key: &str) -> StoreResult<Box<dyn ObjectWriter>> {
        Ok(Box::new(MemoryWriter {
            store: self.clone(),
            key: key.to_owned(),
            buf: Vec::new(),
        }))
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectMeta>> {
        Ok(self
            .objects()
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| ObjectMeta {
                key: k.clone(),
                size: v.len() as u64,
                modified: None,
            })
            .collect())
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.objects().remove(key);
        Ok(())
    }
}

struct MemoryWriter {
    store: MemoryStore,
    key: String,
    buf: Vec<u8>,
}

#[async_trait]
impl ObjectWriter for MemoryWriter {
    async fn write(&mut self, chunk: Bytes) -> StoreResult<()> {
        self.buf.extend_from_slice(&chunk);
        Ok(())
    }

    async fn finish(self: Box<Self>) -> StoreResult<()> {
        self.store.objects().insert(self.key, Bytes::from(self.buf));
        Ok(())
    }

    async fn abort(self: Box<Self>) -> StoreResult<()> {
        Ok(())
    }
}
