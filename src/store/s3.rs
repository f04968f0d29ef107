//! Repository storage in an S3 bucket (AWS or an S3-compatible server), with aws-sdk-s3.
//!
//! How the contract of [`super`] is met:
//!
//! 1. Atomic visibility: S3 shows an object only once `PutObject` or
//!    `CompleteMultipartUpload` has succeeded. A streaming writer that is aborted or dropped
//!    aborts its multipart upload, which never becomes visible.
//! 2. Create-if-absent: a conditional `PutObject` with `If-None-Match: *`; S3 answers
//!    `412 PreconditionFailed` to the loser. A `409 ConditionalRequestConflict` (a concurrent
//!    write still in flight) is retried a few times, then also reported as `AlreadyExists`.
//! 3. Read-after-write: S3 has been strongly consistent for reads and lists since 2020.
//! 4. Not-found: `NoSuchKey` and 404 become [`StoreErrorKind::NotFound`]; a missing bucket
//!    does not (it is reported as such, naming the bucket).
//!
//! Keys are stored as `<prefix>/<key>`. The client is built on first use, so opening a store
//! needs no runtime and contacts nothing. Throttling, 5xx answers and timeouts are retried by
//! the SDK (standard mode, [`MAX_ATTEMPTS`] attempts with exponential backoff).

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::put_object::PutObjectError;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use tokio::sync::OnceCell;

use super::{
    BackupStore, LocationError, ObjectMeta, ObjectWriter, S3Options, StoreError, StoreErrorKind,
    StoreResult,
};

/// See [`S3Store::PART_SIZE`].
const PART_SIZE: usize = 8 << 20;
/// Attempts per request, the first included (the SDK's standard retry mode).
const MAX_ATTEMPTS: u32 = 4;
/// Attempts of `put_if_absent` while S3 reports a concurrent conditional write.
const CONFLICT_ATTEMPTS: u32 = 3;

/// A repository under a key prefix of an S3 bucket.
pub struct S3Store {
    bucket: String,
    /// `<prefix>/`, or empty for the bucket root.
    root: String,
    url: String,
    options: S3Options,
    client: OnceCell<Client>,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("url", &self.url)
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
        let url = if prefix.is_empty() {
            format!("s3://{bucket}")
        } else {
            format!("s3://{bucket}/{prefix}")
        };
        if bucket.is_empty() {
            return Err(LocationError::Invalid(url, "missing bucket name"));
        }
        if options.access_key_id.is_some() != options.secret_access_key.is_some() {
            return Err(LocationError::Invalid(
                url,
                "an access key id and a secret access key must be given together",
            ));
        }
        if options.session_token.is_some() && options.access_key_id.is_none() {
            return Err(LocationError::Invalid(
                url,
                "a session token needs an access key id and a secret access key",
            ));
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            root: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            url,
            options,
            client: OnceCell::new(),
        })
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| build_client(&self.options))
            .await
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.root)
    }

    fn err<E: S3Error>(&self, op: &'static str, key: &str, e: &SdkError<E>) -> StoreError {
        sdk_error(&self.bucket, &self.url, op, key, e)
    }

    /// One conditional `PutObject`.
    async fn create_once(&self, key: &str, data: Bytes) -> Result<(), SdkError<PutObjectError>> {
        self.client()
            .await
            .put_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .if_none_match("*")
            .body(ByteStream::from(data))
            .send()
            .await
            .map(drop)
    }
}

/// Loads the AWS configuration (environment, profile) and applies `options` over it.
async fn build_client(options: &S3Options) -> Client {
    let retry = RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(5));
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry)
        .timeout_config(timeouts);
    if let Some(region) = &options.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &options.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    if let (Some(id), Some(secret)) = (&options.access_key_id, &options.secret_access_key) {
        let credentials = Credentials::new(id, secret, options.session_token.clone(), None, "bcn");
        loader = loader.credentials_provider(credentials);
    }
    let shared = loader.load().await;
    // An endpoint from the environment is an S3-compatible server, which mostly cannot serve
    // virtual-host-style requests (`bucket.127.0.0.1`).
    let env_endpoint = options.endpoint.is_none() && shared.endpoint_url().is_some();
    let mut config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(options.path_style || env_endpoint);
    if shared.region().is_none() {
        config = config.region(Region::from_static("us-east-1"));
    }
    Client::from_conf(config.build())
}

