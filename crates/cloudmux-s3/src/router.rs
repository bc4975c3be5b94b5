//! The S3 operation table: one enum, one classifier.
//!
//! [`Endpoint::classify`] turns a method, the addressed bucket and key, the
//! query parameters and a few headers into the operation. Each variant carries
//! nothing but what tells operations apart; handlers read their parameters from
//! the request.

use http::Method;

/// Every operation cloudmux answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /`.
    ListBuckets,
    /// `PUT /bucket`.
    CreateBucket,
    /// `HEAD /bucket`.
    HeadBucket,
    /// `DELETE /bucket`.
    DeleteBucket,
    /// `GET /bucket?location`.
    GetBucketLocation,
    /// `GET /bucket?versioning`.
    GetBucketVersioning,
    /// `PUT /bucket?versioning`.
    PutBucketVersioning,
    /// `GET /bucket?acl`.
    GetBucketAcl,
    /// `PUT /bucket?acl`.
    PutBucketAcl,
    /// `GET /bucket`.
    ListObjects,
    /// `GET /bucket?list-type=2`.
    ListObjectsV2,
    /// `GET /bucket?versions`.
    ListObjectVersions,
    /// `GET /bucket?uploads`.
    ListMultipartUploads,
    /// `POST /bucket?delete`.
    DeleteObjects,
    /// `GET /bucket?<subresource>` for a configuration that cannot be set yet:
    /// answered with S3's "not configured" error for that subresource.
    GetBucketConfigNotSet(&'static str),
    /// `PUT /bucket/key`.
    PutObject,
    /// `PUT /bucket/key` with `x-amz-copy-source`.
    CopyObject,
    /// `GET /bucket/key`.
    GetObject,
    /// `HEAD /bucket/key`.
    HeadObject,
    /// `GET /bucket/key?attributes`.
    GetObjectAttributes,
    /// `DELETE /bucket/key`.
    DeleteObject,
    /// `GET /bucket/key?acl`.
    GetObjectAcl,
    /// `PUT /bucket/key?acl`.
    PutObjectAcl,
    /// `POST /bucket/key?uploads`.
    CreateMultipartUpload,
    /// `PUT /bucket/key?partNumber&uploadId`.
    UploadPart,
    /// `PUT /bucket/key?partNumber&uploadId` with `x-amz-copy-source`.
    UploadPartCopy,
    /// `POST /bucket/key?uploadId`.
    CompleteMultipartUpload,
    /// `DELETE /bucket/key?uploadId`.
    AbortMultipartUpload,
    /// `GET /bucket/key?uploadId`.
    ListParts,
    /// `PUT /bucket?cors`.
    PutBucketCors,
    /// `GET /bucket?cors`.
    GetBucketCors,
    /// `DELETE /bucket?cors`.
    DeleteBucketCors,
    /// `PUT /bucket?publicAccessBlock`.
    PutPublicAccessBlock,
    /// `GET /bucket?publicAccessBlock`.
    GetPublicAccessBlock,
    /// `DELETE /bucket?publicAccessBlock`.
    DeletePublicAccessBlock,
    /// `PUT /bucket?ownershipControls`.
    PutBucketOwnershipControls,
    /// `GET /bucket?ownershipControls`.
    GetBucketOwnershipControls,
    /// `DELETE /bucket?ownershipControls`.
    DeleteBucketOwnershipControls,
    /// `PUT /bucket/key?tagging`.
    PutObjectTagging,
    /// `GET /bucket/key?tagging`.
    GetObjectTagging,
    /// `DELETE /bucket/key?tagging`.
    DeleteObjectTagging,
    /// `PUT /bucket?tagging`.
    PutBucketTagging,
    /// `GET /bucket?tagging`.
    GetBucketTagging,
    /// `DELETE /bucket?tagging`.
    DeleteBucketTagging,
    /// `PUT /bucket?policy`.
    PutBucketPolicy,
    /// `GET /bucket?policy`.
    GetBucketPolicy,
    /// `DELETE /bucket?policy`.
    DeleteBucketPolicy,
    /// `GET /bucket?policyStatus`.
    GetBucketPolicyStatus,
    /// `PUT /bucket?encryption`.
    PutBucketEncryption,
    /// `GET /bucket?encryption`.
    GetBucketEncryption,
    /// `DELETE /bucket?encryption`.
    DeleteBucketEncryption,
    /// `PUT /bucket?object-lock`.
    PutObjectLockConfiguration,
    /// `GET /bucket?object-lock`.
    GetObjectLockConfiguration,
    /// `PUT /bucket/key?retention`.
    PutObjectRetention,
    /// `GET /bucket/key?retention`.
    GetObjectRetention,
    /// `PUT /bucket/key?legal-hold`.
    PutObjectLegalHold,
    /// `GET /bucket/key?legal-hold`.
    GetObjectLegalHold,
    /// `POST /bucket` with `multipart/form-data`: browser-based upload.
    PostObject,
    /// `OPTIONS /bucket[/key]`: a CORS preflight, answered without
    /// authentication.
    CorsPreflight,
    /// Recognised but not implemented; carries the subresource or feature.
    NotImplemented(&'static str),
    /// A method the resource does not accept.
    MethodNotAllowed,
}

/// Bucket subresources whose GET has a "not configured" answer (its S3
/// error code is chosen by `S3Error::config_not_found`).
const BUCKET_CONFIG: &[&str] = &[
    "cors",
    "lifecycle",
    "policy",
    "website",
    "replication",
    "publicAccessBlock",
    "ownershipControls",
];

/// Other subresources S3 defines that cloudmux does not implement. Each one
/// must be here, or a request for it would be taken for the plain bucket or
/// object operation of its method (a `PUT ?annotation` for a PutObject).
const UNSUPPORTED: &[&str] = &[
    "abac",
    "accelerate",
    "analytics",
    "annotation",
    "intelligent-tiering",
    "inventory",
    "logging",
    "metadataAnnotationTable",
    "metadataConfiguration",
    "metadataInventoryTable",
    "metadataJournalTable",
    "metadataTable",
    "metrics",
    "notification",
    "requestPayment",
    "restore",
    "select",
    "torrent",
    "session",
    "renameObject",
];

impl Endpoint {
    /// Classifies a request. `has` says whether a query parameter is present;
    /// `copy_source` whether `x-amz-copy-source` is.
    pub fn classify(
        method: &Method,
        bucket: Option<&str>,
        key: Option<&str>,
        has: impl Fn(&str) -> bool,
        list_type: Option<&str>,
        copy_source: bool,
    ) -> Endpoint {
        use Endpoint as E;
        let Some(_bucket) = bucket else {
            return match *method {
                Method::GET => E::ListBuckets,
                _ => E::MethodNotAllowed,
            };
        };
        if *method == Method::OPTIONS {
            return E::CorsPreflight;
        }
        if key.is_none() && has("cors") {
            return match *method {
                Method::GET => E::GetBucketCors,
                Method::PUT => E::PutBucketCors,
                Method::DELETE => E::DeleteBucketCors,
                _ => E::MethodNotAllowed,
            };
        }
        if key.is_none() && has("publicAccessBlock") {
            return match *method {
                Method::GET => E::GetPublicAccessBlock,
                Method::PUT => E::PutPublicAccessBlock,
                Method::DELETE => E::DeletePublicAccessBlock,
                _ => E::MethodNotAllowed,
            };
        }
        if key.is_none() && has("ownershipControls") {
            return match *method {
                Method::GET => E::GetBucketOwnershipControls,
                Method::PUT => E::PutBucketOwnershipControls,
                Method::DELETE => E::DeleteBucketOwnershipControls,
                _ => E::MethodNotAllowed,
            };
        }
        if has("tagging") {
            return match (method.clone(), key.is_some()) {
                (Method::GET, false) => E::GetBucketTagging,
                (Method::PUT, false) => E::PutBucketTagging,
                (Method::DELETE, false) => E::DeleteBucketTagging,
                (Method::GET, true) => E::GetObjectTagging,
                (Method::PUT, true) => E::PutObjectTagging,
                (Method::DELETE, true) => E::DeleteObjectTagging,
                _ => E::MethodNotAllowed,
            };
        }
        if key.is_none() && has("policy") {
            return match *method {
                Method::GET => E::GetBucketPolicy,
                Method::PUT => E::PutBucketPolicy,
                Method::DELETE => E::DeleteBucketPolicy,
                _ => E::MethodNotAllowed,
            };
        }
        if has("encryption") {
            if key.is_some() {
                // UpdateObjectEncryption: never a PutObject, GetObject or
                // DeleteObject of the object.
                return E::NotImplemented("encryption");
            }
            return match *method {
                Method::GET => E::GetBucketEncryption,
                Method::PUT => E::PutBucketEncryption,
                Method::DELETE => E::DeleteBucketEncryption,
                _ => E::MethodNotAllowed,
            };
        }
        if has("object-lock") {
            if key.is_some() {
                // A bucket subresource: never an operation on the object.
                return E::NotImplemented("object-lock");
            }
            return match *method {
                Method::GET => E::GetObjectLockConfiguration,
                Method::PUT => E::PutObjectLockConfiguration,
                _ => E::MethodNotAllowed,
            };
        }
        for (sub, get, put) in [
            ("retention", E::GetObjectRetention, E::PutObjectRetention),
            ("legal-hold", E::GetObjectLegalHold, E::PutObjectLegalHold),
        ] {
            if has(sub) {
                if key.is_none() {
                    // Object subresources: never an operation on the bucket.
                    return E::NotImplemented(sub);
                }
                return match *method {
                    Method::GET => get,
                    Method::PUT => put,
                    _ => E::MethodNotAllowed,
                };
            }
        }
        if key.is_none() && has("policyStatus") {
            return match *method {
                Method::GET => E::GetBucketPolicyStatus,
                _ => E::MethodNotAllowed,
            };
        }
        for sub in BUCKET_CONFIG {
            if has(sub) {
                if key.is_none() && *method == Method::GET {
                    return E::GetBucketConfigNotSet(sub);
                }
                return E::NotImplemented(sub);
            }
        }
        for sub in UNSUPPORTED {
            if has(sub) {
                return E::NotImplemented(sub);
            }
        }
        match key {
            None => match *method {
                Method::GET if has("acl") => E::GetBucketAcl,
                Method::GET if has("location") => E::GetBucketLocation,
                Method::GET if has("versioning") => E::GetBucketVersioning,
                Method::GET if has("uploads") => E::ListMultipartUploads,
                Method::GET if has("versions") => E::ListObjectVersions,
                Method::GET if list_type == Some("2") => E::ListObjectsV2,
                Method::GET => E::ListObjects,
                Method::PUT if has("acl") => E::PutBucketAcl,
                Method::PUT if has("versioning") => E::PutBucketVersioning,
                Method::PUT => E::CreateBucket,
                Method::HEAD => E::HeadBucket,
                Method::DELETE => E::DeleteBucket,
                Method::POST if has("delete") => E::DeleteObjects,
                Method::POST => E::PostObject,
                _ => E::MethodNotAllowed,
            },
            Some(_) => match *method {
                Method::GET if has("acl") => E::GetObjectAcl,
                Method::GET if has("uploadId") => E::ListParts,
                Method::GET if has("attributes") => E::GetObjectAttributes,
                Method::GET => E::GetObject,
                Method::HEAD => E::HeadObject,
                Method::PUT if has("acl") => E::PutObjectAcl,
                Method::PUT if has("partNumber") && has("uploadId") => {
                    if copy_source {
                        E::UploadPartCopy
                    } else {
                        E::UploadPart
                    }
                }
                Method::PUT if copy_source => E::CopyObject,
                Method::PUT => E::PutObject,
                Method::DELETE if has("uploadId") => E::AbortMultipartUpload,
                Method::DELETE => E::DeleteObject,
                Method::POST if has("uploads") => E::CreateMultipartUpload,
                Method::POST if has("uploadId") => E::CompleteMultipartUpload,
                _ => E::MethodNotAllowed,
            },
        }
    }

    /// Every endpoint the classifier can return: each unit variant once,
    /// and each variant with a subresource once per subresource it can carry.
    /// `matrix_tests` checks that no variant is missing.
    pub fn all() -> Vec<Endpoint> {
        use Endpoint as E;
        let mut all = vec![
            E::ListBuckets,
            E::CreateBucket,
            E::HeadBucket,
            E::DeleteBucket,
            E::GetBucketLocation,
            E::GetBucketVersioning,
            E::PutBucketVersioning,
            E::GetBucketAcl,
            E::PutBucketAcl,
            E::ListObjects,
            E::ListObjectsV2,
            E::ListObjectVersions,
            E::ListMultipartUploads,
            E::DeleteObjects,
            E::PutObject,
            E::CopyObject,
            E::GetObject,
            E::HeadObject,
            E::GetObjectAttributes,
            E::DeleteObject,
            E::GetObjectAcl,
            E::PutObjectAcl,
            E::CreateMultipartUpload,
            E::UploadPart,
            E::UploadPartCopy,
            E::CompleteMultipartUpload,
            E::AbortMultipartUpload,
            E::ListParts,
            E::PutBucketCors,
            E::GetBucketCors,
            E::DeleteBucketCors,
            E::PutPublicAccessBlock,
            E::GetPublicAccessBlock,
            E::DeletePublicAccessBlock,
            E::PutBucketOwnershipControls,
            E::GetBucketOwnershipControls,
            E::DeleteBucketOwnershipControls,
            E::PutObjectTagging,
            E::GetObjectTagging,
            E::DeleteObjectTagging,
            E::PutBucketTagging,
            E::GetBucketTagging,
            E::DeleteBucketTagging,
            E::PutBucketPolicy,
            E::GetBucketPolicy,
            E::DeleteBucketPolicy,
            E::GetBucketPolicyStatus,
            E::PutBucketEncryption,
            E::GetBucketEncryption,
            E::DeleteBucketEncryption,
            E::PutObjectLockConfiguration,
            E::GetObjectLockConfiguration,
            E::PutObjectRetention,
            E::GetObjectRetention,
            E::PutObjectLegalHold,
            E::GetObjectLegalHold,
            E::PostObject,
            E::CorsPreflight,
            E::MethodNotAllowed,
        ];
        // A configuration with its own handler never reaches the "not set"
        // answer, so only what the classifier really returns is listed.
        for sub in BUCKET_CONFIG {
            let ep = Self::classify(&Method::GET, Some("b"), None, |k| k == *sub, None, false);
            if ep == E::GetBucketConfigNotSet(sub) {
                all.push(ep);
            }
        }
        let refused = BUCKET_CONFIG.iter().chain(UNSUPPORTED).chain(&[
            "encryption",
            "object-lock",
            "retention",
            "legal-hold",
        ]);
        all.extend(refused.map(|sub| E::NotImplemented(sub)));
        all
    }

    /// The operations of the S3 API reference this endpoint answers, by
    /// their API names (`docs/s3-compatibility.md` has one row for each);
    /// empty for the endpoints that answer with an error only.
    pub fn s3_operations(self) -> &'static [&'static str] {
        use Endpoint as E;
        match self {
            E::ListBuckets => &["ListBuckets"],
            E::CreateBucket => &["CreateBucket"],
            E::HeadBucket => &["HeadBucket"],
            E::DeleteBucket => &["DeleteBucket"],
            E::GetBucketLocation => &["GetBucketLocation"],
            E::GetBucketVersioning => &["GetBucketVersioning"],
            E::PutBucketVersioning => &["PutBucketVersioning"],
            E::GetBucketAcl => &["GetBucketAcl"],
            E::PutBucketAcl => &["PutBucketAcl"],
            E::ListObjects => &["ListObjects"],
            E::ListObjectsV2 => &["ListObjectsV2"],
            E::ListObjectVersions => &["ListObjectVersions"],
            E::ListMultipartUploads => &["ListMultipartUploads"],
            E::DeleteObjects => &["DeleteObjects"],
            E::GetBucketConfigNotSet(sub) => match sub {
                "cors" => &["GetBucketCors"],
                "lifecycle" => &["GetBucketLifecycleConfiguration", "GetBucketLifecycle"],
                "policy" => &["GetBucketPolicy"],
                "website" => &["GetBucketWebsite"],
                "replication" => &["GetBucketReplication"],
                "encryption" => &["GetBucketEncryption"],
                "publicAccessBlock" => &["GetPublicAccessBlock"],
                "ownershipControls" => &["GetBucketOwnershipControls"],
                _ => &[],
            },
            E::PutObject => &["PutObject"],
            E::CopyObject => &["CopyObject"],
            E::GetObject => &["GetObject"],
            E::HeadObject => &["HeadObject"],
            E::GetObjectAttributes => &["GetObjectAttributes"],
            E::DeleteObject => &["DeleteObject"],
            E::GetObjectAcl => &["GetObjectAcl"],
            E::PutObjectAcl => &["PutObjectAcl"],
            E::CreateMultipartUpload => &["CreateMultipartUpload"],
            E::UploadPart => &["UploadPart"],
            E::UploadPartCopy => &["UploadPartCopy"],
            E::CompleteMultipartUpload => &["CompleteMultipartUpload"],
            E::AbortMultipartUpload => &["AbortMultipartUpload"],
            E::ListParts => &["ListParts"],
            E::PutBucketCors => &["PutBucketCors"],
            E::GetBucketCors => &["GetBucketCors"],
            E::DeleteBucketCors => &["DeleteBucketCors"],
            E::PutPublicAccessBlock => &["PutPublicAccessBlock"],
            E::GetPublicAccessBlock => &["GetPublicAccessBlock"],
            E::DeletePublicAccessBlock => &["DeletePublicAccessBlock"],
            E::PutBucketOwnershipControls => &["PutBucketOwnershipControls"],
            E::GetBucketOwnershipControls => &["GetBucketOwnershipControls"],
            E::DeleteBucketOwnershipControls => &["DeleteBucketOwnershipControls"],
            E::PutObjectTagging => &["PutObjectTagging"],
            E::GetObjectTagging => &["GetObjectTagging"],
            E::DeleteObjectTagging => &["DeleteObjectTagging"],
            E::PutBucketTagging => &["PutBucketTagging"],
            E::GetBucketTagging => &["GetBucketTagging"],
            E::DeleteBucketTagging => &["DeleteBucketTagging"],
            E::PutBucketPolicy => &["PutBucketPolicy"],
            E::GetBucketPolicy => &["GetBucketPolicy"],
            E::DeleteBucketPolicy => &["DeleteBucketPolicy"],
            E::GetBucketPolicyStatus => &["GetBucketPolicyStatus"],
            E::PutBucketEncryption => &["PutBucketEncryption"],
            E::GetBucketEncryption => &["GetBucketEncryption"],
            E::DeleteBucketEncryption => &["DeleteBucketEncryption"],
            E::PutObjectLockConfiguration => &["PutObjectLockConfiguration"],
            E::GetObjectLockConfiguration => &["GetObjectLockConfiguration"],
            E::PutObjectRetention => &["PutObjectRetention"],
            E::GetObjectRetention => &["GetObjectRetention"],
            E::PutObjectLegalHold => &["PutObjectLegalHold"],
            E::GetObjectLegalHold => &["GetObjectLegalHold"],
            E::PostObject => &["PostObject"],
            E::CorsPreflight => &["OPTIONS object"],
            E::NotImplemented(_) | E::MethodNotAllowed => &[],
        }
    }

    /// The operation name used in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::ListBuckets => "ListBuckets",
            Endpoint::CreateBucket => "CreateBucket",
            Endpoint::HeadBucket => "HeadBucket",
            Endpoint::DeleteBucket => "DeleteBucket",
            Endpoint::GetBucketLocation => "GetBucketLocation",
            Endpoint::GetBucketVersioning => "GetBucketVersioning",
            Endpoint::PutBucketVersioning => "PutBucketVersioning",
            Endpoint::GetBucketAcl => "GetBucketAcl",
            Endpoint::PutBucketAcl => "PutBucketAcl",
            Endpoint::ListObjects => "ListObjects",
            Endpoint::ListObjectsV2 => "ListObjectsV2",
            Endpoint::ListObjectVersions => "ListObjectVersions",
            Endpoint::ListMultipartUploads => "ListMultipartUploads",
            Endpoint::DeleteObjects => "DeleteObjects",
            Endpoint::GetBucketConfigNotSet(_) => "GetBucketConfig",
            Endpoint::PutObject => "PutObject",
            Endpoint::CopyObject => "CopyObject",
            Endpoint::GetObject => "GetObject",
            Endpoint::HeadObject => "HeadObject",
            Endpoint::GetObjectAttributes => "GetObjectAttributes",
            Endpoint::DeleteObject => "DeleteObject",
            Endpoint::GetObjectAcl => "GetObjectAcl",
            Endpoint::PutObjectAcl => "PutObjectAcl",
            Endpoint::CreateMultipartUpload => "CreateMultipartUpload",
            Endpoint::UploadPart => "UploadPart",
            Endpoint::UploadPartCopy => "UploadPartCopy",
            Endpoint::CompleteMultipartUpload => "CompleteMultipartUpload",
            Endpoint::AbortMultipartUpload => "AbortMultipartUpload",
            Endpoint::ListParts => "ListParts",
            Endpoint::PutBucketCors => "PutBucketCors",
            Endpoint::GetBucketCors => "GetBucketCors",
            Endpoint::DeleteBucketCors => "DeleteBucketCors",
            Endpoint::PutPublicAccessBlock => "PutPublicAccessBlock",
            Endpoint::GetPublicAccessBlock => "GetPublicAccessBlock",
            Endpoint::DeletePublicAccessBlock => "DeletePublicAccessBlock",
            Endpoint::PutBucketOwnershipControls => "PutBucketOwnershipControls",
            Endpoint::GetBucketOwnershipControls => "GetBucketOwnershipControls",
            Endpoint::DeleteBucketOwnershipControls => "DeleteBucketOwnershipControls",
            Endpoint::PutObjectTagging => "PutObjectTagging",
            Endpoint::GetObjectTagging => "GetObjectTagging",
            Endpoint::DeleteObjectTagging => "DeleteObjectTagging",
            Endpoint::PutBucketTagging => "PutBucketTagging",
            Endpoint::GetBucketTagging => "GetBucketTagging",
            Endpoint::DeleteBucketTagging => "DeleteBucketTagging",
            Endpoint::PutBucketPolicy => "PutBucketPolicy",
            Endpoint::GetBucketPolicy => "GetBucketPolicy",
            Endpoint::DeleteBucketPolicy => "DeleteBucketPolicy",
            Endpoint::GetBucketPolicyStatus => "GetBucketPolicyStatus",
            Endpoint::PutBucketEncryption => "PutBucketEncryption",
            Endpoint::GetBucketEncryption => "GetBucketEncryption",
            Endpoint::DeleteBucketEncryption => "DeleteBucketEncryption",
            Endpoint::PutObjectLockConfiguration => "PutObjectLockConfiguration",
            Endpoint::GetObjectLockConfiguration => "GetObjectLockConfiguration",
            Endpoint::PutObjectRetention => "PutObjectRetention",
            Endpoint::GetObjectRetention => "GetObjectRetention",
            Endpoint::PutObjectLegalHold => "PutObjectLegalHold",
            Endpoint::GetObjectLegalHold => "GetObjectLegalHold",
            Endpoint::PostObject => "PostObject",
            Endpoint::CorsPreflight => "CorsPreflight",
            Endpoint::NotImplemented(_) => "NotImplemented",
            Endpoint::MethodNotAllowed => "MethodNotAllowed",
        }
    }

    /// The S3 action of the operation on one version of an object (a
    /// request with `versionId`): AWS's `*Version*` actions; the action of
    /// [`Endpoint::s3_action`] for the others.
    pub fn s3_version_action(self) -> Option<&'static str> {
        use Endpoint as E;
        match self {
            E::GetObject | E::HeadObject => Some("s3:GetObjectVersion"),
            E::DeleteObject => Some("s3:DeleteObjectVersion"),
            E::GetObjectAcl => Some("s3:GetObjectVersionAcl"),
            E::PutObjectAcl => Some("s3:PutObjectVersionAcl"),
            E::GetObjectTagging => Some("s3:GetObjectVersionTagging"),
            E::PutObjectTagging => Some("s3:PutObjectVersionTagging"),
            E::DeleteObjectTagging => Some("s3:DeleteObjectVersionTagging"),
            E::GetObjectAttributes => Some("s3:GetObjectVersionAttributes"),
            other => other.s3_action(),
        }
    }

    /// The S3 action a bucket policy names the operation by (AWS's mapping;
    /// HeadObject is `s3:GetObject`, DeleteObjects `s3:DeleteObject` per
    /// key, the multipart writes `s3:PutObject`). `None` for operations no
    /// bucket policy governs.
    pub fn s3_action(self) -> Option<&'static str> {
        use Endpoint as E;
        Some(match self {
            E::ListBuckets => "s3:ListAllMyBuckets",
            E::CreateBucket => "s3:CreateBucket",
            E::HeadBucket | E::ListObjects | E::ListObjectsV2 => "s3:ListBucket",
            E::DeleteBucket => "s3:DeleteBucket",
            E::GetBucketLocation => "s3:GetBucketLocation",
            E::GetBucketVersioning => "s3:GetBucketVersioning",
            E::PutBucketVersioning => "s3:PutBucketVersioning",
            E::GetBucketAcl => "s3:GetBucketAcl",
            E::PutBucketAcl => "s3:PutBucketAcl",
            E::ListObjectVersions => "s3:ListBucketVersions",
            E::ListMultipartUploads => "s3:ListBucketMultipartUploads",
            E::DeleteObjects | E::DeleteObject => "s3:DeleteObject",
            E::GetBucketConfigNotSet(sub) => match sub {
                "lifecycle" => "s3:GetLifecycleConfiguration",
                "tagging" => "s3:GetBucketTagging",
                "website" => "s3:GetBucketWebsite",
                "replication" => "s3:GetReplicationConfiguration",
                "ownershipControls" => "s3:GetBucketOwnershipControls",
                "cors" => "s3:GetBucketCORS",
                "publicAccessBlock" => "s3:GetBucketPublicAccessBlock",
                _ => "s3:GetBucketPolicy",
            },
            E::PutObject
            | E::CopyObject
            | E::PostObject
            | E::CreateMultipartUpload
            | E::UploadPart
            | E::UploadPartCopy
            | E::CompleteMultipartUpload => "s3:PutObject",
            E::GetObject | E::HeadObject => "s3:GetObject",
            E::GetObjectAttributes => "s3:GetObjectAttributes",
            E::PutObjectTagging => "s3:PutObjectTagging",
            E::GetObjectTagging => "s3:GetObjectTagging",
            E::DeleteObjectTagging => "s3:DeleteObjectTagging",
            E::PutBucketTagging | E::DeleteBucketTagging => "s3:PutBucketTagging",
            E::GetBucketTagging => "s3:GetBucketTagging",
            E::GetObjectAcl => "s3:GetObjectAcl",
            E::PutObjectAcl => "s3:PutObjectAcl",
            E::AbortMultipartUpload => "s3:AbortMultipartUpload",
            E::ListParts => "s3:ListMultipartUploadParts",
            E::PutBucketCors | E::DeleteBucketCors => "s3:PutBucketCORS",
            E::GetBucketCors => "s3:GetBucketCORS",
            E::PutPublicAccessBlock | E::DeletePublicAccessBlock => "s3:PutBucketPublicAccessBlock",
            E::GetPublicAccessBlock => "s3:GetBucketPublicAccessBlock",
            E::PutBucketOwnershipControls | E::DeleteBucketOwnershipControls => {
                "s3:PutBucketOwnershipControls"
            }
            E::GetBucketOwnershipControls => "s3:GetBucketOwnershipControls",
            E::PutBucketPolicy => "s3:PutBucketPolicy",
            E::GetBucketPolicy => "s3:GetBucketPolicy",
            E::DeleteBucketPolicy => "s3:DeleteBucketPolicy",
            E::GetBucketPolicyStatus => "s3:GetBucketPolicyStatus",
            E::PutBucketEncryption | E::DeleteBucketEncryption => "s3:PutEncryptionConfiguration",
            E::GetBucketEncryption => "s3:GetEncryptionConfiguration",
            E::PutObjectLockConfiguration => "s3:PutBucketObjectLockConfiguration",
            E::GetObjectLockConfiguration => "s3:GetBucketObjectLockConfiguration",
            E::PutObjectRetention => "s3:PutObjectRetention",
            E::GetObjectRetention => "s3:GetObjectRetention",
            E::PutObjectLegalHold => "s3:PutObjectLegalHold",
            E::GetObjectLegalHold => "s3:GetObjectLegalHold",
            E::CorsPreflight | E::NotImplemented(_) | E::MethodNotAllowed => return None,
        })
    }
}

