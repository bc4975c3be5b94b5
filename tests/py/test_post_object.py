"""POST Object (browser-based uploads) with boto3's presigned POST forms,
sent as real multipart/form-data over HTTPS with urllib3.

boto3 signs presigned POST policies with SigV2 (AWSAccessKeyId/signature) by
default against a custom endpoint and with SigV4 (x-amz-*) when asked, so
both are exercised.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest
import urllib3

from conftest import SECRET_KEY, make_client, new_bucket_name

SIGV = ["s3v2", "s3v4"]


def _client(server, sigv):
    if sigv == "s3v4":
        return make_client(server, signature_version="s3v4")
    return make_client(server, signature_version="s3")


def _http(server):
    return urllib3.PoolManager(ca_certs=str(server.ca), retries=False)


def _post(server, url, fields, filename="upload.bin", data=b"hello", file_last=True):
    items = list(fields.items()) if isinstance(fields, dict) else list(fields)
    file_part = ("file", (filename, data, "application/octet-stream"))
    if file_last:
        items.append(file_part)
    else:
        items.insert(0, file_part)
    body, ctype = urllib3.encode_multipart_formdata(items)
    return _http(server).request(
        "POST", url, body=body, headers={"Content-Type": ctype}, redirect=False
    )


def _code(resp) -> str | None:
    if not resp.data:
        return None
    root = ET.fromstring(resp.data)
    c = root.find("Code")
    return c.text if c is not None else None


@pytest.fixture()
def pbucket(s3):
    name = new_bucket_name("post")
    s3.create_bucket(Bucket=name)
    return name


@pytest.mark.parametrize("sigv", SIGV)
def test_presigned_post_uploads_the_file(server, s3, pbucket, sigv):
    client = _client(server, sigv)
    post = client.generate_presigned_post(pbucket, "dir/obj.txt", ExpiresIn=300)
    if sigv == "s3v4":
        assert "x-amz-signature" in post["fields"]
    else:
        assert "signature" in post["fields"]
    data = b"browser upload " * 1000
    r = _post(server, post["url"], post["fields"], data=data)
    assert r.status == 204, r.data
    assert r.headers["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
    got = s3.get_object(Bucket=pbucket, Key="dir/obj.txt")["Body"].read()
    assert got == data


@pytest.mark.parametrize("sigv", SIGV)
def test_success_status_redirect_filename_meta_acl(server, s3, pbucket, sigv):
    client = _client(server, sigv)
    fields = {
        "acl": "public-read",
        "Content-Type": "text/plain",
        "x-amz-meta-color": "blue",
        "success_action_status": "201",
    }
    conditions = [{k: v} for k, v in fields.items()]
    post = client.generate_presigned_post(
        pbucket, "up/${filename}", Fields=fields, Conditions=conditions, ExpiresIn=300
    )
    r = _post(server, post["url"], post["fields"], filename="photo.txt", data=b"abc")
    assert r.status == 201, r.data
    doc = ET.fromstring(r.data)
    assert doc.tag == "PostResponse"
    assert doc.findtext("Bucket") == pbucket
    assert doc.findtext("Key") == "up/photo.txt"
    assert doc.findtext("ETag") == '"%s"' % hashlib.md5(b"abc").hexdigest()
    head = s3.head_object(Bucket=pbucket, Key="up/photo.txt")
    assert head["ContentType"] == "text/plain"
    assert head["Metadata"] == {"color": "blue"}
    # public-read: an anonymous GET works.
    anon = _http(server).request("GET", f"{server.endpoint}/{pbucket}/up/photo.txt")
    assert anon.status == 200 and anon.data == b"abc"

    post = client.generate_presigned_post(
        pbucket, "s200", Fields={"success_action_status": "200"},
        Conditions=[{"success_action_status": "200"}], ExpiresIn=300)
    r = _post(server, post["url"], post["fields"])
    assert r.status == 200 and r.data == b""

    target = "http://127.0.0.1:9/done?x=1"
    post = client.generate_presigned_post(
        pbucket, "redir", Fields={"success_action_redirect": target},
        Conditions=[{"success_action_redirect": target}], ExpiresIn=300)
    r = _post(server, post["url"], post["fields"], data=b"xyz")
    assert r.status == 303
    loc = urlsplit(r.headers["Location"])
    q = parse_qs(loc.query)
    assert loc.netloc == "127.0.0.1:9" and q["x"] == ["1"]
    assert q["bucket"] == [pbucket] and q["key"] == ["redir"]
    assert q["etag"] == ['"%s"' % hashlib.md5(b"xyz").hexdigest()]


@pytest.mark.parametrize("sigv", SIGV)
def test_content_length_range(server, s3, pbucket, sigv):
    client = _client(server, sigv)
    post = client.generate_presigned_post(
        pbucket, "sized", Conditions=[["content-length-range", 5, 10]], ExpiresIn=300)
    r = _post(server, post["url"], post["fields"], data=b"x" * 11)
    assert r.status == 400 and _code(r) == "EntityTooLarge", r.data
    r = _post(server, post["url"], post["fields"], data=b"x" * 4)
    assert r.status == 400 and _code(r) == "EntityTooSmall", r.data
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket=pbucket, Key="sized")
    r = _post(server, post["url"], post["fields"], data=b"x" * 7)
    assert r.status == 204


@pytest.mark.parametrize("sigv", SIGV)
def test_policy_failures(server, s3, pbucket, sigv):
    client = _client(server, sigv)
    # A condition that fails.
    post = client.generate_presigned_post(
        pbucket, "uploads/a", Conditions=[["starts-with", "$key", "uploads/"]], ExpiresIn=300)
    fields = dict(post["fields"], key="elsewhere/a")
    r = _post(server, post["url"], fields)
    assert r.status == 403 and _code(r) == "AccessDenied", r.data
    assert b"Policy Condition failed" in r.data
    # A field the policy does not mention.
    fields = dict(post["fields"], **{"x-amz-meta-extra": "1"})
    r = _post(server, post["url"], fields)
    assert r.status == 403 and b"Extra input fields" in r.data
    # An expired policy.
    post = client.generate_presigned_post(pbucket, "late", ExpiresIn=-60)
    r = _post(server, post["url"], post["fields"])
    assert r.status == 403 and b"Policy expired" in r.data
    # A wrong signature.
    post = client.generate_presigned_post(pbucket, "sig", ExpiresIn=300)
    fields = dict(post["fields"])
    sig_field = "x-amz-signature" if sigv == "s3v4" else "signature"
    good = fields[sig_field]
    fields[sig_field] = ("0" * len(good)) if sigv == "s3v4" else base64.b64encode(b"x" * 20).decode()
    r = _post(server, post["url"], fields)
    assert r.status == 403 and _code(r) == "SignatureDoesNotMatch", r.data
    # No file part.
    body, ctype = urllib3.encode_multipart_formdata(list(post["fields"].items()))
    r = _http(server).request("POST", post["url"], body=body, headers={"Content-Type": ctype})
    assert r.status == 400, r.data
    for key in ["late", "sig", "uploads/a"]:
        with pytest.raises(s3.exceptions.ClientError):
            s3.head_object(Bucket=pbucket, Key=key)


def test_hand_made_v2_policy_and_fields_after_file(server, s3, pbucket):
    policy = {
        "expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 300)),
        "conditions": [{"bucket": pbucket}, ["eq", "$key", "v2"],
                       ["starts-with", "$Content-Type", "image/"]],
    }
    b64 = base64.b64encode(json.dumps(policy).encode()).decode()
    sig = base64.b64encode(hmac.new(SECRET_KEY.encode(), b64.encode(), hashlib.sha1).digest()).decode()
    from conftest import ACCESS_KEY
    fields = [("key", "v2"), ("AWSAccessKeyId", ACCESS_KEY), ("policy", b64),
              ("signature", sig), ("Content-Type", "image/png")]
    items = fields + [("file", ("a.png", b"PNG", "image/png")), ("ignored-after-file", "x")]
    body, ctype = urllib3.encode_multipart_formdata(items)
    r = _http(server).request("POST", f"{server.endpoint}/{pbucket}", body=body,
                              headers={"Content-Type": ctype})
    assert r.status == 204, r.data
    head = s3.head_object(Bucket=pbucket, Key="v2")
    assert head["ContentType"] == "image/png" and head["ContentLength"] == 3
    # The wrong content type fails the starts-with condition.
    fields[-1] = ("Content-Type", "text/plain")
    r = _post(server, f"{server.endpoint}/{pbucket}", fields)
    assert r.status == 403 and b"Policy Condition failed" in r.data


def test_anonymous_post_follows_the_bucket_acl(server, s3):
    open_bucket = new_bucket_name("postopen")
    s3.create_bucket(Bucket=open_bucket, ACL="public-read-write")
    # Like S3, an anonymous upload belongs to nobody: the bucket owner reads
    # it only through bucket-owner-full-control.
    r = _post(server, f"{server.endpoint}/{open_bucket}", {"key": "anon0"}, data=b"anon!")
    assert r.status == 204, r.data
    with pytest.raises(s3.exceptions.ClientError):
        s3.get_object(Bucket=open_bucket, Key="anon0")
    r = _post(server, f"{server.endpoint}/{open_bucket}",
              {"key": "anon", "acl": "bucket-owner-full-control"}, data=b"anon!")
    assert r.status == 204, r.data
    assert s3.get_object(Bucket=open_bucket, Key="anon")["Body"].read() == b"anon!"
    closed = new_bucket_name("postclosed")
    s3.create_bucket(Bucket=closed)
    r = _post(server, f"{server.endpoint}/{closed}", {"key": "anon"})
    assert r.status == 403 and _code(r) == "AccessDenied"
    # Oversized form fields are refused before any upload.
    r = _post(server, f"{server.endpoint}/{open_bucket}",
              [("key", "big-field"), ("x-amz-meta-a", "v" * (21 * 1024))])
    assert r.status == 400 and _code(r) == "InvalidArgument", r.data
    many = [("key", "many")] + [(f"x-ignore-{i}", "v" * 10000) for i in range(8)]
    r = _post(server, f"{server.endpoint}/{open_bucket}", many)
    assert r.status == 400 and _code(r) == "InvalidArgument", r.data
    # A form without a key.
    r = _post(server, f"{server.endpoint}/{open_bucket}", {"acl": "private"})
    assert r.status == 400 and _code(r) == "InvalidArgument"


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"),
                    reason="needs /proc")
def test_large_post_streams_with_flat_memory(server, s3, pbucket):
    import http.client
    import ssl
    import threading

    size = 192 << 20
    client = _client(server, "s3v4")
    post = client.generate_presigned_post(pbucket, "big.bin", ExpiresIn=300)
    boundary = "----cloudmuxboundary7MA4YWxkTrZu0gW"
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in post["fields"].items()
    ) + (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
         "Content-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    chunk = bytes(range(256)) * 4096  # 1 MiB
    md5 = hashlib.md5()

    def body():
        yield head
        for _ in range(size // len(chunk)):
            md5.update(chunk)
            yield chunk
        yield tail

    pid = server.proc.pid
    before = _rss_kib(pid)
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_kib(pid))
            time.sleep(0.02)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    u = urlsplit(post["url"])
    ctx = ssl.create_default_context(cafile=str(server.ca))
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=300)
    try:
        conn.putrequest("POST", u.path or "/")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(len(head) + size + len(tail)))
        conn.endheaders()
        for piece in body():
            conn.send(piece)
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
        done.set()
        t.join()
    assert resp.status == 204, data
    assert resp.getheader("ETag") == f'"{md5.hexdigest()}"'
    assert s3.head_object(Bucket=pbucket, Key="big.bin")["ContentLength"] == size
    grown_mib = (peak[0] - before) / 1024
    assert grown_mib < 64, f"server RSS grew by {grown_mib:.0f} MiB for a 192 MiB POST"
