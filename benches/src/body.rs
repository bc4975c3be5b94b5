//! Request and response bodies cut from one shared buffer, without copies.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// Pre-generated random bytes that every body is sliced from.
#[derive(Clone)]
pub struct Payload(Bytes);

impl Payload {
    /// `len` random bytes.
    pub fn random(len: usize) -> Self {
        let mut v = vec![0u8; len];
        rand::Rng::fill(&mut rand::rng(), &mut v[..]);
        Payload(Bytes::from(v))
    }

    /// A body of `len` bytes: the buffer repeated as often as needed.
    pub fn body(&self, len: u64) -> RepeatBody {
        RepeatBody {
            buf: self.0.clone(),
            remaining: len,
        }
    }

    /// Hex SHA-256 of the body [`Payload::body`] makes for `len` (for a
    /// pre-computed `x-amz-content-sha256`).
    pub fn sha256_hex(&self, len: u64) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        let mut left = len;
        while left > 0 && !self.0.is_empty() {
            let n = left.min(self.0.len() as u64) as usize;
            h.update(&self.0[..n]);
            left -= n as u64;
        }
        hex::encode(h.finalize())
    }
}

/// A body of `remaining` bytes sent as `Bytes` clones of one buffer.
pub struct RepeatBody {
    buf: Bytes,
    remaining: u64,
}

impl RepeatBody {
    /// The empty body.
    pub fn empty() -> Self {
        RepeatBody {
            buf: Bytes::new(),
            remaining: 0,
        }
    }

    /// A body holding exactly `bytes`.
    pub fn bytes(bytes: Bytes) -> Self {
        RepeatBody {
            remaining: bytes.len() as u64,
            buf: bytes,
        }
    }

    /// The number of bytes still to send.
    pub fn len(&self) -> u64 {
        self.remaining
    }
}

impl Body for RepeatBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 || self.buf.is_empty() {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(self.buf.len() as u64) as usize;
        self.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(self.buf.slice(..n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
