//! The keys of an encrypted repository: unlocking it with a user key (creating its master
//! keys when it is new) and managing its key files.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::{
    EncryptedStore, FORMAT_VERSION, KEYS_PREFIX, MARKER, Marker, PLAIN_MANIFEST, Unlocked, creator,
};
use crate::store::crypto::{CryptoError, KeyFile, MasterKeys, UserKey};
use crate::store::{StoreError, StoreResult};

impl EncryptedStore {
    pub(super) async fn unlocked(&self) -> StoreResult<&Unlocked> {
        let result = self.unlocked.get_or_init(|| self.unlock()).await;
        result
            .as_ref()
            .map_err(|message| self.error("opening the encrypted repository", "", message.clone()))
    }

    async fn unlock(&self) -> Result<Unlocked, String> {
        let url = self.inner.url();
        let chain = |e: &StoreError| crate::error::error_chain(e);
        match self.inner.get(MARKER).await {
            Ok(raw) => {
                let marker: Marker = serde_json::from_slice(&raw)
                    .map_err(|e| format!("{MARKER} of {url} does not read: {e}"))?;
                if marker.format_version == 1 {
                    return Err(format!(
                        "{url} is encrypted with layout 1, written by a development build of bcn before table objects were named by digests; read it with that build"
                    ));
                }
                if marker.format_version != FORMAT_VERSION {
                    return Err(format!(
                        "{url} is encrypted with layout {}, which this bcn does not know; use a newer bcn",
                        marker.format_version
                    ));
                }
                let files = self.key_files().await.map_err(|e| chain(&e))?;
                if files.is_empty() {
                    return Err(format!(
                        "{url} is encrypted but holds no key file under {KEYS_PREFIX}: it cannot be opened"
                    ));
                }
                for file in &files {
                    match MasterKeys::unwrap(file, &self.user) {
                        Ok(keys) => {
                            return Ok(Unlocked {
                                keys: Arc::new(keys),
                                key_id: file.id.clone(),
                                pending: Mutex::new(None),
                            });
                        }
                        Err(CryptoError::WrongKey) => {}
                        Err(e) => {
                            tracing::warn!(key = %file.id, error = %e, "a key file of the repository does not read");
                        }
                    }
                }
                Err(format!(
                    "the key given for {url} opens none of its {} key(s): check `encryption.key` of the repository in the plan (or BCN_REPOSITORY_KEY / --key-file); `bcn key list` shows the keys it has",
                    files.len()
                ))
            }
            Err(e) if e.is_not_found() => {
                if self
                    .inner
                    .head(PLAIN_MANIFEST)
                    .await
                    .map_err(|e| chain(&e))?
                    .is_some()
                {
                    return Err(format!(
                        "{url} is a repository without encryption, but a key is given for it: remove `encryption` from the repository in the plan (an existing repository cannot be encrypted in place; back up into a new one)"
                    ));
                }
                // A new repository: its keys are made now, written with its first object.
                let keys = MasterKeys::generate();
                let file = keys
                    .wrap(&self.user, self.cost, &creator())
                    .map_err(|e| e.to_string())?;
                let marker =
                    serde_json::to_vec_pretty(&Marker::current()).map_err(|e| e.to_string())?;
                let key_json = serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?;
                Ok(Unlocked {
                    keys: Arc::new(keys),
                    key_id: file.id.clone(),
                    pending: Mutex::new(Some(vec![
                        (
                            format!("{KEYS_PREFIX}{}.json", file.id),
                            Bytes::from(key_json),
                        ),
                        (MARKER.to_owned(), Bytes::from(marker)),
                    ])),
                })
            }
            Err(e) => Err(chain(&e)),
        }
    }

    /// Writes the marker and first key file of a new repository, once.
    pub(super) async fn initialize(&self, unlocked: &Unlocked) -> StoreResult<()> {
        let pending = unlocked
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(objects) = pending {
            for (key, data) in objects {
                self.inner.put_if_absent(&key, data).await?;
            }
        }
        Ok(())
    }

    /// Every key file of the repository.
    pub async fn key_files(&self) -> StoreResult<Vec<KeyFile>> {
        let mut out = Vec::new();
        for object in self.inner.list(KEYS_PREFIX).await? {
            let raw = self.inner.get(&object.key).await?;
            match serde_json::from_slice::<KeyFile>(&raw) {
                Ok(file) => out.push(file),
                Err(e) => {
                    tracing::warn!(key = %object.key, error = %e, "skipping a key file that does not read");
                }
            }
        }
        Ok(out)
    }

    /// The id of the key file the given key opened.
    pub async fn current_key(&self) -> StoreResult<String> {
        Ok(self.unlocked().await?.key_id.clone())
    }

    /// Whether the repository exists yet (its marker is written).
    pub async fn exists(&self) -> StoreResult<bool> {
        Ok(self.inner.head(MARKER).await?.is_some())
    }

    /// Adds a key file for `new`; returns its id. Every PIT stays readable with either key.
    pub async fn add_key(&self, new: &UserKey) -> StoreResult<String> {
        let unlocked = self.unlocked().await?;
        if !self.exists().await? {
            return Err(self.error(
                "adding a key",
                "",
                "the repository does not exist yet: its first backup creates it",
            ));
        }
        let file = unlocked
            .keys
            .wrap(new, self.cost, &creator())
            .map_err(|e| self.error("adding a key", "", e.to_string()))?;
        let json = serde_json::to_vec_pretty(&file)
            .map_err(|e| self.error("adding a key", "", e.to_string()))?;
        self.inner
            .put_if_absent(&format!("{KEYS_PREFIX}{}.json", file.id), Bytes::from(json))
            .await?;
        Ok(file.id)
    }

    /// Removes the key file `id`; never the last one, nor the one in use.
    pub async fn remove_key(&self, id: &str) -> StoreResult<()> {
        let unlocked = self.unlocked().await?;
        let files = self.key_files().await?;
        if !files.iter().any(|f| f.id == id) {
            return Err(self.error(
                "removing a key",
                id,
                "no key file has this id (`bcn key list` shows them)",
            ));
        }
        if unlocked.key_id == id {
            return Err(self.error(
                "removing a key",
                id,
                "this is the key in use: open the repository with another of its keys to remove it",
            ));
        }
        if files.len() < 2 {
            return Err(self.error(
                "removing a key",
                id,
                "the repository's last key cannot be removed",
            ));
        }
        self.inner.delete(&format!("{KEYS_PREFIX}{id}.json")).await
    }
}
