//! Object operations: put, get and head (with conditions and ranges), delete,
//! copy, and object ACLs.

use crate::RequestContext;
use std::sync::Arc;

use cloudmux_data::{
    Backend, BodyStream, ByteRange, DataError, DataRef, NativeMeta, Piece, Staged,
};
use cloudmux_meta::{codec, MetaError, Txn};

use crate::acl::{Acl, AclRequest, Permission};
use crate::authz::Fallback;
use crate::checksum::{ChecksumAlgorithm, ChecksumType, StoredChecksum};
use crate::commit::PendingWrite;
use crate::digest::{self, BodyExpectations, ChecksumSource, Digests, ExpectedChecksum};
use crate::records::{self, BucketRecord, ObjectMeta, ObjectRecord};
use crate::{names, now_ms, CoreError, Gateway, Result, ServerSideEncryption};

/// Largest single PUT S3 accepts (5 GiB).
pub const MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// Conditions on a write: PutObject, CopyObject's destination and
/// CompleteMultipartUpload.
///
/// They are checked twice, as S3 answers them: when the request starts
/// (PutObject: once its body has arrived; [`WriteConditions::check`]
/// against the key's record then: 412
/// PreconditionFailed, or 404 NoSuchKey for `If-Match` on a missing key),
/// and again under the key's lock just before the commit. A condition that
/// held at the start but no longer holds at the commit means another write
/// or delete of the key finished in between: that is
/// [`CoreError::ConditionalRequestConflict`] (409), which the client answers
/// by retrying.
#[derive(Debug, Clone, Default)]
pub struct WriteConditions {
    /// `If-Match`: the current ETag must match.
    pub if_match: Option<String>,
    /// `If-None-Match: *`: the key must not exist.
    pub if_none_match: Option<String>,
}

impl WriteConditions {
    /// Whether any condition is set.
    pub fn is_empty(&self) -> bool {
        self.if_match.is_none() && self.if_none_match.is_none()
    }

