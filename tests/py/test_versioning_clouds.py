"""Bucket versioning on the cloud locations, seen through cloudmux (boto3)
and natively (each cloud's own Python client reading the emulator directly).

One moto_server, one Azurite and one fake-gcs-server are started for the
module, and one plain-HTTP cloudmux with an fs default location and one
location on each of them. Each test runs on each cloud location (parametrized,
or in one loop for the location-independent `x-amz-version-id: null` check),
in a bucket created there with a LocationConstraint.

The layout checked is the documented one (README.md "Versioning",
ARCHITECTURE.md "Noncurrent versions"): the current version of key K in
bucket B is the native object `B/K`; a noncurrent version is the native
object `.cloudmux-versions/B/K/<version-id>` (`null.<16 hex digits>` for the
`null` version) in the location's own bucket or container, carrying the
version's Content-Type and user metadata; a key whose current version is a
delete marker has no native object; nothing stays under `.cloudmux-staging/`.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, REGION, SECRET_KEY, Server, start_server, stop_server
from emulators import AZURITE_ACCOUNT, AZURITE_KEY, start_azurite, start_fake_gcs, start_moto

MIB = 1024 * 1024
KEY = "dir/k.txt"
STAGING = ".cloudmux-staging/"
VERSIONS = ".cloudmux-versions/"
VERSION_ID = re.compile(r"[0-9a-f]{32}")
NULL_KEPT = re.compile(r"null\.[0-9a-f]{16}")
# The native bucket (moto, fake-gcs-server) or container (Azurite) of each
# cloud location.
NATIVE_BUCKET = "versions-target"
LOCATIONS = ["s3-moto", "azure-azurite", "gcs-fake"]
# The native metadata entry in which cloudmux records the staged id of the
# published bytes (for crash recovery): not the client's metadata.
STAGED_MARKER = {"cloudmux-staged", "cmx__staged"}


def _client(endpoint: str, key: str, secret: str):
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name=REGION,
        config=Config(s3={"addressing_style": "path"},
                      retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def _user_meta(meta: dict, name: str, version_marker: str | None) -> dict:
    """The client's metadata in an object's native metadata: without the
    staged-id entry, and for a kept version without the entry naming the
    source it was copied from (Azure `cmx__version_of`, GCS
    `cloudmux-version-of`: ARCHITECTURE.md, "Noncurrent versions"), which
    must be there."""
    out = {k: v for k, v in meta.items() if k not in STAGED_MARKER}
    if version_marker is not None and name.startswith(VERSIONS):
        assert version_marker in out, f"{name}: no {version_marker} in {meta}"
        del out[version_marker]
    return out


# --------------------------------------------------------------------------
# The clouds as their own clients see them
# --------------------------------------------------------------------------


class MotoNative:
    """The location's bucket in moto, through boto3 straight to moto."""

    version_marker = None  # S3 CopyObject with x-amz-copy-source-if-match

    def __init__(self, endpoint: str):
        self.c = _client(endpoint, "test", "test")
        self.c.create_bucket(Bucket=NATIVE_BUCKET)

    def read(self, name: str) -> bytes | None:
        try:
            return self.c.get_object(Bucket=NATIVE_BUCKET, Key=name)["Body"].read()
        except ClientError as e:
            if e.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                return None
            raise

    def props(self, name: str) -> tuple[str, dict]:
        h = self.c.head_object(Bucket=NATIVE_BUCKET, Key=name)
        return h["ContentType"], _user_meta(h["Metadata"], name, self.version_marker)

    def names(self, prefix: str) -> list[str]:
        out = []
        for page in self.c.get_paginator("list_objects_v2").paginate(
                Bucket=NATIVE_BUCKET, Prefix=prefix):
            out += [o["Key"] for o in page.get("Contents", [])]
        return sorted(out)

    def leftovers(self) -> list[str]:
        ups = self.c.list_multipart_uploads(Bucket=NATIVE_BUCKET).get("Uploads", [])
        return self.names(STAGING) + [f"multipart upload of {u['Key']}" for u in ups]


