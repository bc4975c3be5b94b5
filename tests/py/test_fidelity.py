"""Header fidelity, encryption requests, CORS wildcards and policy status
with boto3 and the aws CLI (the session server has one `fs` location; AES256
on a cloud location is in the Rust suite, tests/fidelity.rs, against moto)."""

from __future__ import annotations

import json
import urllib.parse

import pytest
import urllib3
from botocore.exceptions import ClientError

from conftest import make_client, new_bucket_name

SSE_C_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


def _err(exc: pytest.ExceptionInfo) -> tuple[int, str]:
    r = exc.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def _http(server):
    return urllib3.PoolManager(ca_certs=str(server.ca), retries=False)


def test_content_encoding_round_trips(s3, aws, bucket, tmp_path):
    s3.put_object(Bucket=bucket, Key="gz", Body=b"x", ContentEncoding="gzip, br")
    assert s3.head_object(Bucket=bucket, Key="gz")["ContentEncoding"] == "gzip, br"
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ContentEncoding="deflate")
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=1,
                          Body=b"p")
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": [
                                     {"PartNumber": 1, "ETag": part["ETag"]}]})
    assert s3.head_object(Bucket=bucket, Key="mp")["ContentEncoding"] == "deflate"
    s3.copy_object(Bucket=bucket, Key="cp", CopySource={"Bucket": bucket, "Key": "gz"},
                   MetadataDirective="REPLACE", ContentEncoding="identity")
    assert s3.head_object(Bucket=bucket, Key="cp")["ContentEncoding"] == "identity"
    f = tmp_path / "f.txt"
    f.write_bytes(b"cli")
    aws("s3", "cp", str(f), f"s3://{bucket}/cli", "--content-encoding", "gzip")
    head = json.loads(aws("s3api", "head-object", "--bucket", bucket, "--key", "cli").stdout)
    assert head["ContentEncoding"] == "gzip"


def test_content_encoding_of_post_object(server, s3, bucket):
    post = s3.generate_presigned_post(bucket, "posted", Fields={"Content-Encoding": "gzip"},
                                      Conditions=[{"Content-Encoding": "gzip"}])
    fields = list(post["fields"].items()) + [("file", ("f", b"body", "text/plain"))]
    body, ctype = urllib3.encode_multipart_formdata(fields)
    r = _http(server).request("POST", post["url"], body=body, headers={"Content-Type": ctype})
    assert r.status == 204, r.data
    assert s3.head_object(Bucket=bucket, Key="posted")["ContentEncoding"] == "gzip"


def test_non_ascii_metadata(server, s3, aws, bucket):
    # boto3 refuses non-ASCII metadata by default; without that check
    # botocore puts ISO-8859-1 on the wire, and S3 answers RFC 2047 (UTF-8).
    from botocore.handlers import validate_ascii_metadata
    raw = make_client(server)
    raw.meta.events.unregister("before-parameter-build.s3.PutObject", validate_ascii_metadata)
    raw.put_object(Bucket=bucket, Key="m", Body=b"x",
                   Metadata={"word": "café", "plain": "ascii", "enc": "=?UTF-8?B?w6k=?="})
    meta = s3.head_object(Bucket=bucket, Key="m")["Metadata"]
    assert meta == {"word": "=?UTF-8?B?Y2Fmw6k=?=", "plain": "ascii",
                    "enc": "=?UTF-8?B?w6k=?="}
    assert s3.get_object(Bucket=bucket, Key="m")["Metadata"]["word"] == "=?UTF-8?B?Y2Fmw6k=?="
    head = json.loads(aws("s3api", "head-object", "--bucket", bucket, "--key", "m").stdout)
    assert head["Metadata"]["word"] == "=?UTF-8?B?Y2Fmw6k=?="