    /// Evaluates the conditions against the key's current record, `key`
    /// naming it in errors. S3 accepts only `*` for `If-None-Match` on a
    /// write and not both headers at once (501 NotImplemented otherwise).
    pub fn check(&self, key: &str, existing: Option<&ObjectRecord>) -> Result<()> {
        if self.if_match.is_some() && self.if_none_match.is_some() {
            return Err(CoreError::NotImplemented(
                "If-Match and If-None-Match together on a write".into(),
            ));
        }
        if let Some(m) = &self.if_none_match {
            if m.trim() != "*" {
                return Err(CoreError::NotImplemented(
                    "If-None-Match on a write supports only *".into(),
                ));
            }
            if existing.is_some() {
                return Err(CoreError::PreconditionFailed(Some("If-None-Match")));
            }
        }
        if let Some(m) = &self.if_match {
            match existing {
                None => return Err(CoreError::NoSuchKey(key.to_owned())),
                Some(r) if !etag_matches(m, &r.etag) => {
                    return Err(CoreError::PreconditionFailed(Some("If-Match")))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The check under the key's lock, right before the commit: a condition
    /// that held when the request started ([`WriteConditions::check`]) and
    /// fails now was broken by a write or delete that finished meanwhile.
    pub(crate) fn recheck(&self, key: &str, existing: Option<&ObjectRecord>) -> Result<()> {
        self.check(key, existing).map_err(|e| match e {
            CoreError::PreconditionFailed(_) | CoreError::NoSuchKey(_) => {
                CoreError::ConditionalRequestConflict
            }
            e => e,
        })
    }
}

/// PutObject.
pub struct PutObjectInput {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// Body.
    pub body: BodyStream,
    /// What the body must match.
    pub expect: BodyExpectations,
    /// Metadata.
    pub meta: ObjectMeta,
    /// The requested ACL (canned or grants).
    pub acl: Option<AclRequest>,
    /// Placement override (`x-amz-meta-scal-location-constraint`).
    pub location: Option<String>,
    /// `x-amz-server-side-encryption`: refused unless the location encrypts
    /// at rest.
    pub sse: Option<ServerSideEncryption>,
    /// Conditional write.
    pub conditions: WriteConditions,
    /// The `x-amz-object-lock-*` headers.
    pub lock: crate::lock::LockHeaders,
}

/// PutObject's (and CopyObject's) result.
#[derive(Debug, Clone)]
pub struct PutObjectOutput {
    /// ETag without quotes.
    pub etag: String,
    /// Stored checksum.
    pub checksum: Option<StoredChecksum>,
    /// Last-Modified, ms.
    pub last_modified_ms: i64,
    /// Size.
    pub size: u64,
    /// The new version's id (`x-amz-version-id`); `None` for the `null`
    /// version, which S3 does not announce.
    pub version_id: Option<String>,
    /// CopyObject: the version id of the source version copied
    /// (`x-amz-copy-source-version-id`); `None` for a `null` version.
    pub source_version_id: Option<String>,
}

/// A byte range request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// `bytes=first-` or `bytes=first-last`.
    FromTo(u64, Option<u64>),
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

impl RangeSpec {
    /// Resolves against an object size; `None` when unsatisfiable.
    pub fn resolve(self, size: u64) -> Option<ByteRange> {
        match self {
            RangeSpec::FromTo(first, last) => {
                if first >= size {
                    return None;
                }
                let last = last.map_or(size - 1, |l| l.min(size - 1));
                Some(ByteRange { first, last })
            }
            RangeSpec::Suffix(n) => {
                if n == 0 || size == 0 {
                    return None;
                }
                Some(ByteRange {
                    first: size.saturating_sub(n),
                    last: size - 1,
                })
            }
        }
    }
}

/// The HTTP conditional headers of a read.
#[derive(Debug, Clone, Default)]
pub struct ReadConditions {
    /// If-Match.
    pub if_match: Option<String>,
    /// If-None-Match.
    pub if_none_match: Option<String>,
    /// If-Modified-Since, seconds since the epoch.
    pub if_modified_since: Option<i64>,
    /// If-Unmodified-Since, seconds since the epoch.
    pub if_unmodified_since: Option<i64>,
}

pub(crate) fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|t| {
        let t = t.strip_prefix("W/").unwrap_or(t);
        t == "*" || t.trim_matches('"') == etag
    })
}

impl ReadConditions {
    /// Evaluates as S3 does for GET and HEAD: a failed If-Match or
    /// If-Unmodified-Since is 412; a failed If-None-Match or
    /// If-Modified-Since is 304. `strict_304` makes the 304 cases 412 too
    /// (the copy-source conditions).
    pub fn evaluate(&self, rec: &ObjectRecord, copy_source: bool) -> Result<()> {
        let lm = rec.last_modified_ms.div_euclid(1000);
        let name = |plain: &'static str, copy: &'static str| {
            if copy_source {
                copy
            } else {
                plain
            }
        };
        let not_modified = |condition: &'static str| {
            if copy_source {
                CoreError::PreconditionFailed(Some(condition))
            } else {
                CoreError::NotModified {
                    etag: rec.etag.clone(),
                    last_modified_ms: rec.last_modified_ms,
                }
            }
        };
        match &self.if_match {
            Some(m) if !etag_matches(m, &rec.etag) => {
                return Err(CoreError::PreconditionFailed(Some(name(
                    "If-Match",
                    "x-amz-copy-source-If-Match",
                ))))
            }
            Some(_) => {}
            None => {
                if self.if_unmodified_since.is_some_and(|t| lm > t) {
                    return Err(CoreError::PreconditionFailed(Some(name(
                        "If-Unmodified-Since",
                        "x-amz-copy-source-If-Unmodified-Since",
                    ))));
                }
            }
        }
        match &self.if_none_match {
            Some(m) if etag_matches(m, &rec.etag) => {
                return Err(not_modified("x-amz-copy-source-If-None-Match"))
            }
            Some(_) => {}
            None => {
                if self.if_modified_since.is_some_and(|t| lm <= t) {
                    return Err(not_modified("x-amz-copy-source-If-Modified-Since"));
                }
            }
        }
        Ok(())
    }
}

/// GetObject and HeadObject.
#[derive(Debug, Clone, Default)]
pub struct GetObjectInput {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// Range header, parsed.
    pub range: Option<RangeSpec>,
    /// `partNumber`.
    pub part_number: Option<u32>,
    /// Conditional headers.
    pub conditions: ReadConditions,
    /// HEAD: no body is opened.
    pub head: bool,
    /// `versionId`: the version to read (`null` for the null version);
    /// the current one when absent.
    pub version_id: Option<String>,
}

/// GetObject's result.
pub struct GetObjectOutput {
    /// The object's metadata.
    pub record: ObjectRecord,
    /// The version id the answer names (`x-amz-version-id`): the record's,
    /// or `null` for the null version of a bucket whose versioning was ever
    /// set, as AWS names it; `None` in a bucket never versioned.
    pub version_id: Option<String>,
    /// The body (absent for HEAD).
    pub body: Option<BodyStream>,
    /// The range served, when a range or part was asked for.
    pub range: Option<ByteRange>,
    /// Number of parts, when a part was asked for of a multipart object.
    pub parts_count: Option<u32>,
}

/// CopyObject.
#[derive(Debug, Clone)]
pub struct CopyObjectInput {
    /// Source bucket.
    pub src_bucket: String,
    /// Source key.
    pub src_key: String,
    /// The source's version (`?versionId=` of `x-amz-copy-source`); the
    /// current one when absent.
    pub src_version_id: Option<String>,
    /// Destination bucket.
    pub bucket: String,
    /// Destination key.
    pub key: String,
    /// `x-amz-metadata-directive: REPLACE`.
    pub replace_metadata: bool,
    /// The new metadata, used with REPLACE; its tags are used with
    /// `replace_tagging`.
    pub meta: ObjectMeta,
    /// `x-amz-tagging-directive: REPLACE`: the copy gets `meta.tags` instead
    /// of the source's tags.
    pub replace_tagging: bool,
    /// `x-amz-copy-source-if-*`.
    pub conditions: ReadConditions,
    /// `If-Match` / `If-None-Match`: conditions on the destination key.
    pub dest_conditions: WriteConditions,
    /// The requested ACL for the copy (canned or grants).
    pub acl: Option<AclRequest>,
    /// Placement override.
    pub location: Option<String>,
    /// `x-amz-server-side-encryption` of the copy: refused unless the
    /// destination's location encrypts at rest.
    pub sse: Option<ServerSideEncryption>,
    /// `x-amz-checksum-algorithm` for the copy.
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    /// The `x-amz-object-lock-*` headers of the copy (a copy never takes
    /// its source's lock).
    pub lock: crate::lock::LockHeaders,
}

/// The record of a new single-part object, from its body's digests; `data`
/// is filled in when the bytes are published.
fn fresh_record(
    d: &Digests,
    owner: String,
    acl: Acl,
    meta: ObjectMeta,
    location: String,
) -> ObjectRecord {
    ObjectRecord {
        size: d.size,
        etag: hex_md5(d),
        last_modified_ms: now_ms(),
        owner,
        acl,
        meta,
        location,
        data: DataRef {
            locator: String::new(),
            size: d.size,
            stamp: 0,
        },
        parts: Vec::new(),
        checksum: d.checksum.as_ref().map(|(algorithm, raw)| StoredChecksum {
            algorithm: *algorithm,
            value: crate::checksum::b64(raw),
            kind: ChecksumType::FullObject,
        }),
        upload_id: None,
        version: Default::default(),
    }
}

pub(crate) fn hex_md5(d: &Digests) -> String {
    hex::encode(d.md5)
}

impl Gateway {
    /// Chooses the location of a new object: the per-object header, then the
    /// bucket's location.
    pub(crate) fn placement(
        &self,
        bucket: &BucketRecord,
        requested: Option<&str>,
    ) -> Result<String> {
        match requested.filter(|s| !s.is_empty()) {
            Some(l) if self.locations.contains(l) => Ok(l.to_owned()),
            Some(l) => Err(CoreError::InvalidLocationConstraint(l.to_owned())),
            None => Ok(bucket.location.clone()),
        }
    }