class AzureNative:
    """The location's container in Azurite, through azure-storage-blob."""

    version_marker = "cmx__version_of"

    def __init__(self, account_url: str):
        from azure.storage.blob import BlobServiceClient

        service = BlobServiceClient(
            account_url=account_url,
            credential={"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY},
        )
        self.c = service.create_container(NATIVE_BUCKET)

    def read(self, name: str) -> bytes | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.c.get_blob_client(name).download_blob().readall()
        except ResourceNotFoundError:
            return None

    def props(self, name: str) -> tuple[str, dict]:
        p = self.c.get_blob_client(name).get_blob_properties()
        return (p.content_settings.content_type,
                _user_meta(dict(p.metadata), name, self.version_marker))

    def names(self, prefix: str) -> list[str]:
        return sorted(b.name for b in self.c.list_blobs(name_starts_with=prefix))

    def leftovers(self) -> list[str]:
        """Staging blobs, and uncommitted blocks on any blob."""
        out = []
        for b in self.c.list_blobs(include=["uncommittedblobs"]):
            if b.name.startswith(STAGING):
                out.append(b.name)
            _, uncommitted = self.c.get_blob_client(b.name).get_block_list("uncommitted")
            if uncommitted:
                out.append(f"{len(uncommitted)} uncommitted blocks on {b.name}")
        return out


class GcsNative:
    """The location's bucket in fake-gcs-server, through google-cloud-storage."""

    version_marker = "cloudmux-version-of"

    def __init__(self, endpoint: str):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        client = storage.Client(project="test", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": endpoint})
        self.b = client.create_bucket(NATIVE_BUCKET)

    def read(self, name: str) -> bytes | None:
        blob = self.b.get_blob(name)
        return None if blob is None else blob.download_as_bytes()

    def props(self, name: str) -> tuple[str, dict]:
        blob = self.b.get_blob(name)
        assert blob is not None, f"{name} is not in GCS"
        return blob.content_type, _user_meta(dict(blob.metadata or {}), name,
                                             self.version_marker)

    def names(self, prefix: str) -> list[str]:
        return sorted(b.name for b in self.b.list_blobs(prefix=prefix))

    def leftovers(self) -> list[str]:
        return self.names(STAGING)


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clouds(tmp_path_factory):
    """The three emulators, their native clients and a cloudmux using them."""
    work = tmp_path_factory.mktemp("versioning-clouds")
    emulators = []
    moto_log = open(work / "moto.log", "wb")
    try:
        emulators.append(start_moto(moto_log))
        emulators.append(start_azurite())
        emulators.append(start_fake_gcs())
        moto, azurite, gcs = (e.wait() for e in emulators)
        az_account = f"{azurite.endpoint}/{AZURITE_ACCOUNT}"
        native = {
            "s3-moto": MotoNative(moto.endpoint),
            "azure-azurite": AzureNative(az_account),
            "gcs-fake": GcsNative(gcs.endpoint),
        }
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

[locations.s3-moto]
type = "s3"
endpoint = "{moto.endpoint}"
region = "{REGION}"
bucket = "{NATIVE_BUCKET}"
access_key = "test"
secret_key = "test"
path_style = true
request_timeout_ms = 10000

[locations.azure-azurite]
type = "azure"
account = "{AZURITE_ACCOUNT}"
account_key = "{AZURITE_KEY}"
endpoint = "{az_account}"
container = "{NATIVE_BUCKET}"
request_timeout_ms = 10000

[locations.gcs-fake]
type = "gcs"
bucket = "{NATIVE_BUCKET}"
endpoint = "{gcs.endpoint}"
request_timeout_ms = 10000
"""
        )
        log = work / "server.log"
        proc, endpoint = start_server(config, log)
        try:
            yield {
                "s3": _client(endpoint, ACCESS_KEY, SECRET_KEY),
                "native": native,
                "server": Server(endpoint=endpoint, ca=None, log=log, proc=proc),
            }
        finally:
            stop_server(proc)
    finally:
        for e in emulators:
            e.stop()
        moto_log.close()


@pytest.fixture(autouse=True)
def _server_log(request, clouds):
    """Attaches cloudmux's log lines written during a failing test
    (conftest's pytest_runtest_makereport)."""
    srv = clouds["server"]
    assert srv.alive(), f"cloudmux exited with code {srv.proc.returncode}:\n{srv.log_tail()}"
    request.node._cloudmux_log = (srv, srv.log_size())
    yield


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def etag(body: bytes) -> str:
    return f'"{hashlib.md5(body).hexdigest()}"'


def multipart_etag(parts: list[bytes]) -> str:
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


def native_name(bucket: str, key: str) -> str:
    return f"{bucket}/{key}"


def kept_prefix(bucket: str, key: str) -> str:
    return f"{VERSIONS}{bucket}/{key}/"


def kept(bucket: str, key: str, version_id: str) -> str:
    return kept_prefix(bucket, key) + version_id


def versioned_bucket(s3, location: str) -> str:
    bucket = f"v-{location}-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket,
                     CreateBucketConfiguration={"LocationConstraint": location})
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == location
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled"
    return bucket


def put(s3, bucket: str, body: bytes, **extra) -> str:
    """PUTs a version of KEY; returns its version id (checked well formed)."""
    out = s3.put_object(Bucket=bucket, Key=KEY, Body=body, **extra)
    assert out["ETag"] == etag(body)
    vid = out.get("VersionId")
    assert vid is not None and VERSION_ID.fullmatch(vid), f"VersionId {vid!r}"
    return vid


def versions(s3, bucket: str, key: str = KEY) -> list[tuple]:
    """ListObjectVersions of `key`: (VersionId, IsLatest, ETag, Size) of each
    version and (VersionId, IsLatest, "marker") of each delete marker, in
    the order listed (versions, then markers)."""
    out = s3.list_object_versions(Bucket=bucket, Prefix=key)
    vs = [(v["VersionId"], v["IsLatest"], v["ETag"], v["Size"])
          for v in out.get("Versions", []) if v["Key"] == key]
    ms = [(m["VersionId"], m["IsLatest"], "marker")
          for m in out.get("DeleteMarkers", []) if m["Key"] == key]
    return vs + ms


def current_keys(s3, bucket: str) -> list[tuple[str, str]]:
    out = s3.list_objects_v2(Bucket=bucket)
    return [(o["Key"], o["ETag"]) for o in out.get("Contents", [])]


def get_version(s3, bucket: str, vid: str, key: str = KEY) -> dict:
    got = s3.get_object(Bucket=bucket, Key=key, VersionId=vid)
    return {"body": got["Body"].read(), "meta": got["Metadata"],
            "ctype": got["ContentType"], "etag": got["ETag"],
            "vid": got.get("VersionId")}


def client_error(call) -> tuple[int, str, dict]:
    """(status, error code, response headers) of a call that must fail."""
    with pytest.raises(ClientError) as e:
        call()
    r = e.value.response
    return (r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"],
            r["ResponseMetadata"]["HTTPHeaders"])


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


@pytest.mark.parametrize("location", LOCATIONS)
def test_versions_are_native_objects(clouds, location):
    """PUT, overwrite, copy and multipart make versions readable by id through
    cloudmux; natively the current one is at the native name and each
    noncurrent one at `.cloudmux-versions/<bucket>/<key>/<id>`."""
    s3, nat = clouds["s3"], clouds["native"][location]
    bucket = versioned_bucket(s3, location)
    v1 = {"body": os.urandom(3000), "meta": {"rev": "one", "color": "red"},
          "ctype": "text/plain"}
    v2 = {"body": os.urandom(4001), "meta": {"rev": "two"}, "ctype": "application/json"}
    id1 = put(s3, bucket, v1["body"], Metadata=v1["meta"], ContentType=v1["ctype"])
    id2 = put(s3, bucket, v2["body"], Metadata=v2["meta"], ContentType=v2["ctype"])
    assert id1 != id2

    assert versions(s3, bucket) == [
        (id2, True, etag(v2["body"]), 4001),
        (id1, False, etag(v1["body"]), 3000),
    ]
    for vid, v in ((id1, v1), (id2, v2)):
        assert get_version(s3, bucket, vid) == {**v, "etag": etag(v["body"]), "vid": vid}
    assert s3.head_object(Bucket=bucket, Key=KEY)["VersionId"] == id2

    # Natively: v2 at the native name, v1 kept aside, no staging data.
    assert nat.read(native_name(bucket, KEY)) == v2["body"]
    assert nat.props(native_name(bucket, KEY)) == (v2["ctype"], v2["meta"])
    assert nat.names(kept_prefix(bucket, KEY)) == [kept(bucket, KEY, id1)]
    assert nat.read(kept(bucket, KEY, id1)) == v1["body"]
    assert nat.props(kept(bucket, KEY, id1)) == (v1["ctype"], v1["meta"])
    assert nat.leftovers() == []

    # A copy of v1 onto the key is a new version with v1's data and metadata.
    c = s3.copy_object(Bucket=bucket, Key=KEY,
                       CopySource={"Bucket": bucket, "Key": KEY, "VersionId": id1})
    id3 = c.get("VersionId")
    assert id3 is not None and VERSION_ID.fullmatch(id3) and id3 not in (id1, id2)
    assert c.get("CopySourceVersionId") == id1
    assert c["CopyObjectResult"]["ETag"] == etag(v1["body"])
    assert get_version(s3, bucket, id3) == {**v1, "etag": etag(v1["body"]), "vid": id3}
    assert nat.read(native_name(bucket, KEY)) == v1["body"]
    assert nat.props(native_name(bucket, KEY)) == (v1["ctype"], v1["meta"])
    assert nat.read(kept(bucket, KEY, id2)) == v2["body"]

    # A multipart upload (5 MiB + 1 MiB) onto the key is one more version.
    parts = [os.urandom(5 * MIB), os.urandom(1 * MIB)]
    up = s3.create_multipart_upload(Bucket=bucket, Key=KEY, ContentType="video/mp4",
                                    Metadata={"rev": "mpu"})
    etags = [s3.upload_part(Bucket=bucket, Key=KEY, UploadId=up["UploadId"],
                            PartNumber=n, Body=p)["ETag"]
             for n, p in enumerate(parts, 1)]
    assert etags == [etag(p) for p in parts]
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key=KEY, UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": t}
                                   for n, t in enumerate(etags, 1)]})
    mpu_etag = multipart_etag(parts)
    assert done["ETag"] == mpu_etag
    id4 = done.get("VersionId")
    assert id4 is not None and VERSION_ID.fullmatch(id4) and id4 not in (id1, id2, id3)
    assert get_version(s3, bucket, id4) == {
        "body": b"".join(parts), "meta": {"rev": "mpu"}, "ctype": "video/mp4",
        "etag": mpu_etag, "vid": id4}
    assert get_version(s3, bucket, id3)["body"] == v1["body"]

    assert versions(s3, bucket) == [
        (id4, True, mpu_etag, 6 * MIB),
        (id3, False, etag(v1["body"]), 3000),
        (id2, False, etag(v2["body"]), 4001),
        (id1, False, etag(v1["body"]), 3000),
    ]
    assert nat.read(native_name(bucket, KEY)) == b"".join(parts)
    assert nat.props(native_name(bucket, KEY)) == ("video/mp4", {"rev": "mpu"})
    assert nat.names(kept_prefix(bucket, KEY)) == sorted(
        kept(bucket, KEY, i) for i in (id1, id2, id3))
    for vid, body in ((id1, v1["body"]), (id2, v2["body"]), (id3, v1["body"])):
        assert nat.read(kept(bucket, KEY, vid)) == body, vid
    assert nat.leftovers() == []


