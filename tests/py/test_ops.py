"""Health probes and /metrics over HTTPS, driven by real boto3 traffic."""

from __future__ import annotations

import http.client
import ssl
from urllib.parse import urlsplit

from conftest import METRICS_TOKEN, new_bucket_name


def get(server, path: str, token: str | None = None) -> tuple[int, str, str]:
    u = urlsplit(server.endpoint)
    ctx = ssl.create_default_context(cafile=str(server.ca))
    conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=15, context=ctx)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    try:
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        return r.status, r.getheader("content-type", ""), r.read().decode()
    finally:
        conn.close()


def sample(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[1])
    return 0.0


def test_health_endpoints_over_https(server):
    assert get(server, "/_/health/live")[0] == 200
    status, _, body = get(server, "/_/health/ready")
    assert (status, body) == (200, "ready\n")


def test_metrics_follow_boto3_traffic(server, s3):
    bucket = new_bucket_name("metrics")
    put = 'cloudmux_requests_total{operation="PutObject",status="200"}'
    # Without the token, or with a wrong one, the endpoint says nothing.
    for token in (None, "wrong"):
        status, _, body = get(server, "/metrics", token)
        assert status == 403 and "AccessDenied" in body and bucket not in body
    status, ctype, before = get(server, "/metrics", METRICS_TOKEN)
    assert status == 200 and ctype.startswith("application/openmetrics-text")
    s3.create_bucket(Bucket=bucket)
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x" * 100)
    _, _, after = get(server, "/metrics", METRICS_TOKEN)
    status, _, body = get(server, "/metrics")
    assert status == 403 and bucket not in body
    assert sample(after, put) - sample(before, put) >= 3
    assert sample(after, f'cloudmux_bucket_objects{{bucket="{bucket}"}}') == 3
    assert sample(after, f'cloudmux_bucket_bytes{{bucket="{bucket}"}}') == 300
    # A signed ListObjects on the bucket still works next to the endpoint.
    assert len(s3.list_objects_v2(Bucket=bucket)["Contents"]) == 3
