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
    const VERSION: u8 = 3;

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
        Ok(BucketRecord {
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
}

/// A part of a multipart object, kept for `partNumber` reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartSummary {
    /// Part size in bytes.
    pub size: u64,
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
}

impl Record for ObjectRecord {
    const VERSION: u8 = 1;
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
}

impl Record for UploadRecord {
    const VERSION: u8 = 1;
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
    /// The staged data being published.
    pub staged: Staged,
}

impl Record for IntentRecord {
    const VERSION: u8 = 1;
}

/// Prefix of all intent records.
pub const INTENTS_PREFIX: &[u8] = b"w/";

/// Key of the intent record of an object.
pub fn intent_key(bucket: &str, key: &str) -> Vec<u8> {
    [b"w/", bucket.as_bytes(), b"/", key.as_bytes()].concat()
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
        assert_eq!(codec::encode(&b)[0], 3);
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
    }
}
