"""S3 Object Lock with boto3 (the core rules, briefly) and restic backing up
into an Object Lock bucket with a default retention.

boto3 >= 1.36 sends a CRC32 checksum with every request that has a body
(`request_checksum_calculation = when_supported`), which is what S3 requires
of PutObject with Object Lock parameters and of the lock operations.
"""

from __future__ import annotations

import datetime
import filecmp
import os
import shutil
import subprocess
from pathlib import Path

import botocore.exceptions
import pytest

from conftest import ACCESS_KEY, SECRET_KEY, new_bucket_name, write_random_file

DAY = datetime.timedelta(days=1)


def _error(exc: botocore.exceptions.ClientError) -> tuple[int, str]:
    r = exc.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _lock_bucket(s3, mode: str | None = None, days: int = 1) -> str:
    """A new bucket with Object Lock, and a default retention when `mode`."""
    name = new_bucket_name("lock")
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    if mode:
        s3.put_object_lock_configuration(
            Bucket=name,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}},
            },
        )
    return name


def test_boto3_lock_bucket_and_default_retention(s3):
    name = _lock_bucket(s3)
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_bucket_versioning(
            Bucket=name, VersioningConfiguration={"Status": "Suspended"}
        )
    assert _error(e.value) == (409, "InvalidBucketState")
    conf = s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
    assert conf == {"ObjectLockEnabled": "Enabled"}

    s3.put_object_lock_configuration(
        Bucket=name,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    rule = s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]["Rule"]
    assert rule["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": 1}

    before = _now()
    v = s3.put_object(Bucket=name, Key="k", Body=b"data")["VersionId"]
    head = s3.head_object(Bucket=name, Key="k", VersionId=v)
    assert head["ObjectLockMode"] == "GOVERNANCE"
    until = head["ObjectLockRetainUntilDate"]
    assert before + DAY - datetime.timedelta(seconds=5) <= until <= _now() + DAY
    r = s3.get_object_retention(Bucket=name, Key="k", VersionId=v)["Retention"]
    assert r["Mode"] == "GOVERNANCE"

    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.delete_object(Bucket=name, Key="k", VersionId=v)
    assert _error(e.value) == (403, "AccessDenied")
    # The owner may set GOVERNANCE aside with the bypass header.
    s3.delete_object(Bucket=name, Key="k", VersionId=v, BypassGovernanceRetention=True)
    assert "Versions" not in s3.list_object_versions(Bucket=name)


def test_boto3_compliance_retention_and_legal_hold(s3):
    name = _lock_bucket(s3)
    until = _now() + DAY
    v = s3.put_object(
        Bucket=name, Key="c", Body=b"kept",
        ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until,
    )["VersionId"]
    for bypass in (False, True):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.delete_object(Bucket=name, Key="c", VersionId=v, BypassGovernanceRetention=bypass)
        assert _error(e.value) == (403, "AccessDenied")
    # Extending is allowed, shortening never.
    s3.put_object_retention(
        Bucket=name, Key="c", VersionId=v,
        Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until + DAY},
    )
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object_retention(
            Bucket=name, Key="c", VersionId=v, BypassGovernanceRetention=True,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until},
        )
    assert _error(e.value) == (403, "AccessDenied")
    # DELETE without a version id only adds a delete marker.
    d = s3.delete_object(Bucket=name, Key="c")
    assert d["DeleteMarker"] is True
    assert s3.get_object(Bucket=name, Key="c", VersionId=v)["Body"].read() == b"kept"

    # A legal hold blocks deletion until it is removed.
    h = s3.put_object(Bucket=name, Key="h", Body=b"held")["VersionId"]
    assert s3.get_object_legal_hold(Bucket=name, Key="h", VersionId=h)["LegalHold"] == {
        "Status": "OFF"
    }
    s3.put_object_legal_hold(Bucket=name, Key="h", VersionId=h, LegalHold={"Status": "ON"})
    assert s3.head_object(Bucket=name, Key="h", VersionId=h)["ObjectLockLegalHoldStatus"] == "ON"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.delete_object(Bucket=name, Key="h", VersionId=h, BypassGovernanceRetention=True)
    assert _error(e.value) == (403, "AccessDenied")
    s3.put_object_legal_hold(Bucket=name, Key="h", VersionId=h, LegalHold={"Status": "OFF"})
    s3.delete_object(Bucket=name, Key="h", VersionId=h)


def test_boto3_lock_needs_an_object_lock_bucket(s3, bucket):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(
            Bucket=bucket, Key="k", Body=b"x",
            ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=_now() + DAY,
        )
    assert _error(e.value) == (400, "InvalidRequest")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object_lock_configuration(Bucket=bucket)
    assert _error(e.value) == (404, "ObjectLockConfigurationNotFoundError")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object_lock_configuration(
            Bucket=bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"}
        )
    assert _error(e.value) == (409, "InvalidBucketState")
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object_retention(Bucket=bucket, Key="k")
    assert _error(e.value) == (400, "InvalidRequest")


