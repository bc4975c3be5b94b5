//! The records cloudmux keeps in the metadata store, and their keys.
//!
//! Key layout (all keys are bytes, sorted bytewise):
//! - `b/<bucket>`: [`BucketRecord`]
//! - `o/<bucket>/<key>`: [`ObjectRecord`]; keys contain no NUL, so byte order
//!   within a bucket is S3's key order.
//! - `u/<bucket>/<key>\0<upload-id>`: [`UploadRecord`]; upload ids start with a
//!   fixed-width timestamp, so one key's uploads sort by initiation time.
//! - `p/<upload-id>/<part number, 5 digits>`: [`PartRecord`].
//! - `w/<bucket>/<key>`: [`IntentRecord`], an overwrite in flight.
//! - `g/<uuid>`: [`GarbageRecord`], bytes that no record names any more
//!   (deleted or replaced), committed with the change that released them.
//!
//! Every value is encoded with `cloudmux_meta::codec`, whose first byte is the
//! record's format version.

use cloudmux_data::{DataRef, Staged};
use cloudmux_meta::codec::Record;
use serde::{Deserialize, Serialize};

use crate::acl::Acl;
use crate::checksum::{ChecksumAlgorithm, ChecksumType, StoredChecksum};

/// A bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BucketRecord {
    /// Owner's canonical id.
    pub owner: String,
    /// Creation time, ms since the epoch.
    pub created_ms: i64,
    /// The location holding the bucket's objects by default.
    pub location: String,
    /// The bucket ACL.
    pub acl: Acl,
    /// Whether CreateBucket named the location (GetBucketLocation reports it).
    pub explicit_location: bool,
    /// CORS rules (PutBucketCors); `None` when never set or deleted.
    pub cors: Option<Vec<CorsRule>>,
    /// Block Public Access settings; `None` when never set or deleted.
    pub public_access_block: Option<PublicAccessBlock>,
    /// Bucket tags (PutBucketTagging), in the order given; `None` when never
    /// set or deleted.
    pub tags: Option<Vec<(String, String)>>,
    /// The bucket policy document (PutBucketPolicy) as sent; `None` when
    /// never set or deleted.
    pub policy: Option<String>,
    /// S3 Object Ownership (CreateBucket's `x-amz-object-ownership`,
    /// PutBucketOwnershipControls); `None` when never set or deleted, which
    /// behaves as `ObjectWriter` (ACLs enabled).
    pub ownership: Option<ObjectOwnership>,
    /// Bucket versioning (PutBucketVersioning); `None` while the bucket has
    /// never been versioned (format version 5).
    pub versioning: Option<Versioning>,
    /// Object Lock: `Some` when the bucket was created with Object Lock
    /// enabled, with its default retention (format version 5).
    pub object_lock: Option<ObjectLockConfig>,
}

/// A bucket's versioning state; a bucket never returns to unversioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Versioning {
    /// Every write makes a new version.
    Enabled,
    /// Writes replace the `null` version; older versions stay.
    Suspended,
}

/// A bucket's Object Lock configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectLockConfig {
    /// The retention every new version gets unless its write names one.
    pub default_retention: Option<DefaultRetention>,
}

/// A default retention period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultRetention {
    /// GOVERNANCE or COMPLIANCE.
    pub mode: LockMode,
    /// The period in days (exactly one of `days` and `years`).
    pub days: Option<u32>,
    /// The period in years.
    pub years: Option<u32>,
}

/// Version 4 of [`BucketRecord`]: no versioning, no Object Lock.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BucketRecordV4 {
    owner: String,
    created_ms: i64,
    location: String,
    acl: Acl,
    explicit_location: bool,
    cors: Option<Vec<CorsRule>>,
    public_access_block: Option<PublicAccessBlock>,
    tags: Option<Vec<(String, String)>>,
    policy: Option<String>,
    ownership: Option<ObjectOwnership>,
}

/// S3 Object Ownership: who owns the objects written to a bucket, and
/// whether ACLs are enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectOwnership {
    /// ACLs are disabled: the bucket owner owns every object and has full
    /// control of it; ACLs grant nothing.
    BucketOwnerEnforced,
    /// ACLs are enabled; an object written with the
    /// `bucket-owner-full-control` canned ACL is owned by the bucket owner.
    BucketOwnerPreferred,
    /// ACLs are enabled; the writer owns each object it writes.
    ObjectWriter,
}

impl ObjectOwnership {
    /// Parses the S3 name (`x-amz-object-ownership`, `<ObjectOwnership>`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "BucketOwnerEnforced" => ObjectOwnership::BucketOwnerEnforced,
            "BucketOwnerPreferred" => ObjectOwnership::BucketOwnerPreferred,
            "ObjectWriter" => ObjectOwnership::ObjectWriter,
            _ => return None,
        })
    }

    /// The S3 name.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectOwnership::BucketOwnerEnforced => "BucketOwnerEnforced",
            ObjectOwnership::BucketOwnerPreferred => "BucketOwnerPreferred",
            ObjectOwnership::ObjectWriter => "ObjectWriter",
        }
    }
}

/// Version 3 of [`BucketRecord`]: no Object Ownership.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BucketRecordV3 {
    owner: String,
    created_ms: i64,
    location: String,
    acl: Acl,
    explicit_location: bool,
    cors: Option<Vec<CorsRule>>,
    public_access_block: Option<PublicAccessBlock>,
    tags: Option<Vec<(String, String)>>,
    policy: Option<String>,
}

/// Version 2 of [`BucketRecord`]: no tags, no policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BucketRecordV2 {
    owner: String,
    created_ms: i64,
    location: String,
    acl: Acl,
    explicit_location: bool,
    cors: Option<Vec<CorsRule>>,
    public_access_block: Option<PublicAccessBlock>,
}

