"""CORS, ACL grants and Block Public Access through boto3 (the cross-account
cases are in the Rust suite, tests/grants.rs, which has three accounts)."""

from __future__ import annotations

import pytest
import urllib3
from botocore.exceptions import ClientError

from conftest import new_bucket_name

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTH_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"


def _err(exc: pytest.ExceptionInfo) -> tuple[int, str]:
    r = exc.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def _http(server):
    return urllib3.PoolManager(ca_certs=str(server.ca), retries=False)


def test_cors_with_boto3(server, s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_bucket_cors(Bucket=bucket)
    assert _err(e) == (404, "NoSuchCORSConfiguration")
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [{
        "AllowedOrigins": ["https://*.app.test"], "AllowedMethods": ["GET", "PUT"],
        "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 30}]})
    rules = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert rules[0]["AllowedOrigins"] == ["https://*.app.test"]
    assert rules[0]["AllowedMethods"] == ["GET", "PUT"]
    assert rules[0]["MaxAgeSeconds"] == 30
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    url = f"{server.endpoint}/{bucket}/k"
    ok = _http(server).request("OPTIONS", url, headers={
        "Origin": "https://web.app.test", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type"})
    assert ok.status == 200
    assert ok.headers["Access-Control-Allow-Origin"] == "https://web.app.test"
    assert ok.headers["Access-Control-Max-Age"] == "30"
    denied = _http(server).request("OPTIONS", url, headers={
        "Origin": "https://evil.test", "Access-Control-Request-Method": "PUT"})
    assert denied.status == 403
    missing = _http(server).request("OPTIONS", url, headers={"Origin": "https://web.app.test"})
    assert missing.status == 400
    presigned = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    got = _http(server).request("GET", presigned, headers={"Origin": "https://web.app.test"})
    assert got.status == 200 and got.data == b"v"
    assert got.headers["Access-Control-Allow-Origin"] == "https://web.app.test"
    assert got.headers["Access-Control-Expose-Headers"] == "ETag"
    with pytest.raises(ClientError) as e:
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [{
            "AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}]})
    assert _err(e) == (400, "InvalidRequest")
    s3.delete_bucket_cors(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_cors(Bucket=bucket)
    assert _err(e) == (404, "NoSuchCORSConfiguration")


def test_grants_with_boto3(server, s3, bucket):
    owner = s3.get_bucket_acl(Bucket=bucket)["Owner"]
    s3.put_object(Bucket=bucket, Key="g", Body=b"granted",
                  GrantRead=f'uri="{ALL_USERS}"', GrantFullControl=f'id="{owner["ID"]}"')
    acl = s3.get_object_acl(Bucket=bucket, Key="g")
    got = {(g["Grantee"].get("URI") or g["Grantee"].get("ID"), g["Permission"])
           for g in acl["Grants"]}
    assert got == {(ALL_USERS, "READ"), (owner["ID"], "FULL_CONTROL")}
    anon = _http(server).request("GET", f"{server.endpoint}/{bucket}/g")
    assert anon.status == 200 and anon.data == b"granted"
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy={
        "Owner": {"ID": owner["ID"]},
        "Grants": [{"Grantee": {"Type": "Group", "URI": AUTH_USERS}, "Permission": "READ"},
                   {"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]},
                    "Permission": "FULL_CONTROL"}]})
    grants = s3.get_bucket_acl(Bucket=bucket)["Grants"]
    assert {"Type": "Group", "URI": AUTH_USERS} in [g["Grantee"] for g in grants]
    assert _http(server).request("GET", f"{server.endpoint}/{bucket}").status == 403
    with pytest.raises(ClientError) as e:
        s3.put_bucket_acl(Bucket=bucket, GrantRead='id="no-such-canonical-id"')
    assert _err(e) == (400, "InvalidArgument")
    with pytest.raises(ClientError) as e:
        s3.put_bucket_acl(Bucket=bucket, GrantRead="not a grant")
    assert _err(e) == (400, "InvalidArgument")
    with pytest.raises(ClientError) as e:
        s3.put_bucket_acl(Bucket=bucket, GrantRead='emailAddress="nobody@example.com"')
    assert _err(e) == (400, "UnresolvableGrantByEmailAddress")
    with pytest.raises(ClientError) as e:
        s3.put_bucket_acl(Bucket=bucket, ACL="private", GrantRead=f'id="{owner["ID"]}"')
    assert _err(e) == (400, "InvalidRequest")


def test_public_access_block_with_boto3(server, s3):
    name = new_bucket_name("pab")
    s3.create_bucket(Bucket=name)
    with pytest.raises(ClientError) as e:
        s3.get_public_access_block(Bucket=name)
    assert _err(e) == (404, "NoSuchPublicAccessBlockConfiguration")
    s3.put_object(Bucket=name, Key="o", Body=b"x", ACL="public-read")
    url = f"{server.endpoint}/{name}/o"
    assert _http(server).request("GET", url).status == 200
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True,
        "BlockPublicPolicy": False, "RestrictPublicBuckets": True})
    cfg = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    assert cfg == {"BlockPublicAcls": True, "IgnorePublicAcls": True,
                   "BlockPublicPolicy": False, "RestrictPublicBuckets": True}
    assert _http(server).request("GET", url).status == 403
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=name, Key="p", Body=b"x", ACL="public-read")
    assert _err(e) == (403, "AccessDenied")
    with pytest.raises(ClientError) as e:
        s3.put_bucket_acl(Bucket=name, GrantRead=f'uri="{ALL_USERS}"')
    assert _err(e) == (403, "AccessDenied")
    s3.delete_public_access_block(Bucket=name)
    assert _http(server).request("GET", url).status == 200
