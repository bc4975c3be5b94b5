//! The aws-chunked body decoder.
//!
//! Framing: `<hex-size>[;chunk-signature=<sig>]\r\n<data>\r\n` repeated, a
//! final `0[;chunk-signature=<sig>]\r\n`, then optional trailer lines
//! `name:value\r\n`, an optional `x-amz-trailer-signature:<sig>\r\n`, and an
//! empty line `\r\n` (which may be missing at end of input, as some SDKs
//! omit it).
//!
//! See [`decode_aws_chunked`] for how the decoder streams.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use cloudmux_data::{BodyError, BodyStream};
use futures_util::Stream;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::util::{self, EMPTY_SHA256_HEX};
use super::ChunkedSpec;

/// The largest chunk accepted.
pub(crate) const MAX_CHUNK: u64 = 16 * 1024 * 1024;
/// The longest chunk header or trailer line accepted.
pub(crate) const MAX_LINE: usize = 4096;
/// The most trailer lines accepted.
const MAX_TRAILERS: usize = 16;
const TRAILER_SIGNATURE: &str = "x-amz-trailer-signature";

/// Decodes an aws-chunked body into the plain payload, verifying every chunk
/// signature (signed forms), the trailer signature (signed trailer form), and
/// the decoded length. When a trailer was declared, the value of the
/// trailing header (e.g. the base64 of `x-amz-checksum-crc32`) is stored into
/// `trailer` BEFORE the stream yields its end; a declared trailer that never
/// arrives ends the stream with [`BodyError::MalformedTrailer`]. A bad chunk
/// signature ends the stream with [`BodyError::ChunkSignature`], bad framing
/// with [`BodyError::MalformedChunk`], a short body with
/// [`BodyError::Incomplete`], and more data than `x-amz-decoded-content-length`
/// with [`BodyError::MalformedChunk`].
///
/// The decoder streams. It holds at most one chunk header or trailer line
/// (4 KiB at most), never chunk data: data bytes are yielded as soon as they
/// arrive, as zero-copy slices of the input. Chunks are limited to 16 MiB.
/// For signed chunks the data is hashed as it passes and the chunk signature
/// is checked when the chunk's last byte arrives, before that byte is
/// yielded. So a signed chunk's leading bytes may be yielded before its
/// signature is verified, but a failed signature always ends the stream with
/// [`BodyError::ChunkSignature`] before its end: a consumer that keeps
/// nothing from a stream ending in an error (as every
/// `cloudmux_data::Backend` does) never accepts an unverified body.
///
/// Framing is strict (a chunk's data must be followed by CRLF, sizes are
/// hex) with two leniencies seen in SDKs: lines may end in a bare LF, and the
/// final empty line (and even the last trailer line's CRLF) may be missing
/// at end of input.
pub fn decode_aws_chunked(
    body: BodyStream,
    spec: ChunkedSpec,
    trailer: Arc<OnceLock<String>>,
) -> BodyStream {
    let previous = spec.signing.as_ref().map(|s| s.seed).unwrap_or([0; 64]);
    Box::pin(Decoder {
        inner: body,
        input: Bytes::new(),
        line: Vec::new(),
        state: State::Header,
        eof: false,
        spec,
        slot: trailer,
        hasher: Sha256::new(),
        expected: None,
        previous,
        total: 0,
        trailers: Vec::new(),
        trailer_signature: None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a chunk header line.
    Header,
    /// Passing chunk data through.
    Data { remaining: u64 },
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// Reading trailer lines after the final chunk.
    Trailer,
    /// Everything was read and checked; waiting for the input's end.
    End,
    /// The stream has ended (cleanly or with an error).
    Done,
}

struct Decoder {
    inner: BodyStream,
    /// Input received but not yet consumed.
    input: Bytes,
    /// A header or trailer line split across inputs.
    line: Vec<u8>,
    state: State,
    /// The input stream has ended.
    eof: bool,
    spec: ChunkedSpec,
    slot: Arc<OnceLock<String>>,
    /// Hash of the current signed chunk's data so far.
    hasher: Sha256,
    /// The signature the current chunk declared.
    expected: Option<[u8; 32]>,
    /// The previous signature in the chain (lowercase hex).
    previous: [u8; 64],
    /// Decoded bytes so far.
    total: u64,
    /// Trailer lines (lowercase name, trimmed value).
    trailers: Vec<(String, String)>,
    trailer_signature: Option<String>,
}

fn malformed(msg: &str) -> BodyError {
    BodyError::MalformedChunk(msg.to_owned())
}

impl Decoder {
    /// Takes one line (without its line ending) from the input, or `None` if
    /// the input ends before the line does (the partial line is kept).
    fn take_line(&mut self) -> Result<Option<Bytes>, BodyError> {
        let window = (MAX_LINE + 2).saturating_sub(self.line.len());
        let window = &self.input[..self.input.len().min(window)];
        match window.iter().position(|&c| c == b'\n') {
            Some(pos) => {
                let mut piece = self.input.split_to(pos + 1);
                piece.truncate(pos);
                let line = if self.line.is_empty() {
                    piece
                } else {
                    self.line.extend_from_slice(&piece);
                    Bytes::from(std::mem::take(&mut self.line))
                };
                let line = match line.last() {
                    Some(b'\r') => line.slice(..line.len() - 1),
                    _ => line,
                };
                Ok(Some(line))
            }
            None => {
                if self.line.len() + self.input.len() > MAX_LINE + 1 {
                    return Err(malformed("line too long"));
                }
                self.line.extend_from_slice(&self.input);
                self.input.clear();
                Ok(None)
            }
        }
    }

    /// Parses a chunk header line and moves to the chunk's data.
    fn chunk_header(&mut self, line: &[u8]) -> Result<(), BodyError> {
        let text = std::str::from_utf8(line).map_err(|_| malformed("chunk header is not ASCII"))?;
        let mut parts = text.split(';');
        let size_text = parts.next().unwrap_or("").trim();
        if size_text.is_empty()
            || size_text.len() > 16
            || !size_text.bytes().all(|c| c.is_ascii_hexdigit())
        {
            return Err(malformed("invalid chunk size"));
        }
        let size =
            u64::from_str_radix(size_text, 16).map_err(|_| malformed("invalid chunk size"))?;
        if size > MAX_CHUNK {
            return Err(malformed("chunk too large"));
        }
        let signature = parts.find_map(|ext| ext.trim().strip_prefix("chunk-signature="));
        if self.spec.signing.is_some() {
            let mut expected = [0u8; 32];
            let text = signature.ok_or(BodyError::ChunkSignature)?.trim();
            hex::decode_to_slice(text, &mut expected).map_err(|_| BodyError::ChunkSignature)?;
            self.expected = Some(expected);
            self.hasher = Sha256::new();
        }
        self.total = self
            .total
            .checked_add(size)
            .ok_or_else(|| malformed("body too long"))?;
        if self
            .spec
            .decoded_length
            .is_some_and(|declared| self.total > declared)
        {
            return Err(malformed("chunk data exceeds x-amz-decoded-content-length"));
        }
        if size == 0 {
            self.verify_chunk()?;
            self.state = State::Trailer;
        } else {
            self.state = State::Data { remaining: size };
        }
        Ok(())
    }

    /// Checks the current chunk's signature against the data hashed so far.
    fn verify_chunk(&mut self) -> Result<(), BodyError> {
        let Some(signing) = &self.spec.signing else {
            return Ok(());
        };
        let expected = self.expected.take().ok_or(BodyError::ChunkSignature)?;
        let hasher = std::mem::replace(&mut self.hasher, Sha256::new());
        let data_hash = util::hex32(&hasher.finalize().into());
        let mut mac = Hmac::<Sha256>::new_from_slice(&signing.key).expect("any key length");
        for part in [
            b"AWS4-HMAC-SHA256-PAYLOAD\n".as_slice(),
            signing.timestamp.as_bytes(),
            b"\n",
            signing.scope.as_bytes(),
            b"\n",
            &self.previous,
            b"\n",
            EMPTY_SHA256_HEX.as_bytes(),
            b"\n",
            &data_hash,
        ] {
            mac.update(part);
        }
        let computed: [u8; 32] = mac.finalize().into_bytes().into();
        if !util::ct_eq(&computed, &expected) {
            return Err(BodyError::ChunkSignature);
        }
        self.previous = util::hex32(&computed);
        Ok(())
    }

    /// Handles one trailer line; an empty line ends the trailer.
    fn trailer_line(&mut self, line: &[u8]) -> Result<(), BodyError> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return self.finish();
        }
        let text = std::str::from_utf8(line)
            .map_err(|_| BodyError::MalformedTrailer("trailer is not UTF-8".into()))?;
        let (name, value) = text
            .split_once(':')
            .ok_or_else(|| BodyError::MalformedTrailer("trailer line without ':'".into()))?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim().to_owned();
        if name == TRAILER_SIGNATURE {
            self.trailer_signature = Some(value);
        } else if self.trailers.len() >= MAX_TRAILERS {
            return Err(BodyError::MalformedTrailer("too many trailers".into()));
        } else {
            self.trailers.push((name, value));
        }
        Ok(())
    }

    /// Final checks once the trailer section is over: decoded length, trailer
    /// signature, declared trailer.
    fn finish(&mut self) -> Result<(), BodyError> {
        if self
            .spec
            .decoded_length
            .is_some_and(|declared| self.total < declared)
        {
            return Err(BodyError::Incomplete);
        }
        if self.spec.signed_trailer && !self.trailers.is_empty() {
            self.verify_trailer()?;
        }
        if let Some(name) = &self.spec.trailer {
            let value = self
                .trailers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| {
                    BodyError::MalformedTrailer(format!("declared trailer {name} is missing"))
                })?;
            let _ = self.slot.set(value);
        }
        self.state = State::End;
        Ok(())
    }

    fn verify_trailer(&mut self) -> Result<(), BodyError> {
        let Some(signing) = &self.spec.signing else {
            return Ok(());
        };
        let provided = self
            .trailer_signature
            .as_deref()
            .ok_or(BodyError::ChunkSignature)?;
        let mut sorted: Vec<&(String, String)> = self.trailers.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut canonical = Sha256::new();
        for (name, value) in sorted {
            canonical.update(name.as_bytes());
            canonical.update(b":");
            canonical.update(value.as_bytes());
            canonical.update(b"\n");
        }
        let canonical_hash = util::hex32(&canonical.finalize().into());
        let computed = util::hmac_sha256(
            &signing.key,
            &[
                b"AWS4-HMAC-SHA256-TRAILER\n",
                signing.timestamp.as_bytes(),
                b"\n",
                signing.scope.as_bytes(),
                b"\n",
                &self.previous,
                b"\n",
                &canonical_hash,
            ],
        );
        if util::ct_eq(&util::hex32(&computed), provided.as_bytes()) {
            Ok(())
        } else {
            Err(BodyError::ChunkSignature)
        }
    }

    /// What the end of input means in the current state.
    fn at_eof(&mut self) -> Option<Result<Bytes, BodyError>> {
        match self.state {
            State::Trailer => {
                if !self.line.is_empty() {
                    let line = std::mem::take(&mut self.line);
                    let line = line.strip_suffix(b"\r").unwrap_or(&line);
                    if let Err(err) = self.trailer_line(line) {
                        return Some(Err(err));
                    }
                }
                if self.state == State::Trailer {
                    if let Err(err) = self.finish() {
                        return Some(Err(err));
                    }
                }
                None
            }
            State::End | State::Done => None,
            State::Header | State::Data { .. } | State::DataCr | State::DataLf => {
                Some(Err(BodyError::Incomplete))
            }
        }
    }

    /// Advances on the available input. `Ok(Some(bytes))` is data to yield,
    /// `Ok(None)` means more input is needed.
    fn step(&mut self) -> Result<Option<Bytes>, BodyError> {
        while !self.input.is_empty() {
            match self.state {
                State::Header => {
                    if let Some(line) = self.take_line()? {
                        self.chunk_header(&line)?;
                    }
                }
                State::Data { remaining } => {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(self.input.len());
                    let piece = self.input.split_to(n);
                    let remaining = remaining - n as u64;
                    if self.spec.signing.is_some() {
                        self.hasher.update(&piece);
                    }
                    if remaining == 0 {
                        self.verify_chunk()?;
                        self.state = State::DataCr;
                    } else {
                        self.state = State::Data { remaining };
                    }
                    return Ok(Some(piece));
                }
                State::DataCr | State::DataLf => {
                    let want = if self.state == State::DataCr {
                        b'\r'
                    } else {
                        b'\n'
                    };
                    if self.input[0] != want {
                        return Err(malformed("chunk data not followed by CRLF"));
                    }
                    let _ = self.input.split_to(1);
                    self.state = if self.state == State::DataCr {
                        State::DataLf
                    } else {
                        State::Header
                    };
                }
                State::Trailer => {
                    if let Some(line) = self.take_line()? {
                        self.trailer_line(&line)?;
                    }
                }
                State::End => {
                    if !self.input.iter().all(|c| matches!(c, b'\r' | b'\n')) {
                        return Err(malformed("data after the final chunk"));
                    }
                    self.input.clear();
                }
                State::Done => {
                    self.input.clear();
                }
            }
        }
        Ok(None)
    }
}

impl Stream for Decoder {
    type Item = Result<Bytes, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.state == State::Done {
                return Poll::Ready(None);
            }
            match this.step() {
                Ok(Some(data)) => return Poll::Ready(Some(Ok(data))),
                Ok(None) => {}
                Err(err) => {
                    this.state = State::Done;
                    return Poll::Ready(Some(Err(err)));
                }
            }
            if this.eof {
                let result = this.at_eof();
                this.state = State::Done;
                return Poll::Ready(result);
            }
            match this.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(bytes))) => this.input = bytes,
                Poll::Ready(Some(Err(err))) => {
                    this.state = State::Done;
                    return Poll::Ready(Some(Err(err)));
                }
                Poll::Ready(None) => this.eof = true,
            }
        }
    }
}
