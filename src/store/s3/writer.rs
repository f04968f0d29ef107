//! Streaming uploads to S3: one `PutObject` for an object smaller than a part, a multipart
//! upload otherwise, aborted when the writer is aborted or dropped unfinished.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};

use super::error::{Place, S3Error, causes};
use super::{PART_SIZE, WriteHeaders, with_headers};
use crate::store::{ObjectWriter, StoreError, StoreResult};

/// A streaming upload. The multipart upload is created with the first full part.
pub(super) struct S3Writer {
    client: Client,
    place: Place,
    /// Retention and encryption of the object.
    headers: WriteHeaders,
    /// The key relative to the store, for errors.
    key: String,
    /// The key in the bucket.
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

/// The size of part number `done + 1`: it doubles every 1000 parts, so that an upload stays
/// within S3's 10 000 parts up to 8 TiB.
pub(super) fn part_size(done: usize) -> usize {
    PART_SIZE << (done / 1000).min(9)
}

impl S3Writer {
    pub(super) fn new(
        client: Client,
        place: Place,
        key: &str,
        full_key: String,
        headers: WriteHeaders,
    ) -> Self {
        Self {
            client,
            place,
            headers,
            key: key.to_owned(),
            full_key,
            buf: BytesMut::new(),
            upload: None,
        }
    }

    fn err<E: S3Error>(&self, e: &SdkError<E>) -> StoreError {
        self.place.err("writing", &self.key, e)
    }

    async fn create_upload(&mut self) -> StoreResult<()> {
        let request = self
            .client
            .create_multipart_upload()
            .bucket(&self.place.bucket)
            .key(&self.full_key);
        let created = with_headers!(request, &self.headers)
            .send()
            .await
            .map_err(|e| self.err(&e))?;
        self.upload = Some(Multipart {
            // Without an id, the first UploadPart fails and says why.
            id: created.upload_id.unwrap_or_default(),
            parts: Vec::new(),
        });
        Ok(())
    }

    async fn upload_part(&mut self, body: Bytes) -> StoreResult<()> {
        if self.upload.is_none() {
            self.create_upload().await?;
        }
        let upload = self.upload.as_mut().expect("the upload was created above");
        let number = i32::try_from(upload.parts.len() + 1).unwrap_or(i32::MAX);
        let sent = self
            .client
            .upload_part()
            .bucket(&self.place.bucket)
            .key(&self.full_key)
            .upload_id(&upload.id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await;
        match sent {
            Ok(out) => {
                let part = CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag)
                    .build();
                upload.parts.push(part);
                Ok(())
            }
            Err(e) => Err(self.err(&e)),
        }
    }

    async fn complete(&mut self) -> StoreResult<()> {
        let upload = self.upload.as_ref().expect("complete needs an upload");
        let parts = CompletedMultipartUpload::builder()
            .set_parts(Some(upload.parts.clone()))
            .build();
        self.client
            .complete_multipart_upload()
            .bucket(&self.place.bucket)
            .key(&self.full_key)
            .upload_id(&upload.id)
            .multipart_upload(parts)
            .send()
            .await
            .map_err(|e| self.err(&e))?;
        self.upload = None;
        Ok(())
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
            return super::put_object(
                &self.client,
                &self.place.bucket,
                &self.full_key,
                rest,
                &self.headers,
            )
            .send()
            .await
            .map(drop)
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
            .bucket(&self.place.bucket)
            .key(&self.full_key)
            .upload_id(upload.id)
            .send()
            .await
            .map(drop)
            .map_err(|e| self.place.err("aborting", &self.key, &e))
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
            .bucket(&self.place.bucket)
            .key(&self.full_key)
            .upload_id(&upload.id);
        let (key, url) = (self.key.clone(), self.place.url.clone());
        // Drop cannot wait: the abort runs on the runtime, if there still is one. An upload
        // left behind is invisible, but billed until a lifecycle rule removes it.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(%key, %url, upload_id = %upload.id, "multipart upload left behind");
            return;
        };
        runtime.spawn(async move {
            if let Err(e) = request.send().await {
                let error = causes(&e);
                tracing::warn!(%key, %url, %error, "aborting a dropped multipart upload");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
