//! The core's error enum. The S3 front end maps each variant to an S3 error
//! code in its own `error.rs`; nothing here knows HTTP.

use cloudmux_data::{BodyError, DataError};
use cloudmux_meta::MetaError;

/// Everything a gateway operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The bucket does not exist.
    #[error("no such bucket: {0}")]
    NoSuchBucket(String),
    /// The object does not exist.
    #[error("no such key: {0}")]
    NoSuchKey(String),
    /// The multipart upload does not exist (or was completed or aborted).
    #[error("no such upload: {0}")]
    NoSuchUpload(String),
    /// The caller's own bucket already has this name.
    #[error("bucket already owned by you: {0}")]
    BucketAlreadyOwnedByYou(String),
    /// Another account's bucket has this name.
    #[error("bucket already exists: {0}")]
    BucketAlreadyExists(String),
    /// DeleteBucket on a bucket that still holds objects.
    #[error("bucket not empty: {0}")]
    BucketNotEmpty(String),
    /// A conflicting operation on the resource is in progress (a write to a
    /// bucket that DeleteBucket is deleting); the client may retry.
    #[error("operation aborted: {0}")]
    OperationAborted(String),
    /// The bucket name breaks the naming rules.
    #[error("invalid bucket name: {0}")]
    InvalidBucketName(String),
    /// The key is longer than 1024 bytes.
    #[error("key too long")]
    KeyTooLong,
    /// The key is not acceptable (NUL and other control bytes).
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A LocationConstraint or placement header names no configured location.
    #[error("invalid location constraint: {0}")]
    InvalidLocationConstraint(String),
    /// The principal lacks the permission.
    #[error("access denied")]
    AccessDenied,
    /// A conditional request's precondition failed (412), naming the
    /// condition as S3's error document does (`If-Match`,
    /// `If-Unmodified-Since`, `If-None-Match`, `If-Modified-Since`, with the
    /// `x-amz-copy-source-` prefix for a copy's source), when one did.
    #[error("precondition failed")]
    PreconditionFailed(Option<&'static str>),
    /// A conditional write whose condition held when it started was
    /// overtaken by another write or delete of the key that finished before
    /// its commit (409); the client may retry.
    #[error("conditional request conflict")]
    ConditionalRequestConflict,
    /// A conditional GET found the object unchanged (304).
    #[error("not modified")]
    NotModified {
        /// ETag of the current object.
        etag: String,
        /// Last-Modified of the current object, ms since the epoch.
        last_modified_ms: i64,
    },
    /// The requested range cannot be satisfied; carries the object size.
    #[error("invalid range")]
    InvalidRange(u64),
    /// `partNumber` names a part the object does not have.
    #[error("invalid part number {requested} of {actual}")]
    InvalidPartNumber {
        /// The part number asked for.
        requested: u32,
        /// How many parts the object has (1 for an object not uploaded in
        /// parts).
        actual: u32,
    },
    /// A part in CompleteMultipartUpload is missing or its ETag differs.
    #[error("invalid part: {0}")]
    InvalidPart(String),
    /// The part list of CompleteMultipartUpload is not in ascending order.
    #[error("invalid part order")]
    InvalidPartOrder,
    /// A checksum declared for a whole object or a part (on
    /// CompleteMultipartUpload) does not match what was stored; the message
    /// says which.
    #[error("bad digest: {0}")]
    BadDigest(String),
    /// A part other than the last is under 5 MiB.
    #[error("entity too small")]
    EntityTooSmall,
    /// An argument is out of range or malformed; the message says which.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The request is invalid as a whole; the message says why.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The operation or option is not supported.
    #[error("not implemented: {0}")]
    NotImplemented(String),
    /// The body failed (digest mismatch, broken chunk signature, short body).
    #[error(transparent)]
    Body(BodyError),
    /// The data backend is unavailable (transient).
    #[error("location {location} unavailable: {message}")]
    Unavailable {
        /// Location name.
        location: String,
        /// What failed.
        message: String,
    },
    /// The location's storage is full (ENOSPC, EDQUOT): writes there fail,
    /// reads go on.
    #[error("location {location} is out of space")]
    StorageFull {
        /// Location name.
        location: String,
    },
    /// A tag set breaks AWS's tagging rules; the message says which.
    #[error("invalid tag: {0}")]
    InvalidTag(String),
    /// A request document is not well formed or misses required parts.
    #[error("malformed XML")]
    MalformedXml,
    /// A bucket policy document was refused; the message says why.
    #[error("malformed policy: {0}")]
    MalformedPolicy(String),
    /// A bucket policy document is over 20 KB.
    #[error("policy too large")]
    PolicyTooLarge,
    /// The bucket's ACLs are disabled (Object Ownership
    /// `BucketOwnerEnforced`) and the request sets an ACL other than the
    /// bucket owner's full control.
    #[error("ACLs are disabled on the bucket")]
    AccessControlListNotSupported,
    /// ACLs cannot be disabled (`BucketOwnerEnforced`) on a bucket whose ACL
    /// grants anything to others than its owner.
    #[error("the bucket ACL grants access while ACLs would be disabled")]
    InvalidBucketAclWithObjectOwnership,
    /// The bucket has no policy.
    #[error("no bucket policy on {0}")]
    NoSuchBucketPolicy(String),
    /// The metadata store failed: logged with its source, shown to clients
    /// as InternalError.
    #[error("metadata store")]
    Metadata(#[from] MetaError),
    /// A location failed in a way no other variant covers (an I/O error,
    /// data missing or changed underneath, refused credentials): logged with
    /// its source, shown to clients as InternalError.
    #[error("location {location:?}")]
    Data {
        /// The location, when known.
        location: String,
        /// What the location answered.
        #[source]
        source: DataError,
    },
    /// An object's stored data no longer matches its record (size, inode
    /// and mtime on `fs`, ETag or generation on the clouds): it was changed
    /// or removed outside cloudmux. Never served under the old ETag.
    #[error("data of {bucket}/{key} in location {location} was changed or removed outside cloudmux: {detail}")]
    DataChanged {
        /// The location holding the data.
        location: String,
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// What differs.
        detail: String,
    },
    /// The version named does not exist (404 NoSuchVersion).
    #[error("no such version {version_id} of {key}")]
    NoSuchVersion {
        /// Key.
        key: String,
        /// The version id asked for.
        version_id: String,
    },
    /// The version addressed is a delete marker: the key's current version
    /// when `by_id` is false (404 NoSuchKey), a version named by id otherwise
    /// (405 MethodNotAllowed). Either way S3 answers
    /// `x-amz-delete-marker: true` and the marker's version id.
    #[error("{key} is a delete marker")]
    DeleteMarker {
        /// Key.
        key: String,
        /// The delete marker's version id (`null` for the null version).
        version_id: String,
        /// Whether the request named the version.
        by_id: bool,
    },
    /// The request is not allowed in the bucket's state (409
    /// InvalidBucketState), such as suspending versioning under Object Lock.
    #[error("invalid bucket state: {0}")]
    InvalidBucketState(String),
    /// Object Lock protects the version a request would remove: a legal
    /// hold, or a retention that has not expired (GOVERNANCE without an
    /// allowed bypass).
    #[error("the version is protected by Object Lock")]
    ObjectLocked,
    /// GetObjectLockConfiguration of a bucket without Object Lock.
    #[error("no Object Lock configuration on {0}")]
    ObjectLockConfigurationNotFound(String),
    /// GetObjectRetention of a version without a retention.
    #[error("the version has no retention")]
    NoSuchObjectLockConfiguration,
    /// A write whose new version would be locked (a retention or a legal
    /// hold, named by the request or the bucket's default) came without an
    /// integrity check of its body (`Content-MD5`, or an additional
    /// checksum or its algorithm).
    #[error("an Object Lock write needs a declared digest")]
    LockWithoutDigest,
    /// Anything else: logged, shown to clients as InternalError.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<DataError> for CoreError {
    fn from(e: DataError) -> Self {
        match e {
            DataError::Body(b) => CoreError::Body(b),
            DataError::Unavailable(m) => CoreError::Unavailable {
                location: String::new(),
                message: m,
            },
            DataError::Io(e) if is_disk_full(&e) => CoreError::StorageFull {
                location: String::new(),
            },
            // A cloud refused the location's credentials: a configuration
            // error, not an outage, so not 503. The message names the
            // location, and the front end logs it with the InternalError.
            e @ DataError::Misconfigured { .. } => CoreError::Data {
                location: String::new(),
                source: e,
            },
            other => CoreError::Data {
                location: String::new(),
                source: other,
            },
        }
    }
}

/// Whether an I/O error means the device or the quota is full.
fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// Result alias for this crate.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misconfigured_location_is_an_internal_error_naming_it() {
        let e = CoreError::from(DataError::Misconfigured {
            location: "aws-east".into(),
            message: "HeadBucket: HTTP 403 InvalidAccessKeyId".into(),
        });
        match &e {
            CoreError::Data { source, .. } => {
                let m = source.to_string();
                assert!(m.contains("location aws-east"), "{m}");
                assert!(m.contains("configuration error"), "{m}");
                assert!(m.contains("403 InvalidAccessKeyId"), "{m}");
            }
            other => panic!("expected Data, got {other:?}"),
        }
        // The source is kept, not flattened into a string.
        let source = std::error::Error::source(&e).expect("a source");
        assert!(source.to_string().contains("403 InvalidAccessKeyId"));
    }
}
