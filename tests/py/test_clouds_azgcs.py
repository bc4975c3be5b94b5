"""Native format on Azure Blob Storage and Google Cloud Storage.

A cloudmux with an fs default location, an `azure` location on Azurite and a
`gcs` location on fake-gcs-server is started for this module (emulators on
free loopback ports, stopped afterwards). Objects are written through
cloudmux with boto3 and read back with each cloud's own SDK
(`azure-storage-blob`, `google-cloud-storage`): data, user metadata and
Content-Type must match. Multipart uploads land as one native object and
leave no staging data behind after Complete or Abort.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
import uuid

import boto3
import pytest
from botocore.config import Config

from conftest import ACCESS_KEY, REGION, SECRET_KEY, start_server, stop_server
from emulators import AZURITE_ACCOUNT, AZURITE_KEY, start_azurite, start_fake_gcs
from emulators import stop as _stop
from emulators import wait_port as _wait_port

CONTAINER = "cloudmux"
GCS_BUCKET = "cloudmux"
STAGING = ".cloudmux-staging/"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def clouds(tmp_path_factory):
    """Starts Azurite, fake-gcs-server and a cloudmux using both."""
    work = tmp_path_factory.mktemp("clouds")
    procs = []
    try:
        az = start_azurite()
        procs.append(az.proc)
        gcs = start_fake_gcs()
        procs.append(gcs.proc)
        az.wait()
        gcs.wait()
        az_cmd, az_port = az.cmd, az.port
        gcs_cmd, gcs_port = gcs.cmd, gcs.port

        from azure.storage.blob import BlobServiceClient
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage as gcs_storage

        az_endpoint = f"{az.endpoint}/{AZURITE_ACCOUNT}"
        blob_service = BlobServiceClient(
            account_url=az_endpoint,
            credential={"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY},
        )
        container = blob_service.create_container(CONTAINER)
        from datetime import datetime, timedelta, timezone

        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        sas = generate_container_sas(
            AZURITE_ACCOUNT, CONTAINER, account_key=AZURITE_KEY,
            permission=ContainerSasPermissions(read=True, write=True, delete=True,
                                               list=True, add=True, create=True),
            expiry=datetime.now(timezone.utc) + timedelta(hours=2),
        )
        gcs_endpoint = gcs.endpoint
        gcs_client = gcs_storage.Client(
            project="test",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": gcs_endpoint},
        )
        gcs_bucket = gcs_client.create_bucket(GCS_BUCKET)

        data = work / "data"
        config = work / "cloudmux.toml"
        config.write_text(
            f"""[server]
listen = "127.0.0.1:0"
region = "{REGION}"

[metadata]
engine = "sled"
path = "{data / 'meta'}"

[[accounts]]
name = "admin"
access_key = "{ACCESS_KEY}"
secret_key = "{SECRET_KEY}"

[locations.local]
type = "fs"
path = "{data / 'objects'}"
default = true

[locations.azure-main]
type = "azure"
account = "{AZURITE_ACCOUNT}"
account_key_env = "CMX_TEST_AZURITE_KEY"
endpoint = "{az_endpoint}"
container = "{CONTAINER}"
request_timeout_ms = 2000
max_retries = 2

[locations.azure-sas]
type = "azure"
account = "{AZURITE_ACCOUNT}"
sas_token = "{sas}"
endpoint = "{az_endpoint}"
container = "{CONTAINER}"
bucket_match = true

