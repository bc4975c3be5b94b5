"""Presigned URLs made by the aws CLI and boto3, fetched with curl.

With a custom endpoint and no `signature_version` setting, this botocore
generation presigns with query-string SigV2 (AWSAccessKeyId/Signature/
Expires); with `signature_version = s3v4` it uses SigV4 (X-Amz-Signature).
Both are what real users get, so both are tested.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import REGION, curl, make_client

SIGV = ["default", "s3v4"]


def _aws_env(server, sigv: str) -> dict | None:
    if sigv == "default":
        return None
    cfg = server.workdir / "aws-config-s3v4"
    if not cfg.exists():
        cfg.write_text(
            f"[default]\nregion = {REGION}\ns3 =\n    addressing_style = path\n"
            "    signature_version = s3v4\n"
        )
    return {"AWS_CONFIG_FILE": str(cfg)}


def _presign_cli(aws, server, sigv, bucket, key, expires) -> str:
    res = aws("s3", "presign", f"s3://{bucket}/{key}", "--expires-in", str(expires),
              env=_aws_env(server, sigv))
    return res.stdout.strip()


def _presign_boto3(server, sigv, bucket, key, expires, method="get_object") -> str:
    kw = {} if sigv == "default" else {"signature_version": "s3v4"}
    client = make_client(server, **kw)
    return client.generate_presigned_url(
        method, Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires
    )


def _check_style(url: str, sigv: str) -> None:
    q = parse_qs(urlsplit(url).query)
    if sigv == "s3v4":
        assert "X-Amz-Signature" in q and q["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"], url


@pytest.fixture
def obj(s3, bucket):
    key = "pre/signed object+1.bin"
    body = os.urandom(300_000)
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return bucket, key, body


@pytest.mark.parametrize("sigv", SIGV)
@pytest.mark.parametrize("tool", ["cli", "boto3"])
def test_presigned_get(aws, server, obj, tmp_path: Path, tool, sigv):
    bucket, key, body = obj
    if tool == "cli":
        url = _presign_cli(aws, server, sigv, bucket, key, 300)
    else:
        url = _presign_boto3(server, sigv, bucket, key, 300)
    _check_style(url, sigv)
    status, got = curl(url, server.ca, tmp_path / "out")
    assert status == 200, f"GET {url} -> {status}: {got[:500]!r}"
    assert got == body


@pytest.mark.parametrize("sigv", SIGV)
@pytest.mark.parametrize("tool", ["cli", "boto3"])
def test_presigned_get_expires(aws, server, obj, tmp_path: Path, tool, sigv):
    bucket, key, body = obj
    expires = 4
    t_before = time.time()
    if tool == "cli":
        url = _presign_cli(aws, server, sigv, bucket, key, expires)
    else:
        url = _presign_boto3(server, sigv, bucket, key, expires)
    t_after = time.time()
    status, got = curl(url, server.ca, tmp_path / "fresh")
    if time.time() - t_before < expires - 0.5:  # fast enough to judge the fresh fetch
        assert status == 200, f"fresh GET {url} -> {status}: {got[:500]!r}"
        assert got == body
    time.sleep(max(0.0, t_after + expires + 1.5 - time.time()))
    status, got = curl(url, server.ca, tmp_path / "expired")
    assert status == 403, f"expired GET {url} -> {status}: {got[:500]!r}"
    assert b"AccessDenied" in got, got[:500]


def test_presigned_tampered_signature(server, obj, tmp_path: Path):
    bucket, key, _ = obj
    url = _presign_boto3(server, "s3v4", bucket, key, 300)
    sig = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    bad = url.replace(sig, ("0" if sig[0] != "0" else "1") + sig[1:])
    status, got = curl(bad, server.ca, tmp_path / "bad")
    assert status == 403, got[:500]
    assert b"SignatureDoesNotMatch" in got, got[:500]


@pytest.mark.parametrize("sigv", SIGV)
def test_presigned_put_with_curl(server, s3, bucket, tmp_path: Path, sigv):
    src = tmp_path / "up.bin"
    src.write_bytes(os.urandom(1_500_000))
    url = _presign_boto3(server, sigv, bucket, "put/by-curl.bin", 300, "put_object")
    _check_style(url, sigv)
    status, got = curl(url, server.ca, tmp_path / "resp", "-T", str(src))
    assert status == 200, f"PUT {url} -> {status}: {got[:500]!r}"
    back = s3.get_object(Bucket=bucket, Key="put/by-curl.bin")["Body"].read()
    assert back == src.read_bytes()


def _presign_v4_raw(server, bucket, key, expires) -> str:
    """A SigV4 query-signed GET URL with any X-Amz-Expires, from botocore's
    pure-Python signer (the CRT one refuses 0 and negative values)."""
    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from urllib.parse import quote

    from conftest import ACCESS_KEY, SECRET_KEY
    req = AWSRequest(method="GET", url=f"{server.endpoint}/{bucket}/{quote(key)}")
    S3SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", REGION,
                     expires=expires).add_auth(req)
    return req.url


@pytest.mark.parametrize("expires,status,code", [
    (0, 403, "AccessDenied"),
    (604801, 400, "AuthorizationQueryParametersError"),
    (-7, 400, "AuthorizationQueryParametersError"),
])
def test_presigned_v4_expires_out_of_range(server, obj, tmp_path: Path, expires, status, code):
    """X-Amz-Expires=0 is already expired (403); more than a week or a
    negative value is a malformed query (400), as S3 answers. One second is
    still good."""
    bucket, key, body = obj
    url = _presign_v4_raw(server, bucket, key, expires)
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == [str(expires)]
    got, text = curl(url, server.ca, tmp_path / "out")
    assert got == status, text
    assert f"<Code>{code}</Code>".encode() in text, text
    got, text = curl(_presign_v4_raw(server, bucket, key, 60), server.ca, tmp_path / "ok")
    assert (got, text) == (200, body)
