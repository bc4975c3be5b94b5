"""Object and bucket tagging on the wire with boto3 and the aws CLI, plus
POST Object's `tagging` form field."""

from __future__ import annotations

import json

import botocore.exceptions
import pytest

from conftest import make_client
from test_post_object import _post


def _error(exc: botocore.exceptions.ClientError) -> tuple[int, str]:
    r = exc.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def _tags(s3, bucket, key):
    return [(t["Key"], t["Value"]) for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]]


def test_boto3_object_tagging(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data", Tagging="a=1&b=two%20words")
    assert _tags(s3, bucket, "k") == [("a", "1"), ("b", "two words")]
    head = s3.head_object(Bucket=bucket, Key="k")
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "2"
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["TagCount"] == 2
    assert got["Body"].read() == b"data"

    r = s3.put_object_tagging(
        Bucket=bucket, Key="k", Tagging={"TagSet": [{"Key": "only", "Value": "v"}]}
    )
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert _tags(s3, bucket, "k") == [("only", "v")]

    r = s3.delete_object_tagging(Bucket=bucket, Key="k")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert _tags(s3, bucket, "k") == []
    assert "TagCount" not in s3.get_object(Bucket=bucket, Key="k")

    s3.copy_object(
        Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "k"},
        TaggingDirective="REPLACE", Tagging="x=y",
    )
    assert _tags(s3, bucket, "c") == [("x", "y")]
    s3.copy_object(Bucket=bucket, Key="c2", CopySource={"Bucket": bucket, "Key": "c"})
    assert _tags(s3, bucket, "c2") == [("x", "y")]


@pytest.mark.parametrize(
    "tagset",
    [
        [{"Key": f"k{i}", "Value": "v"} for i in range(11)],
        [{"Key": "k" * 129, "Value": "v"}],
        [{"Key": "k", "Value": "v" * 257}],
        [{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}],
        [{"Key": "aws:k", "Value": "v"}],
    ],
    ids=["eleven", "long-key", "long-value", "duplicate", "aws-prefix"],
)
def test_boto3_invalid_object_tags(s3, bucket, tagset):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": tagset})
    assert _error(e.value) == (400, "InvalidTag")
    assert _tags(s3, bucket, "k") == []


def test_boto3_bucket_tagging(s3, bucket):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert _error(e.value) == (404, "NoSuchTagSet")
    r = s3.put_bucket_tagging(
        Bucket=bucket, Tagging={"TagSet": [{"Key": "env", "Value": "test"}]}
    )
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    got = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    assert got == [{"Key": "env", "Value": "test"}]
    r = s3.delete_bucket_tagging(Bucket=bucket)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert _error(e.value) == (404, "NoSuchTagSet")


def test_aws_cli_object_tagging(aws, s3, bucket):
    s3.put_object(Bucket=bucket, Key="cli", Body=b"x")
    tagging = json.dumps({"TagSet": [{"Key": "from", "Value": "cli"}, {"Key": "n", "Value": ""}]})
    aws("s3api", "put-object-tagging", "--bucket", bucket, "--key", "cli", "--tagging", tagging)
    out = json.loads(
        aws("s3api", "get-object-tagging", "--bucket", bucket, "--key", "cli").stdout
    )
    assert out["TagSet"] == [{"Key": "from", "Value": "cli"}, {"Key": "n", "Value": ""}]
    bad = json.dumps({"TagSet": [{"Key": "aws:x", "Value": "1"}]})
    res = aws("s3api", "put-object-tagging", "--bucket", bucket, "--key", "cli",
              "--tagging", bad, check=False)
    assert res.returncode != 0 and "InvalidTag" in res.stderr
    aws("s3api", "delete-object-tagging", "--bucket", bucket, "--key", "cli")
    out = json.loads(
        aws("s3api", "get-object-tagging", "--bucket", bucket, "--key", "cli").stdout
    )
    assert out["TagSet"] == []


def test_post_object_tagging_field(server, s3, bucket):
    client = make_client(server, signature_version="s3v4")
    doc = ("<Tagging><TagSet><Tag><Key>via</Key><Value>post</Value></Tag>"
           "</TagSet></Tagging>")
    post = client.generate_presigned_post(
        bucket, "posted", Fields={"tagging": doc}, Conditions=[{"tagging": doc}],
        ExpiresIn=300,
    )
    r = _post(server, post["url"], post["fields"], data=b"form")
    assert r.status == 204, r.data
    assert _tags(s3, bucket, "posted") == [("via", "post")]

    bad = "<Tagging><TagSet><Tag><Key>aws:x</Key><Value>1</Value></Tag></TagSet></Tagging>"
    post = client.generate_presigned_post(
        bucket, "posted-bad", Fields={"tagging": bad}, Conditions=[{"tagging": bad}],
        ExpiresIn=300,
    )
    r = _post(server, post["url"], post["fields"], data=b"form")
    assert r.status == 400 and b"InvalidTag" in r.data, r.data
