"""Flexible checksums with the newest boto3 / aws CLI defaults over HTTPS.

botocore >= 1.36 computes a CRC32 for every upload by default
(request_checksum_calculation = when_supported). Over HTTPS, PutObject and
UploadPart are sent aws-chunked with `x-amz-content-sha256:
STREAMING-UNSIGNED-PAYLOAD-TRAILER` and the checksum in a trailer. The
expected checksum values are computed locally (s3checksums.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from s3checksums import checksum, composite, file_parts, sha256_file

MiB = 1 << 20
ALGORITHMS = ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"]


@pytest.fixture
def sent(s3):
    """Records (operation, headers) of every request the s3 client sends."""
    log: list[tuple[str, dict]] = []

    def handler(request, event_name, **_kw):
        op = event_name.rsplit(".", 1)[-1]  # before-send.s3.PutObject
        log.append((op, {k.lower(): v for k, v in request.headers.items()}))

    s3.meta.events.register("before-send.s3", handler)
    yield log
    s3.meta.events.unregister("before-send.s3", handler)


def _headers(log, op_name):
    out = [h for op, h in log if op == op_name]
    assert out, f"no {op_name} request captured: {[op for op, _ in log]}"
    return out


def _hval(h: dict, name: str) -> str:
    v = h.get(name)
    return v.decode() if isinstance(v, bytes) else (v or "")


def _trailer_algorithm(h: dict) -> str:
    assert _hval(h, "x-amz-content-sha256") == "STREAMING-UNSIGNED-PAYLOAD-TRAILER", h
    trailer = _hval(h, "x-amz-trailer")
    assert trailer.startswith("x-amz-checksum-"), h
    return trailer[len("x-amz-checksum-"):].upper()


def _assert_object_checksum(s3, bucket, key, alg, expected, ctype, body=None):
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head.get(f"Checksum{alg}") == expected, (
        f"HEAD {key} ChecksumMode=ENABLED: expected Checksum{alg}={expected}, got "
        f"{ {k: v for k, v in head.items() if k.startswith('Checksum')} }"
    )
    assert head.get("ChecksumType") == ctype, head.get("ChecksumType")
    # botocore validates full-object checksums on GET itself (raises on mismatch).
    get = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    data = get["Body"].read()
    assert get.get(f"Checksum{alg}") == expected
    if body is not None:
        assert data == body
    return data


@pytest.mark.parametrize("size", [0, 1, 1_234_567])
def test_default_put_object_streams_trailer_checksum(s3, bucket, sent, size):
    body = os.urandom(size)
    key = f"default/put-{size}"
    resp = s3.put_object(Bucket=bucket, Key=key, Body=body)
    alg = _trailer_algorithm(_headers(sent, "PutObject")[0])
    expected = checksum(alg, body)
    assert resp.get(f"Checksum{alg}") == expected, resp
    _assert_object_checksum(s3, bucket, key, alg, expected, "FULL_OBJECT", body)


def test_default_put_object_file_body(s3, bucket, sent, tmp_path: Path):
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(3 * MiB + 17))
    with open(src, "rb") as f:
        s3.put_object(Bucket=bucket, Key="default/file", Body=f)
    alg = _trailer_algorithm(_headers(sent, "PutObject")[0])
    expected = checksum(alg, src.read_bytes())
    _assert_object_checksum(s3, bucket, "default/file", alg, expected, "FULL_OBJECT",
                            src.read_bytes())


def test_ranged_get_with_checksum_mode(s3, bucket):
    body = os.urandom(100_000)
    s3.put_object(Bucket=bucket, Key="ranged", Body=body)
    # A checksum of the whole object must not be presented as the checksum
    # of a partial body: botocore would fail validation of the range.
    got = s3.get_object(Bucket=bucket, Key="ranged", Range="bytes=10-20009",
                        ChecksumMode="ENABLED")
    assert got["Body"].read() == body[10:20010]
    assert got["ContentRange"] == f"bytes 10-20009/{len(body)}"
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206


def test_default_upload_file_multipart(s3, bucket, sent, tmp_path: Path):
    src = tmp_path / "twenty.bin"
    src.write_bytes(os.urandom(20 * MiB))
    s3.upload_file(str(src), bucket, "default/upload-file")  # 8 MiB parts -> 3

    cmu = _headers(sent, "CreateMultipartUpload")[0]
    alg = _hval(cmu, "x-amz-checksum-algorithm").upper()
    assert alg, f"CreateMultipartUpload carried no x-amz-checksum-algorithm: {cmu}"
    parts = _headers(sent, "UploadPart")
    assert len(parts) == 3
    assert {_trailer_algorithm(h) for h in parts} == {alg}

    expected = composite(alg, file_parts(src, 8 * MiB))
    _assert_object_checksum(s3, bucket, "default/upload-file", alg, expected, "COMPOSITE")

    dst = tmp_path / "back.bin"
    s3.download_file(bucket, "default/upload-file", str(dst))
    assert sha256_file(dst) == sha256_file(src)


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_put_object_checksum_algorithm(s3, bucket, sent, alg):
    body = os.urandom(256 * 1024 + 3)
    key = f"alg/{alg}"
    resp = s3.put_object(Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm=alg)
    assert _trailer_algorithm(_headers(sent, "PutObject")[0]) == alg
    expected = checksum(alg, body)
    assert resp.get(f"Checksum{alg}") == expected, resp
    _assert_object_checksum(s3, bucket, key, alg, expected, "FULL_OBJECT", body)


@pytest.mark.parametrize("alg", ["CRC32", "SHA256"])
def test_put_object_precomputed_checksum_header(s3, bucket, sent, alg):
    body = os.urandom(50_000)
    expected = checksum(alg, body)
    s3.put_object(Bucket=bucket, Key=f"pre/{alg}", Body=body, **{f"Checksum{alg}": expected})
    h = _headers(sent, "PutObject")[0]
    assert _hval(h, f"x-amz-checksum-{alg.lower()}") == expected
    _assert_object_checksum(s3, bucket, f"pre/{alg}", alg, expected, "FULL_OBJECT", body)


@pytest.mark.parametrize("alg", ["CRC32", "SHA256"])
def test_put_object_wrong_checksum_rejected(s3, bucket, alg):
    body = os.urandom(50_000)
    wrong = checksum(alg, body + b"x")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key=f"bad/{alg}", Body=body, **{f"Checksum{alg}": wrong})
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400, e.value.response
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key=f"bad/{alg}")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_put_object_wrong_content_md5_rejected(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bad/md5", Body=b"hello world",
                      ContentMD5="1B2M2Y8AsgTpgAmY7PhCfg==")  # md5 of ""
    err = e.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400, err
    assert err["Error"]["Code"] == "BadDigest", err["Error"]


@pytest.mark.parametrize("size", [100_000, 20 * MiB])
def test_cli_cp_default_checksum(aws, s3, bucket, tmp_path: Path, size):
    src = tmp_path / "cli.bin"
    src.write_bytes(os.urandom(size))
    key = f"cli/{size}"
    aws("s3", "cp", str(src), f"s3://{bucket}/{key}")
    out = json.loads(
        aws("s3api", "head-object", "--bucket", bucket, "--key", key,
            "--checksum-mode", "ENABLED").stdout
    )
    sums = {k: v for k, v in out.items() if k.startswith("Checksum") and k != "ChecksumType"}
    assert sums, f"head-object --checksum-mode ENABLED returned no checksum: {out}"
    assert list(sums) == ["ChecksumCRC32"], sums
    if size <= 8 * MiB:
        assert sums["ChecksumCRC32"] == checksum("CRC32", src.read_bytes())
        assert out.get("ChecksumType") == "FULL_OBJECT"
    else:
        assert sums["ChecksumCRC32"] == composite("CRC32", file_parts(src, 8 * MiB))
        assert out.get("ChecksumType") == "COMPOSITE"
    dst = tmp_path / "cli-back.bin"
    aws("s3", "cp", f"s3://{bucket}/{key}", str(dst))
    assert sha256_file(dst) == sha256_file(src)
