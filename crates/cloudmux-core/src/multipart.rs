//! Multipart uploads: create, upload part (and part copy), complete, abort,
//! list parts.

use crate::RequestContext;
use cloudmux_data::{BodyStream, ByteRange, Piece};
use cloudmux_meta::{codec, prefix_end, MetaError, Txn};
use md5::{Digest, Md5};

use crate::acl::{AclRequest, Permission};
use crate::checksum::{self, ChecksumAlgorithm, ChecksumType, StoredChecksum};
use crate::commit::PendingWrite;
use crate::digest::{BodyExpectations, ChecksumSource, ExpectedChecksum};
use crate::object::{hex_md5, PutObjectOutput, ReadConditions, WriteConditions};
use crate::records::{self, ObjectMeta, ObjectRecord, PartRecord, PartSummary, UploadRecord};
use crate::{now_ms, CoreError, Gateway, Result};

/// Smallest part other than the last.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Largest part.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Highest part number.
pub const MAX_PARTS: u32 = 10_000;

/// CreateMultipartUpload.
#[derive(Debug, Clone, Default)]
pub struct CreateUploadInput {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// Metadata of the object to be.
    pub meta: ObjectMeta,
    /// The requested ACL (canned or grants).
    pub acl: Option<AclRequest>,
    /// Placement override.
    pub location: Option<String>,
    /// `x-amz-server-side-encryption`: refused unless the location encrypts
    /// at rest.
    pub sse: Option<crate::ServerSideEncryption>,
    /// `x-amz-checksum-algorithm` and `x-amz-checksum-type`.
    pub checksum: Option<(ChecksumAlgorithm, Option<ChecksumType>)>,
    /// The `x-amz-object-lock-*` headers: the object gets them at Complete.
    pub lock: crate::lock::LockHeaders,
}

/// A created upload.
#[derive(Debug, Clone)]
pub struct UploadInfo {
    /// The upload id.
    pub upload_id: String,
    /// The declared checksum.
    pub checksum: Option<(ChecksumAlgorithm, ChecksumType)>,
}

/// UploadPart.
pub struct UploadPartInput {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
    /// Part number.
    pub part_number: u32,
    /// Body.
    pub body: BodyStream,
    /// What the body must match.
    pub expect: BodyExpectations,
}

/// UploadPartCopy.
#[derive(Debug, Clone)]
pub struct UploadPartCopyInput {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
    /// Part number.
    pub part_number: u32,
    /// Source bucket.
    pub src_bucket: String,
    /// Source key.
    pub src_key: String,
    /// The source's version (`?versionId=` of `x-amz-copy-source`); the
    /// current one when absent.
    pub src_version_id: Option<String>,
    /// `x-amz-copy-source-range`, inclusive.
    pub range: Option<(u64, u64)>,
    /// `x-amz-copy-source-if-*`.
    pub conditions: ReadConditions,
}

/// An uploaded part's result.
#[derive(Debug, Clone)]
pub struct UploadPartOutput {
    /// ETag without quotes.
    pub etag: String,
    /// The part checksum (algorithm, base64).
    pub checksum: Option<(ChecksumAlgorithm, String)>,
    /// Upload time, ms.
    pub last_modified_ms: i64,
}

/// One entry of CompleteMultipartUpload's part list.
#[derive(Debug, Clone)]
pub struct CompletePart {
    /// Part number.
    pub part_number: u32,
    /// ETag as sent (quotes allowed).
    pub etag: String,
    /// Checksums the client sent for the part (algorithm, base64).
    pub checksums: Vec<(ChecksumAlgorithm, String)>,
}

/// CompleteMultipartUpload.
#[derive(Debug, Clone)]
pub struct CompleteUploadInput {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
    /// The parts, as listed by the client.
    pub parts: Vec<CompletePart>,
    /// Conditional write headers.
    pub conditions: WriteConditions,
    /// `x-amz-checksum-type`: when given, it must be the type the upload was
    /// created with.
    pub checksum_type: Option<ChecksumType>,
    /// The object checksum the client sent (`x-amz-checksum-*`, base64):
    /// compared with the combined checksum (full-object) or the checksum of
    /// the part checksums (composite, with or without its `-N`).
    pub checksum: Option<(ChecksumAlgorithm, String)>,
}

/// ListParts.
#[derive(Debug, Clone, Default)]
pub struct ListPartsInput {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
    /// part-number-marker.
    pub marker: u32,
    /// max-parts.
    pub max_parts: usize,
}