@pytest.mark.parametrize("location", LOCATIONS)
def test_delete_markers_and_deletes_by_id(clouds, location):
    """A delete marker removes the native object and keeps every version
    aside; removing the marker puts the previous version back at the native
    name; deleting a noncurrent version by id removes its kept object."""
    s3, nat = clouds["s3"], clouds["native"][location]
    bucket = versioned_bucket(s3, location)
    bodies = [os.urandom(1000 + i) for i in range(3)]
    ids = [put(s3, bucket, b, ContentType="text/plain", Metadata={"rev": str(i)})
           for i, b in enumerate(bodies)]
    other = s3.put_object(Bucket=bucket, Key="other.txt", Body=b"other")
    assert VERSION_ID.fullmatch(other.get("VersionId", ""))
    assert current_keys(s3, bucket) == [(KEY, etag(bodies[2])), ("other.txt", etag(b"other"))]

    # DELETE without a version id: a delete marker.
    d = s3.delete_object(Bucket=bucket, Key=KEY)
    assert d.get("DeleteMarker") is True
    marker = d.get("VersionId")
    assert marker is not None and VERSION_ID.fullmatch(marker) and marker not in ids

    status, code, headers = client_error(lambda: s3.head_object(Bucket=bucket, Key=KEY))
    assert status == 404
    assert headers.get("x-amz-delete-marker") == "true"
    assert headers.get("x-amz-version-id") == marker
    status, code, headers = client_error(lambda: s3.get_object(Bucket=bucket, Key=KEY))
    assert (status, code) == (404, "NoSuchKey")
    assert headers.get("x-amz-delete-marker") == "true"
    status, code, headers = client_error(
        lambda: s3.get_object(Bucket=bucket, Key=KEY, VersionId=marker))
    assert (status, code) == (405, "MethodNotAllowed")
    assert headers.get("x-amz-delete-marker") == "true"

    assert versions(s3, bucket) == [
        (ids[2], False, etag(bodies[2]), 1002),
        (ids[1], False, etag(bodies[1]), 1001),
        (ids[0], False, etag(bodies[0]), 1000),
        (marker, True, "marker"),
    ]
    assert current_keys(s3, bucket) == [("other.txt", etag(b"other"))]
    for vid, body in zip(ids, bodies):
        assert get_version(s3, bucket, vid)["body"] == body

    # Natively: no object at the native name, every version kept aside.
    assert nat.read(native_name(bucket, KEY)) is None
    assert nat.names(native_name(bucket, KEY)) == [], "the native name is gone"
    assert nat.names(kept_prefix(bucket, KEY)) == sorted(kept(bucket, KEY, i) for i in ids)
    for i, (vid, body) in enumerate(zip(ids, bodies)):
        assert nat.read(kept(bucket, KEY, vid)) == body, vid
        assert nat.props(kept(bucket, KEY, vid)) == ("text/plain", {"rev": str(i)})
    assert nat.read(native_name(bucket, "other.txt")) == b"other"

    # Removing the marker makes the newest version current again.
    r = s3.delete_object(Bucket=bucket, Key=KEY, VersionId=marker)
    assert r.get("VersionId") == marker
    assert r.get("DeleteMarker") is True
    got = s3.get_object(Bucket=bucket, Key=KEY)
    assert got["Body"].read() == bodies[2]
    assert got["VersionId"] == ids[2]
    assert got["Metadata"] == {"rev": "2"}
    assert versions(s3, bucket) == [
        (ids[2], True, etag(bodies[2]), 1002),
        (ids[1], False, etag(bodies[1]), 1001),
        (ids[0], False, etag(bodies[0]), 1000),
    ]
    assert current_keys(s3, bucket) == [(KEY, etag(bodies[2])), ("other.txt", etag(b"other"))]
    assert nat.read(native_name(bucket, KEY)) == bodies[2]
    assert nat.props(native_name(bucket, KEY)) == ("text/plain", {"rev": "2"})
    assert nat.names(kept_prefix(bucket, KEY)) == sorted(
        kept(bucket, KEY, i) for i in ids[:2]), "the current version is not also kept"

    # Deleting a noncurrent version by id removes it, natively too.
    r = s3.delete_object(Bucket=bucket, Key=KEY, VersionId=ids[0])
    assert r.get("VersionId") == ids[0]
    assert not r.get("DeleteMarker")
    assert versions(s3, bucket) == [
        (ids[2], True, etag(bodies[2]), 1002),
        (ids[1], False, etag(bodies[1]), 1001),
    ]
    status, code, _ = client_error(
        lambda: s3.get_object(Bucket=bucket, Key=KEY, VersionId=ids[0]))
    assert (status, code) == (404, "NoSuchVersion")
    assert nat.read(kept(bucket, KEY, ids[0])) is None
    assert nat.names(kept_prefix(bucket, KEY)) == [kept(bucket, KEY, ids[1])]
    assert nat.read(kept(bucket, KEY, ids[1])) == bodies[1]
    assert nat.read(native_name(bucket, KEY)) == bodies[2]
    assert get_version(s3, bucket, ids[1])["body"] == bodies[1]
    assert nat.leftovers() == []


