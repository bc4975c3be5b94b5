//! The one place where errors become S3 error codes, HTTP statuses and XML.
//!
//! Every failure of a request ends up as an [`S3Error`]: core errors via
//! `From<CoreError>`, authentication errors via `From<AuthError>`, body errors
//! via `From<BodyError>`, and protocol errors built here by the constructors.
//! Anything unclassified becomes `InternalError`; its cause is logged and never
//! shown to the client.

use cloudmux_core::CoreError;
use cloudmux_data::BodyError;
use http::StatusCode;

use crate::auth::AuthError;

/// An S3 error response.
#[derive(Debug, Clone)]
pub struct S3Error {
    /// HTTP status.
    pub status: StatusCode,
    /// S3 error code.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Extra elements of the `<Error>` document (name, value).
    pub extra: Vec<(&'static str, String)>,
    /// Extra response headers.
    pub headers: Vec<(&'static str, String)>,
}

impl S3Error {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: Vec::new(),
            headers: Vec::new(),
        }
    }
    /// Adds an element to the XML body.
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((name, value.into()));
        self
    }
    /// Adds a response header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// 400 InvalidURI: a path that does not decode.
    pub fn invalid_uri() -> Self {
        S3Error::new(
            StatusCode::BAD_REQUEST,
            "InvalidURI",
            "Couldn't parse the specified URI.",
        )
    }

    /// 404 on the admin listener for anything but the health routes,
    /// `/metrics` and the admin routes.
    pub fn not_an_admin_route() -> Self {
        S3Error::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "The admin listener serves only /_/health/*, /metrics and /_/ routes",
        )
    }

    /// 400 InvalidArgument.
    pub fn invalid_argument(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidArgument", msg)
    }
    /// 400 InvalidArgument for a server-side encryption method S3 does not
    /// know, naming the header (or element) and the value.
    pub fn invalid_encryption_method(name: &str, value: &str) -> Self {
        Self::invalid_argument("The encryption method specified is not supported")
            .with("ArgumentName", name)
            .with("ArgumentValue", value)
    }
    /// 400 InvalidArgument: a `partNumber` query argument that is not an
    /// integer from 1 to 10000.
    pub fn invalid_part_number(value: &str) -> Self {
        Self::invalid_argument("Part number must be an integer between 1 and 10000, inclusive")
            .with("ArgumentName", "partNumber")
            .with("ArgumentValue", value)
    }
    /// 400 InvalidArgument: an `x-amz-copy-source-range` that is not of the
    /// form `bytes=first-last` with `first <= last`.
    pub fn invalid_copy_range(value: &str) -> Self {
        Self::invalid_argument("The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
            .with("ArgumentName", "x-amz-copy-source-range")
            .with("ArgumentValue", value)
    }
    /// 400 InvalidArgument: a query parameter or header that must be a
    /// non-negative integer (`max-keys`, `max-uploads`, `max-parts`,
    /// `part-number-marker`, `x-amz-max-parts`, ...) is not one, with
    /// `ArgumentName` and `ArgumentValue` as S3 gives them.
    pub fn invalid_integer_argument(name: &str, value: &str) -> Self {
        Self::invalid_argument(format!(
            "Provided {name} not an integer or within integer range"
        ))
        .with("ArgumentName", name)
        .with("ArgumentValue", value)
    }
    /// 400 InvalidArgument: a `list-type` other than `2` on a bucket GET.
    pub fn invalid_list_type(value: &str) -> Self {
        Self::invalid_argument("Invalid List Type specified in Request")
            .with("ArgumentName", "list-type")
            .with("ArgumentValue", value)
    }
    /// 400 InvalidRequest.
    pub fn invalid_request(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequest", msg)
    }
    /// 400 InvalidRequest: an `x-amz-checksum-*` header (or POST form field,
    /// or `Checksum*` element of a CompleteMultipartUpload part) of an
    /// algorithm cloudmux does not implement (SHA512, MD5, XXHASH64, XXHASH3,
    /// XXHASH128, or a name S3 does not know), naming it. AWS's message,
    /// with the name added.
    pub fn unsupported_checksum(name: &str) -> Self {
        Self::invalid_request(format!(
            "The algorithm type you specified in x-amz-checksum- header is invalid: {name} is not supported."
        ))
    }
    /// 400 InvalidRequest: an operation S3 accepts only with an integrity
    /// check of its body (DeleteObjects, PutBucketCors, PutBucketTagging)
    /// came with neither `Content-MD5` nor an `x-amz-checksum-*` value.
    pub fn missing_content_md5() -> Self {
        Self::invalid_request("Missing required header for this request: Content-MD5")
    }
    /// 400 MissingRequestBodyError: an operation that needs a request
    /// document (PutObjectLockConfiguration, PutObjectRetention,
    /// PutObjectLegalHold) came with an empty body.
    pub fn missing_request_body() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MissingRequestBodyError",
            "Request Body is empty",
        )
    }
    /// 400 InvalidArgument: an `x-amz-object-lock-*` header (or POST form
    /// field) whose value is not a mode, an ISO 8601 date or `ON`/`OFF`,
    /// naming it.
    pub fn invalid_lock_header(name: &str, value: &str) -> Self {
        let msg = match name {
            "x-amz-object-lock-mode" => "Unknown wormMode directive.",
            "x-amz-object-lock-legal-hold" => "Legal Hold must be either of 'ON' or 'OFF'",
            _ => "The retain until date must be provided in ISO 8601 format",
        };
        Self::invalid_argument(msg)
            .with("ArgumentName", name)
            .with("ArgumentValue", value)
    }
    /// 400 InvalidRequest: `response-*` query overrides on an anonymous
    /// GetObject, which S3 refuses (GetObject reference).
    pub fn anonymous_response_overrides() -> Self {
        Self::invalid_request(
            "Request specific response headers cannot be used for anonymous GET requests.",
        )
    }
    /// 400 MalformedACLError: an AccessControlPolicy that does not parse or
    /// validate.
    pub fn malformed_acl() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MalformedACLError",
            "The XML you provided was not well-formed or did not validate against our published schema",
        )
    }
    /// 400 UnresolvableGrantByEmailAddress.
    pub fn unresolvable_email() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "UnresolvableGrantByEmailAddress",
            "The e-mail address you provided does not match any account on record.",
        )
    }
    /// 400 UnexpectedContent: a body where the request takes none.
    pub fn unexpected_content() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "UnexpectedContent",
            "This request does not support content",
        )
    }
    /// 404 NoSuchCORSConfiguration.
    pub fn no_such_cors(bucket: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchCORSConfiguration",
            "The CORS configuration does not exist",
        )
        .with("BucketName", bucket)
    }
    /// 404 NoSuchTagSet: GetBucketTagging on a bucket without tags.
    pub fn no_such_tag_set(bucket: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchTagSet",
            "The TagSet does not exist",
        )
        .with("BucketName", bucket)
    }
    /// 400 InvalidArgument: an `x-amz-tagging` header that is not a URL query
    /// string of distinct tag names.
    pub fn invalid_tagging_header() -> Self {
        Self::invalid_argument("The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.")
    }
    /// 400 InvalidArgument: an unknown `x-amz-tagging-directive`.
    pub fn invalid_tagging_directive() -> Self {
        Self::invalid_argument("Unknown tagging directive.")
    }
    /// 404 NoSuchPublicAccessBlockConfiguration.
    pub fn no_such_public_access_block(bucket: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchPublicAccessBlockConfiguration",
            "The public access block configuration was not found",
        )
        .with("BucketName", bucket)
    }
    /// 400 InvalidArgument: an `x-amz-object-ownership` header that names
    /// no Object Ownership setting.
    pub fn invalid_object_ownership(value: &str) -> Self {
        Self::invalid_argument(format!("Invalid x-amz-object-ownership header: {value}"))
            .with("ArgumentName", "x-amz-object-ownership")
    }
    /// 404 OwnershipControlsNotFoundError: GetBucketOwnershipControls on a
    /// bucket without an Object Ownership setting.
    pub fn no_ownership_controls(bucket: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "OwnershipControlsNotFoundError",
            "The bucket ownership controls were not found",
        )
        .with("BucketName", bucket)
    }
    /// 400 InvalidPolicyDocument: a POST policy that does not parse.
    pub fn invalid_policy(msg: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidPolicyDocument",
            format!("Invalid Policy: {msg}"),
        )
    }
    /// 412 PreconditionFailed: a bucket POST that is not multipart/form-data.
    pub fn post_not_multipart() -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
        )
        .with(
            "Condition",
            "Bucket POST must be of the enclosure-type multipart/form-data",
        )
    }
    /// 403 AccessForbidden: a CORS preflight no rule allows.
    pub fn cors_forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "AccessForbidden",
            "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
        )
    }
    /// 400 BadRequest: a CORS preflight missing a required header.
    pub fn cors_bad_request(msg: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", msg)
    }
    /// 400 InvalidStorageClass.
    pub fn invalid_storage_class() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidStorageClass",
            "The storage class you specified is not valid",
        )
    }
    /// 400 InvalidArgument for a `versionId` (query parameter, or in
    /// `x-amz-copy-source`) that is not a valid version id, as S3 answers
    /// it. cloudmux has no version ids yet: every value but `null` is
    /// invalid. An empty one has S3's own message.
    pub fn invalid_version_id(value: &str) -> Self {
        let msg = if value.is_empty() {
            "Version id cannot be the empty string"
        } else {
            "Invalid version id specified"
        };
        Self::invalid_argument(msg)
            .with("ArgumentName", "versionId")
            .with("ArgumentValue", value)
    }
    /// 400 MissingSecurityHeader naming the header that was required.
    pub fn missing_security_header(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MissingSecurityHeader",
            "Your request was missing a required header",
        )
        .with("MissingHeaderName", name)
    }
    /// 404 for GET of a bucket subresource that is not configured, with the
    /// code S3 uses for that subresource (`NoSuchCORSConfiguration`, ...).
    pub fn config_not_found(sub: &str, bucket: &str) -> Self {
        let code = match sub {
            "cors" => "NoSuchCORSConfiguration",
            "lifecycle" => "NoSuchLifecycleConfiguration",
            "policy" => "NoSuchBucketPolicy",
            "website" => "NoSuchWebsiteConfiguration",
            "replication" => "ReplicationConfigurationNotFoundError",
            "encryption" => "ServerSideEncryptionConfigurationNotFoundError",
            "publicAccessBlock" => "NoSuchPublicAccessBlockConfiguration",
            "ownershipControls" => "OwnershipControlsNotFoundError",
            _ => return Self::not_implemented(sub),
        };
        Self::new(
            StatusCode::NOT_FOUND,
            code,
            format!("The {sub} configuration does not exist"),
        )
        .with("BucketName", bucket)
    }
    /// 403 AccessDenied with a message (POST policy failures).
    pub fn access_denied(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDenied", msg)
    }
    /// 400 EntityTooSmall.
    pub fn entity_too_small() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "EntityTooSmall",
            "Your proposed upload is smaller than the minimum allowed size",
        )
    }
    /// 400 EntityTooLarge.
    pub fn entity_too_large() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed size",
        )
    }
    /// 400 MalformedPOSTRequest.
    pub fn malformed_post() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MalformedPOSTRequest",
            "The body of your POST request is not well-formed multipart/form-data.",
        )
    }
    /// 400 InvalidArgument: a POST form without a `file` field.
    pub fn post_missing_file() -> Self {
        Self::invalid_argument("POST requires exactly one file upload per request.")
            .with("ArgumentName", "file")
    }
    /// 400 MalformedXML.
    pub fn malformed_xml() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema.",
        )
    }
    /// 501 NotImplemented.
    pub fn not_implemented(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            format!("A header or query you provided implies functionality that is not implemented: {what}"),
        )
    }
    /// 405 MethodNotAllowed.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
        )
    }
    /// 400 InvalidDigest.
    pub fn invalid_digest() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidDigest",
            "The Content-MD5 you specified is not valid.",
        )
    }
    /// 411 MissingContentLength.
    pub fn missing_content_length() -> Self {
        Self::new(
            StatusCode::LENGTH_REQUIRED,
            "MissingContentLength",
            "You must provide the Content-Length HTTP header.",
        )
    }
    /// 400 RequestHeaderSectionTooLarge.
    pub fn headers_too_large() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "RequestHeaderSectionTooLarge",
            "Your request header section exceeds the maximum allowed size.",
        )
        .with("MaxSizeAllowed", "8192")
    }
    /// 400 MetadataTooLarge.
    pub fn metadata_too_large() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MetadataTooLarge",
            "Your metadata headers exceed the maximum allowed metadata size.",
        )
        .with("MaxSizeAllowed", "2048")
    }
    /// 400 RequestTimeout: a request body that sent nothing for the body
    /// timeout (`[limits] body_timeout_secs`).
    pub fn request_timeout() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "RequestTimeout",
            "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.",
        )
    }
    /// 503 SlowDown: a request over a resource limit (request body memory,
    /// requests in flight per account).
    pub fn slow_down() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SlowDown",
            "Please reduce your request rate.",
        )
    }
    /// 500 InternalError, with the cause logged.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "We encountered an internal error. Please try again.",
        )
    }
}

