"""The aws CLI on the S3 behaviours of issue 13 that other files test with
boto3 and aws-sdk-s3 only: `encoding-type=url` listings, CORS wildcards,
`partNumber` reads, ListParts pages and UploadPartCopy ranges."""

from __future__ import annotations

import json
import urllib.parse

import urllib3

from conftest import write_random_file

PART = 5 * 1024 * 1024


def _json(res) -> dict:
    return json.loads(res.stdout) if res.stdout.strip() else {}


def _fails_with(res, status: str, code: str | None = None) -> None:
    assert res.returncode != 0, res.stdout
    assert f"({code or status})" in res.stderr or f"({status})" in res.stderr, res.stderr


def test_cli_encoding_type_url_listings(aws, s3, bucket):
    keys = ["a b+c é", "d\u0001e", "plain"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    up = s3.create_multipart_upload(Bucket=bucket, Key="a b+c é")["UploadId"]
    for op, field in (("list-objects", "Contents"), ("list-objects-v2", "Contents"),
                      ("list-object-versions", "Versions")):
        out = _json(aws("s3api", op, "--bucket", bucket, "--encoding-type", "url",
                        "--no-paginate"))
        assert out.get("EncodingType") == "url", (op, out)
        listed = [e["Key"] for e in out[field]]
        # Asked for explicitly, the CLI shows the keys as the server encoded
        # them: every one decodes back to the key, and none is sent raw.
        assert sorted(urllib.parse.unquote(k) for k in listed) == sorted(keys), (op, listed)
        assert "a b+c é" not in listed and "d\u0001e" not in listed, (op, listed)
    out = _json(aws("s3api", "list-multipart-uploads", "--bucket", bucket,
                    "--encoding-type", "url", "--no-paginate"))
    assert [urllib.parse.unquote(u["Key"]) for u in out["Uploads"]] == ["a b+c é"]
    assert out["Uploads"][0]["Key"] != "a b+c é"
    s3.abort_multipart_upload(Bucket=bucket, Key="a b+c é", UploadId=up)


def test_cli_cors_wildcard_rules(server, aws, s3, bucket):
    rules = {"CORSRules": [{"AllowedOrigins": ["https://*.example.com"],
                            "AllowedMethods": ["GET", "HEAD"],
                            "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600}]}
    aws("s3api", "put-bucket-cors", "--bucket", bucket,
        "--cors-configuration", json.dumps(rules))
    got = _json(aws("s3api", "get-bucket-cors", "--bucket", bucket))
    assert got["CORSRules"][0]["AllowedOrigins"] == ["https://*.example.com"]
    assert got["CORSRules"][0]["MaxAgeSeconds"] == 600
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    http = urllib3.PoolManager(ca_certs=str(server.ca), retries=False)

    def preflight(origin):
        return http.request("OPTIONS", f"{server.endpoint}/{bucket}/k", headers={
            "Origin": origin, "Access-Control-Request-Method": "GET"})

    r = preflight("https://shop.example.com")
    assert r.status == 200
    assert r.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert r.headers["Access-Control-Expose-Headers"] == "ETag"
    assert r.headers["Access-Control-Max-Age"] == "600"
    assert preflight("http://shop.example.com").status == 403
    aws("s3api", "delete-bucket-cors", "--bucket", bucket)
    _fails_with(aws("s3api", "get-bucket-cors", "--bucket", bucket, check=False),
                "404", "NoSuchCORSConfiguration")


def test_cli_part_numbers_list_parts_and_copy_ranges(aws, s3, bucket, tmp_path):
    src = tmp_path / "src"
    write_random_file(src, 2 * PART + 1000)
    data = src.read_bytes()
    up = _json(aws("s3api", "create-multipart-upload", "--bucket", bucket, "--key", "mp"))
    uid = up["UploadId"]
    parts = []
    for n, (lo, hi) in enumerate([(0, PART), (PART, 2 * PART), (2 * PART, len(data))], 1):
        piece = tmp_path / f"p{n}"
        piece.write_bytes(data[lo:hi])
        out = _json(aws("s3api", "upload-part", "--bucket", bucket, "--key", "mp",
                        "--upload-id", uid, "--part-number", str(n), "--body", str(piece)))
        parts.append({"PartNumber": n, "ETag": out["ETag"]})
    page = _json(aws("s3api", "list-parts", "--bucket", bucket, "--key", "mp",
                     "--upload-id", uid, "--max-parts", "1", "--no-paginate"))
    assert [p["PartNumber"] for p in page["Parts"]] == [1]
    assert page["IsTruncated"] is True and page["NextPartNumberMarker"] == 1
    page = _json(aws("s3api", "list-parts", "--bucket", bucket, "--key", "mp",
                     "--upload-id", uid, "--part-number-marker", "1", "--no-paginate"))
    assert [p["PartNumber"] for p in page["Parts"]] == [2, 3]
    aws("s3api", "complete-multipart-upload", "--bucket", bucket, "--key", "mp",
        "--upload-id", uid, "--multipart-upload", json.dumps({"Parts": parts}))

    head = _json(aws("s3api", "head-object", "--bucket", bucket, "--key", "mp",
                     "--part-number", "2"))
    assert head["ContentLength"] == PART and head["PartsCount"] == 3
    _fails_with(aws("s3api", "head-object", "--bucket", bucket, "--key", "mp",
                    "--part-number", "4", check=False), "416")
    _fails_with(aws("s3api", "get-object", "--bucket", bucket, "--key", "mp",
                    "--part-number", "10001", str(tmp_path / "out"), check=False),
                "400", "InvalidArgument")

    dest = _json(aws("s3api", "create-multipart-upload", "--bucket", bucket, "--key", "cp"))
    did = dest["UploadId"]
    for rng, status, code in (("bytes=100-50", "400", "InvalidArgument"),
                              (f"bytes={len(data)}-{len(data) + 10}", "416", "InvalidRange")):
        _fails_with(aws("s3api", "upload-part-copy", "--bucket", bucket, "--key", "cp",
                        "--upload-id", did, "--part-number", "1",
                        "--copy-source", f"{bucket}/mp", "--copy-source-range", rng,
                        check=False), status, code)
    ok = _json(aws("s3api", "upload-part-copy", "--bucket", bucket, "--key", "cp",
                   "--upload-id", did, "--part-number", "1",
                   "--copy-source", f"{bucket}/mp", "--copy-source-range", "bytes=0-99"))
    assert ok["CopyPartResult"]["ETag"]
    aws("s3api", "abort-multipart-upload", "--bucket", bucket, "--key", "cp",
        "--upload-id", did)
