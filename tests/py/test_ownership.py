"""S3 Object Ownership with boto3 and the aws CLI: CreateBucket's
x-amz-object-ownership, Put/Get/DeleteBucketOwnershipControls, and ACLs
disabled under BucketOwnerEnforced (AccessControlListNotSupported on every
ACL-carrying request, stored public-read grants no longer readable
anonymously, buckets without a setting unaffected). The cross-account cases
are in the Rust suite, tests/ownership.rs."""

from __future__ import annotations

import json

import pytest
import urllib3
from botocore import UNSIGNED
from botocore.exceptions import ClientError

from conftest import make_client, new_bucket_name


def _err(exc: pytest.ExceptionInfo) -> tuple[int, str]:
    r = exc.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def _ownership(s3, bucket: str) -> str:
    rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert len(rules) == 1
    return rules[0]["ObjectOwnership"]


def _controls(value: str) -> dict:
    return {"Rules": [{"ObjectOwnership": value}]}


def test_ownership_controls_with_boto3(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_bucket_ownership_controls(Bucket=bucket)
    assert _err(e) == (404, "OwnershipControlsNotFoundError")
    for value in ("BucketOwnerPreferred", "ObjectWriter", "BucketOwnerEnforced"):
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=_controls(value))
        assert _ownership(s3, bucket) == value
    s3.delete_bucket_ownership_controls(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_ownership_controls(Bucket=bucket)
    assert _err(e) == (404, "OwnershipControlsNotFoundError")
    # A bucket ACL granting others access cannot be combined with disabled ACLs.
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    with pytest.raises(ClientError) as e:
        s3.put_bucket_ownership_controls(
            Bucket=bucket, OwnershipControls=_controls("BucketOwnerEnforced"))
    assert _err(e) == (400, "InvalidBucketAclWithObjectOwnership")
    # An unknown setting in the document.
    with pytest.raises(ClientError) as e:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=_controls("Nobody"))
    assert _err(e) == (400, "MalformedXML")
    with pytest.raises(ClientError) as e:
        s3.get_bucket_ownership_controls(Bucket=new_bucket_name("missing"))
    assert _err(e) == (404, "NoSuchBucket")


def test_acls_refused_while_enforced_with_boto3(server, s3):
    name = new_bucket_name("own")
    s3.create_bucket(Bucket=name, ObjectOwnership="BucketOwnerEnforced")
    assert _ownership(s3, name) == "BucketOwnerEnforced"
    s3.put_object(Bucket=name, Key="obj", Body=b"data")
    owner_id = s3.get_bucket_acl(Bucket=name)["Owner"]["ID"]
    refused = [
        lambda: s3.put_bucket_acl(Bucket=name, ACL="private"),
        lambda: s3.put_object_acl(Bucket=name, Key="obj", ACL="public-read"),
        lambda: s3.put_object(Bucket=name, Key="p", Body=b"x", ACL="public-read"),
        lambda: s3.put_object(Bucket=name, Key="p", Body=b"x",
                              GrantRead='uri="http://acs.amazonaws.com/groups/global/AllUsers"'),
        lambda: s3.copy_object(Bucket=name, Key="c", CopySource={"Bucket": name, "Key": "obj"},
                               ACL="authenticated-read"),
        lambda: s3.create_multipart_upload(Bucket=name, Key="m", ACL="bucket-owner-read"),
    ]
    for call in refused:
        with pytest.raises(ClientError) as e:
            call()
        assert _err(e) == (400, "AccessControlListNotSupported")
        assert e.value.response["Error"]["Message"] == "The bucket does not allow ACLs"
    # POST Object with an acl field.
    post = s3.generate_presigned_post(
        name, "posted", Fields={"acl": "public-read"}, Conditions=[{"acl": "public-read"}],
        ExpiresIn=300)
    fields = list(post["fields"].items()) + [("file", ("f.bin", b"hi", "application/octet-stream"))]
    body, ctype = urllib3.encode_multipart_formdata(fields)
    http = urllib3.PoolManager(ca_certs=str(server.ca), retries=False)
    r = http.request("POST", post["url"], body=body, headers={"Content-Type": ctype})
    assert r.status == 400, r.data
    assert b"<Code>AccessControlListNotSupported</Code>" in r.data
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=name)["Contents"]] == ["obj"]
    # The bucket owner's full control is still accepted, and reads answer it.
    s3.put_object(Bucket=name, Key="bofc", Body=b"x", ACL="bucket-owner-full-control")
    s3.put_object(Bucket=name, Key="grant", Body=b"x", GrantFullControl=f"id={owner_id}")
    for acl in (s3.get_bucket_acl(Bucket=name), s3.get_object_acl(Bucket=name, Key="obj")):
        assert acl["Owner"]["ID"] == owner_id
        assert [(g["Grantee"].get("ID"), g["Permission"]) for g in acl["Grants"]] == [
            (owner_id, "FULL_CONTROL")]


