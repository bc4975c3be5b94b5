"""Local, independent computation of the S3 flexible checksums.

CRC32 uses zlib; CRC32C and CRC64NVME are small table-driven pure-Python
implementations (checked against the standard check values at import), so
the expected values never come from the client library under test.
"""

from __future__ import annotations

import base64
import hashlib
import zlib


def _table(poly: int, width: int) -> list[int]:
    mask = (1 << width) - 1
    out = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        out.append(c & mask)
    return out


_CRC32C = _table(0x82F63B78, 32)
_CRC64NVME = _table(0x9A6C9329AC4BC9B5, 64)


def _reflected(data: bytes, table: list[int], width: int) -> int:
    mask = (1 << width) - 1
    c = mask
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ mask


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def crc32c(data: bytes) -> int:
    return _reflected(data, _CRC32C, 32)


def crc64nvme(data: bytes) -> int:
    return _reflected(data, _CRC64NVME, 64)


assert crc32c(b"123456789") == 0xE3069283
assert crc64nvme(b"123456789") == 0xAE8B14860A799888
assert crc32(b"123456789") == 0xCBF43926


def raw_digest(algorithm: str, data: bytes) -> bytes:
    """The raw checksum bytes S3 base64-encodes (big-endian for CRCs)."""
    a = algorithm.upper()
    if a == "CRC32":
        return crc32(data).to_bytes(4, "big")
    if a == "CRC32C":
        return crc32c(data).to_bytes(4, "big")
    if a == "CRC64NVME":
        return crc64nvme(data).to_bytes(8, "big")
    if a == "SHA1":
        return hashlib.sha1(data).digest()
    if a == "SHA256":
        return hashlib.sha256(data).digest()
    raise ValueError(algorithm)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def checksum(algorithm: str, data: bytes) -> str:
    """Full-object checksum as S3 returns it (base64)."""
    return b64(raw_digest(algorithm, data))


def composite(algorithm: str, parts: list[bytes]) -> str:
    """Multipart COMPOSITE checksum: checksum of the concatenated raw part
    checksums, base64, then `-N`."""
    joined = b"".join(raw_digest(algorithm, p) for p in parts)
    return f"{b64(raw_digest(algorithm, joined))}-{len(parts)}"


def file_parts(path, part_size: int) -> list[bytes]:
    out = []
    with open(path, "rb") as f:
        while True:
            chunk = f.read(part_size)
            if not chunk:
                break
            out.append(chunk)
    return out


def multipart_etag(parts: list[bytes]) -> str:
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(md5s).hexdigest()}-{len(parts)}"'


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
