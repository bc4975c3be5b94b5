//! Body verification: a stream adapter that hashes a body as it flows to a
//! backend and fails the stream before its end when a declared digest, checksum
//! or length does not match, so the backend keeps nothing.

use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use cloudmux_data::{BodyError, BodyStream};
use futures_util::Stream;
use md5::{Digest, Md5};
use sha2::Sha256;

use crate::checksum::{ChecksumAlgorithm, Hasher};

/// Where the expected value of an additional checksum comes from.
#[derive(Debug, Clone)]
pub enum ChecksumSource {
    /// An `x-amz-checksum-*` header (base64).
    Header(String),
    /// An aws-chunked trailer, filled in by the decoder before the body ends.
    Trailer(Arc<OnceLock<String>>),
    /// Nothing to compare: compute and store only.
    Compute,
}

/// The checksum a body is expected to carry.
#[derive(Debug, Clone)]
pub struct ExpectedChecksum {
    /// Algorithm.
    pub algorithm: ChecksumAlgorithm,
    /// Expected value source.
    pub source: ChecksumSource,
}

/// What the body must match.
#[derive(Debug, Clone, Default)]
pub struct BodyExpectations {
    /// Content-MD5, decoded.
    pub content_md5: Option<[u8; 16]>,
    /// x-amz-content-sha256, decoded.
    pub sha256: Option<[u8; 32]>,
    /// An additional checksum.
    pub checksum: Option<ExpectedChecksum>,
    /// The exact decoded length the client declared.
    pub length: Option<u64>,
    /// The most bytes allowed.
    pub max_length: Option<u64>,
}

/// What was measured once the body ended cleanly.
#[derive(Debug, Clone)]
pub struct Digests {
    /// MD5 of the body.
    pub md5: [u8; 16],
    /// Number of bytes.
    pub size: u64,
    /// The additional checksum, raw.
    pub checksum: Option<(ChecksumAlgorithm, Vec<u8>)>,
}

/// Gives the [`Digests`] after the stream ended without error.
#[derive(Clone, Default)]
pub struct DigestHandle(Arc<Mutex<Option<Digests>>>);

impl DigestHandle {
    /// The digests, if the body was consumed to a clean end.
    pub fn get(&self) -> Option<Digests> {
        self.0.lock().unwrap().clone()
    }
}

struct Digesting {
    inner: BodyStream,
    md5: Md5,
    sha256: Option<Sha256>,
    checksum: Option<Hasher>,
    size: u64,
    exp: BodyExpectations,
    out: DigestHandle,
    done: bool,
}

/// Wraps `body` so that it is hashed as it streams and verified at its end.
pub fn verify(body: BodyStream, exp: BodyExpectations) -> (BodyStream, DigestHandle) {
    let out = DigestHandle::default();
    let s = Digesting {
        inner: body,
        md5: Md5::new(),
        sha256: exp.sha256.map(|_| Sha256::new()),
        checksum: exp.checksum.as_ref().map(|c| Hasher::new(c.algorithm)),
        size: 0,
        exp,
        out: out.clone(),
        done: false,
    };
    (Box::pin(s), out)
}

impl Digesting {
    fn finish(&mut self) -> Result<(), BodyError> {
        if let Some(len) = self.exp.length {
            if self.size < len {
                return Err(BodyError::Incomplete);
            }
        }
        let md5: [u8; 16] = std::mem::take(&mut self.md5).finalize().into();
        if let Some(want) = self.exp.content_md5 {
            if want != md5 {
                return Err(BodyError::BadDigest);
            }
        }
        if let (Some(h), Some(want)) = (self.sha256.take(), self.exp.sha256) {
            if h.finalize().as_slice() != want {
                return Err(BodyError::Sha256Mismatch);
            }
        }
        let mut checksum = None;
        if let (Some(h), Some(exp)) = (self.checksum.take(), self.exp.checksum.as_ref()) {
            let got = h.finish();
            let alg = exp.algorithm;
            let want = match &exp.source {
                ChecksumSource::Header(v) => Some(v.clone()),
                ChecksumSource::Trailer(slot) => Some(slot.get().cloned().ok_or_else(|| {
                    BodyError::MalformedTrailer(format!("missing {}", alg.header_name()))
                })?),
                ChecksumSource::Compute => None,
            };
            if let Some(want) = want {
                let want = alg.decode_value(&want).ok_or_else(|| {
                    BodyError::MalformedTrailer(format!("invalid {} value", alg.header_name()))
                })?;
                if want != got {
                    return Err(BodyError::ChecksumMismatch(alg.as_str().to_owned()));
                }
            }
            checksum = Some((alg, got));
        }
        *self.out.0.lock().unwrap() = Some(Digests {
            md5,
            size: self.size,
            checksum,
        });
        Ok(())
    }
}

impl Stream for Digesting {
    type Item = Result<Bytes, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let me = &mut *self;
        if me.done {
            return Poll::Ready(None);
        }
        match me.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                me.size += chunk.len() as u64;
                let limit = me.exp.length.or(me.exp.max_length);
                if limit.is_some_and(|l| me.size > l) {
                    me.done = true;
                    return Poll::Ready(Some(Err(BodyError::TooLarge)));
                }
                me.md5.update(&chunk);
                if let Some(h) = me.sha256.as_mut() {
                    h.update(&chunk);
                }
                if let Some(h) = me.checksum.as_mut() {
                    h.update(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                me.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                me.done = true;
                match me.finish() {
                    Ok(()) => Poll::Ready(None),
                    Err(e) => Poll::Ready(Some(Err(e))),
                }
            }
        }
    }
}
