//! Request authentication for the S3 front end.
//!
//! [`authenticate`] checks the signature of a request and says who sent it and
//! how its body is protected. It supports AWS Signature Version 4 in the
//! `Authorization` header and in presigned query strings, and Signature
//! Version 2 in both forms. SigV4A (`AWS4-ECDSA-P256-SHA256`) is refused with
//! [`AuthError::NotImplemented`].
//!
//! The body is not read here. The returned [`Payload`] tells the caller what
//! to do with it: nothing ([`Payload::Unsigned`]), compare its SHA-256 with a
//! declared digest ([`Payload::Sha256`]), or pass it through
//! [`decode_aws_chunked`] ([`Payload::Chunked`]), which strips the aws-chunked
//! framing and verifies chunk and trailer signatures as the bytes stream by.
//!
//! The module is pure: the current time and the region come from
//! [`AuthContext`], secrets from a [`Credentials`] implementation.

mod chunked;
pub mod post_policy;
mod sigv2;
mod sigv4;
mod util;

#[cfg(test)]
mod botocore_vectors;
#[cfg(test)]
mod chunked_tests;
#[cfg(test)]
mod sigv2_tests;
#[cfg(test)]
mod sigv4_tests;
#[cfg(test)]
mod test_support;

use std::fmt;

use http::HeaderMap;

pub use chunked::decode_aws_chunked;

/// Constant-time comparison of a presented token with the expected one
/// (false when the lengths differ).
pub fn token_eq(presented: &[u8], expected: &[u8]) -> bool {
    util::ct_eq(presented, expected)
}

/// The parts of an HTTP request that signatures cover.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The request method.
    pub method: &'a http::Method,
    /// Path exactly as received on the wire (still percent-encoded), e.g.
    /// `"/bucket/my%20key"`.
    pub raw_path: &'a str,
    /// Query string exactly as received (without `?`), if any.
    pub raw_query: Option<&'a str>,
    /// The request headers. Over HTTP/2 the caller must insert a `host`
    /// header from the `:authority` pseudo-header, since SigV4 signs `host`.
    pub headers: &'a HeaderMap,
    /// The bucket named by the `Host` header of a virtual-hosted-style request
    /// (`bucket.s3.example.com`), or `None` for a path-style request. Only
    /// SigV2 needs it: its canonical resource is `/bucket` followed by the
    /// raw path.
    pub virtual_host_bucket: Option<&'a str>,
}

/// Looks up the secret key of an access key id.
pub trait Credentials {
    /// The secret key of `access_key`, or `None` if the key does not exist.
    fn secret_for(&self, access_key: &str) -> Option<String>;
}

/// What authentication needs to know about the server.
#[derive(Debug, Clone)]
pub struct AuthContext {
    /// The region this endpoint serves; SigV4 credential scopes must name it.
    pub region: String,
    /// The current time, for clock skew and expiry checks.
    pub now: time::OffsetDateTime,
}

/// Who sent a request, and how its body is protected.
#[derive(Debug, Clone)]
pub enum Authenticated {
    /// No `Authorization` header and no signature query parameters. Use
    /// [`unsigned_payload`] to learn how the body is framed.
    Anonymous,
    /// A valid signature by `access_key`.
    Signed {
        /// The access key id that signed the request.
        access_key: String,
        /// How the body is protected.
        payload: Payload,
    },
}

/// How a request body is protected.
#[derive(Debug, Clone)]
pub enum Payload {
    /// UNSIGNED-PAYLOAD, SigV2, or presigned: body is not covered.
    Unsigned,
    /// `x-amz-content-sha256` was a hex digest (or, presigned, the
    /// `X-Amz-Content-Sha256` parameter was): the caller must verify the body
    /// against it. Also returned for SigV2 and anonymous requests that carry
    /// a hex `x-amz-content-sha256`, which S3 checks too.
    Sha256([u8; 32]),
    /// Body is aws-chunked (`Content-Encoding: aws-chunked` and/or one of the
    /// `STREAMING-*` values): pass it through [`decode_aws_chunked`].
    Chunked(ChunkedSpec),
}

