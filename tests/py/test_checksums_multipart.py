"""The 2025 checksum model end to end with the aws CLI and boto3 over HTTPS.

Uploads use the clients' own defaults (botocore >= 1.36 sends CRC32): a
multipart `aws s3 cp` with a small `multipart_chunksize` set through
`aws configure set` in a private AWS_CONFIG_FILE, and boto3's transfer
manager (`upload_file` with a TransferConfig). The objects are then checked
with `aws s3api get-object-attributes` and `head-object --checksum-mode
ENABLED`. FULL_OBJECT uploads (CRC32, CRC32C, CRC64NVME), BadDigest for a
wrong header, trailer or part checksum, and POST Object's checksum fields
follow. Expected values come from zlib and awscrt (cross-checked against the
pure-Python s3checksums), never from the server.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import zlib
from pathlib import Path

import pytest
import urllib3
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from s3checksums import checksum, composite, file_parts, multipart_etag, raw_digest

MiB = 1 << 20

try:
    from awscrt import checksums as crt
except ImportError:  # pragma: no cover - awscrt ships with the project's .venv
    crt = None


def independent(alg: str, data: bytes) -> bytes:
    """The raw checksum of `data` from zlib or awscrt, checked against the
    pure-Python implementation."""
    a = alg.upper()
    if a == "CRC32":
        raw = (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")
    elif a == "CRC32C" and crt is not None:
        raw = crt.crc32c(data).to_bytes(4, "big")
    elif a == "CRC64NVME" and crt is not None:
        raw = crt.crc64nvme(data).to_bytes(8, "big")
    else:
        raw = raw_digest(a, data)
    assert raw == raw_digest(a, data), f"{a}: zlib/awscrt and s3checksums disagree"
    return raw


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def composite_value(alg: str, parts: list[bytes]) -> str:
    """The composite checksum without its `-N`."""
    joined = b"".join(independent(alg, p) for p in parts)
    value = b64(independent(alg, joined))
    assert f"{value}-{len(parts)}" == composite(alg, parts)
    return value


def _attributes(aws, bucket, key, *extra) -> dict:
    out = aws("s3api", "get-object-attributes", "--bucket", bucket, "--key", key,
              "--object-attributes", "ETag", "Checksum", "ObjectParts", "ObjectSize",
              *extra)
    return json.loads(out.stdout)


def _head(aws, bucket, key) -> dict:
    out = aws("s3api", "head-object", "--bucket", bucket, "--key", key,
              "--checksum-mode", "ENABLED")
    return json.loads(out.stdout)


def _check_composite_object(aws, bucket, key, alg, parts, *, page=None):
    """get-object-attributes and head-object of a composite object of
    `parts`, with per-part checksums; with `page`, ObjectParts is read in
    pages of that many parts."""
    whole_size = sum(len(p) for p in parts)
    attrs = _attributes(aws, bucket, key)
    assert attrs["ETag"] == multipart_etag(parts).strip('"'), attrs
    assert attrs["ObjectSize"] == whole_size
    assert attrs["Checksum"] == {
        f"Checksum{alg}": composite_value(alg, parts),
        "ChecksumType": "COMPOSITE",
    }, attrs
    op = attrs["ObjectParts"]
    assert op["TotalPartsCount"] == len(parts), op
    assert op["IsTruncated"] is False
    listed = [(p["PartNumber"], p["Size"], p[f"Checksum{alg}"]) for p in op["Parts"]]
    assert listed == [
        (i + 1, len(p), b64(independent(alg, p))) for i, p in enumerate(parts)
    ]
    if page:
        seen, marker = [], "0"
        while True:
            out = _attributes(aws, bucket, key, "--max-parts", str(page),
                              "--part-number-marker", marker)["ObjectParts"]
            assert out["MaxParts"] == page and out["PartNumberMarker"] == int(marker)
            seen += [p["PartNumber"] for p in out["Parts"]]
            if not out["IsTruncated"]:
                break
            marker = str(out["NextPartNumberMarker"])
        assert seen == list(range(1, len(parts) + 1))
    head = _head(aws, bucket, key)
    assert head[f"Checksum{alg}"] == f"{composite_value(alg, parts)}-{len(parts)}", head
    assert head["ChecksumType"] == "COMPOSITE"
    assert head["ETag"] == multipart_etag(parts)


def test_cli_cp_multipart_then_attributes(aws, server, bucket, tmp_path: Path):
    cfg = tmp_path / "aws-config"
    cfg.write_text(Path(server.env["AWS_CONFIG_FILE"]).read_text())
    env = {"AWS_CONFIG_FILE": str(cfg)}
    for name, value in [("multipart_threshold", "5MB"), ("multipart_chunksize", "5MB")]:
        aws("configure", "set", f"default.s3.{name}", value, env=env)
    src = tmp_path / "cli.bin"
    src.write_bytes(os.urandom(11 * MiB + 123))
    aws("s3", "cp", str(src), f"s3://{bucket}/cli/mp", env=env)
    parts = file_parts(src, 5 * MiB)
    assert len(parts) == 3
    _check_composite_object(aws, bucket, "cli/mp", "CRC32", parts, page=2)
    # A partNumber HEAD shows the part's own checksum.
    head = json.loads(aws("s3api", "head-object", "--bucket", bucket, "--key", "cli/mp",
                          "--part-number", "3", "--checksum-mode", "ENABLED").stdout)
    assert head["ChecksumCRC32"] == b64(independent("CRC32", parts[2])), head
    assert head["ChecksumType"] == "COMPOSITE" and head["PartsCount"] == 3
    assert head["ContentLength"] == len(parts[2])


@pytest.mark.parametrize("extra", [{}, {"ChecksumAlgorithm": "CRC32C"}],
                         ids=["default", "crc32c"])
def test_upload_file_transfer_manager_then_attributes(aws, s3, bucket, tmp_path: Path, extra):
    sent: list[tuple[str, dict]] = []

    def record(request, event_name, **_kw):
        sent.append((event_name.rsplit(".", 1)[-1], dict(request.headers)))

    s3.meta.events.register("before-send.s3", record)
    try:
        src = tmp_path / "tm.bin"
        src.write_bytes(os.urandom(12 * MiB))
        config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
        s3.upload_file(str(src), bucket, "tm/obj", Config=config, ExtraArgs=extra)
    finally:
        s3.meta.events.unregister("before-send.s3", record)
    create = [h for op, h in sent if op == "CreateMultipartUpload"]
    assert create, [op for op, _ in sent]
    alg = create[0]["x-amz-checksum-algorithm"]
    alg = (alg.decode() if isinstance(alg, bytes) else alg).upper()
    assert alg == extra.get("ChecksumAlgorithm", "CRC32")
    parts = file_parts(src, 5 * MiB)
    _check_composite_object(aws, bucket, "tm/obj", alg, parts, page=1)
    # boto3 reads the same attributes, and a part's own checksum on a
    # partNumber GET (which botocore validates against the part's bytes).
    got = s3.get_object(Bucket=bucket, Key="tm/obj", PartNumber=2, ChecksumMode="ENABLED")
    assert got["Body"].read() == parts[1]
    assert got[f"Checksum{alg}"] == b64(independent(alg, parts[1]))
    assert got["ChecksumType"] == "COMPOSITE"
    assert got["PartsCount"] == 3


@pytest.mark.parametrize("alg", ["CRC32", "CRC32C", "CRC64NVME"])
def test_full_object_multipart_checksum(aws, s3, bucket, alg):
    p1, p2 = os.urandom(5 * MiB), os.urandom(777_777)
    whole = p1 + p2
    expected = b64(independent(alg, whole))
    key = f"full/{alg}"
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm=alg,
                                    ChecksumType="FULL_OBJECT")
    assert up["ChecksumAlgorithm"] == alg and up["ChecksumType"] == "FULL_OBJECT"
    done = []
    for n, body in [(1, p1), (2, p2)]:
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=n,
                           Body=body, ChecksumAlgorithm=alg)
        assert r[f"Checksum{alg}"] == b64(independent(alg, body))
        done.append({"PartNumber": n, "ETag": r["ETag"], f"Checksum{alg}": r[f"Checksum{alg}"]})
    out = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=up["UploadId"], MultipartUpload={"Parts": done},
        ChecksumType="FULL_OBJECT", **{f"Checksum{alg}": expected})
    assert out[f"Checksum{alg}"] == expected and out["ChecksumType"] == "FULL_OBJECT"
    head = _head(aws, bucket, key)
    assert head[f"Checksum{alg}"] == expected and head["ChecksumType"] == "FULL_OBJECT"
    attrs = _attributes(aws, bucket, key)
    assert attrs["Checksum"] == {f"Checksum{alg}": expected, "ChecksumType": "FULL_OBJECT"}
    assert [p[f"Checksum{alg}"] for p in attrs["ObjectParts"]["Parts"]] == [
        b64(independent(alg, p1)), b64(independent(alg, p2))]
    # boto3 reads the second page of one part.
    page = s3.get_object_attributes(Bucket=bucket, Key=key, MaxParts=1, PartNumberMarker=1,
                                    ObjectAttributes=["ObjectParts", "Checksum"])
    op = page["ObjectParts"]
    assert (op["TotalPartsCount"], op["PartNumberMarker"], op["MaxParts"],
            op["IsTruncated"]) == (2, 1, 1, False), op
    assert op["NextPartNumberMarker"] == 2
    assert [(p["PartNumber"], p["Size"], p[f"Checksum{alg}"]) for p in op["Parts"]] == [
        (2, len(p2), b64(independent(alg, p2)))]
    assert page["Checksum"][f"Checksum{alg}"] == expected
    # botocore validates a full-object checksum on GET itself.
    got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert got["Body"].read() == whole


def _error(e: pytest.ExceptionInfo) -> tuple[int, str]:
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def test_wrong_checksum_header_is_bad_digest(s3, bucket):
    body = os.urandom(10_000)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bad/hdr", Body=body,
                      ChecksumCRC32C=checksum("CRC32C", body + b"!"))
    assert _error(e) == (400, "BadDigest")
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="bad/hdr")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_wrong_trailer_checksum_is_bad_digest(s3, bucket):
    """botocore sends PutObject aws-chunked with the CRC32 in a trailer; the
    trailer is swapped for a wrong value just before sending."""
    body = os.urandom(20_000)
    right = checksum("CRC32", body)
    wrong = checksum("CRC32", body[:-1])
    seen = []

    def corrupt(request, **_kw):
        data = request.body.read() if hasattr(request.body, "read") else request.body
        assert f"x-amz-checksum-crc32:{right}".encode() in data, data[-200:]
        seen.append(True)
        request.body = data.replace(right.encode(), wrong.encode())

    s3.meta.events.register("before-send.s3.PutObject", corrupt)
    try:
        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket=bucket, Key="bad/trailer", Body=body)
    finally:
        s3.meta.events.unregister("before-send.s3.PutObject", corrupt)
    assert seen, "the request was never sent"
    assert _error(e) == (400, "BadDigest")
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="bad/trailer")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_wrong_part_checksum_on_complete_is_bad_digest(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="bad/part", ChecksumAlgorithm="SHA256")
    p1, p2 = os.urandom(5 * MiB), os.urandom(1000)
    parts = []
    for n, body in [(1, p1), (2, p2)]:
        r = s3.upload_part(Bucket=bucket, Key="bad/part", UploadId=up["UploadId"],
                           PartNumber=n, Body=body, ChecksumAlgorithm="SHA256")
        parts.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumSHA256": r["ChecksumSHA256"]})
    wrong = [dict(parts[0]), {**parts[1], "ChecksumSHA256": checksum("SHA256", p1)}]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="bad/part", UploadId=up["UploadId"],
                                     MultipartUpload={"Parts": wrong})
    assert _error(e) == (400, "BadDigest")
    other = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"], "ChecksumCRC32": "AAAAAA=="}
             for p in parts]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="bad/part", UploadId=up["UploadId"],
                                     MultipartUpload={"Parts": other})
    assert _error(e) == (400, "InvalidRequest")
    # A checksum type other than Create's is BadDigest (CompleteMultipartUpload
    # reference, x-amz-checksum-type).
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="bad/part", UploadId=up["UploadId"],
                                     MultipartUpload={"Parts": parts},
                                     ChecksumType="FULL_OBJECT")
    assert _error(e) == (400, "BadDigest")
    # A composite upload needs each part's checksum on Complete.
    bare = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="bad/part", UploadId=up["UploadId"],
                                     MultipartUpload={"Parts": bare})
    assert _error(e) == (400, "InvalidRequest")
    out = s3.complete_multipart_upload(Bucket=bucket, Key="bad/part", UploadId=up["UploadId"],
                                       MultipartUpload={"Parts": parts})
    assert out["ChecksumSHA256"] == composite("SHA256", [p1, p2])


def _post(server, post, data):
    http = urllib3.PoolManager(ca_certs=str(server.ca), retries=False)
    fields = list(post["fields"].items()) + [("file", ("f.bin", data, "application/octet-stream"))]
    body, ctype = urllib3.encode_multipart_formdata(fields)
    return http.request("POST", post["url"], body=body, headers={"Content-Type": ctype},
                        redirect=False)


def test_post_object_checksum_fields(server, s3, bucket):
    data = os.urandom(30_000)

    def presign(key, fields):
        return s3.generate_presigned_post(bucket, key, Fields=fields,
                                          Conditions=[{k: v} for k, v in fields.items()],
                                          ExpiresIn=300)

    right = checksum("CRC32C", data)
    r = _post(server, presign("post/value", {"x-amz-checksum-crc32c": right}), data)
    assert r.status == 204, r.data
    assert r.headers.get("x-amz-checksum-crc32c") == right
    head = s3.head_object(Bucket=bucket, Key="post/value", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32C"] == right and head["ChecksumType"] == "FULL_OBJECT"

    r = _post(server, presign("post/alg", {"x-amz-checksum-algorithm": "CRC64NVME"}), data)
    assert r.status == 204, r.data
    head = s3.head_object(Bucket=bucket, Key="post/alg", ChecksumMode="ENABLED")
    assert head["ChecksumCRC64NVME"] == b64(independent("CRC64NVME", data))

    wrong = checksum("CRC32C", data[1:])
    r = _post(server, presign("post/wrong", {"x-amz-checksum-crc32c": wrong}), data)
    assert r.status == 400 and b"<Code>BadDigest</Code>" in r.data, r.data
    r = _post(server, presign("post/two", {"x-amz-checksum-crc32c": right,
                                           "x-amz-checksum-sha1": checksum("SHA1", data)}), data)
    assert r.status == 400 and b"<Code>InvalidRequest</Code>" in r.data, r.data
    # An algorithm cloudmux does not implement is refused, naming the field,
    # never ignored.
    sha512 = base64.b64encode(hashlib.sha512(data).digest()).decode()
    r = _post(server, presign("post/sha512", {"x-amz-checksum-sha512": sha512}), data)
    assert r.status == 400 and b"<Code>InvalidRequest</Code>" in r.data, r.data
    assert b"x-amz-checksum-sha512" in r.data, r.data
    for key in ["post/wrong", "post/two", "post/sha512"]:
        with pytest.raises(ClientError) as e:
            s3.head_object(Bucket=bucket, Key=key)
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
