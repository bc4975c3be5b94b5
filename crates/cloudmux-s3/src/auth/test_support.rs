//! Shared helpers for the authentication tests.

use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use cloudmux_data::{BodyError, BodyStream};
use futures_util::Stream;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use time::OffsetDateTime;

use super::{authenticate, AuthContext, AuthError, Authenticated, Credentials, SignedRequest};

/// The example credentials of the AWS documentation.
pub const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// One known key pair.
pub struct Keys;

impl Credentials for Keys {
    fn secret_for(&self, access_key: &str) -> Option<String> {
        (access_key == AKID).then(|| SECRET.to_owned())
    }
}

/// A request under test.
pub struct Req {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub bucket: Option<String>,
}

impl Req {
    pub fn new(method: Method, path: &str, query: Option<&str>) -> Self {
        Req {
            method,
            path: path.to_owned(),
            query: query.map(str::to_owned),
            headers: HeaderMap::new(),
            bucket: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        self
    }

    pub fn auth(&self, region: &str, now: OffsetDateTime) -> Result<Authenticated, AuthError> {
        let req = SignedRequest {
            method: &self.method,
            raw_path: &self.path,
            raw_query: self.query.as_deref(),
            headers: &self.headers,
            virtual_host_bucket: self.bucket.as_deref(),
        };
        authenticate(
            &req,
            &Keys,
            &AuthContext {
                region: region.to_owned(),
                now,
            },
        )
    }
}

/// 2013-05-24T00:00:00Z, the time of the AWS SigV4 examples.
pub fn may_24_2013() -> OffsetDateTime {
    time::macros::datetime!(2013-05-24 00:00:00 UTC)
}

/// A body stream yielding `pieces` in order.
pub fn body_of(pieces: Vec<Vec<u8>>) -> BodyStream {
    Box::pin(futures_util::stream::iter(
        pieces.into_iter().map(|p| Ok(Bytes::from(p))),
    ))
}

/// The result of draining a stream: all data, then the error if any.
#[derive(Debug, PartialEq, Eq)]
pub struct Drained {
    pub data: Vec<u8>,
    pub error: Option<BodyError>,
}

/// Drains a stream that never waits (the inputs are in memory).
pub fn drain(stream: BodyStream) -> Drained {
    let mut stream = pin!(stream);
    let mut cx = Context::from_waker(Waker::noop());
    let mut data = Vec::new();
    loop {
        match stream.as_mut().poll_next(&mut cx) {
            Poll::Ready(Some(Ok(bytes))) => data.extend_from_slice(&bytes),
            Poll::Ready(Some(Err(err))) => {
                assert!(
                    matches!(stream.as_mut().poll_next(&mut cx), Poll::Ready(None)),
                    "stream must end after an error"
                );
                return Drained {
                    data,
                    error: Some(err),
                };
            }
            Poll::Ready(None) => return Drained { data, error: None },
            Poll::Pending => panic!("in-memory stream returned Pending"),
        }
    }
}

/// Decodes `pieces` with `spec`; returns the outcome and the trailer slot.
pub fn decode(pieces: Vec<Vec<u8>>, spec: super::ChunkedSpec) -> (Drained, Option<String>) {
    let slot = Arc::new(OnceLock::new());
    let drained = drain(super::decode_aws_chunked(
        body_of(pieces),
        spec,
        slot.clone(),
    ));
    (drained, slot.get().cloned())
}

/// Fixes the `Signature=` of a SigV4 `Authorization` header: authenticates,
/// takes the string to sign from the `SignatureDoesNotMatch` error (the
/// canonicalisation itself is checked against AWS and botocore vectors
/// elsewhere), and signs it. Returns the new signature.
pub fn resign_v4(req: &mut Req, now: OffsetDateTime) -> String {
    let Err(AuthError::SignatureDoesNotMatch(mismatch)) = req.auth("us-east-1", now) else {
        panic!("expected a signature mismatch to learn the string to sign");
    };
    let date = &mismatch.string_to_sign.split('\n').nth(2).unwrap()[..8];
    let key = super::sigv4::signing_key(SECRET, date, "us-east-1");
    let signature = hex::encode(super::util::hmac_sha256(
        &key,
        &[mismatch.string_to_sign.as_bytes()],
    ));
    let header = req.headers["authorization"].to_str().unwrap();
    let (head, _) = header.rsplit_once("Signature=").unwrap();
    let fixed = format!("{head}Signature={signature}");
    req.headers.insert("authorization", fixed.parse().unwrap());
    signature
}
