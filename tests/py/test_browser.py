"""A real browser (headless Chromium) uploads to cloudmux from another origin.

A page served from one origin on 127.0.0.1 (a Python http.server) uploads to
a plain-HTTP cloudmux on another port: a multipart/form-data POST made from a
boto3 presigned POST form, then a fetch() PUT to a presigned URL, which needs
a CORS preflight (PUT is not a simple method). The page reports what the
browser saw back to its own origin. With a CORS rule the bytes arrive; without
one the browser refuses both responses and the PUT never happens.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from conftest import (ACCESS_KEY, REGION, SECRET_KEY, new_bucket_name, start_server,
                      stop_server, write_config)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

PAGE = """<!doctype html>
<html><body><script>
const post = %(post)s;
const putUrl = %(put_url)s;
async function report(result) {
  await fetch("/result", {method: "POST", body: JSON.stringify(result)});
}
(async () => {
  const result = {};
  try {
    const form = new FormData();
    for (const [k, v] of Object.entries(post.fields)) form.append(k, v);
    form.append("file", new Blob(["posted from the browser"], {type: "text/plain"}), "a.txt");
    const r = await fetch(post.url, {method: "POST", body: form});
    result.post = r.status;
    result.postEtag = r.headers.get("ETag");
  } catch (e) { result.post = "error: " + e; }
  try {
    const r = await fetch(putUrl, {method: "PUT", body: "put from the browser",
                                   headers: {"Content-Type": "application/x-cloudmux-test"}});
    result.put = r.status;
  } catch (e) { result.put = "error: " + e; }
  await report(result);
})();
</script></body></html>
"""


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory):
    work = tmp_path_factory.mktemp("cloudmux-http")
    data = work / "data"
    data.mkdir()
    config = work / "cloudmux.toml"
    write_config(config, data, None, None)
    log = work / "server.log"
    proc, endpoint = start_server(config, log)
    assert endpoint.startswith("http://")
    try:
        yield endpoint, log
    finally:
        stop_server(proc)


def _client(endpoint, sigv):
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY, region_name=REGION,
        config=Config(signature_version=sigv, s3={"addressing_style": "path"},
                      retries={"mode": "standard", "total_max_attempts": 1}))


def _page_server(html: str):
    results: list[dict] = []
    got = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            results.append(json.loads(self.rfile.read(n)))
            got.set()
            self.send_response(204)
            self.end_headers()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, results, got


def _run_page(endpoint: str, bucket: str, cors_origin_ok: bool) -> dict:
    s3v4 = _client(endpoint, "s3v4")
    post = s3v4.generate_presigned_post(bucket, "posted.txt", ExpiresIn=300)
    put_url = s3v4.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "put.txt"}, ExpiresIn=300)
    html = PAGE % {"post": json.dumps(post), "put_url": json.dumps(put_url)}
    httpd, results, got = _page_server(html)
    page = f"http://127.0.0.1:{httpd.server_address[1]}/"
    if cors_origin_ok:
        s3v4.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [{
            "AllowedOrigins": [page.rstrip("/")],
            "AllowedMethods": ["PUT", "POST", "GET"],
            "AllowedHeaders": ["*"],
            "ExposeHeaders": ["ETag"],
            "MaxAgeSeconds": 60,
        }]})
    profile = tempfile.mkdtemp(prefix="cloudmux-chromium-")
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}", page],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert got.wait(60), "the page did not report within 60 s"
        return results[0]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        httpd.shutdown()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed "
                    "(scripts/install-test-deps.sh installs it)")
def test_browser_uploads_with_cors(plain_server):
    plain_server, log = plain_server
    s3 = _client(plain_server, "s3v4")
    bucket = new_bucket_name("browser")
    s3.create_bucket(Bucket=bucket)
    result = _run_page(plain_server, bucket, cors_origin_ok=True)
    assert result["post"] == 204, result
    assert result["put"] == 200, result
    # The exposed ETag header is readable by the script.
    assert result["postEtag"] and result["postEtag"].startswith('"'), result
    assert s3.get_object(Bucket=bucket, Key="posted.txt")["Body"].read() == \
        b"posted from the browser"
    put = s3.get_object(Bucket=bucket, Key="put.txt")
    assert put["Body"].read() == b"put from the browser"
    assert put["ContentType"] == "application/x-cloudmux-test"
    # The browser asked first: the PUT went through a preflight.
    assert f'op="CorsPreflight" bucket="{bucket}" status=200' in log.read_text()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed "
                    "(scripts/install-test-deps.sh installs it)")
def test_browser_fails_without_cors(plain_server):
    plain_server, log = plain_server
    s3 = _client(plain_server, "s3v4")
    bucket = new_bucket_name("nocors")
    s3.create_bucket(Bucket=bucket)
    result = _run_page(plain_server, bucket, cors_origin_ok=False)
    assert str(result["post"]).startswith("error"), result
    assert str(result["put"]).startswith("error"), result
    # The preflight was refused, so the PUT was never sent.
    assert f'op="CorsPreflight" bucket="{bucket}" status=403' in log.read_text()
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket=bucket, Key="put.txt")