/// How to decode and verify an aws-chunked body. Built by [`authenticate`]
/// (or [`unsigned_payload`]) from the request headers.
#[derive(Clone)]
pub struct ChunkedSpec {
    /// Present when every chunk carries a `chunk-signature`
    /// (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`).
    signing: Option<Box<ChunkSigning>>,
    /// The lowercase header name declared by `x-amz-trailer`.
    trailer: Option<String>,
    /// The trailer is followed by `x-amz-trailer-signature`
    /// (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`).
    signed_trailer: bool,
    /// `x-amz-decoded-content-length`.
    decoded_length: Option<u64>,
}

/// The key material that chunk signatures chain from.
#[derive(Clone)]
pub(crate) struct ChunkSigning {
    /// The SigV4 signing key of the request's scope.
    pub(crate) key: [u8; 32],
    /// The request's own signature (lowercase hex), which the first chunk
    /// signature chains from.
    pub(crate) seed: [u8; 64],
    /// `YYYYMMDD/region/s3/aws4_request`.
    pub(crate) scope: String,
    /// The request timestamp, `YYYYMMDDTHHMMSSZ`.
    pub(crate) timestamp: String,
}

impl ChunkedSpec {
    /// A spec for an aws-chunked body without chunk signatures
    /// (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`, or aws-chunked with
    /// `UNSIGNED-PAYLOAD`). `trailer` is the header name declared by
    /// `x-amz-trailer`.
    pub fn unsigned(trailer: Option<&str>, decoded_length: Option<u64>) -> Self {
        ChunkedSpec {
            signing: None,
            trailer: trailer.map(str::to_ascii_lowercase),
            signed_trailer: false,
            decoded_length,
        }
    }

    /// The trailing header declared by `x-amz-trailer` (lowercase), e.g.
    /// `x-amz-checksum-crc32`.
    pub fn trailer_name(&self) -> Option<&str> {
        self.trailer.as_deref()
    }

    /// The length of the decoded payload declared by
    /// `x-amz-decoded-content-length`.
    pub fn decoded_length(&self) -> Option<u64> {
        self.decoded_length
    }

    /// Whether every chunk carries a signature that the decoder verifies.
    pub fn chunks_signed(&self) -> bool {
        self.signing.is_some()
    }

    /// Whether the trailer carries a signature that the decoder verifies.
    pub fn trailer_signed(&self) -> bool {
        self.signed_trailer
    }
}

impl fmt::Debug for ChunkedSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkedSpec")
            .field("chunks_signed", &self.signing.is_some())
            .field("trailer", &self.trailer)
            .field("signed_trailer", &self.signed_trailer)
            .field("decoded_length", &self.decoded_length)
            .finish()
    }
}

/// The details S3 reports with `SignatureDoesNotMatch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureMismatch {
    /// The access key id that claimed the request.
    pub access_key: String,
    /// The signature the client sent.
    pub signature_provided: String,
    /// The string to sign the server computed.
    pub string_to_sign: String,
    /// The canonical request the server computed (SigV4 only).
    pub canonical_request: Option<String>,
}

