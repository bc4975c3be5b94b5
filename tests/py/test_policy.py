"""Bucket policies through the aws CLI and boto3, including an anonymous
(unsigned) boto3 client reading an object a public-read policy exposes."""

from __future__ import annotations

import json

import pytest
from botocore import UNSIGNED
from botocore.exceptions import ClientError

from conftest import make_client


def _err(exc: pytest.ExceptionInfo) -> tuple[int, str]:
    r = exc.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def _public_read(bucket: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
             "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/public/*"},
            {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
             "Resource": f"arn:aws:s3:::{bucket}/*",
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        ],
    }


def test_policy_with_the_cli_and_an_anonymous_client(server, aws, s3, bucket, tmp_path):
    s3.put_object(Bucket=bucket, Key="public/hello.txt", Body=b"hello")
    s3.put_object(Bucket=bucket, Key="private.txt", Body=b"secret")
    anon = make_client(server, signature_version=UNSIGNED)
    with pytest.raises(ClientError) as e:
        anon.get_object(Bucket=bucket, Key="public/hello.txt")
    assert _err(e) == (403, "AccessDenied")

    doc = json.dumps(_public_read(bucket))
    path = tmp_path / "policy.json"
    path.write_text(doc)
    aws("s3api", "put-bucket-policy", "--bucket", bucket, "--policy", f"file://{path}")
    got = aws("s3api", "get-bucket-policy", "--bucket", bucket, "--output", "json")
    assert json.loads(json.loads(got.stdout)["Policy"]) == _public_read(bucket)
    status = aws("s3api", "get-bucket-policy-status", "--bucket", bucket, "--output", "json")
    assert json.loads(status.stdout)["PolicyStatus"]["IsPublic"] is True

    assert anon.get_object(Bucket=bucket, Key="public/hello.txt")["Body"].read() == b"hello"
    with pytest.raises(ClientError) as e:
        anon.get_object(Bucket=bucket, Key="private.txt")
    assert _err(e) == (403, "AccessDenied")
    with pytest.raises(ClientError) as e:
        anon.put_object(Bucket=bucket, Key="public/new.txt", Body=b"x")
    assert _err(e) == (403, "AccessDenied")

    assert s3.get_bucket_policy(Bucket=bucket)["Policy"] == doc
    s3.delete_bucket_policy(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_policy(Bucket=bucket)
    assert _err(e) == (404, "NoSuchBucketPolicy")
    with pytest.raises(ClientError) as e:
        anon.get_object(Bucket=bucket, Key="public/hello.txt")
    assert _err(e) == (403, "AccessDenied")


def test_malformed_policy_from_the_cli(aws, bucket, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::some-other-bucket/*"}]}))
    res = aws("s3api", "put-bucket-policy", "--bucket", bucket, "--policy", f"file://{path}",
              check=False)
    assert res.returncode != 0
    assert "MalformedPolicy" in res.stderr
    assert "Policy has invalid resource" in res.stderr
