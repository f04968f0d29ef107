//! Repository storage in an S3 bucket (AWS or an S3-compatible server), with aws-sdk-s3.
//!
//! How the contract of [`crate::store`] is met:
//!
//! 1. Atomic visibility: S3 shows an object only once `PutObject` or
//!    `CompleteMultipartUpload` has succeeded. A streaming writer that is aborted or dropped
//!    aborts its multipart upload, which never becomes visible ([`writer`]).
//! 2. Create-if-absent: a conditional `PutObject` with `If-None-Match: *`; S3 answers
//!    `412 PreconditionFailed` to the loser. A `409 ConditionalRequestConflict` (a concurrent
//!    write still in flight) is retried a few times, then also reported as `AlreadyExists`.
//!    The server must decide the condition atomically: AWS S3 and moto do, s3s-fs 0.14 does
//!    not (it checks, then writes).
//! 3. Read-after-write: S3 has been strongly consistent for reads and lists since 2020.
//! 4. Not-found: `NoSuchKey` and 404 become [`StoreErrorKind::NotFound`]. A missing bucket
//!    does not: it is reported naming the bucket, so that it never reads as an empty
//!    repository ([`error`]).
//!
//! Keys are stored as `<prefix>/<key>`. The client is built on first use, so opening a store
//! needs no runtime and contacts nothing. Throttling, 5xx answers and timeouts are retried by
//! the SDK (standard mode, [`MAX_ATTEMPTS`] attempts with exponential backoff).

mod config;
mod error;
mod writer;

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use bytes::Bytes;
use tokio::sync::OnceCell;

use self::config::{WriteHeaders, build_client};
use self::error::{Place, S3Error, causes, is_conflict, status};
use self::writer::S3Writer;
use super::{
    BackupStore, LocationError, ObjectMeta, ObjectWriter, S3Options, StoreError, StoreErrorKind,
    StoreResult,
};

/// See [`S3Store::PART_SIZE`].
const PART_SIZE: usize = 8 << 20;
/// Attempts per request, the first included (the SDK's standard retry mode).
const MAX_ATTEMPTS: u32 = 4;
/// How long an attempt waits for the first byte of its answer, its own body's upload
/// included (an 8 MiB part at 70 KB/s): a connection that a firewall or NAT silently
/// dropped would otherwise wait for ever, as the SDK sets no such limit. Bodies that stall
/// once flowing are the SDK's stalled-stream protection's.
pub(super) const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_mins(2);
/// The same for `CopyObject` (up to 5 GiB), which S3-compatible servers may answer only
/// once the copy is done.
const COPY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_mins(30);
/// Attempts of `put_if_absent` while S3 reports a concurrent conditional write.
const CONFLICT_ATTEMPTS: u32 = 3;

/// A repository under a key prefix of an S3 bucket.
pub struct S3Store {
    place: Place,
    /// `<prefix>/`, or empty for the bucket root.
    root: String,
    options: S3Options,
    client: OnceCell<Client>,
    /// `HeadBucket` succeeded once (see [`S3Store::explain_not_found`]).
    bucket_seen: AtomicBool,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("url", &self.place.url)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// Size of the parts of a multipart upload; a streamed object smaller than this is
    /// written with one `PutObject`. S3 wants at least 5 MiB for every part but the last and
    /// at most 10 000 parts, so the part size doubles every 1000 parts.
    pub const PART_SIZE: usize = PART_SIZE;

    /// A store for `s3://bucket/prefix` that connects with `options`. Nothing is contacted
    /// until the first operation; this only checks that the options are consistent.
    pub fn new(bucket: &str, prefix: &str, options: S3Options) -> Result<Self, LocationError> {
        let prefix = prefix.trim_matches('/');
        let (root, url) = match prefix {
            "" => (String::new(), format!("s3://{bucket}")),
            _ => (format!("{prefix}/"), format!("s3://{bucket}/{prefix}")),
        };
        let invalid = |why| Err(LocationError::Invalid(url.clone(), why));
        if bucket.is_empty() {
            return invalid("missing bucket name");
        }
        if options.access_key_id.is_some() != options.secret_access_key.is_some() {
            return invalid("an access key id and a secret access key must be given together");
        }
        if options.session_token.is_some() && options.access_key_id.is_none() {
            return invalid("a session token needs an access key id and a secret access key");
        }
        Ok(Self {
            place: Place {
                bucket: bucket.to_owned(),
                url,
            },
            root,
            options,
            client: OnceCell::new(),
            bucket_seen: AtomicBool::new(false),
        })
    }