# --------------------------------------------------------------------------
# restic
# --------------------------------------------------------------------------


def _restic(server, bucket: str, work: Path, *args: str, timeout: float = 600):
    """Runs restic against `bucket` through cloudmux; fails with its output."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "RESTIC_REPOSITORY": f"s3:{server.endpoint}/{bucket}",
        "RESTIC_PASSWORD": "cloudmux-restic-test",
        "RESTIC_CACHE_DIR": str(work / "cache"),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    res = subprocess.run(
        ["restic", "--cacert", str(server.ca), *args], env=env, capture_output=True, encoding="utf-8",
        errors="replace", timeout=timeout,
    )
    assert res.returncode == 0, (
        f"`restic {' '.join(args)}` exited {res.returncode}\n"
        f"stdout:\n{res.stdout[-4000:]}\nstderr:\n{res.stderr[-4000:]}\n"
        f"server log:\n{server.log_tail()}"
    )
    return res


@pytest.mark.skipif(shutil.which("restic") is None,
                    reason="restic is not installed (scripts/install-test-deps.sh installs it)")
def test_restic_backup_into_an_object_lock_bucket(server, s3, tmp_path):
    name = _lock_bucket(s3, mode="COMPLIANCE", days=1)
    src = tmp_path / "src"
    write_random_file(src / "big.bin", 6 * 1024 * 1024 + 123)
    write_random_file(src / "dir" / "small.bin", 4321)
    (src / "dir" / "note.txt").write_text("restic into an Object Lock bucket\n")
    (src / "empty").write_bytes(b"")
    work = tmp_path / "restic"
    work.mkdir()

    _restic(server, name, work, "init")
    _restic(server, name, work, "backup", str(src))
    _restic(server, name, work, "check", "--read-data")
    out = tmp_path / "out"
    _restic(server, name, work, "restore", "latest", "--target", str(out))
    restored = out / src.relative_to(src.anchor)
    for f in ("big.bin", "dir/small.bin", "dir/note.txt", "empty"):
        assert filecmp.cmp(src / f, restored / f, shallow=False), f

    # Every object restic wrote is a locked version; its lock files were
    # deleted the only way a versioned bucket allows without a version id:
    # by delete markers.
    versions = s3.list_object_versions(Bucket=name)
    keys = {v["Key"] for v in versions["Versions"]}
    assert "config" in keys and any(k.startswith("data/") for k in keys), keys
    markers = {m["Key"] for m in versions.get("DeleteMarkers", [])}
    assert markers and all(k.startswith("locks/") for k in markers), markers
    pack = next(v for v in versions["Versions"] if v["Key"].startswith("data/"))
    head = s3.head_object(Bucket=name, Key=pack["Key"], VersionId=pack["VersionId"])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    for bypass in (False, True):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.delete_object(Bucket=name, Key=pack["Key"], VersionId=pack["VersionId"],
                             BypassGovernanceRetention=bypass)
        assert _error(e.value) == (403, "AccessDenied")
    # The repository still checks whole after the refused deletes.
    _restic(server, name, work, "check", "--read-data")


def test_post_object_lock_fields(server, s3):
    """POST Object takes the lock fields as PutObject takes the headers; a
    locked new version needs a checksum field."""
    from test_post_object import _code, _post

    name = _lock_bucket(s3)
    until = (_now() + DAY).strftime("%Y-%m-%dT%H:%M:%SZ")
    lock = {
        "x-amz-object-lock-mode": "GOVERNANCE",
        "x-amz-object-lock-retain-until-date": until,
    }
    conditions = [{k: v} for k, v in lock.items()]
    post = s3.generate_presigned_post(
        name, "posted", Fields=dict(lock), Conditions=conditions, ExpiresIn=300
    )
    refused = _post(server, post["url"], post["fields"])
    assert (refused.status, _code(refused)) == (400, "InvalidRequest"), refused.data
    fields = {**lock, "x-amz-checksum-algorithm": "CRC32"}
    post = s3.generate_presigned_post(
        name, "posted", Fields=fields,
        Conditions=[{k: v} for k, v in fields.items()], ExpiresIn=300,
    )
    resp = _post(server, post["url"], post["fields"])
    assert resp.status == 204, resp.data
    head = s3.head_object(Bucket=name, Key="posted")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.delete_object(Bucket=name, Key="posted", VersionId=head["VersionId"])
    assert _error(e.value) == (403, "AccessDenied")
