"""aws CLI (v1) high-level `s3` commands against cloudmux over HTTPS."""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import new_bucket_name, write_random_file
from s3checksums import file_parts, multipart_etag, sha256_file

MiB = 1 << 20


def parse_ls(stdout: str) -> dict[str, int]:
    """`aws s3 ls --recursive` lines: `DATE TIME SIZE KEY` -> {key: size}."""
    out = {}
    for line in stdout.splitlines():
        if not line.strip():
            continue
        _date, _time, size, key = line.split(None, 3)
        out[key] = int(size)
    return out


def test_mb_cp_multipart_roundtrip(aws, s3, tmp_path: Path):
    bucket = new_bucket_name("cli")
    res = aws("s3", "mb", f"s3://{bucket}")
    assert f"make_bucket: {bucket}" in res.stdout
    s3.head_bucket(Bucket=bucket)

    src = tmp_path / "big.bin"
    write_random_file(src, 40 * MiB)
    aws("s3", "cp", str(src), f"s3://{bucket}/dir/big.bin")

    head = s3.head_object(Bucket=bucket, Key="dir/big.bin")
    assert head["ContentLength"] == 40 * MiB
    # The CLI uploads 40 MiB as 5 parts of 8 MiB: S3 multipart ETag rules.
    assert head["ETag"] == multipart_etag(file_parts(src, 8 * MiB)), head["ETag"]

    dst = tmp_path / "back.bin"
    aws("s3", "cp", f"s3://{bucket}/dir/big.bin", str(dst))
    assert dst.stat().st_size == 40 * MiB
    assert sha256_file(dst) == sha256_file(src)


def _make_tree(root: Path, n: int) -> dict[str, int]:
    rng = random.Random(1234)
    files = {}
    for i in range(n):
        rel = f"d{i % 5}/s{i % 7}/t{i % 3}/file-{i:03d}.dat"
        size = 0 if i % 50 == 0 else rng.randrange(1, 20_000)
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.randbytes(size))
        # An mtime well in the past: the second sync must then find every
        # object up to date whatever LastModified's sub-second precision.
        past = time.time() - 3600
        os.utime(p, (past, past))
        files[rel] = size
    return files


def test_sync_ls_rm_rb(aws, s3, tmp_path: Path):
    bucket = new_bucket_name("sync")
    aws("s3", "mb", f"s3://{bucket}")
    tree = tmp_path / "tree"
    files = _make_tree(tree, 200)
    assert len(files) == 200

    res = aws("s3", "sync", str(tree), f"s3://{bucket}/")
    assert res.stdout.count("upload:") == 200, res.stdout[-2000:]

    listed = parse_ls(aws("s3", "ls", "--recursive", f"s3://{bucket}").stdout)
    assert listed == files

    # A second sync finds every object up to date (size + LastModified).
    res = aws("s3", "sync", str(tree), f"s3://{bucket}/")
    assert "upload:" not in res.stdout, res.stdout[-2000:]

    # Download side of sync reproduces the tree byte for byte.
    back = tmp_path / "back"
    aws("s3", "sync", f"s3://{bucket}/", str(back))
    for rel, size in files.items():
        assert (back / rel).read_bytes() == (tree / rel).read_bytes(), rel

    res = aws("s3", "rm", "--recursive", f"s3://{bucket}/")
    assert res.stdout.count("delete:") == 200
    res = aws("s3", "ls", "--recursive", f"s3://{bucket}", check=False)
    assert res.returncode in (0, 1), res.stderr
    assert res.stdout.strip() == ""
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0

    res = aws("s3", "rb", f"s3://{bucket}")
    assert f"remove_bucket: {bucket}" in res.stdout
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=bucket)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert bucket not in names


SPECIAL_KEYS = [
    "with space/a b.txt",
    "plus+sign/c+d.txt",
    "unicode/ünïcødé-日本.txt",
    "query?and&eq=/x.txt",
    "tilde~star*paren(1)'quote'.txt",
    "percent%20literal.txt",
    "semi;colon,comma@at$dollar!.txt",
]


def test_special_character_keys(aws, s3, bucket, tmp_path: Path):
    src = tmp_path / "f.txt"
    for i, key in enumerate(SPECIAL_KEYS):
        src.write_bytes(f"body {i} {key}".encode())
        aws("s3", "cp", str(src), f"s3://{bucket}/{key}")

    listed = parse_ls(aws("s3", "ls", "--recursive", f"s3://{bucket}").stdout)
    assert sorted(listed) == sorted(SPECIAL_KEYS)

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == sorted(SPECIAL_KEYS, key=lambda k: k.encode())

    for i, key in enumerate(SPECIAL_KEYS):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body == f"body {i} {key}".encode(), key
        dst = tmp_path / f"dl-{i}"
        aws("s3", "cp", f"s3://{bucket}/{key}", str(dst))
        assert dst.read_bytes() == body

    # s3api with a key that needs encoding in the path.
    out = json.loads(
        aws("s3api", "head-object", "--bucket", bucket, "--key", SPECIAL_KEYS[2]).stdout
    )
    assert out["ContentLength"] == len(f"body 2 {SPECIAL_KEYS[2]}".encode())