def test_encryption_requests_are_never_ignored(s3, aws, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"s")
    sse_c = dict(SSECustomerAlgorithm="AES256", SSECustomerKey=SSE_C_KEY)
    calls = [
        lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x", **sse_c),
        lambda: s3.get_object(Bucket=bucket, Key="src", **sse_c),
        lambda: s3.create_multipart_upload(Bucket=bucket, Key="k", **sse_c),
        lambda: s3.copy_object(Bucket=bucket, Key="k", CopySource=f"{bucket}/src",
                               CopySourceSSECustomerAlgorithm="AES256",
                               CopySourceSSECustomerKey=SSE_C_KEY),
        lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x",
                              ServerSideEncryption="aws:kms", SSEKMSKeyId="alias/k"),
        lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x",
                              ServerSideEncryption="aws:kms:dsse"),
        # fs does not encrypt at rest, so even AES256 is refused there.
        lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="AES256"),
    ]
    for call in calls:
        with pytest.raises(ClientError) as e:
            call()
        assert _err(e) == (501, "NotImplemented")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="DES")
    assert _err(e) == (400, "InvalidArgument")
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="k")
    assert _err(e)[0] == 404, "no refused request wrote anything"
    with pytest.raises(ClientError) as e:
        s3.get_bucket_encryption(Bucket=bucket)
    assert _err(e) == (404, "ServerSideEncryptionConfigurationNotFoundError")
    with pytest.raises(ClientError) as e:
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    assert _err(e) == (501, "NotImplemented")
    s3.delete_bucket_encryption(Bucket=bucket)
    res = aws("s3", "cp", "-", f"s3://{bucket}/cli", "--sse", "AES256", check=False)
    assert res.returncode != 0 and "NotImplemented" in res.stderr
    res = aws("s3api", "get-bucket-encryption", "--bucket", bucket, check=False)
    assert "ServerSideEncryptionConfigurationNotFoundError" in res.stderr


KEYS = ["a b/c+d.txt", "ünï/ключ", "ctl\x01key", "plain", "pct%41"]


def test_encoding_type_url_in_every_listing(s3, bucket):
    for k in KEYS:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
        if "\x01" not in k:
            # CreateMultipartUpload's answer cannot be encoded, and XML 1.0
            # has no U+0001: botocore would fail to parse it, as with S3.
            s3.create_multipart_upload(Bucket=bucket, Key=k)
    # boto3 asks for encoding-type=url and decodes each element S3 encodes.
    v1 = s3.list_objects(Bucket=bucket, MaxKeys=2, Delimiter="/", Marker="a")
    assert v1["EncodingType"] == "url" and v1["Marker"] == "a"
    assert v1["IsTruncated"] and v1["NextMarker"] in KEYS + ["a b/"]
    v2 = s3.list_objects_v2(Bucket=bucket, StartAfter="a b/c+d.txt")
    assert v2["StartAfter"] == "a b/c+d.txt"
    assert [o["Key"] for o in v2["Contents"]] == sorted(KEYS)[1:]
    pre = s3.list_objects_v2(Bucket=bucket, Prefix="ünï/", Delimiter="/")
    assert pre["Prefix"] == "ünï/" and [o["Key"] for o in pre["Contents"]] == ["ünï/ключ"]
    cp = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert sorted(p["Prefix"] for p in cp["CommonPrefixes"]) == ["a b/", "ünï/"]
    ver = s3.list_object_versions(Bucket=bucket, KeyMarker="a b/c+d.txt", MaxKeys=1)
    assert ver["KeyMarker"] == "a b/c+d.txt"
    assert ver["Versions"][0]["Key"] == sorted(KEYS)[1]
    assert ver["NextKeyMarker"] == sorted(KEYS)[1]
    uploads = sorted(k for k in KEYS if "\x01" not in k)
    ups = s3.list_multipart_uploads(Bucket=bucket, KeyMarker="a b/c+d.txt", MaxUploads=1)
    assert ups["KeyMarker"] == "a b/c+d.txt"
    assert ups["Uploads"][0]["Key"] == uploads[1]
    assert ups["NextKeyMarker"] == uploads[1]
    ups = s3.list_multipart_uploads(Bucket=bucket, Prefix="ünï/", Delimiter="/")
    assert ups["Prefix"] == "ünï/" and [u["Key"] for u in ups["Uploads"]] == ["ünï/ключ"]
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=bucket, EncodingType="base64")
    assert _err(e) == (400, "InvalidArgument")


