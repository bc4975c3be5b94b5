"""Conditional writes and not-found-vs-denied, through boto3 and the aws CLI.

If-None-Match: * and If-Match on PutObject, CopyObject and
CompleteMultipartUpload answer 412 PreconditionFailed, 404 NoSuchKey (If-Match
on a missing key) or succeed; racing If-None-Match: * PUTs leave one winner,
the losers getting 412 or 409 ConditionalRequestConflict. A missing key is
404 only for callers who may list the bucket.
"""

from __future__ import annotations

import json
import threading

import pytest
from botocore import UNSIGNED
from botocore.exceptions import ClientError

from conftest import make_client


def _err(e: pytest.ExceptionInfo) -> tuple[int, str]:
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def test_boto3_put_conditions(s3, bucket):
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"first", IfNoneMatch="*")["ETag"]
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"second", IfNoneMatch="*")
    assert _err(e) == (412, "PreconditionFailed")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"second", IfMatch='"0123"')
    assert _err(e) == (412, "PreconditionFailed")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="missing", Body=b"x", IfMatch=first)
    assert _err(e) == (404, "NoSuchKey")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"first"
    s3.put_object(Bucket=bucket, Key="k", Body=b"second", IfMatch=first)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"second"
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="other", Body=b"x", IfNoneMatch=first)
    assert _err(e) == (501, "NotImplemented")


def test_boto3_copy_and_complete_conditions(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"source")
    s3.put_object(Bucket=bucket, Key="dst", Body=b"old")
    src = {"Bucket": bucket, "Key": "src"}
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource=src, IfNoneMatch="*")
    assert _err(e) == (412, "PreconditionFailed")
    s3.copy_object(Bucket=bucket, Key="new", CopySource=src, IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="new")["Body"].read() == b"source"

    def upload(body: bytes) -> tuple[str, dict]:
        uid = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
        etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1,
                              Body=body)["ETag"]
        return uid, {"Parts": [{"PartNumber": 1, "ETag": etag}]}

    uid, parts = upload(b"one")
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid,
                                        MultipartUpload=parts, IfNoneMatch="*")
    retry = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid,
                                         MultipartUpload=parts, IfNoneMatch="*")
    assert retry["ETag"] == done["ETag"], "a retried Complete answers as the first"
    uid2, parts2 = upload(b"two")
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid2,
                                     MultipartUpload=parts2, IfNoneMatch="*")
    assert _err(e) == (412, "PreconditionFailed")
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid2,
                                 MultipartUpload=parts2, IfMatch=done["ETag"])
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"two"


def test_boto3_racing_if_none_match(server, bucket):
    clients = [make_client(server) for _ in range(8)]
    outcomes: dict[int, tuple] = {}
    conflicts = 0
    for rnd in range(10):
        key = f"race/{rnd}"
        barrier = threading.Barrier(len(clients))

        def put(i: int) -> None:
            body = f"round {rnd} client {i}".encode()
            barrier.wait()
            try:
                clients[i].put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
                outcomes[i] = ("ok", body)
            except ClientError as e:
                r = e.response
                outcomes[i] = (r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"])

        threads = [threading.Thread(target=put, args=(i,)) for i in range(len(clients))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [o[1] for o in outcomes.values() if o[0] == "ok"]
        losers = [o for o in outcomes.values() if o[0] != "ok"]
        assert len(winners) == 1, outcomes
        assert all(o in [(412, "PreconditionFailed"), (409, "ConditionalRequestConflict")]
                   for o in losers), losers
        conflicts += sum(1 for o in losers if o[0] == 409)
        stored = clients[0].get_object(Bucket=bucket, Key=key)["Body"].read()
        assert stored == winners[0]
    print(f"{conflicts} of 70 losers got 409 ConditionalRequestConflict")


def test_cli_put_conditions(aws, s3, bucket, tmp_path):
    f = tmp_path / "body"
    f.write_bytes(b"from the cli")
    ok = aws("s3api", "put-object", "--bucket", bucket, "--key", "c", "--body", str(f),
             "--if-none-match", "*")
    etag = json.loads(ok.stdout)["ETag"]
    res = aws("s3api", "put-object", "--bucket", bucket, "--key", "c", "--body", str(f),
              "--if-none-match", "*", check=False)
    assert res.returncode != 0
    assert "(PreconditionFailed)" in res.stderr, res.stderr
    res = aws("s3api", "put-object", "--bucket", bucket, "--key", "nope", "--body", str(f),
              "--if-match", etag, check=False)
    assert res.returncode != 0
    assert "NoSuchKey" in res.stderr, res.stderr
    aws("s3api", "put-object", "--bucket", bucket, "--key", "c", "--body", str(f),
        "--if-match", etag)
    res = aws("s3api", "copy-object", "--bucket", bucket, "--key", "c",
              "--copy-source", f"{bucket}/c", "--metadata-directive", "REPLACE",
              "--if-none-match", "*", check=False)
    assert res.returncode != 0
    assert "PreconditionFailed" in res.stderr, res.stderr
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"from the cli"


def test_missing_key_is_404_only_with_list_permission(server, s3, bucket, aws):
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"a")
    anon = make_client(server, signature_version=UNSIGNED)
    get_only = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{bucket}/*"}]}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(get_only))
    assert anon.get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"a"
    with pytest.raises(ClientError) as e:
        anon.get_object(Bucket=bucket, Key="missing")
    assert _err(e) == (403, "AccessDenied")
    with pytest.raises(ClientError) as e:
        anon.head_object(Bucket=bucket, Key="missing")
    assert _err(e)[0] == 403
    res = aws("s3api", "head-object", "--bucket", bucket, "--key", "missing",
              "--no-sign-request", check=False)
    assert res.returncode != 0 and "403" in res.stderr, res.stderr

    list_too = dict(get_only)
    list_too["Statement"] = get_only["Statement"] + [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket",
         "Resource": f"arn:aws:s3:::{bucket}"}]
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(list_too))
    with pytest.raises(ClientError) as e:
        anon.get_object(Bucket=bucket, Key="missing")
    assert _err(e) == (404, "NoSuchKey")
    with pytest.raises(ClientError) as e:
        anon.head_object(Bucket=bucket, Key="missing")
    assert _err(e)[0] == 404
    res = aws("s3api", "head-object", "--bucket", bucket, "--key", "missing",
              "--no-sign-request", check=False)
    assert res.returncode != 0 and "404" in res.stderr, res.stderr