    /// `HeadObject` of `key`; `None` when there is no such object.
    async fn head_object(
        &self,
        key: &str,
    ) -> StoreResult<Option<aws_sdk_s3::operation::head_object::HeadObjectOutput>> {
        let sent = self
            .client()
            .await
            .head_object()
            .bucket(&self.place.bucket)
            .key(self.full_key(key))
            .send()
            .await;
        match sent {
            Ok(out) => Ok(Some(out)),
            Err(e) => match self.explain_not_found("inspecting", key, &e).await {
                err if err.is_not_found() => Ok(None),
                err => Err(err),
            },
        }
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| build_client(&self.options))
            .await
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.root)
    }

    /// `e` as a [`StoreError`]; when it is `NotFound` and the bucket is missing, an error
    /// saying so instead. (A 404 to `HeadObject` has no body, and s3s-fs answers `NoSuchKey`
    /// in a missing bucket.) `HeadBucket` is asked until it succeeds once; an inconclusive
    /// answer, such as a policy that denies it, leaves the error as it is.
    async fn explain_not_found<E: S3Error>(
        &self,
        op: &'static str,
        key: &str,
        e: &SdkError<E>,
    ) -> StoreError {
        let err = self.place.err(op, key, e);
        if !err.is_not_found() || self.bucket_seen.load(Ordering::Relaxed) {
            return err;
        }
        let sent = self
            .client()
            .await
            .head_bucket()
            .bucket(&self.place.bucket)
            .send()
            .await;
        match sent {
            Err(e) if status(&e) == Some(404) => self.place.no_bucket(op, key),
            Ok(_) => {
                self.bucket_seen.store(true, Ordering::Relaxed);
                err
            }
            Err(_) => err,
        }
    }

    /// `GetObject`, of a byte range when `range` is a `Range` header.
    async fn read(&self, key: &str, range: Option<String>) -> StoreResult<Bytes> {
        let sent = self
            .client()
            .await
            .get_object()
            .bucket(&self.place.bucket)
            .key(self.full_key(key))
            .set_range(range)
            .send()
            .await;
        let out = match sent {
            Ok(out) => out,
            // 416: the range starts at or after the end of the object; clamped, it is empty.
            Err(e) if status(&e) == Some(416) => return Ok(Bytes::new()),
            Err(e) => return Err(self.explain_not_found("reading", key, &e).await),
        };
        match out.body.collect().await {
            Ok(data) => Ok(data.into_bytes()),
            // The connection broke while the body streamed in: worth another try.
            Err(e) => {
                let why = causes(&e);
                Err(self
                    .place
                    .fail(StoreErrorKind::Transient, "reading", key, why))
            }
        }
    }
}

/// Sets the headers of [`WriteHeaders`] on any of the SDK's write requests.
macro_rules! with_headers {
    ($request:expr, $headers:expr) => {{
        let headers: &WriteHeaders = $headers;
        let mut request = $request;
        if let Some((mode, until)) = &headers.lock {
            request = request
                .object_lock_mode(mode.clone())
                .object_lock_retain_until_date(*until);
        }
        if let Some((algorithm, key)) = &headers.sse {
            request = request
                .server_side_encryption(algorithm.clone())
                .set_ssekms_key_id(key.clone());
        }
        request
    }};
}
pub(super) use with_headers;

/// A `PutObject` request for `data`, to send (or to make conditional first).
fn put_object(
    client: &Client,
    bucket: &str,
    full_key: &str,
    data: Bytes,
    headers: &WriteHeaders,
) -> PutObjectFluentBuilder {
    let request = client
        .put_object()
        .bucket(bucket)
        .key(full_key)
        .body(ByteStream::from(data));
    with_headers!(request, headers)
}