@pytest.mark.parametrize("location", LOCATIONS)
def test_suspended_versioning_replaces_the_null_version(clouds, location):
    """While versioning is suspended, PUTs replace one `null` version and keep
    the earlier versions; once re-enabled, the next PUT keeps the null
    version natively as `.cloudmux-versions/<bucket>/<key>/null.<16 hex>`."""
    s3, nat = clouds["s3"], clouds["native"][location]
    bucket = versioned_bucket(s3, location)
    a, b, c, d, e = (os.urandom(500 + i) for i in range(5))
    id_a = put(s3, bucket, a)
    id_b = put(s3, bucket, b)

    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Suspended"
    out = s3.put_object(Bucket=bucket, Key=KEY, Body=c, ContentType="text/csv")
    # AWS shows the null version's id as `null`; whether the PUT's answer
    # names it or carries no header is not documented: either is accepted.
    assert out.get("VersionId") in (None, "null")
    assert versions(s3, bucket) == [
        ("null", True, etag(c), 502),
        (id_b, False, etag(b), 501),
        (id_a, False, etag(a), 500),
    ]
    assert get_version(s3, bucket, "null")["body"] == c
    assert nat.read(native_name(bucket, KEY)) == c
    assert nat.names(kept_prefix(bucket, KEY)) == sorted(
        kept(bucket, KEY, i) for i in (id_a, id_b))

    # A second suspended PUT replaces the null version: still exactly one.
    out = s3.put_object(Bucket=bucket, Key=KEY, Body=d, ContentType="text/csv")
    assert out.get("VersionId") in (None, "null")
    assert versions(s3, bucket) == [
        ("null", True, etag(d), 503),
        (id_b, False, etag(b), 501),
        (id_a, False, etag(a), 500),
    ]
    got = get_version(s3, bucket, "null")
    assert (got["body"], got["ctype"]) == (d, "text/csv")
    assert get_version(s3, bucket, id_a)["body"] == a
    assert get_version(s3, bucket, id_b)["body"] == b
    assert current_keys(s3, bucket) == [(KEY, etag(d))]
    assert nat.read(native_name(bucket, KEY)) == d
    assert nat.names(kept_prefix(bucket, KEY)) == sorted(
        kept(bucket, KEY, i) for i in (id_a, id_b)), "the replaced null version is not kept"

    # Enabled again: a new version makes the null version noncurrent.
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    id_e = put(s3, bucket, e)
    assert versions(s3, bucket) == [
        (id_e, True, etag(e), 504),
        ("null", False, etag(d), 503),
        (id_b, False, etag(b), 501),
        (id_a, False, etag(a), 500),
    ]
    assert get_version(s3, bucket, "null")["body"] == d
    assert nat.read(native_name(bucket, KEY)) == e
    names = nat.names(kept_prefix(bucket, KEY))
    nulls = [n for n in names if NULL_KEPT.fullmatch(n[len(kept_prefix(bucket, KEY)):])]
    assert len(nulls) == 1, names
    assert sorted(set(names) - set(nulls)) == sorted(kept(bucket, KEY, i) for i in (id_a, id_b))
    assert nat.read(nulls[0]) == d
    assert nat.props(nulls[0])[0] == "text/csv"
    assert current_keys(s3, bucket) == [(KEY, etag(e))]
    assert nat.leftovers() == []