/// Displays an error with every source under it (`a: b: c`), for the log.
struct ErrorChain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

impl From<CoreError> for S3Error {
    fn from(e: CoreError) -> Self {
        use StatusCode as S;
        match e {
            CoreError::NoSuchBucket(b) => {
                S3Error::new(S::NOT_FOUND, "NoSuchBucket", "The specified bucket does not exist")
                    .with("BucketName", b)
            }
            CoreError::NoSuchKey(k) => {
                S3Error::new(S::NOT_FOUND, "NoSuchKey", "The specified key does not exist.").with("Key", k)
            }
            CoreError::NoSuchVersion { key, version_id } => S3Error::new(
                S::NOT_FOUND,
                "NoSuchVersion",
                "The specified version does not exist.",
            )
            .with("Key", key)
            .with("VersionId", version_id),
            CoreError::DeleteMarker {
                key,
                version_id,
                by_id: false,
            } => S3Error::new(S::NOT_FOUND, "NoSuchKey", "The specified key does not exist.")
                .with("Key", key)
                .header("x-amz-delete-marker", "true")
                .header("x-amz-version-id", version_id),
            CoreError::DeleteMarker {
                version_id,
                by_id: true,
                ..
            } => S3Error::new(
                S::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "The specified method is not allowed against this resource.",
            )
            .with("Method", "GET")
            .with("ResourceType", "DeleteMarker")
            .header("x-amz-delete-marker", "true")
            .header("x-amz-version-id", version_id),
            CoreError::ObjectLocked => S3Error::new(
                S::FORBIDDEN,
                "AccessDenied",
                "Access Denied because object protected by object lock.",
            ),
            CoreError::ObjectLockConfigurationNotFound(b) => S3Error::new(
                S::NOT_FOUND,
                "ObjectLockConfigurationNotFoundError",
                "Object Lock configuration does not exist for this bucket",
            )
            .with("BucketName", b),
            CoreError::NoSuchObjectLockConfiguration => S3Error::new(
                S::NOT_FOUND,
                "NoSuchObjectLockConfiguration",
                "The specified object does not have a ObjectLock configuration",
            ),
            CoreError::LockWithoutDigest => S3Error::invalid_request(
                "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters",
            ),
            CoreError::InvalidBucketState(m) => {
                S3Error::new(S::CONFLICT, "InvalidBucketState", m)
            }
            CoreError::NoSuchUpload(u) => S3Error::new(
                S::NOT_FOUND,
                "NoSuchUpload",
                "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
            )
            .with("UploadId", u),
            CoreError::BucketAlreadyOwnedByYou(b) => S3Error::new(
                S::CONFLICT,
                "BucketAlreadyOwnedByYou",
                "Your previous request to create the named bucket succeeded and you already own it.",
            )
            .with("BucketName", b),
            CoreError::BucketAlreadyExists(b) => S3Error::new(
                S::CONFLICT,
                "BucketAlreadyExists",
                "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.",
            )
            .with("BucketName", b),
            CoreError::BucketNotEmpty(b) => S3Error::new(
                S::CONFLICT,
                "BucketNotEmpty",
                "The bucket you tried to delete is not empty",
            )
            .with("BucketName", b),
            CoreError::InvalidBucketName(b) => {
                S3Error::new(S::BAD_REQUEST, "InvalidBucketName", "The specified bucket is not valid.")
                    .with("BucketName", b)
            }
            CoreError::KeyTooLong => S3Error::new(
                S::BAD_REQUEST,
                "KeyTooLongError",
                "Your key is too long",
            )
            .with("MaxSizeAllowed", "1024"),
            CoreError::InvalidKey(m) => S3Error::invalid_argument(m),
            CoreError::InvalidLocationConstraint(l) => S3Error::new(
                S::BAD_REQUEST,
                "InvalidLocationConstraint",
                "The specified location-constraint is not valid",
            )
            .with("LocationConstraint", l),
            CoreError::AccessDenied => S3Error::new(S::FORBIDDEN, "AccessDenied", "Access Denied"),
            CoreError::OperationAborted(_) => S3Error::new(
                S::CONFLICT,
                "OperationAborted",
                "A conflicting conditional operation is currently in progress against this resource. Please try again.",
            ),
            CoreError::PreconditionFailed(condition) => {
                let e = S3Error::new(
                    S::PRECONDITION_FAILED,
                    "PreconditionFailed",
                    "At least one of the pre-conditions you specified did not hold",
                );
                match condition {
                    Some(c) => e.with("Condition", c),
                    None => e,
                }
            }
            CoreError::NotModified { .. } => S3Error::new(S::NOT_MODIFIED, "NotModified", "Not Modified"),
            CoreError::InvalidRange(size) => S3Error::new(
                S::RANGE_NOT_SATISFIABLE,
                "InvalidRange",
                "The requested range is not satisfiable",
            )
            .with("ActualObjectSize", size.to_string())
            .header("content-range", format!("bytes */{size}")),
            CoreError::InvalidPartNumber { requested, actual } => S3Error::new(
                S::RANGE_NOT_SATISFIABLE,
                "InvalidPartNumber",
                "The requested partnumber is not satisfiable",
            )
            .with("PartNumberRequested", requested.to_string())
            .with("ActualPartCount", actual.to_string()),
            CoreError::ConditionalRequestConflict => S3Error::new(
                S::CONFLICT,
                "ConditionalRequestConflict",
                "A conflicting operation occurred. If using PutObject you can retry the request. If using multipart upload you should initiate another CreateMultipartUpload request and re-upload each part.",
            ),
            CoreError::InvalidPart(m) => S3Error::new(
                S::BAD_REQUEST,
                "InvalidPart",
                format!("One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag. ({m})"),
            ),
            CoreError::BadDigest(m) => S3Error::new(S::BAD_REQUEST, "BadDigest", m),
            CoreError::InvalidPartOrder => S3Error::new(
                S::BAD_REQUEST,
                "InvalidPartOrder",
                "The list of parts was not in ascending order. The parts list must be specified in order by part number.",
            ),
            CoreError::EntityTooSmall => S3Error::new(
                S::BAD_REQUEST,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed object size.",
            ),
            CoreError::InvalidArgument(m) => S3Error::invalid_argument(m),
            CoreError::MalformedXml => S3Error::malformed_xml(),
            CoreError::InvalidTag(m) => S3Error::new(S::BAD_REQUEST, "InvalidTag", m),
            CoreError::InvalidRequest(m) => S3Error::invalid_request(m),
            CoreError::NotImplemented(m) => S3Error::not_implemented(&m),
            CoreError::Body(b) => b.into(),
            CoreError::Unavailable { location, message } => {
                tracing::warn!(%location, error = %message, "location unavailable");
                S3Error::new(
                    S::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    "Please reduce your request rate.",
                )
            }
            CoreError::StorageFull { location } => {
                tracing::warn!(%location, "location out of space");
                S3Error::new(
                    S::SERVICE_UNAVAILABLE,
                    "SlowDown",
                    format!("Please reduce your request rate. The storage of location {location} is full."),
                )
            }
            CoreError::MalformedPolicy(m) => S3Error::new(S::BAD_REQUEST, "MalformedPolicy", m),
            CoreError::PolicyTooLarge => S3Error::new(
                S::BAD_REQUEST,
                "PolicyTooLarge",
                "Policy exceeds the maximum allowed document size.",
            ),
            CoreError::AccessControlListNotSupported => S3Error::new(
                S::BAD_REQUEST,
                "AccessControlListNotSupported",
                "The bucket does not allow ACLs",
            ),
            CoreError::InvalidBucketAclWithObjectOwnership => S3Error::new(
                S::BAD_REQUEST,
                "InvalidBucketAclWithObjectOwnership",
                "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
            ),
            CoreError::NoSuchBucketPolicy(b) => S3Error::new(
                S::NOT_FOUND,
                "NoSuchBucketPolicy",
                "The bucket policy does not exist",
            )
            .with("BucketName", b),
            e @ CoreError::DataChanged { .. } => {
                tracing::error!(error = %e, "stored data changed outside cloudmux");
                S3Error::new(
                    S::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "The object's stored data was changed or removed outside cloudmux, so it cannot be served.",
                )
            }
            e @ (CoreError::Metadata(_) | CoreError::Data { .. }) => {
                S3Error::internal(ErrorChain(&e))
            }
            CoreError::Internal(m) => S3Error::internal(m),
        }
    }
}