/// An object size from S3 (an `i64`).
fn size(n: Option<i64>) -> u64 {
    n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

fn modified(time: Option<&DateTime>) -> Option<chrono::DateTime<chrono::Utc>> {
    time.and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

#[async_trait]
impl BackupStore for S3Store {
    fn url(&self) -> &str {
        &self.place.url
    }

    async fn get(&self, key: &str) -> StoreResult<Bytes> {
        self.read(key, None).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> StoreResult<Bytes> {
        if range.start < range.end {
            let header = format!("bytes={}-{}", range.start, range.end - 1);
            return self.read(key, Some(header)).await;
        }
        match self.head(key).await? {
            Some(_) => Ok(Bytes::new()),
            None => Err(StoreError::new(
                StoreErrorKind::NotFound,
                "reading",
                key,
                self.url(),
                None,
            )),
        }
    }

    async fn head(&self, key: &str) -> StoreResult<Option<ObjectMeta>> {
        Ok(self.head_object(key).await?.map(|out| ObjectMeta {
            key: key.to_owned(),
            size: size(out.content_length()),
            modified: modified(out.last_modified()),
        }))
    }

    async fn put(&self, key: &str, data: Bytes) -> StoreResult<()> {
        put_object(
            self.client().await,
            &self.place.bucket,
            &self.full_key(key),
            data,
            &WriteHeaders::for_key(&self.options, key),
        )
        .send()
        .await
        .map(drop)
        .map_err(|e| self.place.err("writing", key, &e))
    }

    async fn put_if_absent(&self, key: &str, data: Bytes) -> StoreResult<()> {
        let (client, full_key) = (self.client().await, self.full_key(key));
        let headers = WriteHeaders::for_key(&self.options, key);
        let mut attempt = 1;
        loop {
            let create = put_object(
                client,
                &self.place.bucket,
                &full_key,
                data.clone(),
                &headers,
            );
            match create.if_none_match("*").send().await {
                Ok(_) => return Ok(()),
                Err(e) if attempt < CONFLICT_ATTEMPTS && is_conflict(&e) => {
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                    attempt += 1;
                }
                Err(e) => return Err(self.place.err("creating", key, &e)),
            }
        }
    }

    async fn writer(&self, key: &str) -> StoreResult<Box<dyn ObjectWriter>> {
        let client = self.client().await.clone();
        let headers = WriteHeaders::for_key(&self.options, key);
        let writer = S3Writer::new(client, self.place.clone(), key, self.full_key(key), headers);
        Ok(Box::new(writer))
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectMeta>> {
        use futures::TryStreamExt as _;
        let mut out: Vec<ObjectMeta> = self.list_pages(prefix).try_concat().await?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn list_pages(&self, prefix: &str) -> crate::store::ListPages<'_> {
        let prefix = prefix.to_owned();
        Box::pin(futures::stream::try_unfold(None, move |pages| {
            let prefix = prefix.clone();
            async move {
                let mut pages = match pages {
                    Some(pages) => pages,
                    None => self
                        .client()
                        .await
                        .list_objects_v2()
                        .bucket(&self.place.bucket)
                        .prefix(self.full_key(&prefix))
                        .into_paginator()
                        .send(),
                };
                let Some(page) = pages.next().await else {
                    return Ok(None);
                };
                let page = page.map_err(|e| self.place.err("listing", &prefix, &e))?;
                let objects = page
                    .contents()
                    .iter()
                    .filter_map(|object| {
                        let key = object.key()?.strip_prefix(&self.root)?;
                        Some(ObjectMeta {
                            key: key.to_owned(),
                            size: size(object.size()),
                            modified: modified(object.last_modified()),
                        })
                    })
                    .collect();
                Ok(Some((objects, Some(pages))))
            }
        }))
    }

    async fn copy_from_s3(
        &self,
        source: &str,
        endpoint: Option<&str>,
        key: &str,
    ) -> StoreResult<Option<(u64, String)>> {
        let same_service =
            normalize_endpoint(endpoint) == normalize_endpoint(self.options.endpoint.as_deref());
        let Some((bucket, source_key)) = source
            .strip_prefix("s3://")
            .or_else(|| source.strip_prefix("s3a://"))
            .and_then(|rest| rest.split_once('/'))
        else {
            return Ok(None);
        };
        if !same_service {
            return Ok(None);
        }
        let client = self.client().await;
        let full_key = self.full_key(key);
        let request = client
            .copy_object()
            .bucket(&self.place.bucket)
            .key(&full_key)
            .copy_source(format!("{bucket}/{}", encode_key(source_key)))
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256);
        let read_timeout = self
            .options
            .read_timeout
            .unwrap_or(READ_TIMEOUT)
            .max(COPY_READ_TIMEOUT);
        let copied = with_headers!(request, &WriteHeaders::for_key(&self.options, key))
            .customize()
            .config_override(
                aws_sdk_s3::config::Builder::default().timeout_config(
                    aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                        .read_timeout(read_timeout)
                        .build(),
                ),
            )
            .send()
            .await
            .map_err(|e| self.place.err("copying into", key, &e))?;
        // S3 returns the SHA-256 of the whole object for a single-part copy; anything else
        // (a composite checksum, or none) is computed by reading the copy back.
        let checksum = copied
            .copy_object_result()
            .and_then(|r| r.checksum_sha256())
            .filter(|c| !c.contains('-'))
            .and_then(base64_to_hex);
        let size = self.head(key).await?.map_or(0, |m| m.size);
        Ok(Some((size, checksum.unwrap_or_default())))
    }

    /// Multipart uploads never completed (a killed process leaves them, invisible to `list`
    /// but billed): each as `<key>?uploadId=<id>`, with its start time; the size of their parts
    /// is not summed (0).
    async fn list_incomplete(&self, prefix: &str) -> StoreResult<Vec<ObjectMeta>> {
        let client = self.client().await;
        let mut out = Vec::new();
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        loop {
            let page = client
                .list_multipart_uploads()
                .bucket(&self.place.bucket)
                .prefix(self.full_key(prefix))
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(id_marker.clone())
                .send()
                .await;
            // Best effort: a server without ListMultipartUploads has nothing bcn can reclaim.
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    let e = self.place.err("listing incomplete uploads", prefix, &e);
                    tracing::warn!(error = %crate::error::error_chain(&e), "incomplete uploads not listed");
                    return Ok(out);
                }
            };
            for upload in page.uploads() {
                let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else {
                    continue;
                };
                if let Some(key) = key.strip_prefix(&self.root) {
                    out.push(ObjectMeta {
                        key: format!("{key}?uploadId={id}"),
                        size: 0,
                        modified: modified(upload.initiated()),
                    });
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            id_marker = page.next_upload_id_marker().map(str::to_owned);
            if key_marker.is_none() && id_marker.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete_incomplete(&self, key: &str) -> StoreResult<()> {
        let Some((object, id)) = key.rsplit_once("?uploadId=") else {
            return Err(StoreError::new(
                StoreErrorKind::Other,
                "aborting an incomplete upload",
                key,
                &self.place.url,
                Some("not a key that list_incomplete returned".into()),
            ));
        };
        self.client()
            .await
            .abort_multipart_upload()
            .bucket(&self.place.bucket)
            .key(self.full_key(object))
            .upload_id(id)
            .send()
            .await
            .map(drop)
            .map_err(|e| self.place.err("aborting an incomplete upload", object, &e))
    }

    async fn retained_until(
        &self,
        key: &str,
    ) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
        if self.options.object_lock.is_none() {
            return Ok(None);
        }
        Ok(self
            .head_object(key)
            .await?
            .and_then(|out| modified(out.object_lock_retain_until_date())))
    }

    fn protection(&self) -> crate::store::Protection {
        crate::store::Protection {
            encrypted: false,
            object_lock: self.options.object_lock.map(|l| l.to_string()),
        }
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        let sent = self
            .client()
            .await
            .delete_object()
            .bucket(&self.place.bucket)
            .key(self.full_key(key))
            .send()
            .await;
        match sent.map_err(|e| self.place.err("deleting", key, &e)) {
            Err(err) if !err.is_not_found() => Err(err),
            _ => Ok(()),
        }
    }
}

/// An endpoint URL without its trailing slash, for comparison (`None` stands for AWS).
fn normalize_endpoint(endpoint: Option<&str>) -> Option<String> {
    endpoint.map(|e| e.trim_end_matches('/').to_ascii_lowercase())
}

/// Bytes of a key for `x-amz-copy-source` that are percent-encoded: all but unreserved
/// characters and `/`.
const COPY_SOURCE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// A key for `x-amz-copy-source`.
fn encode_key(key: &str) -> String {
    percent_encoding::utf8_percent_encode(key, COPY_SOURCE).to_string()
}

/// A base64 checksum as lowercase hex.
fn base64_to_hex(b64: &str) -> Option<String> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .map(hex::encode)
}

#[cfg(test)]
mod tests;