def test_reads_of_the_null_version_name_it(clouds):
    """GET and HEAD of a null version answer `x-amz-version-id: null`, the id
    ListObjectVersions shows, as AWS does in a bucket whose versioning was
    ever enabled (only the PUT that writes it in a suspended bucket carries
    no header). The header is no matter of the location, so one test covers
    the three and reports every read that does not name the version."""
    s3 = clouds["s3"]
    seen = {}
    for location in LOCATIONS:
        bucket = versioned_bucket(s3, location)
        put(s3, bucket, b"versioned")
        s3.put_bucket_versioning(Bucket=bucket,
                                 VersioningConfiguration={"Status": "Suspended"})
        s3.put_object(Bucket=bucket, Key=KEY, Body=b"the null version")
        got = s3.get_object(Bucket=bucket, Key=KEY, VersionId="null")
        assert got["Body"].read() == b"the null version"
        seen[location, "GET ?versionId=null"] = got.get("VersionId")
        seen[location, "GET"] = s3.get_object(Bucket=bucket, Key=KEY).get("VersionId")
        seen[location, "HEAD"] = s3.head_object(Bucket=bucket, Key=KEY).get("VersionId")
        # Noncurrent once versioning is enabled again and a version is added.
        s3.put_bucket_versioning(Bucket=bucket,
                                 VersioningConfiguration={"Status": "Enabled"})
        put(s3, bucket, b"newer")
        got = s3.get_object(Bucket=bucket, Key=KEY, VersionId="null")
        assert got["Body"].read() == b"the null version"
        seen[location, "GET ?versionId=null, noncurrent"] = got.get("VersionId")
        seen[location, "HEAD ?versionId=null, noncurrent"] = s3.head_object(
            Bucket=bucket, Key=KEY, VersionId="null").get("VersionId")
    wrong = [f"{location}: {read} answered x-amz-version-id {vid!r}"
             for (location, read), vid in seen.items() if vid != "null"]
    assert not wrong, "the null version is not named:\n" + "\n".join(wrong)