/// Version 1 of [`BucketRecord`]: no CORS rules, no Block Public Access.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BucketRecordV1 {
    owner: String,
    created_ms: i64,
    location: String,
    acl: Acl,
    explicit_location: bool,
}

impl Record for BucketRecord {
    const VERSION: u8 = 5;

    fn upgrade(version: u8, body: &[u8]) -> cloudmux_meta::Result<Self> {
        let corrupt = |e: postcard::Error| cloudmux_meta::MetaError::Corrupt(e.to_string());
        if version == 4 {
            let v4: BucketRecordV4 = postcard::from_bytes(body).map_err(corrupt)?;
            return Ok(BucketRecord {
                owner: v4.owner,
                created_ms: v4.created_ms,
                location: v4.location,
                acl: v4.acl,
                explicit_location: v4.explicit_location,
                cors: v4.cors,
                public_access_block: v4.public_access_block,
                tags: v4.tags,
                policy: v4.policy,
                ownership: v4.ownership,
                versioning: None,
                object_lock: None,
            });
        }
        let v3 = match version {
            1 | 2 => BucketRecordV3::upgrade(version, body)?,
            3 => postcard::from_bytes(body).map_err(corrupt)?,
            v => {
                return Err(cloudmux_meta::MetaError::Corrupt(format!(
                    "BucketRecord: unknown format version {v}"
                )))
            }
        };
        Ok(BucketRecord {
            owner: v3.owner,
            created_ms: v3.created_ms,
            location: v3.location,
            acl: v3.acl,
            explicit_location: v3.explicit_location,
            cors: v3.cors,
            public_access_block: v3.public_access_block,
            tags: v3.tags,
            policy: v3.policy,
            ownership: None,
            versioning: None,
            object_lock: None,
        })
    }
}

impl BucketRecordV3 {
    /// Reads a version 1 or 2 record as version 3 (no tags, no policy).
    fn upgrade(version: u8, body: &[u8]) -> cloudmux_meta::Result<Self> {
        let corrupt = |e: postcard::Error| cloudmux_meta::MetaError::Corrupt(e.to_string());
        let v2 = match version {
            1 => {
                let v1: BucketRecordV1 = postcard::from_bytes(body).map_err(corrupt)?;
                BucketRecordV2 {
                    owner: v1.owner,
                    created_ms: v1.created_ms,
                    location: v1.location,
                    acl: v1.acl,
                    explicit_location: v1.explicit_location,
                    cors: None,
                    public_access_block: None,
                }
            }
            2 => postcard::from_bytes(body).map_err(corrupt)?,
            v => {
                return Err(cloudmux_meta::MetaError::Corrupt(format!(
                    "BucketRecord: unknown format version {v}"
                )))
            }
        };
        Ok(BucketRecordV3 {
            owner: v2.owner,
            created_ms: v2.created_ms,
            location: v2.location,
            acl: v2.acl,
            explicit_location: v2.explicit_location,
            cors: v2.cors,
            public_access_block: v2.public_access_block,
            tags: None,
            policy: None,
        })
    }
}

/// One CORS rule, as PutBucketCors stores it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    /// Optional rule id.
    pub id: Option<String>,
    /// Allowed origins; each may hold one `*` wildcard.
    pub allowed_origins: Vec<String>,
    /// Allowed methods (GET, PUT, POST, DELETE, HEAD).
    pub allowed_methods: Vec<String>,
    /// Allowed request headers (preflight); each may hold one `*` wildcard.
    pub allowed_headers: Vec<String>,
    /// Response headers the browser may expose to scripts.
    pub expose_headers: Vec<String>,
    /// How long a browser may cache the preflight answer, in seconds.
    pub max_age_seconds: Option<i64>,
}

/// A bucket's Block Public Access settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    /// Refuse requests that set a public ACL.
    pub block_public_acls: bool,
    /// Ignore public grants when authorizing.
    pub ignore_public_acls: bool,
    /// Refuse PutBucketPolicy of a public policy.
    pub block_public_policy: bool,
    /// With a public bucket policy, its Allow statements grant nothing to
    /// anyone but the bucket owner.
    pub restrict_public_buckets: bool,
}

/// The entity headers S3 stores with an object and returns on GET/HEAD.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityHeaders {
    /// Content-Type.
    pub content_type: Option<String>,
    /// Cache-Control.
    pub cache_control: Option<String>,
    /// Content-Disposition.
    pub content_disposition: Option<String>,
    /// Content-Encoding (with `aws-chunked` removed).
    pub content_encoding: Option<String>,
    /// Content-Language.
    pub content_language: Option<String>,
    /// Expires, as sent.
    pub expires: Option<String>,
    /// Website redirect location.
    pub website_redirect: Option<String>,
}

/// The metadata of an object, as written by PUT, copy or multipart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// Entity headers.
    pub headers: EntityHeaders,
    /// User metadata (`x-amz-meta-*`), names lower-cased without the prefix.
    pub user: Vec<(String, String)>,
    /// Storage class as given (STANDARD when absent).
    pub storage_class: Option<String>,
    /// Object tags (`x-amz-tagging`, PutObjectTagging), in the order given.
    pub tags: Vec<(String, String)>,
}

/// Version 1 of [`ObjectMeta`]: no tags.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ObjectMetaV1 {
    headers: EntityHeaders,
    user: Vec<(String, String)>,
    storage_class: Option<String>,
}

impl From<ObjectMetaV1> for ObjectMeta {
    fn from(v1: ObjectMetaV1) -> Self {
        ObjectMeta {
            headers: v1.headers,
            user: v1.user,
            storage_class: v1.storage_class,
            tags: Vec::new(),
        }
    }
}

