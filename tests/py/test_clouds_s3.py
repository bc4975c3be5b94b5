"""The `s3` location in native format: objects PUT through cloudmux are read
straight from the target (moto's S3 server) with boto3, and must carry the same
bytes, user metadata, Content-Type and entity headers. Also
`cloudmux locations check` against a live and a dead target.

moto (PyPI `moto[server]`) is installed by scripts/install-test-deps.sh; each
module run starts its own moto and its own plain-HTTP cloudmux on free ports.
"""

from __future__ import annotations

import os
import subprocess

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from conftest import (ACCESS_KEY, REGION, SECRET_KEY, _binary, new_bucket_name, start_server,
                      stop_server, write_config)
from emulators import free_port, start_moto

TARGET = "native-target"
MIB = 1024 * 1024


def user_meta(meta: dict) -> dict:
    """The client's metadata: the native metadata without the staged-id
    marker that cloudmux writes for crash recovery (checked present)."""
    assert "cloudmux-staged" in meta, f"no staged-id marker in {meta}"
    return {k: v for k, v in meta.items() if k != "cloudmux-staged"}


def s3(endpoint: str, key: str, secret: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name=REGION,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    emu = start_moto(log)
    try:
        emu.wait()
        s3(emu.endpoint, "test", "test").create_bucket(Bucket=TARGET)
        yield emu.endpoint
    finally:
        emu.stop()
        log.close()


def location_toml(name: str, endpoint: str) -> str:
    return f"""
[locations.{name}]
type = "s3"
endpoint = "{endpoint}"
region = "{REGION}"
bucket = "{TARGET}"
access_key = "test"
secret_key = "moto-secret-not-in-output"
path_style = true
request_timeout_ms = 3000
max_retries = 1
"""


@pytest.fixture(scope="module")
def gateway(moto, tmp_path_factory):
    work = tmp_path_factory.mktemp("cloudmux-s3")
    data = work / "data"
    data.mkdir()
    config = work / "cloudmux.toml"
    write_config(config, data, None, None)
    with open(config, "a") as f:
        f.write(location_toml("aws", moto))
    proc, endpoint = start_server(config, work / "server.log")
    try:
        yield s3(endpoint, ACCESS_KEY, SECRET_KEY), config
    finally:
        stop_server(proc)


def native(moto: str):
    return s3(moto, "test", "test")


def test_a_put_is_a_native_object_with_its_metadata(moto, gateway):
    client, _ = gateway
    bucket = new_bucket_name()
    client.create_bucket(Bucket=bucket,
                         CreateBucketConfiguration={"LocationConstraint": "aws"})
    assert client.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "aws"
    body = os.urandom(200_000)
    # (No underscore in names: moto's web server drops such headers itself.)
    meta = {"colour": "blue", "my-key": "Value With Spaces", "origin": "Zurich; a=b"}
    put = client.put_object(Bucket=bucket, Key="docs/report.pdf", Body=body,
                            ContentType="application/pdf", Metadata=meta,
                            CacheControl="no-cache", ContentDisposition="inline",
                            ContentLanguage="en", ContentEncoding="identity")

    got = native(moto).get_object(Bucket=TARGET, Key=f"{bucket}/docs/report.pdf")
    assert got["Body"].read() == body
    assert user_meta(got["Metadata"]) == meta
    assert got["ContentType"] == "application/pdf"
    assert got["CacheControl"] == "no-cache"
    assert got["ContentDisposition"] == "inline"
    assert got["ContentLanguage"] == "en"
    assert got["ContentEncoding"] == "identity"
    # Clients of cloudmux see the S3 ETag (the MD5) whatever the target says.
    assert client.head_object(Bucket=bucket, Key="docs/report.pdf")["ETag"] == put["ETag"]


def test_a_multipart_upload_is_one_native_object(moto, gateway):
    client, _ = gateway
    bucket = new_bucket_name()
    client.create_bucket(Bucket=bucket,
                         CreateBucketConfiguration={"LocationConstraint": "aws"})
    body = os.urandom(11 * MIB + 5)
    import io
    client.upload_fileobj(io.BytesIO(body), bucket, "big.bin",
                          ExtraArgs={"ContentType": "video/mp4", "Metadata": {"kind": "mpu"}},
                          Config=TransferConfig(multipart_threshold=5 * MIB,
                                                multipart_chunksize=5 * MIB,
                                                max_concurrency=2))
    head = client.head_object(Bucket=bucket, Key="big.bin")
    assert head["ETag"].endswith('-3"')
    got = native(moto).get_object(Bucket=TARGET, Key=f"{bucket}/big.bin")
    assert got["Body"].read() == body
    assert got["ContentType"] == "video/mp4"
    assert user_meta(got["Metadata"]) == {"kind": "mpu"}
    left = native(moto).list_objects_v2(Bucket=TARGET, Prefix=".cloudmux")
    assert left.get("KeyCount", 0) == 0, left.get("Contents")
    assert not native(moto).list_multipart_uploads(Bucket=TARGET).get("Uploads")


def test_the_placement_header_puts_one_object_in_the_cloud(moto, gateway):
    client, _ = gateway
    bucket = new_bucket_name()
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="here", Body=b"cloud",
                      Metadata={"scal-location-constraint": "aws"})
    client.put_object(Bucket=bucket, Key="local", Body=b"disk")
    got = native(moto).get_object(Bucket=TARGET, Key=f"{bucket}/here")
    assert got["Body"].read() == b"cloud"
    with pytest.raises(native(moto).exceptions.NoSuchKey):
        native(moto).get_object(Bucket=TARGET, Key=f"{bucket}/local")
    err = None
    try:
        client.put_object(Bucket=bucket, Key="x", Body=b"x",
                          Metadata={"scal-location-constraint": "nowhere"})
    except client.exceptions.ClientError as e:
        err = e.response["Error"]["Code"]
    assert err == "InvalidLocationConstraint"


def test_locations_check_prints_a_table(moto, gateway, tmp_path):
    _, config = gateway
    run = subprocess.run([str(_binary()), "locations", "check", "--config", str(config)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["LOCATION", "TYPE", "TARGET", "ACCESS", "WRITE", "READ",
                                "DELETE", "RESULT"]
    row = next(l for l in lines if l.startswith("aws "))
    assert row.split()[1:] == ["s3", f"{moto}/{TARGET}", "ok", "ok", "ok", "ok", "OK"]
    left = native(moto).list_objects_v2(Bucket=TARGET, Prefix=".cloudmux")
    assert left.get("KeyCount", 0) == 0, "the probe object is deleted"

    # A target that does not answer fails the check, naming the location.
    dead = tmp_path / "dead.toml"
    dead.write_text(config.read_text()
                    + location_toml("gone", f"http://127.0.0.1:{free_port()}"))
    run = subprocess.run([str(_binary()), "locations", "check", "--config", str(dead)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    row = next(l for l in run.stdout.splitlines() if l.startswith("gone "))
    assert row.split()[3:] == ["FAIL", "-", "-", "-", "FAIL"]
    assert "location gone" in run.stdout
    assert "moto-secret-not-in-output" not in run.stdout + run.stderr
