"""Bucket versioning (issue 14) through boto3 and the aws CLI.

* The boto3 `list_object_versions` paginator over N versions of K keys,
  pages of 7 and of 1000: every version exactly once, keys ascending (by
  UTF-8 bytes), each key's versions newest first (the order in which its
  PUTs answered their ids), IsLatest on the newest only, ETag and Size.
* The same with delete markers between the versions.
* `aws s3api list-object-versions` over the same N versions with
  `--page-size` 7 and 1000, and with `--page-size` and with
  `--max-items`/`--starting-token` over a few hundred versions.
* `aws s3api put-bucket-versioning`/`get-bucket-versioning`,
  `put-object`, `delete-object` with and without `--version-id`.

Sizes: N=2000 versions of K=100 keys by default (CI); the issue's full size
runs with

    CLOUDMUX_VERSIONS_N=20000 CLOUDMUX_VERSIONS_K=1000 \
        .venv/bin/python -m pytest tests/py/test_versioning.py -p no:cacheprovider
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import new_bucket_name

N = int(os.environ.get("CLOUDMUX_VERSIONS_N", "2000"))
K = int(os.environ.get("CLOUDMUX_VERSIONS_K", "100"))
WRITERS = 8


def _etag(body: bytes) -> str:
    return '"' + hashlib.md5(body).hexdigest() + '"'


def _enabled_bucket(s3, prefix: str) -> str:
    bucket = new_bucket_name(prefix)
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    return bucket


def _write_versions(s3, bucket: str, keys: list[str], counts: list[int]):
    """Writes counts[i] versions of keys[i], each key's PUTs in sequence and
    the keys WRITERS at a time; returns, per key, [(version id, body)] in
    the order the PUTs answered."""

    def write(i: int) -> list[tuple[str, bytes]]:
        out = []
        for j in range(counts[i]):
            body = f"{keys[i]} version {j}".encode()
            vid = s3.put_object(Bucket=bucket, Key=keys[i], Body=body)["VersionId"]
            assert vid and vid != "null", vid
            out.append((vid, body))
        return out

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        return list(pool.map(write, range(len(keys))))


def _expected(keys: list[str], written) -> list[tuple]:
    """(key, version id, is latest, ETag, size) in ListObjectVersions order."""
    rows = []
    for key, versions in sorted(zip(keys, written), key=lambda kv: kv[0].encode()):
        for n, (vid, body) in enumerate(reversed(versions)):
            rows.append((key, vid, n == 0, _etag(body), len(body)))
    return rows


def _rows(versions: list[dict]) -> list[tuple]:
    return [
        (v["Key"], v["VersionId"], v["IsLatest"], v["ETag"], v["Size"]) for v in versions
    ]


@pytest.fixture(scope="module")
def many_versions(s3):
    assert N >= K > 0
    bucket = _enabled_bucket(s3, "ver")
    # Unpadded numbers: byte order differs from numeric order.
    keys = [f"obj/{i}" for i in range(K)]
    counts = [N // K + (1 if i < N % K else 0) for i in range(K)]
    written = _write_versions(s3, bucket, keys, counts)
    expected = _expected(keys, written)
    assert len(expected) == N
    ids = [r[1] for r in expected]
    assert len(set(ids)) == N, "version ids are unique"
    return bucket, expected


@pytest.mark.last
@pytest.mark.parametrize("page_size", [7, 1000])
def test_paginator_lists_every_version_in_order(s3, many_versions, page_size):
    bucket, expected = many_versions
    pages = list(
        s3.get_paginator("list_object_versions").paginate(
            Bucket=bucket, PaginationConfig={"PageSize": page_size}
        )
    )
    got = _rows([v for p in pages for v in p.get("Versions", [])])
    assert len(got) == len(expected)
    assert len(set(r[1] for r in got)) == len(got), "a version is listed twice"
    assert got == expected
    assert not any(p.get("DeleteMarkers") for p in pages)
    assert len(pages) == math.ceil(N / page_size)
    for p in pages[:-1]:
        assert p["IsTruncated"] is True
        assert len(p["Versions"]) == page_size
        assert p["NextKeyMarker"] and p["NextVersionIdMarker"]
    assert pages[-1]["IsTruncated"] is False


@pytest.mark.last
@pytest.mark.parametrize("page_size", ["7", "1000"])
def test_cli_walks_every_version_in_order(aws, many_versions, page_size):
    """The aws CLI pages through the same N versions of K keys with
    `--page-size` (its max-keys) 7 and 1000: exact, ordered, no repeats."""
    bucket, expected = many_versions
    out = _cli_json(
        aws("s3api", "list-object-versions", "--bucket", bucket, "--page-size", page_size)
    )
    got = _rows(out["Versions"])
    assert len(set(r[1] for r in got)) == len(got), "a version is listed twice"
    assert got == expected
    assert not out.get("DeleteMarkers")


def test_paginator_with_delete_markers(s3):
    bucket = _enabled_bucket(s3, "vdm")
    keys = [f"d{i}" for i in range(30)]
    written = _write_versions(s3, bucket, keys, [3] * len(keys))
    markers = {}
    for i, key in enumerate(keys):
        if i % 3 == 0:
            r = s3.delete_object(Bucket=bucket, Key=key)
            assert r["DeleteMarker"] is True
            markers[key] = r["VersionId"]
    # Every entry in order, markers included: (key, id, latest, is marker).
    order = []
    for key, versions in sorted(zip(keys, written), key=lambda kv: kv[0].encode()):
        if key in markers:
            order.append((key, markers[key], True, True))
        for n, (vid, _) in enumerate(reversed(versions)):
            order.append((key, vid, n == 0 and key not in markers, False))
    for page_size in (4, 7, 1000):
        pages = list(
            s3.get_paginator("list_object_versions").paginate(
                Bucket=bucket, PaginationConfig={"PageSize": page_size}
            )
        )
        versions = [
            (v["Key"], v["VersionId"], v["IsLatest"], False)
            for p in pages
            for v in p.get("Versions", [])
        ]
        dms = [
            (m["Key"], m["VersionId"], m["IsLatest"], True)
            for p in pages
            for m in p.get("DeleteMarkers", [])
        ]
        assert versions == [o for o in order if not o[3]], page_size
        assert dms == [o for o in order if o[3]], page_size
        for p in pages[:-1]:
            n = len(p.get("Versions", [])) + len(p.get("DeleteMarkers", []))
            assert n == page_size
    # ListObjectsV2 shows only the keys whose current version is no marker.
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert listed == sorted(k for k in keys if k not in markers)


@pytest.fixture(scope="module")
def cli_versions(s3):
    bucket = _enabled_bucket(s3, "vcli")
    keys = [f"cli/{i}" for i in range(20)]
    written = _write_versions(s3, bucket, keys, [15] * len(keys))
    return bucket, _expected(keys, written)


def _cli_json(res) -> dict:
    return json.loads(res.stdout) if res.stdout.strip() else {}


def test_cli_list_object_versions_page_size(aws, cli_versions):
    bucket, expected = cli_versions
    for page_size in ("7", "1000"):
        out = _cli_json(
            aws("s3api", "list-object-versions", "--bucket", bucket,
                "--page-size", page_size)
        )
        assert _rows(out["Versions"]) == expected, page_size
        assert not out.get("DeleteMarkers")


def test_cli_list_object_versions_max_items(aws, cli_versions):
    bucket, expected = cli_versions
    got: list[dict] = []
    token = None
    calls = 0
    while True:
        args = ["s3api", "list-object-versions", "--bucket", bucket,
                "--max-items", "50", "--page-size", "7"]
        if token:
            args += ["--starting-token", token]
        out = _cli_json(aws(*args))
        calls += 1
        assert len(out.get("Versions", [])) <= 50
        got.extend(out.get("Versions", []))
        token = out.get("NextToken")
        if not token:
            break
        assert calls < 100, "the CLI never finished"
    assert _rows(got) == expected
    assert calls == math.ceil(len(expected) / 50)


def test_cli_bucket_versioning_and_version_deletes(aws):
    bucket = new_bucket_name("vcfg")
    aws("s3api", "create-bucket", "--bucket", bucket)
    # A never-versioned bucket: no Status.
    out = _cli_json(aws("s3api", "get-bucket-versioning", "--bucket", bucket))
    assert "Status" not in out, out
    for status in ("Enabled", "Suspended", "Enabled"):
        aws("s3api", "put-bucket-versioning", "--bucket", bucket,
            "--versioning-configuration", f"Status={status}")
        out = _cli_json(aws("s3api", "get-bucket-versioning", "--bucket", bucket))
        assert out.get("Status") == status, out

    ids = []
    for body in ("one", "two"):
        path = aws.srv.workdir / f"vcfg-{body}.txt"
        path.write_text(body)
        out = _cli_json(aws("s3api", "put-object", "--bucket", bucket, "--key", "k",
                            "--body", str(path)))
        assert out.get("VersionId") and out["VersionId"] != "null", out
        ids.append(out["VersionId"])
    assert ids[0] != ids[1]

    # Without --version-id: a delete marker.
    out = _cli_json(aws("s3api", "delete-object", "--bucket", bucket, "--key", "k"))
    assert out.get("DeleteMarker") is True, out
    marker = out["VersionId"]
    assert marker not in ids
    res = aws("s3api", "head-object", "--bucket", bucket, "--key", "k", check=False)
    assert res.returncode != 0 and "404" in res.stderr, res.stderr

    # With --version-id: the marker, then a version, go for good.
    out = _cli_json(aws("s3api", "delete-object", "--bucket", bucket, "--key", "k",
                        "--version-id", marker))
    assert out.get("VersionId") == marker and out.get("DeleteMarker") is True, out
    out = _cli_json(aws("s3api", "head-object", "--bucket", bucket, "--key", "k"))
    assert out.get("VersionId") == ids[1], out
    out = _cli_json(aws("s3api", "delete-object", "--bucket", bucket, "--key", "k",
                        "--version-id", ids[1]))
    assert out.get("VersionId") == ids[1] and not out.get("DeleteMarker"), out
    target = aws.srv.workdir / "vcfg-out.txt"
    out = _cli_json(aws("s3api", "get-object", "--bucket", bucket, "--key", "k",
                        str(target)))
    assert out.get("VersionId") == ids[0], out
    assert target.read_text() == "one"
    res = aws("s3api", "get-object", "--bucket", bucket, "--key", "k",
              "--version-id", ids[1], str(target), check=False)
    assert res.returncode != 0 and "NoSuchVersion" in res.stderr, res.stderr
    out = _cli_json(aws("s3api", "list-object-versions", "--bucket", bucket))
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in out["Versions"]] == [
        ("k", ids[0], True)
    ]
    assert not out.get("DeleteMarkers")
