//! Native multipart uploads and server-side copies of the `s3` location:
//! staging a large body as a multipart upload of [`PART_SIZE`] parts, copying
//! objects and pieces with CopyObject and UploadPartCopy, cleaning up a
//! write that failed or was cancelled, and finding (for garbage collection)
//! and aborting unfinished uploads of staged data.

use std::io;
use std::time::SystemTime;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective};
use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};

use super::{S3Backend, COPY_CONCURRENCY, COPY_PART, MAX_PART, MAX_PARTS, PART_SIZE};
use crate::{BodyError, BodyStream, ByteRange, DataError, NativeMeta, Result};

/// A time the service reported, if it is one a [`SystemTime`] can hold.
pub(super) fn time(t: &aws_sdk_s3::primitives::DateTime) -> Option<SystemTime> {
    SystemTime::try_from(*t).ok()
}

/// One part of a server-side multipart copy: a source object, a range, and
/// the ETag the source must still have (published data).
#[derive(Debug, Clone)]
pub(super) struct CopySource {
    pub(super) key: String,
    pub(super) range: Option<ByteRange>,
    pub(super) if_match: Option<String>,
}

impl S3Backend {
    /// Uploads a whole body stream to `key` as a multipart upload, starting
    /// with the `first` part already read. Aborts the upload on any failure.
    pub(super) async fn stage_multipart(
        &self,
        key: &str,
        first: Bytes,
        mut body: BodyStream,
    ) -> Result<u64> {
        let upload_id = self.create_upload(key, NativeMeta::none()).await?;
        let guard = Cleanup::new(self, key, Some(upload_id.clone()));
        let upload_id = &upload_id;
        let written = async {
            let mut parts = Vec::new();
            let mut size = first.len() as u64;
            parts.push(self.upload_part(key, upload_id, 1, first).await?);
            let mut buf = BytesMut::with_capacity(PART_SIZE);
            let mut ended = false;
            while !ended {
                while buf.len() < PART_SIZE {
                    match body.next().await {
                        Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                        Some(Err(e)) => return Err(DataError::Body(e)),
                        None => {
                            ended = true;
                            break;
                        }
                    }
                }
                if buf.is_empty() {
                    break;
                }
                let part = buf.split().freeze();
                size += part.len() as u64;
                let number = parts.len() as i32 + 1;
                if number as usize > MAX_PARTS {
                    return Err(DataError::Body(BodyError::TooLarge));
                }
                parts.push(self.upload_part(key, upload_id, number, part).await?);
            }
            self.complete_upload(key, upload_id, parts).await?;
            Ok(size)
        }
        .await;
        guard.settle(&written).await;
        written
    }

