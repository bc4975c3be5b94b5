"""Listing 2,500 keys with boto3 paginators (ListObjectsV2 and V1)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import new_bucket_name

N = 2500

# 2,500 concurrent PUTs: run after everything else so that a server that
# falls over under concurrency does not hide the other results.
pytestmark = pytest.mark.last


def _key(i: int) -> str:
    # Unpadded numbers: lexicographic order differs from numeric order, and
    # the prefixes make delimiter listings meaningful.
    return f"obj/{i % 4}/{i}"


def test_concurrent_put_get_same_bucket(s3, bucket):
    """16 clients writing then reading one bucket at once (small bodies)."""
    keys = [f"c/{i}" for i in range(300)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=k.encode()), keys))
        bodies = list(pool.map(
            lambda k: s3.get_object(Bucket=bucket, Key=k)["Body"].read(), keys))
    assert bodies == [k.encode() for k in keys]
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 300


@pytest.fixture(scope="module")
def bucket_2500(s3):
    bucket = new_bucket_name("list")
    s3.create_bucket(Bucket=bucket)
    keys = [_key(i) for i in range(N)]

    def put(k: str) -> None:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(put, keys))
    return bucket, sorted(keys, key=lambda k: k.encode())


def test_list_objects_v2_paginator(s3, bucket_2500):
    bucket, expected = bucket_2500
    pages = list(
        s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, PaginationConfig={"PageSize": 1000}
        )
    )
    assert len(pages) == 3
    assert [len(p["Contents"]) for p in pages] == [1000, 1000, 500]
    assert [p["KeyCount"] for p in pages] == [1000, 1000, 500]
    assert [p["IsTruncated"] for p in pages] == [True, True, False]
    assert all("NextContinuationToken" in p for p in pages[:2])
    keys = [o["Key"] for p in pages for o in p["Contents"]]
    assert keys == expected
    sizes = {o["Key"]: o["Size"] for p in pages for o in p["Contents"]}
    assert all(sizes[k] == len(k.encode()) for k in expected)


def test_list_objects_v2_default_max_keys(s3, bucket_2500):
    bucket, expected = bucket_2500
    page = s3.list_objects_v2(Bucket=bucket)
    assert page["KeyCount"] == 1000 and page["IsTruncated"] is True
    assert [o["Key"] for o in page["Contents"]] == expected[:1000]
    nxt = s3.list_objects_v2(
        Bucket=bucket, StartAfter=expected[1999], MaxKeys=1000
    )
    assert [o["Key"] for o in nxt["Contents"]] == expected[2000:]
    assert nxt["IsTruncated"] is False


def test_list_objects_v1_paginator(s3, bucket_2500):
    bucket, expected = bucket_2500
    pages = list(
        s3.get_paginator("list_objects").paginate(
            Bucket=bucket, PaginationConfig={"PageSize": 1000}
        )
    )
    assert [len(p["Contents"]) for p in pages] == [1000, 1000, 500]
    keys = [o["Key"] for p in pages for o in p["Contents"]]
    assert keys == expected


def test_list_with_delimiter(s3, bucket_2500):
    bucket, expected = bucket_2500
    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in top.get("CommonPrefixes", [])] == ["obj/"]
    assert "Contents" not in top
    sub = s3.list_objects_v2(Bucket=bucket, Prefix="obj/", Delimiter="/")
    assert [p["Prefix"] for p in sub["CommonPrefixes"]] == [
        "obj/0/", "obj/1/", "obj/2/", "obj/3/"
    ]
    one = list(
        s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix="obj/3/", PaginationConfig={"PageSize": 200}
        )
    )
    keys = [o["Key"] for p in one for o in p["Contents"]]
    assert keys == [k for k in expected if k.startswith("obj/3/")]
    assert len(keys) == N // 4
