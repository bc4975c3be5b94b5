"""Multipart upload through boto3's low-level calls with SHA256 checksums."""

from __future__ import annotations

import hashlib
import os

import pytest
from botocore.exceptions import ClientError

from s3checksums import checksum, composite, multipart_etag

MiB = 1 << 20


def test_multipart_sha256_composite(s3, bucket):
    key = "mpu/sha256.bin"
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(MiB + 123)]

    mpu = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")
    upload_id = mpu["UploadId"]
    assert mpu.get("ChecksumAlgorithm") == "SHA256", mpu

    done = []
    for n, data in enumerate(parts, start=1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n,
                           Body=data, ChecksumAlgorithm="SHA256")
        assert r["ChecksumSHA256"] == checksum("SHA256", data), f"part {n}: {r}"
        assert r["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
        done.append({"ETag": r["ETag"], "PartNumber": n, "ChecksumSHA256": r["ChecksumSHA256"]})

    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2, 3]
    assert [p["Size"] for p in listed["Parts"]] == [len(p) for p in parts]
    assert [p.get("ChecksumSHA256") for p in listed["Parts"]] == [
        d["ChecksumSHA256"] for d in done
    ]

    expected = composite("SHA256", parts)
    fin = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    assert fin["ETag"] == multipart_etag(parts)
    assert fin.get("ChecksumSHA256") == expected, fin

    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ContentLength"] == sum(map(len, parts))
    assert head["ETag"] == multipart_etag(parts)
    assert head.get("ChecksumSHA256") == expected, {
        k: v for k, v in head.items() if k.startswith("Checksum")
    }
    assert head.get("ChecksumType") == "COMPOSITE"

    body = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(b"".join(parts)).digest()

    # The upload is gone once completed.
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert e.value.response["Error"]["Code"] == "NoSuchUpload"


def test_multipart_wrong_part_checksum_rejected_on_complete(s3, bucket):
    key = "mpu/bad.bin"
    data = os.urandom(5 * MiB)
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")
    r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=1,
                       Body=data, ChecksumAlgorithm="SHA256")
    wrong = checksum("SHA256", data + b"!")
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=up["UploadId"],
            MultipartUpload={"Parts": [
                {"ETag": r["ETag"], "PartNumber": 1, "ChecksumSHA256": wrong}
            ]},
        )
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert e.value.response["Error"]["Code"] == "BadDigest", e.value.response["Error"]
    s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=up["UploadId"])
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key=key)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_multipart_abort_and_list_uploads(s3, bucket):
    ups = [s3.create_multipart_upload(Bucket=bucket, Key=f"mpu/a{i}")["UploadId"]
           for i in range(3)]
    listed = s3.list_multipart_uploads(Bucket=bucket)
    assert sorted(u["UploadId"] for u in listed.get("Uploads", [])) == sorted(ups)
    for i, u in enumerate(ups):
        s3.abort_multipart_upload(Bucket=bucket, Key=f"mpu/a{i}", UploadId=u)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
