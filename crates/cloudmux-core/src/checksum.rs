//! The additional checksums of S3 (`x-amz-checksum-*`): CRC32, CRC32C,
//! CRC64NVME, SHA1 and SHA256, whole-object and multipart (composite or
//! full-object).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use crc_fast::CrcAlgorithm;
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// A checksum algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChecksumAlgorithm {
    /// CRC-32 (ISO-HDLC).
    Crc32,
    /// CRC-32C (Castagnoli).
    Crc32c,
    /// CRC-64/NVME.
    Crc64Nvme,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

/// All algorithms, for iterating header names.
pub const ALL_ALGORITHMS: [ChecksumAlgorithm; 5] = [
    ChecksumAlgorithm::Crc32,
    ChecksumAlgorithm::Crc32c,
    ChecksumAlgorithm::Crc64Nvme,
    ChecksumAlgorithm::Sha1,
    ChecksumAlgorithm::Sha256,
];

/// How a multipart object's checksum was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChecksumType {
    /// Over the whole object's bytes.
    FullObject,
    /// Over the concatenated part checksums, suffixed `-N`.
    Composite,
}

impl ChecksumType {
    /// The S3 name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumType::FullObject => "FULL_OBJECT",
            ChecksumType::Composite => "COMPOSITE",
        }
    }
}

/// A stored checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredChecksum {
    /// Algorithm.
    pub algorithm: ChecksumAlgorithm,
    /// Base64 value, with `-N` for composite multipart checksums.
    pub value: String,
    /// Full-object or composite.
    pub kind: ChecksumType,
}

impl ChecksumAlgorithm {
    /// Parses the S3 name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "CRC32" => Self::Crc32,
            "CRC32C" => Self::Crc32c,
            "CRC64NVME" => Self::Crc64Nvme,
            "SHA1" => Self::Sha1,
            "SHA256" => Self::Sha256,
            _ => return None,
        })
    }
    /// The S3 name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64Nvme => "CRC64NVME",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
        }
    }
    /// The lower-case header name, `x-amz-checksum-crc32` and so on.
    pub fn header_name(self) -> &'static str {
        match self {
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Self::Sha1 => "x-amz-checksum-sha1",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }
    /// Length of the raw digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Crc32 | Self::Crc32c => 4,
            Self::Crc64Nvme => 8,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }
    fn crc(self) -> Option<CrcAlgorithm> {
        match self {
            Self::Crc32 => Some(CrcAlgorithm::Crc32IsoHdlc),
            Self::Crc32c => Some(CrcAlgorithm::Crc32Iscsi),
            Self::Crc64Nvme => Some(CrcAlgorithm::Crc64Nvme),
            _ => None,
        }
    }
    /// Whether multipart objects may carry a full-object checksum.
    pub fn supports_full_object(self) -> bool {
        self.crc().is_some()
    }
    /// Whether multipart objects may carry a composite checksum.
    pub fn supports_composite(self) -> bool {
        self != Self::Crc64Nvme
    }
    /// The default multipart checksum type.
    pub fn default_multipart_type(self) -> ChecksumType {
        if self.supports_composite() {
            ChecksumType::Composite
        } else {
            ChecksumType::FullObject
        }
    }
    /// Checks that `b64` is a well-formed value for this algorithm.
    pub fn decode_value(self, b64: &str) -> Option<Vec<u8>> {
        B64.decode(b64.trim())
            .ok()
            .filter(|v| v.len() == self.digest_len())
    }

    /// CRC-combines two raw CRC values (`b` covering `len_b` bytes); `None`
    /// for the SHA algorithms.
    pub fn combine(self, a: &[u8], b: &[u8], len_b: u64) -> Option<Vec<u8>> {
        let alg = self.crc()?;
        let combined = crc_fast::checksum_combine(alg, be_to_u64(a), be_to_u64(b), len_b);
        Some(u64_to_be(combined, self.digest_len()))
    }

    /// The composite checksum: this algorithm over the concatenated raw part
    /// checksums, as `<b64>-N`.
    pub fn composite(self, parts: &[Vec<u8>]) -> String {
        let mut h = Hasher::new(self);
        for p in parts {
            h.update(p);
        }
        format!("{}-{}", B64.encode(h.finish()), parts.len())
    }
}

fn be_to_u64(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x))
}

fn u64_to_be(v: u64, len: usize) -> Vec<u8> {
    v.to_be_bytes()[8 - len..].to_vec()
}

/// Base64 encoding used by S3 checksum headers.
pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// An incremental hasher for one algorithm.
pub enum Hasher {
    /// CRCs.
    Crc(crc_fast::Digest, usize),
    /// SHA-1.
    Sha1(Sha1),
    /// SHA-256.
    Sha256(Sha256),
}

impl Hasher {
    /// A new hasher.
    pub fn new(alg: ChecksumAlgorithm) -> Self {
        match alg.crc() {
            Some(c) => Hasher::Crc(crc_fast::Digest::new(c), alg.digest_len()),
            None if alg == ChecksumAlgorithm::Sha1 => Hasher::Sha1(Sha1::new()),
            None => Hasher::Sha256(Sha256::new()),
        }
    }
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc(d, _) => d.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
        }
    }
    /// The raw digest, big-endian for CRCs.
    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Crc(d, len) => u64_to_be(d.finalize(), len),
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(alg: ChecksumAlgorithm, data: &[u8]) -> String {
        let mut h = Hasher::new(alg);
        h.update(data);
        b64(&h.finish())
    }

    #[test]
    fn known_values() {
        // The values AWS documents for the payload "Hello world".
        assert_eq!(digest(ChecksumAlgorithm::Crc32, b"Hello world"), "i9aeUg==");
        assert_eq!(
            digest(ChecksumAlgorithm::Crc32c, b"Hello world"),
            "crUfeA=="
        );
        assert_eq!(
            digest(ChecksumAlgorithm::Sha1, b"Hello world"),
            "e1AsOh9IyGCa4hLN+2Od7jlnP14="
        );
        assert_eq!(
            digest(ChecksumAlgorithm::Crc64Nvme, b"Hello world"),
            "OOJZ0D8xKts="
        );
    }

    #[test]
    fn combine_equals_whole() {
        for alg in [
            ChecksumAlgorithm::Crc32,
            ChecksumAlgorithm::Crc32c,
            ChecksumAlgorithm::Crc64Nvme,
        ] {
            let mut a = Hasher::new(alg);
            a.update(b"hello ");
            let mut b = Hasher::new(alg);
            b.update(b"world");
            let combined = alg.combine(&a.finish(), &b.finish(), 5).unwrap();
            let mut whole = Hasher::new(alg);
            whole.update(b"hello world");
            assert_eq!(combined, whole.finish(), "{alg:?}");
        }
    }
}
