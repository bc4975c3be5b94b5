"""Basic object semantics and authentication errors seen through boto3."""

from __future__ import annotations

import os

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, REGION


def _err(e: pytest.ExceptionInfo) -> tuple[int, str]:
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def _client(server, access_key, secret_key):
    return boto3.session.Session().client(
        "s3", endpoint_url=server.endpoint, region_name=REGION, verify=str(server.ca),
        aws_access_key_id=access_key, aws_secret_access_key=secret_key,
        config=Config(s3={"addressing_style": "path"},
                      retries={"mode": "standard", "total_max_attempts": 1}),
    )


def test_wrong_secret_is_signature_mismatch(server, bucket):
    bad = _client(server, ACCESS_KEY, "not-the-secret")
    with pytest.raises(ClientError) as e:
        bad.list_objects_v2(Bucket=bucket)
    assert _err(e) == (403, "SignatureDoesNotMatch")
    with pytest.raises(ClientError) as e:
        bad.put_object(Bucket=bucket, Key="nope", Body=b"x")
    assert _err(e) == (403, "SignatureDoesNotMatch")


def test_unknown_access_key(server, bucket):
    bad = _client(server, "AKIAUNKNOWN000000000", "whatever")
    with pytest.raises(ClientError) as e:
        bad.list_objects_v2(Bucket=bucket)
    assert _err(e) == (403, "InvalidAccessKeyId")


def test_missing_key_and_bucket(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="does/not/exist")
    assert _err(e) == (404, "NoSuchKey")
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=bucket + "-missing")
    assert _err(e) == (404, "NoSuchBucket")


def test_metadata_range_delete(s3, bucket):
    body = os.urandom(10_000)
    s3.put_object(Bucket=bucket, Key="m", Body=body, ContentType="application/x-test",
                  Metadata={"color": "blue", "n": "42"})
    head = s3.head_object(Bucket=bucket, Key="m")
    assert head["ContentType"] == "application/x-test"
    assert head["Metadata"] == {"color": "blue", "n": "42"}
    assert head["ContentLength"] == len(body)

    r = s3.get_object(Bucket=bucket, Key="m", Range="bytes=100-199")
    assert r["Body"].read() == body[100:200]
    r = s3.get_object(Bucket=bucket, Key="m", Range="bytes=-50")
    assert r["Body"].read() == body[-50:]

    s3.delete_object(Bucket=bucket, Key="m")
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="m")
    assert _err(e)[0] == 404
    # Deleting a missing key is not an error in S3.
    assert s3.delete_object(Bucket=bucket, Key="m")["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_delete_non_empty_bucket_refused(s3, bucket):
    s3.put_object(Bucket=bucket, Key="keep", Body=b"1")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=bucket)
    assert _err(e) == (409, "BucketNotEmpty")