/// A part of a multipart object, kept for `partNumber` reads and
/// GetObjectAttributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartSummary {
    /// Part size in bytes.
    pub size: u64,
    /// The part's raw checksum in the algorithm of the object's
    /// [`ObjectRecord::checksum`] (object format version 4; `None` for
    /// objects without one and for older records).
    pub checksum: Option<Vec<u8>>,
}

/// Version 1 of [`PartSummary`] (in object records up to version 3): the
/// size only.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PartSummaryV1 {
    size: u64,
}

/// The current part summaries of older records, which kept no part
/// checksums.
fn upgrade_parts(parts: Vec<PartSummaryV1>) -> Vec<PartSummary> {
    parts
        .into_iter()
        .map(|p| PartSummary {
            size: p.size,
            checksum: None,
        })
        .collect()
}

/// An object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// Size in bytes.
    pub size: u64,
    /// ETag without quotes.
    pub etag: String,
    /// Last-Modified, ms since the epoch.
    pub last_modified_ms: i64,
    /// Owner's canonical id.
    pub owner: String,
    /// Object ACL.
    pub acl: Acl,
    /// Metadata.
    pub meta: ObjectMeta,
    /// The location holding the data.
    pub location: String,
    /// Where the data is inside the location.
    pub data: DataRef,
    /// Parts, for multipart objects (empty otherwise).
    pub parts: Vec<PartSummary>,
    /// The additional checksum, if any.
    pub checksum: Option<StoredChecksum>,
    /// The multipart upload that produced this object, so that a retried
    /// CompleteMultipartUpload of it answers as the first one did (format
    /// version 3; `None` for single-part writes and older records).
    pub upload_id: Option<String>,
    /// Which version of its key this record is, and its Object Lock state
    /// (format version 5; older records are the `null` version, oldest of
    /// all, unlocked).
    pub version: VersionInfo,
}

/// The version of an object record: its id, its place among the key's
/// versions, whether it is a delete marker, and its Object Lock state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The version id; `None` is the `null` version (written while the
    /// bucket was unversioned or versioning was suspended).
    pub id: Option<String>,
    /// The version's place among the key's versions: larger is newer, unique
    /// per key (see `versions::VersionClock`); 0 for records written before
    /// versioning existed.
    pub seq: u64,
    /// A delete marker: no bytes; GET of the key answers 404 while it is
    /// the current version.
    pub delete_marker: bool,
    /// Object Lock retention, if any.
    pub retention: Option<Retention>,
    /// Object Lock legal hold.
    pub legal_hold: bool,
}

/// Object Lock retention of one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// GOVERNANCE or COMPLIANCE.
    pub mode: LockMode,
    /// The version may not be deleted or overwritten before this instant,
    /// ms since the epoch.
    pub until_ms: i64,
}

/// An Object Lock retention mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockMode {
    /// Yields to `x-amz-bypass-governance-retention` from an account
    /// allowed `s3:BypassGovernanceRetention`.
    Governance,
    /// Yields to nobody; may be extended, never shortened or removed.
    Compliance,
}

impl LockMode {
    /// Parses S3's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "GOVERNANCE" => Some(LockMode::Governance),
            "COMPLIANCE" => Some(LockMode::Compliance),
            _ => None,
        }
    }

    /// S3's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }
}

/// Version 4 of [`ObjectRecord`]: no version information.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ObjectRecordV4 {
    size: u64,
    etag: String,
    last_modified_ms: i64,
    owner: String,
    acl: Acl,
    meta: ObjectMeta,
    location: String,
    data: DataRef,
    parts: Vec<PartSummary>,
    checksum: Option<StoredChecksum>,
    upload_id: Option<String>,
}

impl From<ObjectRecordV4> for ObjectRecord {
    fn from(v4: ObjectRecordV4) -> Self {
        ObjectRecord {
            size: v4.size,
            etag: v4.etag,
            last_modified_ms: v4.last_modified_ms,
            owner: v4.owner,
            acl: v4.acl,
            meta: v4.meta,
            location: v4.location,
            data: v4.data,
            parts: v4.parts,
            checksum: v4.checksum,
            upload_id: v4.upload_id,
            version: VersionInfo::default(),
        }
    }
}

/// Version 3 of [`ObjectRecord`]: its part summaries have no checksums.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ObjectRecordV3 {
    size: u64,
    etag: String,
    last_modified_ms: i64,
    owner: String,
    acl: Acl,
    meta: ObjectMeta,
    location: String,
    data: DataRef,
    parts: Vec<PartSummaryV1>,
    checksum: Option<StoredChecksum>,
    upload_id: Option<String>,
}

impl From<ObjectRecordV3> for ObjectRecord {
    fn from(v3: ObjectRecordV3) -> Self {
        ObjectRecord {
            size: v3.size,
            etag: v3.etag,
            last_modified_ms: v3.last_modified_ms,
            owner: v3.owner,
            acl: v3.acl,
            meta: v3.meta,
            location: v3.location,
            data: v3.data,
            parts: upgrade_parts(v3.parts),
            checksum: v3.checksum,
            upload_id: v3.upload_id,
            version: VersionInfo::default(),
        }
    }
}

/// Version 2 of [`ObjectRecord`]: no `upload_id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ObjectRecordV2 {
    size: u64,
    etag: String,
    last_modified_ms: i64,
    owner: String,
    acl: Acl,
    meta: ObjectMeta,
    location: String,
    data: DataRef,
    parts: Vec<PartSummaryV1>,
    checksum: Option<StoredChecksum>,
}