def test_encoding_type_url_raw(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a b/c+d.txt", Body=b"x")
    url = s3.generate_presigned_url("list_objects_v2", Params={
        "Bucket": bucket, "EncodingType": "url", "Delimiter": " ", "Prefix": "a b"})
    r = _http(server).request("GET", url)
    text = r.data.decode()
    assert r.status == 200, text
    assert "<Prefix>a%20b</Prefix>" in text and "<Delimiter>%20</Delimiter>" in text
    assert "<EncodingType>url</EncodingType>" in text
    url = s3.generate_presigned_url("list_objects_v2", Params={
        "Bucket": bucket, "EncodingType": "url"})
    text = _http(server).request("GET", url).data.decode()
    assert "<Key>a%20b/c%2Bd.txt</Key>" in text
    assert urllib.parse.unquote_plus("a%20b/c%2Bd.txt") == "a b/c+d.txt"


def test_cors_wildcards_expose_and_max_age(server, s3, bucket):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": ["*.example.com"], "AllowedMethods": ["GET"],
         "ExposeHeaders": ["ETag", "x-amz-meta-a"], "MaxAgeSeconds": 120},
        {"AllowedOrigins": ["http://*.example.org"], "AllowedMethods": ["PUT"],
         "AllowedHeaders": ["*"]},
        {"AllowedOrigins": ["https://app-*"], "AllowedMethods": ["DELETE"]},
    ]})
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    url = f"{server.endpoint}/{bucket}/k"

    def preflight(origin, method):
        return _http(server).request("OPTIONS", url, headers={
            "Origin": origin, "Access-Control-Request-Method": method})

    r = preflight("https://www.example.com", "GET")
    assert r.status == 200
    assert r.headers["Access-Control-Allow-Origin"] == "https://www.example.com"
    assert r.headers["Access-Control-Expose-Headers"] == "ETag, x-amz-meta-a"
    assert r.headers["Access-Control-Max-Age"] == "120"
    assert "Origin" in r.headers["Vary"]
    assert preflight("http://a.b.example.org", "PUT").status == 200
    assert preflight("https://a.example.org", "PUT").status == 403
    assert preflight("https://app-one", "DELETE").status == 200
    assert preflight("https://www.example.net", "GET").status == 403
    with pytest.raises(ClientError) as e:
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
            {"AllowedOrigins": ["http://*.*.example.com"], "AllowedMethods": ["GET"]}]})
    assert _err(e) == (400, "InvalidRequest")


def test_policy_status_with_the_cli(aws, s3):
    b = new_bucket_name("pst")
    s3.create_bucket(Bucket=b)
    s3.put_bucket_acl(Bucket=b, ACL="public-read")
    res = aws("s3api", "get-bucket-policy-status", "--bucket", b, check=False)
    assert res.returncode != 0 and "NoSuchBucketPolicy" in res.stderr

    def status(cond: dict | None) -> bool:
        stmt = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{b}/*"}
        if cond:
            stmt["Condition"] = cond
        aws("s3api", "put-bucket-policy", "--bucket", b, "--policy",
            json.dumps({"Version": "2012-10-17", "Statement": [stmt]}))
        out = aws("s3api", "get-bucket-policy-status", "--bucket", b).stdout
        return json.loads(out)["PolicyStatus"]["IsPublic"]

    assert status(None) is True
    assert status({"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}) is False
    assert status({"StringLike": {"aws:SourceVpce": "vpce-*"}}) is True
    assert status({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}) is False
    assert status({"StringEquals": {"aws:PrincipalOrgID": "o-exampleorgid"}}) is False
    assert s3.get_bucket_policy_status(Bucket=b)["PolicyStatus"]["IsPublic"] is False