#[cfg(test)]
mod matrix_tests;

#[cfg(test)]
mod tests {
    use super::*;

    /// Classifies a request line as the AWS API reference writes them.
    fn c(line: &str, copy: bool) -> Endpoint {
        let (method, target) = line.split_once(' ').unwrap();
        let method: Method = method.parse().unwrap();
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut segs = path.trim_start_matches('/').splitn(2, '/');
        let bucket = segs.next().filter(|s| !s.is_empty());
        let key = segs.next().filter(|s| !s.is_empty());
        let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let has = |k: &str| params.iter().any(|(n, _)| n == k);
        let lt = params
            .iter()
            .find(|(n, _)| n == "list-type")
            .map(|(_, v)| v.as_str());
        Endpoint::classify(&method, bucket, key, has, lt, copy)
    }

    #[test]
    fn aws_documentation_examples() {
        use Endpoint as E;
        assert_eq!(c("GET /", false), E::ListBuckets);
        assert_eq!(c("PUT /amzn-s3-demo-bucket", false), E::CreateBucket);
        assert_eq!(c("HEAD /amzn-s3-demo-bucket", false), E::HeadBucket);
        assert_eq!(c("DELETE /amzn-s3-demo-bucket", false), E::DeleteBucket);
        assert_eq!(
            c("GET /amzn-s3-demo-bucket?location", false),
            E::GetBucketLocation
        );
        assert_eq!(c("GET /amzn-s3-demo-bucket?acl", false), E::GetBucketAcl);
        assert_eq!(c("PUT /amzn-s3-demo-bucket?acl", false), E::PutBucketAcl);
        assert_eq!(
            c(
                "GET /amzn-s3-demo-bucket?list-type=2&prefix=photos&delimiter=/",
                false
            ),
            E::ListObjectsV2
        );
        assert_eq!(
            c(
                "GET /amzn-s3-demo-bucket?prefix=N&marker=Ned&max-keys=40",
                false
            ),
            E::ListObjects
        );
        assert_eq!(
            c("GET /amzn-s3-demo-bucket?versions&key-marker=key2", false),
            E::ListObjectVersions
        );
        assert_eq!(
            c("GET /amzn-s3-demo-bucket?uploads&max-uploads=3", false),
            E::ListMultipartUploads
        );
        assert_eq!(
            c("POST /amzn-s3-demo-bucket?delete", false),
            E::DeleteObjects
        );
        assert_eq!(c("GET /amzn-s3-demo-bucket?cors", false), E::GetBucketCors);
        assert_eq!(c("PUT /amzn-s3-demo-bucket?cors", false), E::PutBucketCors);
        assert_eq!(
            c("DELETE /amzn-s3-demo-bucket?cors", false),
            E::DeleteBucketCors
        );
        assert_eq!(
            c("PUT /amzn-s3-demo-bucket?publicAccessBlock", false),
            E::PutPublicAccessBlock
        );
        assert_eq!(
            c("GET /amzn-s3-demo-bucket?publicAccessBlock", false),
            E::GetPublicAccessBlock
        );
        assert_eq!(
            c("DELETE /amzn-s3-demo-bucket?publicAccessBlock", false),
            E::DeletePublicAccessBlock
        );
        assert_eq!(
            c("PUT /amzn-s3-demo-bucket?ownershipControls", false),
            E::PutBucketOwnershipControls
        );
        assert_eq!(
            c("GET /amzn-s3-demo-bucket?ownershipControls", false),
            E::GetBucketOwnershipControls
        );
        assert_eq!(
            c("DELETE /amzn-s3-demo-bucket?ownershipControls", false),
            E::DeleteBucketOwnershipControls
        );
        assert_eq!(
            c("GET /amzn-s3-demo-bucket/key?ownershipControls", false),
            E::NotImplemented("ownershipControls")
        );
        assert_eq!(c("POST /amzn-s3-demo-bucket", false), E::PostObject);
        assert_eq!(
            c("PUT /amzn-s3-demo-bucket?policy", false),
            E::PutBucketPolicy
        );
        assert_eq!(
            c("GET /amzn-s3-demo-bucket?policy", false),
            E::GetBucketPolicy
        );
        assert_eq!(
            c("DELETE /amzn-s3-demo-bucket?policy", false),
            E::DeleteBucketPolicy
        );
        assert_eq!(
            c("GET /amzn-s3-demo-bucket?policyStatus", false),
            E::GetBucketPolicyStatus
        );
        assert_eq!(E::HeadObject.s3_action(), Some("s3:GetObject"));
        assert_eq!(E::ListObjectsV2.s3_action(), Some("s3:ListBucket"));
        assert_eq!(
            c("OPTIONS /amzn-s3-demo-bucket/photo.jpg", false),
            E::CorsPreflight
        );
        assert_eq!(
            c("GET /amzn-s3-demo-bucket?website", false),
            E::GetBucketConfigNotSet("website")
        );
        assert_eq!(
            c("PUT /amzn-s3-demo-bucket?lifecycle", false),
            E::NotImplemented("lifecycle")
        );
        assert_eq!(
            c("PUT /amzn-s3-demo-bucket/my-image.jpg", false),
            E::PutObject
        );
        assert_eq!(
            c("PUT /amzn-s3-demo-bucket/my-image.jpg", true),
            E::CopyObject
        );
        assert_eq!(
            c("GET /amzn-s3-demo-bucket/my-image.jpg", false),
            E::GetObject
        );
        assert_eq!(
            c("GET /amzn-s3-demo-bucket/my-image.jpg?partNumber=2", false),
            E::GetObject
        );
        assert_eq!(
            c("HEAD /amzn-s3-demo-bucket/my-image.jpg", false),
            E::HeadObject
        );
        assert_eq!(
            c("GET /amzn-s3-demo-bucket/my-image.jpg?attributes", false),
            E::GetObjectAttributes
        );
        assert_eq!(
            c("DELETE /amzn-s3-demo-bucket/my-image.jpg", false),
            E::DeleteObject
        );
        assert_eq!(
            c("GET /amzn-s3-demo-bucket/my-image.jpg?acl", false),
            E::GetObjectAcl
        );
        assert_eq!(
            c("PUT /amzn-s3-demo-bucket/my-image.jpg?acl", false),
            E::PutObjectAcl
        );
        assert_eq!(
            c("POST /amzn-s3-demo-bucket/example-object?uploads", false),
            E::CreateMultipartUpload
        );
        assert_eq!(
            c("PUT /amzn-s3-demo-bucket/my-movie.m2ts?partNumber=1&uploadId=VCVsb2FkIElEIGZvciBlbZZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZR", false),
            E::UploadPart
        );
        assert_eq!(
            c("PUT /amzn-s3-demo-bucket/example-object?partNumber=1&uploadId=VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA", true),
            E::UploadPartCopy
        );
        assert_eq!(c("POST /amzn-s3-demo-bucket/example-object?uploadId=AAAsb2FkIElEIGZvciBlbHZpbmcncyWeeS1tb3ZpZS5tMnRzIRRwbG9hZA", false), E::CompleteMultipartUpload);
        assert_eq!(c("DELETE /amzn-s3-demo-bucket/example-object?uploadId=VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZ", false), E::AbortMultipartUpload);
        assert_eq!(c("GET /amzn-s3-demo-bucket/example-object?uploadId=XXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA&max-parts=2&part-number-marker=1", false), E::ListParts);
        assert_eq!(
            c("GET /amzn-s3-demo-bucket/example-object?tagging", false),
            E::GetObjectTagging
        );
        assert_eq!(
            c("PUT /amzn-s3-demo-bucket/example-object?tagging", false),
            E::PutObjectTagging
        );
        assert_eq!(
            c("DELETE /amzn-s3-demo-bucket/example-object?tagging", false),
            E::DeleteObjectTagging
        );
        assert_eq!(
            c("GET /amzn-s3-demo-bucket?tagging", false),
            E::GetBucketTagging
        );
        assert_eq!(
            c("PUT /amzn-s3-demo-bucket?tagging", false),
            E::PutBucketTagging
        );
        assert_eq!(
            c("DELETE /amzn-s3-demo-bucket?tagging", false),
            E::DeleteBucketTagging
        );
        assert_eq!(
            c("POST /amzn-s3-demo-bucket/k?tagging", false),
            E::MethodNotAllowed
        );
        assert_eq!(
            c("POST /amzn-s3-demo-bucket/example-object?restore", false),
            E::NotImplemented("restore")
        );
        assert_eq!(
            c("PUT /amzn-s3-demo-bucket?object-lock", false),
            E::PutObjectLockConfiguration
        );
        assert_eq!(
            c("GET /amzn-s3-demo-bucket?object-lock", false),
            E::GetObjectLockConfiguration
        );
        assert_eq!(
            c("PUT /amzn-s3-demo-bucket/my-image.jpg?retention", false),
            E::PutObjectRetention
        );
        assert_eq!(
            c(
                "GET /amzn-s3-demo-bucket/my-image.jpg?retention&versionId=1",
                false
            ),
            E::GetObjectRetention
        );
        assert_eq!(
            c("PUT /amzn-s3-demo-bucket/my-image.jpg?legal-hold", false),
            E::PutObjectLegalHold
        );
        assert_eq!(
            c("GET /amzn-s3-demo-bucket/my-image.jpg?legal-hold", false),
            E::GetObjectLegalHold
        );
        assert_eq!(
            c("DELETE /amzn-s3-demo-bucket/k?retention", false),
            E::MethodNotAllowed
        );
        assert_eq!(
            c("GET /amzn-s3-demo-bucket?legal-hold", false),
            E::NotImplemented("legal-hold")
        );
        assert_eq!(
            c("PUT /amzn-s3-demo-bucket/k?object-lock", false),
            E::NotImplemented("object-lock")
        );
        assert_eq!(
            E::PutObjectRetention.s3_action(),
            Some("s3:PutObjectRetention")
        );
        assert_eq!(
            E::GetObjectLockConfiguration.s3_version_action(),
            Some("s3:GetBucketObjectLockConfiguration")
        );
        assert_eq!(
            c("PATCH /amzn-s3-demo-bucket/k", false),
            E::MethodNotAllowed
        );
        assert_eq!(c("PUT /", false), E::MethodNotAllowed);
    }
}