impl From<ObjectRecordV2> for ObjectRecord {
    fn from(v2: ObjectRecordV2) -> Self {
        ObjectRecord {
            size: v2.size,
            etag: v2.etag,
            last_modified_ms: v2.last_modified_ms,
            owner: v2.owner,
            acl: v2.acl,
            meta: v2.meta,
            location: v2.location,
            data: v2.data,
            parts: upgrade_parts(v2.parts),
            checksum: v2.checksum,
            upload_id: None,
            version: VersionInfo::default(),
        }
    }
}

/// Version 1 of [`ObjectRecord`]: its metadata has no tags.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ObjectRecordV1 {
    size: u64,
    etag: String,
    last_modified_ms: i64,
    owner: String,
    acl: Acl,
    meta: ObjectMetaV1,
    location: String,
    data: DataRef,
    parts: Vec<PartSummaryV1>,
    checksum: Option<StoredChecksum>,
}

impl From<ObjectRecordV1> for ObjectRecord {
    fn from(v1: ObjectRecordV1) -> Self {
        ObjectRecord {
            size: v1.size,
            etag: v1.etag,
            last_modified_ms: v1.last_modified_ms,
            owner: v1.owner,
            acl: v1.acl,
            meta: v1.meta.into(),
            location: v1.location,
            data: v1.data,
            parts: upgrade_parts(v1.parts),
            checksum: v1.checksum,
            upload_id: None,
            version: VersionInfo::default(),
        }
    }
}

/// Decodes the body of an older record version with postcard.
fn decode_old<T: serde::de::DeserializeOwned>(body: &[u8]) -> cloudmux_meta::Result<T> {
    postcard::from_bytes(body).map_err(|e| cloudmux_meta::MetaError::Corrupt(e.to_string()))
}

/// The error for a format version a record type does not know.
fn unknown_version(what: &str, v: u8) -> cloudmux_meta::MetaError {
    cloudmux_meta::MetaError::Corrupt(format!("{what}: unknown format version {v}"))
}

impl Record for ObjectRecord {
    const VERSION: u8 = 5;

    fn upgrade(version: u8, body: &[u8]) -> cloudmux_meta::Result<Self> {
        match version {
            4 => Ok(decode_old::<ObjectRecordV4>(body)?.into()),
            1 => Ok(decode_old::<ObjectRecordV1>(body)?.into()),
            2 => Ok(decode_old::<ObjectRecordV2>(body)?.into()),
            3 => Ok(decode_old::<ObjectRecordV3>(body)?.into()),
            v => Err(unknown_version("ObjectRecord", v)),
        }
    }
}

/// The Object Lock settings a write names for its new version (the
/// `x-amz-object-lock-*` headers), already checked against the bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteLock {
    /// The retention asked for; `None` lets the bucket's default retention
    /// apply.
    pub retention: Option<Retention>,
    /// The legal hold asked for.
    pub legal_hold: bool,
}

/// An in-progress multipart upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadRecord {
    /// Initiation time, ms since the epoch.
    pub initiated_ms: i64,
    /// Initiator's canonical id (also the object owner).
    pub owner: String,
    /// ACL the object will get.
    pub acl: Acl,
    /// Metadata the object will get.
    pub meta: ObjectMeta,
    /// Location that will hold the data.
    pub location: String,
    /// The checksum algorithm declared at Create, and its type.
    pub checksum: Option<(ChecksumAlgorithm, ChecksumType)>,
    /// The Object Lock settings CreateMultipartUpload named, which the
    /// object gets at Complete (format version 3; `None` for uploads
    /// created without them and for older records).
    pub object_lock: Option<WriteLock>,
}

/// Version 2 of [`UploadRecord`]: no Object Lock settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct UploadRecordV2 {
    initiated_ms: i64,
    owner: String,
    acl: Acl,
    meta: ObjectMeta,
    location: String,
    checksum: Option<(ChecksumAlgorithm, ChecksumType)>,
}

impl From<UploadRecordV2> for UploadRecord {
    fn from(v2: UploadRecordV2) -> Self {
        UploadRecord {
            initiated_ms: v2.initiated_ms,
            owner: v2.owner,
            acl: v2.acl,
            meta: v2.meta,
            location: v2.location,
            checksum: v2.checksum,
            object_lock: None,
        }
    }
}

/// Version 1 of [`UploadRecord`]: its metadata has no tags.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct UploadRecordV1 {
    initiated_ms: i64,
    owner: String,
    acl: Acl,
    meta: ObjectMetaV1,
    location: String,
    checksum: Option<(ChecksumAlgorithm, ChecksumType)>,
}

impl Record for UploadRecord {
    const VERSION: u8 = 3;

    fn upgrade(version: u8, body: &[u8]) -> cloudmux_meta::Result<Self> {
        match version {
            2 => Ok(decode_old::<UploadRecordV2>(body)?.into()),
            1 => {
                let v1: UploadRecordV1 = decode_old(body)?;
                Ok(UploadRecordV2 {
                    initiated_ms: v1.initiated_ms,
                    owner: v1.owner,
                    acl: v1.acl,
                    meta: v1.meta.into(),
                    location: v1.location,
                    checksum: v1.checksum,
                }
                .into())
            }
            v => Err(unknown_version("UploadRecord", v)),
        }
    }
}

/// An uploaded part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartRecord {
    /// ETag (hex MD5) without quotes.
    pub etag: String,
    /// Size.
    pub size: u64,
    /// Upload time, ms since the epoch.
    pub last_modified_ms: i64,
    /// Where the bytes are staged.
    pub staged: Staged,
    /// The part's raw checksum, when the upload declared an algorithm.
    pub checksum: Option<Vec<u8>>,
}

impl Record for PartRecord {
    const VERSION: u8 = 1;
}