impl From<BodyError> for S3Error {
    fn from(e: BodyError) -> Self {
        use StatusCode as S;
        match e {
            BodyError::Io(m) => S3Error::new(
                S::BAD_REQUEST,
                "IncompleteBody",
                format!("The request body could not be read: {m}"),
            ),
            BodyError::Incomplete => S3Error::new(
                S::BAD_REQUEST,
                "IncompleteBody",
                "You did not provide the number of bytes specified by the Content-Length HTTP header.",
            ),
            BodyError::TooLarge => S3Error::new(
                S::BAD_REQUEST,
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size",
            ),
            BodyError::BadDigest => S3Error::new(
                S::BAD_REQUEST,
                "BadDigest",
                "The Content-MD5 you specified did not match what we received.",
            ),
            BodyError::ChecksumMismatch(alg) => S3Error::new(
                S::BAD_REQUEST,
                "BadDigest",
                format!("The {alg} you specified did not match the calculated checksum."),
            ),
            BodyError::Sha256Mismatch => S3Error::new(
                S::BAD_REQUEST,
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ),
            BodyError::ChunkSignature => S3Error::new(
                S::FORBIDDEN,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
            ),
            BodyError::MalformedChunk(m) => S3Error::new(
                S::BAD_REQUEST,
                "IncompleteBody",
                format!("The request body is not valid aws-chunked encoding: {m}"),
            ),
            BodyError::MalformedTrailer(m) => S3Error::new(
                S::BAD_REQUEST,
                "MalformedTrailerError",
                format!("The request contained trailing data that was not well-formed or did not conform to our published schema. ({m})"),
            ),
        }
    }
}