[locations.gcs-main]
type = "gcs"
bucket = "{GCS_BUCKET}"
endpoint = "{gcs_endpoint}"
request_timeout_ms = 2000
max_retries = 2
"""
        )
        os.environ["CMX_TEST_AZURITE_KEY"] = AZURITE_KEY
        log = work / "server.log"
        proc, endpoint = start_server(config, log)
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(s3={"addressing_style": "path"},
                          retries={"total_max_attempts": 1, "mode": "standard"}),
        )
        try:
            yield {"s3": s3, "container": container, "gcs": gcs_bucket, "log": log,
                   "procs": procs,
                   "emulators": {
                       "gcs-main": (gcs_cmd, gcs_port,
                                    lambda: gcs_client.create_bucket(GCS_BUCKET)),
                       "azure-main": (az_cmd, az_port,
                                      lambda: blob_service.create_container(CONTAINER)),
                   }}
        finally:
            stop_server(proc)
    finally:
        for p in procs:
            _stop(p)


def _bucket(s3, location: str) -> str:
    name = f"n-{location}-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": location})
    return name


def _azure_meta_name(name: str) -> str:
    """The documented encoding of S3 metadata names into Azure metadata names."""
    if name[:1].isalpha() and name.isascii() and name.isalnum():
        return name
    out = "cmx_"
    for b in name.encode():
        c = chr(b)
        out += c if (c.isascii() and (c.islower() or c.isdigit())) else f"_{b:02x}"
    return out


# The native metadata entry in which cloudmux records the staged id of the
# published bytes (for crash recovery); every other entry is the client's.
STAGED_MARKER = {"cmx__staged", "cloudmux-staged"}


def _user_meta(meta: dict) -> dict:
    """The client's metadata: the native metadata without cloudmux's marker,
    which every object written through cloudmux carries."""
    assert STAGED_MARKER & set(meta), f"no staged-id marker in {meta}"
    return {k: v for k, v in meta.items() if k not in STAGED_MARKER}


def _native(clouds, location: str, name: str):
    """(data, user metadata, content type, cache control) read natively."""
    if location.startswith("azure"):
        blob = clouds["container"].get_blob_client(name)
        props = blob.get_blob_properties()
        data = blob.download_blob().readall()
        return data, _user_meta(dict(props.metadata)), props.content_settings.content_type, \
            props.content_settings.cache_control
    blob = clouds["gcs"].get_blob(name)
    assert blob is not None, f"{name} is not in GCS"
    data = blob.download_as_bytes()
    return data, _user_meta(dict(blob.metadata or {})), blob.content_type, blob.cache_control


def _staging(clouds, location: str) -> list[str]:
    if location.startswith("azure"):
        return [b.name for b in clouds["container"].list_blobs(
            name_starts_with=STAGING, include=["uncommittedblobs"])]
    return [b.name for b in clouds["gcs"].list_blobs(prefix=STAGING)]


def _exists(clouds, location: str, name: str) -> bool:
    if location.startswith("azure"):
        return clouds["container"].get_blob_client(name).exists()
    return clouds["gcs"].get_blob(name) is not None


LOCATIONS = ["azure-main", "azure-sas", "gcs-main"]


def _name(location: str, bucket: str, key: str) -> str:
    """The native name: azure-sas has bucket_match = true."""
    return key if location == "azure-sas" else f"{bucket}/{key}"


@pytest.mark.parametrize("location", LOCATIONS)
def test_put_is_a_native_object(clouds, location):
    s3 = clouds["s3"]
    bucket = _bucket(s3, location)
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == location
    body = os.urandom(300_000)
    meta = {"color": "blue", "my-key": "value 1"}
    put = s3.put_object(Bucket=bucket, Key="dir/photo.jpg", Body=body,
                        ContentType="image/jpeg", CacheControl="max-age=60", Metadata=meta)
    assert put["ETag"].strip('"') == hashlib.md5(body).hexdigest()

    data, native_meta, ctype, cache = _native(clouds, location, _name(location, bucket, "dir/photo.jpg"))
    assert data == body
    assert ctype == "image/jpeg"
    assert cache == "max-age=60"
    if location.startswith("azure"):
        expect = {_azure_meta_name(k): v for k, v in meta.items()}
        assert expect == {"color": "blue", "cmx_my_2dkey": "value 1"}
    else:
        expect = meta
    assert native_meta == expect

    got = s3.get_object(Bucket=bucket, Key="dir/photo.jpg")
    assert got["Body"].read() == body
    assert got["ETag"] == put["ETag"]
    assert got["ContentType"] == "image/jpeg"
    assert got["Metadata"] == meta
    part = s3.get_object(Bucket=bucket, Key="dir/photo.jpg", Range="bytes=1000-1999")
    assert part["Body"].read() == body[1000:2000]
    assert part["ContentRange"] == f"bytes 1000-1999/{len(body)}"

    s3.copy_object(Bucket=bucket, Key="copy.jpg",
                   CopySource={"Bucket": bucket, "Key": "dir/photo.jpg"})
    data, native_meta, ctype, _ = _native(clouds, location, _name(location, bucket, "copy.jpg"))
    assert data == body and ctype == "image/jpeg" and native_meta == expect

    s3.delete_object(Bucket=bucket, Key="dir/photo.jpg")
    assert not _exists(clouds, location, _name(location, bucket, "dir/photo.jpg"))
    assert _staging(clouds, location) == []


@pytest.mark.parametrize("location", LOCATIONS)
def test_per_object_location_header(clouds, location):
    s3 = clouds["s3"]
    name = f"n-fs-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"routed",
                  Metadata={"scal-location-constraint": location})
    data, _, _, _ = _native(clouds, location, _name(location, name, "k"))
    assert data == b"routed"
    assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"routed"


@pytest.mark.parametrize("location", LOCATIONS)
def test_multipart_reverse_order_complete_and_abort(clouds, location):
    s3 = clouds["s3"]
    bucket = _bucket(s3, location)
    parts = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(1024)]
    up = s3.create_multipart_upload(Bucket=bucket, Key="big.bin",
                                    ContentType="application/x-test",
                                    Metadata={"kind": "mpu"})
    etags = {}
    for n in (3, 2, 1):
        r = s3.upload_part(Bucket=bucket, Key="big.bin", UploadId=up["UploadId"],
                           PartNumber=n, Body=parts[n - 1])
        etags[n] = r["ETag"]
    assert len(_staging(clouds, location)) == 3
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="big.bin", UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in (1, 2, 3)]},
    )
    assert done["ETag"].strip('"').endswith("-3")
    data, native_meta, ctype, _ = _native(clouds, location, _name(location, bucket, "big.bin"))
    assert data == b"".join(parts)
    assert ctype == "application/x-test"
    assert native_meta == {"kind": "mpu"}
    assert _staging(clouds, location) == [], "parts left after Complete"
    got = s3.get_object(Bucket=bucket, Key="big.bin", Range=f"bytes={5 * MIB - 3}-{5 * MIB + 2}")
    assert got["Body"].read() == (parts[0] + parts[1])[5 * MIB - 3:5 * MIB + 3]

    up = s3.create_multipart_upload(Bucket=bucket, Key="aborted.bin")
    for n in (2, 1):
        s3.upload_part(Bucket=bucket, Key="aborted.bin", UploadId=up["UploadId"],
                       PartNumber=n, Body=parts[n - 1])
    assert len(_staging(clouds, location)) == 2
    s3.abort_multipart_upload(Bucket=bucket, Key="aborted.bin", UploadId=up["UploadId"])
    assert _staging(clouds, location) == [], "parts left after Abort"
    assert not _exists(clouds, location, _name(location, bucket, "aborted.bin"))


def _expect_503_within(call, limit: float) -> None:
    from botocore.exceptions import ClientError

    start = time.monotonic()
    with pytest.raises(ClientError) as e:
        call()
    took = time.monotonic() - start
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert e.value.response["Error"]["Code"] in ("ServiceUnavailable", "SlowDown")
    assert took < limit, f"took {took:.1f}s, limit {limit}s"


def _freeze(proc):
    """SIGSTOP, then wait until every thread is stopped: the signal reaches
    one thread, which stops the others, and until then a thread blocked in
    epoll_wait may still answer a request."""
    proc.send_signal(signal.SIGSTOP)
    deadline = time.monotonic() + 10
    while True:
        states = []
        for tid in os.listdir(f"/proc/{proc.pid}/task"):
            try:
                with open(f"/proc/{proc.pid}/task/{tid}/stat") as f:
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
            except FileNotFoundError:
                pass
        if all(st in ("T", "t") for st in states):
            return
        assert time.monotonic() < deadline, f"process {proc.pid} did not stop"
        time.sleep(0.005)


@pytest.mark.parametrize("location", ["azure-main", "gcs-main"])
def test_outage_gives_503_then_recovers(clouds, location):
    """A frozen emulator (SIGSTOP) and a stopped one give 503 within the
    configured timeout; after SIGCONT, and after a restart, requests work
    again without restarting cloudmux. Runs last in this module: the
    restarted emulator starts empty."""
    s3 = clouds["s3"]
    cmd, port, recreate = clouds["emulators"][location]
    bucket = _bucket(s3, location)
    s3.put_object(Bucket=bucket, Key="before", Body=b"x")
    procs = clouds["procs"]
    proc = next(p for p in procs if p.args == cmd)
    # request_timeout_ms = 2000 with max_retries = 2: three attempts at most,
    # plus backoff.
    limit = 3 * 2.0 + 2.5

    _freeze(proc)
    try:
        _expect_503_within(lambda: s3.get_object(Bucket=bucket, Key="before"), limit)
    finally:
        proc.send_signal(signal.SIGCONT)
    assert s3.get_object(Bucket=bucket, Key="before")["Body"].read() == b"x"

    _stop(proc)
    procs.remove(proc)
    _expect_503_within(lambda: s3.get_object(Bucket=bucket, Key="before"), limit)
    _expect_503_within(lambda: s3.put_object(Bucket=bucket, Key="during", Body=b"y"), limit)
    log = clouds["log"].read_text(errors="replace")
    assert AZURITE_KEY not in log

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    procs.append(proc)
    _wait_port(port, proc, cmd[0])
    recreate()
    s3.put_object(Bucket=bucket, Key="after", Body=b"back")
    assert s3.get_object(Bucket=bucket, Key="after")["Body"].read() == b"back"
