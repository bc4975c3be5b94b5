//! Bodies: request bodies become verified [`BodyStream`]s; response bodies are
//! built here.

use std::sync::{Arc, OnceLock};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use cloudmux_core::checksum::{ChecksumAlgorithm, ALL_ALGORITHMS};
use cloudmux_core::digest::{BodyExpectations, ChecksumSource, ExpectedChecksum};
use cloudmux_data::{BodyError, BodyStream};
use futures_util::{StreamExt, TryStreamExt};
use http_body_util::{
    combinators::UnsyncBoxBody, BodyExt, BodyStream as HttpBodyStream, Empty, Full, StreamBody,
};
use hyper::body::Frame;

use crate::auth::{self, Payload};
use crate::context::Req;
use crate::error::{S3Error, S3Result};

/// The response body type.
pub type ResBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// An empty body.
pub fn empty() -> ResBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A body held in memory.
pub fn full(data: impl Into<Bytes>) -> ResBody {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A streamed body.
pub fn stream(s: BodyStream) -> ResBody {
    let frames = s.map(|r| r.map(Frame::data).map_err(std::io::Error::other));
    StreamBody::new(frames).boxed_unsync()
}

/// Parses `Content-MD5`.
pub fn content_md5(req: &Req) -> S3Result<Option<[u8; 16]>> {
    match req.header("content-md5") {
        None => Ok(None),
        Some(v) => B64
            .decode(v.trim())
            .ok()
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .map(Some)
            .ok_or_else(S3Error::invalid_digest),
    }
}

/// The additional checksum a request declares, from its `x-amz-checksum-*`
/// header or its trailer. `trailer` is the slot the aws-chunked decoder fills.
pub fn declared_checksum(
    req: &Req,
    trailer_name: Option<&str>,
    trailer: &Arc<OnceLock<String>>,
) -> S3Result<Option<ExpectedChecksum>> {
    let mut found: Option<ExpectedChecksum> = None;
    for alg in ALL_ALGORITHMS {
        if let Some(v) = req.header(alg.header_name()) {
            if found.is_some() {
                return Err(S3Error::invalid_request(
                    "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
                ));
            }
            if alg.decode_value(v).is_none() {
                return Err(S3Error::invalid_request(format!(
                    "Value for {} header is invalid.",
                    alg.header_name()
                )));
            }
            found = Some(ExpectedChecksum {
                algorithm: alg,
                source: ChecksumSource::Header(v.trim().to_owned()),
            });
        }
    }
    if let Some(name) = trailer_name {
        if found.is_some() {
            return Err(S3Error::invalid_request(
                "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
            ));
        }
        let alg = ALL_ALGORITHMS
            .into_iter()
            .find(|a| a.header_name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                S3Error::invalid_request(format!(
                    "The value specified in the x-amz-trailer header is not supported: {name}"
                ))
            })?;
        found = Some(ExpectedChecksum {
            algorithm: alg,
            source: ChecksumSource::Trailer(trailer.clone()),
        });
    }
    match req.header("x-amz-sdk-checksum-algorithm") {
        Some(sdk) => with_declared_algorithm(found, "x-amz-sdk-checksum-algorithm header", sdk),
        None => Ok(found),
    }
}

/// Joins a declared checksum algorithm (`what`: the header or form field
/// that named it) to the checksum found so far: it must be the same
/// algorithm, and alone it asks for the checksum to be computed.
pub(crate) fn with_declared_algorithm(
    found: Option<ExpectedChecksum>,
    what: &str,
    name: &str,
) -> S3Result<Option<ExpectedChecksum>> {
    let alg = ChecksumAlgorithm::parse(name.trim()).ok_or_else(|| {
        S3Error::invalid_request(format!(
            "Checksum algorithm provided is unsupported: {name}"
        ))
    })?;
    match found {
        Some(f) if f.algorithm != alg => Err(S3Error::invalid_request(format!(
            "Value for {what} is invalid: {name} does not match the checksum sent"
        ))),
        Some(f) => Ok(Some(f)),
        None => Ok(Some(ExpectedChecksum {
            algorithm: alg,
            source: ChecksumSource::Compute,
        })),
    }
}

/// Takes the request body as a stream with aws-chunked framing removed, and
/// the expectations it must meet (declared length, Content-MD5, payload hash,
/// additional checksum).
pub fn request_stream(req: &mut Req) -> S3Result<(BodyStream, BodyExpectations)> {
    let incoming = req.body.take();
    let raw: BodyStream = match incoming {
        Some(b) => Box::pin(
            HttpBodyStream::new(b)
                .try_filter_map(|frame| async move { Ok(frame.into_data().ok()) })
                .map_err(|e| BodyError::Io(e.to_string())),
        ),
        None => Box::pin(futures_util::stream::empty()),
    };
    let mut expect = BodyExpectations {
        content_md5: content_md5(req)?,
        ..Default::default()
    };
    let slot = Arc::new(OnceLock::new());
    let content_length = req
        .header("content-length")
        .map(|v| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| S3Error::invalid_argument("Content-Length is not a number"))
        })
        .transpose()?;
    let body = match req.payload.clone() {
        Payload::Chunked(spec) => {
            expect.length = spec.decoded_length();
            expect.checksum = declared_checksum(req, spec.trailer_name(), &slot)?;
            auth::decode_aws_chunked(raw, spec, slot)
        }
        Payload::Sha256(h) => {
            expect.sha256 = Some(h);
            expect.length = content_length;
            expect.checksum = declared_checksum(req, None, &slot)?;
            raw
        }
        Payload::Unsigned => {
            expect.length = content_length;
            expect.checksum = declared_checksum(req, None, &slot)?;
            raw
        }
    };
    Ok((body, expect))
}