    /// Checks a new object's key and the caller's right to write the bucket,
    /// and chooses the object's location.
    pub(crate) async fn prepare_write(
        &self,
        who: &RequestContext,
        bucket: &str,
        key: &str,
        requested: Option<&str>,
    ) -> Result<(BucketRecord, String)> {
        names::validate_key(key)?;
        let (b, _) = self
            .bucket_for(who, bucket, Permission::Write, Some(key))
            .await?;
        let location = self.placement(&b, requested)?;
        Ok((b, location))
    }

    /// Streams a body through verification into a location's staging area.
    /// The body's digests are returned only when it ended cleanly.
    pub(crate) async fn stage_verified(
        &self,
        location: &str,
        body: BodyStream,
        expect: BodyExpectations,
    ) -> Result<(Arc<dyn Backend>, Staged, Digests)> {
        let backend = self.locations.get(location)?.clone();
        let (body, digests) = digest::verify(body, expect);
        let staged = backend
            .stage(body)
            .await
            .map_err(|e| self.data_err(location, e))?;
        let d = digests
            .get()
            .ok_or_else(|| CoreError::Internal("body ended without digests".into()))?;
        Ok((backend, staged, d))
    }

    /// Checks a write's conditions when the request starts (for PutObject:
    /// once its body has arrived), before the key's lock is taken (see
    /// [`WriteConditions`]; they are checked again under the lock).
    pub(crate) async fn precheck_write(
        &self,
        bucket: &str,
        key: &str,
        conditions: &WriteConditions,
    ) -> Result<()> {
        if conditions.is_empty() {
            return Ok(());
        }
        let existing = self.object(bucket, key).await?;
        conditions.check(key, existing.as_ref().map(|(r, _)| r))
    }