/// A part as listed.
#[derive(Debug, Clone)]
pub struct PartInfo {
    /// Part number.
    pub part_number: u32,
    /// ETag without quotes.
    pub etag: String,
    /// Size.
    pub size: u64,
    /// Upload time, ms.
    pub last_modified_ms: i64,
    /// Checksum (base64), when the upload declared an algorithm.
    pub checksum: Option<String>,
}

/// ListParts' page.
#[derive(Debug, Clone)]
pub struct ListPartsOutput {
    /// The upload.
    pub upload: UploadRecord,
    /// Parts.
    pub parts: Vec<PartInfo>,
    /// More follow.
    pub is_truncated: bool,
    /// The last part number returned.
    pub next_marker: Option<u32>,
}

fn check_part_number(n: u32) -> Result<()> {
    if n == 0 || n > MAX_PARTS {
        return Err(CoreError::InvalidArgument(
            "Part number must be an integer between 1 and 10000, inclusive".into(),
        ));
    }
    Ok(())
}

impl Gateway {
    async fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<UploadRecord> {
        let raw = self
            .meta
            .get(&records::upload_key(bucket, key, upload_id))
            .await?
            .ok_or_else(|| CoreError::NoSuchUpload(upload_id.to_owned()))?;
        Ok(codec::decode(&raw)?)
    }

    /// CreateMultipartUpload.
    pub async fn create_upload(
        &self,
        who: &RequestContext,
        input: CreateUploadInput,
    ) -> Result<UploadInfo> {
        crate::tagging::validate_tags(&input.meta.tags, crate::tagging::MAX_OBJECT_TAGS)?;
        let (bucket, location) = self
            .prepare_write(who, &input.bucket, &input.key, input.location.as_deref())
            .await?;
        self.check_encryption(&location, input.sse)?;
        let object_lock = input.lock.check(&bucket)?;
        let checksum = match input.checksum {
            None => None,
            Some((alg, kind)) => {
                let kind = kind.unwrap_or(alg.default_multipart_type());
                let ok = match kind {
                    ChecksumType::FullObject => alg.supports_full_object(),
                    ChecksumType::Composite => alg.supports_composite(),
                };
                if !ok {
                    return Err(CoreError::InvalidRequest(format!(
                        "The {} checksum type cannot be used with the {} checksum algorithm.",
                        kind.as_str(),
                        alg.as_str().to_lowercase()
                    )));
                }
                Some((alg, kind))
            }
        };
        let writer = who.canonical_id().unwrap_or_default();
        let (owner, acl) = bucket.new_object_acl(writer, input.acl)?;
        let record = UploadRecord {
            initiated_ms: now_ms(),
            acl,
            owner,
            meta: input.meta,
            location,
            checksum,
            object_lock,
        };
        let upload_id = format!(
            "{:012x}{}",
            record.initiated_ms,
            uuid::Uuid::new_v4().simple()
        );
        let committed = self
            .meta
            .commit(
                Txn::new()
                    .require_present(records::bucket_key(&input.bucket))
                    .require_absent(records::deleting_key(&input.bucket))
                    .put(
                        records::upload_key(&input.bucket, &input.key, &upload_id),
                        codec::encode(&record),
                    ),
            )
            .await;
        match committed {
            Ok(()) => {}
            Err(MetaError::Conflict) => {
                let bucket = self.meta.get(&records::bucket_key(&input.bucket)).await?;
                return Err(match bucket {
                    None => CoreError::NoSuchBucket(input.bucket.clone()),
                    Some(_) => CoreError::OperationAborted(input.bucket.clone()),
                });
            }
            Err(e) => return Err(e.into()),
        }
        Ok(UploadInfo {
            upload_id,
            checksum,
        })
    }

    /// UploadPart.
    pub async fn upload_part(
        &self,
        who: &RequestContext,
        input: UploadPartInput,
    ) -> Result<UploadPartOutput> {
        check_part_number(input.part_number)?;
        self.bucket_for(who, &input.bucket, Permission::Write, Some(&input.key))
            .await?;
        let upload = self
            .upload(&input.bucket, &input.key, &input.upload_id)
            .await?;
        let mut expect = input.expect;
        expect.max_length = Some(MAX_PART_SIZE);
        match (&expect.checksum, upload.checksum) {
            (Some(c), Some((alg, _))) if c.algorithm != alg => {
                return Err(CoreError::InvalidRequest(format!(
                    "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
                    alg.as_str().to_lowercase(),
                    c.algorithm.as_str().to_lowercase()
                )))
            }
            (None, Some((algorithm, _))) => {
                expect.checksum = Some(ExpectedChecksum {
                    algorithm,
                    source: ChecksumSource::Compute,
                })
            }
            _ => {}
        }
        self.store_part(
            &input.bucket,
            &input.key,
            &input.upload_id,
            input.part_number,
            &upload,
            input.body,
            expect,
        )
        .await
    }

