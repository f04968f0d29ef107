//! Moving bytes between a table's `FileIO` and the repository, with checksums.
//!
//! Large files stream in fixed-size chunks: memory stays bounded by the chunk size times the
//! number of concurrent copies, whatever the file size.

use bytes::Bytes;
use iceberg::io::FileIO;
use sha2::{Digest, Sha256};

use crate::store::{BackupStore, StoreError};

/// Bytes per read and write of a streaming copy.
const CHUNK: u64 = 8 << 20;

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
    /// Content read back does not match its checksum.
    #[error("{what} {key} does not match its recorded SHA-256")]
    ChecksumMismatch {
        /// What it is.
        what: &'static str,
        /// Its key or path.
        key: String,
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

/// Copies one table file into the store under `key`; `content` is used when the caller has
/// already read the file. Returns the size and SHA-256.
pub(crate) async fn file_to_store(
    file_io: &FileIO,
    path: &str,
    content: Option<Bytes>,
    store: &dyn BackupStore,
    key: &str,
) -> Result<(u64, String), TransferError> {
    if let Some(data) = content {
        let sum = sha256_hex(&data);
        let size = data.len() as u64;
        store.put(key, data).await?;
        return Ok((size, sum));
    }
    let input = file_io
        .new_input(path)
        .map_err(table_err("opening", path))?;
    let size = input
        .metadata()
        .await
        .map_err(table_err("reading the size of", path))?
        .size;
    let reader = input.reader().await.map_err(table_err("opening", path))?;
    let mut writer = store.writer(key).await?;
    let mut hasher = Sha256::new();
    let mut offset = 0;
    while offset < size {
        let end = (offset + CHUNK).min(size);
        let chunk = match reader.read(offset..end).await {
            Ok(chunk) => chunk,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(table_err("reading", path)(e));
            }
        };
        hasher.update(&chunk);
        offset += chunk.len() as u64;
        if chunk.is_empty() {
            break;
        }
        if let Err(e) = writer.write(chunk).await {
            let _ = writer.abort().await;
            return Err(e.into());
        }
    }
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

/// Size and SHA-256 of an object already in the store (reused after an interrupted run).
pub(crate) async fn hash_stored(
    store: &dyn BackupStore,
    key: &str,
    size: u64,
) -> Result<String, TransferError> {
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
    if sha256_hex(&data) != sha256 {
        return Err(TransferError::ChecksumMismatch {
            what: "stored file",
            key: key.to_owned(),
        });
    }
    Ok(data)
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
    let output = file_io
        .new_output(path)
        .map_err(table_err("creating", path))?;
    let mut writer = output.writer().await.map_err(table_err("creating", path))?;
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
        writer
            .write(chunk)
            .await
            .map_err(table_err("writing", path))?;
    }
    if hex::encode(hasher.finalize()) != sha256 || offset != size {
        // Leave no file that looks complete.
        let _ = writer.close().await;
        let _ = file_io.delete(path).await;
        return Err(TransferError::ChecksumMismatch {
            what: "stored file",
            key: key.to_owned(),
        });
    }
    writer.close().await.map_err(table_err("writing", path))?;
    Ok(offset)
}

/// Writes `data` to `path` through `file_io`.
pub(crate) async fn bytes_to_file(
    file_io: &FileIO,
    path: &str,
    data: Bytes,
) -> Result<(), TransferError> {
    file_io
        .new_output(path)
        .map_err(table_err("creating", path))?
        .write(data)
        .await
        .map_err(table_err("writing", path))
}

/// Size of the file at `path`, or `None` when it does not exist.
pub(crate) async fn file_size(file_io: &FileIO, path: &str) -> Result<Option<u64>, TransferError> {
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