/// Why a request failed authentication. Each variant documents the S3 error
/// code and HTTP status it should be answered with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// S3 `InvalidAccessKeyId`, 403. Message: "The AWS Access Key Id you
    /// provided does not exist in our records." The XML carries
    /// `AWSAccessKeyId`.
    #[error("The AWS Access Key Id you provided does not exist in our records.")]
    InvalidAccessKeyId {
        /// The unknown access key id.
        access_key: String,
    },
    /// S3 `SignatureDoesNotMatch`, 403. Message: "The request signature we
    /// calculated does not match the signature you provided. Check your key
    /// and signing method." The XML carries `AWSAccessKeyId`,
    /// `StringToSign`, `SignatureProvided`, and for SigV4 `CanonicalRequest`.
    #[error("The request signature we calculated does not match the signature you provided. Check your key and signing method.")]
    SignatureDoesNotMatch(Box<SignatureMismatch>),
    /// S3 `RequestTimeTooSkewed`, 403. The XML carries `RequestTime`,
    /// `ServerTime` and `MaxAllowedSkewMilliseconds` (900000).
    #[error("The difference between the request time and the current time is too large.")]
    RequestTimeTooSkewed {
        /// The request time as the client sent it.
        request_time: String,
        /// The server time, RFC 3339.
        server_time: String,
    },
    /// S3 `AccessDenied`, 403, with this message (expired or not yet valid
    /// presigned URLs, a missing date).
    #[error("{0}")]
    AccessDenied(String),
    /// S3 `AccessDenied`, 403: "There were headers present in the request
    /// which were not signed". The XML carries `HeadersNotSigned`, the
    /// offending header names joined by `", "`.
    #[error("There were headers present in the request which were not signed")]
    HeadersNotSigned(Vec<String>),
    /// S3 `AuthorizationHeaderMalformed`, 400, with this message. When the
    /// message names the wrong region, the XML also carries `Region` (the
    /// expected region, the context's).
    #[error("{0}")]
    AuthorizationHeaderMalformed(String),
    /// S3 `AuthorizationQueryParametersError`, 400, with this message.
    #[error("{0}")]
    AuthorizationQueryParametersError(String),
    /// S3 `InvalidRequest`, 400, with this message.
    #[error("{0}")]
    InvalidRequest(String),
    /// S3 `InvalidArgument`, 400, with this message.
    #[error("{0}")]
    InvalidArgument(String),
    /// S3 `MissingSecurityHeader`, 400: "Your request was missing a required
    /// header." Not produced by this module today; kept for the error table.
    #[error("Your request was missing a required header.")]
    MissingSecurityHeader,
    /// S3 `NotImplemented`, 501, with this message (SigV4A).
    #[error("{0}")]
    NotImplemented(String),
}

pub(crate) const ONLY_ONE_MECHANISM: &str = "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified";

/// Checks the signature of a request.
///
/// A request with an `Authorization` header is checked as SigV4 or SigV2 by
/// its scheme; one with `X-Amz-Algorithm`/`X-Amz-Credential`/`X-Amz-Signature`
/// query parameters as a SigV4 presigned URL; one with `AWSAccessKeyId` or
/// `Signature` query parameters as a SigV2 presigned URL. Anything else is
/// [`Authenticated::Anonymous`].
pub fn authenticate(
    req: &SignedRequest<'_>,
    creds: &dyn Credentials,
    ctx: &AuthContext,
) -> Result<Authenticated, AuthError> {
    let query = req.raw_query.map(util::scan_query).unwrap_or_default();
    match req.headers.get(http::header::AUTHORIZATION) {
        Some(value) => {
            if query.v4 || query.v2 {
                return Err(AuthError::InvalidArgument(ONLY_ONE_MECHANISM.into()));
            }
            let value = value.to_str().map_err(|_| {
                AuthError::AuthorizationHeaderMalformed(
                    "The authorization header is malformed; it is not valid ASCII.".into(),
                )
            })?;
            let value = value.trim();
            if value.is_empty() {
                return Err(AuthError::AccessDenied("Access Denied".into()));
            }
            if let Some(rest) = value.strip_prefix(sigv4::ALGORITHM) {
                if rest.starts_with(' ') {
                    return sigv4::authenticate_header(req, rest, creds, ctx);
                }
            }
            if value.starts_with(sigv4::ALGORITHM_V4A) {
                return Err(AuthError::NotImplemented(
                    "The AWS4-ECDSA-P256-SHA256 (SigV4A) signing algorithm is not implemented"
                        .into(),
                ));
            }
            if let Some(rest) = value.strip_prefix("AWS ") {
                return sigv2::authenticate_header(req, rest, creds, ctx);
            }
            Err(AuthError::InvalidArgument(
                "Unsupported Authorization Type".into(),
            ))
        }
        None if query.v4 && query.v2 => Err(AuthError::InvalidArgument(ONLY_ONE_MECHANISM.into())),
        None if query.v4 => sigv4::authenticate_presigned(req, creds, ctx),
        None if query.v2 => sigv2::authenticate_query(req, creds, ctx),
        None => Ok(Authenticated::Anonymous),
    }
}