    /// Stages a part's body (verifying it) and commits its record.
    #[allow(clippy::too_many_arguments)]
    async fn store_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        upload: &UploadRecord,
        body: BodyStream,
        expect: BodyExpectations,
    ) -> Result<UploadPartOutput> {
        let (_, staged, d) = self.stage_verified(&upload.location, body, expect).await?;
        let part = PartRecord {
            etag: hex_md5(&d),
            size: d.size,
            last_modified_ms: now_ms(),
            staged,
            checksum: d.checksum.as_ref().map(|(_, raw)| raw.clone()),
        };
        self.commit_part(
            bucket,
            key,
            upload_id,
            number,
            upload,
            part,
            d.checksum.map(|c| c.0),
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn commit_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        upload: &UploadRecord,
        part: PartRecord,
        alg: Option<ChecksumAlgorithm>,
    ) -> Result<UploadPartOutput> {
        let backend = self.locations.get(&upload.location)?.clone();
        if let Err(e) = backend.persist(&part.staged).await {
            let _ = backend.discard(&part.staged).await;
            return Err(self.data_err(&upload.location, e));
        }
        crate::fault!("part.persisted");
        let pkey = records::part_key(upload_id, number);
        let ukey = records::upload_key(bucket, key, upload_id);
        let value = codec::encode(&part);
        // A Complete holds the key's lock while it reads and assembles the
        // parts: a part that replaces another waits for it.
        let guard = self.locks.lock(bucket, key).await;
        let previous = loop {
            let old = self.meta.get(&pkey).await?;
            let mut txn = Txn::new().require_present(ukey.clone());
            txn = match &old {
                Some(v) => txn.require_equals(pkey.clone(), v.clone()),
                None => txn.require_absent(pkey.clone()),
            };
            match self.meta.commit(txn.put(pkey.clone(), value.clone())).await {
                Ok(()) => break old,
                Err(MetaError::Conflict) => {
                    if self.meta.get(&ukey).await?.is_none() {
                        let _ = backend.discard(&part.staged).await;
                        return Err(CoreError::NoSuchUpload(upload_id.to_owned()));
                    }
                }
                Err(e) => {
                    let _ = backend.discard(&part.staged).await;
                    return Err(e.into());
                }
            }
        };
        drop(guard);
        crate::fault!("part.committed");
        if let Some(old) = previous {
            let old: PartRecord = codec::decode(&old)?;
            if old.staged != part.staged {
                let _ = backend.discard(&old.staged).await;
            }
        }
        Ok(UploadPartOutput {
            etag: part.etag,
            checksum: alg.zip(part.checksum.as_deref().map(checksum::b64)),
            last_modified_ms: part.last_modified_ms,
        })
    }

    /// UploadPartCopy.
    pub async fn upload_part_copy(
        &self,
        who: &RequestContext,
        input: UploadPartCopyInput,
    ) -> Result<UploadPartOutput> {
        check_part_number(input.part_number)?;
        self.bucket_for(who, &input.bucket, Permission::Write, Some(&input.key))
            .await?;
        let upload = self
            .upload(&input.bucket, &input.key, &input.upload_id)
            .await?;
        let (src_bucket, _) = self.bucket(&input.src_bucket).await?;
        let src = self
            .copy_source(
                who,
                &src_bucket,
                &input.src_bucket,
                &input.src_key,
                input.src_version_id.as_deref(),
                &input.conditions,
            )
            .await?;
        let range = match input.range {
            None => None,
            Some((first, _)) if first >= src.size => {
                return Err(CoreError::InvalidRange(src.size));
            }
            Some((first, last)) => {
                if first > last || last >= src.size {
                    return Err(CoreError::InvalidArgument(format!(
                        "Range specified is not valid for source object of size: {}",
                        src.size
                    )));
                }
                Some(ByteRange { first, last })
            }
        };
        let len = range.map_or(src.size, |r| r.last - r.first + 1);
        if len > MAX_PART_SIZE {
            return Err(CoreError::InvalidRequest(
                "part copy source too large".into(),
            ));
        }
        let src_backend = self.locations.get(&src.location)?.clone();
        let body = src_backend
            .read(&src.data, range)
            .await
            .map_err(|e| self.data_err(&src.location, e))?;
        let expect = BodyExpectations {
            length: Some(len),
            checksum: upload.checksum.map(|(algorithm, _)| ExpectedChecksum {
                algorithm,
                source: ChecksumSource::Compute,
            }),
            ..Default::default()
        };
        self.store_part(
            &input.bucket,
            &input.key,
            &input.upload_id,
            input.part_number,
            &upload,
            body,
            expect,
        )
        .await
    }

    /// CompleteMultipartUpload. The key's lock is held from reading the
    /// parts to the commit, so parts cannot change and Abort cannot run in
    /// between. A retry of a Complete that succeeded (the upload is gone and
    /// the key's current object came from it, with the same parts) answers
    /// as the first one did, as S3 does.
    pub async fn complete_upload(
        &self,
        who: &RequestContext,
        input: CompleteUploadInput,
    ) -> Result<PutObjectOutput> {
        let (bucket, _) = self
            .bucket_for(who, &input.bucket, Permission::Write, Some(&input.key))
            .await?;
        if input.parts.is_empty() {
            return Err(CoreError::InvalidRequest(
                "You must specify at least one part".into(),
            ));
        }
        if input
            .parts
            .windows(2)
            .any(|w| w[0].part_number >= w[1].part_number)
        {
            return Err(CoreError::InvalidPartOrder);
        }
        self.precheck_complete(&input).await?;
        let guard = self.locks.lock_owned(&input.bucket, &input.key).await;
        let upload = match self
            .upload(&input.bucket, &input.key, &input.upload_id)
            .await
        {
            Ok(u) => u,
            Err(CoreError::NoSuchUpload(id)) => {
                return match self.completed_before(&input).await? {
                    Some(out) => Ok(out),
                    None => Err(CoreError::NoSuchUpload(id)),
                }
            }
            Err(e) => return Err(e),
        };
        check_complete_declaration(&upload, &input)?;
        let mut parts = Vec::with_capacity(input.parts.len());
        for p in &input.parts {
            check_part_number(p.part_number)?;
            let raw = self
                .meta
                .get(&records::part_key(&input.upload_id, p.part_number))
                .await?
                .ok_or_else(|| {
                    CoreError::InvalidPart(format!("part {} was not uploaded", p.part_number))
                })?;
            let rec: PartRecord = codec::decode(&raw)?;
            if p.etag.trim().trim_matches('"') != rec.etag {
                return Err(CoreError::InvalidPart(format!(
                    "the ETag of part {} does not match",
                    p.part_number
                )));
            }
            for (alg, value) in &p.checksums {
                // The algorithm was checked by `check_complete_declaration`;
                // a value that differs from the part's is a wrong digest.
                let stored = rec.checksum.as_deref().map(checksum::b64);
                if stored.as_deref() != Some(value.trim()) {
                    return Err(CoreError::BadDigest(format!(
                        "The {} you specified for part {} did not match what we received.",
                        alg.as_str().to_lowercase(),
                        p.part_number
                    )));
                }
            }
            parts.push(rec);
        }
        if parts[..parts.len() - 1]
            .iter()
            .any(|p| p.size < MIN_PART_SIZE)
        {
            return Err(CoreError::EntityTooSmall);
        }
        let mut md5s = Md5::new();
        for p in &parts {
            let raw = hex::decode(&p.etag).map_err(|e| CoreError::Internal(e.to_string()))?;
            md5s.update(raw);
        }
        let etag = format!("{}-{}", hex::encode(md5s.finalize()), parts.len());
        let stored_checksum = match upload.checksum {
            None => None,
            Some((alg, kind)) => Some(composite_checksum(alg, kind, &parts)?),
        };
        if let (Some((alg, sent)), Some(ours)) = (&input.checksum, &stored_checksum) {
            let (ours_value, _) = split_part_count(&ours.value);
            let (sent_value, sent_count) = split_part_count(sent.trim());
            let count_ok = sent_count.is_none_or(|n| n == parts.len().to_string());
            if sent_value != ours_value || !count_ok {
                return Err(CoreError::BadDigest(format!(
                    "The {} you specified did not match the calculated checksum.",
                    alg.as_str().to_lowercase()
                )));
            }
        }
        let size: u64 = parts.iter().map(|p| p.size).sum();
        let backend = self.locations.get(&upload.location)?.clone();
        let staged = backend
            .assemble(
                parts
                    .iter()
                    .map(|p| Piece::Staged(p.staged.clone()))
                    .collect(),
            )
            .await
            .map_err(|e| self.data_err(&upload.location, e))?;
        crate::fault!("complete.assembled");
        let mut record = ObjectRecord {
            size,
            etag,
            last_modified_ms: now_ms(),
            owner: upload.owner.clone(),
            acl: upload.acl.clone(),
            meta: upload.meta.clone(),
            location: upload.location.clone(),
            data: cloudmux_data::DataRef {
                locator: String::new(),
                size,
                stamp: 0,
            },
            parts: parts
                .iter()
                .map(|p| PartSummary {
                    size: p.size,
                    checksum: upload.checksum.and(p.checksum.clone()),
                })
                .collect(),
            checksum: stored_checksum,
            upload_id: Some(input.upload_id.clone()),
            version: Default::default(),
        };
        // The object gets the lock its upload asked for, else the bucket's
        // default retention, counted from now.
        crate::lock::initial_lock(&bucket, upload.object_lock.as_ref(), now_ms())
            .apply(&mut record);
        let out = self
            .commit_write(
                guard,
                PendingWrite {
                    who,
                    bucket: &input.bucket,
                    key: &input.key,
                    backend,
                    staged,
                    record,
                    conditions: &input.conditions,
                    upload: Some(input.upload_id.clone()),
                },
            )
            .await?;
        crate::fault!("complete.committed");
        self.drop_parts(&upload.location, &input.upload_id).await?;
        Ok(out)
    }

    /// Complete's conditional headers, checked when the request starts (see
    /// `WriteConditions`). They are skipped when the upload is gone (the
    /// checks under the key's lock answer NoSuchUpload, or the first answer
    /// for a retry) and when the key's object came from this upload: a
    /// retried Complete answers as the first one did.
    async fn precheck_complete(&self, input: &CompleteUploadInput) -> Result<()> {
        if input.conditions.is_empty() {
            return Ok(());
        }
        let ukey = records::upload_key(&input.bucket, &input.key, &input.upload_id);
        if self.meta.get(&ukey).await?.is_none() {
            return Ok(());
        }
        let existing = self.object(&input.bucket, &input.key).await?;
        let cur = existing.as_ref().map(|(r, _)| r);
        if cur.is_some_and(|r| r.upload_id.as_deref() == Some(input.upload_id.as_str())) {
            return Ok(());
        }
        input.conditions.check(&input.key, cur)
    }

    /// The answer of an earlier, successful Complete of this upload with
    /// these parts, if the key's current object is the one it produced.
    async fn completed_before(
        &self,
        input: &CompleteUploadInput,
    ) -> Result<Option<PutObjectOutput>> {
        let Some((cur, _)) = self.object(&input.bucket, &input.key).await? else {
            return Ok(None);
        };
        if cur.upload_id.as_deref() != Some(input.upload_id.as_str()) {
            return Ok(None);
        }
        let mut md5s = Md5::new();
        for p in &input.parts {
            match hex::decode(p.etag.trim().trim_matches('"')) {
                Ok(raw) if raw.len() == 16 => md5s.update(raw),
                _ => return Ok(None),
            }
        }
        let etag = format!("{}-{}", hex::encode(md5s.finalize()), input.parts.len());
        Ok((etag == cur.etag).then(|| crate::commit::output_of(&cur)))
    }

    /// AbortMultipartUpload.
    pub async fn abort_upload(
        &self,
        who: &RequestContext,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<()> {
        self.bucket_for(who, bucket, Permission::Write, Some(key))
            .await?;
        // Under the key's lock, an abort waits for a Complete in progress and
        // then finds its upload gone.
        let _guard = self.locks.lock(bucket, key).await;
        let upload = self.upload(bucket, key, upload_id).await?;
        let ukey = records::upload_key(bucket, key, upload_id);
        match self
            .meta
            .commit(Txn::new().require_present(ukey.clone()).delete(ukey))
            .await
        {
            Ok(()) => {}
            Err(MetaError::Conflict) => return Err(CoreError::NoSuchUpload(upload_id.to_owned())),
            Err(e) => return Err(e.into()),
        }
        crate::fault!("abort.committed");
        self.drop_parts(&upload.location, upload_id).await
    }

    /// ListParts.
    pub async fn list_parts(
        &self,
        who: &RequestContext,
        input: ListPartsInput,
    ) -> Result<ListPartsOutput> {
        self.bucket_for(who, &input.bucket, Permission::Read, Some(&input.key))
            .await?;
        let upload = self
            .upload(&input.bucket, &input.key, &input.upload_id)
            .await?;
        let start = records::part_key(
            &input.upload_id,
            input.marker.saturating_add(1).min(MAX_PARTS + 1),
        );
        let end = prefix_end(&records::parts_prefix(&input.upload_id)).unwrap_or_default();
        let batch = self.meta.scan(&start, &end, input.max_parts + 1).await?;
        let is_truncated = batch.len() > input.max_parts;
        let mut parts = Vec::new();
        for (k, v) in batch.into_iter().take(input.max_parts) {
            let num = std::str::from_utf8(&k[k.len() - 5..])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let rec: PartRecord = codec::decode(&v)?;
            parts.push(PartInfo {
                part_number: num,
                etag: rec.etag,
                size: rec.size,
                last_modified_ms: rec.last_modified_ms,
                checksum: rec.checksum.as_deref().map(checksum::b64),
            });
        }
        let next_marker = parts.last().map(|p| p.part_number);
        Ok(ListPartsOutput {
            upload,
            parts,
            is_truncated,
            next_marker,
        })
    }
}

/// Checks what CompleteMultipartUpload declares about checksums against the
/// upload, as S3 does: a checksum type other than the upload's is BadDigest;
/// an object or part checksum of another algorithm, or a part without its
/// checksum in a composite upload, is InvalidRequest. Wrong values are
/// checked later, as digests.
fn check_complete_declaration(upload: &UploadRecord, input: &CompleteUploadInput) -> Result<()> {
    let declared = upload.checksum;
    let name = |c: Option<(ChecksumAlgorithm, ChecksumType)>| {
        c.map_or("null".to_owned(), |(a, _)| a.as_str().to_lowercase())
    };
    if let Some(kind) = input.checksum_type {
        if declared.map(|(_, k)| k) != Some(kind) {
            return Err(CoreError::BadDigest(format!(
                "The upload was created using the {} checksum type. The complete request must use the same checksum type.",
                declared.map_or("null", |(_, k)| k.as_str())
            )));
        }
    }
    if let Some((_, ChecksumType::Composite)) = declared {
        if let Some(p) = input.parts.iter().find(|p| p.checksums.is_empty()) {
            return Err(CoreError::InvalidRequest(format!(
                "The upload was created using a {} checksum. The complete request must include the checksum for each part. It was missing for part {} in the request.",
                name(declared),
                p.part_number
            )));
        }
    }
    let algorithms = input.checksum.iter().map(|(a, _)| *a).chain(
        input
            .parts
            .iter()
            .flat_map(|p| p.checksums.iter().map(|(a, _)| *a)),
    );
    for alg in algorithms {
        if declared.map(|(a, _)| a) != Some(alg) {
            return Err(CoreError::InvalidRequest(format!(
                "The upload was created using a {} checksum. The complete request must use the same checksum algorithm.",
                name(declared)
            )));
        }
    }
    Ok(())
}

/// Splits a composite value `<b64>-N` into its base64 and its part count.
fn split_part_count(value: &str) -> (&str, Option<&str>) {
    match value.rsplit_once('-') {
        Some((v, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => (v, Some(n)),
        _ => (value, None),
    }
}

fn composite_checksum(
    alg: ChecksumAlgorithm,
    kind: ChecksumType,
    parts: &[PartRecord],
) -> Result<StoredChecksum> {
    let raws: Vec<Vec<u8>> = parts
        .iter()
        .map(|p| {
            p.checksum
                .clone()
                .ok_or_else(|| CoreError::Internal("part without its checksum".into()))
        })
        .collect::<Result<_>>()?;
    let value = match kind {
        ChecksumType::Composite => alg.composite(&raws),
        ChecksumType::FullObject => {
            let mut acc = raws[0].clone();
            for (raw, p) in raws.iter().zip(parts).skip(1) {
                acc = alg
                    .combine(&acc, raw, p.size)
                    .ok_or_else(|| CoreError::Internal("full-object checksum of a SHA".into()))?;
            }
            checksum::b64(&acc)
        }
    };
    Ok(StoredChecksum {
        algorithm: alg,
        value,
        kind,
    })
}