/// A write in flight that will replace an existing object's data: committed
/// before the new data is published over the old, removed with the commit of
/// the new record. After a crash, `Gateway::recover` finishes or drops it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntentRecord {
    /// The record the object will have (its `data` is filled in on publish).
    pub record: ObjectRecord,
    /// The staged data being published; `None` when the new version has no
    /// bytes (a delete marker).
    pub staged: Option<Staged>,
    /// Whether the current version is kept as a noncurrent version (format
    /// version 5): `Some(name)` with the name its bytes are kept under
    /// (`Backend::keep_version`), `Some("")` for a current version without
    /// bytes (a delete marker), `None` when the write replaces it.
    pub keep: Option<String>,
    /// A noncurrent version the write removes (its `v/` key): the `null`
    /// version that a write while versioning is suspended replaces, or the
    /// version a promotion makes current again.
    pub drop_version: Option<Vec<u8>>,
}

/// Version 4 of [`IntentRecord`]: a version 4 object record, always with
/// bytes, never keeping a version.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IntentRecordV4 {
    record: ObjectRecordV4,
    staged: Staged,
}

/// Version 3 of [`IntentRecord`]: its object record is a version 3 one.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IntentRecordV3 {
    record: ObjectRecordV3,
    staged: Staged,
}

/// Version 2 of [`IntentRecord`]: its object record is a version 2 one.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IntentRecordV2 {
    record: ObjectRecordV2,
    staged: Staged,
}

/// Version 1 of [`IntentRecord`]: its object record is a version 1 one.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IntentRecordV1 {
    record: ObjectRecordV1,
    staged: Staged,
}

impl Record for IntentRecord {
    const VERSION: u8 = 5;

    fn upgrade(version: u8, body: &[u8]) -> cloudmux_meta::Result<Self> {
        match version {
            4 => {
                let v4: IntentRecordV4 = decode_old(body)?;
                Ok(IntentRecord::of_old(v4.record.into(), v4.staged))
            }
            3 => {
                let v3: IntentRecordV3 = decode_old(body)?;
                Ok(IntentRecord::of_old(v3.record.into(), v3.staged))
            }
            2 => {
                let v2: IntentRecordV2 = decode_old(body)?;
                Ok(IntentRecord::of_old(v2.record.into(), v2.staged))
            }
            1 => {
                let v1: IntentRecordV1 = decode_old(body)?;
                Ok(IntentRecord::of_old(v1.record.into(), v1.staged))
            }
            v => Err(unknown_version("IntentRecord", v)),
        }
    }
}

impl IntentRecord {
    /// An intent of a format before versioning: a write with bytes that
    /// replaces the current version.
    fn of_old(record: ObjectRecord, staged: Staged) -> Self {
        IntentRecord {
            record,
            staged: Some(staged),
            keep: None,
            drop_version: None,
        }
    }
}

/// Prefix of all intent records.
pub const INTENTS_PREFIX: &[u8] = b"w/";

/// Key of the intent record of an object.
pub fn intent_key(bucket: &str, key: &str) -> Vec<u8> {
    [b"w/", bucket.as_bytes(), b"/", key.as_bytes()].concat()
}

/// A new key whose record names its staged copy (the two-phase commit of
/// new keys, see `commit.rs`): committed in the same transaction as that
/// record, removed with the record's move to the native name. After a crash,
/// `Gateway::recover` finishes the move; while it exists, garbage collection
/// keeps the staged copy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MoveRecord {
    /// The location holding the data.
    pub location: String,
    /// The staged data to move.
    pub staged: Staged,
    /// The staged data as the record names it (the move is due while the
    /// key's record still names exactly this).
    pub data: DataRef,
}

impl Record for MoveRecord {
    const VERSION: u8 = 1;
}

/// Prefix of all move records.
pub const MOVES_PREFIX: &[u8] = b"m/";

/// Key of the move record of an object.
pub fn move_key(bucket: &str, key: &str) -> Vec<u8> {
    [MOVES_PREFIX, bucket.as_bytes(), b"/", key.as_bytes()].concat()
}

/// Bytes that a committed change released (a deleted object's, or an
/// overwritten object's stored under another name): committed in the same
/// transaction as that change, removed once the bytes are gone. Recovery and
/// garbage collection remove what a crash or a failed removal left, after
/// checking under the key's lock that no record or intent of the key names
/// the same bytes again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GarbageRecord {
    /// The bucket whose key held the bytes.
    pub bucket: String,
    /// The key that held them.
    pub key: String,
    /// The location holding them.
    pub location: String,
    /// The bytes.
    pub data: DataRef,
}

impl Record for GarbageRecord {
    const VERSION: u8 = 1;
}

/// Prefix of all garbage records.
pub const GARBAGE_PREFIX: &[u8] = b"g/";

/// A new, unique garbage record key.
pub fn new_garbage_key() -> Vec<u8> {
    [GARBAGE_PREFIX, uuid::Uuid::new_v4().to_string().as_bytes()].concat()
}

/// Prefix of the markers of buckets being deleted.
pub const DELETING_PREFIX: &[u8] = b"x/";

/// Key of the marker that DeleteBucket commits before it checks that the
/// bucket is empty: while it exists, no write may add a key to the bucket.
pub fn deleting_key(bucket: &str) -> Vec<u8> {
    [DELETING_PREFIX, bucket.as_bytes()].concat()
}

/// Key of a bucket record.
pub fn bucket_key(bucket: &str) -> Vec<u8> {
    [b"b/", bucket.as_bytes()].concat()
}

/// First key of all bucket records.
pub const BUCKETS_PREFIX: &[u8] = b"b/";

