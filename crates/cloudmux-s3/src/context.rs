//! The request as handlers see it: addressing resolved, query decoded, caller
//! authenticated. Shared by every handler module so none of them imports from
//! the server module.

use bytes::Bytes;
use cloudmux_core::checksum::ALL_ALGORITHMS;
use cloudmux_core::RequestContext;
use http::{HeaderMap, Method};
use hyper::body::Incoming;

use crate::auth::Payload;
use crate::error::{S3Error, S3Result};

/// Decoded query parameters, in request order.
#[derive(Debug, Default, Clone)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Self {
        Query(
            raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
        )
    }
    /// Whether the parameter is present (with or without a value).
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
    /// The parameter's first value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request, ready for a handler.
pub struct Req {
    /// HTTP method.
    pub method: Method,
    /// The bucket addressed, if any.
    pub bucket: Option<String>,
    /// The key addressed, if any (decoded).
    pub key: Option<String>,
    /// Query parameters.
    pub query: Query,
    /// Request headers.
    pub headers: HeaderMap,
    /// The body, not yet read.
    pub body: Option<Incoming>,
    /// Who is calling, with the request's policy environment: every
    /// gateway call takes it.
    pub principal: RequestContext,
    /// How the body is protected.
    pub payload: Payload,
}

/// Largest XML request body read into memory (DeleteObjects with 1000 long keys
/// fits).
pub const MAX_XML_BODY: usize = 2 * 1024 * 1024;

impl Req {
    /// The bucket, which the router guaranteed.
    pub fn bucket(&self) -> &str {
        self.bucket.as_deref().unwrap_or_default()
    }
    /// The key, which the router guaranteed.
    pub fn key(&self) -> &str {
        self.key.as_deref().unwrap_or_default()
    }
    /// A header as a string, when present and valid.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether the body comes with an integrity check the server verifies:
    /// `Content-MD5`, an `x-amz-checksum-*` header, or a checksum trailer
    /// of an aws-chunked body (`x-amz-sdk-checksum-algorithm` alone is not
    /// one: it carries no value to compare).
    pub fn declares_digest(&self) -> bool {
        self.headers.contains_key("content-md5")
            || ALL_ALGORITHMS
                .iter()
                .any(|a| self.headers.contains_key(a.header_name()))
            || matches!(&self.payload, Payload::Chunked(spec) if spec.trailer_name().is_some())
    }

    /// Reads a small body as [`Req::read_small_body`] does, for the
    /// operations S3 refuses without an integrity check of the body
    /// (DeleteObjects, PutBucketCors, PutBucketTagging): one is required
    /// (see [`Req::declares_digest`]), and verified.
    pub async fn read_small_body_with_digest(&mut self) -> S3Result<Bytes> {
        if !self.declares_digest() {
            return Err(S3Error::missing_content_md5());
        }
        self.read_small_body().await
    }

    /// Reads a small body as [`Req::read_small_body`] does, for the Object
    /// Lock operations (PutObjectLockConfiguration, PutObjectRetention,
    /// PutObjectLegalHold): S3 requires `Content-MD5` or an additional
    /// checksum, and accepts `x-amz-sdk-checksum-algorithm` alone as one
    /// (the checksum is then computed). An empty body is
    /// MissingRequestBodyError.
    pub async fn read_lock_document(&mut self) -> S3Result<Bytes> {
        if !self.declares_digest() && !self.headers.contains_key("x-amz-sdk-checksum-algorithm") {
            return Err(S3Error::missing_content_md5());
        }
        let body = self.read_small_body().await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(S3Error::missing_request_body());
        }
        Ok(body)
    }

    /// Reads a small body (XML documents) fully, verifying its declared
    /// digests. Larger bodies are refused.
    pub async fn read_small_body(&mut self) -> S3Result<Bytes> {
        use futures_util::StreamExt;
        let (mut stream, expect) = crate::body::request_stream(self)?;
        let mut expect = expect;
        expect.max_length = Some(MAX_XML_BODY as u64);
        let (mut verified, _) = cloudmux_core::digest::verify(
            std::mem::replace(&mut stream, Box::pin(futures_util::stream::empty())),
            expect,
        );
        let mut buf = Vec::new();
        while let Some(chunk) = verified.next().await {
            let chunk = chunk.map_err(S3Error::from)?;
            buf.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(buf))
    }
}