    async fn create_upload(&self, key: &str, meta: &NativeMeta) -> Result<String> {
        let req = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key);
        let req = with_meta!(req, meta);
        let out = self
            .retry
            .once("CreateMultipartUpload", async {
                req.send()
                    .await
                    .map_err(|e| self.sdk_error("CreateMultipartUpload", e))
            })
            .await?;
        out.upload_id()
            .map(str::to_owned)
            .ok_or_else(|| DataError::Io(io::Error::other("CreateMultipartUpload: no upload id")))
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        data: Bytes,
    ) -> Result<CompletedPart> {
        let etag = self
            .retry
            .run("UploadPart", || async {
                self.client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .body(ByteStream::from(data.clone()))
                    .send()
                    .await
                    .map(|o| o.e_tag().unwrap_or_default().to_owned())
                    .map_err(|e| self.sdk_error("UploadPart", e))
            })
            .await?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .e_tag(etag)
            .build())
    }

    async fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
    ) -> Result<String> {
        let sent = self
            .retry
            .once("CompleteMultipartUpload", async {
                match self
                    .client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await
                {
                    Ok(out) => Ok(Some(out.e_tag().unwrap_or_default().to_owned())),
                    // Some S3-compatible services (moto) answer a successful
                    // Complete with a document the SDK cannot parse (another
                    // root element): a 200 without an error code is a success
                    // whose ETag is read back.
                    Err(SdkError::ServiceError(se))
                        if se.raw().status().as_u16() == 200 && se.err().code().is_none() =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(self.sdk_error("CompleteMultipartUpload", e)),
                }
            })
            .await?;
        match sent {
            Some(etag) => Ok(etag),
            None => match self.head(key).await? {
                Some((etag, _)) => Ok(etag),
                None => Err(DataError::Io(io::Error::other(format!(
                    "location {}: CompleteMultipartUpload: {key} missing after a successful answer",
                    self.name
                )))),
            },
        }
    }

    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<()> {
        self.retry
            .run("AbortMultipartUpload", || async {
                match self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .send()
                    .await
                    .map_err(|e| self.sdk_error("AbortMultipartUpload", e))
                {
                    Ok(_) | Err(DataError::NotFound(_)) => Ok(()),
                    Err(e) => Err(e),
                }
            })
            .await
    }

    /// The unfinished multipart uploads whose key starts with `prefix`, as
    /// (key, upload id, Initiated), every page of ListMultipartUploads.
    pub(super) async fn list_uploads(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, String, Option<SystemTime>)>> {
        let mut out = Vec::new();
        let mut markers: (Option<String>, Option<String>) = (None, None);
        loop {
            let page = self
                .retry
                .run("ListMultipartUploads", || async {
                    self.client
                        .list_multipart_uploads()
                        .bucket(&self.bucket)
                        .prefix(prefix)
                        .set_key_marker(markers.0.clone())
                        .set_upload_id_marker(markers.1.clone())
                        .send()
                        .await
                        .map_err(|e| self.sdk_error("ListMultipartUploads", e))
                })
                .await?;
            for u in page.uploads() {
                let (Some(key), Some(id)) = (u.key(), u.upload_id()) else {
                    continue;
                };
                // The prefix is filtered again: a service that ignored it
                // must not make garbage collection see other uploads.
                if key.starts_with(prefix) {
                    out.push((key.to_owned(), id.to_owned(), u.initiated().and_then(time)));
                }
            }
            let next = (
                page.next_key_marker().filter(|m| !m.is_empty()),
                page.next_upload_id_marker().filter(|m| !m.is_empty()),
            );
            match next {
                (Some(k), id) if page.is_truncated() == Some(true) => {
                    let next = (Some(k.to_owned()), id.map(str::to_owned));
                    if next == markers {
                        return Err(DataError::Io(io::Error::other(format!(
                            "location {}: ListMultipartUploads: the listing does not advance",
                            self.name
                        ))));
                    }
                    markers = next;
                }
                _ => return Ok(out),
            }
        }
    }

    /// When an unfinished upload was last written: the newest of its start
    /// and its parts' LastModified (every page of ListParts), so that a
    /// long staging write still sending parts never looks old. `None` when
    /// the upload is gone (completed or aborted since it was listed). A
    /// service whose ListParts answer the SDK cannot read (moto answers
    /// with another root element) gives its start.
    pub(super) async fn upload_written(
        &self,
        key: &str,
        upload_id: &str,
        initiated: Option<SystemTime>,
    ) -> Result<Option<SystemTime>> {
        let mut newest = initiated;
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .retry
                .run("ListParts", || async {
                    match self
                        .client
                        .list_parts()
                        .bucket(&self.bucket)
                        .key(key)
                        .upload_id(upload_id)
                        .set_part_number_marker(marker.clone())
                        .send()
                        .await
                    {
                        Ok(p) => Ok(Some(p)),
                        Err(SdkError::ServiceError(se))
                            if se.raw().status().as_u16() == 200 && se.err().code().is_none() =>
                        {
                            Ok(None)
                        }
                        Err(e) => Err(self.sdk_error("ListParts", e)),
                    }
                })
                .await;
            let page = match page {
                Ok(Some(p)) => p,
                Ok(None) => {
                    tracing::debug!(location = %self.name, key, "ListParts answer unreadable: the upload's start is its time");
                    return Ok(Some(initiated.unwrap_or_else(SystemTime::now)));
                }
                Err(DataError::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            for part in page.parts() {
                newest = newest.max(part.last_modified().and_then(time));
            }
            match page.next_part_number_marker().filter(|m| !m.is_empty()) {
                Some(m) if page.is_truncated() == Some(true) && marker.as_deref() != Some(m) => {
                    marker = Some(m.to_owned());
                }
                _ => return Ok(Some(newest.unwrap_or_else(SystemTime::now))),
            }
        }
    }

    /// Aborts every unfinished multipart upload of exactly `key`.
    pub(super) async fn abort_uploads_of(&self, key: &str) -> Result<()> {
        for (k, id, _) in self.list_uploads(key).await? {
            if k == key {
                self.abort_upload(&k, &id).await?;
            }
        }
        Ok(())
    }

    /// Copies `sources` server-side, in order, into the new object `dest`
    /// with `meta`, one part per source; returns the new ETag.
    pub(super) async fn copy_parts(
        &self,
        dest: &str,
        meta: &NativeMeta,
        sources: Vec<CopySource>,
    ) -> Result<String> {
        let upload_id = self.create_upload(dest, meta).await?;
        let guard = Cleanup::new(self, dest, Some(upload_id.clone()));
        let upload_id = &upload_id;
        let copied = self.copy_into(dest, upload_id, sources).await;
        guard.settle(&copied).await;
        copied
    }

    /// Copies `sources` as the parts of upload `upload_id` of `dest` and
    /// completes it; returns the new ETag.
    async fn copy_into(
        &self,
        dest: &str,
        upload_id: &str,
        sources: Vec<CopySource>,
    ) -> Result<String> {
        let parts: Vec<CompletedPart> = futures_util::stream::iter(sources.into_iter().enumerate())
            .map(|(i, src)| async move {
                let number = i as i32 + 1;
                let etag = self
                    .retry
                    .run("UploadPartCopy", || async {
                        let mut req = self
                            .client
                            .upload_part_copy()
                            .bucket(&self.bucket)
                            .key(dest)
                            .upload_id(upload_id)
                            .part_number(number)
                            .copy_source(self.copy_source(&src.key));
                        if let Some(r) = src.range {
                            req = req.copy_source_range(format!("bytes={}-{}", r.first, r.last));
                        }
                        req = req.set_copy_source_if_match(src.if_match.clone());
                        req.send()
                            .await
                            .map(|o| {
                                o.copy_part_result()
                                    .and_then(|c| c.e_tag())
                                    .unwrap_or_default()
                                    .to_owned()
                            })
                            .map_err(|e| self.sdk_error("UploadPartCopy", e))
                    })
                    .await?;
                Ok::<_, DataError>(
                    CompletedPart::builder()
                        .part_number(number)
                        .e_tag(etag)
                        .build(),
                )
            })
            .buffered(COPY_CONCURRENCY)
            .try_collect()
            .await?;
        self.complete_upload(dest, upload_id, parts).await
    }

    /// Copies the whole object `src` of `size` bytes (only while its ETag is
    /// `src_etag`, when given) server-side onto `dest` with `meta`; returns
    /// the new ETag.
    pub(super) async fn copy_whole(
        &self,
        src: &str,
        src_etag: Option<&str>,
        size: u64,
        dest: &str,
        meta: &NativeMeta,
    ) -> Result<String> {
        if size > MAX_PART {
            let sources = (0..size.div_ceil(COPY_PART))
                .map(|i| CopySource {
                    key: src.to_owned(),
                    range: Some(ByteRange {
                        first: i * COPY_PART,
                        last: ((i + 1) * COPY_PART).min(size) - 1,
                    }),
                    if_match: src_etag.map(str::to_owned),
                })
                .collect();
            return self.copy_parts(dest, meta, sources).await;
        }
        let source = self.copy_source(src);
        self.retry
            .run("CopyObject", || async {
                let req = self
                    .client
                    .copy_object()
                    .bucket(&self.bucket)
                    .key(dest)
                    .copy_source(&source)
                    .set_copy_source_if_match(src_etag.map(str::to_owned))
                    .metadata_directive(MetadataDirective::Replace);
                let req = with_meta!(req, meta);
                req.send()
                    .await
                    .map(|o| {
                        o.copy_object_result()
                            .and_then(|c| c.e_tag())
                            .unwrap_or_default()
                            .to_owned()
                    })
                    .map_err(|e| self.sdk_error("CopyObject", e))
            })
            .await
    }
}