/// How the body of a request whose signature does not cover the body is
/// framed: for [`Authenticated::Anonymous`] requests (public buckets), and
/// used internally for SigV2. A hex `x-amz-content-sha256` is still binding
/// ([`Payload::Sha256`]); `STREAMING-UNSIGNED-PAYLOAD-TRAILER`, or
/// `Content-Encoding: aws-chunked`, gives [`Payload::Chunked`] without
/// signature checks (chunk signatures, if any, are ignored since nothing
/// anchors them).
pub fn unsigned_payload(headers: &HeaderMap) -> Result<Payload, AuthError> {
    let Some(value) = util::content_sha256(headers)? else {
        return unsigned_chunked_or(headers, Payload::Unsigned);
    };
    match ContentSha256::parse(value)? {
        ContentSha256::Digest(digest) => Ok(Payload::Sha256(digest)),
        ContentSha256::Unsigned => unsigned_chunked_or(headers, Payload::Unsigned),
        ContentSha256::StreamingUnsignedTrailer
        | ContentSha256::StreamingSigned
        | ContentSha256::StreamingSignedTrailer => Ok(Payload::Chunked(ChunkedSpec::unsigned(
            util::trailer_name(headers)?.as_deref(),
            util::decoded_length(headers)?,
        ))),
    }
}

/// `Payload::Chunked` (unsigned) if `Content-Encoding` names aws-chunked,
/// else `otherwise`.
fn unsigned_chunked_or(headers: &HeaderMap, otherwise: Payload) -> Result<Payload, AuthError> {
    if util::is_aws_chunked(headers) {
        Ok(Payload::Chunked(ChunkedSpec::unsigned(
            util::trailer_name(headers)?.as_deref(),
            util::decoded_length(headers)?,
        )))
    } else {
        Ok(otherwise)
    }
}

/// The meaning of an `x-amz-content-sha256` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentSha256 {
    Digest([u8; 32]),
    Unsigned,
    StreamingUnsignedTrailer,
    StreamingSigned,
    StreamingSignedTrailer,
}

impl ContentSha256 {
    pub(crate) fn parse(value: &str) -> Result<Self, AuthError> {
        match value {
            "UNSIGNED-PAYLOAD" => Ok(ContentSha256::Unsigned),
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => Ok(ContentSha256::StreamingUnsignedTrailer),
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => Ok(ContentSha256::StreamingSigned),
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => {
                Ok(ContentSha256::StreamingSignedTrailer)
            }
            "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
            | "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER" => Err(AuthError::NotImplemented(
                format!("x-amz-content-sha256 {value} (SigV4A streaming) is not implemented"),
            )),
            _ => {
                let mut digest = [0u8; 32];
                if value.len() == 64 && hex::decode_to_slice(value, &mut digest).is_ok() {
                    Ok(ContentSha256::Digest(digest))
                } else {
                    Err(invalid_content_sha256())
                }
            }
        }
    }
}

/// The error for an `x-amz-content-sha256` value that is none of the allowed
/// ones.
pub(crate) fn invalid_content_sha256() -> AuthError {
    AuthError::InvalidArgument(
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER or a valid sha256 value."
            .into(),
    )
}