/// Prefix of all object records of a bucket.
pub fn objects_prefix(bucket: &str) -> Vec<u8> {
    [b"o/", bucket.as_bytes(), b"/"].concat()
}

/// Key of an object record.
pub fn object_key(bucket: &str, key: &str) -> Vec<u8> {
    [b"o/", bucket.as_bytes(), b"/", key.as_bytes()].concat()
}

/// Prefix of all noncurrent version records of a bucket. The current
/// version of a key is its object record (`o/`); older ones are
/// `v/<bucket>/<key>\0<seq>`, `<seq>` the 16 hex digits of `!seq`, so a
/// key's versions scan newest first.
pub fn versions_prefix(bucket: &str) -> Vec<u8> {
    [b"v/", bucket.as_bytes(), b"/"].concat()
}

/// Prefix of the noncurrent version records of one key.
pub fn key_versions_prefix(bucket: &str, key: &str) -> Vec<u8> {
    [b"v/", bucket.as_bytes(), b"/", key.as_bytes(), b"\0"].concat()
}

/// Key of a noncurrent version record.
pub fn version_key(bucket: &str, key: &str, seq: u64) -> Vec<u8> {
    let mut k = key_versions_prefix(bucket, key);
    k.extend_from_slice(format!("{:016x}", !seq).as_bytes());
    k
}

/// Prefix of all upload records of a bucket.
pub fn uploads_prefix(bucket: &str) -> Vec<u8> {
    [b"u/", bucket.as_bytes(), b"/"].concat()
}

/// Key of an upload record.
pub fn upload_key(bucket: &str, key: &str, upload_id: &str) -> Vec<u8> {
    [
        b"u/",
        bucket.as_bytes(),
        b"/",
        key.as_bytes(),
        b"\0",
        upload_id.as_bytes(),
    ]
    .concat()
}

/// Prefix of the part records of an upload.
pub fn parts_prefix(upload_id: &str) -> Vec<u8> {
    [b"p/", upload_id.as_bytes(), b"/"].concat()
}