def test_enforcing_stops_anonymous_reads_of_public_read_objects(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="pub", Body=b"public", ACL="public-read")
    anon = make_client(server, signature_version=UNSIGNED)
    assert anon.get_object(Bucket=bucket, Key="pub")["Body"].read() == b"public"
    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls=_controls("BucketOwnerEnforced"))
    with pytest.raises(ClientError) as e:
        anon.get_object(Bucket=bucket, Key="pub")
    assert _err(e) == (403, "AccessDenied")
    assert s3.get_object(Bucket=bucket, Key="pub")["Body"].read() == b"public"
    # Back to no setting: the stored grant applies again.
    s3.delete_bucket_ownership_controls(Bucket=bucket)
    assert anon.get_object(Bucket=bucket, Key="pub")["Body"].read() == b"public"


def test_buckets_without_a_setting_keep_acls_with_boto3(server, s3, bucket):
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    s3.put_object(Bucket=bucket, Key="k", Body=b"v", ACL="public-read")
    anon = make_client(server, signature_version=UNSIGNED)
    assert anon.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    assert [o["Key"] for o in anon.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]


def test_create_bucket_ownership_with_the_cli(aws, s3):
    for value in ("BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter"):
        name = new_bucket_name("cli")
        aws("s3api", "create-bucket", "--bucket", name, "--object-ownership", value)
        got = aws("s3api", "get-bucket-ownership-controls", "--bucket", name, "--output", "json")
        rules = json.loads(got.stdout)["OwnershipControls"]["Rules"]
        assert rules == [{"ObjectOwnership": value}]
    # An unknown value is the server's 400 InvalidArgument; nothing is created.
    name = new_bucket_name("bad")
    res = aws("s3api", "create-bucket", "--bucket", name, "--object-ownership", "Nobody",
              check=False)
    assert res.returncode != 0
    assert "InvalidArgument" in res.stderr, res.stderr
    assert "x-amz-object-ownership" in res.stderr, res.stderr
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=name)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_ownership_controls_with_the_cli(aws, s3, bucket):
    res = aws("s3api", "get-bucket-ownership-controls", "--bucket", bucket, check=False)
    assert res.returncode != 0 and "OwnershipControlsNotFoundError" in res.stderr
    aws("s3api", "put-bucket-ownership-controls", "--bucket", bucket,
        "--ownership-controls", "Rules=[{ObjectOwnership=BucketOwnerEnforced}]")
    got = aws("s3api", "get-bucket-ownership-controls", "--bucket", bucket, "--output", "json")
    assert json.loads(got.stdout)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}]
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    res = aws("s3api", "put-object-acl", "--bucket", bucket, "--key", "k",
              "--acl", "public-read", check=False)
    assert res.returncode != 0 and "AccessControlListNotSupported" in res.stderr, res.stderr
    res = aws("s3api", "put-bucket-acl", "--bucket", bucket, "--acl", "private", check=False)
    assert res.returncode != 0 and "AccessControlListNotSupported" in res.stderr, res.stderr
    aws("s3api", "delete-bucket-ownership-controls", "--bucket", bucket)
    res = aws("s3api", "get-bucket-ownership-controls", "--bucket", bucket, check=False)
    assert res.returncode != 0 and "OwnershipControlsNotFoundError" in res.stderr
    aws("s3api", "put-object-acl", "--bucket", bucket, "--key", "k", "--acl", "public-read")