    /// The current version of `bucket/key` unless it is a delete marker:
    /// what S3 calls the object.
    pub(crate) async fn object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(ObjectRecord, Vec<u8>)>> {
        Ok(self
            .current(bucket, key)
            .await?
            .filter(|(r, _)| !r.version.delete_marker))
    }

    /// PutObject.
    pub async fn put_object(
        &self,
        who: &RequestContext,
        input: PutObjectInput,
    ) -> Result<PutObjectOutput> {
        crate::tagging::validate_tags(&input.meta.tags, crate::tagging::MAX_OBJECT_TAGS)?;
        let (bucket, location) = self
            .prepare_write(who, &input.bucket, &input.key, input.location.as_deref())
            .await?;
        self.check_encryption(&location, input.sse)?;
        let lock = crate::lock::lock_for_put(&bucket, &input.lock, &input.expect)?;
        let mut expect = input.expect;
        if expect.max_length.is_none() {
            expect.max_length = Some(MAX_PUT_SIZE);
        }
        let writer = who.canonical_id().unwrap_or_default();
        let (owner, acl) = bucket.new_object_acl(writer, input.acl)?;
        let (backend, staged, d) = self.stage_verified(&location, input.body, expect).await?;
        // The conditions are first checked once the whole body has arrived,
        // so the client is answered after it has finished sending.
        if let Err(e) = self
            .precheck_write(&input.bucket, &input.key, &input.conditions)
            .await
        {
            let _ = backend.discard(&staged).await;
            return Err(e);
        }
        let mut record = fresh_record(&d, owner, acl, input.meta, location);
        lock.apply(&mut record);
        crate::fault!("put.staged");
        self.commit_object(
            who,
            &input.bucket,
            &input.key,
            backend,
            staged,
            record,
            &input.conditions,
        )
        .await
    }

    /// Publishes staged data as `bucket/key` and commits its record through
    /// the commit protocol (`commit.rs`), taking the key's lock.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn commit_object(
        &self,
        who: &RequestContext,
        bucket: &str,
        key: &str,
        backend: Arc<dyn Backend>,
        staged: Staged,
        record: ObjectRecord,
        conditions: &WriteConditions,
    ) -> Result<PutObjectOutput> {
        let guard = self.locks.lock_owned(bucket, key).await;
        self.commit_write(
            guard,
            PendingWrite {
                who,
                bucket,
                key,
                backend,
                staged,
                record,
                conditions,
                upload: None,
            },
        )
        .await
    }

    pub(crate) fn data_err(&self, location: &str, e: DataError) -> CoreError {
        match CoreError::from(e) {
            CoreError::Unavailable { message, .. } => CoreError::Unavailable {
                location: location.to_owned(),
                message,
            },
            CoreError::StorageFull { .. } => CoreError::StorageFull {
                location: location.to_owned(),
            },
            CoreError::Data { source, .. } => CoreError::Data {
                location: location.to_owned(),
                source,
            },
            other => other,
        }
    }