/// Key of a part record.
pub fn part_key(upload_id: &str, part: u32) -> Vec<u8> {
    let mut k = parts_prefix(upload_id);
    k.extend_from_slice(format!("{part:05}").as_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::CannedAcl;
    use cloudmux_meta::codec;

    #[test]
    fn bucket_record_v1_upgrades_to_current() {
        let v1 = BucketRecordV1 {
            owner: "o".into(),
            created_ms: 42,
            location: "local".into(),
            acl: CannedAcl::PublicRead.expand("o", None),
            explicit_location: true,
        };
        let mut bytes = vec![1u8];
        bytes.extend(postcard::to_stdvec(&v1).unwrap());
        let b: BucketRecord = codec::decode(&bytes).unwrap();
        assert_eq!(
            (b.owner.as_str(), b.created_ms, b.explicit_location),
            ("o", 42, true)
        );
        assert!(b.acl.is_public());
        assert!(b.cors.is_none() && b.public_access_block.is_none());
        assert!(b.tags.is_none() && b.policy.is_none());
        let again: BucketRecord = codec::decode(&codec::encode(&b)).unwrap();
        assert_eq!(again.acl, b.acl);
        assert_eq!(codec::encode(&b)[0], BucketRecord::VERSION);
        assert!(b.ownership.is_none());
    }

    #[test]
    fn bucket_record_v2_upgrades_to_current() {
        let v2 = BucketRecordV2 {
            owner: "o".into(),
            created_ms: 7,
            location: "local".into(),
            acl: CannedAcl::Private.expand("o", None),
            explicit_location: false,
            cors: Some(vec![CorsRule {
                allowed_origins: vec!["*".into()],
                allowed_methods: vec!["GET".into()],
                ..CorsRule::default()
            }]),
            public_access_block: Some(PublicAccessBlock {
                block_public_acls: true,
                ..PublicAccessBlock::default()
            }),
        };
        let mut bytes = vec![2u8];
        bytes.extend(postcard::to_stdvec(&v2).unwrap());
        let b: BucketRecord = codec::decode(&bytes).unwrap();
        assert_eq!((b.owner.as_str(), b.created_ms), ("o", 7));
        assert_eq!(b.cors, v2.cors);
        assert_eq!(b.public_access_block, v2.public_access_block);
        assert!(b.tags.is_none() && b.policy.is_none());
        assert!(b.ownership.is_none());
    }

    #[test]
    fn bucket_record_v3_upgrades_without_ownership() {
        let v3 = BucketRecordV3 {
            owner: "o".into(),
            created_ms: 9,
            location: "local".into(),
            acl: CannedAcl::PublicRead.expand("o", None),
            explicit_location: true,
            cors: None,
            public_access_block: None,
            tags: Some(vec![("k".into(), "v".into())]),
            policy: Some("{}".into()),
        };
        let mut bytes = vec![3u8];
        bytes.extend(postcard::to_stdvec(&v3).unwrap());
        let b: BucketRecord = codec::decode(&bytes).unwrap();
        assert_eq!((b.owner.as_str(), b.created_ms), ("o", 9));
        assert_eq!(b.tags, v3.tags);
        assert_eq!(b.policy, v3.policy);
        assert!(b.acl.is_public());
        // A bucket stored before Object Ownership keeps ACLs working.
        assert!(b.ownership.is_none());
        assert!(!b.acls_disabled());
        let mut b = b;
        b.ownership = Some(ObjectOwnership::BucketOwnerEnforced);
        let again: BucketRecord = codec::decode(&codec::encode(&b)).unwrap();
        assert_eq!(again.ownership, Some(ObjectOwnership::BucketOwnerEnforced));
    }

    fn object_v1() -> ObjectRecordV1 {
        ObjectRecordV1 {
            size: 3,
            etag: "abc".into(),
            last_modified_ms: 9,
            owner: "o".into(),
            acl: CannedAcl::Private.expand("o", None),
            meta: ObjectMetaV1 {
                headers: EntityHeaders {
                    content_type: Some("text/plain".into()),
                    ..EntityHeaders::default()
                },
                user: vec![("a".into(), "b".into())],
                storage_class: None,
            },
            location: "local".into(),
            data: DataRef {
                locator: "b/k".into(),
                size: 3,
                stamp: 5,
            },
            parts: Vec::new(),
            checksum: None,
        }
    }

    #[test]
    fn object_record_v1_upgrades_without_tags() {
        let mut bytes = vec![1u8];
        bytes.extend(postcard::to_stdvec(&object_v1()).unwrap());
        let r: ObjectRecord = codec::decode(&bytes).unwrap();
        assert_eq!((r.size, r.etag.as_str(), r.data.stamp), (3, "abc", 5));
        assert_eq!(r.meta.user, vec![("a".to_owned(), "b".to_owned())]);
        assert_eq!(r.meta.headers.content_type.as_deref(), Some("text/plain"));
        assert!(r.meta.tags.is_empty());
        let mut tagged = r.clone();
        tagged.meta.tags = vec![("k".into(), "v".into())];
        let bytes = codec::encode(&tagged);
        assert_eq!(bytes[0], ObjectRecord::VERSION);
        let again: ObjectRecord = codec::decode(&bytes).unwrap();
        assert_eq!(again.meta, tagged.meta);
    }

    #[test]
    fn object_and_intent_records_v2_upgrade_without_upload_id() {
        let v1 = object_v1();
        let v2 = ObjectRecordV2 {
            size: v1.size,
            etag: v1.etag.clone(),
            last_modified_ms: v1.last_modified_ms,
            owner: v1.owner.clone(),
            acl: v1.acl.clone(),
            meta: v1.meta.clone().into(),
            location: v1.location.clone(),
            data: v1.data.clone(),
            parts: Vec::new(),
            checksum: None,
        };
        let mut bytes = vec![2u8];
        bytes.extend(postcard::to_stdvec(&v2).unwrap());
        let r: ObjectRecord = codec::decode(&bytes).unwrap();
        assert_eq!((r.size, r.etag.as_str(), r.upload_id), (3, "abc", None));
        let intent = IntentRecordV2 {
            record: v2,
            staged: Staged {
                id: "s".into(),
                size: 3,
                stamp: 5,
            },
        };
        let mut bytes = vec![2u8];
        bytes.extend(postcard::to_stdvec(&intent).unwrap());
        let i: IntentRecord = codec::decode(&bytes).unwrap();
        assert_eq!(
            (
                i.record.etag.as_str(),
                i.staged.as_ref().unwrap().id.as_str()
            ),
            ("abc", "s")
        );
        let mut completed = i.record.clone();
        completed.upload_id = Some("u-1".into());
        let again: ObjectRecord = codec::decode(&codec::encode(&completed)).unwrap();
        assert_eq!(again.upload_id.as_deref(), Some("u-1"));
    }

    #[test]
    fn object_and_intent_records_v3_upgrade_without_part_checksums() {
        let v1 = object_v1();
        let v3 = ObjectRecordV3 {
            size: 10,
            etag: "abc-2".into(),
            last_modified_ms: v1.last_modified_ms,
            owner: v1.owner.clone(),
            acl: v1.acl.clone(),
            meta: v1.meta.clone().into(),
            location: v1.location.clone(),
            data: v1.data.clone(),
            parts: vec![PartSummaryV1 { size: 6 }, PartSummaryV1 { size: 4 }],
            checksum: Some(StoredChecksum {
                algorithm: ChecksumAlgorithm::Crc32,
                value: "AAAAAA==-2".into(),
                kind: ChecksumType::Composite,
            }),
            upload_id: Some("u-1".into()),
        };
        let mut bytes = vec![3u8];
        bytes.extend(postcard::to_stdvec(&v3).unwrap());
        let r: ObjectRecord = codec::decode(&bytes).unwrap();
        assert_eq!(r.upload_id.as_deref(), Some("u-1"));
        assert_eq!(r.checksum, v3.checksum);
        assert_eq!(
            r.parts,
            vec![
                PartSummary {
                    size: 6,
                    checksum: None
                },
                PartSummary {
                    size: 4,
                    checksum: None
                }
            ]
        );
        let intent = IntentRecordV3 {
            record: v3,
            staged: Staged {
                id: "s".into(),
                size: 10,
                stamp: 5,
            },
        };
        let mut bytes = vec![3u8];
        bytes.extend(postcard::to_stdvec(&intent).unwrap());
        let i: IntentRecord = codec::decode(&bytes).unwrap();
        assert_eq!(
            (i.record.parts.len(), i.staged.as_ref().unwrap().id.as_str()),
            (2, "s")
        );
        let mut current = i.record.clone();
        current.parts[1].checksum = Some(vec![1, 2, 3, 4]);
        let bytes = codec::encode(&current);
        assert_eq!(bytes[0], ObjectRecord::VERSION);
        let again: ObjectRecord = codec::decode(&bytes).unwrap();
        assert_eq!(again.parts, current.parts);
    }

    #[test]
    fn upload_record_v2_upgrades_without_object_lock() {
        let v2 = UploadRecordV2 {
            initiated_ms: 5,
            owner: "o".into(),
            acl: CannedAcl::Private.expand("o", None),
            meta: ObjectMeta {
                tags: vec![("k".into(), "v".into())],
                ..ObjectMeta::default()
            },
            location: "local".into(),
            checksum: Some((ChecksumAlgorithm::Crc32, ChecksumType::FullObject)),
        };
        let mut bytes = vec![2u8];
        bytes.extend(postcard::to_stdvec(&v2).unwrap());
        let u: UploadRecord = codec::decode(&bytes).unwrap();
        assert_eq!((u.initiated_ms, u.owner.as_str()), (5, "o"));
        assert_eq!(u.meta.tags, v2.meta.tags);
        assert_eq!(u.checksum, v2.checksum);
        assert!(u.object_lock.is_none());
        let mut locked = u.clone();
        locked.object_lock = Some(WriteLock {
            retention: Some(Retention {
                mode: LockMode::Compliance,
                until_ms: 1_900_000_000_000,
            }),
            legal_hold: true,
        });
        let bytes = codec::encode(&locked);
        assert_eq!(bytes[0], 3);
        let again: UploadRecord = codec::decode(&bytes).unwrap();
        assert_eq!(again.object_lock, locked.object_lock);
    }

    #[test]
    fn upload_and_intent_records_v1_upgrade() {
        let v1 = object_v1();
        let up = UploadRecordV1 {
            initiated_ms: 1,
            owner: "o".into(),
            acl: v1.acl.clone(),
            meta: v1.meta.clone(),
            location: "local".into(),
            checksum: None,
        };
        let mut bytes = vec![1u8];
        bytes.extend(postcard::to_stdvec(&up).unwrap());
        let u: UploadRecord = codec::decode(&bytes).unwrap();
        assert_eq!((u.initiated_ms, u.location.as_str()), (1, "local"));
        assert!(u.meta.tags.is_empty());
        let intent = IntentRecordV1 {
            record: v1,
            staged: Staged {
                id: "s".into(),
                size: 3,
                stamp: 5,
            },
        };
        let mut bytes = vec![1u8];
        bytes.extend(postcard::to_stdvec(&intent).unwrap());
        let i: IntentRecord = codec::decode(&bytes).unwrap();
        assert_eq!(
            (
                i.record.etag.as_str(),
                i.staged.as_ref().unwrap().id.as_str()
            ),
            ("abc", "s")
        );
        assert!(i.record.meta.tags.is_empty());
        assert!(codec::decode::<IntentRecord>(&[9u8, 0]).is_err());
    }

    #[test]
    fn version_4_records_upgrade_to_the_null_version() {
        let v1 = object_v1();
        let v4 = ObjectRecordV4 {
            size: 3,
            etag: "abc".into(),
            last_modified_ms: 9,
            owner: v1.owner.clone(),
            acl: v1.acl.clone(),
            meta: v1.meta.clone().into(),
            location: "local".into(),
            data: v1.data.clone(),
            parts: vec![PartSummary {
                size: 3,
                checksum: Some(vec![1, 2, 3, 4]),
            }],
            checksum: None,
            upload_id: Some("u-1".into()),
        };
        let mut bytes = vec![4u8];
        bytes.extend(postcard::to_stdvec(&v4).unwrap());
        let r: ObjectRecord = codec::decode(&bytes).unwrap();
        assert_eq!(r.upload_id.as_deref(), Some("u-1"));
        assert_eq!(r.parts[0].checksum, Some(vec![1, 2, 3, 4]));
        // A record from before versioning is the null version, oldest of
        // all, unlocked, not a delete marker.
        assert_eq!(r.version, VersionInfo::default());
        let intent = IntentRecordV4 {
            record: v4,
            staged: Staged {
                id: "s".into(),
                size: 3,
                stamp: 5,
            },
        };
        let mut bytes = vec![4u8];
        bytes.extend(postcard::to_stdvec(&intent).unwrap());
        let i: IntentRecord = codec::decode(&bytes).unwrap();
        assert_eq!(i.staged.as_ref().map(|s| s.id.as_str()), Some("s"));
        assert_eq!((i.keep, i.drop_version), (None, None));
        let mut versioned = i.record.clone();
        versioned.version = VersionInfo {
            id: Some("ab".repeat(16)),
            seq: 7,
            delete_marker: true,
            retention: Some(Retention {
                mode: LockMode::Compliance,
                until_ms: 99,
            }),
            legal_hold: true,
        };
        let bytes = codec::encode(&versioned);
        assert_eq!(bytes[0], 5);
        let again: ObjectRecord = codec::decode(&bytes).unwrap();
        assert_eq!(again.version, versioned.version);
    }

    #[test]
    fn bucket_record_v4_upgrades_unversioned_and_unlocked() {
        let v4 = BucketRecordV4 {
            owner: "o".into(),
            created_ms: 9,
            location: "local".into(),
            acl: CannedAcl::Private.expand("o", None),
            explicit_location: false,
            cors: None,
            public_access_block: None,
            tags: None,
            policy: None,
            ownership: Some(ObjectOwnership::BucketOwnerEnforced),
        };
        let mut bytes = vec![4u8];
        bytes.extend(postcard::to_stdvec(&v4).unwrap());
        let b: BucketRecord = codec::decode(&bytes).unwrap();
        assert_eq!(b.ownership, Some(ObjectOwnership::BucketOwnerEnforced));
        assert_eq!((b.versioning, b.object_lock.clone()), (None, None));
        let mut b = b;
        b.versioning = Some(Versioning::Suspended);
        b.object_lock = Some(ObjectLockConfig {
            default_retention: Some(DefaultRetention {
                mode: LockMode::Governance,
                days: Some(1),
                years: None,
            }),
        });
        let again: BucketRecord = codec::decode(&codec::encode(&b)).unwrap();
        assert_eq!(again.versioning, Some(Versioning::Suspended));
        assert_eq!(again.object_lock, b.object_lock);
    }
}