#[async_trait]
impl BackupStore for S3Store {
    fn url(&self) -> &str {
        &self.url
    }

    async fn get(&self, key: &str) -> StoreResult<Bytes> {
        let out = self
            .client()
            .await
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| self.err("reading", key, &e))?;
        read_body(out.body, &self.url, key).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> StoreResult<Bytes> {
        if range.start >= range.end {
            return match self.head(key).await? {
                Some(_) => Ok(Bytes::new()),
                None => Err(StoreError::new(
                    StoreErrorKind::NotFound,
                    "reading",
                    key,
                    &self.url,
                    None,
                )),
            };
        }
        let sent = self
            .client()
            .await
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .range(format!("bytes={}-{}", range.start, range.end - 1))
            .send()
            .await;
        match sent {
            Ok(out) => read_body(out.body, &self.url, key).await,
            // 416: the range starts at or after the end of the object; clamped, it is empty.
            Err(e) if status(&e) == Some(416) => Ok(Bytes::new()),
            Err(e) => Err(self.err("reading", key, &e)),
        }
    }

    async fn head(&self, key: &str) -> StoreResult<Option<ObjectMeta>> {
        let sent = self
            .client()
            .await
            .head_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await;
        match sent {
            Ok(out) => Ok(Some(ObjectMeta {
                key: key.to_owned(),
                size: out.content_length().map_or(0, size),
                modified: modified(out.last_modified()),
            })),
            Err(e) => {
                let err = self.err("inspecting", key, &e);
                if err.is_not_found() {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn put(&self, key: &str, data: Bytes) -> StoreResult<()> {
        put_object(self.client().await, &self.bucket, &self.full_key(key), data)
            .await
            .map_err(|e| self.err("writing", key, &e))
    }

    async fn put_if_absent(&self, key: &str, data: Bytes) -> StoreResult<()> {
        let mut attempt = 1;
        loop {
            match self.create_once(key, data.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt < CONFLICT_ATTEMPTS && is_conflict(&e) => {
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                    attempt += 1;
                }
                Err(e) => return Err(self.err("creating", key, &e)),
            }
        }
    }

    async fn writer(&self, key: &str) -> StoreResult<Box<dyn ObjectWriter>> {
        Ok(Box::new(S3Writer {
            client: self.client().await.clone(),
            bucket: self.bucket.clone(),
            url: self.url.clone(),
            key: key.to_owned(),
            full_key: self.full_key(key),
            buf: BytesMut::new(),
            upload: None,
        }))
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectMeta>> {
        let mut pages = self
            .client()
            .await
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.full_key(prefix))
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.err("listing", prefix, &e))?;
            for object in page.contents() {
                let Some(key) = object.key().and_then(|k| k.strip_prefix(&self.root)) else {
                    continue;
                };
                out.push(ObjectMeta {
                    key: key.to_owned(),
                    size: object.size().map_or(0, size),
                    modified: modified(object.last_modified()),
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        let sent = self
            .client()
            .await
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await;
        match sent.map_err(|e| self.err("deleting", key, &e)) {
            Err(e) if !e.is_not_found() => Err(e),
            _ => Ok(()),
        }
    }
}

async fn put_object(
    client: &Client,
    bucket: &str,
    full_key: &str,
    data: Bytes,
) -> Result<(), SdkError<PutObjectError>> {
    client
        .put_object()
        .bucket(bucket)
        .key(full_key)
        .body(ByteStream::from(data))
        .send()
        .await
        .map(drop)
}

async fn read_body(body: ByteStream, url: &str, key: &str) -> StoreResult<Bytes> {
    match body.collect().await {
        Ok(data) => Ok(data.into_bytes()),
        // The connection broke while the body streamed in: worth another try.
        Err(e) => Err(StoreError::new(
            StoreErrorKind::Transient,
            "reading",
            key,
            url,
            Some(Box::new(e)),
        )),
    }
}

/// An object size from S3 (an `i64`).
fn size(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn modified(time: Option<&DateTime>) -> Option<chrono::DateTime<chrono::Utc>> {
    time.and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

/// The part size for part number `done + 1`.
fn part_size(done: usize) -> usize {
    PART_SIZE << (done / 1000).min(9)
}

/// A streaming upload: one `PutObject` for an object smaller than a part, a multipart upload
/// otherwise. The multipart upload is created with the first full part.
struct S3Writer {
    client: Client,
    bucket: String,
    url: String,
    key: String,
    full_key: String,
    buf: BytesMut,
    /// The multipart upload in progress; `None` before the first part and once it has been
    /// completed or aborted. [`Drop`] aborts it while it is `Some`.
    upload: Option<Multipart>,
}

struct Multipart {
    id: String,
    parts: Vec<CompletedPart>,
}

impl S3Writer {
    fn err<E: S3Error>(&self, e: &SdkError<E>) -> StoreError {
        sdk_error(&self.bucket, &self.url, "writing", &self.key, e)
    }

    async fn upload_part(&mut self, body: Bytes) -> StoreResult<()> {
        if self.upload.is_none() {
            let created = self
                .client
                .create_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.full_key)
                .send()
                .await
                .map_err(|e| self.err(&e))?;
            let Some(id) = created.upload_id else {
                return Err(self.missing("an upload id"));
            };
            self.upload = Some(Multipart {
                id,
                parts: Vec::new(),
            });
        }
        let Some(upload) = self.upload.as_ref() else {
            return Err(self.missing("an upload id"));
        };
        let number = i32::try_from(upload.parts.len() + 1).unwrap_or(i32::MAX);
        let uploaded = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.full_key)
            .upload_id(&upload.id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.err(&e))?;
        let part = CompletedPart::builder()
            .part_number(number)
            .set_e_tag(uploaded.e_tag)
            .build();
        if let Some(upload) = self.upload.as_mut() {
            upload.parts.push(part);
        }
        Ok(())
    }

    async fn complete(&mut self) -> StoreResult<()> {
        let Some(upload) = self.upload.as_ref() else {
            return Err(self.missing("an upload id"));
        };
        let parts = CompletedMultipartUpload::builder()
            .set_parts(Some(upload.parts.clone()))
            .build();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.full_key)
            .upload_id(&upload.id)
            .multipart_upload(parts)
            .send()
            .await
            .map_err(|e| self.err(&e))?;
        self.upload = None;
        Ok(())
    }

    fn missing(&self, what: &str) -> StoreError {
        let detail = format!("the server's answer lacks {what}");
        StoreError::new(
            StoreErrorKind::Other,
            "writing",
            &self.key,
            &self.url,
            Some(detail.into()),
        )
    }
}

#[async_trait]
impl ObjectWriter for S3Writer {
    async fn write(&mut self, chunk: Bytes) -> StoreResult<()> {
        self.buf.extend_from_slice(&chunk);
        loop {
            let size = part_size(self.upload.as_ref().map_or(0, |u| u.parts.len()));
            if self.buf.len() < size {
                return Ok(());
            }
            let part = self.buf.split_to(size).freeze();
            self.upload_part(part).await?;
        }
    }

    async fn finish(mut self: Box<Self>) -> StoreResult<()> {
        // Every early return below drops `self`, whose `Drop` aborts the multipart upload.
        let rest = std::mem::take(&mut self.buf).freeze();
        if self.upload.is_none() {
            return put_object(&self.client, &self.bucket, &self.full_key, rest)
                .await
                .map_err(|e| self.err(&e));
        }
        if !rest.is_empty() {
            self.upload_part(rest).await?;
        }
        self.complete().await
    }

    async fn abort(mut self: Box<Self>) -> StoreResult<()> {
        let Some(upload) = self.upload.take() else {
            return Ok(());
        };
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.full_key)
            .upload_id(upload.id)
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error(&self.bucket, &self.url, "aborting", &self.key, &e))
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        let Some(upload) = self.upload.take() else {
            return;
        };
        let request = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.full_key)
            .upload_id(&upload.id);
        let (key, url) = (self.key.clone(), self.url.clone());
        // Drop cannot wait: the abort runs on the runtime, if there still is one. An upload
        // left behind is invisible but billed until a lifecycle rule removes it.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(%key, %url, upload_id = %upload.id, "multipart upload left behind");
            return;
        };
        runtime.spawn(async move {
            if let Err(e) = request.send().await {
                let error = DisplayErrorContext(&e);
                tracing::warn!(%key, %url, %error, "aborting a dropped multipart upload");
            }
        });
    }
}

/// What the operation errors of aws-sdk-s3 have in common.
trait S3Error: ProvideErrorMetadata + std::error::Error + 'static {}
impl<E: ProvideErrorMetadata + std::error::Error + 'static> S3Error for E {}

/// Whether `e` is S3's answer to two conditional writes of one key at once.
fn is_conflict<E: S3Error>(e: &SdkError<E>) -> bool {
    e.code() == Some("ConditionalRequestConflict")
}

fn status<E>(e: &SdkError<E>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// Maps an SDK error to a [`StoreError`] whose source says what S3 answered.
fn sdk_error<E: S3Error>(
    bucket: &str,
    url: &str,
    op: &'static str,
    key: &str,
    e: &SdkError<E>,
) -> StoreError {
    let (kind, detail) = classify(bucket, e);
    StoreError::new(kind, op, key, url, Some(detail.into()))
}

/// The kind of an SDK error, and a message for people.
fn classify<E: S3Error>(bucket: &str, e: &SdkError<E>) -> (StoreErrorKind, String) {
    use StoreErrorKind::{AlreadyExists, NotFound, Other, PermissionDenied, Transient};
    let answer = match (e.code(), status(e)) {
        (code, Some(status)) => format!(
            "S3 answered {status} {}: {}",
            code.unwrap_or("(no code)"),
            e.message().unwrap_or("(no message)")
        ),
        (_, None) => DisplayErrorContext(e).to_string(),
    };
    match (e.code(), status(e)) {
        (Some("NoSuchBucket"), _) => (
            Other,
            format!(
                "bucket `{bucket}` does not exist (or is not visible with these credentials): {answer}"
            ),
        ),
        (Some("NoSuchKey" | "NotFound"), _) | (None, Some(404)) => (NotFound, answer),
        (Some("PreconditionFailed" | "ConditionalRequestConflict"), _) | (_, Some(412)) => {
            (AlreadyExists, format!("the object exists: {answer}"))
        }
        (Some("AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch"), _)
        | (_, Some(403)) => (
            PermissionDenied,
            format!(
                "access denied: the credentials were refused or may not use bucket `{bucket}`: {answer}"
            ),
        ),
        (Some("SlowDown" | "Throttling" | "RequestTimeout" | "InternalError"), _)
        | (_, Some(429 | 500..=599)) => (
            Transient,
            format!("{answer} (after {MAX_ATTEMPTS} attempts)"),
        ),
        (_, None) if matches!(e, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_)) => (
            Transient,
            format!("{answer} (after {MAX_ATTEMPTS} attempts)"),
        ),
        _ => (Other, answer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_debug_hides_secrets() {
        let options = S3Options {
            access_key_id: Some("AKIDEXAMPLE".into()),
            secret_access_key: Some("wJalrXUtnFEMI".into()),
            session_token: Some("FwoGZXIvYXdzE".into()),
            ..S3Options::default()
        };
        let shown = format!("{options:?}");
        assert!(shown.contains("AKIDEXAMPLE"), "{shown}");
        assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
        assert!(!shown.contains("FwoGZXIvYXdzE"), "{shown}");
        let store = S3Store::new("b", "p", options).unwrap();
        assert!(!format!("{store:?}").contains("wJalrXUtnFEMI"));
    }

    #[test]
    fn new_checks_the_options() {
        let store = S3Store::new("bucket", "/a/b/", S3Options::default()).unwrap();
        assert_eq!(store.url(), "s3://bucket/a/b");
        assert_eq!(store.full_key("k"), "a/b/k");
        let root = S3Store::new("bucket", "", S3Options::default()).unwrap();
        assert_eq!(
            (root.url(), root.full_key("k").as_str()),
            ("s3://bucket", "k")
        );
        let half = S3Options {
            access_key_id: Some("id".into()),
            ..S3Options::default()
        };
        assert!(S3Store::new("bucket", "", half).is_err());
        assert!(S3Store::new("", "", S3Options::default()).is_err());
    }

    #[test]
    fn part_size_grows_to_stay_under_ten_thousand_parts() {
        assert_eq!(part_size(0), PART_SIZE);
        assert_eq!(part_size(999), PART_SIZE);
        assert_eq!(part_size(1000), 2 * PART_SIZE);
        let total: u64 = (0..10_000).map(|n| part_size(n) as u64).sum();
        assert!(total > 5 << 40, "{total}");
        assert!(part_size(9_999) <= 5 << 30);
    }
}