    /// GetObject / HeadObject.
    pub async fn get_object(
        &self,
        who: &RequestContext,
        input: GetObjectInput,
    ) -> Result<GetObjectOutput> {
        let (bucket, _) = self.bucket(&input.bucket).await?;
        if input.range.is_some() && input.part_number.is_some() {
            return Err(CoreError::InvalidRequest(
                "Cannot specify both Range header and partNumber query parameter".into(),
            ));
        }
        for attempt in 0..3 {
            let rec = self
                .readable_version(
                    who,
                    &bucket,
                    &input.bucket,
                    &input.key,
                    input.version_id.as_deref(),
                )
                .await?;
            self.authorize(
                who,
                &bucket,
                &input.bucket,
                Some(&input.key),
                None,
                Fallback::Acl(&rec.acl, Permission::Read),
            )?;
            input.conditions.evaluate(&rec, false)?;
            let (range, parts_count) = resolve_range(&rec, input.range, input.part_number)?;
            let version_id = match &rec.version.id {
                Some(id) => Some(id.clone()),
                None if bucket.versioning.is_some() => Some("null".to_owned()),
                None => None,
            };
            if input.head {
                return Ok(GetObjectOutput {
                    record: rec,
                    version_id,
                    body: None,
                    range,
                    parts_count,
                });
            }
            let backend = self.locations.get(&rec.location)?;
            match backend.read(&rec.data, range).await {
                Ok(body) => {
                    return Ok(GetObjectOutput {
                        record: rec,
                        version_id,
                        body: Some(body),
                        range,
                        parts_count,
                    })
                }
                Err(DataError::Stale(_)) | Err(DataError::NotFound(_)) if attempt < 2 => {
                    // A writer replaced the data and has not committed yet,
                    // or a new key's data is moving to its native name: wait
                    // for it by taking the key's lock once, finishing a move
                    // that its task left.
                    let _guard = self.locks.lock(&input.bucket, &input.key).await;
                    if let Err(e) = self.settle_move(&input.bucket, &input.key).await {
                        tracing::warn!(bucket = %input.bucket, key = %input.key, error = %e,
                            "could not finish a new key's move");
                    }
                }
                Err(DataError::Stale(detail)) | Err(DataError::NotFound(detail)) => {
                    return Err(CoreError::DataChanged {
                        location: rec.location.clone(),
                        bucket: input.bucket.clone(),
                        key: input.key.clone(),
                        detail,
                    })
                }
                Err(e) => return Err(self.data_err(&rec.location, e)),
            }
        }
        Err(CoreError::Internal(format!(
            "data of {}/{} keeps changing underneath",
            input.bucket, input.key
        )))
    }