impl From<AuthError> for S3Error {
    fn from(e: AuthError) -> Self {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            AuthError::InvalidAccessKeyId { access_key } => {
                S3Error::new(S::FORBIDDEN, "InvalidAccessKeyId", msg)
                    .with("AWSAccessKeyId", access_key)
            }
            AuthError::SignatureDoesNotMatch(m) => {
                let mut err = S3Error::new(S::FORBIDDEN, "SignatureDoesNotMatch", msg)
                    .with("AWSAccessKeyId", m.access_key)
                    .with("StringToSign", m.string_to_sign)
                    .with("SignatureProvided", m.signature_provided);
                if let Some(c) = m.canonical_request {
                    err = err.with("CanonicalRequest", c);
                }
                err
            }
            AuthError::RequestTimeTooSkewed {
                request_time,
                server_time,
            } => S3Error::new(S::FORBIDDEN, "RequestTimeTooSkewed", msg)
                .with("RequestTime", request_time)
                .with("ServerTime", server_time)
                .with("MaxAllowedSkewMilliseconds", "900000"),
            AuthError::AccessDenied(m) => S3Error::new(S::FORBIDDEN, "AccessDenied", m),
            AuthError::HeadersNotSigned(names) => S3Error::new(S::FORBIDDEN, "AccessDenied", msg)
                .with("HeadersNotSigned", names.join(", ")),
            AuthError::AuthorizationHeaderMalformed(m) => {
                S3Error::new(S::BAD_REQUEST, "AuthorizationHeaderMalformed", m)
            }
            AuthError::AuthorizationQueryParametersError(m) => {
                S3Error::new(S::BAD_REQUEST, "AuthorizationQueryParametersError", m)
            }
            AuthError::InvalidRequest(m) => S3Error::invalid_request(m),
            AuthError::InvalidArgument(m) => S3Error::invalid_argument(m),
            AuthError::MissingSecurityHeader => {
                S3Error::new(S::BAD_REQUEST, "MissingSecurityHeader", msg)
            }
            AuthError::NotImplemented(m) => S3Error::new(S::NOT_IMPLEMENTED, "NotImplemented", m),
        }
    }
}

/// Result alias for handlers.
pub type S3Result<T> = Result<T, S3Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cloud_refusing_its_credentials_is_a_500_internal_error() {
        let data = cloudmux_data::DataError::Misconfigured {
            location: "aws-east".into(),
            message: "PutObject: HTTP 403 InvalidAccessKeyId".into(),
        };
        let e = S3Error::from(CoreError::from(data));
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.code, "InternalError");
        assert!(!e.message.contains("aws-east"), "{}", e.message);
    }
}