/// Removes a temp object or aborts a multipart upload when a write fails
/// (see [`settle`](Self::settle)) or its future is dropped (in a spawned
/// task).
pub(super) struct Cleanup {
    backend: Option<S3Backend>,
    key: String,
    upload_id: Option<String>,
}

impl Cleanup {
    pub(super) fn new(backend: &S3Backend, key: &str, upload_id: Option<String>) -> Self {
        Self {
            backend: Some(backend.clone()),
            key: key.to_owned(),
            upload_id,
        }
    }

    /// Ends the guard with the write's `outcome`: nothing to do after a
    /// success; after a failure the cleanup runs before the failure is
    /// answered, so nothing is left behind by then. Two failures are
    /// exceptions. When the cloud is unavailable, waiting for it again would
    /// double the time the caller waits, so the cleanup runs in the
    /// background, as for a dropped write. When it refuses the location's
    /// credentials it would refuse the cleanup too, so none is tried.
    /// Garbage collection takes what is left in both cases.
    pub(super) async fn settle<T>(mut self, outcome: &Result<T>) {
        match outcome {
            Ok(_) | Err(DataError::Misconfigured { .. }) => self.backend = None,
            Err(DataError::Unavailable(_)) => {}
            Err(_) => {
                if let Some(backend) = self.backend.take() {
                    let upload_id = self.upload_id.take();
                    clean(&backend, &self.key, upload_id.as_deref()).await;
                }
            }
        }
    }
}

/// Aborts upload `upload_id` of `key`, or deletes the object `key`, logging
/// a failure.
async fn clean(backend: &S3Backend, key: &str, upload_id: Option<&str>) {
    let r = match upload_id {
        Some(id) => backend.abort_upload(key, id).await,
        None => backend.delete_key(key).await,
    };
    if let Err(e) = r {
        tracing::warn!(location = %backend.name, key, error = %e, "could not clean up an unfinished write");
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Some(backend) = self.backend.take() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let key = std::mem::take(&mut self.key);
        let upload_id = self.upload_id.take();
        rt.spawn(async move { clean(&backend, &key, upload_id.as_deref()).await });
    }
}