    /// The version a read addresses: the current one, or the one named by
    /// `version_id`. A missing key or version is
    /// [`Gateway::missing_key`]'s answer (NoSuchKey, or NoSuchVersion when
    /// a version was named); a delete marker is
    /// [`CoreError::DeleteMarker`] (when the caller may learn of it: the
    /// same rule as for a missing key).
    pub(crate) async fn readable_version(
        &self,
        who: &RequestContext,
        b: &BucketRecord,
        name: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<ObjectRecord> {
        let found = match version_id {
            None => self.current(name, key).await?.map(|(r, _)| r),
            Some(v) => self.find_version(name, key, v).await?.map(|f| f.record),
        };
        match found {
            Some(rec) if rec.version.delete_marker => match self.missing_key(who, b, name, key) {
                CoreError::NoSuchKey(_) => Err(CoreError::DeleteMarker {
                    key: key.to_owned(),
                    version_id: crate::versions::shown_id(&rec.version).to_owned(),
                    by_id: version_id.is_some(),
                }),
                e => Err(e),
            },
            Some(rec) => Ok(rec),
            None => match (self.missing_key(who, b, name, key), version_id) {
                (CoreError::NoSuchKey(_), Some(v)) => Err(CoreError::NoSuchVersion {
                    key: key.to_owned(),
                    version_id: v.to_owned(),
                }),
                (e, _) => Err(e),
            },
        }
    }

    /// A copy's source object (CopyObject, UploadPartCopy) in bucket `name`
    /// (record `b`), after checking that `who` may read it (`s3:GetObject`)
    /// and that the `x-amz-copy-source-if-*` conditions hold.
    pub(crate) async fn copy_source(
        &self,
        who: &RequestContext,
        b: &BucketRecord,
        name: &str,
        key: &str,
        version_id: Option<&str>,
        conditions: &ReadConditions,
    ) -> Result<ObjectRecord> {
        let src = match self.readable_version(who, b, name, key, version_id).await {
            Ok(src) => src,
            // A copy's source that is a delete marker: NoSuchKey for the
            // current version, InvalidRequest when named by id, as S3.
            Err(CoreError::DeleteMarker { by_id: false, .. }) => {
                return Err(CoreError::NoSuchKey(key.to_owned()))
            }
            Err(CoreError::DeleteMarker { by_id: true, .. }) => {
                return Err(CoreError::InvalidRequest(
                    "The source of a copy request may not specifically refer to a delete marker by version id."
                        .into(),
                ))
            }
            Err(e) => return Err(e),
        };
        let action = if version_id.is_some() {
            "s3:GetObjectVersion"
        } else {
            "s3:GetObject"
        };
        self.authorize(
            who,
            b,
            name,
            Some(key),
            Some(action),
            Fallback::Acl(&src.acl, Permission::Read),
        )?;
        conditions.evaluate(&src, true)?;
        Ok(src)
    }

    /// CopyObject.
    pub async fn copy_object(
        &self,
        who: &RequestContext,
        input: CopyObjectInput,
    ) -> Result<PutObjectOutput> {
        let mut source_version_id = None;
        let mut out = self
            .copy_object_of(who, input, &mut source_version_id)
            .await?;
        out.source_version_id = source_version_id;
        Ok(out)
    }

    /// CopyObject, telling `source_version` the version id of the source
    /// version it copies.
    async fn copy_object_of(
        &self,
        who: &RequestContext,
        input: CopyObjectInput,
        source_version: &mut Option<String>,
    ) -> Result<PutObjectOutput> {
        names::validate_key(&input.key)?;
        if input.replace_tagging {
            crate::tagging::validate_tags(&input.meta.tags, crate::tagging::MAX_OBJECT_TAGS)?;
        }
        let (src_bucket, _) = self.bucket(&input.src_bucket).await?;
        let (dst_bucket, _) = self
            .bucket_for(who, &input.bucket, Permission::Write, Some(&input.key))
            .await?;
        let asked = input.lock.check(&dst_bucket)?;
        let lock = crate::lock::initial_lock(&dst_bucket, asked.as_ref(), now_ms());
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
        source_version.clone_from(&src.version.id);
        // A copy of the current version onto itself rewrites its metadata in
        // place, unless the bucket keeps versions: then it is a new version.
        let same = input.src_bucket == input.bucket
            && input.src_key == input.key
            && dst_bucket.versioning.is_none();
        if same
            && !input.replace_metadata
            && input.meta.storage_class.is_none()
            && input.checksum_algorithm.is_none()
            && input.location.is_none()
            && input.sse.is_none()
        {
            return Err(CoreError::InvalidRequest(
                "This copy request is illegal because it is trying to copy an object to itself \
                 without changing the object's metadata, storage class, website redirect location \
                 or encryption attributes."
                    .into(),
            ));
        }
        let location = self.placement(&dst_bucket, input.location.as_deref())?;
        self.check_encryption(&location, input.sse)?;
        let mut meta = if input.replace_metadata {
            input.meta.clone()
        } else {
            ObjectMeta {
                storage_class: input
                    .meta
                    .storage_class
                    .clone()
                    .or(src.meta.storage_class.clone()),
                ..src.meta.clone()
            }
        };
        meta.tags = if input.replace_tagging {
            input.meta.tags.clone()
        } else {
            src.meta.tags.clone()
        };
        let writer = who.canonical_id().unwrap_or_default();
        let (owner, acl) = dst_bucket.new_object_acl(writer, input.acl.clone())?;
        self.precheck_write(&input.bucket, &input.key, &input.dest_conditions)
            .await?;
        let wanted_alg = input
            .checksum_algorithm
            .or(src.checksum.as_ref().map(|c| c.algorithm));
        if same
            && location == src.location
            && wanted_alg == src.checksum.as_ref().map(|c| c.algorithm)
        {
            return self.rewrite_metadata(&input, src, meta, owner, acl).await;
        }
        if let Some(out) = self
            .copy_server_side(
                who, &input, &src, &location, wanted_alg, &meta, &acl, &owner, &lock,
            )
            .await?
        {
            return Ok(out);
        }
        let src_backend = self.locations.get(&src.location)?.clone();
        let body = src_backend
            .read(&src.data, None)
            .await
            .map_err(|e| self.data_err(&src.location, e))?;
        let expect = BodyExpectations {
            length: Some(src.size),
            checksum: wanted_alg.map(|algorithm| ExpectedChecksum {
                algorithm,
                source: ChecksumSource::Compute,
            }),
            ..Default::default()
        };
        let (backend, staged, d) = self.stage_verified(&location, body, expect).await?;
        crate::fault!("copy.staged");
        let mut record = fresh_record(&d, owner, acl, meta, location);
        lock.apply(&mut record);
        self.commit_object(
            who,
            &input.bucket,
            &input.key,
            backend,
            staged,
            record,
            &input.dest_conditions,
        )
        .await
    }

    /// A copy within one location whose digests are already known (the
    /// source's ETag is its MD5 and its checksum, if one is wanted, covers the
    /// whole object): the backend copies the data without it passing through
    /// cloudmux (server-side on clouds). Answers `None` when the copy must be
    /// streamed instead.
    #[allow(clippy::too_many_arguments)]
    async fn copy_server_side(
        &self,
        who: &RequestContext,
        input: &CopyObjectInput,
        src: &ObjectRecord,
        location: &str,
        wanted_alg: Option<ChecksumAlgorithm>,
        meta: &ObjectMeta,
        acl: &Acl,
        owner: &str,
        lock: &crate::records::WriteLock,
    ) -> Result<Option<PutObjectOutput>> {
        let md5 = hex::decode(&src.etag)
            .ok()
            .and_then(|m| <[u8; 16]>::try_from(m).ok());
        let checksum_known = match wanted_alg {
            None => true,
            Some(a) => src
                .checksum
                .as_ref()
                .is_some_and(|c| c.algorithm == a && c.kind == ChecksumType::FullObject),
        };
        let (Some(md5), true, true) = (md5, checksum_known, location == src.location) else {
            return Ok(None);
        };
        let backend = self.locations.get(location)?.clone();
        let staged = backend
            .assemble(vec![Piece::Published(src.data.clone(), None)])
            .await
            .map_err(|e| self.data_err(location, e))?;
        crate::fault!("copy.staged");
        let d = Digests {
            md5,
            size: src.size,
            checksum: None,
        };
        let mut record = fresh_record(
            &d,
            owner.to_owned(),
            acl.clone(),
            meta.clone(),
            location.to_owned(),
        );
        record.checksum = wanted_alg.and(src.checksum.clone());
        lock.clone().apply(&mut record);
        self.commit_object(
            who,
            &input.bucket,
            &input.key,
            backend,
            staged,
            record,
            &input.dest_conditions,
        )
        .await
        .map(Some)
    }

    /// A copy onto itself that keeps the data: only the record changes.
    async fn rewrite_metadata(
        &self,
        input: &CopyObjectInput,
        src: ObjectRecord,
        meta: ObjectMeta,
        owner: String,
        acl: Acl,
    ) -> Result<PutObjectOutput> {
        let _guard = self.locks.lock(&input.bucket, &input.key).await;
        self.settle_intent(&input.bucket, &input.key).await?;
        let (cur, raw) = self
            .object(&input.bucket, &input.key)
            .await?
            .ok_or_else(|| CoreError::NoSuchKey(input.key.clone()))?;
        input.dest_conditions.recheck(&input.key, Some(&cur))?;
        // The same bytes, wherever they lie now: a new key's data may have
        // moved from its staged copy to its native name meanwhile (same
        // stamp, another locator).
        let same_bytes = cur.location == src.location
            && cur.etag == src.etag
            && cur.data.size == src.data.size
            && cur.data.stamp == src.data.stamp;
        if !same_bytes {
            return Err(CoreError::PreconditionFailed(None));
        }
        let record = ObjectRecord {
            last_modified_ms: now_ms(),
            owner,
            acl,
            meta,
            upload_id: None,
            ..cur
        };
        let okey = records::object_key(&input.bucket, &input.key);
        self.meta
            .commit(
                Txn::new()
                    .require_equals(okey.clone(), raw)
                    .put(okey, codec::encode(&record)),
            )
            .await
            .map_err(|e| match e {
                MetaError::Conflict => CoreError::PreconditionFailed(None),
                e => e.into(),
            })?;
        Ok(crate::commit::output_of(&record))
    }

    /// GetObjectAcl: the bucket owner's full control only while the
    /// bucket's ACLs are disabled (Object Ownership `BucketOwnerEnforced`).
    pub async fn object_acl(
        &self,
        who: &RequestContext,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Acl> {
        let (b, _) = self.bucket(bucket).await?;
        let (rec, _, _) = self.addressed(who, &b, bucket, key, version_id).await?;
        self.authorize(
            who,
            &b,
            bucket,
            Some(key),
            None,
            Fallback::Acl(&rec.acl, Permission::ReadAcp),
        )?;
        Ok(b.shown_object_acl(rec.acl))
    }

    /// PutObjectAcl: a canned ACL, grants or an AccessControlPolicy;
    /// `AccessControlListNotSupported` while the bucket's ACLs are disabled.
    pub async fn put_object_acl(
        &self,
        who: &RequestContext,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        acl: AclRequest,
    ) -> Result<()> {
        let (b, _) = self.bucket(bucket).await?;
        let _guard = self.locks.lock(bucket, key).await;
        self.settle_intent(bucket, key).await?;
        let (mut rec, raw, mkey) = self.addressed(who, &b, bucket, key, version_id).await?;
        self.authorize(
            who,
            &b,
            bucket,
            Some(key),
            None,
            Fallback::Acl(&rec.acl, Permission::WriteAcp),
        )?;
        b.refuse_acl_change()?;
        rec.acl = acl.resolve(&rec.owner, Some(&b.owner))?;
        b.refuse_public(&rec.acl)?;
        self.rewrite_object(mkey, raw, &rec).await
    }

    /// The version a request about an object's subresources (ACL, tags)
    /// addresses: the current one, or the one `version_id` names; with its
    /// encoded form and its key in the metadata store. Missing keys and
    /// versions and delete markers are refused as a read is
    /// ([`Gateway::readable_version`]).
    pub(crate) async fn addressed(
        &self,
        who: &RequestContext,
        b: &BucketRecord,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(ObjectRecord, Vec<u8>, Vec<u8>)> {
        let found = match version_id {
            None => self
                .current(bucket, key)
                .await?
                .map(|(record, raw)| (record, raw, records::object_key(bucket, key))),
            Some(v) => self
                .find_version(bucket, key, v)
                .await?
                .map(|f| (f.record, f.raw, f.place.meta_key(bucket, key))),
        };
        match found {
            Some(f) if !f.0.version.delete_marker => Ok(f),
            // Not there, or a delete marker: answered as a read of it.
            _ => Err(self
                .readable_version(who, b, bucket, key, version_id)
                .await
                .err()
                .unwrap_or_else(|| CoreError::NoSuchKey(key.to_owned()))),
        }
    }

    /// Writes `rec` over the record at `mkey` (an object's current version
    /// or a noncurrent one), on condition that the stored record is still
    /// `raw` (the caller holds the key's lock).
    pub(crate) async fn rewrite_object(
        &self,
        mkey: Vec<u8>,
        raw: Vec<u8>,
        rec: &ObjectRecord,
    ) -> Result<()> {
        self.meta
            .commit(
                Txn::new()
                    .require_equals(mkey.clone(), raw)
                    .put(mkey, codec::encode(rec)),
            )
            .await?;
        Ok(())
    }
}

fn resolve_range(
    rec: &ObjectRecord,
    range: Option<RangeSpec>,
    part: Option<u32>,
) -> Result<(Option<ByteRange>, Option<u32>)> {
    if let Some(n) = part {
        if n == 0 || n > 10_000 {
            return Err(CoreError::InvalidArgument(
                "Part number must be an integer between 1 and 10000, inclusive".into(),
            ));
        }
        if rec.parts.is_empty() {
            if n != 1 {
                return Err(CoreError::InvalidPartNumber {
                    requested: n,
                    actual: 1,
                });
            }
            let r = (rec.size > 0).then(|| ByteRange {
                first: 0,
                last: rec.size - 1,
            });
            return Ok((r, None));
        }
        let idx = n as usize - 1;
        if idx >= rec.parts.len() {
            return Err(CoreError::InvalidPartNumber {
                requested: n,
                actual: rec.parts.len() as u32,
            });
        }
        let first: u64 = rec.parts[..idx].iter().map(|p| p.size).sum();
        let size = rec.parts[idx].size;
        let r = (size > 0).then(|| ByteRange {
            first,
            last: first + size - 1,
        });
        return Ok((r, Some(rec.parts.len() as u32)));
    }
    match range {
        None => Ok((None, None)),
        Some(spec) => match spec.resolve(rec.size) {
            Some(r) => Ok((Some(r), None)),
            None => Err(CoreError::InvalidRange(rec.size)),
        },
    }
}

/// The metadata a cloud location keeps natively for `record`.
pub(crate) fn native_meta(record: &ObjectRecord) -> NativeMeta {
    let h = &record.meta.headers;
    let content_md5 = if record.etag.contains('-') {
        None
    } else {
        hex::decode(&record.etag)
            .ok()
            .and_then(|v| <[u8; 16]>::try_from(v).ok())
    };
    NativeMeta {
        content_type: h.content_type.clone(),
        cache_control: h.cache_control.clone(),
        content_disposition: h.content_disposition.clone(),
        content_encoding: h.content_encoding.clone(),
        content_language: h.content_language.clone(),
        expires: h.expires.clone(),
        user: record.meta.user.clone(),
        content_md5,
    }
}
